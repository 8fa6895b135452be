"""Issue 23 goal 6: a sweep's workers re-use solved sub-problems between the runs of a region
(what-if sessions, scenarios/sweep/task.py). Every run folder must hold exactly what an
independent fresh run writes: same CSV bytes, same summary apart from wall-clock timings, on a
real region, for optimal, partial and infeasible runs, whatever ran before in the worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from herschik.scenarios.run import TIMING_FIELDS, run_solve, scenario_instance
from herschik.scenarios.scenario.file import load_scenario
from herschik.scenarios.sweep import task as sweep_task
from herschik.scenarios.sweep.executors import longest_first, region_chunks
from herschik.scenarios.sweep.runner import run_sweep
from herschik.scenarios.sweep.task import cached_dataset

#: midden: margin 0 and 90 min is optimal, a raised margin or 45 min leaves some treatments
#: without a plan (partially_infeasible), 10 min leaves none; planner and moved share models
#: across travel limits that cut no flow (the session re-uses those)
GRID = """\
name = "sessions"
time_limit = 60
[grid]
margin = [0, 0.2]
max_travel = [10, 45, 90, "none"]
objective = ["planner", "moved"]
"""


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items()
                if k not in TIMING_FIELDS and not str(k).endswith("_seconds")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _same_folder(swept: Path, fresh: Path, other_file: bool = False) -> None:
    """Same files, same bytes, same summary apart from timings (``other_file``: and apart from
    the scenario file's path and the run's index in it)."""
    names = sorted(p.name for p in fresh.iterdir() if not p.name.startswith("."))
    assert sorted(p.name for p in swept.iterdir() if not p.name.startswith(".")) == names
    for name in names:
        if name == "summary.json":
            a = json.loads((swept / name).read_text(encoding="utf-8"))
            b = json.loads((fresh / name).read_text(encoding="utf-8"))
            if other_file:
                for summary in (a, b):
                    summary["scenario"].pop("source")
            assert _without_timings(a) == _without_timings(b), swept
        else:
            assert (swept / name).read_bytes() == (fresh / name).read_bytes(), (swept, name)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Path]:
    """The grid swept in-process (one worker: one session runs every run of the region)."""
    folder = tmp_path_factory.mktemp("sessions")
    scenario = folder / "grid.toml"
    scenario.write_text(GRID, encoding="utf-8")
    sweep_task._SESSIONS.clear()
    frame = run_sweep(scenario, folder / "out", regions="midden", workers=1, progress=False)
    return scenario, frame, folder


def test_every_run_is_the_fresh_run(swept: tuple[Path, Any, Path]) -> None:
    scenario, frame, folder = swept
    statuses = set(frame["status"])
    assert {"optimal", "partially_infeasible"} <= statuses, statuses
    assert statuses & {"infeasible", "partially_infeasible"}
    assert (frame["error"].fillna("") == "").all(), frame["error"]
    runs = load_scenario(scenario).expand()
    dataset = cached_dataset(None)
    by_name = {run.name: run for run in runs}
    for row in frame.itertuples():
        resolved = by_name[row.scenario]
        instance, params, info = scenario_instance(dataset, "midden", resolved)
        fresh = folder / "fresh" / row.run_id
        run_solve(instance, params, fresh, dataset=dataset, scenario_info=info,
                  outputs={"gpkg": False, "geojson": False, "xlsx": False, "maps": False,
                           "report": False},
                  warnings=resolved.outside(instance), reasons=False, lock=False)
        _same_folder(folder / "out" / row.run_dir, fresh)


def test_sessions_re_used_sub_problems(swept: tuple[Path, Any, Path]) -> None:
    """The session really re-used results (else this file tests nothing new)."""
    sessions = list(sweep_task._SESSIONS.values())
    assert sessions, "no what-if session was kept"
    reused = sum(session.last_step.count("unchanged") + session.last_step.count("cached")
                 for session in sessions)
    # the last run (margin 0.2, no limit, moved) follows margin 0.2, 90 min, moved
    assert reused > 0


def test_order_does_not_change_a_run(swept: tuple[Path, Any, Path],
                                     tmp_path: Path) -> None:
    """The same grid in reverse order (another history in the session) writes the same runs."""
    scenario, frame, folder = swept
    reverse = tmp_path / "reverse.toml"
    reverse.write_text(GRID.replace('[10, 45, 90, "none"]', '["none", 90, 45, 10]')
                       .replace("[0, 0.2]", "[0.2, 0]")
                       .replace('["planner", "moved"]', '["moved", "planner"]'),
                       encoding="utf-8")
    sweep_task._SESSIONS.clear()
    again = run_sweep(reverse, tmp_path / "out", regions="midden", workers=1, progress=False)
    def point(row: Any) -> tuple[Any, ...]:
        return row.margin, str(row.max_travel), row.objective

    first = {point(r): folder / "out" / r.run_dir for r in frame.itertuples()}
    assert len(again) == len(first) == 16
    for row in again.itertuples():
        _same_folder(tmp_path / "out" / row.run_dir, first[point(row)], other_file=True)


def test_chunks_keep_a_region_together() -> None:
    class Task:
        def __init__(self, region: str) -> None:
            self.region_id = region

    tasks: list[Any] = [Task("a")] * 45 + [Task("b")] * 3 + [Task("c")] * 30
    chunks = region_chunks(tasks, 2)
    assert [t for chunk in chunks for t in chunk] == tasks  # every task, in order
    assert all(len({t.region_id for t in chunk}) == 1 for chunk in chunks)
    assert max(len(chunk) for chunk in chunks) == 10  # 78 tasks / (4 x 2 workers), rounded up
    assert len(region_chunks(tasks[:3], 2)) == 3
    assert max(len(c) for c in region_chunks([Task("a")] * 700, 2)) == 20


def test_the_chunks_with_most_work_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Longest-processing-time first: the heaviest region's chunks first (in their order), the
    cheapest last; every chunk once; unknown weights leave the order as it was."""
    from herschik.scenarios.sweep import executors

    class Task:
        def __init__(self, region: str, i: int) -> None:
            self.region_id, self.i = region, i

    tasks: list[Any] = ([Task("a", i) for i in range(45)] + [Task("b", i) for i in range(3)]
                        + [Task("c", i) for i in range(30)])
    chunks = region_chunks(tasks, 2)
    weights = {"a": 1.0, "b": 50.0, "c": 3.0}
    monkeypatch.setattr(executors, "cached_run_weight", lambda task: weights[task.region_id])
    ordered = longest_first(chunks)
    assert sorted(map(id, ordered)) == sorted(map(id, chunks))
    work = [len(chunk) * weights[chunk[0].region_id] for chunk in ordered]
    assert work == sorted(work, reverse=True)
    assert [c[0].region_id for c in ordered][:4] == ["b", "c", "c", "c"]
    for region in "abc":  # a region's chunks keep the grid's order (its session's history)
        mine = [t.i for chunk in ordered for t in chunk if t.region_id == region]
        assert mine == sorted(mine)
    monkeypatch.setattr(executors, "cached_run_weight",
                        lambda task: None if task.region_id == "c" else 1.0)
    assert longest_first(chunks) == chunks


