"""Benchmark: a sweep of ~100 scenarios x 7 regions on this machine (goal: <= 5 minutes).

Not a unit test. Run ``python -m benchmarks.bench_sweep [--n 100] [--regions all]
[--workers N] [--data DIR] [--out DIR]``; it prints a JSON report with the wall time, the
per-run split between model build and solve (median and total) and the status counts.

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


def scenario_text(n_scenarios: int) -> str:
    """A scenario file whose grid has ``ceil(n / 10) * 10`` points."""
    n_margins = max(1, math.ceil(n_scenarios / 10))
    margins = [round(0.3 * i / max(1, n_margins - 1), 4) for i in range(n_margins)]
    return (
        '# benchmark grid (generated)\nname = "bench"\ntime_limit = 60\n[grid]\n'
        f"margin = {json.dumps(margins)}\n"
        'max_travel = [45, 60, 75, 90, "none"]\n'
        'objective = ["travel", "providers"]\n'
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
) -> dict[str, Any]:
    """Run the benchmark sweep from scratch; return the timing report (a JSON-ready dict)."""
    from herschik.scenarios.sweep import run_sweep

    with tempfile.TemporaryDirectory(prefix="herschik-bench-") as tmp:
        scenario = Path(tmp) / "bench.toml"
        scenario.write_text(scenario_text(n_scenarios), encoding="utf-8")
        out = Path(out_dir) if out_dir is not None else Path(tmp) / "out"

        def timed_sweep(progress: bool) -> tuple[Any, float]:
            started = time.perf_counter()
            result = run_sweep(scenario, out, regions=regions, workers=workers,
                               dataset_source=dataset_source, outputs=outputs,
                               progress=progress)
            return result, time.perf_counter() - started

        frame, wall = timed_sweep(progress=True)
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
    return report


def run_gpkg_side_by_side(n_scenarios: int = 10, regions: str | list[str] = "all",
                          workers: int | None = None) -> dict[str, Any]:
    """The same sweep twice in one run: default outputs (no results.gpkg) and with results.gpkg
    (the default until `sweep --gpkg` made it opt-in); wall seconds and their ratio."""
    from herschik.scenarios.sweep import DEFAULT_OUTPUTS

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
    args = parser.parse_args(argv)
    regions: str | list[str] = "all" if args.regions == "all" else args.regions.split(",")
    report = run(args.n, regions, workers=args.workers, dataset_source=args.data, out_dir=args.out)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
