"""optimiser/norm_keepsets.py, providers phase 1: a node's reduced-cost fixing is valid.

With an integer-valued objective the search rounds a node's Lagrangian bound up; the fixing
adds each site's change (forcing it open or closed) to the node's value, and that sum must
start from the Lagrangian value itself: the rounded-up value plus a change can exceed the
forced branch's true bound by almost 1, and then a site that a strictly better plan needs was
fixed the other way (review of 2026-12-07: on the draw below the root banned four sites and
forced five whose opposite branch holds a plan one pair better than the incumbent).

Checked independently: every site the root fixes, forced the other way, has no plan better
than the incumbent by a whole pair (HiGHS' branch and bound on the full model)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from herschik.optimiser.backends import solve_highs
from herschik.optimiser.formulation import MipArrays, build_arrays
from herschik.optimiser.instance import Instance, Treatment
from herschik.optimiser.norm_keepsets import (
    _integral_objective,
    _merge,
    _read_model,
    _Search,
    known_plan,
)
from herschik.optimiser.pair_lp import PairLP
from herschik.optimiser.params import SolveParams

from tests.support.instances import random_points_instance

highspy = pytest.importorskip("highspy")


def _draw(seed: int) -> tuple[Instance, SolveParams]:
    """Random points, a tiered norm per site role, often a tight travel limit or a cap."""
    rng = np.random.default_rng(9100 + seed)
    n_areas, n_sites = int(rng.integers(20, 120)), int(rng.integers(10, 30))
    rng.uniform(1.5, 9.0)  # a single norm's draw, kept for the sequence: tiers set the norms
    inst = random_points_instance(np.random.default_rng(seed), n_areas, n_sites,
                                  seed % 3 == 0,
                                  (1e-3, 1e3) if seed % 4 == 1 else (1.0, 21.0), 4)
    total = float(inst.demand.sum())
    roles = ["HHOC", "PP", "PPR"]
    sites = tuple(replace(s, role=roles[int(rng.integers(0, 3))]) for s in inst.sites)
    tiers = {r: round(total / float(rng.uniform(1.5, 9.0)), 3) for r in roles}
    inst = replace(inst, sites=sites,
                   treatments=(Treatment(id="T", norm=tiers["PP"], tier_norms=tiers),))
    kw: dict = {"objective": "providers", "mip_gap": 1e-9, "allow_new_providers": True}
    if rng.random() < 0.9:
        finite = inst.travel_min[np.isfinite(inst.travel_min)]
        kw["max_travel"] = float(np.quantile(finite, rng.uniform(0.05, 0.4)))
    if rng.random() < 0.3:
        kw["max_providers"] = {"T": int(rng.integers(2, 6))}
    return inst, SolveParams(**kw)


def _best_with(arrays: MipArrays, column: int, value: float) -> float:
    """HiGHS' optimum (without offset) of ``arrays`` with one column fixed to ``value``."""
    row = np.zeros(arrays.n_cols)
    row[column] = 1.0
    res = solve_highs(arrays.with_extra_row(row, value, value, "fixed"), 60.0, 1e-9, 1)
    return np.inf if res.status != "optimal" else float(res.objective) - arrays.offset


@pytest.mark.parametrize("seed", [112, 120, 132, 149])
def test_root_fixings_keep_every_better_plan(seed: int) -> None:
    """The root node's fixings against an incumbent one kept pair short of the optimum (a
    start that the root's rounding does not improve on): no fixed site is needed by a plan
    better than the incumbent."""
    inst, params = _draw(seed)
    arrays = build_arrays(inst, params, [0])
    optimum = solve_highs(arrays, 60.0, 1e-9, 1)
    assert optimum.status == "optimal"
    pairs = round(-optimum.objective)
    assert pairs >= 2
    cap = np.zeros(arrays.n_cols)
    cap[arrays.y_slice()] = 1.0
    fewer = solve_highs(arrays.with_extra_row(cap, 0.0, pairs - 1.0, "cap"), 60.0, 1e-9, 1)
    assert fewer.x is not None
    read = _read_model(arrays, 1)
    assert read is not None
    model = read[0]
    assert _integral_objective(arrays, model)
    merged = _merge(model)
    lp = PairLP(merged.model, highspy, None, None, expand=merged)
    search = _Search(merged.model, arrays, lp, 1e-9, True)
    search.consider(known_plan(model, arrays, fewer.x))
    assert search.best == pytest.approx(-(pairs - 1))
    lp.plan = lambda *args, **kwargs: None  # the root's rounding finds nothing better
    search._node(model.must.copy(), np.zeros(model.k, dtype=bool))
    better = search.best - 1.0 + 1e-6
    for j in np.nonzero(search.lagr.banned)[0]:
        assert _best_with(arrays, int(model.y_column[j]), 1.0) > better, f"site {j} banned"
    for j in np.nonzero(search.lagr.must & ~model.must)[0]:
        assert _best_with(arrays, int(model.y_column[j]), 0.0) > better, f"site {j} forced"
