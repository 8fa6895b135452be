"""Contract KPIs of a solution, plus the shared-care travel burden.

Definitions (all per year, patient-weighted, from ``instance``, ``solution`` and ``params`` only):

* ``patients``: Σ demand.
* ``patients_moved``: Σ_{a,t} (demand[a,t] - Σ_s min(flow[a,s,t], baseline_flow[a,s,t])).
* ``mean_travel_min_before``: Σ baseline_flow·travel / Σ baseline_flow.
* ``mean_travel_min_after``: Σ flow·travel / Σ flow.
* per-patient extra minutes of a flow (a, s, t): travel[a, s] - baseline_travel[a, t] (the
  patient-weighted mean baseline travel of that area and treatment, Instance.baseline_travel());
  where an area had no baseline patients of t (nan) the extra is taken as 0.
* ``mean_extra_min``: patient-weighted mean of the extra over all flows > 0.
* ``p90_extra_min``: patient-weighted 90th percentile, the *lower* inverted-CDF definition: sort
  flows by extra, the smallest extra e whose cumulative patients reach 90% of all patients.
* ``max_extra_min`` / ``max_travel_min_after``: max over flows > FLOW_MIN patients.
* ``providers_before[t]``: sites with baseline volume > 0; ``providers_after[t]``: keep[:, t].

For an infeasible solution the "after" KPIs are ``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .instance import Instance
from .params import SolveParams
from .solution import Solution

#: flows at or below this many patients per year do not count as "going somewhere"
FLOW_MIN = 1e-9
#: The scalar KPIs of the contract, in the order tables and terminal output show them.
SCALAR_KPIS: tuple[str, ...] = (
    "patients",
    "patients_moved",
    "mean_travel_min_before",
    "mean_travel_min_after",
    "mean_extra_min",
    "p90_extra_min",
    "max_extra_min",
    "max_travel_min_after",
)


def weighted_quantile_lower(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Smallest value whose cumulative weight reaches ``q`` of the total (inverted CDF)."""
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if values.size == 0 or weights.sum() <= 0:
        return 0.0
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, q * cum[-1] * (1 - 1e-12), side="left"))
    return float(values[order][min(idx, values.size - 1)])


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def compute_kpis(instance: Instance, solution: Solution, params: SolveParams) -> dict[str, Any]:
    """The contract KPIs (see module docstring) plus a ``shared_care`` dict."""
    travel = instance.travel_min
    finite_travel = np.where(np.isfinite(travel), travel, 0.0)
    bf = instance.baseline_flow
    patients = float(instance.demand.sum())
    base_patients = float(bf.sum())
    before = (float(np.einsum("ast,as->", bf, finite_travel)) / base_patients
              if base_patients > 0 else 0.0)
    providers_before = {tid: int((instance.baseline_volume[:, t] > 0).sum())
                        for t, tid in enumerate(instance.treatment_ids)}
    kpis: dict[str, Any] = {
        "patients": _round(patients),
        "patients_moved": None,
        "mean_travel_min_before": _round(before),
        "mean_travel_min_after": None,
        "mean_extra_min": None,
        "p90_extra_min": None,
        "max_extra_min": None,
        "max_travel_min_after": None,
        "providers_before": providers_before,
        "providers_after": None,
        "shared_care": None,
    }
    if solution.flow is None or solution.keep is None:
        return kpis
    flow = solution.flow
    keep = solution.keep
    moved = float((instance.demand - np.minimum(flow, bf).sum(axis=1)).sum())
    total_flow = float(flow.sum())
    after = (float(np.einsum("ast,as->", flow, finite_travel)) / total_flow
             if total_flow > 0 else 0.0)
    a_idx, s_idx, t_idx = np.nonzero(flow > FLOW_MIN)
    w = flow[a_idx, s_idx, t_idx]
    minutes = travel[a_idx, s_idx]
    base_travel = instance.baseline_travel()[a_idx, t_idx]
    extra = np.where(np.isnan(base_travel), 0.0, minutes - np.nan_to_num(base_travel))
    wsum = float(w.sum())
    kpis.update({
        "patients_moved": _round(moved),
        "mean_travel_min_after": _round(after),
        "mean_extra_min": _round(float((w * extra).sum()) / wsum if wsum > 0 else 0.0),
        "p90_extra_min": _round(weighted_quantile_lower(extra, w, 0.9)),
        "max_extra_min": _round(float(extra.max()) if extra.size else 0.0),
        "max_travel_min_after": _round(float(minutes.max()) if minutes.size else 0.0),
        "providers_after": {tid: int(keep[:, t].sum())
                            for t, tid in enumerate(instance.treatment_ids)},
        "shared_care": shared_care(instance, flow, params),
    })
    return kpis


def shared_care(instance: Instance, flow: np.ndarray, params: SolveParams) -> dict[str, float]:
    """Yearly round-trip travel hours with and without shared care.

    Without shared care every patient makes ``visits_per_patient`` round trips to the treating
    site. With shared care ``shared_care_local_visits`` of them go to the nearest site of the
    instance (the local hospital) instead. A round trip is twice the one-way minutes.
    """
    travel = instance.travel_min
    finite_travel = np.where(np.isfinite(travel), travel, 0.0)
    nearest = np.min(travel, axis=1, initial=np.inf) if travel.shape[1] else np.zeros(len(travel))
    nearest = np.where(np.isfinite(nearest), nearest, 0.0)
    visits = float(params.visits_per_patient)
    local = float(params.shared_care_local_visits)
    per_area_treated_min = np.einsum("ast,as->a", flow, finite_travel)  # patient-minutes one way
    per_area_patients = flow.sum(axis=(1, 2))
    without = 2.0 * visits * float(per_area_treated_min.sum()) / 60.0
    with_sc = 2.0 * ((visits - local) * float(per_area_treated_min.sum())
                     + local * float((per_area_patients * nearest).sum())) / 60.0
    return {
        "visits_per_patient": visits,
        "local_visits": local,
        "travel_hours_without_shared_care": round(without, 6),
        "travel_hours_with_shared_care": round(with_sc, 6),
        "travel_hours_saved": round(without - with_sc, 6),
        "saving_share": round((without - with_sc) / without, 6) if without > 0 else 0.0,
    }
