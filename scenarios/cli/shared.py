"""What the dataset-loading commands share: the dataset the flags name, loaded and validated,
and its baseline source line (``regions`` answers from the cache in dataset.py without these)."""

from __future__ import annotations

import argparse

from herschik.geo.dataset import Dataset, baseline_source_line, load_dataset, read_meta
from herschik.geo.schema import DEFAULT_DIR, MUNICIPALITIES_DIR
from herschik.scenarios.cli.dataset import dataset_source

from herschik.errors import UsageError


def load_args_dataset(args: argparse.Namespace, region: str | None = None) -> Dataset:
    """The dataset that ``--data`` / ``--areas`` (or ``--region example``) name, validated."""
    return load_dataset(dataset_source(args, region))


def baseline_source_of(args: argparse.Namespace) -> str:
    """The baseline source line of the data the flags name, from dataset.json alone."""
    if args.data is not None:
        if not args.data.is_dir():
            raise UsageError(f"--data {args.data}: not a folder")
        return baseline_source_line(read_meta(args.data))
    return baseline_source_line(read_meta(
        MUNICIPALITIES_DIR if args.areas == "municipalities" else DEFAULT_DIR))
