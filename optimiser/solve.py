"""``solve(instance, params) -> Solution``: decomposition by treatment, parallel sub-MIPs.

Treatments are independent sub-problems: every row of the model mentions one treatment only,
except ``bundles`` (couples the bundled treatments at each site) and ``max_loss_share`` (couples
all treatments of a site). :func:`treatment_components` finds the connected components; each is
built with :func:`optimiser.formulation.build_arrays` and solved as its own MIP, on several threads
when there are several (HiGHS releases the GIL while it runs; see :func:`_run_from_both_ends` for
the order). Results are assembled in component order, so they do not depend on the number of
threads. Once one sub-problem proves infeasible the scenario is infeasible, and the others only
check feasibility (``NOT_OPTIMISED``), so an infeasible scenario costs little.

Reported objective (``Solution.objective``), recomputed from the decoded flows so that it has
the units a planner expects and no solver tie-break noise:

* ``travel``    patient-minutes per year, Σ travel x flow;
* ``moved``     patients per year not treated where they were at baseline,
  Σ_{a,t} (demand - Σ_s min(flow, baseline_flow));
* ``providers`` number of kept (site, treatment) pairs of treatments with a norm (phase 1 of the
  lexicographic objective; the travel of phase 2 is in ``Solution.subproblems[i]["travel"]``);
* ``planner``   unnecessary moves, patients per year (phase 1 of the lexicographic objective,
  formulation.unnecessary_moves; phase 2 minimises travel, in ``subproblems[i]["travel"]``);
* weighted mix  w_travel·travel + w_moved·moved - w_providers·providers + w_planner·unnecessary.
"""

from __future__ import annotations

import os
import threading
import time
import warnings as _warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from herschik.errors import SolverError
from herschik.i18n import N_, _

from .algorithms import BRANCH_AND_BOUND_ONLY as BRANCH_AND_BOUND_ONLY  # re-exported
from .algorithms import DEFAULT_ALGORITHMS, Algorithms, linking_for
from .backends import INTERRUPT, BackendResult, solve_highs, solve_pulp
from .decomposition import treatment_components
from .feasibility import keep_set_feasible, treatment_keep_sets
from .formulation import (
    MipArrays,
    build_arrays,
    candidate_matrix,
    force_masks,
    objective_weights,
    providers_vector,
    shortfall_treatments,
    travel_vector,
    unnecessary_moves,
)
from .instance import Instance
from .keepset_phase2 import solve_phase2_by_keep_sets
from .keepset_search import KEEP_SET_SEARCH, solve_by_keep_sets
from .large_keepsets import LAGRANGIAN_KEEPSETS, solve_by_lagrangian
from .params import SolveParams
from .pinning import reduce_phase2
from .solution import Solution
from .status import SolveStatus
from .tolerances import (
    GREEDY_TOL,
    KEEP_THRESHOLD,
    MOVES_SLACK_ABS,
    MOVES_SLACK_REL,
    PROVEN_OPTIMAL_ABS,
    PROVEN_OPTIMAL_GAP,
    PROVIDES_MIN,
    SOLVER_FLOW_NOISE,
    ZERO_MOVES,
)

#: HiGHS presolve for the sub-MIPs: off; it does not help here and is very slow on large
#: transportation-like LPs (docs/decisions/solver-settings.md).
HIGHS_PRESOLVE = False
#: HiGHS' root sub-MIP heuristics (RENS, RINS) and root reduced-cost heuristic: off; the dual
#: bound, not the incumbent, limits the search (docs/decisions/solver-settings.md).
HIGHS_MIP_OPTIONS: dict[str, bool] = {
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_root_reduced_cost": False,
}
#: Sub-problem status when another sub-problem proved infeasible before this one was optimised:
#: the scenario is infeasible whatever this one's optimum, so it was only checked for
#: feasibility (an incumbent, or a zero-objective solve), so that the diagnosis still lists
#: every infeasible treatment and none that is not. "not_decided": that check hit the time limit.
NOT_OPTIMISED = SolveStatus.FEASIBLE_NOT_OPTIMISED
NOT_DECIDED = SolveStatus.NOT_DECIDED


#: Status of a solve (and of a sub-problem) that hit the time limit before any feasible solution
#: was found: feasibility is undecided, so it is never reported as infeasible.
TIME_LIMIT_NO_SOLUTION = SolveStatus.TIME_LIMIT_NO_SOLUTION


@dataclass
class _ComponentResult:
    treatments: list[int]
    status: SolveStatus
    x: np.ndarray | None
    arrays: MipArrays
    gap: float | None
    build_seconds: float
    solve_seconds: float
    solver: str
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: (columns, rows, binaries) of the component's full model, whichever model was solved
    model_size: tuple[int, int, int] | None = None


def _run_backend(arrays: MipArrays, params: SolveParams, threads: int | None,
                 start: np.ndarray | None = None, stop: threading.Event | None = None,
                 cbc_preprocess: bool = True, presolve: bool = HIGHS_PRESOLVE,
                 algorithms: Algorithms = DEFAULT_ALGORITHMS
                 ) -> tuple[BackendResult, list[str]]:
    """Solve with the chosen back-end; fall back from HiGHS to CBC when highspy is unusable.

    HiGHS stops early when ``stop`` is set (CBC runs to the end)."""
    notes: list[str] = []
    if params.solver == "highs" and algorithms.keep_set_search:
        # decides infeasible models too; where it does not cover a model, neither does the test
        searched = solve_by_keep_sets(arrays, params.mip_gap, params.time_limit,
                                      stop if stop is not None else INTERRUPT)
        if searched is not None:
            return _proven(searched), notes
    elif algorithms.hall_test and keep_set_feasible(arrays) is False:
        return BackendResult(SolveStatus.INFEASIBLE, solver=params.solver,
                             message=KEEP_SET_SEARCH), notes
    if params.solver == "highs" and algorithms.lagrangian_keep_sets:
        # speed-national hook: many keep decisions (optimiser/large_keepsets.py)
        large = solve_by_lagrangian(arrays, params.mip_gap, params.time_limit, stop, threads,
                                    HIGHS_MIP_OPTIONS, start, presolve)
        if large is not None:
            return _proven(large), notes
    highs_undecided: str | None = None  # HiGHS ran on the model but reached no verdict
    if params.solver == "highs":
        try:
            result = solve_highs(arrays, params.time_limit, params.mip_gap, threads, start=start,
                                 presolve=presolve, options=HIGHS_MIP_OPTIONS,
                                 interrupt=stop)
        except ImportError as exc:  # highspy missing
            notes.append(f"highspy unavailable ({exc}); solved with CBC instead")
            result = None
        except Exception as exc:  # any HiGHS failure: try CBC rather than crash
            notes.append(f"HiGHS failed ({exc!r}); solved with CBC instead")
            highs_undecided = repr(exc)
            result = None
        if result is not None and result.status != SolveStatus.ERROR:
            return _proven(result), notes
        if result is not None:
            notes.append(f"HiGHS returned an error ({result.message}); solved with CBC instead")
            highs_undecided = f"status {result.message!r}"
    result = solve_pulp(arrays, "cbc", params.time_limit, params.mip_gap, threads,
                        preprocess=cbc_preprocess)
    if result.status == SolveStatus.ERROR:
        raise RuntimeError(f"CBC failed on a sub-problem: {result.message}")
    if (highs_undecided is not None and result.status == SolveStatus.INFEASIBLE
            and keep_set_feasible(arrays) is not False):
        # Where HiGHS gives up (e.g. "Unknown" on objective coefficients 1e20 apart) CBC's
        # "infeasible" comes from the same numerical trouble: a plan exists (issue 27). Only
        # a proven verdict may be reported; otherwise say that nothing was decided.
        raise SolverError(
            f"the solvers could not decide a sub-problem: HiGHS stopped without a verdict "
            f"({highs_undecided}) and CBC's 'infeasible' is not confirmed by the exact "
            "keep-set test; feasibility is undecided (numerically extreme inputs?)"
        )
    return _proven(result), notes


