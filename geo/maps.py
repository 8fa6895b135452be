"""Static PNG maps of one run's results: what each map shows, and which maps must be drawn.

For each treatment with a norm and patients, :func:`write_maps` draws the region's areas coloured
by the patient-weighted extra travel minutes (sequential colormap; areas whose travel got
*shorter* get the colorbar's "under" colour), the sites sized by their volume after
reallocation — kept (filled blue), gained (filled green), lost (red cross), never provided (small
grey dot) — a legend, a scale bar in km (RD New is in metres), a north arrow and a title with the
region, treatment and the scenario's margin / travel limits. An ``overview`` map does the same
over all treatments. Polygons are simplified to the drawing resolution once per call.

Each map's PNG bytes are kept in the derived-data cache (:mod:`herschik.derived_cache`) under a
key made of everything drawn, so a map whose content did not change is copied, not drawn:
matplotlib (:mod:`herschik.geo.map_drawing`) is loaded only when a map must be drawn. The
drawing without its caption is kept too (its pixels, compressed in blocks of rows by
:mod:`herschik.geo.png_rows`, under a key without the caption): a new scenario whose maps differ
only in the caption (every map names the margin and travel limits) writes the new caption over
the kept drawing and compresses the caption's rows only, instead of drawing and encoding the
map again. The code part
of the keys is the source of :data:`MAP_CODE` and of what it imports from herschik
(:func:`herschik.derived_cache.modules_digest`): a change elsewhere in herschik, which can only
change a map through what is drawn (in the key), keeps the maps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import signal
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from herschik.geo import png_rows
from herschik.geo.export import area_summary, normalise_assignments, normalise_site_volumes

from herschik.atomic import write_bytes
from herschik.derived_cache import entry_key, library_versions, read_entry, write_entry
from herschik.i18n import _, current_language, translate_name

DPI = 110
#: The libraries whose versions decide a map's pixels and PNG bytes (part of its cache key).
_DRAWING_LIBRARIES = ("matplotlib", "pillow")
#: The modules that make a map from its key's contents (with what they import from herschik:
#: the code part of a map's key, so a change elsewhere in herschik keeps the maps).
MAP_CODE = ("herschik.geo.maps", "herschik.geo.map_drawing")


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
class AreaGeometry:
    """Area polygons of the map extent, simplified to the drawing resolution (built once)."""

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
        self.simple = shapely.simplify(np.asarray(geoms), tolerance, preserve_topology=True)

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the area ids and their simplified polygons (part of a map's cache key)."""
        digest = hashlib.sha256("\n".join(self.ids).encode())
        for wkb in shapely.to_wkb(self.simple):
            digest.update(b"|" + (wkb or b""))
        return digest.hexdigest()


def drawing_versions() -> tuple[str, ...]:
    """The matplotlib and Pillow versions, the user's matplotlibrc, if any, and zlib's version
    (they decide a chart's pixels and PNG bytes)."""
    return (*library_versions(*_DRAWING_LIBRARIES), _matplotlibrc_digest(),
            "zlib " + zlib.ZLIB_RUNTIME_VERSION)


def _matplotlibrc_digest() -> str:
    """SHA-256 of the matplotlibrc file that matplotlib reads before its own default (fonts,
    line widths, ... change every chart), found as matplotlib finds it (``matplotlib_fname``:
    the working folder, ``$MATPLOTLIBRC``, the configuration folder), without importing it."""
    candidates = [Path("matplotlibrc")]
    if "MATPLOTLIBRC" in os.environ:
        candidates += [Path(os.environ["MATPLOTLIBRC"]),
                       Path(os.environ["MATPLOTLIBRC"]) / "matplotlibrc"]
    config = os.environ.get("MPLCONFIGDIR") or str(
        Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "matplotlib")
    candidates.append(Path(config) / "matplotlibrc")
    for path in candidates:
        try:
            if path.is_file():
                return "matplotlibrc " + hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
    return "matplotlibrc default"


