"""Compiled sampler models, and their disk cache, for every model pkmodel samples.

nutpie samples a PyMC model through two C callbacks that Numba compiles: the log density with
its gradient, and the "expand" function that turns a point of the unconstrained space into the
stored draws (constrained parameters and deterministics). Building them costs seconds to tens
of seconds in every new process: PyTensor's graph rewrites and Numba dispatch, then nutpie's
``numba.cfunc`` wrappers, which Numba cannot cache because they close over generated code. That
was most of the time of a default fit.

:func:`load_or_compile` compiles a model with nutpie's supported entry point,
``nutpie.compile_pymc_model`` (the caller's function), and keeps the compiled machine code on
disk. The two callbacks are compiled once per key, then their object code is written to the
cache directory, once a separate process has loaded it and reproduced the log density at the
initial point, with a manifest (JSON: names, shapes, dims, coordinates and the initial point
of the parameters, the layout of the model's data inputs, the library versions, with a SHA-256
checksum of each code file); no Python object is pickled. A later fit of the same model in any
process loads it through Numba's own loader (the mechanism behind ``numba.njit(cache=True)``)
without importing PyMC, and samples with the same code, so the same seed gives the same
posterior whether the model came from the cache or not.

Two kinds of model use it:

* the remission model (:mod:`pkmodel.response.compiled`) is compiled with its data as
  constants, so its key covers the data (its ``integrate_tl`` form reads them as inputs, as
  the population PK model does, and is keyed by the cohort's shape);
* the population PK model (:mod:`pkmodel.pk.population.fit`) reads its data as inputs
  (``pm.Data``: nutpie passes their addresses and shapes to the compiled code in one record,
  its ``user_data``), so one entry serves every dataset of the same specification and number of
  subjects: :meth:`SamplerModel.with_data` points the model at new arrays and a new initial
  point.

The cache stands on private APIs of Numba and nutpie, every one of them in
:mod:`pkmodel.nutpie_internals` (nothing else in pkmodel touches them). It is therefore
contained:

* it is used only with the versions of nutpie, Numba, llvmlite and PyTensor it was written and
  tested for (:data:`CACHE_VERSIONS`, narrower than the ranges ``pyproject.toml`` accepts); with
  any other the fit compiles through the supported path;
* any failure of the private path (an import or attribute error, internals that moved, a
  damaged entry) is logged as one warning line on the ``pkmodel`` logger and the fit compiles
  through the supported path, which samples the same code with the same initial point;
* ``PKMODEL_CACHE_DIR=off`` calls no private API at all;
* the most recently used :func:`max_entries` entries are kept (16, or
  ``$PKMODEL_CACHE_ENTRIES``), the others deleted after each write, as nutpie's Stan cache does.

The directory is ``$PKMODEL_CACHE_DIR``, else the platform's user cache folder for pkmodel
(``platformdirs.user_cache_dir("pkmodel")``: ``$XDG_CACHE_HOME/pkmodel`` or
``~/.cache/pkmodel`` on Linux, ``~/Library/Caches/pkmodel`` on macOS, ``%LOCALAPPDATA%`` on
Windows) with ``models`` inside. Deleting the directory is always safe. Numba writes the arrays
a model was compiled with into its object code, so an entry holds the data it was compiled on
(for a population model, the first dataset of its shape), like the user's own files beside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from pkmodel import nutpie_internals as internals
from pkmodel.nutpie_internals import CACHE_VERSIONS, InputLayout

__all__ = ["CACHE_VERSIONS", "DEFAULT_MAX_ENTRIES", "CacheEntryError", "SamplerModel",
           "cache_dir", "cache_location", "free_coordinates", "load_or_compile",
           "max_entries", "model_key", "unsupported_versions"]

logger = logging.getLogger("pkmodel")

#: How many entries the cache keeps (the most recently used) unless ``$PKMODEL_CACHE_ENTRIES``.
DEFAULT_MAX_ENTRIES = 16

_FORMAT = 3
_VERSIONED = ("pymc", "pytensor", "numba", "llvmlite", "nutpie", "numpy")
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}")
_TEMP_NAME = re.compile(r"\.[0-9a-f]{16}-.+")
_STALE_TEMP_S = 24 * 3600.0  # a temporary entry this old was left by a writer that died
_VERIFY_DATA = "verify.npz"  # the data of the check in another process; never kept
_UNCACHED = "uncached"  # the machine part of the key when the cache is not used
_MEMO: dict[str, SamplerModel] = {}  # loaded code stays loaded: never load a library twice
_NOTICED: set[str] = set()


class CacheEntryError(ValueError):
    """A cache entry that is damaged or was written for other versions."""


def cache_dir() -> Path | None:
    """The cache directory, or None when ``PKMODEL_CACHE_DIR=off``."""
    env = os.environ.get("PKMODEL_CACHE_DIR")
    if env is not None and env.strip().lower() in ("off", "0", "none", ""):
        return None
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("pkmodel")) / "models"


def max_entries() -> int:
    """How many entries the cache keeps: ``$PKMODEL_CACHE_ENTRIES`` (>= 1), else 16."""
    raw = os.environ.get("PKMODEL_CACHE_ENTRIES", "").strip()
    try:
        return max(int(raw), 1) if raw else DEFAULT_MAX_ENTRIES
    except ValueError:
        _notice(f"PKMODEL_CACHE_ENTRIES={raw!r} is not an integer; keeping "
                f"{DEFAULT_MAX_ENTRIES} entries", prefix="compiled-model cache")
        return DEFAULT_MAX_ENTRIES


def _notice(message: str, prefix: str = "compiled-model cache not used") -> None:
    """Log ``message`` once per process, as one line (no traceback)."""
    line = " ".join(f"{prefix}: {message}".split())
    if len(line) > 300:
        line = line[:297] + "..."
    if line not in _NOTICED:
        _NOTICED.add(line)
        logger.warning("%s", line)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.match(r"\d+(\.\d+)*", text)
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def unsupported_versions() -> str | None:
    """Why the installed libraries rule out the cache (None: they do not).

    Every package of :data:`CACHE_VERSIONS` must be installed at a version in its range.
    """
    for pkg, (low, high) in CACHE_VERSIONS.items():
        try:
            installed = version(pkg)
        except PackageNotFoundError:
            return f"{pkg} is not installed"
        if not _version_tuple(low) <= _version_tuple(installed) < _version_tuple(high):
            return (f"{pkg} {installed} is not a version it was written for "
                    f"(>={low},<{high})")
    return None


def _versions() -> dict[str, str]:
    return {pkg: version(pkg) for pkg in _VERSIONED}


def _digest_value(h, value) -> None:
    if isinstance(value, np.ndarray):
        h.update(f"array {value.dtype.str} {value.shape}\n".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            h.update(f"field {f.name}\n".encode())
            _digest_value(h, getattr(value, f.name))
    elif isinstance(value, tuple | list):
        h.update(f"seq {len(value)}\n".encode())
        for v in value:
            _digest_value(h, v)
    else:
        h.update(f"{type(value).__name__} {value!r}\n".encode())


def _machine_tag() -> str:
    """Numba's own cache key of this CPU (private: only when the cache is used)."""
    return internals.machine_tag()


