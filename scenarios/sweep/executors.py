"""Where a sweep's tasks run: in-process, a local process pool (fork or spawn, workers that die
with their parent) or a Dask cluster.

Tasks go out in chunks of consecutive runs of one region (:func:`region_chunks`), the
chunks with the most expected work first (:func:`longest_first`): a worker runs a chunk's runs
one after another in the same what-if session (task.py), which re-uses every sub-problem a
run's change leaves unchanged, and the cheapest chunks end the sweep. Each run's folder is
still written (and complete) as soon as it is solved; a chunk's records are reported when the
chunk ends."""
from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from herschik.scenarios.sweep.task import (
    SweepTask,
    cached_run_weight,
    read_summary,
    run_task,
    run_tasks,
)

from herschik.errors import EnvironmentProblem, one_line

#: True once this process has solved a run itself (see ``_start_method``).
_SOLVED_HERE = False

#: the most runs in one chunk: small enough that the last chunks balance the workers
MAX_CHUNK = 20


def region_chunks(tasks: Sequence[SweepTask], workers: int) -> list[list[SweepTask]]:
    """``tasks`` cut into chunks of consecutive runs of one region, in their order: at most
    :data:`MAX_CHUNK` runs, and about four chunks per worker when there are few tasks."""
    size = max(1, min(MAX_CHUNK, -(-len(tasks) // (4 * max(1, workers)))))
    chunks: list[list[SweepTask]] = []
    for task in tasks:
        if chunks and len(chunks[-1]) < size and chunks[-1][-1].region_id == task.region_id:
            chunks[-1].append(task)
        else:
            chunks.append([task])
    return chunks


def longest_first(chunks: list[list[SweepTask]]) -> list[list[SweepTask]]:
    """The chunks with the most expected work first (runs x the region's
    :func:`cached_run_weight`; a stable sort, so a region's chunks keep their order): the
    workers take chunks in this order, so the last to start are the cheapest and no worker
    runs a large region's chunk alone at the end (longest-processing-time first). Unchanged
    when the weights are unknown (no instance cached in this process: spawn, Dask)."""
    weights: dict[str, float] = {}
    for chunk in chunks:
        if chunk[0].region_id not in weights:
            weight = cached_run_weight(chunk[0])
            if weight is None:
                return chunks
            weights[chunk[0].region_id] = weight
    return sorted(chunks, key=lambda chunk: -len(chunk) * weights[chunk[0].region_id])


# --- executors -------------------------------------------------------------------------------


def _die_with_parent(parent: int) -> None:
    """End this worker when its parent dies (even by ``kill -9``), so that no orphan solves on.

    Linux: the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``). Everywhere:
    a daemon thread polls the parent id (a C solver holding the GIL delays it, the kernel's
    signal does not wait).
    """

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

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if parent is not None:
        _die_with_parent(parent)


def start_method(workers: int, n_tasks: int) -> str | None:
    """How the local pool starts workers: None (in-process), "fork" or "spawn".

    ``fork`` lets workers inherit the parent's dataset and instances (built once, before the
    pool starts). It is only safe while this process has not run a solver itself: HiGHS keeps
    a global thread pool that a forked child would inherit without its threads. After an
    in-process solve (``workers=1`` earlier in the same process) workers are spawned and build
    their own instances.
    """
    if workers <= 1 or n_tasks <= 1:
        return None

    if "fork" in multiprocessing.get_all_start_methods() and not _SOLVED_HERE:
        return "fork"
    return "spawn"


def run_local(
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

    context = multiprocessing.get_context(method)
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=context,
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    try:
        futures: dict[Future[list[dict[str, Any]]], list[SweepTask]] = {
            pool.submit(run_tasks, chunk): chunk
            for chunk in longest_first(region_chunks(tasks, workers))
        }
        for future in as_completed(futures):
            for record in _results(future, futures[future]):
                on_done(record)
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


def _results(future: Any, chunk: list[SweepTask]) -> list[dict[str, Any]]:
    """The chunk's records; for a crashed worker an error record per run of the chunk whose
    folder is not complete (the runs it finished before the crash are read back)."""
    try:
        return list(future.result())
    except Exception as error:  # a crashed worker: record, carry on
        records = []
        for task in chunk:
            summary = read_summary(Path(task.run_dir))
            records.append({
                "run_id": task.run_id,
                "summary": summary,
                "error": None if summary is not None
                else f"{type(error).__name__}: {' '.join(str(error).split())}",
                "instance_seconds": 0.0,
                "wall_seconds": 0.0,
                "pid": None,
            })
        return records


def run_dask(
    tasks: Sequence[SweepTask],
    scheduler: str | None,
    workers: int,
    on_done: Callable[[dict[str, Any]], None],
) -> None:
    # Dask (about 0.4 s to import) only with --executor dask: a local sweep never loads it
    from dask.distributed import Client, LocalCluster

    # A lost scheduler or worker is reported once, as one line (DaskLost); distributed's own
    # reconnect tracebacks on stderr would bury it.
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as error:
            raise EnvironmentProblem(
                f"--scheduler {scheduler}: cannot reach the Dask scheduler ({one_line(error)})"
            ) from None
    try:
        chunks = longest_first(region_chunks(tasks, workers))
        futures = client.map(run_tasks, chunks, pure=False)
        by_key = {future.key: chunk for future, chunk in zip(futures, chunks, strict=True)}

        def done(future: Any) -> None:
            for record in _dask_results(future, by_key[future.key]):
                on_done(record)

        _collect(client, futures, done, scheduler or "the local Dask cluster")
    finally:
        with contextlib.suppress(Exception):  # a lost scheduler cannot be closed politely
            client.close(timeout=5)
        if cluster is not None:
            cluster.close()


#: seconds between checks that the scheduler and its workers are there
DASK_POLL_SECONDS = 2.0


def dask_workers_timeout() -> float:
    """Seconds a sweep waits without any Dask worker before it gives up (exit 2):
    ``$HERSCHIK_DASK_WORKERS_TIMEOUT``, default 120."""
    return float(os.environ.get("HERSCHIK_DASK_WORKERS_TIMEOUT", "120"))


class DaskLost(Exception):
    """The Dask scheduler or all its workers went away (an EnvironmentProblem in sweep.py)."""


def _collect(client: Any, futures: list[Any], done: Callable[[Any], None], where: str) -> None:
    """Hand every finished future to ``done``; raise DaskLost when the scheduler is gone or
    no worker has been there for :func:`dask_workers_timeout` seconds (never hang)."""
    from dask.distributed import wait  # only with --executor dask (see run_dask)

    pending = set(futures)
    without_workers: float | None = None
    while pending:
        try:
            finished, pending = wait(list(pending), timeout=DASK_POLL_SECONDS,
                                     return_when="FIRST_COMPLETED")
        except TimeoutError:
            finished = set()
        except Exception as error:  # e.g. FuturesCancelledError: scheduler-connection-lost
            raise DaskLost(f"lost the Dask scheduler ({where}): {type(error).__name__}; "
                           "finished runs are kept, run the sweep again to resume") from None
        for future in finished:
            done(future)
        if not pending:
            return
        try:
            workers = len(client.nthreads())  # a request to the scheduler: fails if it is gone
        except Exception as error:  # comm errors, timeouts, a closed client alike
            raise DaskLost(f"lost the Dask scheduler ({where}): {type(error).__name__}; "
                           "finished runs are kept, run the sweep again to resume") from None
        if workers:
            without_workers = None
        elif without_workers is None:
            without_workers = time.monotonic()
        elif time.monotonic() - without_workers > dask_workers_timeout():
            raise DaskLost(f"no Dask worker at {where} for {dask_workers_timeout():.0f} s; "
                           "finished runs are kept, run the sweep again to resume")


def _dask_results(future: Any, chunk: list[SweepTask]) -> list[dict[str, Any]]:
    """The chunk's records; DaskLost when the future died with the scheduler, not the runs."""
    if future.status == "cancelled":
        raise DaskLost("lost the Dask scheduler: its runs were cancelled; finished runs are "
                       "kept, run the sweep again to resume")
    try:
        return future.result()
    except BaseException as error:  # noqa: B036 - asyncio's CancelledError is a BaseException
        if type(error).__name__ in ("CancelledError", "FutureCancelledError",
                                    "CommClosedError", "KilledWorker"):
            raise DaskLost(f"the Dask cluster failed ({type(error).__name__}: "
                           f"{' '.join(str(error).split())[:200]}); finished runs are kept, "
                           "run the sweep again to resume") from None
        if not isinstance(error, Exception):
            raise
        return _results(future, chunk)


