"""The herschik dataset: tidy tables and their loader (with validation).

A dataset is a folder of CSV tables plus a GeoPackage of area geometries, in the format of
``docs/DATA_FORMAT.md`` (geo/schema.py). :func:`load_dataset` reads and validates such a folder
(or the embedded national default / example) into a :class:`Dataset`, table by table
(geo/tables.py) and then across tables and on the map (geo/geography.py);
:func:`herschik.geo.dataset_export.export_dataset` writes one back.

Validation is vectorised (pandas), so the national default (3,340 areas x 19 treatments of
demand) loads in well under a second; only the first bad row of a check is turned into a
message. Every problem raises :class:`DataError` naming the file, the 1-based data row (header
not counted) and the field.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.geography import check_geography, read_geometries
from herschik.geo.schema import (
    BASELINE_KINDS,
    CRS,
    DEFAULT_DIR,
    EXAMPLE_DIR,
    MUNICIPALITIES_DIR,
    parse_tier_norms,
)
from herschik.geo.tables import (
    RESERVED_REGION_IDS,
    check_ids,
    check_ref,
    check_unique,
    decode_text,
    first_bad,
    read_data_bytes,
    read_table,
)

from herschik.derived_cache import cached, entry_key, folder_digest
from herschik.errors import DataError
from herschik.i18n import _

#: dataset.json is a few lines of metadata
MAX_META_BYTES = 1 << 20


@dataclass
class Dataset:
    """All tables of one dataset (see ``docs/DATA_FORMAT.md``); x/y are EPSG:28992 metres."""

    name: str
    meta: dict[str, Any]
    regions: pd.DataFrame
    sites: pd.DataFrame
    areas: pd.DataFrame
    area_geometries: Any  # geopandas.GeoDataFrame (area_id, geometry) or None
    treatments: pd.DataFrame
    demand: pd.DataFrame
    baseline_volumes: pd.DataFrame
    travel_times: pd.DataFrame | None = None
    #: today's area -> site flows when the data bring them (``herschik data import-volumes``);
    #: else they are reconstructed from the volumes (optimiser/baseline.py)
    baseline_flows: pd.DataFrame | None = None

    @property
    def baseline_kind(self) -> str:
        """``"illustrative"`` (generated baseline) or ``"user"`` (user-supplied volumes)."""
        return str(self.meta.get("baseline", "user"))

    def region_ids(self) -> list[str]:
        """Region ids in file order."""
        return list(self.regions["region_id"])

    def assigned_treatments(self) -> pd.DataFrame:
        """Treatments to assign (kind ``volume`` or ``none``), in file order.

        The ``norm`` of kind ``none`` is ``nan``; ``tiers`` holds the parsed tier norms
        (a dict ``{role: norm}``) or ``None``.
        """
        rows = self.treatments[self.treatments["kind"].isin(["volume", "none"])].copy()
        rows.loc[rows["kind"] == "none", "norm"] = np.nan
        rows["tiers"] = [parse_tier_norms(text) for text in rows["tier_norms"]]
        return rows.reset_index(drop=True)

    def process_norm_rows(self) -> pd.DataFrame:
        """Process norms (kind ``process``): carried and reported, never optimised."""
        return self.treatments[self.treatments["kind"] == "process"].reset_index(drop=True)

    def site_norms(self) -> pd.DataFrame:
        """Norm per (site, treatment) for the treatments to assign, tiers applied.

        Columns ``site_id, intervention_id, norm`` (``nan`` where no volume norm applies).
        """
        roles = self.sites[["site_id", "hn_role"]]
        frames = []
        for row in self.assigned_treatments().itertuples(index=False):
            tiers = row.tiers or {}
            norms = [tiers.get(role, row.norm) for role in roles["hn_role"]]
            frames.append(
                pd.DataFrame(
                    {
                        "site_id": roles["site_id"].to_numpy(),
                        "intervention_id": row.intervention_id,
                        "norm": np.array(norms, float),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per region and treatment (kind volume/none): providers, below norm, total volume.

        ``providers`` = sites with baseline volume > 0, ``below_norm`` = providers whose volume
        is below the norm of their role. Columns ``region_id, intervention_id, providers,
        below_norm, volume``; every region x treatment pair appears (zeros where nobody treats).
        """
        volumes = self.baseline_volumes[self.baseline_volumes["volume"] > 0].merge(
            self.sites[["site_id", "region_id"]], on="site_id"
        )
        volumes = volumes.merge(self.site_norms(), on=["site_id", "intervention_id"], how="inner")
        volumes["below"] = (volumes["volume"] < volumes["norm"]).astype(int)
        grouped = volumes.groupby(["region_id", "intervention_id"], sort=False).agg(
            providers=("site_id", "size"), below_norm=("below", "sum"), volume=("volume", "sum")
        )
        treatments = list(self.assigned_treatments()["intervention_id"])
        index = pd.MultiIndex.from_product(
            [self.region_ids(), treatments], names=["region_id", "intervention_id"]
        )
        out = grouped.reindex(index).fillna(0).reset_index()
        out["providers"] = out["providers"].astype(int)
        out["below_norm"] = out["below_norm"].astype(int)
        out["volume"] = out["volume"].astype(float)
        return out

    def region_rows(self) -> list[dict[str, Any]]:
        """Per region: id, name, number of areas and sites, patients per year (rounded to 0.1);
        what ``herschik regions`` lists."""
        demand = self.demand.merge(self.areas[["area_id", "region_id"]], on="area_id")
        return [
            {
                "region_id": region.region_id,
                "region_name": region.region_name,
                "areas": int((self.areas["region_id"] == region.region_id).sum()),
                "sites": int((self.sites["region_id"] == region.region_id).sum()),
                "patients_per_year": round(float(
                    demand.loc[demand["region_id"] == region.region_id, "patients"].sum()), 1),
            }
            for region in self.regions.itertuples(index=False)
        ]

    def copy(self) -> Dataset:
        """A deep copy (tables are mutable; the cached default is never handed out itself)."""
        return Dataset(
            name=self.name,
            meta=copy.deepcopy(self.meta),
            regions=self.regions.copy(),
            sites=self.sites.copy(),
            areas=self.areas.copy(),
            area_geometries=None if self.area_geometries is None else self.area_geometries.copy(),
            treatments=self.treatments.copy(),
            demand=self.demand.copy(),
            baseline_volumes=self.baseline_volumes.copy(),
            travel_times=None if self.travel_times is None else self.travel_times.copy(),
            baseline_flows=None if self.baseline_flows is None else self.baseline_flows.copy(),
        )

    @property
    def baseline_source(self) -> str:
        """Where today's volumes come from, in one line (the first line of every output)."""
        return baseline_source_line(self.meta)


