"""The streamed OSM build (geo/osm.py) on small files written with pyosmium's writer.

A dual carriageway with an emergency crossover, a oneway street, a car ferry with a tagged
crossing and service interval, a foot ferry to an island, an implicit urban speed zone and a
way whose node is missing from the extract.
"""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pytest
from herschik.geo import osm
from herschik.geo.network import load_network, save_network
from herschik.geo.traveltime import load_csr
from scipy.sparse.csgraph import dijkstra

LON0, LAT0 = 5.10, 52.09
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))

# node id -> (x m, y m)
NODES = {
    # eastbound carriageway A0..A4 (y = 0), westbound B0..B4 (y = 30)
    **{10 + i: (1000.0 * i, 0.0) for i in range(5)},
    **{20 + i: (1000.0 * i, 30.0) for i in range(5)},
    # town: oneway street R0 -> R1, urban tertiary T0 - T1
    30: (0.0, -500.0), 31: (400.0, -500.0), 32: (0.0, -900.0), 33: (400.0, -900.0),
    34: (200.0, -700.0),
    # ferry F0 (on the mainland) -> F1 (island) and an island road F1 - F2
    40: (-200.0, -900.0), 41: (-1200.0, -900.0), 42: (-1500.0, -900.0),
    # a foot-ferry island
    50: (4000.0, -900.0), 51: (5000.0, -900.0), 52: (5200.0, -900.0),
}
MISSING_NODE = 999


def _ways(crossover_tags: dict[str, str]) -> list[tuple[int, list[int], dict[str, str]]]:
    return [
        (1, [10, 11, 12, 13, 14], {"highway": "motorway", "maxspeed": "100"}),
        (2, [24, 23, 22, 21, 20], {"highway": "motorway", "maxspeed": "100"}),
        (3, [14, 24], {"highway": "motorway_link", "maxspeed": "50"}),  # U-turn at the end
        (4, [20, 10], {"highway": "motorway_link", "maxspeed": "50"}),
        (5, [12, 22], crossover_tags),
        # the town hangs off the start of the motorway
        (6, [10, 30], {"highway": "secondary", "maxspeed": "80"}),
        (7, [30, 31], {"highway": "residential", "oneway": "yes", "maxspeed": "30"}),
        (8, [31, 33, 32, 30], {"highway": "residential"}),
        (9, [32, 40], {"highway": "tertiary", "source:maxspeed": "NL:urban"}),
        (16, [31, MISSING_NODE, 34, 33], {"highway": "residential"}),
        (10, [40, 41], {"route": "ferry", "motor_vehicle": "yes", "duration": "00:20",
                        "interval": "00:30"}),
        (11, [41, 42], {"highway": "unclassified"}),
        (12, [14, 50], {"highway": "tertiary"}),
        (13, [50, 51], {"route": "ferry", "foot": "yes"}),
        (14, [51, 52], {"highway": "unclassified"}),
        (15, [30, 33], {"highway": "footway"}),
    ]


EMERGENCY = {"highway": "service", "service": "emergency_access", "access": "no"}


def write_osm(path: Path, crossover_tags: dict[str, str] = EMERGENCY) -> Path:
    if path.exists():
        path.unlink()
    w = osmium.SimpleWriter(str(path))
    try:
        for nid, (x, y) in sorted(NODES.items()):
            w.add_node(osmium.osm.mutable.Node(
                id=nid, location=(LON0 + x / M_PER_DEG_LON, LAT0 + y / M_PER_DEG_LAT)))
        for wid, refs, tags in _ways(crossover_tags):
            w.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs, tags=tags))
        w.add_relation(osmium.osm.mutable.Relation(
            id=1, members=[("w", 7, "from"), ("n", 31, "via"), ("w", 8, "to")],
            tags={"type": "restriction", "restriction": "no_left_turn"}))
    finally:
        w.close()
    return path


def _seconds(net: osm.RoadArrays, a: int, b: int) -> float:
    from herschik.geo.traveltime import CSRNetwork

    csr = CSRNetwork.from_arrays(np.c_[net.x, net.y], net.u, net.v, net.travel_time,
                                 node_ids=net.node_id)
    pos = {int(n): i for i, n in enumerate(net.node_id)}
    return float(dijkstra(csr.forward, indices=pos[a])[pos[b]])


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> osm.RoadArrays:
    return osm.read_osm(write_osm(tmp_path_factory.mktemp("osm") / "t.osm.pbf"))


def test_no_u_turn_through_the_emergency_crossover(net):
    # A0 -> B0: legally only via the turn at the far end (4 km out, 4 km back)
    legal = 8000 / (100 / 3.6)
    assert _seconds(net, 10, 20) >= legal
    assert _seconds(net, 10, 20) == pytest.approx(legal + 2 * 30 / (50 / 3.6), rel=0.02)


def test_the_same_crossover_open_to_cars_is_a_shortcut(tmp_path):
    # control: without the access tags the crossover is used (so the test above can fail)
    open_net = osm.read_osm(write_osm(tmp_path / "open.osm.pbf", {"highway": "service"}))
    assert _seconds(open_net, 10, 20) < 5000 / (100 / 3.6)


def test_oneway_dual_carriageway_and_streets(net):
    edges = set(zip(net.node_id[net.u].tolist(), net.node_id[net.v].tolist()))
    assert (10, 14) in edges and (14, 10) not in edges  # implied oneway motorway
    assert (30, 31) in edges and (31, 30) not in edges  # oneway=yes
    assert (31, 33) in edges and (33, 31) in edges
    assert (12, 22) not in edges and (22, 12) not in edges


