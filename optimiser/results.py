"""Contract tables and summary dict of one solve (pandas; no file I/O: scenarios.run writes them).

Floats are rounded to ``DECIMALS`` so that written files are byte-stable across runs and
platforms; rows are sorted by their ids.
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from herschik.columns import (
    ASSIGNMENT_COLUMNS,
    HOSPITAL_CHANGE_COLUMNS,
    HOSPITAL_FLOW_COLUMNS,
    SITE_VOLUME_COLUMNS,
)

from .confidence import p_meet_norm
from .formulation import required_matrix
from .instance import Instance
from .params import SolveParams
from .solution import Solution
from .status import SolveStatus
from .tolerances import BELOW_NORM_TOL
from .tolerances import FLOW_EPS as MIN_PATIENTS
from .transfers import NO_SITE, transfers

if TYPE_CHECKING:  # reasons.py imports the solver; the tables need only its records
    from .reasons import RoleReason

DECIMALS = 6
CONTRACT_VERSION = 1

# the tables' columns are defined once, in herschik.columns (geo.export reads them too)
#: a role kept with fewer patients than this times its required minimum is ``fragile``
FRAGILE_FACTOR = 1.1


def _r(value: float) -> float:
    return round(float(value), DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def treatment_statuses(instance: Instance, solution: Solution) -> dict[str, str]:
    """The status of each treatment's sub-problem (``optimal``, ``feasible``, ``infeasible``,
    ...; solution.subproblems), the solve's status for treatments without an entry."""
    statuses = {tid: str(solution.status) for tid in instance.treatment_ids}
    for entry in solution.subproblems:
        for tid in entry.get("treatments") or ():
            if tid in statuses and entry.get("status") is not None:
                statuses[tid] = str(entry["status"])
    return statuses


def _solved(status: str) -> bool:
    return status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


def site_volumes_table(instance: Instance, solution: Solution, params: SolveParams
                       ) -> pd.DataFrame:
    """One row per site and treatment, sorted by ids (contract extension: treatments without
    a volume norm are included too, with ``norm`` and ``required_min`` empty).

    ``volume_after`` and ``kept_after`` are empty (NaN / None) when the solve was infeasible,
    and for the treatments without a plan of a partial plan (``treatment_status``).
    """
    norms = instance.norm_matrix()
    required = required_matrix(instance, params)
    volume_after = solution.flow.sum(axis=0) if solution.flow is not None else None
    odds_1y = odds_period = np.full(norms.shape, np.nan)
    if volume_after is not None and solution.keep is not None:
        # the odds of meeting the norm of every kept pair with a norm (optimiser/confidence.py)
        kept_volume = np.where(solution.keep, volume_after, np.nan)
        odds_1y = p_meet_norm(kept_volume, norms, 1)
        odds_period = p_meet_norm(kept_volume, norms, params.norm_period_years)
    statuses = treatment_statuses(instance, solution)
    planned = [volume_after is not None and solution.keep is not None
               and _solved(statuses[tid]) for tid in instance.treatment_ids]
    columns = _site_volume_columns(instance, solution, norms, required, volume_after,
                                   planned, (odds_1y, odds_period), statuses)
    if not norms.size:  # no rows: the records' empty frame (object columns)
        frame = pd.DataFrame.from_records([], columns=SITE_VOLUME_COLUMNS)
    else:
        frame = pd.DataFrame(columns, columns=SITE_VOLUME_COLUMNS)
    frame = frame.sort_values(["site_id", "intervention_id"], kind="stable")
    return frame.reset_index(drop=True)


