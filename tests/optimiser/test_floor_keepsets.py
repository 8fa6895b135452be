"""optimiser/floor_keepsets.py: the closed sets enumerated best bound first when a floor on the
number kept leaves few to close (the ``providers`` phase 2: least travel with at least phase 1's
count kept). Checked on small random models against the independent brute-force reference
(tests/support/bruteforce.py, through the ``providers`` objective: the most kept, then the
least travel) and against a brute force of its own with any floor (every keep set, scipy's
LP); on medium ones (more keep decisions than the keep-set search enumerates) through
``solve`` and the verifier against HiGHS' branch and bound alone (and CBC on some); ties on a
grid, weights over six decades, travel times x 10 included."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from herschik.optimiser.algorithms import BRANCH_AND_BOUND_ONLY, Algorithms
from herschik.optimiser.backends import solve_highs
from herschik.optimiser.floor_keepsets import (
    FLOOR_KEEPSETS,
    MAX_KEEP_SETS,
    solve_by_floor_enumeration,
)
from herschik.optimiser.formulation import MipArrays, build_arrays, providers_vector, travel_vector
from herschik.optimiser.instance import Instance, Treatment
from herschik.optimiser.lagrangian import read_model
from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.verify import verify
from scipy.optimize import linprog

from tests.support.bruteforce import reference
from tests.support.instances import meets_rows, random_points_instance


def _instance(n_areas: int, n_sites: int, seed: int, kept: float, grid: bool = False,
              weight_range: tuple[float, float] = (1.0, 21.0), scale: float = 1.0
              ) -> Instance:
    """Random points (or a coarse grid: many tied travel times), a norm of the total patients
    over ``kept`` sites: at most about ``kept`` sites can keep the treatment."""
    rng = np.random.default_rng(seed)
    inst = random_points_instance(rng, n_areas, n_sites, grid, weight_range, 4, scale)
    norm = round(float(inst.demand[:, 0].sum()) / kept, 4)
    return replace(inst, treatments=(Treatment(id="T", norm=norm),))


def _floored(inst: Instance, params: SolveParams, floor: int) -> MipArrays:
    """The providers phase 2's model: phase 1's rows, at least ``floor`` kept, least travel
    (as optimiser/strategies.py builds it)."""
    arrays = build_arrays(inst, params, [0])
    phase2 = arrays.with_extra_row(providers_vector(arrays), floor - 0.5, np.inf,
                                   "providers_floor")
    return phase2.with_objective(travel_vector(phase2, inst))


def _brute_force(arrays: MipArrays) -> float | None:
    """Least travel over every keep set the floor and the caps allow: each set's
    transportation LP by scipy (x <= its bounds, the y columns fixed), None without a plan."""
    model = read_model(arrays, binding_norms=True, min_keep=1, paying_keeps=True)
    assert model is not None
    best = None
    for bits in itertools.product((0.0, 1.0), repeat=model.k):
        keep = np.array(bits)
        if np.any(keep[model.must] < 1) or not model.lo <= keep.sum() <= model.hi:
            continue
        value = _keep_set_lp(arrays, model.y_column, keep)
        if value is not None and (best is None or value < best):
            best = value
    return best


def _keep_set_lp(arrays: MipArrays, y_column: np.ndarray, keep: np.ndarray) -> float | None:
    """The model's LP with the keep decisions fixed to ``keep`` by scipy (None: no plan)."""
    lower, upper = arrays.col_lower.copy(), arrays.col_upper.copy()
    lower[y_column], upper[y_column] = keep, keep
    a = arrays.A.tocsr()
    eq = arrays.row_lower == arrays.row_upper
    ge = np.isfinite(arrays.row_lower) & ~eq
    le = np.isfinite(arrays.row_upper) & ~eq
    a_ub = np.vstack([-a[ge].toarray(), a[le].toarray()])
    b_ub = np.concatenate([-arrays.row_lower[ge], arrays.row_upper[le]])
    res = linprog(arrays.c, A_ub=a_ub, b_ub=b_ub, A_eq=a[eq].toarray(),
                  b_eq=arrays.row_lower[eq], bounds=list(zip(lower, upper)), method="highs-ds")
    return float(res.fun) if res.status == 0 else None


