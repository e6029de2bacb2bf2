"""Inter-occasion variability: published numbers, exact propagation across an occasion boundary,
the individual posterior against an independent grid, forecasts and simulation."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.integrate import solve_ivp

from pkmodel.errors import SpecificationError
from pkmodel.pk import (
    FASANMADE_2009_UC,
    FASANMADE_2011_CD,
    FASANMADE_2011_PAEDIATRIC,
    MODELS,
    DoseSchedule,
    Observations,
    PopulationModel,
    estimate_individual,
    forecast_troughs,
    simulate,
)
from pkmodel.pk.occasions import Occasions, occasion_parameters, output_stretches
from pkmodel.pk.simulation import (
    piecewise_concentrations,
    steady_state_trough,
    steady_state_trough_occasions,
)

#: A nearly one-compartment model (Q negligible) with BSV and IOV on CL only, so that the
#: posterior and the forecasts have closed forms the tests compute independently.
OMEGA2, OMEGA2_IOV, V1 = 0.09, 0.04, 3.0
ONE_CMT = PopulationModel(
    name="test_iov", title="", citation="", source="",
    typical={"cl": 0.3, "v1": V1, "q": 1e-9, "v2": 1.0}, reference_covariates={},
    effects=(), omega2={"cl": OMEGA2}, omega2_iov={"cl": OMEGA2_IOV},
    proportional_sd=0.1, additive_sd_ug_ml=0.1)
DOSE_MG, T_INF = 350.0, 2.0 / 24.0
SCHEDULE = DoseSchedule(np.array([0.0, 14.0]), np.array([DOSE_MG, DOSE_MG]),
                        np.array([T_INF, T_INF]), per_kg=False)
OBS = Observations([7.0, 14.0, 21.0, 28.0], [60.0, 25.0, 75.0, 40.0])


def test_the_fasanmade_2011_models_carry_their_iov_on_cl_and_round_trip():
    assert FASANMADE_2011_CD.omega2_iov == {"cl": 0.0335}  # Kim 2025 Data S1 model 6
    assert FASANMADE_2011_PAEDIATRIC.omega2_iov == {"cl": 0.048}  # model 7
    assert FASANMADE_2011_CD.occasion_effects == ("cl",)
    assert all(not m.omega2_iov for n, m in MODELS.items() if not n.startswith("fasanmade2011"))
    for model in MODELS.values():
        back = PopulationModel.from_dict(json.loads(json.dumps(model.to_dict())))
        assert back == model
    old = FASANMADE_2011_CD.to_dict()
    del old["omega2_iov"]  # a model saved before pkmodel had IOV
    assert PopulationModel.from_dict(old).omega2_iov == {}
    with pytest.raises(SpecificationError, match=r"omega2_iov.*ka"):
        dataclasses.replace(FASANMADE_2009_UC, omega2_iov={"ka": 0.1})
    with pytest.raises(SpecificationError, match=r"omega2_iov\[.cl.\] must be a positive"):
        dataclasses.replace(FASANMADE_2009_UC, omega2_iov={"cl": -0.1})
    with pytest.raises(SpecificationError, match="omega2_iov must map"):
        PopulationModel.from_dict(old | {"omega2_iov": [0.1]})


def test_prediction_across_an_occasion_boundary_equals_solve_ivp():
    # IOV on CL and V1: parameters switch at day 14 (the second dose), amounts carry over; the
    # trough drawn at day 14 is the first occasion's (its V1)
    model = dataclasses.replace(FASANMADE_2011_CD, omega2_iov={"cl": 0.0335, "v1": 0.02})
    cov = {"weight_kg": 60.0, "albumin_g_dl": 3.6}
    occ = Occasions([0.0, 14.0])
    eta, kappa = np.array([0.2, -0.1, 0.3]), np.array([[0.25, -0.15], [-0.3, 0.2]])
    params, change = occasion_parameters(model, cov, occ, eta, kappa)
    schedule = DoseSchedule(np.array([0.0, 14.0]), np.array([5.0, 10.0]),
                            np.array([T_INF, T_INF]))
    times = np.array([0.5, 7.0, 14.0, 14.05, 20.0, 28.0, 45.0])
    got = piecewise_concentrations(params, change, schedule, times,
                                   schedule.amounts_mg(60.0),
                                   output_segments=output_stretches(change, occ, times))

    def rhs(t, a, p, start, rate):
        infusing = start <= t < start + T_INF
        k10, k12, k21 = p["cl"] / p["v1"], p["q"] / p["v1"], p["q"] / p["v2"]
        return [-(k10 + k12) * a[0] + k21 * a[1] + (rate if infusing else 0.0),
                k12 * a[0] - k21 * a[1]]

    p = [{k: float(np.asarray(v)[k_occ]) for k, v in params.values.items()} for k_occ in (0, 1)]
    expected = []
    first = solve_ivp(rhs, (0.0, 14.0), [0.0, 0.0], method="LSODA", rtol=1e-10, atol=1e-12,
                      args=(p[0], 0.0, 300.0 / T_INF), dense_output=True, max_step=T_INF / 4)
    second = solve_ivp(rhs, (14.0, 45.0), first.y[:, -1], method="LSODA", rtol=1e-10,
                       atol=1e-12, args=(p[1], 14.0, 600.0 / T_INF), dense_output=True,
                       max_step=T_INF / 4)
    for t in times:
        k_occ = 0 if t <= 14.0 else 1
        amount = (first if k_occ == 0 else second).sol(t)[0]
        expected.append(amount / p[k_occ]["v1"])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[2] != pytest.approx(first.y[0, -1] / p[1]["v1"])  # the old V1, not the new


def _grid_posterior():
    """Exact posterior moments of (eta, u0, u1), u_k = eta + kappa_k the log-CL deviation in
    occasion k, computed independently: one compartment in closed form, eta integrated out
    analytically (u ~ N(0, [[w + o, w], [w, w + o]])), a fine 2-D grid over u."""
    w, o = OMEGA2, OMEGA2_IOV
    u = np.linspace(-1.2, 1.2, 801)
    u0, u1 = np.meshgrid(u, u, indexing="ij")
    k0, k1 = 0.3 * np.exp(u0) / V1, 0.3 * np.exp(u1) / V1
    rate = DOSE_MG / T_INF

    def after_infusion(k, start_amount, t):  # amount t days after an infusion started
        end = start_amount * np.exp(-k * T_INF) + rate / k * -np.expm1(-k * T_INF)
        return end * np.exp(-k * (t - T_INF))

    a7 = after_infusion(k0, 0.0, 7.0)
    a14 = after_infusion(k0, 0.0, 14.0)
    a21 = after_infusion(k1, a14, 7.0)
    a28 = after_infusion(k1, a14, 14.0)
    loglik = 0.0
    for amount, y in zip((a7, a14, a21, a28), OBS.values_ug_ml, strict=True):
        pred = amount / V1
        loglik = loglik + stats.norm.logpdf(y, pred, np.sqrt(0.01 + (0.1 * pred) ** 2))
    cov = np.array([[w + o, w], [w, w + o]])
    logp = loglik + stats.multivariate_normal(np.zeros(2), cov).logpdf(np.stack([u0, u1], -1))
    p = np.exp(logp - logp.max())
    p /= p.sum()
    s2 = 1.0 / (1.0 / w + 2.0 / o)  # eta | u ~ N(s2 (u0 + u1) / o, s2)
    m_eta = s2 * (u0 + u1) / o
    out = {}
    for name, x, extra in (("u0", u0, 0.0), ("u1", u1, 0.0), ("eta", m_eta, s2)):
        mean = float(np.sum(p * x))
        out[name] = (mean, float(np.sqrt(np.sum(p * (x - mean) ** 2) + extra)))
    assert p[0].sum() + p[-1].sum() + p[:, 0].sum() + p[:, -1].sum() < 1e-10  # grid wide enough
    return out


@pytest.mark.parametrize("method", ["map", "nuts"])
def test_individual_posterior_with_iov_agrees_with_an_independent_grid(method):
    exact = _grid_posterior()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = estimate_individual(ONE_CMT, {"weight_kg": 70.0}, SCHEDULE, OBS, method=method,
                                  draws=2000 if method == "map" else 500, tune=500, chains=2,
                                  random_seed=4)
    assert est.occasions.starts_days.tolist() == [0.0, 14.0]  # one occasion per dose
    assert est.kappa_draws.shape == (est.eta_draws.shape[0], 2, 1)
    eta = est.eta_draws[:, 0]
    drawn = {"eta": eta, "u0": eta + est.kappa_draws[:, 0, 0],
             "u1": eta + est.kappa_draws[:, 1, 0]}
    for name, (mean, sd) in exact.items():
        x = drawn[name]
        assert np.mean(x) == pytest.approx(mean, abs=0.12 * sd), name
        assert np.std(x) == pytest.approx(sd, rel=0.12), name
    # CL in each occasion, as the estimate reports it
    for k, name in enumerate(("u0", "u1")):
        cl = est.parameters(occasion=k)["cl"].values
        assert np.mean(np.log(cl / 0.3)) == pytest.approx(exact[name][0], abs=0.12 * exact[name][1])
    with pytest.raises(SpecificationError, match="occasion must be 0 to 1"):
        est.parameters(occasion=2)


def _log_cl_from_trough(trough: np.ndarray, tau: float) -> np.ndarray:
    """log(CL / 0.3) of one dose's trough after tau days in one compartment (inverted)."""
    rate = DOSE_MG / T_INF

    def conc(k):
        return rate / k * -np.expm1(-k * T_INF) * np.exp(-k * (tau - T_INF)) / V1

    ks = [optimize.brentq(lambda k, c=c: conc(k) - c, 1e-4, 5.0) for c in trough]
    return np.log(np.asarray(ks) * V1 / 0.3)


