"""`herschik app`: the JSON API on the embedded municipality dataset (Starlette TestClient).

The app must solve exactly as `herschik solve` does, say in plain words why a change is
infeasible and what nearest setting is feasible, export what the CLI writes, and never let the
browser name a file or path on the server.
"""

from __future__ import annotations

import csv
import json
import math
import socket
import subprocess
import typing
from pathlib import Path

import pandas as pd
import pytest
from herschik.geo.dataset import load_dataset
from herschik.geo.schema import NL_LONLAT
from herschik.optimiser.params import SolveParams
from herschik.scenarios.app.export import comparable_summary, new_folder, same_result
from herschik.scenarios.app.models import ForcedPair, PlanSettings
from herschik.scenarios.app.nearest import nearest_limit
from herschik.scenarios.app.server import (
    MAX_BODY_BYTES,
    MAX_EXPORTS_PER_MINUTE,
    TOKEN_HEADER,
    SolveRequest,
    allowed_hosts_for,
    create_app,
)
from herschik.scenarios.app.session import AppState
from herschik.scenarios.app.views import kpi_rows, plain_words
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.run import run_solve, solve_verified
from herschik.scenarios.scenario.file import load_scenario
from starlette.testclient import TestClient

from tests.support.cli import HERSCHIK

REGION = "midden"


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("app-out")


@pytest.fixture(scope="module")
def state(out_dir: Path) -> AppState:
    return AppState(
        load_dataset("municipalities"),
        out_dir=out_dir,
        source_args=["--areas", "municipalities"],
        areas_label="municipalities",
        first_region=REGION,
    )


@pytest.fixture(scope="module")
def client(state: AppState) -> TestClient:
    # the page's session token on every request, as app.js sends it
    return TestClient(create_app(state, allowed_hosts=["testserver"]),
                      headers={TOKEN_HEADER: state.token})


