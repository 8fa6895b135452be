"""Solving one component: build its model, pick its objective's strategy, and cut it short
when another component proved the scenario infeasible (``stop``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from .algorithms import DEFAULT_ALGORITHMS, Algorithms, linking_for
from .formulation import MipArrays, build_arrays
from .instance import Instance
from .keepset_search import KEEP_SET_SEARCH
from .params import SolveParams
from .planner import PlannerObjective
from .solution import Solution
from .status import SolveStatus
from .strategies import ComponentContext, ObjectiveStrategy, ProvidersObjective, SingleObjective
from .subproblem import (
    ComponentResult,
    SolveReport,
    hall_test,
    run_backend,
)


def strategy_for(params: SolveParams, arrays: MipArrays) -> ObjectiveStrategy:
    """The strategy of the component's objective (weights: one weighted solve)."""
    if params.objective_weights is not None:
        return SingleObjective("weighted")
    if params.objective == "providers":
        # without keep decisions (no norms) providers reduce to least travel
        return (ProvidersObjective() if arrays.n_y
                else SingleObjective("providers", travel_only=True))
    if params.objective == "planner" and arrays.moves_c is not None:
        return PlannerObjective()
    return SingleObjective(params.objective)


@dataclass(frozen=True)
class ComponentModel:
    """The model :func:`solve_component` solves for some treatments: the component's
    parameters, its arrays, the algorithms that apply, and the seconds it took to build."""

    params: SolveParams
    arrays: MipArrays
    algorithms: Algorithms
    build_seconds: float


def component_model(instance: Instance, params: SolveParams, treatments: list[int],
                    algorithms: Algorithms = DEFAULT_ALGORITHMS) -> ComponentModel:
    """Build the model of ``treatments`` as :func:`solve_component` does (a what-if session
    builds it once, to look its result up, and hands it on when it must be solved)."""
    t0 = time.perf_counter()
    params = component_params(instance, params, treatments)
    linking = linking_for(instance, params, treatments) if algorithms.strong_linking else None
    if linking:  # the p-median class: HiGHS on the strong rows beats the 2^k arrays there
        algorithms = replace(algorithms, keep_set_search=False, hall_test=False)
    arrays = (build_arrays(instance, params, treatments, linking=linking) if linking
              else build_arrays(instance, params, treatments))
    return ComponentModel(params, arrays, algorithms, time.perf_counter() - t0)


def solve_component(instance: Instance, params: SolveParams, treatments: list[int],
                    threads: int | None, start: Solution | None = None,
                    stop: threading.Event | None = None,
                    algorithms: Algorithms = DEFAULT_ALGORITHMS,
                    model: ComponentModel | None = None) -> ComponentResult:
    """Build and solve one component. ``stop`` is shared by the components of one solve: set
    when one proves infeasible, it makes the others only check feasibility
    (``SolveStatus.FEASIBLE_NOT_OPTIMISED``). ``model``: :func:`component_model` of the same
    arguments, when the caller built it already."""
    run_objective = params.objective
    if model is None:
        model = component_model(instance, params, treatments, algorithms)
    arrays = model.arrays
    ctx = ComponentContext(instance, model.params, treatments, threads, start, stop, arrays,
                           model.build_seconds, model.algorithms)
    result = solve_built_component(ctx, run_objective)
    result.model_size = (arrays.n_cols, arrays.n_rows,
                         int(np.count_nonzero(arrays.integrality)))
    return result


def solve_built_component(ctx: ComponentContext, run_objective: str) -> ComponentResult:
    """Optimise a built component with its objective's strategy (``run_objective``: the
    objective the run reports, which a norm-free component solved as planner differs from)."""
    stop = ctx.stop
    if stop is not None and stop.is_set():
        return feasibility_only(ctx)
    result = strategy_for(ctx.params, ctx.arrays).optimise(ctx)
    if ctx.params.objective != run_objective:
        # solved as planner (no norm: today's flows) but reported in the run's objective,
        # travel: phase 2's bound is the bound of that
        result.report.set_bound(result.bound_phase2 if run_objective == "travel" else None)
    if stop is not None:
        if result.status == SolveStatus.INFEASIBLE:
            stop.set()
        elif result.interrupted:
            if result.x is not None:  # an incumbent: feasible, not optimised
                return ComponentResult(result.treatments, SolveStatus.FEASIBLE_NOT_OPTIMISED,
                                       None, result.arrays, None, result.build_seconds,
                                       result.solve_seconds, result.solver, SolveReport(),
                                       result.warnings)
            return feasibility_only(ctx, result.solve_seconds)
    return result


def feasibility_only(ctx: ComponentContext, spent: float = 0.0) -> ComponentResult:
    """Only decide feasibility (zero objective, any incumbent will do): see
    ``SolveStatus.FEASIBLE_NOT_OPTIMISED``."""
    t0 = time.perf_counter()
    arrays, params = ctx.arrays, ctx.params
    decided = hall_test(arrays, ctx.algorithms)
    if decided is not None:
        status = SolveStatus.FEASIBLE_NOT_OPTIMISED if decided else SolveStatus.INFEASIBLE
        return ctx.result(status, None, arrays, None, spent + time.perf_counter() - t0,
                          params.solver, SolveReport(algorithm=KEEP_SET_SEARCH), [])
    check = arrays.with_objective(np.zeros(arrays.n_cols))
    res, notes = run_backend(check, params.model_copy(update={"mip_gap": 1.0}), ctx.threads,
                             algorithms=ctx.algorithms)
    status = {SolveStatus.INFEASIBLE: SolveStatus.INFEASIBLE,
              SolveStatus.OPTIMAL: SolveStatus.FEASIBLE_NOT_OPTIMISED,
              SolveStatus.FEASIBLE: SolveStatus.FEASIBLE_NOT_OPTIMISED,
              }.get(res.status, SolveStatus.NOT_DECIDED)
    return ctx.result(status, None, arrays, None, spent + res.seconds, res.solver,
                      SolveReport(), notes)


def component_params(instance: Instance, params: SolveParams, treatments: list[int]
                     ) -> SolveParams:
    """Treatments without any volume norm keep today's flows whatever the objective: with no
    norm to reach, nothing justifies moving their patients, so a component of such treatments
    only is solved with the ``planner`` objective (fewest moves, then least travel)."""
    norms = instance.norm_matrix()[:, treatments]
    if params.objective == "planner" and params.objective_weights is None:
        return params
    if norms.size and np.all(np.isnan(norms)):
        return params.model_copy(update={"objective": "planner", "objective_weights": None})
    return params
