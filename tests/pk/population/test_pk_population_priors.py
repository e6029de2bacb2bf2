"""The population PK model is built from ``PopulationSpec.priors()`` (:class:`pkmodel.priors.Prior`)
and the report states the same priors, so the two cannot drift."""

from __future__ import annotations

import numpy as np
import pymc as pm
from test_pk_population import SPEC_TOML, TRUTH, _write

from pkmodel.pk.population import read_spec, simulate_dataset
from pkmodel.pk.population.build import build_model
from pkmodel.pk.population.data import read_population_data


def test_the_population_model_is_built_from_the_priors_the_report_states(tmp_path):
    """Every sampled parameter of a population model (a BSV block, a covariate effect, a fixed
    parameter, combined error, non-default scales) has the log density of the prior in
    ``spec.priors()``, and the report's model section prints each of them."""
    from pkmodel.report.population import _model_section

    text = (SPEC_TOML.replace('error = "proportional"',
                              'error = "combined"\nproportional_prior = 0.2\n'
                              'additive_prior_ug_ml = 0.7')
            .replace("typical = 0.5\nprior_log_sd = 0.5", "typical = 0.5\nfixed = true")
            .replace("typical = 3.0\nbsv = true", "typical = 3.0\nbsv = true\nomega_prior = 0.4")
            + '\n[bsv]\nblock = ["cl", "v1"]\nlkj_eta = 3.0\n')
    spec = read_spec(_write(tmp_path, text))
    priors = spec.priors()
    assert set(priors) == {"log_tv_cl", "log_tv_v1", "log_tv_v2", "omega_cl", "omega_v1",
                           "chol_corr_cl_v1", "theta_cl_weight_kg", "sigma_prop",
                           "sigma_add_ug_ml"}
    truth = {**TRUTH, "sigma_add_ug_ml": 0.5, "corr_cl_v1": 0.3}
    data = simulate_dataset(spec, truth, n_subjects=12, dose_times_days=[0, 14],
                            sample_times_days=[1, 7, 35], dose_mg_kg=5, random_seed=1).frame
    model = build_model(spec, read_population_data(data, spec))
    rng = np.random.default_rng(5)
    point = {k: v + rng.normal(0, 0.2, np.shape(v)) for k, v in model.initial_point().items()}
    outs = model.unobserved_value_vars
    values = dict(zip([v.name for v in outs], model.compile_fn(outs, point_fn=True)(point),
                      strict=True))
    built = {rv.name: rv for rv in model.free_RVs}
    assert set(priors) <= set(built)
    names = list(priors)  # one compiled function for all (compiling is the slow part)
    logps = model.compile_fn([model.logp(vars=[built[n]], jacobian=False) for n in names],
                             inputs=model.value_vars, on_unused_input="ignore",
                             point_fn=True)(point)
    for name, logp in zip(names, logps, strict=True):
        prior = priors[name]
        options = {"n": 2} if prior.family == "LKJCorr" else {}
        stated = pm.logp(prior.dist(**options), values[name]).sum().eval()
        np.testing.assert_allclose(logp, stated, rtol=1e-10, err_msg=name)

    class _Fit:  # what the model section reads of a fit
        def __init__(self):
            self.spec = spec

        def reported_variables(self):
            return {f"tv_{p}": "unit" for p in spec.parameters}

    section = _model_section(_Fit())
    for name, prior in priors.items():
        if name.startswith(("theta_", "sigma_")):
            assert f"{name} ~ {prior}" in section, name
        elif name.startswith("omega_"):
            assert f"~ {prior}" in section, name
        elif name.startswith("log_tv_"):  # in the reported unit (a day dataset: the model's)
            assert (f"log TV ~ Normal(log {np.exp(prior['mu']):.4g}, {prior['sigma']:g})"
                    in section), name
