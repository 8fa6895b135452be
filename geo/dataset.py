"""The herschik dataset: tidy tables, their loader (with validation) and exporter.

A dataset is a folder of CSV tables plus a GeoPackage of area geometries, in the format of
``docs/DATA_FORMAT.md``. :func:`load_dataset` reads and validates such a folder (or the embedded
national default / example) into a :class:`Dataset`; :func:`export_dataset` writes one back.

Validation is vectorised (pandas), so the national default (3,340 areas x 19 treatments of
demand) loads in well under a second; only the first bad row of a check is turned into a
message. Every problem raises :class:`DataError` naming the file, the 1-based data row (header
not counted) and the field.
"""

from __future__ import annotations

import copy
import csv
import functools
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from herschik.atomic import write_text
from herschik.errors import DataError

#: Folder of the embedded datasets (package data).
DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_DIR = DATA_DIR / "default"
EXAMPLE_DIR = DATA_DIR / "example"
MUNICIPALITIES_DIR = DATA_DIR / "default_municipalities"

#: Bounding box of the Netherlands in RD New (EPSG:28992), metres.
RD_X_RANGE = (0.0, 300_000.0)
RD_Y_RANGE = (289_000.0, 630_000.0)
#: The Netherlands (with its coastal waters) in degrees: west, south, east, north.
NL_LONLAT = (3.2, 50.7, 7.3, 53.7)

CRS = "EPSG:28992"
SITE_TYPES = ("umc", "general", "children", "cancer_centre")
HN_ROLES = ("HHOC", "PP", "PPR")
KINDS = ("volume", "none", "process")
BASELINE_KINDS = ("illustrative", "user")

# Column specification per file: (column, type). Types: id (non-empty string), str (may be
# empty), float / int (finite, non-negative unless noted), bool, enum:<values>, optfloat (empty
# allowed), xcoord / ycoord (finite, inside the RD bounding box of the Netherlands).
_SCHEMA: dict[str, list[tuple[str, str]]] = {
    "regions.csv": [("region_id", "id"), ("region_name", "str")],
    "sites.csv": [
        ("site_id", "id"),
        ("site_name", "str"),
        ("organisation", "str"),
        ("site_type", "enum:" + "|".join(SITE_TYPES)),
        ("topclinical", "bool"),
        ("hn_role", "enum:" + "|".join(HN_ROLES)),
        ("region_id", "id"),
        ("municipality_code", "str"),
        ("x", "xcoord"),
        ("y", "ycoord"),
    ],
    "areas.csv": [
        ("area_id", "id"),
        ("area_name", "str"),
        ("municipality_code", "str"),
        ("region_id", "id"),
        ("population", "int"),
        ("pop_65plus", "int"),
        ("x", "xcoord"),
        ("y", "ycoord"),
    ],
    "treatments.csv": [
        ("intervention_id", "id"),
        ("group_id", "str"),
        ("name", "str"),
        ("kind", "enum:" + "|".join(KINDS)),
        ("norm", "optfloat"),
        ("norm_unit", "str"),
        ("tier_norms", "str"),
    ],
    "demand.csv": [("area_id", "id"), ("intervention_id", "id"), ("patients", "float")],
    "baseline_volumes.csv": [("site_id", "id"), ("intervention_id", "id"), ("volume", "float")],
    "travel_times.csv": [("area_id", "id"), ("site_id", "id"), ("minutes", "float")],
}

#: Largest whole number an int column accepts (exact in float64, fits in int64).
_MAX_INT = 2.0**53

#: Tables that must have at least one data row.
_NEEDS_ROWS = ("regions.csv", "sites.csv", "areas.csv", "treatments.csv")

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def parse_tier_norms(text: str) -> dict[str, float] | None:
    """Parse ``"HHOC:200;PP:80;PPR:50"`` into ``{"HHOC": 200.0, ...}``; empty -> ``None``.

    Raises ``ValueError`` on a malformed entry.
    """
    text = (text or "").strip()
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        role, sep, value = part.partition(":")
        role = role.strip()
        if not sep or role not in HN_ROLES:
            raise ValueError(f"bad tier entry {part!r} (expected ROLE:NUMBER, ROLE in {HN_ROLES})")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"bad tier norm {part!r}")
        out[role] = number
    return out or None


