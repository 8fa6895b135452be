"""What the browser shows of a plan, as JSON: hospital rows, area colours, key figures, how
the plan was obtained, the plan itself and two plans side by side.

Pure functions of a plan's instance and verified run (no state): the numbers are those of
the CLI's tables (site_volumes.csv, hospital_changes.csv, flows.csv, summary.json's KPIs).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from herschik.optimiser.confidence import p_meet_norm
from herschik.optimiser.formulation import required_matrix
from herschik.optimiser.instance import Instance
from herschik.optimiser.kpis import SCALAR_KPIS
from herschik.optimiser.params import SolveParams
from herschik.optimiser.results import hospital_status
from herschik.optimiser.status import SolveStatus
from herschik.optimiser.whatif import StepReport
from herschik.scenarios.run import RunResult

from herschik.i18n import N_, _, translate_name

from .models import APP_FIELDS, ForcedPair, Plan, describe

#: patients per year below which a flow is solver noise (as in optimiser.results)
MIN_PATIENTS = 1e-9
#: the status of a hospital row whose treatment has no plan (a partial plan)
NO_PLAN = "no_plan"
#: hospital statuses (the names of hospital_changes.csv, see SHARED_NAMES; and no_plan)
STATUSES = ("kept", "lost", "gained", "below_norm", "unchanged_no_norm", NO_PLAN)
#: treatment statuses of a treatment with a plan
SOLVED = (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


def _round(value: float, digits: int = 2) -> float | None:
    value = float(value)
    return round(value, digits) + 0.0 if math.isfinite(value) else None


def planned(instance: Instance, run: RunResult) -> np.ndarray:
    """Which treatments have a plan (all of a feasible plan; the solved ones of a partial
    plan, by ``summary["treatment_status"]``)."""
    statuses = run.summary.get("treatment_status") or {}
    return np.array([statuses.get(tid, "optimal") in SOLVED for tid in instance.treatment_ids],
                    dtype=bool)


def hospital_rows(instance: Instance, run: RunResult, params: SolveParams) -> list[dict[str, Any]]:
    """One row per site x treatment the site provides before or after (or that is forced).

    Provided before = baseline volume > 0, after = ``Solution.keep`` (the flags of
    site_volumes.csv and of the provider KPIs); the status is hospital_changes.csv's
    (:func:`herschik.optimiser.results.hospital_status`). A treatment without a plan (of a
    partial plan) has status ``no_plan`` and no volume after, as site_volumes.csv leaves it.
    """
    solution = run.solution
    norms = instance.norm_matrix()
    required = required_matrix(instance, params)
    before = instance.baseline_volume
    after = solution.flow.sum(axis=0)
    has_plan = planned(instance, run)
    keep = solution.keep & has_plan[None, :]
    kept_volume = np.where(keep, after, np.nan)
    odds_1y = p_meet_norm(kept_volume, norms, 1)
    odds_period = p_meet_norm(kept_volume, norms, params.norm_period_years)
    rows = []
    for s, site in enumerate(instance.sites):
        for t, treatment in enumerate(instance.treatments):
            provides_before = bool(before[s, t] > 0)
            provides_after = bool(keep[s, t])
            forced = _forced(params, site.id, treatment.id)
            if not (provides_before or provides_after or forced):
                continue
            has_norm = not np.isnan(norms[s, t])
            if not has_plan[t]:
                status = NO_PLAN
            elif provides_before or provides_after:
                status = hospital_status(provides_before, provides_after, has_norm,
                                         float(after[s, t]),
                                         float(required[s, t]) if has_norm else 0.0)
            else:
                status = None  # forced closed, not provided today: nothing changes
            volume_after = after[s, t] if has_plan[t] else np.nan
            rows.append(
                {
                    "site_index": s,
                    "site_id": site.id,
                    "site_name": site.name,
                    "intervention_id": treatment.id,
                    "intervention_name": treatment.name or treatment.id,
                    "norm": _round(norms[s, t], 6) if has_norm else None,
                    "required_min": _round(required[s, t], 6) if has_norm else None,
                    "volume_before": _round(before[s, t], 6),
                    "volume_after": _round(volume_after, 6),
                    "volume_change": _round(volume_after - before[s, t], 6),
                    # the odds of meeting the norm (site_volumes.csv's, kept pairs only)
                    "p_meet_norm_1y": _odds(odds_1y[s, t]),
                    "p_meet_norm_period": _odds(odds_period[s, t]),
                    "status": status,
                    "forced": forced,
                }
            )
    return with_flows_and_reasons(rows, run)


def _forced(params: SolveParams, site_id: str, treatment_id: str) -> str | None:
    """``close`` / ``keep`` when the pair (or the whole site) is forced so, else None."""
    for what, pairs in (("close", params.force_close), ("keep", params.force_keep)):
        if any(p.site_id == site_id and p.intervention_id in (treatment_id, "*")
               for p in pairs):
            return what
    return None


def with_flows_and_reasons(rows: list[dict[str, Any]], run: RunResult) -> list[dict[str, Any]]:
    """Each hospital row with ``has_reason`` (a lost role with a norm: the page asks why when
    the hospital is opened, session.AppState.hospital_reasons; the plan carries no reasons),
    ``fragile`` and ``flows_out``: where its patients of today who change hospital go (the
    rows of flows.csv from this hospital and treatment), exactly as the CLI writes them."""
    reasons: dict[tuple[str, str], dict[str, Any]] = {}
    if run.hospital_changes is not None:
        for r in run.hospital_changes.itertuples(index=False):
            reasons[(r.site_id, r.intervention_id)] = {
                "fragile": bool(getattr(r, "fragile", False)),
            }
    flows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if run.flows is not None:
        for f in run.flows.itertuples(index=False):
            flows.setdefault((f.site_id_from, f.intervention_id), []).append({
                "site_id": f.site_id_to, "site_name": f.site_name_to, "move": f.move,
                "patients": _round(f.patients, 6),
                "mean_extra_min": _round(f.mean_extra_min, 6),
                "max_extra_min": _round(f.max_extra_min, 6)})
    for row in rows:
        key = (row["site_id"], row["intervention_id"])
        row.update(reasons.get(key, {"fragile": False}))
        # the roles optimiser.reasons.lost_role_reasons explains: lost, with a norm
        row["has_reason"] = row["status"] == "lost" and row["norm"] is not None
        row["flows_out"] = sorted(flows.get(key, []),
                                  key=lambda f: (-f["patients"], f["site_id"]))
    return rows


def _odds(value: float) -> float | None:
    return None if np.isnan(value) else _round(value, 6)


def area_view(instance: Instance, run: RunResult) -> dict[str, Any]:
    """Per area (in instance order) and per treatment (and all): what the map colours.

    ``dest`` / ``dest_before``: index of the site treating most of the area's patients after /
    before (-1: none); ``extra``: patient-weighted mean extra minutes (as the KPIs define it);
    ``patients`` and ``moved`` patients per year. A partial plan colours the treatments
    with a plan (``all``: those together); a treatment without one is None.
    """
    has_plan = planned(instance, run)
    flow = run.solution.flow[:, :, has_plan]
    base_flow = instance.baseline_flow[:, :, has_plan]
    demand = instance.demand[:, has_plan]
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
    base_travel = instance.baseline_travel()
    base_travel = base_travel[:, has_plan]
    extra = travel[:, :, None] - np.nan_to_num(base_travel)[:, None, :]
    extra = np.where(np.isnan(base_travel)[:, None, :], 0.0, extra)
    flow = np.where(flow > MIN_PATIENTS, flow, 0.0)
    moved = demand - np.minimum(flow, base_flow).sum(axis=1)

    def view(f: np.ndarray, bf: np.ndarray, e_sum: np.ndarray, m: np.ndarray) -> dict[str, Any]:
        patients = f.sum(axis=1)
        has = patients > MIN_PATIENTS
        dest = np.where(has, f.argmax(axis=1), -1)
        dest_before = np.where(bf.sum(axis=1) > MIN_PATIENTS, bf.argmax(axis=1), -1)
        mean_extra = np.where(has, e_sum / np.where(has, patients, 1.0), np.nan)
        return {
            "dest": dest.tolist(),
            "dest_before": dest_before.tolist(),
            "extra": [_round(v, 1) for v in mean_extra],
            "patients": [_round(v, 2) for v in patients],
            "moved": [_round(max(v, 0.0), 2) for v in m],
        }

    per_treatment: dict[str, dict[str, Any] | None] = {}
    ids = [tid for tid, ok in zip(instance.treatment_ids, has_plan) if ok]
    for t, tid in enumerate(ids):
        f = flow[:, :, t]
        per_treatment[tid] = view(
            f, base_flow[:, :, t], (f * extra[:, :, t]).sum(axis=1), moved[:, t]
        )
    # in instance order; a treatment without a plan has nothing to colour
    per_treatment = {tid: per_treatment.get(tid) for tid in instance.treatment_ids}
    all_view = view(
        flow.sum(axis=2), base_flow.sum(axis=2), (flow * extra).sum(axis=(1, 2)), moved.sum(axis=1)
    )
    return {"treatments": per_treatment, "all": all_view}


#: plain-words labels of the KPIs, in display order; (key, label, unit). English, marked for
#: the catalog: the page shows them in its language.
KPI_LABELS: tuple[tuple[str, str, str], ...] = (
    ("patients", N_("Patients per year"), "patients"),
    ("patients_displaced", N_("Displaced: their hospital stops the treatment"), "patients"),
    ("displaced_share", N_("Share of patients displaced"), "share"),
    ("displaced_mean_extra_min", N_("Extra travel of displaced patients, mean"), "min"),
    ("displaced_p90_extra_min", N_("Extra travel of displaced patients, 90th percentile"), "min"),
    ("displaced_max_extra_min", N_("Extra travel of displaced patients, maximum"), "min"),
    ("patients_moved", N_("Patients changing hospital"), "patients"),
    ("patients_moved_optional", N_("Moved although their hospital keeps the treatment"),
     "patients"),
    ("mean_travel_min_before", N_("Travel today, mean"), "min"),
    ("mean_travel_min_after", N_("Travel after, mean"), "min"),
    ("mean_extra_min", N_("Extra travel per patient, mean"), "min"),
    ("p90_extra_min", N_("Extra travel per patient, 90th percentile"), "min"),
    ("max_extra_min", N_("Extra travel, maximum"), "min"),
    ("max_travel_min_after", N_("Longest travel after"), "min"),
)


def kpi_rows(kpis: dict[str, Any], treatment_id: str | None = None) -> list[dict[str, Any]]:
    """Label/value rows of the KPIs present (new keys are shown once the solve reports them).

    With ``treatment_id`` the rows come from ``kpis["per_treatment"]`` where present; the
    provider counts are always per treatment (or totals over all treatments).
    """
    source = kpis
    if treatment_id is not None:
        source = (kpis.get("per_treatment") or {}).get(treatment_id) or {}
    rows = []
    for key, label, unit in KPI_LABELS:
        if key in SCALAR_KPIS and treatment_id is not None and key not in source:
            continue  # a region-wide number is not shown as if it were the treatment's
        value = source.get(key)
        if value is not None:
            rows.append({"key": key, "label": label, "unit": unit, "value": value})

    def count(name: str) -> int | None:
        if treatment_id is not None and name in source:
            return int(source[name])
        table = kpis.get(name)
        if not isinstance(table, dict):
            return None
        if treatment_id is not None:
            return int(table[treatment_id]) if treatment_id in table else None
        return int(sum(table.values()))

    for key, label in (
        ("providers_before", N_("Providers today")),
        ("providers_after", N_("Providers after")),
        ("providers_lost", N_("Providers that stop")),
        ("providers_gained", N_("Providers that start")),
    ):
        value = count(key)
        if value is not None:
            rows.append({"key": key, "label": label, "unit": "providers", "value": value})
    return rows


#: what a what-if step did with a treatment's sub-problem, in the page's words
REUSE_WORDS = {
    "unchanged": N_("re-used (its model did not change)"),
    "cached": N_("re-used (solved earlier in this session with the same model)"),
    "resolved": N_("solved"),
    "still_infeasible": N_("infeasible (a restriction of an infeasible one)"),
}


def reuse_info(instance: Instance, step: StepReport, first: bool) -> dict[str, Any]:
    """How a plan was obtained: per treatment whether its sub-problem was re-used or solved.

    Counts are treatments (a sub-problem holds one, or several when bundled); ``seconds`` is
    the what-if step (model checks and solves), without KPIs and verifier."""
    treatments: dict[str, str] = {}
    for label, action in step.actions.items():
        for tid in label.split(","):
            treatments[tid] = action
    counts = dict.fromkeys(REUSE_WORDS, 0)
    for action in treatments.values():
        counts[action] = counts.get(action, 0) + 1
    reused = counts["unchanged"] + counts["cached"]
    total = len(instance.treatments)
    if first:
        text = _("solved all {total} treatments (first plan of this region in this session)",
                 total=total)
    elif counts["resolved"] == total:
        text = _("solved all {total} treatments again (the change touches every one)",
                 total=total)
    else:
        text = _("re-used {reused} of {total} treatments", reused=reused, total=total)
        if counts["resolved"]:
            text += _(", solved {count} again", count=counts["resolved"])
        if counts["still_infeasible"]:
            text += _(", {count} infeasible as before", count=counts["still_infeasible"])
        if counts["cached"]:
            text += " " + _("({count} re-used from earlier plans of this session)",
                            count=counts["cached"])
    return {
        "treatments": total,
        "subproblems": len(step.actions),
        "counts": counts,
        "reused": reused,
        "actions": treatments,
        "details": [f"{instance.treatment_label(t)}: "
                    f"{_(REUSE_WORDS[action]) if action in REUSE_WORDS else action}"
                    for t, action in ((t, treatments.get(tid, "")) for t, tid in
                                      enumerate(instance.treatment_ids))],
        "seconds": round(step.seconds, 3),
        "first": first,
        "text": text,
    }



def baseline_text(meta: dict[str, Any]) -> str:
    """Where today's volumes come from, in the page's language: the words of
    :func:`herschik.geo.dataset.baseline_source_line` (which outputs keep in English, as
    ``summary.json``'s ``baseline_source``)."""
    source = meta.get("baseline_source")
    if isinstance(source, dict) and source.get("file"):
        return _("Baseline: imported volumes {file} ({date}, sha256 {sha})", file=source["file"],
                 date=source.get("date", "?"), sha=str(source.get("sha256", ""))[:12])
    if meta.get("baseline") == "illustrative":
        return _("Baseline: illustrative (calibrated to published provider counts)")
    name = meta.get("name") or _("user data")
    return _("Baseline: the dataset's own volumes ({name})", name=name)


# --- names ---------------------------------------------------------------------------------
def place_names(instance: Instance, areas: Any) -> dict[str, str]:
    """id -> the name planners know, for the sites, treatments and areas (``areas``: the
    dataset's area table) of ``instance``'s region."""
    names = {s.id: s.name for s in instance.sites if s.name}
    names.update({t.id: translate_name(t.name) for t in instance.treatments if t.name})
    region = areas[areas["region_id"] == instance.region_id]
    names.update(dict(zip(region["area_id"].astype(str), region["area_name"].astype(str))))
    return names


def pair_text(pair: ForcedPair, names: dict[str, str]) -> str:
    """A forced pair in words: ``treatment at hospital``."""
    what = _("all treatments") if pair.intervention_id == "*" else names.get(
        pair.intervention_id, pair.intervention_id)
    return _("{treatment} at {hospital}", treatment=what,
             hospital=names.get(pair.site_id, pair.site_id))


def plain_words(text: str, names: dict[str, str]) -> str:
    """Replace ids in a diagnosis sentence by the names planners know (``id`` -> ``name``)."""
    if not names:
        return text
    ids = sorted((k for k in names if k), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(i) for i in ids) + r")(?![\w-])")
    text = pattern.sub(lambda m: names[m.group(1)], text)
    # "name (id)" labels became "name (name)": say the name once
    return re.sub(r"(?<![\w-])([^()]{3,}?) \(\1\)", r"\1", text)


