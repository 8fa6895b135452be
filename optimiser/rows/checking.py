"""Helpers of the verifier checks, written apart from the model builder on purpose.

Every check recomputes its constraint from ``Instance`` + ``SolveParams`` + the solution, so a
bug in a builder shows up as a violation instead of being repeated; these helpers are the only
code the checks share, and none of it is used to build the model.
"""

from __future__ import annotations

import math
from typing import Any

from scipy.special import pdtrc

from ..instance import Instance
from ..tolerances import PROVIDES_MIN, TRAVEL_TOL_MIN, VERIFY_EXTRA_TRAVEL_TOL_MIN, VERIFY_TOL

#: Absolute tolerance in patients of every recomputed constraint (tolerances.VERIFY_TOL)
TOL = VERIFY_TOL
#: minutes: the max_extra_travel check (tolerances.VERIFY_EXTRA_TRAVEL_TOL_MIN)
EXTRA_TRAVEL_TOL_MIN = VERIFY_EXTRA_TRAVEL_TOL_MIN

__all__ = ["EXTRA_TRAVEL_TOL_MIN", "PROVIDES_MIN", "TOL", "TRAVEL_TOL_MIN", "named_pairs",
           "norm_at", "poisson_meet_probability"]


def named_pairs(items: list[Any], instance: Instance) -> set[tuple[int, int]]:
    """(site index, treatment index) pairs named by SiteTreatment-like items ("*" = all)."""
    sites = {site_id: s for s, site_id in enumerate(instance.site_ids)}
    treatments = {treatment_id: t for t, treatment_id in enumerate(instance.treatment_ids)}
    pairs: set[tuple[int, int]] = set()
    for item in items:
        s = sites.get(item.site_id)
        if s is None:
            continue
        if item.intervention_id == "*":
            pairs.update((s, t) for t in range(len(treatments)))
        elif item.intervention_id in treatments:
            pairs.add((s, treatments[item.intervention_id]))
    return pairs


def norm_at(instance: Instance, s: int, t: int) -> float | None:
    """The volume norm of treatment t at site s (its tier norm where the site's role has one)."""
    treatment = instance.treatments[t]
    tiers = dict(treatment.tier_norms or {})
    norm = tiers.get(instance.sites[s].role, treatment.norm)
    return None if norm is None else float(norm)


def poisson_meet_probability(volume: float, norm: float, years: int) -> float:
    """P(Poisson(years x volume) >= years x norm), from scipy's Poisson survival function (the
    verifier's own arithmetic; the model's is optimiser/confidence.py). ``pdtrc`` is what
    ``scipy.stats.poisson.sf`` evaluates, bit for bit (NaN, 0 and infinite means included),
    without importing scipy.stats (0.5 s of CPU per command)."""
    needed = math.ceil(round(norm * years, 9))  # 0.1 x 30 is 3, not 3.0000000000000004
    if needed <= 0:
        return 1.0
    return float(pdtrc(needed - 1, years * volume))
