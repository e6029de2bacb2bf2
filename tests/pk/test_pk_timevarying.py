"""Time-varying covariates: exact propagation, estimation against a grid posterior, reader, CLI."""

from __future__ import annotations

import itertools
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.stats import norm

from pkmodel.cli.main import main
from pkmodel.errors import PKDataError, SpecificationError
from pkmodel.pk import (
    FASANMADE_2009_UC,
    FASANMADE_2011_CD,
    CovariateHistory,
    DoseSchedule,
    Observations,
    PKParameters,
    concentrations,
    estimate_individual,
    forecast_troughs,
    piecewise_concentrations,
    read_nonmem,
    steady_state_trough,
)

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ("cl", "v1", "q", "v2")


def _switch_schedule() -> DoseSchedule:
    """Induction, q8w maintenance, and 10 mg/kg q4w from day 200: every kind of step."""
    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=40)
    return history.switched("10mg/kg q4w", at_day=200.0, n_doses=4)


@pytest.mark.parametrize("model", [FASANMADE_2009_UC, FASANMADE_2011_CD])
def test_propagation_equals_the_closed_form_when_parameters_are_constant(model):
    schedule = _switch_schedule()
    times = np.concatenate([np.linspace(0.0, 320.0, 250), schedule.times_days,
                            schedule.times_days + schedule.durations_days, [330.0, 5.0]])
    eta = model.sample_eta((40,), np.random.default_rng(1))
    cov = {"weight_kg": 62.0, "albumin_g_dl": 3.7}
    params = model.individual_parameters(cov, eta)
    closed = concentrations(params, schedule, times, 62.0)
    one_segment = PKParameters(*(np.asarray(getattr(params, p))[..., None] for p in PARAMS))
    propagated = piecewise_concentrations(one_segment, [0.0], schedule, times,
                                          schedule.amounts_mg(62.0))
    assert propagated.shape == closed.shape == (40, times.size)
    assert np.max(np.abs(propagated - closed)) < 1e-9
    assert np.max(np.abs(propagated - closed) / np.maximum(closed, 1e-6)) < 1e-10
    # a history whose records change nothing gives the same numbers
    history = CovariateHistory([0.0, 30.0, 150.0], cov)
    np.testing.assert_allclose(history.concentrations(model, schedule, times, eta), closed,
                               rtol=1e-10, atol=1e-12)


def test_the_pytensor_propagation_equals_the_numpy_one():
    import pytensor
    import pytensor.tensor as pt

    model = FASANMADE_2011_CD
    history = CovariateHistory([0.0, 60.0, 100.0], {"weight_kg": [40, 55, 55],
                                                    "albumin_g_dl": [3.0, 3.0, 4.2]})
    schedule = _switch_schedule()
    times = np.array([13.9, 60.0, 97.0, 150.0, 310.0])
    eta = np.array([0.2, -0.1, 0.3])
    typical = history.individual_parameters(model)
    e = pt.vector("eta")
    symbolic = {p: np.asarray(getattr(typical, p)) for p in PARAMS}
    for i, p in enumerate(model.random_effects):
        symbolic[p] = symbolic[p] * pt.exp(e[i])
    pred = piecewise_concentrations(PKParameters(**symbolic), history.times_days, schedule,
                                    times, history.dose_amounts_mg(schedule), xp=pt)
    value = pytensor.function([e], pred, mode="FAST_COMPILE")(eta)  # the graph, not C code
    np.testing.assert_allclose(value,
                               history.concentrations(model, schedule, times, eta), rtol=1e-12)


