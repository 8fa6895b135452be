"""Road networks: OpenStreetMap loading (osmnx), the embedded national default, a compact format.

Every network in herschik is an osmnx-compatible :class:`networkx.MultiDiGraph` projected to
EPSG:28992 (RD New): graph attribute ``crs``; node attributes ``x, y`` (m); edge attributes
``highway``, ``maxspeed`` (km/h, NaN when unknown), ``length`` (m) and ``travel_time`` (s).

* :func:`build_network_from_osm` — a local OSM extract (``.osm``, ``.osm.bz2`` via osmnx
  ``graph_from_xml``; ``.osm.pbf`` via the optional ``pyrosm``) -> drivable roads, Dutch
  default speeds per highway class (:data:`DUTCH_HWY_SPEEDS`, ``maxspeed`` tags honoured by
  ``osmnx.add_edge_speeds``), ``add_edge_travel_times``, largest strongly connected
  component, projected to EPSG:28992.
* :func:`default_network` — the embedded national network (:mod:`geo.skeleton`), built once
  and cached on disk (``$HERSCHIK_CACHE_DIR`` or ``~/.cache/herschik``).
* :func:`save_network` / :func:`load_network` — the compact format: one compressed ``.npz``
  (see :func:`save_network` for the arrays).
* :func:`download_network` — opt-in online query through osmnx (never used by default).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import networkx as nx
import numpy as np

#: Target CRS of every network.
CRS = "EPSG:28992"

#: Dutch default driving speeds (km/h) per OSM highway class, used where ``maxspeed`` is absent.
DUTCH_HWY_SPEEDS: dict[str, float] = {
    "motorway": 115.0,
    "motorway_link": 70.0,
    "trunk": 90.0,
    "trunk_link": 60.0,
    "primary": 80.0,
    "primary_link": 50.0,
    "secondary": 70.0,
    "secondary_link": 50.0,
    "tertiary": 55.0,
    "tertiary_link": 40.0,
    "unclassified": 45.0,
    "residential": 30.0,
    "living_street": 15.0,
    "service": 20.0,
    "road": 40.0,
}
#: Highway classes kept as drivable from an OSM extract.
DRIVABLE = frozenset(DUTCH_HWY_SPEEDS)
#: Speed (km/h) for drivable classes missing from :data:`DUTCH_HWY_SPEEDS`.
FALLBACK_SPEED = 40.0

FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------
# OSM
# --------------------------------------------------------------------------------------
def _highway_values(h) -> list[str]:
    if isinstance(h, list | tuple | set):
        return [str(v) for v in h]
    return [str(h)]


def _keep_drivable(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Drop edges that are not drivable (footways, cycleways, tracks, no access ...)."""
    drop = []
    for u, v, k, d in G.edges(keys=True, data=True):
        hw = _highway_values(d.get("highway", ""))
        access = str(d.get("access", "")) + str(d.get("motor_vehicle", ""))
        if not any(h in DRIVABLE for h in hw) or "no" in access or "private" in access:
            drop.append((u, v, k))
    G.remove_edges_from(drop)
    G.remove_nodes_from([n for n in list(G.nodes) if G.degree(n) == 0])
    return G


def finish_osm_graph(
    G: nx.MultiDiGraph, hwy_speeds: dict[str, float] | None = None, to_crs: str = CRS
) -> nx.MultiDiGraph:
    """Drivable roads, speeds, travel times, largest strongly connected component, projection.

    Parameters
    ----------
    G
        Unprojected graph as returned by osmnx (``graph_from_xml``, ``graph_from_place``).
    hwy_speeds
        Speeds (km/h) per highway class where ``maxspeed`` is absent; default
        :data:`DUTCH_HWY_SPEEDS`.
    to_crs
        Target CRS (default EPSG:28992).
    """
    import osmnx as ox

    G = _keep_drivable(G)
    if G.number_of_edges() == 0:
        raise ValueError("the OSM data contains no drivable roads")
    G = ox.add_edge_speeds(G, hwy_speeds=hwy_speeds or DUTCH_HWY_SPEEDS, fallback=FALLBACK_SPEED)
    G = ox.add_edge_travel_times(G)
    G = ox.truncate.largest_component(G, strongly=True)
    G = ox.project_graph(G, to_crs=to_crs)
    for _, _, d in G.edges(data=True):
        d["maxspeed"] = _maxspeed_number(d.get("maxspeed"), d.get("speed_kph"))
    return G


