"""What-if re-solves (optimiser/whatif.py) side by side with a fresh solve, same run.

For every region: one :class:`~optimiser.whatif.WhatIf` session on the default scenario (and
objective ``travel``), then a fixed list of steps, each timed as a session step and, right
after it, as a fresh :func:`optimiser.solve.solve` of the same parameters (today's path);
the ratio is taken per step, and the objectives must agree (both proven optimal). The steps
target the region's hardest sub-problem (the treatment with the most candidate sites):

* ``keep_kept``      force keep a pair the plan keeps;
* ``keep_closed``    force keep a pair the plan closes;
* ``release``        undo that (back to the first plan);
* ``close_kept``     force close a pair the plan keeps;
* ``release_close``  undo that;
* ``margin_up``      margin 0 -> 0.1 (every treatment);
* ``margin_back``    back to 0;
* ``travel_limit``   max travel 75 min;
* ``travel_back``    no limit.

``python -m benchmarks.bench_whatif [--regions a,b] [--objective travel]`` prints the JSON.
Not a unit test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

GOAL_STEP_SECONDS = 0.5


def _steps(instance, solution, params) -> list[tuple[str, str, tuple]]:
    from herschik.optimiser.formulation import candidate_matrix

    cand = candidate_matrix(instance, params)
    norms = instance.norm_matrix()
    normed = [t for t in range(len(instance.treatments)) if np.any(~np.isnan(norms[:, t]))]
    t = max(normed, key=lambda k: (int(cand[:, k].sum()), k))
    tid = instance.treatment_ids[t]
    kept = [instance.site_ids[s] for s in np.nonzero(solution.keep[:, t] & cand[:, t])[0]]
    closed = [instance.site_ids[s] for s in np.nonzero(~solution.keep[:, t] & cand[:, t])[0]]
    steps: list[tuple[str, str, tuple]] = [("keep_kept", "force_keep", (kept[0], tid))]
    if closed:
        steps += [("keep_closed", "force_keep", (closed[0], tid)),
                  ("release", "release", (closed[0], tid))]
    if len(kept) > 1:
        steps += [("close_kept", "force_close", (kept[-1], tid)),
                  ("release_close", "release", (kept[-1], tid))]
    steps += [("margin_up", "set_margin", (0.1,)), ("margin_back", "set_margin", (0.0,)),
              ("travel_limit", "set_max_travel", (75.0,)),
              ("travel_back", "set_max_travel", (None,))]
    return steps


def run_region(region: str, objective: str | None = None,
               source: str | None = None) -> dict[str, Any]:
    from herschik.geo.dataset import load_dataset
    from herschik.optimiser.params import SolveParams
    from herschik.optimiser.solve import solve
    from herschik.optimiser.whatif import WhatIf
    from herschik.scenarios.assemble import build_instance

    instance = build_instance(load_dataset(source), region)
    params = SolveParams() if objective is None else SolveParams(objective=objective)
    started = time.perf_counter()
    session = WhatIf(instance, params)
    first = time.perf_counter() - started
    rows = []
    for name, method, args in _steps(instance, session.solution, params):
        t0 = time.perf_counter()
        got = getattr(session, method)(*args)
        step_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fresh = solve(instance, session.params)
        fresh_s = time.perf_counter() - t0
        same = (got.status == fresh.status and (
            not fresh.feasible
            or abs(got.objective - fresh.objective) <= 1e-6 * max(1.0, abs(fresh.objective))))
        rows.append({
            "step": name, "change": f"{method}{args}", "status": got.status,
            "step_seconds": round(step_s, 4), "fresh_seconds": round(fresh_s, 4),
            "speedup": round(fresh_s / step_s, 1) if step_s > 0 else None,
            "actions": {a: session.last_step.count(a) for a in
                        ("unchanged", "cached", "kept_optimum", "still_infeasible", "resolved")},
            "resolved": [k for k, v in session.last_step.actions.items() if v == "resolved"],
            "same_objective_as_fresh": same,
            "goal_met": step_s <= GOAL_STEP_SECONDS,
        })
    return {"region": region, "objective": params.objective, "first_solve_seconds": round(
        first, 3), "steps": rows,
        "median_step_seconds": statistics.median(r["step_seconds"] for r in rows),
        "max_step_seconds": max(r["step_seconds"] for r in rows),
        "median_speedup": statistics.median(r["speedup"] for r in rows if r["speedup"]),
        "all_match_fresh": all(r["same_objective_as_fresh"] for r in rows)}


def run(regions: list[str] | None = None, objective: str | None = None,
        source: str | None = None) -> dict[str, Any]:
    from herschik.geo.dataset import load_dataset

    from .common import code_fingerprint

    names = regions or load_dataset(source).region_ids()
    out = {"goal_step_seconds": GOAL_STEP_SECONDS, "code_fingerprint": code_fingerprint(),
           "regions": [run_region(r, objective, source) for r in names]}
    steps = [s for r in out["regions"] for s in r["steps"]]
    out["steps_within_goal"] = sum(s["goal_met"] for s in steps)
    out["steps"] = len(steps)
    out["all_match_fresh"] = all(r["all_match_fresh"] for r in out["regions"])
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", default=None)
    parser.add_argument("--objective", default=None)
    ns = parser.parse_args()
    print(json.dumps(run(ns.regions.split(",") if ns.regions else None, ns.objective),
                     indent=1))
