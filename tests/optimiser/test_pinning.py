"""The exact reduction of the planner's phase 2 (optimiser/pinning.py) against the full model.

Random small instances (hypothesis, derandomised): the bounds the reduction derives hold at the
full model's optimum, the reduced model's optimum maps back to a feasible point of the full
model with the same objective, and a planner solve with and without the reduction agrees.
"""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser import planner as planner_module
from herschik.optimiser import solve as solve_module
from herschik.optimiser.backends import solve_highs
from herschik.optimiser.formulation import build_arrays, travel_vector
from herschik.optimiser.params import SolveParams
from herschik.optimiser.pinning import pin_bounds, reduce_phase2
from herschik.optimiser.subproblem import proven
from herschik.optimiser.synthetic import synthetic_instance
from herschik.optimiser.verify import verify
from herschik.optimiser.whatif import feasible_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=40, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def planner_cases(draw):
    seed = draw(st.integers(0, 10_000))
    inst = synthetic_instance(draw(st.integers(6, 30)), draw(st.integers(2, 7)),
                              draw(st.integers(1, 3)), seed=seed, region_km=70,
                              tiered=draw(st.booleans()))
    kw = {"margin": draw(st.sampled_from([0.0, 0.1, 0.3, 1.0])),
          "allow_new_providers": draw(st.booleans())}
    if draw(st.booleans()):
        kw["max_travel"] = draw(st.floats(15, 80))
    if draw(st.booleans()):
        kw["max_extra_travel"] = draw(st.floats(0, 30))
    if draw(st.booleans()):
        kw["capacity_factor"] = draw(st.floats(1.0, 2.5))
    if draw(st.booleans()):
        kw["force_keep"] = [{"site_id": inst.site_ids[draw(st.integers(0, len(inst.sites) - 1))],
                             "intervention_id": inst.treatment_ids[0]}]
    return inst, SolveParams(**kw)


def _phase2_models(inst, params):
    """(phase-2 model with U* = 0, phase-1 model) of every treatment where the greedy plan
    proves U* = 0, as optimiser/planner.py builds them."""
    for t in range(len(inst.treatments)):
        arrays = build_arrays(inst, params, [t])
        if arrays.moves_c is None or not arrays.n_y:
            continue
        phase1 = arrays.with_objective(arrays.moves_c, arrays.moves_offset)
        greedy = planner_module.planner_greedy(phase1, inst)
        if greedy is None:
            continue
        phase2 = planner_module.zero_moves_model(phase1)
        yield phase2.with_objective(travel_vector(phase2, inst)), greedy


@SETTINGS
@given(planner_cases())
def test_reduced_phase2_has_the_full_optimum(case) -> None:
    inst, params = case
    for phase2, greedy in _phase2_models(inst, params):
        full = solve_highs(phase2, mip_gap=0.0)
        reduction = reduce_phase2(phase2, inst.demand)
        assert reduction is not None  # greedy is feasible, so the bounds cannot contradict
        lower, upper = pin_bounds(phase2, inst.demand)
        tol = 1e-6 * np.maximum(1.0, np.abs(full.x))
        # the derived bounds are implications: the full model's optimum satisfies them
        assert np.all(full.x >= lower - tol) and np.all(full.x <= upper + tol)
        reduced = solve_highs(reduction.model, mip_gap=0.0, start=reduction.restrict(greedy))
        assert reduced.status == full.status == "optimal"
        back = reduction.expand(reduced.x)
        assert feasible_in(phase2, back)
        assert float(phase2.c @ back + phase2.offset) == pytest.approx(full.objective,
                                                                       rel=1e-7, abs=1e-6)
        assert reduced.objective == pytest.approx(full.objective, rel=1e-7, abs=1e-6)


@SETTINGS
@given(planner_cases())
def test_planner_solve_is_the_same_with_and_without_the_reduction(case) -> None:
    inst, params = case
    params = params.model_copy(update={"mip_gap": 0.0})
    reduced = solve_module.solve(inst, params, algorithms=solve_module.Algorithms(
        keep_set_search=False))
    plain = solve_module.solve(inst, params, algorithms=solve_module.Algorithms(
        keep_set_search=False, pin_phase2=False))
    # on failure: both solves' status, objective and every sub-problem's entry (phase 1's
    # moves, travel, bound, gap, solver, notes), so that a rare failure can be diagnosed
    report = _both_reports(reduced, plain)
    assert reduced.status == plain.status, report
    if reduced.feasible:
        assert verify(reduced, inst, params) == [], report
        travel = np.where(np.isfinite(inst.travel_min), inst.travel_min, 0.0)
        assert reduced.objective == pytest.approx(plain.objective, abs=1e-5), report
        assert np.einsum("ast,as->", reduced.flow, travel) == pytest.approx(
            np.einsum("ast,as->", plain.flow, travel), rel=1e-6, abs=1e-3), report


def _both_reports(reduced, plain) -> str:
    keys = ("treatments", "status", "phase1", "unnecessary_moves_phase1", "objective",
            "travel", "bound", "gap", "solver", "algorithm", "notes")
    return "\n".join(
        f"{name}: status {sol.status}, objective {sol.objective!r}; sub-problems "
        + "; ".join(str({k: entry.get(k) for k in keys if k in entry})
                    for entry in sol.subproblems or [])
        for name, sol in (("reduced", reduced), ("plain", plain)))


def test_the_reduction_shrinks_the_real_phase2_models() -> None:
    """On the embedded example every hard treatment's phase 2 loses most flow columns (the
    patients of hospitals that keep the treatment stay), so the reduction is really used."""
    from herschik.geo.dataset import load_dataset
    from herschik.scenarios.assemble import build_instance

    inst = build_instance(load_dataset("example"), "example")
    params = SolveParams()
    sizes = [(phase2.n_x, reduce_phase2(phase2, inst.demand)) for phase2, _ in
             _phase2_models(inst, params)]
    assert sizes
    assert all(red is not None for _, red in sizes)
    assert sum(red.model.n_x for _, red in sizes) < 0.7 * sum(n for n, _ in sizes)


def test_a_zero_optimum_with_a_zero_bound_is_proven_optimal() -> None:
    """Regression: a phase-1 optimum of 0 unnecessary moves with bound 0 came back from HiGHS
    with a relative gap of 1.0 and was reported "feasible" (not proven) by the plain path."""
    from herschik.optimiser.backends import BackendResult

    exact = proven(BackendResult("optimal", 0.0, np.zeros(1), 1.0, bound=0.0))
    assert exact.status == "optimal" and exact.mip_gap == 0.0
    loose = proven(BackendResult("optimal", 0.0, np.zeros(1), 1.0, bound=-0.5))
    assert loose.status == "feasible"
    large = proven(BackendResult("optimal", 100.0, np.zeros(1), 0.01, bound=99.0))
    assert large.status == "feasible"
