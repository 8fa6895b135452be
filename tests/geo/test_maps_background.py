"""Maps drawn in a child process while the report is made (geo/maps.py ``start_maps``): the
same bytes as drawn in process, a failing child is not trusted (the parent draws again, and
raises what drawing raises), a cancelled child is killed and reaped, and a run whose maps are
all in the cache starts no child."""

from __future__ import annotations

import os
from pathlib import Path

import herschik.geo.maps as maps
import pytest
from herschik.geo.dataset import load_dataset
from herschik.geo.export import areas_geodataframe
from herschik.scenarios.instance_cache import cached_build_instance
from herschik.scenarios.run import solve_verified

pytestmark = pytest.mark.skipif(not maps._can_fork(), reason="maps are drawn in a child on Linux")


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(folder))
    monkeypatch.delenv("HERSCHIK_CACHE", raising=False)
    return folder


@pytest.fixture(scope="module")
def example_run():
    from herschik.optimiser.params import SolveParams

    dataset = load_dataset("example")
    instance = cached_build_instance(dataset, "example")
    result = solve_verified(instance, SolveParams(margin=0.1))
    areas = areas_geodataframe(dataset.areas, dataset.area_geometries)
    return result, dataset, areas


def _start(folder: Path, example_run, background: bool) -> maps.PendingMaps:
    result, dataset, areas = example_run
    return maps.start_maps(folder, result.summary, result.site_volumes, result.assignments,
                           dataset.sites, areas, background=background)


def _bytes(written: dict[str, Path]) -> dict[str, bytes]:
    return {key: path.read_bytes() for key, path in written.items()}


def test_maps_drawn_in_a_child_are_the_maps_drawn_here(
        tmp_path: Path, example_run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERSCHIK_CACHE", "off")  # every map drawn, both ways
    here = _start(tmp_path / "here", example_run, background=False)
    assert not here.in_background
    child = _start(tmp_path / "child", example_run, background=True)
    assert child.in_background
    written = child.result()
    assert not child.in_background
    assert list(written) == list(here.result())  # the same maps in the same order
    assert _bytes(written) == _bytes(here.result())


def test_a_run_with_every_map_cached_starts_no_child(tmp_path: Path, example_run) -> None:
    first = _start(tmp_path / "first", example_run, background=True).result()
    again = _start(tmp_path / "again", example_run, background=True)
    assert not again.in_background
    assert _bytes(again.result()) == _bytes(first)


def _fail_rendering_in_the_child(monkeypatch: pytest.MonkeyPatch) -> int:
    """Every map drawn in a child process fails (a full disk); returns this process's id."""
    parent = os.getpid()
    render = maps._render

    def fails_in_the_child(job: maps._MapJob) -> Path:
        if os.getpid() != parent:
            raise OSError("the child's disk is full")
        return render(job)

    monkeypatch.setattr(maps, "_render", fails_in_the_child)
    return parent


def test_a_failing_child_is_not_trusted(tmp_path: Path, example_run,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERSCHIK_CACHE", "off")
    expected = _bytes(_start(tmp_path / "here", example_run, background=False).result())
    _fail_rendering_in_the_child(monkeypatch)
    pending = _start(tmp_path / "child", example_run, background=True)
    assert pending.in_background
    assert _bytes(pending.result()) == expected  # drawn again here

    def fails_everywhere(job: maps._MapJob) -> Path:
        raise OSError("no space left on device")

    monkeypatch.setattr(maps, "_render", fails_everywhere)
    pending = _start(tmp_path / "full", example_run, background=True)
    with pytest.raises(OSError, match="no space left"):  # the parent's own error
        pending.result()


def test_a_cancelled_child_is_killed_and_reaped(tmp_path: Path, example_run,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("HERSCHIK_CACHE", "off")
    monkeypatch.setattr(maps, "_render", lambda job: time.sleep(60))
    pending = _start(tmp_path / "slow", example_run, background=True)
    pid = pending._child
    assert pid is not None
    started = time.monotonic()
    pending.cancel()
    assert time.monotonic() - started < 10
    assert not pending.in_background
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no such child any more
    assert pending.result()  # the paths; nothing is drawn after a cancel
    assert not list((tmp_path / "slow").glob("*.png"))


def test_maps_are_drawn_here_off_the_main_thread(tmp_path: Path, example_run,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep writes its run folders on a thread while its main thread solves: no fork
    there (the child would be a copy of a process in the middle of a solve)."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("HERSCHIK_CACHE", "off")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_start, tmp_path / "thread", example_run, True).result()
    assert not pending.in_background
    assert len(pending.result()) > 2


def test_a_run_folder_is_the_same_with_its_maps_drawn_in_a_child(
        tmp_path: Path, example_run, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_run_outputs: the maps and the report that embeds them, byte for byte."""
    from herschik.scenarios.outputs import write_run_outputs

    result, dataset, _areas = example_run
    monkeypatch.setenv("HERSCHIK_CACHE", "off")
    folders = {}
    for background in (False, True):
        monkeypatch.setattr(maps, "_can_fork", lambda b=background: b)
        folder = tmp_path / f"background-{background}"
        written = write_run_outputs(folder, result.summary, result.site_volumes,
                                    result.assignments, dataset,
                                    hospital_changes=result.hospital_changes,
                                    flows=result.flows)
        folders[background] = {path.relative_to(folder).as_posix(): path.read_bytes()
                               for path in written}
    assert list(folders[True]) == list(folders[False])  # the same files in the same order
    assert folders[True] == folders[False]
    assert b"data:image/png;base64," in folders[True]["report.html"]


def test_the_geopackage_is_written_by_the_maps_child_and_again_here_when_it_fails(
        tmp_path: Path, example_run, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_run_outputs hands the GeoPackage to the maps' child (after its maps); a child
    that fails before it is not trusted: the GeoPackage is written here, the same bytes."""
    import herschik.scenarios.outputs as outputs

    result, dataset, _areas = example_run
    monkeypatch.setenv("HERSCHIK_CACHE", "off")
    writers: list[int] = []
    write_gis = outputs._write_gis

    def recorded(*args: object, **kwargs: object) -> list[Path]:
        written = write_gis(*args, **kwargs)  # type: ignore[arg-type]
        (tmp_path / f"gis-{os.getpid()}").touch()  # seen from the parent after the child
        return written

    monkeypatch.setattr(outputs, "_write_gis", recorded)

    def run(name: str) -> dict[str, bytes]:
        folder = tmp_path / name
        written = outputs.write_run_outputs(folder, result.summary, result.site_volumes,
                                            result.assignments, dataset,
                                            hospital_changes=result.hospital_changes,
                                            flows=result.flows)
        assert written[0] == folder / "results.gpkg"  # first, as when written here
        writers[:] = [int(p.name.split("-")[1]) for p in tmp_path.glob("gis-*")]
        for path in tmp_path.glob("gis-*"):
            path.unlink()
        return {path.relative_to(folder).as_posix(): path.read_bytes() for path in written}

    in_child = run("child")
    assert writers and os.getpid() not in writers  # the child wrote it

    parent = _fail_rendering_in_the_child(monkeypatch)
    again = run("failed-child")
    assert writers == [parent]  # the child failed before the GeoPackage: written here
    assert again == in_child

    monkeypatch.setattr(maps, "_can_fork", lambda: False)
    assert run("here") == in_child
    assert writers == [parent]
