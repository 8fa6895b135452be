"""From sub-problem results to one :class:`~optimiser.solution.Solution`
(:func:`assemble_solution`).

Each result is decoded into flows and keeps (solver noise removed, flows at closed sites handed
back), a typed :class:`SubproblemReport` (its entry in ``Solution.subproblems``), and the
scenario's status, diagnosis, partial plan, gap and bound.

Reported objective (``Solution.objective``), recomputed from the decoded flows so that it has
the units a planner expects and no solver tie-break noise:

* ``travel``    patient-minutes per year, Σ travel x flow;
* ``moved``     patients per year not treated where they were at baseline,
  Σ_{a,t} (demand - Σ_s min(flow, baseline_flow));
* ``providers`` number of kept (site, treatment) pairs of treatments with a norm (phase 1 of the
  lexicographic objective; the travel of phase 2 is in ``Solution.subproblems[i]["travel"]``);
* ``planner``   unnecessary moves, patients per year (phase 1 of the lexicographic objective,
  formulation.unnecessary_moves; phase 2 minimises travel, in ``subproblems[i]["travel"]``);
* weighted mix  w_travel·travel + w_moved·moved - w_providers·providers + w_planner·unnecessary.
"""

from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from herschik.i18n import N_, _

from .diagnose import diagnose
from .formulation import (
    MovesRules,
    force_masks,
    objective_weights,
    shortfall_treatments,
    unnecessary_moves,
    unnecessary_moves_rules,
)
from .instance import Instance
from .params import SolveParams
from .solution import Solution
from .status import FEASIBILITY_ONLY, SolveStatus
from .subproblem import (
    ComponentResult,
    SolveReport,
)
from .tolerances import KEEP_THRESHOLD, PROVIDES_MIN, SOLVER_FLOW_NOISE

#: how diagnose.py's reason of an infeasible scenario begins
_INFEASIBLE_PREFIX = N_("The scenario is infeasible:")


@dataclass
class SubproblemReport:
    """One sub-problem's entry of ``Solution.subproblems`` (:meth:`as_dict` is that entry)."""

    treatments: list[str]
    n_vars: int
    n_rows: int
    n_binaries: int
    status: str
    gap: float | None
    build_seconds: float
    solve_seconds: float
    solver: str
    solved: SolveReport = field(default_factory=SolveReport)
    #: the reported objective and the travel of the decoded plan (None: no plan)
    objective: float | None = None
    travel: float | None = None

    @classmethod
    def of(cls, instance: Instance, r: ComponentResult) -> SubproblemReport:
        return cls([instance.treatment_ids[t] for t in r.treatments], r.arrays.n_cols,
                   r.arrays.n_rows, int(np.count_nonzero(r.arrays.integrality)), str(r.status),
                   None if r.gap is None else float(r.gap), round(r.build_seconds, 4),
                   round(r.solve_seconds, 4), r.solver, r.report)

    def not_optimised(self, model_size: tuple[int, int, int] | None) -> SubproblemReport:
        """A feasible sub-problem of an infeasible scenario, reported the same whether it was
        optimised before another one proved infeasible or only checked for feasibility after
        (sizes of its full model: the planner's phase 2 solves a smaller one): how far the
        others got before one proved infeasible depends on thread timing, so none of it is
        reported."""
        if self.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE,
                               SolveStatus.FEASIBLE_NOT_OPTIMISED):
            return self
        n_vars, n_rows, n_binaries = ((self.n_vars, self.n_rows, self.n_binaries)
                                      if model_size is None else model_size)
        return replace(self, n_vars=n_vars, n_rows=n_rows, n_binaries=n_binaries,
                       status=str(SolveStatus.FEASIBLE_NOT_OPTIMISED), gap=None,
                       solved=SolveReport(),
                       objective=None, travel=None)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "treatments": self.treatments, "n_vars": self.n_vars, "n_rows": self.n_rows,
            "n_binaries": self.n_binaries, "status": self.status, "gap": self.gap,
            "build_seconds": self.build_seconds, "solve_seconds": self.solve_seconds,
            "solver": self.solver, **self.solved.entries(),
        }
        if self.objective is not None:
            out["objective"] = self.objective
            out["travel"] = self.travel
        return out


