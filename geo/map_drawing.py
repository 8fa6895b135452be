"""Drawing one map with matplotlib (Agg, no pyplot, no global state): what
:mod:`herschik.geo.maps` calls only for a map that is not in the derived-data cache.

The region's areas coloured by the patient-weighted extra travel minutes (sequential colormap;
areas whose travel got *shorter* get the colorbar's "under" colour), the sites sized by their
volume after reallocation — kept (filled blue), gained (filled green), lost (red cross), never
provided (small grey dot) — a legend, a scale bar in km (RD New is in metres), a north arrow
and a title. Polygons arrive simplified to the drawing resolution and become matplotlib paths
once per set of maps.

The caption under the title (the scenario: margin, travel limits, norm, providers) is drawn
last, over the finished rest of the map, which is nowhere under it: :func:`map_body_rgba` draws
everything else as Agg pixels, and :func:`map_png_with_caption` writes the caption over them:
the pixels of ``savefig``'s PNG, exactly (tests/herschik/test_derived_cache.py). The PNG is
encoded in blocks of rows (geo/png_rows.py), so the cache keeps a map's drawing apart from its
caption, compressed, and a new scenario that changes only the caption neither draws the map
again nor compresses more than the caption's rows.
"""

from __future__ import annotations

import io
import math
import weakref
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.png_rows import (
    ROWS_PER_BLOCK,
    RowBlocks,
    decode_rows,
    encode_rows,
    png_bytes,
    reencode_rows,
    replace_rows,
)
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PathCollection
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.text import Text

from herschik.i18n import _

FIGSIZE = (8.4, 7.0)
CMAP = "YlOrRd"
UNDER_COLOUR = "#9ecae1"  # areas whose travel became shorter
BACKGROUND = "#ececec"  # areas without patients of the treatment
KEPT, GAINED, LOST, NEVER = "#08306b", "#1a9850", "#d7191c", "#9e9e9e"
_NICE_KM = (0.5, 1, 2, 5, 10, 20, 25, 50, 100, 200)
#: matplotlib paths per geometry, built once for all maps of a run (dropped with the geometry)
_PATHS: weakref.WeakKeyDictionary[Any, list[MplPath]] = weakref.WeakKeyDictionary()


def map_png(
    geometry: Any,
    values: np.ndarray,
    sites: pd.DataFrame,
    title: str,
    subtitle: str,
    *,
    dpi: int,
    labels: bool,
    overview: bool,
) -> bytes:
    """One map as PNG bytes. ``geometry``: a ``geo.maps.AreaGeometry`` (``simple`` polygons,
    ``bounds``); ``values`` per area of it (NaN: no patients)."""
    fig = _figure(_area_paths(geometry), geometry.bounds, values, sites, title, subtitle,
                  dpi=dpi, labels=labels, overview=overview)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png", metadata={"Software": None})
    return buffer.getvalue()


def map_body_rgba(
    geometry: Any,
    values: np.ndarray,
    sites: pd.DataFrame,
    title: str,
    *,
    dpi: int,
    labels: bool,
    overview: bool,
) -> np.ndarray:
    """The map of :func:`map_png` without its caption: the RGBA pixels (height x width x 4,
    uint8) that Agg draws before the caption."""
    fig = _figure(_area_paths(geometry), geometry.bounds, values, sites, title, "",
                  dpi=dpi, labels=labels, overview=overview)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)