def _site_volume_columns(instance: Instance, solution: Solution, norms: np.ndarray,
                         required: np.ndarray, volume_after: np.ndarray | None,
                         planned_by_treatment: list[bool], odds: tuple[np.ndarray, np.ndarray],
                         statuses: dict[str, str]) -> dict[str, list[Any]]:
    """site_volumes' columns in the rows' order (site, then treatment), each value as a
    record per row had it (Python's round, None where empty): pandas infers the same dtypes
    from these lists as from the records, at a fraction of the cost."""
    tids = instance.treatment_ids
    n_sites = len(instance.sites)
    has_norm = (~np.isnan(norms)).ravel().tolist()
    planned = planned_by_treatment * n_sites
    no_plan: list[Any] = [None] * len(planned)
    return {
        "region_id": [site.region_id for site in instance.sites for _t in tids],
        "site_id": [site.id for site in instance.sites for _t in tids],
        "site_name": [site.name for site in instance.sites for _t in tids],
        "intervention_id": list(tids) * n_sites,
        "norm": _rounded_where(norms, has_norm),
        "required_min": _rounded_where(required, has_norm),
        "volume_before": [_r(v) for v in instance.baseline_volume.ravel().tolist()],
        "volume_after": (_rounded_where(volume_after, planned) if volume_after is not None
                         else no_plan),
        "kept_before": (instance.baseline_volume > 0).ravel().tolist(),
        "kept_after": ([bool(k) if p else None
                        for p, k in zip(planned, solution.keep.ravel().tolist(), strict=True)]
                       if solution.keep is not None else no_plan),
        "p_meet_norm_1y": [_odds(v) for v in odds[0].ravel().tolist()],
        "p_meet_norm_period": [_odds(v) for v in odds[1].ravel().tolist()],
        "treatment_status": [statuses[tid] for tid in tids] * n_sites,
    }


def _rounded_where(values: np.ndarray, present: list[bool]) -> list[float | None]:
    """``_r(v)`` where present, else None, in ``values``' C order."""
    return [_r(v) if p else None for p, v in zip(present, values.ravel().tolist(), strict=True)]


def _odds(value: float) -> float | None:
    return None if value != value else _r(value)  # NaN


def assignments_table(instance: Instance, solution: Solution) -> pd.DataFrame:
    """One row per (area, treatment, site after, site of today) with patients > 0 after
    reallocation, sorted by ids (optimiser/transfers.py: the rows of an area and treatment add
    up to its flow per site after, and to today's flow per site of today).

    ``region_id`` is the area's region when the instance carries ``meta["area_regions"]``
    (a mapping area_id -> region_id, or a comma-separated list aligned with area_ids), else the
    treating site's region. ``travel_min_before`` is the patient-weighted mean baseline travel of
    the area and treatment (NaN when the area had no baseline patients; extra_min is then NaN);
    ``travel_min_site_before`` the trip to the row's hospital of today (empty for ``new``
    patients of demand growth). ``move``: stays / displaced / moved_optional / new.
    """
    if solution.flow is None:
        return pd.DataFrame(columns=ASSIGNMENT_COLUMNS)
    moves = transfers(instance, solution.flow)
    keep_after = (solution.keep if solution.keep is not None
                  else solution.flow.sum(axis=0) > MIN_PATIENTS)
    area_ids = np.array(instance.area_ids, dtype=object)
    site_ids = np.array(instance.site_ids, dtype=object)
    treat_ids = np.array(instance.treatment_ids, dtype=object)
    patients = np.round(moves.patients, DECIMALS) + 0.0
    # flows that round to 0 at DECIMALS are solver noise, not an assignment; the rows are
    # selected and sorted by (area_id, intervention_id, site_id, site_id_before) here, on
    # the ids' ranks, before the frame is built (pandas' sort of the built frame was most of
    # the table's time); the keys are unique per row, so the order is the one sort_values gave
    rows = np.nonzero((moves.site_after != NO_SITE) & (patients > 0))[0]
    before_rank = np.where(moves.site_before[rows] == NO_SITE, -1,
                           _ranks(site_ids)[moves.site_before[rows]])
    rows = rows[np.lexsort((before_rank, _ranks(site_ids)[moves.site_after[rows]],
                            _ranks(treat_ids)[moves.treatment[rows]],
                            _ranks(area_ids)[moves.area[rows]]))]
    a_idx, t_idx = moves.area[rows], moves.treatment[rows]
    s_idx, b_idx = moves.site_after[rows], moves.site_before[rows]
    base = instance.baseline_travel()
    area_regions = _area_regions(instance)
    site_regions = np.array([site.region_id for site in instance.sites], dtype=object)
    travel = instance.travel_min[a_idx, s_idx]
    before = base[a_idx, t_idx]
    # instance.area_name of each area, without a call per area
    area_names = (instance.area_names if len(instance.area_names) == len(instance.area_ids)
                  else [""] * len(instance.area_ids))
    site_names = [site.name for site in instance.sites]
    has_before = b_idx != NO_SITE
    b_safe = np.where(has_before, b_idx, 0)
    b_or_none = np.where(has_before, b_idx, len(site_ids))  # the last label: "" (no site)
    travel_site_before = np.where(has_before, instance.travel_min[a_idx, b_safe], np.nan)
    move = np.where(~has_before, 0, np.where(
        b_idx == s_idx, 1, np.where(keep_after[b_safe, t_idx], 2, 3)))
    statuses = treatment_statuses(instance, solution)
    frame = pd.DataFrame({
        "region_id": (_labels(area_regions, a_idx) if area_regions is not None
                      else _labels(site_regions, s_idx)),
        "area_id": _labels(area_ids, a_idx),
        "area_name": _labels(area_names, a_idx),
        "intervention_id": _labels(treat_ids, t_idx),
        "site_id": _labels(site_ids, s_idx),
        "site_name": _labels(site_names, s_idx),
        "patients": patients[rows],
        "travel_min": np.round(travel, DECIMALS) + 0.0,
        "travel_min_before": np.round(before, DECIMALS) + 0.0,
        "extra_min": np.round(travel - before, DECIMALS) + 0.0,
        "site_id_before": _labels([*site_ids, ""], b_or_none),
        "site_name_before": _labels([*site_names, ""], b_or_none),
        "travel_min_site_before": np.round(travel_site_before, DECIMALS) + 0.0,
        "move": _labels(["new", "stays", "moved_optional", "displaced"], move),
        "treatment_status": (_labels([statuses[tid] for tid in treat_ids], t_idx)
                             if len(rows) else []),
    }, columns=ASSIGNMENT_COLUMNS)
    return frame


