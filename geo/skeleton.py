"""The embedded national road network: a hand-compiled main-road skeleton plus district access.

No OpenStreetMap or NWB extract of the Netherlands is available offline, so the default
network is assembled from two committed, reviewable inputs:

1. ``geo/data/roads/`` — the national main-road skeleton, compiled by hand from public facts
   (Rijkswaterstaat road numbering, junction names, ferry timetables; OSM only as a reference
   map, no OSM data copied):

   * ``places.csv``  — ``place_id, name, lat, lon, attach, island``: junctions, exits, towns,
     bridges, tunnels, dams and ferry terminals in WGS84. ``attach = 0`` marks points on a
     bridge, dam or in a tunnel that have no local access; ``island`` names the Wadden
     island a place lies on (empty on the mainland).
   * ``roads.csv``   — ``road, highway, maxspeed, detour, via, note``: one row per road or
     road section, ``via`` an ordered ``;``-separated list of ``place_id``. Consecutive
     places are joined by a two-way edge of length = great-circle distance x ``detour``
     (road curvature between the junctions) at ``maxspeed`` km/h.
   * ``ferries.csv`` — ``ferry, from_place, to_place, crossing_min, wait_min, note``: car or
     passenger ferries as ``highway="ferry"`` edges of ``crossing_min + wait_min``.

2. ``geo/data/network/districts.csv`` — derived by :func:`build_district_table` from the
   real CBS district (wijk) polygons 2022 (run by hand; the raw GeoPackage is not needed at
   run time): one row per district with its centroid (RD New), urbanity and the districts
   that share a border with it. District adjacency becomes local roads (length = centroid
   distance x :data:`DISTRICT_DETOUR`, speed by urbanity, :data:`URBANITY_SPEEDS`). Water
   without a road stays a barrier: the generalised polygons touch only where land meets
   land, and districts of the Wadden islands are linked to nothing but their own island.

Each skeleton place with ``attach = 1`` is joined to the nearest district centroids of the
same island (access edges), so that local roads feed the main roads. The result is an
osmnx-compatible :class:`networkx.MultiDiGraph` in EPSG:28992 with node attributes ``x, y``
and edge attributes ``highway, maxspeed, length`` (m) and ``travel_time`` (s); every edge
also carries ``kind`` (``skeleton``, ``ferry``, ``district``, ``access``) and, for the
skeleton, ``ref`` (the road number).
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from pyproj import Transformer
from scipy.spatial import cKDTree

DATA_DIR = Path(__file__).resolve().parent / "data"
ROADS_DIR = DATA_DIR / "roads"
DISTRICTS_CSV = DATA_DIR / "network" / "districts.csv"

#: Detour factor applied to straight centroid-to-centroid distances of local roads.
DISTRICT_DETOUR = 1.25
#: Typical local driving speed (km/h) by CBS urbanity class, applied to the detoured centroid
#: distance (a mix of 30/50 km/h streets and 60/80 km/h provincial roads; calibrated once
#: against the RIVM Utrecht matrix and inter-city trips, see docs/VALIDATION.md).
URBANITY_SPEEDS: dict[str, float] = {
    "extremely urbanised": 35.0,
    "strongly urbanised": 45.0,
    "moderately urbanised": 55.0,
    "hardly urbanised": 65.0,
    "not urbanised": 75.0,
}
#: Speed for districts without an urbanity class.
DEFAULT_LOCAL_SPEED = 55.0
#: Access edges join each skeleton place to up to this many district centroids ...
ACCESS_K = 4
#: ... within this radius (m); the nearest one is always joined if within ACCESS_MAX_M.
ACCESS_RADIUS_M = 5_000.0
ACCESS_MAX_M = 12_000.0
#: Wadden island municipalities (CBS code without "GM"): no fixed link to anything else.
ISLAND_MUNICIPALITIES: dict[str, str] = {
    "0448": "texel",
    "0096": "vlieland",
    "0093": "terschelling",
    "0060": "ameland",
    "0088": "schiermonnikoog",
}

_WGS84_TO_RD = Transformer.from_crs("EPSG:4326", "EPSG:28992", always_xy=True)


# --------------------------------------------------------------------------------------
# derived district table (run by hand from the raw CBS polygons)
# --------------------------------------------------------------------------------------
def build_district_table(
    gpkg_path: str | Path, out_csv: str | Path = DISTRICTS_CSV, buffer_m: float = 100.0
) -> int:
    """Derive the compact district table from the CBS district polygons.

    Districts are neighbours when their polygons, buffered by ``buffer_m`` (the polygons are
    generalised, so shared borders do not match exactly), intersect. Districts of a Wadden
    island municipality (:data:`ISLAND_MUNICIPALITIES`) only neighbour districts of the same
    municipality, so that no local road crosses the Waddenzee.

    Parameters
    ----------
    gpkg_path
        ``NLD_dist_2022.gpkg`` (layer ``NLD_dist``, EPSG:28992, 3,340 wijken).
    out_csv
        Where to write the table (``geo/data/network/districts.csv``).
    buffer_m
        Buffer (m) used to detect shared borders.

    Returns
    -------
    int
        Number of districts written.
    """
    import geopandas as gpd  # only to read the districts' geometries

    d = gpd.read_file(gpkg_path).sort_values("code").reset_index(drop=True)
    if d.crs is None or d.crs.to_epsg() != 28992:
        d = d.to_crs(28992)
    cent = d.geometry.centroid
    inside = cent.within(d.geometry)
    pts = cent.where(inside, d.geometry.representative_point())
    buf = d[["code", "geometry"]].copy()
    buf["geometry"] = d.geometry.buffer(buffer_m)
    j = gpd.sjoin(buf, d[["code", "geometry"]], predicate="intersects")
    j = j[j.index != j["index_right"]]
    muni = d["code"].str[2:6].to_numpy()
    nbrs: dict[int, set[int]] = {i: set() for i in range(len(d))}
    for a, b in zip(j.index.to_numpy(), j["index_right"].to_numpy(), strict=True):
        if (muni[a] in ISLAND_MUNICIPALITIES or muni[b] in ISLAND_MUNICIPALITIES) and muni[
            a
        ] != muni[b]:
            continue
        nbrs[a].add(b)
        nbrs[b].add(a)
    codes = d["code"].to_numpy()
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["district_id", "name", "municipality_code", "province", "urbanity",
             "x", "y", "area_km2", "island", "neighbours"]
        )
        for i in range(len(d)):
            urb = d["urbanity"].iloc[i]
            w.writerow(
                [
                    codes[i],
                    d["name"].iloc[i],
                    "GM" + muni[i],
                    d["province"].iloc[i],
                    "" if urb is None or (isinstance(urb, float) and math.isnan(urb)) else urb,
                    f"{pts.x.iloc[i]:.0f}",
                    f"{pts.y.iloc[i]:.0f}",
                    f"{d.geometry.iloc[i].area / 1e6:.3f}",
                    ISLAND_MUNICIPALITIES.get(muni[i], ""),
                    ";".join(sorted(codes[k] for k in nbrs[i])),
                ]
            )
    return len(d)


# --------------------------------------------------------------------------------------
# reading the committed tables
# --------------------------------------------------------------------------------------
def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = [
            {k.strip(): (v or "").strip() for k, v in r.items()}
            for r in csv.DictReader(line for line in f if not line.lstrip().startswith("#"))
        ]
    return rows


def read_places(roads_dir: Path = ROADS_DIR) -> dict[str, dict]:
    """Read ``places.csv``: ``{place_id: {name, x, y, attach, island}}`` with RD New x, y."""
    out: dict[str, dict] = {}
    for i, r in enumerate(_read_csv(roads_dir / "places.csv"), start=2):
        pid = r["place_id"]
        if pid in out:
            raise ValueError(f"places.csv line {i}: duplicate place_id {pid!r}")
        lat, lon = float(r["lat"]), float(r["lon"])
        if not (50.7 <= lat <= 53.6 and 3.3 <= lon <= 7.3):
            raise ValueError(f"places.csv line {i}: {pid} lat/lon outside the Netherlands")
        x, y = _WGS84_TO_RD.transform(lon, lat)
        out[pid] = {
            "name": r["name"],
            "x": float(x),
            "y": float(y),
            "lat": lat,
            "lon": lon,
            "attach": r.get("attach", "1") != "0",
            "island": r.get("island", ""),
        }
    return out


def read_roads(roads_dir: Path = ROADS_DIR) -> list[dict]:
    """Read ``roads.csv`` as a list of ``{road, highway, maxspeed, detour, via: [...]}``."""
    rows = []
    for r in _read_csv(roads_dir / "roads.csv"):
        rows.append(
            {
                "road": r["road"],
                "highway": r["highway"],
                "maxspeed": float(r["maxspeed"]),
                "detour": float(r["detour"]) if r.get("detour") else 1.1,
                "via": [p.strip() for p in r["via"].split(";") if p.strip()],
                "note": r.get("note", ""),
            }
        )
    return rows


def read_ferries(roads_dir: Path = ROADS_DIR) -> list[dict]:
    """Read ``ferries.csv``: ``[{ferry, from_place, to_place, crossing_min, wait_min}]``."""
    return [
        {
            "ferry": r["ferry"],
            "from_place": r["from_place"],
            "to_place": r["to_place"],
            "crossing_min": float(r["crossing_min"]),
            "wait_min": float(r["wait_min"]),
        }
        for r in _read_csv(roads_dir / "ferries.csv")
    ]


def read_districts(path: Path = DISTRICTS_CSV) -> list[dict]:
    """Read the derived district table (see :func:`build_district_table`)."""
    out = []
    for r in _read_csv(path):
        out.append(
            {
                "district_id": r["district_id"],
                "name": r["name"],
                "municipality_code": r["municipality_code"],
                "province": r["province"],
                "urbanity": r["urbanity"],
                "x": float(r["x"]),
                "y": float(r["y"]),
                "area_km2": float(r["area_km2"]),
                "island": r["island"],
                "neighbours": [n for n in r["neighbours"].split(";") if n],
            }
        )
    return out


def inputs_fingerprint(roads_dir: Path = ROADS_DIR, districts_csv: Path = DISTRICTS_CSV) -> str:
    """SHA-256 over the committed input tables and this module's build parameters."""
    h = hashlib.sha256()
    for p in (roads_dir / "places.csv", roads_dir / "roads.csv", roads_dir / "ferries.csv",
              districts_csv):
        h.update(p.read_bytes())
    h.update(
        repr(
            (DISTRICT_DETOUR, sorted(URBANITY_SPEEDS.items()), DEFAULT_LOCAL_SPEED, ACCESS_K,
             ACCESS_RADIUS_M, ACCESS_MAX_M, _BUILD_VERSION)
        ).encode()
    )
    return h.hexdigest()


