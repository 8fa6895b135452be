"""Issue 27, item 5 (networks): every edge's implied speed must be plausible for its road
class (not only below an upper bound), and the network as a whole must give times near the
known inter-city car times; otherwise exit 2 naming the file and the first offenders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from herschik.scenarios.cli.main import main

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def default_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded national network as a network file (what `network build` writes)."""
    from herschik.geo.network import default_network, save_network

    path = tmp_path_factory.mktemp("net") / "default.npz"
    save_network(default_network(), path)
    return path


def _scaled(source: Path, target: Path, factor: float) -> Path:
    arrays = dict(np.load(source))
    arrays["travel_time"] = arrays["travel_time"] * factor
    np.savez(target, **arrays)
    return target


def _matrix(network: Path, out: Path) -> int:
    return main(["matrix", "--region", "midden", "--areas", "municipalities", "--network",
                 str(network), "--out", str(out)])


def test_the_real_network_is_accepted(default_file: Path, tmp_path: Path) -> None:
    assert _matrix(default_file, tmp_path / "m.csv") == 0


def test_every_edge_1000_times_slower_is_refused(
    default_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(tmp_path / "cache"))
    slow = _scaled(default_file, tmp_path / "slow.npz", 1000.0)
    capsys.readouterr()
    assert _matrix(slow, tmp_path / "m.csv") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "slow.npz" in err
    assert "implausibly low speed" in err and not (tmp_path / "m.csv").exists()


def test_a_network_plausible_per_edge_but_slow_as_a_whole_is_refused(
    default_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """2.5 x slower: every edge still at a possible speed (motorways 36 km/h), but trips
    between cities take 2.5 times the known car times."""
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(tmp_path / "cache"))
    slow = _scaled(default_file, tmp_path / "slow.npz", 2.5)
    capsys.readouterr()
    assert _matrix(slow, tmp_path / "m.csv") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "slow.npz" in err
    assert "known car times" in err and not (tmp_path / "m.csv").exists()
