"""Plain-words reasons why a scenario is infeasible, and what would make it feasible.

:func:`diagnose` runs cheap structural checks first (array arithmetic on the same candidate /
reachability / capacity rules as the formulation, so they cannot disagree with the model) and
then, within a small time budget, bisections that re-solve the infeasible treatments only:

* ``smallest_feasible_margin``: the largest margin (<= the requested one, rounded *down* to 0.01)
  at which the scenario becomes feasible, i.e. the smallest cut in the margin that is needed;
  ``None`` if even margin 0 is infeasible;
* ``smallest_feasible_max_travel``: the smallest ``max_travel`` (rounded *up* to whole minutes)
  that is feasible, if a limit was set; ``None`` if even no limit is infeasible.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .backends import solve_highs, solve_pulp
from .decomposition import treatment_components
from .formulation import (
    build_arrays,
    candidate_matrix,
    capacity_matrix,
    force_masks,
    reachable_matrix,
    required_matrix,
)
from .instance import Instance
from .params import SolveParams

#: wall-clock budget of the bisections (the structural checks are always done)
BISECTION_BUDGET_S = 8.0
#: time limit of one feasibility check inside a bisection
CHECK_TIME_LIMIT_S = 2.0
MAX_LISTED = 20


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.1f}"


def _indices(instance: Instance, infeasible: list[str] | list[int] | None) -> list[int]:
    if not infeasible:
        return list(range(len(instance.treatments)))
    index = {tid: i for i, tid in enumerate(instance.treatment_ids)}
    out = []
    for t in infeasible:
        if isinstance(t, (int, np.integer)):
            out.append(int(t))
        elif t in index:
            out.append(index[t])
    return sorted(set(out))


def is_feasible(instance: Instance, params: SolveParams, treatments: list[int],
                time_limit: float | None = CHECK_TIME_LIMIT_S) -> bool | None:
    """Does the model of ``treatments`` have a feasible solution? ``None`` if undecided in time.

    Solves the formulation with a zero objective (pure feasibility), which is much faster than
    optimising.
    """
    arrays = build_arrays(instance, params.model_copy(update={"objective": "travel",
                                                              "objective_weights": None}),
                          treatments)
    arrays = arrays.with_objective(np.zeros(arrays.n_cols))
    try:
        res = solve_highs(arrays, time_limit=time_limit, mip_gap=1.0, threads=1)
    except ImportError:
        res = solve_pulp(arrays, "cbc", time_limit=time_limit, mip_gap=1.0)
    if res.status in ("optimal", "feasible"):
        return True
    if res.status == "infeasible":
        return False
    return None


def _coupled(instance: Instance, params: SolveParams, treatments: list[int]) -> list[int]:
    """The infeasible treatments plus everything they are coupled with (same components)."""
    comps, _ = treatment_components(instance, params)
    chosen = set(treatments)
    out: set[int] = set()
    for comp in comps:
        if chosen & set(comp):
            out |= set(comp)
    return sorted(out)


def diagnose(instance: Instance, params: SolveParams,
             infeasible_treatments: list[str] | list[int] | None = None) -> dict[str, Any]:
    """Why is the scenario infeasible? ``{"reason": one sentence, ...structured details}``.

    ``infeasible_treatments`` are the ids (or indices) of the treatments whose sub-problems were
    infeasible; ``None`` checks all. Never raises on ordinary data.
    """
    tsel = _indices(instance, infeasible_treatments)
    tids = instance.treatment_ids
    sids = instance.site_ids
    aids = instance.area_ids
    tlabel = {tid: instance.treatment_label(t) for t, tid in enumerate(tids)}
    slabel = {sid: instance.site_label(s) for s, sid in enumerate(sids)}
    alabel = {aid: instance.area_label(a) for a, aid in enumerate(aids)}
    coupled_all = list(tsel)
    alone = _infeasible_alone(instance, params, tsel)
    cand = candidate_matrix(instance, params)
    cap = capacity_matrix(instance, params)
    required = required_matrix(instance, params)
    fkeep, fclose = force_masks(instance, params)
    allowed = reachable_matrix(instance, params, cand)  # (A, S, T)
    demand = instance.demand
    travel = instance.travel_min
    reach = np.einsum("ast,at->st", allowed.astype(float), demand)  # reachable demand per (s,t)
    usable = np.minimum(reach, cap)  # what a site could treat at most

    reasons: list[str] = []
    if alone is not None:
        # a coupled model (max_loss_share, bundles) failed as a whole: name only the treatments
        # that are infeasible on their own; if none is, the coupling itself is the reason
        if alone:
            tsel = alone
    together = ""
    if alone is not None and not alone:
        names = ", ".join(tlabel[tids[t]] for t in coupled_all[:MAX_LISTED])
        together = ("every treatment is feasible on its own, but the constraints that couple "
                    f"them ({_coupling(params)}) cannot be met together for {names}")
    details: dict[str, Any] = {"infeasible_treatments": [tids[t] for t in tsel]}
    if alone is not None:
        details["coupled_treatments"] = [tids[t] for t in coupled_all]
        details["infeasible_only_together"] = not alone

    unreachable: dict[str, Any] = {}
    no_viable_site: dict[str, Any] = {}
    areas_without_viable: dict[str, Any] = {}
    forced: list[dict[str, Any]] = []
    capacity_short: dict[str, Any] = {}
    for t in tsel:
        tid = tids[t]
        has_demand = demand[:, t] > 0
        # 1. areas with no candidate site within the travel limits
        no_site = has_demand & ~allowed[:, :, t].any(axis=1)
        if no_site.any():
            cand_travel = np.where(cand[None, :, t], travel, np.inf)
            nearest = cand_travel.min(axis=1) if cand[:, t].any() else np.full(len(aids), np.inf)
            listed = [{"area_id": aids[a], "area_name": instance.area_name(a),
                       "nearest_site_minutes": (round(float(nearest[a]), 1)
                                                if math.isfinite(nearest[a]) else None)}
                      for a in np.nonzero(no_site)[0][:MAX_LISTED]]
            unreachable[tid] = {"n_areas": int(no_site.sum()),
                                "patients": round(float(demand[no_site, t].sum()), 3),
                                "areas": listed}
        normed = ~np.isnan(required[:, t])
        viable = cand[:, t] & (~normed | (usable[:, t] >= required[:, t] - 1e-9))
        # 2. a norm no candidate site can reach
        if normed.any() and has_demand.any() and not viable.any():
            cs = np.nonzero(cand[:, t])[0]
            if cs.size:
                best = cs[np.argmax(usable[cs, t])]
                no_viable_site[tid] = {
                    "required": round(float(np.nanmax(required[cs, t])), 3),
                    "largest_reachable_volume": round(float(usable[best, t]), 3),
                    "site_id": sids[best],
                }
            else:
                no_viable_site[tid] = {"required": None, "largest_reachable_volume": 0.0,
                                       "site_id": None}
        # 3. areas that can reach a candidate, but none that can reach its norm
        elif has_demand.any():
            bad = has_demand & ~no_site & ~(allowed[:, :, t] & viable[None, :]).any(axis=1)
            if bad.any():
                areas_without_viable[tid] = {
                    "n_areas": int(bad.sum()),
                    "patients": round(float(demand[bad, t].sum()), 3),
                    "areas": [aids[a] for a in np.nonzero(bad)[0][:MAX_LISTED]],
                }
        # 4. forced keeps that cannot be honoured
        for s in np.nonzero(fkeep[:, t])[0]:
            if fclose[s, t]:
                forced.append({"site_id": sids[s], "intervention_id": tid,
                               "problem": "forced to keep and forced to close"})
            elif normed[s] and usable[s, t] < required[s, t] - 1e-9:
                forced.append({"site_id": sids[s], "intervention_id": tid,
                               "problem": (f"forced to keep but at most {_fmt(usable[s, t])} "
                                           f"patients can reach it, below the required "
                                           f"{_fmt(required[s, t])}"),
                               "reachable": round(float(usable[s, t]), 3),
                               "required": round(float(required[s, t]), 3)})
        # 5. not enough capacity in total
        total_cap = float(np.where(viable, usable[:, t], 0.0).sum())
        total_demand = float(demand[:, t].sum())
        if total_demand > total_cap + 1e-6 and not no_site.any():
            capacity_short[tid] = {"demand": round(total_demand, 3),
                                   "capacity": round(total_cap, 3)}

    if forced:
        details["forced_keep_conflicts"] = forced
        f0 = forced[0]
        reasons.append(f"{tlabel.get(f0['intervention_id'], f0['intervention_id'])} at "
                       f"{slabel.get(f0['site_id'], f0['site_id'])} is {f0['problem']}")
    if no_viable_site:
        details["no_site_reaches_norm"] = no_viable_site
        tid, info = next(iter(no_viable_site.items()))
        if info["site_id"] is not None:
            reasons.append(
                f"{tlabel[tid]}: required {_fmt(info['required'])}/yr at every site but the "
                f"largest reachable demand is {_fmt(info['largest_reachable_volume'])} at "
                f"{slabel[info['site_id']]}")
        else:
            reasons.append(f"{tlabel[tid]}: no site may provide it (all candidates closed)")
    if unreachable:
        details["areas_out_of_reach"] = unreachable
        tid, info = next(iter(unreachable.items()))
        limit = []
        if params.max_travel is not None:
            limit.append(f"{_fmt(params.max_travel)} min")
        if params.max_extra_travel is not None:
            limit.append(f"{_fmt(params.max_extra_travel)} extra min")
        within = f" within {' / '.join(limit)}" if limit else ""
        reasons.append(f"{tlabel[tid]}: {info['n_areas']} area(s) cannot reach any site that "
                       f"may provide it{within} (e.g. {alabel[info['areas'][0]['area_id']]})")
    if areas_without_viable:
        details["areas_without_viable_site"] = areas_without_viable
        tid, info = next(iter(areas_without_viable.items()))
        reasons.append(f"{tlabel[tid]}: {info['n_areas']} area(s) can only reach sites that "
                       f"cannot reach the required volume (e.g. {alabel[info['areas'][0]]})")
    if capacity_short:
        details["capacity_shortfall"] = capacity_short
        tid, info = next(iter(capacity_short.items()))
        reasons.append(f"{tlabel[tid]}: demand {_fmt(info['demand'])}/yr exceeds the capacity "
                       f"of the sites able to provide it ({_fmt(info['capacity'])})")

    # bundles: a site candidate for only part of a bundle loses all of it
    bundle_notes = _bundle_conflicts(instance, params, cand, fkeep)
    if bundle_notes:
        details["bundle_conflicts"] = bundle_notes
        reasons.append(bundle_notes[0])
    # max_loss_share: a site that cannot keep enough volume even taking everything in reach
    if params.max_loss_share is not None and params.max_loss_share < 1.0:
        b_tot = instance.baseline_volume.sum(axis=1)
        need = (1.0 - params.max_loss_share) * b_tot
        most = np.minimum(reach, cap).sum(axis=1)
        short = np.nonzero((b_tot > 0) & (most < need - 1e-6))[0]
        if short.size:
            details["loss_share_conflicts"] = [
                {"site_id": sids[s], "must_keep": round(float(need[s]), 3),
                 "at_most": round(float(most[s]), 3)} for s in short[:MAX_LISTED]]
            s = short[0]
            reasons.append(f"{slabel[sids[s]]} must keep {_fmt(need[s])} patients/yr "
                           f"(max_loss_share {params.max_loss_share:g}) but at most "
                           f"{_fmt(most[s])} can reach it")
        elif not reasons:
            reasons.append(
                f"max_loss_share {params.max_loss_share:g} forces sites to keep volumes that, "
                "together with the norms, cannot all be met")

    # bisections (bounded)
    deadline = time.perf_counter() + BISECTION_BUDGET_S
    coupled = _coupled(instance, params, tsel)
    margin = _smallest_feasible_margin(instance, params, coupled, deadline)
    if margin is not _SKIPPED:
        details["smallest_feasible_margin"] = margin
    if params.max_travel is not None:
        travel_fix = _smallest_feasible_max_travel(instance, params, coupled, deadline)
        if travel_fix is not _SKIPPED:
            details["smallest_feasible_max_travel"] = travel_fix

    if together:
        reasons.append(together)
    if not reasons:
        names = ", ".join(tlabel[tids[t]] for t in tsel)
        reasons.append(f"the norms, travel limits and other constraints of {names} cannot all "
                       "be met at once (no single site or area explains it)")
    sentence = "The scenario is infeasible: " + reasons[0] + "."
    hints = []
    m = details.get("smallest_feasible_margin")
    if isinstance(m, float) and m < _max_margin(instance, params, tsel) - 1e-12:
        hints.append(f"a margin of at most {m:.2f} would be feasible")
    mt = details.get("smallest_feasible_max_travel")
    if isinstance(mt, float):
        hints.append(f"a max travel of {mt:.0f} min would be feasible")
    if hints:
        sentence += " " + "; ".join(hints).capitalize() + "."
    details["reasons"] = reasons
    return {"reason": sentence, **details}


def _coupling(params: SolveParams) -> str:
    parts = []
    if params.max_loss_share is not None and params.max_loss_share < 1.0:
        parts.append(f"max_loss_share {params.max_loss_share:g}")
    if params.bundles:
        parts.append("bundles " + "; ".join("+".join(b) for b in params.bundles))
    return ", ".join(parts) or "none"


def _infeasible_alone(instance: Instance, params: SolveParams, tsel: list[int]
                      ) -> list[int] | None:
    """In a coupled model, the treatments infeasible on their own (without max_loss_share and
    bundles); ``None`` when the treatments were not coupled (nothing to separate)."""
    coupled = (params.max_loss_share is not None and params.max_loss_share < 1.0) or any(
        len(set(b) & set(instance.treatment_ids[t] for t in tsel)) > 1 for b in params.bundles)
    if len(tsel) < 2 or not coupled:
        return None
    free = params.model_copy(update={"max_loss_share": None, "bundles": []})
    return [t for t in tsel if is_feasible(instance, free, [t]) is False]


def _bundle_conflicts(instance: Instance, params: SolveParams, cand: np.ndarray,
                      fkeep: np.ndarray) -> list[str]:
    index = {tid: i for i, tid in enumerate(instance.treatment_ids)}
    notes = []
    for bundle in params.bundles:
        members = [index[t] for t in bundle if t in index]
        for s in range(len(instance.sites)):
            if fkeep[s, members].any() and not cand[s, members].all():
                missing = [instance.treatment_ids[t] for t in members if not cand[s, t]]
                notes.append(f"{instance.site_label(s)} is forced to keep part of bundle "
                             f"{'+'.join(bundle)} but may not provide {', '.join(missing)}")
    return notes


def _max_margin(instance: Instance, params: SolveParams, tsel: list[int]) -> float:
    return max([params.margin_for(instance.treatment_ids[t]) for t in tsel] or [params.margin])


class _Skipped:
    pass


_SKIPPED = _Skipped()


def _smallest_feasible_margin(instance: Instance, params: SolveParams, treatments: list[int],
                              deadline: float) -> float | None | _Skipped:
    """Largest margin <= the requested one that is feasible (down to 0.01), None if none is."""
    current = _max_margin(instance, params, treatments)
    if current <= 0:
        return None if _check(instance, params, treatments, deadline) is False else _SKIPPED

    def at(m: float) -> SolveParams:
        # one uniform margin for the bisection; per-treatment margins are capped by it
        by_t = {k: min(v, m) for k, v in params.margin_by_treatment.items()}
        return params.model_copy(update={"margin": m, "margin_by_treatment": by_t})

    ok0 = _check(instance, at(0.0), treatments, deadline)
    if ok0 is None:
        return _SKIPPED
    if ok0 is False:
        return None
    lo, hi = 0.0, current  # lo feasible, hi infeasible (the solve said so)
    while hi - lo > 0.01:
        mid = (lo + hi) / 2
        ok = _check(instance, at(mid), treatments, deadline)
        if ok is None:
            break
        if ok:
            lo = mid
        else:
            hi = mid
    return math.floor(lo * 100 + 1e-9) / 100


def _smallest_feasible_max_travel(instance: Instance, params: SolveParams,
                                  treatments: list[int], deadline: float
                                  ) -> float | None | _Skipped:
    """Smallest max_travel (whole minutes, rounded up) that is feasible; None if none is."""
    finite = instance.travel_min[np.isfinite(instance.travel_min)]
    if finite.size == 0:
        return None
    top = float(math.ceil(finite.max()))
    ok_top = _check(instance, params.model_copy(update={"max_travel": top}), treatments,
                    deadline)
    if ok_top is None:
        return _SKIPPED
    if ok_top is False:
        return None
    lo, hi = float(params.max_travel or 0.0), top  # lo infeasible, hi feasible
    while hi - lo > 1.0:
        mid = math.floor((lo + hi) / 2)
        if mid <= lo:
            break
        ok = _check(instance, params.model_copy(update={"max_travel": float(mid)}), treatments,
                    deadline)
        if ok is None:
            break
        if ok:
            hi = float(mid)
        else:
            lo = float(mid)
    return float(math.ceil(hi))


def _check(instance: Instance, params: SolveParams, treatments: list[int], deadline: float
           ) -> bool | None:
    remaining = deadline - time.perf_counter()
    if remaining <= 0.05:
        return None
    return is_feasible(instance, params, treatments, min(CHECK_TIME_LIMIT_S, remaining))
