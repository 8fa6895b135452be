"""Independent re-check of a solution against the raw inputs.

This module deliberately shares no code with the model builder (``formulation.py``) or the KPI
code (``kpis.py``): every constraint and KPI is recomputed here from the instance arrays and the
scenario parameters, so that a bug in the model shows up as a violation instead of being
repeated. Tests run it on every solve; the CLI runs it on every result it writes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .instance import Instance
from .kpis import weighted_quantile
from .params import SolveParams
from .solution import Solution
from .status import SolveStatus
from .tolerances import (
    FLOW_EPS,
    KPI_TOL,
    PROVIDES_MIN,
    TRAVEL_TOL_MIN,
    VERIFY_EXTRA_TRAVEL_TOL_MIN,
    VERIFY_TOL,
)

#: Absolute tolerance in patients (tolerances.VERIFY_TOL)
TOL = VERIFY_TOL


def _pairs(items: list[Any], instance: Instance) -> set[tuple[int, int]]:
    """(site index, treatment index) pairs named by SiteTreatment-like items ("*" = all)."""
    sites = {site_id: s for s, site_id in enumerate(instance.site_ids)}
    treatments = {treatment_id: t for t, treatment_id in enumerate(instance.treatment_ids)}
    pairs: set[tuple[int, int]] = set()
    for item in items:
        s = sites.get(item.site_id)
        if s is None:
            continue
        if item.intervention_id == "*":
            pairs.update((s, t) for t in range(len(treatments)))
        elif item.intervention_id in treatments:
            pairs.add((s, treatments[item.intervention_id]))
    return pairs


def _required_volume(instance: Instance, params: SolveParams) -> np.ndarray:
    """norm x (1 + margin) per (site, treatment); nan where no norm."""
    required = np.full((len(instance.sites), len(instance.treatments)), np.nan)
    for t, treatment in enumerate(instance.treatments):
        margin = params.margin_by_treatment.get(treatment.id, params.margin)
        for s, site in enumerate(instance.sites):
            tiers = dict(treatment.tier_norms or {})
            norm = tiers.get(site.role, treatment.norm)
            if norm is not None:
                required[s, t] = float(norm) * (1.0 + float(margin))
    return required


def _capacity(instance: Instance, params: SolveParams) -> np.ndarray:
    cap = np.full((len(instance.sites), len(instance.treatments)), np.inf)
    if params.capacity_factor is not None:
        cap = np.minimum(cap, params.capacity_factor * instance.baseline_volume)
    for item in params.capacity:
        for s, t in _pairs([item], instance):
            cap[s, t] = min(cap[s, t], item.max_patients)
    return cap


def _mean_baseline_travel(instance: Instance) -> np.ndarray:
    patients = instance.baseline_flow.sum(axis=1)
    total = np.zeros_like(patients)
    for s in range(len(instance.sites)):
        minutes = instance.travel_min[:, s]
        used = instance.baseline_flow[:, s, :] > 0
        total += np.where(used, instance.baseline_flow[:, s, :] * minutes[:, None], 0.0)
    out = np.full_like(patients, np.nan)
    np.divide(total, patients, out=out, where=patients > 0)
    return out


def verify(
    solution: Solution,
    instance: Instance,
    params: SolveParams,
    kpis: dict[str, Any] | None = None,
) -> list[str]:
    """Every violated constraint or wrong KPI, in words; an empty list when all holds."""
    if not solution.feasible:
        return (
            []
            if solution.diagnosis and solution.diagnosis.get("reason")
            else ["infeasible solution without a diagnosis reason"]
        )
    problems: list[str] = []
    n_areas, n_sites, n_treat = instance.shape
    flow, keep = solution.flow, solution.keep
    if flow is None or keep is None:
        return ["feasible solution without flow or keep arrays"]
    if flow.shape != (n_areas, n_sites, n_treat) or keep.shape != (n_sites, n_treat):
        return [f"wrong shapes: flow {flow.shape}, keep {keep.shape}"]
    treatment_ids = instance.treatment_ids
    # names beside the codes in every message ("Name (code)")
    area_ids = [instance.area_label(a) for a in range(n_areas)]
    site_ids = [instance.site_label(s) for s in range(n_sites)]

    if np.any(flow < -TOL):
        problems.append(f"negative flow, minimum {flow.min():.6g}")
    received = flow.sum(axis=1)
    gap = np.abs(received - instance.demand)
    for a, t in zip(*np.nonzero(gap > TOL * np.maximum(1.0, instance.demand))):
        problems.append(
            f"demand of area {area_ids[a]} for {treatment_ids[t]} is {instance.demand[a, t]:.4f} "
            f"but {received[a, t]:.4f} is assigned"
        )

    forced_keep = _pairs(params.force_keep, instance)
    forced_close = _pairs(params.force_close, instance)
    baseline_travel = _mean_baseline_travel(instance)
    for a, s, t in zip(*np.nonzero(flow > TOL)):
        where = f"area {area_ids[a]} -> site {site_ids[s]} for {treatment_ids[t]}"
        minutes = instance.travel_min[a, s]
        if not np.isfinite(minutes):
            problems.append(f"{where}: no route but {flow[a, s, t]:.4f} patients")
        if params.max_travel is not None:
            allowed = params.max_travel
            if params.remote_areas == "nearest_provider":
                # remote areas may go as far as their nearest current provider
                providers = np.nonzero(instance.baseline_volume[:, t] > 0)[0]
                if len(providers):
                    allowed = max(allowed, float(np.min(instance.travel_min[a, providers])))
            if minutes > allowed + TRAVEL_TOL_MIN:
                problems.append(f"{where}: {minutes:.1f} min exceeds the travel limit {allowed}")
        if params.max_extra_travel is not None and np.isfinite(baseline_travel[a, t]):
            extra = minutes - baseline_travel[a, t]
            if extra > params.max_extra_travel + VERIFY_EXTRA_TRAVEL_TOL_MIN:
                problems.append(
                    f"{where}: {extra:.1f} extra min exceeds max_extra_travel "
                    f"{params.max_extra_travel}"
                )
        provided_before = instance.baseline_volume[s, t] > 0
        if not (provided_before or params.allow_new_providers or (s, t) in forced_keep):
            problems.append(f"{where}: site did not provide it and new providers are not allowed")
        if (s, t) in forced_close:
            problems.append(f"{where}: site is forced to close this treatment")

    volume = flow.sum(axis=0)
    required = _required_volume(instance, params)
    if params.small_region_rule == "one_provider":
        # A treatment whose whole demand is below every site's norm cannot meet it anywhere:
        # the rule allows one provider below the norm instead of declaring infeasibility.
        for t in range(n_treat):
            if np.all(np.isnan(required[:, t])):
                continue
            lowest = np.nanmin(required[:, t] / (1.0 + params.margin_for(treatment_ids[t])))
            total = instance.demand[:, t].sum()
            if np.isfinite(lowest) and 0 < total < lowest:
                required[:, t] = np.where(np.isnan(required[:, t]), np.nan, 0.0)
                if int(np.count_nonzero(keep[:, t])) > 1:
                    problems.append(
                        f"{treatment_ids[t]}: demand below every norm, but "
                        f"{int(np.count_nonzero(keep[:, t]))} providers are kept (at most 1)"
                    )
    capacity = _capacity(instance, params)
    for s in range(n_sites):
        for t in range(n_treat):
            name = f"site {site_ids[s]}, {treatment_ids[t]}"
            if np.isnan(required[s, t]):
                if bool(keep[s, t]) != bool(volume[s, t] > PROVIDES_MIN):
                    problems.append(
                        f"{name}: keep={bool(keep[s, t])} but volume {volume[s, t]:.4f}"
                    )
            # relative: HiGHS meets the volume rows to ~1e-7 relative over many flows
            elif keep[s, t] and volume[s, t] < required[s, t] - TOL * max(1.0, required[s, t]):
                problems.append(
                    f"{name}: kept with {volume[s, t]:.4f} patients, below the required "
                    f"{required[s, t]:.4f}"
                )
            elif not keep[s, t] and volume[s, t] > TOL:
                problems.append(f"{name}: not kept but treats {volume[s, t]:.4f} patients")
            if volume[s, t] > capacity[s, t] + TOL:
                problems.append(
                    f"{name}: {volume[s, t]:.4f} patients exceed capacity {capacity[s, t]:.4f}"
                )
            if (s, t) in forced_keep and not keep[s, t]:
                problems.append(f"{name}: forced to keep but not kept")
            if (s, t) in forced_close and keep[s, t]:
                problems.append(f"{name}: forced to close but kept")

    index = {treatment_id: t for t, treatment_id in enumerate(treatment_ids)}
    for bundle in params.bundles:
        members = [index[tid] for tid in bundle if tid in index]
        for s in range(n_sites):
            states = {bool(keep[s, t]) for t in members}
            if len(states) > 1:
                problems.append(f"site {site_ids[s]}: bundle {bundle} kept only in part")

    if params.max_loss_share is not None:
        before = instance.baseline_volume.sum(axis=1)
        after = volume.sum(axis=1)
        for s in np.nonzero(before > 0)[0]:
            lost = before[s] - after[s]
            if lost > params.max_loss_share * before[s] + TOL * max(1.0, before[s]):
                problems.append(
                    f"site {site_ids[s]} loses {lost:.2f} of {before[s]:.2f} patients, more than "
                    f"max_loss_share {params.max_loss_share}"
                )

    if params.single_sourcing:
        used = (flow > TOL).sum(axis=1)
        for a, t in zip(*np.nonzero((instance.demand > TOL) & (used != 1))):
            problems.append(
                f"single sourcing: area {area_ids[a]} sends {treatment_ids[t]} "
                f"to {used[a, t]} sites"
            )

    if kpis is not None:
        problems.extend(_check_kpis(kpis, instance, flow, baseline_travel))
    return problems


def _close(a: float, b: float, tol: float = KPI_TOL) -> bool:
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


def _check_kpis(
    kpis: dict[str, Any], instance: Instance, flow: np.ndarray, baseline_travel: np.ndarray
) -> list[str]:
    problems: list[str] = []
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
    patients = float(instance.demand.sum())
    expected: dict[str, float] = {"patients": patients}
    if patients > 0:
        after_minutes = float((flow * travel[:, :, None]).sum())
        expected["mean_travel_min_after"] = after_minutes / patients
        baseline_patients = float(instance.baseline_flow.sum())
        if baseline_patients > 0:
            before_minutes = float((instance.baseline_flow * travel[:, :, None]).sum())
            expected["mean_travel_min_before"] = before_minutes / baseline_patients
        stayed = float(np.minimum(flow, instance.baseline_flow).sum())
        expected["patients_moved"] = patients - stayed
        used = flow > TOL
        expected["max_travel_min_after"] = float(
            np.max(np.where(used, travel[:, :, None], 0.0), initial=0.0)
        )
    for key, value in expected.items():
        if key not in kpis:
            problems.append(f"KPI {key} missing")
        elif not _close(kpis[key], value):
            problems.append(f"KPI {key} reported {kpis[key]} but recomputed {value:.6f}")
    providers_before = {
        tid: int((instance.baseline_volume[:, t] > 0).sum())
        for t, tid in enumerate(instance.treatment_ids)
    }
    providers_after = {
        tid: int((flow[:, :, t].sum(axis=0) > PROVIDES_MIN).sum())
        for t, tid in enumerate(instance.treatment_ids)
    }
    for key, counts in (
        ("providers_before", providers_before),
        ("providers_after", providers_after),
    ):
        reported = {k: int(v) for k, v in (kpis.get(key) or {}).items()}
        if reported != counts:
            problems.append(f"KPI {key} reported {reported} but recomputed {counts}")
    if "patients_displaced" in kpis:
        problems.extend(_check_displaced(kpis, instance, flow, travel))
    return problems


def _lower_quantile(values: list[float], weights: list[float], q: float) -> float:
    """The KPIs' p90 of the recomputed figures (0 for nobody, as the KPIs define it).

    The one quantile function the verifier shares with the KPI code: it is tiny, tested on its
    own against numpy (tests/test_quantile.py), and the verifier's independence lies in
    recomputing the values and weights it is given, which it does here from the inputs."""
    return weighted_quantile(values, weights, q, empty=0.0)


def _check_displaced(kpis: dict[str, Any], instance: Instance, flow: np.ndarray,
                     travel: np.ndarray) -> list[str]:
    """Displaced patients, their extra travel, optional moves and providers lost / gained,
    recomputed patient group by patient group (loops, not the vectorised KPI code)."""
    problems: list[str] = []
    n_areas, n_sites, _ = instance.shape
    provides_after = flow.sum(axis=0) > PROVIDES_MIN
    run_extra: list[float] = []
    run_weight: list[float] = []
    run_optional = 0.0
    expected_per: dict[str, dict[str, float]] = {}
    for t, tid in enumerate(instance.treatment_ids):
        before = instance.baseline_volume[:, t] > 0
        stops = [s for s in range(n_sites) if before[s] and not provides_after[s, t]]
        extras: list[float] = []
        weights: list[float] = []
        optional = 0.0
        keeps = provides_after[:, t] & ~np.isin(np.arange(n_sites), stops)
        for a in range(n_areas):
            today = instance.baseline_flow[a, :, t]
            after = flow[a, :, t]
            if not today.any() and not after.any():
                continue
            arriving = after - np.minimum(after, today)  # patients new at each site
            new_patients = float(arriving.sum())
            new_minutes = float((arriving * travel[a]).sum())
            optional += float((today - np.minimum(after, today))[keeps].sum())
            destination = new_minutes / new_patients if new_patients > FLOW_EPS else None
            for s in stops:
                if today[s] > FLOW_EPS:
                    extras.append(0.0 if destination is None else destination - travel[a, s])
                    weights.append(float(today[s]))
        displaced = sum(weights)
        patients_t = float(instance.demand[:, t].sum())
        expected_per[tid] = {
            "patients_displaced": displaced,
            "displaced_share": displaced / patients_t if patients_t > 0 else 0.0,
            "displaced_mean_extra_min": (sum(e * w for e, w in zip(extras, weights, strict=True))
                                         / displaced if displaced > 0 else 0.0),
            "displaced_max_extra_min": max(extras) if extras else 0.0,
            "displaced_p90_extra_min": _lower_quantile(extras, weights, 0.9),
            "patients_moved_optional": optional,
            "providers_lost": float(len(stops)),
            "providers_gained": float(sum(1 for s in range(n_sites)
                                          if provides_after[s, t] and not before[s])),
        }
        run_extra += extras
        run_weight += weights
        run_optional += optional
    displaced = sum(run_weight)
    patients = float(instance.demand.sum())
    expected = {
        "patients_displaced": displaced,
        "displaced_share": displaced / patients if patients > 0 else 0.0,
        "displaced_mean_extra_min": (sum(e * w for e, w in zip(run_extra, run_weight,
                                                                 strict=True)) / displaced
                                     if displaced > 0 else 0.0),
        "displaced_max_extra_min": max(run_extra) if run_extra else 0.0,
        "displaced_p90_extra_min": _lower_quantile(run_extra, run_weight, 0.9),
        "patients_moved_optional": run_optional,
    }
    for key, value in expected.items():
        reported = kpis.get(key)
        if reported is None or not _close(reported, value, KPI_TOL):
            problems.append(f"KPI {key} reported {reported} but recomputed {value:.6f}")
    per = kpis.get("per_treatment") or {}
    for tid, values in expected_per.items():
        got = per.get(tid)
        if got is None:
            problems.append(f"KPI per_treatment.{tid} missing")
            continue
        for key, value in values.items():
            if key in ("providers_lost", "providers_gained"):
                reported = (kpis.get(key) or {}).get(tid)
                if reported is None or int(reported) != int(value) or \
                        int(got.get(key, -1)) != int(value):
                    problems.append(f"KPI {key}.{tid} reported {reported} but recomputed "
                                    f"{int(value)}")
            elif got.get(key) is None or not _close(got[key], value, KPI_TOL):
                problems.append(f"KPI per_treatment.{tid}.{key} reported {got.get(key)} but "
                                f"recomputed {value:.6f}")
    return problems


def solution_from_tables(
    instance: Instance, site_volumes: pd.DataFrame, assignments: pd.DataFrame
) -> Solution:
    """Rebuild a Solution from the written contract tables, to re-check result files.

    ``kept_after`` of treatments without a norm is not in site_volumes.csv, so for those the
    keep flag is derived from the assigned volume.
    """
    a_index = {area_id: a for a, area_id in enumerate(instance.area_ids)}
    s_index = {site_id: s for s, site_id in enumerate(instance.site_ids)}
    t_index = {tid: t for t, tid in enumerate(instance.treatment_ids)}
    flow = np.zeros(instance.shape)
    for row in assignments.itertuples(index=False):
        flow[a_index[row.area_id], s_index[row.site_id], t_index[row.intervention_id]] += float(
            row.patients
        )
    keep = flow.sum(axis=0) > PROVIDES_MIN
    for row in site_volumes.itertuples(index=False):
        kept = row.kept_after
        if isinstance(kept, str):
            kept = kept.strip().lower() == "true"
        keep[s_index[row.site_id], t_index[row.intervention_id]] = bool(kept)
    return Solution(status=SolveStatus.FEASIBLE, solver="tables", keep=keep, flow=flow)
