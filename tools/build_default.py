"""Build the embedded national default dataset from raw public data (run by hand).

    python tools/build_default.py --raw ../shared/data/raw --facts ../shared/data/tranche1 \\
        --out geo/data/default [--municipalities-out geo/data/default_municipalities]

Inputs (never copied into the project): CBS/PDOK 2022 districts and municipalities with
population (``raw/cbs_tmap``), RIVM hospital locations 2016 (``raw/rivm_mapnl``), national
yearly volumes from the Dutch audits (``raw/literature_volumes``), and the tranche-1 norms and
per-region provider counts (``facts``). Curated tables that users may edit live beside the
output: ``geo/data/municipality_regions.csv`` (municipality -> region) and
``geo/data/site_changes.csv`` (hospital changes since 2016). Every step is documented in
``DATA.md``. The build is deterministic: same inputs -> byte-identical CSV files.

The baseline volumes are ILLUSTRATIVE: public per-hospital volumes are not available, so they
are generated (seeded) to reproduce the per-region provider / below-norm counts of the tranche-1
report and to balance each region's demand.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from herschik.geo.dataset import Dataset
from herschik.geo.dataset_export import export_dataset
from herschik.geo.schema import CRS, format_tier_norms, parse_tier_norms

DATA_DIR = Path(__file__).resolve().parents[1] / "geo" / "data"
REGION_TABLE = DATA_DIR / "municipality_regions.csv"
SITE_CHANGES = DATA_DIR / "site_changes.csv"

SEED = 20221
#: demand weight of a person aged 65+ relative to a person under 65 (see DATA.md)
W65 = 4.0
#: simplification tolerance (m) of the committed area polygons
SIMPLIFY_M = 75.0
#: typical provider volume as a multiple of the norm (derived totals, provider counts)
TYPICAL = 1.5
#: volumes of providers meeting the norm are at least this multiple of it
ABOVE_MIN = 1.1
#: volumes of providers below the norm lie in this range (multiples of the norm)
BELOW_RANGE = (0.3, 0.85)

REGIONS: list[tuple[str, str]] = [
    ("noordoost", "Noordoost-Nederland"),
    ("noord_holland_flevoland", "Noord-Holland/Flevoland"),
    ("oost", "Oost-Nederland"),
    ("midden", "Midden-Nederland"),
    ("west", "West-Nederland"),
    ("zuidwest", "Zuidwest-Nederland"),
    ("zuidoost", "Zuidoost-Nederland"),
]
ONCOLOGY_GROUPS = {"head_neck", "oesophagus_stomach", "lung", "kidney", "pancreas"}

# ------------------------------------------------------------------ region rules (seed table)
PROVINCE_REGION = {
    "Groningen": "noordoost",
    "Fryslan": "noordoost",
    "Drenthe": "noordoost",
    "Overijssel": "oost",
    "Flevoland": "noord_holland_flevoland",
    "Gelderland": "oost",
    "Utrecht": "midden",
    "Noord-Holland": "noord_holland_flevoland",
    "Zuid-Holland": "zuidwest",
    "Zeeland": "zuidwest",
    "Noord-Brabant": "zuidoost",
    "Limburg": "zuidoost",
}
REGION_EXCEPTIONS: dict[str, tuple[str, str]] = {}


def _exceptions(region: str, reason: str, codes: str) -> None:
    for code in codes.split():
        REGION_EXCEPTIONS[f"GM{code}"] = (region, reason)


_exceptions("noordoost", "Noordoostpolder and Urk: oriented to Zwolle/Emmeloord (sketch)",
            "0171 0184")
_exceptions("noordoost", "northern Overijssel around Zwolle and the Vechtdal (Isala, Saxenburgh)",
            "0193 0166 1896 0180 1708 0148 0175 0160")
_exceptions("noordoost", "Salland around Deventer: follows the Zwolle acute-care network; "
            "deviates from the sketch (which puts it in oost) so that noordoost has the 16 "
            "hospital locations its largest provider count needs", "0150 0177 1773")
_exceptions("midden", "Gooi en Vechtstreek (Tergooi, Hilversum) -> UMC Utrecht network (sketch)",
            "0402 1942 0406 0376 0417 1696")
_exceptions("midden", "Gelderse Vallei (Ziekenhuis Gelderse Vallei, Ede) -> UMC Utrecht network "
            "(sketch)", "0228 0289 0203 0279")
_exceptions("midden", "Nijkerk: catchment of Meander MC Amersfoort", "0267")
_exceptions("west", "Zuid-Holland north: Leiden, Duin- en Bollenstreek, Rijnland (LUMC network)",
            "0484 0534 1884 0537 0546 0547 0553 0569 0575 0579 1525 0626 0638")
_exceptions("west", "Zuid-Holland north: Haaglanden (Den Haag, Delft, Zoetermeer, Westland)",
            "0518 0503 1916 1842 1926 0603 0629 1783 0637")
_exceptions("west", "Zuid-Holland north: Midden-Holland (Gouda, Groene Hart Ziekenhuis)",
            "1901 0513 1931 0627 1892")
_exceptions("zuidwest", "West-Brabant (Breda, Roosendaal, Bergen op Zoom) -> Erasmus MC network "
            "(sketch)", "0748 1674 0758 0777 1655 1709 0840 0851 0873 0879 0826 1719 0779 "
            "1723 0744 0784 1959")


def default_region_table(munis: pd.DataFrame) -> pd.DataFrame:
    """The seed municipality -> region table from the province rules plus named exceptions."""
    rows = []
    for code, name, province in munis[["code", "name", "province"]].itertuples(index=False):
        if code in REGION_EXCEPTIONS:
            region, reason = REGION_EXCEPTIONS[code]
        else:
            region = PROVINCE_REGION[province]
            reason = f"province {province}"
            if province == "Gelderland":
                reason += " (incl. Rivierenland, kept in oost; see DATA.md)"
            elif province == "Overijssel":
                reason += " (Twente)"
            elif province == "Noord-Brabant":
                reason += " (rest of Noord-Brabant)"
            elif province == "Zuid-Holland":
                reason += " (south: Rotterdam-Rijnmond, Drechtsteden, Gorinchem, islands)"
        rows.append((code, name, province, region, reason))
    table = pd.DataFrame(
        rows, columns=["municipality_code", "municipality_name", "province", "region_id", "reason"]
    )
    return table.sort_values("municipality_code").reset_index(drop=True)


# ------------------------------------------------------------------ helpers
def _crc(*parts: str) -> int:
    return zlib.crc32("|".join(parts).encode("utf-8"))


def _rng(*parts: str) -> np.random.Generator:
    return np.random.default_rng([SEED, _crc(*parts)])


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers summing to ``total`` proportional to ``weights`` (largest remainder)."""
    weights = np.asarray(weights, dtype=float)
    if total == 0 or weights.sum() <= 0:
        out = np.zeros(len(weights), dtype=np.int64)
        if total and len(weights):
            out[0] = total
        return out
    exact = total * weights / weights.sum()
    base = np.floor(exact).astype(np.int64)
    rest = int(total - base.sum())
    order = np.lexsort((np.arange(len(weights)), -(exact - base)))
    base[order[:rest]] += 1
    return base


