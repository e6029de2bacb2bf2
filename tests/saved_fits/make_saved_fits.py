"""Write the saved fits of ``tests/saved_fits/`` with an OLD version of pkmodel.

The files are what pkmodel 0.2, 0.3 and 0.4 wrote (``tests/test_fits.py`` checks that today's
pkmodel loads them and predicts what the version that wrote them predicted). Each was made by
running this script with that version's source first on the path, from a checkout of it::

    git archive 8e0bc6d | tar -x -C /tmp/v02    # 0.2.0 (442a626: 0.3.0, 78e4424: 0.4.0)
    # the version a fit records comes from the installed metadata: put the old one first
    mkdir /tmp/v02/pkmodel-0.2.0.dist-info
    printf 'Metadata-Version: 2.1\\nName: pkmodel\\nVersion: 0.2.0\\n' \\
        > /tmp/v02/pkmodel-0.2.0.dist-info/METADATA
    cp tests/exposure_truth.py /tmp/v02/tests/   # 0.4 only: the exposure fit's cohort
    cd /tmp/v02 && PYTHONPATH=/tmp/v02 python tests/saved_fits/make_saved_fits.py 0.2 OUT

(the population fit of 0.4 uses that version's own ``SPEC_TOML`` of
``tests/pk/population/test_pk_population.py``), then merging the printed reference numbers into
``reference.json``. Small on purpose: 2 chains of 25 draws.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
import warnings

import pkmodel

warnings.simplefilter("ignore")
label, out = sys.argv[1], sys.argv[2]
print(pkmodel.__file__, pkmodel.__version__)
cohort = pkmodel.load_ungar2019()
fit = pkmodel.RemissionModel().fit(cohort, draws=25, tune=25, chains=2, random_seed=7,
                                   progressbar=False)
fit.save(f"{out}/remission_{label}.nc")
curve = fit.remission_curve(tl=[4.0, 10.0])
ref = {"p_remission_mean": float(curve["p_remission"].mean()),
       "beta_mean": float(fit.posterior["beta"].mean())}
if label == "0.4":
    sys.path.insert(0, "tests")
    from exposure_truth import simulate_exposure_cohort

    frame, _ = simulate_exposure_cohort(240, 2, b_base=-0.6, b_gain=1.2, alpha=0.2,
                                        sigma_centre=0.3, sigma_patient=0.6, seed=11,
                                        remission_tl="measured")
    exposure_cohort = pkmodel.read_cohort(frame, name="exposure-fixture")
    exposure = pkmodel.RemissionModel(exposure={"assume": {"immunomodulator": 0}}).fit(
        exposure_cohort, draws=25, tune=25, chains=2, random_seed=7, progressbar=False)
    exposure.save(f"{out}/exposure_{label}.nc")
    curve = exposure.remission_curve(tl=[4.0, 10.0])
    ref["exposure_p_remission_mean"] = float(curve["p_remission"].mean())

    from pkmodel.pk.population import fit_population, read_spec, simulate_dataset

    text = pathlib.Path("tests/pk/population/test_pk_population.py").read_text()
    toml = re.search(r'SPEC_TOML = """(.*?)"""', text, re.S).group(1)
    spec_path = pathlib.Path(out) / "spec04.toml"
    spec_path.write_text(toml.lstrip("\\\n"))
    spec = read_spec(spec_path)
    truth = {"tv_cl": 0.35, "tv_v1": 3.2, "tv_q": 0.6, "tv_v2": 2.2, "omega_cl": 0.35,
             "omega_v1": 0.2, "theta_cl_weight_kg": 0.75, "sigma_prop": 0.15}
    sim = simulate_dataset(spec, truth, n_subjects=8, dose_times_days=[0, 14],
                           sample_times_days=[0.1, 7, 13.9, 35], dose_mg_kg=5, random_seed=3)
    population = fit_population(sim.frame, spec, draws=25, tune=25, chains=2, random_seed=7)
    population.save(f"{out}/population_{label}.nc")
    table = population.summary().set_index("parameter")
    ref["population_tv_cl_median"] = float(table.loc["tv_cl", "median"])
print(json.dumps({label: ref}, indent=1))
