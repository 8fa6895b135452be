"""The dataset format (docs/DATA_FORMAT.md): embedded folders, bounds of the Netherlands, the
column schema of every table and the text form of tiered norms."""

from __future__ import annotations

import math
from pathlib import Path

#: Folder of the embedded datasets (package data).
DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_DIR = DATA_DIR / "default"
EXAMPLE_DIR = DATA_DIR / "example"
MUNICIPALITIES_DIR = DATA_DIR / "default_municipalities"
#: The embedded datasets by the name that ``load_dataset`` takes (None: the national default).
EMBEDDED_DIRS = {None: DEFAULT_DIR, "example": EXAMPLE_DIR, "municipalities": MUNICIPALITIES_DIR}


def dataset_folder(source: str | Path | None = None) -> Path:
    """The folder that ``geo.dataset.load_dataset(source)`` reads: an embedded dataset by name
    (``None``, ``"example"``, ``"municipalities"``) or the folder given."""
    if source is None or (isinstance(source, str) and source in EMBEDDED_DIRS):
        return EMBEDDED_DIRS[source]
    return Path(source)

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
SCHEMA: dict[str, list[tuple[str, str]]] = {
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
    "baseline_flows.csv": [("area_id", "id"), ("site_id", "id"), ("intervention_id", "id"),
                           ("patients", "float")],
}


#: Optional columns per file (read and written when present): a site's AGB code (Vektis
#: "Algemeen GegevensBeheer" code of the hospital location), which volume tables may name.
OPTIONAL_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "sites.csv": [("agb", "str")],
}

#: Upper end of the documented range of every number column (the lower end is 0): finite
#: bounds so that no sum over the country overflows or dwarfs the rest (issue 27).
VALUE_LIMITS: dict[tuple[str, str], float] = {
    ("areas.csv", "population"): 1e8,
    ("areas.csv", "pop_65plus"): 1e8,
    ("treatments.csv", "norm"): 1e5,
    ("demand.csv", "patients"): 1e6,
    ("baseline_volumes.csv", "volume"): 1e6,
    ("travel_times.csv", "minutes"): 1440.0,
}
#: Longest id (ids name files: maps, plots, run folders) and the tier norm's upper end.
MAX_ID_LENGTH = 100
MAX_TIER_NORM = 1e5


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
        if not math.isfinite(number) or not 0 <= number <= MAX_TIER_NORM:
            raise ValueError(f"bad tier norm {part!r} (a number from 0 to {MAX_TIER_NORM:g})")
        out[role] = number
    return out or None


def format_tier_norms(tiers: dict[str, float] | None) -> str:
    """Inverse of :func:`parse_tier_norms` (integers written without decimals)."""
    if not tiers:
        return ""
    return ";".join(f"{role}:{_fmt_number(value)}" for role, value in tiers.items())


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


