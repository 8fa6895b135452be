"""Exact search over the closed sites when a floor on the number kept leaves few to close
(issue 23, goal 3: the ``providers`` phase 2, least travel with at least phase 1's count kept:
national kidney_local 38 of 47, kidney_systemic 70 of 72).

The model is the one :mod:`optimiser.lagrangian` reads (demand rows, volume norms R_j, forced
keeps and closures, caps lo <= Σy <= hi on the keep decisions, travel limits as missing pairs,
sites without keep decision), any keep cost f_j. With a floor ``lo`` close to the number of
keep decisions ``k`` a plan closes at most ``k - lo`` of them, so the keep sets are the
complements of small closed sets B. norm_keepsets.py's per-pair LP bound is weak here (the LP
spreads y over every site); this module enumerates the closed sets instead, in a tree (a
node's children close one more site, later in a fixed order: every set once), best bound
first:

* **Bound of a keep set S** (weak duality of its transportation LP, relaxing the norms with
  any multipliers μ >= 0): L_S(μ) = Σ_i d_i min_{j in S or no decision} (c_ij - μ_j)
  + Σ_{j in S} (μ_j R_j + f_j) <= the cheapest plan keeping exactly S. Valid for every μ >= 0,
  evaluated exactly; μ comes from the duals of the transportation LPs solved so far (and, for
  a site outside that LP's set, the price at which it would draw its norm's volume).
* **Bound of a node** (closed B, may still close a set E of the sites later in the order):
  closing E raises each area's minimum at least by its second-nearest less its nearest when
  its nearest is in E (an area's minimum counts towards the site it is nearest to, once), so
  L_{S-E}(μ) >= L_S(μ) + Σ_{j in E} (δ_j - μ_j R_j - f_j); the least such sum over the sizes
  |E| the caps and Σ_{kept} R_j <= Σ_i d_i allow is the node's bound.
* **Exact value of a keep set**: its transportation LP (one HiGHS model, its pair columns
  priced in; a keep set changes only its sites' row bounds, so the dual simplex starts
  warm), checked against every row of the model (``known_plan``); its duals join the
  multipliers.

The search stops when no open node's bound is below the incumbent by more than the requested
gap. Returns ``None`` (the next method decides) for a model it does not cover (more than
``MAX_KEEP_SETS`` keep sets allowed by the floor), after ``MAX_NODES`` nodes, or when stopped
without a plan.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from .backends import BackendResult, new_highs
from .feasibility import MAX_KEEP_DECISIONS
from .formulation import MipArrays
from .lagrangian import (
    LagrangianModel,
    known_plan,
    nearest_pairs,
    proven_tight,
    read_model,
    relative_gap,
)
from .status import SolveStatus

#: ``BackendResult.message`` and the sub-problem's ``algorithm`` of a result of this module
FLOOR_KEEPSETS = "floor_keep_sets"
#: covered: the floor and the caps leave at most this many keep sets (closed sets of the
#: sizes they allow). National kidney_systemic (close 2 of 72): 2,629, closed in ~400 nodes;
#: kidney_local (close 9 of 47): 1.4e9, where the bound of a node that must still close
#: many sites is weak (50 % at the root after 36,000 nodes): left to norm_keepsets.py
MAX_KEEP_SETS = 20_000
#: the search hands the model back after this many nodes
MAX_NODES = 200_000
#: each area's this many nearest sites start in the transportation LP
FIRST_PAIRS = 4
#: a keep set whose norms add up to more than every patient by this (relative) has no plan
#: (tighter than KEEP_SET_TOL: national kidney_systemic's 71 x 50 exceeds its 3,549.998
#: patients by 6e-7; such sets only cost an infeasible LP, never a wrong answer)
VOLUME_TOL = 1e-9
#: a multiplier vector is added to the bound's set after each transportation LP, at most
MAX_MULTIPLIERS = 8


def solve_by_floor_enumeration(arrays: MipArrays, mip_gap: float,
                               time_limit: float | None = None,
                               interrupt: threading.Event | None = None,
                               start: np.ndarray | None = None,
                               min_keep: int = MAX_KEEP_DECISIONS + 1
                               ) -> BackendResult | None:
    """The search above on ``arrays``; ``start``: a known plan (column values), the first
    incumbent when it meets every row. Models with fewer than ``min_keep`` keep decisions are
    the keep-set search's (the tests lower it)."""
    started = time.perf_counter()
    if not _few_keep_sets(arrays, min_keep):
        return None  # before reading the model back (~0.5 s CPU for a national one)
    model = read_model(arrays, binding_norms=True, min_keep=min_keep, paying_keeps=True)
    if model is None or _keep_sets(model) > MAX_KEEP_SETS:
        return None
    if not np.all(np.isfinite(model.required)) or not np.all(np.isfinite(model.key_cost)):
        return None
    try:
        import highspy
    except ImportError:
        return None
    search = _FloorSearch(model, arrays, mip_gap, _TransportLP(model, highspy,
                                                               _support(model, start)))
    try:
        search.consider_start(start)
        deadline = None if time_limit is None else started + time_limit
        stopped = search.run(deadline, interrupt)
    except _Undecided:
        return None
    if search.incumbent is None or (stopped and search.nodes >= MAX_NODES):
        # no plan (proving infeasibility is the feasibility test's and the MIP solver's:
        # this module's volume test is tighter than their tolerances), or not closed
        return None
    best, x = search.incumbent
    bound = min(search.open_bound(), best) + arrays.offset
    objective = best + arrays.offset
    return BackendResult(SolveStatus.FEASIBLE if stopped else SolveStatus.OPTIMAL, objective,
                         x, relative_gap(objective, bound), time.perf_counter() - started,
                         "highs", message=FLOOR_KEEPSETS,
                         interrupted=stopped and interrupt is not None and interrupt.is_set(),
                         bound=bound)