# --- a plan --------------------------------------------------------------------------------
def plan_header(plan: Plan) -> dict[str, Any]:
    """A plan's headline numbers (the plans list)."""
    kpis = plan.run.kpis or {}
    return {
        "id": plan.id,
        "name": plan.name,
        "region_id": plan.settings.region_id,
        "description": describe(plan.settings),
        "status": plan.run.summary["status"],
        "patients_moved": kpis.get("patients_moved"),
        "patients_displaced": kpis.get("patients_displaced"),
        "mean_extra_min": kpis.get("mean_extra_min"),
        "providers_after": sum((kpis.get("providers_after") or {}).values()),
        "providers_before": sum((kpis.get("providers_before") or {}).values()),
        "seconds": round(plan.seconds, 3),
        # a partial plan: the treatments without a plan (ids); empty for a complete plan
        "no_plan": [t["id"] for t in (plan.partial or {}).get("treatments", [])],
    }


def plan_payload(plan: Plan) -> dict[str, Any]:
    """Everything the page shows of a plan (map colours, KPIs, hospital table)."""
    summary = plan.run.summary
    kpis = plan.run.kpis or {}
    treatments = list(plan.run.instance.treatment_ids)
    return {
        **plan_header(plan),
        "settings": plan.settings.model_dump(),
        "objective_value": summary.get("objective"),
        "mip_gap": summary.get("mip_gap"),
        "solve_seconds": summary.get("solve_seconds"),
        "build_seconds": summary.get("build_seconds"),
        "verification": summary.get("verification"),
        "warnings": summary.get("warnings", []),
        "kpis": kpis,
        "kpi_rows": {
            "all": kpi_rows(kpis),
            "treatments": {t: kpi_rows(kpis, t) for t in treatments},
        },
        "hospitals": plan.hospitals,
        "areas": plan.areas,
        "reuse": plan.reuse,
        "partial": plan.partial,
    }


