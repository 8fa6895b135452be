"""Validation of the national default network (numbers reported in docs/VALIDATION.md).

(a) RIVM 2009 ambulance driving-time matrix, region Utrecht (217 PC4 points): one fitted
    speed factor, median absolute percentage error, Spearman rank correlation. Uses the full
    matrix from ../shared when present, and always the committed 600-pair subsample.
(b) >= 20 inter-city car trips over all 12 provinces (tests/data/validation_intercity.csv).
(c) effective (crow-fly) speeds by distance band.
(d) every district centroid and every hospital site reaches a site (islands via ferries).

Run ``pytest tests/test_validation.py -s`` to print the numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from herschik.geo.skeleton import read_districts
from herschik.geo.traveltime import area_site_minutes
from pyproj import Transformer
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
RAW = ROOT.parent / "shared" / "data" / "raw"
_TO_RD = Transformer.from_crs("EPSG:4326", "EPSG:28992", always_xy=True)

#: Thresholds asserted (what the network reaches, see docs/VALIDATION.md).
RIVM_MDAPE_MAX = 0.15
RIVM_SPEARMAN_MIN = 0.90
INTERCITY_MDAPE_MAX = 0.12
INTERCITY_ABS_MAX = 0.50

#: The eight university medical centres (PROVENANCE spot checks), WGS84 lat, lon.
UMCS = {
    "Erasmus MC": (51.9101, 4.4660), "UMCG": (53.2230, 6.5742),
    "Radboudumc": (51.8234, 5.8601), "UMC Utrecht": (52.0866, 5.1802),
    "LUMC": (52.1668, 4.4775), "MUMC+": (50.8342, 5.7133),
    "AMC": (52.2944, 4.9582), "VUmc": (52.3363, 4.8591),
}


def rd(lat, lon) -> np.ndarray:
    x, y = _TO_RD.transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.c_[x, y]


def fit_metrics(model: np.ndarray, truth: np.ndarray) -> dict:
    """One multiplicative factor (median ratio), then MdAPE and Spearman."""
    factor = float(np.median(truth / model))
    ape = np.abs(factor * model - truth) / truth
    return {
        "factor": factor,
        "mdape": float(np.median(ape)),
        "p90_ape": float(np.percentile(ape, 90)),
        "spearman": float(spearmanr(model, truth)[0]),
        "n": int(len(truth)),
    }


def rivm_full() -> tuple[np.ndarray, np.ndarray] | None:
    d = RAW / "rivm_ravu_utrecht"
    if not (d / "demand_nodes.txt").exists():
        return None
    nodes = np.loadtxt(d / "demand_nodes.txt", skiprows=1)
    txt = (d / "rijtijden_ravu_rivm2009.txt").read_text().strip().strip(",")
    T = np.array([int(v) for v in txt.split(",")], dtype=float).reshape(len(nodes), -1)
    return nodes[:, 2:4], T / 60.0


def rivm_full_metrics() -> dict | None:
    r = rivm_full()
    if r is None:
        return None
    xy, T = r
    M = area_site_minutes(xy, xy)
    off = ~np.eye(len(xy), dtype=bool)
    return fit_metrics(M[off], T[off])


def rivm_sample_metrics() -> dict:
    p = pd.read_csv(DATA / "rivm_utrecht_pairs.csv", comment="#")
    a = p[["from_x", "from_y"]].to_numpy(float)
    b = p[["to_x", "to_y"]].to_numpy(float)
    ua, ia = np.unique(a, axis=0, return_inverse=True)
    ub, ib = np.unique(b, axis=0, return_inverse=True)
    M = area_site_minutes(ua, ub)
    return fit_metrics(M[ia.ravel(), ib.ravel()], p["seconds"].to_numpy(float) / 60.0)


def intercity_table() -> pd.DataFrame:
    ic = pd.read_csv(DATA / "validation_intercity.csv", comment="#")
    a, b = rd(ic.from_lat, ic.from_lon), rd(ic.to_lat, ic.to_lon)
    ua, ia = np.unique(a, axis=0, return_inverse=True)
    ub, ib = np.unique(b, axis=0, return_inverse=True)
    M = area_site_minutes(ua, ub)
    ic["model_min"] = M[ia.ravel(), ib.ravel()].round(1)
    ic["error"] = ((ic.model_min - ic.car_min) / ic.car_min).round(3)
    ic["crow_km"] = (np.hypot(*(a - b).T) / 1000).round(1)
    return ic


def speed_bands(n_pairs: int = 20000, seed: int = 0) -> pd.DataFrame:
    """Effective crow-fly speeds (km/h) of random district-centroid pairs by distance band."""
    d = read_districts()
    xy = np.array([[r["x"], r["y"]] for r in d])
    rng = np.random.default_rng(seed)
    src = rng.choice(len(xy), 400, replace=False)
    dst = rng.choice(len(xy), 50, replace=False)
    M = area_site_minutes(xy[src], xy[dst])
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
    m = rivm_full_metrics()
    if m is None:
        pytest.skip("../shared/data/raw/rivm_ravu_utrecht not available; see the sample test")
    print("RIVM full:", m)
    assert m["mdape"] <= RIVM_MDAPE_MAX
    assert m["spearman"] >= RIVM_SPEARMAN_MIN
    assert 0.7 <= m["factor"] <= 1.1


def test_rivm_utrecht_committed_sample():
    m = rivm_sample_metrics()
    print("RIVM sample:", m)
    assert m["n"] == 600
    assert m["mdape"] <= RIVM_MDAPE_MAX
    assert m["spearman"] >= RIVM_SPEARMAN_MIN - 0.02


def test_intercity_pairs():
    ic = intercity_table()
    print(ic[["from_city", "to_city", "road_km", "car_min", "model_min", "error"]])
    provinces = set(ic.from_province) | set(ic.to_province)
    assert len(ic) >= 20 and len(provinces) == 12
    assert np.isfinite(ic.model_min).all()
    assert ic.error.abs().median() <= INTERCITY_MDAPE_MAX
    assert ic.error.abs().max() <= INTERCITY_ABS_MAX
    assert abs(ic.error.median()) <= 0.10  # no systematic bias beyond 10 %
    assert spearmanr(ic.model_min, ic.car_min)[0] >= 0.95


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
    M = area_site_minutes(areas, sites)
    assert np.isfinite(M).all(), "a district cannot reach any site"
    nearest = M.min(axis=1)
    # Wadden islands (ferries) are the slowest; the mainland is within 2.5 h of a UMC
    island = np.array([bool(r["island"]) for r in d])
    assert nearest[~island].max() <= 150
    assert nearest[island].max() <= 300
    h = RAW / "rivm_mapnl" / "ziekenhuizen_2016.csv"
    if h.exists():
        hs = pd.read_csv(h)
        hxy = rd(hs.lat, hs.lon)
        H = area_site_minutes(areas, hxy)
        assert np.isfinite(H).all()
        assert np.isfinite(area_site_minutes(hxy, sites)).all()
        near = H.min(axis=1)
        print(f"nearest hospital: median {np.median(near):.1f}, "
              f"p99 {np.percentile(near, 99):.1f}, max {near.max():.1f} min")
