"""The disk cache of compiled sampler models (pkmodel.response.compiled)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import pkmodel
from pkmodel.response import compiled
from pkmodel.response.simulation import simulate_cohort

QUICK = {"draws": 150, "tune": 150, "chains": 2, "random_seed": 3, "progressbar": False}

# Fits in a fresh process: whether PyMC was imported, whether the model came from the cache,
# and a digest of the posterior.
CHILD = """
import json, sys, warnings
import numpy as np
import pkmodel
from pkmodel.response import compiled
from pkmodel.response.simulation import simulate_cohort
warnings.simplefilter("ignore")
cohort = simulate_cohort(60, 2, random_seed=5)
fit = pkmodel.RemissionModel().fit(cohort, draws=150, tune=150, chains=2, random_seed=3,
                                   progressbar=False)
(model,) = compiled._MEMO.values()
print(json.dumps({"pymc": "pymc" in sys.modules, "from_cache": model.from_cache,
                  "beta": fit.posterior["beta"].values.ravel().tolist(),
                  "loglik": float(fit.tree["log_likelihood"]["remission"].sum())}))
"""


def _child(cache: str | os.PathLike) -> dict:
    env = {**os.environ, "PKMODEL_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["stderr"] = out.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache directory filled by one fit in a fresh process."""
    path = tmp_path_factory.mktemp("model_cache")
    first = _child(path)
    assert not first["from_cache"] and first["pymc"]
    return path, first


def test_second_process_loads_the_model_without_pymc_and_gets_the_same_posterior(cache):
    path, first = cache
    (entry,) = [p for p in path.iterdir() if not p.name.startswith(".")]
    assert sorted(p.name for p in entry.iterdir()) == [
        "expand.bc", "expand.o", "logp.bc", "logp.o", "manifest.json"]
    json.loads((entry / "manifest.json").read_text())  # plain JSON, no pickle
    second = _child(path)
    assert second["from_cache"] and not second["pymc"], second["stderr"]
    assert second["beta"] == first["beta"] and second["loglik"] == first["loglik"]


def test_in_process_fit_matches_the_cached_one(cache, monkeypatch):
    """Compiled here (cache off) or loaded from disk elsewhere: the same seed, the same draws."""
    _, first = cache
    monkeypatch.setenv("PKMODEL_CACHE_DIR", "off")
    monkeypatch.setattr(compiled, "_MEMO", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pkmodel.RemissionModel().fit(simulate_cohort(60, 2, random_seed=5), **QUICK)
    assert fit.posterior["beta"].values.ravel().tolist() == first["beta"]


def test_damaged_entry_is_rebuilt(cache, tmp_path):
    path, first = cache
    damaged = tmp_path / "cache"
    (entry,) = [p for p in path.iterdir() if not p.name.startswith(".")]
    (damaged / entry.name).mkdir(parents=True)
    for f in entry.iterdir():
        (damaged / entry.name / f.name).write_bytes(f.read_bytes())
    code = damaged / entry.name / "logp.o"
    blob = bytearray(code.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    code.write_bytes(bytes(blob))
    rebuilt = _child(damaged)
    assert not rebuilt["from_cache"] and rebuilt["beta"] == first["beta"]
    reloaded = _child(damaged)  # the entry was written again, whole
    assert reloaded["from_cache"] and reloaded["beta"] == first["beta"]


def test_key_follows_data_priors_and_options():
    spec = pkmodel.RemissionModel()
    cohort = simulate_cohort(60, 2, random_seed=5)
    design, options = spec._design(cohort)
    base = compiled.model_key(design, spec.priors, **options)
    assert base == compiled.model_key(design, spec.priors, **options)
    other_data, _ = spec._design(simulate_cohort(60, 2, random_seed=6))
    other_priors = pkmodel.RemissionModel(priors={"slope_sd": 2.0})
    keys = {
        compiled.model_key(other_data, spec.priors, **options),
        compiled.model_key(design, other_priors.priors, **options),
        compiled.model_key(design, spec.priors, **{**options, "patient_effect": False}),
        compiled.model_key(design, spec.priors,
                           **pkmodel.RemissionModel(assay_cv=0.2)._design(cohort)[1]),
        compiled.model_key(design, spec.priors,
                           **pkmodel.RemissionModel(pool_slopes=False)._design(cohort)[1]),
    }
    assert base not in keys and len(keys) == 5


def test_cache_off_and_unwritable_directory(tmp_path, monkeypatch):
    spec = pkmodel.RemissionModel(patient_effect=False)
    design, options = spec._design(simulate_cohort(30, 2, random_seed=9))
    monkeypatch.setattr(compiled, "_MEMO", {})
    monkeypatch.setenv("PKMODEL_CACHE_DIR", "off")
    assert compiled.cache_dir() is None
    model = compiled.sampler_model(design, spec.priors, **options)
    assert not model.from_cache and model.n_dim > 0
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setattr(compiled, "_MEMO", {})
    monkeypatch.setenv("PKMODEL_CACHE_DIR", str(blocked / "cache"))
    again = compiled.sampler_model(design, spec.priors, **options)
    assert not again.from_cache and np.array_equal(again.x0, model.x0)
    assert blocked.read_text() == "not a directory"


def test_entry_is_checked_in_another_process_before_it_is_kept(cache):
    path, _ = cache
    (entry,) = [p for p in path.iterdir() if not p.name.startswith(".")]
    manifest = json.loads((entry / "manifest.json").read_text())
    model = compiled._load(entry, manifest["key"])
    value = compiled._logp_at(model.logp_address, model.n_dim, model.x0)
    assert np.isfinite(value)
    assert compiled._loads_elsewhere(entry, manifest["key"], value)
    assert not compiled._loads_elsewhere(entry, manifest["key"], value + 1e-6)
    assert not compiled._loads_elsewhere(entry, "another key", value)
