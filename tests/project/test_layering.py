"""Data flows one way (geo -> instance -> optimiser -> results -> export), without cycles.

Imports are read from the source (module level and inside functions alike), so a lazy import
cannot hide a layering break.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
PACKAGES = {"geo": "herschik.geo", "optimiser": "herschik.optimiser",
            "scenarios": "herschik.scenarios", "herschik": "herschik"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    parts[0] = PACKAGES[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every herschik module that ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name.startswith("herschik")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("herschik"):
                out.add(target)
    return out


def _graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = _module_name(path)
            graph.add_node(module)
            for target in _imports(path, module):
                graph.add_edge(module, target)
    return graph


def test_every_package_is_scanned() -> None:
    graph = _graph()
    assert "herschik.geo.dataset" in graph
    assert "herschik.optimiser.solve" in graph
    assert ("herschik.scenarios.run", "herschik.optimiser.solve") in graph.edges


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("herschik.geo", ("herschik.optimiser", "herschik.scenarios")),
    ("herschik.optimiser", ("herschik.geo", "herschik.scenarios")),
])
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = sorted((a, b) for a, b in _graph().edges
                 if a.startswith(layer + ".") and b.startswith(forbidden))
    assert bad == []


def test_no_import_cycles_between_modules() -> None:
    graph = _graph()
    # a package importing its own submodules (the lazy front door) is not a cycle of concern
    graph.remove_edges_from([(a, b) for a, b in list(graph.edges) if b.startswith(a + ".")])
    graph.remove_edges_from([(a, b) for a, b in list(graph.edges) if a.startswith(b + ".")
                             and b in PACKAGES.values()])
    assert list(nx.simple_cycles(graph)) == []


def test_no_bare_folder_imports() -> None:
    """Only the herschik namespace is importable once installed; a bare ``geo`` import would
    work in a checkout and fail for users."""
    bare = ("geo", "optimiser", "scenarios")
    offenders = []
    for folder in (*PACKAGES, "tests", "benchmarks", "tools"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                offenders += [f"{path.relative_to(ROOT)}: {name}" for name in names
                              if name.split(".")[0] in bare]
    assert offenders == []


TREE_FOLDERS = ("herschik", "optimiser", "geo", "scenarios", "tools", "benchmarks")


def _architecture_text() -> str:
    return (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _architecture_tree(text: str) -> list[str]:
    """The module paths that docs/ARCHITECTURE.md's tree lists, one entry per line.

    An entry is a line whose first word is a file (``name.py``) or a folder (``name/``), indented
    at most two spaces deeper than its folder; deeper lines continue a description and never
    count, so a module named only in another module's description is not listed.
    """
    tree = re.search(r"^```\n(.*?)^```", text, flags=re.S | re.M)
    assert tree, "docs/ARCHITECTURE.md has no module tree"
    entries: list[str] = []
    folders: list[tuple[int, str]] = []  # (indent, folder name) of the open folders
    for line in tree.group(1).splitlines():
        indent = len(line) - len(line.lstrip(" "))
        first = line.split()[0] if line.strip() else ""
        if not first.endswith((".py", "/")) or indent > (folders[-1][0] + 2 if folders else 0):
            continue
        while folders and folders[-1][0] >= indent:
            folders.pop()
        path = "/".join([name.rstrip("/") for _, name in folders] + [first.rstrip("/")])
        if first.endswith("/"):
            folders.append((indent, first))
        else:
            entries.append(path)
    return entries


#: the folders whose modules each need their own entry (benchmarks/ is described as a whole)
LISTED_FOLDERS = ("herschik", "optimiser", "geo", "scenarios", "tools")


def _modules() -> list[str]:
    """Every module that needs an entry, as its path from the repository root."""
    return [str(path.relative_to(ROOT)) for folder in LISTED_FOLDERS
            for path in sorted((ROOT / folder).rglob("*.py")) if path.name != "__init__.py"]


def _unlisted(listed: list[str]) -> list[str]:
    """Modules without an entry of their whole path (``a/b.py``, never a substring)."""
    entries = set(listed)
    return [module for module in _modules() if module not in entries]


def test_architecture_lists_every_module() -> None:
    """docs/ARCHITECTURE.md stays true: every module has its own entry in the tree (its whole
    path, not a substring of some other text), and every entry exists."""
    listed = _architecture_tree(_architecture_text())
    assert _unlisted(listed) == [], "modules without an entry"
    assert [e for e in listed if not (ROOT / e).is_file()] == [], "entries of no module"
    assert len(listed) == len(set(listed)), "a module listed twice"


def test_architecture_entry_deleted_fails() -> None:
    """Deleting any one module's entry line from the tree makes exactly that module unlisted,
    even where another entry's description still mentions it by name."""
    text = _architecture_text()
    listed = _architecture_tree(text)
    assert all(entry.startswith(TREE_FOLDERS) for entry in listed)
    lines = text.splitlines(keepends=True)
    fences = [number for number, line in enumerate(lines) if line.startswith("```")]
    entry_lines = [number for number in range(fences[0] + 1, fences[1])
                   if lines[number].strip() and lines[number].split()[0].endswith(".py")]
    assert len(entry_lines) == len(listed)
    missed = {}
    for number, entry in zip(entry_lines, listed, strict=True):
        shortened = _architecture_tree("".join(lines[:number] + lines[number + 1:]))
        if _unlisted(shortened) != [entry]:
            missed[entry] = _unlisted(shortened)
    assert missed == {}


def test_a_name_in_a_description_is_no_entry() -> None:
    """An entry counts by its whole path in its folder: the same file name under another
    folder, a name inside a description, or a name without its folder does not list it."""
    tree = ("```\n"
            "optimiser/      the MIP\n"
            "  solve.py          solve(); see feasibility.py and rows/columns.py\n"
            "  rows/             the registry\n"
            "    base.py           Family\n"
            "scenarios/      runs\n"
            "  columns.py        not optimiser/rows/columns.py\n"
            "```\n")
    listed = _architecture_tree(tree)
    assert listed == ["optimiser/solve.py", "optimiser/rows/base.py", "scenarios/columns.py"]
    assert "optimiser/rows/columns.py" not in listed
    assert "optimiser/feasibility.py" not in listed
