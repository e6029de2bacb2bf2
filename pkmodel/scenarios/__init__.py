"""Dosing-scenario simulation over virtual populations, chunked with Dask.

* populations: :class:`VirtualPopulation`, :class:`CovariateDistribution`,
  :data:`IBD_MAINTENANCE` (the documented default), :func:`population_from_table`;
* regimen to fitted strategy: :func:`map_regimens`, :class:`RegimenStrategy`;
* simulation: :func:`simulate_scenarios`; summaries: :func:`scenario_table`.

See ``docs/scenarios.md``.
"""

from pkmodel.response.strategies import RegimenStrategy, map_regimens
from pkmodel.scenarios.populations import (
    IBD_MAINTENANCE,
    CovariateDistribution,
    VirtualPopulation,
    population_from_table,
)
from pkmodel.scenarios.simulate import simulate_scenarios
from pkmodel.scenarios.summaries import scenario_table

__all__ = [
    "IBD_MAINTENANCE",
    "CovariateDistribution",
    "RegimenStrategy",
    "VirtualPopulation",
    "map_regimens",
    "population_from_table",
    "scenario_table",
    "simulate_scenarios",
]