def ode_concentrations(model, history, eta, schedule, times):
    """Integrate the two-compartment ODEs with solve_ivp, the parameters re-derived from the
    covariate model at the covariates in force in each piece and mg/kg doses at the weight of
    the dose day (written here, independently of the propagation)."""
    starts = schedule.times_days
    stops = starts + schedule.durations_days
    weights = np.array([float(history.at(t)["weight_kg"]) for t in starts])
    amounts = schedule.amounts * (weights if schedule.per_kg else 1.0)

    def rhs(t, y, rate, cl, v1, q, v2):
        a1, a2 = y
        return [rate - (cl + q) / v1 * a1 + q / v2 * a2, q / v1 * a1 - q / v2 * a2]

    edges = np.unique(np.concatenate([[0.0], starts, stops, history.times_days,
                                      [times.max() + 1e-9]]))
    y = np.zeros(2)
    out = np.full(times.size, np.nan)
    for lo, hi in itertools.pairwise(edges):
        mid = 0.5 * (lo + hi)
        on = (starts <= mid) & (mid < stops)
        rate = float(np.sum(amounts[on] / schedule.durations_days[on]))
        cov = {k: float(v) for k, v in history.at(mid).items()}
        p = model.individual_parameters(cov, eta)
        args = (rate, *(float(getattr(p, k)) for k in PARAMS))
        sol = solve_ivp(rhs, (lo, hi), y, args=args, method="LSODA", rtol=1e-10, atol=1e-12,
                        dense_output=True)
        inside = (times >= lo) & (times < hi)
        if inside.any():
            out[inside] = sol.sol(times[inside])[0] / args[2]
        y = sol.y[:, -1]
    return out


@pytest.mark.parametrize("model", [FASANMADE_2009_UC, FASANMADE_2011_CD])
def test_propagation_matches_solve_ivp_when_weight_and_albumin_change(model):
    # weight 40 -> 55 kg on day 60, albumin 3.0 -> 4.2 g/dL on day 100; mg/kg doses
    history = CovariateHistory([0.0, 60.0, 100.0], {"weight_kg": [40, 55, 55],
                                                    "albumin_g_dl": [3.0, 3.0, 4.2]})
    schedule = _switch_schedule()
    times = np.concatenate([np.linspace(0.01, 320.0, 300), schedule.times_days[1:],
                            [59.99, 60.0, 60.01, 99.99, 100.0, 100.01]])
    for eta in (np.zeros(len(model.random_effects)),
                model.sample_eta((), np.random.default_rng(3))):
        exact = history.concentrations(model, schedule, times, eta)
        ode = ode_concentrations(model, history, eta, schedule, times)
        assert np.max(np.abs(exact - ode)) < 1e-7
        assert np.max(np.abs(exact / ode - 1)) < 1e-7
    # the changes matter: baseline covariates throughout give other concentrations
    baseline = CovariateHistory([0.0], history.first()).concentrations(model, schedule, times)
    late = times > 120
    assert np.max(np.abs(baseline[late] / history.concentrations(model, schedule, times)[late]
                         - 1)) > 0.2


# A patient on 5 mg/kg q8w whose weight rises from 40 to 55 kg on day 70 and whose albumin rises
# from 3.4 to 4.2 g/dL on day 120, with four observed troughs (Fasanmade 2009).
HISTORY = CovariateHistory([0.0, 70.0, 120.0], {"weight_kg": [40, 55, 55],
                                                "albumin_g_dl": [3.4, 3.4, 4.2]})
SCHEDULE = DoseSchedule.from_regimen("5mg/kg q8w", until_week=40)
TIMES = SCHEDULE.times_days[-4:]
OBS = Observations(TIMES, [1.07, 2.01, 3.50, 3.33])
START, NEW = 322.0, "10mg/kg q4w"


@pytest.fixture(scope="module")
def grid():
    """The exact posterior on a 121 x 121 grid over (eta_cl, eta_v1), prior N(0, omega^2),
    likelihood the model's combined residual error; posterior means of CL at the last record's
    covariates, of the trough before the 2nd dose after switching to 10 mg/kg q4w on day 322,
    and of the steady-state trough under it."""
    model = FASANMADE_2009_UC
    axes = [np.linspace(-5 * s, 5 * s, 121) for s in model.omega_sd]
    eta = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    pred = HISTORY.concentrations(model, SCHEDULE, OBS.times_days, eta)
    sd = np.sqrt(model.additive_sd_ug_ml**2 + (model.proportional_sd * pred) ** 2)
    log_post = (norm.logpdf(OBS.values_ug_ml, pred, sd).sum(axis=-1)
                + norm.logpdf(eta, 0.0, model.omega_sd).sum(axis=-1))
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    last = model.individual_parameters(HISTORY.last(), eta)
    switched = SCHEDULE.switched(NEW, at_day=START, n_doses=2)
    trough = HISTORY.concentrations(model, switched, [START + 28.0], eta)[:, 0]
    steady = steady_state_trough(last, 10 * 55.0, 28.0, 2 / 24)
    return {"cl": float(w @ last.cl), "trough": float(w @ trough), "steady": float(w @ steady)}


