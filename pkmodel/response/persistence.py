"""Saving and loading fits as netCDF: the DataTree plus specification, design, hash, versions.

Nothing is pickled: the specification and design are JSON strings in the root attributes, the
cohort table is a group of plain arrays, and loading only reads arrays and JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.errors import FitFileError, SpecificationError
from pkmodel.files import atomic_path
from pkmodel.netcdf import CHECKSUM_ATTR as _CHECKSUM
from pkmodel.netcdf import ENGINE as _ENGINE
from pkmodel.netcdf import checksum as _checksum
from pkmodel.netcdf import package_versions as _versions
from pkmodel.netcdf import plain_strings as _plain
from pkmodel.response.predictor import MODEL_KIND

__all__ = ["FORMAT_VERSION", "load_fit", "save_fit"]

FORMAT_VERSION = 1
# Keys of RemissionFit.meta that prediction needs.
_DESIGN_KEYS = ["diseases", "encodings", "groups", "months", "patient_effect", "patient_ids",
                "strategies", "tl_range_ug_ml"]


def _cohort_dataset(frame: pd.DataFrame) -> xr.Dataset:
    data = {}
    for col in frame.columns:
        values = frame[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            data[col] = ("row", values.to_numpy(dtype=float))
        else:
            data[col] = ("row", np.array(["" if pd.isna(v) else str(v) for v in values],
                                         dtype=str))
    ds = xr.Dataset(data)
    ds.attrs["columns"] = json.dumps(list(frame.columns))
    ds.attrs["integer_columns"] = json.dumps(
        [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])])
    return ds


def _cohort_frame(ds: xr.Dataset) -> pd.DataFrame:
    columns = json.loads(ds.attrs["columns"])
    ints = set(json.loads(ds.attrs.get("integer_columns", "[]")))
    frame = pd.DataFrame({c: ds[c].values for c in columns})
    for c in columns:
        if frame[c].dtype.kind in "OSU" or str(frame[c].dtype).startswith("str"):
            frame[c] = [None if v == "" else str(v) for v in frame[c]]
            frame[c] = frame[c].astype(object)
        elif c in ints:
            frame[c] = frame[c].astype(np.int64)
    return frame


def save_fit(fit, path: str | os.PathLike, *, force: bool = False) -> None:
    """Write ``fit`` to ``path`` (netCDF); see :meth:`RemissionFit.save`."""
    children = {name: xr.DataTree(_plain(fit.tree[name].to_dataset()))
                for name in fit.tree.children}
    children["pkmodel_cohort"] = xr.DataTree(_cohort_dataset(fit.cohort_data))
    tree = xr.DataTree.from_dict({f"/{k}": v.to_dataset() for k, v in children.items()})
    tree.attrs.update({
        "pkmodel_format": FORMAT_VERSION,
        "pkmodel_model_kind": MODEL_KIND,
        "pkmodel_spec": json.dumps(fit.spec.to_dict(), sort_keys=True),
        "pkmodel_design": json.dumps(fit.meta, sort_keys=True),
        "pkmodel_data_hash": fit.data_hash,
        "pkmodel_random_seed": int(fit.random_seed),
        "pkmodel_cohort_name": fit.cohort_name,
        "pkmodel_cohort_notes": json.dumps(list(fit.cohort_notes)),
        "pkmodel_cohort_population": json.dumps(fit.cohort_population, sort_keys=True),
        "pkmodel_versions": json.dumps(_versions(), sort_keys=True),
    })
    tree.attrs[_CHECKSUM] = _checksum(tree)
    with atomic_path(path, force=force) as tmp:
        tree.to_netcdf(tmp, engine=_ENGINE)


def load_fit(path: str | os.PathLike, *, warn: bool = True):
    """Load a fit saved by :meth:`RemissionFit.save`.

    Parameters
    ----------
    path : str or path
        The netCDF file.
    warn : bool, default True
        Emit the convergence warning again if the fit failed its checks.

    Raises
    ------
    FitFileError
        Missing, truncated or corrupt file, not a pkmodel fit, or saved by an incompatible
        version of the specification.
    """
    from pkmodel.response.fit import RemissionFit
    from pkmodel.response.spec import RemissionModel

    path = Path(path)
    if not path.is_file():
        raise FitFileError(f"{path}: no such fit file")
    try:
        with xr.open_datatree(path, engine=_ENGINE) as opened:
            tree = opened.load()
    except Exception as exc:  # h5py/h5netcdf raise many types for a damaged file
        raise FitFileError(
            f"{path}: not a readable netCDF fit ({type(exc).__name__}); the file is truncated, "
            "corrupt or of another format. Fit again with `pkmodel fit`"
        ) from None
    attrs = tree.attrs
    if "pkmodel_format" not in attrs or "posterior" not in tree.children:
        raise FitFileError(f"{path}: a netCDF file, but not a fit saved by pkmodel")
    try:
        file_format = int(attrs["pkmodel_format"])
    except (TypeError, ValueError):
        raise FitFileError(f"{path}: unknown fit format {attrs['pkmodel_format']!r}; the file is "
                           "damaged or not written by pkmodel. Fit again") from None
    if file_format > FORMAT_VERSION:
        raise FitFileError(f"{path}: saved by a newer pkmodel (format {file_format}); "
                           "upgrade pkmodel to read it")
    # Fits saved before the model kind was recorded are remission fits, the only kind then.
    kind = str(attrs.get("pkmodel_model_kind", MODEL_KIND))
    if kind != MODEL_KIND:
        raise FitFileError(f"{path}: a fit of another kind of model ({kind!r}); this pkmodel "
                           f"reads {MODEL_KIND!r} fits with load_fit")
    # Fits saved before the checksum existed have none; every later one is verified.
    if _CHECKSUM in attrs and str(attrs[_CHECKSUM]) != _checksum(tree):
        raise FitFileError(f"{path}: the fit file is corrupt (its contents do not match the "
                           "checksum written with it); restore a good copy or fit again")
    incompatible = (f"{path}: the fit cannot be read by this version of pkmodel ({{}}); fit again "
                    "with `pkmodel fit`")
    try:
        spec = RemissionModel.from_dict(json.loads(attrs["pkmodel_spec"]))
        meta = json.loads(attrs["pkmodel_design"])
        missing = sorted(set(_DESIGN_KEYS) - set(meta)) if isinstance(meta, dict) else _DESIGN_KEYS
        if missing:
            raise ValueError(f"design lacks {', '.join(missing)}")
        cohort = _cohort_frame(tree["pkmodel_cohort"].to_dataset())
        notes = tuple(json.loads(attrs.get("pkmodel_cohort_notes", "[]")))
        population = json.loads(attrs.get("pkmodel_cohort_population", "{}"))
        if not isinstance(population, dict):
            raise ValueError("the cohort's population record is not a mapping")
        data_hash = str(attrs["pkmodel_data_hash"])
        random_seed = int(attrs["pkmodel_random_seed"])
    except KeyError as exc:
        raise FitFileError(incompatible.format(f"{exc} is missing")) from None
    except (ValueError, TypeError, SpecificationError) as exc:
        raise FitFileError(incompatible.format(f"specification: {exc}")) from None
    groups = {k: tree[k].to_dataset() for k in tree.children if k != "pkmodel_cohort"}
    core = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
    try:
        fit = RemissionFit(spec=spec, tree=core, meta=meta, cohort_data=cohort,
                           data_hash=data_hash, random_seed=random_seed,
                           cohort_name=str(attrs.get("pkmodel_cohort_name", "")),
                           cohort_notes=notes, cohort_population=population, warn=False)
        # A curve at two TLs touches every posterior variable and design level prediction uses.
        low, high = meta["tl_range_ug_ml"]
        fit.remission_curve(tl=[float(low), float(high)])
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise FitFileError(incompatible.format(
            f"posterior or design does not match the specification: {exc}")) from None
    # Again with the warning asked for (diagnostics are kept, not recomputed).
    return dataclasses.replace(fit, warn=warn, _diagnostics=fit.diagnostics())
