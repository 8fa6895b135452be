"""``herschik solve``: parameters from --scenario plus flags, the run, the console summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from herschik.optimiser.status import SolveStatus, exit_code_for_status
from herschik.scenarios.cli_commands import load_args_dataset, make_console
from herschik.scenarios.cli_dataset import dataset_source, source_identity
from herschik.scenarios.param_flags import (
    add_param_flags,
    dotted_overrides,
    param_overrides,
    unknown_id,
)

from herschik.errors import (
    UnknownRegionError,
    UsageError,
)

__all__ = ["add_param_flags", "cmd_solve", "solve_params_from_args"]


def cmd_solve(args: argparse.Namespace) -> int:
    from herschik.atomic import check_output_dir, output_lock

    params, scenario_info, scenario = solve_params_from_args(args)
    dataset = load_args_dataset(args, args.region)
    regions = list(dataset.regions["region_id"])
    if args.region != "all" and args.region not in regions:
        raise UnknownRegionError(
            f"--region {args.region}: unknown region; choose from {', '.join(regions)} or all"
        )
    # the first line of the console: which world the numbers describe (issue 22)
    make_console().print(dataset.baseline_source, markup=False, soft_wrap=True)
    sys.stdout.flush()  # before any solver banner
    problem = unknown_id(param_overrides(args), dataset.sites["site_id"].astype(str),
                         dataset.treatments["intervention_id"].astype(str))
    if problem is not None:  # a mistyped id must not be ignored silently
        raise UsageError(problem)
    # --out is checked, and held against a second writer, before any solving starts.
    check_output_dir(args.out)
    with output_lock(args.out):
        return _solve_into(args, params, scenario_info, scenario, dataset)


def _solve_into(
    args: argparse.Namespace, params: Any, scenario_info: dict[str, Any], scenario: Any,
    dataset: Any,
) -> int:
    from herschik.scenarios.instance_cache import cached_build_instance
    from herschik.scenarios.run import run_solve, scenario_instance

    warnings: list[str] = []
    # the files the dataset was just loaded from, unchanged: the key of the instance cache
    identity = source_identity(dataset_source(args, args.region))
    if scenario is None:
        instance = cached_build_instance(dataset, args.region, args.network,
                                         source_digest=identity)
    else:
        instance, params, scenario_info = scenario_instance(dataset, args.region, scenario,
                                                            args.network, source_digest=identity)
        warnings = scenario.outside(instance)
    outputs = {
        "gpkg": True,
        "geojson": args.geojson,
        "xlsx": args.xlsx,
        "maps": not args.no_maps,
        "report": not args.no_report,
    }
    start = None
    if args.region == "all":
        from herschik.scenarios.run import regional_start

        # seed the joint model with the seven regional optima (a feasible joint solution)
        area_regions = dict(zip(dataset.areas["area_id"], dataset.areas["region_id"]))
        start = regional_start(instance, area_regions, params)
    summary = run_solve(
        instance,
        params,
        args.out,
        dataset=dataset,
        scenario_info=scenario_info,
        outputs=outputs,
        start=start,
        warnings=warnings,
    )
    _print_result(summary, args.out, dict(zip(dataset.treatments["intervention_id"],
                                              dataset.treatments["name"], strict=True)))
    return exit_code_for_status(summary["status"])


def solve_params_from_args(args: argparse.Namespace) -> tuple[Any, dict[str, Any], Any]:
    """(SolveParams, scenario_info, resolved scenario or None) from --scenario plus flags."""
    from herschik.optimiser.params import SolveParams

    overrides = param_overrides(args)
    if args.scenario is None:
        return SolveParams(**overrides), {}, None
    from herschik.scenarios.scenario_file import load_scenario, with_overrides

    resolved = load_scenario(args.scenario).expand()
    if len(resolved) != 1:
        raise UsageError(
            f"{args.scenario}: the scenario has a grid of {len(resolved)} runs; use "
            "`herschik sweep` for grids"
        )
    scenario = with_overrides(resolved[0], **dotted_overrides(overrides))
    return scenario.params, scenario.as_dict(), scenario


def _print_result(summary: dict[str, Any], out: Path,
                  names: dict[str, str] | None = None) -> None:
    from rich.table import Table

    names = names or {}
    console = make_console()
    status = summary["status"]
    console.print(
        f"[bold]{summary['region_id']}[/bold]: {status} "
        f"(objective {summary.get('scenario', {}).get('objective')}, "
        f"solver {summary['solver']}, gap {summary.get('mip_gap')}, "
        f"build {summary['build_seconds']:.2f} s, solve {summary['solve_seconds']:.2f} s)"
    )
    for warning in summary.get("warnings") or []:
        console.print(f"[yellow]Warning:[/yellow] {warning}")
    if status == SolveStatus.TIME_LIMIT_NO_SOLUTION:
        diagnosis = summary.get("diagnosis") or {}
        console.print(f"[red]No solution within the time limit:[/red] "
                      f"{diagnosis.get('reason', '')}")
        return
    if status == SolveStatus.INFEASIBLE:
        diagnosis = summary.get("diagnosis") or {}
        console.print(f"[red]Infeasible:[/red] {diagnosis.get('reason', 'no reason given')}")
        for key in ("smallest_feasible_margin", "largest_feasible_confidence",
                    "smallest_feasible_max_travel"):
            if diagnosis.get(key) is not None:
                console.print(f"  {key.replace('_', ' ')}: {diagnosis[key]}")
        console.print(f"diagnosis written to {out / 'summary.json'}")
        return
    kpis = summary["kpis"]
    table = Table(title="Key figures (definitions: docs/OUTPUTS.md)")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    from herschik.optimiser.kpis import DISPLACED_KPIS, SCALAR_KPIS

    for key in (*DISPLACED_KPIS, *(k for k in SCALAR_KPIS if k not in DISPLACED_KPIS)):
        if kpis.get(key) is None:
            continue
        value = kpis[key]
        table.add_row(key, f"{value:.1%}" if key.endswith("share") else f"{value:,.1f}")
    weakest = (kpis.get("norm_odds") or {}).get("weakest")
    if weakest:
        years = kpis["norm_odds"].get("period_years", 1)
        over = (f", {weakest['p_meet_norm_period']:.1%} over {years} years" if years > 1
                else "")
        table.add_row("weakest kept hospital: odds of meeting the norm",
                      f"{weakest['p_meet_norm_1y']:.1%}{over}")
        table.add_row("  (hospital, treatment)",
                      f"{weakest['site_name'] or weakest['site_id']}, "
                      f"{weakest['intervention_id']}")
    console.print(table)
    per = kpis.get("per_treatment") or {}
    providers = Table(title="Per treatment: providers and displaced patients")
    for column in ("treatment", "name", "before", "after", "lost", "gained", "displaced /yr",
                   "mean extra min", "max extra min", "optional moves"):
        providers.add_column(column, justify="left" if column in ("treatment", "name")
                             else "right")
    lost = kpis.get("providers_lost") or {}
    gained = kpis.get("providers_gained") or {}
    for treatment, before in kpis["providers_before"].items():
        p = per.get(treatment) or {}
        providers.add_row(
            treatment, names.get(treatment, ""), str(before),
            str(kpis["providers_after"].get(treatment, 0)), str(lost.get(treatment, "")),
            str(gained.get(treatment, "")), _num(p.get("patients_displaced")),
            _num(p.get("displaced_mean_extra_min")), _num(p.get("displaced_max_extra_min")),
            _num(p.get("patients_moved_optional")))
    console.print(providers)
    if summary.get("baseline") == "illustrative":
        console.print("Note: the baseline volumes are illustrative (see DATA.md).")
    violations = summary.get("verification", {}).get("violations") or []
    if violations:
        console.print(f"[red]Verifier found {len(violations)} problem(s):[/red] {violations[0]}")
    console.print(f"results written to {out}")


def _num(value: Any) -> str:
    return "" if value is None else f"{value:,.1f}"


