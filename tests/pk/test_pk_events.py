"""NONMEM event records (ADDL/II, SS, CMT, EVID 3/4) against independent computations.

Every check is at fixed parameters (no sampling): the population equations
(:func:`pkmodel.pk.population.equations.predict` on the pairs of a dataset read by the one reader)
and the individual path (:func:`pkmodel.pk.concentrations`, the MAP estimate) compared with the
same doses written out explicitly, a fresh start, or ``scipy.integrate.solve_ivp``.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from pkmodel.errors import PKDataError
from pkmodel.pk import concentrations, estimate_individual, get_model, read_nonmem
from pkmodel.pk.population import PopulationSpec, read_population_data
from pkmodel.pk.population.build import model_data
from pkmodel.pk.population.equations import individual_log_parameters, predict

TYPICAL = {  # theophylline-like oral models (times like hours), infliximab-like IV models
    (1, "oral"): {"cl": 2.8, "v": 32.0, "ka": 1.5},
    (2, "oral"): {"cl": 2.8, "v1": 20.0, "q": 4.0, "v2": 25.0, "ka": 1.2},
    (2, "infusion"): {"cl": 0.3, "v1": 3.2, "q": 0.6, "v2": 2.2},
    (2, "bolus"): {"cl": 0.3, "v1": 3.2, "q": 0.6, "v2": 2.2},
    (3, "infusion"): {"cl": 0.3, "v1": 3.0, "q2": 0.8, "v2": 2.0, "q3": 0.1, "v3": 4.0},
}


def make_spec(compartments: int, dosing: str) -> PopulationSpec:
    typical = TYPICAL[(compartments, dosing)]
    return PopulationSpec.from_dict({
        "model": {"compartments": compartments, "dosing": dosing},
        "data": {"time_unit": "day"},  # the unit of the parameters too
        "parameters": {k: {"typical": v, "bsv": k == "cl"} for k, v in typical.items()},
        "residual": {"error": "combined"}})


def population_predictions(spec: PopulationSpec, frame: pd.DataFrame, eta=(0.0, 0.3)):
    """Predictions at every observation of ``frame`` (two subjects or more) at the typical
    values, with the subjects' ``eta_cl`` cycling through ``eta``."""
    data = read_population_data(frame, spec)
    arrays = model_data(spec, data)
    values = {f"log_tv_{k}": np.log(v) for k, v in
              TYPICAL[(spec.structure.compartments, spec.structure.dosing)].items()}
    values["eta_cl"] = np.resize(np.asarray(eta), data.n_subjects)
    return predict(spec, arrays, individual_log_parameters(spec, arrays, values)), data


def rows(*records) -> pd.DataFrame:
    """A dataset from ``(ID, TIME, AMT, DV, EVID, extra...)`` dicts, sorted by ID and TIME
    (stable: records at one time keep their order); errors name rows by index from 0."""
    frame = pd.DataFrame(list(records))
    for column in ("AMT", "DV"):
        if column not in frame:
            frame[column] = np.nan
    return frame.sort_values(["ID", "TIME"], kind="stable").reset_index(drop=True)


def dose(sid, time, amt, **extra):
    return {"ID": sid, "TIME": time, "AMT": amt, "EVID": 1, "MDV": 1} | extra


def obs(sid, time, dv=1.0, **extra):
    return {"ID": sid, "TIME": time, "DV": dv, "EVID": 0, "MDV": 0} | extra


def two_subjects(records_of) -> pd.DataFrame:
    """The records of subject 1 and 2 (the same design, different ``eta_cl``)."""
    return rows(*records_of(1), *records_of(2))


SAMPLES_H = [0.5, 3.0, 11.9, 12.0, 13.0, 30.0, 47.0, 49.5, 60.0, 96.0]


