"""``herschik solve``: parameters from --scenario plus flags, the run, the console summary."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from herschik.geo.dataset import baseline_source_text
from herschik.optimiser.params import SolveParams
from herschik.optimiser.status import exit_code_for_status
from herschik.scenarios.cli.console_summary import console_width, summary_lines
from herschik.scenarios.cli.dataset import dataset_source, make_console, source_identity
from herschik.scenarios.cli.shared import load_args_dataset
from herschik.scenarios.instance_cache import cached_build_instance
from herschik.scenarios.report.pdf import pdf_engine
from herschik.scenarios.run import regional_start, run_solve, scenario_instance
from herschik.scenarios.scenario.file import load_scenario, with_overrides
from herschik.scenarios.scenario.param_flags import (
    dotted_overrides,
    param_overrides,
    unknown_id,
)

from herschik.atomic import check_output_dir, output_lock
from herschik.errors import (
    UnknownRegionError,
    UsageError,
)
from herschik.i18n import _

__all__ = ["cmd_solve", "solve_params_from_args"]


def cmd_solve(args: argparse.Namespace) -> int:
    args.started = time.perf_counter()  # the console reports the command's wall seconds
    params, scenario_info, scenario = solve_params_from_args(args)
    dataset = load_args_dataset(args, args.region)
    regions = list(dataset.regions["region_id"])
    if args.region != "all" and args.region not in regions:
        raise UnknownRegionError(
            f"--region {args.region}: unknown region; choose from {', '.join(regions)} or all"
        )
    # the first line of the console: which world the numbers describe (issue 22)
    make_console().print(baseline_source_text(dataset.baseline_source), markup=False,
                         soft_wrap=True)
    sys.stdout.flush()  # before any solver banner
    problem = unknown_id(param_overrides(args), dataset.sites["site_id"].astype(str),
                         dataset.treatments["intervention_id"].astype(str))
    if problem is not None:  # a mistyped id must not be ignored silently
        raise UsageError(problem)
    # --out is checked, and held against a second writer, before any solving starts.
    check_output_dir(args.out)
    if args.pdf:  # a missing printer is known before the solve, not after it
        pdf_engine()
    with output_lock(args.out):
        return _solve_into(args, params, scenario_info, scenario, dataset)


def _solve_into(
    args: argparse.Namespace, params: Any, scenario_info: dict[str, Any], scenario: Any,
    dataset: Any,
) -> int:
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
        "pdf": args.pdf,
    }
    start = None
    if args.region == "all":
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
        reasons=wants_reasons(args),
    )
    _print_result(summary, args.out, dataset, time.perf_counter() - args.started)
    return exit_code_for_status(summary["status"])


def wants_reasons(args: argparse.Namespace) -> bool:
    """Reasons for lost roles: on for a region, off for ``--region all`` (a national re-solve
    per lost role) unless ``--reasons``; ``--no-reasons`` always off."""
    if getattr(args, "no_reasons", False):
        return False
    return bool(getattr(args, "reasons", False)) or args.region != "all"


def solve_params_from_args(args: argparse.Namespace) -> tuple[Any, dict[str, Any], Any]:
    """(SolveParams, scenario_info, resolved scenario or None) from --scenario plus flags."""
    overrides = param_overrides(args)
    if args.scenario is None:
        return SolveParams(**overrides), {}, None
    resolved = load_scenario(args.scenario).expand()
    if len(resolved) != 1:
        raise UsageError(
            f"{args.scenario}: the scenario has a grid of {len(resolved)} runs; use "
            "`herschik sweep` for grids"
        )
    scenario = with_overrides(resolved[0], **dotted_overrides(overrides))
    return scenario.params, scenario.as_dict(), scenario


def _print_result(summary: dict[str, Any], out: Path, dataset: Any,
                  wall_seconds: float) -> None:
    """The compact summary (scenarios/cli/console_summary.py), at the terminal's width."""
    changes_path = out / "hospital_changes.csv"
    changes = pd.read_csv(changes_path) if changes_path.is_file() else None
    regions = dict(zip(dataset.regions["region_id"], dataset.regions["region_name"]))
    lines = summary_lines(
        summary,
        region_name=regions.get(summary["region_id"], ""),
        treatment_names=dict(zip(dataset.treatments["intervention_id"],
                                 dataset.treatments["name"], strict=True)),
        hospital_changes=changes,
        wall_seconds=wall_seconds,
        width=console_width(),
    )
    lines.append(_("Results written to {out}", out=out))
    print("\n".join(lines))
