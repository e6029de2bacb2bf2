"""A published population model as an informative prior for a local fit (NONMEM's ``$PRIOR``).

A published model (:data:`pkmodel.pk.MODELS`) and a specification speak one vocabulary
(:mod:`pkmodel.pk.models`): the same structural parameters, covariate effects of the same forms.
:func:`published_prior` centres the specification's quantities on the published numbers where
they match by name:

* the log typical value of each structural parameter: centred on the published value at the
  specification's reference covariates (the published covariate model evaluated there), SD
  ``typical_log_sd``;
* the BSV of each parameter with BSV in both: ``log(omega)`` centred on the published
  ``log(sqrt(omega2))``, SD ``omega_log_sd``;
* each estimated covariate effect of the specification that the published model also has (same
  parameter, same covariate): its ``theta`` centred on the published coefficient, the same number
  where the forms agree (a power exponent whatever its reference), or, for a 0/1 covariate
  written in another form, the published ratio at 1 against 0 in the specification's form, SD
  ``theta_sd``.

The library models give no standard errors, so these SDs are stated defaults (0.2 on the log
typical values, about 20 %; 0.3 on ``log(omega)``; 0.2 on an exponent or log ratio) that the user
may change. The prior enters the log density as ``weight * log Normal(x; mean, sd)`` on top of
the specification's own prior (a power prior): its SD is in effect ``sd / sqrt(weight)``.

What cannot be mapped is refused naming the parameter: a structural parameter the published
model lacks (``v`` of a one-compartment model, ``ka``), or a covariate effect whose form cannot
express the published one (a published power effect against an indicator). What is not carried
over is said in :attr:`InformativePrior.notes`: the residual error (assay- and site-specific), a
published effect the specification leaves out (the typical value is then the published one at
the published reference of that covariate), an effect or BSV of the specification the published
model lacks (it keeps the specification's own prior).

This module reads a specification but does not build one, so that the specification's reader
can map a ``[prior]`` table with it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pkmodel.errors import SpecificationError
from pkmodel.pk.covariate_effects import CovariateEffect, CovariateTerm
from pkmodel.pk.models import PopulationModel
from pkmodel.pk.numbers import finite, positive
from pkmodel.pk.published_models import get_model

if TYPE_CHECKING:
    from pkmodel.pk.population.spec import PopulationSpec

__all__ = ["DEFAULT_OMEGA_LOG_SD", "DEFAULT_THETA_SD", "DEFAULT_TYPICAL_LOG_SD",
           "InformativePrior", "published_prior", "with_prior"]

#: Default SD (at weight 1) of the prior of each log typical value: about 20 %.
DEFAULT_TYPICAL_LOG_SD = 0.2
#: Default SD (at weight 1) of the prior of each ``log(omega)``.
DEFAULT_OMEGA_LOG_SD = 0.3
#: Default SD (at weight 1) of the prior of each covariate ``theta`` (exponent or log ratio).
DEFAULT_THETA_SD = 0.2


@dataclass(frozen=True)
class InformativePrior:
    """An informative prior taken from a published model, with its weight (NONMEM's ``$PRIOR``).

    Each informed quantity ``x`` (``log_tv_<p>``: the log typical value; ``omega_<p>``: entered
    as ``log(omega)``; ``theta_*``: as it is) gets, on top of the specification's own prior,
    ``weight * log Normal(x; mean, sd)`` in the log density: a power prior. For a log typical
    value this multiplies the specification's prior by a normal of SD ``sd / sqrt(weight)``;
    ``weight`` 1 counts the published model at its stated uncertainty, larger values as more
    certain, and ``weight -> 0`` leaves the specification's own prior. Built by
    :func:`published_prior`, which says what it could map and what not.

    Parameters
    ----------
    model : str
        The published model's name (:data:`pkmodel.pk.MODELS`).
    weight : float
        The weight, > 0.
    terms : mapping of str to (float, float)
        Informed quantity -> ``(mean, sd)`` at weight 1, on the scale said above.
    notes : tuple of str
        What was mapped how, and what was left out.
    """

    model: str
    weight: float
    terms: Mapping[str, tuple[float, float]]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", positive(self.weight, "the prior weight"))
        terms = {}
        for name, pair in dict(self.terms).items():
            if not re.fullmatch(r"(log_tv|omega|theta)_\w+", str(name)):
                raise SpecificationError(f"prior term {name!r} is not log_tv_*, omega_* or "
                                         "theta_*")
            mean, sd = pair
            terms[str(name)] = (finite(mean, f"the prior mean of {name}"),
                                positive(sd, f"the prior sd of {name}"))
        if not terms:
            raise SpecificationError(f"the published model {self.model} informs no parameter "
                                     "of the specification")
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))

    def to_dict(self) -> dict:
        """Plain-JSON description (the ``[prior]`` table as pkmodel writes it)."""
        return {"model": self.model, "weight": self.weight,
                "terms": {k: list(v) for k, v in self.terms.items()}, "notes": list(self.notes)}


def _thetas(term: CovariateTerm, effect: CovariateEffect,
            published: PopulationModel) -> tuple[float, ...]:
    """The published coefficient in the form of the specification's term (one per name)."""
    where = (f"the {term.form} effect of {term.covariate} on {term.parameter} cannot take "
             f"{published.name}'s {effect.form} effect of it")
    coefficient = effect.coefficient
    if effect.form == "power":
        if term.form != "power":
            raise SpecificationError(f"{where} (use effect = \"power\")")
        return (float(coefficient),)
    same = (term.form, term.reference, term.levels, term.below, term.above) == (
        effect.form, effect.reference, effect.levels, effect.below, effect.above)
    if same:
        return tuple(coefficient) if isinstance(coefficient, tuple) else (float(coefficient),)
    if not published.covariate_registry[effect.covariate].binary:
        raise SpecificationError(f"{where} (use the published form: effect = "
                                 f"\"{effect.form}\", reference = {effect.reference:g})")
    # a 0/1 covariate: the published ratio of the parameter at 1 against 0
    ratio = float(effect.multiplier(1.0) / effect.multiplier(0.0))
    if term.form == "categorical":
        if term.reference != 0.0 or term.levels != (1.0,):
            raise SpecificationError(f"{where}: a categorical term with reference level 0 and "
                                     "levels [1] can")
        return (math.log(ratio),)
    if term.form == "exponential" and term.reference in (0.0, 1.0):
        return (math.log(ratio),)
    if term.form == "linear":  # 1 + theta (x - r) = (1 + (ratio - 1) x) / (1 + (ratio - 1) r)
        slope = ratio - 1.0
        return (slope / (1.0 + slope * float(term.reference)),)
    raise SpecificationError(f"{where} (use a categorical term)")


def published_prior(spec: PopulationSpec, model: str | PopulationModel, weight: float = 1.0,
                    *, typical_log_sd: float = DEFAULT_TYPICAL_LOG_SD,
                    omega_log_sd: float = DEFAULT_OMEGA_LOG_SD,
                    theta_sd: float = DEFAULT_THETA_SD) -> InformativePrior:
    """The informative prior that the published ``model`` gives the specification ``spec``.

    Parameters
    ----------
    spec : PopulationSpec
        The local model; its structural parameters must all be the published model's (``cl``,
        ``v1``, ``q``, ``v2`` for the library's).
    model : str or PopulationModel
        A library model (``fasanmade2009``...; :func:`pkmodel.pk.get_model`) or any
        :class:`~pkmodel.pk.PopulationModel`.
    weight : float, default 1
        How much the published model counts (> 0): the prior SDs are divided by
        ``sqrt(weight)``.
    typical_log_sd, omega_log_sd, theta_sd : float
        The prior SDs at weight 1 of the log typical values, of ``log(omega)`` and of the
        covariate thetas (the library models state no standard errors).

    Returns
    -------
    InformativePrior
        With ``notes`` saying what was left out.

    Raises
    ------
    SpecificationError
        Naming the parameter or covariate effect that cannot be mapped, or a bad option.

    Examples
    --------
    >>> from pkmodel.pk.population import Parameter, PopulationSpec
    >>> spec = PopulationSpec(parameters={p: Parameter(1.0, bsv=p == "cl")
    ...                                   for p in ("cl", "v1", "q", "v2")})
    >>> prior = published_prior(spec, "fasanmade2009", weight=2)
    >>> round(prior.terms["log_tv_cl"][0], 3)  # log(0.407 L/day)
    -0.899
    """
    published = get_model(model)
    sds = {name: positive(value, name) for name, value in (
        ("typical_log_sd", typical_log_sd), ("omega_log_sd", omega_log_sd),
        ("theta_sd", theta_sd))}
    missing = [p for p in spec.parameter_names if p not in published.parameter_names]
    if missing:
        raise SpecificationError(
            f"parameter {', '.join(missing)} of the specification has no counterpart in "
            f"{published.name}, a {published.structure.label()} model "
            f"({', '.join(published.parameter_names)}): a published model can be the prior of "
            "a specification with its parameters only")
    terms: dict[str, tuple[float, float]] = {}
    notes = [f"residual error not taken from {published.name} (assay- and site-specific): "
             "the specification's own prior"]
    spec_terms = {(t.parameter, t.covariate): t for t in spec.covariates}
    for p in spec.parameter_names:
        typical = float(published.typical[p])
        for effect in (e for e in published.effects if e.parameter == p):
            term = spec_terms.get((p, effect.covariate))
            if term is None:
                ref = published.reference_covariates[effect.covariate]
                notes.append(f"{published.name}'s effect of {effect.covariate} on {p} is not in "
                             f"the specification: tv_{p} is centred on the published value at "
                             f"{effect.covariate} = {ref:g}")
                continue
            if term.form == "indicator":
                raise SpecificationError(
                    f"the indicator effect of {term.covariate} on {p} cannot take "
                    f"{published.name}'s {effect.form} effect of it; use a power or "
                    "categorical term, or drop --prior")
            factor = float(effect.multiplier(float(term.reference)))
            if not factor > 0:
                raise SpecificationError(f"{published.name}'s effect of {term.covariate} on {p} "
                                         f"is not positive at the reference {term.reference:g}")
            typical *= factor
            if term.estimated:
                for name, theta in zip(term.names, _thetas(term, effect, published),
                                       strict=True):
                    terms[name] = (theta, sds["theta_sd"])
            else:
                notes.append(f"the exponent of {term.covariate} on {p} is fixed at "
                             f"{term.exponent:g} ({published.name}: {effect.coefficient:g})")
        if spec.parameters[p].fixed:
            notes.append(f"tv_{p} is fixed at {spec.parameters[p].typical:g} "
                         f"{spec.parameters[p].unit} by the specification ({published.name}: "
                         f"{typical:g} {spec.structure.unit(p)})")
        else:
            terms[f"log_tv_{p}"] = (math.log(typical), sds["typical_log_sd"])
        if spec.parameters[p].bsv:
            if p in published.omega2:
                terms[f"omega_{p}"] = (0.5 * math.log(published.omega2[p]), sds["omega_log_sd"])
            else:
                notes.append(f"{published.name} has no BSV on {p}: omega_{p} keeps the "
                             "specification's prior")
        elif p in published.omega2:
            notes.append(f"{published.name}'s BSV on {p} is left out (bsv = false)")
    published_pairs = {(e.parameter, e.covariate) for e in published.effects}
    for key, term in spec_terms.items():
        if key not in published_pairs and term.estimated:
            notes.append(f"{published.name} has no effect of {term.covariate} on "
                         f"{term.parameter}: {', '.join(term.names)} keeps the specification's "
                         "prior")
    return InformativePrior(published.name, weight, terms, tuple(notes))


def with_prior(spec: PopulationSpec, model: str | PopulationModel, weight: float = 1.0,
               **options: float) -> PopulationSpec:
    """``spec`` with the informative prior of :func:`published_prior` (``options`` are its
    ``typical_log_sd``, ``omega_log_sd``, ``theta_sd``)."""
    return dataclasses.replace(spec, prior=published_prior(spec, model, weight, **options))
