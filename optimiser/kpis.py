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
* ``providers_lost[t]`` / ``providers_gained[t]``: sites that provide t before and not after /
  after and not before (the one definition of a lost provider; console, report and
  hospital_changes.csv use these flags).

Displaced patients (docs/OUTPUTS.md has the planner's wording):

* ``patients_displaced``: Σ baseline_flow[a, s, t] over sites s that stop t (provide it today,
  not after): today's patients whose hospital stops the treatment.
* ``displaced_share``: patients_displaced / patients.
* ``patients_moved_optional``: Σ over sites that keep t of baseline_flow - min(flow,
  baseline_flow): moved although their hospital keeps the treatment. With demand as today,
  patients_moved = patients_displaced + patients_moved_optional.
* extra minutes of a displaced patient of area a whose site s stops t: the patient-weighted mean
  travel of the area's *newly arriving* flows (flow - min(flow, baseline_flow) over all sites,
  the destinations of the area's moved patients) minus travel[a, s] (the trip they made
  today). ``displaced_mean_extra_min`` / ``displaced_p90_extra_min`` (lower inverted CDF, as
  p90_extra_min) / ``displaced_max_extra_min`` are over all displaced patients, weighted by
  patients; 0 when nobody is displaced.
* ``per_treatment[t]``: the same figures per treatment, with providers before/after/lost/gained.

Odds of meeting the norm (optimiser/confidence.py, docs/CONFIDENCE.md):

* ``norm_odds``: ``period_years`` and ``weakest``, the kept (site, treatment) with a norm whose
  expected volume meets its norm over ``norm_period_years`` with the lowest probability (ties:
  the lower one-year probability, then site and treatment order), with its ``site_id``,
  ``site_name``, ``intervention_id``, ``norm``, ``expected_volume``, ``p_meet_norm_1y`` and
  ``p_meet_norm_period``; treatments whose whole demand is below their lowest norm (the
  small-region rule: no hospital can meet it) are left out. ``weakest`` is ``None`` when no kept
  pair has a norm.