@dataclasses.dataclass
class _MapJob:
    """One map to write: where, its cache keys (with and without the caption) and what is
    drawn. ``sites``: x, y, size_volume, category (kept|gained|lost|never), label."""

    path: Path
    key: str
    body_key: str
    geometry: AreaGeometry
    values: np.ndarray
    sites: pd.DataFrame
    title: str
    subtitle: str
    dpi: int
    labels: bool
    overview: bool


def _map_job(path: Path, paths: AreaGeometry, area_extra: pd.Series, sites: pd.DataFrame,
             title: str, subtitle: str, *, dpi: int, labels: bool,
             overview: bool = False) -> _MapJob:
    values = area_extra.reindex(paths.ids).to_numpy(float)
    keys = [_map_key(paths, values, sites, title, caption, dpi=dpi, labels=labels,
                     overview=overview) for caption in (subtitle, None)]
    return _MapJob(path, keys[0], keys[1], paths, values, sites, title, subtitle, dpi, labels,
                   overview)


def _copy(job: _MapJob) -> bool:
    """Write the map from the derived-data cache; False when it is not there."""
    png = read_entry(job.key)
    if png is None:
        return False
    write_bytes(job.path, png)
    return True


def _render(job: _MapJob) -> Path:
    """Write one map as PNG.

    The PNG's bytes are kept in the derived-data cache under a key made of everything drawn
    (polygons, colour values, sites, titles, resolution) and the matplotlib, Pillow and zlib
    versions that draw and encode it: a map whose content did not change is not drawn again. The
    drawing without the caption (``subtitle``) is kept under a key without it, so a map whose
    caption alone changed gets the caption written over the kept drawing.
    """
    if _copy(job):
        return job.path
    # matplotlib is loaded only for a map that must be drawn (a cache miss)
    from herschik.geo.map_drawing import map_body_rgba, map_png_with_caption

    body = png_rows.unpack(read_entry(job.body_key))
    if body is not None:
        try:
            png = map_png_with_caption(body, job.subtitle, dpi=job.dpi)
        except ValueError:  # a damaged entry: drawn again
            body = None
    if body is None:
        body = png_rows.encode_rows(map_body_rgba(
            job.geometry, job.values, job.sites, job.title, dpi=job.dpi, labels=job.labels,
            overview=job.overview))
        write_entry(job.body_key, png_rows.pack(body))
        png = map_png_with_caption(body, job.subtitle, dpi=job.dpi)
    write_entry(job.key, png)
    write_bytes(job.path, png)
    return job.path


class PendingMaps:
    """The maps of :func:`start_maps`: those in the cache are written, the others are drawn in
    a forked child process (``background``) while the caller goes on; :meth:`result` waits for
    it. A child that fails for any reason is not trusted: the maps it was to draw are drawn
    again here (from the cache where it got that far), so an error is raised here, as it
    would be without the child. Every file is written atomically (herschik/atomic.py); an
    interrupted or failing caller calls :meth:`cancel` (the child is killed and reaped)."""

    def __init__(self, written: dict[str, Path], missing: list[_MapJob], background: bool,
                 also: Callable[[], object] | None = None):
        self._written = written
        self._missing = missing
        self._also = also
        self._child: int | None = None
        if missing and background and _can_fork():
            # matplotlib loaded before the fork: the child inherits it, and the report's
            # charts drawn here meanwhile need it too (one import, not two)
            import herschik.geo.map_drawing  # noqa: F401

            self._child = _fork_drawing(missing, also)
        else:
            for job in missing:
                _render(job)
            self._missing = []
            if also is not None:
                also()

    @property
    def in_background(self) -> bool:
        """True while a child process draws maps."""
        return self._child is not None

    def result(self) -> dict[str, Path]:
        """``{key: path}`` of every map, in drawing order, once all are written."""
        if self._child is not None:
            pid, self._child = self._child, None
            try:
                _, status = os.waitpid(pid, 0)
            except BaseException:
                _kill(pid)
                raise
            if status != 0:
                for job in self._missing:
                    _render(job)
                if self._also is not None:
                    self._also()
            self._missing = []
        return self._written

    def cancel(self) -> None:
        """Stop and reap a child still drawing (nothing else is undone)."""
        if self._child is not None:
            pid, self._child = self._child, None
            _kill(pid)