def _proven(result: BackendResult) -> BackendResult:
    """``optimal`` only within PROVEN_OPTIMAL_GAP; a looser requested gap gives ``feasible``.

    An optimum of ~0 (e.g. no unnecessary move) has a meaningless relative gap (HiGHS reports
    1.0 for 0 against a bound of 0): there the absolute gap PROVEN_OPTIMAL_ABS decides."""
    if (result.status == SolveStatus.OPTIMAL and result.objective is not None
            and result.bound is not None and abs(result.objective) < 1.0
            and abs(result.objective - result.bound) <= PROVEN_OPTIMAL_ABS):
        result.mip_gap = 0.0
    if result.status == SolveStatus.OPTIMAL and (result.mip_gap or 0.0) > PROVEN_OPTIMAL_GAP:
        result.status = SolveStatus.FEASIBLE
        result.message = result.message or "stopped at the requested mip_gap"
    return result


def _worse(a: SolveStatus, b: SolveStatus) -> SolveStatus:
    order = {SolveStatus.OPTIMAL: 0, SolveStatus.FEASIBLE: 1,
             SolveStatus.TIME_LIMIT_NO_SOLUTION: 2, SolveStatus.INFEASIBLE: 3}
    return a if order.get(a, 3) >= order.get(b, 3) else b


def _start_vector(arrays: MipArrays, instance: Instance, start: Solution | None
                  ) -> np.ndarray | None:
    """Column values of ``arrays`` that reproduce a known solution (warm start), or None."""
    if start is None or start.flow is None or start.keep is None:
        return None
    flow = start.flow[arrays.x_area, arrays.x_site, arrays.x_treat]
    x = flow / np.where(arrays.x_scale > 0, arrays.x_scale, 1.0)
    y = start.keep[arrays.y_site, arrays.y_treat].astype(float)
    stay = np.minimum(
        start.flow[arrays.stay_area, arrays.stay_site, arrays.stay_treat],
        instance.baseline_flow[arrays.stay_area, arrays.stay_site, arrays.stay_treat],
    )
    values = np.concatenate([x, y, stay])
    return values if values.shape[0] == arrays.n_cols else None


def _feasibility_only(instance: Instance, params: SolveParams, treatments: list[int],
                      arrays: MipArrays, build: float, threads: int | None,
                      spent: float = 0.0, algorithms: Algorithms = DEFAULT_ALGORITHMS
                      ) -> _ComponentResult:
    """Only decide feasibility (zero objective, any incumbent will do): see NOT_OPTIMISED."""
    t0 = time.perf_counter()
    decided = keep_set_feasible(arrays) if algorithms.hall_test else None
    if decided is not None:
        status = NOT_OPTIMISED if decided else SolveStatus.INFEASIBLE
        return _ComponentResult(treatments, status, None, arrays, None, build,
                                spent + time.perf_counter() - t0, params.solver,
                                {"algorithm": KEEP_SET_SEARCH}, [])
    check = arrays.with_objective(np.zeros(arrays.n_cols))
    res, notes = _run_backend(check, params.model_copy(update={"mip_gap": 1.0}), threads,
                              algorithms=algorithms)
    status = {SolveStatus.INFEASIBLE: SolveStatus.INFEASIBLE, SolveStatus.OPTIMAL: NOT_OPTIMISED,
              SolveStatus.FEASIBLE: NOT_OPTIMISED}.get(res.status, NOT_DECIDED)
    return _ComponentResult(treatments, status, None, arrays, None, build, spent + res.seconds,
                            res.solver, {}, notes)


def _solve_component(instance: Instance, params: SolveParams, treatments: list[int],
                     threads: int | None, start: Solution | None = None,
                     stop: threading.Event | None = None,
                     algorithms: Algorithms = DEFAULT_ALGORITHMS) -> _ComponentResult:
    """Build and solve one component. ``stop`` is shared by the components of one solve: set
    when one proves infeasible, it makes the others only check feasibility (NOT_OPTIMISED)."""
    t0 = time.perf_counter()
    run_objective = params.objective
    params = _component_params(instance, params, treatments)
    linking = linking_for(instance, params, treatments) if algorithms.strong_linking else None
    if linking:  # the p-median class: HiGHS on the strong rows beats the 2^k arrays there
        algorithms = replace(algorithms, keep_set_search=False, hall_test=False)
    arrays = (build_arrays(instance, params, treatments, linking=linking) if linking
              else build_arrays(instance, params, treatments))
    build = time.perf_counter() - t0
    result = _solve_built_component(instance, params, treatments, threads, start, stop, arrays,
                                    build, run_objective, algorithms)
    result.model_size = (arrays.n_cols, arrays.n_rows,
                         int(np.count_nonzero(arrays.integrality)))
    return result


