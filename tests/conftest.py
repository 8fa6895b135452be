"""Shared fixtures of the test suite.

- ``make_result``: a small but realistic result built by hand (no solver): 36 areas on a grid
  of square polygons near Utrecht in RD New (one a MultiPolygon, one with a hole), six sites,
  three treatments with a norm; after reallocation some sites lose a treatment, one gains one,
  one area is split over two sites. The contract tables come from nearest-site assignments, so
  volumes and travel times are consistent. Used by test_export and test_report.
- ``parse_report`` / ``report_tables``: headings, tables and images of a report.html.
- ``chromium``: runs Debian's headless Chromium (skipped locally when absent, fails under CI).
- ``brute_force``: an independent reference solver that enumerates every keep set of tiny
  instances (scipy linprog / milp), with ``tiny(seed)`` instances and ``compare``.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from herschik.geo.export import ASSIGNMENT_COLUMNS, SITE_VOLUME_COLUMNS
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.synthetic import synthetic_instance
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.stats import poisson
from shapely.geometry import MultiPolygon, Polygon, box

CHROMIUM = "/usr/bin/chromium"


# --- the hand-built result ----------------------------------------------------------------------
X0, Y0, CELL = 125_000.0, 445_000.0, 4_000.0
SITES = [
    # site_id, name, organisation, type, x, y
    ("S1", "UMC Utrecht", "UMC Utrecht", "umc", 137_500.0, 455_500.0),
    ("S2", "Diakonessenhuis", "Diakonessenhuis", "general", 131_000.0, 449_000.0),
    ("S3", "St. Antonius Nieuwegein", "St. Antonius", "general", 133_000.0, 463_000.0),
    ("S4", "Meander Amersfoort", "Meander MC", "general", 145_000.0, 464_000.0),
    ("S5", "Gelre & Vallei", "Gelderse Vallei", "general", 146_000.0, 448_000.0),
    ("S6", "Tergooi Hilversum", "Tergooi MC", "general", 128_000.0, 466_000.0),
]
# treatment -> (norm, {site: provides before}, {site: provides after})
TREATMENTS = {
    "oesophagus": (8.0, {"S1", "S2", "S3", "S4"}, {"S1", "S4"}),
    "pancreas": (3.0, {"S1", "S3", "S5"}, {"S1", "S5"}),
    "rectum": (20.0, {"S2", "S4"}, {"S2", "S4", "S6"}),
}
RATE = {"oesophagus": 0.9, "pancreas": 0.6, "rectum": 3.5}  # patients per area


@dataclass
class FakeDataset:
    """Duck-typed stand-in for geo.dataset.Dataset (only what the outputs use)."""

    sites: pd.DataFrame
    areas: pd.DataFrame
    area_geometries: gpd.GeoDataFrame | None
    treatments: pd.DataFrame
    regions: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


def _minutes(ax: float, ay: float, sx: float, sy: float) -> float:
    return round(4.0 + 1.3 * math.hypot(ax - sx, ay - sy) / 1000.0, 3)


def _make_result(region_id: str = "midden"
                 ) -> tuple[dict, pd.DataFrame, pd.DataFrame, FakeDataset]:
    """(summary, site_volumes, assignments, dataset) of a small consistent solved run."""
    sites = pd.DataFrame(SITES, columns=["site_id", "site_name", "organisation", "site_type",
                                         "x", "y"])
    sites["topclinical"] = sites["site_type"] == "umc"
    sites["hn_role"] = ""
    sites["region_id"] = region_id
    sites["municipality_code"] = "GM0344"
    rows, polys = [], []
    for i in range(6):
        for j in range(6):
            aid = f"WK{i}{j}"
            poly: Any = box(X0 + i * CELL, Y0 + j * CELL, X0 + (i + 1) * CELL, Y0 + (j + 1) * CELL)
            if (i, j) == (2, 2):  # a polygon with a hole
                poly = Polygon(poly.exterior.coords, [box(X0 + 2.4 * CELL, Y0 + 2.4 * CELL,
                                                          X0 + 2.6 * CELL,
                                                          Y0 + 2.6 * CELL).exterior.coords])
            if (i, j) == (5, 5):  # a MultiPolygon (island)
                poly = MultiPolygon([poly, box(X0 + 6.2 * CELL, Y0 + 5.2 * CELL,
                                               X0 + 6.6 * CELL, Y0 + 5.6 * CELL)])
            cx, cy = X0 + (i + 0.5) * CELL, Y0 + (j + 0.5) * CELL
            rows.append((aid, f"Wijk {i}-{j}", "GM0344", region_id, 5000 + 100 * i, 900, cx, cy))
            polys.append(poly)
    areas = pd.DataFrame(rows, columns=["area_id", "area_name", "municipality_code", "region_id",
                                        "population", "pop_65plus", "x", "y"])
    area_geoms = gpd.GeoDataFrame({"area_id": areas["area_id"]}, geometry=polys, crs=28992)
    xy = sites.set_index("site_id")[["x", "y"]]

    asg_rows, sv_rows = [], []
    site_name = dict(zip(sites["site_id"], sites["site_name"], strict=True))
    for t, (norm, before, after) in TREATMENTS.items():
        vol_before: dict[str, float] = {s: 0.0 for s in sites["site_id"]}
        vol_after: dict[str, float] = {s: 0.0 for s in sites["site_id"]}
        for _, a in areas.iterrows():
            spread = (int(a.area_id[2]) + int(a.area_id[3])) % 4
            patients = round(RATE[t] * (1 + 0.05 * spread), 3)
            tb = {s: _minutes(a.x, a.y, *xy.loc[s]) for s in before}
            ta = {s: _minutes(a.x, a.y, *xy.loc[s]) for s in after}
            sb = min(tb, key=lambda s: (tb[s], s))
            sa = min(ta, key=lambda s: (ta[s], s))
            vol_before[sb] += patients
            split = [(sa, patients)]
            if t == "oesophagus" and a.area_id == "WK33":  # one split area
                other = sorted(after - {sa})[0]
                split = [(sa, round(patients * 0.7, 3)), (other, round(patients * 0.3, 3))]
            for s, p in split:
                vol_after[s] += p
                move = ("stays" if s == sb else "moved_optional" if sb in after
                        else "displaced")
                asg_rows.append((region_id, a.area_id, a.area_name, t, s, site_name[s], p,
                                 ta[s], tb[sb], round(ta[s] - tb[sb], 3), sb, site_name[sb],
                                 tb[sb], move, "optimal"))
        for s, name in zip(sites["site_id"], sites["site_name"], strict=True):
            # the odds of meeting the norm: Poisson around the volume after, kept sites only
            odds = (round(float(poisson.sf(math.ceil(norm) - 1, round(vol_after[s], 3))), 6)
                    if s in after else None)
            sv_rows.append((region_id, s, name, t, norm, norm * 1.1, round(vol_before[s], 3),
                            round(vol_after[s], 3), s in before, s in after, odds, odds,
                            "optimal"))
    site_volumes = pd.DataFrame(sv_rows, columns=SITE_VOLUME_COLUMNS)
    assignments = pd.DataFrame(asg_rows, columns=ASSIGNMENT_COLUMNS)
    w = assignments["patients"]
    extra = assignments["extra_min"]
    summary = {
        "contract": 1, "region_id": region_id,
        "scenario": {"margin": 0.1, "margin_by_treatment": {}, "max_travel": 60.0,
                     "max_extra_travel": None, "objective": "travel", "solver": "highs",
                     "force_close": [], "bundles": [["oesophagus", "pancreas"]]},
        "status": "optimal", "objective": 1234.5, "mip_gap": 0.0, "build_seconds": 0.12,
        "solve_seconds": 0.34, "solver": "highs",
        "kpis": {
            "patients": float(w.sum()),
            "patients_moved": float(w[extra > 0].sum()),
            "mean_travel_min_before": float((w * assignments["travel_min_before"]).sum() / w.sum()),
            "mean_travel_min_after": float((w * assignments["travel_min"]).sum() / w.sum()),
            "mean_extra_min": float((w * extra).sum() / w.sum()),
            "p90_extra_min": float(np.quantile(extra, 0.9)),
            "max_extra_min": float(extra.max()),
            "max_travel_min_after": float(assignments["travel_min"].max()),
            "providers_before": {t: len(v[1]) for t, v in TREATMENTS.items()},
            "providers_after": {t: len(v[2]) for t, v in TREATMENTS.items()},
            "shared_care": {"mean_travel_min_per_patient_year": 80.5,
                            "shared_care_travel_min_per_patient_year": 52.25},
        },
        "diagnosis": None, "baseline": "illustrative", "network": "default",
        "decomposition": "split by treatment: 2 independent sub-problems (bundle)",
        "subproblems": [{"treatments": ["oesophagus", "pancreas"], "status": "optimal",
                         "gap": 0.0, "variables": 420, "seconds": 0.2},
                        {"treatments": ["rectum"], "status": "optimal", "gap": 0.0,
                         "variables": 210, "seconds": 0.1}],
        "warnings": ["travel times from straight-line distance in this test"],
    }
    dataset = FakeDataset(
        sites=sites, areas=areas, area_geometries=area_geoms,
        treatments=pd.DataFrame({"intervention_id": list(TREATMENTS),
                                 "name": ["Oesophagus resection", "Pancreas resection",
                                          "Rectum cancer surgery"],
                                 "kind": "volume", "norm": [v[0] for v in TREATMENTS.values()]}),
        regions=pd.DataFrame({"region_id": [region_id], "region_name": ["Midden-Nederland"]}),
        meta={"name": "test", "baseline": "illustrative"},
    )
    return summary, site_volumes, assignments, dataset





@pytest.fixture(scope="session")
def make_result() -> Callable[..., tuple[dict, pd.DataFrame, pd.DataFrame, FakeDataset]]:
    """``make_result(region_id="midden")``: a fresh hand-built result each call."""
    return _make_result


# --- report.html, parsed ------------------------------------------------------------------------
class _Structure(HTMLParser):
    """Headings, tables (class, header cells, body rows) and images of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.tables: list[dict] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self._heading: str | None = None
        self._text: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._heading, self._text = tag, []
        elif tag == "table":
            self.tables.append({"class": a.get("class", ""), "headers": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "script":
            self.scripts += 1
        if tag in ("link", "a", "iframe", "source") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self.tables and not self.tables[-1]["rows"][-1]:
            self.tables[-1]["rows"].pop()  # the header row
        if tag == self._heading:
            self.headings.append((tag, "".join(self._text).strip()))
            self._heading = None
        elif tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            table = self.tables[-1]
            if tag == "th" and not table["rows"][-1] and len(table["rows"]) == 1:
                table["headers"].append(text)
            else:
                table["rows"][-1].append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._heading:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html_text: str) -> _Structure:
    parser = _Structure()
    parser.feed(html_text)
    return parser


def _tables(s: _Structure, cls: str) -> list[dict]:
    return [t for t in s.tables if t["class"] == cls]





@pytest.fixture(scope="session")
def parse_report() -> Callable[[str], _Structure]:
    return parse


@pytest.fixture(scope="session")
def report_tables() -> Callable[[_Structure, str], list[dict]]:
    """``report_tables(parsed, cls)``: the tables of that class, in page order."""
    return _tables


# --- headless Chromium --------------------------------------------------------------------------
def _run_chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)





