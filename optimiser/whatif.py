"""What-if sessions: change one thing in a solved plan and re-solve only what it touches.

A planner asks "what if this hospital keeps (or loses) this treatment?", "what if the margin
is 10 %?", "what if nobody may travel more than 60 minutes?". :class:`WhatIf` holds a solved
plan and answers each such step, exactly (every answer is proven optimal, as a fresh
:func:`optimiser.solve.solve` would be), by doing as little as it can:

1. every independent sub-problem (treatment) the change can touch is rebuilt (milliseconds);
   one whose model did not change keeps its previous result, and one whose model the session
   solved before (e.g. after undoing a change) gets that result back from a cache;
2. a changed sub-problem whose new model is a *restriction* of the previous one (a forced keep
   or closure of a pair that was a candidate, a higher margin, a tighter travel limit) with the
   same objective on its columns, and for which the previous optimum is still feasible, keeps
   that optimum: it is optimal for the smaller feasible set too. A restriction of an
   infeasible sub-problem stays infeasible;
3. any other changed sub-problem is solved again, starting from the previous plan when that
   plan is feasible for it (HiGHS starts with it as its incumbent).

Because of (2) and (3), when several optima tie, the answer can differ from a fresh solve's
(same objective): a session answers "from the previous plan", as planners expect. The public
surface is small so that the browser app can drive it: :meth:`WhatIf.force_keep`,
:meth:`WhatIf.force_close`, :meth:`WhatIf.release`, :meth:`WhatIf.set_margin`,
:meth:`WhatIf.set_max_travel`, :meth:`WhatIf.apply` (any SolveParams fields), the current
:attr:`WhatIf.solution` / :attr:`WhatIf.params`, and :attr:`WhatIf.last_step` (what was
reused, re-solved, and how long it took).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from .algorithms import DEFAULT_ALGORITHMS, Algorithms
from .component import ComponentModel, component_model, solve_component
from .decode import assemble_solution
from .decomposition import treatment_components
from .formulation import MipArrays, build_arrays, candidate_matrix
from .instance import Instance
from .params import SiteTreatment, SolveParams
from .scheduling import run_components
from .solution import Solution
from .solve import solve_components
from .status import FEASIBILITY_ONLY, SolveStatus
from .subproblem import ComponentResult, start_vector
from .tolerances import FEASIBILITY_TOL, INTEGRALITY_TOL, SAME_OBJECTIVE_RTOL

#: decided sub-problem results a session remembers by model (a step back is then free)
CACHE_SIZE = 512

#: SolveParams fields that change how a sub-problem is solved, not its model: a session that
#: must give a fresh solve's answer re-solves everything when one of them changes
SOLVE_SETTINGS = ("solver", "time_limit", "mip_gap", "threads", "objective", "objective_weights")

#: SolveParams fields that a restriction check understands; any other change is "not known
#: to be a restriction" and re-solves the changed sub-problems
_MONOTONE_FIELDS = {"force_keep", "force_close", "margin", "margin_by_treatment", "max_travel"}


@dataclass
class StepReport:
    """What one what-if step did, per treatment group: ``unchanged`` (same model),
    ``cached`` (a model this session solved before), ``kept_optimum`` (restriction, previous
    optimum still feasible), ``still_infeasible`` (restriction of an infeasible one) or
    ``resolved``."""

    seconds: float = 0.0
    actions: dict[str, str] = field(default_factory=dict)

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions.values() if a == action)


def _settings_key(params: SolveParams) -> str:
    """The SOLVE_SETTINGS of ``params`` as a cache-key suffix."""
    return "|" + repr([getattr(params, k) for k in SOLVE_SETTINGS])


def _same_model(a: MipArrays, b: MipArrays) -> bool:
    """Identical arrays (columns, rows, bounds, objective): the same MIP."""
    if a.n_cols != b.n_cols or a.n_rows != b.n_rows or a.conflicts != b.conflicts:
        return False
    for name in ("c", "row_lower", "row_upper", "col_lower", "col_upper", "integrality",
                 "x_area", "x_site", "x_treat", "x_scale", "y_site", "y_treat"):
        if not np.array_equal(getattr(a, name), getattr(b, name)):
            return False
    if a.offset != b.offset:
        return False
    diff = sp.csr_matrix(a.A) != sp.csr_matrix(b.A)
    return diff.nnz == 0


def _fingerprint(arrays: MipArrays) -> str:
    """A hash of everything that defines the MIP of ``arrays``."""
    digest = hashlib.blake2b(digest_size=20)
    csr = sp.csr_matrix(arrays.A)
    for part in (arrays.c, arrays.row_lower, arrays.row_upper, arrays.col_lower,
                 arrays.col_upper, arrays.integrality, arrays.x_area, arrays.x_site,
                 arrays.x_treat, arrays.x_scale, arrays.y_site, arrays.y_treat, csr.indptr,
                 csr.indices, csr.data, np.array([arrays.offset])):
        digest.update(np.ascontiguousarray(part).tobytes())
        digest.update(b"|")
    digest.update(repr(arrays.conflicts).encode())
    return digest.hexdigest()


def feasible_in(arrays: MipArrays, values: np.ndarray | None) -> bool:
    """Does the column vector ``values`` satisfy every row and bound of ``arrays``?"""
    if values is None or values.shape[0] != arrays.n_cols or arrays.conflicts:
        return False
    tol_c = FEASIBILITY_TOL * np.maximum(1.0, np.abs(values))
    if np.any(values < arrays.col_lower - tol_c) or np.any(values > arrays.col_upper + tol_c):
        return False
    ints = arrays.integrality > 0
    if np.any(np.abs(values[ints] - np.round(values[ints])) > INTEGRALITY_TOL):
        return False
    activity = arrays.A @ values
    lo_tol = FEASIBILITY_TOL * np.maximum(1.0, np.abs(np.where(
        np.isfinite(arrays.row_lower), arrays.row_lower, 0.0)))
    hi_tol = FEASIBILITY_TOL * np.maximum(1.0, np.abs(np.where(
        np.isfinite(arrays.row_upper), arrays.row_upper, 0.0)))
    return bool(np.all(activity >= arrays.row_lower - lo_tol)
                and np.all(activity <= arrays.row_upper + hi_tol))


def _keys(arrays: MipArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Column keys per block (x and stay: area, site, treatment; y: site, treatment), or None
    when the model has columns of another kind (then no column-wise comparison is made)."""
    n_stay = arrays.stay_area.shape[0]
    if arrays.n_x + arrays.n_y + n_stay != arrays.n_cols:
        return None
    big = np.int64(1 << 20)

    def key(*parts: np.ndarray) -> np.ndarray:
        out = np.zeros(parts[0].shape[0], dtype=np.int64)
        for part in parts:
            out = out * big + part.astype(np.int64)
        return out

    return (key(arrays.x_area, arrays.x_site, arrays.x_treat), key(arrays.y_site, arrays.y_treat),
            key(arrays.stay_area, arrays.stay_site, arrays.stay_treat))