def test_simplified_topology_and_dropped_parts(net):
    ids = set(net.node_id.tolist())
    assert {11, 12, 13, 21, 22, 23} & ids == set()  # shape nodes of the carriageways
    assert {10, 14, 20, 24, 30, 31, 32, 40, 41, 42} <= ids
    assert {51, 52} & ids == set()  # reached only by a foot ferry: not in the SCC
    assert net.meta["nodes_outside_largest_component"] >= 1
    assert net.meta["turn_restrictions_ignored"] == 1
    length = dict(zip(zip(net.node_id[net.u].tolist(), net.node_id[net.v].tolist()),
                      net.length.tolist()))
    assert length[10, 14] == pytest.approx(4000, rel=0.005)


def test_car_ferry_time_is_crossing_plus_half_interval(net):
    k = np.nonzero((net.node_id[net.u] == 40) & (net.node_id[net.v] == 41))[0]
    assert len(k) == 1
    assert net.highway[k[0]] == osm.FERRY_CODE
    assert net.travel_time[k[0]] == pytest.approx(20 * 60 + 15 * 60)


def test_speeds_from_tags_and_implicit_zones(net):
    names = osm.HIGHWAY_CLASSES
    by_way = {}
    for w, h, s_, m in zip(net.osmid.tolist(), net.highway.tolist(), net.speed_kph.tolist(),
                           net.maxspeed.tolist()):
        by_way[w] = (names[h], s_, m)
    assert by_way[1][1] == 100 and by_way[7][1] == 30
    assert by_way[11][1] == pytest.approx(45.0) and math.isnan(by_way[11][2])  # class default
    assert by_way[9][1] == 50 and by_way[9][2] == 50  # source:maxspeed=NL:urban
    for t, ln, s_ in zip(net.travel_time, net.length, net.speed_kph):
        assert t > 0 and ln >= 0 and s_ > 0


def test_missing_node_splits_the_way(net):
    # 31 -> 999 -> 34 -> 33: 999 is not in the file; the way keeps only its piece 34 - 33
    edges = set(zip(net.node_id[net.u].tolist(), net.node_id[net.v].tolist()))
    assert (31, 34) not in edges and (34, 31) not in edges
    assert (34, 33) in edges and (33, 34) in edges
    assert MISSING_NODE not in set(net.node_id.tolist())


@pytest.mark.parametrize("suffix", [".osm", ".osm.bz2"])
def test_xml_formats_give_the_same_network(net, tmp_path, suffix):
    other = osm.read_osm(write_osm(tmp_path / f"t{suffix}"))
    assert np.array_equal(other.node_id, net.node_id)
    assert np.array_equal(other.u, net.u) and np.array_equal(other.v, net.v)
    assert np.allclose(other.travel_time, net.travel_time)


def test_osmnx_conventions_and_roundtrip(net, tmp_path):
    G = net.to_networkx()
    assert isinstance(G, nx.MultiDiGraph) and nx.is_strongly_connected(G)
    n = next(iter(G.nodes))
    assert {"x", "y"} <= set(G.nodes[n])
    _, _, d = next(iter(G.edges(data=True)))
    assert {"length", "highway", "maxspeed", "speed_kph", "travel_time", "oneway",
            "osmid"} <= set(d)
    p = save_network(net, tmp_path / "n.npz")
    H = load_network(p)
    assert H.number_of_nodes() == net.n_nodes and H.number_of_edges() == net.n_edges
    csr = load_csr(p)
    assert csr.n_nodes == net.n_nodes
    # graph -> file -> graph keeps the times
    q = save_network(G, tmp_path / "g.npz")
    assert sorted(d["travel_time"] for *_, d in load_network(q).edges(data=True)) == \
        pytest.approx(sorted(net.travel_time.tolist()))


def test_no_drivable_road_is_an_error(tmp_path):
    p = tmp_path / "empty.osm.pbf"
    w = osmium.SimpleWriter(str(p))
    w.add_node(osmium.osm.mutable.Node(id=1, location=(5.1, 52.1)))
    w.add_node(osmium.osm.mutable.Node(id=2, location=(5.2, 52.1)))
    w.add_way(osmium.osm.mutable.Way(id=1, nodes=[1, 2], tags={"highway": "footway"}))
    w.close()
    with pytest.raises(ValueError, match="no drivable roads"):
        osm.read_osm(p)


def test_garbage_pbf_is_an_error(tmp_path):
    p = tmp_path / "x.osm.pbf"
    p.write_bytes(b"\x00\x00\x00\x0cnot a pbf at all")
    with pytest.raises(ValueError, match="not a readable OSM file"):
        osm.read_osm(p)


def test_ways_without_node_coordinates_are_an_error(tmp_path):
    p = tmp_path / "ways-only.osm"
    p.write_text('<osm version="0.6"><node id="1" lat="52" lon="5"/><way id="1"><nd ref="1"/>'
                 '<nd ref="2"/><tag k="highway" v="primary"/></way></osm>')
    with pytest.raises(ValueError, match="no drivable road .* has node coordinates"):
        osm.read_osm(p)


def test_truncated_xml_is_an_error(tmp_path):
    p = tmp_path / "broken.osm"
    p.write_text("<osm><node id='1' broken")
    with pytest.raises(ValueError, match="not a readable OSM file"):
        osm.read_osm(p)