def test_run_weight_is_known_for_a_cached_instance() -> None:
    from herschik.scenarios.sweep.task import SweepTask, cached_instance, cached_run_weight

    def task(region: str) -> SweepTask:
        return SweepTask("r", region, None, "", None, None, {})  # type: ignore[arg-type]

    instance, _ = cached_instance(None, "midden", None)
    weight = cached_run_weight(task("midden"))
    assert weight == float((instance.demand > 0).sum() * len(instance.sites)) > 0
    assert cached_run_weight(task("no_such_region")) is None


def test_a_failed_step_drops_the_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """A session whose step raised is in an unknown state: the run is an error row and the
    next run starts a new session (and is solved right)."""
    scenario = tmp_path / "grid.toml"
    scenario.write_text('name = "drop"\n[grid]\nmargin = [0, 0.1, 0.25]\n', encoding="utf-8")
    real = sweep_task.WhatIf.set_params
    calls: list[int] = []

    def fails_once(self, params):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("step failed")
        return real(self, params)

    monkeypatch.setattr(sweep_task.WhatIf, "set_params", fails_once)
    sweep_task._SESSIONS.clear()
    runs = run_sweep(scenario, tmp_path / "out", workers=1, dataset_source="example",
                     progress=False)
    assert list(runs["status"].iloc[[0, 2]]) == ["optimal", "optimal"]
    assert runs["status"].iloc[1] == "error" and "step failed" in runs["error"].iloc[1]
    assert len(calls) == 1  # the third run found no session: it started a new one
    monkeypatch.setattr(sweep_task.WhatIf, "set_params", real)
    sweep_task._SESSIONS.clear()
    again = run_sweep(scenario, tmp_path / "fresh", workers=1, dataset_source="example",
                      progress=False)
    for a, b in zip(runs.itertuples(), again.itertuples(), strict=True):
        if a.status != "error":
            _same_folder(tmp_path / "out" / a.run_dir, tmp_path / "fresh" / b.run_dir)


