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

__all__ = ["resolve_model"]


def resolve_model(value: str | os.PathLike | PopulationModel | Mapping) -> PopulationModel:
    """The PK model ``value`` stands for.

    Parameters
    ----------
    value : str, path, PopulationModel or mapping
        A library model's name or alias (:func:`~pkmodel.pk.published_models.get_model`); a
        population fit's file (``POPFIT.nc``, written by ``pkmodel pk fit``), turned into a model
        by :meth:`~pkmodel.pk.population.PopulationFit.to_population_model` and named after the
        file's stem; a :class:`PopulationModel`, returned as it is; or a model's
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
