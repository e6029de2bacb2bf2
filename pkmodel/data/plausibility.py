"""Plausible ranges of cohort values and the unit slips that values outside them point to.

A value can be well formed and still impossible: a trough of 5000 µg/mL (a trough in ng/mL), a
weight of 500 kg (pounds) or an albumin of 3.9 g/L (g/dL). Such values are refused with the likely
slip and its fix, by the cohort reader (:func:`pkmodel.read_cohort`) and by the population tables of
the scenarios (:func:`pkmodel.scenarios.populations.population_from_table`), through
:func:`implausible_value`.

There is one definition of each range, in :mod:`pkmodel.ranges`, which the PK layer uses too
(albumin there is in g/dL and here in g/L, times 10). ``data/README.md`` states the same numbers
and a test checks that it does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pkmodel.ranges import ALBUMIN_G_DL, TL_MAX_UG_ML, WEIGHT_KG

__all__ = [
    "CHECKED_COLUMNS",
    "TL_MAX_UG_ML",
    "WEIGHT_MEDIAN_MAX_KG",
    "PlausibleRange",
    "check_plausible",
    "implausible_value",
    "plausible_range",
    "plausible_ranges",
]

#: The columns with a plausible range.
CHECKED_COLUMNS = ("baseline_tl", "weight_kg", "albumin_g_l")


_LB_PER_KG = 2.20462

#: The largest plausible median body weight of a cohort or population, kg. Every weight of a
#: table in pounds can be plausible in kg on its own (154 lb is 70 kg, and 154 kg exists), but
#: no cohort of patients has a median weight above this: the column is then in pounds.
WEIGHT_MEDIAN_MAX_KG = 120.0


@dataclass(frozen=True)
class PlausibleRange:
    """The plausible range of one numeric cohort column.

    Attributes
    ----------
    column : str
        Cohort column name.
    low, high : float
        Smallest and largest plausible value, in ``unit`` (``low`` 0 means no lower bound beyond
        the column's own > 0).
    unit : str
        The column's unit.
    """

    column: str
    low: float
    high: float
    unit: str


def plausible_range(column: str) -> PlausibleRange | None:
    """The plausible range of ``column``, or ``None`` for a column that has none.

    The ranges are those of :mod:`pkmodel.ranges` (albumin converted from g/dL to g/L), so that
    the cohort, the population tables and the PK models agree.
    """
    if column == "baseline_tl":
        return PlausibleRange("baseline_tl", 0.0, TL_MAX_UG_ML, "µg/mL")
    if column == "weight_kg":
        return PlausibleRange("weight_kg", *WEIGHT_KG, "kg")
    if column == "albumin_g_l":
        return PlausibleRange("albumin_g_l", 10.0 * ALBUMIN_G_DL[0], 10.0 * ALBUMIN_G_DL[1], "g/L")
    return None


def plausible_ranges() -> dict[str, PlausibleRange]:
    """Every checked column and its range: ``baseline_tl``, ``weight_kg``, ``albumin_g_l``."""
    return {c: plausible_range(c) for c in CHECKED_COLUMNS}


def _num(value: float) -> str:
    """A number as a person writes it: 1000000, 0.5, 3.9 (no exponent)."""
    return np.format_float_positional(float(value), precision=6, unique=True, trim="-")


def implausible_value(column: str, values: np.ndarray) -> tuple[int, str, str] | None:
    """The first value of ``values`` outside the plausible range of ``column``, explained.

    Parameters
    ----------
    column : str
        A cohort column; columns without a plausible range are never flagged.
    values : numpy.ndarray
        The parsed values, in the column's unit; NaN (missing) is ignored.

    Returns
    -------
    tuple of (int, str, str) or None
        ``(position, message, fix)`` for the first implausible value: the message says what is
        wrong and which unit slip it suggests, the fix what to write. ``None`` when every value
        is plausible.

    Examples
    --------
    >>> implausible_value("albumin_g_l", np.array([41.0, 3.9]))[1]
    '3.9 g/L is below the plausible minimum of 10 g/L for serum albumin; it looks like g/dL'
    """
    r = plausible_range(column)
    if r is None:
        return None
    x = np.asarray(values, dtype=float).reshape(-1)
    bad = ~np.isnan(x) & ((x < r.low) | (x > r.high))
    if not bad.any():
        return _implausible_median(column, x)
    i = int(np.argmax(bad))
    v = float(x[i])
    high = v > r.high
    if column == "baseline_tl":
        message = (f"a trough of {_num(v)} µg/mL is above {r.high:g} µg/mL, the most an infliximab "
                   "trough can credibly be; a trough in ng/mL is 1000 times its value in µg/mL")
        fix = (f"write the trough in µg/mL (divide ng/mL by 1000: {_num(v)} ng/mL is "
               f"{_num(v / 1000)} µg/mL); a trough above the assay's upper limit is written "
               "'>LIMIT', e.g. '>16'")
    elif column == "weight_kg":
        bound = (f"above the plausible maximum of {r.high:g} kg" if high
                 else f"below the plausible minimum of {r.low:g} kg")
        message = f"a body weight of {_num(v)} kg is {bound}"
        if high and v >= 1000:
            message += "; it looks like grams"
            fix = (f"write body weight in kg (divide grams by 1000: {_num(v)} g is "
                   f"{_num(v / 1000)} kg)")
        elif high:
            message += "; it looks like pounds"
            fix = (f"write body weight in kg (divide pounds by {_LB_PER_KG:g}: {_num(v)} lb is "
                   f"{v / _LB_PER_KG:.0f} kg)")
        else:
            fix = ("write body weight in kg; check that the column holds the weight (not, for "
                   "example, the dose in mg/kg) and that the value has no unit slip")
    else:  # albumin_g_l
        if not high and v >= r.low / 10:
            message = (f"{_num(v)} g/L is below the plausible minimum of {r.low:g} g/L for serum "
                       "albumin; it looks like g/dL")
            fix = (f"write serum albumin in g/L (multiply g/dL by 10: {_num(v)} g/dL is "
                   f"{_num(10 * v)} g/L)")
        elif high:
            message = (f"{_num(v)} g/L is above the plausible maximum of {r.high:g} g/L for serum "
                       "albumin; a value in mg/dL is 100 times, in µmol/L about 15 times, its "
                       "value in g/L")
            fix = "write serum albumin in g/L (divide mg/dL by 100, µmol/L by 15)"
        else:
            message = (f"{_num(v)} g/L is below the plausible minimum of {r.low:g} g/L for serum "
                       "albumin")
            fix = "write serum albumin in g/L (typically 30-50 g/L)"
    return i, message, fix


def _implausible_median(column: str, x: np.ndarray) -> tuple[int, str, str] | None:
    """A table of weights in pounds, each plausible in kg, betrayed by its median."""
    finite = x[~np.isnan(x)]
    if column != "weight_kg" or finite.size < 5:
        return None
    median = float(np.median(finite))
    if median <= WEIGHT_MEDIAN_MAX_KG:
        return None
    i = int(np.argmax(x > WEIGHT_MEDIAN_MAX_KG))
    return (i, f"the median body weight is {median:.0f} kg, above {WEIGHT_MEDIAN_MAX_KG:g} kg, "
               "more than any cohort of patients weighs; the column looks like pounds",
            f"write body weight in kg (divide pounds by {_LB_PER_KG:g}: a median of "
            f"{median:.0f} lb is {median / _LB_PER_KG:.0f} kg)")


def check_plausible(name: str, column: str, value: object, *, error=None) -> float:
    """Return one value given for ``column`` (an option or argument ``name``) as a float, or
    raise naming ``name``, the unit slip it points to and the fix.

    The ranges and messages are those of :func:`implausible_value`, in the cohort's units
    (albumin in g/L), so that a value is judged in the unit the user wrote it in.

    Examples
    --------
    >>> check_plausible("--albumin-g-l", "albumin_g_l", 40)
    40.0
    >>> check_plausible("--albumin-g-l", "albumin_g_l", 4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pkmodel.errors.SpecificationError: --albumin-g-l 4: 4 g/L is below ... it looks like g/dL...
    """
    from pkmodel.errors import SpecificationError

    error = error or SpecificationError
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise error(f"{name} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(x) or (column in CHECKED_COLUMNS and x <= 0):
        raise error(f"{name} must be a positive finite number, not {value!r}")
    found = implausible_value(column, np.array([x]))
    if found is not None:
        raise error(f"{name} {_num(x)}: {found[1]}. Fix: {found[2]}")
    return x
