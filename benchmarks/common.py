"""Shared helpers of the benchmark suite: machine info, medians, child-process measurements.

Every solve measurement runs in its own child process (``python -m benchmarks.common``), so
that its peak memory is its own: the child reports ``resource.getrusage(RUSAGE_SELF)`` (the
Python process: model arrays, HiGHS, PuLP objects) and ``RUSAGE_CHILDREN`` (the CBC
executable PuLP starts). A child that runs past its wall-clock cap is killed with its whole
process group and reported as ``"killed"`` with the cap as a lower bound of its time.

The child also instruments PuLP (``LpProblem.solve`` and ``LpProblem.writeMPS``) and highspy
(``Highs.run``) by wrapping them in-process: the optimiser code is measured as it is, these
wrappers only read the clock.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MUNICIPALITIES_DIR = REPO / "geo" / "data" / "default_municipalities"
RESULT_MARK = "@@BENCH_RESULT@@"


# --- small helpers --------------------------------------------------------------------------
def median(values: list[float | None]) -> float | None:
    """Median of the finite values, ``None`` when there are none."""
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    return statistics.median(vals) if vals else None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` atomically (one implementation for the project: herschik.atomic)."""
    from herschik.atomic import write_text

    write_text(path, text)


def emit_json(result: object, out: str | None) -> None:
    """A side benchmark's result as JSON: to ``out`` (atomically) when given, else stdout."""
    text = json.dumps(result, indent=1, default=str)
    if out:
        write_atomic(Path(out), text)
    else:
        print(text)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python and library versions, date, git commit (read-only)."""
    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    commit = dirty = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                                capture_output=True, timeout=10).stdout.strip() or None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=REPO, text=True, capture_output=True, timeout=10).stdout
        dirty = sorted({line[3:] for line in status.splitlines() if line.strip()})
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "ram_gb": ram_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in
                     ("highspy", "PuLP", "numpy", "scipy", "networkx", "pandas")},
        "git_commit": commit,
        "git_modified_files": dirty,
        "load_average_at_start": load,
    }


# --- child-process measurements -------------------------------------------------------------
def run_child(task: str, spec: dict[str, Any], wall_cap: float | None = None,
              env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``task`` with ``spec`` in a fresh ``python -m benchmarks.common`` process.

    Returns the child's result dict plus ``child_wall_seconds``. On a wall-clock cap the
    process group is killed and ``{"status": "killed", ...}`` returned; on a crash
    ``{"status": "error", "error": <last stderr lines>}``.
    """
    cmd = [sys.executable, "-m", "benchmarks.common", task, json.dumps(spec)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, **(env or {})})
    try:
        out, err = proc.communicate(timeout=wall_cap)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return {"status": "killed", "wall_cap_seconds": wall_cap,
                "child_wall_seconds": time.perf_counter() - start,
                "error": f"killed after the wall-clock cap of {wall_cap:g} s"}
    wall = time.perf_counter() - start
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            result["child_wall_seconds"] = wall
            return result
    tail = " | ".join(err.strip().splitlines()[-3:])
    return {"status": "error", "error": f"exit code {proc.returncode}: {tail}",
            "child_wall_seconds": wall}


def _peak_memory() -> dict[str, float]:
    kb_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kb_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "peak_rss_mb": round(kb_self / 1024, 1),
        "peak_rss_children_mb": round(kb_children / 1024, 1),
        # upper bound of what was resident at once (the CBC process runs while Python waits)
        "peak_total_mb": round((kb_self + kb_children) / 1024, 1),
    }


