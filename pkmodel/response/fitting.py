"""Fitting the remission model: the cohort's checks, the design, the compiled model, the sampling.

:func:`fit_remission` is the body of :meth:`RemissionModel.fit`: it checks that the cohort can be
fitted (warning where the data leave the slope or a month's remission probability to the
prior), builds the design and chooses the structure (:meth:`RemissionModel._design`), gets the
compiled sampler model from the cache (:func:`pkmodel.response.compiled.sampler_model`), samples
through :func:`pkmodel.sampling.sample_nuts` (the one sampling run of every fit) and returns the
:class:`~pkmodel.response.fit.RemissionFit`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from typing import TYPE_CHECKING

import pandas as pd
import xarray as xr

from pkmodel.data import Cohort, read_cohort
from pkmodel.data.separation import (
    constant_outcome_message,
    constant_outcomes,
    separation_message,
    tl_separation,
)
from pkmodel.errors import (
    CohortError,
    ConstantOutcomeWarning,
    SeparationWarning,
    SpecificationError,
)
from pkmodel.response.fit import RemissionFit
from pkmodel.sampling import SamplerSettings, sample_nuts

if TYPE_CHECKING:
    from pkmodel.response.spec import RemissionModel

__all__ = ["MIN_PATIENTS", "as_cohort", "fit_remission"]

logger = logging.getLogger("pkmodel")

#: Fewest patients a fit accepts: with one, every patient-level term (the patient effect, the
#: TL slope) is confounded with the intercept and the sampler's model has arrays of the wrong
#: shape; from two the model is defined, and the fit's notes say what the data cannot inform.
MIN_PATIENTS = 2

#: What to check when the sampler cannot run the remission model.
FAILURE_HINT = ("check the data for extreme values and the priors for very wide or narrow "
                "scales")


def as_cohort(cohort) -> Cohort:
    """Accept a Cohort, a path or a DataFrame."""
    if isinstance(cohort, Cohort):
        return cohort
    if isinstance(cohort, str | os.PathLike | pd.DataFrame):
        return read_cohort(cohort)
    raise SpecificationError(f"expected a Cohort, a path or a DataFrame, not "
                             f"{type(cohort).__name__}")


def fit_remission(spec: RemissionModel, cohort: Cohort,
                  settings: SamplerSettings) -> RemissionFit:
    """Fit ``spec`` to ``cohort`` with ``settings``: see :meth:`RemissionModel.fit`.

    Warnings point at the caller of :meth:`RemissionModel.fit`.
    """
    n_patients = int(cohort.data["patient_id"].nunique())
    if n_patients < MIN_PATIENTS:
        raise CohortError(
            f"the cohort has {n_patients} patient(s) after the exclusions; the remission "
            f"model needs at least {MIN_PATIENTS}", source=cohort.source,
            fix="fit a larger cohort, or relax the exclusions (--keep-ati-positive, "
                "--min-tl 0)")
    separated = tl_separation(cohort)
    if separated:
        warnings.warn(separation_message(separated), SeparationWarning, stacklevel=3)
    constant = constant_outcomes(cohort)
    if constant:
        warnings.warn(constant_outcome_message(constant), ConstantOutcomeWarning, stacklevel=3)
    design, options = spec._design(cohort)
    structure = options["structure"]
    for note in structure.notes:
        logger.info("%s", note)
    meta = {**design.metadata(), "patient_effect": options["patient_effect"],
            "structure": structure.to_dict()}
    if spec.exposure is not None and spec.exposure.propagated:
        tree, meta["exposure"] = _pooled_fit(spec, cohort, settings, design, options)
    else:
        tree = _sample(spec, design, options, settings)
    fit = RemissionFit(spec=spec, tree=tree, meta=meta, cohort_data=cohort.data,
                       data_hash=cohort.content_hash, random_seed=settings.random_seed,
                       cohort_name=cohort.name, cohort_notes=tuple(cohort.notes),
                       cohort_population={"exclusions": dict(cohort.exclusions),
                                          "dropped": dict(cohort.dropped)})
    fit.warn_if_unconverged(stacklevel=3)
    return fit


def _sample(spec: RemissionModel, design, options: dict, settings: SamplerSettings):
    """One sampling run of ``spec``'s model of ``design``: the posterior tree, with the
    pointwise log-likelihood in its own group."""
    from pkmodel.response.compiled import LOGLIK_NAME, sampler_model

    if spec.integrate_tl:
        from pkmodel.response.compiled import integrated_sampler_model

        def compiled():
            return integrated_sampler_model(
                design, spec.priors, patient_effect=options["patient_effect"],
                structure=options["structure"]).nutpie_model()
    else:
        def compiled():
            return sampler_model(design, spec.priors, **options).nutpie_model()
    tree = sample_nuts(compiled, settings, failure_hint=FAILURE_HINT)
    if spec.integrate_tl:
        from pkmodel.response.integrated import labelled

        for name in ("posterior", "sample_stats"):
            tree[name] = labelled(tree[name].to_dataset(), design)
    posterior = tree["posterior"].to_dataset()
    tree["log_likelihood"] = xr.Dataset({"remission": posterior[LOGLIK_NAME]})
    tree["posterior"] = posterior.drop_vars(LOGLIK_NAME)
    return tree


def _pooled_fit(spec: RemissionModel, cohort: Cohort, settings: SamplerSettings, design,
                options: dict) -> tuple[xr.DataTree, dict]:
    """The fits of the K draws of the PK population pooled (:mod:`pkmodel.response.pooling`),
    and the exposure record of the fit: the central design's, with the draws' gains' range and
    ``population_uncertainty`` (K, the chains of each, the source)."""
    from pkmodel.response.pooling import component_seed, pool_trees

    exposure = spec.exposure
    trees, low, high = [], [], []
    for k, component in enumerate(exposure.components()):
        logger.info("population PK draw %d of %d", k + 1, len(exposure.population_draws))
        one = dataclasses.replace(spec, exposure=component)
        d_k, o_k = one._design(cohort)
        if o_k["structure"].to_dict() != options["structure"].to_dict():
            raise SpecificationError(  # the structure depends on the cohort, not on the gains
                "the population PK draws gave the remission model different structures; fit "
                "without population_draws and report this")
        seed = component_seed(settings.random_seed, k)
        trees.append(_sample(one, d_k, o_k, dataclasses.replace(settings, random_seed=seed)))
        low.append(float(d_k.log_gain.min()))
        high.append(float(d_k.log_gain.max()))
    record = dict(design.exposure)
    record["log_gain_range"] = [min(low + record["log_gain_range"][:1]),
                                max(high + record["log_gain_range"][1:])]
    record["population_uncertainty"] = {
        "n_draws": len(trees), "chains_per_draw": settings.chains,
        "source": exposure.population_source,
        "draws": [m.name for m in exposure.population_draws],
        "models": [m.to_dict() for m in exposure.population_draws]}
    return pool_trees(trees), record
