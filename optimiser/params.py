"""Scenario parameters of one solve, validated with pydantic.

These are the knobs a planner turns. Scenario *files* (TOML, ``extends``, grids, demand growth)
live in ``scenarios/``; they resolve to one :class:`SolveParams` per run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ObjectiveName = Literal["planner", "travel", "moved", "providers"]
SolverName = Literal["highs", "cbc"]

# The documented finite range of every number (README "Reliability", docs/SCENARIOS.md): wide
# enough for any planning question, narrow enough that no product of them overflows or spans
# more orders of magnitude than a MIP solver resolves (weights 1e20 apart made HiGHS give up).
MAX_MARGIN = 100.0  # required volume at most 101 x the norm
MAX_MINUTES = 1440.0  # one day of travel
MAX_CAPACITY_FACTOR = 1000.0
MAX_PATIENTS = 1e7  # per site and treatment per year (the Netherlands has 18 million people)
MAX_OBJECTIVE_WEIGHT = 1e6
MAX_TIME_LIMIT_S = 1e6  # about 11.5 days
MAX_THREADS = 1024
MAX_VISITS = 1000.0
MAX_PROVIDERS = 10_000


class SiteTreatment(BaseModel):
    """A (site, treatment) pair; ``intervention_id = "*"`` means every treatment of the site."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    site_id: str
    intervention_id: str = "*"


