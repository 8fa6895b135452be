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
    "LATER_ASSIGNMENT_COLUMNS",
    "LATER_SITE_VOLUME_COLUMNS",
    "HOSPITAL_CHANGES",
    "HOSPITAL_FLOWS",
    "HOSPITAL_FLOWS_LAYER",
    "HOSPITAL_FLOW_COLUMNS",
    "HOSPITAL_CHANGE_COLUMNS",
    "MOVES",
    "NAME_COLUMNS",
    "ODDS_COLUMNS",
    "SITES_LAYER",
    "SITES_LAYER_COLUMNS",
    "SITE_VOLUMES",
    "SITE_VOLUME_COLUMNS",
    "LABELS",
    "Column",
    "label",
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
    Column("treatment_status", "word"),
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
    # the hospital of today of these patients (optimiser/transfers.py: the rows of an area and
    # treatment add up to its flow per site after and to today's flow per site of today)
    Column("site_id_before", "id"),
    Column("site_name_before", "name"),
    Column("travel_min_site_before", "number"),
    Column("move", "word"),
    Column("treatment_status", "word"),
)
#: flows.csv: patients per year from a hospital of today to another hospital after
HOSPITAL_FLOWS: tuple[Column, ...] = (
    Column("region_id", "id"),
    Column("intervention_id", "id"),
    Column("intervention_name", "name"),
    Column("site_id_from", "id"),
    Column("site_name_from", "name"),
    Column("site_id_to", "id"),
    Column("site_name_to", "name"),
    Column("move", "word"),
    Column("patients", "number"),
    Column("travel_min_from", "number"),
    Column("travel_min_to", "number"),
    Column("mean_extra_min", "number"),
    Column("max_extra_min", "number"),
    Column("treatment_status", "word"),
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
    Column("treatment_status", "word"),
    # kept (provides it after with a norm) within 10 % above the required minimum
    Column("fragile", "flag"),
    # lost roles (optimiser/reasons.py): why, in words, and the exact price of keeping it
    Column("reason", "name"),
    Column("keep_feasible", "flag"),
    Column("keep_cost_moves", "number"),
    Column("keep_cost_patient_min", "number"),
    Column("keep_moves_from", "name"),
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
#: one line per flows.csv row, from the hospital of today to the hospital after
HOSPITAL_FLOWS_LAYER: tuple[Column, ...] = HOSPITAL_FLOWS


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
HOSPITAL_FLOW_COLUMNS: list[str] = [column.name for column in HOSPITAL_FLOWS]
#: the names beside the codes in assignments (older result folders lack them: read as empty)
NAME_COLUMNS: tuple[str, ...] = tuple(of_kind(ASSIGNMENTS, "name"))
#: assignments columns that older result folders lack (read as empty)
LATER_ASSIGNMENT_COLUMNS: tuple[str, ...] = (
    "site_id_before", "site_name_before", "travel_min_site_before", "move", "treatment_status")
#: site_volumes columns that older result folders lack (read as empty)
LATER_SITE_VOLUME_COLUMNS: tuple[str, ...] = (*ODDS_COLUMNS, "treatment_status")
#: ``move`` of an assignments / flows.csv row: the patients stay at their hospital of today;
#: are displaced (it stops the treatment); are moved although it keeps the treatment
#: (optional); or are new (demand growth: no hospital of today)
MOVES: tuple[str, ...] = ("stays", "displaced", "moved_optional", "new")


def N_(message: str) -> str:
    """Mark ``message`` for the catalog (tools/update_catalog.py reads ``N_``); the same as
    herschik.i18n.N_, here because this module imports nothing of the project."""
    return message


#: readable headers of the result tables' columns (workbook, report), with their units; a
#: column without a label is shown by its name
LABELS: dict[str, str] = {
    "region_id": N_("Region"),
    "site_id": N_("Hospital id"),
    "site_name": N_("Hospital"),
    "site_id_before": N_("Hospital id today"),
    "site_name_before": N_("Hospital today"),
    "site_id_from": N_("From hospital id"),
    "site_name_from": N_("From hospital"),
    "site_id_to": N_("To hospital id"),
    "site_name_to": N_("To hospital"),
    "area_id": N_("Area id"),
    "area_name": N_("Area"),
    "intervention_id": N_("Treatment id"),
    "intervention_name": N_("Treatment"),
    "norm": N_("Norm (patients/yr)"),
    "required_min": N_("Required minimum (patients/yr)"),
    "volume_before": N_("Patients/yr today"),
    "volume_after": N_("Patients/yr after"),
    "volume_change": N_("Change (patients/yr)"),
    "kept_before": N_("Provides it today"),
    "kept_after": N_("Provides it after"),
    "status": N_("Outcome"),
    "treatment_status": N_("Treatment plan status"),
    "patients": N_("Patients/yr"),
    "travel_min": N_("Travel after (min)"),
    "travel_min_before": N_("Area's mean travel today (min)"),
    "travel_min_site_before": N_("Travel to hospital today (min)"),
    "travel_min_from": N_("Mean travel today (min)"),
    "travel_min_to": N_("Mean travel after (min)"),
    "extra_min": N_("Extra travel (min)"),
    "mean_extra_min": N_("Mean extra travel (min)"),
    "max_extra_min": N_("Largest extra travel (min)"),
    "move": N_("Move"),
    "fragile": N_("Fragile (within 10 % of the minimum)"),
    "reason": N_("Why it loses the treatment"),
    "keep_feasible": N_("Could it be kept?"),
    "keep_cost_moves": N_("Keeping it: optional moves (patients/yr)"),
    "keep_cost_patient_min": N_("Keeping it: extra patient-minutes/yr"),
    "keep_moves_from": N_("Keeping it: patients/yr from"),
    "p_meet_norm_1y": N_("Odds of meeting the norm (1 year)"),
    "p_meet_norm_period": N_("Odds of meeting the norm (period)"),
    # the summary, kpis and per_treatment sheets of the workbook
    "key": N_("Field"),
    "kpi": N_("KPI"),
    "patients_moved": N_("Patients treated elsewhere (patients/yr)"),
    "patients_displaced": N_("Patients displaced (patients/yr)"),
    "displaced_share": N_("Share displaced"),
    "displaced_mean_extra_min": N_("Mean extra travel of displaced patients (min)"),
    "displaced_p90_extra_min": N_("90th percentile extra travel of displaced patients (min)"),
    "displaced_max_extra_min": N_("Largest extra travel of a displaced patient (min)"),
    "patients_moved_optional": N_("Optional moves (patients/yr)"),
    "providers_before": N_("Providers today"),
    "providers_after": N_("Providers after"),
    "providers_lost": N_("Providers lost"),
    "providers_gained": N_("Providers gained"),
}


def label(column: str) -> str:
    """The readable header of ``column`` in English (its name when it has none); the
    workbook shows it in the output language through herschik.i18n."""
    return LABELS.get(column, column.replace("_", " ").capitalize())