def _small_params(rng: np.random.Generator, inst: Instance) -> SolveParams:
    kw: dict = {"objective": "providers", "mip_gap": 1e-9, "allow_new_providers": True}
    draw = int(rng.integers(0, 4))
    if draw == 1:
        kw["max_providers"] = {"T": int(rng.integers(2, 5))}
    elif draw == 2:
        kw["force_keep"] = [SiteTreatment(site_id="S0", intervention_id="T")]
        kw["force_close"] = [SiteTreatment(site_id="S1", intervention_id="T")]
    elif draw == 3:
        finite = inst.travel_min[np.isfinite(inst.travel_min)]
        kw["max_travel"] = min(float(np.quantile(finite, 0.7)), 1440.0)
    if rng.random() < 0.3:
        kw["margin"] = 0.2
    return SolveParams(**kw)


def _small(seed: int) -> tuple[Instance, SolveParams]:
    rng = np.random.default_rng(900 + seed)
    n_sites = int(rng.integers(5, 10))
    inst = _instance(int(rng.integers(12, 41)), n_sites, seed,
                     kept=float(rng.uniform(2.0, n_sites + 0.5)), grid=seed % 3 == 0,
                     weight_range=(1e-3, 1e3) if seed % 4 == 1 else (1.0, 21.0),
                     scale=10.0 if seed % 5 == 2 else 1.0)
    return inst, _small_params(rng, inst)


def _check(arrays: MipArrays, expected: float) -> None:
    res = solve_by_floor_enumeration(arrays, 1e-9, min_keep=1)
    assert res is not None and res.status == "optimal" and res.x is not None
    assert res.message == FLOOR_KEEPSETS
    assert res.objective == pytest.approx(expected, rel=1e-7, abs=1e-6)
    assert res.bound is not None and res.bound <= expected * (1 + 1e-7) + 1e-6
    assert meets_rows(arrays, res.x)
    assert float(arrays.c @ res.x + arrays.offset) == pytest.approx(res.objective, rel=1e-9)


@pytest.mark.parametrize("seed", range(30))
def test_phase2_matches_the_brute_force_reference(seed: int) -> None:
    """5-9 keep decisions, 12-40 areas, the floor at the most kept (the reference's phase 1);
    provider caps, forced keeps and closures, travel limits, margins, grid ties, weights over
    six decades, travel x 10. The least travel is the reference's."""
    inst, params = _small(seed)
    expected = reference(inst, params, "providers")
    if expected is None:
        return  # no plan at all: there is no phase 2
    arrays = _floored(inst, params, int(round(-expected[0])))
    _check(arrays, expected[1])


@pytest.mark.parametrize("seed", range(20))
def test_any_floor_matches_brute_force_and_highs(seed: int) -> None:
    """Floors below the most kept too (keep sets of several sizes), against every keep set's
    LP by scipy and HiGHS' branch and bound on the same model; no plan: None (the MIP solver
    decides)."""
    inst, params = _small(seed)
    rng = np.random.default_rng(1300 + seed)
    k = len(inst.sites)
    arrays = _floored(inst, params, int(rng.integers(max(k - 4, 1), k + 1)))
    expected = _brute_force(arrays)
    if expected is None:
        assert solve_by_floor_enumeration(arrays, 1e-9, min_keep=1) is None
        return
    _check(arrays, expected)
    highs = solve_highs(arrays, None, 1e-9, 1, presolve=True)
    assert highs.status == "optimal"
    assert highs.objective == pytest.approx(expected, rel=1e-6, abs=1e-6)


