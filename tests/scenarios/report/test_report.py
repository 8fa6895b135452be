"""report.html: structure (parsed), escaping, determinism, infeasible runs, and a headless
Chromium check that the page renders offline (screenshot not blank, maps drawn, DOM has the
expected headings and tables).

The Chromium test needs ``/usr/bin/chromium`` (Debian package ``chromium``; ``.ci/run`` installs
it). Locally it is skipped when Chromium is absent; with ``CI`` set it fails instead.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from herschik.geo.export import areas_geodataframe, normalise_site_volumes
from herschik.geo.maps import write_maps
from herschik.scenarios.outputs import write_run_outputs
from herschik.scenarios.report.hospitals import providers_section
from herschik.scenarios.report.page import SECTIONS, render_report, write_report
from PIL import Image

H2 = list(SECTIONS)


@pytest.fixture(scope="module")
def run_dir(make_result, tmp_path_factory: pytest.TempPathFactory) -> Path:
    summary, sv, asg, ds = make_result()
    out = tmp_path_factory.mktemp("run")
    write_run_outputs(out, summary, sv, asg, ds, gpkg=False)
    return out


def test_report_structure(make_result, parse_report, report_tables, run_dir: Path) -> None:
    summary, sv, asg, _ = make_result()
    html_text = (run_dir / "report.html").read_text(encoding="utf-8")
    s = parse_report(html_text)
    assert s.headings[0] == ("h1", "herschik report — midden")
    assert [t for h, t in s.headings if h == "h2"] == H2
    h3 = [t for h, t in s.headings if h == "h3"]
    assert "Oesophagus resection (oesophagus)" in h3
    assert report_tables(s, "solve")  # solver internals in their own section, after the results

    kpis = report_tables(s, "kpis")[0]
    assert kpis["headers"] == ["Figure", "Value", "Unit", "Definition"]
    assert kpis["rows"][0][:2] == ["Patients per year", f"{summary['kpis']['patients']:,.1f}"]
    overview = report_tables(s, "providers-overview")[0]
    assert [r[0] for r in overview["rows"]] == ["oesophagus", "pancreas", "rectum"]
    assert [r[3:5] for r in overview["rows"]] == [["4", "2"], ["3", "2"], ["2", "3"]]
    per_treatment = report_tables(s, "providers")
    assert len(per_treatment) == 3
    oes = per_treatment[0]
    assert oes["headers"][-1] == "Margin achieved"
    umc = next(r for r in oes["rows"] if r[0] == "S1")
    sel = (sv.site_id == "S1") & (sv.intervention_id == "oesophagus")
    vol = float(sv.loc[sel, "volume_after"].iloc[0])
    assert umc[-2] == "kept" and umc[-1] == f"{vol / 8.0 - 1:+.0%}"
    assert {r[0]: r[-2] for r in oes["rows"]}["S3"] == "lost"
    gain_lose = report_tables(s, "gain-lose")[0]
    by_site = {r[0]: r for r in gain_lose["rows"]}
    assert by_site["S6"][2] == "rectum" and by_site["S3"][3] == "oesophagus, pancreas"
    bands = report_tables(s, "extra-bands")[0]
    total = sum(float(r[1].replace(",", "")) for r in bands["rows"])
    assert total == pytest.approx(asg["patients"].sum(), abs=0.5)
    scenario = {r[0]: r[1] for r in report_tables(s, "scenario")[0]["rows"]}
    assert scenario["margin"] == "0.1" and scenario["baseline"] == "illustrative"

    # the odds of meeting the norm: one row per kept hospital x treatment with a norm, its
    # 1-year odds as in site_volumes.csv
    odds = report_tables(s, "odds")[0]
    kept = sv[sv["kept_after"].astype(bool)]
    assert len(odds["rows"]) == len(kept)
    by_pair = {(r.site_id, r.intervention_id): r.p_meet_norm_1y for r in kept.itertuples()}
    for row in odds["rows"]:
        site = sv.loc[sv.site_name == row[0], "site_id"].iloc[0] if (sv.site_name == row[0]).any() \
            else row[0]
        assert row[4] == _odds_text(by_pair[(site, row[1])])

    # histogram + overview + 3 treatment maps + the odds figure + 3 fan charts (one per
    # treatment), all inlined PNGs that decode
    assert len(s.images) == 5 + 1 + 3
    for src in s.images:
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    assert not s.links and s.scripts == 0 and "http://" not in html_text \
        and "https://" not in html_text

    caveats = html_text.split('<section id="caveats">')[1]
    assert "Illustrative baseline" in caveats and "Default road network" in caveats
    assert "Shared care" in caveats


def test_report_escapes_text_and_is_deterministic(
    make_result, parse_report, tmp_path: Path
) -> None:
    summary, sv, asg, _ = make_result()
    sv = sv.copy()
    sv.loc[sv.site_id == "S2", "site_name"] = "<script>alert('x')</script> & Co"
    summary = dict(summary, warnings=["<b>bold</b>"])
    names = {"rectum": "Rectum <i>&</i> anus"}
    a = render_report(summary, sv, asg, {}, treatment_names=names)
    b = render_report(summary, sv, asg, {}, treatment_names=names)
    assert a == b
    assert "<script>" not in a and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co" in a
    assert "&lt;b&gt;bold&lt;/b&gt;" in a and "Rectum &lt;i&gt;&amp;&lt;/i&gt; anus" in a
    s = parse_report(a)
    assert [t for h, t in s.headings if h == "h2"] == H2
    path = write_report(tmp_path / "r.html", summary, sv, asg, {}, treatment_names=names)
    assert path.read_text(encoding="utf-8") == a
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_report_infeasible(make_result, parse_report, report_tables, tmp_path: Path) -> None:
    summary, sv, asg, _ = make_result()
    summary = dict(summary, status="infeasible", objective=None, mip_gap=None, kpis={},
                   subproblems=[], baseline="user", network="roads.npz",
                   diagnosis={"reason": "S3 cannot reach the norm: 8.4 < 22.0",
                              "smallest_feasible_margin": 0.05})
    path = write_report(tmp_path / "report.html", summary, sv.iloc[0:0], asg.iloc[0:0], {})
    html_text = path.read_text(encoding="utf-8")
    s = parse_report(html_text)
    assert [t for h, t in s.headings if h == "h2"] == H2
    assert "S3 cannot reach the norm: 8.4 &lt; 22.0" in html_text
    diag = {r[0]: r[1] for r in report_tables(s, "diagnosis")[0]["rows"]}
    assert diag["smallest_feasible_margin"] == "0.05"
    assert "infeasible" in html_text and "Illustrative baseline" not in html_text
    assert "roads.npz" in html_text and not s.images


def test_maps_selection_and_speed(make_result, tmp_path: Path) -> None:

    summary, sv, asg, ds = make_result()
    gdf = areas_geodataframe(ds.areas, ds.area_geometries)
    maps = write_maps(tmp_path, summary, sv, asg, ds.sites, gdf, treatments=["rectum", "nope"])
    assert list(maps) == ["overview", "rectum"]
    for png in maps.values():
        img = np.asarray(Image.open(png).convert("RGB"))
        assert img.shape[0] > 600 and img.shape[1] > 800
        assert img.std() > 20
    again = write_maps(tmp_path / "again", summary, sv, asg, ds.sites, gdf, treatments=["rectum"])
    assert again["rectum"].read_bytes() == maps["rectum"].read_bytes()  # deterministic


def test_report_renders_in_headless_chromium(
    parse_report, chromium, run_dir: Path, tmp_path: Path
) -> None:
    url = (run_dir / "report.html").resolve().as_uri()

    dom = chromium(["--dump-dom", url])
    assert dom.returncode == 0, dom.stderr[-2000:]
    s = parse_report(dom.stdout)
    assert s.headings[0] == ("h1", "herschik report — midden")
    assert [t for h, t in s.headings if h == "h2"] == H2
    classes = [t["class"] for t in s.tables]
    for cls in ("kpis", "solve", "providers-overview", "providers", "gain-lose",
                "extra-bands", "scenario", "odds"):
        assert cls in classes, cls
    # 5 as above + the odds figure + a fan chart per treatment
    assert classes.count("providers") == 3 and len(s.images) == 5 + 1 + 3

    # The first screen (headings, key figures, tables) must not be blank.
    shot = tmp_path / "report.png"
    result = chromium([f"--screenshot={shot}", "--window-size=1280,2000", url])
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    assert img.shape[:2] == (2000, 1280)
    assert img.std() > 10, "screenshot is blank"
    assert (img.mean(axis=2) < 100).mean() > 0.005, "no dark text rendered"

    # The whole page: the embedded maps (YlOrRd areas) and histogram really are drawn.
    full = tmp_path / "full.png"
    result = chromium([f"--screenshot={full}", "--window-size=1280,9000", url])
    assert result.returncode == 0 and full.exists(), result.stderr[-2000:]
    rgb = np.asarray(Image.open(full).convert("RGB")).astype(int)
    r, b = rgb[..., 0], rgb[..., 2]
    assert ((r > 180) & (b < 120) & (r - b > 100)).sum() > 20_000, "maps not rendered"


def _odds_text(p: float) -> str:
    """The report's odds format (report/odds.py odds_text), written again here."""
    if p > 0.999:
        return "> 99.9%"
    if p < 0.001:
        return "< 0.1%"
    return f"{p:.1%}"


