"""The ``herschik`` command as the tests run it, and what a refusal must look like."""

from __future__ import annotations

import sys

import pytest

#: the command in a child process (the console script's module, this interpreter)
HERSCHIK = [sys.executable, "-m", "herschik.scenarios.cli"]
#: solve flags that skip the slow planner outputs when a test does not read them
FAST = ["--no-maps", "--no-report"]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a refused command printed on stderr (never a traceback)."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]