def cache_location() -> tuple[Path | None, str]:
    """The cache directory to use and the CPU part of the key.

    ``(None, "uncached")`` when the cache is off, or the installed versions or this CPU rule it
    out (then with one logged line saying why, except when off).
    """
    directory = cache_dir()
    if directory is None:
        return None, _UNCACHED
    reason = unsupported_versions()
    if reason is None:
        try:
            return directory, _machine_tag()
        except Exception as err:  # a private API: any failure
            reason = f"Numba's CPU key is unavailable ({_describe(err)})"
    _notice(reason)
    return None, _UNCACHED


def model_key(sources: Iterable[Path], *values, machine: str) -> str:
    """SHA-256 of everything a compiled sampler model depends on.

    Parameters
    ----------
    sources : iterable of Path
        The source files that build the model (their bytes are hashed).
    *values
        What else the model depends on: arrays, dataclasses, sequences, plain values.
    machine : str
        The CPU part of the key (:func:`cache_location`).

    Returns
    -------
    str
        64 hexadecimal digits; it also covers the format of an entry and the versions of PyMC,
        PyTensor, Numba, llvmlite, nutpie and NumPy.
    """
    h = hashlib.sha256()
    h.update(f"format {_FORMAT}\n".encode())
    for path in sources:
        h.update(Path(path).name.encode())
        h.update(Path(path).read_bytes())
    for pkg, v in _versions().items():
        h.update(f"{pkg} {v}\n".encode())
    h.update(machine.encode())
    for value in values:
        _digest_value(h, value)
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class SamplerModel:
    """A compiled model, ready for nutpie (no PyMC needed).

    ``coordinates`` names the model's free variables in the order of the unconstrained vector,
    with their sizes; ``inputs`` the data inputs in the order of nutpie's ``user_data`` record
    (empty for a model compiled with its data as constants) and ``data`` their current arrays.
    ``x0`` is the initial point (unconstrained, before jitter) and ``jitter`` the coordinates
    that :meth:`initial_point` jitters (None: every one).
    """

    key: str
    n_dim: int
    n_expanded: int
    var_names: tuple[str, ...]
    var_shapes: tuple[tuple[int, ...], ...]
    dims: dict[str, tuple[str, ...]]
    coords: dict[str, list]
    x0: np.ndarray
    logp_address: int
    expand_address: int
    from_cache: bool
    coordinates: tuple[tuple[str, int], ...] = ()
    inputs: tuple[InputLayout, ...] = ()
    data: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    jitter: np.ndarray | None = field(default=None, repr=False)
    _keep_alive: tuple = field(default=(), repr=False)
    #: nutpie's own compiled model, when compiled in this process (the supported path)
    _compiled: Any = field(default=None, repr=False)

    def initial_point(self, seed) -> np.ndarray:
        """The initial point plus Uniform(-1, 1) jitter on :attr:`jitter`, as PyMC and nutpie
        do."""
        rng = np.random.default_rng(seed)
        step = rng.uniform(-1.0, 1.0, self.n_dim)
        return self.x0 + (step if self.jitter is None else np.where(self.jitter, step, 0.0))

    def slices(self) -> dict[str, slice]:
        """Where each free variable of :attr:`coordinates` lies in the unconstrained vector."""
        out, start = {}, 0
        for name, size in self.coordinates:
            out[name] = slice(start, start + size)
            start += size
        return out

    def with_data(self, arrays: Mapping[str, np.ndarray], *, x0: np.ndarray | None = None,
                  jitter: np.ndarray | None = None) -> SamplerModel:
        """The same compiled code reading ``arrays`` (by ``pm.Data`` name; those the code does
        not read are ignored), from initial point ``x0`` with ``jitter``.

        Raises
        ------
        ValueError
            When an input is missing or has another number of axes than compiled.
        """
        data = {}
        for spec in self.inputs:
            if spec.name not in arrays:
                raise ValueError(f"the compiled model reads {spec.name!r}, which is not given")
            value = np.array(arrays[spec.name], dtype=spec.dtype, order="C", copy=True)
            if value.ndim != spec.ndim:
                raise ValueError(f"{spec.name!r} must have {spec.ndim} axes, not {value.ndim}")
            value.flags.writeable = False
            data[spec.name] = value
        compiled = self._compiled
        if compiled is not None and data:
            compiled = compiled.with_data(**data)
        return dataclasses.replace(
            self, data=data, _compiled=compiled,
            x0=self.x0 if x0 is None else np.asarray(x0, dtype=float),
            jitter=self.jitter if jitter is None else np.asarray(jitter, dtype=bool))

    def user_data(self) -> np.ndarray:
        """nutpie's ``user_data`` record: the address, size and shape of each input."""
        return internals.user_data_record(self.inputs, self.data)

    def nutpie_model(self):
        """The object ``nutpie.sample`` takes.

        A model compiled in this process is nutpie's own, with :meth:`initial_point` as its
        initial point function (``dataclasses.replace``, as nutpie's ``with_data`` does); one
        loaded from the cache is built with nutpie's private constructor.
        """
        if self._compiled is not None:
            try:
                return dataclasses.replace(self._compiled, initial_point_func=self.initial_point)
            except (TypeError, ValueError) as err:
                _notice(f"nutpie's model has no initial_point_func ({_describe(err)}); "
                        "sampling from nutpie's own initial point", prefix="pkmodel")
                return self._compiled
        return _private_nutpie_model(self)


