"""The exact keep-set algorithms read a model only through the row-family registry.

Every family says how they read its rows (``Family.keep_sets``, optimiser/rows/keepsets.py). A
new family that declares nothing must switch them off for any model with its rows: the solve
falls back to branch and bound and finds the same optimum. Registered here without touching
the global registry: ``build_arrays(..., families=FAMILIES + (family,))``.
"""

from __future__ import annotations

import numpy as np
import pytest
from herschik.optimiser.algorithms import DEFAULT_ALGORITHMS
from herschik.optimiser.component import solve_built_component
from herschik.optimiser.decode import assemble_solution
from herschik.optimiser.feasibility import (
    keep_set_feasible,
    read_keep_set_model,
    treatment_keep_sets,
)
from herschik.optimiser.formulation import MipArrays, build_arrays
from herschik.optimiser.instance import Instance
from herschik.optimiser.keepset_search import KEEP_SET_SEARCH, solve_by_keep_sets
from herschik.optimiser.params import SolveParams
from herschik.optimiser.rows import FAMILIES, PHASE_FAMILIES, Family
from herschik.optimiser.rows.base import Build
from herschik.optimiser.solution import Solution
from herschik.optimiser.strategies import ComponentContext
from herschik.optimiser.synthetic import synthetic_instance
from herschik.optimiser.verify import verify


def _build_total_flow(b: Build) -> None:
    """Σ flow <= twice the demand: one row over every flow that never binds."""
    total = float(b.instance.demand[:, list(b.treatments)].sum())
    b.add_rows("total_flow", np.zeros(b.n_x, dtype=np.int64), np.arange(b.n_x), b.x_scale,
               np.array([-np.inf]), np.array([2.0 * total + 1.0]))


#: a family that declares no keep-set reader (as a new family does until it gets one)
UNDECLARED = Family("total_flow", "rows", (), _build_total_flow, None, checked_by="demand",
                    doc="test only: a non-binding row the keep-set algorithms cannot read")


def _solve(instance: Instance, params: SolveParams, arrays: MipArrays
           ) -> tuple[Solution, str | None]:
    ctx = ComponentContext(instance, params, [0], 1, None, None, arrays, 0.0,
                           DEFAULT_ALGORITHMS)
    result = solve_built_component(ctx, params.objective)
    solution = assemble_solution(instance, params, [[0]], "one treatment", [result])
    return solution, result.report.algorithm


def test_every_row_family_declares_how_the_exact_algorithms_read_it_or_not() -> None:
    """The families the algorithms cannot read are exactly the couplings and capacities (and
    the planner's phase-2 rows, which its own search reads from phase 1's model)."""
    unread = {f.name for f in (*FAMILIES, *PHASE_FAMILIES) if f.keep_sets is None}
    assert unread == {"capacity", "bundle", "loss_share", "moves_ceiling", "stay_full"}


@pytest.mark.parametrize("objective", ["travel", "moved", "providers", "planner"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_family_without_a_reader_falls_back_to_branch_and_bound(objective: str,
                                                                   seed: int) -> None:
    instance = synthetic_instance(n_areas=40, n_sites=6, n_treatments=1, seed=seed)
    params = SolveParams(objective=objective, mip_gap=0.0)
    plain = build_arrays(instance, params, [0])
    extended = build_arrays(instance, params, [0], families=(*FAMILIES, UNDECLARED))
    assert extended.n_rows == plain.n_rows + 1
    # the registry's own model is read, so the fast path is on ...
    assert read_keep_set_model(plain) is not None
    assert keep_set_feasible(plain) is True
    assert treatment_keep_sets(plain, 0) is not None
    # ... and one row of the undeclared family turns it off
    assert read_keep_set_model(extended) is None
    assert keep_set_feasible(extended) is None
    assert treatment_keep_sets(extended, 0) is None
    assert solve_by_keep_sets(extended, 0.0) is None

    fast, fast_algorithm = _solve(instance, params, plain)
    fallback, fallback_algorithm = _solve(instance, params, extended)
    assert fast_algorithm == KEEP_SET_SEARCH
    assert fallback_algorithm is None  # branch and bound solved it
    assert fast.status == fallback.status == "optimal"
    assert verify(fallback, instance, params) == []
    assert verify(fast, instance, params) == []
    assert fallback.objective == pytest.approx(fast.objective, rel=1e-6, abs=1e-6)
    assert fallback.flow is not None and fast.flow is not None
    if objective == "moved":
        return  # travel is only its tie-break there, below the solvers' tolerances
    travel = np.where(np.isfinite(instance.travel_min), instance.travel_min, 0.0)
    assert np.einsum("ast,as->", fallback.flow, travel) == pytest.approx(
        np.einsum("ast,as->", fast.flow, travel), rel=1e-6, abs=1e-4)


def test_rows_not_of_the_form_read_fall_back_too() -> None:
    """A declared family whose rows were changed (a min_volume row with another bound) is
    not read either: its reader says so."""
    instance = synthetic_instance(n_areas=40, n_sites=6, n_treatments=1, seed=1)
    arrays = build_arrays(instance, SolveParams(objective="travel"), [0])
    start, _ = arrays.row_families["min_volume"]
    arrays.row_lower = arrays.row_lower.copy()
    arrays.row_lower[start] = 1.0
    assert read_keep_set_model(arrays) is None
    assert keep_set_feasible(arrays) is None
