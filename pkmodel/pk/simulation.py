"""Concentrations of a PK model's patients over time: superposition, steady state, propagation.

Every function here reads the structure from the individual parameters
(:class:`~pkmodel.pk.models.PKParameters` carry theirs, :mod:`pkmodel.pk.structures`): the
concentration that one dose gives is the structure's :meth:`~pkmodel.pk.structures.
LinearCompartmental.response`, and doses add up (superposition). A
:class:`~pkmodel.pk.schedules.DoseSchedule` holds IV infusions (times, amounts, durations), given
as such to any structure (a model's ``dosing`` is how its source's doses were given). At steady
state under dose D every tau days the trough is the geometric series of each exponential of the
structure's impulse response (:meth:`~pkmodel.pk.structures.LinearCompartmental.
steady_state_trough`).

Everything broadcasts: parameter arrays of any shape (patients x draws) give concentration arrays of
that shape plus a time axis, with no Python loop over patients (only over doses). The xarray
wrappers :func:`simulate` and :func:`steady_state_troughs` label the axes and carry ``units``.

Superposition needs parameters that do not change with time. When they change (time-varying
covariates, :class:`pkmodel.pk.covariates.CovariateHistory`), :func:`piecewise_concentrations`
propagates the state exactly instead: between consecutive breakpoints (dose starts, infusion
ends, parameter change times, output times) the parameters and the infusion rate R are constant,
so ``A(t + h) = Phi(h) A(t) + R Gamma(h)`` with the structure's closed-form propagator
(:meth:`~pkmodel.pk.structures.LinearCompartmental.propagator`; two compartments, with
``Phi = ((K + alpha I) e^(-beta h) - (K + beta I) e^(-alpha h)) / (alpha - beta)``, Sylvester's
formula).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType

import numpy as np
import xarray as xr

from pkmodel.errors import SpecificationError
from pkmodel.pk.models import PKParameters, PopulationModel
from pkmodel.pk.occasions import (
    Occasions,
    check_iov_structure,
    occasion_parameters,
    output_stretches,
)
from pkmodel.pk.published_models import get_model
from pkmodel.pk.regimens import Regimen, parse_regimen
from pkmodel.pk.schedules import DoseSchedule
from pkmodel.pk.structures import TWO_COMPARTMENT
from pkmodel.sampling import resolve_seed

__all__ = [
    "concentrations",
    "piecewise_concentrations",
    "simulate",
    "steady_state_trough",
    "steady_state_trough_occasions",
    "steady_state_troughs",
    "transition",
    "troughs",
]

CONC_UNITS = "µg/mL"


def transition(cl, v1, q, v2, h, xp: ModuleType = np):
    """The exact one-step propagator of the two-compartment state over ``h`` days.

    ``A(t + h) = Phi @ A(t) + R * gamma`` for the amounts ``A = (A1, A2)`` (mg) and a constant
    infusion rate R (mg/day) into the central compartment; see
    :meth:`~pkmodel.pk.structures.LinearCompartmental.propagator`, which this is for
    two compartments. Returns ``phi11, phi12, phi21, phi22, gamma1, gamma2``.
    """
    return TWO_COMPARTMENT.propagator({"cl": cl, "v1": v1, "q": q, "v2": v2}, h, xp=xp)


def piecewise_concentrations(
    params: PKParameters,
    change_times_days: np.ndarray | Sequence[float],
    schedule: DoseSchedule,
    times_days: np.ndarray | Sequence[float] | float,
    amounts_mg: np.ndarray | Sequence[float],
    xp: ModuleType = np,
    output_segments: np.ndarray | Sequence[int] | None = None,
):
    """Central concentrations with parameters that change at given times (exact propagation).

    Parameter segment ``k`` is in force from ``change_times_days[k]`` until the next change time
    (last observation carried forward); the first segment also applies before the first change
    time. The state is propagated in closed form (:func:`transition`) between consecutive
    breakpoints: dose starts, infusion ends, change times and output times. The schedule's NONMEM
    events are followed: a reset empties both compartments (and stops an infusion), and a
    steady-state dose starts from the fixed point of its interval under the parameters in force
    at it (:func:`_steady_states`). With one segment this equals :func:`concentrations` (to
    rounding), which is faster and remains the path for constant covariates.

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
    output_segments : array-like of int, optional
        The segment whose central volume turns each output time's amount into a concentration
        (default: the segment in force, the new one at a change time). Occasions give the one
        before for a trough drawn at the start of an occasion
        (:func:`pkmodel.pk.occasions.output_stretches`).

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
    structure = params.structure
    if xp is np:
        params = params.map(lambda v: np.atleast_1d(np.asarray(v, dtype=float)))
    amounts_mg = np.asarray(amounts_mg, dtype=float)
    if amounts_mg.shape[-1:] != (len(schedule),):
        raise SpecificationError(
            f"amounts_mg needs a last axis of one amount per dose ({len(schedule)})")
    if schedule.routes is not None and set(schedule.routes) != {"infusion"}:
        raise SpecificationError(
            "covariates that change over time are followed for IV infusions only; give "
            "constant covariates (e.g. --weight)")
    starts = schedule.times_days
    ends = starts + schedule.durations_days
    last = float(times.max())
    resets = np.empty(0) if schedule.reset_days is None else schedule.reset_days
    breaks = np.unique(np.concatenate([starts, ends, change, times, resets]))
    breaks = breaks[breaks <= last]
    breaks = np.append(breaks, last + 1.0)  # one step at least; its end is never reported
    lo, h = breaks[:-1], np.diff(breaks)
    n_seg = change.size
    segment = np.clip(np.searchsorted(change, lo, side="right") - 1, 0, n_seg - 1)
    active = ((starts[:, None] <= lo[None, :]) & (lo[None, :] < ends[:, None])
              & (schedule.courses(starts)[:, None] == schedule.courses(lo)[None, :])
              ).astype(float)  # an infusion stops at a reset
    emptied = np.isin(lo, resets)
    rates = amounts_mg / schedule.durations_days
    rate = (rates[..., :, None] * active).sum(axis=-2)  # (..., n_steps)
    p11, p12, p21, p22, g1, g2 = structure.propagator(
        {k: v[..., segment] for k, v in params.values.items()}, h, xp=xp)
    wanted, inverse = np.unique(times, return_inverse=True)
    report = np.isin(breaks, wanted)
    steady = _steady_states(params, structure, schedule, amounts_mg, change, lo, xp)
    a1 = xp.zeros_like(p11[..., 0] * rate[..., 0])
    a2 = a1
    states = []
    for i in range(h.size):
        if emptied[i]:  # a reset (EVID 3 or 4, SS 1) empties every compartment
            a1 = a2 = xp.zeros_like(a1)
        for s1, s2 in steady.get(i, ()):  # the trough state of a steady-state dose's past
            a1, a2 = a1 + s1, a2 + s2
        if report[i]:
            states.append(a1)
        a1, a2 = (p11[..., i] * a1 + p12[..., i] * a2 + rate[..., i] * g1[..., i],
                  p21[..., i] * a1 + p22[..., i] * a2 + rate[..., i] * g2[..., i])
    amounts = xp.stack(states, axis=-1)[..., inverse.reshape(-1)]
    out_segment = (np.clip(np.searchsorted(change, times, side="right") - 1, 0, n_seg - 1)
                   if output_segments is None else np.asarray(output_segments, dtype=int))
    return amounts / params[structure.central_volume][..., out_segment]


