"""Exact optimisation of one-treatment models with more keep decisions than the keep-set
search enumerates (issue 23: the p-median class, national treatments with 72 hospitals).

The model is the one :mod:`optimiser.keepset_search` covers (demand rows, volume norms, forced
keeps and closures, caps on the number of kept sites; no capacity, coupling, single sourcing
or stay columns), with any number k of keep decisions:

    min  Σ_j f_j y_j + Σ_ij c_ij x_ij   s.t.  Σ_j x_ij = d_i,  Σ_i x_ij >= R_j y_j,
         0 <= x_ij <= d_i y_j,  lo <= Σ_j y_j <= P,  y binary.

1. **Lagrangian bound.** Relaxing the demand rows with multipliers λ_i splits the model per
   site: a kept site takes every patient whose reduced cost c_ij - λ_i is negative and, if
   that is less than R_j, fills up with the cheapest others (fractionally), for a value g_j;
   the keep set is then the cheapest lo..P sites by g. For *any* λ that is a valid lower bound
   (weak duality), computed exactly in O(areas · k); subgradient steps raise it towards the
   LP bound of the strong (per-pair) formulation.
2. **Incumbent.** Greedy addition, then interchange (Teitz and Bart 1968: swap a kept site for
   another, add, drop) on "every area to its cheapest kept site", re-started from the
   Lagrangian keep set; its exact value is the transportation LP of the set when the greedy
   assignment misses a norm.
3. **Reduced-cost fixing.** For every site the bound with that site forced open (or closed)
   is a closed-form change of the keep-set selection; a site whose forced bound is above the
   incumbent is fixed the other way, for every later bound too. When every site is fixed the
   incumbent is proven optimal; otherwise HiGHS' branch and bound solves the model with those
   fixings and the incumbent as its start (its optimum or the incumbent, whichever is lower).

Exact: bounds are weak-duality bounds evaluated in floating point and a site is fixed only
when its bound exceeds the incumbent by a relative 1e-9, so every plan better than the
incumbent keeps its sites free. Returns ``None`` for a model it does not cover (the caller
solves it as before).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from dataclasses import replace

import numpy as np

from .backends import BackendResult, solve_highs
from .formulation import MipArrays
from .lagrangian import (
    Lagrangian,
    LagrangianModel,
    NearestAssignment,
    exact_plan,
    known_plan,
    proven_tight,
    read_model,
    relative_gap,
)
from .status import SolveStatus

#: ``BackendResult.message`` and the sub-problem's ``algorithm`` of a result of this module
LAGRANGIAN_KEEPSETS = "lagrangian_keep_sets"
#: subgradient iterations at most (each O(areas · k) array work)
MAX_ITERATIONS = 1000
#: halve the step after this many iterations without a better bound
STALL_ITERATIONS = 25
#: the interchange search restarts from the Lagrangian keep set every this many iterations
#: (and whenever that set alone beats the incumbent)
SEARCH_EVERY = 10
#: keep sets left after the fixings are enumerated when sets x areas is at most this
ENUMERATE_WORK = 20_000_000
#: ... and when at most this many of them need a transportation LP (the norms bind)
ENUMERATE_PLANS = 50
#: array entries per enumerated block (memory: 8 bytes each)
ENUMERATE_CHUNK = 4_000_000


def solve_by_lagrangian(arrays: MipArrays, mip_gap: float, time_limit: float | None = None,
                        interrupt: threading.Event | None = None, threads: int | None = None,
                        options: dict[str, bool] | None = None, start: np.ndarray | None = None,
                        presolve: bool | None = None, binding_norms: bool = False
                        ) -> BackendResult | None:
    """The method above on ``arrays``; ``None`` when it does not cover the model (or finds
    no plan to start from, or is stopped: the caller's MIP solver decides then). ``start``:
    a known plan (column values; the national run's regional optima), used as the first
    incumbent when it is better than the interchange's; ``presolve``: HiGHS' for the last
    stage.

    Only the p-median class (``arrays.linking == "per_pair"``: every norm at most one area's
    patients, algorithms.linking_for) unless ``binding_norms``: with norms that bind, the
    nearest-site plans of the interchange miss them, the exact plan of a keep set is a
    transportation LP (17 s for national kidney_systemic's 70 sites) and the Lagrangian bound
    is the per-pair LP bound (0.75 % below the optimum there); measured on the national
    joint model under ``travel`` it lost to HiGHS alone (docs/decisions/speed.md), so those
    models go to HiGHS as before. The tests run that path on small models."""
    started = time.perf_counter()
    model = read_model(arrays, binding_norms)
    if model is None:
        return None
    lagr = Lagrangian(model)
    assign = NearestAssignment(model)
    keep = assign.local_search(np.zeros(model.k, dtype=bool), lagr.must, lagr.banned)
    plan = exact_plan(model, arrays, keep, lp=start is None)
    known = known_plan(model, arrays, start)
    if known is not None and (plan is None or known[0] < plan[0]):
        plan = known
        keep = start[model.y_column] > 0.5  # type: ignore[index]
    if plan is None:
        return None
    deadline = None if time_limit is None else started + time_limit
    found = _subgradient(model, arrays, lagr, assign, plan, keep, deadline, interrupt)
    if found is None:
        return None
    best_bound, best_value, best_x = found
    offset = arrays.offset
    if best_value - best_bound <= proven_tight(best_value):
        bound = min(best_bound, best_value) + offset
        objective = best_value + offset
        return BackendResult(SolveStatus.OPTIMAL, objective, best_x, relative_gap(objective, bound),
                             time.perf_counter() - started, "highs",
                             message=LAGRANGIAN_KEEPSETS, bound=bound)
    # every keep set the fixings leave (just one when every site is fixed)
    enumerated = _enumerate(model, arrays, lagr, best_value, best_x)
    if enumerated is not None:
        objective = enumerated[0] + offset
        return BackendResult(SolveStatus.OPTIMAL, objective, enumerated[1], 0.0,
                             time.perf_counter() - started, "highs",
                             message=LAGRANGIAN_KEEPSETS, bound=objective)
    left = None if deadline is None else max(deadline - time.perf_counter(), 1.0)
    res = _with_highs(model, arrays, lagr, best_value, best_x, mip_gap, left, threads,
                      options, interrupt, presolve)
    if res is not None:
        res.seconds = time.perf_counter() - started
    return res


def _subgradient(model: LagrangianModel, arrays: MipArrays, lagr: Lagrangian,
                 assign: NearestAssignment, plan: tuple[float, np.ndarray], keep: np.ndarray,
                 deadline: float | None,
                 interrupt: threading.Event | None
                 ) -> tuple[float, float, np.ndarray] | None:
    """Subgradient ascent of the Lagrangian bound with fixing and incumbent updates on the
    way: (best bound, incumbent value, its column values); None when stopped."""
    best_value, best_x = plan
    nearest_kept = np.where(keep[None, :], model.cost, np.inf).min(axis=1)
    lam = np.minimum(nearest_kept, model.open_cost)  # each area's cost in the incumbent
    lam = np.where(np.isfinite(lam), lam, 0.0)
    best_bound, theta, stall, tried = -np.inf, 1.0, 0, {keep.tobytes()}
    lam_best = lam.copy()
    for iteration in range(MAX_ITERATIONS):
        if (interrupt is not None and interrupt.is_set()) or (
                deadline is not None and time.perf_counter() > deadline):
            return None
        value, g, chosen, sub = lagr.evaluate(lam)
        if value > best_bound + 1e-12 * max(1.0, abs(value)):
            best_bound, stall, lam_best = value, 0, lam.copy()
        else:
            stall += 1
            if stall >= STALL_ITERATIONS:  # back to the best multipliers, smaller steps
                theta, stall, lam = theta / 2, 0, lam_best.copy()
                continue
        if not np.isfinite(value):
            break
        lagr.fix(value, g, chosen, best_value)
        key = chosen.tobytes()
        if key not in tried and (iteration % SEARCH_EVERY == 0
                                 or assign.total(chosen) < best_value):
            tried.add(key)
            better = exact_plan(model, arrays, assign.local_search(chosen.copy(), lagr.must,
                                                              lagr.banned), lp=False)
            if better is not None and better[0] < best_value:
                best_value, best_x = better
        norm = float(sub @ sub)
        if (np.all(lagr.must | lagr.banned) or best_value - best_bound <= proven_tight(best_value)
                or norm == 0.0 or theta < 1e-4):
            break
        lam = lam + theta * (best_value - value) / norm * sub
    return best_bound, best_value, best_x


def _with_highs(model: LagrangianModel, arrays: MipArrays, lagr: Lagrangian, best_value: float,
                best_x: np.ndarray, mip_gap: float, time_limit: float | None,
                threads: int | None, options: dict[str, bool] | None,
                interrupt: threading.Event | None, presolve: bool | None
                ) -> BackendResult | None:
    """HiGHS' branch and bound on the model with the fixings, the incumbent as its start;
    its optimum or the incumbent. ``presolve``: the caller's (solve.py: off; on, it would drop
    the closed sites' columns, but 1000 x 50, p = 15 took 5.5 s CPU in this stage with it
    and 3.5 s without)."""
    lower = arrays.col_lower.copy()
    upper = arrays.col_upper.copy()
    lower[model.y_column[lagr.must]] = 1.0
    upper[model.y_column[lagr.banned]] = 0.0
    fixed = replace(arrays, col_lower=lower, col_upper=upper)
    start = best_x if np.all(lower <= best_x) and np.all(best_x <= upper) else None
    res = solve_highs(fixed, time_limit, mip_gap, threads, presolve=presolve, start=start,
                      options=options, interrupt=interrupt)
    incumbent = best_value + arrays.offset
    if res.status == SolveStatus.INFEASIBLE:  # no plan better than the incumbent exists
        return BackendResult(SolveStatus.OPTIMAL, incumbent, best_x, 0.0, 0.0, "highs",
                             message=LAGRANGIAN_KEEPSETS, bound=incumbent)
    if res.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE) or res.x is None:
        return None
    objective, x = (res.objective, res.x) if (
        res.objective is not None and res.objective < incumbent) else (incumbent, best_x)
    bound = min(res.bound if res.bound is not None else -np.inf, objective)
    return BackendResult(res.status, objective, x, relative_gap(objective, bound), 0.0, "highs",
                         message=LAGRANGIAN_KEEPSETS, interrupted=res.interrupted, bound=bound)


def _enumerate(model: LagrangianModel, arrays: MipArrays, lagr: Lagrangian, best_value: float,
               best_x: np.ndarray) -> tuple[float, np.ndarray] | None:
    """Every keep set the fixings leave, when they are few (at most ENUMERATE_SETS):
    "every area to its cheapest site of the set" ignores the norms, so it is a lower bound of
    the set's plan (exact when the set's sites all reach their norms); a set whose bound is
    below the incumbent gets its exact plan. (best value, column values), or None when there
    are too many sets."""
    free = np.nonzero(~lagr.must & ~lagr.banned)[0]
    fixed = int(lagr.must.sum())
    sizes = [m - fixed for m in range(max(model.lo, fixed), min(model.hi, fixed + free.shape[0])
                                      + 1)]
    count = sum(math.comb(free.shape[0], m) for m in sizes)
    if count * model.demand.shape[0] > ENUMERATE_WORK:
        return None
    assign = NearestAssignment(model)
    base = np.minimum(assign.w[:, lagr.must].min(axis=1, initial=np.inf), assign.open_w)
    fixed_cost = float(model.key_cost[lagr.must].sum())
    w_free = assign.w[:, free]
    limit = best_value - proven_tight(best_value)
    lps = 0
    for m in sizes:
        combos = itertools.combinations(range(free.shape[0]), m)
        chunk_rows = max(1, ENUMERATE_CHUNK // max(1, model.demand.shape[0] * max(m, 1)))
        while True:
            block = np.array(list(itertools.islice(combos, chunk_rows)), dtype=np.int64)
            if block.shape[0] == 0:
                break
            if m == 0:
                values = np.array([base.sum()])
            else:
                nearest = w_free[:, block].min(axis=2)  # (areas, sets)
                values = np.minimum(nearest, base[:, None]).sum(axis=0)
            values = values + fixed_cost + model.key_cost[free[block]].sum(axis=1) if m else (
                values + fixed_cost)
            for row in np.nonzero(values < limit)[0]:
                keep = lagr.must.copy()
                if m:
                    keep[free[block[row]]] = True
                plan = exact_plan(model, arrays, keep, lp=False)
                if plan is None:  # the norms bind: the set's transportation LP
                    lps += 1
                    if lps > ENUMERATE_PLANS:
                        return None
                    plan = exact_plan(model, arrays, keep)
                if plan is not None and plan[0] < best_value:
                    best_value, best_x = plan
                    limit = best_value - proven_tight(best_value)
    return best_value, best_x


__all__ = ["LAGRANGIAN_KEEPSETS", "solve_by_lagrangian"]
