"""One sub-problem's time limit is shared by the methods run_backend tries in turn.

Regression (review of the night's work, 2026-12-08): the floor enumeration, the swap search,
norm_keepsets' branching, HiGHS and CBC each got the whole ``time_limit`` when the one before
stopped without a plan, so one sub-problem could take three or four times ``--time-limit``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from herschik.optimiser import subproblem
from herschik.optimiser.formulation import build_arrays
from herschik.optimiser.params import SolveParams
from herschik.optimiser.status import SolveStatus
from herschik.optimiser.synthetic import synthetic_instance

SLOW_STAGE_SECONDS = 0.6
TIME_LIMIT = 2.0


def _arrays(params: SolveParams) -> Any:
    inst = synthetic_instance(12, 5, 1, seed=3, region_km=60, tiered=False)
    return build_arrays(inst, params, [0])


def _spy(monkeypatch: pytest.MonkeyPatch, name: str, seen: dict[str, float | None],
         limit_position: int, sleep: float = 0.0) -> None:
    """Wrap subproblem.<name>: record the time limit it is given, sleep, then run it."""
    real = getattr(subproblem, name)

    def spied(*args: Any, **kwargs: Any) -> Any:
        seen[name] = args[limit_position]
        time.sleep(sleep)
        return real(*args, **kwargs)

    monkeypatch.setattr(subproblem, name, spied)


def test_methods_after_a_slow_one_get_only_what_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    params = SolveParams(time_limit=TIME_LIMIT, objective="travel")
    arrays = _arrays(params)
    seen: dict[str, float | None] = {}
    # a keep-set search that gives up (None) after spending time, as on a model it does not
    # close; the real search would solve this small model at once
    def slow_none(*args: Any, **kwargs: Any) -> None:
        seen["solve_by_keep_sets"] = args[2]
        time.sleep(SLOW_STAGE_SECONDS)

    monkeypatch.setattr(subproblem, "solve_by_keep_sets", slow_none)
    _spy(monkeypatch, "solve_by_lagrangian", seen, 2)
    _spy(monkeypatch, "solve_by_floor_enumeration", seen, 2, sleep=SLOW_STAGE_SECONDS)
    _spy(monkeypatch, "solve_by_norm_branching", seen, 2)
    _spy(monkeypatch, "solve_highs", seen, 1)

    started = time.perf_counter()
    result, _ = subproblem.run_backend(arrays, params, threads=1)
    spent_before_highs = 2 * SLOW_STAGE_SECONDS

    assert result.status == SolveStatus.OPTIMAL
    assert seen["solve_by_keep_sets"] == pytest.approx(TIME_LIMIT, abs=0.05)
    assert seen["solve_highs"] is not None
    # HiGHS was given what the two slow methods left, not the whole limit again
    assert seen["solve_highs"] <= TIME_LIMIT - spent_before_highs + 0.05
    assert time.perf_counter() - started < 2 * TIME_LIMIT


def test_no_limit_stays_no_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    params = SolveParams(objective="travel")
    seen: dict[str, float | None] = {}
    monkeypatch.setattr(subproblem, "solve_by_keep_sets", lambda *a, **k: None)
    _spy(monkeypatch, "solve_highs", seen, 1)
    result, _ = subproblem.run_backend(_arrays(params), params, threads=1)
    assert result.status == SolveStatus.OPTIMAL
    assert seen["solve_highs"] is None


def test_a_spent_budget_still_gives_a_positive_limit() -> None:
    # some back-ends read 0 as "no limit": what is left never drops below MIN_TIME_LEFT
    budget = subproblem.TimeBudget.starting_now(0.05)
    time.sleep(0.1)
    assert budget.left() == subproblem.MIN_TIME_LEFT
    assert subproblem.TimeBudget.starting_now(None).left() is None


def test_a_limit_below_the_floor_is_never_raised() -> None:
    # a user's --time-limit 1e-6 stays 1e-6 (it was raised to MIN_TIME_LEFT, and HiGHS then
    # found a plan where the CLI promises exit 4)
    budget = subproblem.TimeBudget.starting_now(1e-6)
    time.sleep(0.01)
    assert budget.left() == 1e-6
