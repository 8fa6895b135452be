"""The regional solve's faster code (issue 23 goals 5 and 6, branch regional) against the code
it replaced: the same answers bit for bit, so every bound, search path and plan is unchanged.

* a price step's partial sort (``_Prices._price_to_fill`` with a guess) against the full sort,
  on random gains with ties, infinities and zero demands, and guesses below, at and above the
  answer;
* the keep-set readers of the row families (array code over the stored entries) against the
  scipy block code they replaced, on built models (every objective, linking and rule that
  reaches them) and on models with tampered rows;
* the shared rules a build computes once per instance (travel limits, shortfall treatments,
  baseline travel) against a fresh computation, also after the parameters or the instance's
  arrays change.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from herschik.optimiser import formulation
from herschik.optimiser.feasibility import read_keep_set_model
from herschik.optimiser.formulation import build_arrays
from herschik.optimiser.keepset_search import _Options, _Prices
from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.optimiser.rows.keepsets import KeepSetModel, block_is, links_slack
from herschik.optimiser.synthetic import synthetic_instance
from herschik.optimiser.tolerances import KEEP_SET_TOL


# --- a price step ---------------------------------------------------------------------------
def _plain_price_to_fill(gain: np.ndarray, demand: np.ndarray, required: float) -> float:
    """The full stable sort (the code before the change)."""
    if required <= 0:
        return 0.0
    order = np.argsort(gain, kind="stable")
    filled = np.cumsum(demand[order])
    at = int(np.searchsorted(filled, required))
    if at >= order.shape[0] or not np.isfinite(gain[order[at]]):
        return 0.0
    return max(0.0, float(gain[order[at]]))


@dataclasses.dataclass
class _Sets:
    required: np.ndarray
    n_bits: int


def _view(demand: np.ndarray) -> _Prices:
    n = demand.shape[0]
    options = _Options(demand, np.zeros((n, 1)), np.zeros((n, 1), np.int64),
                       np.full((n, 1), -1, np.int64), np.full(n, np.inf),
                       np.full(n, -1, np.int64), np.full(n, -1, np.int64))
    return _Prices(_Sets(np.zeros(1), 1), options, np.zeros(2))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(60))
def test_a_price_step_with_a_guess_is_the_full_sorts_price(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 800))
    gain = np.round(rng.normal(0, 40, n), int(rng.integers(0, 3)))  # ties
    gain[rng.random(n) < rng.uniform(0, 0.3)] = np.inf
    gain[rng.random(n) < 0.1] = -400.0  # pinned stays: far below the rest
    demand = rng.choice([0.0, 0.1, 0.5, 1.0, 3.0, 1e-7, 12.25], size=n)
    view = _view(demand)
    total = float(demand.sum())
    for required in (0.0, 1e-9, 0.3, total / 7, total / 2, total, total * (1 + 1e-12), 1e9):
        plain = _plain_price_to_fill(gain, demand, required)
        finite = gain[np.isfinite(gain)]
        guesses = [np.inf, -np.inf, 0.0, plain, np.nextafter(plain, -np.inf), -1000.0, 1e6]
        if finite.shape[0]:
            guesses += list(rng.choice(finite, size=3))
        for guess in guesses:
            got = view._price_to_fill(gain, required, float(guess))
            assert got == plain and np.signbit(got) == np.signbit(plain), (required, guess)


# --- the keep-set readers -------------------------------------------------------------------
def _plain_one_entry_per_column(block: sp.csc_matrix) -> np.ndarray | None:
    counts = np.diff(block.indptr)
    if np.any(counts > 1):
        return None
    out = np.full(block.shape[1], -1, dtype=np.int64)
    out[counts == 1] = block.indices
    return out


def _plain_demand(model, start, stop):
    arrays, csc = model.arrays, sp.csc_matrix(model.arrays.A)
    d = arrays.row_upper[start:stop]
    if np.any(arrays.row_lower[start:stop] != d):
        return False
    row = _plain_one_entry_per_column(csc[start:stop, arrays.x_slice()])
    if row is None or np.any(row < 0):
        return False
    if np.any(arrays.col_upper[arrays.x_slice()] < d[row]):
        return False
    model.demand_row, model.demand = row, d
    return True


def _plain_min_volume(model, start, stop):
    arrays, csc = model.arrays, sp.csc_matrix(model.arrays.A)
    if (stop - start != arrays.n_y or np.any(arrays.row_lower[start:stop] != 0.0)
            or np.any(arrays.row_upper[start:stop] != np.inf)):
        return False
    volume = csc[start:stop]
    x_y = _plain_one_entry_per_column(volume[:, arrays.x_slice()])
    if x_y is None or np.any(volume[:, arrays.x_slice()].data != 1.0):
        return False
    y_block = volume[:, arrays.y_slice()]
    required = -y_block.diagonal()
    off = sp.csc_matrix(y_block - sp.diags(-required))
    off.eliminate_zeros()
    if off.nnz or volume[:, arrays.stay_start:].nnz:
        return False
    model.x_y, model.required = x_y, required
    return True


def _plain_link(model, start, stop):
    arrays, csc = model.arrays, sp.csc_matrix(model.arrays.A)
    if stop == start:
        return True
    if (not model.bounds_are(start, stop, -np.inf, 0.0) or stop - start != arrays.n_y
            or model.x_y is None):
        return False
    return links_slack(model, -csc[start:stop, arrays.y_slice()].diagonal())


def _plain_stay(model, start, stop):
    arrays, csc = model.arrays, sp.csc_matrix(model.arrays.A)
    if not model.bounds_are(start, stop, -np.inf, 0.0):
        return False
    n_stay = arrays.n_cols - arrays.stay_start
    if stop - start != n_stay or (n_stay and arrays.stay_x is None):
        return False
    if n_stay:
        r = np.arange(n_stay)
        if not block_is(csc[start:stop], np.concatenate([r, r]),
                        np.concatenate([arrays.stay_start + r, arrays.stay_x]),
                        np.concatenate([np.ones(n_stay), -np.ones(n_stay)])):
            return False
    model.stays_read = True
    return True


_PLAIN_READERS = {"demand": _plain_demand, "min_volume": _plain_min_volume,
                  "link": _plain_link, "stay": _plain_stay}


def _plain_read(arrays) -> KeepSetModel | None:
    """read_keep_set_model with the scipy block readers of the demand, min_volume, link and
    stay families (the code before the change); every other family's reader as it is."""
    from herschik.optimiser.rows import PHASE_FAMILIES

    readers = {f.name: _PLAIN_READERS.get(f.name, f.keep_sets)
               for f in (*arrays.families, *PHASE_FAMILIES)}
    columns = [f.keep_sets for f in arrays.families if f.kind == "columns"]
    if any(reader is None for reader in columns):
        return None
    rows = []
    for name, (start, stop) in arrays.row_families.items():
        reader = readers.get(name)
        if reader is not None:
            rows.append((reader, start, stop))
        elif stop > start:
            return None
    model = KeepSetModel(arrays)
    if not all(reader(model, 0, 0) for reader in columns if reader is not None):
        return None
    if not all(reader(model, start, stop) for reader, start, stop in rows):
        return None
    return model if model.complete() else None


