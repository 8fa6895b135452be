"""Benchmark: where a sweep run's CPU goes, per objective and region (issue 23 goal 6).

Not a unit test. ``python -m benchmarks.bench_sweep --parts [--objectives each|O,O]
[--margins 4,14] [--regions all]`` (or ``python -m benchmarks.bench_sweep_parts``): the runs
of the benchmark grid's chosen margin layers (x 5 travel limits), region by region, in this
process as a pool worker runs them (``run_task``, ``solve_workers=1``, a what-if session per
region, folders written inline into a temporary folder). Every function below is wrapped
with a thread-CPU timer (inclusive; a nested call of the same part counts once), so the
report gives per objective and region the CPU seconds a run of:

* ``algorithm``: ``solve_component`` (the keep-set searches, HiGHS: the regional solve);
* ``outside``: everything else of the run (``run`` minus ``algorithm``), of which
  ``build`` (each sub-problem's model, ``component_model``), ``hash`` (the session's model
  fingerprint and comparison), ``assemble`` (decode and objective values; ``diagnosis``:
  the infeasible runs' part of it), ``tables`` (``verified_result``: ``verify``,
  ``compute_kpis``, the four tables) and ``write`` (``RunResult.write``; ``csv_text``: the
  CSVs' text).

The wrappers cost ~1 % (a few thousand calls a run); compare figures of one code state
with the same tool only, main and branch side by side in the same minutes.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .bench_sweep import EVERY_OBJECTIVE, scenario_text

#: (module, attribute, part) of every timed function; the module is where the caller looks
#: the name up
TIMED: tuple[tuple[str, str, str], ...] = (
    ("herschik.optimiser.whatif", "solve_component", "algorithm"),
    ("herschik.optimiser.solve", "solve_component", "algorithm"),
    ("herschik.optimiser.whatif", "component_model", "build"),
    ("herschik.optimiser.whatif", "_fingerprint", "hash"),
    ("herschik.optimiser.whatif", "_same_model", "hash"),
    ("herschik.optimiser.whatif", "assemble_solution", "assemble"),
    ("herschik.optimiser.decode", "_infeasible_diagnosis", "diagnosis"),
    ("herschik.scenarios.sweep.task", "verified_result", "tables"),
    ("herschik.scenarios.run", "verify", "verify"),
    ("herschik.scenarios.run", "compute_kpis", "kpis"),
    ("herschik.scenarios.run", "assignments_table", "assignments_table"),
    ("herschik.scenarios.run", "flows_table", "flows_table"),
    ("herschik.scenarios.run", "site_volumes_table", "site_volumes_table"),
    ("herschik.scenarios.run", "hospital_changes_from_site_volumes", "hospital_changes"),
    ("herschik.scenarios.run", "csv_text", "csv_text"),
    ("herschik.scenarios.run", "RunResult.write", "write"),
    ("herschik.scenarios.sweep.task", "run_task", "run"),
)


class _Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._local = threading.local()
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, part: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            active = self._local.__dict__.setdefault("active", set())
            if part in active:
                return original(*args, **kwargs)
            active.add(part)
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[part] = self.seconds.get(part, 0.0) + time.thread_time() - started
                active.discard(part)

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def install(self) -> None:
        import importlib

        for module_name, attribute, part in TIMED:
            owner: Any = importlib.import_module(module_name)
            *path, name = attribute.split(".")
            for step in path:
                owner = getattr(owner, step)
            self.wrap(owner, name, part)

    def remove(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


def run_parts(objectives: tuple[str, ...] = EVERY_OBJECTIVE,
              margin_indices: list[int] | None = None,
              regions: str | list[str] = "all") -> dict[str, Any]:
    """CPU seconds a run by part, per objective and region (module docstring), and per
    objective over every region (``all``)."""
    from herschik.scenarios.data_identity import data_fingerprint
    from herschik.scenarios.scenario.file import load_scenario
    from herschik.scenarios.sweep import task as sweep_task
    from herschik.scenarios.sweep.runner import DEFAULT_OUTPUTS

    from .common import code_fingerprint

    margin_indices = [4, 14] if margin_indices is None else margin_indices
    dataset = sweep_task.cached_dataset(None)
    chosen = (sorted(str(r) for r in dataset.regions["region_id"]) if regions == "all"
              else list(regions))
    fingerprint = data_fingerprint(dataset, None)
    timers = _Timers()
    timers.install()
    report: dict[str, Any] = {"margin_indices": margin_indices,
                              "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        with tempfile.TemporaryDirectory(prefix="herschik-parts-") as tmp:
            for objective in objectives:
                path = Path(tmp) / f"{objective}.toml"
                path.write_text(scenario_text(100, margin_indices, (objective,)),
                                encoding="utf-8")
                runs = load_scenario(path).expand()
                per_region: dict[str, Any] = {}
                totals: dict[str, float] = {}
                for region in chosen:
                    sweep_task.cached_instance(None, region, None)  # as the parent does
                    sweep_task._SESSIONS.clear()  # a worker's first chunk of the region
                    timers.seconds.clear()
                    statuses: dict[str, int] = {}
                    for scenario in runs:
                        run_id = scenario.run_id(fingerprint, region)
                        record = sweep_task.run_task(sweep_task.SweepTask(
                            run_id, region, scenario, str(Path(tmp) / "runs" / run_id),
                            None, None, dict(DEFAULT_OUTPUTS), solve_workers=1))
                        status = (record["summary"] or {}).get("status", "error")
                        statuses[status] = statuses.get(status, 0) + 1
                    parts = dict(timers.seconds)
                    parts["outside"] = parts.get("run", 0.0) - parts.get("algorithm", 0.0)
                    for part, seconds in parts.items():
                        totals[part] = totals.get(part, 0.0) + seconds
                    per_region[region] = {**{k: round(v / len(runs), 4)
                                             for k, v in sorted(parts.items())},
                                          "runs": len(runs), "status": statuses}
                    print(objective, region, json.dumps(per_region[region]), file=sys.stderr,
                          flush=True)
                n = len(runs) * len(chosen)
                per_region["all"] = {**{k: round(v / n, 4) for k, v in sorted(totals.items())},
                                     "runs": n}
                report[objective] = per_region
    finally:
        timers.remove()
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["code_fingerprint"] = code_fingerprint()
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", default="each")
    parser.add_argument("--margins", default="4,14")
    parser.add_argument("--regions", default="all")
    args = parser.parse_args(argv)
    objectives = (EVERY_OBJECTIVE if args.objectives == "each"
                  else tuple(args.objectives.split(",")))
    regions: str | list[str] = "all" if args.regions == "all" else args.regions.split(",")
    print(json.dumps(run_parts(objectives, [int(i) for i in args.margins.split(",")],
                               regions), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
