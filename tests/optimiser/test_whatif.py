"""What-if sessions (optimiser/whatif.py): every step is as optimal as a fresh solve.

Each step is checked against brute force (the ``brute_force`` fixture, tests/support/bruteforce.py,
which enumerates every keep combination) on tiny instances, against a fresh
:func:`optimiser.solve.solve` on a realistic one, and against the independent verifier; and
the shortcuts are checked to be taken (and only where they are exact).
"""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser.kpis import compute_kpis
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.status import SolveStatus
from herschik.optimiser.synthetic import synthetic_instance
from herschik.optimiser.verify import verify
from herschik.optimiser.whatif import WhatIf, feasible_in, is_restriction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st


def _check_against_fresh(session: WhatIf) -> None:
    fresh = solve(session.instance, session.params)
    got = session.solution
    assert got.status == fresh.status
    if fresh.feasible:
        assert got.objective == pytest.approx(fresh.objective, rel=1e-6, abs=1e-5)
        kpis = compute_kpis(session.instance, got, session.params)
        assert verify(got, session.instance, session.params, kpis) == []


@pytest.fixture(scope="module")
def region():
    return synthetic_instance(90, 7, 3, seed=5, region_km=90)


def _kept_and_closed(solution, instance, t: int) -> tuple[str, str | None]:
    kept = [instance.site_ids[s] for s in np.nonzero(solution.keep[:, t])[0]]
    providers = [instance.site_ids[s] for s in np.nonzero(instance.baseline_volume[:, t] > 0)[0]]
    closed = [s for s in providers if s not in kept]
    return kept[0], (closed[0] if closed else None)


def test_force_keep_of_a_kept_pair_needs_no_solve(region) -> None:
    session = WhatIf(region, SolveParams())
    kept, _ = _kept_and_closed(session.solution, region, 0)
    before = session.solution.objective
    session.force_keep(kept, region.treatment_ids[0])
    assert session.last_step.count("kept_optimum") == 1
    assert session.last_step.count("resolved") == 0
    assert session.last_step.count("unchanged") == len(region.treatments) - 1
    assert session.solution.objective == pytest.approx(before)
    _check_against_fresh(session)


def test_steps_match_fresh_solves_and_a_step_back_is_cached(region) -> None:
    session = WhatIf(region, SolveParams())
    first = session.solution.objective
    t_id = region.treatment_ids[0]
    kept, closed = _kept_and_closed(session.solution, region, 0)
    session.force_close(kept, t_id)
    assert session.last_step.count("resolved") == 1
    _check_against_fresh(session)
    assert not session.solution.keep[region.site_ids.index(kept), 0]
    session.release(kept, t_id)
    assert session.last_step.count("cached") == 1
    assert session.last_step.count("resolved") == 0
    assert session.solution.objective == pytest.approx(first)
    if closed is not None:
        session.force_keep(closed, t_id)
        assert session.solution.keep[region.site_ids.index(closed), 0]
        _check_against_fresh(session)
    session.set_margin(0.2)
    _check_against_fresh(session)
    session.set_margin(0.2, region.treatment_ids[1])
    _check_against_fresh(session)
    session.set_max_travel(float(np.quantile(region.travel_min, 0.6)))
    _check_against_fresh(session)
    session.set_max_travel(None)
    _check_against_fresh(session)


def test_restriction_of_an_infeasible_scenario_stays_infeasible(region) -> None:
    session = WhatIf(region, SolveParams(margin=50.0, small_region_rule="fail"))
    assert session.solution.status == "infeasible"
    session.set_margin(60.0)
    assert session.solution.status == "infeasible"
    assert session.last_step.count("resolved") == 0
    _check_against_fresh(session)
    session.set_margin(0.0)  # a relaxation: solved again
    assert session.solution.status == "optimal"
    _check_against_fresh(session)


