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
decides exactly the model the solver would get: every row family says how its rows are read
(``Family.keep_sets``, optimiser/rows/keepsets.py). It answers ``None`` (solve it) for any model
with rows of a family that cannot be read (capacities, bundles, loss shares, a new family), rows
not of the form read (single sourcing, pinned flows), too many keep decisions, or a keep set
that lies on the tolerance edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .formulation import MipArrays
from .rows import PHASE_FAMILIES
from .rows.keepsets import KeepSetModel, KeepSetReader
from .tolerances import KEEP_SET_TOL

#: at most this many open-able keep decisions per treatment (the arrays have 2^k entries)
MAX_KEEP_DECISIONS = 20


def keep_set_feasible(arrays: MipArrays) -> bool | None:
    """Whether the model has a feasible solution: ``True`` / ``False`` decided exactly by the
    keep-set test above, ``None`` when the model has rows the test does not cover."""
    return keep_set_verdict(arrays)[0]


def keep_set_verdict(arrays: MipArrays
                     ) -> tuple[bool | None, dict[int, TreatmentKeepSets | None]]:
    """:func:`keep_set_feasible`'s verdict and the keep sets it computed per treatment (the
    keep-set searches re-use them instead of reading the model again; a treatment missing
    from the dict was not computed)."""
    computed: dict[int, TreatmentKeepSets | None] = {}
    if arrays.conflicts:
        return False, computed
    if not any(_openable_count(arrays, t) <= MAX_KEEP_DECISIONS for t in arrays.treatments):
        return None, computed  # before reading the model back (a national model is large)
    parsed = read_keep_set_model(arrays)
    if parsed is None:
        return None, computed
    assert parsed.demand_row is not None
    if np.unique(parsed.demand_row).shape[0] < parsed.n_demand_rows:
        return False, computed  # an area with patients and no site it may use
    verdicts = []
    for t in arrays.treatments:
        sets = treatment_keep_sets(arrays, t, parsed)
        computed[t] = sets
        verdict = None if sets is None else bool(np.any(sets.allowed))
        if verdict is False:
            return False, computed
        verdicts.append(verdict)
    return (None if any(v is None for v in verdicts) else True), computed


def _openable_count(arrays: MipArrays, t: int) -> int:
    return int(np.count_nonzero((arrays.y_treat == t)
                                & (arrays.col_upper[arrays.y_slice()] == 1.0)))


def read_keep_set_model(arrays: MipArrays) -> KeepSetModel | None:
    """The model as the keep-set algorithms see it, read by every family's ``keep_sets``
    reader (optimiser/rows/keepsets.py); None when some family with rows cannot be read
    (no reader: it falls back to branch and bound) or its rows are not of that form."""
    readers: dict[str, KeepSetReader | None] = {
        f.name: f.keep_sets for f in (*arrays.families, *PHASE_FAMILIES)}
    columns = [f.keep_sets for f in arrays.families if f.kind == "columns"]
    if any(reader is None for reader in columns):
        return None
    rows: list[tuple[KeepSetReader, int, int]] = []
    for name, (start, stop) in arrays.row_families.items():
        reader = readers.get(name)
        if reader is not None:
            rows.append((reader, start, stop))
        elif stop > start:
            return None  # before reading the model back: this family cannot be read
    model = KeepSetModel(arrays)
    if not all(reader(model, 0, 0) for reader in columns if reader is not None):
        return None
    if not all(reader(model, start, stop) for reader, start, stop in rows):
        return None
    return model if model.complete() else None


# --- the test over all keep sets of one treatment ----------------------------------------------
#: below this block size a zeta step of a large array combines one strided column at a time:
#: numpy's loop over (blocks, half) with a short inner dimension costs ~2x (k = 16: 1.4 ->
#: 0.75 ms a transform); the same additions in the same order, so the same floats
_COLUMNWISE_HALF = 8
_COLUMNWISE_MIN_SIZE = 4096


def _over_subsets(values: np.ndarray, combine: np.ufunc) -> np.ndarray:
    """out[M] = combine over N ⊆ M of values[N], for bit masks M (the zeta transform)."""
    out = values.copy()
    half = 1
    columnwise = out.shape[0] >= _COLUMNWISE_MIN_SIZE
    while half < out.shape[0]:
        if columnwise and half < _COLUMNWISE_HALF:
            block = out.reshape(-1, 2 * half)
            for j in range(half):
                combine(block[:, half + j], block[:, j], out=block[:, half + j])
        else:
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
    out = np.zeros(1 << weights.shape[0])
    half = 1
    for w in weights:  # out[half:2 half] = out[:half] + w, as a doubling concatenation would
        np.add(out[:half], w, out=out[half:2 * half])
        half *= 2
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


def treatment_keep_sets(arrays: MipArrays, t: int, parsed: KeepSetModel | None = None
                        ) -> TreatmentKeepSets | None:
    """The keep sets of treatment ``t`` of a model this test covers; ``None`` otherwise, or
    when some keep set lies on the tolerance edge of Hall's condition."""
    if _openable_count(arrays, t) > MAX_KEEP_DECISIONS:
        return None
    parsed = read_keep_set_model(arrays) if parsed is None else parsed
    if parsed is None:
        return None
    assert (parsed.demand_row is not None and parsed.demand is not None
            and parsed.x_y is not None and parsed.required is not None)
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
    unserved = len(arrays.treatments) == 1 and rows.shape[0] < parsed.n_demand_rows

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


def _meets_cardinality(parsed: KeepSetModel, arrays: MipArrays, t: int, bit: np.ndarray, k: int,
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
