"""A small but realistic result built by hand (no solver): 36 areas on a grid of square polygons
near Utrecht in RD New (one a MultiPolygon, one with a hole), six sites, three treatments with a
norm; after reallocation some sites lose a treatment, one gains one, one area is split over two
sites. The contract tables come from nearest-site assignments, so volumes and travel times are
consistent. Used by the export and report tests (the ``make_result`` fixture)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from herschik.geo.export import ASSIGNMENT_COLUMNS, SITE_VOLUME_COLUMNS
from scipy.stats import poisson
from shapely.geometry import MultiPolygon, Polygon, box

X0, Y0, CELL = 125_000.0, 445_000.0, 4_000.0
SITES = [
    # site_id, name, organisation, type, x, y
    ("S1", "UMC Utrecht", "UMC Utrecht", "umc", 137_500.0, 455_500.0),
    ("S2", "Diakonessenhuis", "Diakonessenhuis", "general", 131_000.0, 449_000.0),
    ("S3", "St. Antonius Nieuwegein", "St. Antonius", "general", 133_000.0, 463_000.0),
    ("S4", "Meander Amersfoort", "Meander MC", "general", 145_000.0, 464_000.0),
    ("S5", "Gelre & Vallei", "Gelderse Vallei", "general", 146_000.0, 448_000.0),
    ("S6", "Tergooi Hilversum", "Tergooi MC", "general", 128_000.0, 466_000.0),
]
# treatment -> (norm, {site: provides before}, {site: provides after})
TREATMENTS = {
    "oesophagus": (8.0, {"S1", "S2", "S3", "S4"}, {"S1", "S4"}),
    "pancreas": (3.0, {"S1", "S3", "S5"}, {"S1", "S5"}),
    "rectum": (20.0, {"S2", "S4"}, {"S2", "S4", "S6"}),
}
RATE = {"oesophagus": 0.9, "pancreas": 0.6, "rectum": 3.5}  # patients per area


@dataclass
class FakeDataset:
    """Duck-typed stand-in for geo.dataset.Dataset (only what the outputs use)."""

    sites: pd.DataFrame
    areas: pd.DataFrame
    area_geometries: gpd.GeoDataFrame | None
    treatments: pd.DataFrame
    regions: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


def _minutes(ax: float, ay: float, sx: float, sy: float) -> float:
    return round(4.0 + 1.3 * math.hypot(ax - sx, ay - sy) / 1000.0, 3)


def make_result(region_id: str = "midden"
                 ) -> tuple[dict, pd.DataFrame, pd.DataFrame, FakeDataset]:
    """(summary, site_volumes, assignments, dataset) of a small consistent solved run."""
    sites = pd.DataFrame(SITES, columns=["site_id", "site_name", "organisation", "site_type",
                                         "x", "y"])
    sites["topclinical"] = sites["site_type"] == "umc"
    sites["hn_role"] = ""
    sites["region_id"] = region_id
    sites["municipality_code"] = "GM0344"
    rows, polys = [], []
    for i in range(6):
        for j in range(6):
            aid = f"WK{i}{j}"
            poly: Any = box(X0 + i * CELL, Y0 + j * CELL, X0 + (i + 1) * CELL, Y0 + (j + 1) * CELL)
            if (i, j) == (2, 2):  # a polygon with a hole
                poly = Polygon(poly.exterior.coords, [box(X0 + 2.4 * CELL, Y0 + 2.4 * CELL,
                                                          X0 + 2.6 * CELL,
                                                          Y0 + 2.6 * CELL).exterior.coords])
            if (i, j) == (5, 5):  # a MultiPolygon (island)
                poly = MultiPolygon([poly, box(X0 + 6.2 * CELL, Y0 + 5.2 * CELL,
                                               X0 + 6.6 * CELL, Y0 + 5.6 * CELL)])
            cx, cy = X0 + (i + 0.5) * CELL, Y0 + (j + 0.5) * CELL
            rows.append((aid, f"Wijk {i}-{j}", "GM0344", region_id, 5000 + 100 * i, 900, cx, cy))
            polys.append(poly)
    areas = pd.DataFrame(rows, columns=["area_id", "area_name", "municipality_code", "region_id",
                                        "population", "pop_65plus", "x", "y"])
    area_geoms = gpd.GeoDataFrame({"area_id": areas["area_id"]}, geometry=polys, crs=28992)
    xy = sites.set_index("site_id")[["x", "y"]]

    asg_rows, sv_rows = [], []
    site_name = dict(zip(sites["site_id"], sites["site_name"], strict=True))
    for t, (norm, before, after) in TREATMENTS.items():
        vol_before: dict[str, float] = {s: 0.0 for s in sites["site_id"]}
        vol_after: dict[str, float] = {s: 0.0 for s in sites["site_id"]}
        for _, a in areas.iterrows():
            spread = (int(a.area_id[2]) + int(a.area_id[3])) % 4
            patients = round(RATE[t] * (1 + 0.05 * spread), 3)
            tb = {s: _minutes(a.x, a.y, *xy.loc[s]) for s in before}
            ta = {s: _minutes(a.x, a.y, *xy.loc[s]) for s in after}
            sb = min(tb, key=lambda s: (tb[s], s))
            sa = min(ta, key=lambda s: (ta[s], s))
            vol_before[sb] += patients
            split = [(sa, patients)]
            if t == "oesophagus" and a.area_id == "WK33":  # one split area
                other = sorted(after - {sa})[0]
                split = [(sa, round(patients * 0.7, 3)), (other, round(patients * 0.3, 3))]
            for s, p in split:
                vol_after[s] += p
                move = ("stays" if s == sb else "moved_optional" if sb in after
                        else "displaced")
                asg_rows.append((region_id, a.area_id, a.area_name, t, s, site_name[s], p,
                                 ta[s], tb[sb], round(ta[s] - tb[sb], 3), sb, site_name[sb],
                                 tb[sb], move, "optimal"))
        for s, name in zip(sites["site_id"], sites["site_name"], strict=True):
            # the odds of meeting the norm: Poisson around the volume after, kept sites only
            odds = (round(float(poisson.sf(math.ceil(norm) - 1, round(vol_after[s], 3))), 6)
                    if s in after else None)
            sv_rows.append((region_id, s, name, t, norm, norm * 1.1, round(vol_before[s], 3),
                            round(vol_after[s], 3), s in before, s in after, odds, odds,
                            "optimal"))
    site_volumes = pd.DataFrame(sv_rows, columns=SITE_VOLUME_COLUMNS)
    assignments = pd.DataFrame(asg_rows, columns=ASSIGNMENT_COLUMNS)
    w = assignments["patients"]
    extra = assignments["extra_min"]
    summary = {
        "contract": 1, "region_id": region_id,
        "scenario": {"margin": 0.1, "margin_by_treatment": {}, "max_travel": 60.0,
                     "max_extra_travel": None, "objective": "travel", "solver": "highs",
                     "force_close": [], "bundles": [["oesophagus", "pancreas"]]},
        "status": "optimal", "objective": 1234.5, "mip_gap": 0.0, "build_seconds": 0.12,
        "solve_seconds": 0.34, "solver": "highs",
        "kpis": {
            "patients": float(w.sum()),
            "patients_moved": float(w[extra > 0].sum()),
            "mean_travel_min_before": float((w * assignments["travel_min_before"]).sum() / w.sum()),
            "mean_travel_min_after": float((w * assignments["travel_min"]).sum() / w.sum()),
            "mean_extra_min": float((w * extra).sum() / w.sum()),
            "p90_extra_min": float(np.quantile(extra, 0.9)),
            "max_extra_min": float(extra.max()),
            "max_travel_min_after": float(assignments["travel_min"].max()),
            "providers_before": {t: len(v[1]) for t, v in TREATMENTS.items()},
            "providers_after": {t: len(v[2]) for t, v in TREATMENTS.items()},
            "shared_care": {"mean_travel_min_per_patient_year": 80.5,
                            "shared_care_travel_min_per_patient_year": 52.25},
        },
        "diagnosis": None, "baseline": "illustrative", "network": "default",
        "decomposition": "split by treatment: 2 independent sub-problems (bundle)",
        "subproblems": [{"treatments": ["oesophagus", "pancreas"], "status": "optimal",
                         "gap": 0.0, "variables": 420, "seconds": 0.2},
                        {"treatments": ["rectum"], "status": "optimal", "gap": 0.0,
                         "variables": 210, "seconds": 0.1}],
        "warnings": ["travel times from straight-line distance in this test"],
    }
    dataset = FakeDataset(
        sites=sites, areas=areas, area_geometries=area_geoms,
        treatments=pd.DataFrame({"intervention_id": list(TREATMENTS),
                                 "name": ["Oesophagus resection", "Pancreas resection",
                                          "Rectum cancer surgery"],
                                 "kind": "volume", "norm": [v[0] for v in TREATMENTS.values()]}),
        regions=pd.DataFrame({"region_id": [region_id], "region_name": ["Midden-Nederland"]}),
        meta={"name": "test", "baseline": "illustrative"},
    )
    return summary, site_volumes, assignments, dataset
