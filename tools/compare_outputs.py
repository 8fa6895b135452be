"""Compare two trees of `herschik solve` result folders byte for byte, apart from wall-clock
timings (by hand, before and after a change that must not change any output).

    python tools/compare_outputs.py BEFORE_DIR AFTER_DIR

Every file must be byte-identical except: ``summary.json`` (compared without ``*_seconds``
keys), ``report.html`` (its build/solve times and the sub-problems' ``*_seconds`` cells are
blanked first) and the folder marker ``.herschik-run.json`` (the sizes of those two files may
differ by the digits of their timings). Exit 0 when all match, 1 otherwise.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

# the English and the Dutch report (--lang nl: "Opbouwtijd", "Rekentijd ...")
_TIME_CELL = re.compile(
    r"(<td>(?:Build time|Solve time|Opbouwtijd|Rekentijd)[^<]*</td><td>)[^<]*(</td>)")


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items()
                if not (k == "seconds" or str(k).endswith("_seconds"))}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _blank_seconds_columns(html: str) -> str:
    """Blank the cells under a ``*_seconds`` header in every table of the report."""
    def table(match: re.Match[str]) -> str:
        text = match.group(0)
        headers = re.findall(r"<th[^>]*>(.*?)</th>", text)
        # English "*_seconds", Dutch "opbouw (s)" / "oplossen (s)" (--lang nl)
        drop = {i for i, h in enumerate(headers) if h.endswith(("_seconds", " (s)"))}
        if not drop:
            return text

        def row(rmatch: re.Match[str]) -> str:
            cells = re.split(r"(?=<td)", rmatch.group(1))
            head, cells = cells[0], cells[1:]
            kept = [("<td>·</td>" if i in drop else c) for i, c in enumerate(cells)]
            return "<tr>" + head + "".join(kept) + "</tr>"

        return re.sub(r"<tr>(.*?)</tr>", row, text)

    html = _TIME_CELL.sub(r"\1·\2", html)
    return re.sub(r"<table.*?</table>", table, html, flags=re.S)


def same(first: Path, second: Path) -> bool:
    name = first.name
    if name == "summary.json":
        return bool(_without_timings(json.loads(first.read_text("utf-8")))
                    == _without_timings(json.loads(second.read_text("utf-8"))))
    if name == "report.html":
        return _blank_seconds_columns(first.read_text("utf-8")) == _blank_seconds_columns(
            second.read_text("utf-8"))
    if name == ".herschik-run.json":
        one, two = (json.loads(p.read_text("utf-8")) for p in (first, second))
        for marker in (one, two):
            for timed in ("summary.json", "report.html"):
                marker.get("files", {}).pop(timed, None)
        return bool(one == two)
    return first.read_bytes() == second.read_bytes()


def main(argv: list[str]) -> int:
    before, after = Path(argv[0]), Path(argv[1])
    names = sorted({p.relative_to(before) for p in before.rglob("*") if p.is_file()}
                   | {p.relative_to(after) for p in after.rglob("*") if p.is_file()})
    differ = 0
    for rel in names:
        a, b = before / rel, after / rel
        if not (a.is_file() and b.is_file()):
            print(f"only in one tree: {rel}")
            differ += 1
        elif not same(a, b):
            print(f"differs: {rel}")
            differ += 1
    print(f"{len(names)} files compared, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
