"""herschik: plan the reallocation of complex hospital care in the Netherlands.

The library's front door. A planner's analyst can, without the command line::

    import herschik

    dataset = herschik.load_dataset("municipalities")       # or None, "example", a folder
    instance = herschik.build_instance(dataset, "midden")
    result = herschik.solve(instance, herschik.SolveParams(margin=0.1))
    result.status, result.kpis["patients_moved"], result.violations
    result.write("results/midden")                            # what `herschik solve` writes

    result = herschik.run_scenario("scenarios/tranche1.toml", "midden", dataset=dataset)

The parts live below it: :mod:`herschik.geo` (data, road network, travel times, GIS export),
:mod:`herschik.optimiser` (the MIP) and :mod:`herschik.scenarios` (scenario files, runs,
sweeps, reports and the CLI). Names are loaded on first use, so ``import herschik`` is cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "load_dataset": ("herschik.geo.dataset", "load_dataset"),
    "Dataset": ("herschik.geo.dataset", "Dataset"),
    "build_instance": ("herschik.scenarios.assemble", "build_instance"),
    "Instance": ("herschik.optimiser.instance", "Instance"),
    "SolveParams": ("herschik.optimiser.params", "SolveParams"),
    "SolveStatus": ("herschik.optimiser.status", "SolveStatus"),
    "RunResult": ("herschik.scenarios.run", "RunResult"),
    "load_scenario": ("herschik.scenarios.scenario.file", "load_scenario"),
}

__all__ = [
    "Dataset",
    "Instance",
    "RunResult",
    "SolveParams",
    "SolveStatus",
    "__version__",
    "build_instance",
    "load_dataset",
    "load_scenario",
    "run_scenario",
    "solve",
]

if TYPE_CHECKING:
    from herschik.geo.dataset import Dataset, load_dataset
    from herschik.optimiser.instance import Instance
    from herschik.optimiser.params import SolveParams
    from herschik.optimiser.status import SolveStatus
    from herschik.scenarios.assemble import build_instance
    from herschik.scenarios.run import RunResult
    from herschik.scenarios.scenario.file import load_scenario


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'herschik' has no attribute {name!r}")


def solve(instance: Instance, params: SolveParams | None = None, **overrides: Any) -> RunResult:
    """Solve one instance and verify the result: the same orchestration as ``herschik solve``.

    ``params`` defaults to :class:`SolveParams` defaults; keyword ``overrides`` replace single
    fields (``herschik.solve(instance, margin=0.1)``). The returned :class:`RunResult` carries
    ``status``, ``kpis``, ``violations`` (empty when the independent verifier found nothing),
    the contract tables, and ``write(dir)``.
    """
    from herschik.optimiser.params import SolveParams
    from herschik.scenarios.run import solve_verified

    params = SolveParams() if params is None else params
    if overrides:
        params = SolveParams.model_validate({**params.model_dump(), **overrides})
    return solve_verified(instance, params)


def run_scenario(
    path: str | Path, region_id: str, *, dataset: Dataset | None = None, network: Any = None
) -> RunResult:
    """Solve one region under a scenario file (one grid point; use sweeps for grids).

    ``dataset`` defaults to the embedded national default. Growth, norm multipliers and
    closures of the file are applied exactly as ``herschik solve --scenario`` applies them.
    """
    from herschik.geo.dataset import load_dataset
    from herschik.scenarios.run import scenario_instance, solve_verified
    from herschik.scenarios.scenario.file import load_scenario

    resolved = load_scenario(path).expand()
    if len(resolved) != 1:
        raise ValueError(f"{path}: a grid of {len(resolved)} runs; use herschik sweep for grids")
    dataset = load_dataset() if dataset is None else dataset
    instance, params, info = scenario_instance(dataset, region_id, resolved[0], network)
    return solve_verified(instance, params, scenario_info=info)
