"""Reading one CSV table of a dataset folder: decoding, parsing, column types and the per-table
checks (unique keys, references, ids). Every problem is a :class:`DataError` naming the file,
the 1-based data row and the field; checks are vectorised and report the first bad row."""

from __future__ import annotations

import csv
import io
import stat
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from herschik.geo.schema import (
    MAX_ID_LENGTH,
    OPTIONAL_COLUMNS,
    RD_X_RANGE,
    RD_Y_RANGE,
    SCHEMA,
    VALUE_LIMITS,
)

from herschik.errors import DataError

#: Largest whole number an int column accepts (exact in float64, fits in int64).
_MAX_INT = 2.0**53

#: Tables that must have at least one data row.
_NEEDS_ROWS = ("regions.csv", "sites.csv", "areas.csv", "treatments.csv")

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def decode_text(file: str, data: bytes) -> str:
    """UTF-8 text of a file (a leading BOM dropped); a DataError names the row of a bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].split(b"\n")
        line = len(before)  # 1-based line of the bad byte
        # Data rows are counted like the parsed table: header excluded, blank lines skipped.
        row = sum(1 for text in before[1:-1] if text.strip(b"\r")) + 1 if line > 1 else None
        byte = data[exc.start : exc.start + 1].hex()
        where = "in the header" if row is None else "in this row"
        raise DataError(
            file, row, None,
            f"not UTF-8 text (byte 0x{byte} {where}); save the file as UTF-8",
        ) from None


def _parse_csv(file: str, text: str) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of CSV text; every row must have as many fields as the header.

    Blank lines are skipped (they are not counted as rows).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    try:
        header = next((r for r in reader if r), None)
        if header is None:
            raise DataError(file, None, None, "file is empty (no header row)")
        for fields in reader:
            if not fields:
                continue
            rows.append(fields)
            if len(fields) != len(header):
                raise DataError(
                    file, len(rows), None,
                    f"has {len(fields)} fields but the header has {len(header)}",
                )
    except csv.Error as exc:
        raise DataError(file, len(rows) + 1, None, f"malformed CSV ({exc})") from None
    return header, rows


#: Largest file of a dataset folder read (bytes): the national district tables are ~2 MB, a
#: full travel-time matrix of districts x hospitals ~60 MB.
MAX_DATA_FILE_BYTES = 1 << 30


def check_data_file(path: Path, file: str, max_bytes: int = MAX_DATA_FILE_BYTES) -> int:
    """The size of ``path`` if it is a regular file (a link to one is fine) of at most
    ``max_bytes``; else DataError. Checked before opening: a FIFO would block the open forever
    and ``/dev/zero`` would be read until memory runs out (issue 27)."""

    try:
        info = path.stat()
    except OSError as exc:
        raise DataError(file, None, None, f"cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(file, None, None, "not a regular file (a folder, device, FIFO or a "
                        "link to one)")
    if info.st_size > max_bytes:
        raise DataError(file, None, None, f"{info.st_size:,} bytes; larger than the "
                        f"{max_bytes:,} a dataset file may have")
    return int(info.st_size)


def read_data_bytes(path: Path, file: str, max_bytes: int = MAX_DATA_FILE_BYTES) -> bytes:
    """The bytes of a dataset file (:func:`check_data_file`), never more than ``max_bytes``
    even if the file grows while it is read."""
    check_data_file(path, file, max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise DataError(file, None, None, f"cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise DataError(file, None, None, f"larger than the {max_bytes:,} bytes a dataset "
                        "file may have")
    return data


def read_table(folder: Path, file: str, required: bool = True) -> pd.DataFrame | None:
    """Read one CSV as strings and convert its columns per ``SCHEMA`` (raising DataError).

    Accepts a UTF-8 byte-order mark and Windows line ends; anything not UTF-8, a row with a
    different number of fields than the header, duplicate or unnamed columns are refused.
    """
    path = folder / file
    if not path.exists() and not path.is_symlink():
        if required:
            raise DataError(file, None, None, "file is missing")
        return None
    data = read_data_bytes(path, file)
    header, rows = _parse_csv(file, decode_text(file, data))
    header = [name.strip() for name in header]
    spec = SCHEMA[file]
    optional = _check_header(file, header, [name for name, _ in spec])
    if file in _NEEDS_ROWS and not rows:
        raise DataError(file, None, None, "no data rows (only a header)")
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    raw = {name: pd.Series(values, dtype=object) for name, values in zip(header, columns,
                                                                          strict=True)}
    out = pd.DataFrame(index=pd.RangeIndex(len(rows)))
    for name, kind in [*spec, *optional]:
        out[name] = _convert(file, name, kind, raw[name].astype(str))
    return out


def _check_header(file: str, header: list[str], expected: list[str]) -> list[tuple[str, str]]:
    """Refuse unnamed, duplicate, missing and unexpected columns; returns the optional columns
    (name, kind) that the header has."""
    for pos, name in enumerate(header):
        if not name:
            raise DataError(file, None, None, f"column {pos + 1} of the header has no name")
        if name in header[:pos]:
            raise DataError(file, None, name, "duplicate column")
    for name in expected:
        if name not in header:
            raise DataError(file, None, name, "missing column")
    optional = [(n, k) for n, k in OPTIONAL_COLUMNS.get(file, []) if n in header]
    extra = [c for c in header if c not in expected and c not in dict(optional)]
    if extra:
        raise DataError(file, None, extra[0], "unexpected column (expected: "
                        + ", ".join(expected) + ")")
    return optional


def first_bad(file: str, field: str, mask: np.ndarray, values: pd.Series,
               message: Callable[[str], str]) -> None:
    """Raise DataError for the first True in ``mask`` (row numbers are 1-based data rows)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        pos = int(np.argmax(mask))
        raise DataError(file, pos + 1, field, message(str(values.iloc[pos])))


