"""The state behind ``herschik app``: one dataset, cached region instances, the plans solved.

Every plan is solved as ``herschik solve`` solves it: the solve, then KPIs, contract tables and
the independent verifier (:func:`herschik.scenarios.run.verified_result`, the second half of
:func:`~herschik.scenarios.run.solve_verified`). The solve goes through one what-if session
per region (:class:`herschik.optimiser.whatif.WhatIf` with ``same_as_fresh``): a change re-uses
every treatment's result whose model it leaves identical and solves the others as a fresh solve
does, so the plan is the CLI's to the last digit, only sooner. A plan is exported by
writing its settings as a scenario TOML and running ``herschik solve --scenario`` on it in a
child process, so the exported result folder *is* what the CLI writes for that file.

The browser never names a file: it sends region, treatment and site ids (checked against the
dataset) and numbers; export folders are chosen here, below the app's ``--out`` folder.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import subprocess
import sys
import threading
import time
import typing
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.optimiser.confidence import p_meet_norm
from herschik.optimiser.decomposition import treatment_components
from herschik.optimiser.diagnose import is_feasible
from herschik.optimiser.formulation import required_matrix
from herschik.optimiser.instance import Instance
from herschik.optimiser.kpis import SCALAR_KPIS
from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.optimiser.results import hospital_status
from herschik.optimiser.whatif import StepReport, WhatIf
from herschik.scenarios.run import TIMING_FIELDS, RunResult, solve_verified, verified_result
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from herschik.i18n import LANGUAGES, N_, _, catalog, current_language, translate_name

#: the objectives SolveParams accepts, read from its type (never hard-coded here)
OBJECTIVES: tuple[str, ...] = tuple(
    typing.get_args(SolveParams.model_fields["objective"].annotation)
)
#: how many plans the app keeps in memory (oldest dropped first)
MAX_PLANS = 200
#: wall-clock budget for finding the nearest feasible value of a changed limit
NEAREST_BUDGET_S = 5.0
#: patients per year below which a flow is solver noise (as in optimiser.results)
MIN_PATIENTS = 1e-9
#: sub-problem results each region's what-if session remembers (a model with its result is
#: about a megabyte at district level; older ones are dropped first)
SESSION_CACHE = 256
#: hospital statuses (the names of hospital_changes.csv, see SHARED_NAMES)
STATUSES = ("kept", "lost", "gained", "below_norm", "unchanged_no_norm")
_ID = r"^[A-Za-z0-9_.:\-* ]{1,100}$"


class AppInputError(ValueError):
    """A request the app cannot serve (unknown region, site or treatment): HTTP 400."""


class UnknownPlan(KeyError):
    """No plan with that id: HTTP 404."""


# --- what the browser may send -----------------------------------------------------------
class ForcedPair(BaseModel):
    """A hospital and treatment forced open or closed (``"*"``: every treatment of the site)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    site_id: str = Field(pattern=_ID)
    intervention_id: str = Field(pattern=_ID)


class PlanSettings(BaseModel):
    """The scenario a planner sets in the browser; ids only, never a path."""

    model_config = ConfigDict(extra="forbid")
    region_id: str = Field(pattern=_ID)
    margin: float = Field(0.0, ge=0, le=5)
    #: plan by the odds of meeting the norm instead of the margin (docs/CONFIDENCE.md)
    norm_confidence: float | None = Field(None, gt=0, lt=1)
    max_travel: float | None = Field(None, gt=0, le=1440)
    max_extra_travel: float | None = Field(None, ge=0, le=1440)
    max_loss_share: float | None = Field(None, ge=0, le=1)
    objective: str | None = Field(None, validate_default=True)  # None: the solver's default
    force_keep: list[ForcedPair] = Field(default_factory=list, max_length=5000)
    force_close: list[ForcedPair] = Field(default_factory=list, max_length=5000)

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, value: str | None) -> str | None:
        if value is None:
            return str(SolveParams().objective)
        if value not in OBJECTIVES:
            raise ValueError(f"unknown objective {value!r}; choose from {', '.join(OBJECTIVES)}")
        return value

    @model_validator(mode="after")
    def _confidence_or_margin(self) -> PlanSettings:
        if self.norm_confidence is not None and self.margin != 0:
            raise ValueError("the confidence replaces the margin: set the margin to 0 to plan "
                             "by confidence")
        return self

    @field_validator("force_keep", "force_close")
    @classmethod
    def _sorted_unique(cls, value: list[ForcedPair]) -> list[ForcedPair]:
        return sorted(set(value), key=lambda p: (p.site_id, p.intervention_id))

    def solve_params(self) -> SolveParams:
        """The SolveParams of this plan: the solver's defaults plus what the planner set."""
        update: dict[str, Any] = {
            "margin": self.margin,
            "norm_confidence": self.norm_confidence,
            "max_travel": self.max_travel,
            "max_extra_travel": self.max_extra_travel,
            "max_loss_share": self.max_loss_share,
            "force_keep": [SiteTreatment(**p.model_dump()) for p in self.force_keep],
            "force_close": [SiteTreatment(**p.model_dump()) for p in self.force_close],
        }
        if self.objective is not None:
            update["objective"] = self.objective
        return SolveParams().model_copy(update=update)


