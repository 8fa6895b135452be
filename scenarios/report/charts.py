"""The report's charts drawn with matplotlib (Agg, no pyplot): loaded only when a chart is not
in the derived-data cache (scenarios/report/travel.py: the extra-travel histogram;
scenarios/report/odds.py: the odds figure and the fan charts, also drawn by ``herschik
simulate``)."""
from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib import image as mpl_image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import special

from herschik.i18n import _

#: inches of spare canvas left of a chart's names (cropped away): a name longer than its old
#: place no longer makes savefig lay the chart out twice (see _tight_png)
_ROOM = 3.0
#: inches of spare canvas on the other sides (a title or legend above the axes)
_EDGE = 0.5


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
    # a figure of max(5, 0.6 n + 2) x 3.8 in with room around it; the picture is cropped to
    # what is drawn (_tight_png)
    fig, place = _roomy_figure(max(5.0, 0.6 * n + 2.0), 3.8, dpi)
    ax = fig.add_axes(place(0.1, 0.32, 0.86, 0.5))
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
    title_x, title_y = place(0.1, 0.98, 0, 0)[:2]
    fig.suptitle(title, fontsize=10, x=title_x, ha="left", y=title_y)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.02), frameon=False, ncol=4)
    return _tight_png(fig, dpi)


def exact_bands(volumes: Sequence[float]) -> dict[str, np.ndarray]:
    """Poisson quantiles of yearly volumes with these expected values."""
    mean = np.asarray(volumes, float)
    return {name: poisson_quantile(q, mean) for name, q in FAN_QUANTILES.items()}


def poisson_quantile(q: float, mean: np.ndarray) -> np.ndarray:
    """``scipy.stats.poisson.ppf(q, mean)`` for 0 < q < 1, bit for bit (NaN for a negative,
    infinite or NaN mean): scipy's own evaluation (``poisson._ppf``) from scipy.special,
    without importing scipy.stats (0.5 s of CPU)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile {q} outside (0, 1)")
    mean = np.asarray(mean, float)
    with np.errstate(invalid="ignore"):
        above = np.ceil(special.pdtrik(q, mean))
        below = np.maximum(above - 1, 0)
        value = np.where(special.pdtr(below, mean) >= q, below, above)
    return np.where((mean >= 0) & np.isfinite(mean), value, np.nan)


def odds_png(labels: Sequence[str], odds: Sequence[float], period_years: int,
             dpi: int = 100) -> bytes:
    """Horizontal bars: each kept hospital x treatment's odds of meeting its norm (``labels``
    and ``odds`` lowest first), with the 50 / 80 / 90 % lines."""
    n = len(labels)
    height = max(2.0, 0.22 * n + 1.0)
    # a figure of 7 in x height with room around it; the picture is cropped to what is drawn
    # (_tight_png)
    fig, place = _roomy_figure(7.0, height, dpi)
    ax = fig.add_axes(place(0.42, 0.9 / height, 0.54, 1 - 1.3 / height))
    values = np.asarray(odds, float)
    colours = ["#cb181d" if p < 0.5 else "#fd8d3c" if p < 0.8 else "#41ab5d" for p in values]
    y = np.arange(n)
    ax.barh(y, values, color=colours)
    ax.set_yticks(y, list(labels), fontsize=7)
    ax.invert_yaxis()
    for line in (0.5, 0.8, 0.9):
        ax.axvline(line, color="#969696", lw=0.8, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xlabel(_("probability of meeting the norm over {years} years", years=period_years)
                  if period_years > 1 else _("probability of meeting the norm in one year"))
    ax.spines[["top", "right"]].set_visible(False)
    return _tight_png(fig, dpi)


def _roomy_figure(width: float, height: float, dpi: float) -> tuple[
        Figure, Callable[[float, float, float, float], tuple[float, float, float, float]]]:
    """A figure of ``width`` x ``height`` inches with spare canvas around it (``_ROOM`` on the
    left for long names, ``_EDGE`` elsewhere), and ``place``: a rectangle in fractions of the
    inner figure as fractions of the whole (the layout of a chart drawn at the inner size)."""
    outer_w, outer_h = width + _ROOM + _EDGE, height + 2 * _EDGE

    def place(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        return ((_ROOM + x * width) / outer_w, (_EDGE + y * height) / outer_h,
                w * width / outer_w, h * height / outer_h)

    return Figure(figsize=(outer_w, outer_h), dpi=dpi), place


def _tight_png(fig: Figure, dpi: float, pad_inches: float = 0.1) -> bytes:
    """The figure drawn once and cropped to what is drawn plus ``pad_inches``, as PNG bytes.

    ``savefig(bbox_inches="tight")`` lays the figure out twice (once to find the box, once to
    draw it shifted by the box's fractional offset); here the drawn canvas is cropped at whole
    pixels around the same box. When something lies outside the canvas (a name longer than
    the room left for it), the figure is saved as ``bbox_inches="tight"`` does, which widens
    it."""
    if fig.dpi != dpi:
        raise ValueError(f"figure at {fig.dpi} dpi, not {dpi}")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.get_tightbbox(renderer).padded(pad_inches)  # inches, from the bottom left
    width, height = fig.bbox.width, fig.bbox.height  # pixels
    left, right = math.floor(box.x0 * dpi), math.ceil(box.x1 * dpi)
    top, bottom = math.floor(height - box.y1 * dpi), math.ceil(height - box.y0 * dpi)
    buffer = io.BytesIO()
    if left < 0 or top < 0 or right > width or bottom > height:
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None},
                    bbox_inches="tight", pad_inches=pad_inches)
        return buffer.getvalue()
    pixels = np.asarray(renderer.buffer_rgba())[top:bottom, left:right]
    mpl_image.imsave(buffer, pixels, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()
