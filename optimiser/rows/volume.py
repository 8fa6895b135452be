"""The volume norm: ``min_volume``, the keep/flow links and the small-region rule.

* ``min_volume``: (1 + m)·N·y <= Σ_a flow, one row per keep decision.
* ``link``: Σ_a flow <= U·y with U = min(capacity, reachable demand) (linking ``aggregated`` and
  the default ``nearest``); ``link_pair``: flow <= d·y per pair, for each area's nearest site
  (``nearest``) or every flow (``per_pair``, which then leaves capacities to ``capacity``).
  All three give the same optimum (docs/decisions/linking.md).
* ``one_provider``: a treatment whose whole demand is below the lowest norm keeps at most one
  provider, with the norm waived (``small_region_rule = "one_provider"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from herschik.i18n import _, current_language, format_number

from ..confidence import confidence_label
from ..tolerances import KEEP_SET_TOL
from .base import (
    MAX_LISTED,
    Build,
    CheckContext,
    DiagnosisContext,
    Family,
    Finding,
    Reason,
    fmt,
)
from .checking import PROVIDES_MIN, TOL, norm_at, poisson_meet_probability
from .keepsets import (
    KeepSetModel,
    diagonal_of,
    links_slack,
    read_cardinality,
    single_entries,
)


# --- builders ---------------------------------------------------------------------------------
def _volume_rows(b: Build) -> tuple[np.ndarray, np.ndarray]:
    """(row of each keep decision's volume sum by (s, t), x columns that have a keep decision)."""
    v_row = np.full(b.candidate.shape, -1, dtype=np.int64)
    v_row[b.y_site, b.y_treat] = np.arange(b.n_y)
    xi = np.nonzero(b.y_col[b.x_site, b.x_treat] >= 0)[0]
    return v_row, xi


def build_min_volume(b: Build) -> None:
    """Σ_a flow - req·y >= 0, one row per y."""
    v_row, xi = _volume_rows(b)
    y_cols = b.y_col[b.y_site, b.y_treat]
    b.add_rows(
        "min_volume",
        np.concatenate([v_row[b.x_site[xi], b.x_treat[xi]], np.arange(b.n_y)]),
        np.concatenate([xi, y_cols]),
        np.concatenate([b.x_scale[xi], -b.required[b.y_site, b.y_treat]]),
        np.zeros(b.n_y), np.full(b.n_y, np.inf),
    )


def build_link(b: Build) -> None:
    """Σ_a flow - U·y <= 0 (not under per-pair linking)."""
    if b.linking not in ("aggregated", "nearest"):
        return
    reach = np.zeros(b.candidate.shape)
    np.add.at(reach, (b.x_site, b.x_treat), b.x_d)
    big_u = np.minimum(b.capacity[b.y_site, b.y_treat], reach[b.y_site, b.y_treat])
    v_row, xi = _volume_rows(b)
    b.add_rows(
        "link",
        np.concatenate([v_row[b.x_site[xi], b.x_treat[xi]], np.arange(b.n_y)]),
        np.concatenate([xi, b.y_col[b.y_site, b.y_treat]]),
        np.concatenate([b.x_scale[xi], -big_u]),
        np.full(b.n_y, -np.inf), np.zeros(b.n_y),
    )


def nearest_flow_columns(area: np.ndarray, treat: np.ndarray, minutes: np.ndarray
                         ) -> np.ndarray:
    """Positions of the shortest-travel column of every (area, treatment) group.

    Ties go to the first column (columns are in site order), so the choice is deterministic.
    """
    if area.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    fast = _nearest_in_sorted_groups(area, treat, minutes)
    if fast is not None:
        return fast
    order = np.lexsort((np.arange(area.shape[0]), minutes, area, treat))
    key_a, key_t = area[order], treat[order]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = (key_a[1:] != key_a[:-1]) | (key_t[1:] != key_t[:-1])
    return np.sort(order[first])


def _nearest_in_sorted_groups(area: np.ndarray, treat: np.ndarray, minutes: np.ndarray
                              ) -> np.ndarray | None:
    """:func:`nearest_flow_columns` without a sort when the columns are already grouped by
    (treatment, area) in that order (as the flow columns are built): each group's first
    column at its least travel time. None for any other input (NaN minutes included)."""
    new_group = np.ones(area.shape[0], dtype=bool)
    new_group[1:] = (treat[1:] != treat[:-1]) | (area[1:] != area[:-1])
    ordered = (treat[1:] > treat[:-1]) | ((treat[1:] == treat[:-1]) & (area[1:] >= area[:-1]))
    if not np.all(ordered) or np.isnan(minutes).any():
        return None
    starts = np.flatnonzero(new_group)
    group = np.cumsum(new_group) - 1
    least = np.flatnonzero(minutes == np.minimum.reduceat(minutes, starts)[group])
    first = np.ones(least.shape[0], dtype=bool)
    first[1:] = group[least][1:] != group[least][:-1]
    return least[first]


def build_link_pair(b: Build) -> None:
    """flow - d·y <= 0 per pair: every flow with a keep decision (per_pair), or each area's
    nearest one (nearest: valid once y is integer; it cuts off the LP point that keeps every
    area at its nearest site with a tiny fractional y there), or none (aggregated)."""
    _, xi = _volume_rows(b)
    if b.linking == "per_pair":
        pair_x = xi
    elif b.linking == "nearest":
        minutes = b.instance.travel_min[b.x_area[xi], b.x_site[xi]]
        pair_x = xi[nearest_flow_columns(b.x_area[xi], b.x_treat[xi], minutes)]
    else:
        pair_x = xi[np.zeros(0, dtype=np.int64)]
    k = pair_x.shape[0]
    b.add_rows(
        "link_pair",
        np.concatenate([np.arange(k), np.arange(k)]),
        np.concatenate([pair_x, b.y_col[b.x_site[pair_x], b.x_treat[pair_x]]]),
        np.concatenate([b.x_scale[pair_x], -b.x_d[pair_x]]),
        np.full(k, -np.inf), np.zeros(k),
    )


def build_one_provider(b: Build) -> None:
    """Waived norms (whole demand below the norm): at most one provider, Σ_s y[s, t] <= 1."""
    groups = [b.y_col[:, t][b.y_col[:, t] >= 0] for t in b.waived]
    b.rows_per_group("one_provider", groups, np.full(len(groups), -np.inf),
                     np.ones(len(groups)))


# --- checks (independent of the builders) -----------------------------------------------------
def _checked_required(ctx: CheckContext) -> tuple[np.ndarray, list[int]]:
    """norm x (1 + margin) per (site, treatment), nan without a norm; 0 where the small-region
    rule waives it. Under norm_confidence the norm itself (the floor; the odds are checked by
    :func:`_confidence_problems`). Returns the matrix and the waived treatments."""
    instance, params = ctx.instance, ctx.params
    n_sites, n_treat = len(instance.sites), len(instance.treatments)
    norms = np.full((n_sites, n_treat), np.nan)
    for t in range(n_treat):
        for s in range(n_sites):
            norm = norm_at(instance, s, t)
            if norm is not None:
                norms[s, t] = norm
    required = norms.copy()
    if params.norm_confidence is None:
        for t, treatment in enumerate(instance.treatments):
            margin = params.margin_by_treatment.get(treatment.id, params.margin)
            with np.errstate(over="ignore"):  # an overflow is reported as a violation
                required[:, t] = norms[:, t] * (1.0 + float(margin))
    waived = []
    if params.small_region_rule == "one_provider":
        # a treatment whose whole demand is below every site's norm cannot meet it anywhere:
        # the rule allows one provider below the norm instead of declaring infeasibility
        for t in range(n_treat):
            if np.all(np.isnan(norms[:, t])):
                continue
            lowest = np.nanmin(norms[:, t])
            total = instance.demand[:, t].sum()
            if np.isfinite(lowest) and 0 < total < lowest:
                required[:, t] = np.where(np.isnan(required[:, t]), np.nan, 0.0)
                waived.append(t)
    return required, waived


def _confidence_problems(ctx: CheckContext, required: np.ndarray, waived: list[int]
                         ) -> list[str]:
    """Under norm_confidence: every kept pair with a norm meets it over the period with at
    least that probability (scipy.stats.poisson, recomputed here; the volume gets the check
    tolerance, as the plain norm check does)."""
    confidence, years = ctx.params.norm_confidence, ctx.params.norm_period_years
    if confidence is None:
        return []
    volume = ctx.volume
    problems = []
    for s, t in zip(*np.nonzero(ctx.keep & ~np.isnan(required)), strict=True):
        if t in waived:
            continue
        norm = norm_at(ctx.instance, int(s), int(t))
        assert norm is not None  # required is nan without a norm
        lenient = volume[s, t] + TOL * max(1.0, volume[s, t])
        odds = poisson_meet_probability(lenient, norm, years)
        if not odds >= confidence:  # also catches nan
            problems.append(f"site {ctx.site_labels[s]}, {ctx.treatment_ids[t]}: kept with "
                            f"{volume[s, t]:.4f} expected patients, which meet the norm "
                            f"{norm:g} over {years} year(s) with probability {odds:.4f}, "
                            f"below the confidence {confidence:g}")
    return problems


def check_min_volume(ctx: CheckContext) -> list[str]:
    """Every kept pair with a norm treats at least the required volume (under norm_confidence:
    at least the norm, and meets it with that confidence)."""
    required, waived = _checked_required(ctx)
    volume = ctx.volume
    problems = []
    for s, t in zip(*np.nonzero(ctx.keep & ~np.isnan(required)), strict=True):
        if not np.isfinite(required[s, t]):  # every comparison with it would be false
            problems.append(f"site {ctx.site_labels[s]}, {ctx.treatment_ids[t]}: required "
                            f"volume {required[s, t]} is not finite")
            continue
        # relative: HiGHS meets the volume rows to ~1e-7 relative over many flows
        if volume[s, t] < required[s, t] - TOL * max(1.0, required[s, t]):
            problems.append(f"site {ctx.site_labels[s]}, {ctx.treatment_ids[t]}: kept with "
                            f"{volume[s, t]:.4f} patients, below the required "
                            f"{required[s, t]:.4f}")
    return problems + _confidence_problems(ctx, required, waived)


def check_link(ctx: CheckContext) -> list[str]:
    """Only kept pairs treat patients; without a norm, kept means treating patients."""
    required, _ = _checked_required(ctx)
    volume = ctx.volume
    problems = []
    n_sites, n_treat = ctx.keep.shape
    for s in range(n_sites):
        for t in range(n_treat):
            name = f"site {ctx.site_labels[s]}, {ctx.treatment_ids[t]}"
            if np.isnan(required[s, t]):
                if bool(ctx.keep[s, t]) != bool(volume[s, t] > PROVIDES_MIN):
                    problems.append(f"{name}: keep={bool(ctx.keep[s, t])} but volume "
                                    f"{volume[s, t]:.4f}")
            elif not ctx.keep[s, t] and volume[s, t] > TOL:
                problems.append(f"{name}: not kept but treats {volume[s, t]:.4f} patients")
    return problems


def check_one_provider(ctx: CheckContext) -> list[str]:
    _, waived = _checked_required(ctx)
    problems = []
    for t in waived:
        kept = int(np.count_nonzero(ctx.keep[:, t]))
        if kept > 1:
            problems.append(f"{ctx.treatment_ids[t]}: demand below every norm, but {kept} "
                            "providers are kept (at most 1)")
    return problems


# --- how the keep-set algorithms read the rows (rows/keepsets.py) -----------------------------
def read_min_volume(model: KeepSetModel, start: int, stop: int) -> bool:
    """One row per keep decision: its flows (coefficient 1) minus its required volume · y."""
    arrays = model.arrays
    if (stop - start != arrays.n_y or np.any(arrays.row_lower[start:stop] != 0.0)
            or np.any(arrays.row_upper[start:stop] != np.inf)):
        return False
    row, col, val = model.entries(start, stop)
    x_y = single_entries(row, col, arrays.x_start, arrays.n_x)
    in_x = (col >= arrays.x_start) & (col < arrays.x_start + arrays.n_x)
    if x_y is None or np.any(val[in_x] != 1.0):
        return False
    diagonal, only_diagonal = diagonal_of(row, col, val, arrays.y_start, arrays.n_y)
    if not only_diagonal or np.any(col >= arrays.stay_start):
        return False
    model.x_y, model.required = x_y, -diagonal
    return True


def read_link(model: KeepSetModel, start: int, stop: int) -> bool:
    """Σ flow <= U·y only closes a site (U at least all it can receive)."""
    if stop == start:
        return True
    if (not model.bounds_are(start, stop, -np.inf, 0.0) or stop - start != model.arrays.n_y
            or model.x_y is None):
        return False
    row, col, val = model.entries(start, stop)
    diagonal, _ = diagonal_of(row, col, val, model.arrays.y_start, model.arrays.n_y)
    return links_slack(model, -diagonal)


def read_link_pair(model: KeepSetModel, start: int, stop: int) -> bool:
    """flow <= D·y with D at least the flow's demand and y its site's: no more than "a closed
    site gets nothing"."""
    arrays = model.arrays
    if not model.bounds_are(start, stop, -np.inf, 0.0):
        return False
    if stop == start:
        return True
    if model.x_y is None:
        return False
    pair = model.csr[start:stop]
    if np.any(np.diff(pair.indptr) != 2):
        return False
    # two entries per row (as arrays, not a Python loop over the rows: ~1 ms a model)
    cols, values = pair.indices.reshape(-1, 2), pair.data.reshape(-1, 2)
    if np.any(cols[:, 0] == cols[:, 1]):
        return False
    x_first = cols[:, 0] < cols[:, 1]
    x_col, y_col = cols.min(axis=1), cols.max(axis=1)
    if np.any(x_col >= arrays.n_x) or np.any(model.x_y[x_col] != y_col - arrays.y_start):
        return False
    x_value = np.where(x_first, values[:, 0], values[:, 1])
    y_value = np.where(x_first, values[:, 1], values[:, 0])
    if np.any(x_value != 1.0):
        return False
    return not np.any(-y_value < model.x_demand[x_col] * (1.0 - KEEP_SET_TOL))


# --- diagnosis reasons ------------------------------------------------------------------------
def _no_site_reaches(ctx: DiagnosisContext, t: int) -> dict[str, Any] | None:
    normed = ~np.isnan(ctx.required[:, t])
    has_demand = ctx.instance.demand[:, t] > 0
    if not (normed.any() and has_demand.any() and not ctx.viable[:, t].any()):
        return None
    cs = np.nonzero(ctx.candidate[:, t])[0]
    if not cs.size:
        return {"required": None, "largest_reachable_volume": 0.0, "site_id": None}
    best = cs[np.argmax(ctx.usable[cs, t])]
    return {"required": round(float(np.nanmax(ctx.required[cs, t])), 3),
            "largest_reachable_volume": round(float(ctx.usable[best, t]), 3),
            "site_id": ctx.instance.site_ids[best]}


def _confidence_needs(ctx: DiagnosisContext, t: int) -> str:
    """"at 90 % confidence a norm of 50 needs >= 59.3 expected patients per hospital" (each
    distinct norm of the treatment's candidates: tier norms differ by site)."""
    norms = ctx.instance.norm_matrix()[:, t]
    pairs = sorted({(float(norms[s]), float(ctx.required[s, t]))
                    for s in np.nonzero(ctx.candidate[:, t] & ~np.isnan(norms))[0]})
    years = ctx.params.norm_period_years
    needs = "; ".join(_("a norm of {norm} needs ≥ {required} expected patients per hospital",
                        norm=fmt(n), required=fmt_one(r)) for n, r in pairs)
    confidence = confidence_label(float(ctx.params.norm_confidence or 0))
    if years > 1:
        return _("at {confidence} confidence over {years} years {needs}",
                 confidence=confidence, years=years, needs=needs)
    return _("at {confidence} confidence {needs}", confidence=confidence, needs=needs)


def fmt_one(x: float) -> str:
    """A number with one decimal in the language's format (English as it was)."""
    return f"{x:.1f}" if current_language() == "en" else format_number(x, 1)


def reason_no_site_reaches_norm(ctx: DiagnosisContext) -> Finding | None:
    """A norm that no candidate site can reach with the demand in its reach."""
    found = {t: info for t in ctx.treatments if (info := _no_site_reaches(ctx, t)) is not None}
    if not found:
        return None
    t, info = next(iter(found.items()))
    if info["site_id"] is not None and ctx.params.norm_confidence is not None:
        s = ctx.instance.site_ids.index(info["site_id"])
        sentence = _("{treatment}: {needs}; the region has {total} in all and the largest "
                     "reachable demand is {largest} at {site}", treatment=ctx.tlabel(t),
                     needs=_confidence_needs(ctx, t),
                     total=fmt(float(ctx.instance.demand[:, t].sum())),
                     largest=fmt(info["largest_reachable_volume"]), site=ctx.slabel(s))
    elif info["site_id"] is not None:
        s = ctx.instance.site_ids.index(info["site_id"])
        sentence = _("{treatment}: required {required}/yr at every site but the largest "
                     "reachable demand is {largest} at {site}", treatment=ctx.tlabel(t),
                     required=fmt(info["required"]),
                     largest=fmt(info["largest_reachable_volume"]), site=ctx.slabel(s))
    else:
        sentence = _("{treatment}: no site may provide it (all candidates closed)",
                     treatment=ctx.tlabel(t))
    tids = ctx.instance.treatment_ids
    return Finding(sentence, "no_site_reaches_norm", {tids[t]: v for t, v in found.items()})


def _areas_without_viable(ctx: DiagnosisContext, t: int) -> dict[str, Any] | None:
    has_demand = ctx.instance.demand[:, t] > 0
    if not has_demand.any() or _no_site_reaches(ctx, t) is not None:
        return None
    reaches_viable = (ctx.allowed[:, :, t] & ctx.viable[None, :, t]).any(axis=1)
    bad = has_demand & ~ctx.no_site[:, t] & ~reaches_viable
    if not bad.any():
        return None
    return {"n_areas": int(bad.sum()),
            "patients": round(float(ctx.instance.demand[bad, t].sum()), 3),
            "areas": [ctx.instance.area_ids[a] for a in np.nonzero(bad)[0][:MAX_LISTED]]}


def reason_areas_without_viable_site(ctx: DiagnosisContext) -> Finding | None:
    """Areas that reach candidates, none of which can reach its norm."""
    found = {t: info for t in ctx.treatments
             if (info := _areas_without_viable(ctx, t)) is not None}
    if not found:
        return None
    t, info = next(iter(found.items()))
    a = ctx.instance.area_ids.index(info["areas"][0])
    tids = ctx.instance.treatment_ids
    return Finding(_("{treatment}: {count} area(s) can only reach sites that cannot reach "
                     "the required volume (e.g. {area})", treatment=ctx.tlabel(t),
                     count=info["n_areas"], area=ctx.instance.area_label(a)),
                   "areas_without_viable_site", {tids[t]: v for t, v in found.items()})


MIN_VOLUME = Family(
    "min_volume", "rows", ("margin", "margin_by_treatment", "norm_confidence", "norm_period_years"),
    build_min_volume, check_min_volume,
    (Reason(20, reason_no_site_reaches_norm), Reason(40, reason_areas_without_viable_site)),
    doc="a kept pair treats at least norm x (1 + margin), or under norm_confidence the "
    "expected volume meeting the norm with that probability", keep_sets=read_min_volume,
)
LINK = Family("link", "rows", (), build_link, check_link,
              doc="only kept pairs treat patients: Σ_a flow <= U·y", keep_sets=read_link)
LINK_PAIR = Family("link_pair", "rows", (), build_link_pair, None, checked_by="link",
                   doc="flow <= d·y per pair (nearest site, or every flow under per_pair)",
                   keep_sets=read_link_pair)
ONE_PROVIDER = Family(
    "one_provider", "rows", ("small_region_rule",), build_one_provider, check_one_provider,
    doc="a treatment whose whole demand is below every norm keeps at most one provider",
    keep_sets=read_cardinality,
)