# --- a solved plan -----------------------------------------------------------------------
@dataclass
class Plan:
    """One feasible plan: its settings, the verified run and what the browser shows of it."""

    id: int
    name: str
    settings: PlanSettings
    params: SolveParams
    run: RunResult
    seconds: float
    hospitals: list[dict[str, Any]]
    areas: dict[str, Any]
    #: how the plan was obtained (see :func:`reuse_info`); None: solved from scratch
    reuse: dict[str, Any] | None = None


def _round(value: float, digits: int = 2) -> float | None:
    value = float(value)
    return round(value, digits) + 0.0 if math.isfinite(value) else None


def hospital_rows(instance: Instance, run: RunResult, params: SolveParams) -> list[dict[str, Any]]:
    """One row per site x treatment the site provides before or after (or that is forced).

    Provided before = baseline volume > 0, after = ``Solution.keep`` (the flags of
    site_volumes.csv and of the provider KPIs); the status is hospital_changes.csv's
    (:func:`herschik.optimiser.results.hospital_status`).
    """
    solution = run.solution
    norms = instance.norm_matrix()
    required = required_matrix(instance, params)
    before = instance.baseline_volume
    after = solution.flow.sum(axis=0)
    keep = solution.keep
    fkeep = {(p.site_id, p.intervention_id) for p in params.force_keep}
    fclose = {(p.site_id, p.intervention_id) for p in params.force_close}
    kept_volume = np.where(keep, after, np.nan)
    odds_1y = p_meet_norm(kept_volume, norms, 1)
    odds_period = p_meet_norm(kept_volume, norms, params.norm_period_years)
    rows = []
    for s, site in enumerate(instance.sites):
        for t, treatment in enumerate(instance.treatments):
            provides_before = bool(before[s, t] > 0)
            provides_after = bool(keep[s, t])
            forced = None
            if (site.id, treatment.id) in fkeep or (site.id, "*") in fkeep:
                forced = "keep"
            if (site.id, treatment.id) in fclose or (site.id, "*") in fclose:
                forced = "close"
            if not (provides_before or provides_after or forced):
                continue
            has_norm = not np.isnan(norms[s, t])
            status = (
                hospital_status(provides_before, provides_after, has_norm, float(after[s, t]),
                                 float(required[s, t]) if has_norm else 0.0)
                if provides_before or provides_after
                else None  # forced closed, not provided today: nothing changes
            )
            rows.append(
                {
                    "site_index": s,
                    "site_id": site.id,
                    "site_name": site.name,
                    "intervention_id": treatment.id,
                    "intervention_name": treatment.name or treatment.id,
                    "norm": _round(norms[s, t], 6) if has_norm else None,
                    "required_min": _round(required[s, t], 6) if has_norm else None,
                    "volume_before": _round(before[s, t], 6),
                    "volume_after": _round(after[s, t], 6),
                    "volume_change": _round(after[s, t] - before[s, t], 6),
                    # the odds of meeting the norm (site_volumes.csv's, kept pairs only)
                    "p_meet_norm_1y": _odds(odds_1y[s, t]),
                    "p_meet_norm_period": _odds(odds_period[s, t]),
                    "status": status,
                    "forced": forced,
                }
            )
    return with_flows_and_reasons(rows, run)


def with_flows_and_reasons(rows: list[dict[str, Any]], run: RunResult) -> list[dict[str, Any]]:
    """Each hospital row with ``reason`` (why a lost role is lost and the price of keeping it),
    ``fragile`` and ``flows_out``: where its patients of today who change hospital go (the
    rows of flows.csv from this hospital and treatment), exactly as the CLI writes them."""
    reasons: dict[tuple[str, str], dict[str, Any]] = {}
    if run.hospital_changes is not None:
        for r in run.hospital_changes.itertuples(index=False):
            reasons[(r.site_id, r.intervention_id)] = {
                "reason": getattr(r, "reason", None) or None,
                "fragile": bool(getattr(r, "fragile", False)),
            }
    flows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if run.flows is not None:
        for f in run.flows.itertuples(index=False):
            flows.setdefault((f.site_id_from, f.intervention_id), []).append({
                "site_id": f.site_id_to, "site_name": f.site_name_to, "move": f.move,
                "patients": _round(f.patients, 6),
                "mean_extra_min": _round(f.mean_extra_min, 6),
                "max_extra_min": _round(f.max_extra_min, 6)})
    for row in rows:
        key = (row["site_id"], row["intervention_id"])
        row.update(reasons.get(key, {"reason": None, "fragile": False}))
        row["flows_out"] = sorted(flows.get(key, []),
                                  key=lambda f: (-f["patients"], f["site_id"]))
    return rows


def _odds(value: float) -> float | None:
    return None if np.isnan(value) else _round(value, 6)


