"""GeoPackage / GeoJSON / xlsx export of run results, read back and compared with the tables.

The result is the hand-built one of the ``make_result`` fixture (tests/support/hand_result.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import herschik.geo.export as export
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from herschik.geo.dataset import load_dataset
from herschik.geo.export import (
    AREAS_LAYER_COLUMNS,
    ASSIGNMENT_COLUMNS,
    SITE_VOLUME_COLUMNS,
    SITES_LAYER_COLUMNS,
    _filled_text,
    _text_or_empty,
    areas_geodataframe,
    write_results_geojson,
    write_results_gpkg,
)
from herschik.optimiser.params import SolveParams
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.outputs import write_run_outputs
from herschik.scenarios.report.workbook import read_results_xlsx, write_results_xlsx
from herschik.scenarios.run import solve_verified
from shapely.geometry import MultiPolygon


@pytest.fixture(scope="module")
def result(make_result: Callable[..., Any]) -> tuple[dict, pd.DataFrame, pd.DataFrame, Any]:
    return make_result()


def _gdf(dataset: Any) -> gpd.GeoDataFrame:
    return areas_geodataframe(dataset.areas, dataset.area_geometries)


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


def test_gpkg_layers_equal_tables(tmp_path: Path, result) -> None:
    _, sv, asg, ds = result
    path = write_results_gpkg(tmp_path / "results.gpkg", sv, asg, ds.sites, _gdf(ds))
    layers = dict(pyogrio.list_layers(path))
    # hospital_flows is empty without flows.csv; layer_styles is the QGIS styles table
    assert layers == {"sites": "Point", "areas": "MultiPolygon", "flows": "LineString",
                      "hospital_flows": "LineString", "layer_styles": None}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp file left"

    sites = gpd.read_file(path, layer="sites", engine="pyogrio")
    assert sites.crs.to_epsg() == 28992
    assert len(sites) == len(sv)
    assert list(sites.columns[:-1]) == SITES_LAYER_COLUMNS
    pd.testing.assert_frame_equal(sites[SITE_VOLUME_COLUMNS], sv, check_dtype=False)
    assert (sites["gained"] == (sv["kept_after"] & ~sv["kept_before"])).all()
    assert (sites["lost"] == (sv["kept_before"] & ~sv["kept_after"])).all()
    assert sites["lost"].sum() == 3 and sites["gained"].sum() == 1
    np.testing.assert_allclose(sites["volume_change"], sv["volume_after"] - sv["volume_before"])
    xy = ds.sites.set_index("site_id").loc[sites["site_id"], ["x", "y"]].to_numpy()
    np.testing.assert_allclose(shapely.get_coordinates(sites.geometry.values), xy)

    flows = gpd.read_file(path, layer="flows", engine="pyogrio")
    assert flows.crs.to_epsg() == 28992
    assert len(flows) == len(asg)
    pd.testing.assert_frame_equal(flows[ASSIGNMENT_COLUMNS], asg, check_dtype=False)
    first = flows.iloc[0]
    start, end = shapely.get_coordinates(first.geometry)
    area = ds.areas.set_index("area_id").loc[first["area_id"]]
    site = ds.sites.set_index("site_id").loc[first["site_id"]]
    np.testing.assert_allclose(start, [area.x, area.y])
    np.testing.assert_allclose(end, [site.x, site.y])

    areas = gpd.read_file(path, layer="areas", engine="pyogrio")
    assert areas.crs.to_epsg() == 28992
    assert list(areas.columns[:-1]) == AREAS_LAYER_COLUMNS
    n_pairs = asg.groupby(["area_id", "intervention_id"]).ngroups
    assert len(areas) == n_pairs
    np.testing.assert_allclose(areas["patients"].sum(), asg["patients"].sum())
    split = areas[(areas["area_id"] == "WK33") & (areas["intervention_id"] == "oesophagus")]
    assert len(split) == 1 and split["n_sites"].iloc[0] == 2
    part = asg[(asg["area_id"] == "WK33") & (asg["intervention_id"] == "oesophagus")]
    main = part.sort_values("patients", ascending=False).iloc[0]
    assert split["site_id"].iloc[0] == main["site_id"]
    np.testing.assert_allclose(split["site_share"].iloc[0], 0.7, atol=1e-3)
    w = part["patients"]
    np.testing.assert_allclose(split["travel_min_after"].iloc[0],
                               (w * part["travel_min"]).sum() / w.sum())
    np.testing.assert_allclose(split["extra_min"].iloc[0],
                               split["travel_min_after"].iloc[0]
                               - split["travel_min_before"].iloc[0])
    # polygons are the dataset's, incl. the hole and the island
    geoms = areas.drop_duplicates("area_id").set_index("area_id").geometry
    orig = ds.area_geometries.set_index("area_id").geometry
    for aid in ("WK22", "WK55", "WK01"):
        assert geoms[aid].equals(orig[aid]) or geoms[aid].equals(MultiPolygon([orig[aid]]))


def test_gpkg_is_reproducible_and_atomic(tmp_path: Path, result) -> None:
    _, sv, asg, ds = result
    a = write_results_gpkg(tmp_path / "a.gpkg", sv, asg, ds.sites, _gdf(ds))
    b = write_results_gpkg(tmp_path / "b.gpkg", sv, asg, ds.sites, _gdf(ds))
    assert a.read_bytes() == b.read_bytes()
    # overwriting in place keeps a valid file and leaves no temp file behind
    write_results_gpkg(a, sv, asg, ds.sites, _gdf(ds))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gpkg", "b.gpkg"]


def test_bad_input_names_the_problem(tmp_path: Path, result) -> None:
    _, sv, asg, ds = result
    bad = asg.copy()
    bad.loc[0, "area_id"] = "NOPE"
    with pytest.raises(ValueError, match="NOPE"):
        write_results_gpkg(tmp_path / "x.gpkg", sv, bad, ds.sites, _gdf(ds))
    assert not list(tmp_path.iterdir())


def test_csv_round_trip_values(tmp_path: Path, result) -> None:
    """Tables read back from the contract CSVs (booleans as true/false) give the same layers."""
    _, sv, asg, ds = result
    sv.to_csv(tmp_path / "site_volumes.csv", index=False)
    asg.to_csv(tmp_path / "assignments.csv", index=False)
    sv_csv = pd.read_csv(tmp_path / "site_volumes.csv", dtype={"site_id": str})
    sv_csv["kept_before"] = sv_csv["kept_before"].map({True: "true", False: "false"})
    asg_csv = pd.read_csv(tmp_path / "assignments.csv")
    path = write_results_gpkg(tmp_path / "r.gpkg", sv_csv, asg_csv, ds.sites, _gdf(ds))
    sites = gpd.read_file(path, layer="sites")
    assert sites["kept_before"].dtype == bool
    assert sites["kept_before"].tolist() == sv["kept_before"].tolist()
    assert len(gpd.read_file(path, layer="flows")) == len(asg_csv)


def test_geojson_wgs84(tmp_path: Path, result) -> None:
    _, sv, asg, ds = result
    paths = write_results_geojson(tmp_path / "gj", sv, asg, ds.sites, _gdf(ds))
    assert [p.name for p in paths] == ["sites.geojson", "areas.geojson", "flows.geojson",
                                       "hospital_flows.geojson"]
    counts = {"sites": len(sv), "flows": len(asg), "hospital_flows": 0,
              "areas": asg.groupby(["area_id", "intervention_id"]).ngroups}
    for p in paths:
        gdf = gpd.read_file(p)
        assert gdf.crs.to_epsg() == 4326
        assert len(gdf) == counts[p.stem]
        if not len(gdf):
            continue
        lon, lat = shapely.get_coordinates(gdf.geometry.values).T
        assert (3.3 < lon).all() and (lon < 7.3).all() and (50.7 < lat).all() and (lat < 53.6).all()
        raw = json.loads(p.read_text())
        assert raw["type"] == "FeatureCollection" and len(raw["features"]) == counts[p.stem]
    sites = gpd.read_file(tmp_path / "gj" / "sites.geojson")
    pd.testing.assert_frame_equal(sites[SITE_VOLUME_COLUMNS], sv, check_dtype=False)


def test_xlsx_sheets(tmp_path: Path, result) -> None:
    summary, sv, asg, _ = result
    path = write_results_xlsx(tmp_path / "results.xlsx", summary, sv, asg)
    sheets = read_results_xlsx(path)  # the second header row: the CSV column names
    assert list(sheets) == ["summary", "kpis", "per_treatment", "assignments", "site_volumes"]
    assert len(sheets["site_volumes"]) == len(sv)
    assert len(sheets["assignments"]) == len(asg)
    pd.testing.assert_frame_equal(sheets["assignments"], asg, check_dtype=False)
    kpis = dict(zip(sheets["kpis"]["kpi"], sheets["kpis"]["value"], strict=True))
    assert kpis["patients"] == pytest.approx(summary["kpis"]["patients"])
    assert kpis["providers_after.oesophagus"] == 2
    top = dict(zip(sheets["summary"]["key"], sheets["summary"]["value"], strict=True))
    assert top["status"] == "optimal" and top["scenario.margin"] == 0.1


def test_xlsx_headers_follow_the_output_language(tmp_path: Path, result) -> None:
    """--lang nl: the readable header row is Dutch; the CSV names below it stay as they are."""
    from openpyxl import load_workbook

    from herschik.i18n import use_language

    summary, sv, asg, _ = result
    summary = dict(summary, baseline_source="Baseline: illustrative (calibrated to published "
                   "provider counts)")  # as summary.json keeps it, in English
    with use_language("nl"):
        path = write_results_xlsx(tmp_path / "results.xlsx", summary, sv, asg)
    book = load_workbook(path, read_only=True)
    # the sheets' titles are Dutch too; read_results_xlsx gives them by their names
    assert book.sheetnames == ["samenvatting", "kengetallen", "per_behandeling", "toewijzingen",
                               "volumes_per_ziekenhuis"]
    labels, names = list(book["volumes_per_ziekenhuis"].iter_rows(min_row=1, max_row=2,
                                                                   values_only=True))
    book.close()
    header = dict(zip(names, labels, strict=True))
    assert header["site_name"] == "Ziekenhuis"
    assert header["volume_before"] == "Patiënten/jaar nu"
    assert list(names) == list(sv.columns)
    sheets = read_results_xlsx(path)
    assert list(sheets) == ["summary", "kpis", "per_treatment", "assignments", "site_volumes"]
    assert len(sheets["site_volumes"]) == len(sv)
    top = dict(zip(sheets["summary"]["key"], sheets["summary"]["value"], strict=True))
    assert top["baseline_source"].startswith("Uitgangssituatie: ")
    kpi_labels = next(load_workbook(path, read_only=True)["kengetallen"].iter_rows(
        max_row=1, values_only=True))
    assert kpi_labels == ("Kengetal", "Waarde")


def test_fallback_geometry_without_polygons(make_result) -> None:
    _, _, _, ds = make_result()
    gdf = areas_geodataframe(ds.areas, None)
    assert gdf.attrs["fallback_geometry"] == len(ds.areas)
    assert (gdf.geom_type == "Polygon").all()
    assert gdf.geometry.iloc[0].contains(shapely.Point(ds.areas.x.iloc[0], ds.areas.y.iloc[0]))


def test_write_run_outputs_all_files(tmp_path: Path, result) -> None:
    summary, sv, asg, ds = result
    written = write_run_outputs(tmp_path, summary, sv, asg, ds, gpkg=True, geojson=True,
                                xlsx=True, maps=True, report=True)
    names = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert names == sorted([
        "results.gpkg", "geojson/sites.geojson", "geojson/areas.geojson",
        "geojson/flows.geojson", "geojson/hospital_flows.geojson", "results.xlsx",
        "maps/overview.png", "maps/oesophagus.png",
        "maps/pancreas.png", "maps/rectum.png", "report.html"])
    assert all(p.stat().st_size > 0 for p in written)
    assert not [p for p in tmp_path.rglob(".*")], "temp files left behind"
    assert len(gpd.read_file(tmp_path / "results.gpkg", layer="flows")) == len(asg)


def test_write_run_outputs_infeasible(tmp_path: Path, result) -> None:
    summary, sv, asg, ds = result
    summary = dict(summary, status="infeasible", objective=None, mip_gap=None,
                   diagnosis={"reason": "no site reaches the norm within 30 minutes",
                              "smallest_feasible_max_travel": 45})
    written = write_run_outputs(tmp_path, summary, sv.iloc[0:0], asg.iloc[0:0], ds)
    assert [p.name for p in written] == ["report.html"]
    html = (tmp_path / "report.html").read_text()
    assert "no site reaches the norm within 30 minutes" in html
    # as scenarios.run writes it: baseline rows, empty "after" columns, no assignments
    baseline = sv.assign(volume_after=np.nan, kept_after=None)
    out = tmp_path / "with_baseline"
    written = write_run_outputs(out, summary, baseline, asg.iloc[0:0], ds, xlsx=True)
    assert sorted(p.name for p in written) == ["report.html", "results.xlsx"]
    html = (out / "report.html").read_text()
    assert 'class="providers-today"' in html and 'class="gain-lose"' not in html
    assert not os.path.exists(out / "results.gpkg") and not os.path.exists(out / "maps")


def test_end_to_end_example_solve(tmp_path: Path) -> None:
    """`herschik solve --region example` writes a GeoPackage whose layers equal the CSVs."""
    from herschik.scenarios.cli.main import main

    out = tmp_path / "run"
    assert main(["solve", "--region", "example", "--out", str(out), "--geojson", "--xlsx"]) == 0
    ids = {c: str for c in ("region_id", "site_id", "area_id", "intervention_id")}
    sv = pd.read_csv(out / "site_volumes.csv", dtype=ids)
    asg = pd.read_csv(out / "assignments.csv", dtype=ids)
    layers = dict(pyogrio.list_layers(out / "results.gpkg"))
    assert set(layers) == {"sites", "areas", "flows", "hospital_flows", "layer_styles"}
    sites = gpd.read_file(out / "results.gpkg", layer="sites")
    flows = gpd.read_file(out / "results.gpkg", layer="flows")
    areas = gpd.read_file(out / "results.gpkg", layer="areas")
    assert {g.crs.to_epsg() for g in (sites, flows, areas)} == {28992}
    assert len(sites) == len(sv) and len(flows) == len(asg)
    assert len(areas) == asg.groupby(["area_id", "intervention_id"]).ngroups
    pd.testing.assert_frame_equal(sites[SITE_VOLUME_COLUMNS], sv[SITE_VOLUME_COLUMNS],
                                  check_dtype=False)
    pd.testing.assert_frame_equal(flows[ASSIGNMENT_COLUMNS], asg[ASSIGNMENT_COLUMNS],
                                  check_dtype=False)
    np.testing.assert_allclose(areas["patients"].sum(), asg["patients"].sum())
    for name, n in (("sites", len(sv)), ("flows", len(asg))):
        assert len(gpd.read_file(out / "geojson" / f"{name}.geojson")) == n
    assert len(pd.read_excel(out / "results.xlsx", sheet_name="assignments", header=1)
               ) == len(asg)
    with_patients = set(asg["intervention_id"]) & set(sv["intervention_id"])
    assert {p.stem for p in (out / "maps").glob("*.png")} == with_patients | {"overview"}
    html_text = (out / "report.html").read_text(encoding="utf-8")
    assert "<h1>herschik report — example</h1>" in html_text
    summary = json.loads((out / "summary.json").read_text())
    # the report maps only the treatments that change (+ overview map + histogram)
    changed = {t for t, v in summary["kpis"]["per_treatment"].items()
               if v["providers_lost"] or v["providers_gained"] or v["patients_moved"]}
    # the odds figure and a fan chart per treatment with a kept hospital that has a norm
    kept_normed = sv[sv["kept_after"].astype(bool) & sv["norm"].notna()]
    fan_charts = kept_normed["intervention_id"].nunique()
    assert html_text.count('src="data:image/png;base64,') == len(changed & with_patients) + 2 \
        + 1 + fan_charts
    assert summary["status"] in ("optimal", "feasible")


# --- the fast paths write what the plain ones wrote (issue 23 goal 4) -------------------------

TEXT_COLUMNS = [
    pd.Series(["a", "b"], dtype=object), pd.Series(["a", "b"]), pd.Series(["a", None]),
    pd.Series(["a", np.nan], dtype=object), pd.Series([1, 2]), pd.Series([], dtype=object),
    pd.Series([], dtype=float), pd.Series([np.nan, np.nan]), pd.Series(["x", pd.NA], dtype=object),
    pd.Series(["a", "b"], dtype="string"), pd.Series(["a", None], dtype="string"),
    pd.Series(["ü", "b"], dtype=object, index=[5, 3]), pd.Series([None, None], dtype=object),
    pd.Series(["a", 1.5, None], dtype=object), pd.Series([True, False]),
]


@pytest.mark.parametrize("column", TEXT_COLUMNS, ids=lambda c: f"{c.dtype}-{list(c)}")
def test_filled_text_is_the_per_value_map(column: pd.Series) -> None:
    pd.testing.assert_series_equal(_filled_text(column), column.map(_text_or_empty))


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """A real solve of the example region (tables as the optimiser builds them)."""
    dataset = load_dataset("example")
    run = solve_verified(build_instance(dataset, "example"), SolveParams(), reasons=False)
    return run, dataset


def test_gpkg_bytes_equal_the_plain_writers(tmp_path: Path, example_run,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """results.gpkg with SQLite's syncs off and text columns filled without a call per value
    is, byte for byte, the file of GDAL's defaults and the per-value map: a change of the
    fast paths that changed a byte fails here."""
    run, dataset = example_run
    areas = _gdf(dataset)
    fast = write_results_gpkg(tmp_path / "fast.gpkg", run.site_volumes, run.assignments,
                              dataset.sites, areas, run.flows)
    monkeypatch.setattr(export, "_filled_text", lambda column:
                        column.map(export._text_or_empty))
    monkeypatch.setattr(export, "_GPKG_WRITE_OPTIONS",
                        {"OGR_CURRENT_DATE": export._GPKG_WRITE_OPTIONS["OGR_CURRENT_DATE"]})
    plain = write_results_gpkg(tmp_path / "plain.gpkg", run.site_volumes, run.assignments,
                               dataset.sites, areas, run.flows)
    assert len(run.assignments) > 100 and fast.stat().st_size > 100_000
    assert fast.read_bytes() == plain.read_bytes()
    assert pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS") is None  # restored


def test_one_area_summary_and_one_set_of_layers_per_run(
        tmp_path: Path, example_run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GeoPackage, the GeoJSON layers and the maps of a run share one area summary and
    one set of layers (each was worked out again per writer), with the same bytes as the
    writers called on their own."""
    from herschik.geo import maps as maps_module
    from herschik.scenarios import outputs as outputs_module

    run, dataset = example_run
    calls = {"area_summary": 0, "build_layers": 0}

    def counted(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return function(*args, **kwargs)
        return call

    originals = {name: getattr(export, name) for name in calls}
    for module in (export, maps_module, outputs_module):
        for name in calls:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counted(name, originals[name]))
    summary = {"region_id": "example", "status": "optimal", "scenario": {}}
    write_run_outputs(tmp_path / "run", summary, run.site_volumes, run.assignments, dataset,
                      gpkg=True, geojson=True, maps=True, report=False, flows=run.flows)
    assert calls == {"area_summary": 1, "build_layers": 1}
    monkeypatch.undo()
    alone = write_results_gpkg(tmp_path / "alone.gpkg", run.site_volumes, run.assignments,
                               dataset.sites, _gdf(dataset), run.flows)
    assert (tmp_path / "run" / "results.gpkg").read_bytes() == alone.read_bytes()
    for path in write_results_geojson(tmp_path / "gj", run.site_volumes, run.assignments,
                                      dataset.sites, _gdf(dataset), run.flows):
        assert (tmp_path / "run" / "geojson" / path.name).read_bytes() == path.read_bytes()