class _Clock:
    """Thread-safe accumulated seconds of wrapped calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)
        clock = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                with clock.lock:
                    clock.seconds[key] = clock.seconds.get(key, 0.0) + dt

        setattr(owner, name, wrapper)


def _instrument() -> _Clock:
    clock = _Clock()
    try:
        import pulp

        clock.wrap(pulp.LpProblem, "solve", "pulp_solve_call")  # MPS write + CBC + read back
        clock.wrap(pulp.LpProblem, "writeMPS", "pulp_write_mps")
    except Exception:  # instrumentation is best effort
        pass
    try:
        import highspy

        clock.wrap(highspy.Highs, "run", "highs_run")
    except Exception:
        pass
    return clock


def load_source(source: str | None):
    """``None`` national districts, ``"example"``, ``"municipalities"`` or a dataset folder."""
    from herschik.geo.dataset import load_dataset

    if source == "municipalities":
        return load_dataset("municipalities")
    return load_dataset(source)


def split_areas(instance, k: int, seed: int = 0):
    """A finer synthetic instance: every area split into ``k`` sub-areas.

    Demand and baseline flows are split with the same random shares (Dirichlet, so the
    baseline still sums to the demand and to the site volumes); each sub-area's travel times
    are the parent's times x U(0.92, 1.08) + U(0, 3) minutes (a jittered centroid).
    """
    from herschik.optimiser.instance import Instance

    rng = np.random.default_rng(seed)
    n_a, n_s, _ = instance.shape
    shares = rng.dirichlet(np.full(k, 2.0), size=n_a)  # (A, k)
    demand = (instance.demand[:, None, :] * shares[:, :, None]).reshape(n_a * k, -1)
    flow = (instance.baseline_flow[:, None, :, :] * shares[:, :, None, None]).reshape(
        n_a * k, n_s, -1)
    factor = rng.uniform(0.92, 1.08, size=(n_a, k, n_s))
    shift = rng.uniform(0.0, 3.0, size=(n_a, k, 1))
    travel = (instance.travel_min[:, None, :] * factor + shift).reshape(n_a * k, n_s)
    area_ids = tuple(f"{a}.{i}" for a in instance.area_ids for i in range(k))
    return Instance(region_id=instance.region_id, area_ids=area_ids, sites=instance.sites,
                    treatments=instance.treatments, demand=demand, travel_min=travel,
                    baseline_volume=instance.baseline_volume, baseline_flow=flow,
                    process_norms=instance.process_norms, meta=dict(instance.meta))


def subset_sites(instance, n_sites: int, seed: int = 0):
    """The instance restricted to ``n_sites`` sites (a fixed random order, nested subsets).

    Site volumes are rescaled per treatment so that they still add up to the demand, and the
    baseline flows are reconstructed on the remaining sites (min-travel transportation LP).
    """
    from herschik.optimiser.baseline import reconstruct_baseline_flows
    from herschik.optimiser.instance import Instance

    n_s = instance.shape[1]
    order = np.random.default_rng(seed).permutation(n_s)
    keep = np.sort(order[:n_sites])
    travel = instance.travel_min[:, keep]
    volume = instance.baseline_volume[keep].copy()
    totals = instance.demand.sum(axis=0)
    have = volume.sum(axis=0)
    for t in range(volume.shape[1]):
        if have[t] > 0:
            volume[:, t] *= totals[t] / have[t]
        elif totals[t] > 0:  # nobody left provides t today: spread it evenly
            volume[:, t] = totals[t] / len(keep)
    flow = reconstruct_baseline_flows(instance.demand, travel, volume)
    return Instance(region_id=instance.region_id, area_ids=instance.area_ids,
                    sites=tuple(instance.sites[i] for i in keep),
                    treatments=instance.treatments, demand=instance.demand, travel_min=travel,
                    baseline_volume=volume, baseline_flow=flow,
                    process_norms=instance.process_norms, meta=dict(instance.meta))


def code_fingerprint() -> str:
    """Short hash of the measured code (optimiser/, scenarios/, geo/ *.py) as it is on disk.

    Other engineers edit the optimiser while benchmarks run; measurements with different
    fingerprints measured different code.
    """
    import hashlib

    digest = hashlib.sha1()
    for folder in ("optimiser", "scenarios", "geo"):
        for path in sorted((REPO / folder).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def task_solve(spec: dict[str, Any]) -> dict[str, Any]:
    """Child task: load, build the instance (timed), transform, solve (timed), report."""
    clock = _instrument()
    from herschik.optimiser.params import SolveParams
    from herschik.optimiser.solve import BRANCH_AND_BOUND_ONLY, solve
    from herschik.scenarios.assemble import build_instance

    dataset = load_source(spec.get("source"))
    t0 = time.perf_counter()
    instance = build_instance(dataset, spec["region"])
    instance_s = time.perf_counter() - t0
    if spec.get("split"):
        instance = split_areas(instance, int(spec["split"]), int(spec.get("seed", 0)))
    if spec.get("sites"):
        instance = subset_sites(instance, int(spec["sites"]), int(spec.get("seed", 0)))
    params = SolveParams(**spec.get("params", {}))
    # keep_set_search False: the path before the keep-set search
    algorithms = BRANCH_AND_BOUND_ONLY if spec.get("keep_set_search") is False else None
    start, start_s = None, 0.0
    if spec["region"] == "all" and params.solver == "highs":
        # as `herschik solve --region all` does: seed HiGHS with the regional solutions
        from herschik.scenarios.run import regional_start

        t0 = time.perf_counter()
        areas = dict(zip(dataset.areas["area_id"], dataset.areas["region_id"]))
        start = regional_start(instance, areas, params)
        start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = solve(instance, params, start=start, algorithms=algorithms)
    wall = time.perf_counter() - t0 + start_s
    subs = sol.subproblems
    statuses: dict[str, int] = {}
    for s in subs:
        statuses[s["status"]] = statuses.get(s["status"], 0) + 1
    out = {
        "status": sol.status,
        "solver": sol.solver,
        "shape": list(instance.shape),
        "patients": round(float(instance.demand.sum()), 1),
        "instance_seconds": instance_s,
        "solve_wall_seconds": wall,
        "warm_start_seconds": start_s,
        "build_seconds": sol.build_seconds,
        "solve_seconds": sol.solve_seconds,
        "mip_gap": sol.mip_gap,
        "objective": sol.objective,
        "n_subproblems": len(subs),
        "n_vars": int(sum(s["n_vars"] for s in subs)),
        "n_rows": int(sum(s["n_rows"] for s in subs)),
        "n_binaries": int(sum(s.get("n_binaries", 0) for s in subs)),
        "subproblem_status": statuses,
        "keep_set_subproblems": sum(1 for s in subs if s.get("algorithm") == "keep_sets"),
        "max_subproblem_solve_seconds": max((s["solve_seconds"] for s in subs), default=0.0),
        "slowest_subproblem": max(subs, key=lambda s: s["solve_seconds"])["treatments"]
        if subs else None,
        "subproblem_seconds": {",".join(s["treatments"]): s["solve_seconds"] for s in subs},
        "phase1": {",".join(s["treatments"]): s["phase1"] for s in subs if "phase1" in s},
        "warnings": sol.warnings[:3],
        "code_fingerprint": code_fingerprint(),
    }
    timers = dict(clock.seconds)
    if sol.solver == "cbc" and "pulp_solve_call" in timers:
        # solve_seconds of a CBC component = PuLP model build + prob.solve(); split them
        out["pulp_model_seconds"] = max(0.0, sol.solve_seconds - timers["pulp_solve_call"])
        out["cbc_call_seconds"] = timers["pulp_solve_call"]
        out["pulp_write_mps_seconds"] = timers.get("pulp_write_mps", 0.0)
    if "highs_run" in timers:
        out["highs_run_seconds"] = timers["highs_run"]
    out.update(_peak_memory())
    return out


def task_call(spec: dict[str, Any]) -> dict[str, Any]:
    """Child task: ``module.function(**kwargs)`` returning a dict (matrix, sweep benchmarks)."""
    import importlib

    module = importlib.import_module(spec["module"])
    t0 = time.perf_counter()
    result = getattr(module, spec["function"])(**spec.get("kwargs", {}))
    out = {"status": "ok", "result": result, "call_seconds": time.perf_counter() - t0}
    out.update(_peak_memory())
    return out


TASKS = {"solve": task_solve, "call": task_call}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def main(argv: list[str]) -> int:
    task, spec = argv[0], json.loads(argv[1])
    result = TASKS[task](spec)
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(result, default=_json_default), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
