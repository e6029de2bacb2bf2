"""Checks of option values shared across pkmodel, each with one wording."""

from __future__ import annotations

import numbers

from pkmodel.errors import PkmodelError, SpecificationError

__all__ = ["check_probability"]


def check_probability(
    name: str,
    value: object,
    *,
    open_interval: bool = True,
    error: type[PkmodelError] = SpecificationError,
) -> float:
    """Return ``value`` as a float if it is a probability; raise otherwise.

    Parameters
    ----------
    name : str
        The option as the caller knows it (``"credibility"``, ``"--ci-prob"``), for the message.
    value : object
        The value given. A real number (a bool is not one).
    open_interval : bool, default True
        Require ``0 < value < 1`` (a credibility, a band's probability); with ``False``,
        ``0 <= value <= 1`` (a proportion).
    error : type, default SpecificationError
        The error class raised (:class:`~pkmodel.errors.PredictionError` for a request to a
        fitted model).

    Returns
    -------
    float

    Raises
    ------
    SpecificationError
        (of class ``error``) ``NAME must be strictly between 0 and 1, not VALUE`` (with
        ``open_interval=False``: ``NAME must be between 0 and 1 inclusive, not VALUE``).

    Examples
    --------
    >>> check_probability("ci_prob", 0.9)
    0.9
    >>> check_probability("ci_prob", 1.0)
    Traceback (most recent call last):
    ...
    pkmodel.errors.SpecificationError: ci_prob must be strictly between 0 and 1, not 1.0
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        x = float(value)
        ok = 0.0 < x < 1.0 if open_interval else 0.0 <= x <= 1.0
    if not ok:
        between = "strictly between 0 and 1" if open_interval else "between 0 and 1 inclusive"
        raise error(f"{name} must be {between}, not {value!r}")
    return x
