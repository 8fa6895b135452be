"""``results.gpkg`` from the derived-data cache when its inputs did not change.

A planner who runs a region again (the same data, the same plan) gets the same GeoPackage byte
for byte (geo/export.py pins GDAL's timestamp), so its bytes are kept under a key made of
everything the file is built from, exactly: the four tables and the area polygons, column by
column (numbers by their bits, text and missing values by their ``repr``, polygons by their
WKB), the code that writes it (:data:`GPKG_CODE` and the herschik modules it imports:
:func:`herschik.derived_cache.modules_digest`) and the versions of the
libraries that write it (pyogrio with its GDAL, SQLite, geopandas, shapely). A hit copies the
file, skipping the layers (~0.07 s of CPU in midden) and GDAL's write (~0.14 s); any change of
a value writes it anew. The entry's checksum is verified on every read (a damaged entry is
written anew).
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from herschik.geo.export import write_layers_gpkg

from herschik.atomic import write_bytes
from herschik.derived_cache import entry_key, library_versions, read_entry, write_entry

#: libraries whose versions decide the GeoPackage's bytes
_WRITERS = ("pyogrio", "geopandas", "shapely", "pandas", "numpy")


@functools.lru_cache(maxsize=1)
def writer_versions() -> tuple[str, ...]:
    """The versions of the writing libraries, GDAL's and SQLite's (part of the key)."""
    return (f"gdal=={pyogrio.__gdal_version_string__}", f"sqlite=={sqlite3.sqlite_version}",
            *library_versions(*_WRITERS))


def _column_digest(digest: hashlib._Hash, name: str, column: pd.Series | pd.Index) -> None:
    digest.update(f"\0{name}:{column.dtype}:{len(column)}\0".encode())
    if isinstance(column.dtype, gpd.array.GeometryDtype):
        for wkb in shapely.to_wkb(np.asarray(column, dtype=object)):
            digest.update(b"|" + (wkb if wkb is not None else b"None"))
    elif isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufcmM":
        digest.update(np.ascontiguousarray(column.to_numpy()).tobytes())
    else:  # text, objects, nullable types: exact reprs (floats by repr are exact)
        digest.update("\x1f".join(map(repr, column.tolist())).encode())


def frame_digest(frame: pd.DataFrame | None) -> str:
    """SHA-256 of a table's columns (names, dtypes, values exactly), index and CRS."""
    if frame is None:
        return "none"
    digest = hashlib.sha256(b"herschik-frame")
    _column_digest(digest, "\0index", frame.index)
    for name in frame.columns:
        _column_digest(digest, str(name), frame[name])
    crs = getattr(frame, "crs", None) if isinstance(frame, gpd.GeoDataFrame) else None
    digest.update(f"\0crs:{crs.to_wkt() if crs is not None else None}".encode())
    return digest.hexdigest()

#: the modules that write the GeoPackage from its key's tables (the code part of its key)
GPKG_CODE = ("herschik.geo.export_cache",)


def write_results_gpkg_cached(
    path: str | Path,
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    sites: pd.DataFrame,
    areas_gdf: gpd.GeoDataFrame,
    flows: pd.DataFrame | None,
    layers: Callable[[], dict[str, gpd.GeoDataFrame]],
) -> Path:
    """:func:`herschik.geo.export.write_results_gpkg` of these tables, copied from the
    derived-data cache when the same inputs were written before; ``layers`` builds the
    layers of those inputs (:func:`herschik.geo.export.build_layers`) on a miss."""
    path = Path(path)
    key = entry_key("gpkg", [*writer_versions(), *(frame_digest(frame) for frame in
                                                   (site_volumes, assignments, sites,
                                                    areas_gdf, flows))], code=GPKG_CODE)
    kept = read_entry(key)
    if kept is not None:
        write_bytes(path, kept)
        return path
    write_layers_gpkg(path, layers())
    write_entry(key, path.read_bytes())
    return path
