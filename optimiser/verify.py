"""Independent re-check of a solution against the raw inputs.

This module deliberately shares no code with the model builder (``formulation.py``, the
families' builders) or the KPI code (``kpis.py``): every constraint and KPI is recomputed from
the instance arrays and the scenario parameters, so that a bug in the model shows up as a
violation instead of being repeated. Each row family's check (optimiser/rows, beside its
builder, using only optimiser/rows/checking.py) recomputes its constraint; this module runs
them and re-checks the KPIs. Tests run it on every solve; the CLI runs it on every result it
writes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .instance import Instance
from .kpis import weighted_quantile
from .params import SolveParams
from .rows import FAMILIES
from .rows.base import CheckContext
from .rows.checking import poisson_meet_probability
from .solution import Solution
from .tolerances import FLOW_EPS, KPI_TOL, ODDS_TOL, PROVIDES_MIN, VERIFY_TOL

#: Absolute tolerance in patients (tolerances.VERIFY_TOL)
TOL = VERIFY_TOL


def verify(
    solution: Solution,
    instance: Instance,
    params: SolveParams,
    kpis: dict[str, Any] | None = None,
) -> list[str]:
    """Every violated constraint or wrong KPI, in words; an empty list when all holds.

    The constraints are checked family by family (each family's check in optimiser.rows, in
    registry order), the KPIs here.
    """
    non_finite = non_finite_inputs(instance, params)
    if not solution.feasible:
        return non_finite + (
            []
            if solution.diagnosis and solution.diagnosis.get("reason")
            else ["infeasible solution without a diagnosis reason"]
        )
    n_areas, n_sites, n_treat = instance.shape
    flow, keep = solution.flow, solution.keep
    if flow is None or keep is None:
        return ["feasible solution without flow or keep arrays"]
    if flow.shape != (n_areas, n_sites, n_treat) or keep.shape != (n_sites, n_treat):
        return [f"wrong shapes: flow {flow.shape}, keep {keep.shape}"]
    if not np.isfinite(flow).all():
        return [*non_finite, f"{int((~np.isfinite(flow)).sum())} flows are not finite numbers"]
    # names beside the codes in every message ("Name (code)")
    ctx = CheckContext(
        instance=instance, params=params, flow=flow, keep=np.asarray(keep).astype(bool),
        area_labels=_area_labels(instance),
        site_labels=[instance.site_label(s) for s in range(n_sites)],
    )
    problems: list[str] = list(non_finite)
    for family in FAMILIES:
        if family.check is not None:
            problems.extend(family.check(ctx))
    if kpis is not None:
        problems.extend(_non_finite_kpis(kpis))
        problems.extend(_check_kpis(kpis, instance, flow))
        if "norm_odds" in kpis:
            problems.extend(_check_norm_odds(kpis, instance, params, flow, ctx.keep))
    return problems


#: the last instance's area labels, by its (immutable) id and name tuples: a sweep verifies
#: hundreds of runs of one region, and the labels of every area cost ~1 ms a run
_AREA_LABELS: list[tuple[tuple[str, ...], tuple[str, ...], list[str]]] = []


def _area_labels(instance: Instance) -> list[str]:
    """``[instance.area_label(a) for a in areas]``, re-used while the tuples are the same."""
    for ids, names, labels in _AREA_LABELS:
        if ids is instance.area_ids and names is instance.area_names:
            return labels
    labels = [instance.area_label(a) for a in range(len(instance.area_ids))]
    if isinstance(instance.area_ids, tuple) and isinstance(instance.area_names, tuple):
        _AREA_LABELS[:] = [(instance.area_ids, instance.area_names, labels)]
    return labels


def _check_norm_odds(kpis: dict[str, Any], instance: Instance, params: SolveParams,
                     flow: np.ndarray, keep: np.ndarray) -> list[str]:
    """The weakest kept hospital's odds, recomputed pair by pair with scipy.stats.poisson."""
    years = int(params.norm_period_years)
    lowest: tuple[float, float] | None = None
    for t, treatment in enumerate(instance.treatments):
        norms = {s: treatment.norm_for(site.role) for s, site in enumerate(instance.sites)}
        given = [n for n in norms.values() if n is not None]
        total = float(instance.demand[:, t].sum())
        if not given or 0 < total < min(given):
            continue  # no norm, or no hospital can reach it (the small-region rule)
        for s, norm in norms.items():
            if norm is None or not keep[s, t]:
                continue
            volume = float(flow[:, s, t].sum())
            pair = (poisson_meet_probability(volume, norm, years),
                    poisson_meet_probability(volume, norm, 1))
            lowest = pair if lowest is None or pair < lowest else lowest
    problems = []
    odds = kpis.get("norm_odds") or {}
    if odds.get("period_years") != years:
        problems.append(f"KPI norm_odds.period_years reported {odds.get('period_years')} but "
                        f"the scenario says {years}")
    reported = (kpis.get("weakest_p_meet_norm_period"), kpis.get("weakest_p_meet_norm_1y"))
    if lowest is None:
        if reported != (None, None):
            problems.append(f"KPI weakest odds reported {reported} but no kept hospital has a "
                            "norm")
        return problems
    for key, got, value in zip(("weakest_p_meet_norm_period", "weakest_p_meet_norm_1y"),
                               reported, lowest, strict=True):
        # a probability, not a count: absolute tolerance (the KPIs are rounded to 1e-6)
        if got is None or not np.isfinite(got) or abs(float(got) - value) > ODDS_TOL:
            problems.append(f"KPI {key} reported {got} but recomputed {value:.6f}")
    return problems


