"""Closed-form two-compartment infusion solution: against solve_ivp, steady state, vectorisation."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from pkmodel.errors import SpecificationError
from pkmodel.pk import (
    FASANMADE_2009_UC,
    FASANMADE_2011_CD,
    MODELS,
    NAMED_REGIMENS,
    DoseSchedule,
    PKParameters,
    concentrations,
    simulate,
    steady_state_trough,
    steady_state_troughs,
    troughs,
)


def ode_concentrations(params: PKParameters, schedule: DoseSchedule, times, weight_kg):
    """Integrate the same two-compartment ODEs piecewise between infusion start/stop times."""
    cl, v1, q, v2 = (float(getattr(params, k)) for k in ("cl", "v1", "q", "v2"))
    amounts = np.asarray(schedule.amounts_mg(weight_kg), dtype=float).reshape(-1)
    starts = schedule.times_days
    stops = starts + schedule.durations_days

    def rate(t):
        on = (starts <= t) & (t < stops)
        return float(np.sum(amounts[on] / schedule.durations_days[on]))

    def rhs(t, y, r):
        a1, a2 = y
        return [r - (cl + q) / v1 * a1 + q / v2 * a2, q / v1 * a1 - q / v2 * a2]

    edges = np.unique(np.concatenate([[0.0], starts, stops, [max(times) + 1e-9]]))
    y = np.zeros(2)
    out = np.full(len(times), np.nan)
    times = np.asarray(times, dtype=float)
    for lo, hi in itertools.pairwise(edges):
        mid = 0.5 * (lo + hi)
        inside = (times >= lo) & (times <= hi)
        sol = solve_ivp(rhs, (lo, hi), y, args=(rate(mid),), method="LSODA", rtol=1e-10,
                        atol=1e-12, dense_output=True)
        if inside.any():
            out[inside] = sol.sol(times[inside])[0] / v1
        y = sol.y[:, -1]
    return out


@pytest.mark.parametrize("model", list(MODELS.values()), ids=list(MODELS))
def test_closed_form_matches_solve_ivp_over_doses_and_a_switch(model):
    rng = np.random.default_rng(4)
    weight = 72.0
    # induction + q8w maintenance, then an intensification to 10 mg/kg q4w at week 30
    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=30)
    schedule = history.switched("10mg/kg q4w", at_day=30 * 7.0, n_doses=6)
    times = np.concatenate([np.linspace(0.01, 54 * 7, 400), schedule.times_days[1:],
                            schedule.times_days + 1 / 24])
    for eta in (np.zeros(len(model.random_effects)), model.sample_eta((), rng)):
        params = model.individual_parameters(
            {k: v for k, v in {"weight_kg": weight, "albumin_g_dl": 3.6, "female": 1.0}.items()
             if k in model.covariates_used}, eta)
        closed = concentrations(params, schedule, times, weight)
        ode = ode_concentrations(params, schedule, times, weight)
        np.testing.assert_allclose(closed, ode, rtol=1e-3, atol=1e-9)
        assert np.max(np.abs(closed / ode - 1)) < 1e-3


def test_steady_state_geometric_series_equals_a_long_course():
    params = FASANMADE_2009_UC.individual_parameters({"weight_kg": 70})
    for regimen in NAMED_REGIMENS.values():
        schedule = DoseSchedule.maintenance(regimen, start_day=0.0, n_doses=80)
        long_course = troughs(params, schedule, 70.0)[..., -1]
        ss = steady_state_trough(params, regimen.dose_mg_kg * 70, regimen.interval_days,
                                 regimen.infusion_days)
        np.testing.assert_allclose(ss, long_course, rtol=1e-6)


def test_typical_values_reproduce_the_design_sanity_troughs():
    # Fasanmade 2009 typical values alone, 70 kg, 2 h infusions, against troughs from an
    # independent ODE integration of the same typical values
    params = PKParameters(np.array(0.407), np.array(3.29), np.array(7.14), np.array(4.13))
    expected = {"5 mg/kg q8w": 2.3, "10 mg/kg q8w": 4.7, "5 mg/kg q6w": 5.3,
                "5 mg/kg q4w": 13.0, "10 mg/kg q4w": 26.0}
    for regimen in NAMED_REGIMENS.values():
        ss = float(steady_state_trough(params, regimen.dose_mg_kg * 70, regimen.interval_days,
                                       regimen.infusion_days))
        assert ss == pytest.approx(expected[regimen.label], rel=0.05)
    assert float(params.half_life_days()) == pytest.approx(14, abs=1.5)  # "about 14 days"


def test_patients_by_draws_is_vectorised_and_equals_one_at_a_time():
    # without its inter-occasion variability: superposition with one eta per patient and draw
    # (tests/pk/test_pk_iov.py checks the occasions)
    model = dataclasses.replace(FASANMADE_2011_CD, omega2_iov={})
    weights = np.array([40.0, 65.0, 90.0])
    albumin = np.array([3.2, 4.1, 4.6])
    ds = simulate(model, "5mg/kg q8w", {"weight_kg": weights, "albumin_g_dl": albumin},
                  n_draws=5, random_seed=11, until_week=30)
    assert ds.concentration.dims == ("patient", "draw", "time_days")
    assert ds.concentration.shape[:2] == (3, 5)
    assert ds.concentration.attrs["units"] == "µg/mL"
    assert ds.time_days.attrs["units"] == "day" and ds.cl.attrs["units"] == "L/day"
    eta = model.sample_eta((3, 5), np.random.default_rng(11))
    for i in range(3):
        for j in (0, 4):
            p = model.individual_parameters({"weight_kg": weights[i],
                                             "albumin_g_dl": albumin[i]}, eta[i, j])
            one = concentrations(p, DoseSchedule.from_regimen("5mg/kg q8w", until_week=30),
                                 ds.time_days.values, weights[i])
            np.testing.assert_allclose(ds.concentration.values[i, j], one, rtol=1e-12)
    # same seed, same numbers
    again = simulate(model, "5mg/kg q8w", {"weight_kg": weights, "albumin_g_dl": albumin},
                     n_draws=5, random_seed=11, until_week=30)
    np.testing.assert_array_equal(again.trough.values, ds.trough.values)


def test_steady_state_troughs_table_has_units_and_scales_with_dose():
    da = steady_state_troughs("fasanmade2009", ["5mg/kg q8w", "10mg/kg q8w"],
                              {"weight_kg": [60, 80]}, n_draws=3, random_seed=1)
    assert da.dims == ("regimen", "patient", "draw") and da.attrs["units"] == "µg/mL"
    np.testing.assert_allclose(da.sel(regimen="10 mg/kg q8w"), 2 * da.sel(regimen="5 mg/kg q8w"))


def test_bad_inputs_raise_specification_errors():
    with pytest.raises(SpecificationError, match="g/L"):
        simulate("fasanmade2009", "5mg/kg q8w", {"weight_kg": 70, "albumin_g_dl": 41})
    with pytest.raises(SpecificationError, match="unknown covariate"):
        simulate("fasanmade2009", "5mg/kg q8w", {"weight": 70})
    with pytest.raises(SpecificationError, match="unknown PK model"):
        simulate("nosuch", "5mg/kg q8w")
    with pytest.raises(SpecificationError, match="same length"):
        simulate("fasanmade2009", "5mg/kg q8w", {"weight_kg": [60, 70], "albumin_g_dl": [4, 4, 4]})
    with pytest.raises(SpecificationError, match="eta"):
        FASANMADE_2009_UC.individual_parameters(eta=np.zeros(3))
