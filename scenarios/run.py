"""One solve from instance to result folder (summary.json, CSVs, GIS, maps, report).

The folder is staged and renamed into place, so it is complete or absent. Every result is
re-checked with the independent verifier before it is written; the verdict goes into
summary.json (``verification``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.optimiser.algorithms import Algorithms
from herschik.optimiser.instance import Instance
from herschik.optimiser.kpis import compute_kpis
from herschik.optimiser.params import SolveParams
from herschik.optimiser.reasons import lost_role_reasons
from herschik.optimiser.results import (
    assignments_table,
    flows_table,
    hospital_changes_from_site_volumes,
    site_volumes_table,
    summary_dict,
    treatment_statuses,
    with_reasons,
)
from herschik.optimiser.solution import Solution
from herschik.optimiser.solve import solve
from herschik.optimiser.status import SolveStatus
from herschik.optimiser.verify import verify
from herschik.scenarios.csv_text import csv_text
from herschik.scenarios.reason_cache import DERIVED_REASONS
from herschik.scenarios.reason_words import moves_from_text, reason_sentence

from herschik.atomic import staged_dir, write_json, write_text

#: Fields of summary.json that hold wall-clock timings (excluded from determinism checks).
TIMING_FIELDS = ("build_seconds", "solve_seconds")


def regional_start(
    instance: Instance, area_regions: dict[str, str], params: SolveParams
) -> Solution | None:
    """The seven regional solutions stitched into one solution of the national instance.

    Every regional solution is feasible for the joint model (flows may cross borders there, but
    need not), so it is a warm start that a time-limited national solve can only improve.
    None when a region has no feasible solution.
    """
    flow = np.zeros(instance.shape)
    keep = np.zeros((len(instance.sites), len(instance.treatments)), dtype=bool)
    site_region = np.array([site.region_id for site in instance.sites])
    area_region = np.array([area_regions[a] for a in instance.area_ids])
    for region in sorted(set(site_region)):
        a_idx = np.nonzero(area_region == region)[0]
        s_idx = np.nonzero(site_region == region)[0]
        sub = Instance(
            region_id=region,
            area_ids=tuple(instance.area_ids[a] for a in a_idx),
            sites=tuple(instance.sites[s] for s in s_idx),
            treatments=instance.treatments,
            demand=instance.demand[a_idx],
            travel_min=instance.travel_min[np.ix_(a_idx, s_idx)],
            baseline_volume=instance.baseline_volume[s_idx],
            baseline_flow=instance.baseline_flow[np.ix_(a_idx, s_idx)],
            process_norms=instance.process_norms,
            meta=dict(instance.meta),
            area_names=tuple(instance.area_name(a) for a in a_idx),
        )
        solution = solve(sub, params)
        if not solution.feasible:
            return None
        flow[np.ix_(a_idx, s_idx)] = solution.flow
        keep[s_idx] = solution.keep
    return Solution(status=SolveStatus.FEASIBLE, solver="regions", keep=keep, flow=flow)


@dataclass
class RunResult:
    """One verified solve: the solution, its KPIs, the verifier's verdict and the tables.

    ``summary``, ``site_volumes``, ``assignments`` and ``hospital_changes`` are exactly what
    :meth:`write` puts into ``summary.json`` and the CSVs of the same names.
    """

    instance: Instance
    params: SolveParams
    solution: Solution
    kpis: dict[str, Any] | None
    violations: list[str]
    summary: dict[str, Any]
    site_volumes: pd.DataFrame
    assignments: pd.DataFrame
    #: hospital_changes.csv (derived from site_volumes: one site x treatment per row)
    hospital_changes: pd.DataFrame | None = None
    #: flows.csv: patients from a hospital of today to another one after (optimiser.results)
    flows: pd.DataFrame | None = None

    @property
    def status(self) -> SolveStatus:
        """``optimal``, ``feasible``, ``infeasible`` or ``time_limit_no_solution`` (as in
        summary.json; a :class:`SolveStatus`, equal to those strings)."""
        return SolveStatus(self.summary["status"])

    @property
    def feasible(self) -> bool:
        """Whether the solve found a plan (for every treatment)."""
        return bool(self.solution.feasible)

    @property
    def has_plan(self) -> bool:
        """Whether there is a plan for at least some treatments (feasible or partial)."""
        return bool(self.solution.feasible
                    or self.solution.status == SolveStatus.PARTIALLY_INFEASIBLE)

    def write(
        self,
        out_dir: str | Path,
        *,
        dataset: Any = None,
        outputs: dict[str, bool] | None = None,
        lock: bool = True,
    ) -> Path:
        """Write the run folder ``out_dir`` as ``herschik solve`` does (staged, then renamed).

        ``outputs`` switches the planner outputs (keys gpkg, geojson, xlsx, maps, report); they
        need ``dataset`` for geometries. Without them only the contract CSVs and summary.json
        are written. ``lock=False`` when the caller already holds a lock covering ``out_dir``
        (the runs of a sweep, under the sweep's lock).
        """
        out_dir = Path(out_dir)
        with staged_dir(out_dir, lock=lock) as staging:
            # the bytes of herschik.atomic.write_csv, formatted column by column (csv_text.py)
            write_text(staging / "site_volumes.csv", csv_text(self.site_volumes))
            write_text(staging / "assignments.csv", csv_text(self.assignments))
            if self.hospital_changes is not None:
                write_text(staging / "hospital_changes.csv", csv_text(self.hospital_changes))
            if self.flows is not None:
                write_text(staging / "flows.csv", csv_text(self.flows))
            if dataset is not None and outputs is not None and any(outputs.values()):
                # GIS, maps, report, workbook (geopandas, about 0.5 s with instance_cache
                # below): imported only when a folder gets them, never by herschik.solve
                from herschik.scenarios.outputs import write_run_outputs

                write_run_outputs(staging, self.summary, self.site_volumes, self.assignments,
                                  dataset, hospital_changes=self.hospital_changes,
                                  flows=self.flows, **outputs)
            # summary.json last: its presence marks a complete folder for resumable sweeps.
            write_json(staging / "summary.json", self.summary)
        return out_dir


def solve_verified(
    instance: Instance,
    params: SolveParams,
    *,
    scenario_info: dict[str, Any] | None = None,
    start: Solution | None = None,
    max_workers: int | None = None,
    warnings: list[str] | None = None,
    reasons: bool = True,
    algorithms: Algorithms | None = None,
) -> RunResult:
    """Solve ``instance`` under ``params``, compute the KPIs and re-check all with the verifier.

    The one run orchestration behind the CLI, sweeps and the library (``herschik.solve``).
    ``scenario_info`` (scenario name, growth, norm multipliers, ...) is merged into
    ``summary["scenario"]``; ``start`` is a warm start (see :func:`regional_start`);
    ``max_workers`` caps the threads of the solve (see :func:`optimiser.solve.solve`);
    ``warnings`` (e.g. scenario entries for sites of other regions) go first in
    ``summary["warnings"]``; ``algorithms``: the exact algorithms the solve may use (None: all).
    """
    solution = solve(instance, params, start=start, max_workers=max_workers,
                     algorithms=algorithms)
    return verified_result(instance, params, solution, scenario_info=scenario_info,
                           warnings=warnings,
                           warm_start=start.solver if start is not None else None,
                           reasons=reasons)


def verified_result(
    instance: Instance,
    params: SolveParams,
    solution: Solution,
    *,
    scenario_info: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    warm_start: str | None = None,
    reasons: bool = True,
) -> RunResult:
    """KPIs, contract tables and the verifier's verdict of a ``solution`` already solved (by
    :func:`optimiser.solve.solve` or a :class:`optimiser.whatif.WhatIf` step): what
    :func:`solve_verified` does after its solve, so the same solution gives the same tables.
    ``warm_start`` names the solver of the start solution (``summary["warm_start"]``);
    ``reasons``: why each lost role is lost and the price of keeping it, by re-solving each
    with the role forced open (optimiser/reasons.py; hospital_changes.csv's reason columns,
    empty with False)."""
    statuses = treatment_statuses(instance, solution)
    checked_instance, checked_solution = planned_part(instance, solution, statuses)
    kpis = (compute_kpis(checked_instance, checked_solution, params)
            if checked_solution.feasible else None)
    site_volumes = site_volumes_table(instance, solution, params)
    assignments = assignments_table(instance, solution)
    flows = flows_table(instance, solution, assignments) if solution.flow is not None else None
    hospital_changes = hospital_changes_from_site_volumes(
        site_volumes, {t.id: t.name for t in instance.treatments})
    if reasons and solution.flow is not None:
        names = site_names(instance)
        hospital_changes = with_reasons(
            hospital_changes,
            # kept in the derived-data cache: the same model again re-solves nothing
            lost_role_reasons(instance, params, solution, store=DERIVED_REASONS),
            lambda r: reason_sentence(r, names), lambda r: moves_from_text(r, names))
    summary = summary_dict(instance, solution, params, kpis)
    summary["treatment_status"] = statuses
    if scenario_info:
        summary["scenario"] = {**summary["scenario"], **scenario_info}
    if warnings:
        summary["warnings"] = [*warnings, *(summary.get("warnings") or [])]
    if warm_start is not None:
        summary["warm_start"] = warm_start
    violations = verify(checked_solution, checked_instance, params, kpis)
    summary["verification"] = {"verifier": "herschik.optimiser.verify", "violations": violations}
    return RunResult(instance=instance, params=params, solution=solution, kpis=kpis,
                     violations=violations, summary=summary, site_volumes=site_volumes,
                     assignments=assignments, hospital_changes=hospital_changes, flows=flows)


def site_names(instance: Instance) -> dict[str, str]:
    """Site id -> hospital name, as the reasons' sentences name hospitals."""
    return {site.id: site.name or site.id for site in instance.sites}


