"""Origin-destination travel times on a road graph: CSR arrays + scipy Dijkstra, disk cache.

The graph (any osmnx-compatible MultiDiGraph with node ``x, y`` and edge ``travel_time`` in
seconds; default :func:`geo.network.default_network`) is converted once to CSR arrays
(:func:`to_csr`, memoised per graph object; parallel edges keep the fastest). Points are
snapped to the nearest graph node (``scipy.spatial.cKDTree``) with an access time for the
snap distance (distance x ``access_detour`` at ``access_kmh``). Area -> site times come from
ONE ``scipy.sparse.csgraph.dijkstra`` call from the (unique) site nodes on the REVERSED
graph, with ``limit`` for the travel cap (in chunks of sources on very large graphs).

Matrices (with the snap distances) are cached on disk (``<cache_dir>/matrices/<sha256>.npz``)
keyed by the network fingerprint, both point sets, the speed/access profile and the limit.
:func:`od_matrix_networkx` is the plain networkx reference used by tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse as sp
from herschik.geo import skeleton
from herschik.geo.network import (
    default_network,
    file_fingerprint,
    is_osm_file,
    load_network,
    read_network_arrays,
)
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from herschik.atomic import atomic_path
from herschik.derived_cache import cache_dir

#: Speed (km/h) and detour factor of the access leg between a point and its snapped node.
ACCESS_KMH = 40.0
ACCESS_DETOUR = 1.3
#: Bump when the computation changes, so that old cached matrices are not reused.
CACHE_VERSION = 2
#: Memory budget (bytes) for one chunk of Dijkstra distance rows.
_CHUNK_BYTES = 256 * 2**20


@dataclass(eq=False)
class CSRNetwork:
    """A road graph as CSR arrays (travel time in seconds) plus a KD-tree of its nodes.

    Attributes
    ----------
    node_ids
        Original node ids (position ``i`` in the arrays = ``node_ids[i]``).
    xy
        Node coordinates (N, 2), metres.
    forward, reverse
        CSR matrices (N, N) of travel seconds, ``reverse = forward.T``.
    fingerprint
        SHA-256 over xy and the CSR arrays (the cache key of the network).
    """

    node_ids: np.ndarray
    xy: np.ndarray
    forward: sp.csr_matrix
    reverse: sp.csr_matrix
    fingerprint: str
    tree: cKDTree = field(repr=False)

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @classmethod
    def from_arrays(
        cls,
        xy: np.ndarray,
        u: np.ndarray,
        v: np.ndarray,
        seconds: np.ndarray,
        node_ids: np.ndarray | None = None,
        fingerprint: str | None = None,
    ) -> CSRNetwork:
        """Build from edge arrays (positions ``u -> v`` into ``xy``, weights in seconds)."""
        xy = np.ascontiguousarray(xy, dtype=np.float64)
        n = len(xy)
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        w = np.maximum(np.asarray(seconds, dtype=np.float64), 1e-3)
        ok = (u != v) & np.isfinite(w)
        u, v, w = u[ok], v[ok], w[ok]
        order = np.lexsort((w, v, u))
        u, v, w = u[order], v[order], w[order]
        keep = np.ones(len(u), bool)
        keep[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        fwd = sp.csr_matrix((w[keep], (u[keep], v[keep])), shape=(n, n))
        fwd.sort_indices()
        rev = fwd.T.tocsr()
        rev.sort_indices()
        if fingerprint is None:
            h = hashlib.sha256()
            for a in (xy, fwd.indptr, fwd.indices, fwd.data):
                h.update(np.ascontiguousarray(a).tobytes())
            fingerprint = h.hexdigest()
        ids = np.arange(n) if node_ids is None else np.asarray(node_ids)
        return cls(ids, xy, fwd, rev, fingerprint, cKDTree(xy))

    def snap(
        self, xy: np.ndarray, access_kmh: float = ACCESS_KMH, access_detour: float = ACCESS_DETOUR
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest node positions and access seconds for points ``xy`` (P, 2)."""
        xy = _as_xy(xy)
        if len(xy) == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        d, i = self.tree.query(xy)
        return i.astype(np.int64), d * access_detour / (access_kmh / 3.6)


