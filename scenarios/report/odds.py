"""The odds of meeting the norm in the report: a table per kept hospital, a figure of the odds
and a fan chart per treatment (also drawn by ``herschik simulate`` from simulated years).

The report's fan charts are exact: a kept hospital's yearly volume is Poisson around its
expected volume (docs/CONFIDENCE.md), so its bands are Poisson quantiles; ``herschik
simulate`` draws the same chart from simulated years (optionally over-dispersed).
"""
from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from herschik.scenarios.report.format import esc, fmt, html_table, png_data_uri, share
from matplotlib.figure import Figure
from scipy.stats import poisson

from herschik.i18n import _, current_language

#: the fan chart's bands: (low quantile, high quantile, colour), widest first
FAN_BANDS: tuple[tuple[str, str, str], ...] = (("p05", "p95", "#c6dbef"),
                                                ("p25", "p75", "#6baed6"))
FAN_QUANTILES: dict[str, float] = {"p05": 0.05, "p25": 0.25, "p50": 0.50, "p75": 0.75,
                                   "p95": 0.95}


def fan_chart_png(labels: Sequence[str], bands: Mapping[str, Sequence[float]],
                  norms: Sequence[float], title: str, dpi: int = 100) -> bytes:
    """Yearly volume bands per hospital (5-95 % and 25-75 %, the median as a dot) with each
    hospital's norm as a red tick; hospitals in the given order. PNG bytes, no metadata."""
    n = len(labels)
    fig = Figure(figsize=(max(5.0, 0.6 * n + 2.0), 3.8), dpi=dpi)
    ax = fig.add_axes((0.1, 0.32, 0.86, 0.5))
    x = np.arange(n)
    for low, high, colour in FAN_BANDS:
        lo, hi = np.asarray(bands[low], float), np.asarray(bands[high], float)
        ax.bar(x, hi - lo, bottom=lo, width=0.6, color=colour,
               label=_("{low}–{high} % of years", low=int(low[1:]), high=int(high[1:])))
    ax.scatter(x, np.asarray(bands["p50"], float), color="#08306b", s=14, zorder=3,
               label=_("median"))
    norm_values = np.asarray(norms, float)
    has = np.isfinite(norm_values)
    ax.scatter(x[has], norm_values[has], marker="_", s=500, color="#cb181d", zorder=4,
               label=_("norm"))
    ax.set_xticks(x, [str(label) for label in labels], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-1.0, max(n, 2) - (0.0 if n >= 2 else 1.0))
    ax.set_ylabel(_("patients per year"))
    ax.set_ylim(bottom=0)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5")
    ax.set_axisbelow(True)
    fig.suptitle(title, fontsize=10, x=0.1, ha="left", y=0.98)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.02), frameon=False, ncol=4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def exact_bands(volumes: Sequence[float]) -> dict[str, np.ndarray]:
    """Poisson quantiles of yearly volumes with these expected values."""
    mean = np.asarray(volumes, float)
    return {name: poisson.ppf(q, mean) for name, q in FAN_QUANTILES.items()}


def _kept_with_norm(changes: pd.DataFrame) -> pd.DataFrame:
    if "p_meet_norm_1y" not in changes.columns:
        return changes.iloc[0:0]
    odds = pd.to_numeric(changes["p_meet_norm_1y"], errors="coerce")
    return changes[odds.notna()]


def odds_png(kept: pd.DataFrame, period_years: int, dpi: int = 100) -> bytes:
    """Horizontal bars: each kept hospital x treatment's odds of meeting its norm, lowest
    first, with the 50 / 80 / 90 % lines."""
    column = "p_meet_norm_period" if period_years > 1 else "p_meet_norm_1y"
    rows = kept.sort_values([column, "site_id", "intervention_id"], kind="stable")
    n = len(rows)
    fig = Figure(figsize=(7.0, max(2.0, 0.22 * n + 1.0)), dpi=dpi)
    ax = fig.add_axes((0.42, 0.9 / max(2.0, 0.22 * n + 1.0), 0.54,
                       1 - 1.3 / max(2.0, 0.22 * n + 1.0)))
    odds = rows[column].to_numpy(float)
    colours = ["#cb181d" if p < 0.5 else "#fd8d3c" if p < 0.8 else "#41ab5d" for p in odds]
    y = np.arange(n)
    ax.barh(y, odds, color=colours)
    ax.set_yticks(y, [f"{r.site_name or r.site_id} · {r.intervention_id}"
                      for r in rows.itertuples(index=False)], fontsize=7)
    ax.invert_yaxis()
    for line in (0.5, 0.8, 0.9):
        ax.axvline(line, color="#969696", lw=0.8, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xlabel(_("probability of meeting the norm over {years} years", years=period_years)
                  if period_years > 1 else _("probability of meeting the norm in one year"))
    ax.spines[["top", "right"]].set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


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
    confidence = scenario.get("norm_confidence")
    parts = ["<p>" + esc(_(
        "Yearly volumes are counts that fluctuate: with every area's patients an independent "
        "Poisson count around its expected demand, a hospital's yearly volume is Poisson "
        "around its expected volume after the plan. The odds below are exact under that model "
        "(docs/CONFIDENCE.md); {command} also draws over-dispersed years.",
        command="\x00")).replace("\x00", "<code>herschik simulate</code>") + "</p>"]
    if confidence is not None:
        sentence = (_("This plan was made by confidence: every kept hospital meets its norm "
                      "with a probability of at least {odds} over {years} years.",
                      odds=share(float(confidence), 0), years=years) if years > 1 else
                    _("This plan was made by confidence: every kept hospital meets its norm "
                      "with a probability of at least {odds} in a year.",
                      odds=share(float(confidence), 0)))
        parts.append(f"<p>{esc(sentence)}</p>")
    weakest = ((kpis or {}).get("norm_odds") or {}).get("weakest")
    if weakest:
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
        parts.append(f'<p class="lead">{text}</p>')
    headers = [_("hospital"), _("treatment"), _("norm"), _("expected volume"),
               _("odds of meeting the norm (1 year)")] + (
        [_("odds over {years} years", years=years)] if years > 1 else []) + [
        _("years below the norm")]
    rows = []
    ordered = kept.sort_values(["intervention_id", "site_id"], kind="stable")
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
    parts.append(html_table(headers, rows, cls="odds", numeric=numeric))
    alt = esc(_("odds of meeting the norm per kept hospital"))
    parts.append(f'<figure><img alt="{alt}" src="{png_data_uri(odds_png(kept, years))}">'
                 "<figcaption>"
                 + esc(_("Odds of meeting the norm per kept hospital and treatment, lowest "
                         "first (red below 50 %, orange below 80 %)."))
                 + "</figcaption></figure>")
    for treatment, group in ordered.groupby("intervention_id", sort=True):
        group = group.sort_values(["volume_after", "site_id"], kind="stable")
        labels = [str(r.site_name or r.site_id) for r in group.itertuples(index=False)]
        title = _treatment_title(str(treatment), names)
        png = fan_chart_png(labels, exact_bands(group["volume_after"].to_numpy(float)),
                            group["norm"].to_numpy(float),
                            _("{treatment}: yearly volume of each kept hospital (Poisson)",
                              treatment=title))
        caption = _("{treatment}: the yearly volume of each kept hospital falls in the dark "
                    "band in half of the years and in the light band in 90 % of them; red: its "
                    "norm.", treatment=title)
        alt = esc(_("fan chart {treatment}", treatment=title))
        parts.append(f'<figure><img alt="{alt}" src="{png_data_uri(png)}">'
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    return "\n".join(parts)


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
