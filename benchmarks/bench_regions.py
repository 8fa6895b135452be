"""Per-region and national solve benchmarks: HiGHS vs CBC on the same instance, same run.

For every region and repeat, one child process solves with HiGHS, then one with CBC (same
dataset, same region, same default :class:`SolveParams`, hence the same model); the ratio
CBC/HiGHS is taken per repeat and its median reported. Timings per solver are medians over
repeats; sizes come from ``Solution.subproblems`` (summed); peak memory is the maximum over
the repeats of each child's own peak RSS (+ the CBC process).

``python -m benchmarks.bench_regions`` prints the JSON of :func:`run` (regions only).
"""

from __future__ import annotations

import json
from typing import Any

from .common import median, run_child

#: "highs" is today's default path (the keep-set search where it covers a model, else HiGHS'
#: branch and bound); "highs_bb" the same with the search off (HiGHS' branch and bound for
#: every model, the path before it); "cbc" CBC
SOLVERS = ("highs", "highs_bb", "cbc")
#: goals of the issue
GOAL_REGION_SECONDS = 1.0  # issue 16 (was 2 s)
GOAL_NATIONAL_SECONDS = 60.0
GOAL_MEMORY_MB = 4096.0


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeats of one (region, solver)."""
    ok = [r for r in runs if r.get("status") in ("optimal", "feasible", "infeasible")]
    out: dict[str, Any] = {"repeats": len(runs), "runs_ok": len(ok)}
    statuses = sorted({str(r.get("status")) for r in runs})
    out["status"] = statuses[0] if len(statuses) == 1 else "/".join(statuses)
    if not ok:
        out["error"] = runs[-1].get("error") if runs else "no run"
        out["wall_cap_seconds"] = runs[-1].get("wall_cap_seconds") if runs else None
        return out
    for key in ("instance_seconds", "solve_wall_seconds", "build_seconds", "solve_seconds",
                "pulp_model_seconds", "cbc_call_seconds", "pulp_write_mps_seconds",
                "highs_run_seconds", "max_subproblem_solve_seconds"):
        vals = [r.get(key) for r in ok if r.get(key) is not None]
        if vals:
            out[key] = median(vals)
    out["instance_seconds_first"] = ok[0].get("instance_seconds")
    gaps = [r.get("mip_gap") for r in ok if r.get("mip_gap") is not None]
    out["mip_gap"] = max(gaps) if gaps else None
    last = ok[-1]
    for key in ("shape", "patients", "n_subproblems", "n_vars", "n_rows", "n_binaries",
                "subproblem_status", "objective", "slowest_subproblem", "solver", "warnings",
                "code_fingerprint", "subproblem_seconds", "phase1", "keep_set_subproblems"):
        out[key] = last.get(key)
    out["peak_rss_mb"] = max(r.get("peak_rss_mb", 0.0) for r in ok)
    out["peak_total_mb"] = max(r.get("peak_total_mb", 0.0) for r in ok)
    out["samples_solve_wall_seconds"] = [r.get("solve_wall_seconds") for r in ok]
    out["code_fingerprints"] = sorted({str(r.get("code_fingerprint")) for r in ok})
    return out


def measure(source: str | None, region: str, repeats: int, time_limit: float | None,
            wall_cap: float | None, solvers: tuple[str, ...] = SOLVERS,
            env: dict[str, str] | None = None, log=print,
            cbc_repeats: int | None = None, objective: str | None = None) -> dict[str, Any]:
    """Both solvers on one region, interleaved per repeat; medians and per-repeat ratios.

    ``cbc_repeats`` (default ``repeats``) lets CBC, the slow back-end, run fewer times; the
    ratio is then taken over the repeats in which both ran. ``objective`` (default: the
    default of ``SolveParams``) is the objective of every solve.
    """
    cbc_repeats = repeats if cbc_repeats is None else min(cbc_repeats, repeats)
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in solvers}
    ratios: list[float] = []
    bb_ratios: list[float] = []
    for i in range(repeats):
        this: dict[str, dict[str, Any]] = {}
        for solver in solvers:
            if solver == "cbc" and i >= cbc_repeats:
                continue
            params: dict[str, Any] = {"solver": "highs" if solver == "highs_bb" else solver}
            if objective is not None:
                params["objective"] = objective
            if time_limit is not None:
                params["time_limit"] = time_limit
            spec: dict[str, Any] = {"source": source, "region": region, "params": params}
            if solver == "highs_bb":
                spec["keep_set_search"] = False
            res = run_child("solve", spec, wall_cap, env=env)
            this[solver] = res
            runs[solver].append(res)
            log(f"  {region:<24} {objective or 'default':<8} {solver:<5} repeat {i + 1}: "
                f"{res.get('status')} "
                f"solve() {res.get('solve_wall_seconds', float('nan')):.2f} s "
                f"(child {res.get('child_wall_seconds', float('nan')):.1f} s)")
        h, c = this.get("highs", {}), this.get("cbc", {})
        if h.get("solve_wall_seconds") and c.get("solve_wall_seconds"):
            # a ratio also when one solver hit the time limit (status shown beside it)
            ratios.append(c["solve_wall_seconds"] / h["solve_wall_seconds"])
        bb = this.get("highs_bb", {})
        if h.get("solve_wall_seconds") and bb.get("solve_wall_seconds"):
            bb_ratios.append(bb["solve_wall_seconds"] / h["solve_wall_seconds"])
    out: dict[str, Any] = {"region": region, "objective": objective or _default_objective(),
                           "time_limit_per_subproblem": time_limit,
                           "wall_cap_seconds": wall_cap}
    for solver in solvers:
        out[solver] = _summarise(runs[solver])
    out["cbc_over_highs"] = median(ratios)
    out["cbc_over_highs_samples"] = ratios
    out["bb_over_highs"] = median(bb_ratios)
    out["bb_over_highs_samples"] = bb_ratios
    h = out.get("highs", {})
    wall = h.get("solve_wall_seconds")
    out["goal_region_met"] = bool(h.get("status") == "optimal" and wall is not None
                                  and wall <= GOAL_REGION_SECONDS)
    return out


def _default_objective() -> str:
    from herschik.optimiser.params import SolveParams

    return str(SolveParams().objective)


def run(repeats: int = 3, *, source: str | None = None, regions: list[str] | None = None,
        time_limit: float | None = 60.0, wall_cap: float | None = 900.0,
        env: dict[str, str] | None = None, log=print,
        cbc_repeats: int | None = None,
        objectives: tuple[str | None, ...] = (None,)) -> dict[str, Any]:
    """All regions of ``source`` (default: the seven regions of the national default), once
    per objective of ``objectives`` (``None``: the default objective); one row per pair."""
    if regions is None:
        from .common import load_source

        regions = list(load_source(source).region_ids())
    rows = [measure(source, r, repeats, time_limit, wall_cap, env=env, log=log,
                    cbc_repeats=cbc_repeats, objective=objective)
            for r in regions for objective in objectives]
    return {"repeats": repeats,
            "cbc_repeats": repeats if cbc_repeats is None else cbc_repeats,
            "source": source or "default", "regions": rows,
            "goal_seconds": GOAL_REGION_SECONDS,
            "goal_met": all(r["goal_region_met"] for r in rows) if rows else False}


def run_national(repeats: int = 1, *, time_limit: float | None = 300.0,
                 wall_cap: float | None = 900.0, env: dict[str, str] | None = None,
                 log=print, solvers: tuple[str, ...] = SOLVERS) -> dict[str, Any]:
    """The joint national solve (``--region all``), HiGHS and CBC (``solvers``), same run."""
    out = measure(None, "all", repeats, time_limit, wall_cap, solvers=solvers, env=env,
                  log=log)
    h = out.get("highs", {})
    wall = h.get("solve_wall_seconds")
    out["goal_seconds"] = GOAL_NATIONAL_SECONDS
    out["goal_met"] = bool(h.get("status") == "optimal" and wall is not None
                           and wall <= GOAL_NATIONAL_SECONDS)
    out.pop("goal_region_met", None)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, default=str))
