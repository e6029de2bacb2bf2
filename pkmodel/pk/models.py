"""Published infliximab population PK models: two-compartment parameter sets with covariate models.

Every model is linear two-compartment disposition with elimination from the central compartment and
zero-order intravenous infusion into it. Units throughout: clearances CL and Q in L/day, volumes V1
and V2 in L, body weight in kg, serum albumin in g/dL, concentrations in µg/mL (= mg/L).

A :class:`PopulationModel` holds the typical values at the paper's reference covariates, the
covariate effects, the between-subject variability (log-normal, variance ``omega2`` of the random
effect eta on the log scale) and the residual error of the paper. The published sets are module
constants (:data:`FASANMADE_2009_UC`, :data:`FASANMADE_2011_CD`, :data:`FASANMADE_2011_PAEDIATRIC`,
:data:`WOJCIECHOWSKI_2017`, :data:`DUBINSKY_2017`, :data:`AUBOURG_2015`), all in :data:`MODELS`;
:func:`get_model` finds one by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Literal

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.ranges import ALBUMIN_G_DL, WEIGHT_KG

__all__ = [
    "AUBOURG_2015",
    "COVARIATES",
    "DUBINSKY_2017",
    "FASANMADE_2009_UC",
    "FASANMADE_2011_CD",
    "FASANMADE_2011_PAEDIATRIC",
    "MODELS",
    "PARAMETERS",
    "WOJCIECHOWSKI_2017",
    "CovariateEffect",
    "PKParameters",
    "PopulationModel",
    "get_model",
    "resolve_model",
]

#: The four structural parameters and their units.
PARAMETERS: dict[str, str] = {"cl": "L/day", "v1": "L", "q": "L/day", "v2": "L"}

def _as_float(values: object) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _albumin_g_dl(g_l: object) -> np.ndarray:
    return np.asarray(g_l, dtype=float) / 10.0


def _female(sex: object) -> np.ndarray:
    return (np.asarray(sex) == "F").astype(float)


#: Patient covariates that the models may use: unit, plausible range (checked on input), the
#: NONMEM dataset columns that hold it in that unit (``nonmem``, read by
#: :func:`pkmodel.pk.read_nonmem`), and the cohort / virtual-population column it comes from
#: (``cohort``, in the cohort's unit and labels: albumin in g/L, sex ``F``/``M``) with the
#: conversion to this covariate's unit (``from_cohort``, a function of the column's values), used
#: by the dosing scenarios and the command line; ``cohort`` is ``None`` where the scenarios fix it
#: (every virtual patient is ATI-negative). A model using a new covariate adds one entry here;
#: readers and scenarios follow.
COVARIATES: dict[str, dict] = {
    "weight_kg": {"unit": "kg", "low": WEIGHT_KG[0], "high": WEIGHT_KG[1], "binary": False,
                  "nonmem": ("WT",), "cohort": "weight_kg", "from_cohort": _as_float},
    "albumin_g_dl": {"unit": "g/dL", "low": ALBUMIN_G_DL[0], "high": ALBUMIN_G_DL[1],
                     "binary": False, "nonmem": ("ALB",), "cohort": "albumin_g_l",
                     "from_cohort": _albumin_g_dl},
    "ati": {"unit": "0/1", "binary": True, "nonmem": ("ATI", "ADA"), "cohort": None,
            "from_cohort": None},
    "female": {"unit": "0/1", "binary": True, "nonmem": ("FEMALE", "SEX"), "cohort": "sex",
               "from_cohort": _female},
    "immunomodulator": {"unit": "0/1", "binary": True, "nonmem": ("IMM",),
                        "cohort": "immunomodulator", "from_cohort": _as_float},
}


def nonmem_columns() -> dict[str, str]:
    """NONMEM column name -> covariate name, from :data:`COVARIATES`."""
    return {column: name for name, spec in COVARIATES.items() for column in spec["nonmem"]}


def cohort_columns() -> dict[str, str]:
    """Covariate name -> cohort / population column, for the covariates the scenarios read."""
    return {name: spec["cohort"] for name, spec in COVARIATES.items() if spec["cohort"]}


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
    return {name: spec["from_cohort"](columns[spec["cohort"]])
            for name, spec in COVARIATES.items() if spec["cohort"] and spec["cohort"] in columns}


@dataclass(frozen=True)
class CovariateEffect:
    """One covariate effect on one structural parameter.

    Parameters
    ----------
    parameter : {"cl", "v1", "q", "v2"}
        The parameter it multiplies.
    covariate : str
        A key of :data:`COVARIATES`.
    form : {"power", "linear", "factor"}
        ``power``: ``(x / reference) ** coefficient``; ``linear``: ``1 + coefficient * x``;
        ``factor``: ``coefficient ** x`` (``x`` a 0/1 indicator for the last two).
    coefficient : float
        The published estimate.
    reference : float, optional
        The reference value of a ``power`` effect (the paper's median), in the covariate's unit.
    """

    parameter: Literal["cl", "v1", "q", "v2"]
    covariate: str
    form: Literal["power", "linear", "factor"]
    coefficient: float
    reference: float | None = None

    def multiplier(self, value: np.ndarray) -> np.ndarray:
        """The factor on the parameter for covariate values ``value``."""
        if self.form == "power":
            return (value / self.reference) ** self.coefficient
        if self.form == "linear":
            return 1.0 + self.coefficient * value
        return self.coefficient**value


@dataclass(frozen=True)
class PKParameters:
    """Individual two-compartment parameters, as arrays that broadcast against each other.

    Attributes
    ----------
    cl : numpy.ndarray
        Clearance, L/day.
    v1 : numpy.ndarray
        Central volume, L.
    q : numpy.ndarray
        Inter-compartmental clearance, L/day.
    v2 : numpy.ndarray
        Peripheral volume, L.
    """

    cl: np.ndarray
    v1: np.ndarray
    q: np.ndarray
    v2: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        """The broadcast shape of the four arrays."""
        return np.broadcast_shapes(*(np.shape(getattr(self, p)) for p in PARAMETERS))

    def half_life_days(self) -> np.ndarray:
        """Terminal (beta) half-life, days."""
        k10, k12, k21 = self.cl / self.v1, self.q / self.v1, self.q / self.v2
        s = k10 + k12 + k21
        alpha = 0.5 * (s + np.sqrt(s * s - 4.0 * k10 * k21))
        beta = k10 * k21 / alpha
        return np.log(2.0) / beta


@dataclass(frozen=True)
class PopulationModel:
    """A published two-compartment population PK model of infliximab.

    Parameters
    ----------
    name : str
        Short name used on the command line (``fasanmade2009``).
    title : str
        One line: drug, population, paper.
    citation : str
        Full reference.
    source : str
        Where each number comes from (table, section) and any caveat about it.
    typical : dict
        Typical values at the reference covariates: ``cl`` and ``q`` in L/day, ``v1`` and ``v2``
        in L.
    reference_covariates : dict
        The covariate values at which ``typical`` applies.
    effects : tuple of CovariateEffect
        Covariate effects.
    omega2 : dict
        Variance of the log-normal random effect per parameter that has between-subject
        variability (parameters absent here are fixed at their covariate-predicted value).
    proportional_sd : float
        Proportional residual error, as a fraction of the prediction.
    additive_sd_ug_ml : float
        Additive residual error, µg/mL. The residual SD is
        ``sqrt(additive_sd**2 + (proportional_sd * prediction)**2)``.
    population : str
        Who the model was developed in (disease, ages, number of patients).
    cv_convention : {"sqrt", "lognormal"}
        How the source turned ``omega2`` into the percentages it printed: ``sqrt`` for
        ``CV = sqrt(omega2)`` (NONMEM's usual approximation), ``lognormal`` for the exact
        ``CV = sqrt(exp(omega2) - 1)``. ``omega2`` itself is always the variance of eta.
    reported_cv_percent : dict
        The between-subject variability as the source printed it, percent.
    aliases : tuple of str
        Other names that :func:`get_model` accepts.
    """

    name: str
    title: str
    citation: str
    source: str
    typical: Mapping[str, float]
    reference_covariates: Mapping[str, float]
    effects: tuple[CovariateEffect, ...]
    omega2: Mapping[str, float]
    proportional_sd: float
    additive_sd_ug_ml: float
    population: str = ""
    cv_convention: Literal["sqrt", "lognormal"] = "lognormal"
    reported_cv_percent: Mapping[str, float] = field(default_factory=dict)
    aliases: tuple[str, ...] = field(default=())

    @property
    def random_effects(self) -> tuple[str, ...]:
        """Parameters with between-subject variability, in the order of the eta axis."""
        return tuple(p for p in PARAMETERS if p in self.omega2)

    @property
    def omega_sd(self) -> np.ndarray:
        """SDs of the random effects (log scale), in :attr:`random_effects` order."""
        return np.sqrt(np.array([self.omega2[p] for p in self.random_effects]))

    @property
    def covariates_used(self) -> tuple[str, ...]:
        """Covariates that enter this model."""
        return tuple(dict.fromkeys(e.covariate for e in self.effects))

    def bsv_cv_percent(self, convention: str | None = None) -> dict[str, float]:
        """Between-subject variability as a coefficient of variation, percent.

        Parameters
        ----------
        convention : {"lognormal", "sqrt"}, optional
            ``lognormal`` (default): the exact CV of the log-normal parameter,
            ``sqrt(exp(omega2) - 1)``; ``sqrt``: ``sqrt(omega2)``. Pass
            :attr:`cv_convention` to reproduce the source's printed figures.
        """
        convention = convention or "lognormal"
        if convention not in ("lognormal", "sqrt"):
            raise SpecificationError("convention must be 'lognormal' or 'sqrt'")
        f = np.sqrt if convention == "sqrt" else (lambda v: np.sqrt(np.expm1(v)))
        return {p: 100.0 * float(f(v)) for p, v in self.omega2.items()}

    def covariate_values(
        self, covariates: Mapping[str, object] | None = None
    ) -> dict[str, np.ndarray]:
        """Checked covariate arrays; covariates not given take the model's reference value.

        Raises
        ------
        SpecificationError
            For an unknown covariate name, a non-finite value, a value out of its plausible range
            (albumin above 7 is taken as g/L and refused with that fix) or a non-0/1 indicator.
        """
        given = dict(covariates or {})
        unknown = sorted(set(given) - set(COVARIATES))
        if unknown:
            raise SpecificationError(
                f"unknown covariate(s) {', '.join(unknown)}; known: {', '.join(COVARIATES)}"
            )
        values: dict[str, np.ndarray] = {}
        for name, value in given.items():
            if value is not None:
                check_covariate(name, value)
        for name in self.covariates_used:
            if name in given and given[name] is not None:
                values[name] = check_covariate(name, given[name])
            else:
                values[name] = np.asarray(float(self.reference_covariates[name]))
        return values

    def individual_parameters(
        self,
        covariates: Mapping[str, object] | None = None,
        eta: np.ndarray | None = None,
    ) -> PKParameters:
        """Individual parameters from covariates and random effects, vectorised.

        Parameters
        ----------
        covariates : mapping, optional
            Covariate name -> scalar or array (e.g. one value per patient). Arrays broadcast
            against each other and against ``eta[..., 0]``.
        eta : numpy.ndarray, optional
            Random effects, last axis in :attr:`random_effects` order. ``None`` gives the
            covariate-typical patient.

        Returns
        -------
        PKParameters
            ``cl`` and ``q`` in L/day, ``v1`` and ``v2`` in L.

        Examples
        --------
        >>> from pkmodel.pk import FASANMADE_2009_UC
        >>> p = FASANMADE_2009_UC.individual_parameters({"weight_kg": 77, "albumin_g_dl": 4.1})
        >>> round(float(p.cl), 3)
        0.407
        """
        cov = self.covariate_values(covariates)
        out: dict[str, np.ndarray] = {p: np.asarray(float(self.typical[p])) for p in PARAMETERS}
        for effect in self.effects:
            out[effect.parameter] = out[effect.parameter] * effect.multiplier(
                cov[effect.covariate]
            )
        if eta is not None:
            eta = np.asarray(eta, dtype=float)
            if eta.shape[-1:] != (len(self.random_effects),):
                raise SpecificationError(
                    f"eta must have a last axis of length {len(self.random_effects)} "
                    f"({', '.join(self.random_effects)}) for model {self.name}; got shape "
                    f"{eta.shape}"
                )
            for i, p in enumerate(self.random_effects):
                out[p] = out[p] * np.exp(eta[..., i])
        return PKParameters(**out)

    def sample_eta(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Random effects drawn from the population distribution, shape ``shape + (n_eta,)``."""
        z = rng.standard_normal(size=(*shape, len(self.random_effects)))
        return z * self.omega_sd

    def to_dict(self) -> dict:
        """Every number and text of the model as plain JSON (:meth:`from_dict` reads it back
        exactly: floats survive JSON unchanged)."""
        return {"name": self.name, "title": self.title, "citation": self.citation,
                "source": self.source, "typical": {k: float(v) for k, v in self.typical.items()},
                "reference_covariates": {k: float(v)
                                         for k, v in self.reference_covariates.items()},
                "effects": [{"parameter": e.parameter, "covariate": e.covariate, "form": e.form,
                             "coefficient": float(e.coefficient),
                             "reference": None if e.reference is None else float(e.reference)}
                            for e in self.effects],
                "omega2": {k: float(v) for k, v in self.omega2.items()},
                "proportional_sd": float(self.proportional_sd),
                "additive_sd_ug_ml": float(self.additive_sd_ug_ml),
                "population": self.population, "cv_convention": self.cv_convention,
                "reported_cv_percent": {k: float(v) for k, v in self.reported_cv_percent.items()},
                "aliases": list(self.aliases)}

    @classmethod
    def from_dict(cls, value: Mapping) -> PopulationModel:
        """The model written by :meth:`to_dict`.

        Raises
        ------
        SpecificationError
            A key missing or unknown, a parameter or covariate that is not known, a form that
            is not ``power``, ``linear`` or ``factor``.
        """
        if not isinstance(value, Mapping):
            raise SpecificationError(f"a PK model's definition must be a mapping, not "
                                     f"{type(value).__name__}")
        names = [f.name for f in fields(cls)]
        required = [f.name for f in fields(cls)
                    if f.default is MISSING and f.default_factory is MISSING]
        unknown = sorted(set(value) - set(names))
        missing = [k for k in required if k not in value]
        if unknown or missing:
            raise SpecificationError(
                "the PK model's definition " + "; ".join(
                    ([f"lacks {', '.join(missing)}"] if missing else [])
                    + ([f"has unknown key(s) {', '.join(unknown)}"] if unknown else []))
                + f"; its keys are {', '.join(names)}")
        d = dict(value)
        for key in ("typical", "omega2", "reference_covariates"):
            known, what = ((COVARIATES, "covariates") if key == "reference_covariates"
                           else (PARAMETERS, "parameters"))
            bad = sorted(set(d[key]) - set(known))
            if bad:
                raise SpecificationError(f"the PK model's {key} names {bad}, which are not "
                                         f"{what} pkmodel knows ({', '.join(known)})")
        if set(d["typical"]) != set(PARAMETERS):
            raise SpecificationError("the PK model's typical values must be those of "
                                     f"{', '.join(PARAMETERS)}")
        effects = []
        for e in d["effects"]:
            if e.get("parameter") not in PARAMETERS or e.get("covariate") not in COVARIATES \
                    or e.get("form") not in ("power", "linear", "factor"):
                raise SpecificationError(f"the PK model's covariate effect {e!r} is not a "
                                         "known parameter, covariate and form (power, linear, "
                                         "factor)")
            effects.append(CovariateEffect(**e))
        d["effects"] = tuple(effects)
        d["aliases"] = tuple(d.get("aliases", ()))
        return cls(**d)


def check_covariate(name: str, value: object) -> np.ndarray:
    """Validate one covariate array; raise SpecificationError with the fix."""
    spec = COVARIATES[name]
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SpecificationError(
            f"covariate {name} must be numeric ({spec['unit']}); got {value!r}"
        ) from None
    if not np.all(np.isfinite(arr)):
        raise SpecificationError(f"covariate {name} has a missing or non-finite value")
    if spec["binary"]:
        if not np.all((arr == 0) | (arr == 1)):
            raise SpecificationError(f"covariate {name} must be 0 or 1; write 1 for yes, 0 for no")
        return arr
    if name == "albumin_g_dl" and np.any(arr > spec["high"]) and np.all(arr < 70):
        raise SpecificationError(
            f"albumin {float(np.max(arr)):g} looks like g/L; the models use g/dL: divide by 10"
        )
    bad = (arr < spec["low"]) | (arr > spec["high"])
    if np.any(bad):
        raise SpecificationError(
            f"covariate {name} = {float(arr[bad].flat[0]):g} {spec['unit']} is outside the "
            f"plausible range {spec['low']:g}-{spec['high']:g} {spec['unit']}; check the value "
            "and its unit"
        )
    return arr


FASANMADE_2009_UC = PopulationModel(
    name="fasanmade2009",
    aliases=("fasanmade2009_uc", "fasanmade_2009", "uc"),
    title="Infliximab in ulcerative colitis (ACT 1 and ACT 2, 482 adults): Fasanmade et al. 2009",
    citation=(
        "Fasanmade AA, Adedokun OJ, Ford J, Hernandez D, Johanns J, Hu C, Davis HM, Zhou H. "
        "Population pharmacokinetic analysis of infliximab in patients with ulcerative colitis. "
        "Eur J Clin Pharmacol. 2009;65(12):1211-1228. doi:10.1007/s00228-009-0718-4"
    ),
    source=(
        "Typical values CL 0.407 L/day, V1 3.29 L, V2 4.13 L, Q 7.14 L/day and BSV 37.7% (CL), "
        "22.1% (V1): the paper's abstract (final covariate model). Covariate model, omega^2 and "
        "residual error: the paper's Table 3 as transcribed in the nlmixr2lib model "
        "Fasanmade_2009_infliximab (CL x (ALB/4.1)^-1.54 x (1 + 0.471 ATI) x (1 - 0.236 female); "
        "V1 x (WT/77)^0.538 x (1 - 0.137 female); omega^2 0.131 (CL), 0.048 (V1); proportional "
        "0.403, additive 0.0413 µg/mL). Reference patient: 77 kg, albumin 4.1 g/dL, male, "
        "ATI-negative. We could not read Table 3 itself; the covariate numbers are second-hand. "
        "The abstract's 37.7% and 22.1% are closest to the log-normal CVs of these omega^2 "
        "(37.4%, 22.2%; sqrt(omega^2) would give 36.2%, 21.9%): 37.7% would need omega^2 0.133, "
        "a 0.3-point gap we cannot resolve without Table 3; we keep the transcribed 0.131."
    ),
    typical={"cl": 0.407, "v1": 3.29, "q": 7.14, "v2": 4.13},
    reference_covariates={"weight_kg": 77.0, "albumin_g_dl": 4.1, "ati": 0.0, "female": 0.0},
    effects=(
        CovariateEffect("cl", "albumin_g_dl", "power", -1.54, 4.1),
        CovariateEffect("cl", "ati", "linear", 0.471),
        CovariateEffect("cl", "female", "linear", -0.236),
        CovariateEffect("v1", "weight_kg", "power", 0.538, 77.0),
        CovariateEffect("v1", "female", "linear", -0.137),
    ),
    omega2={"cl": 0.131, "v1": 0.048},
    cv_convention="lognormal",
    reported_cv_percent={"cl": 37.7, "v1": 22.1},
    proportional_sd=0.403,
    additive_sd_ug_ml=0.0413,
    population="Ulcerative colitis, adults (ACT 1 and ACT 2, 482)",
)
"""Fasanmade et al. 2009, ulcerative colitis (Eur J Clin Pharmacol 65:1211-1228).

Typical values (abstract; Table 3): CL 0.407 L/day, V1 3.29 L, V2 4.13 L, Q 7.14 L/day for a 77 kg
male with albumin 4.1 g/dL and no antibodies to infliximab (ATI). Covariates (Table 3, second-hand
via nlmixr2lib): CL x (ALB/4.1 g/dL)^-1.54 x (1 + 0.471 ATI) x (1 - 0.236 female);
V1 x (WT/77 kg)^0.538 x (1 - 0.137 female). BSV: omega^2 0.131 on CL, 0.048 on V1 (log-normal
CVs 37.4% and 22.2%; the abstract prints 37.7% and 22.1%); none on Q and V2. Residual error:
proportional 0.403 plus additive 0.0413 µg/mL.
"""

FASANMADE_2011_CD = PopulationModel(
    name="fasanmade2011",
    aliases=("fasanmade2011_cd", "fasanmade_2011", "cd"),
    title=("Infliximab in Crohn's disease (REACH + ACCENT I, 112 children and 580 adults): "
           "Fasanmade et al. 2011"),
    population="Crohn's disease, children (REACH, 112) and adults (ACCENT I, 580)",
    citation=(
        "Fasanmade AA, Adedokun OJ, Blank M, Zhou H, Davis HM. Pharmacokinetic properties of "
        "infliximab in children and adults with Crohn's disease: a retrospective analysis of data "
        "from 2 phase III clinical trials. Clin Ther. 2011;33(7):946-964. "
        "doi:10.1016/j.clinthera.2011.06.002. Parameter values as in the NONMEM control stream "
        "of Kim Y, Baek SH, Jang IJ, Chung JY. CPT Pharmacometrics Syst Pharmacol. "
        "2025;14:1682-1694, doi:10.1002/psp4.70089 (Data S1, model 6; Table S2)."
    ),
    source=(
        "Combined-population model, per kilogram with reference 65 kg (Fasanmade 2011, final "
        "model; as coded in Kim 2025 Data S1 model 6): CL (mL/kg/day) = 5.42 (WT/65)^-0.313 "
        "(ALB/4.1 g/dL)^-0.855 (1 + 0.291 ATI) (1 - 0.137 IMM); V1 (mL/kg) = 52.4 (WT/65)^-0.233; "
        "V2 (mL/kg) = 19.6 (WT/65)^-0.588; Q = 2.26 mL/kg/day; omega^2 0.0942 (CL), 0.0159 (V1), "
        "0.306 (V2), printed as 30.7%, 12.6%, 55.3% = sqrt(omega^2); residual 29.2% "
        "proportional + 0.371 µg/mL additive. Coded as totals at 65 kg with weight exponents "
        "raised by 1 (0.687, 0.767, 0.412, 1). The same equations as printed in Frymoyer 2017 "
        "(Methods) carry positive weight exponents; we follow the control stream (see docs/pk.md, "
        "'Fasanmade 2011: the sign of the weight exponents'). The control stream's "
        "inter-occasion variability on CL (omega^2 0.0335) is not modelled."
    ),
    typical={"cl": 5.42 * 0.065, "v1": 52.4 * 0.065, "q": 2.26 * 0.065, "v2": 19.6 * 0.065},
    reference_covariates={"weight_kg": 65.0, "albumin_g_dl": 4.1, "ati": 0.0,
                          "immunomodulator": 0.0},
    effects=(
        CovariateEffect("cl", "weight_kg", "power", 1.0 - 0.313, 65.0),
        CovariateEffect("cl", "albumin_g_dl", "power", -0.855, 4.1),
        CovariateEffect("cl", "immunomodulator", "linear", -0.137),
        CovariateEffect("cl", "ati", "linear", 0.291),
        CovariateEffect("v1", "weight_kg", "power", 1.0 - 0.233, 65.0),
        CovariateEffect("v2", "weight_kg", "power", 1.0 - 0.588, 65.0),
        CovariateEffect("q", "weight_kg", "power", 1.0, 65.0),
    ),
    omega2={"cl": 0.0942, "v1": 0.0159, "v2": 0.306},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 30.7, "v1": 12.6, "v2": 55.3},
    proportional_sd=0.292,
    additive_sd_ug_ml=0.371,
)
"""Fasanmade et al. 2011, Crohn's disease, children and adults (Clin Ther 33:946-964).

Per kilogram, reference 65 kg (Kim et al. 2025 control stream, Data S1 model 6):
CL = 5.42 mL/kg/day x (WT/65)^-0.313 x (ALB/4.1 g/dL)^-0.855 x (1 + 0.291 ATI) x (1 - 0.137 IMM),
V1 = 52.4 mL/kg x (WT/65)^-0.233, V2 = 19.6 mL/kg x (WT/65)^-0.588, Q = 2.26 mL/kg/day; here as
totals for a 65 kg patient (CL 0.352 L/day, V1 3.41 L, Q 0.147 L/day, V2 1.27 L) with weight
exponents raised by one (total CL grows as WT^0.687). BSV omega^2 0.0942 (CL), 0.0159 (V1),
0.306 (V2), reported as sqrt(omega^2) = 30.7%, 12.6%, 55.3%. Residual error 29.2% proportional plus
0.371 µg/mL additive.
"""

FASANMADE_2011_PAEDIATRIC = PopulationModel(
    name="fasanmade2011_paediatric",
    aliases=("fasanmade2011_pediatric", "reach", "cd_children"),
    title="Infliximab in paediatric Crohn's disease (REACH, 112 children): Fasanmade et al. 2011",
    population="Crohn's disease, children 6-17 years (REACH, 112)",
    citation=(
        "Fasanmade AA, Adedokun OJ, Blank M, Zhou H, Davis HM. Pharmacokinetic properties of "
        "infliximab in children and adults with Crohn's disease: a retrospective analysis of data "
        "from 2 phase III clinical trials. Clin Ther. 2011;33(7):946-964. "
        "doi:10.1016/j.clinthera.2011.06.002 (paediatric model). Parameter values as in the "
        "NONMEM control stream of Kim Y, Baek SH, Jang IJ, Chung JY. CPT Pharmacometrics Syst "
        "Pharmacol. 2025;14:1682-1694, doi:10.1002/psp4.70089 (Data S1, model 7; Table S2)."
    ),
    source=(
        "Paediatric (REACH) model, per kilogram with reference 42 kg and albumin 3.8 g/dL (Kim "
        "2025 Data S1 model 7): CL (mL/kg/day) = 5.43 (WT/42)^-0.34 (ALB/3.8)^-1.22; V1 (mL/kg) "
        "= 54.2 (WT/42)^-0.171; V2 (mL/kg) = 29.2 (WT/42)^-0.414; Q = 3.52 mL/kg/day; omega^2 "
        "0.064 (CL), 0.027 (V1), 0.122 (V2), printed as sqrt(omega^2) = 25.2%, 16.3%, 34.9%; "
        "residual 27.5% proportional + 0.244 µg/mL additive. The paper's abstract gives CL 5.43 "
        "mL/kg/day for the typical child (42 kg, albumin 3.8 g/dL, no ATI, on an "
        "immunomodulator). No ATI or immunomodulator effect: the typical values are those of "
        "an ATI-negative child on an immunomodulator. Inter-occasion variability on CL (omega^2 "
        "0.048) is not modelled."
    ),
    typical={"cl": 5.43 * 0.042, "v1": 54.2 * 0.042, "q": 3.52 * 0.042, "v2": 29.2 * 0.042},
    reference_covariates={"weight_kg": 42.0, "albumin_g_dl": 3.8},
    effects=(
        CovariateEffect("cl", "weight_kg", "power", 1.0 - 0.34, 42.0),
        CovariateEffect("cl", "albumin_g_dl", "power", -1.22, 3.8),
        CovariateEffect("v1", "weight_kg", "power", 1.0 - 0.171, 42.0),
        CovariateEffect("v2", "weight_kg", "power", 1.0 - 0.414, 42.0),
        CovariateEffect("q", "weight_kg", "power", 1.0, 42.0),
    ),
    omega2={"cl": 0.064, "v1": 0.027, "v2": 0.122},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 25.2, "v1": 16.3, "v2": 34.9},
    proportional_sd=0.275,
    additive_sd_ug_ml=0.244,
)
"""Fasanmade et al. 2011, paediatric Crohn's disease model (REACH; Clin Ther 33:946-964).

CL = 5.43 mL/kg/day x (WT/42)^-0.34 x (ALB/3.8 g/dL)^-1.22, V1 = 54.2 mL/kg x (WT/42)^-0.171,
V2 = 29.2 mL/kg x (WT/42)^-0.414, Q = 3.52 mL/kg/day (Kim et al. 2025, Data S1 model 7). BSV
omega^2 0.064, 0.027, 0.122 on CL, V1, V2. Residual 27.5% proportional + 0.244 µg/mL additive.
"""

