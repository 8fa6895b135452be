"""--lang nl: every line a planner reads is Dutch (issue 24, item 4).

For each command the same run is made in English and in Dutch. ENGLISH lists phrases of the
English output (each must be there, so the list cannot go stale silently); none may be in the
Dutch output. A second check looks for common English words anywhere in the Dutch text (names
of hospitals and ids are Dutch or codes, so they do not trip it).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from herschik.scenarios.cli.main import main
from herschik.scenarios.report.workbook import read_results_xlsx

from herschik import geo
from herschik.i18n import set_process_language

#: common English words that are no Dutch words ("of" is); none may be in Dutch output (ids like
#: hospital_changes.csv or og_resection do not match)
ENGLISH_WORDS = re.compile(r"\b(the|and|with|would|which|years?|today|patients|hospitals?|"
                           r"keeping|cannot|optional|moves?|wrote|runs|stop|start|treatments?)\b")

EXAMPLE = Path(geo.__file__).parent / "data" / "example"


@pytest.fixture(autouse=True)
def _process_language_reset() -> Iterator[None]:
    yield
    set_process_language(None)  # main() sets it for the process: leave none behind


def _run(capfd: pytest.CaptureFixture[str], args: list[str], lang: str,
         code: int = 0) -> str:
    capfd.readouterr()
    assert main([*args, "--lang", lang]) == code
    captured = capfd.readouterr()
    return captured.out + captured.err


def _check(english: str, dutch: str, phrases: list[str]) -> None:
    for phrase in phrases:
        assert phrase in english, f"the English output no longer says {phrase!r}"
        assert phrase not in dutch, f"English in the Dutch output: {phrase!r}"
    found = ENGLISH_WORDS.findall(re.sub(r"\S*/\S*", "", dutch))  # paths are not words
    assert not found, f"English words in the Dutch output: {sorted(set(found))}"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.skip += tag in ("script", "style")
        for name, value in attrs:  # what a screen reader or a hover shows
            if name in ("alt", "title") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self.skip and data.strip():
            self.parts.append(" ".join(data.split()))


def _visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts)


# --- solve: console, report.html, workbook, hospital_changes.csv ---------------------------
@pytest.fixture(scope="module")
def midden(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """midden solved in both languages: (result folder, console text)."""
    import contextlib
    import io

    out = {}
    for lang in ("en", "nl"):
        folder = tmp_path_factory.mktemp(lang) / "midden"
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(["solve", "--region", "midden", "--out", str(folder), "--no-maps",
                         "--xlsx", "--lang", lang]) == 0
        set_process_language(None)
        out[lang] = (folder, buffer.getvalue())
    return out


SOLVE_CONSOLE = ["Baseline: illustrative", "patients/yr", "must move", "Optional moves",
                 "Weakest kept role", "Hospital roles", "Treatments that change",
                 "treatments unchanged", "Note: the baseline volumes are illustrative"]
REPORT = ["Baseline: illustrative", "Where the patients of", "Why it loses the treatment",
          "Why they move", "displaced (the hospital stops it)", "Each reason is exact",
          "cannot reach the norm with its own patients", "keeping it would cost",
          "extra patient-minutes per year", "would lose it instead",
          "Fragile: kept within 10 % of the required minimum", "Weakest kept hospital",
          "Yearly volumes are counts that fluctuate", "odds of meeting the norm (1 year)",
          "years below the norm", "the yearly volume of each kept hospital",
          "split into 19 independent sub-problems", "Lowest odds of meeting the norm",
          "Lung cancer: resections"]


def test_solve_console_in_dutch(midden: dict[str, tuple[Path, str]]) -> None:
    _check(midden["en"][1], midden["nl"][1], SOLVE_CONSOLE)
    assert "Longkanker: resecties (lung_resection)" in midden["nl"][1]  # the norm table's name


def test_report_in_dutch(midden: dict[str, tuple[Path, str]]) -> None:
    english = _visible((midden["en"][0] / "report.html").read_text(encoding="utf-8"))
    dutch = _visible((midden["nl"][0] / "report.html").read_text(encoding="utf-8"))
    _check(english, dutch, REPORT)
    assert dutch.splitlines()[3].startswith("Uitgangssituatie: illustratief")  # under the title
    assert re.search(r"\d\.\d{3},\d", dutch)  # Dutch numbers: 5.151,1


def test_reasons_csv_in_the_run_language(midden: dict[str, tuple[Path, str]]) -> None:
    """hospital_changes.csv: the same prices in both languages, the reason in the run's."""
    en, nl = (pd.read_csv(midden[lang][0] / "hospital_changes.csv", dtype=str)
              for lang in ("en", "nl"))
    lost_en, lost_nl = en[en["status"] == "lost"], nl[nl["status"] == "lost"]
    assert len(lost_nl) == 8
    for column in ("keep_feasible", "keep_cost_moves", "keep_cost_patient_min",
                   "keep_moves_from", "status", "volume_before"):
        assert list(lost_en[column].fillna("")) == list(lost_nl[column].fillna("")), column
    reasons = "\n".join(lost_nl["reason"])
    _check("\n".join(lost_en["reason"]), reasons,
           ["cannot reach the norm", "keeping it would cost", "patient-minutes per year",
            "would lose it instead", "/yr today", "required)"])
    assert "haalt de norm niet met de eigen patiënten" in reasons
    assert re.search(r"\d+,\d/jr nu", reasons)  # Dutch decimal mark in the sentence
    summary = (midden["nl"][0] / "summary.json").read_text(encoding="utf-8")
    assert '"baseline_source": "Baseline: illustrative' in summary  # machine-readable


