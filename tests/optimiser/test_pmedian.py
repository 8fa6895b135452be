"""The p-median class (one treatment, a tiny norm, ``max_providers``, new providers allowed,
objective ``travel``) with more candidate sites than the keep-set search enumerates: solved
with the strong per-pair linking rows (optimiser/algorithms.py), checked against an exhaustive
enumeration of the p-site sets (each area to its nearest open site) and against the default
linking."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from herschik.optimiser.algorithms import Algorithms, linking_for
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.verify import verify

from tests.support.instances import pmedian_instance


def _pmedian(n_areas: int, n_sites: int, seed: int, norm: float = 1e-3) -> Instance:
    rng = np.random.default_rng(seed)
    areas = rng.uniform(0, 100, size=(n_areas, 2))
    sites = rng.uniform(0, 100, size=(n_sites, 2))
    cost = np.sqrt(((areas[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2))
    weights = rng.integers(1, 21, size=n_areas).astype(float)
    return pmedian_instance(cost, weights, norm)


def _enumerate(inst: Instance, p: int) -> float:
    cost, weights = inst.travel_min, inst.demand[:, 0]
    return min(float(weights @ cost[:, list(sites)].min(axis=1))
               for sites in itertools.combinations(range(cost.shape[1]), p))


@pytest.mark.parametrize("seed", range(6))
def test_pmedian_beyond_the_search_matches_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_sites = int(rng.integers(17, 27))
    p = int(rng.integers(2, 4))
    inst = _pmedian(int(rng.integers(40, 90)), n_sites, seed)
    params = SolveParams(objective="travel", max_providers={"T": p}, allow_new_providers=True)
    assert linking_for(inst, params, [0]) == "per_pair"
    sol = solve(inst, params)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(_enumerate(inst, p), rel=1e-7)
    assert verify(sol, inst, params) == []
    weak = solve(inst, params, algorithms=Algorithms(strong_linking=False))
    assert weak.objective == pytest.approx(sol.objective, rel=1e-7)
    assert sol.subproblems[0]["n_rows"] > weak.subproblems[0]["n_rows"]


def test_real_norms_keep_the_default_linking() -> None:
    """A norm above the smallest area's patients, or few candidate sites: no per-pair rows."""
    inst = _pmedian(60, 24, 1, norm=50.0)
    params = SolveParams(objective="travel", max_providers={"T": 3}, allow_new_providers=True)
    assert linking_for(inst, params, [0]) is None
    small = _pmedian(60, 12, 1)
    assert linking_for(small, params, [0]) is None