* ``weakest_p_meet_norm_1y`` / ``weakest_p_meet_norm_period``: its two probabilities (scalars
  for the sweep's runs table).

For an infeasible solution the "after" KPIs are ``None``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .confidence import p_meet_norm
from .instance import Instance
from .params import SolveParams
from .solution import Solution
from .tolerances import FLOW_EPS as FLOW_MIN
from .tolerances import QUANTILE_REL_TOL

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


def weighted_quantile(values: ArrayLike, weights: ArrayLike, q: float, *,
                      empty: float = math.nan) -> float:
    """The lower weighted quantile: the smallest value whose cumulative weight reaches ``q`` of
    the total (the inverted CDF; with unit weights ``np.quantile(method="inverted_cdf")``).

    The one weighted quantile of the project (KPIs, the verifier, the report). ``weights`` are
    non-negative. Without values, or with zero total weight, the quantile is undefined and
    ``empty`` is returned (NaN unless the caller names a value: the KPIs say 0, "nobody").
    The threshold is ``q`` of the total less a relative ``QUANTILE_REL_TOL``, so that a
    cumulative weight equal to it up to rounding reaches it.
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if values.shape != weights.shape:
        raise ValueError(f"values {values.shape} and weights {weights.shape} differ in shape")
    if values.size == 0 or weights.sum() <= 0:
        return float(empty)
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, q * cum[-1] * (1 - QUANTILE_REL_TOL), side="left"))
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
        **{key: None for key in DISPLACED_KPIS},
        "providers_lost": None,
        "providers_gained": None,
        "per_treatment": None,
        **{key: None for key in NORM_ODDS_KPIS},
        "norm_odds": None,
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
        "p90_extra_min": _round(weighted_quantile(extra, w, 0.9, empty=0.0)),
        "max_extra_min": _round(float(extra.max()) if extra.size else 0.0),
        "max_travel_min_after": _round(float(minutes.max()) if minutes.size else 0.0),
        "providers_after": {tid: int(keep[:, t].sum())
                            for t, tid in enumerate(instance.treatment_ids)},
        "shared_care": shared_care(instance, flow, params),
    })
    kpis.update(displacement_kpis(instance, flow, keep))
    kpis.update(norm_odds_kpis(instance, flow, keep, params))
    return kpis


#: the odds of the weakest kept hospital (scalars of the runs table)
NORM_ODDS_KPIS: tuple[str, ...] = ("weakest_p_meet_norm_1y", "weakest_p_meet_norm_period")


def unreachable_norm_treatments(instance: Instance) -> np.ndarray:
    """(T,) True where a treatment's whole demand is below its lowest norm (no site can meet
    it: the small-region rule's treatments)."""
    norms = instance.norm_matrix()
    out = np.zeros(len(instance.treatments), dtype=bool)
    for t in range(len(instance.treatments)):
        if np.any(~np.isnan(norms[:, t])):
            total = float(instance.demand[:, t].sum())
            out[t] = 0 < total < float(np.nanmin(norms[:, t]))
    return out


def norm_odds_kpis(instance: Instance, flow: np.ndarray, keep: np.ndarray,
                   params: SolveParams) -> dict[str, Any]:
    """``norm_odds`` and the weakest kept hospital's probabilities (module docstring)."""
    years = int(params.norm_period_years)
    norms = instance.norm_matrix()
    volume = flow.sum(axis=0)
    counted = keep.astype(bool) & ~np.isnan(norms) & ~unreachable_norm_treatments(instance)[None, :]
    odds: dict[str, Any] = {"period_years": years, "weakest": None}
    out: dict[str, Any] = {"norm_odds": odds, **{key: None for key in NORM_ODDS_KPIS}}
    if not counted.any():
        return out
    s_idx, t_idx = np.nonzero(counted)
    one = p_meet_norm(volume[s_idx, t_idx], norms[s_idx, t_idx], 1)
    period = p_meet_norm(volume[s_idx, t_idx], norms[s_idx, t_idx], years)
    i = int(np.lexsort((t_idx, s_idx, one, period))[0])
    s, t = int(s_idx[i]), int(t_idx[i])
    odds["weakest"] = {
        "site_id": instance.site_ids[s], "site_name": instance.sites[s].name,
        "intervention_id": instance.treatment_ids[t], "norm": float(norms[s, t]),
        "expected_volume": _round(float(volume[s, t])),
        "p_meet_norm_1y": _round(float(one[i])), "p_meet_norm_period": _round(float(period[i])),
    }
    out["weakest_p_meet_norm_1y"] = odds["weakest"]["p_meet_norm_1y"]
    out["weakest_p_meet_norm_period"] = odds["weakest"]["p_meet_norm_period"]
    return out


#: KPIs of displaced patients (run level), in the order tables show them.
DISPLACED_KPIS: tuple[str, ...] = (
    "patients_displaced",
    "displaced_share",
    "displaced_mean_extra_min",
    "displaced_p90_extra_min",
    "displaced_max_extra_min",
    "patients_moved_optional",
)


def _displaced_extras(instance: Instance, flow: np.ndarray, keep: np.ndarray, t: int,
                      travel: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(extra minutes, patients) of the displaced patients of treatment t, one entry per
    (area, closed site) pair, and the optional moves of t (``travel``: the instance's
    minutes, 0 where unreachable)."""
    bf = instance.baseline_flow[:, :, t]
    f = flow[:, :, t]
    stay = np.minimum(f, bf)
    arriving = f - stay
    n_new = arriving.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        new_mean = np.where(n_new > FLOW_MIN, (arriving * travel).sum(axis=1)
                            / np.where(n_new > FLOW_MIN, n_new, 1.0), np.nan)
    stopped = (instance.baseline_volume[:, t] > 0) & ~keep[:, t]
    kept = keep[:, t]
    optional = float((bf[:, kept] - stay[:, kept]).sum())
    a_idx, s_idx = np.nonzero((bf > FLOW_MIN) & stopped[None, :])
    weights = bf[a_idx, s_idx]
    extra = np.nan_to_num(new_mean[a_idx] - travel[a_idx, s_idx], nan=0.0)
    return extra, weights, optional


def _displaced_figures(extra: np.ndarray, weights: np.ndarray, optional: float,
                       patients: float) -> dict[str, float | None]:
    displaced = float(weights.sum())
    return {
        "patients_displaced": _round(displaced),
        "displaced_share": _round(displaced / patients if patients > 0 else 0.0),
        "displaced_mean_extra_min": _round(float((weights * extra).sum()) / displaced
                                           if displaced > 0 else 0.0),
        "displaced_p90_extra_min": _round(weighted_quantile(extra, weights, 0.9, empty=0.0)),
        "displaced_max_extra_min": _round(float(extra.max()) if extra.size else 0.0),
        "patients_moved_optional": _round(max(optional, 0.0)),
    }


def displacement_kpis(instance: Instance, flow: np.ndarray, keep: np.ndarray) -> dict[str, Any]:
    """Displaced-patient KPIs, providers lost/gained and ``per_treatment`` (module docstring)."""
    extras, weights, optional = [], [], 0.0
    per_treatment: dict[str, Any] = {}
    lost: dict[str, int] = {}
    gained: dict[str, int] = {}
    bf = instance.baseline_flow
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)  # once
    for t, tid in enumerate(instance.treatment_ids):
        extra, w, opt = _displaced_extras(instance, flow, keep, t, travel)
        extras.append(extra)
        weights.append(w)
        optional += opt
        before = instance.baseline_volume[:, t] > 0
        after = keep[:, t]
        lost[tid] = int((before & ~after).sum())
        gained[tid] = int((after & ~before).sum())
        patients_t = float(instance.demand[:, t].sum())
        moved_t = float(patients_t - np.minimum(flow[:, :, t], bf[:, :, t]).sum())
        per_treatment[tid] = {
            "patients": _round(patients_t),
            "patients_moved": _round(moved_t),
            **_displaced_figures(extra, w, opt, patients_t),
            "providers_before": int(before.sum()),
            "providers_after": int(after.sum()),
            "providers_lost": lost[tid],
            "providers_gained": gained[tid],
        }
    out: dict[str, Any] = _displaced_figures(
        np.concatenate(extras) if extras else np.zeros(0),
        np.concatenate(weights) if weights else np.zeros(0), optional,
        float(instance.demand.sum()))
    out["providers_lost"] = lost
    out["providers_gained"] = gained
    out["per_treatment"] = per_treatment
    return out


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
