"""Solver back-ends: the same :class:`~optimiser.formulation.MipArrays` to HiGHS or to CBC.

* :func:`solve_highs` passes the CSC arrays straight to highspy (``Highs.passModel``): no
  modelling-layer overhead, so national models build in seconds.
* :func:`solve_pulp` builds a PuLP ``LpProblem`` from the *same* arrays (rows as
  ``LpAffineExpression`` from (variable, coefficient) pairs) and solves with ``PULP_CBC_CMD``.

Both return a :class:`BackendResult`; its status (a :class:`~optimiser.status.SolveStatus`)
is ``OPTIMAL``, ``FEASIBLE`` (a limit was hit with an incumbent), ``INFEASIBLE``,
``TIME_LIMIT_NO_SOLUTION`` (a limit was hit without one) or ``ERROR``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .formulation import MipArrays
from .status import SolveStatus
from .tolerances import (
    EMPTY_ROW_TOL,
    EQUALITY_TOL,
    GAP_DENOMINATOR_MIN,
    OBJECTIVE_AGREEMENT_TOL,
)

INF = 1e30  # HiGHS treats |bound| >= 1e20 as infinite

#: Set when the process is asked to stop (SIGINT/SIGTERM, see solve.solve_components): every
#: running HiGHS branch and bound ends at its next check, and solve_highs then raises
#: KeyboardInterrupt, so the caller unwinds with nothing half-written.
INTERRUPT = threading.Event()


@dataclass
class BackendResult:
    """Outcome of one solver call on a MipArrays."""

    status: SolveStatus
    objective: float | None = None
    x: np.ndarray | None = None
    mip_gap: float | None = None
    seconds: float = 0.0
    solver: str = "highs"
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    #: stopped by the ``interrupt`` event (not by a time limit)
    interrupted: bool = False
    #: the solver's proven bound on the objective (a lower bound: every model minimises);
    #: equal to ``objective`` for an LP, ``None`` when the solver reported none
    bound: float | None = None


def _trivial(arrays: MipArrays, solver: str) -> BackendResult | None:
    """Models with build conflicts, or without columns (solvers dislike those): no solve needed.

    Without columns the model is feasible iff every row range contains 0.
    """
    if arrays.conflicts:
        return BackendResult(SolveStatus.INFEASIBLE, solver=solver,
                             message="; ".join(arrays.conflicts))
    if arrays.n_cols:
        return None
    ok = bool(np.all(arrays.row_lower <= EMPTY_ROW_TOL)
              and np.all(arrays.row_upper >= -EMPTY_ROW_TOL))
    if ok:
        return BackendResult(SolveStatus.OPTIMAL, float(arrays.offset), np.zeros(0), 0.0, 0.0,
                             solver, bound=float(arrays.offset))
    return BackendResult(SolveStatus.INFEASIBLE, solver=solver,
                         message="empty model with unmet rows")


def _relative_gap(objective: float, bound: float) -> float:
    """Relative gap as HiGHS defines it: |obj - bound| / max(|obj|, tiny)."""
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return float("inf")
    return abs(objective - bound) / max(abs(objective), GAP_DENOMINATOR_MIN)


_BANNER_LOCK = threading.Lock()
_banner_silenced = False


def new_highs(highspy: Any) -> Any:
    """A ``highspy.Highs()`` without HiGHS' banner on stdout.

    HiGHS prints "Running HiGHS ..." from the constructor of the first Highs of a process,
    before any option (``output_flag``) can be set, so that first construction runs with the
    process' stdout (file descriptor 1) pointed at /dev/null; later ones print nothing.
    """
    global _banner_silenced
    with _BANNER_LOCK:
        if _banner_silenced:
            return highspy.Highs()
        _banner_silenced = True
        import ctypes
        import sys

        sys.stdout.flush()
        try:
            saved = os.dup(1)
        except OSError:  # no stdout at all: nothing to keep clean
            return highspy.Highs()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            try:
                return highspy.Highs()
            finally:
                with contextlib.suppress(OSError, AttributeError, TypeError):
                    ctypes.CDLL(None).fflush(None)  # the banner leaves C's buffer while hidden
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)


def silence_highs_banner() -> None:
    """Build (and drop) the process' first Highs now, so that its banner is muted while no
    other thread writes to stdout (the app calls this before its server threads start)."""
    try:
        import highspy
    except ImportError:
        return
    new_highs(highspy)


def _set_highs_options(h: Any, highspy: Any, time_limit: float | None, mip_gap: float,
                       threads: int | None, presolve: bool | None,
                       options: Mapping[str, bool | int | float | str] | None) -> None:
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    # deterministic runs: fixed seed (HiGHS' default, made explicit)
    h.setOptionValue("random_seed", 0)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    # One thread unless asked otherwise: HiGHS' scheduler is global to the process and a
    # Highs run with another thread count than the first one fails (model status "Not Set"),
    # which made is_feasible() undecided after a default-threads solve in the same process.
    h.setOptionValue("threads", int(threads or 1))
    if presolve is not None:
        h.setOptionValue("presolve", "on" if presolve else "off")
    for name, value in (options or {}).items():
        if h.setOptionValue(name, value) == highspy.HighsStatus.kError:
            raise ValueError(f"HiGHS rejected option {name}={value!r}")


def solve_highs(
    arrays: MipArrays,
    time_limit: float | None = None,
    mip_gap: float = 1e-4,
    threads: int | None = None,
    presolve: bool | None = None,
    start: np.ndarray | None = None,
    options: Mapping[str, bool | int | float | str] | None = None,
    interrupt: threading.Event | None = None,
) -> BackendResult:
    """Solve with HiGHS through highspy's array API. Output is silenced.

    ``interrupt``: when this event is set (by another thread) the branch and bound stops at
    its next check; the result is then ``feasible`` (incumbent, ``message`` "Interrupted by
    user") or ``TIME_LIMIT_NO_SOLUTION``.

    ``presolve=None`` keeps HiGHS' default (on); see subproblem.py for when it is switched off.
    ``options`` are further HiGHS options by name (subproblem.py passes ``HIGHS_MIP_OPTIONS``).
    """
    trivial = _trivial(arrays, "highs")
    if trivial is not None:
        return trivial
    import highspy  # imported lazily: solve() falls back to CBC when it is missing

    started = time.perf_counter()
    h = new_highs(highspy)
    _set_highs_options(h, highspy, time_limit, mip_gap, threads, presolve, options)
    integral = bool(np.any(arrays.integrality))
    status = _pass_model(h, arrays.c, float(arrays.offset), arrays.A, arrays.col_lower,
                         arrays.col_upper, arrays.row_lower, arrays.row_upper,
                         arrays.integrality)
    if status == highspy.HighsStatus.kError:
        return BackendResult(SolveStatus.ERROR, solver="highs", message="passModel failed",
                             seconds=time.perf_counter() - started)
    if start is not None:
        # a known feasible point (e.g. the regional solutions for a national solve): HiGHS
        # starts from it as its incumbent, so a time limit never returns something worse
        hint = highspy.HighsSolution()
        hint.col_value = [float(v) for v in start]
        h.setSolution(hint)
    if hasattr(h, "cbMipInterrupt"):  # highspy >= 1.8; else no stop
        def on_mip_check(event) -> None:  # runs on HiGHS' thread; must be cheap
            try:
                if INTERRUPT.is_set() or (interrupt is not None and interrupt.is_set()):
                    event.interrupt()
            except BaseException:  # noqa: B036
                # A signal handler's KeyboardInterrupt (callback on the main thread) must not
                # unwind through HiGHS' C++ frames (std::terminate, exit 134): stop it cleanly
                # and raise after run() returns.
                INTERRUPT.set()
                event.interrupt()

        h.cbMipInterrupt += on_mip_check
    run_highs(h)
    if INTERRUPT.is_set():
        # Free the solver here, on its own thread: kept alive by the traceback until the
        # interpreter shuts down, its destructor aborted the process (std::terminate).
        del h
        raise KeyboardInterrupt("interrupted")
    result = _highs_outcome(h, highspy, integral, time.perf_counter() - started)
    if (start is not None and result.status == SolveStatus.OPTIMAL
            and _objective_disagrees(arrays, result)):
        # HiGHS 1.16 with presolve on and a start: "optimal" with the start's point as the
        # solution but a lower objective and bound that no plan reaches (a false optimum of
        # the planner's phase 2, issue 23). Without the start it solves the model right.
        # The retry has what is left of the time limit: the caller's limit is on the whole.
        remaining = None if time_limit is None else float(time_limit) - result.seconds
        if remaining is not None and remaining <= 0.0:
            return _consistent(arrays, result)
        retry = solve_highs(arrays, remaining, mip_gap, threads, presolve, None, options,
                            interrupt)
        retry.seconds += result.seconds
        retry.warnings.append("HiGHS' solution from the start point did not have the "
                              "objective it reported; solved again without the start")
        return retry
    return _consistent(arrays, result)


def _objective_disagrees(arrays: MipArrays, result: BackendResult) -> bool:
    """HiGHS' reported objective is not that of its solution point."""
    if result.x is None or result.objective is None:
        return False
    own = float(arrays.c @ result.x + arrays.offset)
    return abs(own - result.objective) > OBJECTIVE_AGREEMENT_TOL * max(1.0, abs(own))


def _consistent(arrays: MipArrays, result: BackendResult) -> BackendResult:
    """``result`` with the objective of its own point where HiGHS reported another one, and
    the gap of that objective to the bound (subproblem.proven then decides what is proven)."""
    if not _objective_disagrees(arrays, result):
        return result
    assert result.x is not None  # _objective_disagrees: a point
    result.objective = float(arrays.c @ result.x + arrays.offset)
    result.mip_gap = (float("inf") if result.bound is None
                      else _relative_gap(result.objective, result.bound))
    result.warnings.append("HiGHS reported an objective that is not its solution's")
    return result


def run_highs(h: Any) -> None:
    """``h.run()``, off the main thread when called on it.

    Python runs signal handlers on the main thread only. A SIGINT/SIGTERM whose
    KeyboardInterrupt surfaced inside HiGHS (through its callback), or that let the interpreter
    exit while HiGHS ran, aborted the process ("terminate called without an active exception",
    exit 134). Here the main thread only waits: on a signal it sets INTERRUPT, waits until
    HiGHS has stopped at its next check, and re-raises, so the CLI exits 130 cleanly.
    """
    if threading.current_thread() is not threading.main_thread():
        h.run()
        return
    helper = threading.Thread(target=h.run, name="herschik-highs", daemon=True)
    helper.start()
    try:
        helper.join()
    except BaseException:
        INTERRUPT.set()
        while helper.is_alive():
            try:
                helper.join()
            except KeyboardInterrupt:  # a second signal: still wait for HiGHS to stop
                continue
        raise


def release_solver_threads() -> None:
    """Stop HiGHS' worker threads (blocking), before a process exits after an interrupt: a
    process that exits while they exist aborts in C++ (std::terminate, exit 134)."""
    import sys

    highspy = sys.modules.get("highspy")
    reset = getattr(getattr(highspy, "Highs", None), "resetGlobalScheduler", None)
    if reset is not None:
        reset(True)


def _pass_model(h: Any, cost: np.ndarray, offset: float, matrix: sp.spmatrix,
                col_lower: np.ndarray, col_upper: np.ndarray, row_lower: np.ndarray,
                row_upper: np.ndarray, integrality: np.ndarray) -> Any:
    """``h.passModel`` of min cost @ x + offset s.t. the bounds (|bound| >= INF: none)."""
    csc = sp.csc_matrix(matrix)
    csc.sort_indices()
    return h.passModel(
        int(csc.shape[1]),
        int(csc.shape[0]),
        int(csc.nnz),
        1,  # column-wise
        1,  # minimise
        offset,
        np.ascontiguousarray(cost, dtype=np.float64),
        np.clip(col_lower, -INF, INF).astype(np.float64),
        np.clip(col_upper, -INF, INF).astype(np.float64),
        np.clip(row_lower, -INF, INF).astype(np.float64),
        np.clip(row_upper, -INF, INF).astype(np.float64),
        csc.indptr.astype(np.int32),
        csc.indices.astype(np.int32),
        csc.data.astype(np.float64),
        np.asarray(integrality).astype(np.int32),
    )


def solve_lp_highs(cost: np.ndarray, matrix: sp.csc_matrix, row_lower: np.ndarray,
                   row_upper: np.ndarray, presolve: bool | None = None
                   ) -> tuple[float, np.ndarray, np.ndarray] | None:
    """min cost @ x s.t. row_lower <= matrix @ x <= row_upper, x >= 0, with HiGHS' simplex:
    (objective, x, row duals), or ``None`` unless solved to optimality (or highspy missing).
    ``presolve=None`` keeps HiGHS' default (on)."""
    try:
        import highspy
    except ImportError:
        return None
    h = new_highs(highspy)
    _set_highs_options(h, highspy, None, 0.0, 1, presolve, None)
    n_cols = int(matrix.shape[1])
    _pass_model(h, cost, 0.0, matrix, np.zeros(n_cols), np.full(n_cols, INF), row_lower,
                row_upper, np.zeros(n_cols))
    # On the calling thread: no Python callback runs inside an LP, so a signal's
    # KeyboardInterrupt is raised after run() returns (LPs take milliseconds), and a helper
    # thread per LP would cost the keep-set search, which solves many
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    solution = h.getSolution()
    return (float(h.getInfo().objective_function_value), np.array(solution.col_value),
            np.array(solution.row_dual))


def _highs_outcome(h: Any, highspy: Any, integral: bool, seconds: float) -> BackendResult:
    """The BackendResult of a finished HiGHS run: status, solution, gap and bound."""
    model_status = h.getModelStatus()
    info = h.getInfo()
    ms = highspy.HighsModelStatus
    has_primal = info.primal_solution_status == 2  # kSolutionStatusFeasible
    objective = float(info.objective_function_value)
    # the real gap and bound: "optimal" for HiGHS means "within mip_rel_gap", which a user's
    # --mip-gap may set far above 0 (subproblem.proven decides what it calls proven optimal)
    if integral:
        bound = float(info.mip_dual_bound)
        gap = float(info.mip_gap)
        if not math.isfinite(gap):
            gap = _relative_gap(objective, bound)
    else:
        bound, gap = objective, 0.0
    message = h.modelStatusToString(model_status)
    if model_status == ms.kOptimal:
        x = np.array(h.getSolution().col_value)
        return BackendResult(SolveStatus.OPTIMAL, objective, x, max(gap, 0.0), seconds, "highs",
                             bound=bound)
    if model_status in (ms.kInfeasible, ms.kUnboundedOrInfeasible):
        return BackendResult(SolveStatus.INFEASIBLE, seconds=seconds, solver="highs",
                             message=message)
    limit_hit = model_status in (
        ms.kTimeLimit, ms.kIterationLimit, ms.kSolutionLimit, ms.kInterrupt, ms.kObjectiveBound,
        ms.kObjectiveTarget,
    )
    if not limit_hit:
        return BackendResult(SolveStatus.ERROR, seconds=seconds, solver="highs", message=message)
    interrupted = model_status == ms.kInterrupt
    if has_primal:
        x = np.array(h.getSolution().col_value)
        return BackendResult(SolveStatus.FEASIBLE, objective, x, gap, seconds,
                             "highs", message=message, interrupted=interrupted,
                             bound=bound if math.isfinite(bound) else None)
    return BackendResult(SolveStatus.TIME_LIMIT_NO_SOLUTION, seconds=seconds, solver="highs",
                         message=message, interrupted=interrupted)


def solve_pulp(
    arrays: MipArrays,
    solver: str = "cbc",
    time_limit: float | None = None,
    mip_gap: float = 1e-4,
    threads: int | None = None,
    preprocess: bool = True,
) -> BackendResult:
    """Build a PuLP model from the arrays and solve it with CBC (``PULP_CBC_CMD``).

    ``preprocess=False`` turns CBC's integer preprocessing off: it wrongly declared the
    planner objective's phase 2 (a ceiling row on the unnecessary moves) infeasible on a tiny
    single-sourcing case (tests/optimiser/test_bruteforce.py, cbc planner seed 3)."""
    trivial = _trivial(arrays, solver)
    if trivial is not None:
        return trivial
    import pulp

    if solver != "cbc":
        raise ValueError(f"solve_pulp supports solver='cbc', got {solver!r}")
    start = time.perf_counter()
    prob, xs = _pulp_problem(arrays, pulp)
    fd, log_path = tempfile.mkstemp(suffix=".log", prefix="herschik_cbc_")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # PULP_CBC_CMD (the CBC bundled with PuLP) is deprecated for PuLP 4 but is the one
            # CBC that is installed everywhere PuLP is
            warnings.simplefilter("ignore", DeprecationWarning)
            cmd = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=mip_gap,
                                    threads=threads, logPath=log_path,
                                    options=[] if preprocess else ["preprocess off"])
            prob.solve(cmd)
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            log = handle.read()
    finally:
        try:
            os.remove(log_path)
        except OSError:
            pass
    return _cbc_outcome(prob, xs, arrays, log, time.perf_counter() - start, pulp)


