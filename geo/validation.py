"""Validate any road network against reference travel times (docs/VALIDATION.md).

Three checks, the same for the embedded default and for any user network
(``herschik network validate --network FILE``, ``HERSCHIK_VALIDATE_NETWORK=FILE pytest
tests/geo/test_validation.py``):

* **RIVM Utrecht**: the RIVM 2009 ambulance driving-time matrix of region Utrecht (217 PC4
  points; the full matrix from a folder ``rivm_ravu_utrecht`` when given, else the committed
  600-pair sample ``geo/data/validation/rivm_utrecht_pairs.csv``). One speed factor is fitted
  (median ratio reference / model: ambulances are faster than cars), then the median absolute
  percentage error and the Spearman rank correlation are measured.
* **inter-city**: 35 centre-to-centre car trips over all 12 provinces
  (``geo/data/validation/validation_intercity.csv``, route-planner times, +-10 %): median and
  maximum absolute error, median signed error (bias), Spearman.
* **coverage**: how many of the 3,340 CBS district centroids and the default dataset's sites
  lie within :data:`geo.coverage.MAX_SNAP_M` of the network, and whether every covered
  district reaches a covered site.

Pairs with a point outside the network's coverage are left out and counted; a check with too
few covered pairs is reported as not applicable. The network passes when every applicable check
is within its thresholds (:data:`THRESHOLDS`) and at least one reference check applies.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.coverage import MAX_SNAP_M, CoverageError
from herschik.geo.dataset import load_dataset
from herschik.geo.skeleton import read_districts
from herschik.geo.traveltime import area_site_travel

#: Thresholds (what the embedded default reaches; see docs/VALIDATION.md).
THRESHOLDS: dict[str, float] = {
    "rivm_mdape_max": 0.15,
    "rivm_spearman_min": 0.90,
    "rivm_factor_min": 0.70,
    "rivm_factor_max": 1.10,
    "intercity_mdape_max": 0.12,
    "intercity_abs_max": 0.50,
    "intercity_bias_max": 0.10,
    "intercity_spearman_min": 0.95,
}
#: Fewest covered pairs for a reference check to apply.
MIN_PAIRS = {"rivm": 100, "intercity": 10}


def _data_file(name: str) -> Path:
    return Path(str(resources.files("herschik.geo") / "data" / "validation" / name))


def _rd(lat, lon) -> np.ndarray:
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", "EPSG:28992", always_xy=True)
    x, y = t.transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.c_[x, y]


def fit_metrics(model: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """One multiplicative factor (median ratio truth / model), then MdAPE, p90 and Spearman."""
    from scipy.stats import spearmanr

    factor = float(np.median(truth / model))
    ape = np.abs(factor * model - truth) / truth
    return {
        "factor": factor,
        "mdape": float(np.median(ape)),
        "p90_ape": float(np.percentile(ape, 90)),
        "spearman": float(spearmanr(model, truth)[0]),
        "n": int(len(truth)),
    }


def _travel(a: np.ndarray, b: np.ndarray, network) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minutes between unique points, and which points are covered (snap <= MAX_SNAP_M)."""

    tr = area_site_travel(a, b, network)
    return tr.minutes, tr.area_snap_m <= MAX_SNAP_M, tr.site_snap_m <= MAX_SNAP_M


def rivm_reference(rivm_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray, str]:
    """(from_xy, to_xy, minutes, label): the full RIVM matrix in ``rivm_dir`` (the folder
    ``rivm_ravu_utrecht`` with ``demand_nodes.txt`` and ``rijtijden_ravu_rivm2009.txt``), else
    the committed 600-pair sample."""
    if rivm_dir is not None and (Path(rivm_dir) / "demand_nodes.txt").exists():
        d = Path(rivm_dir)
        nodes = np.loadtxt(d / "demand_nodes.txt", skiprows=1)
        txt = (d / "rijtijden_ravu_rivm2009.txt").read_text().strip().strip(",")
        T = np.array([int(v) for v in txt.split(",")], dtype=float).reshape(len(nodes), -1)
        xy = nodes[:, 2:4]
        i, j = np.nonzero(~np.eye(len(xy), dtype=bool))
        return xy[i], xy[j], T[i, j] / 60.0, f"full matrix ({len(xy)} points)"
    p = pd.read_csv(_data_file("rivm_utrecht_pairs.csv"), comment="#")
    return (p[["from_x", "from_y"]].to_numpy(float), p[["to_x", "to_y"]].to_numpy(float),
            p["seconds"].to_numpy(float) / 60.0, f"committed sample ({len(p)} pairs)")


