"""The PK population's uncertainty propagated into the exposure-driven model (issue 30, item 2).

``Exposure(population_draws=K)`` fits the remission model once per draw of the population PK
parameters and pools the posteriors (:mod:`pkmodel.response.pooling`). Checked here: the pooled
posterior is the mixture of the component fits, each equal to the fit without propagation given
that draw as the PK model (the first with the fit's own seed, so that one draw equal to the PK
model gives the fit without propagation exactly); the interval of ``b_gain`` widens when the
draws differ; the gate is each component's; the fit saves and loads; bad input is refused with
the fix. The calibration over replicate cohorts is ``benchmarks/coverage_exposure.py``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import xarray as xr
from exposure_truth import simulate_exposure_cohort

import pkmodel
from pkmodel.diagnostics import combine_diagnostics, compute_diagnostics
from pkmodel.errors import SpecificationError
from pkmodel.pk import get_model, resolve_population_draws
from pkmodel.pk.published_uncertainty import (
    DEFAULT_RSE,
    PUBLISHED_RSE,
    published_model_draws,
    rse_table,
)
from pkmodel.response.exposure import Exposure
from pkmodel.response.pooling import component_seed, pool_trees

ASSUME = {"immunomodulator": 0}
SMALL = {"draws": 200, "tune": 200, "chains": 2, "random_seed": 4, "progressbar": False}


# ----------------------------------------------------------------- the library's uncertainty
def test_published_rses_where_known_and_stated_defaults_otherwise():
    table = rse_table(get_model("fasanmade2009")).set_index(["kind", "estimate"])
    # the abstract's typical value +- SE: CL 0.407 +- 0.0103 L/day, Q 7.14 +- 0.489 L/day
    assert table.loc[("typical", "cl"), "rse"] == pytest.approx(0.0103 / 0.407)
    assert table.loc[("typical", "q"), "rse"] == pytest.approx(0.489 / 7.14)
    assert "abstract" in table.loc[("typical", "cl"), "source"]
    assert table.loc[("omega2", "cl"), "rse"] == DEFAULT_RSE["omega2"]
    albumin = ("coefficient", "cl~albumin_g_dl")
    assert table.loc[albumin, "rse"] == DEFAULT_RSE["coefficient"]
    assert "default" in table.loc[albumin, "source"]
    other = rse_table(get_model("fasanmade2011"))
    assert set(other["rse"]) <= set(DEFAULT_RSE.values()) and "fasanmade2011" not in PUBLISHED_RSE


def test_library_draws_follow_the_stated_sampling_distribution():
    model = get_model("fasanmade2011")
    draws = published_model_draws(model, 400, random_seed=2)
    assert [m.name for m in draws[:2]] == ["fasanmade2011_draw0", "fasanmade2011_draw1"]
    log_cl = np.log([m.typical["cl"] for m in draws])
    assert np.std(log_cl) == pytest.approx(DEFAULT_RSE["typical"], rel=0.15)
    assert np.mean(log_cl) == pytest.approx(math.log(model.typical["cl"]), abs=0.02)
    alb = np.array([next(e.coefficient for e in m.effects if e.covariate == "albumin_g_dl")
                    for m in draws])
    assert np.std(alb) == pytest.approx(0.855 * DEFAULT_RSE["coefficient"], rel=0.15)
    # same seed, same draws; a kind left out keeps its estimates
    assert published_model_draws(model, 3, random_seed=2) == draws[:3]
    typical_only = published_model_draws(model, 3, random_seed=2, kinds=("typical",))
    assert [m.typical for m in typical_only] == [m.typical for m in draws[:3]]
    assert all(m.omega2 == model.omega2 and m.effects == model.effects for m in typical_only)
    with pytest.raises(SpecificationError, match="kinds names"):
        published_model_draws(model, 2, kinds=("omega",))


def test_bad_population_draws_are_refused_with_the_fix():
    for bad in (0, -2, True, "ten", []):
        with pytest.raises(SpecificationError, match="population"):
            Exposure(population_draws=bad)
    local = dataclasses.replace(get_model("fasanmade2011"), name="mine", aliases=())
    with pytest.raises(SpecificationError, match=r"without their uncertainty.*POPFIT"):
        Exposure(pk_model=local, population_draws=3)
    with pytest.raises(SpecificationError, match="unknown exposure option"):
        Exposure.from_any({"population_draw": 3})


def test_draws_are_recorded_as_models_and_read_back():
    exposure = Exposure(population_draws=3, assume=ASSUME)
    models, source = resolve_population_draws("fasanmade2011", 3, random_seed=20110701)
    assert exposure.population_draws == tuple(models) and exposure.propagated
    assert exposure.population_source == source and "fasanmade2011" in source
    again = Exposure.from_any(exposure.to_dict())
    assert again == exposure and again.central() == Exposure(assume=ASSUME)
    assert [c.model for c in exposure.components()] == models


# ----------------------------------------------------------------- pooling and the gate
def _tree(shift: float, chains: int = 2, draws: int = 300, seed: int = 0) -> xr.DataTree:
    rng = np.random.default_rng(seed)
    post = xr.Dataset({"b_gain": (("chain", "draw"), shift + rng.standard_normal((chains,
                                                                                  draws)))})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool)),
                        "energy": (("chain", "draw"), rng.standard_normal((chains, draws)))})
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def test_pooling_concatenates_chains_and_gates_each_component():
    trees = [_tree(0.0, seed=1), _tree(3.0, seed=2)]
    pooled = pool_trees(trees)
    post = pooled["posterior"].to_dataset()
    assert list(post["chain"].values) == [0, 1, 2, 3]
    np.testing.assert_array_equal(post["b_gain"].values[2:],
                                  trees[1]["posterior"]["b_gain"].values)
    parts = [compute_diagnostics(t["posterior"].to_dataset(), t["sample_stats"].to_dataset(),
                                 ["b_gain"]) for t in trees]
    gate = combine_diagnostics(parts)
    assert gate.max_rhat == max(p.max_rhat for p in parts) < 1.01  # never across components
    assert gate.n_draws == 1200 and gate.n_chains == 2
    whole = compute_diagnostics(post, pooled["sample_stats"].to_dataset(), ["b_gain"])
    assert whole.max_rhat > 1.5  # what R-hat over all chains would have said
    assert component_seed(7, 0) == 7 and component_seed(7, 1) != component_seed(7, 2)


# ----------------------------------------------------------------- fits
@pytest.fixture(scope="module")
def small_cohort():
    frame, _ = simulate_exposure_cohort(600, 2, b_base=-0.6, b_gain=1.2, alpha=0.2,
                                        sigma_centre=0.3, sigma_patient=0.6, seed=21,
                                        remission_tl="measured")
    return pkmodel.read_cohort(frame, name="propagation")


def _fit(cohort, **exposure):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pkmodel.ConvergenceWarning)  # 2 x 200 draws
        return pkmodel.RemissionModel(exposure={"assume": ASSUME, **exposure}).fit(
            cohort, **SMALL)


def test_pooled_posterior_is_the_mixture_of_the_component_fits(small_cohort, tmp_path):
    central = get_model("fasanmade2011")
    # a very different population (little distribution): larger gains of shortened intervals
    other = dataclasses.replace(central, name="other", aliases=(), typical={
        **central.typical, "q": central.typical["q"] / 10, "v2": central.typical["v2"] / 10})
    pooled = _fit(small_cohort, population_draws=[central, other])
    fixed = _fit(small_cohort)
    post = pooled.posterior
    assert post.sizes["chain"] == 4 and pooled.population_draws == 2
    # component 0: the fit without propagation, exactly (one draw equal to the PK model)
    for name in fixed.posterior.data_vars:
        np.testing.assert_array_equal(post[name].values[:2], fixed.posterior[name].values)
    # component 1: the fit with that draw as the PK model, with the second component's seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pkmodel.ConvergenceWarning)
        alone = pkmodel.RemissionModel(exposure={"assume": ASSUME, "pk_model": other}).fit(
            small_cohort, **{**SMALL, "random_seed": component_seed(4, 1)})
    np.testing.assert_array_equal(post["b_gain"].values[2:], alone.posterior["b_gain"].values)
    # the law of total variance: the pooled variance is the components' mean variance plus the
    # variance of their means, which the population's uncertainty adds
    parts = [f.posterior["b_gain"].values.ravel() for f in (fixed, alone)]
    between = np.var([x.mean() for x in parts])
    assert np.var(post["b_gain"].values) == pytest.approx(
        np.mean([np.var(x) for x in parts]) + between, rel=1e-9)
    assert between > 0.05**2  # (here 0.17 apart: a population with little distribution)
    # curves and predictions: each draw's chains with the gains under that draw's population
    curve = {name: f.remission_curve(tl=[3.0, 8.0], strategy=["5 mg/kg q4w", "10 mg/kg q8w"])[
        "p_remission"].values for name, f in (("pooled", pooled), ("fixed", fixed),
                                              ("alone", alone))}
    np.testing.assert_allclose(curve["pooled"][:2], curve["fixed"], rtol=1e-12)
    np.testing.assert_allclose(curve["pooled"][2:], curve["alone"], rtol=1e-12)
    table = small_cohort.data.drop_duplicates("patient_id").head(3)
    means = {name: f.predict(table)["p_remission"].to_numpy()
             for name, f in (("pooled", pooled), ("fixed", fixed), ("alone", alone))}
    np.testing.assert_allclose(means["pooled"], (means["fixed"] + means["alone"]) / 2,
                               rtol=1e-9)
    rec = pooled.recommend(tl_ug_ml=4.0, weight_kg=70, albumin_g_l=40)
    assert any("central model fasanmade2011 only" in note for note in rec.notes)
    # recorded, gated per component, saved and loaded
    record = pooled.meta["exposure"]["population_uncertainty"]
    assert record["n_draws"] == 2 and record["chains_per_draw"] == 2
    assert record["draws"] == ["fasanmade2011", "other"]
    gate, parts = pooled.component_diagnostics()
    assert len(parts) == 2 and gate == pooled.diagnostics
    assert gate.max_rhat == max(p.max_rhat for p in parts)
    assert any("propagated" in note for note in pooled.notes)
    path = tmp_path / "pooled.nc"
    pooled.save(path)
    loaded = pkmodel.load(path, warn=False)
    assert loaded.spec == pooled.spec and loaded.population_draws == 2
    assert loaded.diagnostics == pooled.diagnostics
    assert loaded.summary()["r_hat"].max() == pytest.approx(
        max(f.summary()["r_hat"].max() for f in (fixed, alone)), abs=1e-9)
