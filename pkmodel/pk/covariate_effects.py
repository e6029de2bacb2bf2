"""Covariate effects on structural parameters: one set of forms, one multiplier function.

A covariate effect multiplies one structural parameter by a factor of the covariate ``x``, in
one of the forms NONMEM users write (``theta`` the coefficient):

* ``power``: ``(x / reference)^theta``;
* ``linear``: ``1 + theta (x - reference)`` (kept above 1e-6);
* ``exponential``: ``exp(theta (x - reference))``;
* ``categorical``: ``exp(theta_l)`` for each non-reference level ``l`` (1 at the reference level);
* ``indicator``: ``exp(theta)`` where ``x < below`` (or ``x > above``), 1 elsewhere (NONMEM's
  ``IF(X.LT.5) TVV = TVV*(1+THETA(3))`` with ``1 + THETA(3) = exp(theta)``);
* ``piecewise``: a hockey stick with its breakpoint at ``reference``, ``exp(theta_below
  min(x - reference, 0) + theta_above max(x - reference, 0))``: a different exponential slope on
  each side, 1 at the breakpoint (a slope of 0 on one side: flat there).

The published models use them with their published coefficients (a 0/1 covariate's ``1 + c x``
is ``linear`` with reference 0; ``c^x`` is ``categorical`` with ``theta = log c``), and a
population specification with coefficients to estimate (:class:`CovariateTerm`: the effect and
the prior of its ``theta``). Both compute the factor with the one function
:meth:`CovariateEffect.log_factor`, over the covariate's design (:meth:`CovariateEffect.design`)
and an array namespace ``xp`` (NumPy for simulation, ``pytensor.tensor`` in the PyMC model).

Which covariate an effect names (``weight_kg``, or a covariate a specification declares) is
checked by the model or specification that holds it, against its covariate registry
(:mod:`pkmodel.pk.covariate_registry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import add
from types import ModuleType
from typing import Any

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.pk.numbers import finite, positive

__all__ = ["FORMS", "CovariateEffect", "CovariateTerm"]

#: The forms of a covariate effect.
FORMS = ("power", "linear", "exponential", "categorical", "indicator", "piecewise")
# The names of the two coefficients of a piecewise effect, appended to its base name.
_SIDES = ("below", "above")
# The forms whose coefficient is a tuple (one per design column).
_SEVERAL = ("categorical", "piecewise")
# A linear factor is kept above this, so that its log stays finite.
_LINEAR_FLOOR = 1e-6


def _level(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:g}".replace("-", "m").replace(".", "p")


@dataclass(frozen=True)
class CovariateEffect:
    """One multiplicative covariate effect on one structural parameter.

    Parameters
    ----------
    parameter : str
        The structural parameter it multiplies (``cl``, ``v1``...).
    covariate : str
        The covariate, by name (``weight_kg``) or NONMEM column (``WT``), resolved by the model
        or specification that holds the effect.
    form : {"power", "linear", "exponential", "categorical", "indicator", "piecewise"}
        See the module's docstring.
    coefficient : float or tuple of float, optional
        ``theta``: one number, one per level of a categorical effect, or two (below and above
        the breakpoint) of a piecewise one. ``None``: to be estimated (a specification's term).
    reference : float, optional
        The reference value (power, linear, exponential; required), the breakpoint (piecewise;
        required) or the reference level (categorical; default 0).
    levels : tuple of float, optional
        Categorical: the non-reference levels (default ``(1,)``, for a 0/1 covariate).
    below, above : float, optional
        Indicator: the threshold (exactly one of them).

    Examples
    --------
    >>> e = CovariateEffect("cl", "weight_kg", "power", 0.75, reference=70.0)
    >>> float(e.multiplier(140.0))  # 2^0.75
    1.681792830507429
    """

    parameter: str
    covariate: str
    form: str
    coefficient: float | tuple[float, ...] | None = None
    reference: float | None = None
    levels: tuple[float, ...] | None = None
    below: float | None = None
    above: float | None = None

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise SpecificationError(f"effect must be one of {', '.join(FORMS)}, not "
                                     f"{self.form!r}")
        cov = self.covariate
        if self.form in ("power", "linear", "exponential", "piecewise"):
            if self.reference is None:
                raise SpecificationError(f"a {self.form} effect of {cov} needs its reference "
                                         "value (reference = ...)")
            reference = finite(self.reference, "reference")
            if self.form == "power" and reference <= 0:
                raise SpecificationError("the reference of a power effect must be positive")
            object.__setattr__(self, "reference", reference)
        if self.form == "categorical":  # a label stays a label until a specification codes it
            reference = (0.0 if self.reference is None else self.reference
                         if isinstance(self.reference, str) else finite(self.reference,
                                                                        "reference"))
            object.__setattr__(self, "reference", reference)
            levels = (1.0,) if self.levels is None else tuple(
                v if isinstance(v, str) else finite(v, "a level") for v in self.levels)
            if not levels or reference in levels or len(set(levels)) != len(levels):
                raise SpecificationError("levels must be distinct values other than the "
                                         "reference level")
            object.__setattr__(self, "levels", levels)
        elif self.levels is not None:
            raise SpecificationError("levels are for categorical effects only")
        if self.form == "indicator":
            if (self.below is None) == (self.above is None):
                raise SpecificationError(f"an indicator effect of {cov} needs exactly one of "
                                         "below = ... or above = ...")
            for key in ("below", "above"):
                if getattr(self, key) is not None:
                    object.__setattr__(self, key, finite(getattr(self, key), key))
        elif self.below is not None or self.above is not None:
            raise SpecificationError("below and above are for indicator effects only")
        if self.coefficient is not None:
            object.__setattr__(self, "coefficient", self._checked(self.coefficient))

    def _checked(self, value: Any) -> float | tuple[float, ...]:
        what = f"the coefficient of the {self.form} effect of {self.covariate}"
        if self.form not in _SEVERAL:
            return finite(value, what)
        values = tuple(value) if isinstance(value, tuple | list) else (value,)
        if len(values) != self.n_columns:
            raise SpecificationError(
                f"{what} needs one value per level {list(self.levels)}"
                if self.form == "categorical" else f"{what} needs two values (the slopes below "
                "and above the breakpoint)")
        return tuple(finite(v, what) for v in values)

    @property
    def labelled(self) -> bool:
        """Whether a categorical effect names levels by label (a specification holding it
        turns them into the positions its covariate declares)."""
        return self.form == "categorical" and any(
            isinstance(v, str) for v in (self.reference, *self.levels))

    @property
    def n_columns(self) -> int:
        """Columns of the design: one per level of a categorical effect, two for a piecewise
        one (below and above the breakpoint), else one."""
        return (len(self.levels) if self.form == "categorical"
                else 2 if self.form == "piecewise" else 1)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of its coefficients (``theta_<parameter>_<covariate>``, one per categorical
        level with the level appended, ``_below`` and ``_above`` for a piecewise effect)."""
        base = f"theta_{self.parameter}_{self.covariate}"
        if self.form == "categorical":
            return tuple(f"{base}_{_level(v)}" for v in self.levels)
        if self.form == "piecewise":
            return tuple(f"{base}_{side}" for side in _SIDES)
        return (base,)

    def theta(self, values: dict) -> float | tuple:
        """Its coefficient from ``values`` by :attr:`names` (one, or a tuple of several)."""
        if self.form not in _SEVERAL:
            return values[self.names[0]]
        return tuple(values[n] for n in self.names)

    def design(self, values: object) -> np.ndarray:
        """What the coefficients multiply, shape ``values.shape + (n_columns,)``: ``log(x /
        reference)`` (power), ``x - reference`` (linear, exponential), 0/1 per level
        (categorical) or of the threshold (indicator), ``min(x - reference, 0)`` and ``max(x -
        reference, 0)`` (piecewise)."""
        if self.labelled:
            raise SpecificationError(
                f"the categorical effect of {self.covariate} names its levels by label; a "
                "specification that declares the covariate's levels turns them into positions")
        x = np.asarray(values, dtype=float)
        if self.form == "piecewise":
            return np.stack([np.minimum(x - self.reference, 0.0),
                             np.maximum(x - self.reference, 0.0)], axis=-1)
        if self.form == "power":
            with np.errstate(divide="ignore", invalid="ignore"):  # refused by the reader
                return np.log(x / self.reference)[..., None]
        if self.form in ("linear", "exponential"):
            return (x - self.reference)[..., None]
        if self.form == "categorical":
            return np.stack([(x == level).astype(float) for level in self.levels], axis=-1)
        flag = x < self.below if self.below is not None else x > self.above
        return flag.astype(float)[..., None]

    def log_factor(self, design, theta, xp: ModuleType = np):
        """The log of the factor on the parameter: THE multiplier function of pkmodel.

        Parameters
        ----------
        design : array
            :meth:`design` of the covariate values (last axis its columns).
        theta : float, array, or a sequence of them
            The coefficient (one per level of a categorical effect); numbers, arrays of draws
            broadcasting against ``design[..., 0]``, or tensors.
        xp : module, default numpy
            The array namespace (``log``, ``maximum``).
        """
        if self.form in _SEVERAL:
            thetas = theta if isinstance(theta, tuple | list) else (theta,)
            return reduce(add, [t * design[..., j] for j, t in enumerate(thetas)])
        if self.form == "linear":
            return xp.log(xp.maximum(1.0 + theta * design[..., 0], _LINEAR_FLOOR))
        return theta * design[..., 0]

    def multiplier(self, values: object, coefficient: float | tuple | None = None) -> np.ndarray:
        """The factor on the parameter at covariate ``values`` (NumPy), with this effect's
        coefficient unless one is given."""
        theta = self.coefficient if coefficient is None else coefficient
        if theta is None:
            raise SpecificationError(f"the effect of {self.covariate} on {self.parameter} has "
                                     "no coefficient")
        return np.exp(self.log_factor(self.design(values), theta))

    def with_coefficient(self, coefficient: float | tuple[float, ...]) -> CovariateEffect:
        """The same effect with a known ``coefficient`` (e.g. a posterior median)."""
        return CovariateEffect(self.parameter, self.covariate, self.form, coefficient,
                               self.reference, self.levels, self.below, self.above)

    def to_dict(self) -> dict:
        """Plain-JSON description: ``effect`` (the form) and the keys that are set."""
        out: dict[str, Any] = {"parameter": self.parameter, "covariate": self.covariate,
                               "effect": self.form}
        for key in ("reference", "below", "above"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.levels is not None:
            out["levels"] = list(self.levels)
        if self.coefficient is not None:
            out["coefficient"] = (list(self.coefficient) if isinstance(self.coefficient, tuple)
                                  else self.coefficient)
        return out


@dataclass(frozen=True, init=False)
class CovariateTerm(CovariateEffect):
    """A covariate effect of a population specification: the effect and the prior of its theta.

    Parameters
    ----------
    parameter : str
        The structural parameter (``cl``, ``v1``...).
    covariate : str
        A covariate of the specification, by name (``weight_kg``, ``albumin_g_dl``, ``ati``,
        ``female``, ``immunomodulator``, or one it declares, e.g. ``WGT``) or NONMEM column
        (``WT``, ``ALB``, ``ATI``/``ADA``, ``SEX``/``FEMALE``, ``IMM``). A covariate that
        changes within a subject applies per observation (see
        :mod:`pkmodel.pk.population.equations`).
    effect : str
        The form (:data:`FORMS`; see :class:`CovariateEffect`).
    reference : float, optional
        The reference value (power, linear, exponential; required), the breakpoint (piecewise;
        required) or the reference level (categorical; default 0).
    exponent : float, optional
        Power effects: a fixed exponent (e.g. 0.75); omit to estimate it.
    prior_mean, prior_sd : float
        Normal prior of an estimated ``theta`` (default 0 and 1; for a power effect of weight on
        clearance, 0.75 and 0.25 are usual).
    levels : tuple of float or str, optional
        Categorical: the non-reference levels (default ``(1,)``, for a 0/1 covariate), by
        value or, for a covariate declared with labels, by label (``("syrup",)``; the
        specification holds them as the labels' positions).
    below, above : float, optional
        Indicator: the threshold (exactly one of them).
    """

    prior_mean: float = 0.0
    prior_sd: float = 1.0

    def __init__(self, parameter: str, covariate: str, effect: str,
                 reference: float | None = None, exponent: float | None = None,
                 prior_mean: float = 0.0, prior_sd: float = 1.0,
                 levels: tuple[float, ...] | None = None, below: float | None = None,
                 above: float | None = None) -> None:
        if exponent is not None and effect != "power":
            raise SpecificationError("exponent is for power effects only")
        for key, value in (("parameter", parameter), ("covariate", covariate),
                           ("form", effect), ("coefficient", exponent),
                           ("reference", reference), ("levels", levels), ("below", below),
                           ("above", above), ("prior_mean", prior_mean),
                           ("prior_sd", prior_sd)):
            object.__setattr__(self, key, value)
        self.__post_init__()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "prior_mean", finite(self.prior_mean, "prior_mean"))
        object.__setattr__(self, "prior_sd", positive(self.prior_sd, "prior_sd"))

    @property
    def effect(self) -> str:
        """The form (the ``effect`` key of the specification file)."""
        return self.form

    @property
    def exponent(self) -> float | None:
        """The fixed exponent of a power effect (``None``: estimated)."""
        return self.coefficient

    @property
    def estimated(self) -> bool:
        """Whether the effect has parameters to estimate (all but a fixed power)."""
        return self.coefficient is None

    @property
    def names(self) -> tuple[str, ...]:
        """The names of its parameters in the fit (one per categorical level; none when
        fixed)."""
        return super().names if self.estimated else ()

    def with_covariate(self, covariate: str) -> CovariateTerm:
        """The same term naming ``covariate`` (the resolved name of a NONMEM column)."""
        return CovariateTerm(self.parameter, covariate, self.form, self.reference,
                             self.exponent, self.prior_mean, self.prior_sd, self.levels,
                             self.below, self.above)

    def to_dict(self) -> dict:
        """Plain-JSON description (the TOML keys)."""
        out: dict[str, Any] = {"parameter": self.parameter, "covariate": self.covariate,
                               "effect": self.form, "prior_mean": self.prior_mean,
                               "prior_sd": self.prior_sd}
        for key in ("reference", "exponent", "below", "above"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.levels is not None:
            out["levels"] = list(self.levels)
        return out
