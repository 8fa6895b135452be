"""Build the small synthetic example region shipped as package data (``geo/data/example``).

The example is *synthetic*: 40 origin areas and 6 hospital sites placed in a 80 x 60 km box
in RD New coordinates, with travel times from straight-line distance (detour factor 1.3 at
70 km/h plus 6 minutes of access), demand proportional to an age-weighted population and an
illustrative baseline. It exists so that every command works offline and tests have a fixture
of realistic shape; it describes no real hospital.

Run ``python tools/build_example.py`` to rebuild; the output is deterministic.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "geo" / "data" / "example"
SEED = 20260101
REGION_ID = "example"
# Box in RD New (metres), inland so that every point is inside the Netherlands' RD bounds.
X_MIN, X_MAX, Y_MIN, Y_MAX = 160_000.0, 240_000.0, 470_000.0, 530_000.0
DETOUR, SPEED_KMH, ACCESS_MIN = 1.3, 70.0, 6.0
AGE_WEIGHT_65PLUS = 4.0

# (intervention_id, group_id, name, kind, norm, tier_norms, yearly patients in the region,
#  baseline providers among the 6 sites). Norms from the tranche-1 table; the volumes are
# illustrative and chosen so that several providers fall below their norm today.
TREATMENTS: list[tuple[str, str, str, str, float | None, str, float, int]] = [
    (
        "hn_new",
        "head_neck",
        "Head and neck cancer: new patients",
        "volume",
        80,
        "HHOC:200;PP:80;PPR:50",
        420,
        3,
    ),
    (
        "hn_flap",
        "head_neck",
        "Head and neck cancer: free flap reconstructions",
        "volume",
        20,
        "",
        60,
        2,
    ),
    ("hn_resection", "head_neck", "Head and neck cancer: resections", "volume", 50, "", 130, 3),
    (
        "hn_radiotherapy",
        "head_neck",
        "Head and neck cancer: radiotherapy",
        "volume",
        50,
        "",
        260,
        3,
    ),
    (
        "og_resection",
        "oesophagus_stomach",
        "Oesophageal and gastric cancer: resections",
        "volume",
        75,
        "",
        160,
        3,
    ),
    (
        "og_endoscopic",
        "oesophagus_stomach",
        "Oesophageal and gastric cancer: endoscopic resections",
        "volume",
        25,
        "",
        70,
        3,
    ),
    (
        "og_radiotherapy",
        "oesophagus_stomach",
        "Oesophageal and gastric cancer: radiotherapy",
        "volume",
        50,
        "",
        180,
        3,
    ),
    (
        "og_systemic",
        "oesophagus_stomach",
        "Oesophageal and gastric cancer: systemic treatment",
        "volume",
        50,
        "",
        260,
        6,
    ),
    ("lung_resection", "lung", "Lung cancer: resections", "volume", 60, "", 300, 5),
    ("lung_radiotherapy", "lung", "Lung cancer: radiotherapy", "volume", 50, "", 420, 3),
    ("lung_systemic", "lung", "Lung cancer: systemic treatment", "none", None, "", 900, 6),
    ("kidney_local", "kidney", "Kidney cancer: local treatment", "volume", 75, "", 230, 5),
    ("kidney_systemic", "kidney", "Kidney cancer: systemic treatment", "volume", 50, "", 140, 4),
    ("pancreas_resection", "pancreas", "Pancreatic cancer: resections", "volume", 50, "", 110, 3),
    ("pancreas_ercp", "pancreas", "Pancreatic cancer: ERCP", "volume", 150, "", 520, 5),
    (
        "pancreas_systemic",
        "pancreas",
        "Pancreatic cancer: systemic therapy",
        "volume",
        30,
        "",
        210,
        6,
    ),
    (
        "aaa_surgery",
        "aorta",
        "Aortic aneurysm: surgical treatment (incl. acute)",
        "volume",
        50,
        "",
        230,
        5,
    ),
    (
        "aaa_complex_evar",
        "aorta",
        "Aortic aneurysm: complex endovascular surgery",
        "volume",
        15,
        "",
        35,
        2,
    ),
    (
        "carotid_intervention",
        "carotid",
        "Carotid stenosis: carotid intervention",
        "volume",
        20,
        "",
        170,
        6,
    ),
]
PROCESS_NORMS = [
    (
        "carotid_1week",
        "carotid",
        "Carotid stenosis: treated within one week",
        "process",
        50,
        "percent_within_7_days",
    ),
    (
        "carotid_2weeks",
        "carotid",
        "Carotid stenosis: treated within two weeks",
        "process",
        80,
        "percent_within_14_days",
    ),
]
SITES = [  # (site_id, name, type, hn_role); placed at the centroids of the most populous areas
    ("EX-UMC", "Example University Medical Centre", "umc", "HHOC"),
    ("EX-NORTH", "Example North Hospital", "general", "PP"),
    ("EX-SOUTH", "Example South Hospital", "general", "PP"),
    ("EX-EAST", "Example East Hospital", "general", "PPR"),
    ("EX-WEST", "Example West Hospital", "general", "PP"),
    ("EX-LAKE", "Example Lakeside Hospital", "general", "PP"),
]


def _areas(rng: np.random.Generator) -> gpd.GeoDataFrame:
    n_areas = 40
    x = rng.uniform(X_MIN + 2_000, X_MAX - 2_000, n_areas)
    y = rng.uniform(Y_MIN + 2_000, Y_MAX - 2_000, n_areas)
    population = np.round(rng.lognormal(mean=10.2, sigma=0.7, size=n_areas)).astype(int)
    share_65 = rng.uniform(0.15, 0.28, n_areas)
    points = shapely.points(x, y)
    box = shapely.box(X_MIN, Y_MIN, X_MAX, Y_MAX)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=box))
    # voronoi_polygons returns cells in arbitrary order: match each cell to its generating point.
    polygons = []
    for point in points:
        cell = next(c for c in cells if c.contains(point))
        polygons.append(shapely.intersection(cell, box))
    frame = gpd.GeoDataFrame(
        {
            "area_id": [f"EXA{i:03d}" for i in range(n_areas)],
            "area_name": [f"Example area {i}" for i in range(n_areas)],
            "municipality_code": [f"GMX{i // 4:03d}" for i in range(n_areas)],
            "region_id": REGION_ID,
            "population": population,
            "pop_65plus": np.round(population * share_65).astype(int),
            "x": np.round(x, 1),
            "y": np.round(y, 1),
        },
        geometry=polygons,
        crs="EPSG:28992",
    )
    return frame


def _sites(areas: gpd.GeoDataFrame) -> pd.DataFrame:
    biggest = areas.sort_values("population", ascending=False).head(len(SITES))
    rows = []
    for (site_id, name, site_type, role), (_, area) in zip(SITES, biggest.iterrows()):
        rows.append(
            {
                "site_id": site_id,
                "site_name": name,
                "organisation": name,
                "site_type": site_type,
                "topclinical": site_type == "general" and role == "PPR",
                "hn_role": role,
                "region_id": REGION_ID,
                "municipality_code": area["municipality_code"],
                "x": round(float(area["x"]) + 500.0, 1),
                "y": round(float(area["y"]) + 500.0, 1),
            }
        )
    return pd.DataFrame(rows)


def _travel(areas: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    dx = areas["x"].to_numpy()[:, None] - sites["x"].to_numpy()[None, :]
    dy = areas["y"].to_numpy()[:, None] - sites["y"].to_numpy()[None, :]
    km = np.hypot(dx, dy) / 1000.0
    minutes = ACCESS_MIN + km * DETOUR / SPEED_KMH * 60.0
    a_idx, s_idx = np.meshgrid(np.arange(len(areas)), np.arange(len(sites)), indexing="ij")
    return pd.DataFrame(
        {
            "area_id": areas["area_id"].to_numpy()[a_idx.ravel()],
            "site_id": sites["site_id"].to_numpy()[s_idx.ravel()],
            "minutes": np.round(minutes.ravel(), 1),
        }
    )


def _demand(areas: pd.DataFrame) -> pd.DataFrame:
    weight = (areas["population"] - areas["pop_65plus"]) + AGE_WEIGHT_65PLUS * areas["pop_65plus"]
    share = (weight / weight.sum()).to_numpy()
    rows = []
    for treatment_id, *_rest, total, _providers in TREATMENTS:
        for area_id, value in zip(areas["area_id"], share * total):
            rows.append(
                {"area_id": area_id, "intervention_id": treatment_id, "patients": round(value, 4)}
            )
    frame = pd.DataFrame(rows)
    # Re-balance rounding so that each treatment sums exactly to its total.
    for treatment_id, *_rest, total, _providers in TREATMENTS:
        mask = frame["intervention_id"] == treatment_id
        first = frame.index[mask][0]
        frame.loc[first, "patients"] = round(
            frame.loc[first, "patients"] + total - frame.loc[mask, "patients"].sum(), 4
        )
    return frame


def _baseline(sites: pd.DataFrame, demand: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    # Providers favour the UMC, then the larger hospitals (site order = size order).
    size_weight = np.array([3.0, 1.6, 1.3, 1.1, 0.9, 0.7])
    rows = []
    for treatment_id, *_rest, _total, n_providers in TREATMENTS:
        total = demand.loc[demand["intervention_id"] == treatment_id, "patients"].sum()
        chosen = np.arange(n_providers)
        weights = size_weight[chosen] * rng.uniform(0.7, 1.3, n_providers)
        volumes = np.round(total * weights / weights.sum(), 4)
        volumes[0] = round(total - volumes[1:].sum(), 4)
        for s, volume in zip(chosen, volumes):
            rows.append(
                {
                    "site_id": sites["site_id"].iloc[s],
                    "intervention_id": treatment_id,
                    "volume": volume,
                }
            )
    return pd.DataFrame(rows)


def _treatments() -> pd.DataFrame:
    rows = [
        {
            "intervention_id": tid,
            "group_id": group,
            "name": name,
            "kind": kind,
            "norm": norm,
            "norm_unit": "patients_per_year" if norm is not None else "none",
            "tier_norms": tiers,
        }
        for tid, group, name, kind, norm, tiers, _total, _providers in TREATMENTS
    ]
    rows += [
        {
            "intervention_id": tid,
            "group_id": group,
            "name": name,
            "kind": kind,
            "norm": value,
            "norm_unit": unit,
            "tier_norms": "",
        }
        for tid, group, name, kind, value, unit in PROCESS_NORMS
    ]
    return pd.DataFrame(rows)


def build_example(out_dir: Path = EXAMPLE_DIR) -> None:
    """Write the example dataset (DATA_FORMAT.md) to ``out_dir``."""
    rng = np.random.default_rng(SEED)
    areas = _areas(rng)
    sites = _sites(areas)
    demand = _demand(areas)
    baseline = _baseline(sites, demand, rng)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": "example",
        "baseline": "illustrative",
        "description": (
            "Synthetic example region (40 areas, 6 sites) for tests and demos. Sites, areas, "
            "demand, baseline volumes and travel times are illustrative, not real hospitals."
        ),
        "crs": "EPSG:28992",
        # invented places (one area lies in the Markermeer): no check that points are on land
        "synthetic": True,
    }
    (out_dir / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    pd.DataFrame([{"region_id": REGION_ID, "region_name": "Example region (synthetic)"}]).to_csv(
        out_dir / "regions.csv", index=False
    )
    sites.to_csv(out_dir / "sites.csv", index=False)
    areas.drop(columns="geometry").to_csv(out_dir / "areas.csv", index=False)
    areas[["area_id", "geometry"]].to_file(out_dir / "areas.gpkg", layer="areas", engine="pyogrio")
    _treatments().to_csv(out_dir / "treatments.csv", index=False)
    demand.to_csv(out_dir / "demand.csv", index=False)
    baseline.to_csv(out_dir / "baseline_volumes.csv", index=False)
    _travel(areas, sites).to_csv(out_dir / "travel_times.csv", index=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EXAMPLE_DIR)
    build_example(parser.parse_args(argv).out)


if __name__ == "__main__":
    main()
