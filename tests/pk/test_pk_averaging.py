"""Model averaging over published PK models: the evidence against quadrature, weights, mixtures."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pk_grid import grid_log_evidence
from scipy import special

from pkmodel.errors import SpecificationError
from pkmodel.pk import (
    AUBOURG_2015,
    DUBINSKY_2017,
    FASANMADE_2009_UC,
    DoseSchedule,
    Observations,
    estimate_averaged,
    estimate_individual,
    forecast_troughs,
)
from pkmodel.pk.simulation import concentrations

HISTORY = DoseSchedule.from_regimen("5mg/kg q8w", until_week=40)


@pytest.mark.parametrize("model", [FASANMADE_2009_UC, AUBOURG_2015], ids=lambda m: m.name)
@pytest.mark.parametrize("case", ["exact", "censored"])
def test_importance_sampling_evidence_equals_quadrature(model, case):
    cov = {"weight_kg": 70.0}
    times = HISTORY.times_days[-3:]
    if case == "exact":
        obs = Observations(times, [3.4, 2.1, 2.6])
    else:  # one below an LLOQ of 0.4, one "> 16"
        obs = Observations(times, [0.4, 1.2, 16.0], cens=[1, 0, -1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = estimate_individual(model, cov, HISTORY, obs, random_seed=5)
    exact = grid_log_evidence(model, model.covariate_values(cov) | cov, HISTORY, obs)
    assert est.diagnostics["log_evidence"] == pytest.approx(exact, abs=0.03)
    assert est.diagnostics["pareto_k"] < 0.7


def _simulated(model, rng, weight=45.0, albumin=3.6):
    cov = {"weight_kg": weight, "albumin_g_dl": albumin}
    eta = model.sample_eta((), rng)
    params = model.individual_parameters(cov, eta)
    times = HISTORY.times_days[1:]  # a trough before every dose after the first
    pred = concentrations(params, HISTORY, times, weight)
    sd = np.sqrt(model.additive_sd_ug_ml**2 + (model.proportional_sd * pred) ** 2)
    return cov, Observations(times, np.maximum(pred + sd * rng.standard_normal(pred.shape),
                                               0.05))


def test_the_model_weights_are_calibrated_over_patients_drawn_from_the_models():
    # The defining property of posterior model probabilities: when the generating model is
    # drawn from the prior (here equal odds) and the troughs from it, the weight given to the
    # true model averages E[sum_m w_m^2], and every model's weight averages its prior. Fasanmade
    # 2009 (adults with UC) against Dubinsky 2017 (children, CL x WT^0.61, albumin exponent
    # -2.3), in patients of varied weight and albumin.
    rng = np.random.default_rng(11)
    models = [FASANMADE_2009_UC, DUBINSKY_2017]
    true_weight, self_agreement, first = [], [], []
    for i in range(40):
        truth = models[i % 2]
        cov, obs = _simulated(truth, rng, weight=float(rng.uniform(30, 90)),
                              albumin=float(rng.uniform(2.8, 4.6)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            avg = estimate_averaged(cov, HISTORY, obs, models=models, draws=250,
                                    random_seed=i)
        w = np.array([avg.weights[m.name] for m in models])
        true_weight.append(w[i % 2])
        self_agreement.append(float(w @ w))
        first.append(w[0])
    se = np.std(np.subtract(true_weight, self_agreement)) / np.sqrt(len(true_weight))
    assert np.mean(true_weight) == pytest.approx(np.mean(self_agreement), abs=3 * se + 0.02)
    assert np.mean(first) == pytest.approx(0.5, abs=0.12)
    assert np.mean(true_weight) > 0.55  # seven troughs tell these two models apart, a little


def test_the_mixture_forecast_is_the_weighted_mixture_of_the_models_forecasts():
    rng = np.random.default_rng(3)
    cov, obs = _simulated(FASANMADE_2009_UC, rng, weight=70.0, albumin=4.0)
    models = [FASANMADE_2009_UC, DUBINSKY_2017, AUBOURG_2015]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        avg = estimate_averaged(cov, HISTORY, obs, models=models, prior_weights=[2, 1, 1],
                                draws=2000, random_seed=2)
    assert avg.prior_weights[FASANMADE_2009_UC.name] == pytest.approx(0.5)
    log_post = np.log([0.5, 0.25, 0.25]) + np.array([avg.log_evidence[m.name] for m in models])
    expected = np.exp(log_post - special.logsumexp(log_post))
    np.testing.assert_allclose([avg.weights[m.name] for m in models], expected, rtol=1e-9)
    assert sum(avg.draw_counts().values()) == avg.n_draws == 2000
    assert avg.assumed_covariates[AUBOURG_2015.name] == {"female": 0.0}
    regimens = ["5mg/kg q8w", "10mg/kg q4w"]
    mixed = forecast_troughs(avg, regimens).table()["p_target"].values
    parts = np.array([forecast_troughs(avg.estimates[m.name], regimens).table()["p_target"].values
                      for m in models])
    np.testing.assert_allclose(mixed, expected @ parts, atol=0.03)
    assert set(forecast_troughs(avg, regimens).to_dict()["model_weights"]) == {
        m.name for m in models}


def test_averaging_refuses_bad_prior_weights_and_repeated_models():
    obs = Observations([98, 154], [2.0, 1.5])
    with pytest.raises(SpecificationError, match="prior_weights"):
        estimate_averaged({"weight_kg": 70}, HISTORY, obs, models=["uc", "cd"],
                          prior_weights=[1, -1])
    with pytest.raises(SpecificationError, match="each once"):
        estimate_averaged({"weight_kg": 70}, HISTORY, obs, models=["uc", "fasanmade2009"])