def _medium(seed: int) -> tuple[Instance, SolveParams]:
    """22-30 sites, norms for all but one to three of them: phase 1 keeps nearly all."""
    rng = np.random.default_rng(1700 + seed)
    n_sites = int(rng.integers(22, 31))
    inst = _instance(int(rng.integers(80, 161)), n_sites, seed,
                     kept=n_sites - float(rng.uniform(0.6, 2.6)), grid=seed % 3 == 0,
                     weight_range=(1e-3, 1e3) if seed == 1 else (1.0, 21.0),
                     scale=10.0 if seed == 4 else 1.0)
    params = SolveParams(objective="providers", mip_gap=1e-7, allow_new_providers=True,
                         max_travel=None if seed != 2 else 80.0)
    return inst, params


def _travel(sol, inst: Instance) -> float:
    return float(np.einsum("ast,as->", sol.flow, np.where(np.isfinite(inst.travel_min),
                                                         inst.travel_min, 0.0)))


@pytest.mark.parametrize("seed", range(6))
def test_providers_through_solve_match_branch_and_bound(seed: int) -> None:
    """``solve`` under ``providers`` takes the method for phase 2 (the sub-problem names it),
    the verifier finds nothing, and HiGHS' branch and bound alone (CBC on two) finds the same
    count and the same least travel."""
    inst, params = _medium(seed)
    sol = solve(inst, params)
    assert sol.status == "optimal"
    assert FLOOR_KEEPSETS in (sol.subproblems[0].get("algorithm") or "")
    assert verify(sol, inst, params) == []
    other = solve(inst, params, algorithms=BRANCH_AND_BOUND_ONLY)
    assert other.status == "optimal"
    assert FLOOR_KEEPSETS not in (other.subproblems[0].get("algorithm") or "")
    assert sol.objective == pytest.approx(other.objective)
    assert _travel(sol, inst) == pytest.approx(_travel(other, inst), rel=1e-6, abs=1e-9)
    if seed < 2:
        cbc = solve(inst, params.model_copy(update={"solver": "cbc"}),
                    algorithms=BRANCH_AND_BOUND_ONLY)
        assert cbc.status == "optimal"
        assert _travel(sol, inst) == pytest.approx(_travel(cbc, inst), rel=1e-6)


def test_switch_off_leaves_phase2_to_the_other_methods() -> None:
    inst, params = _medium(7)
    sol = solve(inst, params)
    assert FLOOR_KEEPSETS in (sol.subproblems[0].get("algorithm") or "")
    off = solve(inst, params, algorithms=Algorithms(floor_keep_sets=False))
    assert FLOOR_KEEPSETS not in (off.subproblems[0].get("algorithm") or "")
    assert off.status == "optimal"
    assert _travel(off, inst) == pytest.approx(_travel(sol, inst), rel=1e-6)
    assert not BRANCH_AND_BOUND_ONLY.floor_keep_sets


def test_too_many_keep_sets_are_not_covered() -> None:
    """A floor that leaves more than MAX_KEEP_SETS keep sets (here 30 sites, at least 10
    kept) is the other methods' (None)."""
    inst = _instance(60, 30, 5, kept=12.0)
    params = SolveParams(objective="providers", allow_new_providers=True)
    arrays = _floored(inst, params, 10)
    model = read_model(arrays, binding_norms=True, min_keep=1, paying_keeps=True)
    assert model is not None and model.lo == 10
    assert sum(math.comb(30, closed) for closed in range(21)) > MAX_KEEP_SETS
    assert solve_by_floor_enumeration(arrays, 1e-9) is None


def test_a_known_plan_is_the_first_incumbent_and_a_broken_one_is_ignored() -> None:
    inst, params = _medium(3)
    sol = solve(inst, params)
    phase1 = int(round(sol.objective))
    arrays = _floored(inst, params, phase1)
    res = solve_by_floor_enumeration(arrays, 1e-9, min_keep=1)
    assert res is not None and res.x is not None and res.status == "optimal"
    started = solve_by_floor_enumeration(arrays, 1e-9, min_keep=1, start=res.x)
    assert started is not None and started.objective == pytest.approx(res.objective)
    broken = res.x.copy()
    broken[arrays.y_slice()] = 0.0  # no site kept: meets no demand row
    again = solve_by_floor_enumeration(arrays, 1e-9, min_keep=1, start=broken)
    assert again is not None and again.objective == pytest.approx(res.objective)