WOJCIECHOWSKI_2017 = PopulationModel(
    name="wojciechowski2017",
    aliases=("xu2012", "mould2012"),
    title=("Infliximab in inflammatory bowel disease (pooled children and adults): the model of "
           "Wojciechowski et al. 2017"),
    population=("Inflammatory bowel disease, children and adults (pooled Crohn's disease 112 and "
                "ulcerative colitis 543)"),
    citation=(
        "Wojciechowski J, Upton RN, Mould DR, Wiese MD, Foster DJR. Infliximab maintenance dosing "
        "in inflammatory bowel disease: an example for in silico assessment of adaptive dosing "
        "strategies. AAPS J. 2017;19(4):1136-1147. doi:10.1208/s12248-017-0082-8 (Methods, "
        "population PK model, from a pooled paediatric and adult analysis by Xu, Mould et al. "
        "2012). Parameter values as in the authors' published NONMEM control stream and in Kim "
        "Y et al. CPT Pharmacometrics Syst Pharmacol. 2025;14:1682-1694, doi:10.1002/psp4.70089 "
        "(Data S1, model 10; Table S2)."
    ),
    source=(
        "Typical values at 70 kg, albumin 4 g/dL, ADA-negative: CL 0.294 L/day, V1 3.33 L, "
        "Q 0.0719 L/day, V2 1.14 L; CL x (WT/70)^0.614 x (ALB/4)^-1.17 x (1 + 0.257 ATI); "
        "V1 x (WT/70)^0.691; Q x (WT/70)^1.10; V2 x (WT/70)^0.59; omega^2 0.106929 (CL), "
        "0.0225 (V1), 1.21 (Q), 0.638401 (V2), printed as sqrt(omega^2) = 32.7%, 15.0%, 110%, "
        "79.9%; residual proportional only, SD 0.419. Two public transcriptions agree on every "
        "number (the authors' control stream, Kim 2025 Data S1 model 10) except the ATI form: "
        "1 + 0.257 ATI in the authors' stream (followed here), exp(0.257 ATI) in Kim 2025. The "
        "original pooled analysis (Xu, Mould et al. 2012) was presented as a meeting abstract, "
        "which we could not read."
    ),
    typical={"cl": 0.294, "v1": 3.33, "q": 0.0719, "v2": 1.14},
    reference_covariates={"weight_kg": 70.0, "albumin_g_dl": 4.0, "ati": 0.0},
    effects=(
        CovariateEffect("cl", "weight_kg", "power", 0.614, 70.0),
        CovariateEffect("cl", "albumin_g_dl", "power", -1.17, 4.0),
        CovariateEffect("cl", "ati", "linear", 0.257),
        CovariateEffect("v1", "weight_kg", "power", 0.691, 70.0),
        CovariateEffect("q", "weight_kg", "power", 1.10, 70.0),
        CovariateEffect("v2", "weight_kg", "power", 0.59, 70.0),
    ),
    omega2={"cl": 0.106929, "v1": 0.0225, "q": 1.21, "v2": 0.638401},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 32.7, "v1": 15.0, "q": 110.0, "v2": 79.9},
    proportional_sd=0.419,
    additive_sd_ug_ml=0.0,
)
"""Wojciechowski et al. 2017 (AAPS J 19:1136-1147), pooled paediatric and adult IBD model.

CL 0.294 L/day x (WT/70)^0.614 x (ALB/4 g/dL)^-1.17 x (1 + 0.257 ATI), V1 3.33 L x (WT/70)^0.691,
Q 0.0719 L/day x (WT/70)^1.10, V2 1.14 L x (WT/70)^0.59; BSV on all four parameters; proportional
residual error 0.419.
"""

