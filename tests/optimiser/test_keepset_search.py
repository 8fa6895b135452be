"""The keep-set search (optimiser/keepset_search.py) against HiGHS' branch and bound and brute
force: the same optimum on every model it covers, a verified plan, and the MIP solver for the
models it does not cover."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from herschik.optimiser import keepset_search
from herschik.optimiser import solve as solve_module
from herschik.optimiser.backends import solve_highs
from herschik.optimiser.formulation import build_arrays
from herschik.optimiser.keepset_search import KEEP_SET_SEARCH, solve_by_keep_sets
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import HIGHS_MIP_OPTIONS, solve
from herschik.optimiser.synthetic import synthetic_instance
from herschik.optimiser.verify import verify
from hypothesis import given, settings
from hypothesis import strategies as st

SEEDS = list(range(30))


def _instance(seed: int) -> tuple:
    """8-16 candidate sites, binding norms, travel limits, forced pairs and provider caps."""
    rng = np.random.default_rng(700 + seed)
    inst = synthetic_instance(n_areas=int(rng.integers(60, 140)), n_sites=int(rng.integers(8, 17)),
                              n_treatments=3, seed=seed, tiered=bool(rng.random() < 0.3))
    kw: dict = {"margin": float(rng.choice([0.0, 0.2, 0.5])), "mip_gap": 1e-9,
                "allow_new_providers": bool(rng.random() < 0.3)}
    if rng.random() < 0.5:
        kw["max_travel"] = float(np.round(np.quantile(inst.travel_min, rng.uniform(0.4, 0.8)), 1))
    if rng.random() < 0.3:
        kw["max_providers"] = {inst.treatment_ids[0]: int(rng.integers(2, 5))}
    sites = rng.permutation(len(inst.sites))
    if rng.random() < 0.4:
        kw["force_keep"] = [{"site_id": inst.site_ids[sites[0]],
                             "intervention_id": inst.treatment_ids[1]}]
    if rng.random() < 0.3:
        kw["force_close"] = [{"site_id": inst.site_ids[sites[1]]}]
    return inst, SolveParams(**kw)


def _assert_same_optimum_as_highs(arrays):
    """The search and HiGHS' branch and bound on one model: same status and optimum."""
    searched = solve_by_keep_sets(arrays, 1e-9)
    assert searched is not None
    reference = solve_highs(arrays, mip_gap=1e-9, threads=1, presolve=False,
                            options=HIGHS_MIP_OPTIONS)
    assert searched.status == reference.status
    if reference.status == "optimal":
        assert searched.objective == pytest.approx(reference.objective, rel=1e-8, abs=1e-6)
    return searched


@pytest.mark.parametrize("objective", ["travel", "providers", "moved", "planner"])
@pytest.mark.parametrize("seed", SEEDS)
def test_same_optimum_as_branch_and_bound(seed: int, objective: str) -> None:
    inst, params = _instance(seed)
    params = params.model_copy(update={"objective": objective})
    searched = solve(inst, params)
    reference = solve(inst, params, algorithms=solve_module.BRANCH_AND_BOUND_ONLY)
    assert searched.status == reference.status
    if reference.status != "optimal":
        return
    assert searched.objective == pytest.approx(reference.objective, rel=1e-7, abs=1e-6)
    assert verify(searched, inst, params) == []
    for entry in searched.subproblems:
        assert entry["gap"] <= 1e-9


@pytest.mark.parametrize("seed", SEEDS)
def test_planner_phase_one_model_same_optimum(seed: int) -> None:
    """The planner's first phase (fewest unnecessary moves; stay columns, so the search
    splits each area's patients by baseline site) against HiGHS on the same model."""
    inst, params = _instance(seed)
    for t in range(len(inst.treatments)):
        arrays = build_arrays(inst, params, [t])
        if arrays.moves_c is None or arrays.n_y == 0:
            continue
        moves = arrays.with_objective(arrays.moves_c, arrays.moves_offset)
        searched = _assert_same_optimum_as_highs(moves)
        if searched.status == "optimal":
            stays = searched.x[moves.stay_start:]
            flows = searched.x[moves.x_slice()]
            assert np.all(stays <= flows[moves.stay_x] + 1e-9)  # a stay is part of its flow


def test_more_baseline_patients_than_demand_go_to_the_mip_solver() -> None:
    """Demand below today's volume: the stays do not split an area into units."""
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=1, seed=3)
    shrunk = dataclasses.replace(inst, demand=inst.demand * 0.8)
    arrays = build_arrays(shrunk, SolveParams(objective="moved"), [0])
    assert solve_by_keep_sets(arrays, 1e-4) is None
    assert solve_by_keep_sets(build_arrays(inst, SolveParams(objective="moved"), [0]),
                              1e-4) is not None


