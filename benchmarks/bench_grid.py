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
import os
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
            # per sub-problem: a partial plan's solved treatments are compared one by one
            "subproblems": [[",".join(s["treatments"]), str(s["status"]), s.get("objective"),
                             float(s.get("travel", 0.0) or 0.0)] for s in sol.subproblems],
            "slowest": max(((s["solve_seconds"], ",".join(s["treatments"]))
                            for s in sol.subproblems), default=(0.0, ""))}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same status, and the same optimum (objective and travel) in the scenario and in every
    sub-problem that both solved to optimality: a partially infeasible scenario has no
    objective of its own, its solved treatments do."""
    if a["status"] != b["status"]:
        return False
    if a["status"] == "optimal" and not (
            _close(a["objective"], b["objective"]) and _close(a["travel"], b["travel"], 1e-3)):
        return False
    mine = {sub[0]: sub for sub in a.get("subproblems", [])}
    for name, status, objective, travel in b.get("subproblems", []):
        other = mine.get(name)
        if other is None or other[1] != status:
            return False
        if status == "optimal" and not (_close(other[2], objective)
                                        and _close(other[3], travel, 1e-3)):
            return False
    return True


def _close(a: float | None, b: float | None, abs_tol: float = 1e-4) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=abs_tol)


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
        log=print, threads: int | None = 1) -> dict[str, Any]:
    """The grid; ``threads`` per solve (1: CPU seconds ~ one idle core's wall; None: every
    core, as ``herschik solve`` runs)."""
    from herschik.optimiser.params import SolveParams
    from herschik.optimiser.solve import BRANCH_AND_BOUND_ONLY, solve
    from herschik.scenarios.assemble import build_instance

    from .common import load_source

    load_at_start = os.getloadavg()[0]
    dataset = load_source(None)
    if regions is None:
        regions = sorted(set(dataset.areas["region_id"]))
    out: dict[str, Any] = {"grid": {"margins": margins, "max_travel": max_travel,
                                    "extra": extra, "objectives": objectives,
                                    "regions": regions, "old": old, "threads": threads},
                           "summary": {},
                           "disagreements": []}
    for region in regions:
        instance = build_instance(dataset, region)
        for objective in objectives:
            rows = []
            for margin, limit, more in itertools.product(margins, max_travel, extra):
                params = SolveParams(objective=objective, margin=margin, max_travel=limit,
                                     max_extra_travel=more, threads=threads)
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
    out["load_average"] = [round(load_at_start, 2), round(os.getloadavg()[0], 2)]
    return out


GOAL_P100_S = 1.0  # issue 23 goal 1: the slowest solve of the grid, per region and objective


def _scenario_words(scenario: list[float | None]) -> str:
    margin, limit, extra = scenario
    return ", ".join(f"{name} {'none' if v is None else f'{v:g}'}" for name, v in
                     (("margin", margin), ("max travel", limit), ("extra", extra)))


def render(result: dict[str, Any]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """RESULTS.md lines of a grid run (``run``'s result) and its goal row."""
    grid = result["grid"]
    threads = grid.get("threads")
    lines = ["## Every scenario: the grid per region and objective (`benchmarks/bench_grid.py`)",
             "",
             f"Margin {grid['margins']} x max travel {grid['max_travel']} x extra-travel limit "
             f"{grid['extra']}, districts, one `solve()` per scenario (instances built once per "
             f"region), threads per solve: {threads or 'every core'}. Wall and process CPU "
             "seconds of `solve()`; p100 = the slowest scenario. Measured "
             f"{result.get('measured_at', '?')}, load average (1 min) at start / end: "
             f"{result.get('load_average', '?')}.", "",
             "| region | objective | p100 wall s | median wall s | p100 CPU s | median CPU s "
             "| statuses | slowest scenario |",
             "|---|---|---|---|---|---|---|---|"]
    worst = 0.0
    for key, summary in result["summary"].items():
        region, objective = key.split("/")
        new = summary["new"]
        worst = max(worst, new["p100_wall"])
        statuses = ", ".join(f"{k} {v}" for k, v in new["statuses"].items())
        lines.append(f"| {region} | {objective} | {new['p100_wall']:.2f} | "
                     f"{new['median_wall']:.3f} | {new['p100_cpu']:.2f} | "
                     f"{new['median_cpu']:.3f} | {statuses} | "
                     f"{_scenario_words(new['slowest_scenario'])} |")
    if result.get("disagreements"):
        lines += ["", f"**{len(result['disagreements'])} scenarios disagree** with HiGHS' "
                  "branch and bound only (`--old`)."]
    met = "**met**" if worst <= GOAL_P100_S else "**missed**"
    goal = (f"every scenario: slowest region solve ≤ {GOAL_P100_S:g} s", met,
            f"p100 over the grid: {worst:.2f} s wall (threads {threads or 'every core'})")
    return lines + [""], [goal]


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
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per solve (0: every core, as herschik solve runs)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    margins = tuple(v for v in _floats(args.margins) if v is not None)
    result = run(args.regions.split(",") if args.regions else None,
                 tuple(args.objectives.split(",")), margins, _floats(args.max_travel),
                 _floats(args.extra), args.old, log=lambda m: print(m, file=sys.stderr),
                 threads=args.threads or None)
    from .common import emit_json

    emit_json(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
