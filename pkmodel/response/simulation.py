"""Simulating cohorts from the remission model with known parameters.

Used for parameter-recovery and calibration checks, and for planning studies (how many patients
does a threshold of a given precision need?).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from pkmodel.data import Cohort, read_cohort
from pkmodel.response.design import REFERENCE_TL_UG_ML
from pkmodel.response.terms import log_odds

__all__ = ["TrueParameters", "simulate_cohort"]


@dataclass(frozen=True)
class TrueParameters:
    """Known parameter values for :func:`simulate_cohort` (logit scale; TL in log µg/mL)."""

    alpha: float = 0.3
    beta: float = -1.6
    b_slope_strategy: tuple[float, ...] = (0.0, 0.0)
    delta_strategy: tuple[float, ...] = (0.0, -0.3)  # first strategy is the reference
    tau_month: tuple[float, ...] = (0.0, 0.5)  # first month is the reference
    gamma: tuple[float, ...] = ()
    sigma_group: float = 0.4
    sigma_patient: float = 0.8
    mu_tl: float = 1.9
    sigma_tl: float = 0.55
    strategies: tuple[str, ...] = ("dose_escalation", "interval_shortening")
    months: tuple[int, ...] = (6, 12)


def simulate_cohort(n_patients: int, n_centers: int = 3, truth: TrueParameters | None = None,
                    *, upper_limit_ug_ml: float | None = 16.0, covariates: dict | None = None,
                    assay_cv: float | None = None,
                    random_seed: int | None = None,
                    return_effects: bool = False) -> Cohort | tuple[Cohort, dict]:
    """Simulate a cohort from the remission model.

    Parameters
    ----------
    n_patients, n_centers : int
        Size of the cohort; patients are spread evenly over centres.
    truth : TrueParameters, optional
        The parameter values (defaults give a falling remission curve).
    upper_limit_ug_ml : float or None, default 16
        TL above this are written as ``>limit`` (right-censored), as an assay would report them.
    covariates : dict of str to (mean, sd), optional
        Numeric covariates drawn normal; their effects are ``truth.gamma`` per SD in this order.
    assay_cv : float, optional
        Measured TL = true TL x log-normal error with this coefficient of variation; remission
        depends on the true TL.
    random_seed : int, optional
        The one seed.
    return_effects : bool
        Also return the drawn centre effects, patient effects and true TL.

    Returns
    -------
    Cohort, or (Cohort, dict)
    """
    t = truth or TrueParameters()
    rng = np.random.default_rng(random_seed)
    covariates = covariates or {}
    center = np.arange(n_patients) % n_centers
    a = rng.normal(0, t.sigma_group, n_centers)
    u = rng.normal(0, t.sigma_patient, n_patients)
    log_tl = rng.normal(t.mu_tl, t.sigma_tl, n_patients)
    strategy = rng.integers(len(t.strategies), size=n_patients)
    z = {name: rng.normal(m, s, n_patients) for name, (m, s) in covariates.items()}
    values = {"alpha": t.alpha, "a_group": a, "beta": t.beta,
              "b_slope_strategy": np.asarray(t.b_slope_strategy, dtype=float),
              "delta_strategy": np.asarray(t.delta_strategy[1:], dtype=float),
              "gamma": np.asarray(t.gamma, dtype=float),
              "tau_month": np.asarray(t.tau_month[1:], dtype=float)}
    zmat = np.column_stack([(z[name] - m) / s for name, (m, s) in covariates.items()]
                           ) if covariates else np.zeros((n_patients, 0))
    # the log-odds of every (patient, month) as the model's terms define them, plus u
    n_months = len(t.months)
    pi = np.repeat(np.arange(n_patients), n_months)
    eta = log_odds(values, {
        "group": center[pi], "strategy": strategy[pi], "z": zmat[pi],
        "month": np.tile(np.arange(n_months), n_patients),
        "log_tl": (log_tl - np.log(REFERENCE_TL_UG_ML))[pi]})
    eta = (eta + u[pi]).reshape(n_patients, n_months)
    rows = []
    tl = np.exp(log_tl)
    if assay_cv is not None:
        tl = tl * np.exp(rng.normal(0.0, np.sqrt(np.log1p(assay_cv**2)), n_patients))
    for i in range(n_patients):
        if upper_limit_ug_ml is not None and tl[i] > upper_limit_ug_ml:
            tl_text = f">{upper_limit_ug_ml:g}"
        else:
            tl_text = f"{tl[i]:.6g}"
        for j, month in enumerate(t.months):
            rows.append({
                "patient_id": f"S{i:05d}", "center": f"c{center[i]}", "month": month,
                "remission": int(rng.random() < expit(eta[i, j])),
                "baseline_tl": tl_text, "ati": 0, "strategy": t.strategies[strategy[i]],
                **{name: z[name][i] for name in z},
            })
    cohort = read_cohort(pd.DataFrame(rows), min_tl_ug_ml=None, name="simulated")
    if return_effects:
        return cohort, {"a_group": a, "u": u, "true_tl_ug_ml": np.exp(log_tl),
                        "measured_tl_ug_ml": tl}
    return cohort