def _solve_built_component(instance: Instance, params: SolveParams, treatments: list[int],
                           threads: int | None, start: Solution | None,
                           stop: threading.Event | None, arrays: MipArrays, build: float,
                           run_objective: str, algorithms: Algorithms = DEFAULT_ALGORITHMS
                           ) -> _ComponentResult:
    if stop is not None and stop.is_set():
        return _feasibility_only(instance, params, treatments, arrays, build, threads,
                                 algorithms=algorithms)
    result = _optimise_component(instance, params, treatments, threads, start, stop, arrays,
                                 build, algorithms)
    if params.objective != run_objective:
        # solved as planner (no norm: today's flows) but reported in the run's objective,
        # travel: phase 2's bound is the bound of that
        result.info["bound"] = (result.info.get("bound_phase2") if run_objective == "travel"
                                else None)
    result.info.pop("bound_phase2", None)
    if stop is not None:
        if result.status == SolveStatus.INFEASIBLE:
            stop.set()
        elif result.info.pop("interrupted", False):
            if result.x is not None:  # an incumbent: feasible, not optimised
                return _ComponentResult(treatments, NOT_OPTIMISED, None, result.arrays, None,
                                        result.build_seconds, result.solve_seconds,
                                        result.solver, {}, result.warnings)
            return _feasibility_only(instance, params, treatments, arrays, build, threads,
                                     result.solve_seconds, algorithms)
    result.info.pop("interrupted", None)
    return result


def _component_params(instance: Instance, params: SolveParams, treatments: list[int]
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


#: HiGHS presolve on that reduced model: it is small, so presolve (bound-like singleton rows,
#: dominated columns) pays there, unlike on the full transportation-like models
PIN_PRESOLVE = True


def _planner_greedy(arrays: MipArrays, instance: Instance) -> np.ndarray | None:
    """Column values of the plan "every self-sufficient hospital keeps the treatment and its
    patients, every other one closes, displaced patients go to the nearest open site", or
    None when that plan breaks a row of the model (capacity, force_keep, bundles, the
    one-provider rule, single sourcing, a travel limit). It has no unnecessary move."""
    if arrays.moves_c is None or arrays.stay_x is None or arrays.stay_y is None:
        return None
    if np.any(arrays.integrality[arrays.x_slice()]):  # single sourcing: shares, not flows
        return None
    values = np.zeros(arrays.n_cols)
    y_open = np.zeros(arrays.n_y, dtype=bool)
    counted_y = arrays.stay_y[arrays.stay_y >= 0] - arrays.y_start
    # self-sufficient sites: y columns that no stay counts on (their b is counted always)
    y_open[:] = True
    y_open[np.unique(counted_y)] = False
    values[arrays.y_slice()] = y_open.astype(float)
    n_sites, n_treat = instance.baseline_volume.shape
    site_open = np.ones((n_sites, n_treat), dtype=bool)  # sites without a y are open
    site_open[arrays.y_site, arrays.y_treat] = y_open
    x_open = site_open[arrays.x_site, arrays.x_treat]
    flow = np.zeros(arrays.n_x)
    b = arrays.col_upper[arrays.stay_start:arrays.stay_start + arrays.stay_x.shape[0]]
    kept_stay = x_open[arrays.stay_x]
    flow[arrays.stay_x[kept_stay]] = b[kept_stay]
    demand = instance.demand[arrays.x_area, arrays.x_treat]
    group = arrays.x_area * n_treat + arrays.x_treat
    assigned = np.zeros(instance.demand.size)
    np.add.at(assigned, group, flow)
    rest = instance.demand.ravel() - assigned
    minutes = np.where(x_open, instance.travel_min[arrays.x_area, arrays.x_site], np.inf)
    order = np.lexsort((np.arange(arrays.n_x), minutes, group))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = group[order][1:] != group[order][:-1]
    nearest = order[first]
    nearest = nearest[np.isfinite(minutes[nearest])]
    flow[nearest] += np.maximum(rest[group[nearest]], 0.0)
    flow = np.minimum(flow, demand)
    values[arrays.x_slice()] = flow
    values[arrays.stay_start:arrays.stay_start + b.shape[0]] = np.minimum(
        flow[arrays.stay_x], b)
    activity = arrays.A @ values
    tol = GREEDY_TOL * np.maximum(1.0, np.abs(activity))
    if np.any(activity < arrays.row_lower - tol) or np.any(activity > arrays.row_upper + tol):
        return None
    if np.any(values < arrays.col_lower - GREEDY_TOL) or np.any(
            values > arrays.col_upper + GREEDY_TOL):
        return None
    if float(arrays.moves_c @ values + arrays.moves_offset) > ZERO_MOVES:
        return None
    return values


def _zero_moves_model(arrays: MipArrays) -> MipArrays:
    """Phase 2 when phase 1 found no unnecessary move: U = 0 exactly when every counted
    baseline flow stays, i.e. flow >= b at self-sufficient / norm-free sites (a column bound)
    and flow - b·y >= 0 where b counts on a keep decision (one row per such flow). Same
    feasible set as U <= 0 (U >= 0 always), but tight per flow instead of one dense row."""
    assert arrays.stay_x is not None and arrays.stay_y is not None
    out = arrays.with_objective(arrays.c, arrays.offset)
    out.col_lower = arrays.col_lower.copy()
    b = arrays.col_upper[arrays.stay_start:arrays.stay_start + arrays.stay_x.shape[0]]
    always = arrays.stay_y < 0
    scale = arrays.x_scale[arrays.stay_x]
    cols = arrays.stay_x[always]
    out.col_lower[cols] = np.minimum(np.maximum(
        out.col_lower[cols], b[always] / np.where(scale[always] > 0, scale[always], 1.0)),
        arrays.col_upper[cols])
    on_y = np.nonzero(~always)[0]
    k = on_y.shape[0]

    rows = sp.csr_matrix(
        (np.concatenate([scale[on_y], -b[on_y]]),
         (np.concatenate([np.arange(k), np.arange(k)]),
          np.concatenate([arrays.stay_x[on_y], arrays.stay_y[on_y]]))),
        shape=(k, arrays.n_cols))
    out.A = sp.vstack([arrays.A, rows], format="csr")
    out.row_lower = np.concatenate([arrays.row_lower, np.zeros(k)])
    out.row_upper = np.concatenate([arrays.row_upper, np.full(k, np.inf)])
    out.row_families = dict(arrays.row_families)
    out.row_families["stay_full"] = (arrays.n_rows, arrays.n_rows + k)
    return out


def _planner_without_moves(arrays: MipArrays, instance: Instance, params: SolveParams,
                           threads: int | None, stop: threading.Event | None,
                           start: np.ndarray | None, algorithms: Algorithms = DEFAULT_ALGORITHMS
                           ) -> tuple[tuple[BackendResult, MipArrays, list[str]] | None, float]:
    """Both planner phases in one solve when a plan without unnecessary moves exists.

    ``arrays`` has phase 1's objective. Phase 2 under U* = 0 is the zero-moves model; if it
    is feasible, U* = 0 (U >= 0 in every plan) and its least-travel optimum is phase 2's, so
    it is solved directly, on its exact reduction (optimiser/pinning.py). None when the
    reduction does not apply or that model has no plan (then U* > 0, or the component is
    infeasible) or was stopped: the plain two phases decide. Also the solver seconds spent."""
    phase2 = _zero_moves_model(arrays)
    phase2 = phase2.with_objective(travel_vector(phase2, instance))
    reduced = reduce_phase2(phase2, instance.demand)
    if reduced is None:
        return None, 0.0
    res, notes = _run_backend(reduced.model, params, threads, start=reduced.restrict(start),
                              stop=stop, cbc_preprocess=False, presolve=PIN_PRESOLVE,
                              algorithms=algorithms)
    if (res.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE) or res.x is None
            or res.interrupted):
        return None, res.seconds
    res.x = reduced.expand(res.x)
    return (res, phase2, notes), res.seconds


