"""The code part of the derived-data cache's keys (herschik/derived_cache.py ``modules_digest``):
an entry made by a few modules (a map, a chart, the GeoPackage, the lost-role reasons) is keyed
by the source of those modules and of every herschik module they import, so a change anywhere
in that code makes it again, and a change elsewhere (the solver, for a map) keeps it.

A "code change" is simulated by pointing the module table at an edited copy of one source file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from herschik.geo.dataset import load_dataset
from herschik.geo.export import areas_geodataframe
from herschik.geo.maps import MAP_CODE, drawing_versions
from herschik.scenarios.instance_cache import cached_build_instance
from herschik.scenarios.reason_cache import DERIVED_REASONS
from herschik.scenarios.report.odds import CHART_CODE
from herschik.scenarios.run import solve_verified

import herschik.derived_cache as derived_cache
from herschik.derived_cache import module_closure, modules_digest


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(folder))
    monkeypatch.delenv("HERSCHIK_CACHE", raising=False)
    return folder


_MODULE_FILES = derived_cache._module_files


def _clear() -> None:
    for function in (_MODULE_FILES, module_closure, modules_digest):
        function.cache_clear()


@pytest.fixture
def edit_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``edit_module(name)``: from now on herschik's module ``name`` is an edited copy (one
    more line: the smallest code change)."""
    real = derived_cache._module_files()
    files = dict(real)

    def edit(name: str) -> None:
        copy = tmp_path / "edited" / f"{name}.py"
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(real[name], copy)
        with copy.open("a", encoding="utf-8") as handle:
            handle.write("\n# an edit\n")
        files[name] = copy
        _clear()
        monkeypatch.setattr(derived_cache, "_module_files", lambda: files)

    yield edit
    monkeypatch.undo()
    _clear()


def test_a_map_is_keyed_by_the_drawing_code_and_what_it_imports_only() -> None:
    closure = set(module_closure(*MAP_CODE))
    assert {"herschik.geo.maps", "herschik.geo.map_drawing", "herschik.i18n",
            "herschik.geo.export", "herschik.atomic", "herschik"} <= closure
    assert not any(name.startswith(("herschik.optimiser", "herschik.scenarios"))
                   for name in closure)
    charts = set(module_closure(*CHART_CODE))
    assert {"herschik.scenarios.report.charts", "herschik.scenarios.report.format"} <= charts
    assert "herschik.scenarios.report.page" not in charts
    reasons = set(module_closure("herschik.scenarios.reason_cache",
                                 "herschik.optimiser.reasons"))
    # the reasons are solves: every module of the solver counts
    assert {"herschik.optimiser.solve", "herschik.optimiser.keepset_search",
            "herschik.optimiser.planner", "herschik.optimiser.backends"} <= reasons
    assert "herschik.geo.maps" not in reasons
    with pytest.raises(ValueError, match="not a herschik module"):
        module_closure("herschik.no_such_module")


def test_imports_are_followed_in_every_form() -> None:
    known = {name: Path(f"{name}.py") for name in (
        "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.e", "pkg.f", "pkg.sub.g")}
    known["pkg"] = Path("pkg/__init__.py")
    known["pkg.sub"] = Path("pkg/sub/__init__.py")
    source = (
        "from __future__ import annotations\n"
        "from .b import thing\n"                      # relative
        "from pkg.c import (\n    one,  # a comment\n    two as deux,\n)\n"  # parenthesised
        "import pkg.sub.g as g, numpy\n"              # dotted, aliased, with a library
        "def lazy():\n    from pkg import d, e\n"     # inside a function: submodules
        "if TYPE_CHECKING:\n    from pkg.f import F\n"
    )
    found = derived_cache._imported_modules("pkg.a", source, known)
    assert {name for name, used in found.items() if used} == \
        {"pkg.b", "pkg.c", "pkg.sub.g", "pkg.d", "pkg.e", "pkg.f"}
    assert found["pkg"] is False and found["pkg.sub"] is False  # parents run only
    top = derived_cache._imported_modules("pkg.a", source, known, top_level_only=True)
    assert {name for name, used in top.items() if used} == {"pkg.b", "pkg.c", "pkg.sub.g"}



