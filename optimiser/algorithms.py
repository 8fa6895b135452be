"""Which algorithms a solve uses besides the MIP solver, and the linking rows of the
p-median class. Not part of the scenario: every choice gives the same optimum (tests compare
them); the benchmarks run them side by side."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .formulation import candidate_matrix, required_matrix
from .instance import Instance
from .params import SolveParams


@dataclass(frozen=True)
class Algorithms:
    """Which algorithms a solve may use besides the MIP solver; not part of the scenario
    (every choice gives the same optimum), for the side-by-side benchmarks and the tests.

    ``keep_set_search``: one-treatment models the exact keep-set searches cover are solved by
    them (optimiser/keepset_search.py, both planner phases: optimiser/keepset_phase2.py);
    ``hall_test``: the keep-set feasibility test (optimiser/feasibility.py) decides
    infeasible models before any solver; ``pin_phase2``: the planner's zero-moves model is
    solved on its exact reduction (optimiser/pinning.py); ``planner_shortcuts``: the planner's
    greedy phase-1 proof and its per-flow zero-moves phase 2 (optimiser/planner.py; off: the
    plain two phases with a moves ceiling); ``strong_linking``: see :func:`linking_for`."""

    keep_set_search: bool = True
    hall_test: bool = True
    pin_phase2: bool = True
    planner_shortcuts: bool = True
    #: per-pair linking rows (x <= d·y for every flow) for the p-median class: see
    #: linking_for
    strong_linking: bool = True
    #: one-treatment models with more keep decisions than the keep-set search enumerates:
    #: Lagrangian bound, interchange incumbent and reduced-cost fixing before HiGHS
    #: (optimiser/large_keepsets.py)
    lagrangian_keep_sets: bool = True
    #: one-treatment models with more keep decisions than the keep-set search enumerates and
    #: norms that bind: our own branch and bound on column-generated per-pair LPs before
    #: HiGHS (optimiser/norm_keepsets.py)
    norm_keep_sets: bool = True
    #: one-treatment models with more keep decisions than the keep-set search enumerates
    #: and a floor on the number kept that leaves few to close (``providers`` phase 2): the
    #: closed sets enumerated best bound first (optimiser/floor_keepsets.py)
    floor_keep_sets: bool = True


#: every algorithm on: what ``solve`` uses when it is given none
DEFAULT_ALGORITHMS = Algorithms()
#: HiGHS' (or CBC's) branch and bound only: no keep-set search and no Hall test
BRANCH_AND_BOUND_ONLY = Algorithms(keep_set_search=False, hall_test=False,
                                   lagrangian_keep_sets=False, norm_keep_sets=False,
                                   floor_keep_sets=False)


#: the p-median class with more candidate sites than this goes to HiGHS on per-pair rows
PMEDIAN_SEARCH_SITES = 16


def linking_for(instance: Instance, params: SolveParams, treatments: list[int]) -> str | None:
    """``"per_pair"`` for the p-median class, else None (the builder's default, ``nearest``).

    When every required volume of a treatment is at most its smallest area's patients, the
    min-volume rows hardly restrict (any site with one area's patients meets its norm) and
    the model is a p-median / facility location: there the aggregated linking's LP relaxation
    is weak (y = volume / U) and the classic strong rows x <= d·y per flow close the gap
    (benchmarks/bench_pmedian.py: 300 areas x 30 sites, 18 s -> 0.5 s CPU). Only for
    treatments with more than PMEDIAN_SEARCH_SITES candidate sites: up to that many the
    keep-set search is faster (100 areas x 16 sites: 0.014 s vs 0.03-0.05 s), above it HiGHS
    on these rows is (x 20 sites: 0.03-0.05 s vs 0.16-0.25 s), and the component is then
    solved by HiGHS without the search and the Hall test. With real norms the per-pair rows
    lose (docs/decisions/linking.md; national pancreas_systemic: 14.6 s optimal vs 17.7 s
    not closed)."""
    candidate = candidate_matrix(instance, params)
    required = required_matrix(instance, params)
    for t in treatments:
        demand = instance.demand[:, t]
        if not np.any(demand > 0) or candidate[:, t].sum() <= PMEDIAN_SEARCH_SITES:
            return None
        normed = required[:, t][candidate[:, t] & ~np.isnan(required[:, t])]
        if normed.size == 0 or normed.max() > demand[demand > 0].min():
            return None
    return "per_pair"


__all__ = ["BRANCH_AND_BOUND_ONLY", "DEFAULT_ALGORITHMS", "Algorithms", "linking_for"]
