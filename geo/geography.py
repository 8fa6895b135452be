"""Where sites and areas lie: on land in the Netherlands, near their region; and the area
polygons of a dataset folder (areas.gpkg) read and checked."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.schema import CRS, MUNICIPALITIES_DIR, NL_LONLAT, RD_X_RANGE, RD_Y_RANGE
from herschik.geo.tables import check_data_file, check_ref, check_unique, first_bad

from herschik.errors import DataError

#: A point counts as on land in the Netherlands within this distance (m) of the embedded CBS
#: municipality polygons (which leave out the sea and the IJsselmeer); it allows for coastal
#: hospitals and simplified coastlines.
LAND_TOLERANCE_M = 2_000.0
#: A site must lie within this distance (m) of an origin area of its own region.
REGION_TOLERANCE_M = 30_000.0
_EXAMPLES = 3


@functools.lru_cache(maxsize=1)
def _land_tree() -> Any:
    # GDAL and GEOS load only when geometries are checked or read (not for `regions`)
    import pyogrio
    import shapely

    table = pyogrio.read_dataframe(MUNICIPALITIES_DIR / "areas.gpkg", columns=[])
    return shapely.STRtree(np.asarray(table.geometry.values))


def _examples(ids: pd.Series, x: pd.Series, y: pd.Series, mask: np.ndarray) -> str:
    picked = [f"{i} ({a:.0f}, {b:.0f})" for i, a, b in
              zip(ids[mask][:_EXAMPLES], x[mask][:_EXAMPLES], y[mask][:_EXAMPLES])]
    return ", ".join(picked)


def check_geography(sites: pd.DataFrame, areas: pd.DataFrame, *, on_land: bool = True) -> None:
    """Raise DataError unless every site and area lies on land in the Netherlands and every
    site lies in or near its stated region (within :data:`REGION_TOLERANCE_M` of one of the
    region's areas). The message gives the count and the first few examples.

    A bounding box lets through a site in the North Sea or an area in the IJsselmeer (hours of
    ferry travel in the network) and a hospital of one region placed in another.
    ``on_land=False`` (a dataset marked ``"synthetic": true``) checks only the regions.
    """
    import shapely
    from scipy.spatial import cKDTree

    tree = _land_tree() if on_land else None
    for file, frame, key in (("sites.csv", sites, "site_id"), ("areas.csv", areas, "area_id")):
        if tree is None:
            break
        points = shapely.points(frame["x"].to_numpy(float), frame["y"].to_numpy(float))
        hit = tree.query(points, predicate="dwithin", distance=LAND_TOLERANCE_M)[0]
        off = ~np.isin(np.arange(len(frame)), hit)
        if off.any():
            first = int(np.argmax(off))
            raise DataError(
                file, first + 1, "x,y",
                f"{int(off.sum())} of {len(frame)} points lie more than "
                f"{LAND_TOLERANCE_M / 1000:g} km from land in the Netherlands (CBS municipality "
                f"polygons), e.g. {_examples(frame[key], frame['x'], frame['y'], off)}",
            )
    far = np.zeros(len(sites), dtype=bool)
    site_regions = sites["region_id"].astype(str).to_numpy()
    area_regions = areas["region_id"].astype(str).to_numpy()
    for region in np.unique(site_regions):
        in_region = area_regions == region
        if not in_region.any():
            continue
        kd = cKDTree(np.column_stack([areas["x"].to_numpy(float)[in_region],
                                      areas["y"].to_numpy(float)[in_region]]))
        here = site_regions == region
        distance, _ = kd.query(np.column_stack([sites["x"].to_numpy(float)[here],
                                                sites["y"].to_numpy(float)[here]]))
        far[here] = distance > REGION_TOLERANCE_M
    if far.any():
        first = int(np.argmax(far))
        raise DataError(
            "sites.csv", first + 1, "region_id",
            f"{int(far.sum())} of {len(sites)} sites lie more than "
            f"{REGION_TOLERANCE_M / 1000:g} km from every area of their stated region, e.g. "
            + ", ".join(
                f"{i} in {r}" for i, r in zip(sites["site_id"][far][:_EXAMPLES],
                                              sites["region_id"][far][:_EXAMPLES])
            ),
        )


def read_geometries(folder: Path, areas: pd.DataFrame) -> Any:
    path = folder / "areas.gpkg"
    if not path.exists() and not path.is_symlink():
        return None

    check_data_file(path, "areas.gpkg")  # a FIFO would hang GDAL's open
    import geopandas as gpd
    import pyogrio
    from pyproj import CRS as ProjCRS

    file = "areas.gpkg"
    try:
        layers = [name for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # any driver error means an unreadable file
        raise DataError(file, None, None, f"cannot read GeoPackage ({exc})") from exc
    if not layers:
        raise DataError(file, None, None, "GeoPackage has no layers")
    layer = "areas" if "areas" in layers else None
    if layer is None:
        if len(layers) != 1:
            raise DataError(file, None, None, f"no layer 'areas' (layers: {', '.join(layers)})")
        layer = layers[0]
    try:
        frame = gpd.read_file(path, layer=layer, engine="pyogrio", use_arrow=True)
    except Exception:  # arrow is optional; fall back to the plain reader
        try:
            frame = gpd.read_file(path, layer=layer, engine="pyogrio")
        except Exception as exc:  # any driver error means an unreadable file
            message = " ".join(str(exc).split())
            raise DataError(file, None, None, f"cannot read layer {layer!r} ({message})") from None
    if "area_id" not in frame.columns:
        raise DataError(file, None, "area_id", "missing column")
    if "geometry" not in frame.columns or not hasattr(frame, "geometry"):
        raise DataError(file, None, "geometry", "the layer has no geometry column")
    if frame.crs is None:
        raise DataError(file, None, "geometry", "no CRS: the layer must declare its coordinate "
                        f"reference system (expected {CRS})")
    try:
        crs = ProjCRS.from_user_input(frame.crs)
    except Exception as exc:
        raise DataError(file, None, "geometry", f"unknown CRS ({exc})") from exc
    if not crs.equals(ProjCRS.from_epsg(28992), ignore_axis_order=True):
        _check_reprojectable(file, crs)
        try:
            frame = frame.to_crs(CRS)
        except Exception as exc:  # pyproj cannot transform this CRS
            message = " ".join(str(exc).split())
            raise DataError(file, None, "geometry", f"cannot reproject from CRS {crs.name!r} "
                            f"to {CRS} ({message})") from None
    else:
        frame = frame.set_crs(CRS, allow_override=True)
    frame = frame[["area_id", "geometry"]].copy()
    frame["area_id"] = frame["area_id"].astype(str).str.strip()
    check_unique(file, frame, ["area_id"])
    check_ref(file, frame, "area_id", areas["area_id"], "areas.csv")
    first_bad(file, "geometry", frame.geometry.isna().to_numpy(), frame["area_id"],
               lambda v: f"missing geometry (area {v})")
    bounds = frame.geometry.bounds.to_numpy(dtype=float)  # minx, miny, maxx, maxy
    with np.errstate(invalid="ignore"):
        outside = ~(np.isfinite(bounds).all(axis=1)
                    & (bounds[:, 0] >= RD_X_RANGE[0]) & (bounds[:, 2] <= RD_X_RANGE[1])
                    & (bounds[:, 1] >= RD_Y_RANGE[0]) & (bounds[:, 3] <= RD_Y_RANGE[1]))
    outside &= ~frame.geometry.is_empty.to_numpy()
    first_bad(file, "geometry", outside, frame["area_id"],
               lambda v: f"area {v} lies outside the Netherlands in {CRS} (is the declared "
                         "CRS right?)")
    return frame.reset_index(drop=True)


def _check_reprojectable(file: str, crs: Any) -> None:
    """Refuse a CRS that cannot be reprojected to RD New safely.

    Safe: a geographic or projected CRS whose area of use (when known) covers the Netherlands.
    Refused: engineering / local grids (no datum to transform from) and CRSs meant for another
    part of the world (coordinates labelled with them cannot be Dutch areas).
    """
    if not (crs.is_projected or crs.is_geographic):
        raise DataError(file, None, "geometry", f"unsupported CRS {crs.name!r}: it cannot be "
                        f"reprojected to {CRS} safely (use {CRS} or EPSG:4326)")
    area = crs.area_of_use
    if area is None:
        return
    west, south, east, north = NL_LONLAT
    if area.east < west or area.west > east or area.north < south or area.south > north:
        raise DataError(file, None, "geometry", f"CRS {crs.name!r} does not cover the "
                        f"Netherlands (its area of use is longitude {area.west:g}..{area.east:g}, "
                        f"latitude {area.south:g}..{area.north:g}): refusing to reproject "
                        f"(use {CRS} or EPSG:4326)")