def _planner_by_keep_sets(arrays: MipArrays, instance: Instance, params: SolveParams,
                          treatments: list[int], build: float, greedy: np.ndarray | None,
                          stop: threading.Event | None) -> _ComponentResult | None:
    """Both planner phases by the keep-set searches (optimiser/keepset_phase2.py), or None
    when they do not cover the model (the MIP path then solves it). ``arrays`` has phase 1's
    objective; ``greedy`` proves U* = 0 when it is a plan. Without it, phase 2 under U* = 0
    is searched first (as _planner_without_moves does): a plan there proves U* = 0 (U >= 0
    always); only when there is none does phase 1 run, then phase 2 under its optimum."""
    sets = treatment_keep_sets(arrays, arrays.treatments[0]) if len(treatments) == 1 else None
    if sets is None:
        return None
    assert arrays.moves_c is not None
    info: dict[str, Any] = {}
    travel = travel_vector(arrays, instance)
    zero_rhs = -arrays.moves_offset + MOVES_SLACK_ABS
    spent = 0.0
    if greedy is None:
        direct = solve_phase2_by_keep_sets(arrays, travel, zero_rhs, True, params.mip_gap,
                                           params.time_limit, stop, sets)
        if direct is None:
            return None
        spent = direct.seconds
        if direct.status.solved:
            assert direct.x is not None
            greedy = direct.x
            info["phase1"] = "zero_moves"
        elif direct.status == SolveStatus.TIME_LIMIT_NO_SOLUTION:
            info["interrupted"] = direct.interrupted
            return _ComponentResult(treatments, direct.status, None, arrays, None, build,
                                    direct.seconds, params.solver, info, [])
        elif direct.status != SolveStatus.INFEASIBLE:
            return None
    else:
        info["phase1"] = "greedy"
    if greedy is not None:
        res1 = BackendResult(SolveStatus.OPTIMAL, 0.0, greedy, 0.0, spent, params.solver,
                             bound=0.0, message=KEEP_SET_SEARCH)
        res2 = direct if info["phase1"] == "zero_moves" else None
    else:
        found = solve_by_keep_sets(arrays, params.mip_gap, params.time_limit, stop, sets)
        if found is None or found.status == SolveStatus.INFEASIBLE:
            return None  # infeasible: the MIP path diagnoses it as before
        res1 = _proven(found)
        res1.seconds += spent
        res2 = None
        if not res1.status.solved or res1.interrupted:
            return None
    assert res1.x is not None
    moves = float(arrays.moves_c @ res1.x + arrays.moves_offset)
    zero = moves <= ZERO_MOVES
    slack = MOVES_SLACK_ABS + MOVES_SLACK_REL * abs(moves)
    rhs = zero_rhs if zero else moves - arrays.moves_offset + slack
    if res2 is None:
        res2 = solve_phase2_by_keep_sets(arrays, travel, rhs, zero, params.mip_gap,
                                         params.time_limit, stop, sets)
        if res2 is None or not (res2.status.solved or res2.interrupted):
            return None
        if not res2.status.solved:  # interrupted before a plan: feasibility is undecided
            info["interrupted"] = True
            return _ComponentResult(treatments, res2.status, None, arrays, None, build,
                                    res2.seconds + res1.seconds, params.solver, info, [])
        res2.seconds += res1.seconds
    res2 = _proven(res2)
    phase2 = (_zero_moves_model(arrays) if zero else
              arrays.with_extra_row(arrays.moves_c, -np.inf, rhs, "moves_ceiling"))
    phase2 = phase2.with_objective(travel)
    info["unnecessary_moves_phase1"] = round(max(moves, 0.0), 6)
    info["algorithm"] = KEEP_SET_SEARCH
    info["interrupted"] = res2.interrupted
    info["bound_phase2"] = res2.bound
    info["bound"] = 0.0 if zero else res1.bound
    gap = max(res1.mip_gap or 0.0, res2.mip_gap or 0.0)
    return _ComponentResult(treatments, _worse(res1.status, res2.status), res2.x, phase2, gap,
                            build, res2.seconds, res2.solver, info, [])


