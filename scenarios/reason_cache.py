"""Lost-role reasons kept in the derived-data cache (:mod:`herschik.derived_cache`), so that a
planner who runs the same region and scenario again does not wait for one re-solve per lost
role (midden: 8 roles, ~0.2 s of CPU; noordoost at margin 0.2: 35 roles, several seconds).

A component's reasons are a function of its own instance, the parameters that reach its model
and its lost roles (optimiser/reasons.py); :func:`herschik.optimiser.reasons.stored_reasons_key`
hashes the instance's content, so any caller (the CLI, the library's ``herschik.solve``) hits
the same entry for the same model, and a changed dataset or scenario never does. The entry key
adds the source code that works the reasons out (:data:`REASON_CODE` and every herschik module
it imports: the whole optimiser, :func:`herschik.derived_cache.modules_digest`), the versions
of the solvers that answered, and the language of the run (a role no plan keeps carries its
diagnosis, a sentence in that language).
"""

from __future__ import annotations

import pickle

from herschik.optimiser.reasons import RoleReason

from herschik.derived_cache import entry_key, library_versions, read_entry, write_entry

#: the solvers whose answers are stored (a new version works the reasons out again)
_SOLVERS = ("highspy", "pulp")
#: the code that works the reasons out (with all it imports: the solver); a change elsewhere
#: in herschik (the report, the maps) keeps the stored reasons
REASON_CODE = ("herschik.scenarios.reason_cache", "herschik.optimiser.reasons")



class DerivedReasonStore:
    """A :class:`herschik.optimiser.reasons.ReasonStore` on the derived-data cache: a missing,
    damaged or foreign entry is None (worked out again), an unwritable cache is skipped."""

    def _key(self, key: str) -> str:
        return entry_key("reasons", [*library_versions(*_SOLVERS), key], code=REASON_CODE)

    def get(self, key: str) -> list[RoleReason] | None:
        payload = read_entry(self._key(key))
        if payload is None:
            return None
        try:
            value = pickle.loads(payload)
        except Exception:  # a damaged or incompatible entry: work the reasons out again
            return None
        if not isinstance(value, list) or not all(isinstance(r, RoleReason) for r in value):
            return None
        return value

    def put(self, key: str, reasons: list[RoleReason]) -> None:
        write_entry(self._key(key), pickle.dumps(reasons, protocol=pickle.HIGHEST_PROTOCOL))


DERIVED_REASONS = DerivedReasonStore()
