"""The reasons of lost roles are remembered per component (optimiser/reasons.py _ReasonMemo):
the what-if app asks for them after every change, and a component the change did not touch
must give the same reasons without one re-solve per lost role, while a touched one is worked
out again. Same answers with and without the memo."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from herschik.geo.dataset import load_dataset
from herschik.optimiser import reasons as reasons_module
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.optimiser.reasons import lost_role_reasons
from herschik.optimiser.solve import solve
from herschik.scenarios.assemble import build_instance


@pytest.fixture(scope="module")
def midden() -> Instance:
    return build_instance(load_dataset(None), "midden")


class CountingSolve:
    """reasons.solve, counting the solves by the treatments of the (component's) instance:
    the component's plan and one per lost role worked out."""

    made: list[str] = []

    def __new__(cls, instance: Instance, *args: Any, **kwargs: Any) -> Any:
        cls.made.append(",".join(instance.treatment_ids))
        return ORIGINAL_SOLVE(instance, *args, **kwargs)


ORIGINAL_SOLVE = reasons_module.solve


def _plain(reasons: list) -> list[dict]:
    return [vars(r) for r in reasons]


def test_untouched_components_keep_their_reasons_touched_ones_are_redone(
        midden: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reasons_module, "solve", CountingSolve)
    CountingSolve.made = []
    params = SolveParams()
    plan = solve(midden, params)
    first = lost_role_reasons(midden, params, plan)
    lost_treatments = {r.intervention_id for r in first}
    assert len(lost_treatments) >= 3  # several components with lost roles
    assert set(CountingSolve.made) == lost_treatments
    assert len(CountingSolve.made) == len(lost_treatments) + len(first)  # plan + each role

    CountingSolve.made = []
    assert _plain(lost_role_reasons(midden, params, plan)) == _plain(first)
    assert CountingSolve.made == []  # nothing re-solved

    # close one kept pair of one treatment: only that treatment's reasons are worked out again
    treatment = sorted(lost_treatments)[0]
    t = midden.treatment_ids.index(treatment)
    assert plan.keep is not None
    kept = next(midden.site_ids[s] for s in range(len(midden.site_ids)) if plan.keep[s, t])
    changed = params.model_copy(update={"force_close": [
        SiteTreatment(site_id=kept, intervention_id=treatment)]})
    changed_plan = solve(midden, changed)
    CountingSolve.made = []
    remembered = lost_role_reasons(midden, changed, changed_plan)
    assert set(CountingSolve.made) == {treatment}

    # the same answers as without the memo (an equal instance object is a miss)
    fresh_instance = copy.deepcopy(midden)
    CountingSolve.made = []
    fresh = lost_role_reasons(fresh_instance, changed, changed_plan)
    assert set(CountingSolve.made) == {r.intervention_id for r in fresh}
    assert _plain(remembered) == _plain(fresh)
    assert any(r.intervention_id == treatment and r.site_id == kept and r.forced_closed
               for r in fresh)


def test_a_margin_of_another_treatment_is_not_a_change_of_this_one(
        midden: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    params = SolveParams()
    plan = solve(midden, params)
    first = lost_role_reasons(midden, params, plan)
    treatment = sorted({r.intervention_id for r in first})[0]
    other = params.model_copy(update={"margin_by_treatment": {treatment: 0.3}})
    other_plan = solve(midden, other)
    monkeypatch.setattr(reasons_module, "solve", CountingSolve)
    CountingSolve.made = []
    again = lost_role_reasons(midden, other, other_plan)
    # at most the treatment whose margin changed is worked out again
    assert set(CountingSolve.made) <= {treatment}
    untouched = [vars(r) for r in again if r.intervention_id != treatment]
    assert untouched == [vars(r) for r in first if r.intervention_id != treatment]


def test_an_instance_that_is_gone_takes_its_reasons_along(midden: Instance) -> None:
    import gc

    copied = copy.deepcopy(midden)
    params = SolveParams()
    lost_role_reasons(copied, params, solve(copied, params))
    ident = id(copied)
    for memo in (reasons_module._MEMO, reasons_module._BASES):
        assert any(key[0] == ident for key in memo._entries)
    del copied
    gc.collect()
    for memo in (reasons_module._MEMO, reasons_module._BASES):
        assert not any(key[0] == ident for key in memo._entries)


def test_one_hospitals_reasons_are_its_rows_of_the_whole_list(
        midden: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """``site_ids`` (the app asks per hospital): exactly that hospital's reasons of the whole
    list, worked out on separate instance copies (no memo shared), each component re-solved
    only when the hospital loses one of its treatments; asked hospital after hospital of one
    instance, a component's plan is solved once (then one solve per lost role)."""
    params = SolveParams(margin=0.1)
    whole_instance = copy.deepcopy(midden)
    whole = lost_role_reasons(whole_instance, params, solve(whole_instance, params))
    by_site: dict[str, list] = {}
    for r in whole:
        by_site.setdefault(r.site_id, []).append(r)
    assert len(by_site) >= 3
    for site in [*sorted(by_site), midden.site_ids[0]]:
        alone = copy.deepcopy(midden)
        plan = solve(alone, params)
        monkeypatch.setattr(reasons_module, "solve", CountingSolve)
        CountingSolve.made = []
        mine = lost_role_reasons(alone, params, plan, site_ids=[site])
        monkeypatch.undo()
        assert _plain(mine) == _plain(by_site.get(site, []))
        assert set(CountingSolve.made) == {r.intervention_id for r in mine}
    shared = copy.deepcopy(midden)
    plan = solve(shared, params)
    monkeypatch.setattr(reasons_module, "solve", CountingSolve)
    CountingSolve.made = []
    for site in sorted(by_site):
        lost_role_reasons(shared, params, plan, site_ids=[site])
    assert len(CountingSolve.made) == len(whole) + len({r.intervention_id for r in whole})
