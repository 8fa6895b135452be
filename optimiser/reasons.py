"""Why a hospital loses a treatment, and what keeping it would cost: exact, by re-solving.

For every lost role (a hospital that provides a treatment with a norm today and not in the
plan) the plan is solved again with that role forced open: a fresh solve of the role's
independent sub-problem (its treatment, or the treatments coupled to it), against the fresh
solve of that sub-problem as the scenario has it (what a ``same_as_fresh`` what-if session
answers, optimiser/whatif.py). Comparing the two optima gives the price in the planner's
units:

* ``keep_feasible``: whether any plan keeps the role (False: no plan reaches the required
  volume there, or keeping it breaks another rule; the diagnosis says which);
* ``keep_cost_moves``: patients per year who would have to move although their hospital keeps
  the treatment (optional moves, the KPI ``patients_moved_optional``), over the plan's;
* ``keep_cost_patient_min``: patient-minutes of travel per year over the plan's;
* ``keep_moves_from``: the hospitals (ids) those patients would come from, with patients per year;
* ``keep_closes``: hospitals (ids) that would lose the treatment instead.

:attr:`RoleReason.codes` says why, as codes (``REASON_CODES``): first whether the scenario closes
it (``force_close``; keeping it then means undoing that, as :meth:`WhatIf.force_keep` does),
then whether the hospital can reach its required volume with its own patients of today, then
the price. The optimiser says no words: the sentence, in the run's language, is
scenarios' (``herschik.scenarios.reason_words``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from herschik.i18n import current_language

from .decomposition import treatment_components
from .formulation import force_masks, required_matrix
from .instance import Instance
from .kpis import displacement_kpis
from .params import SiteTreatment, SolveParams
from .solution import Solution
from .solve import solve
from .status import SolveStatus
from .tolerances import BELOW_NORM_TOL
from .transfers import NO_SITE, transfers

#: why a role is lost, in the order :attr:`RoleReason.codes` lists them
REASON_CODES: tuple[str, ...] = (
    "closed_by_scenario",  # the scenario's force_close closes it
    "below_required_alone",  # its own patients of today are fewer than its required volume
    "no_plan_keeps",  # no feasible plan keeps it (infeasible_reason: the diagnosis)
    "keep_costs_nothing",  # another optimum keeps it at no extra cost
    "keep_costs",  # keeping it costs optional moves and/or patient-minutes, or closes others
)
#: components whose reasons a process remembers (per instance; see _ReasonMemo)
MEMO_SIZE = 256


@dataclass
class RoleReason:
    """Why one (site, treatment) is lost and what keeping it would cost (module docstring)."""

    site_id: str
    intervention_id: str
    own_patients: float
    required: float
    keep_feasible: bool
    keep_cost_moves: float | None = None
    keep_cost_patient_min: float | None = None
    #: (site_id, patients/yr) of the optional moves into it, most patients first
    keep_moves_from: list[tuple[str, float]] = field(default_factory=list)
    #: site ids that would lose the treatment instead
    keep_closes: list[str] = field(default_factory=list)
    #: the diagnosis of the forced solve when no plan keeps it
    infeasible_reason: str | None = None
    #: the scenario closes it (force_close): the price is that of undoing the closure
    forced_closed: bool = False

    @property
    def below_required_alone(self) -> bool:
        """Its own patients of today are fewer than its required volume."""
        return self.own_patients < self.required - BELOW_NORM_TOL

    @property
    def keep_costs_nothing(self) -> bool:
        """Another optimum keeps it: no optional moves, no extra minutes, no other closure."""
        return (self.keep_feasible and (self.keep_cost_moves or 0.0) <= BELOW_NORM_TOL
                and (self.keep_cost_patient_min or 0.0) <= BELOW_NORM_TOL
                and not self.keep_closes)

    @property
    def codes(self) -> list[str]:
        """Why it is lost, as :data:`REASON_CODES` (the last one says the price)."""
        codes = ["closed_by_scenario"] if self.forced_closed else []
        if self.below_required_alone:
            codes.append("below_required_alone")
        if not self.keep_feasible:
            codes.append("no_plan_keeps")
        elif self.keep_costs_nothing:
            codes.append("keep_costs_nothing")
        else:
            codes.append("keep_costs")
        return codes


def params_for_treatments(params: SolveParams, treatment_ids: set[str]) -> SolveParams:
    """``params`` for an instance of only ``treatment_ids`` (bundles of other treatments
    dropped; other treatment-keyed settings are looked up by id and so already ignored)."""
    bundles = [b for b in params.bundles if set(b) <= treatment_ids]
    return params.model_copy(update={"bundles": bundles})


def _travel(instance: Instance, flow: np.ndarray) -> float:
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
    return float(np.einsum("ast,as->", flow, travel))


def _optional(instance: Instance, solution: Solution) -> float:
    assert solution.flow is not None and solution.keep is not None
    per = displacement_kpis(instance, solution.flow, solution.keep)["per_treatment"]
    return float(sum(v["patients_moved_optional"] or 0.0 for v in per.values()))


def _price(sub: Instance, base: Solution, forced: Solution, s: int, t: int,
           reason: RoleReason) -> None:
    """Fill the price fields of ``reason`` from the base and the forced optimum."""
    assert forced.flow is not None and forced.keep is not None
    assert base.flow is not None and base.keep is not None
    reason.keep_cost_moves = round(max(_optional(sub, forced) - _optional(sub, base), 0.0), 6)
    reason.keep_cost_patient_min = round(_travel(sub, forced.flow) - _travel(sub, base.flow), 6)
    moves = transfers(sub, forced.flow)
    # optional moves: from hospitals that keep the treatment in the forced plan
    kept = np.append(forced.keep[:, t], False)  # NO_SITE (-1) indexes the appended False
    into = (moves.treatment == t) & (moves.site_after == s) & (moves.site_before != s) \
        & (moves.site_before != NO_SITE) & kept[moves.site_before]
    sources: dict[int, float] = {}
    for before, patients in zip(moves.site_before[into], moves.patients[into], strict=True):
        sources[int(before)] = sources.get(int(before), 0.0) + float(patients)
    ordered = sorted(sources, key=lambda k: (-sources[k], sub.site_ids[k]))
    reason.keep_moves_from = [(sub.site_ids[k], round(sources[k], 6)) for k in ordered]
    closes = np.nonzero(base.keep[:, t] & ~forced.keep[:, t])[0]
    reason.keep_closes = [sub.site_ids[int(k)] for k in closes]


class _ReasonMemo:
    """The reasons of one component already worked out in this process, per instance (and,
    in a second memo, the component's plan they are priced against).

    A component's reasons are a function of the instance, the component, the parameters that
    reach its model and its lost roles: the re-solves are fresh solves, deterministic. A
    component the change did not touch gets its reasons back instead of one re-solve per lost
    role; the app, which asks per hospital, gets the component's plan back instead of solving
    it again for every hospital. Keyed by the instance object itself (weakly: an instance that
    is gone takes its entries along). Entries are copies (never shared with a caller)."""

    def __init__(self) -> None:
        # re-entrant: an instance collected while the lock is held (a garbage collection
        # inside put) calls _forget on the same thread
        self._lock = threading.RLock()
        self._entries: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self._instances: dict[int, weakref.ref[Instance]] = {}

    def _forget(self, ident: int) -> None:
        with self._lock:
            self._instances.pop(ident, None)
            for key in [k for k in self._entries if k[0] == ident]:
                del self._entries[key]

    def get(self, instance: Instance, key: str) -> Any:
        with self._lock:
            ref = self._instances.get(id(instance))
            if ref is None or ref() is not instance:
                return None
            found = self._entries.get((id(instance), key))
            if found is not None:
                self._entries.move_to_end((id(instance), key))
            return copy.deepcopy(found)

    def put(self, instance: Instance, key: str, reasons: Any) -> None:
        with self._lock:
            ident = id(instance)
            ref = self._instances.get(ident)
            if ref is None or ref() is not instance:
                self._instances[ident] = weakref.ref(instance)
                weakref.finalize(instance, self._forget, ident)
            self._entries[(ident, key)] = copy.deepcopy(reasons)
            while len(self._entries) > MEMO_SIZE:
                self._entries.popitem(last=False)


class ReasonStore(Protocol):
    """Reasons kept beyond the process (scenarios' derived-data cache): a component's reasons
    under :func:`stored_reasons_key`. The optimiser reads no files; the caller brings one."""

    def get(self, key: str) -> list[RoleReason] | None: ...

    def put(self, key: str, reasons: list[RoleReason]) -> None: ...


def instance_digest(instance: Instance) -> str:
    """SHA-256 of everything an instance holds (every field, arrays by shape, type and
    bytes): two instances with the same digest give the same solves."""
    digest = hashlib.sha256(b"herschik-instance")
    for item in dataclasses.fields(instance):
        value = getattr(instance, item.name)
        digest.update(f"\0{item.name}:".encode())
        if isinstance(value, np.ndarray):
            digest.update(f"{value.dtype.str}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def stored_reasons_key(sub: Instance, component_key: str) -> str:
    """The key of a component's reasons in a :class:`ReasonStore`: the component's own
    instance (its content, not its object) and :func:`_component_key`."""
    return hashlib.sha256(f"{instance_digest(sub)}\0{component_key}".encode()).hexdigest()


_MEMO = _ReasonMemo()
#: the plan of each component whose reasons were worked out (key: its roles left out)
_BASES = _ReasonMemo()


def _forced_open(params: SolveParams, site_id: str, treatment_id: str) -> SolveParams:
    """``params`` with the role forced open (any forcing of that pair replaced), exactly as
    :meth:`WhatIf.force_keep` makes them."""
    pair = SiteTreatment(site_id=site_id, intervention_id=treatment_id)
    keep = [p for p in params.force_keep if p != pair] + [pair]
    close = [p for p in params.force_close if p != pair]
    return SolveParams.model_validate({**params.model_dump(), "force_keep": keep,
                                       "force_close": close})


def _component_plan(instance: Instance, sub: Instance, params: SolveParams, key: str
                    ) -> Solution:
    """The fresh solve of a component's own instance ``sub`` (remembered per ``key``)."""
    base = _BASES.get(instance, key)
    if base is None:
        base = solve(sub, params, max_workers=1)
        _BASES.put(instance, key, base)
    return base


def _component_key(params: SolveParams, ids: set[str], roles: list[tuple[int, int]],
                   closed: np.ndarray) -> str:
    """What a component's reasons depend on besides the instance: its treatments, the
    parameters restricted to them (a forced pair or a margin of another treatment does not
    reach this component's model, optimiser/whatif.affected_treatments) and its lost roles."""
    def own(pairs: list) -> list:
        return [p for p in pairs if p.intervention_id in ids or p.intervention_id == "*"]

    restricted = params.model_copy(update={
        "force_keep": own(params.force_keep), "force_close": own(params.force_close),
        "margin_by_treatment": {t: m for t, m in params.margin_by_treatment.items()
                                if t in ids}})
    return repr((sorted(ids), restricted.model_dump_json(),
                 [(s, t, bool(closed[s, t])) for s, t in roles]))


def _lost(instance: Instance, keep: np.ndarray, site_ids: Collection[str] | None
          ) -> np.ndarray:
    """(site, treatment) roles with a norm provided today and not kept (of ``site_ids``)."""
    lost = (instance.baseline_volume > 0) & ~keep & ~np.isnan(instance.norm_matrix())
    if site_ids is not None:
        wanted = set(site_ids)
        lost &= np.array([s in wanted for s in instance.site_ids], dtype=bool)[:, None]
    return lost


def lost_role_reasons(instance: Instance, params: SolveParams, solution: Solution, *,
                      site_ids: Collection[str] | None = None,
                      store: ReasonStore | None = None) -> list[RoleReason]:
    """A :class:`RoleReason` for every role with a norm that ``solution`` loses, sorted by
    (site_id, intervention_id); empty without a plan. A component whose reasons this process
    worked out before for the same instance and parameters gets them back (_ReasonMemo).

    ``site_ids``: only the roles of these hospitals (the app asks for one hospital's when the
    planner opens it). Each role's reason is a fresh solve with that role forced open, whatever
    other roles are asked for, so it is the same as in the whole list.

    ``store``: reasons kept across processes (a planner who runs the same region and
    scenario again gets them without a re-solve), keyed by the component's instance content
    and :func:`_component_key` (:func:`stored_reasons_key`). Only reasons whose every solve
    ended proven (optimal or infeasible) are stored: a time limit's answer may differ."""
    if solution.flow is None or solution.keep is None:
        return []
    required = required_matrix(instance, params)
    lost = _lost(instance, solution.keep, site_ids)
    solved = {tid for entry in solution.subproblems for tid in entry.get("treatments", ())
              if SolveStatus(entry.get("status", SolveStatus.ERROR)).solved}
    if not solution.subproblems:
        solved = set(instance.treatment_ids)
    closed = force_masks(instance, params)[1]
    comps, _ = treatment_components(instance, params)
    reasons: list[RoleReason] = []
    for comp in comps:
        roles = [(int(s), int(t)) for s, t in zip(*np.nonzero(lost[:, comp]), strict=True)]
        roles = [(s, comp[t]) for s, t in roles if instance.treatment_ids[comp[t]] in solved]
        if not roles:
            continue
        ids = {instance.treatment_ids[t] for t in comp}
        # + the language: a role no plan keeps carries the diagnosis, a sentence in it
        key = (_component_key(params_for_treatments(params, ids), ids, roles, closed)
               + f"|{current_language()}")
        remembered = _MEMO.get(instance, key)
        if remembered is not None:
            reasons += remembered
            continue
        found = _component_reasons(instance, params, comp, roles, key, store,
                                   (required, closed))
        if found is None:  # cannot happen for a solved component; nothing to compare
            continue
        _MEMO.put(instance, key, found)
        reasons += found
    return sorted(reasons, key=lambda r: (r.site_id, r.intervention_id))


def _component_reasons(instance: Instance, params: SolveParams, comp: list[int],
                       roles: list[tuple[int, int]], key: str, store: ReasonStore | None,
                       masks: tuple[np.ndarray, np.ndarray]) -> list[RoleReason] | None:
    """The reasons of one component's lost ``roles`` (instance indices): from ``store``, or
    one fresh solve per role with it forced open, priced against the component's fresh plan
    (None without one). Stored when every solve ended proven. ``masks``: the required
    volumes and the scenario's closed roles (required_matrix, force_masks)."""
    sub = instance.with_treatments(comp)
    stored_key = stored_reasons_key(sub, key) if store is not None else None
    if store is not None and stored_key is not None:
        kept = store.get(stored_key)  # another process worked them out
        if kept is not None:
            return kept
    ids = {instance.treatment_ids[t] for t in comp}
    required, closed = masks
    sub_params = params_for_treatments(params, ids)
    # each answer is a fresh solve (what a same_as_fresh what-if session gives)
    base = _component_plan(instance, sub, sub_params,
                           _component_key(sub_params, ids, [], closed))
    if base.flow is None:
        return None
    proven = base.status == SolveStatus.OPTIMAL
    found: list[RoleReason] = []
    for s, t in roles:
        tid = instance.treatment_ids[t]
        reason = RoleReason(instance.site_ids[s], tid, float(instance.baseline_volume[s, t]),
                            float(required[s, t]), keep_feasible=False,
                            forced_closed=bool(closed[s, t]))
        forced = solve(sub, _forced_open(sub_params, instance.site_ids[s], tid), max_workers=1)
        proven = proven and forced.status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE)
        if forced.feasible:
            reason.keep_feasible = True
            _price(sub, base, forced, s, comp.index(t), reason)
        else:
            reason.infeasible_reason = str((forced.diagnosis or {}).get("reason", "")) or None
        found.append(reason)
    if store is not None and stored_key is not None and proven:
        store.put(stored_key, found)
    return found
