"""A published population model as an informative prior for a local fit (NONMEM's ``$PRIOR``).

:func:`published_prior` maps a library model (:data:`pkmodel.pk.MODELS`) onto a specification,
parameter by parameter and covariate effect by covariate effect, where they match by name:

* the log typical value of each structural parameter: centred on the published value at the
  specification's reference covariates (the published covariate model evaluated there), SD
  ``typical_log_sd``;
* the BSV of each parameter with BSV in both: ``log(omega)`` centred on the published
  ``log(sqrt(omega2))``, SD ``omega_log_sd``;
* each estimated covariate effect of the specification that the published model also has (same
  parameter, same covariate): its ``theta`` centred on the published coefficient translated into
  the specification's form (power exponent as it is; a linear or factor effect of a 0/1
  covariate as ``log`` of its ratio for categorical and exponential terms), SD ``theta_sd``.

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
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.pk.models import PARAMETERS, CovariateEffect, PopulationModel, get_model
from pkmodel.pk.population.spec import CovariateTerm, InformativePrior, PopulationSpec

__all__ = ["DEFAULT_OMEGA_LOG_SD", "DEFAULT_THETA_SD", "DEFAULT_TYPICAL_LOG_SD",
           "published_prior", "with_prior"]

#: Default SD (at weight 1) of the prior of each log typical value: about 20 %.
DEFAULT_TYPICAL_LOG_SD = 0.2
#: Default SD (at weight 1) of the prior of each ``log(omega)``.
DEFAULT_OMEGA_LOG_SD = 0.3
#: Default SD (at weight 1) of the prior of each covariate ``theta`` (exponent or log ratio).
DEFAULT_THETA_SD = 0.2


def _theta(term: CovariateTerm, effect: CovariateEffect, model: str) -> float:
    """The published coefficient in the form of the specification's term."""
    where = (f"the {term.effect} effect of {term.covariate} on {term.parameter} cannot take "
             f"{model}'s {effect.form} effect of it")
    if effect.form == "power":
        if term.effect != "power":
            raise SpecificationError(f"{where} (use effect = \"power\")")
        return float(effect.coefficient)
    # linear 1 + c x, factor c ** x: both on a 0/1 covariate in the library models
    ratio = 1.0 + effect.coefficient if effect.form == "linear" else effect.coefficient
    if term.effect == "categorical":
        if term.reference != 0.0 or term.levels != (1.0,):
            raise SpecificationError(f"{where}: a categorical term with reference level 0 and "
                                     "levels [1] can")
        return math.log(ratio)
    if term.effect == "exponential" and term.reference in (0.0, 1.0):
        return math.log(ratio)
    if term.effect == "linear":  # 1 + theta (x - r) = (1 + (ratio - 1) x) / (1 + (ratio - 1) r)
        slope = ratio - 1.0
        return slope / (1.0 + slope * float(term.reference))
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
        ``v1``, ``q``, ``v2``).
    model : str or PopulationModel
        A library model (``fasanmade2009``...; :func:`pkmodel.pk.get_model`).
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
    for name, value in (("typical_log_sd", typical_log_sd), ("omega_log_sd", omega_log_sd),
                        ("theta_sd", theta_sd)):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value <= 0:
            raise SpecificationError(f"{name} must be a positive number, not {value!r}")
    missing = [p for p in spec.parameter_names if p not in PARAMETERS]
    if missing:
        raise SpecificationError(
            f"parameter {', '.join(missing)} of the specification has no counterpart in "
            f"{published.name}, a two-compartment model ({', '.join(PARAMETERS)}): a published "
            "model can be the prior of a two-compartment specification only")
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
            if term.effect == "indicator":
                raise SpecificationError(
                    f"the indicator effect of {term.covariate} on {p} cannot take "
                    f"{published.name}'s {effect.form} effect of it; use a power or "
                    "categorical term, or drop --prior")
            factor = float(effect.multiplier(np.asarray(float(term.reference))))
            if not factor > 0:
                raise SpecificationError(f"{published.name}'s effect of {term.covariate} on {p} "
                                         f"is not positive at the reference {term.reference:g}")
            typical *= factor
            if term.estimated:
                theta = _theta(term, effect, published.name)
                terms[term.names[0]] = (theta, float(theta_sd))
            else:
                notes.append(f"the exponent of {term.covariate} on {p} is fixed at "
                             f"{term.exponent:g} ({published.name}: {effect.coefficient:g})")
        if spec.parameters[p].fixed:
            notes.append(f"tv_{p} is fixed at {spec.parameters[p].typical:g} by the "
                         f"specification ({published.name}: {typical:g})")
        else:
            terms[f"log_tv_{p}"] = (math.log(typical), float(typical_log_sd))
        if spec.parameters[p].bsv:
            if p in published.omega2:
                terms[f"omega_{p}"] = (0.5 * math.log(published.omega2[p]), float(omega_log_sd))
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