def format_tier_norms(tiers: dict[str, float] | None) -> str:
    """Inverse of :func:`parse_tier_norms` (integers written without decimals)."""
    if not tiers:
        return ""
    return ";".join(f"{role}:{_fmt_number(value)}" for role, value in tiers.items())


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


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
        )


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def load_dataset(source: str | Path | None = None) -> Dataset:
    """Load and validate a dataset.

    ``None`` is the embedded national default (``geo/data/default``, districts as origin
    areas), ``"municipalities"`` the same country with municipalities as origin areas,
    ``"example"`` the embedded example region, anything else a folder in the documented
    format. The embedded datasets are cached in-process; each call returns an independent copy.
    Raises :class:`DataError` on any problem with the input.
    """
    if source is None:
        return _load_embedded(str(DEFAULT_DIR)).copy()
    if isinstance(source, str) and source == "example":
        return _load_embedded(str(EXAMPLE_DIR)).copy()
    if isinstance(source, str) and source == "municipalities":
        return _load_embedded(str(MUNICIPALITIES_DIR)).copy()
    folder = Path(source)
    if not folder.is_dir():
        raise DataError(str(folder), None, None, "not a dataset folder (no such directory)")
    return _load_folder(folder)


@functools.lru_cache(maxsize=4)
def _load_embedded(folder: str) -> Dataset:
    return _load_folder(Path(folder))


def clear_cache() -> None:
    """Forget the cached embedded datasets (e.g. after rebuilding the default)."""
    _load_embedded.cache_clear()


def _decode(file: str, data: bytes) -> str:
    """UTF-8 text of a file (a leading BOM dropped); a DataError names the row of a bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].split(b"\n")
        line = len(before)  # 1-based line of the bad byte
        # Data rows are counted like the parsed table: header excluded, blank lines skipped.
        row = sum(1 for text in before[1:-1] if text.strip(b"\r")) + 1 if line > 1 else None
        byte = data[exc.start : exc.start + 1].hex()
        where = "in the header" if row is None else "in this row"
        raise DataError(
            file, row, None,
            f"not UTF-8 text (byte 0x{byte} {where}); save the file as UTF-8",
        ) from None


def _parse_csv(file: str, text: str) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of CSV text; every row must have as many fields as the header.

    Blank lines are skipped (they are not counted as rows).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    try:
        header = next((r for r in reader if r), None)
        if header is None:
            raise DataError(file, None, None, "file is empty (no header row)")
        for fields in reader:
            if not fields:
                continue
            rows.append(fields)
            if len(fields) != len(header):
                raise DataError(
                    file, len(rows), None,
                    f"has {len(fields)} fields but the header has {len(header)}",
                )
    except csv.Error as exc:
        raise DataError(file, len(rows) + 1, None, f"malformed CSV ({exc})") from None
    return header, rows


def _read_table(folder: Path, file: str, required: bool = True) -> pd.DataFrame | None:
    """Read one CSV as strings and convert its columns per ``_SCHEMA`` (raising DataError).

    Accepts a UTF-8 byte-order mark and Windows line ends; anything not UTF-8, a row with a
    different number of fields than the header, duplicate or unnamed columns are refused.
    """
    path = folder / file
    if not path.exists():
        if required:
            raise DataError(file, None, None, "file is missing")
        return None
    if not path.is_file():
        raise DataError(file, None, None, "not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(file, None, None, f"cannot read ({exc.strerror or exc})") from None
    header, rows = _parse_csv(file, _decode(file, data))
    header = [name.strip() for name in header]
    spec = _SCHEMA[file]
    expected = [name for name, _ in spec]
    for pos, name in enumerate(header):
        if not name:
            raise DataError(file, None, None, f"column {pos + 1} of the header has no name")
        if name in header[:pos]:
            raise DataError(file, None, name, "duplicate column")
    for name in expected:
        if name not in header:
            raise DataError(file, None, name, "missing column")
    extra = [c for c in header if c not in expected]
    if extra:
        raise DataError(file, None, extra[0], "unexpected column (expected: "
                        + ", ".join(expected) + ")")
    if file in _NEEDS_ROWS and not rows:
        raise DataError(file, None, None, "no data rows (only a header)")
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    raw = {name: pd.Series(values, dtype=object) for name, values in zip(header, columns,
                                                                          strict=True)}
    out = pd.DataFrame(index=pd.RangeIndex(len(rows)))
    for name, kind in spec:
        out[name] = _convert(file, name, kind, raw[name].astype(str))
    return out


def _first_bad(file: str, field: str, mask: np.ndarray, values: pd.Series,
               message: Callable[[str], str]) -> None:
    """Raise DataError for the first True in ``mask`` (row numbers are 1-based data rows)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        pos = int(np.argmax(mask))
        raise DataError(file, pos + 1, field, message(str(values.iloc[pos])))


