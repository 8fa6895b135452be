"""``herschik data``: ``summary`` (the baseline per region and treatment), ``export`` (the
dataset as files) and ``import-volumes`` (a planner's volume table -> a dataset)."""

from __future__ import annotations

import argparse
import json

from herschik.geo.dataset import baseline_source_text
from herschik.geo.dataset_export import export_dataset
from herschik.scenarios.cli.dataset import make_console
from herschik.scenarios.cli.shared import load_args_dataset
from herschik.scenarios.import_volumes import import_volumes, print_import, write_import
from rich.table import Table

from herschik.atomic import check_output_dir
from herschik.errors import EXIT_OK, UsageError
from herschik.i18n import _, format_number

#: the numeric columns of ``herschik data summary``, right-aligned in the language's numbers
NUMERIC_SUMMARY = ("providers", "below_norm", "volume")


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
        export_dataset(dataset, args.out)
        print(_("wrote dataset '{name}' to {path}", name=dataset.name, path=args.out))
        return EXIT_OK
    table = dataset.summary()
    table["volume"] = table["volume"].round(4)
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), indent=2))
        return EXIT_OK
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