# --- two plans side by side ------------------------------------------------------------------
def compare_plans(plan_a: Plan, plan_b: Plan, names: dict[str, str]) -> dict[str, Any]:
    """Two plans side by side: settings, KPIs and the hospitals whose outcome differs
    (``names``: the place names of both plans' regions)."""
    return {"a": plan_header(plan_a), "b": plan_header(plan_b),
            "settings": compare_settings(plan_a, plan_b, names),
            "kpis": compare_kpis(plan_a, plan_b),
            "hospitals": compare_hospitals(plan_a, plan_b)}


def compare_kpis(plan_a: Plan, plan_b: Plan) -> list[dict[str, Any]]:
    """Every key figure of either plan: A, B and B - A (when both are numbers)."""
    rows_a = {r["key"]: r for r in kpi_rows(plan_a.run.kpis or {})}
    rows_b = {r["key"]: r for r in kpi_rows(plan_b.run.kpis or {})}
    kpis = []
    for key in [*rows_a, *(k for k in rows_b if k not in rows_a)]:
        row = rows_a.get(key) or rows_b[key]
        va = rows_a.get(key, {}).get("value")
        vb = rows_b.get(key, {}).get("value")
        numbers = isinstance(va, (int, float)) and isinstance(vb, (int, float))
        kpis.append({"key": key, "label": row["label"], "unit": row["unit"], "a": va,
                     "b": vb, "diff": vb - va if numbers else None})
    return kpis


