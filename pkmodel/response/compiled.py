"""The compiled sampler model of a remission fit, and its disk cache.

nutpie samples a PyMC model through two C callbacks that Numba compiles: the log density with
its gradient, and the "expand" function that turns a point of the unconstrained space into the
stored draws (constrained parameters and deterministics). Building them costs about 6 s in
every new process: PyTensor's graph rewrites and Numba dispatch, then nutpie's ``numba.cfunc``
wrappers, which Numba cannot cache because they close over generated code. That was most of
the time of a default fit.

:func:`sampler_model` compiles a model with nutpie's supported entry point,
``nutpie.compile_pymc_model``, and keeps the compiled machine code on disk. The two callbacks
are compiled once per model (a specification and a design, i.e. data), then their object code
is written to the cache directory, once a separate process has loaded it and reproduced the log
density at the initial point, with a manifest (JSON: names, shapes, dims, coordinates and the
initial point of the parameters, the library versions, with a SHA-256 checksum of each code
file); no Python object is pickled. A later fit of the same model in any process loads it
through Numba's own loader (the mechanism behind ``numba.njit(cache=True)``) without importing
PyMC, and samples with the same code, so the same seed gives the same posterior whether the
model came from the cache or not.

The cache stands on private APIs: Numba's ``CFunc._library``, ``serialize_using_object_code``,
``unserialize_library`` and ``Environment``, and nutpie's ``CompiledPyMCModel`` constructor.
It is therefore contained:

* it is used only with the versions of nutpie, Numba, llvmlite and PyTensor it was written and
  tested for (:data:`CACHE_VERSIONS`, the bounds of ``pyproject.toml``); with any other the fit
  compiles through the supported path;
* any failure of the private path (an import or attribute error, internals that moved, a
  damaged entry) is logged as one warning line on the ``pkmodel`` logger and the fit compiles
  through the supported path, which samples the same code with the same initial point;
* ``PKMODEL_CACHE_DIR=off`` calls no private API at all;
* the most recently used :func:`max_entries` entries are kept (16, or
  ``$PKMODEL_CACHE_ENTRIES``), the others deleted after each write, as nutpie's Stan cache does.

The cache key covers everything the code depends on: the design arrays, the priors and
options, the source of the modules that build the model, the version of the marginal
likelihood kernel (:data:`pkmodel.response.marginal.KERNEL_VERSION`), and the versions of PyMC,
PyTensor, Numba, llvmlite and nutpie plus the CPU model and features (Numba's own cache key).
The directory is ``$PKMODEL_CACHE_DIR``, else the platform's user cache folder for pkmodel
(``platformdirs.user_cache_dir("pkmodel")``: ``$XDG_CACHE_HOME/pkmodel`` or
``~/.cache/pkmodel`` on Linux, ``~/Library/Caches/pkmodel`` on macOS, ``%LOCALAPPDATA%`` on
Windows) with ``models`` inside. Deleting the directory is always safe.

The key covers the data because the model is compiled with its data as constants. nutpie can
compile a model with its data as shared inputs and swap it (``with_data``), but the number of
parameters (one latent TL per censored patient, one effect per centre) and of stored values
(one log-likelihood per patient) are compiled in, so only a cohort of exactly the same shape
could reuse such a model (``benchmarks/README.md``).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from pkmodel.response.design import Design
from pkmodel.response.priors import Priors
from pkmodel.response.structure import Structure

__all__ = ["CACHE_VERSIONS", "DEFAULT_MAX_ENTRIES", "LOGLIK_NAME", "SamplerModel", "c_logp",
           "cache_dir", "max_entries", "model_key", "sampler_model", "unsupported_versions"]

logger = logging.getLogger("pkmodel")

#: The deterministic that carries the pointwise log-likelihood of the outcome in the posterior.
LOGLIK_NAME = "remission_loglik"

#: The versions the cache was written and tested for, ``(lowest, first excluded)``; keep them
#: equal to the bounds in ``pyproject.toml``. Outside them the cache is not used.
CACHE_VERSIONS: dict[str, tuple[str, str]] = {
    "nutpie": ("0.16.11", "0.17"),
    "numba": ("0.68", "0.69"),
    "llvmlite": ("0.50", "0.51"),
    "pytensor": ("3.3.8", "3.4"),
}

#: How many entries the cache keeps (the most recently used) unless ``$PKMODEL_CACHE_ENTRIES``.
DEFAULT_MAX_ENTRIES = 16

_FORMAT = 2
_SOURCES = ("build.py", "compiled.py", "design.py", "marginal.py", "priors.py", "structure.py",
            "terms.py")
_VERSIONED = ("pymc", "pytensor", "numba", "llvmlite", "nutpie", "numpy")
_ENV_PREFIX = "_ZN08NumbaEnv"
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}")
_TEMP_NAME = re.compile(r"\.[0-9a-f]{16}-.+")
_STALE_TEMP_S = 24 * 3600.0  # a temporary entry this old was left by a writer that died
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


def _kernel_version() -> int:
    """``KERNEL_VERSION`` of :mod:`pkmodel.response.marginal`, read from its source.

    Read rather than imported, so that a fit from the cache imports neither PyTensor nor the
    kernel.
    """
    tree = ast.parse((Path(__file__).parent / "marginal.py").read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign | ast.AnnAssign)
                and any(getattr(t, "id", None) == "KERNEL_VERSION"
                        for t in (node.targets if isinstance(node, ast.Assign)
                                  else [node.target]))):
            return int(ast.literal_eval(node.value))
    raise CacheEntryError("marginal.py defines no KERNEL_VERSION")


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
    """Numba's own cache key of this CPU (a private Numba API: only when the cache is used)."""
    from numba.core.registry import cpu_target

    return repr(cpu_target.target_context.codegen().magic_tuple())


