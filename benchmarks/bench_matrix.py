"""Benchmarks of the OD-matrix layer (not a timed unit test).

``python -m benchmarks.bench_matrix`` prints a JSON dict:

* national matrix (all 3,340 district centroids x site points), cold (no disk cache; the CSR
  conversion of the default network included) and cached (disk-cache hit);
* per-source Dijkstra time scipy (CSR, one call from all sources) vs networkx
  (``single_source_dijkstra_path_length``) on the same graph and the ratio, on the national
  default network and on a synthetic ~500k-node grid-like graph.

All timings are medians of ``repeats`` runs.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import dijkstra


def _median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def default_sites(n: int = 100, seed: int = 0) -> np.ndarray:
    """Stand-in site points: ``n`` district centroids (the lead wires the real sites)."""
    from herschik.geo.skeleton import read_districts

    d = read_districts()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(d), n, replace=False)
    return np.array([[d[i]["x"] + 250.0, d[i]["y"] + 250.0] for i in idx])


def synthetic_graph(n_side: int = 710, seed: int = 0):
    """A ~500k-node directed grid with random diagonals (country-sized), as edge arrays."""
    rng = np.random.default_rng(seed)
    n = n_side * n_side
    ii, jj = np.divmod(np.arange(n), n_side)
    xy = np.c_[jj * 400.0, ii * 400.0]
    right = np.flatnonzero(jj < n_side - 1)
    up = np.flatnonzero(ii < n_side - 1)
    diag = rng.choice(np.flatnonzero((jj < n_side - 1) & (ii < n_side - 1)), n // 10, False)
    u = np.r_[right, right + 1, up, up + n_side, diag, diag + n_side + 1]
    v = np.r_[right + 1, right, up + n_side, up, diag + n_side + 1, diag]
    secs = rng.uniform(15, 60, len(u))
    return xy, u, v, secs


def _per_source(csr_net, G: nx.MultiDiGraph, n_sources: int, n_nx: int, repeats: int):
    rng = np.random.default_rng(1)
    src = rng.choice(csr_net.n_nodes, n_sources, replace=False)
    t_sp = _median_time(
        lambda: dijkstra(csr_net.reverse, directed=True, indices=src), repeats
    ) / n_sources
    ids = csr_net.node_ids.tolist()
    R = G.reverse(copy=False)
    nx_src = [ids[i] for i in src[:n_nx]]

    def run_nx():
        for s in nx_src:
            nx.single_source_dijkstra_path_length(R, s, weight="travel_time")

    t_nx = _median_time(run_nx, repeats) / n_nx
    return {"scipy_s_per_source": t_sp, "networkx_s_per_source": t_nx,
            "ratio": t_nx / t_sp, "nodes": csr_net.n_nodes,
            "edges": int(csr_net.forward.nnz)}


def run(repeats: int = 3, synthetic_side: int = 710, n_sites: int = 100) -> dict:
    """Run all benchmarks; returns a dict of medians (seconds) and ratios."""
    from herschik.geo import traveltime as tt
    from herschik.geo.network import default_network
    from herschik.geo.skeleton import read_districts

    out: dict = {"repeats": repeats}
    d = read_districts()
    areas = np.array([[r["x"], r["y"]] for r in d])
    sites = default_sites(n_sites)
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("HERSCHIK_CACHE_DIR")
        os.environ["HERSCHIK_CACHE_DIR"] = tmp
        try:
            G = default_network()

            def cold():
                tt._CSR_MEMO.pop(G, None)
                tt.area_site_minutes(areas, sites, use_cache=False)

            out["national_cold_s"] = _median_time(cold, repeats)
            tt.area_site_minutes(areas, sites)  # fill the cache
            out["national_cached_s"] = _median_time(
                lambda: tt.area_site_minutes(areas, sites), repeats)
            out["national_shape"] = [len(areas), len(sites)]
        finally:
            if old is None:
                os.environ.pop("HERSCHIK_CACHE_DIR", None)
            else:
                os.environ["HERSCHIK_CACHE_DIR"] = old
        out["national_per_source"] = _per_source(tt.to_csr(G), G, 200, 20, repeats)

    xy, u, v, secs = synthetic_graph(synthetic_side)
    t0 = time.perf_counter()
    net = tt.CSRNetwork.from_arrays(xy, u, v, secs)
    out["synthetic_csr_build_s"] = time.perf_counter() - t0
    S = nx.MultiDiGraph()
    S.add_nodes_from(range(len(xy)))
    S.add_edges_from(
        (a, b, {"travel_time": w}) for a, b, w in zip(u.tolist(), v.tolist(), secs.tolist(),
                                                      strict=True))
    out["synthetic_per_source"] = _per_source(net, S, 8, 2, repeats)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
