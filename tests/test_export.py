"""GeoPackage / GeoJSON / xlsx export of run results, read back and compared with the tables.

``make_result()`` builds a small but realistic result by hand (no solver): 36 areas on a grid
of square polygons near Utrecht in RD New (one of them a MultiPolygon, one with a hole), six
sites, three treatments with a norm; after reallocation some sites lose a treatment, one gains
one, one area is split over two sites. The contract tables are derived from nearest-site
assignments so that volumes and travel times are consistent. ``tests/test_report.py`` reuses it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from herschik.geo.export import (
    AREAS_LAYER_COLUMNS,
    ASSIGNMENT_COLUMNS,
    SITE_VOLUME_COLUMNS,
    SITES_LAYER_COLUMNS,
    areas_geodataframe,
    write_results_geojson,
    write_results_gpkg,
)
from herschik.scenarios.outputs import write_results_xlsx, write_run_outputs
from shapely.geometry import MultiPolygon, Polygon, box

X0, Y0, CELL = 125_000.0, 445_000.0, 4_000.0
SITES = [
    # site_id, name, organisation, type, x, y
    ("S1", "UMC Utrecht", "UMC Utrecht", "umc", 137_500.0, 455_500.0),
    ("S2", "Diakonessenhuis", "Diakonessenhuis", "general", 131_000.0, 449_000.0),
    ("S3", "St. Antonius Nieuwegein", "St. Antonius", "general", 133_000.0, 463_000.0),
    ("S4", "Meander Amersfoort", "Meander MC", "general", 145_000.0, 464_000.0),
    ("S5", "Gelre & Vallei", "Gelderse Vallei", "general", 146_000.0, 448_000.0),
    ("S6", "Tergooi Hilversum", "Tergooi MC", "general", 128_000.0, 466_000.0),
]
# treatment -> (norm, {site: provides before}, {site: provides after})
TREATMENTS = {
    "oesophagus": (8.0, {"S1", "S2", "S3", "S4"}, {"S1", "S4"}),
    "pancreas": (3.0, {"S1", "S3", "S5"}, {"S1", "S5"}),
    "rectum": (20.0, {"S2", "S4"}, {"S2", "S4", "S6"}),
}
RATE = {"oesophagus": 0.9, "pancreas": 0.6, "rectum": 3.5}  # patients per area


@dataclass
class FakeDataset:
    """Duck-typed stand-in for geo.dataset.Dataset (only what the outputs use)."""

    sites: pd.DataFrame
    areas: pd.DataFrame
    area_geometries: gpd.GeoDataFrame | None
    treatments: pd.DataFrame
    regions: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


def _minutes(ax: float, ay: float, sx: float, sy: float) -> float:
    return round(4.0 + 1.3 * math.hypot(ax - sx, ay - sy) / 1000.0, 3)


def make_result(region_id: str = "midden") -> tuple[dict, pd.DataFrame, pd.DataFrame, FakeDataset]:
    """(summary, site_volumes, assignments, dataset) of a small consistent solved run."""
    sites = pd.DataFrame(SITES, columns=["site_id", "site_name", "organisation", "site_type",
                                         "x", "y"])
    sites["topclinical"] = sites["site_type"] == "umc"
    sites["hn_role"] = ""
    sites["region_id"] = region_id
    sites["municipality_code"] = "GM0344"
    rows, polys = [], []
    for i in range(6):
        for j in range(6):
            aid = f"WK{i}{j}"
            poly: Any = box(X0 + i * CELL, Y0 + j * CELL, X0 + (i + 1) * CELL, Y0 + (j + 1) * CELL)
            if (i, j) == (2, 2):  # a polygon with a hole
                poly = Polygon(poly.exterior.coords, [box(X0 + 2.4 * CELL, Y0 + 2.4 * CELL,
                                                          X0 + 2.6 * CELL,
                                                          Y0 + 2.6 * CELL).exterior.coords])
            if (i, j) == (5, 5):  # a MultiPolygon (island)
                poly = MultiPolygon([poly, box(X0 + 6.2 * CELL, Y0 + 5.2 * CELL,
                                               X0 + 6.6 * CELL, Y0 + 5.6 * CELL)])
            cx, cy = X0 + (i + 0.5) * CELL, Y0 + (j + 0.5) * CELL
            rows.append((aid, f"Wijk {i}-{j}", "GM0344", region_id, 5000 + 100 * i, 900, cx, cy))
            polys.append(poly)
    areas = pd.DataFrame(rows, columns=["area_id", "area_name", "municipality_code", "region_id",
                                        "population", "pop_65plus", "x", "y"])
    area_geoms = gpd.GeoDataFrame({"area_id": areas["area_id"]}, geometry=polys, crs=28992)
    xy = sites.set_index("site_id")[["x", "y"]]

    asg_rows, sv_rows = [], []
    site_name = dict(zip(sites["site_id"], sites["site_name"], strict=True))
    for t, (norm, before, after) in TREATMENTS.items():
        vol_before: dict[str, float] = {s: 0.0 for s in sites["site_id"]}
        vol_after: dict[str, float] = {s: 0.0 for s in sites["site_id"]}
        for _, a in areas.iterrows():
            spread = (int(a.area_id[2]) + int(a.area_id[3])) % 4
            patients = round(RATE[t] * (1 + 0.05 * spread), 3)
            tb = {s: _minutes(a.x, a.y, *xy.loc[s]) for s in before}
            ta = {s: _minutes(a.x, a.y, *xy.loc[s]) for s in after}
            sb = min(tb, key=lambda s: (tb[s], s))
            sa = min(ta, key=lambda s: (ta[s], s))
            vol_before[sb] += patients
            split = [(sa, patients)]
            if t == "oesophagus" and a.area_id == "WK33":  # one split area
                other = sorted(after - {sa})[0]
                split = [(sa, round(patients * 0.7, 3)), (other, round(patients * 0.3, 3))]
            for s, p in split:
                vol_after[s] += p
                asg_rows.append((region_id, a.area_id, a.area_name, t, s, site_name[s], p,
                                 ta[s], tb[sb], round(ta[s] - tb[sb], 3)))
        for s, name in zip(sites["site_id"], sites["site_name"], strict=True):
            sv_rows.append((region_id, s, name, t, norm, norm * 1.1, round(vol_before[s], 3),
                            round(vol_after[s], 3), s in before, s in after))
    site_volumes = pd.DataFrame(sv_rows, columns=SITE_VOLUME_COLUMNS)
    assignments = pd.DataFrame(asg_rows, columns=ASSIGNMENT_COLUMNS)
    w = assignments["patients"]
    extra = assignments["extra_min"]
    summary = {
        "contract": 1, "region_id": region_id,
        "scenario": {"margin": 0.1, "margin_by_treatment": {}, "max_travel": 60.0,
                     "max_extra_travel": None, "objective": "travel", "solver": "highs",
                     "force_close": [], "bundles": [["oesophagus", "pancreas"]]},
        "status": "optimal", "objective": 1234.5, "mip_gap": 0.0, "build_seconds": 0.12,
        "solve_seconds": 0.34, "solver": "highs",
        "kpis": {
            "patients": float(w.sum()),
            "patients_moved": float(w[extra > 0].sum()),
            "mean_travel_min_before": float((w * assignments["travel_min_before"]).sum() / w.sum()),
            "mean_travel_min_after": float((w * assignments["travel_min"]).sum() / w.sum()),
            "mean_extra_min": float((w * extra).sum() / w.sum()),
            "p90_extra_min": float(np.quantile(extra, 0.9)),
            "max_extra_min": float(extra.max()),
            "max_travel_min_after": float(assignments["travel_min"].max()),
            "providers_before": {t: len(v[1]) for t, v in TREATMENTS.items()},
            "providers_after": {t: len(v[2]) for t, v in TREATMENTS.items()},
            "shared_care": {"mean_travel_min_per_patient_year": 80.5,
                            "shared_care_travel_min_per_patient_year": 52.25},
        },
        "diagnosis": None, "baseline": "illustrative", "network": "default",
        "decomposition": "split by treatment: 2 independent sub-problems (bundle)",
        "subproblems": [{"treatments": ["oesophagus", "pancreas"], "status": "optimal",
                         "gap": 0.0, "variables": 420, "seconds": 0.2},
                        {"treatments": ["rectum"], "status": "optimal", "gap": 0.0,
                         "variables": 210, "seconds": 0.1}],
        "warnings": ["travel times from straight-line distance in this test"],
    }
    dataset = FakeDataset(
        sites=sites, areas=areas, area_geometries=area_geoms,
        treatments=pd.DataFrame({"intervention_id": list(TREATMENTS),
                                 "name": ["Oesophagus resection", "Pancreas resection",
                                          "Rectum cancer surgery"],
                                 "kind": "volume", "norm": [v[0] for v in TREATMENTS.values()]}),
        regions=pd.DataFrame({"region_id": [region_id], "region_name": ["Midden-Nederland"]}),
        meta={"name": "test", "baseline": "illustrative"},
    )
    return summary, site_volumes, assignments, dataset


@pytest.fixture(scope="module")
def result() -> tuple[dict, pd.DataFrame, pd.DataFrame, FakeDataset]:
    return make_result()


def _gdf(dataset: FakeDataset) -> gpd.GeoDataFrame:
    return areas_geodataframe(dataset.areas, dataset.area_geometries)


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


def test_gpkg_layers_equal_tables(tmp_path: Path, result) -> None:
    _, sv, asg, ds = result
    path = write_results_gpkg(tmp_path / "results.gpkg", sv, asg, ds.sites, _gdf(ds))
    layers = dict(pyogrio.list_layers(path))
    assert layers == {"sites": "Point", "areas": "MultiPolygon", "flows": "LineString"}
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
    assert [p.name for p in paths] == ["sites.geojson", "areas.geojson", "flows.geojson"]
    counts = {"sites": len(sv), "flows": len(asg),
              "areas": asg.groupby(["area_id", "intervention_id"]).ngroups}
    for p in paths:
        gdf = gpd.read_file(p)
        assert gdf.crs.to_epsg() == 4326
        assert len(gdf) == counts[p.stem]
        lon, lat = shapely.get_coordinates(gdf.geometry.values).T
        assert (3.3 < lon).all() and (lon < 7.3).all() and (50.7 < lat).all() and (lat < 53.6).all()
        raw = json.loads(p.read_text())
        assert raw["type"] == "FeatureCollection" and len(raw["features"]) == counts[p.stem]
    sites = gpd.read_file(tmp_path / "gj" / "sites.geojson")
    pd.testing.assert_frame_equal(sites[SITE_VOLUME_COLUMNS], sv, check_dtype=False)


def test_xlsx_sheets(tmp_path: Path, result) -> None:
    summary, sv, asg, _ = result
    path = write_results_xlsx(tmp_path / "results.xlsx", summary, sv, asg)
    sheets = pd.read_excel(path, sheet_name=None)
    assert list(sheets)[:4] == ["summary", "kpis", "site_volumes", "assignments"]
    assert len(sheets["site_volumes"]) == len(sv)
    assert len(sheets["assignments"]) == len(asg)
    pd.testing.assert_frame_equal(sheets["assignments"], asg, check_dtype=False)
    kpis = dict(zip(sheets["kpis"]["kpi"], sheets["kpis"]["value"], strict=True))
    assert kpis["patients"] == pytest.approx(summary["kpis"]["patients"])
    assert kpis["providers_after.oesophagus"] == 2
    top = dict(zip(sheets["summary"]["key"], sheets["summary"]["value"], strict=True))
    assert top["status"] == "optimal" and top["scenario.margin"] == 0.1


def test_fallback_geometry_without_polygons() -> None:
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
        "geojson/flows.geojson", "results.xlsx", "maps/overview.png", "maps/oesophagus.png",
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
    from herschik.scenarios.cli import main

    out = tmp_path / "run"
    assert main(["solve", "--region", "example", "--out", str(out), "--geojson", "--xlsx"]) == 0
    ids = {c: str for c in ("region_id", "site_id", "area_id", "intervention_id")}
    sv = pd.read_csv(out / "site_volumes.csv", dtype=ids)
    asg = pd.read_csv(out / "assignments.csv", dtype=ids)
    layers = dict(pyogrio.list_layers(out / "results.gpkg"))
    assert set(layers) == {"sites", "areas", "flows"}
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
    assert len(pd.read_excel(out / "results.xlsx", sheet_name="assignments")) == len(asg)
    with_patients = set(asg["intervention_id"]) & set(sv["intervention_id"])
    assert {p.stem for p in (out / "maps").glob("*.png")} == with_patients | {"overview"}
    html_text = (out / "report.html").read_text(encoding="utf-8")
    assert "<h1>herschik report — example</h1>" in html_text
    assert html_text.count('src="data:image/png;base64,') == len(with_patients) + 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] in ("optimal", "feasible")
