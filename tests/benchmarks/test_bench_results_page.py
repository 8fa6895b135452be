"""RESULTS.md: a re-run keeps the hand-written part, and the grid section renders a real run.

Not timed: only that the page is built as documented (benchmarks/__main__.py, bench_grid.py).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_grid
from benchmarks.__main__ import HAND_RUN_MARKER, with_hand_run_part


def test_a_rerun_keeps_the_hand_run_part(tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# old rendered part\n\n" + HAND_RUN_MARKER + "\n\n## By hand\n\n| a |\n",
                  encoding="utf-8")
    page = with_hand_run_part("# new rendered part\n", md)
    assert page.startswith("# new rendered part\n")
    assert "# old rendered part" not in page
    assert page.endswith(HAND_RUN_MARKER + "\n\n## By hand\n\n| a |\n")


def test_without_a_marker_or_a_page_only_the_rendered_part_is_written(tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    assert with_hand_run_part("# new\n", md) == "# new\n"
    md.write_text("# old\n\n## Notes\n", encoding="utf-8")
    assert with_hand_run_part("# new\n", md) == "# new\n"


def test_the_committed_page_has_the_marker() -> None:
    text = (Path(bench_grid.__file__).parent / "RESULTS.md").read_text(encoding="utf-8")
    assert text.count(HAND_RUN_MARKER) == 1


def test_grid_section_renders_one_real_scenario_and_judges_the_goal() -> None:
    result = bench_grid.run(["midden"], ("travel",), (0.0, 0.2), (None,), (None,),
                            log=lambda _m: None, threads=1)
    rows = result["summary"]["midden/travel"]["new"]
    assert rows["n"] == 2 and rows["p100_cpu"] > 0
    lines, goals = bench_grid.render(result)
    row = next(line for line in lines if line.startswith("| midden | travel |"))
    assert f"{rows['p100_wall']:.2f}" in row
    assert "margin 0" in row or "margin 0.2" in row
    (goal, verdict, where), = goals
    assert verdict == ("**met**" if rows["p100_wall"] <= bench_grid.GOAL_P100_S else "**missed**")
    assert f"{rows['p100_wall']:.2f} s" in where


def test_old_comparison_checks_the_solved_treatments_of_a_partial_plan() -> None:
    """`--old` compares every solved sub-problem: a partially infeasible scenario has no
    objective of its own, so comparing statuses only let a different optimum through."""
    def row(travel: float) -> dict:
        return {"status": "partially_infeasible", "objective": None, "travel": travel,
                "subproblems": [["a", "optimal", travel, travel], ["b", "infeasible", None, 0.0]]}

    assert bench_grid._same(row(100.0), row(100.0 + 1e-9))
    assert not bench_grid._same(row(100.0), row(101.0))
    infeasible_b = row(100.0)
    infeasible_b["subproblems"][1][1] = "optimal"
    assert not bench_grid._same(row(100.0), infeasible_b)
