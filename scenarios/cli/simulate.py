"""``herschik simulate``: simulated years of a solved plan and how often each kept hospital
falls below its norm."""

from __future__ import annotations

import argparse
import time

from herschik.scenarios.cli.dataset import make_console
from herschik.scenarios.simulate import simulate_run, write_simulation
from rich.table import Table

from herschik.errors import EXIT_OK
from herschik.i18n import _, format_number, format_percent


def cmd_simulate(args: argparse.Namespace) -> int:
    """``herschik simulate``: simulated years of a solved plan (scenarios/simulate.py)."""
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
