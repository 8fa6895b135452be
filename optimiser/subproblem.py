"""One sub-problem's solve: its typed result and the back-end call every strategy shares.

A :class:`ComponentResult` is what solving one component (a group of coupled treatments, see
optimiser/decomposition.py) gives: status, column values of the model that was solved last,
timings, and a :class:`SolveReport` of how it was solved (the typed part of the sub-problem's
entry in ``Solution.subproblems``). :func:`run_backend` solves one model: the exact keep-set
search where it covers the model, else HiGHS, else CBC.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from herschik.errors import SolverError

from .algorithms import DEFAULT_ALGORITHMS, Algorithms
from .backends import INTERRUPT, BackendResult, solve_highs, solve_pulp
from .feasibility import keep_set_feasible
from .floor_incumbent import improved_start
from .floor_keepsets import FLOOR_KEEPSETS, solve_by_floor_enumeration
from .formulation import MipArrays
from .instance import Instance
from .keepset_search import KEEP_SET_SEARCH, solve_by_keep_sets
from .large_keepsets import LAGRANGIAN_KEEPSETS, solve_by_lagrangian
from .norm_keepsets import NORM_KEEPSETS, solve_by_norm_branching
from .params import SolveParams
from .solution import Solution
from .status import SolveStatus
from .tolerances import PROVEN_OPTIMAL_ABS, PROVEN_OPTIMAL_GAP

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


@dataclass
class SolveReport:
    """How a sub-problem was solved, as its entry in ``Solution.subproblems`` reports it.

    ``phase1``: how the planner's phase 1 was proven (``greedy``, ``zero_moves``) or None (a
    solve); ``unnecessary_moves_phase1`` / ``providers_phase1``: phase 1's optimum of a
    lexicographic objective; ``algorithm``: ``keep_sets`` when the exact search solved every
    phase; ``bound``: the bound of the reported objective (``has_bound``: the entry has one,
    possibly null). ``lexicographic``: a two-phase strategy made it (its entry names the
    algorithm before the bound, a single solve's after it)."""

    phase1: str | None = None
    unnecessary_moves_phase1: float | None = None
    providers_phase1: int | None = None
    algorithm: str | None = None
    bound: float | None = None
    has_bound: bool = False
    lexicographic: bool = False

    def set_bound(self, bound: float | None) -> None:
        self.bound, self.has_bound = bound, True

    def entries(self) -> dict[str, Any]:
        """The fields the sub-problem entry shows, in its order."""
        out: dict[str, Any] = {}
        if self.phase1 is not None:
            out["phase1"] = self.phase1
        if self.unnecessary_moves_phase1 is not None:
            out["unnecessary_moves_phase1"] = self.unnecessary_moves_phase1
        if self.providers_phase1 is not None:
            out["providers_phase1"] = self.providers_phase1
        algorithm = {} if self.algorithm is None else {"algorithm": self.algorithm}
        bound = {"bound": self.bound} if self.has_bound else {}
        return {**out, **algorithm, **bound} if self.lexicographic else {**out, **bound,
                                                                          **algorithm}


@dataclass
class ComponentResult:
    """The result of one component: ``x`` holds the values of ``arrays``' columns (the model
    solved last: phase 2 of a lexicographic objective), None without a plan."""

    treatments: list[int]
    status: SolveStatus
    x: np.ndarray | None
    arrays: MipArrays
    gap: float | None
    build_seconds: float
    solve_seconds: float
    solver: str
    report: SolveReport = field(default_factory=SolveReport)
    warnings: list[str] = field(default_factory=list)
    #: (columns, rows, binaries) of the component's full model, whichever model was solved
    model_size: tuple[int, int, int] | None = None
    #: an interrupt (another sub-problem proved infeasible) stopped the solve
    interrupted: bool = False
    #: the bound of phase 2 of a lexicographic objective (travel)
    bound_phase2: float | None = None


def hall_test(arrays: MipArrays, algorithms: Algorithms) -> bool | None:
    """The exact keep-set feasibility verdict when the algorithms allow it, else None."""
    return keep_set_feasible(arrays) if algorithms.hall_test else None


#: the least time a method tried after the limit ran out still gets (never more than the
#: limit itself): some back-ends read a limit of 0 as "no limit"
MIN_TIME_LEFT = 0.01


@dataclass(frozen=True)
class TimeBudget:
    """One sub-problem's time limit, shared by the methods :func:`run_backend` tries in turn.

    Each method gets what the ones before it left (at least :data:`MIN_TIME_LEFT`, or the
    whole limit when that is smaller), so a model no exact method closes still ends near its
    limit; before, each got the whole limit again and a sub-problem could take three or four
    times ``--time-limit``."""

    time_limit: float | None
    started: float

    @classmethod
    def starting_now(cls, time_limit: float | None) -> TimeBudget:
        return cls(time_limit, time.perf_counter())

    def left(self) -> float | None:
        """Seconds left (None: no limit)."""
        if self.time_limit is None:
            return None
        spent = time.perf_counter() - self.started
        return max(self.time_limit - spent, min(MIN_TIME_LEFT, self.time_limit))


def run_backend(arrays: MipArrays, params: SolveParams, threads: int | None,
                start: np.ndarray | None = None, stop: threading.Event | None = None,
                cbc_preprocess: bool = True, presolve: bool = HIGHS_PRESOLVE,
                algorithms: Algorithms = DEFAULT_ALGORITHMS
                ) -> tuple[BackendResult, list[str]]:
    """Solve with the chosen back-end; fall back from HiGHS to CBC when highspy is unusable.

    HiGHS stops early when ``stop`` is set (CBC runs to the end)."""
    notes: list[str] = []
    budget = TimeBudget.starting_now(params.time_limit)
    if params.solver == "highs" and algorithms.keep_set_search:
        # decides infeasible models too; where it does not cover a model, neither does the test
        searched = solve_by_keep_sets(arrays, params.mip_gap, budget.left(),
                                      stop if stop is not None else INTERRUPT)
        if searched is not None:
            return proven(searched), notes
    elif hall_test(arrays, algorithms) is False:
        return BackendResult(SolveStatus.INFEASIBLE, solver=params.solver,
                             message=KEEP_SET_SEARCH), notes
    exact, start = _by_large_methods(arrays, params, threads, start, stop, presolve,
                                     algorithms, budget)
    if exact is not None:
        return exact, notes
    highs_undecided: str | None = None  # HiGHS ran on the model but reached no verdict
    if params.solver == "highs":
        result, highs_undecided = _try_highs(arrays, params, threads, start, stop, presolve,
                                             notes, budget)
        if result is not None:
            return proven(result), notes
    return _by_cbc(arrays, params, threads, cbc_preprocess, highs_undecided, budget), notes


def _by_large_methods(arrays: MipArrays, params: SolveParams, threads: int | None,
                      start: np.ndarray | None, stop: threading.Event | None, presolve: bool,
                      algorithms: Algorithms, budget: TimeBudget
                      ) -> tuple[BackendResult | None, np.ndarray | None]:
    """The exact methods for many keep decisions (HiGHS only): a proven result, or None and
    HiGHS' start (improved by the swap search where it found a better plan)."""
    if params.solver != "highs":
        return None, start
    if algorithms.lagrangian_keep_sets:
        # many keep decisions in the p-median class (optimiser/large_keepsets.py)
        large = solve_by_lagrangian(arrays, params.mip_gap, budget.left(), stop, threads,
                                    HIGHS_MIP_OPTIONS, start, presolve)
        if large is not None:
            return proven(large), start
    floored = _by_floor(arrays, params, stop, start, algorithms, budget)
    if floored is not None:
        return floored, start
    if algorithms.floor_keep_sets:
        # too many keep sets to enumerate: a better start by swaps (floor_incumbent.py)
        better = improved_start(arrays, budget.left(), start, stop)
        start = start if better is None else better
    if algorithms.norm_keep_sets:
        # many keep decisions and binding norms (optimiser/norm_keepsets.py)
        branched = solve_by_norm_branching(arrays, params.mip_gap, budget.left(),
                                           stop if stop is not None else INTERRUPT, start)
        if branched is not None:
            return proven(branched), start
    return None, start


def _by_cbc(arrays: MipArrays, params: SolveParams, threads: int | None, preprocess: bool,
            highs_undecided: str | None, budget: TimeBudget) -> BackendResult:
    """CBC, the last back-end; ``highs_undecided``: why HiGHS reached no verdict, if it ran."""
    result = solve_pulp(arrays, "cbc", budget.left(), params.mip_gap, threads,
                        preprocess=preprocess)
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
    return proven(result)


def _by_floor(arrays: MipArrays, params: SolveParams, stop: threading.Event | None,
              start: np.ndarray | None, algorithms: Algorithms,
              budget: TimeBudget) -> BackendResult | None:
    """Many keep decisions, few of them closable by a floor on the number kept (the
    providers phase 2): optimiser/floor_keepsets.py's result, or None where it does not
    cover the model."""
    if not algorithms.floor_keep_sets:
        return None
    floored = solve_by_floor_enumeration(arrays, params.mip_gap, budget.left(),
                                         stop if stop is not None else INTERRUPT, start)
    return None if floored is None else proven(floored)


def _try_highs(arrays: MipArrays, params: SolveParams, threads: int | None,
               start: np.ndarray | None, stop: threading.Event | None, presolve: bool,
               notes: list[str], budget: TimeBudget
               ) -> tuple[BackendResult | None, str | None]:
    """HiGHS' result, or None and why it reached no verdict (None: highspy is missing)."""
    try:
        result = solve_highs(arrays, budget.left(), params.mip_gap, threads, start=start,
                             presolve=presolve, options=HIGHS_MIP_OPTIONS, interrupt=stop)
    except ImportError as exc:  # highspy missing
        notes.append(f"highspy unavailable ({exc}); solved with CBC instead")
        return None, None
    except Exception as exc:  # any HiGHS failure: try CBC rather than crash
        notes.append(f"HiGHS failed ({exc!r}); solved with CBC instead")
        return None, repr(exc)
    if result.status != SolveStatus.ERROR:
        return result, None
    notes.append(f"HiGHS returned an error ({result.message}); solved with CBC instead")
    return None, f"status {result.message!r}"


def solve_cbc(arrays: MipArrays, params: SolveParams, threads: int | None,
              preprocess: bool = True) -> BackendResult:
    """CBC on ``arrays`` (the planner's rescue of a numerically failed HiGHS phase 2)."""
    return proven(solve_pulp(arrays, "cbc", params.time_limit, params.mip_gap, threads,
                             preprocess=preprocess))


def proven(result: BackendResult) -> BackendResult:
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


def worse(a: SolveStatus, b: SolveStatus) -> SolveStatus:
    """The less decided of two phase statuses."""
    order = {SolveStatus.OPTIMAL: 0, SolveStatus.FEASIBLE: 1,
             SolveStatus.TIME_LIMIT_NO_SOLUTION: 2, SolveStatus.INFEASIBLE: 3}
    return a if order.get(a, 3) >= order.get(b, 3) else b


def start_vector(arrays: MipArrays, instance: Instance, start: Solution | None
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


#: the names of our exact methods (``BackendResult.message``)
EXACT_METHODS = (KEEP_SET_SEARCH, LAGRANGIAN_KEEPSETS, NORM_KEEPSETS, FLOOR_KEEPSETS)


def note_algorithm(report: SolveReport, *results: BackendResult) -> None:
    """Name the exact keep-set algorithm in the sub-problem's entry when it solved every phase."""
    if results and all(r.message == KEEP_SET_SEARCH for r in results):
        report.algorithm = KEEP_SET_SEARCH
    elif results and all(r.message == LAGRANGIAN_KEEPSETS for r in results):
        report.algorithm = LAGRANGIAN_KEEPSETS
    elif results and all(r.message == NORM_KEEPSETS for r in results):
        report.algorithm = NORM_KEEPSETS
    elif results and all(r.message == FLOOR_KEEPSETS for r in results):
        report.algorithm = FLOOR_KEEPSETS
    elif (results and all(r.message in EXACT_METHODS for r in results)
          and any(r.message == FLOOR_KEEPSETS for r in results)):
        # each phase by one of our exact methods (providers: phase 1 by norm_keepsets.py,
        # phase 2 by floor_keepsets.py): named in phase order
        report.algorithm = "+".join(dict.fromkeys(str(r.message) for r in results))
