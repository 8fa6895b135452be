"""Baseline flows: who treats whom today, reconstructed from site volumes.

Public data give the yearly volume per hospital and the demand per origin area, not the flows
between them. :func:`reconstruct_baseline_flows` assumes patients went as close to home as the
observed volumes allow: per treatment, the minimum patient-minutes transportation LP that sends
each area's demand to the sites with baseline volume > 0 such that every site receives exactly
its volume.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog


def reconstruct_baseline_flows(
    demand: np.ndarray,
    travel_min: np.ndarray,
    baseline_volume: np.ndarray,
    treatment_ids: list[str] | tuple[str, ...] | None = None,
) -> np.ndarray:
    """Minimum patient-minutes flows (A, S, T) that reproduce the baseline site volumes.

    Per treatment: volumes are first scaled proportionally to the treatment's total demand (the
    two may differ slightly, e.g. rounding in published volumes); only (area, site) pairs with
    demand > 0, volume > 0 and a finite travel time are allowed. Raises ``ValueError`` naming the
    treatment when the volumes cannot be reproduced (e.g. a site no area can reach). Solved with
    HiGHS through ``scipy.optimize.linprog``, sparse, one LP per treatment; deterministic.
    """
    demand = np.asarray(demand, dtype=float)
    travel_min = np.asarray(travel_min, dtype=float)
    baseline_volume = np.asarray(baseline_volume, dtype=float)
    n_areas, n_treat = demand.shape
    n_sites = travel_min.shape[1]
    if travel_min.shape[0] != n_areas or baseline_volume.shape != (n_sites, n_treat):
        raise ValueError("reconstruct_baseline_flows: inconsistent shapes "
                         f"{demand.shape}, {travel_min.shape}, {baseline_volume.shape}")
    names = list(treatment_ids) if treatment_ids is not None else [str(t) for t in range(n_treat)]
    flows = np.zeros((n_areas, n_sites, n_treat))
    reachable = np.isfinite(travel_min)
    for t in range(n_treat):
        d = demand[:, t]
        v = baseline_volume[:, t]
        total_d, total_v = float(d.sum()), float(v.sum())
        if total_d <= 0:
            if total_v > 0:
                raise ValueError(f"treatment {names[t]}: baseline volume {total_v:g} but no demand")
            continue
        if total_v <= 0:
            raise ValueError(f"treatment {names[t]}: demand {total_d:g} but no site has volume")
        v = v * (total_d / total_v)
        areas = np.nonzero(d > 0)[0]
        sites = np.nonzero(v > 0)[0]
        ok = reachable[np.ix_(areas, sites)]
        ai, si = np.nonzero(ok)
        n_var = ai.shape[0]
        cost = travel_min[areas[ai], sites[si]]
        # equality rows: one per area (supply), one per site (volume)
        rows = np.concatenate([ai, areas.shape[0] + si])
        cols = np.concatenate([np.arange(n_var), np.arange(n_var)])
        a_eq = sp.csr_matrix((np.ones(2 * n_var), (rows, cols)),
                             shape=(areas.shape[0] + sites.shape[0], n_var))
        b_eq = np.concatenate([d[areas], v[sites]])
        if n_var == 0 or np.any(np.diff(a_eq.indptr) == 0):
            raise ValueError(f"treatment {names[t]}: an area or a site with baseline volume "
                             "cannot be reached, so the baseline volumes cannot be reproduced")
        res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        if res.status != 0:
            raise ValueError(f"treatment {names[t]}: baseline volumes cannot be reproduced from "
                             f"the demand within reachable pairs ({res.message})")
        x = np.where(res.x > 1e-9, res.x, 0.0)
        flows[areas[ai], sites[si], t] = x
    return flows