def _few_keep_sets(arrays: MipArrays, min_keep: int) -> bool:
    """Whether the model may be covered, from the arrays alone (see keep_sets_under_floor;
    read_model's floor is never higher, so no covered model is turned away)."""
    sets = keep_sets_under_floor(arrays, min_keep)
    return sets is not None and sets <= MAX_KEEP_SETS


def keep_sets_under_floor(arrays: MipArrays, min_keep: int) -> int | None:
    """How many keep sets the highest lower bound of a row on keep decisions only (a floor)
    leaves (every keep set without one), from the arrays alone; None with fewer than
    ``min_keep`` keep decisions or a floor above the sites that may be kept."""
    y = arrays.y_slice()
    openable = arrays.col_upper[y] == 1.0
    k = int(np.count_nonzero(openable))
    if k < min_keep or k == 0:
        return None
    free = int(np.count_nonzero(openable & (arrays.col_lower[y] == 0.0)))
    lower = arrays.row_lower
    rows = np.nonzero(np.isfinite(lower) & (lower > 0))[0]
    floor = 0
    if rows.shape[0]:
        block = sp.csr_matrix(arrays.A)[rows]
        counts = np.diff(block.indptr)
        has = counts > 0
        starts = block.indptr[:-1][has]
        first = np.minimum.reduceat(block.indices, starts)
        last = np.maximum.reduceat(block.indices, starts)
        only_y = (first >= arrays.y_start) & (last < arrays.y_start + arrays.n_y)
        if np.any(only_y):
            floor = int(np.ceil(float(lower[rows[has][only_y]].max()) - 1e-6))
    most = min(k - floor, free)
    if most < 0:
        return None
    return sum(math.comb(free, size) for size in range(most + 1))


