"""The per-pair LP relaxation that optimiser/norm_keepsets.py's branch and bound solves at
each node (issue 23, goal 3), by column generation over a growing set of pair columns in one
persistent HiGHS model:

    min  Σ_j f_j y_j + Σ_ij c_ij x_ij   s.t.  Σ_j x_ij = d_i,  Σ_i x_ij >= R_j y_j,
         0 <= x_ij <= d_i y_j,  lo <= Σ_j y_j <= P,  0 <= y <= 1 (bounds set per node).

Each area's few nearest sites start in the LP; a pair not in it has x = 0 and a slack link
row, so its reduced cost is c_ij - u_i - v_j and the pairs with a negative one price in
until none is. A node changes only the y bounds, so its dual simplex starts from a basis of
its parent's LP (:meth:`PairLP.basis`, :meth:`PairLP.restore`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import new_highs
from .formulation import MipArrays
from .lagrangian import LagrangianModel, known_plan, nearest_pairs

#: each area's this many nearest sites start in the node LP
FIRST_PAIRS = 3
#: pairs priced into the LP per area and round, the most negative reduced costs first
PRICE_PER_AREA = 2


class Undecided(Exception):
    """HiGHS reached no verdict on a node LP: the MIP solver decides the model instead."""


class PairLP:
    """The per-pair LP relaxation over a growing set of pair columns (one HiGHS model)."""

    def __init__(self, model: LagrangianModel, highspy: Any, stay: np.ndarray | None = None,
                 open_stay: np.ndarray | None = None, expand: Any = None,
                 near_equal: bool | None = None, repair: bool = False) -> None:
        self.m, self.hs = model, highspy
        #: an infeasible node LP first takes the few pairs of :meth:`_repair` and an
        #: undecided one is retried (else every allowed pair at once and no retry, as
        #: before: norm_keepsets.py keeps that for ``moved`` and the merged providers
        #: phase 1, whose plans stay as they were)
        self.repair = repair
        self.stay, self.open_stay = stay, open_stay
        #: moved-like costs (0 / 1 patient plus a tie-break): partial pricing, no perturbation
        self.near_equal = stay is not None if near_equal is None else near_equal
        #: the areas behind each unit of a merged model (norm_keepsets._Merged: plans are
        #: written per area; not imported, no cycle)
        self.expand = expand
        n, k = model.cost.shape
        self.n, self.k = n, k
        h = new_highs(highspy)
        for name, value in (("output_flag", False), ("presolve", "off"), ("threads", 1)):
            h.setOptionValue(name, value)
        if self.near_equal:
            # moved's costs are 0 / 1 patient plus a ~1e-9 tie-break: the dual simplex's cost
            # perturbation only adds iterations (national og_systemic 59,538 -> 39,335,
            # aaa_surgery 65,648 -> 50,582 over the search, same nodes and optimum)
            h.setOptionValue("dual_simplex_cost_perturbation_multiplier", 0.0)
        self.h = h
        self.solves = 0  # LP solves so far (a saved basis is current until the next one)
        inf = highspy.kHighsInf
        no_int, no_float = np.array([], dtype=np.int32), np.array([], dtype=float)
        # columns: y (k), then per area its site without keep decision (if any), then pairs
        h.addCols(k, model.key_cost.astype(float), np.zeros(k), np.ones(k), 0, no_int, no_int,
                  no_float)
        # rows: demand (n), norms Σ x - R y >= 0 (k), the cap lo <= Σ y <= hi, link rows
        h.addRows(n, model.demand, model.demand, 0, np.zeros(n, dtype=np.int32), no_int,
                  no_float)
        ks = np.arange(k, dtype=np.int32)
        h.addRows(k, np.zeros(k), np.full(k, inf), k, ks, ks, -model.required.astype(float))
        h.addRows(1, np.array([float(model.lo)]), np.array([float(model.hi)]), k,
                  np.zeros(1, dtype=np.int32), ks, np.ones(k))
        self.open_areas = np.nonzero(np.isfinite(model.open_cost))[0]
        m_open = self.open_areas.shape[0]
        if m_open:
            h.addCols(m_open, model.open_cost[self.open_areas], np.zeros(m_open),
                      np.full(m_open, inf), m_open, np.arange(m_open, dtype=np.int32),
                      self.open_areas.astype(np.int32), np.ones(m_open))
        self.pair_start = k + m_open
        self.finite = np.isfinite(model.cost)
        self.active = np.zeros((n, k), dtype=bool)
        self.pair_area = np.zeros(0, dtype=np.int64)
        self.pair_site = np.zeros(0, dtype=np.int64)
        self._add(nearest_pairs(model.cost, self.finite, FIRST_PAIRS))

    def _add(self, mask: np.ndarray) -> int:
        """Add the pair columns of ``mask`` not yet in the LP, each with its link row."""
        area, site = np.nonzero(mask & ~self.active)
        count = area.shape[0]
        if count == 0:
            return 0
        h, inf = self.h, self.hs.kHighsInf
        base = h.getNumCol()
        starts = (2 * np.arange(count)).astype(np.int32)
        index = np.empty(2 * count, dtype=np.int32)
        index[0::2], index[1::2] = area, self.n + site
        h.addCols(count, self.m.cost[area, site], np.zeros(count), np.full(count, inf),
                  2 * count, starts, index, np.ones(2 * count))
        link = np.empty(2 * count, dtype=np.int32)
        link[0::2], link[1::2] = base + np.arange(count), site
        value = np.empty(2 * count)
        value[0::2], value[1::2] = 1.0, -self.m.demand[area]
        h.addRows(count, np.full(count, -inf), np.zeros(count), 2 * count, starts, link, value)
        self.active[area, site] = True
        self.pair_area = np.concatenate([self.pair_area, area])
        self.pair_site = np.concatenate([self.pair_site, site])
        return count

    def basis(self) -> tuple[Any, int, int, int]:
        """The current basis, the model's size then and the solve it is of (:meth:`restore`)."""
        return self.h.getBasis(), self.h.getNumCol(), self.h.getNumRow(), self.solves

    def restore(self, saved: tuple[Any, int, int, int]) -> None:
        """Start the next solve from a saved basis; columns added since are nonbasic at
        their lower bound 0, their link rows basic (a valid basis of the grown model)."""
        basis, cols, rows, solve = saved
        if solve == self.solves:
            return  # nothing solved since: HiGHS' basis is this one, factored
        now_cols, now_rows = self.h.getNumCol(), self.h.getNumRow()
        if (cols, rows) != (now_cols, now_rows):
            status = self.hs.HighsBasisStatus
            grown = self.hs.HighsBasis()
            grown.col_status = list(basis.col_status) + [status.kLower] * (now_cols - cols)
            grown.row_status = list(basis.row_status) + [status.kBasic] * (now_rows - rows)
            grown.valid = True
            basis = grown
        self.h.setBasis(basis)

    def solve(self, lower: np.ndarray, upper: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(demand duals u, y values, column values) of the LP with these y bounds, priced
        out over every pair; None when it is infeasible with every pair it may use."""
        h, ms = self.h, self.hs.HighsModelStatus
        h.changeColsBounds(self.k, np.arange(self.k, dtype=np.int32), lower.astype(float),
                           upper.astype(float))
        allowed = self.finite & (upper[None, :] > 0.5)
        self.solves += 1
        repaired, cold = not self.repair, False
        while True:
            h.run()
            status = h.getModelStatus()
            if status == ms.kInfeasible:
                # the pairs not yet in the LP may make it feasible: first the few that
                # usually do, then all once (every allowed pair at once had grown national
                # kidney_local's LP from 12,000 to 124,000 pairs, every later node 4x slower)
                if not repaired:
                    repaired = True
                    if self._add(self._repair(allowed)) > 0:
                        continue
                if self._add(allowed) == 0:
                    return None
                continue
            if status != ms.kOptimal:
                # no verdict (weights 1e-3 beside 1e3 after a repair or from a restored
                # basis): every allowed pair, as before the repair, then once from scratch
                if repaired and self.repair and self._add(allowed) > 0:
                    continue
                if self.repair and not cold:
                    cold = True
                    h.clearSolver()
                    continue
                raise Undecided(h.modelStatusToString(status))
            solution = h.getSolution()
            dual = np.asarray(solution.row_dual)
            u, v = dual[:self.n], dual[self.n:self.n + self.k]
            reduced = self.m.cost - u[:, None] - v[None, :]
            scale = np.maximum(1.0, np.abs(np.where(self.finite, self.m.cost, 0.0)))
            if self._add(self._entering(allowed & (reduced < -1e-9 * scale), reduced)) == 0:
                values = np.asarray(solution.col_value)
                return u, values[:self.k], values

    def _repair(self, allowed: np.ndarray) -> np.ndarray:
        """Pairs that make a node LP infeasible over its pairs feasible in the usual cases:
        each area's FIRST_PAIRS nearest allowed sites (its nearest may be closed), and each
        allowed site's nearest areas whose patients reach its norm."""
        m = self.m
        near = nearest_pairs(m.cost, allowed, FIRST_PAIRS)
        cost = np.where(allowed, m.cost, np.inf)
        order = np.argsort(cost, axis=0, kind="stable")
        reached = np.cumsum(m.demand[order], axis=0) - m.demand[order]  # before each area
        reach = np.zeros_like(allowed)
        np.put_along_axis(reach, order, reached < m.required[None, :], axis=0)
        return near | (reach & allowed)

    def _entering(self, negative: np.ndarray, reduced: np.ndarray) -> np.ndarray:
        """Of the pairs with a negative reduced cost, each area's PRICE_PER_AREA most
        negative (partial pricing: with near-equal costs, as under ``moved``, full pricing
        adds most pairs); all of them without stay columns, where partial pricing only
        multiplies the rounds (national travel kidney_local: 22 -> 125 s CPU, speed.md)."""
        if not self.near_equal:
            return negative
        rows = np.nonzero(negative.any(axis=1))[0]
        if rows.shape[0] == 0:
            return negative
        sub = np.where(negative[rows], reduced[rows], np.inf)
        best = np.argsort(sub, axis=1, kind="stable")[:, :PRICE_PER_AREA]
        chosen = np.zeros_like(negative)
        chosen[rows[:, None], best] = True
        return chosen & negative

    def plan(self, arrays: MipArrays, keep: np.ndarray) -> tuple[float, np.ndarray] | None:
        """The exact plan of keep set ``keep`` (the LP with y fixed: the transportation LP),
        checked against every row of the model; None when it has none."""
        fixed = keep.astype(float)
        solved = self.solve(fixed, fixed)
        if solved is None:
            return None
        values = solved[2]
        x = np.zeros(arrays.n_cols)
        m = self.m
        flows, opened = values[self.pair_start:], values[self.k:self.pair_start]
        if self.expand is not None:
            return self.expand.plan(arrays, self, flows, opened, keep)
        np.add.at(x, m.column[self.pair_area, self.pair_site], flows)
        if self.open_areas.shape[0]:
            np.add.at(x, m.open_column[self.open_areas], opened)
        if self.stay is not None and self.open_stay is not None:
            # a unit at its own baseline site stays there (its cost counted the stay)
            stay = self.stay[self.pair_area, self.pair_site]
            np.add.at(x, stay[stay >= 0], flows[stay >= 0])
            open_stay = self.open_stay[self.open_areas]
            np.add.at(x, open_stay[open_stay >= 0], opened[open_stay >= 0])
        x[m.y_column[keep]] = 1.0
        return known_plan(m, arrays, x)


__all__ = ["FIRST_PAIRS", "PRICE_PER_AREA", "PairLP", "Undecided"]
