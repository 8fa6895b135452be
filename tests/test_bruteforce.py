"""Brute force: enumerate every keep set, solve the flow problem, compare with the MIP.

The reference solver here is written independently of optimiser/formulation.py: for each
treatment and each subset K of its candidate sites it solves, with scipy (linprog, or milp for
single sourcing), "send every area's demand to sites in K within the travel limits so that every
site in K reaches its required volume and stays within capacity", for each objective, with at
most ``max_providers`` sites in K. Treatments
are independent in these instances (no bundles / loss share), so the best total is the sum of
per-treatment bests.
"""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser.solve import solve
from herschik.optimiser.verify import verify

SEEDS = list(range(24))


def _assert_matches_bruteforce(brute_force, inst, params, objective: str):
    """Solve with the MIP and compare with the brute-force reference: the same feasibility,
    a diagnosis when infeasible, the same optimum when feasible; the solution (or None)."""
    ref = brute_force.reference(inst, params, objective)
    sol = solve(inst, params)
    if ref is None:
        # some treatment has no plan: the others keep theirs (a partial plan) unless none has
        assert sol.status in ("infeasible", "partially_infeasible"), \
            f"reference infeasible, MIP {sol.status}"
        assert sol.diagnosis and sol.diagnosis["reason"]
        if sol.status == "partially_infeasible":
            assert not set(sol.diagnosis["infeasible_treatments"]) & set(
                sol.diagnosis["solved_treatments"])
        return None
    assert sol.status == "optimal", f"reference feasible ({ref}), MIP {sol.status}"
    assert sol.solver == params.solver
    brute_force.compare(inst, sol, ref, objective)
    return sol


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("objective", ["planner", "travel", "moved", "providers"])
def test_mip_matches_bruteforce_highs(brute_force, seed: int, objective: str) -> None:
    inst, params = brute_force.tiny(seed)
    _assert_matches_bruteforce(brute_force, inst,
                               params.model_copy(update={"objective": objective}), objective)


@pytest.mark.parametrize("seed", SEEDS[:8])
@pytest.mark.parametrize("objective", ["planner", "travel", "moved", "providers"])
def test_mip_matches_bruteforce_cbc(brute_force, seed: int, objective: str) -> None:
    inst, params = brute_force.tiny(seed)
    _assert_matches_bruteforce(
        brute_force, inst, params.model_copy(update={"objective": objective, "solver": "cbc"}),
        objective)


def _capped(brute_force, seed: int):
    """A tiny instance with a cap on providers: P of 1 or 2 on one treatment or on every
    treatment ('*')."""
    inst, params = brute_force.tiny(seed)
    rng = np.random.default_rng(1000 + seed)
    n_treat = len(inst.treatments)
    key = "*" if rng.random() < 0.4 else inst.treatment_ids[int(rng.integers(n_treat))]
    return inst, params.model_copy(update={"max_providers": {key: int(rng.integers(1, 3))}})


@pytest.mark.parametrize("seed", SEEDS[:16])
@pytest.mark.parametrize("objective", ["planner", "travel", "providers"])
def test_max_providers_matches_bruteforce(brute_force, seed: int, objective: str) -> None:
    inst, params = _capped(brute_force, seed)
    params = params.model_copy(update={"objective": objective})
    sol = _assert_matches_bruteforce(brute_force, inst, params, objective)
    if sol is not None:
        assert verify(sol, inst, params) == []


@pytest.mark.parametrize("seed", SEEDS[:6])
def test_max_providers_matches_bruteforce_cbc(brute_force, seed: int) -> None:
    inst, params = _capped(brute_force, seed)
    _assert_matches_bruteforce(
        brute_force, inst, params.model_copy(update={"objective": "travel", "solver": "cbc"}),
        "travel")


def test_max_providers_bruteforce_cases_bind(brute_force) -> None:
    """The capped cases above are not vacuous: the cap changes the optimum or the feasibility
    of several of them."""
    changed = 0
    for seed in SEEDS[:16]:
        inst, params = _capped(brute_force, seed)
        free = params.model_copy(update={"max_providers": {}})
        if brute_force.reference(inst, params, "travel") != brute_force.reference(
                inst, free, "travel"):
            changed += 1
    assert changed >= 4