def test_a_future_occasion_widens_the_forecast_by_the_occasion_variance():
    # far from the history, so the new occasion's trough depends on its own CL only
    no_iov = dataclasses.replace(ONE_CMT, omega2_iov={})
    spread = {}
    for model in (ONE_CMT, no_iov):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = estimate_individual(model, {"weight_kg": 70.0}, SCHEDULE, OBS, draws=2000,
                                      random_seed=2)
        fc = forecast_troughs(est, ["5mg/kg q4w"], n_doses=1, start_day=400.0)
        log_cl = _log_cl_from_trough(fc.draws.values[0], 28.0)
        # the forecast's log CL: the patient's (eta) plus, with IOV, a new occasion's kappa
        expected = (np.var(est.eta_draws[:, 0]) + (OMEGA2_IOV if model.omega2_iov else 0.0))
        assert np.std(log_cl) == pytest.approx(np.sqrt(expected), rel=0.06), model.omega2_iov
        table = fc.table()
        spread[bool(model.omega2_iov)] = float(np.log(table["upper"] / table["lower"])[0])
        if not model.omega2_iov:  # no IOV: nothing drawn, the seed changes nothing
            again = forecast_troughs(est, ["5mg/kg q4w"], n_doses=1, start_day=400.0,
                                     random_seed=99)
            np.testing.assert_array_equal(again.draws.values, fc.draws.values)
    assert spread[True] > 1.3 * spread[False]


