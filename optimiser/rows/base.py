"""The registry of model families and the three contexts a family works in.

A *family* is one concept of the model (a block of columns or of rows): its builder adds its
columns / rows to a :class:`Build`, its check recomputes the constraint for the independent
verifier from the inputs and a solution (:class:`CheckContext`), and its diagnosis reasons say
why it makes a scenario infeasible (:class:`DiagnosisContext`). Builders and reasons read the
model's shared rules (candidates, capacities, required volumes, allowed pairs) from their
context, computed once by ``formulation.build_arrays`` / ``diagnose.diagnose``; checks share
no code with them and recompute everything from ``Instance`` + ``SolveParams`` + flows/keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from herschik.i18n import current_language, format_number

from ..instance import Instance
from ..params import SolveParams
from ..tolerances import REACHES_REQUIRED_TOL, ROUNDING_TOL
from .keepsets import KeepSetReader

_EMPTY_INT = np.zeros(0, dtype=np.int64)


def concat_int(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenation of int64 index arrays (an empty int64 array for no parts)."""
    return np.concatenate(parts) if parts else _EMPTY_INT.copy()


class ColumnCounts:
    """Column counts of a model with flow columns ``x_area`` and keep columns ``y_site``
    (shared by the builder's context and the finished MipArrays)."""

    x_area: np.ndarray
    y_site: np.ndarray

    @property
    def n_x(self) -> int:
        return int(self.x_area.shape[0])

    @property
    def n_y(self) -> int:
        return int(self.y_site.shape[0])


@dataclass
class Build(ColumnCounts):
    """The model while it is built: the shared rules, the column blocks and the rows so far.

    ``formulation.build_arrays`` fills the rules, the families add the columns (in the order
    x, y, stay) and then the rows, the objective terms the costs.
    """

    instance: Instance
    params: SolveParams
    treatments: tuple[int, ...]
    linking: str
    # shared rules (formulation.py), (S, T) unless noted
    candidate: np.ndarray
    capacity: np.ndarray
    required: np.ndarray  # norm x (1 + margin); 0 where waived, nan without a norm
    waived: list[int]  # treatments whose norm is waived (small_region_rule = "one_provider")
    force_keep: np.ndarray
    force_close: np.ndarray
    allowed: Callable[[int], np.ndarray]  # t -> allowed (A, S) pairs (formulation.PairRule)
    weights: dict[str, float]  # objective weights (formulation.objective_weights)
    self_sufficient: Callable[[], np.ndarray]  # formulation.self_sufficient_matrix, lazily
    # x block: flows of allowed (area, site, treatment) pairs
    x_area: np.ndarray = field(default_factory=_EMPTY_INT.copy)
    x_site: np.ndarray = field(default_factory=_EMPTY_INT.copy)
    x_treat: np.ndarray = field(default_factory=_EMPTY_INT.copy)
    x_d: np.ndarray = field(default_factory=lambda: np.zeros(0))
    x_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # y block: keep decisions of (site, treatment) pairs with a norm
    y_start: int = 0
    y_site: np.ndarray = field(default_factory=_EMPTY_INT.copy)
    y_treat: np.ndarray = field(default_factory=_EMPTY_INT.copy)
    y_col: np.ndarray = field(default_factory=_EMPTY_INT.copy)  # (S, T) column or -1
    y_lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y_upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # stay block: patients who stay at their baseline site (moved / planner objectives)
    stay_start: int = 0
    stay_x: np.ndarray = field(default_factory=_EMPTY_INT.copy)
    stay_ub: np.ndarray = field(default_factory=lambda: np.zeros(0))
    conflicts: list[str] = field(default_factory=list)
    # rows as COO triplets, per family
    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    lower: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    families: dict[str, tuple[int, int]] = field(default_factory=dict)
    n_rows: int = 0
    # objective: min c @ v + offset; the planner's unnecessary moves as moves_c @ v + offset
    c: np.ndarray = field(default_factory=lambda: np.zeros(0))
    offset: float = 0.0
    moves_c: np.ndarray | None = None
    moves_offset: float = 0.0
    stay_y: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.instance.shape

    @property
    def n_stay(self) -> int:
        return int(self.stay_x.shape[0])

    @property
    def n_cols(self) -> int:
        return self.n_x + self.n_y + self.n_stay

    @property
    def use_stay(self) -> bool:
        """Stay columns exist (the moved or the planner objective has a weight)."""
        return self.weights["moved"] != 0.0 or self.weights["planner"] != 0.0

    @property
    def has_norm(self) -> np.ndarray:
        return ~np.isnan(self.required)

    def add_rows(self, name: str, row: np.ndarray, col: np.ndarray, val: np.ndarray,
                 lo: np.ndarray, hi: np.ndarray) -> None:
        """Append family ``name``: ``lo <= A x <= hi`` with A[row, col] = val, rows from 0."""
        self.rows.append(row + self.n_rows)
        self.cols.append(col)
        self.vals.append(val)
        self.lower.append(lo)
        self.upper.append(hi)
        self.families[name] = (self.n_rows, self.n_rows + lo.shape[0])
        self.n_rows += lo.shape[0]

    def add_no_rows(self, name: str) -> None:
        """Register family ``name`` with an empty row range (the parameter is unset)."""
        empty = np.zeros(0)
        self.add_rows(name, _EMPTY_INT.copy(), _EMPTY_INT.copy(), empty, empty, empty)

    def rows_per_group(self, name: str, groups: list[np.ndarray], lo: np.ndarray,
                       hi: np.ndarray) -> None:
        """One row per group of columns, coefficient 1 on each (e.g. Σ_s y[s, t] <= P)."""
        self.add_rows(
            name,
            concat_int([np.full(g.shape[0], i, dtype=np.int64) for i, g in enumerate(groups)]),
            concat_int(groups),
            np.ones(sum(g.shape[0] for g in groups)),
            lo, hi,
        )