def _labels(labels: Any, index: np.ndarray) -> Any:
    """The string column ``labels[index]``: the few distinct labels become a pandas array
    once and are taken by index (building it from one Python string per row was most
    of the assignments table's time). Without rows an empty object column, as pandas makes
    of the per-row strings (an empty table's dtypes unchanged)."""
    if not len(index):
        return np.asarray(labels, dtype=object)[index]
    # a Series infers the labels' type as a frame's column does (str with pandas 3, object
    # with pandas 2), so the table's dtypes do not depend on this shortcut
    return pd.Series(np.asarray(labels, dtype=object)).array.take(index)


def _ranks(ids: np.ndarray) -> np.ndarray:
    """Each id's position in the sorted ids (code point order, as pandas sorts strings)."""
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[np.argsort(ids.astype(str), kind="stable")] = np.arange(len(ids))
    return ranks


def flows_table(instance: Instance, solution: Solution,
                assignments: pd.DataFrame | None = None) -> pd.DataFrame:
    """flows.csv: patients per year from each hospital of today to each other hospital after,
    per treatment (the moved rows of :func:`assignments_table`, summed over areas).

    ``travel_min_from`` / ``travel_min_to``: patient-weighted mean trip of these patients to
    the hospital of today / after; ``mean_extra_min`` their difference, ``max_extra_min`` the
    largest difference of one area's patients. ``move``: displaced (the hospital of today stops
    the treatment) or moved_optional (it keeps it). Sorted by treatment, from, to.
    """
    asg = assignments if assignments is not None else assignments_table(instance, solution)
    moved = asg[asg["move"].isin(["displaced", "moved_optional"])]
    if moved.empty:
        return pd.DataFrame(columns=HOSPITAL_FLOW_COLUMNS)
    moved = moved.assign(
        _extra=moved["travel_min"] - moved["travel_min_site_before"],
        _w_from=moved["patients"] * moved["travel_min_site_before"],
        _w_to=moved["patients"] * moved["travel_min"])
    moved = moved.assign(_w_extra=moved["patients"] * moved["_extra"])
    keys = ["intervention_id", "site_id_before", "site_id"]
    grouped = moved.groupby(keys, sort=True)
    # three grouped reductions (the same cython sums, maxima and firsts as one named
    # aggregation, which spent most of this table's time in pandas' bookkeeping)
    agg = pd.concat([
        grouped[["site_name_before", "site_name", "move", "treatment_status"]].first(),
        grouped[["patients", "_w_from", "_w_to", "_w_extra"]].sum(),
        grouped["_extra"].max().rename("max_extra_min")], axis=1).rename(
        columns={"site_name_before": "site_name_from", "site_name": "site_name_to"}
    ).reset_index()
    site_regions = {site.id: site.region_id for site in instance.sites}
    names = {t.id: t.name for t in instance.treatments}
    frame = pd.DataFrame({
        "region_id": agg["site_id_before"].map(site_regions),
        "intervention_id": agg["intervention_id"],
        "intervention_name": agg["intervention_id"].map(names).fillna(""),
        "site_id_from": agg["site_id_before"],
        "site_name_from": agg["site_name_from"],
        "site_id_to": agg["site_id"],
        "site_name_to": agg["site_name_to"],
        "move": agg["move"],
        "patients": np.round(agg["patients"].to_numpy(float), DECIMALS) + 0.0,
        "travel_min_from": np.round(agg["_w_from"] / agg["patients"], DECIMALS) + 0.0,
        "travel_min_to": np.round(agg["_w_to"] / agg["patients"], DECIMALS) + 0.0,
        "mean_extra_min": np.round(agg["_w_extra"] / agg["patients"], DECIMALS) + 0.0,
        "max_extra_min": np.round(agg["max_extra_min"].to_numpy(float), DECIMALS) + 0.0,
        "treatment_status": agg["treatment_status"],
    }, columns=HOSPITAL_FLOW_COLUMNS)
    return frame.reset_index(drop=True)


