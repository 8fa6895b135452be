"""Solve statuses are one enum (optimiser/status.py) that reads as the plain strings of the
contract, and one map from status to the CLI's exit code."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from herschik.optimiser.params import SolveParams
from herschik.optimiser.results import summary_dict
from herschik.optimiser.solution import Solution
from herschik.optimiser.solve import solve
from herschik.optimiser.status import SolveStatus, exit_code_for_status
from herschik.optimiser.synthetic import synthetic_instance

from herschik.errors import EXIT_INFEASIBLE, EXIT_OK, EXIT_TIME_LIMIT_NO_SOLUTION
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT


@pytest.mark.parametrize("status", list(SolveStatus))
def test_a_status_reads_as_its_string_everywhere(status: SolveStatus) -> None:
    assert status == status.value
    assert str(status) == f"{status}" == f"{status}" == status.value
    assert f"{status:>25}" == f"{status.value:>25}"
    assert json.dumps({"status": status}) == json.dumps({"status": status.value})
    assert pd.DataFrame({"status": [status]}).to_csv(index=False) == f"status\n{status.value}\n"
    assert SolveStatus(status.value) is status


def test_exit_codes_of_statuses() -> None:
    assert exit_code_for_status(SolveStatus.INFEASIBLE) == EXIT_INFEASIBLE == 1
    assert exit_code_for_status("infeasible") == EXIT_INFEASIBLE
    assert exit_code_for_status("time_limit_no_solution") == EXIT_TIME_LIMIT_NO_SOLUTION == 4
    for solved in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, "optimal", "feasible"):
        assert exit_code_for_status(solved) == EXIT_OK


def test_solution_status_is_the_enum_and_rejects_unknown_words() -> None:
    assert Solution(status="feasible", solver="x").status is SolveStatus.FEASIBLE
    assert Solution(status="optimal", solver="x").feasible
    assert not Solution(status="time_limit_no_solution", solver="x").feasible
    with pytest.raises(ValueError):
        Solution(status="no_solution", solver="x")  # the old back-end word is gone


def test_summary_holds_plain_strings() -> None:
    """summary.json, runs.csv and sweeps across processes see str, not the enum."""
    instance = synthetic_instance(30, 4, 2, seed=1)
    params = SolveParams(margin=0.1)
    solution = solve(instance, params)
    assert solution.status is SolveStatus.OPTIMAL
    summary = summary_dict(instance, solution, params, {})
    assert type(summary["status"]) is str and summary["status"] == "optimal"
    assert all(type(entry["status"]) is str for entry in summary["subproblems"])


def test_infeasible_solve_status_and_subproblem_words() -> None:
    instance = synthetic_instance(30, 4, 2, seed=1)
    solution = solve(instance, SolveParams(margin=50.0))
    assert solution.status is SolveStatus.INFEASIBLE
    words = {entry["status"] for entry in solution.subproblems}
    assert words <= {s.value for s in SolveStatus} and "infeasible" in words
    assert solution.flow is None and np.all(solution.keep is None)


def test_no_free_status_strings_in_the_optimiser() -> None:
    """Status words are written once, in status.py (diagnose.py is left to the registry
    rewrite: its comparisons with plain strings still hold for a str enum)."""
    words = "|".join([s.value for s in SolveStatus] + ["no_solution"])
    # a status word compared, assigned, passed or listed (not a solver log being searched)
    used = re.compile(rf'(==|!=|=|\(|\[|\{{|,|:)\s*"({words})"')
    offenders = []
    for path in sorted((ROOT / "optimiser").glob("*.py")):
        if path.name in ("status.py", "diagnose.py"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if used.search(code):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []


def test_the_front_door_names_the_status() -> None:
    import herschik

    result = herschik.solve(synthetic_instance(30, 4, 2, seed=1), margin=0.1)
    assert herschik.SolveStatus is SolveStatus
    assert result.status is SolveStatus.OPTIMAL and result.status == "optimal"
