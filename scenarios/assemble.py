"""Turn a dataset (tables) and a road network into an optimiser :class:`Instance`.

This is the one place where geo meets the optimiser: it picks a region's areas and sites,
pivots the tidy tables into arrays, takes travel times from the dataset's own matrix or from
the road network, and reconstructs the baseline flows (who goes where today).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.coverage import check_snap
from herschik.geo.dataset import baseline_source_line
from herschik.geo.network import is_osm_file, load_network
from herschik.geo.traveltime import area_site_travel
from herschik.geo.validation import check_intercity_times
from herschik.optimiser.baseline import reconstruct_baseline_flows
from herschik.optimiser.instance import Instance, ProcessNorm, Site, Treatment

from herschik.errors import DataError

ALL_REGIONS = "all"


def _pivot(
    table: pd.DataFrame,
    row_key: str,
    col_key: str,
    value: str,
    rows: Sequence[str],
    cols: Sequence[str],
    fill: float,
) -> np.ndarray:
    """Dense (rows x cols) array from a tidy table; pairs absent from the table get ``fill``."""
    out = np.full((len(rows), len(cols)), fill, dtype=float)
    row_index = pd.Index(rows)
    col_index = pd.Index(cols)
    r = row_index.get_indexer(table[row_key])
    c = col_index.get_indexer(table[col_key])
    keep = (r >= 0) & (c >= 0)
    out[r[keep], c[keep]] = table[value].to_numpy(dtype=float)[keep]
    return out


def network_label(network: Any) -> str:
    """``"default"`` for the embedded network, else the network file's name."""
    if network is None:
        return "default"
    if isinstance(network, (str, Path)):
        return Path(network).name
    return str(getattr(network, "graph", {}).get("name", "custom"))


def open_network(path: str | Path) -> Any:
    """Load a network file (herschik .npz or an OSM extract); bad files raise DataError."""



    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, None, "network file not found")
    try:
        return load_network(path)
    except (ValueError, OSError, KeyError, IndexError, TypeError, ElementTree.ParseError) as error:
        # whatever a parser raises on a malformed file is the file's problem (exit 2), not a bug
        message = " ".join(str(error).split())[:200] or type(error).__name__
        raise DataError(str(path), None, None, f"not a readable road network ({message})") from None


def travel_minutes(
    dataset: Any, area_ids: Sequence[str], site_ids: Sequence[str], network: Any = None
) -> np.ndarray:
    """Car minutes (areas x sites): the dataset's own matrix if it has one, else the network."""
    if dataset.travel_times is not None and network is None:
        return _pivot(
            dataset.travel_times, "area_id", "site_id", "minutes", area_ids, site_ids, np.inf
        )


    areas = dataset.areas.set_index("area_id").loc[list(area_ids)]
    sites = dataset.sites.set_index("site_id").loc[list(site_ids)]
    graph = network
    if isinstance(network, (str, Path)):
        # compact files go by path: read straight into arrays, or not at all on a cache hit
        if not Path(network).is_file():
            raise DataError(str(network), None, None, "network file not found")
        graph = open_network(network) if is_osm_file(network) else Path(network)
    try:
        travel = area_site_travel(
            areas[["x", "y"]].to_numpy(float), sites[["x", "y"]].to_numpy(float), network=graph
        )
    except (ValueError, OSError, KeyError) as error:
        if isinstance(error, DataError) or not isinstance(graph, Path):
            raise
        raise DataError(
            str(network), None, None, f"not a readable road network ({error})"
        ) from None
    source = network_label(network) if network is not None else "default road network"
    check_snap("area", _labels(areas), travel.area_snap_m, source)
    check_snap("site", _labels(sites), travel.site_snap_m, source)
    if network is not None:  # a user's network: its times as a whole, against known trips
        check_intercity_times(graph, source)
    return travel.minutes


def _labels(table: pd.DataFrame) -> list[str]:
    """``id name`` per row of an areas or sites table (indexed by id), for messages."""
    name_col = next((c for c in ("area_name", "site_name", "name") if c in table.columns), None)
    if name_col is None:
        return [str(i) for i in table.index]
    return [f"{i} {n}" for i, n in zip(table.index, table[name_col].astype(str))]


def _check_reachable(
    dataset: Any,
    travel: np.ndarray,
    area_ids: Sequence[str],
    site_ids: Sequence[str],
    demand: np.ndarray,
) -> None:
    """Refuse a network (or matrix) on which an area with patients, or a site, has no route."""

    source = "travel_times.csv" if dataset.travel_times is not None else "road network"
    reachable = np.isfinite(travel)
    stranded = np.nonzero(~reachable.any(axis=1) & (demand.sum(axis=1) > 0))[0]
    if len(stranded):
        raise DataError(
            source,
            None,
            "area_id",
            f"area {area_ids[stranded[0]]} has patients but no route to any site "
            f"({len(stranded)} such areas)",
        )
    isolated = np.nonzero(~reachable.any(axis=0))[0]
    if len(isolated) and len(area_ids):
        raise DataError(
            source,
            None,
            "site_id",
            f"site {site_ids[isolated[0]]} cannot be reached from any area "
            f"({len(isolated)} such sites)",
        )