def _convert(file: str, field: str, kind: str, col: pd.Series) -> pd.Series:
    text = col.str.strip()
    if kind == "id":
        _first_bad(file, field, (text == "").to_numpy(), text, lambda v: "missing value")
        return text
    if kind == "str":
        return text
    if kind.startswith("enum:"):
        allowed = kind[5:].split("|")
        _first_bad(file, field, ~text.isin(allowed).to_numpy(), text,
                   lambda v: f"must be one of {', '.join(allowed)} (got {v!r})")
        return text
    if kind == "bool":
        low = text.str.lower()
        _first_bad(file, field, ~low.isin(_TRUE | _FALSE).to_numpy(), text,
                   lambda v: f"must be true or false (got {v!r})")
        return low.isin(_TRUE)
    # numbers
    optional = kind == "optfloat"
    empty = (text == "").to_numpy()
    if not optional:
        _first_bad(file, field, empty, text, lambda v: "missing value")
    numbers = pd.to_numeric(text.where(~empty, None), errors="coerce").astype(float)
    values = numbers.to_numpy()
    failed = np.isnan(values) & ~empty
    if failed.any():
        nan_text = failed & text.str.lower().isin(["nan", "na", "n/a", "null", "none"]).to_numpy()
        _first_bad(file, field, nan_text, text, lambda v: f"missing value (NaN: {v!r})")
        _first_bad(file, field, failed, text, lambda v: f"not a number ({v!r})")
    _first_bad(file, field, np.isinf(values), text, lambda v: f"not a finite number ({v!r})")
    if kind == "int":
        _first_bad(file, field, ~np.isnan(values) & (values != np.round(values)), text,
                   lambda v: f"not a whole number ({v!r})")
        _first_bad(file, field, np.abs(values) > _MAX_INT, text,
                   lambda v: f"too large for a whole number ({v})")
    if kind in ("xcoord", "ycoord"):
        low, high = RD_X_RANGE if kind == "xcoord" else RD_Y_RANGE
        _first_bad(file, field, (values < low) | (values > high), text,
                   lambda v: f"outside the Netherlands (RD New {field} must be in "
                             f"{low:.0f}..{high:.0f}; got {v})")
        return numbers
    _first_bad(file, field, values < 0, text, lambda v: f"negative number ({v})")
    if kind == "int":
        return numbers.astype(np.int64)
    return numbers


def _check_unique(file: str, frame: pd.DataFrame, keys: list[str]) -> None:
    dup = frame.duplicated(subset=keys, keep="first").to_numpy()
    if dup.any():
        pos = int(np.argmax(dup))
        value = ", ".join(str(frame[k].iloc[pos]) for k in keys)
        raise DataError(file, pos + 1, keys[-1] if len(keys) == 1 else ",".join(keys),
                        f"duplicate id ({value})")


def _check_ref(file: str, frame: pd.DataFrame, field: str, known: pd.Series,
               target: str) -> None:
    bad = pd.Index(known.to_numpy(dtype=object)).get_indexer(
        frame[field].to_numpy(dtype=object)) < 0
    _first_bad(file, field, bad, frame[field], lambda v: f"unknown id {v!r} (not in {target})")


