"""Bad input end to end: ``herschik data export`` -> corrupt -> ``herschik solve --data``.

Issue 7, "Done when": every corruption of a user dataset (and every bad scenario file) gives
exit code 2 and exactly one line on stderr naming the file, the row and the field, never a
traceback, and leaves nothing in the output folder. Harmless variations (a UTF-8 BOM, Windows
line ends, a GeoPackage in WGS84) are accepted. A margin that no site can reach is not bad
input but an infeasible scenario: exit 1 with the diagnosis in summary.json.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from herschik.geo.dataset import load_dataset
from herschik.geo.schema import EXAMPLE_DIR
from herschik.scenarios.cli.main import main

from tests.support.cli import FAST, HERSCHIK


# --- helpers ---------------------------------------------------------------------------------
def read_rows(path: Path) -> list[list[str]]:
    """All rows of a CSV (header first) as lists of strings."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [list(row) for row in csv.reader(handle)]


def write_rows(path: Path, rows: list[list[str]]) -> None:
    """Write rows back as a plain UTF-8 CSV with ``\\n`` line ends."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")


def set_cell(folder: Path, file: str, row: int, field: str, value: str) -> None:
    """Set the cell of 1-based data row ``row`` (header not counted) and column ``field``."""
    rows = read_rows(folder / file)
    rows[row][rows[0].index(field)] = value
    write_rows(folder / file, rows)


def drop_column(folder: Path, file: str, field: str) -> None:
    rows = read_rows(folder / file)
    col = rows[0].index(field)
    write_rows(folder / file, [r[:col] + r[col + 1 :] for r in rows])


def add_column(folder: Path, file: str, field: str, value: str) -> None:
    rows = read_rows(folder / file)
    write_rows(folder / file, [rows[0] + [field]] + [r + [value] for r in rows[1:]])


def copy_row(folder: Path, file: str, source: int, changes: dict[str, str]) -> int:
    """Append a copy of data row ``source`` with ``changes``; return its data row number."""
    rows = read_rows(folder / file)
    new = list(rows[source])
    for field, value in changes.items():
        new[rows[0].index(field)] = value
    rows.append(new)
    write_rows(folder / file, rows)
    return len(rows) - 1


def drop_rows(folder: Path, file: str, field: str, value: str) -> None:
    rows = read_rows(folder / file)
    col = rows[0].index(field)
    write_rows(folder / file, [rows[0]] + [r for r in rows[1:] if r[col] != value])


def rewrite_gpkg(folder: Path, change: Callable[[object], object]) -> None:
    """Replace areas.gpkg by ``change(frame)`` (a GeoDataFrame in, a GeoDataFrame out)."""
    import geopandas as gpd

    path = folder / "areas.gpkg"
    frame = gpd.read_file(path, layer="areas", engine="pyogrio")
    changed = change(frame)
    path.unlink()
    changed.to_file(path, layer="areas", driver="GPKG", engine="pyogrio")  # type: ignore[attr-defined]


def solve(data: Path, out: Path, *extra: str) -> int:
    return main(["solve", "--region", "example", "--data", str(data), "--out", str(out),
                 *FAST, *extra])


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line on stderr (asserting there is exactly one and no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists(), f"{out} was written"
    assert not list(out.parent.glob(f".{out.name}.*")), "staging folder left behind"


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example dataset as written by ``herschik data export``."""
    out = tmp_path_factory.mktemp("export") / "example"
    assert main(["data", "export", "--data", str(EXAMPLE_DIR), "--out", str(out)]) == 0
    return out


@pytest.fixture
def data(exported: Path, tmp_path: Path) -> Path:
    """A private copy of the exported dataset, free to corrupt."""
    return Path(shutil.copytree(exported, tmp_path / "data"))


# --- the corruptions -------------------------------------------------------------------------
@dataclass(frozen=True)
class Corruption:
    """One way to break a dataset and where the error message must point."""

    name: str
    mutate: Callable[[Path], None]
    file: str
    row: int | None
    field: str | None
    words: str = ""  # a further substring the message must contain


def _no_crs(frame: object) -> object:
    return frame.set_crs(None, allow_override=True)  # type: ignore[attr-defined]


def _wrong_crs(frame: object) -> object:
    # RD coordinates labelled as UTM zone 17N (the Americas): "reprojecting" would put the
    # Netherlands in the Atlantic, so the CRS cannot be trusted.
    return frame.set_crs("EPSG:32617", allow_override=True)  # type: ignore[attr-defined]