@pytest.mark.parametrize("seed", range(40))
def test_tiny_models_close_when_the_last_node_is_pruned(seed: int) -> None:
    """2-4 sites, one closable: the search ends by popping its last node after a better
    incumbent pruned it (it once raised a TypeError there, ``min`` of one float); the optimum
    is every keep set's."""
    rng = np.random.default_rng(2100 + seed)
    n_sites = int(rng.integers(2, 5))
    inst = _instance(int(rng.integers(4, 12)), n_sites, 3000 + seed, kept=n_sites + 0.5,
                     grid=seed % 2 == 0)
    params = SolveParams(objective="providers", mip_gap=1e-9, allow_new_providers=True)
    arrays = _floored(inst, params, n_sites - 1)
    expected = _brute_force(arrays)
    if expected is None:
        assert solve_by_floor_enumeration(arrays, 1e-9, min_keep=1) is None
        return
    _check(arrays, expected)


@pytest.mark.parametrize("seed", range(12))
def test_transport_lp_grows_from_few_pairs_to_every_keep_sets_optimum(seed: int) -> None:
    """The transportation LP seeds one pair per area of a known plan (a start spread over every
    pair once seeded them all: national kidney_systemic's first LP had 232,256 columns, 2-3 s
    CPU) and, on a keep set without a plan on its columns so far, widens each area's nearest
    pairs; every keep set's value is still scipy's LP of the model with y fixed (None exactly
    where that has no plan). Norms near the total patients / kept make the first columns fall
    short; grid ties, weights over six decades and travel x 10 included."""
    import highspy
    from herschik.optimiser.floor_keepsets import FIRST_PAIRS, _support, _TransportLP

    rng = np.random.default_rng(4400 + seed)
    n_sites = int(rng.integers(6, 10))
    inst = _instance(int(rng.integers(30, 60)), n_sites, 4400 + seed,
                     kept=float(rng.uniform(n_sites - 1.5, n_sites + 0.5)), grid=seed % 3 == 0,
                     weight_range=(1e-3, 1e3) if seed % 4 == 1 else (1.0, 21.0),
                     scale=10.0 if seed % 5 == 2 else 1.0)
    params = SolveParams(objective="providers", mip_gap=1e-9, allow_new_providers=True)
    arrays = _floored(inst, params, 1)
    model = read_model(arrays, binding_norms=True, min_keep=1, paying_keeps=True)
    assert model is not None
    spread = np.zeros(arrays.n_cols)
    finite = np.isfinite(model.cost)
    share = model.demand / np.maximum(finite.sum(axis=1), 1)
    spread[model.column[finite]] = np.broadcast_to(share[:, None], finite.shape)[finite]
    lp = _TransportLP(model, highspy, _support(model, spread))
    assert lp.active.sum() <= model.demand.shape[0] * (FIRST_PAIRS + 1)
    keep_sets = [np.ones(model.k, dtype=bool)]
    for _ in range(14):
        keep_sets.append(rng.random(model.k) < rng.uniform(0.5, 1.0))
    for keep in keep_sets:
        expected = _keep_set_lp(arrays, model.y_column, keep.astype(float))
        solved = lp.solve(arrays, keep)
        if expected is None:
            assert solved is None or solved[0] is None
            continue
        assert solved is not None and solved[0] is not None
        value, x = solved[0]
        assert value == pytest.approx(expected, rel=1e-7, abs=1e-6)
        assert meets_rows(arrays, x)


