"""The ``herschik`` command line (see ../shared/CONTRACT.md and the README).

Exit codes: 0 solved (optimal or feasible within the limit), 1 infeasible scenario (the
diagnosis is printed and written to summary.json), 2 bad input or usage (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from herschik.optimiser.status import SolveStatus, exit_code_for_status

from herschik.errors import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_INFEASIBLE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIME_LIMIT_NO_SOLUTION,
    EnvironmentProblem,
    UnknownRegionError,
    UsageError,
    exit_code_for,
    one_line,
)

__all__ = [
    "EXIT_BAD_INPUT", "EXIT_INFEASIBLE", "EXIT_INTERNAL", "EXIT_OK",
    "EXIT_TIME_LIMIT_NO_SOLUTION", "UsageError", "main",
]

EXAMPLE = "example"


# --- parser -------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="DIR",
        type=Path,
        default=None,
        help="a dataset folder in the documented format (docs/DATA_FORMAT.md) instead of the "
        "embedded national default",
    )
    parser.add_argument(
        "--network",
        metavar="FILE",
        type=Path,
        default=None,
        help="a road network built with `herschik network build` instead of the embedded one",
    )
    parser.add_argument(
        "--areas",
        choices=["districts", "municipalities"],
        default="districts",
        help="origin areas of the embedded default: CBS districts (3,340, default) or "
        "municipalities (345, coarser and faster)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="herschik",
        description="Plan the reallocation of complex hospital care: which hospitals keep which "
        "treatment, and where patients go, so that every provider clears its volume norm.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    regions = sub.add_parser("regions", help="list the regions with areas, sites, patients/yr")
    regions.add_argument("--json", action="store_true", help="machine-readable output")
    _common(regions)

    data = sub.add_parser("data", help="inspect or export the loaded dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    summary = data_sub.add_parser(
        "summary", help="providers, providers below norm and volume per region and treatment"
    )
    summary.add_argument("--json", action="store_true", help="machine-readable output")
    _common(summary)
    export = data_sub.add_parser("export", help="write the dataset in the user format")
    export.add_argument("--out", metavar="DIR", type=Path, required=True)
    _common(export)

    solve = sub.add_parser("solve", help="solve one region (or all jointly) and write results")
    solve.add_argument(
        "--region",
        required=True,
        metavar="ID",
        help="region id (see `herschik regions`), 'all' for a joint national solve, or "
        "'example' for the built-in synthetic example region",
    )
    solve.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        type=Path,
        help="result folder (created or replaced as a whole)",
    )
    solve.add_argument(
        "--scenario", metavar="FILE", type=Path, help="scenario TOML file (flags below override it)"
    )
    solve.add_argument(
        "--margin",
        type=float,
        metavar="F",
        help="required volume = norm x (1 + F); e.g. 0.1 for a 10%% margin",
    )
    solve.add_argument(
        "--max-travel",
        type=float,
        metavar="MIN",
        help="maximum car travel time in minutes from area to treating site",
    )
    solve.add_argument(
        "--max-extra-travel",
        type=float,
        metavar="MIN",
        help="maximum extra minutes over the area's baseline mean travel time",
    )
    solve.add_argument(
        "--objective",
        choices=["planner", "travel", "moved", "providers"],
        help="planner (default): first fewest unnecessary moves U = sum over today's flows "
        "b[a,s,t] to a hospital that keeps t (or could keep it with its own patients) of "
        "b - min(flow, b), then least patient-minutes (only displaced patients move, to the "
        "nearest hospital that keeps the treatment; docs/OBJECTIVES.md); travel: least "
        "patient-minutes; moved: fewest patients changing hospital; providers: keep as many "
        "providers as possible, then least travel. Treatments without a norm always keep "
        "today's flows",
    )
    solve.add_argument(
        "--max-loss-share",
        type=float,
        metavar="SHARE",
        help="no site may lose more than SHARE (0-1) of its total volume",
    )
    solve.add_argument(
        "--single-sourcing",
        action="store_true",
        default=None,
        help="each area sends all patients of a treatment to one site",
    )
    solve.add_argument(
        "--allow-new-providers",
        action="store_true",
        default=None,
        help="allow sites to start treatments they do not provide today",
    )
    solve.add_argument(
        "--remote-areas",
        choices=["nearest_provider", "strict"],
        help="areas already beyond --max-travel today may go as far as their nearest current "
        "provider (nearest_provider, default) or not (strict)",
    )
    solve.add_argument(
        "--small-region-rule",
        choices=["one_provider", "fail"],
        help="when a region's whole demand for a treatment is below its norm: concentrate it at "
        "one hospital, flagged (one_provider, default), or report infeasible (fail)",
    )
    solve.add_argument("--solver", choices=["highs", "cbc"], help="MIP solver (default highs)")
    solve.add_argument(
        "--time-limit",
        type=float,
        metavar="S",
        help="time limit in seconds per sub-problem; the best solution found "
        "is returned with its gap",
    )
    solve.add_argument(
        "--mip-gap",
        type=float,
        metavar="G",
        help="relative optimality gap at which to stop (default 1e-4)",
    )
    solve.add_argument("--geojson", action="store_true", help="also write GeoJSON (EPSG:4326)")
    solve.add_argument("--xlsx", action="store_true", help="also write an Excel workbook")
    solve.add_argument("--no-maps", action="store_true", help="skip the PNG maps")
    solve.add_argument("--no-report", action="store_true", help="skip report.html")
    _common(solve)

    matrix = sub.add_parser("matrix", help="car travel minutes from a region's areas to sites")
    matrix.add_argument("--region", required=True, metavar="ID")
    matrix.add_argument("--out", required=True, metavar="FILE.csv", type=Path)
    _common(matrix)

    sweep = sub.add_parser("sweep", help="run a scenario grid over regions (resumable)")
    sweep.add_argument("file", metavar="FILE", type=Path, help="scenario TOML file with a grid")
    sweep.add_argument("--out", required=True, metavar="DIR", type=Path)
    sweep.add_argument("--regions", default="all", metavar="all|ID,ID")
    sweep.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="parallel processes (default: number of cores)",
    )
    sweep.add_argument("--executor", choices=["local", "dask"], default="local")
    sweep.add_argument(
        "--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786"
    )
    sweep.add_argument("--plot", action="store_true", help="draw trade-off plots per region")
    sweep.add_argument("--gpkg", action="store_true",
                       help="also write results.gpkg in every run folder (off: faster)")
    _common(sweep)

    compare = sub.add_parser(
        "compare", help="differences between two result folders (KPIs, hospital changes)")
    compare.add_argument("run_a", metavar="RUN_A", type=Path, help="first result folder")
    compare.add_argument("run_b", metavar="RUN_B", type=Path,
                         help="second result folder (differences are B - A)")
    compare.add_argument("--out", metavar="DIR", type=Path, default=None,
                         help="also write kpi_differences.csv, treatment_differences.csv and "
                         "hospital_differences.csv to DIR")
    compare.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    network = sub.add_parser("network", help="build or validate a road network")
    network_sub = network.add_subparsers(dest="network_command", required=True, metavar="ACTION")
    build = network_sub.add_parser(
        "build", help="OSM extract -> compact network file (streamed, bounded memory)"
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--osm", metavar="FILE", type=Path, help=".osm.pbf, .osm or .osm.bz2")
    source.add_argument(
        "--download",
        metavar="PLACE",
        help="opt-in: query OpenStreetMap online for PLACE (needs internet)",
    )
    build.add_argument("--out", required=True, metavar="FILE", type=Path)
    _common(build)
    validate = network_sub.add_parser(
        "validate",
        help="compare a network with the RIVM Utrecht matrix and the inter-city trips "
        "(exit 0 within the thresholds of docs/VALIDATION.md, 1 outside them)",
    )
    validate.add_argument(
        "--rivm",
        metavar="DIR",
        type=Path,
        help="folder rivm_ravu_utrecht with the full RIVM matrix (default: committed sample)",
    )
    validate.add_argument("--json", action="store_true", help="print the results as JSON")
    _common(validate)

    app = sub.add_parser(
        "app",
        help="a what-if planner in the browser (local web app)",
        description="Serve the what-if planner on this machine: a map of a region, scenario "
        "controls, force keep/close per hospital and treatment, plans to compare and export. "
        "The app defaults to --areas municipalities (re-solves within about a second).",
    )
    app.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=Path("herschik-plans"),
        help="folder for exported plans (default ./herschik-plans); the app picks the "
        "sub-folder names, the browser never names a path",
    )
    app.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    app.add_argument(
        "--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)"
    )
    app.add_argument("--region", metavar="ID", help="region shown first")
    _common(app)
    app.set_defaults(areas="municipalities")
    return parser


# --- helpers ------------------------------------------------------------------------------
def _load(args: argparse.Namespace, region: str | None = None) -> Any:
    from herschik.geo.dataset import load_dataset

    if args.data is not None:
        if not args.data.is_dir():
            raise UsageError(f"--data {args.data}: not a folder")
        return load_dataset(args.data)
    if region == EXAMPLE:
        return load_dataset(EXAMPLE)
    return load_dataset("municipalities" if args.areas == "municipalities" else None)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


# --- commands -----------------------------------------------------------------------------
def cmd_regions(args: argparse.Namespace) -> int:
    dataset = _load(args)
    demand = dataset.demand.merge(dataset.areas[["area_id", "region_id"]], on="area_id")
    rows = []
    for region in dataset.regions.itertuples(index=False):
        rows.append(
            {
                "region_id": region.region_id,
                "region_name": region.region_name,
                "areas": int((dataset.areas["region_id"] == region.region_id).sum()),
                "sites": int((dataset.sites["region_id"] == region.region_id).sum()),
                "patients_per_year": round(
                    float(demand.loc[demand["region_id"] == region.region_id, "patients"].sum()), 1
                ),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    from rich.table import Table

    table = Table(title=f"Regions of dataset '{dataset.name}'")
    for column in ("region_id", "region_name", "areas", "sites", "patients_per_year"):
        table.add_column(column, justify="right" if column in ("areas", "sites") else "left")
    for row in rows:
        table.add_row(*(str(row[c]) for c in row))
    console = _console()
    console.print(table)
    if args.data is None:
        console.print("Also built in: region 'example' (synthetic, for tests and demos).")
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    dataset = _load(args)
    if args.data_command == "export":
        from herschik.geo.dataset import export_dataset

        export_dataset(dataset, args.out)
        print(f"wrote dataset '{dataset.name}' to {args.out}")
        return EXIT_OK
    table = dataset.summary()
    table["volume"] = table["volume"].round(4)
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), indent=2))
        return EXIT_OK
    from rich.table import Table

    rich_table = Table(title=f"Baseline of dataset '{dataset.name}' per region and treatment")
    for column in table.columns:
        rich_table.add_column(column)
    for row in table.itertuples(index=False):
        rich_table.add_row(*(str(v) for v in row))
    console = _console()
    console.print(rich_table)
    if dataset.baseline_kind == "illustrative":
        console.print(
            "[bold]Baseline volumes are ILLUSTRATIVE[/bold]: calibrated to the tranche-1 provider "
            "counts, not real hospital volumes (see DATA.md)."
        )
    return EXIT_OK


def _solve_params(args: argparse.Namespace) -> tuple[Any, dict[str, Any], Any]:
    """(SolveParams, scenario_info, resolved scenario or None) from --scenario plus flags."""
    from herschik.optimiser.params import SolveParams

    overrides = {
        key: value
        for key, value in {
            "margin": args.margin,
            "max_travel": args.max_travel,
            "max_extra_travel": args.max_extra_travel,
            "objective": args.objective,
            "max_loss_share": args.max_loss_share,
            "single_sourcing": args.single_sourcing,
            "allow_new_providers": args.allow_new_providers,
            "remote_areas": args.remote_areas,
            "small_region_rule": args.small_region_rule,
            "solver": args.solver,
            "time_limit": args.time_limit,
            "mip_gap": args.mip_gap,
        }.items()
        if value is not None
    }
    if args.scenario is None:
        return SolveParams(**overrides), {}, None
    from herschik.scenarios.scenario_file import load_scenario, with_overrides

    resolved = load_scenario(args.scenario).expand()
    if len(resolved) != 1:
        raise UsageError(
            f"{args.scenario}: the scenario has a grid of {len(resolved)} runs; use "
            "`herschik sweep` for grids"
        )
    scenario = with_overrides(resolved[0], **overrides) if overrides else resolved[0]
    return scenario.params, scenario.as_dict(), scenario


def _print_result(summary: dict[str, Any], out: Path,
                  names: dict[str, str] | None = None) -> None:
    from rich.table import Table

    names = names or {}
    console = _console()
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
        for key in ("smallest_feasible_margin", "smallest_feasible_max_travel"):
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


def cmd_compare(args: argparse.Namespace) -> int:
    from herschik.scenarios.compare import CompareError, compare_runs, write_comparison
    from rich.table import Table

    try:
        tables = compare_runs(args.run_a, args.run_b)
    except CompareError as error:
        raise UsageError(str(error)) from None
    console = _console()
    kpi = Table(title=f"KPIs: A = {args.run_a}, B = {args.run_b}")
    for column in ("kpi", "A", "B", "B - A"):
        kpi.add_column(column, justify="left" if column == "kpi" else "right")
    for row in tables["kpi_differences"].itertuples(index=False):
        kpi.add_row(str(row.kpi), _cell(row.run_a), _cell(row.run_b), _cell(row.difference))
    console.print(kpi)
    hosp = tables["hospital_differences"]
    if hosp.empty:
        console.print("No hospital differs in status or volume after.")
    else:
        table = Table(title=f"Hospital changes that differ ({len(hosp)})")
        for column in ("site", "name", "treatment", "status A", "status B", "volume A",
                       "volume B", "B - A"):
            table.add_column(column)
        for r in hosp.itertuples(index=False):
            table.add_row(str(r.site_id), str(r.site_name), str(r.intervention_id),
                          str(r.status_a), str(r.status_b), _cell(r.volume_after_a),
                          _cell(r.volume_after_b), _cell(r.volume_difference))
        console.print(table)
    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out}: exists and is not a folder")
        for path in write_comparison(tables, args.out):
            console.print(f"wrote {path}")
    return EXIT_OK


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def cmd_solve(args: argparse.Namespace) -> int:
    from herschik.atomic import check_output_dir, output_lock

    params, scenario_info, scenario = _solve_params(args)
    dataset = _load(args, args.region)
    regions = list(dataset.regions["region_id"])
    if args.region != "all" and args.region not in regions:
        raise UnknownRegionError(
            f"--region {args.region}: unknown region; choose from {', '.join(regions)} or all"
        )
    # --out is checked, and held against a second writer, before any solving starts.
    check_output_dir(args.out)
    with output_lock(args.out):
        return _solve_into(args, params, scenario_info, scenario, dataset)


def _solve_into(
    args: argparse.Namespace, params: Any, scenario_info: dict[str, Any], scenario: Any,
    dataset: Any,
) -> int:
    from herschik.scenarios.assemble import build_instance
    from herschik.scenarios.run import run_solve, scenario_instance

    warnings: list[str] = []
    if scenario is None:
        instance = build_instance(dataset, args.region, network=args.network)
    else:
        instance, params, scenario_info = scenario_instance(dataset, args.region, scenario,
                                                            args.network)
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


def cmd_matrix(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd
    from herschik.scenarios.assemble import travel_minutes

    from herschik.atomic import check_output_file, write_csv

    check_output_file(args.out)  # before any work: never a device, FIFO or folder
    dataset = _load(args, args.region)
    if args.region not in set(dataset.regions["region_id"]):
        raise UnknownRegionError(f"--region {args.region}: unknown region")
    areas = dataset.areas[dataset.areas["region_id"] == args.region]
    # Sites "in or near" the region: its own, plus others within 25 km of one of its areas.
    sites = dataset.sites
    dx = sites["x"].to_numpy()[None, :] - areas["x"].to_numpy()[:, None]
    dy = sites["y"].to_numpy()[None, :] - areas["y"].to_numpy()[:, None]
    near = (np.hypot(dx, dy) <= 25_000).any(axis=0) | (sites["region_id"] == args.region)
    site_ids = list(sites.loc[near.to_numpy() if hasattr(near, "to_numpy") else near, "site_id"])
    minutes = travel_minutes(dataset, list(areas["area_id"]), site_ids, args.network)
    a_idx, s_idx = np.meshgrid(np.arange(len(areas)), np.arange(len(site_ids)), indexing="ij")
    table = pd.DataFrame(
        {
            "area_id": areas["area_id"].to_numpy()[a_idx.ravel()],
            "site_id": np.asarray(site_ids)[s_idx.ravel()],
            "minutes": np.round(minutes.ravel(), 2),
        }
    )
    write_csv(args.out, table)
    print(
        f"wrote {len(table)} travel times ({len(areas)} areas x {len(site_ids)} sites) "
        f"to {args.out}"
    )
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from herschik.scenarios.sweep import DEFAULT_OUTPUTS, run_sweep

    regions = "all" if args.regions == "all" else [r for r in args.regions.split(",") if r]
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS")
    runs = run_sweep(
        args.file,
        args.out,
        regions=regions,
        workers=args.workers,
        executor=args.executor,
        scheduler=args.scheduler,
        plot=args.plot,
        dataset_source=args.data
        if args.data is not None
        else ("municipalities" if args.areas == "municipalities" else None),
        network=args.network,
        **({"outputs": {**DEFAULT_OUTPUTS, "gpkg": True}} if args.gpkg else {}),
    )
    counts = runs["status"].value_counts().to_dict() if len(runs) else {}
    print(f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    print(f"wrote {args.out / 'runs.csv'}")
    failed = int(counts.get("error", 0))
    if failed:
        codes = runs.attrs.get("error_exit_codes") or [EXIT_INTERNAL]
        print(
            f"herschik: error: {failed} of {len(runs)} runs failed (status error; the message "
            f"is in column error of {args.out / 'runs.csv'})",
            file=sys.stderr,
        )
        return max(codes)
    return EXIT_OK


def cmd_network(args: argparse.Namespace) -> int:
    if args.network_command == "validate":
        return _network_validate(args)
    from herschik.geo.dataset import DataError
    from herschik.geo.network import download_network, save_network

    from herschik.atomic import check_output_file, write_binary

    check_output_file(args.out)  # before any work: never a device, FIFO or folder
    if args.download:
        try:
            net = download_network(args.download)
        except OSError as error:  # requests' errors are OSErrors: no internet, DNS, refused
            raise EnvironmentProblem(
                f"--download {args.download}: cannot download from OpenStreetMap "
                f"({one_line(error)}); this needs internet, or use --osm FILE"
            ) from None
        nodes, edges = net.number_of_nodes(), net.number_of_edges()
        facts = ""
    else:
        if not args.osm.is_file():
            raise UsageError(f"--osm {args.osm}: file not found")
        from herschik.geo.osm import read_osm

        try:
            net = read_osm(args.osm)
        except ValueError as error:
            raise DataError(str(args.osm), None, None, str(error).split(": ", 1)[-1]) from None
        nodes, edges = net.n_nodes, net.n_edges
        facts = (
            f" ({net.length.sum() / 2000:,.0f} km of road, "
            f"{net.meta['nodes_outside_largest_component']} nodes outside the largest "
            f"strongly connected component dropped, "
            f"{net.meta['turn_restrictions_ignored']} turn restrictions not applied)"
        )
    write_binary(args.out, lambda handle: save_network(net, handle))
    print(f"wrote network with {nodes} nodes and {edges} edges to {args.out}{facts}")
    return EXIT_OK


def _network_validate(args: argparse.Namespace) -> int:
    import json

    from herschik.geo.dataset import DataError
    from herschik.geo.validation import validate_network

    if args.network is not None and not Path(args.network).is_file():
        raise UsageError(f"--network {args.network}: file not found")
    try:
        if args.rivm is not None and not (args.rivm / "demand_nodes.txt").is_file():
            raise UsageError(f"--rivm {args.rivm}: no demand_nodes.txt in that folder")
        report = validate_network(args.network, args.rivm)
    except DataError:
        raise
    except (ValueError, OSError) as error:
        raise DataError(str(args.network), None, None, str(error)) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(report["text"])
    return EXIT_OK if report["passed"] else 1
def cmd_app(args: argparse.Namespace) -> int:
    from herschik.scenarios.app.server import serve
    from herschik.scenarios.app.session import AppState

    dataset = _load(args)
    regions = list(dataset.regions["region_id"])
    if args.region is not None and args.region not in regions:
        raise UsageError(
            f"--region {args.region}: unknown region; choose from {', '.join(regions)}"
        )
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    if args.network is not None and not args.network.is_file():
        raise UsageError(f"--network {args.network}: file not found")
    # the flags that make `herschik solve` load the same data, for exported plans
    source = ["--data", str(args.data.resolve())] if args.data is not None else [
        "--areas", args.areas]
    if args.network is not None:
        source += ["--network", str(args.network.resolve())]
    state = AppState(
        dataset,
        out_dir=args.out.resolve(),
        network=args.network.resolve() if args.network is not None else None,
        source_args=source,
        areas_label="" if args.data is not None else args.areas,
        first_region=args.region or regions[0],
    )
    try:
        serve(state, host=args.host, port=args.port)
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) is how the app is meant to stop
        print("herschik app: stopped", file=sys.stderr)
    except OSError as error:
        raise UsageError(
            f"--host {args.host} --port {args.port}: cannot listen ({error})"
        ) from None
    return EXIT_OK


COMMANDS = {
    "regions": cmd_regions,
    "data": cmd_data,
    "solve": cmd_solve,
    "matrix": cmd_matrix,
    "sweep": cmd_sweep,
    "network": cmd_network,
    "compare": cmd_compare,
    "app": cmd_app,
}


def _one_line(error: BaseException) -> str:
    return one_line(error)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``herschik`` command; returns the exit code.

    Exit codes are decided in one place, :func:`herschik.errors.exit_code_for`: 2 for bad
    input and the environment's problems (one line on stderr), 3 for bugs; 130 when stopped by
    SIGINT or SIGTERM; a closed output pipe ends quietly (141, like a tool killed by SIGPIPE).
    """
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:
        print(f"herschik: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # SIGTERM unwinds like Ctrl-C, so staged result folders are removed, never left torn.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except KeyboardInterrupt as interrupt:
        print(f"herschik: {one_line(interrupt) if str(interrupt) else 'interrupted'}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as error:  # every failure becomes a one-line message
        if getattr(args, "debug", False):
            traceback.print_exc()
        code = exit_code_for(error)
        if code == EXIT_BAD_INPUT:
            print(f"herschik: error: {_one_line(error)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(
            f"herschik: internal error: {type(error).__name__}: {_one_line(error)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not complain."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
