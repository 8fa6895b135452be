"""Batch sweeps: a scenario grid x regions, run in a process pool or on Dask, resumable.

``run_sweep(file, out_dir)`` expands the scenario file's grid over the regions and gives every
run a folder ``out_dir/runs/<run_id>/`` written by :func:`scenarios.run.run_solve` (complete or
absent). The run id hashes the resolved scenario, the data and the region, so a second identical
sweep finds every folder complete and solves nothing; an interrupted sweep resumes where it
stopped (partial folders are removed and re-run). ``out_dir/runs.csv`` and ``runs.parquet`` hold
one tidy row per run (parameters, status, KPIs), written atomically.

Reuse: each worker process keeps the loaded dataset and each region's instance (travel-time
matrix, baseline flows) in a per-process cache, and the tasks are ordered by region; with the
local executor the parent builds the instances once before the pool forks, so workers inherit
them. Only the scenario's changes (growth, norms, parameters) differ between runs.

The Dask executor (``executor="dask"``) maps the same task function over a
``dask.distributed`` cluster; workers must see ``out_dir`` (a shared filesystem) and have this
package installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.optimiser.kpis import DISPLACED_KPIS, SCALAR_KPIS
from herschik.scenarios.scenario_file import ResolvedScenario, ScenarioError, load_scenario

__all__ = [
    "DEFAULT_OUTPUTS",
    "KPI_COLUMNS",
    "PARAM_COLUMNS",
    "TIMING_COLUMNS",
    "data_fingerprint",
    "run_sweep",
]

#: Planner outputs written per sweep run (keys of ``run_solve(outputs=...)``). Maps and the
#: HTML report are per-run extras too slow for hundreds of runs; ``herschik solve`` writes them.
#: results.gpkg only on request (``sweep --gpkg``): it was most of a run's writing time.
DEFAULT_OUTPUTS: dict[str, bool] = {
    "gpkg": False,
    "geojson": False,
    "xlsx": False,
    "maps": False,
    "report": False,
}

#: Resolved scalar parameters reported per run (column name -> SolveParams/scenario field).
PARAM_COLUMNS: dict[str, str] = {
    "margin": "margin",
    "max_travel": "max_travel",
    "max_extra_travel": "max_extra_travel",
    "capacity_factor": "capacity_factor",
    "max_loss_share": "max_loss_share",
    "single_sourcing": "single_sourcing",
    "allow_new_providers": "allow_new_providers",
    "objective": "objective",
    "solver": "solver",
    "time_limit": "time_limit",
    "mip_gap_limit": "mip_gap",
    "base_year": "base_year",
    "target_year": "target_year",
    "growth_pct_per_year": "growth_pct_per_year",
    "norm_multiplier": "norm_multiplier",
}

#: Scalar KPIs of summary.json, in this order (others found in summaries follow, sorted).
KPI_COLUMNS: tuple[str, ...] = SCALAR_KPIS + DISPLACED_KPIS

#: Wall-clock columns: they differ between otherwise identical runs.
TIMING_COLUMNS: tuple[str, ...] = ("build_seconds", "solve_seconds")

_COMPLETE = "summary.json"


# --- data identity ---------------------------------------------------------------------------


def _hash_frame(digest: Any, name: str, frame: pd.DataFrame) -> None:
    digest.update(f"frame:{name}:{list(map(str, frame.columns))}:{len(frame)}".encode())
    if len(frame):
        values = pd.util.hash_pandas_object(frame.astype(object), index=False).to_numpy()
        digest.update(np.ascontiguousarray(values).tobytes())


def _hash_file(digest: Any, path: Path) -> None:
    digest.update(f"file:{path.name}:{path.stat().st_size}".encode())
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def data_fingerprint(dataset: Any, network: Any = None) -> str:
    """A sha256 (hex) of the dataset's tables and metadata, the network file and the code version.

    Equal data give equal fingerprints in every process, so run ids are stable across machines.
    """
    digest = hashlib.sha256()
    try:
        version = metadata.version("herschik")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "source"
    digest.update(f"herschik:{version}".encode())
    fields = (
        [f.name for f in dataclasses.fields(dataset)]
        if dataclasses.is_dataclass(dataset)
        else sorted(vars(dataset))
    )
    for name in sorted(fields):
        value = getattr(dataset, name, None)
        if isinstance(value, pd.DataFrame) and "geometry" in value.columns:
            _hash_frame(digest, name, pd.DataFrame(value.drop(columns="geometry")))
            for geometry in value["geometry"].to_wkb():
                digest.update(geometry or b"")
        elif isinstance(value, pd.DataFrame):
            _hash_frame(digest, name, value)
        elif value is None or isinstance(value, (str, int, float, bool, dict, list, tuple)):
            digest.update(f"{name}:{json.dumps(value, sort_keys=True, default=str)}".encode())
    if network is None:
        digest.update(b"network:default")
    elif isinstance(network, (str, Path)) and Path(network).is_file():
        _hash_file(digest, Path(network))
    else:
        digest.update(f"network:{network}".encode())
    return digest.hexdigest()


# --- per-process caches (workers keep datasets and instances between tasks) --------------------

_DATASETS: dict[str, Any] = {}
_INSTANCES: dict[tuple[str, str, str], Any] = {}
_MAX_INSTANCES = 16
#: True once this process has solved a run itself (see ``_start_method``).
_SOLVED_HERE = False


def _source_key(source: Any) -> str:
    if source is None:
        return "<default>"
    if isinstance(source, Path) or (isinstance(source, str) and source != "example"):
        return str(Path(source).resolve())
    return str(source)


def _network_key(network: Any) -> str:
    return "<default>" if network is None else str(Path(network).resolve())


def _dataset(source: Any) -> Any:
    key = _source_key(source)
    if key not in _DATASETS:
        from herschik.geo.dataset import load_dataset

        _DATASETS[key] = load_dataset(source)
    return _DATASETS[key]


def _instance(source: Any, region_id: str, network: Any) -> tuple[Any, float]:
    """The region's instance from the process cache; (instance, seconds spent building it)."""
    key = (_source_key(source), region_id, _network_key(network))
    if key in _INSTANCES:
        return _INSTANCES[key], 0.0
    from herschik.scenarios.assemble import build_instance

    start = time.perf_counter()
    instance = build_instance(_dataset(source), region_id, network=network)
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
    if run_dir.exists() and _read_summary(run_dir) is None:
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
        from herschik.scenarios.run import apply_scenario, run_solve

        dataset = _dataset(task.dataset_source)
        base, record["instance_seconds"] = _instance(
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
            lock=False,  # the sweep's lock on its --out folder covers every run folder
        )
    except Exception as error:  # one failed run must not stop the sweep
        from herschik.errors import exit_code_for

        record["error"] = f"{type(error).__name__}: {' '.join(str(error).split())}"
        record["exit_code"] = exit_code_for(error)
    record["wall_seconds"] = time.perf_counter() - start
    return record


