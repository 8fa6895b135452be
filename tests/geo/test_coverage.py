"""geo/coverage.py: snap-distance refusals and edge-time sanity, message contents."""

from __future__ import annotations

import numpy as np
import pytest
from herschik.geo.coverage import MAX_SNAP_M, CoverageError, check_edge_times, check_snap

from herschik.errors import DataError


def test_check_snap_counts_and_names_furthest_first():
    names = [f"WK{i:04d} Wijk {i}" for i in range(8)]
    snap = np.array([10, 6_000, 20, 9_000, 5_000, 7_500, 12_000, 5_001.0])
    with pytest.raises(CoverageError) as info:
        check_snap("area", names, snap, "net.npz")
    err = info.value
    assert isinstance(err, DataError) and err.count == 5
    assert err.names[:3] == ["WK0006 Wijk 6", "WK0003 Wijk 3", "WK0005 Wijk 5"]
    text = str(err)
    assert text.startswith("net.npz field areas: 5 of 8 areas lie more than 5 km")
    assert "WK0006 Wijk 6 (12.0 km)" in text and "WK0004" not in text  # 5,000 m is within
    assert "\n" not in text


def test_check_snap_passes_within_the_distance_and_refuses_nan():
    check_snap("site", ["a", "b"], np.array([0.0, MAX_SNAP_M]))
    with pytest.raises(CoverageError, match="1 of 1 sites"):
        check_snap("site", ["a"], np.array([np.nan]))


def _arrays(**over):
    a = {"node_id": np.array([1, 2, 3]), "x": np.array([100_000.0, 101_000.0, 102_000.0]),
         "y": np.array([450_000.0] * 3), "u": np.array([0, 1]), "v": np.array([1, 2]),
         "length": np.array([1_000.0, 1_000.0]), "travel_time": np.array([60.0, 60.0]),
         "highway": np.array([0, 1]), "highway_names": np.array(["ferry", "primary"])}
    a.update(over)
    return a


def test_check_edge_times_accepts_a_plausible_network():
    check_edge_times(_arrays())


@pytest.mark.parametrize(
    ("over", "match"),
    [({"travel_time": np.array([60.0, 0.0])}, "not a positive number"),
     ({"travel_time": np.array([np.inf, 60.0])}, "not a positive number"),
     ({"travel_time": np.array([60.0, 10.0])}, "implausible speed"),  # 360 km/h by road
     ({"travel_time": np.array([30.0, 60.0])}, "implausible speed"),  # 120 km/h by ferry
     ({"length": np.array([500.0, 1_000.0])}, "shorter than the straight line"),
     ({"u": np.array([], int), "v": np.array([], int), "travel_time": np.array([]),
       "length": np.array([]), "highway": np.array([], int)}, "no edges")],
)
def test_check_edge_times_refuses(over, match):
    with pytest.raises(CoverageError, match=match):
        check_edge_times(_arrays(**over), "bad.npz")


def test_far_away_coordinates_are_left_to_the_snap_check():
    # outside the RD domain lengths are not compared with the (distorted) coordinates
    far = _arrays(x=np.array([-6e6, -6.001e6, -6.002e6]), y=np.array([8e6] * 3),
                  length=np.array([10.0, 10.0]))
    check_edge_times(far)
