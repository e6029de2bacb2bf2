"""Structural PK models as objects: their parameters, and the concentrations they predict.

A structure is what the rest of pkmodel asks about a PK model's compartments: its parameters
(each with a unit kind, so that a dataset's own time unit can apply), the concentration that one
dose gives some time after it started, over an array namespace ``xp`` (NumPy, or
``pytensor.tensor`` inside a PyMC model), the steady-state trough and, for time-varying
parameters, the exact one-step propagator of its state. The population model
(:mod:`pkmodel.pk.population`), the published models (:class:`pkmodel.pk.models.PopulationModel`)
and simulation (:mod:`pkmodel.pk.simulation`) read all of it from the structure object and never
branch on the number of compartments or the dosing route.

One implementation covers the linear mammillary models: :class:`LinearCompartmental`, given the
number of compartments (1, 2 or 3) and how the doses are given (IV bolus, zero-order infusion,
first-order absorption from a depot). Its unit-impulse response in central concentration is a
sum of exponentials ``sum_k c_k exp(-lambda_k t)``, and every dose route follows from it by
superposition (a dose ``D`` started ``t`` ago):

* IV bolus: ``D sum_k c_k exp(-lambda_k t)``;
* zero-order infusion over ``T`` (rate ``R = D / T``, ``s = min(t, T)``):
  ``R sum_k (c_k / lambda_k) (exp(-lambda_k (t - s)) - exp(-lambda_k t))``;
* first-order absorption (``ka``, bioavailability 1):
  ``D ka sum_k c_k (exp(-lambda_k t) - exp(-ka t)) / (ka - lambda_k)``.

At steady state under a dose every ``tau`` the trough is the geometric series of each
exponential, ``exp(-lambda tau) / (1 - exp(-lambda tau))`` in place of ``exp(-lambda tau)``.

The exponentials: one compartment ``(1/V, CL/V)``; two, the hybrid constants ``alpha > beta`` of
:func:`disposition`; three, the roots of the cubic characteristic polynomial (trigonometric
form) with ``c_k = (k21 - lambda_k)(k31 - lambda_k) / (V1 prod_{j != k} (lambda_j -
lambda_k))``. A new linear structure is one more case of :meth:`LinearCompartmental.
impulse_response`; a structure that superposition does not serve (Michaelis-Menten elimination,
target-mediated disposition) implements the :class:`Structure` protocol with ``superposition =
False`` (see docs/architecture.md for what it then needs).

Units: amounts in mg, volumes in L, concentrations in mg/L (= µg/mL), times in days unless a
structure's parameters are stated in another time unit (:meth:`StructuralParameter.unit`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import reduce
from operator import add
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.pk.units import KINDS, parameter_unit

__all__ = ["DOSING", "LINEAR_STRUCTURES", "ONE_COMPARTMENT", "PARAMETER_KINDS",
           "PARAMETER_UNITS", "THREE_COMPARTMENT", "TWO_COMPARTMENT", "LinearCompartmental",
           "StructuralParameter", "Structure", "disposition", "linear_structure"]

#: Unit kinds of structural parameters: a volume, a clearance (volume per time), a first-order
#: rate constant (per time); their conversions are :mod:`pkmodel.pk.units`'.
PARAMETER_KINDS = KINDS
#: How doses enter: into the central compartment at once, over an infusion, or from a depot.
DOSING = ("bolus", "infusion", "oral")
_ROUTE_LABELS = {"bolus": "IV bolus", "infusion": "zero-order infusion",
                 "oral": "first-order absorption"}


@dataclass(frozen=True)
class StructuralParameter:
    """A structural parameter: its name and the kind of its unit.

    Parameters
    ----------
    name : str
        The name used everywhere (``cl``, ``v1``, ``q2``, ``ka``...).
    kind : {"volume", "volume/time", "1/time"}
        The kind of its unit, so that the unit follows the time unit in use.
    description : str
        What it is, in words.
    """

    name: str
    kind: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PARAMETER_KINDS:
            raise SpecificationError(f"parameter {self.name}: kind must be one of "
                                     f"{', '.join(PARAMETER_KINDS)}, not {self.kind!r}")

    def unit(self, time_unit: str = "day", volume_unit: str = "L") -> str:
        """The unit, e.g. ``L/day`` for a clearance (``L/hour`` with ``time_unit="hour"``)."""
        return parameter_unit(self.kind, time_unit, volume_unit)


@runtime_checkable
class Structure(Protocol):
    """What pkmodel needs of a structural PK model.

    Attributes
    ----------
    parameters : tuple of StructuralParameter
        Its parameters, in order.
    superposition : bool
        Whether a subject's concentrations are the sum of what each dose gives alone (linear
        kinetics): the population model then predicts over all dose-observation pairs at once,
        with :meth:`response`. A structure without superposition (a nonlinear ODE) needs the
        whole dosing history of a subject at once: see docs/architecture.md.
    instantaneous : bool
        Whether a dose raises the concentration at the very time it is given (an IV bolus): an
        observation at a dose's time then includes it.
    infusions : bool
        Whether doses are zero-order infusions whose durations the data must give.
    """

    parameters: tuple[StructuralParameter, ...]
    superposition: bool

    @property
    def parameter_names(self) -> tuple[str, ...]: ...

    @property
    def instantaneous(self) -> bool: ...

    @property
    def infusions(self) -> bool: ...

    def label(self) -> str:
        """One line, e.g. ``2-compartment, zero-order infusion``."""

    def to_dict(self) -> dict:
        """Plain-JSON description (read back by :func:`linear_structure` and its kin)."""

    def unit(self, name: str, time_unit: str = "day") -> str:
        """The unit of parameter ``name``."""

    def response(self, p: Mapping[str, Any], amount, elapsed, duration, *,
                 route: str | None = None, xp: ModuleType = np, terms=None):
        """Concentration that one dose gives ``elapsed`` after it started (0 before)."""

    def steady_state_trough(self, p: Mapping[str, Any], dose, interval, duration, *,
                            route: str | None = None, xp: ModuleType = np, terms=None):
        """Concentration just before a dose at steady state under ``dose`` every
        ``interval``."""

    def past_doses(self, p: Mapping[str, Any], amount, elapsed, duration, interval, *,
                   route: str | None = None, xp: ModuleType = np, terms=None):
        """What the infinite past of a steady-state dose (NONMEM ``SS``) adds ``elapsed`` after
        it started: the doses every ``interval`` before it."""

    def impulse_response(self, p: Mapping[str, Any],
                         xp: ModuleType = np) -> list[tuple[Any, Any]]:
        """``(c_k, lambda_k)`` of the central concentration after a unit IV bolus, slowest
        last."""


def disposition(cl, v1, q, v2, xp: ModuleType = np):
    """Hybrid rate constants and coefficients of the two-compartment impulse response.

    Parameters
    ----------
    cl, v1, q, v2 : array-like
        CL (L/day), V1 (L), Q (L/day), V2 (L); numpy arrays, or symbolic tensors with
        ``xp=pytensor.tensor``.
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


