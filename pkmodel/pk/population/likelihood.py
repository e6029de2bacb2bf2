"""The predictive groups of a population fit: log likelihood, observed and replicated data.

What ArviZ's ``loo``, ``compare``, ``loo_pit`` and predictive-check plots read, computed from the
posterior draws with the model's own equations (:mod:`~pkmodel.pk.population.equations`):

* ``log_likelihood``: ``y`` (chain, draw, observation), each observation's log density given
  the draw and its subject's random effects: Normal for an observed value, ``log P(Y < LLOQ)``
  for one below the LLOQ (Beal's M3 term, as in the PyMC model), ``log P(Y > limit)`` for one
  above; and ``y_by_subject`` (chain, draw, subject), each subject's log likelihood with its
  random effects integrated out (importance sampling, :func:`subject_log_likelihood`): leaving a
  subject out is how a new patient arrives, so subject-level LOO reads this one;
* ``observed_data``: ``y`` (the value, or the limit of a censored one, µg/mL);
* ``constant_data``: each observation's ``time_days``, ``subject`` (its ID) and ``cens``;
* ``posterior_predictive``: ``y`` replicated from each draw (its own random effects, new
  residual error; not censored).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats
from scipy.special import logsumexp

from pkmodel.pk.population.build import model_data
from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.equations import (
    individual_log_parameters,
    omega_matrix,
    predict,
    residual_sd,
)
from pkmodel.pk.population.spec import PopulationSpec

__all__ = ["IMPORTANCE_DRAWS", "observation_log_likelihood", "posterior_values",
           "predictive_groups", "subject_log_likelihood"]

#: Random effects drawn per subject to integrate them out of its likelihood.
IMPORTANCE_DRAWS = 64
_UNIT = "µg/mL"


def posterior_values(spec: PopulationSpec, posterior: xr.Dataset,
                     pick: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The equations' inputs at posterior draws: population values shaped ``(draws, 1)``,
    ``eta_<p>`` shaped ``(draws, subjects)``, ``omega_<p>`` and correlations ``(draws, 1)``.

    Parameters
    ----------
    spec : PopulationSpec
        The model (its parameters with BSV and correlations).
    posterior : xarray.Dataset
        ``(chain, draw[, subject])`` variables.
    pick : numpy.ndarray, optional
        Indices of the draws (chains stacked, chain-major); default all.
    """
    post = posterior.stack(sample=("chain", "draw"))
    pick = np.arange(post.sizes["sample"]) if pick is None else pick
    out = {k: post[k].values[pick][:, None] for k in post.data_vars
           if k.startswith(("log_tv_", "theta_", "sigma_", "omega_"))
           or k in spec.correlation_names}
    out |= {f"eta_{p}": post[f"eta_{p}"].transpose("sample", "subject").values[pick]
            for p in spec.bsv_parameters}
    return out


def _log_density(spec: PopulationSpec, data: PopulationData, pred: np.ndarray,
                 values: dict) -> np.ndarray:
    """Each observation's log density at predictions ``pred`` (last axis: observations)."""
    # a prediction of 0 under a purely proportional error (SD 0): the value is impossible
    sd = np.maximum(residual_sd(spec, pred, values), 1e-300)
    y, cens = data.obs_value_ug_ml, data.obs_cens
    return np.where(cens == 0, stats.norm.logpdf(y, pred, sd),
                    np.where(cens == 1, stats.norm.logcdf(y, pred, sd),
                             stats.norm.logsf(y, pred, sd)))


def observation_log_likelihood(spec: PopulationSpec, data: PopulationData,
                               values: dict) -> np.ndarray:
    """``(draws, observations)`` log likelihood of each observation given the draws' values
    (:func:`posterior_values`), censored ones by their log CDF (or survival function)."""
    arrays = model_data(spec, data)
    pred = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    return _log_density(spec, data, pred, values)


