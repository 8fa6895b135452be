"""The derived-data cache (herschik/derived_cache.py) and what is kept in it: validated
datasets, region instances, the regions table, maps and the report's histogram.

An entry is keyed by the bytes of its inputs and herschik's code, verified on read, and a
damaged entry is rebuilt, never trusted and never fatal. What a cache hit returns must equal
what the build gives, byte for byte for the PNGs.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from herschik.geo.dataset import load_dataset
from herschik.geo.export import areas_geodataframe
from herschik.geo.schema import EXAMPLE_DIR
from herschik.scenarios.instance_cache import cached_build_instance
from herschik.scenarios.run import solve_verified

import herschik.derived_cache as derived_cache
from herschik.derived_cache import cached, entry_key, folder_digest


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(folder))
    monkeypatch.delenv("HERSCHIK_CACHE", raising=False)
    return folder


def entries(cache: Path, kind: str) -> list[Path]:
    return sorted((cache / "derived" / kind).glob("*.bin"))


# --- the entry format -----------------------------------------------------------------------


def test_a_hit_returns_what_was_built_without_building(own_cache: Path) -> None:
    key = entry_key("test", ["a"])
    assert cached(key, lambda: {"x": [1.5, 2]}) == {"x": [1.5, 2]}

    def must_not_build() -> dict:
        raise AssertionError("built although cached")

    assert cached(key, must_not_build) == {"x": [1.5, 2]}
    assert len(entries(own_cache, "test")) == 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "not_a_pickle", "no_magic"])
def test_a_damaged_entry_is_rebuilt_and_rewritten(own_cache: Path, damage: str) -> None:
    key = entry_key("test", ["damaged", damage])
    cached(key, lambda: "first")
    (path,) = entries(own_cache, "test")
    data = path.read_bytes()
    if damage == "flip":
        data = data[:-3] + bytes([data[-3] ^ 0x40]) + data[-2:]
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = b""
    elif damage == "not_a_pickle":  # a valid checksum over bytes that do not unpickle
        import hashlib

        payload = b"not a pickle"
        data = derived_cache.MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    else:
        data = data[len(derived_cache.MAGIC):]
    path.write_bytes(data)
    assert cached(key, lambda: "rebuilt") == "rebuilt"
    assert cached(key, lambda: "not again") == "rebuilt"  # the rewritten entry is good


def test_unwritable_cache_only_costs_the_rebuild(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(blocker / "cache"))
    key = entry_key("test", ["unwritable"])
    assert cached(key, lambda: 1) == 1
    assert cached(key, lambda: 2) == 2  # nothing was stored, nothing failed


def test_cache_off_builds_every_time(own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERSCHIK_CACHE", "off")
    key = entry_key("test", ["off"])
    assert cached(key, lambda: 1) == 1
    assert cached(key, lambda: 2) == 2
    assert not (own_cache / "derived").exists()


def test_the_least_recently_used_entries_go_beyond_the_size_limit(own_cache: Path) -> None:
    import os

    keys = [entry_key("test", ["lru", str(i)]) for i in range(5)]
    for age, key in enumerate(keys):
        derived_cache.write_entry(key, bytes(1000))
        os.utime(derived_cache._path(key), (1000.0 + age, 1000.0 + age))
    assert derived_cache.read_entry(keys[0]) is not None  # used now: the newest
    assert derived_cache.prune(max_bytes=3500) == 3  # down to 80%: two entries stay
    assert [derived_cache.read_entry(k) is not None for k in keys] == \
        [True, False, False, False, True]
    assert derived_cache.prune(max_bytes=1e9) == 0


def test_keys_follow_the_inputs_and_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    assert entry_key("k", ["a", "b"]) == entry_key("k", ["a", "b"])
    assert entry_key("k", ["a", "b"]) != entry_key("k", ["ab"])
    assert entry_key("k", ["a"]) != entry_key("j", ["a"])
    before = entry_key("k", ["a"])
    monkeypatch.setattr(derived_cache, "code_digest", lambda: "other code")
    assert entry_key("k", ["a"]) != before


# --- datasets ---------------------------------------------------------------------------------


def test_dataset_from_the_cache_equals_the_parsed_one_and_follows_edits(
    tmp_path: Path, own_cache: Path
) -> None:
    folder = tmp_path / "data"
    shutil.copytree(EXAMPLE_DIR, folder)
    first = load_dataset(folder)
    assert len(entries(own_cache, "dataset")) == 1
    again = load_dataset(folder)  # from the cache
    for name in ("regions", "sites", "areas", "treatments", "demand", "baseline_volumes",
                 "travel_times"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert list(first.area_geometries.geometry.to_wkb()) == \
        list(again.area_geometries.geometry.to_wkb())
    assert first.area_geometries.crs == again.area_geometries.crs
    assert first.meta == again.meta and first.name == again.name

    regions = (folder / "regions.csv").read_text(encoding="utf-8")
    region_id = first.regions["region_id"].iloc[0]
    (folder / "regions.csv").write_text(regions.replace(
        str(first.regions["region_name"].iloc[0]), "Renamed region"), encoding="utf-8")
    edited = load_dataset(folder)
    assert edited.regions.set_index("region_id").loc[region_id, "region_name"] == \
        "Renamed region"
    assert len(entries(own_cache, "dataset")) == 2


def test_an_invalid_dataset_is_never_cached(tmp_path: Path, own_cache: Path) -> None:
    from herschik.errors import DataError

    folder = tmp_path / "data"
    shutil.copytree(EXAMPLE_DIR, folder)
    (folder / "sites.csv").write_text("site_id\nbroken\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(DataError):
            load_dataset(folder)
    assert entries(own_cache, "dataset") == []


def test_folder_digest_sees_names_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1")
    first = folder_digest(tmp_path)
    (tmp_path / "a.csv").write_text("2")
    second = folder_digest(tmp_path)
    (tmp_path / "a.csv").rename(tmp_path / "b.csv")
    assert len({first, second, folder_digest(tmp_path)}) == 3


# --- instances --------------------------------------------------------------------------------


def test_cached_instance_equals_the_built_one(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import herschik.scenarios.assemble as assemble

    dataset = load_dataset("example")
    digest = folder_digest(EXAMPLE_DIR)
    built = cached_build_instance(dataset, "example", source_digest=digest)

    def must_not_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("built although cached")

    monkeypatch.setattr(assemble, "build_instance", must_not_build)
    hit = cached_build_instance(dataset, "example", source_digest=digest)
    for field in ("demand", "travel_min", "baseline_volume", "baseline_flow"):
        np.testing.assert_array_equal(getattr(built, field), getattr(hit, field))
    assert (built.area_ids, built.sites, built.treatments, built.meta) == \
        (hit.area_ids, hit.sites, hit.treatments, hit.meta)
    with pytest.raises(AssertionError, match="built although cached"):
        cached_build_instance(dataset, "example")  # no identity: always built


# --- maps and the report's chart ----------------------------------------------------------------


def test_maps_from_the_cache_are_the_drawn_bytes(
    tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import herschik.geo.map_drawing as map_drawing
    from herschik.geo.maps import write_maps
    from herschik.optimiser.params import SolveParams

    dataset = load_dataset("example")
    instance = cached_build_instance(dataset, "example")
    result = solve_verified(instance, SolveParams(margin=0.1))
    areas = areas_geodataframe(dataset.areas, dataset.area_geometries)
    drawn = write_maps(tmp_path / "drawn", result.summary, result.site_volumes,
                       result.assignments, dataset.sites, areas)
    assert len(drawn) > 2 and len(entries(own_cache, "map")) == len(drawn)

    def must_not_draw(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("drawn although cached")

    monkeypatch.setattr(map_drawing, "map_body_rgba", must_not_draw)
    monkeypatch.setattr(map_drawing, "map_png_with_caption", must_not_draw)
    copied = write_maps(tmp_path / "copied", result.summary, result.site_volumes,
                        result.assignments, dataset.sites, areas)
    assert {k: p.read_bytes() for k, p in drawn.items()} == \
        {k: p.read_bytes() for k, p in copied.items()}

    # a damaged map entry is drawn again, to the same bytes: from the kept drawing, or
    # entirely when that is damaged too
    monkeypatch.undo()
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(own_cache))
    for kind in ("map", "map-body"):
        for path in entries(own_cache, kind):
            path.write_bytes(path.read_bytes()[:-10])
        redrawn = write_maps(tmp_path / f"redrawn-{kind}", result.summary, result.site_volumes,
                             result.assignments, dataset.sites, areas)
        assert {k: p.read_bytes() for k, p in drawn.items()} == \
            {k: p.read_bytes() for k, p in redrawn.items()}


def test_a_caption_over_the_kept_drawing_is_the_drawn_map_pixel_for_pixel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """map_png_with_caption(map_body_rgba(...)) has the pixels of map_png(...) (savefig): every
    map of two scenarios, decoded by Pillow."""
    import herschik.geo.map_drawing as map_drawing
    from herschik.geo.maps import write_maps
    from herschik.optimiser.params import SolveParams

    monkeypatch.setenv("HERSCHIK_CACHE", "off")  # every map drawn
    bodies: list[tuple[tuple, dict]] = []
    captions: list[str] = []
    draw_body, write_caption = map_drawing.map_body_rgba, map_drawing.map_png_with_caption

    def body(*args: object, **kwargs: object) -> np.ndarray:
        bodies.append((args, kwargs))
        return draw_body(*args, **kwargs)  # type: ignore[arg-type]

    def caption(pixels: np.ndarray, subtitle: str, **kwargs: object) -> bytes:
        captions.append(subtitle)
        return write_caption(pixels, subtitle, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(map_drawing, "map_body_rgba", body)
    monkeypatch.setattr(map_drawing, "map_png_with_caption", caption)
    dataset = load_dataset("example")
    instance = cached_build_instance(dataset, "example")
    areas = areas_geodataframe(dataset.areas, dataset.area_geometries)
    for margin in (0.0, 0.2):
        bodies.clear()
        captions.clear()
        result = solve_verified(instance, SolveParams(margin=margin, max_travel=90))
        written = write_maps(tmp_path / f"m{margin}", result.summary, result.site_volumes,
                             result.assignments, dataset.sites, areas)
        assert len(bodies) == len(captions) == len(written) > 2
        for (args, kwargs), subtitle, path in zip(bodies, captions, written.values(),
                                                  strict=True):
            geometry, values, sites, title = args
            assert "max travel 90 min" in subtitle
            drawn = map_drawing.map_png(geometry, values, sites, title, subtitle, **kwargs)
            assert np.array_equal(_pixels(drawn), _pixels(path.read_bytes()))
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return np.asarray(image.convert("RGBA"))


def test_a_new_scenario_draws_only_the_maps_whose_drawing_changed(
        tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import herschik.geo.map_drawing as map_drawing
    from herschik.geo.maps import write_maps
    from herschik.optimiser.params import SolveParams

    dataset = load_dataset("example")
    instance = cached_build_instance(dataset, "example")
    areas = areas_geodataframe(dataset.areas, dataset.area_geometries)
    first = solve_verified(instance, SolveParams())
    write_maps(tmp_path / "first", first.summary, first.site_volumes, first.assignments,
               dataset.sites, areas)
    drawn: list[str] = []
    draw_body = map_drawing.map_body_rgba

    def body(*args: object, **kwargs: object) -> np.ndarray:
        drawn.append(str(args[3]))
        return draw_body(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(map_drawing, "map_body_rgba", body)
    # a travel limit that changes no plan: every caption changes, no drawing does
    limit = SolveParams(max_travel=1000.0)
    second = solve_verified(instance, limit)
    warm = write_maps(tmp_path / "second", second.summary, second.site_volumes,
                      second.assignments, dataset.sites, areas)
    assert drawn == []
    assert all(a.read_bytes() != b.read_bytes() for a, b in zip(
        sorted((tmp_path / "first").iterdir()), sorted((tmp_path / "second").iterdir()),
        strict=True))
    # the same bytes as drawing every map
    monkeypatch.setenv("HERSCHIK_CACHE", "off")
    cold = write_maps(tmp_path / "cold", second.summary, second.site_volumes,
                      second.assignments, dataset.sites, areas)
    assert len(drawn) == len(cold)
    assert {k: p.read_bytes() for k, p in warm.items()} == \
        {k: p.read_bytes() for k, p in cold.items()}


def test_a_changed_map_is_drawn_not_copied(tmp_path: Path, own_cache: Path) -> None:
    from herschik.geo.maps import write_maps
    from herschik.optimiser.params import SolveParams

    dataset = load_dataset("example")
    instance = cached_build_instance(dataset, "example")
    areas = areas_geodataframe(dataset.areas, dataset.area_geometries)
    pngs = []
    for margin in (0.0, 0.1):
        result = solve_verified(instance, SolveParams(margin=margin))
        written = write_maps(tmp_path / f"m{margin}", result.summary, result.site_volumes,
                             result.assignments, dataset.sites, areas)
        pngs.append(written["overview"].read_bytes())
    assert pngs[0] != pngs[1]  # the caption (margin) differs, so the overview was redrawn


def test_histogram_from_the_cache_is_the_drawn_bytes(own_cache: Path) -> None:
    from herschik.scenarios.report.charts import histogram_png
    from herschik.scenarios.report.travel import extra_travel_histogram_png

    assignments = pd.DataFrame({"extra_min": [-3.0, 0.0, 4.5, 12.0, 12.5],
                                "patients": [1.0, 10.0, 2.5, 3.0, 0.5]})
    first = extra_travel_histogram_png(assignments)
    assert len(entries(own_cache, "histogram")) == 1
    assert extra_travel_histogram_png(assignments) == first
    edges = np.arange(-3.0, 14.0, 1.0)
    counts, _ = np.histogram(assignments["extra_min"], bins=edges,
                             weights=assignments["patients"])
    assert histogram_png(edges, counts, 1, 100) == first  # what the cache hands out


def test_fan_chart_bands_are_scipy_stats_poisson_quantiles_bit_for_bit() -> None:
    """report/charts.py evaluates poisson.ppf from scipy.special (no scipy.stats import): the
    bands must stay those of scipy.stats.poisson.ppf exactly."""
    from herschik.scenarios.report.charts import FAN_QUANTILES, exact_bands
    from scipy.stats import poisson

    rng = np.random.default_rng(3)
    means = np.concatenate([rng.uniform(0, 600, 3000), rng.uniform(0, 3, 1000),
                            [0.0, 1e-300, 1e-9, 1e6, -1.0, np.inf, np.nan]])
    bands = exact_bands(means)
    for name, q in FAN_QUANTILES.items():
        np.testing.assert_array_equal(bands[name], poisson.ppf(q, means))


def test_odds_and_fan_charts_from_the_cache_are_the_drawn_bytes(
        own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import herschik.scenarios.report.charts as report_charts
    from herschik.scenarios.report.odds import exact_fan_chart_png, odds_png

    kept = pd.DataFrame({"site_id": ["b", "a", "c"], "site_name": ["B", "A", ""],
                         "intervention_id": ["t", "t", "u"],
                         "p_meet_norm_1y": [0.42, 0.97, 0.75],
                         "p_meet_norm_period": [0.3, 0.99, 0.8]})
    args = (["A", "B"], [25.5, 61.0], [20.0, np.nan], "t: yearly volume")
    first_odds, first_fan = odds_png(kept, 1), exact_fan_chart_png(*args)
    assert odds_png(kept, 3) != first_odds  # another period is another chart
    assert len(entries(own_cache, "odds-chart")) == 2
    assert len(entries(own_cache, "fan-chart")) == 1

    def must_not_draw(*a: object, **k: object) -> bytes:
        raise AssertionError("drawn although cached")

    monkeypatch.setattr(report_charts, "odds_png", must_not_draw)
    monkeypatch.setattr(report_charts, "fan_chart_png", must_not_draw)
    assert odds_png(kept, 1) == first_odds
    assert exact_fan_chart_png(*args) == first_fan
    monkeypatch.undo()
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(own_cache))
    # what the cache hands out is what drawing gives
    labels = ["B · t", "c · u", "A · t"]  # lowest odds first; no name: the site id
    assert report_charts.odds_png(labels, [0.42, 0.75, 0.97], 1) == first_odds
    assert report_charts.fan_chart_png(args[0], report_charts.exact_bands(args[1]), args[2],
                                       args[3]) == first_fan
    # a changed volume is another chart
    assert exact_fan_chart_png(["A", "B"], [25.5, 61.5], [20.0, np.nan], args[3]) != first_fan


# --- light commands ---------------------------------------------------------------------------

HEAVY = ("pandas", "pydantic", "matplotlib", "geopandas", "scipy", "highspy", "networkx")


def _modules_after(argv: list[str], cache: Path) -> tuple[str, list[str]]:
    code = (
        "import sys, json\n"
        "from herschik.scenarios.cli.main import main\n"
        f"code = main({argv!r})\n"
        f"print(json.dumps([code, [m for m in {HEAVY!r} if m in sys.modules]]), "
        "file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ, "HERSCHIK_CACHE_DIR": str(cache)},
                          timeout=300, check=False)
    exit_code, loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert exit_code == 0, done.stderr
    return done.stdout, loaded


def test_regions_from_the_cache_loads_no_heavy_library(own_cache: Path) -> None:
    cold, loaded_cold = _modules_after(["regions", "--json"], own_cache)
    assert "pandas" in loaded_cold  # the miss loaded (and cached) the dataset
    warm, loaded_warm = _modules_after(["regions", "--json"], own_cache)
    assert warm == cold
    assert loaded_warm == []
    rows = json.loads(warm)
    assert {r["region_id"] for r in rows} >= {"midden", "noordoost"}
    assert all(r["areas"] > 0 and r["sites"] > 0 for r in rows)


#: what a cache miss needs and a warm ``solve`` must not load: the assembly (road network,
#: travel times, the baseline LP) and the map drawing
MISS_ONLY = ("herschik.scenarios.assemble", "herschik.geo.network", "networkx",
             "scipy.spatial", "scipy.optimize", "matplotlib")


def test_a_warm_solve_loads_neither_the_assembly_nor_the_map_drawing(
    tmp_path: Path, own_cache: Path
) -> None:
    # regression: hoisting instance_cache's import of the assembly to the module's top made
    # every solve load networkx and scipy.spatial (~0.5 s of CPU) although the instance came
    # from the cache
    code = (
        "import sys, json\n"
        "from herschik.scenarios.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        f"print(json.dumps([code, [m for m in {MISS_ONLY!r} if m in sys.modules]]), "
        "file=sys.stderr)\n"
    )
    loaded = []
    for run in ("cold", "warm"):
        done = subprocess.run(
            [sys.executable, "-c", code, "solve", "--region", "example", "--out",
             str(tmp_path / run)], capture_output=True, text=True, timeout=600, check=False,
            env={**__import__("os").environ, "HERSCHIK_CACHE_DIR": str(own_cache)})
        exit_code, modules = json.loads(done.stderr.strip().splitlines()[-1])
        assert exit_code == 0, done.stderr
        loaded.append(modules)
    assert set(loaded[0]) == set(MISS_ONLY)  # the miss built the instance and drew the maps
    assert loaded[1] == []
    assert (tmp_path / "warm" / "results.gpkg").read_bytes() == \
        (tmp_path / "cold" / "results.gpkg").read_bytes()


def test_help_loads_no_heavy_library(own_cache: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom herschik.scenarios.cli.main import main\n"
         "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
         f"print([m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)"],
        capture_output=True, text=True, timeout=120, check=False)
    assert "regions" in done.stdout and "solve" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]"
