"""The keep-set searches' faster array code (issue 23, branch solve-speed) against the plain
code it replaced: the same floats bit for bit, on random tables with infinities and ties and
on built models (so every bound, and with it every search path and plan, is unchanged), and
the shortcuts around it (a transportation LP whose units have one option each answered
without HiGHS, the planner's unnecessary moves summed over moves_c's non-zeros) giving the
same answers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.sparse as sp
from herschik.optimiser import keepset_search
from herschik.optimiser.backends import solve_lp_highs
from herschik.optimiser.feasibility import (
    _all_subsets_hold,
    _over_subsets,
    read_keep_set_model,
    subset_sums,
    treatment_keep_sets,
    weight_sums,
)
from herschik.optimiser.formulation import build_arrays
from herschik.optimiser.keepset_search import _Options, _options, _Prices
from herschik.optimiser.params import SolveParams
from herschik.optimiser.synthetic import synthetic_instance


# --- the plain versions (the code before the change), as references -----------------------
def _plain_over_subsets(values: np.ndarray, combine: np.ufunc) -> np.ndarray:
    out = values.copy()
    half = 1
    while half < out.shape[0]:
        view = out.reshape(-1, 2, half)
        combine(view[:, 1, :], view[:, 0, :], out=view[:, 1, :])
        half *= 2
    return out


def _plain_weight_sums(weights: np.ndarray) -> np.ndarray:
    out = np.zeros(1)
    for w in weights:
        out = np.concatenate([out, out + w])
    return out


def _plain_cheapest_other(prices_view: _Prices, members: np.ndarray,
                          prices: np.ndarray) -> np.ndarray:
    opt = prices_view.opt
    if members.shape[0] == 0:
        return opt.open_cost.copy()
    inner = np.min(opt.cost[:, members] - prices[members][None, :], axis=1)
    return np.minimum(inner, opt.open_cost)


def _plain_ascend(view: _Prices, mask: int, prices: np.ndarray) -> np.ndarray:
    prices = prices.copy()
    members = keepset_search._members(mask, view.k)
    for _ in range(keepset_search.ASCENT_ROUNDS):
        for j in members:
            rest = members[members != j]
            with np.errstate(invalid="ignore"):
                gain = view.opt.cost[:, j] - _plain_cheapest_other(view, rest, prices)
            prices[j] = view._price_to_fill(np.where(np.isnan(gain), np.inf, gain),
                                            float(view.sets.required[j]))
    return prices


def _plain_extend(view: _Prices, mask: int, prices: np.ndarray) -> np.ndarray:
    out = prices.copy()
    cheapest = _plain_cheapest_other(view, keepset_search._members(mask, view.k), prices)
    for j in range(view.k):
        if not (mask >> j) & 1:
            with np.errstate(invalid="ignore"):
                gain = view.opt.cost[:, j] - cheapest
            out[j] = view._price_to_fill(np.where(np.isnan(gain), np.inf, gain),
                                         float(view.sets.required[j]))
    return out


def _plain_options(arrays, sets, c) -> _Options | None:
    units = keepset_search._units(arrays, sets)
    if units is None:
        return None
    unit_area, demand, unit_stay = units
    n_units, k = demand.shape[0], sets.n_bits
    by_area = np.argsort(sets.x_area, kind="stable")
    first = np.searchsorted(sets.x_area[by_area], np.arange(sets.demand.shape[0] + 1))
    counts = np.diff(first)[unit_area]
    unit = np.repeat(np.arange(n_units), counts)
    entry = by_area[np.concatenate([np.arange(first[a], first[a + 1]) for a in unit_area])
                    if n_units else np.zeros(0, dtype=np.int64)]
    xcol = sets.x_columns[entry]
    stays_here = np.zeros(unit.shape[0], dtype=bool)
    if arrays.stay_x is not None and np.any(unit_stay >= 0):
        own_x = np.full(n_units, -1, dtype=np.int64)
        has = unit_stay >= 0
        own_x[has] = arrays.stay_x[unit_stay[has] - arrays.stay_start]
        stays_here = xcol == own_x[unit]
    stay_col = np.where(stays_here, unit_stay[unit], -1)
    cost = c[xcol] + np.where(stays_here, c[np.maximum(stay_col, 0)], 0.0)
    bit = sets.x_bit[entry]
    out = _Options(demand, np.full((n_units, k), np.inf), np.full((n_units, k), -1, np.int64),
                   np.full((n_units, k), -1, np.int64), np.full(n_units, np.inf),
                   np.full(n_units, -1, np.int64), np.full(n_units, -1, np.int64))
    always = bit == -1
    out.open_entries = (unit[always], xcol[always], stay_col[always])
    real = bit >= 0
    out.cost[unit[real], bit[real]] = cost[real]
    out.column[unit[real], bit[real]] = xcol[real]
    out.stay[unit[real], bit[real]] = stay_col[real]
    for e in np.nonzero(bit == -1)[0]:
        u = unit[e]
        if cost[e] < out.open_cost[u]:
            out.open_cost[u], out.open_column[u], out.open_stay[u] = cost[e], xcol[e], stay_col[e]
    return out


# --- zeta transforms and weight sums --------------------------------------------------------
@pytest.mark.parametrize("k", [0, 1, 3, 11, 12, 13, 15])
def test_the_zeta_transform_gives_the_plain_transforms_floats(k):
    rng = np.random.default_rng(k)
    values = rng.normal(size=1 << k) * 10.0 ** rng.integers(-6, 6, size=1 << k)
    values[rng.random(1 << k) < 0.2] = 0.0
    values[rng.random(1 << k) < 0.1] = 1.0 / 3.0  # ties
    assert np.array_equal(_over_subsets(values, np.add), _plain_over_subsets(values, np.add))
    good = rng.random(1 << k) < 0.9
    assert np.array_equal(_all_subsets_hold(good), _plain_over_subsets(good, np.logical_and))


def test_subset_sums_are_the_sums_over_every_subset():
    rng = np.random.default_rng(1)
    k = 12  # the column-by-column steps run from 4096 sets on
    values = rng.integers(0, 5, size=1 << k).astype(float)
    sums = subset_sums(values)
    for mask in rng.integers(0, 1 << k, size=40):
        subsets = [n for n in range(1 << k) if n & mask == n]
        assert sums[mask] == values[subsets].sum()


@pytest.mark.parametrize("k", [0, 1, 5, 16])
def test_weight_sums_give_the_doubling_concatenations_floats(k):
    rng = np.random.default_rng(k)
    weights = rng.normal(size=k) * 10.0 ** rng.integers(-8, 8, size=k)
    if k > 2:
        weights[1] = -0.0
        weights[2] = weights[0]
    assert np.array_equal(weight_sums(weights), _plain_weight_sums(weights))
    assert np.array_equal(np.signbit(weight_sums(weights)),
                          np.signbit(_plain_weight_sums(weights)))


# --- coordinate ascent and extension --------------------------------------------------------
@dataclasses.dataclass
class _Sets:
    required: np.ndarray
    n_bits: int


def _random_view(seed: int) -> _Prices:
    rng = np.random.default_rng(seed)
    n_units, k = int(rng.integers(1, 120)), int(rng.integers(1, 11))
    cost = np.round(rng.uniform(0, 90, size=(n_units, k)), int(rng.integers(0, 2)))  # ties
    cost[rng.random((n_units, k)) < rng.uniform(0, 0.6)] = np.inf
    open_cost = np.where(rng.random(n_units) < 0.3, rng.uniform(0, 90, n_units), np.inf)
    demand = rng.choice([0.0, 0.5, 1.0, 3.0, 12.25], size=n_units)
    required = rng.choice([0.0, 5.0, 20.0, 1e9], size=k)  # a norm no units can bring too
    options = _Options(demand, cost, np.zeros((n_units, k), np.int64),
                       np.full((n_units, k), -1, np.int64), open_cost,
                       np.full(n_units, -1, np.int64), np.full(n_units, -1, np.int64))
    sets = _Sets(required, k)
    return _Prices(sets, options, np.zeros(1 << k))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(40))
def test_ascent_and_extension_give_the_plain_codes_prices(seed):
    view = _random_view(seed)
    rng = np.random.default_rng(1000 + seed)
    for _ in range(4):
        mask = int(rng.integers(0, 1 << view.k))
        prices = np.where(rng.random(view.k) < 0.5, rng.uniform(0, 30, view.k), 0.0)
        ascended = view.ascend(mask, prices)
        assert np.array_equal(ascended, _plain_ascend(view, mask, prices))
        assert np.array_equal(view.extend(mask, ascended), _plain_extend(view, mask, ascended))


# --- option tables of built models ----------------------------------------------------------
@pytest.mark.parametrize("objective", ["planner", "travel", "moved"])
@pytest.mark.parametrize("seed", range(6))
def test_option_tables_are_the_plain_constructions(seed, objective):
    """With stay columns (planner, moved) and without; sites without a keep decision
    (no norm) and tied costs included."""
    rng = np.random.default_rng(seed)
    inst = synthetic_instance(n_areas=int(rng.integers(30, 90)), n_sites=int(rng.integers(4, 9)),
                              n_treatments=2, seed=seed,
                              norms=[float(rng.choice([10.0, 40.0])), None])
    params = SolveParams(objective=objective, margin=float(rng.choice([0.0, 0.2])),
                         allow_new_providers=bool(seed % 2))
    for t in range(len(inst.treatment_ids)):
        arrays = build_arrays(inst, params, [t])
        sets = treatment_keep_sets(arrays, t)
        if sets is None:
            continue
        costs = [arrays.c, np.round(arrays.c, 0)]  # rounded: ties among the open sites
        if arrays.moves_c is not None:
            costs.append(arrays.moves_c)
        for c in costs:
            fast, plain = _options(arrays, sets, c), _plain_options(arrays, sets, c)
            assert (fast is None) == (plain is None)
            if fast is None or plain is None:
                continue
            for field in ("demand", "cost", "column", "stay", "open_cost", "open_column",
                          "open_stay"):
                assert np.array_equal(getattr(fast, field), getattr(plain, field)), field
            for mine, theirs in zip(fast.open_entries, plain.open_entries, strict=True):
                assert np.array_equal(mine, theirs)


# --- the pair-link reader -----------------------------------------------------------------
def test_the_pair_link_reader_reads_only_flow_le_demand_times_keep():
    inst = synthetic_instance(n_areas=40, n_sites=5, n_treatments=1, seed=3, norms=[30.0])
    arrays = build_arrays(inst, SolveParams(objective="travel"), [0], linking="per_pair")
    assert read_keep_set_model(arrays) is not None
    start, stop = arrays.row_families["link_pair"]
    assert stop > start

    def tampered(change) -> object:
        other = dataclasses.replace(arrays)
        matrix = other.A.tolil()
        change(matrix, start)
        other.A = matrix.tocsr()
        return read_keep_set_model(other)

    x_col = int(arrays.A[start].indices.min())
    y_col = int(arrays.A[start].indices.max())
    demand = -float(arrays.A[start, y_col])
    # a flow coefficient other than 1, a linking bound below the demand, a third entry
    assert tampered(lambda m, r: m.__setitem__((r, x_col), 2.0)) is None
    assert tampered(lambda m, r: m.__setitem__((r, y_col), -0.5 * demand)) is None
    other_x = next(c for c in range(arrays.n_x) if c != x_col)
    assert tampered(lambda m, r: m.__setitem__((r, other_x), 1.0)) is None
    # a larger linking bound only closes the site, as before
    assert tampered(lambda m, r: m.__setitem__((r, y_col), -2.0 * demand)) is not None


# --- the planner's unnecessary moves of a plan -----------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_unnecessary_moves_of_a_plan_are_the_full_dot(seed):
    rng = np.random.default_rng(seed)
    inst = synthetic_instance(n_areas=80, n_sites=7, n_treatments=2, seed=seed)
    arrays = build_arrays(inst, SolveParams(margin=0.2), [0, 1])
    assert arrays.moves_c is not None and np.count_nonzero(arrays.moves_c) < arrays.n_cols
    values = rng.uniform(0, 5, arrays.n_cols) * (rng.random(arrays.n_cols) < 0.7)
    expected = float(arrays.moves_c @ values + arrays.moves_offset)
    assert arrays.unnecessary_moves_of(values) == pytest.approx(expected, rel=1e-12, abs=1e-9)


# --- transportation LPs whose units have one option each -------------------------------------
def _lp(rng, n_units: int, n_sites: int, options: int = 1, side: float | None = None):
    """Unit rows (one equality each), site rows (volume >= required), an optional side row."""
    unit = np.repeat(np.arange(n_units), options)
    site = rng.integers(0, n_sites, size=unit.shape[0])
    n_cols = unit.shape[0]
    demand = rng.choice([0.5, 1.0, 2.75, 10.0], size=n_units)
    rows = [unit, n_units + site]
    cols = [np.arange(n_cols), np.arange(n_cols)]
    vals = [np.ones(n_cols), np.ones(n_cols)]
    volume = np.bincount(site, weights=demand[unit] / options, minlength=n_sites)
    lower = [demand, np.floor(volume * 0.5)]
    upper = [demand, np.full(n_sites, np.inf)]
    cost = np.round(rng.uniform(-3, 60, n_cols), 3)
    if side is not None:
        rows.append(np.full(n_cols, n_units + n_sites))
        cols.append(np.arange(n_cols))
        vals.append(np.ones(n_cols))
        lower.append(np.array([-np.inf]))
        upper.append(np.array([side]))
    n_rows = n_units + n_sites + (side is not None)
    matrix = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(n_rows, n_cols))
    return cost, matrix, np.concatenate(lower), np.concatenate(upper)


def _counting_highs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = keepset_search.solve_lp_highs

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(keepset_search, "solve_lp_highs", counting)
    return calls


@pytest.mark.parametrize("seed", range(20))
def test_a_single_option_lp_is_highs_answer_without_highs(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n_units, n_sites = int(rng.integers(1, 60)), int(rng.integers(1, 6))
    cost, matrix, lower, upper = _lp(rng, n_units, n_sites)
    lower[n_units:] = np.minimum(lower[n_units:], -1.0)  # every site row strictly slack
    reference = solve_lp_highs(cost, matrix, lower, upper, presolve=False)
    calls = _counting_highs(monkeypatch)
    answer = keepset_search.transport_lp(cost, matrix, lower, upper, n_units)
    assert calls == [] and answer is not None and reference is not None
    assert answer[0] == pytest.approx(reference[0], rel=1e-12, abs=1e-9)
    assert np.allclose(answer[1], reference[1], rtol=0, atol=1e-9)
    assert np.array_equal(answer[2][n_units:], np.zeros(n_sites))
    assert np.allclose(answer[2][n_units:], reference[2][n_units:], atol=1e-9)
    assert answer[0] == math.fsum(cost * answer[1])


@pytest.mark.parametrize("case", ["tight site", "violated site", "two tied options",
                                  "tight side", "violated side", "slack side", "no option"])
def test_other_lps_go_to_highs(case, monkeypatch):
    """A tight row (the duals are not unique), an infeasible one, a tie: HiGHS decides."""
    rng = np.random.default_rng(7)
    n_units, n_sites = 30, 3
    options = 2 if case == "two tied options" else 1
    side = None
    if "side" in case:
        side = 1e9
    cost, matrix, lower, upper = _lp(rng, n_units, n_sites, options, side)
    if case == "two tied options":
        cost[1::2] = cost[0::2]  # unit 0's two options cost the same
    lower[n_units:n_units + n_sites] = -1.0
    volume = matrix[n_units:n_units + n_sites] @ np.repeat(lower[:n_units], options) / options
    total = float(lower[:n_units].sum())
    if case == "tight site":
        lower[n_units] = volume[0]
    elif case == "violated site":
        lower[n_units] = volume[0] + 1.0
    elif case == "tight side":
        upper[-1] = total
    elif case == "violated side":
        upper[-1] = total - 1.0
    elif case == "no option":
        matrix = sp.csc_matrix(matrix[:, 1:])
        cost = cost[1:]
    calls = _counting_highs(monkeypatch)
    answer = keepset_search.transport_lp(cost, matrix, lower, upper, n_units)
    reference = solve_lp_highs(cost, matrix, lower, upper, presolve=False)
    assert calls == ([] if case == "slack side" else [1])
    if case in ("violated site", "violated side", "no option"):
        assert answer is None and reference is None
    else:
        assert answer is not None and reference is not None
        assert answer[0] == pytest.approx(reference[0], rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("seed", range(30))
def test_a_strictly_cheapest_option_per_unit_is_highs_answer_without_highs(seed, monkeypatch):
    """Every unit with patients and a strictly cheapest option, every other row strictly
    slack there: the unique optimum and its unique duals, without HiGHS."""
    rng = np.random.default_rng(100 + seed)
    n_units, n_sites = int(rng.integers(1, 60)), int(rng.integers(1, 6))
    options = int(rng.integers(1, 4))
    cost, matrix, lower, upper = _lp(rng, n_units, n_sites, options,
                                     1e9 if seed % 3 == 0 else None)
    cost += np.arange(cost.shape[0]) * 1e-6  # no ties
    lower[n_units:n_units + n_sites] = np.minimum(lower[n_units:n_units + n_sites], -1.0)
    reference = solve_lp_highs(cost, matrix, lower, upper, presolve=False)
    calls = _counting_highs(monkeypatch)
    answer = keepset_search.transport_lp(cost, matrix, lower, upper, n_units)
    assert calls == [] and answer is not None and reference is not None
    assert answer[0] == pytest.approx(reference[0], rel=1e-12, abs=1e-9)
    assert np.allclose(answer[1], reference[1], rtol=0, atol=1e-9)
    assert np.allclose(answer[2], reference[2], rtol=0, atol=1e-9)
    assert answer[0] == math.fsum(cost * answer[1])


def test_a_unit_with_options_and_no_patients_goes_to_highs(monkeypatch):
    """Its flow is 0 at any option (degenerate): its row's dual is not unique."""
    rng = np.random.default_rng(3)
    cost, matrix, lower, upper = _lp(rng, 10, 2, 2)
    cost += np.arange(cost.shape[0]) * 1e-6
    lower[10:12] = -1.0
    lower[0] = upper[0] = 0.0
    calls = _counting_highs(monkeypatch)
    assert keepset_search.transport_lp(cost, matrix, lower, upper, 10) is not None
    assert calls == [1]


def test_options_a_tie_break_apart_go_to_highs(monkeypatch):
    """Costs ~1e-9 apart (`moved`'s travel tie-break) are below HiGHS' dual feasibility
    tolerance: HiGHS may stop at either option, so it decides, as before."""
    rng = np.random.default_rng(4)
    cost, matrix, lower, upper = _lp(rng, 12, 2, 2)
    cost[1::2] = cost[0::2] + 1e-9
    lower[12:14] = -1.0
    calls = _counting_highs(monkeypatch)
    assert keepset_search.transport_lp(cost, matrix, lower, upper, 12) is not None
    assert calls == [1]
