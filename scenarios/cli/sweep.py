"""``herschik sweep``: every run of a scenario grid, locally or on a Dask cluster."""

from __future__ import annotations

import argparse
import sys

from herschik.geo.dataset import baseline_source_text
from herschik.scenarios.cli.shared import baseline_source_of
from herschik.scenarios.sweep.runner import DEFAULT_OUTPUTS, run_sweep

from herschik.errors import EXIT_INTERNAL, EXIT_OK, UsageError
from herschik.i18n import _, status_label


def cmd_sweep(args: argparse.Namespace) -> int:
    regions = "all" if args.regions == "all" else [r for r in args.regions.split(",") if r]
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS")
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
