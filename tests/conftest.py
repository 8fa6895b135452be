"""Shared fixtures of the test suite (only fixtures: the helpers live in tests/support/).

- ``make_result``: the hand-built result of tests/support/hand_result.py (no solver).
- ``parse_report`` / ``report_tables``: headings, tables and images of a report.html.
- ``chromium``: runs Debian's headless Chromium (skipped locally when absent, fails under CI).
- ``brute_force``: the independent reference solver of tests/support/bruteforce.py, with
  ``tiny(seed)`` instances (tests/support/instances.py), ``reference``, ``compare`` and
  ``assert_matches``.
- ``noordoost_instance``: the region with the hardest sub-problems, on the embedded default.
"""

from __future__ import annotations

import subprocess
import types
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from herschik.optimiser.instance import Instance

from tests.support import bruteforce, hand_result, report_html
from tests.support.chromium import require_chromium, run_chromium
from tests.support.instances import random_instance


@pytest.fixture(scope="session")
def make_result() -> Callable[..., tuple[dict, pd.DataFrame, pd.DataFrame,
                                         hand_result.FakeDataset]]:
    """``make_result(region_id="midden")``: a fresh hand-built result each call."""
    return hand_result.make_result


@pytest.fixture(scope="session")
def parse_report() -> Callable[[str], report_html.ReportStructure]:
    return report_html.parse_report


@pytest.fixture(scope="session")
def report_tables() -> Callable[[report_html.ReportStructure, str], list[dict]]:
    """``report_tables(parsed, cls)``: the tables of that class, in page order."""
    return report_html.report_tables


@pytest.fixture
def chromium(tmp_path: Path) -> Callable[[list[str]], subprocess.CompletedProcess]:
    """``chromium(args)``: run headless Chromium (own profile below tmp_path)."""
    require_chromium()
    return lambda args: run_chromium(args, tmp_path)


@pytest.fixture(scope="session")
def brute_force() -> types.SimpleNamespace:
    """``tiny(seed) -> (instance, params)``, ``reference(instance, params, objective)`` (None if
    infeasible), ``compare(instance, solution, reference, objective)`` and
    ``assert_matches(instance, params, objective)`` (solve, then all of the above)."""
    return types.SimpleNamespace(tiny=random_instance, reference=bruteforce.reference,
                                 compare=bruteforce.compare,
                                 assert_matches=bruteforce.assert_matches)


@pytest.fixture(scope="session")
def noordoost_instance() -> Instance:
    """Noordoost on the embedded districts dataset (the region with the hardest sub-problems)."""
    import herschik

    return herschik.build_instance(herschik.load_dataset(None), "noordoost")
