"""Benchmark: the solver settings behind the defaults, side by side, per treatment sub-problem.

Not a unit test. ``python -m benchmarks --only settings`` runs it (or call :func:`run`). For
every region of the embedded default data and every treatment (the sub-problems that
``optimiser.solve`` solves), the same model is solved under each configuration, back to back in
one process, HiGHS single-threaded, default scenario (``SolveParams()``):

* ``linking``: ``aggregated`` (Σ_a x <= U·y only) or ``nearest`` (plus x <= d·y for each
  area's nearest site; the default), see docs/decisions/linking.md;
* ``heuristics``: HiGHS' root RENS/RINS/reduced-cost heuristics ``on`` (HiGHS' default) or
  ``off`` (``optimiser.solve.HIGHS_MIP_OPTIONS``, the default).

Reported per region: the solve seconds summed over the 19 sub-problems (median over repeats),
the slowest sub-problem, the root LP bound against the optimum (how tight each linking is), and
the ratios to the old default (aggregated, heuristics on) within each repeat.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Any

import numpy as np

CONFIGS: dict[str, tuple[str, bool]] = {
    # name: (linking, HiGHS root heuristics on)
    "aggregated, heuristics on": ("aggregated", True),
    "aggregated, heuristics off": ("aggregated", False),
    "nearest, heuristics on": ("nearest", True),
    "nearest, heuristics off (default)": ("nearest", False),
}
OLD_DEFAULT = "aggregated, heuristics on"
NEW_DEFAULT = "nearest, heuristics off (default)"


def _solve(arrays, heuristics_on: bool, time_limit: float):
    from herschik.optimiser.backends import solve_highs
    from herschik.optimiser.solve import HIGHS_MIP_OPTIONS, HIGHS_PRESOLVE

    options = {} if heuristics_on else HIGHS_MIP_OPTIONS
    return solve_highs(arrays, time_limit, 1e-4, threads=1, presolve=HIGHS_PRESOLVE,
                       options=options)


def _root_lp(arrays, time_limit: float) -> float | None:
    relaxed = replace(arrays, integrality=np.zeros_like(arrays.integrality))
    res = _solve(relaxed, True, time_limit)
    return res.objective


def _solve_configs(models: dict[str, Any], tid: str, time_limit: float,
                   totals: dict[str, float], worst: dict[str, tuple[float, str]],
                   statuses: dict[str, set[str]]) -> dict[str, float]:
    """One treatment's model under every configuration: adds to each configuration's total,
    slowest sub-problem and statuses; returns the proven optima by configuration."""
    objectives: dict[str, float] = {}
    for name, (link, heuristics_on) in CONFIGS.items():
        res = _solve(models[link], heuristics_on, time_limit)
        totals[name] += res.seconds
        statuses[name].add(res.status)
        if res.seconds > worst[name][0]:
            worst[name] = (res.seconds, tid)
        if res.objective is not None and res.status == "optimal":
            objectives[name] = float(res.objective)
    return objectives


def _optima_differ(objectives: dict[str, float]) -> bool:
    values = list(objectives.values())
    return bool(values) and max(values) - min(values) > 1e-4 * max(1.0, abs(max(values)))


def _add_root_gaps(models: dict[str, Any], best: float, time_limit: float,
                   root_gap: dict[str, list[float]]) -> None:
    """The root LP bound of each linking against the optimum ``best``."""
    for link in root_gap:
        lp = _root_lp(models[link], time_limit)
        if lp is not None and best > 0:
            root_gap[link].append((best - lp) / best)


def _config_summary(seconds: list[float], slowest: list[tuple[float, str]],
                    ratios: list[float], statuses: set[str]) -> dict[str, Any]:
    worst_s, worst_t = max(slowest)
    return {
        "sum_solve_seconds": round(statistics.median(seconds), 3),
        "samples": [round(v, 3) for v in seconds],
        "slowest_subproblem": worst_t,
        "slowest_seconds": round(worst_s, 3),
        "speedup_vs_old_default": round(statistics.median(ratios), 2),
        "statuses": sorted(statuses),
    }


def measure_region(instance, repeats: int, time_limit: float) -> dict[str, Any]:
    """Every configuration on every treatment sub-problem of one region instance."""
    from herschik.optimiser.formulation import build_arrays
    from herschik.optimiser.params import SolveParams

    params = SolveParams()
    per_config: dict[str, list[float]] = {name: [] for name in CONFIGS}
    slowest: dict[str, list[tuple[float, str]]] = {name: [] for name in CONFIGS}
    statuses: dict[str, set[str]] = {name: set() for name in CONFIGS}
    ratios: dict[str, list[float]] = {name: [] for name in CONFIGS}
    root_gap: dict[str, list[float]] = {"aggregated": [], "nearest": []}
    objective_mismatch: list[str] = []
    for repeat in range(repeats):
        totals = dict.fromkeys(CONFIGS, 0.0)
        worst = {name: (0.0, "") for name in CONFIGS}
        for t, tid in enumerate(instance.treatment_ids):
            models = {link: build_arrays(instance, params, [t], linking=link)
                      for link in ("aggregated", "nearest")}
            objectives = _solve_configs(models, tid, time_limit, totals, worst, statuses)
            if _optima_differ(objectives):
                objective_mismatch.append(f"{tid}: {objectives}")
            if repeat == 0 and models["nearest"].n_y and objectives:
                _add_root_gaps(models, min(objectives.values()), time_limit, root_gap)
        for name in CONFIGS:
            per_config[name].append(totals[name])
            slowest[name].append(worst[name])
            ratios[name].append(totals[OLD_DEFAULT] / totals[name] if totals[name] else 1.0)
    out: dict[str, Any] = {"shape": list(instance.shape), "configs": {
        name: _config_summary(per_config[name], slowest[name], ratios[name], statuses[name])
        for name in CONFIGS}}
    out["root_lp_gap_max"] = {k: (round(max(v), 4) if v else None) for k, v in root_gap.items()}
    out["root_lp_gap_median"] = {k: (round(statistics.median(v), 4) if v else None)
                                 for k, v in root_gap.items()}
    out["objective_mismatch"] = objective_mismatch
    return out


def run(repeats: int = 3, regions: list[str] | None = None, source: str | None = None,
        time_limit: float = 60.0, log=print) -> dict[str, Any]:
    """Measure all regions (default: the seven of the embedded data)."""
    from herschik.geo.dataset import load_dataset
    from herschik.scenarios.assemble import build_instance

    dataset = load_dataset(source)
    names = regions or list(dataset.regions["region_id"])
    out: dict[str, Any] = {"repeats": repeats, "time_limit_per_subproblem": time_limit,
                           "configs": {k: {"linking": v[0], "heuristics_on": v[1]}
                                       for k, v in CONFIGS.items()},
                           "old_default": OLD_DEFAULT, "new_default": NEW_DEFAULT,
                           "regions": {}}
    for region in names:
        started = time.perf_counter()
        instance = build_instance(dataset, region)
        out["regions"][region] = measure_region(instance, repeats, time_limit)
        row = out["regions"][region]["configs"]
        log(f"  {region:<24} " + "  ".join(
            f"{k.split(' (')[0]}: {v['sum_solve_seconds']:.2f} s" for k, v in row.items())
            + f"  ({time.perf_counter() - started:.0f} s)")
    return out
