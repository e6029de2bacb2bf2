"""``recommend`` with a patient's TDM history (several troughs under their actual doses).

The patient's PK posterior given the history (pkmodel: posterior mode, then adaptive importance
resampling, ``estimate_individual``) is checked against an independent brute-force computation:
the reference re-codes the Fasanmade 2011 model (``tests/exposure_truth.py``, its own
interval-by-interval propagation with a kappa per dosing interval, checked against an ODE), draws
200,000 patients from the prior, weighs each by the likelihood of the four troughs, and takes the
weighted moments of the log gain and of the forecast trough.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from exposure_truth import (
    IOV_INTERVALS,
    OMEGA2,
    OMEGA2_IOV_CL,
    individual_parameters,
    residual_sd,
    trough_after_intervals,
)

import pkmodel
from pkmodel.cli.main import main
from pkmodel.errors import PKDataError, PredictionError
from pkmodel.pk import read_nonmem
from pkmodel.pk.estimation import estimate_individual
from pkmodel.pk.gain import history_log_gain
from pkmodel.pk.regimens import Regimen

WEIGHT, ALBUMIN_G_DL = 70.0, 4.0
DOSE_MG = 5 * WEIGHT  # 5 mg/kg every 8 weeks from day 0
TROUGH_INTERVALS = (2, 4, 6, 8)  # troughs at the end of these intervals (before doses 3, 5...)
TROUGHS = (3.1, 2.2, 4.0, 2.6)  # µg/mL
REGIMENS = {"5 mg/kg q4w": (5, 4), "10 mg/kg q8w": (10, 8), "5 mg/kg q6w": (5, 6)}


def history_frame(troughs=TROUGHS, intervals=TROUGH_INTERVALS, patient="P1", blq_last=False):
    """A NONMEM-format history: 2-hour infusions (RATE in mg/day) every 56 days, the troughs
    just before the doses (the last one's dose left out)."""
    rows = []
    for k in range(max(intervals)):
        rows.append({"ID": patient, "TIME": 56.0 * k, "AMT": DOSE_MG, "RATE": DOSE_MG * 12,
                     "DV": ".", "EVID": 1, "MDV": 1, "BLQ": 0})
    for j, (k, tl) in enumerate(zip(intervals, troughs, strict=True)):
        blq = int(blq_last and j == len(troughs) - 1)
        rows.append({"ID": patient, "TIME": 56.0 * k, "AMT": ".", "RATE": ".",
                     "DV": 0.4 if blq else tl, "EVID": 0, "MDV": 0, "BLQ": blq})
    frame = pd.DataFrame(rows).sort_values(["TIME", "EVID"], ascending=[True, True],
                                           kind="stable")
    frame["WT"], frame["ALB"], frame["IMM"], frame["ATI"] = WEIGHT, ALBUMIN_G_DL, 0, 0
    return frame.reset_index(drop=True)


def reference(troughs=TROUGHS, intervals=TROUGH_INTERVALS, n=200_000, seed=5):
    """Weighted moments of log gain and log forecast trough under each regimen."""
    rng = np.random.default_rng(seed)
    eta = rng.standard_normal((n, 3)) * np.sqrt(OMEGA2)
    p = individual_parameters(WEIGHT, ALBUMIN_G_DL * 10, 0, eta)
    history_kappa = rng.standard_normal((n, max(intervals))) * np.sqrt(OMEGA2_IOV_CL)

    def trough(kappa, dose_mg, weeks):
        return trough_after_intervals(p.cl[:, None] * np.exp(kappa), p.v1[:, None],
                                      p.q[:, None], p.v2[:, None], dose_mg, weeks * 7.0)

    log_w = np.zeros(n)
    for k, tl in zip(intervals, troughs, strict=True):
        pred = trough(history_kappa[:, :k], DOSE_MG, 8)
        sd = residual_sd(pred)
        log_w += -0.5 * ((tl - pred) / sd) ** 2 - np.log(sd)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    # the gain's baseline: its last interval is the last trough's occasion, the others new
    before = rng.standard_normal((n, IOV_INTERVALS)) * np.sqrt(OMEGA2_IOV_CL)
    before[:, -1] = history_kappa[:, max(intervals) - 1]
    after = rng.standard_normal((n, IOV_INTERVALS)) * np.sqrt(OMEGA2_IOV_CL)
    base = trough(before, DOSE_MG, 8)
    out = {}
    for label, (dose, weeks) in REGIMENS.items():
        log_after = np.log(trough(after, dose * WEIGHT, weeks))
        g = log_after - np.log(base)
        out[label] = [(float(w @ x), float(np.sqrt(w @ (x - w @ x) ** 2))) for x in (g, log_after)]
    return out, float(1 / np.sum(w * w))


def test_the_history_posterior_equals_an_independent_brute_force_computation():
    subject = read_nonmem(history_frame())["P1"]
    est = estimate_individual("fasanmade2011", subject.covariates_for_estimation,
                              subject.schedule, subject.observations, draws=2000,
                              random_seed=3)
    got = history_log_gain(est, [Regimen(d, w) for d, w in REGIMENS.values()],
                           baseline=Regimen(5, 8), random_seed=3)
    ref, ess = reference()
    assert ess > 1000
    for r, label in enumerate(REGIMENS):
        (g_mean, g_sd), (a_mean, a_sd) = ref[label]
        assert got.mean[0, r] == pytest.approx(g_mean, abs=0.05), label
        assert got.sd[0, r] == pytest.approx(g_sd, rel=0.15), label
        assert got.log_after_mean[0, r] == pytest.approx(a_mean, abs=0.05), label
        assert got.log_after_sd[0, r] == pytest.approx(a_sd, rel=0.15), label


def _rows(rec, month=12):
    return {r["regimen"]: r for r in rec["regimens"] if r["month"] == month}


def _cli(capsys, *argv):
    code = main(["recommend", *map(str, argv), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_recommend_takes_the_history_from_the_command_line(exposure_fit, tmp_path, capsys):
    path = tmp_path / "history.csv"
    history_frame().to_csv(path, index=False)
    rec = _cli(capsys, exposure_fit, "--history", path)  # weight and albumin from WT, ALB
    s = rec["settings"]
    assert s["tl_ug_ml"] == TROUGHS[-1] and s["tl_cens"] == 0  # the last trough
    assert s["weight_kg"] == WEIGHT
    assert s["history"]["n_troughs"] == 4 and s["history"]["n_doses"] == 8
    assert s["history"]["baseline_trough_day"] == 56.0 * TROUGH_INTERVALS[-1]
    assert "albumin_g_dl" not in s["stated_reference_values"]  # the history's ALB is used
    assert any("4 trough(s) and 8 dose(s)" in n for n in rec["notes"])
    # four troughs inform the forecast more than the last one alone
    single = _cli(capsys, exposure_fit, "--tl", TROUGHS[-1], "--weight", WEIGHT,
                  "--albumin-g-l", ALBUMIN_G_DL * 10, "--covariate", "immunomodulator=0")
    for label in REGIMENS:
        h, one = _rows(rec)[label], _rows(single)[label]
        assert (h["trough_upper"] / h["trough_lower"]
                < 0.9 * one["trough_upper"] / one["trough_lower"]), label
    # the history's forecast is the reference's (lognormal quantiles of its moments)
    ref, _ = reference()
    for label in REGIMENS:
        _, (a_mean, _) = ref[label]
        assert np.log(_rows(rec)[label]["trough_ug_ml"]) == pytest.approx(a_mean, abs=0.06)


def test_a_single_trough_at_steady_state_gives_what_the_trough_alone_gives(exposure_fit):
    fit = pkmodel.load_fit(exposure_fit, warn=False)
    frame = history_frame(troughs=(3.5,), intervals=(20,))  # 20 doses q8w: steady state
    common = {"regimens": list(REGIMENS), "covariates": {"immunomodulator": 0},
              "albumin_g_l": ALBUMIN_G_DL * 10, "weight_kg": WEIGHT}
    with_history = fit.recommend(history=frame, **common)
    alone = fit.recommend(tl_ug_ml=3.5, **common)
    a = with_history.table.set_index(["regimen", "month"])
    b = alone.table.set_index(["regimen", "month"])
    for col, tol in (("median", 0.03), ("p_reach", 0.05)):
        np.testing.assert_allclose(a[col], b[col], atol=tol, err_msg=col)
    np.testing.assert_allclose(np.log(a["trough_ug_ml"]), np.log(b["trough_ug_ml"]), atol=0.06)


def test_a_last_trough_below_the_limit_is_latent(exposure_fit):
    fit = pkmodel.load_fit(exposure_fit, warn=False)
    rec = fit.recommend(history=history_frame(blq_last=True), regimens=list(REGIMENS))
    assert rec.settings["tl_ug_ml"] == 0.4 and rec.settings["tl_cens"] == 1
    assert any("below the assay limit 0.4" in n for n in rec.notes)


def test_a_history_that_cannot_serve_is_refused_before_any_work(exposure_fit, tmp_path,
                                                                capsys):
    fit = pkmodel.load_fit(exposure_fit, warn=False)
    two = pd.concat([history_frame(), history_frame(patient="P2")])
    with pytest.raises(PKDataError, match=r"the history has 2 patients.*history_id"):
        fit.recommend(history=two)
    assert fit.recommend(history=two, history_id="P2").settings["history"]["id"] == "P2"
    no_trough = history_frame()
    no_trough = no_trough[no_trough["EVID"] == 1]
    with pytest.raises(PKDataError, match="column 'DV': patient 'P1' has no trough"):
        fit.recommend(history=no_trough)
    early = history_frame()  # a trough 10 days before the first dose
    early.loc[len(early)] = {**early.iloc[-1].to_dict(), "TIME": 0.0}
    early.loc[early["EVID"] == 1, "TIME"] += 10.0
    early = early.sort_values(["TIME", "EVID"], kind="stable")
    with pytest.raises(PKDataError, match=r"row index 12, column 'TIME'.*before its first dose"):
        fit.recommend(history=early)
    with pytest.raises(PredictionError, match="give history= too"):
        fit.recommend(tl_ug_ml=3.0, weight_kg=70.0, history_id="P1")
    # on the command line: a clear message, nothing written
    path = tmp_path / "two.csv"
    two.to_csv(path, index=False)
    code = main(["recommend", str(exposure_fit), "--history", str(path)])
    err = capsys.readouterr().err
    assert code != 0 and "--history-id" in err and "Traceback" not in err