def model_key(design: Design, priors: Priors, *, patient_effect: bool,
              assay_cv: float | None, structure: Structure, machine: str | None = None) -> str:
    """SHA-256 of everything the compiled sampler model depends on.

    Parameters
    ----------
    design, priors, patient_effect, assay_cv, structure
        The model, as for :func:`sampler_model`.
    machine : str, optional
        The CPU part of the key; by default Numba's cache key of this CPU, which calls a
        private Numba API (:func:`sampler_model` passes a constant when the cache is off).

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    h = hashlib.sha256()
    h.update(f"format {_FORMAT}\n".encode())
    here = Path(__file__).parent
    for name in _SOURCES:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    h.update(f"kernel {_kernel_version()}\n".encode())
    for pkg, v in _versions().items():
        h.update(f"{pkg} {v}\n".encode())
    h.update((_machine_tag() if machine is None else machine).encode())
    _digest_value(h, design)
    _digest_value(h, priors)
    _digest_value(h, (bool(patient_effect), assay_cv, structure))
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class SamplerModel:
    """A compiled remission model, ready for nutpie (no PyMC needed)."""

    key: str
    n_dim: int
    n_expanded: int
    var_names: tuple[str, ...]
    var_shapes: tuple[tuple[int, ...], ...]
    dims: dict[str, tuple[str, ...]]
    coords: dict[str, list]
    x0: np.ndarray  # the initial point, unconstrained, before jitter
    logp_address: int
    expand_address: int
    from_cache: bool
    _keep_alive: tuple = field(default=(), repr=False)
    #: nutpie's own compiled model, when compiled in this process (the supported path)
    _compiled: Any = field(default=None, repr=False)

    def initial_point(self, seed) -> np.ndarray:
        """The initial point plus Uniform(-1, 1) jitter, as PyMC and nutpie do."""
        rng = np.random.default_rng(seed)
        return self.x0 + rng.uniform(-1.0, 1.0, self.n_dim)

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
    import pandas as pd
    from nutpie.compile_pymc import CompiledPyMCModel

    shape_info = (list(model.var_names), None, [list(s) for s in model.var_shapes])
    return CompiledPyMCModel(
        _n_dim=model.n_dim,
        dims={k: tuple(v) for k, v in model.dims.items()},
        _coords={k: pd.Index(v) for k, v in model.coords.items()},
        _shapes=dict(zip(model.var_names, model.var_shapes, strict=True)),
        compiled_logp_func=_Address(model.logp_address),
        compiled_expand_func=_Address(model.expand_address),
        initial_point_func=model.initial_point,
        shared_data={},
        shared_var_keys={},
        user_data=np.zeros(()),
        n_expanded=model.n_expanded,
        shape_info=shape_info,
        logp_func=None,
        expand_func=None,
    )


@dataclass(frozen=True)
class _Address:
    address: int


def sampler_model(design: Design, priors: Priors, *, patient_effect: bool,
                  assay_cv: float | None, structure: Structure) -> SamplerModel:
    """The compiled sampler model for this design and these options, from the cache if there.

    The PyMC model (its sampler form, with the deterministic :data:`LOGLIK_NAME`) is built
    and compiled with ``nutpie.compile_pymc_model`` only when no usable cache entry exists;
    the result is then written to the cache when the directory is writable (a read-only or
    full disk only costs the compile next time), and the cache pruned to :func:`max_entries`.
    With the cache off, or versions it was not written for, or any failure of its private
    path, the model is compiled (with one logged line saying why, except when off).
    """
    options = {"patient_effect": patient_effect, "assay_cv": assay_cv,
               "structure": structure}
    directory = cache_dir()
    machine = _UNCACHED
    if directory is not None:
        reason = unsupported_versions()
        if reason is None:
            try:
                machine = _machine_tag()
            except Exception as err:  # a private API: any failure
                reason = f"Numba's CPU key is unavailable ({_describe(err)})"
        if reason is not None:
            _notice(reason)
            directory = None
    key = model_key(design, priors, **options, machine=machine)
    if key in _MEMO:
        return _MEMO[key]
    model = None
    if directory is not None:
        entry = directory / key
        try:
            model = _load(entry, key)
            if model is not None:
                model.nutpie_model()  # nutpie's private constructor: fail here, not in the fit
        except Exception as err:  # damaged entry or moved internals
            _notice(f"the entry {key[:12]} could not be loaded ({_describe(err)}); compiling")
            model = None
        if model is not None:
            _touch(entry)
    if model is None:
        model = _from_nutpie(_compile(design, priors, **options), key)
        if directory is not None:
            _store(directory, model)
    _MEMO[key] = model
    return model


# ----------------------------------------------------------------------------- compile
def _compile(design, priors, **options):
    """nutpie's compiled model (the supported path: ``nutpie.compile_pymc_model``)."""
    import warnings

    import nutpie
    import pytensor

    from pkmodel.response.build import build_pymc_model

    model = build_pymc_model(design, priors, for_sampler=True, **options)
    # No fast-math: with PyTensor's default flags (reassociation, approximate functions) LLVM
    # may vectorise a sum differently with the alignment of its input, so the process that
    # compiled a model and a process that loads it from the cache computed the log density
    # differently in the last bit at some points, and their draws of the same seed parted.
    with warnings.catch_warnings(), pytensor.config.change_flags(numba__fastmath=False):
        warnings.filterwarnings("ignore", message=".*default_transform.*")
        return nutpie.compile_pymc_model(model, jitter_rvs=set())


