"""Infliximab population pharmacokinetics: models, regimens, simulation, individual estimation.

The public API:

* models: :class:`PopulationModel` (a structure, typical values, :class:`CovariateEffect` objects,
  variability, residual error), the published ones in :data:`MODELS` (:data:`FASANMADE_2009_UC`,
  :data:`FASANMADE_2011_CD`, :data:`FASANMADE_2011_PAEDIATRIC`, :data:`WOJCIECHOWSKI_2017`,
  :data:`DUBINSKY_2017`, :data:`AUBOURG_2015`), :func:`get_model`, :func:`resolve_model` (a name, a
  population fit's file or a model), :class:`PKParameters`;
* structures: :class:`LinearCompartmental` (one, two or three compartments; IV bolus, infusion
  or first-order absorption) and the :class:`Structure` protocol;
* regimens and dosing histories: :class:`Regimen`, :data:`NAMED_REGIMENS`,
  :func:`parse_regimen`, :class:`DoseSchedule`;
* closed-form simulation: :func:`concentrations`, :func:`troughs`, :func:`steady_state_trough`,
  :func:`simulate`, :func:`steady_state_troughs`;
* covariates that change during therapy: :class:`CovariateHistory` (last value carried forward)
  and exact piecewise propagation, :func:`piecewise_concentrations`;
* individual Bayesian estimation and forecasts: :class:`Observations`,
  :func:`estimate_individual`, :class:`IndividualEstimate`, :func:`forecast_troughs`,
  :class:`TroughForecast`; model averaging over published models: :func:`estimate_averaged`,
  :class:`AveragedEstimate`;
* NONMEM-style input: :func:`read_nonmem`, :class:`PKDataset`, :class:`PKSubject`, and a
  shipped simulated example, :func:`example_dataset`.
"""

from pkmodel.pk.averaging import AveragedEstimate, estimate_averaged
from pkmodel.pk.covariate_effects import CovariateEffect
from pkmodel.pk.covariates import CovariateHistory
from pkmodel.pk.estimation import IndividualEstimate, estimate_individual
from pkmodel.pk.forecasting import TroughForecast, forecast_troughs
from pkmodel.pk.models import PKParameters, PopulationModel
from pkmodel.pk.nonmem import PKDataset, PKSubject, example_dataset, read_nonmem
from pkmodel.pk.observations import Observations
from pkmodel.pk.published_models import (
    AUBOURG_2015,
    DUBINSKY_2017,
    FASANMADE_2009_UC,
    FASANMADE_2011_CD,
    FASANMADE_2011_PAEDIATRIC,
    MODELS,
    WOJCIECHOWSKI_2017,
    get_model,
)
from pkmodel.pk.regimens import NAMED_REGIMENS, Regimen, parse_regimen
from pkmodel.pk.resolver import resolve_model, resolve_population_draws
from pkmodel.pk.schedules import DoseSchedule
from pkmodel.pk.simulation import (
    concentrations,
    piecewise_concentrations,
    simulate,
    steady_state_trough,
    steady_state_troughs,
    troughs,
)
from pkmodel.pk.structures import LinearCompartmental, Structure

__all__ = [
    "AUBOURG_2015",
    "DUBINSKY_2017",
    "FASANMADE_2009_UC",
    "FASANMADE_2011_CD",
    "FASANMADE_2011_PAEDIATRIC",
    "MODELS",
    "NAMED_REGIMENS",
    "WOJCIECHOWSKI_2017",
    "AveragedEstimate",
    "CovariateEffect",
    "CovariateHistory",
    "DoseSchedule",
    "IndividualEstimate",
    "LinearCompartmental",
    "Observations",
    "PKDataset",
    "PKParameters",
    "PKSubject",
    "PopulationModel",
    "Regimen",
    "Structure",
    "TroughForecast",
    "concentrations",
    "estimate_averaged",
    "estimate_individual",
    "example_dataset",
    "forecast_troughs",
    "get_model",
    "parse_regimen",
    "piecewise_concentrations",
    "read_nonmem",
    "resolve_model",
    "resolve_population_draws",
    "simulate",
    "steady_state_trough",
    "steady_state_troughs",
    "troughs",
]
