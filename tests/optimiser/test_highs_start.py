"""Regression: HiGHS (1.16) with presolve on and a start point reported "optimal" with the
start's point as its solution but an objective and bound below every plan's (issue 23).

Found by running test_pinning's planner cases (hypothesis strategy ``planner_cases``) on 600
fresh examples: in 3 of them the plain planner path (``pin_phase2=False``: phase 1 by HiGHS,
then phase 2 started from phase 1's plan with presolve on) reported "optimal" with more travel
than the reduced path, the keep-set search and CBC (here 231.39 against 211.54 for T00).
"""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser import solve as solve_module
from herschik.optimiser.backends import solve_highs, solve_pulp
from herschik.optimiser.formulation import build_arrays, travel_vector
from herschik.optimiser.params import SolveParams
from herschik.optimiser.planner import zero_moves_model
from herschik.optimiser.subproblem import HIGHS_MIP_OPTIONS
from herschik.optimiser.synthetic import synthetic_instance

#: the smallest of the three instances found (6 areas, 6 sites, 3 treatments)
INSTANCE = {"n_areas": 6, "n_sites": 6, "n_treatments": 3, "seed": 1614}
PARAMS = SolveParams(margin=0.3, allow_new_providers=True, mip_gap=0.0)


def _instance():
    n = INSTANCE
    return synthetic_instance(n["n_areas"], n["n_sites"], n["n_treatments"], seed=n["seed"],
                              region_km=70, tiered=False)


def test_a_started_solve_reports_its_own_points_objective() -> None:
    """Phase 2 of T00 (the zero-moves model) from phase 1's plan, with presolve on as the
    planner solves it: the objective is its point's, and the optimum CBC finds."""
    inst = _instance()
    arrays = build_arrays(inst, PARAMS, [0])
    assert arrays.moves_c is not None
    phase1 = arrays.with_objective(arrays.moves_c, arrays.moves_offset)
    res1 = solve_highs(phase1, mip_gap=0.0, presolve=False, options=HIGHS_MIP_OPTIONS)
    assert res1.status == "optimal" and res1.x is not None
    assert phase1.unnecessary_moves_of(res1.x) <= 1e-9  # U* = 0: the zero-moves model
    phase2 = zero_moves_model(phase1)
    phase2 = phase2.with_objective(travel_vector(phase2, inst))
    started = solve_highs(phase2, mip_gap=0.0, presolve=True, start=res1.x,
                          options=HIGHS_MIP_OPTIONS)
    cbc = solve_pulp(phase2, mip_gap=0.0, preprocess=False)
    assert started.status == cbc.status == "optimal"
    assert started.x is not None and cbc.objective is not None
    assert float(phase2.c @ started.x + phase2.offset) == pytest.approx(started.objective,
                                                                        rel=1e-9)
    assert started.objective == pytest.approx(cbc.objective, rel=1e-6)
    assert started.bound is not None and started.bound <= cbc.objective * (1 + 1e-6)


def test_the_plain_planner_path_finds_the_least_travel() -> None:
    """Both planner paths (with and without the phase-2 reduction) give the same travel."""
    inst = _instance()
    travel = np.where(np.isfinite(inst.travel_min), inst.travel_min, 0.0)
    plain = solve_module.solve(inst, PARAMS, algorithms=solve_module.Algorithms(
        keep_set_search=False, pin_phase2=False))
    reduced = solve_module.solve(inst, PARAMS, algorithms=solve_module.Algorithms(
        keep_set_search=False))
    assert plain.status == reduced.status == "optimal"
    assert np.einsum("ast,as->", plain.flow, travel) == pytest.approx(
        np.einsum("ast,as->", reduced.flow, travel), rel=1e-6)


def test_the_solve_again_without_the_start_keeps_to_the_time_limit(monkeypatch) -> None:
    """The retry has only what the started solve left of the caller's time limit (it had the
    whole limit again, so a solve could take twice as long as asked); with nothing left the
    started answer is kept with its own point's objective and the gap to HiGHS' bound, which
    subproblem.proven() does not call optimal."""
    from herschik.optimiser import backends

    inst = _instance()
    arrays = build_arrays(inst, PARAMS, [0])
    assert arrays.moves_c is not None
    phase1 = arrays.with_objective(arrays.moves_c, arrays.moves_offset)
    res1 = solve_highs(phase1, mip_gap=0.0, presolve=False, options=HIGHS_MIP_OPTIONS)
    assert res1.x is not None
    phase2 = zero_moves_model(phase1).with_objective(travel_vector(zero_moves_model(phase1),
                                                                   inst))
    limits: list[float | None] = []
    real = backends.solve_highs

    def recording(arrays_, time_limit=None, *args, **kwargs):
        limits.append(time_limit)
        return real(arrays_, time_limit, *args, **kwargs)

    monkeypatch.setattr(backends, "solve_highs", recording)
    started = real(phase2, 50.0, 0.0, None, True, res1.x, HIGHS_MIP_OPTIONS)
    assert len(limits) == 1, "the started solve is expected to be retried on this instance"
    assert limits[0] is not None and limits[0] < 50.0
    assert started.status == "optimal"

    # a started solve that used up its limit is not run again and is not called optimal
    limits.clear()
    monkeypatch.setattr(backends.time, "perf_counter",
                        _clock_that_jumps(backends.time.perf_counter, jump=100.0))
    spent = real(phase2, 50.0, 0.0, None, True, res1.x, HIGHS_MIP_OPTIONS)
    assert limits == []
    assert spent.x is not None and spent.mip_gap is not None
    assert spent.objective == pytest.approx(float(phase2.c @ spent.x + phase2.offset), rel=1e-12)
    assert spent.mip_gap > 1e-4  # subproblem.proven() does not call this optimal


def _clock_that_jumps(clock, jump: float):
    """A perf_counter whose every later reading is ``jump`` seconds on from the first."""
    first: list[float] = []

    def reading() -> float:
        now = clock()
        if not first:
            first.append(now)
            return now
        return now + jump

    return reading
