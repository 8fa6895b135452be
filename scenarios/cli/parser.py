"""The ``herschik`` argument parser: subcommands and their flags (reference: docs/CLI.md),
and :data:`COMMANDS`, the module and function that run each subcommand.

The ``solve`` parameter flags are derived from :class:`SolveParams`
(scenarios/scenario/param_flags.py, which loads pydantic); they are added only when the parser
is built for ``solve`` (or for every command), so that ``herschik --help`` and
``herschik regions`` never import the solver stack.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from types import ModuleType

from herschik import __version__
from herschik.errors import UsageError
from herschik.i18n import LANGUAGES

#: subcommand -> (module, function): each command's module is imported only when it runs, so a
#: light command does not pay for the libraries of the heavy ones.
COMMANDS = {
    "regions": ("herschik.scenarios.cli.dataset", "cmd_regions"),
    "data": ("herschik.scenarios.cli.data", "cmd_data"),
    "solve": ("herschik.scenarios.cli.solve", "cmd_solve"),
    "matrix": ("herschik.scenarios.cli.matrix", "cmd_matrix"),
    "sweep": ("herschik.scenarios.cli.sweep", "cmd_sweep"),
    "network": ("herschik.scenarios.cli.network", "cmd_network"),
    "compare": ("herschik.scenarios.cli.compare", "cmd_compare"),
    "simulate": ("herschik.scenarios.cli.simulate", "cmd_simulate"),
    "app": ("herschik.scenarios.cli.app", "cmd_app"),
}
#: ``build_parser(EVERY_COMMAND)``: the complete parser (documentation, tests).
EVERY_COMMAND = None


def command_module(command: str) -> ModuleType:
    """The module that runs ``command`` (imported on first use)."""
    return importlib.import_module(COMMANDS[command][0])


def command_in(argv: list[str]) -> str:
    """The subcommand named by ``argv`` (its first word), or ``""`` when there is none."""
    return argv[0] if argv and argv[0] in COMMANDS else ""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


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
    _lang(parser)


def _lang(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lang",
        choices=list(LANGUAGES),
        default=None,
        help="language of the console, report, workbook and app: nl (Dutch) or en (English); "
        "default: Dutch when the locale is Dutch (LANGUAGE, LC_ALL, LC_MESSAGES, LANG), "
        "English otherwise",
    )


def build_parser(command: str | None = EVERY_COMMAND) -> argparse.ArgumentParser:
    """The parser; ``command`` (a subcommand, or ``""`` for none) skips the flags that only
    other subcommands need and that are costly to build (solve's parameter flags)."""
    parser = _Parser(
        prog="herschik",
        description="Plan the reallocation of complex hospital care: which hospitals keep which "
        "treatment, and where patients go, so that every provider clears its volume norm.",
    )
    parser.add_argument("--version", action="version", version=f"herschik {__version__}",
                        help="print the version and exit")
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
    imports = data_sub.add_parser(
        "import-volumes",
        help="build a dataset from a table of yearly volumes per hospital and treatment "
        "(CSV or XLSX) on top of the embedded data or --data",
    )
    imports.add_argument("file", metavar="FILE", type=Path,
                         help="CSV (comma or semicolon) or .xlsx with columns hospital/ziekenhuis, "
                         "treatment/behandeling, patients/aantal [, year/jaar]")
    imports.add_argument("--out", metavar="DIR", type=Path, required=True,
                         help="dataset folder to write (created or replaced as a whole)")
    imports.add_argument("--outside-share", metavar="auto|FRACTION", default="auto",
                         help="share of each hospital's volume from outside its region (0-0.9); "
                         "auto: estimated when the table covers every region, else 0")
    imports.add_argument("--decay", metavar="PER_MIN", type=float, default=None,
                         help="distance decay per minute of the flow model (default: fitted "
                         "to the table)")
    _common(imports)

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
    if command in (EVERY_COMMAND, "solve"):
        # Imported here, not at the top: every SolveParams field needs pydantic and the
        # optimiser's parameter model, which `herschik --help` and `regions` must not load.
        from herschik.scenarios.scenario.param_flags import add_param_flags

        add_param_flags(solve)
    solve.add_argument("--geojson", action="store_true", help="also write GeoJSON (EPSG:4326)")
    solve.add_argument("--xlsx", action="store_true", help="also write an Excel workbook")
    solve.add_argument("--no-maps", action="store_true", help="skip the PNG maps")
    solve.add_argument("--no-report", action="store_true", help="skip report.html")
    why = solve.add_mutually_exclusive_group()
    why.add_argument("--no-reasons", action="store_true",
                     help="skip why each lost role is lost (one exact re-solve per lost role; "
                          "hospital_changes.csv's reason columns stay empty)")
    why.add_argument("--reasons", action="store_true",
                     help="say why each lost role is lost also for --region all (off there by "
                          "default: each re-solve is a national sub-problem)")
    solve.add_argument("--pdf", action="store_true",
                       help="also write report.pdf (A4; printed by headless Chromium when "
                       "installed, else WeasyPrint); implies the report")
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
    _lang(compare)

    simulate = sub.add_parser(
        "simulate", help="draw years of random demand for a solved plan: odds of meeting the norm",
        description="Draw N years of demand per area around a result folder's plan (Poisson, "
        "or negative binomial with --overdispersion), route them by the plan's shares and "
        "report per hospital the distribution of yearly volumes and the share of years below "
        "the norm (docs/CONFIDENCE.md). Writes simulation.csv, simulation.json and a fan chart "
        "per treatment.")
    simulate.add_argument("run_dir", metavar="RUN_DIR", type=Path,
                          help="result folder of a solved plan (herschik solve --out)")
    simulate.add_argument("--years", metavar="N", type=_positive_int, default=10_000,
                          help="simulated years (default 10000)")
    simulate.add_argument("--seed", metavar="S", type=_non_negative_int, default=0,
                          help="random seed (default 0); same seed -> same output")
    simulate.add_argument("--overdispersion", metavar="PHI", type=float, default=0.0,
                          help="extra variance per area: variance = mean + PHI x mean^2 "
                          "(negative binomial); 0 (default) = Poisson")
    simulate.add_argument("--out", metavar="DIR", type=Path, default=None,
                          help="output folder (default RUN_DIR/simulation)")
    simulate.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    _lang(simulate)

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
    app.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default 127.0.0.1); any other address makes the app "
                     "reachable from other machines and needs --token")
    app.add_argument(
        "--token", metavar="PASSWORD",
        help="password every request must carry (HTTP Basic authentication, any user name; "
        "at least 16 characters); required with a --host other than loopback",
    )
    app.add_argument(
        "--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)"
    )
    app.add_argument("--region", metavar="ID", help="region shown first")
    _common(app)
    app.set_defaults(areas="municipalities")
    return parser


