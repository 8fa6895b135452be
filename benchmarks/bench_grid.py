"""Every scenario, not the default one (issue 23, goal 1): regions x objectives x margin x
max travel x extra-travel limit on the embedded districts data, one ``solve()`` per scenario,
in one process (instances built once per region).

    python -m benchmarks.bench_grid [--regions a,b] [--objectives planner,travel]
                                    [--margins 0,0.1,0.2,0.3] [--max-travel 45,60,75,90,none]
                                    [--extra none,30] [--old] [--out FILE.json]

Per scenario: wall and process CPU seconds of ``solve()`` (threads=1, so CPU ~ the wall of a
quiet machine), status, objective and the planner's travel. ``--old`` also solves each
scenario with HiGHS' branch and bound only (``solve.BRANCH_AND_BOUND_ONLY``: no keep-set
search, no Hall test) and checks the same status and optimum. The summary per region and
objective: p100 (the slowest) and median of both clocks. Not a unit test.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from typing import Any

GRID_MARGINS = (0.0, 0.1, 0.2, 0.3)
GRID_MAX_TRAVEL: tuple[float | None, ...] = (45.0, 60.0, 75.0, 90.0, None)
GRID_EXTRA: tuple[float | None, ...] = (None, 30.0)
OBJECTIVES = ("planner", "travel", "moved", "providers")


def _one(solve, instance, params, algorithms) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    sol = solve(instance, params, algorithms=algorithms)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    travel = sum(float(s.get("travel", 0.0) or 0.0) for s in sol.subproblems)
    return {"wall": wall, "cpu": cpu, "status": str(sol.status),
            "objective": sol.objective, "travel": travel,
            "slowest": max(((s["solve_seconds"], ",".join(s["treatments"]))
                            for s in sol.subproblems), default=(0.0, ""))}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["status"] != b["status"]:
        return False
    if a["status"] != "optimal":
        return True
    close = math.isclose(a["objective"], b["objective"], rel_tol=1e-6, abs_tol=1e-4)
    return close and math.isclose(a["travel"], b["travel"], rel_tol=1e-6, abs_tol=1e-3)


def _summary(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    walls = [r[key]["wall"] for r in rows]
    cpus = [r[key]["cpu"] for r in rows]
    worst = max(rows, key=lambda r: r[key]["cpu"])
    return {"n": len(rows), "p100_wall": max(walls), "median_wall": statistics.median(walls),
            "p100_cpu": max(cpus), "median_cpu": statistics.median(cpus),
            "statuses": {s: sum(r[key]["status"] == s for r in rows)
                         for s in sorted({r[key]["status"] for r in rows})},
            "slowest_scenario": worst["scenario"], "slowest_subproblem": worst[key]["slowest"]}


def run(regions: list[str] | None = None, objectives: tuple[str, ...] = OBJECTIVES,
        margins: tuple[float, ...] = GRID_MARGINS,
        max_travel: tuple[float | None, ...] = GRID_MAX_TRAVEL,
        extra: tuple[float | None, ...] = GRID_EXTRA, old: bool = False,
        log=print) -> dict[str, Any]:
    from herschik.optimiser.params import SolveParams
    from herschik.optimiser.solve import BRANCH_AND_BOUND_ONLY, solve
    from herschik.scenarios.assemble import build_instance

    from .common import load_source

    dataset = load_source(None)
    if regions is None:
        regions = sorted(set(dataset.areas["region_id"]))
    out: dict[str, Any] = {"grid": {"margins": margins, "max_travel": max_travel,
                                    "extra": extra, "objectives": objectives,
                                    "regions": regions, "old": old}, "summary": {},
                           "disagreements": []}
    for region in regions:
        instance = build_instance(dataset, region)
        for objective in objectives:
            rows = []
            for margin, limit, more in itertools.product(margins, max_travel, extra):
                params = SolveParams(objective=objective, margin=margin, max_travel=limit,
                                     max_extra_travel=more, threads=1)
                row: dict[str, Any] = {"scenario": [margin, limit, more],
                                       "new": _one(solve, instance, params, None)}
                if old:
                    row["old"] = _one(solve, instance, params, BRANCH_AND_BOUND_ONLY)
                    if not _same(row["new"], row["old"]):
                        out["disagreements"].append({"region": region, "objective": objective,
                                                     **row})
                rows.append(row)
            summary = {"new": _summary(rows, "new")}
            if old:
                summary["old"] = _summary(rows, "old")
            out["summary"][f"{region}/{objective}"] = summary
            log(f"{region:<26} {objective:<9} " + "  ".join(
                f"{k}: p100 cpu {v['p100_cpu']:.2f} s wall {v['p100_wall']:.2f} s, "
                f"median cpu {v['median_cpu']:.3f} s {v['statuses']}"
                for k, v in summary.items()))
    return out


def _floats(text: str) -> tuple[float | None, ...]:
    return tuple(None if v == "none" else float(v) for v in text.split(","))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_grid")
    parser.add_argument("--regions", default=None)
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--margins", default="0,0.1,0.2,0.3")
    parser.add_argument("--max-travel", default="45,60,75,90,none")
    parser.add_argument("--extra", default="none,30")
    parser.add_argument("--old", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    margins = tuple(v for v in _floats(args.margins) if v is not None)
    result = run(args.regions.split(",") if args.regions else None,
                 tuple(args.objectives.split(",")), margins, _floats(args.max_travel),
                 _floats(args.extra), args.old, log=lambda m: print(m, file=sys.stderr))
    from .common import emit_json

    emit_json(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
