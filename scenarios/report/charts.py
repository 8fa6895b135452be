"""The report's charts drawn with matplotlib (Agg, no pyplot): loaded only when a chart is not
in the derived-data cache (see scenarios/report/travel.py)."""
from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from herschik.i18n import _


def histogram_png(edges: np.ndarray, counts: np.ndarray, step: float, dpi: int) -> bytes:
    """Bars ``counts`` over the bins ``edges`` (width ``step`` minutes) as PNG bytes: shorter
    trips blue, longer orange, unchanged grey."""
    fig = Figure(figsize=(7.0, 3.0), dpi=dpi)
    ax = fig.add_axes((0.09, 0.18, 0.88, 0.74))
    colours = ["#9ecae1" if e < 0 else "#fd8d3c" if e > 0 else "#bdbdbd" for e in edges[:-1]]
    ax.bar(edges[:-1], counts, width=step, align="edge", color=colours, edgecolor="white")
    ax.set_xlabel(_("extra travel time by car (min per patient; after − before)"))
    ax.set_ylabel(_("patients per year"))
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5")
    ax.set_axisbelow(True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()