def _same_reading(arrays) -> None:
    fast, plain = read_keep_set_model(arrays), _plain_read(arrays)
    assert (fast is None) == (plain is None)
    if fast is None or plain is None:
        return
    for name in ("demand_row", "demand", "x_y", "required"):
        mine, theirs = getattr(fast, name), getattr(plain, name)
        assert np.array_equal(mine, theirs), name
        assert np.array_equal(np.signbit(mine), np.signbit(theirs)), name  # -0.0 too
    assert fast.stays_read == plain.stays_read
    assert len(fast.caps) == len(plain.caps)
    for (ys, lo, hi), (ys2, lo2, hi2) in zip(fast.caps, plain.caps, strict=True):
        assert np.array_equal(ys, ys2) and lo == lo2 and hi == hi2


_PARAMS = [
    SolveParams(objective="planner"),
    SolveParams(objective="planner", margin=0.2, max_travel=60.0),
    SolveParams(objective="moved", margin=0.1),
    SolveParams(objective="travel", max_providers={"t0": 2}),
    SolveParams(objective="providers", allow_new_providers=True),
    SolveParams(objective="travel", single_sourcing=True),
    SolveParams(objective="travel", capacity_factor=1.2),
    SolveParams(objective="planner", small_region_rule="one_provider", margin=3.0),
]


