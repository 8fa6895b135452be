"""Plain-words reasons why a scenario is infeasible, and what would make it feasible.

:func:`diagnose` runs the row families' reasons first (optimiser/rows, in rank order: array
arithmetic on the same candidate / reachability / capacity rules as the formulation, so they
cannot disagree with the model; the ``max_providers`` reason also re-solves without the cap)
and then, within a small time budget, bisections that re-solve the infeasible treatments only:

* ``smallest_feasible_margin``: the largest margin (<= the requested one, rounded *down* to 0.01)
  at which the scenario becomes feasible, i.e. the smallest cut in the margin that is needed;
  ``None`` if even margin 0 is infeasible;
* ``largest_feasible_confidence`` (instead of the margin, under ``norm_confidence``): the
  largest confidence (rounded *down* to 0.01) at which the scenario becomes feasible; ``None``
  if even 0.01 is infeasible;
* ``smallest_feasible_max_travel``: the smallest ``max_travel`` (rounded *up* to whole minutes)
  that is feasible, if a limit was set; ``None`` if even no limit is infeasible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from herschik.i18n import _, current_language, format_number

from .backends import solve_highs, solve_pulp
from .confidence import confidence_label
from .decomposition import treatment_components
from .feasibility import keep_set_feasible
from .formulation import (
    PairRule,
    build_arrays,
    candidate_matrix,
    capacity_matrix,
    force_masks,
    required_matrix,
)
from .instance import Instance
from .params import SolveParams
from .rows import reasons as family_reasons
from .rows.base import MAX_LISTED, DiagnosisContext
from .tolerances import CONFIDENCE_BISECTION_WIDTH, MARGIN_TOL, ROUNDING_TOL

#: wall-clock budget of the bisections (the structural checks are always done); the reasons
#: that re-solve (max_providers) have a budget of their own
BISECTION_BUDGET_S = 8.0
#: time limit of one feasibility check inside a bisection
CHECK_TIME_LIMIT_S = 2.0


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

    Decided by the keep-set test (optimiser/feasibility.py) where it covers the model, else by
    solving the formulation with a zero objective (pure feasibility, much faster than
    optimising).
    """
    arrays = build_arrays(instance, params.model_copy(update={"objective": "travel",
                                                              "objective_weights": None}),
                          treatments)
    decided = keep_set_feasible(arrays)
    if decided is not None:
        return decided
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


def _context(instance: Instance, params: SolveParams, tsel: list[int]) -> DiagnosisContext:
    """The model's shared rules for the reasons (the same functions the formulation uses)."""
    cand = candidate_matrix(instance, params)
    fkeep, fclose = force_masks(instance, params)
    deadline = time.perf_counter() + BISECTION_BUDGET_S
    return DiagnosisContext(
        instance=instance, params=params, treatments=tsel, candidate=cand,
        capacity=capacity_matrix(instance, params), required=required_matrix(instance, params),
        force_keep=fkeep, force_close=fclose,
        allowed=PairRule.of(instance, params, cand).allowed_all(),
        feasible=lambda variant, treatments: _check(instance, variant, treatments, deadline),
    )


def _bisections(instance: Instance, params: SolveParams, tsel: list[int],
                details: dict[str, Any]) -> None:
    """The nearest feasible margin / max_travel, within the bisection budget."""
    deadline = time.perf_counter() + BISECTION_BUDGET_S
    coupled = _coupled(instance, params, tsel)
    if params.norm_confidence is not None:
        confidence = _largest_feasible_confidence(instance, params, coupled, deadline)
        if confidence is not _SKIPPED:
            details["largest_feasible_confidence"] = confidence
    else:
        margin = _smallest_feasible_margin(instance, params, coupled, deadline)
        if margin is not _SKIPPED:
            details["smallest_feasible_margin"] = margin
    if params.max_travel is not None:
        travel_fix = _smallest_feasible_max_travel(instance, params, coupled, deadline)
        if travel_fix is not _SKIPPED:
            details["smallest_feasible_max_travel"] = travel_fix