#: Characters an id may not contain: ids name files (maps, plots), so no path can hide in one.
_ID_FORBIDDEN = ("/", "\\", "\x00", "\n", "\r", "\t")
#: Region ids with a meaning on the command line.
_RESERVED_REGION_IDS = ("all",)


def _check_ids(file: str, frame: pd.DataFrame, field: str) -> None:
    """Ids never become paths unsanitised: no separators, control characters or leading dot."""
    values = frame[field].astype(str)
    bad = values.map(
        lambda v: not v.strip() or v.startswith(".") or any(c in v for c in _ID_FORBIDDEN)
    ).to_numpy(dtype=bool)
    _first_bad(file, field, bad, values,
               lambda v: f"id {v!r} may not be empty, start with '.' or contain '/', '\\' or "
               "control characters")


#: A point counts as on land in the Netherlands within this distance (m) of the embedded CBS
#: municipality polygons (which leave out the sea and the IJsselmeer); it allows for coastal
#: hospitals and simplified coastlines.
LAND_TOLERANCE_M = 2_000.0
#: A site must lie within this distance (m) of an origin area of its own region.
REGION_TOLERANCE_M = 30_000.0
_EXAMPLES = 3


@functools.lru_cache(maxsize=1)
def _land_tree() -> Any:
    import pyogrio
    import shapely

    table = pyogrio.read_dataframe(MUNICIPALITIES_DIR / "areas.gpkg", columns=[])
    return shapely.STRtree(np.asarray(table.geometry.values))


def _examples(ids: pd.Series, x: pd.Series, y: pd.Series, mask: np.ndarray) -> str:
    picked = [f"{i} ({a:.0f}, {b:.0f})" for i, a, b in
              zip(ids[mask][:_EXAMPLES], x[mask][:_EXAMPLES], y[mask][:_EXAMPLES])]
    return ", ".join(picked)


def check_geography(sites: pd.DataFrame, areas: pd.DataFrame, *, on_land: bool = True) -> None:
    """Raise DataError unless every site and area lies on land in the Netherlands and every
    site lies in or near its stated region (within :data:`REGION_TOLERANCE_M` of one of the
    region's areas). The message gives the count and the first few examples.

    A bounding box lets through a site in the North Sea or an area in the IJsselmeer (hours of
    ferry travel in the network) and a hospital of one region placed in another.
    ``on_land=False`` (a dataset marked ``"synthetic": true``) checks only the regions.
    """
    import shapely
    from scipy.spatial import cKDTree

    tree = _land_tree() if on_land else None
    for file, frame, key in (("sites.csv", sites, "site_id"), ("areas.csv", areas, "area_id")):
        if tree is None:
            break
        points = shapely.points(frame["x"].to_numpy(float), frame["y"].to_numpy(float))
        hit = tree.query(points, predicate="dwithin", distance=LAND_TOLERANCE_M)[0]
        off = ~np.isin(np.arange(len(frame)), hit)
        if off.any():
            first = int(np.argmax(off))
            raise DataError(
                file, first + 1, "x,y",
                f"{int(off.sum())} of {len(frame)} points lie more than "
                f"{LAND_TOLERANCE_M / 1000:g} km from land in the Netherlands (CBS municipality "
                f"polygons), e.g. {_examples(frame[key], frame['x'], frame['y'], off)}",
            )
    far = np.zeros(len(sites), dtype=bool)
    site_regions = sites["region_id"].astype(str).to_numpy()
    area_regions = areas["region_id"].astype(str).to_numpy()
    for region in np.unique(site_regions):
        in_region = area_regions == region
        if not in_region.any():
            continue
        kd = cKDTree(np.column_stack([areas["x"].to_numpy(float)[in_region],
                                      areas["y"].to_numpy(float)[in_region]]))
        here = site_regions == region
        distance, _ = kd.query(np.column_stack([sites["x"].to_numpy(float)[here],
                                                sites["y"].to_numpy(float)[here]]))
        far[here] = distance > REGION_TOLERANCE_M
    if far.any():
        first = int(np.argmax(far))
        raise DataError(
            "sites.csv", first + 1, "region_id",
            f"{int(far.sum())} of {len(sites)} sites lie more than "
            f"{REGION_TOLERANCE_M / 1000:g} km from every area of their stated region, e.g. "
            + ", ".join(
                f"{i} in {r}" for i, r in zip(sites["site_id"][far][:_EXAMPLES],
                                              sites["region_id"][far][:_EXAMPLES])
            ),
        )