def _maxspeed_number(m, fallback) -> float:
    """A single km/h number for an OSM ``maxspeed`` tag (lists -> mean; unknown -> fallback)."""
    vals = []
    for v in m if isinstance(m, list) else [m]:
        try:
            s = str(v).strip().lower()
            vals.append(float(s.replace("mph", "")) * (1.609 if "mph" in s else 1.0))
        except (TypeError, ValueError):
            continue
    if vals:
        return float(np.mean(vals))
    return float(fallback) if fallback is not None else float("nan")


def build_network_from_osm(
    osm_path: str | Path, hwy_speeds: dict[str, float] | None = None
) -> nx.MultiDiGraph:
    """Load a local OSM extract as a drivable, projected, strongly connected road graph.

    Parameters
    ----------
    osm_path
        ``.osm`` / ``.osm.bz2`` (OSM XML, read with ``osmnx.graph_from_xml``) or ``.osm.pbf``
        (needs the optional ``pyrosm`` package: ``pip install herschik[pbf]``).
    hwy_speeds
        Speeds per highway class where ``maxspeed`` is missing (default Dutch speeds).

    Returns
    -------
    networkx.MultiDiGraph
        Projected to EPSG:28992 with ``speed_kph``, ``travel_time``, ``length``, ``maxspeed``.
    """
    import osmnx as ox

    p = Path(osm_path)
    if not p.exists():
        raise FileNotFoundError(p)
    name = p.name.lower()
    if name.endswith(".pbf"):
        G = _graph_from_pbf(p)
    elif name.endswith((".osm", ".osm.bz2", ".xml", ".xml.bz2")):
        G = ox.graph_from_xml(p, bidirectional=False, simplify=True, retain_all=True)
    else:
        raise ValueError(f"{p}: expected .osm, .osm.bz2 or .osm.pbf")
    G = finish_osm_graph(G, hwy_speeds)
    G.graph["name"] = p.name
    return G


def _graph_from_pbf(path: Path) -> nx.MultiDiGraph:
    try:
        import pyrosm
    except ImportError as e:  # pragma: no cover - depends on the optional extra
        raise ImportError(
            f"{path}: reading .osm.pbf needs the optional package pyrosm "
            "(pip install 'herschik[pbf]'), or convert the file to .osm with osmium"
        ) from e
    import osmnx as ox

    osm = pyrosm.OSM(str(path))
    nodes, edges = osm.get_network(network_type="driving", nodes=True)
    G = osm.to_graph(nodes, edges, graph_type="networkx")
    G = nx.MultiDiGraph(G)
    G.graph.setdefault("crs", "EPSG:4326")
    return ox.simplification.simplify_graph(G) if not G.graph.get("simplified") else G


def download_network(place: str, hwy_speeds: dict[str, float] | None = None) -> nx.MultiDiGraph:
    """Opt-in: download the drivable network of ``place`` with osmnx (needs internet).

    Never called by default or by the tests; the CLI exposes it as ``--download PLACE``.
    """
    import osmnx as ox

    G = ox.graph_from_place(place, network_type="drive", simplify=True)
    G = finish_osm_graph(G, hwy_speeds)
    G.graph["name"] = place
    return G