def _mvn_logpdf(x: np.ndarray, mean: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """Log density of ``N(mean, L L')`` at ``x`` (last axis the dimension; ``chol`` broadcasts
    as ``(..., k, k)``)."""
    k = x.shape[-1]
    z = np.linalg.solve(chol, (x - mean)[..., None])[..., 0]
    logdet = np.sum(np.log(np.abs(np.diagonal(chol, axis1=-2, axis2=-1))), axis=-1)
    return -0.5 * np.sum(z**2, axis=-1) - logdet - 0.5 * k * np.log(2 * np.pi)


def subject_log_likelihood(spec: PopulationSpec, data: PopulationData, values: dict,
                           rng: np.random.Generator, *,
                           n_etas: int = IMPORTANCE_DRAWS) -> np.ndarray:
    """``(draws, subjects)`` log likelihood of each subject's observations with its random
    effects integrated out: ``log p(y_i | theta) = log E_eta[p(y_i | eta, theta)]``.

    Importance sampling with one proposal per subject, shared by all draws: a defensive mixture
    of 0.8 of a normal at the posterior mean and 1.5 times the posterior covariance of the
    subject's etas and 0.2 of ``N(0, Omega)`` at the posterior median of Omega;
    ``n_etas`` proposal points per subject. A subject's value is exact when the model has no
    random effects.
    """
    names = spec.bsv_parameters
    arrays = model_data(spec, data)
    n_draws = next(iter(values.values())).shape[0]
    n_sub = data.n_subjects
    if not names:
        ll = observation_log_likelihood(spec, data, values)
        out = np.zeros((n_draws, n_sub))
        np.add.at(out, (slice(None), data.obs_subject), ll)
        return out
    k = len(names)
    post_eta = np.stack([values[f"eta_{p}"] for p in names], axis=-1)  # (S, n_sub, k)
    mean = post_eta.mean(axis=0)
    centred = post_eta - mean
    cov = np.einsum("sik,sil->ikl", centred, centred) / max(n_draws - 1, 1)
    cov = 1.5**2 * cov + 1e-10 * np.eye(k)
    chol_post = np.linalg.cholesky(cov)  # (n_sub, k, k)
    median = {key: np.median(v) for key, v in values.items() if v.shape[-1] == 1}
    chol_prior = np.linalg.cholesky(omega_matrix(spec, median) + 1e-12 * np.eye(k))
    from_prior = rng.random((n_etas, n_sub)) < 0.2
    z = rng.standard_normal((n_etas, n_sub, k))
    eta = np.where(from_prior[..., None], np.einsum("kl,mil->mik", chol_prior, z),
                   mean + np.einsum("ikl,mil->mik", chol_post, z))  # (M, n_sub, k)
    log_q = np.logaddexp(np.log(0.8) + _mvn_logpdf(eta, mean, chol_post),
                         np.log(0.2) + _mvn_logpdf(eta, 0.0, chol_prior))
    omegas = np.stack([omega_matrix(spec, {key: float(v[s, 0]) for key, v in values.items()
                                           if v.shape[-1] == 1}) for s in range(n_draws)])
    chol_draws = np.linalg.cholesky(omegas + 1e-12 * np.eye(k))  # (S, k, k)
    population = {key: v for key, v in values.items() if not key.startswith("eta_")}
    # about 2 million pairs a chunk (memory)
    chunk = max(1, 2_000_000 // (n_etas * max(arrays["pair_obs"].size, 1)))
    out = np.empty((n_draws, n_sub))
    for start in range(0, n_draws, chunk):
        stop = min(start + chunk, n_draws)
        vals = {key: v[start:stop, None] for key, v in population.items()}  # (B, 1, 1)
        vals |= {f"eta_{p}": eta[..., j] for j, p in enumerate(names)}  # (M, n_sub)
        pred = predict(spec, arrays, individual_log_parameters(spec, arrays, vals))
        ll_obs = _log_density(spec, data, pred, vals)  # (B, M, n_obs)
        ll = np.zeros((*ll_obs.shape[:-1], n_sub))
        np.add.at(ll, (..., data.obs_subject), ll_obs)
        log_prior = _mvn_logpdf(eta[None], 0.0, chol_draws[start:stop, None, None])  # (B, M, n)
        out[start:stop] = logsumexp(ll + log_prior - log_q[None], axis=1) - np.log(n_etas)
    return out


def predictive_groups(spec: PopulationSpec, data: PopulationData, posterior: xr.Dataset,
                      random_seed: int) -> dict[str, xr.Dataset]:
    """The ``log_likelihood``, ``observed_data``, ``constant_data`` and
    ``posterior_predictive`` groups of a fit (see the module's description), with units."""
    rng = np.random.default_rng([int(random_seed), 27])
    values = posterior_values(spec, posterior)
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    arrays = model_data(spec, data)
    pred = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    ll = _log_density(spec, data, pred, values)
    ll_subject = subject_log_likelihood(spec, data, values, rng)
    replicated = pred + residual_sd(spec, pred, values) * rng.standard_normal(pred.shape)
    obs = {"observation": np.arange(data.n_observations)}
    subjects = {"subject": list(data.subject_ids)}
    dims = ("chain", "draw")
    chain_draw = {"chain": posterior["chain"].values, "draw": posterior["draw"].values}
    ids = np.asarray(data.subject_ids, dtype=str)
    return {
        "log_likelihood": xr.Dataset({
            "y": xr.DataArray(ll.reshape(*shape, -1), dims=(*dims, "observation"),
                              attrs={"units": f"log density of y in {_UNIT}",
                                     "censored": "log P(Y < LLOQ) below, log P(Y > limit) "
                                                 "above"}),
            "y_by_subject": xr.DataArray(ll_subject.reshape(*shape, -1),
                                         dims=(*dims, "subject"),
                                         attrs={"units": "log density of a subject's y, its "
                                                         "random effects integrated out"})},
            coords=chain_draw | obs | subjects),
        "observed_data": xr.Dataset({"y": xr.DataArray(
            data.obs_value_ug_ml, dims="observation",
            attrs={"units": _UNIT, "long_name": "concentration (the limit when censored)"})},
            coords=obs),
        "constant_data": xr.Dataset({
            "time_days": xr.DataArray(data.obs_time_days, dims="observation",
                                      attrs={"long_name": "time since the subject's first dose, "
                                                   "days"}),
            "subject": xr.DataArray(ids[data.obs_subject], dims="observation"),
            "cens": xr.DataArray(data.obs_cens, dims="observation",
                                 attrs={"units": "0 observed, 1 below the LLOQ, -1 above a "
                                                 "limit"})}, coords=obs),
        "posterior_predictive": xr.Dataset({"y": xr.DataArray(
            replicated.reshape(*shape, -1), dims=(*dims, "observation"),
            attrs={"units": _UNIT, "long_name": "replicated concentration (not censored)"})},
            coords=chain_draw | obs),
    }
