"""The hierarchical PyMC model of a population PK specification.

Individual parameters (log-normal random effects)::

    log P_i = log TV_P + sum_terms effect(covariates_i) + eta_iP

with ``eta_iP ~ Normal(0, omega_P)`` (diagonal BSV) written partially non-centred for the
sampler with each subject's weight ``w_iP`` (:mod:`pkmodel.pk.population.centring`: 1 is
``eta = omega z``, 0 is ``log P_i ~ Normal(mean_i, omega)``), or, for the parameters of
a BSV block (``PopulationSpec.bsv_blocks``), ``eta_i = L z_i`` with ``L`` the Cholesky factor of
the block's covariance ``diag(omega) R diag(omega)``, ``R ~ LKJ(lkj_eta)`` (``L = diag(omega)
chol(R)``; :func:`pkmodel.pk.variability.correlated_etas` is the same in NumPy). Each omega
keeps its half-normal prior whether or not it is in a block.

The equations (individual parameters, the structure's concentrations summed over the
dose-observation pairs, the residual SD) are those of :mod:`pkmodel.pk.population.equations`,
with ``xp=pytensor.tensor``. A value below the LLOQ contributes ``P(Y < LLOQ)`` (Beal's M3), one
above a limit ``P(Y > limit)``.

Every array of the data enters as ``pm.Data`` (:func:`model_data`), so that one compiled model
serves every dataset with the same specification and number of subjects
(:mod:`pkmodel.pk.population.fit`).
"""

from __future__ import annotations

import numpy as np

from pkmodel.pk.population.centring import centring_weights
from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.equations import (
    individual_log_parameters,
    pair_arrays,
    predict,
    residual_sd,
)
from pkmodel.pk.population.spec import PopulationSpec
from pkmodel.pk.variability import correlation_name

__all__ = ["build_model", "censored_terms", "individual_log_parameters", "model_data", "predict",
           "residual_sd"]


def model_data(spec: PopulationSpec, data: PopulationData) -> dict[str, np.ndarray]:
    """Every array the model reads, by its ``pm.Data`` name: :func:`~pkmodel.pk.population.
    equations.pair_arrays` and the centring weights ``w_<p>``."""
    out = pair_arrays(spec, data)
    return out | centring_weights(spec, data, out)