# --------------------------------------------------------------------------------------
# compact format
# --------------------------------------------------------------------------------------
def save_network(G: nx.MultiDiGraph, path: str | Path) -> Path:
    """Write ``G`` in the compact format: one compressed ``.npz`` (written atomically).

    Arrays: ``node_id`` (int64 original ids), ``x``, ``y`` (float64, m, in ``crs``);
    ``u``, ``v`` (int32 positions into the node arrays), ``length`` (m), ``travel_time`` (s),
    ``maxspeed`` (km/h, NaN unknown), ``highway`` (int16 code into ``highway_names``);
    ``meta`` (JSON: format version, crs, name). Multi-valued ``highway`` tags keep the first.
    """
    path = Path(path)
    nodes = list(G.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    try:
        node_id = np.array(nodes, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        node_id = np.arange(len(nodes), dtype=np.int64)
    x = np.array([G.nodes[n]["x"] for n in nodes], dtype=np.float64)
    y = np.array([G.nodes[n]["y"] for n in nodes], dtype=np.float64)
    E = G.number_of_edges()
    u = np.empty(E, np.int32)
    v = np.empty(E, np.int32)
    length = np.empty(E)
    tt = np.empty(E)
    ms = np.empty(E)
    hw = []
    for i, (a, b, d) in enumerate(G.edges(data=True)):
        u[i], v[i] = pos[a], pos[b]
        length[i] = float(d.get("length", np.nan))
        tt[i] = float(d["travel_time"])
        ms[i] = _maxspeed_number(d.get("maxspeed"), d.get("speed_kph"))
        hw.append(_highway_values(d.get("highway", ""))[0])
    names, codes = np.unique(np.array(hw, dtype=str), return_inverse=True)
    meta = {
        "format": "herschik-network",
        "version": FORMAT_VERSION,
        "crs": str(G.graph.get("crs", CRS)),
        "name": str(G.graph.get("name", path.stem)),
    }
    from herschik.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f, node_id=node_id, x=x, y=y, u=u, v=v, length=length, travel_time=tt,
            maxspeed=ms, highway=codes.astype(np.int16), highway_names=names,
            meta=np.array(json.dumps(meta)),
        )
    return path


def load_network(path: str | Path) -> nx.MultiDiGraph:
    """Read a network written by :func:`save_network` (or a ``.osm``/``.osm.bz2``/``.pbf``).

    Raises
    ------
    ValueError
        If the file is not a herschik network.
    """
    path = Path(path)
    if path.name.lower().endswith((".osm", ".osm.bz2", ".pbf")):
        return build_network_from_osm(path)
    try:
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
    except Exception as e:  # noqa: BLE001 - any unreadable file is a bad network file
        raise ValueError(f"{path}: not a herschik network file ({e})") from e
    if meta.get("format") != "herschik-network":
        raise ValueError(f"{path}: not a herschik network file")
    G = nx.MultiDiGraph(crs=meta["crs"], name=meta.get("name", path.stem))
    node_id = z["node_id"].tolist()
    x, y = z["x"].tolist(), z["y"].tolist()
    G.add_nodes_from((n, {"x": a, "y": b}) for n, a, b in zip(node_id, x, y, strict=True))
    names = z["highway_names"].tolist()
    hw = z["highway"].tolist()
    u, v = z["u"].tolist(), z["v"].tolist()
    length, tt, ms = z["length"].tolist(), z["travel_time"].tolist(), z["maxspeed"].tolist()
    G.add_edges_from(
        (node_id[u[i]], node_id[v[i]],
         {"highway": names[hw[i]], "length": length[i], "travel_time": tt[i],
          "maxspeed": ms[i]})
        for i in range(len(u))
    )
    return G


# --------------------------------------------------------------------------------------
# the embedded national default
# --------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The on-disk cache: ``$HERSCHIK_CACHE_DIR``, else ``$XDG_CACHE_HOME/herschik``, else
    ``~/.cache/herschik``."""
    env = os.environ.get("HERSCHIK_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "herschik"


@functools.lru_cache(maxsize=1)
def default_network() -> nx.MultiDiGraph:
    """The embedded national road network (see :mod:`geo.skeleton`), cached.

    Built from the committed tables under ``geo/data/roads`` and ``geo/data/network`` on first
    use (about a second), then kept in memory and, in the compact format, on disk under
    :func:`cache_dir` keyed by a hash of the input tables. Treat the result as read-only.
    """
    from herschik.geo import skeleton

    fp = skeleton.inputs_fingerprint()
    path = cache_dir() / "network" / f"default-{fp[:16]}.npz"
    G = None
    if path.exists():
        try:
            G = load_network(path)
        except ValueError:
            G = None
    if G is None:
        G = skeleton.build_default_network()
        try:
            save_network(G, path)
        except OSError:
            pass
    G.graph["name"] = "default"
    G.graph["fingerprint"] = fp
    return G


def network_fingerprint(G: nx.MultiDiGraph) -> str:
    """Stable SHA-256 of a graph's nodes (x, y) and edges (u, v, travel_time)."""
    fp = G.graph.get("fingerprint")
    if isinstance(fp, str) and G.graph.get("name") == "default":
        return fp
    h = hashlib.sha256()
    nodes = list(G.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    h.update(np.array([[G.nodes[n]["x"], G.nodes[n]["y"]] for n in nodes], dtype=float)
             .tobytes())
    e = np.array([(pos[a], pos[b], d["travel_time"]) for a, b, d in G.edges(data=True)],
                 dtype=float)
    h.update(e.tobytes())
    return h.hexdigest()