def _three_compartment(p: Mapping[str, Any], xp: ModuleType) -> list[tuple[Any, Any]]:
    """The exponentials of the three-compartment model: the roots of the characteristic cubic
    ``lambda^3 - a2 lambda^2 + a1 lambda - a0`` in trigonometric form (three distinct positive
    real roots), the smallest as ``a0 / (lambda_1 lambda_2)`` (no cancellation), and their
    coefficients."""
    v1 = p["v1"]
    k10, k12, k13 = p["cl"] / v1, p["q2"] / v1, p["q3"] / v1
    k21, k31 = p["q2"] / p["v2"], p["q3"] / p["v3"]
    a0 = k10 * k21 * k31
    a1 = k10 * k31 + k21 * k31 + k21 * k13 + k10 * k21 + k31 * k12
    a2 = k10 + k12 + k13 + k21 + k31
    third = a2 / 3.0
    depressed = a1 - a2 * third  # p of x^3 + p x + q with lambda = x + a2 / 3 (p < 0)
    shift = 2.0 * third**3 - a1 * third + a0  # -q
    r1 = xp.sqrt(-(depressed**3) / 27.0)
    theta = xp.arccos(xp.clip(shift / (2.0 * r1), -1.0, 1.0))
    r2 = 2.0 * xp.sqrt(-depressed / 3.0)
    lam1 = third + r2 * xp.cos(theta / 3.0)
    lam2 = third + r2 * xp.cos(theta / 3.0 - 2.0 * math.pi / 3.0)
    lam3 = a0 / (lam1 * lam2)
    lams = (lam1, lam2, lam3)
    out = []
    for k, lam in enumerate(lams):
        others = [lams[j] for j in range(3) if j != k]
        c = (k21 - lam) * (k31 - lam) / (v1 * (others[0] - lam) * (others[1] - lam))
        out.append((c, lam))
    return out


