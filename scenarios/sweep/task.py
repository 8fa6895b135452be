"""One run of a sweep (a picklable :class:`SweepTask` and :func:`run_task`), the per-process
caches that let workers reuse datasets and instances between tasks, and when a run folder counts
as finished."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from herschik.geo.dataset import load_dataset
from herschik.optimiser.algorithms import Algorithms
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.run import apply_scenario, run_solve
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


def run_task(task: SweepTask) -> dict[str, Any]:
    """Solve one run and write its folder; return a result record (never raises).

    Record keys: run_id, summary (dict or None), error (str or None), instance_seconds,
    wall_seconds, pid.
    """
    start = time.perf_counter()
    record: dict[str, Any] = {
        "run_id": task.run_id,
        "summary": None,
        "error": None,
        "instance_seconds": 0.0,
        "pid": os.getpid(),
    }
    try:
        dataset = cached_dataset(task.dataset_source)
        base, record["instance_seconds"] = cached_instance(
            task.dataset_source, task.region_id, task.network
        )
        instance, params, scenario_info = apply_scenario(base, task.scenario)
        run_dir = Path(task.run_dir)
        _clear_partial(run_dir)
        record["summary"] = run_solve(
            instance,
            params,
            run_dir,
            dataset=dataset,
            scenario_info=scenario_info,
            outputs=task.outputs,
            max_workers=task.solve_workers,
            warnings=task.scenario.outside(base),
            reasons=False,  # a re-solve per lost role: too slow for hundreds of runs
            algorithms=task.algorithms,
            lock=False,  # the sweep's lock on its --out folder covers every run folder
        )
    except Exception as error:  # one failed run must not stop the sweep
        record["error"] = f"{type(error).__name__}: {' '.join(str(error).split())}"
        record["exit_code"] = exit_code_for(error)
    record["wall_seconds"] = time.perf_counter() - start
    return record


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
