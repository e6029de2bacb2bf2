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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, logsumexp

from pkmodel.errors import SpecificationError
from pkmodel.pk.models import PopulationModel
from pkmodel.pk.regimens import Regimen
from pkmodel.pk.simulation import steady_state_trough
from pkmodel.sampling import resolve_seed

__all__ = ["GAIN_DRAWS", "LogGain", "log_gain_posterior", "patient_log_gain", "patient_troughs"]

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


def _block(model, cov, eta, tl, cens, weight, baseline, dose, interval):
    """Mean, SD and ESS of log gain for one block of patients (rows) over draws (columns)."""
    params = model.individual_parameters({k: v[:, None] for k, v in cov.items()}, eta[None])
    base = steady_state_trough(params, baseline.dose_mg_kg * weight[:, None],
                               baseline.interval_days, baseline.infusion_days)
    log_gain = np.empty_like(base)
    log_after = np.empty_like(base)
    for d, tau in set(zip(dose.tolist(), interval.tolist(), strict=True)):
        rows = (dose == d) & (interval == tau)
        reg = Regimen(d, tau, infusion_hours=baseline.infusion_hours)
        # a parameter without covariates or BSV (a local fit's q, say) broadcasts to the rows
        sub = params.map(lambda v, rows=rows: np.broadcast_to(v, base.shape)[rows])
        after = steady_state_trough(sub, d * weight[rows, None], reg.interval_days,
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
    eta = model.sample_eta((n_draws,), rng)
    out = np.empty((5, n))
    for lo in range(0, n, _CHUNK):
        s = slice(lo, lo + _CHUNK)
        out[:, s] = _block(model, {k: v[s] for k, v in cov.items()}, eta, tl[s], cens[s],
                           cov["weight_kg"][s], baseline, dose[s], interval[s])
    few = np.flatnonzero(out[2] < MIN_ESS)
    if few.size:
        more = model.sample_eta((10 * n_draws,), rng)
        for lo in range(0, few.size, _CHUNK // 8):
            i = few[lo:lo + _CHUNK // 8]
            out[:, i] = _block(model, {k: v[i] for k, v in cov.items()}, more, tl[i], cens[i],
                               cov["weight_kg"][i], baseline, dose[i], interval[i])
    return LogGain(*out)


def patient_troughs(model: PopulationModel, covariates: Mapping[str, float],
                    regimens: Sequence[Regimen], *, baseline: Regimen,
                    eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One patient's steady-state troughs (µg/mL, without residual error) for draws ``eta`` of
    their random effects: on the baseline regimen, shape (draws,), and under each regimen,
    shape (regimens, draws)."""
    cov = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in covariates.items()
           if k in model.covariates_used or k == "weight_kg"}
    weight = cov["weight_kg"]
    params = model.individual_parameters(cov, eta)
    base = steady_state_trough(params, baseline.dose_mg_kg * weight, baseline.interval_days,
                               baseline.infusion_days)
    # every regimen's infusions last as long as the baseline's, as in log_gain_posterior
    after = np.stack([steady_state_trough(params, r.dose_mg_kg * weight, r.interval_days,
                                          baseline.infusion_days) for r in regimens])
    return np.broadcast_to(base, eta.shape[:-1]), after


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
    eta = model.sample_eta((n_draws,), rng)

    def moments(eta_draws, rows):
        base, after = patient_troughs(model, covariates, regimens, baseline=baseline,
                                      eta=eta_draws)
        w = _weights(base[None, :], tl[rows], cens[rows], model)  # (rows, draws)
        log_after = np.log(after)
        log_gain = log_after - np.log(base)
        out = []
        for x in (log_gain, log_after):
            m = w @ x.T  # (rows, regimens)
            dev = x[None] - m[:, :, None]  # (rows, regimens, draws)
            out += [m, np.sqrt(np.einsum("kd,krd->kr", w, dev * dev))]
        return out, 1.0 / np.sum(w ** 2, axis=1)

    (g_m, g_s, a_m, a_s), ess = moments(eta, np.arange(tl.size))
    few = np.flatnonzero(ess < MIN_ESS)
    if few.size:
        (g_m[few], g_s[few], a_m[few], a_s[few]), ess[few] = moments(
            model.sample_eta((10 * n_draws,), rng), few)
    return LogGain(mean=g_m, sd=g_s, ess=ess, log_after_mean=a_m, log_after_sd=a_s)
