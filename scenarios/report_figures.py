"""Report sections about the run as a whole: alerts, key figures, solve, diagnosis, scenario,
caveats."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from herschik.optimiser.status import SolveStatus
from herschik.scenarios.report_format import Html, badge, esc, fmt, fmt_exact, html_table
from herschik.scenarios.report_hospitals import treatment_order

#: KPI rows of the key-figures table: (key, label, unit, definition). The definitions are those
#: of docs/OUTPUTS.md, shown next to every number.
KPI_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("patients", "Patients per year", "patients/yr", "all patients of the treatments"),
    ("patients_displaced", "Patients displaced", "patients/yr",
     "today's patients whose hospital stops the treatment"),
    ("displaced_share", "Share displaced", "%", "patients displaced / patients"),
    ("displaced_mean_extra_min", "Mean extra travel of displaced patients", "min",
     "their travel after minus their trip today, patient-weighted"),
    ("displaced_p90_extra_min", "90th percentile extra travel of displaced patients", "min",
     "90% of displaced patients travel at most this much longer"),
    ("displaced_max_extra_min", "Largest extra travel of a displaced patient", "min", ""),
    ("patients_moved_optional", "Optional moves", "patients/yr",
     "patients moved although their hospital keeps the treatment"),
    ("patients_moved", "Patients treated elsewhere", "patients/yr",
     "displaced + optional moves (+ growth)"),
    ("mean_travel_min_before", "Mean travel before", "min", "all patients, today"),
    ("mean_travel_min_after", "Mean travel after", "min", "all patients, after"),
    ("mean_extra_min", "Mean extra travel (all patients)", "min",
     "mean travel after minus before over all patients, also those who stay"),
    ("p90_extra_min", "90th percentile extra travel (all patients)", "min",
     "per flow: travel after minus the area's mean travel today"),
    ("max_extra_min", "Largest extra travel (any flow)", "min", ""),
    ("max_travel_min_after", "Longest travel after", "min", ""),
)


def top_alerts(summary: Mapping[str, Any]) -> str:
    """Diagnosis and warnings, first thing on the page (before any figure)."""
    out = []
    status = str(summary.get("status", "unknown"))
    diagnosis = summary.get("diagnosis")
    if diagnosis:
        reason = diagnosis.get("reason") if isinstance(diagnosis, Mapping) else diagnosis
        out.append(f'<div class="alert"><strong>The scenario is {esc(status)}.</strong> '
                   f"{esc(reason)}</div>")
    warnings = summary.get("warnings") or []
    violations = (summary.get("verification") or {}).get("violations") or []
    if warnings or violations:
        items = [f"<li>{esc(w)}</li>" for w in warnings]
        items += [f'<li class="warn">Verifier: {esc(v)}</li>' for v in violations]
        out.append('<div class="alert warnings"><strong>Warnings</strong><ul>'
                   + "".join(items) + "</ul></div>")
    return "".join(out)


def _kpi_value(key: str, value: Any) -> str:
    if key.endswith("share") and isinstance(value, (int, float)):
        return f"{value:.1%}"
    return fmt(value)


def key_figures_section(summary: Mapping[str, Any], names: Mapping[str, str]) -> str:
    k = summary.get("kpis") or {}
    out = []
    if k:
        before = k.get("providers_before") or {}
        after = k.get("providers_after") or {}
        lost = k.get("providers_lost")
        gained = k.get("providers_gained")
        rows = [(label, Html(f'<span data-kpi="{esc(key)}">{esc(_kpi_value(key, k[key]))}'
                              "</span>"), unit, definition)
                for key, label, unit, definition in KPI_ROWS if key in k]
        rows.append(("Providers (sum over treatments)",
                     f"{fmt(sum(before.values()))} → {fmt(sum(after.values()))}",
                     f"{len(after) or len(before)} treatments", ""))
        if isinstance(lost, Mapping) and isinstance(gained, Mapping):
            rows.append(("Providers lost / gained",
                         Html(f'<span data-kpi="providers_lost">{sum(lost.values())}</span> / '
                               f'<span data-kpi="providers_gained">{sum(gained.values())}'
                               "</span>"),
                         "site x treatment", "provides it today and not after / after only"))
        known = {key for key, *_ in KPI_ROWS} | {
            "providers_before", "providers_after", "providers_lost", "providers_gained",
            "shared_care", "per_treatment"}
        for key, value in k.items():
            if key not in known and not isinstance(value, (dict, list)):
                rows.append((key.replace("_", " "), fmt(value), "", ""))
        shared = k.get("shared_care")
        if isinstance(shared, Mapping):
            for key, value in shared.items():
                rows.append((f"Shared care: {key.replace('_', ' ')}", _kpi_value(key, value),
                             "", ""))
        out.append(html_table(["Figure", "Value", "Unit", "Definition"], rows, cls="kpis",
                          numeric=[False, True, False, False]))
        per = k.get("per_treatment")
        if isinstance(per, Mapping) and per:
            out.append("<h3>Displaced patients per treatment</h3>")
            prow = []
            for tid in treatment_order(per, names):
                v = per[tid]
                label = f"{names[tid]} ({tid})" if names.get(tid) else tid
                prow.append((label, v.get("patients"),
                             v.get("patients_displaced"),
                             Html(esc(_kpi_value("displaced_share", v.get("displaced_share")))),
                             v.get("displaced_mean_extra_min"), v.get("displaced_p90_extra_min"),
                             v.get("displaced_max_extra_min"), v.get("patients_moved_optional"),
                             f"{v.get('providers_before')} → {v.get('providers_after')}"))
            out.append(html_table(
                ["Treatment", "Patients /yr", "Displaced /yr", "Share", "Extra min: mean",
                 "p90", "max", "Optional moves /yr", "Providers"],
                prow, cls="displaced",
                numeric=[False, True, True, True, True, True, True, True, True]))
            out.append('<p class="note">Extra minutes of the displaced patients (their travel '
                       "after minus their trip today); providers before → after.</p>")
    else:
        out.append('<p class="note">No key figures: no reallocation was computed.</p>')
    diagnosis = summary.get("diagnosis")
    if isinstance(diagnosis, Mapping) and len(diagnosis) > 1:
        out.append("<h3>Diagnosis</h3>")
        out.append(_diagnosis(diagnosis))
    return "".join(out)


def solve_section(summary: Mapping[str, Any]) -> str:
    out = []
    status = str(summary.get("status", "unknown"))
    gap = summary.get("mip_gap")
    solve_rows = [
        ("Status", badge(status)),
        ("Objective", fmt(summary.get("objective"), 2)),
        ("MIP gap", f"{gap:.2%}" if isinstance(gap, (int, float)) else "—"),
        ("Solver", fmt(summary.get("solver"))),
        ("Build time", f"{fmt(summary.get('build_seconds'), 2)} s"),
        ("Solve time", f"{fmt(summary.get('solve_seconds'), 2)} s"),
        ("Decomposition", fmt(summary.get("decomposition") or "—")),
    ]
    out.append(html_table(["Item", "Value"], solve_rows, cls="solve"))
    subproblems = summary.get("subproblems") or []
    if subproblems:
        cols: list[str] = []
        for sub in subproblems:
            cols.extend(c for c in sub if c not in cols)
        rows = [[sub.get(c) for c in cols] for sub in subproblems]
        numeric = [all(isinstance(sub.get(c), (int, float)) and not isinstance(sub.get(c), bool)
                       for sub in subproblems if sub.get(c) is not None) for c in cols]
        out.append("<h3>Sub-problems</h3>")
        out.append(html_table(cols, rows, cls="subproblems", numeric=numeric))
    return "".join(out)


def _brief(value: Any, limit: int = 6) -> str:
    """Short text for a nested diagnosis value: lists are cut after ``limit`` items."""
    if isinstance(value, (list, tuple)):
        items = [_brief(v, limit) for v in value[:limit]]
        more = f" … ({len(value) - limit} more)" if len(value) > limit else ""
        return "; ".join(items) + more if items else "—"
    if isinstance(value, Mapping):
        items = list(value.values())
        if len(items) == 2 and not isinstance(items[1], (list, dict)):
            return f"{fmt_exact(items[0])} ({fmt_exact(items[1])})"
        return ", ".join(f"{k} {fmt_exact(v)}" for k, v in list(value.items())[:limit])
    return fmt_exact(value)


def _diagnosis(diagnosis: Mapping[str, Any]) -> str:
    """The diagnosis dict: reasons as a list, scalars as a table, per-treatment dicts as
    tables (one row per treatment), long lists shortened."""
    out = []
    reasons = diagnosis.get("reasons")
    if isinstance(reasons, (list, tuple)) and reasons:
        out.append("<ul>" + "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>")
    scalars = []
    for key, value in diagnosis.items():
        if key in ("reason", "reasons"):
            continue
        nested = isinstance(value, Mapping) and value and all(
            isinstance(v, Mapping) for v in value.values())
        if nested:
            cols: list[str] = []
            for inner in value.values():
                cols.extend(c for c in inner if c not in cols)
            rows = [[k, *(_brief(inner.get(c)) for c in cols)] for k, inner in value.items()]
            out.append(f"<h4>{esc(key.replace('_', ' '))}</h4>")
            out.append(html_table(["", *cols], rows, cls="diagnosis-detail"))
        else:
            scalars.append((key, _brief(value, 20)))
    if scalars:
        out.insert(1 if out and out[0].startswith("<ul>") else 0,
                   html_table(["Item", "Value"], scalars, cls="diagnosis"))
    return "".join(out)


def scenario_section(summary: Mapping[str, Any]) -> str:
    scenario = summary.get("scenario") or {}
    rows = [(key, fmt_exact(value)) for key, value in scenario.items()]
    rows += [("baseline", fmt(summary.get("baseline"))), ("network", fmt(summary.get("network"))),
             ("contract", fmt(summary.get("contract")))]
    return html_table(["Parameter", "Value"], rows, cls="scenario")


def caveats_section(summary: Mapping[str, Any], notes: Sequence[str]) -> str:
    items = []
    baseline = summary.get("baseline")
    if baseline == "illustrative":
        items.append("<strong>Illustrative baseline.</strong> Today's volumes per hospital are "
                     "an illustrative reconstruction from public sources and population-based "
                     "demand, not registry data. Results show the mechanics and orders of "
                     "magnitude of a reallocation; do not read them as statements about "
                     "specific hospitals. Run with <code>--data</code> and your own volumes for "
                     "decisions.")
    elif baseline == "user":
        items.append("Baseline volumes and demand were supplied by the user "
                     "(<code>--data</code>); their quality determines the results.")
    network = summary.get("network")
    if network == "default":
        items.append("<strong>Default road network.</strong> Travel times come from the "
                     "embedded, simplified national road skeleton (main roads only, typical "
                     "speeds, no congestion). They are approximate: compare scenarios rather "
                     "than reading absolute minutes. Use <code>--network</code> with a network "
                     "built from an OpenStreetMap extract for detail.")
    elif network:
        items.append(f"Travel times by car from the road network <code>{esc(network)}</code>, "
                     "free-flow speeds, no congestion.")
    scenario = summary.get("scenario") or {}
    shared = (summary.get("kpis") or {}).get("shared_care")
    visits = scenario.get("visits_per_patient")
    local = scenario.get("shared_care_local_visits")
    if shared or visits is not None:
        detail = (f" It assumes {esc(fmt(visits))} visits per patient of which "
                  f"{esc(fmt(local))} take place at the nearest hospital."
                  if visits is not None and local is not None else "")
        items.append("<strong>Shared care.</strong> The shared-care figures estimate the travel "
                     "burden if follow-up visits stay close to home while the operation moves "
                     f"to the treating centre.{detail} They are indicative, not part of the "
                     "optimisation.")
    items.append("Travel before is the patient-weighted mean travel of each area in the "
                 "baseline (the shortest-travel assignment that reproduces today's volumes, "
                 "or the fitted flows of an imported volume table); travel after is the "
                 "optimised assignment. Volumes are patients per year; norms are minimum "
                 "volumes per site.")
    if summary.get("status") == SolveStatus.INFEASIBLE:
        items.append("The scenario is infeasible: there is no reallocation that meets every "
                     "constraint. See the diagnosis under Key figures for the reason and the "
                     "nearest feasible settings.")
    items.extend(esc(n) for n in notes)
    return '<ul class="caveats">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


