"""Sweeps on the example region: every combination, resume, workers, Dask, partial runs, plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from herschik.scenarios.sweep.plot import pareto_front, plot_sweep
from herschik.scenarios.sweep.runner import run_sweep
from herschik.scenarios.sweep.table import TIMING_COLUMNS

from herschik.atomic import MARKER
from herschik.errors import ScenarioError

GRID = """\
# test grid: 2 x 2 = 4 runs on the example region
name = "small"
mip_gap = 0.0001
[grid]
margin = [0, 0.25]
objective = ["travel", "providers"]
"""


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "small.toml"
    path.write_text(GRID, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def first(
    tmp_path_factory: pytest.TempPathFactory, scenario_file: Path
) -> tuple[Path, pd.DataFrame]:
    """The reference sweep: local process pool, 2 workers, with plots."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    runs = run_sweep(
        scenario_file,
        out,
        regions="all",
        workers=2,
        dataset_source="example",
        plot=True,
        progress=False,
    )
    return out, runs


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in TIMING_COLUMNS if c in frame.columns])


def summary_mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in sorted(out.glob("runs/*/summary.json"))}


def test_runs_table_has_every_combination(first: tuple[Path, pd.DataFrame]) -> None:
    out, runs = first
    assert runs.attrs["solved"] == 4 and runs.attrs["skipped"] == 0
    assert len(runs) == 4
    assert list(zip(runs["margin"], runs["objective"], strict=True)) == [
        (0.0, "travel"),
        (0.0, "providers"),
        (0.25, "travel"),
        (0.25, "providers"),
    ]
    assert set(runs["region_id"]) == {"example"}
    assert runs["run_id"].is_unique
    assert set(runs["status"]) <= {"optimal", "feasible"}, runs[["status", "error"]]
    for column in (
        "run_id",
        "region_id",
        "scenario",
        "margin",
        "max_travel",
        "objective",
        "status",
        "objective_value",
        "mip_gap",
        "build_seconds",
        "solve_seconds",
        "patients",
        "patients_moved",
        "mean_extra_min",
        "p90_extra_min",
        "max_extra_min",
        "providers_before_total",
        "providers_after_total",
    ):
        assert column in runs.columns, column
    # more margin never keeps more providers (same objective)
    by = runs.set_index(["objective", "margin"])["providers_after_total"]
    assert by[("travel", 0.25)] <= by[("travel", 0.0)]
    assert (runs["providers_after_total"] <= runs["providers_before_total"]).all()

    on_disk = pd.read_csv(out / "runs.csv")
    assert list(on_disk["run_id"]) == list(runs["run_id"])
    parquet = pd.read_parquet(out / "runs.parquet")
    assert list(parquet.columns) == list(runs.columns) and len(parquet) == 4
    for row in runs.itertuples():
        folder = out / row.run_dir
        summary = json.loads((folder / "summary.json").read_text())
        assert folder.name == row.run_id
        assert summary["scenario"]["name"] == row.scenario
        assert summary["status"] == row.status
        assert (folder / "site_volumes.csv").exists() and (folder / "assignments.csv").exists()
        assert not (folder / "results.gpkg").exists()  # only with --gpkg
    # nothing half-written left behind
    assert not [p for p in out.rglob(".*") if p.name != MARKER]


def test_second_identical_sweep_solves_nothing(
    first: tuple[Path, pd.DataFrame], scenario_file: Path
) -> None:
    out, runs = first
    before = summary_mtimes(out)
    again = run_sweep(scenario_file, out, workers=2, dataset_source="example", progress=False)
    assert again.attrs["solved"] == 0 and again.attrs["skipped"] == 4
    assert summary_mtimes(out) == before  # no folder was rewritten
    pd.testing.assert_frame_equal(again, runs, check_like=False)  # timings read back too


def test_workers_one_gives_the_same_results(
    first: tuple[Path, pd.DataFrame], scenario_file: Path, tmp_path: Path
) -> None:
    _, runs = first
    serial = run_sweep(
        scenario_file, tmp_path / "serial", workers=1, dataset_source="example", progress=False
    )
    assert serial.attrs["solved"] == 4
    pd.testing.assert_frame_equal(comparable(serial), comparable(runs))


