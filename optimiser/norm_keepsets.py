"""Exact branch and bound of our own for one-treatment models with many keep decisions and
volume norms that bind (issue 23, goal 3: national kidney_systemic, 72 hospitals, norm 50).

The model is the one :mod:`optimiser.large_keepsets` reads (demand rows, volume norms, forced
keeps and closures, caps on the number kept; no capacity, coupling, single sourcing or stay
columns), with any keep cost f_j (keeping pays in the ``providers`` phase 1: f_j = -1):

    min  Σ_j f_j y_j + Σ_ij c_ij x_ij   s.t.  Σ_j x_ij = d_i,  Σ_i x_ij >= R_j y_j,
         0 <= x_ij <= d_i y_j,  lo <= Σ_j y_j <= P,  y binary.

HiGHS' branch and bound spends its time in node LPs of 3,312 x 72 pair columns (national
kidney_systemic: ~2 s CPU a node, 41 nodes in 144 s CPU without closing a 0.08 % gap). Here:

1. **Node LP by column generation.** The LP relaxation with the strong per-pair rows, over
   the pairs that matter: each area's few nearest sites first, then every pair whose reduced
   cost c_ij - u_i - v_j is negative (u: demand duals, v: norm duals; a pair not in the LP has
   x = 0 and a slack link row, so that is its reduced cost), until none is. One persistent
   HiGHS model: a node changes only the y bounds, so its dual simplex starts warm
   (~0.01-0.07 s a node instead of ~2 s).
2. **Valid bound.** The node's bound is not the LP's objective but the Lagrangian bound of
   :mod:`optimiser.large_keepsets` at the LP's demand duals with the node's fixings, evaluated
   exactly over every pair: weak duality holds for *any* multipliers, so LP tolerances or a
   missed column can make it weaker, never wrong. At the LP optimum it equals the LP bound.
3. **Fixing.** The same Lagrangian's closed-form forced-open / forced-closed bounds fix sites
   for the node's subtree (reduced-cost fixing, exact as in large_keepsets.py).
4. **Incumbents.** The given start (the national run's regional optima) when it meets every
   row, and the keep set {y >= 0.5} of node LPs, whose exact plan is the same LP with y fixed
   (the transportation LP); every incumbent is checked against every row of the model.
5. **Search.** Best bound first, branching on the fractional y closest to 1/2. Done when no
   open node's bound is below the incumbent by more than the requested gap.
6. **Providers phase 1** (most kept pairs: flows cost nothing, each kept pair -1). Every
   plan's value is an integer, so a node's bound rounds up and a site is fixed when forcing
   it cannot gain a whole pair; areas that may use the same sites are one unit (exact, see
   ``_Merged``: nationally the 3,312 areas are one), so the node LP has k pair columns.

Returns ``None`` (the caller's MIP solver decides) for a model it does not cover, after
``MAX_NODES`` nodes, or when stopped without an incumbent.
"""

from __future__ import annotations

import heapq
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .backends import BackendResult
from .feasibility import MAX_KEEP_DECISIONS, TreatmentKeepSets
from .formulation import MipArrays
from .keepset_search import _options
from .lagrangian import (
    Lagrangian,
    LagrangianModel,
    known_plan,
    proven_tight,
    read_model,
    read_parts,
    relative_gap,
)
from .moved_keepsets import Tiers, moved_tiers
from .pair_lp import PairLP, Undecided
from .status import SolveStatus

#: ``BackendResult.message`` and the sub-problem's ``algorithm`` of a result of this module
NORM_KEEPSETS = "norm_keep_sets"
#: the search hands the model back to the MIP solver after this many nodes
MAX_NODES = 20_000
#: a keep set {y >= 0.5} is evaluated at the root and every this many nodes
ROUND_EVERY = 10
#: an integer-valued objective's bound rounds up to the next integer beyond this (relative;
#: the bound is evaluated exactly at any multipliers, so only float rounding is below it)
INTEGRAL_TOL = 1e-9
#: after branching, solve the child y leans to next (its LP starts from its parent's basis)
DIVE = True


