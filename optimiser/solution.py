"""What a solve returns: decisions, flows, status, timings and (when infeasible) a diagnosis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Status = Literal["optimal", "feasible", "infeasible"]


@dataclass
class Solution:
    """Result of :func:`optimiser.solve.solve` on an instance.

    ``keep[s, t]`` is True when site ``s`` provides treatment ``t`` after reallocation;
    ``flow[a, s, t]`` patients per year of area ``a`` treated at ``s``. For an infeasible
    scenario both are ``None`` and ``diagnosis`` explains why.
    """

    status: Status
    solver: str
    objective: float | None = None
    mip_gap: float | None = None
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

    @property
    def feasible(self) -> bool:
        return self.status in ("optimal", "feasible")
