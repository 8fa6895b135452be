"""The reallocation MIP, written once, emitted as sparse arrays.

This module is the single source of truth of the model. :func:`build_arrays` turns an
:class:`~optimiser.instance.Instance`, a :class:`~optimiser.params.SolveParams` and a subset of
treatments into a :class:`MipArrays` (``min c.x + offset`` s.t. ``row_lower <= A x <= row_upper``,
``col_lower <= x <= col_upper``, some columns integer). :mod:`optimiser.backends` hands the same
arrays to highspy (``passModel`` with CSC arrays) or to PuLP/CBC, so there are never two
hand-written models that could drift apart.

The model is a registry of families (:mod:`optimiser.rows`; how to add one:
docs/ARCHITECTURE.md). This module holds the rules the families share, computed once per
model: candidates (:func:`candidate_matrix`), capacities, required volumes, travel limits and
the one feasibility rule of a flow (:class:`PairRule`); :func:`build_arrays` iterates the
registry. Column blocks, in this order:

* ``x`` (``flows``) flow of area ``a`` to site ``s`` for treatment ``t``, only for allowed
  pairs (sparse). Continuous in ``[0, d[a,t]]``, patients per year; with ``single_sourcing`` a
  binary *share* ``z`` with flow ``d[a,t] * z`` (``x_scale`` holds ``d`` then).
* ``y`` (``keeps``) binary keep of site ``s`` for a treatment ``t`` that has a volume norm.
* ``stay`` (``stays``) patients of ``a`` that stay at their baseline site ``s`` (``moved`` and
  ``planner`` objectives): ``0 <= stay <= baseline_flow``, ``stay <= flow``.

Rows, in this order (``rows.ROW_FAMILIES``): ``demand`` (every patient is treated),
``min_volume`` ((1+m)·N·y <= Σx), ``link`` (Σx <= U·y, U = min(capacity, reachable demand)),
``link_pair`` (x <= d·y for some or all flows), ``capacity`` (treatments without a norm, and
keep pairs under per-pair linking), ``bundle`` (y equal across a bundle), ``one_provider``
(Σ_s y <= 1 where the small-region rule waives a norm), ``loss_share`` (max_loss_share),
``stay`` (stay <= flow), ``max_providers`` (Σ_s y <= P); the strategies append
``providers_floor``, ``moves_ceiling`` or ``stay_full`` for the second phase of a lexicographic
objective.

Linking (measured: docs/decisions/linking.md): the default ``nearest`` is the
aggregated per-site row Σ_a x <= U·y plus the per-pair row x[a,s,t] <= d[a,t]·y[s,t] for each
area's nearest candidate site only (one row per area and treatment); ``aggregated`` drops
those rows, ``per_pair`` has them for every flow. All three give the same optimum (tested) and
carry the aggregated min-volume row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .confidence import required_volume
from .instance import Instance
from .params import SolveParams
from .rows import FAMILIES, OBJECTIVE_TERMS, Family
from .rows.base import Build, ColumnCounts
from .tolerances import REACHES_REQUIRED_TOL, TRAVEL_TOL_MIN

LINKINGS = ("nearest", "aggregated", "per_pair")


@dataclass
class MipArrays(ColumnCounts):
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
    #: (start, stop) row range per family (optimiser.rows.ROW_FAMILIES)
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
    #: the family registry the model was built from (optimiser.rows.FAMILIES unless a test
    #: adds a family): the exact keep-set algorithms read the rows through it
    families: tuple[Family, ...] = FAMILIES

    @property
    def n_cols(self) -> int:
        return int(self.c.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.A.shape[0])

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

    def unnecessary_moves_of(self, values: np.ndarray) -> float:
        """``moves_c @ values + moves_offset``: the planner's unnecessary moves of a plan.

        Summed over the non-zeros of ``moves_c`` (stay and keep columns): a full-length dot
        of a large model (> 10,000 columns) runs on OpenBLAS' threads, whose hand-over cost
        ~10-20 ms of CPU each under load (measured on noordoost), against microseconds on
        one thread."""
        assert self.moves_c is not None
        support = np.flatnonzero(self.moves_c)
        return float(self.moves_c[support] @ values[support] + self.moves_offset)

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
    """required[s, t] = norm x (1 + margin_t), or under ``norm_confidence`` the smallest
    expected volume meeting the norm with that confidence (optimiser/confidence.py, per norm:
    tier norms included); ``nan`` where the treatment has no norm."""
    norms = instance.norm_matrix()
    if params.norm_confidence is not None:
        return required_volume(norms, params.norm_confidence, params.norm_period_years)
    margins = np.array([params.margin_for(tid) for tid in instance.treatment_ids])
    return norms * (1.0 + margins)[None, :]


def _memoised(instance: Instance, name: str, inputs: tuple[object, ...],
              compute: Callable[[], object]) -> object:
    """``compute()`` once per instance and ``inputs``: a value every sub-problem's build (and
    the decoding of its plan) asks for again, derived from ``inputs`` only (the instance's
    arrays and records, compared by identity as :meth:`Instance.norm_matrix` does, and
    parameter values, compared by equality). Callers copy what they may change."""
    memo = instance.__dict__.setdefault("_formulation_memo", {})
    held = memo.get(name)
    if held is not None and len(held[0]) == len(inputs) and all(
            a is b or (not isinstance(a, np.ndarray) and a == b)
            for a, b in zip(held[0], inputs, strict=True)):
        return held[1]
    value = compute()
    memo[name] = (inputs, value)
    return value


def travel_limit(instance: Instance, params: SolveParams) -> np.ndarray | None:
    """Travel limit in minutes per (area, treatment), or ``None`` without ``max_travel``.

    Under ``remote_areas = "nearest_provider"`` an area whose nearest current provider of a
    treatment is already further than ``max_travel`` may travel as far as that provider: the
    limit then protects patients from longer trips without making islands infeasible.
    Computed once per instance and parameters (a copy each call).
    """
    if params.max_travel is None:
        return None
    inputs = (instance.travel_min, instance.baseline_volume, float(params.max_travel),
              params.remote_areas)
    limit = _memoised(instance, "travel_limit", inputs,
                      lambda: _travel_limit(instance, params))
    assert isinstance(limit, np.ndarray)
    return limit.copy()


def _travel_limit(instance: Instance, params: SolveParams) -> np.ndarray:
    assert params.max_travel is not None
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
    waived, and flagged; under ``"fail"`` the scenario is infeasible. Computed once per
    instance (a new list each call).
    """
    inputs = (instance.sites, instance.treatments, instance.demand)
    found = _memoised(instance, "shortfall_treatments", inputs,
                      lambda: _shortfall_treatments(instance))
    assert isinstance(found, list)
    return list(found)


