"""Cohorts with known truth for testing exposure-driven remission models.

An independent reference: this module re-codes the Fasanmade et al. 2011 population PK model of
infliximab in Crohn's disease from its published description and imports nothing from pkmodel
(neither :mod:`pkmodel.pk` nor the remission simulator), so that a model built on pkmodel's PK
code can be checked against a truth that does not share its code.

PK model
--------
Fasanmade AA, Adedokun OJ, Blank M, Zhou H, Davis HM. Clin Ther 2011;33(7):946-964, the
combined-population (REACH + ACCENT I) final model, with the numbers of the NONMEM control stream
of Kim et al. 2025 (CPT Pharmacometrics Syst Pharmacol 14:1682-1694, Data S1 model 6), as recorded
in pkmodel's ``FASANMADE_2011_CD`` and docs/pk.md. Per kilogram, reference 65 kg and albumin
4.1 g/dL::

    CL (mL/kg/day) = 5.42 (WT/65)^-0.313 (ALB/4.1)^-0.855 (1 + 0.291 ATI) (1 - 0.137 IMM) e^eta_CL
    V1 (mL/kg)     = 52.4 (WT/65)^-0.233 e^eta_V1
    V2 (mL/kg)     = 19.6 (WT/65)^-0.588 e^eta_V2
    Q  (mL/kg/day) = 2.26

with ``eta ~ N(0, diag(0.0942, 0.0159, 0.306))`` (CL, V1, V2) and a combined residual error, normal
on the concentration scale, ``sd = sqrt(0.371^2 + (0.292 C)^2)`` µg/mL. Two compartments,
zero-order infusion into and linear elimination from the central one. ALB is in g/dL; this
module takes albumin in g/L (as the cohort format does) and divides by 10.

Inter-occasion variability on CL, ``kappa ~ N(0, 0.0335)`` per dosing interval (Kim et al. 2025 Data
S1 model 6, as recorded in pkmodel's ``FASANMADE_2011_CD``), is optional here: with it, each
interval has ``CL exp(eta_CL + kappa_k)`` and a trough depends on the kappas of the intervals before
it (:func:`trough_after_intervals`: the two-compartment state propagated interval by interval
from empty compartments with the matrix exponential by Sylvester's formula, its own code).

Steady-state troughs are computed two ways: :func:`steady_state_trough` (closed form, vectorised:
the two exponentials of the unit impulse response, each summed over all past doses as a geometric
series) and :func:`steady_state_trough_ode` (:func:`scipy.integrate.solve_ivp` over successive
dosing intervals until the trough stops changing). The tests check one against the other.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp
from scipy.special import expit

__all__ = [
    "ETA_NAMES",
    "IOV_INTERVALS",
    "OMEGA2",
    "OMEGA2_IOV_CL",
    "PK_REFERENCE",
    "REFERENCE_TL_UG_ML",
    "RESIDUAL_ADDITIVE_UG_ML",
    "RESIDUAL_PROPORTIONAL",
    "PKParams",
    "individual_parameters",
    "regimen_trough",
    "residual_sd",
    "simulate_exposure_cohort",
    "steady_state_trough",
    "steady_state_trough_ode",
    "trough_after_intervals",
]

#: Per-kilogram typical values (L/kg/day or L/kg, i.e. mL/kg/1000) and per-kg weight exponents at
#: the reference weight, with the reference covariates (Fasanmade 2011, combined model).
PK_REFERENCE: dict[str, float] = {
    "cl_per_kg": 5.42e-3,  # L/kg/day
    "v1_per_kg": 52.4e-3,  # L/kg
    "q_per_kg": 2.26e-3,  # L/kg/day
    "v2_per_kg": 19.6e-3,  # L/kg
    "cl_weight_exponent": -0.313,  # per kg: total CL grows as WT^0.687
    "v1_weight_exponent": -0.233,
    "v2_weight_exponent": -0.588,
    "q_weight_exponent": 0.0,
    "cl_albumin_exponent": -0.855,
    "cl_ati_effect": 0.291,  # CL x (1 + 0.291 ATI)
    "cl_immunomodulator_effect": -0.137,  # CL x (1 - 0.137 IMM)
    "weight_reference_kg": 65.0,
    "albumin_reference_g_dl": 4.1,
}

#: Names of the random effects, in the order of the last axis of ``eta``.
ETA_NAMES: tuple[str, str, str] = ("cl", "v1", "v2")

#: Between-subject variances of ``eta`` (CL, V1, V2).
OMEGA2: np.ndarray = np.array([0.0942, 0.0159, 0.306])

#: Inter-occasion variance of CL (each dosing interval its own kappa).
OMEGA2_IOV_CL: float = 0.0335

#: Dosing intervals followed to a trough under inter-occasion variability, from empty
#: compartments: the doses before the first would add under 2e-4 of the trough (16 intervals of
#: four weeks or more are at least 12.8 terminal half-lives of five weeks or less).
IOV_INTERVALS: int = 16

#: Residual error: proportional SD (fraction) and additive SD (µg/mL).
RESIDUAL_PROPORTIONAL: float = 0.292
RESIDUAL_ADDITIVE_UG_ML: float = 0.371

#: The trough that centres the exposure term of the remission model, µg/mL.
REFERENCE_TL_UG_ML: float = 5.0


class PKParams(NamedTuple):
    """Individual two-compartment parameters (arrays that broadcast together).

    Attributes
    ----------
    cl : numpy.ndarray
        Clearance, L/day.
    v1 : numpy.ndarray
        Central volume, L.
    q : numpy.ndarray
        Inter-compartmental clearance, L/day.
    v2 : numpy.ndarray
        Peripheral volume, L.
    """

    cl: np.ndarray
    v1: np.ndarray
    q: np.ndarray
    v2: np.ndarray


def individual_parameters(weight_kg, albumin_g_l, ati=0, eta=None, *,
                          immunomodulator=0) -> PKParams:
    """Individual Fasanmade 2011 parameters from covariates and random effects.

    Parameters
    ----------
    weight_kg : array_like
        Body weight, kg.
    albumin_g_l : array_like
        Serum albumin in g/L (divided by 10 here: the model uses g/dL).
    ati : array_like, default 0
        Antibodies to infliximab, 0 or 1.
    eta : array_like, optional
        Random effects, last axis of length 3 in the order :data:`ETA_NAMES` (CL, V1, V2); zeros
        (the covariate-typical patient) if omitted.
    immunomodulator : array_like, default 0
        Concomitant immunomodulator, 0 or 1 (the model's reference is 0).

    Returns
    -------
    PKParams
        CL and Q in L/day, V1 and V2 in L, broadcast over the inputs.

    Examples
    --------
    >>> p = individual_parameters(65.0, 41.0)
    >>> round(float(p.cl), 4), round(float(p.v1), 3)
    (0.3523, 3.406)
    """
    r = PK_REFERENCE
    wt = np.asarray(weight_kg, dtype=float)
    alb_g_dl = np.asarray(albumin_g_l, dtype=float) / 10.0
    ati = np.asarray(ati, dtype=float)
    imm = np.asarray(immunomodulator, dtype=float)
    if eta is None:
        eta = np.zeros(3)
    eta = np.asarray(eta, dtype=float)
    if eta.shape[-1:] != (3,):
        raise ValueError(f"eta needs a last axis of length 3 (CL, V1, V2); got shape {eta.shape}")
    w = wt / r["weight_reference_kg"]
    cl = (r["cl_per_kg"] * wt * w ** r["cl_weight_exponent"]
          * (alb_g_dl / r["albumin_reference_g_dl"]) ** r["cl_albumin_exponent"]
          * (1.0 + r["cl_ati_effect"] * ati) * (1.0 + r["cl_immunomodulator_effect"] * imm)
          * np.exp(eta[..., 0]))
    v1 = r["v1_per_kg"] * wt * w ** r["v1_weight_exponent"] * np.exp(eta[..., 1])
    v2 = r["v2_per_kg"] * wt * w ** r["v2_weight_exponent"] * np.exp(eta[..., 2])
    q = r["q_per_kg"] * wt * w ** r["q_weight_exponent"]
    cl, v1, q, v2 = np.broadcast_arrays(cl, v1, q, v2)
    return PKParams(cl, v1, q, v2)


def _exponents(cl, v1, q, v2):
    """Disposition rate constants (alpha > beta, 1/day) and impulse-response weights (1/L)."""
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    root = np.sqrt(s * s - 4.0 * k10 * k21)
    alpha = 0.5 * (s + root)
    beta = k10 * k21 / alpha  # = 0.5 * (s - root), without the cancellation
    # central concentration after a unit bolus: (A e^-alpha t + B e^-beta t) / V1
    a = (alpha - k21) / (alpha - beta) / v1
    b = (k21 - beta) / (alpha - beta) / v1
    return alpha, beta, a, b


def steady_state_trough(cl, v1, q, v2, dose_mg, interval_days, infusion_days=2 / 24):
    """Steady-state trough of a two-compartment model under repeated infusions: closed form.

    The concentration just before the next dose, once every earlier dose has been given at the
    same interval. For each disposition exponential ``lambda`` (weight ``c`` per unit dose), an
    infusion of rate ``R = dose / T`` over ``T`` days leaves ``R c (1 - e^-lambda T) / lambda``
    at the end of the infusion, decaying as ``e^-lambda (t - T)``; summing over all past doses
    multiplies by ``1 / (1 - e^-lambda tau)``.

    Parameters
    ----------
    cl, v1, q, v2 : array_like
        Clearance (L/day), central volume (L), inter-compartmental clearance (L/day),
        peripheral volume (L).
    dose_mg : array_like
        Dose per infusion, mg.
    interval_days : array_like
        Dosing interval, days.
    infusion_days : array_like, default 2/24
        Infusion duration, days (2 h).

    Returns
    -------
    numpy.ndarray
        Trough concentration, µg/mL (= mg/L), broadcast over the inputs.
    """
    cl, v1, q, v2, dose, tau, t_inf = (np.asarray(x, dtype=float) for x in
                                       (cl, v1, q, v2, dose_mg, interval_days, infusion_days))
    alpha, beta, a, b = _exponents(cl, v1, q, v2)
    rate = dose / t_inf
    out = 0.0
    for lam, c in ((alpha, a), (beta, b)):
        out = out + (rate * c * -np.expm1(-lam * t_inf) / lam * np.exp(-lam * (tau - t_inf))
                     / -np.expm1(-lam * tau))
    return out


def _expm_terms(cl, v1, q, v2, times):
    """exp(A t) and A^-1 (exp(A t) - I) at each of ``times`` for the two-compartment amounts'
    matrix ``A = [[-(CL + Q)/V1, Q/V2], [Q/V1, -Q/V2]]``, by Sylvester's formula on its
    eigenvalues ``-alpha``, ``-beta``: per time, a pair of tuples of the four entries
    (row-major), arrays like ``cl``."""
    alpha, beta, _, _ = _exponents(cl, v1, q, v2)
    a = (-(cl + q) / v1, q / v2, q / v1, -q / v2)
    eye = (1.0, 0.0, 0.0, 1.0)
    # the projections on the eigenvalues -alpha and -beta
    first = [(x + beta * i) / (beta - alpha) for x, i in zip(a, eye, strict=True)]
    second = [(x + alpha * i) / (alpha - beta) for x, i in zip(a, eye, strict=True)]
    out = []
    for t in times:
        ea, eb = np.exp(-alpha * t), np.exp(-beta * t)
        ia, ib = -np.expm1(-alpha * t) / alpha, -np.expm1(-beta * t) / beta  # over 0..t
        out.append((tuple(ea * f + eb * g for f, g in zip(first, second, strict=True)),
                    tuple(ia * f + ib * g for f, g in zip(first, second, strict=True))))
    return out


def trough_after_intervals(cl, v1, q, v2, dose_mg, interval_days, infusion_days=2 / 24):
    """The trough at the end of the last of several dosing intervals, each with its own
    parameters (inter-occasion variability), from empty compartments before the first dose.

    Parameters
    ----------
    cl, v1, q, v2 : array_like
        Parameters with the interval axis last, shape ``S + (n_intervals,)``.
    dose_mg : array_like
        Dose per infusion, mg (broadcasts against ``S``).
    interval_days, infusion_days : float
        Dosing interval and infusion duration, days.

    Returns
    -------
    numpy.ndarray
        Trough, µg/mL, shape ``S``.
    """
    # the interval axis first, each interval's parameters contiguous
    cl, v1, q, v2 = (np.ascontiguousarray(np.moveaxis(x, -1, 0)) for x in np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (cl, v1, q, v2))))
    rate = np.asarray(dose_mg, dtype=float) / infusion_days
    x1 = x2 = np.zeros(cl.shape[1:])
    for k in range(cl.shape[0]):
        ((e11, e12, e21, e22), (i11, _, i21, _)), ((d11, d12, d21, d22), _) = _expm_terms(
            cl[k], v1[k], q[k], v2[k], (infusion_days, interval_days - infusion_days))
        x1, x2 = e11 * x1 + e12 * x2 + rate * i11, e21 * x1 + e22 * x2 + rate * i21
        x1, x2 = d11 * x1 + d12 * x2, d21 * x1 + d22 * x2
    return x1 / v1[-1]


def steady_state_trough_ode(cl, v1, q, v2, dose_mg, interval_days, infusion_days=2 / 24, *,
                            rtol=1e-10, max_intervals=1000):
    """Steady-state trough by numerical integration of the two-compartment ODE (one patient).

    Integrates ``dA1/dt = R(t) - (CL + Q)/V1 A1 + Q/V2 A2``, ``dA2/dt = Q/V1 A1 - Q/V2 A2``
    (amounts in mg; ``R`` the infusion rate during the first ``infusion_days`` of each interval)
    with :func:`scipy.integrate.solve_ivp`, one dosing interval after another from empty
    compartments, until the trough changes by less than ``rtol`` relative between intervals.

    Parameters
    ----------
    cl, v1, q, v2 : float
        Clearance (L/day), central volume (L), inter-compartmental clearance (L/day),
        peripheral volume (L).
    dose_mg : float
        Dose per infusion, mg.
    interval_days : float
        Dosing interval, days.
    infusion_days : float, default 2/24
        Infusion duration, days.
    rtol : float, default 1e-10
        Convergence criterion on the trough, and the integrator's relative tolerance / 100.
    max_intervals : int, default 1000
        Give up (RuntimeError) after this many intervals.

    Returns
    -------
    float
        Trough concentration, µg/mL.
    """
    cl, v1, q, v2 = float(cl), float(v1), float(q), float(v2)
    tau, t_inf = float(interval_days), float(infusion_days)
    rate = float(dose_mg) / t_inf

    def rhs(_t, y, r):
        a1, a2 = y
        return [r - (cl + q) / v1 * a1 + q / v2 * a2, q / v1 * a1 - q / v2 * a2]

    y = np.zeros(2)
    previous = np.inf
    opts = {"method": "DOP853", "rtol": rtol / 100, "atol": 1e-14}
    for _ in range(max_intervals):
        y = solve_ivp(rhs, (0.0, t_inf), y, args=(rate,), **opts).y[:, -1]
        y = solve_ivp(rhs, (t_inf, tau), y, args=(0.0,), **opts).y[:, -1]
        trough = y[0] / v1
        if abs(trough - previous) <= rtol * abs(trough):
            return float(trough)
        previous = trough
    raise RuntimeError(f"no steady state after {max_intervals} intervals")


def regimen_trough(params: PKParams, weight_kg, dose_mg_kg, interval_weeks,
                   infusion_days=2 / 24):
    """Steady-state trough (µg/mL) of ``dose_mg_kg`` every ``interval_weeks`` (closed form)."""
    w = np.asarray(weight_kg, dtype=float)
    return steady_state_trough(params.cl, params.v1, params.q, params.v2,
                               np.asarray(dose_mg_kg, dtype=float) * w,
                               np.asarray(interval_weeks, dtype=float) * 7.0, infusion_days)


def residual_sd(concentration):
    """Residual-error SD (µg/mL) at predicted concentration(s): additive and proportional."""
    c = np.asarray(concentration, dtype=float)
    return np.sqrt(RESIDUAL_ADDITIVE_UG_ML**2 + (RESIDUAL_PROPORTIONAL * c) ** 2)


def _truncated(draw, low, high, n):
    """``n`` values of ``draw(size)``, redrawn until all lie in [low, high]."""
    x = draw(n)
    bad = (x < low) | (x > high)
    while bad.any():
        x[bad] = draw(int(bad.sum()))
        bad = (x < low) | (x > high)
    return x


def _history(p, weight, albumin_g_l, kappa, tl_obs, tl_cens, baseline_regimen, max_troughs,
             upper_limit, lower_limit, seed) -> pd.DataFrame:
    """The TDM histories of :func:`simulate_exposure_cohort` (see ``history_troughs`` there)."""
    rng = np.random.default_rng([seed, 2])
    n = weight.size
    low, max_troughs = max_troughs if isinstance(max_troughs, tuple) else (1, max_troughs)
    k = rng.integers(low, max_troughs + 1, size=n)  # troughs per patient
    dose_mg = baseline_regimen[0] * weight
    tau = baseline_regimen[1] * 7.0
    ids = np.array([f"S{i:05d}" for i in range(n)])
    frames = [pd.DataFrame({  # the infusions
        "ID": np.repeat(ids, IOV_INTERVALS),
        "TIME": np.tile(np.arange(IOV_INTERVALS) * tau, n),
        "AMT": np.repeat(dose_mg, IOV_INTERVALS), "RATE": np.repeat(dose_mg * 12.0, IOV_INTERVALS),
        "DV": np.nan, "EVID": 1, "MDV": 1, "CENS": 0})]
    for j in range(max_troughs):  # the trough j intervals before the last one's end
        m = IOV_INTERVALS - j
        has = k > j
        if j == 0:
            value, code = tl_obs, tl_cens
        else:
            pred = trough_after_intervals(p.cl[:, None] * np.exp(kappa[:, :m]), p.v1[:, None],
                                          p.q[:, None], p.v2[:, None], dose_mg, tau)
            value = pred + residual_sd(pred) * rng.standard_normal(n)
            code = np.where(value > upper_limit, -1, np.where(value < lower_limit, 1, 0))
        dv = np.where(code == -1, upper_limit, np.where(code == 1, lower_limit, value))
        frames.append(pd.DataFrame({
            "ID": ids[has], "TIME": m * tau, "AMT": np.nan, "RATE": np.nan,
            "DV": [float(f"{x:.6g}") for x in dv[has]], "EVID": 0, "MDV": 0,
            "CENS": code[has]}))
    out = pd.concat(frames, ignore_index=True)
    order = np.lexsort((out["EVID"].to_numpy(), out["TIME"].to_numpy(), out["ID"].to_numpy()))
    out = out.iloc[order].reset_index(drop=True)
    at = pd.Series(np.arange(n), index=ids)[out["ID"]].to_numpy()
    out["WT"], out["ALB"], out["IMM"], out["ATI"] = weight[at], albumin_g_l[at] / 10.0, 0, 0
    return out


def simulate_exposure_cohort(n_patients, n_centres, *, b_base, b_gain, alpha, sigma_centre,
                             sigma_patient, tau_month=(0.0, 0.3), months=(6, 12),
                             regimens=((10, 8), (5, 4), (5, 6)), baseline_regimen=(5, 8),
                             upper_limit=16.0, lower_limit=0.4, seed, remission_tl="true",
                             pk_scale=None, iov=False, history_troughs=None):
    """A cohort in pkmodel's format whose remission is driven by baseline exposure and PK gain.

    Each patient draws weight (log-normal, median 70 kg, log-SD 0.2, redrawn outside 40-120 kg),
    albumin (normal, 40 g/L, SD 4, redrawn outside 25-50 g/L), random effects ``eta`` (CL, V1,
    V2) from the Fasanmade 2011 ``omega^2``, and an intensified regimen uniformly from
    ``regimens``; ATI is 0 for everyone. Patient ``i`` is in centre ``i % n_centres``.

    Exposure, all steady-state troughs of the error-free PK model with the patient's true etas:

    * ``TL_true_base``: trough under ``baseline_regimen`` (5 mg/kg every 8 weeks);
    * ``gain = trough(regimen) / TL_true_base`` (exactly dose ratio for dose escalation).

    The cohort's ``baseline_tl`` column is the *measured* trough: ``TL_true_base`` plus the
    model's combined residual error (normal, SD ``sqrt(0.371^2 + (0.292 TL_true_base)^2)``),
    written ``">16"`` above ``upper_limit`` and ``"<0.4"`` below ``lower_limit`` (the cohort
    format accepts no trough <= 0).

    Remission at assessment ``j`` (``months[j]``) is Bernoulli with::

        logit p = alpha + a_centre + tau_month[j] + b_base * (log TL_true_base - log 5)
                  + b_gain * log(gain) + u_patient

    ``a_centre ~ N(0, sigma_centre)``, ``u_patient ~ N(0, sigma_patient)``. Which TL enters: the
    *error-free* ``TL_true_base``, not the measured ``baseline_tl``. A model that treats the
    measured trough as the patient's true TL (as pkmodel's remission model does: its latent
    "true" TL is the one measured, with residual error) therefore faces errors in the
    covariate, and its ``b_base`` estimate is expected to be attenuated towards 0; a model that
    treats the measurement as a noisy reading of the PK prediction should recover ``b_base``.

    ``remission_tl="measured"`` puts the measured trough in that place instead (the remission
    model's own assumption), for recovery checks of the model as it is stated.

    No patient is excluded (those with a trough below 3 µg/mL stay; pkmodel's reader drops them).

    Parameters
    ----------
    n_patients, n_centres : int
        Cohort size and number of centres.
    b_base : float
        Log-odds per unit log baseline trough (error-free), centred at 5 µg/mL.
    b_gain : float
        Log-odds per unit log gain in trough from the intensification.
    alpha : float
        Intercept: log-odds at TL_true_base = 5, gain 1, first assessment, average centre.
    sigma_centre, sigma_patient : float
        SDs of the centre and patient random intercepts.
    tau_month : sequence of float, default (0.0, 0.3)
        Log-odds offset of each assessment, same length as ``months``.
    months : sequence of int, default (6, 12)
        Assessment months.
    regimens : sequence of (dose_mg_kg, interval_weeks), default ((10, 8), (5, 4), (5, 6))
        Intensified regimens, one drawn uniformly per patient.
    baseline_regimen : (dose_mg_kg, interval_weeks), default (5, 8)
        Regimen at the baseline trough.
    upper_limit : float, default 16.0
        Measured troughs above it are written ``">16"`` (or the limit given).
    lower_limit : float, default 0.4
        Measured troughs below it are written ``"<0.4"``.
    seed : int
        Seed of the one random generator.
    remission_tl : {"true", "measured"}
        Which baseline trough enters the remission logit (see above).
    pk_scale : mapping of str to float, optional
        Factors on the typical values of the true population (keys ``cl``, ``v1``, ``q``,
        ``v2``; 1 where left out): a population whose parameters differ from the published
        estimates, for checks of the propagation of their uncertainty.
    iov : bool, default False
        Inter-occasion variability on CL (:data:`OMEGA2_IOV_CL`): the baseline trough follows
        :data:`IOV_INTERVALS` baseline intervals, each with its own kappa, and the trough after
        intensification as many intervals of the new regimen with kappas drawn afresh
        (:func:`trough_after_intervals`); the kappas come from a generator of their own, so every
        other draw is the one without IOV.
    history_troughs : int or (int, int), optional
        Also write each patient's TDM history (``truth["history"]``, a NONMEM-format
        DataFrame): :data:`IOV_INTERVALS` baseline infusions every ``baseline_regimen`` interval
        from day 0 (2 hours, ``RATE`` in mg/day), and 1 (or the first of two numbers) to
        ``history_troughs`` (or the second) troughs (drawn
        uniformly, from a generator of their own) at the ends of the last intervals, the last of
        them the cohort's measured baseline trough (the same value); each earlier one the
        trough after that many intervals (with the baseline kappas under IOV) plus its own
        residual error; ``CENS`` 1 (``DV`` the lower limit) and -1 (the upper) beyond the
        limits; ``WT``, ``ALB`` (g/dL), ``IMM``, ``ATI`` (0).

    Returns
    -------
    frame : pandas.DataFrame
        One row per patient per month, patients in order: ``patient_id`` (``S00000``...),
        ``center`` (``c0``...), ``month``, ``remission`` (0/1), ``baseline_tl`` (text),
        ``ati`` (0), ``strategy`` (``dose_escalation`` when the regimen's dose is above
        5 mg/kg, else ``interval_shortening``), ``disease`` (``CD``), ``weight_kg``,
        ``albumin_g_l``, ``dose_mg_kg``, ``interval_weeks`` (of the intensified regimen).
    truth : dict
        Per-patient arrays (length ``n_patients`` unless said): ``patient_id``, ``center``
        (index), ``weight_kg``, ``albumin_g_l``, ``eta`` (n, 3; columns :data:`ETA_NAMES`),
        ``cl``, ``v1``, ``q``, ``v2``, ``regimen`` (index into ``regimens``), ``dose_mg_kg``,
        ``interval_weeks``, ``tl_true_base`` (error-free baseline trough), ``tl_true_after``
        (error-free trough under the intensified regimen), ``tl_observed`` (with residual
        error, before writing limits; may be <= 0), ``tl_cens`` (0, 1 below, -1 above a limit),
        ``gain``, ``a_centre`` (n_centres), ``u_patient``, ``logit`` and ``p_remission``
        (n, n_months), ``remission`` (n, n_months); and ``params``: every argument above
        plus ``reference_tl_ug_ml`` (5) and ``pk``: the PK constants used.
    """
    tau_month = tuple(float(t) for t in tau_month)
    months = tuple(int(m) for m in months)
    if len(tau_month) != len(months):
        raise ValueError("tau_month and months must have the same length")
    regimens = tuple((float(d), float(w)) for d, w in regimens)
    n = int(n_patients)
    rng = np.random.default_rng(seed)

    center = np.arange(n) % int(n_centres)
    a_centre = rng.normal(0.0, sigma_centre, int(n_centres))
    u = rng.normal(0.0, sigma_patient, n)
    weight = _truncated(lambda k: rng.lognormal(np.log(70.0), 0.2, k), 40.0, 120.0, n)
    albumin = _truncated(lambda k: rng.normal(40.0, 4.0, k), 25.0, 50.0, n)
    eta = rng.standard_normal((n, 3)) * np.sqrt(OMEGA2)
    regimen = rng.integers(len(regimens), size=n)
    dose = np.array([r[0] for r in regimens])[regimen]
    interval = np.array([r[1] for r in regimens])[regimen]

    p = individual_parameters(weight, albumin, 0, eta)
    scale = {k: float((pk_scale or {}).get(k, 1.0)) for k in PKParams._fields}
    p = PKParams(*(getattr(p, k) * scale[k] for k in PKParams._fields))
    if iov:  # each interval its own kappa on CL; those after intensification drawn afresh
        occ = np.random.default_rng([seed, 1])  # the other draws stay those without IOV
        before, after = (occ.standard_normal((n, IOV_INTERVALS)) * np.sqrt(OMEGA2_IOV_CL)
                         for _ in range(2))

        def trough(kappa, dose_mg_kg, interval_weeks):
            return trough_after_intervals(p.cl[:, None] * np.exp(kappa), p.v1[:, None],
                                          p.q[:, None], p.v2[:, None], dose_mg_kg * weight,
                                          interval_weeks * 7.0)

        tl_base = trough(before, *baseline_regimen)
        tl_after = np.zeros(n)
        for r, (d, w) in enumerate(regimens):
            tl_after[regimen == r] = trough(after, d, w)[regimen == r]
    else:
        tl_base = regimen_trough(p, weight, *baseline_regimen)
        tl_after = regimen_trough(p, weight, dose, interval)
    gain = tl_after / tl_base
    tl_obs = tl_base + residual_sd(tl_base) * rng.standard_normal(n)

    tl_cens = np.where(tl_obs > upper_limit, -1, np.where(tl_obs < lower_limit, 1, 0))
    history = None
    if history_troughs is not None:
        kappa = before if iov else np.zeros((n, IOV_INTERVALS))
        bounds = (tuple(int(x) for x in history_troughs)
                  if isinstance(history_troughs, tuple | list) else int(history_troughs))
        history = _history(p, weight, albumin, kappa, tl_obs, tl_cens, baseline_regimen,
                           bounds, upper_limit, lower_limit, seed)
    tl_text = np.where(tl_cens == -1, f">{upper_limit:g}",
                       np.where(tl_cens == 1, f"<{lower_limit:g}",
                                [f"{x:.6g}" for x in tl_obs]))

    logit = (alpha + a_centre[center][:, None] + np.asarray(tau_month)[None, :]
             + b_base * (np.log(tl_base if remission_tl == "true"
                                else np.maximum(tl_obs, lower_limit))
                         - np.log(REFERENCE_TL_UG_ML))[:, None]
             + b_gain * np.log(gain)[:, None] + u[:, None])
    prob = expit(logit)
    remission = (rng.random(prob.shape) < prob).astype(int)

    ids = np.array([f"S{i:05d}" for i in range(n)])
    strategy = np.where(dose > 5.0, "dose_escalation", "interval_shortening")
    k = len(months)
    frame = pd.DataFrame({
        "patient_id": np.repeat(ids, k),
        "center": np.repeat(np.array([f"c{c}" for c in center]), k),
        "month": np.tile(np.asarray(months), n),
        "remission": remission.reshape(-1),
        "baseline_tl": np.repeat(tl_text, k),
        "ati": 0,
        "strategy": np.repeat(strategy, k),
        "disease": "CD",
        "weight_kg": np.repeat(weight, k),
        "albumin_g_l": np.repeat(albumin, k),
        "dose_mg_kg": np.repeat(dose, k),
        "interval_weeks": np.repeat(interval, k),
    })
    truth = {
        "patient_id": ids, "center": center, "weight_kg": weight, "albumin_g_l": albumin,
        "eta": eta, "cl": p.cl, "v1": p.v1, "q": p.q, "v2": p.v2, "regimen": regimen,
        "dose_mg_kg": dose, "interval_weeks": interval, "tl_true_base": tl_base,
        "tl_true_after": tl_after, "tl_observed": tl_obs, "tl_cens": tl_cens, "gain": gain,
        "a_centre": a_centre, "u_patient": u, "logit": logit, "p_remission": prob,
        "remission": remission, "history": history,
        "params": {
            "n_patients": n, "n_centres": int(n_centres), "b_base": b_base, "b_gain": b_gain,
            "alpha": alpha, "sigma_centre": sigma_centre, "sigma_patient": sigma_patient,
            "tau_month": tau_month, "months": months, "regimens": regimens,
            "baseline_regimen": tuple(float(x) for x in baseline_regimen),
            "upper_limit": upper_limit, "lower_limit": lower_limit, "seed": seed,
            "reference_tl_ug_ml": REFERENCE_TL_UG_ML, "pk_scale": scale, "iov": bool(iov),
            "pk": {**PK_REFERENCE, "omega2_iov_cl": OMEGA2_IOV_CL if iov else 0.0,
                   "omega2": dict(zip(ETA_NAMES, OMEGA2.tolist(), strict=True)),
                   "residual_proportional": RESIDUAL_PROPORTIONAL,
                   "residual_additive_ug_ml": RESIDUAL_ADDITIVE_UG_ML,
                   "infusion_days": 2 / 24},
        },
    }
    return frame, truth
