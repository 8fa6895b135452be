"""Reliability (issue 12): the national run, concurrent writers, signals, special files, and
inputs that pass checks but would give wrong answers. One test (or more) per numbered item."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from herschik.scenarios.cli.main import main

from herschik.atomic import MARKER, folder_is_complete, output_lock
from tests.support.cli import FAST, HERSCHIK, one_error_line
from tests.support.paths import EXAMPLE_DATA, REPO_ROOT


def _solve_example(out: Path, *extra: str) -> int:
    return main(["solve", "--region", "example", "--out", str(out), *FAST, *extra])


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
    from herschik.scenarios.sweep.runner import run_sweep

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
        # hidden folders are a run's staging copy (complete before its rename, gone if killed)
        if any(folder_is_complete(p) for p in out.glob("runs/*") if not p.name.startswith(".")):
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
    finished = [p for p in (out / "runs").iterdir()
                if folder_is_complete(p) and not p.name.startswith(".")]
    assert 1 <= len(runs) < 16 and len(runs) == len(finished)
    assert set(runs["run_dir"]) == {f"runs/{p.name}" for p in finished}
    time.sleep(0.5)
    assert not any(_alive(w) for w in workers)


# --- 4. special files as --out ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
@pytest.mark.parametrize("command", ["matrix", "network"])
def test_out_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, command: str
) -> None:
    if kind == "fifo":
        target = tmp_path / "out.csv"
        os.mkfifo(target)
    elif kind == "device":
        target = Path("/dev/null")
    else:
        target = tmp_path / "folder"
        target.mkdir()
    before = os.stat(target)
    if command == "matrix":
        argv = ["matrix", "--region", "example", "--out", str(target)]
    else:
        argv = ["network", "build", "--osm", str(tmp_path / "x.osm"), "--out", str(target)]
    assert main(argv) == 2
    assert "--out" in one_error_line(capsys)
    after = os.stat(target)
    assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode)
    assert after.st_ino == before.st_ino  # not replaced by a regular file


def test_atomic_writer_refuses_a_device_and_leaves_no_temp(tmp_path: Path) -> None:
    from herschik.atomic import write_text
    from herschik.errors import OutputError

    with pytest.raises(OutputError):
        write_text(Path("/dev/null"), "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not list(Path("/dev").glob(".null.*"))


# --- 6. unknown ids in the solve parameters -----------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "field", "name"),
    [
        ('[[force_close]]\nsite_id = "NOPE"\n', "force_close[0]", "NOPE"),
        ('[[force_keep]]\nsite_id = "EX-UMC"\nintervention_id = "hn_neww"\n',
         "force_keep[0]", "hn_neww"),
        ('[[capacity]]\nsite_id = "EX-GONE"\nmax_patients = 10\n', "capacity[0]", "EX-GONE"),
        ('bundles = [["hn_new", "pancreas_nope"]]\n', "bundles[0]", "pancreas_nope"),
        ('closures = ["EX-NOWHERE"]\n', "closures", "EX-NOWHERE"),
    ],
)
def test_unknown_ids_exit_2_naming_the_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, field: str, name: str
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(toml)
    out = tmp_path / "run"
    assert _solve_example(out, "--scenario", str(scenario)) == 2
    line = one_error_line(capsys)
    assert field in line and name in line and "unknown" in line
    assert not out.exists()


def test_site_of_another_region_is_warned_not_ignored_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('closures = ["Z100201"]\n[[force_keep]]\nsite_id = "Z100101"\n')
    out = tmp_path / "run"
    code = main(["solve", "--region", "west", "--areas", "municipalities", "--out", str(out),
                 "--scenario", str(scenario), *FAST])
    assert code == 0
    warnings = json.loads((out / "summary.json").read_text())["warnings"]
    assert any("Z100201" in w and "closures" in w for w in warnings)
    assert any("Z100101" in w and "force_keep" in w for w in warnings)
    assert "Z100201" in capsys.readouterr().out


# --- 9. scenario values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["--margin", "inf"], ["--margin", "nan"], ["--max-travel", "inf"], ["--time-limit", "-1"]],
)
def test_non_finite_flags_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert _solve_example(tmp_path / "run", *argv) == 2
    assert argv[0].lstrip("-").replace("-", "_") in one_error_line(capsys)


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("margin = true\n", "margin"),
        ('margin = "0.1"\n', "margin"),
        ("norm_multiplier = inf\n", "norm_multiplier"),
        ("norm_multiplier = nan\n", "norm_multiplier"),
        ("growth_pct_per_year = 1e308\ntarget_year = 2035\n", "growth_pct_per_year"),
        ("growth_pct_per_year = 60\ntarget_year = 2200\n", "multiplies demand"),
        ("target_year = 1900\n", "before base_year"),
        ("[objective_weights]\ntravel = -1\n", "objective_weights"),
        ("[treatments.hn_new]\nmargin = inf\n", "treatments.hn_new.margin"),
        ("[[capacity]]\nsite_id = \"EX-UMC\"\nmax_patients = inf\n", "capacity"),
        ("single_sourcing = 1\n", "single_sourcing"),
    ],
)
def test_bad_scenario_values_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, field: str
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(toml)
    out = tmp_path / "run"
    assert _solve_example(out, "--scenario", str(scenario)) == 2
    assert field in one_error_line(capsys)
    assert not out.exists()


def test_summary_json_is_strict_json(tmp_path: Path) -> None:
    from herschik.atomic import write_json

    write_json(tmp_path / "s.json", {"a": float("inf"), "b": [float("nan"), 1.0]})
    text = (tmp_path / "s.json").read_text()
    strict = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert strict == {"a": None, "b": [None, 1.0]}


# --- 10. environment problems are exit 2, a closed pipe is quiet ------------------------------


def test_broken_pipe_exits_quietly(tmp_path: Path) -> None:
    result = subprocess.run(
        f"{sys.executable} -m herschik.scenarios.cli regions --json | head -c 1",
        shell=True, capture_output=True, text=True, timeout=120,
        executable="/bin/bash",
    )
    assert result.stdout == "["
    assert result.stderr == ""


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS", "EACCES"])
def test_disk_full_or_read_only_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    errno_name: str,
) -> None:
    import errno

    import herschik.atomic

    def fail(*args: object, **kwargs: object) -> None:
        code = getattr(errno, errno_name)
        raise OSError(code, os.strerror(code), str(args[0]))

    monkeypatch.setattr(herschik.atomic, "write_bytes", fail)
    out = tmp_path / "run"
    assert _solve_example(out) == 2
    assert os.strerror(getattr(errno, errno_name)) in one_error_line(capsys)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_unreachable_dask_scheduler_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "grid.toml"
    scenario.write_text(SWEEP_TOML)
    code = main(["sweep", str(scenario), "--out", str(tmp_path / "sw"), "--regions", "example",
                 "--data", str(EXAMPLE_DATA), "--executor", "dask",
                 "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "cannot reach the Dask scheduler" in err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "content", [b"", b"PK\x03\x04garbage", b"<osm><node id='x'/></osm>", b"\x00" * 64]
)
def test_malformed_network_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    network = tmp_path / ("net.osm" if content.startswith(b"<") else "net.npz")
    network.write_bytes(content)
    code = main(["matrix", "--region", "example", "--out", str(tmp_path / "m.csv"),
                 "--network", str(network), "--areas", "municipalities"])
    assert code == 2
    assert "net." in one_error_line(capsys)


def test_download_without_internet_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    code = main(["network", "build", "--download", "Utrecht, Netherlands",
                 "--out", str(tmp_path / "n.npz")])
    assert code == 2
    assert "needs internet" in one_error_line(capsys)
    assert not (tmp_path / "n.npz").exists()


# --- 11. --out replaces only herschik's folders, and is checked first ---------------------------


def test_foreign_folder_with_a_summary_is_not_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import herschik.scenarios.assemble
    import herschik.scenarios.cli.solve

    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "thesis.docx").write_text("years of work")

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("solved before --out was checked")

    monkeypatch.setattr(herschik.scenarios.assemble, "build_instance", must_not_run)
    # a cached instance would skip build_instance: the cache must not be reached either
    # (patched where `herschik solve` looks it up: cli/solve.py imports it at its top)
    monkeypatch.setattr(herschik.scenarios.cli.solve, "cached_build_instance", must_not_run)
    assert _solve_example(out) == 2
    assert "not written by herschik" in one_error_line(capsys)
    assert (out / "thesis.docx").read_text() == "years of work"


def test_herschik_folder_is_replaced_and_marked(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _solve_example(out) == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["written_by"] == "herschik" and "summary.json" in marker["files"]
    (out / "stale.txt").write_text("from an earlier run")
    assert _solve_example(out, "--margin", "0.1") == 0
    assert not (out / "stale.txt").exists()  # replaced as a whole
    assert folder_is_complete(out)


# --- 12. sweeps: failed runs, huge grids, endless extends ---------------------------------------


def test_sweep_whose_runs_fail_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import herschik.scenarios.sweep.task

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("solver exploded")

    # a sweep run solves in its worker's what-if session (scenarios/sweep/task.py)
    monkeypatch.setattr(herschik.scenarios.sweep.task, "solve_in_session", broken)
    scenario = tmp_path / "grid.toml"
    scenario.write_text(SWEEP_TOML)
    out = tmp_path / "sw"
    code = main(["sweep", str(scenario), "--out", str(out), "--regions", "example",
                 "--data", str(EXAMPLE_DATA), "--workers", "1"])
    assert code == 3
    assert "2 of 2 runs failed" in capsys.readouterr().err
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["status"]) == {"error"} and runs["error"].str.contains("exploded").all()


def test_huge_grid_is_refused_before_it_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from herschik.scenarios.scenario import file as scenario_file

    margins = ", ".join(str(i / 100) for i in range(100))
    multipliers = ", ".join(str(1 + i / 100) for i in range(100))
    limits = ", ".join(str(30 + i) for i in range(100))
    scenario = tmp_path / "huge.toml"
    scenario.write_text(
        f"[grid]\nmargin = [{margins}]\nnorm_multiplier = [{multipliers}]\n"
        f"max_travel = [{limits}]\n"
    )
    resolved: list[int] = []
    original = scenario_file.ScenarioSpec._resolve

    def counting(self: object, *args: object, **kwargs: object) -> object:
        resolved.append(1)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scenario_file.ScenarioSpec, "_resolve", counting)
    code = main(["sweep", str(scenario), "--out", str(tmp_path / "sw"), "--regions", "example",
                 "--data", str(EXAMPLE_DATA)])
    assert code == 2
    assert "1,000,000 runs" in one_error_line(capsys)
    assert not resolved


@pytest.mark.parametrize("kind", ["device", "fifo", "huge"])
def test_extends_of_a_device_fifo_or_huge_file_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    if kind == "device":
        parent = "/dev/zero"
    elif kind == "fifo":
        os.mkfifo(tmp_path / "pipe.toml")  # nobody writes: reading it would block forever
        parent = "pipe.toml"
    else:
        (tmp_path / "big.toml").write_text("# " + "x" * (2 << 20) + "\n")
        parent = "big.toml"
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'extends = "{parent}"\n')
    start = time.monotonic()
    assert _solve_example(tmp_path / "run", "--scenario", str(scenario)) == 2
    assert time.monotonic() - start < 60
    line = one_error_line(capsys)
    assert "not a regular file" in line or "larger than" in line


# --- 13. one atomic writer, one permission ----------------------------------------------------


def test_every_written_file_has_the_same_ordinary_permissions(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["solve", "--region", "example", "--out", str(out), "--xlsx", "--geojson"]) == 0
    scenario = tmp_path / "grid.toml"
    scenario.write_text(SWEEP_TOML)
    sweep = tmp_path / "sw"
    assert main(["sweep", str(scenario), "--out", str(sweep), "--regions", "example",
                 "--data", str(EXAMPLE_DATA), "--workers", "1", "--plot"]) == 0
    mask = os.umask(0)
    os.umask(mask)
    expected = 0o666 & ~mask
    files = [p for p in [*out.rglob("*"), *sweep.rglob("*")] if p.is_file()]
    names = {p.name for p in files}
    assert {"overview.png", "report.html", "results.xlsx", "runs.parquet"} <= names
    assert any(p.parent.name == "plots" for p in files)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert {m for m in modes.values()} == {expected}, modes


def test_no_hand_written_atomic_copies_remain() -> None:
    """One writer: only herschik/atomic.py renames temporary files into place."""
    root = REPO_ROOT
    allowed = {
        "herschik/atomic.py",
        "geo/dataset_export.py",  # moves a staged dataset export into the user's existing folder
        "optimiser/backends.py",  # a temporary CBC log, not a result
    }
    offenders = []
    for folder in ("geo", "scenarios", "optimiser", "herschik"):
        for path in (root / folder).rglob("*.py"):
            name = path.relative_to(root).as_posix()
            text = path.read_text(encoding="utf-8")
            if name not in allowed and any(
                pattern in text for pattern in ("os.replace(", "mkstemp(", ".replace(path)")
            ):
                offenders.append(name)
    assert offenders == []


# --- 5. ids never become paths ------------------------------------------------------------------


def _exported(tmp_path: Path, source: str = "example") -> Path:
    from herschik.geo.dataset import load_dataset
    from herschik.geo.dataset_export import export_dataset

    folder = tmp_path / f"data_{source}"
    export_dataset(load_dataset(source), folder)
    return folder


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("file", "old", "new", "field"),
    [
        ("regions.csv", "example,", "x/../../../../tmp/ESCAPED,", "region_id"),
        ("sites.csv", "EX-UMC,", ".hidden,", "site_id"),
        ("areas.csv", "EXA001,", "EXA\\001,", "area_id"),
        ("treatments.csv", "hn_new,", "../hn_new,", "intervention_id"),
        ("regions.csv", "example,", "all,", "region_id"),
    ],
)
def test_ids_that_could_be_paths_are_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, old: str, new: str, field: str
) -> None:
    folder = _exported(tmp_path)
    _replace(folder / file, old, new)
    assert main(["regions", "--data", str(folder)]) == 2
    line = one_error_line(capsys)
    assert file in line and field in line


def test_sweep_plot_names_stay_inside_out(tmp_path: Path) -> None:
    from herschik.scenarios.sweep.plot import plot_sweep

    runs = pd.DataFrame({
        "region_id": ["x/../../../escaped"] * 2, "scenario": ["s[a=1]", "s[a=2]"],
        "p90_extra_min": [2.0, 3.0],
        "scenario_index": [0, 1], "status": ["optimal"] * 2, "mean_extra_min": [1.0, 2.0],
        "providers_after_total": [5, 4], "providers_before_total": [6, 6],
        "patients_moved": [10.0, 20.0], "objective_value": [1.0, 2.0], "margin": [0.0, 0.1],
    })
    out = tmp_path / "out"
    paths = plot_sweep(runs, out)
    assert paths, "a plot is drawn"
    for path in paths:
        assert path.resolve().is_relative_to(out.resolve())
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.glob("*.png"))


# --- 8. geography, dataset side (the network side belongs to the OSM work) ----------------------


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _exported(tmp_path_factory.mktemp("nl"), "municipalities")


def _copy(folder: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "data"
    shutil.copytree(folder, target)
    return target


def _move_row(path: Path, key: str, x: float, y: float) -> None:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    first = table.columns[0]
    row = table.index[table[first] == key][0]
    table.loc[row, "x"], table.loc[row, "y"] = f"{x}", f"{y}"
    table.to_csv(path, index=False)


def test_embedded_datasets_pass_the_geography_check() -> None:
    from herschik.geo.dataset import load_dataset
    from herschik.geo.geography import check_geography

    for source in (None, "municipalities"):
        dataset = load_dataset(source)
        check_geography(dataset.sites, dataset.areas)


@pytest.mark.parametrize(
    ("file", "key", "xy", "expected"),
    [
        ("sites.csv", "Z100101", (50_000.0, 500_000.0), "1 of 111 points lie more than 2 km"),
        ("areas.csv", "GM0363", (150_000.0, 530_000.0), "1 of 345 points lie more than 2 km"),
        ("sites.csv", "Z100101", (5_000.0, 390_000.0), "from land in the Netherlands"),
    ],
)
def test_points_in_the_sea_or_a_lake_exit_2_with_count_and_example(
    national: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    file: str, key: str, xy: tuple[float, float], expected: str,
) -> None:
    folder = _copy(national, tmp_path)
    _move_row(folder / file, key, *xy)
    assert main(["regions", "--data", str(folder)]) == 2
    line = one_error_line(capsys)
    assert file in line and expected in line and key in line


def test_site_placed_in_another_region_exits_2(
    national: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(national, tmp_path)
    sites = pd.read_csv(folder / "sites.csv", dtype=str)
    midden = sites.loc[sites["region_id"] == "midden", "site_id"].iloc[0]
    _move_row(folder / "sites.csv", midden, 233_000.0, 582_000.0)  # the city of Groningen
    assert main(["regions", "--data", str(folder)]) == 2
    line = one_error_line(capsys)
    assert "sites.csv" in line and "region_id" in line and f"{midden} in midden" in line
