"""Why a hospital loses a treatment, in `herschik app`: asked for per hospital, never with a plan.

A plan answers without reasons (each reason is a re-solve: seconds in a large region); the page
asks for one hospital's when the planner opens it. The answer must be the CLI's sentence for
that role (hospital_changes.csv), worked out once per plan and hospital.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from herschik.geo.dataset import load_dataset
from herschik.optimiser import reasons as optimiser_reasons
from herschik.scenarios import run as scenarios_run
from herschik.scenarios.app import reasons as app_reasons
from herschik.scenarios.app.models import PlanSettings
from herschik.scenarios.app.server import TOKEN_HEADER, create_app
from herschik.scenarios.app.session import AppState
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.run import solve_verified
from starlette.testclient import TestClient

REGION = "midden"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> AppState:
    return AppState(load_dataset("municipalities"), out_dir=tmp_path_factory.mktemp("out"),
                    source_args=["--areas", "municipalities"], areas_label="municipalities",
                    first_region=REGION)


@pytest.fixture(scope="module")
def client(state: AppState) -> TestClient:
    return TestClient(create_app(state, allowed_hosts=["testserver"]),
                      headers={TOKEN_HEADER: state.token})


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, typing.Any]]:
    """Every call of optimiser.reasons.lost_role_reasons, wherever the app or the CLI's
    verified run looks it up: (caller, site_ids)."""
    seen: list[tuple[str, typing.Any]] = []
    original = optimiser_reasons.lost_role_reasons

    def counting(where: str) -> typing.Any:
        def call(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
            seen.append((where, kwargs.get("site_ids")))
            return original(*args, **kwargs)
        return call

    monkeypatch.setattr(scenarios_run, "lost_role_reasons", counting("verified_result"))
    monkeypatch.setattr(app_reasons, "lost_role_reasons", counting("app"))
    return seen


def _solve(client: TestClient, base: int | None = None, headers: dict | None = None,
           **settings: typing.Any) -> dict:
    response = client.post("/api/solve", headers=headers or {}, json={
        "settings": {"region_id": REGION, **settings}, "base_plan_id": base})
    assert response.status_code == 200, response.text
    return response.json()


def _reasons(client: TestClient, plan_id: int, site: str, headers: dict | None = None
             ) -> dict:
    response = client.get(f"/api/plans/{plan_id}/hospitals/{site}/reasons",
                          headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def test_plans_are_answered_without_working_out_any_reason(
    client: TestClient, state: AppState, calls: list
) -> None:
    """Changes of every kind (the first plan, a margin, a closure, a partial plan, an
    infeasible change, a plan shown again in another language, a comparison): not one call
    of lost_role_reasons, however many hospitals lose a treatment."""
    first = _solve(client)["plan"]
    kept = next(r for r in first["hospitals"] if r["status"] == "kept" and r["norm"])
    closed = _solve(client, first["id"], force_close=[
        {"site_id": kept["site_id"], "intervention_id": kept["intervention_id"]}])["plan"]
    margin = _solve(client, closed["id"], margin=0.1)["plan"]
    partial = _solve(client, margin["id"], margin=0.2)
    assert partial["status"] == "partially_infeasible"
    closed_all = [{"site_id": s, "intervention_id": "*"} for s in state.instance(REGION).site_ids]
    assert _solve(client, margin["id"], force_close=closed_all)["status"] == "infeasible"
    client.get(f"/api/plans/{closed['id']}", headers={"cookie": "herschik_lang=nl"})
    client.get(f"/api/compare?a={first['id']}&b={closed['id']}")
    lost = [r for p in (first, closed, margin, partial["plan"]) for r in p["hospitals"]
            if r["has_reason"]]
    assert len(lost) >= 10 and all("reason" not in r for r in lost)
    assert calls == []


def test_a_hospitals_reasons_are_the_clis_worked_out_once_per_plan(
    client: TestClient, state: AppState, calls: list
) -> None:
    """A scenario with a margin and a closure: every hospital that loses a treatment, asked
    for, says what the CLI's hospital_changes.csv says (the same function on a separately
    built instance, so nothing is shared with the app's memo), with the CLI's numbers; asked
    again (also in Dutch) nothing is re-solved, and the Dutch words are the Dutch CLI's."""
    first = _solve(client)["plan"]
    kept = next(r for r in first["hospitals"] if r["status"] == "kept" and r["norm"])
    pair = {"site_id": kept["site_id"], "intervention_id": kept["intervention_id"]}
    plan = _solve(client, first["id"], margin=0.1, force_close=[pair])["plan"]
    calls.clear()
    fresh = build_instance(state.dataset, REGION)
    params = PlanSettings(**plan["settings"]).solve_params()
    cli = solve_verified(fresh, params).hospital_changes
    assert cli is not None
    cli = cli.set_index(["site_id", "intervention_id"])
    sites = sorted({r["site_id"] for r in plan["hospitals"] if r["has_reason"]})
    assert len(sites) >= 3
    calls.clear()
    seen = set()
    for site in sites:
        answer = _reasons(client, plan["id"], site)
        assert answer["site_id"] == site and answer["plan_id"] == plan["id"]
        for why in answer["reasons"]:
            row = cli.loc[(site, why["intervention_id"])]
            assert why["reason"] == row["reason"]
            assert why["keep_feasible"] == bool(row["keep_feasible"])
            for key in ("keep_cost_moves", "keep_cost_patient_min"):
                assert why[key] == pytest.approx(row[key], nan_ok=True) or (
                    why[key] is None and row[key] != row[key])
            seen.add((site, why["intervention_id"]))
    lost = {(r["site_id"], r["intervention_id"]) for r in plan["hospitals"] if r["has_reason"]}
    explained = {key for key, row in cli.iterrows() if isinstance(row["reason"], str)
                 and row["reason"]}
    assert seen == lost == explained
    closed_reason = _reasons(client, plan["id"], pair["site_id"])["reasons"]
    assert any(w["intervention_id"] == pair["intervention_id"]
               and "closed_by_scenario" in w["codes"] for w in closed_reason)
    # one computation per hospital, each for that hospital only
    assert calls == [("app", [site]) for site in sites]
    dutch = _reasons(client, plan["id"], sites[0], headers={"cookie": "herschik_lang=nl"})
    assert len(calls) == len(sites)
    from herschik.i18n import use_language

    with use_language("nl"):
        cli_nl = solve_verified(build_instance(state.dataset, REGION), params).hospital_changes
    cli_nl = cli_nl.set_index(["site_id", "intervention_id"])
    for why in dutch["reasons"]:
        assert why["reason"] == cli_nl.loc[(sites[0], why["intervention_id"]), "reason"]
        assert why["reason"] != cli.loc[(sites[0], why["intervention_id"]), "reason"]


