"""The model as a registry of families: each adds its columns or rows, has its verifier check,
its diagnosis reasons and says how the exact keep-set algorithms read it (see :mod:`.base` and
:mod:`.keepsets`; the recipe is in docs/ARCHITECTURE.md).

``FAMILIES`` is in build order: the column blocks x, y, stay first, then the row families in
the order of the rows of the matrix (``formulation.build_arrays`` iterates it; the verifier
runs the checks and the diagnosis the reasons from it). ``OBJECTIVE_TERMS`` likewise.
"""

from __future__ import annotations

from .base import Family, ObjectiveTerm, Reason
from .capacity import CAPACITY
from .column_families import FLOWS, KEEPS, STAYS
from .coupling import BUNDLE, LOSS_SHARE
from .demand import DEMAND
from .max_providers import MAX_PROVIDERS
from .objective import OBJECTIVE_TERMS, STAY
from .phase import MOVES_CEILING, PROVIDERS_FLOOR, STAY_FULL
from .volume import LINK, LINK_PAIR, MIN_VOLUME, ONE_PROVIDER

FAMILIES: tuple[Family, ...] = (
    FLOWS, KEEPS, STAYS,
    DEMAND, MIN_VOLUME, LINK, LINK_PAIR, CAPACITY, BUNDLE, ONE_PROVIDER, LOSS_SHARE, STAY,
    MAX_PROVIDERS,
)

#: rows that the lexicographic strategies (optimiser/strategies.py, planner.py) append for
#: their second phase; only their keep-set readers matter (no builder, check or reason)
PHASE_FAMILIES: tuple[Family, ...] = (PROVIDERS_FLOOR, MOVES_CEILING, STAY_FULL)
PHASE_ROWS: tuple[str, ...] = tuple(f.name for f in PHASE_FAMILIES)

#: every row family name, in row order (the phase rows last)
ROW_FAMILIES: tuple[str, ...] = tuple(
    f.name for f in FAMILIES if f.kind == "rows") + PHASE_ROWS


def family(name: str) -> Family:
    """The registered family ``name`` (KeyError if there is none)."""
    for entry in FAMILIES:
        if entry.name == name:
            return entry
    raise KeyError(name)


def reasons() -> list[Reason]:
    """Every family's diagnosis reasons, in the order a diagnosis lists them."""
    return sorted((r for f in FAMILIES for r in f.reasons), key=lambda r: r.rank)


__all__ = ["FAMILIES", "OBJECTIVE_TERMS", "PHASE_FAMILIES", "PHASE_ROWS", "ROW_FAMILIES", "Family",
           "ObjectiveTerm", "Reason", "family", "reasons"]