def _sentence(instance: Instance, params: SolveParams, tsel: list[int],
              details: dict[str, Any], reasons: list[str]) -> str:
    sentence = _("The scenario is infeasible: {reason}.", reason=reasons[0])
    hints = []
    m = details.get("smallest_feasible_margin")
    if isinstance(m, float) and m < _max_margin(instance, params, tsel) - MARGIN_TOL:
        margin = format(m, ".2f") if current_language() == "en" else format_number(m, 2)
        hints.append(_("a margin of at most {margin} would be feasible", margin=margin))
    c = details.get("largest_feasible_confidence")
    if isinstance(c, float):
        hints.append(_("a norm confidence of at most {confidence} would be feasible",
                       confidence=confidence_label(c)))
    mt = details.get("smallest_feasible_max_travel")
    if isinstance(mt, float):
        hints.append(_("a max travel of {minutes} min would be feasible",
                       minutes=format(mt, ".0f")))
    if hints:
        sentence += " " + "; ".join(hints).capitalize() + "."
    return sentence


def diagnose(instance: Instance, params: SolveParams,
             infeasible_treatments: list[str] | list[int] | None = None) -> dict[str, Any]:
    """Why is the scenario infeasible? ``{"reason": one sentence, ...structured details}``.

    ``infeasible_treatments`` are the ids (or indices) of the treatments whose sub-problems were
    infeasible; ``None`` checks all. The reasons are the row families' (optimiser.rows), in
    their rank order. Never raises on ordinary data.
    """
    tsel = _indices(instance, infeasible_treatments)
    tids = instance.treatment_ids
    coupled_all = list(tsel)
    alone = _infeasible_alone(instance, params, tsel)
    # a coupled model (max_loss_share, bundles) failed as a whole: name only the treatments
    # that are infeasible on their own; if none is, the coupling itself is the reason
    if alone:
        tsel = alone
    together = ""
    if alone is not None and not alone:
        names = ", ".join(instance.treatment_label(t) for t in coupled_all[:MAX_LISTED])
        together = _("every treatment is feasible on its own, but the constraints that couple "
                     "them ({coupling}) cannot be met together for {names}",
                     coupling=_coupling(params), names=names)
    details: dict[str, Any] = {"infeasible_treatments": [tids[t] for t in tsel]}
    if alone is not None:
        details["coupled_treatments"] = [tids[t] for t in coupled_all]
        details["infeasible_only_together"] = not alone

    ctx = _context(instance, params, tsel)
    for reason in family_reasons():
        finding = reason.find(ctx)
        if finding is None:
            continue
        if finding.key is not None:
            details[finding.key] = finding.details
        ctx.reasons.append(finding.sentence)
    reasons = ctx.reasons

    _bisections(instance, params, tsel, details)
    if together:
        reasons.append(together)
    if not reasons:
        names = ", ".join(instance.treatment_label(t) for t in tsel)
        reasons.append(_("the norms, travel limits and other constraints of {names} cannot "
                         "all be met at once (no single site or area explains it)", names=names))
    sentence = _sentence(instance, params, tsel, details, reasons)
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

    return _largest_feasible(instance, at, 0.0, current, 0.01, treatments, deadline)


def _largest_feasible(instance: Instance, at: Callable[[float], SolveParams], floor: float,
                      current: float, width: float, treatments: list[int], deadline: float
                      ) -> float | None | _Skipped:
    """Bisection for the largest value in [floor, current) whose parameters ``at(value)`` are
    feasible (``current`` is not: the solve said so), rounded down to 0.01; None if ``floor``
    is infeasible too, skipped when a probe runs out of time before ``floor`` is decided."""
    ok0 = _check(instance, at(floor), treatments, deadline)
    if ok0 is None:
        return _SKIPPED
    if ok0 is False:
        return None
    lo, hi = floor, current  # lo feasible, hi infeasible
    while hi - lo > width:
        mid = (lo + hi) / 2
        ok = _check(instance, at(mid), treatments, deadline)
        if ok is None:
            break
        if ok:
            lo = mid
        else:
            hi = mid
    return math.floor(lo * 100 + ROUNDING_TOL) / 100


def _largest_feasible_confidence(instance: Instance, params: SolveParams,
                                 treatments: list[int], deadline: float
                                 ) -> float | None | _Skipped:
    """Largest norm confidence (down to 0.01, rounded down) below the requested one that is
    feasible; None if even 0.01 is not (the norm itself is then out of reach)."""
    current = float(params.norm_confidence or 0.0)

    def at(c: float) -> SolveParams:
        return params.model_copy(update={"norm_confidence": c})

    floor = 0.01
    if current <= floor:
        return None if _check(instance, params, treatments, deadline) is False else _SKIPPED
    return _largest_feasible(instance, at, floor, current, CONFIDENCE_BISECTION_WIDTH,
                             treatments, deadline)


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