# ----------------------------------------------------------------------------- ADDL / II
@pytest.mark.parametrize(("compartments", "dosing"), [(1, "oral"), (2, "infusion"), (2, "bolus")])
def test_addl_predicts_the_expanded_explicit_doses(compartments, dosing):
    spec = make_spec(compartments, dosing)
    rate = {"RATE": 320 / 0.25} if dosing == "infusion" else {}
    times = SAMPLES_H if dosing == "oral" else [t / 2 for t in SAMPLES_H]
    ii = 12.0 if dosing == "oral" else 6.0

    def addl(s):
        return [dose(s, 0.0, 320, ADDL=3, II=ii, **rate), dose(s, 40.0, 100, **rate),
                *[obs(s, t) for t in times]]

    def explicit(s):
        return [*[dose(s, k * ii, 320, **rate) for k in range(4)], dose(s, 40.0, 100, **rate),
                *[obs(s, t) for t in times]]

    expanded, data = population_predictions(spec, two_subjects(addl))
    written, _ = population_predictions(spec, two_subjects(explicit))
    assert data.dose_time_days.size == 10  # 4 + 1 per subject: never silently 1
    np.testing.assert_allclose(expanded, written, rtol=1e-9, atol=1e-12)


def test_addl_in_the_individual_forecast_path_is_the_explicit_doses():
    frame = rows(dose(1, 0, 350, RATE=4200, ADDL=2, II=56, WT=70),
                 obs(1, 111.9, 3.0, WT=70), obs(1, 160, 2.0, WT=70))
    explicit = rows(*[dose(1, t, 350, RATE=4200, WT=70) for t in (0, 56, 112)],
                    obs(1, 111.9, 3.0, WT=70), obs(1, 160, 2.0, WT=70))
    a, b = read_nonmem(frame)["1"], read_nonmem(explicit)["1"]
    np.testing.assert_array_equal(a.schedule.times_days, [0, 56, 112])
    model = get_model("fasanmade2009")
    params = model.individual_parameters({"weight_kg": 70.0})
    times = np.linspace(0, 200, 41)
    np.testing.assert_allclose(concentrations(params, a.schedule, times),
                               concentrations(params, b.schedule, times), rtol=1e-12)
    ea = estimate_individual(model, a.covariates, a.schedule, a.observations)
    eb = estimate_individual(model, b.covariates, b.schedule, b.observations)
    np.testing.assert_allclose(ea.eta_map, eb.eta_map, rtol=1e-9)


# ----------------------------------------------------------------------------- SS
def _ss_case(spec: PopulationSpec, ss: int):
    """An SS dose (and, for SS 2, an ordinary dose before it that stays), against 30 explicit
    doses before it; observations after it. The interval is the slowest half-life / log 2, so
    that the series truncated after 30 doses misses a fraction exp(-30) of it."""
    dosing = spec.structure.dosing
    typical = TYPICAL[(spec.structure.compartments, dosing)]
    slowest = min(float(lam) for _, lam in spec.structure.impulse_response(typical))
    ii = round(1.0 / slowest, 1)
    rate = {"RATE": 300 / 0.5} if dosing == "infusion" else {}
    start = 29 * ii + 100.0
    after = [start + t for t in (0.25, 1.0, 5.0, ii - 0.01, ii + 3.0, 40.0)]
    before = [dose(None, 10.0, 150, **rate)]  # emptied by SS 1, kept by SS 2

    def steady(s):
        return [{**before[0], "ID": s}, dose(s, start, 300, SS=ss, II=ii, **rate),
                *[obs(s, t) for t in after]]

    def written(s):
        first = [{**before[0], "ID": s}] if ss == 2 else [dose(s, 10.0, 150, **rate),
                                                            {"ID": s, "TIME": start - 29 * ii,
                                                             "EVID": 3, "MDV": 1}]
        return [*first, *[dose(s, start - k * ii, 300, **rate) for k in range(29, -1, -1)],
                *[obs(s, t) for t in after]]

    return steady, written


@pytest.mark.parametrize(("compartments", "dosing", "ss"),
                         [(1, "oral", 1), (2, "oral", 2), (2, "infusion", 1), (2, "infusion", 2),
                          (2, "bolus", 1), (3, "infusion", 1)])
