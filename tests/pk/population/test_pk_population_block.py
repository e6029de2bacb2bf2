"""Block (correlated) between-subject variability of population PK fits (NONMEM's $OMEGA
BLOCK): the specification and its file, the PyTensor graph against NumPy, simulation, and
recovery of a correlation of 0.6 from a simulated dataset.

One fit (one compilation of the block model, then about 6 s of sampling on 2 cores).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from test_pk_population import SAMPLES_DAYS, SPEC_TOML, TRUTH, _write

from pkmodel.errors import SpecFileError, SpecificationError
from pkmodel.pk.population import (
    Parameter,
    PopulationSpec,
    cwres,
    fit_population,
    load_population_fit,
    read_population_data,
    read_spec,
    simulate_dataset,
    truth_names,
)
from pkmodel.pk.population.build import build_model
from pkmodel.pk.population.equations import omega_matrix, random_etas
from pkmodel.pk.variability import correlated_etas

BLOCK_TOML = SPEC_TOML + '\n[bsv]\nblock = ["cl", "v1"]\n'
# omega_v1 0.3 (not 0.2 as in test_pk_population): the V1 etas must be read from the data for
# their correlation with the CL etas to be estimated
BLOCK_TRUTH = TRUTH | {"omega_v1": 0.3, "corr_cl_v1": 0.6}


@pytest.fixture(scope="module")
def block_spec(tmp_path_factory) -> PopulationSpec:
    path = tmp_path_factory.mktemp("block") / "model.toml"
    path.write_text(BLOCK_TOML, encoding="utf-8")
    return read_spec(path)


@pytest.fixture(scope="module")
def block_sim(block_spec):
    return simulate_dataset(block_spec, BLOCK_TRUTH, n_subjects=40, dose_times_days=[0, 14],
                            sample_times_days=SAMPLES_DAYS, dose_mg_kg=5, random_seed=3)


@pytest.fixture(scope="module")
def block_fit(block_spec, block_sim):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2 x 500 draws may miss the ESS of 400: not the point
        return fit_population(block_sim.frame, block_spec, draws=500, tune=500, chains=2,
                              random_seed=1)


# ----------------------------------------------------------------------------- specification
def test_the_block_is_read_kept_in_order_and_round_trips(tmp_path, block_spec):
    assert block_spec.bsv_blocks == (("cl", "v1"),) and block_spec.lkj_eta == 2.0
    assert block_spec.correlation_names == ("corr_cl_v1",)
    reversed_order = read_spec(_write(tmp_path, SPEC_TOML + '\n[bsv]\nblock = ["v1", "cl"]\n'
                                      "lkj_eta = 4\n"))
    assert reversed_order.bsv_blocks == (("cl", "v1"),) and reversed_order.lkj_eta == 4.0
    assert PopulationSpec.from_dict(block_spec.to_dict()) == block_spec
    assert block_spec.to_dict()["bsv"] == {"block": [["cl", "v1"]], "lkj_eta": 2.0}
    # a diagonal specification is described as before: no [bsv] section
    assert "bsv" not in read_spec(_write(tmp_path, SPEC_TOML)).to_dict()
    # several blocks
    four = {p: Parameter(1.0, bsv=True) for p in ("cl", "v1", "q", "v2")}
    two = PopulationSpec(parameters=four, bsv_blocks=[["v2", "q"], ["cl", "v1"]])
    assert two.bsv_blocks == (("q", "v2"), ("cl", "v1"))
    assert two.correlation_names == ("corr_q_v2", "corr_cl_v1")
    assert PopulationSpec.from_dict(two.to_dict()) == two
    assert truth_names(two)[7:10] == ("omega_v2", "corr_q_v2", "corr_cl_v1")


@pytest.mark.parametrize(("bsv", "expect"), [
    ('block = ["cl", "q"]', r"line 38: \[bsv\]: the BSV block cl, q includes q, which has no "
                            r"BSV: set bsv = true in \[parameters.q\]"),
    ('blocks = ["cl", "v1"]', r"line 38: unknown key 'blocks' in \[bsv\] \(did you mean "
                              r"'block'\?\); known keys: block, lkj_eta"),
    ('block = ["cl", "k"]', r"line 38: .*names k, which this structure does not have"),
    ('block = ["cl"]', r"line 38: .*two or more distinct parameters, not cl"),
    ('block = [["cl", "v1"], ["v1", "cl"]]', r"line 38: .*v1 is in two BSV blocks"),
    ('block = "cl"', r"line 38: \[bsv\]: block must be a list"),
    ('block = ["cl", "v1"]\nlkj_eta = 0', r"line 39: \[bsv\]: lkj_eta must be a positive"),
])
def test_block_errors_name_the_line_and_the_parameter(tmp_path, bsv, expect):
    with pytest.raises(SpecFileError, match=expect):
        read_spec(_write(tmp_path, SPEC_TOML + "\n[bsv]\n" + bsv + "\n"))


def test_block_errors_in_python():
    parameters = {"cl": Parameter(0.3, bsv=True), "v": Parameter(3.0)}
    with pytest.raises(SpecificationError, match="includes v, which has no BSV"):
        PopulationSpec(compartments=1, parameters=parameters, bsv_blocks=(("cl", "v"),))
    with pytest.raises(SpecificationError, match="bsv_blocks must be a sequence of blocks"):
        PopulationSpec(compartments=1, parameters=parameters, bsv_blocks="cl")


# ----------------------------------------------------------------------------- model
def test_the_diagonal_model_is_unchanged(tmp_path, block_sim):
    spec = read_spec(_write(tmp_path, SPEC_TOML))
    model = build_model(spec, read_population_data(block_sim.frame, spec))
    assert [v.name for v in model.free_RVs] == [
        "log_tv_cl", "omega_cl", "log_tv_v1", "omega_v1", "log_tv_q", "log_tv_v2",
        "theta_cl_weight_kg", "sigma_prop", "u_cl", "u_v1"]  # partially centred (centring.py)
    assert not [v.name for v in model.deterministics if v.name.startswith("corr_")]
    assert omega_matrix(spec, {"omega_cl": 0.3, "omega_v1": 0.2}) == pytest.approx(
        np.diag([0.09, 0.04]))


def test_the_pytensor_graph_gives_the_etas_numpy_does(block_spec, block_sim):
    model = build_model(block_spec, read_population_data(block_sim.frame, block_spec))
    assert [v.name for v in model.free_RVs] == [
        "log_tv_cl", "log_tv_v1", "log_tv_q", "log_tv_v2", "omega_cl", "omega_v1",
        "chol_corr_cl_v1", "z_cl", "z_v1", "theta_cl_weight_kg", "sigma_prop"]
    names = ["omega_cl", "omega_v1", "corr_cl_v1", "z_cl", "z_v1", "eta_cl", "eta_v1"]
    fn = model.compile_fn([model[n] for n in names], inputs=model.value_vars,
                          on_unused_input="ignore")
    rng = np.random.default_rng(0)
    for _ in range(3):  # random points of the unconstrained space
        point = {k: rng.normal(0.0, 0.8, np.shape(v))
                 for k, v in model.initial_point().items()}
        got = dict(zip(names, fn(point), strict=True))
        assert -1 < got["corr_cl_v1"] < 1
        expected = correlated_etas(("cl", "v1"), got, np.stack([got["z_cl"], got["z_v1"]]))
        np.testing.assert_allclose(got["eta_cl"], expected["eta_cl"], rtol=1e-10)
        np.testing.assert_allclose(got["eta_v1"], expected["eta_v1"], rtol=1e-10)
        # the etas' implied covariance is omega_matrix's
        omega = omega_matrix(block_spec, got)
        assert omega[0, 1] == pytest.approx(got["corr_cl_v1"] * got["omega_cl"] * got["omega_v1"])


def test_simulated_etas_have_the_stated_correlation(block_spec):
    big = simulate_dataset(block_spec, BLOCK_TRUTH, n_subjects=4000, dose_times_days=[0],
                           sample_times_days=[1.0], dose_mg=300, random_seed=7)
    eta = big.eta
    assert np.corrcoef(eta["cl"], eta["v1"])[0, 1] == pytest.approx(0.6, abs=0.03)
    assert np.std(eta["cl"]) == pytest.approx(0.35, rel=0.05)
    assert np.std(eta["v1"]) == pytest.approx(0.3, rel=0.05)
    assert big.truth["corr_cl_v1"] == 0.6
    with pytest.raises(SpecificationError, match="truth lacks corr_cl_v1"):
        simulate_dataset(block_spec, TRUTH, n_subjects=4, dose_times_days=[0],
                         sample_times_days=[1.0], dose_mg=300)
    with pytest.raises(SpecificationError, match="not form a valid correlation matrix"):
        simulate_dataset(block_spec, BLOCK_TRUTH | {"corr_cl_v1": 1.5}, n_subjects=4,
                         dose_times_days=[0], sample_times_days=[1.0], dose_mg=300)
    # the pcVPC's new etas: per draw, correlated as that draw says
    draws = {"omega_cl": np.array([[0.35], [0.35]]), "omega_v1": np.array([[0.3], [0.3]]),
             "corr_cl_v1": np.array([[0.9], [-0.5]])}
    new = random_etas(block_spec, draws, np.random.default_rng(1), (2, 5000))
    assert np.corrcoef(new["eta_cl"][0], new["eta_v1"][0])[0, 1] == pytest.approx(0.9, abs=0.02)
    assert np.corrcoef(new["eta_cl"][1], new["eta_v1"][1])[0, 1] == pytest.approx(-0.5, abs=0.03)


# ----------------------------------------------------------------------------- the fit
def test_a_correlation_of_0_6_is_recovered(block_fit, block_sim):
    table = block_fit.summary().set_index("parameter")
    row = table.loc["corr_cl_v1"]
    assert row["unit"] == "correlation of the etas"
    assert row["lower"] < 0.6 < row["upper"] and row["lower"] > 0, row
    # the figures docs/population_pk.md quotes (stale docs fail here)
    sample = np.corrcoef(block_sim.eta["cl"], block_sim.eta["v1"])[0, 1]
    assert sample == pytest.approx(0.489, abs=0.0005)
    assert [row["median"], row["lower"], row["upper"]] == pytest.approx([0.536, 0.287, 0.712],
                                                                        abs=0.02)
    for name in ("tv_cl", "tv_v1", "omega_cl", "omega_v1", "sigma_prop"):
        assert table.loc[name, "lower"] < BLOCK_TRUTH[name] < table.loc[name, "upper"], name
    assert set(block_fit.shrinkage()) == {"cl", "v1"}
    rows = {r["parameter"]: r for r in block_fit.to_dict()["summary"]}  # --json
    assert rows["corr_cl_v1"]["median"] == pytest.approx(row["median"])
    assert block_fit.diagnostics.divergences == 0


def test_the_gate_checks_the_correlation(block_fit):
    assert "corr_cl_v1" in block_fit.checked_variables()
    assert "lkj_eta" in block_fit.diagnostics.hierarchical_priors
    # chains that disagree on the correlation alone fail the gate, naming it
    post = block_fit.posterior.copy()
    shifted = post["corr_cl_v1"].values.copy()
    shifted[0] = np.clip(shifted[0] + 0.3, -1, 1)
    post["corr_cl_v1"] = (post["corr_cl_v1"].dims, shifted)
    tree = block_fit.tree.copy()
    tree["posterior"] = tree["posterior"].to_dataset().assign(corr_cl_v1=post["corr_cl_v1"])
    bad = dataclasses.replace(block_fit, tree=tree, warn=False, _diagnostics=None)
    assert not bad.converged and bad.diagnostics.worst_parameter == "corr_cl_v1"


def test_checks_and_files_of_a_block_fit(block_fit, block_spec, tmp_path):
    medians = {k: float(np.median(block_fit.posterior[k].values))
               for k in ("omega_cl", "omega_v1", "corr_cl_v1")}
    omega = omega_matrix(block_spec, medians)
    assert omega[0, 1] == pytest.approx(medians["corr_cl_v1"] * medians["omega_cl"]
                                        * medians["omega_v1"])
    gof = block_fit.goodness_of_fit()
    assert abs(np.nanmean(gof.cwres)) < 0.2 and 0.8 < np.nanstd(gof.cwres) < 1.2
    # CWRES read the correlation: with it set to 0 (a diagonal Omega) they change
    tree = block_fit.tree.copy()
    tree["posterior"] = tree["posterior"].to_dataset().assign(
        corr_cl_v1=block_fit.posterior["corr_cl_v1"] * 0.0)
    diagonal = dataclasses.replace(block_fit, tree=tree, warn=False,
                                   _diagnostics=block_fit.diagnostics)
    changed = np.abs(cwres(diagonal) - gof.cwres.to_numpy())
    assert np.nanmax(changed) > 0.01
    assert 0.7 <= block_fit.pc_vpc(n_replicates=100).fraction_inside <= 1.0
    # as a library model: the block and the median correlation carried, its etas correlated
    model = block_fit.to_population_model("block")
    assert model.bsv_blocks == (("cl", "v1"),)
    assert model.correlations["corr_cl_v1"] == pytest.approx(medians["corr_cl_v1"])
    eta = model.sample_eta((20000,), np.random.default_rng(2))
    assert np.corrcoef(eta[:, 0], eta[:, 1])[0, 1] == pytest.approx(medians["corr_cl_v1"],
                                                                    abs=0.02)
    assert np.std(eta[:, 1]) == pytest.approx(medians["omega_v1"], rel=0.03)
    z = np.random.default_rng(3).standard_normal((5, 2))
    np.testing.assert_allclose(model.eta_from_z(z).T, np.stack(list(correlated_etas(
        ("cl", "v1"), medians, z.T).values())), rtol=1e-12)
    from pkmodel.pk import resolve_model

    assert resolve_model(model.to_dict()) == model
    path = tmp_path / "block.nc"
    block_fit.save(path)
    loaded = load_population_fit(path, warn=False)
    assert loaded.spec == block_spec
    pd.testing.assert_frame_equal(loaded.summary(), block_fit.summary())


@pytest.mark.parametrize("lkj_eta", [2.0, 4.0])
def test_the_models_lkj_prior_is_as_the_docs_say(block_spec, block_sim, lkj_eta):
    """The correlation's prior in the built model: with ``lkj_eta`` = h, ``(1 + r) / 2`` is
    Beta(h, h) (the LKJ density of a 2 x 2 correlation matrix), so that the default 2 gives the
    density 0.75 (1 - r^2) of docs/population_pk.md, 90 % of it within +-0.73."""
    import pymc as pm
    from scipy import optimize, stats

    spec = dataclasses.replace(block_spec, lkj_eta=lkj_eta)
    model = build_model(spec, read_population_data(block_sim.frame, spec))
    r = pm.draw(model["corr_cl_v1"], draws=20000, random_seed=1)
    exact = stats.beta(lkj_eta, lkj_eta)
    assert stats.kstest((1 + r) / 2, exact.cdf).pvalue > 0.01
    within = optimize.brentq(lambda x: exact.cdf((1 + x) / 2) - exact.cdf((1 - x) / 2) - 0.9,
                             0.0, 1.0)  # the half-width holding 90 % of the prior
    assert np.quantile(np.abs(r), 0.9) == pytest.approx(within, abs=0.015)
    if lkj_eta == 2.0:  # the figures of the docs
        assert round(within, 2) == 0.73
        counts, edges = np.histogram(r, bins=10, range=(-1, 1), density=True)
        mid = (edges[:-1] + edges[1:]) / 2
        # each bin's mean density: mean of r^2 over a bin of width 0.2 is mid^2 + 0.2^2 / 12
        np.testing.assert_allclose(counts, 0.75 * (1 - mid ** 2 - 0.2 ** 2 / 12), atol=0.05)
    else:  # a larger lkj_eta reaches the model: a narrower prior
        assert within < 0.6
