"""The population PK model in the compiled-model disk cache (pkmodel.model_cache).

One entry serves every dataset with the same specification and number of subjects: the data
are inputs of the compiled code. Checked here: a second process loads the entry without PyMC,
reads *other* data through it, and gives exactly the draws that compiling the model for those
data gives; the start it computes for new data is PyMC's own initial point; the key follows
the model and the number of subjects, not the data.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from test_pk_population import SAMPLES_DAYS, SPEC_TOML, TRUTH

from pkmodel.pk.population import read_spec, simulate_dataset, with_prior
from pkmodel.pk.population.build import build_model, model_data
from pkmodel.pk.population.compiled import (
    cache_key,
    initial_point,
    padded,
    sampler_model,
    subject_slots,
)
from pkmodel.pk.population.data import read_population_data

N_SUBJECTS = 12

# Fits one simulated dataset in a fresh process (argv: spec, seed, truth, subjects, sampling
# times): whether PyMC was imported, whether the model came from the cache, and the draws.
CHILD = """
import json, sys, warnings
from pathlib import Path
from pkmodel import model_cache
from pkmodel.pk.population import fit_population, read_spec, simulate_dataset
warnings.simplefilter("ignore")
spec = read_spec(Path(sys.argv[1]))
sim = simulate_dataset(spec, json.loads(sys.argv[3]), n_subjects=int(sys.argv[4]),
                       dose_times_days=[0, 14], sample_times_days=json.loads(sys.argv[5]),
                       dose_mg_kg=5, random_seed=int(sys.argv[2]))
fit = fit_population(sim.frame, spec, draws=100, tune=100, chains=2, random_seed=4)
(model,) = model_cache._MEMO.values()
print(json.dumps({"pymc": "pymc" in sys.modules, "from_cache": model.from_cache,
                  "n_obs": fit.data.n_observations,
                  "tv_cl": fit.posterior["tv_cl"].values.ravel().tolist(),
                  "eta_v1": fit.posterior["eta_v1"].values[0, -1].tolist()}))
