"""The ``planner`` objective's strategy: fewest unnecessary moves, then least travel.

Phase 1: fewest unnecessary moves U (formulation.unnecessary_moves). Phase 2: no more than
that, least travel. Two solves, as for providers: an exact single weight would have to exceed
the travel change any one moved patient can cause across keep sets, which is unbounded.

Shortcuts, all exact (tests compare them with the plain two phases):

* the greedy start (:func:`planner_greedy`): "close every hospital below its norm, displaced
  patients to the nearest one that keeps it" has no unnecessary move, so when it is a plan it
  proves phase 1 (U >= 0) without a solve;
* the keep-set search of both phases (optimiser/keepset_phase2.py) for the one-treatment
  models it covers;
* with U* = 0, phase 2 is the zero-moves model (:func:`zero_moves_model`), solved on its
  exact reduction (optimiser/pinning.py).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from .backends import BackendResult
from .feasibility import TreatmentKeepSets, keep_set_verdict, treatment_keep_sets
from .formulation import MipArrays, travel_vector
from .instance import Instance
from .keepset_phase2 import solve_phase2_by_keep_sets
from .keepset_search import KEEP_SET_SEARCH, solve_by_keep_sets
from .pinning import reduce_phase2
from .status import SolveStatus
from .strategies import ComponentContext, Lexicographic
from .subproblem import (
    ComponentResult,
    SolveReport,
    proven,
    run_backend,
    solve_cbc,
    start_vector,
    worse,
)
from .tolerances import GREEDY_TOL, MOVES_SLACK_ABS, MOVES_SLACK_REL, ZERO_MOVES

#: HiGHS presolve on the reduced zero-moves model: it is small, so presolve (bound-like
#: singleton rows, dominated columns) pays there, unlike on the full transportation-like models
PIN_PRESOLVE = True


class PlannerObjective(Lexicographic):
    """Both planner phases of one component (see the module docstring)."""

    name = "planner"

    # presolve on for the planner's phase 2: its ceiling row is as thin as the solver
    # tolerance, and without presolve HiGHS' branch and bound pruned feasible nodes there
    # (false optimum, or "infeasible" without a start; issue 23,
    # tests/data/planner_phase2_small.json)
    phase2_options = {"cbc_preprocess": False, "presolve": True}

    def optimise(self, ctx: ComponentContext) -> ComponentResult:
        t0 = time.perf_counter()
        report = SolveReport(lexicographic=True)
        verdict, computed = (keep_set_verdict(ctx.arrays) if ctx.algorithms.hall_test
                             else (None, {}))
        if verdict is False:
            # proven infeasible before the greedy plan and the zero-moves attempt (the other
            # objectives meet the keep-set test in run_backend)
            report.algorithm = KEEP_SET_SEARCH
            return ctx.result(SolveStatus.INFEASIBLE, None, ctx.arrays, None,
                              time.perf_counter() - t0, ctx.params.solver, report, [])
        assert ctx.arrays.moves_c is not None  # strategy_for: the model has a moves vector
        arrays = ctx.arrays.with_objective(ctx.arrays.moves_c, ctx.arrays.moves_offset)
        greedy = (planner_greedy(arrays, ctx.instance) if ctx.algorithms.planner_shortcuts
                  else None)
        if ctx.params.solver == "highs" and ctx.algorithms.keep_set_search:
            # the keep sets of the Hall test above (same rows: only the objective differs)
            sets = computed.get(arrays.treatments[0]) if len(arrays.treatments) == 1 else None
            searched = _KeepSetPlanner(ctx, arrays, sets).solve(greedy)
            if searched is not None:
                return searched
        attempt_s = 0.0
        if ctx.algorithms.pin_phase2:
            warm = greedy if greedy is not None else start_vector(arrays, ctx.instance,
                                                                  ctx.start)
            direct, attempt_s = _without_moves(ctx, arrays, warm)
            if direct is not None:
                return _direct_result(ctx, arrays, direct, greedy, report)
        if greedy is not None:
            res1 = BackendResult(SolveStatus.OPTIMAL, 0.0, greedy, 0.0, 0.0, ctx.params.solver,
                                 bound=0.0)
            notes: list[str] = []
            report.phase1 = "greedy"
        else:
            res1, notes = ctx.backend(arrays, start_vector(arrays, ctx.instance, ctx.start))
        return self.two_phases(ctx, arrays, res1, notes, report, attempt_s)

    def phase2_model(self, ctx: ComponentContext, arrays: MipArrays, res1: BackendResult,
                     report: SolveReport) -> MipArrays:
        assert arrays.moves_c is not None and res1.x is not None
        moves = arrays.unnecessary_moves_of(res1.x)
        report.unnecessary_moves_phase1 = round(max(moves, 0.0), 6)
        if ctx.algorithms.planner_shortcuts and moves <= ZERO_MOVES:
            return zero_moves_model(arrays)
        slack = MOVES_SLACK_ABS + MOVES_SLACK_REL * abs(moves)
        return arrays.with_extra_row(arrays.moves_c, -np.inf,
                                     moves - arrays.moves_offset + slack, "moves_ceiling")

    def phase1_bound(self, bound: float) -> float:
        return bound

    def rescue_phase2(self, ctx: ComponentContext, phase2: MipArrays, res2: BackendResult,
                      notes: list[str]) -> BackendResult:
        if res2.status == SolveStatus.INFEASIBLE and ctx.params.solver == "highs":
            # phase 1's plan meets every row of phase 2: "infeasible" is the solver's
            # numerical failure, never an answer; CBC decides instead
            notes.append("HiGHS called the planner's phase 2 infeasible although phase "
                         "1's plan is feasible; solved with CBC instead")
            return solve_cbc(phase2, ctx.params, ctx.threads, preprocess=False)
        return res2


def _direct_result(ctx: ComponentContext, arrays: MipArrays,
                   direct: tuple[BackendResult, MipArrays, list[str]],
                   greedy: np.ndarray | None, report: SolveReport) -> ComponentResult:
    """Both phases from the zero-moves model's solve (U* = 0 proven by greedy or by it)."""
    res2, phase2, notes = direct
    report.phase1 = "greedy" if greedy is not None else "zero_moves"
    proof = greedy if greedy is not None else res2.x
    assert arrays.moves_c is not None and proof is not None  # planner, solved
    moves = arrays.unnecessary_moves_of(proof)
    report.unnecessary_moves_phase1 = round(max(moves, 0.0), 6)
    report.set_bound(0.0)
    return ctx.result(res2.status, res2.x, phase2, res2.mip_gap or 0.0, res2.seconds,
                      res2.solver, report, notes, res2.interrupted, res2.bound)