def load_dataset(source: str | Path | None = None) -> Dataset:
    """Load and validate a dataset.

    ``None`` is the embedded national default (``geo/data/default``, districts as origin
    areas), ``"municipalities"`` the same country with municipalities as origin areas,
    ``"example"`` the embedded example region, anything else a folder in the documented
    format. The embedded datasets are cached in-process; each call returns an independent copy.
    A dataset that validated once is kept in the derived-data cache (:mod:`herschik.derived_cache`,
    keyed by the bytes of its files and herschik's code), so the next process reads it back
    instead of parsing and validating the CSVs again.
    Raises :class:`DataError` on any problem with the input.
    """
    if source is None:
        return _load_embedded(str(DEFAULT_DIR)).copy()
    if isinstance(source, str) and source == "example":
        return _load_embedded(str(EXAMPLE_DIR)).copy()
    if isinstance(source, str) and source == "municipalities":
        return _load_municipalities().copy()
    folder = Path(source)
    if folder.resolve() == MUNICIPALITIES_DIR.resolve():
        return _load_municipalities().copy()
    if not folder.is_dir():
        raise DataError(str(folder), None, None, "not a dataset folder (no such directory)")
    return _load_cached(folder)


@functools.lru_cache(maxsize=4)
def _load_embedded(folder: str) -> Dataset:
    return _load_cached(Path(folder))


def source_digest(folder: Path) -> str | None:
    """The identity of a dataset folder (its files' bytes), None when it cannot be read."""
    try:
        return folder_digest(folder)
    except OSError:
        return None


def _load_cached(folder: Path) -> Dataset:
    digest = source_digest(folder)
    if digest is None:  # unreadable: the loader names the file and the problem
        return _load_folder(folder)
    return cached(entry_key("dataset", [digest]), lambda: _load_folder(folder))


@functools.lru_cache(maxsize=1)
def _load_municipalities() -> Dataset:
    """The embedded country on municipalities (derived from the district dataset), kept in the
    derived-data cache under the bytes of both folders."""
    digests = [source_digest(MUNICIPALITIES_DIR), source_digest(DEFAULT_DIR)]
    if None in digests:
        return _build_municipalities()
    return cached(entry_key("dataset-municipalities", [str(d) for d in digests]),
                  _build_municipalities)


