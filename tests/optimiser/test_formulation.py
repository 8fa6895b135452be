"""Behaviour of the single formulation (optimiser/formulation.py) and its back-ends."""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser.backends import solve_highs, solve_pulp
from herschik.optimiser.formulation import build_arrays, candidate_matrix, travel_limit
from herschik.optimiser.instance import Instance, Site, Treatment
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve, treatment_components
from herschik.optimiser.synthetic import synthetic_instance


def _verify(sol, inst, params):
    from herschik.optimiser.verify import verify

    return verify(sol, inst, params)


@pytest.fixture(scope="module")
def region() -> Instance:
    return synthetic_instance(50, 6, 4, seed=3)


@pytest.mark.parametrize("single_sourcing", [False, True])
def test_the_three_linkings_give_the_same_optimum(region: Instance, single_sourcing: bool
                                                  ) -> None:
    params = SolveParams(margin=0.2, mip_gap=1e-9, single_sourcing=single_sourcing)
    for t in range(len(region.treatments)):
        models = {k: build_arrays(region, params, [t], linking=k)
                  for k in ("aggregated", "nearest", "per_pair")}
        rows = {k: m.n_rows for k, m in models.items()}
        assert rows["aggregated"] <= rows["nearest"] <= rows["per_pair"] + models["per_pair"].n_y
        results = {k: solve_highs(m, mip_gap=1e-9) for k, m in models.items()}
        assert {r.status for r in results.values()} == {"optimal"}
        ref = results["per_pair"].objective
        for r in results.values():
            assert r.objective == pytest.approx(ref, rel=1e-7, abs=1e-6)


def test_nearest_linking_rows_tie_each_area_to_its_nearest_site(region: Instance) -> None:
    params = SolveParams()
    for t in range(len(region.treatments)):
        arrays = build_arrays(region, params, [t])  # default: nearest
        agg = build_arrays(region, params, [t], linking="aggregated")
        start, stop = arrays.row_families["link_pair"]
        areas_with_y = {int(a) for a, s in zip(arrays.x_area, arrays.x_site, strict=True)
                        if arrays.y_site.size and s in set(arrays.y_site.tolist())}
        assert stop - start == len(areas_with_y)  # one row per area with a keep decision
        assert arrays.n_rows == agg.n_rows + (stop - start)
        block = arrays.A[start:stop].tocoo()
        for r in range(stop - start):
            cols = block.col[block.row == r]
            x_col = int(cols[cols < arrays.n_x][0])
            a, s = arrays.x_area[x_col], arrays.x_site[x_col]
            allowed = arrays.x_site[arrays.x_area == a]
            assert region.travel_min[a, s] == region.travel_min[a, allowed].min()


def test_flow_variables_only_for_pairs_within_limits(region: Instance) -> None:
    params = SolveParams(max_travel=30.0, max_extra_travel=10.0, remote_areas="strict")
    arrays = build_arrays(region, params)
    minutes = region.travel_min[arrays.x_area, arrays.x_site]
    assert np.all(minutes <= 30.0 + 1e-9)
    # default rule: the limit of an area is at least its nearest current provider
    lenient = build_arrays(region, params.model_copy(update={"remote_areas": "nearest_provider"}))
    assert lenient.n_x >= arrays.n_x
    limit = travel_limit(region, params.model_copy(update={"remote_areas": "nearest_provider"}))
    assert np.all(
        region.travel_min[lenient.x_area, lenient.x_site]
        <= limit[lenient.x_area, lenient.x_treat] + 1e-9
    )
    base = region.baseline_travel()[arrays.x_area, arrays.x_treat]
    assert np.all(np.isnan(base) | (minutes - base <= 10.0 + 1e-9))
    assert np.all(region.demand[arrays.x_area, arrays.x_treat] > 0)
    cand = candidate_matrix(region, params)
    assert np.all(cand[arrays.x_site, arrays.x_treat])
    # and exactly those: count the allowed pairs independently
    expected = 0
    base_all = region.baseline_travel()
    for t in range(len(region.treatments)):
        for a in range(len(region.area_ids)):
            for s in range(len(region.sites)):
                m = region.travel_min[a, s]
                if region.demand[a, t] <= 0 or not cand[s, t] or m > 30.0:
                    continue
                if not np.isnan(base_all[a, t]) and m - base_all[a, t] > 10.0:
                    continue
                expected += 1
    assert arrays.n_x == expected
    # bounds: x <= d as a bound, not a row
    assert np.allclose(arrays.col_upper[arrays.x_slice()],
                       region.demand[arrays.x_area, arrays.x_treat])


def test_one_y_per_candidate_of_treatments_with_norm(region: Instance) -> None:
    params = SolveParams()
    arrays = build_arrays(region, params)
    cand = candidate_matrix(region, params)
    norms = region.norm_matrix()
    assert arrays.n_y == int((cand & ~np.isnan(norms)).sum())
    assert np.all(arrays.integrality[arrays.y_slice()] == 1)
    assert np.all(arrays.integrality[arrays.x_slice()] == 0)


