"""What every saved fit shares: the netCDF engine, the checksum, the library versions.

Fits are written as netCDF (a DataTree of plain arrays plus JSON strings in the root attributes);
nothing is pickled. netCDF has no checksum of its own, so :func:`checksum` hashes every group's
arrays and the root ``pkmodel_*`` attributes, and a loader compares it with the one saved.
"""

from __future__ import annotations

import hashlib
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import xarray as xr

from pkmodel.errors import FitFileError

__all__ = ["CHECKSUM_ATTR", "ENGINE", "VERSIONED", "checksum", "open_fit_file",
           "package_versions", "plain_strings"]

#: The netCDF engine of every saved fit (ArviZ 1 needs one named).
ENGINE = "h5netcdf"
#: The root attribute that holds the checksum.
CHECKSUM_ATTR = "pkmodel_checksum"
#: The libraries whose versions a saved fit records.
VERSIONED = ("pkmodel", "pymc", "pytensor", "arviz", "nutpie", "numpy", "xarray", "pandas")


def package_versions() -> dict[str, str]:
    """The installed version of each of :data:`VERSIONED` (``"not installed"`` if absent)."""
    out = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def plain_strings(ds: xr.Dataset) -> xr.Dataset:
    """Object arrays (e.g. nutpie's divergence messages, None-filled) as fixed strings."""
    out = ds.copy()
    for name, da in ds.data_vars.items():
        if da.dtype == object:
            out[name] = da.copy(data=np.array(["" if v is None else str(v)
                                               for v in da.values.ravel()]).reshape(da.shape))
    return out


def checksum(tree: xr.DataTree) -> str:
    """SHA-256 over every group's arrays and the root ``pkmodel_*`` attributes.

    netCDF has no checksum of its own, so a flipped byte in a data block would otherwise load as
    a silently different posterior. Values are hashed in a canonical form (numbers as float64,
    text as UTF-8) so that the dtype changes of a netCDF round trip do not matter.
    """
    digest = hashlib.sha256()
    for key in sorted(k for k in tree.attrs if k.startswith("pkmodel_") and k != CHECKSUM_ATTR):
        digest.update(f"attr {key}={tree.attrs[key]}\n".encode())
    for group in sorted(tree.children):
        ds = tree[group].to_dataset()
        for name in sorted(map(str, ds.variables)):
            values = np.asarray(ds.variables[name].values)
            digest.update(f"var {group}/{name} {ds.variables[name].dims} {values.shape}\n".encode())
            if values.dtype.kind in "biuf":
                canonical = values.astype(np.float64)
                digest.update(np.where(np.isnan(canonical), np.nan, canonical).tobytes())
            else:
                digest.update("\x1f".join(map(str, values.ravel())).encode("utf-8", "replace"))
    return digest.hexdigest()


def open_fit_file(path: str | os.PathLike, kinds: tuple[str, ...], format_version: int,
                  loader: str, unrecorded: str = "remission_by_baseline_tl") -> xr.DataTree:
    """Read a saved fit and verify what every kind shares: format, kind and checksum.

    Parameters
    ----------
    path : str or path
        The netCDF file.
    kinds : tuple of str
        The model kinds the caller reads (``pkmodel_model_kind``).
    format_version : int
        The newest file format the caller reads.
    loader : str
        How the caller is called, for the message naming another kind (``load_fit``).
    unrecorded : str
        The kind of files that record none (remission fits saved before kinds were recorded).

    Raises
    ------
    FitFileError
        Missing, truncated or corrupt file, not a pkmodel fit, a fit of another kind, or saved
        by a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise FitFileError(f"{path}: no such fit file")
    try:
        with xr.open_datatree(path, engine=ENGINE) as opened:
            tree = opened.load()
    except Exception as exc:  # h5py/h5netcdf raise many types for a damaged file
        raise FitFileError(
            f"{path}: not a readable netCDF fit ({type(exc).__name__}); the file is truncated, "
            "corrupt or of another format. Fit again"
        ) from None
    attrs = tree.attrs
    if "pkmodel_format" not in attrs or "posterior" not in tree.children:
        raise FitFileError(f"{path}: a netCDF file, but not a fit saved by pkmodel")
    try:
        file_format = int(attrs["pkmodel_format"])
    except (TypeError, ValueError):
        raise FitFileError(f"{path}: unknown fit format {attrs['pkmodel_format']!r}; the file is "
                           "damaged or not written by pkmodel. Fit again") from None
    if file_format > format_version:
        raise FitFileError(f"{path}: saved by a newer pkmodel (format {file_format}); "
                           "upgrade pkmodel to read it")
    kind = str(attrs.get("pkmodel_model_kind", unrecorded))
    if kind not in kinds:
        raise FitFileError(f"{path}: a fit of another kind of model ({kind!r}); {loader} reads "
                           f"{', '.join(map(repr, kinds))} fits")
    # Fits saved before the checksum existed have none: they load, with a warning, as does a
    # file whose checksum was removed; every other one is verified.
    if CHECKSUM_ATTR not in attrs:
        import warnings

        from pkmodel.errors import PkmodelWarning

        warnings.warn(f"{path}: the fit file has no checksum, so damage to it cannot be "
                      "detected (saved by an old pkmodel, or the checksum was removed); save it "
                      "again, or fit again, to add one", PkmodelWarning, stacklevel=3)
    elif str(attrs[CHECKSUM_ATTR]) != checksum(tree):
        raise FitFileError(f"{path}: the fit file is corrupt (its contents do not match the "
                           "checksum written with it); restore a good copy or fit again")
    return tree
