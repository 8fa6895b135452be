"""optimiser/pair_lp.py: norm_keepsets.py's node LP. Each node now starts from its parent's
basis (grown by the columns priced in since), and a node LP infeasible over its pairs first
takes the few pairs that usually repair it instead of every allowed pair. Both only change
where the dual simplex starts and which columns the LP holds, never its optimum: checked
against an independent LP over every pair (scipy's linprog) on random medium models with
ties on a grid, weights over six decades, travel limits and random fixings; the whole
search against brute force and HiGHS / CBC stays in test_norm_keepsets.py."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from herschik.optimiser.formulation import build_arrays
from herschik.optimiser.lagrangian import LagrangianModel
from herschik.optimiser.norm_keepsets import _read_model
from herschik.optimiser.pair_lp import PairLP
from herschik.optimiser.params import SolveParams
from scipy.optimize import linprog

from tests.optimiser.test_norm_keepsets import _instance


def _full_lp(m: LagrangianModel, lower: np.ndarray, upper: np.ndarray) -> float | None:
    """The node LP over every pair, built independently (scipy's HiGHS via linprog); None
    when infeasible."""
    n, k = m.cost.shape
    area, site = np.nonzero(np.isfinite(m.cost))
    opened = np.nonzero(np.isfinite(m.open_cost))[0]
    p, o = area.shape[0], opened.shape[0]
    # columns: y (k), open flows (o), pairs (p)
    cost = np.concatenate([m.key_cost.astype(float), m.open_cost[opened], m.cost[area, site]])
    demand = sp.csr_matrix((np.ones(o + p), (np.concatenate([opened, area]),
                                             k + np.arange(o + p))), shape=(n, k + o + p))
    # norms: R_j y_j - Σ_i x_ij <= 0; links: x_ij - d_i y_j <= 0; cap: lo <= Σ y <= hi
    norms = sp.csr_matrix((np.concatenate([m.required.astype(float), -np.ones(p)]),
                           (np.concatenate([np.arange(k), site]),
                            np.concatenate([np.arange(k), k + o + np.arange(p)]))),
                          shape=(k, k + o + p))
    links = sp.csr_matrix((np.concatenate([np.ones(p), -m.demand[area]]),
                           (np.concatenate([np.arange(p), np.arange(p)]),
                            np.concatenate([k + o + np.arange(p), site]))),
                          shape=(p, k + o + p))
    cap = sp.csr_matrix((np.ones(k), (np.zeros(k, dtype=int), np.arange(k))),
                        shape=(1, k + o + p))
    a_ub = sp.vstack([norms, links, cap, -cap]).tocsr()
    b_ub = np.concatenate([np.zeros(k + p), [float(m.hi), -float(m.lo)]])
    bounds = [(lo, hi) for lo, hi in zip(lower, upper)] + [(0, None)] * (o + p)
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=demand, b_eq=m.demand, bounds=bounds,
                  method="highs")
    return float(res.fun) if res.status == 0 else None


def _model(seed: int) -> tuple[LagrangianModel, np.random.Generator]:
    rng = np.random.default_rng(700 + seed)
    inst = _instance(int(rng.integers(50, 90)), int(rng.integers(22, 28)), seed,
                     kept=float(rng.uniform(3.0, 7.0)), grid=seed % 3 == 0,
                     weight_range=(1e-3, 1e3) if seed % 4 == 1 else (1.0, 21.0),
                     scale=10.0 if seed % 5 == 2 else 1.0)
    finite = inst.travel_min[np.isfinite(inst.travel_min)]
    params = SolveParams(objective="travel", allow_new_providers=True,
                         max_travel=float(np.quantile(finite, 0.6)) if seed % 2 else None)
    read = _read_model(build_arrays(inst, params, [0]), min_keep=21)
    assert read is not None and read[1] is None
    return read[0], rng


def _objective(lp: PairLP) -> float:
    return float(lp.h.getInfo().objective_function_value)


@pytest.mark.parametrize("seed", range(12))
def test_node_lps_from_saved_bases_match_the_full_lp(seed: int) -> None:
    """A dive down random fixings, then every node again from its parent's saved basis
    (grown by the pairs priced in since, in random order): each optimum equals the LP over
    every pair, and infeasible nodes are infeasible in both."""
    import highspy

    model, rng = _model(seed)
    k = model.k
    lp = PairLP(model, highspy, repair=True)
    lower, upper = model.must.astype(float), np.ones(k)
    nodes, saved = [], []
    for _ in range(6):
        j = int(rng.integers(0, k))
        lower, upper = lower.copy(), upper.copy()
        (upper if rng.random() < 0.6 else lower)[j] = float(rng.random() >= 0.6)
        upper = np.maximum(upper, lower)
        nodes.append((lower, upper))
        solved = lp.solve(lower, upper)
        expected = _full_lp(model, lower, upper)
        assert (solved is None) == (expected is None)
        if solved is not None:
            assert _objective(lp) == pytest.approx(expected, rel=1e-7, abs=1e-6)
        saved.append(lp.basis())
    for i in rng.permutation(len(nodes)):
        lower, upper = nodes[i]
        lp.restore(saved[max(i - 1, 0)])
        solved = lp.solve(lower, upper)
        expected = _full_lp(model, lower, upper)
        assert (solved is None) == (expected is None)
        if solved is not None:
            assert _objective(lp) == pytest.approx(expected, rel=1e-7, abs=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_an_infeasible_node_takes_few_pairs(seed: int) -> None:
    """Closing every area's nearest sites leaves the LP infeasible over its first pairs:
    the repair makes it feasible with the optimum of the LP over every pair, without
    pricing in every allowed pair (national kidney_local: 12,000 -> 124,000 pairs, every
    later node 4x slower); a node without any plan stays infeasible."""
    import highspy

    model, rng = _model(seed)
    k = model.k
    lp = PairLP(model, highspy, repair=True)
    first = lp.active.copy()
    closed = first.sum(axis=0) >= np.quantile(first.sum(axis=0), 0.5)
    lower, upper = np.zeros(k), (~closed).astype(float)
    no_first = ((first & ~closed[None, :]).sum(axis=1) == 0) & ~np.isfinite(model.open_cost)
    assert no_first.any()  # areas whose first pairs are all closed: infeasible over them
    expected = _full_lp(model, lower, upper)
    solved = lp.solve(lower, upper)
    assert (solved is None) == (expected is None)
    if solved is not None:
        assert _objective(lp) == pytest.approx(expected, rel=1e-7, abs=1e-6)
        allowed = np.isfinite(model.cost) & (upper[None, :] > 0.5)
        assert lp.active[allowed].sum() < allowed.sum()
    # forcing more sites open than the patients can fill: no plan
    total = float(model.demand.sum())
    order = np.argsort(model.required)[::-1]
    many = order[: int(np.searchsorted(np.cumsum(model.required[order]), total)) + 1]
    if model.required[many].sum() > total and many.shape[0] <= model.hi:
        lower = np.zeros(k)
        lower[many] = 1.0
        assert lp.solve(lower, np.ones(k)) is None
        assert _full_lp(model, lower, np.ones(k)) is None