def same_objective_on_subset(old: MipArrays, new: MipArrays) -> bool:
    """Every column of ``new`` exists in ``old`` with the same cost (and the same offset): the
    objective did not change, only the feasible set (used before keeping an old optimum)."""
    if old.offset != new.offset:
        return False
    old_keys, new_keys = _keys(old), _keys(new)
    if old_keys is None or new_keys is None:
        return False
    starts_old = (old.x_start, old.y_start, old.stay_start)
    starts_new = (new.x_start, new.y_start, new.stay_start)
    for k_old, k_new, s_old, s_new in zip(old_keys, new_keys, starts_old, starts_new,
                                          strict=True):
        if k_new.shape[0] == 0:
            continue
        order = np.argsort(k_old, kind="stable")
        pos = np.searchsorted(k_old[order], k_new)
        pos = np.minimum(pos, max(k_old.shape[0] - 1, 0))
        if k_old.shape[0] == 0 or np.any(k_old[order][pos] != k_new):
            return False
        c_old = old.c[s_old + order[pos]]
        c_new = new.c[s_new + np.arange(k_new.shape[0])]
        if not np.allclose(c_old, c_new, rtol=SAME_OBJECTIVE_RTOL, atol=0.0):
            return False
    return True


def is_restriction(instance: Instance, old: SolveParams, new: SolveParams) -> bool:
    """True when every plan feasible under ``new`` is feasible under ``old`` (same objective),
    judged from the parameters: only forced pairs added, margins raised, travel tightened."""
    old_d, new_d = old.model_dump(), new.model_dump()
    for key in old_d:
        if key not in _MONOTONE_FIELDS and old_d[key] != new_d[key]:
            return False
    if not set(old.force_keep) <= set(new.force_keep):
        return False
    if not set(old.force_close) <= set(new.force_close):
        return False
    # a forced keep of a pair that was not a candidate adds a site: not a restriction
    if np.any(candidate_matrix(instance, new) & ~candidate_matrix(instance, old)):
        return False
    for tid in instance.treatment_ids:
        if new.margin_for(tid) < old.margin_for(tid):
            return False
    if new.max_travel is None:  # no limit: a restriction only of no limit
        return old.max_travel is None
    return old.max_travel is None or new.max_travel <= old.max_travel


