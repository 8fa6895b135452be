"""herschik against PySAL spopt's ``PMedian`` (CBC) on random p-median instances (issue 23,
goal 7), side by side in one run.

    python -m benchmarks.bench_pmedian [--sizes 100x20,300x30,600x40,1000x50,1000x100]
                                       [--p 3,8,15] [--seeds 2] [--cap 300] [--also-off]
                                       [--out FILE]

Generator (as in the issue): areas and sites uniform in the unit square x 100 km, Euclidean
costs, integer weights 1..20. One treatment with a tiny norm (0.001 patients), ``max_providers
= {T: p}``, ``allow_new_providers`` and objective ``travel``: exactly the p-median (with
least travel every one of the p allowed sites is used). spopt is installed for this benchmark
only (``pip install -e '.[bench]'``); it is not a dependency of herschik. Each solve runs in
its own child process with a wall-clock cap (``benchmarks.common.run_child``); the two must
find the same optimum. Each reports wall seconds and CPU seconds (herschik: the process, HiGHS'
threads included; spopt: the process plus the CBC process it starts), since the machine is
shared. ``--also-off`` adds herschik with ``Algorithms(lagrangian_keep_sets=False)`` (HiGHS on
the per-pair rows, the path before optimiser/large_keepsets.py). Not a unit test.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import Any

import numpy as np

NORM = 1e-3


def instance_arrays(n_areas: int, n_sites: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(cost matrix areas x sites in km, integer weights)."""
    rng = np.random.default_rng(seed)
    areas = rng.uniform(0, 100, size=(n_areas, 2))
    sites = rng.uniform(0, 100, size=(n_sites, 2))
    cost = np.sqrt(((areas[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2))
    weights = rng.integers(1, 21, size=n_areas).astype(float)
    return cost, weights


def _cpu() -> float:
    """CPU seconds of this process and of the children it waited for (CBC)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def solve_herschik(n_areas: int, n_sites: int, p: int, seed: int,
                   lagrangian: bool = True) -> dict[str, Any]:
    from herschik.optimiser.algorithms import Algorithms
    from herschik.optimiser.instance import Instance, Site, Treatment
    from herschik.optimiser.params import SolveParams
    from herschik.optimiser.solve import solve

    cost, weights = instance_arrays(n_areas, n_sites, seed)
    nearest = np.argmin(cost, axis=1)
    flow = np.zeros((n_areas, n_sites, 1))
    flow[np.arange(n_areas), nearest, 0] = weights
    inst = Instance(
        region_id="R", area_ids=tuple(f"A{i}" for i in range(n_areas)),
        sites=tuple(Site(id=f"S{j}") for j in range(n_sites)),
        treatments=(Treatment(id="T", norm=NORM),), demand=weights[:, None],
        travel_min=cost, baseline_volume=flow.sum(axis=0), baseline_flow=flow)
    params = SolveParams(objective="travel", max_providers={"T": p}, allow_new_providers=True,
                         threads=1)
    cpu, started = _cpu(), time.perf_counter()
    sol = solve(inst, params, algorithms=Algorithms(lagrangian_keep_sets=lagrangian))
    wall = time.perf_counter() - started
    return {"status": str(sol.status), "objective": sol.objective, "seconds": wall,
            "cpu_seconds": _cpu() - cpu,
            "algorithm": sol.subproblems[0].get("algorithm") if sol.subproblems else None,
            "open": int(sol.keep.sum()) if sol.keep is not None else None}


def solve_spopt(n_areas: int, n_sites: int, p: int, seed: int) -> dict[str, Any]:
    import pulp
    from spopt.locate import PMedian

    cost, weights = instance_arrays(n_areas, n_sites, seed)
    cpu, started = _cpu(), time.perf_counter()
    model = PMedian.from_cost_matrix(cost, weights, p_facilities=p)
    model.solve(pulp.PULP_CBC_CMD(msg=False))
    wall = time.perf_counter() - started
    return {"status": pulp.LpStatus[model.problem.status],
            "objective": float(pulp.value(model.problem.objective)), "seconds": wall,
            "cpu_seconds": _cpu() - cpu}


def run(sizes: list[tuple[int, int]], ps: list[int], seeds: int, cap: float,
        log=print, also_off: bool = False) -> dict[str, Any]:
    from .common import run_child

    rows = []
    load_start = os.getloadavg()
    for (n_areas, n_sites), p, seed in ((s, p, k) for s in sizes for p in ps
                                        for k in range(seeds)):
        if p >= n_sites:
            continue
        row: dict[str, Any] = {"areas": n_areas, "sites": n_sites, "p": p, "seed": seed}
        runs = [("spopt", "solve_spopt", {}), ("herschik", "solve_herschik", {})]
        if also_off:
            runs.append(("herschik_off", "solve_herschik", {"lagrangian": False}))
        for name, function, extra in runs:
            res = run_child("call", {"module": "benchmarks.bench_pmedian",
                                     "function": function,
                                     "kwargs": {"n_areas": n_areas, "n_sites": n_sites,
                                                "p": p, "seed": seed, **extra}}, cap)
            row[name] = res.get("result", res)
        row["load_average"] = os.getloadavg()
        a, b = row["spopt"].get("objective"), row["herschik"].get("objective")
        row["same_optimum"] = (a is not None and b is not None
                               and abs(a - b) <= 1e-6 * max(1.0, abs(a)))
        rows.append(row)
        log(f"{n_areas:>5} x {n_sites:>3} p={p:<2} seed {seed}: spopt "
            f"{row['spopt'].get('seconds', float('nan')):.2f} s "
            f"{row['spopt'].get('status')}, herschik "
            f"{row['herschik'].get('seconds', float('nan')):.2f} s "
            f"{row['herschik'].get('status')} ({row['herschik'].get('algorithm')}), same "
            f"optimum: {row['same_optimum']} (CPU spopt "
            f"{row['spopt'].get('cpu_seconds', float('nan')):.2f}, herschik "
            f"{row['herschik'].get('cpu_seconds', float('nan')):.2f}; load "
            f"{row['load_average'][0]:.1f})")
    return {"rows": rows, "cap_seconds": cap, "load_average_start": load_start,
            "load_average_end": os.getloadavg()}


def _cell(res: dict[str, Any]) -> str:
    if "seconds" not in res:
        return f"{res.get('status', '?')}"
    return f"{res['seconds']:.2f} / {res.get('cpu_seconds', float('nan')):.2f}"


def _same(a: dict[str, Any], b: dict[str, Any]) -> str:
    x, y = a.get("objective"), b.get("objective")
    if x is None or y is None:
        return "–"
    return "yes" if abs(x - y) <= 1e-6 * max(1.0, abs(x)) else "**no**"


def markdown(result: dict[str, Any]) -> str:
    """The rows as a RESULTS.md table: wall / CPU seconds per solver, same optimum."""
    lines = ["| areas x sites | p | seed | spopt + CBC s (wall / CPU) | herschik s (wall / CPU) "
             "| herschik, large_keepsets off s | same optimum as spopt / as off | load |",
             "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        off = row.get("herschik_off", {})
        lines.append(
            f"| {row['areas']} x {row['sites']} | {row['p']} | {row['seed']} | "
            f"{_cell(row['spopt'])} | {_cell(row['herschik'])} | "
            f"{_cell(off) if off else '–'} | {_same(row['spopt'], row['herschik'])} / "
            f"{_same(off, row['herschik']) if off else '–'} | "
            f"{row.get('load_average', [float('nan')])[0]:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_pmedian")
    parser.add_argument("--sizes", default="100x20,300x30,600x40,1000x50,1000x100")
    parser.add_argument("--p", default="3,8,15")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cap", type=float, default=300.0)
    parser.add_argument("--also-off", action="store_true",
                        help="also herschik without optimiser/large_keepsets.py")
    parser.add_argument("--out", default=None)
    parser.add_argument("--markdown", default=None, metavar="JSON",
                        help="print the table of an earlier run's JSON and exit")
    args = parser.parse_args(argv)
    if args.markdown:
        import json

        with open(args.markdown, encoding="utf-8") as handle:
            print(markdown(json.load(handle)))
        return 0
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    result = run([(a, b) for a, b in sizes], [int(v) for v in args.p.split(",")], args.seeds,
                 args.cap, log=lambda m: print(m, file=sys.stderr, flush=True),
                 also_off=args.also_off)
    from .common import emit_json

    emit_json(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
