"""The units of a PK dataset and of everything reported from it: the one table of conversions.

pkmodel computes in days, mg and µg/mL (= mg/L): doses, concentrations and times are converted
into these when a dataset is read (:func:`pkmodel.pk.read_nonmem`), and structural parameters
are held in L, L/day and 1/day. A dataset states its own units once (a population
specification's ``time_unit``, ``amount_unit``, ``concentration_unit``); every estimate, table,
plot axis and report of a fit is converted back into them here, so that an hour dataset reads
clearances in L/hour and times in hours.

Volumes stay in L whatever the units of amount and concentration (an amount in µg over a
concentration in ng/mL is a volume in L once both are converted). A structural parameter's unit
is one of three kinds (:mod:`pkmodel.pk.structures`): ``volume``
(L), ``volume/time`` (L/day, L/hour, ...) and ``1/time`` (1/day, ...).

Examples
--------
>>> to_internal(2.0, "volume/time", "hour")  # 2 L/hour in L/day
48.0
>>> from_internal(48.0, "volume/time", "hour")
2.0
>>> parameter_unit("1/time", "hour")
'1/hour'
"""

from __future__ import annotations

from pkmodel.errors import SpecificationError

__all__ = ["AMOUNT_UNITS", "CONCENTRATION_UNITS", "TIME_UNITS", "amount_to_internal",
           "concentration_from_internal", "concentration_to_internal", "days_per",
           "from_internal", "parameter_unit", "parse_parameter_unit", "time_unit", "to_internal"]

#: Days per unit of time, by every name a dataset may use (the first of each is the canonical
#: name, used in outputs).
TIME_UNITS: dict[str, float] = {"day": 1.0, "days": 1.0, "d": 1.0,
                                "hour": 1 / 24, "hours": 1 / 24, "h": 1 / 24,
                                "week": 7.0, "weeks": 7.0, "w": 7.0}
_CANONICAL_TIME = {"day": "day", "days": "day", "d": "day", "hour": "hour", "hours": "hour",
                   "h": "hour", "week": "week", "weeks": "week", "w": "week"}
#: µg/mL (= mg/L, pkmodel's concentration unit) per unit of concentration a dataset may state.
CONCENTRATION_UNITS: dict[str, float] = {"µg/mL": 1.0, "ug/mL": 1.0, "mg/L": 1.0,
                                         "ng/mL": 1e-3, "µg/L": 1e-3, "ug/L": 1e-3,
                                         "g/L": 1e3, "mg/mL": 1e3}
#: mg per unit of amount a dataset may state.
AMOUNT_UNITS: dict[str, float] = {"mg": 1.0, "µg": 1e-3, "ug": 1e-3, "g": 1e3}
#: The kinds of a structural parameter's unit.
KINDS = ("volume", "volume/time", "1/time")


def time_unit(name: str) -> str:
    """The canonical name (``day``, ``hour``, ``week``) of a unit of time.

    Raises
    ------
    SpecificationError
        For a unit that is not known, naming the known ones.
    """
    key = str(name).strip().lower()
    if key not in _CANONICAL_TIME:
        raise SpecificationError(f"time unit {name!r} is not known: use day, hour or week")
    return _CANONICAL_TIME[key]


def days_per(unit: str) -> float:
    """Days in one ``unit`` of time (1/24 for ``hour``)."""
    return TIME_UNITS[time_unit(unit)]


def _time_factor(kind: str, unit: str) -> float:
    """A value of ``kind`` in per-``unit`` units, per value in per-day units."""
    if kind not in KINDS:
        raise SpecificationError(f"unit kind {kind!r} is not one of {', '.join(KINDS)}")
    return 1.0 if kind == "volume" else days_per(unit)


def from_internal(value, kind: str, unit: str):
    """A parameter of ``kind`` held in pkmodel's units (L, L/day, 1/day) in ``unit`` of time:
    ``48 L/day`` is ``2 L/hour``. Works on floats and arrays alike."""
    return value * _time_factor(kind, unit)


def to_internal(value, kind: str, unit: str):
    """A parameter of ``kind`` stated per ``unit`` of time, in pkmodel's units (per day)."""
    return value / _time_factor(kind, unit)


def parameter_unit(kind: str, unit: str, volume_unit: str = "L") -> str:
    """The unit of a parameter of ``kind`` when time is in ``unit``: ``L/hour``, ``1/day``."""
    unit = time_unit(unit)
    return {"volume": volume_unit, "volume/time": f"{volume_unit}/{unit}",
            "1/time": f"1/{unit}"}[kind]


def concentration_to_internal(value, unit: str):
    """A concentration in ``unit`` (a key of :data:`CONCENTRATION_UNITS`) in µg/mL."""
    return value * CONCENTRATION_UNITS[unit]


def concentration_from_internal(value, unit: str):
    """A concentration in µg/mL in ``unit``: ``0.5`` µg/mL is ``500`` ng/mL."""
    return value / CONCENTRATION_UNITS[unit]


def amount_to_internal(value, unit: str):
    """An amount in ``unit`` (a key of :data:`AMOUNT_UNITS`) in mg."""
    return value * AMOUNT_UNITS[unit]


def parse_parameter_unit(text: str) -> tuple[str, str | None]:
    """``(kind, time unit)`` of a parameter's unit as a specification writes it.

    ``"L"`` is ``("volume", None)``; ``"L/h"`` and ``"L/hour"`` are ``("volume/time",
    "hour")``; ``"1/day"`` and ``"/d"`` are ``("1/time", "day")``.

    Raises
    ------
    SpecificationError
        For any other unit.
    """
    raw = str(text).strip()
    if raw == "L":
        return "volume", None
    head, sep, tail = raw.partition("/")
    if sep and tail.strip().lower() in _CANONICAL_TIME:
        if head.strip() == "L":
            return "volume/time", time_unit(tail)
        if head.strip() in ("1", ""):
            return "1/time", time_unit(tail)
    raise SpecificationError(f"unit {text!r} is not known: use L for a volume, L/day, L/hour or "
                             "L/week for a clearance, 1/day, 1/hour or 1/week for a rate "
                             "constant")