def test_bundles_are_kept_or_lost_together(region: Instance) -> None:
    params = SolveParams(margin=0.5, bundles=[["T00", "T01"]], allow_new_providers=True)
    comps, why = treatment_components(region, params)
    assert [0, 1] in comps and "bundles" in why
    sol = solve(region, params)
    assert sol.status in ("optimal", "feasible")
    assert np.array_equal(sol.keep[:, 0], sol.keep[:, 1])
    assert _verify(sol, region, params) == []


def test_bundle_with_partial_candidate_site_keeps_none(region: Instance) -> None:
    # close T00 at the biggest T01 provider: bundled, it must lose T01 as well
    s = int(np.argmax(region.baseline_volume[:, 1]))
    params = SolveParams(bundles=[["T00", "T01"]],
                         force_close=[{"site_id": region.site_ids[s], "intervention_id": "T00"}])
    sol = solve(region, params)
    assert sol.feasible
    assert not sol.keep[s, 0] and not sol.keep[s, 1]


def test_max_loss_share_is_honoured_and_couples_everything(region: Instance) -> None:
    params = SolveParams(margin=0.5, max_loss_share=0.3)
    comps, why = treatment_components(region, params)
    assert comps == [list(range(len(region.treatments)))]
    assert "max_loss_share" in why
    sol = solve(region, params)
    assert sol.feasible
    before = region.baseline_volume.sum(axis=1)
    after = sol.flow.sum(axis=(0, 2))
    assert np.all(after >= 0.7 * before - 1e-6)
    assert _verify(sol, region, params) == []
    free = solve(region, SolveParams(margin=0.5))
    assert sol.objective >= free.objective - 1e-6  # a constraint never improves the optimum


def test_capacity_and_force_keep(region: Instance) -> None:
    # feasible, and both caps bind: S00 would treat 12 patients of T00 and 6 of T01 without them
    params = SolveParams(capacity_factor=1.6, capacity=[{"site_id": "S00", "max_patients": 5}],
                         force_keep=[{"site_id": "S01", "intervention_id": "T00"}])
    free = solve(region, SolveParams())
    assert free.feasible and free.flow.sum(axis=0)[0].max() > 5 + 1e-6
    sol = solve(region, params)
    assert sol.feasible, sol.diagnosis
    vol = sol.flow.sum(axis=0)
    assert np.all(vol <= 1.6 * region.baseline_volume + 1e-6)
    assert np.all(vol[0] <= 5 + 1e-6) and vol[0].max() == pytest.approx(5.0, abs=1e-6)
    assert sol.keep[1, 0]
    assert _verify(sol, region, params) == []


@pytest.mark.parametrize("objective", ["planner", "travel", "moved", "providers"])
def test_no_norm_treatment_keeps_todays_flows(region: Instance, objective: str) -> None:
    """Regression (issue 14): without a norm nothing justifies a move, whatever the objective
    (travel used to re-route everyone to the nearest provider and drop providers)."""
    t = next(i for i, tr in enumerate(region.treatments) if tr.norm is None)
    sol = solve(region, SolveParams(objective=objective))
    assert np.allclose(sol.flow[:, :, t], region.baseline_flow[:, :, t], atol=1e-6)
    assert np.array_equal(sol.keep[:, t], region.baseline_volume[:, t] > 0)


def test_no_norm_treatment_closure_sends_its_patients_to_the_nearest_provider(
        region: Instance) -> None:
    t = next(i for i, tr in enumerate(region.treatments) if tr.norm is None)
    closed = int(np.argmax(region.baseline_volume[:, t]))
    params = SolveParams(force_close=[{"site_id": region.site_ids[closed],
                                       "intervention_id": region.treatment_ids[t]}])
    sol = solve(region, params)
    cand = (region.baseline_volume[:, t] > 0)
    cand[closed] = False
    nearest = np.where(cand[None, :], region.travel_min, np.inf).argmin(axis=1)
    for a in np.nonzero(region.baseline_flow[:, closed, t] > 0)[0]:
        others = region.baseline_flow[a, :, t].copy()
        others[closed] = 0.0
        expected = others.copy()
        expected[nearest[a]] += region.baseline_flow[a, closed, t]
        assert np.allclose(sol.flow[a, :, t], expected, atol=1e-6)
    untouched = region.baseline_flow[:, closed, t] == 0
    assert np.allclose(sol.flow[untouched, :, t], region.baseline_flow[untouched, :, t],
                       atol=1e-6)


