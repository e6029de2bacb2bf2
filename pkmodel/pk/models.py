"""Published infliximab population PK models: two-compartment parameter sets with covariate models.

Every model is linear two-compartment disposition with elimination from the central compartment and
zero-order intravenous infusion into it. Units throughout: clearances CL and Q in L/day, volumes V1
and V2 in L, body weight in kg, serum albumin in g/dL, concentrations in µg/mL (= mg/L).

A :class:`PopulationModel` holds the typical values at the paper's reference covariates, the
covariate effects, the between-subject variability (log-normal, variance ``omega2`` of the random
effect eta on the log scale) and the residual error of the paper. The published sets are the
module constants :data:`FASANMADE_2009_UC` and :data:`FASANMADE_2011_CD`; :func:`get_model` finds
one by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pkmodel.errors import SpecificationError

__all__ = [
    "COVARIATES",
    "FASANMADE_2009_UC",
    "FASANMADE_2011_CD",
    "MODELS",
    "PARAMETERS",
    "CovariateEffect",
    "PKParameters",
    "PopulationModel",
    "get_model",
]

#: The four structural parameters and their units.
PARAMETERS: dict[str, str] = {"cl": "L/day", "v1": "L", "q": "L/day", "v2": "L"}

#: Patient covariates that the models may use, with units and plausible ranges (checked on input).
COVARIATES: dict[str, dict] = {
    "weight_kg": {"unit": "kg", "low": 10.0, "high": 300.0, "binary": False},
    "albumin_g_dl": {"unit": "g/dL", "low": 1.0, "high": 7.0, "binary": False},
    "ati": {"unit": "0/1", "binary": True},
    "female": {"unit": "0/1", "binary": True},
    "immunomodulator": {"unit": "0/1", "binary": True},
}


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

    def bsv_cv_percent(self) -> dict[str, float]:
        """Between-subject variability as a coefficient of variation, percent."""
        return {p: 100.0 * float(np.sqrt(np.expm1(v))) for p, v in self.omega2.items()}

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
        "ATI-negative. We could not read Table 3 itself; the covariate numbers are second-hand."
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
    proportional_sd=0.403,
    additive_sd_ug_ml=0.0413,
)
"""Fasanmade et al. 2009, ulcerative colitis (Eur J Clin Pharmacol 65:1211-1228).

Typical values (abstract; Table 3): CL 0.407 L/day, V1 3.29 L, V2 4.13 L, Q 7.14 L/day for a 77 kg
male with albumin 4.1 g/dL and no antibodies to infliximab (ATI). Covariates (Table 3, second-hand
via nlmixr2lib): CL x (ALB/4.1 g/dL)^-1.54 x (1 + 0.471 ATI) x (1 - 0.236 female);
V1 x (WT/77 kg)^0.538 x (1 - 0.137 female). BSV: omega^2 0.131 on CL (37.7% CV), 0.048 on V1
(22.1% CV); none on Q and V2. Residual error: proportional 0.403 plus additive 0.0413 µg/mL.
"""

FASANMADE_2011_CD = PopulationModel(
    name="fasanmade2011",
    aliases=("fasanmade2011_cd", "fasanmade_2011", "cd", "frymoyer2017"),
    title=(
        "Infliximab in Crohn's disease (REACH + ACCENT I, 112 children and 580 adults): "
        "Fasanmade et al. 2011, as reproduced by Frymoyer et al. 2017"
    ),
    citation=(
        "Fasanmade AA, Adedokun OJ, Blank M, Zhou H, Davis HM. Pharmacokinetic properties of "
        "infliximab in children and adults with Crohn's disease: a retrospective analysis of data "
        "from 2 phase III clinical trials. Clin Ther. 2011;33(7):946-964. "
        "doi:10.1016/j.clinthera.2011.06.002. Equations and estimates as reproduced in: Frymoyer "
        "A, Hoekman DR, Piester TL, et al. Application of population pharmacokinetic modeling for "
        "individualized infliximab dosing strategies in Crohn disease. J Pediatr Gastroenterol "
        "Nutr. 2017;65(6):639-645 (Methods, 'Model evaluation')."
    ),
    source=(
        "Per-kilogram equations of Frymoyer 2017 Methods (second-hand via the nlmixr2lib model "
        "Frymoyer_2017_infliximab): CL (mL/kg/day) = 5.42 (WT/65)^0.313 (ALB/4.1)^-0.855 "
        "0.863^IMM 1.292^ATI; V1 (mL/kg) = 52.4 (WT/65)^0.233; V2 (mL/kg) = 19.6 (WT/65)^0.588; "
        "Q = 2.26 mL/kg/day; BSV 30.7% (CL), 12.6% (V1), 55.3% (V2) CV; residual 29.2% "
        "proportional + 0.371 µg/mL additive. Converted here to totals at 65 kg with exponents "
        "raised by 1. We could not read Fasanmade 2011's own tables."
    ),
    typical={"cl": 5.42 * 0.065, "v1": 52.4 * 0.065, "q": 2.26 * 0.065, "v2": 19.6 * 0.065},
    reference_covariates={"weight_kg": 65.0, "albumin_g_dl": 4.1, "ati": 0.0,
                          "immunomodulator": 0.0},
    effects=(
        CovariateEffect("cl", "weight_kg", "power", 1.313, 65.0),
        CovariateEffect("cl", "albumin_g_dl", "power", -0.855, 4.1),
        CovariateEffect("cl", "immunomodulator", "factor", 0.863),
        CovariateEffect("cl", "ati", "factor", 1.292),
        CovariateEffect("v1", "weight_kg", "power", 1.233, 65.0),
        CovariateEffect("v2", "weight_kg", "power", 1.588, 65.0),
        CovariateEffect("q", "weight_kg", "power", 1.0, 65.0),
    ),
    omega2={
        "cl": float(np.log1p(0.307**2)),
        "v1": float(np.log1p(0.126**2)),
        "v2": float(np.log1p(0.553**2)),
    },
    proportional_sd=0.292,
    additive_sd_ug_ml=0.371,
)
"""Fasanmade et al. 2011, Crohn's disease, children and adults (Clin Ther 33:946-964).

Equations as printed in Frymoyer et al. 2017 (J Pediatr Gastroenterol Nutr 65:639-645, Methods):
CL = 5.42 mL/kg/day x (WT/65)^0.313 x (ALB/4.1 g/dL)^-0.855 x 0.863^IMM x 1.292^ATI,
V1 = 52.4 mL/kg x (WT/65)^0.233, V2 = 19.6 mL/kg x (WT/65)^0.588, Q = 2.26 mL/kg/day; here as
totals for a 65 kg patient (CL 0.352 L/day, V1 3.41 L, Q 0.147 L/day, V2 1.27 L) with weight
exponents raised by one. BSV 30.7% (CL), 12.6% (V1), 55.3% (V2) CV, as omega^2 = log(1 + CV^2).
Residual error 29.2% proportional plus 0.371 µg/mL additive.
"""

MODELS: dict[str, PopulationModel] = {m.name: m for m in (FASANMADE_2009_UC, FASANMADE_2011_CD)}


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
        "(aliases: uc = fasanmade2009, cd = fasanmade2011)"
    )
