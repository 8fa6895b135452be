"""Which dataset the flags name (``--data``, ``--areas``, ``--region example``), its identity,
and ``herschik regions``.

``herschik regions`` is answered from the derived-data cache (:mod:`herschik.derived_cache`,
keyed by the bytes of the dataset's files and herschik's code) without loading pandas or the
dataset; only on a cache miss is the dataset loaded (and then cached for every command).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from herschik.geo.schema import dataset_folder
from rich.console import Console
from rich.table import Table

from herschik.derived_cache import entry_key, folder_digest, read_entry, write_entry
from herschik.errors import EXIT_OK, UsageError
from herschik.i18n import _, format_number

EXAMPLE = "example"


def dataset_source(args: argparse.Namespace, region: str | None = None) -> str | Path | None:
    """What ``geo.dataset.load_dataset`` loads for these flags: a folder (``--data``), the
    example (``--region example``), the municipalities or (None) the district default."""
    if args.data is not None:
        if not args.data.is_dir():
            raise UsageError(f"--data {args.data}: not a folder")
        return Path(args.data)
    if region == EXAMPLE:
        return EXAMPLE
    return "municipalities" if args.areas == "municipalities" else None


def source_identity(source: str | Path | None) -> str | None:
    """The identity of the dataset files behind ``source`` (None if they cannot be read)."""
    try:
        digest = folder_digest(dataset_folder(source))
        if source == "municipalities":  # derived from the district dataset: both identify it
            digest += ":" + folder_digest(dataset_folder(None))
        return digest
    except OSError:
        return None


def make_console() -> Console:
    return Console(highlight=False)


def _region_table(args: argparse.Namespace) -> tuple[str, list[dict[str, Any]]]:
    """(dataset name, one row per region), from the cache when the data are unchanged."""
    source = dataset_source(args)
    identity = source_identity(source)
    key = entry_key("regions", [identity]) if identity is not None else None
    payload = read_entry(key) if key is not None else None
    if payload is not None:
        try:
            entry = json.loads(payload)
            return str(entry["name"]), list(entry["rows"])
        except (ValueError, KeyError, TypeError):
            pass  # a damaged entry is rebuilt below
    # A miss loads the dataset (pandas, validation): imported here so that a hit does not.
    from herschik.geo.dataset import load_dataset

    dataset = load_dataset(source)
    name, rows = str(dataset.name), dataset.region_rows()
    if key is not None:
        write_entry(key, json.dumps({"name": name, "rows": rows}).encode())
    return name, rows


def cmd_regions(args: argparse.Namespace) -> int:
    name, rows = _region_table(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    table = Table(title=_("Regions of dataset '{name}'", name=name))
    headers = {"region_id": _("Region"), "region_name": _("Name"), "areas": _("Areas"),
               "sites": _("Hospitals"), "patients_per_year": _("Patients/yr")}
    for column, header in headers.items():
        table.add_column(header, justify="left" if column.startswith("region") else "right")
    for row in rows:
        table.add_row(str(row["region_id"]), str(row["region_name"]),
                      format_number(row["areas"], 0), format_number(row["sites"], 0),
                      format_number(row["patients_per_year"], 1))
    console = make_console()
    console.print(table)
    if args.data is None:
        console.print(_("Also built in: region 'example' (synthetic, for tests and demos)."))
    return EXIT_OK
