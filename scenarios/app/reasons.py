"""Why a hospital loses a treatment, worked out when the planner asks (not with every plan).

Each reason is a fresh re-solve with the role forced open (optimiser/reasons.py
``lost_role_reasons``, the CLI's function for hospital_changes.csv): in a large region that
is seconds for a whole plan, so a plan is answered without them and the page asks for one
hospital's reasons when the planner opens it. They are worked out once per plan and hospital
and kept with the plan (:class:`PlanReasons`, language-free: the words are written per
request); an export fills hospital_changes.csv's reason columns from the same reasons, so
the app's tables are still the CLI's byte for byte.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Collection
from typing import Any

from herschik.optimiser.reasons import RoleReason, lost_role_reasons
from herschik.optimiser.results import with_reasons
from herschik.scenarios.reason_words import moves_from_text, reason_sentence
from herschik.scenarios.run import RunResult, site_names

from herschik.i18n import use_language


@dataclasses.dataclass
class PlanReasons:
    """The reasons of one plan worked out so far, per hospital (site id -> its lost roles)."""

    by_site: dict[str, list[RoleReason]] = dataclasses.field(default_factory=dict)
    #: the plan's run with hospital_changes.csv's reason columns filled (for an export)
    full_run: RunResult | None = None


class ReasonCache:
    """Works out and keeps reasons per plan and hospital (thread-safe).

    One lock for all plans: two requests for the same hospital compute it once, and at most
    one reason computation runs at a time. A solve does not wait for it (the app's solve lock
    is another), so opening a hospital never holds up the planner's next change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def site_reasons(self, run: RunResult, cache: PlanReasons, site_ids: Collection[str]
                     ) -> dict[str, list[RoleReason]]:
        """The lost roles' reasons of ``site_ids`` in ``run``'s plan (computed once)."""
        with self._lock:
            missing = sorted(set(site_ids) - set(cache.by_site))
            if missing:
                found = lost_role_reasons(run.instance, run.params, run.solution,
                                          site_ids=missing)
                for site in missing:
                    cache.by_site[site] = [r for r in found if r.site_id == site]
            return {site: list(cache.by_site[site]) for site in site_ids}

    def run_with_reasons(self, run: RunResult, cache: PlanReasons, language: str) -> RunResult:
        """``run`` with hospital_changes' reason columns filled, in ``language``: what
        :func:`herschik.scenarios.run.verified_result` gives with ``reasons=True``."""
        if run.hospital_changes is None or run.solution.flow is None:
            return run
        reasons = self.site_reasons(run, cache, run.instance.site_ids)
        with self._lock:
            if cache.full_run is None:
                names = site_names(run.instance)
                with use_language(language):
                    changes = with_reasons(
                        run.hospital_changes, [r for site in run.instance.site_ids
                                               for r in reasons[site]],
                        lambda r: reason_sentence(r, names),
                        lambda r: moves_from_text(r, names))
                cache.full_run = dataclasses.replace(run, hospital_changes=changes)
            return cache.full_run


def reason_rows(run: RunResult, reasons: list[RoleReason]) -> list[dict[str, Any]]:
    """One hospital's reasons as the page shows them, in the current language: the sentence
    of hospital_changes.csv's ``reason`` column and its numbers (``intervention_name`` as
    the hospital rows have it: the page translates it)."""
    names = site_names(run.instance)
    treatments = {t.id: t.name or t.id for t in run.instance.treatments}
    return [{
        "intervention_id": r.intervention_id,
        "intervention_name": treatments[r.intervention_id],
        "reason": reason_sentence(r, names),
        "codes": r.codes,
        "keep_feasible": r.keep_feasible,
        "keep_cost_moves": r.keep_cost_moves,
        "keep_cost_patient_min": r.keep_cost_patient_min,
        "keep_moves_from": moves_from_text(r, names),
        "keep_closes": [names.get(s, s) for s in r.keep_closes],
    } for r in reasons]