def map_png_with_caption(body: RowBlocks, subtitle: str, *, dpi: int) -> bytes:
    """The PNG of the pixels of :func:`map_png` from those of :func:`map_body_rgba` (encoded
    by geo/png_rows.py): the caption drawn over them (as the figure draws it, after the axes
    and before the legend, which lies elsewhere), and only the blocks of rows under it
    decoded and compressed again.

    The caption's rows are taken from its extent with a block to spare; that nothing was
    drawn outside them is checked (the rest of the canvas is left empty and must stay so),
    else the whole drawing is decoded and the caption drawn again over all of it."""
    fig = Figure(figsize=FIGSIZE, dpi=dpi)
    renderer = FigureCanvasAgg(fig).get_renderer()
    pixels = np.asarray(renderer.buffer_rgba())
    if pixels.shape[:2] != (body.height, body.width):
        raise ValueError(f"map pixels of shape {(body.height, body.width)}, "
                         f"not {pixels.shape[:2]}")
    caption = _caption(fig, subtitle)
    extent = caption.get_window_extent(renderer)  # pixels, from the bottom
    blocks = len(body.pieces)
    first = max(0, math.floor(body.height - extent.y1) // ROWS_PER_BLOCK - 1)
    last = min(blocks - 1, math.ceil(body.height - extent.y0) // ROWS_PER_BLOCK + 1)
    top, bottom = first * ROWS_PER_BLOCK, min(body.height, (last + 1) * ROWS_PER_BLOCK)
    pixels[...] = 0
    pixels[top:bottom] = decode_rows(body, first, last)
    caption.draw(renderer)
    if pixels[:top].any() or pixels[bottom:].any():  # drawn outside the rows taken
        old = decode_rows(body)
        pixels[...] = old
        caption.draw(renderer)
        return png_bytes(reencode_rows(body, old, pixels), dpi)
    new = replace_rows(body, first, pixels[top:bottom])
    if new is None:  # the caption made opaque rows transparent: encode the whole image
        whole = decode_rows(body)
        whole[top:bottom] = pixels[top:bottom]
        return png_bytes(encode_rows(whole), dpi)
    return png_bytes(new, dpi)


def _caption(fig: Figure, subtitle: str) -> Text:
    return fig.text(0.02, 0.915, subtitle, ha="left", fontsize=8.5, color="#333333")


def _area_paths(geometry: Any) -> list[MplPath]:
    """The areas as matplotlib paths, built once per geometry (all maps of a run share it)."""
    if geometry not in _PATHS:
        _PATHS[geometry] = [_to_path(g) for g in geometry.simple]
    return _PATHS[geometry]


def _to_path(geom: Any) -> MplPath:
    if geom is None or geom.is_empty:
        return MplPath(np.zeros((1, 2)))
    polys = getattr(geom, "geoms", [geom])
    rings = []
    for poly in polys:
        if poly.geom_type != "Polygon":
            continue
        rings.append(MplPath(np.asarray(poly.exterior.coords)[:, :2], closed=True))
        rings.extend(MplPath(np.asarray(r.coords)[:, :2], closed=True)
                     for r in poly.interiors)
    return MplPath.make_compound_path(*rings) if rings else MplPath(np.zeros((1, 2)))


def _draw_areas(ax: Any, paths: list[MplPath], colours: np.ndarray) -> None:
    # A PathCollection without offsets draws the paths in data coordinates; it avoids
    # creating one Patch artist per area (the slow part of geopandas' plot()).
    ax.add_collection(PathCollection(paths, facecolors=colours, edgecolors="white",
                                     linewidths=0.25, zorder=1), autolim=False)


def _nice_length_km(width_m: float) -> float:
    target = width_m / 5000.0
    return min(_NICE_KM, key=lambda k: abs(math.log(k / target)) if target > 0 else k)


def draw_scale_bar(ax: Any, xlim: tuple[float, float], ylim: tuple[float, float]) -> float:
    """Two-segment black/white scale bar in km at the lower left; returns its length in km."""
    width, height = xlim[1] - xlim[0], ylim[1] - ylim[0]
    km = _nice_length_km(width)
    length = km * 1000.0
    x0, y0, bar_h = xlim[0] + 0.04 * width, ylim[0] + 0.04 * height, 0.012 * height
    for i, colour in enumerate(("black", "white")):
        ax.add_patch(Rectangle((x0 + i * length / 2, y0), length / 2, bar_h, facecolor=colour,
                               edgecolor="black", linewidth=0.8, zorder=6))
    for frac, label in ((0.0, "0"), (0.5, f"{km / 2:g}"), (1.0, f"{km:g} km")):
        ax.text(x0 + frac * length, y0 + bar_h * 1.6, label, ha="center", va="bottom",
                fontsize=7, zorder=6,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.6, "pad": 0.5})
    return km


def _draw_north(ax: Any) -> None:
    ax.annotate("N", xy=(0.96, 0.97), xytext=(0.96, 0.89), xycoords="axes fraction",
                ha="center", va="center", fontsize=9, fontweight="bold", zorder=6,
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2})


def _marker_sizes(volume: np.ndarray, vmax: float) -> np.ndarray:
    vmax = vmax if vmax > 0 else 1.0
    return 18.0 + 320.0 * np.clip(volume, 0, None) / vmax


def _size_legend_values(vmax: float) -> list[float]:
    if vmax <= 0:
        return []
    exp = 10 ** math.floor(math.log10(vmax))
    top = max(v * exp for v in (1, 2, 5, 10) if v * exp <= vmax)
    return sorted({top, top / 2, top / 5} - {0})[-3:]


