"""The benchmark command in smoke mode (example region, one repeat): it must not rot.

Not a timed test: it only checks that ``python -m benchmarks --smoke`` runs end to end and
writes results.json and RESULTS.md with the example row.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT


def test_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["smoke"] is True
    rows = results["regions"]["regions"]
    assert [r["region"] for r in rows] == ["example"]
    for solver in ("highs", "cbc"):
        entry = rows[0][solver]
        assert entry["status"] == "optimal", entry
        assert entry["n_vars"] > 0 and entry["n_rows"] > 0
        assert entry["peak_total_mb"] > 0
    assert rows[0]["cbc_over_highs"] > 0
    assert results["machine"]["cores"] >= 1
    text = (out / "RESULTS.md").read_text(encoding="utf-8")
    assert "| example |" in text
    assert "## Goals" in text


def test_smoke_refuses_committed_folder() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(REPO / "benchmarks")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "never overwrites" in proc.stderr or "must not write" in proc.stderr


def test_region_rows_merge_per_region_and_objective() -> None:
    """A --regions re-measurement replaces only the rows of the same region and objective;
    rows measured before rows had an objective count as travel (the default back then)."""
    from benchmarks.sections import merge_regions

    old = {"regions": [{"region": "west", "v": 1}, {"region": "west", "objective": "planner",
                                                     "v": 2},
                       {"region": "oost", "objective": "planner", "v": 3}]}
    new = {"regions": [{"region": "west", "objective": "travel", "v": 4,
                        "goal_region_met": True}]}
    rows = merge_regions(old, new)["regions"]
    assert [(r["region"], r.get("objective"), r["v"]) for r in rows] == [
        ("west", "travel", 4), ("west", "planner", 2), ("oost", "planner", 3)]
