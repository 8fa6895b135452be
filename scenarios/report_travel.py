"""Report sections on travel: the extra-travel histogram and table, and the inlined maps."""
from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.maps import drawing_versions
from herschik.optimiser.kpis import weighted_quantile
from herschik.scenarios.report_format import Html, esc, html_table, png_data_uri

from herschik.derived_cache import entry_key, read_entry, write_entry


def extra_travel_histogram_png(assignments: pd.DataFrame, dpi: int = 100) -> bytes:
    """Patient-weighted histogram of ``extra_min`` as PNG bytes.

    Kept in the derived-data cache under its bars, labels and the drawing libraries' versions
    (like the maps): matplotlib is loaded only when the chart must be drawn.
    """
    extra = assignments["extra_min"].to_numpy(float)
    weights = assignments["patients"].to_numpy(float)
    lo = math.floor(min(0.0, float(extra.min()))) if len(extra) else 0
    hi = math.ceil(max(1.0, float(extra.max()))) if len(extra) else 1
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60) if (hi - lo) / s <= 30)
    edges = np.arange(lo - lo % step, hi + step, step, dtype=float)
    counts, _ = np.histogram(extra, bins=edges, weights=weights)
    digest = hashlib.sha256(np.ascontiguousarray(edges).tobytes()
                            + np.ascontiguousarray(counts, dtype=float).tobytes()).hexdigest()
    key = entry_key("histogram", [*drawing_versions(), digest, str(step), str(dpi)])
    png = read_entry(key)
    if png is None:
        from herschik.scenarios.report_charts import histogram_png  # only on a cache miss

        png = histogram_png(edges, counts, step, dpi)
        write_entry(key, png)
    return png


def extra_travel_section(asg: pd.DataFrame, kpis: Mapping[str, Any] | None = None) -> str:
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
            rows.append((label, p, Html(esc(f"{p / total:.1%}" if total else "—"))))
    img = png_data_uri(extra_travel_histogram_png(asg))
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
        + html_table(["Extra travel", "Patients /yr", "Share"], rows, cls="extra-bands",
                 numeric=[False, True, True])
        + html_table(["Statistic", "Extra min"], stats, cls="extra-stats", numeric=[False, True])
        + "</div>")


def maps_section(map_pngs: Mapping[str, Path], names: Mapping[str, str]) -> str:
    if not map_pngs:
        return '<p class="note">No maps were drawn for this run.</p>'
    out = []
    for key, png in map_pngs.items():
        label = "Overview: all treatments" if key == "overview" else (
            f"{names[key]} ({key})" if key in names else key)
        uri = png_data_uri(Path(png).read_bytes())
        out.append(f'<figure id="map-{esc(key)}"><img alt="Map: {esc(label)}" src="{uri}">'
                   f"<figcaption>{esc(label)}. Areas coloured by extra travel minutes; sites "
                   "sized by volume after; red crosses lose the treatment.</figcaption></figure>")
    return "".join(out)


