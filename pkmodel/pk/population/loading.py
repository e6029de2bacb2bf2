"""Loading a saved population PK fit: the file read by :mod:`pkmodel.netcdf`, the fit assembled.

:func:`pkmodel.load` reaches :func:`fit_from_tree` through :data:`pkmodel.fits.FIT_KINDS`;
:func:`load_population_fit` reads population PK fits only.
"""

from __future__ import annotations

import json
import os

import numpy as np
import xarray as xr

from pkmodel.errors import FitFileError, SpecificationError
from pkmodel.netcdf import open_fit_file
from pkmodel.pk.population.data import OBS_COVARIATE_PREFIX, PopulationData
from pkmodel.pk.population.fit import MODEL_KIND, PREDICTIVE_GROUPS, PopulationFit
from pkmodel.pk.population.spec import PARAMETER_UNITS, PopulationSpec

__all__ = ["fit_from_tree", "load_population_fit"]


def load_population_fit(path: str | os.PathLike, *, warn: bool = True) -> PopulationFit:
    """Load a population PK fit saved by :meth:`PopulationFit.save`.

    :func:`pkmodel.load` loads every kind of saved fit (this one refuses a remission fit).

    Parameters
    ----------
    path : str or path
        The netCDF file.
    warn : bool, default True
        Emit the convergence warning again if the fit failed its checks.

    Raises
    ------
    FitFileError
        Missing, truncated or corrupt file (checksum), not a pkmodel fit, a fit of another kind,
        or written by a newer format.
    """
    tree = open_fit_file(path, (MODEL_KIND,), loader="load_population_fit",
                         other_kind="pkmodel.load reads every kind")
    return fit_from_tree(tree, path, warn=warn)


def fit_from_tree(tree: xr.DataTree, path: str | os.PathLike, *,
                  warn: bool = True) -> PopulationFit:
    """The population fit of a file :func:`pkmodel.netcdf.open_fit_file` read and verified.

    Raises
    ------
    FitFileError
        Contents this version of pkmodel cannot use.
    """
    attrs = tree.attrs
    try:
        spec = PopulationSpec.from_dict(_with_units(json.loads(attrs["pkmodel_spec"])))
        subjects = tree["pkmodel_subjects"].to_dataset()
        obs = tree["pkmodel_observations"].to_dataset()
        doses = tree["pkmodel_doses"].to_dataset()
        ids = [str(v) for v in subjects["ID"].values]
        index = {sid: i for i, sid in enumerate(ids)}
        data = PopulationData(
            str(attrs.get("pkmodel_source", "")), tuple(ids),
            {c: subjects[c].values.astype(float) for c in subjects.data_vars if c != "ID"},
            np.array([index[str(v)] for v in obs["ID"].values], dtype=int),
            obs["time_days"].values.astype(float), obs["value_ug_ml"].values.astype(float),
            obs["cens"].values.astype(int),
            np.array([index[str(v)] for v in doses["ID"].values], dtype=int),
            doses["time_days"].values.astype(float), doses["amount_mg"].values.astype(float),
            doses["duration_days"].values.astype(float),
            tuple(json.loads(attrs.get("pkmodel_notes", "[]"))),
            # NONMEM events (routes, steady states, resets), where the data had them
            dose_route=(doses["route"].values.astype(str) if "route" in doses else None),
            dose_ss_interval_days=(doses["ss_interval_days"].values.astype(float)
                                   if "ss_interval_days" in doses else None),
            dose_course=doses["course"].values.astype(int) if "course" in doses else None,
            obs_course=obs["course"].values.astype(int) if "course" in obs else None,
            obs_occasion=obs["occasion"].values.astype(int) if "occasion" in obs else None,
            obs_covariates={c.removeprefix(OBS_COVARIATE_PREFIX): obs[c].values.astype(float)
                            for c in obs.data_vars if c.startswith(OBS_COVARIATE_PREFIX)})
        core = xr.DataTree.from_dict({f"/{name}": tree[name].to_dataset() for name in (
            "posterior", "sample_stats", *PREDICTIVE_GROUPS) if name in tree.children})
        fit = PopulationFit(spec=spec, data=data, tree=core,
                            random_seed=int(attrs["pkmodel_random_seed"]), warn=False,
                            design_notes=tuple(json.loads(attrs.get("pkmodel_design_notes",
                                                                    "[]"))))
        fit.diagnostics  # noqa: B018  (computed here: a variable it needs may be missing)
    except (KeyError, ValueError, TypeError, SpecificationError) as exc:
        raise FitFileError(f"{path}: the fit cannot be read by this version of pkmodel "
                           f"({type(exc).__name__}: {exc}); fit again") from None
    if warn:
        fit.warn_if_unconverged(stacklevel=3)  # the caller of load_population_fit or load
    return fit


def _with_units(raw: dict) -> dict:
    """A saved specification with every parameter's unit: pkmodel 0.4 left it out of the file
    when the specification did, and then meant the model's own units (L/day, 1/day) whatever
    the dataset's time unit; from 0.5 on a missing unit is the dataset's time unit, so a file
    always writes it."""
    params = raw.get("parameters", {})
    if isinstance(params, dict):
        for name, entry in params.items():
            if isinstance(entry, dict) and "unit" not in entry and name in PARAMETER_UNITS:
                entry["unit"] = PARAMETER_UNITS[name]
    return raw
