"""Report sections about the run as a whole: alerts, key figures, solve, diagnosis, scenario,
caveats."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from herschik.optimiser.status import SolveStatus
from herschik.scenarios.report.format import (
    Html,
    badge,
    esc,
    fmt,
    fmt_exact,
    heading,
    html_table,
    share,
    status_word,
)
from herschik.scenarios.report.hospitals import treatment_order

from herschik.i18n import N_, _, status_label

#: KPI rows of the key-figures table: (key, label, unit, definition), English (marked for the
#: catalog, translated when shown). The definitions are those of docs/OUTPUTS.md.
KPI_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("patients", N_("Patients per year"), N_("patients/yr"),
     N_("all patients of the treatments")),
    ("patients_displaced", N_("Patients displaced"), N_("patients/yr"),
     N_("today's patients whose hospital stops the treatment")),
    ("displaced_share", N_("Share displaced"), "%", N_("patients displaced / patients")),
    ("displaced_mean_extra_min", N_("Mean extra travel of displaced patients"), "min",
     N_("their travel after minus their trip today, patient-weighted")),
    ("displaced_p90_extra_min", N_("90th percentile extra travel of displaced patients"), "min",
     N_("90% of displaced patients travel at most this much longer")),
    ("displaced_max_extra_min", N_("Largest extra travel of a displaced patient"), "min", ""),
    ("patients_moved_optional", N_("Optional moves"), N_("patients/yr"),
     N_("patients moved although their hospital keeps the treatment")),
    ("patients_moved", N_("Patients treated elsewhere"), N_("patients/yr"),
     N_("displaced + optional moves (+ growth)")),
    ("mean_travel_min_before", N_("Mean travel before"), "min", N_("all patients, today")),
    ("mean_travel_min_after", N_("Mean travel after"), "min", N_("all patients, after")),
    ("mean_extra_min", N_("Mean extra travel (all patients)"), "min",
     N_("mean travel after minus before over all patients, also those who stay")),
    ("p90_extra_min", N_("90th percentile extra travel (all patients)"), "min",
     N_("per flow: travel after minus the area's mean travel today")),
    ("max_extra_min", N_("Largest extra travel (any flow)"), "min", ""),
    ("max_travel_min_after", N_("Longest travel after"), "min", ""),
)

#: labels of the other rows of the KPIs (summary.json ``kpis``, kpi_differences.csv of
#: ``herschik compare``) that are not key figures with a definition
OTHER_KPI_LABELS: dict[str, str] = {
    "status": N_("Status"),
    "objective": N_("Objective value"),
    "providers_after_total": N_("Hospital roles after"),
    "providers_lost_total": N_("Hospital roles lost"),
    "weakest_p_meet_norm_1y": N_("Lowest odds of meeting the norm (1 year)"),
    "weakest_p_meet_norm_period": N_("Lowest odds of meeting the norm (period)"),
}
#: KPIs that are shares or probabilities (0..1), shown as percentages
SHARE_KPIS: tuple[str, ...] = ("displaced_share", "weakest_p_meet_norm_1y",
                               "weakest_p_meet_norm_period")


def kpi_label(key: str) -> str:
    """A KPI's name in words of the current language (the key itself when it has none)."""
    labels = {k: text for k, text, _unit, _definition in KPI_ROWS} | OTHER_KPI_LABELS
    return _(labels[key]) if key in labels else key.replace("_", " ")


#: the shared-care figures of summary.json (kpis.shared_care) in words
SHARED_CARE_LABELS: dict[str, str] = {
    "visits_per_patient": N_("visits per patient"),
    "local_visits": N_("local visits"),
    "travel_hours_without_shared_care": N_("travel hours without shared care"),
    "travel_hours_with_shared_care": N_("travel hours with shared care"),
    "travel_hours_saved": N_("travel hours saved"),
    "saving_share": N_("saving share"),
}


def top_alerts(summary: Mapping[str, Any]) -> str:
    """Diagnosis and warnings, first thing on the page (before any figure)."""
    out = []
    status = str(summary.get("status", "unknown"))
    diagnosis = summary.get("diagnosis")
    if diagnosis:
        reason = diagnosis.get("reason") if isinstance(diagnosis, Mapping) else diagnosis
        out.append('<div class="alert"><strong>'
                   + esc(_("The scenario is {status}.", status=status_label(status))) +
                   f"</strong> {esc(reason)}</div>")
    warnings = summary.get("warnings") or []
    violations = (summary.get("verification") or {}).get("violations") or []
    if warnings or violations:
        items = [f"<li>{esc(w)}</li>" for w in warnings]
        items += ['<li class="warn">' + esc(_("Verifier: {problem}", problem=v)) + "</li>"
                  for v in violations]
        out.append('<div class="alert warnings"><strong>' + esc(_("Warnings")) + "</strong><ul>"
                   + "".join(items) + "</ul></div>")
    return "".join(out)


