"""Writing a :class:`Dataset` back in the documented format (atomically)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.dataset import Dataset
from herschik.geo.schema import CRS, OPTIONAL_COLUMNS, SCHEMA

from herschik.atomic import staged_dir, write_text


def _csv_text(frame: pd.DataFrame) -> str:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == bool:
            out[column] = np.where(out[column], "true", "false")
    # Default float formatting is repr (shortest round-tripping), so export -> load is exact;
    # the builder rounds values beforehand, so the files stay short and deterministic.
    return out.to_csv(index=False, lineterminator="\n")


def dataset_files(dataset: Dataset) -> dict[str, str]:
    """The CSV / JSON text of every table of ``dataset`` (file name -> text)."""
    meta = dict(dataset.meta)
    meta.setdefault("name", dataset.name)
    meta.setdefault("crs", CRS)
    treatments = dataset.treatments.copy()
    files = {
        "dataset.json": json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
        "regions.csv": _csv_text(dataset.regions[[c for c, _ in SCHEMA["regions.csv"]]]),
        "sites.csv": _csv_text(dataset.sites[[c for c, _ in SCHEMA["sites.csv"]] + [
            c for c, _ in OPTIONAL_COLUMNS["sites.csv"] if c in dataset.sites.columns]]),
        "areas.csv": _csv_text(dataset.areas[[c for c, _ in SCHEMA["areas.csv"]]]),
        "treatments.csv": _csv_text(treatments[[c for c, _ in SCHEMA["treatments.csv"]]]),
        "demand.csv": _csv_text(dataset.demand[[c for c, _ in SCHEMA["demand.csv"]]]),
        "baseline_volumes.csv": _csv_text(
            dataset.baseline_volumes[[c for c, _ in SCHEMA["baseline_volumes.csv"]]]
        ),
    }
    if dataset.travel_times is not None:
        files["travel_times.csv"] = _csv_text(
            dataset.travel_times[[c for c, _ in SCHEMA["travel_times.csv"]]]
        )
    if dataset.baseline_flows is not None:
        files["baseline_flows.csv"] = _csv_text(
            dataset.baseline_flows[[c for c, _ in SCHEMA["baseline_flows.csv"]]]
        )
    return files


def write_area_geometries(frame: Any, path: Path) -> None:
    """Write area polygons as layer ``areas`` (area_id, geometry) in EPSG:28992."""
    frame = frame[["area_id", "geometry"]].copy()
    if frame.crs is None:
        frame = frame.set_crs(CRS)
    elif str(frame.crs).upper() != CRS:
        frame = frame.to_crs(CRS)
    frame.to_file(path, layer="areas", driver="GPKG", engine="pyogrio")


def export_dataset(dataset: Dataset, out_dir: str | Path) -> Path:
    """Write ``dataset`` in the documented format to ``out_dir`` (atomically) and return it.

    Through the guarded folder writer (:func:`herschik.atomic.staged_dir`, kind ``dataset``):
    ``out_dir`` must be new, empty or a dataset folder herschik exported before (a folder of
    the user's own files is refused with :class:`~herschik.errors.OutputError`, exit 2); all
    files are written into a staging folder beside it, which then replaces it whole.
    """
    out = Path(out_dir)
    with staged_dir(out, kind="dataset") as staging:
        for file, text in dataset_files(dataset).items():
            write_text(staging / file, text)
        if dataset.area_geometries is not None:
            write_area_geometries(dataset.area_geometries, staging / "areas.gpkg")
    return out