def _shortfall_treatments(instance: Instance) -> list[int]:
    norms = instance.norm_matrix()
    out = []
    for t in range(len(instance.treatments)):
        column = norms[:, t]
        total = float(instance.demand[:, t].sum())
        if total > 0 and np.any(~np.isnan(column)) and total < np.nanmin(column):
            out.append(t)
    return out


@dataclass
class PairRule:
    """The feasibility rule of a flow, in one place: may area a send patients of t to site s?

    A pair is allowed when the area has demand, the site is a candidate, a route exists and the
    travel limits hold (``travel_limit``; ``max_extra_travel`` over the area's baseline mean
    travel, where it has baseline patients). The formulation creates x columns only for allowed
    pairs; the diagnosis and the planner objective read the same rule.
    """

    instance: Instance
    params: SolveParams
    candidate: np.ndarray
    limit: np.ndarray | None
    base_travel: np.ndarray | None

    @classmethod
    def of(cls, instance: Instance, params: SolveParams, cand: np.ndarray | None = None
           ) -> PairRule:
        """The rule of ``params`` (``cand``: the candidate matrix, if already computed)."""
        if cand is None:
            cand = candidate_matrix(instance, params)
        base = None
        if params.max_extra_travel is not None:
            held = _memoised(instance, "baseline_travel", (instance.baseline_flow,
                             instance.travel_min), instance.baseline_travel)
            assert isinstance(held, np.ndarray)
            base = held.copy()
        return cls(instance, params, cand, travel_limit(instance, params), base)

    def allowed(self, t: int) -> np.ndarray:
        """Allowed (A, S) pairs of treatment t."""
        travel = self.instance.travel_min
        ok = (np.isfinite(travel) & self.candidate[None, :, t]
              & (self.instance.demand[:, t] > 0)[:, None])
        if self.limit is not None:
            ok &= travel <= self.limit[:, t][:, None] + TRAVEL_TOL_MIN
        extra_limit = self.params.max_extra_travel
        if extra_limit is not None and self.base_travel is not None:
            with np.errstate(invalid="ignore"):
                extra = travel - self.base_travel[:, t][:, None]
            ok &= np.isnan(extra) | (extra <= extra_limit + TRAVEL_TOL_MIN)
        return ok

    def allowed_all(self) -> np.ndarray:
        """Allowed pairs of every treatment as a boolean (A, S, T)."""
        n_areas, n_sites, n_treat = self.instance.shape
        if n_treat == 0:
            return np.zeros((n_areas, n_sites, 0), dtype=bool)
        return np.stack([self.allowed(t) for t in range(n_treat)], axis=2)


