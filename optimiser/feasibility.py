"""Exact feasibility of a sub-problem from its keep sets, without a MIP (Hall's condition).

A model whose only constraints are the demand rows, the volume norms (``min_volume`` with its
non-binding ``link`` rows), forced keeps / closures and caps on the number of providers asks:
is there a set ``S`` of kept sites such that every area can send all its patients to sites of
``S`` it may use, and every site of ``S`` gets at least its required volume ``R``? Sites have no
upper bound on their volume, so by the supply-demand theorem (Gale 1957; Hall's marriage
condition with weights) such flows exist iff

* every area can use some site of ``S`` (or a site without a keep decision), and
* every subset ``Q`` of ``S`` satisfies ``R(Q) <= demand of the areas that can use a site of Q``
  (the volume ``Q`` needs can only come from those areas; the rest of any area's patients then
  go to any open site it may use, which only raises volumes).

The second condition depends on ``Q`` alone, so the sets that pass it for every subset form a
family closed under taking subsets: :func:`keep_set_feasible` evaluates both conditions for all
``2^k`` keep sets of a treatment at once with subset-sum (zeta) transforms, in ``O(k 2^k)``
array operations. It reads the built model (:class:`~optimiser.formulation.MipArrays`), so it
decides exactly the model the solver would get, and answers ``None`` (solve it) for any model
with other rows: capacities, bundles, loss shares, single sourcing, pinned flows, too many keep
decisions, or a keep set that lies on the tolerance edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .formulation import MipArrays
from .tolerances import KEEP_SET_TOL

#: at most this many open-able keep decisions per treatment (the arrays have 2^k entries)
MAX_KEEP_DECISIONS = 20
#: row families that this test decides; any other family with rows makes it answer None
DECIDED_FAMILIES = ("demand", "min_volume", "link", "link_pair", "one_provider",
                    "max_providers", "providers_floor", "stay")
#: families whose rows bound the number of kept sites of a treatment (lo <= Σ y <= P; the
#: floor is the second phase of the providers objective)
CARDINALITY_FAMILIES = ("one_provider", "max_providers", "providers_floor")


def keep_set_feasible(arrays: MipArrays) -> bool | None:
    """Whether the model has a feasible solution: ``True`` / ``False`` decided exactly by the
    keep-set test above, ``None`` when the model has rows the test does not cover."""
    if arrays.conflicts:
        return False
    if not any(_openable_count(arrays, t) <= MAX_KEEP_DECISIONS for t in arrays.treatments):
        return None  # before reading the model back (a national model is large)
    parsed = _parse(arrays)
    if parsed is None:
        return None
    d0, d1 = _rows(arrays, "demand")
    if np.unique(parsed.demand_row).shape[0] < d1 - d0:
        return False  # an area with patients and no site it may use
    verdicts = []
    for t in arrays.treatments:
        verdict = _treatment_feasible(parsed, t, arrays)
        if verdict is False:
            return False
        verdicts.append(verdict)
    return None if any(v is None for v in verdicts) else True


def _openable_count(arrays: MipArrays, t: int) -> int:
    return int(np.count_nonzero((arrays.y_treat == t)
                                & (arrays.col_upper[arrays.y_slice()] == 1.0)))


class _Parsed:
    """The model read back as areas, keep decisions and caps (one-treatment pieces)."""

    def __init__(self, demand_row: np.ndarray, demand: np.ndarray, x_y: np.ndarray,
                 required: np.ndarray, caps: list[tuple[np.ndarray, float, float]]) -> None:
        self.demand_row = demand_row  # demand row (area) of each x column
        self.demand = demand  # patients of each demand row
        self.x_y = x_y  # keep decision (y index) of each x column, -1 without one
        self.required = required  # required volume of each keep decision
        self.caps = caps  # (y indices, lo, P): at least lo, at most P of them kept


def _rows(arrays: MipArrays, family: str) -> tuple[int, int]:
    return arrays.row_families.get(family, (0, 0))


def _one_entry_per_column(block: sp.csc_matrix) -> np.ndarray | None:
    """Row of the single entry of each column (-1 for an empty column); None if some column
    has two."""
    counts = np.diff(block.indptr)
    if np.any(counts > 1):
        return None
    out = np.full(block.shape[1], -1, dtype=np.int64)
    out[counts == 1] = block.indices
    return out


def _structure_ok(arrays: MipArrays) -> bool:
    """Only decided families have rows; flows continuous, unscaled and bounded by demand only;
    keeps binary."""
    for family, (start, stop) in arrays.row_families.items():
        if stop > start and family not in DECIDED_FAMILIES:
            return False
    if np.any(arrays.integrality[arrays.x_slice()]) or np.any(arrays.x_scale != 1.0):
        return False
    y_lo, y_hi = arrays.col_lower[arrays.y_slice()], arrays.col_upper[arrays.y_slice()]
    stays = slice(arrays.stay_start, arrays.n_cols)
    return bool(np.all(np.isin(y_lo, (0.0, 1.0))) and np.all(np.isin(y_hi, (0.0, 1.0)))
                and np.all(arrays.col_lower[arrays.x_slice()] == 0.0)
                and np.all(arrays.col_lower[stays] == 0.0)
                and np.all(arrays.integrality[stays] == 0))


def _bounds_are(arrays: MipArrays, family: str, lower: float, upper: float) -> bool:
    """Every row of ``family`` has exactly these bounds (not shifted by pinned columns)."""
    start, stop = _rows(arrays, family)
    return bool(np.all(arrays.row_lower[start:stop] == lower)
                and np.all(arrays.row_upper[start:stop] == upper))


def _block_is(block: sp.csc_matrix, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray
              ) -> bool:
    """The block holds exactly the entries (rows, cols, vals)."""
    expected = sp.csc_matrix((vals, (rows, cols)), shape=block.shape)
    return (block != expected).nnz == 0


def _pairs_and_stays_ok(arrays: MipArrays, csc: sp.csc_matrix, x_y: np.ndarray,
                        x_demand: np.ndarray) -> bool:
    """``link_pair`` rows are flow <= D·y with D at least the flow's demand and y its site's;
    ``stay`` rows are stay <= flow of the stay's own column: neither restricts more than
    "a closed site gets nothing"."""
    if not (_bounds_are(arrays, "link", -np.inf, 0.0)
            and _bounds_are(arrays, "link_pair", -np.inf, 0.0)
            and _bounds_are(arrays, "stay", -np.inf, 0.0)):
        return False
    p0, p1 = _rows(arrays, "link_pair")
    if p1 > p0:
        pair = sp.csr_matrix(csc[p0:p1])
        xs = [pair.indices[pair.indptr[r]:pair.indptr[r + 1]] for r in range(p1 - p0)]
        if any(cols.shape[0] != 2 for cols in xs):
            return False
        cols = np.array(xs)
        x_col, y_col = cols.min(axis=1), cols.max(axis=1)
        if np.any(x_col >= arrays.n_x) or np.any(x_y[x_col] != y_col - arrays.y_start):
            return False
        coef = pair[np.arange(p1 - p0), y_col].A1
        if np.any(pair[np.arange(p1 - p0), x_col].A1 != 1.0):
            return False
        if np.any(-coef < x_demand[x_col] * (1.0 - KEEP_SET_TOL)):
            return False
    s0, s1 = _rows(arrays, "stay")
    n_stay = arrays.n_cols - arrays.stay_start
    if s1 - s0 != n_stay or (n_stay and arrays.stay_x is None):
        return False
    if n_stay:
        assert arrays.stay_x is not None
        r = np.arange(n_stay)
        return _block_is(csc[s0:s1], np.concatenate([r, r]),
                         np.concatenate([arrays.stay_start + r, arrays.stay_x]),
                         np.concatenate([np.ones(n_stay), -np.ones(n_stay)]))
    return True


def _parse(arrays: MipArrays) -> _Parsed | None:
    if not _structure_ok(arrays):
        return None
    csc = sp.csc_matrix(arrays.A)
    d0, d1 = _rows(arrays, "demand")
    demand = arrays.row_upper[d0:d1]
    if np.any(arrays.row_lower[d0:d1] != demand):
        return None
    demand_row = _one_entry_per_column(csc[d0:d1, arrays.x_slice()])
    if demand_row is None or np.any(demand_row < 0):
        return None
    # a flow bounded below its area's demand is pinned or capped: not this test's model
    if np.any(arrays.col_upper[arrays.x_slice()] < demand[demand_row]):
        return None
    m0, m1 = _rows(arrays, "min_volume")
    if (m1 - m0 != arrays.n_y or np.any(arrays.row_lower[m0:m1] != 0.0)
            or np.any(arrays.row_upper[m0:m1] != np.inf)):
        return None
    volume = csc[m0:m1]
    x_y = _one_entry_per_column(volume[:, arrays.x_slice()])
    if x_y is None or np.any(volume[:, arrays.x_slice()].data != 1.0):
        return None
    y_block = volume[:, arrays.y_slice()]
    required = -y_block.diagonal()
    off_diagonal = sp.csc_matrix(y_block - sp.diags(-required))
    off_diagonal.eliminate_zeros()
    if off_diagonal.nnz or volume[:, arrays.stay_start:].nnz:
        return None
    if not (_links_slack(arrays, csc, x_y, demand[demand_row])
            and _pairs_and_stays_ok(arrays, csc, x_y, demand[demand_row])):
        return None
    caps = _caps(arrays, csc)
    if caps is None:
        return None
    return _Parsed(demand_row, demand, x_y, required, caps)


def _links_slack(arrays: MipArrays, csc: sp.csc_matrix, x_y: np.ndarray,
                 x_demand: np.ndarray) -> bool:
    """The ``link`` rows Σ flow <= U·y only close a site (U at least all it can receive): a
    smaller U is a capacity, which this test does not model."""
    l0, l1 = _rows(arrays, "link")
    if l1 == l0:
        return True
    if l1 - l0 != arrays.n_y:
        return False
    bound = -csc[l0:l1, arrays.y_slice()].diagonal()
    reach = np.zeros(arrays.n_y)
    with_y = x_y >= 0
    np.add.at(reach, x_y[with_y], x_demand[with_y])
    return bool(np.all(bound >= reach * (1.0 - KEEP_SET_TOL)))


def _caps(arrays: MipArrays, csc: sp.csc_matrix
          ) -> list[tuple[np.ndarray, float, float]] | None:
    rows = sp.csr_matrix(csc)
    caps = []
    for family in CARDINALITY_FAMILIES:
        start, stop = _rows(arrays, family)
        for r in range(start, stop):
            cols = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
            vals = rows.data[rows.indptr[r]:rows.indptr[r + 1]]
            ys = cols - arrays.y_start
            if np.any(ys < 0) or np.any(ys >= arrays.n_y) or np.any(vals != 1.0):
                return None
            caps.append((ys, float(arrays.row_lower[r]), float(arrays.row_upper[r])))
    return caps


# --- the test over all keep sets of one treatment ----------------------------------------------
def _over_subsets(values: np.ndarray, combine: np.ufunc) -> np.ndarray:
    """out[M] = combine over N ⊆ M of values[N], for bit masks M (the zeta transform)."""
    out = values.copy()
    half = 1
    while half < out.shape[0]:
        view = out.reshape(-1, 2, half)
        combine(view[:, 1, :], view[:, 0, :], out=view[:, 1, :])
        half *= 2
    return out


def subset_sums(values: np.ndarray) -> np.ndarray:
    """out[M] = Σ_{N ⊆ M} values[N]."""
    return _over_subsets(values, np.add)


def _all_subsets_hold(good: np.ndarray) -> np.ndarray:
    """out[M] = all(good[N] for N ⊆ M)."""
    return _over_subsets(good, np.logical_and)


def weight_sums(weights: np.ndarray) -> np.ndarray:
    """out[M] = Σ_{b in M} weights[b]."""
    out = np.zeros(1)
    for w in weights:
        out = np.concatenate([out, out + w])
    return out


@dataclass
class TreatmentKeepSets:
    """One treatment of a model as keep sets: its open-able keep decisions are the bits of a
    set mask (bit b = y column ``openable[b]``), and ``allowed[S]`` says whether keep set S
    passes every test above (:mod:`optimiser.keepset_search` optimises over them)."""

    treatment: int
    openable: np.ndarray  # y indices of the bits
    required: np.ndarray  # required volume per bit
    demand: np.ndarray  # patients per area (demand row) of the treatment
    x_columns: np.ndarray  # the treatment's x columns
    x_area: np.ndarray  # their area (position in ``demand``)
    x_bit: np.ndarray  # their bit; -1: a site without keep decision, -2: a closed site
    allowed: np.ndarray  # bool per set mask

    @property
    def n_bits(self) -> int:
        return int(self.openable.shape[0])


def treatment_keep_sets(arrays: MipArrays, t: int, parsed: _Parsed | None = None
                        ) -> TreatmentKeepSets | None:
    """The keep sets of treatment ``t`` of a model this test covers; ``None`` otherwise, or
    when some keep set lies on the tolerance edge of Hall's condition."""
    if _openable_count(arrays, t) > MAX_KEEP_DECISIONS:
        return None
    parsed = _parse(arrays) if parsed is None else parsed
    if parsed is None:
        return None
    ys = np.nonzero(arrays.y_treat == t)[0]
    y_lo = arrays.col_lower[arrays.y_slice()][ys]
    y_hi = arrays.col_upper[arrays.y_slice()][ys]
    openable = ys[y_hi == 1.0]
    if openable.shape[0] > MAX_KEEP_DECISIONS:
        return None
    k = openable.shape[0]
    bit = np.full(arrays.n_y, -2, dtype=np.int64)
    bit[openable] = np.arange(k)
    x_t = np.nonzero(arrays.x_treat == t)[0]
    rows = np.unique(parsed.demand_row[x_t])
    local = np.searchsorted(rows, parsed.demand_row[x_t])
    x_y = parsed.x_y[x_t]
    x_bit = np.full(x_t.shape[0], -1, dtype=np.int64)
    x_bit[x_y >= 0] = bit[x_y[x_y >= 0]]
    usable = x_bit >= 0
    area_mask = np.zeros(rows.shape[0], dtype=np.int64)
    np.bitwise_or.at(area_mask, local[usable], np.left_shift(1, x_bit[usable]))
    always_open = np.zeros(rows.shape[0], dtype=bool)
    always_open[local[x_bit == -1]] = True
    d = parsed.demand[rows]
    d0, d1 = _rows(arrays, "demand")
    unserved = len(arrays.treatments) == 1 and rows.shape[0] < d1 - d0

    n = 1 << k
    full = n - 1
    never_reach = subset_sums(np.bincount(area_mask, weights=d, minlength=n))
    reach = d.sum() - never_reach[full ^ np.arange(n)]
    must_cover = ~always_open & (d > 0)
    uncovered = subset_sums(np.bincount(area_mask[must_cover], minlength=n).astype(float))
    # every area must be served; one with patients and no site it may use never is
    ok = (uncovered[full ^ np.arange(n)] == 0) & (not unserved)
    ok &= _meets_cardinality(parsed, arrays, t, bit, k, n)
    if np.any((y_lo == 1.0) & (y_hi == 0.0)):
        ok[:] = False  # forced open and closed
    forced = int(np.sum(np.left_shift(1, bit[ys[(y_lo == 1.0) & (y_hi == 1.0)]])))
    ok &= (np.arange(n) & forced) == forced
    need = weight_sums(parsed.required[openable])
    slack = KEEP_SET_TOL * np.maximum(1.0, need)
    nothing_needed = need <= 0.0  # e.g. the empty set, or waived norms
    strict = ok & _all_subsets_hold(nothing_needed | (need <= reach - slack))
    lenient = ok & _all_subsets_hold(nothing_needed | (need <= reach + slack))
    if not np.array_equal(strict, lenient):
        return None  # a keep set on the tolerance edge: let the solver decide
    return TreatmentKeepSets(t, openable, parsed.required[openable], d, x_t, local, x_bit,
                             strict)


def _treatment_feasible(parsed: _Parsed, t: int, arrays: MipArrays) -> bool | None:
    sets = treatment_keep_sets(arrays, t, parsed)
    return None if sets is None else bool(np.any(sets.allowed))


def _meets_cardinality(parsed: _Parsed, arrays: MipArrays, t: int, bit: np.ndarray, k: int,
                       n: int) -> np.ndarray:
    """lo <= |S ∩ group| <= P for each cardinality row on treatment ``t``'s keeps."""
    ok = np.ones(n, dtype=bool)
    for ys, lo, most in parsed.caps:
        if not np.any(arrays.y_treat[ys] == t):
            continue  # a row on another treatment's keeps
        bits = bit[ys]
        weights = np.zeros(k)
        weights[bits[bits >= 0]] = 1.0
        count = weight_sums(weights)
        ok &= (count <= most + KEEP_SET_TOL) & (count >= lo - KEEP_SET_TOL)
    return ok
