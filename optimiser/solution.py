"""What a solve returns: decisions, flows, status, timings and (when infeasible) a diagnosis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .status import SolveStatus


@dataclass
class Solution:
    """Result of :func:`optimiser.solve.solve` on an instance.

    ``keep[s, t]`` is True when site ``s`` provides treatment ``t`` after reallocation;
    ``flow[a, s, t]`` patients per year of area ``a`` treated at ``s``. For an infeasible
    scenario both are ``None`` and ``diagnosis`` explains why; likewise for
    ``time_limit_no_solution`` (the time limit ran out before any feasible solution was found:
    feasibility undecided).
    """

    #: OPTIMAL, FEASIBLE, INFEASIBLE or TIME_LIMIT_NO_SOLUTION (a plain string is converted)
    status: SolveStatus
    solver: str
    objective: float | None = None
    #: worst relative gap of the sub-problems (the solver's real gap, not a tolerance)
    mip_gap: float | None = None
    #: the solver's proven bound on the objective: the sum of the sub-problems' dual bounds
    mip_bound: float | None = None
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    keep: np.ndarray | None = None
    flow: np.ndarray | None = None
    diagnosis: dict[str, Any] | None = None
    #: one entry per independent sub-problem: treatments, status, gap, sizes, seconds
    subproblems: list[dict[str, Any]] = field(default_factory=list)
    #: why the model was or was not split by treatment
    decomposition: str = ""
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = SolveStatus(self.status)

    @property
    def feasible(self) -> bool:
        return self.status.solved
