"""A plan's decoder computes the planner objective's instance-wide rules (candidates, required
volumes, the pair rule) once per plan and hands them to every sub-problem's objective value: the
same floats as computing them per call (issue 23 goal 6)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.synthetic import synthetic_instance


def _with_holes(seed: int) -> Instance:
    """A random instance with unreachable pairs, a treatment nobody provides today and a
    treatment whose whole demand is below its norm."""
    inst = synthetic_instance(40, 7, 5, seed=seed)
    rng = np.random.default_rng(seed)
    travel = inst.travel_min.copy()
    travel[rng.random(travel.shape) < 0.2] = np.inf
    travel[0, :] = np.inf  # an island
    volume = inst.baseline_volume.copy()
    volume[:, 1] = 0.0  # no provider today
    demand = inst.demand.copy()
    demand[:, 2] *= 1e-3  # below any norm
    return dataclasses.replace(inst, travel_min=travel, baseline_volume=volume, demand=demand)


@pytest.mark.parametrize("seed", range(4))
def test_objective_values_with_shared_rules_equal_the_per_call_ones(seed: int) -> None:
    """A plan's decoder computes the planner objective's instance-wide rules once and hands
    them to every sub-problem's objective value: the same floats as computing them per call."""
    from herschik.optimiser.decode import objective_value
    from herschik.optimiser.formulation import unnecessary_moves, unnecessary_moves_rules

    inst = _with_holes(seed)
    rng = np.random.default_rng(seed)
    n_areas, n_sites, n_treat = inst.shape
    for limit in (12.0, None):
        params = SolveParams(objective="planner", max_travel=limit, margin=0.1)
        rules = unnecessary_moves_rules(inst, params)
        for _ in range(5):
            flow = inst.demand[:, None, :] * rng.dirichlet(np.ones(n_sites), size=(n_areas,
                                                                                 n_treat)
                                                           ).transpose(0, 2, 1)
            keep = rng.random((n_sites, n_treat)) < 0.6
            for treatments in ([t] for t in range(n_treat)):
                assert (objective_value(inst, params, flow, keep, treatments, rules)
                        == objective_value(inst, params, flow, keep, treatments))
            everything = list(range(n_treat))
            assert (unnecessary_moves(inst, params, flow, keep, everything, rules)
                    == unnecessary_moves(inst, params, flow, keep, everything))
