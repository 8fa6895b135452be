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
from herschik.scenarios.report.format import esc, html_table, png_data_uri

from herschik.derived_cache import entry_key, read_entry, write_entry


def _chart_key(kind: str, labels: Sequence[str], values: Sequence[np.ndarray],
               text: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    for array in values:
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes() + b"|")
    drawn = json.dumps({"labels": [str(label) for label in labels], **text}, sort_keys=True)
    return entry_key(kind, [*drawing_versions(), digest.hexdigest(), drawn])


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
        png = exact_fan_chart_png(labels, group["volume_after"].to_numpy(float),
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
