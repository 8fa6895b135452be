"""Reliability (issue 12): the national run, concurrent writers, signals, special files, and
inputs that pass checks but would give wrong answers. One test (or more) per numbered item."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from herschik.scenarios.atomic import folder_is_complete, output_lock
from herschik.scenarios.cli import main

HERSCHIK = [sys.executable, "-m", "herschik.scenarios.cli"]
EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "geo" / "data" / "example"
FAST = ["--no-maps", "--no-report"]


def _solve_example(out: Path, *extra: str) -> int:
    return main(["solve", "--region", "example", "--out", str(out), *FAST, *extra])


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


# --- 1. the national CLI run -------------------------------------------------------------------


def test_national_run_writes_maps_and_report(tmp_path: Path) -> None:
    """`solve --region all` crashed in geo/maps.py (an area's patients reach sites of several
    regions, so area ids repeat in the per-area table)."""
    out = tmp_path / "nl"
    code = main(
        ["solve", "--region", "all", "--areas", "municipalities", "--max-travel", "90",
         "--out", str(out)]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["region_id"] == "all" and summary["status"] in ("optimal", "feasible")
    maps = sorted(p.name for p in (out / "maps").glob("*.png"))
    assert "overview.png" in maps and len(maps) >= 10
    assert (out / "report.html").stat().st_size > 10_000
    assert folder_is_complete(out)


def test_map_extra_travel_is_one_patient_weighted_value_per_area() -> None:
    from herschik.geo.maps import _extra_per_area

    rows = pd.DataFrame(
        {"area_id": ["a", "a", "b"], "patients": [1.0, 3.0, 2.0], "extra_min": [10.0, 2.0, 5.0]}
    )
    extra = _extra_per_area(rows)
    assert extra.index.is_unique
    assert extra["a"] == pytest.approx((10 + 6) / 4) and extra["b"] == 5.0


# --- 2. concurrent writers ----------------------------------------------------------------------


def test_second_writer_of_a_locked_out_folder_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with output_lock(out):
        result = subprocess.run(
            [*HERSCHIK, "solve", "--region", "example", "--out", str(out), *FAST],
            capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 2, result.stderr
    assert "another herschik process is writing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
    assert _solve_example(out) == 0  # the lock is released with its holder
    assert not list(tmp_path.glob(".run.lock"))


def test_two_solves_racing_into_one_folder_never_tear_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [*HERSCHIK, "solve", "--region", "example", "--out", str(out), *FAST]
    for _ in range(3):
        processes = [
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        codes = [p.wait(timeout=180) for p in processes]
        assert set(codes) <= {0, 2} and 0 in codes, [p.stderr.read() for p in processes]
        assert folder_is_complete(out)
        assert (out / "site_volumes.csv").exists() and (out / "summary.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


SWEEP_TOML = """
name = "rel"
[grid]
margin = [0.0, 0.1]
"""


def _sweep(tmp_path: Path, toml: str = SWEEP_TOML, **kwargs: object) -> pd.DataFrame:
    from herschik.scenarios.sweep import run_sweep

    scenario = tmp_path / "grid.toml"
    scenario.write_text(toml)
    return run_sweep(
        scenario, tmp_path / "sweep", regions="example", workers=1, dataset_source=EXAMPLE_DATA,
        progress=False, **kwargs,  # type: ignore[arg-type]
    )


def test_sweep_repairs_a_torn_run_folder(tmp_path: Path) -> None:
    first = _sweep(tmp_path)
    assert first.attrs["solved"] == 2
    torn = tmp_path / "sweep" / first.loc[0, "run_dir"]
    (torn / "site_volumes.csv").unlink()  # summary.json present, a contract file missing
    again = _sweep(tmp_path)
    assert again.attrs["solved"] == 1 and again.attrs["skipped"] == 1
    assert folder_is_complete(torn) and (torn / "site_volumes.csv").exists()


@contextlib.contextmanager
def _locked_by_another_process(target: Path) -> Iterator[None]:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom herschik.atomic import output_lock\n"
         f"with output_lock({str(target)!r}):\n    print('held', flush=True)\n"
         "    sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.communicate("", timeout=30)


def test_second_sweep_into_a_locked_folder_is_refused(tmp_path: Path) -> None:
    from herschik.errors import OutputError, exit_code_for

    with _locked_by_another_process(tmp_path / "sweep"), pytest.raises(OutputError) as caught:
        _sweep(tmp_path)
    assert exit_code_for(caught.value) == 2
    assert "another herschik process" in str(caught.value)
    assert _sweep(tmp_path).attrs["solved"] == 2  # released when its holder ends


# --- 3. sweep signals -----------------------------------------------------------------------------

SIGNAL_TOML = """
name = "sig"
[grid]
margin = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35]
objective = ["travel", "providers"]
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_sweep(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    scenario = tmp_path / "grid.toml"
    scenario.write_text(SIGNAL_TOML)
    out = tmp_path / "sweep"
    process = subprocess.Popen(
        [*HERSCHIK, "sweep", str(scenario), "--out", str(out), "--regions", "example",
         "--workers", "2", "--data", str(EXAMPLE_DATA)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return process, out


def _wait_for_first_run(out: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(folder_is_complete(p) for p in out.glob("runs/*")):
            return
        time.sleep(0.05)
    raise AssertionError("no run finished")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sweep_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    process, out = _start_sweep(tmp_path)
    _wait_for_first_run(out)
    workers = _children(process.pid)
    assert workers, "the sweep has pool workers"
    process.kill()  # kill -9 of the parent alone
    process.wait(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "orphaned sweep workers still running"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sweep_stops_promptly_on_a_signal_and_records_finished_runs(
    tmp_path: Path, sig: signal.Signals
) -> None:
    process, out = _start_sweep(tmp_path)
    _wait_for_first_run(out)
    workers = _children(process.pid)
    start = time.monotonic()
    process.send_signal(sig)  # to the parent alone
    code = process.wait(timeout=60)
    stopped_after = time.monotonic() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert code == 130, stderr
    assert stopped_after < 30, f"took {stopped_after:.1f} s to stop"
    assert "sweep interrupted" in stderr
    runs = pd.read_csv(out / "runs.csv")
    finished = [p for p in (out / "runs").iterdir() if folder_is_complete(p)]
    assert 1 <= len(runs) < 16 and len(runs) == len(finished)
    assert set(runs["run_dir"]) == {f"runs/{p.name}" for p in finished}
    time.sleep(0.5)
    assert not any(_alive(w) for w in workers)
