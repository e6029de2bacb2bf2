"""A prior distribution as an object: the one thing the PyMC model is built from and the report's
prior table is written from, so that the two cannot drift.

A :class:`Prior` is a PyMC family with its parameters, as Bambi's ``Prior`` is. Its parameters are
numbers, or, for a prior that depends on another parameter of the model (the intercept's prior
widened by the centres' spread, ``Normal(0, sqrt(1.5^2 + sigma_group^2 / J))``), a written
expression that the model supplies as a tensor when it builds the variable (:meth:`Prior.create`
refuses to build one without it)::

    Prior("Normal", mu=0.0, sigma=1.5)            # str(...) == "Normal(0, 1.5)"
    Prior("Normal", mu=0.0, sigma=1.5).create("beta")   # pm.Normal("beta", mu=0.0, sigma=1.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Prior"]

#: The families pkmodel's models use, with their parameters in PyMC's order (the order the
#: text writes them in).
FAMILIES: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"),
    "HalfNormal": ("sigma",),
    "Gamma": ("alpha", "beta"),
    "ZeroSumNormal": ("sigma",),
    "LKJCorr": ("eta",),
}


@dataclass(frozen=True, init=False)
class Prior:
    """A prior: a PyMC distribution family and its parameters.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES` (the PyMC class of that name).
    **parameters : float or str
        The family's parameters by PyMC's names; a string is an expression of other model
        parameters, written as the text shows it and given as a tensor to :meth:`create`.
    """

    family: str
    parameters: tuple[tuple[str, float | str], ...]

    def __init__(self, family: str, **parameters: float | str) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown prior family {family!r}; one of {sorted(FAMILIES)}")
        names = FAMILIES[family]
        if set(parameters) != set(names):
            raise ValueError(f"{family} takes the parameters {names}, not {tuple(parameters)}")
        values = tuple((n, parameters[n] if isinstance(parameters[n], str)
                        else float(parameters[n])) for n in names)
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "parameters", values)

    def __getitem__(self, name: str) -> float | str:
        return dict(self.parameters)[name]

    def __str__(self) -> str:
        args = ", ".join(v if isinstance(v, str) else f"{v:g}" for _, v in self.parameters)
        return f"{self.family}({args})"

    def kwargs(self, **given: Any) -> dict[str, Any]:
        """The parameters as keyword arguments of the PyMC class, the written expressions
        replaced by the tensors ``given`` by name.

        Raises
        ------
        ValueError
            When an expression is not given, or a given name is not an expression.
        """
        out: dict[str, Any] = {}
        for name, value in self.parameters:
            if isinstance(value, str):
                if name not in given:
                    raise ValueError(f"{self}: give {name} = {value} as a tensor")
                out[name] = given.pop(name)
            else:
                out[name] = value
        if given:
            raise ValueError(f"{self}: {sorted(given)} are not expressions of this prior")
        return out

    def create(self, name: str, *, given: dict[str, Any] | None = None, **options: Any):
        """The PyMC variable ``name`` with this prior (inside a model context).

        ``given`` supplies the written expressions as tensors; ``options`` go to PyMC as they
        are (``dims``, ``initval``...).
        """
        import pymc as pm

        return getattr(pm, self.family)(name, **self.kwargs(**(given or {})), **options)

    def dist(self, *, given: dict[str, Any] | None = None, **options: Any):
        """The distribution without a variable (``pm.<Family>.dist``)."""
        import pymc as pm

        return getattr(pm, self.family).dist(**self.kwargs(**(given or {})), **options)

    def to_dict(self) -> dict[str, Any]:
        """``{"family": ..., <parameter>: value, ...}`` (JSON)."""
        return {"family": self.family, **dict(self.parameters)}
