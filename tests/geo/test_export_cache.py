"""results.gpkg from the derived-data cache (geo/export_cache.py): the same tables give the
file of the plain writer without building a layer; any changed value, however small, a
changed polygon or a damaged entry writes it anew (never a stale file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely
from herschik.geo.dataset import load_dataset
from herschik.geo.export import areas_geodataframe, build_layers, write_results_gpkg
from herschik.geo.export_cache import frame_digest, write_results_gpkg_cached
from herschik.optimiser.params import SolveParams
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.run import solve_verified


@pytest.fixture(scope="module")
def example_run() -> tuple[Any, Any]:
    dataset = load_dataset("example")
    run = solve_verified(build_instance(dataset, "example"), SolveParams(), reasons=False)
    return run, dataset


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HERSCHIK_CACHE", raising=False)
    return tmp_path / "cache"


def _write(path: Path, run: Any, sites: Any, areas: gpd.GeoDataFrame,
           assignments: Any = None) -> tuple[Path, int]:
    """The cached writer; how many times it built the layers."""
    built = []
    asg = run.assignments if assignments is None else assignments

    def layers() -> dict:
        built.append(1)
        return build_layers(run.site_volumes, asg, sites, areas, run.flows)

    write_results_gpkg_cached(path, run.site_volumes, asg, sites, areas, run.flows, layers)
    return path, len(built)


def test_the_same_tables_are_copied_byte_for_byte(tmp_path: Path, cache: Path,
                                                  example_run: Any) -> None:
    run, dataset = example_run
    areas = areas_geodataframe(dataset.areas, dataset.area_geometries)
    first, built = _write(tmp_path / "a.gpkg", run, dataset.sites, areas)
    assert built == 1
    again, built = _write(tmp_path / "b.gpkg", run, dataset.sites, areas.copy())
    assert built == 0  # copied from the cache
    plain = write_results_gpkg(tmp_path / "plain.gpkg", run.site_volumes, run.assignments,
                               dataset.sites, areas, run.flows)
    assert first.read_bytes() == again.read_bytes() == plain.read_bytes()
    assert len(pyogrio.read_dataframe(again, layer="flows")) == len(run.assignments)
    assert sorted(name for name, _ in pyogrio.list_layers(again)) == [
        "areas", "flows", "hospital_flows", "layer_styles", "sites"]


def test_any_changed_input_writes_the_file_anew(tmp_path: Path, cache: Path,
                                                example_run: Any) -> None:
    run, dataset = example_run
    areas = areas_geodataframe(dataset.areas, dataset.area_geometries)
    first, _ = _write(tmp_path / "a.gpkg", run, dataset.sites, areas)
    # one patient count changed in its last bit
    nudged = run.assignments.copy()
    column = nudged.columns.get_loc("patients")
    nudged.iloc[0, column] = float(nudged.iloc[0, column]) * (1 + 2 ** -52)
    assert frame_digest(nudged) != frame_digest(run.assignments)
    changed, built = _write(tmp_path / "b.gpkg", run, dataset.sites, areas, nudged)
    assert built == 1
    plain = write_results_gpkg(tmp_path / "plain.gpkg", run.site_volumes, nudged,
                               dataset.sites, areas, run.flows)
    assert changed.read_bytes() == plain.read_bytes() != first.read_bytes()
    # one polygon moved by a metre
    moved = areas.copy()
    moved.loc[moved.index[0], "geometry"] = shapely.affinity.translate(
        moved.geometry.iloc[0], 1.0, 0.0)
    _, built = _write(tmp_path / "c.gpkg", run, dataset.sites, moved)
    assert built == 1
    # a site renamed
    renamed = dataset.sites.copy()
    renamed.loc[renamed.index[0], "site_id"] = str(renamed["site_id"].iloc[0])
    assert frame_digest(renamed) == frame_digest(dataset.sites)  # same values, same key
    names = [c for c in renamed.columns if renamed[c].dtype == object or "str" in
             str(renamed[c].dtype)]
    renamed.loc[renamed.index[0], names[-1]] = "another name"
    assert frame_digest(renamed) != frame_digest(dataset.sites)


def test_a_damaged_entry_is_written_anew(tmp_path: Path, cache: Path,
                                         example_run: Any) -> None:
    run, dataset = example_run
    areas = areas_geodataframe(dataset.areas, dataset.area_geometries)
    first, _ = _write(tmp_path / "a.gpkg", run, dataset.sites, areas)
    (entry,) = (cache / "derived" / "gpkg").glob("*.bin")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    again, built = _write(tmp_path / "b.gpkg", run, dataset.sites, areas)
    assert built == 1 and again.read_bytes() == first.read_bytes()