def test_the_search_solves_most_of_those_models() -> None:
    """Not vacuous: the models above go through the search, and some of them have many keep
    decisions."""
    used = widest = 0
    for seed in SEEDS:
        inst, params = _instance(seed)
        sol = solve(inst, params.model_copy(update={"objective": "travel"}))
        for entry in sol.subproblems:
            if entry.get("algorithm") == KEEP_SET_SEARCH:
                used += 1
                widest = max(widest, entry["n_binaries"])
    assert used >= 60
    assert widest >= 12


@pytest.mark.parametrize("seed", range(24))
def test_bruteforce_instances_go_through_the_search(brute_force, seed: int) -> None:
    """The brute-force comparisons (tests/optimiser/test_bruteforce.py) check the search's
    optimum for travel and providers; here: that they do run it where the model allows."""
    inst, params = brute_force.tiny(seed)
    params = params.model_copy(update={"objective": "travel"})
    sol = solve(inst, params)
    reference = brute_force.reference(inst, params, "travel")
    if reference is None:  # some treatment has no plan (the others may: a partial plan)
        assert sol.status in ("infeasible", "partially_infeasible")
        return
    brute_force.compare(inst, sol, reference, "travel")
    covered = params.capacity_factor is None and not params.single_sourcing
    normed = [e for e in sol.subproblems if e["n_binaries"] > 0]
    if covered:
        assert all(e.get("algorithm") == KEEP_SET_SEARCH for e in normed)


def test_real_region_same_optimum(noordoost_instance, monkeypatch) -> None:
    inst = noordoost_instance
    t = inst.treatment_ids.index("kidney_local")
    arrays = build_arrays(inst, SolveParams(objective="travel", margin=0.2), [t])
    searched = solve_by_keep_sets(arrays, 1e-9)
    assert searched is not None and searched.status == "optimal"
    reference = solve_highs(arrays, mip_gap=1e-9, threads=1, presolve=False,
                            options=HIGHS_MIP_OPTIONS)
    assert searched.objective == pytest.approx(reference.objective, rel=1e-9)
    assert searched.bound <= searched.objective


def test_models_it_does_not_cover_go_to_the_mip_solver() -> None:
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=2, seed=3)
    for params, treatments in (
        (SolveParams(objective="travel", capacity_factor=1.1), [0]),
        (SolveParams(objective="travel", single_sourcing=True), [0]),
        (SolveParams(objective="travel", bundles=[list(inst.treatment_ids)]), [0, 1]),
    ):
        assert solve_by_keep_sets(build_arrays(inst, params, treatments), 1e-4) is None


def test_a_search_that_needs_too_many_lps_hands_over(monkeypatch) -> None:
    inst, params = _instance(3)
    params = params.model_copy(update={"objective": "travel"})
    expected = solve(inst, params)
    monkeypatch.setattr(keepset_search, "MAX_LP_SOLVES", 0)
    arrays = build_arrays(inst, params, [0])
    assert solve_by_keep_sets(arrays, 1e-9) is None
    handed = solve(inst, params)
    assert handed.objective == pytest.approx(expected.objective, rel=1e-7)
    assert not any(e.get("algorithm") == KEEP_SET_SEARCH for e in handed.subproblems)


def test_an_interrupt_stops_the_search() -> None:
    inst, params = _instance(5)
    arrays = build_arrays(inst, params.model_copy(update={"objective": "travel"}), [0])
    stop = threading.Event()
    stop.set()
    result = solve_by_keep_sets(arrays, 1e-9, interrupt=stop)
    assert result is not None
    assert result.interrupted
    assert result.status in ("feasible", "time_limit_no_solution")


def test_an_area_without_any_site_makes_the_search_infeasible() -> None:
    """Regression: an area whose patients may go nowhere (strict travel limit) has no flow
    column; the search used to ignore it and return a plan that leaves it untreated."""
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=1, seed=3)
    limit = float(np.sort(inst.travel_min.min(axis=1))[-2])  # the farthest area: no site
    params = SolveParams(objective="travel", max_travel=limit, remote_areas="strict")
    arrays = build_arrays(inst, params, [0])
    assert solve_highs(arrays, mip_gap=1e-9, threads=1).status == "infeasible"
    result = solve_by_keep_sets(arrays, 1e-9)
    assert result is not None and result.status == "infeasible"


def test_infeasible_models_are_reported_infeasible() -> None:
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=1, seed=3)
    total = float(inst.demand[:, 0].sum())
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=1, seed=3, norms=[total])
    arrays = build_arrays(inst, SolveParams(objective="travel", margin=0.5))
    result = solve_by_keep_sets(arrays, 1e-4)
    assert result is not None and result.status == "infeasible"


