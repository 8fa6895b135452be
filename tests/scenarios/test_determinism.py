"""Determinism: the same inputs and scenario give the same bytes, apart from timing fields.

Each objective is solved once in this process and once in a fresh process with a different
hash seed (so set/dict iteration order cannot leak into the results); site_volumes.csv and
assignments.csv must be byte-identical and summary.json equal once wall-clock timings are
removed. A small sweep gives the same runs.csv (minus timing columns) and the same run folders
with one worker and with two.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from herschik.geo.schema import EXAMPLE_DIR
from herschik.scenarios.cli.main import main

from tests.support.cli import HERSCHIK

OBJECTIVES = ("planner", "travel", "moved", "providers")
RESULT_CSVS = ("site_volumes.csv", "assignments.csv")


def without_timings(value: Any) -> Any:
    """``value`` with every ``*_seconds`` / ``seconds`` key removed, at any depth."""
    if isinstance(value, dict):
        return {
            key: without_timings(item)
            for key, item in value.items()
            if not (key == "seconds" or str(key).endswith("_seconds"))
        }
    if isinstance(value, list):
        return [without_timings(item) for item in value]
    return value


def solve_args(objective: str, out: Path) -> list[str]:
    return ["solve", "--region", "example", "--out", str(out), "--objective", objective,
            "--margin", "0.1", "--max-travel", "90", "--no-maps", "--no-report"]


def assert_same_run(first: Path, second: Path) -> None:
    for name in RESULT_CSVS:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    one, two = (json.loads((d / "summary.json").read_text(encoding="utf-8"))
                for d in (first, second))
    assert without_timings(one) == without_timings(two)


@pytest.fixture(scope="module")
def other_process_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every objective solved in a separate process (started together, with a hash seed)."""
    root = tmp_path_factory.mktemp("determinism-subprocess")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    processes = {
        objective: subprocess.Popen(
            [*HERSCHIK, *solve_args(objective, root / objective)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )
        for objective in OBJECTIVES
    }
    for process in processes.values():
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode(errors="replace")
    return {objective: root / objective for objective in OBJECTIVES}


def test_without_timings_drops_nested_seconds() -> None:
    summary = {"build_seconds": 1.0, "kpis": {"patients": 3},
               "subproblems": [{"solve_seconds": 0.2, "status": "optimal", "seconds": 4}]}
    assert without_timings(summary) == {"kpis": {"patients": 3},
                                        "subproblems": [{"status": "optimal"}]}


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_same_scenario_same_bytes(
    objective: str, other_process_runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / objective
    assert main(solve_args(objective, out)) == 0
    assert_same_run(out, other_process_runs[objective])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["scenario"]["objective"] == objective


def test_data_export_is_byte_identical(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main(["data", "export", "--data", str(EXAMPLE_DIR), "--out",
                     str(tmp_path / name)]) == 0
    files = sorted(p.name for p in (tmp_path / "a").iterdir() if p.suffix in (".csv", ".json"))
    assert "demand.csv" in files and "dataset.json" in files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# --- sweeps: workers=1 vs workers=2 ------------------------------------------------------------
def _runs_without_timings(out: Path) -> pd.DataFrame:
    from herschik.scenarios.sweep.table import TIMING_COLUMNS

    text = (out / "runs.csv").read_text(encoding="utf-8")
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    timing = [c for c in frame.columns if c in TIMING_COLUMNS or c.endswith("_seconds")]
    return frame.drop(columns=timing)


def test_sweep_is_identical_across_worker_counts(tmp_path: Path) -> None:
    from herschik.scenarios.sweep import runner as sweep
    scenario = tmp_path / "grid.toml"
    scenario.write_text(
        'name = "determinism"\nmax_travel = 90\n[grid]\nmargin = [0.0, 0.2]\n',
        encoding="utf-8",
    )
    outputs = {"gpkg": False, "geojson": False, "xlsx": False, "maps": False, "report": False}
    frames = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        runs = sweep.run_sweep(scenario, out, regions=["example"], workers=workers,
                               dataset_source="example", progress=False, outputs=outputs)
        assert runs.attrs["solved"] == 2
        assert set(runs["status"]) <= {"optimal", "feasible"}
        frames[workers] = _runs_without_timings(out)
    pd.testing.assert_frame_equal(frames[1], frames[2])
    for run_dir in frames[1]["run_dir"]:
        assert_same_run(tmp_path / "w1" / run_dir, tmp_path / "w2" / run_dir)


def _without_timings(entries: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if not k.endswith("_seconds")} for e in entries]


@pytest.mark.parametrize("objective", ["planner", "travel"])
def test_an_infeasible_scenario_reports_the_others_the_same_however_far_they_got(
        objective: str) -> None:
    """Regression: when one sub-problem proves infeasible the others stop, so whether another
    one was reported 'optimal' (with its objective) or 'feasible_not_optimised' depended on
    thread timing. Both extremes are forced here: every component optimised to the end, and
    one at a time with the early stop (after the infeasible one, only feasibility checks)."""
    from herschik.optimiser.params import SolveParams
    from herschik.optimiser.solve import assemble_solution, solve_components
    from herschik.optimiser.synthetic import synthetic_instance

    instance = synthetic_instance(40, 5, 3, seed=3)
    params = SolveParams(objective=objective,
                         margin_by_treatment={instance.treatment_ids[0]: 20.0})
    reports = []
    for early_stop in (False, True):
        comps, explanation, results = solve_components(instance, params, max_workers=1,
                                                       early_stop=early_stop)
        solution = assemble_solution(instance, params, comps, explanation, results, partial=False)
        assert solution.status == "infeasible"
        reports.append(_without_timings(solution.subproblems))
        if not early_stop:  # every other one optimised: with partial plans, kept as such
            partial = assemble_solution(instance, params, comps, explanation, results)
            assert partial.status == "partially_infeasible"
            assert [e["status"] for e in partial.subproblems][1:] == ["optimal"] * (
                len(comps) - 1)
    statuses = [e["status"] for e in reports[0]]
    assert statuses[0] == "infeasible" and set(statuses[1:]) == {"feasible_not_optimised"}
    assert reports[0] == reports[1]