DUBINSKY_2017 = PopulationModel(
    name="dubinsky2017",
    aliases=("dubinsky2017_paediatric", "dubinsky"),
    title="Infliximab in paediatric inflammatory bowel disease (50 children): Dubinsky et al. 2017",
    population="Inflammatory bowel disease, children (Crohn's disease 41, ulcerative colitis 9)",
    citation=(
        "Dubinsky MC, Phan BL, Singh N, Rabizadeh S, Mould DR. Pharmacokinetic dashboard-"
        "recommended dosing is different than standard of care dosing in infliximab-treated "
        "pediatric IBD patients. AAPS J. 2017;19(1):215-222. doi:10.1208/s12248-016-9994-y "
        "(Table II, final model). Parameter values as in Kim Y et al. CPT Pharmacometrics Syst "
        "Pharmacol. 2025;14:1682-1694, doi:10.1002/psp4.70089 (Data S1, model 5; Table S2)."
    ),
    source=(
        "Typical values at 70 kg, albumin 4 g/dL, ADA-negative: CL 0.296 L/day, V1 3.30 L, "
        "V2 1.16 L, Q 0.0781 L/day; CL x (WT/70)^0.612 x (ALB/4)^-2.3 x (1 + 0.231 ATI); "
        "V1 x (WT/70)^0.696; V2 x (WT/70)^0.604; Q x (WT/70)^1.15; omega^2 0.098 (CL), 0.010 "
        "(V1), 1.232 (Q), 0.579 (V2), printed as sqrt(omega^2) = 31.3%, 9.85%, 111%, 76.1%; "
        "residual proportional only, SD 0.419. Two public transcriptions agree (Kim 2025 Data "
        "S1 model 5; an open dosing-dashboard implementation that gives the omegas as SDs)."
    ),
    typical={"cl": 0.296, "v1": 3.30, "q": 0.0781, "v2": 1.16},
    reference_covariates={"weight_kg": 70.0, "albumin_g_dl": 4.0, "ati": 0.0},
    effects=(
        CovariateEffect("cl", "weight_kg", "power", 0.612, 70.0),
        CovariateEffect("cl", "albumin_g_dl", "power", -2.3, 4.0),
        CovariateEffect("cl", "ati", "linear", 0.231),
        CovariateEffect("v1", "weight_kg", "power", 0.696, 70.0),
        CovariateEffect("q", "weight_kg", "power", 1.15, 70.0),
        CovariateEffect("v2", "weight_kg", "power", 0.604, 70.0),
    ),
    omega2={"cl": 0.098, "v1": 0.010, "q": 1.232, "v2": 0.579},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 31.3, "v1": 9.85, "q": 111.0, "v2": 76.1},
    proportional_sd=0.419,
    additive_sd_ug_ml=0.0,
)
"""Dubinsky et al. 2017 (AAPS J 19:215-222), paediatric IBD dashboard model.

CL 0.296 L/day x (WT/70)^0.612 x (ALB/4 g/dL)^-2.3 x (1 + 0.231 ATI), V1 3.30 L x (WT/70)^0.696,
V2 1.16 L x (WT/70)^0.604, Q 0.0781 L/day x (WT/70)^1.15; BSV on all four parameters;
proportional residual error 0.419.
"""

