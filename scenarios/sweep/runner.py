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
them. Only the scenario's changes (growth, norms, parameters) differ between runs. Tasks go to
the workers in chunks of consecutive runs of one region (executors.py), and each worker solves
them in one what-if session of the region (task.py): sub-problems whose model a run leaves as
an earlier run had it are not solved again; every run's plan is still a fresh solve's.

The Dask executor (``executor="dask"``) maps the same task function over a
``dask.distributed`` cluster; workers must see ``out_dir`` (a shared filesystem) and have this
package installed.

Modules: task.py (one run, the worker caches), executors.py (pool, Dask), table.py
(runs.csv), plot.py, and scenarios/data_identity.py (the data part of a run id).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from herschik.optimiser.algorithms import Algorithms
from herschik.scenarios.data_identity import data_fingerprint
from herschik.scenarios.scenario.file import load_scenario
from herschik.scenarios.scenario.resolved import ResolvedScenario
from herschik.scenarios.sweep.executors import DaskLost, run_dask, run_local, start_method
from herschik.scenarios.sweep.plot import plot_sweep
from herschik.scenarios.sweep.table import run_row, runs_frame, write_runs_tables
from herschik.scenarios.sweep.task import SweepTask, cached_dataset, cached_instance, read_summary
from tqdm import tqdm

from herschik.atomic import MARKER, open_output_dir, output_lock
from herschik.errors import EnvironmentProblem, ScenarioError
from herschik.i18n import _, format_number

