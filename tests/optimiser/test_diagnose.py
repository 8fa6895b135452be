"""Infeasible scenarios: plain-words reasons and the smallest change that makes them feasible."""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser.diagnose import diagnose, is_feasible
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.synthetic import synthetic_instance


@pytest.fixture(scope="module")
def region() -> Instance:
    return synthetic_instance(60, 6, 3, seed=2)


def test_impossible_margin_names_the_norm_and_the_best_site(region: Instance) -> None:
    params = SolveParams(margin=20.0)
    sol = solve(region, params)
    assert sol.status == "infeasible" and sol.flow is None
    diag = sol.diagnosis
    assert "required" in diag["reason"] and "largest reachable demand" in diag["reason"]
    tid, info = next(iter(diag["no_site_reaches_norm"].items()))
    t = region.treatment_ids.index(tid)
    assert info["required"] == pytest.approx(region.treatments[t].norm * 21.0)
    # no site can reach more than all the demand of the treatment
    assert info["largest_reachable_volume"] <= region.demand[:, t].sum() + 1e-6
    m = diag["smallest_feasible_margin"]
    assert m is not None and 0 <= m < 20.0
    infeasible = [region.treatment_ids.index(x) for x in diag["infeasible_treatments"]]
    assert is_feasible(region, params.model_copy(update={"margin": m}), infeasible)
    assert not is_feasible(region, params.model_copy(update={"margin": m + 0.02}), infeasible)
    assert f"{m:.2f}" in diag["reason"]


def test_tight_travel_limit_lists_areas_and_smallest_limit(region: Instance) -> None:
    params = SolveParams(max_travel=12.0, remote_areas="strict")
    sol = solve(region, params)
    assert sol.status == "infeasible"
    diag = sol.diagnosis
    out = diag["areas_out_of_reach"]
    tid, info = next(iter(out.items()))
    t = region.treatment_ids.index(tid)
    for area in info["areas"]:
        a = region.area_ids.index(area["area_id"])
        providers = region.baseline_volume[:, t] > 0
        nearest = region.travel_min[a, providers].min()
        assert nearest > 12.0
        assert area["nearest_site_minutes"] == pytest.approx(nearest, abs=0.05)
    limit = diag["smallest_feasible_max_travel"]
    assert limit is not None and limit > 12.0
    assert solve(region, params.model_copy(update={"max_travel": limit})).feasible
    assert not solve(region, params.model_copy(update={"max_travel": limit - 1})).feasible
    assert "min" in diag["reason"]


def test_forced_keep_below_norm(region: Instance) -> None:
    t = 0
    smallest = int(np.argmin(np.where(region.baseline_volume[:, t] > 0,
                                      region.baseline_volume[:, t], np.inf)))
    params = SolveParams(max_travel=float(np.sort(region.travel_min[:, smallest])[2]) + 0.01,
                         force_keep=[{"site_id": region.site_ids[smallest],
                                      "intervention_id": region.treatment_ids[t]}])
    diag = diagnose(region, params.model_copy(update={"margin": 50.0}), [region.treatment_ids[t]])
    conflicts = diag["forced_keep_conflicts"]
    assert conflicts[0]["site_id"] == region.site_ids[smallest]
    assert "forced to keep" in diag["reason"]


def test_loss_share_conflict_is_explained(region: Instance) -> None:
    # closing everything at a site while it may lose at most 10% is a plain contradiction
    params = SolveParams(max_loss_share=0.1, force_close=[{"site_id": region.site_ids[0]}])
    sol = solve(region, params)
    assert sol.status == "infeasible"
    assert sol.diagnosis["loss_share_conflicts"][0]["site_id"] == region.site_ids[0]
    assert region.site_ids[0] in sol.diagnosis["reason"]


def test_diagnosis_reason_is_one_plain_sentence(region: Instance) -> None:
    for params in (SolveParams(margin=20.0), SolveParams(max_travel=5.0),
                   SolveParams(max_extra_travel=0.0, margin=3.0)):
        sol = solve(region, params)
        assert sol.status == "infeasible"
        reason = sol.diagnosis["reason"]
        assert reason.startswith("The scenario is infeasible")
        assert "\n" not in reason and len(reason) < 400


def test_remote_areas_may_reach_their_nearest_provider(region: Instance) -> None:
    """Under the default rule, areas beyond the limit today keep their nearest provider."""
    strict = solve(region, SolveParams(max_travel=12.0, remote_areas="strict"))
    lenient = solve(region, SolveParams(max_travel=12.0, margin=0.0))
    assert strict.status == "infeasible"
    if lenient.feasible:
        # nobody travels further than max(12, their nearest current provider)
        for t in range(len(region.treatments)):
            providers = region.baseline_volume[:, t] > 0
            nearest = region.travel_min[:, providers].min(axis=1)
            used = lenient.flow[:, :, t] > 1e-9
            limit = np.maximum(12.0, nearest)[:, None]
            assert not np.any(used & (region.travel_min > limit + 1e-6))
    else:
        assert "areas_out_of_reach" not in lenient.diagnosis


def test_coupled_infeasible_scenario_names_only_the_treatment_infeasible_on_its_own(
        region: Instance) -> None:
    """Regression (issue 14): max_loss_share joins every treatment into one model; the
    diagnosis used to list all of them although only one is infeasible by itself."""
    bad = region.treatment_ids[1]
    params = SolveParams(max_loss_share=0.95, margin_by_treatment={bad: 50.0})
    sol = solve(region, params)
    assert sol.status == "infeasible"
    diag = sol.diagnosis
    assert diag["infeasible_treatments"] == [bad]
    assert diag["coupled_treatments"] == list(region.treatment_ids)
    assert diag["infeasible_only_together"] is False
    assert region.treatments[1].name in diag["reason"]  # names beside codes
    for other in region.treatment_ids:
        if other != bad:
            assert f"({other})" not in diag["reason"]