#: the objective terms a weight can be given to (optimiser/rows/objective.py)
OBJECTIVE_NAMES: tuple[str, ...] = tuple(term.name for term in OBJECTIVE_TERMS)


def objective_weights(params: SolveParams) -> dict[str, float]:
    """Weights of travel / moved / providers / planner; a single objective is weight 1 on itself.

    ``planner`` weighs the unnecessary moves (see :func:`unnecessary_moves`); the lexicographic
    ``planner`` objective solves it first and travel second (planner.py), like ``providers``.
    """
    if params.objective_weights:
        given: dict[str, float] = {str(k): v for k, v in params.objective_weights.items()}
        return {k: float(given.get(k, 0.0)) for k in OBJECTIVE_NAMES}
    return {k: (1.0 if k == params.objective else 0.0) for k in OBJECTIVE_NAMES}


def effective_required(instance: Instance, params: SolveParams) -> np.ndarray:
    """required[s, t] as the model uses it: norms of shortfall treatments waived to 0 under
    ``small_region_rule = "one_provider"``; ``nan`` where no norm applies."""
    required = required_matrix(instance, params)
    if params.small_region_rule == "one_provider":
        waived = shortfall_treatments(instance)
        required[:, waived] = np.where(np.isnan(required[:, waived]), np.nan, 0.0)
    return required


def self_sufficient_matrix(instance: Instance, params: SolveParams,
                           treatments: Sequence[int] | None = None) -> np.ndarray:
    """ok[s, t]: site s could keep treatment t with its own patients of today.

    True where t has a norm at s, s is a candidate, and today's patients of s that may still go
    there (within the travel limits) reach the required volume within the site's capacity.
    Closing such a site is never *needed* for the norms, so the ``planner`` objective counts its
    patients' moves as unnecessary even if it closes (see :func:`unnecessary_moves`).
    Only the columns of ``treatments`` (default: all) are computed; the others are False.
    """
    cand = candidate_matrix(instance, params)
    return _self_sufficient(instance, params, cand, effective_required(instance, params),
                            PairRule.of(instance, params, cand), _treatment_list(instance,
                                                                                 treatments))


def _treatment_list(instance: Instance, treatments: Sequence[int] | None) -> list[int]:
    return list(range(len(instance.treatments))) if treatments is None else list(treatments)


def _self_sufficient(instance: Instance, params: SolveParams, cand: np.ndarray,
                     required: np.ndarray, rule: PairRule, tsel: list[int]) -> np.ndarray:
    cap = capacity_matrix(instance, params)
    enough = np.zeros_like(cand, dtype=bool)
    for t in tsel:
        own = (instance.baseline_flow[:, :, t] * rule.allowed(t)).sum(axis=0)
        with np.errstate(invalid="ignore"):
            enough[:, t] = ((np.minimum(own, cap[:, t]) >= required[:, t] - REACHES_REQUIRED_TOL)
                            & ~np.isnan(required[:, t]))
    return enough & cand


MovesRules = tuple[np.ndarray, np.ndarray, "PairRule"]


def unnecessary_moves_rules(instance: Instance, params: SolveParams) -> MovesRules:
    """What :func:`unnecessary_moves` reads of the whole instance (candidates, effective
    required volumes, the pair rule): computed once for the sub-problems of one plan."""
    cand = candidate_matrix(instance, params)
    return cand, effective_required(instance, params), PairRule.of(instance, params, cand)


def unnecessary_moves(instance: Instance, params: SolveParams, flow: np.ndarray,
                      keep: np.ndarray, treatments: list[int] | None = None,
                      rules: MovesRules | None = None) -> float:
    """The ``planner`` objective's first term, patients per year, from decoded flows.

    Σ over today's flows b[a,s,t] that may still go to s (allowed pair) and whose site keeps t,
    has no keep decision (no norm there) or is self-sufficient (:func:`self_sufficient_matrix`),
    of b - min(flow, b): today's patients who no longer go to a hospital that keeps (or could
    keep on its own) the treatment. Patients of a hospital that closes because it cannot reach
    the norm on its own are displaced, not counted. ``rules``: :func:`unnecessary_moves_rules`
    of the same instance and parameters, when the caller has them.
    """
    tsel = _treatment_list(instance, treatments)
    cand, required, rule = (unnecessary_moves_rules(instance, params) if rules is None
                            else rules)
    own_ok = _self_sufficient(instance, params, cand, required, rule, tsel)
    total = 0.0
    for t in tsel:
        ok = rule.allowed(t)
        counted = keep[:, t] | np.isnan(required[:, t]) | own_ok[:, t]
        b = instance.baseline_flow[:, :, t] * (ok & counted[None, :])
        total += float((b - np.minimum(flow[:, :, t], b)).sum())
    return total


