"""The model as a registry of families (optimiser/rows): the recipe holds, every check catches
its own violation and shares no code with the builders, and max_providers works end to end."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from herschik.optimiser import formulation
from herschik.optimiser.formulation import PairRule, build_arrays, candidate_matrix
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.rows import FAMILIES, OBJECTIVE_TERMS, PHASE_ROWS, ROW_FAMILIES, family
from herschik.optimiser.rows.base import Build, CheckContext
from herschik.optimiser.solution import Solution
from herschik.optimiser.solve import solve
from herschik.optimiser.synthetic import synthetic_instance
from herschik.optimiser.verify import verify
from pydantic import ValidationError


@pytest.fixture(scope="module")
def region() -> Instance:
    return synthetic_instance(50, 6, 3, seed=4)


@pytest.fixture(scope="module")
def solved(region: Instance) -> Solution:
    sol = solve(region, SolveParams())
    assert sol.status == "optimal"
    return sol


# --- the recipe -------------------------------------------------------------------------------
def test_every_family_names_its_parameters_and_has_a_check() -> None:
    fields = set(SolveParams.model_fields)
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    for entry in FAMILIES:
        assert entry.kind in ("columns", "rows")
        assert set(entry.params) <= fields, entry.name
        assert entry.doc, entry.name
        if entry.check is None:
            # only bookkeeping of the objective, or rows another family's check covers
            assert entry.checked_by in names or entry.params == ("objective",
                                                                 "objective_weights")
    # the column blocks come first, in the order x, y, stay
    assert [f.name for f in FAMILIES[:3]] == ["flows", "keeps", "stays"]
    assert all(f.kind == "rows" for f in FAMILIES[3:])
    assert [t.name for t in OBJECTIVE_TERMS] == ["travel", "moved", "providers", "planner"]


def test_max_providers_followed_the_recipe() -> None:
    """The new constraint is one family with its parameter, check and diagnosis reason."""
    entry = family("max_providers")
    assert entry.params == ("max_providers",)
    assert "max_providers" in SolveParams.model_fields
    assert entry.build is not None and entry.check is not None and entry.reasons
    assert inspect.getmodule(entry.build) is inspect.getmodule(entry.check)


def test_rows_come_in_registry_order(region: Instance) -> None:
    params = SolveParams(max_loss_share=0.5, max_providers={"*": 2},
                         bundles=[list(region.treatment_ids[:2])])
    arrays = build_arrays(region, params)
    ranges = arrays.row_families
    assert list(ranges) == [f for f in ROW_FAMILIES if f not in PHASE_ROWS]
    stop = 0
    for name in ranges:
        assert ranges[name][0] == stop, name  # contiguous, in order
        stop = ranges[name][1]
    assert stop == arrays.n_rows
    assert ranges["max_providers"][1] > ranges["max_providers"][0]


def _referenced(fn: Callable[..., Any]) -> set[Any]:
    """Every herschik object a function uses, following the functions it calls."""
    seen: set[Any] = set()
    todo = [fn]
    while todo:
        current = todo.pop()
        codes = [current.__code__]
        names: set[str] = set()
        while codes:
            code = codes.pop()
            names |= set(code.co_names)
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        for name in names:
            obj = current.__globals__.get(name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if obj in seen or not obj.__module__.startswith("herschik"):
                continue
            seen.add(obj)
            if inspect.isfunction(obj):
                todo.append(obj)
    return seen


def test_checks_share_no_code_with_the_builders() -> None:
    builders = {f.build for f in FAMILIES if f.build is not None}
    builder_helpers = set().union(*(_referenced(b) for b in builders))
    for entry in FAMILIES:
        if entry.check is None:
            continue
        used = _referenced(entry.check)
        assert not {u for u in used if u.__module__ == formulation.__name__}, entry.name
        shared = {u for u in used & (builders | builder_helpers) if u is not Instance}
        assert shared == set(), (entry.name, shared)
        assert Build not in used


def test_one_rule_for_allowed_pairs(region: Instance) -> None:
    """The x columns, the diagnosis matrix and the per-treatment rule are the same pairs."""
    params = SolveParams(max_travel=25.0, max_extra_travel=10.0)
    rule = PairRule.of(region, params)
    every = rule.allowed_all()
    arrays = build_arrays(region, params)
    from_columns = np.zeros_like(every)
    from_columns[arrays.x_area, arrays.x_site, arrays.x_treat] = True
    assert np.array_equal(every, from_columns)
    for t in range(len(region.treatments)):
        assert np.array_equal(rule.allowed(t), every[:, :, t])
    assert np.array_equal(rule.candidate, candidate_matrix(region, params))
    assert 0 < every.sum() < (region.demand > 0).sum() * len(region.sites)


# --- every check catches its own violation ----------------------------------------------------
def _case_flows(region: Instance, flow: np.ndarray, keep: np.ndarray) -> SolveParams:
    t = 0
    new_site = int(np.nonzero(region.baseline_volume[:, t] == 0)[0][0])
    a = int(np.argmax(region.demand[:, t]))
    flow[a, :, t] = 0.0
    flow[a, new_site, t] = region.demand[a, t]
    keep[new_site, t] = True
    return SolveParams()


def _case_demand(region: Instance, flow: np.ndarray, keep: np.ndarray) -> SolveParams:
    flow[0] *= 0.5
    return SolveParams()


def _case_keeps(region: Instance, flow: np.ndarray, keep: np.ndarray) -> SolveParams:
    s, t = (int(i[0]) for i in np.nonzero(~keep & (region.baseline_volume > 0)))
    return SolveParams(force_keep=[{"site_id": region.site_ids[s],
                                    "intervention_id": region.treatment_ids[t]}])


def _case_min_volume(region: Instance, flow: np.ndarray, keep: np.ndarray) -> SolveParams:
    return SolveParams(margin=5.0)


def _case_link(region: Instance, flow: np.ndarray, keep: np.ndarray) -> SolveParams:
    s, t = (int(i[0]) for i in np.nonzero(keep))
    keep[s, t] = False
    return SolveParams()


def _case_capacity(region: Instance, flow: np.ndarray, keep: np.ndarray) -> SolveParams:
    s = int(np.argmax(flow.sum(axis=(0, 2))))
    return SolveParams(capacity=[{"site_id": region.site_ids[s], "max_patients": 1.0}])


def _case_bundle(region: Instance, flow: np.ndarray, keep: np.ndarray) -> SolveParams:
    assert (keep[:, 0] != keep[:, 1]).any()  # some site keeps one of the two only
    return SolveParams(bundles=[list(region.treatment_ids[:2])])


def _case_loss_share(region: Instance, flow: np.ndarray, keep: np.ndarray) -> SolveParams:
    return SolveParams(max_loss_share=0.0)


def _case_max_providers(region: Instance, flow: np.ndarray, keep: np.ndarray) -> SolveParams:
    t = 0
    return SolveParams(max_providers={region.treatment_ids[t]: int(keep[:, t].sum()) - 1})


CASES = {
    "flows": _case_flows, "demand": _case_demand, "keeps": _case_keeps,
    "min_volume": _case_min_volume, "link": _case_link, "capacity": _case_capacity,
    "bundle": _case_bundle, "loss_share": _case_loss_share,
    "max_providers": _case_max_providers,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_check_catches_its_violation(region: Instance, solved: Solution, name: str
                                          ) -> None:
    labels = {"area_labels": [region.area_label(a) for a in range(len(region.area_ids))],
              "site_labels": [region.site_label(s) for s in range(len(region.sites))]}
    check = family(name).check
    assert check is not None
    good = CheckContext(region, SolveParams(), solved.flow, solved.keep, **labels)
    assert check(good) == []
    flow, keep = solved.flow.copy(), solved.keep.copy()
    params = CASES[name](region, flow, keep)
    found = check(CheckContext(region, params, flow, keep, **labels))
    assert found
    broken = Solution(status="optimal", solver="test", flow=flow, keep=keep)
    assert set(found) <= set(verify(broken, region, params))


def test_one_provider_check_catches_two_providers_below_every_norm() -> None:
    region = synthetic_instance(20, 4, 1, seed=1, norms=[1e6])
    sol = solve(region, SolveParams())
    assert sol.status == "optimal" and sol.keep[:, 0].sum() == 1
    keep = sol.keep.copy()
    keep[:, 0] = region.baseline_volume[:, 0] > 0
    flow = region.baseline_flow.copy()
    problems = verify(Solution(status="optimal", solver="test", flow=flow, keep=keep),
                      region, SolveParams())
    assert any("demand below every norm" in p and "(at most 1)" in p for p in problems)


# --- max_providers ----------------------------------------------------------------------------
def test_max_providers_caps_the_kept_hospitals(region: Instance, solved: Solution) -> None:
    t = 0
    tid = region.treatment_ids[t]
    kept = int(solved.keep[:, t].sum())
    assert kept >= 2
    params = SolveParams(max_providers={tid: kept - 1})
    capped = solve(region, params)
    assert capped.status == "optimal"
    assert int(capped.keep[:, t].sum()) <= kept - 1
    assert verify(capped, region, params) == []
    # the other treatments are not capped
    for u in range(1, len(region.treatments)):
        assert np.array_equal(capped.keep[:, u], solved.keep[:, u])


def test_what_if_applies_a_cap_like_a_fresh_solve(region: Instance, solved: Solution) -> None:
    from herschik.optimiser.whatif import WhatIf

    tid = region.treatment_ids[0]
    session = WhatIf(region, SolveParams())
    capped = session.apply(max_providers={tid: int(solved.keep[:, 0].sum()) - 1})
    fresh = solve(region, session.params)
    assert np.array_equal(capped.keep, fresh.keep)
    assert capped.objective == pytest.approx(fresh.objective, abs=1e-6)
    assert verify(capped, region, session.params) == []


def test_verifier_catches_a_violated_cap(region: Instance, solved: Solution) -> None:
    tid = region.treatment_ids[0]
    kept = int(solved.keep[:, 0].sum())
    problems = verify(solved, region, SolveParams(max_providers={"*": 1}))
    assert any(p.startswith(f"{tid}: {kept} hospitals keep it") and "max_providers 1" in p
               for p in problems)
    assert verify(solved, region, SolveParams(max_providers={"*": kept + 5})) == []


def test_infeasible_cap_is_diagnosed_with_the_smallest_feasible_cap(region: Instance) -> None:
    tid = region.treatment_ids[0]
    params = SolveParams(max_providers={tid: 1}, max_travel=45.0)
    uncapped = solve(region, params.model_copy(update={"max_providers": {}}))
    assert uncapped.feasible
    sol = solve(region, params)
    assert sol.status == "partially_infeasible"  # the other treatments have a plan
    diag = sol.diagnosis
    info = diag["max_providers_conflicts"][tid]
    assert info["max_providers"] == 1
    need = info["smallest_feasible_max_providers"]
    assert need is not None and need >= 2
    assert "max_providers" in diag["reason"] and f"{need} would be feasible" in diag["reason"]
    assert solve(region, params.model_copy(update={"max_providers": {tid: need}})).feasible
    assert not solve(region, params.model_copy(update={"max_providers": {tid: need - 1}})
                     ).feasible


def test_forced_keeps_beyond_the_cap_are_diagnosed(region: Instance) -> None:
    t = 0
    providers = np.nonzero(region.baseline_volume[:, t] > 0)[0][:2]
    tid = region.treatment_ids[t]
    params = SolveParams(max_providers={tid: 1}, force_keep=[
        {"site_id": region.site_ids[s], "intervention_id": tid} for s in providers])
    sol = solve(region, params)
    assert sol.status == "partially_infeasible"  # the other treatments have a plan
    assert sol.diagnosis["max_providers_conflicts"][tid] == {"max_providers": 1,
                                                             "forced_keep": 2}
    assert "forced to keep it but max_providers allows 1" in sol.diagnosis["reason"]


def test_max_providers_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="max_providers for x must be between 1 and"):
        SolveParams(max_providers={"x": 0})
    with pytest.raises(ValidationError):
        SolveParams(max_providers={"x": 1.5})
    assert SolveParams(max_providers={"*": 2, "x": 3}).max_providers_for("x") == 3
    assert SolveParams(max_providers={"*": 2}).max_providers_for("y") == 2
    assert SolveParams().max_providers_for("y") is None


def test_scenario_file_reads_max_providers() -> None:
    from herschik.scenarios.scenario.file import scenario_from_dict

    spec = scenario_from_dict({"name": "cap", "max_providers": {"pancreas_resection": 2}})
    (run,) = spec.expand()
    assert run.params.max_providers == {"pancreas_resection": 2}


def test_scenario_file_refuses_an_unknown_treatment_in_max_providers() -> None:
    """Regression: an unknown id in max_providers was silently ignored (a planner's typo left
    the treatment uncapped); '*' is not an id and stays allowed."""
    from herschik.scenarios.scenario.file import ScenarioError, scenario_from_dict

    (run,) = scenario_from_dict({"name": "cap", "max_providers": {"nope": 2}}).expand()
    with pytest.raises(ScenarioError, match=r"max_providers\.nope: unknown id"):
        run.check(treatment_ids=["pancreas_resection"])
    (run,) = scenario_from_dict({"name": "cap", "max_providers": {"*": 2}}).expand()
    run.check(treatment_ids=["pancreas_resection"])


def test_every_treatment_keyed_parameter_is_checked_without_a_by_hand_line() -> None:
    """The scenario check derives the treatment-keyed parameters from SolveParams (as the CLI's
    flags are), so a new dict field needs no line in scenarios/; '*' is every treatment where a
    field means it and refused by the field where it does not (margin_by_treatment)."""
    from herschik.scenarios.scenario.file import ScenarioError, scenario_from_dict
    from herschik.scenarios.scenario.param_flags import param_flags
    from pydantic import ValidationError

    keyed = {spec.field for spec in param_flags()
             if spec.kind == "mapping" and spec.key_choices is None}
    assert {"margin_by_treatment", "max_providers"} <= keyed
    for field, value in (("margin_by_treatment", 0.1), ("max_providers", 2)):
        (run,) = scenario_from_dict({"name": "typo", field: {"nope": value}}).expand()
        with pytest.raises(ScenarioError, match=rf"{field}\.nope: unknown id"):
            run.check(treatment_ids=["pancreas_resection"])
    with pytest.raises(ValidationError, match="'\\*' is not a treatment"):
        SolveParams(margin_by_treatment={"*": 0.1})
