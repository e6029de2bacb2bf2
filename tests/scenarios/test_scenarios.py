"""Dosing-scenario simulation: known answers, chunk independence, mapping, populations, errors."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import expit

import pkmodel
from pkmodel import CohortError, PredictionError, SpecificationError
from pkmodel.pk import FASANMADE_2009_UC, Regimen, steady_state_troughs
from pkmodel.response.curves import compute_curve
from pkmodel.scenarios import (
    IBD_MAINTENANCE,
    CovariateDistribution,
    VirtualPopulation,
    map_regimens,
    scenario_table,
    simulate_scenarios,
)
from pkmodel.scenarios.populations import RANDOM_BLOCK, block_normals

STRATEGIES = ["dose_escalation", "interval_shortening"]
META = {"months": [6, 12], "strategies": STRATEGIES, "groups": ["a", "b"], "diseases": [],
        "encodings": [], "tl_range_ug_ml": [3.0, 16.0], "patient_ids": []}
COHORT = pd.DataFrame({"patient_id": ["A", "B", "C"],
                       "strategy": [STRATEGIES[0], STRATEGIES[1], STRATEGIES[1]],
                       "dose_mg_kg": [10.0, 5.0, 5.0], "interval_weeks": [8.0, 6.0, 4.0]})
NO_BSV = dataclasses.replace(FASANMADE_2009_UC, omega2={})


def posterior(n_draws=50, spread=0.0, sigma_patient=0.0, sigma_group=0.0, seed=0):
    """Hand-set posterior: alpha 0.5, beta -2, strategy slope offsets 0 / 0.4, delta -0.3,
    month 12 +0.6 (as in test_curves)."""
    rng = np.random.default_rng(seed)

    def draw(center, *shape):
        return center + spread * rng.normal(size=(2, n_draws, *shape))

    dims = ("chain", "draw")
    return xr.Dataset(
        {"alpha": (dims, draw(0.5)), "beta": (dims, draw(-2.0)),
         "b_slope_strategy": ((*dims, "strategy"), draw(0.0, 2) + np.array([0.0, 0.4])),
         "delta_strategy": ((*dims, "strategy_contrast"), draw(-0.3, 1)),
         "tau_month": ((*dims, "month_contrast"), draw(0.6, 1)),
         "a_group": ((*dims, "group"), np.zeros((2, n_draws, 2))),
         "sigma_group": (dims, np.full((2, n_draws), sigma_group)),
         "sigma_patient": (dims, np.full((2, n_draws), sigma_patient))},
        coords={"chain": [0, 1], "draw": np.arange(n_draws), "strategy": STRATEGIES,
                "strategy_contrast": STRATEGIES[1:], "month_contrast": [12], "group": ["a", "b"]})


def fake_fit(**kwargs):
    return SimpleNamespace(posterior=posterior(**kwargs), meta=META, cohort_data=COHORT)


def analytic_eta(post, tl, strategy, month):
    """log-odds per draw (chain*draw) and patient, written out independently of curves.py."""
    s = STRATEGIES.index(strategy)
    a = post["alpha"].values.ravel()
    b = post["beta"].values.ravel() + post["b_slope_strategy"].values[..., s].ravel()
    d = post["delta_strategy"].values[..., 0].ravel() if s == 1 else 0.0
    t = post["tau_month"].values[..., 0].ravel() if month == 12 else 0.0
    return (a + d + t)[:, None] + b[:, None] * (np.log(tl) - np.log(5.0))[None, :]


def test_known_answer_remission_rates_equal_the_analytic_expectation():
    """Hand-set remission model and PK without variability: every number is analytic."""
    fit = fake_fit(spread=0.3)
    weights = np.array([50.0, 70.0, 95.0, 120.0])
    table = pd.DataFrame({"weight_kg": np.repeat(weights, [3, 1, 2, 4]), "albumin_g_l": 41.0,
                          "sex": "M", "disease": "UC"})
    ds = simulate_scenarios(fit, table, ["10mg/kg q8w", "5mg/kg q4w"], pk_model=NO_BSV,
                            random_seed=5, chunk_size=3, min_tl_ug_ml=None,
                            tl_bands_ug_ml=[100.0], progress=False)
    # the closed-form steady state (validated against the ODEs in test_pk_simulation)
    ss = steady_state_troughs(NO_BSV, ["5mg/kg q8w", "10mg/kg q8w", "5mg/kg q4w"],
                              {"weight_kg": table.weight_kg.to_numpy(), "albumin_g_dl": 4.1})
    tl = ss.isel(draw=0).values  # (regimen, patient)
    np.testing.assert_allclose(ds.baseline_tl, tl[0], rtol=1e-12)
    np.testing.assert_allclose(ds.trough_after, tl[1:], rtol=1e-12)
    assert np.all(tl[0] < 100)  # all in the first band
    post = fit.posterior
    for reg, strategy in (("10 mg/kg q8w", STRATEGIES[0]), ("5 mg/kg q4w", STRATEGIES[1])):
        for month in (6, 12):
            p = expit(analytic_eta(post, tl[0], strategy, month))  # (draw, patient)
            want = p.mean(axis=1)
            got = ds.remission_rate.sel(regimen=reg, month=month, band="all").values
            np.testing.assert_allclose(got, want, rtol=1e-12)
            assert float(ds.remission_rate_mean.sel(regimen=reg, month=month, band="all")) == \
                pytest.approx(want.mean(), rel=1e-12)
            lo, hi = np.quantile(want, [0.05, 0.95])
            assert float(ds.remission_rate_lower.sel(regimen=reg, month=month,
                                                     band="all")) == pytest.approx(lo)
            assert float(ds.remission_rate_upper.sel(regimen=reg, month=month,
                                                     band="all")) == pytest.approx(hi)
            futile = ((p < 0.2).mean(axis=0) >= 0.9).mean()
            assert float(ds.fraction_futile.sel(regimen=reg, month=month,
                                                band="all")) == pytest.approx(futile)
            np.testing.assert_allclose(ds.p_remission.sel(regimen=reg, month=month),
                                       p.mean(axis=0), rtol=1e-12)
    diff = (ds.remission_rate.sel(regimen="5 mg/kg q4w")
            - ds.remission_rate.sel(regimen="10 mg/kg q8w")).mean("sample")
    np.testing.assert_allclose(ds.nnt.sel(regimen="5 mg/kg q4w"), 1 / diff, rtol=1e-12)
    assert np.all(np.isnan(ds.nnt.sel(regimen="10 mg/kg q8w")))


def test_deterministic_model_gives_degenerate_intervals_and_exact_futility():
    """No posterior spread and one kind of patient: rate = expit(eta(TL)) with no interval."""
    fit = fake_fit(spread=0.0)
    table = pd.DataFrame({"weight_kg": [70.0] * 4, "albumin_g_l": [41.0] * 4, "sex": "F",
                          "disease": "CD"})
    ds = simulate_scenarios(fit, table, ["10mg/kg q8w"], pk_model=NO_BSV, random_seed=1,
                            chunk_size=None, min_tl_ug_ml=None, p_min=0.5)
    tl = float(ds.baseline_tl[0])
    for month in (6, 12):
        want = expit(analytic_eta(fit.posterior, np.array([tl]), STRATEGIES[0], month)[0, 0])
        row = ds.sel(regimen="10 mg/kg q8w", month=month, band="all")
        for v in ("remission_rate_mean", "remission_rate_lower", "remission_rate_upper"):
            assert float(row[v]) == pytest.approx(want, rel=1e-12)
        assert float(row.fraction_futile) == float(want < 0.5)


def test_patient_probabilities_integrate_the_random_effects_like_the_curves():
    """With patient and centre spread, each patient's p is the population-level curve at its TL."""
    fit = fake_fit(spread=0.2, sigma_patient=0.9, sigma_group=0.4)
    ds = simulate_scenarios(fit, 300, ["5mg/kg q6w"], random_seed=2, chunk_size=128,
                            pk_model="fasanmade2009", progress=False)
    ok = ds.eligible.values
    assert ok.sum() > 50 and ds.attrs["n_excluded_below_min_tl"] == (~ok).sum()
    tl = ds.baseline_tl.values[ok][:20]
    curve = compute_curve(fit.posterior, META, tl=tl, strategy=STRATEGIES[1], month=12)
    want = curve.p_remission.mean(("chain", "draw")).sel(tl=np.sort(tl)).values.ravel()
    got = ds.p_remission.sel(regimen="5 mg/kg q6w", month=12).values[ok][:20]
    np.testing.assert_allclose(np.sort(got), np.sort(want), rtol=1e-10)