def _summary(est) -> dict[str, float]:
    switched = forecast_troughs(est, [NEW], n_doses=1, start_day=START).draws
    steady = forecast_troughs(est, [NEW]).draws
    return {"cl": float(est.parameters()["cl"].values.mean()),
            "trough": float(switched.mean()), "steady": float(steady.mean())}


def test_map_agrees_with_the_grid_posterior_and_ignoring_the_change_does_not(grid):
    est = estimate_individual(FASANMADE_2009_UC, HISTORY, SCHEDULE, OBS, draws=4000,
                              random_seed=3)
    assert est.covariate_history is not None
    assert {k: est.covariates[k] for k in HISTORY.names} == HISTORY.last()
    got = _summary(est)
    for key, value in grid.items():
        assert got[key] == pytest.approx(value, rel=0.03), (key, got[key], value)
    # baseline covariates throughout (the change ignored): the forecast is measurably off
    ignored = estimate_individual(FASANMADE_2009_UC, HISTORY.first(), SCHEDULE, OBS,
                                  draws=4000, random_seed=3)
    off = _summary(ignored)
    assert abs(off["trough"] / grid["trough"] - 1) > 0.15, (off, grid)
    # weight given apart from a history without one is a constant weight
    no_weight = CovariateHistory(HISTORY.times_days, {"albumin_g_dl": [3.4, 3.4, 4.2]})
    apart = estimate_individual(FASANMADE_2009_UC, no_weight, SCHEDULE, OBS, weight_kg=55,
                                random_seed=3)
    assert apart.covariate_history.values["weight_kg"].tolist() == [55.0] * 3
    with pytest.raises(SpecificationError, match="do not also pass weight_kg"):
        estimate_individual(FASANMADE_2009_UC, HISTORY, SCHEDULE, OBS, weight_kg=55)
    with pytest.raises(SpecificationError, match="weight_kg"):
        estimate_individual(FASANMADE_2009_UC, no_weight, SCHEDULE, OBS)


def test_nuts_agrees_with_the_grid_posterior(grid):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = estimate_individual(FASANMADE_2009_UC, HISTORY, SCHEDULE, OBS, method="nuts",
                                  draws=500, tune=500, chains=2, random_seed=5)
    assert est.diagnostics["divergences"] == 0 and est.diagnostics["rhat_max"] < 1.05
    got = _summary(est)
    for key, value in grid.items():
        assert got[key] == pytest.approx(value, rel=0.05), (key, got[key], value)


def test_covariate_history_validates_and_carries_the_last_value_forward():
    h = CovariateHistory([-7.0, 0.0, 84.0], {"weight_kg": [38, 40, 55], "ati": [0, 0, 1]})
    assert h.at([-30.0, -7.0, 83.99, 84.0, 1e4])["weight_kg"].tolist() == [38, 38, 40, 55, 55]
    assert h.varying() == ("weight_kg", "ati") and not h.is_constant
    assert h.with_values(weight_kg=60).varying() == ("ati",)
    assert h.to_dict()["records"][2] == {"day": 84.0, "weight_kg": 55.0, "ati": 1.0}
    per_kg = DoseSchedule([0.0, 84.0, 140.0], 5.0, 1 / 12)
    assert h.dose_amounts_mg(per_kg).tolist() == [200.0, 275.0, 275.0]
    for times, values, match in [
        ([0, 0], {"weight_kg": [40, 50]}, "strictly increasing"),
        ([10, 0], {"weight_kg": [40, 50]}, "strictly increasing"),
        ([0, np.nan], {"weight_kg": [40, 50]}, "finite"),
        ([0, 10], {"weight_kg": [40, 500]}, "outside the plausible range"),
        ([0, 10], {"albumin_g_dl": [40, 42]}, "g/L"),
        ([0, 10], {"ati": [0, 2]}, "0 or 1"),
        ([0, 10], {"weight_kg": [40, 50, 60]}, "one value per record"),
        ([0, 10], {"height": [1, 2]}, "unknown covariate"),
        ([], {"weight_kg": []}, "at least one record"),
    ]:
        with pytest.raises(SpecificationError, match=match):
            CovariateHistory(times, values)


