"""``herschik matrix``: the travel-time matrix of one region's areas to the sites in or near it."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from herschik.scenarios.assemble import travel_minutes
from herschik.scenarios.cli.shared import load_args_dataset

from herschik.atomic import check_output_file, output_lock, write_csv
from herschik.errors import EXIT_OK, UnknownRegionError
from herschik.i18n import _, format_number


def cmd_matrix(args: argparse.Namespace) -> int:
    check_output_file(args.out)  # before any work: never a device, FIFO, folder or link
    with output_lock(args.out):
        return _matrix_into(args)


def _matrix_into(args: argparse.Namespace) -> int:
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
    print(_("wrote {count} travel times ({areas} areas x {sites} sites) to {out}",
            count=format_number(len(table), 0), areas=format_number(len(areas), 0),
            sites=format_number(len(site_ids), 0), out=args.out))
    return EXIT_OK
