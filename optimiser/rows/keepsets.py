"""How the exact keep-set algorithms read a family's rows (``Family.keep_sets``).

The keep-set feasibility test and searches (optimiser/feasibility.py, keepset_search.py,
keepset_phase2.py) model: areas whose patients go to sites they may use, keep decisions with a
required volume, and caps on the number of kept sites. They read that model back from the
built matrix, so they decide exactly the model the solver would get. Each family says how its
rows (or its column block) are read: its ``keep_sets`` reader fills its part of a
:class:`KeepSetModel` and returns ``False`` when its rows are not of the form the algorithms
model (e.g. bounds shifted by pinned columns). A family whose ``keep_sets`` is ``None`` cannot be
read: a model with any of its rows is left to branch and bound (the solve falls back; so does a
new family until it declares a reader).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from ..tolerances import KEEP_SET_TOL


class ModelArrays(Protocol):
    """What a reader sees of the built model (``formulation.MipArrays``)."""

    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray
    x_scale: np.ndarray
    x_start: int
    y_start: int
    stay_start: int
    stay_x: np.ndarray | None
    row_families: dict[str, tuple[int, int]]

    @property
    def n_x(self) -> int: ...

    @property
    def n_y(self) -> int: ...

    @property
    def n_cols(self) -> int: ...

    def x_slice(self) -> slice: ...

    def y_slice(self) -> slice: ...


class KeepSetModel:
    """The model read back as areas, keep decisions and caps, filled by the families'
    readers in row order (``demand`` before ``min_volume`` before the links)."""

    def __init__(self, arrays: ModelArrays) -> None:
        self.arrays = arrays
        self.demand_row: np.ndarray | None = None  # demand row (area) of each x column
        self.demand: np.ndarray | None = None  # patients of each demand row
        self.x_y: np.ndarray | None = None  # keep decision (y index) of each x column, or -1
        self.required: np.ndarray | None = None  # required volume of each keep decision
        #: (y indices, lo, P): at least lo, at most P of them kept
        self.caps: list[tuple[np.ndarray, float, float]] = []
        self.stays_read = False  # the stay rows were read (a model with stay columns needs it)

    @cached_property
    def csr(self) -> sp.csr_matrix:
        """The matrix by rows (the built model's own format: no copy)."""
        return sp.csr_matrix(self.arrays.A)

    def entries(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored entries of rows [start, stop) as (row from 0, column, value), in row
        order: the readers check them with array operations (a scipy matrix per block cost
        ~1.5 ms a model in constructors and format checks)."""
        csr = self.csr
        lo, hi = int(csr.indptr[start]), int(csr.indptr[stop])
        counts = np.diff(csr.indptr[start:stop + 1])
        row = np.repeat(np.arange(stop - start), counts)
        return row, csr.indices[lo:hi].astype(np.int64), csr.data[lo:hi]

    def rows(self, start: int, stop: int) -> sp.csc_matrix:
        """Rows [start, stop) by columns: the row block sliced by rows, then converted (the
        same entries as slicing the whole matrix by columns, at a fraction of the cost: a
        row slice of a column-major matrix visits every column)."""
        return self.csr[start:stop].tocsc()

    @property
    def n_demand_rows(self) -> int:
        start, stop = self.arrays.row_families.get("demand", (0, 0))
        return stop - start

    @property
    def x_demand(self) -> np.ndarray:
        """Patients of each x column's area."""
        assert self.demand is not None and self.demand_row is not None
        return self.demand[self.demand_row]

    def complete(self) -> bool:
        """Every part the algorithms need was read."""
        return (self.demand_row is not None and self.x_y is not None
                and (self.stays_read or self.arrays.n_cols == self.arrays.stay_start))

    def bounds_are(self, start: int, stop: int, lower: float, upper: float) -> bool:
        """Every row of the range has exactly these bounds (not shifted by pinned columns)."""
        return bool(np.all(self.arrays.row_lower[start:stop] == lower)
                    and np.all(self.arrays.row_upper[start:stop] == upper))


#: a family's reader: fills its part of the model from its rows [start, stop); False when
#: they are not of the form the keep-set algorithms model
KeepSetReader = Callable[[KeepSetModel, int, int], bool]


def one_entry_per_column(block: sp.csc_matrix) -> np.ndarray | None:
    """Row of the single entry of each column (-1 for an empty column); None if some column
    has two."""
    counts = np.diff(block.indptr)
    if np.any(counts > 1):
        return None
    out = np.full(block.shape[1], -1, dtype=np.int64)
    out[counts == 1] = block.indices
    return out


def single_entries(row: np.ndarray, col: np.ndarray, first: int, count: int
                   ) -> np.ndarray | None:
    """:func:`one_entry_per_column` of the entries (``row``, ``col``) in columns
    [first, first + count): row of each column's entry, -1 for none, None if one has two."""
    inside = (col >= first) & (col < first + count)
    cols = col[inside] - first
    if np.any(np.bincount(cols, minlength=count) > 1):
        return None
    out = np.full(count, -1, dtype=np.int64)
    out[cols] = row[inside]
    return out


def diagonal_of(row: np.ndarray, col: np.ndarray, val: np.ndarray, first: int, count: int
                ) -> tuple[np.ndarray, bool]:
    """The diagonal of the square block of columns [first, first + count) (0 where nothing is
    stored, as scipy's ``diagonal``) and whether it holds no non-zero off the diagonal."""
    inside = (col >= first) & (col < first + count)
    r, c, v = row[inside], col[inside] - first, val[inside]
    on = r == c
    diagonal = np.zeros(count)
    diagonal[r[on]] = 0.0 + v[on]  # as scipy adds a stored -0.0 to 0.0: +0.0
    return diagonal, not np.any(v[~on] != 0.0)


def block_is(block: sp.csc_matrix, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray
             ) -> bool:
    """The block holds exactly the entries (rows, cols, vals)."""
    expected = sp.csc_matrix((vals, (rows, cols)), shape=block.shape)
    return (block != expected).nnz == 0


def read_cardinality(model: KeepSetModel, start: int, stop: int) -> bool:
    """Rows lo <= Σ y <= P with coefficient 1 on keep decisions only: caps on kept sites."""
    arrays = model.arrays
    rows = model.csr[start:stop]
    for r in range(stop - start):
        cols = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
        vals = rows.data[rows.indptr[r]:rows.indptr[r + 1]]
        ys = cols - arrays.y_start
        if np.any(ys < 0) or np.any(ys >= arrays.n_y) or np.any(vals != 1.0):
            return False
        model.caps.append((ys, float(arrays.row_lower[start + r]),
                           float(arrays.row_upper[start + r])))
    return True


def read_flows(model: KeepSetModel, start: int, stop: int) -> bool:
    """Flows continuous, unscaled, from 0 (bounded by demand only: see ``demand``)."""
    arrays = model.arrays
    xs = arrays.x_slice()
    return bool(not np.any(arrays.integrality[xs]) and np.all(arrays.x_scale == 1.0)
                and np.all(arrays.col_lower[xs] == 0.0))


def read_keeps(model: KeepSetModel, start: int, stop: int) -> bool:
    """Keep decisions binary, possibly fixed open or closed."""
    arrays = model.arrays
    y_lo, y_hi = arrays.col_lower[arrays.y_slice()], arrays.col_upper[arrays.y_slice()]
    return bool(np.all(np.isin(y_lo, (0.0, 1.0))) and np.all(np.isin(y_hi, (0.0, 1.0))))


def read_stays(model: KeepSetModel, start: int, stop: int) -> bool:
    """Stay columns continuous, from 0."""
    arrays = model.arrays
    stays = slice(arrays.stay_start, arrays.n_cols)
    return bool(np.all(arrays.col_lower[stays] == 0.0)
                and np.all(arrays.integrality[stays] == 0))


def links_slack(model: KeepSetModel, bound: np.ndarray) -> bool:
    """Σ flow <= U·y only closes a site when U is at least all it can receive (a smaller U is
    a capacity, which the keep-set algorithms do not model)."""
    assert model.x_y is not None
    reach = np.zeros(model.arrays.n_y)
    with_y = model.x_y >= 0
    np.add.at(reach, model.x_y[with_y], model.x_demand[with_y])
    return bool(np.all(bound >= reach * (1.0 - KEEP_SET_TOL)))


__all__ = ["KeepSetModel", "KeepSetReader", "ModelArrays", "block_is", "diagonal_of",
           "links_slack", "one_entry_per_column", "read_cardinality", "read_flows", "read_keeps",
           "read_stays", "single_entries"]