# --- rows ------------------------------------------------------------------------------------


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary if the folder is complete (every file its marker lists), else None."""
    from herschik.atomic import folder_is_complete

    if not folder_is_complete(run_dir):
        return None
    path = run_dir / _COMPLETE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and "status" in summary else None


def _scalar(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _row(
    task: SweepTask, summary: dict[str, Any] | None, error: str | None, out_dir: Path
) -> dict[str, Any]:
    scenario = task.scenario
    row: dict[str, Any] = {
        "run_id": task.run_id,
        "region_id": task.region_id,
        "scenario": scenario.name,
        "scenario_index": scenario.index,
        "scenario_file": scenario.base_name,
    }
    for key, value in scenario.grid_point.items():
        if key not in PARAM_COLUMNS and key not in PARAM_COLUMNS.values():
            row[key] = value
    for column, field in PARAM_COLUMNS.items():
        source = scenario.params if field in type(scenario.params).model_fields else scenario.model
        row[column] = getattr(source, field)
    row["closures"] = ";".join(scenario.closures)
    if summary is None:
        row["status"] = "error"
        row["error"] = error or "unknown error"
        row["run_dir"] = ""
        return row
    row["status"] = summary.get("status")
    row["objective_value"] = _scalar(summary.get("objective"))
    row["mip_gap"] = _scalar(summary.get("mip_gap"))
    row["build_seconds"] = summary.get("build_seconds")
    row["solve_seconds"] = summary.get("solve_seconds")
    kpis = summary.get("kpis") or {}
    for key in KPI_COLUMNS:
        row[key] = _scalar(kpis.get(key))
    for key in sorted(kpis):
        value = kpis[key]
        if key in KPI_COLUMNS or key.startswith("providers_") or key == "per_treatment":
            continue
        if isinstance(value, (int, float, bool, str)):
            row[key] = _scalar(value)
        elif isinstance(value, dict):  # e.g. shared_care: flatten its scalars
            for sub, item in value.items():
                if isinstance(item, (int, float, bool, str)):
                    row[f"{key}_{sub}"] = _scalar(item)
    for side in ("before", "after", "lost", "gained"):
        counts = kpis.get(f"providers_{side}")
        row[f"providers_{side}_total"] = (
            int(sum(counts.values())) if isinstance(counts, dict) else None
        )
    diagnosis = summary.get("diagnosis")
    row["diagnosis"] = (
        " ".join(str(diagnosis.get("reason", "")).split()) if isinstance(diagnosis, dict) else ""
    )
    violations = (summary.get("verification") or {}).get("violations")
    row["violations"] = len(violations) if isinstance(violations, list) else None
    row["error"] = ""
    row["run_dir"] = str(Path(task.run_dir).relative_to(out_dir))
    return row


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    # status and results after parameters; error and run_dir last
    tail = ["error", "run_dir"]
    columns = [c for c in columns if c not in tail] + [c for c in tail if c in columns]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame = frame.sort_values(["region_id", "scenario_index"], kind="stable")
        frame = frame.reset_index(drop=True)
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column].dropna()
            if len(values) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
            ):
                frame[column] = pd.to_numeric(frame[column])
    return frame


def _write_tables(frame: pd.DataFrame, out_dir: Path) -> None:
    from herschik.atomic import atomic_path, write_csv

    write_csv(out_dir / "runs.csv", frame)
    table = frame.copy()
    for column in table.columns:
        if table[column].dtype == object:  # mixed objects: store as text (None stays null)
            table[column] = table[column].map(
                lambda v: v if v is None or isinstance(v, str) else str(v)
            )
    with atomic_path(out_dir / "runs.parquet") as tmp:
        table.to_parquet(tmp, index=False)


# --- executors -------------------------------------------------------------------------------


def _die_with_parent(parent: int) -> None:
    """End this worker when its parent dies (even by ``kill -9``), so that no orphan solves on.

    Linux: the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``). Everywhere:
    a daemon thread polls the parent id (a C solver holding the GIL delays it, the kernel's
    signal does not wait).
    """
    import ctypes
    import signal
    import threading

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the kernel was told
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="herschik-parent-watch", daemon=True).start()


def _worker_init(parent: int | None = None) -> None:
    """Pool workers die at once on SIGINT/SIGTERM (the parent handles the interrupt) and
    when the parent dies."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if parent is not None:
        _die_with_parent(parent)


