"""One strategy object per objective: how a built component is optimised.

* :class:`SingleObjective` (``travel``, ``moved``, a weighted mix, and ``providers`` without
  keep decisions): one solve; the exact keep-set search (optimiser/keepset_search.py) where it
  covers the model.
* :class:`ProvidersObjective`: lexicographic, phase 1 maximises the kept pairs, phase 2 keeps
  at least that many and minimises travel (a big-M weight safe for every instance would have
  to exceed the total patient-minutes, ~1e7 nationally, and wreck the numerics); each phase
  may be solved by the keep-set search.
* ``PlannerObjective`` (optimiser/planner.py): fewest unnecessary moves, then least travel,
  with its greedy start, its zero-moves shortcut and the exact two-phase keep-set search.

:func:`optimiser.component.strategy_for` picks one from the parameters and the built model.
Each strategy's ``optimise`` returns a :class:`~optimiser.subproblem.ComponentResult` whose
``report`` says what the sub-problem's entry shows.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .algorithms import Algorithms
from .backends import BackendResult
from .formulation import MipArrays, providers_vector, travel_vector
from .instance import Instance
from .params import SolveParams
from .solution import Solution
from .status import SolveStatus
from .subproblem import (
    HIGHS_PRESOLVE,
    ComponentResult,
    SolveReport,
    note_algorithm,
    run_backend,
    start_vector,
    worse,
)


@dataclass
class ComponentContext:
    """What a strategy optimises: one built component and how to solve it. ``stop`` is
    shared by the components of one solve (set when one proves infeasible)."""

    instance: Instance
    params: SolveParams
    treatments: list[int]
    threads: int | None
    start: Solution | None
    stop: threading.Event | None
    arrays: MipArrays
    build_seconds: float
    algorithms: Algorithms

    def result(self, status: SolveStatus, x: np.ndarray | None, arrays: MipArrays,
               gap: float | None, solve_seconds: float, solver: str, report: SolveReport,
               notes: list[str], interrupted: bool = False,
               bound_phase2: float | None = None, build_seconds: float | None = None
               ) -> ComponentResult:
        build = self.build_seconds if build_seconds is None else build_seconds
        return ComponentResult(self.treatments, status, x, arrays, gap, build,
                               solve_seconds, solver, report, notes,
                               interrupted=interrupted, bound_phase2=bound_phase2)

    def backend(self, arrays: MipArrays, start: np.ndarray | None = None, **options: bool
                ) -> tuple[BackendResult, list[str]]:
        return run_backend(arrays, self.params, self.threads, start=start, stop=self.stop,
                           algorithms=self.algorithms, **options)


class ObjectiveStrategy(Protocol):
    """How one objective optimises a built component."""

    #: the objective it optimises (``weighted`` for a mix)
    name: str

    def optimise(self, ctx: ComponentContext) -> ComponentResult: ...


class SingleObjective:
    """One solve of the model's own objective (``travel``, ``moved``, ``weighted``), by the
    keep-set search where it covers the model (run_backend). ``travel_only``: replace the
    objective by travel, as ``providers`` does in a component without keep decisions."""

    def __init__(self, name: str, travel_only: bool = False) -> None:
        self.name, self.travel_only = name, travel_only

    def optimise(self, ctx: ComponentContext) -> ComponentResult:
        arrays = ctx.arrays
        if self.travel_only:
            arrays = arrays.with_objective(travel_vector(arrays, ctx.instance))
        res, notes = ctx.backend(arrays, start_vector(arrays, ctx.instance, ctx.start))
        report = SolveReport()
        report.set_bound(res.bound)
        note_algorithm(report, res)
        x = res.x if res.status.solved else None
        return ctx.result(res.status, x, arrays, res.mip_gap, res.seconds, res.solver, report,
                          notes, interrupted=res.interrupted)


class Lexicographic:
    """Two phases: phase 1's optimum becomes a row of phase 2, which minimises travel.
    Subclasses say what phase 1 optimises and which row carries its optimum."""

    #: the solver options of phase 2 (run_backend's cbc_preprocess, presolve)
    phase2_options: dict[str, bool] = {}

    def phase2_model(self, ctx: ComponentContext, arrays: MipArrays, res1: BackendResult,
                     report: SolveReport) -> MipArrays:
        """Phase 2's rows (phase 1's optimum as a row), before its travel objective."""
        raise NotImplementedError

    def phase1_bound(self, bound: float) -> float:
        """The bound of the reported objective (phase 1's) from phase 1's solver bound."""
        raise NotImplementedError

    def rescue_phase2(self, ctx: ComponentContext, phase2: MipArrays, res2: BackendResult,
                      notes: list[str]) -> BackendResult:
        """Phase 2's result after any second opinion (none by default)."""
        return res2

    def two_phases(self, ctx: ComponentContext, arrays: MipArrays, res1: BackendResult,
                   notes: list[str], report: SolveReport, spent: float) -> ComponentResult:
        """Phase 2 after phase 1's ``res1`` on ``arrays`` (``spent``: seconds before it)."""
        solve_s = res1.seconds + spent
        if not res1.status.solved:
            return ctx.result(res1.status, None, arrays, None, solve_s, res1.solver, report,
                              notes, interrupted=res1.interrupted)
        t1 = time.perf_counter()
        phase2 = self.phase2_model(ctx, arrays, res1, report)
        phase2 = phase2.with_objective(travel_vector(phase2, ctx.instance))
        build = ctx.build_seconds + time.perf_counter() - t1
        # phase 1's solution is feasible for phase 2: start there
        # (docs/decisions/solver-settings.md)
        res2, n2 = ctx.backend(phase2, res1.x, **self.phase2_options)
        res2 = self.rescue_phase2(ctx, phase2, res2, notes)
        notes += n2
        solve_s += res2.seconds
        note_algorithm(report, res1, res2)
        report.set_bound(None if res1.bound is None else self.phase1_bound(float(res1.bound)))
        interrupted = res1.interrupted or res2.interrupted
        if res2.status.solved:
            gap = max(res1.mip_gap or 0.0, res2.mip_gap or 0.0)
            return ctx.result(worse(res1.status, res2.status), res2.x, phase2, gap, solve_s,
                              res2.solver, report, notes, interrupted, res2.bound, build)
        return ctx.result(res2.status, None, phase2, None, solve_s, res2.solver, report,
                          notes, interrupted, res2.bound, build)


class ProvidersObjective(Lexicographic):
    """``providers``: most kept pairs, then least travel (see the module docstring); each
    phase by the keep-set search where it covers the model (the floor is a cap it reads)."""

    name = "providers"

    phase2_options = {"cbc_preprocess": True, "presolve": HIGHS_PRESOLVE}

    def optimise(self, ctx: ComponentContext) -> ComponentResult:
        report = SolveReport(lexicographic=True)
        res1, notes = ctx.backend(ctx.arrays)
        return self.two_phases(ctx, ctx.arrays, res1, notes, report, 0.0)

    def phase2_model(self, ctx: ComponentContext, arrays: MipArrays, res1: BackendResult,
                     report: SolveReport) -> MipArrays:
        assert res1.objective is not None  # solved: it has an objective
        best = int(round(-float(res1.objective)))
        report.providers_phase1 = best
        return arrays.with_extra_row(providers_vector(arrays), best - 0.5, np.inf,
                                     "providers_floor")

    def phase1_bound(self, bound: float) -> float:
        return -bound  # providers are maximised: phase 1 minimised their negation
