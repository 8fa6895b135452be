"""Self-contained ``report.html`` of one run: no scripts, no network, images inlined.

Sections (stable headings, tested): h1 ``herschik report — <region_id>``, then the diagnosis
and warnings (first, before any figure); h2 ``Key figures`` (with definitions and the
displaced patients per treatment), ``Hospital changes``, ``Providers per treatment``,
``Odds of meeting the norm`` (odds.py), ``Extra travel``, ``Maps``, ``Solve``,
``Scenario``, ``Caveats``. Key figures carry ``data-kpi="<summary.json key>"`` so that
tests (and scripts) can read them back. Every text from the data is escaped with
:func:`html.escape`. The output is deterministic (no
timestamps), so two identical runs give identical reports.

The sections are built in figures.py (run as a whole), hospitals.py (per hospital and
treatment), flows.py, odds.py and travel.py (extra travel, maps), from the blocks of format.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from herschik.geo.dataset import baseline_source_text
from herschik.geo.export import normalise_assignments, normalise_site_volumes
from herschik.optimiser.results import hospital_changes_from_site_volumes
from herschik.optimiser.status import SolveStatus
from herschik.scenarios.report.figures import (
    caveats_section,
    key_figures_section,
    scenario_section,
    solve_section,
    top_alerts,
)
from herschik.scenarios.report.flows import flows_section, reasons_section
from herschik.scenarios.report.format import esc, note
from herschik.scenarios.report.hospitals import (
    hospital_changes_section,
    providers_section,
    providers_today_section,
)
from herschik.scenarios.report.odds import odds_section
from herschik.scenarios.report.travel import (
    changed_treatments,
    extra_travel_section,
    maps_section,
)

from herschik.atomic import write_text
from herschik.i18n import N_, _, current_language, status_label, translate_name

SECTIONS = (N_("Key figures"), N_("Hospital changes"), N_("Why hospitals lose a treatment"),
            N_("Where the patients go"), N_("Providers per treatment"),
            N_("Odds of meeting the norm"), N_("Extra travel"), N_("Maps"), N_("Caveats"),
            N_("Scenario"), N_("Solve"))
#: sections of the appendix: on paper they start on a new page after the results
APPENDIX = ("Scenario", "Solve")

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
.maps { display:grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
        gap: 0 20px; }
.print-only { display: none; }
.appendix-mark { margin-top: 48px; color: var(--muted); text-transform: uppercase;
                 letter-spacing: .08em; font-size: 12px; }
/* Paper: A4, small type, tables may run over pages (their header repeats), figures not;
   the appendix (scenario, solver internals) starts on a new page. */
@page { size: A4; margin: 12mm 11mm 13mm; }
@media print {
  body { font-size: 8.5pt; line-height: 1.3; }
  main { max-width: none; padding: 0; }
  h1 { font-size: 15pt; }
  h2 { font-size: 12pt; margin: 10pt 0 4pt; break-after: avoid; }
  h3 { font-size: 10pt; margin: 7pt 0 2pt; break-after: avoid; }
  h4 { font-size: 9pt; margin: 5pt 0 2pt; break-after: avoid; }
  p { margin: 2pt 0 4pt; }
  table { font-size: 7pt; margin: 2pt 0 5pt; }
  th, td { padding: 1pt 4pt; }
  table.providers-overview td:nth-child(2), table.gain-lose td:nth-child(2),
  table.providers td:nth-child(2) { min-width: 0; }
  thead { display: table-header-group; }
  tr, figure { break-inside: avoid; }
  figure { margin: 3pt 0 5pt; }
  figure img { border: 0; }
  #extra-travel figure img { width: 62%; }
  .maps { grid-template-columns: 1fr 1fr; gap: 0 8pt; }
  .appendix-mark { break-before: page; margin-top: 0; }
  .screen-only { display: none; }
  .print-only { display: block; }
  /* the odds section's fan charts (one per treatment): three a row, after its table and
     odds figure, which keep the full width */
  #odds-of-meeting-the-norm { display: grid; grid-template-columns: repeat(3, 1fr);
                              gap: 0 6pt; align-items: start; }
  #odds-of-meeting-the-norm > :not(figure),
  #odds-of-meeting-the-norm > figure:first-of-type { grid-column: 1 / -1; }
  #odds-of-meeting-the-norm > figure:first-of-type img { width: auto; max-height: 105mm; }
  #odds-of-meeting-the-norm figcaption { font-size: 6.5pt; }
  .alert { padding: 4pt 8pt; margin: 6pt 0; }
  footer { margin-top: 10pt; }
}
"""