def _start_method(workers: int, n_tasks: int) -> str | None:
    """How the local pool starts workers: None (in-process), "fork" or "spawn".

    ``fork`` lets workers inherit the parent's dataset and instances (built once, before the
    pool starts). It is only safe while this process has not run a solver itself: HiGHS keeps
    a global thread pool that a forked child would inherit without its threads. After an
    in-process solve (``workers=1`` earlier in the same process) workers are spawned and build
    their own instances.
    """
    if workers <= 1 or n_tasks <= 1:
        return None
    import multiprocessing

    if "fork" in multiprocessing.get_all_start_methods() and not _SOLVED_HERE:
        return "fork"
    return "spawn"


def _run_local(
    tasks: Sequence[SweepTask],
    workers: int,
    method: str | None,
    on_done: Callable[[dict[str, Any]], None],
) -> None:
    global _SOLVED_HERE
    if method is None:
        _SOLVED_HERE = True
        for task in tasks:
            on_done(run_task(task))
        return
    import multiprocessing

    context = multiprocessing.get_context(method)
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=context,
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    try:
        futures: dict[Future[dict[str, Any]], SweepTask] = {
            pool.submit(run_task, task): task for task in tasks
        }
        for future in as_completed(futures):
            on_done(_result(future, futures[future]))
    except BaseException:
        # Interrupted: drop the queued runs and stop the running ones now (a solver does not
        # return to Python before its time limit). Finished folders stay; a killed run leaves
        # only a hidden staging folder, which the next sweep removes before re-running it.
        processes = dict(getattr(pool, "_processes", None) or {})  # shutdown() forgets them
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(processes.values()):
            with contextlib.suppress(Exception):
                process.terminate()
        for process in list(processes.values()):  # gone before the parent reports and exits
            with contextlib.suppress(Exception):
                process.join(timeout=5)
                if process.is_alive():
                    process.kill()
        raise
    pool.shutdown(wait=True)


def _result(future: Any, task: SweepTask) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as error:  # a crashed worker: record, carry on
        return {
            "run_id": task.run_id,
            "summary": None,
            "error": f"{type(error).__name__}: {' '.join(str(error).split())}",
            "instance_seconds": 0.0,
            "wall_seconds": 0.0,
            "pid": None,
        }