def _build_municipalities() -> Dataset:
    """The embedded country on municipalities, derived from the district dataset.

    The folder holds only the municipality areas (areas.csv, areas.gpkg, dataset.json); the
    status quo (sites, volumes) and demand are the district dataset's, so "today" is one fact
    at both levels (geo/area_levels.py).
    """
    from herschik.geo.area_levels import coarsen_dataset

    folder = MUNICIPALITIES_DIR
    meta = _read_meta(folder)
    areas = read_table(folder, "areas.csv")
    assert areas is not None
    check_ids("areas.csv", areas, "area_id")
    check_unique("areas.csv", areas, ["area_id"])
    _check_areas(areas)
    districts = _load_embedded(str(DEFAULT_DIR))
    check_ref("areas.csv", areas, "region_id", districts.regions["region_id"], "regions.csv")
    geometries = read_geometries(folder, areas)
    return coarsen_dataset(districts, areas, geometries, "municipality_code", meta=meta)


def baseline_source_line(meta: dict[str, Any]) -> str:
    """``"Baseline: ..."``: illustrative, an imported volume table (name, date, hash) or the
    user's own data, from a dataset's ``dataset.json``."""
    source = meta.get("baseline_source")
    if isinstance(source, dict) and source.get("file"):
        return (f"Baseline: imported volumes {source['file']} ({source.get('date', '?')}, "
                f"sha256 {str(source.get('sha256', ''))[:12]})")
    if meta.get("baseline") == "illustrative":
        return "Baseline: illustrative (calibrated to published provider counts)"
    return f"Baseline: the dataset's own volumes ({meta.get('name', 'user data')})"


_BASELINE_IMPORTED = re.compile(
    r"Baseline: imported volumes (?P<file>.*) \((?P<date>[^,()]*), sha256 (?P<sha>[0-9a-f]*)\)")
_BASELINE_OWN = re.compile(r"Baseline: the dataset's own volumes(?: \((?P<name>.*)\))?")


def baseline_source_text(line: str) -> str:
    """A :func:`baseline_source_line` (as summary.json keeps it: English, machine-readable) in
    the current language (herschik.i18n) for the console, report and workbook; a line of
    another form passes through."""
    if line == "Baseline: illustrative (calibrated to published provider counts)":
        return _("Baseline: illustrative (calibrated to published provider counts)")
    imported = _BASELINE_IMPORTED.fullmatch(line)
    if imported:
        return _("Baseline: imported volumes {file} ({date}, sha256 {sha})",
                 **imported.groupdict())
    own = _BASELINE_OWN.fullmatch(line)
    if own:
        return (_("Baseline: the dataset's own volumes ({name})", name=own["name"])
                if own["name"] is not None else _("Baseline: the dataset's own volumes"))
    return line


