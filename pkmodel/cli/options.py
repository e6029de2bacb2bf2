"""Types of the command line's numeric options: every value is checked as the line is parsed.

An option out of range is refused by ``argparse`` before any work, with exit status 2 and a
message that names the option and says what to give: never after a fit, never clamped silently.
One definition of each kind of value, used by every command.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["fraction_at_least_half", "nonnegative_float", "nonnegative_int", "positive_float",
           "positive_int", "probability"]


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def probability(text: str) -> float:
    """A probability strictly between 0 and 1 (a credible interval's width, a credibility)."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not strictly between 0 and 1; give e.g. "
                                         "0.9")
    return value


def fraction_at_least_half(text: str) -> float:
    """A NUTS target acceptance rate: at least 0.5 and below 1."""
    value = _number(text, float)
    if not 0.5 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in [0.5, 1); give e.g. 0.9 (0.95 or "
                                         "0.99 against divergences)")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (draws, chains, replicates, patients)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def nonnegative_int(text: str) -> int:
    """A whole number of at least 0 (0 switches the output off)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    """A positive finite number (a weight, a target, a time)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number of at least 0 (a minimum TL, where 0 means none)."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value
