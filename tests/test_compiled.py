"""The disk cache of compiled sampler models (pkmodel.model_cache), with the remission model
(pkmodel.response.compiled); the population PK model's use of it is tested in
test_pk_population_cache.py."""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import subprocess
import sys
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
from packaging.specifiers import SpecifierSet

import pkmodel
from pkmodel import model_cache, nutpie_internals
from pkmodel.response import compiled, marginal
from pkmodel.response.simulation import simulate_cohort

QUICK = {"draws": 150, "tune": 150, "chains": 2, "random_seed": 3, "progressbar": False}

# Fits in a fresh process: whether PyMC was imported, whether the model came from the cache,
# and a digest of the posterior.
CHILD = """
import json, sys, warnings
import numpy as np
import pkmodel
from pkmodel import model_cache
from pkmodel.response.simulation import simulate_cohort
warnings.simplefilter("ignore")
cohort = simulate_cohort(60, 2, random_seed=5)
fit = pkmodel.RemissionModel().fit(cohort, draws=150, tune=150, chains=2, random_seed=3,
                                   progressbar=False)
(model,) = model_cache._MEMO.values()
print(json.dumps({"pymc": "pymc" in sys.modules, "from_cache": model.from_cache,
                  "beta": fit.posterior["beta"].values.ravel().tolist(),
                  "loglik": float(fit.tree["log_likelihood"]["remission"].sum())}))
"""


def _child(cache: str | os.PathLike, **env_vars: str) -> dict:
    env = {**os.environ, "PKMODEL_CACHE_DIR": str(cache), **env_vars}
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
    manifest = json.loads((entry / "manifest.json").read_text())  # plain JSON, no pickle
    assert manifest["versions"]["nutpie"] == first_version("nutpie")
    assert manifest["inputs"] == []  # the remission model's data are constants of its code
    long_ago = time.time() - 30 * 86400
    os.utime(entry / "manifest.json", (long_ago, long_ago))
    second = _child(path)
    assert second["from_cache"] and not second["pymc"], second["stderr"]
    assert second["beta"] == first["beta"] and second["loglik"] == first["loglik"]
    assert "compiled-model cache" not in second["stderr"]  # no notice
    assert (entry / "manifest.json").stat().st_mtime > long_ago + 86400  # last use recorded


# The cache's disk functions, and every function of the one module of private Numba and nutpie
# APIs: with the cache off none may be called.
DISK = ("_load", "_read_entry", "_serialise", "_save", "_prune", "_touch", "_machine_tag",
        "_private_nutpie_model", "_loads_elsewhere")
PRIVATE = tuple(name for name, value in vars(nutpie_internals).items()
                if inspect.isfunction(value) and value.__module__ == nutpie_internals.__name__)


def _forbid_private(monkeypatch, keep: tuple[str, ...] = ()) -> list[str]:
    called: list[str] = []
    for module, names in ((model_cache, DISK), (nutpie_internals, PRIVATE)):
        for name in set(names) - set(keep):
            def boom(*args, _name=name, **kwargs):
                called.append(_name)
                raise AttributeError(f"{_name} is not to be called")
            monkeypatch.setattr(module, name, boom)
    return called