def _read_model(arrays: MipArrays, min_keep: int
                ) -> tuple[LagrangianModel, np.ndarray | None, np.ndarray | None] | None:
    """The model (areas x keep decisions), and with stay columns (``moved``) the model in
    units as keepset_search.py reads it: an area's patients per baseline site and the rest,
    a unit's cost at its own baseline site counting the stay; then also each (unit, bit)'s
    stay column and each unit's stay at its site without keep decision (-1: none)."""
    if arrays.n_cols == arrays.n_x + arrays.n_y:
        model = read_model(arrays, binding_norms=True, min_keep=min_keep, paying_keeps=True)
        return None if model is None else (model, None, None)
    parts = read_parts(arrays, True, min_keep, stays=True, paying_keeps=True)
    if parts is None:
        return None
    parsed, t = parts.parsed, arrays.treatments[0]
    x_t = np.nonzero(arrays.x_treat == t)[0]
    rows = np.unique(parsed.demand_row[x_t])
    x_y = parsed.x_y[x_t]
    sets = TreatmentKeepSets(t, parts.openable, parsed.required[parts.openable],
                             parsed.demand[rows], x_t,
                             np.searchsorted(rows, parsed.demand_row[x_t]),
                             np.where(x_y >= 0, parts.bit_of_y[np.maximum(x_y, 0)], -1),
                             np.zeros(0, dtype=bool))
    units = _options(arrays, sets)
    if units is None:
        return None
    keep = units.demand > 0
    if np.any(keep & ~np.isfinite(units.open_cost) & ~np.isfinite(units.cost).any(axis=1)):
        return None  # a unit with patients and no site: the feasibility test says so
    must = arrays.col_lower[arrays.y_slice()][parts.openable] == 1.0
    model = LagrangianModel(units.demand[keep], units.cost[keep], units.column[keep],
                   units.open_cost[keep], units.open_column[keep],
                   parsed.required[parts.openable], parts.key_cost,
                   arrays.y_start + parts.openable, must, parts.lo, parts.hi)
    return model, units.stay[keep], units.open_stay[keep]


def solve_by_norm_branching(arrays: MipArrays, mip_gap: float, time_limit: float | None = None,
                            interrupt: threading.Event | None = None,
                            start: np.ndarray | None = None,
                            min_keep: int = MAX_KEEP_DECISIONS + 1) -> BackendResult | None:
    """The branch and bound above on ``arrays`` (see the module docstring); ``start``: a known
    plan (column values) used as the first incumbent when it meets every row. Models with
    fewer than ``min_keep`` keep decisions are the keep-set search's (the tests lower it)."""
    started = time.perf_counter()
    read = None if arrays.linking == "per_pair" else _read_model(arrays, min_keep)
    if read is None:
        return None  # not covered, or the p-median class (large_keepsets.py)
    try:
        import highspy
    except ImportError:
        return None
    model = read[0]
    search = _new_search(arrays, read, mip_gap, highspy)
    search.consider(known_plan(model, arrays, start))
    deadline = None if time_limit is None else started + time_limit
    try:
        stopped = search.run(deadline, interrupt)
    except Undecided:
        return None
    if search.incumbent is None or (stopped and search.nodes >= MAX_NODES):
        return None  # no plan, or not closed: the MIP solver decides
    best, x = search.incumbent
    bound = min(min((node[0] for node in search.heap), default=np.inf), search.pruned_bound,
                best) + arrays.offset
    objective = best + arrays.offset
    return BackendResult(SolveStatus.FEASIBLE if stopped else SolveStatus.OPTIMAL, objective,
                         x, relative_gap(objective, bound), time.perf_counter() - started, "highs",
                         message=NORM_KEEPSETS,
                         interrupted=stopped and interrupt is not None and interrupt.is_set(),
                         bound=bound)


