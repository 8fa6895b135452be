"""Exact second phase of the ``planner`` objective over keep sets.

Phase 2 minimises travel among the plans whose unnecessary moves ``U`` stay at phase 1's
optimum: ``min travel s.t. moves_c @ v <= r`` with ``r = U* - moves_offset + slack``
(optimiser/planner.py). For a keep set S that is a transportation LP with one side row, so
:mod:`optimiser.keepset_search`'s bounds extend to it by Lagrangian duality on that row: for
any multiplier ``mu >= 0`` and site prices ``v >= 0``

    T2(S) >= L_v^{travel + mu·moves}(S) - mu·r,

(relaxing the side row with ``mu``, then the site rows with ``v``, as there), and every keep
set whose unnecessary moves cannot get down to ``r`` is excluded by the moves bound

    U_min(S) >= L_w^{moves}(S)   for any prices w >= 0.

The search takes the allowed set with the lowest bound; the first time it raises both of its
bounds by coordinate ascent (no LP), the second time it solves its LP exactly: first
``min moves`` (when that exceeds ``r``, the set is infeasible and its dual prices are a cut
on the moves bound of every set), then ``min travel`` with the side row (its value, its duals
``(v, mu)`` as a cut for every set, an incumbent). It stops when no allowed set's bound is
below the incumbent by more than the requested gap, so the incumbent is optimal within it;
infeasibility is proven when every allowed set is excluded. No branch and bound, so no
tolerance-thin row can make a solver prune a feasible node (issue 23: HiGHS without presolve
reported a false optimum on such a row).

With ``U* = 0`` the answer's flows come from the LP with every counted patient pinned to
stay (the zero-moves model, exactly), not from the side row with its solver slack. The bounds
then use a multiplier ``mu`` above any travel saving a patient could make by leaving his site
from the first bound on: for every keep set the side row's terms cancel in the plans that pin
every patient who can stay, so the bound is the pinned one (valid for any ``mu >= 0``, tight
here), and the moves ascent waits until some set proves to have no zero-moves plan.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import scipy.sparse as sp

from .backends import BackendResult
from .feasibility import TreatmentKeepSets, treatment_keep_sets, weight_sums
from .formulation import MipArrays
from .keepset_search import (
    KEEP_SET_SEARCH,
    MAX_LP_SOLVES,
    _allowed_gap,
    _layout,
    _members,
    _Options,
    _options,
    _Prices,
    transport_lp,
)
from .status import SolveStatus
from .tolerances import GAP_DENOMINATOR_MIN, MOVES_SLACK_ABS


class _Phase2:
    """The state of one phase-2 search (see the module docstring)."""

    def __init__(self, arrays: MipArrays, sets: TreatmentKeepSets,
                 tables: tuple[_Options, _Options], travel: np.ndarray, moves: np.ndarray,
                 rhs: float, zero: bool) -> None:
        self.arrays, self.sets, self.travel, self.moves, self.rhs = arrays, sets, travel, moves, rhs
        self.k = sets.n_bits
        self.zero = zero  # U* = 0: the LP of a keep set pins every counted patient
        self.table_t, self.table_m = tables
        self.openable_cols = arrays.y_start + sets.openable
        self.key_t = weight_sums(travel[self.openable_cols])
        self.key_m = weight_sums(moves[self.openable_cols])
        self.moves_view = _Prices(sets, self.table_m, self.key_m)
        self.moves_bound = self.moves_view.lagrangian(np.zeros(self.k))
        self.mu = 0.0
        self.view = _Prices(sets, self.table_t, self.key_t)
        self.pin_mu = self._pin_multiplier() if zero else 0.0
        # under U* = 0 the pinned travel bounds already rank the sets, and the moves ascent
        # (a third of a visit) is only worth it once some set proved to have no zero-moves
        # plan (then many may lack one, and the moves cuts exclude them without LPs)
        self.moves_ascent = not zero
        view = self._view(self.pin_mu)
        self.bound = np.where(sets.allowed, view.lagrangian(np.zeros(self.k))
                              - self.pin_mu * rhs, np.inf)
        self._exclude()
        self.ascended: set[int] = set()
        self.best_value = np.inf
        self.best: tuple[int, np.ndarray] | None = None
        self.best_prices = np.zeros(self.k)
        self.lp_solves = 0

    # --- bounds ---------------------------------------------------------------------------
    def _pin_multiplier(self) -> float:
        """A multiplier of the side row above any travel saving a patient can make by
        leaving his site (at zero prices): with it, the bound of every keep set pins the
        patients who can stay, as the zero-moves model does."""
        t = self.table_t
        finite = np.concatenate([t.cost[np.isfinite(t.cost)],
                                 t.open_cost[np.isfinite(t.open_cost)]])
        if finite.shape[0] == 0:
            return 0.0
        return float(finite.max() - finite.min()) + 1.0

    def _exclude(self) -> None:
        """Sets whose unnecessary moves provably exceed the ceiling are not phase-2 plans."""
        self.bound[self.moves_bound > self.rhs + MOVES_SLACK_ABS] = np.inf

    def _view(self, mu: float) -> _Prices:
        """The bounds for cost travel + mu·moves (the option tables are linear in the cost)."""
        if mu != self.mu:
            t, m = self.table_t, self.table_m
            o_unit, o_x, o_stay = t.open_entries
            o_cost = self._entry_cost(self.travel + mu * self.moves, o_x, o_stay)
            # the cheapest site without a keep decision per unit, first one on ties
            order = np.lexsort((np.arange(o_unit.shape[0]), o_cost, o_unit))
            first = np.ones(order.shape[0], dtype=bool)
            first[1:] = o_unit[order][1:] != o_unit[order][:-1]
            pick = order[first]
            open_cost = np.full(t.demand.shape[0], np.inf)
            open_column = np.full(t.demand.shape[0], -1, dtype=np.int64)
            open_stay = open_column.copy()
            open_cost[o_unit[pick]] = o_cost[pick]
            open_column[o_unit[pick]], open_stay[o_unit[pick]] = o_x[pick], o_stay[pick]
            with np.errstate(invalid="ignore"):  # inf + mu·(-1): no option stays inf
                cost = np.where(np.isfinite(t.cost), t.cost + mu * m.cost, np.inf)
            table = _Options(t.demand, cost, t.column, t.stay, open_cost, open_column,
                             open_stay, t.open_entries)
            self.view = _Prices(self.sets, table, self.key_t + mu * self.key_m)
            self.mu = mu
        return self.view

    @staticmethod
    def _entry_cost(c: np.ndarray, x_col: np.ndarray, stay_col: np.ndarray) -> np.ndarray:
        """Cost per patient of options: their x column plus their stay column, if any."""
        return c[x_col] + np.where(stay_col >= 0, c[np.maximum(stay_col, 0)], 0.0)

    def cut(self, mask: int, prices: np.ndarray, mu: float) -> None:
        view = self._view(mu)
        new = view.lagrangian(view.extend(mask, prices)) - mu * self.rhs
        self.bound = np.maximum(self.bound, np.where(self.sets.allowed, new, np.inf))
        self._exclude()

    def cut_moves(self, mask: int, prices: np.ndarray) -> None:
        view = self.moves_view
        self.moves_bound = np.maximum(self.moves_bound,
                                      view.lagrangian(view.extend(mask, prices)))
        self._exclude()

    def ascend(self, mask: int, cutoff: float) -> None:
        """Raise both bounds of ``mask`` by coordinate ascent (cuts for every set): first its
        travel bound; the moves bound (which may exclude it) only while the travel bound
        leaves it below ``cutoff`` (the incumbent less the gap)."""
        view = self._view(self.mu)
        start = (view.extend(self.best[0], self.best_prices) if self.best is not None
                 else np.zeros(self.k))
        self.cut(mask, view.ascend(mask, start), self.mu)
        if self.bound[mask] < cutoff and self.moves_ascent:
            self.cut_moves(mask, self.moves_view.ascend(mask, np.zeros(self.k)))

    # --- the LP of one keep set -----------------------------------------------------------
    def _lp(self, mask: int, objective: str, pinned: bool = False
            ) -> tuple[float, np.ndarray, np.ndarray, float] | None:
        """min travel (side row ``moves <= rhs``; ``pinned``: every counted patient stays
        instead) or min moves over keep set ``mask``: (value, columns, site prices, mu), or
        None when infeasible or not solved."""
        self.lp_solves += 1
        members = _members(mask, self.k)
        t = self.table_t
        area, pos = np.nonzero(np.isfinite(t.cost[:, members]))
        bits = members[pos]
        o_unit, o_x, o_stay = t.open_entries
        unit = np.concatenate([area, o_unit])
        x_col = np.concatenate([t.column[area, bits], o_x])
        stay_col = np.concatenate([t.stay[area, bits], o_stay])
        # cost of each option: its x column plus its stay column (where the patient stays)
        c_t = self._entry_cost(self.travel, x_col, stay_col)
        c_m = self._entry_cost(self.moves, x_col, stay_col)
        if pinned:
            # U* = 0: a patient who can stay where he is today (his stay option is open: its
            # moves cost is -1) must stay there; the others (today at a closed site) are free
            stays = c_m < 0
            can_stay = np.zeros(t.demand.shape[0], dtype=bool)
            can_stay[unit[stays]] = True
            keep = stays | ~can_stay[unit]
            unit, x_col, stay_col, c_t, c_m = (unit[keep], x_col[keep], stay_col[keep],
                                               c_t[keep], c_m[keep])
        n_units, n_m, n_cols = t.demand.shape[0], members.shape[0], unit.shape[0]
        site_row = np.concatenate([pos, np.full(o_unit.shape[0], -1)])
        if pinned:
            site_row = site_row[keep]
        on_site = site_row >= 0
        rows = [unit, n_units + site_row[on_site]]
        cols = [np.arange(n_cols), np.nonzero(on_site)[0]]
        vals = [np.ones(n_cols), np.ones(int(on_site.sum()))]
        lower = [t.demand, self.sets.required[members]]
        upper = [t.demand, np.full(n_m, np.inf)]
        side = objective == "travel" and not pinned
        if side:
            rows.append(np.full(n_cols, n_units + n_m))
            cols.append(np.arange(n_cols))
            vals.append(c_m)
            lower.append(np.array([-np.inf]))
            upper.append(np.array([self.rhs - self.key_m[mask]]))
        n_rows = n_units + n_m + (1 if side else 0)
        matrix = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                       np.concatenate(cols))),
                               shape=(n_rows, n_cols))
        cost = c_t if objective == "travel" else c_m
        solved = transport_lp(cost, matrix, np.concatenate(lower), np.concatenate(upper),
                              n_units)
        if solved is None:
            return None
        value, flows, duals = solved
        x = np.zeros(self.arrays.n_cols)
        np.add.at(x, x_col, flows)
        np.add.at(x, stay_col[stay_col >= 0], flows[stay_col >= 0])
        x[self.openable_cols[members]] = 1.0
        prices = np.zeros(self.k)
        prices[members] = np.maximum(duals[n_units:n_units + n_m], 0.0)
        mu = max(0.0, -float(duals[-1])) if side else 0.0
        key = self.key_t[mask] if objective == "travel" else self.key_m[mask]
        return value + float(key), x, prices, mu

    def _pinned_mu(self, mask: int, prices: np.ndarray) -> float:
        """A multiplier of the side row that makes the pinned LP's duals a tight cut: the
        largest saving any pinned patient would make by leaving his site at these prices."""
        t, m = self.table_t, self.table_m
        members = _members(mask, self.k)
        with np.errstate(invalid="ignore"):
            reduced = t.cost[:, members] - prices[members][None, :]
        staying = m.cost[:, members] < 0
        n_units = t.demand.shape[0]
        stay_red = np.min(np.where(staying, reduced, np.inf), axis=1, initial=np.inf)
        other_red = np.min(np.where(staying, np.inf, reduced), axis=1, initial=np.inf)
        o_unit, o_x, o_stay = t.open_entries
        o_red = self._entry_cost(self.travel, o_x, o_stay)
        o_staying = o_stay >= 0
        np.minimum.at(stay_red, o_unit[o_staying], o_red[o_staying])
        np.minimum.at(other_red, o_unit[~o_staying], o_red[~o_staying])
        pinned = np.isfinite(stay_red) & np.isfinite(other_red)
        if not np.any(pinned) or n_units == 0:
            return 0.0
        return max(0.0, float(np.max(stay_red[pinned] - other_red[pinned])))

    def step(self, mask: int, mip_gap: float) -> bool:
        """Raise the bounds of the lowest set ``mask`` (ascent the first time, its exact LPs
        the second, an incumbent when it has a plan). False: hand the model to the MIP."""
        if mask not in self.ascended:
            self.ascended.add(mask)
            self.ascend(mask, self.best_value - _allowed_gap(self.best_value, mip_gap)
                        if self.best is not None else np.inf)
            return True
        if self.lp_solves >= 2 * MAX_LP_SOLVES:
            return False
        exact = self.exact(mask)
        if exact is None:
            return False
        value, x, prices = exact
        if np.isfinite(value) and value < self.best_value:
            self.best_value, self.best, self.best_prices = value, (mask, x), prices
        return True

    def stopped(self, lowest: float, seconds: float, interrupted: bool) -> BackendResult:
        """The answer of a search stopped by the time limit or an interrupt."""
        if self.best is None:
            return BackendResult(SolveStatus.TIME_LIMIT_NO_SOLUTION, seconds=seconds,
                                 solver="highs", message=KEEP_SET_SEARCH,
                                 interrupted=interrupted)
        gap = max(self.best_value - lowest, 0.0) / max(abs(self.best_value),
                                                     GAP_DENOMINATOR_MIN)
        return BackendResult(SolveStatus.FEASIBLE, self.best_value, self.best[1], gap,
                             seconds, "highs", message=KEEP_SET_SEARCH,
                             interrupted=interrupted, bound=lowest)

    def exact(self, mask: int) -> tuple[float, np.ndarray, np.ndarray] | None:
        """The phase-2 value, columns and site prices of ``mask``; value inf when it has no
        plan under the ceiling (a cut is made); None when an LP failed or the answer sits on
        the tolerance edge."""
        solved = self._lp(mask, "travel", pinned=self.zero)
        if solved is None:
            least = self._lp(mask, "moves")
            if least is None:
                return None
            u_min, _, w, _ = least
            self.moves_ascent = True
            self.cut_moves(mask, w)
            if u_min <= self.rhs + MOVES_SLACK_ABS:
                return None  # U_min within the slack but no plan under the ceiling: an edge
            self.bound[mask] = np.inf
            return np.inf, w, w
        value, x, v, mu = solved
        if self.zero:
            mu = max(self._pinned_mu(mask, v), self.pin_mu)
        self.cut(mask, v, mu)
        self.bound[mask] = max(self.bound[mask], value)
        return value, x, v


def solve_phase2_by_keep_sets(arrays: MipArrays, travel: np.ndarray, rhs: float,
                              zero_moves: bool, mip_gap: float,
                              time_limit: float | None = None,
                              interrupt: threading.Event | None = None,
                              sets: TreatmentKeepSets | None = None
                              ) -> BackendResult | None:
    """The planner's phase 2 on ``arrays`` (the phase-1 model) by the search above.

    ``travel``: phase 2's cost vector in ``arrays``' columns (no offset); ``rhs``: the ceiling of
    ``arrays.moves_c @ v``; ``zero_moves``: phase 1 found no unnecessary move (the answer's
    flows are then those of the exact zero-moves LP). ``None`` when the model is not one the
    search covers, or it needs more than MAX_LP_SOLVES LPs: the planner strategy
    (optimiser/planner.py) then uses the MIP."""
    started = time.perf_counter()
    search = _prepare(arrays, travel, rhs, zero_moves, sets)
    if search is None:
        return None
    while True:
        mask = int(np.argmin(search.bound))
        lowest = float(search.bound[mask])
        if not np.isfinite(lowest):
            if search.best is None:
                return BackendResult(SolveStatus.INFEASIBLE, seconds=time.perf_counter() - started,
                                     solver="highs", message=KEEP_SET_SEARCH)
            break
        if search.best is not None and lowest >= search.best_value - _allowed_gap(
                search.best_value, mip_gap):
            break
        interrupted = interrupt is not None and interrupt.is_set()
        if interrupted or (time_limit is not None
                           and time.perf_counter() - started > time_limit):
            return search.stopped(lowest, time.perf_counter() - started, interrupted)
        if not search.step(mask, mip_gap):
            return None
    assert search.best is not None
    mask, x = search.best
    objective = search.best_value
    bound = min(float(search.bound.min()), objective)
    gap = max(objective - bound, 0.0) / max(abs(objective), GAP_DENOMINATOR_MIN)
    return BackendResult(SolveStatus.OPTIMAL, objective, x, gap,
                         time.perf_counter() - started, "highs", message=KEEP_SET_SEARCH,
                         bound=bound)


def _prepare(arrays: MipArrays, travel: np.ndarray, rhs: float, zero_moves: bool,
             sets: TreatmentKeepSets | None) -> _Phase2 | None:
    """The search of a model it covers, else None."""
    if (len(arrays.treatments) != 1 or arrays.n_x == 0 or arrays.moves_c is None
            or not np.all(np.isfinite(travel)) or arrays.conflicts):
        return None
    sets = treatment_keep_sets(arrays, arrays.treatments[0]) if sets is None else sets
    if sets is None:
        return None
    layout = _layout(arrays, sets)  # the same entries for both cost vectors
    if layout is None:
        return None
    table_t = _options(arrays, sets, travel, layout)
    table_m = _options(arrays, sets, arrays.moves_c, layout)
    if table_t is None or table_m is None:
        return None
    return _Phase2(arrays, sets, (table_t, table_m), travel, arrays.moves_c, rhs, zero_moves)