@pytest.mark.parametrize("linking", ["nearest", "aggregated", "per_pair"])
@pytest.mark.parametrize("case", range(len(_PARAMS)))
def test_the_readers_read_built_models_as_the_block_code_did(case, linking):
    inst = synthetic_instance(n_areas=45, n_sites=6, n_treatments=3, seed=case,
                              norms=[30.0, None, 400.0])
    params = _PARAMS[case]
    if case == 1:
        params = params.model_copy(update={"force_keep": [
            SiteTreatment(site_id=inst.site_ids[0], intervention_id=inst.treatment_ids[0])],
            "force_close": [SiteTreatment(site_id=inst.site_ids[1],
                                          intervention_id=inst.treatment_ids[0])]})
    for treatments in ([0], [1], [2], [0, 1, 2]):
        _same_reading(build_arrays(inst, params, treatments, linking=linking))


@pytest.mark.parametrize("seed", range(30))
def test_the_readers_judge_tampered_rows_as_the_block_code_did(seed):
    """One entry of a demand, min_volume, link or stay row changed, added or zeroed (an
    explicit zero is stored): the same verdict and the same model read."""
    rng = np.random.default_rng(seed)
    inst = synthetic_instance(n_areas=30, n_sites=5, n_treatments=1, seed=seed, norms=[25.0])
    params = SolveParams(objective=str(rng.choice(["planner", "travel", "moved"])),
                         margin=float(rng.choice([0.0, 0.2])))
    arrays = build_arrays(inst, params, [0])
    families = [name for name in ("demand", "min_volume", "link", "stay")
                if arrays.row_families.get(name, (0, 0))[1] > arrays.row_families.get(
                    name, (0, 0))[0]]
    for _ in range(6):
        name = str(rng.choice(families))
        start, stop = arrays.row_families[name]
        row = int(rng.integers(start, stop))
        stored = arrays.A[row].indices
        col = int(rng.choice(stored)) if rng.random() < 0.6 else int(rng.integers(arrays.n_cols))
        value = float(rng.choice([0.0, 1.0, -1.0, 2.0, -arrays.A[row, col] or 5.0]))
        matrix = arrays.A.tolil()
        matrix[row, col] = value
        tampered = dataclasses.replace(arrays, A=matrix.tocsr())
        if value == 0.0:  # an explicit zero where an entry was stored
            coo = arrays.A.tocoo()
            data = coo.data.copy()
            data[(coo.row == row) & (coo.col == col)] = 0.0
            tampered = dataclasses.replace(arrays, A=sp.csr_matrix(
                (data, (coo.row, coo.col)), shape=arrays.A.shape))
        _same_reading(tampered)


def test_a_stay_block_in_another_order_is_still_read():
    """The stay reader's fast path compares the stored entries; any other storage of the same
    block (entries in another order within a row) is judged as a block, as before."""
    inst = synthetic_instance(n_areas=20, n_sites=4, n_treatments=1, seed=5, norms=[20.0])
    arrays = build_arrays(inst, SolveParams(objective="planner"), [0])
    start, stop = arrays.row_families["stay"]
    csr = arrays.A.copy()
    for r in range(start, stop):  # reverse each stay row's two entries
        lo, hi = csr.indptr[r], csr.indptr[r + 1]
        csr.indices[lo:hi] = csr.indices[lo:hi][::-1].copy()
        csr.data[lo:hi] = csr.data[lo:hi][::-1].copy()
    csr.has_sorted_indices = False
    other = dataclasses.replace(arrays, A=csr)
    assert read_keep_set_model(other) is not None
    _same_reading(other)


