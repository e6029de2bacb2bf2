"""What a remission fit's file holds besides what every fit's does: the cohort table, read back.

The file is written and verified by :mod:`pkmodel.netcdf` (the one writer and reader of every
fit; :meth:`RemissionFit.save` supplies the groups and attributes). Nothing is pickled: the
specification and design are JSON strings in the root attributes, the cohort table is a group of
plain arrays (:func:`cohort_dataset`), and reading only reads arrays and JSON
(:func:`read_saved_fit`).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.errors import FitFileError
from pkmodel.netcdf import KIND_ATTR, UNRECORDED_KIND

__all__ = ["SavedFit", "cohort_dataset", "read_saved_fit"]

# Keys of RemissionFit.meta that prediction needs.
_DESIGN_KEYS = ["diseases", "encodings", "groups", "months", "patient_effect", "patient_ids",
                "strategies", "tl_range_ug_ml"]


def cohort_dataset(frame: pd.DataFrame) -> xr.Dataset:
    """The cohort table as a group of plain arrays (text as strings, missing text as "")."""
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


def read_saved_fit(tree: xr.DataTree, path: str | os.PathLike) -> SavedFit:
    """What a remission fit's file holds, from its tree as :func:`pkmodel.netcdf.open_fit_file`
    read and verified it.

    Raises
    ------
    FitFileError
        Metadata missing or unreadable (naming what), for this version of pkmodel.
    """
    attrs = tree.attrs
    kind = str(attrs.get(KIND_ATTR, UNRECORDED_KIND))
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
