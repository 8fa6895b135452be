"""Latency of `herschik app` per region: what a planner waits for after a change.

    python -m benchmarks.bench_app [--areas municipalities,districts] [--regions all|ID,ID]

Measures through the app's own HTTP API (Starlette TestClient, so routing, validation and JSON
encoding are included; the browser's drawing is not) on the embedded default:

* ``load``: first view of a region: map layers + the default plan (instance build included);
* ``re-solve``: a change to a region already loaded: force-close a kept hospital x treatment,
  raise the margin to 0.1, force-keep a lost one, set a 60-minute travel limit (median / max);
* ``app overhead``: re-solve wall time minus that of ``solve_verified`` (solve, KPIs, tables,
  verifier; what ``herschik solve`` does before writing), median: hospital table, map colours,
  JSON, HTTP;
* ``infeasible``: margin 3 (infeasible everywhere): solve, diagnosis and nearest feasible
  settings.

Prints a Markdown table (and the machine's load average); the numbers are recorded in
docs/decisions/app-latency.md, not in code. Not a unit test.
"""

from __future__ import annotations

import argparse
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


def measure(areas: str, regions: list[str] | None) -> list[dict[str, Any]]:
    from herschik.geo.dataset import load_dataset
    from herschik.scenarios.app.server import create_app
    from herschik.scenarios.app.session import AppState
    from starlette.testclient import TestClient

    dataset = load_dataset("municipalities" if areas == "municipalities" else None)
    state = AppState(dataset, out_dir=Path(tempfile.mkdtemp()), areas_label=areas)
    client = TestClient(create_app(state))
    rows = []
    for region in regions or list(state.regions):

        def solve(region: str = region, **settings: Any) -> dict[str, Any]:
            response = client.post(
                "/api/solve", json={"settings": {"region_id": region, **settings}}
            )
            response.raise_for_status()
            return response.json()

        map_s, layers = _timed(lambda region=region: client.get(
            f"/api/regions/{region}/map").json())
        first_s, first = _timed(solve)
        plan = first["plan"]
        kept = next(r for r in plan["hospitals"] if r["status"] == "kept" and r["norm"])
        lost = next((r for r in plan["hospitals"] if r["status"] == "lost"), None)
        changes = [
            {"force_close": [{"site_id": kept["site_id"],
                              "intervention_id": kept["intervention_id"]}]},
            {"margin": 0.1},
            {"max_travel": 60},
        ]
        if lost is not None:
            changes.append({"force_keep": [{"site_id": lost["site_id"],
                                            "intervention_id": lost["intervention_id"]}]})
        times, statuses, overheads = [], [], []
        for change in changes:
            seconds, result = _timed(lambda c=change: solve(**c))
            times.append(seconds)
            statuses.append(result["status"])
            if "plan" in result:  # request wall time minus the verified solve's wall time
                overheads.append(seconds - result["plan"]["seconds"])
        infeasible_s, infeasible = _timed(lambda: solve(margin=3.0))
        rows.append({
            "areas": areas,
            "region": region,
            "size": f"{len(layers['areas']['features'])}×{len(layers['sites'])}",
            "load_s": map_s + first_s,
            "resolve_median_s": statistics.median(times),
            "resolve_max_s": max(times),
            "statuses": ",".join(statuses),
            "overhead_s": statistics.median(overheads) if overheads else float("nan"),
            "infeasible_s": infeasible_s,
            "infeasible_status": infeasible["status"],
            "plan_kb": len(client.get(f"/api/plans/{plan['id']}").content) / 1000,
            "map_kb": len(client.get(f"/api/regions/{region}/map").content) / 1000,
        })
        print(_row(rows[-1]), flush=True)
    return rows


HEADER = (
    "| areas | region | areas×sites | load s | re-solve median s | re-solve max s | statuses "
    "| app overhead s | infeasible s | plan kB | map kB |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def _row(r: dict[str, Any]) -> str:
    return (
        f"| {r['areas']} | {r['region']} | {r['size']} | {r['load_s']:.2f} | "
        f"{r['resolve_median_s']:.2f} | {r['resolve_max_s']:.2f} | {r['statuses']} | "
        f"{r['overhead_s']:.2f} | "
        f"{r['infeasible_s']:.2f} ({r['infeasible_status']}) | {r['plan_kb']:.0f} | "
        f"{r['map_kb']:.0f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", default="municipalities,districts")
    parser.add_argument("--regions", default="all")
    args = parser.parse_args(argv)
    regions = None if args.regions == "all" else args.regions.split(",")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    print(HEADER, flush=True)
    for areas in args.areas.split(","):
        measure(areas, regions)
    print(f"load average at end: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