# --- the shared rules of a build, once per instance -----------------------------------------
def test_travel_limits_and_shortfalls_are_computed_again_for_new_inputs():
    inst = synthetic_instance(n_areas=40, n_sites=6, n_treatments=3, seed=11,
                              norms=[30.0, None, 1e5])
    for params in (SolveParams(max_travel=20.0), SolveParams(max_travel=35.0),
                   SolveParams(max_travel=20.0, remote_areas="strict"),
                   SolveParams(max_travel=20.0)):
        limit = formulation.travel_limit(inst, params)
        assert np.array_equal(limit, formulation._travel_limit(inst, params))
        limit[:] = -1.0  # a caller's change does not reach the next caller
        assert np.array_equal(formulation.travel_limit(inst, params),
                              formulation._travel_limit(inst, params))
    assert formulation.travel_limit(inst, SolveParams()) is None
    assert 2 in formulation.shortfall_treatments(inst)
    assert formulation.shortfall_treatments(inst) == formulation._shortfall_treatments(inst)
    formulation.shortfall_treatments(inst).append(1)  # a caller's change stays its own
    assert formulation.shortfall_treatments(inst) == formulation._shortfall_treatments(inst)
    changed = dataclasses.replace(inst, demand=inst.demand * 1e6)
    assert formulation.shortfall_treatments(changed) == []
    moved_sites = dataclasses.replace(inst, travel_min=inst.travel_min * 3.0)
    params = SolveParams(max_travel=20.0)
    assert np.array_equal(formulation.travel_limit(moved_sites, params),
                          formulation._travel_limit(moved_sites, params))
    extra = SolveParams(max_extra_travel=10.0)
    rule = formulation.PairRule.of(inst, extra)
    assert rule.base_travel is not None
    assert np.array_equal(rule.base_travel, inst.baseline_travel(), equal_nan=True)


def test_a_model_built_with_the_shared_rules_once_is_the_fresh_build():
    """A second build of every treatment (rules from the memo) is the first one bit for bit,
    and a build after the memo was dropped is too."""
    inst = synthetic_instance(n_areas=50, n_sites=7, n_treatments=3, seed=2,
                              norms=[30.0, None, 60.0])
    params = SolveParams(objective="planner", margin=0.1, max_travel=25.0,
                         max_extra_travel=15.0)
    first = [build_arrays(inst, params, [t]) for t in range(3)]
    again = [build_arrays(inst, params, [t]) for t in range(3)]
    inst.__dict__.pop("_formulation_memo")
    fresh = [build_arrays(inst, params, [t]) for t in range(3)]
    for a, b, c in zip(first, again, fresh, strict=True):
        for other in (b, c):
            assert (a.A != other.A).nnz == 0
            for name in ("c", "row_lower", "row_upper", "col_lower", "col_upper", "x_area",
                         "x_site", "moves_c"):
                assert np.array_equal(getattr(a, name), getattr(other, name)), name
    assert KEEP_SET_TOL > 0


