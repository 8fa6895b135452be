"""scipy CSR Dijkstra OD matrices vs networkx, limits, unreachable points, the disk cache."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from herschik.geo import traveltime as tt


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(tmp_path / "cache"))


def grid_graph(n: int = 12, seed: int = 0) -> nx.MultiDiGraph:
    """A directed n x n grid (500 m spacing) with random asymmetric travel times."""
    rng = np.random.default_rng(seed)
    G = nx.MultiDiGraph(crs="EPSG:28992")
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=100_000 + 500.0 * j, y=450_000 + 500.0 * i)
    for i in range(n):
        for j in range(n):
            a = i * n + j
            for b in ([a + 1] if j + 1 < n else []) + ([a + n] if i + 1 < n else []):
                for u, v in ((a, b), (b, a)):
                    G.add_edge(u, v, length=500.0, travel_time=float(rng.uniform(20, 60)),
                               highway="residential")
    # a parallel, faster edge: the CSR conversion must keep the minimum
    G.add_edge(0, 1, length=500.0, travel_time=1.0, highway="primary")
    return G


def _points(G, k, seed):
    rng = np.random.default_rng(seed)
    xy = np.array([(d["x"], d["y"]) for _, d in G.nodes(data=True)])
    return xy[rng.choice(len(xy), k, replace=False)] + rng.normal(0, 60, (k, 2))


def test_scipy_equals_networkx():
    G = grid_graph()
    a, s = _points(G, 40, 1), _points(G, 7, 2)
    m1 = tt.area_site_minutes(a, s, network=G, use_cache=False)
    m2 = tt.od_matrix_networkx(a, s, network=G)
    assert m1.shape == (40, 7)
    assert np.allclose(m1, m2)


def test_direction_is_area_to_site():
    G = nx.MultiDiGraph(crs="EPSG:28992")
    G.add_node(0, x=0.0, y=0.0)
    G.add_node(1, x=1000.0, y=0.0)
    G.add_edge(0, 1, travel_time=60.0, length=1000.0)
    G.add_edge(1, 0, travel_time=600.0, length=1000.0)
    m = tt.area_site_minutes([[0, 0]], [[1000, 0]], network=G, use_cache=False)
    assert m[0, 0] == pytest.approx(1.0)
    m = tt.area_site_minutes([[1000, 0]], [[0, 0]], network=G, use_cache=False)
    assert m[0, 0] == pytest.approx(10.0)


def test_parallel_edges_take_the_fastest():
    G = grid_graph()
    net = tt.to_csr(G)
    assert net.forward[0, 1] == pytest.approx(1.0)


def test_access_time_for_snap_distance():
    G = grid_graph()
    node = G.nodes[0]
    p = np.array([[node["x"] - 400.0, node["y"]]])
    m = tt.area_site_minutes(p, np.array([[node["x"], node["y"]]]), network=G, use_cache=False)
    expect = 400.0 * tt.ACCESS_DETOUR / (tt.ACCESS_KMH / 3.6) / 60.0
    assert m[0, 0] == pytest.approx(expect)


def test_limit_sets_inf_and_keeps_the_rest():
    G = grid_graph()
    a, s = _points(G, 30, 3), _points(G, 5, 4)
    full = tt.area_site_minutes(a, s, network=G, use_cache=False)
    lim = float(np.median(full))
    capped = tt.area_site_minutes(a, s, network=G, limit_min=lim, use_cache=False)
    ok = full <= lim
    assert np.allclose(capped[ok], full[ok])
    assert np.isinf(capped[~ok]).all()
    ref = tt.od_matrix_networkx(a, s, network=G, limit_min=lim)
    assert np.array_equal(np.isinf(ref), np.isinf(capped))


def test_unreachable_is_inf():
    G = grid_graph(4)
    G.add_node("island", x=0.0, y=0.0)
    G.add_node("island2", x=10.0, y=0.0)
    G.add_edge("island", "island2", travel_time=5.0, length=10.0)
    m = tt.area_site_minutes([[0.0, 0.0]], [[100_000.0, 450_000.0]], network=G,
                             use_cache=False)
    assert np.isinf(m).all()
    r = tt.od_matrix_networkx([[0.0, 0.0]], [[100_000.0, 450_000.0]], network=G)
    assert np.isinf(r).all()


def test_cache_hit_is_equal_and_skips_the_computation(monkeypatch):
    G = grid_graph(30)
    a, s = _points(G, 200, 5), _points(G, 20, 6)
    m1 = tt.area_site_minutes(a, s, network=G)
    files = list(tt.matrix_cache_dir().glob("*.npz"))
    assert len(files) == 1

    def boom(*_a, **_k):
        raise AssertionError("cache miss")

    with monkeypatch.context() as mp:
        mp.setattr(tt, "_compute", boom)  # a cache miss would raise: the hit is proven
        m2 = tt.area_site_minutes(a, s, network=G)
    assert np.array_equal(m1, m2)
    # another limit is another key
    tt.area_site_minutes(a, s, network=G, limit_min=5.0)
    assert len(list(tt.matrix_cache_dir().glob("*.npz"))) == 2


def test_cache_hit_on_a_network_file_does_not_read_the_network(monkeypatch, tmp_path):
    from herschik.geo.network import save_network

    G = grid_graph(20)
    for _, _, d in G.edges(data=True):  # the 1-second edge is an implausible speed in a file
        d["travel_time"] = max(d["travel_time"], 20.0)
    path = save_network(G, tmp_path / "grid.npz")
    a, s = _points(G, 50, 7), _points(G, 5, 8)
    first = tt.area_site_travel(a, s, network=path)
    assert np.array_equal(first.minutes, tt.area_site_minutes(a, s, network=G))

    def boom(*_a, **_k):
        raise AssertionError("network read on a cache hit")

    with monkeypatch.context() as mp:
        mp.setattr(tt, "load_csr", boom)
        mp.setattr(tt, "_compute", boom)
        again = tt.area_site_travel(a, s, network=path)
    assert np.array_equal(first.minutes, again.minutes)
    assert np.array_equal(first.area_snap_m, again.area_snap_m)


def test_snap_distances_are_returned():
    G = grid_graph(5)  # nodes 500 m apart from (100 000, 450 000)
    xy = np.array([[100_000.0, 450_000.0], [100_030.0, 450_040.0]])
    out = tt.area_site_travel(xy, xy[:1], network=G, use_cache=False)
    assert out.area_snap_m == pytest.approx([0.0, 50.0])
    assert out.site_snap_m == pytest.approx([0.0])


def test_bad_points_raise():
    G = grid_graph(3)
    with pytest.raises(ValueError):
        tt.area_site_minutes(np.zeros((3, 3)), np.zeros((1, 2)), network=G)
    with pytest.raises(ValueError):
        tt.area_site_minutes([[np.nan, 0]], [[0, 0]], network=G)


def test_empty_inputs():
    G = grid_graph(3)
    assert tt.area_site_minutes(np.zeros((0, 2)), [[0, 0]], network=G).shape == (0, 1)


def test_default_network_matrix_and_scipy_vs_networkx():
    from herschik.geo.skeleton import read_districts

    d = read_districts()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(d), 60, replace=False)
    a = np.array([[d[i]["x"], d[i]["y"]] for i in idx])
    s = a[:4] + 300.0
    m = tt.area_site_minutes(a, s)  # network=None: the national default
    assert np.isfinite(m).all() and (m > 0).all()
    from herschik.geo.network import default_network

    ref = tt.od_matrix_networkx(a, s, network=default_network())
    assert np.allclose(m, ref)
