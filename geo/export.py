"""GIS export of one run's results: ``results.gpkg`` (EPSG:28992) and GeoJSON (EPSG:4326).

The layers are built from the contract tables (``site_volumes``, ``assignments``; see
``docs/CLI.md``) plus the dataset's site points and area polygons:

* ``sites`` (Point) — one feature per ``site_volumes`` row, with every contract column and
  ``gained`` (kept after, not before), ``lost`` (kept before, not after), ``volume_change``
  (after - before), ``organisation`` and ``site_type``.
* ``areas`` (Polygon / MultiPolygon) — one feature per (area, treatment) with patients after
  reallocation: the main assigned site (largest flow), the number of sites serving it, patients
  and the patient-weighted travel minutes before / after and the extra minutes.
* ``flows`` (LineString from the area's demand centroid to the site) — one feature per
  ``assignments`` row, with all of its columns.

Feature counts equal the CSV row counts (``flows`` == assignments.csv, ``sites`` ==
site_volumes.csv) and the shared columns hold the same values. Files are written with
geopandas' pyogrio engine to a temporary name and moved into place with :func:`os.replace`, so a
reader never sees a half-written file. The GeoPackage is byte-for-byte reproducible (GDAL's
``OGR_CURRENT_DATE`` is pinned while writing).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from herschik.geo.styles import write_layer_styles

from herschik.atomic import atomic_path
from herschik.columns import (
    AREAS_LAYER,
    AREAS_LAYER_COLUMNS,
    ASSIGNMENT_COLUMNS,
    ASSIGNMENTS,
    FLOWS_LAYER_COLUMNS,
    HOSPITAL_FLOW_COLUMNS,
    HOSPITAL_FLOWS,
    LATER_ASSIGNMENT_COLUMNS,
    LATER_SITE_VOLUME_COLUMNS,
    NAME_COLUMNS,
    SITE_VOLUME_COLUMNS,
    SITE_VOLUMES,
    SITES_LAYER_COLUMNS,
    of_kind,
)

CRS_RD = "EPSG:28992"
CRS_WGS84 = "EPSG:4326"
#: radius (m) of the stand-in circles drawn when a dataset has no area polygons
FALLBACK_BUFFER_M = 750.0
#: fixed timestamp written into GeoPackage metadata so that files are reproducible
_FIXED_DATE = "2000-01-01T00:00:00.000Z"
_GDAL_LOCK = threading.Lock()

# the tables' and layers' columns are defined in herschik.columns


# ----------------------------------------------------------------------------- helpers
def _as_bool(series: pd.Series) -> pd.Series:
    """Contract booleans may arrive as bool or as the CSV strings ``true`` / ``false``."""
    if series.dtype == bool:
        return series
    mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
    out = series.map(lambda v: mapping.get(str(v).strip().lower(), bool(v)) if pd.notna(v)
                     else False)
    return out.astype(bool)


def _require(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}")


def _str_ids(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    df = df.copy()
    for col in columns:
        if col in df.columns:
            df[col] = df[col].astype(str)
    return df


def _add_later_columns(table: pd.DataFrame, later: tuple[str, ...], order: list[str]
                       ) -> pd.DataFrame:
    """Columns that result folders of older versions lack, added empty in their place."""
    missing = [c for c in dict.fromkeys(later) if c not in table.columns]
    if not missing:
        return table
    table = table.copy()
    for col in missing:
        table.insert(min(order.index(col), len(table.columns)), col, None)
    return table


def _text_or_empty(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _filled_text(column: pd.Series) -> pd.Series:
    """``column`` as text, "" for None and NaN: ``column.map(_text_or_empty)``, without a
    Python call per value where the values are text already (a run's tables hold ~6,000
    rows per layer, and every writer normalises them)."""
    if len(column):
        if isinstance(column.dtype, pd.StringDtype) and column.dtype.na_value is np.nan:
            return column.fillna("")  # text, or NaN for missing: what the map would give
        if column.dtype == object and pd.api.types.infer_dtype(column, skipna=False) \
                == "string":  # every value a str
            return column.astype(pd.StringDtype(na_value=np.nan))
    return column.map(_text_or_empty)


def _fill_text(df: pd.DataFrame, columns: list[str]) -> None:
    """Text columns that may be empty: "" for missing, never the string "nan"."""
    for col in columns:
        if col in df.columns:
            df[col] = _filled_text(df[col])


def normalise_site_volumes(site_volumes: pd.DataFrame) -> pd.DataFrame:
    """Contract ``site_volumes`` with string ids, float volumes and real booleans (columns
    that older result folders lack, e.g. the odds, read as empty)."""
    site_volumes = _add_later_columns(site_volumes, LATER_SITE_VOLUME_COLUMNS,
                                      SITE_VOLUME_COLUMNS)
    _require(site_volumes, SITE_VOLUME_COLUMNS, "site_volumes")
    sv = _str_ids(site_volumes, of_kind(SITE_VOLUMES, "id"))
    for col in of_kind(SITE_VOLUMES, "number"):
        sv[col] = pd.to_numeric(sv[col], errors="coerce").astype(float)
    for col in of_kind(SITE_VOLUMES, "flag"):
        sv[col] = _as_bool(sv[col])
    _fill_text(sv, of_kind(SITE_VOLUMES, "word"))
    return sv.reset_index(drop=True)


def normalise_assignments(assignments: pd.DataFrame) -> pd.DataFrame:
    """Contract ``assignments`` with string ids and float numbers (names empty if absent)."""
    assignments = _add_later_columns(assignments, (*NAME_COLUMNS, *LATER_ASSIGNMENT_COLUMNS),
                                     ASSIGNMENT_COLUMNS)
    _require(assignments, ASSIGNMENT_COLUMNS, "assignments")
    asg = assignments.copy()
    # ids and names that may be empty (no site of today for new patients)
    _fill_text(asg, [*of_kind(ASSIGNMENTS, "id"), *NAME_COLUMNS, *of_kind(ASSIGNMENTS, "word")])
    for col in of_kind(ASSIGNMENTS, "number"):
        asg[col] = pd.to_numeric(asg[col], errors="coerce").astype(float)
    return asg.reset_index(drop=True)


def normalise_hospital_flows(flows: pd.DataFrame | None) -> pd.DataFrame:
    """flows.csv with string ids and float numbers (an empty table for ``None``)."""
    if flows is None:
        return pd.DataFrame({c.name: pd.Series(dtype=float if c.kind == "number" else object)
                             for c in HOSPITAL_FLOWS})
    _require(flows, HOSPITAL_FLOW_COLUMNS, "flows")
    out = flows.copy()
    _fill_text(out, [c.name for c in HOSPITAL_FLOWS if c.kind != "number"])
    for col in of_kind(HOSPITAL_FLOWS, "number"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out.reset_index(drop=True)


def areas_geodataframe(
    areas: pd.DataFrame,
    area_geometries: gpd.GeoDataFrame | None = None,
    *,
    buffer_m: float = FALLBACK_BUFFER_M,
) -> gpd.GeoDataFrame:
    """Areas table (+ polygons) -> GeoDataFrame in EPSG:28992 for export and maps.

    Keeps ``area_id, area_name, region_id, population, x, y`` (those present) with the polygon
    of ``area_geometries``. Without polygons (``None``, or an area missing from them) the area
    becomes a circle of ``buffer_m`` metres around its demand centroid ``x, y``; the result's
    ``attrs["fallback_geometry"]`` then counts those areas so that reports can say so.
    """
    _require(areas, ["area_id", "x", "y"], "areas")
    keep = [c for c in ("area_id", "area_name", "region_id", "municipality_code", "population",
                        "x", "y") if c in areas.columns]
    base = _str_ids(areas[keep], ["area_id", "region_id"])
    geometry = np.full(len(base), None, dtype=object)
    has = np.zeros(len(base), dtype=bool)
    if area_geometries is not None and len(area_geometries):
        polys = area_geometries
        if polys.crs is not None and polys.crs != CRS_RD:
            polys = polys.to_crs(CRS_RD)
        lookup = dict(zip(polys["area_id"].astype(str), polys.geometry.values, strict=True))
        found = np.array([lookup.get(a) for a in base["area_id"]], dtype=object)
        has = np.array([g is not None and not shapely.is_empty(g) for g in found], dtype=bool)
        geometry[has] = found[has]
    n_fallback = int((~has).sum())
    if n_fallback:  # buffer only the areas without a polygon (buffering all is slow)
        xy = base.loc[~has, ["x", "y"]].to_numpy(float)
        circles = shapely.buffer(shapely.points(xy[:, 0], xy[:, 1]), buffer_m, quad_segs=8)
        geometry[~has] = np.asarray(circles, dtype=object)
    gdf = gpd.GeoDataFrame(base.reset_index(drop=True), geometry=list(geometry), crs=CRS_RD)
    gdf.attrs["fallback_geometry"] = n_fallback
    return gdf


def _site_points(sites: pd.DataFrame) -> pd.DataFrame:
    _require(sites, ["site_id", "x", "y"], "sites")
    keep = [c for c in ("site_id", "organisation", "site_type", "x", "y") if c in sites.columns]
    out = _str_ids(sites[keep], ["site_id"]).drop_duplicates("site_id")
    for col in ("organisation", "site_type"):
        if col not in out.columns:
            out[col] = ""
    return out


# ----------------------------------------------------------------------------- layers
def sites_layer(site_volumes: pd.DataFrame, sites: pd.DataFrame) -> gpd.GeoDataFrame:
    """The ``sites`` layer: one point per ``site_volumes`` row, in the same row order."""
    sv = normalise_site_volumes(site_volumes)
    pts = _site_points(sites)
    merged = sv.merge(pts, on="site_id", how="left", validate="many_to_one")
    missing = merged.loc[merged["x"].isna(), "site_id"].unique()
    if len(missing):
        raise ValueError(f"sites without coordinates in the dataset: {sorted(missing)[:5]}")
    merged["gained"] = merged["kept_after"] & ~merged["kept_before"]
    merged["lost"] = merged["kept_before"] & ~merged["kept_after"]
    merged["volume_change"] = merged["volume_after"] - merged["volume_before"]
    geometry = shapely.points(merged["x"].to_numpy(float), merged["y"].to_numpy(float))
    extra = [c for c in sv.columns if c not in SITES_LAYER_COLUMNS]
    return gpd.GeoDataFrame(merged[SITES_LAYER_COLUMNS + extra], geometry=geometry, crs=CRS_RD)


def area_summary(assignments: pd.DataFrame) -> pd.DataFrame:
    """Per (region, area, treatment) with patients: main site, patients and travel means.

    The main site is the one with the largest flow (ties: the smallest ``site_id``);
    ``site_share`` is its share of the area's patients; travel minutes are patient-weighted.
    """
    cols = [c.name for c in AREAS_LAYER if c.kind != "name"]  # names are added by areas_layer
    ids = of_kind(AREAS_LAYER, "id")
    asg = normalise_assignments(assignments)
    asg = asg[asg["patients"] > 0]
    if asg.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ids else float) for c in cols})
    keys = ["region_id", "area_id", "intervention_id"]
    asg = asg.assign(_w_after=asg["patients"] * asg["travel_min"],
                     _w_before=asg["patients"] * asg["travel_min_before"])
    grouped = asg.groupby(keys, sort=True)
    agg = grouped.agg(patients=("patients", "sum"), n_sites=("site_id", "nunique"),
                      _w_after=("_w_after", "sum"), _w_before=("_w_before", "sum"))
    agg["travel_min_after"] = agg["_w_after"] / agg["patients"]
    agg["travel_min_before"] = agg["_w_before"] / agg["patients"]
    agg["extra_min"] = agg["travel_min_after"] - agg["travel_min_before"]
    main = (asg.sort_values(keys + ["patients", "site_id"],
                            ascending=[True, True, True, False, True])
            .drop_duplicates(keys).set_index(keys))
    agg["site_id"] = main["site_id"]
    agg["site_share"] = main["patients"] / agg["patients"]
    agg["n_sites"] = agg["n_sites"].astype(int)
    return agg.reset_index()[cols]


def areas_layer(
    assignments: pd.DataFrame,
    areas_gdf: gpd.GeoDataFrame,
    site_names: dict[str, str] | None = None,
    *,
    summary_rows: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """The ``areas`` layer: one polygon per (area, treatment) with patients after.

    ``summary_rows``: :func:`area_summary` of ``assignments`` when the caller has it already
    (a run's maps use the same rows)."""
    summ = area_summary(assignments) if summary_rows is None else summary_rows.copy()
    geo = areas_gdf.copy()
    geo["area_id"] = geo["area_id"].astype(str)
    if "area_name" not in geo.columns:
        geo["area_name"] = ""
    geo = geo.drop_duplicates("area_id").set_index("area_id")
    missing = sorted(set(summ["area_id"]) - set(geo.index))
    if missing:
        raise ValueError(f"areas without geometry in the dataset: {missing[:5]}")
    summ["area_name"] = summ["area_id"].map(geo["area_name"]).fillna("").astype(str)
    names = site_names or {}
    summ["site_name"] = summ["site_id"].map(lambda s: names.get(s, "")).astype(str)
    geometry = geo.geometry.reindex(summ["area_id"]).values
    return gpd.GeoDataFrame(summ[AREAS_LAYER_COLUMNS], geometry=list(geometry), crs=CRS_RD)


def _area_points(areas_gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """Flow origins: the demand centroid ``x, y`` when known, else a point on the polygon."""
    ids = areas_gdf["area_id"].astype(str).to_numpy()
    if {"x", "y"} <= set(areas_gdf.columns):
        x = areas_gdf["x"].to_numpy(float)
        y = areas_gdf["y"].to_numpy(float)
    else:
        pts = shapely.point_on_surface(areas_gdf.geometry.values)
        x, y = shapely.get_x(pts), shapely.get_y(pts)
    return pd.DataFrame({"area_id": ids, "ax": x, "ay": y}).drop_duplicates("area_id")


def flows_layer(
    assignments: pd.DataFrame, sites: pd.DataFrame, areas_gdf: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """The ``flows`` layer: one line (area centroid -> site) per ``assignments`` row."""
    asg = normalise_assignments(assignments)
    pts = _site_points(sites)[["site_id", "x", "y"]].rename(columns={"x": "sx", "y": "sy"})
    merged = asg.merge(_area_points(areas_gdf), on="area_id", how="left",
                       validate="many_to_one")
    merged = merged.merge(pts, on="site_id", how="left", validate="many_to_one")
    for end, col in (("area", "ax"), ("site", "sx")):
        missing = merged.loc[merged[col].isna(), f"{end}_id"].unique()
        if len(missing):
            raise ValueError(f"{end}s without coordinates in the dataset: {sorted(missing)[:5]}")
    coords = np.stack([merged[["ax", "ay"]].to_numpy(float),
                       merged[["sx", "sy"]].to_numpy(float)], axis=1)
    geometry = shapely.linestrings(coords) if len(coords) else []
    extra = [c for c in asg.columns if c not in FLOWS_LAYER_COLUMNS]
    return gpd.GeoDataFrame(merged[FLOWS_LAYER_COLUMNS + extra], geometry=geometry, crs=CRS_RD)


def hospital_flows_layer(flows: pd.DataFrame | None, sites: pd.DataFrame) -> gpd.GeoDataFrame:
    """The ``hospital_flows`` layer: one line per flows.csv row, from the hospital of today to
    the hospital after (width: patients per year)."""
    table = normalise_hospital_flows(flows)
    pts = _site_points(sites)[["site_id", "x", "y"]]
    start = table[["site_id_from"]].merge(pts, left_on="site_id_from", right_on="site_id",
                                          how="left")
    end = table[["site_id_to"]].merge(pts, left_on="site_id_to", right_on="site_id",
                                      how="left")
    for ends in (start, end):
        missing = ends.loc[ends["x"].isna(), "site_id"].unique()
        if len(missing):
            raise ValueError(f"sites without coordinates in the dataset: {sorted(missing)[:5]}")
    coords = np.stack([start[["x", "y"]].to_numpy(float), end[["x", "y"]].to_numpy(float)],
                      axis=1)
    geometry = shapely.linestrings(coords) if len(coords) else []
    return gpd.GeoDataFrame(table[HOSPITAL_FLOW_COLUMNS], geometry=geometry, crs=CRS_RD)


def build_layers(
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    sites: pd.DataFrame,
    areas_gdf: gpd.GeoDataFrame,
    flows: pd.DataFrame | None = None,
    *,
    summary_rows: pd.DataFrame | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """The result layers (``sites``, ``areas``, ``flows``, ``hospital_flows``) in EPSG:28992
    (``hospital_flows`` empty when ``flows`` is None); ``summary_rows``: see
    :func:`areas_layer`."""
    site_names = dict(zip(normalise_site_volumes(site_volumes)["site_id"],
                          site_volumes["site_name"].astype(str), strict=True))
    if "site_name" in sites.columns:
        for sid, name in zip(sites["site_id"].astype(str), sites["site_name"].astype(str),
                             strict=True):
            site_names.setdefault(sid, name)
    return {
        "sites": sites_layer(site_volumes, sites),
        "areas": areas_layer(assignments, areas_gdf, site_names, summary_rows=summary_rows),
        "flows": flows_layer(assignments, sites, areas_gdf),
        "hospital_flows": hospital_flows_layer(flows, sites),
    }


# ----------------------------------------------------------------------------- writers
#: GDAL settings while a GeoPackage is written: the metadata timestamp pinned, so that
#: repeated writes give identical files; SQLite's own syncs off, because the file is a
#: temporary one that :func:`herschik.atomic.atomic_path` fsyncs once before moving it into
#: place (a crash leaves a temporary file, never a damaged result). Without it SQLite synced
#: 84 times per results.gpkg (every transaction of every layer); the bytes are the same.
_GPKG_WRITE_OPTIONS = {"OGR_CURRENT_DATE": _FIXED_DATE, "OGR_SQLITE_SYNCHRONOUS": "OFF"}


@contextmanager
def _gdal_write_options() -> Iterator[None]:
    """:data:`_GPKG_WRITE_OPTIONS` while writing, the previous values after."""
    with _GDAL_LOCK:
        previous = {name: pyogrio.get_gdal_config_option(name) for name in _GPKG_WRITE_OPTIONS}
        pyogrio.set_gdal_config_options(_GPKG_WRITE_OPTIONS)
        try:
            yield
        finally:
            pyogrio.set_gdal_config_options(previous)


def _geometry_type(layer: str, gdf: gpd.GeoDataFrame) -> str:
    if layer == "sites":
        return "Point"
    if layer in ("flows", "hospital_flows"):
        return "LineString"
    kinds = set(gdf.geom_type.dropna()) if len(gdf) else set()
    return "MultiPolygon" if "MultiPolygon" in kinds else "Polygon"


def _write_layer(gdf: gpd.GeoDataFrame, path: Path, layer: str, **kwargs: Any) -> None:
    # Mixed Polygon/MultiPolygon layers are promoted so that QGIS sees one geometry type.
    geometry_type = _geometry_type(layer, gdf)
    if geometry_type == "MultiPolygon":
        gdf = gdf.set_geometry(
            [g if g is None or g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g])
             for g in gdf.geometry.values], crs=gdf.crs)
    gdf.to_file(path, layer=layer, engine="pyogrio", geometry_type=geometry_type, **kwargs)


def write_layers_gpkg(path: str | Path, layers: dict[str, gpd.GeoDataFrame],
                      styles: bool = True) -> Path:
    """Write prepared layers into one GeoPackage, atomically (temp file, then os.replace);
    ``styles``: with their QGIS styles in ``layer_styles`` (geo/styles.py)."""

    path = Path(path)
    with atomic_path(path) as tmp, _gdal_write_options():
        for name, gdf in layers.items():
            _write_layer(gdf, tmp, name, driver="GPKG")
        if styles:
            write_layer_styles(tmp, {name: _max_patients(gdf) for name, gdf in layers.items()})
    return path


def _max_patients(gdf: gpd.GeoDataFrame) -> float:
    """The largest ``patients`` of a layer (line widths scale to it), 1 without any."""
    if "patients" not in gdf.columns or not len(gdf):
        return 1.0
    value = float(pd.to_numeric(gdf["patients"], errors="coerce").max())
    return value if np.isfinite(value) and value > 0 else 1.0


def write_results_gpkg(
    path: str | Path,
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    sites: pd.DataFrame,
    areas_gdf: gpd.GeoDataFrame,
    flows: pd.DataFrame | None = None,
) -> Path:
    """Write ``results.gpkg`` (layers ``sites``, ``areas``, ``flows``, ``hospital_flows``, and
    their QGIS styles in ``layer_styles``; EPSG:28992).

    ``sites`` is the dataset's site table (``site_id, x, y`` [, ``organisation, site_type``]);
    ``areas_gdf`` a GeoDataFrame of ``area_id`` + polygon (+ ``x, y`` demand centroid,
    ``area_name``), e.g. from :func:`areas_geodataframe`. Empty tables give empty layers.
    """
    return write_layers_gpkg(path, build_layers(site_volumes, assignments, sites, areas_gdf,
                                                flows))


def write_results_geojson(
    directory: str | Path,
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    sites: pd.DataFrame,
    areas_gdf: gpd.GeoDataFrame,
    flows: pd.DataFrame | None = None,
) -> list[Path]:
    """Write ``sites.geojson``, ``areas.geojson``, ``flows.geojson``,
    ``hospital_flows.geojson`` (RFC 7946, EPSG:4326).

    Same layers and columns as :func:`write_results_gpkg`; coordinates are WGS84 longitude /
    latitude with 7 decimals (about 1 cm), as web maps expect.
    """
    return write_layers_geojson(directory, build_layers(site_volumes, assignments, sites,
                                                        areas_gdf, flows))


def write_layers_geojson(directory: str | Path, layers: dict[str, gpd.GeoDataFrame]
                         ) -> list[Path]:
    """Write prepared layers (:func:`build_layers`) as ``<layer>.geojson`` files (RFC 7946,
    EPSG:4326; see :func:`write_results_geojson`), each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, gdf in layers.items():
        path = directory / f"{name}.geojson"
        with atomic_path(path) as tmp:
            _write_layer(gdf.to_crs(CRS_WGS84), tmp, name, driver="GeoJSON",
                         layer_options={"RFC7946": "YES"})
        written.append(path)
    return written
