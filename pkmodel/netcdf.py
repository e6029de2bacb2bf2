"""What every saved fit shares: the netCDF engine, the checksum, the library versions.

Fits are written as netCDF (a DataTree of plain arrays plus JSON strings in the root attributes);
nothing is pickled. netCDF has no checksum of its own, so :func:`checksum` hashes every group's
arrays and the root ``pkmodel_*`` attributes, and a loader compares it with the one saved.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import xarray as xr

__all__ = ["CHECKSUM_ATTR", "ENGINE", "VERSIONED", "checksum", "package_versions",
           "plain_strings"]

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
