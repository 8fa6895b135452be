"""One catalog, both languages: every message in the code has its Dutch text, and every
Dutch text keeps the message's fields; the language follows --lang, else the locale."""

from __future__ import annotations

import string
import sys

import pytest

from herschik.i18n import (
    TREATMENT_NAMES,
    _,
    default_language,
    format_number,
    translate,
    use_language,
)
from tests.support.catalog import po_messages
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
sys.path.insert(0, str(ROOT / "tools"))
from update_catalog import code_messages  # noqa: E402  (tools/ is not installed)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_has_english_and_dutch() -> None:
    catalog = dict(po_messages("nl"))
    messages = code_messages()
    assert len(messages) > 40
    missing = sorted(m for m in messages if not catalog.get(m))
    assert missing == [], f"messages without Dutch (run tools/update_catalog.py): {missing}"
    stale = sorted(set(catalog) - set(messages))
    assert stale == [], f"catalog entries no code uses: {stale}"


def test_dutch_keeps_every_field_of_the_message() -> None:
    for msgid, msgstr in po_messages("nl"):
        assert _fields(msgstr) == _fields(msgid), msgid


def test_embedded_treatment_names_are_in_the_catalog() -> None:
    import pandas as pd

    names = pd.read_csv(ROOT / "geo" / "data" / "default" / "treatments.csv")["name"]
    assert set(names) == set(TREATMENT_NAMES)
    assert translate("Pancreatic cancer: resections", "nl") == "Alvleesklierkanker: resecties"
    assert translate("a dataset's own name", "nl") == "a dataset's own name"


@pytest.mark.parametrize(("env", "expected"), [
    ({"LANG": "nl_NL.UTF-8"}, "nl"),
    ({"LANG": "nl_BE.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),
    ({"LANGUAGE": "nl:en", "LANG": "C"}, "nl"),
    ({"LANG": "de_DE.UTF-8"}, "en"),
    ({}, "en"),
])
def test_default_language_follows_the_locale(env: dict[str, str], expected: str) -> None:
    assert default_language(env) == expected


def test_use_language_switches_text_and_numbers() -> None:
    with use_language("nl"):
        assert _("optimal") == "optimaal"
        assert format_number(5151.06) == "5.151,1"
    with use_language("en"):
        assert _("optimal") == "optimal"
        assert format_number(5151.06) == "5,151.1"
    with pytest.raises(ValueError, match="choose from en, nl"):
        with use_language("fr"):
            pass


def test_report_in_dutch(make_result, parse_report) -> None:
    from herschik.scenarios.report.page import SECTIONS, render_report

    summary, sv, asg, _dataset = make_result()
    names = {"oesophagus": "Pancreatic cancer: resections"}  # a name the catalog knows
    with use_language("nl"):
        html = render_report(summary, sv, asg, {}, treatment_names=names)
    english = render_report(summary, sv, asg, {}, treatment_names=names)
    parsed = parse_report(html)
    h2 = [text for level, text in parsed.headings if level == "h2"]
    assert h2 == [translate(h, "nl") for h in SECTIONS]
    assert h2[0] == "Kerncijfers" and all(h not in SECTIONS or h == "Scenario" for h in h2)
    assert '<html lang="nl">' in html and '<html lang="en">' in english
    assert 'id="key-figures"' in html  # ids stay English: links keep working
    assert "Alvleesklierkanker: resecties (oesophagus)" in html
    patients = summary["kpis"]["patients"]
    assert f"{patients:,.1f}".replace(",", "X").replace(".", ",").replace("X", ".") in html
    assert "behouden" in html and ">kept<" not in html


def test_diagnosis_in_dutch_and_english() -> None:
    from herschik.optimiser.diagnose import diagnose

    import herschik

    dataset = herschik.load_dataset("example")
    instance = herschik.build_instance(dataset, "example")
    params = herschik.SolveParams(margin=4.0)  # 5x every norm: no site can reach it
    english = diagnose(instance, params)["reason"]
    with use_language("nl"):
        dutch = diagnose(instance, params)["reason"]
    assert english.startswith("The scenario is infeasible: ")
    assert dutch.startswith("Het scenario is onhaalbaar: ")
    assert "per locatie, maar de grootste bereikbare vraag is" in dutch
