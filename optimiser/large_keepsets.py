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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from .backends import BackendResult, solve_highs, solve_lp_highs
from .feasibility import MAX_KEEP_DECISIONS, read_keep_set_model
from .formulation import MipArrays
from .status import SolveStatus
from .tolerances import GAP_DENOMINATOR_MIN, KEEP_SET_TOL, PROVEN_OPTIMAL_ABS

#: ``BackendResult.message`` and the sub-problem's ``algorithm`` of a result of this module
LAGRANGIAN_KEEPSETS = "lagrangian_keep_sets"
#: subgradient iterations at most (each O(areas · k) array work)
MAX_ITERATIONS = 1000
#: halve the step after this many iterations without a better bound
STALL_ITERATIONS = 25
#: a site is fixed only when its forced bound exceeds the incumbent by this relative margin
FIX_MARGIN = 1e-9
#: the interchange search restarts from the Lagrangian keep set every this many iterations
#: (and whenever that set alone beats the incumbent)
SEARCH_EVERY = 10
#: keep sets left after the fixings are enumerated when sets x areas is at most this
ENUMERATE_WORK = 20_000_000
#: ... and when at most this many of them need a transportation LP (the norms bind)
ENUMERATE_PLANS = 50
#: array entries per enumerated block (memory: 8 bytes each)
ENUMERATE_CHUNK = 4_000_000


@dataclass
class _Model:
    """One treatment read back from the arrays: areas × keep decisions (bits)."""

    demand: np.ndarray  # (n,) patients per area (areas with patients only)
    cost: np.ndarray  # (n, k) cost per patient to each bit's site; inf: may not go there
    column: np.ndarray  # (n, k) x column, -1 none
    open_cost: np.ndarray  # (n,) cheapest site without keep decision; inf: none
    open_column: np.ndarray  # (n,)
    required: np.ndarray  # (k,) R_j
    key_cost: np.ndarray  # (k,) f_j (objective of the y column)
    y_column: np.ndarray  # (k,) y column of each bit
    must: np.ndarray  # (k,) bool: forced open
    lo: int
    hi: int

    @property
    def k(self) -> int:
        return int(self.required.shape[0])


@dataclass
class _Parts:
    """What every reading of the model shares: the parsed rows and the keep decisions."""

    parsed: Any
    openable: np.ndarray  # y indices of the keep decisions (bits)
    bit_of_y: np.ndarray  # bit of each y, -2: closed
    key_cost: np.ndarray
    lo: int
    hi: int


def _read_parts(arrays: MipArrays, binding_norms: bool, min_keep: int, stays: bool = False
                ) -> _Parts | None:
    if arrays.linking != "per_pair" and not binding_norms:
        return None  # outside the p-median class: see solve_by_lagrangian
    if (len(arrays.treatments) != 1 or arrays.n_x == 0 or arrays.conflicts
            or (arrays.n_cols != arrays.n_x + arrays.n_y and not stays)
            or not np.all(np.isfinite(arrays.c))):
        return None
    y_hi = arrays.col_upper[arrays.y_slice()]
    openable = np.nonzero(y_hi == 1.0)[0]
    if openable.shape[0] < min_keep and arrays.linking != "per_pair":
        return None  # the keep-set search enumerates these
    parsed = read_keep_set_model(arrays)
    if (parsed is None or parsed.demand_row is None or parsed.demand is None
            or parsed.x_y is None or parsed.required is None):
        return None
    key_cost = arrays.c[arrays.y_start + openable]
    if np.any(key_cost < 0):
        return None  # a kept site that pays: the local search assumes keeping costs
    k = openable.shape[0]
    bit_of_y = np.full(arrays.n_y, -2, dtype=np.int64)
    bit_of_y[openable] = np.arange(k)
    bounds = _cardinality(parsed.caps, bit_of_y, k)
    if bounds is None:
        return None
    return _Parts(parsed, openable, bit_of_y, key_cost, *bounds)