AUBOURG_2015 = PopulationModel(
    name="aubourg2015",
    aliases=("aubourg",),
    title="Infliximab in adult Crohn's disease (133 adults): Aubourg et al. 2015",
    population="Crohn's disease, adults (133)",
    citation=(
        "Aubourg A, Picon L, Lecomte T, Bejan-Angoulvant T, Paintaud G, Ternant D. A robust "
        "estimation of infliximab pharmacokinetic parameters in Crohn's disease. Eur J Clin "
        "Pharmacol. 2015;71(12):1541-1542. doi:10.1007/s00228-015-1942-8 (Table 1). Parameter "
        "values as in Kim Y et al. CPT Pharmacometrics Syst Pharmacol. 2025;14:1682-1694, "
        "doi:10.1002/psp4.70089 (Data S1, model 1; Table S2)."
    ),
    source=(
        "Typical values by sex at 60 kg: CL 0.456 L/day (men; 0.019 L/h), 0.336 L/day (women; "
        "0.014 L/h); V1 3.2 L (men), 2.6 L (women), x (WT/60)^0.22; V2 4.5 L; Q 1.992 L/day "
        "(0.083 L/h); omega^2 0.2209 (CL), 0.0729 (V1), printed as sqrt(omega^2) = 47%, 27%; "
        "residual 21% proportional + 2.3 µg/mL additive. Coded with men as the reference and "
        "the women's values as factors (0.336/0.456 on CL, 2.6/3.2 on V1). One public "
        "transcription only (Kim 2025); no ATI effect (no patient was ATI-positive)."
    ),
    typical={"cl": 0.456, "v1": 3.2, "q": 1.992, "v2": 4.5},
    reference_covariates={"weight_kg": 60.0, "female": 0.0},
    effects=(
        CovariateEffect("cl", "female", "factor", 0.336 / 0.456),
        CovariateEffect("v1", "female", "factor", 2.6 / 3.2),
        CovariateEffect("v1", "weight_kg", "power", 0.22, 60.0),
    ),
    omega2={"cl": 0.2209, "v1": 0.0729},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 47.0, "v1": 27.0},
    proportional_sd=0.21,
    additive_sd_ug_ml=2.3,
)
"""Aubourg et al. 2015 (Eur J Clin Pharmacol 71:1541-1542), adult Crohn's disease.

CL 0.456 L/day (men) or 0.336 L/day (women); V1 3.2 L (men) or 2.6 L (women) x (WT/60 kg)^0.22;
V2 4.5 L; Q 1.992 L/day. BSV omega^2 0.2209 (CL), 0.0729 (V1). Residual 21% proportional plus
2.3 µg/mL additive.
"""

