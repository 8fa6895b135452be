"""The keep-set feasibility test (optimiser/feasibility.py) against brute force and HiGHS.

Every verdict it gives must be the solvers' verdict; it must give one (not ``None``) on every
model it claims to cover, and say ``None`` on the models it does not (capacities, single
sourcing, coupled treatments). Solve and diagnosis results must be the same with and without
it.
"""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser import diagnose as diagnose_module
from herschik.optimiser import subproblem as subproblem_module
from herschik.optimiser.backends import solve_highs
from herschik.optimiser.feasibility import keep_set_feasible
from herschik.optimiser.formulation import build_arrays
from herschik.optimiser.keepset_search import KEEP_SET_SEARCH
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.synthetic import synthetic_instance

SEEDS = list(range(40))


def _uncovered(params: SolveParams) -> bool:
    """Parameters whose rows the keep-set test may leave to the solver (a capacity at least
    all a site can receive is no constraint, so it may still decide those)."""
    return (params.capacity_factor is not None or bool(params.capacity)
            or params.single_sourcing)


def _harder(brute_force, seed: int):
    """A tiny instance, often pushed to infeasibility (higher margins, tight travel limits,
    caps on providers)."""
    inst, params = brute_force.tiny(seed)
    rng = np.random.default_rng(5000 + seed)
    update: dict = {}
    if rng.random() < 0.5:
        update["margin"] = float(rng.choice([0.5, 1.0, 1.5]))
    if rng.random() < 0.4:
        update["max_travel"] = float(np.round(np.quantile(inst.travel_min,
                                                          rng.uniform(0.2, 0.5)), 1))
        update["remote_areas"] = str(rng.choice(["nearest_provider", "strict"]))
    if rng.random() < 0.3:
        update["max_providers"] = {"*": int(rng.integers(1, 3))}
    return inst, params.model_copy(update=update)


def _highs_feasible(arrays) -> bool:
    result = solve_highs(arrays.with_objective(np.zeros(arrays.n_cols)), mip_gap=1.0,
                         threads=1)
    assert result.status in ("optimal", "infeasible"), result.status
    return result.status == "optimal"


@pytest.mark.parametrize("seed", SEEDS)
def test_verdict_is_the_bruteforce_verdict(brute_force, seed: int) -> None:
    inst, params = _harder(brute_force, seed)
    params = params.model_copy(update={"objective": "travel"})
    verdict = keep_set_feasible(build_arrays(inst, params))
    if _uncovered(params) and verdict is None:
        return  # capacities that can bind, single sourcing: the solver decides
    assert verdict is not None
    reference = brute_force.reference(inst, params, "travel")
    assert verdict is (reference is not None)


def test_the_bruteforce_cases_decide_both_ways(brute_force) -> None:
    """The seeds above are not vacuous: many covered models, feasible and infeasible."""
    verdicts = []
    for seed in SEEDS:
        inst, params = _harder(brute_force, seed)
        verdicts.append(keep_set_feasible(build_arrays(
            inst, params.model_copy(update={"objective": "travel"}))))
    assert verdicts.count(True) >= 8
    assert verdicts.count(False) >= 8


def _larger(seed: int):
    """12-16 candidate sites, more than brute force enumerates, with forced pairs and caps."""
    rng = np.random.default_rng(seed)
    inst = synthetic_instance(n_areas=int(rng.integers(80, 160)), n_sites=int(rng.integers(12, 17)),
                              n_treatments=2, seed=seed, tiered=bool(rng.random() < 0.3))
    kw: dict = {"objective": "travel", "margin": float(rng.choice([0.0, 0.3, 0.8, 1.5])),
                "allow_new_providers": bool(rng.random() < 0.3)}
    if rng.random() < 0.6:
        kw["max_travel"] = float(np.round(np.quantile(inst.travel_min, rng.uniform(0.1, 0.6)), 1))
    if rng.random() < 0.3:
        kw["max_extra_travel"] = float(rng.uniform(3, 20))
    if rng.random() < 0.3:
        kw["max_providers"] = {inst.treatment_ids[0]: int(rng.integers(1, 4))}
    sites = rng.permutation(len(inst.sites))
    if rng.random() < 0.4:
        kw["force_keep"] = [{"site_id": inst.site_ids[sites[0]],
                             "intervention_id": inst.treatment_ids[0]}]
    if rng.random() < 0.4:
        kw["force_close"] = [{"site_id": inst.site_ids[sites[1]]}]
    return inst, SolveParams(**kw)


@pytest.mark.parametrize("seed", SEEDS)
def test_verdict_is_the_highs_verdict_per_treatment(seed: int) -> None:
    inst, params = _larger(seed)
    for t in range(len(inst.treatments)):
        arrays = build_arrays(inst, params, [t])
        verdict = keep_set_feasible(arrays)
        assert verdict is not None
        assert verdict is _highs_feasible(arrays)


def test_larger_cases_decide_both_ways() -> None:
    verdicts = [keep_set_feasible(build_arrays(*_larger(seed))) for seed in SEEDS]
    assert verdicts.count(True) >= 8
    assert verdicts.count(False) >= 8


