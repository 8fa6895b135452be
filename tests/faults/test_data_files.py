"""Issue 27, item 5 (dataset files): every file a dataset reads is a regular file of bounded
size; numbers and ids are in their documented ranges. Each case exits 2 with one line naming
the file (and row and field), never hangs, never reads without end."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from herschik.scenarios.cli.main import main

from tests.support.cli import HERSCHIK
from tests.support.paths import EXAMPLE_DATA

pytestmark = pytest.mark.faults


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(EXAMPLE_DATA, folder)
    return folder


def _regions_in_subprocess(folder: Path) -> subprocess.CompletedProcess[str]:
    # In a child with a timeout: without the fix a FIFO blocks the open forever.
    return subprocess.run([*HERSCHIK, "regions", "--data", str(folder)], capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("file", ["dataset.json", "areas.gpkg", "sites.csv"])
def test_fifo_in_the_dataset_exits_2_at_once(tmp_path: Path, file: str) -> None:
    folder = _copy(tmp_path)
    (folder / file).unlink()
    os.mkfifo(folder / file)
    result = _regions_in_subprocess(folder)
    assert result.returncode == 2, result.stderr
    assert f"{file}: not a regular file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("file", ["dataset.json", "demand.csv"])
def test_link_to_dev_zero_exits_2_without_reading_it(tmp_path: Path, file: str) -> None:
    folder = _copy(tmp_path)
    (folder / file).unlink()
    (folder / file).symlink_to("/dev/zero")
    result = _regions_in_subprocess(folder)
    assert result.returncode == 2 and "not a regular file" in result.stderr


def test_link_to_a_regular_file_is_fine(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    real = tmp_path / "sites-elsewhere.csv"
    (folder / "sites.csv").rename(real)
    (folder / "sites.csv").symlink_to(real)
    assert main(["regions", "--data", str(folder)]) == 0


def test_oversized_file_is_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(tmp_path)
    meta = (folder / "dataset.json").read_text()
    (folder / "dataset.json").write_text(meta + " " * (1 << 20))  # valid JSON, over 1 MiB
    assert main(["regions", "--data", str(folder)]) == 2
    assert "dataset.json" in capsys.readouterr().err


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "make_bad", "expected"),
    [
        ("sites.csv", lambda t: t.replace("\nEX-UMC,", "\nEX\x1b[31m-UMC,", 1),
         "control characters"),
        ("sites.csv", lambda t: t.replace("\nEX-UMC,", "\nEX\u200b-UMC,", 1),
         "control characters"),
        ("sites.csv", lambda t: t.replace("\nEX-UMC,", "\n" + "S" * 300 + ",", 1),
         "300 characters"),
        ("demand.csv", None, "plausible maximum"),
    ],
)
def test_bad_ids_and_numbers_exit_2_naming_file_row_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, make_bad: object,
    expected: str,
) -> None:
    folder = _copy(tmp_path)
    path = folder / file
    text = path.read_text()
    if make_bad is None:  # demand of 1e300 patients: finite, but sums overflow to inf
        lines = text.splitlines()
        head, first = lines[0], lines[1].rsplit(",", 1)[0]
        path.write_text("\n".join([head, f"{first},1e300", *lines[2:]]) + "\n")
    else:
        assert callable(make_bad)
        new = make_bad(text)
        assert new != text
        path.write_text(new)
    assert main(["regions", "--data", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{file} row" in err and expected in err and "Traceback" not in err
