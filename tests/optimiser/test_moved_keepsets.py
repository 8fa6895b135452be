"""optimiser/moved_keepsets.py: what norm_keepsets.py's branch and bound reads on ``moved``
models (issue 23 goal 3: national kidney_local, pancreas_systemic, kidney_systemic and
pancreas_ercp did not close in 60 s). Checked against the independent per-keep-set LPs of
tests/support/bruteforce.py (scipy, written without optimiser/'s model code) at random
nodes, against the brute-force optimum and HiGHS' and CBC's branch and bound through
``solve`` with the verifier, on national-like models (every hospital with patients of its
own, an area's patients split over its nearest hospitals, norms that close about half) and
on the tests' random points (one baseline site per area, travel limits, margins, forced
keeps and closures, caps, grid ties, weights over six decades)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import highspy
import numpy as np
import pytest
from herschik.optimiser.algorithms import BRANCH_AND_BOUND_ONLY
from herschik.optimiser.formulation import build_arrays
from herschik.optimiser.instance import Instance, Site, Treatment
from herschik.optimiser.moved_keepsets import group_units, moved_tiers, stay_bound
from herschik.optimiser.norm_keepsets import (
    NORM_KEEPSETS,
    _read_model,
    solve_by_norm_branching,
)
from herschik.optimiser.pair_lp import PairLP
from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.verify import verify

from tests.support import bruteforce
from tests.support.bruteforce import reference
from tests.support.instances import meets_rows, random_points_instance

#: the moved objective's tie-break is at most this many patients in all (rows/objective.py)
TIE = 1e-4


def _national_like(seed: int, n_areas: int, n_sites: int, kept: float,
                   weight_range: tuple[float, float] = (1.0, 21.0), grid: bool = False
                   ) -> Instance:
    """Random points; each area's patients of today split over its 1-3 nearest sites (every
    site gets some), a norm of the total over ``kept`` sites: about half the sites short."""
    rng = np.random.default_rng(seed)
    base = random_points_instance(rng, n_areas, n_sites, grid, weight_range, 4)
    weights = base.demand[:, 0]
    order = np.argsort(base.travel_min, axis=1, kind="stable")
    flow = np.zeros((n_areas, n_sites, 1))
    for a in range(n_areas):
        split = rng.dirichlet(np.ones(int(rng.integers(1, 4))))
        flow[a, order[a, :split.shape[0]], 0] = weights[a] * split
    # every site some patients of its own: its nearest area sends a share there
    for j in np.nonzero(flow[:, :, 0].sum(axis=0) == 0)[0]:
        a = int(np.argmin(base.travel_min[:, j]))
        moved = flow[a, :, 0].sum() * 0.3
        flow[a, :, 0] *= 0.7
        flow[a, j, 0] += moved
    sites = tuple(Site(id=f"S{j}") for j in range(n_sites))
    norm = round(float(weights.sum()) / kept, 4)
    return replace(base, sites=sites, treatments=(Treatment(id="T", norm=norm),),
                   baseline_flow=flow, baseline_volume=flow.sum(axis=0))


def _keep_set_optima(inst: Instance, params: SolveParams) -> dict[frozenset[int], float]:
    """Moved patients of every keep set's best plan by the brute-force module's own flow LP
    (scipy, no tie-break), keyed by the kept sites; infeasible sets left out."""
    t = 0
    d = inst.demand[:, t]
    areas = [a for a in range(len(inst.area_ids)) if d[a] > 0]
    sites, _ = bruteforce._candidate_sites(inst, params, t)
    cap, ok = bruteforce._capacity(inst, params, t), bruteforce._reachable(inst, params, t)
    norm_of = [inst.treatments[t].norm_for(site.role) for site in inst.sites]
    margin = params.margin_for("T")
    out = {}
    for r in range(len(sites) + 1):
        for subset in itertools.combinations(sites, r):
            val = bruteforce._flow_problem(inst, params, t, areas, list(subset), ok, cap,
                                           norm_of, margin, "moved")
            if val is not None:
                out[frozenset(subset)] = val[0]
    return out


def _read(inst: Instance, params: SolveParams):
    arrays = build_arrays(inst, params, [0])
    read = _read_model(arrays, min_keep=1)
    assert read is not None
    model, stay, open_stay = read
    assert stay is not None and open_stay is not None
    return arrays, model, stay, open_stay


def _site_of_bit(arrays, model) -> np.ndarray:
    return arrays.y_site[model.y_column - arrays.y_start]


@pytest.mark.parametrize("seed", range(24))
def test_stay_bound_is_below_every_keep_set_of_a_node(seed: int) -> None:
    """At random nodes (forced keeps and closures), the combinatorial bound is at most the
    moved patients of every keep set of the node (brute force, scipy); its keep set is one
    of the node's; with no travel limit it is attained at the root (national-like)."""
    rng = np.random.default_rng(1000 + seed)
    limit = seed % 3 == 2
    inst = _national_like(seed, int(rng.integers(10, 25)), int(rng.integers(4, 8)),
                          kept=float(rng.uniform(1.5, 4.0)), grid=seed % 4 == 1,
                          weight_range=(1e-3, 1e3) if seed % 5 == 3 else (1.0, 21.0))
    kw: dict = {"objective": "moved", "allow_new_providers": True}
    if limit:
        finite = inst.travel_min[np.isfinite(inst.travel_min)]
        kw["max_travel"] = float(np.quantile(finite, 0.6))
    if seed % 4 == 0:
        kw["margin"] = 0.2
    params = SolveParams(**kw)
    arrays, model, stay, open_stay = _read(inst, params)
    bound = stay_bound(model, stay, open_stay)
    assert bound is not None
    optima = _keep_set_optima(inst, params)
    site_of = _site_of_bit(arrays, model)
    offset = arrays.offset
    assert offset == pytest.approx(bound.total, rel=1e-12)
    for trial in range(12):
        must = rng.random(model.k) < (0.0 if trial == 0 else 0.2)
        banned = ~must & (rng.random(model.k) < (0.0 if trial == 0 else 0.2))
        got = bound.bound(must, banned)
        inside = [v for s, v in optima.items()
                  if all(site_of[j] in s for j in np.nonzero(must)[0])
                  and not any(site_of[j] in s for j in np.nonzero(banned)[0])]
        if got is None:
            assert not inside  # no count of kept sites fits: nor has any keep set a plan
            continue
        value, keep = got
        assert np.all(keep[must]) and not np.any(keep[banned])
        if not inside:
            continue
        # the moved patients M behind the bound (value = -w (D - M)): at most every keep
        # set's (scipy's LP tolerance aside); the value itself is below the objective,
        # which adds the tie-break to the moved patients
        moved = bound.total + value / bound.w
        assert moved <= min(inside) + 1e-7 * max(1.0, offset)
        assert value + offset <= min(inside) + TIE
        if trial == 0 and not limit:
            # no travel limit: moved(S) = max(C(S), F(S)) exactly
            assert moved == pytest.approx(min(inside), abs=1e-7 * max(1.0, offset))


