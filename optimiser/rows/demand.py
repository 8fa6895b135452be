"""``demand``: every patient is treated, Σ_s flow[a, s, t] = d[a, t] (single sourcing: Σ z = 1)."""

from __future__ import annotations

import numpy as np

from .base import Build, CheckContext, Family, concat_int
from .checking import TOL
from .keepsets import KeepSetModel, single_entries


def build_demand(b: Build) -> None:
    demand = b.instance.demand
    d_a_parts = [np.nonzero(demand[:, t] > 0)[0] for t in b.treatments]
    d_a = concat_int(d_a_parts)
    d_t = concat_int([np.full(p.shape[0], t, dtype=np.int64)
                      for p, t in zip(d_a_parts, b.treatments, strict=True)])
    d_row = np.full(demand.shape, -1, dtype=np.int64)
    d_row[d_a, d_t] = np.arange(d_a.shape[0])
    rhs = np.ones(d_a.shape[0]) if b.params.single_sourcing else demand[d_a, d_t]
    b.add_rows("demand", d_row[b.x_area, b.x_treat], np.arange(b.n_x), np.ones(b.n_x), rhs,
               rhs.copy())


def check_demand(ctx: CheckContext) -> list[str]:
    demand = ctx.instance.demand
    received = ctx.flow.sum(axis=1)
    gap = np.abs(received - demand)
    return [
        f"demand of area {ctx.area_labels[a]} for {ctx.treatment_ids[t]} is {demand[a, t]:.4f} "
        f"but {received[a, t]:.4f} is assigned"
        for a, t in zip(*np.nonzero(gap > TOL * np.maximum(1.0, demand)), strict=True)
    ]


def read_demand(model: KeepSetModel, start: int, stop: int) -> bool:
    """Each flow in exactly one demand row (its area), equality rows; the areas' patients."""
    arrays = model.arrays
    demand = arrays.row_upper[start:stop]
    if np.any(arrays.row_lower[start:stop] != demand):
        return False
    row, col, _ = model.entries(start, stop)
    demand_row = single_entries(row, col, arrays.x_start, arrays.n_x)
    if demand_row is None or np.any(demand_row < 0):
        return False
    # a flow bounded below its area's demand is pinned or capped: not the keep-set model
    if np.any(arrays.col_upper[arrays.x_slice()] < demand[demand_row]):
        return False
    model.demand_row, model.demand = demand_row, demand
    return True


DEMAND = Family("demand", "rows", ("single_sourcing",), build_demand, check_demand,
                doc="every patient is treated", keep_sets=read_demand)