@pytest.mark.parametrize("update", [
    {"capacity_factor": 1.2},
    {"capacity": [{"site_id": "S00", "max_patients": 5.0}]},
    {"single_sourcing": True},
])
def test_rows_it_does_not_model_are_left_to_the_solver(update: dict) -> None:
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=2, seed=3)
    arrays = build_arrays(inst, SolveParams(objective="travel", **update))
    assert keep_set_feasible(arrays) is None


def test_coupled_treatments_are_left_to_the_solver() -> None:
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=2, seed=3)
    bundled = SolveParams(objective="travel", bundles=[list(inst.treatment_ids[:2])])
    assert keep_set_feasible(build_arrays(inst, bundled)) is None
    shared = SolveParams(objective="travel", max_loss_share=0.5)
    assert keep_set_feasible(build_arrays(inst, shared)) is None


def test_a_pair_forced_open_and_closed_is_infeasible() -> None:
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=1, seed=3)
    pair = {"site_id": inst.site_ids[0], "intervention_id": inst.treatment_ids[0]}
    arrays = build_arrays(inst, SolveParams(force_keep=[pair], force_close=[pair]))
    assert keep_set_feasible(arrays) is False


def test_a_norm_at_exactly_the_whole_demand_is_feasible() -> None:
    """Required volume equal to the reachable demand (up to rounding) is feasible, as for the
    solvers: the edge of Hall's condition is not cut off."""
    inst = synthetic_instance(n_areas=30, n_sites=3, n_treatments=1, seed=1)
    total = float(inst.demand[:, 0].sum())
    inst = synthetic_instance(n_areas=30, n_sites=3, n_treatments=1, seed=1, norms=[total])
    arrays = build_arrays(inst, SolveParams(objective="travel"))
    verdict = keep_set_feasible(arrays)
    assert verdict in (True, None)
    assert _highs_feasible(arrays)


def test_real_travel_limit_threshold(noordoost_instance) -> None:
    """Noordoost oesophagus/stomach resections: a 92-minute limit is infeasible, 93 is
    feasible (the diagnosis' answer); both decided without a solver, as HiGHS decides."""
    inst = noordoost_instance
    t = inst.treatment_ids.index("og_resection")
    for minutes, expected in ((92.0, False), (93.0, True)):
        arrays = build_arrays(inst, SolveParams(max_travel=minutes, objective="travel"), [t])
        assert keep_set_feasible(arrays) is expected
        assert _highs_feasible(arrays) is expected


def _without_keep_sets(monkeypatch) -> None:
    monkeypatch.setattr(subproblem_module, "keep_set_feasible", lambda arrays: None)
    monkeypatch.setattr(diagnose_module, "keep_set_feasible", lambda arrays: None)


def test_infeasible_scenario_reported_the_same_without_the_test(noordoost_instance,
                                                                monkeypatch) -> None:
    params = SolveParams(max_travel=75.0)
    with_test = solve(noordoost_instance, params, partial=False)  # the early-stopping solve
    assert with_test.status == "infeasible"
    decided = [e for e in with_test.subproblems if e.get("algorithm") == KEEP_SET_SEARCH]
    assert [e["treatments"] for e in decided if e["status"] == "infeasible"] == [
        ["og_resection"]]
    _without_keep_sets(monkeypatch)
    without = solve(noordoost_instance, params, partial=False)
    assert without.diagnosis == with_test.diagnosis
    assert [(e["treatments"], e["status"]) for e in without.subproblems] == [
        (e["treatments"], e["status"]) for e in with_test.subproblems]


@pytest.mark.parametrize("seed", SEEDS[:12])
def test_solve_and_diagnosis_same_without_the_test(brute_force, seed: int, monkeypatch) -> None:
    inst, params = _harder(brute_force, seed)
    with_test = solve(inst, params)
    _without_keep_sets(monkeypatch)
    without = solve(inst, params)
    assert with_test.status == without.status
    assert with_test.diagnosis == without.diagnosis
    assert with_test.objective == without.objective


def test_a_row_family_it_does_not_know_is_left_to_the_solver() -> None:
    """A model with rows of a family without a keep-set reader (here the planner's phase-2
    moves ceiling, a row over flows and stays) is not decided by keep sets."""
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=1, seed=3)
    arrays = build_arrays(inst, SolveParams(), [0])
    assert arrays.moves_c is not None
    assert keep_set_feasible(arrays) is not None
    ceiling = arrays.with_extra_row(arrays.moves_c, -np.inf, 0.0, "moves_ceiling")
    assert keep_set_feasible(ceiling) is None


def test_shifted_row_bounds_are_left_to_the_solver() -> None:
    """Rows of a known family whose bounds were moved (as the exact phase-2 reduction does
    for pinned flows) are not the rows this test models."""
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=1, seed=3)
    arrays = build_arrays(inst, SolveParams(objective="travel"), [0])
    assert keep_set_feasible(arrays) is not None
    m0, _ = arrays.row_families["min_volume"]
    shifted = arrays.with_objective(arrays.c, arrays.offset)
    shifted.row_lower = arrays.row_lower.copy()
    shifted.row_lower[m0] = -1.0
    assert keep_set_feasible(shifted) is None