def _solve(client: TestClient, base: int | None = None, **settings: typing.Any) -> dict:
    response = client.post(
        "/api/solve", json={"settings": {"region_id": REGION, **settings}, "base_plan_id": base}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def default_plan(client: TestClient) -> dict:
    result = _solve(client)
    assert result["status"] in ("optimal", "feasible")
    return result["plan"]


COMPLETE = ("optimal", "feasible")


def _no_plan_info(result: dict) -> dict:
    """The diagnosis and suggestions of a change without a (complete) plan: of the infeasible
    change, or of the partial plan (some treatments without a plan) that it gave."""
    if result["status"] == "infeasible":
        return result["infeasible"]
    assert result["status"] == "partially_infeasible", result["status"]
    return result["plan"]["partial"]


def _row(plan: dict, status: str, with_norm: bool = True) -> dict:
    return next(
        r
        for r in plan["hospitals"]
        if r["status"] == status and (r["norm"] is not None) == with_norm
    )


# --- reference data --------------------------------------------------------------------------
def test_meta_lists_regions_treatments_and_the_solvers_objectives(client: TestClient) -> None:
    meta = client.get("/api/meta").json()
    assert [r["id"] for r in meta["regions"]][:1] == ["noordoost"]
    assert len(meta["regions"]) == 7 and meta["first_region"] == REGION
    assert meta["baseline_source"] == (
        "Baseline: illustrative (calibrated to published provider counts)")
    assert meta["objectives"] == list(
        typing.get_args(SolveParams.model_fields["objective"].annotation)
    )
    defaults = SolveParams()
    assert meta["defaults"]["objective"] == defaults.objective
    assert meta["defaults"]["margin"] == defaults.margin
    assert {t["id"] for t in meta["treatments"]} >= {"kidney_local", "og_resection"}


def test_region_map_has_every_area_polygon_in_instance_order_in_wgs84(
    client: TestClient, state: AppState
) -> None:
    layers = client.get(f"/api/regions/{REGION}/map").json()
    instance = state.instance(REGION)
    features = layers["areas"]["features"]
    assert [f["properties"]["area_id"] for f in features] == list(instance.area_ids)
    assert [f["properties"]["i"] for f in features] == list(range(len(instance.area_ids)))
    assert {f["geometry"]["type"] for f in features} <= {"Polygon", "MultiPolygon"}
    west, south, east, north = NL_LONLAT
    for feature in features:
        ring = feature["geometry"]["coordinates"][0]
        ring = ring[0] if feature["geometry"]["type"] == "MultiPolygon" else ring
        assert len(ring) >= 4
        for lon, lat in ring:
            assert west < lon < east and south < lat < north
    assert [s["site_id"] for s in layers["sites"]] == list(instance.site_ids)
    assert all(west < s["lon"] < east and south < s["lat"] < north for s in layers["sites"])
    assert any("Utrecht" in f["properties"]["area_name"] for f in features)


# --- solving -----------------------------------------------------------------------------------
def test_a_plan_is_the_cli_solve_verified(
    default_plan: dict, state: AppState, tmp_path: Path
) -> None:
    """Same KPIs and site volumes as run_solve (what `herschik solve` writes), verifier clean."""
    instance = build_instance(state.dataset, REGION)
    summary = run_solve(instance, SolveParams(), tmp_path / "cli")
    assert default_plan["kpis"] == summary["kpis"]
    assert default_plan["verification"]["violations"] == []
    written = {
        (r["site_id"], r["intervention_id"]): r
        for r in csv.DictReader((tmp_path / "cli" / "site_volumes.csv").open())
    }
    rows = {(r["site_id"], r["intervention_id"]): r for r in default_plan["hospitals"]}
    for key, cli in written.items():
        if cli["kept_before"] == "True" or cli["kept_after"] == "True":
            assert key in rows, key  # every provider before or after is in the table
    for key, row in rows.items():
        cli = written.get(key)
        if cli is None:  # site_volumes.csv lists treatments with a norm (all, after `planner`)
            assert row["norm"] is None
            continue
        assert row["volume_after"] == pytest.approx(float(cli["volume_after"]), abs=1e-6)
        assert (row["status"] != "lost") == (cli["kept_after"] == "True")
    # the map colours are the plan's flows: patients per area add up to the region's demand
    assert sum(default_plan["areas"]["all"]["patients"]) == pytest.approx(
        summary["kpis"]["patients"], rel=1e-4
    )


def test_kpi_rows_show_displaced_patients_when_the_solve_reports_them(default_plan: dict) -> None:
    keys = [r["key"] for r in default_plan["kpi_rows"]["all"]]
    assert {"patients", "patients_moved", "providers_before", "providers_after"} <= set(keys)
    assert ("patients_displaced" in keys) == ("patients_displaced" in default_plan["kpis"])
    by_key = {r["key"]: r["value"] for r in default_plan["kpi_rows"]["all"]}
    assert by_key["providers_after"] == sum(default_plan["kpis"]["providers_after"].values())


def test_force_close_loses_the_treatment_and_updates_kpis(
    client: TestClient, default_plan: dict
) -> None:
    row = _row(default_plan, "kept")
    site, treatment = row["site_id"], row["intervention_id"]
    plan = _solve(
        client, default_plan["id"],
        force_close=[{"site_id": site, "intervention_id": treatment}],
    )["plan"]
    changed = next(
        r for r in plan["hospitals"] if (r["site_id"], r["intervention_id"]) == (site, treatment)
    )
    assert changed["status"] == "lost" and changed["volume_after"] == 0
    assert changed["forced"] == "close"
    before = default_plan["kpis"]["providers_after"][treatment]
    assert plan["kpis"]["providers_after"][treatment] == before - 1
    assert plan["verification"]["violations"] == []
    # the displaced patients' areas now travel elsewhere for that treatment
    index = [s["site_id"] for s in client.get(f"/api/regions/{REGION}/map").json()["sites"]]
    assert index.index(site) not in plan["areas"]["treatments"][treatment]["dest"]


def test_force_keep_keeps_a_hospital_that_would_lose_it(
    client: TestClient, default_plan: dict
) -> None:
    row = _row(default_plan, "lost")
    plan = _solve(
        client, default_plan["id"],
        force_keep=[{"site_id": row["site_id"], "intervention_id": row["intervention_id"]}],
    )["plan"]
    kept = next(
        r for r in plan["hospitals"]
        if (r["site_id"], r["intervention_id"]) == (row["site_id"], row["intervention_id"])
    )
    assert kept["status"] == "kept" and kept["forced"] == "keep"
    assert kept["volume_after"] >= kept["required_min"] - 1e-6


def test_same_settings_give_the_same_plan(client: TestClient, default_plan: dict) -> None:
    again = _solve(client)
    assert again["plan"]["id"] == default_plan["id"]


def test_a_partial_plan_is_a_plan_of_the_treatments_that_have_one(
    client: TestClient, default_plan: dict, state: AppState, tmp_path: Path
) -> None:
    """A 300 % margin leaves 12 of midden's 19 treatments without a plan: the app keeps the
    plan of the other 7 (issue 24 #3), as `herschik solve` writes it, and says which
    treatments have none and why, with the nearest margin that plans them all."""
    result = _solve(client, default_plan["id"], margin=3.0)
    assert result["status"] == "partially_infeasible"
    plan = result["plan"]
    assert plan["status"] == "partially_infeasible"
    instance = build_instance(state.dataset, REGION)
    summary = run_solve(instance, PlanSettings(region_id=REGION, margin=3.0).solve_params(),
                        tmp_path / "cli")
    missing = sorted(t for t, s in summary["treatment_status"].items() if s not in COMPLETE)
    assert 0 < len(missing) < len(instance.treatment_ids)
    assert sorted(plan["no_plan"]) == missing
    # the plan is the CLI's: KPIs (of the planned treatments), volumes, status per row
    assert plan["kpis"] == summary["kpis"]
    assert plan["verification"]["violations"] == []
    written = {(r["site_id"], r["intervention_id"]): r
               for r in csv.DictReader((tmp_path / "cli" / "site_volumes.csv").open())}
    for row in plan["hospitals"]:
        cli = written[(row["site_id"], row["intervention_id"])]
        if row["intervention_id"] in missing:
            assert row["status"] == "no_plan" and cli["volume_after"] == ""
            assert row["volume_after"] is None and row["p_meet_norm_1y"] is None
        else:
            assert row["status"] != "no_plan"
            assert row["volume_after"] == pytest.approx(float(cli["volume_after"]), abs=1e-6)
    # the map colours the treatments with a plan; "all" adds up their patients only
    areas = plan["areas"]
    assert list(areas["treatments"]) == list(instance.treatment_ids)
    assert all((areas["treatments"][t] is None) == (t in missing) for t in areas["treatments"])
    assert sum(areas["all"]["patients"]) == pytest.approx(summary["kpis"]["patients"], rel=1e-4)
    # which treatments have no plan and why, in names, and the nearest complete settings
    info = plan["partial"]
    assert [t["id"] for t in info["treatments"]] == [
        t for t in instance.treatment_ids if t in missing]
    assert info["total"] == len(instance.treatment_ids)
    names = {t.id: t.name for t in instance.treatments}
    for entry in info["treatments"]:
        assert entry["name"] == names[entry["id"]] and entry["reasons"]
        # listed under the treatment's name, in names, not ids
        assert all(not r.startswith(entry["name"]) and "_" not in r for r in entry["reasons"])
    assert info["reason"].startswith(f"No plan for {len(missing)} of {len(names)} treatments")
    margin_fix = next(s for s in info["suggestions"] if "margin" in s["text"])
    assert margin_fix["settings"]["margin"] < 3.0
    assert any(s["settings"] == PlanSettings(region_id=REGION, objective=default_plan[
        "settings"]["objective"]).model_dump() for s in info["suggestions"])
    # kept as a plan: listed, shown again, compared; the suggestion plans every treatment
    listed = {p["id"]: p for p in client.get("/api/plans").json()["plans"]}
    assert sorted(listed[plan["id"]]["no_plan"]) == missing
    assert client.get(f"/api/plans/{plan['id']}").json()["partial"] == info
    compared = client.get("/api/compare", params={"a": default_plan["id"],
                                                  "b": plan["id"]}).json()
    assert {h["b_status"] for h in compared["hospitals"]
            if h["intervention_id"] in missing} == {"no_plan"}
    fixed = client.post("/api/solve", json={"settings": margin_fix["settings"]}).json()
    assert fixed["status"] in COMPLETE and fixed["plan"]["partial"] is None


def test_a_partial_plan_exports_what_the_cli_writes(client: TestClient, default_plan: dict,
                                                    out_dir: Path) -> None:
    """`herschik solve` of the exported scenario exits 1 (partially infeasible) and writes the
    plan's tables byte for byte; the empty volumes of the treatments without a plan count as
    equal (they are NaN on both sides)."""
    plan = _solve(client, default_plan["id"], norm_confidence=0.8)["plan"]
    assert plan["no_plan"] == ["og_endoscopic"]
    exported = client.post(f"/api/plans/{plan['id']}/export", json={}).json()
    assert exported["exit_code"] == 1
    assert exported["same_as_app"] is True, exported["differences"]
    summary = json.loads((out_dir / exported["folder"] / "result" / "summary.json").read_text())
    assert summary["status"] == "partially_infeasible"


def test_a_change_without_any_plan_is_infeasible_and_keeps_no_plan(
    client: TestClient, default_plan: dict, state: AppState
) -> None:
    """Closing every hospital leaves no treatment a plan: no plan is kept, the diagnosis says
    why and suggests dropping the closures."""
    n_plans = len(client.get("/api/plans").json()["plans"])
    closed = [{"site_id": s, "intervention_id": "*"} for s in state.instance(REGION).site_ids]
    result = _solve(client, default_plan["id"], force_close=closed)
    assert result["status"] == "infeasible" and "plan" not in result
    info = result["infeasible"]
    assert info["reason"].startswith("The scenario is infeasible")
    assert any(s["text"].startswith("Stop forcing: closing") and s["settings"]["force_close"]
               == [] for s in info["suggestions"])
    assert len(client.get("/api/plans").json()["plans"]) == n_plans


def test_nearest_feasible_extra_travel_limit_is_the_tightest_one(
    client: TestClient, default_plan: dict
) -> None:
    result = _solve(client, default_plan["id"], max_extra_travel=0.0)
    fix = next(s for s in _no_plan_info(result)["suggestions"] if "extra-travel" in s["text"])
    limit = fix["settings"]["max_extra_travel"]
    assert limit > 0
    assert _solve(client, max_extra_travel=limit)["status"] in COMPLETE
    assert _solve(client, max_extra_travel=limit - 1)["status"] not in COMPLETE


def test_infeasible_forced_keep_suggests_dropping_it(
    client: TestClient, default_plan: dict
) -> None:
    row = _row(default_plan, "kept")
    pair = {"site_id": row["site_id"], "intervention_id": row["intervention_id"]}
    result = _solve(client, default_plan["id"], force_keep=[pair], force_close=[pair])
    texts = [s["text"] for s in _no_plan_info(result)["suggestions"]]
    assert any(t.startswith("Stop forcing: keeping") and row["site_name"] in t for t in texts)


def test_plans_and_compare(client: TestClient, default_plan: dict) -> None:
    row = _row(default_plan, "kept")
    other = _solve(client, default_plan["id"], margin=0.05, force_close=[
        {"site_id": row["site_id"], "intervention_id": row["intervention_id"]}])["plan"]
    plans = client.get("/api/plans").json()["plans"]
    assert {default_plan["id"], other["id"]} <= {p["id"] for p in plans}
    full = client.get(f"/api/plans/{other['id']}").json()
    assert full["kpis"] == other["kpis"]
    comparison = client.get(f"/api/compare?a={default_plan['id']}&b={other['id']}").json()
    margin = next(s for s in comparison["settings"] if s["key"] == "margin")
    assert (margin["a"], margin["b"]) == (0.0, 0.05)
    moved = next(k for k in comparison["kpis"] if k["key"] == "patients_moved")
    assert moved["diff"] == pytest.approx(moved["b"] - moved["a"])
    changed = {(h["site_id"], h["intervention_id"]): h for h in comparison["hospitals"]}
    closed = changed[(row["site_id"], row["intervention_id"])]
    assert (closed["a_status"], closed["b_status"]) == ("kept", "lost")


def test_export_writes_the_toml_and_the_cli_result(
    client: TestClient, default_plan: dict, out_dir: Path
) -> None:
    row = _row(default_plan, "kept")
    plan = _solve(client, default_plan["id"], max_travel=90, force_close=[
        {"site_id": row["site_id"], "intervention_id": row["intervention_id"]}])["plan"]
    exported = client.post(f"/api/plans/{plan['id']}/export", json={}).json()
    folder = out_dir / exported["folder"]
    assert folder.parent == out_dir and folder.is_dir()
    assert exported["exit_code"] == 0 and exported["same_as_app"], exported["differences"]
    for name in ("plan.toml", "result/summary.json", "result/site_volumes.csv",
                 "result/assignments.csv", "result/results.gpkg", "result/report.html",
                 "result/flows.csv", "result/results.xlsx"):
        assert name in exported["files"]
    # the popup's "why" and "where its patients go" are the exported CSVs' rows
    changes = pd.read_csv(folder / "result" / "hospital_changes.csv", dtype=str)
    flows = pd.read_csv(folder / "result" / "flows.csv", dtype={"site_id_from": str,
                                                                "site_id_to": str})
    for r in plan["hospitals"]:
        mine = flows[(flows["site_id_from"] == r["site_id"])
                     & (flows["intervention_id"] == r["intervention_id"])]
        assert len(r["flows_out"]) == len(mine)
        assert sum(f["patients"] for f in r["flows_out"]) == pytest.approx(
            mine["patients"].sum(), abs=1e-5)
        row = changes[(changes["site_id"] == r["site_id"])
                      & (changes["intervention_id"] == r["intervention_id"])]
        assert r["has_reason"] == (r["status"] == "lost" and r["norm"] is not None)
        if r["has_reason"]:  # asked for when the hospital is opened: the CLI's sentence
            asked = client.get(f"/api/plans/{plan['id']}/hospitals/{r['site_id']}/reasons")
            why = {w["intervention_id"]: w for w in asked.json()["reasons"]}
            assert why[r["intervention_id"]]["reason"] == row["reason"].iloc[0]
            assert why[r["intervention_id"]]["keep_moves_from"] == (
                row["keep_moves_from"].fillna("").iloc[0])
        else:
            assert "reason" not in r and (row.empty or pd.isna(row["reason"].iloc[0]))
    scenario = load_scenario(folder / "plan.toml").expand()[0]
    assert scenario.params == PlanSettings(**plan["settings"]).solve_params()
    summary = json.loads((folder / "result" / "summary.json").read_text())
    assert summary["kpis"] == plan["kpis"]
    assert "--areas municipalities" in exported["command"]


def _pair(row: dict) -> dict:
    return {"site_id": row["site_id"], "intervention_id": row["intervention_id"]}


def _csv_bytes(run: typing.Any, folder: Path) -> dict[str, bytes]:
    written = run.write(folder, lock=False)
    return {p.name: p.read_bytes() for p in sorted(written.glob("*.csv"))}


def test_what_if_steps_reuse_unchanged_treatments_and_equal_the_cli_byte_for_byte(
    state: AppState, tmp_path: Path
) -> None:
    """Several changes in a row through the app's what-if session: each plan re-uses the
    treatments the change left alone, and equals a fresh verified solve of its settings to the
    byte; the last one, exported, equals `herschik solve` of the exported TOML to the byte."""
    fresh_state = AppState(state.dataset, out_dir=tmp_path / "out",
                           source_args=["--areas", "municipalities"], first_region=REGION)
    client = TestClient(create_app(fresh_state, allowed_hosts=["testserver"]),
                        headers={TOKEN_HEADER: fresh_state.token})
    instance = fresh_state.instance(REGION)
    total = len(instance.treatments)
    first = _solve(client)["plan"]
    assert first["reuse"]["first"] and first["reuse"]["counts"]["resolved"] == total
    kept, lost = _row(first, "kept"), _row(first, "lost")
    steps = [
        ({"force_close": [_pair(kept)]}, {kept["intervention_id"]}),
        ({"force_close": [_pair(kept)], "margin": 0.05}, None),
        ({"margin": 0.05}, {kept["intervention_id"]}),
        ({"margin": 0.05, "force_keep": [_pair(lost)]}, {lost["intervention_id"]}),
        ({"force_keep": [_pair(lost)]}, None),  # back to margin 0: all but one cached
        ({"force_keep": [_pair(lost)], "max_travel": 120}, None),
    ]
    plan = first
    for n, (settings, touched) in enumerate(steps):
        plan = _solve(client, plan["id"], **settings)["plan"]
        reuse = plan["reuse"]
        assert not reuse["first"] and set(reuse["actions"]) == set(instance.treatment_ids)
        assert sum(reuse["counts"].values()) == total
        assert reuse["counts"]["still_infeasible"] == 0
        if touched is not None:  # a forced pair enters its own treatment's model only
            assert {t for t, a in reuse["actions"].items() if a == "resolved"} <= touched
            assert reuse["reused"] >= total - len(touched)
            assert f"re-used {reuse['reused']} of {total} treatments" in reuse["text"]
        if n == 4:  # every treatment but the forced one has its model of the first plan
            assert reuse["reused"] >= total - 1 and reuse["counts"]["cached"] >= 1
        assert plan["verification"]["violations"] == []
        fresh = solve_verified(instance, PlanSettings(**plan["settings"]).solve_params())
        run = fresh_state.run_with_reasons(plan["id"])  # the reasons, worked out on request
        assert _csv_bytes(run, tmp_path / f"app-{n}") == _csv_bytes(fresh, tmp_path / f"cli-{n}")
        assert comparable_summary(run.summary) == comparable_summary(fresh.summary)
    exported = client.post(f"/api/plans/{plan['id']}/export", json={}).json()
    assert exported["exit_code"] == 0 and exported["same_as_app"], exported["differences"]
    result = tmp_path / "out" / exported["folder"] / "result"
    mine = _csv_bytes(fresh_state.run_with_reasons(plan["id"]), tmp_path / "app-last")
    assert set(mine) == {"assignments.csv", "flows.csv", "hospital_changes.csv",
                         "site_volumes.csv"}
    for name, content in mine.items():
        assert (result / name).read_bytes() == content, name


def test_export_check_compares_the_csvs_byte_for_byte(
    state: AppState, default_plan: dict, tmp_path: Path
) -> None:
    """A CLI result that differs from the app's plan in one digit is reported, not passed."""
    plan = state.plan(default_plan["id"])
    result = plan.run.write(tmp_path / "result", lock=False)
    assert same_result(plan, result) == (True, [])
    table = (result / "assignments.csv").read_text()
    last = table.rstrip("\n").rsplit(",", 1)
    digit = last[1][-1]
    (result / "assignments.csv").write_text(
        last[0] + "," + last[1][:-1] + ("1" if digit != "1" else "2") + "\n")
    assert same_result(plan, result) == (False, ["assignments.csv"])


def test_export_folders_are_never_reused(tmp_path: Path) -> None:
    first = new_folder(tmp_path, "plan-001-midden")
    assert not first.exists()  # named, not created: the guarded writer creates it whole
    first.mkdir()
    (first / "plan.toml").write_text("x")
    second = new_folder(tmp_path, "plan-001-midden")
    assert (first.name, second.name) == ("plan-001-midden", "plan-001-midden-2")
    assert (first / "plan.toml").read_text() == "x"


# --- what the browser may not do ------------------------------------------------------------
ROUTES = {
    ("/", "GET"), ("/api/meta", "GET"), ("/api/regions/{region_id}/map", "GET"),
    ("/api/solve", "POST"), ("/api/plans", "GET"), ("/api/plans/{plan_id:int}", "GET"),
    ("/api/compare", "GET"), ("/api/plans/{plan_id:int}/export", "POST"), ("/static", None),
    ("/api/plans/{plan_id:int}/hospitals/{site_id}/reasons", "GET"),
}


def test_the_routes_are_the_reviewed_ones(state: AppState) -> None:
    """A new route must be added here, and to the path checks below, before it can ship."""
    app = create_app(state)
    found = set()
    for route in app.routes:
        methods = sorted((getattr(route, "methods", None) or {"-"}) - {"HEAD"})
        found.add((route.path, methods[0] if methods != ["-"] else None))
    assert found == ROUTES


def test_request_models_have_no_path_like_field() -> None:
    words = ("path", "file", "dir", "folder", "out", "dest", "name")
    for model in (SolveRequest, PlanSettings, ForcedPair):
        assert model.model_config.get("extra") == "forbid"
        for field in model.model_fields:
            assert not any(w in field for w in words), (model.__name__, field)


def test_no_endpoint_accepts_a_path(
    client: TestClient, default_plan: dict, tmp_path: Path, out_dir: Path
) -> None:
    evil = tmp_path / "evil"
    plan_id = default_plan["id"]
    site = default_plan["hospitals"][0]["site_id"]
    for url in ("/", "/api/meta", f"/api/regions/{REGION}/map", "/api/plans",
                f"/api/plans/{plan_id}", f"/api/compare?a={plan_id}&b={plan_id}",
                f"/api/plans/{plan_id}/hospitals/{site}/reasons"):
        sep = "&" if "?" in url else "?"
        for key in ("path", "out", "file", "folder", "data"):
            response = client.get(f"{url}{sep}{key}={evil}")
            assert response.status_code == 422, (url, key)
    settings = {"region_id": REGION}
    for body in (
        {"settings": settings, "out": str(evil)},
        {"settings": {**settings, "out": str(evil)}},
        {"settings": {**settings, "data": str(evil)}},
        {"settings": {**settings, "network": str(evil)}},
        {"settings": {**settings, "force_close": [
            {"site_id": "x", "intervention_id": "*", "path": str(evil)}]}},
        {"settings": {**settings, "region_id": "../../etc"}},
        {"settings": {**settings, "force_close": [
            {"site_id": "../../etc/passwd", "intervention_id": "*"}]}},
    ):
        response = client.post("/api/solve", json=body)
        assert response.status_code in (400, 422), body
    for body in ({"folder": str(evil)}, {"out": str(evil)}, {"path": "x"}):
        response = client.post(f"/api/plans/{plan_id}/export", json=body)
        assert response.status_code == 422
    response = client.post(f"/api/plans/{plan_id}/export?out={evil}")
    assert response.status_code == 422
    for url in ("/api/regions/..%2F..%2Fetc/map", "/api/regions/%2Fetc%2Fpasswd/map",
                "/static/../session.py", "/static/%2e%2e/session.py", "/api/plans/..%2F1",
                f"/api/plans/{plan_id}/hospitals/..%2F..%2Fetc%2Fpasswd/reasons",
                f"/api/plans/{plan_id}/hospitals/%2Fetc%2Fpasswd/reasons"):
        assert client.get(url).status_code in (400, 404), url
    assert not evil.exists()
    assert all(p.parent == out_dir for p in out_dir.iterdir())


def test_bad_requests_are_one_line_errors(client: TestClient, default_plan: dict) -> None:
    cases = [
        (client.post("/api/solve", json={"settings": {"region_id": "atlantis"}}), 400,
         "unknown region"),
        (client.post("/api/solve", json={"settings": {"region_id": REGION, "force_close": [
            {"site_id": "Z100101", "intervention_id": "*"}]}}), 400, "not a hospital of region"),
        (client.post("/api/solve", json={"settings": {"region_id": REGION, "margin": -1}}), 422,
         "margin"),
        (client.post("/api/solve", json={"settings": {"region_id": REGION,
                                                      "objective": "cheapest"}}), 422,
         "unknown objective"),
        (client.post("/api/solve", content=b'{"settings": {"region_id": "midden"}}',
                     headers={"content-type": "text/plain"}), 400, "application/json"),
        (client.post("/api/solve", content=b"{not json",
                     headers={"content-type": "application/json"}), 400, "not JSON"),
        (client.get("/api/plans/99999"), 404, "no plan"),
        (client.get("/api/compare?a=1"), 422, "two plan ids"),
        (client.get("/api/regions/atlantis/map"), 400, "unknown region"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert words in error and "\n" not in error


def test_foreign_host_header_is_refused(state: AppState) -> None:
    client = TestClient(create_app(state, allowed_hosts=["127.0.0.1", "localhost"]),
                        base_url="http://127.0.0.1")
    assert client.get("/api/meta").status_code == 200
    assert client.get("/api/meta", headers={"host": "evil.example"}).status_code == 400


def test_page_and_vendored_leaflet_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/static/vendor/leaflet/leaflet.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere
    leaflet = client.get("/static/vendor/leaflet/leaflet.js")
    assert leaflet.status_code == 200 and "Leaflet 1.9.4" in leaflet.text[:300]
    assert client.get("/static/vendor/leaflet/leaflet.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200


def test_plain_words_replaces_whole_ids_only() -> None:
    names = {"og_resection": "Oesophageal resections", "Z1": "Ede", "Z10": "Arnhem"}
    assert plain_words("og_resection at Z10 and Z1, not Z100", names) == (
        "Oesophageal resections at Arnhem and Ede, not Z100")


# --- the command ---------------------------------------------------------------------------
def _app(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*HERSCHIK, "app", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_cli_app_refuses_an_unknown_region_in_one_line(tmp_path: Path) -> None:
    run = _app("--region", "atlantis", "--out", str(tmp_path))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "--region atlantis" in run.stderr


def test_cli_app_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        run = _app("--port", str(busy.getsockname()[1]), "--out", str(tmp_path))
    assert run.returncode == 2 and "cannot listen" in run.stderr
    assert "Traceback" not in run.stderr


def test_kpi_rows_read_the_displaced_keys_and_per_treatment_numbers() -> None:
    """The planner's KPI keys (SHARED_NAMES) are shown when present, per treatment too."""
    kpis = {
        "patients": 100.0, "patients_moved": 12.0, "patients_displaced": 10.0,
        "displaced_share": 0.1, "displaced_mean_extra_min": 7.5, "displaced_p90_extra_min": 12.0,
        "displaced_max_extra_min": 20.0, "patients_moved_optional": 2.0,
        "providers_before": {"a": 3, "b": 2}, "providers_after": {"a": 2, "b": 2},
        "providers_lost": {"a": 1, "b": 0}, "providers_gained": {"a": 0, "b": 0},
        "per_treatment": {"a": {"patients": 60.0, "patients_displaced": 10.0,
                                "displaced_share": 1 / 6, "displaced_mean_extra_min": 7.5,
                                "providers_before": 3, "providers_after": 2}},
    }
    rows = {r["key"]: r["value"] for r in kpi_rows(kpis)}
    assert rows["patients_displaced"] == 10.0 and rows["displaced_p90_extra_min"] == 12.0
    assert rows["providers_before"] == 5 and rows["providers_after"] == 4
    assert rows["providers_lost"] == 1 and rows["providers_gained"] == 0
    per_a = {r["key"]: r["value"] for r in kpi_rows(kpis, "a")}
    assert per_a["patients"] == 60.0 and per_a["patients_displaced"] == 10.0
    assert (per_a["providers_before"], per_a["providers_after"], per_a["providers_lost"]) == (
        3, 2, 1)
    assert "patients_moved" not in per_a  # a region-wide number is not shown as the treatment's
    per_b = {r["key"]: r["value"] for r in kpi_rows(kpis, "b")}
    assert per_b == {"providers_before": 2, "providers_after": 2, "providers_lost": 0,
                     "providers_gained": 0}
    before_merge = {r["key"] for r in kpi_rows({"patients": 1.0, "patients_moved": 0.0})}
    assert before_merge == {"patients", "patients_moved"}


def test_a_user_dataset_with_data_exports_through_the_cli_with_data(tmp_path: Path) -> None:
    """`herschik app --data DIR`: plans on the user's tables, export re-solved with --data."""
    from herschik.geo.dataset_export import export_dataset

    data = tmp_path / "data"
    export_dataset(load_dataset("example"), data)
    state = AppState(load_dataset(data), out_dir=tmp_path / "out",
                     source_args=["--data", str(data)])
    client = TestClient(create_app(state), headers={TOKEN_HEADER: state.token})
    meta = client.get("/api/meta").json()
    assert [r["id"] for r in meta["regions"]] == ["example"]
    result = client.post("/api/solve", json={"settings": {"region_id": "example",
                                                          "margin": 0.1}}).json()
    assert result["status"] in ("optimal", "feasible")
    exported = client.post(f"/api/plans/{result['plan']['id']}/export", json={}).json()
    assert exported["same_as_app"], exported["differences"]
    assert exported["command"].endswith(f"--data {data}")


def test_vendored_leaflet_is_the_npm_release_unmodified() -> None:
    import hashlib

    from herschik.scenarios.app.server import STATIC_DIR

    folder = STATIC_DIR / "vendor" / "leaflet"
    sums = [line.split() for line in (folder / "VERSION").read_text().splitlines()
            if line.endswith((".js", ".css"))]
    assert {name for _, name in sums} == {"leaflet.js", "leaflet.css"}
    for digest, name in sums:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    assert "BSD 2-Clause" in (folder / "LICENSE").read_text()


def test_cli_app_serves_on_loopback_guards_the_host_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import re
    import signal
    import time
    import urllib.error
    import urllib.request

    proc = subprocess.Popen(
        [*HERSCHIK, "app", "--port", "0", "--out",
         str(tmp_path / "plans"), "--region", "west"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        match = None
        while match is None:  # the address line, after the baseline line
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        url = match.group(0)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "api/meta", timeout=5) as response:
                    assert json.load(response)["first_region"] == "west"
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
        foreign = urllib.request.Request(url + "api/meta", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(foreign, timeout=5)
        assert refused.value.code == 400
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130  # stopped by a signal, as every command (issue 27)
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_closing_a_whole_hospital_loses_all_its_treatments(
    client: TestClient, default_plan: dict
) -> None:
    site = _row(default_plan, "kept")["site_id"]
    result = _solve(client, default_plan["id"],
                    force_close=[{"site_id": site, "intervention_id": "*"}])
    assert result["status"] in ("optimal", "feasible")
    rows = [r for r in result["plan"]["hospitals"] if r["site_id"] == site]
    assert rows and all(r["forced"] == "close" and r["volume_after"] == 0 for r in rows)
    assert {r["status"] for r in rows if r["volume_before"] > 0} == {"lost"}
    assert "all treatments" in client.get("/api/compare", params={
        "a": default_plan["id"], "b": result["plan"]["id"]}).json()["settings"][-1]["b"][0]


def test_nearest_margin_by_bisection_agrees_with_the_diagnosis(
    client: TestClient, state: AppState, default_plan: dict
) -> None:
    """The app's own bisection (used when the diagnosis has no value in time) finds the margin
    the diagnosis finds, to its 0.01 rounding (the diagnosis rounds down)."""
    result = _solve(client, default_plan["id"], margin=3.0)
    diagnosed = _no_plan_info(result)["diagnosis"]["smallest_feasible_margin"]
    instance = state.instance(REGION)
    params = PlanSettings(region_id=REGION, margin=3.0).solve_params()
    everything = list(range(len(instance.treatments)))
    nearest = nearest_limit(instance, params, everything, "margin", 3.0, 0.0, 2)
    assert diagnosed <= nearest <= diagnosed + 0.01 + 1e-9
    assert _solve(client, margin=nearest)["status"] in COMPLETE
    assert _solve(client, margin=round(nearest + 0.01, 2))["status"] not in COMPLETE


def test_reuse_info_counts_treatments_of_bundled_sub_problems(state: AppState) -> None:
    """A sub-problem of several (bundled) treatments counts each; the words match the counts."""
    from herschik.optimiser.whatif import StepReport
    from herschik.scenarios.app.views import reuse_info

    instance = state.instance(REGION)
    ids = list(instance.treatment_ids)
    actions = {",".join(ids[:2]): "resolved", ids[2]: "still_infeasible",
               **{t: "cached" for t in ids[3:5]}, **{t: "unchanged" for t in ids[5:]}}
    info = reuse_info(instance, StepReport(0.25, actions), first=False)
    assert info["counts"] == {"unchanged": len(ids) - 5, "cached": 2, "resolved": 2,
                              "still_infeasible": 1}
    assert info["text"] == (f"re-used {len(ids) - 3} of {len(ids)} treatments, solved 2 again, "
                            "1 infeasible as before (2 re-used from earlier plans of this "
                            "session)")
    assert len(info["details"]) == len(ids) and info["details"][0].endswith(": solved")
    every = reuse_info(instance, StepReport(1.0, {t: "resolved" for t in ids}), first=False)
    assert every["text"] == f"solved all {len(ids)} treatments again (the change touches every one)"


# --- odds of meeting the norm (issue 25) -------------------------------------------------------
def test_every_kept_hospital_shows_its_odds(default_plan: dict) -> None:
    """The table and popups show each kept hospital's odds: the exact Poisson probability of
    its volume after reaching its norm; empty where it does not keep the treatment or there is
    no norm."""
    from scipy.stats import poisson

    rows = default_plan["hospitals"]
    kept = [r for r in rows if r["norm"] is not None and r["status"] in ("kept", "gained")]
    assert kept
    for r in kept:
        expected = poisson.sf(math.ceil(r["norm"]) - 1, r["volume_after"])
        assert r["p_meet_norm_1y"] == pytest.approx(expected, abs=2e-6)
        assert r["p_meet_norm_period"] == r["p_meet_norm_1y"]  # a period of one year
    for r in rows:
        if r["status"] == "lost" or r["norm"] is None:
            assert r["p_meet_norm_1y"] is None


def test_a_confidence_setting_plans_by_the_odds(client: TestClient, default_plan: dict) -> None:
    plan = _solve(client, default_plan["id"], norm_confidence=0.7)["plan"]
    assert plan["settings"]["norm_confidence"] == 0.7
    assert plan["verification"]["violations"] == []
    # the small-region rule's treatments (whole demand below the norm) cannot meet it anywhere
    per = plan["kpis"]["per_treatment"]
    waived = {r["intervention_id"] for r in plan["hospitals"]
              if r["norm"] is not None and per[r["intervention_id"]]["patients"] < r["norm"]}
    odds = [r["p_meet_norm_1y"] for r in plan["hospitals"]
            if r["norm"] is not None and r["status"] in ("kept", "gained")
            and r["intervention_id"] not in waived]
    assert odds and min(odds) >= 0.7 - 1e-6
    # as strict as a margin: never more providers than with margin 0
    after = sum(plan["kpis"]["providers_after"].values())
    assert after <= sum(default_plan["kpis"]["providers_after"].values())


def test_confidence_and_margin_together_are_refused(client: TestClient) -> None:
    response = client.post("/api/solve", json={"settings": {
        "region_id": REGION, "margin": 0.1, "norm_confidence": 0.9}})
    assert response.status_code == 422
    assert "confidence replaces the margin" in response.text


def test_an_unreachable_confidence_explains_and_suggests_a_lower_one(
        client: TestClient, default_plan: dict) -> None:
    """Midden has 28.1 endoscopic resections a year against a norm of 25: one hospital with all
    of them meets it in ~74 % of years, so 80 % is out of reach; the app says so in those
    terms and offers the largest confidence that is feasible."""
    from scipy.stats import poisson

    result = _solve(client, default_plan["id"], norm_confidence=0.8)
    info = _no_plan_info(result)
    [endoscopic] = info["treatments"]
    assert endoscopic["id"] == "og_endoscopic"
    assert "at 80 % confidence a norm of 25 needs" in endoscopic["reasons"][0]
    fix = next(s for s in info["suggestions"] if "confidence" in s["text"])
    best = poisson.sf(24, 28.1)
    assert best - 0.011 <= fix["settings"]["norm_confidence"] <= best
    fixed = client.post("/api/solve", json={"settings": fix["settings"]}).json()
    assert fixed["status"] in ("optimal", "feasible")


def test_exported_toml_keeps_the_confidence(tmp_path: Path) -> None:
    from herschik.scenarios.app.export import scenario_toml
    from herschik.scenarios.scenario.file import load_scenario

    settings = PlanSettings(region_id=REGION, norm_confidence=0.7)
    path = tmp_path / "plan.toml"
    path.write_text(scenario_toml("plan", settings, settings.solve_params(), "herschik solve"))
    [run] = load_scenario(path).expand()
    assert run.params == settings.solve_params() and run.params.norm_confidence == 0.7


# --- another web page cannot drive the app (issue 27 #5) ------------------------------------


def test_the_page_carries_the_session_token(client: TestClient, state: AppState) -> None:
    page = client.get("/")
    assert f'<meta name="herschik-token" content="{state.token}">' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert len(state.token) >= 40


@pytest.mark.faults
def test_state_changing_requests_need_the_token_and_json(
    state: AppState, default_plan: dict, out_dir: Path
) -> None:
    bare = TestClient(create_app(state, allowed_hosts=["testserver"]))
    before = sorted(p.name for p in out_dir.iterdir())
    plan_id = default_plan["id"]
    settings = {"settings": {"region_id": REGION}}
    # what a cross-site <form method=post> sends: no token, a form content type, an empty body
    for headers in ({}, {"content-type": "application/x-www-form-urlencoded"},
                    {"content-type": "text/plain"}, {"content-type": "application/json"},
                    {TOKEN_HEADER: "guessed", "content-type": "application/json"}):
        for url, body in ((f"/api/plans/{plan_id}/export", b""), ("/api/solve", b"")):
            response = bare.post(url, content=body, headers=headers)
            assert response.status_code == 403, (url, headers, response.text)
    # the token, but no JSON content type: refused also for an empty body
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        headers = {TOKEN_HEADER: state.token}
        if content_type:
            headers["content-type"] = content_type
        response = bare.post(f"/api/plans/{plan_id}/export", content=b"", headers=headers)
        assert response.status_code == 400 and "application/json" in response.json()["error"]
    assert bare.post("/api/solve", json=settings,
                     headers={TOKEN_HEADER: state.token}).status_code == 200
    assert sorted(p.name for p in out_dir.iterdir()) == before  # nothing exported


@pytest.mark.faults
def test_body_limit_is_enforced_while_reading(client: TestClient) -> None:
    import asyncio

    from herschik.scenarios.app.server import TooLarge, _read_limited
    from starlette.requests import Request

    chunk = b" " * 65536
    received: list[int] = []

    async def receive() -> dict[str, typing.Any]:  # 640 MB if it were read whole
        received.append(1)
        return {"type": "http.request", "body": chunk, "more_body": len(received) < 10_000}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(TooLarge):
        asyncio.run(_read_limited(request))
    assert len(received) * len(chunk) <= MAX_BODY_BYTES + len(chunk)  # stopped at the limit
    response = client.post("/api/solve", content=b" " * (MAX_BODY_BYTES + 1),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and "bytes" in response.json()["error"]


@pytest.mark.faults
def test_deeply_nested_json_is_a_400(client: TestClient) -> None:
    for depth in (50, 100_000):
        body = b'{"settings": ' + b"[" * depth + b"]" * depth + b"}"
        response = client.post("/api/solve", content=body,
                               headers={"content-type": "application/json"})
        assert response.status_code == 400, depth
        assert "nested" in response.json()["error"]


@pytest.mark.faults
def test_exports_are_rate_limited(
    state: AppState, default_plan: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(state, "export", lambda plan_id: calls.append(plan_id) or {"ok": True})
    limited = TestClient(create_app(state, allowed_hosts=["testserver"]),
                         headers={TOKEN_HEADER: state.token})
    url = f"/api/plans/{default_plan['id']}/export"
    codes = [limited.post(url, json={}).status_code for _ in range(MAX_EXPORTS_PER_MINUTE + 2)]
    assert codes == [200] * MAX_EXPORTS_PER_MINUTE + [429, 429]
    assert len(calls) == MAX_EXPORTS_PER_MINUTE


def test_password_is_required_of_every_request_when_remote(state: AppState) -> None:
    import base64

    app = create_app(state, allowed_hosts=["testserver"], password="a-long-enough-secret")
    anonymous = TestClient(app)
    assert anonymous.get("/api/meta").status_code == 401
    assert anonymous.get("/").headers["www-authenticate"].startswith("Basic")
    wrong = base64.b64encode(b"planner:wrong").decode()
    assert anonymous.get("/api/meta", headers={"authorization": f"Basic {wrong}"}
                         ).status_code == 401
    right = base64.b64encode(b"planner:a-long-enough-secret").decode()
    assert anonymous.get("/api/meta", headers={"authorization": f"Basic {right}"}
                         ).status_code == 200


def test_remote_host_keeps_a_host_allow_list() -> None:
    hosts = allowed_hosts_for("0.0.0.0")
    assert "127.0.0.1" in hosts and "localhost" in hosts
    assert "0.0.0.0" not in hosts and "*" not in hosts
    assert "192.0.2.7" in allowed_hosts_for("192.0.2.7")


@pytest.mark.faults
@pytest.mark.parametrize("token", [None, "short"])
def test_remote_host_without_a_token_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], token: str | None
) -> None:
    from herschik.scenarios.cli.main import main

    argv = ["app", "--host", "0.0.0.0", "--port", "0", "--out", str(tmp_path / "plans")]
    assert main(argv + (["--token", token] if token else [])) == 2
    err = capsys.readouterr().err
    assert "--token" in err and len(err.strip().splitlines()) == 1


def test_plain_words_says_a_name_once() -> None:
    """A "name (id)" label becomes the name, not "name (name)" (regression, issue 24)."""
    names = {"Z107601": "Universitair Medisch Centrum Utrecht", "og_endoscopic": "Maag: ERCP"}
    assert plain_words("at Universitair Medisch Centrum Utrecht (Z107601); Maag: ERCP "
                       "(og_endoscopic): no", names) == (
        "at Universitair Medisch Centrum Utrecht; Maag: ERCP: no")


# --- the page in Dutch (issue 24 #4) ------------------------------------------------------------
def test_the_server_answers_in_the_pages_language(client: TestClient, default_plan: dict,
                                                  state: AppState) -> None:
    """With the page's language cookie set to Dutch, every text the server writes for the
    screen is Dutch: the baseline line, a plan solved earlier in English (written again,
    same numbers), a partial plan's diagnosis and its suggestions (the confidence one too),
    and the errors a planner can meet."""
    dutch = {"cookie": "herschik_lang=nl"}  # what the page's switch sets
    meta = client.get("/api/meta", headers=dutch).json()
    assert meta["language"] == "nl"
    assert meta["baseline_source"].startswith("Baseline: illustrative")  # outputs' wording
    assert meta["baseline_source_text"].startswith("Uitgangssituatie: illustratief")
    english = client.get(f"/api/plans/{default_plan['id']}").json()
    again = client.get(f"/api/plans/{default_plan['id']}", headers=dutch).json()
    assert english["reuse"]["text"].startswith("solved all 19 treatments")
    assert again["reuse"]["text"].startswith("alle 19 behandelingen berekend")
    assert again["kpis"] == english["kpis"] and [r["volume_after"] for r in again[
        "hospitals"]] == [r["volume_after"] for r in english["hospitals"]]
    response = client.post("/api/solve", headers=dutch, json={
        "settings": {"region_id": REGION, "norm_confidence": 0.85},
        "base_plan_id": default_plan["id"]})
    info = response.json()["plan"]["partial"]
    assert info["reason"].startswith("Geen plan voor 1 van de 19 behandelingen "
                                     "(Maag-slokdarmkanker: endoscopische resecties)")
    assert info["treatments"][0]["name"] == "Maag-slokdarmkanker: endoscopische resecties"
    texts = [s["text"] for s in info["suggestions"]]
    assert any(t.startswith("Verlaag de zekerheid naar ") for t in texts), texts
    assert f"Terug naar Plan {default_plan['id']}" in texts
    # shown in English later, it is written again in English
    shown = client.get(f"/api/plans/{response.json()['plan']['id']}").json()["partial"]
    assert shown["reason"].startswith("No plan for 1 of 19 treatments")
    error = client.post("/api/solve", headers=dutch,
                        json={"settings": {"region_id": "atlantis"}}).json()["error"]
    assert error == "onbekende regio 'atlantis'"


def test_solver_warnings_name_hospitals_and_treatments(client: TestClient) -> None:
    """West's endoscopic resections are below the norm in the whole region: the solver's
    warning says so with ids; the page shows names."""
    response = client.post("/api/solve", json={"settings": {"region_id": "west"}})
    [warning] = response.json()["plan"]["warnings"]
    assert "Leids Universitair Medisch Centrum" in warning and "endoscopic resections" in warning
    assert "og_endoscopic" not in warning and "(Z1" not in warning


def test_plan_settings_are_solve_params_own_fields() -> None:
    """The browser's settings are SolveParams' fields (type, limits, description, default),
    not a copy that can drift: only the page's narrower margin range is added."""
    from herschik.optimiser.params import MAX_MINUTES
    from herschik.scenarios.app.models import APP_FIELDS

    for name in APP_FIELDS:
        mine, theirs = PlanSettings.model_fields[name], SolveParams.model_fields[name]
        assert mine.description == theirs.description and mine.default == theirs.default
        assert set(theirs.metadata) <= set(mine.metadata), name
    with pytest.raises(ValueError, match="less than or equal to 1440"):
        PlanSettings(region_id=REGION, max_travel=MAX_MINUTES + 1)
    with pytest.raises(ValueError, match="less than or equal to 5"):
        PlanSettings(region_id=REGION, margin=5.5)  # SolveParams allows 100; the page 500 %
    settings = PlanSettings(region_id=REGION, margin=0.1, max_loss_share=0.2, objective=None)
    params = settings.solve_params()
    assert params == SolveParams(margin=0.1, max_loss_share=0.2)
    assert list(settings.model_dump()) == ["region_id", *APP_FIELDS, "force_keep",
                                           "force_close"]


def test_a_plans_description_says_the_objective_in_words() -> None:
    """The plan list and the infeasible banner describe settings in the page's language; the
    objective was its id ("objective travel") in either language."""
    from herschik.scenarios.app.models import describe

    from herschik.i18n import use_language

    settings = PlanSettings(region_id=REGION, margin=0.1, objective="travel")
    assert describe(settings) == "midden, margin 10%, objective least total travel"
    with use_language("nl"):
        assert describe(settings) == "midden, marge 10%, doel minste totale reistijd"
