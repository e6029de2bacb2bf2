"""The checks of numbers and choices a model or specification is built from, with their errors.

Each raises :class:`~pkmodel.errors.SpecificationError` naming what was checked, so that a
specification file's reader can place the error at its key.
"""

from __future__ import annotations

import math
from typing import Any

from pkmodel.errors import SpecificationError

__all__ = ["choice", "finite", "positive"]


def positive(value: Any, what: str) -> float:
    """``value`` as a float, refused unless a positive finite number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value <= 0:
        raise SpecificationError(f"{what} must be a positive number, not {value!r}")
    return float(value)


def finite(value: Any, what: str) -> float:
    """``value`` as a float, refused unless a finite number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecificationError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def choice(value: Any, choices: tuple[str, ...], what: str) -> str:
    """``value``, refused unless one of ``choices``."""
    if value not in choices:
        raise SpecificationError(f"{what} must be one of {', '.join(choices)}, not {value!r}")
    return value
