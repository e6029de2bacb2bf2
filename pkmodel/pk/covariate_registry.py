"""The patient covariates PK models may use: each one's unit, plausible range and source column.

A :class:`Covariate` says what a covariate is (unit, continuous or 0/1, plausible range, checked
on every input), the NONMEM dataset columns that hold it in that unit (``columns``, read by
:func:`pkmodel.pk.read_nonmem`), and the cohort / virtual-population column it comes from
(``cohort``, in the cohort's unit and labels: albumin in g/L, sex ``F``/``M``) with the
conversion to its unit (``from_cohort``), used by the dosing scenarios and the command line;
``cohort`` is ``None`` where the scenarios fix it (every virtual patient is ATI-negative).

:data:`COVARIATES` holds the covariates of the published infliximab models. Covariates are
looked up by name (or NONMEM column) through a registry, never assumed to be one of these: a
specification or model that declares its own covariates (a neonatal ``WGT`` of 0.5-5 kg, a
clinical score) brings its own :class:`Covariate` entries (:meth:`Covariate.declared`, from a
specification's ``[data.covariates.NAME]`` tables; :meth:`CovariateRegistry.with_`), and every
check, reader and table follows.

A covariate is continuous (a plausible range) or categorical (its levels: numbers, or labels
such as ``"tablet"``, held as their position in ``levels``, 0, 1, ...); a blank cell is refused
(naming subject and time) unless the covariate declares a rule (``missing``): ``locf`` (the last
value given above in the same subject), ``nocb`` (the next value given below). The library's
covariates keep the rule of pkmodel's NONMEM reader, ``locf+nocb``: LOCF, and blanks before a
subject's first value take that first value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.pk.numbers import finite
from pkmodel.ranges import ALBUMIN_G_DL, WEIGHT_KG

__all__ = ["COVARIATES", "MISSING_RULES", "Covariate", "CovariateRegistry", "check_covariate",
           "cohort_columns", "from_cohort", "nonmem_columns"]

#: How a blank covariate cell is filled: refused, last value carried forward, next value
#: carried backward, or LOCF with the first value carried back before it (the library's).
MISSING_RULES = ("error", "locf", "nocb", "locf+nocb")


def _as_float(values: object) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _albumin_g_dl(g_l: object) -> np.ndarray:
    return np.asarray(g_l, dtype=float) / 10.0


def _female(sex: object) -> np.ndarray:
    return (np.asarray(sex) == "F").astype(float)


@dataclass(frozen=True)
class Covariate:
    """One patient covariate.

    Parameters
    ----------
    name : str
        Its name in models and specifications (``weight_kg``).
    unit : str
        Its unit (``kg``; ``0/1`` for an indicator).
    binary : bool, default False
        A 0/1 indicator (no range; values must be 0 or 1).
    low, high : float, optional
        The plausible range of a continuous covariate, in ``unit``: values outside it are
        refused as a likely unit slip.
    columns : tuple of str
        The NONMEM dataset columns that hold it in ``unit`` (the first is written by pkmodel).
    cohort : str, optional
        The cohort / virtual-population column it comes from (``None``: not read from cohorts).
    from_cohort : callable, optional
        Values of the cohort column -> values in ``unit``.
    hint : callable, optional
        ``hint(values)`` -> a message naming a likely unit slip, or ``None`` (checked first).
    levels : tuple, optional
        A categorical covariate's levels (numbers, or labels held as their position 0, 1, ...
        in ``levels``); no range then.
    missing : {"error", "locf", "nocb", "locf+nocb"}, default "locf+nocb"
        How a blank cell of the dataset is filled (:data:`MISSING_RULES`); a declared
        covariate's default is ``"error"`` (:meth:`declared`).

    Notes
    -----
    Also readable as a mapping of these fields (``cov["unit"]``), the form of 0.4's registry.
    """

    name: str
    unit: str
    binary: bool = False
    low: float | None = None
    high: float | None = None
    columns: tuple[str, ...] = ()
    cohort: str | None = None
    from_cohort: Callable[[object], np.ndarray] | None = field(default=None, compare=False)
    hint: Callable[[np.ndarray], str | None] | None = field(default=None, compare=False)
    levels: tuple[float | str, ...] | None = None
    missing: str = "locf+nocb"

    def __post_init__(self) -> None:
        if self.missing not in MISSING_RULES:
            raise SpecificationError(f"missing must be one of {', '.join(MISSING_RULES[:3])}, "
                                     f"not {self.missing!r}")
        if self.levels is not None and len(self.levels) == 0:  # categorical, levels as found
            if self.low is not None or self.high is not None or self.binary:
                raise SpecificationError(f"covariate {self.name} is categorical: give no range")
            object.__setattr__(self, "levels", ())
            return
        if self.levels is not None:
            levels = tuple(self.levels)
            kinds = {isinstance(v, str) for v in levels}
            if len(levels) < 2 or len(set(levels)) != len(levels) or len(kinds) > 1 or any(
                    isinstance(v, bool) or not isinstance(v, int | float | str)
                    or (not isinstance(v, str) and not np.isfinite(v)) for v in levels):
                raise SpecificationError(
                    f"covariate {self.name}: levels must be two or more distinct numbers, or "
                    f"two or more distinct labels, not {list(levels)!r}")
            if self.low is not None or self.high is not None or self.binary:
                raise SpecificationError(f"covariate {self.name} is categorical (levels): give "
                                         "no range")
            object.__setattr__(self, "levels", tuple(
                v if isinstance(v, str) else float(v) for v in levels))
            return
        if not self.binary and (self.low is None or self.high is None or self.low >= self.high):
            raise SpecificationError(f"covariate {self.name} needs a plausible range low < high "
                                     f"in {self.unit} (or levels, for a categorical one)")

    @classmethod
    def declared(cls, name: str, *, unit: str | None = None,
                 range: tuple[float, float] | None = None,  # the file's key
                 levels: tuple | None = None, kind: str | None = None,
                 missing: str = "error", column: str | None = None) -> Covariate:
        """A covariate a specification declares (its ``[data.covariates.NAME]`` table).

        Parameters
        ----------
        name : str
            Its name, and (upper case) the dataset column that holds it unless ``column``.
        unit : str, optional
            Its unit (required for a continuous covariate).
        range : (float, float), optional
            The plausible range of a continuous covariate, in ``unit``.
        levels : sequence, optional
            A categorical covariate's levels (numbers or labels).
        kind : {"continuous", "categorical"}, optional
            Implied by ``range`` or ``levels``; ``categorical`` without ``levels`` takes the
            levels found in the dataset (numbers only).
        missing : {"error", "locf", "nocb"}, default "error"
            How a blank cell is filled: refused (naming the subject and time), the last
            value above it in the subject, or the next value below it.
        column : str, optional
            The dataset column, if not ``name``.

        Examples
        --------
        >>> Covariate.declared("WGT", unit="kg", range=(0.3, 6.0)).check([0.5, 3.6]).tolist()
        [0.5, 3.6]
        """
        if not isinstance(name, str) or not name.strip():
            raise SpecificationError(f"a covariate's name must be a column name, not {name!r}")
        if kind not in (None, "continuous", "categorical"):
            raise SpecificationError(f"kind must be continuous or categorical, not {kind!r}")
        if missing not in MISSING_RULES[:3]:
            raise SpecificationError(f"missing must be one of {', '.join(MISSING_RULES[:3])}, "
                                     f"not {missing!r}")
        categorical = levels is not None or kind == "categorical"
        if categorical and range is not None:
            raise SpecificationError(f"covariate {name} is categorical: give levels, not range")
        low = high = None
        if not categorical:
            if range is None:
                raise SpecificationError(
                    f"covariate {name} needs range = [low, high] (its plausible values, in its "
                    "unit) or levels = [...] (a categorical covariate)")
            if not isinstance(range, list | tuple) or len(range) != 2:
                raise SpecificationError(f"range must be [low, high], not {range!r}")
            low, high = (finite(v, "range") for v in range)
            if unit is None:
                raise SpecificationError(f"covariate {name} needs its unit (unit = \"kg\")")
        if levels is not None and not isinstance(levels, list | tuple):
            levels = (levels,)
        column = (column or name).strip().upper().removeprefix("#")
        if categorical and levels is None:
            levels = ()  # numbers, the levels the terms name
        return cls(name, "level" if unit is None else str(unit), low=low, high=high,
                   columns=(column,), levels=None if levels is None else tuple(levels),
                   missing=missing, cohort=None)

    @property
    def categorical(self) -> bool:
        """Whether it is categorical (declared levels, or a 0/1 indicator)."""
        return self.levels is not None or self.binary

    @property
    def codes(self) -> tuple[float, ...] | None:
        """The values a categorical covariate takes in pkmodel: its numeric levels, or the
        positions 0, 1, ... of its labels; ``None`` for a continuous one."""
        if self.levels is None:
            return (0.0, 1.0) if self.binary else None
        if not self.levels:
            return None
        if isinstance(self.levels[0], str):
            return tuple(float(i) for i in range(len(self.levels)))
        return self.levels

    def code(self, level: float | str) -> float:
        """The value pkmodel holds for ``level`` (a label's position, a number as itself).

        Raises
        ------
        SpecificationError
            Naming the levels when ``level`` is not one of them.
        """
        if self.labelled:
            if isinstance(level, str) and level in self.levels:
                return float(self.levels.index(level))
        elif self.levels == () and not isinstance(level, str | bool):
            return finite(level, f"a level of {self.name}")
        elif not isinstance(level, str | bool) and self.codes is not None \
                and float(level) in self.codes:
            return float(level)
        raise SpecificationError(f"{level!r} is not a level of covariate {self.name} "
                                 f"(levels {self.describe_levels()})")

    @property
    def labelled(self) -> bool:
        """Whether its levels are labels (held as their positions in :attr:`levels`)."""
        return bool(self.levels) and isinstance(self.levels[0], str)

    def describe_levels(self) -> str:
        """The levels as a user writes them."""
        if self.levels == ():
            return "any number"
        levels = self.levels if self.levels is not None else (0, 1)
        return ", ".join(v if isinstance(v, str) else f"{v:g}" for v in levels)

    def to_dict(self) -> dict:
        """A declared covariate's ``[data.covariates.NAME]`` keys (:meth:`declared` reads
        them)."""
        out: dict = {"unit": self.unit} if self.unit != "level" else {}
        if self.levels == ():
            out["kind"] = "categorical"
        elif self.levels is not None:
            out["levels"] = list(self.levels)
        elif not self.binary:
            out["range"] = [self.low, self.high]
        out["missing"] = self.missing
        if self.columns != (self.name.upper(),):
            out["column"] = self.columns[0]
        return out

    def __getitem__(self, key: str):
        aliases = {"nonmem": "columns"}
        if key not in (*aliases, *(f for f in self.__dataclass_fields__)):
            raise KeyError(key)
        return getattr(self, aliases.get(key, key))

    def check(self, value: object) -> np.ndarray:
        """The values as a float array, checked: finite, 0/1 for an indicator, else within the
        plausible range.

        Raises
        ------
        SpecificationError
            Naming the covariate, the value, its unit and the fix.
        """
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise SpecificationError(
                f"covariate {self.name} must be numeric ({self.unit}); got {value!r}") from None
        if not np.all(np.isfinite(arr)):
            raise SpecificationError(f"covariate {self.name} has a missing or non-finite value")
        if self.binary:
            if not np.all((arr == 0) | (arr == 1)):
                raise SpecificationError(f"covariate {self.name} must be 0 or 1; write 1 for "
                                         "yes, 0 for no")
            return arr
        if self.levels == ():
            return arr
        if self.levels is not None:
            bad = ~np.isin(arr, self.codes)
            if np.any(bad):
                raise SpecificationError(
                    f"covariate {self.name} = {float(arr[bad].flat[0]):g} is not one of its "
                    f"levels ({self.describe_levels()}); correct the value or add the level to "
                    "its declaration")
            return arr
        if self.hint is not None and (message := self.hint(arr)):
            raise SpecificationError(message)
        bad = (arr < self.low) | (arr > self.high)
        if np.any(bad):
            raise SpecificationError(
                f"covariate {self.name} = {float(arr[bad].flat[0]):g} {self.unit} is outside "
                f"the plausible range {self.low:g}-{self.high:g} {self.unit}; check the value "
                "and its unit")
        return arr


def _albumin_in_g_l(arr: np.ndarray) -> str | None:
    if np.any(arr > ALBUMIN_G_DL[1]) and np.all(arr < 70):
        return (f"albumin {float(np.max(arr)):g} looks like g/L; the models use g/dL: divide "
                "by 10")
    return None


class CovariateRegistry(Mapping[str, Covariate]):
    """Covariates by name, found also by their NONMEM columns.

    Parameters
    ----------
    covariates : iterable of Covariate
    """

    def __init__(self, covariates: Iterable[Covariate]) -> None:
        self._by_name = {c.name: c for c in covariates}

    def __getitem__(self, name: str) -> Covariate:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"CovariateRegistry({', '.join(self._by_name)})"

    def with_(self, *covariates: Covariate) -> CovariateRegistry:
        """This registry with ``covariates`` added, replacing those of the same name or reading
        the same column (a declared ``WT`` of 0.3-6 kg replaces the library's ``weight_kg``)."""
        names = {d.name for d in covariates}
        columns = {column for d in covariates for column in d.columns}
        return CovariateRegistry([*(c for c in self.values() if c.name not in names
                                    and not columns & set(c.columns)), *covariates])

    def resolve(self, name: str) -> str:
        """The covariate's name from its name or a NONMEM column (``WT`` -> ``weight_kg``).

        Raises
        ------
        SpecificationError
            Naming the covariates (and columns) known.
        """
        if name in self._by_name:
            return name
        columns = self.nonmem_columns()
        if str(name).upper() in columns:
            return columns[str(name).upper()]
        known = ", ".join(f"{k} ({', '.join(c.columns)})" for k, c in self.items())
        raise SpecificationError(
            f"unknown covariate {name!r}; the NONMEM reader knows {known}. Declare it in the "
            f"specification: [data.covariates.{name}] with unit and range = [low, high] (or "
            "levels = [...])")

    def check(self, name: str, value: object) -> np.ndarray:
        """:meth:`Covariate.check` of covariate ``name``."""
        return self[name].check(value)

    def nonmem_columns(self) -> dict[str, str]:
        """NONMEM column name -> covariate name."""
        return {column: c.name for c in self.values() for column in c.columns}

    def cohort_columns(self) -> dict[str, str]:
        """Covariate name -> cohort / population column, for those read from cohorts."""
        return {c.name: c.cohort for c in self.values() if c.cohort}


#: The covariates of the published infliximab models (kg, g/dL, 0/1 indicators).
COVARIATES = CovariateRegistry([
    Covariate("weight_kg", "kg", low=WEIGHT_KG[0], high=WEIGHT_KG[1], columns=("WT",),
              cohort="weight_kg", from_cohort=_as_float),
    Covariate("albumin_g_dl", "g/dL", low=ALBUMIN_G_DL[0], high=ALBUMIN_G_DL[1],
              columns=("ALB",), cohort="albumin_g_l", from_cohort=_albumin_g_dl,
              hint=_albumin_in_g_l),
    Covariate("ati", "0/1", binary=True, columns=("ATI", "ADA")),
    Covariate("female", "0/1", binary=True, columns=("FEMALE", "SEX"), cohort="sex",
              from_cohort=_female),
    Covariate("immunomodulator", "0/1", binary=True, columns=("IMM",),
              cohort="immunomodulator", from_cohort=_as_float),
])


def check_covariate(name: str, value: object) -> np.ndarray:
    """Validate one covariate array of :data:`COVARIATES`; raise SpecificationError with the
    fix."""
    return COVARIATES.check(name, value)


def nonmem_columns() -> dict[str, str]:
    """NONMEM column name -> covariate name, from :data:`COVARIATES`."""
    return COVARIATES.nonmem_columns()


def cohort_columns() -> dict[str, str]:
    """Covariate name -> cohort / population column, for the covariates the scenarios read."""
    return COVARIATES.cohort_columns()


def from_cohort(columns: Mapping[str, object]) -> dict[str, np.ndarray]:
    """Covariates in the models' units from cohort columns in the cohort's units and labels.

    Parameters
    ----------
    columns : mapping
        Cohort / population column name -> values (e.g. ``{"albumin_g_l": 41.0, "sex": "F"}``);
        columns that are no covariate's ``cohort`` column are ignored.

    Returns
    -------
    dict
        Covariate name -> array, for every covariate of :data:`COVARIATES` whose cohort column is
        given, converted by its ``from_cohort`` (unchecked: see :func:`check_covariate`).

    Examples
    --------
    >>> cov = from_cohort({"albumin_g_l": [35.0, 41.0], "sex": ["F", "M"]})
    >>> cov["albumin_g_dl"], cov["female"]
    (array([3.5, 4.1]), array([1., 0.]))
    """
    return {c.name: c.from_cohort(columns[c.cohort]) for c in COVARIATES.values()
            if c.cohort and c.cohort in columns}
