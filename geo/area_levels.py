"""One status quo at every area level: a dataset re-expressed on coarser origin areas.

Today's providers and yearly volumes are a fact per site and treatment
(``baseline_volumes.csv``); the area level only changes where patients come from. So a coarser
area level (municipalities, or a planner's own grouping of districts) is *derived* from the
finest dataset: sites, treatments, regions and baseline volumes are taken over unchanged, the
demand (and stored baseline flows, if any) of the fine areas is summed per coarse area. Each
region's demand therefore stays equal to its sites' volumes, and the flows reconstructed from
it reproduce every site's volume exactly at both levels (tests/geo/test_status_quo.py).

Before this module the embedded municipality dataset was generated separately from the
district one; its seeded illustrative baseline then differed (210 site x treatment providers
and 769 volumes over the seven regions, issue 22).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from herschik.errors import DataError


def coarsen_dataset(fine: Any, coarse_areas: pd.DataFrame, coarse_geometries: Any,
                    key: str, meta: dict[str, Any] | None = None) -> Any:
    """``fine`` on the areas of ``coarse_areas``; fine area ``a`` belongs to the coarse area
    whose ``area_id`` equals ``fine.areas[key]`` of ``a`` (e.g. ``key="municipality_code"``).

    Demand and baseline flows are summed (rounded to 4 decimals like the files); sites,
    treatments, regions and baseline volumes are the fine dataset's own. Raises
    :class:`DataError` when a fine area maps to no coarse area or to one of another region.
    """
    mapping = fine.areas[["area_id", key, "region_id"]].rename(
        columns={key: "coarse_id", "region_id": "fine_region"})
    coarse_region = coarse_areas.set_index("area_id")["region_id"]
    mapping["coarse_region"] = mapping["coarse_id"].map(coarse_region)
    missing = mapping["coarse_region"].isna().to_numpy()
    if missing.any():
        row = int(missing.argmax())
        raise DataError("areas.csv", row + 1, key,
                        f"area {mapping['area_id'].iloc[row]} maps to "
                        f"{mapping['coarse_id'].iloc[row]!r}, which is not a coarser area")
    crossing = (mapping["coarse_region"] != mapping["fine_region"]).to_numpy()
    if crossing.any():
        row = int(crossing.argmax())
        raise DataError("areas.csv", row + 1, "region_id",
                        f"area {mapping['area_id'].iloc[row]} is in region "
                        f"{mapping['fine_region'].iloc[row]} but its coarser area "
                        f"{mapping['coarse_id'].iloc[row]} in {mapping['coarse_region'].iloc[row]}")
    to_coarse = mapping.set_index("area_id")["coarse_id"]
    demand = _sum_by(fine.demand, to_coarse, ["area_id", "intervention_id"], "patients")
    flows = None
    if fine.baseline_flows is not None:
        flows = _sum_by(fine.baseline_flows, to_coarse,
                        ["area_id", "site_id", "intervention_id"], "patients")
    # dataclasses.replace keeps the fine dataset's class (geo/dataset.py imports this module)
    return dataclasses.replace(
        fine,
        name=str((meta or {}).get("name", fine.name)),
        meta=dict(fine.meta, **(meta or {})),
        regions=fine.regions.copy(),
        sites=fine.sites.copy(),
        areas=coarse_areas.reset_index(drop=True).copy(),
        area_geometries=coarse_geometries,
        treatments=fine.treatments.copy(),
        demand=demand,
        baseline_volumes=fine.baseline_volumes.copy(),
        travel_times=None,
        baseline_flows=flows,
    )


def _sum_by(table: pd.DataFrame, to_coarse: pd.Series, keys: list[str],
            value: str) -> pd.DataFrame:
    out = table.assign(area_id=table["area_id"].map(to_coarse))
    out = out.groupby(keys, sort=True, as_index=False)[value].sum()
    out[value] = out[value].round(4)
    return out[out[value] > 0].reset_index(drop=True)
