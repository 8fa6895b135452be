"""One run of a sweep (a picklable :class:`SweepTask` and :func:`run_task`), the per-process
caches that let workers reuse datasets, instances and solved sub-problems between tasks, and
when a run folder counts as finished.

Sub-problems: each worker keeps one what-if session per region (and applied scenario data) in
``same_as_fresh`` mode (optimiser/whatif.py, as the app uses it): a run re-solves only the
treatments whose model differs from every model the session has solved, and takes the others'
results as they were. A model's result is a function of the model alone, so every run's plan
is the one a fresh ``solve()`` gives, to the last digit, whatever ran before it in the worker
(tests/scenarios/sweep/test_sessions.py); the order only decides how much is re-used.

Files: a pool worker's chunk (:func:`run_tasks`) writes each run's folder on a background
thread (:class:`FolderWriter`) while it solves the next run: the same writer, the same bytes."""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import os
import shutil
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
from herschik.geo.dataset import load_dataset
from herschik.optimiser.algorithms import Algorithms
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solution import Solution
from herschik.optimiser.whatif import WhatIf
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.run import apply_scenario, verified_result
from herschik.scenarios.scenario.resolved import ResolvedScenario

from herschik.atomic import folder_is_complete
from herschik.errors import exit_code_for

_COMPLETE = "summary.json"


# --- per-process caches (workers keep datasets and instances between tasks) --------------------

_DATASETS: dict[str, Any] = {}
_INSTANCES: dict[tuple[str, str, str], Any] = {}
_MAX_INSTANCES = 16


def _source_key(source: Any) -> str:
    if source is None:
        return "<default>"
    if isinstance(source, Path) or (isinstance(source, str) and source != "example"):
        return str(Path(source).resolve())
    return str(source)


def _network_key(network: Any) -> str:
    return "<default>" if network is None else str(Path(network).resolve())


def cached_dataset(source: Any) -> Any:
    key = _source_key(source)
    if key not in _DATASETS:
        _DATASETS[key] = load_dataset(source)
    return _DATASETS[key]


def cached_instance(source: Any, region_id: str, network: Any) -> tuple[Any, float]:
    """The region's instance from the process cache; (instance, seconds spent building it)."""
    key = (_source_key(source), region_id, _network_key(network))
    if key in _INSTANCES:
        return _INSTANCES[key], 0.0

    start = time.perf_counter()
    instance = build_instance(cached_dataset(source), region_id, network=network)
    if len(_INSTANCES) >= _MAX_INSTANCES:
        _INSTANCES.pop(next(iter(_INSTANCES)))
    _INSTANCES[key] = instance
    return instance, time.perf_counter() - start


def cached_run_weight(task: SweepTask) -> float | None:
    """A proxy of one run's solve time for the task's region, from the instance this process
    has cached (None when it has not built it): flow candidates, i.e. (area, treatment) pairs
    with demand x sites. Sweep runs of a region cost about this in proportion (measured on the
    seven regions, 2026-12-07: 1.6-3.1 ms of CPU per 1,000 candidates a run)."""
    instance = _INSTANCES.get((_source_key(task.dataset_source), task.region_id,
                               _network_key(task.network)))
    if instance is None:
        return None
    return float(np.count_nonzero(instance.demand > 0) * len(instance.sites))


# --- per-process what-if sessions (solved sub-problems re-used between a region's runs) -------

_SESSIONS: OrderedDict[tuple[Any, ...], WhatIf] = OrderedDict()
#: sessions a worker keeps (it runs the tasks of one region in sequence, see executors.py)
_MAX_SESSIONS = 2
#: sub-problem results a session remembers: the runs of one margin across every travel limit
#: of the benchmark grid (5 x 19 sub-problems) and more; each holds its model's arrays
SESSION_CACHE_SIZE = 256