def _load_folder(folder: Path) -> Dataset:
    meta = _read_meta(folder)
    regions = read_table(folder, "regions.csv")
    sites = read_table(folder, "sites.csv")
    areas = read_table(folder, "areas.csv")
    treatments = read_table(folder, "treatments.csv")
    demand = read_table(folder, "demand.csv")
    baseline = read_table(folder, "baseline_volumes.csv")
    travel = read_table(folder, "travel_times.csv", required=False)
    flows = read_table(folder, "baseline_flows.csv", required=False)
    assert regions is not None and sites is not None and areas is not None
    assert treatments is not None and demand is not None and baseline is not None

    for file, frame, field in (
        ("regions.csv", regions, "region_id"), ("sites.csv", sites, "site_id"),
        ("areas.csv", areas, "area_id"), ("treatments.csv", treatments, "intervention_id"),
        ("treatments.csv", treatments, "group_id"),
    ):
        check_ids(file, frame, field)
    first_bad("regions.csv", "region_id",
               regions["region_id"].astype(str).isin(RESERVED_REGION_IDS).to_numpy(),
               regions["region_id"], lambda v: f"{v!r} is reserved (--region all)")
    check_unique("regions.csv", regions, ["region_id"])
    check_unique("sites.csv", sites, ["site_id"])
    if "agb" in sites.columns:
        coded = sites[sites["agb"] != ""]
        dup = coded["agb"].duplicated().to_numpy()
        first_bad("sites.csv", "agb", np.isin(sites.index, coded.index[dup]), sites["agb"],
                  lambda v: f"AGB code {v} is given to two sites")
    check_unique("areas.csv", areas, ["area_id"])
    check_unique("treatments.csv", treatments, ["intervention_id"])
    check_unique("demand.csv", demand, ["area_id", "intervention_id"])
    check_unique("baseline_volumes.csv", baseline, ["site_id", "intervention_id"])
    if travel is not None:
        check_unique("travel_times.csv", travel, ["area_id", "site_id"])

    check_ref("sites.csv", sites, "region_id", regions["region_id"], "regions.csv")
    check_ref("areas.csv", areas, "region_id", regions["region_id"], "regions.csv")
    check_ref("demand.csv", demand, "area_id", areas["area_id"], "areas.csv")
    check_ref("demand.csv", demand, "intervention_id", treatments["intervention_id"],
               "treatments.csv")
    check_ref("baseline_volumes.csv", baseline, "site_id", sites["site_id"], "sites.csv")
    check_ref("baseline_volumes.csv", baseline, "intervention_id",
               treatments["intervention_id"], "treatments.csv")
    if travel is not None:
        check_ref("travel_times.csv", travel, "area_id", areas["area_id"], "areas.csv")
        check_ref("travel_times.csv", travel, "site_id", sites["site_id"], "sites.csv")

    _check_areas(areas)
    _check_treatments(treatments)
    _check_regions_have_sites(regions, sites)
    process_ids = treatments.loc[treatments["kind"] == "process", "intervention_id"]
    for file, frame in (("demand.csv", demand), ("baseline_volumes.csv", baseline)):
        first_bad(file, "intervention_id", frame["intervention_id"].isin(process_ids).to_numpy(),
                   frame["intervention_id"],
                   lambda v: f"{v!r} is a process norm (kind process): it has no patients")
    _check_balance(regions, sites, areas, demand, baseline)
    if flows is not None:
        _check_flows(flows, regions, sites, areas, demand, baseline)
    check_geography(sites, areas, on_land=meta.get("synthetic") is not True)

    geometries = read_geometries(folder, areas)
    name = str(meta.get("name") or folder.name)
    return Dataset(
        name=name,
        meta=meta,
        regions=regions,
        sites=sites,
        areas=areas,
        area_geometries=geometries,
        treatments=treatments,
        demand=demand,
        baseline_volumes=baseline,
        travel_times=travel,
        baseline_flows=flows,
    )