def _can_fork() -> bool:
    # Linux only: a forked child inherits the parent's loaded data (no imports to repeat);
    # it runs no solver (the parent's idle HiGHS threads are not used), only matplotlib and
    # Pillow. From the main thread only: a sweep writes its folders on a thread while its
    # main thread solves, and a fork then would copy a process in the middle of a solve.
    return (sys.platform.startswith("linux") and hasattr(os, "fork")
            and threading.current_thread() is threading.main_thread())


def _fork_drawing(jobs: list[_MapJob], also: Callable[[], object] | None) -> int:
    """Fork a child that draws ``jobs``, then calls ``also``, and exits 0 (anything else: a
    failure)."""
    pid = os.fork()
    if pid == 0:  # the child: draw, then leave without the parent's exit handlers
        status = 1
        try:
            for job in jobs:
                _render(job)
            if also is not None:
                also()
            status = 0
        except BaseException:  # any failure: the parent draws again, and raises
            status = 1
        finally:
            os._exit(status)
    return pid


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


def _map_key(paths: AreaGeometry, values: np.ndarray, sites: pd.DataFrame, title: str,
             subtitle: str | None, *, dpi: int, labels: bool, overview: bool) -> str:
    """The key of a map's PNG; with ``subtitle`` None, of its drawing without the caption."""
    columns = [c for c in ("x", "y", "size_volume", "category", "label") if c in sites.columns]
    table = {c: [_plain(v) for v in sites[c].tolist()] for c in columns}
    # the legend and colour bar are drawn in the output language (herschik.i18n)
    drawn = json.dumps({"title": title, "subtitle": subtitle, "dpi": dpi, "labels": labels,
                        "language": current_language(),
                        "overview": overview, "sites": table}, sort_keys=True)
    values_digest = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
    return entry_key("map" if subtitle is not None else "map-body",
                     [*drawing_versions(), paths.digest, values_digest, drawn], code=MAP_CODE)


def _plain(value: Any) -> Any:
    """A JSON-exact form of a table cell (floats by their bits, so no rounding hides a change)."""
    if isinstance(value, float):
        return float(value).hex()
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return repr(value)


def _site_table(sv: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in ("site_id", "x", "y") if c in sites.columns]
    pts = sites[keep].assign(site_id=sites["site_id"].astype(str)).drop_duplicates("site_id")
    return sv.merge(pts, on="site_id", how="inner")