def area_view(instance: Instance, run: RunResult) -> dict[str, Any]:
    """Per area (in instance order) and per treatment (and all): what the map colours.

    ``dest`` / ``dest_before``: index of the site treating most of the area's patients after /
    before (-1: none); ``extra``: patient-weighted mean extra minutes (as the KPIs define it);
    ``patients`` and ``moved`` patients per year.
    """
    flow = run.solution.flow
    base_flow = instance.baseline_flow
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
    base_travel = instance.baseline_travel()
    extra = travel[:, :, None] - np.nan_to_num(base_travel)[:, None, :]
    extra = np.where(np.isnan(base_travel)[:, None, :], 0.0, extra)
    flow = np.where(flow > MIN_PATIENTS, flow, 0.0)
    moved = instance.demand - np.minimum(flow, base_flow).sum(axis=1)

    def view(f: np.ndarray, bf: np.ndarray, e_sum: np.ndarray, m: np.ndarray) -> dict[str, Any]:
        patients = f.sum(axis=1)
        has = patients > MIN_PATIENTS
        dest = np.where(has, f.argmax(axis=1), -1)
        dest_before = np.where(bf.sum(axis=1) > MIN_PATIENTS, bf.argmax(axis=1), -1)
        mean_extra = np.where(has, e_sum / np.where(has, patients, 1.0), np.nan)
        return {
            "dest": dest.tolist(),
            "dest_before": dest_before.tolist(),
            "extra": [_round(v, 1) for v in mean_extra],
            "patients": [_round(v, 2) for v in patients],
            "moved": [_round(max(v, 0.0), 2) for v in m],
        }

    per_treatment = {}
    for t, tid in enumerate(instance.treatment_ids):
        f = flow[:, :, t]
        per_treatment[tid] = view(
            f, base_flow[:, :, t], (f * extra[:, :, t]).sum(axis=1), moved[:, t]
        )
    all_view = view(
        flow.sum(axis=2), base_flow.sum(axis=2), (flow * extra).sum(axis=(1, 2)), moved.sum(axis=1)
    )
    return {"treatments": per_treatment, "all": all_view}


#: plain-words labels of the KPIs, in display order; (key, label, unit). English, marked for
#: the catalog: the page shows them in its language.
KPI_LABELS: tuple[tuple[str, str, str], ...] = (
    ("patients", N_("Patients per year"), "patients"),
    ("patients_displaced", N_("Displaced: their hospital stops the treatment"), "patients"),
    ("displaced_share", N_("Share of patients displaced"), "share"),
    ("displaced_mean_extra_min", N_("Extra travel of displaced patients, mean"), "min"),
    ("displaced_p90_extra_min", N_("Extra travel of displaced patients, 90th percentile"), "min"),
    ("displaced_max_extra_min", N_("Extra travel of displaced patients, maximum"), "min"),
    ("patients_moved", N_("Patients changing hospital"), "patients"),
    ("patients_moved_optional", N_("Moved although their hospital keeps the treatment"),
     "patients"),
    ("mean_travel_min_before", N_("Travel today, mean"), "min"),
    ("mean_travel_min_after", N_("Travel after, mean"), "min"),
    ("mean_extra_min", N_("Extra travel per patient, mean"), "min"),
    ("p90_extra_min", N_("Extra travel per patient, 90th percentile"), "min"),
    ("max_extra_min", N_("Extra travel, maximum"), "min"),
    ("max_travel_min_after", N_("Longest travel after"), "min"),
)


def kpi_rows(kpis: dict[str, Any], treatment_id: str | None = None) -> list[dict[str, Any]]:
    """Label/value rows of the KPIs present (new keys are shown once the solve reports them).

    With ``treatment_id`` the rows come from ``kpis["per_treatment"]`` where present; the
    provider counts are always per treatment (or totals over all treatments).
    """
    source = kpis
    if treatment_id is not None:
        source = (kpis.get("per_treatment") or {}).get(treatment_id) or {}
    rows = []
    for key, label, unit in KPI_LABELS:
        if key in SCALAR_KPIS and treatment_id is not None and key not in source:
            continue  # a region-wide number is not shown as if it were the treatment's
        value = source.get(key)
        if value is not None:
            rows.append({"key": key, "label": label, "unit": unit, "value": value})

    def count(name: str) -> int | None:
        if treatment_id is not None and name in source:
            return int(source[name])
        table = kpis.get(name)
        if not isinstance(table, dict):
            return None
        if treatment_id is not None:
            return int(table[treatment_id]) if treatment_id in table else None
        return int(sum(table.values()))

    for key, label in (
        ("providers_before", N_("Providers today")),
        ("providers_after", N_("Providers after")),
        ("providers_lost", N_("Providers that stop")),
        ("providers_gained", N_("Providers that start")),
    ):
        value = count(key)
        if value is not None:
            rows.append({"key": key, "label": label, "unit": "providers", "value": value})
    return rows


#: what a what-if step did with a treatment's sub-problem, in the page's words
REUSE_WORDS = {
    "unchanged": N_("re-used (its model did not change)"),
    "cached": N_("re-used (solved earlier in this session with the same model)"),
    "resolved": N_("solved"),
    "still_infeasible": N_("infeasible (a restriction of an infeasible one)"),
}


