"""The benchmark sections: each runs its measurements (mostly in child processes, see
common.run_child) and returns its part of results.json; ``run_sections`` runs those asked for,
in order. Rendering the results is benchmarks/render.py's."""

from __future__ import annotations

import importlib
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import bench_regions, bench_scaling
from .common import machine_info, run_child

SECTIONS = ("regions", "grid", "national", "matrix", "sweep", "sweep_default", "scaling",
            "settings", "network", "whatif", "sweep_gpkg", "sweep_search", "pinning",
            "import", "e2e")
GOAL_MATRIX_COLD_S = 20.0
GOAL_MATRIX_RATIO = 20.0
GOAL_SWEEP_S = 300.0  # issue 16 (was 600 s)
GOAL_SWEEP_EVERY_OBJECTIVE_S = 60.0  # issue 23 goal 6
GOAL_MEMORY_MB = 4096.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- sections ---------------------------------------------------------------------------
def section_matrix(args, env) -> dict[str, Any]:
    if args.smoke:
        return {"status": "skipped", "reason": "smoke mode"}
    res = run_child("call", {"module": "benchmarks.bench_matrix", "function": "run",
                             "kwargs": {"repeats": args.repeats}}, args.matrix_wall_cap, env)
    if res.get("status") != "ok":
        return {"status": "not measured", "reason": res.get("error")}
    out = dict(res["result"])
    out["status"] = "ok"
    out["peak_total_mb"] = res.get("peak_total_mb")
    out["child_wall_seconds"] = res.get("child_wall_seconds")
    cold = out.get("national_cold_s")
    ratio = (out.get("national_per_source") or {}).get("ratio")
    out["goal_cold_met"] = cold is not None and cold <= GOAL_MATRIX_COLD_S
    out["goal_ratio_met"] = ratio is not None and ratio >= GOAL_MATRIX_RATIO
    return out