def _numbers(ds):
    keys = [v for v in ds.data_vars if "patient" not in ds[v].dims]
    return {k: ds[k].values for k in keys}


def test_chunked_and_in_memory_runs_give_the_same_numbers():
    fit = fake_fit(spread=0.3, sigma_patient=0.7)
    regs = ["10mg/kg q8w", "5mg/kg q4w", "5mg/kg q6w"]
    whole = simulate_scenarios(fit, 5000, regs, random_seed=11, chunk_size=None)
    runs = [simulate_scenarios(fit, 5000, regs, random_seed=11, chunk_size=c, progress=False,
                               scheduler=s)
            for c, s in ((777, "threads"), (RANDOM_BLOCK, "synchronous"), (5000, "threads"))]
    ref = _numbers(whole)
    for ds in runs:
        for k, v in _numbers(ds).items():
            np.testing.assert_allclose(v, ref[k], rtol=1e-10, atol=1e-14, err_msg=k)
        np.testing.assert_array_equal(ds.baseline_tl, whole.baseline_tl)
        np.testing.assert_array_equal(ds.weight_kg, whole.weight_kg)
        np.testing.assert_allclose(ds.p_remission, whole.p_remission, rtol=1e-12)
    other = simulate_scenarios(fit, 5000, regs, random_seed=12, chunk_size=None)
    assert not np.allclose(other.baseline_tl, whole.baseline_tl)
    # patient i is the same patient whatever the population size
    small = simulate_scenarios(fit, 1000, regs, random_seed=11, chunk_size=300, progress=False)
    np.testing.assert_array_equal(small.baseline_tl, whole.baseline_tl[:1000])


