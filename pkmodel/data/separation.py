"""What the data alone cannot bound: remission separated by baseline TL, or not varying at all.

If, at some month, every patient who remits has a lower baseline TL than every patient who does not
(or the reverse), a logistic regression on TL has no finite maximum-likelihood slope: the steeper
the slope, the better the fit. A Bayesian fit still works, but the slope (and with it how sharp the
futility threshold is) is then set by the prior, not by the data. That must be said, not hidden.

Censored TL count by what is known: ``>16`` is at least 16, ``<0.4`` at most 0.4.

A month at which everyone remits (or no one does) is the extreme case: there is no contrast at
all, and the remission probability of that month is itself unbounded by the data
(:func:`constant_outcomes`); when it is so for the whole cohort, the TL slope is too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pkmodel.data.cohort import Cohort

__all__ = [
    "ConstantOutcome",
    "Separation",
    "constant_outcome_message",
    "constant_outcomes",
    "separation_message",
    "tl_separation",
]


@dataclass(frozen=True)
class Separation:
    """Remission separated by baseline TL at one month.

    Attributes
    ----------
    month : int
        The assessment month.
    kind : {"complete", "quasi-complete"}
        ``complete``: the two groups' TL do not overlap at all; ``quasi-complete``: they only
        meet at one TL value.
    remitters_lower : bool
        True when the remitters have the lower TL (the usual direction).
    remitters_tl_ug_ml : tuple of float
        Lowest and highest TL of the remitters (censored values at their limit).
    others_tl_ug_ml : tuple of float
        Lowest and highest TL of the patients who did not remit.
    n_remission, n_no_remission : int
        Patients in each group.
    """

    month: int
    kind: str
    remitters_lower: bool
    remitters_tl_ug_ml: tuple[float, float]
    others_tl_ug_ml: tuple[float, float]
    n_remission: int
    n_no_remission: int

    def __str__(self) -> str:
        low, high = ("remits", "does not") if self.remitters_lower else ("does not", "remits")
        lower, upper = ((self.remitters_tl_ug_ml, self.others_tl_ug_ml) if self.remitters_lower
                        else (self.others_tl_ug_ml, self.remitters_tl_ug_ml))
        return (f"month {self.month}: {self.kind} separation, every patient with TL <= "
                f"{lower[1]:g} µg/mL {low} and every patient with TL >= {upper[0]:g} {high} "
                f"({self.n_remission} remitting, {self.n_no_remission} not)")


def _bounds(tl: np.ndarray, cens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What is known of each true TL: [lower, upper]."""
    lower = np.where(cens == 1, 0.0, tl)  # '<limit': at most the limit
    upper = np.where(cens == -1, np.inf, tl)  # '>limit': at least the limit
    return lower, upper


def tl_separation(cohort: Cohort) -> list[Separation]:
    """Months at which remission is completely or quasi-completely separated by baseline TL.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort.

    Returns
    -------
    list of Separation
        One per separated month (empty when none is). A month where everyone or no one remits
        is not reported here: there is no TL contrast to separate.

    Examples
    --------
    >>> from pkmodel.data import load_ungar2019
    >>> tl_separation(load_ungar2019())
    []
    """
    data = cohort.data
    cens_all = (data["tl_cens"].to_numpy(dtype=int) if "tl_cens" in data.columns
                else np.zeros(len(data), dtype=int))
    out = []
    for month in sorted(data["month"].unique()):
        rows = (data["month"] == month).to_numpy()
        tl = data.loc[rows, "baseline_tl"].to_numpy(dtype=float)
        remission = data.loc[rows, "remission"].to_numpy(dtype=int) == 1
        if remission.all() or not remission.any():
            continue
        lower, upper = _bounds(tl, cens_all[rows])
        yes, no = remission, ~remission
        for remitters_lower, (a, b) in ((True, (yes, no)), (False, (no, yes))):
            top_of_low, bottom_of_high = upper[a].max(), lower[b].min()
            if top_of_low > bottom_of_high:
                continue
            kind = "complete" if top_of_low < bottom_of_high else "quasi-complete"
            out.append(Separation(
                month=int(month), kind=kind, remitters_lower=remitters_lower,
                remitters_tl_ug_ml=(float(tl[yes].min()), float(tl[yes].max())),
                others_tl_ug_ml=(float(tl[no].min()), float(tl[no].max())),
                n_remission=int(yes.sum()), n_no_remission=int(no.sum())))
            break
    return out


def separation_message(found: list[Separation]) -> str:
    """The warning text for separated months: what it means and what to do."""
    return ("remission is separated by baseline TL (" + "; ".join(str(s) for s in found) + "). "
            "The data then put no upper bound on the TL slope: its posterior, and how sharp the "
            "futility threshold is, are set by the slope prior (priors.slope_sd), not by the data. "
            "Report the slope as prior-driven, check how the thresholds move with slope_sd, or add "
            "patients with TL near the boundary")


@dataclass(frozen=True)
class ConstantOutcome:
    """Remission that does not vary: every assessment is a remission, or none is.

    Attributes
    ----------
    month : int or None
        The assessment month, or ``None`` for the whole cohort (all months).
    remission : {0, 1}
        The one outcome observed.
    n_assessments : int
        Assessments (patient-months) with that outcome.
    """

    month: int | None
    remission: int
    n_assessments: int

    def __str__(self) -> str:
        where = "in the whole cohort" if self.month is None else f"at month {self.month}"
        outcome = "a remission" if self.remission == 1 else "not a remission"
        return f"{where}, every one of the {self.n_assessments} assessments is {outcome}"


def constant_outcomes(cohort: Cohort) -> list[ConstantOutcome]:
    """Months (or the whole cohort) at which remission is all 1 or all 0.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort.

    Returns
    -------
    list of ConstantOutcome
        One entry with ``month=None`` when remission does not vary in the whole cohort (the months
        are then not listed one by one); otherwise one per month without variation; empty when
        every month has both outcomes.

    Examples
    --------
    >>> from pkmodel.data import load_ungar2019
    >>> constant_outcomes(load_ungar2019())
    []
    """
    data = cohort.data
    remission = data["remission"].to_numpy(dtype=int)
    if remission.min() == remission.max():
        return [ConstantOutcome(None, int(remission[0]), int(remission.size))]
    out = []
    for month, rows in data.groupby("month", sort=True):
        values = rows["remission"].to_numpy(dtype=int)
        if values.min() == values.max():
            out.append(ConstantOutcome(int(month), int(values[0]), int(values.size)))
    return out


def constant_outcome_message(found: list[ConstantOutcome]) -> str:
    """The warning text for outcomes that do not vary: what it means and what to do."""
    facts = "; ".join(str(c) for c in found)
    if found and found[0].month is None:
        return (f"remission does not vary ({facts}). With no patient of the other outcome the "
                "data cannot say how likely remission is, nor how it depends on TL: the remission "
                "probability (priors.intercept_sd) and the TL slope (priors.slope_sd) are "
                "identified only by their priors, and so is any futility threshold. Add patients "
                "with the other outcome, or report every estimate as prior-driven")
    return (f"remission does not vary at some months ({facts}). The data then put no bound on "
            "the remission probability at those months: it is identified only by the prior "
            "(priors.month_sd and priors.intercept_sd), pushed towards 1 (or 0) as far as the "
            "prior allows. Report those months' probabilities as prior-driven, or leave the "
            "months out")
