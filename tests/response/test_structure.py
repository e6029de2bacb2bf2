"""What the hierarchy can identify: the structure chosen from the data, and its exactness."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import pkmodel
from pkmodel import SpecificationError
from pkmodel.response.curves import compute_curve
from pkmodel.response.diagnostics import compute_diagnostics
from pkmodel.response.fit import diagnosed_parameters
from pkmodel.response.simulation import TrueParameters, simulate_cohort
from pkmodel.response.structure import choose_structure, new_group_intercept


def _structure(cohort, **spec):
    model = pkmodel.RemissionModel(**spec)
    return model._design(cohort)[1]["structure"]


def test_new_centre_intercept_is_exact_for_the_iid_hierarchy():
    """Zero-sum centre effects are the iid hierarchy rewritten: a new centre's intercept given
    alpha (the mean of the fitted centres' intercepts) is what the iid model implies."""
    rng = np.random.default_rng(0)
    m, s, sigma, n_groups, n = 0.3, 1.5, 0.6, 3, 400_000
    mu = rng.normal(m, s, n)
    a = rng.normal(0, sigma, (n, n_groups))
    alpha = mu + a.mean(axis=1)
    new = mu + rng.normal(0, sigma, n)
    # The joint is Gaussian: E[new | alpha] is linear, the residual variance constant.
    slope, intercept = np.polyfit(alpha, new, 1)
    resid_var = np.var(new - (intercept + slope * alpha))
    meta = {"structure": {"group_effects": "zero_sum", "n_groups": n_groups,
                          "intercept_mu": m, "intercept_sd": s}}
    mean0, var = new_group_intercept(meta, 0.0, sigma)
    mean1, _ = new_group_intercept(meta, 1.0, sigma)
    assert mean1 - mean0 == pytest.approx(slope, abs=0.005)
    assert mean0 == pytest.approx(intercept, abs=0.01)
    assert var == pytest.approx(resid_var, rel=0.01)
    # without a recorded structure (iid effects around alpha): alpha and sigma^2
    assert new_group_intercept({}, 0.7, sigma) == (0.7, sigma**2)


def test_population_curve_integrates_over_the_new_centre():
    n_draws = 300
    rng = np.random.default_rng(1)
    dims = ("chain", "draw")
    post = xr.Dataset({
        "alpha": (dims, rng.normal(0.4, 0.1, (1, n_draws))),
        "beta": (dims, rng.normal(-1.5, 0.1, (1, n_draws))),
        "sigma_group": (dims, np.abs(rng.normal(0.5, 0.1, (1, n_draws)))),
        "a_group": ((*dims, "group"), np.zeros((1, n_draws, 2))),
    }, coords={"group": ["a", "b"]})
    meta = {"strategies": ["s"], "months": [6], "groups": ["a", "b"], "diseases": [],
            "encodings": [], "tl_range_ug_ml": [3.0, 16.0],
            "structure": {"group_effects": "zero_sum", "n_groups": 2, "intercept_mu": 0.0,
                          "intercept_sd": 1.5}}
    curve = compute_curve(post, meta, tl=[5.0])["p_remission"].values.ravel()
    mean, var = new_group_intercept(meta, post["alpha"].values, post["sigma_group"].values)
    x, w = np.polynomial.hermite_e.hermegauss(60)
    expected = (w / w.sum() * 1 / (1 + np.exp(-(mean.ravel()[:, None]
                                                 + np.sqrt(var.ravel())[:, None] * x)))).sum(1)
    np.testing.assert_allclose(curve, expected, atol=1e-6)


def test_structure_follows_the_data():
    shipped = _structure(pkmodel.load_ungar2019())
    assert shipped.group_effects == "zero_sum" and shipped.n_groups == 2
    assert shipped.group_centring > 0.5  # 24 patients per centre say little: near non-centred
    big = _structure(simulate_cohort(20_000, 3, random_seed=2))
    assert big.group_centring < 0.05  # thousands per centre pin the effects: centred
    similar = _structure(simulate_cohort(5_000, 20, TrueParameters(sigma_group=0.0),
                                         random_seed=3))
    assert similar.group_centring > 0.5  # centres alike: the spread is near 0, non-centred
    assert shipped.slope_offsets == "zero_sum"
    assert _structure(pkmodel.load_ungar2019(), pool_slopes=False).slope_offsets == "contrasts"


def test_a_single_centre_is_a_recorded_simplification():
    cohort = simulate_cohort(60, 1, random_seed=4)
    structure = _structure(cohort)
    assert structure.group_effects == "none"
    assert "single center" in structure.notes[0] and "no center term" in structure.notes[0]
    frame = cohort.data.copy()
    frame["strategy"] = "dose_escalation"
    (note,) = _structure(pkmodel.read_cohort(frame, min_tl_ug_ml=None)).notes[1:]
    assert "every patient has strategy 'dose_escalation'" in note and "no strategy terms" in note


def test_terms_the_data_cannot_identify_are_refused():
    frame = pkmodel.load_ungar2019().data.copy()
    frame["disease"] = "CD"
    with pytest.raises(SpecificationError, match=r"two diseases.*every patient has disease 'CD'"):
        _structure(pkmodel.read_cohort(frame), slope_by="disease")
    frame["albumin_g_l"] = 40.0
    with pytest.raises(SpecificationError, match="constant"):
        _structure(pkmodel.read_cohort(frame), covariates=("albumin_g_l",))


def test_structure_is_saved_with_the_fit_and_changes_the_cache_key():
    from pkmodel.response import compiled

    cohort = pkmodel.load_ungar2019()
    spec = pkmodel.RemissionModel()
    design, options = spec._design(cohort)
    other = {**options, "structure": choose_structure(design, spec.priors, group="center",
                                                      pool_slopes=False)}
    assert (compiled.model_key(design, spec.priors, **options)
            != compiled.model_key(design, spec.priors, **other))
    assert options["structure"].to_dict()["n_groups"] == 2


def _stats(n_chains=4, n_draws=500, energy=None, depth=None, seed=0):
    rng = np.random.default_rng(seed)
    dims = ("chain", "draw")
    post = xr.Dataset({"alpha": (dims, rng.normal(size=(n_chains, n_draws))),
                       "sigma_group_log__": (dims, np.zeros((n_chains, n_draws))),
                       "z_group": ((*dims, "group"), np.zeros((n_chains, n_draws, 2))),
                       "a_group": ((*dims, "group"), rng.normal(size=(n_chains, n_draws, 2)))})
    stats = xr.Dataset({
        "diverging": (dims, np.zeros((n_chains, n_draws), bool)),
        "energy": (dims, rng.normal(size=(n_chains, n_draws)) if energy is None else energy),
        "maxdepth_reached": (dims, np.zeros((n_chains, n_draws), bool) if depth is None
                             else depth)})
    return post, stats


def test_diagnostics_are_on_the_model_parameters_and_check_bfmi_and_tree_depth():
    post, stats = _stats()
    names = diagnosed_parameters(post)
    assert names == ["alpha", "a_group"]  # neither the log__ coordinate nor z_group
    good = compute_diagnostics(post, stats, names)
    assert good.converged and good.min_bfmi > 1 and good.treedepth_fraction == 0
    # energy that barely moves between draws (a random walk): E-BFMI far below 0.3
    walk = np.cumsum(np.random.default_rng(2).normal(size=(4, 500)), axis=1)
    low = compute_diagnostics(post, _stats(energy=walk)[1], names)
    assert not low.converged and low.min_bfmi < 0.3
    assert any("E-BFMI" in p for p in low.problems())
    depth = np.zeros((4, 500), bool)
    depth[:, :20] = True
    deep = compute_diagnostics(post, _stats(depth=depth)[1], names)
    assert not deep.converged and deep.treedepth_fraction == pytest.approx(0.04)
    assert any("maximum tree depth" in p for p in deep.problems())
    assert "E-BFMI" in str(good)


def test_docs_state_the_centring_the_code_chooses():
    """docs/model.md quotes w for three cohorts: they are what choose_structure gives."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "model.md").read_text()
    cohorts = {"shipped": pkmodel.load_ungar2019(),
               "2000": simulate_cohort(2000, 3, random_seed=1),
               "50000": simulate_cohort(50_000, 3, random_seed=1)}
    for name, cohort in cohorts.items():
        w = _structure(cohort).group_centring
        assert f"`w = {w:.2f}`" in text, (name, w)

