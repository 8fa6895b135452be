"""Tag rules of the OSM streaming reader (geo/osm.py): speeds, access, oneway, ferries."""

from __future__ import annotations

import math

import pytest
from herschik.geo import osm
from herschik.geo.network import DUTCH_HWY_SPEEDS


@pytest.mark.parametrize(
    ("value", "kmh"),
    [("50", 50.0), ("50 km/h", 50.0), ("30 mph", 30 * 1.609344), ("NL:urban", 50.0),
     ("NL:rural", 80.0), ("NL:motorway", 130.0), ("nl:zone30", 30.0), ("NL:living_street", 15.0),
     ("80;100", 90.0), ("walk", 7.0), ("12,5", 12.5)],
)
def test_parse_maxspeed(value, kmh):
    assert osm.parse_maxspeed(value) == pytest.approx(kmh)


@pytest.mark.parametrize("value", [None, "none", "signals", "variable", "", "-5", "fast"])
def test_parse_maxspeed_unknown_is_nan(value):
    assert math.isnan(osm.parse_maxspeed(value))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("00:20", 1200.0), ("1:30", 5400.0), ("0:45:30", 2730.0), ("25", 1500.0),
     ("PT1H30M", 5400.0), ("PT20M", 1200.0)],
)
def test_parse_duration(value, seconds):
    assert osm.parse_duration_s(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "soon", "1:2:3:4", "PT"])
def test_parse_duration_unknown(value):
    assert math.isnan(osm.parse_duration_s(value))


@pytest.mark.parametrize(
    ("tags", "open_"),
    [({}, True), ({"access": "no"}, False), ({"access": "private"}, False),
     ({"access": "no", "motor_vehicle": "yes"}, True),
     ({"motor_vehicle": "no"}, False), ({"motor_vehicle": "destination"}, True),
     ({"access": "yes", "motorcar": "no"}, False), ({"vehicle": "no"}, False),
     ({"motor_vehicle": "agricultural"}, False), ({"access": "customers"}, True)],
)
def test_motor_access_most_specific_key_decides(tags, open_):
    assert osm.motor_access(tags) is open_


@pytest.mark.parametrize(
    ("tags", "direction"),
    [({"highway": "residential"}, 0), ({"highway": "residential", "oneway": "yes"}, 1),
     ({"highway": "residential", "oneway": "-1"}, -1),
     ({"highway": "tertiary", "junction": "roundabout"}, 1),
     ({"highway": "motorway"}, 1), ({"highway": "motorway", "oneway": "no"}, 0),
     ({"highway": "primary", "oneway": "reversible"}, 2)],
)
def test_oneway_direction(tags, direction):
    assert osm.oneway_direction(tags) == direction


def test_speed_tag_then_implicit_then_class_default():
    r = osm.classify_way({"highway": "residential", "maxspeed": "30"})
    assert (r.speed_fwd, r.speed_bwd, r.maxspeed_fwd) == (30.0, 30.0, 30.0)
    r = osm.classify_way({"highway": "tertiary", "source:maxspeed": "NL:urban"})
    assert r.speed_fwd == 50.0 and r.maxspeed_fwd == 50.0
    r = osm.classify_way({"highway": "unclassified", "zone:maxspeed": "NL:60"})
    assert r.speed_fwd == 60.0
    r = osm.classify_way({"highway": "secondary"})
    assert r.speed_fwd == DUTCH_HWY_SPEEDS["secondary"] and math.isnan(r.maxspeed_fwd)
    r = osm.classify_way({"highway": "primary", "maxspeed": "80", "maxspeed:backward": "50"})
    assert (r.speed_fwd, r.speed_bwd) == (80.0, 50.0)


@pytest.mark.parametrize(
    "tags",
    [{"highway": "footway"}, {"highway": "cycleway"}, {"highway": "track"},
     {"highway": "busway"}, {"highway": "construction"}, {"building": "house"},
     {"highway": "service", "service": "parking_aisle"},
     {"highway": "service", "service": "driveway"},
     {"highway": "service", "service": "emergency_access", "access": "no"},
     {"highway": "service", "access": "private"},
     {"highway": "pedestrian", "area": "yes"}, {"highway": "residential", "area": "yes"},
     {"highway": "primary", "oneway": "alternating"},
     {"route": "ferry", "foot": "yes"}, {"route": "ferry", "motor_vehicle": "no"}],
)
def test_ways_cars_cannot_use_are_dropped(tags):
    assert osm.classify_way(tags) is None


@pytest.mark.parametrize(
    "tags",
    [{"highway": "motorway"}, {"highway": "living_street"}, {"highway": "service"},
     {"highway": "service", "service": "alley"}, {"highway": "road"},
     {"highway": "unclassified", "access": "destination"}],
)
def test_drivable_ways_are_kept(tags):
    assert osm.classify_way(tags) is not None


def test_ferry_rules():
    r = osm.classify_way({"route": "ferry", "motor_vehicle": "yes", "duration": "00:20",
                          "interval": "01:00"})
    assert r.highway == "ferry" and r.ferry_duration_s == 1200.0 and r.ferry_wait_s == 1800.0
    r = osm.classify_way({"route": "ferry", "motorcar": "yes"})
    assert math.isnan(r.ferry_duration_s) and r.ferry_wait_s == osm.FERRY_WAIT_S
    r = osm.classify_way({"route": "ferry", "motor_vehicle": "yes", "duration": "0:20"})
    assert r.ferry_duration_s == 1200.0 and r.ferry_wait_s == osm.FERRY_WAIT_S
    assert r.speed_fwd == r.speed_bwd == osm.FERRY_KMH  # the speed of an untimed crossing
