"""Every saved fit's file: the one writer and the one reader, the checksum, the versions.

Fits are written as netCDF (a DataTree of plain arrays plus JSON strings in the root attributes);
nothing is pickled. :func:`write_fit_file` writes every kind of fit: the groups and ``pkmodel_*``
attributes its model supplies, plus what every file records (the file format, the kind of model,
the library versions and a checksum), atomically. :func:`open_fit_file` reads any of them back
and verifies what they share. netCDF has no checksum of its own, so :func:`checksum` hashes every
group's arrays and the root ``pkmodel_*`` attributes, and the reader compares it with the one
saved.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pkmodel.errors import FitFileError
from pkmodel.files import atomic_path

__all__ = ["CHECKSUM_ATTR", "ENGINE", "FORMAT_VERSION", "KIND_ATTR", "UNRECORDED_KIND",
           "VERSIONED", "checksum", "open_fit_file", "package_versions", "plain_strings",
           "versions_written", "write_fit_file"]

#: The netCDF engine of every saved fit (ArviZ 1 needs one named).
ENGINE = "h5netcdf"
#: The root attribute that holds the checksum.
CHECKSUM_ATTR = "pkmodel_checksum"
#: The libraries whose versions a saved fit records.
VERSIONED = ("pkmodel", "pymc", "pytensor", "arviz", "nutpie", "numpy", "xarray", "pandas")
#: The file format of every saved fit (``pkmodel_format``): what the groups and attributes
#: that every kind shares mean. A reader refuses a newer one.
FORMAT_VERSION = 1
#: The root attribute that holds the kind of model fitted.
KIND_ATTR = "pkmodel_model_kind"
#: The kind of a file that records none: remission fits saved by pkmodel 0.2.
UNRECORDED_KIND = "remission_by_baseline_tl"


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


def versions_written(attrs: Mapping[str, Any]) -> dict[str, str]:
    """The library versions a saved fit recorded (``pkmodel_versions``), empty if unreadable."""
    try:
        recorded = json.loads(str(attrs.get("pkmodel_versions", "{}")))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}


def _written_by(attrs: Mapping[str, Any]) -> str:
    return f"pkmodel {versions_written(attrs).get('pkmodel', '(version not recorded)')}"


def write_fit_file(path: str | os.PathLike, groups: Mapping[str, xr.Dataset],
                   attrs: Mapping[str, Any], *, kind: str, force: bool = False) -> None:
    """Write a fit to ``path`` as netCDF, atomically: the one writer of every kind of fit.

    Parameters
    ----------
    path : str or path
        The file to write; an existing one only with ``force``.
    groups : mapping
        The groups of the file (``posterior``, ``sample_stats``, the model's data, ...), in
        order. Object arrays (nutpie's divergence messages) are written as fixed strings.
    attrs : mapping
        The model's root attributes, every name starting with ``pkmodel_`` (the specification,
        the seed, ... as numbers or JSON strings).
    kind : str
        The kind of model, recorded as :data:`KIND_ATTR`.
    force : bool, default False
        Replace an existing file.

    The file also records :data:`FORMAT_VERSION`, the library versions
    (:func:`package_versions`) and the :func:`checksum` of everything else.
    """
    loose = sorted(k for k in attrs if not str(k).startswith("pkmodel_"))
    if loose:
        raise ValueError(f"fit file attributes must start with 'pkmodel_': {loose}")
    tree = xr.DataTree.from_dict({f"/{name}": plain_strings(ds) for name, ds in groups.items()})
    tree.attrs.update({"pkmodel_format": FORMAT_VERSION, KIND_ATTR: str(kind), **attrs,
                       "pkmodel_versions": json.dumps(package_versions(), sort_keys=True)})
    tree.attrs[CHECKSUM_ATTR] = checksum(tree)
    with atomic_path(path, force=force) as tmp:
        tree.to_netcdf(tmp, engine=ENGINE)


def open_fit_file(path: str | os.PathLike, kinds: tuple[str, ...], *, loader: str,
                  other_kind: str | None = None) -> xr.DataTree:
    """Read a saved fit and verify what every kind shares: format, kind and checksum.

    Parameters
    ----------
    path : str or path
        The netCDF file.
    kinds : tuple of str
        The model kinds the caller reads (:data:`KIND_ATTR`; a file that records none is of
        :data:`UNRECORDED_KIND`).
    loader : str
        How the caller is called, for the message naming a kind it does not read
        (``load_fit``).
    other_kind : str, optional
        What to do with a file of a kind the caller does not read (default: upgrade pkmodel).

    Raises
    ------
    FitFileError
        Missing, truncated or corrupt file, not a pkmodel fit, a fit of a kind the caller does
        not read or saved in a newer format (both naming the version of pkmodel that wrote it).
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
    if file_format > FORMAT_VERSION:
        raise FitFileError(f"{path}: saved by a newer pkmodel (format {file_format}, written by "
                           f"{_written_by(attrs)}; this one reads format {FORMAT_VERSION} and "
                           f"older); upgrade pkmodel to read it")
    kind = str(attrs.get(KIND_ATTR, UNRECORDED_KIND))
    if kind not in kinds:
        raise FitFileError(
            f"{path}: a fit of another kind of model ({kind!r}, written by "
            f"{_written_by(attrs)}); {loader} reads {', '.join(map(repr, kinds))} fits; "
            + (other_kind or "a newer pkmodel may read it: upgrade pkmodel"))
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
