"""Synthetic instances: small realistic regions for tests, demos and benchmarks.

``synthetic_instance`` draws a small but realistic region: areas scattered around a few towns
with populations, hospitals in the larger towns, travel = straight-line distance x detour / speed
plus a fixed access time, demand = population x incidence (fractional patients per year), and
baseline volumes/flows from the baseline reconstruction LP (patients go as near home as the
volumes allow, with some sites drawing more than their nearest share).
"""

from __future__ import annotations

import numpy as np

from .baseline import reconstruct_baseline_flows
from .instance import Instance, Site, Treatment


def synthetic_instance(
    n_areas: int = 60,
    n_sites: int = 6,
    n_treatments: int = 3,
    seed: int = 0,
    norms: list[float | None] | None = None,
    region_km: float = 80.0,
    tiered: bool = False,
    unreachable_share: float = 0.0,
) -> Instance:
    """A random realistic region. Norms default to about the median site volume (binding)."""
    rng = np.random.default_rng(seed)
    n_towns = max(3, n_sites + 2)
    towns = rng.uniform(0, region_km * 1000, size=(n_towns, 2))
    town_weight = rng.pareto(1.5, n_towns) + 1.0
    which = rng.choice(n_towns, size=n_areas, p=town_weight / town_weight.sum())
    areas_xy = towns[which] + rng.normal(0, 6000, size=(n_areas, 2))
    population = rng.lognormal(9.0, 0.6, n_areas)
    site_towns = np.argsort(-town_weight)[:n_sites]
    sites_xy = towns[site_towns] + rng.normal(0, 1500, size=(n_sites, 2))
    dist_km = np.linalg.norm(areas_xy[:, None, :] - sites_xy[None, :, :], axis=2) / 1000
    travel = 5.0 + dist_km * 1.3 / 70.0 * 60.0  # 5 min access + detour 1.3 at 70 km/h
    if unreachable_share > 0:
        mask = rng.random(travel.shape) < unreachable_share
        mask[np.arange(n_areas), travel.argmin(axis=1)] = False
        travel[mask] = np.inf
    incidence = rng.uniform(2e-5, 1.2e-4, n_treatments)
    demand = np.round(population[:, None] * incidence[None, :], 2)
    # baseline: each treatment offered at a random majority of sites, with volumes that follow
    # the nearest-site catchment, perturbed (hospitals also attract from further away)
    nearest = np.argmin(travel, axis=1)
    baseline_volume = np.zeros((n_sites, n_treatments))
    for t in range(n_treatments):
        offers = rng.random(n_sites) < 0.8
        offers[rng.integers(n_sites)] = True
        catch = np.zeros(n_sites)
        masked = np.where(offers[None, :], travel, np.inf)
        np.add.at(catch, np.argmin(masked, axis=1), demand[:, t])
        vol = catch * rng.uniform(0.7, 1.3, n_sites) * offers
        if vol.sum() <= 0:
            vol = offers.astype(float)
        baseline_volume[:, t] = vol / vol.sum() * demand[:, t].sum()
    del nearest
    flows = reconstruct_baseline_flows(demand, travel, baseline_volume)
    if norms is None:
        norms = []
        for t in range(n_treatments):
            v = baseline_volume[:, t][baseline_volume[:, t] > 0]
            norms.append(float(np.round(np.median(v) * 0.8, 0)) if t % 4 != 3 else None)
    roles = ["HHOC", "PP", "PPR"]
    sites = tuple(
        Site(id=f"S{s:02d}", name=f"Hospital {s}", region_id="R1", role=roles[s % 3])
        for s in range(n_sites)
    )
    treatments = []
    for t in range(n_treatments):
        tier = None
        norm = norms[t]
        if tiered and t == 0 and norm is not None:
            tier = {"HHOC": norm * 1.5, "PP": norm, "PPR": norm * 0.6}
        treatments.append(Treatment(id=f"T{t:02d}", group_id="G", name=f"treatment {t}",
                                    norm=norms[t], tier_norms=tier))
    return Instance(
        region_id="R1",
        area_ids=tuple(f"A{a:04d}" for a in range(n_areas)),
        sites=sites,
        treatments=tuple(treatments),
        demand=demand,
        travel_min=travel,
        baseline_volume=baseline_volume,
        baseline_flow=flows,
        meta={"baseline": "illustrative", "network": "default"},
    )