def _fit_beta() -> list[float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pkmodel.RemissionModel().fit(simulate_cohort(60, 2, random_seed=5), **QUICK)
    return fit.posterior["beta"].values.ravel().tolist()


def test_cache_off_calls_no_private_api_and_matches_the_cached_fit(cache, monkeypatch, caplog):
    """Compiled here with the cache off, or loaded from disk elsewhere: the same draws.

    With ``PKMODEL_CACHE_DIR=off`` no private Numba or nutpie API is touched (each raises
    here) and nothing is logged.
    """
    _, first = cache
    monkeypatch.setenv("PKMODEL_CACHE_DIR", "off")
    monkeypatch.setattr(model_cache, "_MEMO", {})
    monkeypatch.setattr(model_cache, "_NOTICED", set())
    called = _forbid_private(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="pkmodel"):
        assert _fit_beta() == first["beta"]
    assert called == [] and not caplog.records
    (model,) = model_cache._MEMO.values()
    assert not model.from_cache and model._compiled is not None


def test_failing_private_path_falls_back_with_one_line(cache, tmp_path, monkeypatch, caplog):
    """Internals that moved (every private function raises): the supported path, same draws."""
    path, first = cache
    monkeypatch.setenv("PKMODEL_CACHE_DIR", str(path))  # holds the entry of this model
    monkeypatch.setattr(model_cache, "_MEMO", {})
    monkeypatch.setattr(model_cache, "_NOTICED", set())
    before = sorted(p.name for p in path.iterdir())
    # the disk functions work; every private Numba and nutpie call raises (internals moved)
    called = _forbid_private(monkeypatch, keep=(*DISK, "machine_tag"))
    with caplog.at_level(logging.WARNING, logger="pkmodel"):
        assert _fit_beta() == first["beta"]
    assert called == ["load_code", "serialise_code"]
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 2 and all("\n" not in m and "Traceback" not in m for m in notices)
    assert "could not be loaded (AttributeError: load_code is not to be called)" in notices[0]
    assert "could not be written (AttributeError: serialise_code" in notices[1]
    assert sorted(p.name for p in path.iterdir()) == before


def test_versions_outside_those_tested_bypass_the_cache(tmp_path, monkeypatch, caplog):
    """A nutpie the cache was not written for: no private call, one line, the model compiles."""
    spec = pkmodel.RemissionModel(patient_effect=False)
    design, options = spec._design(simulate_cohort(30, 2, random_seed=9))
    monkeypatch.setattr(model_cache, "_MEMO", {})
    monkeypatch.setattr(model_cache, "_NOTICED", set())
    monkeypatch.setenv("PKMODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(nutpie_internals.CACHE_VERSIONS, "nutpie", ("0.17", "0.18"))
    called = _forbid_private(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="pkmodel"):
        model = compiled.sampler_model(design, spec.priors, **options)
        compiled.sampler_model(design, spec.priors, **options)  # memo: no second line
    assert not model.from_cache and model.n_dim > 0 and called == []
    (notice,) = [r.getMessage() for r in caplog.records]
    assert "nutpie 0.16" in notice and "(>=0.17,<0.18)" in notice
    assert not (tmp_path / "cache").exists()


def test_the_package_accepts_at_least_the_versions_of_the_cache():
    """pyproject.toml's ranges hold the cache's (narrower) ones: outside the cache's, pkmodel
    still installs and fits, compiling every model through nutpie's supported path."""
    from packaging.requirements import Requirement

    deps = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = {r.name: r.specifier for r in map(Requirement, deps["project"]["dependencies"])}
    for pkg in ("nutpie", "numba", "pytensor"):
        low, high = nutpie_internals.CACHE_VERSIONS[pkg]
        assert low in declared[pkg] and f"{high}.0" in declared[pkg], (pkg, declared[pkg])
        assert f"{high}.0" not in SpecifierSet(f">={low},<{high}")
    assert model_cache.unsupported_versions() is None  # the installed ones are in range
    text = " ".join((Path(__file__).parents[1] / "docs" / "architecture.md").read_text().split())
    assert ("nutpie 0.16.11 up to 0.17, Numba 0.68, PyTensor 3.3.8 up to 3.4" in text
            and nutpie_internals.CACHE_VERSIONS["nutpie"] == ("0.16.11", "0.17")
            and nutpie_internals.CACHE_VERSIONS["numba"] == ("0.68", "0.69")
            and nutpie_internals.CACHE_VERSIONS["pytensor"] == ("3.3.8", "3.4"))
    assert "nutpie < 1, Numba < 1 and PyTensor < 4" in text  # the docs state both ranges


def test_only_one_module_reaches_into_numba_or_nutpie_internals():
    """Private Numba and nutpie names (``numba.core``, ``nutpie.compile_pymc``, ``._library``,
    ``._final_module``...) appear in pkmodel.nutpie_internals and nowhere else."""
    package = Path(pkmodel.__file__).parent
    private = re.compile(r"numba\.core|from nutpie\.compile_pymc import|CompiledPyMCModel|"
                         r"\._library\b|_final_module|serialize_using_object_code|unserialize_library|"
                         r"_wrapper_name|magic_tuple")
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                   if private.search(p.read_text()))
    assert users == ["nutpie_internals.py"]


def first_version(pkg: str) -> str:
    from importlib.metadata import version

    return version(pkg)


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
    old = damaged / ("0" * 64)  # another model's entry, used long ago
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    os.utime(old / "manifest.json", (1e9, 1e9))
    rebuilt = _child(damaged, PKMODEL_CACHE_ENTRIES="1")
    assert not rebuilt["from_cache"] and rebuilt["beta"] == first["beta"]
    (notice,) = [line for line in rebuilt["stderr"].splitlines() if "compiled-model cache" in line]
    assert "could not be loaded" in notice and "checksum of logp.o" in notice
    assert sorted(p.name for p in damaged.iterdir()) == [entry.name]  # the old one pruned
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
    monkeypatch.setattr(model_cache, "_MEMO", {})
    monkeypatch.setenv("PKMODEL_CACHE_DIR", "off")
    assert model_cache.cache_dir() is None
    model = compiled.sampler_model(design, spec.priors, **options)
    assert not model.from_cache and model.n_dim > 0
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setattr(model_cache, "_MEMO", {})
    monkeypatch.setenv("PKMODEL_CACHE_DIR", str(blocked / "cache"))
    again = compiled.sampler_model(design, spec.priors, **options)
    assert not again.from_cache and np.array_equal(again.x0, model.x0)
    assert blocked.read_text() == "not a directory"


def test_entry_is_checked_in_another_process_before_it_is_kept(cache):
    path, _ = cache
    (entry,) = [p for p in path.iterdir() if not p.name.startswith(".")]
    manifest = json.loads((entry / "manifest.json").read_text())
    model = model_cache._load(entry, manifest["key"])
    value = nutpie_internals.logp_at(model.logp_address, model.n_dim, model.x0)
    assert np.isfinite(value)
    assert model_cache._loads_elsewhere(entry, manifest["key"], value)
    assert not model_cache._loads_elsewhere(entry, manifest["key"], value + 1e-6)
    assert not model_cache._loads_elsewhere(entry, "another key", value)


def _fake_entry(directory, name: str, used: float) -> Path:
    entry = directory / name
    entry.mkdir()
    (entry / "manifest.json").write_text("{}")
    os.utime(entry / "manifest.json", (used, used))
    return entry


def test_prune_keeps_the_most_recently_used_entries(tmp_path, monkeypatch):
    now = time.time()
    entries = [_fake_entry(tmp_path, f"{i:064x}", now - 1000 * i) for i in range(6)]
    stale = tmp_path / ".0123456789abcdef-tmp1"  # left by a writer that died
    stale.mkdir()
    os.utime(stale, (now - 2 * 86400, now - 2 * 86400))
    fresh = tmp_path / ".fedcba9876543210-tmp2"  # being written
    fresh.mkdir()
    other = tmp_path / "notes"  # not the cache's: left alone
    other.mkdir()
    (tmp_path / ("f" * 64)).write_text("a file, not an entry")
    removed = model_cache._prune(tmp_path, 3)
    assert sorted(removed) == sorted([*entries[3:], stale])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [e.name for e in entries[:3]] + [fresh.name, other.name, "f" * 64])
    model_cache._touch(entries[2])  # used now: the newest
    model_cache._prune(tmp_path, 1)
    assert entries[2].exists() and not entries[0].exists()
    monkeypatch.delenv("PKMODEL_CACHE_ENTRIES", raising=False)
    assert model_cache.max_entries() == model_cache.DEFAULT_MAX_ENTRIES == 16
    monkeypatch.setenv("PKMODEL_CACHE_ENTRIES", "4")
    assert model_cache.max_entries() == 4
    monkeypatch.setenv("PKMODEL_CACHE_ENTRIES", "0")
    assert model_cache.max_entries() == 1
    monkeypatch.setenv("PKMODEL_CACHE_ENTRIES", "many")
    assert model_cache.max_entries() == 16