def _extent(bounds: tuple[float, float, float, float], sx: np.ndarray, sy: np.ndarray,
            box_ratio: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Data limits around areas and sites, widened to the axes' width/height ratio."""
    xmin, ymin, xmax, ymax = bounds
    if len(sx):
        xmin, xmax = min(xmin, float(sx.min())), max(xmax, float(sx.max()))
        ymin, ymax = min(ymin, float(sy.min())), max(ymax, float(sy.max()))
    pad = 0.04 * max(xmax - xmin, ymax - ymin, 1000.0)
    xmin, xmax, ymin, ymax = xmin - pad, xmax + pad, ymin - 2.0 * pad, ymax + pad
    width, height = xmax - xmin, ymax - ymin
    if width / height < box_ratio:
        grow = (height * box_ratio - width) / 2
        xmin, xmax = xmin - grow, xmax + grow
    else:
        grow = width / box_ratio - height
        ymin, ymax = ymin - grow / 2, ymax + grow / 2
    return (xmin, xmax), (ymin, ymax)


def _figure(
    paths: list[MplPath],
    bounds: tuple[float, float, float, float],
    values: np.ndarray,
    sites: pd.DataFrame,
    title: str,
    subtitle: str,
    *,
    dpi: int,
    labels: bool,
    overview: bool,
) -> Figure:
    """Draw one map (see :func:`map_png`)."""
    fig = Figure(figsize=FIGSIZE, dpi=dpi)
    ax_box = (0.01, 0.02, 0.71, 0.84)
    ax = fig.add_axes(ax_box)
    cax = fig.add_axes((0.775, 0.49, 0.022, 0.36))

    finite = values[np.isfinite(values)]
    vmax = max(5.0, float(np.ceil(finite.max()))) if len(finite) else 5.0
    cmap = colormaps[CMAP].with_extremes(under=UNDER_COLOUR)
    norm = Normalize(vmin=0.0, vmax=vmax)
    colours = cmap(norm(np.clip(np.nan_to_num(values, nan=0.0), 0.0, None)))
    colours[values < -0.05] = to_rgba(UNDER_COLOUR)
    colours[~np.isfinite(values)] = to_rgba(BACKGROUND)
    _draw_areas(ax, paths, colours)
    has_shorter = bool(len(finite) and (finite < -0.05).any())
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax,
                        extend="min" if has_shorter else "neither")
    cbar.set_label(_("extra travel time by car (min per patient)"), fontsize=8)
    cbar.ax.tick_params(labelsize=7)

    sx, sy = sites["x"].to_numpy(float), sites["y"].to_numpy(float)
    vol_max = float(sites["size_volume"].max()) if len(sites) else 0.0
    sizes = _marker_sizes(sites["size_volume"].to_numpy(float), vol_max)
    cat = sites["category"].to_numpy() if len(sites) else np.array([])
    style = {
        "never": {"s": 9, "c": NEVER, "marker": "o", "linewidths": 0, "zorder": 3},
        "kept": {"c": KEPT, "marker": "o", "edgecolors": "white", "linewidths": 0.7,
                 "alpha": 0.9, "zorder": 4},
        "gained": {"c": GAINED, "marker": "o", "edgecolors": "black", "linewidths": 0.9,
                   "alpha": 0.95, "zorder": 4},
        "lost": {"s": 70, "c": LOST, "marker": "X", "edgecolors": "white", "linewidths": 0.5,
                 "zorder": 5},
    }
    for name, kw in style.items():
        sel = cat == name
        if name == "kept" and overview:  # a site losing one treatment may keep others
            sel = sel | ((cat == "lost") & (sites["size_volume"].to_numpy(float) > 0))
        if not sel.any():
            continue
        kw = dict(kw)
        if "s" not in kw:
            kw["s"] = sizes[sel]
        ax.scatter(sx[sel], sy[sel], **kw)
    if labels and len(sites):
        radius = np.sqrt(np.where(cat == "lost", 70.0, sizes)) / 2
        for k, row in enumerate(sites.itertuples(index=False)):
            if cat[k] == "never":
                continue
            off = float(radius[k]) * 0.75 + 1.5
            ax.annotate(str(row.label), (row.x, row.y), xytext=(off, off),
                        textcoords="offset points", fontsize=6, zorder=7, color="#111111",
                        path_effects=[patheffects.withStroke(linewidth=2, foreground="white")])

    box_ratio = (ax_box[2] * FIGSIZE[0]) / (ax_box[3] * FIGSIZE[1])
    xlim, ylim = _extent(bounds, sx, sy, box_ratio)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()
    draw_scale_bar(ax, xlim, ylim)
    _draw_north(ax)

    handles = [
        Line2D([], [], ls="", marker="o", color=KEPT, markersize=7, label=_("kept")),
        Line2D([], [], ls="", marker="o", color=GAINED, markeredgecolor="black",
               markersize=7, label=_("gained")),
        Line2D([], [], ls="", marker="X", color=LOST, markersize=8, label=_("lost")),
        Line2D([], [], ls="", marker="o", color=NEVER, markersize=3,
               label=_("not provided")),
    ]
    for v in _size_legend_values(vol_max):
        handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none",
                              markeredgecolor=KEPT,
                              label=_("{count} patients/yr", count=format(v, "g")),
                              markersize=math.sqrt(float(_marker_sizes(np.array([v]),
                                                                       vol_max)[0]))))
    handles.append(Rectangle((0, 0), 1, 1, facecolor=BACKGROUND, edgecolor="#b0b0b0",
                             label=_("no patients")))
    if has_shorter:
        handles.append(Rectangle((0, 0), 1, 1, facecolor=UNDER_COLOUR,
                                 label=_("shorter travel")))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.735, 0.45), fontsize=7,
               frameon=False, labelspacing=0.9, borderpad=0.4, title=_("sites / areas"),
               title_fontsize=7.5, alignment="left")
    fig.suptitle(title, x=0.02, y=0.975, ha="left", fontsize=12, fontweight="bold")
    _caption(fig, subtitle)
    return fig
