"""Checks of the independent truth generator in ``tests/exposure_truth.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from exposure_truth import (
    OMEGA2,
    individual_parameters,
    regimen_trough,
    residual_sd,
    simulate_exposure_cohort,
    steady_state_trough,
    steady_state_trough_ode,
    trough_after_intervals,
)

REGIMENS = ((10, 8), (5, 6), (5, 4), (10, 4))
PATIENTS = {  # (weight kg, albumin g/L, ati, eta CL, V1, V2)
    "typical": (70.0, 40.0, 0, (0.0, 0.0, 0.0)),
    "fast, light, low albumin": (45.0, 28.0, 0, (0.5, -0.2, 0.8)),
    "slow, heavy, big V2": (110.0, 48.0, 0, (-0.5, 0.2, 1.2)),
    "ATI-positive, small V2": (80.0, 35.0, 1, (0.2, 0.1, -1.0)),
}
TRUTH_ARGS = {"b_base": 0.8, "b_gain": 0.6, "alpha": 0.2, "sigma_centre": 0.3,
              "sigma_patient": 0.5}


@pytest.fixture(scope="module")
def cohort():
    return simulate_exposure_cohort(3000, 6, **TRUTH_ARGS, seed=11)


def test_imports_nothing_from_pkmodel():
    tree = ast.parse((Path(__file__).resolve().parents[1] / "exposure_truth.py").read_text())
    names = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] == "pkmodel"]


@pytest.mark.parametrize("patient", PATIENTS)
def test_closed_form_matches_ode(patient):
    wt, alb, ati, eta = PATIENTS[patient]
    p = individual_parameters(wt, alb, ati, eta)
    for dose, weeks in ((5, 8), *REGIMENS):
        closed = float(steady_state_trough(*p, dose * wt, weeks * 7.0))
        ode = steady_state_trough_ode(*p, dose * wt, weeks * 7.0)
        assert closed == pytest.approx(ode, rel=1e-3), (patient, dose, weeks)


def test_intervals_with_their_own_parameters_match_the_ode():
    from scipy.integrate import solve_ivp

    p = individual_parameters(70.0, 40.0, 0, (0.1, -0.1, 0.4))
    factor = np.array([1.3, 0.8, 1.1, 0.7])  # CL of each interval (inter-occasion variability)
    tau, t_inf, rate = 28.0, 2 / 24, 350.0 / (2 / 24)
    y = np.zeros(2)
    for f in factor:
        cl = float(p.cl) * f

        def rhs(_t, a, r, cl=cl):
            return [r - (cl + p.q) / p.v1 * a[0] + p.q / p.v2 * a[1],
                    p.q / p.v1 * a[0] - p.q / p.v2 * a[1]]

        for t0, t1, r in ((0.0, t_inf, rate), (t_inf, tau, 0.0)):
            y = solve_ivp(rhs, (t0, t1), y, args=(r,), method="DOP853", rtol=1e-11,
                          atol=1e-12).y[:, -1]
    got = trough_after_intervals(p.cl * factor, p.v1, p.q, p.v2, 350.0, tau, t_inf)
    assert float(got) == pytest.approx(y[0] / float(p.v1), rel=1e-8)
    # the same parameters in every interval: the steady state, once enough intervals have passed
    same = trough_after_intervals(np.full(24, p.cl), p.v1, p.q, p.v2, 350.0, tau, t_inf)
    assert float(same) == pytest.approx(float(steady_state_trough(*p, 350.0, tau)), rel=1e-6)


def test_closed_form_vectorises():
    rows = list(PATIENTS.values())
    wt = np.array([r[0] for r in rows])
    p = individual_parameters(wt, [r[1] for r in rows], [r[2] for r in rows],
                              np.array([r[3] for r in rows]))
    together = regimen_trough(p, wt, 5, 4)
    one_by_one = [float(regimen_trough(individual_parameters(*r), r[0], 5, 4)) for r in rows]
    np.testing.assert_allclose(together, one_by_one, rtol=1e-14)


def test_typical_parameters_and_troughs():
    # reference patient: 65 kg, albumin 4.1 g/dL = 41 g/L (5.42, 52.4, 2.26, 19.6 per kg x 65)
    p = individual_parameters(65.0, 41.0)
    np.testing.assert_allclose(p, [0.3523, 3.406, 0.1469, 1.274], rtol=1e-12)
    # albumin enters in g/dL: halving it raises CL by 2^0.855; ATI by 29.1 %
    assert float(individual_parameters(65.0, 20.5).cl / p.cl) == pytest.approx(2**0.855)
    assert float(individual_parameters(65.0, 41.0, 1).cl / p.cl) == pytest.approx(1.291)
    # clearance per kg falls with weight: lighter patients have lower troughs on mg/kg dosing
    light, heavy = (individual_parameters(w, 41.0) for w in (45.0, 90.0))
    assert light.cl / 45 > heavy.cl / 90
    assert regimen_trough(light, 45.0, 5, 8) < regimen_trough(heavy, 90.0, 5, 8)


def test_dose_escalation_doubles_the_trough(cohort):
    _, truth = cohort
    escalated = truth["dose_mg_kg"] == 10
    assert escalated.any()
    np.testing.assert_allclose(truth["gain"][escalated], 2.0, rtol=1e-12)


def test_shortening_gains_more_at_q4w_and_for_fast_clearers(cohort):
    _, truth = cohort
    p = individual_parameters(truth["weight_kg"], truth["albumin_g_l"], 0, truth["eta"])
    base = regimen_trough(p, truth["weight_kg"], 5, 8)
    q6 = regimen_trough(p, truth["weight_kg"], 5, 6) / base
    q4 = regimen_trough(p, truth["weight_kg"], 5, 4) / base
    assert np.all(q4 > q6) and np.all(q6 > 8 / 6)  # more than the dose-rate ratio
    gains = {}
    for eta_cl in (-0.6, 0.6):
        p = individual_parameters(70.0, 40.0, 0, (eta_cl, 0.0, 0.0))
        base = regimen_trough(p, 70.0, 5, 8)
        gains[eta_cl] = [float(regimen_trough(p, 70.0, 5, w) / base) for w in (6, 4)]
    assert gains[0.6][0] > gains[-0.6][0] and gains[0.6][1] > gains[-0.6][1]


def test_truth_is_consistent(cohort):
    frame, truth = cohort
    i = truth["regimen"] == 1  # 5 mg/kg q4w
    np.testing.assert_allclose(truth["gain"][i],
                               truth["tl_true_after"][i] / truth["tl_true_base"][i])
    # etas from the model's omega^2; residual error with the model's SD
    np.testing.assert_allclose(truth["eta"].var(axis=0), OMEGA2, rtol=0.1)
    z = (truth["tl_observed"] - truth["tl_true_base"]) / residual_sd(truth["tl_true_base"])
    assert abs(z.mean()) < 0.1 and z.std() == pytest.approx(1.0, abs=0.05)
    # the logit is the documented sum; the regimens are drawn about uniformly
    month_offsets = np.array(truth["params"]["tau_month"])
    expected = (0.2 + truth["a_centre"][truth["center"]][:, None] + month_offsets
                + 0.8 * np.log(truth["tl_true_base"] / 5)[:, None]
                + 0.6 * np.log(truth["gain"])[:, None] + truth["u_patient"][:, None])
    np.testing.assert_allclose(truth["logit"], expected)
    assert np.bincount(truth["regimen"]).min() > 900
    assert 40 <= truth["weight_kg"].min() and truth["weight_kg"].max() <= 120
    assert 25 <= truth["albumin_g_l"].min() and truth["albumin_g_l"].max() <= 50
    np.testing.assert_array_equal(frame["remission"].to_numpy(), truth["remission"].reshape(-1))


def test_remission_rate_matches_its_probabilities(cohort):
    frame, truth = cohort
    p = truth["p_remission"]
    se = np.sqrt((p * (1 - p)).sum()) / p.size
    assert abs(frame["remission"].mean() - p.mean()) < 4 * se
    for j, month in enumerate((6, 12)):
        rate = frame.loc[frame["month"] == month, "remission"].mean()
        assert abs(rate - p[:, j].mean()) < 4 * np.sqrt((p[:, j] * (1 - p[:, j])).sum()) / len(p)


def test_cohort_format(cohort):
    frame, truth = cohort
    assert list(frame.columns) == [
        "patient_id", "center", "month", "remission", "baseline_tl", "ati", "strategy", "disease",
        "weight_kg", "albumin_g_l", "dose_mg_kg", "interval_weeks"]
    assert len(frame) == 2 * 3000
    assert set(frame["month"]) == {6, 12} and set(frame["remission"]) == {0, 1}
    assert set(frame["ati"]) == {0} and set(frame["disease"]) == {"CD"}
    assert frame.groupby("patient_id").size().eq(2).all()
    strategy = frame.drop_duplicates("patient_id").set_index("patient_id")
    expected = np.where(strategy["dose_mg_kg"] > 5, "dose_escalation", "interval_shortening")
    np.testing.assert_array_equal(strategy["strategy"], expected)
    text = strategy["baseline_tl"]
    above = truth["tl_observed"] > 16
    assert above.any() and (text[above] == ">16").all()
    below = truth["tl_observed"] < 0.4
    assert (text[below] == "<0.4").all()
    plain = ~above & ~below
    np.testing.assert_allclose(text[plain].astype(float), truth["tl_observed"][plain], rtol=1e-5)
    assert (truth["tl_observed"] < 3).any()  # nobody excluded here


def test_pkmodel_reads_the_cohort(cohort):
    from pkmodel.data import read_cohort

    frame, truth = cohort
    frame = frame.iloc[: 2 * 500].astype(str)  # the first 500 patients
    read = read_cohort(frame, min_tl_ug_ml=None)
    assert read.patients["patient_id"].nunique() == 500
    default = read_cohort(frame)  # drops TL < 3, as pkmodel does
    kept = default.patients["patient_id"].nunique()
    assert kept == int((truth["tl_observed"][:500] >= 3).sum())


def test_same_seed_same_cohort():
    a, ta = simulate_exposure_cohort(50, 3, **TRUTH_ARGS, seed=5)
    b, tb = simulate_exposure_cohort(50, 3, **TRUTH_ARGS, seed=5)
    c, _ = simulate_exposure_cohort(50, 3, **TRUTH_ARGS, seed=6)
    assert a.equals(b) and np.array_equal(ta["eta"], tb["eta"]) and not a.equals(c)
