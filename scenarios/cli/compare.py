"""``herschik compare``: two result folders side by side (KPIs, hospitals that differ)."""

from __future__ import annotations

import argparse
from typing import Any

from herschik.scenarios.cli.dataset import make_console
from herschik.scenarios.compare import CompareError, compare_runs, write_comparison
from herschik.scenarios.report.figures import SHARE_KPIS, kpi_label
from herschik.scenarios.report.format import status_word
from rich.table import Table

from herschik.atomic import check_output_dir
from herschik.errors import EXIT_OK, UsageError
from herschik.i18n import _, format_number, format_percent


def cmd_compare(args: argparse.Namespace) -> int:
    if args.out is not None:  # before any work: never a folder of the user's files
        check_output_dir(args.out, kind="comparison")
    try:
        tables = compare_runs(args.run_a, args.run_b)
    except CompareError as error:
        raise UsageError(str(error)) from None
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
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return format_percent(value) if share else format_number(value, 2)
    return status_word(str(value))
