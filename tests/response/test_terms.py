"""The table of model terms is complete, and its one log-odds is the same in NumPy and PyTensor."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytensor.tensor as pt
from exposure_truth import simulate_exposure_cohort

from pkmodel.data import load_ungar2019
from pkmodel.response import RemissionModel
from pkmodel.response.priors import Priors
from pkmodel.response.terms import TERMS, log_odds

# variables of the PyMC model that are not parameters with a prior of their own: the outcome,
# the sampler's coordinates of the centre effects, latent censored TLs and the TL likelihood
NOT_TERMS = {"remission", "z_group", "log_tl", "log_tl_above_limit", "log_tl_below_limit",
             "z_tl", "remission_loglik"}


def test_every_prior_field_belongs_to_a_term():
    named = {f for t in TERMS for f in t.fields}
    assert {f.name for f in dataclasses.fields(Priors)} == named


def test_the_pymc_model_has_exactly_the_terms_of_the_table():
    model = RemissionModel(covariates=("albumin_g_l",), slope_by="disease").build(
        load_ungar2019())
    names = set(model.named_vars) - NOT_TERMS
    terms = {t.name for t in TERMS}
    assert names <= terms, f"parameters without a term: {sorted(names - terms)}"
    exposure_only = {"b_base", "b_gain"}
    for t in TERMS:
        if t.role in ("log_odds", "random", "tl") and t.name not in exposure_only:
            assert t.name in model.named_vars, t.name
    frame, _ = simulate_exposure_cohort(400, 2, b_base=-0.5, b_gain=1.0, alpha=0.0,
                                        sigma_centre=0.3, sigma_patient=0.5, seed=1)
    exposure = RemissionModel(exposure={"assume": {"immunomodulator": 0}}).build(frame)
    names = set(exposure.named_vars) - NOT_TERMS
    assert names <= terms and exposure_only <= names
    assert not {"beta", "delta_strategy", "b_slope_strategy"} & names
    contrasts = RemissionModel(pool_slopes=False).build(load_ungar2019())
    assert "b_slope_strategy_contrast" in contrasts.named_vars


def test_log_odds_is_the_same_in_numpy_and_pytensor():
    rng = np.random.default_rng(1)
    n = 7
    values = {"alpha": rng.normal(), "beta": rng.normal(), "a_group": rng.normal(size=3),
              "tau_month": rng.normal(size=1), "delta_strategy": rng.normal(size=2),
              "b_slope_strategy": rng.normal(size=3), "b_slope_disease": rng.normal(size=2),
              "gamma": rng.normal(size=2)}
    inputs = {"group": rng.integers(3, size=n), "month": rng.integers(2, size=n),
              "strategy": rng.integers(3, size=n), "disease": rng.integers(2, size=n),
              "z": rng.normal(size=(n, 2)), "log_tl": rng.normal(size=n)}
    got = log_odds({k: np.atleast_1d(v) for k, v in values.items()}, inputs)
    tensors = {k: pt.as_tensor_variable(np.atleast_1d(v)) if np.ndim(v) else
               pt.as_tensor_variable(v) for k, v in values.items()}
    want = log_odds(tensors, inputs).eval()
    by_hand = (values["alpha"] + values["a_group"][inputs["group"]]
               + np.r_[0, values["tau_month"]][inputs["month"]]
               + np.r_[0, values["delta_strategy"]][inputs["strategy"]]
               + (values["beta"] + values["b_slope_strategy"][inputs["strategy"]]
                  + values["b_slope_disease"][inputs["disease"]]) * inputs["log_tl"]
               + inputs["z"] @ values["gamma"])
    np.testing.assert_allclose(got, by_hand, rtol=1e-12)
    np.testing.assert_allclose(want, by_hand, rtol=1e-12)


def test_every_prior_of_the_pymc_model_is_the_one_its_table_states():
    """The model is built from the terms' :class:`~pkmodel.priors.Prior` objects, and the prior
    table is written from them: at scales other than the defaults (a field read in the wrong
    place would show), each parameter's log density in the built model equals that of the
    prior the table prints, at a random point."""
    import pymc as pm

    from pkmodel.response.terms import prior_of, prior_rows

    scales = {f.name: 0.5 + 0.1 * k for k, f in enumerate(dataclasses.fields(Priors))}
    priors = Priors(**scales)
    cohort = load_ungar2019()
    for options in ({"covariates": ("albumin_g_l",), "slope_by": "disease"},
                    {"pool_slopes": False}):
        spec = RemissionModel(priors=scales, **options)
        design, opts = spec._design(cohort)
        model = spec.build(cohort)
        structure = {"group_effects": opts["structure"].group_effects,
                     "n_groups": len(design.groups)}
        table = {r["parameter"]: r["prior"] for r in prior_rows(priors, structure)}
        rng = np.random.default_rng(3)
        point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
        rvs = [rv for rv in model.free_RVs if rv.name in table]
        assert {"alpha", "beta", "sigma_group", "mu_tl", "sigma_tl"} <= {rv.name for rv in rvs}
        outs = model.unobserved_value_vars  # the constrained values, named as the variables
        values = dict(zip([v.name for v in outs], model.compile_fn(outs, point_fn=True)(point),
                          strict=True))
        logps = model.compile_fn([model.logp(vars=[rv], jacobian=False) for rv in rvs],
                                 inputs=model.value_vars, on_unused_input="ignore",
                                 point_fn=True)(point)  # one compile for all
        for rv, built in zip(rvs, logps, strict=True):
            prior = prior_of(rv.name, priors, structure)
            assert str(prior) == table[rv.name]
            given = {}
            if rv.name == "alpha" and isinstance(prior["sigma"], str):  # widened by centres
                given = {"sigma": np.sqrt(priors.intercept_sd**2
                                          + values["sigma_group"]**2 / len(design.groups))}
            stated = pm.logp(prior.dist(given=given, shape=np.shape(values[rv.name])),
                             values[rv.name]).sum().eval()
            np.testing.assert_allclose(built, stated, rtol=1e-10, err_msg=rv.name)
