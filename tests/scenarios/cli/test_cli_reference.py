"""docs/CLI.md is the command-line reference: it stays complete (every command, flag, exit code,
result column and summary.json key the code has) and the docs' links lead somewhere."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
from herschik.scenarios.cli.main import main
from herschik.scenarios.cli.parser import build_parser

from herschik import columns, errors
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
CLI_MD = ROOT / "docs" / "CLI.md"
# Flags every command shares: documented once, under "Options of every command".
SHARED_FLAGS = {"--help", "--data", "--network", "--areas", "--debug", "--lang"}
# Link targets another branch adds (the `data import-volumes` command and its page). Listed
# here only while missing: the test below fails once they exist, so the entry gets removed.
PENDING_LINK_TARGETS: set[Path] = set()  # docs/IMPORT.md arrived with issue 22


def _commands(parser: argparse.ArgumentParser,
              prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every runnable command (``solve``, ``data export``, ...) with its parser."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                command = f"{prefix} {name}".strip()
                found.update(_commands(sub, command) or {command: sub})
    return found


def _sections(text: str) -> dict[str, str]:
    """The text of each ``## `herschik <command>` `` section of docs/CLI.md."""
    parts = re.split(r"^## `herschik ([a-z -]+)`\n", text, flags=re.M)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def test_every_command_and_flag_is_documented() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    sections = _sections(text)
    shared = text.split("## Options of every command")[1].split("\n## ")[0]
    commands = _commands(build_parser())
    assert {"solve", "data export", "network validate", "app"} <= set(commands)
    missing = [command for command in commands if command not in sections]
    for command, parser in commands.items():
        section = sections.get(command, "")
        for action in parser._actions:
            for flag in action.option_strings:
                if not flag.startswith("--"):
                    continue
                place = shared if flag in SHARED_FLAGS else section
                if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", place):
                    missing.append(f"{command} {flag}")
    assert missing == []


def test_every_exit_code_is_documented() -> None:
    table = CLI_MD.read_text(encoding="utf-8").split("## Exit codes")[1].split("\n## ")[0]
    codes = {value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    assert {0, 1, 2, 3, 4, 130, 141} <= codes
    assert [code for code in sorted(codes) if f"| `{code}` |" not in table] == []


def test_result_columns_and_summary_keys_are_documented(tmp_path: Path) -> None:
    """The columns in their order, and every summary.json key a real run writes."""
    text = CLI_MD.read_text(encoding="utf-8")
    for table in (columns.SITE_VOLUME_COLUMNS, columns.ASSIGNMENT_COLUMNS):
        assert f"`{', '.join(table)}`" in text
    out = tmp_path / "run"
    assert main(["solve", "--region", "example", "--out", str(out), "--no-maps",
                 "--no-report"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    keys = [*summary, *summary["kpis"], *summary["verification"]]
    schema = text.split("### `summary.json`")[1].split("\n## ")[0]
    assert [key for key in keys if f'"{key}"' not in schema] == []


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


DOC_PAGES = sorted([ROOT / "README.md", ROOT / "DATA.md", *(ROOT / "docs").rglob("*.md")])


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_lead_somewhere(page: Path) -> None:
    """Every relative link of the docs names a file that exists (and a heading, if it names
    one), so nothing points outside the repository (like ../shared) or to a moved section."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if path in PENDING_LINK_TARGETS and not path.exists():
            continue
        if not path.exists() or not path.resolve().is_relative_to(ROOT):
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(target)
    assert broken == []


def test_pending_link_targets_are_still_missing() -> None:
    """Once a pending page exists, its entry goes (then its links are checked like all)."""
    assert [p for p in PENDING_LINK_TARGETS if p.exists()] == []


def test_readme_is_a_newcomers_page() -> None:
    """Short, points to the reference, and keeps the set-up commands CI runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 110
    assert "](docs/CLI.md)" in readme
    assert "pip install -e '.[test]'" in readme and ". .venv/bin/activate && pytest" in readme
    assert "../shared" not in readme and "Extension" not in readme