def objective_value(instance: Instance, params: SolveParams, flow: np.ndarray,
                    keep: np.ndarray, treatments: list[int],
                    rules: MovesRules | None = None,
                    travel: np.ndarray | None = None) -> dict[str, float]:
    """Travel, moved, providers and the reported objective of ``treatments`` from decoded flows
    (``rules``: ``unnecessary_moves_rules(instance, params)`` when the caller has them;
    ``travel``: :func:`reachable_minutes` of the instance, likewise)."""
    tt = np.asarray(treatments, dtype=int)
    if travel is None:
        travel = reachable_minutes(instance)
    f = flow[:, :, tt]
    minutes = float(np.einsum("ast,as->", f, travel))
    stay = np.minimum(f, instance.baseline_flow[:, :, tt]).sum()
    moved = float(instance.demand[:, tt].sum() - stay)
    norms = instance.norm_matrix()[:, tt]
    providers = float((keep[:, tt] & ~np.isnan(norms)).sum())
    w = objective_weights(params)
    unnecessary = (unnecessary_moves(instance, params, flow, keep, treatments, rules)
                   if params.objective == "planner" or w["planner"] else 0.0)
    if params.objective_weights is None:
        value = {"travel": minutes, "moved": moved, "providers": providers,
                 "planner": unnecessary}[params.objective]
    else:
        value = (w["travel"] * minutes + w["moved"] * moved - w["providers"] * providers
                 + w["planner"] * unnecessary)
    return {"travel": minutes, "moved": moved, "providers": providers,
            "unnecessary_moves": unnecessary, "objective": value}


def reachable_minutes(instance: Instance) -> np.ndarray:
    """The travel minutes, 0 where unreachable (no flow can go there)."""
    return np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)


def _move_tolerance_flows(flow: np.ndarray, keep: np.ndarray, norms: np.ndarray, t: int,
                          forced: np.ndarray) -> None:
    """Hand flows to closed sites (keep decision 0) to the area's largest other flow.

    A binary within HiGHS' integrality tolerance (1e-6) times a linking bound of ~1e3 patients
    leaves ~1e-4 patients at a closed site; they belong to the area's main site. A site "kept"
    without patients (possible where the norm is waived to 0) does not provide the treatment
    unless it is forced to keep it."""
    normed = ~np.isnan(norms[:, t])
    empty = keep[:, t] & normed & (flow[:, :, t].sum(axis=0) <= PROVIDES_MIN) & ~forced[:, t]
    keep[empty, t] = False
    closed = ~keep[:, t] & normed
    stray = flow[:, closed, t].sum(axis=1)
    if not np.any(stray > 0):
        return
    flow[:, closed, t] = 0.0
    areas = np.nonzero(stray > 0)[0]
    main = np.argmax(flow[areas, :, t], axis=1)
    flow[areas, main, t] += stray[areas]


class _Decoder:
    """The plan and the scenario status, one sub-problem result at a time."""

    def __init__(self, instance: Instance, params: SolveParams) -> None:
        self.instance, self.params = instance, params
        n_areas, n_sites, n_treat = instance.shape
        self.flow = np.zeros((n_areas, n_sites, n_treat))
        self.keep = np.zeros((n_sites, n_treat), dtype=bool)
        self.status = SolveStatus.OPTIMAL
        self.reports: list[SubproblemReport] = []
        self.infeasible_treatments: list[str] = []
        self.unsolved_treatments: list[str] = []
        self.no_solution = False
        self.norms = instance.norm_matrix()
        self.forced_keep = force_masks(instance, params)[0]
        self._moves_rules: MovesRules | None = None
        #: reachable_minutes, once per plan (not per sub-problem)
        self.travel = reachable_minutes(instance)

    def moves_rules(self) -> MovesRules | None:
        """The planner objective's instance-wide rules, once per plan (not per sub-problem:
        ~20 objective values a plan), or None when the objective does not read them."""
        if self.params.objective != "planner" and not objective_weights(self.params)["planner"]:
            return None
        if self._moves_rules is None:
            self._moves_rules = unnecessary_moves_rules(self.instance, self.params)
        return self._moves_rules

    def add(self, r: ComponentResult) -> None:
        report = SubproblemReport.of(self.instance, r)
        self.reports.append(report)
        ids = [self.instance.treatment_ids[t] for t in r.treatments]
        if r.status in FEASIBILITY_ONLY:  # only when another one is infeasible
            self.status = SolveStatus.INFEASIBLE
        elif r.x is None and r.status == SolveStatus.TIME_LIMIT_NO_SOLUTION:
            # the time limit ran out before any solution: undecided, not infeasible
            self.unsolved_treatments += ids
            self.no_solution = True
        elif r.x is None:
            self.infeasible_treatments += ids
            self.status = SolveStatus.INFEASIBLE
        else:
            if self.status != SolveStatus.INFEASIBLE and r.status == SolveStatus.FEASIBLE:
                self.status = SolveStatus.FEASIBLE
            self._decode(r)
            vals = objective_value(self.instance, self.params, self.flow, self.keep,
                                   r.treatments, self.moves_rules(), self.travel)
            report.objective = round(vals["objective"], 6)
            report.travel = round(vals["travel"], 6)

    def _decode(self, r: ComponentResult) -> None:
        assert r.x is not None
        a, flow, keep, norms = r.arrays, self.flow, self.keep, self.norms
        values = a.flows(r.x)
        values = np.where(values < SOLVER_FLOW_NOISE, 0.0, values)
        # the bound is d: clip solver tolerance overshoot so flows never exceed demand
        values = np.minimum(values, self.instance.demand[a.x_area, a.x_treat])
        np.add.at(flow, (a.x_area, a.x_site, a.x_treat), values)
        yv = np.asarray(r.x)[a.y_slice()] > KEEP_THRESHOLD
        keep[a.y_site[yv], a.y_treat[yv]] = True
        for t in r.treatments:
            _move_tolerance_flows(flow, keep, norms, t, self.forced_keep)
            if np.all(np.isnan(norms[:, t])):
                keep[:, t] = flow[:, :, t].sum(axis=0) > PROVIDES_MIN
            else:
                # sites where t has no norm (tiered norm without that role) are open if used
                nn = np.isnan(norms[:, t])
                keep[nn, t] = flow[:, nn, t].sum(axis=0) > PROVIDES_MIN