def _session_key(task: SweepTask, base: Instance) -> tuple[Any, ...]:
    """What a session's instance depends on: the region's data and the scenario's changes to
    it (growth, norm multipliers; closures and the rest are parameters)."""
    scenario = task.scenario
    return (_source_key(task.dataset_source), task.region_id, _network_key(task.network),
            repr(task.algorithms), task.solve_workers,
            tuple(scenario.growth_factor_for(t) for t in base.treatments),
            tuple(scenario.norm_multiplier_for(t) for t in base.treatments))


def solve_in_session(task: SweepTask, base: Instance, instance: Instance,
                     params: SolveParams) -> tuple[Instance, Solution]:
    """The plan of ``instance`` under ``params``, exactly as ``optimiser.solve.solve`` gives
    it, from this worker's session of the task's region; (the session's instance, the plan).

    The session's instance equals ``instance`` (same region data, same scenario changes); a
    session whose step fails is dropped (its state is then unknown)."""
    key = _session_key(task, base)
    session = _SESSIONS.get(key)
    try:
        if session is None:
            session = WhatIf(instance, params, max_workers=task.solve_workers,
                             same_as_fresh=True, cache_size=SESSION_CACHE_SIZE,
                             algorithms=task.algorithms)
            if len(_SESSIONS) >= _MAX_SESSIONS:
                _SESSIONS.popitem(last=False)
            _SESSIONS[key] = session
            solution = session.solution
        else:
            solution = session.set_params(params)
            _SESSIONS.move_to_end(key)
    except BaseException:
        _SESSIONS.pop(key, None)
        raise
    return session.instance, solution


def _session_counts(task: SweepTask, base: Instance) -> dict[str, int]:
    """What the task's session did in its last step, per action (StepReport.actions)."""
    session = _SESSIONS.get(_session_key(task, base))
    if session is None:
        return {}
    counts: dict[str, int] = {}
    for action in session.last_step.actions.values():
        counts[action] = counts.get(action, 0) + 1
    return counts


# --- one run ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SweepTask:
    """One run of a sweep: what a worker needs (picklable, small)."""

    run_id: str
    region_id: str
    scenario: ResolvedScenario
    run_dir: str
    dataset_source: str | None
    network: str | None
    outputs: dict[str, bool]
    #: threads of each solve: cores / pool workers, so that parallel runs do not oversubscribe
    solve_workers: int | None = None
    #: the exact algorithms each solve may use (None: all; benchmarks compare the paths)
    algorithms: Algorithms | None = None


