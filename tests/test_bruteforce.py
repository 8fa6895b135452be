"""Brute force: enumerate every keep set, solve the flow problem, compare with the MIP.

The reference solver here is written independently of optimiser/formulation.py: for each
treatment and each subset K of its candidate sites it solves, with scipy (linprog, or milp for
single sourcing), "send every area's demand to sites in K within the travel limits so that every
site in K reaches its required volume and stays within capacity", for each objective. Treatments
are independent in these instances (no bundles / loss share), so the best total is the sum of
per-treatment bests.
"""

from __future__ import annotations

import pytest
from herschik.optimiser.solve import solve

SEEDS = list(range(24))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("objective", ["planner", "travel", "moved", "providers"])
def test_mip_matches_bruteforce_highs(brute_force, seed: int, objective: str) -> None:
    inst, params = brute_force.tiny(seed)
    params = params.model_copy(update={"objective": objective})
    ref = brute_force.reference(inst, params, objective)
    sol = solve(inst, params)
    if ref is None:
        assert sol.status == "infeasible", f"reference infeasible, MIP {sol.status}"
        assert sol.diagnosis and sol.diagnosis["reason"]
        return
    assert sol.status == "optimal", f"reference feasible ({ref}), MIP {sol.status}"
    brute_force.compare(inst, sol, ref, objective)


@pytest.mark.parametrize("seed", SEEDS[:8])
@pytest.mark.parametrize("objective", ["planner", "travel", "moved", "providers"])
def test_mip_matches_bruteforce_cbc(brute_force, seed: int, objective: str) -> None:
    inst, params = brute_force.tiny(seed)
    params = params.model_copy(update={"objective": objective, "solver": "cbc"})
    ref = brute_force.reference(inst, params, objective)
    sol = solve(inst, params)
    if ref is None:
        assert sol.status == "infeasible"
        return
    assert sol.status == "optimal"
    assert sol.solver == "cbc"
    brute_force.compare(inst, sol, ref, objective)