@pytest.fixture
def chromium(tmp_path: Path) -> Callable[[list[str]], subprocess.CompletedProcess]:
    """``chromium(args)``: run headless Chromium (own profile below tmp_path)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing under CI: install the Debian package chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); required under CI")
    return lambda args: _run_chromium(args, tmp_path)


# --- the brute-force reference ------------------------------------------------------------------
TOL = 1e-5


def _candidate_sites(inst: Instance, params: SolveParams, t: int) -> tuple[list[int], list[int]]:
    """Sites that may provide treatment t, and those forced to keep it."""
    tid = inst.treatment_ids[t]
    closed = {(f.site_id, f.intervention_id) for f in params.force_close}
    forced = {(f.site_id, f.intervention_id) for f in params.force_keep}
    sites = []
    for s, site in enumerate(inst.sites):
        if (site.id, tid) in closed or (site.id, "*") in closed:
            continue
        if inst.baseline_volume[s, t] > 0 or params.allow_new_providers or (site.id, tid) in forced:
            sites.append(s)
    must = [s for s in range(len(inst.sites)) if (inst.sites[s].id, tid) in forced]
    return sites, must


def _baseline_travel(inst: Instance, t: int) -> np.ndarray:
    """Each area's patient-weighted mean travel today (NaN without patients)."""
    bf = inst.baseline_flow[:, :, t]
    base = np.full(len(inst.area_ids), np.nan)
    for a in range(len(inst.area_ids)):
        if bf[a].sum() > 0:
            base[a] = (bf[a] * np.where(np.isfinite(inst.travel_min[a]), inst.travel_min[a], 0)
                       ).sum() / bf[a].sum()
    return base