def hospital_status(provided_before: bool, provided_after: bool, has_norm: bool,
                    volume_after: float, required: float) -> str:
    """One word for a (site, treatment): kept / lost / gained / below_norm / unchanged_no_norm.

    below_norm: provides it after with fewer patients than the required minimum (only the
    small-region rule allows that; the norm is then not met). unchanged_no_norm: the treatment
    has no norm at the site and the site provides it before and after.
    """
    if provided_after and has_norm and volume_after < required - BELOW_NORM_TOL:
        return "below_norm"
    if provided_before and provided_after:
        return "kept" if has_norm else "unchanged_no_norm"
    return "lost" if provided_before else "gained"


def hospital_changes_from_site_volumes(site_volumes: pd.DataFrame,
                                       treatment_names: dict[str, str] | None = None
                                       ) -> pd.DataFrame:
    """The hospital_changes rows of a site_volumes table (also for result folders on disk)."""
    names = treatment_names or {}
    records = [record for r in _rows(site_volumes)
               if (record := _change_record(r, names)) is not None]
    frame = pd.DataFrame.from_records(records, columns=HOSPITAL_CHANGE_COLUMNS)
    for column in ("keep_cost_moves", "keep_cost_patient_min"):  # empty until with_reasons
        frame[column] = frame[column].astype(float)
    frame = frame.sort_values(["site_id", "intervention_id"], kind="stable")
    return frame.reset_index(drop=True)


def _rows(frame: pd.DataFrame) -> Any:
    """``frame.itertuples(index=False)``: the same named tuples of the same Python values,
    from each column's ``tolist`` (iterating pandas' Arrow-backed string columns value by
    value was most of hospital_changes' time)."""
    if not frame.columns.is_unique or not len(frame.columns):
        return frame.itertuples(index=False)
    row = namedtuple("Pandas", [str(c) for c in frame.columns], rename=True)  # type: ignore[misc]
    return map(row._make, zip(*(frame[c].tolist() for c in frame.columns), strict=True))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _change_record(r: Any, names: dict[str, str]) -> dict[str, Any] | None:
    """The hospital_changes row of one site_volumes row, None for a pair that provides the
    treatment neither before nor after."""
    before = _truthy(r.kept_before)
    feasible = not _missing(r.kept_after)
    after = _truthy(r.kept_after) if feasible else False
    if not (before or after):
        return None
    has_norm = not _missing(r.norm)
    volume_before = float(r.volume_before)
    volume_after = float(r.volume_after) if feasible else None
    return {
        "region_id": r.region_id,
        "site_id": r.site_id,
        "site_name": r.site_name,
        "intervention_id": r.intervention_id,
        "intervention_name": names.get(str(r.intervention_id), ""),
        "norm": float(r.norm) if has_norm else None,
        "required_min": float(r.required_min) if has_norm else None,
        "volume_before": volume_before,
        "volume_after": volume_after,
        "volume_change": (_r(volume_after - volume_before) if volume_after is not None
                          else None),
        "status": _change_status(r, before, after, has_norm, volume_after),
        # result folders written before the odds existed lack the columns: empty
        "p_meet_norm_1y": _number_or_none(getattr(r, "p_meet_norm_1y", None)),
        "p_meet_norm_period": _number_or_none(getattr(r, "p_meet_norm_period", None)),
        "treatment_status": _word(getattr(r, "treatment_status", None)),
        "fragile": (feasible and after and has_norm
                    and volume_after is not None
                    and volume_after < FRAGILE_FACTOR * float(r.required_min)),
        "reason": None,
        "keep_feasible": None,
        "keep_cost_moves": None,
        "keep_cost_patient_min": None,
        "keep_moves_from": None,
    }


