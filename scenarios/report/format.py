"""HTML building blocks of report.html: escaping, number formats, tables, badges, inlined PNGs."""
from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from herschik.i18n import _, current_language, format_number, status_label


def esc(value: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 1) -> str:
    """Human formatting: thousands separators, ``—`` for missing, yes/no for booleans."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return _("yes") if value else _("no")
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if current_language() == "en" else format_number(value, 0)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "—"
        if current_language() == "en":
            return f"{float(value):,.{digits}f}"
        return format_number(float(value), digits)
    if isinstance(value, (list, tuple)) and all(
            isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v) for v in value) if value else "—"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str) if value else "—"
    return str(value)


def fmt_exact(value: Any) -> str:
    """Like :func:`fmt` but floats as entered (``0.05``, ``60``): for parameters."""
    if isinstance(value, (float, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(float(value)):
        return f"{float(value):g}"
    return fmt(value)


def pct(value: float | None) -> str:
    """Signed whole percentage (``+12%``), ``—`` when missing."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:+.0%}"


def share(value: float | None, digits: int = 1) -> str:
    """A share as a percentage in the language's format (``5.9%`` / ``5,9%``)."""
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{value:.{digits}%}"
    return text if current_language() == "en" else text.replace(".", ",")


def html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, cls: str,
           numeric: Sequence[bool] | None = None) -> str:
    """A table; cells are strings already escaped (use :func:`esc`) or values to format."""
    numeric = list(numeric or [False] * len(headers))
    head = "".join(f'<th{" class=num" if n else ""} scope="col">{esc(h)}</th>'
                   for h, n in zip(headers, numeric, strict=True))
    body = []
    for row in rows:
        cells = []
        for cell, n in zip(row, numeric, strict=True):
            text = cell.html if isinstance(cell, Html) else esc(fmt(cell))
            cells.append(f'<td{" class=num" if n else ""}>{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def heading(level: int, text: str) -> str:
    """An escaped heading (``<h3>...</h3>``)."""
    return f"<h{level}>{esc(text)}</h{level}>"


def note(text: str) -> str:
    """An escaped note paragraph."""
    return f'<p class="note">{esc(text)}</p>'


class Html:
    """Marks a cell as ready-made (already escaped) HTML."""

    def __init__(self, html_text: str) -> None:
        self.html = html_text


def badge(word: str) -> Html:
    """A coloured status word; the class stays the English status, the text is translated."""
    return Html(f'<span class="status {esc(word)}">{esc(status_word(word))}</span>')


def status_word(word: str) -> str:
    """A status of the result tables (kept, lost, ...) or of a solve in the current language."""
    words = {"kept": _("kept"), "lost": _("lost"), "gained": _("gained"),
             "below_norm": _("below_norm"), "unchanged_no_norm": _("unchanged_no_norm"),
             "not_provided": _("not provided")}
    return words.get(word) or status_label(word)


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


