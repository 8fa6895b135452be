"""The language of the outputs: English (the source text) or Dutch, from one gettext catalog.

Every message is written in English in the code and wrapped in :func:`_`; the Dutch text is in
``herschik/locale/nl.po`` (one catalog, also the Dutch treatment names of the tranche-1 norm
table). The catalog is read with Babel on first use, so installing needs no compile step.

The language is a context variable: ``with use_language("nl"): ...`` makes every :func:`_` in
that block (and in the tasks it starts) Dutch; the app sets it per request. Default: the
locale's language when it is Dutch (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``),
English otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

#: the languages herschik writes; the first is the source language of every message
LANGUAGES: tuple[str, ...] = ("en", "nl")
CATALOG_DIR = Path(__file__).resolve().parent / "locale"

_LANGUAGE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "herschik_language", default=None)


def default_language(environ: dict[str, str] | None = None) -> str:
    """``nl`` when the first locale variable that is set names Dutch, else ``en``."""
    env = os.environ if environ is None else environ
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            first = value.split(":")[0].lower()
            return "nl" if first.startswith("nl") else "en"
    return "en"


def check_language(lang: str) -> str:
    """``lang`` when herschik writes it; ValueError naming the choices otherwise."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}: choose from {', '.join(LANGUAGES)}")
    return lang


_process_language: str | None = None


def set_process_language(lang: str | None) -> str:
    """The language of this process where no :func:`use_language` block says otherwise (the
    command line sets it once, so that worker threads, which do not inherit context
    variables, write in it too). None: the locale's default."""
    global _process_language
    _process_language = check_language(lang) if lang else None
    return current_language()


def current_language() -> str:
    """The language of the running context (see :func:`use_language`), else the process's."""
    return _LANGUAGE.get() or _process_language or default_language()


@contextlib.contextmanager
def use_language(lang: str | None) -> Iterator[str]:
    """Make ``lang`` (None: the locale's default) the language inside the block."""
    chosen = check_language(lang) if lang else default_language()
    token = _LANGUAGE.set(chosen)
    try:
        yield chosen
    finally:
        _LANGUAGE.reset(token)


@cache
def catalog(lang: str) -> dict[str, str]:
    """msgid -> translation of ``lang`` (empty for English, the source language)."""
    if check_language(lang) == "en":
        return {}
    # Babel's catalog reader (about 0.02 s) only for Dutch: `herschik --help` imports this
    # module (the --lang choices) and never reads a catalog
    from babel.messages.pofile import read_po

    with open(CATALOG_DIR / f"{lang}.po", "rb") as handle:
        parsed = read_po(handle, locale=lang)
    return {str(m.id): str(m.string) for m in parsed if m.id and m.string and not m.fuzzy}


def _(message: str, **values: Any) -> str:
    """``message`` in the current language, with ``{name}`` fields filled from ``values``."""
    text = catalog(current_language()).get(message, message)
    return text.format(**values) if values else text


def translate(message: str, lang: str) -> str:
    """``message`` in ``lang`` (a name from the data such as a treatment name passes through
    unchanged when the catalog does not know it)."""
    return catalog(lang).get(message, message)


def translate_name(name: str) -> str:
    """A name from the data (a treatment's) in the current language, when the catalog has it."""
    return translate(name, current_language())


def format_number(value: float, digits: int = 1) -> str:
    """``value`` with thousands separators and ``digits`` decimals, as the language writes it
    (English 5,151.1; Dutch 5.151,1)."""
    from babel.numbers import format_decimal  # not at the top: see catalog()

    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return str(format_decimal(value, format=pattern, locale=current_language(),
                              decimal_quantization=True))


def format_percent(share: float, digits: int = 1) -> str:
    """A share (0.059) as a percentage (English 5.9%, Dutch 5,9%)."""
    return format_number(100.0 * share, digits) + "%"


def status_label(status: str) -> str:
    """A solve status (``optimal``, ``infeasible`` ...) in words of the current language."""
    labels = {
        "optimal": _("optimal"),
        "feasible": _("feasible"),
        "infeasible": _("infeasible"),
        "partially_infeasible": _("partially infeasible"),
        "time_limit_no_solution": _("no solution within the time limit"),
        "error": _("error"),
    }
    return labels.get(status, status)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it here."""
    return message


#: The treatment names of the embedded data, marked for the catalog; their Dutch text is the
#: norm table of the tranche-1 report (../shared/data/tranche1/norms.csv: group_nl and
#: intervention_nl). A dataset's own names pass through untranslated.
TREATMENT_NAMES: tuple[str, ...] = (
    N_("Head and neck cancer: new patients"),
    N_("Head and neck cancer: free flap reconstructions"),
    N_("Head and neck cancer: resections"),
    N_("Head and neck cancer: radiotherapy"),
    N_("Oesophageal and gastric cancer: resections"),
    N_("Oesophageal and gastric cancer: endoscopic resections"),
    N_("Oesophageal and gastric cancer: radiotherapy"),
    N_("Oesophageal and gastric cancer: systemic treatment"),
    N_("Lung cancer: resections"),
    N_("Lung cancer: radiotherapy"),
    N_("Lung cancer: systemic treatment"),
    N_("Kidney cancer: local treatment"),
    N_("Kidney cancer: systemic treatment"),
    N_("Pancreatic cancer: resections"),
    N_("Pancreatic cancer: ERCP"),
    N_("Pancreatic cancer: systemic therapy"),
    N_("Aortic aneurysm: surgical treatment (incl. acute)"),
    N_("Aortic aneurysm: complex endovascular surgery"),
    N_("Carotid stenosis: carotid intervention"),
    N_("Carotid stenosis: treated within one week"),
    N_("Carotid stenosis: treated within two weeks"),
)
