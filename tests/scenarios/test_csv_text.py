"""scenarios/csv_text.py writes the bytes pandas' to_csv writes (herschik.atomic.write_csv),
on random frames with every column type it formats itself, on frames it leaves to pandas and
on the contract tables of a real run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from herschik.optimiser.params import SolveParams
from herschik.scenarios.csv_text import _columnar, csv_text
from herschik.scenarios.run import solve_verified


def _pandas(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.6f")


WORDS = ["", "plain", "a,b", 'say "hi"', "two\nlines", "cr\rhere", " lead", "trail ",
         "Zuyderland (Heerlen)", "é ü ß", "'single'", ";", "\t", "-", "nan", "None"]


def _random_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    floats = rng.choice([0.0, -0.0, 1.5, 1 / 3, -2.75e-7, 5e-7, 1e20, -1e-12, np.nan, np.inf,
                         -np.inf, 123456.1234565, 2.0000005, 0.0000005], size=n)
    floats = np.where(rng.random(n) < 0.5, floats, np.round(rng.normal(0, 1e3, n), 6))
    words = rng.choice(np.array(WORDS, dtype=object), size=n)
    with_missing = pd.array([None if rng.random() < 0.2 else w for w in words], dtype="str")
    optional = pd.Series([None if i % 3 == 0 else (True if i % 3 == 1 else float(floats[i]))
                          for i in range(n)], dtype=object)
    return pd.DataFrame({
        "float": floats,
        "rounded": np.round(rng.random(n) * 100, 6) + 0.0,
        "int": rng.integers(-10**12, 10**12, n),
        "bool": rng.random(n) < 0.5,
        "word": pd.array(list(words), dtype="str"),
        "missing word": with_missing,
        "optional": optional,
        'odd, "name"': rng.choice(["x", "y"], size=n),
    })


def test_random_frames_give_pandas_bytes() -> None:
    rng = np.random.default_rng(23)
    for n in (0, 1, 2, 7, 300, 2000):
        frame = _random_frame(rng, n)
        assert _columnar(frame) is not None  # formatted here, not by the fallback
        assert csv_text(frame) == _pandas(frame)
        for columns in (["float", "word"], ["bool", "optional"], ["missing word", "int"]):
            assert csv_text(frame[columns]) == _pandas(frame[columns])


def test_frames_of_other_types_go_to_pandas() -> None:
    frames = [
        pd.DataFrame({"a": ["", "x"]}),  # one column: pandas quotes a lone empty field
        pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1.0, 2.0]}),
        pd.DataFrame({"a": np.array([1.5, 2.5], dtype=np.float32), "b": [1, 2]}),
        pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1, 2]}),
        pd.DataFrame({"a": pd.Series([[1], (2,)], dtype=object), "b": [1, 2]}),
    ]
    for frame in frames:
        assert _columnar(frame) is None
        assert csv_text(frame) == _pandas(frame)


@pytest.mark.parametrize("params", [SolveParams(), SolveParams(margin=0.3, max_travel=60.0)])
def test_the_tables_of_a_run_give_pandas_bytes(noordoost_instance, params) -> None:
    result = solve_verified(noordoost_instance, params, reasons=False)
    tables = {"site_volumes": result.site_volumes, "assignments": result.assignments,
              "hospital_changes": result.hospital_changes, "flows": result.flows}
    assert len(result.assignments) > 1000
    for name, table in tables.items():
        assert _columnar(table) is not None, name
        assert csv_text(table) == _pandas(table), name


def test_numpy_float_nan_in_an_object_column_is_empty_as_in_pandas() -> None:
    """An object column holding a NumPy float32 / float16 NaN (not a Python float): pandas
    writes it empty; the columnar writer wrote "nan" (review of 2026-12-07)."""
    frame = pd.DataFrame({
        "optional": pd.Series([np.float32("nan"), np.float32(1.5), None, np.float16("nan"),
                               np.float64("nan"), 2.0], dtype=object),
        "n": range(6)})
    assert _columnar(frame) is not None
    assert csv_text(frame) == _pandas(frame)
