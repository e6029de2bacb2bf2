"""Bayesian model averaging of individual PK estimates over published population models.

No single published model is right for every patient: a child with Crohn's disease, an adult with
ulcerative colitis and a patient with low albumin are described best by different studies. Model
averaging (as mapbayr offers; Uster et al., Clin Pharmacol Ther 2021;109:175-183) lets the
patient's own troughs decide. For each candidate model ``m`` the individual posterior is computed
as usual (:func:`pkmodel.pk.estimate_individual`, ``method="map"``), and with it the marginal
likelihood of the observations, ``p(y | m) = integral p(y | eta, m) p(eta | m) d eta``, estimated
by importance sampling from the same proposal that gives the posterior draws. The model weights
are the posterior model probabilities

    w_m = pi_m p(y | m) / sum_k pi_k p(y | k),

with prior weights ``pi`` (equal by default), and forecasts are drawn from the mixture: model
``m`` contributes a share ``w_m`` of the posterior draws. This is full Bayesian model averaging,
not a heuristic: the weights account for each model's fit and its prior complexity (a model that
fits only by moving its random effects far from zero is penalised through ``p(eta | m)``).

A model whose covariates the patient lacks takes that model's reference values; the result lists
which (:attr:`AveragedEstimate.assumed_covariates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from pkmodel.errors import SpecificationError
from pkmodel.pk.covariates import CovariateHistory
from pkmodel.pk.estimation import IndividualEstimate, estimate_individual
from pkmodel.pk.models import PopulationModel
from pkmodel.pk.observations import Observations
from pkmodel.pk.published_models import MODELS, get_model
from pkmodel.pk.schedules import DoseSchedule

__all__ = ["AveragedEstimate", "estimate_averaged"]


@dataclass(frozen=True)
class AveragedEstimate:
    """Individual estimates under several population models, with their posterior weights.

    Attributes
    ----------
    estimates : dict
        Model name -> :class:`~pkmodel.pk.IndividualEstimate` (``method="map"``).
    weights : dict
        Model name -> posterior model probability (sums to 1).
    log_evidence : dict
        Model name -> ``log p(y | model)``, the log marginal likelihood of the observations
        (concentrations in µg/mL).
    prior_weights : dict
        Model name -> prior model probability.
    assumed_covariates : dict
        Model name -> the covariates it uses that were not given, at its reference values.
    """

    estimates: Mapping[str, IndividualEstimate]
    weights: Mapping[str, float]
    log_evidence: Mapping[str, float]
    prior_weights: Mapping[str, float]
    assumed_covariates: Mapping[str, dict[str, float]]

    @property
    def n_draws(self) -> int:
        """Draws of each component estimate (and of the mixture)."""
        return min(e.eta_draws.shape[0] for e in self.estimates.values())

    def draw_counts(self) -> dict[str, int]:
        """How many of the mixture's draws each model gives: ``w_m`` times the total, rounded
        so that the counts add up (largest remainders)."""
        n = self.n_draws
        names = list(self.weights)
        exact = np.array([self.weights[m] for m in names]) * n
        counts = np.floor(exact).astype(int)
        short = n - int(counts.sum())
        counts[np.argsort(-(exact - counts))[:short]] += 1
        return dict(zip(names, counts.tolist(), strict=True))

    def summary(self) -> dict:
        """Plain-JSON: per model its weight, log evidence, assumed covariates and estimate."""
        return {
            "method": "model averaging",
            "models": [
                {"model": name, "weight": float(self.weights[name]),
                 "prior_weight": float(self.prior_weights[name]),
                 "log_evidence": float(self.log_evidence[name]),
                 "assumed_covariates": self.assumed_covariates[name],
                 "estimate": est.summary()}
                for name, est in self.estimates.items()
            ],
        }


def estimate_averaged(
    covariates: Mapping[str, float] | CovariateHistory | None,
    schedule: DoseSchedule,
    observations: Observations,
    *,
    models: Sequence[str | PopulationModel] | None = None,
    prior_weights: Sequence[float] | None = None,
    weight_kg: float | None = None,
    draws: int = 1000,
    random_seed: int | None = None,
) -> AveragedEstimate:
    """Estimate a patient's PK under several published models and weigh them by the evidence.

    Parameters
    ----------
    covariates : mapping or CovariateHistory
        The patient's covariates (``weight_kg`` needed; others as each model uses them), or
        their history when they change during therapy.
    schedule : DoseSchedule
        The dosing history.
    observations : Observations
        The observed concentrations (censored values allowed).
    models : sequence, optional
        Candidate models (names or objects); default every model in :data:`~pkmodel.pk.MODELS`.
    prior_weights : sequence of float, optional
        Prior model probabilities in the order of ``models`` (normalised); default equal.
    weight_kg : float, optional
        Body weight for mg/kg doses; defaults to ``covariates["weight_kg"]``.
    draws : int, default 1000
        Posterior draws per model (the mixture has as many).
    random_seed : int, optional
        The one seed (default :data:`pkmodel.sampling.DEFAULT_RANDOM_SEED`).

    Returns
    -------
    AveragedEstimate

    Examples
    --------
    >>> from pkmodel.pk import DoseSchedule, Observations, estimate_averaged
    >>> history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=30)
    >>> obs = Observations([98, 154, 210], [2.1, 1.8, 2.4])
    >>> avg = estimate_averaged({"weight_kg": 70, "albumin_g_dl": 4.0}, history, obs)
    >>> round(sum(avg.weights.values()), 6)
    1.0
    """
    chosen = [get_model(m) for m in (models if models is not None else MODELS.values())]
    names = [m.name for m in chosen]
    if not chosen or len(set(names)) != len(names):
        raise SpecificationError("give at least one model, each once")
    if prior_weights is None:
        prior = np.full(len(chosen), 1.0 / len(chosen))
    else:
        prior = np.asarray(prior_weights, dtype=float)
        if prior.shape != (len(chosen),) or not np.all(np.isfinite(prior)) \
                or np.any(prior < 0) or prior.sum() <= 0:
            raise SpecificationError(
                f"prior_weights must be {len(chosen)} non-negative numbers, one per model")
        prior = prior / prior.sum()
    if isinstance(covariates, CovariateHistory):
        known = set(covariates.names)
    else:
        covariates = dict(covariates or {})
        known = {c for c, v in covariates.items() if v is not None}
    estimates, log_evidence, assumed = {}, {}, {}
    for model in chosen:
        est = estimate_individual(model, covariates, schedule, observations, method="map",
                                  weight_kg=weight_kg, draws=draws, random_seed=random_seed)
        estimates[model.name] = est
        log_evidence[model.name] = float(est.diagnostics["log_evidence"])
        assumed[model.name] = {c: float(model.reference_covariates[c])
                               for c in model.covariates_used if c not in known}
    with np.errstate(divide="ignore"):
        log_post = np.log(prior) + np.array([log_evidence[n] for n in names])
    weights = np.exp(log_post - special.logsumexp(log_post))
    return AveragedEstimate(estimates, dict(zip(names, weights.tolist(), strict=True)),
                            log_evidence, dict(zip(names, prior.tolist(), strict=True)), assumed)