@pytest.mark.parametrize("processes", [False, True])
def test_distributed_client_gives_the_same_numbers(processes):
    distributed = pytest.importorskip("distributed")
    fit = fake_fit(spread=0.3)
    regs = ["10mg/kg q8w", "5mg/kg q4w"]
    local = simulate_scenarios(fit, 2000, regs, random_seed=4, chunk_size=500, progress=False,
                               per_patient=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=processes,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = simulate_scenarios(fit, 2000, regs, random_seed=4, chunk_size=500,
                                    client=client, progress=False, per_patient=False)
    assert "patient" not in remote.dims
    for k, v in _numbers(local).items():
        np.testing.assert_allclose(_numbers(remote)[k], v, rtol=1e-12, err_msg=k)


def test_regimens_map_to_fitted_strategies_or_are_refused():
    base = Regimen(5, 8)
    got = map_regimens(["10mg/kg q8w", "5mg/kg q4w", "5 mg/kg q6w"], STRATEGIES,
                       baseline=base, cohort_data=COHORT)
    assert [(m.strategy, m.basis) for m in got] == [
        ("dose_escalation", "fitted cohort"), ("interval_shortening", "fitted cohort"),
        ("interval_shortening", "fitted cohort")]
    with pytest.raises(PredictionError, match=r"10 mg/kg q4w was not given.*strategy_map"):
        map_regimens(["10mg/kg q4w"], STRATEGIES, baseline=base, cohort_data=COHORT)
    with pytest.raises(PredictionError, match=r"7\.5 mg/kg q8w was not given"):
        map_regimens(["7.5mg/kg q8w"], STRATEGIES, baseline=base, cohort_data=COHORT)
    explicit = map_regimens(["7.5mg/kg q8w"], STRATEGIES, baseline=base, cohort_data=COHORT,
                            strategy_map={"7.5mg/kg q8w": "dose_escalation"})
    assert explicit[0].basis == "explicit"
    with pytest.raises(PredictionError, match="not fitted on"):
        map_regimens(["7.5mg/kg q8w"], STRATEGIES, baseline=base,
                     strategy_map={"7.5mg/kg q8w": "switch_class"})
    with pytest.raises(PredictionError, match="standard maintenance"):
        map_regimens(["5mg/kg q8w"], STRATEGIES, baseline=base, cohort_data=COHORT)
    # without recorded regimens: by the direction of the change
    rule = map_regimens(["7.5mg/kg q8w", "5mg/kg q5w"], STRATEGIES, baseline=base)
    assert [(m.strategy, m.basis) for m in rule] == [("dose_escalation", "rule"),
                                                     ("interval_shortening", "rule")]
    with pytest.raises(PredictionError, match="neither a dose escalation"):
        map_regimens(["10mg/kg q4w"], STRATEGIES, baseline=base)
    with pytest.raises(PredictionError, match="not fitted on"):
        map_regimens(["10mg/kg q8w"], ["interval_shortening"], baseline=base)
    # the simulation refuses too, before any work
    with pytest.raises(PredictionError, match="10 mg/kg q4w"):
        simulate_scenarios(fake_fit(), 10, ["10mg/kg q4w"], random_seed=1)


def test_regimens_of_one_strategy_share_remission_but_not_troughs():
    ds = simulate_scenarios(fake_fit(spread=0.2), 2000, ["5mg/kg q4w", "5mg/kg q6w"],
                            random_seed=3, chunk_size=1000, progress=False)
    np.testing.assert_array_equal(ds.remission_rate.sel(regimen="5 mg/kg q4w"),
                                  ds.remission_rate.sel(regimen="5 mg/kg q6w"))
    assert np.all(ds.trough_after.sel(regimen="5 mg/kg q4w")
                  > ds.trough_after.sel(regimen="5 mg/kg q6w"))
    assert json.loads(ds.attrs["regimen_strategy"])[1]["strategy"] == "interval_shortening"


def test_observed_baseline_tl_is_used_and_troughs_scale_with_it():
    table = pd.DataFrame({"patient_id": ["p1", "p2", "p3"], "weight_kg": [60, 80, 70],
                          "albumin_g_l": [38, 42, 40], "sex": ["F", "M", "m"],
                          "disease": ["CD", "UC", "uc"], "immunomodulator": [0, 1, 0],
                          "baseline_tl": [2.0, 6.0, 12.0]})
    ds = simulate_scenarios(fake_fit(), table, ["10mg/kg q8w"], pk_model=NO_BSV, random_seed=1,
                            chunk_size=2)
    np.testing.assert_array_equal(ds.baseline_tl, [2.0, 6.0, 12.0])
    np.testing.assert_allclose(ds.trough_after.sel(regimen="10 mg/kg q8w"), [4.0, 12.0, 24.0])
    assert list(ds.patient_id.values) == ["p1", "p2", "p3"]
    assert ds.attrs["n_excluded_below_min_tl"] == 1 and not ds.eligible[0]
    assert int(ds.n_patients.sel(band="all")) == 2
    assert np.isnan(ds.p_remission.values[..., 0]).all()
    assert list(ds.band.values) == ["3-5", "5-7", "7-9", "9-12", ">=12", "all"]


def test_population_errors_name_the_column_and_fix():
    fit = fake_fit()
    good = {"weight_kg": [70], "albumin_g_l": [40], "sex": ["F"], "disease": ["CD"],
            "immunomodulator": [0]}
    with pytest.raises(CohortError, match=r"no column 'albumin_g_l'.*fasanmade2009"):
        simulate_scenarios(fit, pd.DataFrame({"weight_kg": [70], "sex": ["F"]}),
                           ["10mg/kg q8w"], pk_model="uc", random_seed=1)
    with pytest.raises(CohortError, match=r"<DataFrame>, row index 0, column 'sex'.*F, M"):
        simulate_scenarios(fit, pd.DataFrame({**good, "sex": ["X"]}), ["10mg/kg q8w"],
                           random_seed=1)
    with pytest.raises(CohortError, match="antibodies"):
        simulate_scenarios(fit, pd.DataFrame({**good, "ati": [1]}), ["10mg/kg q8w"],
                           random_seed=1)
    with pytest.raises(CohortError, match=r"baseline_tl.*'>16'"):
        simulate_scenarios(fit, pd.DataFrame({**good, "baseline_tl": [">16"]}),
                           ["10mg/kg q8w"], random_seed=1)
    with pytest.raises(CohortError, match=r"row index 0, column 'albumin_g_l'.*g/dL.*multiply"):
        simulate_scenarios(fit, pd.DataFrame({**good, "albumin_g_l": [4.0]}), ["10mg/kg q8w"],
                           random_seed=1)
    with pytest.raises(SpecificationError, match="reference"):
        simulate_scenarios(fit, 10, ["10mg/kg q8w"], reference="5mg/kg q4w", random_seed=1)
    with pytest.raises(SpecificationError, match="increasing"):
        simulate_scenarios(fit, 10, ["10mg/kg q8w"], tl_bands_ug_ml=[9, 5], random_seed=1)
    with pytest.raises(SpecificationError, match="n_patients"):
        VirtualPopulation(0)
    with pytest.raises(SpecificationError, match="positive definite"):
        CovariateDistribution(**{**dataclasses.asdict(IBD_MAINTENANCE), "correlation": {
            ("weight", "albumin"): 0.9, ("weight", "crp"): 0.9, ("albumin", "crp"): -0.9}})


def test_remission_covariates_come_from_the_population():
    meta = {**META, "encodings": [{"name": "albumin_g_l", "kind": "numeric", "mean": 40.0,
                                   "sd": 4.0, "levels": []},
                                  {"name": "sex", "kind": "categorical", "mean": 0, "sd": 1,
                                   "levels": ["F", "M"]}]}
    post = posterior().assign(gamma=(("chain", "draw", "covariate"),
                                     np.broadcast_to([0.5, -1.0], (2, 50, 2)).copy()))
    fit = SimpleNamespace(posterior=post, meta=meta, cohort_data=COHORT)
    table = pd.DataFrame({"weight_kg": [70, 70], "albumin_g_l": [44.0, 44.0],
                          "sex": ["F", "M"], "disease": ["UC", "UC"], "baseline_tl": [5.0, 5.0]})
    ds = simulate_scenarios(fit, table, ["10mg/kg q8w"], pk_model="uc", random_seed=1,
                            chunk_size=None)
    got = ds.p_remission.sel(regimen="10 mg/kg q8w", month=6).values
    np.testing.assert_allclose(got, expit(0.5 + 0.5 * 1.0 + np.array([0.0, -1.0])), rtol=1e-12)
    with pytest.raises(CohortError, match=r"no column 'sex' \(a covariate of the remission"):
        simulate_scenarios(fit, table.drop(columns="sex").assign(immunomodulator=0),
                           ["10mg/kg q8w"], pk_model="cd", random_seed=1)


def test_default_population_follows_its_distribution():
    pop = VirtualPopulation(60_000).sample(random_seed=9, chunk_size=7000)
    assert pop.weight_kg.chunks is not None  # lazily drawn dask arrays
    pop = pop.compute()
    d = IBD_MAINTENANCE
    assert np.median(pop.weight_kg) == pytest.approx(d.weight_median_kg, rel=0.01)
    assert np.log(pop.weight_kg).std() == pytest.approx(d.weight_log_sd, rel=0.03)
    assert float(pop.albumin_g_l.mean()) == pytest.approx(d.albumin_mean_g_l, abs=0.1)
    assert float((pop.sex == 0).mean()) == pytest.approx(d.p_female, abs=0.01)
    assert float((pop.disease == 1).mean()) == pytest.approx(d.p_uc, abs=0.01)
    assert float(pop.immunomodulator.mean()) == pytest.approx(d.p_immunomodulator, abs=0.01)
    r = np.corrcoef(pop.albumin_g_l, np.log(pop.crp_mg_l))[0, 1]
    assert r == pytest.approx(-0.31, abs=0.02)
    assert all(k in d.sources for k in ("weight", "albumin", "crp", "albumin~crp"))
    # block streams: any slice of patients is the same numbers
    full = block_normals(1, 0, 0, 3 * RANDOM_BLOCK, 2)
    np.testing.assert_array_equal(block_normals(1, 0, 5000, 9000, 2), full[5000:9000])


def test_top_level_export_and_scenario_table():
    assert pkmodel.simulate_scenarios is simulate_scenarios
    ds = simulate_scenarios(fake_fit(spread=0.2), 500, ["10mg/kg q8w", "5mg/kg q4w"],
                            random_seed=1, progress=False)
    table = scenario_table(ds)
    assert len(table) == 2 * 2 * 6
    assert list(table.columns[:5]) == ["regimen", "strategy", "month", "band", "n_patients"]
    assert table.query("band == 'all'").n_patients.iloc[0] == int(ds.n_patients.sel(band="all"))


def test_progress_bar_and_in_memory_limit(capsys):
    fit = fake_fit()
    simulate_scenarios(fit, 300, ["10mg/kg q8w"], random_seed=1, chunk_size=100, progress=True)
    assert "Completed" in capsys.readouterr().err
    with pytest.raises(SpecificationError, match="give a chunk_size"):
        simulate_scenarios(fit, 2_000_000, ["10mg/kg q8w"], random_seed=1, chunk_size=None)


def test_every_published_pk_model_drives_the_scenarios():
    # Models with four random effects (Wojciechowski 2017, Dubinsky 2017) widen the block of PK
    # normals; the two Fasanmade models keep theirs, so their figures do not move.
    from pkmodel.pk import MODELS

    fit = fake_fit()
    medians = {}
    for name in MODELS:
        ds = simulate_scenarios(fit, 2000, ["10mg/kg q8w"], pk_model=name, random_seed=1,
                                chunk_size=None, progress=False)
        p = ds.p_remission.values
        assert np.isfinite(p[~np.isnan(p)]).all() and (~np.isnan(p)).any(), name
        medians[name] = float(np.nanmedian(p))
    assert len(set(np.round(list(medians.values()), 6))) > 1