# ------------------------------------------------------------------ areas
def build_areas(raw: Path, regions: pd.DataFrame) -> tuple[pd.DataFrame, object, pd.DataFrame]:
    """Districts (wijken) with reconciled population, 65+ counts, centroids and region.

    Returns (areas table, simplified geometries GeoDataFrame, municipalities GeoDataFrame).
    """
    import geopandas as gpd
    import shapely

    munis = gpd.read_file(raw / "cbs_tmap" / "NLD_muni_2022.gpkg", engine="pyogrio")
    dists = gpd.read_file(raw / "cbs_tmap" / "NLD_dist_2022.gpkg", engine="pyogrio")
    for frame in (munis, dists):
        if frame.crs is None:
            frame.set_crs(CRS, inplace=True)
    munis = munis.to_crs(CRS).sort_values("code").reset_index(drop=True)
    dists = dists.to_crs(CRS).sort_values("code").reset_index(drop=True)
    dists["municipality_code"] = "GM" + dists["code"].str[2:6]
    unknown = set(dists["municipality_code"]) - set(munis["code"])
    if unknown:
        raise SystemExit(f"districts of unknown municipalities: {sorted(unknown)[:5]}")

    # Population: distribute each municipality's remainder (municipality total minus the sum of
    # its districts) over its districts by population (largest remainder), so districts sum to
    # the municipality totals and the country to 17,590,672.
    pop = dists["population"].astype(np.int64).to_numpy().copy()
    muni_pop = munis.set_index("code")["population"].astype(np.int64)
    for code, idx in dists.groupby("municipality_code").indices.items():
        remainder = int(muni_pop[code] - pop[idx].sum())
        if remainder == 0:
            continue
        weights = pop[idx].astype(float)
        if weights.sum() == 0:
            weights = np.ones(len(idx))
        if remainder > 0:
            pop[idx] += _largest_remainder(remainder, weights)
        else:
            take = _largest_remainder(-remainder, weights)
            take = np.minimum(take, pop[idx])
            short = -remainder - int(take.sum())
            if short:
                raise SystemExit(f"cannot reconcile population of {code}")
            pop[idx] -= take
    dists["population_reconciled"] = pop

    # 65+ share: the district's rounded percentage, else the municipality's
    muni_share = munis.set_index("code")["pop_65plus"]
    share = dists["pop_65plus"].fillna(dists["municipality_code"].map(muni_share))
    dists["pop65"] = np.round(pop * share.to_numpy() / 100.0).astype(np.int64)

    # Demand centroid: polygon centroid when it lies inside the polygon, else the polygon's
    # representative point (population-weighted centroids need finer data than we have).
    centroid = dists.geometry.centroid
    inside = dists.geometry.contains(centroid).to_numpy()
    rep = dists.geometry.representative_point()
    point = np.where(inside, centroid.to_numpy(), rep.to_numpy())
    xs = np.round(shapely.get_x(point), 1)
    ys = np.round(shapely.get_y(point), 1)

    region_of = regions.set_index("municipality_code")["region_id"]
    missing = sorted(set(munis["code"]) - set(region_of.index))
    if missing:
        raise SystemExit(f"{REGION_TABLE.name}: no region for municipalities {missing[:5]}")
    areas = pd.DataFrame(
        {
            "area_id": dists["code"].to_numpy(),
            "area_name": dists["name"].to_numpy(),
            "municipality_code": dists["municipality_code"].to_numpy(),
            "region_id": dists["municipality_code"].map(region_of).to_numpy(),
            "population": pop,
            "pop_65plus": dists["pop65"].to_numpy(),
            "x": xs,
            "y": ys,
        }
    )
    geoms = shapely.simplify(dists.geometry.to_numpy(), SIMPLIFY_M, preserve_topology=True)
    geoms = shapely.set_precision(geoms, 1.0)
    geoms = shapely.make_valid(geoms)
    geometries = gpd.GeoDataFrame({"area_id": areas["area_id"]}, geometry=geoms, crs=CRS)
    return areas, geometries, munis