def _private_nutpie_model(model: SamplerModel):
    """nutpie's model object for code loaded from the cache (nutpie's private constructor)."""
    return internals.nutpie_model(
        n_dim=model.n_dim, n_expanded=model.n_expanded, var_names=model.var_names,
        var_shapes=model.var_shapes, dims=model.dims, coords=model.coords,
        logp_address=model.logp_address, expand_address=model.expand_address,
        initial_point=model.initial_point, data=model.data, user_data=model.user_data())


def load_or_compile(key: str, directory: Path | None,
                    compile_model: Callable[[], tuple[Any, tuple[tuple[str, int], ...]]]
                    ) -> SamplerModel:
    """The compiled sampler model of ``key``, from memory, the cache, or compiled now.

    Parameters
    ----------
    key : str
        :func:`model_key` of the model.
    directory : Path or None
        The cache directory (:func:`cache_location`); None compiles without the cache.
    compile_model : callable
        Compiles the model on nutpie's supported path: returns nutpie's compiled model
        (``nutpie.compile_pymc_model`` with no jitter) and the model's free variables in the
        order of the unconstrained vector, with their sizes (``model.value_vars``).

    The result is written to the cache when the directory is writable (a read-only or full disk
    only costs the compile next time), and the cache pruned to :func:`max_entries`. Any failure
    of the private path is one logged line, then the model is compiled.
    """
    if key in _MEMO:
        return _MEMO[key]
    model = None
    if directory is not None:
        entry = directory / key
        try:
            model = _load(entry, key)
            if model is not None:
                _private_nutpie_model(model)  # nutpie's private constructor: fail here
        except Exception as err:  # damaged entry or moved internals
            _notice(f"the entry {key[:12]} could not be loaded ({_describe(err)}); compiling")
            model = None
        if model is not None:
            _touch(entry)
    if model is None:
        model = _from_nutpie(*compile_model(), key)
        if directory is not None:
            _store(directory, model)
    _MEMO[key] = model
    return model