def _from_nutpie(compiled, key: str) -> SamplerModel:
    """Our description of nutpie's compiled model, from its public attributes."""
    x0 = np.asarray(compiled.initial_point_func(0), dtype=float)
    names, _, shapes = compiled.shape_info
    coords = {k: [v.item() if isinstance(v, np.generic) else v for v in idx]
              for k, idx in (compiled.coords or {}).items()}
    return SamplerModel(
        key=key, n_dim=int(compiled.n_dim), n_expanded=int(compiled.n_expanded),
        var_names=tuple(names), var_shapes=tuple(tuple(int(d) for d in s) for s in shapes),
        dims={k: tuple(v) for k, v in (compiled.dims or {}).items()}, coords=coords, x0=x0,
        logp_address=compiled.compiled_logp_func.address,
        expand_address=compiled.compiled_expand_func.address, from_cache=False,
        _compiled=compiled,
    )


def _store(directory: Path, model: SamplerModel) -> None:
    """Write ``model`` to the cache and prune it; any failure is one logged line."""
    try:
        payload = _serialise(model)
        if payload is not None:
            _save(directory, model.key, payload,
                  _logp_at(model.logp_address, model.n_dim, model.x0))
    except Exception as err:  # a private API: any failure
        _notice(f"the compiled model could not be written ({_describe(err)})")
    try:
        _prune(directory, max_entries())
    except OSError:  # an unwritable or vanished directory: nothing to prune
        pass
    except Exception as err:  # never fail a fit for it
        _notice(f"the cache could not be pruned ({_describe(err)})", prefix="compiled-model cache")


def _environments(library) -> list[dict] | None:
    """The Numba environments the code refers to, as JSON; None if one cannot be rebuilt.

    An environment holds the Python objects compiled code may need at run time (for boxing
    results into Python objects). Those seen here are NumPy dtypes or nothing; any other
    object makes the model uncacheable (it is then compiled in every process).
    """
    from numba.core.environment import lookup_environment

    envs = []
    for gv in library._final_module.global_variables:
        if not gv.name.startswith(_ENV_PREFIX):
            continue
        env = lookup_environment(gv.name)
        consts = []
        for const in (env.consts if env is not None else ()):
            if isinstance(const, np.dtype):
                consts.append(["dtype", const.str])
            elif const is None or isinstance(const, bool | int | float | str):
                consts.append(["value", const])
            else:
                return None
        envs.append({"name": gv.name, "consts": consts})
    return envs


def _rebuild_environment(info: dict):
    from numba.core.environment import Environment

    env = Environment({"__name__": __name__})
    env.env_name = info["name"]
    env.consts[:] = [np.dtype(v) if kind == "dtype" else v for kind, v in info["consts"]]
    return env


