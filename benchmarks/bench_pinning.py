"""The planner's reduced phase 2 (optimiser/pinning.py) side by side with the full phase 2.

For every region, in one process: ``solve()`` under the default objective with the reduction
off (``Algorithms(pin_phase2=False)``, the path before it) and on, both with the keep-set
search off (the reduction serves HiGHS' branch and bound), alternating per repeat, so the
ratio off/on is taken within each repeat and its median reported. Both must be proven optimal
with the same objective and the same travel. ``python -m benchmarks.bench_pinning`` prints
the JSON. Not a unit test.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from typing import Any

import numpy as np


def run_region(region: str, repeats: int = 3, source: str | None = None) -> dict[str, Any]:
    from herschik.optimiser import solve as solve_module
    from herschik.optimiser.params import SolveParams
    from herschik.scenarios.assemble import build_instance

    from .common import load_source

    instance = build_instance(load_source(source), region)
    params = SolveParams()
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
    walls: dict[bool, list[float]] = {False: [], True: []}
    sums: dict[bool, list[float]] = {False: [], True: []}
    found: dict[bool, tuple[str, float, float]] = {}
    slowest: dict[bool, dict[str, float]] = {}
    # the reduction serves the MIP path: measured with the keep-set search off
    for _ in range(repeats):
        for pinned in (False, True):
            algorithms = solve_module.Algorithms(keep_set_search=False, pin_phase2=pinned)
            started = time.perf_counter()
            sol = solve_module.solve(instance, params, algorithms=algorithms)
            walls[pinned].append(time.perf_counter() - started)
            sums[pinned].append(sum(s["solve_seconds"] for s in sol.subproblems))
            found[pinned] = (sol.status, float(sol.objective or 0.0),
                             float(np.einsum("ast,as->", sol.flow, travel))
                             if sol.flow is not None else math.nan)
            slowest[pinned] = {",".join(s["treatments"]): s["solve_seconds"]
                               for s in sorted(sol.subproblems,
                                               key=lambda s: -s["solve_seconds"])[:3]}
    ratios = [a / b for a, b in zip(walls[False], walls[True], strict=True) if b > 0]
    same = (found[False][0] == found[True][0] == "optimal"
            and math.isclose(found[False][1], found[True][1], abs_tol=1e-6)
            and math.isclose(found[False][2], found[True][2], rel_tol=1e-7, abs_tol=1e-4))
    return {"region": region, "objective": params.objective, "repeats": repeats,
            "wall_full": statistics.median(walls[False]),
            "wall_reduced": statistics.median(walls[True]),
            "sum_full": statistics.median(sums[False]),
            "sum_reduced": statistics.median(sums[True]),
            "full_over_reduced": statistics.median(ratios) if ratios else None,
            "slowest_reduced": slowest[True], "same_optimum": same}


def run(regions: list[str] | None = None, repeats: int = 3,
        source: str | None = None) -> dict[str, Any]:
    from .common import code_fingerprint, load_source

    names = regions or list(load_source(source).region_ids())
    rows = [run_region(r, repeats, source) for r in names]
    return {"code_fingerprint": code_fingerprint(), "regions": rows,
            "all_same": all(r["same_optimum"] for r in rows)}


def render(section: dict[str, Any]) -> list[str]:
    """RESULTS.md lines of the section."""
    lines = ["## Planner phase 2: reduced vs full model (`benchmarks/bench_pinning.py`)", "",
             "`solve()` under the default objective (planner), the exact phase-2 reduction off "
             "(full model, the path before it) and on, alternating in one process, "
             f"{section['regions'][0]['repeats']} repeats, medians; the ratio is taken within "
             "each repeat. Both proven optimal, same objective and travel (`same`). "
             f"Code {section.get('code_fingerprint')}, measured {section.get('measured_at')}.",
             "", "| region | solve() s full | solve() s reduced | full/reduced | Σ sub-problem "
             "s full | Σ sub-problem s reduced | slowest sub-problems (reduced) | same |",
             "|---|---|---|---|---|---|---|---|"]
    for r in section["regions"]:
        slow = ", ".join(f"{k} {v:.2f}" for k, v in r["slowest_reduced"].items())
        lines.append(f"| {r['region']} | {r['wall_full']:.2f} | {r['wall_reduced']:.2f} | "
                     f"{r['full_over_reduced']:.1f}× | {r['sum_full']:.2f} | "
                     f"{r['sum_reduced']:.2f} | {slow} | "
                     f"{'yes' if r['same_optimum'] else '**no**'} |")
    return lines + [""]


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
