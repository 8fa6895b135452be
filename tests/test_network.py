"""The OSM loading path (osmnx) on real samples, the compact format, the national default."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from herschik.geo import network as gn

ROOT = Path(__file__).resolve().parents[1]
OSM_DIR = ROOT.parent / "shared" / "data" / "raw" / "osm_samples"
SAMPLES = ["West-Oakland.osm.bz2", "planet_10.068_48.135_10.071_48.137.osm"]


def _sample(name: str) -> Path:
    p = OSM_DIR / name
    if not p.exists():
        pytest.skip(f"OSM sample {p} not available (../shared beside the repo)")
    return p


@pytest.fixture(scope="module", params=SAMPLES)
def osm_graph(request) -> nx.MultiDiGraph:
    return gn.build_network_from_osm(_sample(request.param))


def test_osm_sample_loads_drivable_projected_connected(osm_graph):
    G = osm_graph
    assert G.number_of_nodes() > 10 and G.number_of_edges() > 10
    assert "28992" in str(G.graph["crs"])
    assert nx.is_strongly_connected(G)
    for _, _, d in G.edges(data=True):
        assert d["speed_kph"] > 0 and d["travel_time"] > 0 and d["length"] >= 0
        hw = d["highway"] if isinstance(d["highway"], list) else [d["highway"]]
        assert any(h in gn.DRIVABLE for h in hw)
        assert d["maxspeed"] > 0
    # projected metres: x, y are not degrees
    xs = np.array([d["x"] for _, d in G.nodes(data=True)])
    assert np.abs(xs).max() > 1000


def test_osm_speeds_follow_dutch_defaults():
    import osmnx as ox

    path = _sample(SAMPLES[0])
    raw = ox.graph_from_xml(path, bidirectional=False, simplify=True, retain_all=True)
    untagged = {(u, v, k) for u, v, k, d in raw.edges(keys=True, data=True)
                if "maxspeed" not in d}
    G = gn.build_network_from_osm(path)
    checked = 0
    for u, v, k, d in G.edges(keys=True, data=True):
        hw = d["highway"] if isinstance(d["highway"], str) else None
        if hw in gn.DUTCH_HWY_SPEEDS and (u, v, k) in untagged:
            # no maxspeed tag: the Dutch default speed of the road class
            assert d["speed_kph"] == pytest.approx(gn.DUTCH_HWY_SPEEDS[hw])
            checked += 1
    assert checked > 10, "the sample has untagged roads of the Dutch classes"


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


def test_pbf_without_pyrosm_gives_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "pyrosm":
            raise ImportError("no pyrosm")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    p = tmp_path / "x.osm.pbf"
    p.write_bytes(b"")
    with pytest.raises(ImportError, match="pyrosm"):
        gn.build_network_from_osm(p)


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
