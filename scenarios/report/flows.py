"""Report sections on where patients go and why hospitals lose a treatment.

"Where the patients go": for every hospital whose patients of today move, per treatment, the
hospitals they go to (flows.csv), with patients per year and their extra travel. "Why
hospitals lose a treatment": every lost role of hospital_changes.csv with its reason in words
and the price of keeping it (optimiser/reasons.py), and the kept roles that are fragile.
Both are self-contained blocks of report.html (scenarios/report/page.py places them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from herschik.scenarios.report.format import Html, esc, fmt, html_table

_MOVE_WORDS = {"displaced": "displaced (the hospital stops it)",
               "moved_optional": "moved (the hospital keeps it)"}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def flows_section(flows: pd.DataFrame | None, names: Mapping[str, str]) -> str:
    """Per hospital of today: where its moving patients go, per treatment (flows.csv)."""
    if flows is None:
        return '<p class="note">No reallocation was computed.</p>'
    if flows.empty:
        return '<p class="note">Nobody changes hospital: every patient stays where they are ' \
               "treated today.</p>"
    out = ['<p class="note">From flows.csv: patients per year who are treated at another '
           "hospital after than today, from their hospital of today to the one after. Extra "
           "travel = their trip after − their trip today (minutes by car, patient-weighted; "
           "the largest is that of one area's patients).</p>"]
    ordered = flows.sort_values(["site_name_from", "site_id_from", "intervention_id",
                                 "patients", "site_id_to"],
                                ascending=[True, True, True, False, True], kind="stable")
    for (site_id, site_name), part in ordered.groupby(["site_id_from", "site_name_from"],
                                                      sort=False):
        total = float(part["patients"].sum())
        title = f"Where the patients of {site_name or site_id} go"
        out.append(f'<h3 id="flows-{esc(site_id)}">{esc(title)}</h3>')
        out.append(f'<p class="note">{esc(fmt(total))} patients per year change hospital.</p>')
        rows = []
        for r in part.itertuples(index=False):
            treatment = r.intervention_name or names.get(r.intervention_id, r.intervention_id)
            rows.append((treatment, Html(esc(r.site_name_to or r.site_id_to)),
                         _MOVE_WORDS.get(r.move, r.move), _number(r.patients),
                         _number(r.mean_extra_min), _number(r.max_extra_min)))
        out.append(html_table(["Treatment", "To hospital", "Why they move", "Patients /yr",
                               "Mean extra min", "Largest extra min"], rows, cls="flows",
                              numeric=[False, False, False, True, True, True]))
    return "".join(out)


def reasons_section(hospital_changes: pd.DataFrame | None) -> str:
    """Every lost role with its reason, then the fragile kept roles (hospital_changes.csv)."""
    if hospital_changes is None or hospital_changes.empty or \
            hospital_changes["status"].isna().all():
        return '<p class="note">No reallocation was computed.</p>'
    hc = hospital_changes
    out = []
    lost = hc[hc["status"] == "lost"]
    if "reason" not in hc.columns:
        out.append('<p class="note">Reasons were not computed for this run.</p>')
    elif lost.empty:
        out.append('<p class="note">No hospital loses a treatment.</p>')
    else:
        out.append('<p class="note">Each reason is exact: the plan was solved again with the '
                   "hospital forced to keep the treatment, and compared with this plan.</p>")
        rows = [(Html(esc(r.site_name or r.site_id)),
                 Html(esc(r.intervention_name or r.intervention_id)), _number(r.volume_before),
                 _number(r.required_min), Html(esc(r.reason or "—")))
                for r in lost.sort_values(["site_name", "intervention_id"]).itertuples(
                    index=False)]
        out.append(html_table(["Hospital", "Treatment", "Patients /yr today",
                               "Required minimum /yr", "Why it loses the treatment"], rows,
                              cls="reasons", numeric=[False, False, True, True, False]))
    if "fragile" in hc.columns:
        fragile = hc[hc["fragile"].map(lambda v: str(v).lower() in ("true", "1"))]
        out.append("<h3>Fragile: kept within 10 % of the required minimum</h3>")
        if fragile.empty:
            out.append('<p class="note">No kept treatment is within 10 % of its required '
                       "minimum.</p>")
        else:
            rows = [(Html(esc(r.site_name or r.site_id)),
                     Html(esc(r.intervention_name or r.intervention_id)),
                     _number(r.volume_after), _number(r.required_min),
                     f"{fmt(100 * (float(r.volume_after) / float(r.required_min) - 1))} %")
                    for r in fragile.sort_values(["site_name", "intervention_id"]).itertuples(
                        index=False)]
            out.append('<p class="note">A small fall in patients would take these below the '
                       "norm.</p>")
            out.append(html_table(["Hospital", "Treatment", "Patients /yr after",
                                   "Required minimum /yr", "Above the minimum"], rows,
                                  cls="fragile", numeric=[False, False, True, True, True]))
    return "".join(out)