def _pulp_problem(arrays: MipArrays, pulp: Any) -> tuple[Any, list[Any]]:
    """The PuLP problem of ``arrays`` and its variables (one per column, in column order)."""
    prob = pulp.LpProblem("herschik", pulp.LpMinimize)
    # PuLP >= 3.3 attaches variables to the problem (LpVariable(...) is deprecated there)
    new_var = getattr(prob, "add_variable", None) or pulp.LpVariable
    xs = []
    for j in range(arrays.n_cols):
        lo = arrays.col_lower[j]
        hi = arrays.col_upper[j]
        xs.append(new_var(
            f"v{j}",
            lowBound=None if not math.isfinite(lo) else float(lo),
            upBound=None if not math.isfinite(hi) else float(hi),
            cat=pulp.LpInteger if arrays.integrality[j] else pulp.LpContinuous,
        ))
    nz = np.nonzero(arrays.c)[0]
    prob.setObjective(pulp.LpAffineExpression(
        [(xs[j], float(arrays.c[j])) for j in nz], constant=float(arrays.offset)))
    csr = sp.csr_matrix(arrays.A)
    for i in range(arrays.n_rows):
        lo_i, hi_i = csr.indptr[i], csr.indptr[i + 1]
        expr = pulp.LpAffineExpression(
            [(xs[j], float(v)) for j, v in zip(csr.indices[lo_i:hi_i], csr.data[lo_i:hi_i],
                                               strict=True)])
        lo, hi = float(arrays.row_lower[i]), float(arrays.row_upper[i])
        if math.isfinite(lo) and math.isfinite(hi) and abs(hi - lo) <= EQUALITY_TOL:
            prob.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{i}", lo))
            continue
        if math.isfinite(lo):
            prob.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{i}_lo", lo))
        if math.isfinite(hi):
            prob.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{i}_hi", hi))
    return prob, xs