@dataclass
class _Totals:
    """What every Solution of a solve shares: solver, timings, warnings, decomposition."""

    solver: str
    build_seconds: float
    solve_seconds: float
    warnings: list[str]
    decomposition: str

    @classmethod
    def of(cls, params: SolveParams, results: list[ComponentResult], explanation: str
           ) -> _Totals:
        notes: list[str] = []
        for r in results:
            notes += [note for note in r.warnings if note not in notes]
        return cls("cbc" if any(r.solver == "cbc" for r in results) else params.solver,
                   float(sum(r.build_seconds for r in results)),
                   float(sum(r.solve_seconds for r in results)), notes, explanation)

    def solution(self, status: SolveStatus, **fields: Any) -> Solution:
        return Solution(status=status, solver=fields.pop("solver", self.solver),
                        build_seconds=self.build_seconds, solve_seconds=self.solve_seconds,
                        decomposition=self.decomposition, warnings=self.warnings, **fields)


def assemble_solution(instance: Instance, params: SolveParams, comps: list[list[int]],
                      explanation: str, results: list[ComponentResult], partial: bool = True
                      ) -> Solution:
    """One Solution from the sub-problem results (in component order): flows, keeps, status,
    gap and bound, diagnosis. Shared by :func:`optimiser.solve.solve` and
    :mod:`optimiser.whatif`. ``partial=False``: never a partial plan (an early-stopping solve
    is ``infeasible`` however far its other sub-problems got)."""
    totals = _Totals.of(params, results, explanation)
    decoded = _Decoder(instance, params)
    for r in results:
        decoded.add(r)
    if decoded.status == SolveStatus.INFEASIBLE:
        return _infeasible(decoded, results, totals, partial)
    if decoded.no_solution:
        diagnosis = {
            "reason": (
                f"No feasible solution was found within the time limit of {params.time_limit} s "
                f"for {', '.join(decoded.unsolved_treatments)}. This does not mean the scenario "
                "is infeasible: it was not decided. Solve again with a longer --time-limit (or "
                "none)."),
            "time_limit_reached": True,
            "unsolved_treatments": decoded.unsolved_treatments,
        }
        return totals.solution(SolveStatus.TIME_LIMIT_NO_SOLUTION, objective=None, mip_gap=None,
                               keep=None, flow=None, diagnosis=diagnosis,
                               subproblems=[e.as_dict() for e in decoded.reports])
    if params.small_region_rule == "one_provider":
        totals.warnings += _shortfall_warnings(instance, decoded.keep, decoded.norms)
    entries = [e.as_dict() for e in decoded.reports]
    objective = objective_value(instance, params, decoded.flow, decoded.keep,
                                list(range(instance.shape[2])),
                                decoded.moves_rules(), decoded.travel)["objective"]
    gaps = [e["gap"] for e in entries if e["gap"] is not None]
    bounds = [e.get("bound") for e in entries]
    # sub-problems are independent, so their bounds add up (solver objective units: for
    # ``moved`` that includes the tie-break, for ``providers`` it is an upper bound)
    mip_bound = (float(sum(b for b in bounds if b is not None))
                 if bounds and all(b is not None for b in bounds) else None)
    return totals.solution(decoded.status, objective=objective,
                           mip_gap=float(max(gaps)) if gaps else 0.0, mip_bound=mip_bound,
                           keep=decoded.keep, flow=decoded.flow, diagnosis=None,
                           subproblems=entries)


