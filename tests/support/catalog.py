"""The Dutch catalog as written (herschik/locale/*.po), read with Babel apart from the code's own
reader (herschik.i18n.catalog), so the tests can check every entry, fuzzy or empty ones included."""

from __future__ import annotations

import io

from babel.messages.pofile import read_po

from herschik.i18n import CATALOG_DIR


def po_messages(lang: str) -> list[tuple[str, str]]:
    """Every (msgid, msgstr) of the catalog of ``lang``, fuzzy or empty ones included."""
    with open(CATALOG_DIR / f"{lang}.po", "rb") as handle:
        return [(str(m.id), str(m.string or "")) for m in read_po(io.BytesIO(handle.read()))
                if m.id]
