"""Concrete dosing histories: dose times, amounts and infusion durations, and regimen switches.

A :class:`DoseSchedule` lists every infusion. Amounts are either weight-based (mg/kg, multiplied
by each patient's weight when simulating, so that one schedule serves a whole virtual population)
or absolute (mg, as in a NONMEM dataset). Times are in days from the first dose.

A schedule read from a NONMEM dataset may also carry that dataset's events
(:mod:`pkmodel.pk.events`): each dose's route (``CMT``), steady-state doses (``SS``: the dose
repeated every interval since forever, :meth:`~pkmodel.pk.structures.LinearCompartmental.
past_doses`) and resets (``EVID`` 3 and 4, ``SS`` 1: every compartment emptied, so that a dose
before a reset gives nothing after it). :meth:`DoseSchedule.concentrations` sums them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.pk.regimens import Regimen, parse_regimen

__all__ = ["DoseSchedule"]


@dataclass(frozen=True)
class DoseSchedule:
    """Infusions given to a patient.

    Parameters
    ----------
    times_days : numpy.ndarray
        Start of each infusion, days, non-decreasing.
    amounts : numpy.ndarray
        Dose of each infusion: mg/kg when ``per_kg`` is true, else mg.
    durations_days : numpy.ndarray
        Duration of each infusion, days (> 0).
    per_kg : bool, default True
        Whether ``amounts`` are mg/kg.
    routes : tuple of str, optional
        How each dose enters (``bolus``, ``infusion``, ``oral``: a structure's ``route``);
        default the route its caller gives (an infusion, for the published models).
    ss_intervals_days : numpy.ndarray, optional
        For a steady-state dose (NONMEM ``SS``), the interval at which it was repeated before,
        days (an infusion no longer than it: the reader checks it); 0 for an ordinary dose (the
        default for all).
    reset_days : numpy.ndarray, optional
        Times at which every compartment is emptied (NONMEM ``EVID`` 3 or 4, ``SS`` 1): a dose
        contributes nothing at or after a reset later than its start. A dose at the time of a
        reset follows it.
    """

    times_days: np.ndarray
    amounts: np.ndarray
    durations_days: np.ndarray
    per_kg: bool = True
    routes: tuple[str, ...] | None = None
    ss_intervals_days: np.ndarray | None = None
    reset_days: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = np.atleast_1d(np.asarray(self.times_days, dtype=float))
        a = np.broadcast_to(np.asarray(self.amounts, dtype=float), t.shape).copy()
        d = np.broadcast_to(np.asarray(self.durations_days, dtype=float), t.shape).copy()
        if t.ndim != 1 or t.size == 0:
            raise SpecificationError("a dose schedule needs at least one dose time")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(a)) and np.all(np.isfinite(d))):
            raise SpecificationError("dose times, amounts and durations must be finite")
        if np.any(np.diff(t) < 0):
            raise SpecificationError("dose times must be in increasing order")
        if np.any(a <= 0) or np.any(d <= 0):
            raise SpecificationError("dose amounts and infusion durations must be positive")
        if self.routes is not None:
            routes = tuple(str(r) for r in self.routes)
            if len(routes) != t.size:
                raise SpecificationError("give one route per dose")
            object.__setattr__(self, "routes", routes)
        ss = None
        if self.ss_intervals_days is not None:
            ss = np.broadcast_to(np.asarray(self.ss_intervals_days, dtype=float), t.shape).copy()
            if not np.all(np.isfinite(ss)) or np.any(ss < 0):
                raise SpecificationError("steady-state intervals must be finite and >= 0")
        resets = None
        if self.reset_days is not None:
            resets = np.unique(np.atleast_1d(np.asarray(self.reset_days, dtype=float)))
            if not np.all(np.isfinite(resets)):
                raise SpecificationError("reset times must be finite")
        for name, value in (("times_days", t), ("amounts", a), ("durations_days", d),
                            ("ss_intervals_days", ss), ("reset_days", resets)):
            if value is not None:
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return int(self.times_days.size)

    @property
    def has_events(self) -> bool:
        """Whether any dose has a route of its own, a steady state, or a reset before it."""
        return (self.routes is not None
                or (self.ss_intervals_days is not None and bool(np.any(self.ss_intervals_days)))
                or (self.reset_days is not None and self.reset_days.size > 0))

    def courses(self, times_days) -> np.ndarray:
        """How many resets there were at or before each of ``times_days``: a dose contributes
        at a time of the same course only."""
        times = np.asarray(times_days, dtype=float)
        if self.reset_days is None:
            return np.zeros(times.shape, dtype=int)
        return np.searchsorted(self.reset_days, times, side="right")

    def concentrations(self, structure, p, amounts_mg, times_days, *, route: str | None = None,
                       terms=None, xp=np):
        """Concentrations (mg/L) at ``times_days``: every dose's
        :meth:`~pkmodel.pk.structures.Structure.response` at its route, plus its infinite past
        for a steady-state dose, over the doses of the same course (no reset between).

        Parameters
        ----------
        structure : Structure
            The structural model.
        p : mapping
            Its parameters, arrays broadcasting against ``(n_times,)`` (numpy, or tensors with
            ``xp=pytensor.tensor``).
        amounts_mg : array-like
            Each dose in mg, shape ``(..., n_doses)``.
        times_days : array-like
            Output times, days since the first dose, shape ``(n_times,)``.
        route : str, optional
            The route of doses without one of their own (default the structure's).
        terms : list, optional
            The structure's impulse response, when already computed.
        xp : module, default numpy
            The array namespace.
        """
        times = np.atleast_1d(np.asarray(times_days, dtype=float))
        terms = structure.impulse_response(p, xp) if terms is None else terms
        amounts = amounts_mg
        same = self.courses(times)[:, None] == self.courses(self.times_days)[None, :]
        ss = (np.zeros(len(self)) if self.ss_intervals_days is None
              else self.ss_intervals_days)
        total = 0.0
        for j in range(len(self)):
            elapsed = times - self.times_days[j]
            live = same[:, j] & (elapsed >= 0)
            r = route if self.routes is None else self.routes[j]
            amount = amounts[..., j, None]
            c = structure.response(p, amount, elapsed, self.durations_days[j], route=r, xp=xp,
                                   terms=terms)
            if ss[j] > 0:
                c = c + structure.past_doses(p, amount, np.maximum(elapsed, 0.0),
                                             self.durations_days[j], ss[j], route=r, xp=xp,
                                             terms=terms) * live
            total = total + (c if same[:, j].all() else c * same[:, j])
        return total

    @classmethod
    def from_regimen(
        cls,
        regimen: Regimen | str,
        *,
        until_week: float | None = None,
        n_maintenance: int | None = None,
    ) -> DoseSchedule:
        """The doses of ``regimen``: induction, then maintenance.

        Parameters
        ----------
        regimen : Regimen or str
            The regimen (a string is parsed).
        until_week : float, optional
            Give every dose that starts before this week.
        n_maintenance : int, optional
            Or give this many maintenance doses after induction (default 6).
        """
        regimen = parse_regimen(regimen)
        induction = list(regimen.induction_weeks)
        start = (induction[-1] + regimen.interval_weeks) if induction else 0.0
        if until_week is not None:
            n = max(0, int(np.ceil((float(until_week) - start) / regimen.interval_weeks - 1e-9)))
        else:
            n = 6 if n_maintenance is None else int(n_maintenance)
        weeks = np.array(induction + [start + i * regimen.interval_weeks for i in range(n)])
        if until_week is not None:
            weeks = weeks[weeks < float(until_week)]
        amounts = np.array([regimen.induction_dose] * len(induction) + [regimen.dose_mg_kg] * n)
        return cls(weeks * 7.0, amounts[: weeks.size], regimen.infusion_days, per_kg=True)

    @classmethod
    def maintenance(
        cls, regimen: Regimen | str, *, start_day: float, n_doses: int
    ) -> DoseSchedule:
        """``n_doses`` maintenance doses of ``regimen`` from ``start_day``, without induction."""
        regimen = parse_regimen(regimen)
        if n_doses < 1:
            raise SpecificationError("n_doses must be at least 1")
        times = float(start_day) + regimen.interval_days * np.arange(n_doses)
        return cls(times, regimen.dose_mg_kg, regimen.infusion_days, per_kg=True)

    def switched(
        self,
        regimen: Regimen | str,
        *,
        at_day: float,
        n_doses: int,
        weight_kg: float | np.ndarray | None = None,
    ) -> DoseSchedule:
        """This history up to ``at_day`` (doses starting before it), then ``regimen`` from then on.

        The new regimen's first dose is given at ``at_day`` and is followed by ``n_doses - 1``
        more at its interval (no new induction). This is the clinical switch from q8w maintenance
        to an intensified regimen.

        Parameters
        ----------
        regimen : Regimen or str
            The regimen switched to.
        at_day : float
            Day of the first dose of the new regimen.
        n_doses : int
            Number of doses of the new regimen.
        weight_kg : float or array-like, optional
            Needed when this history is in mg and the new regimen in mg/kg: one weight, or one
            per new dose (e.g. the weight in force at each dose under a covariate history).
        """
        new = DoseSchedule.maintenance(regimen, start_day=at_day, n_doses=n_doses)
        keep = self.times_days < float(at_day)
        old_amounts = self.amounts[keep]
        new_amounts = new.amounts
        per_kg = self.per_kg
        if not self.per_kg:
            if weight_kg is None:
                raise SpecificationError(
                    "this dosing history is in mg; give weight_kg to add a mg/kg regimen"
                )
            weight = np.asarray(weight_kg, dtype=float)
            if weight.ndim > 1 or weight.size not in (1, new_amounts.size):
                raise SpecificationError(
                    f"weight_kg must be one weight or one per new dose ({new_amounts.size})")
            new_amounts = new_amounts * weight
        routes = None if self.routes is None else (
            *(r for r, k in zip(self.routes, keep, strict=True) if k),
            *("infusion",) * len(new))
        ss = None if self.ss_intervals_days is None else np.concatenate(
            [self.ss_intervals_days[keep], np.zeros(len(new))])
        resets = None if self.reset_days is None else self.reset_days[
            self.reset_days < float(at_day)]
        return DoseSchedule(
            np.concatenate([self.times_days[keep], new.times_days]),
            np.concatenate([old_amounts, new_amounts]),
            np.concatenate([self.durations_days[keep], new.durations_days]),
            per_kg=per_kg, routes=routes, ss_intervals_days=ss, reset_days=resets,
        )

    def amounts_mg(self, weight_kg: np.ndarray | float | None = None) -> np.ndarray:
        """Dose amounts in mg, shape ``np.shape(weight_kg) + (n_doses,)`` for weight-based doses."""
        if not self.per_kg:
            return self.amounts
        if weight_kg is None:
            raise SpecificationError("a weight (kg) is needed to turn mg/kg doses into mg")
        w = np.asarray(weight_kg, dtype=float)
        return w[..., None] * self.amounts

    def to_dict(self) -> dict:
        """Plain-JSON description."""
        out = {
            "times_days": self.times_days.tolist(),
            "amounts": self.amounts.tolist(),
            "amount_unit": "mg/kg" if self.per_kg else "mg",
            "durations_days": self.durations_days.tolist(),
        }
        if self.routes is not None:
            out["routes"] = list(self.routes)
        if self.ss_intervals_days is not None:
            out["ss_intervals_days"] = self.ss_intervals_days.tolist()
        if self.reset_days is not None:
            out["reset_days"] = self.reset_days.tolist()
        return out
