"""Issue 27, item 2: extreme numbers never give a wrong verdict.

* every numeric parameter has a documented finite range, checked at the boundary (exit 2 naming
  it), so no infinity or NaN reaches the model;
* the verifier treats any non-finite value as a violation (a plan whose required volume
  overflowed to infinity was passed: ``margin_by_treatment = 1e307``);
* a solver that gives up ("Unknown") never turns into "infeasible" through the fallback.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.status import SolveStatus
from herschik.optimiser.synthetic import synthetic_instance
from herschik.optimiser.verify import verify
from herschik.scenarios.cli.main import main

from herschik.errors import SolverError
from tests.support.cli import one_error_line

pytestmark = pytest.mark.faults


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--margin-by-treatment", "carotid_intervention=1e307"], "margin_by_treatment"),
        (["--margin", "1e307"], "margin"),
        (["--margin", "101"], "margin"),
        (["--objective-weights", "travel=1e20"], "objective_weights"),
        (["--max-travel", "1e9"], "max_travel"),
        (["--max-extra-travel", "2000"], "max_extra_travel"),
        (["--capacity-factor", "1e300"], "capacity_factor"),
        (["--capacity", "S1:*:1e300"], "capacity"),
        (["--time-limit", "1e300"], "time_limit"),
        (["--mip-gap", "5"], "mip_gap"),
        (["--threads", "100000"], "threads"),
        (["--visits-per-patient", "1e300"], "visits_per_patient"),
        (["--max-providers", "*=100000"], "max_providers"),
    ],
)
def test_out_of_range_numbers_exit_2_naming_the_parameter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], named: str
) -> None:
    out = tmp_path / "run"
    assert main(["solve", "--region", "example", "--out", str(out), *flags]) == 2
    assert named in one_error_line(capsys)
    assert not out.exists()


def test_out_of_range_number_in_a_scenario_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "x"\n[treatments.hn_new]\nmargin = 1e307\n')
    code = main(["solve", "--region", "example", "--scenario", str(scenario), "--out",
                 str(tmp_path / "run")])
    assert code == 2
    assert "hn_new" in one_error_line(capsys)


def test_the_largest_allowed_numbers_still_solve() -> None:
    """The ranges are not too narrow: their ends give a verified plan or a proven verdict."""
    instance = synthetic_instance(n_areas=25, n_sites=4, n_treatments=2, seed=3)
    params = SolveParams(objective_weights={"travel": 1e6, "moved": 1.0}, max_travel=1440,
                         capacity_factor=1000, visits_per_patient=1000,
                         shared_care_local_visits=1000)
    solution = solve(instance, params)
    assert solution.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert verify(solution, instance, params) == []
    extreme_margin = SolveParams(margin=10.0, small_region_rule="fail")
    solution = solve(instance, extreme_margin)
    assert solution.status == SolveStatus.INFEASIBLE  # 11 x every norm: no site reaches it
    assert verify(solution, instance, extreme_margin) == []


def test_verifier_flags_a_required_volume_that_overflowed() -> None:
    """Regression (issue 27 #3): margin 1e307 made required_min infinite; every comparison
    with it was false, so the verifier reported no violation of a plan missing the norm."""
    # norms of 20 and 30 patients: x (1 + 1e307) overflows, as carotid_intervention's did
    instance = synthetic_instance(n_areas=30, n_sites=5, n_treatments=2, seed=0,
                                  norms=[20.0, 30.0])
    solution = solve(instance, SolveParams())
    assert verify(solution, instance, SolveParams()) == []
    treatment = instance.treatments[0].id
    # model_copy skips validation: the params a buggy caller (or an old file) could hand over
    overflowing = SolveParams().model_copy(update={"margin_by_treatment": {treatment: 1e307}})
    problems = verify(solution, instance, overflowing)
    assert any("not finite" in p and treatment in p for p in problems), problems
    nan_margin = SolveParams().model_copy(update={"margin": float("nan")})
    assert any("margin" in p for p in verify(solution, instance, nan_margin))


def test_verifier_flags_non_finite_flows_and_demand() -> None:
    instance = synthetic_instance(n_areas=30, n_sites=5, n_treatments=2, seed=2)
    params = SolveParams()
    solution = solve(instance, params)
    flow = solution.flow.copy()
    flow[0, 0, 0] = np.nan
    broken = type(solution)(**{**solution.__dict__, "flow": flow})
    assert any("not finite" in p for p in verify(broken, instance, params))
    bad_instance = copy.copy(instance)  # Instance refuses it when built: set it afterwards
    bad_instance.demand = instance.demand.copy()
    bad_instance.demand[0, 0] = np.inf
    assert any("demand" in p for p in verify(solution, bad_instance, params))


def test_unknown_from_highs_never_becomes_infeasible() -> None:
    """Regression (issue 27 #2): objective weights 1e20 apart make HiGHS stop with "Unknown";
    the CBC fallback then said "infeasible" about a feasible model. The tiny synthetic
    equivalent of `--objective-weights travel=1e20` on midden."""
    instance = synthetic_instance(n_areas=30, n_sites=5, n_treatments=2, seed=0)
    feasible = solve(instance, SolveParams(single_sourcing=True))
    assert feasible.status == SolveStatus.OPTIMAL  # a plan exists
    extreme = SolveParams(single_sourcing=True).model_copy(
        update={"objective_weights": {"travel": 1e20, "moved": 1.0}})
    with pytest.raises(SolverError, match="undecided"):
        solve(instance, extreme)


@pytest.mark.parametrize(("proof", "infeasible"), [(False, True), (None, False), (True, False)])
def test_fallback_reports_infeasible_only_when_proven(
    monkeypatch: pytest.MonkeyPatch, proof: bool | None, infeasible: bool
) -> None:
    """HiGHS gives up, CBC says "infeasible": reported only when the exact keep-set test
    proves it (``False``); undecided (``None``) or feasible (``True``) raise SolverError."""
    import herschik.optimiser.solve as solve_module
    import herschik.optimiser.subproblem as subproblem_module
    from herschik.optimiser.backends import BackendResult

    def gives_up(*args: object, **kwargs: object) -> BackendResult:
        return BackendResult(SolveStatus.ERROR, solver="highs", message="Unknown")

    def cbc_infeasible(*args: object, **kwargs: object) -> BackendResult:
        return BackendResult(SolveStatus.INFEASIBLE, solver="cbc", message="Infeasible")

    monkeypatch.setattr(subproblem_module, "solve_highs", gives_up)
    monkeypatch.setattr(subproblem_module, "solve_pulp", cbc_infeasible)
    monkeypatch.setattr(subproblem_module, "keep_set_feasible", lambda arrays: proof)
    instance = synthetic_instance(n_areas=30, n_sites=5, n_treatments=2, seed=0)
    only_mip = solve_module.BRANCH_AND_BOUND_ONLY  # HiGHS' branch and bound decides
    if infeasible:
        assert solve(instance, SolveParams(), algorithms=only_mip).status == "infeasible"
    else:
        with pytest.raises(SolverError, match="undecided"):
            solve(instance, SolveParams(), algorithms=only_mip)


# --- scenario files: grids and nesting are bounded before any work -------------------------------


def _solve_scenario(tmp_path: Path, scenario: Path) -> int:
    return main(["solve", "--region", "example", "--scenario", str(scenario), "--out",
                 str(tmp_path / "run")])


def test_huge_grid_list_is_refused_before_the_repeat_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "grid.toml"
    values = ", ".join(str(i) for i in range(1, 120_001))
    scenario.write_text(f'name = "g"\n[grid]\nmax_travel = [{values}]\n')
    assert _solve_scenario(tmp_path, scenario) == 2
    assert "120,000 values" in one_error_line(capsys)


@pytest.mark.parametrize("shape", ["arrays", "tables"])
def test_deeply_nested_toml_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: str
) -> None:
    scenario = tmp_path / "deep.toml"
    depth = 5000
    value = "[" * depth + "]" * depth if shape == "arrays" else "{a = " * depth + "1" + "}" * depth
    scenario.write_text(f'name = "deep"\nbundles = {value}\n')
    assert _solve_scenario(tmp_path, scenario) == 2
    assert "nested more than" in one_error_line(capsys)


def test_long_extends_chain_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n = 1500
    (tmp_path / f"s{n}.toml").write_text('name = "last"\nmargin = 0.1\n')
    for i in range(n):
        (tmp_path / f"s{i}.toml").write_text(f'extends = "s{i + 1}.toml"\n')
    assert _solve_scenario(tmp_path, tmp_path / "s0.toml") == 2
    assert "extends" in one_error_line(capsys)
    (tmp_path / "s5.toml").write_text('name = "short"\nmargin = 0.1\n')  # 5 files: fine
    assert _solve_scenario(tmp_path, tmp_path / "s0.toml") == 0