# --- the Lagrangian bound of every keep set ---------------------------------------------------
def _plain_lagrangian(view: _Prices, prices: np.ndarray) -> np.ndarray:
    """The code before the change (take_along_axis, a running count of the open option)."""
    from herschik.optimiser.feasibility import subset_sums, weight_sums

    d = view.opt.demand
    w = np.concatenate([view.opt.cost - prices[None, :], view.opt.open_cost[:, None]], axis=1)
    order = np.argsort(w, axis=1, kind="stable")
    ws = np.take_along_axis(w, order, axis=1)
    base = d @ ws[:, 0]
    with np.errstate(invalid="ignore"):
        step = np.diff(ws, axis=1)
    bits = np.where(order < view.k, np.left_shift(1, np.minimum(order, 62)), 0)
    prefix = np.cumsum(bits, axis=1)[:, :-1]
    counted = np.isfinite(step) & (np.cumsum(order == view.k, axis=1)[:, :-1] == 0)
    weight = (d[:, None] * np.where(counted, step, 0.0))[counted]
    missed = subset_sums(np.bincount(prefix[counted], weights=weight, minlength=view.n))
    return base + missed[::-1] + weight_sums(view.sets.required * prices) + view.key_cost


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # 0 patients x no option
@pytest.mark.parametrize("seed", range(40))
def test_the_lagrangian_is_the_plain_codes_floats(seed):
    rng = np.random.default_rng(seed)
    n_units, k = int(rng.integers(1, 150)), int(rng.integers(0, 12))
    cost = np.round(rng.uniform(-50, 90, size=(n_units, k)), int(rng.integers(0, 2)))
    cost[rng.random((n_units, k)) < rng.uniform(0, 0.6)] = np.inf
    open_cost = np.where(rng.random(n_units) < 0.3, rng.uniform(0, 90, n_units), np.inf)
    open_cost[rng.random(n_units) < 0.1] = cost[:, 0][rng.random(n_units) < 0.1].min(
        initial=5.0) if k else 5.0  # ties with a site
    demand = rng.choice([0.0, 0.5, 1.0, 3.0, 12.25, 1e-9], size=n_units)
    options = _Options(demand, cost, np.zeros((n_units, k), np.int64),
                       np.full((n_units, k), -1, np.int64), open_cost,
                       np.full(n_units, -1, np.int64), np.full(n_units, -1, np.int64))
    sets = _Sets(rng.choice([0.0, 5.0, 20.0], size=k), k)
    view = _Prices(sets, options, rng.normal(size=1 << k))  # type: ignore[arg-type]
    for prices in (np.zeros(k), rng.uniform(0, 40, k), np.round(rng.uniform(0, 40, k))):
        fast, plain = view.lagrangian(prices), _plain_lagrangian(view, prices)
        assert np.array_equal(fast, plain, equal_nan=True)
        assert np.array_equal(np.signbit(fast), np.signbit(plain))