@pytest.mark.parametrize("seed", range(12))
def test_swap_bounds_never_exceed_a_swapped_keep_sets_lp(seed: int) -> None:
    """floor_incumbent.py skips a swap whose bound is not below the incumbent: the bound must
    be at most the swapped keep set's LP (scipy) at any multipliers >= 0 (zero, random over
    three decades, a solved keep set's), and infinite only where that LP has no plan."""
    import highspy
    from herschik.optimiser.floor_incumbent import swap_bounds
    from herschik.optimiser.floor_keepsets import _TransportLP

    inst, params = _small(seed)
    arrays = _floored(inst, params, 1)
    model = read_model(arrays, binding_norms=True, min_keep=1, paying_keeps=True)
    assert model is not None
    rng = np.random.default_rng(5100 + seed)
    keep = ~model.must & (rng.random(model.k) < 0.7) | model.must
    keep[int(rng.integers(model.k))] = True
    solved = _TransportLP(model, highspy, None).solve(arrays, keep)
    scale = float(np.nanmax(np.where(np.isfinite(model.cost), model.cost, np.nan)))
    pool = [np.zeros(model.k), rng.uniform(0, 1, model.k) * scale * 10 ** rng.uniform(-2, 1)]
    if solved is not None:
        pool.append(solved[1])
    for mu in pool:
        outs, ins, bound = swap_bounds(model, keep, mu)
        for o, i in itertools.product(range(outs.shape[0]), range(ins.shape[0])):
            trial = keep.copy()
            trial[outs[o]], trial[ins[i]] = False, True
            lp = _keep_set_lp(arrays, model.y_column, trial.astype(float))
            if lp is None:
                continue
            assert np.isfinite(bound[o, i])
            assert bound[o, i] <= lp + 1e-7 * max(abs(lp), 1.0)


@pytest.mark.parametrize("seed", range(4))
def test_swaps_from_a_poor_start_then_the_exact_search_reach_the_optimum(seed: int) -> None:
    """Too many keep sets to enumerate (30 sites, at most ~25 kept): from a poor start (a
    random keep set's cheapest plan) the swaps find a better plan that meets every row and is
    no better than HiGHS' optimum; norm_keepsets.py started from it proves HiGHS' optimum."""
    from herschik.optimiser.floor_incumbent import improved_start
    from herschik.optimiser.lagrangian import exact_plan
    from herschik.optimiser.norm_keepsets import solve_by_norm_branching

    rng = np.random.default_rng(5300 + seed)
    inst = _instance(int(rng.integers(60, 100)), 30, 5300 + seed,
                     kept=float(rng.uniform(23.5, 25.5)), grid=seed % 2 == 0)
    params = SolveParams(objective="providers", mip_gap=1e-9, allow_new_providers=True)
    total = float(inst.demand[:, 0].sum())
    floor = int(total // inst.treatments[0].norm) - 1
    arrays = _floored(inst, params, floor)
    model = read_model(arrays, binding_norms=True, min_keep=1, paying_keeps=True)
    assert model is not None and model.lo == floor
    assert sum(math.comb(30, closed) for closed in range(30 - floor + 1)) > MAX_KEEP_SETS
    poor = None
    while poor is None:
        keep = np.zeros(model.k, dtype=bool)
        keep[rng.choice(model.k, floor, replace=False)] = True
        poor = exact_plan(model, arrays, keep)
    better = improved_start(arrays, None, poor[1], min_keep=21)
    highs = solve_highs(arrays, None, 1e-9, 1, presolve=True)
    assert highs.status == "optimal" and highs.objective is not None
    assert better is not None and meets_rows(arrays, better)
    value = float(arrays.c @ better)
    assert highs.objective * (1 - 1e-7) - 1e-6 <= value < poor[0]
    res = solve_by_norm_branching(arrays, 1e-9, None, None, better)
    assert res is not None and res.status == "optimal"
    assert res.objective == pytest.approx(highs.objective, rel=1e-7, abs=1e-6)