def test_single_sourcing_sends_each_area_to_one_site(region: Instance) -> None:
    params = SolveParams(single_sourcing=True, margin=0.1)
    sol = solve(region, params)
    assert sol.feasible
    used = (sol.flow > 1e-6).sum(axis=1)
    assert np.all(used[region.demand > 0] == 1)
    assert _verify(sol, region, params) == []


def test_highs_and_cbc_agree_on_same_arrays(region: Instance) -> None:
    arrays = build_arrays(region, SolveParams(margin=0.3, mip_gap=1e-9, objective="travel"), [0])
    h = solve_highs(arrays, mip_gap=1e-9)
    c = solve_pulp(arrays, "cbc", mip_gap=1e-9)
    assert h.status == c.status == "optimal"
    assert h.objective == pytest.approx(c.objective, rel=1e-6)


def test_tiered_norm_depends_on_site_role() -> None:
    inst = synthetic_instance(40, 6, 1, seed=4, norms=[5.0], tiered=True)
    arrays = build_arrays(inst, SolveParams(margin=0.0))
    lo, hi = arrays.row_families["min_volume"]
    req = -arrays.A[lo:hi][:, arrays.y_slice()].toarray().diagonal()
    roles = [inst.sites[s].role for s in arrays.y_site]
    expected = [{"HHOC": 7.5, "PP": 5.0, "PPR": 3.0}[r] for r in roles]
    assert np.allclose(req, expected)


def test_time_limit_gives_feasible_with_gap() -> None:
    # hard enough that none of the limits below proves optimality (~50 % gap after 10 s)
    inst = synthetic_instance(700, 20, 1, seed=11, region_km=150, norms=[20.0])
    params = SolveParams(single_sourcing=True, mip_gap=0.0, objective="travel")
    statuses = []
    for limit in (0.5, 1.0, 2.0, 4.0):
        sol = solve(inst, params.model_copy(update={"time_limit": limit}))
        statuses.append(sol.status)
        if sol.status == "feasible":
            assert sol.mip_gap is not None and sol.mip_gap > 0
            assert sol.subproblems[0]["status"] == "feasible"
            assert _verify(sol, inst, params) == []
            return
        assert sol.status != "infeasible"  # a time-out is never reported as infeasible
        if sol.status == "time_limit_no_solution":  # no incumbent yet: says so, and why
            assert sol.diagnosis["time_limit_reached"]
    pytest.fail(f"never stopped on the time limit with an incumbent: {statuses}")


def test_force_keep_and_close_same_pair_is_infeasible(region: Instance) -> None:
    params = SolveParams(force_keep=[{"site_id": "S00", "intervention_id": "T00"}],
                         force_close=[{"site_id": "S00"}])
    sol = solve(region, params)
    # T00 has no plan; the other treatments are solved (a partial plan)
    assert sol.status == "partially_infeasible"
    assert sol.diagnosis["infeasible_treatments"] == ["T00"]
    assert "forced" in sol.diagnosis["reason"]
    assert solve(region, params, partial=False).status == "infeasible"


def test_national_size_model_is_sparse() -> None:
    # 3,340 areas x 100 sites x 19 treatments with a 60 min limit, random but realistic arrays
    rng = np.random.default_rng(0)
    n_a, n_s, n_t = 3340, 100, 19
    axy = rng.uniform(0, 250_000, (n_a, 2))
    sxy = rng.uniform(0, 250_000, (n_s, 2))
    travel = 5 + np.linalg.norm(axy[:, None] - sxy[None], axis=2) / 1000 * 1.3
    demand = np.round(rng.lognormal(0, 0.8, (n_a, n_t)), 2)
    near = travel.argmin(axis=1)
    flow = np.zeros((n_a, n_s, n_t))
    flow[np.arange(n_a), near, :] = demand
    inst = Instance(
        region_id="NL", area_ids=tuple(f"a{i}" for i in range(n_a)),
        sites=tuple(Site(id=f"s{i}") for i in range(n_s)),
        treatments=tuple(Treatment(id=f"t{i}", norm=20.0) for i in range(n_t)),
        demand=demand, travel_min=travel, baseline_volume=flow.sum(axis=0), baseline_flow=flow)
    params = SolveParams(max_travel=60.0, allow_new_providers=True)
    arrays = build_arrays(inst, params)
    # sparse: only pairs within the limit (the build time is measured in benchmarks/)
    assert 400_000 < arrays.n_x < n_a * n_s * n_t
    within = travel[arrays.x_area, arrays.x_site] <= 60.0 + 1e-9
    assert within.all()


def test_default_threads_do_not_break_later_single_thread_solves(region: Instance) -> None:
    """Regression: solve_highs without threads, then with threads=1 in the same process, used
    to return "error" (HiGHS' global scheduler), so is_feasible() said 'undecided'."""
    arrays = build_arrays(region, SolveParams(objective="travel"), [0])
    assert solve_highs(arrays).status == "optimal"
    assert solve_highs(arrays, threads=1).status == "optimal"