def _steady_states(params: PKParameters, structure, schedule: DoseSchedule, amounts_mg,
                   change: np.ndarray, lo: np.ndarray, xp: ModuleType) -> dict[int, list]:
    """The amounts that each steady-state dose's infinite past leaves at its start, by the step
    of :func:`piecewise_concentrations` that starts there: with the parameters in force then,
    the fixed point ``A = Phi(tau - T) (Phi(T) A + R gamma(T))`` of one interval ``tau`` with an
    infusion of rate ``R`` over ``T``, i.e. ``A = (I - Phi(tau))^-1 Phi(tau - T) R gamma(T)``
    (2 x 2, in closed form)."""
    if schedule.ss_intervals_days is None:
        return {}
    out: dict[int, list] = {}
    for j in np.flatnonzero(schedule.ss_intervals_days > 0):
        start, tau = schedule.times_days[j], schedule.ss_intervals_days[j]
        length = schedule.durations_days[j]
        seg = int(np.clip(np.searchsorted(change, start, side="right") - 1, 0, change.size - 1))
        p = {k: v[..., seg] for k, v in params.values.items()}
        state = _fixed_point(structure, p, amounts_mg[..., j] / length, tau, length, xp)
        out.setdefault(int(np.searchsorted(lo, start)), []).append(state)
    return out


