"""Infliximab dosing regimens: the value type, the named regimens and a parser for "10mg/kg q8w".

A regimen is weight-based: a dose in mg/kg given every ``interval_weeks`` weeks as a zero-order
intravenous infusion of ``infusion_hours`` hours, after induction doses at ``induction_weeks``
(weeks 0, 2 and 6 by default). Concrete dose times and amounts for one patient are built by
:class:`pkmodel.pk.schedules.DoseSchedule`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pkmodel.errors import SpecificationError

__all__ = ["NAMED_REGIMENS", "Regimen", "parse_regimen"]

_PATTERN = re.compile(
    r"^\s*(?P<dose>\d+(?:\.\d+)?)\s*mg\s*/\s*kg\s*"
    r"(?:q|every\s*)(?P<interval>\d+(?:\.\d+)?)\s*(?:w|wk|wks|week|weeks)\b"
    r"(?:\s*(?:over\s*)?(?P<inf>\d+(?:\.\d+)?)\s*(?P<inf_unit>h|hr|hrs|hours?|min|minutes?))?"
    r"\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Regimen:
    """An infliximab regimen.

    Parameters
    ----------
    dose_mg_kg : float
        Maintenance dose, mg per kg of body weight.
    interval_weeks : float
        Maintenance dosing interval, weeks.
    infusion_hours : float, default 2
        Duration of each zero-order infusion, hours.
    induction_weeks : tuple of float, default (0, 2, 6)
        Weeks of the induction doses; maintenance starts ``interval_weeks`` after the last one.
        An empty tuple means maintenance from week 0.
    induction_dose_mg_kg : float, optional
        Induction dose, mg/kg; defaults to ``dose_mg_kg``.
    name : str, optional
        A label for tables; defaults to the canonical string, e.g. ``"5 mg/kg q8w"``.

    Examples
    --------
    >>> Regimen(10, 8).label
    '10 mg/kg q8w'
    >>> parse_regimen("5 mg/kg q4w") == Regimen(5, 4)
    True
    """

    dose_mg_kg: float
    interval_weeks: float
    infusion_hours: float = 2.0
    induction_weeks: tuple[float, ...] = (0.0, 2.0, 6.0)
    induction_dose_mg_kg: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        for field_name, value, low, high in (
            ("dose_mg_kg", self.dose_mg_kg, 0.0, 50.0),
            ("interval_weeks", self.interval_weeks, 0.0, 52.0),
            ("infusion_hours", self.infusion_hours, 0.0, 24.0),
        ):
            if not isinstance(value, int | float) or not (low < float(value) <= high):
                raise SpecificationError(
                    f"regimen {field_name} = {value!r} must be a number in ({low:g}, {high:g}]"
                )
        if self.infusion_hours / 24.0 > self.interval_weeks * 7.0:
            raise SpecificationError("the infusion is longer than the dosing interval")
        weeks = tuple(float(w) for w in self.induction_weeks)
        if any(w < 0 for w in weeks) or list(weeks) != sorted(set(weeks)):
            raise SpecificationError(
                f"induction_weeks {self.induction_weeks!r} must be increasing and >= 0, "
                "e.g. (0, 2, 6)"
            )
        object.__setattr__(self, "induction_weeks", weeks)
        if self.induction_dose_mg_kg is not None and not (0 < self.induction_dose_mg_kg <= 50):
            raise SpecificationError("induction_dose_mg_kg must be in (0, 50]")

    @property
    def label(self) -> str:
        """The canonical short string, e.g. ``"5 mg/kg q8w"``."""
        if self.name:
            return self.name
        return f"{self.dose_mg_kg:g} mg/kg q{self.interval_weeks:g}w"

    @property
    def interval_days(self) -> float:
        """Maintenance interval, days."""
        return float(self.interval_weeks) * 7.0

    @property
    def infusion_days(self) -> float:
        """Infusion duration, days."""
        return float(self.infusion_hours) / 24.0

    @property
    def induction_dose(self) -> float:
        """Induction dose, mg/kg."""
        return float(self.induction_dose_mg_kg or self.dose_mg_kg)

    def to_dict(self) -> dict:
        """Plain-JSON description."""
        return {
            "label": self.label,
            "dose_mg_kg": float(self.dose_mg_kg),
            "interval_weeks": float(self.interval_weeks),
            "infusion_hours": float(self.infusion_hours),
            "induction_weeks": list(self.induction_weeks),
            "induction_dose_mg_kg": self.induction_dose,
        }


#: The usual regimens: standard, dose escalation and interval shortening.
NAMED_REGIMENS: dict[str, Regimen] = {
    "standard": Regimen(5, 8),
    "escalation": Regimen(10, 8),
    "shortening_q6w": Regimen(5, 6),
    "shortening_q4w": Regimen(5, 4),
    "escalation_q4w": Regimen(10, 4),
}


def parse_regimen(text: str | Regimen, *, infusion_hours: float | None = None) -> Regimen:
    """Parse ``"10mg/kg q8w"``, ``"5 mg/kg every 6 weeks"``, ``"5mg/kg q4w over 1h"`` or a name.

    Parameters
    ----------
    text : str or Regimen
        The regimen. Names of :data:`NAMED_REGIMENS` (``standard``, ``escalation``...) also work.
    infusion_hours : float, optional
        Infusion duration when the text does not give one (default 2 h).

    Raises
    ------
    SpecificationError
        When the text is not a regimen; the message shows the accepted forms.
    """
    if isinstance(text, Regimen):
        return text
    if not isinstance(text, str):
        raise SpecificationError(f"a regimen must be a string like '5mg/kg q8w', not {text!r}")
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    if key in NAMED_REGIMENS:
        return NAMED_REGIMENS[key]
    match = _PATTERN.match(text)
    if not match:
        raise SpecificationError(
            f"cannot read the regimen {text!r}; write DOSE mg/kg qN w, e.g. '5mg/kg q8w', "
            "'10 mg/kg q4w' or '5 mg/kg every 6 weeks over 2h', or a name: "
            + ", ".join(NAMED_REGIMENS)
        )
    hours = 2.0 if infusion_hours is None else float(infusion_hours)
    if match.group("inf"):
        hours = float(match.group("inf"))
        if match.group("inf_unit").lower().startswith("min"):
            hours /= 60.0
    dose = float(match.group("dose"))
    interval = float(match.group("interval"))
    return Regimen(dose_mg_kg=dose, interval_weeks=interval, infusion_hours=hours)
