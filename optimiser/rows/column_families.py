"""The column blocks: flows (x), keep decisions (y) and stays, with what they enforce.

* ``flows``: one column per allowed (area, site, treatment) pair (``formulation.PairRule``:
  demand > 0, a candidate site, within ``max_travel`` / ``max_extra_travel``), so candidates,
  closures and travel limits hold by construction. Continuous in ``[0, d]``; with
  ``single_sourcing`` a binary share ``z`` with flow ``d·z``.
* ``keeps``: a binary per candidate (site, treatment) with a norm, ordered by (treatment, site);
  ``force_keep`` fixes it to 1. A pair both forced open and closed is a conflict (infeasible).
* ``stays``: patients of an area who stay at their baseline site (moved / planner objectives),
  ``0 <= stay <= baseline_flow``; the ``stay`` rows keep them below the flow.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from herschik.i18n import _

from ..tolerances import REACHES_REQUIRED_TOL
from .base import (
    MAX_LISTED,
    Build,
    CheckContext,
    DiagnosisContext,
    Family,
    Finding,
    Reason,
    concat_int,
    fmt,
)
from .checking import EXTRA_TRAVEL_TOL_MIN, TOL, TRAVEL_TOL_MIN, named_pairs
from .keepsets import read_flows, read_keeps, read_stays


# --- builders ---------------------------------------------------------------------------------
def build_flows(b: Build) -> None:
    """x columns, per treatment, vectorised over (area, site)."""
    pairs = [np.nonzero(b.allowed(t)) for t in b.treatments]
    b.x_area = concat_int([a for a, _ in pairs])
    b.x_site = concat_int([s for _, s in pairs])
    b.x_treat = concat_int([np.full(a.shape[0], t, dtype=np.int64)
                            for (a, _), t in zip(pairs, b.treatments, strict=True)])
    b.x_d = b.instance.demand[b.x_area, b.x_treat]
    b.x_scale = b.x_d.copy() if b.params.single_sourcing else np.ones(b.n_x)


def build_keeps(b: Build) -> None:
    """y columns: candidates of treatments with a norm, ordered by (treatment, site)."""
    n_sites, n_treat = b.candidate.shape
    tsel = list(b.treatments)
    y_mask = np.zeros((n_sites, n_treat), dtype=bool)
    y_mask[:, tsel] = (b.candidate & b.has_norm)[:, tsel]
    yt, ys = np.nonzero(y_mask.T)
    b.y_site, b.y_treat = ys.astype(np.int64), yt.astype(np.int64)
    b.y_col = np.full((n_sites, n_treat), -1, dtype=np.int64)
    b.y_start = b.n_x
    b.y_col[b.y_site, b.y_treat] = b.y_start + np.arange(b.n_y)
    b.y_lower = b.force_keep[b.y_site, b.y_treat].astype(float)
    b.y_upper = np.ones(b.n_y)
    b.conflicts = [
        f"{b.instance.site_ids[s]} is forced to keep and to close {b.instance.treatment_ids[t]}"
        for t in b.treatments for s in np.nonzero(b.force_keep[:, t] & b.force_close[:, t])[0]
    ]


def build_stays(b: Build) -> None:
    """stay columns of the flows that carry baseline patients (moved / planner objectives)."""
    b.stay_start = b.n_x + b.n_y
    if b.use_stay:
        baseline = b.instance.baseline_flow[b.x_area, b.x_site, b.x_treat]
        b.stay_x = np.nonzero(baseline > 0)[0]  # x column index each stay belongs to
        b.stay_ub = baseline[b.stay_x]
    else:
        b.stay_x = np.zeros(0, dtype=np.int64)
        b.stay_ub = np.zeros(0)


# --- checks (independent of the builders) -----------------------------------------------------
def _mean_baseline_travel(ctx: CheckContext) -> np.ndarray:
    instance = ctx.instance
    patients = instance.baseline_flow.sum(axis=1)
    total = np.zeros_like(patients)
    for s in range(len(instance.sites)):
        flow = instance.baseline_flow[:, s, :]
        used = flow > 0
        # minutes only where patients go today: an unreachable pair (inf) times no patients
        # would be NaN (and warn) before np.where drops it
        minutes = np.where(used, instance.travel_min[:, s][:, None], 0.0)
        total += np.where(used, flow * minutes, 0.0)
    out = np.full_like(patients, np.nan)
    np.divide(total, patients, out=out, where=patients > 0)
    return out


def _travel_allowed(ctx: CheckContext, a: int, t: int,
                    nearest: dict[int, np.ndarray | None]) -> float | None:
    """The travel limit of area a for treatment t (remote areas: their nearest provider).
    ``nearest``: per treatment, each area's minutes to its nearest provider of today (None
    without providers), filled as the check goes."""
    params, instance = ctx.params, ctx.instance
    if params.max_travel is None:
        return None
    allowed = params.max_travel
    if params.remote_areas == "nearest_provider":
        if t not in nearest:
            providers = np.nonzero(instance.baseline_volume[:, t] > 0)[0]
            nearest[t] = (np.min(instance.travel_min[:, providers], axis=1) if len(providers)
                          else None)
        minutes = nearest[t]
        if minutes is not None:
            allowed = max(allowed, float(minutes[a]))
    return allowed


def _flow_problems(ctx: CheckContext, a: int, s: int, t: int, baseline_travel: np.ndarray,
                   pairs: dict[str, set[tuple[int, int]]],
                   nearest: dict[int, np.ndarray | None]) -> list[str]:
    params, instance = ctx.params, ctx.instance
    minutes = instance.travel_min[a, s]
    out = []
    if not np.isfinite(minutes):
        out.append(f"no route but {ctx.flow[a, s, t]:.4f} patients")
    allowed = _travel_allowed(ctx, a, t, nearest)
    if allowed is not None and minutes > allowed + TRAVEL_TOL_MIN:
        out.append(f"{minutes:.1f} min exceeds the travel limit {allowed}")
    if params.max_extra_travel is not None and np.isfinite(baseline_travel[a, t]):
        extra = minutes - baseline_travel[a, t]
        if extra > params.max_extra_travel + EXTRA_TRAVEL_TOL_MIN:
            out.append(f"{extra:.1f} extra min exceeds max_extra_travel "
                       f"{params.max_extra_travel}")
    provided_before = instance.baseline_volume[s, t] > 0
    if not (provided_before or params.allow_new_providers or (s, t) in pairs["keep"]):
        out.append("site did not provide it and new providers are not allowed")
    if (s, t) in pairs["close"]:
        out.append("site is forced to close this treatment")
    if not out:  # the flow's label only for a problem (a sweep run checks ~10,000 flows)
        return out
    where = f"area {ctx.area_labels[a]} -> site {ctx.site_labels[s]} for {ctx.treatment_ids[t]}"
    return [f"{where}: {problem}" for problem in out]


def _flows_with_problems(ctx: CheckContext, a: np.ndarray, s: np.ndarray, t: np.ndarray,
                         baseline_travel: np.ndarray,
                         pairs: dict[str, set[tuple[int, int]]]) -> np.ndarray:
    """Whether each flow (a[i], s[i], t[i]) breaks a condition of :func:`_flow_problems`,
    vectorised: the same comparisons on the same numbers (tests compare the two on every
    flow of mutated solutions)."""
    params, instance = ctx.params, ctx.instance
    minutes = instance.travel_min[a, s]
    bad = ~np.isfinite(minutes)
    if params.max_travel is not None:
        allowed = np.full(minutes.shape, float(params.max_travel))
        if params.remote_areas == "nearest_provider":
            for treatment in np.unique(t):
                providers = np.nonzero(instance.baseline_volume[:, treatment] > 0)[0]
                if len(providers):
                    mine = t == treatment
                    nearest = np.min(instance.travel_min[:, providers], axis=1)[a[mine]]
                    allowed[mine] = np.maximum(allowed[mine], nearest)
        bad |= minutes > allowed + TRAVEL_TOL_MIN
    if params.max_extra_travel is not None:
        before = baseline_travel[a, t]
        finite = np.isfinite(before)
        with np.errstate(invalid="ignore"):
            extra = minutes - np.where(finite, before, 0.0)
        bad |= finite & (extra > params.max_extra_travel + EXTRA_TRAVEL_TOL_MIN)
    named = {key: np.zeros(instance.baseline_volume.shape, dtype=bool) for key in pairs}
    for key, named_pairs_of_key in pairs.items():
        for pair in named_pairs_of_key:
            named[key][pair] = True
    if not params.allow_new_providers:
        bad |= ~((instance.baseline_volume[s, t] > 0) | named["keep"][s, t])
    bad |= named["close"][s, t]
    return bad


def check_flows(ctx: CheckContext) -> list[str]:
    """Flows are non-negative, routed, within the travel limits, at sites that may provide the
    treatment; single sourcing: one site per area and treatment."""
    flow = ctx.flow
    problems = []
    if np.any(flow < -TOL):
        problems.append(f"negative flow, minimum {flow.min():.6g}")
    pairs = {"keep": named_pairs(ctx.params.force_keep, ctx.instance),
             "close": named_pairs(ctx.params.force_close, ctx.instance)}
    baseline_travel = _mean_baseline_travel(ctx)
    nearest: dict[int, np.ndarray | None] = {}
    used_a, used_s, used_t = np.nonzero(flow > TOL)
    # the conditions of _flow_problems for every used flow at once (a sweep run or an app
    # change checks ~10,000 flows); the words only for the flows that break one, in order
    broken = _flows_with_problems(ctx, used_a, used_s, used_t, baseline_travel, pairs)
    for i in np.nonzero(broken)[0]:
        problems += _flow_problems(ctx, int(used_a[i]), int(used_s[i]), int(used_t[i]),
                                   baseline_travel, pairs, nearest)
    if ctx.params.single_sourcing:
        used = (flow > TOL).sum(axis=1)
        for a, t in zip(*np.nonzero((ctx.instance.demand > TOL) & (used != 1)), strict=True):
            problems.append(f"single sourcing: area {ctx.area_labels[a]} sends "
                            f"{ctx.treatment_ids[t]} to {used[a, t]} sites")
    return problems


def check_keeps(ctx: CheckContext) -> list[str]:
    """Forced keeps are kept, forced closures are not."""
    forced_keep = named_pairs(ctx.params.force_keep, ctx.instance)
    forced_close = named_pairs(ctx.params.force_close, ctx.instance)
    problems = []
    for s, t in sorted(forced_keep | forced_close):
        name = f"site {ctx.site_labels[s]}, {ctx.treatment_ids[t]}"
        if (s, t) in forced_keep and not ctx.keep[s, t]:
            problems.append(f"{name}: forced to keep but not kept")
        if (s, t) in forced_close and ctx.keep[s, t]:
            problems.append(f"{name}: forced to close but kept")
    return problems


# --- diagnosis reasons ------------------------------------------------------------------------
def _area_out_of_reach(ctx: DiagnosisContext, t: int) -> dict[str, Any] | None:
    instance = ctx.instance
    no_site = ctx.no_site[:, t]
    if not no_site.any():
        return None
    cand = ctx.candidate[:, t]
    cand_travel = np.where(cand[None, :], instance.travel_min, np.inf)
    nearest = (cand_travel.min(axis=1) if cand.any()
               else np.full(len(instance.area_ids), np.inf))
    listed = [{"area_id": instance.area_ids[a], "area_name": instance.area_name(a),
               "nearest_site_minutes": (round(float(nearest[a]), 1)
                                        if math.isfinite(nearest[a]) else None)}
              for a in np.nonzero(no_site)[0][:MAX_LISTED]]
    return {"n_areas": int(no_site.sum()),
            "patients": round(float(instance.demand[no_site, t].sum()), 3),
            "areas": listed}


def reason_out_of_reach(ctx: DiagnosisContext) -> Finding | None:
    """Areas with no candidate site within the travel limits."""
    found = {ctx.instance.treatment_ids[t]: info for t in ctx.treatments
             if (info := _area_out_of_reach(ctx, t)) is not None}
    if not found:
        return None
    tid, info = next(iter(found.items()))
    params = ctx.params
    limit = []
    if params.max_travel is not None:
        limit.append(_("{minutes} min", minutes=fmt(params.max_travel)))
    if params.max_extra_travel is not None:
        limit.append(_("{minutes} extra min", minutes=fmt(params.max_extra_travel)))
    within = " " + _("within {limits}", limits=" / ".join(limit)) if limit else ""
    a = ctx.instance.area_ids.index(info["areas"][0]["area_id"])
    t = ctx.instance.treatment_ids.index(tid)
    return Finding(_("{treatment}: {count} area(s) cannot reach any site that may provide "
                     "it{within} (e.g. {area})", treatment=ctx.tlabel(t), count=info["n_areas"],
                     within=within, area=ctx.instance.area_label(a)),
                   "areas_out_of_reach", found)


def reason_forced_keep(ctx: DiagnosisContext) -> Finding | None:
    """Forced keeps that cannot be honoured (also closed, or below the norm in any case)."""
    tids, sids = ctx.instance.treatment_ids, ctx.instance.site_ids
    forced: list[dict[str, Any]] = []
    for t in ctx.treatments:
        for s in np.nonzero(ctx.force_keep[:, t])[0]:
            usable, required = ctx.usable[s, t], ctx.required[s, t]
            if ctx.force_close[s, t]:
                forced.append({"site_id": sids[s], "intervention_id": tids[t],
                               "problem": "forced to keep and forced to close"})
            elif not np.isnan(required) and usable < required - REACHES_REQUIRED_TOL:
                forced.append({"site_id": sids[s], "intervention_id": tids[t],
                               "problem": (f"forced to keep but at most {fmt(usable)} "
                                           f"patients can reach it, below the required "
                                           f"{fmt(required)}"),
                               "reachable": round(float(usable), 3),
                               "required": round(float(required), 3)})
    if not forced:
        return None
    first = forced[0]
    site = sids.index(first["site_id"])
    treatment = tids.index(first["intervention_id"])
    if "reachable" in first:
        problem = _("forced to keep but at most {reachable} patients can reach it, below the "
                    "required {required}", reachable=fmt(first["reachable"]),
                    required=fmt(first["required"]))
    else:
        problem = _("forced to keep and forced to close")
    return Finding(_("{treatment} at {site} is {problem}", treatment=ctx.tlabel(treatment),
                     site=ctx.slabel(site), problem=problem),
                   "forced_keep_conflicts", forced)


FLOWS = Family(
    "flows", "columns",
    ("max_travel", "remote_areas", "max_extra_travel", "allow_new_providers", "force_keep",
     "force_close", "single_sourcing"),
    build_flows, check_flows, (Reason(30, reason_out_of_reach),),
    doc="x: a column per allowed (area, site, treatment) pair; candidates and travel limits "
        "hold by construction", keep_sets=read_flows,
)
KEEPS = Family(
    "keeps", "columns", ("force_keep", "force_close"), build_keeps, check_keeps,
    (Reason(10, reason_forced_keep),),
    doc="y: a binary keep per candidate (site, treatment) with a norm; force_keep fixes it",
    keep_sets=read_keeps,
)
STAYS = Family(
    "stays", "columns", ("objective", "objective_weights"), build_stays, None,
    doc="stay columns of the moved / planner objectives (bookkeeping, not a constraint)",
    keep_sets=read_stays,
)
