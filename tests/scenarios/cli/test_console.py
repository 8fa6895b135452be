"""The console of ``herschik solve``: a compact summary that fits 80 columns when piped, with
hospital names; no solver banner; the command's wall seconds; ``herschik --version``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from herschik.scenarios.cli.console_summary import summary_lines

from herschik import __version__
from herschik.i18n import use_language
from tests.support.cli import HERSCHIK


def _herschik(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(LANG="C.UTF-8", LANGUAGE="", LC_ALL="")
    return subprocess.run([*HERSCHIK, *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=600, check=False)


@pytest.fixture(scope="module")
def midden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One real solve of Midden-Nederland through the command line, stdout piped."""
    work = tmp_path_factory.mktemp("console")
    run = _herschik("solve", "--region", "midden", "--out", str(work / "run"), "--no-maps",
                    "--no-report", "--solver", "highs", cwd=work)
    assert run.returncode == 0, run.stderr
    return work / "run", run.stdout


def test_piped_summary_fits_80_columns_and_names_hospitals(midden: tuple[Path, str]) -> None:
    out, stdout = midden
    lines = stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert "…" not in stdout and "┃" not in stdout  # no cut names, no wrapped table
    assert len(lines) < 50
    changes = pd.read_csv(out / "hospital_changes.csv")
    lost = changes[changes["status"] == "lost"]
    assert not lost.empty
    joined = " ".join(stdout.split())  # names may wrap onto the next line
    for name in set(lost["site_name"]):
        assert name in joined
    summary = json.loads((out / "summary.json").read_text())
    displaced = round(summary["kpis"]["patients_displaced"])
    assert f"{displaced:,} must move" in joined  # the same number as summary.json


def test_no_solver_banner_on_stdout(midden: tuple[Path, str]) -> None:
    _, stdout = midden
    assert "HiGHS" not in stdout and "Running" not in stdout


def test_the_head_line_shows_the_commands_wall_seconds(midden: tuple[Path, str]) -> None:
    out, _ = midden
    summary = json.loads((out / "summary.json").read_text())
    summary["solve_seconds"] = 73.31  # summed over sub-problems: not what the command took
    head = summary_lines(summary, wall_seconds=64.8)[0]
    assert head.endswith("64.8 s") and "73.3" not in head


def test_dutch_summary_uses_the_norm_reports_names(midden: tuple[Path, str]) -> None:
    out, _ = midden
    summary = json.loads((out / "summary.json").read_text())
    names = {"aaa_surgery": "Aortic aneurysm: surgical treatment (incl. acute)"}
    with use_language("nl"):
        lines = summary_lines(summary, treatment_names=names,
                              hospital_changes=pd.read_csv(out / "hospital_changes.csv"),
                              width=80)
    text = " ".join(" ".join(lines).split())
    assert "Aorta-aneurysma: chirurgische behandelingen (inclusief acute) (aaa_surgery)" in text
    assert "patiënten/jr" in text and "Behandelingen die veranderen" in text
    assert max(len(line) for line in lines) <= 80
    # Dutch number format: 5.151 patients, decimal comma
    assert f"{round(summary['kpis']['patients']):,}".replace(",", ".") + " patiënten" in text


def test_version_exits_0_and_prints_the_version(tmp_path: Path) -> None:
    run = _herschik("--version", cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout.strip() == f"herschik {__version__}"
