"""Bring herschik/locale/nl.po up to date with the messages in the code (Babel).

    python tools/update_catalog.py          # add new messages (empty), drop unused ones
    python tools/update_catalog.py --check  # exit 1 listing messages without Dutch

Messages are the first argument of ``_()`` and ``N_()`` in herschik/, optimiser/, geo/ and
scenarios/ (and the
app's static/i18n is filled from the same catalog at run time). Translations already in the
catalog are kept; a message that left the code is removed.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from html import unescape
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "herschik" / "locale" / "nl.po"
SOURCES = ("herschik", "optimiser", "geo", "scenarios")
KEYWORDS = {"_": None, "N_": None}
FIXED_DATE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
HEADER = ("# Dutch text of herschik's outputs (console, report, workbook, app).\n"
          "# Edit the msgstr lines; run `python tools/update_catalog.py` after changing messages\n"
          "# in the code. Treatment names: the tranche-1 norm table (Dutch report, Nov 2025).")


APP = ROOT / "scenarios" / "app" / "static"
#: the page's fixed texts: <tag data-i18n ...>text</tag>, title="..." data-i18n-title and
#: placeholder="..." data-i18n-placeholder
HTML_TEXT = re.compile(r"<(\w+)\b[^>]*\bdata-i18n(?=[\s>])[^>]*>(.*?)</\1>", re.S)
JS_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
JS_CALL = re.compile(r'\b(?:t|N_)\(\s*((?:"(?:[^"\\\n]|\\.)*"\s*\+\s*)*"(?:[^"\\\n]|\\.)*")')
HTML_TITLE = re.compile(r'\btitle="([^"]*)"[^>]*\bdata-i18n-title\b', re.S)
HTML_PLACEHOLDER = re.compile(r'\bplaceholder="([^"]*)"[^>]*\bdata-i18n-placeholder\b', re.S)


def code_messages() -> dict[str, list[tuple[str, int]]]:
    """msgid -> [(file, line)] of every marked message in the code and the app's page."""
    found: dict[str, list[tuple[str, int]]] = {}
    for folder in SOURCES:
        for filename, lineno, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS):
            found.setdefault(str(message), []).append((f"{folder}/{filename}", lineno))
    # t("...") and N_("...") in the page's script: double-quoted strings, joined with "+"
    # (Babel's JavaScript lexer loses its way in nested template literals)
    script = (APP / "app.js").read_text(encoding="utf-8")
    for match in JS_CALL.finditer(script):
        text = "".join(json.loads(part) for part in JS_STRING.findall(match.group(1)))
        lineno = script.count("\n", 0, match.start()) + 1
        found.setdefault(text, []).append(("scenarios/app/static/app.js", lineno))
    html = (APP / "index.html").read_text(encoding="utf-8")
    for pattern, group in ((HTML_TEXT, 2), (HTML_TITLE, 1), (HTML_PLACEHOLDER, 1)):
        for match in pattern.finditer(html):
            text = " ".join(unescape(match.group(group)).split())  # as app.js normalises it
            lineno = html.count("\n", 0, match.start()) + 1
            found.setdefault(text, []).append(("scenarios/app/static/index.html", lineno))
    return found


def main(argv: list[str]) -> int:
    messages = code_messages()
    old = read_po(PO.open("rb"), locale="nl") if PO.exists() else Catalog(locale="nl")
    known = {str(m.id): m for m in old if m.id}
    if "--check" in argv:
        missing = sorted(m for m in messages if not (known.get(m) and known[m].string))
        for message in missing:
            print(message)
        return 1 if missing else 0
    # fixed header dates: the file changes only when a message does
    new = Catalog(locale="nl", project="herschik", version="1", charset="utf-8", fuzzy=False,
                  header_comment=HEADER, creation_date=FIXED_DATE, revision_date=FIXED_DATE,
                  last_translator="herschik developers", language_team="herschik")
    for msgid in sorted(messages):
        previous = known.get(msgid)
        new.add(msgid, previous.string if previous else "", locations=())
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as handle:
        write_po(handle, new, width=100, omit_header=False, sort_output=True,
                 include_previous=False, no_location=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
