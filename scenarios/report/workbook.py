"""``results.xlsx``: the run's tables as a workbook a planner can read (openpyxl).

Every table sheet has two header rows, both frozen: readable headers with units
(``herschik.columns.label``) and below them the column names of the CSV files, so that a
sheet and its CSV are read the same way (:func:`read_results_xlsx`, or pandas with
``header=1``). Columns are as wide as their content (capped), numbers are shown with
thousands separators and one or two decimals but stored at full precision.

The file is reproducible: the same tables give the same bytes (the document's timestamps and
the zip entries' dates are fixed, and the wall-clock timings of summary.json are left out).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from herschik.geo.dataset import baseline_source_text

from herschik.atomic import write_bytes
from herschik.columns import label
from herschik.i18n import LANGUAGES, N_, _, translate

#: sheets in workbook order: (sheet name, title shown in its first cell comment)
SHEET_ORDER = ("summary", "kpis", "per_treatment", "hospital_changes", "flows", "assignments",
               "site_volumes")
#: the sheets' titles in the workbook's language (the msgid is the sheet's name, which English
#: shows; :func:`read_results_xlsx` gives the sheets by name in every language)
SHEET_TITLES: dict[str, str] = {
    "summary": N_("summary"), "kpis": N_("kpis"), "per_treatment": N_("per_treatment"),
    "hospital_changes": N_("hospital_changes"), "flows": N_("flows"),
    "assignments": N_("assignments"), "site_volumes": N_("site_volumes"),
}
#: widest column, in characters
MAX_WIDTH = 60
#: rows looked at to size a column (large assignments sheets: the first ones suffice)
WIDTH_SAMPLE = 2000
#: number format per column name suffix / name (else NUMBER_FORMAT)
NUMBER_FORMAT = "#,##0.0#"
#: the fixed time written into the document properties (reproducible files)
FIXED_TIME = "2000-01-01T00:00:00Z"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts -> ``[("a.b", v)]``; lists and other objects become JSON text."""
    if isinstance(value, Mapping):
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows.extend(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    if value is None or isinstance(value, (bool, int, float, str)):
        return [(prefix, value)]
    return [(prefix, json.dumps(value, default=str))]


def per_treatment_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """``kpis.per_treatment`` of a summary as one row per treatment (empty if absent)."""
    per = (summary.get("kpis") or {}).get("per_treatment") or {}
    rows = [{"intervention_id": tid, **values} for tid, values in per.items()]
    return pd.DataFrame(rows)


def _without_timings(value: Any) -> Any:
    """``value`` without wall-clock fields (``*_seconds``): they differ between identical runs,
    so the workbook leaves them to summary.json and stays byte-identical."""
    if isinstance(value, Mapping):
        return {k: _without_timings(v) for k, v in value.items()
                if not str(k).endswith("seconds")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _cell(value: Any) -> Any:
    """A value openpyxl can store: NaN / None empty, numpy scalars as Python ones."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _write_sheet(workbook: Any, name: str, table: pd.DataFrame) -> None:
    # only for --xlsx, like write_results_xlsx's openpyxl
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    sheet = workbook.create_sheet(_(SHEET_TITLES[name]) if name in SHEET_TITLES else name)
    columns = [str(c) for c in table.columns]
    sheet.append([_(label(c)) for c in columns])  # the output language's header
    sheet.append(columns)
    bold = Font(bold=True)
    muted = Font(italic=True, color="666666", size=9)
    band = PatternFill("solid", fgColor="E8EEF4")
    for cell in sheet[1]:
        cell.font, cell.fill = bold, band
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for cell in sheet[2]:
        cell.font, cell.fill = muted, band
    numeric = [pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(
        table[c]) for c in table.columns]
    for row in table.itertuples(index=False, name=None):
        sheet.append([_cell(v) for v in row])
    for j, column in enumerate(columns, start=1):
        letter = get_column_letter(j)
        sample = table.iloc[:WIDTH_SAMPLE, j - 1]
        longest = max([len(column), min(len(_(label(column))), 24),
                       *(len(_shown(v)) for v in sample)])
        sheet.column_dimensions[letter].width = min(MAX_WIDTH, max(8, longest + 2))
        if numeric[j - 1]:
            for (cell,) in sheet.iter_rows(min_row=3, min_col=j, max_col=j):
                cell.number_format = NUMBER_FORMAT
    sheet.freeze_panes = "A3"  # both header rows stay in view
    if len(table):
        sheet.auto_filter.ref = f"A2:{get_column_letter(max(1, len(columns)))}{len(table) + 2}"


def _shown(value: Any) -> str:
    value = _cell(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _reproducible(data: bytes) -> bytes:
    """The xlsx bytes with fixed document times and zip entry dates."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = content.decode("utf-8")
                text = re.sub(r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                              rf"\g<1>{FIXED_TIME}\g<3>", text)
                content = text.encode("utf-8")
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, content)
    return out.getvalue()


def workbook_tables(
    summary: Mapping[str, Any],
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    hospital_changes: pd.DataFrame | None = None,
    flows: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """The sheets of ``results.xlsx`` as tables, in workbook order (absent ones left out)."""
    # the first row of the first sheet says where today's volumes come from (issue 22)
    line = summary.get("baseline_source")
    top = _without_timings({"baseline_source": baseline_source_text(line) if line else line,
                            **{k: v for k, v in summary.items()
                               if k not in ("kpis", "baseline_source")}})
    kpis = {k: v for k, v in (summary.get("kpis") or {}).items() if k != "per_treatment"}
    tables: dict[str, pd.DataFrame | None] = {
        "summary": pd.DataFrame(_flatten(top), columns=["key", "value"]),
        "kpis": pd.DataFrame(_flatten(kpis), columns=["kpi", "value"]),
        "per_treatment": per_treatment_table(summary),
        "hospital_changes": hospital_changes,
        "flows": flows,
        "assignments": assignments,
        "site_volumes": site_volumes,
    }
    return {name: tables[name] for name in SHEET_ORDER  # type: ignore[misc]
            if tables[name] is not None}


def write_results_xlsx(
    path: str | Path,
    summary: Mapping[str, Any],
    site_volumes: pd.DataFrame,
    assignments: pd.DataFrame,
    hospital_changes: pd.DataFrame | None = None,
    flows: pd.DataFrame | None = None,
) -> Path:
    """Write ``results.xlsx`` (atomically): sheets ``summary``, ``kpis`` (two columns ``key,
    value`` / ``kpi, value``, nested entries as dotted keys), ``per_treatment``,
    ``hospital_changes``, ``flows`` (where the patients of each hospital go), ``assignments``
    and ``site_volumes`` (the CSV tables unchanged)."""
    # openpyxl (about 0.14 s to import) only for --xlsx: every solve imports this module
    from openpyxl import Workbook

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, table in workbook_tables(summary, site_volumes, assignments, hospital_changes,
                                       flows).items():
        _write_sheet(workbook, name, table)
    buffer = io.BytesIO()
    workbook.save(buffer)
    write_bytes(path, _reproducible(buffer.getvalue()))
    return path


def read_results_xlsx(path: str | Path) -> dict[str, pd.DataFrame]:
    """The sheets of a ``results.xlsx`` by their names (whatever the workbook's language) and
    CSV column names (the second header row)."""
    names = {translate(title, lang): name for name, title in SHEET_TITLES.items()
             for lang in LANGUAGES}
    sheets = pd.read_excel(path, sheet_name=None, header=1)
    return {names.get(title, title): table for title, table in sheets.items()}
