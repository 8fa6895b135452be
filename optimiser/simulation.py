"""Simulated years of a plan: random yearly demand per area, routed by the plan's shares.

Each simulated year, area ``a`` has a random number of patients of a treatment around its
expected demand ``mu_a`` (the plan's: the scenario's growth applied, as the solve used it):

* Poisson(``mu_a``) (``overdispersion = 0``), or
* negative binomial with the same mean and variance ``mu_a + phi x mu_a**2``
  (``overdispersion = phi > 0``): Poisson(``mu_a x G``) with ``G ~ Gamma(1/phi, phi)`` drawn
  per area and year.

The year's patients of an area are split over the hospitals the plan sends it to,
multinomially with the plan's shares. By Poisson thinning, the patients of one (area,
hospital) pair are then independent Poisson counts with mean ``share x mu_a`` (x the area's
``G``), and a hospital's yearly volume, their sum, is Poisson with mean
``sum_a share_as x mu_a x G_a``: that is what is drawn (the gamma factors per area and year,
then one Poisson count per hospital and year), exactly the same distribution as drawing and
splitting every area's patients, at a fraction of the cost
(tests/optimiser/test_simulate.py checks it against an explicit multinomial split).
Vectorised over chunks of ``CHUNK_YEARS`` years.
Deterministic for a seed: each treatment draws from its own stream (``SeedSequence([seed,
crc32(treatment id)])``, scenarios/simulate.py), so one treatment's draws do not depend on the
others.

Pure numpy: the files (a result folder) are read by ``scenarios/simulate.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: years drawn at once (bounds memory: CHUNK_YEARS x pairs integers); part of the stream, so
#: changing it changes the draws of a seed
CHUNK_YEARS = 1000


@dataclass(frozen=True)
class PlanRoutes:
    """A treatment's routes in a plan: expected patients per year of each (area, site) pair."""

    area: np.ndarray  # (P,) int area index of each pair
    site: np.ndarray  # (P,) int site index (0 .. n_sites - 1)
    patients: np.ndarray  # (P,) float expected patients per year, > 0
    n_sites: int

    def __post_init__(self) -> None:
        n = self.area.shape[0]
        if self.site.shape != (n,) or self.patients.shape != (n,):
            raise ValueError("area, site and patients must be aligned 1-d arrays")
        if n and (not np.all(np.isfinite(self.patients)) or np.any(self.patients <= 0)):
            raise ValueError("expected patients of a route must be finite and > 0")
        if n and (self.site.min() < 0 or self.site.max() >= self.n_sites):
            raise ValueError("site index out of range")


def simulate_volumes(routes: PlanRoutes, years: int, rng: np.random.Generator,
                     overdispersion: float = 0.0) -> np.ndarray:
    """(years, n_sites) simulated yearly volumes (integers) of one treatment (module doc)."""
    if years < 1:
        raise ValueError(f"years must be >= 1, got {years}")
    if not (np.isfinite(overdispersion) and overdispersion >= 0):
        raise ValueError(f"overdispersion must be >= 0, got {overdispersion}")
    out = np.zeros((years, routes.n_sites), dtype=np.int64)
    if routes.area.shape[0] == 0:
        return out
    _, area_pos = np.unique(routes.area, return_inverse=True)
    n_areas = int(area_pos.max()) + 1
    # expected patients of every (area, site): the plan's routes
    routed = np.zeros((n_areas, routes.n_sites))
    np.add.at(routed, (area_pos, routes.site), routes.patients)
    volume = routed.sum(axis=0)
    for start in range(0, years, CHUNK_YEARS):
        n = min(CHUNK_YEARS, years - start)
        if overdispersion > 0:
            # one gamma factor per area and year, shared by the area's routes
            factor = rng.gamma(1.0 / overdispersion, overdispersion, size=(n, n_areas))
            mean = factor @ routed
        else:
            mean = np.broadcast_to(volume, (n, routes.n_sites))
        out[start:start + n] = rng.poisson(mean)
    return out


@dataclass(frozen=True)
class VolumeSummary:
    """Per site: the distribution of simulated yearly volumes and the shares below the norm."""

    mean: np.ndarray
    std: np.ndarray
    quantiles: dict[str, np.ndarray]  # "p05" ... "p95"
    share_years_below_norm: np.ndarray  # nan without a norm
    share_periods_below_norm: np.ndarray  # consecutive blocks of period_years; nan if none


#: the quantiles reported (and drawn as the fan chart's bands)
QUANTILES: dict[str, float] = {"p05": 0.05, "p10": 0.10, "p25": 0.25, "p50": 0.50,
                               "p75": 0.75, "p90": 0.90, "p95": 0.95}


def summarise(volumes: np.ndarray, norms: np.ndarray, period_years: int = 1) -> VolumeSummary:
    """Statistics of ``volumes`` (years, sites) against ``norms`` (sites,; nan = no norm).

    A period is a block of ``period_years`` consecutive simulated years (the last incomplete
    block is left out); it is below the norm when its total is below ``period_years x norm``.
    Quantiles are the inverted-CDF ones (observed volumes).
    """
    years = volumes.shape[0]
    values = volumes.astype(float)
    quantiles = {name: np.quantile(values, q, axis=0, method="inverted_cdf")
                 for name, q in QUANTILES.items()}
    has_norm = ~np.isnan(norms)
    below = np.where(has_norm, (values < np.where(has_norm, norms, 0) - 1e-9).mean(axis=0),
                     np.nan)
    blocks = years // period_years
    if blocks:
        totals = values[:blocks * period_years].reshape(blocks, period_years, -1).sum(axis=1)
        target = np.where(has_norm, norms, 0) * period_years
        periods = np.where(has_norm, (totals < target - 1e-9).mean(axis=0), np.nan)
    else:
        periods = np.full(norms.shape, np.nan)
    return VolumeSummary(values.mean(axis=0), values.std(axis=0), quantiles, below, periods)