def _run_dask(
    tasks: Sequence[SweepTask],
    scheduler: str | None,
    workers: int,
    on_done: Callable[[dict[str, Any]], None],
) -> None:
    from dask.distributed import Client, LocalCluster
    from dask.distributed import as_completed as dask_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as error:
            from herschik.errors import EnvironmentProblem, one_line

            raise EnvironmentProblem(
                f"--scheduler {scheduler}: cannot reach the Dask scheduler ({one_line(error)})"
            ) from None
    try:
        futures = client.map(run_task, list(tasks), pure=False)
        by_key = {future.key: task for future, task in zip(futures, tasks, strict=True)}
        for future in dask_completed(futures):
            on_done(_result(future, by_key[future.key]))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --- the sweep -------------------------------------------------------------------------------


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by SIGINT/SIGTERM after writing runs.csv for the runs that finished."""

    def __init__(self, finished: int, total: int, runs_csv: Path) -> None:
        self.finished, self.total, self.runs_csv = finished, total, runs_csv
        super().__init__(
            f"sweep interrupted: {finished} of {total} runs finished, recorded in {runs_csv}; "
            "run the same command again to resume"
        )


def _region_ids(dataset: Any, regions: str | Iterable[str]) -> list[str]:
    known = [str(r) for r in dataset.regions["region_id"]]
    if isinstance(regions, str):
        wanted = known if regions == "all" else [r for r in regions.split(",") if r]
    else:
        wanted = [str(r) for r in regions]
    for region in wanted:
        if region not in known and region != "all":
            raise ScenarioError(
                "(command line)",
                "regions",
                f"unknown region {region!r}; choose from " + ", ".join(known),
            )
    return sorted(dict.fromkeys(wanted))


def _check_against_data(runs: Sequence[ResolvedScenario], dataset: Any) -> None:
    treatments = dataset.treatments
    for scenario in runs:
        scenario.check(
            treatment_ids=treatments["intervention_id"].astype(str),
            group_ids=treatments["group_id"].astype(str),
            site_ids=dataset.sites["site_id"].astype(str),
        )


def run_sweep(
    scenario_file: str | Path,
    out_dir: str | Path,
    regions: str | Sequence[str] = "all",
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    plot: bool = False,
    dataset_source: str | Path | None = None,
    network: str | Path | None = None,
    progress: bool = True,
    outputs: dict[str, bool] | None = None,
) -> pd.DataFrame:
    """Run every grid point of ``scenario_file`` on every region; return the runs table.

    ``regions``: ``"all"`` (each region separately), a list of region ids or ``"ID,ID"``;
    the id ``"all"`` inside a list stands for the joint national instance (flows may cross
    region borders).
    ``workers``: processes of the local pool (default ``os.cpu_count()``; 1 runs in-process).
    ``executor``: ``"local"`` or ``"dask"`` (``scheduler`` = address of a running Dask
    scheduler; without it a local Dask cluster of ``workers`` processes is started).
    Finished runs (folder with summary.json) are read, not solved again. Runs that raise get
    status ``"error"`` and the message in column ``error``. Writes ``out_dir/runs.csv`` and
    ``out_dir/runs.parquet`` (and ``out_dir/plots/*.png`` with ``plot=True``).

    ``DataFrame.attrs`` carries ``solved`` (runs solved now), ``skipped`` (found complete),
    ``plots`` (paths) and ``timings`` (per solved run: instance build, wall seconds).
    """
    if executor not in ("local", "dask"):
        raise ScenarioError("(command line)", "executor", f"unknown executor {executor!r}")
    spec = load_scenario(scenario_file)
    runs = spec.expand()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    from herschik.atomic import output_lock

    # One writer per sweep folder: a second sweep into it fails at once (exit 2) instead of
    # removing the first one's live staging folders.
    with output_lock(out_dir):
        return _run_sweep_locked(
            spec, runs, out_dir, regions, workers, executor, scheduler, plot, dataset_source,
            network, progress, outputs,
        )


def _run_sweep_locked(
    spec: Any,
    runs: list[ResolvedScenario],
    out_dir: Path,
    regions: str | Sequence[str],
    workers: int | None,
    executor: str,
    scheduler: str | None,
    plot: bool,
    dataset_source: str | Path | None,
    network: str | Path | None,
    progress: bool,
    outputs: dict[str, bool] | None,
) -> pd.DataFrame:
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)

    dataset = _dataset(dataset_source)
    _check_against_data(runs, dataset)
    region_ids = _region_ids(dataset, regions)
    fingerprint = data_fingerprint(dataset, network)
    source = None if dataset_source is None else str(dataset_source)
    net = None if network is None else str(network)
    run_outputs = dict(DEFAULT_OUTPUTS if outputs is None else outputs)

    tasks: list[SweepTask] = []
    for region in region_ids:
        for scenario in runs:
            run_id = scenario.run_id(fingerprint, region)
            tasks.append(
                SweepTask(
                    run_id, region, scenario, str(runs_dir / run_id), source, net, run_outputs
                )
            )
    if len({t.run_id for t in tasks}) != len(tasks):
        raise ScenarioError(spec.path, "grid", "two grid points resolve to the same run")

    summaries: dict[str, dict[str, Any] | None] = {}
    errors: dict[str, str] = {}
    todo: list[SweepTask] = []
    for task in tasks:
        summary = _read_summary(Path(task.run_dir))
        if summary is not None:
            summaries[task.run_id] = summary
        else:
            todo.append(task)
    skipped = len(tasks) - len(todo)
    n_workers = max(1, int(workers or os.cpu_count() or 1))
    if n_workers > 1 and len(todo) > 1 and scheduler is None:  # a remote cluster's cores differ
        per_run = max(1, (os.cpu_count() or 1) // n_workers)
        todo = [dataclasses.replace(t, solve_workers=per_run) for t in todo]
    if progress:
        print(
            f"sweep {spec.name}: {len(runs)} scenario(s) x {len(region_ids)} region(s) = "
            f"{len(tasks)} runs; {skipped} already finished, {len(todo)} to run "
            f"({executor}, {n_workers} worker(s))",
            file=sys.stderr,
        )

    timings: list[dict[str, Any]] = []
    error_codes: list[int] = []
    if todo:
        method = _start_method(n_workers, len(todo)) if executor == "local" else "dask"
        # Build each needed region's instance once here: in-process and forked workers reuse it.
        if method in (None, "fork"):
            for region in dict.fromkeys(t.region_id for t in todo):
                _, seconds = _instance(source, region, net)
                if progress and seconds > 0:
                    print(f"  built instance of {region} in {seconds:.1f} s", file=sys.stderr)
        from tqdm import tqdm

        bar = tqdm(
            total=len(todo),
            desc=f"sweep {spec.name}",
            unit="run",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )

        def on_done(record: dict[str, Any]) -> None:
            summaries[record["run_id"]] = record["summary"]
            if record["error"]:
                errors[record["run_id"]] = record["error"]
                error_codes.append(int(record.get("exit_code") or 3))
                bar.write(f"run {record['run_id']} failed: {record['error']}", file=sys.stderr)
            timings.append(
                {k: record.get(k) for k in ("run_id", "instance_seconds", "wall_seconds", "pid")}
            )
            bar.update(1)

        try:
            if executor == "dask":
                _run_dask(todo, scheduler, n_workers, on_done)
            else:
                _run_local(todo, n_workers, method, on_done)
        except KeyboardInterrupt:
            # SIGINT/SIGTERM: the workers are stopped; record what finished, then stop.
            bar.close()
            for task in tasks:  # runs that finished while the parent was not yet told
                if summaries.get(task.run_id) is None and task.run_id not in errors:
                    summary = _read_summary(Path(task.run_dir))
                    if summary is not None:
                        summaries[task.run_id] = summary
                    else:
                        summaries.pop(task.run_id, None)
            done = [t for t in tasks if t.run_id in summaries]
            frame = _frame(
                [_row(t, summaries[t.run_id], errors.get(t.run_id), out_dir) for t in done]
            )
            _write_tables(frame, out_dir)
            raise SweepInterrupted(len(done), len(tasks), out_dir / "runs.csv") from None
        finally:
            bar.close()

    frame = _frame([_row(t, summaries.get(t.run_id), errors.get(t.run_id), out_dir) for t in tasks])
    _write_tables(frame, out_dir)
    plots: list[Path] = []
    if plot:
        from herschik.scenarios.sweep_plot import plot_sweep

        plots = plot_sweep(frame, out_dir)
    frame.attrs.update(
        {
            "solved": len(todo),
            "skipped": skipped,
            "plots": [str(p) for p in plots],
            "timings": timings,
            "fingerprint": fingerprint,
            # exit code class of each failed run (2 input/environment, 3 bug)
            "error_exit_codes": error_codes,
        }
    )
    return frame