def free_coordinates(model, compiled) -> tuple[tuple[str, int], ...]:
    """The free variables of a PyMC ``model`` in the order of the unconstrained vector of
    nutpie's ``compiled`` model, with their sizes (``model.free_RVs``' value variables, the
    order PyMC and nutpie both use; the sizes from nutpie's shapes of the stored values)."""
    names, _, shapes = compiled.shape_info
    size = {str(n): int(np.prod(s, dtype=int)) for n, s in zip(names, shapes, strict=True)}
    return tuple((str(model.rvs_to_values[rv].name), size[str(model.rvs_to_values[rv].name)])
                 for rv in model.free_RVs)


def _from_nutpie(compiled, coordinates, key: str) -> SamplerModel:
    """Our description of nutpie's compiled model, from its public attributes."""
    x0 = np.asarray(compiled.initial_point_func(0), dtype=float)
    names, _, shapes = compiled.shape_info
    coords = {k: [v.item() if isinstance(v, np.generic) else v for v in idx]
              for k, idx in (compiled.coords or {}).items()}
    inputs, data = [], {}
    for var, slot in (compiled.shared_var_keys or {}).items():
        value = compiled.shared_data[slot]
        inputs.append(InputLayout(str(var.name), value.dtype.str, int(value.ndim)))
        data[str(var.name)] = value
    coordinates = tuple((str(n), int(s)) for n, s in coordinates)
    if sum(s for _, s in coordinates) != int(compiled.n_dim):
        raise ValueError(f"the free variables {coordinates} do not add up to the "
                         f"{compiled.n_dim} dimensions of the compiled model")
    return SamplerModel(
        key=key, n_dim=int(compiled.n_dim), n_expanded=int(compiled.n_expanded),
        var_names=tuple(names), var_shapes=tuple(tuple(int(d) for d in s) for s in shapes),
        dims={k: tuple(v) for k, v in (compiled.dims or {}).items()}, coords=coords, x0=x0,
        logp_address=compiled.compiled_logp_func.address,
        expand_address=compiled.compiled_expand_func.address, from_cache=False,
        coordinates=coordinates, inputs=tuple(inputs), data=data, _compiled=compiled,
    )