def test_kernel_version_invalidates_the_entry_and_the_numba_cache_key(cache, monkeypatch):
    """A bumped KERNEL_VERSION: another model key, the old entry refused, another Op key."""
    import pytensor.tensor as pt
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    path, _ = cache
    (entry,) = [p for p in path.iterdir() if not p.name.startswith(".")]
    key = json.loads((entry / "manifest.json").read_text())["key"]
    assert compiled._kernel_version() == marginal.KERNEL_VERSION  # read from the source
    spec = pkmodel.RemissionModel()
    design, options = spec._design(simulate_cohort(60, 2, random_seed=5))
    assert compiled.model_key(design, spec.priors, **options) == key
    assert model_cache._read_entry(entry, key) is not None
    node = marginal._marginal_op.make_node(pt.lmatrix(), pt.dmatrix(), pt.dvector(),
                                           pt.dmatrix())
    op_key = numba_funcify_and_cache_key(marginal._marginal_op, node)[1]

    bumped = marginal.KERNEL_VERSION + 1
    monkeypatch.setattr(marginal, "KERNEL_VERSION", bumped)
    monkeypatch.setattr(compiled, "_kernel_version", lambda: bumped)
    assert compiled.model_key(design, spec.priors, **options) != key
    with pytest.raises(model_cache.CacheEntryError, match="for another key"):
        model_cache._read_entry(entry, compiled.model_key(design, spec.priors, **options))
    assert numba_funcify_and_cache_key(marginal._marginal_op, node)[1] != op_key
