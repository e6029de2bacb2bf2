"""The compiled sampler model of a remission fit, and its disk cache.

nutpie samples a PyMC model through two C callbacks that Numba compiles: the log density with
its gradient, and the "expand" function that turns a point of the unconstrained space into the
stored draws (constrained parameters and deterministics). Building them costs about 6 s in
every new process: PyTensor's graph rewrites and Numba dispatch, then nutpie's ``numba.cfunc``
wrappers, which Numba cannot cache because they close over generated code. That was most of
the time of a default fit.

:func:`sampler_model` keeps the compiled machine code instead. The two callbacks are compiled
once per model (a specification and a design, i.e. data), then their object code is written
to the cache directory, once a separate process has loaded it and reproduced the log density
at the initial point, with a manifest (JSON: names, shapes, dims, coordinates and the initial
point of the parameters, with a SHA-256 checksum of each code file); no Python object is
pickled. A later fit of the same model in any process loads it through Numba's own loader
(the mechanism behind ``numba.njit(cache=True)``) without importing PyMC, and samples with
the same code, so the same seed gives the same posterior whether the model came from the
cache or not.

The cache key covers everything the code depends on: the design arrays, the priors and
options, the source of the modules that build the model, and the versions of PyMC, PyTensor,
Numba, llvmlite and nutpie plus the CPU model and features (Numba's own cache key). A damaged
or unreadable entry is rebuilt. The directory is ``$PKMODEL_CACHE_DIR``, else
``$XDG_CACHE_HOME/pkmodel/models``, else ``~/.cache/pkmodel/models``; set
``PKMODEL_CACHE_DIR=off`` to compile every time. Deleting the directory is always safe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from pkmodel.response.design import Design
from pkmodel.response.priors import Priors
from pkmodel.response.structure import Structure

__all__ = ["LOGLIK_NAME", "SamplerModel", "c_logp", "cache_dir", "model_key", "sampler_model"]

#: The deterministic that carries the pointwise log-likelihood of the outcome in the posterior.
LOGLIK_NAME = "remission_loglik"

_FORMAT = 1
_SOURCES = ("build.py", "compiled.py", "design.py", "marginal.py", "priors.py", "structure.py")
_VERSIONED = ("pymc", "pytensor", "numba", "llvmlite", "nutpie", "numpy")
_ENV_PREFIX = "_ZN08NumbaEnv"
_MEMO: dict[str, SamplerModel] = {}  # loaded code stays loaded: never load a library twice


def cache_dir() -> Path | None:
    """The cache directory, or None when ``PKMODEL_CACHE_DIR=off``."""
    env = os.environ.get("PKMODEL_CACHE_DIR")
    if env is not None and env.strip().lower() in ("off", "0", "none", ""):
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pkmodel" / "models"


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
    from numba.core.registry import cpu_target

    return repr(cpu_target.target_context.codegen().magic_tuple())


def model_key(design: Design, priors: Priors, *, patient_effect: bool,
              assay_cv: float | None, structure: Structure) -> str:
    """SHA-256 of everything the compiled sampler model depends on."""
    h = hashlib.sha256()
    h.update(f"format {_FORMAT}\n".encode())
    here = Path(__file__).parent
    for name in _SOURCES:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    for pkg in _VERSIONED:
        h.update(f"{pkg} {version(pkg)}\n".encode())
    h.update(_machine_tag().encode())
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

    def initial_point(self, seed) -> np.ndarray:
        """The initial point plus Uniform(-1, 1) jitter, as PyMC and nutpie do."""
        rng = np.random.default_rng(seed)
        return self.x0 + rng.uniform(-1.0, 1.0, self.n_dim)

    def nutpie_model(self):
        """The object ``nutpie.sample`` takes."""
        import pandas as pd
        from nutpie.compile_pymc import CompiledPyMCModel

        shape_info = (list(self.var_names), None, [list(s) for s in self.var_shapes])
        return CompiledPyMCModel(
            _n_dim=self.n_dim,
            dims={k: tuple(v) for k, v in self.dims.items()},
            _coords={k: pd.Index(v) for k, v in self.coords.items()},
            _shapes=dict(zip(self.var_names, self.var_shapes, strict=True)),
            compiled_logp_func=_Address(self.logp_address),
            compiled_expand_func=_Address(self.expand_address),
            initial_point_func=self.initial_point,
            shared_data={},
            shared_var_keys={},
            user_data=np.zeros(()),
            n_expanded=self.n_expanded,
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
    and compiled only when no usable cache entry exists; the result is then written to the
    cache when the directory is writable (a read-only or full disk only costs the compile
    next time).
    """
    options = {"patient_effect": patient_effect, "assay_cv": assay_cv,
               "structure": structure}
    key = model_key(design, priors, **options)
    if key in _MEMO:
        return _MEMO[key]
    directory = cache_dir()
    model = None
    if directory is not None:
        model = _load(directory / key, key)
    if model is None:
        model, payload = _compile(design, priors, key, **options)
        if directory is not None and payload is not None:
            _save(directory, key, payload, _logp_at(model.logp_address, model.n_dim, model.x0))
    _MEMO[key] = model
    return model


