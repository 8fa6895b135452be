"""optimiser/large_keepsets.py: one-treatment models with more keep decisions than the keep-set
search enumerates (the p-median class beyond 16 sites, real norms beyond 20). Checked against
brute force over every keep set (small p), against CBC on the same model (medium), on ties and
extreme numbers, and the reduced-cost fixing itself against brute force."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from herschik.optimiser.algorithms import BRANCH_AND_BOUND_ONLY, Algorithms, linking_for
from herschik.optimiser.formulation import build_arrays
from herschik.optimiser.instance import Instance, Treatment
from herschik.optimiser.lagrangian import Lagrangian, exact_plan, known_plan, read_model
from herschik.optimiser.large_keepsets import LAGRANGIAN_KEEPSETS, solve_by_lagrangian
from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.verify import verify

from tests.support.instances import meets_rows, random_points_instance


def _instance(n_areas: int, n_sites: int, seed: int, norm: float = 1e-3, grid: bool = False,
              weight_range: tuple[float, float] = (1, 21)) -> Instance:
    """Uniform points (or points on a coarse integer grid: many tied travel times)."""
    return random_points_instance(np.random.default_rng(seed), n_areas, n_sites, grid,
                                  weight_range, 3, norm=norm)


def _brute_force(inst: Instance, params: SolveParams, p: int) -> float:
    """Least cost over every keep set of at most p sites, each plan exact (nearest-site
    assignment when it meets the norms, else the transportation LP)."""
    arrays = build_arrays(inst, params, [0])
    model = read_model(arrays, binding_norms=True)
    assert model is not None
    best = np.inf
    for size in range(1, p + 1):
        for sites in itertools.combinations(range(model.k), size):
            keep = np.zeros(model.k, dtype=bool)
            keep[list(sites)] = True
            if not np.all(keep[model.must]):
                continue
            plan = exact_plan(model, arrays, keep)
            if plan is not None:
                best = min(best, plan[0] + arrays.offset)
    return best


def _solve_checked(inst: Instance, params: SolveParams):
    sol = solve(inst, params)
    assert sol.status == "optimal"
    assert sol.subproblems[0]["algorithm"] == LAGRANGIAN_KEEPSETS
    assert verify(sol, inst, params) == []
    return sol


@pytest.mark.parametrize("seed", range(8))
def test_pmedian_matches_brute_force(seed: int) -> None:
    """Tiny norm (the p-median class): ties on a grid, weights over six decades."""
    rng = np.random.default_rng(100 + seed)
    n_sites, p = int(rng.integers(21, 26)), int(rng.integers(1, 4))
    inst = _instance(int(rng.integers(30, 80)), n_sites, seed, grid=seed % 2 == 0,
                     weight_range=(1.0, 21.0) if seed % 4 < 2 else (1e-3, 1e3))
    params = SolveParams(objective="travel", max_providers={"T": p}, allow_new_providers=True)
    sol = _solve_checked(inst, params)
    assert sol.objective == pytest.approx(_brute_force(inst, params, p), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_real_norms_match_brute_force(seed: int) -> None:
    """Norms that bind (a kept site must fill up with patients from beyond its nearest
    areas), with forced keeps and closures: 21-24 keep decisions, at most 3 kept. Off in
    ``solve`` (HiGHS decides these models), so the method is called on the arrays."""
    rng = np.random.default_rng(200 + seed)
    n_sites, p = int(rng.integers(22, 26)), int(rng.integers(2, 4))  # one is closed
    inst = _instance(int(rng.integers(40, 70)), n_sites, seed, grid=seed % 3 == 0)
    total = float(inst.demand.sum())
    inst = replace(inst, treatments=(Treatment(id="T", norm=round(total / (p + 2), 2)),))
    params = SolveParams(objective="travel", max_providers={"T": p}, allow_new_providers=True,
                         force_keep=[SiteTreatment(site_id="S0", intervention_id="T")]
                         if seed % 2 else [],
                         force_close=[SiteTreatment(site_id="S1", intervention_id="T")])
    expected = _brute_force(inst, params, p)
    if not np.isfinite(expected):
        pytest.skip("no feasible keep set for this draw")
    arrays = build_arrays(inst, params, [0])
    assert arrays.linking != "per_pair"
    assert solve_by_lagrangian(arrays, 1e-4) is None  # not the p-median class: left to HiGHS
    res = solve_by_lagrangian(arrays, 1e-9, binding_norms=True)
    assert res is not None and res.status == "optimal" and res.x is not None
    assert res.objective == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert res.bound is not None and res.bound <= expected * (1 + 1e-9) + 1e-9
    assert meets_rows(arrays, res.x)
    assert solve(inst, params).objective == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_medium_instances_match_cbc(seed: int) -> None:
    """120-200 areas x 30-40 sites against CBC on the same model (branch and bound only)."""
    rng = np.random.default_rng(300 + seed)
    inst = _instance(int(rng.integers(120, 200)), int(rng.integers(30, 41)), seed)
    p = int(rng.integers(3, 9))
    params = SolveParams(objective="travel", max_providers={"T": p}, allow_new_providers=True,
                         max_travel=60.0 if seed == 2 else None, mip_gap=1e-7)
    sol = _solve_checked(inst, params)
    cbc = solve(inst, params.model_copy(update={"solver": "cbc"}),
                algorithms=BRANCH_AND_BOUND_ONLY)
    assert cbc.status == "optimal"
    assert sol.objective == pytest.approx(cbc.objective, rel=1e-6)


def test_switch_off_gives_the_same_optimum_by_branch_and_bound() -> None:
    inst = _instance(90, 30, 7)
    params = SolveParams(objective="travel", max_providers={"T": 4}, allow_new_providers=True,
                         mip_gap=1e-7)
    sol = _solve_checked(inst, params)
    off = solve(inst, params, algorithms=Algorithms(lagrangian_keep_sets=False))
    assert off.subproblems[0].get("algorithm") != LAGRANGIAN_KEEPSETS
    assert off.objective == pytest.approx(sol.objective, rel=1e-7)


@pytest.mark.parametrize("seed", range(6))
def test_fixing_never_cuts_off_a_better_plan(seed: int) -> None:
    """Every site the reduced-cost fixing closes (keeps) is open (closed) in no plan better
    than the incumbent: checked over every keep set, for random and converged multipliers."""
    rng = np.random.default_rng(400 + seed)
    inst = _instance(40, 22, seed, grid=seed % 2 == 1,
                     norm=1e-3 if seed < 3 else float(rng.uniform(20, 80)))
    p = 3
    params = SolveParams(objective="travel", max_providers={"T": p}, allow_new_providers=True)
    arrays = build_arrays(inst, params, [0])
    model = read_model(arrays, binding_norms=True)
    assert model is not None
    plans = {}
    for size in range(1, p + 1):
        for sites in itertools.combinations(range(model.k), size):
            keep = np.zeros(model.k, dtype=bool)
            keep[list(sites)] = True
            plan = exact_plan(model, arrays, keep)
            if plan is not None:
                plans[sites] = plan[0]
    optimum = min(plans.values())
    # an incumbent a little above the optimum: fixing must keep every better plan's sites free
    incumbent = optimum * 1.002
    lagr = Lagrangian(model)
    for _ in range(30):
        lam = model.cost.min(axis=1) * rng.uniform(0.8, 1.6, size=model.demand.shape[0])
        value, g, chosen, _ = lagr.evaluate(lam)
        assert value <= optimum + 1e-9 * optimum  # weak duality
        lagr.fix(value, g, chosen, incumbent)
    for sites, value in plans.items():
        if value < incumbent:
            assert not np.any(lagr.banned[list(sites)]), (sites, value, incumbent)
            assert set(np.nonzero(lagr.must)[0]) <= set(sites)


def test_not_covered_models_are_left_to_the_mip() -> None:
    """Capacities (a row family the method does not read) and 20 or fewer keep decisions
    outside the p-median class: None, the caller's solver decides."""
    inst = _instance(50, 24, 3, norm=30.0)
    params = SolveParams(objective="travel", max_providers={"T": 3}, allow_new_providers=True,
                         capacity=[{"site_id": "S2", "intervention_id": "T",
                                    "max_patients": 100.0}])
    assert solve_by_lagrangian(build_arrays(inst, params, [0]), 1e-4,
                               binding_norms=True) is None
    small = _instance(50, 12, 3, norm=30.0)
    params = SolveParams(objective="travel", max_providers={"T": 3}, allow_new_providers=True)
    assert solve_by_lagrangian(build_arrays(small, params, [0]), 1e-4,
                               binding_norms=True) is None