def _new_search(arrays: MipArrays,
                read: tuple[LagrangianModel, np.ndarray | None, np.ndarray | None],
                mip_gap: float, highspy: Any) -> _Search:
    """The search over the model read by :func:`_read_model`, with its node LPs."""
    model, stay, open_stay = read
    integral = _integral_objective(arrays, model)
    merged = None
    if integral and stay is None:
        # flows that cost nothing (providers phase 1): areas that may use the same sites are
        # one unit (exact, see _merge); nationally all 3,312 areas are one. Unmerged, every
        # pair prices in at once and the LP of them all is slow (national lung_resection:
        # 122,544 pairs, 26 s CPU one LP).
        merged = _merge(model)
    # the node LP's new starts (parent bases, repaired infeasible nodes) where plans may
    # change among equal optima: travel-like models; moved and providers phase 1 as before
    plain = stay is None and merged is None
    lp = PairLP(model if merged is None else merged.model, highspy, stay, open_stay,
                expand=merged, repair=plain)
    tiers = None if stay is None or open_stay is None else moved_tiers(
        model, stay, open_stay, lambda m: PairLP(m, highspy, near_equal=True, repair=False))
    if tiers is None:
        search = _Search(model if merged is None else merged.model, arrays, lp, mip_gap,
                         integral)
    else:
        # moved: node bounds from the combinatorial bound and the LP of the grouped model
        # (one unit per baseline site nationally: 70 x 70 pairs instead of 3,375 x 70),
        # plans routed per group; the model's own LP only where the grouping could decide
        search = _Search(model, arrays, lp, mip_gap, integral, tiers)
    return search


#: (parent's bound, order, must, banned, the parent LP's basis or None)
_Node = tuple[float, int, np.ndarray, np.ndarray, Any]