def _convert(file: str, field: str, kind: str, col: pd.Series) -> pd.Series:
    text = col.str.strip()
    if kind == "id":
        first_bad(file, field, (text == "").to_numpy(), text, lambda v: "missing value")
        return text
    if kind == "str":
        return text
    if kind.startswith("enum:"):
        allowed = kind[5:].split("|")
        first_bad(file, field, ~text.isin(allowed).to_numpy(), text,
                   lambda v: f"must be one of {', '.join(allowed)} (got {v!r})")
        return text
    if kind == "bool":
        low = text.str.lower()
        first_bad(file, field, ~low.isin(_TRUE | _FALSE).to_numpy(), text,
                   lambda v: f"must be true or false (got {v!r})")
        return low.isin(_TRUE)
    # numbers
    optional = kind == "optfloat"
    empty = (text == "").to_numpy()
    if not optional:
        first_bad(file, field, empty, text, lambda v: "missing value")
    numbers = pd.to_numeric(text.where(~empty, None), errors="coerce").astype(float)
    values = numbers.to_numpy()
    failed = np.isnan(values) & ~empty
    if failed.any():
        nan_text = failed & text.str.lower().isin(["nan", "na", "n/a", "null", "none"]).to_numpy()
        first_bad(file, field, nan_text, text, lambda v: f"missing value (NaN: {v!r})")
        first_bad(file, field, failed, text, lambda v: f"not a number ({v!r})")
    first_bad(file, field, np.isinf(values), text, lambda v: f"not a finite number ({v!r})")
    if kind == "int":
        first_bad(file, field, ~np.isnan(values) & (values != np.round(values)), text,
                   lambda v: f"not a whole number ({v!r})")
        first_bad(file, field, np.abs(values) > _MAX_INT, text,
                   lambda v: f"too large for a whole number ({v})")
    if kind in ("xcoord", "ycoord"):
        low, high = RD_X_RANGE if kind == "xcoord" else RD_Y_RANGE
        first_bad(file, field, (values < low) | (values > high), text,
                   lambda v: f"outside the Netherlands (RD New {field} must be in "
                             f"{low:.0f}..{high:.0f}; got {v})")
        return numbers
    first_bad(file, field, values < 0, text, lambda v: f"negative number ({v})")
    limit = VALUE_LIMITS.get((file, field))
    if limit is not None:
        first_bad(file, field, values > limit, text,
                  lambda v: f"{v} is above the plausible maximum {limit:g}")
    if kind == "int":
        return numbers.astype(np.int64)
    return numbers


def check_unique(file: str, frame: pd.DataFrame, keys: list[str]) -> None:
    dup = frame.duplicated(subset=keys, keep="first").to_numpy()
    if dup.any():
        pos = int(np.argmax(dup))
        value = ", ".join(str(frame[k].iloc[pos]) for k in keys)
        raise DataError(file, pos + 1, keys[-1] if len(keys) == 1 else ",".join(keys),
                        f"duplicate id ({value})")


def check_ref(file: str, frame: pd.DataFrame, field: str, known: pd.Series,
               target: str) -> None:
    bad = pd.Index(known.to_numpy(dtype=object)).get_indexer(
        frame[field].to_numpy(dtype=object)) < 0
    first_bad(file, field, bad, frame[field], lambda v: f"unknown id {v!r} (not in {target})")


#: Characters an id may not contain: ids name files (maps, plots), so no path can hide in one.
_ID_FORBIDDEN = ("/", "\\", "\x00", "\n", "\r", "\t")
#: Region ids with a meaning on the command line.
RESERVED_REGION_IDS = ("all",)


def _bad_id(value: str) -> bool:
    return (not value.strip() or value.startswith(".") or any(c in value for c in _ID_FORBIDDEN)
            or any(unicodedata.category(c) in ("Cc", "Cf") for c in value))


def check_ids(file: str, frame: pd.DataFrame, field: str) -> None:
    """Ids never become paths unsanitised: no separators, control characters (ESC, the
    invisible format characters) or leading dot, and at most MAX_ID_LENGTH characters (a file
    name of a map or run must fit the file system's 255 bytes)."""
    values = frame[field].astype(str)
    first_bad(file, field, values.map(_bad_id).to_numpy(dtype=bool), values,
               lambda v: f"id {v!r} may not be empty, start with '.' or contain '/', '\\' or "
               "control characters")
    first_bad(file, field, (values.str.len() > MAX_ID_LENGTH).to_numpy(dtype=bool), values,
               lambda v: f"id of {len(v)} characters; at most {MAX_ID_LENGTH}")