# --- the builder ------------------------------------------------------------------------------
def _start_build(instance: Instance, params: SolveParams, tsel: tuple[int, ...], linking: str
                 ) -> Build:
    """The shared rules every family reads, computed once per model."""
    cand = candidate_matrix(instance, params)
    required = required_matrix(instance, params)
    waived = (
        sorted(set(shortfall_treatments(instance)) & set(tsel))
        if params.small_region_rule == "one_provider" else []
    )
    required[:, waived] = np.where(np.isnan(required[:, waived]), np.nan, 0.0)
    fkeep, fclose = force_masks(instance, params)
    return Build(
        instance=instance, params=params, treatments=tsel, linking=linking, candidate=cand,
        capacity=capacity_matrix(instance, params), required=required, waived=waived,
        force_keep=fkeep, force_close=fclose, allowed=PairRule.of(instance, params, cand).allowed,
        weights=objective_weights(params),
        self_sufficient=lambda: self_sufficient_matrix(instance, params, tsel),
    )


def _arrays(b: Build, matrix: sp.csr_matrix, families: tuple[Family, ...]) -> MipArrays:
    single = b.params.single_sourcing
    integrality = np.zeros(b.n_cols, dtype=np.int32)
    integrality[b.y_start:b.y_start + b.n_y] = 1
    if single:
        integrality[:b.n_x] = 1
    return MipArrays(
        c=b.c, A=matrix,
        row_lower=np.concatenate(b.lower).astype(float),
        row_upper=np.concatenate(b.upper).astype(float),
        col_lower=np.concatenate([np.zeros(b.n_x), b.y_lower, np.zeros(b.n_stay)]),
        col_upper=np.concatenate([np.ones(b.n_x) if single else b.x_d, b.y_upper, b.stay_ub]),
        integrality=integrality, offset=b.offset, treatments=b.treatments,
        x_start=0, x_area=b.x_area, x_site=b.x_site, x_treat=b.x_treat, x_scale=b.x_scale,
        y_start=b.y_start, y_site=b.y_site, y_treat=b.y_treat,
        stay_start=b.stay_start, stay_area=b.x_area[b.stay_x], stay_site=b.x_site[b.stay_x],
        stay_treat=b.x_treat[b.stay_x],
        row_families=b.families, candidate=b.candidate, linking=b.linking,
        conflicts=b.conflicts, moves_c=b.moves_c, moves_offset=b.moves_offset,
        stay_x=b.stay_x, stay_y=b.stay_y, families=families,
    )


def build_arrays(
    instance: Instance,
    params: SolveParams,
    treatment_indices: list[int] | tuple[int, ...] | None = None,
    *,
    linking: str = "nearest",
    families: tuple[Family, ...] = FAMILIES,
) -> MipArrays:
    """Build the MIP of ``treatment_indices`` (default: all) as sparse arrays.

    Every family of :data:`~optimiser.rows.FAMILIES` adds its columns, then its rows, in
    registry order; then every term of :data:`~optimiser.rows.OBJECTIVE_TERMS` its costs. The
    objective emitted is the *primary* one of ``params``: travel (patient-minutes), moved
    (patients leaving their baseline site, + a tiny travel tie-break), ``providers`` phase 1
    (maximise kept pairs, i.e. minimise -Σy; strategies.py runs phase 2), or the weighted mix.
    ``linking`` is ``"nearest"`` (default: Σ_a x <= U·y plus x <= d·y for each area's nearest
    site), ``"aggregated"`` (Σ_a x <= U·y only) or ``"per_pair"`` (x <= d·y for every flow);
    see docs/decisions/linking.md for the measurements behind the default. ``families``:
    the registry to build from (a test adds a family to it).
    """
    if linking not in LINKINGS:
        raise ValueError(f"unknown linking {linking!r}")
    n_treat = len(instance.treatments)
    tsel = tuple(range(n_treat)) if treatment_indices is None else tuple(
        sorted(int(t) for t in treatment_indices))
    build = _start_build(instance, params, tsel, linking)
    for entry in families:
        if entry.build is not None:
            entry.build(build)
    matrix = sp.csr_matrix(
        (np.concatenate(build.vals), (np.concatenate(build.rows), np.concatenate(build.cols))),
        shape=(build.n_rows, build.n_cols),
    )
    matrix.sum_duplicates()
    build.c = np.zeros(build.n_cols)
    for term in OBJECTIVE_TERMS:
        term.add(build, build.weights[term.name])
    return _arrays(build, matrix, families)


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
