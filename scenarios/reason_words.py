"""Why a hospital loses a treatment, in words of the run's language.

The optimiser says why as codes and numbers (:class:`herschik.optimiser.reasons.RoleReason`:
``codes``, own patients, required volume, the price of keeping it, hospital ids); this module
writes the sentence of hospital_changes.csv's ``reason`` column, the report and the app, in
the current language (herschik.i18n), with hospital names and the language's numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

from herschik.optimiser.reasons import RoleReason
from herschik.optimiser.tolerances import BELOW_NORM_TOL

from herschik.i18n import _, format_number

#: hospitals named in a reason (the rest are counted)
NAMED_SITES = 3


def _name(site_id: str, names: Mapping[str, str]) -> str:
    return names.get(site_id) or site_id


def _costs(r: RoleReason, names: Mapping[str, str]) -> list[str]:
    moves = r.keep_cost_moves or 0.0
    minutes = r.keep_cost_patient_min or 0.0
    costs = []
    if moves > BELOW_NORM_TOL:
        named = ", ".join(f"{_name(site, names)} {format_number(patients)}"
                          for site, patients in r.keep_moves_from[:NAMED_SITES])
        more = len(r.keep_moves_from) - NAMED_SITES
        if more > 0:
            named = _("{names} and {count} more", names=named, count=more)
        costs.append(_("{moves} optional moves (patients/yr from {names})",
                       moves=format_number(moves), names=named) if named
                     else _("{moves} optional moves", moves=format_number(moves)))
    if minutes >= 0.5:
        costs.append(_("{minutes} extra patient-minutes per year",
                       minutes=format_number(minutes, 0)))
    elif minutes <= -0.5:
        costs.append(_("{minutes} fewer patient-minutes per year",
                       minutes=format_number(-minutes, 0)))
    return costs


def reason_sentence(r: RoleReason, names: Mapping[str, str]) -> str:
    """Why ``r``'s role is lost and what keeping it would cost, in the current language;
    ``names``: site id -> hospital name."""
    parts = []
    for code in r.codes:
        if code == "closed_by_scenario":
            parts.append(_("closed by the scenario (force_close)"))
        elif code == "below_required_alone":
            parts.append(_("cannot reach the norm with its own patients ({own}/yr today, "
                           "{required} required)", own=format_number(r.own_patients),
                           required=format_number(r.required)))
        elif code == "no_plan_keeps":
            parts.append(_("no plan can keep it ({diagnosis})", diagnosis=r.infeasible_reason)
                         if r.infeasible_reason else _("no plan can keep it"))
        elif code == "keep_costs_nothing":
            parts.append(_("keeping it would cost nothing extra (another optimum keeps it)"))
        else:
            costs = " / ".join(_costs(r, names))
            closes = ", ".join(_name(site, names) for site in r.keep_closes)
            if costs and closes:
                parts.append(_("keeping it would cost {costs}, and {names} would lose it "
                               "instead", costs=costs, names=closes))
            elif costs:
                parts.append(_("keeping it would cost {costs}", costs=costs))
            elif closes:
                parts.append(_("keeping it and {names} would lose it instead", names=closes))
            else:  # between the tolerance and half a minute
                parts.append(_("keeping it would cost under one extra patient-minute per "
                               "year"))
    return "; ".join(parts)


def moves_from_text(r: RoleReason, names: Mapping[str, str]) -> str:
    """hospital_changes.csv's ``keep_moves_from``: ``name: patients/yr; …`` (a data column:
    the same in every language)."""
    return "; ".join(f"{_name(site, names)}: {patients:.1f}"
                     for site, patients in r.keep_moves_from)