def test_an_export_works_out_the_reasons_it_has_not_yet(
    client: TestClient, state: AppState, calls: list
) -> None:
    """Exporting a plan whose hospitals were never opened: the reasons of every hospital are
    worked out then (hospital_changes.csv agrees with the CLI's byte for byte); a hospital
    already asked for is not worked out again."""
    first = _solve(client)["plan"]
    plan = _solve(client, first["id"], max_travel=90)["plan"]
    sites = sorted({r["site_id"] for r in plan["hospitals"] if r["has_reason"]})
    assert len(sites) >= 2
    calls.clear()
    _reasons(client, plan["id"], sites[0])
    exported = client.post(f"/api/plans/{plan['id']}/export", json={}).json()
    assert exported["exit_code"] == 0 and exported["same_as_app"], exported["differences"]
    assert [where for where, _ in calls] == ["app", "app"]
    assert calls[1][1] == sorted(set(state.plan(plan["id"]).run.instance.site_ids)
                                 - {sites[0]})
    result = Path(state.out_dir) / exported["folder"] / "result"
    assert "keeping it" in (result / "hospital_changes.csv").read_text()


def test_unknown_hospital_or_plan(client: TestClient) -> None:
    plan = _solve(client)["plan"]
    response = client.get(f"/api/plans/{plan['id']}/hospitals/nowhere/reasons")
    assert response.status_code == 400 and "not a hospital of region" in response.json()["error"]
    assert client.get("/api/plans/9999/hospitals/x/reasons").status_code == 404
    response = client.get(f"/api/plans/{plan['id']}/hospitals/x/reasons?path=/etc")
    assert response.status_code == 422