def planner_greedy(arrays: MipArrays, instance: Instance) -> np.ndarray | None:
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
    return values if _is_plan(arrays, values) else None


def _is_plan(arrays: MipArrays, values: np.ndarray) -> bool:
    """``values`` meets every row and column bound (GREEDY_TOL) and moves nobody needlessly."""
    activity = arrays.A @ values
    tol = GREEDY_TOL * np.maximum(1.0, np.abs(activity))
    if np.any(activity < arrays.row_lower - tol) or np.any(activity > arrays.row_upper + tol):
        return False
    if np.any(values < arrays.col_lower - GREEDY_TOL) or np.any(
            values > arrays.col_upper + GREEDY_TOL):
        return False
    assert arrays.moves_c is not None
    return arrays.unnecessary_moves_of(values) <= ZERO_MOVES


def zero_moves_model(arrays: MipArrays) -> MipArrays:
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


def _without_moves(ctx: ComponentContext, arrays: MipArrays, start: np.ndarray | None
                   ) -> tuple[tuple[BackendResult, MipArrays, list[str]] | None, float]:
    """Both planner phases in one solve when a plan without unnecessary moves exists.

    ``arrays`` has phase 1's objective. Phase 2 under U* = 0 is the zero-moves model; if it
    is feasible, U* = 0 (U >= 0 in every plan) and its least-travel optimum is phase 2's, so
    it is solved directly, on its exact reduction (optimiser/pinning.py). None when the
    reduction does not apply or that model has no plan (then U* > 0, or the component is
    infeasible) or was stopped: the plain two phases decide. Also the solver seconds spent."""
    phase2 = zero_moves_model(arrays)
    phase2 = phase2.with_objective(travel_vector(phase2, ctx.instance))
    reduced = reduce_phase2(phase2, ctx.instance.demand)
    if reduced is None:
        return None, 0.0
    res, notes = run_backend(reduced.model, ctx.params, ctx.threads,
                             start=reduced.restrict(start), stop=ctx.stop, cbc_preprocess=False,
                             presolve=PIN_PRESOLVE, algorithms=ctx.algorithms)
    if (res.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE) or res.x is None
            or res.interrupted):
        return None, res.seconds
    res.x = reduced.expand(res.x)
    return (res, phase2, notes), res.seconds


