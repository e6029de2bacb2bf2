"""Forecasts of one patient's trough under candidate regimens, from the individual posterior.

For every posterior draw of the patient's parameters, the trough under each candidate regimen is
computed in closed form: either at steady state (geometric series) or just before a given dose
after switching from the patient's dosing history to the new regimen at a given day (superposition
of the real history and the new doses). The forecast reports the posterior median, an equal-tailed
credible interval and the posterior probability that the trough reaches a target (5 µg/mL by
default). A model-averaged estimate (:func:`pkmodel.pk.estimate_averaged`) is forecast from the
mixture: each model gives its share of the draws, by its posterior weight.

When the patient's covariates change (a covariate history), the steady-state forecast uses the
covariates in force at the history's last record (the patient as last seen, for ever), and the
switched-regimen forecast follows the history (last value carried forward beyond its last record)
by exact piecewise propagation, mg/kg doses at the weight in force at each dose.

With inter-occasion variability (``omega2_iov``, :mod:`pkmodel.pk.occasions`) every future
occasion (each dose of the forecast after the last estimated occasion, one per dosing interval)
draws a new ``kappa ~ Normal(0, omega2_iov)`` for each posterior draw, so the forecast's spread
adds the occasion-to-occasion variability to the posterior's; the estimated occasions keep their
posterior kappas (paired with eta, draw by draw), and the prediction propagates exactly across
every occasion boundary. The steady-state forecast follows
:data:`~pkmodel.pk.simulation.IOV_STEADY_STATE_INTERVALS` future intervals, each with its own
kappa (:func:`~pkmodel.pk.simulation.steady_state_trough_occasions`). These draws use
``random_seed``; a model without IOV draws nothing and gives the same forecast as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from pkmodel.errors import SpecificationError
from pkmodel.pk.averaging import AveragedEstimate
from pkmodel.pk.estimation import IndividualEstimate
from pkmodel.pk.occasions import occasion_parameters, output_stretches
from pkmodel.pk.regimens import NAMED_REGIMENS, Regimen, parse_regimen
from pkmodel.pk.schedules import DoseSchedule
from pkmodel.pk.simulation import (
    IOV_STEADY_STATE_INTERVALS,
    concentrations,
    piecewise_concentrations,
    sample_kappa,
    steady_state_trough,
    steady_state_trough_occasions,
)
from pkmodel.sampling import resolve_seed
from pkmodel.validation import check_probability

__all__ = ["TroughForecast", "forecast_troughs"]


@dataclass(frozen=True)
class TroughForecast:
    """Forecast troughs per regimen.

    Attributes
    ----------
    draws : xarray.DataArray
        Trough per regimen and posterior draw, µg/mL (dims ``regimen``, ``draw``).
    target_ug_ml : float
        The target trough, µg/mL.
    credible : float
        Mass of the credible interval.
    horizon : str
        ``"steady state"`` or ``"before dose N of the new regimen from day D"``.
    model_weights : dict or None
        For a model-averaged forecast, each model's posterior weight.
    """

    draws: xr.DataArray
    target_ug_ml: float
    credible: float
    horizon: str
    model_weights: dict[str, float] | None = None

    def table(self) -> xr.Dataset:
        """Median, interval bounds and P(trough >= target) per regimen."""
        lo, hi = (1 - self.credible) / 2, 1 - (1 - self.credible) / 2
        q = self.draws.quantile([lo, 0.5, hi], dim="draw")
        units = {"units": "µg/mL"}
        return xr.Dataset({
            "median": q.sel(quantile=0.5, drop=True).assign_attrs(units),
            "lower": q.sel(quantile=lo, drop=True).assign_attrs(units),
            "upper": q.sel(quantile=hi, drop=True).assign_attrs(units),
            "p_target": (self.draws >= self.target_ug_ml).mean("draw").assign_attrs(
                units="probability", target_ug_ml=self.target_ug_ml),
        }, attrs={"credible": self.credible, "horizon": self.horizon})

    def to_dict(self) -> dict:
        """Plain-JSON: one entry per regimen."""
        tab = self.table()
        out = {} if self.model_weights is None else {"model_weights": dict(self.model_weights)}
        return out | {
            "target_ug_ml": self.target_ug_ml,
            "credible": self.credible,
            "horizon": self.horizon,
            "regimens": [
                {"regimen": str(r), "median_ug_ml": float(tab["median"].sel(regimen=r)),
                 "lower_ug_ml": float(tab["lower"].sel(regimen=r)),
                 "upper_ug_ml": float(tab["upper"].sel(regimen=r)),
                 "p_trough_ge_target": float(tab["p_target"].sel(regimen=r))}
                for r in tab.regimen.values
            ],
        }


def _default_start(est: IndividualEstimate) -> float:
    times = est.schedule.times_days
    last_dose = float(times[-1])
    last_obs = float(est.observations.times_days.max())
    if last_obs > last_dose:
        return last_obs
    gap = float(times[-1] - times[-2]) if times.size > 1 else 56.0
    return last_dose + gap


def forecast_troughs(
    estimate: IndividualEstimate | AveragedEstimate,
    regimens: Sequence[Regimen | str] | None = None,
    *,
    target_ug_ml: float = 5.0,
    credible: float = 0.9,
    n_doses: int | None = None,
    start_day: float | None = None,
    random_seed: int | None = None,
) -> TroughForecast:
    """Forecast the patient's trough under each candidate regimen.

    Parameters
    ----------
    estimate : IndividualEstimate or AveragedEstimate
        The patient's posterior (:func:`pkmodel.pk.estimate_individual`), or a model-averaged one
        (:func:`pkmodel.pk.estimate_averaged`), forecast from the mixture.
    regimens : sequence of Regimen or str, optional
        Candidates; default the named regimens (standard, escalation, q6w, q4w, 10 mg/kg q4w).
    target_ug_ml : float, default 5
        Target trough, µg/mL.
    credible : float, default 0.9
        Mass of the equal-tailed credible interval.
    n_doses : int, optional
        ``None`` (default): steady-state trough, at the covariates of the last record when they
        change over time. Otherwise the trough just before dose ``n_doses + 1`` of the new
        regimen, switched to at ``start_day`` (the real history before then is kept), e.g.
        ``n_doses=1`` for the first trough after intensification; a covariate history is followed
        (its last values carried forward).
    start_day : float, optional
        Day of the first dose of the new regimen (default: the last observation if it follows
        the last dose, otherwise the next dose due at the history's last interval).
    random_seed : int, optional
        Seed of the future occasions' kappas of a model with inter-occasion variability
        (default :data:`pkmodel.sampling.DEFAULT_RANDOM_SEED`); unused without IOV.

    Returns
    -------
    TroughForecast
    """
    check_probability("credible", credible)
    if not np.isfinite(target_ug_ml) or target_ug_ml <= 0:
        raise SpecificationError("target_ug_ml must be a positive number of µg/mL")
    regs = [parse_regimen(r) for r in (regimens or list(NAMED_REGIMENS.values()))]
    if n_doses is not None and int(n_doses) < 1:
        raise SpecificationError("n_doses must be >= 1")
    rng = np.random.default_rng(resolve_seed(random_seed))
    if isinstance(estimate, AveragedEstimate):
        parts, horizon = [], ""
        for name, count in estimate.draw_counts().items():
            if count:
                part, horizon = _trough_draws(estimate.estimates[name], regs, n_doses,
                                              start_day, count, rng)
                parts.append(part)
        out, weights = np.concatenate(parts, axis=1), dict(estimate.weights)
    else:
        out, horizon = _trough_draws(estimate, regs, n_doses, start_day, None, rng)
        weights = None
    draws = xr.DataArray(out, dims=("regimen", "draw"),
                         coords={"regimen": [r.label for r in regs],
                                 "draw": np.arange(out.shape[1])},
                         name="trough", attrs={"units": "µg/mL"})
    return TroughForecast(draws, float(target_ug_ml), float(credible), horizon, weights)


def _trough_draws(estimate: IndividualEstimate, regs: list[Regimen], n_doses: int | None,
                  start_day: float | None, n: int | None,
                  rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Troughs (regimen, draw) from the first ``n`` posterior draws (all when None)."""
    if estimate.weight_kg is None:
        raise SpecificationError("the patient's weight_kg is needed for mg/kg regimens")
    eta = estimate.eta_draws if n is None else estimate.eta_draws[:n]
    params = estimate.model.individual_parameters(estimate.covariates, eta)
    weight = estimate.weight_kg
    out = np.empty((len(regs), eta.shape[0]))
    iov = estimate.kappa_draws is not None
    if n_doses is None:
        if iov:  # the same future kappas for every regimen
            kappa = sample_kappa(estimate.model, eta.shape[:1], IOV_STEADY_STATE_INTERVALS, rng)
            params = estimate.model.individual_parameters(estimate.covariates,
                                                          eta[:, None, :], kappa)
        for i, reg in enumerate(regs):
            trough = steady_state_trough_occasions if iov else steady_state_trough
            out[i] = trough(params, reg.dose_mg_kg * weight, reg.interval_days,
                            reg.infusion_days)
        return out, "steady state"
    start = _default_start(estimate) if start_day is None else float(start_day)
    if start < float(estimate.schedule.times_days[0]):
        raise SpecificationError("start_day is before the first dose of the history")
    if iov:
        for i, reg in enumerate(regs):
            out[i] = _switched_trough_occasions(estimate, eta, reg, start, int(n_doses), rng)
        return out, f"before dose {int(n_doses) + 1} of the new regimen started on day {start:g}"
    history = estimate.covariate_history
    if history is not None:
        params_over_time = history.individual_parameters(estimate.model, eta)
    for i, reg in enumerate(regs):
        t = start + int(n_doses) * reg.interval_days
        if history is None:
            sched = estimate.schedule.switched(reg, at_day=start, n_doses=int(n_doses) + 1,
                                               weight_kg=weight)
            out[i] = concentrations(params, sched, [t], weight)[..., 0]
            continue
        new = DoseSchedule.maintenance(reg, start_day=start, n_doses=int(n_doses) + 1)
        sched = estimate.schedule.switched(
            reg, at_day=start, n_doses=int(n_doses) + 1,
            weight_kg=history.at(new.times_days)["weight_kg"])
        out[i] = piecewise_concentrations(params_over_time, history.times_days, sched, [t],
                                          history.dose_amounts_mg(sched))[..., 0]
    return out, f"before dose {int(n_doses) + 1} of the new regimen started on day {start:g}"


def _switched_trough_occasions(estimate: IndividualEstimate, eta: np.ndarray, reg: Regimen,
                               start: float, n_doses: int,
                               rng: np.random.Generator) -> np.ndarray:
    """The switched-regimen trough (one per draw of ``eta``) with inter-occasion variability:
    the estimated occasions with their posterior kappas, then one new occasion per later dose
    with a kappa drawn for each draw, propagated exactly."""
    history = estimate.covariate_history
    t = start + n_doses * reg.interval_days
    new = DoseSchedule.maintenance(reg, start_day=start, n_doses=n_doses + 1)
    weight = (estimate.weight_kg if history is None
              else history.at(new.times_days)["weight_kg"])
    sched = estimate.schedule.switched(reg, at_day=start, n_doses=n_doses + 1, weight_kg=weight)
    occasions = estimate.occasions.extended(sched.times_days)
    past = estimate.kappa_draws[:eta.shape[0]]
    future = sample_kappa(estimate.model, eta.shape[:1], len(occasions) - past.shape[1], rng)
    kappa = np.concatenate([past, future], axis=1)
    source = estimate.covariates if history is None else history
    params, change = occasion_parameters(estimate.model, source, occasions, eta, kappa)
    amounts = (sched.amounts_mg(estimate.weight_kg) if history is None
               else history.dose_amounts_mg(sched))
    return piecewise_concentrations(params, change, sched, [t], amounts,
                                    output_segments=output_stretches(change, occasions,
                                                                     [t]))[..., 0]