def _keep_sets(model: LagrangianModel) -> int:
    """How many keep sets the caps allow: closed sets of the free sites, of the sizes the
    floor ``lo`` and the ceiling ``hi`` leave."""
    free = int(np.count_nonzero(~model.must))
    most = min(model.k - model.lo, free)
    least = max(model.k - model.hi, 0)
    return sum(math.comb(free, size) for size in range(least, most + 1))


class _Multipliers:
    """One μ: each area's sites ordered by reduced cost c_ij - μ_j (the sites without keep
    decision as one more column k, μ = 0), the first ``depth`` of them."""

    def __init__(self, model: LagrangianModel, mu: np.ndarray, depth: int) -> None:
        k = model.k
        self.mu = np.maximum(mu, 0.0)
        reduced = np.column_stack([model.cost - self.mu[None, :], model.open_cost])
        depth = min(depth, k + 1)
        order = np.argsort(reduced, axis=1, kind="stable")[:, :depth]
        self.order = order
        self.reduced = np.take_along_axis(reduced, order, axis=1)
        #: μ_j R_j + f_j: what keeping site j adds to the bound
        self.weight = self.mu * model.required + model.key_cost


_Node = tuple[float, int, tuple[int, ...], int]  # (bound, order, closed sites, next position)


class _FloorSearch:
    def __init__(self, model: LagrangianModel, arrays: MipArrays, mip_gap: float,
                 lp: _TransportLP) -> None:
        self.m, self.arrays, self.mip_gap, self.lp = model, arrays, mip_gap, lp
        k = model.k
        self.total = float(model.demand.sum())
        self.free = np.nonzero(~model.must)[0]  # the sites that may close, in branch order
        self.max_closed = k - max(model.lo, 0)
        self.min_closed = max(k - model.hi, 0)
        self.depth = self.max_closed + 2
        self.pool: list[_Multipliers] = []
        self.incumbent: tuple[float, np.ndarray] | None = None
        self.heap: list[_Node] = []
        self.counter, self.nodes, self.lps = 0, 0, 0
        self.evaluated: dict[tuple[int, ...], float] = {}  # keep sets whose LP was solved
        self.pruned_bound = np.inf

    @property
    def best(self) -> float:
        return np.inf if self.incumbent is None else self.incumbent[0]

    def open_bound(self) -> float:
        return min(min((node[0] for node in self.heap), default=np.inf), self.pruned_bound)

    def consider(self, plan: tuple[float, np.ndarray] | None) -> None:
        if plan is not None and plan[0] < self.best:
            self.incumbent = plan

    def consider_start(self, start: np.ndarray | None) -> None:
        plan = known_plan(self.m, self.arrays, start)
        if plan is None:
            return
        self.consider(plan)
        keep = plan[1][self.m.y_column] > 0.5
        self._solve_set(tuple(np.nonzero(~keep)[0].tolist()))

    def _limit(self) -> float:
        best = self.best
        if not np.isfinite(best):
            return np.inf
        objective = best + self.arrays.offset
        return best - max(proven_tight(objective), self.mip_gap * abs(objective))

    # -- bounds -------------------------------------------------------------------------
    def _node_bound(self, mult: _Multipliers, closed: tuple[int, ...], nxt: int
                    ) -> tuple[float, float]:
        """(bound of the node's own keep set, bound of every keep set of its subtree)."""
        m = self.m
        k = m.k
        shut = np.zeros(k + 1, dtype=bool)
        shut[list(closed)] = True
        usable = ~shut[mult.order] & np.isfinite(mult.reduced)
        n = usable.shape[0]
        if not np.all(usable.any(axis=1)):
            return np.inf, np.inf  # an area with no site left (or beyond the depth: cannot)
        first = np.argmax(usable, axis=1)
        rows = np.arange(n)
        near = mult.reduced[rows, first]
        site = mult.order[rows, first]
        usable[rows, first] = False
        has_second = usable.any(axis=1)
        second_pos = np.argmax(usable, axis=1)
        second = np.where(has_second, mult.reduced[rows, second_pos], np.inf)
        kept = np.ones(k, dtype=bool)
        kept[list(closed)] = False
        base = float(m.demand @ near) + float(mult.weight[kept].sum())
        # what closing each later site adds at least (inf: an area would have no site)
        finite = np.isfinite(second)
        # np.add.at's sums, ~10x faster (float also when no area has a second site)
        rise = np.bincount(site[finite], weights=m.demand[finite] * (second[finite] - near[finite]),
                           minlength=k + 1).astype(float)
        rise[np.unique(site[~finite])] = np.inf
        later = self.free[nxt:]
        later = later[kept[later]]
        gains = rise[later] - mult.weight[later]
        r_lo, r_hi = self._closures(closed, later)
        own = base if r_lo == 0 else np.inf
        if r_lo > r_hi:
            return own, np.inf if r_lo > 0 else own
        ordered = np.sort(gains)[:r_hi]
        sums = np.concatenate([[0.0], np.cumsum(ordered)])
        sub = base + float(np.min(sums[r_lo:r_hi + 1]))
        return own, min(own, sub)

    def _closures(self, closed: tuple[int, ...], later: np.ndarray) -> tuple[int, int]:
        """(fewest, most) further closures among ``later`` that the caps and the volume
        Σ_{kept} R_j <= Σ_i d_i allow (fewest > most: none)."""
        m = self.m
        kept = m.k - len(closed)
        r_hi = min(kept - m.lo, later.shape[0])
        r_lo = max(kept - m.hi, 0)
        need = float(m.required.sum() - m.required[list(closed)].sum()) - self.total
        if need > VOLUME_TOL * max(1.0, self.total):
            big = np.cumsum(np.sort(m.required[later])[::-1])
            r_lo = max(r_lo, int(np.searchsorted(big, need * (1 - 1e-12))) + 1)
        return r_lo, r_hi

    def _bound(self, closed: tuple[int, ...], nxt: int) -> tuple[float, float]:
        own, sub = -np.inf, -np.inf
        for mult in self.pool:
            o, s = self._node_bound(mult, closed, nxt)
            own, sub = max(own, o), max(sub, s)
        if not self.pool:
            o, s = self._node_bound(_Multipliers(self.m, np.zeros(self.m.k), self.depth),
                                    closed, nxt)
            own, sub = o, s
        return own, sub

    # -- exact value of a keep set --------------------------------------------------------
    def _solve_set(self, closed: tuple[int, ...]) -> float:
        """The cheapest plan keeping every site but ``closed`` (inf: none); its duals join the
        multipliers."""
        if closed in self.evaluated:
            return self.evaluated[closed]
        self.lps += 1
        keep = np.ones(self.m.k, dtype=bool)
        keep[list(closed)] = False
        value = np.inf
        solved = None
        if self.m.required[keep].sum() <= self.total * (1 + VOLUME_TOL):
            solved = self.lp.solve(self.arrays, keep)
        if solved is not None:
            plan, mu = solved
            self.consider(plan)
            value = plan[0] if plan is not None else np.inf
            if len(self.pool) < MAX_MULTIPLIERS:
                self.pool.append(_Multipliers(self.m, mu, self.depth))
            else:
                self.pool[-1] = _Multipliers(self.m, mu, self.depth)
        self.evaluated[closed] = value
        return value

    # -- search ----------------------------------------------------------------------------
    def run(self, deadline: float | None, interrupt: threading.Event | None) -> bool:
        """Search until closed (False) or stopped (True: time, interrupt, MAX_NODES)."""
        self._push((), 0, -np.inf)
        while self.heap:
            bound, _, closed, nxt = heapq.heappop(self.heap)
            if bound >= self._limit():
                # best bound first: every node left is as far from the incumbent
                rest = min((node[0] for node in self.heap), default=np.inf)
                self.pruned_bound = min(self.pruned_bound, bound, rest)
                self.heap.clear()
                return False
            if self.nodes >= MAX_NODES or (interrupt is not None and interrupt.is_set()) or (
                    deadline is not None and time.perf_counter() > deadline):
                heapq.heappush(self.heap, (bound, 0, closed, nxt))
                return True
            self.nodes += 1
            own, sub = self._bound(closed, nxt)
            sub = max(sub, bound)
            if own < self._limit():
                self._solve_set(closed)
                own, sub = self._bound(closed, nxt)  # with the new multipliers
                sub = max(sub, bound)
            if sub >= self._limit():
                self.pruned_bound = min(self.pruned_bound, sub)
                continue
            if len(closed) >= self.max_closed:
                continue
            for pos in range(nxt, self.free.shape[0]):
                self._push(closed + (int(self.free[pos]),), pos + 1, sub)
        return False

    def _push(self, closed: tuple[int, ...], nxt: int, bound: float) -> None:
        self.counter += 1
        heapq.heappush(self.heap, (bound, self.counter, closed, nxt))