def _extra_per_area(summary_rows: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.Series:
    """Patient-weighted extra minutes per area id (one value per area), or per ``by`` + area.

    An area can appear in several rows: in a national run its patients may go to sites of
    several regions, and the rows are keyed by region too. One grouping by treatment and area
    gives every treatment's values at once, equal to grouping each treatment's rows alone
    (the same rows, summed in the same order).
    """
    weighted = summary_rows.assign(_w=summary_rows["patients"] * summary_rows["extra_min"])
    per_area = weighted.groupby([*by, "area_id"]).agg(w=("_w", "sum"), p=("patients", "sum"))
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
    summary_rows: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write ``overview.png`` and one ``<intervention_id>.png`` per treatment into ``out_dir``.

    Treatments drawn: those of ``site_volumes`` (i.e. with a norm) that have patients in
    ``assignments``, optionally restricted to ``treatments``. Returns ``{key: path}`` with key
    ``"overview"`` or the intervention id, in drawing order (overview first).
    ``summary_rows``: :func:`herschik.geo.export.area_summary` of ``assignments`` when the
    caller has it already (a run's GeoPackage uses the same rows).
    """
    return start_maps(out_dir, summary, site_volumes, assignments, sites, areas_gdf,
                      treatments=treatments, treatment_names=treatment_names,
                      overview=overview, labels=labels, dpi=dpi,
                      summary_rows=summary_rows).result()


def _overview_job(path: Path, paths: AreaGeometry, sv: pd.DataFrame, site_xy: pd.DataFrame,
                  areas_summary: pd.DataFrame, region: str, scenario: Mapping[str, Any],
                  n_treatments: int, *, dpi: int, labels: bool) -> _MapJob:
    """The overview map: every treatment's extra travel, each site once (lost when it loses
    any treatment)."""
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
    return _map_job(
        path, paths, extra, agg.reset_index(),
        _("{region} — all treatments", region=region),
        _("{caption} · {count} treatments · {lost} provider roles lost, {gained} gained · "
          "red cross: site loses at least one treatment",
          caption=scenario_caption(scenario), count=n_treatments, lost=n_lost,
          gained=n_gained),
        dpi=dpi, labels=labels, overview=True)


def _treatment_job(path: Path, paths: AreaGeometry, site_xy: pd.DataFrame,
                   extra_by_treatment: pd.Series, treatment: str, name: str | None, region: str,
                   scenario: Mapping[str, Any], *, dpi: int, labels: bool) -> _MapJob:
    """One treatment's map: its extra travel, its sites, its norm and providers."""
    part = site_xy[site_xy["intervention_id"] == treatment].sort_values("site_id")
    part = part.assign(size_volume=part["volume_after"],
                       category=_category(part["kept_before"], part["kept_after"]),
                       label=part["site_name"])
    extra = extra_by_treatment.xs(treatment, level="intervention_id")
    label = translate_name(name) if name else None
    title = f"{region} — {label} ({treatment})" if label else f"{region} — {treatment}"
    norm = part["norm"].dropna()
    norm_txt = (" · " + _("norm {norm}/yr", norm=format(float(norm.iloc[0]), "g"))
                if len(norm) else "")
    subtitle = (scenario_caption(scenario, treatment) + norm_txt + " · "
                + _("providers {before} → {after}", before=int(part["kept_before"].sum()),
                    after=int(part["kept_after"].sum())))
    return _map_job(path, paths, extra, part, title, subtitle, dpi=dpi, labels=labels)


def start_maps(
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
    summary_rows: pd.DataFrame | None = None,
    background: bool = False,
    also: Callable[[], object] | None = None,
) -> PendingMaps:
    """:func:`write_maps`, with the maps that are not in the derived-data cache drawn in a
    child process when ``background`` (Linux): the caller writes its other files meanwhile
    and calls :meth:`PendingMaps.result` (or, on an error, :meth:`PendingMaps.cancel`).

    ``also``: more work for the child after the maps (a run's GeoPackage: the second core
    is otherwise idle once the maps are drawn, while the report's charts are drawn here);
    called here instead when no child is started, or again when the child failed, so it has
    run once, here or there, when :meth:`PendingMaps.result` returns. It must write its files
    atomically and return nothing the caller needs."""
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
    paths = AreaGeometry(areas_gdf, region_ids or None)
    areas_summary = area_summary(asg) if summary_rows is None else summary_rows

    with_patients = set(sv["intervention_id"]) & set(asg["intervention_id"])
    available = [t for t in names if t in with_patients]  # the dataset's order
    available += sorted(with_patients - set(available))
    if treatments is not None:
        wanted = [str(t) for t in treatments]
        available = [t for t in wanted if t in set(available)]
    site_xy = _site_table(sv, sites)
    jobs: dict[str, _MapJob] = {}

    if overview and len(sv):
        jobs["overview"] = _overview_job(out_dir / "overview.png", paths, sv, site_xy,
                                         areas_summary, region, scenario, len(available),
                                         dpi=dpi, labels=labels)

    extra_by_treatment = _extra_per_area(areas_summary, by=("intervention_id",))
    for treatment in available:
        jobs[treatment] = _treatment_job(
            out_dir / f"{slug(treatment)}.png", paths, site_xy, extra_by_treatment, treatment,
            names.get(treatment), region, scenario, dpi=dpi, labels=labels)
    missing = [job for job in jobs.values() if not _copy(job)]
    return PendingMaps({key: job.path for key, job in jobs.items()}, missing, background,
                       also)
