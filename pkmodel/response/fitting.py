"""Fitting the remission model: the cohort's checks, the design, the compiled model, the sampling.

:func:`fit_remission` is the body of :meth:`RemissionModel.fit`: it checks that the cohort can be
fitted (warning where the data leave the slope or a month's remission probability to the
prior), builds the design and chooses the structure (:meth:`RemissionModel._design`), gets the
compiled sampler model from the cache (:func:`pkmodel.response.compiled.sampler_model`), samples
through :func:`pkmodel.sampling.sample_nuts` (the one sampling run of every fit) and returns the
:class:`~pkmodel.response.fit.RemissionFit`.
"""

from __future__ import annotations

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
    from pkmodel.response.compiled import LOGLIK_NAME, sampler_model

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
    if spec.integrate_tl:
        from pkmodel.response.compiled import integrated_sampler_model

        def compiled():
            return integrated_sampler_model(
                design, spec.priors, patient_effect=options["patient_effect"],
                structure=structure).nutpie_model()
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
    meta = {**design.metadata(), "patient_effect": options["patient_effect"],
            "structure": structure.to_dict()}
    fit = RemissionFit(spec=spec, tree=tree, meta=meta, cohort_data=cohort.data,
                       data_hash=cohort.content_hash, random_seed=settings.random_seed,
                       cohort_name=cohort.name, cohort_notes=tuple(cohort.notes),
                       cohort_population={"exclusions": dict(cohort.exclusions),
                                          "dropped": dict(cohort.dropped)})
    fit.warn_if_unconverged(stacklevel=3)
    return fit
