"""``capacity``: Σ_a flow <= cap per (site, treatment), cap = min(factor x baseline, caps).

The ``link`` rows carry the capacity of pairs with a keep decision (U = min(cap, reach)); these
rows cap the treatments without a norm, and under per-pair linking also the capped keep pairs.
"""

from __future__ import annotations

import numpy as np

from herschik.i18n import _

from ..tolerances import DIAGNOSIS_TOL
from .base import Build, CheckContext, DiagnosisContext, Family, Finding, Reason, fmt
from .checking import TOL, named_pairs


def build_capacity(b: Build) -> None:
    cap = b.capacity
    if b.linking == "per_pair":
        with_y = np.nonzero(np.isfinite(cap[b.y_site, b.y_treat]))[0]
    else:
        with_y = np.zeros(0, dtype=np.int64)
    tsel = list(b.treatments)
    no_norm = np.zeros(cap.shape, dtype=bool)
    no_norm[:, tsel] = (b.candidate & ~b.has_norm & np.isfinite(cap))[:, tsel]
    nn_s, nn_t = np.nonzero(no_norm)
    cs = np.concatenate([nn_s, b.y_site[with_y]]).astype(np.int64)
    ct = np.concatenate([nn_t, b.y_treat[with_y]]).astype(np.int64)
    c_row = np.full(cap.shape, -1, dtype=np.int64)
    c_row[cs, ct] = np.arange(cs.shape[0])
    xr = c_row[b.x_site, b.x_treat]
    xc = np.nonzero(xr >= 0)[0]
    b.add_rows("capacity", xr[xc], xc, b.x_scale[xc], np.full(cs.shape[0], -np.inf),
               cap[cs, ct])


def check_capacity(ctx: CheckContext) -> list[str]:
    instance, params = ctx.instance, ctx.params
    cap = np.full((len(instance.sites), len(instance.treatments)), np.inf)
    if params.capacity_factor is not None:
        cap = np.minimum(cap, params.capacity_factor * instance.baseline_volume)
    for item in params.capacity:
        for s, t in named_pairs([item], instance):
            cap[s, t] = min(cap[s, t], item.max_patients)
    volume = ctx.volume
    return [
        f"site {ctx.site_labels[s]}, {ctx.treatment_ids[t]}: {volume[s, t]:.4f} patients "
        f"exceed capacity {cap[s, t]:.4f}"
        for s, t in zip(*np.nonzero(volume > cap + TOL), strict=True)
    ]


def reason_capacity(ctx: DiagnosisContext) -> Finding | None:
    """Not enough capacity in total at the sites able to provide a treatment."""
    found = {}
    for t in ctx.treatments:
        total_cap = float(np.where(ctx.viable[:, t], ctx.usable[:, t], 0.0).sum())
        total_demand = float(ctx.instance.demand[:, t].sum())
        if total_demand > total_cap + DIAGNOSIS_TOL and not ctx.no_site[:, t].any():
            found[t] = {"demand": round(total_demand, 3), "capacity": round(total_cap, 3)}
    if not found:
        return None
    t, info = next(iter(found.items()))
    tids = ctx.instance.treatment_ids
    return Finding(_("{treatment}: demand {demand}/yr exceeds the capacity of the sites able "
                     "to provide it ({capacity})", treatment=ctx.tlabel(t),
                     demand=fmt(info["demand"]), capacity=fmt(info["capacity"])),
                   "capacity_shortfall", {tids[t]: v for t, v in found.items()})


CAPACITY = Family("capacity", "rows", ("capacity_factor", "capacity"), build_capacity,
                  check_capacity, (Reason(50, reason_capacity),),
                  doc="no site treats more than its capacity")
