"""Issue 27, item 3: SIGINT/SIGTERM during a HiGHS solve exit 130 cleanly, with nothing
half-written; ``herschik app`` exits 130 on SIGTERM/SIGINT.

The signals go to real subprocesses. The solve is a synthetic region big enough that HiGHS is
still in its branch and bound when the signal arrives (it runs for minutes); the child says
when HiGHS has started (a file), so the signal never lands before or after the solve.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.cli import HERSCHIK
from tests.support.paths import EXAMPLE_DATA

pytestmark = pytest.mark.faults


#: The CLI's `solve`, with the example region's instance replaced by a hard synthetic one.
CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path

    import herschik.optimiser.subproblem as subproblem_module
    import herschik.scenarios.assemble as assemble
    from herschik.optimiser.synthetic import synthetic_instance
    from herschik.scenarios.cli.main import main

    started = Path(sys.argv[1])
    real_highs = subproblem_module.solve_highs

    def announced_highs(*args, **kwargs):
        started.touch()
        return real_highs(*args, **kwargs)

    subproblem_module.solve_highs = announced_highs
    assemble.build_instance = lambda *a, **k: synthetic_instance(
        n_areas=1500, n_sites=30, n_treatments=2, seed=1)
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    sys.exit(main())
""")


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "HiGHS never started"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_highs_exits_130_with_nothing_written(
    tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "run"
    started = tmp_path / "highs-started"
    process = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-c", CHILD, str(started), "solve", "--region",
         "example", "--data", str(EXAMPLE_DATA), "--objective", "providers", "--single-sourcing",
         "--out", str(out), "--no-maps", "--no-report"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # the child's instance is a synthetic one: never cache it as the example region's
        env={**os.environ, "HERSCHIK_CACHE": "off"},
    )
    _wait_for(started, process)
    time.sleep(1.0)  # inside the branch and bound
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "terminate called" not in err and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "herschik: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["highs-started"]  # no run, no lock


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_app_exits_130_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    """A serving app (its first plan ready) stops with 130 on SIGTERM/SIGINT."""
    import json
    import urllib.request

    port = _free_port()
    process = subprocess.Popen(
        [*HERSCHIK, "app", "--data", str(EXAMPLE_DATA),
         "--port", str(port), "--out", str(tmp_path / "exports")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = ""
        while "open http://" not in line:  # past the baseline line: it is serving
            line = process.stdout.readline()
            assert line, process.communicate()
        deadline = time.monotonic() + 120
        while True:  # serving, and the warm-up plan is written
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/plans",
                                            timeout=5) as response:
                    if json.load(response)["plans"]:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        process.send_signal(sig)
        _, err = process.communicate(timeout=180)
        assert process.returncode == 130, err
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