def _read(arrays: MipArrays, binding_norms: bool = False,
          min_keep: int = MAX_KEEP_DECISIONS + 1) -> _Model | None:
    """The model, or None outside it; with fewer than ``min_keep`` keep decisions (outside
    the p-median class) None too: the keep-set search enumerates those."""
    parts = _read_parts(arrays, binding_norms, min_keep)
    if parts is None:
        return None
    parsed, openable, k = parts.parsed, parts.openable, parts.openable.shape[0]
    rows = np.unique(parsed.demand_row)
    demand_all = parsed.demand[rows]
    area = np.searchsorted(rows, parsed.demand_row)
    x_bit = np.where(parsed.x_y >= 0, parts.bit_of_y[np.maximum(parsed.x_y, 0)], -1)
    n = rows.shape[0]
    cost = np.full((n, k), np.inf)
    column = np.full((n, k), -1, dtype=np.int64)
    xs = np.arange(arrays.n_x)
    usable = x_bit >= 0
    cost[area[usable], x_bit[usable]] = arrays.c[arrays.x_start + xs[usable]]
    column[area[usable], x_bit[usable]] = arrays.x_start + xs[usable]
    open_cost, open_column = _cheapest_open(arrays, area, x_bit, n)
    keep = demand_all > 0
    if np.any(keep & ~np.isfinite(open_cost) & ~np.isfinite(cost).any(axis=1)):
        return None  # an area with patients and no site: the feasibility test says so
    must = arrays.col_lower[arrays.y_slice()][openable] == 1.0
    return _Model(demand_all[keep], cost[keep], column[keep], open_cost[keep],
                  open_column[keep], parsed.required[openable], parts.key_cost,
                  arrays.y_start + openable, must, parts.lo, parts.hi)


def _cardinality(caps: list[tuple[np.ndarray, float, float]], bit_of_y: np.ndarray, k: int
                 ) -> tuple[int, int] | None:
    """(at least, at most) kept of the k keep decisions; None for a cap on some of them only
    (outside the model)."""
    lo, hi = 0, k
    for ys, low, most in caps:
        bits = bit_of_y[ys]
        if not np.any(bits >= 0):
            continue
        if np.setdiff1d(np.arange(k), bits[bits >= 0]).shape[0]:
            return None
        if np.isfinite(low):
            lo = max(lo, int(np.ceil(low - KEEP_SET_TOL)))
        if np.isfinite(most):
            hi = min(hi, int(np.floor(most + KEEP_SET_TOL)))
    return lo, hi


