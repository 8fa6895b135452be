"""The reallocation MIP, written once, emitted as sparse arrays.

This module is the single source of truth of the model. :func:`build_arrays` turns an
:class:`~optimiser.instance.Instance`, a :class:`~optimiser.params.SolveParams` and a subset of
treatments into a :class:`MipArrays` (``min c.x + offset`` s.t. ``row_lower <= A x <= row_upper``,
``col_lower <= x <= col_upper``, some columns integer). :mod:`optimiser.backends` hands the same
arrays to highspy (``passModel`` with CSC arrays) or to PuLP/CBC, so there are never two
hand-written models that could drift apart.

Variables (one block per family, in this order):

* ``x``  flow of area ``a`` to site ``s`` for treatment ``t``. Only created for pairs with
  demand > 0, ``s`` a candidate for ``t`` and within ``max_travel`` / ``max_extra_travel``
  (sparse). Continuous in ``[0, d[a,t]]``, patients per year. With ``single_sourcing`` the column
  is a binary *share* ``z`` and the flow is ``d[a,t] * z`` (``flow_scale`` holds ``d`` then).
* ``y``  binary keep of site ``s`` for a treatment ``t`` that has a volume norm.
* ``stay`` patients of ``a`` that stay at their baseline site ``s`` (``moved`` objective only):
  ``0 <= stay <= baseline_flow``, ``stay <= flow``.

Rows: ``demand`` (every patient is treated), ``min_volume`` ((1+m)·N·y <= Σx), ``link``
(Σx <= U·y, U = min(capacity, reachable demand)), ``link_pair`` (x <= d·y for some or all
flows, see below), ``capacity`` (treatments without a norm),
``bundle`` (y equal across a bundle), ``loss_share`` (max_loss_share), ``stay`` and
``providers_floor`` (phase 2 of the lexicographic ``providers`` objective).

Linking (measured: docs/decisions/linking.md): the default ``nearest`` is the
aggregated per-site row Σ_a x <= U·y plus the per-pair row x[a,s,t] <= d[a,t]·y[s,t] for each
area's nearest candidate site only (one row per area and treatment); ``aggregated`` drops
those rows, ``per_pair`` has them for every flow (~14x more rows). All three give the same
optimum (tested) and carry the aggregated min-volume row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .instance import Instance
from .params import ObjectiveName, SolveParams

LINKINGS = ("nearest", "aggregated", "per_pair")

ROW_FAMILIES = (
    "demand",
    "min_volume",
    "link",
    "link_pair",
    "capacity",
    "bundle",
    "loss_share",
    "stay",
    "providers_floor",
)

#: Weight of the travel tie-break in the ``moved`` objective, per patient-minute, relative to one
#: moved patient. It is scaled by 1 / (total demand x max travel) so that the whole tie-break term
#: is below TIE_BREAK_TOTAL patients: it only picks the shortest travel among (near-)optimal
#: reallocations and cannot change the number of moved patients by more than that.
TIE_BREAK_TOTAL = 1e-4


@dataclass
class MipArrays:
    """A MIP in array form: ``min c @ v + offset`` s.t. rows and bounds; decode maps included."""

    c: np.ndarray
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray  # 0 continuous, 1 integer (binaries have bounds [0, 1])
    offset: float
    treatments: tuple[int, ...]  # global treatment indices of this model
    # x block: columns [x_start, x_start + n_x)
    x_start: int
    x_area: np.ndarray
    x_site: np.ndarray
    x_treat: np.ndarray
    x_scale: np.ndarray  # flow = x_scale * column value (d for single sourcing, else 1)
    # y block
    y_start: int
    y_site: np.ndarray
    y_treat: np.ndarray
    # stay block (moved objective only)
    stay_start: int
    stay_area: np.ndarray
    stay_site: np.ndarray
    stay_treat: np.ndarray
    #: (start, stop) row range per family in ROW_FAMILIES
    row_families: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: candidate[s, t] for the treatments of this model (all treatments' shape, False elsewhere)
    candidate: np.ndarray | None = None
    linking: str = "nearest"
    #: structural contradictions found while building (e.g. a pair forced both open and closed);
    #: a model with conflicts is infeasible and the back-ends report so without solving
    conflicts: list[str] = field(default_factory=list)
    #: the planner objective's unnecessary moves as ``moves_c @ v + moves_offset`` (patients);
    #: ``None`` when the model has no stay columns
    moves_c: np.ndarray | None = None
    moves_offset: float = 0.0
    #: per stay column: its x column, and the y column its baseline flow counts on in the
    #: unnecessary moves (-1: counted always, a self-sufficient site or one without a norm)
    stay_x: np.ndarray | None = None
    stay_y: np.ndarray | None = None

    @property
    def n_cols(self) -> int:
        return int(self.c.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.A.shape[0])

    @property
    def n_x(self) -> int:
        return int(self.x_area.shape[0])

    @property
    def n_y(self) -> int:
        return int(self.y_site.shape[0])

    def x_slice(self) -> slice:
        return slice(self.x_start, self.x_start + self.n_x)

    def y_slice(self) -> slice:
        return slice(self.y_start, self.y_start + self.n_y)

    def flows(self, values: np.ndarray) -> np.ndarray:
        """Flow (patients) of every x column from a column-value vector."""
        return self.x_scale * np.asarray(values)[self.x_slice()]

    def with_objective(self, c: np.ndarray, offset: float = 0.0) -> MipArrays:
        """A copy with another objective (same rows, bounds and decode maps)."""
        out = MipArrays(**{**self.__dict__})
        out.c = np.asarray(c, dtype=float)
        out.offset = float(offset)
        return out

    def with_extra_row(
        self, coefs: np.ndarray, lower: float, upper: float, family: str
    ) -> MipArrays:
        """A copy with one more dense-in-columns row appended (e.g. the providers floor)."""
        out = MipArrays(**{**self.__dict__})
        row = sp.csr_matrix(np.asarray(coefs, dtype=float).reshape(1, -1))
        out.A = sp.vstack([self.A, row], format="csr")
        out.row_lower = np.append(self.row_lower, lower)
        out.row_upper = np.append(self.row_upper, upper)
        out.row_families = dict(self.row_families)
        out.row_families[family] = (self.n_rows, self.n_rows + 1)
        return out


# --- helpers shared by solve/diagnose ---------------------------------------------------------
def _pair_mask(params_items: list, site_index: dict[str, int], treat_index: dict[str, int],
               shape: tuple[int, int]) -> np.ndarray:
    """Boolean (S, T) mask of SiteTreatment-like items ("*" = every treatment). Unknown ids skip."""
    mask = np.zeros(shape, dtype=bool)
    for item in params_items:
        s = site_index.get(item.site_id)
        if s is None:
            continue
        if item.intervention_id == "*":
            mask[s, :] = True
        elif item.intervention_id in treat_index:
            mask[s, treat_index[item.intervention_id]] = True
    return mask


def force_masks(instance: Instance, params: SolveParams) -> tuple[np.ndarray, np.ndarray]:
    """(force_keep, force_close) as (S, T) boolean masks."""
    site_index = {sid: i for i, sid in enumerate(instance.site_ids)}
    treat_index = {tid: i for i, tid in enumerate(instance.treatment_ids)}
    shape = (len(instance.sites), len(instance.treatments))
    keep = _pair_mask(params.force_keep, site_index, treat_index, shape)
    close = _pair_mask(params.force_close, site_index, treat_index, shape)
    return keep, close


def candidate_matrix(instance: Instance, params: SolveParams) -> np.ndarray:
    """candidate[s, t]: may site s provide treatment t after reallocation.

    Baseline providers (or every site with ``allow_new_providers``), plus forced keeps (forcing
    implies allowing), minus forced closures. A pair both forced open and closed stays closed;
    the forced keep then makes the model infeasible, which the diagnosis reports.
    """
    keep, close = force_masks(instance, params)
    if params.allow_new_providers:
        cand = np.ones_like(keep)
    else:
        cand = instance.baseline_volume > 0
    cand = (cand | keep) & ~close
    return cand


def capacity_matrix(instance: Instance, params: SolveParams) -> np.ndarray:
    """cap[s, t] patients per year (``inf`` where uncapped): min of factor x baseline and caps."""
    n_sites, n_treat = len(instance.sites), len(instance.treatments)
    cap = np.full((n_sites, n_treat), np.inf)
    if params.capacity_factor is not None:
        cap = np.minimum(cap, params.capacity_factor * instance.baseline_volume)
    site_index = {sid: i for i, sid in enumerate(instance.site_ids)}
    treat_index = {tid: i for i, tid in enumerate(instance.treatment_ids)}
    for item in params.capacity:
        s = site_index.get(item.site_id)
        if s is None:
            continue
        if item.intervention_id == "*":
            cap[s, :] = np.minimum(cap[s, :], item.max_patients)
        elif item.intervention_id in treat_index:
            t = treat_index[item.intervention_id]
            cap[s, t] = min(cap[s, t], item.max_patients)
    return cap


def required_matrix(instance: Instance, params: SolveParams) -> np.ndarray:
    """required[s, t] = norm x (1 + margin_t); ``nan`` where the treatment has no norm."""
    norms = instance.norm_matrix()
    margins = np.array([params.margin_for(tid) for tid in instance.treatment_ids])
    return norms * (1.0 + margins)[None, :]


def travel_limit(instance: Instance, params: SolveParams) -> np.ndarray | None:
    """Travel limit in minutes per (area, treatment), or ``None`` without ``max_travel``.

    Under ``remote_areas = "nearest_provider"`` an area whose nearest current provider of a
    treatment is already further than ``max_travel`` may travel as far as that provider: the
    limit then protects patients from longer trips without making islands infeasible.
    """
    if params.max_travel is None:
        return None
    n_areas, _, n_treat = instance.shape
    limit = np.full((n_areas, n_treat), float(params.max_travel))
    if params.remote_areas == "nearest_provider":
        for t in range(n_treat):
            providers = instance.baseline_volume[:, t] > 0
            if providers.any():
                nearest = instance.travel_min[:, providers].min(axis=1)
                finite = np.isfinite(nearest)
                limit[finite, t] = np.maximum(limit[finite, t], nearest[finite])
    return limit


def shortfall_treatments(instance: Instance) -> list[int]:
    """Treatments whose whole demand is below the lowest norm of any site (margin 0).

    No hospital of the instance can reach such a norm, whatever the reallocation (e.g. a region
    whose single provider is below the norm while all its patients already go there). Under
    ``small_region_rule = "one_provider"`` they are concentrated at one site with the norm
    waived, and flagged; under ``"fail"`` the scenario is infeasible.
    """
    norms = instance.norm_matrix()
    out = []
    for t in range(len(instance.treatments)):
        column = norms[:, t]
        total = float(instance.demand[:, t].sum())
        if total > 0 and np.any(~np.isnan(column)) and total < np.nanmin(column):
            out.append(t)
    return out


def reachable_matrix(instance: Instance, params: SolveParams, cand: np.ndarray | None = None
                     ) -> np.ndarray:
    """reach[a, s, t]-free summary: allowed (a, s) pairs per treatment as a boolean (A, S, T).

    A pair is allowed when the area has demand, the site is a candidate and the travel limits
    hold. Used by the formulation and by the diagnosis (same rule, one place).
    """
    if cand is None:
        cand = candidate_matrix(instance, params)
    travel = instance.travel_min
    ok_as = np.isfinite(travel)
    allowed = ok_as[:, :, None] & cand[None, :, :] & (instance.demand > 0)[:, None, :]
    limit = travel_limit(instance, params)
    if limit is not None:
        allowed &= travel[:, :, None] <= limit[:, None, :] + 1e-9
    if params.max_extra_travel is not None:
        base = instance.baseline_travel()  # (A, T), nan = no baseline patients
        with np.errstate(invalid="ignore"):
            extra = travel[:, :, None] - base[:, None, :]
        extra_ok = np.isnan(extra) | (extra <= params.max_extra_travel + 1e-9)
        allowed &= extra_ok
    return allowed


def _allowed_for(instance: Instance, params: SolveParams, cand: np.ndarray, t: int,
                 base_travel: np.ndarray | None, limit: np.ndarray | None = None) -> np.ndarray:
    """Allowed (A, S) pairs of one treatment (memory-light version of reachable_matrix)."""
    travel = instance.travel_min
    ok = np.isfinite(travel) & cand[None, :, t] & (instance.demand[:, t] > 0)[:, None]
    if limit is not None:
        ok &= travel <= limit[:, t][:, None] + 1e-9
    if params.max_extra_travel is not None and base_travel is not None:
        with np.errstate(invalid="ignore"):
            extra = travel - base_travel[:, t][:, None]
        ok &= np.isnan(extra) | (extra <= params.max_extra_travel + 1e-9)
    return ok


OBJECTIVE_TERMS: tuple[ObjectiveName, ...] = ("travel", "moved", "providers", "planner")


def objective_weights(params: SolveParams) -> dict[str, float]:
    """Weights of travel / moved / providers / planner; a single objective is weight 1 on itself.

    ``planner`` weighs the unnecessary moves (see :func:`unnecessary_moves`); the lexicographic
    ``planner`` objective solves it first and travel second (solve.py), like ``providers``.
    """
    if params.objective_weights:
        return {k: float(params.objective_weights.get(k, 0.0)) for k in OBJECTIVE_TERMS}
    return {k: (1.0 if k == params.objective else 0.0) for k in OBJECTIVE_TERMS}


def effective_required(instance: Instance, params: SolveParams) -> np.ndarray:
    """required[s, t] as the model uses it: norms of shortfall treatments waived to 0 under
    ``small_region_rule = "one_provider"``; ``nan`` where no norm applies."""
    required = required_matrix(instance, params)
    if params.small_region_rule == "one_provider":
        waived = shortfall_treatments(instance)
        required[:, waived] = np.where(np.isnan(required[:, waived]), np.nan, 0.0)
    return required


def self_sufficient_matrix(instance: Instance, params: SolveParams) -> np.ndarray:
    """ok[s, t]: site s could keep treatment t with its own patients of today.

    True where t has a norm at s, s is a candidate, and today's patients of s that may still go
    there (within the travel limits) reach the required volume within the site's capacity.
    Closing such a site is never *needed* for the norms, so the ``planner`` objective counts its
    patients' moves as unnecessary even if it closes (see :func:`unnecessary_moves`).
    """
    cand = candidate_matrix(instance, params)
    cap = capacity_matrix(instance, params)
    required = effective_required(instance, params)
    base_travel = instance.baseline_travel() if params.max_extra_travel is not None else None
    limit = travel_limit(instance, params)
    own = np.zeros_like(required)
    for t in range(len(instance.treatments)):
        ok = _allowed_for(instance, params, cand, t, base_travel, limit)
        own[:, t] = (instance.baseline_flow[:, :, t] * ok).sum(axis=0)
    with np.errstate(invalid="ignore"):
        enough = (np.minimum(own, cap) >= required - 1e-9) & ~np.isnan(required)
    return enough & cand


def unnecessary_moves(instance: Instance, params: SolveParams, flow: np.ndarray,
                      keep: np.ndarray, treatments: list[int] | None = None) -> float:
    """The ``planner`` objective's first term, patients per year, from decoded flows.

    Σ over today's flows b[a,s,t] that may still go to s (allowed pair) and whose site keeps t,
    has no keep decision (no norm there) or is self-sufficient (:func:`self_sufficient_matrix`),
    of b - min(flow, b): today's patients who no longer go to a hospital that keeps (or could
    keep on its own) the treatment. Patients of a hospital that closes because it cannot reach
    the norm on its own are displaced, not counted.
    """
    tsel = list(range(len(instance.treatments))) if treatments is None else list(treatments)
    cand = candidate_matrix(instance, params)
    required = effective_required(instance, params)
    own_ok = self_sufficient_matrix(instance, params)
    base_travel = instance.baseline_travel() if params.max_extra_travel is not None else None
    limit = travel_limit(instance, params)
    total = 0.0
    for t in tsel:
        ok = _allowed_for(instance, params, cand, t, base_travel, limit)
        counted = keep[:, t] | np.isnan(required[:, t]) | own_ok[:, t]
        b = instance.baseline_flow[:, :, t] * (ok & counted[None, :])
        total += float((b - np.minimum(flow[:, :, t], b)).sum())
    return total


def _nearest_flow_columns(area: np.ndarray, treat: np.ndarray, minutes: np.ndarray
                          ) -> np.ndarray:
    """Positions of the shortest-travel column of every (area, treatment) group.

    Ties go to the first column (columns are in site order), so the choice is deterministic.
    """
    if area.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(area.shape[0]), minutes, area, treat))
    key_a, key_t = area[order], treat[order]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = (key_a[1:] != key_a[:-1]) | (key_t[1:] != key_t[:-1])
    return np.sort(order[first])


# --- the builder ------------------------------------------------------------------------------
def build_arrays(
    instance: Instance,
    params: SolveParams,
    treatment_indices: list[int] | tuple[int, ...] | None = None,
    *,
    linking: str = "nearest",
) -> MipArrays:
    """Build the MIP of ``treatment_indices`` (default: all) as sparse arrays.

    The objective emitted is the *primary* one of ``params``: travel (patient-minutes), moved
    (patients leaving their baseline site, + a tiny travel tie-break), ``providers`` phase 1
    (maximise kept pairs, i.e. minimise -Σy; solve.py runs phase 2), or the weighted mix.
    ``linking`` is ``"nearest"`` (default: Σ_a x <= U·y plus x <= d·y for each area's nearest
    site), ``"aggregated"`` (Σ_a x <= U·y only) or ``"per_pair"`` (x <= d·y for every flow);
    see docs/decisions/linking.md for the measurements behind the default.
    """
    if linking not in LINKINGS:
        raise ValueError(f"unknown linking {linking!r}")
    n_areas, n_sites, n_treat = instance.shape
    tsel = tuple(range(n_treat)) if treatment_indices is None else tuple(
        sorted(int(t) for t in treatment_indices))
    demand = instance.demand
    travel = instance.travel_min
    cand = candidate_matrix(instance, params)
    cap = capacity_matrix(instance, params)
    required = required_matrix(instance, params)
    waived = (
        sorted(set(shortfall_treatments(instance)) & set(tsel))
        if params.small_region_rule == "one_provider" else []
    )
    required[:, waived] = np.where(np.isnan(required[:, waived]), np.nan, 0.0)
    fkeep, fclose = force_masks(instance, params)
    conflicts = [
        f"{instance.site_ids[s]} is forced to keep and to close {instance.treatment_ids[t]}"
        for t in tsel for s in np.nonzero(fkeep[:, t] & fclose[:, t])[0]
    ]
    base_travel = instance.baseline_travel() if params.max_extra_travel is not None else None
    weights = objective_weights(params)
    use_stay = weights["moved"] != 0.0 or weights["planner"] != 0.0
    single = params.single_sourcing

    # ---- x columns: per treatment, vectorised over (a, s) ----------------------------------
    xa_parts, xs_parts, xt_parts = [], [], []
    limit = travel_limit(instance, params)
    for t in tsel:
        ok = _allowed_for(instance, params, cand, t, base_travel, limit)
        a_idx, s_idx = np.nonzero(ok)
        xa_parts.append(a_idx)
        xs_parts.append(s_idx)
        xt_parts.append(np.full(a_idx.shape[0], t, dtype=np.int64))
    x_area = np.concatenate(xa_parts) if xa_parts else np.zeros(0, dtype=np.int64)
    x_site = np.concatenate(xs_parts) if xs_parts else np.zeros(0, dtype=np.int64)
    x_treat = np.concatenate(xt_parts) if xt_parts else np.zeros(0, dtype=np.int64)
    x_d = demand[x_area, x_treat]
    n_x = x_area.shape[0]
    x_scale = x_d.copy() if single else np.ones(n_x)

    # reachable demand per (s, t) (U of the linking row)
    reach = np.zeros((n_sites, n_treat))
    np.add.at(reach, (x_site, x_treat), x_d)

    # ---- y columns: candidates of treatments with a norm -----------------------------------
    has_norm = ~np.isnan(required)
    y_mask = np.zeros((n_sites, n_treat), dtype=bool)
    y_mask[:, list(tsel)] = (cand & has_norm)[:, list(tsel)]
    # Order y by (treatment, site) for readability/determinism.
    yt, ys = np.nonzero(y_mask.T)
    y_site, y_treat = ys.astype(np.int64), yt.astype(np.int64)
    n_y = y_site.shape[0]
    y_col = np.full((n_sites, n_treat), -1, dtype=np.int64)
    y_start = n_x
    y_col[y_site, y_treat] = y_start + np.arange(n_y)
    y_lower = fkeep[y_site, y_treat].astype(float)
    y_upper = np.ones(n_y)

    # ---- stay columns ----------------------------------------------------------------------
    stay_start = n_x + n_y
    if use_stay:
        bf = instance.baseline_flow[x_area, x_site, x_treat]
        sel = np.nonzero(bf > 0)[0]
        stay_x = sel  # x column index each stay belongs to
        stay_ub = bf[sel]
    else:
        stay_x = np.zeros(0, dtype=np.int64)
        stay_ub = np.zeros(0)
    n_stay = stay_x.shape[0]
    n_cols = n_x + n_y + n_stay

    # ---- rows as COO triplets --------------------------------------------------------------
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lo_parts: list[np.ndarray] = []
    hi_parts: list[np.ndarray] = []
    families: dict[str, tuple[int, int]] = {}
    n_rows = 0

    def add_family(name: str, r: np.ndarray, cidx: np.ndarray, v: np.ndarray,
                   lo: np.ndarray, hi: np.ndarray) -> None:
        nonlocal n_rows
        rows.append(r + n_rows)
        cols.append(cidx)
        vals.append(v)
        lo_parts.append(lo)
        hi_parts.append(hi)
        families[name] = (n_rows, n_rows + lo.shape[0])
        n_rows += lo.shape[0]

    # demand: Σ_s scale*x = d (single sourcing: Σ_s z = 1)
    d_a_parts = [np.nonzero(demand[:, t] > 0)[0] for t in tsel]
    d_a = np.concatenate(d_a_parts) if d_a_parts else np.zeros(0, dtype=np.int64)
    d_t_parts = [np.full(p.shape[0], t, dtype=np.int64)
                 for p, t in zip(d_a_parts, tsel, strict=True)]
    d_t = np.concatenate(d_t_parts) if d_t_parts else np.zeros(0, dtype=np.int64)
    d_row = np.full((n_areas, n_treat), -1, dtype=np.int64)
    d_row[d_a, d_t] = np.arange(d_a.shape[0])
    rhs = np.ones(d_a.shape[0]) if single else demand[d_a, d_t]
    add_family("demand", d_row[x_area, x_treat], np.arange(n_x), np.ones(n_x), rhs, rhs.copy())

    # min volume: Σ_a flow - req*y >= 0 (one row per y)
    v_row = np.full((n_sites, n_treat), -1, dtype=np.int64)
    v_row[y_site, y_treat] = np.arange(n_y)
    x_has_y = y_col[x_site, x_treat] >= 0
    xi = np.nonzero(x_has_y)[0]
    req_y = required[y_site, y_treat]
    add_family(
        "min_volume",
        np.concatenate([v_row[x_site[xi], x_treat[xi]], np.arange(n_y)]),
        np.concatenate([xi, y_col[y_site, y_treat]]),
        np.concatenate([x_scale[xi], -req_y]),
        np.zeros(n_y), np.full(n_y, np.inf),
    )

    # link: aggregated Σ_a flow - U*y <= 0, or per pair flow - d*y <= 0
    big_u = np.minimum(cap[y_site, y_treat], reach[y_site, y_treat])
    if linking in ("aggregated", "nearest"):
        add_family(
            "link",
            np.concatenate([v_row[x_site[xi], x_treat[xi]], np.arange(n_y)]),
            np.concatenate([xi, y_col[y_site, y_treat]]),
            np.concatenate([x_scale[xi], -big_u]),
            np.full(n_y, -np.inf), np.zeros(n_y),
        )
        cap_rows_needed = np.zeros(0, dtype=np.int64)
        # nearest: also flow <= d*y for each (area, treatment)'s nearest site with a keep
        # decision. Valid (implied once y is integer); cuts off the LP point that keeps every
        # area at its nearest site with a tiny fractional y there (docs/decisions/linking.md).
        pair_x = (_nearest_flow_columns(x_area[xi], x_treat[xi], travel[x_area[xi], x_site[xi]])
                  if linking == "nearest" else np.zeros(0, dtype=np.int64))
        pair_x = xi[pair_x]
    else:
        pair_x = xi
        # per-pair linking does not carry the capacity: add Σx <= cap for capped y pairs
        cap_rows_needed = np.nonzero(np.isfinite(cap[y_site, y_treat]))[0]
    k = pair_x.shape[0]
    add_family(
        "link_pair",
        np.concatenate([np.arange(k), np.arange(k)]),
        np.concatenate([pair_x, y_col[x_site[pair_x], x_treat[pair_x]]]),
        np.concatenate([x_scale[pair_x], -x_d[pair_x]]),
        np.full(k, -np.inf), np.zeros(k),
    )

    # capacity: treatments without a norm (Σx <= cap) + capped y pairs under per-pair linking
    cap_pairs_s: list[np.ndarray] = []
    cap_pairs_t: list[np.ndarray] = []
    nn_mask = np.zeros((n_sites, n_treat), dtype=bool)
    nn_mask[:, list(tsel)] = (cand & ~has_norm & np.isfinite(cap))[:, list(tsel)]
    nn_s, nn_t = np.nonzero(nn_mask)
    cap_pairs_s.append(nn_s)
    cap_pairs_t.append(nn_t)
    cap_pairs_s.append(y_site[cap_rows_needed])
    cap_pairs_t.append(y_treat[cap_rows_needed])
    cs = np.concatenate(cap_pairs_s).astype(np.int64)
    ct = np.concatenate(cap_pairs_t).astype(np.int64)
    c_row = np.full((n_sites, n_treat), -1, dtype=np.int64)
    c_row[cs, ct] = np.arange(cs.shape[0])
    xr = c_row[x_site, x_treat]
    xc = np.nonzero(xr >= 0)[0]
    add_family("capacity", xr[xc], xc, x_scale[xc], np.full(cs.shape[0], -np.inf),
               cap[cs, ct])

    # bundles: y[s, t1] = y[s, tk]; a site that is candidate for only part of a bundle keeps none
    # of it (the y it has are fixed to 0), because a bundle is kept or lost as a whole.
    treat_index = {tid: i for i, tid in enumerate(instance.treatment_ids)}
    b_r, b_c, b_v = [], [], []
    n_b = 0
    for bundle in params.bundles:
        members = sorted({treat_index[t] for t in bundle if t in treat_index} & set(tsel))
        if len(members) < 2:
            continue
        for s in range(n_sites):
            # bundles act on the keep decisions of the members that have a norm at this site
            normed = [t for t in members if has_norm[s, t]]
            if len(normed) < 2:
                continue
            present = [int(y_col[s, t]) for t in normed if y_col[s, t] >= 0]
            if not present:
                continue
            if len(present) < len(normed):
                for col in present:
                    y_upper[col - y_start] = 0.0
                continue
            for col in present[1:]:
                b_r += [n_b, n_b]
                b_c += [present[0], col]
                b_v += [1.0, -1.0]
                n_b += 1
    add_family("bundle", np.array(b_r, dtype=np.int64), np.array(b_c, dtype=np.int64),
               np.array(b_v, dtype=float), np.zeros(n_b), np.zeros(n_b))

    # waived norms (whole demand below the norm): at most one provider, Σ_s y[s, t] <= 1
    w_cols = [y_col[:, t][y_col[:, t] >= 0] for t in waived]
    add_family(
        "one_provider",
        np.concatenate([np.full(c.shape[0], i, dtype=np.int64) for i, c in enumerate(w_cols)])
        if w_cols else np.zeros(0, dtype=np.int64),
        np.concatenate(w_cols) if w_cols else np.zeros(0, dtype=np.int64),
        np.ones(sum(c.shape[0] for c in w_cols)),
        np.full(len(w_cols), -np.inf), np.ones(len(w_cols)),
    )

    # max_loss_share: Σ_t Σ_a flow[a,s,t] >= (1 - share) B_s, B_s over all treatments
    if params.max_loss_share is not None and params.max_loss_share < 1.0:
        b_tot = instance.baseline_volume.sum(axis=1)
        sites_l = np.nonzero(b_tot > 0)[0]
        l_row = np.full(n_sites, -1, dtype=np.int64)
        l_row[sites_l] = np.arange(sites_l.shape[0])
        xr = l_row[x_site]
        xc = np.nonzero(xr >= 0)[0]
        lo = (1.0 - params.max_loss_share) * b_tot[sites_l]
        add_family("loss_share", xr[xc], xc, x_scale[xc], lo, np.full(lo.shape[0], np.inf))
    else:
        add_family("loss_share", np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                   np.zeros(0), np.zeros(0), np.zeros(0))

    # stay <= flow:  stay - scale*x <= 0
    add_family(
        "stay",
        np.concatenate([np.arange(n_stay), np.arange(n_stay)]),
        np.concatenate([stay_start + np.arange(n_stay), stay_x]),
        np.concatenate([np.ones(n_stay), -x_scale[stay_x]]),
        np.full(n_stay, -np.inf), np.zeros(n_stay),
    )

    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, n_cols),
    )
    A.sum_duplicates()

    # ---- objective -------------------------------------------------------------------------
    c = np.zeros(n_cols)
    offset = 0.0
    x_travel = travel[x_area, x_site] * x_scale  # finite: only reachable pairs exist
    if weights["travel"]:
        c[:n_x] += weights["travel"] * x_travel
    if weights["moved"]:
        total = float(demand[:, list(tsel)].sum()) if tsel else 0.0
        offset += weights["moved"] * total
        c[stay_start:] -= weights["moved"]
        if not weights["travel"] and n_x:
            # tiny tie-break: prefer less travel among equally-moved solutions. The whole term
            # is at most TIE_BREAK_TOTAL patients (total patient-minutes <= total x max travel).
            max_minutes = float(travel[x_area, x_site].max())
            scale = max(total * max_minutes, 1.0)
            c[:n_x] += weights["moved"] * TIE_BREAK_TOTAL / scale * x_travel
    if weights["providers"]:
        c[y_start:y_start + n_y] -= weights["providers"]
    moves_c: np.ndarray | None = None
    moves_offset = 0.0
    stay_y: np.ndarray | None = None
    if use_stay:
        # unnecessary moves = Σ b·[site keeps or has no keep decision or is self-sufficient]
        #                     - Σ stay   (stay <= min(b, flow); see unnecessary_moves)
        moves_c = np.zeros(n_cols)
        moves_c[stay_start:] = -1.0
        own_ok = self_sufficient_matrix(instance, params)
        s_site, s_treat = x_site[stay_x], x_treat[stay_x]
        ycol = y_col[s_site, s_treat]
        on_y = (ycol >= 0) & ~own_ok[s_site, s_treat]
        np.add.at(moves_c, ycol[on_y], stay_ub[on_y])
        moves_offset = float(stay_ub[~on_y].sum())
        stay_y = np.where(on_y, ycol, -1)
        if weights["planner"]:
            c += weights["planner"] * moves_c
            offset += weights["planner"] * moves_offset

    integrality = np.zeros(n_cols, dtype=np.int32)
    integrality[y_start:y_start + n_y] = 1
    col_lower = np.concatenate([np.zeros(n_x), y_lower, np.zeros(n_stay)])
    col_upper = np.concatenate([np.ones(n_x) if single else x_d, y_upper, stay_ub])
    if single:
        integrality[:n_x] = 1

    return MipArrays(
        c=c,
        A=A,
        row_lower=np.concatenate(lo_parts).astype(float),
        row_upper=np.concatenate(hi_parts).astype(float),
        col_lower=col_lower,
        col_upper=col_upper,
        integrality=integrality,
        offset=offset,
        treatments=tsel,
        x_start=0,
        x_area=x_area,
        x_site=x_site,
        x_treat=x_treat,
        x_scale=x_scale,
        y_start=y_start,
        y_site=y_site,
        y_treat=y_treat,
        stay_start=stay_start,
        stay_area=x_area[stay_x],
        stay_site=x_site[stay_x],
        stay_treat=x_treat[stay_x],
        row_families=families,
        candidate=cand,
        linking=linking,
        conflicts=conflicts,
        moves_c=moves_c,
        moves_offset=moves_offset,
        stay_x=stay_x,
        stay_y=stay_y,
    )


def travel_vector(arrays: MipArrays, instance: Instance) -> np.ndarray:
    """Cost vector of pure travel (patient-minutes) in the columns of ``arrays``."""
    c = np.zeros(arrays.n_cols)
    c[arrays.x_slice()] = instance.travel_min[arrays.x_area, arrays.x_site] * arrays.x_scale
    return c


def providers_vector(arrays: MipArrays) -> np.ndarray:
    """Coefficients of Σy (number of kept (site, treatment) pairs)."""
    c = np.zeros(arrays.n_cols)
    c[arrays.y_slice()] = 1.0
    return c
