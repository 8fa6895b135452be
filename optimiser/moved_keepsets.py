"""What optimiser/norm_keepsets.py's branch and bound reads on a model with stay columns
(the ``moved`` objective; issue 23, goal 3): national kidney_local, pancreas_systemic,
kidney_systemic and pancreas_ercp did not close in 60 s each, their node LPs (3,375 units x
70 sites, 0 / 1 patient costs plus a ~1e-8 tie-break) taking ~1,000 degenerate dual simplex
iterations a node, and the LP bound itself 1.5 % below the optimum on kidney_local.

* :class:`Grouped`: a relaxation with one unit per set of units that share their options
  (nationally: one per baseline hospital, 70 x 70 pairs), each cost the least of its units';
  its node LPs take milliseconds. Within ``loss`` (the tie-break, <= 1e-4 patients) of the
  model's own LP, which norm_keepsets.py solves only where that could decide a node.
* :meth:`Tiers.plan`: the plan of a keep set from the grouped LP, each group's patients
  routed to the sites its flow reaches by least cost (a small transportation LP).
* :class:`StayBound`: a combinatorial bound per node (patients of a closed hospital move;
  a kept hospital below its norm takes that shortfall from patients who move), minimised
  exactly over every keep set of the node by a Pareto frontier. On kidney_local it is the
  optimum where the LP bound was 1.5 % short.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from .backends import solve_lp_highs
from .formulation import MipArrays
from .lagrangian import LagrangianModel, known_plan

#: group the units only when that leaves at most this share of them (else no gain)
GROUP_SHARE = 0.5
#: StayBound gives up (no bound) beyond this many Pareto points
MAX_FRONTIER = 4096
#: the grouping is used only when it loses at most this share of a stay's saving per
#: patient (``moved``: the tie-break, <= 1e-4 patients in all); a model whose flows cost
#: travel (the planner's zero-moves phase 2) would lose far more, and pay for the grouped
#: LP besides its own at most nodes
GROUP_LOSS = 1e-3


@dataclass
class Grouped:
    """A relaxation of a model with stay columns (``moved``): the units with the same
    options (the same sites they may use, the same baseline site, the same kind of site
    without keep decision) are one group each, whose cost to a site is the least of its
    units' (they differ by the tie-break only: ~1e-8 a patient-minute).

    It is a relaxation, for the LP and for any fixing of y: a plan of the model summed per
    group meets the group's demand row, every norm (the same inflow), every link row
    (Σ_{u in g} x_uj <= Σ_{u in g} d_u y_j = D_g y_j) and the cap, and costs at least as
    much (c_uj >= C_gj). So every bound of the grouped model is a bound of the model.
    The other way, a grouped plan split in proportion to the units' patients is a plan of
    the model costing at most ``loss`` = Σ_u d_u max_j (c_uj - C_gj) more: the most a
    grouped bound can lie below the model's own."""

    model: LagrangianModel  # groups x keep decisions
    group: np.ndarray  # (units,) group of each unit
    loss: float


def group_units(model: LagrangianModel, stay: np.ndarray, open_stay: np.ndarray
                ) -> Grouped | None:
    """The grouped relaxation of a model with stay columns (see :class:`Grouped`); None
    when grouping would not shrink it by GROUP_SHARE."""
    n, k = model.cost.shape
    finite = np.isfinite(model.cost)
    has_open = np.isfinite(model.open_cost)
    key = np.column_stack([finite, stay >= 0, has_open, open_stay >= 0])
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group = group.reshape(-1)
    n_groups = first.shape[0]
    if n_groups > GROUP_SHARE * n:
        return None
    cost = np.full((n_groups, k), np.inf)
    np.minimum.at(cost, group, model.cost)
    open_cost = np.full(n_groups, np.inf)
    np.minimum.at(open_cost, group, model.open_cost)
    with np.errstate(invalid="ignore"):
        spread = np.where(finite, model.cost - cost[group], 0.0).max(axis=1, initial=0.0)
        open_spread = np.where(has_open, model.open_cost - open_cost[group], 0.0)
    loss = float(model.demand @ np.maximum(spread, open_spread))
    demand = np.bincount(group, weights=model.demand, minlength=n_groups)
    grouped = replace(model, demand=demand, cost=cost, column=model.column[first],
                      open_cost=open_cost, open_column=model.open_column[first])
    return Grouped(grouped, group, loss)


