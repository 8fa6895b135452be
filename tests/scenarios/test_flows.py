"""Where patients go (assignments' hospital of today, flows.csv, hospital_flows layer, report,
workbook), why hospitals lose a treatment (reasons, fragile), QGIS styles and partial plans.

The midden runs are real `herschik solve` runs on the embedded national default data; every
number is checked against an independent recomputation (the KPIs, site volumes, a fresh solve
with the role forced open)."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from herschik.geo.dataset import load_dataset
from herschik.optimiser.kpis import displacement_kpis
from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.synthetic import synthetic_instance
from herschik.optimiser.transfers import NO_SITE, transfers
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.cli.main import main
from herschik.scenarios.report.workbook import read_results_xlsx

from herschik.columns import HOSPITAL_FLOW_COLUMNS

REGION = "midden"
IDS = {c: str for c in ("region_id", "site_id", "area_id", "intervention_id", "site_id_before",
                        "site_id_from", "site_id_to")}


# --- the exact split -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("growth", [1.0, 1.3, 0.8])
def test_transfers_add_up_to_the_plan_and_to_today(seed: int, growth: float) -> None:
    instance = synthetic_instance(30, 5, 3, seed=seed)
    if growth != 1.0:
        instance = dataclasses.replace(instance, demand=instance.demand * growth)
    solution = solve(instance, SolveParams(margin=0.1, objective="travel"))
    assert solution.flow is not None and solution.keep is not None
    moves = transfers(instance, solution.flow)
    after = np.zeros(instance.shape)
    before = np.zeros(instance.shape)
    ok_after = moves.site_after != NO_SITE
    ok_before = moves.site_before != NO_SITE
    np.add.at(after, (moves.area[ok_after], moves.site_after[ok_after],
                      moves.treatment[ok_after]), moves.patients[ok_after])
    np.add.at(before, (moves.area[ok_before], moves.site_before[ok_before],
                       moves.treatment[ok_before]), moves.patients[ok_before])
    flow = np.where(solution.flow > 1e-9, solution.flow, 0.0)
    np.testing.assert_allclose(after, flow, atol=1e-6)
    # new patients (no hospital of today) and leavers without a hospital after: exactly the
    # area's growth or decline of patients against today
    new = np.zeros(instance.demand.shape)
    gone = np.zeros(instance.demand.shape)
    np.add.at(new, (moves.area[~ok_before], moves.treatment[~ok_before]),
              moves.patients[~ok_before])
    np.add.at(gone, (moves.area[~ok_after], moves.treatment[~ok_after]),
              moves.patients[~ok_after])
    change = flow.sum(axis=1) - instance.baseline_flow.sum(axis=1)
    np.testing.assert_allclose(new, np.maximum(change, 0.0), atol=1e-6)
    np.testing.assert_allclose(gone, np.maximum(-change, 0.0), atol=1e-6)
    # every patient of today is in a row of their hospital of today (with or without one after)
    np.testing.assert_allclose(before, instance.baseline_flow, atol=1e-6)
    if growth > 1.0:
        assert new.sum() > 0
    if growth < 1.0:
        assert gone.sum() > 0
    # the displaced patients' extra minutes are the KPIs' (mean and max)
    travel = instance.travel_min
    stopped = (instance.baseline_volume > 0) & ~solution.keep
    leaving = ok_before & (moves.site_before != moves.site_after)
    leaving &= stopped[np.where(ok_before, moves.site_before, 0), moves.treatment]
    kpis = displacement_kpis(instance, solution.flow, solution.keep)
    # displaced: every patient of today of a hospital that stops (with a shrinking demand
    # some of them have no hospital after)
    assert moves.patients[leaving].sum() == pytest.approx(kpis["patients_displaced"], abs=1e-5)
    displaced = leaving & ok_after
    weights = moves.patients[displaced]
    extra = (travel[moves.area[displaced], moves.site_after[displaced]]
             - travel[moves.area[displaced], moves.site_before[displaced]])
    if weights.sum() > 0 and not np.any(change):
        assert float((weights * extra).sum() / weights.sum()) == pytest.approx(
            kpis["displaced_mean_extra_min"], abs=1e-5)


# --- a real run ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("flows") / "midden"
    assert main(["solve", "--region", REGION, "--out", str(out), "--xlsx", "--geojson",
                 "--no-maps"]) == 0
    return out


def _read(run: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run / name, dtype=IDS, keep_default_na=True)


def test_flows_agree_with_site_volumes_and_kpis(run: Path) -> None:
    flows, sv = _read(run, "flows.csv"), _read(run, "site_volumes.csv")
    asg = _read(run, "assignments.csv")
    summary = json.loads((run / "summary.json").read_text())
    kpis = summary["kpis"]
    assert list(flows.columns) == HOSPITAL_FLOW_COLUMNS and len(flows) > 5
    assert (flows["site_id_from"] != flows["site_id_to"]).all()
    assert flows["site_name_from"].str.len().gt(0).all()
    assert flows["site_name_to"].str.len().gt(0).all()
    # per hospital and treatment: patients in - patients out = volume after - volume before
    out = flows.groupby(["site_id_from", "intervention_id"])["patients"].sum()
    into = flows.groupby(["site_id_to", "intervention_id"])["patients"].sum()
    for r in sv.itertuples(index=False):
        change = into.get((r.site_id, r.intervention_id), 0.0) - out.get(
            (r.site_id, r.intervention_id), 0.0)
        assert change == pytest.approx(r.volume_after - r.volume_before, abs=1e-3), r
    displaced = flows[flows["move"] == "displaced"]
    assert displaced["patients"].sum() == pytest.approx(kpis["patients_displaced"], abs=1e-4)
    mean = (displaced["patients"] * displaced["mean_extra_min"]).sum() / displaced[
        "patients"].sum()
    assert mean == pytest.approx(kpis["displaced_mean_extra_min"], abs=1e-4)
    assert displaced["max_extra_min"].max() == pytest.approx(kpis["displaced_max_extra_min"],
                                                             abs=1e-5)
    optional = flows.loc[flows["move"] == "moved_optional", "patients"].sum()
    assert optional == pytest.approx(kpis["patients_moved_optional"], abs=1e-4)
    for tid, per in kpis["per_treatment"].items():
        mine = displaced.loc[displaced["intervention_id"] == tid, "patients"].sum()
        assert mine == pytest.approx(per["patients_displaced"], abs=1e-4), tid
    # flows.csv is the assignments' moved rows summed over areas
    moved = asg[asg["move"].isin(["displaced", "moved_optional"])]
    assert moved["patients"].sum() == pytest.approx(flows["patients"].sum(), abs=1e-4)
    # a lost hospital's patients of today all leave it: its out-flows are its volume before
    lost = _read(run, "hospital_changes.csv").query("status == 'lost'")
    for r in lost.itertuples(index=False):
        assert out.get((r.site_id, r.intervention_id), 0.0) == pytest.approx(
            r.volume_before, abs=1e-3)


def test_assignments_name_the_hospital_of_today(run: Path) -> None:
    asg = _read(run, "assignments.csv")
    assert set(asg["move"]) <= {"stays", "displaced", "moved_optional", "new"}
    stays = asg["move"] == "stays"
    assert (asg.loc[stays, "site_id_before"] == asg.loc[stays, "site_id"]).all()
    assert (asg.loc[~stays, "site_id_before"] != asg.loc[~stays, "site_id"]).all()
    assert asg["site_name_before"].str.len().gt(0).all()  # no growth: everyone has one
    # the contract's per (area, treatment, site) patients are unchanged by the split
    per_site = asg.groupby(["area_id", "intervention_id", "site_id"])["patients"].sum()
    sv = _read(run, "site_volumes.csv").set_index(["site_id", "intervention_id"])
    after = per_site.groupby(level=["site_id", "intervention_id"]).sum()
    for key, value in after.items():
        assert value == pytest.approx(sv.loc[key, "volume_after"], abs=1e-3)


def test_gpkg_hospital_flows_and_styles(run: Path) -> None:
    flows = _read(run, "flows.csv")
    layer = gpd.read_file(run / "results.gpkg", layer="hospital_flows")
    assert len(layer) == len(flows) and layer.crs.to_epsg() == 28992
    pd.testing.assert_frame_equal(layer[HOSPITAL_FLOW_COLUMNS], flows, check_dtype=False)
    sites = _read(run, "site_volumes.csv")
    assert len(gpd.read_file(run / "geojson" / "hospital_flows.geojson")) == len(flows)
    with sqlite3.connect(run / "results.gpkg") as db:
        rows = db.execute("SELECT f_table_name, f_geometry_column, styleName, styleQML, "
                          "styleSLD, useAsDefault FROM layer_styles ORDER BY id").fetchall()
        contents = dict(db.execute("SELECT table_name, data_type FROM gpkg_contents"))
    assert sites is not None
    assert [r[0] for r in rows] == ["sites", "areas", "flows", "hospital_flows"]
    assert contents["layer_styles"] == "attributes"
    for _, geometry, _, qml, sld, default in rows:
        assert geometry == "geom" and default == 1
        root = ET.fromstring(qml.split("\n", 1)[1])  # after the DOCTYPE line
        assert root.tag == "qgis" and root.find("renderer-v2") is not None
        assert ET.fromstring(sld.encode()).tag.endswith("StyledLayerDescriptor")
    styles = {r[0]: r[3] for r in rows}
    for colour in ("33,113,181", "35,139,69", "203,24,29"):  # kept, gained, lost
        assert colour in styles["sites"]
    # flows by width: the largest flow of the file gets the widest line
    widest = re.search(r'scale_linear\((?:&quot;|")patients(?:&quot;|"), 0, ([0-9.e+]+)',
                       styles["hospital_flows"])
    assert widest is not None
    assert float(widest.group(1)) == pytest.approx(flows["patients"].max(), rel=1e-5)


def test_report_and_workbook_show_the_same_flows(run: Path) -> None:
    flows = _read(run, "flows.csv")
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "Where the patients go" in html and "Why hospitals lose a treatment" in html
    for name in set(flows["site_name_from"]):
        assert f"Where the patients of {name} go" in html
    for value in flows["patients"]:
        assert f"{value:,.1f}" in html
    sheets = read_results_xlsx(run / "results.xlsx")
    assert list(sheets) == ["summary", "kpis", "per_treatment", "hospital_changes", "flows",
                            "assignments", "site_volumes"]
    pd.testing.assert_frame_equal(sheets["flows"].astype({c: str for c in (
        "site_id_from", "site_id_to")}), flows, check_dtype=False)
    from openpyxl import load_workbook

    book = load_workbook(run / "results.xlsx", read_only=False)
    sheet = book["flows"]
    assert sheet.freeze_panes == "A3"
    assert sheet["D1"].value == "From hospital id" and sheet["D2"].value == "site_id_from"
    widths = {c: sheet.column_dimensions[c].width for c in "ABCDEFG"}
    longest_name = int(flows["site_name_from"].str.len().max())
    assert widths["E"] >= min(60, longest_name)  # the hospital names fit
    assert sheet["I3"].number_format != "General"


def test_outputs_are_byte_identical(run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert main(["solve", "--region", REGION, "--out", str(again), "--xlsx", "--geojson",
                 "--no-maps"]) == 0
    for name in ("flows.csv", "assignments.csv", "hospital_changes.csv", "results.xlsx",
                 "results.gpkg", "geojson/hospital_flows.geojson"):
        assert (run / name).read_bytes() == (again / name).read_bytes(), name


# --- why a hospital loses a treatment --------------------------------------------------------
def test_every_lost_role_says_why_exactly(run: Path) -> None:
    changes = _read(run, "hospital_changes.csv")
    lost = changes[changes["status"] == "lost"]
    assert len(lost) == 8
    assert changes.loc[changes["status"] != "lost", "reason"].isna().all()
    instance = build_instance(load_dataset(None), REGION)
    params = SolveParams()
    base = solve(instance, params)
    assert base.flow is not None and base.keep is not None
    base_kpis = displacement_kpis(instance, base.flow, base.keep)["per_treatment"]
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
    for r in lost.itertuples(index=False):
        assert isinstance(r.reason, str) and r.reason
        short = r.volume_before < r.required_min
        assert r.reason.startswith("cannot reach the norm with its own patients") == short
        # independent: a fresh solve of the whole region with the role forced open
        forced_params = params.model_copy(update={"force_keep": [SiteTreatment(
            site_id=r.site_id, intervention_id=r.intervention_id)]})
        forced = solve(instance, forced_params)
        assert bool(r.keep_feasible) == forced.feasible
        if not forced.feasible:
            continue
        assert forced.flow is not None and forced.keep is not None
        t = instance.treatment_ids.index(r.intervention_id)
        per = displacement_kpis(instance, forced.flow, forced.keep)["per_treatment"]
        moves = (per[r.intervention_id]["patients_moved_optional"]
                 - base_kpis[r.intervention_id]["patients_moved_optional"])
        minutes = float((forced.flow[:, :, t] * travel).sum() - (base.flow[:, :, t]
                                                                 * travel).sum())
        assert r.keep_cost_moves == pytest.approx(max(moves, 0.0), abs=1e-3)
        assert r.keep_cost_patient_min == pytest.approx(minutes, abs=1e-2)
        if r.keep_cost_moves > 0.05:
            assert "optional moves" in r.reason and isinstance(r.keep_moves_from, str)
            named = r.keep_moves_from.split(";")[0].split(":")[0].strip()
            assert named in r.reason


def test_fragile_flags_kept_roles_within_ten_percent(run: Path) -> None:
    changes = _read(run, "hospital_changes.csv")
    provides = changes["status"].isin(["kept", "gained", "below_norm"]) & changes[
        "norm"].notna()
    expected = provides & (changes["volume_after"] < 1.1 * changes["required_min"])
    assert (changes["fragile"].astype(bool) == expected).all()
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "Fragile: kept within 10 % of the required minimum" in html


# --- partial plans ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def partial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("partial") / "margin20"
    assert main(["solve", "--region", REGION, "--margin", "0.2", "--out", str(out), "--xlsx",
                 "--no-maps"]) == 1
    return out


def test_partial_plan_solves_the_feasible_treatments(partial: Path) -> None:
    summary = json.loads((partial / "summary.json").read_text())
    assert summary["status"] == "partially_infeasible"
    statuses = summary["treatment_status"]
    assert statuses["og_endoscopic"] == "infeasible"
    assert {s for t, s in statuses.items() if t != "og_endoscopic"} == {"optimal"}
    diagnosis = summary["diagnosis"]
    assert diagnosis["infeasible_treatments"] == ["og_endoscopic"]
    assert "og_endoscopic" not in diagnosis["solved_treatments"]
    assert "28.1" in diagnosis["reason"] and diagnosis["reason"].startswith("No plan for")
    assert summary["verification"]["violations"] == []
    sv = _read(partial, "site_volumes.csv")
    endo = sv[sv["intervention_id"] == "og_endoscopic"]
    assert (endo["treatment_status"] == "infeasible").all()
    assert endo["volume_after"].isna().all() and endo["kept_after"].isna().all()
    assert sv.loc[sv["intervention_id"] != "og_endoscopic", "volume_after"].notna().all()
    for name in ("assignments.csv", "flows.csv"):
        table = _read(partial, name)
        assert "og_endoscopic" not in set(table["intervention_id"])
        assert set(table["treatment_status"]) == {"optimal"}
    changes = _read(partial, "hospital_changes.csv")
    assert (changes.loc[changes["intervention_id"] == "og_endoscopic",
                        "status"].isna()).all()
    # the KPIs cover the solved treatments: their patients
    assert "og_endoscopic" not in summary["kpis"]["per_treatment"]
    instance = build_instance(load_dataset(None), REGION)
    t = instance.treatment_ids.index("og_endoscopic")
    assert summary["kpis"]["patients"] == pytest.approx(
        float(instance.demand.sum() - instance.demand[:, t].sum()), abs=1e-3)
    assert "og_endoscopic" not in read_results_xlsx(partial / "results.xlsx")["flows"][
        "intervention_id"].tolist()


def test_compare_goes_treatment_by_treatment_and_refuses_no_plan(
        run: Path, partial: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(run), str(partial), "--out", str(tmp_path / "cmp")]) == 0
    per = pd.read_csv(tmp_path / "cmp" / "treatment_differences.csv").set_index(
        "intervention_id")
    assert per.loc["og_endoscopic", "status_a"] == "optimal"
    assert per.loc["og_endoscopic", "status_b"] == "infeasible"
    hospitals = pd.read_csv(tmp_path / "cmp" / "hospital_differences.csv")
    assert "og_endoscopic" not in set(hospitals["intervention_id"])
    assert "not_provided" not in set(hospitals["status_b"])
    infeasible = tmp_path / "infeasible"
    # no treatment reaches every area within 6 seconds: no plan at all
    assert main(["solve", "--region", "example", "--max-travel", "0.1", "--remote-areas",
                 "strict", "--out", str(infeasible), "--no-maps", "--no-report"]) == 1
    assert json.loads((infeasible / "summary.json").read_text())["status"] == "infeasible"
    capsys.readouterr()
    assert main(["compare", str(run), str(infeasible)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no plan to compare" in err[0]


def test_no_reasons_leaves_the_reason_columns_empty(tmp_path: Path) -> None:
    for flag, filled in (("--no-reasons", False), (None, True)):
        out = tmp_path / str(flag)
        args = ["solve", "--region", "example", "--out", str(out), "--no-maps", "--no-report"]
        assert main(args + ([flag] if flag else [])) == 0
        changes = _read(out, "hospital_changes.csv")
        lost = changes["status"] == "lost"
        assert lost.any()
        assert changes.loc[lost, "reason"].notna().all() == filled
        assert changes.loc[lost, "reason"].isna().all() == (not filled)


def test_reasons_default_per_region_not_nationally() -> None:
    from herschik.scenarios.cli.parser import build_parser
    from herschik.scenarios.cli.solve import wants_reasons

    parser = build_parser()

    def parsed(*flags: str) -> bool:
        return wants_reasons(parser.parse_args(["solve", "--out", "x", *flags]))

    assert parsed("--region", "midden")
    assert not parsed("--region", "midden", "--no-reasons")
    assert not parsed("--region", "all")
    assert parsed("--region", "all", "--reasons")
