"""The vectorised verifier and tables (issue 23 goals 5 and 6) say what the loops said.

* every condition of the flow check is caught when a correct plan is mutated to break it,
  and the vectorised pre-selection flags exactly the flows whose per-flow words are non-empty;
* every recomputed KPI (run level and per treatment) catches a reported value that is off,
  and the vectorised displacement figures equal a patient-group loop written here;
* transfers equal the loop they replaced bit for bit; the assignments table is sorted by its
  ids as pandas sorts them, also when the ids' order is not the index order.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
from herschik.optimiser.instance import Instance
from herschik.optimiser.kpis import compute_kpis, weighted_quantile
from herschik.optimiser.params import SolveParams
from herschik.optimiser.results import assignments_table
from herschik.optimiser.rows.base import CheckContext
from herschik.optimiser.rows.checking import named_pairs
from herschik.optimiser.rows.column_families import (
    _flow_problems,
    _flows_with_problems,
    _mean_baseline_travel,
    check_flows,
)
from herschik.optimiser.solution import Solution
from herschik.optimiser.solve import solve
from herschik.optimiser.synthetic import synthetic_instance
from herschik.optimiser.tolerances import FLOW_EPS, PROVIDES_MIN
from herschik.optimiser.transfers import NO_SITE, transfers
from herschik.optimiser.verify import _displaced_groups, verify


@pytest.fixture(scope="module")
def region() -> Instance:
    return synthetic_instance(60, 7, 4, seed=11)


@pytest.fixture(scope="module")
def solved(region: Instance) -> Solution:
    sol = solve(region, SolveParams())
    assert sol.status == "optimal"
    assert verify(sol, region, SolveParams(), compute_kpis(region, sol, SolveParams())) == []
    return sol


def _context(instance: Instance, params: SolveParams, flow: np.ndarray,
             keep: np.ndarray) -> CheckContext:
    return CheckContext(instance, params, flow, keep.astype(bool),
                        [instance.area_label(a) for a in range(len(instance.area_ids))],
                        [instance.site_label(s) for s in range(len(instance.sites))])


def _loop_flags(ctx: CheckContext) -> np.ndarray:
    """The per-flow check on every used flow: whether it has words (the loop of before)."""
    pairs = {"keep": named_pairs(ctx.params.force_keep, ctx.instance),
             "close": named_pairs(ctx.params.force_close, ctx.instance)}
    baseline_travel = _mean_baseline_travel(ctx)
    nearest: dict[int, Any] = {}
    return np.array([bool(_flow_problems(ctx, int(a), int(s), int(t), baseline_travel, pairs,
                                         nearest))
                     for a, s, t in zip(*np.nonzero(ctx.flow > 1e-6), strict=True)], dtype=bool)


def _vector_flags(ctx: CheckContext) -> np.ndarray:
    pairs = {"keep": named_pairs(ctx.params.force_keep, ctx.instance),
             "close": named_pairs(ctx.params.force_close, ctx.instance)}
    return _flows_with_problems(ctx, *np.nonzero(ctx.flow > 1e-6),
                                _mean_baseline_travel(ctx), pairs)


def _move_an_area(region: Instance, flow: np.ndarray, t: int, s: int) -> int:
    """Send the largest area of treatment t to site s; the area's index."""
    a = int(np.argmax(region.demand[:, t]))
    flow[a, :, t] = 0.0
    flow[a, s, t] = region.demand[a, t]
    return a


def _far_site(region: Instance, a: int) -> int:
    return int(np.argmax(np.where(np.isfinite(region.travel_min[a]), region.travel_min[a], -1)))


# each: mutate (flow, keep) in place, return the parameters and a word of the message
def _no_route(region: Instance, flow: np.ndarray, keep: np.ndarray) -> tuple[Instance,
                                                                            SolveParams, str]:
    a = _move_an_area(region, flow, 0, 0)
    travel = region.travel_min.copy()
    travel[a, 0] = np.inf
    return dataclasses.replace(region, travel_min=travel), SolveParams(), "no route"


def _travel_limit(region, flow, keep):
    a = int(np.argmax(region.demand[:, 0]))
    _move_an_area(region, flow, 0, _far_site(region, a))
    limit = float(region.travel_min[a].min()) + 1.0
    return region, SolveParams(max_travel=limit, remote_areas="strict",
                               allow_new_providers=True), "exceeds the travel limit"


