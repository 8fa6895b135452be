"""Folders of the checkout, independent of where a test file sits in tests/."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DATA = REPO_ROOT / "tests" / "data"
EXAMPLE_DATA = REPO_ROOT / "geo" / "data" / "example"
