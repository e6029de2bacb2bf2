"""Loading a saved fit: the file read by :mod:`~pkmodel.response.persistence`, the model assembled.

Reading and verifying the file knows nothing of the model classes; this module turns what was
read into a :class:`~pkmodel.response.fit.RemissionFit`, for each kind of model pkmodel saves
(:data:`~pkmodel.response.predictor.MODEL_KINDS`).
"""

from __future__ import annotations

import os

from pkmodel.errors import SpecificationError
from pkmodel.response.fit import RemissionFit
from pkmodel.response.persistence import incompatible, read_fit_file
from pkmodel.response.predictor import MODEL_KINDS
from pkmodel.response.spec import RemissionModel

__all__ = ["load_fit"]


def load_fit(path: str | os.PathLike, *, warn: bool = True) -> RemissionFit:
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
    saved = read_fit_file(path, MODEL_KINDS)
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
        fit.diagnostics()
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise incompatible(path, "posterior or design does not match the specification: "
                                 f"{exc}") from None
    if warn:
        fit.warn_if_unconverged(stacklevel=2)
    return fit
