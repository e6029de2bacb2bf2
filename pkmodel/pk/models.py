"""A population PK model: structure, typical values, covariate effects, variability, residual error.

:class:`PopulationModel` is the one vocabulary of a PK model with known numbers, whether it was
published (:mod:`pkmodel.pk.published_models`) or fitted (:meth:`pkmodel.pk.population.
PopulationFit.to_population_model`):

* the structure (:mod:`pkmodel.pk.structures`: compartments and dosing route, with the
  parameters' units);
* the typical value of each structural parameter at the reference covariates;
* covariate effects (:class:`~pkmodel.pk.covariate_effects.CovariateEffect`: the forms a
  population specification estimates, with their coefficients), each multiplying its parameter;
* between-subject variability: log-normal, the variance ``omega2`` of each parameter's random
  effect eta, independent or in correlated blocks (:mod:`pkmodel.pk.variability`), with the
  convention the source printed its CVs in;
* inter-occasion variability: the variance ``omega2_iov`` of each parameter's occasion effect
  kappa, independent, one draw per occasion (:mod:`pkmodel.pk.occasions`), so that the
  parameter in occasion k is ``typical(covariates) exp(eta + kappa_k)``;
* the residual error, ``sd = sqrt(additive^2 + (proportional * prediction)^2)``.

A population specification (:class:`pkmodel.pk.population.PopulationSpec`) is the same vocabulary
with priors in place of the numbers. :class:`PKParameters` holds a structure's individual
parameters as arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.pk.covariate_effects import FORMS, CovariateEffect
from pkmodel.pk.covariate_registry import COVARIATES, Covariate, CovariateRegistry
from pkmodel.pk.residual import residual_sd
from pkmodel.pk.structures import TWO_COMPARTMENT, LinearCompartmental, linear_structure
from pkmodel.pk.variability import correlation_cholesky, correlation_names

__all__ = ["COVARIATES", "PARAMETERS", "CovariateEffect", "PKParameters", "PopulationModel"]

#: The parameters and units of the published models' structure (two compartments), for code
#: written before structures were objects; read a model's ``structure.units()`` instead.
PARAMETERS: dict[str, str] = TWO_COMPARTMENT.units()


class PKParameters:
    """Individual parameters of a structure, as arrays that broadcast against each other.

    Parameters
    ----------
    *values : array-like
        The parameters in the structure's order (``cl, v1, q, v2`` for two compartments).
    structure : LinearCompartmental, default two compartments, infusions
        The structure they belong to.
    **named : array-like
        The parameters by name (instead of, or as well as, positionally).

    Attributes
    ----------
    structure
        The structure.
    values : dict
        Name -> array, in the structure's order; also reachable as attributes (``p.cl``) and
        items (``p["cl"]``). Units as :meth:`LinearCompartmental.unit` says (L/day, L, 1/day).

    Examples
    --------
    >>> p = PKParameters(0.407, 3.29, 7.14, 4.13)
    >>> p.names, round(float(p.half_life_days()), 1)
    (('cl', 'v1', 'q', 'v2'), 14.1)
    """

    __slots__ = ("structure", "values")

    def __init__(self, *values: Any, structure: LinearCompartmental = TWO_COMPARTMENT,
                 **named: Any) -> None:
        names = structure.parameter_names
        if len(values) > len(names):
            raise SpecificationError(f"{len(values)} parameters given; a {structure.label()} "
                                     f"model has {len(names)} ({', '.join(names)})")
        given = dict(zip(names, values, strict=False))
        twice = sorted(set(given) & set(named))
        if twice:
            raise SpecificationError(f"parameter(s) {', '.join(twice)} given twice")
        given |= named
        if set(given) != set(names):
            raise SpecificationError(f"a {structure.label()} model has the parameters "
                                     f"{', '.join(names)}; got {', '.join(given) or 'none'}")
        object.__setattr__(self, "structure", structure)
        object.__setattr__(self, "values", {p: given[p] for p in names})

    def __getattr__(self, name: str) -> Any:
        try:
            return object.__getattribute__(self, "values")[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PKParameters are immutable")

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __repr__(self) -> str:
        return f"PKParameters({self.structure.label()}: {', '.join(self.values)})"

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in order."""
        return tuple(self.values)

    @property
    def shape(self) -> tuple[int, ...]:
        """The broadcast shape of the arrays."""
        return np.broadcast_shapes(*(np.shape(v) for v in self.values.values()))

    def map(self, fn: Callable[[Any], Any]) -> PKParameters:
        """The parameters with ``fn`` applied to each array (same structure)."""
        return PKParameters(structure=self.structure, **{k: fn(v) for k, v in self.values.items()})

    def half_life_days(self) -> np.ndarray:
        """Terminal half-life, days: ``log 2`` over the slowest disposition rate constant."""
        terms = self.structure.impulse_response(
            {k: np.asarray(v, dtype=float) for k, v in self.values.items()})
        return np.log(2.0) / terms[-1][1]