def _engineering_crs(frame: object) -> object:
    from pyproj import CRS

    local = CRS.from_wkt('LOCAL_CS["local grid",LOCAL_DATUM["unknown",32767],UNIT["metre",1],'
                         'AXIS["X",EAST],AXIS["Y",NORTH]]')
    return frame.set_crs(local, allow_override=True)  # type: ignore[attr-defined]


def _not_utf8(folder: Path) -> None:
    rows = read_rows(folder / "sites.csv")
    rows[3][rows[0].index("site_name")] = "Ziekenhuis Sánchez"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (folder / "sites.csv").write_bytes(buffer.getvalue().encode("latin-1"))


def _route_rows_missing(folder: Path) -> None:
    drop_rows(folder, "travel_times.csv", "area_id", "EXA003")


def _all_routes_inf(folder: Path) -> None:
    rows = read_rows(folder / "travel_times.csv")
    for row in rows[1:]:
        if row[0] == "EXA005":
            row[2] = "inf"
    write_rows(folder / "travel_times.csv", rows)


def _unbalanced(folder: Path) -> None:
    rows = read_rows(folder / "baseline_volumes.csv")
    rows[4][2] = str(float(rows[4][2]) + 25)
    write_rows(folder / "baseline_volumes.csv", rows)


CORRUPTIONS = [
    Corruption("missing column", lambda d: drop_column(d, "areas.csv", "population"),
               "areas.csv", None, "population", "missing column"),
    Corruption("extra column", lambda d: add_column(d, "sites.csv", "colour", "red"),
               "sites.csv", None, "colour", "unexpected column"),
    Corruption("text in a number", lambda d: set_cell(d, "sites.csv", 3, "x", "abc"),
               "sites.csv", 3, "x", "not a number"),
    Corruption("NaN in a required number",
               lambda d: set_cell(d, "demand.csv", 7, "patients", "NaN"),
               "demand.csv", 7, "patients", "missing value"),
    Corruption("empty required number",
               lambda d: set_cell(d, "baseline_volumes.csv", 2, "volume", ""),
               "baseline_volumes.csv", 2, "volume", "missing value"),
    Corruption("empty required id", lambda d: set_cell(d, "areas.csv", 5, "area_id", " "),
               "areas.csv", 5, "area_id", "missing value"),
    Corruption("negative volume",
               lambda d: set_cell(d, "baseline_volumes.csv", 4, "volume", "-5"),
               "baseline_volumes.csv", 4, "volume", "negative"),
    Corruption("fractional population",
               lambda d: set_cell(d, "areas.csv", 6, "population", "12.5"),
               "areas.csv", 6, "population", "whole number"),
    Corruption("population too large",
               lambda d: set_cell(d, "areas.csv", 1, "population", "99999999999999999999"),
               "areas.csv", 1, "population", "too large"),
    Corruption("duplicate site id",
               lambda d: set_cell(d, "sites.csv", 2, "site_id", "EX-UMC"),
               "sites.csv", 2, "site_id", "duplicate"),
    Corruption("duplicate area id",
               lambda d: set_cell(d, "areas.csv", 9, "area_id", "EXA000"),
               "areas.csv", 9, "area_id", "duplicate"),
    Corruption("unknown site",
               lambda d: set_cell(d, "baseline_volumes.csv", 3, "site_id", "EX-NOWHERE"),
               "baseline_volumes.csv", 3, "site_id", "EX-NOWHERE"),
    Corruption("unknown area", lambda d: set_cell(d, "demand.csv", 11, "area_id", "EXA999"),
               "demand.csv", 11, "area_id", "EXA999"),
    Corruption("unknown treatment",
               lambda d: set_cell(d, "demand.csv", 12, "intervention_id", "brain_surgery"),
               "demand.csv", 12, "intervention_id", "brain_surgery"),
    Corruption("unknown region", lambda d: set_cell(d, "sites.csv", 4, "region_id", "mars"),
               "sites.csv", 4, "region_id", "mars"),
    Corruption("unknown site in travel times",
               lambda d: set_cell(d, "travel_times.csv", 8, "site_id", "EX-GONE"),
               "travel_times.csv", 8, "site_id", "EX-GONE"),
    Corruption("region without sites",
               lambda d: copy_row(d, "regions.csv", 1, {"region_id": "empty"}),
               "regions.csv", 2, "region_id", "no sites"),
    Corruption("site outside the Netherlands",
               lambda d: set_cell(d, "sites.csv", 1, "x", "500000"),
               "sites.csv", 1, "x", "outside the Netherlands"),
    Corruption("area outside the Netherlands",
               lambda d: set_cell(d, "areas.csv", 3, "y", "100"),
               "areas.csv", 3, "y", "outside the Netherlands"),
    Corruption("GeoPackage without CRS", lambda d: rewrite_gpkg(d, _no_crs),
               "areas.gpkg", None, "geometry", "CRS"),
    Corruption("GeoPackage in a CRS far from the Netherlands",
               lambda d: rewrite_gpkg(d, _wrong_crs), "areas.gpkg", None, "geometry", "CRS"),
    Corruption("GeoPackage in a local engineering CRS",
               lambda d: rewrite_gpkg(d, _engineering_crs), "areas.gpkg", None, "geometry",
               "CRS"),
    Corruption("area without any route (rows missing)", _route_rows_missing,
               "travel_times.csv", None, "area_id", "EXA003"),
    Corruption("site without any route",
               lambda d: drop_rows(d, "travel_times.csv", "site_id", "EX-NORTH"),
               "travel_times.csv", None, "site_id", "EX-NORTH"),
    Corruption("area without any route (all inf)", _all_routes_inf,
               "travel_times.csv", None, "minutes", "finite"),
    Corruption("negative minutes",
               lambda d: set_cell(d, "travel_times.csv", 10, "minutes", "-3"),
               "travel_times.csv", 10, "minutes", "negative"),
    Corruption("baseline does not balance demand", _unbalanced,
               "baseline_volumes.csv", 4, "volume", "demand"),
    Corruption("malformed dataset.json",
               lambda d: (d / "dataset.json").write_text('{"name": "x", ', encoding="utf-8"),
               "dataset.json", None, None, "JSON"),
    Corruption("dataset.json without baseline",
               lambda d: (d / "dataset.json").write_text(
                   json.dumps({"name": "x", "description": ""}), encoding="utf-8"),
               "dataset.json", None, "baseline", "missing"),
    Corruption("empty CSV", lambda d: (d / "treatments.csv").write_bytes(b""),
               "treatments.csv", None, None, "empty"),
    Corruption("CSV with a header only",
               lambda d: write_rows(d / "sites.csv", read_rows(d / "sites.csv")[:1]),
               "sites.csv", None, None, "no data rows"),
    Corruption("CSV that is not UTF-8", _not_utf8, "sites.csv", 3, None, "UTF-8"),
    Corruption("row with too many fields",
               lambda d: (d / "areas.csv").write_text(
                   (d / "areas.csv").read_text(encoding="utf-8").replace(
                       "EXA002,", "EXA002,extra,", 1), encoding="utf-8"),
               "areas.csv", 3, None, "fields"),
    Corruption("row with too few fields",
               lambda d: (d / "demand.csv").write_text(
                   (d / "demand.csv").read_text(encoding="utf-8") + "EXA000,hn_new\n",
                   encoding="utf-8"), "demand.csv", 761, None, "fields"),
    Corruption("unterminated quote",
               lambda d: (d / "sites.csv").write_text(
                   (d / "sites.csv").read_text(encoding="utf-8").replace(
                       ",Example North Hospital,", ',"Example North Hospital,', 1),
                   encoding="utf-8"), "sites.csv", 2, None, "malformed CSV"),
    Corruption("duplicate column", lambda d: add_column(d, "regions.csv", "region_name", "x"),
               "regions.csv", None, "region_name", "duplicate column"),
    Corruption("missing file", lambda d: (d / "demand.csv").unlink(), "demand.csv", None,
               None, "missing"),
    Corruption("bad enum", lambda d: set_cell(d, "sites.csv", 2, "site_type", "clinic"),
               "sites.csv", 2, "site_type", "must be one of"),
    Corruption("bad boolean", lambda d: set_cell(d, "sites.csv", 2, "topclinical", "maybe"),
               "sites.csv", 2, "topclinical", "true or false"),
]


