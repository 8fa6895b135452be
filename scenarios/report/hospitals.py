"""Report sections per hospital and treatment: providers today and after, hospital changes,
gains and losses."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import pandas as pd
from herschik.optimiser.tolerances import BELOW_NORM_TOL
from herschik.scenarios.report.format import Html, badge, esc, fmt, heading, html_table, pct

from herschik.i18n import _, current_language

_STATUS_ORDER = {"kept": 0, "gained": 1, "lost": 2, "—": 3}


def providers_today_section(sv: pd.DataFrame, names: Mapping[str, str]) -> str:
    """Infeasible run: today's providers per treatment, as context for the diagnosis."""
    none = _("No reallocation was computed (the scenario is infeasible).")
    note = ('<p class="note">' + esc(none + " " + _("Today's providers per treatment, for "
                                                    "reference:")) + "</p>")
    if sv.empty:
        return f'<p class="note">{esc(none)}</p>'

    groups = {t: part for t, part in sv.groupby("intervention_id", sort=False)}
    rows = []
    for t in treatment_order(groups, names):
        part = groups[t]
        today = part[part["kept_before"]]
        rows.append((t, names.get(t, ""), part["norm"].iloc[0], part["required_min"].iloc[0],
                     len(today), int((today["volume_before"] >= today["required_min"]).sum()),
                     float(part["volume_before"].sum())))
    return note + html_table([_("Treatment"), _("Name"), _("Norm /yr"),
                              _("Required minimum /yr"), _("Providers today"),
                              _("Of which at the required minimum"), _("Patients /yr")],
                             rows, cls="providers-today",
                         numeric=[False, False, True, True, True, True, True])


def pct_plain(value: float) -> str:
    """A whole percentage without sign (``10%``)."""
    return f"{value:.0%}"


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


def _norm_text(part: list[dict[str, Any]]) -> str:
    """The norm(s) of a treatment: one number, the tiers (``200 / 80 / 50``) or ``none``."""
    norms = sorted({float(r["norm"]) for r in part if not _missing(r["norm"])}, reverse=True)
    if not norms:
        return _("none")
    return " / ".join(fmt(n, 0) if float(n).is_integer() else fmt(n) for n in norms)


