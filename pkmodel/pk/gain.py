"""The exposure gain of an intensified regimen for one patient, from their baseline trough.

For a patient at steady state on a baseline regimen (standard maintenance, 5 mg/kg every 8
weeks) with a measured trough, the gain of an intensified regimen is the ratio of its
steady-state trough to the baseline one, both predicted from the patient's own PK parameters:

    gain = C_trough(regimen; CL, V1, Q, V2) / C_trough(baseline; CL, V1, Q, V2)

For linear PK a higher dose at the same interval multiplies every patient's trough by the same
factor (10 mg/kg q8w doubles it), while a shorter interval gains more for a patient who clears
the drug faster, so the gain differs between patients only for regimens that change the
interval. The patient's parameters are not known; their posterior given the covariates, the
published model's between-subject variability (its prior) and the measured baseline trough
(with the model's residual error, or its censoring at an assay limit) is computed by importance
sampling from the prior: one trough is a weak observation of three or four random effects, so
the prior is a good proposal (the effective sample size of each patient is returned, and
patients with few are redone with ten times the draws). The result is the posterior mean and
SD of log gain, which the exposure-driven remission model uses (docs/exposure.md).

A model with inter-occasion variability (``omega2_iov``: both Fasanmade 2011 models) has, in each
dosing interval, the parameters ``typical x exp(eta + kappa_k)`` with a new
``kappa_k ~ Normal(0, omega2_iov)`` (:mod:`pkmodel.pk.occasions`). A trough at steady state then
depends on the kappas of the intervals before it: each draw follows
:data:`~pkmodel.pk.simulation.IOV_STEADY_STATE_INTERVALS` intervals, each with its own kappa
(:func:`~pkmodel.pk.simulation.steady_state_trough_occasions`). The measured baseline trough
weighs the draws of eta and of the baseline intervals' kappas together; the intensified regimen's
trough, months later, follows new intervals with kappas drawn afresh (independent of the
baseline's), so the gain carries the occasion-to-occasion variability as well as the uncertainty
about eta. A model without IOV draws exactly the numbers it always did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, logsumexp

from pkmodel.errors import SpecificationError
from pkmodel.pk.models import PopulationModel
from pkmodel.pk.regimens import Regimen
from pkmodel.pk.simulation import (
    IOV_STEADY_STATE_INTERVALS,
    sample_kappa,
    steady_state_trough,
    steady_state_trough_occasions,
)
from pkmodel.sampling import resolve_seed

__all__ = ["GAIN_DRAWS", "EffectDraws", "LogGain", "history_log_gain", "log_gain_posterior",
           "patient_log_gain", "patient_troughs", "sample_effects"]

#: Draws of the random effects per patient (the same draws for every patient).
GAIN_DRAWS = 2000
#: Patients whose importance sample has fewer effective draws than this are redone with ten
#: times as many.
MIN_ESS = 100.0
_CHUNK = 256  # patients per block (block x draws arrays stay a few MB)


@dataclass(frozen=True)
class LogGain:
    """Posterior of each patient's log exposure gain (one value per patient).

    Attributes
    ----------
    mean, sd : numpy.ndarray
        Posterior mean and SD of log(trough after / trough before).
    ess : numpy.ndarray
        Effective sample size of each patient's importance sample.
    log_after_mean, log_after_sd : numpy.ndarray
        Posterior mean and SD of the log steady-state trough (µg/mL, without residual error)
        under the regimen: the trough forecast.
    """

    mean: np.ndarray
    sd: np.ndarray
    ess: np.ndarray
    log_after_mean: np.ndarray
    log_after_sd: np.ndarray


@dataclass(frozen=True)
class EffectDraws:
    """Draws of a patient's random effects for the troughs before and after intensification.

    Attributes
    ----------
    eta : numpy.ndarray
        Between-subject random effects, shape ``(draws, n_eta)``.
    kappa_before, kappa_after : numpy.ndarray or None
        Occasion effects of the :data:`~pkmodel.pk.simulation.IOV_STEADY_STATE_INTERVALS`
        intervals that lead to the baseline trough and, independently, to the trough under the
        intensified regimen, shape ``(draws, intervals, n_kappa)``; ``None`` for a model without
        inter-occasion variability.
    """

    eta: np.ndarray
    kappa_before: np.ndarray | None = None
    kappa_after: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.eta.shape[0])


def sample_effects(model: PopulationModel, n_draws: int,
                   rng: np.random.Generator) -> EffectDraws:
    """``n_draws`` draws of eta from the model's population distribution and, for a model with
    inter-occasion variability, of the kappas before and after intensification (in that order
    from ``rng``, after eta: a model without IOV draws only eta)."""
    eta = model.sample_eta((n_draws,), rng)
    if not model.occasion_effects:
        return EffectDraws(eta)
    before = sample_kappa(model, (n_draws,), IOV_STEADY_STATE_INTERVALS, rng)
    return EffectDraws(eta, before, sample_kappa(model, (n_draws,),
                                                 IOV_STEADY_STATE_INTERVALS, rng))


def _troughs(model: PopulationModel, cov: Mapping[str, np.ndarray], eta: np.ndarray,
             kappa: np.ndarray | None, dose_mg: np.ndarray, reg: Regimen,
             infusion_days: float) -> np.ndarray:
    """Steady-state troughs (µg/mL) of ``reg`` for covariates ``cov`` (shape ``S``) and draws
    ``eta`` (``S + (n_eta,)``); with ``kappa`` (``S + (intervals, n_kappa)``) each interval has
    its own occasion effect."""
    if kappa is None:
        params = model.individual_parameters(cov, eta)
        return steady_state_trough(params, dose_mg, reg.interval_days, infusion_days)
    params = model.individual_parameters({k: np.asarray(v)[..., None] for k, v in cov.items()},
                                         eta[..., None, :], kappa)
    return steady_state_trough_occasions(params, dose_mg, reg.interval_days, infusion_days)


def _log_likelihood(pred: np.ndarray, tl: np.ndarray, cens: np.ndarray,
                    model: PopulationModel) -> np.ndarray:
    """log p(measured trough | predicted) with the model's residual error; censored: P(beyond)."""
    sd = model.residual_sd(pred)
    z = (tl - pred) / sd
    return np.where(cens == 0, -0.5 * z**2 - np.log(sd),
                    np.where(cens == -1, log_ndtr(-z), log_ndtr(z)))