def non_finite_inputs(instance: Instance, params: SolveParams) -> list[str]:
    """Every input number that is not finite, in words (issue 27: a comparison with NaN or
    infinity is always false, so checks built on comparisons would pass such a plan).

    Travel times may be infinite (no route); demand, the baseline, the norms, every number of
    the parameters and every required volume norm x (1 + margin) must be finite.
    """
    problems = []
    for name in ("demand", "baseline_flow", "baseline_volume"):
        values = np.asarray(getattr(instance, name), dtype=float)
        if not np.isfinite(values).all():
            problems.append(f"instance {name}: {int((~np.isfinite(values)).sum())} values are "
                            "not finite")
    if np.isnan(np.asarray(instance.travel_min, dtype=float)).any():
        problems.append("instance travel_min: NaN travel times")
    for key, value in _numbers(params.model_dump()):
        if not np.isfinite(value):
            problems.append(f"parameter {key} = {value} is not finite")
    for treatment in instance.treatments:
        margin = float(params.margin_by_treatment.get(treatment.id, params.margin))
        norms = [treatment.norm, *(treatment.tier_norms or {}).values()]
        for norm in (n for n in norms if n is not None):
            with np.errstate(over="ignore", invalid="ignore"):
                required = np.float64(norm) * (1.0 + np.float64(margin))
            if not np.isfinite(required):
                problems.append(f"{treatment.id}: required volume norm {norm} x (1 + margin "
                                f"{margin:g}) is not finite")
    return problems


def _numbers(value: Any, key: str = "") -> list[tuple[str, float]]:
    """(dotted key, number) of every int or float inside a dumped model."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [(key, float(value))]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, (list, tuple)):
        return [n for i, v in enumerate(value) for n in _numbers(v, f"{key}[{i}]")]
    return []


def _non_finite_kpis(kpis: dict[str, Any]) -> list[str]:
    return [f"KPI {key} = {value} is not finite" for key, value in _numbers(kpis)
            if not np.isfinite(value)]


def _close(a: float, b: float, tol: float = KPI_TOL) -> bool:
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


def _check_kpis(kpis: dict[str, Any], instance: Instance, flow: np.ndarray) -> list[str]:
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


def _lower_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The KPIs' p90 of the recomputed figures (0 for nobody, as the KPIs define it).

    The one quantile function the verifier shares with the KPI code: it is tiny, tested on its
    own against numpy (tests/optimiser/test_quantile.py), and the verifier's independence lies in
    recomputing the values and weights it is given, which it does here from the inputs."""
    return weighted_quantile(values, weights, q, empty=0.0)


