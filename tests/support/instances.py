"""The one random-instance generator of the exact-algorithm tests.

``random_instance(seed, profile)`` draws a small synthetic instance (sizes, norms around the
typical volume, tiered roles) and the scenario options of its profile, each with its own
probability. ``TINY`` (brute force on every objective: travel limits, margins, capacities,
single sourcing, new providers, forced pairs) and ``PLANNER`` (the planner objective with binding
norms, most with a provider cap) are the two profiles in use; the draws of each are fixed, so a
seed names the same instance on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from herschik.optimiser.instance import Instance, Site, Treatment
from herschik.optimiser.params import SolveParams
from herschik.optimiser.synthetic import synthetic_instance

# an option: (probability, parameter name, value drawn from the rng for the instance)
OptionDraw = tuple[float, str, Callable[[np.random.Generator, Instance], Any]]


@dataclass(frozen=True)
class Profile:
    """How a random instance is drawn (ranges are numpy's half-open ``integers`` ranges)."""

    seed_offset: int
    n_sites: tuple[int, int]
    n_areas: tuple[int, int]
    norm_factor: tuple[float, float]  # norm = factor x median volume of today's providers
    no_norm_share: float  # share of treatments without a norm (0: every treatment has one)
    tiered_share: float
    base_params: tuple[tuple[str, Any], ...]
    options: tuple[OptionDraw, ...]


def _max_travel(rng: np.random.Generator, inst: Instance) -> float:
    return float(np.round(np.quantile(inst.travel_min, 0.7), 1))


def _force_keep(rng: np.random.Generator, inst: Instance) -> list[dict[str, str]]:
    s = int(np.argmax(inst.baseline_volume[:, 0]))
    return [{"site_id": inst.site_ids[s], "intervention_id": inst.treatment_ids[0]}]


def _max_providers(rng: np.random.Generator, inst: Instance) -> dict[str, int]:
    n_treat = len(inst.treatments)
    key = "*" if rng.random() < 0.4 else inst.treatment_ids[int(rng.integers(n_treat))]
    return {key: int(rng.integers(1, 4))}


TINY = Profile(
    seed_offset=0, n_sites=(2, 6), n_areas=(3, 9), norm_factor=(0.3, 1.2), no_norm_share=0.15,
    tiered_share=0.3, base_params=(("mip_gap", 1e-9),),
    options=(
        (0.3, "max_travel", _max_travel),
        (0.3, "max_extra_travel", lambda rng, inst: float(rng.uniform(5, 25))),
        (0.4, "margin", lambda rng, inst: float(rng.choice([0.1, 0.25, 0.5]))),
        (0.3, "capacity_factor", lambda rng, inst: float(rng.uniform(1.1, 2.0))),
        (0.25, "single_sourcing", lambda rng, inst: True),
        (0.25, "allow_new_providers", lambda rng, inst: True),
        (0.2, "force_close", lambda rng, inst: [{"site_id": inst.site_ids[0]}]),
        (0.2, "force_keep", _force_keep),
    ))

PLANNER = Profile(
    seed_offset=9000, n_sites=(3, 7), n_areas=(6, 15), norm_factor=(0.3, 1.3), no_norm_share=0.0,
    tiered_share=0.2, base_params=(("objective", "planner"), ("mip_gap", 1e-9)),
    options=(
        (0.75, "max_providers", _max_providers),
        (0.4, "margin", lambda rng, inst: float(rng.choice([0.1, 0.2, 0.3]))),
        (0.3, "allow_new_providers", lambda rng, inst: True),
        (0.3, "max_extra_travel", lambda rng, inst: float(rng.uniform(5, 30))),
    ))


def random_instance(seed: int, profile: Profile = TINY) -> tuple[Instance, SolveParams]:
    """A random instance and scenario of ``profile``; the same seed gives the same pair."""
    rng = np.random.default_rng(profile.seed_offset + seed)
    n_sites = int(rng.integers(*profile.n_sites))
    n_areas = int(rng.integers(*profile.n_areas))
    n_treat = int(rng.integers(1, 3))
    base = synthetic_instance(n_areas, n_sites, n_treat, seed=seed, region_km=60,
                              norms=[None] * n_treat)
    norms: list[float | None] = []
    for t in range(n_treat):
        vols = base.baseline_volume[:, t][base.baseline_volume[:, t] > 0]
        if profile.no_norm_share and rng.random() < profile.no_norm_share:
            norms.append(None)
        else:
            norms.append(float(np.round(rng.uniform(*profile.norm_factor) * np.median(vols), 2)))
    inst = synthetic_instance(n_areas, n_sites, n_treat, seed=seed, region_km=60, norms=norms,
                              tiered=bool(rng.random() < profile.tiered_share))
    kw: dict[str, Any] = dict(profile.base_params)
    for probability, name, draw in profile.options:
        if rng.random() < probability:
            kw[name] = draw(rng, inst)
    return inst, SolveParams(**kw)


def pmedian_instance(cost: np.ndarray, weights: np.ndarray, norm: float = 1e-3) -> Instance:
    """One treatment with a tiny norm (the p-median class): areas x sites travel ``cost``,
    ``weights`` patients per area, each treated today at its nearest site."""
    n_areas, n_sites = cost.shape
    flow = np.zeros((n_areas, n_sites, 1))
    flow[np.arange(n_areas), np.argmin(cost, axis=1), 0] = weights
    return Instance(region_id="R", area_ids=tuple(f"A{i}" for i in range(n_areas)),
                    sites=tuple(Site(id=f"S{j}") for j in range(n_sites)),
                    treatments=(Treatment(id="T", norm=norm),), demand=weights[:, None],
                    travel_min=cost, baseline_volume=flow.sum(axis=0), baseline_flow=flow)


def random_points_instance(rng: np.random.Generator, n_areas: int, n_sites: int, grid: bool,
                           weight_range: tuple[float, float], decimals: int,
                           scale: float = 1.0, norm: float = 1e-3) -> Instance:
    """:func:`pmedian_instance` on random points: uniform in a 100 x 100 square (Euclidean
    travel) or on a coarse 6 x 6 grid (Manhattan x 10: many tied travel times); patients per
    area log-uniform in ``weight_range``, rounded to ``decimals``."""
    if grid:
        areas = rng.integers(0, 6, size=(n_areas, 2)).astype(float)
        sites = rng.integers(0, 6, size=(n_sites, 2)).astype(float)
        cost = np.abs(areas[:, None, :] - sites[None, :, :]).sum(axis=2) * 10.0
    else:
        areas = rng.uniform(0, 100, size=(n_areas, 2))
        sites = rng.uniform(0, 100, size=(n_sites, 2))
        cost = np.sqrt(((areas[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2))
    lo, hi = weight_range
    weights = np.round(np.exp(rng.uniform(np.log(lo), np.log(hi), size=n_areas)), decimals)
    return pmedian_instance(cost * scale, weights, norm)


def meets_rows(arrays: Any, x: np.ndarray) -> bool:
    """Whether column values ``x`` meet every row and column bound of MIP ``arrays`` (to
    1e-6 relative on rows, 1e-9 on columns): an exact method's plan checked independently."""
    activity = arrays.A @ x
    tol = 1e-6 * np.maximum(1.0, np.abs(activity))
    return bool(np.all(activity >= arrays.row_lower - tol)
                and np.all(activity <= arrays.row_upper + tol)
                and np.all(x >= arrays.col_lower - 1e-9) and np.all(x <= arrays.col_upper + 1e-9))
