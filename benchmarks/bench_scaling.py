"""How solve time grows with the number of origin areas and with the number of sites.

* areas: one region at municipality level (``geo/data/default_municipalities``), at district
  level (the default), and districts split synthetically into ``k`` sub-areas each
  (:func:`benchmarks.common.split_areas`: demand and baseline split with the same random
  shares, jittered travel times);
* sites: the same region (districts) restricted to nested random subsets of its sites
  (:func:`benchmarks.common.subset_sites`).

HiGHS only (the default solver), each point in its own child process, medians of
``repeats``. ``python -m benchmarks.bench_scaling`` prints the JSON of :func:`run`.
"""

from __future__ import annotations

import json
from typing import Any

from .common import median, run_child


def _point(spec: dict[str, Any], repeats: int, wall_cap: float | None, env, log,
           label: str) -> dict[str, Any]:
    runs = []
    for i in range(repeats):
        res = run_child("solve", spec, wall_cap, env=env)
        runs.append(res)
        log(f"  scaling {label:<28} repeat {i + 1}/{repeats}: {res.get('status')} "
            f"solve() {res.get('solve_wall_seconds', float('nan')):.2f} s")
        if res.get("status") in ("killed", "error"):
            break  # a capped point is not repeated
    ok = [r for r in runs if r.get("status") not in ("killed", "error")]
    out: dict[str, Any] = {"label": label, "repeats": len(runs)}
    if not ok:
        out.update(status=runs[-1].get("status"), error=runs[-1].get("error"))
        return out
    last = ok[-1]
    out.update(
        status=last.get("status"),
        shape=last.get("shape"),
        n_vars=last.get("n_vars"),
        n_rows=last.get("n_rows"),
        mip_gap=max((r.get("mip_gap") or 0.0) for r in ok),
        solve_wall_seconds=median([r.get("solve_wall_seconds") for r in ok]),
        build_seconds=median([r.get("build_seconds") for r in ok]),
        solve_seconds=median([r.get("solve_seconds") for r in ok]),
        peak_total_mb=max(r.get("peak_total_mb", 0.0) for r in ok),
    )
    return out


def run(repeats: int = 3, *, region: str = "midden", site_region: str = "zuidoost",
        splits: tuple[int, ...] = (2, 4), site_counts: tuple[int, ...] | None = None,
        source: str | None = None, municipalities: bool = True,
        time_limit: float | None = 60.0, wall_cap: float | None = 600.0,
        env: dict[str, str] | None = None, log=print) -> dict[str, Any]:
    """Area and site scaling points (see the module docstring)."""
    params: dict[str, Any] = {"solver": "highs"}
    if time_limit is not None:
        params["time_limit"] = time_limit
    areas: list[dict[str, Any]] = []
    if municipalities:
        areas.append(_point({"source": "municipalities", "region": region, "params": params},
                            repeats, wall_cap, env, log, f"{region} municipalities"))
    areas.append(_point({"source": source, "region": region, "params": params},
                        repeats, wall_cap, env, log, f"{region} districts"))
    for k in splits:
        areas.append(_point({"source": source, "region": region, "split": k,
                             "params": params}, repeats, wall_cap, env, log,
                            f"{region} districts x{k}"))
    sites: list[dict[str, Any]] = []
    if site_counts is None:
        from .common import load_source

        ds = load_source(source)
        n = int((ds.sites["region_id"] == site_region).sum())
        site_counts = tuple(sorted({max(2, round(n * f)) for f in (0.33, 0.5, 0.75)} | {n}))
    for n in site_counts:
        sites.append(_point({"source": source, "region": site_region, "sites": n,
                             "params": params}, repeats, wall_cap, env, log,
                            f"{site_region} {n} sites"))
    return {"repeats": repeats, "solver": "highs", "time_limit_per_subproblem": time_limit,
            "area_region": region, "site_region": site_region, "areas": areas, "sites": sites,
            "note": "national counts for reference: 345 municipalities, 3,340 districts"}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, default=str))