def planned_part(instance: Instance, solution: Solution, statuses: dict[str, str]
                 ) -> tuple[Instance, Solution]:
    """The instance and solution that KPIs and verifier judge: everything, or for a partial
    plan (``partially_infeasible``) the solved treatments only, as a feasible solution of
    their own instance (the treatments are independent sub-problems)."""
    if solution.status != SolveStatus.PARTIALLY_INFEASIBLE or solution.flow is None \
            or solution.keep is None:
        return instance, solution
    solved = [t for t, tid in enumerate(instance.treatment_ids)
              if statuses[tid] in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)]
    worst = (SolveStatus.FEASIBLE if any(statuses[instance.treatment_ids[t]]
                                         == SolveStatus.FEASIBLE for t in solved)
             else SolveStatus.OPTIMAL)
    part = Solution(status=worst, solver=solution.solver, objective=solution.objective,
                    keep=solution.keep[:, solved], flow=solution.flow[:, :, solved],
                    subproblems=solution.subproblems, decomposition=solution.decomposition)
    return instance.with_treatments(solved), part


def run_solve(
    instance: Instance,
    params: SolveParams,
    out_dir: Path,
    *,
    dataset: Any = None,
    scenario_info: dict[str, Any] | None = None,
    outputs: dict[str, bool] | None = None,
    start: Solution | None = None,
    max_workers: int | None = None,
    lock: bool = True,
    warnings: list[str] | None = None,
    reasons: bool = True,
    algorithms: Algorithms | None = None,
) -> dict[str, Any]:
    """:func:`solve_verified`, then :meth:`RunResult.write` to ``out_dir``; the summary dict."""
    result = solve_verified(instance, params, scenario_info=scenario_info, start=start,
                            max_workers=max_workers, warnings=warnings, reasons=reasons,
                            algorithms=algorithms)
    result.write(out_dir, dataset=dataset, outputs=outputs, lock=lock)
    return result.summary


