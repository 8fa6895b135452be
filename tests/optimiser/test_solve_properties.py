"""Property tests on random small instances (hypothesis, derandomised for reproducible CI)."""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser import verify as verify_module
from herschik.optimiser.backends import solve_highs
from herschik.optimiser.formulation import build_arrays, travel_vector
from herschik.optimiser.kpis import compute_kpis
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.status import SolveStatus
from herschik.optimiser.synthetic import synthetic_instance
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=30, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scenarios(draw):
    seed = draw(st.integers(0, 10_000))
    inst = synthetic_instance(draw(st.integers(6, 24)), draw(st.integers(2, 6)),
                              draw(st.integers(1, 3)), seed=seed, region_km=70,
                              tiered=draw(st.booleans()))
    kw = {
        "margin": draw(st.sampled_from([0.0, 0.1, 0.3, 1.0, 3.0])),
        "objective": draw(st.sampled_from(["planner", "travel", "moved", "providers"])),
        "single_sourcing": draw(st.booleans()),
        "allow_new_providers": draw(st.booleans()),
    }
    if draw(st.booleans()):
        kw["max_travel"] = draw(st.floats(10, 80))
    if draw(st.booleans()):
        kw["max_extra_travel"] = draw(st.floats(0, 30))
    if draw(st.booleans()):
        kw["capacity_factor"] = draw(st.floats(1.0, 2.5))
    if draw(st.booleans()):
        kw["max_loss_share"] = draw(st.floats(0.2, 1.0))
    if len(inst.treatments) >= 2 and draw(st.booleans()):
        kw["bundles"] = [list(inst.treatment_ids[:2])]
    if draw(st.booleans()):
        kw["force_keep"] = [{"site_id": inst.site_ids[draw(st.integers(0, len(inst.sites) - 1))],
                             "intervention_id": inst.treatment_ids[0]}]
    return inst, SolveParams(**kw)


@SETTINGS
@given(scenarios())
def test_feasible_results_verify_and_infeasible_ones_are_diagnosed(case) -> None:
    inst, params = case
    sol = solve(inst, params)
    if sol.feasible:
        kpis = compute_kpis(inst, sol, params)
        assert verify_module.verify(sol, inst, params) == []
        assert verify_module.verify(sol, inst, params, kpis) == []
        assert kpis["patients_moved"] >= -1e-6
        assert kpis["p90_extra_min"] <= kpis["max_extra_min"] + 1e-9
    else:
        assert sol.diagnosis is not None
        assert isinstance(sol.diagnosis["reason"], str) and sol.diagnosis["reason"].strip()
        if sol.status == "partially_infeasible":  # the solved treatments verify on their own
            from herschik.optimiser.results import treatment_statuses
            from herschik.scenarios.run import planned_part

            part_inst, part = planned_part(inst, sol, treatment_statuses(inst, sol))
            assert verify_module.verify(part, part_inst, params) == []
        else:
            assert sol.flow is None and sol.keep is None


@SETTINGS
@given(scenarios(), st.sampled_from([0.05, 0.2, 0.5]))
def test_larger_margin_never_gives_more_providers(case, extra) -> None:
    inst, params = case
    params = params.model_copy(update={"objective": "providers", "mip_gap": 0.0})
    low = solve(inst, params)
    high = solve(inst, params.model_copy(update={"margin": params.margin + extra}))
    assert low.feasible or not high.feasible  # a larger margin never makes a scenario feasible
    assume(high.feasible)  # hypothesis fails the test if too few cases reach the comparison
    assert high.objective <= low.objective + 1e-9


@SETTINGS
@given(scenarios())
def test_decomposed_solve_equals_joint_model(case) -> None:
    inst, params = case
    params = params.model_copy(update={"objective": "travel", "mip_gap": 0.0})
    sol = solve(inst, params)
    joint = build_arrays(inst, params)  # all treatments in one model
    res = solve_highs(joint.with_objective(travel_vector(joint, inst)), mip_gap=0.0)
    if not sol.feasible:
        assert res.status == "infeasible"
        return
    assert res.status == "optimal"
    assert sol.objective == pytest.approx(res.objective, rel=1e-6, abs=1e-5)


@settings(max_examples=10, derandomize=True, deadline=None)
@given(scenarios())
def test_results_do_not_depend_on_threads(case) -> None:
    inst, params = case
    one = solve(inst, params.model_copy(update={"threads": 1}))
    two = solve(inst, params.model_copy(update={"threads": 2}))
    capped = solve(inst, params.model_copy(update={"threads": 2}), max_workers=1)  # as sweeps do
    assert one.status == two.status == capped.status
    if one.feasible:
        for other in (two, capped):
            assert one.objective == other.objective
            assert np.array_equal(one.flow, other.flow)
            assert np.array_equal(one.keep, other.keep)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("threads", [1, 2])
