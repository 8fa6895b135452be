"""The console summary of ``herschik solve``: a few lines that fit 80 columns, no table.

What a regional table asks first: did it solve, how many patients must move and how much
longer they travel, and per treatment that changes which hospitals stop or start (by name).
Everything else is in the report and the CSVs. Plain text, wrapped with :mod:`textwrap` at the
terminal width (80 when piped), in the chosen language; the same summary gives the same lines.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping
from typing import Any

import pandas as pd

from herschik.i18n import (
    _,
    current_language,
    format_number,
    format_percent,
    status_label,
    translate_name,
)

#: names listed per treatment and change before "and N more" (national runs lose many roles)
MAX_NAMES = 6
#: the widest the summary gets, also on a wide terminal (lines stay readable)
MAX_WIDTH = 100


def console_width() -> int:
    """The terminal's width (80 when piped or unknown), at most :data:`MAX_WIDTH`."""
    return max(40, min(MAX_WIDTH, shutil.get_terminal_size((80, 24)).columns))


def summary_lines(
    summary: Mapping[str, Any],
    *,
    region_name: str = "",
    treatment_names: Mapping[str, str] | None = None,
    hospital_changes: pd.DataFrame | None = None,
    wall_seconds: float | None = None,
    width: int = 80,
) -> list[str]:
    """The lines of the summary of one solve (no line is longer than ``width``)."""
    names = dict(treatment_names or {})
    lines = [_head(summary, region_name, wall_seconds)]
    for warning in summary.get("warnings") or []:
        lines.append(_("Warning: {text}", text=warning))
    status = summary["status"]
    diagnosis = summary.get("diagnosis") or {}
    if status == "time_limit_no_solution":
        lines.append(_("No solution within the time limit: {reason}",
                       reason=diagnosis.get("reason", "")))
    elif status == "infeasible":
        # the reason is a whole sentence ("The scenario is infeasible: ...")
        lines.append(str(diagnosis.get("reason") or _("no reason given")))
        if diagnosis.get("smallest_feasible_margin") is not None:
            lines.append(_("  smallest feasible margin: {value}",
                           value=format_percent(diagnosis["smallest_feasible_margin"])))
        if diagnosis.get("largest_feasible_confidence") is not None:
            lines.append(_("  largest feasible confidence: {value}",
                           value=format_percent(diagnosis["largest_feasible_confidence"])))
        if diagnosis.get("smallest_feasible_max_travel") is not None:
            lines.append(_("  smallest feasible travel limit: {value} min",
                           value=format_number(diagnosis["smallest_feasible_max_travel"])))
    else:
        if status == "partially_infeasible":
            # the reason names the treatments without a plan; the figures are the others'
            lines.append(str(diagnosis.get("reason") or _("no reason given")))
            lines.append(_("The figures below are those of the solved treatments only."))
        lines += _kpi_lines(summary["kpis"], names)
        lines += _treatment_lines(summary["kpis"], names, hospital_changes)
    if summary.get("baseline") == "illustrative":
        lines.append(_("Note: the baseline volumes are illustrative (see DATA.md)."))
    violations = (summary.get("verification") or {}).get("violations") or []
    if violations:
        lines.append(_("Verifier found {count} problem(s): {first}", count=len(violations),
                       first=violations[0]))
    return _wrap(lines, width)


def _head(summary: Mapping[str, Any], region_name: str, wall_seconds: float | None) -> str:
    region = summary["region_id"]
    if region_name and region_name != region:
        region = f"{region} ({region_name})"
    scenario = summary.get("scenario") or {}
    text = _("{region}: {status}, objective {objective}, solver {solver}",
             region=region, status=status_label(str(summary["status"])),
             objective=scenario.get("objective"), solver=summary.get("solver"))
    if wall_seconds is not None:
        text += _(", {seconds} s", seconds=format_number(wall_seconds))
    return text


