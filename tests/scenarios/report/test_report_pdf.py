"""report.pdf: the region report printed on A4 in at most 12 pages, deterministic, with maps
only for the treatments that change and the solver internals in the appendix.

Needs headless Chromium (/usr/bin/chromium, Debian package ``chromium``; ``.ci/run`` installs
it): skipped locally without it, a failure with ``CI`` set.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from herschik.scenarios.cli.main import main
from herschik.scenarios.report.pdf import find_chromium, normalise_chromium_pdf, write_pdf

pypdf = pytest.importorskip("pypdf")

A4_POINTS = (595.0, 842.0)
MAX_PAGES = 12

needs_chromium = pytest.mark.skipif(
    find_chromium() is None and not os.environ.get("CI"),
    reason="headless Chromium not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def midden_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pdf") / "midden"
    assert main(["solve", "--region", "midden", "--out", str(out), "--pdf", "--lang", "en"]) == 0
    return out


@needs_chromium
def test_region_report_prints_on_a4_in_at_most_12_pages(midden_pdf: Path) -> None:
    reader = pypdf.PdfReader(midden_pdf / "report.pdf")
    assert 2 <= len(reader.pages) <= MAX_PAGES
    for page in reader.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert abs(width - A4_POINTS[0]) < 2 and abs(height - A4_POINTS[1]) < 2
    text = " ".join(page.extract_text() for page in reader.pages)
    summary = json.loads((midden_pdf / "summary.json").read_text())
    assert f"{summary['kpis']['patients']:,.1f}" in text  # the key figures are printed
    last = reader.pages[-1].extract_text() + reader.pages[-2].extract_text()
    assert "Sub-problems" in last  # solver internals at the back, in the appendix


@needs_chromium
def test_report_maps_only_treatments_that_change(midden_pdf: Path) -> None:
    html = (midden_pdf / "report.html").read_text(encoding="utf-8")
    summary = json.loads((midden_pdf / "summary.json").read_text())
    per = summary["kpis"]["per_treatment"]
    changed = {t for t, v in per.items()
               if v["providers_lost"] or v["providers_gained"] or v["patients_moved"]}
    assert 0 < len(changed) < len(per)
    mapped = set(re.findall(r'<figure id="map-([^"]+)"', html))
    assert mapped == changed | {"overview"}
    assert len(list((midden_pdf / "maps").glob("*.png"))) == len(per) + 1  # files: all


@needs_chromium
def test_pdf_is_deterministic(midden_pdf: Path, tmp_path: Path) -> None:
    write_pdf(midden_pdf / "report.html", tmp_path / "again.pdf")
    assert (tmp_path / "again.pdf").read_bytes() == (midden_pdf / "report.pdf").read_bytes()


def test_normalise_keeps_length_and_fixes_dates_and_node_ids() -> None:
    one = (b"/CreationDate (D:20261207073042+00'00')\n/ID (node00000018) /ID (node00000019)"
           b" [(node00000018)]")
    two = (b"/CreationDate (D:20271111111111+00'00')\n/ID (node00000451) /ID (node00000452)"
           b" [(node00000451)]")
    assert normalise_chromium_pdf(one) == normalise_chromium_pdf(two)
    assert len(normalise_chromium_pdf(one)) == len(one)
    assert b"node00000001" in normalise_chromium_pdf(one)


def test_pdf_without_a_printer_is_one_line_exit_2(tmp_path: Path, monkeypatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setenv("HERSCHIK_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails
    code = main(["solve", "--region", "example", "--out", str(tmp_path / "r"), "--pdf"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pdf needs headless Chromium" in err[0]
    assert not (tmp_path / "r").exists()  # refused before anything was solved or written