_SPLIT = re.compile(r"split into (?P<count>\d+) independent sub-problems"
                    r"(?: \(no coupling constraint\)|; bundles join (?P<joined>.*))")


def decomposition_text(text: str) -> str:
    """summary.json's ``decomposition`` (optimiser/decomposition.py's English, kept as it is
    there) in words of the current language; another text passes through."""
    if text == "one joint model: bundles couple all treatments":
        return _("one joint model: bundles couple all treatments")
    if text == "one model (a single treatment)":
        return _("one model (a single treatment)")
    split = _SPLIT.fullmatch(text)
    if split is None:
        return text
    if split["joined"] is None:
        return _("split into {count} independent sub-problems (no coupling constraint)",
                 count=split["count"])
    return _("split into {count} independent sub-problems; bundles join {treatments}",
             count=split["count"], treatments=split["joined"])


def _kpi_value(key: str, value: Any) -> str:
    if (key.endswith("share") or key in SHARE_KPIS) and isinstance(value, (int, float)):
        return share(value)
    return fmt(value)


def key_figures_section(summary: Mapping[str, Any], names: Mapping[str, str]) -> str:
    k = summary.get("kpis") or {}
    out = []
    if k:
        out.append(html_table([_("Figure"), _("Value"), _("Unit"), _("Definition")],
                              _kpi_rows(k), cls="kpis", numeric=[False, True, False, False]))
        per = k.get("per_treatment")
        if isinstance(per, Mapping) and per:
            out.extend(_displaced_per_treatment(per, names))
    else:
        out.append('<p class="note">'
                   + esc(_("No key figures: no reallocation was computed.")) + "</p>")
    diagnosis = summary.get("diagnosis")
    if isinstance(diagnosis, Mapping) and len(diagnosis) > 1:
        out.append(heading(3, _("Diagnosis")))
        out.append(_diagnosis(diagnosis))
    return "".join(out)