class _TransportLP:
    """The transportation LP of any keep set: one HiGHS model, a site's row Σ_i x_ij in
    [R_j, inf) when kept and [0, 0] when closed; a keep set changes only those bounds, so the
    dual simplex starts from the last basis. Its pair columns grow: each area's
    ``FIRST_PAIRS`` nearest sites and a known plan's pairs first, then every pair of a kept
    site with a negative reduced cost c_ij - u_i - v_j, until none (every pair at once when
    the pairs so far admit no plan)."""

    def __init__(self, model: LagrangianModel, highspy: Any, seed: np.ndarray | None) -> None:
        self.m, self.hs = model, highspy
        n, k = model.cost.shape
        self.n, self.k = n, k
        self.finite = np.isfinite(model.cost)
        self.open_area = np.nonzero(np.isfinite(model.open_cost))[0]
        h = new_highs(highspy)
        for name, value in (("output_flag", False), ("presolve", "off"), ("threads", 1)):
            h.setOptionValue(name, value)
        inf = highspy.kHighsInf
        no_int, no_float = np.array([], dtype=np.int32), np.array([], dtype=float)
        h.addRows(n, model.demand, model.demand, 0, np.zeros(n, dtype=np.int32), no_int,
                  no_float)
        h.addRows(k, model.required, np.full(k, inf), 0, np.zeros(k, dtype=np.int32), no_int,
                  no_float)
        opens = self.open_area.shape[0]
        if opens:
            h.addCols(opens, model.open_cost[self.open_area], np.zeros(opens),
                      np.full(opens, inf), opens, np.arange(opens, dtype=np.int32),
                      self.open_area.astype(np.int32), np.ones(opens))
        self.h = h
        self.active = np.zeros((n, k), dtype=bool)
        self.area = np.zeros(0, dtype=np.int64)
        self.site = np.zeros(0, dtype=np.int64)
        self.width = FIRST_PAIRS
        first = nearest_pairs(model.cost, self.finite, FIRST_PAIRS)
        if seed is not None:
            first |= seed & self.finite
        self._add(first)

    def _add(self, mask: np.ndarray) -> int:
        area, site = np.nonzero(mask & ~self.active)
        count = area.shape[0]
        if count == 0:
            return 0
        index = np.empty(2 * count, dtype=np.int32)
        index[0::2], index[1::2] = area, self.n + site
        self.h.addCols(count, self.m.cost[area, site], np.zeros(count),
                       np.full(count, self.hs.kHighsInf), 2 * count,
                       (2 * np.arange(count)).astype(np.int32), index, np.ones(2 * count))
        self.active[area, site] = True
        self.area = np.concatenate([self.area, area])
        self.site = np.concatenate([self.site, site])
        return count

    def _widen(self, allowed: np.ndarray) -> int:
        """Adds each area's nearest allowed pairs, twice as many as the last time (every
        allowed pair in the end): an LP without a plan on its columns so far."""
        added = 0
        while added == 0 and self.width < self.k:
            self.width = min(2 * self.width, self.k)
            added = self._add(nearest_pairs(np.where(allowed, self.m.cost, np.inf), allowed,
                                            self.width))
        return added or self._add(allowed)

    def solve(self, arrays: MipArrays, keep: np.ndarray
              ) -> tuple[tuple[float, np.ndarray] | None, np.ndarray] | None:
        """(the keep set's plan checked against every row, or None; the norms' multipliers
        μ, completed for the closed sites), or None when the keep set has no plan."""
        m, h, inf = self.m, self.h, self.hs.kHighsInf
        n, k = self.n, self.k
        ms = self.hs.HighsModelStatus
        h.changeRowsBounds(k, np.arange(n, n + k, dtype=np.int32),
                           np.where(keep, m.required, 0.0), np.where(keep, inf, 0.0))
        allowed = self.finite & keep[None, :]
        scale = np.maximum(1.0, np.abs(np.where(self.finite, m.cost, 0.0)))
        while True:
            h.run()
            status = h.getModelStatus()
            if status == ms.kInfeasible:
                if self._widen(allowed) == 0:
                    return None  # infeasible with every pair it may use
                continue
            if status != ms.kOptimal:
                raise _Undecided(h.modelStatusToString(status))
            solution = h.getSolution()
            dual = np.asarray(solution.row_dual)
            u, v = dual[:n], dual[n:]
            reduced = m.cost - u[:, None] - v[None, :]
            if self._add(allowed & (reduced < -1e-9 * scale)) == 0:
                break
        values = np.asarray(solution.col_value)
        opens = self.open_area.shape[0]
        x = np.zeros(arrays.n_cols)
        np.add.at(x, m.column[self.area, self.site], values[opens:])
        np.add.at(x, m.open_column[self.open_area], values[:opens])
        x[m.y_column[keep]] = 1.0
        mu = np.where(keep, np.maximum(v, 0.0), 0.0)
        near = np.minimum(np.min(np.where(keep[None, :], m.cost - mu[None, :], np.inf),
                                 axis=1), m.open_cost)
        for j in np.nonzero(~keep)[0].tolist():
            mu[j] = _draw_price(m.cost[:, j] - near, m.demand, float(m.required[j]))
        return known_plan(m, arrays, x), mu


