"""``report.pdf``: the HTML report printed on A4 by headless Chromium, else by WeasyPrint.

Chromium (Debian's ``chromium``, the browser the app tests use) follows the report's print CSS
(``@page size A4``) exactly as a planner's browser prints it; WeasyPrint (``pip install
'herschik[pdf]'``) is the pure-Python fallback on machines without Chromium. Choice and
measurements: docs/decisions/report-pdf.md. The PDF is deterministic: Chromium prints without
the tagged-PDF structure (its DOM node ids varied under load), and its creation dates (and any
node ids, should a Chromium tag anyway) are normalised to fixed, same-length values, so the
byte offsets of the file stay valid.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from herschik.atomic import write_bytes
from herschik.errors import EnvironmentProblem

#: Chromium's names on Debian/Ubuntu/others; HERSCHIK_CHROMIUM names another binary
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: seconds Chromium may take to print one report (a region's takes about 5)
PRINT_TIMEOUT_S = 180
_FIXED_DATE = b"(D:20000101000000+00'00')"


def find_chromium() -> str | None:
    """The Chromium binary to print with, or None."""
    named = os.environ.get("HERSCHIK_CHROMIUM")
    if named:
        return named if Path(named).is_file() else shutil.which(named)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def pdf_engine() -> str:
    """``chromium`` or ``weasyprint``; EnvironmentProblem (exit 2) when neither is there."""
    if find_chromium():
        return "chromium"
    try:  # an optional extra (herschik[pdf]), maybe absent: looked for only with --pdf
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        raise EnvironmentProblem(
            "--pdf needs headless Chromium (apt-get install chromium) or WeasyPrint "
            "(pip install 'herschik[pdf]'); neither was found") from None
    return "weasyprint"


def write_pdf(html_path: str | Path, pdf_path: str | Path) -> str:
    """Print ``html_path`` to ``pdf_path`` (atomically); returns the engine used."""

    engine = pdf_engine()
    html_path = Path(html_path).resolve()
    if engine == "chromium":
        data = normalise_chromium_pdf(_chromium_pdf(html_path))
    else:
        from weasyprint import HTML  # the optional extra, present (pdf_engine checked)

        data = HTML(filename=str(html_path)).write_pdf()
    write_bytes(pdf_path, data)
    return engine


def _chromium_pdf(html_path: Path) -> bytes:
    binary = find_chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory(prefix="herschik-pdf-") as tmp:
        out = Path(tmp) / "report.pdf"
        # --disable-pdf-tagging: the tagged-PDF structure carries DOM node ids whose numbering
        # varied between prints under load (a PDF for paper needs no structure tree)
        command = [binary, "--headless", "--no-sandbox", "--disable-gpu",
                   "--no-pdf-header-footer", "--no-first-run", "--disable-extensions",
                   "--disable-pdf-tagging",
                   f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out}",
                   html_path.as_uri()]
        try:
            run = subprocess.run(command, capture_output=True, timeout=PRINT_TIMEOUT_S,
                                 check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise EnvironmentProblem(
                f"--pdf: Chromium did not print {html_path.name} within "
                f"{PRINT_TIMEOUT_S} s") from None
        if run.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            detail = run.stderr.decode(errors="replace").strip().splitlines()
            raise EnvironmentProblem(
                f"--pdf: Chromium ({binary}) could not print the report (exit "
                f"{run.returncode}{': ' + detail[-1] if detail else ''})")
        return out.read_bytes()


def normalise_chromium_pdf(data: bytes) -> bytes:
    """The same PDF with fixed dates and DOM node ids renumbered 1, 2, ... in their order."""
    data = re.sub(rb"\(D:\d{14}[^)]{0,12}\)",
                  lambda m: _FIXED_DATE[:len(m.group(0))].ljust(len(m.group(0)), b" "), data)
    # numbered in their own order (a monotone map keeps the name tree sorted and its limits
    # right), so two prints whose DOM ids start elsewhere give the same bytes
    found = sorted(set(re.findall(rb"node\d{8}", data)), key=lambda k: int(k[4:]))
    new = {key: b"node%08d" % (n + 1) for n, key in enumerate(found)}
    return re.sub(rb"node\d{8}", lambda m: new[m.group(0)], data)