"""


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "model.toml"
    path.write_text(SPEC_TOML, encoding="utf-8")
    return path


def _child(spec_path, cache, seed: int, times: list[float]) -> dict:
    env = {**os.environ, "PKMODEL_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(spec_path), str(seed),
                          json.dumps(TRUTH), str(N_SUBJECTS), json.dumps(times)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["stderr"] = out.stderr[-3000:]
    return result


def test_one_entry_serves_other_data_in_another_process_with_the_same_draws(spec_path,
                                                                            tmp_path):
    cache = tmp_path / "cache"
    first = _child(spec_path, cache, 1, SAMPLES_DAYS)  # compiles on dataset 1, writes the entry
    assert not first["from_cache"] and first["pymc"]
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    names = sorted(p.name for p in entry.iterdir())
    assert names == ["expand.bc", "expand.o", "logp.bc", "logp.o", "manifest.json"]
    manifest = json.loads((entry / "manifest.json").read_text())
    assert {"exact_value_ug_ml", "pair_elapsed_days", "w_cl"} <= {
        name for name, _, _ in manifest["inputs"]}
    # dataset 2, of another size (observations) but as many subjects: the same entry, no PyMC
    loaded = _child(spec_path, cache, 2, SAMPLES_DAYS[1:])
    assert loaded["from_cache"] and not loaded["pymc"], loaded["stderr"]
    assert "compiled-model cache" not in loaded["stderr"]
    assert loaded["n_obs"] < first["n_obs"] and loaded["tv_cl"] != first["tv_cl"]
    # dataset 2 compiled for itself (no cache): exactly the same draws
    compiled = _child(spec_path, "off", 2, SAMPLES_DAYS[1:])
    assert not compiled["from_cache"]
    assert compiled["tv_cl"] == loaded["tv_cl"] and compiled["eta_v1"] == loaded["eta_v1"]


def test_the_start_on_new_data_is_pymcs_initial_point(spec_path):
    """Compiled on one dataset, started on another: ``initial_point`` gives what PyMC's initial
    point of a model built on the other gives (the subjects' random effects start at their prior's
    centre, which depends on the covariates and the centring weights)."""
    spec = read_spec(spec_path)
    datasets = []
    for seed in (5, 6):
        sim = simulate_dataset(spec, TRUTH, n_subjects=N_SUBJECTS, dose_times_days=[0, 14],
                               sample_times_days=SAMPLES_DAYS[seed - 5:], dose_mg_kg=5,
                               random_seed=seed)
        datasets.append(read_population_data(sim.frame, spec))
    model = sampler_model(spec, datasets[0])
    arrays = model_data(spec, datasets[1])
    x0, jitter = initial_point(spec, arrays, model)
    pymc_model = build_model(spec, datasets[1])
    point = pymc_model.initial_point()
    expected = np.concatenate([np.ravel(point[name]) for name, _ in model.coordinates])
    np.testing.assert_allclose(x0, expected, rtol=1e-12, atol=1e-12)
    where = model.slices()
    assert np.ptp(x0[where["u_cl"]]) > 0.1  # weights and body weights differ between subjects
    assert jitter[where["u_cl"]].all() and not jitter[where["log_tv_cl"]].any()
    assert not jitter[where["omega_cl_log__"]].any()
    # and the compiled model reads dataset 1's arrays until given others
    assert np.array_equal(model.data["exact_value_ug_ml"],
                          model_data(spec, datasets[0])["exact_value_ug_ml"])


def test_the_key_follows_the_model_and_the_number_of_subjects(spec_path):
    spec = read_spec(spec_path)
    base = cache_key(spec, N_SUBJECTS, "cpu")
    assert base == cache_key(read_spec(spec_path), N_SUBJECTS, "cpu")
    # the LLOQ and a published prior's weight are data of the compiled code
    same = [read_spec_text(spec_path, SPEC_TOML.replace("lloq_ug_ml = 8.0", "lloq_ug_ml = 2"))]
    prior = with_prior(spec, "fasanmade2009", weight=0.5)
    same_prior = with_prior(spec, "fasanmade2009", weight=1.0)
    others = [cache_key(spec, N_SUBJECTS + 1, "cpu"), cache_key(spec, N_SUBJECTS, "other cpu"),
              cache_key(read_spec_text(spec_path, SPEC_TOML.replace(
                  "prior_sd = 0.25", "prior_sd = 0.5")), N_SUBJECTS, "cpu"),
              cache_key(prior, N_SUBJECTS, "cpu")]
    assert all(cache_key(s, N_SUBJECTS, "cpu") == base for s in same)
    assert cache_key(same_prior, N_SUBJECTS, "cpu") == others[-1]
    assert len({base, *others}) == 5


def read_spec_text(near, text: str):
    path = near.with_name("variant.toml")
    path.write_text(text, encoding="utf-8")
    return read_spec(path)


def test_empty_slots_leave_the_posterior_as_it_is(spec_path):
    """40 subjects are compiled with room for 46: the log density of the padded model is that
    of the subjects' model plus a standard normal for each empty slot's coordinate, and the
    empty slots are non-centred even where the specification forces centring."""
    spec = read_spec(spec_path)
    sim = simulate_dataset(spec, TRUTH, n_subjects=40, dose_times_days=[0, 14],
                           sample_times_days=SAMPLES_DAYS, dose_mg_kg=5, random_seed=7)
    data = read_population_data(sim.frame, spec)
    assert subject_slots(data.n_subjects) == 46
    full = padded(data, 46)
    assert full.n_subjects == 46 and full.n_observations == data.n_observations
    small, large = build_model(spec, data), build_model(spec, full)
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in small.initial_point().items()}
    extra = {k: rng.normal(size=6) for k in ("u_cl", "u_v1")}
    bigger = point | {k: np.concatenate([point[k], v]) for k, v in extra.items()}
    difference = large.compile_logp()(bigger) - small.compile_logp()(point)
    expected = sum(stats.norm.logpdf(v).sum() for v in extra.values())
    assert difference == pytest.approx(expected, rel=1e-10, abs=1e-9)
    forced = dataclasses.replace(spec, parameters=spec.parameters | {
        "cl": dataclasses.replace(spec.parameters["cl"], centred=True)})
    weights = model_data(forced, full)["w_cl"]
    assert weights.size == 46 and (weights[:40] == 0).all() and (weights[40:] == 1).all()


def test_the_docs_give_the_slots_of_the_code():
    text = " ".join((Path(__file__).parents[3] / "docs" / "population_pk.md").read_text(
        encoding="utf-8").split())
    listed = re.search(r"rounded up to the next of ([\d, ]+), \.\.\.", text).group(1)
    sizes = [int(v) for v in listed.split(", ")]
    assert sizes == sorted({subject_slots(n) for n in range(12, sizes[-1] + 1)})
    assert "1,000 subjects get 1,024" in text and subject_slots(1000) == 1024
    worst = max(subject_slots(n) / n for n in range(12, 20000))
    assert "at most 19 % more" in text and 1.18 < worst <= 1.19