def _clear_partial(run_dir: Path) -> None:
    """Remove what an interrupted run left: a folder without summary.json, staging folders."""
    parent = run_dir.parent
    if parent.is_dir():
        for stale in parent.glob(f".{run_dir.name}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
    if run_dir.exists() and read_summary(run_dir) is None:
        if run_dir.is_dir():
            shutil.rmtree(run_dir)
        else:
            run_dir.unlink()


def run_task(task: SweepTask, writer: FolderWriter | None = None) -> dict[str, Any]:
    """Solve one run and write its folder; return a result record (never raises).

    Record keys: run_id, summary (dict or None), error (str or None), instance_seconds,
    wall_seconds, pid, cpu (CPU seconds of the thread by part: solve, tables, write) and
    subproblems (how many sub-problems the session re-used: unchanged / cached / resolved).

    ``writer``: the folder is written by that background writer while the caller goes on (the
    record is final only after :meth:`FolderWriter.finish`); without it, here and now.
    """
    start = time.perf_counter()
    cpu_start = time.thread_time()
    cpu: dict[str, float] = {}
    record: dict[str, Any] = {
        "run_id": task.run_id,
        "summary": None,
        "error": None,
        "instance_seconds": 0.0,
        "pid": os.getpid(),
        "cpu": cpu,
    }
    try:
        dataset = cached_dataset(task.dataset_source)
        base, record["instance_seconds"] = cached_instance(
            task.dataset_source, task.region_id, task.network
        )
        instance, params, scenario_info = apply_scenario(base, task.scenario)
        run_dir = Path(task.run_dir)
        _clear_partial(run_dir)
        # as scenarios.run.run_solve, with the solve from the worker's session
        instance, solution = solve_in_session(task, base, instance, params)
        cpu["solve"] = time.thread_time() - cpu_start
        record["subproblems"] = _session_counts(task, base)
        result = verified_result(
            instance, params, solution, scenario_info=scenario_info,
            warnings=task.scenario.outside(base),
            reasons=False,  # a re-solve per lost role: too slow for hundreds of runs
        )
        cpu["tables"] = time.thread_time() - cpu_start - cpu["solve"]
        if writer is not None:
            writer.submit(record, result, run_dir, dataset, task.outputs, start)
            return record
        _write_folder(record, result, run_dir, dataset, task.outputs)
    except Exception as error:  # one failed run must not stop the sweep
        _failed(record, error)
    record["wall_seconds"] = time.perf_counter() - start
    return record


def _failed(record: dict[str, Any], error: Exception) -> None:
    record["summary"] = None
    record["error"] = f"{type(error).__name__}: {' '.join(str(error).split())}"
    record["exit_code"] = exit_code_for(error)


def _write_folder(record: dict[str, Any], result: Any, run_dir: Path, dataset: Any,
                  outputs: dict[str, bool]) -> None:
    """Write the run folder as ``herschik solve`` does; the record gets its summary."""
    started = time.thread_time()
    # lock=False: the sweep's lock on its --out folder covers every run folder
    result.write(run_dir, dataset=dataset, outputs=outputs, lock=False)
    record["cpu"]["write"] = time.thread_time() - started
    record["summary"] = result.summary


class FolderWriter:
    """Writes run folders on one background thread, so that a worker solves its next run
    while the last one's files are written and fsynced (each file is fsynced, then the folder
    is renamed into place and its parent fsynced: ~10 ms of waiting a file on this machine's
    disk, during which the worker's core would idle). Same writer, same bytes; a folder is
    complete or absent as before. At most ``ahead`` folders wait, so a worker never runs far
    ahead of its disk."""

    def __init__(self, ahead: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="herschik-writer")
        self._pending: list[tuple[dict[str, Any], Future[None]]] = []
        self._ahead = ahead

    def submit(self, record: dict[str, Any], result: Any, run_dir: Path, dataset: Any,
               outputs: dict[str, bool], start: float) -> None:
        def write() -> None:
            try:
                _write_folder(record, result, run_dir, dataset, outputs)
            except Exception as error:  # the run's record says it failed, as in run_task
                _failed(record, error)
            record["wall_seconds"] = time.perf_counter() - start

        waiting = [future for _record, future in self._pending if not future.done()]
        if len(waiting) >= self._ahead:
            wait(waiting[: len(waiting) - self._ahead + 1])
        # in the caller's context: a thread does not inherit context variables, and the
        # language of the report, maps and workbook is one (herschik.i18n.use_language)
        context = contextvars.copy_context()
        self._pending.append((record, self._pool.submit(context.run, write)))

    def finish(self) -> None:
        """Wait until every submitted folder is written (or its record says why not)."""
        try:
            for _record, future in self._pending:
                future.result()
        finally:
            self._pool.shutdown(wait=True)


def run_tasks(tasks: list[SweepTask]) -> list[dict[str, Any]]:
    """:func:`run_task` of each task in order (a chunk of one region's runs: one worker, one
    session), each folder written by a :class:`FolderWriter` while the next run is solved;
    the records in the same order, returned once every folder is written."""
    writer = FolderWriter()
    try:
        records = [run_task(task, writer) for task in tasks]
    finally:
        writer.finish()
    return records


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary if the folder is complete (every file its marker lists), else None."""

    if not folder_is_complete(run_dir):
        return None
    path = run_dir / _COMPLETE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and "status" in summary else None
