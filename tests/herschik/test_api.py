"""The library front door: docs/API.md's example, run exactly as written there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.support.cli import HERSCHIK
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT


def _api_example() -> str:
    text = (ROOT / "docs" / "API.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/API.md has no python example"
    return blocks[0]


def test_api_example_runs_as_documented(tmp_path: Path) -> None:
    """The lines of docs/API.md run in a fresh interpreter outside the checkout (the shipped
    scenario file, no copy) and write their own run folder: the quick start's results (README:
    ``--out results/midden``) stay as they were."""
    example = _api_example()
    assert len(example.strip().splitlines()) <= 12
    quick_start = re.search(r"herschik solve --region \S+ --out (\S+)",
                            (ROOT / "README.md").read_text(encoding="utf-8"))
    assert quick_start
    (tmp_path / quick_start.group(1)).mkdir(parents=True)
    sentinel = tmp_path / quick_start.group(1) / "summary.json"
    sentinel.write_text('{"quick start": true}')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    assert sentinel.read_text() == '{"quick start": true}'
    summary = json.loads((tmp_path / "results" / "api-midden-margin10" / "summary.json")
                         .read_text())
    assert summary["region_id"] == "midden"
    assert summary["status"] == "optimal"
    assert summary["verification"]["violations"] == []


def test_library_solve_writes_what_the_cli_writes(tmp_path: Path) -> None:
    """herschik.solve(...).write(dir) and `herschik solve` give the same contract files."""
    import herschik

    dataset = herschik.load_dataset("example")
    instance = herschik.build_instance(dataset, "example")
    result = herschik.solve(instance, margin=0.1)
    assert result.status == "optimal"
    assert result.violations == []
    assert result.kpis["patients"] > 0
    result.write(tmp_path / "lib")
    cli = subprocess.run(
        [*HERSCHIK, "solve", "--region", "example",
         "--margin", "0.1", "--out", str(tmp_path / "cli"), "--no-maps", "--no-report"],
        capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr
    for name in ("site_volumes.csv", "assignments.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "lib" / name),
                                      pd.read_csv(tmp_path / "cli" / name))
    lib = json.loads((tmp_path / "lib" / "summary.json").read_text())
    cli_summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert lib["kpis"] == cli_summary["kpis"]
    assert lib["objective"] == cli_summary["objective"]


def test_run_scenario_applies_the_file(tmp_path: Path) -> None:
    """run_scenario gives the same plan as `herschik solve --scenario` for that file."""
    import herschik

    scenario = ROOT / "scenarios" / "spreading.toml"
    dataset = herschik.load_dataset("example")
    result = herschik.run_scenario(scenario, "example", dataset=dataset)
    cli = subprocess.run(
        [*HERSCHIK, "solve", "--region", "example",
         "--scenario", str(scenario), "--out", str(tmp_path / "cli"), "--no-maps",
         "--no-report"], capture_output=True, text=True, timeout=600)
    assert cli.returncode in (0, 1), cli.stderr
    cli_summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert result.status == cli_summary["status"]
    assert result.summary["scenario"]["margin"] == cli_summary["scenario"]["margin"]
    assert result.summary["kpis"] == cli_summary["kpis"]