@dataclass
class CheckContext:
    """What a verifier check sees: the inputs and a decoded solution, nothing of the model."""

    instance: Instance
    params: SolveParams
    flow: np.ndarray  # (A, S, T) patients per year
    keep: np.ndarray  # (S, T) bool
    area_labels: list[str]
    site_labels: list[str]

    @property
    def treatment_ids(self) -> tuple[str, ...]:
        return self.instance.treatment_ids

    @property
    def volume(self) -> np.ndarray:
        """Patients per (site, treatment) of the solution."""
        return self.flow.sum(axis=0)


@dataclass
class DiagnosisContext:
    """What a diagnosis reason sees: the infeasible treatments and the model's shared rules.

    ``reasons`` holds the sentences found so far (reasons run in ``rank`` order);
    ``feasible(params, treatments)`` re-solves a variant for feasibility within the reasons'
    time budget (``None``: undecided in time).
    """

    instance: Instance
    params: SolveParams
    treatments: list[int]
    candidate: np.ndarray  # (S, T)
    capacity: np.ndarray  # (S, T)
    required: np.ndarray  # (S, T), nan without a norm
    force_keep: np.ndarray
    force_close: np.ndarray
    allowed: np.ndarray  # (A, S, T) allowed pairs
    feasible: Callable[[SolveParams, list[int]], bool | None]
    reasons: list[str] = field(default_factory=list)

    @cached_property
    def reach(self) -> np.ndarray:
        """Demand that may reach each (site, treatment) within the limits."""
        return np.einsum("ast,at->st", self.allowed.astype(float), self.instance.demand)

    @cached_property
    def usable(self) -> np.ndarray:
        """What a site could treat at most: reachable demand within its capacity."""
        return np.minimum(self.reach, self.capacity)

    @cached_property
    def viable(self) -> np.ndarray:
        """(S, T): a candidate that has no norm or can reach it with the demand in reach."""
        normed = ~np.isnan(self.required)
        return self.candidate & (~normed | (self.usable >= self.required - REACHES_REQUIRED_TOL))

    @cached_property
    def no_site(self) -> np.ndarray:
        """(A, T): areas with demand but no allowed site at all."""
        return (self.instance.demand > 0) & ~self.allowed.any(axis=1)

    def tlabel(self, t: int) -> str:
        return self.instance.treatment_label(t)

    def slabel(self, s: int) -> str:
        return self.instance.site_label(s)


#: most sites / areas listed in one diagnosis detail
MAX_LISTED = 20


def fmt(x: float) -> str:
    """A number for a diagnosis sentence: whole numbers without decimals; the language's
    decimal mark (English as it was, Dutch 28,1)."""
    digits = 0 if abs(x - round(x)) < ROUNDING_TOL else 1
    return f"{x:.{digits}f}" if current_language() == "en" else format_number(x, digits)


@dataclass(frozen=True)
class Finding:
    """One diagnosis reason: a sentence and, under ``key``, its structured details."""

    sentence: str
    key: str | None = None
    details: Any = None


@dataclass(frozen=True)
class Reason:
    """A diagnosis reason of a family; reasons run (and are listed) in ``rank`` order."""

    rank: int
    find: Callable[[DiagnosisContext], Finding | None]


@dataclass(frozen=True)
class Family:
    """One family of the model: columns or rows, the parameters it reads, check and reasons.

    ``build`` is ``None`` where another family's columns enforce the concept; ``check`` is
    ``None`` only where the rows are the objective's bookkeeping or another family's check
    covers them (``checked_by``). ``keep_sets``: how the exact keep-set algorithms read the
    family's rows or columns (optimiser/rows/keepsets.py); ``None``: they cannot, and a model
    with any of its rows is solved by branch and bound.
    """

    name: str
    kind: Literal["columns", "rows"]
    params: tuple[str, ...]
    build: Callable[[Build], None] | None
    check: Callable[[CheckContext], list[str]] | None
    reasons: tuple[Reason, ...] = ()
    checked_by: str | None = None
    doc: str = ""
    keep_sets: KeepSetReader | None = None


@dataclass(frozen=True)
class ObjectiveTerm:
    """One objective term: adds ``weight x`` its costs to ``Build.c`` / ``Build.offset``."""

    name: str
    add: Callable[[Build, float], None]
    doc: str = ""
