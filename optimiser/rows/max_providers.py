"""``max_providers``: at most P hospitals of the region keep a treatment, Σ_s y[s, t] <= P.

The cap counts keep decisions, so it acts on treatments with a volume norm (a treatment
without a norm has no keep decision: its flows follow the objective, uncapped). ``'*'`` caps
every treatment; a treatment's own entry overrides it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from herschik.i18n import _

from ..params import SolveParams
from .base import Build, CheckContext, DiagnosisContext, Family, Finding, Reason
from .checking import PROVIDES_MIN, norm_at
from .keepsets import read_cardinality


def build_max_providers(b: Build) -> None:
    groups: list[np.ndarray] = []
    caps: list[float] = []
    for t in b.treatments:
        most = b.params.max_providers_for(b.instance.treatment_ids[t])
        cols = b.y_col[:, t][b.y_col[:, t] >= 0]
        if most is not None and cols.shape[0] > most:  # with <= P keep decisions: no row
            groups.append(cols)
            caps.append(float(most))
    b.rows_per_group("max_providers", groups, np.full(len(groups), -np.inf),
                     np.array(caps, dtype=float))


def check_max_providers(ctx: CheckContext) -> list[str]:
    """Sites with a norm that keep (or treat) a treatment, at most its cap."""
    caps = ctx.params.max_providers
    problems = []
    volume = ctx.volume
    for t, tid in enumerate(ctx.treatment_ids):
        most = caps.get(tid, caps.get("*"))
        if most is None:
            continue
        providers = [s for s in range(len(ctx.instance.sites))
                     if norm_at(ctx.instance, s, t) is not None
                     and (ctx.keep[s, t] or volume[s, t] > PROVIDES_MIN)]
        if len(providers) > most:
            names = ", ".join(ctx.site_labels[s] for s in providers)
            problems.append(f"{tid}: {len(providers)} hospitals keep it ({names}), more than "
                            f"max_providers {most}")
    return problems


def _capped(params: SolveParams, treatment_id: str, most: int) -> SolveParams:
    return params.model_copy(
        update={"max_providers": {**params.max_providers, treatment_id: most}})


def _smallest_feasible(ctx: DiagnosisContext, t: int, most: int, top: int) -> int | None:
    """Smallest cap in (most, top] that is feasible (``top`` is); ``None`` if undecided."""
    tid = ctx.instance.treatment_ids[t]
    lo, hi = most, top  # lo infeasible, hi feasible
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok = ctx.feasible(_capped(ctx.params, tid, mid), [t])
        if ok is None:
            return None
        lo, hi = (lo, mid) if ok else (mid, hi)
    return hi


def _cap_conflict(ctx: DiagnosisContext, t: int, most: int) -> dict[str, Any] | None:
    keeps = ctx.candidate[:, t] & ~np.isnan(ctx.required[:, t])
    forced = int((ctx.force_keep[:, t] & keeps).sum())
    if forced > most:
        return {"max_providers": most, "forced_keep": forced}
    top = int(keeps.sum())
    tid = ctx.instance.treatment_ids[t]
    if top <= most or ctx.feasible(_capped(ctx.params, tid, top), [t]) is not True:
        return None  # the cap does not bind, or the treatment is infeasible without it too
    return {"max_providers": most,
            "smallest_feasible_max_providers": _smallest_feasible(ctx, t, most, top)}


def reason_max_providers(ctx: DiagnosisContext) -> Finding | None:
    """A cap on providers under which the norms and travel limits cannot be met."""
    found = {}
    for t in ctx.treatments:
        most = ctx.params.max_providers_for(ctx.instance.treatment_ids[t])
        if most is not None and (info := _cap_conflict(ctx, t, most)) is not None:
            found[t] = info
    if not found:
        return None
    t, info = next(iter(found.items()))
    most = info["max_providers"]
    if "forced_keep" in info:
        sentence = _("{treatment}: {forced} hospitals are forced to keep it but max_providers "
                     "allows {most}", treatment=ctx.tlabel(t), forced=info["forced_keep"],
                     most=most)
    else:
        need = info["smallest_feasible_max_providers"]
        at_least = ("; " + _("{need} would be feasible", need=need)) if need is not None else ""
        sentence = _("{treatment}: with at most {most} hospital(s) keeping it (max_providers) "
                     "the norms and travel limits cannot be met{at_least}",
                     treatment=ctx.tlabel(t), most=most, at_least=at_least)
    tids = ctx.instance.treatment_ids
    return Finding(sentence, "max_providers_conflicts", {tids[t]: v for t, v in found.items()})


MAX_PROVIDERS = Family(
    "max_providers", "rows", ("max_providers",), build_max_providers, check_max_providers,
    (Reason(55, reason_max_providers),),
    doc="at most P hospitals keep a treatment with a norm", keep_sets=read_cardinality,
)
