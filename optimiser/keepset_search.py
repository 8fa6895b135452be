"""Exact optimisation over keep sets: a dedicated algorithm for one-treatment sub-problems.

For a treatment whose model :mod:`optimiser.feasibility` covers (demand, norms, forced pairs,
provider caps and floors; no capacity, coupling or single sourcing) and whose objective is
linear in the flows, stays and keeps (``travel``, ``moved``, both phases of ``providers``, the
planner's first phase), the optimum is

    min over allowed keep sets S of  f(S) = cost_y(S) + T(S),

where T(S) is the transportation LP "every unit of patients goes to sites of S it may use,
every site of S receives at least its required volume R". A unit is an area, or, in a model
with stay columns, an area's patients of one baseline site (going there is a stay: the stay
column's cost counts) and the rest of its patients. Its dual has one price v_j >= 0 per
site, and for *any* prices v every keep set satisfies the weak-duality bound

    T(S) >= L_v(S) = Σ_u d_u · min_{j in S} (c_uj - v_j) + Σ_{j in S} R_j v_j.

L_v of all 2^k keep sets at once costs one histogram and one subset-sum transform: sort each
unit's options by c - v; its cheapest option in S is the first of that order in S, so
``min_j`` telescopes into a sum over the prefixes of the order that miss S. The search keeps
LB(S) = the best such bound per set and repeats: take the allowed set with the lowest LB; the
first time, raise its bound by coordinate ascent on its own prices (cheap, no LP); the second
time, solve its transportation LP (its exact value and dual prices, an incumbent). Every price
vector found is a cut for all sets. It stops when no set's bound is below the incumbent by more
than the requested gap: the incumbent is then optimal within that gap, as a MIP solver's
would be. Deterministic (ties go to the smallest set mask).

Models it does not cover, or a search that needs more than ``MAX_LP_SOLVES`` LPs, return
``None``: the MIP solver then solves them as before.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .backends import BackendResult, solve_lp_highs
from .feasibility import TreatmentKeepSets, subset_sums, treatment_keep_sets, weight_sums
from .formulation import MipArrays
from .status import SolveStatus
from .tolerances import GAP_DENOMINATOR_MIN, KEEP_SET_TOL, PROVEN_OPTIMAL_ABS

#: the search hands a model to the MIP solver after this many transportation LPs
MAX_LP_SOLVES = 200
#: rounds of coordinate ascent on a keep set's prices before its bound is used
ASCENT_ROUNDS = 3
#: a unit's cheapest option is "strictly cheapest" for the LP shortcut when every other one
#: costs more by this (relative, at least absolute): 10x HiGHS' dual feasibility tolerance
CHEAPEST_MARGIN = 1e-6
#: the looser threshold of a price step's partial sort (cost units, e.g. minutes): any value
#: gives the same prices; this one suits travel minutes
GUESS_SLACK = 20.0
#: ``BackendResult.message`` and the sub-problem's ``algorithm`` of a search result
KEEP_SET_SEARCH = "keep_sets"


@dataclass
class _Options:
    """What the search assigns: units of patients (each area; with stay columns, each area's
    patients per baseline site and the rest) and each unit's options: cost per patient to each
    bit's site (inf: may not go there) and to its cheapest site without a keep decision, with
    the x column and the stay column (-1: none) a patient going there adds to."""

    demand: np.ndarray  # (units,)
    cost: np.ndarray  # (units, bits)
    column: np.ndarray  # (units, bits) x column or -1
    stay: np.ndarray  # (units, bits) stay column or -1
    open_cost: np.ndarray  # (units,)
    open_column: np.ndarray  # (units,)
    open_stay: np.ndarray  # (units,)
    #: every (unit, x column, stay column or -1) of a site without a keep decision
    open_entries: tuple[np.ndarray, np.ndarray, np.ndarray] = (
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))


def _units(arrays: MipArrays, sets: TreatmentKeepSets) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray] | None:
    """(area of each unit, its patients, its stay column or -1); None when the baseline
    patients of an area exceed its demand (stays then do not split it into units)."""
    n_areas = sets.demand.shape[0]
    if arrays.n_cols == arrays.n_x + arrays.n_y:
        return np.arange(n_areas), sets.demand.copy(), np.full(n_areas, -1, dtype=np.int64)
    assert arrays.stay_x is not None  # a model with stay columns has their x columns
    area_of_x = np.full(arrays.n_x, -1, dtype=np.int64)
    area_of_x[sets.x_columns] = sets.x_area
    stay_area = area_of_x[arrays.stay_x]
    if np.any(stay_area < 0):
        return None
    stay_cols = arrays.stay_start + np.arange(arrays.n_cols - arrays.stay_start)
    stay_patients = arrays.col_upper[stay_cols]
    staying = np.bincount(stay_area, weights=stay_patients, minlength=n_areas)
    rest = sets.demand - staying
    if np.any(rest < -KEEP_SET_TOL * np.maximum(1.0, sets.demand)):
        return None
    first_stay = np.full(n_areas, -1, dtype=np.int64)
    first_stay[stay_area[::-1]] = np.arange(stay_area.shape[0])[::-1]
    has_stay = first_stay >= 0
    big = rest > KEEP_SET_TOL * np.maximum(1.0, sets.demand)
    with_rest = np.nonzero(big | (~has_stay & (rest > 0.0)))[0]
    # a rounding-size rest goes to the area's first stay unit, so units add up to the demand
    tiny = np.nonzero(has_stay & ~big & (rest != 0.0))[0]
    stay_patients = stay_patients.copy()
    stay_patients[first_stay[tiny]] += rest[tiny]
    area = np.concatenate([stay_area, with_rest])
    demand = np.concatenate([stay_patients, rest[with_rest]])
    stay = np.concatenate([stay_cols, np.full(with_rest.shape[0], -1, dtype=np.int64)])
    return area, demand, stay


@dataclass
class _Layout:
    """Which option each (unit, x column) entry is, whatever its cost: the part of an option
    table that does not depend on the cost vector (phase 2 fills it with travel and moves)."""

    demand: np.ndarray  # (units,)
    unit: np.ndarray  # (entries,)
    xcol: np.ndarray  # (entries,)
    stay_col: np.ndarray  # (entries,) stay column or -1
    bit: np.ndarray  # (entries,) the site's bit; -1: no keep decision


def _layout(arrays: MipArrays, sets: TreatmentKeepSets) -> _Layout | None:
    """The entries of the option tables of ``arrays``; None as :func:`_units`."""
    units = _units(arrays, sets)
    if units is None:
        return None
    unit_area, demand, unit_stay = units
    n_units = demand.shape[0]
    # every (unit, x column of its area): the unit's area's entries, in x-column order
    by_area = np.argsort(sets.x_area, kind="stable")
    first = np.searchsorted(sets.x_area[by_area], np.arange(sets.demand.shape[0] + 1))
    counts = np.diff(first)[unit_area]
    unit = np.repeat(np.arange(n_units), counts)
    offset = np.arange(unit.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    entry = by_area[np.repeat(first[unit_area], counts) + offset]
    xcol = sets.x_columns[entry]
    stays_here = np.zeros(unit.shape[0], dtype=bool)
    if arrays.stay_x is not None and np.any(unit_stay >= 0):
        own_x = np.full(n_units, -1, dtype=np.int64)
        has = unit_stay >= 0
        own_x[has] = arrays.stay_x[unit_stay[has] - arrays.stay_start]
        stays_here = xcol == own_x[unit]
    stay_col = np.where(stays_here, unit_stay[unit], -1)
    return _Layout(demand, unit, xcol, stay_col, sets.x_bit[entry])


def _options(arrays: MipArrays, sets: TreatmentKeepSets, c: np.ndarray | None = None,
             layout: _Layout | None = None) -> _Options | None:
    """The option table of ``arrays`` with costs from ``c`` (default: its objective);
    ``layout``: its entries when the caller has them already."""
    c = arrays.c if c is None else c
    layout = _layout(arrays, sets) if layout is None else layout
    if layout is None:
        return None
    demand, unit, xcol, stay_col, bit = (layout.demand, layout.unit, layout.xcol,
                                         layout.stay_col, layout.bit)
    n_units, k = demand.shape[0], sets.n_bits
    cost = c[xcol] + np.where(stay_col >= 0, c[np.maximum(stay_col, 0)], 0.0)
    out = _Options(demand, np.full((n_units, k), np.inf), np.full((n_units, k), -1, np.int64),
                   np.full((n_units, k), -1, np.int64), np.full(n_units, np.inf),
                   np.full(n_units, -1, np.int64), np.full(n_units, -1, np.int64))
    always = bit == -1
    out.open_entries = (unit[always], xcol[always], stay_col[always])
    real = bit >= 0
    out.cost[unit[real], bit[real]] = cost[real]
    out.column[unit[real], bit[real]] = xcol[real]
    out.stay[unit[real], bit[real]] = stay_col[real]
    # sites without a keep decision: each unit's cheapest, the first entry on ties, never an
    # infinite one (as "replace while strictly cheaper" from inf)
    e = np.nonzero(always)[0]
    order = e[np.lexsort((e, cost[e], unit[e]))]
    head = np.ones(order.shape[0], dtype=bool)
    head[1:] = unit[order][1:] != unit[order][:-1]
    pick = order[head]
    pick = pick[cost[pick] < np.inf]
    u = unit[pick]
    out.open_cost[u], out.open_column[u], out.open_stay[u] = cost[pick], xcol[pick], stay_col[pick]
    return out


def transport_lp(cost: np.ndarray, matrix: sp.csc_matrix, lower: np.ndarray,
                 upper: np.ndarray, n_units: int
                 ) -> tuple[float, np.ndarray, np.ndarray] | None:
    """A keep set's transportation LP (rows 0..n_units-1: each unit's demand row, an equality with
    coefficient 1 in each of its option columns; then the site rows and any side row) by HiGHS'
    simplex without presolve, as :func:`~optimiser.backends.solve_lp_highs` answers it.

    Without HiGHS when every unit has a single option (under the planner's pinned phase 2, 44 %
    of the LPs on noordoost / zuidwest): the plan is then the only feasible point, and when
    every other row is strictly inside its bounds at it, the only optimal duals are the unit's
    costs on its row and 0 elsewhere (complementary slackness), which is what HiGHS returns; the
    value is the correctly rounded sum of cost x flow and the flows are exact (HiGHS' own answer
    can differ from both in the last bits: in 83 of 3,000 random such LPs its value, in 50 its
    flows by ~1e-15; its duals never differed). Likewise when every unit with several options
    has patients and one option strictly cheaper than its others (:func:`_cheapest_plan`; 29 of
    the 92 other LPs on noordoost / zuidwest under margins and travel limits): sending each unit
    there is then the only optimum when every other row is strictly inside its bounds at it, and
    it is not degenerate (every unit's flow positive, every other row's slack positive), so its
    duals are unique: the unit's cheapest cost, 0 elsewhere. Anything else (a tight or violated
    row, a tie, a unit with no option) goes to HiGHS."""
    csc = sp.csc_matrix(matrix)
    unit_rows = csc[:n_units]
    per_unit = np.diff(sp.csr_matrix(unit_rows).indptr)
    if n_units and np.all(per_unit >= 1) and np.array_equal(lower[:n_units], upper[:n_units]):
        unit = unit_rows.tocoo()
        if np.all(unit.data == 1.0) and np.count_nonzero(
                np.bincount(unit.col, minlength=csc.shape[1]) != 1) == 0:
            plan = _cheapest_plan(cost, unit.row, unit.col, lower[:n_units], per_unit)
            if plan is not None:
                flows, chosen = plan
                activity = csc[n_units:] @ flows
                lo, hi = lower[n_units:], upper[n_units:]
                margin = KEEP_SET_TOL * np.maximum(1.0, np.abs(activity))
                if np.all(activity > lo + margin) and np.all(activity < hi - margin):
                    duals = np.zeros(csc.shape[0])
                    duals[:n_units] = cost[chosen]
                    return math.fsum(cost * flows), flows, duals
    # presolve off: it costs more than it saves on these transportation LPs (noordoost
    # providers/travel: LP seconds -25 to -33 %)
    return solve_lp_highs(cost, csc, lower, upper, presolve=False)


def _cheapest_plan(cost: np.ndarray, row: np.ndarray, col: np.ndarray, demand: np.ndarray,
                   per_unit: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Every unit's patients on its cheapest option: (flows, the column of each unit), or None
    when some unit with several options has no patients or no strictly cheapest option."""
    n_units = demand.shape[0]
    several = per_unit > 1
    if np.any(several & ~(demand > 0)):
        return None
    option_cost = cost[col]
    cheapest = np.full(n_units, np.inf)
    np.minimum.at(cheapest, row, option_cost)
    at_cheapest = option_cost == cheapest[row]
    if np.any(np.bincount(row[at_cheapest], minlength=n_units) != 1):
        return None  # a tie (or a unit whose only option costs inf): HiGHS decides
    # every other option dearer by more than HiGHS' dual feasibility tolerance: HiGHS' optimum
    # is then this plan too (a tie-break of ~1e-9, as `moved`'s travel, is below what HiGHS
    # resolves: it may stop at another point, and the searches must take the same path)
    second = np.full(n_units, np.inf)
    np.minimum.at(second, row[~at_cheapest], option_cost[~at_cheapest])
    if np.any(second - cheapest <= CHEAPEST_MARGIN * np.maximum(1.0, np.abs(cheapest))):
        return None
    chosen = np.zeros(n_units, dtype=np.int64)
    chosen[row[at_cheapest]] = col[at_cheapest]
    flows = np.zeros(cost.shape[0])
    flows[chosen] = demand
    return flows, chosen


