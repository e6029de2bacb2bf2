"""The remission model with censored TLs integrated out and the data as inputs.

The same model as :func:`pkmodel.response.build.build_pymc_model` (its ``for_sampler`` form,
without ``assay_cv``), in other coordinates: a baseline TL censored at an assay limit is not a
latent variable sampled per patient but integrated out of the patient's likelihood together
with the patient effect (:mod:`pkmodel.response.censored`), and the cohort enters as
``pm.Data`` inputs. The compiled model then depends on the cohort's *shape* only
(:class:`ModelShape`: patient slots, centres, months, strategies, diseases, covariate columns,
exposure), so one compiled model serves every cohort of that shape
(:func:`pkmodel.response.compiled.integrated_sampler_model`): a refit of a new cohort
skips the compile. Patients are padded to :func:`~pkmodel.pk.population.compiled.subject_slots`
slots (no assessments, no TL: they add nothing to the log density, and their log-likelihood,
0, is dropped from the draws); the censored patients are an index array of any length. The
centring of the centre effects (:mod:`pkmodel.response.structure`) is an input too.

The log-likelihood stored for LOO (``remission_loglik``) is per patient: for a measured TL the
marginal likelihood of the outcomes, for a censored one the outcomes' likelihood given that the
TL lies beyond its limit (``log I_i - log P(beyond)``); without a patient effect it is also per
patient (the product of the patient's assessments), not per assessment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pkmodel.pk.population.compiled import subject_slots
from pkmodel.response.design import REFERENCE_TL_UG_ML, Design
from pkmodel.response.priors import Priors
from pkmodel.response.structure import GROUP_PARAMETRISATION, Structure

__all__ = ["ModelShape", "build_integrated_model", "labelled", "model_inputs", "model_shape"]


@dataclass(frozen=True)
class ModelShape:
    """What the compiled integrated model depends on besides the priors: the cohort's structure.

    Never the data: two cohorts of the same shape share one compiled model.
    """

    patient_slots: int
    n_groups: int
    n_months: int
    n_strategies: int
    n_diseases: int
    n_covariates: int
    exposure: bool
    patient_effect: bool
    group_effects: str
    slope_offsets: str


def model_shape(design: Design, *, patient_effect: bool, structure: Structure) -> ModelShape:
    """The :class:`ModelShape` of ``design`` under these options."""
    return ModelShape(
        patient_slots=subject_slots(design.n_patients), n_groups=len(design.groups),
        n_months=len(design.months), n_strategies=len(design.strategies),
        n_diseases=len(design.diseases), n_covariates=len(design.covariate_columns),
        exposure=design.log_gain.size > 0, patient_effect=bool(patient_effect),
        group_effects=structure.group_effects, slope_offsets=structure.slope_offsets)


def model_inputs(design: Design, shape: ModelShape, structure: Structure) -> dict[str, np.ndarray]:
    """The arrays the compiled model reads (``pm.Data`` by name), padded to the shape's slots.

    ``y`` and ``mask`` (slot x month) hold the assessments of the patients with a measured TL
    (a censored patient's are in ``cens_y``, ``cens_mask``, with ``cens_patient`` its slot,
    ``cens_limit`` the log limit and ``cens_side`` +1 above, -1 below); ``tl_weight`` is 1 for
    a measured TL and 0 otherwise.
    """
    n, slots, months = design.n_patients, shape.patient_slots, shape.n_months
    if n > slots:
        raise ValueError(f"{n} patients do not fit {slots} slots")
    y = np.zeros((slots, months), dtype=np.int64)
    mask = np.zeros((slots, months))
    y[design.row_patient, design.row_month] = design.remission
    mask[design.row_patient, design.row_month] = 1.0
    cens = np.flatnonzero(design.tl_cens != 0)
    measured = np.zeros(slots)
    measured[:n] = design.tl_cens == 0

    def per_slot(values, dtype=float):
        out = np.zeros((slots, *np.shape(values)[1:]), dtype=dtype)
        out[:n] = values
        return out

    arrays = {
        "y": y * measured[:, None].astype(np.int64), "mask": mask * measured[:, None],
        "cens_y": y[cens], "cens_mask": mask[cens], "cens_patient": cens.astype(np.int64),
        "cens_limit": design.log_tl[cens].astype(float),
        "cens_side": -design.tl_cens[cens].astype(float),  # tl_cens -1 is above: side +1
        "log_tl_ug_ml": per_slot(np.where(design.tl_cens == 0, design.log_tl, 0.0)),
        "tl_weight": measured,
        "patient_group": per_slot(design.patient_group, np.int64),
        "patient_strategy": per_slot(design.patient_strategy, np.int64),
        "patient_disease": per_slot(design.patient_disease, np.int64),
        "z": per_slot(design.z),
        "group_centring": np.asarray(float(structure.group_centring)),
    }
    if shape.exposure:
        arrays["log_gain"] = per_slot(design.log_gain)
        arrays["log_gain_sd"] = per_slot(design.log_gain_sd)
    return arrays


def _coords(shape: ModelShape) -> dict:
    """Coordinates by position: the fit labels them with the cohort's own after sampling."""
    coords = {
        "patient": list(range(shape.patient_slots)), "group": list(range(shape.n_groups)),
        "month": list(range(shape.n_months)),
        "month_contrast": list(range(1, shape.n_months)),
        "strategy": list(range(shape.n_strategies)),
        "strategy_contrast": list(range(1, shape.n_strategies)),
        "covariate": list(range(shape.n_covariates)),
    }
    if shape.n_diseases:
        coords["disease"] = list(range(shape.n_diseases))
        coords["disease_contrast"] = list(range(1, shape.n_diseases))
    return coords