__all__ = ["DEFAULT_OUTPUTS", "SweepInterrupted", "run_sweep"]

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
    algorithms: Algorithms | None = None,
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
    ``algorithms``: the exact algorithms each solve may use (None: all; benchmarks compare).
    """
    if executor not in ("local", "dask"):
        raise ScenarioError("(command line)", "executor", f"unknown executor {executor!r}")
    spec = load_scenario(scenario_file)
    runs = spec.expand()
    out_dir = Path(out_dir)
    # One writer per sweep folder: a second sweep into it fails at once (exit 2) instead of
    # removing the first one's live staging folders. Only a new, empty or sweep folder
    # herschik wrote is written (never a folder of the user's files, nor a link).
    with output_lock(out_dir):
        open_output_dir(out_dir, kind="sweep", adopt=_older_sweep)
        return _run_sweep_locked(
            spec, runs, out_dir, regions, workers, executor, scheduler, plot, dataset_source,
            network, progress, outputs, algorithms,
        )


def _older_sweep(out_dir: Path) -> bool:
    """A sweep folder written before sweep folders had a marker: only ``runs.csv``,
    ``runs.parquet``, ``plots/`` and a ``runs/`` folder of marked run folders."""
    if out_dir.is_symlink() or not (out_dir / "runs").is_dir():
        return False
    names = {p.name for p in out_dir.iterdir() if not p.name.startswith(".")}
    if not names <= {"runs", "runs.csv", "runs.parquet", "plots"}:
        return False
    runs = [p for p in (out_dir / "runs").iterdir() if not p.name.startswith(".")]
    return bool(runs) and all((p / MARKER).is_file() for p in runs)


@dataclasses.dataclass
class _Ledger:
    """What the sweep knows of its runs: summaries (None = failed), errors, timings."""

    summaries: dict[str, dict[str, Any] | None]
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    timings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    error_codes: list[int] = dataclasses.field(default_factory=list)

    def record(self, record: dict[str, Any], bar: Any) -> None:
        self.summaries[record["run_id"]] = record["summary"]
        if record["error"]:
            self.errors[record["run_id"]] = record["error"]
            self.error_codes.append(int(record.get("exit_code") or 3))
            bar.write(f"run {record['run_id']} failed: {record['error']}", file=sys.stderr)
        self.timings.append(
            {k: record.get(k) for k in ("run_id", "instance_seconds", "wall_seconds", "pid",
                                         "cpu", "subproblems")}
        )
        bar.update(1)

    def frame(self, tasks: Sequence[SweepTask], out_dir: Path) -> pd.DataFrame:
        return runs_frame([run_row(t, self.summaries.get(t.run_id), self.errors.get(t.run_id),
                                   out_dir) for t in tasks])

    def recover(self, tasks: Sequence[SweepTask]) -> list[SweepTask]:
        """After an interrupt: pick up runs that finished unreported; the runs known done."""
        for task in tasks:
            if self.summaries.get(task.run_id) is None and task.run_id not in self.errors:
                summary = read_summary(Path(task.run_dir))
                if summary is not None:
                    self.summaries[task.run_id] = summary
                else:
                    self.summaries.pop(task.run_id, None)
        return [t for t in tasks if t.run_id in self.summaries]


def _tasks(
    spec: Any, runs: list[ResolvedScenario], region_ids: list[str], fingerprint: str,
    runs_dir: Path, source: str | None, net: str | None, outputs: dict[str, bool],
    algorithms: Algorithms | None = None,
) -> list[SweepTask]:
    tasks = [
        SweepTask(run_id, region, scenario, str(runs_dir / run_id), source, net, outputs,
                  algorithms=algorithms)
        for region in region_ids
        for scenario in runs
        for run_id in (scenario.run_id(fingerprint, region),)
    ]
    if len({t.run_id for t in tasks}) != len(tasks):
        raise ScenarioError(spec.path, "grid", "two grid points resolve to the same run")
    return tasks


def _execute(
    spec: Any, tasks: list[SweepTask], todo: list[SweepTask], ledger: _Ledger, out_dir: Path,
    executor: str, scheduler: str | None, n_workers: int, progress: bool,
) -> None:
    """Run ``todo``; on an interrupt write runs.csv of the finished runs and stop."""
    method = start_method(n_workers, len(todo)) if executor == "local" else "dask"
    # Build each needed region's instance once here: in-process and forked workers reuse it.
    if method in (None, "fork"):
        for task in {t.region_id: t for t in todo}.values():
            _instance, seconds = cached_instance(task.dataset_source, task.region_id,
                                                 task.network)
            if progress and seconds > 0:
                print(_("  built instance of {region} in {seconds} s", region=task.region_id,
                        seconds=format_number(seconds)),
                      file=sys.stderr)
    bar = tqdm(total=len(todo), desc=f"sweep {spec.name}", unit="run", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def on_done(record: dict[str, Any]) -> None:
        ledger.record(record, bar)

    try:
        if executor == "dask":
            run_dask(todo, scheduler, n_workers, on_done)
        else:
            run_local(todo, n_workers, method, on_done)
    except KeyboardInterrupt:
        # SIGINT/SIGTERM: the workers are stopped; record what finished, then stop.
        bar.close()
        done = ledger.recover(tasks)
        write_runs_tables(ledger.frame(done, out_dir), out_dir)
        raise SweepInterrupted(len(done), len(tasks), out_dir / "runs.csv") from None
    except DaskLost as lost:
        # The cluster, not the runs: record what finished and stop with exit 2 (resumable).
        bar.close()
        done = ledger.recover(tasks)
        write_runs_tables(ledger.frame(done, out_dir), out_dir)
        raise EnvironmentProblem(f"{lost} ({len(done)} of {len(tasks)} runs in "
                                 f"{out_dir / 'runs.csv'})") from None
    finally:
        bar.close()


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
    algorithms: Algorithms | None = None,
) -> pd.DataFrame:
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)

    dataset = cached_dataset(dataset_source)
    _check_against_data(runs, dataset)
    region_ids = _region_ids(dataset, regions)
    fingerprint = data_fingerprint(dataset, network)
    source = None if dataset_source is None else str(dataset_source)
    net = None if network is None else str(network)
    run_outputs = dict(DEFAULT_OUTPUTS if outputs is None else outputs)
    tasks = _tasks(spec, runs, region_ids, fingerprint, runs_dir, source, net, run_outputs,
                   algorithms)

    ledger = _Ledger(summaries={})
    todo: list[SweepTask] = []
    for task in tasks:
        summary = read_summary(Path(task.run_dir))
        if summary is not None:
            ledger.summaries[task.run_id] = summary
        else:
            todo.append(task)
    skipped = len(tasks) - len(todo)
    n_workers = max(1, int(workers or os.cpu_count() or 1))
    if n_workers > 1 and len(todo) > 1 and scheduler is None:  # a remote cluster's cores differ
        per_run = max(1, (os.cpu_count() or 1) // n_workers)
        todo = [dataclasses.replace(t, solve_workers=per_run) for t in todo]
    if progress:
        print(
            _("sweep {name}: {scenarios} scenario(s) x {regions} region(s) = {runs} runs; "
              "{skipped} already finished, {todo} to run ({executor}, {workers} worker(s))",
              name=spec.name, scenarios=len(runs), regions=len(region_ids), runs=len(tasks),
              skipped=skipped, todo=len(todo), executor=executor, workers=n_workers),
            file=sys.stderr,
        )
    if todo:
        _execute(spec, tasks, todo, ledger, out_dir, executor, scheduler, n_workers, progress)

    frame = ledger.frame(tasks, out_dir)
    write_runs_tables(frame, out_dir)
    plots: list[Path] = []
    if plot:
        plots = plot_sweep(frame, out_dir)
    frame.attrs.update(
        {
            "solved": len(todo),
            "skipped": skipped,
            "plots": [str(p) for p in plots],
            "timings": ledger.timings,
            "fingerprint": fingerprint,
            # exit code class of each failed run (2 input/environment, 3 bug)
            "error_exit_codes": ledger.error_codes,
        }
    )
    return frame
