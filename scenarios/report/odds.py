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
from herschik.scenarios.report.format import esc, html_table, png_data_uri
from matplotlib.figure import Figure
from scipy.stats import poisson

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
               label=f"{int(low[1:])}–{int(high[1:])} % of years")
    ax.scatter(x, np.asarray(bands["p50"], float), color="#08306b", s=14, zorder=3,
               label="median")
    norm_values = np.asarray(norms, float)
    has = np.isfinite(norm_values)
    ax.scatter(x[has], norm_values[has], marker="_", s=500, color="#cb181d", zorder=4,
               label="norm")
    ax.set_xticks(x, [str(label) for label in labels], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-1.0, max(n, 2) - (0.0 if n >= 2 else 1.0))
    ax.set_ylabel("patients per year")
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
    over = f" over {period_years} years" if period_years > 1 else " in one year"
    ax.set_xlabel(f"probability of meeting the norm{over}")
    ax.spines[["top", "right"]].set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def odds_section(changes: pd.DataFrame, scenario: Mapping[str, Any],
                 kpis: Mapping[str, Any] | None) -> str:
    """"Odds of meeting the norm": the model in one paragraph, the weakest kept hospital, a
    table of every kept hospital x treatment with a norm, the odds figure and one exact fan
    chart per treatment."""
    kept = _kept_with_norm(changes)
    if kept.empty:
        return ""
    years = int(scenario.get("norm_period_years") or 1)
    confidence = scenario.get("norm_confidence")
    parts = ["<p>Yearly volumes are counts that fluctuate: with every area's patients an "
             "independent Poisson count around its expected demand, a hospital's yearly volume "
             "is Poisson around its expected volume after the plan. The odds below are exact "
             "under that model (docs/CONFIDENCE.md); <code>herschik simulate</code> also "
             "draws over-dispersed years.</p>"]
    if confidence is not None:
        parts.append(f"<p>This plan was made <b>by confidence</b>: every kept hospital meets "
                     f"its norm with a probability of at least {float(confidence):.0%}"
                     f"{f' over {years} years' if years > 1 else ' in a year'}.</p>")
    weakest = ((kpis or {}).get("norm_odds") or {}).get("weakest")
    if weakest:
        name = esc(weakest["site_name"] or weakest["site_id"])
        one = odds_text(weakest["p_meet_norm_1y"])
        period = (f', <span data-kpi="weakest_p_meet_norm_period">'
                  f'{odds_text(weakest["p_meet_norm_period"])}</span> over {years} years'
                  if years > 1 else "")
        parts.append(
            f'<p class="lead">Weakest kept hospital: <b>{name}</b> for '
            f'{esc(weakest["intervention_id"])} (expected {weakest["expected_volume"]:,.1f}/yr, '
            f'norm {weakest["norm"]:g}): <span data-kpi="weakest_p_meet_norm_1y">{one}</span> in '
            f"one year{period}.</p>")
    headers = ["hospital", "treatment", "norm", "expected volume", "odds of meeting the norm "
               "(1 year)"] + ([f"odds over {years} years"] if years > 1 else []) + [
               "years below the norm"]
    rows = []
    ordered = kept.sort_values(["intervention_id", "site_id"], kind="stable")
    for r in ordered.itertuples(index=False):
        one = float(r.p_meet_norm_1y)
        row = [str(r.site_name or r.site_id), str(r.intervention_id), _num(r.norm, 0),
               _num(r.volume_after, 1), odds_text(one)]
        if years > 1:
            row.append(odds_text(float(r.p_meet_norm_period)))
        row.append(_one_in(1 - one))
        rows.append(row)
    numeric = [False, False, True, True, True] + ([True] if years > 1 else []) + [True]
    parts.append(html_table(headers, rows, cls="odds", numeric=numeric))
    parts.append(f'<figure><img alt="odds of meeting the norm per kept hospital" src="'
                 f'{png_data_uri(odds_png(kept, years))}"><figcaption>Odds of meeting the norm '
                 "per kept hospital and treatment, lowest first (red below 50 %, orange below "
                 "80 %).</figcaption></figure>")
    for treatment, group in ordered.groupby("intervention_id", sort=True):
        group = group.sort_values(["volume_after", "site_id"], kind="stable")
        labels = [str(r.site_name or r.site_id) for r in group.itertuples(index=False)]
        png = fan_chart_png(labels, exact_bands(group["volume_after"].to_numpy(float)),
                            group["norm"].to_numpy(float),
                            f"{treatment}: yearly volume of each kept hospital (Poisson)")
        parts.append(f'<figure><img alt="fan chart {esc(treatment)}" src="{png_data_uri(png)}">'
                     f"<figcaption>{esc(treatment)}: the yearly volume of each kept hospital "
                     "falls in the dark band in half of the years and in the light band in 90 % "
                     "of them; red: its norm.</figcaption></figure>")
    return "\n".join(parts)


def odds_text(p: float) -> str:
    """A probability for people: one decimal, never a rounded 100 % or 0 %."""
    if p > 0.999:
        return "> 99.9%"
    if p < 0.001:
        return "< 0.1%"
    return f"{p:.1%}"


def _num(value: Any, digits: int) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"{number:,.{digits}f}" if math.isfinite(number) else "—"


def _one_in(share: float) -> str:
    """The share of years below the norm in words: "1 in 3 years", "< 1 in 1,000"."""
    if share <= 0.001:
        return "< 1 in 1,000 years"
    return f"1 in {1 / share:,.0f} years" if share < 0.5 else f"{share:.0%} of years"
