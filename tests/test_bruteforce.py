"""Brute force: enumerate every keep set, solve the flow problem, compare with the MIP.

The reference solver here is written independently of optimiser/formulation.py: for each
treatment and each subset K of its candidate sites it solves, with scipy (linprog, or milp for
single sourcing), "send every area's demand to sites in K within the travel limits so that every
site in K reaches its required volume and stays within capacity", for each objective. Treatments
are independent in these instances (no bundles / loss share), so the best total is the sum of
per-treatment bests.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.synthetic import synthetic_instance
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

TOL = 1e-5


def _reference_treatment(inst: Instance, params: SolveParams, t: int, objective: str
                         ) -> tuple[float, float] | None:
    """Best (primary, travel) for treatment t over all keep sets; None if infeasible.

    primary: travel -> patient-minutes; moved -> moved patients; providers -> -(kept sites);
    planner -> unnecessary moves (then travel).
    """
    n_a, n_s = len(inst.area_ids), len(inst.sites)
    tid = inst.treatment_ids[t]
    d = inst.demand[:, t]
    areas = [a for a in range(n_a) if d[a] > 0]
    closed = {(f.site_id, f.intervention_id) for f in params.force_close}
    forced = {(f.site_id, f.intervention_id) for f in params.force_keep}
    sites = []
    for s, site in enumerate(inst.sites):
        if (site.id, tid) in closed or (site.id, "*") in closed:
            continue
        if inst.baseline_volume[s, t] > 0 or params.allow_new_providers or (site.id, tid) in forced:
            sites.append(s)
    must = [s for s in range(n_s) if (inst.sites[s].id, tid) in forced]
    if any(s not in sites for s in must):
        return None
    margin = params.margin_for(tid)
    norm_of = [inst.treatments[t].norm_for(site.role) for site in inst.sites]
    bf = inst.baseline_flow[:, :, t]
    base = np.full(n_a, np.nan)
    for a in range(n_a):
        if bf[a].sum() > 0:
            base[a] = (bf[a] * np.where(np.isfinite(inst.travel_min[a]), inst.travel_min[a], 0)
                       ).sum() / bf[a].sum()

    def cap(s: int) -> float:
        c = np.inf
        if params.capacity_factor is not None:
            c = min(c, params.capacity_factor * inst.baseline_volume[s, t])
        for item in params.capacity:
            if item.site_id == inst.sites[s].id and item.intervention_id in ("*", tid):
                c = min(c, item.max_patients)
        return c

    providers_today = [s for s in range(n_s) if inst.baseline_volume[s, t] > 0]

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

    # small-region rule: whole demand below every site's norm -> at most one provider, no norm
    norms = [n for n in norm_of if n is not None]
    max_open = None
    if params.small_region_rule == "one_provider" and norms and 0 < d.sum() < min(norms):
        norm_of = [None if n is None else 0.0 for n in norm_of]
        max_open = 1
    most = params.max_providers.get(tid, params.max_providers.get("*"))
    if most is not None:  # at most `most` of the sites with a norm keep the treatment
        max_open = most if max_open is None else min(max_open, most)
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
              >= norm_of[s] * (1 + margin) - 1e-9}
    best: tuple[float, float] | None = None
    for r in range(len(normed) + 1 if max_open is None else min(max_open, len(normed)) + 1):
        for subset in itertools.combinations(normed, r):
            if any(s not in subset and s in normed for s in must):
                continue
            open_sites = list(subset) + free
            val = _flow_problem(inst, params, t, areas, open_sites, ok, cap, norm_of, margin,
                                objective, own_ok - set(subset))
            if val is None:
                continue
            primary = -float(len(subset)) if objective == "providers" else val[0]
            cand = (primary, val[1])
            tie = 1e-6 if objective == "planner" else 1e-7
            if best is None or cand[0] < best[0] - tie or (
                    abs(cand[0] - best[0]) <= tie and cand[1] < best[1]):
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
        req = 0.0 if norm_of[s] is None else norm_of[s] * (1 + margin)
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


SEEDS = list(range(24))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("objective", ["planner", "travel", "moved", "providers"])
def test_mip_matches_bruteforce_highs(seed: int, objective: str) -> None:
    inst, params = _tiny(seed)
    params = params.model_copy(update={"objective": objective})
    ref = _reference(inst, params, objective)
    sol = solve(inst, params)
    if ref is None:
        assert sol.status == "infeasible", f"reference infeasible, MIP {sol.status}"
        assert sol.diagnosis and sol.diagnosis["reason"]
        return
    assert sol.status == "optimal", f"reference feasible ({ref}), MIP {sol.status}"
    _compare(inst, sol, ref, objective)


@pytest.mark.parametrize("seed", SEEDS[:8])
@pytest.mark.parametrize("objective", ["planner", "travel", "moved", "providers"])
def test_mip_matches_bruteforce_cbc(seed: int, objective: str) -> None:
    inst, params = _tiny(seed)
    params = params.model_copy(update={"objective": objective, "solver": "cbc"})
    ref = _reference(inst, params, objective)
    sol = solve(inst, params)
    if ref is None:
        assert sol.status == "infeasible"
        return
    assert sol.status == "optimal"
    assert sol.solver == "cbc"
    _compare(inst, sol, ref, objective)


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


def _capped(seed: int) -> tuple[Instance, SolveParams]:
    """A tiny instance with a cap on providers that binds for some treatments: P of 1 or 2 on
    one treatment (or on every treatment, '*')."""
    inst, params = _tiny(seed)
    rng = np.random.default_rng(1000 + seed)
    key = "*" if rng.random() < 0.4 else inst.treatment_ids[int(rng.integers(len(inst.treatments)))]
    return inst, params.model_copy(update={"max_providers": {key: int(rng.integers(1, 3))}})


@pytest.mark.parametrize("seed", SEEDS[:16])
@pytest.mark.parametrize("objective", ["planner", "travel", "providers"])
def test_max_providers_matches_bruteforce(seed: int, objective: str) -> None:
    from herschik.optimiser.verify import verify

    inst, params = _capped(seed)
    params = params.model_copy(update={"objective": objective})
    ref = _reference(inst, params, objective)
    sol = solve(inst, params)
    if ref is None:
        assert sol.status == "infeasible", f"reference infeasible, MIP {sol.status}"
        assert sol.diagnosis and sol.diagnosis["reason"]
        return
    assert sol.status == "optimal", f"reference feasible ({ref}), MIP {sol.status}"
    _compare(inst, sol, ref, objective)
    assert verify(sol, inst, params) == []


def test_max_providers_bruteforce_cases_bind() -> None:
    """The capped cases above are not vacuous: the cap changes the optimum or feasibility of
    several of them."""
    changed = 0
    for seed in SEEDS[:16]:
        inst, params = _capped(seed)
        free = params.model_copy(update={"max_providers": {}})
        if _reference(inst, params, "travel") != _reference(inst, free, "travel"):
            changed += 1
    assert changed >= 4
