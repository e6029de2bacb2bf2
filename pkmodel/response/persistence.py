"""Saving and loading fits as netCDF: the DataTree plus specification, design, hash, versions.

Nothing is pickled: the specification and design are JSON strings in the root attributes, the
cohort table is a group of plain arrays, and loading only reads arrays and JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.errors import FitFileError
from pkmodel.files import atomic_path
from pkmodel.netcdf import CHECKSUM_ATTR as _CHECKSUM
from pkmodel.netcdf import ENGINE as _ENGINE
from pkmodel.netcdf import checksum as _checksum
from pkmodel.netcdf import open_fit_file
from pkmodel.netcdf import package_versions as _versions
from pkmodel.netcdf import plain_strings as _plain

__all__ = ["FORMAT_VERSION", "SavedFit", "read_fit_file", "save_fit"]

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
        "pkmodel_model_kind": fit.model_kind,
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


@dataclasses.dataclass(frozen=True)
class SavedFit:
    """What a fit file holds, read and checked, before a fitted model is assembled from it.

    Attributes
    ----------
    kind : str
        The kind of model (``pkmodel_model_kind``).
    spec : dict
        The specification as saved (``RemissionModel.to_dict``).
    meta : dict
        The design metadata.
    tree : xarray.DataTree
        The posterior and its companion groups.
    cohort : pandas.DataFrame
        The fitted cohort table.
    attrs : dict
        The remaining root attributes (data hash, seed, cohort name, notes, population).
    """

    kind: str
    spec: dict
    meta: dict
    tree: xr.DataTree
    cohort: pd.DataFrame
    attrs: dict


def incompatible(path, reason: str) -> FitFileError:
    """The error for a fit file this version of pkmodel cannot use."""
    return FitFileError(f"{path}: the fit cannot be read by this version of pkmodel ({reason}); "
                        "fit again with `pkmodel fit`")


def read_fit_file(path: str | os.PathLike, kinds: tuple[str, ...]) -> SavedFit:
    """Read and verify a fit file written by :func:`save_fit`.

    Parameters
    ----------
    path : str or path
        The netCDF file.
    kinds : tuple of str
        The model kinds the caller can assemble.

    Raises
    ------
    FitFileError
        Missing, truncated or corrupt file, not a pkmodel fit, a fit of another kind, or saved
        by a newer format.
    """
    tree = open_fit_file(path, kinds, FORMAT_VERSION, "load_fit", unrecorded=kinds[0])
    attrs = tree.attrs
    kind = str(attrs.get("pkmodel_model_kind", kinds[0]))
    try:
        spec = json.loads(attrs["pkmodel_spec"])
        meta = json.loads(attrs["pkmodel_design"])
        missing = sorted(set(_DESIGN_KEYS) - set(meta)) if isinstance(meta, dict) else _DESIGN_KEYS
        if missing:
            raise ValueError(f"design lacks {', '.join(missing)}")
        cohort = _cohort_frame(tree["pkmodel_cohort"].to_dataset())
        rest = {"cohort_name": str(attrs.get("pkmodel_cohort_name", "")),
                "cohort_notes": tuple(json.loads(attrs.get("pkmodel_cohort_notes", "[]"))),
                "cohort_population": json.loads(attrs.get("pkmodel_cohort_population", "{}")),
                "data_hash": str(attrs["pkmodel_data_hash"]),
                "random_seed": int(attrs["pkmodel_random_seed"])}
        if not isinstance(rest["cohort_population"], dict):
            raise ValueError("the cohort's population record is not a mapping")
    except KeyError as exc:
        raise incompatible(path, f"{exc} is missing") from None
    except (ValueError, TypeError) as exc:
        raise incompatible(path, f"specification: {exc}") from None
    groups = {k: tree[k].to_dataset() for k in tree.children if k != "pkmodel_cohort"}
    core = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
    return SavedFit(kind=kind, spec=spec, meta=meta, tree=core, cohort=cohort, attrs=rest)