def _midden_tasks(scenario: Path, runs_dir: Path) -> list[Any]:
    """The sweep's tasks of ``scenario`` on midden (the run ids of run_sweep's)."""
    from herschik.scenarios.data_identity import data_fingerprint
    from herschik.scenarios.sweep.runner import DEFAULT_OUTPUTS, _tasks

    spec = load_scenario(scenario)
    fingerprint = data_fingerprint(cached_dataset(None), None)
    return _tasks(spec, spec.expand(), ["midden"], fingerprint, runs_dir, None, None,
                  dict(DEFAULT_OUTPUTS))


def test_background_writer_writes_the_same_folders(swept: tuple[Path, Any, Path],
                                                   tmp_path: Path) -> None:
    """A pool worker's chunk (run_tasks) writes each folder on a background thread while it
    solves the next run: the same folders as the in-process sweep, every record final."""
    scenario, frame, folder = swept
    tasks = _midden_tasks(scenario, tmp_path / "runs")
    sweep_task._SESSIONS.clear()
    records = sweep_task.run_tasks(tasks)
    assert [r["run_id"] for r in records] == [t.run_id for t in tasks]
    by_id = {row.run_id: folder / "out" / row.run_dir for row in frame.itertuples()}
    for record in records:
        assert record["error"] is None and record["summary"] is not None
        assert record["wall_seconds"] > 0 and "write" in record["cpu"]
        _same_folder(tmp_path / "runs" / record["run_id"], by_id[record["run_id"]])


def test_a_failed_background_write_is_that_run_s_error(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder the writer thread cannot write makes that run an error record (no folder);
    the runs before and after it are written."""
    from herschik.scenarios.data_identity import data_fingerprint
    from herschik.scenarios.run import RunResult
    from herschik.scenarios.sweep.runner import DEFAULT_OUTPUTS, _tasks

    scenario = tmp_path / "grid.toml"
    scenario.write_text('name = "w"\n[grid]\nmargin = [0, 0.1, 0.25]\n', encoding="utf-8")
    spec = load_scenario(scenario)
    fingerprint = data_fingerprint(cached_dataset("example"), None)
    tasks = _tasks(spec, spec.expand(), ["example"], fingerprint, tmp_path / "runs",
                   "example", None, dict(DEFAULT_OUTPUTS))
    real = RunResult.write

    def fails_for_the_second(self, out_dir, **kwargs):  # type: ignore[no-untyped-def]
        if Path(out_dir).name == tasks[1].run_id:
            raise OSError("disk said no")
        return real(self, out_dir, **kwargs)

    monkeypatch.setattr(RunResult, "write", fails_for_the_second)
    sweep_task._SESSIONS.clear()
    records = sweep_task.run_tasks(tasks)
    assert records[1]["summary"] is None and "OSError: disk said no" in records[1]["error"]
    assert sweep_task.read_summary(Path(tasks[1].run_dir)) is None
    for i in (0, 2):
        assert records[i]["error"] is None
        assert sweep_task.read_summary(Path(tasks[i].run_dir)) == records[i]["summary"]
