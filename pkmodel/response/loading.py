"""Loading a saved remission fit: the file read by :mod:`pkmodel.netcdf`, the model assembled.

Reading and verifying the file knows nothing of the model classes; this module turns what was
read (:func:`~pkmodel.response.persistence.read_saved_fit`) into a
:class:`~pkmodel.response.fit.RemissionFit`, for each kind of remission model pkmodel saves
(:data:`~pkmodel.response.predictor.MODEL_KINDS`). :func:`pkmodel.load` reaches
:func:`fit_from_tree` through :data:`pkmodel.fits.FIT_KINDS`.
"""

from __future__ import annotations

import os

import xarray as xr

from pkmodel.errors import SpecificationError
from pkmodel.netcdf import open_fit_file
from pkmodel.response.fit import RemissionFit
from pkmodel.response.persistence import incompatible, read_saved_fit
from pkmodel.response.predictor import MODEL_KINDS
from pkmodel.response.spec import RemissionModel

__all__ = ["fit_from_tree", "load_fit"]


def load_fit(path: str | os.PathLike, *, warn: bool = True) -> RemissionFit:
    """Load a remission fit saved by :meth:`RemissionFit.save`.

    :func:`pkmodel.load` loads every kind of saved fit (this one refuses a population PK fit).

    Parameters
    ----------
    path : str or path
        The netCDF file.
    warn : bool, default True
        Emit the convergence warning again if the fit failed its checks.

    Raises
    ------
    FitFileError
        Missing, truncated or corrupt file, not a pkmodel fit, not a remission fit, or saved by
        an incompatible version of the specification.
    """
    tree = open_fit_file(path, MODEL_KINDS, loader="load_fit",
                         other_kind="pkmodel.load reads every kind")
    return fit_from_tree(tree, path, warn=warn)


def fit_from_tree(tree: xr.DataTree, path: str | os.PathLike, *,
                  warn: bool = True) -> RemissionFit:
    """The remission fit of a file :func:`pkmodel.netcdf.open_fit_file` read and verified.

    Raises
    ------
    FitFileError
        Metadata or posterior this version of pkmodel cannot use.
    """
    saved = read_saved_fit(tree, path)
    try:
        spec = RemissionModel.from_dict(saved.spec)
    except (KeyError, ValueError, TypeError, SpecificationError) as exc:
        raise incompatible(path, f"specification: {exc}") from None
    if spec.model_kind != saved.kind:
        raise incompatible(path, f"the file says {saved.kind!r}, its specification is of a "
                                 f"{spec.model_kind!r} model")
    try:
        fit = RemissionFit(spec=spec, tree=saved.tree, meta=saved.meta,
                           cohort_data=saved.cohort, **saved.attrs)
        # A curve at two TLs touches every posterior variable and design level prediction uses.
        low, high = saved.meta["tl_range_ug_ml"]
        fit.remission_curve(tl=[float(low), float(high)])
        fit.diagnostics  # noqa: B018  (computed here: a variable it needs may be missing)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise incompatible(path, "posterior or design does not match the specification: "
                                 f"{exc}") from None
    if warn:
        fit.warn_if_unconverged(stacklevel=3)  # the caller of load_fit or pkmodel.load
    return fit