_CSR_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def to_csr(G: nx.MultiDiGraph, weight: str = "travel_time", refresh: bool = False) -> CSRNetwork:
    """Convert ``G`` to a :class:`CSRNetwork` (memoised per graph object; treat ``G`` as
    read-only afterwards or pass ``refresh=True``)."""
    if not refresh and G in _CSR_MEMO and _CSR_MEMO[G][0] == weight:
        return _CSR_MEMO[G][1]
    nodes = list(G.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    xy = np.array([(G.nodes[n]["x"], G.nodes[n]["y"]) for n in nodes], dtype=np.float64)
    m = G.number_of_edges()
    u = np.empty(m, np.int64)
    v = np.empty(m, np.int64)
    w = np.empty(m)
    for k, (a, b, t) in enumerate(G.edges(data=weight)):
        u[k], v[k] = pos[a], pos[b]
        w[k] = np.inf if t is None else float(t)
    if all(isinstance(n, int | np.integer) for n in nodes):
        ids = np.array(nodes, dtype=np.int64)
    else:
        ids = np.empty(len(nodes), dtype=object)
        ids[:] = nodes
    net = CSRNetwork.from_arrays(xy, u, v, w, node_ids=ids)
    _CSR_MEMO[G] = (weight, net)
    return net


def _as_xy(xy) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(xy, dtype=np.float64))
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"expected an (n, 2) array of x, y; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("coordinates must be finite")
    return a


def load_csr(path: str | os.PathLike) -> CSRNetwork:
    """A network file as a :class:`CSRNetwork`, straight from its arrays (no networkx).

    Compact files (:func:`geo.network.save_network`) are read and checked
    (:func:`geo.network.read_network_arrays`); OSM extracts are built first.
    """

    if is_osm_file(path):
        return to_csr(load_network(path))
    z, meta = read_network_arrays(path)
    xy = np.column_stack([z["x"], z["y"]])
    return CSRNetwork.from_arrays(xy, z["u"], z["v"], z["travel_time"], node_ids=z["node_id"],
                                  fingerprint=_file_key(file_fingerprint(path)))


def _file_key(fp: str | None) -> str | None:
    return None if not fp else "file:" + fp


def _resolve(network) -> tuple[CSRNetwork | None, str, object]:
    """(csr or None if not built yet, fingerprint, graph-or-loader) for ``network``."""
    if network is None:
        return None, "default:" + skeleton.inputs_fingerprint(), None
    if isinstance(network, CSRNetwork):
        return network, network.fingerprint, network
    if isinstance(network, str | os.PathLike):
        if not is_osm_file(network):
            fp = _file_key(file_fingerprint(network))
            if fp is not None:  # the cache can answer without reading the whole network
                return None, fp, network
        net = load_csr(network)
        return net, net.fingerprint, network
    net = to_csr(network)
    return net, net.fingerprint, network


def _csr_of(network) -> CSRNetwork:
    if network is None:
        return to_csr(default_network())
    if isinstance(network, CSRNetwork):
        return network
    if isinstance(network, str | os.PathLike):
        return load_csr(network)
    return to_csr(network)


def matrix_cache_dir() -> Path:
    """Folder of cached matrices: ``<herschik.derived_cache.cache_dir()>/matrices``."""

    return cache_dir() / "matrices"