def reuse_info(instance: Instance, step: StepReport, first: bool) -> dict[str, Any]:
    """How a plan was obtained: per treatment whether its sub-problem was re-used or solved.

    Counts are treatments (a sub-problem holds one, or several when bundled); ``seconds`` is
    the what-if step (model checks and solves), without KPIs and verifier."""
    treatments: dict[str, str] = {}
    for label, action in step.actions.items():
        for tid in label.split(","):
            treatments[tid] = action
    counts = dict.fromkeys(REUSE_WORDS, 0)
    for action in treatments.values():
        counts[action] = counts.get(action, 0) + 1
    reused = counts["unchanged"] + counts["cached"]
    total = len(instance.treatments)
    if first:
        text = _("solved all {total} treatments (first plan of this region in this session)",
                 total=total)
    elif counts["resolved"] == total:
        text = _("solved all {total} treatments again (the change touches every one)",
                 total=total)
    else:
        text = _("re-used {reused} of {total} treatments", reused=reused, total=total)
        if counts["resolved"]:
            text += _(", solved {count} again", count=counts["resolved"])
        if counts["still_infeasible"]:
            text += _(", {count} infeasible as before", count=counts["still_infeasible"])
        if counts["cached"]:
            text += " " + _("({count} re-used from earlier plans of this session)",
                            count=counts["cached"])
    return {
        "treatments": total,
        "subproblems": len(step.actions),
        "counts": counts,
        "reused": reused,
        "actions": treatments,
        "details": [f"{instance.treatment_label(t)}: "
                    f"{_(REUSE_WORDS[action]) if action in REUSE_WORDS else action}"
                    for t, action in ((t, treatments.get(tid, "")) for t, tid in
                                      enumerate(instance.treatment_ids))],
        "seconds": round(step.seconds, 3),
        "first": first,
        "text": text,
    }


# --- the scenario file of a plan ----------------------------------------------------------
def _toml_value(value: Any) -> str:
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return json.dumps(str(value), ensure_ascii=False)


def scenario_toml(name: str, settings: PlanSettings, params: SolveParams, command: str) -> str:
    """The plan as a scenario file (docs/SCENARIOS.md) that resolves to exactly ``params``."""
    lines = [
        f"# {name}: a plan made in `herschik app` (region {settings.region_id}).",
        "# Re-run it with the command line:",
        f"#   {command}",
        f"name = {_toml_value(name)}",
        f"description = {_toml_value(describe(settings))}",
        f"margin = {_toml_value(params.margin)}",
        *([f"norm_confidence = {_toml_value(params.norm_confidence)}"]
          if params.norm_confidence is not None else []),
        f"max_travel = {_toml_value(params.max_travel)}",
        f"max_extra_travel = {_toml_value(params.max_extra_travel)}",
        f"max_loss_share = {_toml_value(params.max_loss_share)}",
        f"objective = {_toml_value(params.objective)}",
    ]
    for key in ("force_keep", "force_close"):
        pairs = getattr(params, key)
        items = ", ".join(
            f"{{ site_id = {_toml_value(p.site_id)}, "
            f"intervention_id = {_toml_value(p.intervention_id)} }}"
            for p in pairs
        )
        lines.append(f"{key} = [{items}]")
    return "\n".join(lines) + "\n"


def percent(share: float) -> str:
    """A share as the app shows it: a percentage (0.1 -> ``10%``, 0.125 -> ``12.5%``)."""
    return f"{round(100 * share, 6):g}%"


def describe(settings: PlanSettings) -> str:
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
        parts.append(_("objective {objective}", objective=settings.objective))
    if settings.force_keep:
        parts.append(_("{count} forced keep", count=len(settings.force_keep)))
    if settings.force_close:
        parts.append(_("{count} forced close", count=len(settings.force_close)))
    return ", ".join(parts)


