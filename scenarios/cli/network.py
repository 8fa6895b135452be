"""``herschik network``: ``build`` a road network (an OSM extract or a download) and
``validate`` one against reference travel times."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from herschik.geo.network import download_network, save_network
from herschik.geo.osm import read_osm
from herschik.geo.validation import validate_network

from herschik.atomic import check_output_file, output_lock, write_binary
from herschik.errors import EXIT_OK, DataError, EnvironmentProblem, UsageError, one_line
from herschik.i18n import _, format_number


def cmd_network(args: argparse.Namespace) -> int:
    if args.network_command == "validate":
        return _network_validate(args)
    check_output_file(args.out)  # before any work: never a device, FIFO, folder or link
    with output_lock(args.out):
        return _network_build_into(args)


def _network_build_into(args: argparse.Namespace) -> int:
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
        try:
            net = read_osm(args.osm)
        except ValueError as error:
            raise DataError(str(args.osm), None, None, str(error).split(": ", 1)[-1]) from None
        nodes, edges = net.n_nodes, net.n_edges
        facts = " " + _(
            "({km} km of road, {dropped} nodes outside the largest strongly connected "
            "component dropped, {turns} turn restrictions not applied)",
            km=format_number(net.length.sum() / 2000, 0),
            dropped=format_number(net.meta["nodes_outside_largest_component"], 0),
            turns=format_number(net.meta["turn_restrictions_ignored"], 0))
    write_binary(args.out, lambda handle: save_network(net, handle))
    print(_("wrote network with {nodes} nodes and {edges} edges to {out}", nodes=nodes,
            edges=edges, out=args.out) + facts)
    return EXIT_OK


def _network_validate(args: argparse.Namespace) -> int:
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
