"""Latency of `herschik app` per region, before/after the what-if sessions, side by side.

    python -m benchmarks.bench_app [--areas municipalities,districts] [--regions all|ID,ID]
                                   [--json PATH]
    python -m benchmarks.bench_app --changes [--regions all|ID,ID] [--repeats 3] [--json PATH]

Two app states on the same dataset and the same region instances, in one process: *before*
(``AppState(whatif=False)``: every change solved from scratch by ``solve_verified``) and
*after* (the default: one ``same_as_fresh`` what-if session per region). Each request goes
through the app's HTTP API (Starlette TestClient: routing, validation, JSON encoding included;
the browser's drawing not) and is sent to both states, alternating which goes first.

Per region, on the embedded default:

* ``load``: first view of a region: map layers + the default plan;
* ``re-solve``: a planner's sequence of single changes, each to the plan on screen: force-close
  a kept hospital x treatment (of a treatment with another provider), margin 0.1, a travel
  limit at the plan's longest trip (rounded up: feasible, but a new model for every treatment
  with a longer pair), force-keep a lost hospital x treatment, release the closure, margin
  back to 0 (medians, max, median of the per-step ratio before/after; plans of both states
  compared: same KPIs and hospital volumes);
* ``infeasible``: margin 3 (infeasible everywhere): solve, diagnosis, nearest feasible settings.

Prints a Markdown table (with the machine's load average per region); the numbers are recorded
in benchmarks/RESULTS.md and docs/decisions/app-latency.md, not in code. Not a unit test.

``--changes``: CPU seconds of each single change, part by part, on fresh app states (the
reasons' memo emptied between repeats): the changes of goal 5 of issue 23 (margin 0.1, margin
0.2, travel limit 75 at margin 0.2, margin back to 0 with the limit, close a kept pair, keep a
lost pair, release the closure), each to the plan on screen, through ``AppState.solve`` and the
JSON encoding of its answer. Per change: process CPU (user + system, all threads) and wall
seconds, and the exclusive CPU of each part (solve, verify, reasons, nearest settings, views,
json); per region and change the median and p100 over the repeats; the load average. With an
app that says why a hospital loses a treatment on request (``AppState.hospital_reasons``), also
the CPU of opening each hospital with a lost role after each change (first repeat only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def _pair(row: dict[str, Any]) -> dict[str, str]:
    return {"site_id": row["site_id"], "intervention_id": row["intervention_id"]}


#: placeholder of the travel step: the longest trip of the plan on screen, rounded up
TRAVEL_OF_PLAN = -1.0


def planner_steps(plan: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The cumulative settings of the benchmark's change sequence, from the default plan."""
    providers: dict[str, int] = {}
    for r in plan["hospitals"]:
        if r["status"] in ("kept", "gained", "below_norm"):
            providers[r["intervention_id"]] = providers.get(r["intervention_id"], 0) + 1
    # a closure another provider can absorb (closing a sole provider is infeasible)
    kept = next((r for r in plan["hospitals"] if r["status"] == "kept" and r["norm"]
                 and providers[r["intervention_id"]] >= 2),
                next(r for r in plan["hospitals"] if r["status"] == "kept" and r["norm"]))
    lost = next((r for r in plan["hospitals"] if r["status"] == "lost"), None)
    closed = {"force_close": [_pair(kept)]}
    steps = [("close", closed), ("margin 0.1", {**closed, "margin": 0.1}),
             ("travel", {**closed, "margin": 0.1, "max_travel": TRAVEL_OF_PLAN})]
    last = steps[-1][1]
    if lost is not None:
        last = {**last, "force_keep": [_pair(lost)]}
        steps.append(("keep", last))
    last = {k: v for k, v in last.items() if k != "force_close"}
    steps.append(("release", last))
    steps.append(("margin 0", {**last, "margin": 0.0}))
    return steps