def _check_displaced(kpis: dict[str, Any], instance: Instance, flow: np.ndarray,
                     travel: np.ndarray) -> list[str]:
    """Displaced patients, their extra travel, optional moves and providers lost / gained,
    recomputed patient group by patient group from the flows (:func:`_displaced_groups`).

    Independent of the KPI code (optimiser/kpis.py): a site provides a treatment after when
    its flows exceed PROVIDES_MIN (the KPIs read the keep decisions), a group is an (area, site
    of today) pair with more than FLOW_EPS patients, and the figures are recomputed from the
    groups here."""
    n_treat = instance.shape[2]
    provides_after = flow.sum(axis=0) > PROVIDES_MIN
    provided_before = instance.baseline_volume > 0
    treatment_ids = instance.treatment_ids
    extras, weights, group_t, optional = _displaced_groups(instance, flow, travel,
                                                           provides_after)
    expected_per: dict[str, dict[str, float]] = {}
    for t in range(n_treat):
        mine = group_t == t
        expected_per[treatment_ids[t]] = {
            **_displaced_figures(extras[mine], weights[mine], float(optional[t]),
                                 float(instance.demand[:, t].sum())),
            "providers_lost": float((provided_before[:, t] & ~provides_after[:, t]).sum()),
            "providers_gained": float((provides_after[:, t] & ~provided_before[:, t]).sum()),
        }
    expected = _displaced_figures(extras, weights, float(optional.sum()),
                                  float(instance.demand.sum()))
    problems: list[str] = []
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
        problems += _per_treatment_problems(kpis, tid, got, values)
    return problems


def _displaced_groups(instance: Instance, flow: np.ndarray, travel: np.ndarray,
                      provides_after: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every displaced group (patients of an area treated today at a site that stops the
    treatment): its extra minutes, patients and treatment index, in (treatment, area, site)
    order; and per treatment the optional moves (patients leaving a site that keeps it).

    A group's extra minutes are the patient-weighted mean trip of its area's arrivals (patients
    new at a site after) minus its trip of today; 0 when the area has no arrivals."""
    today = instance.baseline_flow
    staying = np.minimum(flow, today)
    arriving = flow - staying  # (A, S, T): patients new at each site
    new_patients = arriving.sum(axis=1)  # (A, T)
    new_minutes = (arriving * travel[:, :, None]).sum(axis=1)
    has_new = new_patients > FLOW_EPS
    destination = np.divide(new_minutes, new_patients, out=np.zeros_like(new_minutes),
                            where=has_new)
    stops = (instance.baseline_volume > 0) & ~provides_after  # (S, T)
    keeps = provides_after & ~stops
    optional = ((today - staying) * keeps[None, :, :]).sum(axis=(0, 1))  # (T,)
    t_idx, a_idx, s_idx = np.nonzero(
        (stops[None, :, :] & (today > FLOW_EPS)).transpose(2, 0, 1))
    weights = today[a_idx, s_idx, t_idx]
    extras = np.where(has_new[a_idx, t_idx],
                      destination[a_idx, t_idx] - travel[a_idx, s_idx], 0.0)
    return extras, weights, t_idx, optional


def _displaced_figures(extras: np.ndarray, weights: np.ndarray, optional: float,
                       patients: float) -> dict[str, float]:
    """The displacement KPIs of these groups (of a treatment, or of the whole run)."""
    displaced = float(weights.sum())
    return {
        "patients_displaced": displaced,
        "displaced_share": displaced / patients if patients > 0 else 0.0,
        "displaced_mean_extra_min": (float((extras * weights).sum()) / displaced
                                     if displaced > 0 else 0.0),
        "displaced_max_extra_min": float(extras.max()) if extras.size else 0.0,
        "displaced_p90_extra_min": _lower_quantile(extras, weights, 0.9),
        "patients_moved_optional": optional,
    }


def _per_treatment_problems(kpis: dict[str, Any], tid: str, got: dict[str, Any],
                            values: dict[str, float]) -> list[str]:
    problems = []
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
