"""Issue 27, item 5 (environment and result files): a disk full from any writer exits 2 with
one line; `compare` validates the folders it reads (exit 2); cache entries are verified by
content hash, and a corrupt or edited one is rebuilt, never trusted or fatal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from herschik.scenarios.cli.main import main

from tests.support.cli import one_error_line

pytestmark = pytest.mark.faults


@pytest.mark.parametrize(
    ("error_name", "message"),
    [("DataSourceError", "sqlite3_exec(CREATE TABLE) failed: database or disk is full"),
     ("FeatureError", "failed to write record: No space left on device")],
)
def test_geopackage_writer_on_a_full_disk_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    error_name: str, message: str,
) -> None:
    """Regression: pyogrio's DataSourceError / FeatureError on a full disk gave exit 3."""
    import geopandas as gpd
    import pyogrio.errors

    def full(*args: object, **kwargs: object) -> None:
        raise getattr(pyogrio.errors, error_name)(message)

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", full)
    # the writer must run: an unchanged results.gpkg would be copied from the derived cache
    monkeypatch.setenv("HERSCHIK_CACHE", "off")
    out = tmp_path / "run"
    assert main(["solve", "--region", "example", "--out", str(out), "--no-maps",
                 "--no-report"]) == 2
    line = one_error_line(capsys)
    assert "results.gpkg" in line and ("disk" in line or "space" in line)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_writer_failing_on_a_disk_with_no_space_left_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that says nothing useful, on a disk that has no block left: still exit 2."""
    import os

    import geopandas as gpd

    def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("write error")

    real_statvfs = os.statvfs

    class Full:
        f_bavail = 0

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", fails)  # the GeoPackage writer
    monkeypatch.setenv("HERSCHIK_CACHE", "off")  # written, not copied from the derived cache
    monkeypatch.setattr(os, "statvfs", lambda path: Full() if "run" in str(path)
                        else real_statvfs(path))
    out = tmp_path / "run"
    assert main(["solve", "--region", "example", "--out", str(out), "--no-report",
                 "--no-maps"]) == 2
    assert "disk is full" in one_error_line(capsys)
    assert not out.exists()


# --- compare validates its inputs ------------------------------------------------------------


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("solved") / "run"
    assert main(["solve", "--region", "example", "--out", str(out), "--no-maps",
                 "--no-report"]) == 0
    return out


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        ("summary.json", "[1, 2]", "JSON object"),
        ("summary.json", '{"kpis": [1]}', "kpis must be an object"),
        ("summary.json", '{"kpis": {"per_treatment": {"t": 3}}}', "per_treatment"),
        ("summary.json", '{"kpis": {"providers_after": {"t": "x"}}}', "providers_after"),
        ("summary.json", "[" * 100_000 + "]" * 100_000, "summary.json"),
        ("summary.json", "\udcff", "summary.json"),
        ("hospital_changes.csv", 'a,"b\n1', "hospital_changes.csv"),
        ("hospital_changes.csv", "", "hospital_changes.csv"),
        ("hospital_changes.csv", "site_id,intervention_id,status,volume_after\nS,T,kept,inf\n",
         "not a finite number"),
    ],
)
def test_compare_refuses_malformed_result_folders_with_exit_2(
    solved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, text: str,
    expected: str,
) -> None:
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(solved, broken)
    (broken / file).write_bytes(text.encode("utf-8", "surrogateescape"))
    capsys.readouterr()
    assert main(["compare", str(solved), str(broken)]) == 2
    assert expected in one_error_line(capsys)


def test_compare_of_a_fifo_summary_exits_2_without_blocking(
    solved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import shutil

    broken = tmp_path / "fifo"
    shutil.copytree(solved, broken)
    (broken / "summary.json").unlink()
    os.mkfifo(broken / "summary.json")
    capsys.readouterr()
    assert main(["compare", str(solved), str(broken)]) == 2
    assert "no summary.json" in one_error_line(capsys)


# --- caches are verified by content hash -----------------------------------------------------


def _travel(cache: Path) -> np.ndarray:
    from herschik.geo.traveltime import area_site_minutes

    areas = np.array([[135_000.0, 455_000.0], [140_000.0, 460_000.0]])
    sites = np.array([[137_500.0, 455_500.0], [150_000.0, 470_000.0], [131_000.0, 449_000.0]])
    return area_site_minutes(areas, sites)


def test_matrix_cache_entry_corrupt_or_edited_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(cache))
    first = _travel(cache)
    entries = list((cache / "matrices").glob("*.npz"))
    assert len(entries) == 1
    entry = entries[0]
    assert np.array_equal(_travel(cache), first)  # the intact entry is used
    # edited: every trip one minute (the digest no longer matches)
    with np.load(entry) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["minutes"] = np.ones_like(arrays["minutes"])
    np.savez(entry, **arrays)
    assert np.array_equal(_travel(cache), first)
    # truncated, and not a zip at all: rebuilt, not exit 3
    for damage in (entry.read_bytes()[:100], b"not a zip file"):
        entry.write_bytes(damage)
        assert np.array_equal(_travel(cache), first)
    # an entry of the old format (no key, no digest): rebuilt too
    np.savez(entry, minutes=np.ones_like(first), area_snap_m=np.zeros(2),
             site_snap_m=np.zeros(3))
    assert np.array_equal(_travel(cache), first)
    with np.load(entry) as z:
        assert "digest" in z.files


def test_network_cache_entry_corrupt_or_edited_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herschik.geo import network

    cache = tmp_path / "cache"
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(cache))
    network.default_network.cache_clear()
    try:
        graph = network.default_network()
        edges = graph.number_of_edges()
        [entry] = list((cache / "network").glob("*.npz"))
        for damage in (b"garbage", entry.read_bytes()[:-10]):
            entry.write_bytes(damage)
            network.default_network.cache_clear()
            assert network.default_network().number_of_edges() == edges
        assert json.dumps(sorted(p.suffix for p in (cache / "network").iterdir())) == json.dumps(
            [".npz", ".sha256"])
    finally:
        network.default_network.cache_clear()
