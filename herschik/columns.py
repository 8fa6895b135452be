"""The columns of the result tables and GIS layers, defined once.

``optimiser.results`` builds ``site_volumes``, ``assignments`` and ``hospital_changes`` with
these columns in this order; ``geo.export`` (which must not import the optimiser) reads the
same tables back into GIS layers and converts each column by its ``kind``. Descriptions are
in docs/OUTPUTS.md and docs/CLI.md.

This module imports nothing of the project, so every layer can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AREAS_LAYER",
    "AREAS_LAYER_COLUMNS",
    "ASSIGNMENTS",
    "ASSIGNMENT_COLUMNS",
    "FLOWS_LAYER",
    "FLOWS_LAYER_COLUMNS",
    "HOSPITAL_CHANGES",
    "HOSPITAL_CHANGE_COLUMNS",
    "NAME_COLUMNS",
    "ODDS_COLUMNS",
    "SITES_LAYER",
    "SITES_LAYER_COLUMNS",
    "SITE_VOLUMES",
    "SITE_VOLUME_COLUMNS",
    "Column",
    "of_kind",
]

#: id: read as text; name: a label beside an id (empty when absent); number: float;
#: flag: true/false; word: one of a fixed set of words
Kind = Literal["id", "name", "number", "flag", "word"]


@dataclass(frozen=True)
class Column:
    """One column of a result table: its name and how a reader converts it."""

    name: str
    kind: Kind


SITE_VOLUMES: tuple[Column, ...] = (
    Column("region_id", "id"),
    Column("site_id", "id"),
    Column("site_name", "name"),
    Column("intervention_id", "id"),
    Column("norm", "number"),
    Column("required_min", "number"),
    Column("volume_before", "number"),
    Column("volume_after", "number"),
    Column("kept_before", "flag"),
    Column("kept_after", "flag"),
    Column("p_meet_norm_1y", "number"),
    Column("p_meet_norm_period", "number"),
)
ASSIGNMENTS: tuple[Column, ...] = (
    Column("region_id", "id"),
    Column("area_id", "id"),
    Column("area_name", "name"),
    Column("intervention_id", "id"),
    Column("site_id", "id"),
    Column("site_name", "name"),
    Column("patients", "number"),
    Column("travel_min", "number"),
    Column("travel_min_before", "number"),
    Column("extra_min", "number"),
)
HOSPITAL_CHANGES: tuple[Column, ...] = (
    Column("region_id", "id"),
    Column("site_id", "id"),
    Column("site_name", "name"),
    Column("intervention_id", "id"),
    Column("intervention_name", "name"),
    Column("norm", "number"),
    Column("required_min", "number"),
    Column("volume_before", "number"),
    Column("volume_after", "number"),
    Column("volume_change", "number"),
    Column("status", "word"),
    Column("p_meet_norm_1y", "number"),
    Column("p_meet_norm_period", "number"),
)


#: GeoPackage / GeoJSON layers (geo.export): ``sites`` is a site_volumes row with its changes
SITES_LAYER: tuple[Column, ...] = SITE_VOLUMES + (
    Column("gained", "flag"),
    Column("lost", "flag"),
    Column("volume_change", "number"),
    Column("organisation", "name"),
    Column("site_type", "word"),
)
#: one (area, treatment) with patients: its main site and patient-weighted travel
AREAS_LAYER: tuple[Column, ...] = (
    Column("region_id", "id"),
    Column("area_id", "id"),
    Column("area_name", "name"),
    Column("intervention_id", "id"),
    Column("site_id", "id"),
    Column("site_name", "name"),
    Column("site_share", "number"),
    Column("n_sites", "number"),
    Column("patients", "number"),
    Column("travel_min_before", "number"),
    Column("travel_min_after", "number"),
    Column("extra_min", "number"),
)
#: one line per assignments row
FLOWS_LAYER: tuple[Column, ...] = ASSIGNMENTS


def of_kind(table: tuple[Column, ...], kind: Kind) -> list[str]:
    """The names of ``table``'s columns of ``kind``, in table order."""
    return [column.name for column in table if column.kind == kind]


SITE_VOLUME_COLUMNS: list[str] = [column.name for column in SITE_VOLUMES]
ASSIGNMENT_COLUMNS: list[str] = [column.name for column in ASSIGNMENTS]
HOSPITAL_CHANGE_COLUMNS: list[str] = [column.name for column in HOSPITAL_CHANGES]
SITES_LAYER_COLUMNS: list[str] = [column.name for column in SITES_LAYER]
AREAS_LAYER_COLUMNS: list[str] = [column.name for column in AREAS_LAYER]
FLOWS_LAYER_COLUMNS: list[str] = ASSIGNMENT_COLUMNS
#: the odds of meeting the norm (site_volumes, hospital_changes); result folders written
#: before they existed lack them: read as empty
ODDS_COLUMNS: tuple[str, ...] = ("p_meet_norm_1y", "p_meet_norm_period")
#: the names beside the codes in assignments (older result folders lack them: read as empty)
NAME_COLUMNS: tuple[str, ...] = tuple(of_kind(ASSIGNMENTS, "name"))
