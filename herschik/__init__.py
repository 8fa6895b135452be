"""herschik: plan the reallocation of complex hospital care in the Netherlands.

The library's front door. The parts live below it: :mod:`herschik.geo` (data, road network,
travel times, GIS export), :mod:`herschik.optimiser` (the MIP) and :mod:`herschik.scenarios`
(scenario files, runs, sweeps, reports and the CLI).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
