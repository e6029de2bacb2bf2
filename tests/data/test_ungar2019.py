"""The shipped reconstructed cohort reproduces every published figure (Ungar et al. 2019)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

import pkmodel

PUBLISHED_TL = {  # (month, outcome): (median, Q1, Q3), µg/mL
    (6, "remission"): (4.7, 3.6, 8.1),
    (6, "active"): (8.7, 5.9, 16.0),
    (12, "remission"): (4.6, 3.6, 8.0),
    (12, "active"): (8.7, 5.3, 16.0),
}


@pytest.fixture(scope="module")
def cohort():
    return pkmodel.load_ungar2019()


def test_is_labelled_reconstructed(cohort):
    assert any("RECONSTRUCTED" in n and "Not patient data" in n for n in cohort.notes)
    assert "RECONSTRUCTED" in str(cohort.describe())
    assert (cohort.data["data_origin"] == "reconstructed_synthetic").all()
    assert "reconstructed" in cohort.source


def test_counts_and_remission_rates(cohort):
    assert cohort.n_patients == 48
    assert cohort.centers == ("france", "israel")
    rem = cohort.describe().remission.set_index("month")
    assert rem.loc[6, "remitters"] == 23 and round(100 * rem.loc[6, "remission_rate"]) == 49
    assert rem.loc[12, "remitters"] == 29 and round(100 * rem.loc[12, "remission_rate"]) == 60
    assert cohort.dropped["missing_remission_rows"] == 1  # one patient missed the 6-month visit


def test_inclusion_criteria(cohort):
    assert (cohort.data["ati"] == 0).all()
    assert (cohort.data["baseline_tl"] >= 3).all()
    above = cohort.patients[cohort.patients["tl_cens"] == -1]
    assert len(above) >= 7 and (above["baseline_tl"] == 16).all()
    # "above about 9 µg/mL remission was very unlikely": no remitter above 12 µg/mL
    assert cohort.data.loc[cohort.data.remission == 1, "baseline_tl"].max() <= 12


def test_tl_medians_and_iqr_by_outcome(cohort):
    table = cohort.describe().tl_by_outcome.set_index(["month", "outcome"])
    for key, (median, q1, q3) in PUBLISHED_TL.items():
        row = table.loc[key]
        assert round(row["tl_median_ug_ml"], 1) == median, key
        assert round(row["tl_q1_ug_ml"], 1) == q1, key
        assert round(row["tl_q3_ug_ml"], 1) == q3, key


def test_mann_whitney_p_values_as_published(cohort):
    for month, published in ((6, 0.001), (12, 0.005)):
        d = cohort.data[cohort.data.month == month]
        p = stats.mannwhitneyu(d.baseline_tl[d.remission == 0], d.baseline_tl[d.remission == 1],
                               alternative="two-sided").pvalue
        assert f"{p:.0e}" == f"{published:.0e}", (month, p)


def test_classical_analysis_against_scipy_and_sklearn(cohort):
    result = pkmodel.classical_analysis(cohort).table.set_index("month")
    for month in (6, 12):
        d = cohort.data[cohort.data.month == month]
        active = (d.remission == 0).astype(int).to_numpy()
        tl = d.baseline_tl.to_numpy()
        row = result.loc[month]
        test = stats.mannwhitneyu(tl[active == 1], tl[active == 0], alternative="two-sided")
        assert row.p_value == pytest.approx(test.pvalue, rel=1e-12)
        assert row.auc_nonremission == pytest.approx(roc_auc_score(active, tl), abs=1e-12)
        fpr, tpr, thr = roc_curve(active, tl, drop_intermediate=False)
        j = tpr - fpr
        assert row.sensitivity - (1 - row.specificity) == pytest.approx(j.max(), abs=1e-12)
        best = thr[np.isclose(j, j.max())]
        assert row.youden_cutoff_ug_ml == pytest.approx(best[np.isfinite(best)].min())
        assert row.auc_ci_lower < row.auc_nonremission < row.auc_ci_upper
    # near the paper: significant at both months and a 12-month cut-off near 9 µg/mL
    assert (result.p_value < 0.01).all()
    assert 8.5 <= result.loc[12, "youden_cutoff_ug_ml"] <= 9.5