def test_infeasible_scenarios_stop_early_but_list_exactly_the_infeasible_treatments(
        seed: int, threads: int) -> None:
    from herschik.optimiser.diagnose import is_feasible
    from herschik.optimiser.synthetic import synthetic_instance

    inst = synthetic_instance(80, 7, 5, seed=seed)
    # margins that break some treatments on some seeds, and capacity caps of 1 patient/yr at
    # every site that always break T02
    t02 = inst.treatment_ids[2]
    params = SolveParams(
        threads=threads,
        margin_by_treatment={inst.treatment_ids[0]: 6.0, inst.treatment_ids[3]: 4.0},
        capacity=[{"site_id": s, "intervention_id": t02, "max_patients": 1.0}
                  for s in inst.site_ids])
    alone = {tid for t, tid in enumerate(inst.treatment_ids)
             if is_feasible(inst, params, [t], time_limit=None) is False}
    assert t02 in alone and len(alone) < len(inst.treatment_ids)
    assert solve(inst, params).status == "partially_infeasible"  # the default: a partial plan
    sol = solve(inst, params, partial=False)  # the early-stopping solve
    assert sol.status == "infeasible"
    assert set(sol.diagnosis["infeasible_treatments"]) == alone
    statuses = {e["treatments"][0]: e["status"] for e in sol.subproblems}
    assert {t for t, st in statuses.items() if st == "infeasible"} == alone
    # the others were either optimised before the infeasible one was found, or only checked
    assert set(statuses.values()) <= {"infeasible", "optimal", SolveStatus.FEASIBLE_NOT_OPTIMISED}


def test_sub_problems_are_handed_out_from_both_ends() -> None:
    import threading

    from herschik.optimiser.scheduling import run_from_both_ends

    started: list[int] = []
    lock = threading.Lock()
    # The first two picks run at the same time (two workers): each waits for the other, so
    # neither can finish and let its worker take a third index before both are recorded.
    both_started = threading.Barrier(2, timeout=30)

    def run(i: int) -> int:
        with lock:
            started.append(i)
            first_two = len(started) <= 2
        if first_two:
            both_started.wait()
        return i * 10

    results = run_from_both_ends([0, 1, 2, 3, 4, 5], 2, run, None)
    assert results == {i: i * 10 for i in range(6)}
    # the two first picks are the largest (last) and the smallest (first) index
    assert set(started[:2]) == {5, 0}

    def failing(i: int) -> int:
        if i == 3:
            raise ValueError("boom")
        return i

    with pytest.raises(ValueError, match="boom"):
        run_from_both_ends([0, 1, 2, 3, 4, 5], 2, failing, None)


@SETTINGS
@given(scenarios(), st.sampled_from(["travel", "moved", "providers"]))
def test_planner_has_fewest_unnecessary_moves_and_least_travel_among_them(case, other) -> None:
    """Planner is lexicographic: no feasible plan (e.g. another objective's optimum) has fewer
    unnecessary moves, and one with as few has no less travel. Displaced patients are those
    of stopped providers only, and moved = displaced + optional when demand is today's."""
    from herschik.optimiser.formulation import unnecessary_moves

    inst, params = case
    planner = params.model_copy(update={"objective": "planner", "mip_gap": 0.0})
    sol = solve(inst, planner)
    alt = solve(inst, planner.model_copy(update={"objective": other}))
    assert sol.feasible == alt.feasible
    if not sol.feasible:
        return
    mine = unnecessary_moves(inst, planner, sol.flow, sol.keep)
    theirs = unnecessary_moves(inst, planner, alt.flow, alt.keep)
    assert mine <= theirs + 1e-5
    travel = np.where(np.isfinite(inst.travel_min), inst.travel_min, 0.0)
    if abs(mine - theirs) <= 1e-7:
        assert (np.einsum("ast,as->", sol.flow, travel)
                <= np.einsum("ast,as->", alt.flow, travel) + 1e-4)
    kpis = compute_kpis(inst, sol, planner)
    assert verify_module.verify(sol, inst, planner, kpis) == []
    assert kpis["patients_moved"] == pytest.approx(
        kpis["patients_displaced"] + kpis["patients_moved_optional"], abs=1e-4)


@SETTINGS
@given(scenarios())
def test_planner_shortcuts_give_the_same_optimum(case) -> None:
    """The greedy phase-1 proof, the per-flow phase-2 form and the direct solve of its exact
    reduction (optimiser/planner.py: planner_greedy, zero_moves_model, the pinned solve) are
    exact: the plain two-phase solve (moves ceiling, no shortcut) finds the same optimum."""
    from herschik.optimiser.algorithms import Algorithms

    inst, params = case
    params = params.model_copy(update={"objective": "planner", "mip_gap": 0.0})
    fast = solve(inst, params)
    plain = solve(inst, params, algorithms=Algorithms(
        keep_set_search=False, pin_phase2=False, planner_shortcuts=False))
    assert fast.status == plain.status
    if fast.feasible:
        travel = np.where(np.isfinite(inst.travel_min), inst.travel_min, 0.0)
        assert fast.objective == pytest.approx(plain.objective, abs=1e-5)
        assert np.einsum("ast,as->", fast.flow, travel) == pytest.approx(
            np.einsum("ast,as->", plain.flow, travel), rel=1e-6, abs=1e-3)