class _Search:
    """Best-bound-first branch and bound over the keep decisions (module docstring)."""

    def __init__(self, model: LagrangianModel, arrays: MipArrays, lp: PairLP,
                 mip_gap: float, integral: bool = False, tiers: Tiers | None = None) -> None:
        self.m, self.arrays, self.lp, self.mip_gap = model, arrays, lp, mip_gap
        #: node bounds from a grouped relaxation first (moved), ``lp`` only where needed
        self.tiers = tiers
        #: each node's LP starts from its parent's basis (travel-like models, see ``repair``)
        self.warm = tiers is None and lp.repair
        self.exact_nodes = 0  # nodes whose bound came from ``lp`` (statistics)
        #: every plan's value is an integer (providers phase 1): bounds round up
        self.integral = integral
        self.lagr = Lagrangian(model)
        self.incumbent: tuple[float, np.ndarray] | None = None
        self.heap: list[_Node] = [(-np.inf, 0, model.must.copy(),
                                   np.zeros(model.k, dtype=bool), None)]
        self.counter, self.nodes = 1, 0
        self.pruned_bound = np.inf  # least bound of the nodes closed by the requested gap

    @property
    def best(self) -> float:
        return np.inf if self.incumbent is None else self.incumbent[0]

    def consider(self, plan: tuple[float, np.ndarray] | None) -> None:
        if plan is not None and plan[0] < self.best:
            self.incumbent = plan

    def _lift(self, bound: float) -> float:
        """With an integer-valued objective a bound rounds up to the next integer (less a
        tolerance for the LP's and the plans' rounding)."""
        if not self.integral or not np.isfinite(bound):
            return bound
        return float(np.ceil(bound - INTEGRAL_TOL * max(1.0, abs(bound))))

    def _fix_limit(self) -> float:
        """A site is fixed when its forced bound exceeds this: the incumbent, or with an
        integer-valued objective, the incumbent less one (only a strictly better plan, one
        whole unit below, is worth keeping the site free for)."""
        if not self.integral:
            return self.best
        return self.best - 1.0 + INTEGRAL_TOL * max(1.0, abs(self.best))

    def _plan(self, keep: np.ndarray) -> tuple[float, np.ndarray] | None:
        """The exact plan of keep set ``keep``; with a grouped relaxation, only when its
        bound of that set (the grouped LP with y fixed) leaves room below the incumbent
        (the model's LP with y fixed costs ~1,000 degenerate iterations)."""
        if self.tiers is not None and np.isfinite(self.best):
            fixed = keep.astype(float)
            must, banned = self.lagr.must.copy(), self.lagr.banned.copy()
            bounded = self._bound(self.tiers.lp, keep, ~keep, fixed, fixed)
            self.lagr.must, self.lagr.banned = must, banned
            if bounded is None:
                return None  # no plan, or no better one than the incumbent (within the gap)
        if self.tiers is not None:
            return self.tiers.plan(self.m, self.arrays, keep)
        return self.lp.plan(self.arrays, keep)

    def closed(self, bound: float) -> bool:
        """Whether a node with this bound holds no plan better than the incumbent by more
        than the requested gap (recorded for the reported bound)."""
        if bound >= _prune_limit(self.best, self.mip_gap, self.arrays.offset):
            self.pruned_bound = min(self.pruned_bound, bound)
            return True
        return False

    def run(self, deadline: float | None, interrupt: threading.Event | None) -> bool:
        """Search until closed (False) or stopped (True: time, interrupt, MAX_NODES)."""
        dive: _Node | None = None
        while self.heap or dive is not None:
            node = dive if dive is not None else heapq.heappop(self.heap)
            dive = None
            if self.closed(node[0]):
                continue
            if self.nodes >= MAX_NODES or (interrupt is not None and interrupt.is_set()) or (
                    deadline is not None and time.perf_counter() > deadline):
                self.heap.append(node)
                return True
            dive = self._node(node[2], node[3], node[4])
        return False

    def _bound(self, lp: PairLP, must: np.ndarray, banned: np.ndarray, lower: np.ndarray,
               upper: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray] | None:
        """(Lagrangian bound, site values g, chosen keep set, y) of a node from ``lp``'s relaxation;
        None when it has no plan or its bound closes it. The bound is the model's own
        Lagrangian at the LP's demand duals (a grouped LP's broadcast to its units): valid
        for any multipliers."""
        solved = lp.solve(lower, upper)
        if solved is None:
            return None  # no plan with these fixings (a grouped LP: nor has the model)
        u, y, _ = solved
        if lp is not self.lp and self.tiers is not None:
            u = u[self.tiers.group]
        lagr = self.lagr
        lagr.must, lagr.banned = must.copy(), banned.copy()
        value, g, chosen, _ = lagr.evaluate(u)  # valid for any u: the node's bound
        if not np.isfinite(value) or self.closed(self._lift(value)):
            return None
        # the Lagrangian value itself, not rounded up: the fixing adds each site's change
        # to it (a forced branch's bound is L + delta, which a rounded-up L + delta exceeds)
        return value, g, chosen, y

    def _floor(self, must: np.ndarray, banned: np.ndarray) -> float | None:
        """The combinatorial bound of a moved-like node (-inf: none), None when it closes
        the node; at the root its keep set is the first plan tried."""
        stays = None if self.tiers is None or self.tiers.stays is None else (
            self.tiers.stays.bound(must, banned))
        if stays is None:
            return -np.inf
        if self.nodes == 1 and not self.closed(stays[0]):
            self.consider(self._plan(stays[1]))  # the keep set attaining it
        return None if self.closed(stays[0]) else stays[0]

    def _tiered_bound(self, must: np.ndarray, banned: np.ndarray, lower: np.ndarray,
                      upper: np.ndarray, floor: float
                      ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray] | None:
        """:meth:`_bound` from the grouped LP, then from the model's own LP when the two
        could differ at the prune limit (within the grouping's loss: ties of the
        tie-break); without tiers from the model's own LP."""
        if self.tiers is None:
            return self._bound(self.lp, must, banned, lower, upper)
        bounded = self._bound(self.tiers.lp, must, banned, lower, upper)
        if bounded is not None and (max(bounded[0], floor) + self.tiers.loss
                                    >= _prune_limit(self.best, self.mip_gap,
                                                    self.arrays.offset)):
            self.exact_nodes += 1
            bounded = self._bound(self.lp, must, banned, lower, upper)
        return bounded

    def _rounding_closes(self, y: np.ndarray, free: np.ndarray, fractional: np.ndarray,
                         value: float) -> bool:
        """Round the node's LP to a plan (a new incumbent if better); True when that closes
        the node: the incumbent reaches its bound, or the LP was integral and the plan is
        its keep set's best."""
        lagr = self.lagr
        rounded = ((y > 0.5 - 1e-9) & free) | lagr.must
        plan = self._plan(rounded)
        if plan is None and self.integral and fractional.shape[0]:
            # providers phase 1: the LP spreads the volume over every site (y = D / ΣR);
            # keep as many as its y add up to, the largest first
            count = int(np.floor(y[free].sum() + 1e-6))
            order = np.nonzero(free)[0][np.argsort(-y[free], kind="stable")]
            rounded = lagr.must.copy()
            rounded[order[:count]] = True
            plan = self.lp.plan(self.arrays, rounded)
        self.consider(plan)
        if self.closed(value):
            return True  # the new incumbent closes this node
        if (self.tiers is not None and fractional.shape[0] == 0 and plan is not None
                and plan[0] - value > proven_tight(plan[0] + self.arrays.offset)):
            # a routed plan is only within the grouping's loss of its set's best: an integral
            # node (a leaf is then dropped) needs the set's exact plan, the model's LP
            plan = self.lp.plan(self.arrays, rounded)
            self.consider(plan)
            if self.closed(value):
                return True
        return bool(fractional.shape[0] == 0 and plan is not None
                    and plan[0] - value <= proven_tight(plan[0] + self.arrays.offset))

    def _node(self, must: np.ndarray, banned: np.ndarray, saved: Any = None) -> _Node | None:
        """Solve one node; push its children, return the one to dive into (None: closed).
        ``saved``: the parent LP's basis, the node's LP starts from it."""
        self.nodes += 1
        m, lagr = self.m, self.lagr
        if saved is not None and self.warm:
            self.lp.restore(saved)
        lower, upper = np.maximum(m.must, must).astype(float), (~banned).astype(float)
        floor = self._floor(lower > 0.5, banned)
        if floor is None:
            return None  # closed by the combinatorial bound
        bounded = self._tiered_bound(must, banned, lower, upper, floor)
        if bounded is None:
            return None  # no plan with these fixings, or closed
        lagr_value, g, chosen, y = bounded
        basis = self.lp.basis() if self.warm else None
        value = max(self._lift(lagr_value), floor)  # both valid: the node's bound
        if self.closed(value):
            return None
        free = ~lagr.must & ~lagr.banned
        fractional = np.nonzero(free & (y > 1e-6) & (y < 1 - 1e-6))[0]
        if ((self.nodes == 1 or self.nodes % ROUND_EVERY == 0 or fractional.shape[0] == 0)
                and self._rounding_closes(y, free, fractional, value)):
            return None
        if np.isfinite(self.best):
            lagr.fix(lagr_value, g, chosen, self._fix_limit())  # its own value only
            free = ~lagr.must & ~lagr.banned
        fractional = np.nonzero(free & (y > 1e-6) & (y < 1 - 1e-6))[0]
        if fractional.shape[0] == 0:
            # the LP bound and the plan disagree (tolerances): branch on any free site
            fractional = np.nonzero(free)[0]
            if fractional.shape[0] == 0:
                return None
        j = int(fractional[np.argmin(np.abs(y[fractional] - 0.5))])
        dive = None
        for side in (False, True):
            child_must, child_banned = lagr.must.copy(), lagr.banned.copy()
            (child_must if side else child_banned)[j] = True
            child = (value, self.counter, child_must, child_banned, basis)
            self.counter += 1
            if DIVE and side == bool(y[j] >= 0.5):
                dive = child  # next, on the warm LP (the side y leans to)
            else:
                heapq.heappush(self.heap, child)
        return dive


