"""Static PNG maps of one run's results (matplotlib, Agg; no pyplot, no global state).

For each treatment with a norm and patients, :func:`write_maps` draws the region's areas coloured
by the patient-weighted extra travel minutes (sequential colormap; areas whose travel got
*shorter* get the colorbar's "under" colour), the sites sized by their volume after
reallocation — kept (filled blue), gained (filled green), lost (red cross), never provided (small
grey dot) — a legend, a scale bar in km (RD New is in metres), a north arrow and a title with the
region, treatment and the scenario's margin / travel limits. An ``overview`` map does the same
over all treatments. Polygons are simplified to the drawing resolution and converted to
matplotlib paths once per call, so a map of ~700 areas takes well under a second.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from herschik.geo.export import area_summary, normalise_assignments, normalise_site_volumes
from matplotlib import colormaps, patheffects
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PathCollection
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.path import Path as MplPath

from herschik.atomic import atomic_path
from herschik.i18n import _, translate_name

DPI = 110
FIGSIZE = (8.4, 7.0)
CMAP = "YlOrRd"
UNDER_COLOUR = "#9ecae1"  # areas whose travel became shorter
BACKGROUND = "#ececec"  # areas without patients of the treatment
KEPT, GAINED, LOST, NEVER = "#08306b", "#1a9850", "#d7191c", "#9e9e9e"
_NICE_KM = (0.5, 1, 2, 5, 10, 20, 25, 50, 100, 200)


def slug(text: str) -> str:
    """File-name-safe version of an id (``[A-Za-z0-9_.-]``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"


def scenario_caption(scenario: Mapping[str, Any] | None, treatment: str | None = None) -> str:
    """``margin 10% · max travel 60 min`` (with the treatment's own margin when it has one)."""
    scenario = scenario or {}
    margin = scenario.get("margin", 0.0) or 0.0
    by_treatment = scenario.get("margin_by_treatment") or {}
    if treatment is not None and treatment in by_treatment:
        margin = by_treatment[treatment]
    parts = [_("margin {margin}", margin=format(float(margin), ".0%"))]
    max_travel = scenario.get("max_travel")
    parts.append(_("max travel {minutes} min", minutes=format(float(max_travel), "g"))
                 if max_travel else _("no max travel"))
    if scenario.get("max_extra_travel") is not None:
        parts.append(_("max extra {minutes} min",
                       minutes=format(float(scenario["max_extra_travel"]), "g")))
    return " · ".join(parts)


# ----------------------------------------------------------------------------- geometry
class _AreaPaths:
    """Area polygons of the map extent as simplified matplotlib paths (built once)."""

    def __init__(self, areas_gdf: gpd.GeoDataFrame, region_ids: set[str] | None) -> None:
        gdf = areas_gdf
        if region_ids and "region_id" in gdf.columns:
            sel = gdf["region_id"].astype(str).isin(region_ids)
            if sel.any():
                gdf = gdf[sel]
        self.ids = gdf["area_id"].astype(str).to_numpy()
        geoms = gdf.geometry.values
        xmin, ymin, xmax, ymax = (shapely.total_bounds(geoms) if len(gdf)
                                  else (0.0, 0.0, 1.0, 1.0))
        self.bounds = (float(xmin), float(ymin), float(xmax), float(ymax))
        tolerance = max(xmax - xmin, ymax - ymin) / 1500.0
        simple = shapely.simplify(np.asarray(geoms), tolerance, preserve_topology=True)
        self.paths = [self._to_path(g) for g in simple]
        self.index = {a: i for i, a in enumerate(self.ids)}

    @staticmethod
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

    def draw(self, ax: Any, colours: np.ndarray) -> None:
        # A PathCollection without offsets draws the paths in data coordinates; it avoids
        # creating one Patch artist per area (the slow part of geopandas' plot()).
        ax.add_collection(PathCollection(self.paths, facecolors=colours, edgecolors="white",
                                         linewidths=0.25, zorder=1), autolim=False)


# ----------------------------------------------------------------------------- drawing parts
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


def _extent(paths: _AreaPaths, sx: np.ndarray, sy: np.ndarray,
            box_ratio: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Data limits around areas and sites, widened to the axes' width/height ratio."""
    xmin, ymin, xmax, ymax = paths.bounds
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


def _render(
    path: Path,
    paths: _AreaPaths,
    area_extra: pd.Series,
    sites: pd.DataFrame,
    title: str,
    subtitle: str,
    *,
    dpi: int,
    labels: bool,
    overview: bool = False,
) -> Path:
    """Draw one map. ``sites``: x, y, size_volume, category (kept|gained|lost|never), name."""
    fig = Figure(figsize=FIGSIZE, dpi=dpi)
    ax_box = (0.01, 0.02, 0.71, 0.84)
    ax = fig.add_axes(ax_box)
    cax = fig.add_axes((0.775, 0.49, 0.022, 0.36))

    values = area_extra.reindex(paths.ids).to_numpy(float)
    finite = values[np.isfinite(values)]
    vmax = max(5.0, float(np.ceil(finite.max()))) if len(finite) else 5.0
    cmap = colormaps[CMAP].with_extremes(under=UNDER_COLOUR)
    norm = Normalize(vmin=0.0, vmax=vmax)
    colours = cmap(norm(np.clip(np.nan_to_num(values, nan=0.0), 0.0, None)))
    colours[values < -0.05] = to_rgba(UNDER_COLOUR)
    colours[~np.isfinite(values)] = to_rgba(BACKGROUND)
    paths.draw(ax, colours)
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
    xlim, ylim = _extent(paths, sx, sy, box_ratio)
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
    fig.text(0.02, 0.915, subtitle, ha="left", fontsize=8.5, color="#333333")

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata={"Software": None})
    return path


def _site_table(sv: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in ("site_id", "x", "y") if c in sites.columns]
    pts = sites[keep].assign(site_id=sites["site_id"].astype(str)).drop_duplicates("site_id")
    return sv.merge(pts, on="site_id", how="inner")


def _extra_per_area(summary_rows: pd.DataFrame) -> pd.Series:
    """Patient-weighted extra minutes per area id (one value per area).

    An area can appear in several rows: in a national run its patients may go to sites of
    several regions, and the rows are keyed by region too.
    """
    weighted = summary_rows.assign(_w=summary_rows["patients"] * summary_rows["extra_min"])
    per_area = weighted.groupby("area_id").agg(w=("_w", "sum"), p=("patients", "sum"))
    return per_area["w"] / per_area["p"]


def _category(before: pd.Series, after: pd.Series) -> np.ndarray:
    return np.select([before & after, after & ~before, before & ~after],
                     ["kept", "gained", "lost"], default="never")


def write_maps(
    out_dir: str | Path,
    summary: Mapping[str, Any],
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    sites: pd.DataFrame,
    areas_gdf: gpd.GeoDataFrame,
    *,
    treatments: Iterable[str] | None = None,
    treatment_names: Mapping[str, str] | None = None,
    overview: bool = True,
    labels: bool = True,
    dpi: int = DPI,
) -> dict[str, Path]:
    """Write ``overview.png`` and one ``<intervention_id>.png`` per treatment into ``out_dir``.

    Treatments drawn: those of ``site_volumes`` (i.e. with a norm) that have patients in
    ``assignments``, optionally restricted to ``treatments``. Returns ``{key: path}`` with key
    ``"overview"`` or the intervention id, in drawing order (overview first).
    """
    out_dir = Path(out_dir)
    sv = normalise_site_volumes(site_volumes)
    asg = normalise_assignments(assignments)
    asg = asg[asg["patients"] > 0]
    names = dict(treatment_names or {})
    region = str(summary.get("region_id", ""))
    scenario = summary.get("scenario") or {}
    region_ids = set(sv["region_id"]) | set(asg["region_id"])
    if region and region != "all":
        region_ids.add(region)
    paths = _AreaPaths(areas_gdf, region_ids or None)
    areas_summary = area_summary(asg)

    with_patients = set(sv["intervention_id"]) & set(asg["intervention_id"])
    available = [t for t in names if t in with_patients]  # the dataset's order
    available += sorted(with_patients - set(available))
    if treatments is not None:
        wanted = [str(t) for t in treatments]
        available = [t for t in wanted if t in set(available)]
    site_xy = _site_table(sv, sites)
    written: dict[str, Path] = {}

    if overview and len(sv):
        extra = _extra_per_area(areas_summary)
        grouped = site_xy.groupby("site_id", sort=True)
        agg = grouped.agg(x=("x", "first"), y=("y", "first"), name=("site_name", "first"),
                          size_volume=("volume_after", "sum"),
                          n_before=("kept_before", "sum"), n_after=("kept_after", "sum"))
        gained = (site_xy["kept_after"] & ~site_xy["kept_before"]).groupby(site_xy["site_id"]).sum()
        lost = (site_xy["kept_before"] & ~site_xy["kept_after"]).groupby(site_xy["site_id"]).sum()
        agg["category"] = np.select(
            [lost.reindex(agg.index) > 0, gained.reindex(agg.index) > 0, agg["n_after"] > 0],
            ["lost", "gained", "kept"], default="never")
        agg["label"] = agg["name"]
        n_lost = int((sv["kept_before"] & ~sv["kept_after"]).sum())
        n_gained = int((sv["kept_after"] & ~sv["kept_before"]).sum())
        written["overview"] = _render(
            out_dir / "overview.png", paths, extra, agg.reset_index(),
            _("{region} — all treatments", region=region),
            _("{caption} · {count} treatments · {lost} provider roles lost, {gained} gained · "
              "red cross: site loses at least one treatment",
              caption=scenario_caption(scenario), count=len(available), lost=n_lost,
              gained=n_gained),
            dpi=dpi, labels=labels, overview=True)

    for treatment in available:
        part = site_xy[site_xy["intervention_id"] == treatment].sort_values("site_id")
        part = part.assign(size_volume=part["volume_after"],
                           category=_category(part["kept_before"], part["kept_after"]),
                           label=part["site_name"])
        extra = _extra_per_area(areas_summary[areas_summary["intervention_id"] == treatment])
        label = translate_name(names[treatment]) if names.get(treatment) else None
        title = f"{region} — {label} ({treatment})" if label else f"{region} — {treatment}"
        norm = part["norm"].dropna()
        norm_txt = (" · " + _("norm {norm}/yr", norm=format(float(norm.iloc[0]), "g"))
                    if len(norm) else "")
        subtitle = (scenario_caption(scenario, treatment) + norm_txt + " · "
                    + _("providers {before} → {after}", before=int(part["kept_before"].sum()),
                        after=int(part["kept_after"].sum())))
        written[treatment] = _render(out_dir / f"{slug(treatment)}.png", paths, extra, part,
                                     title, subtitle, dpi=dpi, labels=labels)
    return written
