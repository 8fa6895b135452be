"""A treatment whose whole demand is below every norm (e.g. West's endoscopic resections)."""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser.instance import Instance, Site, Treatment
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.verify import verify


def _instance(total: float) -> Instance:
    demand = np.array([[total * 0.5], [total * 0.3], [total * 0.2]])
    travel = np.array([[10.0, 30.0], [25.0, 12.0], [20.0, 22.0]])
    baseline_volume = np.array([[total * 0.6], [total * 0.4]])
    flow = np.zeros((3, 2, 1))
    flow[0, 0, 0], flow[2, 0, 0] = total * 0.5, total * 0.1
    flow[1, 1, 0], flow[2, 1, 0] = total * 0.3, total * 0.1
    return Instance(
        region_id="r", area_ids=("a0", "a1", "a2"),
        sites=(Site("s0"), Site("s1")),
        treatments=(Treatment("og_endoscopic", norm=25.0),),
        demand=demand, travel_min=travel, baseline_volume=baseline_volume, baseline_flow=flow,
    )


def test_small_demand_is_concentrated_at_one_site_and_flagged() -> None:
    instance, params = _instance(20.0), SolveParams()
    solution = solve(instance, params)
    assert solution.status == "optimal"
    assert int(solution.keep.sum()) == 1
    assert solution.flow.sum() == pytest.approx(20.0)
    assert any("below the norm" in w for w in solution.warnings)
    assert verify(solution, instance, params) == []
    # the single provider is the one with least patient-minutes: s0 (10*10+6*25+4*20 = 330
    # vs s1 with 10*30+6*12+4*22 = 460)
    assert bool(solution.keep[0, 0])


def test_small_demand_fails_under_the_fail_rule() -> None:
    solution = solve(_instance(20.0), SolveParams(small_region_rule="fail"))
    assert solution.status == "infeasible"
    assert solution.diagnosis and solution.diagnosis["reason"]


def test_demand_above_norm_is_not_waived() -> None:
    instance, params = _instance(40.0), SolveParams()
    solution = solve(instance, params)
    assert solution.status == "optimal"
    assert not solution.warnings
    kept = np.nonzero(solution.keep[:, 0])[0]
    assert (solution.flow[:, kept, 0].sum(axis=0) >= 25.0 - 1e-6).all()
    assert verify(solution, instance, params) == []
