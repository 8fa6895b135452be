"""Each command's module imports what it needs at its top, and no other command's: the command
table (cli/parser.py COMMANDS) imports a command's module only when that command runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from herschik.scenarios.cli.parser import COMMANDS

#: libraries that only some commands need (the app server, Dask, the PDF and Excel writers)
OPTIONAL = ("uvicorn", "starlette", "dask", "weasyprint", "openpyxl")
#: modules every command may share: `regions` (dataset.py: the flags' dataset, the console)
SHARED = {"herschik.scenarios.cli.dataset"}


def _loaded_after(code: str, watched: list[str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\n"
         f"print(__import__('json').dumps([m for m in {watched!r} if m in sys.modules]))"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"regions"}))
def test_a_command_module_loads_no_other_command(command: str) -> None:
    module = COMMANDS[command][0]
    others = sorted({m for m, _ in COMMANDS.values()} - {module} - SHARED)
    loaded = _loaded_after(f"import {module}", others + list(OPTIONAL))
    allowed = {"app": {"uvicorn", "starlette"}}.get(command, set())
    assert set(loaded) <= allowed


def test_solve_help_builds_its_flags_without_the_solve_stack() -> None:
    """`herschik solve --help` lists every SolveParams flag (pydantic) but imports neither
    pandas nor the run, the solver or the dataset."""
    loaded = _loaded_after(
        "from herschik.scenarios.cli.main import main\n"
        "try:\n    main(['solve', '--help'])\nexcept SystemExit:\n    pass",
        ["pydantic", "pandas", "highspy", "herschik.scenarios.run",
         "herschik.scenarios.cli.solve", "herschik.geo.dataset"])
    assert loaded == ["pydantic"]