def test_provider_tables_follow_status_volume_and_site_order(parse_report,
                                                              report_tables) -> None:
    """The provider tables are built from plain rows (issue 23 goal 4: a pandas operation per
    treatment cost ~0.1 s); their order and counts are pandas' on the same table: status,
    volume after descending with a missing volume last, site id; the smallest margin skips a
    missing volume, as pandas' min does."""
    rng = np.random.default_rng(23)
    rows = []
    for t, norm in (("a", 20.0), ("b", np.nan), ("c", 50.0)):
        for i in range(40):
            before, after = bool(rng.integers(2)), bool(rng.integers(2))
            volume = float(rng.choice([0.0, 7.0, 12.5, 30.0, 61.0, np.nan]))  # ties, NaN
            rows.append({"region_id": "r", "site_id": f"S{rng.integers(30):02d}",
                         "site_name": f"Site {i}", "intervention_id": t, "norm": norm,
                         "required_min": norm * 1.1, "volume_before": float(rng.choice(
                             [0.0, 5.0, 30.0])), "volume_after": volume,
                         "kept_before": before, "kept_after": after})
    sv = normalise_site_volumes(pd.DataFrame(rows))  # the columns it lacks come in empty
    asg = pd.DataFrame({"intervention_id": ["a", "b", "c"], "patients": [1.0, 2.0, 3.0]})
    s = parse_report("<html><body>" + providers_section(sv, asg, {"margin": 0.1}, {})
                     + "</body></html>")
    tables = report_tables(s, "providers")
    status = {(True, True): "kept", (False, True): "gained", (True, False): "lost",
              (False, False): "—"}
    order = {"kept": 0, "gained": 1, "lost": 2, "—": 3}
    for t, table in zip(("a", "b", "c"), tables, strict=True):
        part = sv[sv["intervention_id"] == t]
        shown = part[part["kept_before"] | part["kept_after"] | (part["volume_before"] > 0)
                     | (part["volume_after"] > 0)].copy()
        shown["_order"] = [order[status[(b, a)]] for b, a in
                           zip(shown["kept_before"], shown["kept_after"], strict=True)]
        expected = shown.sort_values(["_order", "volume_after", "site_id"],
                                     ascending=[True, False, True])
        assert [r[1] for r in table["rows"]] == list(expected["site_name"])
    overview = report_tables(s, "providers-overview")[0]["rows"]
    for row in overview:
        part = sv[sv["intervention_id"] == row[0]]
        kept = part[part["kept_after"] & part["norm"].notna() & (part["norm"] > 0)]
        smallest = (kept["volume_after"] / kept["norm"] - 1).min()
        assert row[8] == ("—" if np.isnan(smallest) else f"{smallest:+.0%}")
        assert [int(x) for x in row[3:5]] == [int(part["kept_before"].sum()),
                                              int(part["kept_after"].sum())]