def test_workbook_in_dutch(midden: dict[str, tuple[Path, str]]) -> None:
    from openpyxl import load_workbook

    books = {lang: load_workbook(midden[lang][0] / "results.xlsx", read_only=True)
             for lang in ("en", "nl")}
    texts = {}
    for lang, book in books.items():
        lines = [" | ".join(book.sheetnames)]
        for sheet in book.worksheets:
            header = next(sheet.iter_rows(max_row=1, values_only=True))
            lines.append(" | ".join(str(v) for v in header))
        lines.append(str(next(books[lang].worksheets[0].iter_rows(
            min_row=3, max_row=3, values_only=True))))  # the baseline line
        texts[lang] = "\n".join(lines)
        book.close()
    _check(texts["en"], texts["nl"],
           ["summary", "hospital_changes", "Hospital", "Patients/yr today", "Outcome",
            "Why it loses the treatment", "Odds of meeting the norm", "Baseline: illustrative",
            "Optional moves"])
    sheets = read_results_xlsx(midden["nl"][0] / "results.xlsx")
    assert list(sheets) == list(read_results_xlsx(midden["en"][0] / "results.xlsx"))


# --- compare -------------------------------------------------------------------------------
def test_compare_in_dutch(midden: dict[str, tuple[Path, str]], tmp_path: Path,
                          capfd: pytest.CaptureFixture[str]) -> None:
    run_a = midden["en"][0]
    run_b = tmp_path / "b"
    shutil.copytree(run_a, run_b)
    changes = pd.read_csv(run_b / "hospital_changes.csv", dtype=str, keep_default_na=False)
    lost = changes.index[changes["status"] == "lost"][0]
    changes.loc[lost, ["status", "volume_after"]] = ["kept", "60.0"]  # B keeps one role
    changes.to_csv(run_b / "hospital_changes.csv", index=False)
    args = ["compare", str(run_a), str(run_b)]
    english, dutch = _run(capfd, args, "en"), _run(capfd, args, "nl")
    _check(english, dutch, ["KPIs: A =", "Hospital changes that differ (1)", "Share displaced",
                            "Patients displaced", "Optional moves", "Hospital roles after",
                            "Lowest odds of meeting the norm", "lost", "kept"])
    assert "Ziekenhuiswijzigingen die verschillen (1)" in dutch and "5,9%" in dutch
    same = _run(capfd, ["compare", str(run_a), str(run_a)], "nl")
    assert "Geen ziekenhuis verschilt" in same
    missing = _run(capfd, ["compare", str(run_a), str(tmp_path / "none")], "nl", code=2)
    assert "geen map" in missing


# --- regions, data summary -----------------------------------------------------------------
def test_regions_in_dutch(capfd: pytest.CaptureFixture[str]) -> None:
    english, dutch = _run(capfd, ["regions"], "en"), _run(capfd, ["regions"], "nl")
    _check(english, dutch, ["Regions of dataset", "Hospitals", "Patients/yr",
                            "Also built in: region 'example'", "5,151.1"])
    assert "5.151,1" in dutch and "Ziekenhuizen" in dutch


