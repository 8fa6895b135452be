"""The OSM loading path (pyosmium streaming) on real samples, the compact format, the default."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from herschik.geo import network as gn

from tests.support.paths import TESTS_DATA

OSM_DIR = TESTS_DATA / "osm_samples"  # copied in, see its README.md
SAMPLES = ["amsterdam.osm.pbf", "West-Oakland.osm.bz2", "planet_10.068_48.135_10.071_48.137.osm"]


def _sample(name: str) -> Path:
    # committed with the repository: a missing sample is a failure, never a skip
    return OSM_DIR / name


@pytest.fixture(scope="module", params=[SAMPLES[0], SAMPLES[2]])
def osm_graph(request) -> nx.MultiDiGraph:
    return gn.build_network_from_osm(_sample(request.param))


def test_osm_sample_loads_drivable_projected_connected(osm_graph):
    G = osm_graph
    assert G.number_of_nodes() >= 6 and G.number_of_edges() >= 10
    assert "28992" in str(G.graph["crs"])
    assert nx.is_strongly_connected(G)
    for _, _, d in G.edges(data=True):
        assert d["speed_kph"] > 0 and d["travel_time"] > 0 and d["length"] >= 0
        hw = d["highway"] if isinstance(d["highway"], list) else [d["highway"]]
        assert any(h in gn.DRIVABLE for h in hw)
        assert np.isnan(d["maxspeed"]) or d["maxspeed"] > 0
        assert isinstance(d["oneway"], bool) and d["osmid"] > 0
    # projected metres: x, y are not degrees
    xs = np.array([d["x"] for _, d in G.nodes(data=True)])
    assert np.abs(xs).max() > 1000


@pytest.mark.parametrize("name", SAMPLES)
def test_osm_speeds_follow_tags_else_dutch_defaults(name):
    from herschik.geo.osm import read_osm

    G = read_osm(_sample(name), largest_component=False).to_networkx()
    tagged = untagged = 0
    for _, _, d in G.edges(data=True):
        assert d["travel_time"] == pytest.approx(d["length"] / (d["speed_kph"] / 3.6), rel=1e-4,
                                                 abs=0.11)
        if np.isnan(d["maxspeed"]):
            untagged += 1
            assert d["speed_kph"] == gn.DUTCH_HWY_SPEEDS[d["highway"]]
        else:
            tagged += 1
            assert d["speed_kph"] == pytest.approx(d["maxspeed"])
    assert tagged + untagged == G.number_of_edges() > 0


def test_amsterdam_pbf_is_dutch_and_tagged():
    from herschik.geo.osm import read_osm

    G = read_osm(_sample("amsterdam.osm.pbf"), largest_component=False).to_networkx()
    x = np.array([d["x"] for _, d in G.nodes(data=True)])
    y = np.array([d["y"] for _, d in G.nodes(data=True)])
    # RD New of Amsterdam-Oost
    assert 120_000 < x.min() and x.max() < 127_000 and 480_000 < y.min() and y.max() < 488_000
    speeds = {round(d["maxspeed"]) for *_, d in G.edges(data=True) if not np.isnan(d["maxspeed"])}
    assert speeds & {50, 80}
    assert any(d["oneway"] for *_, d in G.edges(data=True))


def test_streamed_topology_matches_osmnx_simplification():
    """Same roads as osmnx graph_from_xml + simplify on the Munich sample: equal total length
    and every junction is an osmnx node too (osmnx also keeps footway crossings as nodes)."""
    import warnings

    import osmnx as ox

    p = _sample(SAMPLES[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ox.graph_from_xml(p, bidirectional=False, simplify=True, retain_all=True)
    ref = gn.finish_osm_graph(ref)
    G = gn.build_network_from_osm(p)
    total = sum(d["length"] for *_, d in G.edges(data=True))
    assert total == pytest.approx(sum(d["length"] for *_, d in ref.edges(data=True)), rel=1e-3)
    junctions = {n for n in G.nodes if len(set(G.predecessors(n)) | set(G.successors(n))) >= 3}
    assert junctions and junctions <= set(ref.nodes)


def test_save_load_roundtrip(osm_graph, tmp_path):
    p = gn.save_network(osm_graph, tmp_path / "net.npz")
    H = gn.load_network(p)
    assert H.number_of_nodes() == osm_graph.number_of_nodes()
    assert H.number_of_edges() == osm_graph.number_of_edges()
    assert str(H.graph["crs"]) == str(osm_graph.graph["crs"])
    a = sorted(d["travel_time"] for _, _, d in osm_graph.edges(data=True))
    b = sorted(d["travel_time"] for _, _, d in H.edges(data=True))
    assert np.allclose(a, b)
    n = next(iter(osm_graph.nodes))
    assert H.nodes[n]["x"] == pytest.approx(osm_graph.nodes[n]["x"])


def test_load_rejects_garbage(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"not a network")
    with pytest.raises(ValueError, match="not a herschik network"):
        gn.load_network(p)


def test_load_rejects_negative_times_and_scaled_coordinates(tmp_path):
    G = gn.build_network_from_osm(_sample(SAMPLES[0]))
    p = gn.save_network(G, tmp_path / "ok.npz")
    z = dict(np.load(p))
    bad = dict(z, travel_time=-z["travel_time"])
    np.savez(tmp_path / "neg.npz", **bad)
    with pytest.raises(ValueError, match="not a positive number"):
        gn.load_network(tmp_path / "neg.npz")
    # stretched within the RD domain: lengths no longer match the coordinates
    cx, cy = z["x"].mean(), z["y"].mean()
    scaled = dict(z, x=cx + (z["x"] - cx) * 3, y=cy + (z["y"] - cy) * 3)
    np.savez(tmp_path / "scaled.npz", **scaled)
    with pytest.raises(ValueError, match="shorter than the straight line"):
        gn.load_network(tmp_path / "scaled.npz")
    fast = dict(z, travel_time=z["travel_time"] / 100)
    np.savez(tmp_path / "fast.npz", **fast)
    with pytest.raises(ValueError, match="implausible speed"):
        gn.load_network(tmp_path / "fast.npz")


def test_default_network_is_osmnx_compatible():
    G = gn.default_network()
    assert G is gn.default_network()  # cached
    assert G.graph["crs"] == "EPSG:28992"
    assert G.number_of_nodes() > 3500
    assert nx.is_strongly_connected(G)
    hw = set()
    for _, _, d in G.edges(data=True):
        assert d["length"] > 0 and d["travel_time"] > 0
        hw.add(d["highway"])
    assert {"motorway", "trunk", "primary", "ferry", "unclassified"} <= hw
    x = np.array([d["x"] for _, d in G.nodes(data=True)])
    y = np.array([d["y"] for _, d in G.nodes(data=True)])
    assert 0 < x.min() and x.max() < 300_000 and 300_000 < y.min() and y.max() < 625_000


def test_default_build_is_deterministic():
    from herschik.geo.skeleton import build_default_network

    a, b = build_default_network(), build_default_network()
    ea = [(u, v, round(d["travel_time"], 6)) for u, v, d in a.edges(data=True)]
    eb = [(u, v, round(d["travel_time"], 6)) for u, v, d in b.edges(data=True)]
    assert ea == eb


def test_skeleton_tables_are_consistent():
    from herschik.geo.skeleton import read_districts, read_ferries, read_places, read_roads

    places = read_places()
    used = set()
    for r in read_roads():
        assert r["highway"] in {"motorway", "trunk", "primary", "secondary"}
        assert 30 <= r["maxspeed"] <= 130 and 1.0 <= r["detour"] <= 1.5
        assert len(r["via"]) >= 2 and all(p in places for p in r["via"])
        used.update(r["via"])
    for f in read_ferries():
        assert f["from_place"] in places and f["to_place"] in places
    districts = read_districts()
    assert len(districts) == 3340
    ids = {d["district_id"] for d in districts}
    for d in districts:
        assert set(d["neighbours"]) <= ids
    roads = {r["road"] for r in read_roads()}
    for must in ["A1", "A2", "A4", "A7", "A12", "A28", "A58", "A73", "N57", "N59", "N62",
                 "N302", "N99", "N31"]:
        assert must in roads


def test_no_fixed_link_to_wadden_islands():
    """Wadden island districts touch only their own island; only ferries leave the island."""
    from herschik.geo.skeleton import build_default_network

    G = build_default_network()
    from herschik.geo.skeleton import read_districts, read_places

    island = dict.fromkeys(G.nodes)

    for i, d in enumerate(read_districts()):
        island[i] = d["island"]
    off = len(island) - len(read_places())
    for k, p in enumerate(read_places().values()):
        island[off + k] = p["island"]
    for u, v, d in G.edges(data=True):
        if island[u] != island[v]:
            assert d["highway"] == "ferry", (u, v, d)
