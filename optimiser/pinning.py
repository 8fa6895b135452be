"""Exact reduction of the planner objective's phase 2 when phase 1 found no unnecessary move.

With ``U* = 0`` phase 2 (planner.zero_moves_model) requires every counted baseline flow to
stay: ``flow >= b`` at self-sufficient and norm-free sites (column bounds) and
``flow - b·y >= 0`` where ``b`` counts on a keep decision. Much of the model is then pinned:

* a flow with a positive lower bound at a site with a keep decision forces that keep to 1
  (the linking rows allow no flow at a closed site), and a keep forced to 1 turns its
  ``flow - b·y >= 0`` rows into ``flow >= b`` bounds;
* an (area, treatment) whose lower bounds add up to its demand has every flow fixed (the
  demand row is an equation): its patients all stay where they are today.

Repeated to a fixed point, these are implications of the rows, so the feasible set does not
change. :func:`reduce_phase2` then removes the fixed flow columns (their rows' bounds shift by
their activity), the stay columns and their rows (phase 2 does not use them: ``stay = 0``
satisfies them, and they carry no cost), and rows left without a free column. The solver sees
only the displaced patients' flows and the keep decisions; :meth:`Reduction.expand` maps its
answer back to the full model's columns. Measured in benchmarks/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .formulation import MipArrays

#: bound / row tolerance of the reduction (patients per year); below the solvers' 1e-7 scale
#: on demand-sized rows, so no fixing relies on rounding
PIN_TOL = 1e-9


@dataclass
class Reduction:
    """A smaller MIP equivalent to ``full`` and the map back to ``full``'s columns."""

    model: MipArrays
    full: MipArrays
    free: np.ndarray  # columns of ``full`` kept in ``model``, in order
    values: np.ndarray  # value of every column of ``full`` that ``model`` does not carry

    def expand(self, reduced: np.ndarray) -> np.ndarray:
        """Column values of ``full`` from column values of ``model``."""
        out = self.values.copy()
        out[self.free] = reduced
        full = self.full
        n_stay = full.n_cols - full.stay_start
        if n_stay and full.stay_x is not None:
            b = full.col_upper[full.stay_start:]
            out[full.stay_start:] = np.minimum(out[full.stay_x], b)
        return out

    def restrict(self, values: np.ndarray | None) -> np.ndarray | None:
        """A column vector of ``full`` (e.g. a warm start) in the columns of ``model``."""
        if values is None or values.shape[0] != self.full.n_cols:
            return None
        return np.asarray(values)[self.free]


def _keep_column_of_flows(arrays: MipArrays) -> np.ndarray:
    """Per x column: the y column of its (site, treatment), -1 without a keep decision."""
    n_sites = int(max(arrays.x_site.max(initial=0), arrays.y_site.max(initial=0))) + 1
    n_treat = int(max(arrays.x_treat.max(initial=0), arrays.y_treat.max(initial=0))) + 1
    y_col = np.full((n_sites, n_treat), -1, dtype=np.int64)
    y_col[arrays.y_site, arrays.y_treat] = arrays.y_start + np.arange(arrays.n_y)
    return y_col[arrays.x_site, arrays.x_treat]