def build_integrated_model(shape: ModelShape, arrays: dict[str, np.ndarray], priors: Priors,
                           *, structure: Structure):
    """The PyMC model of :class:`ModelShape` ``shape`` reading ``arrays`` as ``pm.Data``.

    The terms, priors and centre parametrisation are those of
    :func:`pkmodel.response.build.build_pymc_model` (the same helpers build them); only the
    censored TLs and the data's entry differ (see the module docstring).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from pkmodel.response.build import _slope_offsets
    from pkmodel.response.censored import censored_log_tail, censored_marginal_logp
    from pkmodel.response.marginal import marginal_bernoulli_logp
    from pkmodel.response.terms import full_levels, log_odds, prior_of, term

    p = priors
    with pm.Model(coords=_coords(shape)) as model:
        data = {k: pm.Data(k, v) for k, v in arrays.items()}
        mu_tl = prior_of("mu_tl", p).create("mu_tl")
        sigma_tl = prior_of("sigma_tl", p).create("sigma_tl")
        pm.Potential("log_tl", pt.sum(data["tl_weight"] * pm.logp(
            pm.Normal.dist(mu_tl, sigma_tl), data["log_tl_ug_ml"])))

        n_groups = shape.n_groups
        given = {"group_effects": shape.group_effects, "n_groups": n_groups}
        if shape.group_effects == GROUP_PARAMETRISATION:
            sigma_group = prior_of("sigma_group", p).create("sigma_group")
            w = data["group_centring"]
            z_group = pm.ZeroSumNormal("z_group", sigma=sigma_group ** (1.0 - w), dims="group")
            a_group = pm.Deterministic("a_group", sigma_group**w * z_group, dims="group")
            alpha = prior_of("alpha", p, given).create("alpha", given={
                "sigma": pt.sqrt(p.intercept_sd**2 + sigma_group**2 / n_groups)})
        else:
            alpha = prior_of("alpha", p, given).create("alpha")

        if shape.exposure:
            values = {"alpha": alpha, "b_base": prior_of("b_base", p).create("b_base"),
                      "b_gain": prior_of("b_gain", p).create("b_gain")}
        else:
            values = {"alpha": alpha, "beta": prior_of("beta", p).create("beta")}
        if shape.n_strategies > 1 and not shape.exposure:
            values["b_slope_strategy"] = _slope_offsets("strategy", structure.slope_offsets, p)
            values["delta_strategy"] = prior_of("delta_strategy", p).create(
                "delta_strategy", dims="strategy_contrast")
        if shape.n_diseases:
            values["b_slope_disease"] = _slope_offsets("disease", structure.slope_offsets, p)
        if shape.n_covariates:
            values["gamma"] = prior_of("gamma", p).create("gamma", dims="covariate")
        if shape.group_effects == GROUP_PARAMETRISATION:
            values["a_group"] = a_group
        inputs = {"strategy": data["patient_strategy"], "disease": data["patient_disease"],
                  "group": data["patient_group"], "z": data["z"]}
        if shape.exposure:
            inputs["log_gain"] = data["log_gain"]
        # the log-odds is linear in log TL: its value at the reference TL and its slope
        ones = pt.ones_like(data["log_tl_ug_ml"])
        at_ref = log_odds(values, inputs | {"log_tl": 0.0 * ones})
        slope = log_odds(values, inputs | {"log_tl": ones}) - at_ref
        eta_p = at_ref + slope * (data["log_tl_ug_ml"] - np.log(REFERENCE_TL_UG_ML))

        month_effect = pt.zeros(shape.n_months)
        if shape.n_months > 1:
            tau = prior_of("tau_month", p).create("tau_month", dims="month_contrast")
            month_effect = full_levels(tau, term("tau_month"))
        sigma_patient = (prior_of("sigma_patient", p).create("sigma_patient")
                         if shape.patient_effect else pt.zeros(()))
        if shape.exposure:
            sigma_patient = pt.sqrt(sigma_patient**2 + (values["b_gain"] * data["log_gain_sd"])**2)
        measured = marginal_bernoulli_logp(data["y"], eta_p[:, None] + month_effect[None, :],
                                           sigma_patient, data["mask"])
        idx = data["cens_patient"]
        eta0 = (at_ref - slope * np.log(REFERENCE_TL_UG_ML))[idx][:, None] + month_effect[None, :]
        sigma_cens = sigma_patient[idx] if shape.exposure else sigma_patient
        log_i = censored_marginal_logp(data["cens_y"], eta0, slope[idx], mu_tl, sigma_tl,
                                       data["cens_limit"], data["cens_side"], sigma_cens,
                                       data["cens_mask"])
        pm.Potential("remission", pt.sum(measured) + pt.sum(log_i))
        log_tail = censored_log_tail(mu_tl, sigma_tl, data["cens_limit"], data["cens_side"])
        pm.Deterministic("remission_loglik",
                         pt.inc_subtensor(measured[idx], log_i - log_tail), dims="patient")
    return model


def labelled(ds, design: Design):
    """Draws of the integrated model with the cohort's own labels, without the empty slots."""
    from pkmodel.response.build import _coords as cohort_coords

    if "patient" in ds.dims:
        ds = ds.isel(patient=slice(0, design.n_patients))
    coords = cohort_coords(design)
    if design.diseases:
        coords["disease_contrast"] = list(design.diseases[1:])
    return ds.assign_coords({k: v for k, v in coords.items() if k in ds.dims})
