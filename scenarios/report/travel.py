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
from herschik.scenarios.report.format import Html, esc, html_table, png_data_uri, share

from herschik.derived_cache import entry_key, read_entry, write_entry
from herschik.i18n import _, current_language

#: the modules that draw the histogram from its key's contents (the code part of its key)
HISTOGRAM_CODE = ("herschik.scenarios.report.travel", "herschik.scenarios.report.charts")


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
    counts, _edges = np.histogram(extra, bins=edges, weights=weights)
    digest = hashlib.sha256(np.ascontiguousarray(edges).tobytes()
                            + np.ascontiguousarray(counts, dtype=float).tobytes()).hexdigest()
    # the axis labels are drawn in the output language (herschik.i18n)
    key = entry_key("histogram", [*drawing_versions(), digest, str(step), str(dpi),
                                  current_language()], code=HISTOGRAM_CODE)
    png = read_entry(key)
    if png is None:
        from herschik.scenarios.report.charts import histogram_png  # only on a cache miss

        png = histogram_png(edges, counts, step, dpi)
        write_entry(key, png)
    return png


def extra_travel_section(asg: pd.DataFrame, kpis: Mapping[str, Any] | None = None) -> str:
    if asg.empty:
        return '<p class="note">' + esc(_("No reallocation was computed.")) + "</p>"
    kpis = kpis or {}
    extra = asg["extra_min"].to_numpy(float)
    w = asg["patients"].to_numpy(float)
    total = w.sum()
    bands = [(_("shorter than before"), -np.inf, -0.05),
             (_("unchanged (±0.05 min)"), -0.05, 0.05),
             (_("{low}–{high} min more", low=0, high=10), 0.05, 10),
             (_("{low}–{high} min more", low=10, high=20), 10, 20),
             (_("{low}–{high} min more", low=20, high=30), 20, 30),
             (_("{low}–{high} min more", low=30, high=45), 30, 45),
             (_("{low}–{high} min more", low=45, high=60), 45, 60),
             (_("more than 60 min more"), 60, np.inf)]
    rows = []
    for i, (label, lo, hi) in enumerate(bands):
        sel = (extra >= lo) & (extra < hi) if math.isfinite(hi) else extra >= lo
        p = float(w[sel].sum())
        if p > 0 or i in (1, 2):  # "unchanged" and "0-10 min more" always
            rows.append((label, p, Html(esc(share(p / total) if total else "—"))))
    img = png_data_uri(extra_travel_histogram_png(asg))
    # the summary's KPIs where present, so that report and summary.json show one number
    stats = [(_("Median"), weighted_quantile(extra, w, 0.5)),
             (_("90th percentile"),
              kpis.get("p90_extra_min", weighted_quantile(extra, w, 0.9))),
             (_("Maximum"), kpis.get("max_extra_min", float(extra.max()))),
             (_("Patient-weighted mean"), kpis.get(
                 "mean_extra_min", float((w * extra).sum() / total) if total else None))]
    if "displaced_mean_extra_min" in kpis:
        stats += [(_("Displaced patients: mean"), kpis.get("displaced_mean_extra_min")),
                  (_("Displaced patients: 90th percentile"),
                   kpis.get("displaced_p90_extra_min")),
                  (_("Displaced patients: maximum"), kpis.get("displaced_max_extra_min"))]
    note = _("Extra minutes = travel after minus the area's mean travel before, per patient, "
             "weighted by patients per year (from assignments.csv; patients who stay at a "
             "hospital of a split area show its difference to the area mean). The displaced "
             "patients' figures compare each with their own trip today.")
    alt = _("Histogram of extra travel minutes, patient-weighted")
    caption = _("Patients per year by extra travel time (blue: shorter, grey: unchanged, "
                "orange: longer).")
    return (
        f'<p class="note">{esc(note)}</p>'
        f'<figure><img alt="{esc(alt)}" src="{img}"><figcaption>{esc(caption)}</figcaption>'
        "</figure>"
        '<div class="grid">'
        + html_table([_("Extra travel"), _("Patients /yr"), _("Share")], rows,
                     cls="extra-bands", numeric=[False, True, True])
        + html_table([_("Statistic"), _("Extra min")], stats, cls="extra-stats",
                     numeric=[False, True])
        + "</div>")


def changed_treatments(summary: Mapping[str, Any]) -> set[str] | None:
    """Treatments where a hospital stops or starts or patients move (None: not known)."""
    per = (summary.get("kpis") or {}).get("per_treatment")
    if not isinstance(per, Mapping):
        return None
    return {t for t, v in per.items() if isinstance(v, Mapping) and (
        v.get("providers_lost") or v.get("providers_gained") or v.get("patients_moved"))}


def maps_section(map_pngs: Mapping[str, Path], names: Mapping[str, str],
                 changed: set[str] | None = None) -> str:
    """The overview map and one map per treatment that changes (``changed``; None: all).

    A treatment where nothing changes has a map in maps/ but none in the report: it would
    only show today's providers again.
    """
    if not map_pngs:
        return '<p class="note">' + esc(_("No maps were drawn for this run.")) + "</p>"
    shown = {k: v for k, v in map_pngs.items()
             if k == "overview" or changed is None or k in changed}
    out = []
    for key, png in shown.items():
        label = _("Overview: all treatments") if key == "overview" else (
            f"{names[key]} ({key})" if key in names else key)
        uri = png_data_uri(Path(png).read_bytes())
        alt = _("Map: {label}", label=label)
        caption = _("{label}. Areas coloured by extra travel minutes; sites sized by volume "
                    "after; red crosses lose the treatment.", label=label)
        out.append(f'<figure id="map-{esc(key)}"><img alt="{esc(alt)}" src="{uri}">'
                   f"<figcaption>{esc(caption)}</figcaption></figure>")
    skipped = len(map_pngs) - len(shown)
    note = ('<p class="note">' + esc(_(
        "{count} treatment(s) without any change are not mapped here (their maps are in the "
        "folder maps/).", count=skipped)) + "</p>" if skipped else "")
    return note + '<div class="maps">' + "".join(out) + "</div>"