def _change_status(r: Any, before: bool, after: bool, has_norm: bool,
                   volume_after: float | None) -> str | None:
    """hospital_status of the row; None without a plan (an infeasible solve)."""
    if volume_after is None:
        return None
    return hospital_status(before, after, has_norm, volume_after or 0.0,
                           float(r.required_min) if has_norm else 0.0)


def _number_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, str) and not value.strip():
        return None
    number = float(value)
    return number if math.isfinite(number) else None
def with_reasons(hospital_changes: pd.DataFrame, reasons: list[RoleReason],
                 sentence: Callable[[RoleReason], str],
                 moves_from: Callable[[RoleReason], str]) -> pd.DataFrame:
    """hospital_changes with the reason columns of its lost rows filled from ``reasons``
    (optimiser/reasons.py); rows without a reason keep them empty. ``sentence`` writes the
    ``reason`` column and ``moves_from`` the ``keep_moves_from`` one (the words are the
    caller's: herschik.scenarios.reason_words)."""
    frame = hospital_changes.copy()
    by_key = {(r.site_id, r.intervention_id): r for r in reasons}
    for column in ("reason", "keep_feasible", "keep_moves_from"):
        frame[column] = frame[column].astype(object)
    for i, key in enumerate(zip(frame["site_id"], frame["intervention_id"], strict=True)):
        r = by_key.get(key)
        if r is None:
            continue
        frame.at[i, "reason"] = sentence(r)
        frame.at[i, "keep_feasible"] = r.keep_feasible
        frame.at[i, "keep_cost_moves"] = r.keep_cost_moves
        frame.at[i, "keep_cost_patient_min"] = r.keep_cost_patient_min
        frame.at[i, "keep_moves_from"] = moves_from(r)
    return frame


def _word(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) if value is not None else False


def _area_regions(instance: Instance) -> np.ndarray | None:
    raw: Any = instance.meta.get("area_regions") if instance.meta else None
    if raw is None:
        return None
    if isinstance(raw, dict):
        return np.array([raw.get(a, "") for a in instance.area_ids], dtype=object)
    if isinstance(raw, str):
        parts = raw.split(",")
        if len(parts) == len(instance.area_ids):
            return np.array(parts, dtype=object)
        return None
    parts = list(raw)
    return np.array(parts, dtype=object) if len(parts) == len(instance.area_ids) else None


def _clean(value: Any) -> Any:
    """Round floats, turn numpy scalars into Python ones and non-finite floats into None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return _r(f) if math.isfinite(f) else None
    return value


def summary_dict(instance: Instance, solution: Solution, params: SolveParams,
                 kpis: dict[str, Any]) -> dict[str, Any]:
    """The contract's summary.json as a dict (plus decomposition, subproblems, warnings).

    Timings are rounded to milliseconds: they are the only fields that differ between runs.
    """
    return _clean({
        "contract": CONTRACT_VERSION,
        "region_id": instance.region_id,
        "scenario": params.model_dump(mode="json"),
        "status": solution.status.value,
        "objective": solution.objective,
        "mip_gap": solution.mip_gap,
        "mip_bound": solution.mip_bound,
        "build_seconds": round(solution.build_seconds, 3),
        "solve_seconds": round(solution.solve_seconds, 3),
        "solver": solution.solver,
        "kpis": kpis,
        "diagnosis": solution.diagnosis,
        "baseline": instance.meta.get("baseline", "illustrative"),
        # where today's volumes come from, in words (first line of every output; issue 22)
        "baseline_source": instance.meta.get(
            "baseline_source",
            "Baseline: illustrative (calibrated to published provider counts)"
            if instance.meta.get("baseline", "illustrative") == "illustrative"
            else "Baseline: the dataset's own volumes"),
        "network": instance.meta.get("network", "default"),
        "decomposition": solution.decomposition,
        "subproblems": solution.subproblems,
        "warnings": list(solution.warnings),
    })
