"""Is a patient's individual PK estimate believable, and if not, which unit slip explains it?

A dataset with a unit slipped (AMT in mg/kg instead of mg, DV in ng/mL instead of µg/mL, TIME in
hours read as days) does not fail: the estimation finds the parameters that reconcile the wrong
numbers, far in the tails of the population distribution, or no parameters fit at all and the
mode sits where the prior puts it, and forecasts from them with confidence. :func:`assess` flags
an estimate whose random effects are that far out, or whose residuals are, and then asks,
for each common slip, whether the data explain themselves much better once it is undone: the
posterior mode is found again with the data corrected, and the log marginal density of the
observations at the mode is compared (with the Jacobian of a rescaled concentration, so that the
densities are in the same unit).

Thresholds, both module constants:

* :data:`TAIL_P`: an estimate is implausible when its standardised random effects ``z`` (eta over
  omega) lie outside the central ``1 - TAIL_P`` of the population distribution, i.e.
  ``P(chi2_k >= |z|^2) < TAIL_P`` (k random effects: 3.7 SD from the typical patient for two,
  4.0 for three; one genuine patient in a thousand is flagged), or when
  the standardised residuals ``r`` of the uncensored observations at the mode do
  (``P(chi2_n >= |r|^2) < TAIL_P``, n observations: the data cannot be what the model predicts).
* :data:`BETTER_BY_NATS`: a correction is named when it raises the log posterior at the mode by
  more than this and leaves an estimate that is no longer implausible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pkmodel.pk.models import PopulationModel
from pkmodel.pk.observations import Observations
from pkmodel.pk.schedules import DoseSchedule

__all__ = ["BETTER_BY_NATS", "TAIL_P", "Plausibility", "assess"]

#: Tail probability below which the individual random effects are implausible.
TAIL_P = 1e-3
#: Log-posterior gain (nats) that a unit correction must bring to be named as the likely cause.
BETTER_BY_NATS = 5.0

#: A mode: (standardised random effects z, log posterior there, standardised residuals there).
Mode = tuple[np.ndarray, float, np.ndarray]
#: A refit: (schedule, observations, factor applied to every time) -> the mode for those data.
Refit = Callable[[DoseSchedule, Observations, float], Mode]


@dataclass(frozen=True)
class Plausibility:
    """The verdict on one individual estimate.

    Attributes
    ----------
    plausible : bool
        Whether the random effects lie within the population distribution (see :data:`TAIL_P`).
    tail_p : float
        The smaller of ``P(chi2_k >= |z|^2)`` (random effects) and ``P(chi2_n >= |r|^2)``
        (residuals) at the posterior mode.
    message : str
        Empty when plausible; otherwise what is implausible and the likely cause.
    likely_cause : str or None
        The unit correction that explains the data (``"AMT in mg/kg"``, ``"DV in ng/mL"``,
        ``"TIME in hours"``, ``"TIME in weeks"``), if one does.
    """

    plausible: bool
    tail_p: float
    message: str = ""
    likely_cause: str | None = None


def _chi2_p(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return 1.0
    if not np.all(np.isfinite(x)):
        return 0.0
    return float(stats.chi2.sf(float(np.sum(np.square(x))), df=x.size))


def _tail_p(mode: Mode) -> float:
    z, _, residuals = mode
    return min(_chi2_p(z), _chi2_p(residuals))


def _corrections(schedule: DoseSchedule, obs: Observations, weight_kg: float):
    """(name, fix, schedule, observations, time factor, log-Jacobian) for each slip to test."""
    out = []
    if not schedule.per_kg:
        out.append(("AMT in mg/kg",
                    f"AMT must be the total dose in mg: multiply mg/kg by the weight "
                    f"({weight_kg:g} kg)",
                    DoseSchedule(schedule.times_days, schedule.amounts * weight_kg,
                                 schedule.durations_days, per_kg=False), obs, 1.0, 0.0))
    exact = int(np.sum(obs.cens == 0))
    limit = obs.limit_ug_ml
    scaled = Observations(obs.times_days, obs.values_ug_ml / 1000.0, obs.cens,
                          None if limit is None else np.asarray(limit, dtype=float) / 1000.0)
    out.append(("DV in ng/mL", "DV must be in µg/mL (= mg/L): divide ng/mL by 1000",
                schedule, scaled, 1.0, -exact * np.log(1000.0)))
    for name, factor, fix in (("TIME in hours", 1 / 24.0, "give --time-unit hour"),
                              ("TIME in weeks", 7.0, "give --time-unit week")):
        out.append((name, f"TIME was read as days; {fix} (or convert TIME to days)",
                    DoseSchedule(schedule.times_days * factor, schedule.amounts,
                                 schedule.durations_days * factor, per_kg=schedule.per_kg),
                    Observations(obs.times_days * factor, obs.values_ug_ml, obs.cens,
                                 obs.limit_ug_ml), factor, 0.0))
    return out


def _describe(model: PopulationModel, covariates: dict, z: np.ndarray) -> str:
    """'CL 0.055 L/day is 5.5 SD below the typical 0.41 L/day for these covariates; ...'."""
    typical = model.individual_parameters(covariates)
    individual = model.individual_parameters(covariates, model.eta_from_z(z))
    parts = []
    for i in np.argsort(-np.abs(z)):
        if abs(z[i]) < 2.0 and parts:
            break
        p = model.random_effects[i]
        unit = model.structure.unit(p)
        parts.append(f"{p.upper()} {float(getattr(individual, p)):.3g} {unit} is "
                     f"{abs(z[i]):.1f} SD {'below' if z[i] < 0 else 'above'} the typical "
                     f"{float(getattr(typical, p)):.3g} {unit} for these covariates")
    return "; ".join(parts)


def _residual_text(residuals: np.ndarray) -> str:
    worst = float(np.max(np.abs(residuals))) if residuals.size else 0.0
    return f"the observed concentrations lie up to {worst:.1f} residual SD from the best fit"


def assess(
    model: PopulationModel,
    covariates: dict,
    weight_kg: float,
    schedule: DoseSchedule,
    observations: Observations,
    mode: Mode,
    refit: Refit,
) -> Plausibility:
    """Judge an individual estimate and, when it is implausible, name the likely unit slip.

    Parameters
    ----------
    model : PopulationModel
        The prior.
    covariates : dict
        The patient's covariates (reference values filled in).
    weight_kg : float
        Body weight, kg.
    schedule, observations
        The data as read.
    mode : tuple
        At the posterior mode: the standardised random effects, the log posterior (the
        normalised likelihood times the unnormalised standard-normal prior, as
        :func:`pkmodel.pk.estimate_individual` computes it) and the standardised residuals of the
        uncensored observations.
    refit : callable
        Finds the mode again for corrected data: ``refit(schedule, observations, time_factor)``
        (``time_factor`` multiplies every time, e.g. 1/24 for hours read as days) returns the
        same three things for them.

    Returns
    -------
    Plausibility
    """
    z_mode, log_posterior, residuals = mode
    tail = _tail_p(mode)
    if tail >= TAIL_P:
        return Plausibility(True, tail)
    findings = []
    if _chi2_p(z_mode) < TAIL_P:
        findings.append(_describe(model, covariates, np.asarray(z_mode, dtype=float)))
    if _chi2_p(residuals) < TAIL_P:
        findings.append(_residual_text(np.asarray(residuals, dtype=float)))
    what = (f"the individual estimate is implausible under model {model.name} "
            f"(P = {tail:.1e}): {'; '.join(findings)}")
    best = None
    for name, fix, sched, obs, factor, log_jacobian in _corrections(schedule, observations,
                                                                     weight_kg):
        other = refit(sched, obs, factor)
        gain = other[1] + log_jacobian - log_posterior
        if gain > BETTER_BY_NATS and _tail_p(other) >= TAIL_P and (best is None or gain > best[0]):
            best = (gain, name, fix)
    if best is not None:
        gain, name, fix = best
        return Plausibility(False, tail, f"{what}. The troughs are explained far better "
                            f"(log posterior +{gain:.0f}) if {name}: {fix}", name)
    return Plausibility(False, tail, f"{what}. No unit slip of AMT (mg), DV (µg/mL) or TIME "
                        "(days) explains it; check the doses, times, concentrations and "
                        "covariates, and whether this model suits the patient (for example "
                        "undetected antibodies to infliximab)")
