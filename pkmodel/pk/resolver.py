"""The one resolver of a PK model from what a user gives: a name, a population fit's file, a model.

:func:`resolve_model` is what the command line, the dosing scenarios and the exposure-driven
remission model call wherever a PK model is asked for. It sits above what it resolves: the
published models (:mod:`pkmodel.pk.published_models`) and population fits
(:mod:`pkmodel.pk.population`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pkmodel.errors import SpecificationError
from pkmodel.pk.models import PopulationModel
from pkmodel.pk.published_models import get_model

__all__ = ["resolve_model", "resolve_population_draws"]


def resolve_model(value: str | os.PathLike | PopulationModel | Mapping) -> PopulationModel:
    """The PK model ``value`` stands for.

    Parameters
    ----------
    value : str, path, PopulationModel, PopulationFit or mapping
        A library model's name or alias (:func:`~pkmodel.pk.published_models.get_model`); a
        population fit's file (``POPFIT.nc``, written by ``pkmodel pk fit``), turned into a model
        by :meth:`~pkmodel.pk.population.PopulationFit.to_population_model` and named after the
        file's stem; a population fit itself (its posterior medians, named ``popfit``); a
        :class:`PopulationModel`, returned as it is; or a model's
        :meth:`PopulationModel.to_dict` (as a saved remission fit records a local model).

    Raises
    ------
    SpecificationError
        An unknown name, a bad definition, or a fit that cannot serve as a PK model (saying
        why).
    FitFileError
        A population fit's file that is missing, corrupt or of another kind.
    """
    if isinstance(value, PopulationModel):
        return value
    if _is_population_fit(value):
        return value.to_population_model()
    if isinstance(value, Mapping):
        return PopulationModel.from_dict(value)
    if isinstance(value, os.PathLike) or str(value).strip().lower().endswith(".nc"):
        from pkmodel.pk.population.loading import load_population_fit  # PyMC-free, but not light

        path = Path(value)
        try:
            return load_population_fit(path, warn=False).to_population_model(name=path.stem)
        except SpecificationError as exc:
            raise SpecificationError(f"{path}: this population fit cannot be used as a PK "
                                     f"model: {exc}") from None
    return get_model(value)


def _is_population_fit(value) -> bool:
    """Whether ``value`` is a fitted population PK model (without importing its module)."""
    return callable(getattr(value, "population_model_draws", None))


def _is_path(value) -> bool:
    return isinstance(value, os.PathLike) or (isinstance(value, str)
                                              and value.strip().lower().endswith(".nc"))


def resolve_population_draws(value, n: int, *,
                             random_seed: int | None = None) -> tuple[list[PopulationModel], str]:
    """``n`` draws of the population PK model ``value`` stands for, from its uncertainty.

    Parameters
    ----------
    value : str, path, PopulationFit or PopulationModel
        A population fit (its file ``POPFIT.nc`` or the fit): ``n`` joint draws of its
        posterior (:meth:`~pkmodel.pk.population.PopulationFit.population_model_draws`). A
        library model (its name, alias or constant): ``n`` draws from the sampling distribution
        of its estimates, with the published relative SEs where known and stated defaults
        otherwise (:func:`~pkmodel.pk.published_uncertainty.published_model_draws`).
    n : int
        Number of draws.
    random_seed : int, optional
        The one seed.

    Returns
    -------
    draws : list of PopulationModel
    source : str
        Where the uncertainty comes from, in words (recorded with a fit that uses them).

    Raises
    ------
    SpecificationError
        A model that is neither a library model nor a fit (its numbers carry no uncertainty),
        or a bad ``n``.
    """
    from pkmodel.pk.published_models import MODELS
    from pkmodel.pk.published_uncertainty import published_model_draws

    fit, stem = value, "popfit"
    if _is_path(value):
        from pkmodel.pk.population.loading import load_population_fit

        stem = Path(value).stem
        fit = load_population_fit(Path(value), warn=False)
    if _is_population_fit(fit):
        return (fit.population_model_draws(n, name=stem, random_seed=random_seed),
                f"{n} joint draws of the posterior of the population fit {stem}")
    model = resolve_model(value)
    if MODELS.get(model.name) != model:
        raise SpecificationError(
            f"the PK model {model.name} is a set of numbers without their uncertainty: give the "
            "population fit it came from (its POPFIT.nc or the PopulationFit), a library model, "
            "or the draws themselves (population_draws=[model, ...])")
    return (published_model_draws(model, n, random_seed=random_seed),
            f"{n} draws from the sampling distribution of the estimates of {model.name} "
            "(published RSEs where known, stated defaults otherwise: "
            "pkmodel.pk.published_uncertainty)")