def _weights(base: np.ndarray, tl: np.ndarray, cens: np.ndarray,
             model: PopulationModel) -> np.ndarray:
    """Normalised importance weights (rows, draws) of the draws' baseline troughs ``base``
    given each row's measured trough (the prior's, equal, where it is NaN)."""
    logw = np.where(np.isnan(tl)[:, None], 0.0,  # no measurement: the prior
                    _log_likelihood(base, np.nan_to_num(tl)[:, None], cens[:, None], model))
    logw = logw - logsumexp(logw, axis=1, keepdims=True)
    return np.exp(logw)


def _block(model, cov, draws: EffectDraws, tl, cens, weight, baseline, dose, interval):
    """Mean, SD and ESS of log gain for one block of patients (rows) over draws (columns)."""
    cov = {k: v[:, None] for k, v in cov.items()}
    eta = draws.eta[None]
    before = None if draws.kappa_before is None else draws.kappa_before[None]
    after_k = None if draws.kappa_after is None else draws.kappa_after[None]
    base = _troughs(model, cov, eta, before, baseline.dose_mg_kg * weight[:, None], baseline,
                    baseline.infusion_days)
    log_gain = np.empty_like(base)
    log_after = np.empty_like(base)
    for d, tau in set(zip(dose.tolist(), interval.tolist(), strict=True)):
        rows = (dose == d) & (interval == tau)
        reg = Regimen(d, tau, infusion_hours=baseline.infusion_hours)
        # a covariate without variation (one patient's, say) broadcasts to the rows
        sub = {k: np.broadcast_to(v, (rows.size, 1))[rows] for k, v in cov.items()}
        after = _troughs(model, sub, eta, after_k, d * weight[rows, None], reg,
                         reg.infusion_days)
        log_after[rows] = np.log(after)
        log_gain[rows] = log_after[rows] - np.log(base[rows])
    w = _weights(base, tl, cens, model)

    def moments(x):
        m = np.sum(w * x, axis=1)
        return m, np.sqrt(np.maximum(np.sum(w * (x - m[:, None]) ** 2, axis=1), 0.0))

    return (*moments(log_gain), 1.0 / np.sum(w**2, axis=1), *moments(log_after))