def test_is_restriction(region) -> None:
    base = SolveParams(max_travel=60.0, margin=0.1)
    site = region.site_ids[int(np.argmax(region.baseline_volume[:, 0]))]
    forced = {"site_id": site, "intervention_id": region.treatment_ids[0]}
    assert is_restriction(region, base, base.model_copy(update={"margin": 0.2}))
    assert not is_restriction(region, base, base.model_copy(update={"margin": 0.0}))
    assert is_restriction(region, base, base.model_copy(update={"max_travel": 45.0}))
    assert not is_restriction(region, base, base.model_copy(update={"max_travel": None}))
    assert is_restriction(region, SolveParams(), SolveParams(max_travel=45.0))
    assert is_restriction(region, base, SolveParams.model_validate(
        {**base.model_dump(), "force_close": [forced]}))
    assert is_restriction(region, base, SolveParams.model_validate(
        {**base.model_dump(), "force_keep": [forced]}))
    assert not is_restriction(region, base, base.model_copy(update={"objective": "moved"}))
    # forcing a non-provider to keep a treatment adds a candidate: not a restriction
    newcomer = [s for s in range(len(region.sites)) if region.baseline_volume[s, 0] == 0]
    if newcomer:
        extra = {"site_id": region.site_ids[newcomer[0]],
                 "intervention_id": region.treatment_ids[0]}
        assert not is_restriction(region, base, SolveParams.model_validate(
            {**base.model_dump(), "force_keep": [extra]}))


def test_feasible_in_rejects_violations(region) -> None:
    from herschik.optimiser.formulation import build_arrays
    from herschik.optimiser.subproblem import start_vector as _start_vector

    params = SolveParams()
    solution = solve(region, params)
    arrays = build_arrays(region, params, [0])
    start = _start_vector(arrays, region, solution)
    assert feasible_in(arrays, start)
    harder = build_arrays(region, params.model_copy(update={"margin": 5.0}), [0])
    assert not feasible_in(harder, _start_vector(harder, region, solution))
    broken = start.copy()
    broken[0] += 1.0  # one area's demand row no longer holds
    assert not feasible_in(arrays, broken)


STEPS = ("force_keep", "force_close", "release", "margin", "max_travel")


#: random what-if sequences: (step kind, which pair, margin or travel value), 1-4 steps
STEP_SEQUENCES = st.lists(st.tuples(st.sampled_from(STEPS), st.integers(0, 10),
                                    st.floats(0.0, 0.6)), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 23), objective=st.sampled_from(["travel", "moved", "providers"]),
       steps=STEP_SEQUENCES)
def test_random_step_sequences_match_bruteforce(
    brute_force, seed: int, objective: str, steps
) -> None:
    inst, params = brute_force.tiny(seed)
    params = params.model_copy(update={"objective": objective})
    session = WhatIf(inst, params, max_workers=1)
    for kind, pick, value in steps:
        site = inst.site_ids[pick % len(inst.sites)]
        treatment = inst.treatment_ids[pick % len(inst.treatments)]
        if kind == "force_keep":
            session.force_keep(site, treatment)
        elif kind == "force_close":
            session.force_close(site, treatment)
        elif kind == "release":
            session.release(site, treatment)
        elif kind == "margin":
            session.set_margin(round(value, 2))
        else:
            session.set_max_travel(None if value < 0.1 else
                                   float(np.quantile(inst.travel_min[np.isfinite(
                                       inst.travel_min)], 0.4 + value)))
        ref = brute_force.reference(inst, session.params, objective)
        got = session.solution
        if ref is None:  # some treatment has no plan: the others keep theirs (partial plan)
            assert got.status in ("infeasible", "partially_infeasible")
            assert got.diagnosis["infeasible_treatments"]
            continue
        assert got.status == "optimal", (kind, session.last_step.actions)
        brute_force.compare(inst, got, ref, objective)