def _optimise_component(instance: Instance, params: SolveParams, treatments: list[int],
                        threads: int | None, start: Solution | None,
                        stop: threading.Event | None, arrays: MipArrays, build: float,
                        algorithms: Algorithms = DEFAULT_ALGORITHMS) -> _ComponentResult:
    lexicographic = params.objective_weights is None and params.objective == "providers"
    planner = (params.objective_weights is None and params.objective == "planner"
               and arrays.moves_c is not None)
    notes: list[str] = []
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    if planner and algorithms.hall_test and keep_set_feasible(arrays) is False:
        # proven infeasible before the greedy plan and the zero-moves attempt (the other
        # objectives meet the keep-set test in _run_backend)
        return _ComponentResult(treatments, SolveStatus.INFEASIBLE, None, arrays, None, build,
                                time.perf_counter() - t0, params.solver,
                                {"algorithm": KEEP_SET_SEARCH}, [])
    if planner and arrays.moves_c is not None:
        # Phase 1: fewest unnecessary moves. Phase 2: no more than that, least travel. Two
        # solves, as for providers: an exact single weight would have to exceed the travel
        # change any one moved patient can cause across keep sets, which is unbounded.
        arrays = arrays.with_objective(arrays.moves_c, arrays.moves_offset)
    if (lexicographic and arrays.n_y) or planner:
        # providers: phase 1 maximises kept pairs, phase 2 keeps at least that many and
        # minimises travel (a big-M weight safe for every instance would have to exceed the
        # total patient-minutes, ~1e7 nationally, and wreck the numerics).
        greedy = _planner_greedy(arrays, instance) if planner else None
        if planner and params.solver == "highs" and algorithms.keep_set_search:
            searched = _planner_by_keep_sets(arrays, instance, params, treatments, build,
                                             greedy, stop)
            if searched is not None:
                return searched
        direct, attempt_s = (_planner_without_moves(arrays, instance, params, threads, stop,
                                                    greedy if greedy is not None
                                                    else _start_vector(arrays, instance, start),
                                                    algorithms)
                             if planner and algorithms.pin_phase2 else (None, 0.0))
        if direct is not None:
            res2, phase2, notes = direct
            info["phase1"] = "greedy" if greedy is not None else "zero_moves"
            info["interrupted"] = res2.interrupted
            proof = greedy if greedy is not None else res2.x
            assert arrays.moves_c is not None and proof is not None  # planner, solved
            moves = float(arrays.moves_c @ proof + arrays.moves_offset)
            info["unnecessary_moves_phase1"] = round(max(moves, 0.0), 6)
            info["bound_phase2"] = res2.bound
            info["bound"] = 0.0
            return _ComponentResult(treatments, res2.status, res2.x, phase2,
                                    res2.mip_gap or 0.0, build, res2.seconds, res2.solver,
                                    info, notes)
        if greedy is not None:
            # "close every hospital below its norm, displaced patients to the nearest one that
            # keeps it" has no unnecessary move: it proves phase 1 (U >= 0) without a solve
            res1 = BackendResult(SolveStatus.OPTIMAL, 0.0, greedy, 0.0, 0.0, params.solver,
                                 bound=0.0)
            n1: list[str] = []
            info["phase1"] = "greedy"
        else:
            warm = _start_vector(arrays, instance, start) if planner else None
            res1, n1 = _run_backend(arrays, params, threads, start=warm, stop=stop,
                                    algorithms=algorithms)
        notes += n1
        solve_s = res1.seconds + attempt_s  # a failed direct attempt counts too
        info["interrupted"] = res1.interrupted
        if res1.status.solved:
            t1 = time.perf_counter()
            if planner:
                assert arrays.moves_c is not None  # planner: the model has a moves vector
                moves = float(arrays.moves_c @ res1.x + arrays.moves_offset)
                info["unnecessary_moves_phase1"] = round(max(moves, 0.0), 6)
                if moves <= ZERO_MOVES:
                    phase2 = _zero_moves_model(arrays)
                else:
                    slack = MOVES_SLACK_ABS + MOVES_SLACK_REL * abs(moves)
                    phase2 = arrays.with_extra_row(arrays.moves_c, -np.inf,
                                                   moves - arrays.moves_offset + slack,
                                                   "moves_ceiling")
            else:
                assert res1.objective is not None  # solved: it has an objective
                best = int(round(-float(res1.objective)))
                info["providers_phase1"] = best
                phase2 = arrays.with_extra_row(providers_vector(arrays), best - 0.5, np.inf,
                                               "providers_floor")
            phase2 = phase2.with_objective(travel_vector(phase2, instance))
            build += time.perf_counter() - t1
            # phase 1's solution is feasible for phase 2: start there
            # (docs/decisions/solver-settings.md)
            # presolve on for the planner's phase 2: its ceiling row is as thin as the
            # solver tolerance, and without presolve HiGHS' branch and bound pruned feasible
            # nodes there (false optimum, or "infeasible" without a start; issue 23,
            # tests/data/planner_phase2_small.json)
            res2, n2 = _run_backend(phase2, params, threads, start=res1.x, stop=stop,
                                    cbc_preprocess=not planner,
                                    presolve=True if planner else HIGHS_PRESOLVE,
                                    algorithms=algorithms)
            if planner and res2.status == SolveStatus.INFEASIBLE and params.solver == "highs":
                # phase 1's plan meets every row of phase 2: "infeasible" is the solver's
                # numerical failure, never an answer; CBC decides instead
                notes.append("HiGHS called the planner's phase 2 infeasible although phase "
                             "1's plan is feasible; solved with CBC instead")
                res2 = _proven(solve_pulp(phase2, "cbc", params.time_limit, params.mip_gap,
                                          threads, preprocess=False))
            notes += n2
            solve_s += res2.seconds
            _note_algorithm(info, res1, res2)
            info["interrupted"] = res1.interrupted or res2.interrupted
            info["bound_phase2"] = res2.bound
            status = _worse(res1.status, res2.status)
            # bound of the reported objective, phase 1's: unnecessary moves (minimised) for
            # planner, providers (maximised, so the negated bound) for providers
            if res1.bound is None:
                info["bound"] = None
            else:
                info["bound"] = float(res1.bound) if planner else -float(res1.bound)
            if res2.status.solved:
                gap = max(res1.mip_gap or 0.0, res2.mip_gap or 0.0)
                return _ComponentResult(treatments, status, res2.x, phase2, gap, build, solve_s,
                                        res2.solver, info, notes)
            return _ComponentResult(treatments, res2.status, None, phase2, None, build, solve_s,
                                    res2.solver, info, notes)
        return _ComponentResult(treatments, res1.status, None, arrays, None, build, solve_s,
                                res1.solver, info, notes)
    if lexicographic:
        # no keep decisions in this component (no norms): providers reduce to least travel
        arrays = arrays.with_objective(travel_vector(arrays, instance))
    res, n = _run_backend(arrays, params, threads, _start_vector(arrays, instance, start),
                          stop, algorithms=algorithms)
    notes += n
    info["interrupted"] = res.interrupted
    info["bound"] = res.bound
    _note_algorithm(info, res)
    x = res.x if res.status.solved else None
    return _ComponentResult(treatments, res.status, x, arrays, res.mip_gap, build, res.seconds,
                            res.solver, info, notes)


