"""The examples of the docs work as printed, outside the checkout (installed names only), and
do not write over the quick start's results (README: ``--out results/midden``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(doc: str) -> list[str]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd outside the checkout and no PYTHONPATH: only the installed herschik.* names resolve
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900, check=False)


def test_outputs_md_import_lines_work_after_install(tmp_path: Path) -> None:
    imports = [line for block in _python_blocks("OUTPUTS.md")
               for line in re.findall(r"^(?:from|import) [^\n]*(?:\n +[^\n]*)*", block, re.M)]
    assert len(imports) >= 5
    run = _run("\n".join(imports), tmp_path)
    assert run.returncode == 0, run.stderr


def test_api_md_example_runs_and_keeps_the_quick_start_results(tmp_path: Path) -> None:
    quick_start = re.search(r"herschik solve --region (\S+) --out (\S+)",
                            (ROOT / "README.md").read_text(encoding="utf-8"))
    assert quick_start
    block = _python_blocks("API.md")[0]
    (tmp_path / quick_start.group(2)).mkdir(parents=True)
    sentinel = tmp_path / quick_start.group(2) / "summary.json"
    sentinel.write_text('{"quick start": true}')
    run = _run(block, tmp_path)
    assert run.returncode == 0, run.stderr
    assert sentinel.read_text() == '{"quick start": true}'
    written = [p for p in (tmp_path / "results").iterdir() if p.name != "midden"]
    assert len(written) == 1 and (written[0] / "summary.json").is_file()