def _pair_minutes(a: np.ndarray, b: np.ndarray, network) -> tuple[np.ndarray, np.ndarray]:
    """Minutes of each pair (a[k] -> b[k]) and whether both ends are covered."""
    ua, ia = np.unique(a, axis=0, return_inverse=True)
    ub, ib = np.unique(b, axis=0, return_inverse=True)
    M, ca, cb = _travel(ua, ub, network)
    ia, ib = ia.ravel(), ib.ravel()
    return M[ia, ib], ca[ia] & cb[ib]


def rivm_check(network=None, rivm_dir: str | Path | None = None) -> dict[str, Any]:
    """The RIVM Utrecht comparison (see the module doc)."""
    a, b, truth, label = rivm_reference(rivm_dir)
    model, covered = _pair_minutes(a, b, network)
    ok = covered & np.isfinite(model) & (model > 0)
    out: dict[str, Any] = {"reference": label, "pairs": int(len(truth)),
                           "pairs_covered": int(ok.sum())}
    if ok.sum() < MIN_PAIRS["rivm"]:
        return {**out, "applicable": False, "passed": None}
    m = fit_metrics(model[ok], truth[ok])
    t = THRESHOLDS
    passed = (m["mdape"] <= t["rivm_mdape_max"] and m["spearman"] >= t["rivm_spearman_min"]
              and t["rivm_factor_min"] <= m["factor"] <= t["rivm_factor_max"])
    return {**out, **m, "applicable": True, "passed": bool(passed)}


def intercity_table(network=None) -> pd.DataFrame:
    """The inter-city trips with ``model_min``, ``error`` (relative), ``crow_km``, ``covered``."""
    ic = pd.read_csv(_data_file("validation_intercity.csv"), comment="#")
    a, b = _rd(ic.from_lat, ic.from_lon), _rd(ic.to_lat, ic.to_lon)
    model, covered = _pair_minutes(a, b, network)
    ic["model_min"] = model.round(1)
    ic["covered"] = covered
    ic["error"] = ((ic.model_min - ic.car_min) / ic.car_min).round(3)
    ic["crow_km"] = (np.hypot(*(a - b).T) / 1000).round(1)
    return ic


def intercity_check(network=None) -> dict[str, Any]:
    """The inter-city comparison (see the module doc)."""
    from scipy.stats import spearmanr

    ic = intercity_table(network)
    use = ic[ic.covered & np.isfinite(ic.model_min)]
    out: dict[str, Any] = {"pairs": int(len(ic)), "pairs_covered": int(len(use)),
                           "provinces": int(len(set(ic.from_province) | set(ic.to_province)))}
    if len(use) < MIN_PAIRS["intercity"]:
        return {**out, "applicable": False, "passed": None}
    err = use.error.to_numpy(float)
    m = {"mdape": float(np.median(np.abs(err))), "max_ape": float(np.abs(err).max()),
         "bias": float(np.median(err)),
         "spearman": float(spearmanr(use.model_min, use.car_min)[0]),
         "worst": use.loc[use.error.abs().idxmax(), ["from_city", "to_city"]].str.cat(sep="-")}
    t = THRESHOLDS
    passed = (m["mdape"] <= t["intercity_mdape_max"] and m["max_ape"] <= t["intercity_abs_max"]
              and abs(m["bias"]) <= t["intercity_bias_max"]
              and m["spearman"] >= t["intercity_spearman_min"])
    return {**out, **m, "applicable": True, "passed": bool(passed)}


def coverage_check(network=None) -> dict[str, Any]:
    """Districts and default sites within the snap distance; covered districts reach a site."""

    d = read_districts()
    areas = np.array([[r["x"], r["y"]] for r in d])
    sites = load_dataset(None).sites[["x", "y"]].to_numpy(float)
    M, ca, cs = _travel(areas, sites, network)
    reach = np.isfinite(M[np.ix_(ca, cs)]).any(axis=1) if cs.any() else np.zeros(ca.sum(), bool)
    return {"districts": int(len(areas)), "districts_covered": int(ca.sum()),
            "sites": int(len(sites)), "sites_covered": int(cs.sum()),
            "covered_districts_without_a_site": int((~reach).sum()),
            "max_snap_m": MAX_SNAP_M, "applicable": bool(ca.any()),
            "passed": bool(ca.any() and reach.all())}