def _capacity(inst: Instance, params: SolveParams, t: int) -> Callable[[int], float]:
    tid = inst.treatment_ids[t]

    def cap(s: int) -> float:
        c = np.inf
        if params.capacity_factor is not None:
            c = min(c, params.capacity_factor * inst.baseline_volume[s, t])
        for item in params.capacity:
            if item.site_id == inst.sites[s].id and item.intervention_id in ("*", tid):
                c = min(c, item.max_patients)
        return c

    return cap


def _reachable(inst: Instance, params: SolveParams, t: int
               ) -> Callable[[int, int], bool]:
    base = _baseline_travel(inst, t)
    providers_today = [s for s in range(len(inst.sites)) if inst.baseline_volume[s, t] > 0]

    def ok(a: int, s: int) -> bool:
        m = inst.travel_min[a, s]
        if not np.isfinite(m):
            return False
        limit = params.max_travel
        if limit is not None and params.remote_areas == "nearest_provider" and providers_today:
            limit = max(limit, min(inst.travel_min[a, p] for p in providers_today))
        if limit is not None and m > limit + 1e-9:
            return False
        if params.max_extra_travel is not None and not np.isnan(base[a]):
            if m - base[a] > params.max_extra_travel + 1e-9:
                return False
        return True

    return ok


