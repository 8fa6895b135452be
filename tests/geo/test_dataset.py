"""Tests of the dataset format, its loader/exporter and the embedded national default."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from herschik.geo.dataset import load_dataset
from herschik.geo.dataset_export import export_dataset
from herschik.geo.schema import DEFAULT_DIR, EXAMPLE_DIR

from herschik.errors import DataError
from tests.support.paths import REPO_ROOT

REGIONS = ["noordoost", "noord_holland_flevoland", "oost", "midden", "west", "zuidwest",
           "zuidoost"]
RAW = REPO_ROOT.parent / "shared" / "data" / "raw"
FACTS = REPO_ROOT.parent / "shared" / "data" / "tranche1"

# baseline_counts.csv rows with intervention_id_guess (tranche-1 report, annex II):
# region, treatment, providers, below norm
COUNTS = """
noord_holland_flevoland lung_resection 8 7
noord_holland_flevoland og_resection 2 1
noord_holland_flevoland pancreas_resection 2 1
noord_holland_flevoland pancreas_ercp 10 5
noord_holland_flevoland pancreas_systemic 13 3
noord_holland_flevoland kidney_local 7 5
noord_holland_flevoland kidney_systemic 13 7
noord_holland_flevoland aaa_surgery 8 3
noord_holland_flevoland aaa_complex_evar 4 3
noordoost lung_resection 8 3
noordoost og_resection 4 2
noordoost og_systemic 16 4
noordoost pancreas_resection 4 1
noordoost pancreas_ercp 14 5
noordoost pancreas_systemic 16 4
noordoost kidney_local 9 6
noordoost kidney_systemic 16 10
noordoost aaa_surgery 11 1
midden lung_resection 4 2
midden og_resection 2 1
midden pancreas_ercp 5 1
midden kidney_local 3 1
midden kidney_systemic 6 3
midden aaa_surgery 5 2
oost lung_resection 5 1
oost og_resection 2 2
oost og_endoscopic 2 2
oost kidney_local 5 3
oost kidney_systemic 8 4
oost aaa_surgery 7 1
zuidoost lung_resection 5 3
zuidoost og_resection 2 1
zuidoost og_systemic 9 3
zuidoost pancreas_ercp 8 3
zuidoost pancreas_systemic 9 4
zuidoost kidney_local 7 5
zuidoost kidney_systemic 9 5
zuidoost aaa_surgery 7 2
west og_resection 2 2
west og_endoscopic 1 1
west og_systemic 6 1
west pancreas_ercp 6 1
west kidney_local 5 4
west kidney_systemic 6 2
zuidwest lung_resection 8 3
zuidwest og_resection 3 1
zuidwest og_systemic 14 1
zuidwest pancreas_resection 4 3
zuidwest pancreas_ercp 11 1
zuidwest pancreas_systemic 14 1
zuidwest kidney_local 11 8
zuidwest kidney_systemic 14 6
zuidwest aaa_surgery 11 3
zuidwest aaa_complex_evar 4 2
"""


def _counts() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(COUNTS.strip()), sep=" ", header=None,
                       names=["region_id", "intervention_id", "providers", "below_norm"])


@pytest.fixture(scope="module")
def default():
    return load_dataset()


# ------------------------------------------------------------------ the national default
def test_default_loads_fast_and_is_illustrative(default) -> None:
    assert default.baseline_kind == "illustrative"
    assert "illustrative" in default.meta["description"].lower()
    assert default.region_ids() == REGIONS
    assert default.travel_times is None
    assert default.area_geometries is not None
    assert str(default.area_geometries.crs) == "EPSG:28992"
    assert len(default.areas) == 3340
    again = load_dataset()  # served from the in-process cache, as an independent copy
    assert again is not default and again.areas.equals(default.areas)


def test_treatments(default) -> None:
    from herschik.scenarios.assemble import process_norms, treatment_objects

    treatments = treatment_objects(default)
    assert len(treatments) == 19
    assert sum(t.norm is not None for t in treatments) == 18
    hn = treatments[0]
    assert hn.id == "hn_new" and dict(hn.tier_norms) == {"HHOC": 200, "PP": 80, "PPR": 50}
    assert hn.norm_for("HHOC") == 200 and hn.norm_for("PP") == 80
    assert [p.id for p in process_norms(default)] == ["carotid_1week", "carotid_2weeks"]
    # the data's tier rule (site_norms) and the model's (Treatment.norm_for) agree
    norms = default.site_norms().set_index(["site_id", "intervention_id"])["norm"]
    roles = dict(zip(default.sites["site_id"], default.sites["hn_role"]))
    for treatment in treatments:
        for site_id, role in roles.items():
            expected = treatment.norm_for(role)
            got = norms[(site_id, treatment.id)]
            assert (pd.isna(got) and expected is None) or got == expected


def test_every_area_and_site_in_exactly_one_region(default) -> None:
    for table, key in ((default.areas, "area_id"), (default.sites, "site_id")):
        assert table[key].is_unique
        assert table["region_id"].isin(REGIONS).all()
        assert table["region_id"].notna().all()
    assert set(default.sites["region_id"]) == set(REGIONS)
    assert set(default.areas["region_id"]) == set(REGIONS)
    # the sites of each region lie in municipalities mapped to that region
    mapping = pd.read_csv(DEFAULT_DIR.parent / "municipality_regions.csv", dtype=str)
    region_of = mapping.set_index("municipality_code")["region_id"]
    assert (default.sites["municipality_code"].map(region_of) == default.sites["region_id"]).all()
    assert (default.areas["municipality_code"].map(region_of) == default.areas["region_id"]).all()
    assert mapping["municipality_code"].is_unique and len(mapping) == 345


def test_sites_inside_the_netherlands(default) -> None:
    import geopandas as gpd

    sites = default.sites
    assert sites["x"].between(0, 300_000).all() and sites["y"].between(289_000, 630_000).all()
    points = gpd.GeoDataFrame(sites[["site_id"]], crs="EPSG:28992",
                              geometry=gpd.points_from_xy(sites["x"], sites["y"]))
    near = gpd.sjoin_nearest(points, default.area_geometries, distance_col="d")
    assert (near.groupby("site_id")["d"].min() < 500).all()  # inside (simplified) polygons
    # the umc / cancer centre roles
    assert (sites["site_type"] == "umc").sum() == 8
    assert set(sites.loc[sites["hn_role"] == "HHOC", "site_type"]) == {"umc", "cancer_centre"}
    assert not sites["site_name"].str.contains("Slotervaart|Zuiderzee").any()


def test_population_total(default) -> None:
    assert int(default.areas["population"].sum()) == 17_590_672
    assert (default.areas["pop_65plus"] <= default.areas["population"]).all()


def test_summary_reproduces_tranche1_counts(default) -> None:
    summary = default.summary().set_index(["region_id", "intervention_id"])
    for row in _counts().itertuples(index=False):
        got = summary.loc[(row.region_id, row.intervention_id)]
        assert (got["providers"], got["below_norm"]) == (row.providers, row.below_norm), row


def test_unlisted_treatments_meet_the_norm(default) -> None:
    summary = default.summary()
    listed = set(zip(_counts()["region_id"], _counts()["intervention_id"], strict=True))
    unlisted = summary[[(r, t) not in listed for r, t in
                        zip(summary["region_id"], summary["intervention_id"], strict=True)]]
    assert (unlisted["below_norm"] == 0).all()
    assert (unlisted["providers"] >= 1).all()


def test_baseline_balances_demand_per_region(default) -> None:
    dem = default.demand.merge(default.areas[["area_id", "region_id"]]).groupby(
        ["region_id", "intervention_id"])["patients"].sum()
    vol = default.baseline_volumes.merge(default.sites[["site_id", "region_id"]]).groupby(
        ["region_id", "intervention_id"])["volume"].sum()
    both = pd.concat([dem, vol], axis=1).fillna(0)
    assert len(both) == 7 * 19
    np.testing.assert_allclose(both["volume"], both["patients"], rtol=1e-6)
    # national totals are kept
    totals = pd.read_csv(DEFAULT_DIR / "national_totals.csv").set_index("intervention_id")
    national = default.demand.groupby("intervention_id")["patients"].sum()
    np.testing.assert_allclose(national[totals.index], totals["patients_per_year"], rtol=1e-4)


def test_export_round_trip(default, tmp_path: Path) -> None:
    out = export_dataset(default, tmp_path / "export")
    again = load_dataset(out)
    for name in ("regions", "sites", "areas", "treatments", "demand", "baseline_volumes"):
        pd.testing.assert_frame_equal(getattr(default, name), getattr(again, name), obj=name)
    assert again.meta == default.meta
    assert again.travel_times is None
    assert again.area_geometries["area_id"].tolist() == default.area_geometries["area_id"].tolist()
    assert again.area_geometries.geometry.geom_equals_exact(
        default.area_geometries.geometry, tolerance=1e-6).all()
    # exporting over an existing folder replaces it completely
    export_dataset(again, out)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        ["dataset.json", "regions.csv", "sites.csv", "areas.csv", "areas.gpkg",
         "treatments.csv", "demand.csv", "baseline_volumes.csv"])


def test_example_loads() -> None:
    example = load_dataset("example")
    assert example.travel_times is not None
    assert len(example.assigned_treatments()) == 19


# ------------------------------------------------------------------ validation
@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(EXAMPLE_DIR, target)
    return target


def _edit(path: Path, func) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = func(frame)
    frame.to_csv(path, index=False)


def _raises(folder: Path) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    return info.value


def test_error_message_format() -> None:
    error = DataError("sites.csv", 12, "x", "not a number ('abc')")
    assert str(error) == "sites.csv row 12, field x: not a number ('abc')"
    assert str(DataError("areas.gpkg", None, None, "no CRS")) == "areas.gpkg: no CRS"


def test_missing_column(folder: Path) -> None:
    _edit(folder / "sites.csv", lambda f: f.drop(columns=["hn_role"]))
    error = _raises(folder)
    assert (error.file, error.row, error.field) == ("sites.csv", None, "hn_role")


def test_extra_column(folder: Path) -> None:
    _edit(folder / "areas.csv", lambda f: f.assign(extra="1"))
    error = _raises(folder)
    assert (error.file, error.field) == ("areas.csv", "extra")


def test_nan_value(folder: Path) -> None:
    def bad(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[4, "patients"] = "NaN"
        return f

    _edit(folder / "demand.csv", bad)
    error = _raises(folder)
    assert (error.file, error.row, error.field) == ("demand.csv", 5, "patients")


def test_not_a_number(folder: Path) -> None:
    def bad(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[1, "x"] = "abc"
        return f

    _edit(folder / "sites.csv", bad)
    error = _raises(folder)
    assert str(error) == "sites.csv row 2, field x: not a number ('abc')"


def test_negative_number(folder: Path) -> None:
    def bad(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[2, "volume"] = "-3"
        return f

    _edit(folder / "baseline_volumes.csv", bad)
    error = _raises(folder)
    assert (error.file, error.row, error.field) == ("baseline_volumes.csv", 3, "volume")


def test_duplicate_id(folder: Path) -> None:
    def bad(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[3, "area_id"] = f.loc[0, "area_id"]
        return f

    _edit(folder / "areas.csv", bad)
    error = _raises(folder)
    assert (error.file, error.row, error.field) == ("areas.csv", 4, "area_id")
    assert "duplicate" in error.message


def test_unknown_site_reference(folder: Path) -> None:
    def bad(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[6, "site_id"] = "NOPE"
        return f

    _edit(folder / "baseline_volumes.csv", bad)
    error = _raises(folder)
    assert (error.file, error.row, error.field) == ("baseline_volumes.csv", 7, "site_id")
    assert "NOPE" in error.message


def test_coordinates_outside_nl(folder: Path) -> None:
    def bad(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[0, "y"] = "52.1"  # degrees instead of metres
        return f

    _edit(folder / "sites.csv", bad)
    error = _raises(folder)
    assert (error.file, error.row, error.field) == ("sites.csv", 1, "y")
    assert "outside the Netherlands" in error.message


def test_region_without_sites(folder: Path) -> None:
    _edit(folder / "regions.csv",
          lambda f: pd.concat([f, pd.DataFrame([{"region_id": "empty", "region_name": "E"}])]))
    error = _raises(folder)
    assert (error.file, error.row, error.field) == ("regions.csv", 2, "region_id")


def test_unbalanced_baseline(folder: Path) -> None:
    def bad(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[0, "volume"] = str(float(f.loc[0, "volume"]) + 10)
        return f

    _edit(folder / "baseline_volumes.csv", bad)
    error = _raises(folder)
    assert (error.file, error.field) == ("baseline_volumes.csv", "volume")


@pytest.mark.filterwarnings("ignore:.crs. was not provided")
def test_gpkg_without_crs_is_refused(folder: Path) -> None:
    import geopandas as gpd

    frame = gpd.read_file(folder / "areas.gpkg", layer="areas")
    (folder / "areas.gpkg").unlink()
    frame.set_crs(None, allow_override=True).to_file(folder / "areas.gpkg", layer="areas")
    error = _raises(folder)
    assert (error.file, error.row, error.field) == ("areas.gpkg", None, "geometry")
    assert "CRS" in error.message


def test_gpkg_in_another_crs_is_reprojected(folder: Path) -> None:
    import geopandas as gpd

    frame = gpd.read_file(folder / "areas.gpkg", layer="areas")
    (folder / "areas.gpkg").unlink()
    frame.to_crs("EPSG:4326").to_file(folder / "areas.gpkg", layer="areas")
    loaded = load_dataset(folder)
    assert str(loaded.area_geometries.crs) == "EPSG:28992"
    assert loaded.area_geometries.total_bounds[0] > 1000


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        load_dataset(tmp_path / "missing")


# ------------------------------------------------------------------ reproducible build
def _load_tool(name: str):
    """A build script of tools/ (run from a checkout, not installed) as a module."""
    import importlib.util

    path = REPO_ROOT / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tools_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not RAW.is_dir() or not FACTS.is_dir(),
                    reason="raw data (../shared/data/raw, ../shared/data/tranche1) not available")
def test_build_is_reproducible(tmp_path: Path) -> None:
    """Re-running the build (about 10-20 s) gives byte-identical tables."""
    build = _load_tool("build_default").build

    out = tmp_path / "default"
    build(RAW, FACTS, out, municipalities_out=tmp_path / "municipalities")
    for path in sorted(DEFAULT_DIR.glob("*.csv")) + [DEFAULT_DIR / "dataset.json"]:
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name
    # the municipality level stores only its areas (the status quo is the districts', issue 22)
    municipalities = DEFAULT_DIR.parent / "default_municipalities"
    assert sorted(p.name for p in (tmp_path / "municipalities").iterdir()) == [
        "areas.csv", "areas.gpkg", "dataset.json"]
    for name in ("areas.csv", "dataset.json"):
        assert (tmp_path / "municipalities" / name).read_bytes() == (
            municipalities / name).read_bytes(), name
    rebuilt = load_dataset(out)
    committed = load_dataset()
    assert rebuilt.area_geometries.geometry.geom_equals_exact(
        committed.area_geometries.geometry, tolerance=1e-6).all()
