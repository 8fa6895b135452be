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
from herschik.optimiser.verify import verify

SEEDS = list(range(24))



@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("objective", ["planner", "travel", "moved", "providers"])
def test_mip_matches_bruteforce_highs(brute_force, seed: int, objective: str) -> None:
    inst, params = brute_force.tiny(seed)
    brute_force.assert_matches(inst,
                               params.model_copy(update={"objective": objective}), objective)


@pytest.mark.parametrize("seed", SEEDS[:8])
@pytest.mark.parametrize("objective", ["planner", "travel", "moved", "providers"])
def test_mip_matches_bruteforce_cbc(brute_force, seed: int, objective: str) -> None:
    inst, params = brute_force.tiny(seed)
    brute_force.assert_matches(
        inst, params.model_copy(update={"objective": objective, "solver": "cbc"}),
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
    sol = brute_force.assert_matches(inst, params, objective)
    if sol is not None:
        assert verify(sol, inst, params) == []


@pytest.mark.parametrize("seed", SEEDS[:6])
def test_max_providers_matches_bruteforce_cbc(brute_force, seed: int) -> None:
    inst, params = _capped(brute_force, seed)
    brute_force.assert_matches(
        inst, params.model_copy(update={"objective": "travel", "solver": "cbc"}),
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