def _kpi_lines(kpis: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    lines = [_("{patients} patients/yr; {moved} must move ({share}): {mean} min longer on "
               "average, {p90} min for 9 in 10, at most {max} min.",
               patients=format_number(kpis["patients"], 0),
               moved=format_number(kpis.get("patients_displaced") or 0.0, 0),
               share=format_percent(kpis.get("displaced_share") or 0.0),
               mean=format_number(kpis.get("displaced_mean_extra_min") or 0.0),
               p90=format_number(kpis.get("displaced_p90_extra_min") or 0.0),
               max=format_number(kpis.get("displaced_max_extra_min") or 0.0))]
    lines.append(_("Optional moves: {optional}/yr. Mean travel {before} -> {after} min.",
                   optional=format_number(kpis.get("patients_moved_optional") or 0.0, 0),
                   before=format_number(kpis["mean_travel_min_before"]),
                   after=format_number(kpis["mean_travel_min_after"])))
    before = sum(kpis["providers_before"].values())
    after = sum(kpis["providers_after"].values())
    weakest = (kpis.get("norm_odds") or {}).get("weakest")
    if weakest:  # the kept role least likely to meet its norm in a year (Poisson odds)
        lines.append(_("Weakest kept role: {hospital}, {treatment}: {odds} odds of meeting "
                       "the norm in a year.", hospital=weakest.get("site_name")
                       or weakest["site_id"], treatment=_treatment(weakest["intervention_id"],
                                                                   names),
                       odds=format_percent(weakest["p_meet_norm_1y"])))
    lines.append(_("Hospital roles: {before} -> {after} ({lost} stop, {gained} start) in "
                   "{treatments} treatments.", before=before, after=after,
                   lost=sum((kpis.get("providers_lost") or {}).values()),
                   gained=sum((kpis.get("providers_gained") or {}).values()),
                   treatments=len(kpis["providers_before"])))
    return lines


def _treatment(treatment: str, names: Mapping[str, str]) -> str:
    """The id in English (as before); in Dutch the norm table's name with the id."""
    if current_language() == "en" or treatment not in names:
        return treatment
    return f"{translate_name(names[treatment])} ({treatment})"


def _treatment_lines(kpis: Mapping[str, Any], names: Mapping[str, str],
                     changes: pd.DataFrame | None) -> list[str]:
    per = kpis.get("per_treatment") or {}
    changed = [t for t in kpis["providers_before"]
               if (per.get(t) or {}).get("providers_lost") or (per.get(t) or {}).get(
                   "providers_gained") or (per.get(t) or {}).get("patients_moved")]
    if not changed:
        return [_("No treatment changes.")]
    lines = ["", _("Treatments that change ({changed} of {total}):", changed=len(changed),
                   total=len(kpis["providers_before"]))]
    for treatment in changed:
        p = per[treatment]
        lines.append(f"- {translate_name(names.get(treatment, treatment))} ({treatment})")
        lines.append("  " + _("{before} -> {after} hospitals; {moved}/yr move, +{mean} min on "
                              "average, at most +{max} min",
                              before=kpis["providers_before"][treatment],
                              after=kpis["providers_after"].get(treatment, 0),
                              moved=format_number(p.get("patients_moved") or 0.0, 0),
                              mean=format_number(p.get("displaced_mean_extra_min") or 0.0),
                              max=format_number(p.get("displaced_max_extra_min") or 0.0)))
        for status, label in (("lost", _("stops")), ("gained", _("starts"))):
            hospitals = _hospitals(changes, treatment, status)
            if hospitals:
                lines.append(f"  {label}: {hospitals}")
    unchanged = len(kpis["providers_before"]) - len(changed)
    if unchanged:
        lines.append(_("{count} treatments unchanged.", count=unchanged))
    return lines


def _hospitals(changes: pd.DataFrame | None, treatment: str, status: str) -> str:
    if changes is None or changes.empty:
        return ""
    rows = changes[(changes["intervention_id"] == treatment) & (changes["status"] == status)]
    hospitals = sorted(str(name) for name in rows["site_name"])
    if len(hospitals) > MAX_NAMES:
        more = len(hospitals) - MAX_NAMES
        hospitals = [*hospitals[:MAX_NAMES], _("and {count} more", count=more)]
    return ", ".join(hospitals)


def _wrap(lines: list[str], width: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip(" -")))
        out += textwrap.wrap(line, width=width, subsequent_indent=indent + "  ",
                             break_long_words=True, break_on_hyphens=False)
    return out