# --- the session -------------------------------------------------------------------------
class AppState:
    """Dataset, region instances, map layers and plans of one running app (thread-safe)."""

    def __init__(
        self,
        dataset: Any,
        *,
        out_dir: Path,
        network: Path | None = None,
        source_args: list[str] | None = None,
        areas_label: str = "",
        first_region: str | None = None,
        whatif: bool = True,
    ) -> None:
        """``source_args`` are the CLI flags that load the same data (``--data``, ``--areas``,
        ``--network``), passed on to ``herschik solve`` when a plan is exported.
        ``whatif=False`` solves every change from scratch (for the before/after benchmark)."""
        self.dataset = dataset
        self.network = network
        self.out_dir = Path(out_dir)
        self.source_args = list(source_args or [])
        self.areas_label = areas_label
        regions = dataset.regions
        self.regions: dict[str, str] = dict(
            zip(regions["region_id"].astype(str), regions["region_name"].astype(str))
        )
        self.first_region = first_region if first_region in self.regions else next(
            iter(self.regions)
        )
        self._instances: dict[str, Instance] = {}
        self._maps: dict[str, dict[str, Any]] = {}
        self._plans: OrderedDict[int, Plan] = OrderedDict()
        self.whatif = whatif
        #: one what-if session per region (the area level is the app's, one per process)
        self._sessions: dict[str, WhatIf] = {}
        self._next_id = 1
        self._solve_lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._plans_lock = threading.Lock()
        #: the session token that every state-changing request must carry (server.py)
        self.token = secrets.token_urlsafe(32)

    # --- reference data -------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """Regions, treatments, objectives and defaults: what the page needs to draw controls."""
        from herschik.scenarios.assemble import treatment_objects

        defaults = SolveParams()
        treatments = [
            {"id": t.id, "name": translate_name(t.name) if t.name else t.id,
             "group_id": t.group_id, "norm": t.norm}
            for t in treatment_objects(self.dataset)
        ]
        demand = self.dataset.demand.merge(self.dataset.areas[["area_id", "region_id"]])
        return {
            "dataset": str(self.dataset.name),
            "baseline": self.dataset.baseline_kind,
            "baseline_source": self.dataset.baseline_source,
            "areas": self.areas_label,
            "regions": [
                {
                    "id": rid,
                    "name": name,
                    "areas": int((self.dataset.areas["region_id"] == rid).sum()),
                    "sites": int((self.dataset.sites["region_id"] == rid).sum()),
                    "patients": _round(demand.loc[demand["region_id"] == rid, "patients"].sum(), 1),
                }
                for rid, name in self.regions.items()
            ],
            "treatments": treatments,
            "objectives": list(OBJECTIVES),
            "first_region": self.first_region,
            "defaults": {
                "margin": defaults.margin,
                "norm_confidence": defaults.norm_confidence,
                "max_travel": defaults.max_travel,
                "max_extra_travel": defaults.max_extra_travel,
                "max_loss_share": defaults.max_loss_share,
                "objective": defaults.objective,
            },
            "statuses": list(STATUSES),
            # the page's language (cookie herschik_lang, else the app's --lang / locale) and
            # the catalog's text for it: the page translates its fixed texts with these
            "language": current_language(),
            "languages": list(LANGUAGES),
            "messages": catalog(current_language()),
        }

    def instance(self, region_id: str) -> Instance:
        """The region's instance, built once (travel times and baseline flows are the cost)."""
        if region_id not in self.regions:
            raise AppInputError(f"unknown region {region_id!r}")
        with self._build_lock:
            if region_id not in self._instances:
                from herschik.scenarios.assemble import build_instance

                self._instances[region_id] = build_instance(
                    self.dataset, region_id, network=self.network
                )
            return self._instances[region_id]

    def region_map(self, region_id: str) -> dict[str, Any]:
        """Area polygons (simplified, WGS84 GeoJSON) and hospital points of a region."""
        instance = self.instance(region_id)
        with self._build_lock:
            if region_id not in self._maps:
                from .geometry import region_layers

                self._maps[region_id] = region_layers(self.dataset, instance)
            return self._maps[region_id]

    def warm(self) -> None:
        """Build the first region and solve its default plan (run in the background at start,
        so that the page opens on a plan at once)."""
        try:
            self.region_map(self.first_region)
            self.solve(PlanSettings(region_id=self.first_region))
        except Exception as error:  # the page will show the same error again
            print(f"herschik app: could not prepare {self.first_region}: {error}", file=sys.stderr)

    # --- solving ----------------------------------------------------------------------------
    def _check_ids(self, settings: PlanSettings, instance: Instance) -> None:
        sites, treatments = set(instance.site_ids), set(instance.treatment_ids) | {"*"}
        for pair in [*settings.force_keep, *settings.force_close]:
            if pair.site_id not in sites:
                raise AppInputError(
                    f"site {pair.site_id!r} is not a hospital of region {settings.region_id}"
                )
            if pair.intervention_id not in treatments:
                raise AppInputError(f"unknown treatment {pair.intervention_id!r}")

    def solve(self, settings: PlanSettings, base_plan_id: int | None = None) -> dict[str, Any]:
        """Solve a plan; feasible -> ``{"status", "plan"}``, else the diagnosis and fixes.

        ``base_plan_id`` is the plan on screen that the change was made to (default: the
        region's latest plan); the nearest feasible settings are sought between it and the
        request.
        """
        instance = self.instance(settings.region_id)
        self._check_ids(settings, instance)
        params = settings.solve_params()
        with self._solve_lock:
            for existing in self._plan_list():
                if existing.settings == settings:  # same settings, same (deterministic) plan
                    return {"status": existing.run.summary["status"],
                            "plan": self.plan_payload(existing), "same_as_plan": existing.id}
            started = time.perf_counter()
            run, reuse = self._solve_run(settings.region_id, instance, params)
            seconds = time.perf_counter() - started
            if not run.solution.feasible:
                return {
                    "status": "infeasible",
                    "seconds": round(seconds, 3),
                    "reuse": reuse,
                    "infeasible": self._infeasible(
                        settings, instance, params, run, self._base(settings, base_plan_id)
                    ),
                }
            plan = Plan(
                id=self._next_id,
                name=f"Plan {self._next_id}",
                settings=settings,
                params=params,
                run=run,
                seconds=seconds,
                hospitals=hospital_rows(instance, run, params),
                areas=area_view(instance, run),
                reuse=reuse,
            )
            self._next_id += 1
            with self._plans_lock:
                self._plans[plan.id] = plan
                while len(self._plans) > MAX_PLANS:
                    self._plans.popitem(last=False)
        return {"status": run.summary["status"], "plan": self.plan_payload(plan)}

    def _solve_run(self, region_id: str, instance: Instance, params: SolveParams
                   ) -> tuple[RunResult, dict[str, Any] | None]:
        """The verified run of ``params`` and how it was obtained (call under _solve_lock).

        Through the region's what-if session (created by the region's first solve): the same
        solution as :func:`solve_verified` gives, re-using what the change left unchanged."""
        if not self.whatif:
            return solve_verified(instance, params), None
        session = self._sessions.get(region_id)
        first = session is None
        try:
            if session is None:
                session = WhatIf(instance, params, same_as_fresh=True,
                                 cache_size=SESSION_CACHE)
                self._sessions[region_id] = session
            else:
                session.set_params(params)
        except BaseException:
            self._sessions.pop(region_id, None)  # a half-done step: start afresh next time
            raise
        run = verified_result(instance, params, session.solution)
        return run, reuse_info(instance, session.last_step, first)

    def _base(self, settings: PlanSettings, base_plan_id: int | None) -> Plan | None:
        with self._plans_lock:
            base = self._plans.get(base_plan_id) if base_plan_id is not None else None
        if base is not None and base.settings.region_id == settings.region_id:
            return base
        for plan in reversed(self._plan_list()):
            if plan.settings.region_id == settings.region_id:
                return plan
        return None

    def _infeasible(
        self,
        settings: PlanSettings,
        instance: Instance,
        params: SolveParams,
        run: RunResult,
        previous: Plan | None,
    ) -> dict[str, Any]:
        """Plain-words diagnosis and the nearest feasible settings (each one click away)."""
        diagnosis = run.summary.get("diagnosis") or {}
        names = self._names(instance)
        suggestions: list[dict[str, Any]] = []

        def suggest(text: str, **update: Any) -> None:
            data = settings.model_dump()
            for key, value in update.items():
                data[key] = (
                    [v.model_dump() if isinstance(v, BaseModel) else v for v in value]
                    if isinstance(value, list)
                    else value
                )
            fixed = PlanSettings.model_validate(data).model_dump()
            if fixed != settings.model_dump() and all(s["settings"] != fixed for s in suggestions):
                suggestions.append({"text": text, "settings": fixed})

        covered = set()  # limits the diagnosis already found a feasible value for
        margin = diagnosis.get("smallest_feasible_margin")
        if isinstance(margin, (int, float)) and margin < settings.margin:
            suggest(_("Lower the margin to {margin}", margin=percent(margin)),
                    margin=float(margin))
            covered.add("margin")
        confidence = diagnosis.get("largest_feasible_confidence")
        if isinstance(confidence, (int, float)) and settings.norm_confidence is not None \
                and 0 < confidence < settings.norm_confidence:
            suggest(f"Lower the confidence to {confidence:.0%}", norm_confidence=float(confidence))
            covered.add("norm_confidence")
        travel = diagnosis.get("smallest_feasible_max_travel")
        if isinstance(travel, (int, float)) and settings.max_travel is not None:
            suggest(_("Raise the travel limit to {minutes} min", minutes=format(travel, ".0f")),
                    max_travel=float(travel))
            covered.add("max_travel")
        if previous is not None:
            old = previous.settings
            treatments = self._treatments_to_check(instance, params, diagnosis)
            for key, label, unit, digits, larger_is_looser in (
                ("margin", N_("margin"), "%", 2, False),
                ("max_travel", N_("travel limit"), " min", 0, True),
                ("max_extra_travel", N_("extra-travel limit"), " min", 0, True),
                ("max_loss_share", N_("loss share"), "%", 2, True),
            ):
                new_value, old_value = getattr(settings, key), getattr(old, key)
                if key in covered or new_value is None or new_value == old_value:
                    continue
                if old_value is not None and (new_value > old_value) == larger_is_looser:
                    continue  # only a tightened limit has a nearest feasible value between
                nearest = self._nearest_limit(
                    instance, params, treatments, key, new_value, old_value, digits
                )
                if nearest is not None:
                    shown = percent(nearest) if unit == "%" else f"{nearest:g}{unit}"
                    suggest(_("Set the {limit} to {value}", limit=_(label), value=shown),
                            **{key: nearest})
            for key, word in (("force_keep", N_("keeping")), ("force_close", N_("closing"))):
                added = set(getattr(settings, key)) - set(getattr(old, key))
                if added:
                    kept = [p for p in getattr(settings, key) if p not in added]
                    fixed = settings.model_copy(update={key: kept}).solve_params()
                    if is_feasible(instance, fixed, treatments) is False:
                        continue  # dropping it alone does not help: not a feasible setting
                    what = "; ".join(self._pair_text(p, names) for p in sorted(
                        added, key=lambda p: (p.site_id, p.intervention_id)))
                    suggest(_("Stop forcing: {what}", what=_(word) + " " + what),
                            **{key: kept})
            suggest(_("Go back to the plan on screen"), **old.model_dump())
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
            "suggestions": suggestions,
        }

    def _treatments_to_check(
        self, instance: Instance, params: SolveParams, diagnosis: dict[str, Any]
    ) -> list[int]:
        index = {tid: t for t, tid in enumerate(instance.treatment_ids)}
        bad = {index[t] for t in diagnosis.get("infeasible_treatments", []) if t in index}
        if not bad:
            return list(range(len(instance.treatments)))
        components, _ = treatment_components(instance, params)
        return sorted({t for comp in components if bad & set(comp) for t in comp})

    def _nearest_limit(
        self,
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

    def _names(self, instance: Instance) -> dict[str, str]:
        names = {s.id: s.name for s in instance.sites if s.name}
        names.update({t.id: translate_name(t.name) for t in instance.treatments if t.name})
        areas = self.dataset.areas
        region = areas[areas["region_id"] == instance.region_id]
        names.update(dict(zip(region["area_id"].astype(str), region["area_name"].astype(str))))
        return names

    @staticmethod
    def _pair_text(pair: ForcedPair, names: dict[str, str]) -> str:
        what = _("all treatments") if pair.intervention_id == "*" else names.get(
            pair.intervention_id, pair.intervention_id)
        return _("{treatment} at {hospital}", treatment=what,
                 hospital=names.get(pair.site_id, pair.site_id))

    # --- plans -------------------------------------------------------------------------------
    def plan(self, plan_id: int) -> Plan:
        try:
            with self._plans_lock:
                return self._plans[plan_id]
        except KeyError:
            raise UnknownPlan(plan_id) from None

    def plans(self) -> list[dict[str, Any]]:
        """The plans kept, newest last, with their headline numbers."""
        return [self._plan_header(p) for p in self._plan_list()]

    def _plan_list(self) -> list[Plan]:
        with self._plans_lock:
            return list(self._plans.values())

    def _plan_header(self, plan: Plan) -> dict[str, Any]:
        kpis = plan.run.kpis or {}
        return {
            "id": plan.id,
            "name": plan.name,
            "region_id": plan.settings.region_id,
            "description": describe(plan.settings),
            "status": plan.run.summary["status"],
            "patients_moved": kpis.get("patients_moved"),
            "patients_displaced": kpis.get("patients_displaced"),
            "mean_extra_min": kpis.get("mean_extra_min"),
            "providers_after": sum((kpis.get("providers_after") or {}).values()),
            "providers_before": sum((kpis.get("providers_before") or {}).values()),
            "seconds": round(plan.seconds, 3),
        }

    def plan_payload(self, plan: Plan) -> dict[str, Any]:
        """Everything the page shows of a plan (map colours, KPIs, hospital table)."""
        summary = plan.run.summary
        kpis = plan.run.kpis or {}
        treatments = [t.id for t in self.instance(plan.settings.region_id).treatments]
        return {
            **self._plan_header(plan),
            "settings": plan.settings.model_dump(),
            "objective_value": summary.get("objective"),
            "mip_gap": summary.get("mip_gap"),
            "solve_seconds": summary.get("solve_seconds"),
            "build_seconds": summary.get("build_seconds"),
            "verification": summary.get("verification"),
            "warnings": summary.get("warnings", []),
            "kpis": kpis,
            "kpi_rows": {
                "all": kpi_rows(kpis),
                "treatments": {t: kpi_rows(kpis, t) for t in treatments},
            },
            "hospitals": plan.hospitals,
            "areas": plan.areas,
            "reuse": plan.reuse,
        }

    def compare(self, a: int, b: int) -> dict[str, Any]:
        """Two plans side by side: settings, KPIs and the hospitals whose outcome differs."""
        plan_a, plan_b = self.plan(a), self.plan(b)
        rows_a = {r["key"]: r for r in kpi_rows(plan_a.run.kpis or {})}
        rows_b = {r["key"]: r for r in kpi_rows(plan_b.run.kpis or {})}
        kpis = []
        for key in [*rows_a, *(k for k in rows_b if k not in rows_a)]:
            row = rows_a.get(key) or rows_b[key]
            va = rows_a.get(key, {}).get("value")
            vb = rows_b.get(key, {}).get("value")
            numbers = isinstance(va, (int, float)) and isinstance(vb, (int, float))
            diff = vb - va if numbers else None
            kpis.append({"key": key, "label": row["label"], "unit": row["unit"], "a": va,
                         "b": vb, "diff": diff})
        hosp_a = {(r["site_id"], r["intervention_id"]): r for r in plan_a.hospitals}
        hosp_b = {(r["site_id"], r["intervention_id"]): r for r in plan_b.hospitals}
        hospitals = []
        for key in sorted(set(hosp_a) | set(hosp_b)):
            ra, rb = hosp_a.get(key), hosp_b.get(key)
            va = (ra or {}).get("volume_after") or 0.0
            vb = (rb or {}).get("volume_after") or 0.0
            sa, sb = (ra or {}).get("status"), (rb or {}).get("status")
            if sa == sb and abs(va - vb) < 0.05:
                continue
            row = ra or rb
            hospitals.append({
                "site_id": key[0], "site_name": row["site_name"], "intervention_id": key[1],
                "intervention_name": row["intervention_name"],
                "volume_before": row["volume_before"], "a_status": sa, "a_volume": va,
                "b_status": sb, "b_volume": vb, "diff": _round(vb - va, 6),
            })
        settings = []
        for key in ("region_id", "margin", "norm_confidence", "max_travel", "max_extra_travel",
                    "max_loss_share", "objective"):
            settings.append({"key": key, "a": getattr(plan_a.settings, key),
                             "b": getattr(plan_b.settings, key)})
        for key in ("force_keep", "force_close"):
            names = {**self._names(self.instance(plan_a.settings.region_id)),
                     **self._names(self.instance(plan_b.settings.region_id))}
            settings.append({
                "key": key,
                "a": [self._pair_text(p, names) for p in getattr(plan_a.settings, key)],
                "b": [self._pair_text(p, names) for p in getattr(plan_b.settings, key)],
            })
        return {"a": self._plan_header(plan_a), "b": self._plan_header(plan_b),
                "settings": settings, "kpis": kpis, "hospitals": hospitals}

    # --- export ------------------------------------------------------------------------------
    def export(self, plan_id: int) -> dict[str, Any]:
        """Write ``plan.toml`` and ``result/`` (by ``herschik solve``) to a new folder.

        The folder is chosen here: ``<out>/plan-<id>-<region>[-n]``. Returns its name (relative
        to ``--out``), the files written, the CLI command and whether the CLI's KPIs and hospital
        volumes equal the plan's.
        """
        from herschik.atomic import staged_dir, write_text

        plan = self.plan(plan_id)
        with self._export_lock:
            stem = f"plan-{plan.id:03d}-{plan.settings.region_id}"
            folder = new_folder(self.out_dir, stem)
            args = ["solve", "--region", plan.settings.region_id, "--scenario", "plan.toml",
                    "--out", "result", "--xlsx", *self.source_args]
            command = "herschik " + " ".join(_quote(a) for a in args)
            # The guarded folder writer: the folder appears whole (plan.toml and a finished
            # result/) or not at all, also when the solve fails or the app is stopped.
            with staged_dir(folder, kind="app-export") as staging:
                write_text(staging / "plan.toml",
                           scenario_toml(stem, plan.settings, plan.params, command))
                started = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "herschik.scenarios.cli", *args],
                    cwd=staging, capture_output=True, text=True, timeout=1800, check=False,
                )
                seconds = time.perf_counter() - started
                if proc.returncode not in (0, 1) or not (
                    staging / "result" / "summary.json"
                ).is_file():
                    lines = (proc.stderr or proc.stdout).strip().splitlines()
                    raise RuntimeError(
                        f"herschik solve failed (exit {proc.returncode}): "
                        f"{lines[-1] if lines else 'no output'}"
                    )
        result = folder / "result"
        same, differences = same_result(plan, result)
        return {
            "folder": folder.name,
            "files": sorted(
                str(p.relative_to(folder)) for p in folder.rglob("*")
                if p.is_file() and not p.name.startswith(".")
            ),
            "command": command,
            "exit_code": proc.returncode,
            "seconds": round(seconds, 3),
            "same_as_app": same,
            "differences": differences,
        }