def section_sweep(args, env, objectives: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The sweep benchmark; ``objectives=None`` is the issue's grid (travel, providers)."""
    if args.smoke:
        return {"status": "skipped", "reason": "smoke mode"}
    try:
        importlib.import_module(".bench_sweep", __package__)  # usable here, else not measured
    except Exception as exc:
        return {"status": "not measured", "reason": f"benchmarks.bench_sweep unusable: {exc!r}"}
    with tempfile.TemporaryDirectory(prefix="herschik-bench-sweep-") as tmp:
        start = time.perf_counter()
        res = run_child("call", {"module": "benchmarks.bench_sweep", "function": "run",
                                 "kwargs": {"n_scenarios": args.sweep_scenarios,
                                            "regions": "all", "out_dir": tmp,
                                            **({"objectives": list(objectives)}
                                               if objectives else {})}},
                        args.sweep_wall_cap, env)
        wall = time.perf_counter() - start
        done = sum(1 for _ in Path(tmp).rglob("summary.json"))
    if res.get("status") == "ok":
        out = dict(res["result"])
        out["run_status_counts"] = out.pop("status", None)
        out["status"] = "ok"
        out["peak_total_mb"] = res.get("peak_total_mb")
        return out
    per_margin = 5 * len(objectives or ("travel", "providers"))
    expected = math.ceil(args.sweep_scenarios / per_margin) * per_margin * 7
    estimate = round(wall * expected / done, 0) if done else None
    return {"estimated_total_seconds_linear": estimate,
            "status": "not finished" if res.get("status") == "killed" else "not measured",
            "reason": res.get("error"), "runs_expected": expected, "runs_finished": done,
            "wall_seconds_at_stop": round(wall, 1), "goal_seconds": GOAL_SWEEP_S,
            "goal_met": False if res.get("status") == "killed" and
            wall > GOAL_SWEEP_S else None}


def section_network(args, env) -> dict[str, Any]:
    if args.smoke:
        return {"status": "skipped", "reason": "smoke mode"}
    res = run_child("call", {"module": "benchmarks.bench_network", "function": "run",
                             "kwargs": {"scale": args.network_scale}},
                    args.network_wall_cap, env)
    if res.get("status") != "ok":
        return {"status": "not measured", "reason": res.get("error")}
    return dict(res["result"])


def section_settings(args, env) -> dict[str, Any]:
    """Solver settings side by side (benchmarks/bench_settings.py), in one child process."""
    spec = {"module": "benchmarks.bench_settings", "function": "run",
            "kwargs": {"repeats": args.repeats, "time_limit": args.time_limit or 60.0}}
    if args.smoke:
        spec["kwargs"].update({"regions": ["example"], "source": "example"})
    res = run_child("call", spec, args.settings_wall_cap, env)
    if res.get("status") != "ok":
        return {"status": "not measured", "reason": res.get("error")}
    out = dict(res["result"])
    out["status"] = "ok"
    out["peak_total_mb"] = res.get("peak_total_mb")
    return out


def section_whatif(args, env) -> dict[str, Any]:
    """What-if steps vs fresh solves (benchmarks/bench_whatif.py), in one child process."""
    spec = {"module": "benchmarks.bench_whatif", "function": "run", "kwargs": {}}
    if args.smoke:
        spec["kwargs"].update({"regions": ["example"], "source": "example"})
    elif args.regions:
        spec["kwargs"]["regions"] = args.regions
    res = run_child("call", spec, args.settings_wall_cap, env)
    if res.get("status") != "ok":
        return {"status": "not measured", "reason": res.get("error")}
    out = dict(res["result"])
    out["status"] = "ok"
    out["peak_total_mb"] = res.get("peak_total_mb")
    return out


def _row_key(row: dict[str, Any]) -> tuple[str, str]:
    # rows measured before the objective column existed ran under the old default, travel
    return row["region"], row.get("objective", "travel")


def section_pinning(args, env) -> dict[str, Any]:
    """Planner phase 2 reduced vs full (benchmarks/bench_pinning.py), in one child process."""
    spec = {"module": "benchmarks.bench_pinning", "function": "run",
            "kwargs": {"repeats": args.repeats}}
    if args.smoke:
        spec["kwargs"].update({"regions": ["example"], "source": "example"})
    elif args.regions:
        spec["kwargs"]["regions"] = args.regions
    res = run_child("call", spec, args.settings_wall_cap, env)
    if res.get("status") != "ok":
        return {"status": "not measured", "reason": res.get("error")}
    return {**res["result"], "status": "ok"}


def section_import(args, env) -> dict[str, Any]:
    """National volume import (benchmarks/bench_import.py), in one child process."""
    if args.smoke:
        return {"status": "skipped", "reason": "smoke mode"}
    res = run_child("call", {"module": "benchmarks.bench_import", "function": "run",
                             "kwargs": {"repeats": args.repeats}}, args.wall_cap, env)
    if res.get("status") != "ok":
        return {"status": "not measured", "reason": res.get("error")}
    return {**res["result"], "status": "ok", "peak_total_mb": res.get("peak_total_mb")}


def merge_regions(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Replace the rows of ``old`` re-measured in ``new`` (``--regions``), keep the others."""
    fresh = {_row_key(r): r for r in new["regions"]}
    rows = [fresh.pop(_row_key(r), r) for r in old.get("regions", [])] + list(fresh.values())
    merged = dict(old)
    merged["regions"] = rows
    merged["goal_met"] = all(r.get("goal_region_met") for r in rows) if rows else False
    merged["remeasured"] = sorted(set(old.get("remeasured", [])) | {r["region"]
                                                                   for r in new["regions"]})
    return merged


def section_regions(args, env: dict[str, str], previous: dict[str, Any]) -> dict[str, Any]:
    if args.smoke:
        return bench_regions.run(
            1, source="example", regions=["example"], time_limit=args.time_limit,
            wall_cap=args.wall_cap, env=env, log=log)
    result = bench_regions.run(
        args.repeats, regions=args.regions, time_limit=args.time_limit,
        wall_cap=args.wall_cap, env=env, log=log, cbc_repeats=args.cbc_repeats,
        objectives=tuple(args.objectives))
    if args.regions and previous.get("regions"):
        result = merge_regions(previous["regions"], result)
    return result


def section_scaling(args, env: dict[str, str]) -> dict[str, Any]:
    if args.smoke:
        return bench_scaling.run(
            1, region="example", site_region="example", splits=(2,), site_counts=(3, 6),
            source="example", municipalities=False, time_limit=args.time_limit,
            wall_cap=args.wall_cap, env=env, log=log)
    return bench_scaling.run(
        args.scaling_repeats or args.repeats, time_limit=args.time_limit,
        wall_cap=args.scaling_wall_cap or args.wall_cap, env=env, log=log)


def section_grid(args, env: dict[str, str]) -> dict[str, Any]:
    """Every region x objective x scenario grid (benchmarks/bench_grid.py), in one child."""
    if args.smoke:
        return {"status": "skipped", "reason": "smoke mode"}
    kwargs: dict[str, Any] = {"threads": args.grid_threads or None,
                              "objectives": args.grid_objectives}
    if args.regions:
        kwargs["regions"] = args.regions
    res = run_child("call", {"module": "benchmarks.bench_grid", "function": "run",
                             "kwargs": kwargs}, args.grid_wall_cap, env)
    if res.get("status") != "ok":
        return {"status": "not measured", "reason": res.get("error")}
    return {**res["result"], "status": "ok", "peak_total_mb": res.get("peak_total_mb")}


def _section_national(args, env: dict[str, str]) -> dict[str, Any]:
    if args.smoke:
        return {"status": "skipped", "reason": "smoke mode"}
    return bench_regions.run_national(
        args.national_repeats, time_limit=args.national_time_limit,
        wall_cap=args.national_wall_cap, env=env, log=log,
        solvers=tuple(args.national_solvers.split(",")))


def _side_by_side_section(args, env: dict[str, str], function: str,
                          kwargs: dict[str, Any]) -> dict[str, Any]:
    """A side-by-side sweep of benchmarks.bench_sweep in a child process."""
    if args.smoke:
        return {"status": "skipped", "reason": "smoke mode"}
    res = run_child("call", {"module": "benchmarks.bench_sweep", "function": function,
                             "kwargs": kwargs}, args.sweep_wall_cap, env)
    return ({**res["result"], "status": "ok"} if res.get("status") == "ok" else
            {"status": "not measured", "reason": res.get("error")})


def _section_sweep_gpkg(args, env: dict[str, str]) -> dict[str, Any]:
    return _side_by_side_section(args, env, "run_gpkg_side_by_side",
                                 {"n_scenarios": args.sweep_gpkg_scenarios})


def _section_sweep_search(args, env: dict[str, str]) -> dict[str, Any]:
    return _side_by_side_section(args, env, "run_search_side_by_side",
                                 {"n_scenarios": args.sweep_scenarios})


def section_e2e(args) -> dict[str, Any]:
    """The real commands end to end, beside an earlier commit (benchmarks/bench_e2e.py)."""
    from . import bench_e2e

    if args.smoke:  # the example region, no baseline, no national run: only that it runs
        out = bench_e2e.run(repeats=1, region="example")
    else:
        out = bench_e2e.run(repeats=args.repeats, baseline_ref=args.e2e_baseline,
                            national=args.e2e_national)
    out["status"] = "ok"
    out["machine"] = machine_info()
    return out


def run_sections(args, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    previous = previous or {}
    env = {}
    if args.cache_dir:
        env["HERSCHIK_CACHE_DIR"] = args.cache_dir
    # the sections in the order they run
    runners = {
        "regions": lambda: section_regions(args, env, previous),
        "grid": lambda: section_grid(args, env),
        "national": lambda: _section_national(args, env),
        "matrix": lambda: section_matrix(args, env),
        "sweep": lambda: section_sweep(args, env),
        "sweep_default": lambda: section_sweep(args, env, ("planner",)),
        "settings": lambda: section_settings(args, env),
        "network": lambda: section_network(args, env),
        "sweep_gpkg": lambda: _section_sweep_gpkg(args, env),
        "sweep_search": lambda: _section_sweep_search(args, env),
        "whatif": lambda: section_whatif(args, env),
        "pinning": lambda: section_pinning(args, env),
        "scaling": lambda: section_scaling(args, env),
        "import": lambda: section_import(args, env),
        "e2e": lambda: section_e2e(args),
    }
    results: dict[str, Any] = {}
    for name, runner in runners.items():
        if name in args.only:
            log(f"== {name}")
            results[name] = runner()
    return results