class CapacityCap(BaseModel):
    """At most ``max_patients`` per year at a site for a treatment ("*" = each treatment)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    site_id: str
    intervention_id: str = "*"
    max_patients: float = Field(ge=0, le=MAX_PATIENTS)


class SolveParams(BaseModel):
    """Every parameter of one solve. Units: minutes, patients per year, shares in [0, 1].

    Strict and finite: ``true`` is not a number, ``"0.1"`` is not a float, and infinities or
    NaN are refused (a missing limit is ``None``).
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    # json_schema_extra: the CLI's metavar and help example (scenarios/scenario/param_flags.py)
    margin: float = Field(0.0, ge=0, le=MAX_MARGIN,
                          description="required volume = norm x (1 + margin)",
                          json_schema_extra={"example": "0.1 for a 10% margin"})
    margin_by_treatment: dict[str, float] = Field(
        default_factory=dict, description="margin of one treatment, instead of margin"
    )
    norm_confidence: float | None = Field(
        None, gt=0, lt=1,
        description="plan by confidence instead of margin: a kept hospital's required "
        "expected volume is the smallest with P(Poisson count >= norm over norm_period_years) "
        ">= this (never below the norm); cannot be combined with margin / margin_by_treatment",
        json_schema_extra={"metavar": "C", "example": "0.9 for 90% odds of meeting the norm"},
    )
    norm_period_years: int = Field(
        1, ge=1, le=10, description="years over which a norm is assessed (the period total must "
        "reach years x norm): the odds of meeting the norm and norm_confidence use it",
        json_schema_extra={"metavar": "YEARS"},
    )
    max_travel: float | None = Field(
        None, gt=0, le=MAX_MINUTES,
        description="maximum car travel time in minutes from area to treating site",
        json_schema_extra={"metavar": "MIN"},
    )
    remote_areas: Literal["nearest_provider", "strict"] = Field(
        "nearest_provider",
        description="areas whose nearest current provider is already beyond max_travel "
        "(e.g. the Wadden islands): 'nearest_provider' lets them travel as far as that "
        "provider; 'strict' applies max_travel to them too (often infeasible)",
    )
    max_extra_travel: float | None = Field(
        None, ge=0, le=MAX_MINUTES,
        description="limit on travel minutes over the area's baseline mean travel",
        json_schema_extra={"metavar": "MIN"},
    )
    capacity_factor: float | None = Field(
        None, gt=0, le=MAX_CAPACITY_FACTOR,
        description="cap per site and treatment = factor x baseline volume"
    )
    capacity: list[CapacityCap] = Field(
        default_factory=list, description="at most MAX_PATIENTS per year at a site for a "
        "treatment ('*' = each treatment)"
    )
    force_keep: list[SiteTreatment] = Field(
        default_factory=list, description="the site keeps the treatment ('*' = every one)"
    )
    force_close: list[SiteTreatment] = Field(
        default_factory=list, description="the site stops the treatment ('*' = every one)"
    )
    bundles: list[list[str]] = Field(
        default_factory=list, description="treatments a site keeps or loses together"
    )
    max_loss_share: float | None = Field(
        None, ge=0, le=1, description="no site loses more than this share (0-1) of its total "
        "volume", json_schema_extra={"metavar": "SHARE"},
    )
    single_sourcing: bool = Field(
        False, description="each area sends all patients of a treatment to one site"
    )
    max_providers: dict[str, int] = Field(
        default_factory=dict,
        description="at most P hospitals in the region keep this treatment "
        "(intervention_id -> P; '*' = every treatment)",
        json_schema_extra={"metavar": "TREATMENT=P"},
    )
    allow_new_providers: bool = Field(
        False, description="may a site start a treatment it does not provide today"
    )
    small_region_rule: Literal["one_provider", "fail"] = Field(
        "one_provider",
        description="when the whole demand for a treatment is below its norm, no hospital can "
        "reach it: 'one_provider' concentrates it at one hospital (norm not met, flagged); "
        "'fail' makes the scenario infeasible",
    )
    objective: ObjectiveName = Field(
        "planner",
        description="planner (default): fewest unnecessary moves, then least travel "
        "(docs/OBJECTIVES.md); travel: least patient-minutes; moved: fewest patients changing "
        "hospital; providers: most kept providers, then least travel. Treatments without a "
        "norm always keep today's flows",
    )
    objective_weights: dict[ObjectiveName, float] | None = Field(
        None, description="weighted mix, e.g. {travel: 1, moved: 10}; overrides objective "
        "('planner' weighs the unnecessary moves, patients per year)"
    )
    solver: SolverName = Field("highs", description="MIP solver")
    time_limit: float | None = Field(
        None, gt=0, le=MAX_TIME_LIMIT_S,
        description="time limit in seconds per sub-problem; the best solution found "
        "is returned with its gap", json_schema_extra={"metavar": "S"},
    )
    mip_gap: float = Field(1e-4, ge=0, le=1,
                           description="relative optimality gap at which to stop",
                           json_schema_extra={"metavar": "G"})
    threads: int | None = Field(None, ge=1, le=MAX_THREADS,
                                description="solver threads (default: its own)")
    # Shared-care KPI: visits a patient makes for the treatment, and how many of them a
    # shared-care model keeps at the nearest hospital instead of the treating centre.
    visits_per_patient: float = Field(6.0, ge=0, le=MAX_VISITS,
                                      description="visits per patient (shared-care KPI)")
    shared_care_local_visits: float = Field(
        4.0, ge=0, le=MAX_VISITS,
        description="of those, visits kept at the nearest hospital (shared-care KPI)",
    )

    @field_validator("margin_by_treatment")
    @classmethod
    def _margins_non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for treatment, margin in value.items():
            if treatment == "*":
                raise ValueError("'*' is not a treatment: use margin for every treatment")
            if not 0 <= margin <= MAX_MARGIN:
                raise ValueError(
                    f"margin for {treatment} must be between 0 and {MAX_MARGIN:g}, got {margin}")
        return value

    @field_validator("max_providers")
    @classmethod
    def _providers_positive(cls, value: dict[str, int]) -> dict[str, int]:
        for treatment, most in value.items():
            if not 1 <= most <= MAX_PROVIDERS:  # every patient is treated, so by one at least
                raise ValueError(f"max_providers for {treatment} must be between 1 and "
                                 f"{MAX_PROVIDERS}, got {most}")
        return value

    @field_validator("objective_weights")
    @classmethod
    def _weights_non_negative(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for name, weight in (value or {}).items():
            if not 0 <= weight <= MAX_OBJECTIVE_WEIGHT:  # negative would maximise the term
                raise ValueError(f"weight of {name} must be between 0 and "
                                 f"{MAX_OBJECTIVE_WEIGHT:g}, got {weight}")
        return value

    @model_validator(mode="after")
    def _confidence_or_margin(self) -> SolveParams:
        if self.norm_confidence is not None and (
                self.margin != 0 or any(v != 0 for v in self.margin_by_treatment.values())):
            raise ValueError("norm_confidence replaces the margin: give either norm_confidence "
                             "or margin / margin_by_treatment, not both")
        return self

    @model_validator(mode="after")
    def _shared_care_consistent(self) -> SolveParams:
        if self.shared_care_local_visits > self.visits_per_patient:
            raise ValueError("shared_care_local_visits cannot exceed visits_per_patient")
        return self

    def margin_for(self, treatment_id: str) -> float:
        return float(self.margin_by_treatment.get(treatment_id, self.margin))

    def max_providers_for(self, treatment_id: str) -> int | None:
        """The cap on providers of a treatment (its own entry, else '*'); ``None``: no cap."""
        most = self.max_providers.get(treatment_id, self.max_providers.get("*"))
        return None if most is None else int(most)
