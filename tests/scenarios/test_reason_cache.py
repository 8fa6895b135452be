"""Lost-role reasons kept in the derived-data cache (scenarios/reason_cache.py): a second
process that solves the same model gets the reasons without one re-solve per lost role, the
same reasons; a changed model, a damaged entry or a solve that did not end proven is worked
out again (never a stale or wrong answer)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from herschik.geo.dataset import load_dataset
from herschik.optimiser import reasons as reasons_module
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.reasons import instance_digest, lost_role_reasons
from herschik.optimiser.solve import solve
from herschik.optimiser.status import SolveStatus
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.reason_cache import DERIVED_REASONS


@pytest.fixture(scope="module")
def midden() -> Instance:
    return build_instance(load_dataset(None), "midden")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HERSCHIK_CACHE", raising=False)
    return tmp_path


class CountingSolve:
    """reasons.solve, counting its calls (the component plans and the forced solves)."""

    calls = 0

    def __new__(cls, instance: Instance, *args: Any, **kwargs: Any) -> Any:
        cls.calls += 1
        return ORIGINAL_SOLVE(instance, *args, **kwargs)


ORIGINAL_SOLVE = reasons_module.solve


def _plain(reasons: list) -> list[dict]:
    return [vars(r) for r in reasons]


def _fresh_object(instance: Instance) -> Instance:
    # an equal instance that the in-process memo (keyed by the object) has never seen, as in
    # a second run of the command
    return copy.deepcopy(instance)


def test_a_second_run_of_the_same_model_re_solves_nothing(
        midden: Instance, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = SolveParams()
    plan = solve(midden, params)
    monkeypatch.setattr(reasons_module, "solve", CountingSolve)
    CountingSolve.calls = 0
    first = lost_role_reasons(_fresh_object(midden), params, plan, store=DERIVED_REASONS)
    assert len(first) >= 3 and CountingSolve.calls > len(first)
    assert list((cache / "derived" / "reasons").glob("*.bin"))

    CountingSolve.calls = 0
    again = lost_role_reasons(_fresh_object(midden), params, plan, store=DERIVED_REASONS)
    assert CountingSolve.calls == 0
    assert _plain(again) == _plain(first)
    # the same as without any store
    assert _plain(lost_role_reasons(_fresh_object(midden), params, plan)) == _plain(first)


def test_a_changed_model_is_worked_out_again(
        midden: Instance, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = SolveParams()
    plan = solve(midden, params)
    lost_role_reasons(_fresh_object(midden), params, plan, store=DERIVED_REASONS)
    # more patients in one area: every component's content changes (same shapes, same ids)
    demand = midden.demand.copy()
    demand[0] *= 1.5
    grown = dataclasses.replace(midden, demand=demand)
    assert instance_digest(grown) != instance_digest(midden)
    grown_plan = solve(grown, params)
    monkeypatch.setattr(reasons_module, "solve", CountingSolve)
    CountingSolve.calls = 0
    changed = lost_role_reasons(grown, params, grown_plan, store=DERIVED_REASONS)
    assert CountingSolve.calls > 0
    assert _plain(changed) == _plain(lost_role_reasons(_fresh_object(grown), params,
                                                       grown_plan))
    # another margin: a different key too
    margin = SolveParams(margin=0.05)
    CountingSolve.calls = 0
    lost_role_reasons(_fresh_object(midden), margin, solve(midden, margin),
                      store=DERIVED_REASONS)
    assert CountingSolve.calls > 0


def test_a_damaged_entry_is_worked_out_again(
        midden: Instance, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = SolveParams()
    plan = solve(midden, params)
    first = lost_role_reasons(_fresh_object(midden), params, plan, store=DERIVED_REASONS)
    entries = sorted((cache / "derived" / "reasons").glob("*.bin"))
    damaged = entries[0]
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(reasons_module, "solve", CountingSolve)
    CountingSolve.calls = 0
    again = lost_role_reasons(_fresh_object(midden), params, plan, store=DERIVED_REASONS)
    assert CountingSolve.calls > 0  # the damaged component only
    assert _plain(again) == _plain(first)


def test_reasons_of_a_solve_not_proven_are_not_kept(
        midden: Instance, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = SolveParams()
    plan = solve(midden, params)

    def time_limited(instance: Instance, *args: Any, **kwargs: Any) -> Any:
        found = ORIGINAL_SOLVE(instance, *args, **kwargs)
        if found.status == SolveStatus.OPTIMAL:  # as if a time limit had stopped it
            found.status = SolveStatus.FEASIBLE
        return found

    monkeypatch.setattr(reasons_module, "solve", time_limited)
    lost_role_reasons(_fresh_object(midden), params, plan, store=DERIVED_REASONS)
    assert not list((cache / "derived" / "reasons").glob("*.bin"))


def test_the_cache_turned_off_keeps_nothing(
        midden: Instance, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERSCHIK_CACHE", "off")
    params = SolveParams()
    plan = solve(midden, params)
    lost_role_reasons(_fresh_object(midden), params, plan, store=DERIVED_REASONS)
    assert not (cache / "derived").exists()
