"""Data flows one way (geo -> instance -> optimiser -> results -> export), without cycles.

Imports are read from the source (module level and inside functions alike), so a lazy import
cannot hide a layering break.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
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


def test_architecture_lists_every_module() -> None:
    """docs/ARCHITECTURE.md stays true: every installed module is named in it."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [str(path.relative_to(ROOT))
               for folder in ("herschik", "optimiser", "geo", "scenarios")
               for path in sorted((ROOT / folder).rglob("*.py"))
               if path.name != "__init__.py" and path.stem not in text]
    assert missing == []
