"""The rows of a lexicographic objective's second phase (added by optimiser/strategies.py and
optimiser/planner.py, not by the builder): what the exact keep-set algorithms make of them.

* ``providers_floor``: Σ y >= phase 1's kept pairs, a cap on kept sites like ``max_providers``;
* ``moves_ceiling``: unnecessary moves <= phase 1's optimum, a row over flows and stays the
  keep-set feasibility test does not model (the planner's phase 2 has its own search,
  optimiser/keepset_phase2.py, which reads phase 1's model);
* ``stay_full``: every counted baseline flow stays (phase 2 with no unnecessary move): idem.
"""

from __future__ import annotations

from .base import Family
from .keepsets import read_cardinality

PROVIDERS_FLOOR = Family("providers_floor", "rows", ("objective",), None, None,
                         doc="phase 2 of providers keeps at least phase 1's kept pairs",
                         keep_sets=read_cardinality)
MOVES_CEILING = Family("moves_ceiling", "rows", ("objective",), None, None,
                       doc="phase 2 of planner: no more unnecessary moves than phase 1")
STAY_FULL = Family("stay_full", "rows", ("objective",), None, None,
                   doc="phase 2 of planner without unnecessary moves: counted flows stay")
