"""Why a change has no plan, and the nearest settings that have one (each one click away).

The diagnosis of an infeasible solve (:mod:`herschik.optimiser.diagnose`) in plain words
(names instead of ids), and suggestions: the margin, confidence and travel limit the diagnosis
found; else the feasible value of a tightened limit nearest the request, between it and the
plan on screen (bisection with the diagnosis' feasibility check, within
:data:`NEAREST_BUDGET_S`); or dropping a forced keep / close just added, when that alone is
feasible; and going back to the plan on screen.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from herschik.optimiser.decomposition import treatment_components
from herschik.optimiser.diagnose import is_feasible
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.scenarios.run import RunResult
from pydantic import BaseModel

from herschik.i18n import N_, _, format_number

from .models import Plan, PlanSettings, describe, percent
from .views import pair_text, plain_words

#: wall-clock budget for finding the nearest feasible value of a changed limit
NEAREST_BUDGET_S = 5.0
#: the limits a nearest feasible value is sought for: (key, words, unit, digits, whether a
#: larger value is looser)
LIMITS: tuple[tuple[str, str, str, int, bool], ...] = (
    ("margin", N_("margin"), "%", 2, False),
    ("max_travel", N_("travel limit"), " min", 0, True),
    ("max_extra_travel", N_("extra-travel limit"), " min", 0, True),
    ("max_loss_share", N_("loss share"), "%", 2, True),
)


class Suggestions:
    """The suggested settings, each different from the request and from the others."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.items: list[dict[str, Any]] = []

    def add(self, text: str, **update: Any) -> None:
        """Suggest the request with ``update`` applied, in the words ``text``."""
        data = self.settings.model_dump()
        for key, value in update.items():
            data[key] = (
                [v.model_dump() if isinstance(v, BaseModel) else v for v in value]
                if isinstance(value, list)
                else value
            )
        fixed = PlanSettings.model_validate(data).model_dump()
        if fixed != self.settings.model_dump() and all(
                s["settings"] != fixed for s in self.items):
            self.items.append({"text": text, "settings": fixed})


def infeasible_info(settings: Any, instance: Instance, params: SolveParams, run: RunResult,
                    previous: Plan | None, names: dict[str, str]) -> dict[str, Any]:
    """Plain-words diagnosis of ``run`` and the nearest feasible settings. ``previous``: the
    complete plan the change was made to (the one on screen, else the region's latest complete
    plan; None: the region has none)."""
    diagnosis = run.summary.get("diagnosis") or {}
    suggestions = Suggestions(settings)
    covered = diagnosed_values(settings, diagnosis, suggestions)
    if previous is not None:
        treatments = treatments_to_check(instance, params, diagnosis)
        nearest_limits(settings, previous.settings, instance, params, treatments, covered,
                       suggestions)
        dropped_forcing(settings, previous.settings, instance, treatments, names, suggestions)
        suggestions.add(_("Go back to {plan}", plan=previous.name),
                        **previous.settings.model_dump())
    return {
        "reason": plain_words(str(diagnosis.get("reason", _("The scenario is infeasible."))),
                              names),
        "reasons": [plain_words(str(r), names) for r in diagnosis.get("reasons", [])],
        "infeasible_treatments": [
            names.get(t, t) for t in diagnosis.get("infeasible_treatments", [])
        ],
        "diagnosis": diagnosis,
        "requested": settings.model_dump(),
        "requested_text": describe(settings),
        "suggestions": suggestions.items,
    }


def partial_info(settings: Any, instance: Instance, params: SolveParams, run: RunResult,
                 previous: Plan | None, names: dict[str, str]) -> dict[str, Any]:
    """What a partial plan lacks: the treatments without a plan, each with its reasons in
    plain words, a headline, and (as for an infeasible change) the nearest settings that give
    every treatment a plan."""
    info = infeasible_info(settings, instance, params, run, previous, names)
    diagnosis = info["diagnosis"]
    statuses = run.summary.get("treatment_status") or {}
    missing = [tid for tid in instance.treatment_ids
               if statuses.get(tid) not in ("optimal", "feasible")]
    treatments = [{"id": tid, "name": names.get(tid, tid),
                   "status": statuses.get(tid),
                   "reasons": treatment_reasons(tid, diagnosis, names)} for tid in missing]
    info["treatments"] = treatments
    info["total"] = len(instance.treatment_ids)
    info["reason"] = _("No plan for {count} of {total} treatments ({treatments}); the other "
                       "treatments have a plan, shown on the map.", count=len(missing),
                       total=len(instance.treatment_ids),
                       treatments=", ".join(t["name"] for t in treatments))
    return info


def treatment_reasons(tid: str, diagnosis: dict[str, Any], names: dict[str, str]) -> list[str]:
    """The diagnosis' reasons that concern treatment ``tid``, in plain words and without the
    treatment's name in front (they are listed under it); else its own findings (areas that
    reach no viable hospital, capacity short of demand)."""
    name = names.get(tid, tid)
    own = [plain_words(str(r), names) for r in diagnosis.get("reasons", [])
           if f"({tid})" in str(r)]
    own = [r[len(name) + 2:] if r.startswith(f"{name}: ") else r for r in own]
    if own:
        return own
    areas = (diagnosis.get("areas_without_viable_site") or {}).get(tid)
    if areas:
        first = (areas.get("areas") or ["?"])[0]
        own.append(_("{count} area(s) can only reach sites that cannot reach the required "
                     "volume (e.g. {area})", count=areas.get("n_areas"),
                     area=names.get(first, first)))
    shortfall = (diagnosis.get("capacity_shortfall") or {}).get(tid)
    if shortfall:
        own.append(_("demand {demand}/yr exceeds the capacity of the sites able to provide it "
                     "({capacity})", demand=format_number(shortfall["demand"]),
                     capacity=format_number(shortfall["capacity"])))
    return own