def read_meta(folder: str | Path) -> dict[str, Any]:
    """A dataset folder's ``dataset.json``, checked (DataError naming the file and key)."""
    return _read_meta(Path(folder))


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "dataset.json"
    if not path.exists() and not path.is_symlink():
        raise DataError("dataset.json", None, None, "file is missing")
    try:
        meta = json.loads(decode_text("dataset.json", read_data_bytes(path, "dataset.json",
                                                                       MAX_META_BYTES)))
    except OSError as exc:
        raise DataError("dataset.json", None, None,
                        f"cannot read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        message = " ".join(str(exc).split())[:200]
        raise DataError("dataset.json", None, None, f"not valid JSON ({message})") from None
    if not isinstance(meta, dict):
        raise DataError("dataset.json", None, None, "must be a JSON object")
    for key in ("name", "baseline", "description"):
        if key not in meta:
            raise DataError("dataset.json", None, key, "missing key")
        if not isinstance(meta[key], str):
            raise DataError("dataset.json", None, key, "must be a string")
    if meta["baseline"] not in BASELINE_KINDS:
        raise DataError("dataset.json", None, "baseline",
                        f"must be one of {', '.join(BASELINE_KINDS)} (got {meta['baseline']!r})")
    if not isinstance(meta.get("synthetic", False), bool):
        raise DataError("dataset.json", None, "synthetic", "must be true or false")
    crs = meta.get("crs", CRS)
    if str(crs).upper() != CRS:
        raise DataError("dataset.json", None, "crs", f"must be {CRS} (got {crs!r})")
    meta.setdefault("crs", CRS)
    return meta


def _check_areas(areas: pd.DataFrame) -> None:
    bad = (areas["pop_65plus"] > areas["population"]).to_numpy()
    first_bad("areas.csv", "pop_65plus", bad, areas["pop_65plus"],
               lambda v: f"larger than population ({v})")


def _check_treatments(treatments: pd.DataFrame) -> None:
    file = "treatments.csv"
    kind = treatments["kind"]
    norm = treatments["norm"]
    needs = (kind.isin(["volume", "process"]) & norm.isna()).to_numpy()
    first_bad(file, "norm", needs, norm, lambda v: "missing value (kind volume/process needs a "
               "norm)")
    for pos, (text, k) in enumerate(zip(treatments["tier_norms"], kind, strict=True)):
        if not text:
            continue
        if k != "volume":
            raise DataError(file, pos + 1, "tier_norms", "tier norms only apply to kind volume")
        try:
            parse_tier_norms(text)
        except ValueError as exc:
            raise DataError(file, pos + 1, "tier_norms", str(exc)) from exc


def _check_regions_have_sites(regions: pd.DataFrame, sites: pd.DataFrame) -> None:
    empty = ~regions["region_id"].isin(sites["region_id"]).to_numpy()
    first_bad("regions.csv", "region_id", empty, regions["region_id"],
               lambda v: f"region {v!r} has no sites in sites.csv")


def _check_balance(regions: pd.DataFrame, sites: pd.DataFrame, areas: pd.DataFrame,
                   demand: pd.DataFrame, baseline: pd.DataFrame) -> None:
    """Per region and treatment baseline volumes must sum to the demand of the region's areas."""
    dem = demand.merge(areas[["area_id", "region_id"]], on="area_id").groupby(
        ["region_id", "intervention_id"])["patients"].sum()
    located = baseline.merge(sites[["site_id", "region_id"]], on="site_id", how="left")
    vol = located.groupby(["region_id", "intervention_id"])["volume"].sum()
    both = pd.concat([dem.rename("demand"), vol.rename("volume")], axis=1).fillna(0.0)
    diff = (both["demand"] - both["volume"]).abs()
    tol = np.maximum(1e-3, 1e-6 * both["demand"].abs())
    bad = diff > tol
    if bad.any():
        (region, treatment) = bad[bad].index[0]
        row = both.loc[(region, treatment)]
        # Point at the first baseline row of that region and treatment (if there is one).
        match = ((located["region_id"] == region)
                 & (located["intervention_id"] == treatment)).to_numpy()
        first = int(np.argmax(match)) + 1 if match.any() else None
        raise DataError(
            "baseline_volumes.csv", first, "volume",
            f"region {region!r}, treatment {treatment!r}: baseline volumes sum to "
            f"{row['volume']:.4f} but the region's demand sums to {row['demand']:.4f} "
            "(patients are treated in their own region today; the two must be equal)",
        )




def _check_flows(flows: pd.DataFrame, regions: pd.DataFrame, sites: pd.DataFrame,
                 areas: pd.DataFrame, demand: pd.DataFrame, baseline: pd.DataFrame) -> None:
    """Stored flows stay in their region and add up to the demand and the volumes.

    A (region, treatment) with flows must have them all: every area's flows sum to its demand
    and every site's to its volume (1e-3 patients/yr); other pairs are reconstructed.
    """
    file = "baseline_flows.csv"
    check_unique(file, flows, ["area_id", "site_id", "intervention_id"])
    check_ref(file, flows, "area_id", areas["area_id"], "areas.csv")
    check_ref(file, flows, "site_id", sites["site_id"], "sites.csv")
    check_ref(file, flows, "intervention_id", baseline["intervention_id"].drop_duplicates(),
              "baseline_volumes.csv")
    area_region = areas.set_index("area_id")["region_id"]
    site_region = sites.set_index("site_id")["region_id"]
    located = flows.assign(region_id=flows["area_id"].map(area_region),
                           site_region=flows["site_id"].map(site_region))
    first_bad(file, "site_id", (located["region_id"] != located["site_region"]).to_numpy(),
              located["site_id"], lambda v: f"site {v} is in another region than the area")
    pairs = located[["region_id", "intervention_id"]].drop_duplicates()
    for side, table, key, value in (
        ("area", demand.merge(areas[["area_id", "region_id"]], on="area_id"), "area_id",
         "patients"),
        ("site", baseline.merge(sites[["site_id", "region_id"]], on="site_id"), "site_id",
         "volume"),
    ):
        wanted = table.merge(pairs, on=["region_id", "intervention_id"])
        wanted = wanted.groupby([key, "intervention_id"])[value].sum()
        got = located.groupby([key, "intervention_id"])["patients"].sum()
        both = pd.concat([wanted.rename("want"), got.rename("got")], axis=1).fillna(0.0)
        bad = (both["want"] - both["got"]).abs() > 1e-3
        if bad.any():
            ident, treatment = bad[bad].index[0]
            row = both.loc[(ident, treatment)]
            raise DataError(file, None, "patients",
                            f"{side} {ident}, treatment {treatment}: flows sum to "
                            f"{row['got']:.4f} but its {'demand' if side == 'area' else 'volume'}"
                            f" is {row['want']:.4f}")
