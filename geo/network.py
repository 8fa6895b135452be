"""Road networks: OpenStreetMap extracts, the embedded national default, a compact format.

Every network in herschik is an osmnx-compatible :class:`networkx.MultiDiGraph` projected to
EPSG:28992 (RD New) — graph attribute ``crs``; node attributes ``x, y`` (m); edge attributes
``highway``, ``maxspeed`` (km/h, NaN when untagged), ``speed_kph``, ``length`` (m),
``travel_time`` (s), ``oneway`` — or, at country scale, the same data as flat arrays
(:class:`geo.osm.RoadArrays`, a compact file).

* :func:`build_network_from_osm` — a local OSM extract (``.osm.pbf``, ``.osm``, ``.osm.bz2``)
  streamed by :func:`geo.osm.read_osm` (pyosmium, two passes, numpy topology; Dutch speed,
  access, oneway and ferry rules) -> the osmnx-style graph.
* :func:`default_network` — the embedded national network (:mod:`geo.skeleton`), built once
  and cached on disk (``$HERSCHIK_CACHE_DIR`` or ``~/.cache/herschik``).
* :func:`save_network` / :func:`load_network` / :func:`read_network_arrays` — the compact
  format: one compressed ``.npz`` (see :func:`save_network` for the arrays), checked on read
  (:func:`geo.coverage.check_edge_times`).
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
from herschik.geo import skeleton
from herschik.geo.coverage import check_edge_times

# the speed table lives with the OSM tag rules; re-exported here for osmnx-based callers
from herschik.geo.osm import DUTCH_HWY_SPEEDS, FALLBACK_SPEED, HIGHWAY_CLASSES, RoadArrays, read_osm

from herschik.atomic import atomic_path, write_text
from herschik.derived_cache import cache_dir

#: Target CRS of every network.
CRS = "EPSG:28992"
#: Highway classes kept as drivable from an OSM extract.
DRIVABLE = frozenset(DUTCH_HWY_SPEEDS)

FORMAT_VERSION = 2


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
    import osmnx as ox  # ~1 s: only `network build --download` and GraphML files need it

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

    Streams the file with pyosmium (:func:`geo.osm.read_osm`: ``.osm.pbf``, ``.osm``,
    ``.osm.bz2``) and hands on an osmnx-style ``MultiDiGraph``. For country extracts use
    :func:`geo.osm.read_osm` and :func:`save_network` on the arrays (no Python object per node).

    Parameters
    ----------
    osm_path
        The extract.
    hwy_speeds
        Speeds per highway class where no limit is tagged (default Dutch speeds).

    Returns
    -------
    networkx.MultiDiGraph
        Projected to EPSG:28992 with ``speed_kph``, ``travel_time``, ``length``, ``maxspeed``,
        ``highway``, ``oneway``, ``osmid``.
    """

    return read_osm(osm_path, hwy_speeds).to_networkx()


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
def _graph_arrays(G: nx.MultiDiGraph) -> dict[str, np.ndarray]:
    nodes = list(G.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    try:
        node_id = np.array(nodes, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        node_id = np.arange(len(nodes), dtype=np.int64)
    E = G.number_of_edges()
    u = np.empty(E, np.int32)
    v = np.empty(E, np.int32)
    length, tt, ms, speed = np.empty(E), np.empty(E), np.empty(E), np.empty(E)
    oneway = np.zeros(E, bool)
    hw = []
    for i, (a, b, d) in enumerate(G.edges(data=True)):
        u[i], v[i] = pos[a], pos[b]
        length[i] = float(d.get("length", np.nan))
        tt[i] = float(d["travel_time"])
        ms[i] = _maxspeed_number(d.get("maxspeed"), d.get("speed_kph"))
        sk = d.get("speed_kph")
        speed[i] = float(sk) if sk is not None else (
            length[i] / tt[i] * 3.6 if tt[i] > 0 else np.nan)
        oneway[i] = bool(d.get("oneway", False))
        hw.append(_highway_values(d.get("highway", ""))[0])
    names, codes = np.unique(np.array(hw, dtype=str), return_inverse=True)
    return {
        "node_id": node_id,
        "x": np.array([G.nodes[n]["x"] for n in nodes], dtype=np.float64),
        "y": np.array([G.nodes[n]["y"] for n in nodes], dtype=np.float64),
        "u": u, "v": v, "length": length, "travel_time": tt, "maxspeed": ms,
        "speed_kph": speed.astype(np.float32), "oneway": oneway,
        "highway": codes.astype(np.int16), "highway_names": names,
    }


def _road_arrays(net) -> dict[str, np.ndarray]:
    return {
        "node_id": net.node_id, "x": net.x, "y": net.y, "u": net.u.astype(np.int32),
        "v": net.v.astype(np.int32), "length": net.length, "travel_time": net.travel_time,
        "maxspeed": net.maxspeed.astype(np.float64), "speed_kph": net.speed_kph,
        "oneway": net.oneway, "osmid": net.osmid, "highway": net.highway.astype(np.int16),
        "highway_names": np.array(HIGHWAY_CLASSES, dtype=str),
    }


def arrays_fingerprint(x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray,
                       travel_time: np.ndarray) -> str:
    """SHA-256 over node coordinates and the directed edges with their times."""
    h = hashlib.sha256(b"herschik-network-arrays")
    for a in (x, y, u, v, travel_time):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def save_network(G, target) -> Path | None:
    """Write a network in the compact format: one compressed ``.npz``.

    ``G`` is an osmnx-style ``MultiDiGraph`` or a :class:`geo.osm.RoadArrays` (country
    networks are written from the arrays, never through networkx). ``target`` is a path
    (written to a temporary file and renamed into place) or an open binary file (the CLI
    passes the one of its atomic writer).

    Arrays: ``node_id`` (int64 original ids), ``x``, ``y`` (float64, m, in ``crs``);
    ``u``, ``v`` (int32 positions into the node arrays), ``length`` (m), ``travel_time`` (s),
    ``maxspeed`` (km/h tagged, NaN unknown), ``speed_kph`` (float32), ``oneway`` (bool),
    ``highway`` (int16 code into ``highway_names``), ``osmid`` (way id; OSM builds only);
    ``meta`` (JSON: format, version, crs, name, fingerprint, build facts). Multi-valued
    ``highway`` tags keep the first.
    """

    if isinstance(G, RoadArrays):
        arrays = _road_arrays(G)
        crs, name, extra = G.crs, G.meta.get("name", "osm"), dict(G.meta)
    else:
        arrays = _graph_arrays(G)
        crs, name = str(G.graph.get("crs", CRS)), G.graph.get("name")
        extra = {}
        if name is None:
            name = Path(target).stem if isinstance(target, str | os.PathLike) else "network"
    meta = {
        **{k: v for k, v in extra.items() if isinstance(v, int | float | str)},
        "format": "herschik-network",
        "version": FORMAT_VERSION,
        "crs": str(crs),
        "name": str(name),
        "fingerprint": arrays_fingerprint(arrays["x"], arrays["y"], arrays["u"], arrays["v"],
                                          arrays["travel_time"]),
    }
    arrays["meta"] = np.array(json.dumps(meta))
    if not isinstance(target, str | os.PathLike):
        np.savez_compressed(target, **arrays)
        return None

    path = Path(target)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def is_osm_file(path: str | Path) -> bool:
    """Whether ``path`` names an OSM extract (built on load) rather than a compact network."""
    return Path(path).name.lower().endswith((".osm", ".osm.bz2", ".pbf", ".osm.gz"))


def read_network_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and meta of a compact network file, checked for shape and sanity.

    Raises
    ------
    ValueError
        Not a herschik network, inconsistent arrays, or implausible values (see
        :func:`geo.coverage.check_edge_times`).
    """
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
    except Exception as e:  # any unreadable file is a bad network file
        raise ValueError(f"{path}: not a herschik network file ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != "herschik-network":
        raise ValueError(f"{path}: not a herschik network file")
    need = ("node_id", "x", "y", "u", "v", "length", "travel_time", "maxspeed", "highway",
            "highway_names")
    try:
        arrays = {k: z[k] for k in z.files if k != "meta"}
    except Exception as e:  # truncated / corrupt member
        raise ValueError(f"{path}: not a readable herschik network file ({e})") from e
    missing = [k for k in need if k not in arrays]
    if missing:
        raise ValueError(f"{path}: network file lacks the arrays {', '.join(missing)}")
    n, m = len(arrays["node_id"]), len(arrays["u"])
    if len(arrays["x"]) != n or len(arrays["y"]) != n or any(
        len(arrays[k]) != m for k in ("v", "length", "travel_time", "maxspeed", "highway")
    ):
        raise ValueError(f"{path}: network arrays of inconsistent length")
    if m and (arrays["u"].min() < 0 or arrays["v"].min() < 0 or
              max(arrays["u"].max(), arrays["v"].max()) >= n):
        raise ValueError(f"{path}: edge end outside the node table")

    check_edge_times(arrays, str(path))
    return arrays, meta


def file_fingerprint(path: str | Path) -> str | None:
    """SHA-256 of a compact network file's bytes (the matrix cache key of a network file), or
    ``None`` if the file cannot be read."""
    h = hashlib.sha256(b"herschik-network-file")
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def load_network(path: str | Path) -> nx.MultiDiGraph:
    """Read a network written by :func:`save_network` (or a ``.osm``/``.osm.bz2``/``.pbf``).

    Raises
    ------
    ValueError
        If the file is not a herschik network, or its values are implausible.
    """
    path = Path(path)
    if is_osm_file(path):
        return build_network_from_osm(path)
    z, meta = read_network_arrays(path)
    G = nx.MultiDiGraph(crs=meta["crs"], name=meta.get("name", path.stem))
    node_id = z["node_id"].tolist()
    x, y = z["x"].tolist(), z["y"].tolist()
    G.add_nodes_from((n, {"x": a, "y": b}) for n, a, b in zip(node_id, x, y, strict=True))
    names = z["highway_names"].tolist()
    hw = z["highway"].tolist()
    u, v = z["u"].tolist(), z["v"].tolist()
    length, tt, ms = z["length"].tolist(), z["travel_time"].tolist(), z["maxspeed"].tolist()
    m = len(u)
    speed = z["speed_kph"].tolist() if "speed_kph" in z else [None] * m
    oneway = z["oneway"].tolist() if "oneway" in z else [False] * m

    def attrs(i: int) -> dict:
        d = {"highway": names[hw[i]], "length": length[i], "travel_time": tt[i],
             "maxspeed": ms[i], "oneway": oneway[i]}
        if speed[i] is not None:
            d["speed_kph"] = speed[i]
        return d

    G.add_edges_from((node_id[u[i]], node_id[v[i]], attrs(i)) for i in range(m))
    return G


# --------------------------------------------------------------------------------------
# the embedded national default
# --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def default_network() -> nx.MultiDiGraph:
    """The embedded national road network (see :mod:`geo.skeleton`), cached.

    Built from the committed tables under ``geo/data/roads`` and ``geo/data/network`` on first
    use (about a second), then kept in memory and, in the compact format, on disk under
    :func:`cache_dir` keyed by a hash of the input tables. Treat the result as read-only.
    """

    fp = skeleton.inputs_fingerprint()
    path = cache_dir() / "network" / f"default-{fp[:16]}.npz"
    digest_path = path.with_suffix(".sha256")
    G = None
    try:
        # Trusted only when the file's SHA-256 is the one written beside it: a corrupt,
        # truncated or edited entry is rebuilt, never used and never fatal (issue 27).
        if path.is_file() and digest_path.is_file() and hashlib.sha256(
            path.read_bytes()
        ).hexdigest() == digest_path.read_text(encoding="ascii").strip():
            G = load_network(path)
    except Exception:  # zip, npy and OS errors alike: an unusable entry
        G = None
    if G is None:
        G = skeleton.build_default_network()
        try:
            save_network(G, path)

            write_text(digest_path, hashlib.sha256(path.read_bytes()).hexdigest() + "\n",
                       flag="network cache")
        except OSError:
            pass
    G.graph["name"] = "default"
    G.graph["fingerprint"] = fp
    return G


