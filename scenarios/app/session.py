"""The state behind ``herschik app``: one dataset, cached region instances, the plans solved.

Every plan is solved as ``herschik solve`` solves it: the solve, then KPIs, contract tables and
the independent verifier (:func:`herschik.scenarios.run.verified_result`, the second half of
:func:`~herschik.scenarios.run.solve_verified`). The solve goes through one what-if session
per region (:class:`herschik.optimiser.whatif.WhatIf` with ``same_as_fresh``): a change re-uses
every treatment's result whose model it leaves identical and solves the others as a fresh solve
does, so the plan is the CLI's to the last digit, only sooner.

The browser never names a file: it sends region, treatment and site ids (checked against the
dataset) and numbers; export folders are chosen below the app's ``--out`` folder.

The parts: :mod:`.models` (what the browser may send, derived from SolveParams), :mod:`.views`
(the JSON the page draws), :mod:`.nearest` (diagnosis and nearest feasible settings),
:mod:`.export` (scenario file and ``herschik solve`` in a child process).
"""

from __future__ import annotations

import dataclasses
import secrets
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from herschik.optimiser.diagnose import diagnose
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SolveParams
from herschik.optimiser.whatif import StepReport, WhatIf
from herschik.scenarios.assemble import build_instance, treatment_objects
from herschik.scenarios.run import RunResult, solve_verified, verified_result

from herschik.i18n import LANGUAGES, _, catalog, current_language, translate_name

from .export import export_plan
from .geometry import region_layers
from .models import APP_FIELDS, OBJECTIVES, AppInputError, Plan, PlanSettings, UnknownPlan
from .nearest import infeasible_info, partial_info
from .reasons import ReasonCache, reason_rows
from .views import (
    STATUSES,
    _round,
    area_view,
    baseline_text,
    compare_plans,
    hospital_rows,
    place_names,
    plain_words,
    plan_header,
    plan_payload,
    reuse_info,
)