def new_folder(parent: Path, stem: str) -> Path:
    """``parent/stem``, or ``stem-2``, ``stem-3``... if taken (never reused); not created (the
    caller writes it with :func:`herschik.atomic.staged_dir`, which refuses a taken name)."""
    parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        folder = parent / (stem if n == 1 else f"{stem}-{n}")
        if not folder.exists() and not folder.is_symlink() and not (
            parent / f".{folder.name}.lock"
        ).exists():
            return folder
        n += 1


def same_result(plan: Plan, result: Path) -> tuple[bool, list[str]]:
    """Does the CLI's result folder hold the plan's KPIs and status, and its CSVs byte for
    byte (the app's tables written by the CLI's own writer)?"""
    summary = json.loads((result / "summary.json").read_text(encoding="utf-8"))
    differences = []
    mine = plan.run.summary
    for key in ("status", "objective", "kpis"):
        if json.dumps(summary.get(key), sort_keys=True) != json.dumps(mine.get(key),
                                                                         sort_keys=True):
            differences.append(key)
    written = pd.read_csv(result / "site_volumes.csv")
    if len(written) != len(plan.run.site_volumes) or not np.allclose(
        written["volume_after"].to_numpy(float),
        plan.run.site_volumes["volume_after"].to_numpy(float), atol=1e-6,
    ):
        differences.append("site_volumes.csv")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        mine_dir = plan.run.write(Path(tmp) / "app", lock=False)
        for name in sorted(p.name for p in mine_dir.glob("*.csv")):
            theirs = result / name
            if not theirs.is_file() or theirs.read_bytes() != (mine_dir / name).read_bytes():
                if name not in differences:
                    differences.append(name)
    return not differences, differences


def comparable_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without its wall-clock fields (what two identical runs share)."""
    out = {k: v for k, v in summary.items() if k not in TIMING_FIELDS}
    out["subproblems"] = [
        {k: v for k, v in sp.items() if "seconds" not in k} for sp in out.get("subproblems", [])
    ]
    return out


def plain_words(text: str, names: dict[str, str]) -> str:
    """Replace ids in a diagnosis sentence by the names planners know (``id`` -> ``name``)."""
    if not names:
        return text
    ids = sorted((k for k in names if k), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(i) for i in ids) + r")(?![\w-])")
    text = pattern.sub(lambda m: names[m.group(1)], text)
    # "name (id)" labels became "name (name)": say the name once
    return re.sub(r"(?<![\w-])([^()]{3,}?) \(\1\)", r"\1", text)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