@dataclass
class _Merged:
    """A model whose areas with the same cost row (and the same cost without keep decision)
    are one unit each, and how a unit's flows go back to its areas: in proportion to their
    patients. Exact, also for the LP relaxation: a merged plan split in proportion meets
    every area's demand row, every norm (same inflow) and every link row x_ij <= d_i y_j
    (d_i's share of X_gj <= D_g y_j), and costs the same; an area plan summed per unit is a
    merged plan of the same cost."""

    model: LagrangianModel  # the merged model (units x keep decisions)
    original: LagrangianModel
    unit: np.ndarray  # (areas,) unit of each area
    share: np.ndarray  # (areas,) the area's share of its unit's patients

    def plan(self, arrays: MipArrays, lp: PairLP, flows: np.ndarray, opened: np.ndarray,
             keep: np.ndarray) -> tuple[float, np.ndarray] | None:
        o = self.original
        n_units = self.model.demand.shape[0]
        unit_flow = np.zeros((n_units, o.k))
        np.add.at(unit_flow, (lp.pair_area, lp.pair_site), flows)
        unit_open = np.zeros(n_units)
        np.add.at(unit_open, lp.open_areas, opened)
        area_flow = unit_flow[self.unit] * self.share[:, None]
        x = np.zeros(arrays.n_cols)
        used = (area_flow > 0) & (o.column >= 0)
        np.add.at(x, o.column[used], area_flow[used])
        area_open = unit_open[self.unit] * self.share
        with_open = (area_open > 0) & (o.open_column >= 0)
        np.add.at(x, o.open_column[with_open], area_open[with_open])
        x[o.y_column[keep]] = 1.0
        return known_plan(o, arrays, x)