def _better(cand: tuple[float, float], best: tuple[float, float] | None, objective: str) -> bool:
    tie = 1e-6 if objective == "planner" else 1e-7
    return best is None or cand[0] < best[0] - tie or (
        abs(cand[0] - best[0]) <= tie and cand[1] < best[1])


def _provider_cap(params: SolveParams, tid: str, max_open: int | None) -> int | None:
    """At most this many sites with a norm keep the treatment (max_providers, its own entry
    beating '*'), besides the small-region rule's one; ``None``: no cap."""
    most = params.max_providers.get(tid, params.max_providers.get("*"))
    if most is None:
        return max_open
    return most if max_open is None else min(max_open, most)


def _reference_required(norm: float, params: SolveParams, margin: float) -> float:
    """The reference's required volume: norm x (1 + margin), or under norm_confidence the
    smallest expected volume meeting the norm over the period with that probability, found by
    its own bisection on scipy.stats.poisson (not optimiser/confidence.py's inverse)."""
    if params.norm_confidence is None or norm <= 0:
        return norm * (1 + margin)
    years = params.norm_period_years
    needed = math.ceil(round(norm * years, 9))

    def meets(lam: float) -> bool:
        return bool(poisson.sf(needed - 1, lam * years) >= params.norm_confidence)

    lo, hi = 0.0, norm + 10.0
    while not meets(hi):
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if meets(mid) else (mid, hi)
    return max(norm, hi)


