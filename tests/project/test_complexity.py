"""No function of the project above cyclomatic complexity 20 (radon's measure; issue 26):
split a function along its seams before it grows past it. ruff's C901 (mccabe, max 15) counts
differently (no boolean operators), so both hold."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("optimiser", "geo", "scenarios", "herschik", "benchmarks", "tools")
MAX_COMPLEXITY = 20


def test_no_function_above_the_complexity_cap() -> None:
    too_complex = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for block in cc_visit(path.read_text(encoding="utf-8")):
                if block.complexity > MAX_COMPLEXITY:
                    too_complex.append(f"{path.relative_to(ROOT)}:{block.lineno} "
                                       f"{block.fullname} ({block.complexity})")
    assert too_complex == []


def test_the_measure_sees_a_complex_function() -> None:
    """The check can fail: a function with 21 branches is reported."""
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(21))
    (block,) = cc_visit(f"def f(x):\n{branches}\n    return -1\n")
    assert block.complexity == 22 > MAX_COMPLEXITY
