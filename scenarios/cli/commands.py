"""The ``herschik`` commands other than ``solve`` and ``regions`` (data, matrix, sweep, compare,
network, app), and the dataset loading they share with ``solve``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from herschik.geo.dataset import Dataset, load_dataset
from herschik.scenarios.cli.dataset import dataset_source, make_console

from herschik.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EnvironmentProblem,
    UnknownRegionError,
    UsageError,
    one_line,
)
from herschik.i18n import _, format_number, format_percent, status_label


def load_args_dataset(args: argparse.Namespace, region: str | None = None) -> Dataset:
    """The dataset that ``--data`` / ``--areas`` (or ``--region example``) name, validated."""
    return load_dataset(dataset_source(args, region))


def baseline_source_of(args: argparse.Namespace) -> str:
    """The baseline source line of the data the flags name, from dataset.json alone."""
    from herschik.geo.dataset import baseline_source_line, read_meta
    from herschik.geo.schema import DEFAULT_DIR, MUNICIPALITIES_DIR

    if args.data is not None:
        if not args.data.is_dir():
            raise UsageError(f"--data {args.data}: not a folder")
        return baseline_source_line(read_meta(args.data))
    return baseline_source_line(read_meta(
        MUNICIPALITIES_DIR if args.areas == "municipalities" else DEFAULT_DIR))


def _outside_share(text: str) -> str | float:
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 0.9:
        raise UsageError(f"--outside-share {text}: expected auto or a fraction from 0 to 0.9")
    return value


def cmd_import_volumes(args: argparse.Namespace) -> int:
    from herschik.scenarios.import_volumes import import_volumes, print_import, write_import

    from herschik.atomic import check_output_dir

    outside = _outside_share(args.outside_share)
    if args.decay is not None and not 0.0 <= args.decay <= 1.0:
        raise UsageError(f"--decay {args.decay}: expected 0 to 1 per minute")
    # before any work: a new or empty folder, or a dataset folder herschik wrote
    check_output_dir(args.out, kind="dataset")
    base = load_args_dataset(args)
    result = import_volumes(args.file, base, network=args.network, outside=outside,
                            decay=args.decay)
    write_import(result, args.out)
    print_import(result, args.out, make_console())
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "import-volumes":
        return cmd_import_volumes(args)
    dataset = load_args_dataset(args)
    if args.data_command == "export":
        from herschik.geo.dataset_export import export_dataset

        export_dataset(dataset, args.out)
        print(_("wrote dataset '{name}' to {path}", name=dataset.name, path=args.out))
        return EXIT_OK
    table = dataset.summary()
    table["volume"] = table["volume"].round(4)
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), indent=2))
        return EXIT_OK
    from herschik.geo.dataset import baseline_source_text
    from rich.table import Table

    console = make_console()
    console.print(baseline_source_text(dataset.baseline_source), markup=False, soft_wrap=True)
    rich_table = Table(title=_("Baseline of dataset '{name}' per region and treatment",
                               name=dataset.name))
    headers = {"region_id": _("Region"), "intervention_id": _("Treatment"),
               "providers": _("Providers"), "below_norm": _("Below norm"),
               "volume": _("Patients/yr")}
    for column in table.columns:
        rich_table.add_column(headers.get(column, column),
                              justify="right" if column in NUMERIC_SUMMARY else "left")
    for row in table.itertuples(index=False):
        rich_table.add_row(*(format_number(v, 1 if c == "volume" else 0)
                             if c in NUMERIC_SUMMARY else str(v)
                             for c, v in zip(table.columns, row, strict=True)))
    console.print(rich_table)
    if dataset.baseline_kind == "illustrative":
        console.print(_("[bold]Baseline volumes are ILLUSTRATIVE[/bold]: calibrated to the "
                        "tranche-1 provider counts, not real hospital volumes (see DATA.md)."))
    return EXIT_OK


#: the numeric columns of ``herschik data summary``, right-aligned in the language's numbers
NUMERIC_SUMMARY = ("providers", "below_norm", "volume")


def cmd_compare(args: argparse.Namespace) -> int:
    from herschik.scenarios.compare import CompareError, compare_runs, write_comparison
    from rich.table import Table

    from herschik.atomic import check_output_dir

    if args.out is not None:  # before any work: never a folder of the user's files
        check_output_dir(args.out, kind="comparison")
    try:
        tables = compare_runs(args.run_a, args.run_b)
    except CompareError as error:
        raise UsageError(str(error)) from None
    from herschik.scenarios.report.figures import SHARE_KPIS, kpi_label
    from herschik.scenarios.report.format import status_word

    console = make_console()
    kpi = Table(title=_("KPIs: A = {a}, B = {b}", a=args.run_a, b=args.run_b))
    for column in (_("KPI"), "A", "B", "B - A"):
        kpi.add_column(column, justify="left" if column not in ("A", "B", "B - A") else "right")
    for row in tables["kpi_differences"].itertuples(index=False):
        share = str(row.kpi) in SHARE_KPIS  # a share reads as a percentage
        kpi.add_row(kpi_label(str(row.kpi)), _cell(row.run_a, share), _cell(row.run_b, share),
                    _cell(row.difference, share))
    console.print(kpi)
    hosp = tables["hospital_differences"]
    if hosp.empty:
        console.print(_("No hospital differs in status or volume after."))
    else:
        table = Table(title=_("Hospital changes that differ ({count})", count=len(hosp)))
        for column in (_("site"), _("name"), _("treatment"), _("status A"), _("status B"),
                       _("volume A"), _("volume B"), "B - A"):
            table.add_column(column)
        for r in hosp.itertuples(index=False):
            table.add_row(str(r.site_id), str(r.site_name), str(r.intervention_id),
                          status_word(str(r.status_a)), status_word(str(r.status_b)),
                          _cell(r.volume_after_a), _cell(r.volume_after_b),
                          _cell(r.volume_difference))
        console.print(table)
    if args.out is not None:
        for path in write_comparison(tables, args.out):
            console.print(_("wrote {path}", path=path), markup=False)
    return EXIT_OK


def _cell(value: Any, share: bool = False) -> str:
    from herschik.scenarios.report.format import status_word

    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return format_percent(value) if share else format_number(value, 2)
    return status_word(str(value))


def cmd_matrix(args: argparse.Namespace) -> int:
    from herschik.atomic import check_output_file, output_lock

    check_output_file(args.out)  # before any work: never a device, FIFO, folder or link
    with output_lock(args.out):
        return _matrix_into(args)


def _matrix_into(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd
    from herschik.scenarios.assemble import travel_minutes

    from herschik.atomic import write_csv

    dataset = load_args_dataset(args, args.region)
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
    from herschik.scenarios.sweep.runner import DEFAULT_OUTPUTS, run_sweep

    regions = "all" if args.regions == "all" else [r for r in args.regions.split(",") if r]
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS")
    from herschik.geo.dataset import baseline_source_text

    # the first line: which world the runs describe
    print(baseline_source_text(baseline_source_of(args)), flush=True)
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
    print(_("{count} runs: {statuses}", count=len(runs), statuses=", ".join(
        f"{n} {status_label(s)}" for s, n in sorted(counts.items()))))
    print(_("wrote {path}", path=args.out / "runs.csv"))
    failed = int(counts.get("error", 0))
    if failed:
        codes = runs.attrs.get("error_exit_codes") or [EXIT_INTERNAL]
        print("herschik: error: " + _(
            "{failed} of {count} runs failed (status error; the message is in column error of "
            "{path})", failed=failed, count=len(runs), path=args.out / "runs.csv"),
            file=sys.stderr)
        return max(codes)
    return EXIT_OK


def cmd_network(args: argparse.Namespace) -> int:
    if args.network_command == "validate":
        return _network_validate(args)
    from herschik.atomic import check_output_file, output_lock

    check_output_file(args.out)  # before any work: never a device, FIFO, folder or link
    with output_lock(args.out):
        return _network_build_into(args)


def _network_build_into(args: argparse.Namespace) -> int:
    from herschik.geo.network import download_network, save_network

    from herschik.atomic import write_binary
    from herschik.errors import DataError

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

    from herschik.geo.validation import validate_network

    from herschik.errors import DataError

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
    from herschik.scenarios.app.server import MIN_PASSWORD_LENGTH, is_loopback, serve
    from herschik.scenarios.app.session import AppState

    if not is_loopback(args.host) and len(args.token or "") < MIN_PASSWORD_LENGTH:
        raise UsageError(f"--host {args.host} makes the app reachable from other machines: "
                         f"give --token PASSWORD (at least {MIN_PASSWORD_LENGTH} characters)")
    dataset = load_args_dataset(args)
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
    # HiGHS' banner is muted by pointing stdout away while the process' first Highs is built;
    # build it here, before the server's threads start, so no line of theirs can be lost
    from herschik.optimiser.backends import silence_highs_banner

    silence_highs_banner()
    try:
        serve(state, host=args.host, port=args.port, password=args.token)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: uvicorn has finished the requests in flight (an export's folder
        # is complete or absent), then re-raised the signal; exit 130 like every command.
        print("herschik app: stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        raise UsageError(
            f"--host {args.host} --port {args.port}: cannot listen ({error})"
        ) from None
    return EXIT_OK




def cmd_simulate(args: argparse.Namespace) -> int:
    """``herschik simulate``: simulated years of a solved plan (scenarios/simulate.py)."""
    import time

    from herschik.scenarios.simulate import simulate_run, write_simulation
    from rich.table import Table

    started = time.perf_counter()
    result = simulate_run(args.run_dir, args.years, args.seed, args.overdispersion)
    elapsed = time.perf_counter() - started
    out = args.out if args.out is not None else args.run_dir / "simulation"
    written = write_simulation(result, out)
    console = make_console()
    period = result.settings["norm_period_years"]
    dispersion = f"{args.overdispersion:g}"
    table = Table(title=_("{years} simulated years (seed {seed}, over-dispersion {dispersion}; "
                          "{seconds} s): kept hospitals with a norm",
                          years=format_number(args.years, 0), seed=args.seed,
                          dispersion=dispersion,
                          seconds=format_number(elapsed)))
    columns = [_("site"), _("name"), _("treatment"), _("norm"), _("expected"), "p05", "p50",
               "p95", _("years below norm"), _("exact odds")]
    if period > 1:
        columns.insert(9, _("{years}-yr periods below", years=period))
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < 3 else "right")
    shown = result.table[result.table["norm"].notna()]
    for r in shown.itertuples(index=False):
        cells = [str(r.site_id), str(r.site_name), str(r.intervention_id), f"{r.norm:g}",
                 format_number(r.expected_volume), format_number(r.p05, 0),
                 format_number(r.p50, 0), format_number(r.p95, 0),
                 format_percent(r.share_years_below_norm)]
        if period > 1:
            cells.append("" if r.share_periods_below_norm is None
                         or r.share_periods_below_norm != r.share_periods_below_norm
                         else format_percent(r.share_periods_below_norm))
        cells.append(format_percent(r.p_meet_norm_period))
        table.add_row(*cells)
    console.print(table)
    for path in written:
        console.print(_("wrote {path}", path=path), markup=False)
    return EXIT_OK