def apply_scenario(
    instance: Instance, scenario: Any = None
) -> tuple[Instance, SolveParams, dict[str, Any]]:
    """The instance, parameters and ``summary["scenario"]`` info of ``instance`` under a scenario.

    ``scenario`` is a resolved scenario (one grid point of a scenario file) or None for the
    defaults. Growth and norm multipliers change the instance; closures become parameters.
    The one place where the CLI, sweeps and the library apply a scenario.
    """
    if scenario is None:
        return instance, SolveParams(), {}
    return (scenario.apply(instance), scenario.params_for(instance),
            scenario.scenario_info(instance))


def scenario_instance(
    dataset: Any, region_id: str, scenario: Any = None, network: Any = None, *,
    source_digest: str | None = None,
) -> tuple[Instance, SolveParams, dict[str, Any]]:
    """:func:`apply_scenario` on the instance of one region, after checking the scenario's ids
    against the dataset. ``source_digest``: the identity of the unchanged files ``dataset``
    was loaded from, to take the instance from the derived-data cache
    (:func:`herschik.scenarios.instance_cache.cached_build_instance`)."""
    # building an instance (assemble, geo's travel times) is not at the top: herschik.solve
    # takes a built instance and never loads it
    from herschik.scenarios.instance_cache import cached_build_instance

    if scenario is not None:
        scenario.check(
            treatment_ids=list(dataset.treatments["intervention_id"]),
            group_ids=list(dataset.treatments["group_id"]),
            site_ids=list(dataset.sites["site_id"]),
        )
    instance = cached_build_instance(dataset, region_id, network, source_digest=source_digest)
    return apply_scenario(instance, scenario)