#: how many plans the app keeps in memory (oldest dropped first)
MAX_PLANS = 200
#: sub-problem results each region's what-if session remembers (a model with its result is
#: about a megabyte at district level; older ones are dropped first)
SESSION_CACHE = 256


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
        #: why hospitals lose treatments, worked out per plan and hospital when asked
        self._reasons = ReasonCache()
        #: the session token that every state-changing request must carry (server.py)
        self.token = secrets.token_urlsafe(32)

    # --- reference data -------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """Regions, treatments, objectives and defaults: what the page needs to draw controls."""
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
            "baseline_source_text": baseline_text(self.dataset.meta),
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
            "defaults": {key: getattr(defaults, key) for key in APP_FIELDS},
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
            raise AppInputError(_("unknown region {region}", region=repr(region_id)))
        with self._build_lock:
            if region_id not in self._instances:
                self._instances[region_id] = build_instance(
                    self.dataset, region_id, network=self.network
                )
            return self._instances[region_id]

    def region_map(self, region_id: str) -> dict[str, Any]:
        """Area polygons (simplified, WGS84 GeoJSON) and hospital points of a region."""
        instance = self.instance(region_id)
        with self._build_lock:
            if region_id not in self._maps:
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
                raise AppInputError(_("site {site} is not a hospital of region {region}",
                                      site=repr(pair.site_id), region=settings.region_id))
            if pair.intervention_id not in treatments:
                raise AppInputError(_("unknown treatment {treatment}",
                                      treatment=repr(pair.intervention_id)))

    def solve(self, settings: PlanSettings, base_plan_id: int | None = None) -> dict[str, Any]:
        """Solve a plan; feasible -> ``{"status", "plan"}``, else the diagnosis and fixes.

        A partial plan (``partially_infeasible``: some treatments without a plan) is a plan
        too, with ``plan["partial"]``: those treatments, their diagnosis and the nearest
        settings that give every treatment a plan. ``base_plan_id`` is the plan on screen that
        the change was made to; the nearest feasible settings are sought between the request
        and it, when it is complete, else the region's latest complete plan.
        """
        instance = self.instance(settings.region_id)
        self._check_ids(settings, instance)
        params = settings.solve_params()
        with self._solve_lock:
            for existing in self._plan_list():
                if existing.settings == settings:  # same settings, same (deterministic) plan
                    return {"status": existing.run.summary["status"],
                            "plan": self._payload(existing), "same_as_plan": existing.id}
            started = time.perf_counter()
            run, how = self._solve_run(settings.region_id, instance, params)
            seconds = time.perf_counter() - started
            reuse = reuse_info(instance, *how) if how else None
            if not run.has_plan:
                return {
                    "status": "infeasible",
                    "seconds": round(seconds, 3),
                    "reuse": reuse,
                    "infeasible": infeasible_info(
                        settings, instance, params, run, self._base(settings, base_plan_id),
                        self._names(instance)),
                }
            base = None if run.solution.feasible else self._base(settings, base_plan_id)
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
                partial=None if run.solution.feasible else partial_info(
                    settings, instance, params, run, base, self._names(instance)),
                language=current_language(),
                how=how,
                base_id=base.id if base is not None else None,
            )
            self._next_id += 1
            with self._plans_lock:
                self._plans[plan.id] = plan
                while len(self._plans) > MAX_PLANS:
                    self._plans.popitem(last=False)
        return {"status": run.summary["status"], "plan": self._payload(plan)}

    def _solve_run(self, region_id: str, instance: Instance, params: SolveParams
                   ) -> tuple[RunResult, tuple[StepReport, bool] | None]:
        """The verified run of ``params`` and how it was obtained: the what-if step and whether
        it was the region's first (call under _solve_lock).

        Through the region's what-if session (created by the region's first solve): the same
        solution as :func:`solve_verified` gives, re-using what the change left unchanged."""
        if not self.whatif:
            return solve_verified(instance, params, reasons=False), None
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
        # without reasons: the page asks for a hospital's when it is opened (hospital_reasons)
        run = verified_result(instance, params, session.solution, reasons=False)
        return run, (session.last_step, first)

    def _base(self, settings: PlanSettings, base_plan_id: int | None) -> Plan | None:
        with self._plans_lock:
            base = self._plans.get(base_plan_id) if base_plan_id is not None else None
        if base is not None and base.settings.region_id == settings.region_id \
                and base.partial is None:
            return base
        for plan in reversed(self._plan_list()):
            if plan.settings.region_id == settings.region_id and plan.partial is None:
                return plan  # a complete plan: its limits are feasible ends of a bisection
        return None


    # --- plans -------------------------------------------------------------------------------
    def plan(self, plan_id: int) -> Plan:
        try:
            with self._plans_lock:
                return self._plans[plan_id]
        except KeyError:
            raise UnknownPlan(plan_id) from None

    def plans(self) -> list[dict[str, Any]]:
        """The plans kept, newest last, with their headline numbers."""
        return [plan_header(p) for p in self._plan_list()]

    def _plan_list(self) -> list[Plan]:
        with self._plans_lock:
            return list(self._plans.values())


    def plan_payload(self, plan: Plan) -> dict[str, Any]:
        """Everything the page shows of a plan (map colours, KPIs, hospital table), in the
        language of the request."""
        with self._solve_lock:
            return self._payload(plan)

    def _payload(self, plan: Plan) -> dict[str, Any]:
        payload = plan_payload(self._in_language(plan))  # under _solve_lock
        # the solver's warnings name hospitals and treatments by id: say their names
        names = self._names(plan.run.instance)
        payload["warnings"] = [plain_words(str(w), names) for w in payload["warnings"]]
        return payload

    def _in_language(self, plan: Plan) -> Plan:
        """``plan`` with its words (why a hospital loses a treatment, the diagnosis of a
        partial plan, how it was obtained) in the language of the request: a plan solved
        while the page was in another language (the first plan, solved at start in the app's
        language) is written again in this one, once; its numbers are the same. Call under
        _solve_lock (it re-runs the verified tables)."""
        lang = current_language()
        if plan.language == lang:
            return plan
        if lang not in plan.translations:
            plan.translations[lang] = self._rewritten(plan, lang)
        return plan.translations[lang]

    def _rewritten(self, plan: Plan, lang: str) -> Plan:
        instance, params, solution = plan.run.instance, plan.params, plan.run.solution
        if plan.partial is not None:  # the diagnosis' sentences, in this language
            missing = [t["id"] for t in plan.partial["treatments"]]
            solution = dataclasses.replace(solution, diagnosis={
                **(solution.diagnosis or {}), **diagnose(instance, params, missing)})
        run = verified_result(instance, params, solution, reasons=False)
        with self._plans_lock:
            base = self._plans.get(plan.base_id) if plan.base_id is not None else None
        return dataclasses.replace(
            plan, run=run, hospitals=hospital_rows(instance, run, params),
            reuse=reuse_info(instance, *plan.how) if plan.how else None,
            partial=None if plan.partial is None else partial_info(
                plan.settings, instance, params, run, base, self._names(instance)),
            language=lang, translations={}, reasons=plan.reasons)

    def compare(self, a: int, b: int) -> dict[str, Any]:
        """Two plans side by side: settings, KPIs and the hospitals whose outcome differs."""
        plan_a, plan_b = self.plan(a), self.plan(b)
        names = {**self._names(plan_a.run.instance), **self._names(plan_b.run.instance)}
        return compare_plans(plan_a, plan_b, names)

    def _names(self, instance: Instance) -> dict[str, str]:
        return place_names(instance, self.dataset.areas)

    # --- why a hospital loses a treatment ----------------------------------------------------
    def hospital_reasons(self, plan_id: int, site_id: str) -> dict[str, Any]:
        """Why the hospital ``site_id`` loses each treatment it loses in plan ``plan_id``, and
        what keeping it would cost (hospital_changes.csv's reason and its numbers), in the
        language of the request. Worked out the first time a plan's hospital is asked for,
        then kept with the plan; a solve does not wait for it."""
        plan = self.plan(plan_id)
        if site_id not in plan.run.instance.site_ids:
            raise AppInputError(_("site {site} is not a hospital of region {region}",
                                  site=repr(site_id), region=plan.settings.region_id))
        reasons = self._reasons.site_reasons(plan.run, plan.reasons, [site_id])[site_id]
        return {"plan_id": plan.id, "site_id": site_id,
                "reasons": reason_rows(plan.run, reasons)}

    def run_with_reasons(self, plan_id: int) -> RunResult:
        """The plan's verified run with hospital_changes' reason columns filled, in the
        plan's language: what ``herschik solve`` writes (the reasons of every hospital,
        worked out now where not asked for before)."""
        plan = self.plan(plan_id)
        return self._reasons.run_with_reasons(plan.run, plan.reasons, plan.language)

    # --- export ------------------------------------------------------------------------------
    def export(self, plan_id: int) -> dict[str, Any]:
        """Write ``plan.toml`` and ``result/`` (by ``herschik solve``) to a new folder below
        ``--out`` (see :func:`.export.export_plan`); the plan's tables are checked against
        the CLI's with their reasons, worked out now (:meth:`run_with_reasons`)."""
        plan = self.plan(plan_id)
        with self._export_lock:
            full = dataclasses.replace(plan, run=self.run_with_reasons(plan_id))
            return export_plan(full, self.out_dir, self.source_args)