def test_data_summary_in_dutch(capfd: pytest.CaptureFixture[str]) -> None:
    args = ["data", "summary"]
    english, dutch = _run(capfd, args, "en"), _run(capfd, args, "nl")
    _check(english, dutch, ["Baseline: illustrative", "per region and treatment",
                            "Below norm", "Baseline volumes are ILLUSTRATIVE",
                            "not real hospital volumes"])
    assert dutch.startswith("Uitgangssituatie: illustratief")


def test_import_volumes_in_dutch(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Regression: only the Baseline line of `data import-volumes` followed --lang."""
    from herschik import scenarios

    sample = Path(scenarios.__file__).parent / "example" / "volumes_midden_SYNTHETIC.csv"
    outputs = {lang: _run(capfd, ["data", "import-volumes", str(sample), "--out",
                                  str(tmp_path / lang)], lang) for lang in ("en", "nl")}
    english, dutch = (re.sub(r"\s+", " ", outputs[lang]) for lang in ("en", "nl"))
    _check(english, dutch, ["rows:", "imputed from intervals", "distance decay",
                            "every hospital volume reproduced", "pairs from the table",
                            "use it with --data"])
    assert "afstandsverval" in dutch and "gebruik het met --data" in dutch


def test_matrix_in_dutch(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Regression: `matrix` said "wrote N travel times" whatever --lang."""
    outputs = {lang: _run(capfd, ["matrix", "--region", "example", "--out",
                                  str(tmp_path / f"{lang}.csv")], lang) for lang in ("en", "nl")}
    _check(outputs["en"], outputs["nl"], ["travel times", "areas x"])
    assert "reistijden" in outputs["nl"]
    assert (tmp_path / "en.csv").read_bytes() == (tmp_path / "nl.csv").read_bytes()


# --- sweep ---------------------------------------------------------------------------------
def test_sweep_in_dutch(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "small.toml"
    grid.write_text('name = "small"\n[grid]\nmargin = [0, 0.25]\n', encoding="utf-8")
    outputs = {}
    for lang in ("en", "nl"):
        outputs[lang] = _run(capfd, ["sweep", str(grid), "--out", str(tmp_path / lang),
                                     "--regions", "example", "--data", str(EXAMPLE),
                                     "--workers", "1"], lang)
    # tqdm's progress bar says "sweep small: 50%|...": the command's name, not English
    english, dutch = (re.sub(r"sweep small:\s+\d+%.*", "", outputs[lang])
                      for lang in ("en", "nl"))
    _check(english, dutch, ["Baseline: ", "scenario(s)", "already finished", "to run",
                            "2 runs:", "wrote", "optimal"])
    assert "2 berekeningen: 2 optimaal" in dutch


def test_partial_plan_diagnosis_in_dutch(tmp_path: Path,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    """--margin 0.2: og_endoscopic has no plan; the console and summary.json say why in Dutch
    with Dutch numbers (28,1 patients, a margin of at most 0,11)."""
    import json

    dutch = _run(capfd, ["solve", "--region", "midden", "--margin", "0.2", "--no-maps",
                         "--no-report", "--no-reasons", "--out", str(tmp_path / "nl")], "nl",
                 code=1)
    reason = json.loads((tmp_path / "nl" / "summary.json").read_text())["diagnosis"]["reason"]
    assert reason.startswith("Geen plan voor og_endoscopic (de andere behandelingen hebben er "
                             "een): Maag-slokdarmkanker: endoscopische resecties")
    assert "28,1" in reason and "0,11" in reason and "28.1" not in reason
    assert "deels onhaalbaar" in dutch and "No plan for" not in dutch
    found = ENGLISH_WORDS.findall(re.sub(r"\S*/\S*", "", dutch))
    assert not found, found


def test_simulate_in_dutch(midden: dict[str, tuple[Path, str]], tmp_path: Path,
                           capfd: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the table's title and headers on one line
    run = midden["en"][0]
    english, dutch = (_run(capfd, ["simulate", str(run), "--years", "200", "--out",
                                   str(tmp_path / lang)], lang) for lang in ("en", "nl"))
    _check(english, dutch, ["simulated years", "kept hospitals with a norm", "years below norm",
                            "exact odds", "wrote"])
    assert "gesimuleerde jaren" in dutch and re.search(r"\d,\d%", dutch)