def _remote_area_limit(region, flow, keep):
    """nearest_provider: the limit is the nearest provider of today, when that is further."""
    a = int(np.argmax(region.demand[:, 0]))
    _move_an_area(region, flow, 0, _far_site(region, a))
    return region, SolveParams(max_travel=1.0, allow_new_providers=True), \
        "exceeds the travel limit"


def _extra_travel(region, flow, keep):
    a = int(np.argmax(region.demand[:, 0]))
    _move_an_area(region, flow, 0, _far_site(region, a))
    return region, SolveParams(max_extra_travel=0.5, allow_new_providers=True), \
        "max_extra_travel"


def _new_provider(region, flow, keep):
    s, t = (int(i[0]) for i in np.nonzero(region.baseline_volume == 0))
    _move_an_area(region, flow, t, s)
    return region, SolveParams(), "new providers are not allowed"


def _forced_closure(region, flow, keep):
    s = int(np.argmax(flow[:, :, 0].sum(axis=0)))
    return region, SolveParams(force_close=[{"site_id": region.site_ids[s],
                                             "intervention_id": region.treatment_ids[0]}]), \
        "forced to close"


FLOW_CASES = {"no route": _no_route, "travel limit": _travel_limit,
              "remote area limit": _remote_area_limit, "extra travel": _extra_travel,
              "new provider": _new_provider, "forced closure": _forced_closure}


@pytest.mark.parametrize("name", sorted(FLOW_CASES))
def test_the_flow_check_catches_each_broken_condition(region: Instance, solved: Solution,
                                                      name: str) -> None:
    flow, keep = solved.flow.copy(), solved.keep.copy()
    instance, params, word = FLOW_CASES[name](region, flow, keep)
    ctx = _context(instance, params, flow, keep)
    found = check_flows(ctx)
    assert any(word in p for p in found), found
    assert np.array_equal(_vector_flags(ctx), _loop_flags(ctx))
    broken = Solution(status="optimal", solver="test", flow=flow, keep=keep)
    assert set(found) <= set(verify(broken, instance, params))


def test_the_flow_flags_equal_the_per_flow_words_on_random_plans() -> None:
    rng = np.random.default_rng(5)
    for seed in range(12):
        inst = synthetic_instance(30, 6, 3, seed=seed)
        travel = inst.travel_min.copy()
        travel[rng.random(travel.shape) < 0.05] = np.inf  # pairs without a route
        inst = dataclasses.replace(inst, travel_min=travel)
        flow = rng.random(inst.baseline_flow.shape) * (rng.random(inst.baseline_flow.shape)
                                                       < 0.3)
        keep = flow.sum(axis=0) > 0
        site, tid = inst.site_ids[seed % 6], inst.treatment_ids[seed % 3]
        for params in (SolveParams(), SolveParams(max_travel=40.0),
                       SolveParams(max_travel=30.0, remote_areas="strict"),
                       SolveParams(max_extra_travel=5.0, allow_new_providers=True),
                       SolveParams(force_close=[{"site_id": site, "intervention_id": "*"}],
                                   force_keep=[{"site_id": inst.site_ids[-1],
                                                "intervention_id": tid}])):
            ctx = _context(inst, params, flow, keep)
            loop = _loop_flags(ctx)
            assert np.array_equal(_vector_flags(ctx), loop)
            words = [p for p in check_flows(ctx) if p.startswith("area ")]
            assert bool(words) == bool(loop.any())