@pytest.mark.parametrize("seed", range(12))
def test_grouped_lp_is_a_relaxation_within_its_loss(seed: int) -> None:
    """The grouped LP's value at random nodes is at most the model's own LP's, and at least
    it less the grouping's loss (the tie-break); its routed plan of a keep set meets every
    row and costs at most the grouped optimum plus the loss."""
    rng = np.random.default_rng(1100 + seed)
    inst = _national_like(seed, int(rng.integers(30, 70)), int(rng.integers(6, 12)),
                          kept=float(rng.uniform(2.0, 5.0)), grid=seed % 3 == 0,
                          weight_range=(1e-3, 1e3) if seed % 4 == 1 else (1.0, 21.0))
    params = SolveParams(objective="moved", allow_new_providers=True)
    arrays, model, stay, open_stay = _read(inst, params)
    grouped = group_units(model, stay, open_stay)
    assert grouped is not None and grouped.loss <= TIE
    exact = PairLP(model, highspy, stay, open_stay)
    small = PairLP(grouped.model, highspy, near_equal=True)
    from herschik.optimiser.moved_keepsets import Tiers
    tiers = Tiers(small, grouped.group, grouped.loss, stay, open_stay)
    for _ in range(8):
        lower = (rng.random(model.k) < 0.2).astype(float)
        upper = np.where(rng.random(model.k) < 0.2, 0.0, 1.0)
        upper = np.maximum(upper, lower)
        a, b = exact.solve(lower, upper), small.solve(lower, upper)
        assert (a is None) == (b is None)
        if a is None or b is None:
            continue
        value_exact = float(exact.h.getInfo().objective_function_value)
        small.solve(lower, upper)
        value_small = float(small.h.getInfo().objective_function_value)
        assert value_small <= value_exact + 1e-7
        assert value_small >= value_exact - grouped.loss - 1e-7
        keep = upper > 0.5
        plan = tiers.plan(model, arrays, keep)
        if plan is None:
            continue
        assert meets_rows(arrays, plan[1])
        small.solve(keep.astype(float), keep.astype(float))
        fixed = float(small.h.getInfo().objective_function_value)
        assert plan[0] <= fixed + grouped.loss + 1e-7


