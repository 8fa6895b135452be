"""scenarios/sweep/task.py: the background folder writer of a pool worker's chunk writes each
run folder as the worker would have written it itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from herschik.scenarios.sweep.task import FolderWriter

from herschik import i18n


class _Result:
    """A run result that notes the language its folder is written in."""

    summary = {"status": "optimal"}

    def __init__(self) -> None:
        self.language: str | None = None

    def write(self, run_dir: Path, dataset: Any = None, outputs: Any = None,
              lock: bool = True) -> None:
        self.language = i18n.current_language()


def test_folders_are_written_in_the_callers_language(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A library caller's ``use_language("nl")`` (no process language, an English locale):
    the report, maps and workbook of a background-written folder are Dutch, as when the
    worker writes the folder itself (the writer's thread did not inherit the caller's
    context and wrote English; review of 2026-12-07)."""
    monkeypatch.setattr(i18n, "_process_language", None)
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    results = [_Result(), _Result(), _Result()]
    records: list[dict[str, Any]] = [{"cpu": {}} for _ in results]
    writer = FolderWriter(ahead=1)
    with i18n.use_language("nl"):
        for i, (record, result) in enumerate(zip(records, results, strict=True)):
            writer.submit(record, result, tmp_path / f"run{i}", None, {}, time.perf_counter())
    writer.finish()
    assert [result.language for result in results] == ["nl", "nl", "nl"]
    assert all(record["summary"] == {"status": "optimal"} for record in records)