@dataclass
class Tiers:
    """Node bounds of norm_keepsets.py's search from a grouped relaxation first (``lp``,
    its duals broadcast to the units by ``group``), the model's own LP only where they
    cannot decide; the plans of keep sets by :meth:`plan`; a combinatorial bound per node
    (``stays``, None where the model is outside it)."""

    lp: Any  # pair_lp.PairLP of the grouped model (not imported: no cycle)
    group: np.ndarray
    loss: float
    stay: np.ndarray  # (units, bits) stay column of the model's units, -1 none
    open_stay: np.ndarray  # (units,)
    stays: StayBound | None = None

    def plan(self, m: LagrangianModel, arrays: MipArrays, keep: np.ndarray
             ) -> tuple[float, np.ndarray] | None:
        """A plan of keep set ``keep`` within ``loss`` of its best: the grouped LP with y
        fixed (how many patients of each group go to each site), then each group's patients
        routed to those sites by least cost (a transportation LP of the units of each group
        and the sites its flow reaches: ~10^4 columns, where the model's own LP with y fixed
        has 3,375 x 70 degenerate ones: 8 s CPU a pricing round on national
        kidney_systemic). It costs at most the grouped optimum plus ``loss``, so at most
        ``loss`` above the set's best; checked against every row of the model."""
        fixed = keep.astype(float)
        solved = self.lp.solve(fixed, fixed)
        if solved is None:
            return None
        values = solved[2]
        flows, opened = values[self.lp.pair_start:], values[self.lp.k:self.lp.pair_start]
        n_groups = self.lp.n
        # destinations: (group, site) with flow; site k stands for "its site without decision"
        dest_group = np.concatenate([self.lp.pair_area, self.lp.open_areas])
        dest_site = np.concatenate([self.lp.pair_site, np.full(opened.shape[0], m.k)])
        dest_flow = np.concatenate([flows, opened])
        used = dest_flow > 0
        dest_group, dest_site, dest_flow = dest_group[used], dest_site[used], dest_flow[used]
        total = np.bincount(dest_group, weights=dest_flow, minlength=n_groups)
        demand = np.bincount(self.group, weights=m.demand, minlength=n_groups)
        if np.any((demand > 0) & (total <= 0)):
            return None
        dest_flow = dest_flow * (demand[dest_group] / total[dest_group])  # exact balance
        order = np.argsort(self.group, kind="stable")
        first = np.searchsorted(self.group[order], np.arange(n_groups + 1))
        counts = np.diff(first)[dest_group]
        dest = np.repeat(np.arange(dest_group.shape[0]), counts)
        offset = np.arange(dest.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
        unit = order[np.repeat(first[dest_group], counts) + offset]
        site = dest_site[dest]
        to_bit = site < m.k
        bit = np.minimum(site, m.k - 1)
        cost = np.where(to_bit, m.cost[unit, bit], m.open_cost[unit])
        n_cols, n_units = unit.shape[0], m.demand.shape[0]
        rows = np.concatenate([unit, n_units + dest])
        matrix = sp.csc_matrix((np.ones(2 * n_cols), (rows, np.tile(np.arange(n_cols), 2))),
                               shape=(n_units + dest_flow.shape[0], n_cols))
        bounds = np.concatenate([m.demand, dest_flow])
        routed = solve_lp_highs(cost, matrix, bounds, bounds, presolve=False)
        if routed is None:
            return None
        flow = routed[1]
        x = np.zeros(arrays.n_cols)
        np.add.at(x, np.where(to_bit, m.column[unit, bit], m.open_column[unit]), flow)
        stay = np.where(to_bit, self.stay[unit, bit], self.open_stay[unit])
        np.add.at(x, stay[stay >= 0], flow[stay >= 0])
        x[m.y_column[keep]] = 1.0
        return known_plan(m, arrays, x)


def moved_tiers(model: LagrangianModel, stay: np.ndarray, open_stay: np.ndarray,
                grouped_lp: Callable[[LagrangianModel], Any]) -> Tiers | None:
    """The :class:`Tiers` of a model with stay columns, or None (the plain search) unless
    stays pay (a :class:`StayBound` exists) and the grouping loses at most GROUP_LOSS of a
    stay's saving per patient. ``grouped_lp`` builds the LP of the grouped model."""
    stays = stay_bound(model, stay, open_stay)
    if stays is None:
        return None
    grouped = group_units(model, stay, open_stay)
    if grouped is None or grouped.loss > GROUP_LOSS * stays.w * stays.total:
        return None
    return Tiers(grouped_lp(grouped.model), grouped.group, grouped.loss, stay, open_stay,
                 stays)


@dataclass
class StayBound:
    """A lower bound of a ``moved``-like model per node, without an LP.

    Let s_u be the patients of unit u at its baseline site (its stay option). Every
    plan's value is Σ_u Σ_o c_uo x_uo + Σ_j f_j y_j >= -w Σ_u s_u when keeping costs
    nothing or more (f >= 0), every option but a unit's stay costs nothing or more, and a
    stay at least -w per patient (``moved``: -1 plus the tie-break). And Σ_u s_u <= D - M:

    * **patients of a closed hospital move**: a unit whose baseline site has a keep
      decision that is not kept has s_u = 0; a unit without a stay option (patients beyond
      the baseline) too. C(S) = Σ of their patients, so Σ_u (d_u - s_u) >= C(S);
    * **a kept hospital's shortfall is filled by patients who move**: site j kept receives
      at least R_j, of which at most own_j (the patients whose baseline it is) stay, so at
      least (R_j - own_j)^+ arrive from elsewhere; each of them is one patient not at their
      own site, once: Σ_u (d_u - s_u) >= F(S) = Σ_{j in S} (R_j - own_j)^+.

    So a keep set's every plan costs at least -w (D - max(C(S), F(S))), and a node's at
    least -w (D - M) with M the least max(C, F) over the keep sets S of the node that may
    have a plan: its forced keeps, none of its closures, a count within the cap, and
    Σ_{j in S} R_j <= D (every kept site's norm is met by distinct patients); the last is
    relaxed to "the count's smallest norms fit in D" (exact when the norms are equal, as
    for one treatment nationally), which only lowers M. M is exact by the Pareto
    frontier of (C, F) per count: each free site is closed (C + own_j) or kept (F +
    short_j, count + 1), and a point dominated by one of the same count (no more C nor F)
    cannot give a smaller max(C, F) in any completion. No travel limit enters: with one
    (a patient may not reach every site) the bound is still valid, only weaker. Sums are
    exact up to float rounding: a relative 1e-9 is taken off."""

    own: np.ndarray  # (k,) patients whose stay option is at bit j
    short: np.ndarray  # (k,) (R_j - own_j)^+
    never: float  # patients without any stay option (they always move: part of C)
    total: float  # D: every unit's patients
    w: float
    required: np.ndarray  # (k,) R_j
    lo: int  # the cap on the count kept
    hi: int

    def bound(self, must: np.ndarray, banned: np.ndarray) -> tuple[float, np.ndarray] | None:
        """(bound of the node's every plan, a keep set attaining M), or None when the
        frontier grows past MAX_FRONTIER or no count of kept sites is possible."""
        free = np.nonzero(~must & ~banned)[0]
        n_must = int(must.sum())
        # a count c of kept sites needs at least its c smallest norms of patients
        least = float(self.required[must].sum()) + np.concatenate(
            [[0.0], np.cumsum(np.sort(self.required[free]))])
        counts = n_must + np.arange(free.shape[0] + 1)
        possible = ((counts >= self.lo) & (counts <= self.hi)
                    & (least <= self.total * (1 + 1e-9) + 1e-9))
        if not possible.any():
            return None
        n = np.array([n_must])
        c = np.array([self.never + float(self.own[banned].sum())])
        f = np.array([float(self.short[must].sum())])
        chosen = np.zeros((1, 0), dtype=bool)  # per point: which free sites it keeps
        for j in free.tolist():
            cand_n = np.concatenate([n, n + 1])
            cand_c = np.concatenate([c + self.own[j], c])
            cand_f = np.concatenate([f, f + self.short[j]])
            kept = np.repeat([False, True], c.shape[0])
            history = np.concatenate([chosen, chosen])
            front = _pareto(cand_n, cand_c, cand_f)
            n, c, f = cand_n[front], cand_c[front], cand_f[front]
            chosen = np.column_stack([history[front], kept[front]])
            if c.shape[0] > MAX_FRONTIER:
                return None
        worst = np.where(possible[n - n_must], np.maximum(c, f), np.inf)
        at = int(np.argmin(worst))
        if not np.isfinite(worst[at]):
            return None
        moved = float(worst[at]) - 1e-9 * max(1.0, self.total)
        keep = must.copy()
        keep[free[chosen[at]]] = True
        return -self.w * (self.total - moved), keep


def _pareto(count: np.ndarray, c: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Indices of the points not dominated by one of the same count (no larger C and F,
    one of them smaller; of equal points the first)."""
    order = np.lexsort((f, c, count))
    f_sorted, n_sorted = f[order], count[order]
    keep = np.zeros(order.shape[0], dtype=bool)
    starts = np.nonzero(np.concatenate([[True], n_sorted[1:] != n_sorted[:-1]]))[0]
    for lo, hi in zip(starts, np.append(starts[1:], order.shape[0]), strict=True):
        best_before = np.concatenate([[np.inf], np.minimum.accumulate(f_sorted[lo:hi])[:-1]])
        keep[lo:hi] = f_sorted[lo:hi] < best_before
    return order[keep]


def stay_bound(model: LagrangianModel, stay: np.ndarray, open_stay: np.ndarray
               ) -> StayBound | None:
    """The :class:`StayBound` of a model with stay columns, None outside its assumptions
    (a keep that pays, an option other than a stay that pays, a unit with two stay
    options)."""
    k = model.cost.shape[1]
    own_option = stay >= 0
    if np.any(model.key_cost < 0) or np.any(own_option.sum(axis=1) + (open_stay >= 0) > 1):
        return None
    others = np.where(own_option | ~np.isfinite(model.cost), 0.0, model.cost)
    open_other = np.where((open_stay >= 0) | ~np.isfinite(model.open_cost), 0.0,
                          model.open_cost)
    if np.any(others < 0) or np.any(open_other < 0):
        return None
    stay_cost = np.concatenate([model.cost[own_option],
                                model.open_cost[open_stay >= 0]])
    if stay_cost.shape[0] == 0 or not np.all(np.isfinite(stay_cost)):
        return None
    w = max(0.0, -float(stay_cost.min()))
    if w == 0.0:
        return None
    unit_bit = np.where(own_option.any(axis=1), np.argmax(own_option, axis=1), -1)
    at_bit = unit_bit >= 0
    own = np.bincount(unit_bit[at_bit], weights=model.demand[at_bit], minlength=k)
    short = np.maximum(model.required - own, 0.0)
    at_open = open_stay >= 0
    never = float(model.demand[~at_bit & ~at_open].sum())
    return StayBound(own, short, never, float(model.demand.sum()), w,
                     model.required.astype(float), model.lo, model.hi)


__all__ = ["Grouped", "StayBound", "Tiers", "group_units", "moved_tiers", "stay_bound"]