def _cache_key(fp: str, a: np.ndarray, s: np.ndarray, profile: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "net": fp, **profile}, sort_keys=True).encode())
    h.update(np.asarray(a.shape).tobytes() + a.tobytes())
    h.update(np.asarray(s.shape).tobytes() + s.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Travel:
    """An OD matrix with the snap distances behind it (for the coverage checks)."""

    minutes: np.ndarray  #: (A, S) car minutes, ``inf`` unreachable / above the limit
    area_snap_m: np.ndarray  #: (A,) metres from each area point to its network node
    site_snap_m: np.ndarray  #: (S,) metres from each site point to its network node


def area_site_travel(
    area_xy: np.ndarray,
    site_xy: np.ndarray,
    network=None,
    limit_min: float | None = None,
    *,
    access_kmh: float = ACCESS_KMH,
    access_detour: float = ACCESS_DETOUR,
    time_factor: float = 1.0,
    use_cache: bool = True,
) -> Travel:
    """Travel minutes by car from every area point to every site point, and snap distances.

    Parameters
    ----------
    area_xy, site_xy
        Arrays (A, 2) and (S, 2) of x, y in the network CRS (EPSG:28992 metres).
    network
        ``None`` for the embedded national default, a MultiDiGraph with ``travel_time``, a
        :class:`CSRNetwork`, or a path to a network file (read straight into CSR arrays,
        :func:`load_csr`; on a cache hit a compact file is not read beyond its fingerprint).
    limit_min
        Travel cap: times above it are ``inf`` (and Dijkstra stops early).
    access_kmh, access_detour
        Access leg between a point and its snapped node: distance x detour at this speed.
    time_factor
        Multiplies the network travel times (speed calibration; 1 = as in the graph).
    use_cache
        Read/write the on-disk matrix cache (:func:`matrix_cache_dir`).
    """
    a = _as_xy(area_xy)
    s = _as_xy(site_xy)
    net, fp, _ = _resolve(network)
    profile = {"access_kmh": float(access_kmh), "access_detour": float(access_detour),
               "time_factor": float(time_factor),
               "limit_min": None if limit_min is None else float(limit_min)}
    path = None
    key = _cache_key(fp, a, s, profile)
    if use_cache:
        path = matrix_cache_dir() / f"{key}.npz"
        cached = _read_cache_entry(path, key, (len(a), len(s)))
        if cached is not None:
            return cached
    if net is None:
        net = _csr_of(network)
    out = _compute(net, a, s, limit_min, access_kmh, access_detour, time_factor)
    if path is not None:
        try:
            with atomic_path(path, flag="matrix cache") as tmp:
                np.savez(tmp, minutes=out.minutes, area_snap_m=out.area_snap_m,
                         site_snap_m=out.site_snap_m, key=np.array(key),
                         digest=np.array(_travel_digest(out)))
        except OSError:
            pass
    return out


def _travel_digest(travel: Travel) -> str:
    """SHA-256 of a matrix's contents (shapes, dtypes and bytes of its three arrays)."""
    digest = hashlib.sha256()
    for array in (travel.minutes, travel.area_snap_m, travel.site_snap_m):
        array = np.ascontiguousarray(array, dtype=np.float64)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


#: The largest cache entry read (a national districts x hospitals matrix is ~25 MB).
MAX_CACHE_ENTRY_BYTES = 1 << 30


def _read_cache_entry(path: Path, key: str, shape: tuple[int, int]) -> Travel | None:
    """The cached matrix if the entry is intact: a regular file that names this key and whose
    arrays hash to its digest, with plausible values. Anything else (corrupt, truncated,
    edited, written by an older version) is ignored and rebuilt, never trusted or fatal."""

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CACHE_ENTRY_BYTES:
            return None
        with np.load(path, allow_pickle=False) as z:
            out = Travel(np.asarray(z["minutes"], dtype=np.float64),
                         np.asarray(z["area_snap_m"], dtype=np.float64),
                         np.asarray(z["site_snap_m"], dtype=np.float64))
            stored_key, stored_digest = str(z["key"]), str(z["digest"])
    except Exception:  # zip, npy and OS errors alike: an unusable entry
        return None
    if stored_key != key or out.minutes.shape != shape or stored_digest != _travel_digest(out):
        return None
    finite = np.isfinite(out.minutes)
    if np.isnan(out.minutes).any() or (out.minutes[finite] < 0).any():
        return None
    if not (np.isfinite(out.area_snap_m).all() and np.isfinite(out.site_snap_m).all()):
        return None
    return out


def area_site_minutes(
    area_xy: np.ndarray,
    site_xy: np.ndarray,
    network=None,
    limit_min: float | None = None,
    *,
    access_kmh: float = ACCESS_KMH,
    access_detour: float = ACCESS_DETOUR,
    time_factor: float = 1.0,
    use_cache: bool = True,
) -> np.ndarray:
    """Travel minutes by car from every area point to every site point.

    Same parameters as :func:`area_site_travel`.

    Returns
    -------
    numpy.ndarray
        (A, S) float64 minutes; ``inf`` where unreachable or above ``limit_min``.
    """
    return area_site_travel(
        area_xy, site_xy, network, limit_min, access_kmh=access_kmh,
        access_detour=access_detour, time_factor=time_factor, use_cache=use_cache,
    ).minutes


def _compute(net: CSRNetwork, a, s, limit_min, access_kmh, access_detour,
             time_factor) -> Travel:
    A, S = len(a), len(s)
    out = np.full((A, S), np.inf)
    if A == 0 or S == 0:
        return Travel(out, np.zeros(A), np.zeros(S))
    ad, an = net.tree.query(a)
    sd, sn = net.tree.query(s)
    to_s = access_detour / (access_kmh / 3.6)
    aacc, sacc = ad * to_s, sd * to_s
    uniq, inv = np.unique(sn, return_inverse=True)
    lim = np.inf if limit_min is None else float(limit_min) * 60.0 / time_factor
    chunk = max(1, int(_CHUNK_BYTES // (8 * max(net.n_nodes, 1))))
    net_s = np.empty((len(uniq), A))
    for i in range(0, len(uniq), chunk):
        d = dijkstra(net.reverse, directed=True, indices=uniq[i : i + chunk], limit=lim)
        net_s[i : i + chunk] = d[:, an]
        del d
    out = (net_s[inv].T * time_factor + aacc[:, None] + sacc[None, :]) / 60.0
    if limit_min is not None:
        out[out > limit_min] = np.inf
    return Travel(out, ad, sd)


def od_matrix_networkx(
    area_xy: np.ndarray,
    site_xy: np.ndarray,
    network=None,
    limit_min: float | None = None,
    *,
    access_kmh: float = ACCESS_KMH,
    access_detour: float = ACCESS_DETOUR,
    time_factor: float = 1.0,
) -> np.ndarray:
    """Reference implementation of :func:`area_site_minutes` with plain networkx Dijkstra.

    Same snapping and access legs; one ``single_source_dijkstra_path_length`` per site on the
    reversed graph. Slow; for tests and benchmarks.
    """

    G = default_network() if network is None else network
    net = to_csr(G)
    a, s = _as_xy(area_xy), _as_xy(site_xy)
    an, aacc = net.snap(a, access_kmh, access_detour)
    sn, sacc = net.snap(s, access_kmh, access_detour)
    R = G.reverse(copy=False)
    cutoff = None if limit_min is None else float(limit_min) * 60.0 / time_factor
    out = np.full((len(a), len(s)), np.inf)
    ids = net.node_ids.tolist()
    area_ids = [ids[i] for i in an]
    for j, node in enumerate(sn):
        dist = nx.single_source_dijkstra_path_length(
            R, ids[node], cutoff=cutoff, weight="travel_time"
        )
        col = np.array([dist.get(n, np.inf) for n in area_ids], dtype=float)
        out[:, j] = (col * time_factor + aacc + sacc[j]) / 60.0
    if limit_min is not None:
        out[out > limit_min] = np.inf
    return out