MODELS: dict[str, PopulationModel] = {m.name: m for m in (
    FASANMADE_2009_UC, FASANMADE_2011_CD, FASANMADE_2011_PAEDIATRIC, WOJCIECHOWSKI_2017,
    DUBINSKY_2017, AUBOURG_2015)}


def get_model(name: str | PopulationModel) -> PopulationModel:
    """The published model called ``name`` (case-insensitive; aliases such as ``uc``, ``cd``)."""
    if isinstance(name, PopulationModel):
        return name
    key = str(name).strip().lower().replace("-", "_").replace(" ", "")
    for model in MODELS.values():
        if key == model.name or key in model.aliases:
            return model
    raise SpecificationError(
        f"unknown PK model {name!r}; use one of {', '.join(MODELS)} "
        "(aliases: uc = fasanmade2009, cd = fasanmade2011; `pkmodel pk models` lists them)"
    )


def resolve_model(value: str | os.PathLike | PopulationModel | Mapping) -> PopulationModel:
    """The one resolver of a PK model wherever one is asked for (command line, scenarios,
    the exposure-driven remission model).

    Parameters
    ----------
    value : str, path, PopulationModel or mapping
        A library model's name or alias (:func:`get_model`); a population fit's file
        (``POPFIT.nc``, written by ``pkmodel pk fit``), turned into a model by
        :meth:`~pkmodel.pk.population.PopulationFit.to_population_model` and named after the
        file's stem; a :class:`PopulationModel`, returned as it is; or a model's
        :meth:`PopulationModel.to_dict` (as a saved remission fit records a local model).

    Raises
    ------
    SpecificationError
        An unknown name, a bad definition, or a fit whose structure cannot serve as a library
        model (saying why).
    FitFileError
        A population fit's file that is missing, corrupt or of another kind.
    """
    if isinstance(value, PopulationModel):
        return value
    if isinstance(value, Mapping):
        return PopulationModel.from_dict(value)
    if isinstance(value, os.PathLike) or str(value).strip().lower().endswith(".nc"):
        from pathlib import Path

        from pkmodel.pk.population.loading import load_population_fit

        path = Path(value)
        try:
            return load_population_fit(path, warn=False).to_population_model(name=path.stem)
        except SpecificationError as exc:
            raise SpecificationError(f"{path}: this population fit cannot be used as a PK "
                                     f"model: {exc}") from None
    return get_model(value)