_BUILD_VERSION = 2


# --------------------------------------------------------------------------------------
# building the graph
# --------------------------------------------------------------------------------------
def _add_two_way(G: nx.MultiDiGraph, u, v, **attrs) -> None:
    G.add_edge(u, v, **attrs)
    G.add_edge(v, u, **attrs)


def _local_speed(urbanity: str) -> float:
    return URBANITY_SPEEDS.get(urbanity, DEFAULT_LOCAL_SPEED)


def build_default_network(
    roads_dir: Path = ROADS_DIR, districts_csv: Path = DISTRICTS_CSV
) -> nx.MultiDiGraph:
    """Build the embedded national network from the committed tables (deterministic).

    Node ids: ``0..D-1`` are the districts in ``districts.csv`` order, ``D..`` the skeleton
    places in ``places.csv`` order (attribute ``place_id`` / ``district_id`` names them).

    Returns
    -------
    networkx.MultiDiGraph
        Graph attribute ``crs = "EPSG:28992"``; nodes ``x, y``; edges ``highway, maxspeed,
        length, travel_time, kind`` (see module docstring).
    """
    places = read_places(roads_dir)
    roads = read_roads(roads_dir)
    ferries = read_ferries(roads_dir)
    districts = read_districts(districts_csv)

    G = nx.MultiDiGraph(crs="EPSG:28992", name="herschik national default",
                        fingerprint=inputs_fingerprint(roads_dir, districts_csv))
    did = {d["district_id"]: i for i, d in enumerate(districts)}
    for i, d in enumerate(districts):
        G.add_node(i, x=d["x"], y=d["y"], district_id=d["district_id"], kind="district")
    pid: dict[str, int] = {}
    for k, (p, a) in enumerate(places.items()):
        n = len(districts) + k
        pid[p] = n
        G.add_node(n, x=a["x"], y=a["y"], place_id=p, kind="place")

    _add_local_roads(G, districts, did)
    _add_skeleton_roads(G, roads, places, pid)
    _add_ferries(G, ferries, places, pid)
    _add_access_roads(G, districts, places, pid)
    return G