def test_a_known_plan_starts_the_search_and_a_broken_one_is_ignored() -> None:
    """The national run passes its regional optima as a start: a plan that meets every row
    is the first incumbent, one that breaks a row (a flow to a closed site) is not used."""
    inst = _instance(80, 26, 11)
    params = SolveParams(objective="travel", max_providers={"T": 3}, allow_new_providers=True)
    assert linking_for(inst, params, [0]) == "per_pair"
    arrays = build_arrays(inst, params, [0], linking="per_pair")
    plain = solve_by_lagrangian(arrays, 1e-9)
    assert plain is not None and plain.x is not None
    good = solve_by_lagrangian(arrays, 1e-9, start=plain.x)
    assert good is not None and good.objective == pytest.approx(plain.objective, rel=1e-12)
    broken = plain.x.copy()
    closed = arrays.y_start + int(np.argmin(plain.x[arrays.y_slice()]))
    broken[closed] = 0.0
    model = read_model(arrays)
    assert model is not None
    assert known_plan(model, arrays, plain.x) is not None
    site = arrays.y_site[closed - arrays.y_start]
    broken[arrays.x_start + int(np.nonzero(arrays.x_site == site)[0][0])] += 5.0
    assert known_plan(model, arrays, broken) is None
    again = solve_by_lagrangian(arrays, 1e-9, start=broken)
    assert again is not None and again.objective == pytest.approx(plain.objective, rel=1e-12)
    assert meets_rows(arrays, again.x)
