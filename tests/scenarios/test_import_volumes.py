"""`herschik data import-volumes` (issue 22 B and C): a planner's volume table in one command.

The shipped sample table (synthetic, midden) imports, solves, and the run's site_volumes.csv
`volume_before` equals the table; bad tables exit 2 naming file, row and field with nothing
written; every output names the baseline source.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from herschik.geo.dataset import load_dataset
from herschik.geo.hospital_match import hospital_matcher, normalise, treatment_matcher
from herschik.geo.interaction import Block, balance, fit_decay, origin_constrained_volumes
from herschik.geo.volume_table import parse_count, read_volume_table
from herschik.scenarios.cli.main import main

from herschik import scenarios
from herschik.errors import DataError

SAMPLE = Path(scenarios.__file__).parent / "example" / "volumes_midden_SYNTHETIC.csv"


def _table_means(path: Path) -> dict[tuple[str, str], float]:
    """The sample's mean per year per (hospital text, treatment text), read independently."""
    with path.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    imputed = {"<10": 5.0, "1-4": 2.5, "*": 5.0}
    sums: dict[tuple[str, str], float] = {}
    for row in rows:
        value = imputed.get(row["aantal"], None)
        value = float(row["aantal"]) if value is None else value
        key = (row["ziekenhuis"], row["behandeling"])
        sums[key] = sums.get(key, 0.0) + value
    return {k: v / 2 for k, v in sums.items()}  # two years, every row listed in both


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("import") / "midden-real"
    assert main(["data", "import-volumes", str(SAMPLE), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def solved(imported: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run") / "midden"
    assert main(["solve", "--region", "midden", "--data", str(imported), "--out", str(run),
                 "--xlsx", "--no-maps"]) == 0
    return run


def test_sample_imports_solves_and_reproduces_the_table(imported: Path, solved: Path) -> None:
    matches = pd.read_csv(imported / "import_matches.csv")
    site_of = dict(zip(matches["hospital"], matches["site_id"], strict=True))
    treatment_of = dict(zip(matches["treatment"], matches["intervention_id"], strict=True))
    expected: dict[tuple[str, str], float] = {}
    for (hospital, treatment), mean in _table_means(SAMPLE).items():
        key = (site_of[hospital], treatment_of[treatment])
        expected[key] = expected.get(key, 0.0) + mean
    volumes = pd.read_csv(solved / "site_volumes.csv")
    got = volumes.set_index(["site_id", "intervention_id"])["volume_before"]
    imported_treatments = {t for _, t in expected}
    # every row of the table, within 0.5 patients/yr
    for key, value in expected.items():
        assert abs(got[key] - value) <= 0.5, key
    # nobody else provides an imported treatment in midden today
    others = volumes[volumes["intervention_id"].isin(imported_treatments)
                     & (volumes["volume_before"] > 0)]
    assert {(r.site_id, r.intervention_id) for r in others.itertuples()} == set(expected)
    # exact per hospital total
    table_total = pd.Series(expected).groupby(level=0).sum()
    run_total = others.groupby("site_id")["volume_before"].sum()
    assert np.abs(run_total.reindex(table_total.index) - table_total).max() <= 1e-6
    # and the flows the run started from reproduce them too (each site's inflow = its volume)
    flows = pd.read_csv(imported / "baseline_flows.csv").groupby(
        ["site_id", "intervention_id"])["patients"].sum()
    assert max(abs(flows[k] - v) for k, v in expected.items()) <= 1e-6


def test_report_states_fit_matches_and_imputations(imported: Path) -> None:
    report = json.loads((imported / "import_report.json").read_text(encoding="utf-8"))
    assert report["source"]["sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert report["source"]["ignored_columns"] == ["bron"]
    assert report["fit"]["max_volume_error"] <= 1e-6
    assert 0 < report["fit"]["decay_per_minute"] < 1
    # the fitted decay explains the spread over the hospitals better than no decay
    assert (report["fit"]["misallocated_share_fitted_decay"]
            < report["fit"]["misallocated_share_no_decay"])
    assert {r["published"] for r in report["imputed_rows"]} == {"<10", "1-4", "*"}
    lung_ede = next(h for h in report["hospitals"] if h["site_id"] == "Z108601"
                    and h["intervention_id"] == "lung_resection")
    assert (lung_ede["volume_table"], lung_ede["volume_low"], lung_ede["volume_high"]) == (
        3.75, 1.0, 6.5)
    assert lung_ede["imputed_rows"] == 2
    sources = {(s["region_id"], s["intervention_id"]): s["source"] for s in report["sources"]}
    assert sources[("midden", "lung_resection")] == SAMPLE.name
    assert sources[("west", "lung_resection")].startswith("base")
    assert report["matches"]["rows"] == 28 and report["matches"]["fuzzy"] > 0


def test_untouched_treatments_and_regions_keep_the_base(imported: Path) -> None:
    base = load_dataset(None)
    new = load_dataset(imported)
    sites = base.sites.set_index("site_id")["region_id"]
    keep = ~(base.baseline_volumes["site_id"].map(sites).eq("midden")
             & base.baseline_volumes["intervention_id"].isin(
                 ["lung_resection", "og_resection", "pancreas_resection", "aaa_surgery"]))
    merged = base.baseline_volumes[keep].merge(new.baseline_volumes,
                                               on=["site_id", "intervention_id"])
    assert len(merged) == int(keep.sum())
    assert (merged["volume_x"] == merged["volume_y"]).all()


def test_every_output_names_the_baseline_source(imported: Path, solved: Path) -> None:
    digest = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()[:12]
    summary = json.loads((solved / "summary.json").read_text(encoding="utf-8"))
    assert SAMPLE.name in summary["baseline_source"] and digest in summary["baseline_source"]
    html = (solved / "report.html").read_text(encoding="utf-8")
    line = html.index(SAMPLE.name)
    assert line < html.index("Meander") and line < html.index("<section")
    from openpyxl import load_workbook

    book = load_workbook(solved / "results.xlsx", read_only=True)
    # two header rows (readable labels, then the CSV names); the first value row follows
    first = list(book.worksheets[0].iter_rows(min_row=3, max_row=3, values_only=True))[0]
    assert first[0] == "baseline_source" and SAMPLE.name in first[1]
    book.close()


def test_console_first_line_is_the_baseline_source(imported: Path, tmp_path: Path,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "--region", "example", "--out", str(tmp_path / "ex"),
                 "--no-maps", "--no-report"]) == 0
    first = capfd.readouterr().out.splitlines()[0]
    assert first.startswith("Baseline:")
    assert main(["data", "summary", "--data", str(imported), "--json"]) == 0
    capfd.readouterr()
    assert main(["solve", "--region", "west", "--data", str(imported), "--out",
                 str(tmp_path / "w"), "--no-maps", "--no-report", "--max-travel", "1"]) in (0, 1)
    first = capfd.readouterr().out.splitlines()[0]
    assert SAMPLE.name in first


def test_illustrative_baseline_is_said_above_the_first_hospital(tmp_path: Path) -> None:
    assert main(["solve", "--region", "midden", "--out", str(tmp_path / "m"), "--no-maps"]) == 0
    html = (tmp_path / "m" / "report.html").read_text(encoding="utf-8")
    line = html.index("Baseline: illustrative (calibrated to published provider counts)")
    first_hospital = min(html.find(n) for n in ("Meander", "Antonius", "Diakonessenhuis")
                         if html.find(n) >= 0)
    assert line < first_hospital
    summary = json.loads((tmp_path / "m" / "summary.json").read_text(encoding="utf-8"))
    assert summary["baseline_source"].startswith("Baseline: illustrative")


# --------------------------------------------------------------------- formats and encodings
def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_comma_csv_xlsx_and_semicolon_bom_read_alike(tmp_path: Path) -> None:
    from openpyxl import Workbook

    comma = _write(tmp_path / "a.csv", "hospital,treatment,patients\n"
                   "UMC Utrecht,lung_resection,12.5\nMeander MC Amersfoort,lung_resection,7\n")
    semi = _write(tmp_path / "b.csv", "\ufeffZiekenhuis;Behandeling;Aantal\r\n"
                  "UMC Utrecht;Longkanker: resecties;12,5\r\n"
                  "Meander MC Amersfoort;Longkanker: resecties;7\r\n")
    book = Workbook()
    sheet = book.active
    sheet.append(["Hospital", "Treatment", "Patients"])
    sheet.append(["UMC Utrecht", "lung_resection", 12.5])
    sheet.append(["Meander MC Amersfoort", "lung_resection", 7])
    book.save(tmp_path / "c.xlsx")
    cp1252 = _write(tmp_path / "d.csv", "ziekenhuis;behandeling;aantal\n"
                    "Máxima MC Veldhoven;Longkanker: resecties;3\n", "cp1252")
    tables = [read_volume_table(p) for p in (comma, semi, tmp_path / "c.xlsx")]
    assert [[(r.hospital, r.patients) for r in t.rows] for t in tables] == [
        [("UMC Utrecht", 12.5), ("Meander MC Amersfoort", 7.0)]] * 3
    assert read_volume_table(cp1252).rows[0].hospital == "Máxima MC Veldhoven"


@pytest.mark.parametrize(("text", "expected"), [
    ("12", (12.0, 12.0, 12.0, False)), ("<10", (5.0, 1.0, 9.0, True)),
    ("1-4", (2.5, 1.0, 4.0, True)), ("*", (5.0, 1.0, 9.0, True)),
    ("<=4", (2.5, 1.0, 4.0, True)), ("n.p.", (5.0, 1.0, 9.0, True)),
])
def test_counts_and_registry_intervals(text: str, expected: tuple) -> None:
    assert parse_count("t.csv", 1, text, decimal_comma=False) == expected


# --------------------------------------------------------------------- matching
@pytest.fixture(scope="module")
def base():
    return load_dataset(None)


@pytest.mark.parametrize(("name", "site"), [
    ("St. Antonius Nieuwegein", "Z105801"), ("Sint Antonius Ziekenhuis, Nieuwegein", "Z105801"),
    ("UMC Utrecht", "Z107601"), ("Universitair Medisch Centrum Utrecht", "Z107601"),
    ("Maxima MC Veldhoven", "Z103501"), ("Haga Ziekenhuis Leyweg", "Z102401"),
    ("Meandr Medisch Centrum Amersfort", "Z103604"), ("Amsterdam UMC locatie VUmc", "Z107901"),
    ("LUMC", "Z103301"), ("z105801", "Z105801"), ("Gelderse Vallei Ede", "Z108601"),
])
def test_hospital_names_as_planners_write_them(base, name: str, site: str) -> None:
    assert hospital_matcher(base.sites).match(name, "t.csv", 1).target == site


def test_an_organisation_without_location_is_ambiguous(base) -> None:
    with pytest.raises(DataError) as error:
        hospital_matcher(base.sites).match("Amsterdam UMC", "t.csv", 4)
    assert (error.value.file, error.value.row, error.value.field) == ("t.csv", 4, "hospital")
    assert "Z100101" in error.value.message and "Z107901" in error.value.message


def test_unknown_hospital_names_its_three_nearest(base) -> None:
    with pytest.raises(DataError) as error:
        hospital_matcher(base.sites).match("Kliniek Nergenshuizen", "t.csv", 2)
    assert "nearest" in error.value.message and error.value.message.count("(Z") == 3


def test_normalisation() -> None:
    assert normalise("Sint-Antonius Ziekenhuis") == normalise("St. Antonius ZH")
    assert normalise("HagaZiekenhuis") == "haga zh"
    assert normalise("Universitair Medisch Centrum Groningen") == "umc groningen"
    assert normalise("Máxima Medisch Centrum locatie Veldhoven") == "maxima mc veldhoven"


def test_treatments_by_id_english_or_dutch_name(base) -> None:
    matcher = treatment_matcher(base.treatments)
    for name in ("lung_resection", "Longkanker: resecties", "longkanker resecties",
                 "Lung cancer: resections"):
        assert matcher.match(name, "t.csv", 1).target == "lung_resection"


# --------------------------------------------------------------------- bad input, exit 2
@pytest.mark.parametrize(("body", "row", "field", "words"), [
    ("UMC Utrecht;lung_resection;-3\n", 1, "patients", "negative"),
    ("UMC Utrecht;lung_resection;veel\n", 1, "patients", "not a number"),
    ("UMC Utrecht;lung_resection;4\nUMCU;lung_resection;5\n", 2, "hospital", "duplicate"),
    ("UMC Utrecht;carotid_1week;4\n", 1, "treatment", "process norm"),
    ("UMC Utrecht;Heupvervanging;4\n", 1, "treatment", "unknown treatment"),
    ("Kliniek Nergens;lung_resection;4\n", 1, "hospital", "nearest"),
    ("Isala;lung_resection;4\n", 1, "hospital", "ambiguous"),
])
def test_bad_tables_exit_2_naming_file_row_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, row: int, field: str,
        words: str) -> None:
    table = _write(tmp_path / "bad.csv", "ziekenhuis;behandeling;aantal\n" + body)
    out = tmp_path / "out"
    assert main(["data", "import-volumes", str(table), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"bad.csv row {row}, field {field}:" in err and words in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_missing_column_and_foreign_out_folder(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    table = _write(tmp_path / "t.csv", "ziekenhuis;aantal\nUMC Utrecht;4\n")
    assert main(["data", "import-volumes", str(table), "--out", str(tmp_path / "o")]) == 2
    assert "t.csv, field treatment: missing column" in capsys.readouterr().err.replace(
        "t.csv field", "t.csv, field")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    good = _write(tmp_path / "g.csv", "hospital,treatment,patients\nUMC Utrecht,lung_resection,9\n")
    assert main(["data", "import-volumes", str(good), "--out", str(mine)]) == 2
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1


def test_same_input_same_bytes(imported: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert main(["data", "import-volumes", str(SAMPLE), "--out", str(again)]) == 0
    for name in ("baseline_flows.csv", "demand.csv", "baseline_volumes.csv", "dataset.json",
                 "import_report.json", "import_matches.csv", "imported_volumes.csv"):
        assert (again / name).read_bytes() == (imported / name).read_bytes(), name


# --------------------------------------------------------------------- out-of-region patients
def test_stated_outside_share_arrives_at_the_hospital(tmp_path: Path) -> None:
    table = _write(tmp_path / "t.csv", "hospital,treatment,patients\n"
                   "UMC Utrecht,lung_resection,100\nMeander MC Amersfoort,lung_resection,50\n")
    out = tmp_path / "o"
    assert main(["data", "import-volumes", str(table), "--out", str(out),
                 "--outside-share", "0.2"]) == 0
    data = load_dataset(out)
    flows = data.baseline_flows[data.baseline_flows["intervention_id"] == "lung_resection"]
    umc = flows[flows["site_id"] == "Z107601"]
    assert abs(umc["patients"].sum() - 100) <= 1e-6
    # the hospital's own area sends at least its 20 out-of-region patients
    assert umc["patients"].max() >= 20
    midden = data.areas.loc[data.areas["region_id"] == "midden", "area_id"]
    demand = data.demand[data.demand["area_id"].isin(midden)
                         & (data.demand["intervention_id"] == "lung_resection")]
    assert abs(demand["patients"].sum() - 150) <= 1e-3


def test_national_table_estimates_the_outside_share(base, tmp_path: Path) -> None:
    rows = base.baseline_volumes[base.baseline_volumes["intervention_id"] == "og_resection"]
    rows = rows.assign(volume=rows["volume"].round(0))
    # one region treats 30 % more than its population: the surplus comes from outside
    midden = set(base.sites.loc[base.sites["region_id"] == "midden", "site_id"])
    rows.loc[rows["site_id"].isin(midden), "volume"] *= 1.3
    table = tmp_path / "nl.csv"
    rows.rename(columns={"site_id": "hospital", "intervention_id": "treatment",
                         "volume": "patients"}).to_csv(table, index=False)
    out = tmp_path / "o"
    assert main(["data", "import-volumes", str(table), "--out", str(out)]) == 0
    report = json.loads((out / "import_report.json").read_text(encoding="utf-8"))
    shares = {s["region_id"]: s["outside_share"] for s in report["sources"]
              if s["intervention_id"] == "og_resection"}
    assert shares["midden"] > 0.15
    assert min(shares.values()) == 0.0
    # the illustrative volumes hardly depend on catchments: the weak decay is said, not hidden
    assert "warning" in report["fit"] and report["fit"]["decay_per_minute"] < 0.01


# --------------------------------------------------------------------- the flow model
def _synthetic(seed: int, beta: float) -> Block:
    rng = np.random.default_rng(seed)
    areas = rng.uniform(0, 60, (300, 2))
    sites = rng.uniform(0, 60, (6, 2))
    minutes = np.linalg.norm(areas[:, None] - sites[None], axis=2)
    demand = rng.uniform(0.5, 3.0, 300)
    block = Block(demand, np.ones(6), minutes)
    return Block(demand, origin_constrained_volumes(block, beta), minutes)


@pytest.mark.parametrize("beta", [0.03, 0.1, 0.3])
def test_fit_recovers_the_decay_that_made_the_volumes(beta: float) -> None:
    blocks = [_synthetic(seed, beta) for seed in range(3)]
    assert abs(fit_decay(blocks).beta - beta) <= 0.02 * beta + 1e-3


def test_fit_separates_group_attractiveness_from_decay() -> None:
    rng = np.random.default_rng(11)
    blocks = []
    for seed in range(4):
        block = _synthetic(seed, 0.08)
        group = (rng.random(6) < 0.4).astype(int)
        group[:2] = (0, 1)  # both groups present
        weights = np.array([1.0, 3.0])
        made = Block(block.demand, np.ones(6), block.minutes, group)
        blocks.append(Block(block.demand, origin_constrained_volumes(made, 0.08, weights),
                            block.minutes, group))
    fitted = fit_decay(blocks, 2)
    assert abs(fitted.beta - 0.08) <= 0.005
    assert abs(fitted.attractiveness[1] - 3.0) <= 0.1


@pytest.mark.parametrize("seed", range(5))
def test_balance_meets_both_margins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    minutes = rng.uniform(5, 90, (40, 5))
    minutes[rng.random((40, 5)) < 0.1] = np.inf
    minutes[:, 0] = rng.uniform(5, 90, 40)  # every area reaches a site
    demand = rng.uniform(0, 5, 40) * (rng.random(40) < 0.9)
    volume = rng.uniform(0.1, 1, 5)
    volume *= demand.sum() / volume.sum()
    flows = balance(demand, volume, minutes, 0.05)
    np.testing.assert_allclose(flows.sum(axis=1), demand, atol=1e-8)
    np.testing.assert_allclose(flows.sum(axis=0), volume, atol=1e-8)
    assert (flows[~np.isfinite(minutes)] == 0).all() and (flows >= 0).all()


def test_every_site_and_treatment_name_resolves_to_itself(base) -> None:
    """Regression: "Bravis Ziekenhuis Bergen op Zoom" was ambiguous with the Roosendaal site
    (same organisation, geocoded in the same town): a site's own name now wins."""
    hospitals = hospital_matcher(base.sites)
    for site in base.sites.itertuples(index=False):
        assert hospitals.match(site.site_name, "t.csv", 1).target == site.site_id
    treatments = treatment_matcher(base.treatments)
    for row in base.assigned_treatments().itertuples(index=False):
        assert treatments.match(row.name, "t.csv", 1).target == row.intervention_id


def test_hospitals_by_agb_code_when_the_sites_table_has_them(tmp_path: Path) -> None:
    from herschik.geo.dataset_export import export_dataset

    base = load_dataset("example")
    sites = base.sites.copy()
    sites["agb"] = [f"0{6000000 + i}" for i in range(len(sites))]  # leading zero, as AGB codes
    base.sites = sites
    folder = export_dataset(base, tmp_path / "base")
    assert load_dataset(folder).sites["agb"].iloc[0] == "06000000"
    first, second = sites["site_id"].iloc[0], sites["site_id"].iloc[1]
    treatment = base.assigned_treatments()["intervention_id"].iloc[0]
    table = _write(tmp_path / "agb.csv", "agb;behandeling;aantal\n"  # Excel dropped the zero
                   f"6000000;{treatment};30\n06000001;{treatment};12\n")
    out = tmp_path / "o"
    assert main(["data", "import-volumes", str(table), "--out", str(out),
                 "--data", str(folder)]) == 0
    matches = pd.read_csv(out / "import_matches.csv")
    assert list(matches["site_id"]) == [first, second]
    assert set(matches["hospital_match"]) == {"agb"}
    with pytest.raises(DataError, match="no agb column"):
        hospital_matcher(load_dataset("example").sites).match("06000000", "t.csv", 1)


def test_app_header_names_the_imported_table(imported: Path, tmp_path: Path) -> None:
    from herschik.scenarios.app.session import AppState

    state = AppState(load_dataset(imported), out_dir=tmp_path, source_args=["--data",
                     str(imported)], areas_label="", first_region="midden")
    source = state.meta()["baseline_source"]
    assert SAMPLE.name in source
    assert hashlib.sha256(SAMPLE.read_bytes()).hexdigest()[:12] in source