def _as_blocks(blocks: Any) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(str(p) for p in block) for block in blocks)


@dataclass(frozen=True)
class PopulationModel:
    """A population PK model with known numbers (published, or a fit's posterior medians).

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
        Typical value of every structural parameter (``structure.parameter_names``) at the
        reference covariates, in its unit (clearances L/day, volumes L, ``ka`` 1/day).
    reference_covariates : dict
        The value of each covariate the effects use when a patient's is not given (for power,
        linear and exponential effects their reference, where ``typical`` applies).
    effects : tuple of CovariateEffect
        Covariate effects, each with its coefficient.
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
        Other names that :func:`~pkmodel.pk.published_models.get_model` accepts.
    structure : LinearCompartmental, default two compartments, infusions
        The structural model (the published infliximab models' by default).
    bsv_blocks : tuple of tuple of str, default ()
        Parameters whose etas are correlated (NONMEM's ``$OMEGA BLOCK``), in the structure's
        order; each of them has ``omega2``.
    correlations : dict, default {}
        ``corr_<p>_<q>`` of every pair of every block.
    covariate_definitions : tuple of Covariate, default ()
        Covariates beyond the library's that its effects use (a fit's declared covariates,
        :attr:`pkmodel.pk.population.PopulationSpec.covariate_definitions`).
    omega2_iov : dict, default {}
        Variance (log scale) of the inter-occasion random effect kappa per parameter that has
        inter-occasion variability: ``kappa_k ~ Normal(0, omega2_iov)`` independently in each
        occasion k (:mod:`pkmodel.pk.occasions` says what an occasion is). Empty: no IOV.
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
    structure: LinearCompartmental = TWO_COMPARTMENT
    bsv_blocks: tuple[tuple[str, ...], ...] = ()
    correlations: Mapping[str, float] = field(default_factory=dict)
    covariate_definitions: tuple[Covariate, ...] = ()
    omega2_iov: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariate_definitions", tuple(self.covariate_definitions))
        names = self.structure.parameter_names
        what = f"the PK model {self.name} ({self.structure.label()})"
        if set(self.typical) != set(names):
            raise SpecificationError(f"the PK model's typical values must be those of "
                                     f"{', '.join(names)}; {what} has {', '.join(self.typical)}")
        for key, label in (("omega2", "BSV"), ("omega2_iov", "IOV")):
            bad = sorted(set(getattr(self, key)) - set(names))
            if bad:
                raise SpecificationError(f"{what} has {label} ({key}) on {', '.join(bad)}, "
                                         f"not its parameter ({', '.join(names)})")
        for p, v in self.omega2_iov.items():
            if not (isinstance(v, int | float | np.floating) and np.isfinite(v) and v > 0):
                raise SpecificationError(f"{what}: omega2_iov[{p!r}] must be a positive "
                                         f"variance (log scale), not {v!r}; drop the parameter "
                                         "for no inter-occasion variability")
        registry = self.covariate_registry
        for effect in self.effects:
            if effect.parameter not in names or effect.covariate not in registry \
                    or effect.coefficient is None:
                raise SpecificationError(f"{what}: the covariate effect {effect!r} needs one of "
                                         f"its parameters, a known covariate and a coefficient")
        missing = [c for c in self.covariates_used if c not in self.reference_covariates]
        if missing:
            raise SpecificationError(f"{what} needs a reference value of {', '.join(missing)}")
        object.__setattr__(self, "bsv_blocks", _as_blocks(self.bsv_blocks))
        for block in self.bsv_blocks:
            if len(block) < 2 or any(p not in self.omega2 for p in block):
                raise SpecificationError(f"{what}: a BSV block needs two or more parameters "
                                         f"with omega2, not {', '.join(block)}")
        if set(self.correlations) != set(correlation_names(self.bsv_blocks)):
            raise SpecificationError(f"{what} needs the correlations "
                                     f"{', '.join(correlation_names(self.bsv_blocks)) or 'none'}"
                                     f" of its BSV blocks; got {', '.join(self.correlations)}")
        for block in self.bsv_blocks:
            correlation_cholesky(block, self.correlations)  # positive definite

    # ------------------------------------------------------------------ what it holds
    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The structural parameters, in order."""
        return self.structure.parameter_names

    @property
    def covariate_registry(self) -> CovariateRegistry:
        """The covariates this model's effects may name, with their units and ranges (the
        library's and its own :attr:`covariate_definitions`)."""
        return COVARIATES.with_(*self.covariate_definitions)

    @property
    def random_effects(self) -> tuple[str, ...]:
        """Parameters with between-subject variability, in the order of the eta axis."""
        return tuple(p for p in self.parameter_names if p in self.omega2)

    @property
    def occasion_effects(self) -> tuple[str, ...]:
        """Parameters with inter-occasion variability, in the order of the kappa axis."""
        return tuple(p for p in self.parameter_names if p in self.omega2_iov)

    @property
    def omega_iov_sd(self) -> np.ndarray:
        """SDs of the occasion effects kappa (log scale), in :attr:`occasion_effects` order."""
        return np.sqrt(np.array([float(self.omega2_iov[p]) for p in self.occasion_effects]))

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

    # ------------------------------------------------------------------ individuals
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
        registry = self.covariate_registry
        given = dict(covariates or {})
        unknown = sorted(set(given) - set(registry))
        if unknown:
            raise SpecificationError(
                f"unknown covariate(s) {', '.join(unknown)}; known: {', '.join(registry)}"
            )
        values: dict[str, np.ndarray] = {}
        for name, value in given.items():
            if value is not None:
                registry.check(name, value)
        for name in self.covariates_used:
            if name in given and given[name] is not None:
                values[name] = registry.check(name, given[name])
            else:
                values[name] = np.asarray(float(self.reference_covariates[name]))
        return values

    def individual_parameters(
        self,
        covariates: Mapping[str, object] | None = None,
        eta: np.ndarray | None = None,
        kappa: np.ndarray | None = None,
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
        kappa : numpy.ndarray, optional
            Occasion effects of one occasion, last axis in :attr:`occasion_effects` order,
            added to eta on the log scale. ``None``: the patient's parameters between occasions
            (kappa = 0).

        Returns
        -------
        PKParameters
            Of :attr:`structure`, in its units (clearances L/day, volumes L).

        Examples
        --------
        >>> from pkmodel.pk import FASANMADE_2009_UC
        >>> p = FASANMADE_2009_UC.individual_parameters({"weight_kg": 77, "albumin_g_dl": 4.1})
        >>> round(float(p.cl), 3)
        0.407
        """
        cov = self.covariate_values(covariates)
        log_factor: dict[str, Any] = {}  # of the covariate effects and the random effect
        for effect in self.effects:
            value = effect.log_factor(effect.design(cov[effect.covariate]), effect.coefficient)
            log_factor[effect.parameter] = log_factor.get(effect.parameter, 0.0) + value
        if eta is not None:
            eta = np.asarray(eta, dtype=float)
            if eta.shape[-1:] != (len(self.random_effects),):
                raise SpecificationError(
                    f"eta must have a last axis of length {len(self.random_effects)} "
                    f"({', '.join(self.random_effects)}) for model {self.name}; got shape "
                    f"{eta.shape}"
                )
            for i, p in enumerate(self.random_effects):
                log_factor[p] = log_factor.get(p, 0.0) + eta[..., i]
        if kappa is not None:
            kappa = np.asarray(kappa, dtype=float)
            if kappa.shape[-1:] != (len(self.occasion_effects),):
                raise SpecificationError(
                    f"kappa must have a last axis of length {len(self.occasion_effects)} "
                    f"({', '.join(self.occasion_effects) or 'no IOV'}) for model {self.name}; "
                    f"got shape {kappa.shape}")
            for i, p in enumerate(self.occasion_effects):
                log_factor[p] = log_factor.get(p, 0.0) + kappa[..., i]
        out = {p: float(self.typical[p]) * np.exp(log_factor[p]) if p in log_factor
               else np.asarray(float(self.typical[p])) for p in self.parameter_names}
        return PKParameters(structure=self.structure, **out)

    def eta_from_z(self, z: np.ndarray) -> np.ndarray:
        """Random effects from standard normals ``z`` (last axis in :attr:`random_effects`
        order): ``omega z``, correlated within each BSV block (``diag(omega) chol(R) z``)."""
        z = np.asarray(z, dtype=float)
        eta = z * self.omega_sd
        for block in self.bsv_blocks:
            index = [self.random_effects.index(p) for p in block]
            chol = correlation_cholesky(block, self.correlations)
            eta[..., index] = self.omega_sd[index] * (z[..., index] @ chol.T)
        return eta

    def sample_eta(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Random effects drawn from the population distribution, shape ``shape + (n_eta,)``."""
        return self.eta_from_z(rng.standard_normal(size=(*shape, len(self.random_effects))))

    def residual_sd(self, pred: np.ndarray) -> np.ndarray:
        """The residual SD (µg/mL) at predictions ``pred`` (µg/mL)."""
        return residual_sd("combined", pred, self.proportional_sd, self.additive_sd_ug_ml)

    # ------------------------------------------------------------------ plain JSON
    def to_dict(self) -> dict:
        """Every number and text of the model as plain JSON (:meth:`from_dict` reads it back
        exactly: floats survive JSON unchanged)."""
        return {"name": self.name, "title": self.title, "citation": self.citation,
                "source": self.source, "structure": self.structure.to_dict(),
                "typical": {k: float(v) for k, v in self.typical.items()},
                "reference_covariates": {k: float(v)
                                         for k, v in self.reference_covariates.items()},
                "effects": [e.to_dict() for e in self.effects],
                "omega2": {k: float(v) for k, v in self.omega2.items()},
                "bsv_blocks": [list(b) for b in self.bsv_blocks],
                "correlations": {k: float(v) for k, v in self.correlations.items()},
                "proportional_sd": float(self.proportional_sd),
                "additive_sd_ug_ml": float(self.additive_sd_ug_ml),
                "population": self.population, "cv_convention": self.cv_convention,
                "reported_cv_percent": {k: float(v) for k, v in self.reported_cv_percent.items()},
                "aliases": list(self.aliases),
                "omega2_iov": {k: float(v) for k, v in self.omega2_iov.items()}} | (
                    {} if not self.covariate_definitions else {"covariate_definitions": {
                        c.name: c.to_dict() for c in self.covariate_definitions}})

    @classmethod
    def from_dict(cls, value: Mapping) -> PopulationModel:
        """The model written by :meth:`to_dict`, or by pkmodel 0.4 (two compartments, effects
        with ``form`` ``power``, ``linear`` ``1 + c x`` or ``factor`` ``c^x``).

        Raises
        ------
        SpecificationError
            A key missing or unknown, a parameter or covariate that is not known, a form that
            is not known.
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
        raw = d.get("structure", TWO_COMPARTMENT.to_dict())
        if not isinstance(raw, Mapping) or set(raw) - {"compartments", "dosing"}:
            raise SpecificationError(f"the PK model's structure must be {{\"compartments\": n, "
                                     f"\"dosing\": route}}, not {raw!r}")
        structure = d["structure"] = linear_structure(**raw)
        declared = d.get("covariate_definitions", {})
        if not isinstance(declared, Mapping):
            raise SpecificationError("the PK model's covariate_definitions must map each "
                                     "covariate's name to its unit and range or levels")
        d["covariate_definitions"] = tuple(Covariate.declared(k, **dict(v))
                                           for k, v in declared.items())
        registry = COVARIATES.with_(*d["covariate_definitions"])
        known = {"reference_covariates": (registry, "covariates"),
                 "typical": (structure.parameter_names, "parameters"),
                 "omega2": (structure.parameter_names, "parameters"),
                 "omega2_iov": (structure.parameter_names, "parameters")}
        d["omega2_iov"] = d.get("omega2_iov", {})  # absent before pkmodel had IOV
        for key, (names_known, what) in known.items():
            if not isinstance(d[key], Mapping):
                raise SpecificationError(f"the PK model's {key} must map names to numbers, "
                                         f"not {type(d[key]).__name__}")
            bad = sorted(set(d[key]) - set(names_known))
            if bad:
                raise SpecificationError(f"the PK model's {key} names {bad}, which are not "
                                         f"{what} pkmodel knows ({', '.join(names_known)})")
        d["effects"] = tuple(_effect(e, structure, registry) for e in d["effects"])
        d["aliases"] = tuple(d.get("aliases", ()))
        d["bsv_blocks"] = tuple(tuple(b) for b in d.get("bsv_blocks", ()))
        return cls(**d)


def _effect(raw: Any, structure: LinearCompartmental,
            registry: CovariateRegistry = COVARIATES) -> CovariateEffect:
    """An effect of :meth:`PopulationModel.to_dict`, or of 0.4's layout (``form``: power
    ``(x / r)^c``, linear ``1 + c x``, factor ``c^x``, with ``x`` a 0/1 indicator for the last
    two)."""
    e = dict(raw) if isinstance(raw, Mapping) else {}
    if "form" in e:
        form = e.pop("form")
        e["effect"] = {"factor": "categorical"}.get(form, form)
        if form in ("linear", "factor"):
            e["reference"] = 0.0
        c = e.get("coefficient")
        if form == "factor" and isinstance(c, int | float) and c > 0:
            e["coefficient"] = float(np.log(c))
    if e.get("parameter") not in structure.parameter_names or e.get("covariate") \
            not in registry or e.get("effect") not in FORMS:
        raise SpecificationError(f"the PK model's covariate effect {raw!r} is not a known "
                                 f"parameter, covariate and form ({', '.join(FORMS)})")
    e["form"] = e.pop("effect")
    for key in ("levels", "coefficient"):
        if isinstance(e.get(key), list):
            e[key] = tuple(e[key])
    try:
        return CovariateEffect(**e)
    except TypeError as exc:
        raise SpecificationError(f"the PK model's covariate effect {raw!r}: {exc}") from None
