"""Map layers of a region for the browser: simplified area polygons and hospital points (WGS84).

The polygons are the dataset's own (``areas.gpkg``; circles where an area has none, as in the
GeoPackage export), simplified so that a region's layer stays small enough to redraw at once.
No tile server is involved: the page draws these polygons on a blank background.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import shapely
from herschik.geo.export import areas_geodataframe
from herschik.optimiser.instance import Instance
from pyproj import Transformer

#: Douglas-Peucker tolerance in metres (EPSG:28992): invisible at region zoom, much smaller files
SIMPLIFY_M = 60.0
#: decimals of longitude/latitude kept (1e-5 degrees ~ 1 m)
DECIMALS = 5


def region_layers(dataset: Any, instance: Instance) -> dict[str, Any]:
    """``{"areas": FeatureCollection, "sites": [...], "bounds": [[s, w], [n, e]]}``.

    Features and sites are in the order of ``instance.area_ids`` / ``instance.sites`` (the
    plan payloads index them by position); each feature carries ``i``, ``area_id`` and
    ``area_name``.
    """
    areas = dataset.areas.set_index("area_id").loc[list(instance.area_ids)].reset_index()
    frame = areas_geodataframe(areas, dataset.area_geometries)
    geometry = shapely.simplify(frame.geometry.values, SIMPLIFY_M, preserve_topology=True)
    frame = frame.set_geometry(geometry).to_crs(4326)
    rounded = shapely.transform(frame.geometry.values, lambda xy: np.round(xy, DECIMALS))
    features = []
    for i, (row, geom) in enumerate(zip(frame.itertuples(index=False), rounded, strict=True)):
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "i": i,
                    "area_id": str(row.area_id),
                    "area_name": str(getattr(row, "area_name", "") or row.area_id),
                },
                "geometry": json.loads(shapely.to_geojson(geom)),
            }
        )
    sites_table = dataset.sites.set_index("site_id").loc[list(instance.site_ids)]
    lon, lat = _to_wgs84(sites_table["x"].to_numpy(float), sites_table["y"].to_numpy(float))
    sites = [
        {
            "i": s,
            "site_id": site.id,
            "site_name": site.name,
            "organisation": site.organisation,
            "lat": round(float(lat[s]), DECIMALS),
            "lon": round(float(lon[s]), DECIMALS),
        }
        for s, site in enumerate(instance.sites)
    ]
    west, south, east, north = frame.total_bounds
    return {
        "region_id": instance.region_id,
        "areas": {"type": "FeatureCollection", "features": features},
        "sites": sites,
        "bounds": [[float(south), float(west)], [float(north), float(east)]],
    }


def _to_wgs84(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    transformer = Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)
    lon, lat = transformer.transform(x, y)
    return np.asarray(lon), np.asarray(lat)