def _shortfall_warnings(instance: Instance, keep: np.ndarray, norms: np.ndarray) -> list[str]:
    """Treatments whose whole demand is below the norm (small_region_rule = one_provider)."""
    out = []
    for t in shortfall_treatments(instance):
        total = float(instance.demand[:, t].sum())
        kept = [instance.site_label(int(s)) for s in np.nonzero(keep[:, t])[0]]
        out.append(
            f"{instance.treatment_label(t)}: the whole demand of {instance.region_id} "
            f"({total:.1f} patients/yr) is below the norm "
            f"({np.nanmin(norms[:, t]):g}), so no hospital can reach it; concentrated at "
            f"{', '.join(kept) or 'no site'} with the norm NOT met — this needs an "
            "arrangement across regions (see a joint solve with --region all)"
        )
    return out


def _infeasible(decoded: _Decoder, results: list[ComponentResult], totals: _Totals,
                partial: bool) -> Solution:
    """The infeasible scenario: its partial plan when there is one, else no plan."""
    instance, params = decoded.instance, decoded.params
    diagnosis = _infeasible_diagnosis(instance, params, decoded.infeasible_treatments,
                                      decoded.unsolved_treatments if decoded.no_solution
                                      else None)
    partial_plan = _partial_solution(decoded, results, diagnosis, totals,
                                     decoded.no_solution or not partial)
    entries = [e.not_optimised(r.model_size).as_dict()
               for e, r in zip(decoded.reports, results, strict=True)]
    return partial_plan or totals.solution(
        SolveStatus.INFEASIBLE, objective=None, mip_gap=None, keep=None, flow=None,
        diagnosis=diagnosis, subproblems=entries)


def _infeasible_diagnosis(instance: Instance, params: SolveParams,
                          infeasible_treatments: list[str],
                          unsolved_treatments: list[str] | None) -> dict[str, Any]:
    """The diagnosis of an infeasible solve; ``unsolved_treatments``: those whose sub-problem
    hit the time limit without a solution (undecided, but one infeasible one decides)."""
    try:
        diagnosis = diagnose(instance, params, infeasible_treatments)
    except Exception as exc:  # a diagnosis bug must not hide the status
        _warnings.warn(f"diagnose failed: {exc!r}", stacklevel=4)
        diagnosis = {"reason": "The scenario has no feasible solution (the diagnosis "
                               f"itself failed: {exc!r}).",
                     "infeasible_treatments": infeasible_treatments}
    if unsolved_treatments is not None:
        diagnosis = dict(diagnosis)
        diagnosis["time_limit_reached"] = True
        diagnosis["unsolved_treatments"] = unsolved_treatments
    return diagnosis


def _partial_solution(decoded: _Decoder, results: list[ComponentResult],
                      diagnosis: dict[str, Any], totals: _Totals,
                      no_solution: bool) -> Solution | None:
    """The partial plan of an infeasible scenario whose every other sub-problem was optimised
    (solve(partial=True)): flows and keeps of the solved treatments, the diagnosis of the
    others; None when nothing was solved, a time limit left one undecided, or some
    sub-problem was only checked for feasibility."""
    instance, params = decoded.instance, decoded.params
    if no_solution or any(r.status in FEASIBILITY_ONLY for r in results):
        return None
    solved = sorted(t for r in results if r.x is not None for t in r.treatments)
    if not solved:
        return None
    infeasible = [instance.treatment_ids[t] for r in results if r.x is None
                  for t in r.treatments]
    diagnosis = dict(diagnosis)
    reason = str(diagnosis.get("reason", ""))
    for prefix in (_INFEASIBLE_PREFIX, _(_INFEASIBLE_PREFIX)):  # English, or the run's
        if reason.startswith(prefix):
            reason = reason[len(prefix):].lstrip()
            break
    diagnosis["reason"] = _("No plan for {treatments} (the other treatments have one): "
                            "{reason}", treatments=", ".join(infeasible), reason=reason)
    diagnosis["solved_treatments"] = [instance.treatment_ids[t] for t in solved]
    entries = [e.as_dict() for e in decoded.reports]
    gaps = [e["gap"] for e in entries if e.get("gap") is not None]
    return totals.solution(
        SolveStatus.PARTIALLY_INFEASIBLE,
        objective=objective_value(instance, params, decoded.flow, decoded.keep,
                                  solved, decoded.moves_rules(), decoded.travel)["objective"],
        mip_gap=float(max(gaps)) if gaps else 0.0, keep=decoded.keep, flow=decoded.flow,
        diagnosis=diagnosis, subproblems=entries)
