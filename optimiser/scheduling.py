"""Scheduling independent sub-problems on threads (HiGHS releases the GIL while it solves).

Results never depend on the number of threads: they are returned by index, and every
sub-problem is solved single-threaded (docs/decisions/solver-settings.md).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from .backends import INTERRUPT
from .formulation import candidate_matrix
from .instance import Instance
from .params import SolveParams

R = TypeVar("R")


def size_estimate(instance: Instance, candidate: np.ndarray, treatments: list[int]) -> int:
    """Keep decisions x flow columns of a component, before building it: a proxy of its solve
    time (the slow sub-MIPs are those with many candidate sites and many areas)."""
    cand = candidate[:, treatments]
    areas = (instance.demand[:, treatments] > 0).sum(axis=0)
    sites = cand.sum(axis=0)
    return int(sites.sum() * (sites * areas).sum())


def run_components(instance: Instance, params: SolveParams, comps: list[list[int]],
                   run: Callable[[int], R], stop: threading.Event | None,
                   max_workers: int | None) -> list[R]:
    """``run(i)`` for every component, in component order, on ``params.threads`` (default:
    every core) threads, at most ``max_workers``; the largest and the smallest first (see
    :func:`run_from_both_ends`)."""
    n_comp = len(comps)
    cores = params.threads or os.cpu_count() or 1
    workers = max(1, min(cores, n_comp, max_workers or cores))
    if workers == 1:
        return [run(i) for i in range(n_comp)]
    candidate = candidate_matrix(instance, params)
    sizes = [size_estimate(instance, candidate, comp) for comp in comps]
    by_size = run_from_both_ends(sorted(range(n_comp), key=lambda i: sizes[i]), workers, run,
                                 stop)
    return [by_size[i] for i in range(n_comp)]


def run_from_both_ends(ascending: list[int], workers: int, run: Callable[[int], R],
                       stop: threading.Event | None) -> dict[int, R]:
    """Run ``run(i)`` for every index on ``workers`` threads; results by index.

    Worker 0 takes the largest remaining sub-problem, the others the smallest: the large MIPs
    start at once (as in longest-processing-time order, so the makespan stays short), and the
    small ones, where an infeasible treatment usually is (few providers), are decided early,
    so that ``stop`` can cut the large ones short. HiGHS releases the GIL while it solves.
    """
    queue = deque(ascending)
    lock = threading.Lock()
    results: dict[int, R] = {}
    errors: list[BaseException] = []

    def worker(from_largest: bool) -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                i = queue.pop() if from_largest else queue.popleft()
            try:
                results[i] = run(i)
            except BaseException as exc:  # re-raised in the calling thread
                with lock:
                    errors.append(exc)
                return

    threads = [threading.Thread(target=worker, args=(k == 0,), daemon=True)
               for k in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:  # e.g. KeyboardInterrupt: stop handing out work, end running solves
        with lock:
            queue.clear()
        if stop is not None:
            stop.set()
        INTERRUPT.set()
        for thread in threads:  # never leave while HiGHS runs (it would abort the process)
            while thread.is_alive():
                try:
                    thread.join()
                except KeyboardInterrupt:
                    continue
        raise
    if errors:
        raise errors[0]
    return results