# --- the KPIs -----------------------------------------------------------------------------------
def _loop_displaced(instance: Instance, flow: np.ndarray) -> dict[str, dict[str, float]]:
    """Per treatment: displaced patients, their extra minutes (mean, max, p90) and optional
    moves, one area and site at a time (the verifier's loop before it was vectorised)."""
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
    after_sites = flow.sum(axis=0) > PROVIDES_MIN
    out = {}
    for t, tid in enumerate(instance.treatment_ids):
        stops = [s for s in range(len(instance.sites))
                 if instance.baseline_volume[s, t] > 0 and not after_sites[s, t]]
        extras, weights, optional = [], [], 0.0
        for a in range(len(instance.area_ids)):
            today, after = instance.baseline_flow[a, :, t], flow[a, :, t]
            arriving = after - np.minimum(after, today)
            new = float(arriving.sum())
            dest = float((arriving * travel[a]).sum()) / new if new > FLOW_EPS else None
            for s in range(len(instance.sites)):
                if after_sites[s, t] and s not in stops:
                    optional += float(today[s] - min(after[s], today[s]))
            for s in stops:
                if today[s] > FLOW_EPS:
                    extras.append(0.0 if dest is None else dest - travel[a, s])
                    weights.append(float(today[s]))
        total = sum(weights)
        out[tid] = {"patients_displaced": total,
                    "displaced_mean_extra_min": (sum(e * w for e, w in zip(extras, weights,
                                                                           strict=True))
                                                 / total if total > 0 else 0.0),
                    "displaced_max_extra_min": max(extras) if extras else 0.0,
                    "displaced_p90_extra_min": weighted_quantile(extras, weights, 0.9,
                                                                 empty=0.0),
                    "patients_moved_optional": optional}
    return out


def test_the_displaced_groups_equal_a_loop_on_random_plans() -> None:
    rng = np.random.default_rng(8)
    for seed in range(10):
        inst = synthetic_instance(25, 6, 3, seed=seed)
        flow = inst.baseline_flow * (rng.random(inst.baseline_flow.shape) < 0.6)
        flow[:, rng.integers(6), :] += inst.demand * rng.random()  # arrivals somewhere
        travel = np.where(np.isfinite(inst.travel_min), inst.travel_min, 0.0)
        extras, weights, group_t, optional = _displaced_groups(
            inst, flow, travel, flow.sum(axis=0) > PROVIDES_MIN)
        for t, (tid, expected) in enumerate(_loop_displaced(inst, flow).items()):
            mine = group_t == t
            total = float(weights[mine].sum())
            got = {"patients_displaced": total,
                   "displaced_mean_extra_min": (float((extras[mine] * weights[mine]).sum())
                                                / total if total > 0 else 0.0),
                   "displaced_max_extra_min": float(extras[mine].max()) if mine.any() else 0.0,
                   "displaced_p90_extra_min": weighted_quantile(extras[mine], weights[mine],
                                                                0.9, empty=0.0),
                   "patients_moved_optional": float(optional[t])}
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-9), (seed, tid)


RUN_KPIS = ("patients", "mean_travel_min_after", "mean_travel_min_before", "patients_moved",
            "max_travel_min_after", "patients_displaced", "displaced_share",
            "displaced_mean_extra_min", "displaced_max_extra_min", "displaced_p90_extra_min",
            "patients_moved_optional")
PER_TREATMENT_KPIS = ("patients_displaced", "displaced_share", "displaced_mean_extra_min",
                      "displaced_max_extra_min", "displaced_p90_extra_min",
                      "patients_moved_optional")


@pytest.fixture(scope="module")
def displaced_plan(region: Instance) -> tuple[Solution, dict[str, Any], SolveParams]:
    """A plan with displaced patients in every treatment (margin: hospitals close)."""
    params = SolveParams(margin=0.5)
    sol = solve(region, params)
    kpis = compute_kpis(region, sol, params)
    assert verify(sol, region, params, kpis) == []
    assert all(kpis["per_treatment"][tid]["patients_displaced"] > 0
               for tid in region.treatment_ids[:2])
    return sol, kpis, params


@pytest.mark.parametrize("key", RUN_KPIS)
def test_each_run_kpi_is_recomputed(region: Instance, displaced_plan, key: str) -> None:
    sol, kpis, params = displaced_plan
    wrong = {**kpis, key: float(kpis[key]) + 1.0}
    assert any(f"KPI {key} reported" in p for p in verify(sol, region, params, wrong))
    nan = {**kpis, key: float("nan")}
    assert any("not finite" in p for p in verify(sol, region, params, nan))


@pytest.mark.parametrize("key", PER_TREATMENT_KPIS)
def test_each_treatments_kpi_is_recomputed(region: Instance, displaced_plan, key: str) -> None:
    sol, kpis, params = displaced_plan
    tid = region.treatment_ids[1]
    per = {**kpis["per_treatment"], tid: {**kpis["per_treatment"][tid],
                                          key: kpis["per_treatment"][tid][key] + 1.0}}
    problems = verify(sol, region, params, {**kpis, "per_treatment": per})
    assert problems == [f"KPI per_treatment.{tid}.{key} reported "
                        f"{per[tid][key]} but recomputed {kpis['per_treatment'][tid][key]:.6f}"]