def _same_plan(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["status"] != b["status"]:
        return False
    if "plan" not in a:
        return "plan" not in b
    volumes = [{(h["site_id"], h["intervention_id"]): h["volume_after"] for h in p["hospitals"]}
               for p in (a["plan"], b["plan"])]
    return a["plan"]["kpis"] == b["plan"]["kpis"] and volumes[0] == volumes[1]


def measure_region(region: str, clients: dict[str, Any], areas: str) -> dict[str, Any]:
    """One region: load, the change sequence and the infeasible change, in both states."""
    load_before = os.getloadavg()[0]

    def solve(mode: str, settings: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        def call() -> dict[str, Any]:
            response = clients[mode].post(
                "/api/solve", json={"settings": {"region_id": region, **settings}})
            response.raise_for_status()
            return response.json()
        return _timed(call)

    load: dict[str, float] = {}
    first: dict[str, Any] = {}
    for mode in ("before", "after"):
        map_s, layers = _timed(lambda m=mode: clients[m].get(f"/api/regions/{region}/map").json())
        first_s, first[mode] = solve(mode, {})
        load[mode] = map_s + first_s
    times: dict[str, list[float]] = {"before": [], "after": []}
    statuses, reuse, same = [], [], True
    on_screen = first["after"]["plan"]
    steps = planner_steps(on_screen)
    for n, (_, step) in enumerate(steps):
        settings = dict(step)
        if settings.get("max_travel") == TRAVEL_OF_PLAN:
            settings["max_travel"] = math.ceil(on_screen["kpis"]["max_travel_min_after"])
            steps[n] = (steps[n][0], settings)
            steps[n + 1:] = [(name, {**s, "max_travel": settings["max_travel"]})
                             for name, s in steps[n + 1:]]
        results = {}
        for mode in (("before", "after") if n % 2 == 0 else ("after", "before")):
            seconds, results[mode] = solve(mode, settings)
            times[mode].append(seconds)
        statuses.append(results["after"]["status"])
        on_screen = results["after"].get("plan") or on_screen
        same = same and _same_plan(results["before"], results["after"])
        info = (results["after"].get("plan") or results["after"]).get("reuse") or {}
        reuse.append(f"{info.get('reused', '?')}/{info.get('treatments', '?')}")
    infeasible = {}
    for mode in ("before", "after"):
        infeasible[mode], _ = solve(mode, {"margin": 3.0})
    ratios = [b / a for b, a in zip(times["before"], times["after"], strict=True) if a > 0]
    return {
        "areas": areas, "region": region,
        "size": f"{len(layers['areas']['features'])}×{len(layers['sites'])}",
        "load_s": load, "resolve_s": times,
        "median_s": {m: statistics.median(v) for m, v in times.items()},
        "max_s": {m: max(v) for m, v in times.items()},
        "median_ratio": statistics.median(ratios) if ratios else None,
        "statuses": statuses, "reused": reuse, "same_plans": same,
        "steps": [name for name, _ in steps],
        "travel_limit": next((s["max_travel"] for _, s in steps if "max_travel" in s), None),
        "infeasible_s": infeasible,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def measure(areas: str, regions: list[str] | None) -> list[dict[str, Any]]:
    from herschik.geo.dataset import load_dataset
    from herschik.scenarios.app.server import TOKEN_HEADER, create_app
    from herschik.scenarios.app.session import AppState
    from starlette.testclient import TestClient

    dataset = load_dataset("municipalities" if areas == "municipalities" else None)
    states = {mode: AppState(dataset, out_dir=Path(tempfile.mkdtemp()), areas_label=areas,
                             whatif=mode == "after") for mode in ("before", "after")}
    # every POST carries the app's session token, as the page does (403 otherwise)
    clients = {mode: TestClient(create_app(state), headers={TOKEN_HEADER: state.token})
               for mode, state in states.items()}
    rows = []
    for region in regions or list(states["before"].regions):
        # one instance for both states: the build is not what is compared
        states["after"]._instances[region] = states["before"].instance(region)
        rows.append(measure_region(region, clients, areas))
        print(_row(rows[-1]), flush=True)
    return rows


HEADER = (
    "| areas | region | areas×sites | load s before / after | re-solve median s before / "
    "after | ratio (median per step) | re-solve max s before / after | treatments re-used "
    "per step | statuses | same plans | infeasible s before / after | load avg |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _row(r: dict[str, Any]) -> str:
    def pair(d: dict[str, float]) -> str:
        return f"{d['before']:.2f} / {d['after']:.2f}"

    ratio = f"{r['median_ratio']:.1f}×" if r["median_ratio"] else "–"
    return (
        f"| {r['areas']} | {r['region']} | {r['size']} | {pair(r['load_s'])} | "
        f"{pair(r['median_s'])} | {ratio} | {pair(r['max_s'])} | {' '.join(r['reused'])} | "
        f"{','.join(sorted(set(r['statuses'])))} | {'yes' if r['same_plans'] else 'NO'} | "
        f"{pair(r['infeasible_s'])} | {r['load_average'][0]}–{r['load_average'][1]} |"
    )


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import machine_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", default="municipalities,districts")
    parser.add_argument("--regions", default="all")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw rows here")
    parser.add_argument("--changes", action="store_true",
                        help="CPU per single change, part by part (districts)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.changes:
        from benchmarks.bench_app_changes import main as changes_main

        return changes_main(args.regions, args.repeats, args.json)
    regions = None if args.regions == "all" else args.regions.split(",")
    machine = machine_info()
    print(f"machine: {json.dumps(machine)}", flush=True)
    print(HEADER, flush=True)
    rows = []
    for areas in args.areas.split(","):
        rows += measure(areas, regions)
    print(f"load average at end: {os.getloadavg()}", flush=True)
    if args.json is not None:
        from benchmarks.common import write_atomic

        write_atomic(args.json, json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
