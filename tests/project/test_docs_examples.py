"""The import lines of docs/OUTPUTS.md work as printed, outside the checkout (installed names
only). docs/API.md's example: tests/herschik/test_api.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT


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
