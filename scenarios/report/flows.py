"""Report sections on where patients go and why hospitals lose a treatment.

"Where the patients go": for every hospital whose patients of today move, per treatment, the
hospitals they go to (flows.csv), with patients per year and their extra travel. "Why
hospitals lose a treatment": every lost role of hospital_changes.csv with its reason in words
and the price of keeping it (optimiser/reasons.py), and the kept roles that are fragile.
Both are self-contained blocks of report.html (scenarios/report/page.py places them).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from herschik.scenarios.report.format import Html, esc, fmt, html_table, note

from herschik.i18n import N_, _

_MOVE_WORDS = {"displaced": N_("displaced (the hospital stops it)"),
               "moved_optional": N_("moved (the hospital keeps it)"),
               "new": N_("new (demand growth)")}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def flows_section(flows: pd.DataFrame | None, names: Mapping[str, str]) -> str:
    """Per hospital of today: where its moving patients go, per treatment (flows.csv)."""
    if flows is None:
        return note(_("No reallocation was computed."))
    if flows.empty:
        return note(_("Nobody changes hospital: every patient stays where they are treated "
                      "today."))
    # quotes left as they are (the English bytes of the report stay as they were)
    out = ['<p class="note">' + html.escape(_(
        "From flows.csv: patients per year who are treated at another hospital after than "
        "today, from their hospital of today to the one after. Extra travel = their trip "
        "after − their trip today (minutes by car, patient-weighted; the largest is that of "
        "one area's patients)."), quote=False) + "</p>"]
    ordered = flows.sort_values(["site_name_from", "site_id_from", "intervention_id",
                                 "patients", "site_id_to"],
                                ascending=[True, True, True, False, True], kind="stable")
    for (site_id, site_name), part in ordered.groupby(["site_id_from", "site_name_from"],
                                                      sort=False):
        total = float(part["patients"].sum())
        title = _("Where the patients of {hospital} go", hospital=site_name or site_id)
        out.append(f'<h3 id="flows-{esc(site_id)}">{esc(title)}</h3>')
        out.append(note(_("{patients} patients per year change hospital.",
                          patients=fmt(total))))
        rows = []
        for r in part.itertuples(index=False):
            # the name in the report's language (names), else the CSV's
            treatment = names.get(r.intervention_id) or r.intervention_name \
                or r.intervention_id
            rows.append((treatment, Html(esc(r.site_name_to or r.site_id_to)),
                         _(_MOVE_WORDS[r.move]) if r.move in _MOVE_WORDS else r.move,
                         _number(r.patients), _number(r.mean_extra_min),
                         _number(r.max_extra_min)))
        out.append(html_table([_("Treatment"), _("To hospital"), _("Why they move"),
                               _("Patients /yr"), _("Mean extra min"), _("Largest extra min")],
                              rows, cls="flows",
                              numeric=[False, False, False, True, True, True]))
    return "".join(out)


def reasons_section(hospital_changes: pd.DataFrame | None,
                    names: Mapping[str, str] | None = None) -> str:
    """Every lost role with its reason, then the fragile kept roles (hospital_changes.csv);
    ``names``: treatment id -> name in the report's language. The reasons are the CSV's
    ``reason`` texts, written in the run's language (scenarios/reason_words.py)."""
    if hospital_changes is None or hospital_changes.empty or \
            hospital_changes["status"].isna().all():
        return note(_("No reallocation was computed."))
    names = names or {}
    hc = hospital_changes
    out = []
    lost = hc[hc["status"] == "lost"]

    def treatment(r: Any) -> Html:
        return Html(esc(names.get(r.intervention_id) or r.intervention_name
                        or r.intervention_id))

    if "reason" not in hc.columns:
        out.append(note(_("Reasons were not computed for this run.")))
    elif lost.empty:
        out.append(note(_("No hospital loses a treatment.")))
    else:
        out.append(note(_("Each reason is exact: the plan was solved again with the hospital "
                          "forced to keep the treatment, and compared with this plan.")))
        rows = [(Html(esc(r.site_name or r.site_id)), treatment(r), _number(r.volume_before),
                 _number(r.required_min), Html(esc(r.reason or "—")))
                for r in lost.sort_values(["site_name", "intervention_id"]).itertuples(
                    index=False)]
        out.append(html_table([_("Hospital"), _("Treatment"), _("Patients /yr today"),
                               _("Required minimum /yr"), _("Why it loses the treatment")],
                              rows, cls="reasons", numeric=[False, False, True, True, False]))
    if "fragile" in hc.columns:
        fragile = hc[hc["fragile"].map(lambda v: str(v).lower() in ("true", "1"))]
        out.append("<h3>" + esc(_("Fragile: kept within 10 % of the required minimum"))
                   + "</h3>")
        if fragile.empty:
            out.append(note(_("No kept treatment is within 10 % of its required minimum.")))
        else:
            rows = [(Html(esc(r.site_name or r.site_id)), treatment(r),
                     _number(r.volume_after), _number(r.required_min),
                     f"{fmt(100 * (float(r.volume_after) / float(r.required_min) - 1))} %")
                    for r in fragile.sort_values(["site_name", "intervention_id"]).itertuples(
                        index=False)]
            out.append(note(_("A small fall in patients would take these below the norm.")))
            out.append(html_table([_("Hospital"), _("Treatment"), _("Patients /yr after"),
                                   _("Required minimum /yr"), _("Above the minimum")], rows,
                                  cls="fragile", numeric=[False, False, True, True, True]))
    return "".join(out)