def _same_float(a: float, b: float) -> bool:
    """a and b are the same float bit for bit (0.0 and -0.0 differ; NaN is never the same)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _members(mask: int, k: int) -> np.ndarray:
    return np.nonzero((mask >> np.arange(k)) & 1)[0]


class _Prices:
    """Lagrangian bounds of every keep set for one option cost table: L_v(S) + cost_y(S),
    and the price moves (coordinate ascent, extension) that raise them."""

    def __init__(self, sets: TreatmentKeepSets, options: _Options, key_cost: np.ndarray
                 ) -> None:
        self.sets, self.opt = sets, options
        self.k = sets.n_bits
        self.n = 1 << self.k
        self.key_cost = key_cost
        # column-major: the ascent and extension take minima across a few site columns of
        # many units, which numpy does ~10x faster on columns than along short rows
        self.cost_f = np.asfortranarray(options.cost)

    def lagrangian(self, prices: np.ndarray) -> np.ndarray:
        """L_v(S) + cost_y(S) for every keep set S (inf where some area has no option)."""
        d = self.opt.demand
        w = np.concatenate([self.opt.cost - prices[None, :], self.opt.open_cost[:, None]],
                           axis=1)
        order = w.argsort(axis=1, kind="stable")
        # the sorted rows, gathered from the flat table (take_along_axis' own index
        # arithmetic costs ~3x this on 700 x 17)
        width = w.shape[1]
        ws = w.ravel().take(order + (np.arange(w.shape[0]) * width)[:, None])
        base = d @ ws[:, 0]
        with np.errstate(invalid="ignore"):
            step = np.diff(ws, axis=1)
        bits = np.where(order < self.k, np.left_shift(1, np.minimum(order, 62)), 0)
        prefix = np.cumsum(bits, axis=1)[:, :-1]
        # a prefix that holds the always-open option (column k, in every row once) is never
        # missed by S: the prefixes before its position count
        open_at = (order == self.k).argmax(axis=1)
        counted = np.isfinite(step) & (np.arange(width - 1)[None, :] < open_at[:, None])
        weight = (d[:, None] * np.where(counted, step, 0.0))[counted]
        missed = subset_sums(np.bincount(prefix[counted], weights=weight, minlength=self.n))
        return (base + missed[::-1]  # missed[full ^ S]: the complement of S
                + weight_sums(self.sets.required * prices) + self.key_cost)

    def _cheapest_other(self, members: np.ndarray, prices: np.ndarray) -> np.ndarray:
        if members.shape[0] == 0:
            return self.opt.open_cost.copy()
        inner = np.min(self.cost_f[:, members] - prices[members][None, :], axis=1)
        return np.minimum(inner, self.opt.open_cost)

    def _price_to_fill(self, gain: np.ndarray, required: float, guess: float = np.inf
                       ) -> float:
        """The price at which the areas with gain below it bring ``required`` patients.

        ``guess``: a price that probably suffices (the site's price before this step). When
        the areas with gain at most a threshold (the guess, then a looser one) bring
        ``required`` patients, only they are sorted: every other area's gain is larger, so
        they are the first areas of the full stable order, in the same order, and their
        running sum is the same floats: the same answer, for a sort of ~1/8 of the areas
        (noordoost; half the steps with the guess, ~3/4 with the looser one). Otherwise
        every area is sorted."""
        # array methods, not numpy's functions: the same operations without the dispatch
        # layer (~1-2 µs a call, ~13,000 calls in a noordoost solve)
        if required <= 0:
            return 0.0
        demand = self.opt.demand
        if math.isfinite(guess):
            for threshold in (guess, guess + 2.0 * abs(guess) + GUESS_SLACK):
                few = (gain <= threshold).nonzero()[0]
                if few.shape[0] == gain.shape[0]:
                    break
                sub = gain[few]
                order = sub.argsort(kind="stable")
                filled = demand[few[order]].cumsum()
                if filled.shape[0] and filled[-1] >= required:
                    return max(0.0, float(sub[order[int(filled.searchsorted(required))]]))
        order = gain.argsort(kind="stable")
        filled = demand[order].cumsum()
        at = int(filled.searchsorted(required))
        if at >= order.shape[0] or not np.isfinite(gain[order[at]]):
            return 0.0
        return max(0.0, float(gain[order[at]]))

    def ascend(self, mask: int, prices: np.ndarray) -> np.ndarray:
        """Coordinate ascent of L_v(mask) over the prices of its sites (each step exact):
        ``ASCENT_ROUNDS`` rounds over the members, ending early at a fixed point.

        A step's new price depends only on the prices (through the reduced costs; the guess
        is the member's own price), and it writes back only that member's column. So once
        one step per member in a row left its price bit for bit as it was, the state is what
        it was a whole round before, and every further step would repeat that round: the
        prices returned are the same floats as after all the rounds. (Price steps saved:
        noordoost margin 0.1 half, margin 0.2 ~8 %; zuidwest margin 0.2 a third.)"""
        prices = prices.copy()
        members = _members(mask, self.k)
        if members.shape[0] == 0:
            return prices
        cost = self.cost_f[:, members]
        # reduced costs of the members' options; a member's own column is set to inf while
        # the cheapest other option is taken (the same minimum as over the other columns)
        reduced = cost - prices[members][None, :]
        gain = np.empty(cost.shape[0])
        # inf - inf (no option either way, gain inf) only where the member's own cost is inf
        may_be_nan = ~np.isfinite(cost).all(axis=0)
        required = self.sets.required
        open_cost = self.opt.open_cost
        m = members.shape[0]
        unchanged = 0  # consecutive steps that left their member's price as it was
        with np.errstate(invalid="ignore"):
            for step in range(ASCENT_ROUNDS * m):
                if unchanged >= m:
                    break  # a fixed point: the remaining steps would change nothing
                p = step % m
                j = members[p]
                column = cost[:, p]
                reduced[:, p] = np.inf
                np.subtract(column, np.minimum(reduced.min(axis=1), open_cost), out=gain)
                if may_be_nan[p]:
                    gain[np.isnan(gain)] = np.inf
                before = float(prices[j])
                price = self._price_to_fill(gain, float(required[j]), before)
                # the same float bit for bit: a zero also keeps its sign (NaN never equal)
                if price == before and (price != 0.0 or _same_float(price, before)):
                    unchanged += 1
                else:
                    unchanged = 0
                prices[j] = price
                np.subtract(column, prices[j], out=reduced[:, p])
        return prices

    def extend(self, mask: int, prices: np.ndarray) -> np.ndarray:
        """Prices of the sites outside ``mask``: each one's best against the sites inside."""
        out = prices.copy()
        cheapest = self._cheapest_other(_members(mask, self.k), prices)
        with np.errstate(invalid="ignore"):
            for j in range(self.k):
                if not (mask >> j) & 1:
                    gain = self.cost_f[:, j] - cheapest
                    gain[np.isnan(gain)] = np.inf
                    out[j] = self._price_to_fill(gain, float(self.sets.required[j]),
                                                  float(prices[j]))
        return out


class _Search(_Prices):
    """The state of one search: bounds per keep set, the incumbent, the prices found."""

    def __init__(self, arrays: MipArrays, sets: TreatmentKeepSets, options: _Options) -> None:
        super().__init__(sets, options, weight_sums(arrays.c[arrays.y_start + sets.openable]))
        self.arrays = arrays
        self.bound = np.where(sets.allowed, self.lagrangian(np.zeros(self.k)), np.inf)
        self.ascended: set[int] = set()
        self.best_value = np.inf
        self.best: tuple[int, np.ndarray] | None = None
        self.best_prices = np.zeros(self.k)
        self.lp_solves = 0

    def cut(self, mask: int, prices: np.ndarray) -> None:
        new = self.lagrangian(self.extend(mask, prices))
        self.bound = np.maximum(self.bound, np.where(self.sets.allowed, new, np.inf))

    def step(self, mask: int) -> bool:
        """Raise the bound of the lowest set ``mask``: by coordinate ascent the first time, by
        its exact LP (an incumbent) the second. False: hand the model to the MIP solver."""
        if mask not in self.ascended:
            self.ascended.add(mask)
            start = (self.extend(self.best[0], self.best_prices)
                     if self.best is not None else np.zeros(self.k))
            self.cut(mask, self.ascend(mask, start))
            return True
        if self.lp_solves >= MAX_LP_SOLVES:
            return False
        exact = self.transport(mask)
        if exact is None:
            return False
        value, x, prices = exact
        if value < self.best_value:
            self.best_value, self.best, self.best_prices = value, (mask, x), prices
        self.cut(mask, prices)
        self.bound[mask] = max(self.bound[mask], value)  # its exact value
        return True

    def transport(self, mask: int) -> tuple[float, np.ndarray, np.ndarray] | None:
        """T(mask) + cost_y(mask) exactly: value, x column values, site prices."""
        self.lp_solves += 1
        members = _members(mask, self.k)
        sub = self.opt.cost[:, members]
        area, pos = np.nonzero(np.isfinite(sub))
        open_area = np.nonzero(np.isfinite(self.opt.open_cost))[0]
        n_areas, m = self.opt.demand.shape[0], members.shape[0]
        n_cols = area.shape[0] + open_area.shape[0]
        rows = np.concatenate([area, open_area, n_areas + pos])
        cols = np.concatenate([np.arange(n_cols), np.arange(area.shape[0])])
        matrix = sp.csc_matrix((np.ones(rows.shape[0]), (rows, cols)),
                               shape=(n_areas + m, n_cols))
        cost = np.concatenate([sub[area, pos], self.opt.open_cost[open_area]])
        lower = np.concatenate([self.opt.demand, self.sets.required[members]])
        upper = np.concatenate([self.opt.demand, np.full(m, np.inf)])
        solved = transport_lp(cost, matrix, lower, upper, n_areas)
        if solved is None:
            return None
        value, flows, duals = solved
        x = np.zeros(self.arrays.n_cols)
        to_bits, to_open = flows[:area.shape[0]], flows[area.shape[0]:]
        np.add.at(x, self.opt.column[area, members[pos]], to_bits)
        np.add.at(x, self.opt.open_column[open_area], to_open)
        stays = self.opt.stay[area, members[pos]]
        np.add.at(x, stays[stays >= 0], to_bits[stays >= 0])
        open_stays = self.opt.open_stay[open_area]
        np.add.at(x, open_stays[open_stays >= 0], to_open[open_stays >= 0])
        x[self.arrays.y_start + self.sets.openable[members]] = 1.0
        prices = np.zeros(self.k)
        prices[members] = np.maximum(duals[n_areas:], 0.0)
        return value + float(self.key_cost[mask]), x, prices


def solve_by_keep_sets(arrays: MipArrays, mip_gap: float, time_limit: float | None = None,
                       interrupt: threading.Event | None = None,
                       sets: TreatmentKeepSets | None = None) -> BackendResult | None:
    """The search above on ``arrays``; ``None`` when the model is not one it covers.
    ``sets``: its keep sets when the caller has them already."""
    started = time.perf_counter()
    search = _prepare(arrays, sets, started)
    if not isinstance(search, _Search):
        return search  # not covered (None), or decided before any search (infeasible)
    while True:
        mask = int(np.argmin(search.bound))
        lowest = float(search.bound[mask])
        if search.best is not None and lowest >= search.best_value - _allowed_gap(
                search.best_value + arrays.offset, mip_gap):
            break
        stopped = (interrupt is not None and interrupt.is_set()) or (
            time_limit is not None and time.perf_counter() - started > time_limit)
        if stopped:
            return _stopped(search, arrays, lowest, started, interrupt)
        if not search.step(mask):
            return None  # too many LPs, or an LP failed: leave the model to the MIP solver
    assert search.best is not None  # the loop ends on an incumbent
    bound = float(search.bound.min()) + arrays.offset
    objective = search.best_value + arrays.offset
    gap = max(objective - bound, 0.0) / max(abs(objective), GAP_DENOMINATOR_MIN)
    return BackendResult(SolveStatus.OPTIMAL, objective, search.best[1], gap,
                         time.perf_counter() - started, "highs", message=KEEP_SET_SEARCH,
                         bound=min(bound, objective))


def _prepare(arrays: MipArrays, sets: TreatmentKeepSets | None, started: float
             ) -> _Search | BackendResult | None:
    """The search of a covered model, its verdict when no search is needed (infeasible), or
    None when the model is not covered."""
    if len(arrays.treatments) != 1 or arrays.n_x == 0 or not np.all(np.isfinite(arrays.c)):
        return None
    if arrays.conflicts:
        return BackendResult(SolveStatus.INFEASIBLE, solver="highs", message=KEEP_SET_SEARCH)
    sets = treatment_keep_sets(arrays, arrays.treatments[0]) if sets is None else sets
    if sets is None:
        return None
    if not np.any(sets.allowed):
        return BackendResult(SolveStatus.INFEASIBLE, seconds=time.perf_counter() - started,
                             solver="highs", message=KEEP_SET_SEARCH)
    options = _options(arrays, sets)
    if options is None:
        return None
    return _Search(arrays, sets, options)


def _allowed_gap(objective: float, mip_gap: float) -> float:
    """How far below the incumbent a bound may stay: the relative gap, or near an objective
    of 0 (where a relative gap means nothing) HiGHS' absolute one, as subproblem.proven judges."""
    return max(mip_gap * max(abs(objective), GAP_DENOMINATOR_MIN), PROVEN_OPTIMAL_ABS)


def _stopped(search: _Search, arrays: MipArrays, lowest: float, started: float,
             interrupt: threading.Event | None) -> BackendResult:
    interrupted = interrupt is not None and interrupt.is_set()
    seconds = time.perf_counter() - started
    if search.best is None:
        return BackendResult(SolveStatus.TIME_LIMIT_NO_SOLUTION, seconds=seconds,
                             solver="highs", message=KEEP_SET_SEARCH, interrupted=interrupted)
    objective = search.best_value + arrays.offset
    bound = lowest + arrays.offset
    gap = max(objective - bound, 0.0) / max(abs(objective), GAP_DENOMINATOR_MIN)
    return BackendResult(SolveStatus.FEASIBLE, objective, search.best[1], gap, seconds, "highs",
                         message=KEEP_SET_SEARCH, interrupted=interrupted, bound=bound)
