"""One solve from instance to result folder (summary.json, CSVs, GIS, maps, report).

The folder is staged and renamed into place, so it is complete or absent. Every result is
re-checked with the independent verifier before it is written; the verdict goes into
summary.json (``verification``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimiser.instance import Instance
from optimiser.kpis import compute_kpis
from optimiser.params import SolveParams
from optimiser.results import assignments_table, site_volumes_table, summary_dict
from optimiser.solve import solve
from optimiser.verify import verify
from scenarios.atomic import staged_dir, write_csv, write_json

#: Fields of summary.json that hold wall-clock timings (excluded from determinism checks).
TIMING_FIELDS = ("build_seconds", "solve_seconds")


def run_solve(
    instance: Instance,
    params: SolveParams,
    out_dir: Path,
    *,
    dataset: Any = None,
    scenario_info: dict[str, Any] | None = None,
    outputs: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """Solve ``instance`` under ``params`` and write the run folder ``out_dir``.

    ``scenario_info`` (scenario name, growth, norm multipliers, ...) is merged into
    ``summary["scenario"]``. ``outputs`` switches the planner outputs (keys gpkg, geojson,
    xlsx, maps, report); they need ``dataset`` for geometries. Returns the summary dict.
    """
    solution = solve(instance, params)
    kpis = compute_kpis(instance, solution, params) if solution.feasible else None
    site_volumes = site_volumes_table(instance, solution, params)
    assignments = assignments_table(instance, solution)
    summary = summary_dict(instance, solution, params, kpis)
    if scenario_info:
        summary["scenario"] = {**summary["scenario"], **scenario_info}
    violations = verify(solution, instance, params, kpis)
    summary["verification"] = {"verifier": "optimiser.verify", "violations": violations}

    with staged_dir(Path(out_dir)) as staging:
        write_csv(staging / "site_volumes.csv", site_volumes)
        write_csv(staging / "assignments.csv", assignments)
        if dataset is not None and outputs is not None and any(outputs.values()):
            from scenarios.outputs import write_run_outputs

            write_run_outputs(staging, summary, site_volumes, assignments, dataset, **outputs)
        # summary.json last: its presence marks a complete folder for resumable sweeps.
        write_json(staging / "summary.json", summary)
    return summary