def affected_treatments(instance: Instance, old: SolveParams, new: SolveParams
                        ) -> set[int] | None:
    """Treatments whose model can differ between ``old`` and ``new``; ``None`` = any.

    Forced pairs and per-treatment margins enter the model of their own treatment only
    (formulation.candidate_matrix / required_matrix are per (site, treatment)); any other
    change may touch every treatment."""
    old_d, new_d = old.model_dump(), new.model_dump()
    changed = {k for k in old_d if old_d[k] != new_d[k]}
    if not changed <= {"force_keep", "force_close", "margin_by_treatment"}:
        return None
    ids: set[str] = set()
    for name in ("force_keep", "force_close"):
        ids |= {p.intervention_id for p in set(getattr(old, name)) ^ set(getattr(new, name))}
    for tid in set(old.margin_by_treatment) | set(new.margin_by_treatment):
        if old.margin_for(tid) != new.margin_for(tid):
            ids.add(tid)
    if "*" in ids:
        return None
    index = {tid: i for i, tid in enumerate(instance.treatment_ids)}
    return {index[t] for t in ids if t in index}


class WhatIf:
    """A solved plan of one instance and cheap, exact re-solves of small changes to it.

    ``WhatIf(instance, params)`` solves once (or adopts ``solution`` with its sub-problem
    results when given by :func:`WhatIf.from_solve`); each change returns the new
    :class:`Solution` and becomes the session's current plan.

    ``same_as_fresh=True``: every answer is the one a fresh :func:`optimiser.solve.solve` of
    the same parameters gives, to the last digit (the browser app shows only such plans). The
    session then re-uses a sub-problem's result only for an identical model (``unchanged``,
    ``cached``), and solves every other one as ``solve`` does
    (no kept optimum, no warm start: among tied optima either could pick another plan).
    ``cache_size``: how many decided sub-problem results (with their models) it remembers.
    ``algorithms``: as :func:`optimiser.solve.solve`'s (default: every algorithm on).
    """

    def __init__(self, instance: Instance, params: SolveParams,
                 max_workers: int | None = None, *, same_as_fresh: bool = False,
                 cache_size: int = CACHE_SIZE, partial: bool = True,
                 algorithms: Algorithms | None = None) -> None:
        self.instance = instance
        self.algorithms = DEFAULT_ALGORITHMS if algorithms is None else algorithms
        #: as solve(partial=...): an infeasible treatment does not stop the others' optimisation
        self.partial = partial
        self.max_workers = max_workers
        self.same_as_fresh = same_as_fresh
        self.cache_size = cache_size
        self._settings = _settings_key(params)
        self._params = params
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, ComponentResult] = OrderedDict()
        started = time.perf_counter()
        self._comps, self._explanation, self._results = solve_components(
            instance, params, max_workers=max_workers,
            early_stop=same_as_fresh and not partial, algorithms=self.algorithms)
        # the model each result answers (phase 1 of ``providers``, whose result holds phase 2)
        self._models = [self._model(params, comp)[0] for comp in self._comps]
        for arrays, result in zip(self._models, self._results, strict=True):
            self._remember(arrays, result)
        self._solution = assemble_solution(instance, params, self._comps, self._explanation,
                                  self._results, partial=partial)
        self.last_step = StepReport(time.perf_counter() - started,
                                    {self._label(c): "resolved" for c in self._comps})

    # --- public surface -----------------------------------------------------------------------
    @property
    def solution(self) -> Solution:
        return self._solution

    @property
    def params(self) -> SolveParams:
        return self._params

    def force_keep(self, site_id: str, treatment_id: str) -> Solution:
        """The hospital keeps the treatment (any earlier forcing of that pair is replaced)."""
        pair = SiteTreatment(site_id=site_id, intervention_id=treatment_id)
        self._check_pair(pair)
        keep = [p for p in self._params.force_keep if p != pair] + [pair]
        close = [p for p in self._params.force_close if p != pair]
        return self.apply(force_keep=keep, force_close=close)

    def force_close(self, site_id: str, treatment_id: str) -> Solution:
        """The hospital stops the treatment (any earlier forcing of that pair is replaced)."""
        pair = SiteTreatment(site_id=site_id, intervention_id=treatment_id)
        self._check_pair(pair)
        keep = [p for p in self._params.force_keep if p != pair]
        close = [p for p in self._params.force_close if p != pair] + [pair]
        return self.apply(force_keep=keep, force_close=close)

    def release(self, site_id: str, treatment_id: str) -> Solution:
        """Undo a forced keep or closure of the pair: the optimiser decides again."""
        pair = SiteTreatment(site_id=site_id, intervention_id=treatment_id)
        return self.apply(force_keep=[p for p in self._params.force_keep if p != pair],
                          force_close=[p for p in self._params.force_close if p != pair])

    def set_margin(self, margin: float, treatment_id: str | None = None) -> Solution:
        """Required volume = norm x (1 + margin), for every treatment or for one."""
        if treatment_id is None:
            return self.apply(margin=margin)
        self._check_pair(SiteTreatment(site_id=self.instance.site_ids[0],
                                       intervention_id=treatment_id))
        return self.apply(margin_by_treatment={**self._params.margin_by_treatment,
                                               treatment_id: margin})

    def set_max_travel(self, minutes: float | None) -> Solution:
        """Absolute travel limit in minutes (``None``: no limit)."""
        return self.apply(max_travel=minutes)

    def apply(self, **changes: Any) -> Solution:
        """Any change of SolveParams fields (validated), re-solved from the current plan."""
        new = SolveParams.model_validate({**self._params.model_dump(), **changes})
        return self._step(new)

    def set_params(self, params: SolveParams) -> Solution:
        """Go to ``params`` (any number of changes at once), re-solved from the current plan."""
        return self._step(SolveParams.model_validate(params.model_dump()))

    # --- the step -----------------------------------------------------------------------------
    def _label(self, comp: list[int]) -> str:
        return ",".join(self.instance.treatment_ids[t] for t in comp)

    def _check_pair(self, pair: SiteTreatment) -> None:
        if pair.site_id not in self.instance.site_ids:
            raise ValueError(f"unknown site {pair.site_id!r}")
        if pair.intervention_id != "*" and pair.intervention_id not in self.instance.treatment_ids:
            raise ValueError(f"unknown treatment {pair.intervention_id!r}")

    def _step(self, new: SolveParams) -> Solution:
        started = time.perf_counter()
        instance, old = self.instance, self._params
        comps, explanation = treatment_components(instance, new)
        coupling_changed = comps != self._comps  # bundles / loss share: nothing to compare
        if self.same_as_fresh and any(getattr(old, k) != getattr(new, k)
                                      for k in SOLVE_SETTINGS):
            coupling_changed = True  # another solve procedure: no earlier result applies
        self._settings = _settings_key(new)  # results of this step are cached under it
        restriction = not coupling_changed and is_restriction(instance, old, new)
        affected = None if coupling_changed else affected_treatments(instance, old, new)
        stop = self._stop_event(comps, affected)

        def run(i: int) -> tuple[str, ComponentResult, MipArrays]:
            if affected is not None and not affected & set(comps[i]):
                unaffected = self._results[i]
                if unaffected.status not in FEASIBILITY_ONLY:
                    return "unchanged", unaffected, self._models[i]
            before = None if coupling_changed else (self._results[i], self._models[i])
            return self._step_component(comps[i], before, new, restriction, stop)

        steps = run_components(instance, new, comps, run, stop, self.max_workers)
        results = [step[1] for step in steps]
        self._solution = assemble_solution(instance, new, comps, explanation, results,
                                  partial=self.partial)
        self._params, self._comps, self._explanation = new, comps, explanation
        self._results, self._models = results, [step[2] for step in steps]
        self.last_step = StepReport(time.perf_counter() - started,
                                    {self._label(comp): step[0]
                                     for comp, step in zip(comps, steps, strict=True)})
        return self._solution

    def _stop_event(self, comps: list[list[int]], affected: set[int] | None
                    ) -> threading.Event | None:
        """The early stop of a non-partial session (set at once when an untouched
        sub-problem stays infeasible: so does the scenario)."""
        stop = threading.Event() if len(comps) > 1 and not self.partial else None
        if stop is not None and affected is not None and any(
                not affected & set(comp) and self._results[i].status == SolveStatus.INFEASIBLE
                for i, comp in enumerate(comps)):
            stop.set()
        return stop

    def _cache_key(self, arrays: MipArrays) -> str:
        """The model's fingerprint; with ``same_as_fresh`` also the solve settings (the same
        model solved with another gap or objective procedure may give another plan)."""
        return _fingerprint(arrays) + (self._settings if self.same_as_fresh else "")

    def _remember(self, arrays: MipArrays, result: ComponentResult,
                  key: str | None = None) -> None:
        """Cache a decided result by its model: the same model later gets the same answer.
        ``key``: the model's cache key when already computed (hashing a model costs ~3 ms)."""
        if result.status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE):
            with self._lock:
                key = self._cache_key(arrays) if key is None else key
                self._cache[key] = result
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)

    def _model(self, params: SolveParams, comp: list[int]
               ) -> tuple[MipArrays, ComponentModel | None]:
        """The sub-problem's model as the session compares and caches it: with
        ``same_as_fresh`` the one ``solve_component`` solves (built once, handed on to the
        solve when it is not found), else the run parameters' model (whose columns the
        restriction checks compare)."""
        if self.same_as_fresh:
            model = component_model(self.instance, params, comp, self.algorithms)
            return model.arrays, model
        return build_arrays(self.instance, params, comp), None

    def _step_component(self, comp: list[int],
                        before: tuple[ComponentResult, MipArrays] | None,
                        new: SolveParams, restriction: bool, stop: threading.Event | None
                        ) -> tuple[str, ComponentResult, MipArrays]:
        instance = self.instance
        arrays, model = self._model(new, comp)
        keys: list[str] = []
        reused = self._reused(comp, arrays, before, restriction, keys)
        if reused is not None:
            if reused[1].status == SolveStatus.INFEASIBLE and stop is not None:
                stop.set()  # the scenario is infeasible: the others only check feasibility
            return reused
        if self.same_as_fresh:  # as optimiser.solve.solve does it: no start, no shortcut
            result = solve_component(instance, new, comp, 1, None, stop, self.algorithms,
                                     model=model)
            self._remember(arrays, result, keys[0] if keys else None)
            return "resolved", result, arrays
        plan = self._solution if self._solution.feasible else None
        start = start_vector(arrays, instance, plan) if plan is not None else None
        start_ok = feasible_in(arrays, start)
        if (before is not None and restriction and before[0].status == SolveStatus.OPTIMAL
                and start_ok and same_objective_on_subset(before[1], arrays)):
            # optimal on a superset of the new feasible set and feasible here: optimal here
            old = before[0]
            result = ComponentResult(comp, SolveStatus.OPTIMAL, start, arrays, old.gap, 0.0, 0.0,
                                     old.solver, replace(old.report), list(old.warnings))
            self._remember(arrays, result)
            return "kept_optimum", result, arrays
        result = solve_component(instance, new, comp, 1, plan if start_ok else None, stop,
                                 self.algorithms)
        self._remember(arrays, result)
        return "resolved", result, arrays

    def _reused(self, comp: list[int], arrays: MipArrays,
                before: tuple[ComponentResult, MipArrays] | None, restriction: bool,
                keys: list[str] | None = None
                ) -> tuple[str, ComponentResult, MipArrays] | None:
        """An earlier answer for ``arrays`` (``unchanged``, ``cached``, ``still_infeasible``),
        or None when it must be solved (``keys`` gets the model's cache key when computed)."""
        if before is not None:
            result, previous_model = before
            if result.status not in FEASIBILITY_ONLY and _same_model(
                    arrays, previous_model):
                return "unchanged", result, arrays
        key = self._cache_key(arrays)
        if keys is not None:
            keys.append(key)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return "cached", cached, arrays
        if (before is not None and restriction and before[0].status == SolveStatus.INFEASIBLE
                and not self.same_as_fresh):  # a fresh solve's entry says how it was decided
            result = ComponentResult(comp, SolveStatus.INFEASIBLE, None, arrays, None, 0.0, 0.0,
                                     before[0].solver)
            return "still_infeasible", result, arrays
        return None