@pytest.mark.parametrize("case", CORRUPTIONS, ids=[c.name for c in CORRUPTIONS])
def test_corrupted_dataset_exits_2_with_one_line(
    case: Corruption, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case.mutate(data)
    capsys.readouterr()
    out = tmp_path / "out"
    assert solve(data, out) == 2
    line = one_line(capsys)
    assert line.startswith("herschik: error: ")
    assert case.file in line
    if case.row is not None:
        assert f"row {case.row}" in line, line
    if case.field is not None:
        assert f"field {case.field}" in line, line
    assert case.words in line, line
    assert_nothing_written(out)


def test_corruption_through_the_real_command(data: Path, tmp_path: Path) -> None:
    """The installed entry point: exit 2, one stderr line, no traceback, no output folder."""
    set_cell(data, "areas.csv", 6, "population", "12.5")
    out = tmp_path / "out"
    result = subprocess.run(
        [*HERSCHIK, "solve", "--region", "example", "--data", str(data), "--out", str(out),
         *FAST],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "herschik: error: areas.csv row 6, field population: not a whole number ('12.5')"
    ]
    assert_nothing_written(out)


def test_failed_solve_keeps_the_previous_result(
    exported: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input on a re-run leaves the earlier complete result folder untouched."""
    out = tmp_path / "out"
    assert solve(exported, out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    set_cell(data, "sites.csv", 3, "y", "abc")
    capsys.readouterr()
    assert solve(data, out) == 2
    assert "sites.csv row 3, field y" in one_line(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# --- harmless variations are accepted ----------------------------------------------------------
def _bom_and_crlf(folder: Path) -> None:
    for path in folder.glob("*.csv"):
        text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    meta = folder / "dataset.json"
    meta.write_bytes(b"\xef\xbb\xbf" + meta.read_bytes())


def test_bom_and_windows_line_ends_are_accepted(data: Path, exported: Path) -> None:
    _bom_and_crlf(data)
    loaded, original = load_dataset(data), load_dataset(exported)
    for table in ("regions", "sites", "areas", "treatments", "demand", "baseline_volumes",
                  "travel_times"):
        assert getattr(loaded, table).equals(getattr(original, table)), table
    assert loaded.meta == original.meta


def test_bom_and_windows_line_ends_solve(data: Path, tmp_path: Path) -> None:
    _bom_and_crlf(data)
    assert solve(data, tmp_path / "out") == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["status"] == "optimal"


def test_wgs84_geopackage_is_reprojected(data: Path, exported: Path, tmp_path: Path) -> None:
    import geopandas as gpd

    rewrite_gpkg(data, lambda frame: frame.to_crs("EPSG:4326"))  # type: ignore[attr-defined]
    geometries = load_dataset(data).area_geometries
    original = load_dataset(exported).area_geometries
    assert geometries.crs.to_epsg() == 28992
    assert list(geometries["area_id"]) == list(original["area_id"])
    shift = geometries.geometry.hausdorff_distance(original.geometry, align=False)
    assert float(shift.max()) < 1.0  # metres
    out = tmp_path / "out"
    assert solve(data, out) == 0
    areas = gpd.read_file(out / "results.gpkg", layer="areas", engine="pyogrio")
    assert areas.crs.to_epsg() == 28992
    assert float(areas.total_bounds[0]) > 100_000  # metres, not degrees


# --- scenario files ------------------------------------------------------------------------------
BAD_SCENARIOS = [
    ("unknown key", "marginn = 0.1\n", "marginn"),
    ("wrong type", 'margin = "lots"\n', "margin"),
    ("negative margin", "margin = -0.1\n", "margin"),
    ("zero travel limit", "max_travel = 0\n", "max_travel"),
    ("negative travel limit", "max_travel = -30\n", "max_travel"),
    ("unknown objective", 'objective = "cheapest"\n', "objective"),
    ("TOML syntax error", "margin = = 0.1\n", "toml"),
    ("not UTF-8", None, "bad.toml"),
]


@pytest.mark.parametrize(("text", "key"), [(t, k) for _, t, k in BAD_SCENARIOS],
                         ids=[n for n, _, _ in BAD_SCENARIOS])
def test_bad_scenario_file_exits_2_with_one_line(
    text: str | None, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "bad.toml"
    if text is None:
        scenario.write_bytes('name = "Zürich"\n'.encode("latin-1"))
    else:
        scenario.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    code = main(["solve", "--region", "example", "--out", str(out), "--scenario",
                 str(scenario), *FAST])
    assert code == 2
    line = one_line(capsys)
    assert "bad.toml" in line and key in line, line
    assert_nothing_written(out)


def test_missing_scenario_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["solve", "--region", "example", "--out", str(out), "--scenario",
                 str(tmp_path / "nope.toml"), *FAST])
    assert code == 2
    assert "nope.toml" in one_line(capsys)
    assert_nothing_written(out)


def test_margin_no_site_can_reach_is_infeasible_with_diagnosis(tmp_path: Path) -> None:
    scenario = tmp_path / "impossible.toml"
    scenario.write_text('name = "impossible"\nmargin = 40\n', encoding="utf-8")
    out = tmp_path / "out"
    code = main(["solve", "--region", "example", "--out", str(out), "--scenario",
                 str(scenario), *FAST])
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    # treatments without a norm keep today's plan: the others have none (a partial plan)
    assert summary["status"] == "partially_infeasible"
    assert summary["scenario"]["margin"] == 40
    assert summary["diagnosis"]["reason"]