def validate_network(network=None, rivm_dir: str | Path | None = None) -> dict[str, Any]:
    """All checks; ``{"passed", "rivm", "intercity", "coverage", "text"}``."""
    checks = {"rivm": rivm_check(network, rivm_dir), "intercity": intercity_check(network),
              "coverage": coverage_check(network)}
    applicable = [c for k, c in checks.items() if c["applicable"] and k != "coverage"]
    passed = bool(applicable) and all(c["passed"] for c in checks.values() if c["applicable"])
    return {"passed": passed, **checks, "thresholds": THRESHOLDS,
            "text": _text(checks, passed)}


def _verdict(c: dict[str, Any]) -> str:
    if not c["applicable"]:
        return "not applicable (too few covered pairs)"
    return "pass" if c["passed"] else "FAIL"


def _text(checks: dict[str, dict[str, Any]], passed: bool) -> str:
    r, i, c = checks["rivm"], checks["intercity"], checks["coverage"]
    t = THRESHOLDS
    lines = [f"RIVM Utrecht, {r['reference']}: {r['pairs_covered']} of {r['pairs']} pairs "
             f"covered: {_verdict(r)}"]
    if r["applicable"]:
        lines.append(f"  factor {r['factor']:.3f}, median abs error {r['mdape']:.1%} "
                     f"(<= {t['rivm_mdape_max']:.0%}), p90 {r['p90_ape']:.1%}, Spearman "
                     f"{r['spearman']:.3f} (>= {t['rivm_spearman_min']})")
    lines.append(f"inter-city trips: {i['pairs_covered']} of {i['pairs']} covered: "
                 f"{_verdict(i)}")
    if i["applicable"]:
        lines.append(f"  median abs error {i['mdape']:.1%} (<= {t['intercity_mdape_max']:.0%}),"
                     f" max {i['max_ape']:.1%} ({i['worst']}; <= "
                     f"{t['intercity_abs_max']:.0%}), bias {i['bias']:+.1%}, Spearman "
                     f"{i['spearman']:.3f}")
    lines.append(f"coverage: {c['districts_covered']} of {c['districts']} districts and "
                 f"{c['sites_covered']} of {c['sites']} sites within "
                 f"{c['max_snap_m'] / 1000:g} km; {c['covered_districts_without_a_site']} "
                 f"covered districts reach no covered site: {_verdict(c)}")
    lines.append("network validation: " + ("PASSED" if passed else "NOT PASSED"))
    return "\n".join(lines)


#: Bounds of the median ratio network / route-planner time over the inter-city trips that a
#: network covers, for :func:`check_intercity_times`. A network that passes `network validate`
#: is within a few percent; a wrong time unit or speed table is off by a factor of 3 or more.
INTERCITY_RATIO_RANGE = (0.5, 2.0)
#: fewest covered inter-city trips for the whole-network check to apply
MIN_INTERCITY_CHECK_PAIRS = 3


def check_intercity_times(network: Any, source: str) -> None:
    """Refuse (CoverageError, exit 2) a network whose times between the cities it covers are
    far from known car times (median ratio outside :data:`INTERCITY_RATIO_RANGE`): every edge
    may look plausible while the whole is not (issue 27). A network covering fewer than
    :data:`MIN_INTERCITY_CHECK_PAIRS` trips is not judged."""

    ic = intercity_table(network)
    use = ic[ic.covered & np.isfinite(ic.model_min) & (ic.model_min > 0)]
    if len(use) < MIN_INTERCITY_CHECK_PAIRS:
        return
    ratio = use.model_min.to_numpy(float) / use.car_min.to_numpy(float)
    median = float(np.median(ratio))
    low, high = INTERCITY_RATIO_RANGE
    if not low <= median <= high:
        worst = use.iloc[int(np.argmax(np.abs(np.log(ratio))))]
        raise CoverageError(
            source, "travel_time",
            f"times between the {len(use)} city pairs it covers are {median:.2f} x the known "
            f"car times (allowed {low:g}-{high:g}), e.g. {worst.from_city}-{worst.to_city} "
            f"{worst.model_min:g} min instead of about {worst.car_min:g}",
            len(use), [f"{r.from_city}-{r.to_city}" for r in use.itertuples()])
