"""The country-scale network benchmark's generator and pipeline on a small lattice (not timed)."""

from __future__ import annotations

import numpy as np
import osmium
from herschik.geo.osm import FERRY_CODE, HIGHWAY_CLASSES, read_osm

from benchmarks import bench_network as bn


def test_synthetic_country_is_realistic_osm(tmp_path):
    pbf = tmp_path / "small.osm.pbf"
    counts = bn.write_synthetic_country(pbf, scale=1.0, cells=(6, 6))
    assert counts["towns"] == 36 and counts["nodes"] > 2 * counts["drivable_nodes"]
    keys, ways, tagged_nodes = set(), 0, 0
    for obj in osmium.FileProcessor(str(pbf)):
        if obj.is_way():
            ways += 1
            keys.update(t.k for t in obj.tags)
        elif obj.is_node() and len(obj.tags):
            tagged_nodes += 1
    assert ways == counts["ways"] and tagged_nodes > 0
    assert {"highway", "building", "landuse", "maxspeed", "oneway", "route", "access",
            "zone:maxspeed", "source:maxspeed", "junction", "service"} <= keys
    net = read_osm(pbf)
    classes = {HIGHWAY_CLASSES[h] for h in np.unique(net.highway)}
    assert {"motorway", "motorway_link", "residential", "tertiary", "ferry"} <= classes
    assert net.meta["turn_restrictions_ignored"] == 36
    # buildings, footways, tracks and the foot ferries are not in the network
    assert net.n_nodes < counts["drivable_nodes"]
    assert (net.travel_time[net.highway == FERRY_CODE] >= 20 * 60).all()


def test_benchmark_pipeline_runs_end_to_end():
    res = bn.run(scale=1.0, cells=(4, 4))
    assert res["status"] == "ok", res
    assert res["build"]["returncode"] == 0 and res["build"]["peak_rss_mb"] > 0
    assert res["network"]["nodes"] > 100
    assert res["matrix_cold"]["areas"] == 3340 and res["matrix_cold"]["sites"] == 111
    lines, goals = bn.render(res)
    assert any("network build" in g[0] for g in goals)
    assert any("OD matrix" in line for line in lines)
