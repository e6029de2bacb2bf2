"""The Bayesian remission model: specification, fit, curves, thresholds, saved fits."""

from pkmodel.response.comparison import compare
from pkmodel.response.curves import summarize_curve
from pkmodel.response.diagnostics import Diagnostics
from pkmodel.response.fit import RemissionFit
from pkmodel.response.persistence import load_fit
from pkmodel.response.priors import Priors
from pkmodel.response.spec import RemissionModel

__all__ = [
    "Diagnostics",
    "Priors",
    "RemissionFit",
    "RemissionModel",
    "compare",
    "load_fit",
    "summarize_curve",
]
