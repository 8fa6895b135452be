"""CPU of each single change in `herschik app`, part by part (``python -m benchmarks.bench_app
--changes``; see benchmarks/bench_app.py's docstring). Not a unit test.

The parts are measured by wrapping the functions the app calls (exclusive CPU: a part's time
without the parts it calls): ``solve`` (the what-if step, with the diagnosis of an infeasible
sub-problem), ``verify`` (KPIs, contract tables, verifier), ``reasons``
(optimiser.reasons.lost_role_reasons), ``nearest`` (nearest feasible settings), ``views``
(hospital rows, area colours, payload) and ``json`` (encoding the answer).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: the changes, as absolute settings (each a single change to the plan before it); ``A``: a
#: kept pair of a treatment with another provider, ``B``: a lost pair
CHANGES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("margin 0.1", {"margin": 0.1}),
    ("margin 0.2", {"margin": 0.2}),
    ("travel 75 (margin 0.2)", {"margin": 0.2, "max_travel": 75.0}),
    ("margin 0 (travel 75)", {"max_travel": 75.0}),
    ("close a kept pair", {"force_close": "A"}),
    ("keep a lost pair", {"force_close": "A", "force_keep": "B"}),
    ("release the closure", {"force_keep": "B"}),
)
PARTS = ("solve", "verify", "reasons", "nearest", "views", "json")


class PartClock:
    """Exclusive process-CPU seconds per part of the wrapped calls (sequential calls)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = dict.fromkeys(PARTS, 0.0)
        self.calls: dict[str, int] = dict.fromkeys(PARTS, 0)
        self._stack: list[list[float]] = []

    def wrap(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [time.process_time(), 0.0]
            self._stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                self._stack.pop()
                spent = time.process_time() - frame[0]
                self.totals[part] += spent - frame[1]
                self.calls[part] += 1
                if self._stack:
                    self._stack[-1][1] += spent
        timed.__wrapped__ = function  # type: ignore[attr-defined]
        return timed

    def take(self) -> tuple[dict[str, float], dict[str, int]]:
        totals, calls = self.totals, self.calls
        self.totals, self.calls = dict.fromkeys(PARTS, 0.0), dict.fromkeys(PARTS, 0)
        return totals, calls


def instrument(clock: PartClock) -> None:
    """Wrap the functions the app calls, where the app looks them up."""
    from herschik.scenarios import run
    from herschik.scenarios.app import nearest, session

    session.AppState._solve_run = clock.wrap("solve", session.AppState._solve_run)
    run.verified_result = clock.wrap("verify", run.verified_result)
    session.verified_result = run.verified_result
    run.lost_role_reasons = clock.wrap("reasons", run.lost_role_reasons)
    for module in (session, nearest):
        for name in ("infeasible_info", "partial_info"):
            if hasattr(module, name):
                setattr(module, name, clock.wrap("nearest", getattr(module, name)))
    for name in ("hospital_rows", "area_view"):
        setattr(session, name, clock.wrap("views", getattr(session, name)))
    session.AppState._payload = clock.wrap("views", session.AppState._payload)
    try:  # the app that works out reasons on request (the same function, by another name)
        from herschik.scenarios.app import reasons as app_reasons
        app_reasons.lost_role_reasons = clock.wrap("reasons", app_reasons.lost_role_reasons)
    except ImportError:
        pass


def _pairs(plan: dict[str, Any]) -> dict[str, dict[str, str]]:
    providers: dict[str, int] = {}
    for r in plan["hospitals"]:
        if r["status"] in ("kept", "gained", "below_norm"):
            providers[r["intervention_id"]] = providers.get(r["intervention_id"], 0) + 1
    kept = next((r for r in plan["hospitals"] if r["status"] == "kept" and r["norm"]
                 and providers[r["intervention_id"]] >= 2), None)
    lost = next((r for r in plan["hospitals"] if r["status"] == "lost" and r["norm"]), None)
    return {name: {"site_id": r["site_id"], "intervention_id": r["intervention_id"]}
            for name, r in (("A", kept), ("B", lost)) if r is not None}


def one_repeat(dataset: Any, instance: Any, region: str, clock: PartClock,
               open_sites: bool = True) -> list[dict]:
    """A fresh app state: the region's default plan, then every change of CHANGES (and,
    with ``open_sites``, after each change every hospital with a lost role opened)."""
    from herschik.optimiser import reasons
    from herschik.scenarios.app.models import PlanSettings
    from herschik.scenarios.app.session import AppState

    reasons._MEMO = reasons._ReasonMemo()  # no reasons remembered from an earlier repeat
    state = AppState(dataset, out_dir=Path(tempfile.mkdtemp()), areas_label="districts",
                     first_region=region)
    state._instances[region] = instance  # the build is not a change
    clock.take()
    first = state.solve(PlanSettings(region_id=region))
    clock.take()
    pairs = _pairs(first["plan"])
    on_screen = first["plan"]["id"]
    rows = []
    for name, change in CHANGES:
        settings: dict[str, Any] = {"region_id": region}
        for key, value in change.items():
            if key.startswith("force_"):
                if value not in pairs:
                    break
                settings[key] = [pairs[value]]
            else:
                settings[key] = value
        else:
            load = os.getloadavg()[0]
            cpu, wall = time.process_time(), time.perf_counter()
            result = state.solve(PlanSettings(**settings), on_screen)
            encode = clock.wrap("json", json.dumps)
            encode(result)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            parts, calls = clock.take()
            plan = result.get("plan")
            row = {"change": name, "status": result["status"], "cpu_s": round(cpu, 4),
                   "wall_s": round(wall, 4), "load": round(load, 2),
                   "parts": {k: round(v, 4) for k, v in parts.items()}, "calls": calls}
            if plan is not None:
                on_screen = plan["id"]
                if open_sites:
                    row["open_hospital_cpu_s"] = open_hospitals(state, plan, clock)
            rows.append(row)
    return rows


def open_hospitals(state: Any, plan: dict[str, Any], clock: PartClock) -> list[float]:
    """CPU of opening each hospital with a lost role (the app's reasons on request), if the
    app has them; empty otherwise."""
    if not hasattr(state, "hospital_reasons"):
        return []
    sites = sorted({r["site_id"] for r in plan["hospitals"] if r["status"] == "lost"})
    spent = []
    for site in sites:
        cpu = time.process_time()
        json.dumps(state.hospital_reasons(plan["id"], site))
        spent.append(round(time.process_time() - cpu, 4))
    clock.take()
    return spent


def summarise(region: str, repeats: list[list[dict]]) -> list[dict[str, Any]]:
    rows = []
    for name, _change in CHANGES:
        runs = [r for rep in repeats for r in rep if r["change"] == name]
        if not runs:
            continue
        cpu = [r["cpu_s"] for r in runs]
        opened = [s for r in runs for s in r.get("open_hospital_cpu_s", [])]
        rows.append({
            "region": region, "change": name, "status": runs[0]["status"], "n": len(runs),
            "cpu_median": statistics.median(cpu), "cpu_p100": max(cpu),
            "wall_median": statistics.median(r["wall_s"] for r in runs),
            "wall_p100": max(r["wall_s"] for r in runs),
            "parts_median": {p: statistics.median(r["parts"][p] for r in runs) for p in PARTS},
            "open_median": statistics.median(opened) if opened else None,
            "open_p100": max(opened) if opened else None, "opened": len(opened),
            "load": [min(r["load"] for r in runs), max(r["load"] for r in runs)],
        })
    return rows


HEADER = ("| region | change | status | CPU s median / p100 | wall s median / p100 | "
          + " | ".join(f"{p} CPU" for p in PARTS)
          + " | open a hospital CPU s median / p100 (n) | load |\n"
          + "|---" * (7 + len(PARTS)) + "|")


def _row(r: dict[str, Any]) -> str:
    opened = (f"{r['open_median']:.3f} / {r['open_p100']:.3f} ({r['opened']})"
              if r["open_median"] is not None else "–")
    return (f"| {r['region']} | {r['change']} | {r['status']} | "
            f"{r['cpu_median']:.3f} / {r['cpu_p100']:.3f} | "
            f"{r['wall_median']:.2f} / {r['wall_p100']:.2f} | "
            + " | ".join(f"{r['parts_median'][p]:.3f}" for p in PARTS)
            + f" | {opened} | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")


def main(regions: str, repeats: int, out: Path | None) -> int:
    from herschik.geo.dataset import load_dataset
    from herschik.scenarios.assemble import build_instance

    from benchmarks.common import code_fingerprint, machine_info

    clock = PartClock()
    instrument(clock)
    dataset = load_dataset(None)
    names = dataset.region_ids() if regions == "all" else regions.split(",")
    print(f"code {code_fingerprint()}; machine {json.dumps(machine_info())}", flush=True)
    print(HEADER, flush=True)
    table, raw = [], {}
    for region in names:
        instance = build_instance(dataset, region)
        # the hospitals are opened in the first repeat only (each opening is re-solves)
        raw[region] = [one_repeat(dataset, instance, region, clock, open_sites=n == 0)
                       for n in range(repeats)]
        for row in summarise(region, raw[region]):
            table.append(row)
            print(_row(row), flush=True)
    every = [r for r in table]
    print(f"p100 over every change: {max(r['cpu_p100'] for r in every):.3f} s CPU; "
          f"load average at end {os.getloadavg()}", flush=True)
    if out is not None:
        from benchmarks.common import write_atomic

        write_atomic(out, json.dumps({"code": code_fingerprint(), "machine": machine_info(),
                                      "rows": table, "raw": raw}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main("all", 3, None))
