"""The odds of meeting a volume norm when yearly volumes are Poisson counts.

The model (docs/CONFIDENCE.md): each area's yearly patients of a treatment are an independent
Poisson count around its expected demand. A plan sends a fixed share of every area's patients
to each hospital, so the patients a hospital receives are a sum of independent thinned Poisson
counts: again Poisson, with mean the hospital's *expected* volume of the plan (its
``volume_after``). Over an assessment period of ``P`` years (each year with the same expected
volume, years independent) the period total is Poisson with mean ``P x volume``, and the norm
is met when that total reaches ``P x norm`` patients.

With ``k = ceil(P x norm)`` (a count reaches ``P x norm`` exactly when it reaches ``k``):

    P(meet) = P(Poisson(P x lam) >= k) = gammainc(k, P x lam)      (k >= 1; 1 when k <= 0)

(the regularised lower incomplete gamma function; ``scipy.special.gammainc``). It increases
strictly in ``lam``, so the smallest expected volume that meets the norm with probability
``c`` is ``gammaincinv(k, c) / P``; :func:`required_volume` refines that inverse by bisection
until it is exact to ``REQUIRED_REL_TOL`` (relative) and never below the norm itself.

Pure numpy / scipy: no files, no model code (the verifier re-derives every figure with
``scipy.stats.poisson`` on its own).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammainc, gammaincinv

#: relative width of the final bisection bracket of :func:`required_volume`: the returned
#: volume meets the confidence, and a volume this much (relatively) smaller does not
REQUIRED_REL_TOL = 1e-12
#: a norm x period within this of an integer counts as that integer (0.1 x 30 = 3.0000000004)
COUNT_ROUNDING_TOL = 1e-9


def threshold_count(norm: float, period_years: int = 1) -> int:
    """The smallest whole number of patients in the period that meets ``period_years x norm``."""
    target = float(norm) * int(period_years)
    return max(0, math.ceil(target - COUNT_ROUNDING_TOL))


def p_meet_norm(volume: ArrayLike, norm: ArrayLike, period_years: int = 1) -> np.ndarray:
    """P(a Poisson count with mean ``period_years x volume`` reaches ``period_years x norm``).

    Element-wise over broadcast ``volume`` and ``norm`` (expected patients per year and the norm
    per year); ``nan`` where either is ``nan`` (no norm, no plan).
    """
    if int(period_years) < 1:
        raise ValueError(f"period_years must be >= 1, got {period_years}")
    lam, nrm = np.broadcast_arrays(np.asarray(volume, dtype=float), np.asarray(norm, dtype=float))
    out = np.full(lam.shape, np.nan)
    ok = ~(np.isnan(lam) | np.isnan(nrm))
    if np.any(ok & (lam < 0)):
        raise ValueError("expected volumes must be >= 0")
    counts = np.array([threshold_count(n, period_years) if o else 0
                       for n, o in zip(nrm.ravel(), ok.ravel(), strict=True)],
                      dtype=float).reshape(lam.shape)
    mean = lam * int(period_years)
    positive = ok & (counts >= 1)
    out[ok & (counts < 1)] = 1.0  # a norm of 0 is always met
    out[positive] = gammainc(counts[positive], mean[positive])
    return out


@lru_cache(maxsize=4096)  # the same few norms are asked for by every model build
def _required_one(norm: float, confidence: float, period_years: int) -> float:
    k = threshold_count(norm, period_years)
    if k < 1:
        return max(0.0, float(norm))
    years = int(period_years)

    def meets(lam: float) -> bool:
        return bool(gammainc(k, lam * years) >= confidence)

    guess = float(gammaincinv(k, confidence)) / years
    lo, hi = guess * (1 - 1e-6), guess * (1 + 1e-6) + 1e-300
    while meets(lo) and lo > 0:  # widen the bracket if the inverse was off
        lo = lo / 2 if lo > 1e-300 else 0.0
    while not meets(hi):
        hi *= 2
    # bisection: lo fails, hi meets
    while hi - lo > REQUIRED_REL_TOL * hi:
        mid = (lo + hi) / 2
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return max(float(norm), hi)


def required_volume(norm: ArrayLike, confidence: float, period_years: int = 1) -> np.ndarray:
    """The smallest expected yearly volume with P(meet the norm over the period) >= confidence.

    Never below the norm itself (below a confidence of about 0.5 the Poisson quantile alone
    would ask less than the norm in expectation); ``nan`` where ``norm`` is ``nan``. Exact to
    ``REQUIRED_REL_TOL``: ``p_meet_norm(result) >= confidence`` always holds.
    """
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if int(period_years) < 1:
        raise ValueError(f"period_years must be >= 1, got {period_years}")
    norms = np.asarray(norm, dtype=float)
    flat = norms.ravel()
    out = np.full(flat.shape, np.nan)
    cache: dict[float, float] = {}  # few distinct norms (tiers) over many sites
    for i in np.nonzero(~np.isnan(flat))[0]:
        value = float(flat[i])
        if value not in cache:
            cache[value] = _required_one(value, float(confidence), int(period_years))
        out[i] = cache[value]
    return out.reshape(norms.shape)


def confidence_label(confidence: float) -> str:
    """``0.9`` -> ``"90 %"``, ``0.975`` -> ``"97.5 %"`` (the planners' way of writing odds)."""
    return f"{100 * float(confidence):.4g} %"