def _serialise(model: SamplerModel) -> dict | None:
    """The manifest and code files of a compiled model (Numba's private serialisation).

    None when the code refers to a run-time object that cannot be rebuilt from JSON.
    """
    compiled = model._compiled
    payload: dict[str, Any] = {"manifest": {
        "format": _FORMAT, "key": model.key, "versions": _versions(),
        "kernel_version": _kernel_version(), "n_dim": model.n_dim,
        "n_expanded": model.n_expanded, "var_names": list(model.var_names),
        "var_shapes": [list(s) for s in model.var_shapes],
        "dims": {k: list(v) for k, v in model.dims.items()}, "coords": model.coords,
        "x0": model.x0.tolist(), "functions": {}}, "blobs": {}}
    for role, cfunc in (("logp", compiled.compiled_logp_func),
                        ("expand", compiled.compiled_expand_func)):
        library = cfunc._library
        envs = _environments(library)
        if envs is None:
            return None
        name, kind, (object_code, bitcode) = library.serialize_using_object_code()
        payload["manifest"]["functions"][role] = {
            "library": name, "kind": kind, "symbol": cfunc._wrapper_name, "environments": envs,
            "object_sha256": hashlib.sha256(object_code).hexdigest(),
            "bitcode_sha256": hashlib.sha256(bitcode).hexdigest()}
        payload["blobs"][f"{role}.o"] = object_code
        payload["blobs"][f"{role}.bc"] = bitcode
    return payload


def c_logp(address: int):
    """The compiled log density + gradient at ``address`` as a ctypes function.

    nutpie's C signature: ``(n_dim, x*, grad_out*, logp_out*, user_data*) -> status``, with
    status 0 on success; pointers are addresses (``array.ctypes.data``).
    """
    import ctypes

    signature = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    return signature(address)


def _logp_at(address: int, n_dim: int, x: np.ndarray) -> float:
    """The log density that the compiled function at ``address`` gives at ``x`` (NaN on error)."""
    x = np.ascontiguousarray(x, dtype=float)
    grad, logp, user_data = np.zeros(n_dim), np.zeros(()), np.zeros(())
    code = c_logp(address)(n_dim, x.ctypes.data, grad.ctypes.data, logp.ctypes.data,
                           user_data.ctypes.data)
    return float(logp) if code == 0 else float("nan")


# Loads an entry in a fresh process and prints its log density at the initial point.
_VERIFY = """
import json, sys
from pathlib import Path
from pkmodel.response.compiled import _load, _logp_at
model = _load(Path(sys.argv[1]), sys.argv[2])
print(json.dumps(None if model is None else _logp_at(model.logp_address, model.n_dim, model.x0)))
"""


def _loads_elsewhere(entry: Path, key: str, expected: float) -> bool:
    """Whether a fresh process loads ``entry`` and gets the log density computed here.

    Machine code that refers to a symbol another process does not define would abort that
    process (LLVM cannot recover from it), so an entry is kept only once a separate process
    has loaded it and evaluated it at the initial point. This costs well under a second, only
    when a model is compiled.
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


def _save(directory: Path, key: str, payload: dict, logp_x0: float) -> None:
    """Write the entry into a temporary directory, check it, then rename it into place."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=directory))
        try:
            for name, blob in payload["blobs"].items():
                (tmp / name).write_bytes(blob)
            (tmp / "manifest.json").write_text(json.dumps(payload["manifest"]))
            if not _loads_elsewhere(tmp, key, logp_x0):
                return
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


# ----------------------------------------------------------------------------- load
def _read_entry(entry: Path, key: str) -> tuple[dict, dict] | None:
    """The manifest and code files of an entry; None when there is none.

    Raises
    ------
    CacheEntryError
        When the entry is damaged (unreadable, a checksum differs) or was written by another
        format, for another key, other library versions or another kernel version.
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
        if manifest.get("kernel_version") != _kernel_version():
            raise CacheEntryError(
                f"it was written for kernel version {manifest.get('kernel_version')}")
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
    """Load a cache entry (Numba's private loader); None when there is none.

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

    from numba.core.registry import cpu_target

    context = cpu_target.target_context
    context.refresh()  # registers Numba's runtime (NRT) symbols, as Numba's own cache does
    codegen = context.codegen()
    keep: list = []
    addresses = {}
    for role, info in manifest["functions"].items():
        obj, bc = blobs[role]
        library = codegen.unserialize_library((info["library"], info["kind"], (obj, bc)))
        for env_info in info["environments"]:
            env = _rebuild_environment(env_info)
            codegen.set_env(env.env_name, env)
            keep.append(env)
        addresses[role] = library.get_pointer_to_function(info["symbol"])
        keep.append(library)
    return SamplerModel(
        key=key, n_dim=int(manifest["n_dim"]), n_expanded=int(manifest["n_expanded"]),
        var_names=tuple(manifest["var_names"]),
        var_shapes=tuple(tuple(s) for s in manifest["var_shapes"]),
        dims={k: tuple(v) for k, v in manifest["dims"].items()}, coords=manifest["coords"],
        x0=np.asarray(manifest["x0"], dtype=float), logp_address=addresses["logp"],
        expand_address=addresses["expand"], from_cache=True, _keep_alive=tuple(keep))