def log_gain_posterior(
    model: PopulationModel,
    tl_ug_ml: np.ndarray,
    tl_cens: np.ndarray,
    covariates: Mapping[str, np.ndarray],
    dose_mg_kg: np.ndarray,
    interval_weeks: np.ndarray,
    *,
    baseline: Regimen,
    n_draws: int = GAIN_DRAWS,
    random_seed: int | None = None,
) -> LogGain:
    """Posterior mean and SD of each patient's log exposure gain.

    Parameters
    ----------
    model : PopulationModel
        The population PK model (its typical values, covariate effects and between-subject
        variability are the prior of the patient's parameters).
    tl_ug_ml : array, shape (n,)
        Measured baseline trough, µg/mL (for a censored one, its limit; NaN for a patient
        without one, whose gain then follows from the prior and the covariates alone).
    tl_cens : array, shape (n,)
        0 measured, 1 below the limit, -1 above it.
    covariates : mapping of str to array
        The model's covariates in its units (``weight_kg``, ``albumin_g_dl``, ``ati``...), one
        value per patient; ``weight_kg`` is required (doses are per kg).
    dose_mg_kg, interval_weeks : array, shape (n,)
        The regimen each patient was given after intensification.
    baseline : Regimen
        The regimen at whose steady state the baseline trough was measured.
    n_draws : int
        Draws of the random effects (shared by all patients).
    random_seed : int, optional
        The one seed.
    """
    tl = np.asarray(tl_ug_ml, dtype=float)
    cens = np.asarray(tl_cens, dtype=np.int64)
    n = tl.size
    cov = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for k, v in covariates.items()}
    if "weight_kg" not in cov:
        raise SpecificationError("the exposure gain needs each patient's weight_kg")
    dose = np.broadcast_to(np.asarray(dose_mg_kg, dtype=float), (n,))
    interval = np.broadcast_to(np.asarray(interval_weeks, dtype=float), (n,))
    cov = {k: v for k, v in cov.items() if k in model.covariates_used or k == "weight_kg"}
    rng = np.random.default_rng(resolve_seed(random_seed))
    draws = sample_effects(model, n_draws, rng)
    # with occasions every (row, draw) follows IOV_STEADY_STATE_INTERVALS intervals: fewer rows
    chunk = _CHUNK if draws.kappa_before is None else _CHUNK // 8
    out = np.empty((5, n))
    for lo in range(0, n, chunk):
        s = slice(lo, lo + chunk)
        out[:, s] = _block(model, {k: v[s] for k, v in cov.items()}, draws, tl[s], cens[s],
                           cov["weight_kg"][s], baseline, dose[s], interval[s])
    few = np.flatnonzero(out[2] < MIN_ESS)
    if few.size:
        more = sample_effects(model, 10 * n_draws, rng)
        for lo in range(0, few.size, chunk // 8):
            i = few[lo:lo + chunk // 8]
            out[:, i] = _block(model, {k: v[i] for k, v in cov.items()}, more, tl[i], cens[i],
                               cov["weight_kg"][i], baseline, dose[i], interval[i])
    return LogGain(*out)


def patient_troughs(model: PopulationModel, covariates: Mapping[str, float],
                    regimens: Sequence[Regimen], *, baseline: Regimen,
                    draws: EffectDraws) -> tuple[np.ndarray, np.ndarray]:
    """One patient's steady-state troughs (µg/mL, without residual error) for ``draws`` of
    their random effects (:func:`sample_effects`): on the baseline regimen, shape (draws,), and
    under each regimen, shape (regimens, draws); with inter-occasion variability the baseline
    follows ``draws.kappa_before`` and every regimen the same ``draws.kappa_after``."""
    cov = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in covariates.items()
           if k in model.covariates_used or k == "weight_kg"}
    weight = cov["weight_kg"]
    base = _troughs(model, cov, draws.eta, draws.kappa_before, baseline.dose_mg_kg * weight,
                    baseline, baseline.infusion_days)
    # every regimen's infusions last as long as the baseline's, as in log_gain_posterior
    after = np.stack([_troughs(model, cov, draws.eta, draws.kappa_after, r.dose_mg_kg * weight,
                               r, baseline.infusion_days) for r in regimens]
                     ) if regimens else np.empty((0, len(draws)))
    return np.broadcast_to(base, (len(draws),)), after


def patient_log_gain(
    model: PopulationModel,
    covariates: Mapping[str, float],
    tl_ug_ml: np.ndarray,
    tl_cens: np.ndarray,
    regimens: Sequence[Regimen],
    *,
    baseline: Regimen,
    n_draws: int = GAIN_DRAWS,
    random_seed: int | None = None,
) -> LogGain:
    """The posterior of one patient's log exposure gain under each regimen, for each of several
    (hypothetical or measured) baseline troughs.

    The same numbers as :func:`log_gain_posterior` given one row per trough and regimen (the
    same draws of the random effects from the same seed, the same redraw of a trough whose
    importance sample has fewer than :data:`MIN_ESS` effective draws), computed once per
    patient: the troughs of the draws do not depend on the measured trough, only their weights
    do. This is what lets a recommendation weigh thousands of hypothetical troughs.

    Parameters
    ----------
    model : PopulationModel
        The population PK model (its prior on the patient's parameters).
    covariates : mapping of str to float
        The patient's covariates in the model's units; ``weight_kg`` is required.
    tl_ug_ml, tl_cens : array, shape (n,)
        Baseline troughs, µg/mL (NaN: none measured), and their censoring codes (0 measured,
        -1 above the limit given, 1 below it).
    regimens : sequence of Regimen
        The regimens after intensification.
    baseline : Regimen
        The regimen at whose steady state the troughs were measured.
    n_draws : int
        Draws of the random effects.
    random_seed : int, optional
        The one seed.

    Returns
    -------
    LogGain
        Arrays of shape (n, regimens); ``ess`` of shape (n,).
    """
    if "weight_kg" not in covariates:
        raise SpecificationError("the exposure gain needs the patient's weight_kg")
    tl = np.atleast_1d(np.asarray(tl_ug_ml, dtype=float))
    cens = np.broadcast_to(np.asarray(tl_cens, dtype=np.int64), tl.shape)
    rng = np.random.default_rng(resolve_seed(random_seed))
    draws = sample_effects(model, n_draws, rng)

    def moments(effects, rows):
        base, after = patient_troughs(model, covariates, regimens, baseline=baseline,
                                      draws=effects)
        w = _weights(base[None, :], tl[rows], cens[rows], model)  # (rows, draws)
        log_after = np.log(after)
        log_gain = log_after - np.log(base)
        out = []
        for x in (log_gain, log_after):
            m = w @ x.T  # (rows, regimens)
            dev = x[None] - m[:, :, None]  # (rows, regimens, draws)
            out += [m, np.sqrt(np.einsum("kd,krd->kr", w, dev * dev))]
        return out, 1.0 / np.sum(w ** 2, axis=1)

    (g_m, g_s, a_m, a_s), ess = moments(draws, np.arange(tl.size))
    few = np.flatnonzero(ess < MIN_ESS)
    if few.size:
        (g_m[few], g_s[few], a_m[few], a_s[few]), ess[few] = moments(
            sample_effects(model, 10 * n_draws, rng), few)
    return LogGain(mean=g_m, sd=g_s, ess=ess, log_after_mean=a_m, log_after_sd=a_s)


def history_log_gain(estimate, regimens: Sequence[Regimen], *, baseline: Regimen,
                     random_seed: int | None = None) -> LogGain:
    """The posterior of one patient's log exposure gain given their whole TDM history.

    ``estimate`` (:func:`~pkmodel.pk.estimation.estimate_individual`) is the posterior of the
    patient's random effects given every trough of their history under their actual doses; its
    draws take the place of the importance-weighted prior draws of :func:`patient_log_gain`.
    The gain is defined as there, as the model was fitted: the steady-state trough under each
    regimen over the steady-state trough under ``baseline``, with the patient's covariates at
    the last record. With inter-occasion variability the baseline's last interval takes the
    posterior kappa of the occasion of the last trough (the trough the remission model uses as
    the baseline trough), its earlier intervals and every interval after intensification kappas
    drawn afresh.

    Parameters
    ----------
    estimate : IndividualEstimate
        The patient's PK posterior (equally weighted draws).
    regimens : sequence of Regimen
        The regimens after intensification.
    baseline : Regimen
        The regimen whose steady state defines the gain's denominator.
    random_seed : int, optional
        Seed of the kappas drawn afresh.

    Returns
    -------
    LogGain
        Arrays of shape (1, regimens); ``ess`` the importance sample's effective size (method
        ``"map"``), or the number of draws (``"nuts"``).
    """
    model = estimate.model
    eta = np.asarray(estimate.eta_draws, dtype=float)
    n = eta.shape[0]
    if model.occasion_effects:
        rng = np.random.default_rng(resolve_seed(random_seed))
        before = sample_kappa(model, (n,), IOV_STEADY_STATE_INTERVALS, rng)
        before[:, -1] = estimate.kappa_draws[:, -1]
        draws = EffectDraws(eta, before,
                            sample_kappa(model, (n,), IOV_STEADY_STATE_INTERVALS, rng))
    else:
        draws = EffectDraws(eta)
    cov = {**estimate.covariates, "weight_kg": float(estimate.weight_kg)}
    base, after = patient_troughs(model, cov, regimens, baseline=baseline, draws=draws)
    log_after = np.log(after)
    log_gain = log_after - np.log(base)
    ess = float(estimate.diagnostics.get("importance_ess", n))  # NUTS: its draws
    return LogGain(mean=log_gain.mean(axis=1)[None], sd=log_gain.std(axis=1)[None],
                   ess=np.array([ess]), log_after_mean=log_after.mean(axis=1)[None],
                   log_after_sd=log_after.std(axis=1)[None])
