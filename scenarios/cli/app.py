"""``herschik app``: the what-if web app (scenarios/app/) for one dataset, on one host and port."""

from __future__ import annotations

import argparse
import sys

from herschik.optimiser.backends import silence_highs_banner
from herschik.scenarios.app.server import MIN_PASSWORD_LENGTH, is_loopback, serve
from herschik.scenarios.app.session import AppState
from herschik.scenarios.cli.shared import load_args_dataset

from herschik.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError


def cmd_app(args: argparse.Namespace) -> int:
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