def _kpi_rows(k: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The key figures table: the named KPIs, providers, other scalars, shared care."""
    before = k.get("providers_before") or {}
    after = k.get("providers_after") or {}
    lost = k.get("providers_lost")
    gained = k.get("providers_gained")
    rows: list[tuple[Any, ...]] = [
        (_(label), Html(f'<span data-kpi="{esc(key)}">{esc(_kpi_value(key, k[key]))}'
                        "</span>"), _(unit) if unit else "",
         _(definition) if definition else "")
        for key, label, unit, definition in KPI_ROWS if key in k]
    rows.append((_("Providers (sum over treatments)"),
                 f"{fmt(sum(before.values()))} → {fmt(sum(after.values()))}",
                 _("{count} treatments", count=len(after) or len(before)), ""))
    if isinstance(lost, Mapping) and isinstance(gained, Mapping):
        rows.append((_("Providers lost / gained"),
                     Html(f'<span data-kpi="providers_lost">{sum(lost.values())}</span> / '
                          f'<span data-kpi="providers_gained">{sum(gained.values())}'
                          "</span>"),
                     _("site x treatment"),
                     _("provides it today and not after / after only")))
    known = {key for key, *_ in KPI_ROWS} | {
        "providers_before", "providers_after", "providers_lost", "providers_gained",
        "shared_care", "per_treatment"}
    for key, value in k.items():
        if key not in known and not isinstance(value, (dict, list)):
            rows.append((kpi_label(key), _kpi_value(key, value), "", ""))
    shared = k.get("shared_care")
    if isinstance(shared, Mapping):
        for key, value in shared.items():
            label = _(SHARED_CARE_LABELS[key]) if key in SHARED_CARE_LABELS else key
            rows.append((_("Shared care: {item}", item=label.replace("_", " ")),
                         _kpi_value(key, value), "", ""))
    return rows


def _displaced_per_treatment(per: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    """Heading, table and note of the displaced patients per treatment."""
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
    return [
        heading(3, _("Displaced patients per treatment")),
        html_table(
            [_("Treatment"), _("Patients /yr"), _("Displaced /yr"), _("Share"),
             _("Extra min: mean"), "p90", "max", _("Optional moves /yr"), _("Providers")],
            prow, cls="displaced",
            numeric=[False, True, True, True, True, True, True, True, True]),
        '<p class="note">' + esc(_(
            "Extra minutes of the displaced patients (their travel after minus their trip "
            "today); providers before → after.")) + "</p>",
    ]


#: the fields of summary.json ``subproblems`` (their msgid is the field name: English shows it)
SUBPROBLEM_FIELDS: tuple[str, ...] = (
    N_("treatments"), N_("n_vars"), N_("n_rows"), N_("n_binaries"), N_("status"), N_("gap"),
    N_("build_seconds"), N_("solve_seconds"), N_("solver"), N_("phase1"),
    N_("unnecessary_moves_phase1"), N_("algorithm"), N_("bound"), N_("objective"))


def solve_section(summary: Mapping[str, Any]) -> str:
    out = []
    status = str(summary.get("status", "unknown"))
    gap = summary.get("mip_gap")
    solve_rows = [
        (_("Status"), badge(status)),
        (_("Objective"), fmt(summary.get("objective"), 2)),
        (_("MIP gap"), share(gap, 2) if isinstance(gap, (int, float)) else "—"),
        (_("Solver"), fmt(summary.get("solver"))),
        (_("Build time"), f"{fmt(summary.get('build_seconds'), 2)} s"),
        (_("Solve time (summed over sub-problems)"),
         f"{fmt(summary.get('solve_seconds'), 2)} s"),
        (_("Decomposition"), decomposition_text(str(summary.get("decomposition") or "—"))),
    ]
    out.append(html_table([_("Item"), _("Value")], solve_rows, cls="solve"))
    subproblems = summary.get("subproblems") or []
    if subproblems:
        cols: list[str] = []
        for sub in subproblems:
            cols.extend(c for c in sub if c not in cols)
        rows = [[status_word(str(sub.get(c))) if c == "status" and sub.get(c) else sub.get(c)
                 for c in cols] for sub in subproblems]
        numeric = [all(isinstance(sub.get(c), (int, float)) and not isinstance(sub.get(c), bool)
                       for sub in subproblems if sub.get(c) is not None) for c in cols]
        out.append(heading(3, _("Sub-problems")))
        # summary.json's field names in English; the words of the language otherwise
        headers = [_(c) if c in SUBPROBLEM_FIELDS else c for c in cols]
        out.append(html_table(headers, rows, cls="subproblems", numeric=numeric))
    return "".join(out)


def _brief(value: Any, limit: int = 6) -> str:
    """Short text for a nested diagnosis value: lists are cut after ``limit`` items."""
    if isinstance(value, (list, tuple)):
        items = [_brief(v, limit) for v in value[:limit]]
        more = (" … " + _("({count} more)", count=len(value) - limit)
                if len(value) > limit else "")
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
                   html_table([_("Item"), _("Value")], scalars, cls="diagnosis"))
    return "".join(out)


def scenario_section(summary: Mapping[str, Any]) -> str:
    scenario = summary.get("scenario") or {}
    rows = [(key, fmt_exact(value)) for key, value in scenario.items()]
    rows += [("baseline", fmt(summary.get("baseline"))), ("network", fmt(summary.get("network"))),
             ("contract", fmt(summary.get("contract")))]
    return html_table([_("Parameter"), _("Value")], rows, cls="scenario")


def caveats_section(summary: Mapping[str, Any], notes: Sequence[str]) -> str:
    items = []
    baseline = summary.get("baseline")
    if baseline == "illustrative":
        items.append(_(
            "<strong>Illustrative baseline.</strong> Today's volumes per hospital are an "
            "illustrative reconstruction from public sources and population-based demand, not "
            "registry data. Results show the mechanics and orders of magnitude of a "
            "reallocation; do not read them as statements about specific hospitals. Run with "
            "<code>--data</code> and your own volumes for decisions."))
    elif baseline == "user":
        items.append(_("Baseline volumes and demand were supplied by the user "
                       "(<code>--data</code>); their quality determines the results."))
    network = summary.get("network")
    if network == "default":
        items.append(_(
            "<strong>Default road network.</strong> Travel times come from the embedded, "
            "simplified national road skeleton (main roads only, typical speeds, no "
            "congestion). They are approximate: compare scenarios rather than reading absolute "
            "minutes. Use <code>--network</code> with a network built from an OpenStreetMap "
            "extract for detail."))
    elif network:
        items.append(_("Travel times by car from the road network <code>{network}</code>, "
                       "free-flow speeds, no congestion.", network=esc(network)))
    scenario = summary.get("scenario") or {}
    shared = (summary.get("kpis") or {}).get("shared_care")
    visits = scenario.get("visits_per_patient")
    local = scenario.get("shared_care_local_visits")
    if shared or visits is not None:
        detail = (" " + _("It assumes {visits} visits per patient of which {local} take place "
                          "at the nearest hospital.", visits=esc(fmt(visits)),
                          local=esc(fmt(local)))
                  if visits is not None and local is not None else "")
        items.append(_("<strong>Shared care.</strong> The shared-care figures estimate the "
                       "travel burden if follow-up visits stay close to home while the "
                       "operation moves to the treating centre.{detail} They are indicative, "
                       "not part of the optimisation.", detail=detail))
    items.append(_("Travel before is the patient-weighted mean travel of each area in the "
                   "baseline (the shortest-travel assignment that reproduces today's volumes, "
                   "or the fitted flows of an imported volume table); travel after is the "
                   "optimised assignment. Volumes are patients per year; norms are minimum "
                   "volumes per site."))
    if summary.get("status") == SolveStatus.INFEASIBLE:
        items.append(_("The scenario is infeasible: there is no reallocation that meets every "
                       "constraint. See the diagnosis under Key figures for the reason and the "
                       "nearest feasible settings."))
    items.extend(esc(n) for n in notes)
    return '<ul class="caveats">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