def _store(directory: Path, model: SamplerModel) -> None:
    """Write ``model`` to the cache and prune it; any failure is one logged line."""
    try:
        payload = _serialise(model)
        if payload is not None:
            _save(directory, model.key, payload, model.data,
                  internals.logp_at(model.logp_address, model.n_dim, model.x0, model.user_data()))
    except Exception as err:  # a private API: any failure
        _notice(f"the compiled model could not be written ({_describe(err)})")
    try:
        _prune(directory, max_entries())
    except OSError:  # an unwritable or vanished directory: nothing to prune
        pass
    except Exception as err:  # never fail a fit for it
        _notice(f"the cache could not be pruned ({_describe(err)})", prefix="compiled-model cache")


def _serialise(model: SamplerModel) -> dict | None:
    """The manifest and code files of a compiled model (Numba's private serialisation,
    :func:`pkmodel.nutpie_internals.serialise_code`).

    None when the code refers to a run-time object that cannot be rebuilt from JSON.
    """
    compiled = model._compiled
    payload: dict[str, Any] = {"manifest": {
        "format": _FORMAT, "key": model.key, "versions": _versions(), "n_dim": model.n_dim,
        "n_expanded": model.n_expanded, "var_names": list(model.var_names),
        "var_shapes": [list(s) for s in model.var_shapes],
        "dims": {k: list(v) for k, v in model.dims.items()}, "coords": model.coords,
        "x0": model.x0.tolist(), "coordinates": [list(c) for c in model.coordinates],
        "inputs": [[i.name, i.dtype, i.ndim] for i in model.inputs], "functions": {}},
        "blobs": {}}
    for role, cfunc in (("logp", compiled.compiled_logp_func),
                        ("expand", compiled.compiled_expand_func)):
        code = internals.serialise_code(cfunc)
        if code is None:
            return None
        info, object_code, bitcode = code
        payload["manifest"]["functions"][role] = info
        payload["blobs"][f"{role}.o"] = object_code
        payload["blobs"][f"{role}.bc"] = bitcode
    return payload


# Loads an entry in a fresh process and prints its log density at the initial point.
_VERIFY = """
import json, sys
from pathlib import Path
import numpy as np
from pkmodel.model_cache import _VERIFY_DATA, _load
from pkmodel.nutpie_internals import logp_at
entry = Path(sys.argv[1])
model = _load(entry, sys.argv[2])
if model is not None and model.inputs:
    with np.load(entry / _VERIFY_DATA, allow_pickle=False) as arrays:
        model = model.with_data(dict(arrays))
print(json.dumps(None if model is None else
                 logp_at(model.logp_address, model.n_dim, model.x0, model.user_data())))
"""


def _loads_elsewhere(entry: Path, key: str, expected: float) -> bool:
    """Whether a fresh process loads ``entry`` and gets the log density computed here.

    Machine code that refers to a symbol another process does not define would abort that
    process (LLVM cannot recover from it), so an entry is kept only once a separate process
    has loaded it and evaluated it at the initial point (with the data it was compiled on, for
    a model with inputs). This costs about a second, only when a model is compiled.
    """
    import math
    import subprocess
    import sys

    try:
        out = subprocess.run([sys.executable, "-c", _VERIFY, str(entry), key],
                             capture_output=True, text=True, timeout=300)
        value = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return False
    return value is not None and math.isclose(value, expected, rel_tol=1e-12, abs_tol=1e-12)