def _reference_treatment(inst: Instance, params: SolveParams, t: int, objective: str
                         ) -> tuple[float, float] | None:
    """Best (primary, travel) for treatment t over all keep sets; None if infeasible.

    primary: travel -> patient-minutes; moved -> moved patients; providers -> -(kept sites);
    planner -> unnecessary moves (then travel).
    """
    tid = inst.treatment_ids[t]
    d = inst.demand[:, t]
    areas = [a for a in range(len(inst.area_ids)) if d[a] > 0]
    sites, must = _candidate_sites(inst, params, t)
    if any(s not in sites for s in must):
        return None
    margin = params.margin_for(tid)
    norm_of = [inst.treatments[t].norm_for(site.role) for site in inst.sites]
    bf = inst.baseline_flow[:, :, t]
    cap, ok = _capacity(inst, params, t), _reachable(inst, params, t)

    # small-region rule: whole demand below every site's norm -> at most one provider, no norm
    norms = [n for n in norm_of if n is not None]
    max_open = None
    if params.small_region_rule == "one_provider" and norms and 0 < d.sum() < min(norms):
        norm_of = [None if n is None else 0.0 for n in norm_of]
        max_open = 1
    max_open = _provider_cap(params, tid, max_open)
    normed = [s for s in sites if norm_of[s] is not None]
    free = [s for s in sites if norm_of[s] is None]  # always open (no norm at that site)
    if not normed and objective != "planner":
        # a treatment without any norm keeps today's flows whatever the objective: solved with
        # the planner rule, then scored in the objective's units
        val = _flow_problem(inst, params, t, areas, free, ok, cap, norm_of, margin, "planner",
                            set())
        if val is None:
            return None
        primary = {"travel": val[1], "moved": val[2], "providers": 0.0}[objective]
        return primary, val[1]
    # planner: sites that reach the required volume with today's own patients within the limits
    own_ok = {s for s in normed
              if min(cap(s), sum(bf[a, s] for a in areas if ok(a, s)))
              >= _reference_required(norm_of[s], params, margin) - 1e-9}
    best: tuple[float, float] | None = None
    for r in range(len(normed) + 1 if max_open is None else min(max_open, len(normed)) + 1):
        for subset in itertools.combinations(normed, r):
            if any(s not in subset and s in normed for s in must):
                continue
            val = _flow_problem(inst, params, t, areas, list(subset) + free, ok, cap, norm_of,
                                margin, objective, own_ok - set(subset))
            if val is None:
                continue
            cand = (-float(len(subset)) if objective == "providers" else val[0], val[1])
            if _better(cand, best, objective):
                best = cand
    return best


def _flow_problem(inst, params, t, areas, open_sites, ok, cap, norm_of, margin, objective,
                  closed_self_sufficient=frozenset()):
    """Min objective flow to the open sites; returns (objective, travel, moved) or None.

    planner: objective = unnecessary moves = today's patients (within the limits) of open sites
    and of closed sites that were self-sufficient, minus those who stay; then least travel
    among the flows with that many (two LPs / MILPs)."""
    pairs = [(a, s) for a in areas for s in open_sites if ok(a, s)]
    n = len(pairs)
    d = inst.demand[:, t]
    if any(not any(p[0] == a for p in pairs) for a in areas):
        return None
    use_stay = objective in ("moved", "planner")
    stay_pairs = [k for k, (a, s) in enumerate(pairs) if inst.baseline_flow[a, s, t] > 0] \
        if use_stay else []
    n_var = n + len(stay_pairs)
    single = params.single_sourcing
    # column k of flow: x (patients) or z (share, flow = d*z) with single sourcing
    scale = np.array([d[a] if single else 1.0 for a, _ in pairs])
    travel = np.array([inst.travel_min[a, s] for a, s in pairs]) * scale
    rows, lo, hi = [], [], []
    for a in areas:
        row = np.zeros(n_var)
        for k, (aa, _) in enumerate(pairs):
            if aa == a:
                row[k] = 1.0
        rows.append(row)
        rhs = 1.0 if single else d[a]
        lo.append(rhs)
        hi.append(rhs)
    for s in open_sites:
        row = np.zeros(n_var)
        for k, (_, ss) in enumerate(pairs):
            if ss == s:
                row[k] = scale[k]
        req = 0.0 if norm_of[s] is None else _reference_required(norm_of[s], params, margin)
        rows.append(row)
        lo.append(req)
        hi.append(cap(s))
    for j, k in enumerate(stay_pairs):
        row = np.zeros(n_var)
        row[n + j] = 1.0
        row[k] = -scale[k]
        rows.append(row)
        lo.append(-np.inf)
        hi.append(0.0)
    a_mat = np.array(rows)
    ub = np.concatenate([np.ones(n) if single else np.array([d[a] for a, _ in pairs]),
                         [inst.baseline_flow[pairs[k][0], pairs[k][1], t] for k in stay_pairs]])
    if objective in ("moved", "planner"):
        c = np.concatenate([np.zeros(n), -np.ones(len(stay_pairs))])
    else:
        c = np.concatenate([travel, np.zeros(len(stay_pairs))])
    stay_part = np.concatenate([np.zeros(n), np.ones(len(stay_pairs))])
    solved = _lp(c, a_mat, lo, hi, ub, n, len(stay_pairs), single)
    if solved is None:
        return None
    x = solved
    moved = float(d[areas].sum() - stay_part @ x)
    if objective == "planner":
        counted = sum(inst.baseline_flow[a, s, t] for a in areas
                      for s in closed_self_sufficient if ok(a, s))
        counted += sum(inst.baseline_flow[pairs[k][0], pairs[k][1], t] for k in stay_pairs)
        most_stay = float(stay_part @ x)
        # phase 2: at least as many stay (solver tolerance), least travel
        a2 = np.vstack([a_mat, stay_part])
        x2 = _lp(np.concatenate([travel, np.zeros(len(stay_pairs))]), a2,
                 [*lo, most_stay - 1e-7], [*hi, np.inf], ub, n, len(stay_pairs), single)
        if x2 is None:
            return None
        return (float(counted - most_stay), float(travel @ x2[:n]),
                float(d[areas].sum() - stay_part @ x2))
    travel_val = float(travel @ x[:n])
    if objective == "moved":
        return float(d[areas].sum() + c @ x), travel_val, moved
    if objective == "providers":
        return 0.0, travel_val, moved
    return travel_val, travel_val, moved