def test_dask_executor_matches_local(
    first: tuple[Path, pd.DataFrame], scenario_file: Path, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("dask.distributed")
    _, runs = first
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        on_dask = run_sweep(
            scenario_file,
            tmp_path / "dask",
            executor="dask",
            scheduler=cluster.scheduler_address,
            dataset_source="example",
            progress=False,
        )
    assert on_dask.attrs["solved"] == 4
    pd.testing.assert_frame_equal(comparable(on_dask), comparable(runs))


def test_partial_and_leftover_folders_are_rerun_cleanly(
    first: tuple[Path, pd.DataFrame],
    scenario_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import herschik.scenarios.sweep.executors as executors

    # as after an in-process solve: workers are spawned and build their own instances
    monkeypatch.setattr(executors, "_SOLVED_HERE", True)
    assert executors.start_method(2, 2) == "spawn"
    source, runs = first
    out = tmp_path / "resume"
    shutil.copytree(source, out)
    killed, staged = runs["run_id"].iloc[1], runs["run_id"].iloc[2]
    # a run killed mid-write: folder without summary.json (and a stray file)
    (out / "runs" / killed / "summary.json").unlink()
    (out / "runs" / killed / "junk.tmp").write_text("half")
    # a run killed while staging: its folder absent, a hidden staging folder left behind
    shutil.rmtree(out / "runs" / staged)
    leftover = out / "runs" / f".{staged}.staging-abc123"
    leftover.mkdir()
    (leftover / "assignments.csv").write_text("torn")
    before = summary_mtimes(out)

    resumed = run_sweep(scenario_file, out, workers=2, dataset_source="example", progress=False)
    assert resumed.attrs["solved"] == 2 and resumed.attrs["skipped"] == 2
    after = summary_mtimes(out)
    assert set(after) == set(runs["run_id"])
    assert {k for k in after if after[k] != before.get(k)} == {killed, staged}
    assert not (out / "runs" / killed / "junk.tmp").exists()
    assert not leftover.exists() and not [p for p in out.rglob(".*") if p.name != MARKER]
    pd.testing.assert_frame_equal(comparable(resumed), comparable(runs))
    assert len(pd.read_csv(out / "runs.csv")) == 4  # no duplicates


def test_failed_runs_become_error_rows_and_are_retried(
    scenario_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # patched where a sweep task looks it up (sweep/task.py imports it at its top)
    import herschik.scenarios.sweep.task as run_module

    real = run_module.solve_in_session  # a task's solve (the worker's what-if session)

    def flaky(task, base, instance, params):  # type: ignore[no-untyped-def]
        if params.objective == "providers":
            raise RuntimeError("solver exploded\non two lines")
        return real(task, base, instance, params)

    monkeypatch.setattr(run_module, "solve_in_session", flaky)
    out = tmp_path / "flaky"
    runs = run_sweep(scenario_file, out, workers=1, dataset_source="example", progress=False)
    errors = runs[runs["status"] == "error"]
    assert len(runs) == 4 and len(errors) == 2
    assert set(errors["objective"]) == {"providers"}
    assert errors["error"].str.contains("RuntimeError: solver exploded on two lines").all()
    assert len(pd.read_csv(out / "runs.csv")) == 4
    monkeypatch.setattr(run_module, "solve_in_session", real)
    retried = run_sweep(scenario_file, out, workers=1, dataset_source="example", progress=False)
    assert retried.attrs["solved"] == 2 and set(retried["status"]) <= {"optimal", "feasible"}


def test_plots_exist(first: tuple[Path, pd.DataFrame]) -> None:
    out, runs = first
    assert runs.attrs["plots"] == [str(out / "plots" / "sweep_example.png")]
    png = out / "plots" / "sweep_example.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_plot_handles_failures_and_several_regions(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "region_id": ["b", "a", "a", "a"],
            "scenario": ["s[x=1]", "s[x=1]", "s[x=2]", "s[x=3]"],
            "status": ["error", "optimal", "optimal", "infeasible"],
            "providers_after_total": [None, 10, 12, None],
            "mean_extra_min": [None, 1.0, 2.0, None],
            "p90_extra_min": [None, 3.0, 5.0, None],
        }
    )
    paths = plot_sweep(frame, tmp_path)
    assert [p.name for p in paths] == ["sweep_a.png", "sweep_b.png"]
    assert all(p.exists() for p in paths)


def test_pareto_front() -> None:
    providers = [10, 12, 12, 8, 12]
    extra = [1.0, 2.0, 3.0, 1.5, 2.0]
    # (10, 1.0) and (12, 2.0) twice are on the front; (12, 3.0) and (8, 1.5) are dominated
    assert list(pareto_front(providers, extra)) == [True, True, False, False, True]


def test_bad_input(scenario_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="regions: unknown region 'atlantis'"):
        run_sweep(
            scenario_file, tmp_path, regions=["atlantis"], dataset_source="example", progress=False
        )
    bad = tmp_path / "bad.toml"
    bad.write_text('closures = ["NOT-A-SITE"]\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match="closures: unknown site"):
        run_sweep(bad, tmp_path / "x", dataset_source="example", progress=False)


def test_cli_sweep_gpkg_on_request(scenario_file: Path, tmp_path: Path,
                                   capfd: pytest.CaptureFixture[str]) -> None:
    from herschik.scenarios.cli.main import main

    from herschik import geo

    example = Path(geo.__file__).parent / "data" / "example"
    out = tmp_path / "sweep"
    assert main(["sweep", str(scenario_file), "--out", str(out), "--regions", "example",
                 "--data", str(example), "--workers", "1", "--gpkg"]) == 0
    folders = [p for p in (out / "runs").iterdir() if p.is_dir()]
    assert folders and all((p / "results.gpkg").exists() for p in folders)
    # the console's first line says which world the runs describe (issue 22)
    assert capfd.readouterr().out.splitlines()[0].startswith("Baseline: ")


def test_runs_table_has_the_displaced_patient_kpis(first: tuple[Path, pd.DataFrame]) -> None:
    """Issue 14: the displaced-patient figures are in runs.csv, equal to each summary.json."""
    from herschik.optimiser.kpis import DISPLACED_KPIS

    out, runs = first
    for column in (*DISPLACED_KPIS, "providers_lost_total", "providers_gained_total"):
        assert column in runs.columns, column
    for row in runs.itertuples(index=False):
        kpis = json.loads((out / row.run_dir / "summary.json").read_text())["kpis"]
        for key in DISPLACED_KPIS:
            assert getattr(row, key) == pytest.approx(kpis[key])
        assert row.providers_lost_total == sum(kpis["providers_lost"].values())


def test_the_algorithms_choice_reaches_every_run(
    tmp_path: Path, scenario_file: Path, first: tuple[Path, pd.DataFrame]
) -> None:
    """Regression (issue 26): the sweep benchmark chose the path by reassigning a module
    global that forked workers happened to inherit; the choice is now passed in and carried by
    each run's task, so a side-by-side sweep really runs branch and bound only."""
    from herschik.optimiser.algorithms import BRANCH_AND_BOUND_ONLY

    def algorithms_used(out: Path) -> set[str]:
        used = set()
        for path in out.glob("runs/*/summary.json"):
            for entry in json.loads(path.read_text())["subproblems"]:
                used.add(entry.get("algorithm", "branch_and_bound"))
        return used

    out = tmp_path / "bb"
    runs = run_sweep(scenario_file, out, workers=2, dataset_source="example", progress=False,
                     algorithms=BRANCH_AND_BOUND_ONLY)
    assert "keep_sets" in algorithms_used(first[0])  # the default path uses the search
    assert algorithms_used(out) == {"branch_and_bound"}
    pd.testing.assert_series_equal(runs["objective_value"], first[1]["objective_value"],
                                   rtol=1e-6, check_names=False)