def _fixed_point(structure, p: Mapping, rate, tau: float, length: float, xp: ModuleType = np):
    """The amounts ``(A1, A2)`` at the start of each interval ``tau`` at steady state under an
    infusion of ``rate`` over ``length`` with parameters ``p``: ``A = (I - Phi(tau))^-1
    Phi(tau - T) R gamma(T)`` (2 x 2, in closed form)."""
    t11, t12, t21, t22, _, _ = structure.propagator(p, tau, xp=xp)
    r11, r12, r21, r22, _, _ = structure.propagator(p, tau - length, xp=xp)
    _, _, _, _, g1, g2 = structure.propagator(p, length, xp=xp)
    w1 = rate * (r11 * g1 + r12 * g2)
    w2 = rate * (r21 * g1 + r22 * g2)
    det = (1.0 - t11) * (1.0 - t22) - t12 * t21
    return ((1.0 - t22) * w1 + t12 * w2) / det, (t21 * w1 + (1.0 - t11) * w2) / det


#: Dosing intervals (occasions) a steady-state trough with inter-occasion variability follows:
#: the state starts at the steady state of the first interval's parameters and the trough is
#: the last interval's, so the start's influence has decayed by the disposition over 11
#: intervals (below 1e-3 of the trough's spread for half-lives up to the interval).
IOV_STEADY_STATE_INTERVALS = 12


def steady_state_trough_occasions(
    params: PKParameters,
    dose_mg: np.ndarray | float,
    interval_days: float,
    infusion_days: float,
) -> np.ndarray:
    """Steady-state trough (µg/mL) when every dosing interval has its own parameters (IOV).

    Under inter-occasion variability the trough at steady state is random from interval to
    interval: this draws it. The state starts at the steady state of the first interval's
    parameters (:func:`steady_state_trough` of them), then each following interval is
    propagated exactly with its own parameters (infusion, then decay); the trough is the
    central concentration at the end of the last interval, with its central volume. With the
    same parameters in every interval this is :func:`steady_state_trough`.

    Parameters
    ----------
    params : PKParameters
        Two-compartment parameters with the interval axis last, shape ``S + (n_intervals,)``
        (:data:`IOV_STEADY_STATE_INTERVALS` intervals is enough for half-lives up to the
        interval; more for longer ones).
    dose_mg : array-like
        Dose per infusion, mg; broadcasts against ``S``.
    interval_days, infusion_days : float
        Dosing interval and infusion duration, days (``0 < infusion <= interval``).

    Returns
    -------
    numpy.ndarray
        Troughs, µg/mL, shape ``broadcast(S, shape(dose_mg))``.
    """
    if not 0 < infusion_days <= interval_days:
        raise SpecificationError("the infusion must be positive and no longer than the interval")
    structure = params.structure
    p = _arrays(params)
    p = {k: np.broadcast_to(v, np.broadcast_shapes(params.shape, (1,))) for k, v in p.items()}
    rate = np.asarray(dose_mg, dtype=float) / infusion_days
    a1, a2 = _fixed_point(structure, {k: v[..., 0] for k, v in p.items()}, rate,
                          interval_days, infusion_days)
    for m in range(1, params.shape[-1] if params.shape else 1):
        pm = {k: v[..., m] for k, v in p.items()}
        f11, f12, f21, f22, g1, g2 = structure.propagator(pm, infusion_days)
        a1, a2 = f11 * a1 + f12 * a2 + rate * g1, f21 * a1 + f22 * a2 + rate * g2
        if interval_days > infusion_days:
            d11, d12, d21, d22, _, _ = structure.propagator(pm, interval_days - infusion_days)
            a1, a2 = d11 * a1 + d12 * a2, d21 * a1 + d22 * a2
    return a1 / p[structure.central_volume][..., -1]


def _arrays(params: PKParameters, expand: bool = False) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=float)[..., None] if expand else np.asarray(v, dtype=float)
            for k, v in params.values.items()}


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
    p = _arrays(params, expand=True)
    terms = params.structure.impulse_response(p)
    amounts = schedule.amounts_mg(weight_kg)
    out = np.zeros(np.broadcast_shapes((*params.shape, 1), (*amounts.shape[:-1], 1),
                                       times.shape))
    return out + schedule.concentrations(params.structure, p, amounts, times, route="infusion",
                                         terms=terms)


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
    return params.structure.steady_state_trough(
        _arrays(params), np.asarray(dose_mg, dtype=float), interval_days, infusion_days,
        route="infusion")


