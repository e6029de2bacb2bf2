"""Infliximab population pharmacokinetics: models, regimens, simulation, individual estimation.

The public API:

* models: :class:`PopulationModel`, :data:`FASANMADE_2009_UC`, :data:`FASANMADE_2011_CD`,
  :data:`MODELS`, :func:`get_model`, :class:`PKParameters`;
* regimens and dosing histories: :class:`Regimen`, :data:`NAMED_REGIMENS`,
  :func:`parse_regimen`, :class:`DoseSchedule`;
* closed-form simulation: :func:`concentrations`, :func:`troughs`, :func:`steady_state_trough`,
  :func:`simulate`, :func:`steady_state_troughs`;
* covariates that change during therapy: :class:`CovariateHistory` (last value carried forward)
  and exact piecewise propagation, :func:`piecewise_concentrations`;
* individual Bayesian estimation and forecasts: :class:`Observations`,
  :func:`estimate_individual`, :class:`IndividualEstimate`, :func:`forecast_troughs`,
  :class:`TroughForecast`;
* NONMEM-style input: :func:`read_nonmem`, :class:`PKDataset`, :class:`PKSubject`.
"""

from pkmodel.pk.covariates import CovariateHistory
from pkmodel.pk.estimation import IndividualEstimate, estimate_individual
from pkmodel.pk.forecasting import TroughForecast, forecast_troughs
from pkmodel.pk.models import (
    FASANMADE_2009_UC,
    FASANMADE_2011_CD,
    MODELS,
    PKParameters,
    PopulationModel,
    get_model,
)
from pkmodel.pk.nonmem import PKDataset, PKSubject, read_nonmem
from pkmodel.pk.observations import Observations
from pkmodel.pk.regimens import NAMED_REGIMENS, Regimen, parse_regimen
from pkmodel.pk.schedules import DoseSchedule
from pkmodel.pk.simulation import (
    concentrations,
    piecewise_concentrations,
    simulate,
    steady_state_trough,
    steady_state_troughs,
    troughs,
)

__all__ = [
    "FASANMADE_2009_UC",
    "FASANMADE_2011_CD",
    "MODELS",
    "NAMED_REGIMENS",
    "CovariateHistory",
    "DoseSchedule",
    "IndividualEstimate",
    "Observations",
    "PKDataset",
    "PKParameters",
    "PKSubject",
    "PopulationModel",
    "Regimen",
    "TroughForecast",
    "concentrations",
    "estimate_individual",
    "forecast_troughs",
    "get_model",
    "parse_regimen",
    "piecewise_concentrations",
    "read_nonmem",
    "simulate",
    "steady_state_trough",
    "steady_state_troughs",
    "troughs",
]