def diagnosed_values(settings: Any, diagnosis: dict[str, Any], suggestions: Suggestions
                     ) -> set[str]:
    """Suggest the margin, confidence and travel limit the diagnosis found feasible; the keys
    of the limits it covered."""
    covered = set()
    margin = diagnosis.get("smallest_feasible_margin")
    if isinstance(margin, (int, float)) and margin < settings.margin:
        suggestions.add(_("Lower the margin to {margin}", margin=percent(margin)),
                        margin=float(margin))
        covered.add("margin")
    confidence = diagnosis.get("largest_feasible_confidence")
    if isinstance(confidence, (int, float)) and settings.norm_confidence is not None \
            and 0 < confidence < settings.norm_confidence:
        suggestions.add(_("Lower the confidence to {confidence}",
                          confidence=format(confidence, ".0%")), norm_confidence=float(confidence))
        covered.add("norm_confidence")
    travel = diagnosis.get("smallest_feasible_max_travel")
    if isinstance(travel, (int, float)) and settings.max_travel is not None:
        suggestions.add(_("Raise the travel limit to {minutes} min",
                          minutes=format(travel, ".0f")), max_travel=float(travel))
        covered.add("max_travel")
    return covered


def nearest_limits(settings: Any, old: Any, instance: Instance, params: SolveParams,
                   treatments: list[int], covered: set[str], suggestions: Suggestions) -> None:
    """Suggest, for each limit tightened since ``old`` (and not ``covered``), its feasible
    value nearest the request."""
    for key, label, unit, digits, larger_is_looser in LIMITS:
        new_value, old_value = getattr(settings, key), getattr(old, key)
        if key in covered or new_value is None or new_value == old_value:
            continue
        if old_value is not None and (new_value > old_value) == larger_is_looser:
            continue  # only a tightened limit has a nearest feasible value between
        nearest = nearest_limit(instance, params, treatments, key, new_value, old_value, digits)
        if nearest is not None:
            shown = percent(nearest) if unit == "%" else f"{nearest:g}{unit}"
            suggestions.add(_("Set the {limit} to {value}", limit=_(label), value=shown),
                            **{key: nearest})


def dropped_forcing(settings: Any, old: Any, instance: Instance, treatments: list[int],
                    names: dict[str, str], suggestions: Suggestions) -> None:
    """Suggest dropping the forced keeps (closes) added since ``old`` when that alone is
    feasible."""
    for key, word in (("force_keep", N_("keeping")), ("force_close", N_("closing"))):
        added = set(getattr(settings, key)) - set(getattr(old, key))
        if not added:
            continue
        kept = [p for p in getattr(settings, key) if p not in added]
        fixed = settings.model_copy(update={key: kept}).solve_params()
        if is_feasible(instance, fixed, treatments) is False:
            continue  # dropping it alone does not help: not a feasible setting
        what = "; ".join(pair_text(p, names) for p in sorted(
            added, key=lambda p: (p.site_id, p.intervention_id)))
        suggestions.add(_("Stop forcing: {what}", what=_(word) + " " + what), **{key: kept})


def treatments_to_check(instance: Instance, params: SolveParams, diagnosis: dict[str, Any]
                        ) -> list[int]:
    """The treatments whose feasibility decides the question: those of the sub-problems the
    diagnosis names (every treatment when it names none)."""
    index = {tid: t for t, tid in enumerate(instance.treatment_ids)}
    bad = {index[t] for t in diagnosis.get("infeasible_treatments", []) if t in index}
    if not bad:
        return list(range(len(instance.treatments)))
    components, _explanation = treatment_components(instance, params)
    return sorted({t for comp in components if bad & set(comp) for t in comp})


def nearest_limit(
    instance: Instance,
    params: SolveParams,
    treatments: list[int],
    key: str,
    infeasible_value: float,
    feasible_value: float | None,
    digits: int,
) -> float | None:
    """The feasible value of a limit nearest the infeasible request, between it and the
    value of the plan on screen (feasible; ``None``: no limit).

    Bisection with the diagnosis' feasibility check, within ``NEAREST_BUDGET_S`` (each limit
    is monotone: looser in one direction). ``None`` when undecided in time.
    """
    step = 10.0 ** -digits
    if feasible_value is None:  # no limit was feasible: start from the loosest value
        if key == "max_loss_share":
            feasible_value = 1.0
        else:
            travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
            feasible_value = float(math.ceil(travel.max()))
    bad, good = float(infeasible_value), float(feasible_value)
    deadline = time.perf_counter() + NEAREST_BUDGET_S
    while abs(good - bad) > step + 1e-12:
        if time.perf_counter() > deadline:
            return None
        mid = round((bad + good) / 2, digits)
        if mid in (bad, good):
            break
        ok = is_feasible(instance, params.model_copy(update={key: mid}), treatments)
        if ok is None:
            return None
        bad, good = (bad, mid) if ok else (mid, good)
    return round(good, digits)