# ----------------------------------------------------------------------------------------------
# xarray wrappers


def _patients(
    model: PopulationModel, covariates: Mapping[str, object] | None
) -> tuple[dict[str, np.ndarray], int]:
    given = dict(covariates or {})
    cov = model.covariate_values(given)
    if "weight_kg" not in cov:
        weight = given.get("weight_kg", model.reference_covariates.get("weight_kg", 70.0))
        cov["weight_kg"] = model.covariate_registry.check("weight_kg", weight)
    sizes = {np.size(v) for v in cov.values() if np.ndim(v) > 0}
    if len(sizes) > 1 or any(np.ndim(v) > 1 for v in cov.values()):
        raise SpecificationError(
            "covariate arrays must be scalars or 1-D arrays of the same length (one per patient)"
        )
    n = sizes.pop() if sizes else 1
    return {k: np.broadcast_to(v, (n,)).astype(float) for k, v in cov.items()}, n


def _rng(random_seed: int | np.random.Generator | None) -> np.random.Generator:
    return (random_seed if isinstance(random_seed, np.random.Generator)
            else np.random.default_rng(resolve_seed(random_seed)))


def sample_kappa(model: PopulationModel, shape: tuple[int, ...], n_occasions: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Occasion effects drawn from ``Normal(0, omega2_iov)``, independent per occasion: shape
    ``shape + (n_occasions, n_kappa)`` in ``model.occasion_effects`` order."""
    normals = rng.standard_normal((*shape, n_occasions, len(model.occasion_effects)))
    return normals * model.omega_iov_sd


def _eta(
    model: PopulationModel,
    n_patients: int,
    n_draws: int,
    eta: np.ndarray | None,
    random_seed: int | np.random.Generator | None,
) -> tuple[np.ndarray, np.random.Generator | None]:
    """The random effects (patient, draw, n_eta) and the generator that drew them (for the
    occasion effects after them), or ``None`` for the typical patient."""
    k = len(model.random_effects)
    if eta is not None:
        eta = np.asarray(eta, dtype=float)
        if eta.ndim == 2:
            eta = eta[None]
        if eta.ndim != 3 or eta.shape[0] not in (1, n_patients) or eta.shape[2] != k:
            raise SpecificationError(
                f"eta must have shape (patient, draw, {k}) or (draw, {k}); got {eta.shape}"
            )
        return np.broadcast_to(eta, (n_patients, eta.shape[1], k)), _rng(random_seed)
    if n_draws < 0:
        raise SpecificationError("n_draws must be >= 0 (0 gives the typical patient)")
    if n_draws == 0:
        return np.zeros((n_patients, 1, k)), None
    rng = _rng(random_seed)
    return model.sample_eta((n_patients, n_draws), rng), rng


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
        Seed of the random-effect draws (eta first, then the occasion effects).

    Returns
    -------
    xarray.Dataset
        ``concentration`` (patient, draw, time_days), ``trough`` (patient, draw, dose) before
        each dose after the first, ``steady_state_trough`` (patient, draw) when a regimen was
        given, and the individual parameters of the model's structure (``cl``, ``v1``, ``q``,
        ``v2`` for the published models); every variable has a ``units`` attribute.

    Notes
    -----
    A model with inter-occasion variability (``omega2_iov``) and random effects (``n_draws >
    0`` or ``eta``) draws a kappa for every occasion of every patient and draw: one occasion
    per dosing interval, starting at each dose (:mod:`pkmodel.pk.occasions`). Concentrations
    then come from exact piecewise propagation; a trough belongs to the interval it ends; the
    steady-state trough follows :data:`IOV_STEADY_STATE_INTERVALS` intervals with their own
    kappas (:func:`steady_state_trough_occasions`); the parameters reported are the patient's
    between occasions (kappa = 0). The typical patient (``n_draws=0``) has kappa = 0. A
    model without IOV draws exactly what it drew before.

    Examples
    --------
    >>> from pkmodel.pk import simulate
    >>> ds = simulate("fasanmade2009", "5mg/kg q8w", {"weight_kg": 70})
    >>> ds.steady_state_trough.attrs["units"]
    'µg/mL'
    """
    model = get_model(model)
    cov, n = _patients(model, covariates)
    eta_arr, rng = _eta(model, n, n_draws, eta, random_seed)
    iov = bool(model.occasion_effects) and rng is not None
    if iov:
        check_iov_structure(model)
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
    if iov:
        occasions = Occasions.from_schedule(schedule)
        kappa = sample_kappa(model, eta_arr.shape[:2], len(occasions), rng)
        by_occasion, change = occasion_parameters(
            model, {k: v[:, None] for k, v in cov.items()}, occasions, eta_arr, kappa)
        amounts = schedule.amounts_mg(weight)

        def at(t: np.ndarray) -> np.ndarray:
            return piecewise_concentrations(by_occasion, change, schedule, t, amounts,
                                            output_segments=output_stretches(change, occasions,
                                                                             t))
    conc = at(times) if iov else concentrations(params, schedule, times, weight)
    coords = {"patient": np.arange(n), "draw": np.arange(eta_arr.shape[1]), "time_days": times}
    ds = xr.Dataset(coords=coords)
    ds["time_days"].attrs["units"] = "day"
    ds["concentration"] = (("patient", "draw", "time_days"), conc, {"units": CONC_UNITS})
    if len(schedule) >= 2:
        tr = at(schedule.times_days[1:]) if iov else troughs(params, schedule, weight)
        ds = ds.assign_coords(dose_time_days=("dose", schedule.times_days[1:]))
        ds["dose_time_days"].attrs["units"] = "day"
        ds["trough"] = (("patient", "draw", "dose"), tr, {"units": CONC_UNITS,
                        "description": "concentration just before each dose after the first"})
    if reg is not None and iov:
        kappa_ss = sample_kappa(model, eta_arr.shape[:2], IOV_STEADY_STATE_INTERVALS, rng)
        cov_ss = {k: v[:, None, None] for k, v in cov.items()}
        ss = steady_state_trough_occasions(
            model.individual_parameters(cov_ss, eta_arr[:, :, None, :], kappa_ss),
            reg.dose_mg_kg * weight, reg.interval_days, reg.infusion_days)
    elif reg is not None:
        ss = steady_state_trough(params, reg.dose_mg_kg * weight, reg.interval_days,
                                 reg.infusion_days)
    if reg is not None:
        ds["steady_state_trough"] = (("patient", "draw"),
                                     np.broadcast_to(ss, (n, eta_arr.shape[1])),
                                     {"units": CONC_UNITS, "regimen": reg.label})
    for p, unit in params.structure.units().items():
        ds[p] = (("patient", "draw"), np.broadcast_to(params[p], (n, eta_arr.shape[1])),
                 {"units": unit})
    for name, values in cov.items():
        ds[name] = ("patient", values, {"units": model.covariate_registry[name].unit})
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

    The structure's exponentials are computed once and reused for every regimen, so a million
    patients under four regimens take well under a second (see ``benchmarks/bench_pk.py``).
    A model with inter-occasion variability and random effects follows
    :data:`IOV_STEADY_STATE_INTERVALS` intervals, each with its own kappa (the same draws for
    every regimen; :func:`steady_state_trough_occasions`).

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
    eta_arr, rng = _eta(model, n, n_draws, eta, random_seed)
    params = model.individual_parameters({k: v[:, None] for k, v in cov.items()}, eta_arr)
    p = _arrays(params)
    terms = params.structure.impulse_response(p)
    weight = cov["weight_kg"][:, None]
    shape = (n, eta_arr.shape[1])
    out = np.empty((len(regs), *shape))
    iov = bool(model.occasion_effects) and rng is not None
    if iov:  # the same kappas of the occasions for every regimen
        check_iov_structure(model)
        kappa = sample_kappa(model, shape, IOV_STEADY_STATE_INTERVALS, rng)
        by_occasion = model.individual_parameters(
            {k: v[:, None, None] for k, v in cov.items()}, eta_arr[:, :, None, :], kappa)
    for i, reg in enumerate(regs):
        if iov:
            out[i] = steady_state_trough_occasions(by_occasion, reg.dose_mg_kg * weight,
                                                   reg.interval_days, reg.infusion_days)
            continue
        out[i] = params.structure.steady_state_trough(
            p, reg.dose_mg_kg * weight, reg.interval_days, reg.infusion_days, route="infusion",
            terms=terms)
    return xr.DataArray(
        out,
        dims=("regimen", "patient", "draw"),
        coords={"regimen": [r.label for r in regs], "patient": np.arange(n),
                "draw": np.arange(shape[1])},
        name="steady_state_trough",
        attrs={"units": CONC_UNITS, "model": model.name},
    )
