"""Inter-occasion variability (IOV) in population fits: the specification and its file, the
occasions read from an ``OCC`` column or from the doses, the model's log density against an
independent closed-form computation, the subject-level likelihood against Monte Carlo, CWRES,
and one fit that recovers the occasion effects it was simulated with.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import logsumexp

from pkmodel.errors import PKDataError, SpecFileError, SpecificationError
from pkmodel.pk.population import (
    Parameter,
    PopulationSpec,
    ResidualError,
    fit_population,
    load_population_fit,
    read_population_data,
    read_spec,
    simulate_dataset,
)
from pkmodel.pk.population.build import build_model, model_data
from pkmodel.pk.population.control_stream import write_control_stream
from pkmodel.pk.population.likelihood import subject_log_likelihood
from pkmodel.priors import Prior
from pkmodel.report import render_population_report

SPEC = PopulationSpec(
    compartments=1, dosing="bolus",
    parameters={"cl": Parameter(0.5, bsv=True, iov=True, centred=False),
                "v": Parameter(5.0, bsv=True, centred=False)},
    residual=ResidualError("proportional"))
TRUTH = {"tv_cl": 0.5, "tv_v": 5.0, "omega_cl": 0.3, "omega_v": 0.2, "omega_iov_cl": 0.3,
         "sigma_prop": 0.1}
DOSES = [0.0, 10.0, 20.0]
SAMPLES = [1.0, 4.0, 9.0, 11.0, 14.0, 19.0, 21.0, 24.0, 29.0]


def _simulated(n: int = 6, seed: int = 2):
    return simulate_dataset(SPEC, TRUTH, n_subjects=n, dose_times_days=DOSES,
                            sample_times_days=SAMPLES, dose_mg=100.0, random_seed=seed)


def test_the_specification_file_reads_iov_and_the_occasion_column(tmp_path):
    path = tmp_path / "model.toml"
    path.write_text('[model]\ncompartments = 1\ndosing = "bolus"\n[data]\noccasion = "VISIT"\n'
                    '[parameters.cl]\ntypical = 0.5\nbsv = true\niov = true\niov_prior = 0.2\n'
                    '[parameters.v]\ntypical = 5\n', encoding="utf-8")
    spec = read_spec(path)
    assert spec.iov_parameters == ("cl",) and spec.occasion == "VISIT"
    assert spec.priors()["omega_iov_cl"] == Prior("HalfNormal", sigma=0.2)
    assert PopulationSpec.from_dict(spec.to_dict()) == spec  # the saved fit's round trip
    path.write_text(path.read_text(encoding="utf-8").replace("iov_prior", "iov_priro"),
                    encoding="utf-8")
    with pytest.raises(SpecFileError, match=r"line 10.*iov_priro.*did you mean 'iov_prior'"):
        read_spec(path)
    with pytest.raises(SpecificationError, match="fixed parameter cannot vary between occ"):
        Parameter(0.5, fixed=True, iov=True)


def test_occasions_come_from_the_column_numbered_within_each_subject_or_from_the_doses():
    frame = _simulated(3).frame
    frame.loc[frame["ID"] == "2", "OCC"] *= 10  # any numbering: 10, 20, 30
    frame.loc[(frame["ID"] == "3") & (frame["TIME"] >= 20), "OCC"] = np.nan
    data = read_population_data(frame, SPEC)  # a blank takes the value above it
    expected = np.repeat([0, 1, 2], 3)
    np.testing.assert_array_equal(data.obs_occasion, np.concatenate(
        [expected, expected, [0, 0, 0, 1, 1, 1, 1, 1, 1]]))
    by_dose = read_population_data(frame.drop(columns="OCC"),
                                   PopulationSpec(**{**_fields(SPEC), "occasion": "dose"}))
    np.testing.assert_array_equal(by_dose.obs_occasion, np.tile(expected, 3))
    with pytest.raises(PKDataError, match=r"column 'OCC'.*occasion column is missing"
                                          r".*occasion = \"dose\""):
        read_population_data(frame.drop(columns="OCC"), SPEC)
    frame.loc[frame.index[0], "OCC"] = np.nan
    with pytest.raises(PKDataError, match=r"row index 0, column 'OCC'.*ID '1' has no occasion"):
        read_population_data(frame, SPEC)


def _fields(spec: PopulationSpec) -> dict:
    return {k: getattr(spec, k) for k in ("parameters", "compartments", "dosing", "residual")}


def _closed_form(data, eta, kappa, truth):
    """The model's statement computed directly: a one-compartment bolus, each observation's
    clearance that of its occasion, ``TVCL exp(eta_i + kappa_io)``, applied to every dose."""
    conc = np.zeros(data.n_observations)
    for j in range(data.n_observations):
        i, t = data.obs_subject[j], data.obs_time_days[j]
        cl = truth["tv_cl"] * np.exp(eta["cl"][i] + kappa[i, data.obs_occasion[j]])
        v = truth["tv_v"] * np.exp(eta["v"][i])
        given = (data.dose_subject == i) & (data.dose_time_days <= t)
        conc[j] = np.sum(data.dose_amount_mg[given] / v
                         * np.exp(-cl / v * (t - data.dose_time_days[given])))
    return conc


def test_the_models_likelihood_is_the_closed_form_with_each_occasions_kappa():
    sim = _simulated(4)
    data = read_population_data(sim.frame, SPEC)
    model = build_model(SPEC, data)
    rng = np.random.default_rng(5)
    z = rng.standard_normal((data.n_subjects, data.n_occasions))
    u = {p: rng.standard_normal(data.n_subjects) for p in ("cl", "v")}
    point = model.initial_point() | {
        "log_tv_cl": np.log(0.45), "log_tv_v": np.log(5.5), "omega_cl_log__": np.log(0.3),
        "omega_v_log__": np.log(0.2), "omega_iov_cl_log__": np.log(0.25),
        "sigma_prop_log__": np.log(0.12), "u_cl": u["cl"], "u_v": u["v"], "z_iov_cl": z}
    y_logp = model.compile_fn(model.logp(vars=model.observed_RVs), inputs=model.value_vars,
                             on_unused_input="ignore")(point)
    eta = {"cl": 0.3 * u["cl"], "v": 0.2 * u["v"]}  # non-centred: eta = omega u
    conc = _closed_form(data, eta, 0.25 * z, {"tv_cl": 0.45, "tv_v": 5.5})
    expected = stats.norm.logpdf(data.obs_value_ug_ml, conc, 0.12 * conc).sum()
    assert y_logp == pytest.approx(expected, rel=1e-9)
    # and the prior of the occasion effects: standard normal z, half-normal omega_iov
    prior = model.compile_fn(model.logp(vars=[model["z_iov_cl"]]), inputs=model.value_vars,
                             on_unused_input="ignore")(point)
    assert prior == pytest.approx(stats.norm.logpdf(z).sum(), rel=1e-12)


def _subject_reference(data, i: int, tv_cl: float, omega_iov: float, m: int = 50_000):
    """``log p(y_i)`` and the posterior mode and covariance of ``(eta_cl, eta_v, kappa_1..3)``
    of subject ``i``, independently of pkmodel: the closed form, the mode by BFGS, importance
    sampling from a multivariate t about it (Laplace scale x 1.3)."""
    one = data.obs_subject == i
    t, y, occ = data.obs_time_days[one], data.obs_value_ug_ml[one], data.obs_occasion[one]
    doses = data.dose_time_days[data.dose_subject == i]
    scale = np.array([0.3, 0.2, omega_iov, omega_iov, omega_iov])

    def log_joint(x):  # (m, 5)
        v = 5.0 * np.exp(x[:, 1])
        cl = tv_cl * np.exp(x[:, 0, None] + x[:, 2:][:, occ])
        elapsed = t[None, :, None] - doses[None, None, :]
        conc = np.sum(np.where(elapsed >= 0, 100.0 / v[:, None, None] * np.exp(
            -(cl / v[:, None])[..., None] * np.maximum(elapsed, 0)), 0.0), axis=-1)
        return (stats.norm.logpdf(y, conc, 0.1 * conc).sum(axis=1)
                + stats.norm.logpdf(x, 0.0, scale).sum(axis=1))

    mode = optimize.minimize(lambda x: -log_joint(x[None])[0], np.zeros(5), method="BFGS")
    chol = np.linalg.cholesky(mode.hess_inv) * 1.3
    z = stats.multivariate_t.rvs(np.zeros(5), np.eye(5), df=8, size=m, random_state=i)
    log_q = (stats.multivariate_t.logpdf(z, np.zeros(5), np.eye(5), df=8)
             - np.log(np.diag(chol)).sum())
    log_w = log_joint(mode.x + z @ chol.T) - log_q
    return float(logsumexp(log_w) - np.log(m)), mode.x, mode.hess_inv


def test_the_subject_likelihood_integrates_eta_and_each_occasions_kappa():
    data = read_population_data(_simulated(3).frame, SPEC)
    n_draws = 200
    values = {"log_tv_cl": np.full((n_draws, 1), np.log(0.5)),
              "log_tv_v": np.full((n_draws, 1), np.log(5.0)),
              "omega_cl": np.full((n_draws, 1), 0.3), "omega_v": np.full((n_draws, 1), 0.2),
              "omega_iov_cl": np.full((n_draws, 1), 0.3),
              "sigma_prop": np.full((n_draws, 1), 0.1)}
    # the effects' draws, which place the quadrature's nodes, from each subject's posterior
    # (its Laplace approximation)
    rng = np.random.default_rng(1)
    reference, draws = [], np.zeros((n_draws, 3, 5))
    for i in range(3):
        log_p, mode, cov = _subject_reference(data, i, 0.5, 0.3)
        reference.append(log_p)
        draws[:, i] = rng.multivariate_normal(mode, cov, n_draws)
    values |= {"eta_cl": draws[..., 0], "eta_v": draws[..., 1], "kappa_cl": draws[..., 2:]}
    quadrature = subject_log_likelihood(SPEC, data, values)
    np.testing.assert_allclose(quadrature[0], reference, atol=0.01)


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    sim = simulate_dataset(SPEC, TRUTH, n_subjects=30, dose_times_days=DOSES,
                           sample_times_days=SAMPLES, dose_mg=100.0, random_seed=11)
    path = tmp_path_factory.mktemp("iov") / "iov.csv"
    sim.frame.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_population(path, SPEC, draws=400, tune=400, chains=2, random_seed=1)
    return sim, result


def test_a_fit_recovers_the_occasion_effects_and_their_sd(fit):
    sim, result = fit
    table = result.summary().set_index("parameter")
    row = table.loc["omega_iov_cl"]
    assert row["unit"] == "SD of kappa (log scale, between occasions)"
    assert row["lower"] < TRUTH["omega_iov_cl"] < row["upper"]
    for name in ("tv_cl", "tv_v", "omega_cl", "sigma_prop"):
        assert table.loc[name, "lower"] < TRUTH[name] < table.loc[name, "upper"], name
    kappa = result.posterior["kappa_cl"]
    assert kappa.dims == ("chain", "draw", "subject", "occasion") and kappa.sizes["occasion"] == 3
    means = kappa.mean(("chain", "draw")).values
    assert np.corrcoef(means.ravel(), sim.kappa["cl"].ravel())[0, 1] > 0.6
    assert "kappa_cl" in result.checked_variables()
    # CWRES with the occasion effects linearised are about standard normal
    cwres = result.goodness_of_fit()["cwres"]
    assert 0.8 < np.nanstd(cwres) < 1.2 and abs(np.nanmean(cwres)) < 0.2
    subject_ll = result.tree["log_likelihood"]["y_by_subject"]
    assert subject_ll.sizes["subject"] == 30 and np.isfinite(subject_ll.values).all()


def test_a_saved_iov_fit_keeps_its_occasions(fit, tmp_path):
    _, result = fit
    path = tmp_path / "iov.nc"
    result.save(path)
    loaded = load_population_fit(path, warn=False)
    np.testing.assert_array_equal(loaded.data.obs_occasion, result.data.obs_occasion)
    assert loaded.spec == result.spec
    np.testing.assert_allclose(loaded.goodness_of_fit()["ipred_ug_ml"],
                               result.goodness_of_fit()["ipred_ug_ml"])
    vpc = loaded.pc_vpc(n_replicates=20)  # new subjects draw new kappas
    assert np.isfinite(vpc.table["observed"]).all()
    html = render_population_report(loaded, n_replicates=20)
    assert "κ<sub>ikP</sub>" in html and "the dataset&#x27;s OCC column" in html
    assert "omega_iov_cl" in html and "omega_iov ~ HalfNormal(0.3)" in html
    model = loaded.to_population_model()  # forecasts draw a new kappa for each interval
    assert model.omega2_iov == pytest.approx(
        {"cl": float(np.median(loaded.posterior["omega_iov_cl"].values)) ** 2})


def test_model_data_index_each_observation_by_subject_and_occasion():
    frame = _simulated(3).frame
    data = read_population_data(frame, SPEC)
    arrays = model_data(SPEC, data)
    np.testing.assert_array_equal(arrays["obs_kappa_index"],
                                  data.obs_subject * 3 + data.obs_occasion)
    one = pd.DataFrame(frame)
    assert read_population_data(one, PopulationSpec(**_fields(SPEC) | {"parameters": {
        "cl": Parameter(0.5, bsv=True), "v": Parameter(5.0)}})).obs_occasion is None


def test_a_control_stream_export_writes_iov_given_the_number_of_occasions():
    for occasions in (None, 1, 2.0):
        with pytest.raises(SpecificationError, match=r"inter-occasion variability of cl .*"
                                                     r"--occasions K"):
            write_control_stream(SPEC, occasions=occasions)
    text = write_control_stream(SPEC, occasions=3)
    assert "IF(OCC.EQ.3) IOVCL = ETA(5)" in text and "CL = TVCL*EXP(ETA(1)+IOVCL)" in text
    assert text.count("$OMEGA BLOCK(1) SAME") == 2