def _merge(model: LagrangianModel) -> _Merged:
    """The model with one unit per distinct (cost row, cost without keep decision)."""
    rows = np.column_stack([model.cost, model.open_cost])
    _, first, unit = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    unit = unit.reshape(-1)
    demand = np.bincount(unit, weights=model.demand, minlength=first.shape[0])
    merged = replace(model, demand=demand, cost=model.cost[first], column=model.column[first],
                     open_cost=model.open_cost[first], open_column=model.open_column[first])
    return _Merged(merged, model, unit, model.demand / demand[unit])


def _integral_objective(arrays: MipArrays, model: LagrangianModel) -> bool:
    """Whether every plan's value (without offset) is an integer: only keep decisions cost,
    each an integer (``providers`` phase 1: -1 per kept pair)."""
    y_cols = np.zeros(arrays.n_cols, dtype=bool)
    y_cols[arrays.y_slice()] = True
    c = arrays.c
    return bool(np.all(c[~y_cols] == 0.0) and np.all(c[y_cols] == np.round(c[y_cols]))
                and model.y_column.shape[0] > 0)


def _prune_limit(best: float, mip_gap: float, offset: float = 0.0) -> float:
    """A node whose bound is at least this cannot hold a plan better than ``best`` by more
    than the requested gap (or the tolerance of proven_tight), both measured on the
    objective with its ``offset`` as HiGHS measures it (``moved`` is Σd - Σstay: without the
    offset of every patient the relative gap was 50x too loose; national og_systemic once
    closed 0.38 % off at a requested 1e-4)."""
    if not np.isfinite(best):
        return np.inf
    objective = best + offset
    return best - max(proven_tight(objective), mip_gap * abs(objective))


__all__ = ["NORM_KEEPSETS", "solve_by_norm_branching"]