def _note_algorithm(info: dict[str, Any], *results: BackendResult) -> None:
    """Name the keep-set search in the sub-problem's entry when it solved every phase."""
    if results and all(r.message == KEEP_SET_SEARCH for r in results):
        info["algorithm"] = KEEP_SET_SEARCH
    elif results and all(r.message == LAGRANGIAN_KEEPSETS for r in results):
        info["algorithm"] = LAGRANGIAN_KEEPSETS


def _objective_value(instance: Instance, params: SolveParams, flow: np.ndarray,
                     keep: np.ndarray, treatments: list[int]) -> dict[str, float]:
    """Travel, moved, providers and the reported objective of ``treatments`` from decoded flows."""
    tt = np.asarray(treatments, dtype=int)
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
    f = flow[:, :, tt]
    minutes = float(np.einsum("ast,as->", f, travel))
    stay = np.minimum(f, instance.baseline_flow[:, :, tt]).sum()
    moved = float(instance.demand[:, tt].sum() - stay)
    norms = instance.norm_matrix()[:, tt]
    providers = float((keep[:, tt] & ~np.isnan(norms)).sum())
    w = objective_weights(params)
    unnecessary = (unnecessary_moves(instance, params, flow, keep, treatments)
                   if params.objective == "planner" or w["planner"] else 0.0)
    if params.objective_weights is None:
        value = {"travel": minutes, "moved": moved, "providers": providers,
                 "planner": unnecessary}[params.objective]
    else:
        value = (w["travel"] * minutes + w["moved"] * moved - w["providers"] * providers
                 + w["planner"] * unnecessary)
    return {"travel": minutes, "moved": moved, "providers": providers,
            "unnecessary_moves": unnecessary, "objective": value}


def _move_tolerance_flows(flow: np.ndarray, keep: np.ndarray, norms: np.ndarray, t: int,
                          forced: np.ndarray) -> None:
    """Hand flows to closed sites (keep decision 0) to the area's largest other flow.

    A binary within HiGHS' integrality tolerance (1e-6) times a linking bound of ~1e3 patients
    leaves ~1e-4 patients at a closed site; they belong to the area's main site. A site "kept"
    without patients (possible where the norm is waived to 0) does not provide the treatment
    unless it is forced to keep it."""
    normed = ~np.isnan(norms[:, t])
    empty = keep[:, t] & normed & (flow[:, :, t].sum(axis=0) <= PROVIDES_MIN) & ~forced[:, t]
    keep[empty, t] = False
    closed = ~keep[:, t] & normed
    stray = flow[:, closed, t].sum(axis=1)
    if not np.any(stray > 0):
        return
    flow[:, closed, t] = 0.0
    areas = np.nonzero(stray > 0)[0]
    main = np.argmax(flow[areas, :, t], axis=1)
    flow[areas, main, t] += stray[areas]


def _size_estimate(instance: Instance, candidate: np.ndarray, treatments: list[int]) -> int:
    """Keep decisions x flow columns of a component, before building it: a proxy of its solve
    time (the slow sub-MIPs are those with many candidate sites and many areas)."""
    cand = candidate[:, treatments]
    areas = (instance.demand[:, treatments] > 0).sum(axis=0)
    sites = cand.sum(axis=0)
    return int(sites.sum() * (sites * areas).sum())