def _stored_flows(dataset: Any, area_ids: Sequence[str], site_ids: Sequence[str],
                  treatment_ids: Sequence[str]) -> np.ndarray:
    """The dataset's own baseline flows (A, S, T); zeros where it has none."""
    out = np.zeros((len(area_ids), len(site_ids), len(treatment_ids)))
    flows = getattr(dataset, "baseline_flows", None)
    if flows is None or not len(flows):
        return out
    a = pd.Index(area_ids).get_indexer(flows["area_id"])
    s = pd.Index(site_ids).get_indexer(flows["site_id"])
    t = pd.Index(treatment_ids).get_indexer(flows["intervention_id"])
    keep = (a >= 0) & (s >= 0) & (t >= 0)
    out[a[keep], s[keep], t[keep]] = flows["patients"].to_numpy(float)[keep]
    return out


def treatment_objects(dataset: Any) -> tuple[Treatment, ...]:
    """The dataset's treatments to assign (kind volume or none) as model treatments."""
    return tuple(
        Treatment(
            id=row.intervention_id,
            group_id=row.group_id,
            name=row.name,
            norm=None if pd.isna(row.norm) else float(row.norm),
            tier_norms=row.tiers,
        )
        for row in dataset.assigned_treatments().itertuples(index=False)
    )


def process_norms(dataset: Any) -> tuple[ProcessNorm, ...]:
    """Process norms of the dataset (carried and reported, never optimised)."""
    return tuple(
        ProcessNorm(id=row.intervention_id, group_id=row.group_id, name=row.name,
                    value=float(row.norm), unit=row.norm_unit)
        for row in dataset.process_norm_rows().itertuples(index=False)
    )


def build_instance(dataset: Any, region_id: str, network: Any = None) -> Instance:
    """The planning instance of one region, or of the whole country for ``region_id="all"``.

    Baseline flows are reconstructed per region (patients are treated in their own region
    today), so a joint national instance starts from the same baseline as the regions.
    """
    regions = list(dataset.regions["region_id"])
    if region_id != ALL_REGIONS and region_id not in regions:
        raise KeyError(region_id)
    areas = dataset.areas
    sites = dataset.sites
    if region_id != ALL_REGIONS:
        areas = areas[areas["region_id"] == region_id]
        sites = sites[sites["region_id"] == region_id]
    area_ids = tuple(areas["area_id"])
    site_ids = tuple(sites["site_id"])
    treatments = treatment_objects(dataset)
    treatment_ids = [t.id for t in treatments]

    demand = _pivot(
        dataset.demand, "area_id", "intervention_id", "patients", area_ids, treatment_ids, 0.0
    )
    baseline_volume = _pivot(
        dataset.baseline_volumes,
        "site_id",
        "intervention_id",
        "volume",
        site_ids,
        treatment_ids,
        0.0,
    )
    travel = travel_minutes(dataset, area_ids, site_ids, network)
    _check_reachable(dataset, travel, area_ids, site_ids, demand)

    baseline_flow = np.zeros((len(area_ids), len(site_ids), len(treatment_ids)))
    area_region = areas["region_id"].to_numpy()
    site_region = sites["region_id"].to_numpy()
    stored = _stored_flows(dataset, area_ids, site_ids, treatment_ids)
    for region in sorted(set(area_region)):
        a_idx = np.nonzero(area_region == region)[0]
        s_idx = np.nonzero(site_region == region)[0]
        if len(s_idx) == 0:
            continue
        # treatments whose flows the data bring (an import) are taken as stored; the LP
        # reconstructs the others (it skips a treatment with neither demand nor volume)
        given = stored[a_idx].sum(axis=(0, 1)) > 0
        try:
            block = reconstruct_baseline_flows(
                np.where(given[None, :], 0.0, demand[a_idx]),
                travel[np.ix_(a_idx, s_idx)],
                np.where(given[None, :], 0.0, baseline_volume[s_idx]),
                treatment_ids=treatment_ids,
            )
            block[:, :, given] = stored[np.ix_(a_idx, s_idx, np.nonzero(given)[0])]
        except ValueError as error:
            source = "travel_times.csv" if dataset.travel_times is not None else "road network"
            raise DataError(
                "baseline_volumes.csv",
                None,
                "volume",
                f"region {region}: today's volumes cannot be reached over the {source}: {error}",
            ) from None
        baseline_flow[np.ix_(a_idx, s_idx, np.arange(len(treatment_ids)))] = block

    site_objects = tuple(
        Site(
            id=str(row.site_id),
            name=str(row.site_name),
            region_id=str(row.region_id),
            role=str(row.hn_role) if isinstance(row.hn_role, str) and row.hn_role else "PP",
            organisation=str(row.organisation),
        )
        for row in sites.itertuples(index=False)
    )
    return Instance(
        region_id=region_id,
        area_ids=area_ids,
        sites=site_objects,
        treatments=treatments,
        demand=demand,
        travel_min=travel,
        baseline_volume=baseline_volume,
        baseline_flow=baseline_flow,
        process_norms=process_norms(dataset),
        meta={
            "baseline": dataset.baseline_kind,
            "baseline_source": baseline_source_line(getattr(dataset, "meta", {}) or {}),
            "network": "travel_times.csv"
            if dataset.travel_times is not None and network is None
            else network_label(network),
            "dataset": str(dataset.name),
        },
        area_names=tuple(str(n) for n in areas["area_name"]) if "area_name" in areas else (),
    )

