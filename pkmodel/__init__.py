"""pkmodel: Bayesian pharmacokinetic and exposure-response modelling of infliximab intensification.

Research software: it supports research on therapeutic drug monitoring, not bedside decisions.

The data layer is imported eagerly; the PyMC-based layers are imported on first use so that
``import pkmodel`` and the command line stay quick. ``pkmodel.load(path)`` reads any saved fit
(a remission fit, a population PK fit) as the fitted model of its kind.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from pkmodel.data import (
    ClassicalResult,
    Cohort,
    CohortSummary,
    classical_analysis,
    load_ungar2019,
    read_cohort,
    theophylline,
)
from pkmodel.disclaimer import DISCLAIMER
from pkmodel.errors import (
    CohortError,
    CohortWarning,
    ConstantOutcomeWarning,
    ConvergenceWarning,
    FitFileError,
    PKDataError,
    PkmodelError,
    PredictionError,
    SamplingError,
    SeparationWarning,
    SpecificationError,
)

try:
    __version__ = version("pkmodel")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_LAZY = {
    "load": "pkmodel.fits",
    "RemissionModel": "pkmodel.response",
    "Priors": "pkmodel.response",
    "RemissionFit": "pkmodel.response",
    "load_fit": "pkmodel.response",
    "fit_population": "pkmodel.pk.population",
    "PopulationSpec": "pkmodel.pk.population",
    "PopulationFit": "pkmodel.pk.population",
    "load_population_fit": "pkmodel.pk.population",
    "simulate_scenarios": "pkmodel.scenarios",
    "compare": "pkmodel.response",
    "summarize_curve": "pkmodel.response",
}

__all__ = [
    "DISCLAIMER",
    "ClassicalResult",
    "Cohort",
    "CohortError",
    "CohortSummary",
    "CohortWarning",
    "ConstantOutcomeWarning",
    "ConvergenceWarning",
    "FitFileError",
    "PKDataError",
    "PkmodelError",
    "PredictionError",
    "SamplingError",
    "SeparationWarning",
    "SpecificationError",
    "__version__",
    "classical_analysis",
    "load_ungar2019",
    "read_cohort",
    "theophylline",
    *_LAZY,
]


def __getattr__(name: str):
    if name in ("pk", "response", "plots"):
        return importlib.import_module(f"pkmodel.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pkmodel' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The eager names, the lazy ones and the sub-packages, so that editors and ``dir()`` see
    what ``pkmodel.X`` gives."""
    return sorted({*globals(), *_LAZY, "pk", "response", "plots"})
