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

from .tolerances import FLOW_EPS, REDUCED_COST_TOL


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
        x, ai, si = _transport(d[areas], v[sites], travel_min[np.ix_(areas, sites)], names[t])
        flows[areas[ai], sites[si], t] = x
    return flows


#: nearest sites per area in the first restricted LP (column generation adds what is missing)
NEAREST_SITES = 8
#: nearest areas per site in the first restricted LP (so remote sites can be filled)
NEAREST_AREAS = 30


def _transport(supply: np.ndarray, volume: np.ndarray, cost: np.ndarray, name: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min-cost transportation supply -> volume (balanced), exact, by column generation.

    The full LP has areas x sites columns and is slow nationally, even without presolve
    (docs/decisions/solver-settings.md). Almost all of the optimal flow goes to near sites,
    so we solve a restricted LP over each area's nearest sites and each site's nearest areas,
    price out every other pair with the duals (reduced cost c - u_a - v_s), add those with
    negative reduced cost and repeat. The result is optimal for the full problem (LP duality).
    Returns (flow, area index, site index) of the columns with flow > 0.
    """
    n_a, n_s = cost.shape
    reachable = np.isfinite(cost)
    if (~reachable.any(axis=1)).any() or (~reachable.any(axis=0)).any():
        raise ValueError(f"treatment {name}: an area or a site with baseline volume cannot be "
                         "reached, so the baseline volumes cannot be reproduced")
    finite_cost = np.where(reachable, cost, np.inf)
    active = np.zeros((n_a, n_s), dtype=bool)
    k_s = min(NEAREST_SITES, n_s)
    near_s = np.argsort(finite_cost, axis=1, kind="stable")[:, :k_s]
    active[np.arange(n_a)[:, None], near_s] = True
    k_a = min(NEAREST_AREAS, n_a)
    near_a = np.argsort(finite_cost, axis=0, kind="stable")[:k_a, :]
    active[near_a, np.arange(n_s)[None, :]] = True
    active &= reachable
    b_eq = np.concatenate([supply, volume])
    for _ in range(100):
        ai, si = np.nonzero(active)
        n_var = ai.shape[0]
        rows = np.concatenate([ai, n_a + si])
        cols = np.concatenate([np.arange(n_var), np.arange(n_var)])
        a_eq = sp.csr_matrix((np.ones(2 * n_var), (rows, cols)), shape=(n_a + n_s, n_var))
        # presolve off: HiGHS' presolve is pathologically slow on transportation LPs
        # (docs/decisions/solver-settings.md)
        res = linprog(finite_cost[ai, si], A_eq=a_eq, b_eq=b_eq, bounds=(0, None),
                      method="highs", options={"presolve": False})
        if res.status == 2 or res.x is None:
            if active.sum() == reachable.sum():
                raise ValueError(f"treatment {name}: baseline volumes cannot be reproduced from "
                                 f"the demand within reachable pairs ({res.message})")
            # restricted problem infeasible (a remote site short of areas): widen it
            widen = np.argsort(finite_cost, axis=1, kind="stable")[:, :min(2 * k_s, n_s)]
            k_s = min(2 * k_s, n_s)
            active[np.arange(n_a)[:, None], widen] = True
            active &= reachable
            continue
        if res.status != 0:
            raise ValueError(f"treatment {name}: baseline LP failed ({res.message})")
        duals = res.eqlin.marginals
        reduced = finite_cost - duals[:n_a, None] - duals[None, n_a:]
        entering = reachable & ~active & (reduced < -REDUCED_COST_TOL * (1.0 + np.abs(finite_cost)))
        if not entering.any():
            x = np.where(res.x > FLOW_EPS, res.x, 0.0)
            keep = x > 0
            return x[keep], ai[keep], si[keep]
        active |= entering
    raise ValueError(f"treatment {name}: baseline LP did not converge")
