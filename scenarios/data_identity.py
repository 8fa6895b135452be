"""A stable fingerprint of the loaded data and road network: part of every run id, so that a
sweep on other data never reuses a finished run folder."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _hash_frame(digest: Any, name: str, frame: pd.DataFrame) -> None:
    digest.update(f"frame:{name}:{list(map(str, frame.columns))}:{len(frame)}".encode())
    if len(frame):
        values = pd.util.hash_pandas_object(frame.astype(object), index=False).to_numpy()
        digest.update(np.ascontiguousarray(values).tobytes())


def _hash_file(digest: Any, path: Path) -> None:
    digest.update(f"file:{path.name}:{path.stat().st_size}".encode())
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def data_fingerprint(dataset: Any, network: Any = None) -> str:
    """A sha256 (hex) of the dataset's tables and metadata, the network file and the code version.

    Equal data give equal fingerprints in every process, so run ids are stable across machines.
    """
    digest = hashlib.sha256()
    try:
        version = metadata.version("herschik")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "source"
    digest.update(f"herschik:{version}".encode())
    fields = (
        [f.name for f in dataclasses.fields(dataset)]
        if dataclasses.is_dataclass(dataset)
        else sorted(vars(dataset))
    )
    for name in sorted(fields):
        value = getattr(dataset, name, None)
        if isinstance(value, pd.DataFrame) and "geometry" in value.columns:
            _hash_frame(digest, name, pd.DataFrame(value.drop(columns="geometry")))
            for geometry in value["geometry"].to_wkb():
                digest.update(geometry or b"")
        elif isinstance(value, pd.DataFrame):
            _hash_frame(digest, name, value)
        elif value is None or isinstance(value, (str, int, float, bool, dict, list, tuple)):
            digest.update(f"{name}:{json.dumps(value, sort_keys=True, default=str)}".encode())
    if network is None:
        digest.update(b"network:default")
    elif isinstance(network, (str, Path)) and Path(network).is_file():
        _hash_file(digest, Path(network))
    else:
        digest.update(f"network:{network}".encode())
    return digest.hexdigest()


