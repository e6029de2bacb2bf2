"""Exact posteriors of two PK random effects on a grid, written from the models' equations.

The independent reference for the PK estimation tests: prior N(0, 1) on the standardised random
effects, the model's combined normal residual error, censored troughs by their normal tail
probabilities, everything evaluated on a regular grid (no sampler, no optimiser, no
importance weights).
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from pkmodel.pk.simulation import concentrations


def grid_log_density(model, cov, history, obs, n=161, width=5.0):
    """The grid (z, shape (n*n, 2)), the parameters there, log-likelihood and log prior, and
    the area of one cell."""
    axis = np.linspace(-width, width, n)
    z = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    params = model.individual_parameters(cov, z * model.omega_sd)
    pred = concentrations(params, history, obs.times_days, cov["weight_kg"])
    sd = np.sqrt(model.additive_sd_ug_ml**2 + (model.proportional_sd * pred) ** 2)
    y = obs.values_ug_ml
    loglik = np.where(obs.cens == 0, stats.norm.logpdf(y, pred, sd),
                      np.where(obs.cens == 1, stats.norm.logcdf(y, pred, sd),
                               stats.norm.logsf(y, pred, sd))).sum(axis=-1)
    return z, params, loglik, stats.norm.logpdf(z).sum(axis=-1), (axis[1] - axis[0]) ** 2


def grid_posterior_mean_cl(model, cov, history, obs, n=161, width=5.0) -> float:
    """The exact posterior mean of CL, L/day."""
    _, params, loglik, log_prior, _ = grid_log_density(model, cov, history, obs, n, width)
    log_post = loglik + log_prior
    weight = np.exp(log_post - log_post.max())
    return float(weight @ np.asarray(params.cl).reshape(-1) / weight.sum())


def grid_log_evidence(model, cov, history, obs, n=201, width=6.0) -> float:
    """log p(y | model): the log marginal likelihood of the observations, by quadrature."""
    _, _, loglik, log_prior, cell = grid_log_density(model, cov, history, obs, n, width)
    return float(special.logsumexp(loglik + log_prior) + np.log(cell))
