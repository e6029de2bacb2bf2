"""Concrete dosing histories: dose times, amounts and infusion durations, and regimen switches.

A :class:`DoseSchedule` lists every infusion. Amounts are either weight-based (mg/kg, multiplied
by each patient's weight when simulating, so that one schedule serves a whole virtual population)
or absolute (mg, as in a NONMEM dataset). Times are in days from the first dose.
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
    """

    times_days: np.ndarray
    amounts: np.ndarray
    durations_days: np.ndarray
    per_kg: bool = True

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
        for name, value in (("times_days", t), ("amounts", a), ("durations_days", d)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return int(self.times_days.size)

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
        return DoseSchedule(
            np.concatenate([self.times_days[keep], new.times_days]),
            np.concatenate([old_amounts, new_amounts]),
            np.concatenate([self.durations_days[keep], new.durations_days]),
            per_kg=per_kg,
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
        return {
            "times_days": self.times_days.tolist(),
            "amounts": self.amounts.tolist(),
            "amount_unit": "mg/kg" if self.per_kg else "mg",
            "durations_days": self.durations_days.tolist(),
        }
