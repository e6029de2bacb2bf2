"""The exposure-driven model with the patients' TDM histories (``Exposure(history=...)``).

Cohorts and histories come from the independent generator (``tests/exposure_truth.py``, its own
PK code): each patient's history holds 16 baseline infusions and 1 to 4 troughs at the ends of
the last intervals, the last of them the cohort's baseline trough, all under the published
model's between-subject and inter-occasion variability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from exposure_truth import simulate_exposure_cohort

import pkmodel
from pkmodel.cli.main import main
from pkmodel.errors import CohortError, PKDataError
from pkmodel.response.design import build_design
from pkmodel.response.exposure import Exposure

ASSUME = {"immunomodulator": 0}
TRUTH = {"b_base": -0.6, "b_gain": 1.2, "alpha": 0.2, "sigma_centre": 0.3,
         "sigma_patient": 0.6, "remission_tl": "measured", "iov": True}


@pytest.fixture(scope="module")
def generated():
    """About 60 fitted patients (of 240 generated: the reader keeps troughs of 3 or more)."""
    frame, truth = simulate_exposure_cohort(240, 3, **TRUTH, seed=21, history_troughs=4)
    return pkmodel.read_cohort(frame), truth, frame


def _design(cohort, **exposure):
    return build_design(cohort, (), "center", None, exposure=Exposure(assume=ASSUME, **exposure))


def _last_trough_only(history):
    obs = history["EVID"] == 0
    last = history[obs].groupby("ID")["TIME"].transform("max")
    keep = ~obs | (history["TIME"] == last.reindex(history.index).fillna(-1))
    return history[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def designs(generated):
    cohort, truth, _ = generated
    history = truth["history"]
    return {"one trough": _design(cohort),
            "history, last trough": _design(cohort, history=_last_trough_only(history)),
            "history": _design(cohort, history=history)}


def test_a_history_of_one_trough_gives_the_gains_one_trough_gives(designs):
    one, hist = designs["one trough"], designs["history, last trough"]
    assert one.patient_ids == hist.patient_ids
    # the same posterior by two routes (importance sampling from the prior at steady state;
    # the posterior mode and importance resampling under the actual doses): Monte Carlo apart
    np.testing.assert_allclose(hist.log_gain, one.log_gain, atol=0.08)
    assert abs(float(np.mean(hist.log_gain - one.log_gain))) < 0.02
    np.testing.assert_allclose(hist.log_gain_sd, one.log_gain_sd, rtol=0.2)


def test_earlier_troughs_inform_the_gain(generated, designs):
    _, truth, _ = generated
    one, hist = designs["history, last trough"], designs["history"]
    record = hist.exposure["history"]
    assert record["n_patients"] == len(hist.patient_ids)
    assert record["troughs_per_patient"][0] == 1 and record["troughs_per_patient"][2] == 4
    assert record["n_troughs"] > 1.8 * record["n_patients"]
    assert record["patients_not_in_cohort"] == 240 - len(hist.patient_ids)
    troughs = truth["history"][truth["history"]["EVID"] == 0].groupby("ID").size()
    several = troughs.loc[list(hist.patient_ids)].to_numpy() > 1
    assert several.sum() > 20
    # more troughs: a narrower posterior of each patient's gain, never a wider one on average
    assert np.mean(hist.log_gain_sd[several]) < np.mean(one.log_gain_sd[several]) - 0.01
    np.testing.assert_allclose(hist.log_gain_sd[~several], one.log_gain_sd[~several], rtol=1e-9)


def test_a_history_that_contradicts_the_cohort_is_refused(generated):
    cohort, truth, _ = generated
    history = truth["history"]
    pid = cohort.data["patient_id"].iloc[0]
    with pytest.raises(CohortError, match=f"patient '{pid}' has no record in the PK history"):
        _design(cohort, history=history[history["ID"] != pid])
    other = cohort.data["patient_id"].iloc[-1]
    changed = history.copy()
    last = changed.index[(changed["ID"] == other) & (changed["EVID"] == 0)][-1]
    changed.loc[last, "DV"] = changed.loc[last, "DV"] * 1.5
    with pytest.raises(CohortError, match=rf"patient '{other}': the cohort's baseline_tl is .* "
                                          r"but the last trough of their history"):
        _design(cohort, history=changed)
    stranger = history[history["ID"] == pid]
    many = pd.concat([history, *(stranger.assign(ID=f"X{k}")  # more than the reader excluded
                                 for k in range(history["ID"].nunique()))], ignore_index=True)
    with pytest.raises(PKDataError, match=r"patient\(s\) that the cohort does not"):
        _design(cohort, history=many)


def test_a_dose_of_the_intensified_amount_before_the_baseline_trough_is_refused(generated):
    cohort, truth, _ = generated
    patients = cohort.data.drop_duplicates("patient_id")
    escalated = patients[patients["dose_mg_kg"] == 10.0]["patient_id"].iloc[0]
    history = truth["history"].copy()
    doses = history.index[(history["ID"] == escalated) & (history["EVID"] == 1)]
    history.loc[doses[-1], ["AMT", "RATE"]] *= 2.0  # the last dose already 10 mg/kg
    with pytest.raises(PKDataError, match=rf"'{escalated}': the dose on day .* is already the "
                                          "intensified 10 mg/kg"):
        _design(cohort, history=history)


def test_histories_on_the_command_line(generated, tmp_path, capsys):
    """``pkmodel fit --exposure --pk-history``: the history reaches the model (a patient missing
    from it is named before any work, and nothing is written), and is recorded as the spec's."""
    cohort, truth, frame = generated
    cohort_path, history_path = tmp_path / "cohort.csv", tmp_path / "history.csv"
    frame.to_csv(cohort_path, index=False)
    pid = cohort.data["patient_id"].iloc[0]
    truth["history"].query("ID != @pid").to_csv(history_path, index=False)
    out = tmp_path / "fit.nc"
    code = main(["fit", str(cohort_path), "-o", str(out), "--exposure", "--pk-history",
                 str(history_path), "--assume", "immunomodulator=0"])
    err = capsys.readouterr().err
    assert code != 0 and f"patient '{pid}' has no record in the PK history" in err
    assert "Traceback" not in err and not out.exists()
    # --pk-history belongs to the exposure-driven model
    code = main(["fit", str(cohort_path), "-o", str(out), "--pk-history", str(history_path)])
    assert code != 0 and "add --exposure" in capsys.readouterr().err
    # the saved specification names the history and its time unit
    spec = Exposure(assume=ASSUME, history=str(history_path), history_time_unit="hour")
    assert Exposure.from_any(spec.to_dict()) == spec
    assert spec.to_dict()["history"] == str(history_path)
