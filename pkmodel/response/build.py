"""The PyMC model of remission: built from a Design, a specification's options and its priors.

logit P(remission_ij) = alpha + a_center[i] + tau_month[j] + beta_i * (log TL_i - log 5)
                        + delta_strategy[i] + gamma . z_i + u_i

with beta_i = beta + b_strategy[i] (+ b_disease[i] when ``slope_by="disease"``). Centre effects
are zero-sum and partially non-centred, slope offsets zero-sum with a fixed scale; what the
data can identify is decided in :mod:`pkmodel.response.structure`. The patient effect
u_i ~ Normal(0, sigma_patient) is integrated out of each patient's joint likelihood of all
their assessments by Gauss-Hermite quadrature (as NONMEM's and lme4's GLMM estimators do),
instead of being sampled: with one or two binary outcomes per patient the sampled version
forms a funnel that NUTS explores slowly, and it costs one parameter per patient. A TL censored
at an assay limit is a latent true value drawn from the population distribution of log TL and
constrained by its limit; with ``assay_cv`` every TL is latent and the measured value carries
log-normal assay error.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

from pkmodel.response.design import REFERENCE_TL_UG_ML, Design
from pkmodel.response.marginal import marginal_bernoulli_logp
from pkmodel.response.priors import Priors
from pkmodel.response.structure import (
    GROUP_PARAMETRISATION,
    Structure,
)
from pkmodel.response.terms import full_levels, log_odds, prior_of, term

__all__ = ["build_pymc_model", "patient_outcome_matrix"]

def patient_outcome_matrix(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes as (patient, month) with a 0/1 mask of the assessments that exist."""
    y = np.zeros((design.n_patients, len(design.months)), dtype=np.int64)
    mask = np.zeros_like(y, dtype=float)
    y[design.row_patient, design.row_month] = design.remission
    mask[design.row_patient, design.row_month] = 1.0
    return y, mask


def _marginal_random(eta, sigma, mask, rng=None, size=None):
    """Draw outcomes: a patient effect per patient, then each assessment (``size`` is batch)."""
    eta, sigma, mask = np.asarray(eta), np.asarray(sigma), np.asarray(mask)
    m = np.broadcast_shapes(eta.shape[-1:], mask.shape[-1:])
    batch = tuple(size) if size is not None else np.broadcast_shapes(
        eta.shape[:-1], sigma.shape, mask.shape[:-1])
    u = rng.normal(0.0, 1.0, batch) * sigma
    p = 1.0 / (1.0 + np.exp(-(eta + u[..., None])))
    return (rng.random(batch + m) < p).astype(np.int64) * (mask > 0)


def _slope_offsets(kind: str, offsets: str, p: Priors):
    """Offsets of the TL slope by ``kind`` ("strategy" or "disease"), over the dim ``kind``.

    ``"zero_sum"``: deviations from the common slope that sum to zero, ``ZeroSumNormal`` with the
    fixed scale ``slope_group_sd`` (regularised, with no between-group SD to learn from two or
    three groups). ``"contrasts"``: 0 for the first level and ``Normal(0, slope_sd)`` treatment
    contrasts for the others. Stored as ``b_slope_<kind>`` either way.
    """
    if offsets == "zero_sum":
        return prior_of(f"b_slope_{kind}", p).create(f"b_slope_{kind}", dims=kind)
    contrast = prior_of(f"b_slope_{kind}_contrast", p).create(f"b_slope_{kind}_contrast",
                                                              dims=f"{kind}_contrast")
    return pm.Deterministic(f"b_slope_{kind}", pt.concatenate([pt.zeros(1), contrast]), dims=kind)


class BeyondLimit(Transform):
    """``x = limit + side * sigma * softplus(y)``: a latent log TL beyond its assay limit.

    The latent log TL of a censored patient is ``Normal(mu_tl, sigma_tl)`` held on one side of
    its limit (``side=+1`` above, ``-1`` below). Its conditional density is largest at the
    limit and falls off like a normal tail. The log transform ``x = limit + exp(y)`` turns that
    normal tail into a doubly exponential one in ``y``, whose curvature a few SDs from the
    limit forced NUTS into short steps (31 gradients per draw at 2,000 patients with a quarter
    of TLs censored, against 9 without censoring; 18 with this transform). With ``softplus``
    the far side stays Gaussian and the near side is an exponential tail; scaling by
    ``sigma_tl`` keeps ``y`` on the same scale whatever the spread of TL. ``sigma`` is
    ``inputs[3]``, after the generator, the size and the mean, for the ``Normal`` and the
    ``TruncatedNormal`` alike: the transform depends on no other variable, and both forms of
    the model use it, so they share their unconstrained space. Only NumPy-native functions are
    used (no scipy special function, which Numba reaches through a pointer looked up at run
    time).
    """

    name = "beyond_limit"

    def __init__(self, limit: np.ndarray, side: int):
        self.limit = np.asarray(limit, dtype=float)
        self.side = float(side)

    def forward(self, value, *inputs):
        t = self.side * (value - self.limit) / inputs[3]
        return t + pt.log(-pt.expm1(-t))  # log(expm1(t)), without overflow

    def backward(self, value, *inputs):
        return self.limit + self.side * inputs[3] * pt.softplus(value)

    def log_jac_det(self, value, *inputs):
        return pt.log(inputs[3]) - pt.softplus(-value)  # log(sigma * sigmoid(y))


