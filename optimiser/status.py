"""The status of a solve, of a sub-problem and of a solver back-end: one enum, one exit code map.

``SolveStatus`` is a ``str`` enum: ``SolveStatus.OPTIMAL == "optimal"``, and ``str()``,
f-strings and JSON give the bare value, so summary.json, runs.csv and the console read exactly
as they did when statuses were plain strings.
"""

from __future__ import annotations

from enum import Enum

from herschik.errors import EXIT_INFEASIBLE, EXIT_OK, EXIT_TIME_LIMIT_NO_SOLUTION

__all__ = ["SolveStatus", "exit_code_for_status"]


class SolveStatus(str, Enum):
    """What a solve (``Solution.status``), a sub-problem or a back-end reports."""

    #: proven optimal within the default relative gap (tolerances.PROVEN_OPTIMAL_GAP)
    OPTIMAL = "optimal"
    #: a feasible plan, not proven optimal (a time or gap limit stopped the search)
    FEASIBLE = "feasible"
    #: no plan meets every rule (the solution carries a diagnosis)
    INFEASIBLE = "infeasible"
    #: solve only: some treatments have no plan that meets every rule (diagnosed), the
    #: others are solved and their plan is kept (each treatment's status: Solution.subproblems)
    PARTIALLY_INFEASIBLE = "partially_infeasible"
    #: a limit ran out before any feasible plan was found: feasibility undecided
    TIME_LIMIT_NO_SOLUTION = "time_limit_no_solution"
    #: sub-problem only: another one proved infeasible, so this one was only checked for
    #: feasibility (and is feasible)
    FEASIBLE_NOT_OPTIMISED = "feasible_not_optimised"
    #: sub-problem only: as FEASIBLE_NOT_OPTIMISED, but that check hit the time limit
    NOT_DECIDED = "not_decided"
    #: back-end only: the solver failed (the caller falls back to CBC or raises)
    ERROR = "error"

    def __str__(self) -> str:  # the bare value, as the plain strings printed before
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def solved(self) -> bool:
        """A plan exists (optimal or feasible)."""
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


#: the CLI's exit code per solve status (any other status, e.g. optimal or feasible, exits 0)
_EXIT_CODES: dict[str, int] = {
    SolveStatus.INFEASIBLE: EXIT_INFEASIBLE,
    SolveStatus.PARTIALLY_INFEASIBLE: EXIT_INFEASIBLE,
    SolveStatus.TIME_LIMIT_NO_SOLUTION: EXIT_TIME_LIMIT_NO_SOLUTION,
}


def exit_code_for_status(status: str) -> int:
    """The exit code of a finished solve with ``status`` (a SolveStatus or its string)."""
    return _EXIT_CODES.get(status, EXIT_OK)


#: sub-problem statuses of a component only checked for feasibility (another one is infeasible)
FEASIBILITY_ONLY: tuple[SolveStatus, ...] = (SolveStatus.FEASIBLE_NOT_OPTIMISED,
                                             SolveStatus.NOT_DECIDED)
