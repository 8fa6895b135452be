"""Everything a run writes for planners besides the contract CSVs / summary.json.

:func:`write_run_outputs` is called by ``scenarios.run`` once ``summary.json``,
``site_volumes.csv`` and ``assignments.csv`` exist in the (temporary) run folder. It writes, each
file via a temporary name and :func:`os.replace`:

* ``results.gpkg`` — layers ``sites``, ``areas``, ``flows``, ``hospital_flows`` in EPSG:28992
  with their QGIS styles (``layer_styles``) (``gpkg=True``);
* ``geojson/{sites,areas,flows,hospital_flows}.geojson`` — the same layers in EPSG:4326
  (``geojson=True``);
* ``results.xlsx`` — scenarios/report/workbook.py (``xlsx=True``);
* ``maps/overview.png`` and ``maps/<intervention_id>.png`` (``maps=True``);
* ``report.html`` — self-contained, maps embedded (``report=True``).

An infeasible run (``summary["status"] == "infeasible"``, or both tables empty) has no
reallocation: no GeoPackage, GeoJSON or maps are written (they would only repeat the input
data, and "kept after" would be meaningless); the report (and the workbook, if asked for) still
are, and explain the diagnosis. A partial plan (``partially_infeasible``: some treatments
without a plan) writes everything for the treatments that have one; maps are drawn for those.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from herschik.geo.export import (
    FALLBACK_BUFFER_M,
    area_summary,
    areas_geodataframe,
    build_layers,
    normalise_assignments,
    normalise_site_volumes,
    write_layers_geojson,
)
from herschik.geo.export_cache import write_results_gpkg_cached
from herschik.geo.maps import PendingMaps, start_maps
from herschik.optimiser.results import hospital_changes_from_site_volumes
from herschik.optimiser.status import SolveStatus
from herschik.scenarios.report.page import write_report
from herschik.scenarios.report.pdf import write_pdf
from herschik.scenarios.report.workbook import write_results_xlsx


def _treatment_names(dataset: Any) -> dict[str, str]:
    table = getattr(dataset, "treatments", None)
    if isinstance(table, pd.DataFrame) and {"intervention_id", "name"} <= set(table.columns):
        return dict(zip(table["intervention_id"].astype(str), table["name"].astype(str),
                        strict=True))
    return {}


def _region_name(dataset: Any, region_id: str) -> str | None:
    table = getattr(dataset, "regions", None)
    if isinstance(table, pd.DataFrame) and {"region_id", "region_name"} <= set(table.columns):
        match = table.loc[table["region_id"].astype(str) == region_id, "region_name"]
        if len(match):
            return str(match.iloc[0])
    return None


def _summary_rows(asg: pd.DataFrame, areas_gdf: Any, with_layers: bool) -> pd.DataFrame | None:
    """The per-area rows behind the GeoPackage's areas layer and the maps' colours, computed
    once for both (None when neither is written)."""
    return area_summary(asg) if areas_gdf is not None and with_layers else None


def write_run_outputs(
    run_dir: Path,
    summary: dict,
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    dataset: Any,
    *,
    gpkg: bool = True,
    geojson: bool = False,
    xlsx: bool = False,
    maps: bool = True,
    report: bool = True,
    pdf: bool = False,
    map_treatments: Iterable[str] | None = None,
    hospital_changes: pd.DataFrame | None = None,
    flows: pd.DataFrame | None = None,
) -> list[Path]:
    """Write the planner outputs of one run into ``run_dir``; returns the paths written.

    ``dataset`` is a ``geo.dataset.Dataset`` (duck-typed: ``sites``, ``areas``,
    ``area_geometries`` (may be ``None``), optional ``treatments`` / ``regions`` for names).
    ``map_treatments`` restricts the per-treatment maps (the overview is always drawn).
    ``pdf`` also prints the report to ``report.pdf`` (A4; scenarios/report/pdf.py); it
    implies ``report``.
    Errors propagate: a run whose outputs cannot be written is not a finished run.
    """

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    sv = normalise_site_volumes(site_volumes)
    asg = normalise_assignments(assignments)
    # An infeasible run has no "after": its site_volumes (if any) carry only the baseline.
    has_results = summary.get("status") != SolveStatus.INFEASIBLE and bool(len(sv) or len(asg))
    names = _treatment_names(dataset)
    map_treatments = _map_treatments(summary, map_treatments)
    if hospital_changes is None:
        hospital_changes = hospital_changes_from_site_volumes(site_volumes, names)
    region_id = str(summary.get("region_id", ""))
    with_layers = gpkg or geojson or maps
    areas_gdf, notes = _area_layer(dataset, has_results, with_layers)
    summary_rows = _summary_rows(asg, areas_gdf, with_layers)
    written: list[Path] = []
    with_maps = maps and areas_gdf is not None
    # the GeoPackage alone (no GeoJSON, whose paths the child could not hand back) is written
    # by the maps' child after the maps, while the report's charts are drawn here
    gpkg_with_maps = with_maps and gpkg and not geojson

    def write_gis() -> list[Path]:
        return _write_gis(run_dir, sv, asg, dataset.sites, areas_gdf, flows, gpkg=gpkg,
                          geojson=geojson, summary_rows=summary_rows)

    if gpkg_with_maps:
        written.append(run_dir / "results.gpkg")
    elif areas_gdf is not None:
        written.extend(write_gis())
    if xlsx:
        written.append(write_results_xlsx(run_dir / "results.xlsx", summary, site_volumes,
                                          assignments, hospital_changes, flows))
    pending: PendingMaps | None = None
    try:
        if with_maps:
            # the maps not in the cache are drawn in a child process while the report (and
            # its charts) is made here; the report embeds them last
            pending = start_maps(run_dir / "maps", summary, sv, asg, dataset.sites, areas_gdf,
                                 treatments=map_treatments, treatment_names=names,
                                 summary_rows=summary_rows, background=True,
                                 also=write_gis if gpkg_with_maps else None)
        written.extend(_maps_and_report(
            run_dir, pending, report or pdf, summary, sv, asg, names, notes,
            region_name=_region_name(dataset, region_id), hospital_changes=hospital_changes,
            flows=flows))
    finally:
        if pending is not None:
            pending.cancel()  # an error or interrupt before the maps were waited for
    if pdf:
        write_pdf(run_dir / "report.html", run_dir / "report.pdf")
        written.append(run_dir / "report.pdf")
    return written


def _maps_and_report(run_dir: Path, pending: PendingMaps | None, report: bool, summary: dict,
                     sv: pd.DataFrame, asg: pd.DataFrame, names: dict[str, str],
                     notes: list[str], **report_args: Any) -> list[Path]:
    """report.html (when ``report``) made while the maps are drawn; the maps' paths, then the
    report's."""
    report_path = write_report(run_dir / "report.html", summary, sv, asg,
                               pending.result if pending is not None else {},
                               treatment_names=names, notes=notes,
                               **report_args) if report else None
    maps = list(pending.result().values()) if pending is not None else []
    return maps + ([report_path] if report_path is not None else [])