def _run_from_both_ends(ascending: list[int], workers: int,
                        run: Callable[[int], _ComponentResult],
                        stop: threading.Event | None) -> dict[int, _ComponentResult]:
    """Run ``run(i)`` for every index on ``workers`` threads; results by index.

    Worker 0 takes the largest remaining sub-problem, the others the smallest: the large MIPs
    start at once (as in longest-processing-time order, so the makespan stays short), and the
    small ones, where an infeasible treatment usually is (few providers), are decided early,
    so that ``stop`` can cut the large ones short. HiGHS releases the GIL while it solves.
    """
    queue = deque(ascending)
    lock = threading.Lock()
    results: dict[int, _ComponentResult] = {}
    errors: list[BaseException] = []

    def worker(from_largest: bool) -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                i = queue.pop() if from_largest else queue.popleft()
            try:
                results[i] = run(i)
            except BaseException as exc:  # re-raised in the calling thread
                with lock:
                    errors.append(exc)
                return

    threads = [threading.Thread(target=worker, args=(k == 0,), daemon=True)
               for k in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:  # e.g. KeyboardInterrupt: stop handing out work, end running solves
        with lock:
            queue.clear()
        if stop is not None:
            stop.set()
        INTERRUPT.set()
        for thread in threads:  # never leave while HiGHS runs (it would abort the process)
            while thread.is_alive():
                try:
                    thread.join()
                except KeyboardInterrupt:
                    continue
        raise
    if errors:
        raise errors[0]
    return results


def solve(instance: Instance, params: SolveParams, start: Solution | None = None,
          max_workers: int | None = None,
          algorithms: Algorithms | None = None, partial: bool = True) -> Solution:
    """Solve the reallocation MIP of ``instance`` under ``params``.

    Sub-problems run side by side on ``params.threads`` (default: every core) threads, at most
    ``max_workers`` (a sweep that already runs one solve per core passes 1). Neither changes
    the result.

    ``start`` (optional) is a known solution of the same instance that HiGHS starts from (used
    to seed the national joint solve with the regional solutions); it changes no result that
    is proven optimal.

    Never raises on an infeasible scenario: the returned Solution has status ``infeasible`` and
    a plain-words ``diagnosis``. Raises ``RuntimeError`` only if both solvers fail.

    ``partial`` (default): when some treatments are infeasible, the others are still optimised
    and the Solution is ``partially_infeasible``: flows and keeps of the solved treatments
    (zero for the others), the diagnosis of the infeasible ones. ``partial=False``: the others
    stop at a feasibility check once one is infeasible (faster; status ``infeasible``).
    """
    comps, explanation, results = solve_components(instance, params, start, max_workers,
                                                   early_stop=not partial,
                                                   algorithms=algorithms)
    return assemble(instance, params, comps, explanation, results, partial=partial)


def solve_components(instance: Instance, params: SolveParams, start: Solution | None = None,
                     max_workers: int | None = None, early_stop: bool = True,
                     algorithms: Algorithms | None = None
                     ) -> tuple[list[list[int]], str, list[_ComponentResult]]:
    """The components, their explanation and their results in component order (see solve).

    ``early_stop=False`` optimises every component even when one is infeasible (a what-if
    session re-uses them later)."""
    comps, explanation = treatment_components(instance, params)
    chosen = DEFAULT_ALGORITHMS if algorithms is None else algorithms
    n_comp = len(comps)
    cores = params.threads or os.cpu_count() or 1
    workers = max(1, min(cores, n_comp, max_workers or cores))
    # HiGHS always runs single-threaded, parallelism comes from solving sub-problems side by
    # side: results must not depend on the core count (docs/decisions/solver-settings.md).
    threads = 1
    # One infeasible sub-problem makes the scenario infeasible: the others then stop optimising.
    stop = threading.Event() if n_comp > 1 and early_stop else None

    def run(i: int) -> _ComponentResult:
        if INTERRUPT.is_set():
            raise KeyboardInterrupt("interrupted")
        return _solve_component(instance, params, comps[i], threads, start, stop, chosen)

    if workers > 1:
        candidate = candidate_matrix(instance, params)
        sizes = [_size_estimate(instance, candidate, comp) for comp in comps]
        by_size = _run_from_both_ends(sorted(range(n_comp), key=lambda i: sizes[i]), workers,
                                      run, stop)
        results = [by_size[i] for i in range(n_comp)]
    else:
        results = [run(i) for i in range(n_comp)]
    return comps, explanation, results


def _infeasible_diagnosis(instance: Instance, params: SolveParams,
                          infeasible_treatments: list[str],
                          unsolved_treatments: list[str] | None) -> dict[str, Any]:
    """The diagnosis of an infeasible solve; ``unsolved_treatments``: those whose sub-problem
    hit the time limit without a solution (undecided, but one infeasible one decides)."""
    from .diagnose import diagnose

    try:
        diagnosis = diagnose(instance, params, infeasible_treatments)
    except Exception as exc:  # a diagnosis bug must not hide the status
        _warnings.warn(f"diagnose failed: {exc!r}", stacklevel=3)
        diagnosis = {"reason": "The scenario has no feasible solution (the diagnosis "
                               f"itself failed: {exc!r}).",
                     "infeasible_treatments": infeasible_treatments}
    if unsolved_treatments is not None:
        diagnosis = dict(diagnosis)
        diagnosis["time_limit_reached"] = True
        diagnosis["unsolved_treatments"] = unsolved_treatments
    return diagnosis


#: what a sub-problem entry of an infeasible scenario keeps (besides timings): how far the others
#: got before one proved infeasible depends on thread timing, so none of it is reported
_NOT_OPTIMISED_KEYS = ("treatments", "n_vars", "n_rows", "n_binaries", "status", "gap",
                       "build_seconds", "solve_seconds", "solver")


def _not_optimised(entry: dict[str, Any],
                   model_size: tuple[int, int, int] | None) -> dict[str, Any]:
    """A feasible sub-problem of an infeasible scenario, reported the same whether it was
    optimised before another one proved infeasible or only checked for feasibility after
    (sizes of its full model: the planner's phase 2 solves a smaller one)."""
    if entry["status"] not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, NOT_OPTIMISED):
        return entry
    kept = {key: entry[key] for key in _NOT_OPTIMISED_KEYS if key in entry}
    if model_size is not None:
        kept["n_vars"], kept["n_rows"], kept["n_binaries"] = model_size
    return {**kept, "status": str(NOT_OPTIMISED), "gap": None}


#: how diagnose.py's reason of an infeasible scenario begins
_INFEASIBLE_PREFIX = N_("The scenario is infeasible:")


def _partial_solution(instance: Instance, params: SolveParams, results: list[_ComponentResult],
                      flow: np.ndarray, keep: np.ndarray, diagnosis: dict[str, Any],
                      subproblems: list[dict[str, Any]], explanation: str,
                      solution_warnings: list[str], no_solution: bool) -> Solution | None:
    """The partial plan of an infeasible scenario whose every other sub-problem was optimised
    (solve(partial=True)): flows and keeps of the solved treatments, the diagnosis of the
    others; None when nothing was solved, a time limit left one undecided, or some
    sub-problem was only checked for feasibility."""
    if no_solution or any(r.status in (NOT_OPTIMISED, NOT_DECIDED) for r in results):
        return None
    solved = sorted(t for r in results if r.x is not None for t in r.treatments)
    if not solved:
        return None
    infeasible = [instance.treatment_ids[t] for r in results if r.x is None
                  for t in r.treatments]
    diagnosis = dict(diagnosis)
    reason = str(diagnosis.get("reason", ""))
    for prefix in (_INFEASIBLE_PREFIX, _(_INFEASIBLE_PREFIX)):  # English, or the run's
        if reason.startswith(prefix):
            reason = reason[len(prefix):].lstrip()
            break
    diagnosis["reason"] = _("No plan for {treatments} (the other treatments have one): "
                            "{reason}", treatments=", ".join(infeasible), reason=reason)
    diagnosis["solved_treatments"] = [instance.treatment_ids[t] for t in solved]
    gaps = [e["gap"] for e in subproblems if e.get("gap") is not None]
    return Solution(
        status=SolveStatus.PARTIALLY_INFEASIBLE,
        solver="cbc" if any(r.solver == "cbc" for r in results) else params.solver,
        objective=_objective_value(instance, params, flow, keep, solved)["objective"],
        mip_gap=float(max(gaps)) if gaps else 0.0,
        build_seconds=float(sum(r.build_seconds for r in results)),
        solve_seconds=float(sum(r.solve_seconds for r in results)), keep=keep, flow=flow,
        diagnosis=diagnosis, subproblems=subproblems, decomposition=explanation,
        warnings=solution_warnings)


