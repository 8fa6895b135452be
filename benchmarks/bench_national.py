"""The national joint solve (``herschik solve --region all``, district level) per objective and
per sub-problem, in CPU seconds (issue 23, goal 3).

    python -m benchmarks.bench_national [--objectives planner,travel,moved,providers]
                                        [--treatments kidney_systemic,...] [--time-limit 60]
                                        [--joint] [--also-off] [--out FILE]

Per objective: the instance and the regional start (``scenarios.run.regional_start``, as the
CLI seeds the joint model), then each sub-problem (component) alone with HiGHS threads=1 and
the per-sub-problem ``--time-limit`` (``--treatments``: only those), timed in **process CPU
seconds** beside wall seconds and the load average: the machine is shared, wall seconds under
load are not comparable. ``--joint``: the whole ``solve()`` instead, as the CLI runs it (both
cores), with the process' peak RSS; each objective then runs in its own child process (peak
RSS per objective). ``--also-off``: every measurement again with
``Algorithms(norm_keep_sets=False)`` (the path before optimiser/norm_keepsets.py), side by
side. Not a unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

from .common import code_fingerprint

OBJECTIVES = ("planner", "travel", "moved", "providers")
RESULT = "NATIONAL_RESULT "


def _setup(objective: str, time_limit: float | None) -> tuple[Any, Any, Any, dict[str, Any]]:
    from herschik.geo.dataset import load_dataset
    from herschik.geo.schema import DEFAULT_DIR
    from herschik.optimiser.params import SolveParams
    from herschik.scenarios.assemble import build_instance
    from herschik.scenarios.run import regional_start

    cpu, wall = time.process_time(), time.perf_counter()
    dataset = load_dataset(DEFAULT_DIR)
    instance = build_instance(dataset, "all")
    params = SolveParams(objective=objective, time_limit=time_limit)
    area_regions = dict(zip(dataset.areas["area_id"], dataset.areas["region_id"]))
    start_params = SolveParams(objective=objective)
    start = regional_start(instance, area_regions, start_params)
    timing = {"setup_cpu_s": round(time.process_time() - cpu, 2),
              "setup_wall_s": round(time.perf_counter() - wall, 2)}
    return instance, params, start, timing


def _algorithms(off: bool) -> Any:
    from herschik.optimiser.algorithms import DEFAULT_ALGORITHMS
    return replace(DEFAULT_ALGORITHMS, norm_keep_sets=not off)


def components(objective: str, treatments: set[str] | None, time_limit: float | None,
               off: bool) -> list[dict[str, Any]]:
    """Each sub-problem alone (threads=1): CPU and wall seconds, status, gap, algorithm."""
    from herschik.optimiser.component import solve_component
    from herschik.optimiser.decomposition import treatment_components

    instance, params, start, _ = _setup(objective, time_limit)
    comps, _ = treatment_components(instance, params)
    rows = []
    for comp in comps:
        name = "+".join(instance.treatments[t].id for t in comp)
        if treatments and not set(name.split("+")) & treatments:
            continue
        cpu, wall = time.process_time(), time.perf_counter()
        res = solve_component(instance, params, comp, 1, start, None, _algorithms(off))
        rows.append({
            "objective": objective, "treatment": name, "norm_keep_sets": not off,
            "cpu_s": round(time.process_time() - cpu, 2),
            "wall_s": round(time.perf_counter() - wall, 2),
            "status": str(res.status.value), "gap": res.gap,
            "algorithm": res.report.algorithm,
            "objective_value": (None if res.x is None else float(res.arrays.c @ res.x
                                                                 + res.arrays.offset)),
            "load": [round(x, 2) for x in os.getloadavg()],
        })
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def joint(objective: str, time_limit: float | None, off: bool) -> dict[str, Any]:
    """The whole national ``solve()`` as the CLI runs it (sub-problems on every core)."""
    from herschik.optimiser.solve import solve

    instance, params, start, timing = _setup(objective, time_limit)
    cpu, wall = time.process_time(), time.perf_counter()
    solution = solve(instance, params, start=start, algorithms=_algorithms(off))
    slow = sorted(((s.get("solve_seconds") or 0.0, s.get("treatments") or s.get("name"))
                   for s in (solution.subproblems or [])), reverse=True, key=lambda p: p[0])
    return {
        "objective": objective, "norm_keep_sets": not off, **timing,
        "solve_cpu_s": round(time.process_time() - cpu, 2),
        "solve_wall_s": round(time.perf_counter() - wall, 2),
        "status": str(solution.status.value),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "slowest_subproblems_wall_s": [[str(n), round(float(s), 2)] for s, n in slow[:4]],
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def child_command(objective: str, time_limit: float | None, off: bool) -> list[str]:
    """The child process' command line; no limit is passed as 0 (left out, the child took
    the default 60 s)."""
    return [sys.executable, "-m", "benchmarks.bench_national", "--objectives", objective,
            "--joint", "--child", "--time-limit", str(time_limit or 0)] + (
                ["--off"] if off else [])


def _joint_child(objective: str, time_limit: float | None, off: bool) -> dict[str, Any]:
    done = subprocess.run(child_command(objective, time_limit, off), capture_output=True,
                          text=True, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT):
            return dict(json.loads(line[len(RESULT):]))
    return {"objective": objective, "status": "error",
            "error": " | ".join(done.stderr.strip().splitlines()[-3:])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_national",
                                description=__doc__.splitlines()[0])
    p.add_argument("--objectives", default=",".join(OBJECTIVES))
    p.add_argument("--treatments", default=None, help="comma-separated treatment ids")
    p.add_argument("--time-limit", type=float, default=60.0,
                   help="seconds per sub-problem (0: none)")
    p.add_argument("--joint", action="store_true", help="the whole solve() per objective")
    p.add_argument("--also-off", action="store_true",
                   help="again with Algorithms(norm_keep_sets=False)")
    p.add_argument("--off", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help="JSON file (default: stdout)")
    args = p.parse_args(argv)
    limit = args.time_limit or None
    objectives = args.objectives.split(",")
    treatments = set(args.treatments.split(",")) if args.treatments else None
    if args.child:
        print(RESULT + json.dumps(joint(objectives[0], limit, args.off)))
        return 0
    settings = [False, True] if args.also_off else [args.off]
    out: dict[str, Any] = {"code": code_fingerprint(),
                           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "time_limit_s": limit, "runs": []}
    for objective in objectives:
        for off in settings:
            if args.joint:
                out["runs"].append(_joint_child(objective, limit, off))
                print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
            else:
                out["runs"] += components(objective, treatments, limit, off)
    text = json.dumps(out, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
