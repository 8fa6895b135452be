"""An independent reference solver for tiny instances: every keep set enumerated, each one's
flow problem solved with scipy (linprog / milp), written without optimiser/'s model code.

``reference(instance, params, objective)`` is the best (primary, travel) over all keep sets
(None if infeasible); ``compare`` checks a solution against it and ``assert_matches`` solves
and checks (feasibility, diagnosis, optimum). Teach it every new constraint (docs/ARCHITECTURE.md,
"How to add a constraint").
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.stats import poisson


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


def reference(inst: Instance, params: SolveParams, objective: str
               ) -> tuple[float, float] | None:
    total_primary, total_travel = 0.0, 0.0
    for t in range(len(inst.treatments)):
        r = _reference_treatment(inst, params, t, objective)
        if r is None:
            return None
        total_primary += r[0]
        total_travel += r[1]
    return total_primary, total_travel


def compare(inst: Instance, sol, ref: tuple[float, float], objective: str) -> None:
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


def assert_matches(inst: Instance, params: SolveParams, objective: str):
    """Solve and compare with the brute-force reference: the same feasibility, a diagnosis
    when infeasible, the same optimum when feasible; the solution (or None)."""
    ref = reference(inst, params, objective)
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
    compare(inst, sol, ref, objective)
    return sol