def pin_bounds(phase2: MipArrays, demand: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Column bounds of ``phase2`` tightened by the implications above (to a fixed point), or
    None when they contradict (the solver then decides infeasibility on the full model)."""
    lower, upper = phase2.col_lower.copy(), phase2.col_upper.copy()
    n_x = phase2.n_x
    y_of_x = _keep_column_of_flows(phase2)
    stay_x, stay_y = phase2.stay_x, phase2.stay_y
    assert stay_x is not None and stay_y is not None
    b = phase2.col_upper[phase2.stay_start:phase2.stay_start + stay_x.shape[0]]
    on_y = stay_y >= 0
    row_x, row_y, row_b = stay_x[on_y], stay_y[on_y], b[on_y]
    groups, group_of_x = np.unique(phase2.x_area * demand.shape[1] + phase2.x_treat,
                                   return_inverse=True)
    group_demand = demand.ravel()[groups]
    while True:
        before = (lower.copy(), upper.copy())
        xs = np.nonzero((lower[:n_x] > PIN_TOL) & (y_of_x >= 0))[0]
        forced_y = np.unique(y_of_x[xs])
        if np.any(upper[forced_y] < 1.0):
            return None
        lower[forced_y] = 1.0
        kept = lower[row_y] >= 1.0
        lower[row_x[kept]] = np.maximum(lower[row_x[kept]], row_b[kept])
        pinned = np.bincount(group_of_x, weights=lower[:n_x], minlength=groups.shape[0])
        if np.any(pinned > group_demand + PIN_TOL * np.maximum(1.0, group_demand)):
            return None
        full = pinned >= group_demand - PIN_TOL * np.maximum(1.0, group_demand)
        fix = full[group_of_x]
        upper[:n_x][fix] = lower[:n_x][fix]
        if np.any(lower > upper):
            return None
        if np.array_equal(before[0], lower) and np.array_equal(before[1], upper):
            return lower, upper


def reduce_phase2(phase2: MipArrays, demand: np.ndarray) -> Reduction | None:
    """The reduced phase-2 MIP, or None when the model is not of the expected form (single
    sourcing, stay columns used outside their rows) or the bounds contradict."""
    if phase2.stay_x is None or phase2.stay_y is None or phase2.conflicts:
        return None
    if np.any(phase2.x_scale != 1.0) or np.any(phase2.integrality[phase2.x_slice()]):
        return None
    if phase2.x_start != 0 or phase2.y_start != phase2.n_x:
        return None
    stay_rows = phase2.row_families.get("stay", (0, 0))
    csr = sp.csr_matrix(phase2.A)
    row_of_entry = np.repeat(np.arange(phase2.n_rows), np.diff(csr.indptr))
    stay_entry_rows = row_of_entry[csr.indices >= phase2.stay_start]
    if stay_entry_rows.size and (stay_entry_rows.min() < stay_rows[0]
                                 or stay_entry_rows.max() >= stay_rows[1]):
        return None
    if np.any(phase2.c[phase2.stay_start:] != 0.0):
        return None
    bounds = pin_bounds(phase2, demand)
    if bounds is None:
        return None
    lower, upper = bounds
    n_x, n_y = phase2.n_x, phase2.n_y
    free_x = np.nonzero(lower[:n_x] < upper[:n_x])[0]
    free = np.concatenate([free_x, phase2.y_start + np.arange(n_y)])
    values = np.zeros(phase2.n_cols)
    values[:n_x] = lower[:n_x]
    values[free] = 0.0
    keep_rows = np.ones(phase2.n_rows, dtype=bool)
    keep_rows[stay_rows[0]:stay_rows[1]] = False
    shift = csr @ values  # only the fixed flows are non-zero in ``values`` here
    sub = csr[:, free]
    empty = np.diff(sub.indptr) == 0
    row_lo, row_hi = phase2.row_lower - shift, phase2.row_upper - shift
    tol = 1e-7 * np.maximum(1.0, np.abs(shift))
    dead = keep_rows & empty
    if np.any(row_lo[dead] > tol[dead]) or np.any(row_hi[dead] < -tol[dead]):
        return None
    keep_rows &= ~empty
    model = phase2.with_objective(phase2.c[free],
                                  phase2.offset + float(phase2.c[:n_x] @ values[:n_x]))
    model.A = sp.csr_matrix(sub[keep_rows])
    model.row_lower, model.row_upper = row_lo[keep_rows], row_hi[keep_rows]
    model.col_lower, model.col_upper = lower[free], upper[free]
    model.integrality = phase2.integrality[free]
    model.x_area, model.x_site = phase2.x_area[free_x], phase2.x_site[free_x]
    model.x_treat, model.x_scale = phase2.x_treat[free_x], phase2.x_scale[free_x]
    model.y_start = free_x.shape[0]
    model.stay_start = model.y_start + n_y
    empty_index = np.zeros(0, dtype=np.int64)
    model.stay_area = model.stay_site = model.stay_treat = empty_index
    model.stay_x = model.stay_y = None
    model.moves_c = None
    model.row_families = {}
    return Reduction(model=model, full=phase2, free=free, values=values)
