"""The reported solution quality is the solver's real one (issue 12, item 7).

* a loose ``mip_gap`` that stops early is reported with the real gap and bound, and never as
  ``optimal`` (it used to say optimal / gap 0.0 with an objective 2.8 % above the optimum);
* a time limit that runs out before any feasible solution is ``time_limit_no_solution`` with
  its own exit code (4), never ``infeasible``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from herschik.geo.dataset import load_dataset
from herschik.optimiser import solve as solve_module
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import PROVEN_OPTIMAL_GAP, solve
from herschik.optimiser.status import SolveStatus
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.cli.main import main

from herschik.errors import EXIT_TIME_LIMIT_NO_SOLUTION


@pytest.fixture(scope="module")
def midden():
    return build_instance(load_dataset(), "midden")


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_loose_mip_gap_reports_real_gap_and_bound(midden, solver: str) -> None:
    # travel: one phase, so objective and bound are the solver's own (as in the issue)
    exact = solve(midden, SolveParams(solver=solver, objective="travel"))
    loose = solve(midden, SolveParams(solver=solver, objective="travel", mip_gap=0.5))
    assert exact.status == "optimal"
    assert exact.mip_gap <= PROVEN_OPTIMAL_GAP
    # the bound is a real lower bound of the optimum and the objective an upper bound
    assert loose.mip_bound is not None
    assert loose.mip_bound <= exact.objective * (1 + 1e-6)
    assert loose.objective >= exact.objective * (1 - 1e-6)
    for entry in loose.subproblems:
        assert entry["bound"] <= entry["objective"] + 1e-6 * max(1.0, abs(entry["objective"]))
        if entry["status"] == "optimal":
            assert entry["gap"] <= PROVEN_OPTIMAL_GAP
    # stopping early shows: a worse objective comes with a positive gap and status feasible
    if loose.objective > exact.objective * (1 + PROVEN_OPTIMAL_GAP):
        assert loose.status == "feasible"
        assert loose.mip_gap > PROVEN_OPTIMAL_GAP
        worst = max(e["gap"] for e in loose.subproblems)
        assert loose.mip_gap == pytest.approx(worst)


def test_loose_mip_gap_is_not_reported_optimal_on_midden(midden) -> None:
    """The reproduction of the issue: HiGHS' branch and bound with mip_gap 0.5 stops 2.8 %
    above the optimum (the keep-set search, which solves these models by default, is off)."""
    exact = solve(midden, SolveParams(objective="travel"),
                  algorithms=solve_module.BRANCH_AND_BOUND_ONLY)
    loose = solve(midden, SolveParams(objective="travel", mip_gap=0.5),
                  algorithms=solve_module.BRANCH_AND_BOUND_ONLY)
    assert loose.objective > exact.objective * 1.01  # HiGHS does stop early here
    assert loose.status == "feasible"
    assert (loose.objective - loose.mip_bound) / loose.objective >= 0.01


def test_loose_mip_gap_stops_the_keep_set_search_early_and_says_so(midden) -> None:
    """The keep-set search stops at the requested gap like a MIP solver: each sub-problem is
    optimal only within PROVEN_OPTIMAL_GAP, else feasible with its real gap and bound."""
    exact = solve(midden, SolveParams(objective="travel"))
    loose = solve(midden, SolveParams(objective="travel", mip_gap=0.5))
    searched = [e for e in loose.subproblems if e.get("algorithm") == "keep_sets"]
    assert searched
    for entry in searched:
        real_gap = (entry["objective"] - entry["bound"]) / max(abs(entry["objective"]), 1e-9)
        assert entry["gap"] == pytest.approx(max(real_gap, 0.0), abs=1e-9)
        assert entry["status"] == ("optimal" if entry["gap"] <= PROVEN_OPTIMAL_GAP
                                   else "feasible")
    assert loose.mip_bound <= exact.objective * (1 + 1e-9)
    assert loose.objective >= exact.objective * (1 - 1e-9)


@pytest.mark.parametrize("objective", ["travel", "planner"])
def test_exact_solve_reports_its_bound(midden, objective: str) -> None:
    exact = solve(midden, SolveParams(objective=objective))
    assert exact.mip_bound is not None
    assert exact.mip_bound == pytest.approx(exact.objective, rel=PROVEN_OPTIMAL_GAP, abs=1e-6)
    assert exact.mip_bound <= exact.objective * (1 + 1e-9)


def test_time_limit_without_solution_is_its_own_status(midden) -> None:
    # travel: the planner objective's greedy start is a plan even without solver time
    solution = solve(midden, SolveParams(objective="travel", time_limit=1e-6))
    assert solution.status == SolveStatus.TIME_LIMIT_NO_SOLUTION
    assert solution.flow is None and solution.keep is None
    assert solution.diagnosis["time_limit_reached"] is True
    assert solution.diagnosis["unsolved_treatments"]
    assert "infeasible" not in {e["status"] for e in solution.subproblems}
    assert "not mean the scenario is infeasible" in solution.diagnosis["reason"]


def test_cli_time_limit_without_solution_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["solve", "--region", "example", "--objective", "travel", "--time-limit", "1e-6",
                 "--out", str(out), "--no-maps", "--no-report"])
    assert code == EXIT_TIME_LIMIT_NO_SOLUTION == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "time_limit_no_solution"
    assert summary["diagnosis"]["time_limit_reached"] is True
    assert summary["verification"]["violations"] == []