def test_old_optimum_is_kept_only_under_the_same_objective(region) -> None:
    from herschik.optimiser.formulation import build_arrays
    from herschik.optimiser.whatif import same_objective_on_subset

    # planner: which hospitals could keep a treatment on their own depends on the margin, so
    # the objective changes with it and a session re-solves
    planner = SolveParams(objective="planner")
    assert not same_objective_on_subset(build_arrays(region, planner, [0]), build_arrays(
        region, planner.model_copy(update={"margin": 0.3}), [0]))
    base = SolveParams(objective="travel")
    old = build_arrays(region, base, [0])
    assert same_objective_on_subset(old, build_arrays(region, base.model_copy(
        update={"margin": 0.3}), [0]))
    tighter = float(np.quantile(region.travel_min, 0.5))
    assert same_objective_on_subset(old, build_arrays(region, base.model_copy(
        update={"max_travel": tighter}), [0]))
    weighted = base.model_copy(update={"objective_weights": {"travel": 2.0}})
    assert not same_objective_on_subset(old, build_arrays(region, weighted, [0]))
    # the moved objective's travel tie-break is scaled by the longest allowed trip: a tighter
    # limit changes it, so a session re-solves rather than keep the old optimum
    moved = base.model_copy(update={"objective": "moved"})
    old_moved = build_arrays(region, moved, [0])
    new_moved = build_arrays(region, moved.model_copy(update={"max_travel": tighter}), [0])
    assert not same_objective_on_subset(old_moved, new_moved)


# --- same_as_fresh: the app's sessions --------------------------------------------------------
def _same_solution(got, fresh) -> None:
    """Identical plans, to the last bit: what the app needs for byte-identical CSVs."""
    assert got.status == fresh.status
    assert got.objective == fresh.objective
    if fresh.flow is not None:  # a plan, or a partial one
        assert np.array_equal(got.flow, fresh.flow)
        assert np.array_equal(got.keep, fresh.keep)
        strip = [{k: v for k, v in e.items() if "seconds" not in k} for e in fresh.subproblems]
        assert [{k: v for k, v in e.items() if "seconds" not in k}
                for e in got.subproblems] == strip
    if not fresh.feasible:
        assert got.diagnosis["infeasible_treatments"] == fresh.diagnosis["infeasible_treatments"]


def test_same_as_fresh_steps_equal_fresh_solves_bit_for_bit(region) -> None:
    session = WhatIf(region, SolveParams(), same_as_fresh=True)
    _same_solution(session.solution, solve(region, SolveParams()))
    t_id = region.treatment_ids[0]
    kept, closed = _kept_and_closed(session.solution, region, 0)
    session.force_keep(kept, t_id)  # a restriction: the plain session keeps the old optimum
    assert session.last_step.count("kept_optimum") == 0
    assert session.last_step.count("resolved") == 1
    assert session.last_step.count("unchanged") == len(region.treatments) - 1
    _same_solution(session.solution, solve(region, session.params))
    session.force_close(kept, t_id)
    _same_solution(session.solution, solve(region, session.params))
    session.release(kept, t_id)
    assert session.last_step.count("cached") == 1 and session.last_step.count("resolved") == 0
    _same_solution(session.solution, solve(region, session.params))
    for change in ({"margin": 0.2}, {"max_travel": float(np.quantile(region.travel_min, 0.6))},
                   {"margin": 0.0, "max_travel": None}, {"margin": 50.0}):
        session.set_params(session.params.model_copy(update=change))
        _same_solution(session.solution, solve(region, session.params))
    # back to the defaults: every sub-problem's model was solved before
    session.set_params(SolveParams())
    assert session.last_step.count("cached") == len(region.treatments)
    _same_solution(session.solution, solve(region, SolveParams()))


def test_same_as_fresh_solves_again_when_the_solve_settings_change(region) -> None:
    """The model alone does not decide the answer: another solver or gap may pick another
    plan, so a session that promises a fresh solve's answer re-uses nothing then."""
    session = WhatIf(region, SolveParams(), same_as_fresh=True)
    session.apply(mip_gap=0.05)
    assert session.last_step.count("resolved") == len(region.treatments)
    session.apply(mip_gap=1e-4)  # back: each model was solved with these settings before
    assert session.last_step.count("cached") == len(region.treatments)
    _same_solution(session.solution, solve(region, SolveParams()))
    for objective in ("travel", "planner", "travel"):  # an A/B of objectives costs one solve
        session.apply(objective=objective)
        _same_solution(session.solution, solve(region, session.params))
    assert session.last_step.count("cached") == len(region.treatments)
    plain = WhatIf(region, SolveParams())
    plain.apply(mip_gap=0.05)  # the plain session keeps optimal results: still optimal
    assert plain.last_step.count("unchanged") == len(region.treatments)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 23),
       objective=st.sampled_from(["travel", "moved", "planner", "providers"]),
       steps=STEP_SEQUENCES)