def _cbc_outcome(prob: Any, xs: list[Any], arrays: MipArrays, log: str, seconds: float,
                 pulp: Any) -> BackendResult:
    """The BackendResult of a finished CBC run, with the gap and bound read from its log."""
    status = pulp.LpStatus.get(prob.status, "Undefined")
    sol_status = prob.sol_status
    if status == "Infeasible" or (status == "Undefined" and "infeasible" in log.lower()):
        return BackendResult(SolveStatus.INFEASIBLE, seconds=seconds, solver="cbc",
                             message=status)
    if status == "Not Solved":
        return BackendResult(SolveStatus.TIME_LIMIT_NO_SOLUTION, seconds=seconds, solver="cbc",
                             message=status)
    if status != "Optimal":
        return BackendResult(SolveStatus.ERROR, seconds=seconds, solver="cbc", message=status)
    x = np.array([v.varValue if v.varValue is not None else 0.0 for v in xs], dtype=float)
    objective = float(arrays.c @ x + arrays.offset)
    stopped = re.search(r"Result - Stopped on (time|iteration|node|solution)", log)
    bound_match = re.search(r"Lower bound:\s*([-+0-9.eE]+)", log)
    gap_match = re.search(r"Gap:\s*([-+0-9.eE]+)", log)
    # CBC's bound is of the model without PuLP's constant; the objective here includes it
    bound = float(bound_match.group(1)) + float(arrays.offset) if bound_match else None
    if gap_match:
        mip = float(gap_match.group(1))
    elif bound is not None:
        mip = _relative_gap(objective, bound)
    else:
        mip = float("nan")
    if sol_status == pulp.LpSolutionIntegerFeasible or stopped:
        return BackendResult(SolveStatus.FEASIBLE, objective, x, mip, seconds, "cbc",
                             message="stopped on limit", bound=bound)
    # "Optimal" from CBC means within gapRel; without a reported gap it closed the tree
    if not math.isfinite(mip):
        mip, bound = 0.0, objective
    return BackendResult(SolveStatus.OPTIMAL, objective, x, mip, seconds, "cbc",
                         bound=objective if bound is None else bound)