def _missing(value: Any) -> bool:
    """A missing cell (None or NaN), as ``pd.isna`` of a number or a text."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _count(part: list[dict[str, Any]], column: str) -> int:
    return sum(1 for r in part if r[column])


def providers_section(sv: pd.DataFrame, asg: pd.DataFrame, scenario: Mapping[str, Any],
               names: Mapping[str, str]) -> str:
    if sv.empty:
        return ('<p class="note">' + esc(_("No provider table: no reallocation was "
                                           "computed.")) + "</p>")
    patients = asg.groupby("intervention_id")["patients"].sum()
    # one row dict per site and treatment, grouped in the table's order: ~200 rows, 19
    # treatments, where a pandas operation per treatment and column cost ~0.1 s of CPU
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in sv.to_dict("records"):
        groups.setdefault(row["intervention_id"], []).append(row)
    order = treatment_order(groups, names)
    out = [_providers_overview([(t, groups[t]) for t in order], patients, names)]
    for t in order:
        out.extend(_treatment_providers(t, groups[t], scenario, names))
    return "".join(out)


def _providers_overview(parts: list[tuple[str, list[dict[str, Any]]]], patients: pd.Series,
                        names: Mapping[str, str]) -> str:
    """One row per treatment: norm, providers before/after, lost, gained, smallest margin."""
    overview = []
    for t, part in parts:
        # margin achieved against each site's own norm (tiered norms differ per site)
        margins = [r["volume_after"] / r["norm"] - 1 for r in part
                   if r["kept_after"] and not _missing(r["norm"]) and r["norm"] > 0]
        margins = [m for m in margins if not math.isnan(m)]  # as pandas' min skips NaN
        overview.append((t, names.get(t, ""), _norm_text(part),
                         _count(part, "kept_before"), _count(part, "kept_after"),
                         sum(1 for r in part if r["kept_before"] and not r["kept_after"]),
                         sum(1 for r in part if r["kept_after"] and not r["kept_before"]),
                         float(patients.get(t, 0.0)),
                         Html(esc(pct(float(min(margins))) if margins else "—"))))
    return html_table([_("Treatment"), _("Name"), _("Norm /yr"), _("Providers before"),
                       _("Providers after"), _("Lost"), _("Gained"), _("Patients /yr"),
                       _("Smallest margin achieved")],
                      overview, cls="providers-overview",
                      numeric=[False, False, True, True, True, True, True, True, True])


def _shown_order(row: dict[str, Any]) -> tuple[Any, ...]:
    """Status (kept, gained, lost, —), then volume after descending (missing last), then
    site id: the order of ``sort_values(["_order", "volume_after", "site_id"],
    ascending=[True, False, True])`` (stable, like Python's sort)."""
    volume = row["volume_after"]
    missing = _missing(volume)
    return (_STATUS_ORDER[row["status"]], missing, 0.0 if missing else -volume,
            row["site_id"])


def _treatment_providers(t: str, part: list[dict[str, Any]], scenario: Mapping[str, Any],
                         names: Mapping[str, str]) -> list[str]:
    """Heading, rule and site table of one treatment."""
    label = f"{names[t]} ({t})" if t in names else t
    norm_text = _norm_text(part)
    tiered = " / " in norm_text
    if norm_text == _("none"):
        rule = _("No volume norm: its providers and patients stay as today unless the "
                 "scenario closes or caps a site.")
    else:
        by_role = " " + _("(by hospital role; each site is measured against its own)")
        rule = _("Norm {norm} patients per year{by_role}; required minimum = norm × "
                 "(1 + margin {margin}).", norm=norm_text, by_role=by_role if tiered else "",
                 margin=pct_plain(_margin_for(scenario, t)))
    rule += " " + _("Providers {before} → {after}. Margin achieved = volume after / the "
                    "site's norm − 1.", before=_count(part, "kept_before"),
                    after=_count(part, "kept_after"))
    shown = [{**r, "status": _status(r["kept_before"], r["kept_after"])} for r in part
             if r["kept_before"] or r["kept_after"] or r["volume_before"] > 0
             or r["volume_after"] > 0]
    shown.sort(key=_shown_order)
    rows = [_site_row(SimpleNamespace(**r)) for r in shown]
    return [
        f'<h3 id="t-{esc(t)}">{esc(label)}</h3>',
        f'<p class="note">{esc(rule)}</p>',
        html_table([_("Site"), _("Name"), _("Norm"), _("Volume before"),
                    _("Volume after"), _("Change"), _("Provider before"),
                    _("Provider after"), _("Status"), _("Margin achieved")],
                   rows, cls="providers",
                   numeric=[False, False, True, True, True, True, False, False, False, True]),
    ]


def _site_row(r: Any) -> tuple[Any, ...]:
    """One site of a treatment's table; a margin below the required minimum is flagged."""
    has_norm = isinstance(r.norm, float) and math.isfinite(r.norm) and r.norm > 0
    margin = (r.volume_after / r.norm - 1) if r.kept_after and has_norm else None
    short = (r.kept_after and has_norm
             and r.volume_after < r.required_min - BELOW_NORM_TOL)
    margin_html = esc(pct(margin)) if margin is not None else "—"
    if short:
        below = _("below the required minimum")
        margin_html = (f'<span class="warn" title="{esc(below)}">'
                       f"{margin_html} ⚠</span>")
    return (r.site_id, r.site_name, r.norm if has_norm else _("none"),
            r.volume_before, r.volume_after,
            r.volume_after - r.volume_before, r.kept_before, r.kept_after,
            badge(r.status), Html(margin_html))


def hospital_changes_section(hc: pd.DataFrame | None, sv: pd.DataFrame,
                      names: Mapping[str, str]) -> str:
    """What each hospital keeps, loses and gains (hospital_changes.csv), then the summary."""
    if hc is None or hc.empty or hc["status"].isna().all():
        return '<p class="note">' + esc(_("No reallocation was computed.")) + "</p>"
    out = [_gain_lose(sv, names)]
    changed = hc[hc["status"] != "unchanged_no_norm"]
    order = {"lost": 0, "gained": 1, "below_norm": 2, "kept": 3}
    changed = changed.assign(_o=changed["status"].map(order)).sort_values(
        ["site_id", "_o", "intervention_id"])
    rows = [(r.site_id, r.site_name, r.intervention_id,
             names.get(r.intervention_id) or r.intervention_name or "",
             r.norm if isinstance(r.norm, float) and math.isfinite(r.norm) else _("none"),
             r.volume_before, r.volume_after, r.volume_change, badge(r.status))
            for r in changed.itertuples(index=False)]
    # on paper once: the same rows are printed per treatment under "Providers per treatment"
    out.append('<p class="note print-only">' + esc(_(
        "Every hospital and treatment: under Providers per treatment (and in "
        "hospital_changes.csv).")) + '</p><div class="screen-only">')
    out.append(heading(3, _("Every hospital and treatment with a norm")))
    out.append('<p class="note">' + esc(_(
        "From hospital_changes.csv: one row per hospital and treatment it provides before or "
        "after. lost = provides it today and not after; gained = after only; below_norm = "
        "kept below the required minimum (small-region rule). {count} row(s) of treatments "
        "without a norm are unchanged and not listed.",
        count=int((hc["status"] == "unchanged_no_norm").sum()))) + "</p>")
    out.append(html_table([_("Site"), _("Name"), _("Treatment"), _("Treatment name"), _("Norm"),
                           _("Volume before"), _("Volume after"), _("Change"), _("Status")],
                          rows, cls="hospital-changes",
                      numeric=[False, False, False, False, True, True, True, True, False]))
    out.append("</div>")
    return "".join(out)


def _gain_lose(sv: pd.DataFrame, names: Mapping[str, str]) -> str:
    if sv.empty:
        return '<p class="note">' + esc(_("No reallocation was computed.")) + "</p>"
    gained = sv[sv["kept_after"] & ~sv["kept_before"]]
    lost = sv[sv["kept_before"] & ~sv["kept_after"]]
    per_site = sv.groupby("site_id", sort=True).agg(
        site_name=("site_name", "first"), before=("volume_before", "sum"),
        after=("volume_after", "sum"))
    per_site["change"] = per_site["after"] - per_site["before"]
    # ids in English (as before); the treatments' names in Dutch (the norm table's)
    english = current_language() == "en"

    def listed(ids: pd.Series) -> str:
        return ", ".join(sorted(ids) if english else sorted(names.get(t) or t for t in ids))

    per_site["gained"] = gained.groupby("site_id")["intervention_id"].agg(listed)
    per_site["lost"] = lost.groupby("site_id")["intervention_id"].agg(listed)
    changed = per_site[per_site["gained"].notna() | per_site["lost"].notna()
                       | (per_site["change"].abs() >= 0.5)].copy()
    if changed.empty:
        return '<p class="note">' + esc(_("No hospital gains or loses a treatment.")) + "</p>"
    changed = changed.reset_index().sort_values(["change", "site_id"], ascending=[False, True])
    rows = [(r.site_id, r.site_name, r.gained if isinstance(r.gained, str) else "—",
             r.lost if isinstance(r.lost, str) else "—", r.before, r.after, r.change)
            for r in changed.itertuples(index=False)]
    intro = ('<p class="note">' + esc(_(
        "{gained} treatment(s) gained and {lost} lost, over {hospitals} hospital(s); volumes "
        "are summed over all treatments (patients per year).", gained=len(gained),
        lost=len(lost), hospitals=len(changed))) + "</p>")
    return intro + html_table([_("Site"), _("Name"), _("Treatments gained"),
                               _("Treatments lost"), _("Volume before"), _("Volume after"),
                               _("Change")], rows, cls="gain-lose",
                          numeric=[False, False, False, False, True, True, True])