def _lp(c, a_mat, lo, hi, ub, n, n_stay, single):
    """Solve min c.x over the rows lo <= A x <= hi, 0 <= x <= ub (x integer with single
    sourcing); the solution vector or None."""
    n_var = n + n_stay
    a_mat = np.asarray(a_mat)
    if single:
        integrality = np.concatenate([np.ones(n), np.zeros(n_stay)])
        res = milp(c, constraints=LinearConstraint(sp.csr_matrix(a_mat), lo, hi),
                   bounds=Bounds(np.zeros(n_var), ub), integrality=integrality,
                   options={"mip_rel_gap": 1e-9})
        if res.status != 0:
            return None
        return res.x
    a_ub, b_ub, a_eq, b_eq = [], [], [], []
    for row, low, high in zip(a_mat, lo, hi, strict=True):
        if low == high:
            a_eq.append(row)
            b_eq.append(low)
            continue
        if np.isfinite(high):
            a_ub.append(row)
            b_ub.append(high)
        if np.isfinite(low):
            a_ub.append(-row)
            b_ub.append(-low)
    res = linprog(c, A_ub=np.array(a_ub) if a_ub else None, b_ub=b_ub or None,
                  A_eq=np.array(a_eq), b_eq=b_eq,
                  bounds=list(zip(np.zeros(n_var), ub, strict=True)), method="highs")
    if res.status != 0:
        return None
    return res.x


def _reference(inst: Instance, params: SolveParams, objective: str
               ) -> tuple[float, float] | None:
    total_primary, total_travel = 0.0, 0.0
    for t in range(len(inst.treatments)):
        r = _reference_treatment(inst, params, t, objective)
        if r is None:
            return None
        total_primary += r[0]
        total_travel += r[1]
    return total_primary, total_travel


