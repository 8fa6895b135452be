"""The national joint solve is seeded with the regional solutions (a feasible joint point)."""

from __future__ import annotations

import numpy as np
import pytest
from herschik.geo.dataset import load_dataset
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.verify import verify
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.run import regional_start


@pytest.fixture(scope="module")
def example():
    dataset = load_dataset("example")
    areas = dict(zip(dataset.areas["area_id"], dataset.areas["region_id"]))
    return build_instance(dataset, "all"), areas


def test_regional_start_is_feasible_and_does_not_change_the_optimum(example) -> None:
    instance, areas = example
    params = SolveParams(margin=0.1)
    start = regional_start(instance, areas, params)
    assert start is not None and verify(start, instance, params) == []
    cold = solve(instance, params)
    warm = solve(instance, params, start=start)
    assert cold.status == warm.status == "optimal"
    # default objective planner: unnecessary moves, ~0 patients up to solver tolerance
    assert warm.objective == pytest.approx(cold.objective, rel=1e-6, abs=1e-4)
    assert np.allclose(warm.flow.sum(axis=1), instance.demand)


def test_no_start_when_a_region_is_infeasible(example) -> None:
    instance, areas = example
    assert regional_start(instance, areas, SolveParams(margin=20.0)) is None
