"""The installed import names live under one ``herschik`` namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("generic", ["geo", "optimiser", "scenarios", "benchmarks", "tools"])
def test_no_generic_top_level_package_outside_the_checkout(tmp_path: Path, generic: str) -> None:
    run = subprocess.run([sys.executable, "-c", f"import {generic}"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert "ModuleNotFoundError" in run.stderr


def test_front_door_imports_outside_the_checkout(tmp_path: Path) -> None:
    code = ("import herschik, herschik.geo, herschik.optimiser, herschik.scenarios; "
            "print(herschik.__version__)")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()


def test_every_package_folder_is_installed() -> None:
    """Regression: optimiser/rows/ was missing from pyproject's package list, so a wheel (a
    plain `pip install .`) had no herschik.optimiser.rows and could not solve; the editable
    install of the README hid it."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
        import tomli as tomllib  # type: ignore[no-redef]

    root = Path(__file__).resolve().parents[2]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for name, folder in setuptools["package-dir"].items():
        for init in (root / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(root / folder).parts
            found.add(".".join([name, *relative]))
    assert found - listed == set()
    assert listed - found == set()