class _Undecided(Exception):
    """HiGHS reached no verdict on a transportation LP: the next method decides."""


def _support(model: LagrangianModel, start: np.ndarray | None) -> np.ndarray | None:
    """The (area, site) pairs a known plan uses: its keep set's first LP then has a plan."""
    if start is None or start.shape[0] <= int(model.column.max(initial=-1)):
        return None
    flows = np.where(model.column >= 0, start[np.maximum(model.column, 0)], 0.0)
    top = np.argmax(flows, axis=1)
    rows = np.arange(flows.shape[0])
    seed = np.zeros(flows.shape, dtype=bool)
    seed[rows, top] = flows[rows, top] > 0
    return seed


def _draw_price(margin: np.ndarray, demand: np.ndarray, required: float) -> float:
    """The least μ >= 0 at which a closed site would be nearest (reduced cost c - μ below
    each area's current minimum) for ``required`` patients: its multiplier guess (any μ >= 0
    gives a valid bound)."""
    ok = np.isfinite(margin)
    if required <= 0 or not ok.any():
        return 0.0
    order = np.argsort(margin[ok], kind="stable")
    filled = np.cumsum(demand[ok][order])
    at = min(int(np.searchsorted(filled, required)), order.shape[0] - 1)
    return max(float(margin[ok][order][at]), 0.0)


__all__ = ["FLOOR_KEEPSETS", "MAX_KEEP_SETS", "keep_sets_under_floor",
           "solve_by_floor_enumeration"]