def _add_local_roads(G: nx.MultiDiGraph, districts: list[dict[str, Any]],
                     did: dict[str, int]) -> None:
    """Local roads between neighbouring districts."""
    for i, d in enumerate(districts):
        for nb in d["neighbours"]:
            j = did[nb]
            if j <= i:
                continue
            e = districts[j]
            dist = math.hypot(d["x"] - e["x"], d["y"] - e["y"]) * DISTRICT_DETOUR
            vi, vj = _local_speed(d["urbanity"]), _local_speed(e["urbanity"])
            tt = dist / 2 / (vi / 3.6) + dist / 2 / (vj / 3.6)
            _add_two_way(G, i, j, highway="unclassified", maxspeed=round(min(vi, vj)),
                         length=dist, travel_time=tt, kind="district")


def _add_skeleton_roads(G: nx.MultiDiGraph, roads: list[dict[str, Any]],
                        places: dict[str, dict[str, Any]], pid: dict[str, int]) -> None:
    for r in roads:
        for a, b in zip(r["via"][:-1], r["via"][1:], strict=True):
            for p in (a, b):
                if p not in pid:
                    raise ValueError(f"roads.csv {r['road']}: unknown place_id {p!r}")
            pa, pb = places[a], places[b]
            dist = math.hypot(pa["x"] - pb["x"], pa["y"] - pb["y"]) * r["detour"]
            _add_two_way(G, pid[a], pid[b], highway=r["highway"], maxspeed=r["maxspeed"],
                         length=dist, travel_time=dist / (r["maxspeed"] / 3.6),
                         kind="skeleton", ref=r["road"])


