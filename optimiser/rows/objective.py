"""The objective terms and the ``stay`` rows they need.

Terms (``formulation.objective_weights`` gives the weights; a single objective is weight 1):

* ``travel``: patient-minutes, Σ travel·flow;
* ``moved``: patients not treated at their baseline site, Σ d - Σ stay, plus a tiny travel
  tie-break (at most ``TIE_BREAK_TOTAL`` patients in total) when travel has no weight;
* ``providers``: -Σ y (phase 1 of the lexicographic ``providers`` objective, strategies.py);
* ``planner``: unnecessary moves, ``moves_c @ v + moves_offset`` (formulation.unnecessary_moves);
  computed whenever there are stay columns, since planner.py uses it for its phases.
"""

from __future__ import annotations

import numpy as np

from .base import Build, Family, ObjectiveTerm
from .keepsets import KeepSetModel, block_is

#: Weight of the travel tie-break in the ``moved`` objective, per patient-minute, relative to one
#: moved patient. It is scaled by 1 / (total demand x max travel) so that the whole tie-break term
#: is below TIE_BREAK_TOTAL patients: it only picks the shortest travel among (near-)optimal
#: reallocations and cannot change the number of moved patients by more than that.
TIE_BREAK_TOTAL = 1e-4


def build_stay(b: Build) -> None:
    """stay <= flow:  stay - scale·x <= 0."""
    n = b.n_stay
    b.add_rows(
        "stay",
        np.concatenate([np.arange(n), np.arange(n)]),
        np.concatenate([b.stay_start + np.arange(n), b.stay_x]),
        np.concatenate([np.ones(n), -b.x_scale[b.stay_x]]),
        np.full(n, -np.inf), np.zeros(n),
    )


def _x_travel(b: Build) -> np.ndarray:
    return b.instance.travel_min[b.x_area, b.x_site] * b.x_scale  # finite: allowed pairs only


def add_travel(b: Build, weight: float) -> None:
    if weight:
        b.c[:b.n_x] += weight * _x_travel(b)


def add_moved(b: Build, weight: float) -> None:
    if not weight:
        return
    demand = b.instance.demand
    total = float(demand[:, list(b.treatments)].sum()) if b.treatments else 0.0
    b.offset += weight * total
    b.c[b.stay_start:] -= weight
    if not b.weights["travel"] and b.n_x:
        # prefer less travel among equally-moved solutions; the whole term is at most
        # TIE_BREAK_TOTAL patients (total patient-minutes <= total x max travel)
        max_minutes = float(b.instance.travel_min[b.x_area, b.x_site].max())
        scale = max(total * max_minutes, 1.0)
        b.c[:b.n_x] += weight * TIE_BREAK_TOTAL / scale * _x_travel(b)


def add_providers(b: Build, weight: float) -> None:
    if weight:
        b.c[b.y_start:b.y_start + b.n_y] -= weight


def add_planner(b: Build, weight: float) -> None:
    """unnecessary moves = Σ b·[site keeps, has no keep decision or is self-sufficient]
    - Σ stay   (stay <= min(b, flow); formulation.unnecessary_moves)."""
    if not b.use_stay:
        return
    moves_c = np.zeros(b.n_cols)
    moves_c[b.stay_start:] = -1.0
    own_ok = b.self_sufficient()
    s_site, s_treat = b.x_site[b.stay_x], b.x_treat[b.stay_x]
    ycol = b.y_col[s_site, s_treat]
    on_y = (ycol >= 0) & ~own_ok[s_site, s_treat]
    np.add.at(moves_c, ycol[on_y], b.stay_ub[on_y])
    b.moves_c = moves_c
    b.moves_offset = float(b.stay_ub[~on_y].sum())
    b.stay_y = np.where(on_y, ycol, -1)
    if weight:
        b.c += weight * moves_c
        b.offset += weight * b.moves_offset


def read_stay(model: KeepSetModel, start: int, stop: int) -> bool:
    """stay <= flow of the stay's own column, one row per stay column."""
    arrays = model.arrays
    if not model.bounds_are(start, stop, -np.inf, 0.0):
        return False
    n_stay = arrays.n_cols - arrays.stay_start
    if stop - start != n_stay or (n_stay and arrays.stay_x is None):
        return False
    if n_stay:
        assert arrays.stay_x is not None
        if not _stay_rows_are(model, start, stop, arrays.stay_start, arrays.stay_x):
            return False
    model.stays_read = True
    return True


def _stay_rows_are(model: KeepSetModel, start: int, stop: int, stay_start: int,
                   stay_x: np.ndarray) -> bool:
    """Row r holds exactly stay column r (coefficient 1) and its x column (-1). The stored
    entries are compared first (the built model's form); anything else is judged as a block
    (explicit zeros and entry order do not matter)."""
    n_stay = stop - start
    row, col, val = model.entries(start, stop)
    if row.shape[0] == 2 * n_stay:
        pairs, values = col.reshape(-1, 2), val.reshape(-1, 2)
        stay_first = pairs[:, 0] > pairs[:, 1]
        stay_col = np.where(stay_first, pairs[:, 0], pairs[:, 1])
        x_col = np.where(stay_first, pairs[:, 1], pairs[:, 0])
        if (np.all(row.reshape(-1, 2) == np.arange(n_stay)[:, None])
                and np.array_equal(stay_col, stay_start + np.arange(n_stay))
                and np.array_equal(x_col, stay_x)
                and np.all(np.where(stay_first, values[:, 0], values[:, 1]) == 1.0)
                and np.all(np.where(stay_first, values[:, 1], values[:, 0]) == -1.0)):
            return True
    r = np.arange(n_stay)
    return block_is(model.rows(start, stop), np.concatenate([r, r]),
                    np.concatenate([stay_start + r, stay_x]),
                    np.concatenate([np.ones(n_stay), -np.ones(n_stay)]))


STAY = Family("stay", "rows", ("objective", "objective_weights"), build_stay, None,
              doc="stay <= flow, bookkeeping of the moved / planner objectives (no constraint "
                  "of the plan, nothing to check)", keep_sets=read_stay)

OBJECTIVE_TERMS: tuple[ObjectiveTerm, ...] = (
    ObjectiveTerm("travel", add_travel, "patient-minutes"),
    ObjectiveTerm("moved", add_moved, "patients not treated at their baseline site"),
    ObjectiveTerm("providers", add_providers, "minus the kept (site, treatment) pairs"),
    ObjectiveTerm("planner", add_planner, "unnecessary moves (docs/OBJECTIVES.md)"),
)
