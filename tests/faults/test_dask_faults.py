"""Issue 27, item 5 (Dask): a sweep whose scheduler or workers go away exits 2 with one line
(detected within a timeout, never a silent hang) and keeps its finished runs for a resume.

A real scheduler and worker run as subprocesses (``dask scheduler`` / ``dask worker``); the
test kills them while the sweep waits for its runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import HERSCHIK
from tests.support.paths import EXAMPLE_DATA

pytestmark = pytest.mark.faults

DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]
GRID = 'name = "dask-faults"\n[grid]\nmargin = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]\n'


def _scheduler(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    log = open(tmp_path / "scheduler.log", "w")
    process = subprocess.Popen([*DASK, "--host", "127.0.0.1", "--port", "0",
                                "--dashboard-address", ":0", "--no-show"],
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        match = re.search(r"Scheduler at:\s+(tcp://\S+)", (tmp_path / "scheduler.log")
                          .read_text())
        if match:
            return process, match.group(1)
        assert process.poll() is None, (tmp_path / "scheduler.log").read_text()
        time.sleep(0.2)
    raise AssertionError("the scheduler did not start")


def _wait_for_submitted_runs(address: str, sweep: subprocess.Popen[str]) -> None:
    """Until the sweep's runs are on the scheduler (the sweep is waiting for them)."""
    from dask.distributed import Client

    with Client(address, timeout="30s") as client:
        deadline = time.monotonic() + 180
        while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0:
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "the sweep never submitted its runs"
            time.sleep(0.2)


def _stop(*processes: subprocess.Popen[str] | None) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.mark.parametrize("lost", ["workers", "scheduler"])
def test_sweep_whose_dask_cluster_goes_away_exits_2(tmp_path: Path, lost: str) -> None:
    scheduler, address = _scheduler(tmp_path)
    worker = sweep = None
    try:
        if lost == "workers":  # a worker that is gone before any run finishes
            worker = subprocess.Popen([*WORKER, address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-nanny"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        scenario = tmp_path / "grid.toml"
        scenario.write_text(GRID)
        out = tmp_path / "sw"
        sweep = subprocess.Popen(
            [*HERSCHIK, "sweep", str(scenario), "--out",
             str(out), "--regions", "example", "--data", str(EXAMPLE_DATA), "--executor",
             "dask", "--scheduler", address],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ,
                 "HERSCHIK_DASK_WORKERS_TIMEOUT": "5" if lost == "workers" else "600"},
        )
        _wait_for_submitted_runs(address, sweep)
        if lost == "workers":
            assert worker is not None
            worker.send_signal(signal.SIGKILL)
        else:
            scheduler.send_signal(signal.SIGKILL)
        _, err = sweep.communicate(timeout=120)  # never a hang
        assert sweep.returncode == 2, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("herschik: error:") and "Traceback" not in err
        assert ("no Dask worker" if lost == "workers" else "Dask") in last
        assert (out / "runs.csv").is_file(), last  # the runs that finished, for a resume
    finally:
        _stop(sweep, worker, scheduler)