def build_municipality_areas(munis: object, regions: pd.DataFrame,
                             areas: pd.DataFrame) -> tuple[pd.DataFrame, object]:
    """Municipalities as the coarser area unit (population and 65+ summed from districts)."""
    import geopandas as gpd
    import shapely

    grouped = areas.groupby("municipality_code").agg(
        population=("population", "sum"), pop_65plus=("pop_65plus", "sum")
    )
    m = munis.set_index("code")  # type: ignore[attr-defined]
    centroid = m.geometry.centroid
    inside = m.geometry.contains(centroid).to_numpy()
    point = np.where(inside, centroid.to_numpy(), m.geometry.representative_point().to_numpy())
    region_of = regions.set_index("municipality_code")["region_id"]
    out = pd.DataFrame(
        {
            "area_id": m.index.to_numpy(),
            "area_name": m["name"].to_numpy(),
            "municipality_code": m.index.to_numpy(),
            "region_id": m.index.map(region_of).to_numpy(),
            "population": grouped.reindex(m.index)["population"].to_numpy(np.int64),
            "pop_65plus": grouped.reindex(m.index)["pop_65plus"].to_numpy(np.int64),
            "x": np.round(shapely.get_x(point), 1),
            "y": np.round(shapely.get_y(point), 1),
        }
    )
    geoms = shapely.set_precision(
        shapely.simplify(m.geometry.to_numpy(), SIMPLIFY_M, preserve_topology=True), 1.0
    )
    geometries = gpd.GeoDataFrame({"area_id": out["area_id"]}, geometry=geoms, crs=CRS)
    return out, geometries


# ------------------------------------------------------------------ sites
STZ_ORGANISATIONS = {
    # Organisations that are members of the STZ (Samenwerkende Topklinische opleidings-
    # Ziekenhuizen) as far as we are confident; not verified against a current STZ list.
    "Albert Schweitzer Ziekenhuis", "Amphia Ziekenhuis", "Catharina Ziekenhuis",
    "Canisius-Wilhelmina Ziekenhuis", "Deventer Ziekenhuisgroep", "Elisabeth-TweeSteden",
    "Franciscus Gasthuis & Vlietland Groep", "Gelre Ziekenhuizen", "Isala klinieken",
    "Jeroen Bosch Ziekenhuis", "Maasstad ziekenhuis", "Martini Ziekenhuis",
    "Máxima Medisch Centrum", "Meander Medisch Centrum", "Zorgpartners Friesland",
    "Medisch Spectrum Twente", "Noordwest Ziekenhuisgroep", "Onze Lieve Vrouwe Gasthuis",
    "Rijnstate Ziekenhuis", "Spaarne Gasthuis", "St. Antonius Ziekenhuis en Zuwe Hofpoort",
    "Zuyderland Medisch Centrum",
}