def _moved_params(rng: np.random.Generator, inst: Instance) -> SolveParams:
    kw: dict = {"objective": "moved", "mip_gap": 1e-9, "allow_new_providers": True}
    draw = int(rng.integers(0, 4))
    if draw == 1:
        kw["max_providers"] = {"T": int(rng.integers(2, 4))}
    elif draw == 2:
        kw["force_keep"] = [SiteTreatment(site_id="S0", intervention_id="T")]
        kw["force_close"] = [SiteTreatment(site_id="S1", intervention_id="T")]
    elif draw == 3:
        finite = inst.travel_min[np.isfinite(inst.travel_min)]
        kw["max_travel"] = float(np.quantile(finite, 0.7))
    if rng.random() < 0.3:
        kw["margin"] = 0.2
    return SolveParams(**kw)


@pytest.mark.parametrize("seed", range(30))
def test_national_like_small_models_match_brute_force(seed: int) -> None:
    """The whole search (min_keep=1) on national-like models: the brute-force optimum
    within the tie-break, a plan that meets every row, a bound not above it."""
    rng = np.random.default_rng(1200 + seed)
    inst = _national_like(seed, int(rng.integers(12, 40)), int(rng.integers(5, 10)),
                          kept=float(rng.uniform(1.5, 5.0)), grid=seed % 3 == 0,
                          weight_range=(1e-3, 1e3) if seed % 4 == 1 else (1.0, 21.0))
    params = _moved_params(rng, inst)
    expected = reference(inst, params, "moved")
    arrays = build_arrays(inst, params, [0])
    res = solve_by_norm_branching(arrays, params.mip_gap, min_keep=1)
    if expected is None:
        assert res is None
        return
    if res is None:
        # HiGHS left a node LP undecided: the MIP solver decides, with the same optimum
        sol = solve(inst, params)
        assert sol.status == "optimal"
        assert sol.objective == pytest.approx(expected[0], rel=1e-6, abs=2 * TIE)
        return
    assert res.status == "optimal" and res.x is not None and res.message == NORM_KEEPSETS
    assert res.objective == pytest.approx(expected[0], rel=1e-6, abs=2 * TIE)
    assert res.bound is not None and res.bound <= expected[0] + 2 * TIE
    assert res.bound <= res.objective + 1e-9
    assert meets_rows(arrays, res.x)
    assert float(arrays.c @ res.x + arrays.offset) == pytest.approx(res.objective, rel=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_national_like_medium_models_match_highs_and_cbc(seed: int) -> None:
    """22-30 hospitals, 80-200 areas, through ``solve`` (the method takes them) and the
    verifier: HiGHS' branch and bound alone (and CBC on three draws) finds the same number
    of moved patients; degenerate (grid) and extreme (weights 1e-3..1e3) draws included."""
    rng = np.random.default_rng(1300 + seed)
    inst = _national_like(seed, int(rng.integers(80, 201)), int(rng.integers(22, 31)),
                          kept=float(rng.uniform(6.0, 16.0)), grid=seed % 3 == 0,
                          weight_range=(1e-3, 1e3) if seed % 4 == 1 else (1.0, 21.0))
    params = SolveParams(objective="moved", mip_gap=1e-7, allow_new_providers=True,
                         max_travel=None if seed % 4 != 2 else 90.0)
    sol = solve(inst, params)
    assert sol.status == "optimal"
    assert sol.subproblems[0]["algorithm"] == NORM_KEEPSETS
    assert verify(sol, inst, params) == []
    highs = solve(inst, params, algorithms=BRANCH_AND_BOUND_ONLY)
    assert highs.status == "optimal"
    assert sol.objective == pytest.approx(highs.objective, rel=1e-6, abs=2 * TIE)
    if seed < 3:
        cbc = solve(inst, params.model_copy(update={"solver": "cbc"}),
                    algorithms=BRANCH_AND_BOUND_ONLY)
        assert cbc.status == "optimal"
        assert sol.objective == pytest.approx(cbc.objective, rel=1e-6, abs=2 * TIE)


def test_a_stopped_search_never_reports_optimal_and_its_bound_holds() -> None:
    """Stopped at once (time limit 0, a worse start): ``feasible`` with a bound at most the
    optimum, never ``optimal``."""
    inst = _national_like(7, 120, 26, kept=10.0)
    params = SolveParams(objective="moved", mip_gap=1e-7, allow_new_providers=True)
    arrays = build_arrays(inst, params, [0])
    full = solve_by_norm_branching(arrays, 1e-7)
    assert full is not None and full.status == "optimal" and full.x is not None
    start = solve(inst, params.model_copy(update={"objective": "travel"}))
    assert start.status == "optimal"
    stopped = solve_by_norm_branching(arrays, 1e-7, time_limit=0.0, start=None)
    assert stopped is None or stopped.status == "feasible"
    if stopped is not None:
        assert stopped.bound is None or stopped.bound <= full.objective + 1e-9


def rng_costs(model) -> np.ndarray:
    return np.random.default_rng(0).uniform(0.0, 60.0, size=model.cost.shape)


def test_outside_its_assumptions_there_is_no_stay_bound() -> None:
    """A keep that pays, or a flow that pays (a negative cost on a move), is outside the
    bound's proof: no bound. The grouping is declined when it would not shrink the model."""
    inst = _national_like(3, 40, 8, kept=3.0)
    params = SolveParams(objective="moved", allow_new_providers=True)
    _, model, stay, open_stay = _read(inst, params)
    assert stay_bound(model, stay, open_stay) is not None
    paying = replace(model, key_cost=model.key_cost - 1.0)
    assert stay_bound(paying, stay, open_stay) is None
    cost = model.cost.copy()
    cost[np.nonzero(stay < 0)[0][0], np.nonzero(stay < 0)[1][0]] = -0.5
    assert stay_bound(replace(model, cost=cost), stay, open_stay) is None
    assert group_units(model, stay, open_stay) is not None
    tiers = moved_tiers(model, stay, open_stay, lambda m: PairLP(m, highspy, near_equal=True))
    assert tiers is not None and tiers.loss <= TIE
    # flows that cost travel (as in the planner's zero-moves phase 2): the grouping would
    # lose whole patients' worth, so the plain search runs; so too when stays still pay
    travel = replace(model, cost=model.cost + rng_costs(model))
    assert moved_tiers(travel, stay, open_stay, lambda m: None) is None
    paying = np.where(stay >= 0, -100.0, model.cost + rng_costs(model))
    assert stay_bound(replace(model, cost=paying), stay, open_stay) is not None
    assert moved_tiers(replace(model, cost=paying), stay, open_stay, lambda m: None) is None
    # one unit per baseline site: nothing to group
    own_bit = np.argmax(stay >= 0, axis=1)
    first = np.unique(own_bit, return_index=True)[1]
    one_each = replace(model, demand=model.demand[first], cost=model.cost[first],
                       column=model.column[first], open_cost=model.open_cost[first],
                       open_column=model.open_column[first])
    assert group_units(one_each, stay[first], open_stay[first]) is None