def test_a_steady_state_dose_is_thirty_explicit_doses_before_it(compartments, dosing, ss):
    spec = make_spec(compartments, dosing)
    steady, written = _ss_case(spec, ss)
    closed, data = population_predictions(spec, two_subjects(steady))
    explicit, _ = population_predictions(spec, two_subjects(written))
    # 30 doses leave out exp(-30 lambda_min II) ~ 1e-13 of the series
    np.testing.assert_allclose(closed, explicit, rtol=1e-9)
    assert data.dose_ss_interval_days is not None


def test_a_constant_infusion_at_steady_state_is_rate_over_clearance():
    spec = make_spec(2, "infusion")
    cl = TYPICAL[(2, "infusion")]["cl"]

    def records(s):
        return [dose(s, 0.0, 0, SS=1, II=0, RATE=24.0), *[obs(s, t) for t in (0.5, 3, 20)]]

    pred, _ = population_predictions(spec, two_subjects(records), eta=(0.0, np.log(2.0)))
    np.testing.assert_allclose(pred, np.repeat([24.0 / cl, 12.0 / cl], 3), rtol=1e-10)


def test_steady_state_in_the_individual_path_is_the_explicit_doses():
    ss = rows(dose(1, 0, 400, RATE=4800, SS=1, II=56, WT=70), obs(1, 55.9, 3.0, WT=70),
              obs(1, 80, 4.0, WT=70))
    explicit = rows(*[dose(1, t, 400, RATE=4800, WT=70) for t in 56.0 * np.arange(40)],
                    obs(1, 56 * 39 + 55.9, 3.0, WT=70), obs(1, 56 * 39 + 80, 4.0, WT=70))
    a, b = read_nonmem(ss)["1"], read_nonmem(explicit)["1"]
    model = get_model("fasanmade2009")
    params = model.individual_parameters({"weight_kg": 70.0})
    got = concentrations(params, a.schedule, a.observations.times_days)
    want = concentrations(params, b.schedule, b.observations.times_days)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    ea = estimate_individual(model, a.covariates, a.schedule, a.observations)
    eb = estimate_individual(model, b.covariates, b.schedule, b.observations)
    np.testing.assert_allclose(ea.eta_map, eb.eta_map, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- EVID 3 / 4
@pytest.mark.parametrize("evid", [3, 4])
def test_a_reset_is_a_fresh_start(evid):
    spec = make_spec(1, "oral")

    def reset(s):
        out = [dose(s, 0.0, 320, ADDL=1, II=12), obs(s, 5.0), obs(s, 29.9)]
        if evid == 3:
            out += [{"ID": s, "TIME": 30.0, "EVID": 3, "MDV": 1}, obs(s, 30.0), obs(s, 31.0),
                    dose(s, 36.0, 200)]
        else:
            out += [dose(s, 36.0, 200, EVID=4)]
        return [*out, obs(s, 36.5), obs(s, 40.0), obs(s, 60.0)]

    def fresh(s):  # the course after the reset, from its start
        return [dose(s, 36.0, 200), obs(s, 36.5), obs(s, 40.0), obs(s, 60.0)]

    def no_reset(s):
        return [dose(s, 0.0, 320, ADDL=1, II=12), obs(s, 5.0), obs(s, 29.9)]

    got, data = population_predictions(spec, two_subjects(reset))
    after, _ = population_predictions(spec, two_subjects(fresh))
    before, _ = population_predictions(spec, two_subjects(no_reset))
    got = got.reshape(2, -1)
    np.testing.assert_allclose(got[:, -3:], after.reshape(2, -1), rtol=1e-12)
    np.testing.assert_allclose(got[:, :2], before.reshape(2, -1), rtol=1e-12)
    if evid == 3:  # emptied (at its own time too, written after it), and nothing given yet
        assert np.all(got[:, 2:4] == 0)
    assert data.dose_course is not None


def test_a_reset_in_the_individual_path_with_and_without_a_covariate_history():
    records = [dose(1, 0, 350, RATE=4200, ADDL=2, II=14, WT=70), obs(1, 20, 5.0, WT=70),
               dose(1, 60, 700, RATE=8400, EVID=4, WT=72), obs(1, 100, 2.0, WT=72)]
    subject = read_nonmem(rows(*records))["1"]
    fresh = read_nonmem(rows(dose(1, 60, 700, RATE=8400, WT=72), obs(1, 100, 2.0, WT=72)))["1"]
    model = get_model("fasanmade2009")
    params = model.individual_parameters({"weight_kg": 70.0})
    times = np.array([60.5, 80.0, 100.0])
    np.testing.assert_allclose(concentrations(params, subject.schedule, times),
                               concentrations(params, fresh.schedule, times - 60), rtol=1e-12)
    # the exact propagation of a covariate history empties the compartments at the reset too
    from pkmodel.pk.simulation import piecewise_concentrations

    assert subject.covariate_history is not None
    history = subject.covariate_history
    params_t = history.individual_parameters(model)
    piecewise = piecewise_concentrations(params_t, history.times_days, subject.schedule, times,
                                         subject.schedule.amounts)
    fresh_t = model.individual_parameters({"weight_kg": 72.0})
    np.testing.assert_allclose(piecewise, concentrations(fresh_t, fresh.schedule, times - 60),
                               rtol=1e-9)


# ----------------------------------------------------------------------------- CMT
def _ode(p: dict, doses, times) -> np.ndarray:
    """Two-compartment model with a depot, by LSODA: doses ``(time, amount, cmt, duration)``
    (cmt 1 the depot, 2 the central compartment; duration 0 a bolus)."""
    k10, k12, k21, ka = p["cl"] / p["v1"], p["q"] / p["v1"], p["q"] / p["v2"], p["ka"]

    def rhs(_, a, rate):
        depot, central, peripheral = a
        return [-ka * depot, rate + ka * depot - (k10 + k12) * central + k21 * peripheral,
                k12 * central - k21 * peripheral]

    events = sorted({0.0, *[t for t, *_ in doses], *[t + d for t, _, _, d in doses], *times})
    state, out = np.zeros(3), {}
    for start, end in itertools.pairwise(events):
        for t, amount, cmt, duration in doses:
            if t == start and duration == 0:
                state[cmt - 1] += amount
        out[start] = state[1] / p["v1"]
        rate = sum(a / d for t, a, _, d in doses if d > 0 and t <= start < t + d)
        state = solve_ivp(rhs, (start, end), state, method="LSODA", rtol=1e-11, atol=1e-12,
                          args=(rate,)).y[:, -1]
        out[end] = state[1] / p["v1"]
    return np.array([out[t] for t in times])


def test_depot_and_central_doses_in_one_dataset_equal_the_ode():
    spec = make_spec(2, "oral")
    times = [0.5, 2.0, 10.0, 10.0, 10.5, 20.5, 23.0, 30.0, 48.0]

    def records(s):  # oral, an IV bolus into the central compartment, an IV infusion
        return [dose(s, 0.0, 300, CMT=1), obs(s, 0.5, CMT=2), obs(s, 2.0), obs(s, 10.0),
                dose(s, 10.0, 200, CMT=2), obs(s, 10.0), *[obs(s, t) for t in times[4:]],
                dose(s, 20.0, 250, CMT=2, RATE=100.0)]

    frame = two_subjects(records)
    pred, data = population_predictions(spec, frame, eta=(0.0, 0.0))
    assert set(data.dose_route) == {"oral", "bolus", "infusion"}
    p = TYPICAL[(2, "oral")]
    # an observation written before the bolus at its time does not see it (NONMEM); the pairs
    # count a bolus at its own time (pkmodel's convention): compare after it
    want = _ode(p, [(0.0, 300, 1, 0), (10.0, 200, 2, 0), (20.0, 250, 2, 2.5)], times)
    np.testing.assert_allclose(pred[:9][[0, 1, 3, 4, 5, 6, 7, 8]], want[[0, 1, 3, 4, 5, 6, 7, 8]],
                               rtol=1e-6)


def test_the_pytensor_graph_of_event_data_is_numpys():
    import pytensor.tensor as pt

    spec = make_spec(2, "oral")

    def records(s):
        return [dose(s, 0.0, 300, CMT=1, SS=1, II=12), dose(s, 10.0, 200, CMT=2, RATE=100),
                {"ID": s, "TIME": 30.0, "EVID": 3, "MDV": 1}, dose(s, 31.0, 100, CMT=1),
                *[obs(s, t) for t in (1.0, 11.0, 29.0, 32.0, 40.0)]]

    frame = two_subjects(records)
    data = read_population_data(frame, spec)
    arrays = model_data(spec, data)
    assert {"pair_route_oral", "pair_route_infusion", "pair_ss"} <= set(arrays)
    values = {f"log_tv_{k}": np.log(v) for k, v in TYPICAL[(2, "oral")].items()}
    values["eta_cl"] = np.array([0.0, 0.2])
    expected = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    symbolic = {k: pt.as_tensor_variable(v) for k, v in arrays.items()}
    graph = predict(spec, symbolic, individual_log_parameters(
        spec, symbolic, {k: pt.as_tensor_variable(v) for k, v in values.items()}, xp=pt), xp=pt)
    np.testing.assert_allclose(graph.eval(), expected, rtol=1e-10)


# ----------------------------------------------------------------------------- refusals
BASE = [dose(1, 0, 300), obs(1, 1.0), obs(1, 5.0), dose(2, 0, 300), obs(2, 2.0)]


def _with(change: dict, at: int = 0, extra=()):
    records = [dict(r) for r in BASE]
    records[at] |= change
    return rows(*records, *extra)


@pytest.mark.parametrize(("frame", "dosing", "where", "fix"), [
    (_with({"ADDL": 3}), "oral", r"row index 0, column 'II'", "time between the additional"),
    (_with({"ADDL": 1.5, "II": 12}), "oral", r"row index 0, column 'ADDL'", "whole number"),
    (_with({"ADDL": 2}, at=1), "oral", r"row index 1, column 'ADDL'", "dose row"),
    (_with({"SS": 1}), "oral", r"row index 0, column 'II'", "constant infusion"),
    (_with({"SS": 3, "II": 12}), "oral", r"row index 0, column 'SS'", "0 \\(no steady"),
    (_with({"CMT": 3}), "oral", r"row index 0, column 'CMT'", "1 \\(the depot"),
    (_with({"CMT": 1}, at=1), "oral", r"row index 1, column 'CMT'", "observations: 2"),
    (_with({"CMT": 2}), "infusion", r"row index 0, column 'CMT'", "dosing = \"oral\""),
    (_with({"RATE": 50.0}), "oral", r"row index 0, column 'RATE'", "first-order absorption"),
    (_with({"ADDL": 3, "II": 12}, extra=[{"ID": 1, "TIME": 20.0, "EVID": 3, "MDV": 1}]),
     "oral", r"row index 0, column 'ADDL'", "end before the reset"),
    (rows(obs(1, 0.0), dose(1, 0, 300, SS=1, II=12), obs(1, 2.0), dose(2, 0, 300),
          obs(2, 1.0)), "oral", r"row index 0, column 'TIME'", "after the reset row"),
    (rows(*BASE[:2], obs(1, 1.0, 2.5), *BASE[2:]), "oral", r"row index 2, column 'DV'",
     "one record per ID, TIME"),
    (rows(dose(1, 0, 300), dose(1, 0, 200), *BASE[1:]), "oral", r"row index 1, column 'AMT'",
     "one record per ID, TIME"),
    (rows(dose(1, 0, 300, SS=1, II=0.5, RATE=300), obs(1, 2.0), dose(2, 0, 300, RATE=300),
          obs(2, 2.0)), "infusion", r"row index 0, column 'II'",
     "at least the infusion's duration"),
])
def test_what_the_model_cannot_use_is_refused_with_row_column_and_fix(frame, dosing, where,
                                                                      fix):
    spec = make_spec(2 if dosing == "infusion" else 1, dosing)
    with pytest.raises(PKDataError) as err:
        read_population_data(frame, spec)
    message = str(err.value)
    assert re.search(where, message), message
    assert re.search(fix, message), message


def test_what_is_left_unused_is_counted_in_the_notes():
    frame = rows(dose(1, 0, 300, DV=0), obs(1, 1.0, 2.0, MDV=1), obs(1, 2.0, 3.0, AMT=50),
                 obs(1, 3.0, 2.5), obs(1, 3.0, 2.5), dose(2, 0, 300), obs(2, 1.0),
                 dose(3, 0, 300))
    data = read_population_data(frame, make_spec(1, "oral"))
    notes = "\n".join(data.notes)
    assert "1 observation row(s) (EVID 0) with MDV 1 carry a DV" in notes
    assert "(index 1)" in notes
    assert "1 row(s) that are not doses (EVID 0, 2 or 3) carry an AMT" in notes
    assert "1 exact duplicate record(s)" in notes and "(index 4)" in notes
    assert "1 subject(s) without observations left out" in notes and "ID 3" in notes
    assert data.n_observations == 4  # the duplicate kept, as NONMEM reads it


def test_the_individual_pytensor_graph_of_event_data_is_numpys():
    import pytensor.tensor as pt

    from pkmodel.pk.estimation import _Posterior

    records = [dose(1, 0, 400, RATE=4800, SS=1, II=56, WT=70), obs(1, 20, 5.0, WT=70),
               dose(1, 60, 700, RATE=8400, EVID=4, WT=70), obs(1, 100, 2.0, WT=70)]
    subject = read_nonmem(rows(*records))["1"]
    model = get_model("fasanmade2009")
    post = _Posterior(model, subject.covariates, 70.0, subject.schedule, subject.observations)
    values = {k: float(v) for k, v in model.individual_parameters(
        subject.covariates).values.items()}
    expected = post.predict_values(values)
    graph = post.predict_values({k: pt.as_tensor_variable(v) for k, v in values.items()}, xp=pt)
    np.testing.assert_allclose(graph.eval(), expected, rtol=1e-12)
    np.testing.assert_allclose(expected, concentrations(model.individual_parameters(
        subject.covariates), subject.schedule, subject.observations.times_days), rtol=1e-12)


def test_an_oral_steady_state_interval_shorter_than_the_default_infusion_is_read():
    # durations are not used by oral doses: an II of 1 h under the 2 h default is no infusion
    frame = rows(*[r for s in (1, 2) for r in (dose(s, 0.0, 100, SS=1, II=1 / 24),
                                                 obs(s, 0.5 / 24), obs(s, 0.9 / 24))])
    data = read_population_data(frame, make_spec(1, "oral"))
    np.testing.assert_allclose(data.dose_ss_interval_days, 1 / 24)


def test_a_forecast_follows_the_events_and_lists_what_was_left_unused(tmp_path, capsys):
    import json

    from pkmodel.cli.main import main

    frame = rows(dose(1, 0, 400, RATE=4800, SS=1, II=56, WT=70), obs(1, 55.9, 3.0, WT=70),
                 obs(1, 60, 9.0, MDV=1, WT=70), dose(1, 56, 400, RATE=4800, ADDL=1, II=56, WT=70),
                 obs(1, 111.9, 2.5, WT=70, AMT=5))
    path = tmp_path / "pk.csv"
    frame.to_csv(path, index=False)
    assert main(["pk", "forecast", str(path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    notes = "\n".join(payload["data_notes"])
    assert ("1 observation row(s) (EVID 0) with MDV 1 carry a DV, not used as an observation "
            "(row 5)") in notes
    assert "carry an AMT, not given as a dose (row 6)" in notes


@pytest.mark.parametrize("ss", [1, 2])
def test_a_steady_state_dose_under_a_covariate_history_is_forty_explicit_doses(ss):
    """The exact propagation of parameters that change over time starts a steady-state dose
    from its fixed point under the parameters in force then: 40 explicit doses before it under
    those parameters give the same concentrations, before and after the parameters change."""
    from pkmodel.pk import DoseSchedule, PKParameters
    from pkmodel.pk.simulation import piecewise_concentrations

    params = PKParameters(np.array([0.3, 0.45]), np.array([3.2, 3.6]), np.array([0.6, 0.7]),
                          np.array([2.2, 2.5]))
    tau, length, early = 21.0, 0.5, 5.0
    start = 40 * tau + early
    extra = [(early, 300.0)] if ss == 2 else []  # kept by SS 2, emptied by SS 1
    steady = DoseSchedule([*(t for t, _ in extra), start], [*(a for _, a in extra), 400.0],
                          length, per_kg=False, ss_intervals_days=[0.0] * len(extra) + [tau],
                          reset_days=[start] if ss == 1 else None)
    times = start + np.array([0.2, 1.0, 10.0, 30.0, 60.0])
    change = np.array([0.0, start + 20.0])  # the parameters change 20 days after the SS dose
    explicit_times = start - tau * np.arange(40, -1, -1)[:-1]
    explicit = DoseSchedule([*(t for t, _ in extra), *explicit_times, start],
                            [*(a for _, a in extra), *[400.0] * 41], length, per_kg=False)
    got = piecewise_concentrations(params, change, steady, times, steady.amounts)
    want = piecewise_concentrations(params, change, explicit, times, explicit.amounts)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # with one segment, the propagation is the superposition closed form
    first = PKParameters(*(v[:1] for v in params.values.values()))
    np.testing.assert_allclose(
        piecewise_concentrations(first, [0.0], steady, times, steady.amounts),
        concentrations(PKParameters(*(v[0] for v in params.values.values())), steady, times),
        rtol=1e-9)


_EVENT_CELLS = st.sampled_from(["", ".", "0", "1", "2", "3", "4", "-1", "1.5", "12", "x", "0.5"])


@settings(max_examples=80, deadline=None)
@given(cells=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(
    ["EVID", "ADDL", "II", "SS", "CMT", "RATE"]), _EVENT_CELLS), max_size=4),
    dosing=st.sampled_from(["oral", "infusion", "bolus"]))
def test_random_event_cells_give_pkdataerror_or_every_dose(cells, dosing):
    """Random EVID, ADDL, II, SS, CMT and RATE cells: a PKDataError, or a dataset with one dose
    per dose row and per additional dose, all finite."""
    frame = pd.DataFrame({"ID": [1, 1, 1, 2, 2, 2], "TIME": [0, 1, 30, 0, 2, 40],
                          "AMT": ["300", ".", "200", "300", ".", "."],
                          "DV": [".", "2", ".", ".", "3", "1"], "EVID": ["1", "0", "1", "1", "0",
                                                                        "0"],
                          "ADDL": [""] * 6, "II": [""] * 6, "SS": [""] * 6, "CMT": [""] * 6,
                          "RATE": [""] * 6}, dtype=object)
    for row, column, value in cells:
        frame.loc[row, column] = value
    try:
        data = read_nonmem(frame, dosing=dosing)
    except PKDataError:
        return
    event("read")
    evid = pd.to_numeric(frame["EVID"], errors="coerce")
    addl = pd.to_numeric(frame["ADDL"].replace({"": "0", ".": "0"}), errors="coerce")
    expected = int(((evid == 1) | (evid == 4)).sum() + addl[(evid == 1) | (evid == 4)].sum())
    got = sum(len(s.schedule) for s in data.subjects.values())
    assert got == expected
    for s in data.subjects.values():
        assert np.all(np.isfinite(s.schedule.times_days)) and np.all(s.schedule.amounts > 0)


def test_a_bolus_model_takes_a_dose_with_rate_as_an_infusion():
    # the structure's own routes are each checked against solve_ivp in test_pk_structures.py
    spec = make_spec(2, "bolus")
    times = np.array([0.5, 2.0, 5.0, 5.2, 9.0])

    def records(s):
        return [dose(s, 0.0, 300), dose(s, 5.0, 400, RATE=800.0), *[obs(s, t) for t in times]]

    pred, data = population_predictions(spec, two_subjects(records), eta=(0.0, 0.0))
    assert list(data.dose_route[:2]) == ["bolus", "infusion"]
    p = TYPICAL[(2, "bolus")]
    s = spec.structure
    want = (s.response(p, 300.0, times, 1.0, route="bolus")
            + s.response(p, 400.0, times - 5.0, 0.5, route="infusion"))
    np.testing.assert_allclose(pred[:5], want, rtol=1e-12)
