"""One tolerances module (optimiser/tolerances.py): the modules that decode, verify and report
a solution use its named constants, and the decoded flows respect what they promise."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from herschik.optimiser import tolerances
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.synthetic import synthetic_instance

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
#: modules whose tolerances all live in tolerances.py
USERS = ("solve.py", "kpis.py", "results.py", "whatif.py", "backends.py", "baseline.py",
         "verify.py", "formulation.py", "diagnose.py",
         *sorted(f"rows/{p.name}" for p in (ROOT / "optimiser" / "rows").glob("*.py")))


def _tiny_literals(path: Path) -> list[str]:
    """Float literals below 0.01 in code (docstrings and argument defaults aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defaults = {id(d) for node in ast.walk(tree)
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                for d in node.args.defaults + node.args.kw_defaults if d is not None}
    # a named module constant (e.g. an objective's tie-break weight) is not a bare literal
    defaults |= {id(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and all(
                     isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)}
    return [f"{path.name}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, float)
            and 0 < abs(node.value) < 0.01 and id(node) not in defaults]


@pytest.mark.parametrize("module", USERS)
def test_no_bare_tolerance_literals(module: str) -> None:
    assert _tiny_literals(ROOT / "optimiser" / module) == []


def test_every_tolerance_is_documented_and_positive() -> None:
    source = (ROOT / "optimiser" / "tolerances.py").read_text(encoding="utf-8").splitlines()
    names = [n for n in vars(tolerances) if n.isupper()]
    assert len(names) >= 15
    for name in names:
        value = getattr(tolerances, name)
        assert isinstance(value, float) and value > 0, name
        line = next(i for i, text in enumerate(source) if text.startswith(f"{name} ="))
        assert source[line - 1].startswith("#:") or source[line - 1].startswith(
            "MOVES_SLACK_ABS"), f"{name} has no #: comment saying why"


def test_decoded_flows_are_zero_or_above_the_solver_noise() -> None:
    """What tolerances.FLOW_EPS relies on: no decoded flow lies below SOLVER_FLOW_NOISE, so a
    flow counts (> FLOW_EPS) exactly when it is a real one."""
    assert tolerances.FLOW_EPS < tolerances.SOLVER_FLOW_NOISE < tolerances.PROVIDES_MIN
    for seed in range(3):
        instance = synthetic_instance(40, 5, 3, seed=seed)
        solution = solve(instance, SolveParams(margin=0.1))
        assert solution.flow is not None
        positive = solution.flow[solution.flow > 0]
        assert positive.size and np.all(positive >= tolerances.SOLVER_FLOW_NOISE)