def test_an_import_with_a_trailing_comment_is_followed() -> None:
    """``import pkg.b  # noqa: F401`` (as geo/maps.py imports map_drawing before its fork)
    imports pkg.b: the comment was read as part of the name, so pkg.b left the closure (and
    a change to it kept every entry keyed by it: a stale map, chart or GeoPackage)."""
    known = {name: Path(f"{name}.py") for name in ("pkg.a", "pkg.b", "pkg.c")}
    known["pkg"] = Path("pkg/__init__.py")
    source = ("import pkg.b  # noqa: F401\n"
              "def lazy():\n    import pkg.c as c  # only here\n")
    found = derived_cache._imported_modules("pkg.a", source, known)
    assert {name for name, used in found.items() if used} == {"pkg.b", "pkg.c"}


def _write_maps(folder: Path, result, dataset, areas) -> dict[str, Path]:
    from herschik.geo.maps import write_maps

    return write_maps(folder, result.summary, result.site_volumes, result.assignments,
                      dataset.sites, areas)


def test_a_change_of_the_drawing_code_redraws_the_maps_and_any_other_keeps_them(
        tmp_path: Path, edit_module, monkeypatch: pytest.MonkeyPatch) -> None:
    import herschik.geo.map_drawing as map_drawing
    from herschik.optimiser.params import SolveParams

    dataset = load_dataset("example")
    instance = cached_build_instance(dataset, "example")
    areas = areas_geodataframe(dataset.areas, dataset.area_geometries)
    result = solve_verified(instance, SolveParams(margin=0.1))
    first = _write_maps(tmp_path / "first", result, dataset, areas)
    drawn: list[str] = []
    draw_body = map_drawing.map_body_rgba

    def body(*args: object, **kwargs: object) -> np.ndarray:
        drawn.append(str(args[3]))
        return draw_body(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(map_drawing, "map_body_rgba", body)
    # the solver changed: no map is drawn again
    edit_module("herschik.optimiser.keepset_search")
    kept = _write_maps(tmp_path / "solver-changed", result, dataset, areas)
    assert drawn == []
    # the drawing changed (or what it imports): every map is drawn again, to the same bytes
    for name in ("herschik.geo.map_drawing", "herschik.i18n"):
        edit_module(name)
        drawn.clear()
        again = _write_maps(tmp_path / name, result, dataset, areas)
        assert len(drawn) == len(first)
        assert {k: p.read_bytes() for k, p in again.items()} == \
            {k: p.read_bytes() for k, p in first.items()} == \
            {k: p.read_bytes() for k, p in kept.items()}


def test_the_reasons_follow_the_solver_code_not_the_report(edit_module) -> None:
    key = DERIVED_REASONS._key("component")
    edit_module("herschik.scenarios.report.page")
    assert DERIVED_REASONS._key("component") == key
    edit_module("herschik.optimiser.backends")
    assert DERIVED_REASONS._key("component") != key


def test_the_dutch_catalog_is_part_of_the_code_that_draws(tmp_path: Path,
                                                            edit_module) -> None:
    before = modules_digest(*MAP_CODE)
    edit_module("herschik.optimiser.solve")
    assert modules_digest(*MAP_CODE) == before
    real = derived_cache._module_files()["herschik.i18n"]
    copy = tmp_path / "i18n" / "i18n.py"
    shutil.copytree(real.parent / "locale", copy.parent / "locale")
    shutil.copyfile(real, copy)
    with (copy.parent / "locale" / "nl.po").open("a", encoding="utf-8") as handle:
        handle.write('\nmsgid "an edit"\nmsgstr "een wijziging"\n')
    files = {**derived_cache._module_files(), "herschik.i18n": copy}
    _clear()
    original = derived_cache._module_files
    derived_cache._module_files = lambda: files  # type: ignore[assignment]
    try:
        assert modules_digest(*MAP_CODE) != before
    finally:
        derived_cache._module_files = original  # type: ignore[assignment]
        _clear()


def test_a_users_matplotlibrc_is_part_of_a_charts_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MATPLOTLIBRC", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "config"))
    plain = drawing_versions()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "matplotlibrc").write_text("font.size: 14\n")
    configured = drawing_versions()
    assert configured != plain
    (tmp_path / "matplotlibrc").write_text("font.size: 9\n")  # the working folder's first
    assert drawing_versions() not in (plain, configured)