def compare_hospitals(plan_a: Plan, plan_b: Plan) -> list[dict[str, Any]]:
    """The hospital x treatment rows whose status or volume after differs (by 0.05 or more)."""
    hosp_a = {(r["site_id"], r["intervention_id"]): r for r in plan_a.hospitals}
    hosp_b = {(r["site_id"], r["intervention_id"]): r for r in plan_b.hospitals}
    hospitals = []
    for key in sorted(set(hosp_a) | set(hosp_b)):
        ra, rb = hosp_a.get(key) or {}, hosp_b.get(key) or {}
        va, vb = ra.get("volume_after") or 0.0, rb.get("volume_after") or 0.0
        sa, sb = ra.get("status"), rb.get("status")
        if sa == sb and abs(va - vb) < 0.05:
            continue
        row = ra or rb
        hospitals.append({
            "site_id": key[0], "site_name": row["site_name"], "intervention_id": key[1],
            "intervention_name": row["intervention_name"],
            "volume_before": row["volume_before"], "a_status": sa, "a_volume": va,
            "b_status": sb, "b_volume": vb, "diff": _round(vb - va, 6),
        })
    return hospitals


def compare_settings(plan_a: Plan, plan_b: Plan, names: dict[str, str]) -> list[dict[str, Any]]:
    """The region, every setting a planner sets, and the forced pairs in words, A and B."""
    settings = [{"key": key, "a": getattr(plan_a.settings, key),
                 "b": getattr(plan_b.settings, key)} for key in ("region_id", *APP_FIELDS)]
    for key in ("force_keep", "force_close"):
        settings.append({
            "key": key,
            "a": [pair_text(p, names) for p in getattr(plan_a.settings, key)],
            "b": [pair_text(p, names) for p in getattr(plan_b.settings, key)],
        })
    return settings