@pytest.mark.parametrize("key", ("providers_lost", "providers_gained", "providers_before",
                                 "providers_after"))
def test_each_provider_count_is_recomputed(region: Instance, displaced_plan, key: str) -> None:
    sol, kpis, params = displaced_plan
    tid = region.treatment_ids[0]
    wrong = {**kpis, key: {**kpis[key], tid: kpis[key][tid] + 1}}
    assert any(p.startswith(f"KPI {key}") for p in verify(sol, region, params, wrong))


def test_a_plan_that_moves_patients_is_caught_against_stale_kpis(region: Instance,
                                                                 displaced_plan) -> None:
    """KPIs of one plan do not pass for another (the figures are recomputed from flows)."""
    sol, kpis, params = displaced_plan
    moved = sol.flow.copy()
    t = 0
    a = int(np.argmax(region.demand[:, t]))
    kept = np.nonzero(sol.keep[:, t])[0]
    now = int(np.argmax(moved[a, :, t]))
    other = int(next(s for s in kept if s != now))
    moved[a, other, t], moved[a, now, t] = moved[a, now, t], 0.0
    problems = verify(Solution(status="optimal", solver="test", flow=moved, keep=sol.keep),
                      region, params, kpis)
    assert any("mean_travel_min_after" in p for p in problems)
    assert any("patients_moved" in p for p in problems)


# --- tables -------------------------------------------------------------------------------------
def _loop_transfers(instance: Instance, flow: np.ndarray) -> list[tuple]:
    """The transfers of before, one area and treatment at a time (optimiser/transfers.py)."""
    f = np.where(flow > FLOW_EPS, flow, 0.0)
    b = np.where(instance.baseline_flow > FLOW_EPS, instance.baseline_flow, 0.0)
    stay = np.minimum(f, b)
    out = np.where(b - stay > FLOW_EPS, b - stay, 0.0)
    arrive = np.where(f - stay > FLOW_EPS, f - stay, 0.0)
    rows = [(int(a), int(t), int(s), int(s), float(stay[a, s, t]))
            for a, s, t in zip(*np.nonzero(stay > FLOW_EPS), strict=True)]
    for a, t in zip(*np.nonzero((out.sum(axis=1) > 0) | (arrive.sum(axis=1) > 0)), strict=True):
        o, r = out[a, :, t], arrive[a, :, t]
        total_out, total_in = float(o.sum()), float(r.sum())
        scale = max(total_out, total_in)
        pairs = np.outer(o, r) / scale
        rows += [(int(a), int(t), int(s), int(s2), float(pairs[s, s2]))
                 for s, s2 in zip(*np.nonzero(pairs > 0), strict=True)]
        if total_in > total_out:
            rows += [(int(a), int(t), NO_SITE, int(s2),
                      float(r[s2] * (total_in - total_out) / scale)) for s2 in np.nonzero(r)[0]]
        elif total_out > total_in:
            rows += [(int(a), int(t), int(s), NO_SITE,
                      float(o[s] * (total_out - total_in) / scale)) for s in np.nonzero(o)[0]]
    return sorted(rows, key=lambda row: (row[0], row[1], row[3], row[2]))


def test_transfers_equal_the_loop_bit_for_bit(noordoost_instance: Instance) -> None:
    rng = np.random.default_rng(3)
    cases = [(synthetic_instance(30, 6, 3, seed=seed), None) for seed in range(6)]
    cases.append((noordoost_instance, None))
    for inst, _ in cases:
        base = inst.baseline_flow
        for flow in (base * rng.random(base.shape) * 1.3,  # growth and shrinking per area
                     base * (rng.random(base.shape) < 0.5) + base[:, ::-1, :] * 0.5,
                     np.zeros_like(base), base.copy()):
            got = transfers(inst, flow)
            rows = list(zip(got.area.tolist(), got.treatment.tolist(), got.site_before.tolist(),
                            got.site_after.tolist(), got.patients.tolist(), strict=True))
            assert rows == _loop_transfers(inst, flow)  # floats compared exactly