def build_model(spec: PopulationSpec, data: PopulationData):
    """The PyMC model of ``spec`` on ``data``.

    Free parameters: ``log_tv_<p>`` (Normal on the log typical value; a constant
    deterministic for a fixed parameter), ``omega_<p>`` (half-normal) and, for the parameters
    with diagonal BSV, ``u_<p>`` (one per subject: ``u_i ~ Normal((1 - w_i) mean_i,
    omega^(1 - w_i))``, ``eta_i = omega^w_i (u_i - (1 - w_i) mean_i)``, with ``mean_i`` the
    log typical value plus the covariate effects and ``w_i`` the data array ``w_<p>`` of
    :func:`~pkmodel.pk.population.centring.centring_weights`); for a BSV block, ``z_<p>``
    (standard normal) and ``chol_corr_<p>_<q>...`` (``pm.LKJCorr``: the Cholesky factor ``C``
    of the block's correlation matrix, LKJ prior), with the deterministics ``corr_<p>_<q>``
    and ``eta = diag(omega) C z``; for the parameters with IOV, ``omega_iov_<p>`` (half-normal)
    and ``z_iov_<p>`` (standard normal, one per subject slot and occasion: ``kappa = omega_iov
    z``, the deterministic ``kappa_<p>``, added to the log parameter of each observation of that
    occasion);
    ``theta_*`` (Normal) for estimated covariate effects, ``sigma_prop`` and ``sigma_add_ug_ml``
    (half-normal). With ``spec.prior``, the potential ``published_prior`` adds ``weight *
    log Normal(x; mean, sd)`` for each informed quantity (:class:`InformativePrior`).
    Deterministics: ``tv_<p>`` and ``eta_<p>``; categorical and indicator effects also as
    ``ratio_*`` (``exp(theta)``, the factor on the parameter).
    """
    import pymc as pm
    import pytensor.tensor as pt

    coords = {"subject": np.arange(data.n_subjects)}
    if spec.iov_parameters:
        coords["occasion"] = np.arange(max(data.n_occasions, 1))
    with pm.Model(coords=coords) as model:
        arrays = {k: pm.Data(k, v) for k, v in model_data(spec, data).items()}
        values: dict = {}
        priors = spec.priors()  # the one statement of every prior (the report's too)
        for name, par in spec.parameters.items():
            centre = np.log(spec.typical_per_day(name))  # the model computes in days
            if par.fixed:  # NONMEM's FIX: a constant, recorded with the draws
                log_tv = pm.Deterministic(f"log_tv_{name}", pt.constant(centre))
            else:
                log_tv = priors[f"log_tv_{name}"].create(f"log_tv_{name}")
            values[f"log_tv_{name}"] = log_tv
            pm.Deterministic(f"tv_{name}", pt.exp(log_tv))
            if par.bsv and not any(name in block for block in spec.bsv_blocks):
                values[f"omega_{name}"] = priors[f"omega_{name}"].create(f"omega_{name}")
            if par.iov:  # non-centred: an occasion has few samples
                omega_iov = priors[f"omega_iov_{name}"].create(f"omega_iov_{name}")
                z = pm.Normal(f"z_iov_{name}", 0.0, 1.0, dims=("subject", "occasion"))
                values[f"kappa_{name}"] = pm.Deterministic(f"kappa_{name}", omega_iov * z,
                                                           dims=("subject", "occasion"))
        for block in spec.bsv_blocks:
            values |= _block(priors, block, pm, pt)
        for term in spec.covariates:
            for theta in term.names:
                values[theta] = priors[theta].create(theta)
                if term.form in ("categorical", "indicator"):
                    pm.Deterministic(theta.replace("theta_", "ratio_", 1), pt.exp(values[theta]))
        for name in spec.residual.names:
            values[name] = priors[name].create(name)
        if spec.prior is not None:  # the power prior of a published model
            informed = pt.stack([pt.log(values[k]) if k.startswith("omega_") else values[k]
                                 for k in spec.prior.terms])
            pm.Potential("published_prior", arrays["prior_weight"] * pt.sum(pm.logp(
                pm.Normal.dist(arrays["prior_mean"], arrays["prior_sd"]), informed)))
        # diagonal BSV, partially non-centred with the design's weights (centring.py); the
        # means need every theta
        means = individual_log_parameters(
            spec, arrays, values | {f"eta_{q}": 0.0 for q in spec.bsv_parameters}, xp=pt)
        for name in spec.bsv_parameters:
            if f"w_{name}" not in arrays:  # in a block
                continue
            w, omega = arrays[f"w_{name}"], values[f"omega_{name}"]
            shift = (1.0 - w) * means[name]
            u = pm.Normal(f"u_{name}", shift, omega ** (1.0 - w), dims="subject")
            values[f"eta_{name}"] = pm.Deterministic(f"eta_{name}", omega**w * (u - shift),
                                                     dims="subject")
        log_params = individual_log_parameters(spec, arrays, values, xp=pt)
        pred = predict(spec, arrays, log_params, xp=pt)
        sd = residual_sd(spec, pred, values, xp=pt)
        exact = arrays["exact_index"]
        pm.Normal("y", mu=pred[exact], sigma=sd[exact], observed=arrays["exact_value_ug_ml"])
        # the censored terms only for data that have such values (a fifth of the compile time;
        # the cache key names them: censored_terms)
        if "below" in censored_terms(data):
            below = arrays["below_index"]
            pm.Potential("y_below_lloq", pt.sum(pm.logcdf(
                pm.Normal.dist(pred[below], sd[below]), arrays["below_limit_ug_ml"])))
        if "above" in censored_terms(data):
            above = arrays["above_index"]
            # P(Y > limit) = P(-Y < -limit)
            pm.Potential("y_above_limit", pt.sum(pm.logcdf(
                pm.Normal.dist(-pred[above], sd[above]), -arrays["above_limit_ug_ml"])))
    return model


def censored_terms(data: PopulationData) -> tuple[str, ...]:
    """Which censored likelihood terms the data need: ``below`` (values below the LLOQ) and
    ``above`` (values above a limit)."""
    return tuple(name for name, code in (("below", 1), ("above", -1))
                 if np.any(data.obs_cens == code))


def _block(priors: dict, block: tuple[str, ...], pm, pt) -> dict:
    """A BSV block: each parameter's ``omega_<p>`` with its half-normal ``omega_prior``, the
    Cholesky factor ``C`` of the correlation matrix ``R = C C'`` with ``R ~ LKJ(lkj_eta)``
    (``pm.LKJCorr``), and ``eta = diag(omega) C z`` (non-centred)."""
    k = len(block)
    omega = pt.stack([priors[f"omega_{p}"].create(f"omega_{p}") for p in block])
    name = "chol_corr_" + "_".join(block)
    chol = priors[name].create(name, n=k)
    z = pt.stack([pm.Normal(f"z_{p}", 0.0, 1.0, dims="subject") for p in block])
    eta = omega[:, None] * pt.dot(chol, z)
    corr = pt.dot(chol, chol.T)
    values = {}
    for i, p in enumerate(block):
        values[f"omega_{p}"] = omega[i]
        values[f"eta_{p}"] = pm.Deterministic(f"eta_{p}", eta[i], dims="subject")
        for j in range(i + 1, k):
            pm.Deterministic(correlation_name(p, block[j]), corr[i, j])
    return values