def _small_search(seed: int, objective: str = "travel", mixed: bool = False):
    """A search on a small instance; ``mixed``: only the HHOC hospitals have a norm (a tiered
    norm without a base norm), the others keep the treatment without a keep decision."""
    inst = synthetic_instance(n_areas=30, n_sites=6, n_treatments=1, seed=seed)
    if mixed:
        norm = inst.treatments[0].norm
        tiered = dataclasses.replace(inst.treatments[0], norm=None,
                                     tier_norms={"HHOC": norm})
        inst = dataclasses.replace(inst, treatments=(tiered,))
    arrays = build_arrays(inst, SolveParams(objective=objective, margin=0.2), [0])
    if objective == "planner":
        assert arrays.moves_c is not None
        arrays = arrays.with_objective(arrays.moves_c, arrays.moves_offset)
    sets = keepset_search.treatment_keep_sets(arrays, 0)
    assert sets is not None
    options = keepset_search._options(arrays, sets)
    assert options is not None
    return keepset_search._Search(arrays, sets, options)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 50), objective=st.sampled_from(["travel", "planner"]),
       price_seed=st.integers(0, 10_000), mixed=st.booleans())
def test_bound_of_all_sets_is_the_per_set_lagrangian(seed: int, objective: str,
                                                      price_seed: int, mixed: bool) -> None:
    """The prefix / subset-sum evaluation of L_v equals, for every keep set, the direct
    Σ_u d_u min_{j in S} (c_uj - v_j) + Σ_{j in S} R_j v_j + cost_y(S) (sites without a keep
    decision: always open, no price)."""
    search = _small_search(seed, objective, mixed)
    if mixed:
        assert np.any(np.isfinite(search.opt.open_cost))
    prices = np.random.default_rng(price_seed).uniform(0, 30, search.k)
    fast = search.lagrangian(prices)
    opt = search.opt
    for mask in range(search.n):
        members = keepset_search._members(mask, search.k)
        options = np.concatenate([opt.cost[:, members] - prices[members][None, :],
                                  opt.open_cost[:, None]], axis=1)
        cheapest = options.min(axis=1)
        if not np.all(np.isfinite(cheapest)):
            assert not search.sets.allowed[mask]
            continue
        direct = (opt.demand @ cheapest + search.sets.required[members] @ prices[members]
                  + search.key_cost[mask])
        assert fast[mask] == pytest.approx(direct, rel=1e-9, abs=1e-7)


@pytest.mark.parametrize("seed", range(6))
def test_every_bound_is_below_the_sets_exact_value(seed: int) -> None:
    """Weak duality, set by set: after the search's own cuts, no allowed set's bound exceeds
    its transportation LP value (the bounds may prune only sets that are really worse)."""
    search = _small_search(seed)
    prices = np.random.default_rng(seed).uniform(0, 20, search.k)
    search.cut(int(np.argmax(search.sets.allowed)), prices)
    for mask in np.nonzero(search.sets.allowed)[0]:
        exact = search.transport(int(mask))
        assert exact is not None
        assert search.bound[mask] <= exact[0] + 1e-7 * max(1.0, abs(exact[0]))


@pytest.mark.parametrize("objective", ["travel", "planner", "moved"])
@pytest.mark.parametrize("seed", range(6))
def test_sites_without_keep_decision_same_optimum(seed: int, objective: str) -> None:
    """Hospitals without a norm of their own (always open) as options beside the keep
    decisions: the same optimum as HiGHS' branch and bound."""
    _assert_same_optimum_as_highs(_small_search(seed, objective, mixed=True).arrays)


@pytest.mark.parametrize("factor", [1.0, 1.0 + 1e-9, 1.0 - 1e-9, 1.5])
def test_units_add_up_to_each_areas_demand(factor: float) -> None:
    """Stay units (baseline patients per site) plus the rest equal the area's demand, also
    when the demand differs from today's volume by rounding only, so the plan meets the
    demand rows exactly."""
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=1, seed=4)
    inst = dataclasses.replace(inst, demand=inst.demand * factor)
    arrays = build_arrays(inst, SolveParams(objective="moved"), [0])
    sets = keepset_search.treatment_keep_sets(arrays, 0)
    assert sets is not None
    units = keepset_search._units(arrays, sets)
    assert units is not None
    area, demand, _ = units
    totals = np.bincount(area, weights=demand, minlength=sets.demand.shape[0])
    np.testing.assert_allclose(totals, sets.demand, rtol=1e-14, atol=1e-15)
    result = solve_by_keep_sets(arrays, 1e-9)
    assert result is not None and result.status == "optimal"
    d0, d1 = arrays.row_families["demand"]
    served = (arrays.A @ result.x)[d0:d1]
    np.testing.assert_allclose(served, arrays.row_upper[d0:d1], rtol=1e-9, atol=1e-9)
