"""Set Dutch translations in herschik/locale/nl.po from a JSON file {msgid: msgstr}."""

from __future__ import annotations

import json
import sys

from babel.messages.pofile import read_po, write_po
from update_catalog import PO

translations = json.loads(open(sys.argv[1], encoding="utf-8").read())
catalog = read_po(PO.open("rb"), locale="nl")
unknown = [m for m in translations if m not in catalog]
for message in catalog:
    if message.id and str(message.id) in translations:
        message.string = translations[str(message.id)]
with PO.open("wb") as handle:
    write_po(handle, catalog, width=100, sort_output=True, no_location=True)
print("unknown msgids:", unknown)