def _map_treatments(summary: dict, requested: Iterable[str] | None) -> Iterable[str] | None:
    """The treatments to map: a partial plan maps only the treatments with a plan."""
    planned = _planned_treatments(summary)
    if planned is None:
        return requested
    return [t for t in (requested if requested is not None else planned) if t in planned]


def _area_layer(dataset: Any, has_results: bool, wanted: bool) -> tuple[Any, list[str]]:
    """The areas as a GeoDataFrame when a GIS file or map is wanted (None otherwise), and the
    report's notes on them (fallback circles; no layers of an infeasible run)."""
    if not has_results:
        return None, ["No reallocation was computed (the scenario is infeasible), so no "
                      "GeoPackage, GeoJSON or maps were written for this run."]
    if not wanted:
        return None, []
    areas_gdf = areas_geodataframe(dataset.areas, getattr(dataset, "area_geometries", None))
    n_fallback = int(areas_gdf.attrs.get("fallback_geometry", 0))
    notes = []
    if n_fallback:
        notes.append(
            f"{n_fallback} of {len(areas_gdf)} areas have no polygon in the dataset; the "
            f"maps and the GeoPackage 'areas' layer show them as circles of "
            f"{FALLBACK_BUFFER_M:g} m around their demand centroid.")
    return areas_gdf, notes


def _write_gis(run_dir: Path, sv: pd.DataFrame, asg: pd.DataFrame, sites: pd.DataFrame,
               areas_gdf: Any, flows: pd.DataFrame | None, *, gpkg: bool,
               geojson: bool, summary_rows: pd.DataFrame | None = None) -> list[Path]:
    """results.gpkg and the GeoJSON layers, as asked (the layers built once for both)."""
    written: list[Path] = []

    @functools.cache
    def layers() -> dict[str, Any]:
        return build_layers(sv, asg, sites, areas_gdf, flows, summary_rows=summary_rows)

    if gpkg:  # the same tables as a run before: the same bytes, from the derived-data cache
        written.append(write_results_gpkg_cached(run_dir / "results.gpkg", sv, asg, sites,
                                                 areas_gdf, flows, layers))
    if geojson:
        written.extend(write_layers_geojson(run_dir / "geojson", layers()))
    return written


def _planned_treatments(summary: dict) -> list[str] | None:
    """The treatments with a plan of a partial plan (``partially_infeasible``), else None."""
    if summary.get("status") != SolveStatus.PARTIALLY_INFEASIBLE:
        return None
    statuses = summary.get("treatment_status") or {}
    return [t for t, status in statuses.items()
            if status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)]
