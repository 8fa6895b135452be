"""A run's contract CSVs as text, column by column: the bytes of ``write_csv``, faster.

``herschik.atomic.write_csv`` writes ``frame.to_csv(index=False, lineterminator="\\n",
float_format="%.6f")``; pandas formats that value by value in Python (~0.1 s CPU for the
~13,500 rows of a large region's assignments.csv, most of a sweep run's writing). Here each
column is formatted once per distinct value (the tables repeat their ids, names, words and
rounded minutes) and the rows are joined, with pandas' rules: floats ``%.6f`` and NaN empty;
ints and bools as Python writes them; strings as they are, missing ones empty, quoted (with
doubled quotes) where the csv module quotes them (a comma, a quote, a line end); objects
(e.g. ``None`` or a float in a column of optional numbers) as ``str``. A frame with any other
column type, or fewer than two columns (pandas quotes an empty lone field), goes to pandas.
tests/scenarios/test_csv_text.py compares the two on random frames and real run tables.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pandas as pd

#: characters that may make the csv writer quote a field (QUOTE_MINIMAL, "," and "\n")
_SPECIAL = (",", '"', "\n", "\r", " ", "\t")
_PLAIN = (str, bool, int, float, np.bool_, np.integer, np.floating)


def csv_text(frame: pd.DataFrame) -> str:
    """``frame.to_csv(index=False, lineterminator="\\n", float_format="%.6f")``."""
    fast = _columnar(frame)
    if fast is not None:
        return fast
    return str(frame.to_csv(index=False, lineterminator="\n", float_format="%.6f"))


def _columnar(frame: pd.DataFrame) -> str | None:
    columns = list(frame.columns)
    if len(columns) < 2 or len(set(columns)) != len(columns) \
            or not all(isinstance(c, str) for c in columns):
        return None
    fields = []
    for name in columns:
        column = _fields(frame[name])
        if column is None:
            return None
        fields.append(column)
    header = ",".join(_field(c) for c in columns) + "\n"
    if not len(frame):
        return header
    return header + "\n".join(map(",".join, zip(*fields, strict=True))) + "\n"


def _field(text: str) -> str:
    """The field as pandas' csv writer writes it (quoted when the csv module quotes it: which
    characters it quotes depends on the Python version, so it is asked, for the few texts that
    hold a special character)."""
    if not any(c in text for c in _SPECIAL):
        return text
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([text])
    return buffer.getvalue()[:-1]


def _six_decimals(values: np.ndarray) -> np.ndarray:
    """Each float as ``"%.6f" % v`` (an object array; ``format(v, ".6f")`` is the same
    conversion): the text of ``np.char.mod("%.6f", ...)``, in a list at under half its cost."""
    return np.array(list(map("{:.6f}".format, values.tolist())), dtype=object)


def _missing(value: Any) -> bool:
    # any NumPy float NaN, as pandas' isna (np.float32 is no Python float)
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating))
                                               and value != value)


def _fields(column: pd.Series) -> np.ndarray | None:
    """Each value's field text (object array), None for a type left to pandas."""
    dtype = column.dtype
    if dtype == np.float64:
        values = column.to_numpy()
        if (np.signbit(values) & (values == 0)).any():
            # -0.0 and 0.0 are one distinct value below, but "-0.000000" and "0.000000" here
            text = _six_decimals(values)
            text[np.isnan(values)] = ""
            return text
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        return np.append(_six_decimals(uniques), "")[codes]  # code -1 (NaN): the empty label
    if dtype == np.int64:
        return column.to_numpy().astype(str).astype(object)
    if dtype == np.bool_:
        return np.where(column.to_numpy(), "True", "False").astype(object)
    if isinstance(dtype, pd.StringDtype):
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        labels = ["" if _missing(value) else _field(str(value))
                  for value in np.asarray(uniques, dtype=object)]
        labels.append("")  # code -1: missing
        return np.asarray(labels, dtype=object)[codes]
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        # value by value: 1, 1.0 and True (and 0.0, -0.0) would be one distinct value
        out = []
        for value in column.to_numpy(dtype=object):
            if _missing(value):
                out.append("")
            elif isinstance(value, _PLAIN):
                out.append(_field(str(value)))
            else:
                return None
        return np.asarray(out, dtype=object)
    return None
