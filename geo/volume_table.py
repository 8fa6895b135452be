"""A planner's table of yearly volumes per hospital and treatment: read and parsed.

Accepted: CSV separated by commas or semicolons (Dutch Excel writes semicolons and decimal
commas), UTF-8 with or without a byte-order mark (Windows-1252, what older Excel saves, is read
too), or an Excel workbook (.xlsx, its first sheet). Columns (English or Dutch, any case):
``hospital``/``ziekenhuis``, ``treatment``/``behandeling``, ``patients``/``aantal`` and
optionally ``year``/``jaar``; other columns are ignored and listed in the import report.

Registry privacy rules publish small counts as ``<10``, ``1-4`` or suppress them (``*``,
``n.p.``, ``onderdrukt``...). Such a count is read as an interval and imputed by
:data:`IMPUTATION_RULE` (the midpoint); the row is flagged. Every problem is a
:class:`DataError` naming the file, the 1-based data row and the field.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from herschik.errors import DataError

#: header spellings per field (compared lower-case, spaces/underscores/dots ignored)
HEADERS: dict[str, tuple[str, ...]] = {
    "hospital": ("hospital", "ziekenhuis", "site", "siteid", "locatie", "zorgaanbieder",
                 "instelling", "agb", "agbcode"),
    "treatment": ("treatment", "behandeling", "interventionid", "intervention", "interventie",
                  "verrichting"),
    "patients": ("patients", "aantal", "volume", "count", "n", "aantalpatienten", "patienten"),
    "year": ("year", "jaar"),
}
REQUIRED = ("hospital", "treatment", "patients")

#: a suppressed count without a printed range: the usual Dutch registry rule hides 1-9
SUPPRESSED_RANGE = (1.0, 9.0)
SUPPRESSED_MARKERS = frozenset({"*", "x", "-", "--", ".", "np", "n.p.", "n.p", "nb", "n.b.",
                                "suppressed", "onderdrukt", "geheim", "<"})
IMPUTATION_RULE = ("a count published as an interval (\"<10\" = 1-9, \"1-4\", a suppressed "
                   "cell = 1-9) is imputed by the interval's midpoint and flagged")
YEAR_RANGE = (1990, 2100)

_INTERVAL = re.compile(r"^(\d+(?:[.,]\d+)?)\s*[-–]\s*(\d+(?:[.,]\d+)?)$")
_BELOW = re.compile(r"^(<=?|≤|kleiner dan|minder dan)\s*(\d+)$")


@dataclass(frozen=True)
class VolumeRow:
    """One data row: where it is, what it names and its count (an interval when imputed)."""

    row: int  # 1-based data row (header not counted), as in every herschik message
    hospital: str
    treatment: str
    year: int | None
    patients: float
    low: float
    high: float
    imputed: bool
    raw_patients: str


@dataclass(frozen=True)
class VolumeTable:
    file: str
    rows: tuple[VolumeRow, ...]
    ignored_columns: tuple[str, ...]
    delimiter: str  # "," ";" or "xlsx"
    encoding: str


def _key(text: str) -> str:
    return re.sub(r"[\s_.\-/()]+", "", text.strip().lower()).replace("ë", "e")


def _columns(file: str, header: list[str]) -> tuple[dict[str, int], tuple[str, ...]]:
    found: dict[str, int] = {}
    ignored = []
    for index, name in enumerate(header):
        key = _key(str(name or ""))
        field = next((f for f, names in HEADERS.items() if key in names), None)
        if field is None:
            if str(name or "").strip():
                ignored.append(str(name).strip())
            continue
        if field in found:
            raise DataError(file, None, str(name).strip(),
                            f"two columns for {field} ({header[found[field]]!r} and {name!r})")
        found[field] = index
    for field in REQUIRED:
        if field not in found:
            names = "/".join(HEADERS[field][:2])
            raise DataError(file, None, field, f"missing column ({names}); the header is "
                            f"{', '.join(repr(str(h)) for h in header)}")
    return found, tuple(ignored)


def parse_count(file: str, row: int, text: str, decimal_comma: bool
                ) -> tuple[float, float, float, bool]:
    """``(value, low, high, imputed)`` of one count cell; DataError when it is not a count."""
    cell = str(text).strip()
    folded = cell.lower()
    if folded in SUPPRESSED_MARKERS:
        low, high = SUPPRESSED_RANGE
        return (low + high) / 2, low, high, True
    below = _BELOW.match(folded)
    if below:
        bound = float(below.group(2))
        high = bound if below.group(1) in ("<=", "≤") else bound - 1
        if high < 1:
            raise DataError(file, row, "patients", f"{cell!r} is not a count interval")
        return (1 + high) / 2, 1.0, high, True
    interval = _INTERVAL.match(folded)
    if interval:
        low, high = (float(g.replace(",", ".")) for g in interval.groups())
        if high < low:
            raise DataError(file, row, "patients", f"interval {cell!r} runs backwards")
        return (low + high) / 2, low, high, True
    if not cell:
        raise DataError(file, row, "patients", "empty count (write the number, an interval "
                        "such as <10, or * for a suppressed count)")
    number = cell.replace(" ", "")
    if decimal_comma:
        number = number.replace(".", "").replace(",", ".") if "," in number else number
    try:
        value = float(number)
    except ValueError:
        raise DataError(file, row, "patients", f"not a number ({cell!r})") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise DataError(file, row, "patients", f"not a finite number ({cell!r})")
    if value < 0:
        raise DataError(file, row, "patients", f"negative count ({cell})")
    return value, value, value, False


def _year(file: str, row: int, text: object) -> int | None:
    cell = str(text if text is not None else "").strip()
    if not cell:
        return None
    try:
        value = float(cell)
    except ValueError:
        raise DataError(file, row, "year", f"not a year ({cell!r})") from None
    if value != int(value) or not YEAR_RANGE[0] <= value <= YEAR_RANGE[1]:
        raise DataError(file, row, "year", f"not a year ({cell!r})")
    return int(value)


def _decode(file: str, data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252"), "windows-1252"
        except UnicodeDecodeError:
            raise DataError(file, None, None, "neither UTF-8 nor Windows-1252 text; save the "
                            "table as CSV UTF-8 or as .xlsx") from None


def _csv_cells(file: str, data: bytes) -> tuple[list[list[str]], str, str]:
    text, encoding = _decode(file, data)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    if "\t" in first and first.count("\t") > max(first.count(";"), first.count(",")):
        delimiter = "\t"
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                                      strict=True)]
    except csv.Error as error:
        raise DataError(file, None, None, f"malformed CSV ({error})") from None
    return rows, delimiter, encoding


def _xlsx_cells(file: str, path: Path) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(file, None, None, f"not a readable .xlsx workbook ({error})") from None
    try:
        sheet = book.worksheets[0]
        return [["" if v is None else _cell_text(v) for v in row]
                for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_volume_table(path: str | Path) -> VolumeTable:
    """Read and parse a volume table (CSV or XLSX); DataError naming file, row and field."""
    path = Path(path)
    file = path.name
    if not path.is_file():
        raise DataError(str(path), None, None, "file not found")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        cells, delimiter, encoding = _xlsx_cells(file, path), "xlsx", "xlsx"
    elif path.suffix.lower() == ".xls":
        raise DataError(file, None, None, "old .xls workbooks are not read; save as .xlsx or CSV")
    else:
        cells, delimiter, encoding = _csv_cells(file, path.read_bytes())
    cells = [r for r in cells if any(str(c).strip() for c in r)]
    if not cells:
        raise DataError(file, None, None, "file is empty (no header row)")
    columns, ignored = _columns(file, cells[0])
    decimal_comma = delimiter == ";"
    rows = []
    for number, cell_row in enumerate(cells[1:], start=1):
        def get(field: str, cell_row: list[str] = cell_row) -> str:
            index = columns.get(field)
            return str(cell_row[index]).strip() if index is not None and index < len(
                cell_row) else ""
        hospital, treatment = get("hospital"), get("treatment")
        if not hospital:
            raise DataError(file, number, "hospital", "empty")
        if not treatment:
            raise DataError(file, number, "treatment", "empty")
        value, low, high, imputed = parse_count(file, number, get("patients"), decimal_comma)
        rows.append(VolumeRow(row=number, hospital=hospital, treatment=treatment,
                              year=_year(file, number, get("year")), patients=value, low=low,
                              high=high, imputed=imputed, raw_patients=get("patients")))
    if not rows:
        raise DataError(file, None, None, "no data rows below the header")
    years = {r.year is None for r in rows}
    if len(years) > 1:
        row = next(r for r in rows if r.year is None) if "year" in columns else rows[0]
        raise DataError(file, row.row, "year", "empty while other rows have a year")
    return VolumeTable(file=file, rows=tuple(rows), ignored_columns=ignored,
                       delimiter=delimiter, encoding=encoding)