def test_a_model_without_iov_ignores_occasions_and_keeps_its_draws():
    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=30)
    obs = Observations([98, 154, 210], [2.1, 1.8, 2.4])
    plain = estimate_individual(FASANMADE_2009_UC, {"weight_kg": 70}, history, obs,
                                random_seed=1)
    given = estimate_individual(FASANMADE_2009_UC, {"weight_kg": 70}, history, obs,
                                random_seed=1, occasions=[0.0, 100.0])
    np.testing.assert_array_equal(plain.eta_draws, given.eta_draws)
    assert plain.kappa_draws is None and plain.occasions is None
    # explicit occasions of a model with IOV: two occasions, not one per dose
    est = estimate_individual(FASANMADE_2011_CD, {"weight_kg": 70}, history, obs,
                              random_seed=1, occasions=[0.0, 100.0])
    assert est.kappa_draws.shape[1:] == (2, 1)
    with pytest.raises(SpecificationError, match="strictly increasing"):
        estimate_individual(FASANMADE_2011_CD, {"weight_kg": 70}, history, obs,
                            occasions=[0.0, 0.0])
    bolus = dataclasses.replace(SCHEDULE, routes=("bolus", "infusion"))
    with pytest.raises(SpecificationError, match=r"IV infusions only.*bolus"):
        estimate_individual(ONE_CMT, {"weight_kg": 70}, bolus, OBS)


def test_simulation_draws_a_kappa_per_occasion_reproducibly():
    cov = {"weight_kg": np.array([50.0, 80.0])}
    ds = simulate(FASANMADE_2011_CD, "5mg/kg q8w", cov, n_draws=400, random_seed=5,
                  until_week=30)
    again = simulate(FASANMADE_2011_CD, "5mg/kg q8w", cov, n_draws=400, random_seed=5,
                     until_week=30)
    np.testing.assert_array_equal(ds.trough.values, again.trough.values)
    np.testing.assert_array_equal(ds.steady_state_trough.values,
                                  again.steady_state_trough.values)
    # the same etas as without IOV (drawn first), and wider troughs with the occasions' kappas
    plain = simulate(dataclasses.replace(FASANMADE_2011_CD, omega2_iov={}), "5mg/kg q8w", cov,
                     n_draws=400, random_seed=5, until_week=30)
    np.testing.assert_array_equal(ds.cl.values, plain.cl.values)
    assert np.std(np.log(ds.trough.values[..., -1])) > np.std(np.log(plain.trough.values[..., -1]))
    # the typical patient has no occasion effect
    typical = simulate(FASANMADE_2011_CD, "5mg/kg q8w", {"weight_kg": 70.0}, until_week=30)
    np.testing.assert_array_equal(
        typical.concentration.values,
        simulate(dataclasses.replace(FASANMADE_2011_CD, omega2_iov={}), "5mg/kg q8w",
                 {"weight_kg": 70.0}, until_week=30).concentration.values)


def test_steady_state_with_the_same_parameters_in_every_interval_is_the_geometric_series():
    p = FASANMADE_2011_CD.individual_parameters({"weight_kg": np.array([40.0, 70.0, 100.0])})
    repeated = p.map(lambda v: np.broadcast_to(np.asarray(v)[..., None], (3, 12)))
    np.testing.assert_allclose(steady_state_trough_occasions(repeated, 350.0, 28.0, T_INF),
                               steady_state_trough(p, 350.0, 28.0, T_INF), rtol=1e-10)
