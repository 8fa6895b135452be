"""The Lagrangian relaxation of one-treatment models with many keep decisions, shared by the
exact methods beyond the keep-set search's 2^k enumeration: optimiser/large_keepsets.py (the
p-median class) and optimiser/norm_keepsets.py (binding norms).

:func:`read_model` reads the model back from the MIP arrays (areas x keep decisions: demand,
cost per patient, volume norms, forced keeps and closures, the cap on kept sites);
:class:`Lagrangian` evaluates the bound of relaxing the demand rows with multipliers λ for any
λ (weak duality, exact) and fixes sites by their forced bounds; :class:`NearestAssignment` is
the interchange's "every area to its cheapest kept site"; :func:`exact_plan` is the cheapest plan
of one keep set (nearest sites, or the transportation LP when a norm binds); :func:`known_plan`
checks a given plan against every row of the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .backends import solve_lp_highs
from .feasibility import MAX_KEEP_DECISIONS, read_keep_set_model
from .formulation import MipArrays
from .tolerances import GAP_DENOMINATOR_MIN, KEEP_SET_TOL, PROVEN_OPTIMAL_ABS

#: a site is fixed only when its forced bound exceeds the incumbent by this relative margin
FIX_MARGIN = 1e-9


@dataclass
class LagrangianModel:
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
class ModelParts:
    """What every reading of the model shares: the parsed rows and the keep decisions."""

    parsed: Any
    openable: np.ndarray  # y indices of the keep decisions (bits)
    bit_of_y: np.ndarray  # bit of each y, -2: closed
    key_cost: np.ndarray
    lo: int
    hi: int


def read_parts(arrays: MipArrays, binding_norms: bool, min_keep: int, stays: bool = False,
               paying_keeps: bool = False) -> ModelParts | None:
    """The parts of the model, or None outside it. ``paying_keeps``: keep decisions whose
    keeping pays (f_j < 0, the ``providers`` phase 1) are read too: the bound, the fixing and
    the node LPs of norm_keepsets.py hold for any f; large_keepsets.py's local search does
    not (it assumes an unused site closes)."""
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
    if np.any(key_cost < 0) and not paying_keeps:
        return None  # a kept site that pays: the local search assumes keeping costs
    k = openable.shape[0]
    bit_of_y = np.full(arrays.n_y, -2, dtype=np.int64)
    bit_of_y[openable] = np.arange(k)
    bounds = _cardinality(parsed.caps, bit_of_y, k)
    if bounds is None:
        return None
    return ModelParts(parsed, openable, bit_of_y, key_cost, *bounds)


def read_model(arrays: MipArrays, binding_norms: bool = False,
          min_keep: int = MAX_KEEP_DECISIONS + 1, paying_keeps: bool = False
               ) -> LagrangianModel | None:
    """The model, or None outside it; with fewer than ``min_keep`` keep decisions (outside
    the p-median class) None too: the keep-set search enumerates those. ``paying_keeps``:
    see :func:`read_parts`."""
    parts = read_parts(arrays, binding_norms, min_keep, paying_keeps=paying_keeps)
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
    return LagrangianModel(demand_all[keep], cost[keep], column[keep], open_cost[keep],
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


class Lagrangian:
    def __init__(self, model: LagrangianModel) -> None:
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


class NearestAssignment:
    """Every area to its cheapest site of a keep set (plus the sites without decisions)."""

    def __init__(self, model: LagrangianModel) -> None:
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


def exact_plan(model: LagrangianModel, arrays: MipArrays, keep: np.ndarray, lp: bool = True
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


def _transport(model: LagrangianModel, keep: np.ndarray, x: np.ndarray) -> bool | None:
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


def known_plan(model: LagrangianModel, arrays: MipArrays, start: np.ndarray | None
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


def proven_tight(value: float) -> float:
    """Bound and incumbent this close: proven optimal (beyond solver tolerances)."""
    return max(1e-9 * max(abs(value), GAP_DENOMINATOR_MIN), PROVEN_OPTIMAL_ABS)


def relative_gap(objective: float, bound: float) -> float:
    return max(objective - bound, 0.0) / max(abs(objective), GAP_DENOMINATOR_MIN)


def nearest_pairs(cost: np.ndarray, finite: np.ndarray, count: int) -> np.ndarray:
    """(areas, sites) mask of each area's ``count`` cheapest allowed pairs (ties by site order):
    the first columns of a pair LP that prices in the rest (norm_ and floor_keepsets.py)."""
    nearest = np.argsort(np.where(finite, cost, np.inf), axis=1, kind="stable")[:, :count]
    first = np.zeros(cost.shape, dtype=bool)
    first[np.arange(cost.shape[0])[:, None], nearest] = True
    return first & finite
