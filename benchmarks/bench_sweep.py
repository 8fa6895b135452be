"""Benchmark: a sweep of ~100 scenarios x 7 regions on this machine (goal: <= 5 minutes).

Not a unit test. Run ``python -m benchmarks.bench_sweep [--n 100] [--regions all]
[--workers N] [--data DIR] [--out DIR] [--objectives planner,travel,moved,providers|each]
[--margins 0,13]``; it prints a JSON report with the wall time, the process CPU seconds (the
sweep and its workers), the load, the per-run split between model build and solve (median and
total) and the status counts. ``--objectives each``: one sweep per objective (issue 23 goal 6:
the 100 x 7 grid under every objective), one report each; ``--margins``: only those margin
layers of the grid (indices), with the wall and CPU extrapolated to the whole grid (labelled).
Each report also gives the workers' CPU seconds a run by part (solve, tables, write) and, per
region, how many sub-problems the what-if sessions re-used. ``--chain REGION[:OBJECTIVE]``:
instead of a sweep, kept optima along margin chains against fresh solves
(:func:`run_chain_side_by_side`). ``--parts``: instead of a sweep, the CPU a run spends by
part per objective and region (bench_sweep_parts.py).

The scenarios are a grid written to a temporary TOML file: margin (``n / 10`` values from 0 to
0.3) x max_travel {45, 60, 75, 90, none} x objective {travel, providers}; ``n_scenarios`` is
rounded up to a multiple of 10. Runs write the sweep's default outputs (CSVs + results.gpkg).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_SECONDS = 300.0  # issue 16 (was 600 s)


#: the grid's objectives: the issue's original grid; ``("planner",)`` is the default objective
GRID_OBJECTIVES: tuple[str, ...] = ("travel", "providers")
TRAVEL_LIMITS = '[45, 60, 75, 90, "none"]'


def grid_margins(n_scenarios: int, objectives: tuple[str, ...] = GRID_OBJECTIVES) -> list[float]:
    """The margins of the benchmark grid of ``n_scenarios`` points (rounded up to a multiple of
    5 travel limits x the objectives)."""
    n_margins = max(1, math.ceil(n_scenarios / (5 * len(objectives))))
    return [round(0.3 * i / max(1, n_margins - 1), 4) for i in range(n_margins)]


def scenario_text(n_scenarios: int, margin_indices: list[int] | None = None,
                  objectives: tuple[str, ...] = GRID_OBJECTIVES) -> str:
    """A scenario file whose grid has ``n`` points (rounded up; or only the grid points of
    the margins at ``margin_indices``: a sub-sample of whole margin layers)."""
    margins = grid_margins(n_scenarios, objectives)
    if margin_indices is not None:
        margins = [margins[i] for i in margin_indices]
    return (
        '# benchmark grid (generated)\nname = "bench"\ntime_limit = 60\n[grid]\n'
        f"margin = {json.dumps(margins)}\n"
        f"max_travel = {TRAVEL_LIMITS}\n"
        f"objective = {json.dumps(list(objectives))}\n"
    )


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"median": math.nan, "total": 0.0, "max": math.nan}
    return {
        "median": round(statistics.median(values), 3),
        "total": round(sum(values), 3),
        "max": round(max(values), 3),
    }


def run(
    n_scenarios: int = 100,
    regions: str | list[str] = "all",
    *,
    workers: int | None = None,
    dataset_source: str | Path | None = None,
    out_dir: str | Path | None = None,
    outputs: dict[str, bool] | None = None,
    margin_indices: list[int] | None = None,
    objectives: tuple[str, ...] = GRID_OBJECTIVES,
    algorithms: Any = None,
) -> dict[str, Any]:
    """Run the benchmark sweep from scratch; return the timing report (a JSON-ready dict).

    ``margin_indices``: only those margin layers of the grid (an honest sub-sample: every
    travel limit and objective of each chosen margin); the report then adds
    ``extrapolated_wall_seconds`` = wall x (all margins / chosen margins)."""
    from herschik.scenarios.sweep.runner import run_sweep

    with tempfile.TemporaryDirectory(prefix="herschik-bench-") as tmp:
        scenario = Path(tmp) / "bench.toml"
        scenario.write_text(scenario_text(n_scenarios, margin_indices, tuple(objectives)),
                            encoding="utf-8")
        out = Path(out_dir) if out_dir is not None else Path(tmp) / "out"

        def timed_sweep(progress: bool) -> tuple[Any, float]:
            started = time.perf_counter()
            result = run_sweep(scenario, out, regions=regions, workers=workers,
                               dataset_source=dataset_source, outputs=outputs,
                               progress=progress, algorithms=algorithms)
            return result, time.perf_counter() - started

        load_at_start = [round(x, 2) for x in os.getloadavg()]
        cpu_before = _cpu_seconds()
        frame, wall = timed_sweep(progress=True)
        cpu = _cpu_seconds() - cpu_before
        again, resume = timed_sweep(progress=False)  # a re-run only skips finished runs
    solved = frame[frame["status"] != "error"]
    timings = frame.attrs.get("timings", [])
    report = {
        "runs": len(frame),
        "scenarios": int(frame["scenario"].nunique()) if len(frame) else 0,
        "regions": sorted(frame["region_id"].unique().tolist()) if len(frame) else [],
        "workers": workers or os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "wall_seconds": round(wall, 2),
        # the sweep process and its pool workers (joined when the sweep returns), user + sys
        "cpu_seconds": round(cpu, 1),
        "cpu_seconds_per_run": round(cpu / len(frame), 3) if len(frame) else None,
        "load_average_at_start": load_at_start,
        "goal_seconds": GOAL_SECONDS,
        "goal_met": wall <= GOAL_SECONDS,
        "runs_per_minute": round(60 * len(frame) / wall, 1) if wall > 0 else None,
        "build_seconds": _stats(solved["build_seconds"].dropna().tolist()),
        "solve_seconds": _stats(solved["solve_seconds"].dropna().tolist()),
        "instance_seconds": _stats([t["instance_seconds"] for t in timings if t.get("pid")]),
        "run_wall_seconds": _stats([t["wall_seconds"] for t in timings]),
        "status": {str(k): int(v) for k, v in frame["status"].value_counts().items()},
        "per_region_wall_seconds": {
            str(region): round(
                float(group["build_seconds"].sum() + group["solve_seconds"].sum()), 2
            )
            for region, group in solved.groupby("region_id")
        },
        "resume_seconds": round(resume, 2),
        "resume_solved": again.attrs.get("solved"),
    }
    report.update(_parts_and_reuse(frame, timings))
    report["objectives"] = list(objectives)
    from .common import code_fingerprint

    report["code_fingerprint"] = code_fingerprint()
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if margin_indices is not None:
        layers = len(grid_margins(n_scenarios, tuple(objectives)))
        report["sample_margins"] = [grid_margins(n_scenarios, tuple(objectives))[i]
                                    for i in margin_indices]
        report["extrapolated_wall_seconds"] = round(wall * layers / len(margin_indices), 1)
        report["extrapolated_cpu_seconds"] = round(cpu * layers / len(margin_indices), 1)
        report["extrapolation"] = (f"wall and CPU x {layers}/{len(margin_indices)} (whole "
                                   "margin layers sampled; not a measurement)")
    return report


def _parts_and_reuse(frame: Any, timings: list[dict[str, Any]]) -> dict[str, Any]:
    """Worker CPU seconds per run by part (solve, tables, write; summed over the solved runs)
    and, per region, how the what-if sessions answered the sub-problems (unchanged / cached:
    re-used; resolved: solved)."""
    region_of = dict(zip(frame["run_id"], frame["region_id"], strict=True)) if len(frame) else {}
    parts: dict[str, float] = {}
    reuse: dict[str, dict[str, int]] = {}
    for timing in timings:
        for part, seconds in (timing.get("cpu") or {}).items():
            parts[part] = parts.get(part, 0.0) + seconds
        counts = reuse.setdefault(str(region_of.get(timing["run_id"], "?")), {})
        for action, n in (timing.get("subproblems") or {}).items():
            counts[action] = counts.get(action, 0) + n
    runs = max(1, len(timings))
    return {"worker_cpu_seconds": {k: round(v, 1) for k, v in parts.items()},
            "worker_cpu_seconds_per_run": {k: round(v / runs, 3) for k, v in parts.items()},
            "subproblems_by_region": reuse}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its waited-for children."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


#: the objectives of goal 6 (issue 23): the grid under each
EVERY_OBJECTIVE: tuple[str, ...] = ("planner", "travel", "moved", "providers")


def run_each_objective(n_scenarios: int = 100, regions: str | list[str] = "all", *,
                       workers: int | None = None, dataset_source: str | Path | None = None,
                       margin_indices: list[int] | None = None,
                       objectives: tuple[str, ...] = EVERY_OBJECTIVE) -> dict[str, Any]:
    """The benchmark grid (``n_scenarios`` = margins x 5 travel limits) once per objective,
    one after another in this process; a report per objective (see :func:`run`)."""
    return {objective: run(n_scenarios, regions, workers=workers,
                           dataset_source=dataset_source, margin_indices=margin_indices,
                           objectives=(objective,))
            for objective in objectives}


def run_search_side_by_side(n_scenarios: int = 100, margin_indices: list[int] | None = None,
                            regions: str | list[str] = "all",
                            workers: int | None = None) -> dict[str, Any]:
    """The same sweep (sampled margin layers of both grids: the issue's travel / providers and
    the planner default) with the keep-set search off (HiGHS' branch and bound for every
    model, the path before it) and on (today's default), back to back in one process; each
    run's task carries the choice (``run_sweep(algorithms=...)``)."""
    from herschik.optimiser.algorithms import BRANCH_AND_BOUND_ONLY, Algorithms

    margin_indices = [0, 4, 9] if margin_indices is None else margin_indices
    out: dict[str, Any] = {"margin_indices": margin_indices}
    for objectives in (GRID_OBJECTIVES, ("planner",)):
        layers = len(grid_margins(n_scenarios, objectives))
        chosen = [i for i in margin_indices if i < layers]
        row: dict[str, Any] = {}
        for label, search in (("branch_and_bound", False), ("keep_set_search", True)):
            algorithms = Algorithms() if search else BRANCH_AND_BOUND_ONLY
            row[label] = run(n_scenarios, regions, workers=workers, margin_indices=chosen,
                             objectives=objectives, algorithms=algorithms)
        bb, ks = row["branch_and_bound"]["wall_seconds"], row["keep_set_search"]["wall_seconds"]
        row["bb_over_search"] = round(bb / ks, 2) if ks else None
        row["same_statuses"] = (row["branch_and_bound"]["status"]
                                == row["keep_set_search"]["status"])
        out["+".join(objectives)] = row
    return out


def run_gpkg_side_by_side(n_scenarios: int = 10, regions: str | list[str] = "all",
                          workers: int | None = None) -> dict[str, Any]:
    """The same sweep twice in one run: default outputs (no results.gpkg) and with results.gpkg
    (the default until `sweep --gpkg` made it opt-in); wall seconds and their ratio."""
    from herschik.scenarios.sweep.runner import DEFAULT_OUTPUTS

    from .common import code_fingerprint

    without = run(n_scenarios, regions, workers=workers)
    with_gpkg = run(n_scenarios, regions, workers=workers,
                    outputs={**DEFAULT_OUTPUTS, "gpkg": True})
    return {
        "runs": without["runs"], "scenarios": without["scenarios"],
        "code_fingerprint": code_fingerprint(),
        "wall_seconds_no_gpkg": without["wall_seconds"],
        "wall_seconds_gpkg": with_gpkg["wall_seconds"],
        "ratio_gpkg_over_no_gpkg": round(with_gpkg["wall_seconds"] / without["wall_seconds"], 2),
        "run_wall_median_no_gpkg": without["run_wall_seconds"]["median"],
        "run_wall_median_gpkg": with_gpkg["run_wall_seconds"]["median"],
        "solve_seconds_total_no_gpkg": without["solve_seconds"]["total"],
        "solve_seconds_total_gpkg": with_gpkg["solve_seconds"]["total"],
        "status_no_gpkg": without["status"], "status_gpkg": with_gpkg["status"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="scenarios (rounded up to x10)")
    parser.add_argument("--regions", default="all", help="all or ID,ID")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--data", default=None, help="dataset folder or 'example'")
    parser.add_argument("--out", default=None, help="keep the sweep folder here")
    parser.add_argument("--objectives", default=None,
                        help="objectives of the grid, comma-separated (one sweep with all of "
                             "them), or 'each': one sweep per objective (planner, travel, "
                             "moved, providers); default travel,providers")
    parser.add_argument("--margins", default=None,
                        help="only these margin layers (indices, comma-separated); wall and "
                             "CPU are then extrapolated to the whole grid, labelled")
    parser.add_argument("--chain", default=None, metavar="REGION[:OBJECTIVE]",
                        help="instead of a sweep: kept optima along margin chains against "
                             "fresh solves (run_chain_side_by_side)")
    parser.add_argument("--parts", action="store_true",
                        help="instead of a sweep: the CPU a run spends by part (solve "
                             "algorithm, build, tables, files...) per objective and region, "
                             "in process (bench_sweep_parts.py; default margins 4,14)")
    args = parser.parse_args(argv)
    if args.parts:
        from .bench_sweep_parts import main as parts_main

        return parts_main(["--objectives", args.objectives or "each",
                           "--margins", args.margins or "4,14", "--regions", args.regions])
    if args.chain is not None:
        region, _, objective = args.chain.partition(":")
        print(json.dumps(run_chain_side_by_side(region, objective or "travel",
                                                source=args.data), indent=2))
        return 0
    regions: str | list[str] = "all" if args.regions == "all" else args.regions.split(",")
    margins = None if args.margins is None else [int(i) for i in args.margins.split(",")]
    report: dict[str, Any]
    if args.objectives == "each":
        report = run_each_objective(args.n, regions, workers=args.workers,
                                    dataset_source=args.data, margin_indices=margins)
    else:
        objectives = (GRID_OBJECTIVES if args.objectives is None
                      else tuple(args.objectives.split(",")))
        report = run(args.n, regions, workers=args.workers, dataset_source=args.data,
                     out_dir=args.out, margin_indices=margins, objectives=objectives)
    print(json.dumps(report, indent=2))
    return 0




def run_chain_side_by_side(region: str, objective: str = "travel",
                           margins: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3),
                           travels: tuple[float | None, ...] = (None, 90.0, 75.0, 60.0, 45.0),
                           source: str | None = None) -> dict[str, Any]:
    """Kept optima between neighbouring grid points (whatif.py step 2), against fresh solves.

    For each travel limit (loosest first) one ``WhatIf`` session (not ``same_as_fresh``)
    starts at the lowest margin and raises it step by step (each step a restriction of the
    previous point, so a still feasible optimum is kept and an infeasible sub-problem stays
    infeasible); right after each step the same point is solved fresh with ``solve()``. Same
    process, back to back, process CPU seconds of each step (not of the chains' starts,
    fresh solves of margin 0). Per point: the session's actions, whether
    status and objective agree, and whether the plan is the fresh one bit for bit (keep and
    flow arrays): a sweep run must equal a fresh run, so only the last would let a sweep use
    it (``python -m benchmarks.bench_sweep --chain REGION:OBJECTIVE``)."""
    import numpy as np
    from herschik.optimiser.params import SolveParams
    from herschik.optimiser.solve import solve
    from herschik.optimiser.whatif import WhatIf
    from herschik.scenarios.assemble import build_instance

    from .common import code_fingerprint, load_source

    def same_bits(a: Any, b: Any) -> bool:
        return a.status == b.status and all(
            (x is None and y is None) or (x is not None and y is not None
                                          and np.array_equal(x, y))
            for x, y in ((a.keep, b.keep), (a.flow, b.flow)))

    instance = build_instance(load_source(source), region)
    points: list[dict[str, Any]] = []
    for travel in travels:
        params = SolveParams(objective=objective, margin=margins[0], max_travel=travel,
                             time_limit=60.0)
        session = WhatIf(instance, params, max_workers=1)  # the chain's start: a fresh solve
        for margin in margins[1:]:
            point = params.model_copy(update={"margin": margin})
            started = time.process_time()
            sol = session.set_params(point)
            chain_s = time.process_time() - started
            actions = session.last_step
            started = time.process_time()
            fresh = solve(instance, point, max_workers=1)
            fresh_s = time.process_time() - started
            same = fresh.status == sol.status and (
                not fresh.feasible or math.isclose(fresh.objective, sol.objective,
                                                   rel_tol=1e-6, abs_tol=1e-6))
            points.append({"margin": margin, "max_travel": travel, "status": sol.status,
                           "kept_optimum": actions.count("kept_optimum"),
                           "resolved": actions.count("resolved"),
                           "chain_cpu_seconds": round(chain_s, 3),
                           "fresh_cpu_seconds": round(fresh_s, 3),
                           "same_status_and_objective": same,
                           "same_plan_bits": same_bits(fresh, sol)})
    chain = sum(p["chain_cpu_seconds"] for p in points)
    fresh = sum(p["fresh_cpu_seconds"] for p in points)
    return {"region": region, "objective": objective, "points": len(points),
            "kept_optimum": sum(p["kept_optimum"] for p in points),
            "resolved": sum(p["resolved"] for p in points),
            "chain_cpu_seconds": round(chain, 2), "fresh_cpu_seconds": round(fresh, 2),
            "all_same_objective": all(p["same_status_and_objective"] for p in points),
            "points_not_the_fresh_plan": sum(not p["same_plan_bits"] for p in points),
            "per_point": points, "code_fingerprint": code_fingerprint()}


if __name__ == "__main__":
    raise SystemExit(main())
