"""The hierarchical PyMC model of a population PK specification, and its closed-form predictions.

Individual parameters (log-normal random effects)::

    log P_i = log TV_P + sum_terms effect(covariates_i) + eta_iP

with ``eta_iP ~ Normal(0, omega_P)`` (diagonal BSV) written partially non-centred for the
sampler with each subject's weight ``w_iP`` (:mod:`pkmodel.pk.population.centring`: 1 is
``eta = omega z``, 0 is ``log P_i ~ Normal(mean_i, omega)``), or, for the parameters of
a BSV block (``PopulationSpec.bsv_blocks``), ``eta_i = L z_i`` with ``L`` the Cholesky factor of
the block's covariance ``diag(omega) R diag(omega)``, ``R ~ LKJ(lkj_eta)`` (``L = diag(omega)
chol(R)``; :func:`correlated_etas` is the same in NumPy). Each omega keeps its half-normal
prior whether or not it is in a block.

Concentrations come from the closed-form linear solutions summed over every dose started before
each observation (superposition), vectorised over all dose-observation pairs of the dataset at
once: no ODE solver, no loop over subjects. The unit-impulse response of the central
concentration is ``sum_k c_k exp(-lambda_k t)``: one exponential ``(1/V, CL/V)`` for one
compartment, two for two (``alpha, beta, a, b`` of :func:`pkmodel.pk.simulation.disposition`).
A dose ``D`` then gives, ``t`` after it starts:

* IV bolus: ``D sum_k c_k exp(-lambda_k t)``;
* zero-order infusion over ``T`` (rate ``R = D / T``, ``s = min(t, T)``):
  ``R sum_k (c_k / lambda_k) (exp(-lambda_k (t - s)) - exp(-lambda_k t))``
  (:func:`pkmodel.pk.simulation.infusion_response`);
* first-order absorption (``ka``, bioavailability 1):
  ``D ka sum_k c_k (exp(-lambda_k t) - exp(-ka t)) / (ka - lambda_k)``.

The residual error is normal with ``sd = sqrt(add^2 + (prop * C)^2)`` (or one term); a value
below the LLOQ contributes ``P(Y < LLOQ)`` (Beal's M3), one above a limit ``P(Y > limit)``.

Every array of the data enters as ``pm.Data``, so that one compiled model serves every dataset
with the same specification and number of subjects (:mod:`pkmodel.pk.population.fit`).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.pk.population.data import PopulationData, term_design
from pkmodel.pk.population.spec import PopulationSpec, correlation_name
from pkmodel.pk.simulation import disposition, infusion_response

__all__ = ["build_model", "correlated_etas", "correlation_cholesky", "individual_log_parameters",
           "model_data", "omega_matrix", "pair_concentrations", "predict", "random_etas",
           "residual_sd"]


def _exponentials(compartments: int, p: dict, xp: ModuleType) -> list[tuple]:
    """``(c_k, lambda_k)`` of the impulse response, 1/L and 1/day."""
    if compartments == 1:
        return [(1.0 / p["v"], p["cl"] / p["v"])]
    alpha, beta, a, b = disposition(p["cl"], p["v1"], p["q"], p["v2"], xp=xp)
    return [(a, alpha), (b, beta)]


def pair_concentrations(spec: PopulationSpec, p: dict, elapsed_days, amount_mg, duration_days,
                        xp: ModuleType = np):
    """Concentration (µg/mL) that each dose gives ``elapsed_days`` after it started.

    ``p`` maps the structural parameters to arrays broadcasting against the pair arrays
    (numpy, or pytensor with ``xp=pytensor.tensor``).
    """
    terms = _exponentials(spec.compartments, p, xp)
    t = xp.maximum(elapsed_days, 0.0)
    if spec.dosing == "bolus":
        return amount_mg * sum(c * xp.exp(-lam * t) for c, lam in terms)
    if spec.dosing == "infusion":
        if spec.compartments == 1:
            (c, lam), = terms
            return infusion_response(lam, lam, c, 0.0 * c, amount_mg / duration_days, t,
                                     duration_days, xp=xp)
        (a, alpha), (b, beta) = terms
        return infusion_response(alpha, beta, a, b, amount_mg / duration_days, t,
                                 duration_days, xp=xp)
    ka = p["ka"]
    return amount_mg * ka * sum(c * (xp.exp(-lam * t) - xp.exp(-ka * t)) / (ka - lam)
                                for c, lam in terms)


def individual_log_parameters(spec: PopulationSpec, design: dict[str, np.ndarray],
                              values: dict, xp: ModuleType = np) -> dict:
    """``log P_i`` of every structural parameter and subject.

    Parameters
    ----------
    spec : PopulationSpec
        The model.
    design : dict
        ``x_<term>`` arrays of :func:`model_data`, shape (n_subjects, n_columns).
    values : dict
        ``log_tv_<p>``, ``eta_<p>`` (the parameters with BSV) and ``theta_*`` (estimated
        covariate effects), broadcasting as ``(..., 1)`` against subjects ``(..., n_subjects)``.
    xp : module, default numpy
        The array namespace (``pytensor.tensor`` inside the PyMC model).
    """
    out = {}
    for name in spec.parameter_names:
        log_p = values[f"log_tv_{name}"]
        if name in spec.bsv_parameters:
            log_p = log_p + values[f"eta_{name}"]
        for term in spec.covariates:
            if term.parameter != name:
                continue
            x = design[f"x_{term.parameter}_{term.covariate}"]
            if not term.estimated:
                log_p = log_p + term.exponent * x[:, 0]
                continue
            names = term.names
            if term.effect == "linear":
                factor = 1.0 + values[names[0]] * x[:, 0]
                log_p = log_p + xp.log(xp.maximum(factor, 1e-6))
            else:
                for j, theta in enumerate(names):
                    log_p = log_p + values[theta] * x[:, j]
        out[name] = log_p
    return out


def residual_sd(spec: PopulationSpec, pred, values: dict, xp: ModuleType = np):
    """The residual SD (µg/mL) at predictions ``pred``."""
    error = spec.residual.error
    if error == "additive":
        return values["sigma_add_ug_ml"] + 0.0 * pred
    if error == "proportional":
        return values["sigma_prop"] * pred
    return xp.sqrt(values["sigma_add_ug_ml"] ** 2 + (values["sigma_prop"] * pred) ** 2)


def correlation_cholesky(block: tuple[str, ...], values: dict) -> np.ndarray:
    """Cholesky factor ``(..., k, k)`` of a block's correlation matrix from its ``corr_*``
    values (scalars, or arrays of draws with the same shape)."""
    k = len(block)
    shape = np.shape(values[correlation_name(block[0], block[1])])
    corr = np.broadcast_to(np.eye(k), (*shape, k, k)).copy()
    for i in range(k):
        for j in range(i + 1, k):
            r = np.asarray(values[correlation_name(block[i], block[j])], dtype=float)
            corr[..., i, j] = corr[..., j, i] = r
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        raise SpecificationError(f"the correlations of the BSV block {', '.join(block)} do not "
                                 "form a valid correlation matrix (it must be positive "
                                 "definite)") from None


def correlated_etas(block: tuple[str, ...], values: dict, z: np.ndarray) -> dict:
    """The etas of a block from standard normal ``z`` of shape ``(k, ..., n_subjects)``:
    ``eta = diag(omega) chol(R) z``, as in the PyMC model. ``values`` holds ``omega_<p>`` and
    ``corr_*`` (scalars, or draws shaped ``(m, 1)`` against ``z``'s ``(k, m, n)``)."""
    chol = correlation_cholesky(block, values)  # (..., k, k): the draws' shape, then k x k
    return {f"eta_{p}": np.asarray(values[f"omega_{p}"], dtype=float)
            * sum(chol[..., i, j] * z[j] for j in range(i + 1)) for i, p in enumerate(block)}


def random_etas(spec: PopulationSpec, values: dict, rng: np.random.Generator,
                shape: tuple[int, ...]) -> dict:
    """New random effects of every parameter with BSV, ``shape`` each (e.g. ``(n_subjects,)``
    or ``(draws, n_subjects)`` with ``omega_<p>`` and ``corr_*`` shaped ``(draws, 1)``): the
    diagonal ones first, in order, then each block's, correlated."""
    blocked = {p for block in spec.bsv_blocks for p in block}
    out = {f"eta_{p}": values[f"omega_{p}"] * rng.standard_normal(shape)
           for p in spec.bsv_parameters if p not in blocked}
    for block in spec.bsv_blocks:
        out |= correlated_etas(block, values, rng.standard_normal((len(block), *shape)))
    return out


def omega_matrix(spec: PopulationSpec, values: dict) -> np.ndarray:
    """Omega, the covariance of the etas of :attr:`PopulationSpec.bsv_parameters` (in that
    order), from scalar ``omega_<p>`` and ``corr_*``: diagonal, with each block's
    ``omega_p omega_q corr_p_q`` off the diagonal."""
    names = spec.bsv_parameters
    sd = np.array([float(values[f"omega_{p}"]) for p in names])
    corr = np.eye(len(names))
    for block in spec.bsv_blocks:
        for i, a in enumerate(block):
            for b in block[i + 1:]:
                ia, ib = names.index(a), names.index(b)
                corr[ia, ib] = corr[ib, ia] = float(values[correlation_name(a, b)])
    return sd[:, None] * corr * sd[None, :]


def model_data(spec: PopulationSpec, data: PopulationData) -> dict[str, np.ndarray]:
    """Every array the model reads, by its ``pm.Data`` name."""
    obs, dose = data.pairs(inclusive=spec.dosing == "bolus")
    cens = data.obs_cens
    out = {
        "pair_obs": obs.astype(np.int64),
        "pair_subject": data.dose_subject[dose].astype(np.int64),
        "pair_elapsed_days": data.obs_time_days[obs] - data.dose_time_days[dose],
        "pair_amount_mg": data.dose_amount_mg[dose],
        "pair_duration_days": data.dose_duration_days[dose],
        "obs_zeros": np.zeros(data.n_observations),
        "exact_index": np.flatnonzero(cens == 0).astype(np.int64),
        "exact_value_ug_ml": data.obs_value_ug_ml[cens == 0],
        "below_index": np.flatnonzero(cens == 1).astype(np.int64),
        "below_limit_ug_ml": data.obs_value_ug_ml[cens == 1],
        "above_index": np.flatnonzero(cens == -1).astype(np.int64),
        "above_limit_ug_ml": data.obs_value_ug_ml[cens == -1],
    }
    for term in spec.covariates:
        out[f"x_{term.parameter}_{term.covariate}"] = term_design(
            term, data.covariates[term.covariate])
    if spec.prior is not None:  # data, so that one compiled model serves every weight
        means, sds = zip(*spec.prior.terms.values(), strict=True)
        out |= {"prior_mean": np.array(means, dtype=float),
                "prior_sd": np.array(sds, dtype=float),
                "prior_weight": np.array(spec.prior.weight, dtype=float)}
    from pkmodel.pk.population.centring import centring_weights  # it needs predict, below

    return out | centring_weights(spec, data, out)


def predict(spec: PopulationSpec, arrays: dict, log_params: dict, xp: ModuleType = np):
    """Predicted concentrations (µg/mL) at every observation.

    ``log_params`` as :func:`individual_log_parameters` returns (numpy: shape
    ``(..., n_subjects)``; pytensor: ``(n_subjects,)``); ``arrays`` as :func:`model_data`.
    """
    subject = arrays["pair_subject"]
    if xp is np:
        p = {}
        for k, v in log_params.items():  # a value shared by all subjects has a last axis of 1
            v = np.atleast_1d(np.asarray(v, dtype=float))
            p[k] = np.exp(v[..., subject if v.shape[-1] > 1 else np.zeros_like(subject)])
        conc = pair_concentrations(spec, p, arrays["pair_elapsed_days"],
                                   arrays["pair_amount_mg"], arrays["pair_duration_days"])
        n_obs = arrays["obs_zeros"].size
        out = np.zeros((*conc.shape[:-1], n_obs))
        np.add.at(out, (..., arrays["pair_obs"]), conc)
        return out
    p = {k: xp.exp(v) if v.ndim == 0 else xp.exp(v)[subject] for k, v in log_params.items()}
    conc = pair_concentrations(spec, p, arrays["pair_elapsed_days"], arrays["pair_amount_mg"],
                               arrays["pair_duration_days"], xp=xp)
    return xp.inc_subtensor(arrays["obs_zeros"][arrays["pair_obs"]], conc)


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
    and ``eta = diag(omega) C z``;
    ``theta_*`` (Normal) for estimated covariate effects, ``sigma_prop`` and ``sigma_add_ug_ml``
    (half-normal). With ``spec.prior``, the potential ``published_prior`` adds ``weight *
    log Normal(x; mean, sd)`` for each informed quantity (:class:`InformativePrior`).
    Deterministics: ``tv_<p>`` and ``eta_<p>``; categorical and indicator effects also as
    ``ratio_*`` (``exp(theta)``, the factor on the parameter).
    """
    import pymc as pm
    import pytensor.tensor as pt

    coords = {"subject": np.arange(data.n_subjects)}
    with pm.Model(coords=coords) as model:
        arrays = {k: pm.Data(k, v) for k, v in model_data(spec, data).items()}
        values: dict = {}
        for name, par in spec.parameters.items():
            if par.fixed:  # NONMEM's FIX: a constant, recorded with the draws
                log_tv = pm.Deterministic(f"log_tv_{name}", pt.constant(np.log(par.typical)))
            else:
                log_tv = pm.Normal(f"log_tv_{name}", np.log(par.typical), par.prior_log_sd)
            values[f"log_tv_{name}"] = log_tv
            pm.Deterministic(f"tv_{name}", pt.exp(log_tv))
            if par.bsv and not any(name in block for block in spec.bsv_blocks):
                values[f"omega_{name}"] = pm.HalfNormal(f"omega_{name}", par.omega_prior)
        for block in spec.bsv_blocks:
            values |= _block(spec, block, pm, pt)
        for term in spec.covariates:
            for theta in term.names:
                values[theta] = pm.Normal(theta, term.prior_mean, term.prior_sd)
                if term.effect in ("categorical", "indicator"):
                    pm.Deterministic(theta.replace("theta_", "ratio_", 1), pt.exp(values[theta]))
        if spec.residual.error in ("proportional", "combined"):
            values["sigma_prop"] = pm.HalfNormal("sigma_prop", spec.residual.proportional_prior)
        if spec.residual.error in ("additive", "combined"):
            values["sigma_add_ug_ml"] = pm.HalfNormal("sigma_add_ug_ml",
                                                      spec.residual.additive_prior_ug_ml)
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
        below = arrays["below_index"]
        pm.Potential("y_below_lloq", pt.sum(pm.logcdf(pm.Normal.dist(pred[below], sd[below]),
                                                      arrays["below_limit_ug_ml"])))
        above = arrays["above_index"]
        # P(Y > limit) = P(-Y < -limit)
        pm.Potential("y_above_limit", pt.sum(pm.logcdf(
            pm.Normal.dist(-pred[above], sd[above]), -arrays["above_limit_ug_ml"])))
    return model


def _block(spec: PopulationSpec, block: tuple[str, ...], pm, pt) -> dict:
    """A BSV block: each parameter's ``omega_<p>`` with its half-normal ``omega_prior``, the
    Cholesky factor ``C`` of the correlation matrix ``R = C C'`` with ``R ~ LKJ(lkj_eta)``
    (``pm.LKJCorr``), and ``eta = diag(omega) C z`` (non-centred)."""
    k = len(block)
    omega = pt.stack([pm.HalfNormal(f"omega_{p}", spec.parameters[p].omega_prior)
                      for p in block])
    chol = pm.LKJCorr("chol_corr_" + "_".join(block), n=k, eta=spec.lkj_eta)
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
