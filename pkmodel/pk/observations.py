"""Observed concentrations of one patient, with censoring below or above the assay's limits.

Each observation is an interval ``[lower, upper]`` in µg/mL: an exact value has ``lower == upper``;
a value below the lower limit of quantification (LLOQ) has ``lower = -inf`` (the M3 method; or
the NONMEM ``LIMIT`` when given) and ``upper = LLOQ``; a value above the upper limit (e.g. the
"> 16" of some assays) has ``lower = ULOQ`` and ``upper = inf``. The censoring code follows the
NONMEM/Monolix ``CENS`` convention: 0 observed, 1 below a limit (left-censored), -1 above a
limit (right-censored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pkmodel.errors import SpecificationError

__all__ = ["Observations"]


@dataclass(frozen=True)
class Observations:
    """Concentrations measured in one patient.

    Parameters
    ----------
    times_days : array-like
        Sampling times, days since the first dose.
    values_ug_ml : array-like
        The measured value, or the limit for a censored value, µg/mL.
    cens : array-like of int, optional
        0 observed (default), 1 below the limit in ``values_ug_ml``, -1 above it.
    limit_ug_ml : array-like, optional
        The other end of a censoring interval (NONMEM ``LIMIT``): the lower bound of a
        left-censored value (default minus infinity, the M3 method) or the upper bound of a
        right-censored one (default infinity). Ignored for observed values.

    Examples
    --------
    >>> obs = Observations([98, 154], [3.1, 16.0], cens=[0, -1])  # the second is "> 16"
    >>> obs.upper.tolist()
    [3.1, inf]
    """

    times_days: np.ndarray
    values_ug_ml: np.ndarray
    cens: np.ndarray | None = None
    limit_ug_ml: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = np.atleast_1d(np.asarray(self.times_days, dtype=float))
        v = np.atleast_1d(np.asarray(self.values_ug_ml, dtype=float))
        c = np.zeros(t.shape, dtype=int) if self.cens is None else np.atleast_1d(
            np.asarray(self.cens))
        if t.ndim != 1 or t.size == 0 or v.shape != t.shape or c.shape != t.shape:
            raise SpecificationError(
                "observation times, values and censoring codes must be 1-D and of equal length"
            )
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise SpecificationError("observation times and values must be finite numbers")
        if np.any(t < 0):
            raise SpecificationError("observation times must be >= 0 days after the first dose")
        if not np.all(np.isin(c, (-1, 0, 1))):
            raise SpecificationError(
                "censoring codes must be 0 (observed), 1 (below) or -1 (above)")
        if np.any(v[c == 0] < 0):
            raise SpecificationError("an observed concentration is negative")
        if np.any(v[c != 0] <= 0):
            raise SpecificationError("a censoring limit must be positive")
        lim = None
        if self.limit_ug_ml is not None:
            lim = np.broadcast_to(np.asarray(self.limit_ug_ml, dtype=float), t.shape).copy()
        for name, value in (("times_days", t), ("values_ug_ml", v), ("cens", c.astype(int)),
                            ("limit_ug_ml", lim)):
            if value is not None:
                value.setflags(write=False)
            object.__setattr__(self, name, value)
        lower, upper = self.lower, self.upper
        if np.any(~(lower <= upper)):
            raise SpecificationError(
                "a censoring LIMIT is on the wrong side of its value: below-limit values need "
                "LIMIT < DV, above-limit values LIMIT > DV"
            )

    def __len__(self) -> int:
        return int(self.times_days.size)

    @classmethod
    def from_values(
        cls, times_days: Sequence[float], values: Sequence[str | float]
    ) -> Observations:
        """Read values such as ``4.2``, ``"<0.4"`` (below LLOQ) or ``">16"`` (above ULOQ)."""
        nums, codes = [], []
        for raw in values:
            text = str(raw).strip()
            code = 0
            if text[:1] in "<>":
                code = 1 if text[0] == "<" else -1
                text = text.lstrip("<>= ")
            try:
                nums.append(float(text))
            except ValueError:
                raise SpecificationError(
                    f"{raw!r} is not a concentration; write a number in µg/mL, '<LLOQ' or '>ULOQ'"
                ) from None
            codes.append(code)
        return cls(times_days, nums, codes)

    @property
    def lower(self) -> np.ndarray:
        """Lower end of each observation's interval, µg/mL."""
        out = self.values_ug_ml.copy()
        below = self.cens == 1
        if self.limit_ug_ml is None:
            out[below] = -np.inf
        else:
            limit = self.limit_ug_ml[below]
            out[below] = np.where(np.isnan(limit), -np.inf, limit)
        return out

    @property
    def upper(self) -> np.ndarray:
        """Upper end of each observation's interval, µg/mL (``inf`` when right-censored)."""
        out = self.values_ug_ml.copy()
        above = self.cens == -1
        if self.limit_ug_ml is None:
            out[above] = np.inf
        else:
            limit = self.limit_ug_ml[above]
            out[above] = np.where(np.isnan(limit), np.inf, limit)
        return out

    def to_dict(self) -> dict:
        """Plain-JSON description."""
        return {"times_days": self.times_days.tolist(), "values_ug_ml": self.values_ug_ml.tolist(),
                "cens": self.cens.tolist()}