# --- the coordinate ascent's early end at a fixed point (branch regional, late) ---------------
def _plain_ascend(view: _Prices, members: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Every round to the end (the code before the early end)."""
    from herschik.optimiser.keepset_search import ASCENT_ROUNDS

    prices = prices.copy()
    if members.shape[0] == 0:
        return prices
    cost = view.cost_f[:, members]
    reduced = cost - prices[members][None, :]
    gain = np.empty(cost.shape[0])
    may_be_nan = ~np.isfinite(cost).all(axis=0)
    with np.errstate(invalid="ignore"):
        for _ in range(ASCENT_ROUNDS):
            for p, j in enumerate(members):
                column = cost[:, p]
                reduced[:, p] = np.inf
                np.subtract(column, np.minimum(reduced.min(axis=1), view.opt.open_cost),
                            out=gain)
                if may_be_nan[p]:
                    gain[np.isnan(gain)] = np.inf
                prices[j] = view._price_to_fill(gain, float(view.sets.required[j]),
                                                float(prices[j]))
                np.subtract(column, prices[j], out=reduced[:, p])
    return prices


def _random_view(rng: np.random.Generator, n_units: int, k: int) -> _Prices:
    cost = np.round(rng.uniform(-50, 90, size=(n_units, k)), int(rng.integers(0, 2)))
    cost[rng.random((n_units, k)) < rng.uniform(0, 0.6)] = np.inf
    cost[rng.random((n_units, k)) < 0.05] = -0.0
    open_cost = np.where(rng.random(n_units) < 0.3, rng.uniform(0, 90, n_units), np.inf)
    demand = rng.choice([0.0, 0.5, 1.0, 3.0, 12.25, 1e-9, 1e6], size=n_units)
    options = _Options(demand, cost, np.zeros((n_units, k), np.int64),
                       np.full((n_units, k), -1, np.int64), open_cost,
                       np.full(n_units, -1, np.int64), np.full(n_units, -1, np.int64))
    required = rng.choice([0.0, 5.0, 20.0, 1e-12, 1e7, float(demand.sum())], size=k)
    return _Prices(_Sets(required, k), options, np.zeros(1 << k))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(60))
def test_the_ascent_ending_at_a_fixed_point_gives_every_rounds_prices(seed):
    """The same floats (sign of zero included) as all ASCENT_ROUNDS rounds, from zero, random,
    -0.0 and already converged prices, on tables with ties, infinities, -0.0 costs, zero and
    huge demands and requirements above the total."""
    rng = np.random.default_rng(seed)
    n_units, k = int(rng.integers(1, 200)), int(rng.integers(1, 12))
    view = _random_view(rng, n_units, k)
    mask = int(rng.integers(0, 1 << k))
    members = np.nonzero((mask >> np.arange(k)) & 1)[0]
    starts = [np.zeros(k), np.full(k, -0.0), rng.uniform(0, 60, k), np.round(rng.uniform(0, 60, k))]
    starts.append(_plain_ascend(view, members, starts[2]))  # a fixed point, or near one
    for start in starts:
        fast, plain = view.ascend(mask, start), _plain_ascend(view, members, start)
        assert np.array_equal(fast, plain, equal_nan=True)
        assert np.array_equal(np.signbit(fast), np.signbit(plain))


def test_the_ascent_stops_after_one_quiet_round_at_a_fixed_point():
    """From prices the ascent cannot move, one step per member, not every round: the early
    end is taken (and the answer is the same)."""
    rng = np.random.default_rng(7)
    view = _random_view(rng, 120, 6)
    mask = (1 << 6) - 1
    members = np.arange(6)
    fixed = _plain_ascend(view, members, np.zeros(6))
    for _ in range(5):  # iterate to a fixed point of whole rounds
        fixed = _plain_ascend(view, members, fixed)
    assert np.array_equal(_plain_ascend(view, members, fixed), fixed)
    calls = []
    step = view._price_to_fill
    view._price_to_fill = lambda *a: calls.append(1) or step(*a)  # type: ignore[method-assign]
    assert np.array_equal(view.ascend(mask, fixed), fixed)
    assert len(calls) == 6


# --- each area's nearest flow column ----------------------------------------------------------
def _plain_nearest(area: np.ndarray, treat: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    order = np.lexsort((np.arange(area.shape[0]), minutes, area, treat))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = (area[order][1:] != area[order][:-1]) | (treat[order][1:] != treat[order][:-1])
    return np.sort(order[first])


@pytest.mark.parametrize("seed", range(40))
def test_the_nearest_flow_columns_are_the_sorts(seed):
    """Grouped as built (treatment, area, site order), or shuffled (the sort decides), with
    tied travel times and NaN."""
    from herschik.optimiser.rows.volume import nearest_flow_columns

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    treat = np.sort(rng.integers(0, 3, n))
    area = np.concatenate([np.sort(rng.integers(0, 40, int((treat == t).sum())))
                           for t in range(3)])
    minutes = np.round(rng.uniform(0, 60, n), int(rng.integers(0, 2)))
    if seed % 4 == 1:
        minutes[rng.random(n) < 0.1] = np.nan
    if seed % 4 == 2:
        shuffle = rng.permutation(n)
        area, treat, minutes = area[shuffle], treat[shuffle], minutes[shuffle]
    got = nearest_flow_columns(area, treat, minutes)
    assert np.array_equal(got, _plain_nearest(area, treat, minutes))
    assert got.dtype == np.int64 or got.dtype == np.intp