def build_sites(raw: Path, munis: object, regions: pd.DataFrame,
                changes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hospital locations able to host inpatient surgery, updated for changes since 2016.

    Returns (sites table, log of applied changes).
    """
    import geopandas as gpd
    from pyproj import Transformer

    raw_sites = pd.read_csv(raw / "rivm_mapnl" / "ziekenhuizen_2016.csv", dtype=str)
    kind = raw_sites["soort.ziekenhuis"].str.strip().str.lower()
    keep = kind.isin(["algemeen ziekenhuis", "academisch ziekenhuis"])
    sites = raw_sites[keep].copy()
    sites["site_id"] = "Z" + sites["ziekenhuisnummer"].astype(float).astype(int).astype(str)
    sites["site_name"] = sites["naam.ziekenhuis"].str.replace(r"\s+", " ", regex=True).str.strip()
    sites["organisation"] = sites["naam.organisatie"].str.replace(r"\s+", " ", regex=True)
    sites["academic"] = kind[keep] == "academisch ziekenhuis"
    sites["lat"] = sites["lat"].astype(float)
    sites["lon"] = sites["lon"].astype(float)
    sites = sites[["site_id", "site_name", "organisation", "academic", "lat", "lon"]]

    log = []
    for change in changes.itertuples(index=False):
        sid = change.site_id
        present = sid in set(sites["site_id"])
        if change.change == "close":
            if not present:
                raise SystemExit(f"site_changes.csv: cannot close unknown site {sid}")
            sites = sites[sites["site_id"] != sid]
        elif change.change == "organisation":
            if not present:
                raise SystemExit(f"site_changes.csv: unknown site {sid}")
            mask = sites["site_id"] == sid
            sites.loc[mask, "organisation"] = change.organisation
            if isinstance(change.site_name, str) and change.site_name:
                sites.loc[mask, "site_name"] = change.site_name
        elif change.change == "add":
            if present:
                raise SystemExit(f"site_changes.csv: site {sid} already exists")
            sites = pd.concat(
                [sites, pd.DataFrame([{
                    "site_id": sid, "site_name": change.site_name,
                    "organisation": change.organisation, "academic": False,
                    "lat": float(change.lat), "lon": float(change.lon),
                }])],
                ignore_index=True,
            )
        else:
            raise SystemExit(f"site_changes.csv: unknown change {change.change!r}")
        log.append(change)

    transformer = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    x, y = transformer.transform(sites["lon"].to_numpy(), sites["lat"].to_numpy())
    sites["x"] = np.round(x, 1)
    sites["y"] = np.round(y, 1)

    # municipality by point-in-polygon; nearest polygon for points on generalised borders
    points = gpd.GeoDataFrame(sites[["site_id"]].copy(),
                              geometry=gpd.points_from_xy(sites["x"], sites["y"]), crs=CRS)
    m = munis[["code", "geometry"]]  # type: ignore[index]
    joined = gpd.sjoin(points, m, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    code = joined["code"].copy()
    lost = code.isna()
    if lost.any():
        near = gpd.sjoin_nearest(points[lost.to_numpy()], m, how="left")
        near = near[~near.index.duplicated(keep="first")]
        code[lost] = near["code"]
    sites["municipality_code"] = code.to_numpy()
    sites["region_id"] = sites["municipality_code"].map(
        regions.set_index("municipality_code")["region_id"]
    )
    is_avl = sites["organisation"].str.contains("Antoni van Leeuwenhoek")
    sites["site_type"] = np.where(sites["academic"], "umc",
                                  np.where(is_avl, "cancer_centre", "general"))
    sites["hn_role"] = np.where(sites["site_type"].isin(["umc", "cancer_centre"]), "HHOC", "PP")
    sites["topclinical"] = sites["organisation"].isin(STZ_ORGANISATIONS)
    sites = sites.sort_values("site_id").reset_index(drop=True)
    out = sites[["site_id", "site_name", "organisation", "site_type", "topclinical", "hn_role",
                 "region_id", "municipality_code", "x", "y"]].copy()
    return out, pd.DataFrame(log)


# ------------------------------------------------------------------ treatments
def build_treatments(facts: Path) -> pd.DataFrame:
    """treatments.csv from norms.csv: the three hn_new_* tiers become one tiered treatment."""
    norms = pd.read_csv(facts / "norms.csv", dtype=str, keep_default_na=False)
    rows = []
    tiers: dict[str, float] = {}
    for row in norms.itertuples(index=False):
        if row.intervention_id.startswith("hn_new_"):
            tiers[row.applies_to_tier] = float(row.norm)
    done_hn = False
    for row in norms.itertuples(index=False):
        label = row.intervention_en
        if not label[1:2].isupper():  # keep acronyms such as ERCP
            label = label[0].lower() + label[1:]
        if row.intervention_id.startswith("hn_new_"):
            if done_hn:
                continue
            done_hn = True
            rows.append({
                "intervention_id": "hn_new", "group_id": row.group_id,
                "name": f"{row.group_en}: new patients", "kind": "volume",
                "norm": tiers.get("PP", 80.0), "norm_unit": row.norm_unit,
                "tier_norms": format_tier_norms(
                    {role: tiers[role] for role in ("HHOC", "PP", "PPR") if role in tiers}),
            })
            continue
        if row.norm_unit.startswith("percent"):
            kind = "process"
        elif row.norm == "":
            kind = "none"
        else:
            kind = "volume"
        if kind == "volume" and label.startswith("local treatment ("):
            label = "local treatment"
        rows.append({
            "intervention_id": row.intervention_id, "group_id": row.group_id,
            "name": f"{row.group_en}: {label}", "kind": kind,
            "norm": float(row.norm) if row.norm else np.nan, "norm_unit": row.norm_unit,
            "tier_norms": "",
        })
    frame = pd.DataFrame(rows)
    # assigned treatments first (file order), process norms last
    order = frame["kind"].map({"volume": 0, "none": 0, "process": 1})
    return frame.assign(_o=order).sort_values("_o", kind="stable").drop(columns="_o") \
        .reset_index(drop=True)


# ------------------------------------------------------------------ national totals
LITERATURE_TOTALS = {
    # intervention_id: (patients per year, source, derivation)
    "og_resection": (
        (2786 + 1887) / 4,
        "DUCA 2011-2014 (Busweiler et al., BJS 2016)",
        "oesophagectomies 2786/4 + gastrectomies 1887/4 per year",
    ),
    "pancreas_resection": (
        3508 / 4,
        "DPCA 2014-2017 ('First four years of a nationwide audit')",
        "3508 pancreatic resections (2780 PD + 728 distal) / 4 years; PD only would be ~695",
    ),
    "lung_resection": (
        2359.0,
        "DLCA-S 2016 (J Thorac Dis 2018;10 Suppl 29, table 5)",
        "national n of anatomical lung resections 2016 (DLSA all indications 19557/4 = 4889, "
        "about half for lung cancer, agrees)",
    ),
    "aaa_surgery": (
        3280.0,
        "DSAA 2017 (DICA jaarrapportage 2017)",
        "primary AAA repairs 2017, elective + acute",
    ),
    "carotid_intervention": (
        6459 / 3,
        "DACI 2014-2016 (Karthaus et al., EJVES 2018)",
        "6459 symptomatic carotid interventions / 3 years",
    ),
}
# national provider counts used for treatments that baseline_counts.csv does not list at all
KNOWN_PROVIDERS = {
    "hn_new": ({"HHOC": 8, "PP": 6},
               "8 head-neck oncology centres (HHOC) and ~6 preferred partners (NWHHT structure)"),
    "hn_flap": ({"": 14}, "the ~14 head-neck centres and preferred partners"),
    "hn_resection": ({"": 14}, "the ~14 head-neck centres and preferred partners"),
    "hn_radiotherapy": ({"": 14}, "the ~14 head-neck centres and preferred partners"),
    "og_radiotherapy": ({"": 20}, "~20 radiotherapy institutes"),
    "lung_radiotherapy": ({"": 20}, "~20 radiotherapy institutes"),
    "lung_systemic": ({"": 72}, "all ~72 hospital organisations (sum of the largest regional "
                                "provider counts); no norm, so the systemic-treatment norm of "
                                "the other groups (50) is used"),
}


@dataclass
class RegionalFacts:
    """baseline_counts.csv rows with an intervention guess: (region, treatment) -> counts."""

    counts: dict[tuple[str, str], tuple[int, int]]

    @classmethod
    def read(cls, facts: Path) -> RegionalFacts:
        table = pd.read_csv(facts / "baseline_counts.csv", dtype=str, keep_default_na=False)
        counts: dict[tuple[str, str], tuple[int, int]] = {}
        for row in table.itertuples(index=False):
            if not row.intervention_id_guess:
                continue
            key = (row.region_id, row.intervention_id_guess)
            if key in counts:
                raise SystemExit(f"baseline_counts.csv: duplicate {key}")
            counts[key] = (int(row.providers), int(row.below_norm))
        return cls(counts)


def national_totals(treatments: pd.DataFrame, facts: RegionalFacts,
                    region_weight: pd.Series) -> pd.DataFrame:
    """National yearly patients per treatment: literature where available, else derived."""
    rows = []
    share = region_weight / region_weight.sum()
    for t in treatments[treatments["kind"] != "process"].itertuples(index=False):
        tid = t.intervention_id
        norm = float(t.norm) if not pd.isna(t.norm) else 50.0
        if tid in LITERATURE_TOTALS:
            value, source, how = LITERATURE_TOTALS[tid]
            rows.append((tid, round(value, 4), "literature", source, how))
            continue
        listed = {r: c for (r, tt), c in facts.counts.items() if tt == tid}
        if listed:
            implied = {r: (p - b) * TYPICAL * norm + b * 0.5 * norm for r, (p, b) in listed.items()}
            listed_share = float(share[list(listed)].sum())
            per_share = sum(implied.values()) / listed_share
            total = 0.0
            for region in share.index:
                if region in implied:
                    total += implied[region]
                else:
                    total += max(per_share * float(share[region]), TYPICAL * norm)
            counts = ", ".join(f"{r} {p}/{b}" for r, (p, b) in sorted(listed.items()))
            how = (f"derived: listed regions {counts}"
                   f" (providers/below) x ({TYPICAL:g} x norm for providers meeting the norm, "
                   f"0.5 x norm below it); unlisted regions by population share, at least one "
                   f"provider at {TYPICAL:g} x norm")
            rows.append((tid, round(total, 4), "derived", "tranche-1 provider counts and norms",
                         how))
            continue
        counts, basis = KNOWN_PROVIDERS[tid]
        tiers = parse_tier_norms(t.tier_norms) or {}
        total = sum(n * TYPICAL * tiers.get(role, norm) for role, n in counts.items())
        how = f"derived: {basis}; {sum(counts.values())} x {TYPICAL:g} x {norm:g}"
        if tiers:
            how = (f"derived: {basis}; " + " + ".join(
                f"{n} x {TYPICAL:g} x {tiers.get(role, norm):g}" for role, n in counts.items()))
        rows.append((tid, round(total, 4), "derived", "provider counts and norms", how))
    return pd.DataFrame(rows, columns=["intervention_id", "patients_per_year", "kind", "source",
                                       "derivation"])


# ------------------------------------------------------------------ demand & baseline
def _eligible(sites: pd.DataFrame, group: str) -> np.ndarray:
    """Sites that may provide a treatment of ``group`` (the cancer centre: oncology only)."""
    ok = sites["site_type"].isin(["umc", "general"]).to_numpy().copy()
    if group in ONCOLOGY_GROUPS:
        ok |= (sites["site_type"] == "cancer_centre").to_numpy()
    return ok


def site_size(sites: pd.DataFrame, areas: pd.DataFrame) -> pd.Series:
    """Size proxy: age-weighted population of the areas nearest to the site within its region."""
    from scipy.spatial import cKDTree

    weight = (areas["population"] - areas["pop_65plus"]) + W65 * areas["pop_65plus"]
    size = pd.Series(0.0, index=sites["site_id"])
    for region, group in sites.groupby("region_id"):
        in_region = areas["region_id"] == region
        tree = cKDTree(group[["x", "y"]].to_numpy())
        _, nearest = tree.query(areas.loc[in_region, ["x", "y"]].to_numpy())
        sums = np.bincount(nearest, weights=weight[in_region].to_numpy(), minlength=len(group))
        size[group["site_id"].to_numpy()] = sums
    return size


def _rank(sites: pd.DataFrame, size: pd.Series, tid: str, group: str,
          region: str) -> pd.DataFrame:
    """Eligible sites of a region, best first: academic / cancer centre, then by size."""
    eligible = sites[(sites["region_id"] == region) & _eligible(sites, group)].copy()
    rng = _rng("rank", region, tid)
    jitter = rng.uniform(0.0, 0.35, size=len(eligible))
    rel = size[eligible["site_id"]].to_numpy() / max(size[eligible["site_id"]].max(), 1.0)
    bonus = np.where(eligible["site_type"] == "umc", 2.0, 0.0)
    if group in ONCOLOGY_GROUPS:
        bonus = bonus + np.where(eligible["site_type"] == "cancer_centre", 2.0, 0.0)
    bonus = bonus + np.where(eligible["topclinical"], 0.3, 0.0)
    eligible["score"] = bonus + rel * (1.0 + jitter)
    eligible["weight"] = np.maximum(rel, 0.05) * (1.0 + jitter)
    return eligible.sort_values(["score", "site_id"], ascending=[False, True])


def regional_bounds(tid: str, norm_top: float, norm: float | None,
                    counts: tuple[int, int] | None, n_eligible: int) -> tuple[float, float]:
    """Lower/upper bounds of a region's yearly demand that make the requested counts possible."""
    if norm is None:
        return 1.0, math.inf
    if counts is None:
        return ABOVE_MIN * norm_top * 1.02, math.inf
    providers, below = counts
    if providers > n_eligible:
        raise SystemExit(f"{tid}: {providers} providers requested but only {n_eligible} sites")
    above = providers - below
    low = above * ABOVE_MIN * norm * 1.02 + below * BELOW_RANGE[0] * norm
    high = math.inf if above > 0 else below * BELOW_RANGE[1] * norm
    if above == 0 and high >= 1.3 * norm:
        # all providers below the norm today, but together enough for one provider to meet
        # it (with a 25 % margin), so a closed-region solve stays feasible
        low = max(low, 1.25 * norm)
    return low, high


def split_regions(total: float, base: pd.Series, low: pd.Series, high: pd.Series) -> pd.Series:
    """Regional totals ``clip(lam * base, low, high)`` summing to ``total`` (bisection on lam)."""
    if low.sum() > total + 1e-9 or high.sum() < total - 1e-9:
        raise SystemExit(f"regional bounds cannot meet the national total {total:.1f}")
    lo, hi = 0.0, 1.0
    while np.clip(hi * base, low, high).sum() < total:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.clip(mid * base, low, high).sum() < total:
            lo = mid
        else:
            hi = mid
    out = np.clip(hi * base, low, high)
    return out * (total / out.sum())


def _spread(amount: float, weights: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Split ``amount`` proportional to ``weights`` without exceeding ``cap`` (water filling)."""
    out = np.zeros(len(weights))
    free = np.ones(len(weights), dtype=bool)
    left = amount
    for _ in range(len(weights) + 1):
        if left <= 1e-12 or not free.any():
            break
        share = left * weights * free / (weights * free).sum()
        room = cap - out
        take = np.minimum(share, room)
        out += take
        left -= take.sum()
        free &= (cap - out) > 1e-9
    if left > 1e-6:
        raise SystemExit("cannot spread volume within the caps")
    return out


def allocate_region(tid: str, ranked: pd.DataFrame, demand: float, norms: np.ndarray,
                    counts: tuple[int, int] | None, region: str) -> dict[str, float]:
    """Illustrative baseline volumes of one region and treatment (sum = ``demand``)."""
    rng = _rng("volumes", region, tid)
    weights = ranked["weight"].to_numpy()
    ids = ranked["site_id"].to_numpy()
    if np.isnan(norms).all():  # no norm (lung_systemic): every eligible site, by size
        return dict(zip(ids, demand * weights / weights.sum(), strict=True))
    if counts is None:
        # all providers meet their norm; number ~ demand / (1.5 x norm), at least one
        chosen = [0]
        need = TYPICAL * norms[0]
        for i in range(1, len(norms)):
            if need + TYPICAL * norms[i] > demand:
                break
            chosen.append(i)
            need += TYPICAL * norms[i]
        idx = np.array(chosen)
        base = ABOVE_MIN * norms[idx]
        extra = _spread(demand - base.sum(), weights[idx], np.full(len(idx), np.inf))
        return dict(zip(ids[idx], base + extra, strict=True))
    providers, below = counts
    above = providers - below
    a_idx = np.arange(above)
    b_idx = np.arange(above, providers)
    vol = np.zeros(providers)
    u = rng.uniform(*BELOW_RANGE, size=below) * norms[b_idx]
    if above == 0:
        cap = 0.95 * norms[b_idx]
        vol[b_idx] = _spread(demand, u, cap)
    else:
        base = ABOVE_MIN * norms[a_idx]
        room = demand - base.sum()
        scale = min(1.0, 0.9 * room / u.sum()) if below else 1.0
        vol[b_idx] = u * scale
        vol[a_idx] = base + _spread(demand - base.sum() - vol[b_idx].sum(), weights[a_idx],
                                    np.full(above, np.inf))
    return dict(zip(ids[:providers], vol, strict=True))


def build_demand_and_baseline(
    areas: pd.DataFrame, sites: pd.DataFrame, treatments: pd.DataFrame, facts: RegionalFacts
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Demand per (area, treatment), illustrative baseline volumes, totals, adjustment log."""
    weight = ((areas["population"] - areas["pop_65plus"]) + W65 * areas["pop_65plus"]).astype(float)
    region_weight = weight.groupby(areas["region_id"]).sum().reindex([r for r, _ in REGIONS])
    totals = national_totals(treatments, facts, region_weight)
    size = site_size(sites, areas)
    roles = sites.set_index("site_id")["hn_role"]
    demand_frames = []
    volume_rows = []
    log_rows = []
    for t in treatments[treatments["kind"] != "process"].itertuples(index=False):
        tid = t.intervention_id
        norm = None if pd.isna(t.norm) else float(t.norm)
        tiers = parse_tier_norms(t.tier_norms) or {}
        total = float(totals.set_index("intervention_id").loc[tid, "patients_per_year"])
        ranked: dict[str, pd.DataFrame] = {}
        site_norms: dict[str, np.ndarray] = {}
        low = pd.Series(0.0, index=region_weight.index)
        high = pd.Series(math.inf, index=region_weight.index)
        for region in region_weight.index:
            r = _rank(sites, size, tid, t.group_id, region)
            if tiers:  # tiered: the role with the highest norm first (HHOC), then by score
                r = r.assign(_tn=[tiers.get(roles[s], norm or 0.0) for s in r["site_id"]])
                r = r.sort_values(["_tn", "score", "site_id"], ascending=[False, False, True])
            ranked[region] = r
            norms = np.array([tiers.get(roles[s], norm) if norm is not None else np.nan
                              for s in r["site_id"]], dtype=float)
            site_norms[region] = norms
            counts = facts.counts.get((region, tid))
            low[region], high[region] = regional_bounds(
                tid, float(norms[0]) if norm is not None else 0.0, norm, counts, len(r))
        regional = split_regions(total, region_weight, low, high)
        proportional = total * region_weight / region_weight.sum()
        for region in region_weight.index:
            in_region = (areas["region_id"] == region).to_numpy()
            w = weight[in_region].to_numpy()
            patients = np.round(regional[region] * w / w.sum(), 4)
            frame = pd.DataFrame({"area_id": areas.loc[in_region, "area_id"].to_numpy(),
                                  "intervention_id": tid, "patients": patients})
            frame = frame[frame["patients"] > 0]
            demand_frames.append(frame)
            regional_sum = float(frame["patients"].sum())
            counts = facts.counts.get((region, tid))
            vols = allocate_region(tid, ranked[region], regional_sum, site_norms[region], counts,
                                   region)
            rounded = {s: round(v, 4) for s, v in vols.items() if round(v, 4) > 0}
            # put the rounding residual on the largest provider
            residual = round(regional_sum - sum(rounded.values()), 4)
            biggest = max(rounded, key=lambda s: (rounded[s], s))
            rounded[biggest] = round(rounded[biggest] + residual, 4)
            for s, v in rounded.items():
                volume_rows.append((s, tid, v))
            factor = regional[region] / proportional[region]
            log_rows.append((region, tid, round(float(proportional[region]), 4),
                             round(regional_sum, 4), round(float(factor), 4),
                             "" if counts is None else f"{counts[0]}/{counts[1]}"))
    demand = pd.concat(demand_frames, ignore_index=True)
    demand = demand.sort_values(["area_id", "intervention_id"]).reset_index(drop=True)
    baseline = pd.DataFrame(volume_rows, columns=["site_id", "intervention_id", "volume"])
    baseline = baseline.sort_values(["site_id", "intervention_id"]).reset_index(drop=True)
    log = pd.DataFrame(log_rows, columns=["region_id", "intervention_id", "population_split",
                                          "demand", "factor", "counts"])
    return demand, baseline, totals, log


MUNICIPALITY_DESCRIPTION = (
    "The Netherlands on 345 CBS municipalities (2022, population 17,590,672): the district da"
    "taset (geo/data/default) with its districts summed per municipality. Sites, treatments a"
    "nd the status quo (baseline volumes) are the district dataset's own, so today's provider"
    "s and volumes are the same at both area levels; this folder holds only the municipality "
    "areas. The baseline volumes are ILLUSTRATIVE (generated, seeded): they reproduce the per"
    "-region provider and below-norm counts of the tranche-1 report, not real hospital volume"
    "s."
)


def write_municipality_level(out: Path, areas: pd.DataFrame, geometries: object,
                             meta: dict) -> None:
    """areas.csv, areas.gpkg and dataset.json of the derived municipality level."""
    from herschik.geo.dataset_export import _csv_text, write_area_geometries
    from herschik.geo.schema import SCHEMA

    from herschik.atomic import write_text

    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "areas.csv", _csv_text(areas[[c for c, _ in SCHEMA["areas.csv"]]]))
    write_area_geometries(geometries, out / "areas.gpkg")
    write_text(out / "dataset.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------ main
def build(raw: Path, facts: Path, out: Path, municipalities_out: Path | None = None,
          write_regions: bool = False, report: Path | None = None) -> Dataset:
    """Run every step and export the default dataset to ``out``; returns the dataset."""
    import geopandas as gpd

    munis_raw = gpd.read_file(raw / "cbs_tmap" / "NLD_muni_2022.gpkg", engine="pyogrio")
    if write_regions or not REGION_TABLE.exists():
        default_region_table(munis_raw.sort_values("code")).to_csv(
            REGION_TABLE, index=False, lineterminator="\n")
    regions = pd.read_csv(REGION_TABLE, dtype=str, keep_default_na=False)
    bad = ~regions["region_id"].isin([r for r, _ in REGIONS])
    if bad.any():
        raise SystemExit(f"{REGION_TABLE.name}: unknown region {regions['region_id'][bad].iloc[0]}")
    changes = pd.read_csv(SITE_CHANGES, dtype=str, keep_default_na=False)

    areas, geometries, munis = build_areas(raw, regions)
    sites, _ = build_sites(raw, munis, regions, changes)
    treatments = build_treatments(facts)
    facts_counts = RegionalFacts.read(facts)
    demand, baseline, totals, log = build_demand_and_baseline(areas, sites, treatments,
                                                              facts_counts)
    meta = {
        "name": "netherlands-2022",
        "baseline": "illustrative",
        "description": (
            "The Netherlands: 3,340 CBS districts (2022, population 17,590,672), hospital "
            "locations (RIVM 2016 updated for changes since), seven regions, tranche-1 norms. "
            "Demand is national yearly totals split by age-weighted population. The baseline "
            "volumes are ILLUSTRATIVE (generated, seeded): they reproduce the per-region "
            "provider and below-norm counts of the tranche-1 report, not real hospital volumes."
        ),
        "crs": CRS,
    }
    dataset = Dataset(
        name=meta["name"], meta=meta,
        regions=pd.DataFrame(REGIONS, columns=["region_id", "region_name"]),
        sites=sites, areas=areas, area_geometries=geometries, treatments=treatments,
        demand=demand, baseline_volumes=baseline, travel_times=None,
    )
    export_dataset(dataset, out)
    totals.to_csv(out / "national_totals.csv", index=False, lineterminator="\n")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        log.to_csv(report, index=False, lineterminator="\n")
    if municipalities_out is not None:
        # Only the municipality areas are stored: the loader derives the rest from the district
        # dataset (geo/area_levels.py), so the status quo is one fact at both levels (issue 22;
        # generating a second illustrative baseline here made "today" depend on the level).
        m_areas, m_geoms = build_municipality_areas(munis, regions, areas)
        m_meta = dict(meta, name="netherlands-2022-municipalities",
                      description=MUNICIPALITY_DESCRIPTION, derived_from="default",
                      area_key="municipality_code")
        write_municipality_level(municipalities_out, m_areas, m_geoms, m_meta)
    return dataset


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python tools/build_default.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, required=True, help="folder with the raw data")
    parser.add_argument("--facts", type=Path, required=True, help="tranche-1 facts folder")
    parser.add_argument("--out", type=Path, default=DATA_DIR / "default")
    parser.add_argument("--municipalities-out", type=Path, default=None,
                        help="also write the coarser municipality dataset here")
    parser.add_argument("--write-regions", action="store_true",
                        help="regenerate municipality_regions.csv from the built-in rules")
    parser.add_argument("--report", type=Path, default=None,
                        help="write the regional demand adjustments (CSV) here")
    args = parser.parse_args(argv)
    dataset = build(args.raw, args.facts, args.out, args.municipalities_out, args.write_regions,
                    args.report)
    print(f"wrote {args.out}: {len(dataset.sites)} sites, {len(dataset.areas)} areas, "
          f"{len(dataset.demand)} demand rows, {len(dataset.baseline_volumes)} baseline rows")
    print(json.dumps(dataset.sites.groupby("region_id").size().to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
