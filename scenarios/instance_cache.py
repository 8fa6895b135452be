"""Region instances from the derived-data cache: the travel matrix and the baseline flows of a
region are computed once per dataset, network and code (:mod:`herschik.derived_cache`).

Imports neither the assembly (scipy's LP solver for the baseline) nor the road network: on a
cache hit a command does not load them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from herschik.geo.schema import DATA_DIR
from herschik.optimiser.instance import Instance

from herschik.derived_cache import cached, entry_key, file_digest, folder_digest


def network_identity(network: Any) -> str | None:
    """What a road network's travel times are derived from: the embedded network's input
    tables, or a network file's bytes; None for an in-memory graph (not cached)."""
    if network is None:
        return "default:" + ":".join(folder_digest(DATA_DIR / name) for name in ("roads",
                                                                             "network"))
    if isinstance(network, (str, Path)) and Path(network).is_file():
        return "file:" + file_digest(network)
    return None


def cached_build_instance(
    dataset: Any, region_id: str, network: Any = None, *, source_digest: str | None = None
) -> Instance:
    """:func:`herschik.scenarios.assemble.build_instance`, kept in the derived-data cache.

    ``source_digest`` is the identity of the files ``dataset`` was loaded from, unchanged
    (:func:`herschik.scenarios.cli.dataset.source_identity`); without it, or for an in-memory
    network, the instance is built. The travel matrix and the baseline flows are what it saves.
    """
    try:
        network_id = network_identity(network) if source_digest is not None else None
    except OSError:  # an unreadable network file: build_instance names the problem
        network_id = None
    if network_id is None:
        return _build(dataset, region_id, network)
    key = entry_key("instance", [source_digest, region_id, network_id])
    return cached(key, lambda: _build(dataset, region_id, network))


def _build(dataset: Any, region_id: str, network: Any) -> Instance:
    # the assembly (scipy.optimize, scipy.spatial, networkx and the road network: ~0.5 s of
    # CPU) is loaded only on a cache miss, a lazy import on purpose (docs/decisions/imports.md;
    # tests/herschik/test_derived_cache.py checks that a warm solve does not load it)
    from herschik.scenarios.assemble import build_instance

    return build_instance(dataset, region_id, network=network)
