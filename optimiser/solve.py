"""``solve(instance, params) -> Solution``: decomposition by treatment, parallel sub-MIPs.

Treatments are independent sub-problems: every row of the model mentions one treatment only,
except ``bundles`` (couples the bundled treatments at each site) and ``max_loss_share`` (couples
all treatments of a site). :func:`treatment_components` finds the connected components; each is
built and solved as its own model (optimiser/component.py, with its objective's strategy from
optimiser/strategies.py and optimiser/planner.py), on several threads when there are several
(optimiser/scheduling.py). Results are assembled in component order (optimiser/decode.py), so
they do not depend on the number of threads. Once one sub-problem proves infeasible the
scenario is infeasible, and the others only check feasibility
(``SolveStatus.FEASIBLE_NOT_OPTIMISED``), so an infeasible scenario costs little.
"""

from __future__ import annotations

import threading

from .algorithms import BRANCH_AND_BOUND_ONLY, DEFAULT_ALGORITHMS, Algorithms
from .backends import INTERRUPT
from .component import solve_component
from .decode import assemble_solution
from .decomposition import treatment_components
from .instance import Instance
from .params import SolveParams
from .scheduling import run_components
from .solution import Solution
from .subproblem import (
    HIGHS_MIP_OPTIONS,
    HIGHS_PRESOLVE,
    ComponentResult,
)
from .tolerances import PROVEN_OPTIMAL_GAP


def solve(instance: Instance, params: SolveParams, start: Solution | None = None,
          max_workers: int | None = None,
          algorithms: Algorithms | None = None, partial: bool = True) -> Solution:
    """Solve the reallocation MIP of ``instance`` under ``params``.

    Sub-problems run side by side on ``params.threads`` (default: every core) threads, at most
    ``max_workers`` (a sweep that already runs one solve per core passes 1). Neither changes
    the result.

    ``start`` (optional) is a known solution of the same instance that HiGHS starts from (used
    to seed the national joint solve with the regional solutions); it changes no result that
    is proven optimal.

    Never raises on an infeasible scenario: the returned Solution has status ``infeasible`` and
    a plain-words ``diagnosis``. Raises ``RuntimeError`` only if both solvers fail.

    ``partial`` (default): when some treatments are infeasible, the others are still optimised
    and the Solution is ``partially_infeasible``: flows and keeps of the solved treatments
    (zero for the others), the diagnosis of the infeasible ones. ``partial=False``: the others
    stop at a feasibility check once one is infeasible (faster; status ``infeasible``).
    """
    comps, explanation, results = solve_components(instance, params, start, max_workers,
                                                   early_stop=not partial,
                                                   algorithms=algorithms)
    return assemble_solution(instance, params, comps, explanation, results, partial=partial)


def solve_components(instance: Instance, params: SolveParams, start: Solution | None = None,
                     max_workers: int | None = None, early_stop: bool = True,
                     algorithms: Algorithms | None = None
                     ) -> tuple[list[list[int]], str, list[ComponentResult]]:
    """The components, their explanation and their results in component order (see solve).

    ``early_stop=False`` optimises every component even when one is infeasible (a what-if
    session re-uses them later)."""
    comps, explanation = treatment_components(instance, params)
    chosen = DEFAULT_ALGORITHMS if algorithms is None else algorithms
    # HiGHS always runs single-threaded, parallelism comes from solving sub-problems side by
    # side: results must not depend on the core count (docs/decisions/solver-settings.md).
    threads = 1
    # One infeasible sub-problem makes the scenario infeasible: the others then stop optimising.
    stop = threading.Event() if len(comps) > 1 and early_stop else None

    def run(i: int) -> ComponentResult:
        if INTERRUPT.is_set():
            raise KeyboardInterrupt("interrupted")
        return solve_component(instance, params, comps[i], threads, start, stop, chosen)

    return comps, explanation, run_components(instance, params, comps, run, stop, max_workers)


__all__ = ["BRANCH_AND_BOUND_ONLY", "DEFAULT_ALGORITHMS", "HIGHS_MIP_OPTIONS", "HIGHS_PRESOLVE",
           "PROVEN_OPTIMAL_GAP", "Algorithms", "ComponentResult", "assemble_solution", "solve",
           "solve_components", "treatment_components"]