def _add_ferries(G: nx.MultiDiGraph, ferries: list[dict[str, Any]],
                 places: dict[str, dict[str, Any]], pid: dict[str, int]) -> None:
    for f in ferries:
        a, b = places[f["from_place"]], places[f["to_place"]]
        dist = math.hypot(a["x"] - b["x"], a["y"] - b["y"])
        tt = (f["crossing_min"] + f["wait_min"]) * 60.0
        _add_two_way(G, pid[f["from_place"]], pid[f["to_place"]], highway="ferry",
                     maxspeed=round(dist / tt * 3.6, 1), length=dist, travel_time=tt,
                     kind="ferry", ref=f["ferry"])


def _add_access_roads(G: nx.MultiDiGraph, districts: list[dict[str, Any]],
                      places: dict[str, dict[str, Any]], pid: dict[str, int]) -> None:
    """Access: skeleton places <-> nearby district centroids of the same island."""
    dxy = np.array([[d["x"], d["y"]] for d in districts])
    disl = np.array([d["island"] for d in districts])
    for isl in sorted(set(disl)):
        idx = np.flatnonzero(disl == isl)
        tree = cKDTree(dxy[idx])
        for p, a in places.items():
            if not a["attach"] or a["island"] != isl:
                continue
            k = min(ACCESS_K, len(idx))
            dd, ii = tree.query([a["x"], a["y"]], k=k)
            dd, ii = np.atleast_1d(dd), np.atleast_1d(ii)
            for rank, (dist0, j) in enumerate(zip(dd, ii, strict=True)):
                if dist0 > (ACCESS_MAX_M if rank == 0 else ACCESS_RADIUS_M):
                    continue
                dj = districts[idx[j]]
                dist = max(dist0, 1.0) * DISTRICT_DETOUR
                v = _local_speed(dj["urbanity"])
                _add_two_way(G, pid[p], int(idx[j]), highway="tertiary", maxspeed=v,
                             length=dist, travel_time=dist / (v / 3.6), kind="access")