def _cheapest_open(arrays: MipArrays, area: np.ndarray, x_bit: np.ndarray, n: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per area, the cheapest flow to a site without a keep decision (cost, x column)."""
    open_cost = np.full(n, np.inf)
    open_column = np.full(n, -1, dtype=np.int64)
    for e in np.nonzero(x_bit == -1)[0]:
        a, value = area[e], arrays.c[arrays.x_start + e]
        if value < open_cost[a]:
            open_cost[a], open_column[a] = value, arrays.x_start + e
    return open_cost, open_column


def _select(g: np.ndarray, must: np.ndarray, banned: np.ndarray, lo: int, hi: int
            ) -> tuple[float, np.ndarray]:
    """The cheapest keep set by site values g: the forced ones, then the cheapest others,
    every negative one up to ``hi`` and at least ``lo`` in all. (inf, ...) when none fits."""
    chosen = must.copy()
    free = np.nonzero(~must & ~banned)[0]
    order = free[np.argsort(g[free], kind="stable")]
    need_lo, room = max(lo - int(must.sum()), 0), hi - int(must.sum())
    if room < 0 or need_lo > order.shape[0] or not np.all(np.isfinite(g[must])):
        return np.inf, chosen
    take = max(need_lo, min(int(np.count_nonzero(g[order] < 0)), room))
    chosen[order[:take]] = True
    value = float(g[chosen].sum())
    return (value if np.isfinite(value) else np.inf), chosen


class _Lagrangian:
    def __init__(self, model: _Model) -> None:
        self.m = model
        self.banned = np.zeros(model.k, dtype=bool)
        self.must = model.must.copy()

    def evaluate(self, lam: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """(L(λ), site values g, chosen keep set, subgradient)."""
        m = self.m
        d = m.demand
        reduced = m.cost - lam[:, None]
        negative = reduced < 0
        g = m.key_cost + d @ np.where(negative, reduced, 0.0)
        take = np.where(negative, d[:, None], 0.0)
        volume = take.sum(axis=0)
        for j in np.nonzero(volume < m.required * (1 - KEEP_SET_TOL))[0].tolist():
            g[j] += self._fill(j, reduced[:, j], negative[:, j], m.required[j] - volume[j],
                               take)
        open_reduced = m.open_cost - lam
        open_take = np.where(open_reduced < 0, d, 0.0)
        base = float(lam @ d) + float(open_take @ np.where(open_reduced < 0, open_reduced, 0))
        value, chosen = _select(g, self.must, self.banned, m.lo, m.hi)
        sub = d - take[:, chosen].sum(axis=1) - open_take
        return base + value, g, chosen, sub

    def _fill(self, j: int, reduced: np.ndarray, negative: np.ndarray, missing: float,
              take: np.ndarray) -> float:
        """Cheapest fractional top-up of site j's volume by ``missing`` patients (inf if
        its reachable patients fall short); records the flows in ``take``."""
        d = self.m.demand
        others = np.nonzero(~negative & np.isfinite(reduced))[0]
        order = others[np.argsort(reduced[others], kind="stable")]
        filled = np.cumsum(d[order])
        if filled.shape[0] == 0 or filled[-1] < missing * (1 - KEEP_SET_TOL):
            return np.inf
        at = int(np.searchsorted(filled, missing))
        at = min(at, order.shape[0] - 1)
        full = order[:at]
        part = missing - (filled[at - 1] if at else 0.0)
        take[full, j] = d[full]
        take[order[at], j] = part
        return float(reduced[full] @ d[full] + reduced[order[at]] * part)

    def fix(self, value: float, g: np.ndarray, chosen: np.ndarray, incumbent: float) -> None:
        """Reduced-cost fixing: a site whose forced-open (-closed) bound exceeds the
        incumbent is closed (kept) from now on."""
        m = self.m
        limit = incumbent + FIX_MARGIN * max(abs(incumbent), 1.0)
        free = ~self.must & ~self.banned
        sel = chosen & free
        count, room = int(chosen.sum()), m.hi
        lo = m.lo
        sel_idx = np.nonzero(sel)[0]
        out_idx = np.nonzero(free & ~chosen)[0]
        g_last = float(g[sel_idx].max()) if sel_idx.shape[0] else np.inf
        g_next = float(g[out_idx].min()) if out_idx.shape[0] else np.inf
        # forced open: add it (room left) or swap it for the worst chosen free site
        add = 0.0 if count < room else np.inf
        swap = -g_last if sel_idx.shape[0] else np.inf
        opened = value + g[out_idx] + min(add, swap)
        self.banned[out_idx[opened > limit]] = True
        # forced closed: drop it (lo allows) or replace it by the best unchosen free site
        drop = 0.0 if count - 1 >= lo else np.inf
        closed = value - g[sel_idx] + min(drop, g_next)
        self.must[sel_idx[closed > limit]] = True


class _Assign:
    """Every area to its cheapest site of a keep set (plus the sites without decisions)."""

    def __init__(self, model: _Model) -> None:
        self.m = model
        d = model.demand
        finite = np.isfinite(model.cost)
        weighted = np.where(finite, model.cost, 0.0) * d[:, None]
        top = np.maximum(weighted.max(axis=1, initial=0.0),
                         np.where(np.isfinite(model.open_cost), model.open_cost * d, 0.0))
        # an area without a kept site it may use: dearer than any whole plan
        self.penalty = 10.0 * (float(top.sum()) + float(model.key_cost.sum())) + 1.0
        self.w = np.where(finite, weighted, self.penalty)
        self.open_w = np.where(np.isfinite(model.open_cost), model.open_cost * d, self.penalty)

    def total(self, keep: np.ndarray) -> float:
        best = np.minimum(self.w[:, keep].min(axis=1, initial=np.inf), self.open_w)
        return float(best.sum() + self.m.key_cost[keep].sum())

    def local_search(self, keep: np.ndarray, must: np.ndarray, banned: np.ndarray
                     ) -> np.ndarray:
        """Greedy additions from ``keep``, then best interchanges until none pays."""
        keep = self._greedy((keep | must) & ~banned, banned)
        while True:
            out, into = self._best_move(keep, must, banned)
            if out < 0 and into < 0:
                return keep
            if out >= 0:
                keep[out] = False
            if into >= 0:
                keep[into] = True

    def _greedy(self, keep: np.ndarray, banned: np.ndarray) -> np.ndarray:
        """Add the best site while fewer than lo are kept, or while one pays (up to hi)."""
        m = self.m
        while keep.sum() < m.hi:
            cur = np.minimum(self.w[:, keep].min(axis=1, initial=np.inf), self.open_w)
            cand = np.nonzero(~keep & ~banned)[0]
            if cand.shape[0] == 0:
                break
            gain = np.maximum(cur[:, None] - self.w[:, cand], 0).sum(axis=0) - m.key_cost[cand]
            best = int(np.argmax(gain))
            if keep.sum() >= m.lo and gain[best] <= 0:
                break
            keep[cand[best]] = True
        return keep

    def _best_move(self, keep: np.ndarray, must: np.ndarray, banned: np.ndarray
                   ) -> tuple[int, int]:
        """The best improving (site out, site in) of swaps, additions and drops (-1: none)."""
        m = self.m
        members = np.nonzero(keep)[0]
        cols = np.column_stack([self.w[:, members], self.open_w])
        order = np.argsort(cols, axis=1, kind="stable")[:, :2]
        first = np.take_along_axis(cols, order[:, :1], axis=1)[:, 0]
        second = (np.take_along_axis(cols, order[:, 1:2], axis=1)[:, 0] if cols.shape[1] > 1
                  else np.full(cols.shape[0], np.inf))
        now = float(first.sum())
        cand = np.nonzero(~keep & ~banned)[0]
        best_delta, move = -1e-9 * max(abs(now), 1.0), (-1, -1)
        if cand.shape[0] and keep.sum() < m.hi:
            add = np.minimum(first[:, None], self.w[:, cand]).sum(axis=0) + m.key_cost[cand] - now
            i = int(np.argmin(add))
            if add[i] < best_delta:
                best_delta, move = float(add[i]), (-1, int(cand[i]))
        for pos, o in enumerate(members):
            if must[o]:
                continue
            without = np.where(order[:, 0] == pos, second, first)
            if keep.sum() - 1 >= m.lo:
                drop = float(without.sum() - now - m.key_cost[o])
                if drop < best_delta:
                    best_delta, move = drop, (int(o), -1)
            if cand.shape[0]:
                swap = (np.minimum(without[:, None], self.w[:, cand]).sum(axis=0)
                        + m.key_cost[cand] - m.key_cost[o] - now)
                i = int(np.argmin(swap))
                if swap[i] < best_delta:
                    best_delta, move = float(swap[i]), (int(o), int(cand[i]))
        return move


def _plan(model: _Model, arrays: MipArrays, keep: np.ndarray, lp: bool = True
          ) -> tuple[float, np.ndarray] | None:
    """The exact cheapest plan with keep set ``keep`` (value without offset, column values):
    the nearest-site assignment when it meets every norm, else the transportation LP (None
    without ``lp``: on a national model that LP takes seconds)."""
    d = model.demand
    cost = np.where(keep[None, :], model.cost, np.inf)
    options = np.column_stack([cost, model.open_cost])
    pick = np.argmin(options, axis=1)
    if not np.all(np.isfinite(options[np.arange(d.shape[0]), pick])):
        return None
    to_bit = pick < model.k
    volume = np.bincount(pick[to_bit], weights=d[to_bit], minlength=model.k)
    used = keep & ((volume > 0) | model.must)
    if used.sum() >= model.lo:
        keep = used  # an unused site closes (keeping costs >= 0): that set's plan is as good
    x = np.zeros(arrays.n_cols)
    if np.all(volume[keep] >= model.required[keep]):
        rows = np.arange(d.shape[0])
        np.add.at(x, np.where(to_bit, model.column[rows, np.minimum(pick, model.k - 1)],
                              model.open_column), d)
    else:
        if not lp or _transport(model, keep, x) is None:
            return None
    x[model.y_column[keep]] = 1.0
    return float(arrays.c @ x), x


def _transport(model: _Model, keep: np.ndarray, x: np.ndarray) -> bool | None:
    members = np.nonzero(keep)[0]
    sub = model.cost[:, members]
    area, pos = np.nonzero(np.isfinite(sub))
    open_area = np.nonzero(np.isfinite(model.open_cost))[0]
    n, m = model.demand.shape[0], members.shape[0]
    n_cols = area.shape[0] + open_area.shape[0]
    rows = np.concatenate([area, open_area, n + pos])
    cols = np.concatenate([np.arange(n_cols), np.arange(area.shape[0])])
    matrix = sp.csc_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(n + m, n_cols))
    cost = np.concatenate([sub[area, pos], model.open_cost[open_area]])
    lower = np.concatenate([model.demand, model.required[members]])
    upper = np.concatenate([model.demand, np.full(m, np.inf)])
    solved = solve_lp_highs(cost, matrix, lower, upper)
    if solved is None:
        return None
    flows = solved[1]
    np.add.at(x, model.column[area, members[pos]], flows[:area.shape[0]])
    np.add.at(x, model.open_column[open_area], flows[area.shape[0]:])
    return True


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
    model = _read(arrays, binding_norms)
    if model is None:
        return None
    lagr = _Lagrangian(model)
    assign = _Assign(model)
    keep = assign.local_search(np.zeros(model.k, dtype=bool), lagr.must, lagr.banned)
    plan = _plan(model, arrays, keep, lp=start is None)
    known = _known_plan(model, arrays, start)
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
    if best_value - best_bound <= _tight(best_value):
        bound = min(best_bound, best_value) + offset
        objective = best_value + offset
        return BackendResult(SolveStatus.OPTIMAL, objective, best_x, _gap(objective, bound),
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


def _subgradient(model: _Model, arrays: MipArrays, lagr: _Lagrangian, assign: _Assign,
                 plan: tuple[float, np.ndarray], keep: np.ndarray, deadline: float | None,
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
            better = _plan(model, arrays, assign.local_search(chosen.copy(), lagr.must,
                                                              lagr.banned), lp=False)
            if better is not None and better[0] < best_value:
                best_value, best_x = better
        norm = float(sub @ sub)
        if (np.all(lagr.must | lagr.banned) or best_value - best_bound <= _tight(best_value)
                or norm == 0.0 or theta < 1e-4):
            break
        lam = lam + theta * (best_value - value) / norm * sub
    return best_bound, best_value, best_x


def _with_highs(model: _Model, arrays: MipArrays, lagr: _Lagrangian, best_value: float,
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
    return BackendResult(res.status, objective, x, _gap(objective, bound), 0.0, "highs",
                         message=LAGRANGIAN_KEEPSETS, interrupted=res.interrupted, bound=bound)


def _known_plan(model: _Model, arrays: MipArrays, start: np.ndarray | None
                ) -> tuple[float, np.ndarray] | None:
    """(value, columns) of a given plan when it meets every row of the model, else None."""
    if start is None or start.shape[0] != arrays.n_cols:
        return None
    x = np.asarray(start, dtype=float)
    tol = 1e-6
    if np.any(x < arrays.col_lower - tol) or np.any(x > arrays.col_upper + tol):
        return None
    if np.any(np.abs(x[model.y_column] - np.round(x[model.y_column])) > tol):
        return None
    activity = arrays.A @ x
    scale = np.maximum(1.0, np.abs(activity))
    if (np.any(activity < arrays.row_lower - tol * scale)
            or np.any(activity > arrays.row_upper + tol * scale)):
        return None
    return float(arrays.c @ x), x


def _enumerate(model: _Model, arrays: MipArrays, lagr: _Lagrangian, best_value: float,
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
    assign = _Assign(model)
    base = np.minimum(assign.w[:, lagr.must].min(axis=1, initial=np.inf), assign.open_w)
    fixed_cost = float(model.key_cost[lagr.must].sum())
    w_free = assign.w[:, free]
    limit = best_value - _tight(best_value)
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
                plan = _plan(model, arrays, keep, lp=False)
                if plan is None:  # the norms bind: the set's transportation LP
                    lps += 1
                    if lps > ENUMERATE_PLANS:
                        return None
                    plan = _plan(model, arrays, keep)
                if plan is not None and plan[0] < best_value:
                    best_value, best_x = plan
                    limit = best_value - _tight(best_value)
    return best_value, best_x


def _tight(value: float) -> float:
    """Bound and incumbent this close: proven optimal (beyond solver tolerances)."""
    return max(1e-9 * max(abs(value), GAP_DENOMINATOR_MIN), PROVEN_OPTIMAL_ABS)


def _gap(objective: float, bound: float) -> float:
    return max(objective - bound, 0.0) / max(abs(objective), GAP_DENOMINATOR_MIN)


__all__ = ["LAGRANGIAN_KEEPSETS", "solve_by_lagrangian"]