@dataclass(frozen=True)
class LinearCompartmental:
    """A linear mammillary model: elimination from the central compartment, 1 to 3 compartments.

    Parameters
    ----------
    compartments : {1, 2, 3}
        ``cl, v`` (one); ``cl, v1, q, v2`` (two; NONMEM ADVAN3 TRANS4); ``cl, v1, q2, v2, q3,
        v3`` (three; ADVAN11 TRANS4, as Monolix names them too). Clearances in volume/time,
        volumes in L.
    dosing : {"bolus", "infusion", "oral"}
        How the doses of a dataset enter: an IV bolus into the central compartment, a
        zero-order infusion into it (duration from the data), or first-order absorption from a
        depot (``ka`` added, 1/time; bioavailability 1, so that clearances and volumes are
        apparent: CL/F, V/F). Doses may also name their route (:meth:`response`), so that an
        IV infusion regimen can be given to a model fitted on bolus data.

    Examples
    --------
    >>> s = LinearCompartmental(3, "infusion")
    >>> s.parameter_names, s.label()
    (('cl', 'v1', 'q2', 'v2', 'q3', 'v3'), '3-compartment, zero-order infusion')
    """

    compartments: int
    dosing: str = "infusion"
    superposition: bool = field(default=True, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.compartments, bool) or self.compartments not in (1, 2, 3):
            raise SpecificationError(f"compartments must be 1, 2 or 3, not "
                                     f"{self.compartments!r}")
        if self.dosing not in DOSING:
            raise SpecificationError(f"dosing must be one of {', '.join(DOSING)}, not "
                                     f"{self.dosing!r}")

    # ------------------------------------------------------------------ what it is
    @property
    def parameters(self) -> tuple[StructuralParameter, ...]:
        """Clearance, then each volume and inter-compartmental clearance, then ``ka``."""
        cl = StructuralParameter("cl", "volume/time", "clearance from the central compartment")
        if self.compartments == 1:
            out = [cl, StructuralParameter("v", "volume", "volume of distribution")]
        else:
            out = [cl, StructuralParameter("v1", "volume", "central volume")]
            for q, v in self._peripheral():
                k = v[1:]
                out += [StructuralParameter(q, "volume/time",
                                            f"inter-compartmental clearance to compartment {k}"),
                        StructuralParameter(v, "volume", f"peripheral volume {k}")]
        if self.dosing == "oral":
            out.append(StructuralParameter("ka", "1/time", "first-order absorption rate"))
        return tuple(out)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The parameters' names, in order."""
        return tuple(p.name for p in self.parameters)

    @property
    def central_volume(self) -> str:
        """The name of the central volume (``v`` or ``v1``)."""
        return "v" if self.compartments == 1 else "v1"

    @property
    def instantaneous(self) -> bool:
        """An IV bolus raises the concentration at its own time."""
        return self.dosing == "bolus"

    @property
    def infusions(self) -> bool:
        """Zero-order infusions: the data must give each dose's duration."""
        return self.dosing == "infusion"

    def _peripheral(self) -> list[tuple[str, str]]:
        if self.compartments == 2:
            return [("q", "v2")]
        return [("q2", "v2"), ("q3", "v3")][: self.compartments - 1]

    def label(self) -> str:
        """E.g. ``2-compartment, zero-order infusion``."""
        return f"{self.compartments}-compartment, {_ROUTE_LABELS[self.dosing]}"

    def to_dict(self) -> dict:
        """``{"compartments": n, "dosing": route}``: the ``[model]`` table of a specification."""
        return {"compartments": self.compartments, "dosing": self.dosing}

    def unit(self, name: str, time_unit: str = "day") -> str:
        """The unit of parameter ``name`` when times are in ``time_unit``."""
        for p in self.parameters:
            if p.name == name:
                return p.unit(time_unit)
        raise SpecificationError(f"a {self.label()} model has no parameter {name!r} "
                                 f"({', '.join(self.parameter_names)})")

    def kind(self, name: str) -> str:
        """The kind of parameter ``name``'s unit (``volume``, ``volume/time``, ``1/time``)."""
        for p in self.parameters:
            if p.name == name:
                return p.kind
        raise SpecificationError(f"a {self.label()} model has no parameter {name!r} "
                                 f"({', '.join(self.parameter_names)})")

    def units(self, time_unit: str = "day") -> dict[str, str]:
        """Every parameter's unit, in order."""
        return {p.name: p.unit(time_unit) for p in self.parameters}

    # ------------------------------------------------------------------ predictions
    def impulse_response(self, p: Mapping[str, Any],
                         xp: ModuleType = np) -> list[tuple[Any, Any]]:
        """``(c_k, lambda_k)``: the central concentration after a unit IV bolus is ``sum_k c_k
        exp(-lambda_k t)`` (``c`` in 1/L, ``lambda`` in 1/time), fastest first.

        ``p`` maps the parameter names to arrays that broadcast (numpy, or tensors with
        ``xp=pytensor.tensor``).
        """
        if self.compartments == 1:
            return [(1.0 / p["v"], p["cl"] / p["v"])]
        if self.compartments == 2:
            alpha, beta, a, b = disposition(p["cl"], p["v1"], p["q"], p["v2"], xp=xp)
            return [(a, alpha), (b, beta)]
        return _three_compartment(p, xp)

    def _route(self, route: str | None) -> str:
        route = self.dosing if route is None else route
        if route not in DOSING or (route == "oral" and self.dosing != "oral"):
            raise SpecificationError(f"a {self.label()} model takes doses as an IV bolus or an "
                                     f"infusion{' or orally' if self.dosing == 'oral' else ''}"
                                     f", not {route!r}")
        return route

    def response(self, p: Mapping[str, Any], amount, elapsed, duration, *,
                 route: str | None = None, xp: ModuleType = np, terms=None):
        """Concentration (mg/L) that a dose of ``amount`` mg gives ``elapsed`` after it started.

        Parameters
        ----------
        p : mapping
            Parameter name -> array (broadcasting against the other arguments).
        amount, elapsed, duration : array-like
            The dose (mg), the time since it started and its infusion duration (used by
            ``infusion`` only; > 0 there). Zero for ``elapsed <= 0`` (but an IV bolus counts
            at ``elapsed == 0``).
        route : {"bolus", "infusion", "oral"}, optional
            How this dose enters; default :attr:`dosing`. ``oral`` needs a depot (``dosing =
            "oral"``).
        xp : module, default numpy
            The array namespace (``exp``, ``maximum``, ``minimum``, ``sqrt``).
        terms : list, optional
            The exponentials of :meth:`impulse_response`, when already computed.
        """
        route = self._route(route)
        terms = self.impulse_response(p, xp) if terms is None else terms
        t = xp.maximum(elapsed, 0.0)
        if route == "bolus":  # given at elapsed 0: nothing before it
            return xp.where(elapsed >= 0, amount * sum(c * xp.exp(-lam * t) for c, lam in terms),
                            0.0)
        if route == "infusion":
            s = xp.minimum(t, duration)
            return (amount / duration) * reduce(add, [
                (c / lam) * (xp.exp(-lam * (t - s)) - xp.exp(-lam * t)) for c, lam in terms])
        ka = p["ka"]
        return amount * ka * sum(c * (xp.exp(-lam * t) - xp.exp(-ka * t)) / (ka - lam)
                                 for c, lam in terms)

    def steady_state_trough(self, p: Mapping[str, Any], dose, interval, duration, *,
                            route: str | None = None, xp: ModuleType = np, terms=None):
        """Concentration (mg/L) just before a dose, at steady state under ``dose`` mg every
        ``interval`` (the geometric series of each exponential); ``duration`` as in
        :meth:`response` (an infusion no longer than the interval): :meth:`past_doses` at
        ``elapsed = 0``."""
        return self.past_doses(p, dose, 0.0, duration, interval, route=route, xp=xp,
                               terms=terms)

    def past_doses(self, p: Mapping[str, Any], amount, elapsed, duration, interval, *,
                   route: str | None = None, xp: ModuleType = np, terms=None):
        """Concentration (mg/L) that the infinite past of a steady-state dose gives: the doses
        of ``amount`` mg every ``interval`` before one started ``elapsed`` ago,
        ``sum_{k >= 1} response(elapsed + k interval)``, in closed form.

        Every past dose is over (an infusion no longer than ``interval``), so each is a sum of
        exponentials and the series of each is geometric: ``exp(-lambda s)`` summed over ``s =
        elapsed + k interval`` is ``exp(-lambda (elapsed + interval)) / (1 - exp(-lambda
        interval))``. A steady-state dose (NONMEM ``SS``) is :meth:`response` plus this; the
        steady-state trough is this at ``elapsed = 0``. Arguments as :meth:`response`;
        ``elapsed >= 0``.
        """
        route = self._route(route)
        terms = self.impulse_response(p, xp) if terms is None else terms

        def series(lam, shift=0.0):  # sum_{k >= 1} exp(-lam (elapsed - shift + k interval))
            return xp.exp(-lam * (elapsed + interval - shift)) / -xp.expm1(-lam * interval)

        if route == "bolus":
            return amount * reduce(add, [c * series(lam) for c, lam in terms])
        if route == "infusion":  # one over: (R c / lam) (1 - e^(-lam T)) e^(-lam (s - T))
            return (amount / duration) * reduce(add, [
                (c / lam) * -xp.expm1(-lam * duration) * series(lam, duration)
                for c, lam in terms])
        ka = p["ka"]
        return amount * ka * reduce(add, [c * (series(lam) - series(ka)) / (ka - lam)
                                          for c, lam in terms])

    def propagator(self, p: Mapping[str, Any], h, xp: ModuleType = np):
        """The exact one-step propagator of the amounts over ``h`` with constant parameters.

        With the state ``A = (A1, A2)`` (central and peripheral amounts, mg) and a constant
        infusion rate ``R`` into the central compartment over the step, ``A(t + h) = Phi @ A(t)
        + R * gamma``, ``Phi = expm(K h)``, ``gamma = integral_0^h expm(K s) ds @ (1, 0)``, in
        closed form from alpha and beta (Sylvester's formula). Returns ``phi11, phi12, phi21,
        phi22, gamma1, gamma2``.

        Implemented for two compartments (the published models' structure). Other linear
        structures follow the same way (``Phi = sum_k exp(-lambda_k h) P_k`` with the spectral
        projectors ``P_k = prod_{j != k} (K + lambda_j I) / (lambda_j - lambda_k)`` and one
        state per compartment, a depot for oral dosing); they are refused until written.

        Raises
        ------
        SpecificationError
            For another structure.
        """
        if self.compartments != 2 or self.dosing == "oral":
            raise SpecificationError(
                f"parameters that change with time (a covariate history) are propagated "
                f"exactly for the 2-compartment IV models only, not a {self.label()} model; "
                "use constant covariates with this model")
        k12 = p["q"] / p["v1"]
        k21 = p["q"] / p["v2"]
        alpha, beta, _, _ = disposition(p["cl"], p["v1"], p["q"], p["v2"], xp=xp)
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


def linear_structure(compartments: int = 2, dosing: str = "infusion") -> LinearCompartmental:
    """The linear structure of ``compartments`` and ``dosing`` (the ``[model]`` table of a
    specification), with the errors a user needs."""
    return LinearCompartmental(compartments, dosing)


#: The structure of every published infliximab model: two compartments, IV infusions.
TWO_COMPARTMENT = LinearCompartmental(2, "infusion")
#: One compartment, IV infusions.
ONE_COMPARTMENT = LinearCompartmental(1, "infusion")
#: Three compartments, IV infusions.
THREE_COMPARTMENT = LinearCompartmental(3, "infusion")
#: Every linear structure (compartments x dosing).
LINEAR_STRUCTURES = tuple(LinearCompartmental(n, d) for n in (1, 2, 3) for d in DOSING)
#: The unit (times in days) of every parameter name of the linear structures.
PARAMETER_UNITS: dict[str, str] = {p.name: p.unit() for s in LINEAR_STRUCTURES
                                   for p in s.parameters}
