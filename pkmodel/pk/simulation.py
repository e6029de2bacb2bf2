"""Closed-form two-compartment concentrations after zero-order IV infusions, vectorised.

The model (central amount A1, peripheral A2, infusion rate R(t), all in mg and days)::

    dA1/dt = R(t) - (k10 + k12) A1 + k21 A2,   dA2/dt = k12 A1 - k21 A2,   C = A1 / V1

with k10 = CL/V1, k12 = Q/V1, k21 = Q/V2. Its unit-impulse response in concentration is
``a exp(-alpha t) + b exp(-beta t)``, where alpha > beta are the roots of
``x**2 - (k10 + k12 + k21) x + k10 k21`` and ``a = (alpha - k21) / (V1 (alpha - beta))``,
``b = (k21 - beta) / (V1 (alpha - beta))``. An infusion of rate R = D/T started at time 0 gives,
with ``s = min(max(t, 0), T)``::

    C(t) = R * sum_i (c_i / lambda_i) * (exp(-lambda_i (t - s)) - exp(-lambda_i t))

and doses add up (superposition). At steady state under dose D every tau days, the trough is the
geometric series ``R sum_i (c_i/lambda_i) exp(-lambda_i (tau - T)) (1 - exp(-lambda_i T)) /
(1 - exp(-lambda_i tau))``.

Everything broadcasts: parameter arrays of any shape (patients x draws) give concentration arrays of
that shape plus a time axis, with no Python loop over patients (only over doses). The xarray
wrappers :func:`simulate` and :func:`steady_state_troughs` label the axes and carry ``units``.

Superposition needs parameters that do not change with time. When they change (time-varying
covariates, :class:`pkmodel.pk.covariates.CovariateHistory`), :func:`piecewise_concentrations`
propagates the state ``A = (A1, A2)`` exactly instead: between consecutive breakpoints (dose starts,
infusion ends, parameter change times, output times) the parameters and the infusion rate R are
constant, so ``A(t + h) = Phi(h) A(t) + R Gamma(h)`` with ``Phi(h) = expm(K h)`` and
``Gamma(h) = integral_0^h Phi(s) ds (1, 0)``, both in closed form from alpha and beta (Sylvester's
formula, ``Phi = ((K + alpha I) e^(-beta h) - (K + beta I) e^(-alpha h)) / (alpha - beta)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType

import numpy as np
import xarray as xr

from pkmodel.errors import SpecificationError
from pkmodel.pk.models import (
    PARAMETERS,
    PKParameters,
    PopulationModel,
    check_covariate,
    get_model,
)
from pkmodel.pk.regimens import Regimen, parse_regimen
from pkmodel.pk.schedules import DoseSchedule
from pkmodel.sampling import resolve_seed

__all__ = [
    "concentrations",
    "disposition",
    "infusion_response",
    "piecewise_concentrations",
    "simulate",
    "steady_state_trough",
    "steady_state_troughs",
    "transition",
    "troughs",
]

CONC_UNITS = "µg/mL"


def disposition(cl, v1, q, v2, xp: ModuleType = np):
    """Hybrid rate constants and coefficients of the two-compartment impulse response.

    Parameters
    ----------
    cl, v1, q, v2 : array-like
        CL (L/day), V1 (L), Q (L/day), V2 (L). Works with numpy arrays or, with
        ``xp=pytensor.tensor``, with symbolic tensors.
    xp : module, default numpy
        The array namespace (needs ``sqrt``).

    Returns
    -------
    alpha, beta : array
        Fast and slow disposition rate constants, 1/day.
    a, b : array
        Coefficients of the concentration impulse response, 1/L.
    """
    k10 = cl / v1
    k12 = q / v1
    k21 = q / v2
    s = k10 + k12 + k21
    root = xp.sqrt(s * s - 4.0 * k10 * k21)
    alpha = 0.5 * (s + root)
    beta = k10 * k21 / alpha  # the stable form of (s - root) / 2
    a = (alpha - k21) / (v1 * root)
    b = (k21 - beta) / (v1 * root)
    return alpha, beta, a, b


def infusion_response(alpha, beta, a, b, rate, elapsed, duration, xp: ModuleType = np):
    """Concentration (µg/mL) at ``elapsed`` days after the start of an infusion of ``rate`` mg/day.

    Zero before the infusion starts. All arguments broadcast; ``xp`` as in :func:`disposition`
    (needs ``exp``, ``maximum`` and ``minimum``).
    """
    t = xp.maximum(elapsed, 0.0)
    s = xp.minimum(t, duration)
    fast = (a / alpha) * (xp.exp(-alpha * (t - s)) - xp.exp(-alpha * t))
    slow = (b / beta) * (xp.exp(-beta * (t - s)) - xp.exp(-beta * t))
    return rate * (fast + slow)


def transition(cl, v1, q, v2, h, xp: ModuleType = np):
    """The exact one-step propagator of the two-compartment state over ``h`` days.

    With the state ``A = (A1, A2)`` (central and peripheral amounts, mg) and a constant infusion
    rate R (mg/day) into the central compartment over the step,
    ``A(t + h) = Phi @ A(t) + R * gamma``.

    Parameters
    ----------
    cl, v1, q, v2 : array-like
        CL (L/day), V1 (L), Q (L/day), V2 (L), constant over the step.
    h : array-like
        Step length, days (>= 0). Everything broadcasts.
    xp : module, default numpy
        The array namespace (``sqrt``, ``exp``, ``expm1``); ``pytensor.tensor`` works.

    Returns
    -------
    phi11, phi12, phi21, phi22 : array
        The entries of ``Phi = expm(K h)``.
    gamma1, gamma2 : array
        ``Gamma = integral_0^h expm(K s) ds @ (1, 0)``, days.
    """
    k12 = q / v1
    k21 = q / v2
    alpha, beta, _, _ = disposition(cl, v1, q, v2, xp=xp)
    root = alpha - beta
    e_beta = xp.exp(-beta * h)
    e_alpha = xp.exp(-alpha * h)
    gap = e_beta * -xp.expm1(-root * h)  # e^(-beta h) - e^(-alpha h), accurate for small h
    fast = alpha - k21  # > 0
    slow = k21 - beta  # > 0
    phi11 = (slow * e_beta + fast * e_alpha) / root
    phi22 = (fast * e_beta + slow * e_alpha) / root
    phi12 = k21 * gap / root
    phi21 = k12 * gap / root
    int_beta = -xp.expm1(-beta * h) / beta
    int_alpha = -xp.expm1(-alpha * h) / alpha
    gamma1 = (slow * int_beta + fast * int_alpha) / root
    gamma2 = k12 * (int_beta - int_alpha) / root
    return phi11, phi12, phi21, phi22, gamma1, gamma2


def piecewise_concentrations(
    params: PKParameters,
    change_times_days: np.ndarray | Sequence[float],
    schedule: DoseSchedule,
    times_days: np.ndarray | Sequence[float] | float,
    amounts_mg: np.ndarray | Sequence[float],
    xp: ModuleType = np,
):
    """Central concentrations with parameters that change at given times (exact propagation).

    Parameter segment ``k`` is in force from ``change_times_days[k]`` until the next change time
    (last observation carried forward); the first segment also applies before the first change
    time. The state is propagated in closed form (:func:`transition`) between consecutive
    breakpoints: dose starts, infusion ends, change times and output times. With one segment this
    equals :func:`concentrations` (to rounding), which is faster and remains the path for
    constant covariates.

    Parameters
    ----------
    params : PKParameters
        Individual parameters whose arrays have the segment axis last: shape ``S + (n_seg,)``
        (or a last axis of length 1). numpy arrays, or ``pytensor`` tensors with
        ``xp=pytensor.tensor``.
    change_times_days : array-like
        Start of each segment, days since the first dose, strictly increasing, shape (n_seg,).
    schedule : DoseSchedule
        Dose times and infusion durations (its amounts are not used: see ``amounts_mg``).
    times_days : array-like
        Output times, days, shape (n_times,); any order, repeats allowed.
    amounts_mg : array-like
        Amount of each infusion, mg, shape ``(..., n_doses)`` broadcasting against ``S``
        (e.g. mg/kg doses times the weight in force at each dose); numbers (data), also when
        ``xp`` is ``pytensor.tensor``.
    xp : module, default numpy
        The array namespace (``sqrt``, ``exp``, ``expm1``, ``stack``, ``zeros_like``).

    Returns
    -------
    array
        Concentrations, µg/mL, shape ``broadcast(S, amounts_mg.shape[:-1]) + (n_times,)``. At a
        change time the concentration uses the new V1 (the amount is continuous, V1 is not).

    Raises
    ------
    SpecificationError
        If the change times are not finite and strictly increasing, or the amounts do not match
        the schedule.
    """
    change = np.atleast_1d(np.asarray(change_times_days, dtype=float))
    times = np.atleast_1d(np.asarray(times_days, dtype=float))
    if change.ndim != 1 or change.size == 0 or not np.all(np.isfinite(change)):
        raise SpecificationError("parameter change times must be a non-empty 1-D array of "
                                 "finite days")
    if np.any(np.diff(change) <= 0):
        raise SpecificationError("parameter change times must be strictly increasing")
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise SpecificationError("output times must be a 1-D array of finite days")
    if xp is np:
        params = PKParameters(*(np.atleast_1d(x) for x in _arrays(params)))
    amounts_mg = np.asarray(amounts_mg, dtype=float)
    if amounts_mg.shape[-1:] != (len(schedule),):
        raise SpecificationError(
            f"amounts_mg needs a last axis of one amount per dose ({len(schedule)})")
    starts = schedule.times_days
    ends = starts + schedule.durations_days
    last = float(times.max())
    breaks = np.unique(np.concatenate([starts, ends, change, times]))
    breaks = breaks[breaks <= last]
    breaks = np.append(breaks, last + 1.0)  # one step at least; its end is never reported
    lo, h = breaks[:-1], np.diff(breaks)
    n_seg = change.size
    segment = np.clip(np.searchsorted(change, lo, side="right") - 1, 0, n_seg - 1)
    active = ((starts[:, None] <= lo[None, :]) & (lo[None, :] < ends[:, None])).astype(float)
    rates = amounts_mg / schedule.durations_days
    rate = (rates[..., :, None] * active).sum(axis=-2)  # (..., n_steps)
    cl, v1, q, v2 = (getattr(params, p)[..., segment] for p in PARAMETERS)
    p11, p12, p21, p22, g1, g2 = transition(cl, v1, q, v2, h, xp=xp)
    wanted, inverse = np.unique(times, return_inverse=True)
    report = np.isin(breaks, wanted)
    a1 = xp.zeros_like(p11[..., 0] * rate[..., 0])
    a2 = a1
    states = []
    for i in range(h.size):
        if report[i]:
            states.append(a1)
        a1, a2 = (p11[..., i] * a1 + p12[..., i] * a2 + rate[..., i] * g1[..., i],
                  p21[..., i] * a1 + p22[..., i] * a2 + rate[..., i] * g2[..., i])
    amounts = xp.stack(states, axis=-1)[..., inverse.reshape(-1)]
    out_segment = np.clip(np.searchsorted(change, times, side="right") - 1, 0, n_seg - 1)
    return amounts / params.v1[..., out_segment]


def _arrays(params: PKParameters) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(getattr(params, p), dtype=float) for p in PARAMETERS)


def concentrations(
    params: PKParameters,
    schedule: DoseSchedule,
    times_days: np.ndarray | Sequence[float] | float,
    weight_kg: np.ndarray | float | None = None,
) -> np.ndarray:
    """Central concentrations at ``times_days`` by superposition of every infusion.

    Parameters
    ----------
    params : PKParameters
        Individual parameters, arrays of shape S (e.g. patients x draws).
    schedule : DoseSchedule
        The infusions.
    times_days : array-like
        Times, days since the first dose, shape (n_times,).
    weight_kg : array-like, optional
        Body weight, kg, broadcastable to S; needed for mg/kg schedules.

    Returns
    -------
    numpy.ndarray
        Concentrations, µg/mL, shape ``broadcast(S, shape(weight_kg)) + (n_times,)``.
    """
    times = np.atleast_1d(np.asarray(times_days, dtype=float))
    alpha, beta, a, b = (x[..., None] for x in disposition(*_arrays(params)))
    amounts = schedule.amounts_mg(weight_kg)
    out = np.zeros(np.broadcast_shapes(alpha.shape, (*amounts.shape[:-1], 1), times.shape))
    for j in range(len(schedule)):
        rate = amounts[..., j, None] / schedule.durations_days[j]
        out += infusion_response(
            alpha, beta, a, b, rate, times - schedule.times_days[j], schedule.durations_days[j]
        )
    return out


def troughs(
    params: PKParameters, schedule: DoseSchedule, weight_kg: np.ndarray | float | None = None
) -> np.ndarray:
    """Concentration just before each dose after the first, µg/mL, shape ``S + (n_doses - 1,)``."""
    if len(schedule) < 2:
        raise SpecificationError("troughs need at least two doses")
    return concentrations(params, schedule, schedule.times_days[1:], weight_kg)


def steady_state_trough(
    params: PKParameters,
    dose_mg: np.ndarray | float,
    interval_days: float,
    infusion_days: float,
) -> np.ndarray:
    """Steady-state trough (µg/mL) under ``dose_mg`` every ``interval_days`` (geometric series).

    Parameters
    ----------
    params : PKParameters
        Individual parameters (any shape).
    dose_mg : array-like
        Dose per infusion, mg; broadcasts against the parameters.
    interval_days : float
        Dosing interval, days.
    infusion_days : float
        Infusion duration, days (<= interval).
    """
    if not 0 < infusion_days <= interval_days:
        raise SpecificationError("the infusion must be positive and no longer than the interval")
    alpha, beta, a, b = disposition(*_arrays(params))
    rate = np.asarray(dose_mg, dtype=float) / infusion_days
    total = 0.0
    for lam, c in ((alpha, a), (beta, b)):
        total = total + (c / lam) * (
            np.exp(-lam * (interval_days - infusion_days))
            * -np.expm1(-lam * infusion_days)
            / -np.expm1(-lam * interval_days)
        )
    return rate * total


# ----------------------------------------------------------------------------------------------
# xarray wrappers


def _patients(
    model: PopulationModel, covariates: Mapping[str, object] | None
) -> tuple[dict[str, np.ndarray], int]:
    given = dict(covariates or {})
    cov = model.covariate_values(given)
    if "weight_kg" not in cov:
        weight = given.get("weight_kg", model.reference_covariates.get("weight_kg", 70.0))
        cov["weight_kg"] = check_covariate("weight_kg", weight)
    sizes = {np.size(v) for v in cov.values() if np.ndim(v) > 0}
    if len(sizes) > 1 or any(np.ndim(v) > 1 for v in cov.values()):
        raise SpecificationError(
            "covariate arrays must be scalars or 1-D arrays of the same length (one per patient)"
        )
    n = sizes.pop() if sizes else 1
    return {k: np.broadcast_to(v, (n,)).astype(float) for k, v in cov.items()}, n


def _eta(
    model: PopulationModel,
    n_patients: int,
    n_draws: int,
    eta: np.ndarray | None,
    random_seed: int | np.random.Generator | None,
) -> np.ndarray:
    k = len(model.random_effects)
    if eta is not None:
        eta = np.asarray(eta, dtype=float)
        if eta.ndim == 2:
            eta = eta[None]
        if eta.ndim != 3 or eta.shape[0] not in (1, n_patients) or eta.shape[2] != k:
            raise SpecificationError(
                f"eta must have shape (patient, draw, {k}) or (draw, {k}); got {eta.shape}"
            )
        return np.broadcast_to(eta, (n_patients, eta.shape[1], k))
    if n_draws < 0:
        raise SpecificationError("n_draws must be >= 0 (0 gives the typical patient)")
    if n_draws == 0:
        return np.zeros((n_patients, 1, k))
    rng = (random_seed if isinstance(random_seed, np.random.Generator)
           else np.random.default_rng(resolve_seed(random_seed)))
    return model.sample_eta((n_patients, n_draws), rng)


def simulate(
    model: PopulationModel | str,
    regimen: Regimen | str | DoseSchedule,
    covariates: Mapping[str, object] | None = None,
    *,
    times_days: np.ndarray | Sequence[float] | None = None,
    until_week: float = 54.0,
    n_draws: int = 0,
    eta: np.ndarray | None = None,
    random_seed: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """Concentration profiles, troughs and steady state for patients x parameter draws.

    Parameters
    ----------
    model : PopulationModel or str
        A population model or its name (``fasanmade2009``, ``fasanmade2011``).
    regimen : Regimen, str or DoseSchedule
        A regimen (induction then maintenance until ``until_week``) or an explicit schedule,
        e.g. one with a regimen switch (:meth:`DoseSchedule.switched`).
    covariates : mapping, optional
        Covariates, scalars or one value per patient (``weight_kg``, ``albumin_g_dl``, ``ati``,
        ``female``, ``immunomodulator``); missing ones take the model's reference values.
    times_days : array-like, optional
        Output times, days; default every day to ``until_week``.
    until_week : float, default 54
        Length of the simulated course when a regimen is given.
    n_draws : int, default 0
        Random-effect draws per patient from the population distribution (0: the typical
        patient for the given covariates).
    eta : numpy.ndarray, optional
        Explicit random effects, shape (patient, draw, n_eta) or (draw, n_eta), e.g. posterior
        draws; overrides ``n_draws``.
    random_seed : int or numpy.random.Generator, optional
        Seed of the random-effect draws.

    Returns
    -------
    xarray.Dataset
        ``concentration`` (patient, draw, time_days), ``trough`` (patient, draw, dose) before
        each dose after the first, ``steady_state_trough`` (patient, draw) when a regimen was
        given, and the individual parameters ``cl``, ``v1``, ``q``, ``v2``; every variable has a
        ``units`` attribute.

    Examples
    --------
    >>> from pkmodel.pk import simulate
    >>> ds = simulate("fasanmade2009", "5mg/kg q8w", {"weight_kg": 70})
    >>> ds.steady_state_trough.attrs["units"]
    'µg/mL'
    """
    model = get_model(model)
    cov, n = _patients(model, covariates)
    eta_arr = _eta(model, n, n_draws, eta, random_seed)
    reg = None
    if isinstance(regimen, DoseSchedule):
        schedule = regimen
    else:
        reg = parse_regimen(regimen)
        schedule = DoseSchedule.from_regimen(reg, until_week=until_week)
    if times_days is None:
        end = max(until_week * 7.0, float(schedule.times_days[-1]) + 1.0)
        times_days = np.arange(0.0, end + 1e-9, 1.0)
    times = np.atleast_1d(np.asarray(times_days, dtype=float))
    params = model.individual_parameters({k: v[:, None] for k, v in cov.items()}, eta_arr)
    weight = cov["weight_kg"][:, None]
    conc = concentrations(params, schedule, times, weight)
    coords = {"patient": np.arange(n), "draw": np.arange(eta_arr.shape[1]), "time_days": times}
    ds = xr.Dataset(coords=coords)
    ds["time_days"].attrs["units"] = "day"
    ds["concentration"] = (("patient", "draw", "time_days"), conc, {"units": CONC_UNITS})
    if len(schedule) >= 2:
        tr = troughs(params, schedule, weight)
        ds = ds.assign_coords(dose_time_days=("dose", schedule.times_days[1:]))
        ds["dose_time_days"].attrs["units"] = "day"
        ds["trough"] = (("patient", "draw", "dose"), tr, {"units": CONC_UNITS,
                        "description": "concentration just before each dose after the first"})
    if reg is not None:
        ss = steady_state_trough(params, reg.dose_mg_kg * weight, reg.interval_days,
                                 reg.infusion_days)
        ds["steady_state_trough"] = (("patient", "draw"),
                                     np.broadcast_to(ss, (n, eta_arr.shape[1])),
                                     {"units": CONC_UNITS, "regimen": reg.label})
    for p, unit in PARAMETERS.items():
        ds[p] = (("patient", "draw"), np.broadcast_to(getattr(params, p), (n, eta_arr.shape[1])),
                 {"units": unit})
    for name, values in cov.items():
        ds[name] = ("patient", values, {"units": "kg" if name == "weight_kg" else
                                        "g/dL" if name == "albumin_g_dl" else "0/1"})
    ds.attrs.update(model=model.name, citation=model.citation,
                    regimen=reg.label if reg else "explicit schedule")
    return ds


def steady_state_troughs(
    model: PopulationModel | str,
    regimens: Sequence[Regimen | str],
    covariates: Mapping[str, object] | None = None,
    *,
    n_draws: int = 0,
    eta: np.ndarray | None = None,
    random_seed: int | np.random.Generator | None = None,
) -> xr.DataArray:
    """Steady-state troughs for each regimen x patient x draw (geometric series), µg/mL.

    The disposition constants are computed once and reused for every regimen, so a million
    patients under four regimens take well under a second (see ``benchmarks/bench_pk.py``).

    Returns
    -------
    xarray.DataArray
        Dims (regimen, patient, draw), ``units`` µg/mL, regimen labels as coordinates.
    """
    model = get_model(model)
    regs = [parse_regimen(r) for r in regimens]
    if not regs:
        raise SpecificationError("give at least one regimen")
    cov, n = _patients(model, covariates)
    eta_arr = _eta(model, n, n_draws, eta, random_seed)
    params = model.individual_parameters({k: v[:, None] for k, v in cov.items()}, eta_arr)
    alpha, beta, a, b = disposition(*_arrays(params))
    weight = cov["weight_kg"][:, None]
    shape = (n, eta_arr.shape[1])
    out = np.empty((len(regs), *shape))
    for i, reg in enumerate(regs):
        tau, inf = reg.interval_days, reg.infusion_days
        rate = reg.dose_mg_kg * weight / inf
        fast = (a / alpha) * np.exp(-alpha * (tau - inf)) * np.expm1(-alpha * inf) / np.expm1(
            -alpha * tau)
        slow = (b / beta) * np.exp(-beta * (tau - inf)) * np.expm1(-beta * inf) / np.expm1(
            -beta * tau)
        out[i] = rate * (fast + slow)
    return xr.DataArray(
        out,
        dims=("regimen", "patient", "draw"),
        coords={"regimen": [r.label for r in regs], "patient": np.arange(n),
                "draw": np.arange(shape[1])},
        name="steady_state_trough",
        attrs={"units": CONC_UNITS, "model": model.name},
    )
