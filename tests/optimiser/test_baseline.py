"""Baseline flow reconstruction (minimum patient-minutes transportation LP)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from herschik.optimiser.baseline import reconstruct_baseline_flows
from scipy.optimize import linprog


def _random(seed: int, n_a: int = 120, n_s: int = 12, n_t: int = 3):
    rng = np.random.default_rng(seed)
    axy = rng.uniform(0, 100_000, (n_a, 2))
    sxy = rng.uniform(0, 100_000, (n_s, 2))
    travel = 5 + np.linalg.norm(axy[:, None] - sxy[None], axis=2) / 1000 * 1.3 / 70 * 60
    demand = np.round(rng.lognormal(0, 0.7, (n_a, n_t)), 2) * (rng.random((n_a, n_t)) < 0.8)
    volume = rng.uniform(0.2, 1.0, (n_s, n_t)) * (rng.random((n_s, n_t)) < 0.7)
    volume[0] = np.maximum(volume[0], 0.1)
    volume = volume / volume.sum(axis=0) * demand.sum(axis=0)
    return demand, travel, volume


def _full_lp_cost(d, travel, v):
    """The full (no column generation) transportation LP, for comparison."""
    areas, sites = np.nonzero(d > 0)[0], np.nonzero(v > 0)[0]
    ai, si = np.meshgrid(np.arange(areas.size), np.arange(sites.size), indexing="ij")
    ai, si = ai.ravel(), si.ravel()
    n = ai.size
    a_eq = sp.csr_matrix((np.ones(2 * n), (np.concatenate([ai, areas.size + si]),
                                           np.concatenate([np.arange(n)] * 2))))
    res = linprog(travel[areas[ai], sites[si]], A_eq=a_eq,
                  b_eq=np.concatenate([d[areas], v[sites]]), method="highs")
    return res.fun


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reproduces_volumes_and_demand_at_minimum_cost(seed: int) -> None:
    demand, travel, volume = _random(seed)
    flows = reconstruct_baseline_flows(demand, travel, volume)
    assert flows.shape == (demand.shape[0], travel.shape[1], demand.shape[1])
    assert np.allclose(flows.sum(axis=1), demand, atol=1e-6)
    assert np.allclose(flows.sum(axis=0), volume, atol=1e-6)
    assert np.all(flows >= 0)
    assert np.all(flows[:, volume == 0] == 0)
    for t in range(demand.shape[1]):
        cost = float((flows[:, :, t] * travel).sum())
        assert cost == pytest.approx(_full_lp_cost(demand[:, t], travel, volume[:, t]), rel=1e-7)


def test_volumes_are_scaled_to_the_demand_total() -> None:
    demand, travel, volume = _random(3)
    flows = reconstruct_baseline_flows(demand, travel, volume * 1.1)
    assert np.allclose(flows.sum(axis=0), volume, atol=1e-6)


def test_unreachable_pairs_carry_no_flow() -> None:
    demand, travel, volume = _random(4)
    travel = travel.copy()
    travel[:10, 0] = np.inf
    flows = reconstruct_baseline_flows(demand, travel, volume)
    assert np.all(flows[:10, 0, :] == 0)


def test_impossible_volumes_raise_naming_the_treatment() -> None:
    demand = np.array([[1.0, 1.0], [1.0, 1.0]])
    travel = np.array([[5.0, np.inf], [6.0, np.inf]])  # site 1 unreachable
    volume = np.array([[1.0, 2.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="pancreas"):
        reconstruct_baseline_flows(demand, travel, volume, treatment_ids=["pancreas", "ok"])
    flows = reconstruct_baseline_flows(demand[:, 1:], travel, volume[:, 1:])
    assert flows[:, 0, 0].sum() == pytest.approx(2.0)


def test_deterministic() -> None:
    demand, travel, volume = _random(5)
    a = reconstruct_baseline_flows(demand, travel, volume)
    b = reconstruct_baseline_flows(demand, travel, volume)
    assert np.array_equal(a, b)