def _tiny(seed: int) -> tuple[Instance, SolveParams]:
    rng = np.random.default_rng(seed)
    n_sites = int(rng.integers(2, 6))
    n_areas = int(rng.integers(3, 9))
    n_treat = int(rng.integers(1, 3))
    base = synthetic_instance(n_areas, n_sites, n_treat, seed=seed, region_km=60,
                              norms=[None] * n_treat)
    norms: list[float | None] = []
    for t in range(n_treat):
        vols = base.baseline_volume[:, t][base.baseline_volume[:, t] > 0]
        # some treatments without a norm; otherwise a norm around the typical volume
        norms.append(None if rng.random() < 0.15 else
                     float(np.round(rng.uniform(0.3, 1.2) * np.median(vols), 2)))
    inst = synthetic_instance(n_areas, n_sites, n_treat, seed=seed, region_km=60, norms=norms,
                              tiered=bool(rng.random() < 0.3))
    kw: dict = {"mip_gap": 1e-9}
    if rng.random() < 0.3:
        kw["max_travel"] = float(np.round(np.quantile(inst.travel_min, 0.7), 1))
    if rng.random() < 0.3:
        kw["max_extra_travel"] = float(rng.uniform(5, 25))
    if rng.random() < 0.4:
        kw["margin"] = float(rng.choice([0.1, 0.25, 0.5]))
    if rng.random() < 0.3:
        kw["capacity_factor"] = float(rng.uniform(1.1, 2.0))
    if rng.random() < 0.25:
        kw["single_sourcing"] = True
    if rng.random() < 0.25:
        kw["allow_new_providers"] = True
    if rng.random() < 0.2:
        kw["force_close"] = [{"site_id": inst.site_ids[0]}]
    if rng.random() < 0.2:
        s = int(np.argmax(inst.baseline_volume[:, 0]))
        kw["force_keep"] = [{"site_id": inst.site_ids[s], "intervention_id": inst.treatment_ids[0]}]
    return inst, SolveParams(**kw)





def _compare(inst: Instance, sol, ref: tuple[float, float], objective: str) -> None:
    travel = np.where(np.isfinite(inst.travel_min), inst.travel_min, 0.0)
    mip_travel = float(np.einsum("ast,as->", sol.flow, travel))
    if objective == "planner":
        assert sol.objective == pytest.approx(ref[0], abs=1e-4)  # unnecessary moves
        assert mip_travel == pytest.approx(ref[1], rel=1e-6, abs=1e-3)
    elif objective == "travel":
        assert sol.objective == pytest.approx(ref[0], rel=1e-6, abs=1e-5)
    elif objective == "moved":
        # the tie-break term can cost at most 1e-4 patients (rows.objective.TIE_BREAK_TOTAL)
        assert sol.objective == pytest.approx(ref[0], rel=1e-6, abs=2e-4)
    else:
        assert sol.objective == pytest.approx(-ref[0], abs=1e-9)  # kept pairs
        assert mip_travel == pytest.approx(ref[1], rel=1e-6, abs=1e-5)



def _assert_matches(inst: Instance, params: SolveParams, objective: str):
    """Solve and compare with the brute-force reference: the same feasibility, a diagnosis
    when infeasible, the same optimum when feasible; the solution (or None)."""
    from herschik.optimiser.solve import solve

    ref = _reference(inst, params, objective)
    sol = solve(inst, params)
    if ref is None:
        # some treatment has no plan: the others keep theirs (a partial plan) unless none has
        assert sol.status in ("infeasible", "partially_infeasible"), \
            f"reference infeasible, MIP {sol.status}"
        assert sol.diagnosis and sol.diagnosis["reason"]
        if sol.status == "partially_infeasible":
            assert not set(sol.diagnosis["infeasible_treatments"]) & set(
                sol.diagnosis["solved_treatments"])
        return None
    assert sol.status == "optimal", f"reference feasible ({ref}), MIP {sol.status}"
    assert sol.solver == params.solver
    _compare(inst, sol, ref, objective)
    return sol


@pytest.fixture(scope="session")
def brute_force() -> types.SimpleNamespace:
    """``tiny(seed) -> (instance, params)``, ``reference(instance, params, objective)`` (None if
    infeasible), ``compare(instance, solution, reference, objective)`` and
    ``assert_matches(instance, params, objective)`` (solve, then all of the above)."""
    return types.SimpleNamespace(tiny=_tiny, reference=_reference, compare=_compare,
                                 assert_matches=_assert_matches)


@pytest.fixture(scope="session")
def noordoost_instance() -> Instance:
    """Noordoost on the embedded districts dataset (the region with the hardest sub-problems)."""
    import herschik

    return herschik.build_instance(herschik.load_dataset(None), "noordoost")