def test_assignments_are_sorted_by_ids_not_indices() -> None:
    """Ids whose sorted order differs from the index order (and an id that is a prefix of
    another): the table is the one pandas' sort by ids gives, with every positive row."""
    inst = synthetic_instance(40, 6, 3, seed=2)
    site_ids = ["S9", "S10", "S1", "Z", "A", "S"]
    area_ids = [f"{(a * 17) % 40:d}" for a in range(40)]
    treatments = tuple(dataclasses.replace(t, id=tid)
                       for t, tid in zip(inst.treatments, ("b", "a", "B"), strict=True))
    inst = dataclasses.replace(
        inst, area_ids=tuple(area_ids), treatments=treatments,
        sites=tuple(dataclasses.replace(s, id=sid) for s, sid in zip(inst.sites, site_ids,
                                                                     strict=True)))
    sol = solve(inst, SolveParams(margin=0.3))
    for flow in (sol.flow, sol.flow * 1.2):
        table = assignments_table(inst, Solution(status="optimal", solver="t", flow=flow,
                                                 keep=sol.keep))
        keys = ["area_id", "intervention_id", "site_id", "site_id_before"]
        resorted = table.sort_values(keys, kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(table, resorted)
        assert (table["patients"] > 0).all()
        assert not table.duplicated(keys).any()
        assert set(table["move"]) <= {"stays", "displaced", "moved_optional", "new"}
        assert "new" in set(table["move"]) or flow is sol.flow
        # every patient of the plan is in the table (up to the table's rounding)
        assert table["patients"].sum() == pytest.approx(flow.sum(), abs=1e-4 * len(table))


def test_the_flows_table_equals_one_named_aggregation(noordoost_instance: Instance) -> None:
    """flows.csv's grouped sums, maxima and firsts are those of one named aggregation (the
    table's code before it was split into three reductions), exactly."""
    from herschik.optimiser.results import flows_table

    inst = noordoost_instance
    for params in (SolveParams(), SolveParams(margin=0.3)):
        sol = solve(inst, params)
        for flow in (sol.flow, sol.flow * 1.1):
            plan = Solution(status="optimal", solver="t", flow=flow, keep=sol.keep)
            asg = assignments_table(inst, plan)
            moved = asg[asg["move"].isin(["displaced", "moved_optional"])]
            moved = moved.assign(_extra=moved["travel_min"] - moved["travel_min_site_before"])
            agg = moved.assign(
                _w_from=moved["patients"] * moved["travel_min_site_before"],
                _w_extra=moved["patients"] * moved["_extra"],
            ).groupby(["intervention_id", "site_id_before", "site_id"], sort=True).agg(
                site_name_from=("site_name_before", "first"), move=("move", "first"),
                patients=("patients", "sum"), _w_from=("_w_from", "sum"),
                _w_extra=("_w_extra", "sum"), max_extra_min=("_extra", "max")).reset_index()
            table = flows_table(inst, plan, asg)
            assert len(table) == len(agg) > 0
            assert list(table["site_id_from"]) == list(agg["site_id_before"])
            assert list(table["site_name_from"]) == list(agg["site_name_from"])
            assert list(table["move"]) == list(agg["move"])
            for column, value in (("patients", agg["patients"]),
                                  ("travel_min_from", agg["_w_from"] / agg["patients"]),
                                  ("mean_extra_min", agg["_w_extra"] / agg["patients"]),
                                  ("max_extra_min", agg["max_extra_min"])):
                expected = np.round(value.to_numpy(float), 6) + 0.0
                assert table[column].to_numpy().tobytes() == expected.tobytes(), column


def test_the_id_memo_follows_the_records() -> None:
    """site_ids / treatment_ids are memoised per tuple: a copy, a subset or a new tuple gives
    its own ids (regression guard for the memo in Instance.__dict__)."""
    inst = synthetic_instance(10, 4, 3, seed=1)
    assert inst.treatment_ids == ("T00", "T01", "T02") and inst.site_ids[0] == "S00"
    assert inst.with_treatments([2, 0]).treatment_ids == ("T02", "T00")
    renamed = tuple(dataclasses.replace(t, id=f"X{i}") for i, t in enumerate(inst.treatments))
    copy = dataclasses.replace(inst, treatments=renamed)
    assert copy.treatment_ids == ("X0", "X1", "X2") and inst.treatment_ids[0] == "T00"
    inst.sites = tuple(dataclasses.replace(s, id=f"H{i}") for i, s in enumerate(inst.sites))
    assert inst.site_ids == ("H0", "H1", "H2", "H3")
