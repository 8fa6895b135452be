"""Scenario files: extends/merge/cycles, grids, validation errors, growth, norms, run ids."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from herschik.optimiser.instance import Instance, Site, Treatment
from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.scenarios.scenario.file import load_scenario, scenario_from_dict, with_overrides
from herschik.scenarios.scenario.resolved import ResolvedScenario

from herschik.errors import ScenarioError
from tests.support.paths import REPO_ROOT

SHIPPED = REPO_ROOT / "scenarios"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def tiny_instance() -> Instance:
    """2 areas, 2 sites, 2 treatments (one tiered) with a consistent baseline."""
    treatments = (
        Treatment(id="t_a", group_id="g1", norm=20.0),
        Treatment(id="t_b", group_id="g2", norm=80.0, tier_norms={"HHOC": 200.0, "PP": 80.0}),
    )
    sites = (Site(id="s1", role="HHOC"), Site(id="s2", role="PP"))
    demand = np.array([[10.0, 30.0], [20.0, 50.0]])
    flow = np.zeros((2, 2, 2))
    flow[0, 0] = demand[0]
    flow[1, 1] = demand[1]
    return Instance(
        region_id="r",
        area_ids=("a1", "a2"),
        sites=sites,
        treatments=treatments,
        demand=demand,
        travel_min=np.array([[10.0, 30.0], [25.0, 5.0]]),
        baseline_volume=flow.sum(axis=0),
        baseline_flow=flow,
    )


# --- extends and merging ---------------------------------------------------------------------


def test_extends_deep_merges_and_child_wins(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.toml",
        'name = "base"\nmargin = 0.1\nmax_travel = 60\ntime_limit = 30\n'
        "[treatments.t_a]\nmargin = 0.2\ngrowth_pct_per_year = 1.0\n",
    )
    sub = tmp_path / "sub"
    sub.mkdir()
    child = write(
        sub,
        "child.toml",
        'extends = "../base.toml"\nmax_travel = "none"\nobjective = "providers"\n'
        "[treatments.t_a]\nnorm_multiplier = 1.5\n",
    )
    [run] = load_scenario(child).expand()
    assert run.name == "child"  # a child without name is named after its file
    assert run.params.margin == 0.1  # inherited
    assert run.params.time_limit == 30
    assert run.params.max_travel is None  # "none" removes the parent's limit
    assert run.params.objective == "providers"
    assert run.params.margin_by_treatment == {"t_a": 0.2}  # tables merge key by key
    assert run.model.treatments["t_a"].norm_multiplier == 1.5
    assert run.model.treatments["t_a"].growth_pct_per_year == 1.0


def test_extends_recursive(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", "margin = 0.3\nmax_loss_share = 0.5\n")
    write(tmp_path, "b.toml", 'extends = "a.toml"\nmax_loss_share = 0.4\nmax_travel = 90\n')
    c = write(tmp_path, "c.toml", 'extends = "b.toml"\nmax_travel = 75\n')
    [run] = load_scenario(c).expand()
    assert (run.params.margin, run.params.max_loss_share, run.params.max_travel) == (
        0.3,
        0.4,
        75,
    )


def test_extends_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    write(tmp_path, "b.toml", 'extends = "c.toml"\n')
    write(tmp_path, "c.toml", 'extends = "a.toml"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "a.toml")
    assert info.value.field == "extends"
    assert "cycle" in info.value.message
    self_ref = write(tmp_path, "self.toml", 'extends = "self.toml"\n')
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario(self_ref)


def test_extends_missing_file_names_the_referrer(tmp_path: Path) -> None:
    path = write(tmp_path, "x.toml", 'extends = "nope.toml"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.file.endswith("x.toml")
    assert info.value.field == "extends"
    assert "nope.toml" in info.value.message


# --- grids -----------------------------------------------------------------------------------


def test_grid_expansion_count_order_and_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "g.toml",
        'name = "g"\n[grid]\nmargin = [0, 0.1, 0.25]\nmax_travel = [45, 60, "none"]\n'
        'objective = ["travel", "providers"]\n',
    )
    spec = load_scenario(path)
    runs = spec.expand()
    assert spec.n_runs == len(runs) == 18
    points = [(r.params.margin, r.params.max_travel, r.params.objective) for r in runs]
    # Cartesian product in the order written: the last key varies fastest
    assert points[:4] == [
        (0.0, 45, "travel"),
        (0.0, 45, "providers"),
        (0.0, 60, "travel"),
        (0.0, 60, "providers"),
    ]
    assert points[-1] == (0.25, None, "providers")
    assert len(set(points)) == 18
    assert [r.index for r in runs] == list(range(18))
    assert runs[5].name == "g[margin=0,max_travel=none,objective=providers]"
    assert runs[5].grid_point == {"margin": 0, "max_travel": None, "objective": "providers"}
    # deterministic: a second load expands identically
    assert [r.as_dict() for r in load_scenario(path).expand()] == [r.as_dict() for r in runs]


def test_grid_is_inherited_and_extended(tmp_path: Path) -> None:
    write(tmp_path, "base.toml", "[grid]\nmargin = [0.1, 0.25]\n")
    child = write(
        tmp_path, "child.toml", 'extends = "base.toml"\n[grid]\ntarget_year = [2030, 2035]\n'
    )
    runs = load_scenario(child).expand()
    assert [(r.params.margin, r.target_year) for r in runs] == [
        (0.1, 2030),
        (0.1, 2035),
        (0.25, 2030),
        (0.25, 2035),
    ]


def test_dotted_grid_keys_reach_into_tables(tmp_path: Path) -> None:
    path = write(tmp_path, "d.toml", '[grid]\n"treatments.t_a.norm_multiplier" = [1.0, 1.5]\n')
    runs = load_scenario(path).expand()
    assert [r.norm_multiplier_for(Treatment(id="t_a")) for r in runs] == [1.0, 1.5]
    assert [r.norm_multiplier_for(Treatment(id="t_b")) for r in runs] == [1.0, 1.0]


def test_no_grid_is_one_run(tmp_path: Path) -> None:
    runs = load_scenario(write(tmp_path, "one.toml", "margin = 0.2\n")).expand()
    assert len(runs) == 1 and runs[0].grid_point == {} and runs[0].name == "one"


# --- validation errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("margin = -0.1\n", "margin", "greater than or equal to 0"),
        ("margn = 0.1\n", "margn", "did you mean 'margin'"),
        ('objective = "fastest"\n', "objective", "travel"),
        ("max_loss_share = 1.5\n", "max_loss_share", "less than or equal to 1"),
        ("[treatments.t_a]\nmargin = -1\n", "treatments.t_a.margin", "greater than or equal"),
        ("[treatments.t_a]\nnorm = 3\n", "treatments.t_a.norm", "Extra inputs"),
        ("[groups.g1]\nmargin = 0.1\n", "groups.g1.margin", "Extra inputs"),
        ("[grid]\nmargin = [0, -1]\n", "grid.margin", "greater than or equal to 0"),
        ("[grid]\nmax_travl = [45]\n", "grid.max_travl", "did you mean 'max_travel'"),
        ("[grid]\nmargin = []\n", "grid.margin", "at least one value"),
        ("[grid]\nmargin = [0.1, 0.1]\n", "grid.margin", "repeated"),
        ("visits_per_patient = 2\n", "(scenario)", "shared_care_local_visits"),
        ("margin = [\n", "(toml)", ""),
    ],
)
def test_validation_errors_name_file_and_key(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = write(tmp_path, "x.toml", text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    error = info.value
    assert error.file.endswith("x.toml")
    assert error.field == field
    assert message in error.message
    line = str(error)
    assert "\n" not in line and line.startswith(error.file) and f": {field}: " in line


def test_error_in_parent_names_the_parent(tmp_path: Path) -> None:
    write(tmp_path, "parent.toml", "margin = -2\n")
    child = write(tmp_path, "child.toml", 'extends = "parent.toml"\nmax_travel = 60\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(child)
    assert info.value.file.endswith("parent.toml") and info.value.field == "margin"
    # ... unless the child fixes it
    fixed = write(tmp_path, "fixed.toml", 'extends = "parent.toml"\nmargin = 0.1\n')
    assert load_scenario(fixed).expand()[0].params.margin == 0.1


def test_error_message_format_matches_the_brief(tmp_path: Path) -> None:
    path = write(tmp_path, "x.toml", "margin = -1\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert re.fullmatch(
        r".*x\.toml: margin: Input should be greater than or equal to 0", str(info.value)
    )


# --- applying growth, norms and closures -----------------------------------------------------


def test_growth_per_treatment_group_and_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "grow.toml",
        "base_year = 2025\ntarget_year = 2035\ngrowth_pct_per_year = 1.0\n"
        "[groups.g2]\ngrowth_pct_per_year = 2.0\n",
    )
    [run] = load_scenario(path).expand()
    instance = tiny_instance()
    grown = run.apply(instance)
    factor_a, factor_b = 1.01**10, 1.02**10
    np.testing.assert_allclose(grown.demand[:, 0], instance.demand[:, 0] * factor_a)
    np.testing.assert_allclose(grown.demand[:, 1], instance.demand[:, 1] * factor_b)
    assert grown.demand[1, 1] == pytest.approx(50 * 1.218994419, rel=1e-9)
    # the baseline (today) is untouched, the input instance too
    np.testing.assert_array_equal(grown.baseline_flow, instance.baseline_flow)
    assert instance.demand[1, 1] == 50.0
    # a treatment-level value beats the group's
    write(
        tmp_path,
        "grow2.toml",
        'extends = "grow.toml"\n[treatments.t_b]\ngrowth_pct_per_year = -1.0\n',
    )
    [run2] = load_scenario(tmp_path / "grow2.toml").expand()
    np.testing.assert_allclose(run2.apply(instance).demand[:, 1], instance.demand[:, 1] * 0.99**10)
    assert run2.applied(instance)["demand_factor"]["t_b"] == pytest.approx(0.99**10, abs=1e-6)


def test_no_target_year_means_no_growth(tmp_path: Path) -> None:
    [run] = load_scenario(write(tmp_path, "g.toml", "growth_pct_per_year = 5\n")).expand()
    instance = tiny_instance()
    assert run.apply(instance) is instance


def test_norm_multiplier_scales_norms_and_tiers(tmp_path: Path) -> None:
    path = write(
        tmp_path, "n.toml", "norm_multiplier = 1.5\n[treatments.t_a]\nnorm_multiplier = 2.0\n"
    )
    [run] = load_scenario(path).expand()
    instance = tiny_instance()
    raised = run.apply(instance)
    t_a, t_b = raised.treatments
    assert t_a.norm == 40.0
    assert t_b.norm == 120.0 and dict(t_b.tier_norms or {}) == {"HHOC": 300.0, "PP": 120.0}
    np.testing.assert_allclose(raised.norm_matrix(), [[40.0, 300.0], [40.0, 120.0]])
    assert instance.treatments[0].norm == 20.0  # original untouched
    np.testing.assert_array_equal(raised.demand, instance.demand)


def test_closures_become_force_close_and_are_restricted_to_the_instance(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.toml",
        'closures = ["s2", "elsewhere"]\n[[force_close]]\nsite_id = "s1"\n'
        'intervention_id = "t_a"\n',
    )
    [run] = load_scenario(path).expand()
    assert run.closures == ("s2", "elsewhere")
    assert run.params.force_close == [
        SiteTreatment(site_id="s1", intervention_id="t_a"),
        SiteTreatment(site_id="s2", intervention_id="*"),
        SiteTreatment(site_id="elsewhere", intervention_id="*"),
    ]
    restricted = run.params_for(tiny_instance())
    assert [(e.site_id, e.intervention_id) for e in restricted.force_close] == [
        ("s1", "t_a"),
        ("s2", "*"),
    ]
    with pytest.raises(ScenarioError, match="closures: unknown site 'elsewhere'"):
        run.check(site_ids=["s1", "s2"], treatment_ids=["t_a", "t_b"])


def test_check_reports_unknown_treatment_ids(tmp_path: Path) -> None:
    [run] = load_scenario(write(tmp_path, "t.toml", "[treatments.t_x]\nmargin = 0.1\n")).expand()
    with pytest.raises(ScenarioError) as info:
        run.check(treatment_ids=["t_a", "t_b"])
    assert info.value.field == "treatments.t_x"


# --- identity --------------------------------------------------------------------------------


def _runs(tmp_path: Path, text: str) -> list[ResolvedScenario]:
    return load_scenario(write(tmp_path, "r.toml", text)).expand()


def test_run_id_is_stable_and_sensitive(tmp_path: Path) -> None:
    text = "margin = 0.1\n[grid]\nmax_travel = [45, 60]\n"
    runs = _runs(tmp_path, text)
    ids = [r.run_id("data-1", "west") for r in runs]
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)
    assert ids == [r.run_id("data-1", "west") for r in _runs(tmp_path, text)]  # stable
    assert ids[0] != ids[1]  # grid point
    assert runs[0].run_id("data-2", "west") != ids[0]  # data
    assert runs[0].run_id("data-1", "oost") != ids[0]  # region
    other = _runs(tmp_path, "margin = 0.11\n[grid]\nmax_travel = [45, 60]\n")
    assert other[0].run_id("data-1", "west") != ids[0]  # any parameter
    grown = _runs(tmp_path, "margin = 0.1\ntarget_year = 2030\n[grid]\nmax_travel = [45, 60]\n")
    assert grown[0].run_id("data-1", "west") != ids[0]  # scenario settings too
    # cosmetic changes (comments, description, key order) do not change the id
    same = _runs(
        tmp_path,
        '# a comment\ndescription = "words"\n[grid]\nmax_travel = [45, 60]\n\n[treatments]\n',
    )
    same_margin = _runs(
        tmp_path, 'description = "x"\nmargin = 0.1\n[grid]\nmax_travel = [45, 60]\n'
    )
    assert same_margin[0].run_id("data-1", "west") == ids[0]
    assert same[0].run_id("data-1", "west") != ids[0]  # margin differs (default 0)


def test_as_dict_is_json_ready_and_complete(tmp_path: Path) -> None:
    [run] = _runs(tmp_path, 'closures = ["s1"]\ntarget_year = 2030\nmax_travel = "none"\n')
    data = run.as_dict()
    assert json.loads(json.dumps(data)) == data
    for key in SolveParams.model_fields:
        assert key in data
    assert data["max_travel"] is None
    assert data["force_close"] == [{"site_id": "s1", "intervention_id": "*"}]
    assert data["closures"] == ["s1"] and data["target_year"] == 2030


def test_with_overrides_flags_win_and_change_the_id(tmp_path: Path) -> None:
    [run] = _runs(tmp_path, "margin = 0.1\nmax_travel = 60\n")
    same = with_overrides(run, margin=None, max_travel=None)
    assert same is run
    new = with_overrides(run, margin=0.25, max_travel="none", objective="moved")
    assert (new.params.margin, new.params.max_travel, new.params.objective) == (
        0.25,
        None,
        "moved",
    )
    assert new.name == "r (margin=0.25,max_travel=none,objective=moved)"
    assert run.params.margin == 0.1  # the original is unchanged
    assert new.as_dict()["overrides"] == {"margin": 0.25, "max_travel": None, "objective": "moved"}
    assert new.run_id("d", "r") != run.run_id("d", "r")
    with pytest.raises(ScenarioError) as info:
        with_overrides(run, margin=-1)
    assert info.value.file == "(command line)" and info.value.field == "margin"
    with pytest.raises(ScenarioError, match="not a scenario parameter"):
        with_overrides(run, colour="red")


def test_scenario_from_dict(tmp_path: Path) -> None:
    write(tmp_path, "base.toml", "margin = 0.2\n")
    spec = scenario_from_dict(
        {"extends": "base.toml", "grid": {"objective": ["travel", "moved"]}}, base_dir=tmp_path
    )
    assert [(r.params.margin, r.params.objective) for r in spec.expand()] == [
        (0.2, "travel"),
        (0.2, "moved"),
    ]


# --- the shipped files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "n_runs"),
    [
        ("tranche1.toml", 1),
        ("tranche1-margin.toml", 2),
        ("tranche1-sweep.toml", 18),
        ("tranche1-confidence.toml", 3),
        ("growth-2035.toml", 4),
        ("spreading.toml", 1),
    ],
)
def test_shipped_scenarios_load(file: str, n_runs: int) -> None:
    path = SHIPPED / file
    assert path.read_text(encoding="utf-8").startswith("# "), "comment header with the question"
    spec = load_scenario(path)
    runs = spec.expand()
    assert len(runs) == n_runs
    assert spec.description
    ids = {r.run_id("x", "west") for r in runs}
    assert len(ids) == n_runs


def test_shipped_values() -> None:
    [tranche1] = load_scenario(SHIPPED / "tranche1.toml").expand()
    assert tranche1.params.margin == 0 and tranche1.params.objective == "planner"
    margins = [r.params.margin for r in load_scenario(SHIPPED / "tranche1-margin.toml").expand()]
    assert margins == [0.10, 0.25]
    confident = load_scenario(SHIPPED / "tranche1-confidence.toml").expand()
    assert [(r.params.norm_confidence, r.params.margin) for r in confident] == [
        (0.8, 0.0), (0.9, 0.0), (0.95, 0.0)]
    sweep = load_scenario(SHIPPED / "tranche1-sweep.toml").expand()
    assert {(r.params.margin, r.params.max_travel, r.params.objective) for r in sweep} == {
        (m, t, o)
        for m in (0.0, 0.1, 0.25)
        for t in (45.0, 60.0, None)
        for o in ("travel", "providers")
    }
    [spreading] = load_scenario(SHIPPED / "spreading.toml").expand()
    assert spreading.params.objective == "providers"
    assert spreading.params.max_loss_share == 0.3 and spreading.params.max_travel == 60
    growth = load_scenario(SHIPPED / "growth-2035.toml").expand()
    assert {r.target_year for r in growth} == {2030, 2035}
    assert {r.params.margin for r in growth} == {0.10, 0.25}
    pancreas = Treatment(id="pancreas_resection", group_id="pancreas")
    run_2035 = [r for r in growth if r.target_year == 2035][0]
    assert run_2035.growth_factor_for(pancreas) == pytest.approx(1.02**10)


def test_cross_field_error_with_a_grid_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "x.toml", "visits_per_patient = 2\n[grid]\nmargin = [0, 0.1]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.field == "(scenario)" and "shared_care_local_visits" in info.value.message


def test_confidence_is_a_grid_axis_and_excludes_the_margin(tmp_path: Path) -> None:
    """norm_confidence sweeps like margin; a point that sets both is one clear scenario error."""
    path = write(tmp_path, "c.toml", "[grid]\nnorm_confidence = [0.8, 0.9]\n"
                 "norm_period_years = [1, 3]\n")
    runs = load_scenario(path).expand()
    assert [(r.params.norm_confidence, r.params.norm_period_years) for r in runs] == [
        (0.8, 1), (0.8, 3), (0.9, 1), (0.9, 3)]
    assert len({r.run_id("x", "west") for r in runs}) == 4
    both = write(tmp_path, "both.toml", "margin = 0.1\n[grid]\nnorm_confidence = [0.9]\n")
    with pytest.raises(ScenarioError, match="norm_confidence replaces the margin"):
        load_scenario(both).expand()
