"""Validation of a road network (numbers reported in docs/VALIDATION.md), via geo/validation.py.

Runs on the embedded default network, or on any network file named by the environment
variable ``HERSCHIK_VALIDATE_NETWORK`` (``HERSCHIK_VALIDATE_NETWORK=nl.npz pytest
tests/geo/test_validation.py -s``; the same checks as ``herschik network validate``):

(a) RIVM 2009 ambulance driving-time matrix, region Utrecht (217 PC4 points): one fitted
    speed factor, median absolute percentage error, Spearman rank correlation. Uses the full
    matrix from ../shared when present, and always the committed 600-pair subsample.
(b) >= 20 inter-city car trips over all 12 provinces (geo/data/validation/).
(c) effective (crow-fly) speeds by distance band.
(d) every district centroid and every hospital site reaches a site (islands via ferries).

Run ``pytest tests/geo/test_validation.py -s`` to print the numbers.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from herschik.geo import validation as val
from herschik.geo.skeleton import read_districts
from herschik.geo.traveltime import area_site_minutes
from scipy.stats import spearmanr

from tests.support.paths import REPO_ROOT, TESTS_DATA

ROOT = REPO_ROOT
RAW = ROOT.parent / "shared" / "data" / "raw"
#: The network under validation: a file from the environment, else the embedded default.
NETWORK = os.environ.get("HERSCHIK_VALIDATE_NETWORK") or None
T = val.THRESHOLDS

#: The eight university medical centres (PROVENANCE spot checks), WGS84 lat, lon.
UMCS = {
    "Erasmus MC": (51.9101, 4.4660), "UMCG": (53.2230, 6.5742),
    "Radboudumc": (51.8234, 5.8601), "UMC Utrecht": (52.0866, 5.1802),
    "LUMC": (52.1668, 4.4775), "MUMC+": (50.8342, 5.7133),
    "AMC": (52.2944, 4.9582), "VUmc": (52.3363, 4.8591),
}


def rd(lat, lon) -> np.ndarray:
    return val._rd(lat, lon)


def speed_bands(n_pairs: int = 20000, seed: int = 0) -> pd.DataFrame:
    """Effective crow-fly speeds (km/h) of random district-centroid pairs by distance band."""
    d = read_districts()
    xy = np.array([[r["x"], r["y"]] for r in d])
    rng = np.random.default_rng(seed)
    src = rng.choice(len(xy), 400, replace=False)
    dst = rng.choice(len(xy), 50, replace=False)
    M = area_site_minutes(xy[src], xy[dst], NETWORK)
    dist = np.hypot(xy[src, None, 0] - xy[None, dst, 0], xy[src, None, 1] - xy[None, dst, 1])
    ok = np.isfinite(M) & (dist > 0)
    km, mins = dist[ok] / 1000, M[ok]
    bands = [0, 5, 10, 25, 50, 100, 200, 400]
    rows = []
    for lo, hi in zip(bands[:-1], bands[1:], strict=True):
        s = (km >= lo) & (km < hi)
        if s.sum():
            v = km[s] / (mins[s] / 60)
            rows.append({"band_km": f"{lo}-{hi}", "pairs": int(s.sum()),
                         "median_kmh": round(float(np.median(v)), 1),
                         "p10_kmh": round(float(np.percentile(v, 10)), 1),
                         "p90_kmh": round(float(np.percentile(v, 90)), 1)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- tests
def test_rivm_utrecht_full_matrix():
    if not (RAW / "rivm_ravu_utrecht" / "demand_nodes.txt").exists():
        pytest.skip("../shared/data/raw/rivm_ravu_utrecht not available; see the sample test")
    m = val.rivm_check(NETWORK, RAW / "rivm_ravu_utrecht")
    print("RIVM full:", m)
    assert m["reference"].startswith("full matrix") and m["pairs"] == 217 * 216
    assert m["applicable"] and m["pairs_covered"] == m["pairs"]
    assert m["mdape"] <= T["rivm_mdape_max"]
    assert m["spearman"] >= T["rivm_spearman_min"]
    assert T["rivm_factor_min"] <= m["factor"] <= T["rivm_factor_max"]


def test_rivm_utrecht_committed_sample():
    m = val.rivm_check(NETWORK)
    print("RIVM sample:", m)
    assert m["pairs"] == 600 and m["pairs_covered"] == 600
    assert m["mdape"] <= T["rivm_mdape_max"]
    assert m["spearman"] >= T["rivm_spearman_min"] - 0.02


def test_intercity_pairs():
    ic = val.intercity_table(NETWORK)
    print(ic[["from_city", "to_city", "road_km", "car_min", "model_min", "error"]])
    provinces = set(ic.from_province) | set(ic.to_province)
    assert len(ic) >= 20 and len(provinces) == 12
    assert ic.covered.all() and np.isfinite(ic.model_min).all()
    assert ic.error.abs().median() <= T["intercity_mdape_max"]
    assert ic.error.abs().max() <= T["intercity_abs_max"]
    assert abs(ic.error.median()) <= T["intercity_bias_max"]  # no systematic bias
    assert spearmanr(ic.model_min, ic.car_min)[0] >= T["intercity_spearman_min"]
    check = val.intercity_check(NETWORK)
    assert check["passed"] and check["pairs_covered"] == len(ic)


def test_effective_speed_by_distance_band():
    t = speed_bands()
    print(t)
    med = t.median_kmh.to_numpy()
    assert (np.diff(med) > -2).all()  # faster over longer distances
    assert 15 <= med[0] <= 45  # short local trips
    assert 55 <= med[-1] <= 100  # long trips over the motorways (crow-fly speed)


def test_every_district_and_hospital_reaches_a_site():
    d = read_districts()
    areas = np.array([[r["x"], r["y"]] for r in d])
    sites = rd(*np.array(list(UMCS.values())).T)
    M = area_site_minutes(areas, sites, NETWORK)
    assert np.isfinite(M).all(), "a district cannot reach any site"
    nearest = M.min(axis=1)
    # Wadden islands (ferries) are the slowest; the mainland is within 2.5 h of a UMC
    island = np.array([bool(r["island"]) for r in d])
    assert nearest[~island].max() <= 150
    assert nearest[island].max() <= 300
    cov = val.coverage_check(NETWORK)
    assert cov["passed"] and cov["districts_covered"] == 3340 and cov["sites_covered"] == 111
    h = RAW / "rivm_mapnl" / "ziekenhuizen_2016.csv"
    if not h.exists():
        pytest.skip("../shared/data/raw/rivm_mapnl not available for the 2016 hospitals")
    hs = pd.read_csv(h)
    hxy = rd(hs.lat, hs.lon)
    H = area_site_minutes(areas, hxy, NETWORK)
    assert np.isfinite(H).all()
    assert np.isfinite(area_site_minutes(hxy, sites, NETWORK)).all()
    near = H.min(axis=1)
    print(f"nearest hospital: median {np.median(near):.1f}, "
          f"p99 {np.percentile(near, 99):.1f}, max {near.max():.1f} min")


def test_validate_network_passes_for_the_network_under_test():
    report = val.validate_network(NETWORK)
    print(report["text"])
    assert report["passed"], report["text"]


def test_validation_of_a_network_that_covers_nothing_does_not_pass(tmp_path):
    """A regional extract far from Utrecht: the reference checks do not apply, no pass."""
    from herschik.geo.network import save_network
    from herschik.geo.osm import read_osm
    from herschik.scenarios.cli.main import main

    sample = TESTS_DATA / "osm_samples" / "amsterdam.osm.pbf"
    net = save_network(read_osm(sample), tmp_path / "ams.npz")
    report = val.validate_network(net)
    assert not report["passed"]
    assert not report["rivm"]["applicable"] and report["rivm"]["pairs_covered"] == 0
    assert 0 < report["coverage"]["districts_covered"] < 200
    assert "NOT PASSED" in report["text"]
    assert main(["network", "validate", "--network", str(net)]) == 1
