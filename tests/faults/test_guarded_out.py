"""Issue 27, item 1: every command that writes a folder goes through the one guarded writer.

A folder of the user's own files given as ``--out`` is refused with exit 2 and left exactly as
it was (names and bytes), for every command that writes output; a symbolic link as ``--out``
is refused and stays a link; herschik's own folders of the same kind are still replaced.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from herschik.scenarios.cli.main import main

from herschik.atomic import MARKER, folder_is_complete
from tests.support.cli import FAST
from tests.support.paths import EXAMPLE_DATA

pytestmark = pytest.mark.faults

SWEEP_TOML = 'name = "guard"\n[grid]\nmargin = [0.0, 0.1]\n'
#: file names a planner could keep in a folder, chosen to collide with what herschik writes
USER_FILES = {
    "sites.csv": "site_id,name\nmy,own\n",
    "travel_times.csv": "area_id,site_id,minutes\nA,B,1\n",
    "runs.csv": "my sweep notes\n",
    "summary.json": "{}\n",
    "kpi_differences.csv": "mine\n",
    "notes.txt": "years of work\n",
}


def _user_folder(path: Path) -> dict[str, bytes]:
    path.mkdir(parents=True)
    for name, text in USER_FILES.items():
        (path / name).write_text(text)
    return _snapshot(path)


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def _solved_run(tmp_path: Path, name: str = "run") -> Path:
    out = tmp_path / name
    assert main(["solve", "--region", "example", "--out", str(out), *FAST]) == 0
    return out


def _command(name: str, out: Path, tmp_path: Path) -> list[str]:
    """The command line of ``name`` writing to ``out``."""
    if name == "solve":
        return ["solve", "--region", "example", "--out", str(out), *FAST]
    if name == "sweep":
        scenario = tmp_path / "grid.toml"
        scenario.write_text(SWEEP_TOML)
        return ["sweep", str(scenario), "--out", str(out), "--regions", "example",
                "--data", str(EXAMPLE_DATA), "--workers", "1"]
    if name == "data export":
        return ["data", "export", "--data", str(EXAMPLE_DATA), "--out", str(out)]
    if name == "compare":
        a = _solved_run(tmp_path, "a")
        return ["compare", str(a), str(a), "--out", str(out)]
    if name == "matrix":
        return ["matrix", "--region", "example", "--data", str(EXAMPLE_DATA), "--out", str(out)]
    if name == "network build":
        return ["network", "build", "--osm", str(tmp_path / "none.osm"), "--out", str(out)]
    raise AssertionError(name)


COMMANDS = ["solve", "sweep", "data export", "compare", "matrix", "network build"]


@pytest.mark.parametrize("command", COMMANDS)
def test_folder_of_user_files_is_refused_and_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    out = tmp_path / "mine"
    before = _user_folder(out)
    argv = _command(command, out, tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert str(out) in line
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".mine")) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_symlinked_out_is_refused_and_stays_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    real = tmp_path / "real"
    real.mkdir()  # an empty folder: writing it through the link would be allowed otherwise
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    argv = _command(command, link, tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    assert "symbolic link" in _one_error_line(capsys)
    assert link.is_symlink() and list(real.iterdir()) == []


def test_compare_never_replaces_a_run_folder_by_a_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _solved_run(tmp_path, "a")
    before = _snapshot(a)
    capsys.readouterr()
    assert main(["compare", str(a), str(a), "--out", str(a)]) == 2
    assert "holds a herschik run folder" in _one_error_line(capsys)
    assert _snapshot(a) == before


def test_herschik_folders_of_the_same_kind_are_replaced(tmp_path: Path) -> None:
    a = _solved_run(tmp_path, "a")
    for argv in (
        ["data", "export", "--data", str(EXAMPLE_DATA), "--out", str(tmp_path / "d")],
        ["compare", str(a), str(a), "--out", str(tmp_path / "c")],
    ):
        out = Path(argv[-1])
        assert main(argv) == 0
        (out / "stale.csv").write_text("from before")
        assert main(argv) == 0  # a second time: the folder is ours, replaced whole
        assert not (out / "stale.csv").exists() and folder_is_complete(out)
    assert json.loads((tmp_path / "d" / MARKER).read_text())["kind"] == "dataset"
    assert json.loads((tmp_path / "c" / MARKER).read_text())["kind"] == "comparison"


def test_sweep_folder_is_marked_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    argv = _command("sweep", out, tmp_path)
    assert main(argv) == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "sweep"
    runs = (out / "runs.csv").read_bytes()
    assert main(argv) == 0
    assert (out / "runs.csv").read_bytes() == runs


def test_sweep_folder_written_before_markers_is_still_resumed(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    argv = _command("sweep", out, tmp_path)
    assert main(argv) == 0
    (out / MARKER).unlink()  # as written by herschik before sweep folders were marked
    assert main(argv) == 0
    assert (out / MARKER).is_file()
    (out / MARKER).unlink()
    (out / "notes.txt").write_text("mine")  # not only herschik's files: not adopted
    assert main(argv) == 2
    assert (out / "notes.txt").read_text() == "mine"


def test_data_export_then_load_round_trips_with_its_marker(tmp_path: Path) -> None:
    out = tmp_path / "d"
    assert main(["data", "export", "--data", str(EXAMPLE_DATA), "--out", str(out)]) == 0
    assert main(["solve", "--region", "example", "--data", str(out), "--out",
                 str(tmp_path / "r"), *FAST]) == 0


def test_app_export_is_staged_and_leaves_the_users_files(tmp_path: Path) -> None:
    from herschik.geo.dataset import load_dataset
    from herschik.scenarios.app.session import AppState, PlanSettings

    out = tmp_path / "exports"
    mine = out / "plan-001-example"
    before = _user_folder(mine)  # the user's folder under the name the export would take
    (out / "notes.txt").write_text("mine")
    state = AppState(load_dataset(EXAMPLE_DATA), out_dir=out, source_args=[
        "--data", str(EXAMPLE_DATA)], first_region="example")
    plan = state.solve(PlanSettings(region_id="example"), None)
    result = state.export(plan["plan"]["id"])
    assert result["folder"] == "plan-001-example-2"
    assert _snapshot(mine) == before and (out / "notes.txt").read_text() == "mine"
    folder = out / result["folder"]
    assert folder_is_complete(folder) and folder_is_complete(folder / "result")
    assert json.loads((folder / MARKER).read_text())["kind"] == "app-export"
    assert not [p for p in out.iterdir() if ".staging-" in p.name or p.name.endswith(".lock")]


@pytest.mark.parametrize("command", ["data import-volumes", "simulate"])
def test_import_volumes_and_simulate_never_replace_a_run_or_a_users_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    from herschik import scenarios

    run = _solved_run(tmp_path, "run")
    mine = tmp_path / "mine"
    before_mine = _user_folder(mine)
    before_run = _snapshot(run)
    for out in (run, mine):
        if command == "simulate":
            argv = ["simulate", str(run), "--years", "50", "--out", str(out)]
        else:
            sample = Path(scenarios.__file__).parent / "example" / "volumes_midden_SYNTHETIC.csv"
            argv = ["data", "import-volumes", str(sample), "--out", str(out)]
        capsys.readouterr()
        assert main(argv) == 2
        assert str(out) in _one_error_line(capsys)
    assert _snapshot(run) == before_run and _snapshot(mine) == before_mine