class _KeepSetPlanner:
    """Both planner phases by the keep-set searches (optimiser/keepset_phase2.py). ``arrays``
    has phase 1's objective. :meth:`solve` gives None when they do not cover the model (the
    MIP path then solves it)."""

    def __init__(self, ctx: ComponentContext, arrays: MipArrays,
                 sets: TreatmentKeepSets | None = None) -> None:
        assert arrays.moves_c is not None
        self.ctx, self.arrays, self.moves_c = ctx, arrays, arrays.moves_c
        self.travel = travel_vector(arrays, ctx.instance)
        self.zero_rhs = -arrays.moves_offset + MOVES_SLACK_ABS
        self.report = SolveReport(lexicographic=True)
        self.sets: TreatmentKeepSets | None = sets

    def _phase2(self, rhs: float, zero: bool) -> BackendResult | None:
        params = self.ctx.params
        return solve_phase2_by_keep_sets(self.arrays, self.travel, rhs, zero, params.mip_gap,
                                         params.time_limit, self.ctx.stop, self.sets)

    def _undecided(self, res: BackendResult, seconds: float) -> ComponentResult:
        """Stopped before a plan: feasibility is undecided."""
        return self.ctx.result(res.status, None, self.arrays, None, seconds,
                               self.ctx.params.solver, self.report, [], res.interrupted)

    def solve(self, greedy: np.ndarray | None) -> ComponentResult | None:
        """``greedy`` proves U* = 0 when it is a plan. Without it, phase 2 under U* = 0 is
        searched first (as _without_moves does): a plan there proves U* = 0 (U >= 0 always);
        only when there is none does phase 1 run, then phase 2 under its optimum."""
        if len(self.ctx.treatments) != 1:
            return None
        if self.sets is None:
            self.sets = treatment_keep_sets(self.arrays, self.arrays.treatments[0])
        if self.sets is None:
            return None
        phase1 = self._phase1(greedy)
        if phase1 is None or isinstance(phase1, ComponentResult):
            return phase1
        res1, res2 = phase1
        assert res1.x is not None
        moves = self.arrays.unnecessary_moves_of(res1.x)
        zero = moves <= ZERO_MOVES
        slack = MOVES_SLACK_ABS + MOVES_SLACK_REL * abs(moves)
        rhs = self.zero_rhs if zero else moves - self.arrays.moves_offset + slack
        if res2 is None:
            res2 = self._phase2(rhs, zero)
            if res2 is None or not (res2.status.solved or res2.interrupted):
                return None
            if not res2.status.solved:  # interrupted before a plan: feasibility is undecided
                res2.interrupted = True
                return self._undecided(res2, res2.seconds + res1.seconds)
            res2.seconds += res1.seconds
        return self._result(res1, proven(res2), moves, zero, rhs)

    def _phase1(self, greedy: np.ndarray | None
                ) -> tuple[BackendResult, BackendResult | None] | ComponentResult | None:
        """(phase 1's result, phase 2's when the zero-moves search gave both), a finished
        (undecided) result, or None (not covered: the MIP path decides)."""
        spent = 0.0
        direct = None
        if greedy is None:
            direct = self._phase2(self.zero_rhs, True)
            if direct is None:
                return None
            spent = direct.seconds
            if direct.status.solved:
                assert direct.x is not None
                greedy = direct.x
                self.report.phase1 = "zero_moves"
            elif direct.status == SolveStatus.TIME_LIMIT_NO_SOLUTION:
                return self._undecided(direct, direct.seconds)
            elif direct.status != SolveStatus.INFEASIBLE:
                return None
        else:
            self.report.phase1 = "greedy"
        if greedy is not None:
            res1 = BackendResult(SolveStatus.OPTIMAL, 0.0, greedy, 0.0, spent,
                                 self.ctx.params.solver, bound=0.0, message=KEEP_SET_SEARCH)
            return res1, direct
        params = self.ctx.params
        found = solve_by_keep_sets(self.arrays, params.mip_gap, params.time_limit,
                                   self.ctx.stop, self.sets)
        if found is None or found.status == SolveStatus.INFEASIBLE:
            return None  # infeasible: the MIP path diagnoses it as before
        res1 = proven(found)
        res1.seconds += spent
        if not res1.status.solved or res1.interrupted:
            return None
        return res1, None

    def _result(self, res1: BackendResult, res2: BackendResult, moves: float, zero: bool,
                rhs: float) -> ComponentResult:
        phase2 = (zero_moves_model(self.arrays) if zero else
                  self.arrays.with_extra_row(self.moves_c, -np.inf, rhs, "moves_ceiling"))
        phase2 = phase2.with_objective(self.travel)
        self.report.unnecessary_moves_phase1 = round(max(moves, 0.0), 6)
        self.report.algorithm = KEEP_SET_SEARCH
        self.report.set_bound(0.0 if zero else res1.bound)
        gap = max(res1.mip_gap or 0.0, res2.mip_gap or 0.0)
        return self.ctx.result(worse(res1.status, res2.status), res2.x, phase2, gap,
                               res2.seconds, res2.solver, self.report, [], res2.interrupted,
                               res2.bound)
