"""Exposure of virtual patients: steady-state troughs under the baseline and each regimen.

A patient's PK covariates come from the population's columns through
:func:`pkmodel.pk.covariate_registry.from_cohort` (each covariate of
:data:`pkmodel.pk.covariate_registry.COVARIATES` names its cohort column and the conversion to
its unit); every virtual patient is ATI-negative.
One draw of the between-subject random effects per patient, from fixed blocks of patients
(:func:`pkmodel.scenarios.populations.block_normals`), gives the individual parameters, so a
patient's troughs do not depend on the chunking. A PK model with inter-occasion variability
(both Fasanmade 2011 models) draws, from a stream of its own, a kappa for each of the
:data:`~pkmodel.pk.simulation.IOV_STEADY_STATE_INTERVALS` dosing intervals its steady-state
trough follows (:func:`~pkmodel.pk.simulation.steady_state_trough_occasions`): the baseline's
intervals from one stream, the intensified regimens' later intervals from another (independent
of the baseline's, as in :mod:`pkmodel.pk.gain`; the same for every regimen, so regimens are
compared on the same draws); the draws of a model without IOV are those it always had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from pkmodel.errors import SpecificationError
from pkmodel.pk.covariate_registry import (
    COVARIATES,
    check_covariate,
    cohort_columns,
    from_cohort,
)
from pkmodel.pk.models import PopulationModel
from pkmodel.pk.occasions import check_iov_structure
from pkmodel.pk.published_models import get_model
from pkmodel.pk.resolver import resolve_model
from pkmodel.pk.simulation import (
    IOV_STEADY_STATE_INTERVALS,
    steady_state_trough,
    steady_state_trough_occasions,
)
from pkmodel.scenarios.populations import (
    STREAM_PK,
    STREAM_PK_OCCASIONS,
    STREAM_PK_OCCASIONS_AFTER,
    block_normals,
)

if TYPE_CHECKING:
    from pkmodel.scenarios.engine import Plan

__all__ = ["PK_COLUMNS", "check_ranges", "needed_columns", "resolve_pk_models", "troughs"]

#: Covariate name -> the population column it comes from (:func:`cohort_columns`).
PK_COLUMNS = cohort_columns()
# Width of the block of PK random-effect normals per virtual patient: at least 3 (so that the
# draws of the two Fasanmade models, and every figure made with them, stay as they were), wider
# for a model with more random effects.
_MIN_ETA_WIDTH = 3


def resolve_pk_models(pk_model: str | PopulationModel) -> tuple[tuple[PopulationModel, ...], bool]:
    """The PK models of ``pk_model`` and whether they are chosen by disease.

    Parameters
    ----------
    pk_model : str, path or PopulationModel
        ``"by_disease"`` (Fasanmade 2011 for CD, Fasanmade 2009 for UC), one model of
        :data:`pkmodel.pk.MODELS`, or a population fit's file ``POPFIT.nc``
        (:func:`pkmodel.pk.resolve_model`).

    Returns
    -------
    tuple
        ``(models, by_disease)``: the CD and UC models and ``True``, or the one model and
        ``False``.
    """
    if isinstance(pk_model, str) and pk_model.strip().lower() == "by_disease":
        return (get_model("fasanmade2011"), get_model("fasanmade2009")), True
    return (resolve_model(pk_model),), False


def needed_columns(pk_models: Sequence[PopulationModel]) -> dict[str, str]:
    """Population column -> why the PK models need it (weight, and each covariate they use)."""
    needed = {"weight_kg": "the PK models dose by weight"}
    for model in pk_models:
        own = [c for c in model.covariates_used if c not in COVARIATES]
        if own:  # a fit's declared covariate (a neonatal WGT): no population column holds it
            raise SpecificationError(
                f"the PK model {model.name} uses {', '.join(own)}, which the virtual "
                "populations do not hold (they draw the library's covariates: weight, "
                "albumin, sex, immunomodulator); use a PK model of those covariates")
        for cov in model.covariates_used:
            if cov in PK_COLUMNS:
                needed[PK_COLUMNS[cov]] = f"PK model {model.name} uses {cov}"
    return needed


def check_ranges(ds: xr.Dataset) -> None:
    """Check the plausible range of every non-binary PK covariate the population holds.

    Raises
    ------
    SpecificationError
        From :func:`pkmodel.pk.covariate_registry.check_covariate`, for a value out of range.
    """
    ranged = {c: ds[c].values for name, c in PK_COLUMNS.items()
              if c in ds and not COVARIATES[name].binary}
    for name, values in from_cohort(ranged).items():
        check_covariate(name, values)


def troughs(plan: Plan, cols: Mapping[str, np.ndarray],
            start: int) -> tuple[np.ndarray, np.ndarray]:
    """Steady-state troughs of patients ``start, start + 1, ...``, µg/mL.

    Parameters
    ----------
    plan : Plan
        The simulation's PK models, regimens, seed and category levels.
    cols : mapping
        The chunk's population columns (categories as their codes).
    start : int
        Index of the chunk's first patient in the population.

    Returns
    -------
    tuple of numpy.ndarray
        The baseline trough under ``plan.baseline``, shape ``(n,)`` (the observed
        ``baseline_tl`` where the population gives one), and the trough under each of
        ``plan.regimens``, shape ``(R, n)`` (scaled by observed / predicted baseline where
        ``baseline_tl`` is given).
    """
    n = len(cols["weight_kg"])
    width = max(_MIN_ETA_WIDTH, *(len(m.random_effects) for m in plan.pk_models))
    z = block_normals(plan.entropy, STREAM_PK, start, start + n, width)
    cohort = {c: plan.decoded(c, cols[c]).to_numpy() for c in PK_COLUMNS.values() if c in cols}
    values = {"ati": np.zeros(n), **from_cohort(cohort)}  # every virtual patient ATI-negative
    regimens = (plan.baseline, *plan.regimens)
    out = np.empty((len(plan.pk_models), len(regimens), n))
    iov_width = max((len(m.occasion_effects) for m in plan.pk_models), default=0)
    # with IOV: the baseline's intervals and, independently, the regimens' (shared by them)
    z_occ = [block_normals(plan.entropy, stream, start, start + n,
                           IOV_STEADY_STATE_INTERVALS * iov_width)
             for stream in (STREAM_PK_OCCASIONS, STREAM_PK_OCCASIONS_AFTER)] if iov_width else []
    for m, model in enumerate(plan.pk_models):
        k = len(model.random_effects)
        cov = {c: values[c] for c in model.covariates_used}
        eta = model.eta_from_z(z[:, :k])
        if model.occasion_effects:  # a kappa per dosing interval followed
            check_iov_structure(model)
            j = len(model.occasion_effects)
            params = [model.individual_parameters(
                {c: v[:, None] for c, v in cov.items()}, eta[:, None, :],
                normals.reshape(n, IOV_STEADY_STATE_INTERVALS, iov_width)[..., :j]
                * model.omega_iov_sd) for normals in z_occ]
            trough = steady_state_trough_occasions
        else:
            params = [model.individual_parameters(cov, eta)] * 2
            trough = steady_state_trough
        for r, reg in enumerate(regimens):
            out[m, r] = trough(params[r > 0], reg.dose_mg_kg * cols["weight_kg"],
                               reg.interval_days, reg.infusion_days)
    if plan.by_disease:  # model 0 for CD, model 1 for UC
        out = np.where(cols["disease"] == 1, out[1], out[0])
    else:
        out = out[0]
    base, after = out[0], out[1:]
    if "baseline_tl" in cols:  # observed: scale the predicted post-switch troughs to it
        after = after * (cols["baseline_tl"] / base)
        base = cols["baseline_tl"]
    return base, after
