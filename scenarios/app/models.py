"""What the browser may send, and the plans the app keeps.

:class:`PlanSettings` is derived from :class:`~herschik.optimiser.params.SolveParams`: the
fields a planner sets in the browser (:data:`APP_FIELDS`) are SolveParams' own fields, with
their types, limits and descriptions, so a change there reaches the app without restating it
here; the app adds the region, the forced pairs as ids only (never a path) and the narrower
margin range of its page. Everything else keeps the solver's default.
"""

from __future__ import annotations

import copy
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any

from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.scenarios.run import RunResult
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic.fields import FieldInfo

from herschik.i18n import N_, _

from .reasons import PlanReasons

#: the objectives SolveParams accepts, read from its type (never hard-coded here)
OBJECTIVES: tuple[str, ...] = tuple(
    typing.get_args(SolveParams.model_fields["objective"].annotation)
)
#: the SolveParams fields a planner sets in the browser, in the order the app shows them
APP_FIELDS: tuple[str, ...] = (
    "margin", "norm_confidence", "max_travel", "max_extra_travel", "max_loss_share", "objective",
)
#: where the page is narrower than SolveParams: a margin of at most 500 % (the field's range)
APP_LIMITS: dict[str, dict[str, Any]] = {"margin": {"le": 5}}
_ID = r"^[A-Za-z0-9_.:\-* ]{1,100}$"
#: the objectives in the page's words (the same messages as static/app.js)
OBJECTIVE_WORDS = {
    "planner": N_("planner: move only who must, then least travel"),
    "travel": N_("least total travel"), "moved": N_("fewest patients moved"),
    "providers": N_("most providers kept, then least travel"),
}


class AppInputError(ValueError):
    """A request the app cannot serve (unknown region, site or treatment): HTTP 400."""


class UnknownPlan(KeyError):
    """No plan with that id: HTTP 404."""


class ForcedPair(BaseModel):
    """A hospital and treatment forced open or closed (``"*"``: every treatment of the site)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    site_id: str = Field(pattern=_ID)
    intervention_id: str = Field(pattern=_ID)


class _SettingsBase(BaseModel):
    """The checks and methods of :class:`PlanSettings` (its fields: :data:`_FIELDS`)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("objective", mode="before", check_fields=False)
    @classmethod
    def _known_objective(cls, value: Any) -> Any:
        if value is None:  # not chosen: the solver's default
            return SolveParams.model_fields["objective"].default
        if value not in OBJECTIVES:
            raise ValueError(f"unknown objective {value!r}; choose from {', '.join(OBJECTIVES)}")
        return value

    @model_validator(mode="after")
    def _confidence_or_margin(self) -> _SettingsBase:
        if getattr(self, "norm_confidence", None) is not None and getattr(self, "margin", 0):
            raise ValueError("the confidence replaces the margin: set the margin to 0 to plan "
                             "by confidence")
        return self

    @field_validator("force_keep", "force_close", check_fields=False)
    @classmethod
    def _sorted_unique(cls, value: list[ForcedPair]) -> list[ForcedPair]:
        return sorted(set(value), key=lambda p: (p.site_id, p.intervention_id))

    def solve_params(self) -> SolveParams:
        """The SolveParams of this plan: the solver's defaults plus what the planner set."""
        update: dict[str, Any] = {key: getattr(self, key) for key in APP_FIELDS}
        for key in ("force_keep", "force_close"):
            update[key] = [SiteTreatment(**p.model_dump()) for p in getattr(self, key)]
        return SolveParams().model_copy(update=update)


def _solver_field(name: str) -> tuple[Any, FieldInfo]:
    """SolveParams' field ``name`` (type, default, limits, description), narrowed where the
    page is (:data:`APP_LIMITS`)."""
    info = SolveParams.model_fields[name]
    annotation: Any = info.annotation
    if name in APP_LIMITS:
        annotation = Annotated[annotation, Field(**APP_LIMITS[name])]
    return annotation, copy.copy(info)


_FORCED = (list[ForcedPair], Field(default_factory=list, max_length=5000))
#: the fields of PlanSettings in their order: the region, SolveParams' fields, forced pairs
_FIELDS: dict[str, Any] = {
    "region_id": (str, Field(pattern=_ID)),
    **{name: _solver_field(name) for name in APP_FIELDS},
    "force_keep": _FORCED,
    "force_close": _FORCED,
}
#: The scenario a planner sets in the browser; ids and numbers only, never a path.
PlanSettings = create_model(  # type: ignore[call-overload]
    "PlanSettings", __base__=_SettingsBase, __module__=__name__, **_FIELDS)
PlanSettings.__doc__ = "The scenario a planner sets in the browser; ids only, never a path."


@dataclass
class Plan:
    """One plan (feasible, or partial: some treatments without a plan), the verified run and
    what the browser shows of it."""

    id: int
    name: str
    settings: Any  # a PlanSettings
    params: SolveParams
    run: RunResult
    seconds: float
    hospitals: list[dict[str, Any]]
    areas: dict[str, Any]
    #: how the plan was obtained (see views.reuse_info); None: solved from scratch
    reuse: dict[str, Any] | None = None
    #: a partial plan: the treatments without a plan, their diagnosis and the nearest
    #: settings that give every treatment a plan (nearest.partial_info); None: complete
    partial: dict[str, Any] | None = None
    #: the language its words (reasons, diagnosis, how) were written in
    language: str = "en"
    #: the what-if step that gave it and whether it was the region's first (for its words
    #: in another language); None: solved from scratch
    how: tuple[Any, bool] | None = None
    #: the complete plan the nearest settings of a partial plan were sought from
    base_id: int | None = None
    #: the plan in other languages, made when first asked for (session.AppState.in_language)
    translations: dict[str, Plan] = field(default_factory=dict, repr=False)
    #: why its hospitals lose treatments, worked out when asked (reasons.ReasonCache);
    #: shared with its translations (the reasons are language-free)
    reasons: PlanReasons = field(default_factory=PlanReasons, repr=False)


def percent(share: float) -> str:
    """A share as the app shows it: a percentage (0.1 -> ``10%``, 0.125 -> ``12.5%``)."""
    return f"{round(100 * share, 6):g}%"


def describe(settings: Any) -> str:
    """One line of what differs from the solver's defaults, e.g. ``margin 10%, 2 closed``."""
    defaults = SolveParams()
    parts = [settings.region_id]
    if settings.margin != defaults.margin:
        parts.append(_("margin {margin}", margin=percent(settings.margin)))
    if settings.norm_confidence is not None:
        parts.append(_("confidence {confidence}",
                       confidence=format(settings.norm_confidence, "g")))
    if settings.max_travel is not None:
        parts.append(_("max travel {minutes} min", minutes=format(settings.max_travel, "g")))
    if settings.max_extra_travel is not None:
        parts.append(_("max extra {minutes} min",
                       minutes=format(settings.max_extra_travel, "g")))
    if settings.max_loss_share is not None:
        parts.append(_("max loss {share}", share=percent(settings.max_loss_share)))
    if settings.objective is not None and settings.objective != defaults.objective:
        word = OBJECTIVE_WORDS.get(settings.objective)
        parts.append(_("objective {objective}",
                       objective=_(word) if word else settings.objective))
    if settings.force_keep:
        parts.append(_("{count} forced keep", count=len(settings.force_keep)))
    if settings.force_close:
        parts.append(_("{count} forced close", count=len(settings.force_close)))
    return ", ".join(parts)
