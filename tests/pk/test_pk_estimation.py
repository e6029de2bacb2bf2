"""Individual Bayesian estimation and trough forecasts: recovery, coverage, censoring, NUTS."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from pk_grid import grid_posterior_mean_cl

from pkmodel.errors import SpecificationError
from pkmodel.pk import (
    FASANMADE_2009_UC,
    MODELS,
    DoseSchedule,
    Observations,
    concentrations,
    estimate_individual,
    forecast_troughs,
)

ROOT = Path(__file__).resolve().parents[2]


def _coverage_module():
    spec = importlib.util.spec_from_file_location("pk_coverage",
                                                  ROOT / "benchmarks" / "pk_coverage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["pk_coverage"] = module
    spec.loader.exec_module(module)
    return module


def _patient(model, eta, cov, n_troughs, rng, noise=True):
    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=14 + 8 * n_troughs)
    times = history.times_days[-n_troughs:]
    pred = concentrations(model.individual_parameters(cov, eta), history, times,
                          cov["weight_kg"])
    sd = np.sqrt(model.additive_sd_ug_ml**2 + (model.proportional_sd * pred) ** 2)
    y = pred + (sd * rng.standard_normal(pred.shape) if noise else 0)
    return history, Observations(times, np.maximum(y, 0.05))


def test_map_recovers_a_simulated_patients_clearance_from_several_troughs():
    model = FASANMADE_2009_UC
    rng = np.random.default_rng(42)
    cov = {"weight_kg": 70.0, "albumin_g_dl": 4.1}
    errors_map, errors_prior = [], []
    for eta_cl in (-0.6, -0.3, 0.3, 0.6):
        eta = np.array([eta_cl, 0.1])
        history, obs = _patient(model, eta, cov, 6, rng)
        est = estimate_individual(model, cov, history, obs, random_seed=1)
        true_cl = float(model.individual_parameters(cov, eta).cl)
        errors_map.append(abs(np.log(est.map_parameters()["cl"] / true_cl)))
        errors_prior.append(abs(eta_cl))
        draws = est.parameters()["cl"].values
        assert np.quantile(draws, 0.01) < true_cl < np.quantile(draws, 0.99)
    assert max(errors_map) < 0.25
    assert np.mean(errors_map) < 0.4 * np.mean(errors_prior)


def test_noise_free_troughs_pin_clearance_down():
    model = FASANMADE_2009_UC
    cov = {"weight_kg": 80.0, "albumin_g_dl": 3.5}
    eta = np.array([0.5, -0.2])
    history, obs = _patient(model, eta, cov, 5, np.random.default_rng(0), noise=False)
    est = estimate_individual(model, cov, history, obs, random_seed=3)
    true_cl = float(model.individual_parameters(cov, eta).cl)
    assert est.map_parameters()["cl"] == pytest.approx(true_cl, rel=0.1)


def test_forecast_intervals_cover_the_truth_at_the_nominal_rate():
    # 80 simulated patients, 3 troughs each (some below the 0.4 µg/mL LLOQ, kept as censored).
    # A larger run (500 patients, both models) is reported in docs/pk.md.
    res = _coverage_module().coverage("fasanmade2009", n_patients=80, seed=7, credible=0.9,
                                      draws=400)
    se = np.sqrt(0.9 * 0.1 / 80)
    assert np.all(np.abs(res["coverage"] - 0.9) < 3.5 * se), res
    assert res["rmse_log_cl_map"] < 0.6 * res["rmse_log_cl_prior"]


def test_censored_values_shift_the_estimate_the_right_way():
    model = FASANMADE_2009_UC
    cov = {"weight_kg": 70.0}
    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=30)
    times = history.times_days[-2:]
    below = estimate_individual(model, cov, history, Observations(times, [0.4, 0.4], [1, 1]),
                                random_seed=1)
    above = estimate_individual(model, cov, history, Observations(times, [16, 16], [-1, -1]),
                                random_seed=1)
    typical = float(model.individual_parameters(cov).cl)
    assert below.map_parameters()["cl"] > typical > above.map_parameters()["cl"]
    fc = forecast_troughs(above, ["5mg/kg q8w"], target_ug_ml=5).to_dict()["regimens"][0]
    assert fc["p_trough_ge_target"] > 0.9


def test_forecast_after_a_switch_and_same_seed_same_numbers():
    model = FASANMADE_2009_UC
    cov = {"weight_kg": 70.0, "albumin_g_dl": 3.8}
    history, obs = _patient(model, np.array([0.3, 0.0]), cov, 3, np.random.default_rng(5))
    est = estimate_individual(model, cov, history, obs, random_seed=9)
    again = estimate_individual(model, cov, history, obs, random_seed=9)
    np.testing.assert_array_equal(est.eta_draws, again.eta_draws)
    first = forecast_troughs(est, ["10mg/kg q4w"], n_doses=1).table()
    steady = forecast_troughs(est, ["10mg/kg q4w"]).table()
    assert first.attrs["horizon"].startswith("before dose 2")
    assert float(first["median"][0]) < float(steady["median"][0])
    with pytest.raises(SpecificationError, match="credible"):
        forecast_troughs(est, credible=1.5)


def test_invalid_estimation_inputs_are_refused_before_any_fit():
    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=30)
    obs = Observations([98.0], [2.0])
    with pytest.raises(SpecificationError, match="method"):
        estimate_individual("uc", {"weight_kg": 70}, history, obs, method="mcmc")
    with pytest.raises(SpecificationError, match="weight_kg"):
        estimate_individual("uc", {}, DoseSchedule([0], [5], 1 / 12), obs)
    late = DoseSchedule([120.0], [5.0], 1 / 12)
    with pytest.raises(SpecificationError, match="precedes the first dose"):
        estimate_individual("uc", {"weight_kg": 70}, late, obs)
    with pytest.raises(SpecificationError, match="censoring codes"):
        Observations([1.0], [2.0], [2])
    with pytest.raises(SpecificationError, match="LIMIT"):
        Observations([1.0], [2.0], [1], limit_ug_ml=[3.0])


def test_nuts_posterior_agrees_with_map_and_reports_diagnostics():
    model = FASANMADE_2009_UC
    cov = {"weight_kg": 70.0, "albumin_g_dl": 4.0}
    history, obs = _patient(model, np.array([0.4, 0.0]), cov, 4, np.random.default_rng(8))
    obs = Observations(np.append(obs.times_days, 240.0), np.append(obs.values_ug_ml, 0.4),
                       np.append(obs.cens, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nuts = estimate_individual(model, cov, history, obs, method="nuts", draws=300, tune=300,
                                   chains=2, random_seed=2)
    fast = estimate_individual(model, cov, history, obs, random_seed=2)
    diag = nuts.diagnostics
    assert {"rhat_max", "ess_bulk_min", "ess_tail_min", "divergences"} <= set(diag)
    assert diag["divergences"] == 0 and diag["rhat_max"] < 1.05
    assert nuts.eta_draws.shape == (600, 2)
    med_nuts = np.median(nuts.parameters()["cl"].values)
    med_map = np.median(fast.parameters()["cl"].values)
    assert med_nuts == pytest.approx(med_map, rel=0.05)
    assert nuts.posterior is not None


def test_nuts_passes_the_gate_of_every_fit_tree_depth_included(monkeypatch):
    """The individual path is checked by pkmodel.diagnostics, as the remission and population
    fits are: a sampler held to trees of depth 1 fails on tree depth (which the old,
    hand-written R-hat/ESS/divergence check of this path never looked at)."""
    import nutpie

    from pkmodel.errors import ConvergenceWarning

    model = FASANMADE_2009_UC
    cov = {"weight_kg": 70.0, "albumin_g_dl": 4.0}
    history, obs = _patient(model, np.array([0.3, 0.0]), cov, 3, np.random.default_rng(8))
    sample = nutpie.sample
    monkeypatch.setattr(nutpie, "sample", lambda *a, **k: sample(*a, **k, maxdepth=1))
    with pytest.warns(ConvergenceWarning, match="maximum tree depth") as caught:
        est = estimate_individual(model, cov, history, obs, method="nuts", draws=200, tune=200,
                                  chains=2, random_seed=2)
    assert all(Path(w.filename) == Path(__file__) for w in caught)
    diag = est.diagnostics
    assert not diag["converged"] and diag["treedepth_fraction"] > 0.5
    assert any("tree depth" in p for p in diag["problems"])
    # the gate's fields, and the names of pkmodel 0.4 beside them
    assert {"min_bfmi", "worst_parameter", "n_chains", "max_rhat"} <= set(diag)
    assert diag["rhat_max"] == diag["max_rhat"] and diag["chains"] == diag["n_chains"] == 2
    assert diag["worst_parameter"] == "eta"
    with pytest.raises(SpecificationError, match="samples with nutpie"):
        estimate_individual(model, cov, history, obs, method="nuts", sampler="blackjax")
    with pytest.raises(SpecificationError, match="target_accept"):
        estimate_individual(model, cov, history, obs, method="nuts", target_accept=0.2)


@pytest.mark.parametrize("case", ["below_lloq", "above_limit"])
def test_every_method_agrees_with_an_exact_grid_posterior_for_censored_troughs(case):
    model = FASANMADE_2009_UC
    cov = {"weight_kg": 70.0, "albumin_g_dl": 4.1}
    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=40)
    times = history.times_days[-3:]
    if case == "below_lloq":  # three troughs below an LLOQ of 0.4: a fast-clearing patient
        obs = Observations(times, [0.4, 0.4, 0.4], cens=[1, 1, 1])
    else:  # two of three troughs reported as "> 16": a slow-clearing patient
        obs = Observations(times, [16.0, 16.0, 12.0], cens=[-1, -1, 0])
    grid_cl = grid_posterior_mean_cl(model, cov, history, obs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nuts = estimate_individual(model, cov, history, obs, method="nuts", draws=1000,
                                   tune=1000, chains=2, random_seed=3)
        fast = estimate_individual(model, cov, history, obs, draws=4000, random_seed=3)
    for est in (nuts, fast):
        cl = float(est.parameters()["cl"].values.mean())
        assert cl == pytest.approx(grid_cl, rel=0.05), (case, est.method, cl, grid_cl)
    assert nuts.diagnostics["divergences"] == 0


def test_map_reports_success_at_the_mode_it_finds():
    # BFGS with finite differences used to stop with "precision loss" at the correct mode and
    # report failure; convergence is now the Newton decrement at the returned point.
    from scipy import optimize

    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=30)
    cases = [Observations([98, 154, 210], [2.1, 1.8, 2.4]),
             Observations([154, 210], [1.9, 0.4], cens=[0, 1]),
             Observations([98, 154, 210], [0.4, 0.4, 0.4], cens=[1, 1, 1])]
    for model in MODELS.values():
        cov = {"weight_kg": 70.0}
        for i, obs in enumerate(cases):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = estimate_individual(model, cov, history, obs, draws=200)
            assert est.diagnostics["optimizer_success"], (model.name, est.diagnostics)
            if i and model.omega2_iov:  # the occasions' dimensions: one case is enough
                continue
            # an independent optimiser (Nelder-Mead on the same density, tight tolerances)
            # finds the same mode
            from pkmodel.pk.estimation import _Posterior
            post = _Posterior(model, est.covariates, 70.0, history, obs, None, est.occasions)
            # (Powell's method where the occasions' kappas add dimensions: a simplex stalls)
            nm = optimize.minimize(lambda z, p=post: -p(z)[0], np.zeros(post.sd.size),
                                   method="Nelder-Mead" if post.sd.size <= 4 else "Powell",
                                   options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 20000}
                                   if post.sd.size <= 4 else {"xtol": 1e-8, "ftol": 1e-13})
            z_map = est.eta_map / model.omega_sd
            if est.kappa_map is not None:  # the occasions' standardised kappas follow eta
                z_map = np.concatenate([z_map, (est.kappa_map / model.omega_iov_sd).ravel()])
            assert -nm.fun <= est.diagnostics["log_posterior_at_mode"] + 1e-7
            np.testing.assert_allclose(z_map, nm.x, atol=2e-3)


def test_psis_weights_rise_with_the_importance_ratios():
    # ArviZ's psislw smooths the negated input (its PSIS-LOO convention): pkmodel passes the
    # negated log ratios. Were the convention to change, the weights would fall with the ratios.
    from pkmodel.pk.estimation import _psis

    log_ratios = np.random.default_rng(0).standard_normal(4000) - 3.0
    weights, khat = _psis(log_ratios)
    assert np.corrcoef(np.log(weights), log_ratios)[0, 1] > 0.99
    assert weights.sum() == pytest.approx(1.0) and khat < 0.7


def test_patients_drawn_from_the_model_are_rarely_flagged_as_implausible():
    # The unit-slip check flags random effects or residuals beyond the central 99.9 % of the
    # model: over 300 simulated patients, about 0.3 are expected to be flagged.
    rng = np.random.default_rng(21)
    flagged = 0
    for _ in range(300):
        cov = {"weight_kg": float(rng.uniform(45, 100)), "albumin_g_dl": 4.0}
        eta = FASANMADE_2009_UC.sample_eta((), rng)
        history, obs = _patient(FASANMADE_2009_UC, eta, cov, 3, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = estimate_individual(FASANMADE_2009_UC, cov, history, obs, draws=50)
        flagged += not est.diagnostics["plausibility"]["plausible"]
    assert flagged <= 3


def test_strict_estimation_refuses_a_unit_slip_and_names_it():
    from pkmodel.errors import ImplausibleEstimateWarning, PKDataError

    rng = np.random.default_rng(8)
    cov = {"weight_kg": 70.0}
    history, obs = _patient(FASANMADE_2009_UC, np.zeros(2), cov, 4, rng)
    ng_ml = Observations(obs.times_days, obs.values_ug_ml * 1000)
    with pytest.warns(ImplausibleEstimateWarning, match="DV in ng/mL"):
        est = estimate_individual(FASANMADE_2009_UC, cov, history, ng_ml)
    assert est.diagnostics["plausibility"]["likely_cause"] == "DV in ng/mL"
    with pytest.raises(PKDataError, match="divide ng/mL by 1000") as info:
        estimate_individual(FASANMADE_2009_UC, cov, history, ng_ml, strict=True)
    assert info.value.column == "DV"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImplausibleEstimateWarning)
        estimate_individual(FASANMADE_2009_UC, cov, history, obs, strict=True)
