"""The odds of meeting the norm in the report: a table per kept hospital, a figure of the odds
and a fan chart per treatment (also drawn by ``herschik simulate`` from simulated years).

The report's fan charts are exact: a kept hospital's yearly volume is Poisson around its
expected volume (docs/CONFIDENCE.md), so its bands are Poisson quantiles; ``herschik
simulate`` draws the same chart from simulated years (optionally over-dispersed).

Both figures are kept in the derived-data cache (:mod:`herschik.derived_cache`) under a key
made of everything drawn (labels, values bit for bit, titles, resolution, the drawing
libraries' versions), like the maps: a chart whose content did not change is not drawn again,
and matplotlib (scenarios/report/charts.py) is loaded only to draw one.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.maps import drawing_versions
from herschik.scenarios.report.format import esc, fmt, html_table, png_data_uri, share

from herschik.derived_cache import entry_key, read_entry, write_entry
from herschik.i18n import _, current_language

#: the modules that draw the charts from their keys' contents (the code part of their keys)
CHART_CODE = ("herschik.scenarios.report.odds", "herschik.scenarios.report.charts")


def _chart_key(kind: str, labels: Sequence[str], values: Sequence[np.ndarray],
               text: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    for array in values:
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes() + b"|")
    drawn = json.dumps({"labels": [str(label) for label in labels], "language": current_language(),
                        **text}, sort_keys=True)
    return entry_key(kind, [*drawing_versions(), digest.hexdigest(), drawn], code=CHART_CODE)


def exact_fan_chart_png(labels: Sequence[str], volumes: Sequence[float],
                        norms: Sequence[float], title: str, dpi: int = 100) -> bytes:
    """The fan chart of kept hospitals with these expected yearly volumes (Poisson bands,
    report/charts.exact_bands), from the derived-data cache when drawn before."""
    volumes_array, norms_array = np.asarray(volumes, float), np.asarray(norms, float)
    key = _chart_key("fan-chart", labels, [volumes_array, norms_array],
                     {"title": title, "dpi": dpi})
    png = read_entry(key)
    if png is None:
        # matplotlib is loaded only for a chart that must be drawn
        from herschik.scenarios.report.charts import exact_bands, fan_chart_png

        png = fan_chart_png(labels, exact_bands(volumes_array), norms_array, title, dpi=dpi)
        write_entry(key, png)
    return png


def odds_png(kept: pd.DataFrame, period_years: int, dpi: int = 100) -> bytes:
    """Horizontal bars: each kept hospital x treatment's odds of meeting its norm, lowest
    first, with the 50 / 80 / 90 % lines (from the derived-data cache when drawn before)."""
    column = "p_meet_norm_period" if period_years > 1 else "p_meet_norm_1y"
    rows = kept.sort_values([column, "site_id", "intervention_id"], kind="stable")
    labels = [f"{r.site_name or r.site_id} · {r.intervention_id}"
              for r in rows.itertuples(index=False)]
    odds = rows[column].to_numpy(float)
    key = _chart_key("odds-chart", labels, [odds], {"years": period_years, "dpi": dpi})
    png = read_entry(key)
    if png is None:
        from herschik.scenarios.report.charts import odds_png as draw_odds  # a cache miss

        png = draw_odds(labels, odds, period_years, dpi=dpi)
        write_entry(key, png)
    return png


def _kept_with_norm(changes: pd.DataFrame) -> pd.DataFrame:
    if "p_meet_norm_1y" not in changes.columns:
        return changes.iloc[0:0]
    odds = pd.to_numeric(changes["p_meet_norm_1y"], errors="coerce")
    return changes[odds.notna()]


def odds_section(changes: pd.DataFrame, scenario: Mapping[str, Any],
                 kpis: Mapping[str, Any] | None, names: Mapping[str, str] | None = None) -> str:
    """"Odds of meeting the norm": the model in one paragraph, the weakest kept hospital, a
    table of every kept hospital x treatment with a norm, the odds figure and one exact fan
    chart per treatment. ``names``: treatment id -> name in the report's language (the
    captions name the treatment; the table keeps the id, a stable handle)."""
    kept = _kept_with_norm(changes)
    if kept.empty:
        return ""
    names = names or {}
    years = int(scenario.get("norm_period_years") or 1)
    parts = [_model_paragraph(), *_confidence_paragraph(scenario.get("norm_confidence"), years),
             *_weakest_paragraph(kpis, years, names)]
    ordered = kept.sort_values(["intervention_id", "site_id"], kind="stable")
    parts.append(_odds_table(ordered, years, names))
    alt = esc(_("odds of meeting the norm per kept hospital"))
    parts.append(f'<figure><img alt="{alt}" src="{png_data_uri(odds_png(kept, years))}">'
                 "<figcaption>"
                 + esc(_("Odds of meeting the norm per kept hospital and treatment, lowest "
                         "first (red below 50 %, orange below 80 %)."))
                 + "</figcaption></figure>")
    parts += _fan_charts(ordered, names)
    return "\n".join(parts)


def _model_paragraph() -> str:
    return "<p>" + esc(_(
        "Yearly volumes are counts that fluctuate: with every area's patients an independent "
        "Poisson count around its expected demand, a hospital's yearly volume is Poisson "
        "around its expected volume after the plan. The odds below are exact under that model "
        "(docs/CONFIDENCE.md); {command} also draws over-dispersed years.",
        command="\x00")).replace("\x00", "<code>herschik simulate</code>") + "</p>"


def _confidence_paragraph(confidence: Any, years: int) -> list[str]:
    if confidence is None:
        return []
    sentence = (_("This plan was made by confidence: every kept hospital meets its norm "
                  "with a probability of at least {odds} over {years} years.",
                  odds=share(float(confidence), 0), years=years) if years > 1 else
                _("This plan was made by confidence: every kept hospital meets its norm "
                  "with a probability of at least {odds} in a year.",
                  odds=share(float(confidence), 0)))
    return [f"<p>{esc(sentence)}</p>"]


def _weakest_paragraph(kpis: Mapping[str, Any] | None, years: int,
                       names: Mapping[str, str]) -> list[str]:
    weakest = ((kpis or {}).get("norm_odds") or {}).get("weakest")
    if not weakest:
        return []
    # the spans carry the KPI values for the checks of the report (data-kpi); the
    # sentence is translated whole, with control characters marking where the HTML goes
    one = ('<span data-kpi="weakest_p_meet_norm_1y">'
           f'{esc(odds_text(weakest["p_meet_norm_1y"]))}</span>')
    period = ('<span data-kpi="weakest_p_meet_norm_period">'
              f'{esc(odds_text(weakest["p_meet_norm_period"]))}</span>' if years > 1 else "")
    values = {"hospital": "\x01", "treatment": "\x02", "one": "\x03", "period": "\x04",
              "years": years, "expected": _num(weakest["expected_volume"], 1),
              "norm": _num(weakest["norm"], None)}
    text = esc(_("Weakest kept hospital: {hospital} for {treatment} (expected {expected}/yr, "
                 "norm {norm}): {one} in one year, {period} over {years} years.", **values)
               if years > 1 else
               _("Weakest kept hospital: {hospital} for {treatment} (expected {expected}/yr, "
                 "norm {norm}): {one} in one year.", **values))
    treatment = str(weakest["intervention_id"])
    for mark, html in (("\x01", f'<b>{esc(weakest["site_name"] or weakest["site_id"])}</b>'),
                       ("\x02", esc(_treatment_title(treatment, names))), ("\x03", one),
                       ("\x04", period)):
        text = text.replace(mark, html)
    return [f'<p class="lead">{text}</p>']


def _odds_table(ordered: pd.DataFrame, years: int, names: Mapping[str, str]) -> str:
    headers = [_("hospital"), _("treatment"), _("norm"), _("expected volume"),
               _("odds of meeting the norm (1 year)")] + (
        [_("odds over {years} years", years=years)] if years > 1 else []) + [
        _("years below the norm")]
    rows = []
    for r in ordered.itertuples(index=False):
        one = float(r.p_meet_norm_1y)
        row = [str(r.site_name or r.site_id), _treatment_title(str(r.intervention_id), names),
               _num(r.norm, 0),
               _num(r.volume_after, 1), odds_text(one)]
        if years > 1:
            row.append(odds_text(float(r.p_meet_norm_period)))
        row.append(_one_in(1 - one))
        rows.append(row)
    numeric = [False, False, True, True, True] + ([True] if years > 1 else []) + [True]
    return html_table(headers, rows, cls="odds", numeric=numeric)


def _fan_charts(ordered: pd.DataFrame, names: Mapping[str, str]) -> list[str]:
    parts = []
    for treatment, group in ordered.groupby("intervention_id", sort=True):
        group = group.sort_values(["volume_after", "site_id"], kind="stable")
        labels = [str(r.site_name or r.site_id) for r in group.itertuples(index=False)]
        title = _treatment_title(str(treatment), names)
        png = exact_fan_chart_png(labels, group["volume_after"].to_numpy(float),
                                  group["norm"].to_numpy(float),
                                  _("{treatment}: yearly volume of each kept hospital (Poisson)",
                                    treatment=title))
        caption = _("{treatment}: the yearly volume of each kept hospital falls in the dark "
                    "band in half of the years and in the light band in 90 % of them; red: its "
                    "norm.", treatment=title)
        alt = esc(_("fan chart {treatment}", treatment=title))
        parts.append(f'<figure><img alt="{alt}" src="{png_data_uri(png)}">'
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    return parts


def _treatment_title(treatment: str, names: Mapping[str, str]) -> str:
    """English keeps the id (as before); Dutch names the treatment (the norm table's name)."""
    return treatment if current_language() == "en" else names.get(treatment) or treatment


def odds_text(p: float) -> str:
    """A probability for people: one decimal, never a rounded 100 % or 0 % (the report's
    language's decimal mark)."""
    if p > 0.999:
        return "> " + share(0.999)
    if p < 0.001:
        return "< " + share(0.001)
    return share(p)


def _num(value: Any, digits: int | None) -> str:
    """A number in the report's language; ``digits`` None: as few digits as it needs."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(number):
        return "—"
    if digits is None:
        text = f"{number:g}"
        return text if current_language() == "en" else text.replace(".", ",")
    return fmt(number, digits)


def _one_in(below: float) -> str:
    """The share of years below the norm in words: "1 in 3 years", "< 1 in 1,000"."""
    if below <= 0.001:
        return _("< 1 in {count} years", count=fmt(1000))
    if below < 0.5:
        return _("1 in {count} years", count=fmt(1 / below, 0))
    return _("{share} of years", share=share(below, 0))
