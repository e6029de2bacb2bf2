"""Population PK at the size of a therapeutic drug monitoring dataset: 1,000 patients with two
troughs each, fitted with the default settings, must pass the convergence gate and recover the
truth (about 2 minutes on 2 cores).

Troughs inform clearance and little else, so V1, Q and V2 are fixed (NONMEM's FIX), as with a
published model; clearance has BSV and a weight effect, and its random effects are centred as
pkmodel decides from the design (docs/population_pk.md). Before that choice was automatic the
same fit failed the gate (benchmarks/README.md, ``popk``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pkmodel.errors import ConvergenceWarning
from pkmodel.pk.population import read_population_data, read_spec, simulate_dataset
from pkmodel.pk.population.build import model_data
from pkmodel.pk.population.fitting import fit_population

SPEC_TOML = """\
[model]
compartments = 2
dosing = "infusion"

[parameters.cl]
typical = 0.3
bsv = true

[parameters.v1]
typical = 3.2
fixed = true

[parameters.q]
typical = 0.6
fixed = true

[parameters.v2]
typical = 2.2
fixed = true

[[covariates]]
parameter = "cl"
covariate = "WT"
effect = "power"
reference = 70
prior_mean = 0.75
prior_sd = 0.25

[residual]
error = "proportional"
"""

TRUTH = {"tv_cl": 0.35, "tv_v1": 3.2, "tv_q": 0.6, "tv_v2": 2.2, "omega_cl": 0.35,
         "theta_cl_weight_kg": 0.75, "sigma_prop": 0.15}


@pytest.mark.slow
def test_a_thousand_patients_troughs_pass_the_gate_with_the_defaults(tmp_path):
    path = tmp_path / "troughs.toml"
    path.write_text(SPEC_TOML, encoding="utf-8")
    spec = read_spec(path)
    # doses at weeks 0, 2, 6, then every 8 weeks; two of the troughs at weeks 6, 14 and 22
    frame = simulate_dataset(spec, TRUTH, n_subjects=1000, dose_times_days=[0, 14, 42, 98, 154],
                             sample_times_days=[41.9, 97.9, 153.9], dose_mg_kg=5,
                             random_seed=11).frame
    rng = np.random.default_rng(11)
    obs = frame.index[frame.EVID == 0].to_numpy()
    keep = rng.choice(obs, size=2000, replace=False)
    frame = frame[(frame.EVID == 1) | frame.index.isin(keep)]
    weights = model_data(spec, read_population_data(frame, spec))["w_cl"]
    assert np.median(weights) < 0.35  # two troughs inform a clearance well: mostly centred
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a failed gate warns: it must not
        fit = fit_population(frame, spec, random_seed=11)
    assert fit.converged, fit.diagnostics.problems()
    table = fit.summary(ci_prob=0.9).set_index("parameter")
    for name in ("tv_cl", "omega_cl", "theta_cl_weight_kg", "sigma_prop"):
        assert table.loc[name, "lower"] < TRUTH[name] < table.loc[name, "upper"], name
    assert table.loc["tv_cl", "median"] == pytest.approx(TRUTH["tv_cl"], rel=0.05)
    assert table.loc["omega_cl", "median"] == pytest.approx(TRUTH["omega_cl"], rel=0.1)
