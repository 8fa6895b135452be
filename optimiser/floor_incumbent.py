"""A better first plan for a floor model with too many keep sets to enumerate (issue 23, goal
3: the ``providers`` phase 2 of national kidney_local, least travel with at least 38 of 47
hospitals kept: 1.4e9 keep sets, beyond optimiser/floor_keepsets.py).

The start the national run brings (the regional optima) is a poor plan there (238,522
against ~51,000), and under load the exact method that follows (optimiser/norm_keepsets.py's
branch and bound) may reach its time limit before it finds a better one. This module searches
outward from the start's keep set by swaps (one kept site closes, one closed site is kept):

* each swap's keep set S' gets the Lagrangian bound of its transportation LP with the norms
  relaxed at the current keep set's multipliers μ (floor_keepsets.py: Σ_i d_i min_{j in S'}
  (c_ij - μ_j) + Σ_{j in S'} (μ_j R_j + f_j) <= the cheapest plan keeping S'; exact for any
  μ >= 0), so a swap that cannot beat the incumbent is never solved;
* the others are solved in the order of that bound by the transportation LP of
  floor_keepsets.py (warm, column-generated), the first better plan is taken, until no swap
  pays or the budget (a share of the time limit, ``MAX_LPS`` LPs) is spent.

Only a plan: the result is handed on as the next method's start, checked against every row of
the model (``known_plan``); proving it optimal is that method's. Returns ``None`` when the
model is not such a floor model, there is no known start, or no better plan was found.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from .floor_keepsets import (
    MAX_KEEP_SETS,
    VOLUME_TOL,
    _support,
    _TransportLP,
    _Undecided,
    keep_sets_under_floor,
)
from .formulation import MipArrays
from .lagrangian import LagrangianModel, known_plan, read_model

#: the row family of the floor on the number kept (optimiser/strategies.py)
FLOOR_ROWS = "providers_floor"
#: at most this share of the sub-problem's time limit goes to the swaps
BUDGET_SHARE = 0.25
#: at most this many transportation LPs (~0.1-0.3 s CPU each on national kidney_local)
MAX_LPS = 200


def improved_start(arrays: MipArrays, time_limit: float | None, start: np.ndarray | None,
                   interrupt: threading.Event | None = None, min_keep: int = 21
                   ) -> np.ndarray | None:
    """A plan (column values) better than ``start`` found by the swaps above, or None."""
    started = time.perf_counter()
    if start is None:
        return None
    floor_rows = arrays.row_families.get(FLOOR_ROWS)
    if floor_rows is None or floor_rows[1] <= floor_rows[0]:
        return None  # not a providers phase 2
    sets = keep_sets_under_floor(arrays, min_keep)
    if sets is None or sets <= MAX_KEEP_SETS:
        return None  # floor_keepsets.py enumerates it
    model = read_model(arrays, binding_norms=True, min_keep=min_keep, paying_keeps=True)
    if model is None or not np.all(np.isfinite(model.required)):
        return None
    first = known_plan(model, arrays, start)
    if first is None:
        return None
    try:
        import highspy
    except ImportError:
        return None
    deadline = None if time_limit is None else started + BUDGET_SHARE * time_limit
    lp = _TransportLP(model, highspy, _support(model, start))
    try:
        best = _swaps(model, arrays, lp, first, deadline, interrupt)
    except _Undecided:
        return None
    return best[1] if best[0] < first[0] else None


def _swaps(m: LagrangianModel, arrays: MipArrays, lp: _TransportLP,
           first: tuple[float, np.ndarray], deadline: float | None,
           interrupt: threading.Event | None) -> tuple[float, np.ndarray]:
    best = first
    keep = first[1][m.y_column] > 0.5
    total = float(m.demand.sum())
    lps = 0

    def spent() -> bool:
        return (lps >= MAX_LPS or (interrupt is not None and interrupt.is_set())
                or (deadline is not None and time.perf_counter() > deadline))

    solved = lp.solve(arrays, keep)
    lps += 1
    if solved is None:
        return best
    if solved[0] is not None and solved[0][0] < best[0]:
        best = solved[0]
    mu = solved[1]
    while not spent():
        outs, ins, bound = swap_bounds(m, keep, mu)
        order = np.argsort(bound, axis=None, kind="stable")
        improved = False
        for flat in order.tolist():
            o, i = np.unravel_index(flat, bound.shape)
            if bound[o, i] >= best[0] or spent():
                break
            trial = keep.copy()
            trial[outs[o]], trial[ins[i]] = False, True
            if m.required[trial].sum() > total * (1 + VOLUME_TOL):
                continue
            solved = lp.solve(arrays, trial)
            lps += 1
            if solved is None or solved[0] is None:
                continue
            if solved[0][0] < best[0] - 1e-9 * max(abs(best[0]), 1.0):
                best, keep, mu, improved = solved[0], trial, solved[1], True
                break
        if not improved:
            break
    return best


def swap_bounds(m: LagrangianModel, keep: np.ndarray, mu: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sites that may close, sites that may be kept, bound[o, i]): the Lagrangian bound at
    ``mu`` of keeping ``keep`` less ``outs[o]`` plus ``ins[i]`` (a lower bound on that keep
    set's cheapest plan; inf where an area would have no site)."""
    outs = np.nonzero(keep & ~m.must)[0]
    ins = np.nonzero(~keep)[0]
    reduced = np.column_stack([m.cost - mu[None, :], m.open_cost])
    kept = np.append(keep, True)  # the sites without a keep decision stay
    own = np.where(kept[None, :], reduced, np.inf)
    order = np.argsort(own, axis=1, kind="stable")[:, :2]
    rows = np.arange(own.shape[0])
    near, second = own[rows, order[:, 0]], own[rows, order[:, 1]]
    weight = mu * m.required + m.key_cost
    kept_weight = float(weight[keep].sum())
    bound = np.full((outs.shape[0], ins.shape[0]), np.inf)
    entering = reduced[:, ins]
    with np.errstate(invalid="ignore"):
        for pos, o in enumerate(outs.tolist()):
            without = np.where(order[:, 0] == o, second, near)
            best = np.minimum(without[:, None], entering)
            value = m.demand @ np.where(np.isfinite(best), best, 0.0)
            value = np.where(np.isfinite(best).all(axis=0), value, np.inf)
            bound[pos] = value + kept_weight - weight[o] + weight[ins]
    return outs, ins, bound


__all__ = ["BUDGET_SHARE", "MAX_LPS", "improved_start", "swap_bounds"]
