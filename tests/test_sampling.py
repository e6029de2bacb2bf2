"""The one sampling run of every fit (pkmodel.sampling.sample_nuts) and its settings."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pkmodel.errors import SamplingError, SpecificationError
from pkmodel.sampling import DEFAULT_RANDOM_SEED, SamplerSettings, sample_nuts

PACKAGE = Path(__file__).resolve().parents[1] / "pkmodel"


def _sampler_calls() -> list[str]:
    """Every call of ``nutpie.sample`` and of PyMC's ``sample`` in the package (by AST: any
    ``X.sample(...)`` with X named nutpie, pm or pymc, and ``sample(...)`` imported from them)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.asname or alias.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module in ("nutpie", "pymc")
                    for alias in node.names if alias.name == "sample"}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "sample" \
                    and isinstance(func.value, ast.Name) \
                    and func.value.id in ("nutpie", "pm", "pymc"):
                out.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                           f"{func.value.id}.sample")
            elif isinstance(func, ast.Name) and func.id in imported:
                out.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {func.id}")
    return out


def test_the_package_calls_the_sampler_in_one_place():
    calls = _sampler_calls()
    assert len(calls) == 1 and calls[0].startswith("pkmodel/sampling.py:"), calls


def test_settings_are_checked_once_with_the_setting_named():
    s = SamplerSettings(draws=np.int64(10), tune=0, chains=3, cores=8, random_seed=None)
    assert (s.draws, s.tune, s.chains, s.cores) == (10, 0, 3, 3)  # cores: at most the chains
    assert type(s.draws) is int and s.random_seed == DEFAULT_RANDOM_SEED
    assert SamplerSettings(chains=2).cores in (1, 2)
    for bad, match in [({"draws": 0}, "draws must be an integer >= 1"),
                       ({"tune": -1}, "tune must be an integer >= 0"),
                       ({"chains": 1.5}, "chains must be an integer >= 1"),
                       ({"cores": 0}, "cores must be an integer >= 1"),
                       ({"draws": True}, "draws must be an integer"),
                       ({"target_accept": 1.0}, r"target_accept must be in \[0.5, 1\)"),
                       ({"target_accept": "0.9"}, "target_accept"),
                       ({"random_seed": -1}, "random_seed must be a non-negative integer")]:
        with pytest.raises(SpecificationError, match=match):
            SamplerSettings(**bad)


def _trace(chains: int, draws: int) -> xr.DataTree:
    rng = np.random.default_rng(0)
    dims = ("chain", "draw")
    post = xr.Dataset({"mu": (dims, rng.normal(size=(chains, draws))),
                       "sigma_log__": (dims, rng.normal(size=(chains, draws))),
                       "u_cl": (dims, rng.normal(size=(chains, draws)))})
    stats = xr.Dataset({"diverging": (dims, np.zeros((chains, draws), bool))})
    return xr.DataTree.from_dict({"/posterior": post, "/sample_stats": stats})


def test_one_run_drops_the_samplers_coordinates_and_records_tuning(monkeypatch):
    import nutpie

    asked = {}

    def fake(compiled, **kwargs):
        asked.update(kwargs, compiled=compiled)
        return _trace(kwargs["chains"], kwargs["draws"])

    monkeypatch.setattr(nutpie, "sample", fake)
    settings = SamplerSettings(draws=30, tune=0, chains=2, target_accept=0.95, random_seed=4)
    tree = sample_nuts(lambda: "compiled", settings, failure_hint="check X", drop=["u_cl"],
                       options={"maxdepth": 6})
    assert list(tree["posterior"].data_vars) == ["mu"]
    assert tree["posterior"].attrs["tuning_steps"] == 0
    assert asked == {"compiled": "compiled", "draws": 30, "tune": 1, "chains": 2,
                     "cores": settings.cores, "seed": 4, "target_accept": 0.95,
                     "save_warmup": False, "progress_bar": False, "maxdepth": 6}


def test_a_sampler_failure_says_what_to_check_and_a_short_trace_is_refused(monkeypatch):
    import nutpie

    def failing(compiled, **kwargs):
        raise RuntimeError("Could not find a finite initial point\nStack backtrace: 0: ...")

    monkeypatch.setattr(nutpie, "sample", failing)
    settings = SamplerSettings(draws=30, tune=10, chains=2)
    with pytest.raises(SamplingError) as err:
        sample_nuts(lambda: None, settings, failure_hint="check the doses")
    assert str(err.value) == ("the sampler failed (Could not find a finite initial point); check "
                              "the doses, then fit again (nothing was saved)")
    monkeypatch.setattr(nutpie, "sample", lambda compiled, **kw: _trace(2, 12))
    with pytest.raises(SamplingError, match="2 chains x 12 draws of the 2 x 30 asked for"):
        sample_nuts(lambda: None, settings, failure_hint="check the doses")