def render_report(
    summary: Mapping[str, Any],
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    map_pngs: Mapping[str, Path] | Callable[[], Mapping[str, Path]] | None = None,
    *,
    treatment_names: Mapping[str, str] | None = None,
    region_name: str | None = None,
    notes: Sequence[str] = (),
    hospital_changes: pd.DataFrame | None = None,
    flows: pd.DataFrame | None = None,
) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    sv = normalise_site_volumes(site_volumes)
    asg = normalise_assignments(assignments)
    # treatment names in the report's language (the norm table's Dutch names for nl)
    names = {t: translate_name(n) for t, n in (treatment_names or {}).items()}
    region = str(summary.get("region_id", ""))
    status = str(summary.get("status", "unknown"))
    scenario = summary.get("scenario") or {}
    title = _("herschik report — {region}", region=region)
    sub = " · ".join(x for x in (region_name, _("status {status}", status=status_label(status)),
                                 _("objective {objective}",
                                   objective=scenario.get("objective", "—")),
                                 _("solver {solver}", solver=summary.get("solver", "—"))) if x)
    infeasible = status == SolveStatus.INFEASIBLE
    none = ('<p class="note">' + esc(_("No reallocation was computed (the scenario is "
                                       "infeasible).")) + "</p>")
    if hospital_changes is None and not sv.empty:
        hospital_changes = hospital_changes_from_site_volumes(sv, names)
    bodies = {
        "Key figures": key_figures_section(summary, names),
        "Hospital changes": none if infeasible else hospital_changes_section(hospital_changes, sv,
                                                                      names),
        "Why hospitals lose a treatment": none if infeasible else reasons_section(
            hospital_changes, names),
        "Where the patients go": none if infeasible else flows_section(flows, names),
        "Providers per treatment": (providers_today_section(sv, names) if infeasible
                                    else providers_section(sv, asg, scenario, names)),
        "Odds of meeting the norm": (none if infeasible or hospital_changes is None else
                                     odds_section(hospital_changes, scenario,
                                                  summary.get("kpis"), names)
                                     or note(_("No kept hospital has a norm."))),
        "Extra travel": none if infeasible else extra_travel_section(asg, summary.get("kpis")),
        "Solve": solve_section(summary),
        "Scenario": scenario_section(summary),
        "Caveats": caveats_section(summary, notes),
    }
    # the maps last: they may still be drawn in a child process (geo.maps.start_maps)
    bodies["Maps"] = maps_section((map_pngs() if callable(map_pngs) else map_pngs) or {},
                                  names, changed_treatments(summary))
    # ids stay English (stable links); the headings are in the report's language
    sections = "".join(
        ('<p class="appendix-mark">' + esc(_("Appendix")) + "</p>" if h == APPENDIX[0] else "")
        + f'<section id="{esc(h.lower().replace(" ", "-"))}"><h2>{esc(_(h))}</h2>'
        f"{bodies[h]}</section>"
        for h in SECTIONS)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{current_language()}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{esc(title)}</h1><p class=\"sub\">{esc(sub)}</p>"
        f"<p class=\"baseline-source\"><strong>{esc(baseline_line(summary))}</strong></p>"
        f"{top_alerts(summary)}{sections}"
        "<footer>" + esc(_("Written by herschik (result contract {contract}). "
                           "Self-contained: this file needs no network.",
                           contract=summary.get("contract", "—"))) + "</footer>"
        "</main></body></html>\n")


def baseline_line(summary: Mapping[str, Any]) -> str:
    """Where today's volumes come from: the report says it above the first hospital name."""
    return baseline_source_text(str(summary.get("baseline_source") or (
        "Baseline: illustrative (calibrated to published provider counts)"
        if summary.get("baseline", "illustrative") == "illustrative"
        else "Baseline: the dataset's own volumes")))


def write_report(
    path: str | Path,
    summary: Mapping[str, Any],
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    map_pngs: Mapping[str, Path] | Callable[[], Mapping[str, Path]],
    *,
    treatment_names: Mapping[str, str] | None = None,
    region_name: str | None = None,
    notes: Sequence[str] = (),
    hospital_changes: pd.DataFrame | None = None,
    flows: pd.DataFrame | None = None,
) -> Path:
    """Write the self-contained ``report.html`` of one run (atomically) and return its path.

    ``map_pngs`` maps a key (``"overview"`` or an intervention id) to a PNG that is embedded as
    base64 (or a function that returns them, called once every other section is made: the
    maps may still be drawn in a child process). ``treatment_names`` (intervention id -> name)
    and ``region_name`` only improve the labels; ``notes`` are added to the caveats. Works for
    infeasible runs (empty tables): the report then explains the diagnosis.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(summary, site_volumes, assignments, map_pngs,
                         treatment_names=treatment_names, region_name=region_name, notes=notes,
                         hospital_changes=hospital_changes, flows=flows)
    write_text(path, text)
    return path