def _coords(design: Design) -> dict:
    coords = {
        "obs": np.arange(len(design.remission)),
        "patient": list(design.patient_ids),
        "group": list(design.groups),
        "month": list(design.months),
        "month_contrast": list(design.months[1:]),
        "strategy": list(design.strategies),
        "strategy_contrast": list(design.strategies[1:]),
        "covariate": list(design.covariate_columns),
    }
    if design.diseases:
        coords["disease"] = list(design.diseases)
    return coords


def build_pymc_model(design: Design, priors: Priors, *, patient_effect: bool,
                     assay_cv: float | None, structure: Structure,
                     for_sampler: bool = False) -> pm.Model:
    """Build the PyMC model for ``design``.

    Parameters
    ----------
    design : Design
        Checked index arrays and covariates.
    priors : Priors
        Prior scales.
    patient_effect : bool
        Include the patient effect ``u_i`` (needs repeated assessments of a patient). The
        outcome is then ``remission`` over (patient, month), with a mask for missing visits,
        and its log-likelihood is per patient.
    assay_cv : float or None
        Coefficient of variation of the TL assay (e.g. 0.1); ``None`` treats uncensored TL as exact.
    structure : Structure
        What the hierarchy can identify and how to parametrise it
        (:func:`pkmodel.response.structure.choose_structure`): the centre term and its
        centring, and the form of the slope offsets.
    for_sampler : bool, default False
        Build the form that the sampler uses (:mod:`pkmodel.response.compiled`). It adds the
        deterministic ``remission_loglik``, the log-likelihood of each patient's assessments
        (patient effect) or of each assessment (without) for LOO, computed with each draw so
        that it needs no second compiled function. And, without ``assay_cv``, it writes the
        censored-TL terms in their cheapest exact form: the latent TL of a censored patient is
        a ``Normal`` held on its side of the limit by its transform (:class:`BeyondLimit`), and
        only the measured TLs enter the likelihood of log TL. The joint density N(x) 1[x > L]
        is the same as that of the default form (a ``TruncatedNormal`` latent, N(x) / P(X > L),
        plus a ``Censored`` likelihood that contributes P(X > L)), so the posterior is the
        same, but no normal CDF is evaluated. ``tests/response/test_response_model.py`` checks
        that both forms have the same log density. The default form is the one for prior predictive
        draws, where the censored TLs are drawn as the assay reports them.
    """
    p = priors
    n_strat = len(design.strategies)
    cens = design.tl_cens
    with pm.Model(coords=_coords(design)) as model:
        # --- population distribution of log baseline TL (log µg/mL)
        mu_tl = prior_of("mu_tl", p).create("mu_tl")
        sigma_tl = prior_of("sigma_tl", p).create("sigma_tl")
        lower = np.where(cens == 1, design.log_tl, -np.inf)
        upper = np.where(cens == -1, design.log_tl, np.inf)
        if assay_cv is None:
            measured = np.flatnonzero(cens == 0)
            if not for_sampler:
                pm.Censored("log_tl", pm.Normal.dist(mu_tl, sigma_tl), lower=lower,
                            upper=upper, observed=design.log_tl, dims="patient")
            elif measured.size:
                model.add_coord("patient_tl_measured",
                                [design.patient_ids[i] for i in measured])
                pm.Normal("log_tl", mu_tl, sigma_tl, observed=design.log_tl[measured],
                          dims="patient_tl_measured")
            log_tl = pt.as_tensor_variable(design.log_tl.copy())
            for code, name in ((-1, "log_tl_above_limit"), (1, "log_tl_below_limit")):
                idx = np.flatnonzero(cens == code)
                if idx.size == 0:
                    continue
                limit = design.log_tl[idx]
                model.add_coord(f"patient_{name}", [design.patient_ids[i] for i in idx])
                transform = BeyondLimit(limit, -code)
                if for_sampler:  # N(x) 1[x beyond the limit]: no normal CDF
                    latent = pm.Normal(name, mu_tl, sigma_tl, dims=f"patient_{name}",
                                       default_transform=transform,
                                       initval=limit - 0.5 * code)  # inside the bound
                else:
                    bound = {"lower": limit} if code == -1 else {"upper": limit}
                    latent = pm.TruncatedNormal(name, mu_tl, sigma_tl, **bound,
                                                dims=f"patient_{name}",
                                                default_transform=transform)
                log_tl = pt.set_subtensor(log_tl[idx], latent)
        else:
            sd_meas = float(np.sqrt(np.log1p(assay_cv**2)))
            z_tl = pm.Normal("z_tl", 0.0, 1.0, dims="patient")
            log_tl = mu_tl + sigma_tl * z_tl
            pm.Censored("log_tl", pm.Normal.dist(log_tl, sd_meas), lower=lower, upper=upper,
                        observed=design.log_tl, dims="patient")

        # --- centres: zero-sum deviations from the mean intercept of the fitted centres,
        # partially non-centred (structure.py). With a_j iid Normal(0, sigma) around a
        # population intercept mu ~ Normal(m, s), the mean of the fitted centres' intercepts is
        # alpha = mu + mean(a) ~ Normal(m, sqrt(s^2 + sigma^2 / J)) and the deviations a_j -
        # mean(a) are ZeroSumNormal(sigma), independent of it: the same model, without the
        # ridge between alpha and the centre effects.
        n_groups = len(design.groups)
        shape = {"group_effects": structure.group_effects, "n_groups": n_groups}
        if structure.group_effects == GROUP_PARAMETRISATION:
            sigma_group = prior_of("sigma_group", p).create("sigma_group")
            w = float(structure.group_centring)
            z_group = pm.ZeroSumNormal("z_group", sigma=sigma_group ** (1.0 - w), dims="group")
            a_group = pm.Deterministic("a_group", sigma_group**w * z_group, dims="group")
            alpha = prior_of("alpha", p, shape).create("alpha", given={
                "sigma": pt.sqrt(p.intercept_sd**2 + sigma_group**2 / n_groups)})
        else:
            alpha = prior_of("alpha", p, shape).create("alpha")

        # --- fixed effects: the log-odds as the model's terms define them (terms.py)
        exposure = design.log_gain.size > 0
        if exposure:  # the regimen acts through the exposure gain it brings (exposure.py)
            values = {"alpha": alpha, "b_base": prior_of("b_base", p).create("b_base"),
                      "b_gain": prior_of("b_gain", p).create("b_gain")}
        else:
            values = {"alpha": alpha, "beta": prior_of("beta", p).create("beta")}
        if n_strat > 1 and not exposure:
            values["b_slope_strategy"] = _slope_offsets("strategy", structure.slope_offsets, p)
            values["delta_strategy"] = prior_of("delta_strategy", p).create(
                "delta_strategy", dims="strategy_contrast")
        if design.diseases:
            model.add_coord("disease_contrast", list(design.diseases[1:]))
            values["b_slope_disease"] = _slope_offsets("disease", structure.slope_offsets, p)
        if design.z.shape[1]:
            values["gamma"] = prior_of("gamma", p).create("gamma", dims="covariate")
        if structure.group_effects == GROUP_PARAMETRISATION:
            values["a_group"] = a_group
        eta_p = log_odds(values, {
            "strategy": design.patient_strategy, "disease": design.patient_disease,
            "group": design.patient_group, "z": design.z, "log_gain": design.log_gain,
            "log_tl": log_tl - np.log(REFERENCE_TL_UG_ML)})

        # --- assessment months and the patient effect
        month_effect = pt.zeros(len(design.months))
        if len(design.months) > 1:
            tau = prior_of("tau_month", p).create("tau_month", dims="month_contrast")
            month_effect = full_levels(tau, term("tau_month"))
        if patient_effect or exposure:
            # the patient effect and, with exposure, the PK uncertainty of the patient's log
            # gain (b_gain x its posterior SD): independent normal effects, integrated together
            sigma_patient = (prior_of("sigma_patient", p).create("sigma_patient")
                             if patient_effect else pt.zeros(()))
            if exposure:
                sigma_patient = pt.sqrt(sigma_patient**2
                                        + (values["b_gain"] * design.log_gain_sd) ** 2)
            y, mask = patient_outcome_matrix(design)
            eta = eta_p[:, None] + month_effect[None, :]
            pm.CustomDist("remission", eta, sigma_patient, mask, logp=marginal_bernoulli_logp,
                          random=_marginal_random, signature="(m),(),(m)->(m)",
                          observed=y, dtype="int64", dims=("patient", "month"))
            if for_sampler:
                pm.Deterministic("remission_loglik",
                                 marginal_bernoulli_logp(y, eta, sigma_patient, mask),
                                 dims="patient")
        else:
            eta = eta_p[design.row_patient] + month_effect[design.row_month]
            pm.Bernoulli("remission", logit_p=eta, observed=design.remission, dims="obs")
            if for_sampler:
                sign = 2.0 * design.remission - 1.0
                pm.Deterministic("remission_loglik", -pt.log1pexp(-sign * eta), dims="obs")
    return model