def _load_folder(folder: Path) -> Dataset:
    meta = _read_meta(folder)
    regions = _read_table(folder, "regions.csv")
    sites = _read_table(folder, "sites.csv")
    areas = _read_table(folder, "areas.csv")
    treatments = _read_table(folder, "treatments.csv")
    demand = _read_table(folder, "demand.csv")
    baseline = _read_table(folder, "baseline_volumes.csv")
    travel = _read_table(folder, "travel_times.csv", required=False)
    assert regions is not None and sites is not None and areas is not None
    assert treatments is not None and demand is not None and baseline is not None

    for file, frame, field in (
        ("regions.csv", regions, "region_id"), ("sites.csv", sites, "site_id"),
        ("areas.csv", areas, "area_id"), ("treatments.csv", treatments, "intervention_id"),
        ("treatments.csv", treatments, "group_id"),
    ):
        _check_ids(file, frame, field)
    _first_bad("regions.csv", "region_id",
               regions["region_id"].astype(str).isin(_RESERVED_REGION_IDS).to_numpy(),
               regions["region_id"], lambda v: f"{v!r} is reserved (--region all)")
    _check_unique("regions.csv", regions, ["region_id"])
    _check_unique("sites.csv", sites, ["site_id"])
    _check_unique("areas.csv", areas, ["area_id"])
    _check_unique("treatments.csv", treatments, ["intervention_id"])
    _check_unique("demand.csv", demand, ["area_id", "intervention_id"])
    _check_unique("baseline_volumes.csv", baseline, ["site_id", "intervention_id"])
    if travel is not None:
        _check_unique("travel_times.csv", travel, ["area_id", "site_id"])

    _check_ref("sites.csv", sites, "region_id", regions["region_id"], "regions.csv")
    _check_ref("areas.csv", areas, "region_id", regions["region_id"], "regions.csv")
    _check_ref("demand.csv", demand, "area_id", areas["area_id"], "areas.csv")
    _check_ref("demand.csv", demand, "intervention_id", treatments["intervention_id"],
               "treatments.csv")
    _check_ref("baseline_volumes.csv", baseline, "site_id", sites["site_id"], "sites.csv")
    _check_ref("baseline_volumes.csv", baseline, "intervention_id",
               treatments["intervention_id"], "treatments.csv")
    if travel is not None:
        _check_ref("travel_times.csv", travel, "area_id", areas["area_id"], "areas.csv")
        _check_ref("travel_times.csv", travel, "site_id", sites["site_id"], "sites.csv")

    _check_areas(areas)
    _check_treatments(treatments)
    _check_regions_have_sites(regions, sites)
    process_ids = treatments.loc[treatments["kind"] == "process", "intervention_id"]
    for file, frame in (("demand.csv", demand), ("baseline_volumes.csv", baseline)):
        _first_bad(file, "intervention_id", frame["intervention_id"].isin(process_ids).to_numpy(),
                   frame["intervention_id"],
                   lambda v: f"{v!r} is a process norm (kind process): it has no patients")
    _check_balance(regions, sites, areas, demand, baseline)
    check_geography(sites, areas, on_land=meta.get("synthetic") is not True)

    geometries = _read_geometries(folder, areas)
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
    )


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "dataset.json"
    if not path.exists():
        raise DataError("dataset.json", None, None, "file is missing")
    try:
        meta = json.loads(_decode("dataset.json", path.read_bytes()))
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
    _first_bad("areas.csv", "pop_65plus", bad, areas["pop_65plus"],
               lambda v: f"larger than population ({v})")


