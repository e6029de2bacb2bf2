"""The default model at the sizes users bring: it passes its own convergence gate and recovers
the truth on simulated cohorts of 400 to 2,000 patients, 1 to 20 centres, strategy-specific
slopes, strong and absent patient effects, many censored TLs and covariates.

Every fit here uses the default settings (``RemissionModel().fit(cohort)``: 4 chains, 1000
tuning steps and 1000 draws). Recovery is checked with 99% intervals, so that a fixed seed
fails only when the posterior is off. Coverage over replicates (how often the 90% intervals
cover) is measured by ``benchmarks/coverage_remission.py``, too slow for the suite.
"""

from __future__ import annotations

import numpy as np
import pytest

import pkmodel
from pkmodel.response.simulation import TrueParameters, simulate_cohort

CASES = {
    # name: (patients, centres, truth, upper TL limit, covariates)
    "2000 patients, 3 centres, a quarter of TLs censored": (
        2000, 3, TrueParameters(), 10.0, {}),
    "1500 patients, 2 centres, strategy slopes, covariates": (
        1500, 2, TrueParameters(b_slope_strategy=(0.0, 0.7), gamma=(0.5, -0.3)), 16.0,
        {"albumin_g_l": (38.0, 5.0), "activity_score": (0.0, 1.0)}),
    "600 patients, 20 centres, strong patient effect": (
        600, 20, TrueParameters(sigma_patient=1.5, sigma_group=0.5), 16.0, {}),
    "1000 patients, 1 centre, no patient effect": (
        1000, 1, TrueParameters(sigma_patient=0.0), 16.0, {}),
    "400 patients, 6 centres, 40% of TLs censored": (
        400, 6, TrueParameters(), 8.0, {}),
}


def _interval(draws, prob=0.99):
    return np.quantile(np.asarray(draws).ravel(), [(1 - prob) / 2, (1 + prob) / 2])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_default_fit_passes_the_gate_and_recovers_the_truth(name):
    n, n_centres, truth, limit, covariates = CASES[name]
    cohort, effects = simulate_cohort(n, n_centres, truth, upper_limit_ug_ml=limit,
                                      covariates=covariates, random_seed=n + n_centres,
                                      return_effects=True)
    fit = pkmodel.RemissionModel(covariates=tuple(covariates)).fit(
        cohort, random_seed=1, progressbar=False)
    diag = fit.diagnostics
    assert diag.converged, (name, str(diag))
    post = fit.posterior
    checks = {"mu_tl": (post["mu_tl"], truth.mu_tl),
              "sigma_tl": (post["sigma_tl"], truth.sigma_tl),
              "tau_month": (post["tau_month"], truth.tau_month[1]),
              "delta_strategy": (post["delta_strategy"], truth.delta_strategy[1])}
    if truth.sigma_patient > 0:
        checks["sigma_patient"] = (post["sigma_patient"], truth.sigma_patient)
    for k, strategy in enumerate(truth.strategies):
        checks[f"slope[{strategy}]"] = (
            post["beta"] + post["b_slope_strategy"].sel(strategy=strategy),
            truth.beta + truth.b_slope_strategy[k])
    for k, covariate in enumerate(covariates):
        checks[f"gamma[{covariate}]"] = (post["gamma"].sel(covariate=covariate),
                                         truth.gamma[k])
    if n_centres == 1:
        checks["alpha"] = (post["alpha"], truth.alpha + effects["a_group"][0])
        assert fit.structure["group_effects"] == "none"
        assert any("single center" in note for note in fit.notes)
    elif n_centres <= 6:
        for c in range(n_centres):  # hundreds per centre: the data identify each intercept
            checks[f"alpha + a[c{c}]"] = (post["alpha"] + post["a_group"].sel(group=f"c{c}"),
                                          truth.alpha + effects["a_group"][c])
    else:
        # 30 patients per centre: each centre's effect is shrunk towards the others (an extreme
        # centre is not covered, by design), so check the hierarchy itself: alpha is the mean
        # intercept of the fitted centres, and sigma_group is learnt from 20 of them
        checks["alpha"] = (post["alpha"], truth.alpha + float(np.mean(effects["a_group"])))
        checks["sigma_group"] = (post["sigma_group"], truth.sigma_group)
    if n_centres > 1:
        assert any("between-center SD" in note for note in fit.notes)
    misses = {}
    for label, (draws, value) in checks.items():
        lo, hi = _interval(draws.values)
        if not lo <= value <= hi:
            misses[label] = (round(float(lo), 3), value, round(float(hi), 3))
    assert not misses, (name, misses)


@pytest.mark.slow
def test_few_centres_say_the_between_centre_sd_is_from_its_prior():
    cohort = simulate_cohort(900, 3, random_seed=21)
    fit = pkmodel.RemissionModel().fit(cohort, random_seed=2, progressbar=False)
    assert fit.diagnostics.converged, str(fit.diagnostics)
    notes = " ".join(fit.notes)
    assert "3 centers" in notes and "informed mostly by its prior Gamma(2, 5)" in notes
    assert fit.summary().attrs["notes"] == list(fit.notes)