# ----------------------------------------------------------------------------- compile
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


def _compile(design, priors, key, **options) -> tuple[SamplerModel, dict | None]:
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
        compiled = nutpie.compile_pymc_model(model, jitter_rvs=set())
    x0 = np.asarray(compiled.initial_point_func(0), dtype=float)
    names, _, shapes = compiled.shape_info
    coords = {k: [v.item() if isinstance(v, np.generic) else v for v in idx]
              for k, idx in compiled.coords.items()}
    sm = SamplerModel(
        key=key, n_dim=int(compiled.n_dim), n_expanded=int(compiled.n_expanded),
        var_names=tuple(names), var_shapes=tuple(tuple(int(d) for d in s) for s in shapes),
        dims={k: tuple(v) for k, v in (compiled.dims or {}).items()}, coords=coords, x0=x0,
        logp_address=compiled.compiled_logp_func.address,
        expand_address=compiled.compiled_expand_func.address, from_cache=False,
        _keep_alive=(compiled,),
    )
    payload: dict[str, Any] = {"manifest": {
        "format": _FORMAT, "key": key, "n_dim": sm.n_dim, "n_expanded": sm.n_expanded,
        "var_names": list(sm.var_names), "var_shapes": [list(s) for s in sm.var_shapes],
        "dims": {k: list(v) for k, v in sm.dims.items()}, "coords": coords,
        "x0": x0.tolist(), "functions": {}}, "blobs": {}}
    for role, cfunc in (("logp", compiled.compiled_logp_func),
                        ("expand", compiled.compiled_expand_func)):
        library = cfunc._library
        envs = _environments(library)
        if envs is None:
            return sm, None
        name, kind, (object_code, bitcode) = library.serialize_using_object_code()
        payload["manifest"]["functions"][role] = {
            "library": name, "kind": kind, "symbol": cfunc._wrapper_name, "environments": envs,
            "object_sha256": hashlib.sha256(object_code).hexdigest(),
            "bitcode_sha256": hashlib.sha256(bitcode).hexdigest()}
        payload["blobs"][f"{role}.o"] = object_code
        payload["blobs"][f"{role}.bc"] = bitcode
    return sm, payload


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


# ----------------------------------------------------------------------------- load
def _load(entry: Path, key: str) -> SamplerModel | None:
    """Load a cache entry; None when missing, damaged or written by another format."""
    try:
        manifest = json.loads((entry / "manifest.json").read_text())
        if manifest.get("format") != _FORMAT or manifest.get("key") != key:
            return None
        blobs = {}
        for role, info in manifest["functions"].items():
            obj = (entry / f"{role}.o").read_bytes()
            bc = (entry / f"{role}.bc").read_bytes()
            if (hashlib.sha256(obj).hexdigest() != info["object_sha256"]
                    or hashlib.sha256(bc).hexdigest() != info["bitcode_sha256"]):
                return None
            blobs[role] = (obj, bc)
    except (OSError, ValueError, KeyError, TypeError):
        return None

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