def _check_treatments(treatments: pd.DataFrame) -> None:
    file = "treatments.csv"
    kind = treatments["kind"]
    norm = treatments["norm"]
    needs = (kind.isin(["volume", "process"]) & norm.isna()).to_numpy()
    _first_bad(file, "norm", needs, norm, lambda v: "missing value (kind volume/process needs a "
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
    _first_bad("regions.csv", "region_id", empty, regions["region_id"],
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


def _read_geometries(folder: Path, areas: pd.DataFrame) -> Any:
    path = folder / "areas.gpkg"
    if not path.exists():
        return None
    import geopandas as gpd
    import pyogrio
    from pyproj import CRS as ProjCRS

    file = "areas.gpkg"
    try:
        layers = [name for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # any driver error means an unreadable file
        raise DataError(file, None, None, f"cannot read GeoPackage ({exc})") from exc
    if not layers:
        raise DataError(file, None, None, "GeoPackage has no layers")
    layer = "areas" if "areas" in layers else None
    if layer is None:
        if len(layers) != 1:
            raise DataError(file, None, None, f"no layer 'areas' (layers: {', '.join(layers)})")
        layer = layers[0]
    try:
        frame = gpd.read_file(path, layer=layer, engine="pyogrio", use_arrow=True)
    except Exception:  # arrow is optional; fall back to the plain reader
        try:
            frame = gpd.read_file(path, layer=layer, engine="pyogrio")
        except Exception as exc:  # any driver error means an unreadable file
            message = " ".join(str(exc).split())
            raise DataError(file, None, None, f"cannot read layer {layer!r} ({message})") from None
    if "area_id" not in frame.columns:
        raise DataError(file, None, "area_id", "missing column")
    if "geometry" not in frame.columns or not hasattr(frame, "geometry"):
        raise DataError(file, None, "geometry", "the layer has no geometry column")
    if frame.crs is None:
        raise DataError(file, None, "geometry", "no CRS: the layer must declare its coordinate "
                        f"reference system (expected {CRS})")
    try:
        crs = ProjCRS.from_user_input(frame.crs)
    except Exception as exc:
        raise DataError(file, None, "geometry", f"unknown CRS ({exc})") from exc
    if not crs.equals(ProjCRS.from_epsg(28992), ignore_axis_order=True):
        _check_reprojectable(file, crs)
        try:
            frame = frame.to_crs(CRS)
        except Exception as exc:  # pyproj cannot transform this CRS
            message = " ".join(str(exc).split())
            raise DataError(file, None, "geometry", f"cannot reproject from CRS {crs.name!r} "
                            f"to {CRS} ({message})") from None
    else:
        frame = frame.set_crs(CRS, allow_override=True)
    frame = frame[["area_id", "geometry"]].copy()
    frame["area_id"] = frame["area_id"].astype(str).str.strip()
    _check_unique(file, frame, ["area_id"])
    _check_ref(file, frame, "area_id", areas["area_id"], "areas.csv")
    _first_bad(file, "geometry", frame.geometry.isna().to_numpy(), frame["area_id"],
               lambda v: f"missing geometry (area {v})")
    bounds = frame.geometry.bounds.to_numpy(dtype=float)  # minx, miny, maxx, maxy
    with np.errstate(invalid="ignore"):
        outside = ~(np.isfinite(bounds).all(axis=1)
                    & (bounds[:, 0] >= RD_X_RANGE[0]) & (bounds[:, 2] <= RD_X_RANGE[1])
                    & (bounds[:, 1] >= RD_Y_RANGE[0]) & (bounds[:, 3] <= RD_Y_RANGE[1]))
    outside &= ~frame.geometry.is_empty.to_numpy()
    _first_bad(file, "geometry", outside, frame["area_id"],
               lambda v: f"area {v} lies outside the Netherlands in {CRS} (is the declared "
                         "CRS right?)")
    return frame.reset_index(drop=True)


def _check_reprojectable(file: str, crs: Any) -> None:
    """Refuse a CRS that cannot be reprojected to RD New safely.

    Safe: a geographic or projected CRS whose area of use (when known) covers the Netherlands.
    Refused: engineering / local grids (no datum to transform from) and CRSs meant for another
    part of the world (coordinates labelled with them cannot be Dutch areas).
    """
    if not (crs.is_projected or crs.is_geographic):
        raise DataError(file, None, "geometry", f"unsupported CRS {crs.name!r}: it cannot be "
                        f"reprojected to {CRS} safely (use {CRS} or EPSG:4326)")
    area = crs.area_of_use
    if area is None:
        return
    west, south, east, north = NL_LONLAT
    if area.east < west or area.west > east or area.north < south or area.south > north:
        raise DataError(file, None, "geometry", f"CRS {crs.name!r} does not cover the "
                        f"Netherlands (its area of use is longitude {area.west:g}..{area.east:g}, "
                        f"latitude {area.south:g}..{area.north:g}): refusing to reproject "
                        f"(use {CRS} or EPSG:4326)")


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
def _csv_text(frame: pd.DataFrame) -> str:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == bool:
            out[column] = np.where(out[column], "true", "false")
    # Default float formatting is repr (shortest round-tripping), so export -> load is exact;
    # the builder rounds values beforehand, so the files stay short and deterministic.
    return out.to_csv(index=False, lineterminator="\n")


def dataset_files(dataset: Dataset) -> dict[str, str]:
    """The CSV / JSON text of every table of ``dataset`` (file name -> text)."""
    meta = dict(dataset.meta)
    meta.setdefault("name", dataset.name)
    meta.setdefault("crs", CRS)
    treatments = dataset.treatments.copy()
    files = {
        "dataset.json": json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
        "regions.csv": _csv_text(dataset.regions[[c for c, _ in _SCHEMA["regions.csv"]]]),
        "sites.csv": _csv_text(dataset.sites[[c for c, _ in _SCHEMA["sites.csv"]]]),
        "areas.csv": _csv_text(dataset.areas[[c for c, _ in _SCHEMA["areas.csv"]]]),
        "treatments.csv": _csv_text(treatments[[c for c, _ in _SCHEMA["treatments.csv"]]]),
        "demand.csv": _csv_text(dataset.demand[[c for c, _ in _SCHEMA["demand.csv"]]]),
        "baseline_volumes.csv": _csv_text(
            dataset.baseline_volumes[[c for c, _ in _SCHEMA["baseline_volumes.csv"]]]
        ),
    }
    if dataset.travel_times is not None:
        files["travel_times.csv"] = _csv_text(
            dataset.travel_times[[c for c, _ in _SCHEMA["travel_times.csv"]]]
        )
    return files


def write_area_geometries(frame: Any, path: Path) -> None:
    """Write area polygons as layer ``areas`` (area_id, geometry) in EPSG:28992."""
    frame = frame[["area_id", "geometry"]].copy()
    if frame.crs is None:
        frame = frame.set_crs(CRS)
    elif str(frame.crs).upper() != CRS:
        frame = frame.to_crs(CRS)
    frame.to_file(path, layer="areas", driver="GPKG", engine="pyogrio")


def export_dataset(dataset: Dataset, out_dir: str | Path) -> Path:
    """Write ``dataset`` in the documented format to ``out_dir`` (atomically) and return it.

    All files are first written into a temporary folder beside ``out_dir``; then either that
    folder is renamed to ``out_dir`` (if it did not exist) or the files are moved in one by
    one with ``os.replace``. Files of the format that the dataset lacks (``travel_times.csv``,
    ``areas.gpkg``) are removed from an existing ``out_dir`` so it loads back as exported.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(str(out), None, None, "exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; the dataset is ordinary data
    try:
        for file, text in dataset_files(dataset).items():
            write_text(staging / file, text)
        if dataset.area_geometries is not None:
            write_area_geometries(dataset.area_geometries, staging / "areas.gpkg")
        if not out.exists():
            os.replace(staging, out)
            return out
        written = {p.name for p in staging.iterdir()}
        for path in sorted(staging.iterdir()):
            os.replace(path, out / path.name)
        for optional in ("travel_times.csv", "areas.gpkg"):
            if optional not in written and (out / optional).exists():
                (out / optional).unlink()
        return out
    finally:
        shutil.rmtree(staging, ignore_errors=True)
