"""The source study's own frequentist analysis: Mann-Whitney U, ROC AUC and the Youden cut-off.

This is the baseline the Bayesian model is compared with. TL values censored above the assay
limit enter at the limit; being the largest values, their ranks are tied at the top, which is what
a rank test on the reported values does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkmodel.data.cohort import Cohort

__all__ = ["ClassicalResult", "classical_analysis", "roc_curve_tl", "youden_cutoff"]


@dataclass(frozen=True)
class ClassicalResult:
    """Per-month results of :func:`classical_analysis`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per month with columns ``month, n_remission, n_active, tl_median_remission,
        tl_median_active, mannwhitney_u, p_value, auc_nonremission, auc_ci_lower, auc_ci_upper,
        youden_cutoff_ug_ml, sensitivity, specificity``. AUC is for predicting non-remission from
        a higher TL (0.5 = no discrimination); its 95% interval is the Hanley-McNeil one.
        The cut-off classifies TL >= cut-off as "intensification will fail"; sensitivity and
        specificity are for that rule.
    not_computed : dict
        Month -> why its statistics could not be computed (they are NaN in ``table``): at a
        month where every patient remits, or none does, there is no contrast to test.
    """

    table: pd.DataFrame
    not_computed: Mapping[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {"classical": self.table.to_dict(orient="records"),
                "classical_not_computed": {str(m): why for m, why in self.not_computed.items()}}

    def __str__(self) -> str:
        t = self.table
        lines = ["Classical analysis (as in the source study; TL in µg/mL)"]
        for r in t.itertuples():
            if r.month in self.not_computed:
                lines.append(f"  month {r.month}: cannot be computed: "
                             f"{self.not_computed[r.month]}")
                continue
            lines.append(
                f"  month {r.month}: remission n={r.n_remission} median {r.tl_median_remission:.1f}"
                f" vs active n={r.n_active} median {r.tl_median_active:.1f}; Mann-Whitney "
                f"U={r.mannwhitney_u:.1f}, p={r.p_value:.2g}; AUC (non-remission) "
                f"{r.auc_nonremission:.2f} [{r.auc_ci_lower:.2f}, {r.auc_ci_upper:.2f}]; "
                f"Youden cut-off TL >= {r.youden_cutoff_ug_ml:.1f} (sens {r.sensitivity:.2f}, "
                f"spec {r.specificity:.2f})"
            )
        return "\n".join(lines)


def roc_curve_tl(tl: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of the rule "TL >= c predicts non-remission".

    Parameters
    ----------
    tl : array of float
        Baseline TL (µg/mL).
    active : array of {0, 1}
        1 for no remission (the event to predict), 0 for remission.

    Returns
    -------
    thresholds, tpr, fpr : arrays
        Thresholds in decreasing order (the first is +inf, nobody flagged), with the true- and
        false-positive rates of ``TL >= threshold``.
    """
    tl = np.asarray(tl, dtype=float)
    active = np.asarray(active, dtype=int)
    thresholds = np.concatenate([[np.inf], np.unique(tl)[::-1]])
    flagged = tl[None, :] >= thresholds[:, None]
    tpr = (flagged & (active == 1)).sum(axis=1) / max((active == 1).sum(), 1)
    fpr = (flagged & (active == 0)).sum(axis=1) / max((active == 0).sum(), 1)
    return thresholds, tpr, fpr


def youden_cutoff(tl: np.ndarray, active: np.ndarray) -> tuple[float, float, float]:
    """The TL cut-off maximising Youden's J = sensitivity + specificity - 1.

    Ties in J are broken towards the lower cut-off. Returns ``(cutoff, sensitivity, specificity)``.
    """
    thresholds, tpr, fpr = roc_curve_tl(tl, active)
    j = tpr - fpr
    best = np.flatnonzero(np.isclose(j, j.max()))[-1]  # thresholds decrease: last = lowest
    return float(thresholds[best]), float(tpr[best]), float(1 - fpr[best])


def _hanley_mcneil_ci(
    auc: float, n_pos: int, n_neg: int, level: float = 0.95
) -> tuple[float, float]:
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    from scipy.special import ndtri  # scipy.stats is loaded only by the tests that need it

    z = ndtri(0.5 + level / 2)
    half = z * np.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def classical_analysis(cohort: Cohort) -> ClassicalResult:
    """Reproduce the source study's analysis for each assessment month.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort.

    Returns
    -------
    ClassicalResult
        Mann-Whitney U test (two-sided) of baseline TL between remitters and non-remitters, the
        ROC AUC of TL for non-remission, and the Youden-optimal TL cut-off, per month. A month
        at which every patient remits, or none does, has NaN statistics and its reason in
        ``not_computed``.

    Examples
    --------
    >>> import pkmodel
    >>> res = pkmodel.classical_analysis(pkmodel.load_ungar2019())
    >>> bool((res.table["p_value"] < 0.01).all())
    True
    """
    rows = []
    not_computed: dict[int, str] = {}
    for month, g in cohort.data.groupby("month"):
        tl = g["baseline_tl"].to_numpy(dtype=float)
        active = (g["remission"].to_numpy() == 0).astype(int)
        tl_r, tl_a = tl[active == 0], tl[active == 1]
        row = {"month": int(month), "n_remission": len(tl_r), "n_active": len(tl_a),
               "tl_median_remission": float(np.median(tl_r)) if len(tl_r) else np.nan,
               "tl_median_active": float(np.median(tl_a)) if len(tl_a) else np.nan}
        if len(tl_r) == 0 or len(tl_a) == 0:
            everyone, none = (("remitted", "non-remitters") if len(tl_a) == 0
                              else ("did not remit", "remitters"))
            not_computed[int(month)] = (
                f"all {len(tl)} assessed patients {everyone}, and the Mann-Whitney test, the ROC "
                "AUC and the Youden cut-off compare the TL of remitters with that of "
                f"non-remitters: there are no {none}")
            row.update(mannwhitney_u=np.nan, p_value=np.nan, auc_nonremission=np.nan,
                       auc_ci_lower=np.nan, auc_ci_upper=np.nan, youden_cutoff_ug_ml=np.nan,
                       sensitivity=np.nan, specificity=np.nan)
            rows.append(row)
            continue
        from scipy import stats  # not at import: `import pkmodel` stays quick

        test = stats.mannwhitneyu(tl_a, tl_r, alternative="two-sided")
        auc = float(test.statistic) / (len(tl_a) * len(tl_r))
        lo, hi = _hanley_mcneil_ci(auc, len(tl_a), len(tl_r))
        cut, sens, spec = youden_cutoff(tl, active)
        row.update(mannwhitney_u=float(test.statistic), p_value=float(test.pvalue),
                   auc_nonremission=auc, auc_ci_lower=lo, auc_ci_upper=hi,
                   youden_cutoff_ug_ml=cut, sensitivity=sens, specificity=spec)
        rows.append(row)
    return ClassicalResult(pd.DataFrame(rows), not_computed)