HEADER = "ID,TIME,AMT,RATE,DV,EVID,MDV,WT,ALB,ATI,SEX"
ROWS = [
    "1,0,200,2400,.,1,1,.,3.4,0,F",     # row 2: WT blank before its first value
    "1,14,200,2400,.,1,1,40,3.4,0,F",
    "1,42,200,2400,.,1,1,.,.,0,F",      # row 4: blanks carry the previous values on
    "1,70,.,.,.,2,1,55,3.4,0,F",        # row 5: an EVID 2 covariate row
    "1,98,.,.,1.1,0,0,55,3.4,0,F",
    "1,98,275,3300,.,1,1,55,3.4,0,F",
    "1,120,.,.,.,2,1,55,3.9,0,F",       # rows 8 and 9 at one TIME: the last wins
    "1,120,.,.,.,2,1,55,4.2,1,F",
    "1,154,.,.,2.0,0,0,55,4.2,1,F",
    "2,0,350,4200,.,1,1,70,4.0,0,M",
    "2,56,.,.,3.0,0,0,70,4.0,0,M",
]


def _write(tmp_path, rows, name="tv.csv"):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_reader_builds_the_history_with_locf(tmp_path):
    data = read_nonmem(_write(tmp_path, ROWS))
    one = data["1"]
    h = one.covariate_history
    assert h is not None
    assert h.times_days.tolist() == [0.0, 70.0, 120.0]
    assert h.values["weight_kg"].tolist() == [40.0, 55.0, 55.0]
    assert h.values["albumin_g_dl"].tolist() == [3.4, 3.4, 4.2]
    assert h.values["ati"].tolist() == [0.0, 0.0, 1.0]
    assert h.values["female"].tolist() == [1.0, 1.0, 1.0]
    assert one.covariates == {"weight_kg": 40.0, "albumin_g_dl": 3.4, "ati": 0.0, "female": 1.0}
    assert one.covariates_for_estimation is h
    assert data["2"].covariate_history is None
    assert data["2"].covariates_for_estimation == data["2"].covariates
    # times in hours: the history in days since the first dose
    hours = [r.split(",") for r in ROWS[:9]]
    for r in hours:
        r[1] = str(float(r[1]) * 24 + 24)  # first dose at hour 24
    h_hours = read_nonmem(_write(tmp_path, [",".join(r) for r in hours], "h.csv"),
                          time_unit="hour")["1"].covariate_history
    np.testing.assert_allclose(h_hours.times_days, [0.0, 70.0, 120.0])


@pytest.mark.parametrize(("row", "old", "new", "where", "fix"), [
    (7, ",55,3.4,0,F", ",550,3.4,0,F", r"row 7, column 'WT'", "weight in kg"),
    (9, ",55,4.2,1,F", ",55,42,1,F", r"row 9, column 'ALB'", "divide g/L by 10"),
    (10, ",4.2,1,F", ",4.2,3,F", r"row 10, column 'ATI'", "1 for yes"),
    (9, ",1,F", ",1,M", r"row 9, column 'SEX'", "same SEX on every row"),
])
def test_reader_errors_on_a_changing_covariate_name_row_and_column(tmp_path, row, old, new,
                                                                   where, fix):
    rows = list(ROWS)
    rows[row - 2] = rows[row - 2].replace(old, new)
    path = _write(tmp_path, rows)
    with pytest.raises(PKDataError, match=where) as info:
        read_nonmem(path)
    assert str(path) in str(info.value) and "Fix:" in str(info.value)
    assert re.search(fix, str(info.value))


def test_cli_forecast_uses_and_reports_the_history(tmp_path, capsys):
    path = _write(tmp_path, ROWS)
    code = main(["pk", "forecast", str(path), "--id", "1", "--regimen", NEW, "--n-doses", "1",
                 "--random-seed", "1", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    payload = json.loads(out)
    assert payload["covariates_vary"] is True
    history = payload["covariate_history"]
    assert history["rule"] == "last observation carried forward"
    assert [r["day"] for r in history["records"]] == [0.0, 70.0, 120.0]
    assert set(history["varying"]) == {"weight_kg", "albumin_g_dl", "ati"}
    assert payload["covariates"]["weight_kg"] == 40.0
    assert payload["covariates_at_last_record"]["weight_kg"] == 55.0
    assert main(["pk", "forecast", str(path), "--id", "1", "--random-seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "covariates vary" in text and "last value carried forward" in text
    assert re.search(r"120\s+55\s+4\.2\s+1", text)
