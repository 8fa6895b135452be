"""Self-contained ``report.html`` of one run: no scripts, no network, images inlined.

Sections (stable headings, tested): h1 ``herschik report — <region_id>``, then the diagnosis
and warnings (first, before any figure); h2 ``Key figures`` (with definitions and the
displaced patients per treatment), ``Hospital changes``, ``Providers per treatment``, ``Extra
travel``, ``Maps``, ``Solve``, ``Scenario``, ``Caveats``. Key figures carry
``data-kpi="<summary.json key>"`` so that tests (and scripts) can read them back. Every text
from the data is escaped with :func:`html.escape`. The output is deterministic (no
timestamps), so two identical runs give identical reports.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.export import normalise_assignments, normalise_site_volumes
from herschik.optimiser.kpis import weighted_quantile
from herschik.optimiser.status import SolveStatus
from herschik.optimiser.tolerances import BELOW_NORM_TOL
from matplotlib.figure import Figure

SECTIONS = ("Key figures", "Hospital changes", "Providers per treatment", "Extra travel",
            "Maps", "Solve", "Scenario", "Caveats")

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

CSS = """
:root { --ink:#1d2733; --muted:#5b6875; --line:#d9dee4; --band:#f4f6f8; --accent:#08306b; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;
       color:var(--ink); background:#fff; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; color: var(--accent); }
h2 { font-size: 20px; margin: 34px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--accent); }
h3 { font-size: 16px; margin: 22px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 4px; }
p.sub, p.note, figcaption { color: var(--muted); }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--band); font-weight: 600; }
table.providers-overview td:nth-child(2), table.gain-lose td:nth-child(2),
table.providers td:nth-child(2) { min-width: 16em; }
table.providers td:first-child, table.gain-lose td:first-child,
table.providers-overview td:first-child { white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.status { display:inline-block; padding:1px 8px; border-radius:10px; font-weight:600;
          font-size:12px; }
.status.optimal, .status.kept { background:#e0ecf8; color:#08306b; }
.status.feasible { background:#fff3cd; color:#7a5a00; }
.status.infeasible, .status.lost { background:#fde0dd; color:#a50f15; }
.status.gained { background:#e5f5e0; color:#006d2c; }
.warn { color:#a50f15; font-weight:600; }
.alert { border-left: 5px solid #a50f15; background: #fdf0ef; padding: 10px 14px;
         margin: 14px 0; }
.grid { display:flex; flex-wrap:wrap; gap: 0 36px; align-items:flex-start; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
ul.caveats li { margin-bottom: 6px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print { h2 { break-after: avoid; } figure, table { break-inside: avoid; } }
"""

_STATUS_ORDER = {"kept": 0, "gained": 1, "lost": 2, "—": 3}


# ----------------------------------------------------------------------------- formatting
def esc(value: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 1) -> str:
    """Human formatting: thousands separators, ``—`` for missing, yes/no for booleans."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "—"
        return f"{float(value):,.{digits}f}"
    if isinstance(value, (list, tuple)) and all(
            isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v) for v in value) if value else "—"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str) if value else "—"
    return str(value)


def fmt_exact(value: Any) -> str:
    """Like :func:`fmt` but floats as entered (``0.05``, ``60``): for parameters."""
    if isinstance(value, (float, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(float(value)):
        return f"{float(value):g}"
    return fmt(value)


def pct(value: float | None) -> str:
    """Signed whole percentage (``+12%``), ``—`` when missing."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:+.0%}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, cls: str,
           numeric: Sequence[bool] | None = None) -> str:
    """A table; cells are strings already escaped (use :func:`esc`) or values to format."""
    numeric = list(numeric or [False] * len(headers))
    head = "".join(f'<th{" class=num" if n else ""} scope="col">{esc(h)}</th>'
                   for h, n in zip(headers, numeric, strict=True))
    body = []
    for row in rows:
        cells = []
        for cell, n in zip(row, numeric, strict=True):
            text = cell.html if isinstance(cell, _Html) else esc(fmt(cell))
            cells.append(f'<td{" class=num" if n else ""}>{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


class _Html:
    """Marks a cell as ready-made (already escaped) HTML."""

    def __init__(self, html_text: str) -> None:
        self.html = html_text


def _badge(word: str) -> _Html:
    return _Html(f'<span class="status {esc(word)}">{esc(word)}</span>')


def _png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# ----------------------------------------------------------------------------- sections
def _top_alerts(summary: Mapping[str, Any]) -> str:
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


def _key_figures(summary: Mapping[str, Any], names: Mapping[str, str]) -> str:
    k = summary.get("kpis") or {}
    out = []
    if k:
        before = k.get("providers_before") or {}
        after = k.get("providers_after") or {}
        lost = k.get("providers_lost")
        gained = k.get("providers_gained")
        rows = [(label, _Html(f'<span data-kpi="{esc(key)}">{esc(_kpi_value(key, k[key]))}'
                              "</span>"), unit, definition)
                for key, label, unit, definition in KPI_ROWS if key in k]
        rows.append(("Providers (sum over treatments)",
                     f"{fmt(sum(before.values()))} → {fmt(sum(after.values()))}",
                     f"{len(after) or len(before)} treatments", ""))
        if isinstance(lost, Mapping) and isinstance(gained, Mapping):
            rows.append(("Providers lost / gained",
                         _Html(f'<span data-kpi="providers_lost">{sum(lost.values())}</span> / '
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
        out.append(_table(["Figure", "Value", "Unit", "Definition"], rows, cls="kpis",
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
                             _Html(esc(_kpi_value("displaced_share", v.get("displaced_share")))),
                             v.get("displaced_mean_extra_min"), v.get("displaced_p90_extra_min"),
                             v.get("displaced_max_extra_min"), v.get("patients_moved_optional"),
                             f"{v.get('providers_before')} → {v.get('providers_after')}"))
            out.append(_table(
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


def _solve(summary: Mapping[str, Any]) -> str:
    out = []
    status = str(summary.get("status", "unknown"))
    gap = summary.get("mip_gap")
    solve_rows = [
        ("Status", _badge(status)),
        ("Objective", fmt(summary.get("objective"), 2)),
        ("MIP gap", f"{gap:.2%}" if isinstance(gap, (int, float)) else "—"),
        ("Solver", fmt(summary.get("solver"))),
        ("Build time", f"{fmt(summary.get('build_seconds'), 2)} s"),
        ("Solve time", f"{fmt(summary.get('solve_seconds'), 2)} s"),
        ("Decomposition", fmt(summary.get("decomposition") or "—")),
    ]
    out.append(_table(["Item", "Value"], solve_rows, cls="solve"))
    subproblems = summary.get("subproblems") or []
    if subproblems:
        cols: list[str] = []
        for sub in subproblems:
            cols.extend(c for c in sub if c not in cols)
        rows = [[sub.get(c) for c in cols] for sub in subproblems]
        numeric = [all(isinstance(sub.get(c), (int, float)) and not isinstance(sub.get(c), bool)
                       for sub in subproblems if sub.get(c) is not None) for c in cols]
        out.append("<h3>Sub-problems</h3>")
        out.append(_table(cols, rows, cls="subproblems", numeric=numeric))
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
            out.append(_table(["", *cols], rows, cls="diagnosis-detail"))
        else:
            scalars.append((key, _brief(value, 20)))
    if scalars:
        out.insert(1 if out and out[0].startswith("<ul>") else 0,
                   _table(["Item", "Value"], scalars, cls="diagnosis"))
    return "".join(out)


def _providers_today(sv: pd.DataFrame, names: Mapping[str, str]) -> str:
    """Infeasible run: today's providers per treatment, as context for the diagnosis."""
    note = ('<p class="note">No reallocation was computed (the scenario is infeasible). '
            "Today's providers per treatment, for reference:</p>")
    if sv.empty:
        return '<p class="note">No reallocation was computed (the scenario is infeasible).</p>'

    groups = {t: part for t, part in sv.groupby("intervention_id", sort=False)}
    rows = []
    for t in treatment_order(groups, names):
        part = groups[t]
        today = part[part["kept_before"]]
        rows.append((t, names.get(t, ""), part["norm"].iloc[0], part["required_min"].iloc[0],
                     len(today), int((today["volume_before"] >= today["required_min"]).sum()),
                     float(part["volume_before"].sum())))
    return note + _table(["Treatment", "Name", "Norm /yr", "Required minimum /yr",
                          "Providers today", "Of which at the required minimum",
                          "Patients /yr"], rows, cls="providers-today",
                         numeric=[False, False, True, True, True, True, True])


def _status(before: bool, after: bool) -> str:
    return "kept" if before and after else "gained" if after else "lost" if before else "—"


def _margin_for(scenario: Mapping[str, Any], treatment: str) -> float:
    by = scenario.get("margin_by_treatment") or {}
    return float(by.get(treatment, scenario.get("margin", 0.0) or 0.0))


def treatment_order(ids: Iterable[str], names: Mapping[str, str]) -> list[str]:
    """Treatments in the dataset's order (that of ``names``), unknown ones sorted after."""
    ids = set(ids)
    known = [t for t in names if t in ids]
    return known + sorted(ids - set(known))


def _norm_text(part: pd.DataFrame) -> str:
    """The norm(s) of a treatment: one number, the tiers (``200 / 80 / 50``) or ``none``."""
    norms = sorted({float(n) for n in part["norm"].dropna()}, reverse=True)
    if not norms:
        return "none"
    return " / ".join(fmt(n, 0) if float(n).is_integer() else fmt(n) for n in norms)


def _providers(sv: pd.DataFrame, asg: pd.DataFrame, scenario: Mapping[str, Any],
               names: Mapping[str, str]) -> str:
    if sv.empty:
        return '<p class="note">No provider table: no reallocation was computed.</p>'
    out = []
    overview = []
    patients = asg.groupby("intervention_id")["patients"].sum()
    groups = {t: part for t, part in sv.groupby("intervention_id", sort=False)}
    order = treatment_order(groups, names)
    for t, part in ((t, groups[t]) for t in order):
        # margin achieved against each site's own norm (tiered norms differ per site)
        kept = part[part["kept_after"] & part["norm"].notna() & (part["norm"] > 0)]
        margins = kept["volume_after"] / kept["norm"] - 1
        overview.append((t, names.get(t, ""), _norm_text(part),
                         int(part["kept_before"].sum()), int(part["kept_after"].sum()),
                         int((part["kept_before"] & ~part["kept_after"]).sum()),
                         int((part["kept_after"] & ~part["kept_before"]).sum()),
                         float(patients.get(t, 0.0)),
                         _Html(esc(pct(float(margins.min())) if len(margins) else "—"))))
    out.append(_table(["Treatment", "Name", "Norm /yr", "Providers before", "Providers after",
                       "Lost", "Gained", "Patients /yr", "Smallest margin achieved"],
                      overview, cls="providers-overview",
                      numeric=[False, False, True, True, True, True, True, True, True]))
    for t, part in ((t, groups[t]) for t in order):
        label = f"{names[t]} ({t})" if t in names else t
        out.append(f'<h3 id="t-{esc(t)}">{esc(label)}</h3>')
        norm_text = _norm_text(part)
        tiered = " / " in norm_text
        if norm_text == "none":
            rule = ("No volume norm: its providers and patients stay as today unless the "
                    "scenario closes or caps a site.")
        else:
            by_role = " (by hospital role; each site is measured against its own)"
            rule = (f"Norm {norm_text} patients per year{by_role if tiered else ''}"
                    f"; required minimum = norm × (1 + margin {_margin_for(scenario, t):.0%}).")
        out.append(f'<p class="note">{esc(rule)} Providers {int(part["kept_before"].sum())} → '
                   f"{int(part['kept_after'].sum())}. Margin achieved = volume after / the "
                   "site's norm − 1.</p>")
        shown = part[part["kept_before"] | part["kept_after"] | (part["volume_before"] > 0)
                     | (part["volume_after"] > 0)].copy()
        shown["status"] = [_status(b, a) for b, a in
                           zip(shown["kept_before"], shown["kept_after"], strict=True)]
        shown["_order"] = shown["status"].map(_STATUS_ORDER)
        shown = shown.sort_values(["_order", "volume_after", "site_id"],
                                  ascending=[True, False, True])
        rows = []
        for r in shown.itertuples(index=False):
            has_norm = isinstance(r.norm, float) and math.isfinite(r.norm) and r.norm > 0
            margin = (r.volume_after / r.norm - 1) if r.kept_after and has_norm else None
            short = (r.kept_after and has_norm
                     and r.volume_after < r.required_min - BELOW_NORM_TOL)
            margin_html = esc(pct(margin)) if margin is not None else "—"
            if short:
                margin_html = (f'<span class="warn" title="below the required minimum">'
                               f"{margin_html} ⚠</span>")
            rows.append((r.site_id, r.site_name, r.norm if has_norm else "none",
                         r.volume_before, r.volume_after,
                         r.volume_after - r.volume_before, r.kept_before, r.kept_after,
                         _badge(r.status), _Html(margin_html)))
        out.append(_table(["Site", "Name", "Norm", "Volume before", "Volume after", "Change",
                           "Provider before", "Provider after", "Status", "Margin achieved"],
                          rows, cls="providers",
                          numeric=[False, False, True, True, True, True, False, False, False,
                                   True]))
    return "".join(out)


def _hospital_changes(hc: pd.DataFrame | None, sv: pd.DataFrame,
                      names: Mapping[str, str]) -> str:
    """What each hospital keeps, loses and gains (hospital_changes.csv), then the summary."""
    if hc is None or hc.empty or hc["status"].isna().all():
        return '<p class="note">No reallocation was computed.</p>'
    out = [_gain_lose(sv, names)]
    changed = hc[hc["status"] != "unchanged_no_norm"]
    order = {"lost": 0, "gained": 1, "below_norm": 2, "kept": 3}
    changed = changed.assign(_o=changed["status"].map(order)).sort_values(
        ["site_id", "_o", "intervention_id"])
    rows = [(r.site_id, r.site_name, r.intervention_id, r.intervention_name or
             names.get(r.intervention_id, ""),
             r.norm if isinstance(r.norm, float) and math.isfinite(r.norm) else "none",
             r.volume_before, r.volume_after, r.volume_change, _badge(r.status))
            for r in changed.itertuples(index=False)]
    out.append("<h3>Every hospital and treatment with a norm</h3>")
    out.append('<p class="note">From hospital_changes.csv: one row per hospital and treatment it '
               "provides before or after. lost = provides it today and not after; gained = "
               "after only; below_norm = kept below the required minimum (small-region rule). "
               f"{int((hc['status'] == 'unchanged_no_norm').sum())} row(s) of treatments "
               "without a norm are unchanged and not listed.</p>")
    out.append(_table(["Site", "Name", "Treatment", "Treatment name", "Norm", "Volume before",
                       "Volume after", "Change", "Status"], rows, cls="hospital-changes",
                      numeric=[False, False, False, False, True, True, True, True, False]))
    return "".join(out)


def _gain_lose(sv: pd.DataFrame, names: Mapping[str, str]) -> str:
    if sv.empty:
        return '<p class="note">No reallocation was computed.</p>'
    gained = sv[sv["kept_after"] & ~sv["kept_before"]]
    lost = sv[sv["kept_before"] & ~sv["kept_after"]]
    per_site = sv.groupby("site_id", sort=True).agg(
        site_name=("site_name", "first"), before=("volume_before", "sum"),
        after=("volume_after", "sum"))
    per_site["change"] = per_site["after"] - per_site["before"]
    per_site["gained"] = gained.groupby("site_id")["intervention_id"].agg(
        lambda s: ", ".join(sorted(s)))
    per_site["lost"] = lost.groupby("site_id")["intervention_id"].agg(
        lambda s: ", ".join(sorted(s)))
    changed = per_site[per_site["gained"].notna() | per_site["lost"].notna()
                       | (per_site["change"].abs() >= 0.5)].copy()
    if changed.empty:
        return '<p class="note">No hospital gains or loses a treatment.</p>'
    changed = changed.reset_index().sort_values(["change", "site_id"], ascending=[False, True])
    rows = [(r.site_id, r.site_name, r.gained if isinstance(r.gained, str) else "—",
             r.lost if isinstance(r.lost, str) else "—", r.before, r.after, r.change)
            for r in changed.itertuples(index=False)]
    intro = (f'<p class="note">{len(gained)} treatment(s) gained and {len(lost)} lost, over '
             f"{len(changed)} hospital(s); volumes are summed over all treatments "
             "(patients per year).</p>")
    return intro + _table(["Site", "Name", "Treatments gained", "Treatments lost",
                           "Volume before", "Volume after", "Change"], rows, cls="gain-lose",
                          numeric=[False, False, False, False, True, True, True])


def extra_travel_histogram_png(assignments: pd.DataFrame, dpi: int = 100) -> bytes:
    """Patient-weighted histogram of ``extra_min`` as PNG bytes."""
    extra = assignments["extra_min"].to_numpy(float)
    weights = assignments["patients"].to_numpy(float)
    lo = math.floor(min(0.0, float(extra.min()))) if len(extra) else 0
    hi = math.ceil(max(1.0, float(extra.max()))) if len(extra) else 1
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60) if (hi - lo) / s <= 30)
    edges = np.arange(lo - lo % step, hi + step, step, dtype=float)
    counts, _ = np.histogram(extra, bins=edges, weights=weights)
    fig = Figure(figsize=(7.0, 3.0), dpi=dpi)
    ax = fig.add_axes((0.09, 0.18, 0.88, 0.74))
    colours = ["#9ecae1" if e < 0 else "#fd8d3c" if e > 0 else "#bdbdbd" for e in edges[:-1]]
    ax.bar(edges[:-1], counts, width=step, align="edge", color=colours, edgecolor="white")
    ax.set_xlabel("extra travel time by car (min per patient; after − before)")
    ax.set_ylabel("patients per year")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5")
    ax.set_axisbelow(True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _extra_travel(asg: pd.DataFrame, kpis: Mapping[str, Any] | None = None) -> str:
    if asg.empty:
        return '<p class="note">No reallocation was computed.</p>'
    kpis = kpis or {}
    extra = asg["extra_min"].to_numpy(float)
    w = asg["patients"].to_numpy(float)
    total = w.sum()
    bands = [("shorter than before", -np.inf, -0.05), ("unchanged (±0.05 min)", -0.05, 0.05),
             ("0–10 min more", 0.05, 10), ("10–20 min more", 10, 20),
             ("20–30 min more", 20, 30), ("30–45 min more", 30, 45),
             ("45–60 min more", 45, 60), ("more than 60 min more", 60, np.inf)]
    rows = []
    for label, lo, hi in bands:
        sel = (extra >= lo) & (extra < hi) if math.isfinite(hi) else extra >= lo
        p = float(w[sel].sum())
        if p > 0 or label.startswith(("unchanged", "0–10")):
            rows.append((label, p, _Html(esc(f"{p / total:.1%}" if total else "—"))))
    img = _png_data_uri(extra_travel_histogram_png(asg))
    # the summary's KPIs where present, so that report and summary.json show one number
    stats = [("Median", weighted_quantile(extra, w, 0.5)),
             ("90th percentile", kpis.get("p90_extra_min", weighted_quantile(extra, w, 0.9))),
             ("Maximum", kpis.get("max_extra_min", float(extra.max()))),
             ("Patient-weighted mean", kpis.get(
                 "mean_extra_min", float((w * extra).sum() / total) if total else None))]
    if "displaced_mean_extra_min" in kpis:
        stats += [("Displaced patients: mean", kpis.get("displaced_mean_extra_min")),
                  ("Displaced patients: 90th percentile", kpis.get("displaced_p90_extra_min")),
                  ("Displaced patients: maximum", kpis.get("displaced_max_extra_min"))]
    return (
        '<p class="note">Extra minutes = travel after minus the area\'s mean travel before, '
        "per patient, weighted by patients per year (from assignments.csv; patients who stay "
        "at a hospital of a split area show its difference to the area mean). The displaced "
        "patients' figures compare each with their own trip today.</p>"
        f'<figure><img alt="Histogram of extra travel minutes, patient-weighted" src="{img}">'
        "<figcaption>Patients per year by extra travel time (blue: shorter, grey: unchanged, "
        "orange: longer).</figcaption></figure>"
        '<div class="grid">'
        + _table(["Extra travel", "Patients /yr", "Share"], rows, cls="extra-bands",
                 numeric=[False, True, True])
        + _table(["Statistic", "Extra min"], stats, cls="extra-stats", numeric=[False, True])
        + "</div>")


def _maps(map_pngs: Mapping[str, Path], names: Mapping[str, str]) -> str:
    if not map_pngs:
        return '<p class="note">No maps were drawn for this run.</p>'
    out = []
    for key, png in map_pngs.items():
        label = "Overview: all treatments" if key == "overview" else (
            f"{names[key]} ({key})" if key in names else key)
        uri = _png_data_uri(Path(png).read_bytes())
        out.append(f'<figure id="map-{esc(key)}"><img alt="Map: {esc(label)}" src="{uri}">'
                   f"<figcaption>{esc(label)}. Areas coloured by extra travel minutes; sites "
                   "sized by volume after; red crosses lose the treatment.</figcaption></figure>")
    return "".join(out)


def _scenario(summary: Mapping[str, Any]) -> str:
    scenario = summary.get("scenario") or {}
    rows = [(key, fmt_exact(value)) for key, value in scenario.items()]
    rows += [("baseline", fmt(summary.get("baseline"))), ("network", fmt(summary.get("network"))),
             ("contract", fmt(summary.get("contract")))]
    return _table(["Parameter", "Value"], rows, cls="scenario")


def _caveats(summary: Mapping[str, Any], notes: Sequence[str]) -> str:
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
                 "reconstructed baseline (the shortest-travel assignment that reproduces "
                 "today's volumes); travel after is the optimised assignment. Volumes are "
                 "patients per year; norms are minimum volumes per site.")
    if summary.get("status") == SolveStatus.INFEASIBLE:
        items.append("The scenario is infeasible: there is no reallocation that meets every "
                     "constraint. See the diagnosis under Key figures for the reason and the "
                     "nearest feasible settings.")
    items.extend(esc(n) for n in notes)
    return '<ul class="caveats">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def render_report(
    summary: Mapping[str, Any],
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    map_pngs: Mapping[str, Path] | None = None,
    *,
    treatment_names: Mapping[str, str] | None = None,
    region_name: str | None = None,
    notes: Sequence[str] = (),
    hospital_changes: pd.DataFrame | None = None,
) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    sv = normalise_site_volumes(site_volumes)
    asg = normalise_assignments(assignments)
    names = dict(treatment_names or {})
    region = str(summary.get("region_id", ""))
    status = str(summary.get("status", "unknown"))
    scenario = summary.get("scenario") or {}
    title = f"herschik report — {region}"
    sub = " · ".join(x for x in (region_name, f"status {status}",
                                 f"objective {scenario.get('objective', '—')}",
                                 f"solver {summary.get('solver', '—')}") if x)
    infeasible = status == SolveStatus.INFEASIBLE
    none = '<p class="note">No reallocation was computed (the scenario is infeasible).</p>'
    if hospital_changes is None and not sv.empty:
        from herschik.optimiser.results import hospital_changes_from_site_volumes

        hospital_changes = hospital_changes_from_site_volumes(sv, names)
    bodies = {
        "Key figures": _key_figures(summary, names),
        "Hospital changes": none if infeasible else _hospital_changes(hospital_changes, sv,
                                                                      names),
        "Providers per treatment": (_providers_today(sv, names) if infeasible
                                    else _providers(sv, asg, scenario, names)),
        "Extra travel": none if infeasible else _extra_travel(asg, summary.get("kpis")),
        "Maps": _maps(map_pngs or {}, names),
        "Solve": _solve(summary),
        "Scenario": _scenario(summary),
        "Caveats": _caveats(summary, notes),
    }
    sections = "".join(
        f'<section id="{esc(h.lower().replace(" ", "-"))}"><h2>{esc(h)}</h2>{bodies[h]}</section>'
        for h in SECTIONS)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{esc(title)}</h1><p class=\"sub\">{esc(sub)}</p>"
        f"{_top_alerts(summary)}{sections}"
        f"<footer>Written by herschik (result contract {esc(summary.get('contract', '—'))}). "
        "Self-contained: this file needs no network.</footer>"
        "</main></body></html>\n")


def write_report(
    path: str | Path,
    summary: Mapping[str, Any],
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    map_pngs: Mapping[str, Path],
    *,
    treatment_names: Mapping[str, str] | None = None,
    region_name: str | None = None,
    notes: Sequence[str] = (),
    hospital_changes: pd.DataFrame | None = None,
) -> Path:
    """Write the self-contained ``report.html`` of one run (atomically) and return its path.

    ``map_pngs`` maps a key (``"overview"`` or an intervention id) to a PNG that is embedded as
    base64. ``treatment_names`` (intervention id -> name) and ``region_name`` only improve the
    labels; ``notes`` are added to the caveats. Works for infeasible runs (empty tables): the
    report then explains the diagnosis.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(summary, site_volumes, assignments, map_pngs,
                         treatment_names=treatment_names, region_name=region_name, notes=notes,
                         hospital_changes=hospital_changes)
    from herschik.atomic import write_text

    write_text(path, text)
    return path