# regression: a forced keep in an infeasible treatment was answered "still infeasible" with an
# empty sub-problem entry, where a fresh solve reports its bound (null) too
@example(seed=13, objective="travel", steps=[("force_keep", 0, 0.0)])
def test_same_as_fresh_random_steps_equal_fresh_solves(
    brute_force, seed: int, objective: str, steps
) -> None:
    inst, params = brute_force.tiny(seed)
    params = params.model_copy(update={"objective": objective})
    session = WhatIf(inst, params, max_workers=1, same_as_fresh=True)
    for kind, pick, value in steps:
        site = inst.site_ids[pick % len(inst.sites)]
        treatment = inst.treatment_ids[pick % len(inst.treatments)]
        if kind in ("force_keep", "force_close", "release"):
            getattr(session, kind)(site, treatment)
        elif kind == "margin":
            session.set_margin(round(value, 2))
        else:
            session.set_max_travel(None if value < 0.1 else float(np.quantile(
                inst.travel_min[np.isfinite(inst.travel_min)], 0.4 + value)))
        assert session.last_step.count("kept_optimum") == 0
        _same_solution(session.solution, solve(inst, session.params))


def test_the_cache_keeps_at_most_cache_size_results(region) -> None:
    session = WhatIf(region, SolveParams(), same_as_fresh=True, cache_size=4)
    for margin in (0.1, 0.2):
        session.set_margin(margin)
    assert len(session._cache) == 4
    session.set_margin(0.0)  # the first plan's models were dropped: solved again
    assert session.last_step.count("cached") < len(region.treatments)
    _same_solution(session.solution, solve(region, SolveParams()))


def test_an_untouched_infeasible_sub_problem_stops_the_others_early(region) -> None:
    """Once one treatment is infeasible the scenario is; a change to another treatment must
    not optimise that one to the end (a fresh solve only checks its feasibility)."""

    # partial=False: as solve(partial=False), the early-stopping solve
    session = WhatIf(region, SolveParams(), same_as_fresh=True, partial=False)
    kept, _ = _kept_and_closed(session.solution, region, 0)
    pair = [{"site_id": kept, "intervention_id": region.treatment_ids[0]}]
    session.apply(force_keep=pair, force_close=pair)  # keep and close: infeasible
    assert session.solution.status == "infeasible"
    session.set_margin(0.1, region.treatment_ids[1])
    assert session.solution.status == "infeasible"
    assert session.last_step.actions[region.treatment_ids[0]] == "unchanged"
    by_treatment = {e["treatments"][0]: e for e in session.solution.subproblems}
    assert by_treatment[region.treatment_ids[1]]["status"] == SolveStatus.FEASIBLE_NOT_OPTIMISED
    assert session.solution.diagnosis["infeasible_treatments"] == [region.treatment_ids[0]]


def test_verified_result_of_a_session_step_is_solve_verified(region, tmp_path) -> None:
    """scenarios.run.verified_result on a same_as_fresh step writes what solve_verified
    writes (the app's plans), and keeps solve_verified's summary key order."""
    from herschik.scenarios.run import solve_verified, verified_result

    session = WhatIf(region, SolveParams(), same_as_fresh=True)
    session.set_margin(0.15)
    mine = verified_result(region, session.params, session.solution)
    fresh = solve_verified(region, session.params)
    assert mine.violations == [] == fresh.violations
    a, b = mine.write(tmp_path / "a", lock=False), fresh.write(tmp_path / "b", lock=False)
    for name in ("site_volumes.csv", "assignments.csv", "hospital_changes.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    started = solve_verified(region, session.params, start=fresh.solution)
    assert list(started.summary)[-2:] == ["warm_start", "verification"]
    assert list(mine.summary) == [k for k in started.summary if k != "warm_start"]
