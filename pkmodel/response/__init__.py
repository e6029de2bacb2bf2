"""The Bayesian remission model: specification, fit, curves, thresholds, saved fits."""

from pkmodel.response.comparison import compare
from pkmodel.response.curves import summarize_curve
from pkmodel.response.diagnostics import Diagnostics
from pkmodel.response.fit import RemissionFit
from pkmodel.response.loading import load_fit
from pkmodel.response.predictor import DesignInfo, RemissionPredictor
from pkmodel.response.priors import Priors
from pkmodel.response.spec import RemissionModel
from pkmodel.response.thresholds import crossing_tl, futility_table

__all__ = [
    "DesignInfo",
    "Diagnostics",
    "Priors",
    "RemissionFit",
    "RemissionModel",
    "RemissionPredictor",
    "compare",
    "crossing_tl",
    "futility_table",
    "load_fit",
    "summarize_curve",
]