def assemble(instance: Instance, params: SolveParams, comps: list[list[int]], explanation: str,
             results: list[_ComponentResult], partial: bool = True) -> Solution:
    """One Solution from the sub-problem results (in component order): flows, keeps, status,
    gap and bound, diagnosis. Shared by :func:`solve` and :mod:`optimiser.whatif`.
    ``partial=False``: never a partial plan (an early-stopping solve is ``infeasible``
    however far its other sub-problems got)."""
    n_areas, n_sites, n_treat = instance.shape
    solution_warnings: list[str] = []
    for r in results:
        for note in r.warnings:
            if note not in solution_warnings:
                solution_warnings.append(note)
    solver_used = "cbc" if any(r.solver == "cbc" for r in results) else params.solver
    build_s = float(sum(r.build_seconds for r in results))
    solve_s = float(sum(r.solve_seconds for r in results))

    flow = np.zeros((n_areas, n_sites, n_treat))
    keep = np.zeros((n_sites, n_treat), dtype=bool)
    subproblems: list[dict[str, Any]] = []
    status = SolveStatus.OPTIMAL
    infeasible_treatments: list[str] = []
    unsolved_treatments: list[str] = []
    no_solution = False
    norms = instance.norm_matrix()
    forced_keep = force_masks(instance, params)[0]
    for r in results:
        entry: dict[str, Any] = {
            "treatments": [instance.treatment_ids[t] for t in r.treatments],
            "n_vars": r.arrays.n_cols,
            "n_rows": r.arrays.n_rows,
            "n_binaries": int(np.count_nonzero(r.arrays.integrality)),
            "status": str(r.status),
            "gap": None if r.gap is None else float(r.gap),
            "build_seconds": round(r.build_seconds, 4),
            "solve_seconds": round(r.solve_seconds, 4),
            "solver": r.solver,
        }
        entry.update(r.info)
        if r.status in (NOT_OPTIMISED, NOT_DECIDED):  # only when another one is infeasible
            status = SolveStatus.INFEASIBLE
            subproblems.append(entry)
            continue
        if r.x is None and r.status == TIME_LIMIT_NO_SOLUTION:
            # the time limit ran out before any solution: undecided, not infeasible
            unsolved_treatments += [instance.treatment_ids[t] for t in r.treatments]
            no_solution = True
            subproblems.append(entry)
            continue
        if r.x is None:
            infeasible_treatments += [instance.treatment_ids[t] for t in r.treatments]
            status = SolveStatus.INFEASIBLE
            subproblems.append(entry)
            continue
        if status != SolveStatus.INFEASIBLE and r.status == SolveStatus.FEASIBLE:
            status = SolveStatus.FEASIBLE
        a = r.arrays
        values = a.flows(r.x)
        values = np.where(values < SOLVER_FLOW_NOISE, 0.0, values)
        # the bound is d: clip solver tolerance overshoot so flows never exceed demand
        values = np.minimum(values, instance.demand[a.x_area, a.x_treat])
        np.add.at(flow, (a.x_area, a.x_site, a.x_treat), values)
        yv = np.asarray(r.x)[a.y_slice()] > KEEP_THRESHOLD
        keep[a.y_site[yv], a.y_treat[yv]] = True
        for t in r.treatments:
            _move_tolerance_flows(flow, keep, norms, t, forced_keep)
            if np.all(np.isnan(norms[:, t])):
                keep[:, t] = flow[:, :, t].sum(axis=0) > PROVIDES_MIN
            else:
                # sites where t has no norm (tiered norm without that role) are open if used
                nn = np.isnan(norms[:, t])
                keep[nn, t] = flow[:, nn, t].sum(axis=0) > PROVIDES_MIN
        vals = _objective_value(instance, params, flow, keep, r.treatments)
        entry["objective"] = round(vals["objective"], 6)
        entry["travel"] = round(vals["travel"], 6)
        subproblems.append(entry)

    if status == SolveStatus.INFEASIBLE:
        diagnosis = _infeasible_diagnosis(instance, params, infeasible_treatments,
                                          unsolved_treatments if no_solution else None)
        partial_plan = _partial_solution(instance, params, results, flow, keep, diagnosis,
                                         list(subproblems), explanation, solution_warnings,
                                         no_solution or not partial)
        subproblems = [_not_optimised(entry, r.model_size)
                       for entry, r in zip(subproblems, results, strict=True)]
        return partial_plan or Solution(
            status=SolveStatus.INFEASIBLE, solver=solver_used, objective=None, mip_gap=None,
            build_seconds=build_s, solve_seconds=solve_s, keep=None, flow=None,
            diagnosis=diagnosis, subproblems=subproblems, decomposition=explanation,
            warnings=solution_warnings)

    if no_solution:
        diagnosis = {
            "reason": (
                f"No feasible solution was found within the time limit of {params.time_limit} s "
                f"for {', '.join(unsolved_treatments)}. This does not mean the scenario is "
                "infeasible: it was not decided. Solve again with a longer --time-limit (or "
                "none)."),
            "time_limit_reached": True,
            "unsolved_treatments": unsolved_treatments,
        }
        return Solution(status=TIME_LIMIT_NO_SOLUTION, solver=solver_used, objective=None,
                        mip_gap=None, build_seconds=build_s, solve_seconds=solve_s, keep=None,
                        flow=None, diagnosis=diagnosis, subproblems=subproblems,
                        decomposition=explanation, warnings=solution_warnings)

    if params.small_region_rule == "one_provider":
        for t in shortfall_treatments(instance):
            total = float(instance.demand[:, t].sum())
            kept = [instance.site_label(int(s)) for s in np.nonzero(keep[:, t])[0]]
            solution_warnings.append(
                f"{instance.treatment_label(t)}: the whole demand of {instance.region_id} "
                f"({total:.1f} patients/yr) is below the norm "
                f"({np.nanmin(norms[:, t]):g}), so no hospital can reach it; concentrated at "
                f"{', '.join(kept) or 'no site'} with the norm NOT met — this needs an "
                "arrangement across regions (see a joint solve with --region all)"
            )
    objective = _objective_value(instance, params, flow, keep, list(range(n_treat)))["objective"]
    gaps = [e["gap"] for e in subproblems if e["gap"] is not None]
    mip_gap = float(max(gaps)) if gaps else 0.0
    bounds = [e.get("bound") for e in subproblems]
    # sub-problems are independent, so their bounds add up (solver objective units: for
    # ``moved`` that includes the tie-break, for ``providers`` it is an upper bound)
    mip_bound = (float(sum(b for b in bounds if b is not None))
                 if bounds and all(b is not None for b in bounds) else None)
    return Solution(status=status, solver=solver_used, objective=objective, mip_gap=mip_gap,
                    mip_bound=mip_bound,
                    build_seconds=build_s, solve_seconds=solve_s, keep=keep, flow=flow,
                    diagnosis=None, subproblems=subproblems, decomposition=explanation,
                    warnings=solution_warnings)