def _save(directory: Path, key: str, payload: dict, data: Mapping[str, np.ndarray],
          logp_x0: float) -> None:
    """Write the entry into a temporary directory, check it, then rename it into place.

    The data of the check (``verify.npz``, for a model with inputs) are deleted first: an entry
    never keeps a dataset beyond what the compiled code holds.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=directory))
        try:
            for name, blob in payload["blobs"].items():
                (tmp / name).write_bytes(blob)
            (tmp / "manifest.json").write_text(json.dumps(payload["manifest"]))
            if data:
                np.savez(tmp / _VERIFY_DATA, **data)
            if not _loads_elsewhere(tmp, key, logp_x0):
                return
            (tmp / _VERIFY_DATA).unlink(missing_ok=True)
            target = directory / key
            if target.exists():  # damaged entry that failed to load, or a concurrent writer
                shutil.rmtree(target, ignore_errors=True)
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        return


def _touch(entry: Path) -> None:
    """Record that ``entry`` was used now (the mtime of its manifest); pruning keeps recent ones."""
    try:
        os.utime(entry / "manifest.json")
    except OSError:  # a read-only cache: it is only pruned by age of writing then
        pass


def _prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` most recently used entries; return those deleted.

    Only directories named like an entry (64 hexadecimal digits, with a manifest) count and
    are deleted, and temporary ones left by a writer that died more than a day ago; anything
    else in the directory is left alone.
    """
    entries = []
    removed = []
    now = time.time()
    for path in directory.iterdir():
        try:
            if _ENTRY_NAME.fullmatch(path.name) and path.is_dir():
                entries.append(((path / "manifest.json").stat().st_mtime, path.name, path))
            elif (_TEMP_NAME.fullmatch(path.name) and path.is_dir()
                  and now - path.stat().st_mtime > _STALE_TEMP_S):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        except OSError:  # no manifest (being replaced) or gone meanwhile: not an entry now
            continue
    entries.sort(reverse=True)
    for _, _, path in entries[keep:]:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _read_entry(entry: Path, key: str) -> tuple[dict, dict] | None:
    """The manifest and code files of an entry; None when there is none.

    Raises
    ------
    CacheEntryError
        When the entry is damaged (unreadable, a checksum differs) or was written by another
        format, for another key or other library versions.
    """
    try:
        text = (entry / "manifest.json").read_text()
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
        if manifest.get("format") != _FORMAT or manifest.get("key") != key:
            raise CacheEntryError("it was written by another format or for another key")
        if manifest.get("versions") != _versions():
            raise CacheEntryError(f"it was written with {manifest.get('versions')}")
        blobs = {}
        for role, info in manifest["functions"].items():
            obj = (entry / f"{role}.o").read_bytes()
            bc = (entry / f"{role}.bc").read_bytes()
            if (hashlib.sha256(obj).hexdigest() != info["object_sha256"]
                    or hashlib.sha256(bc).hexdigest() != info["bitcode_sha256"]):
                raise CacheEntryError(f"the checksum of {role}.o or {role}.bc differs")
            blobs[role] = (obj, bc)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        if isinstance(err, CacheEntryError):
            raise
        raise CacheEntryError(f"it is damaged ({_describe(err)})") from err
    return manifest, blobs


def _load(entry: Path, key: str) -> SamplerModel | None:
    """Load a cache entry (Numba's private loader,
    :func:`pkmodel.nutpie_internals.load_code`); None when there is none.

    A model with inputs comes without data: give them with :meth:`SamplerModel.with_data`.

    Raises
    ------
    CacheEntryError
        For a damaged entry or one written for other versions (:func:`_read_entry`).
    Exception
        Whatever Numba raises when its internals differ from those this was written for.
    """
    read = _read_entry(entry, key)
    if read is None:
        return None
    manifest, blobs = read
    addresses, keep = internals.load_code(manifest["functions"], blobs)
    return SamplerModel(
        key=key, n_dim=int(manifest["n_dim"]), n_expanded=int(manifest["n_expanded"]),
        var_names=tuple(manifest["var_names"]),
        var_shapes=tuple(tuple(s) for s in manifest["var_shapes"]),
        dims={k: tuple(v) for k, v in manifest["dims"].items()}, coords=manifest["coords"],
        x0=np.asarray(manifest["x0"], dtype=float), logp_address=addresses["logp"],
        expand_address=addresses["expand"], from_cache=True,
        coordinates=tuple((str(n), int(s)) for n, s in manifest["coordinates"]),
        inputs=tuple(InputLayout(str(n), str(d), int(k)) for n, d, k in manifest["inputs"]),
        _keep_alive=tuple(keep))
