"""Every private Numba and nutpie API the compiled-model cache stands on, in one place.

:mod:`pkmodel.model_cache` keeps a compiled model's machine code on disk so that a later process
samples it without PyMC. Neither Numba nor nutpie offers that publicly, so this module reaches
into their internals, and nothing else in pkmodel does:

* Numba: the CPU key of its own cache (``codegen().magic_tuple()``), a ``cfunc``'s library and
  wrapper name (``CFunc._library``, ``_wrapper_name``), ``serialize_using_object_code`` and
  ``unserialize_library`` (the loader behind ``njit(cache=True)``), and the run-time
  ``Environment`` objects the code refers to;
* nutpie: the ``CompiledPyMCModel`` constructor (a model object around code loaded from disk),
  the layout of its ``user_data`` record (the address, size and shape of each data input) and
  the C signature of its log density.

The supported alternatives were tried first and do not serve (docs/architecture.md, "The
compiled-model cache"): Numba's ``cache=True`` cannot hold nutpie's ``cfunc`` wrappers, which
close over generated code, and PyTensor's own Numba cache keeps the graph rewrites and the
``cfunc`` compile in every process. Callers treat any exception from here as "internals moved":
:mod:`pkmodel.model_cache` logs one line and compiles through nutpie's supported
``compile_pymc_model``, which samples the same code from the same initial point. The versions
this was written and tested for are :data:`CACHE_VERSIONS`; outside them it is never called.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CACHE_VERSIONS", "InputLayout", "c_logp", "load_code", "logp_at", "machine_tag",
           "nutpie_model", "serialise_code", "user_data_record"]

#: The versions the private path was written and tested for, ``(lowest, first excluded)``.
#: The package itself accepts wider ranges (``pyproject.toml``); outside these the cache is
#: bypassed and every fit compiles through nutpie's supported entry point.
CACHE_VERSIONS: dict[str, tuple[str, str]] = {
    "nutpie": ("0.16.11", "0.17"),
    "numba": ("0.68", "0.69"),
    "llvmlite": ("0.50", "0.51"),
    "pytensor": ("3.3.8", "3.4"),
}

_ENV_PREFIX = "_ZN08NumbaEnv"


@dataclass(frozen=True)
class InputLayout:
    """A data input of the compiled code: its ``pm.Data`` name, dtype and number of axes."""

    name: str
    dtype: str
    ndim: int


def machine_tag() -> str:
    """Numba's own cache key of this CPU."""
    from numba.core.registry import cpu_target

    return repr(cpu_target.target_context.codegen().magic_tuple())


def user_data_record(inputs: Sequence[InputLayout],
                     data: Mapping[str, np.ndarray]) -> np.ndarray:
    """The record nutpie's compiled code reads its inputs from (the layout of nutpie's
    ``make_user_data``: per input an address, a size and a shape, in the inputs' order)."""
    names = [f"i{k}" for k in range(len(inputs))]
    record = np.dtype([("shared", [
        ("data", [(n, np.uintp) for n in names]),
        ("size", [(n, np.uintp) for n in names]),
        ("shape", [(n, np.uint, (spec.ndim,)) for n, spec in zip(names, inputs, strict=True)]),
    ])])
    out = np.zeros((), dtype=record)
    for n, spec in zip(names, inputs, strict=True):
        value = data.get(spec.name)
        if value is None:  # not given yet: a null record, never sampled from
            continue
        out["shared"]["data"][n] = value.ctypes.data
        out["shared"]["size"][n] = value.size
        out["shared"]["shape"][n] = value.shape
    return out


@dataclass(frozen=True)
class _Address:
    address: int


def nutpie_model(*, n_dim: int, n_expanded: int, var_names: Sequence[str],
                 var_shapes: Sequence[tuple[int, ...]], dims: Mapping[str, tuple[str, ...]],
                 coords: Mapping[str, list], logp_address: int, expand_address: int,
                 initial_point: Callable[[Any], np.ndarray], data: Mapping[str, np.ndarray],
                 user_data: np.ndarray):
    """nutpie's model object around code at two addresses (nutpie's private constructor)."""
    import pandas as pd
    from nutpie.compile_pymc import CompiledPyMCModel

    shape_info = (list(var_names), None, [list(s) for s in var_shapes])
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims={k: tuple(v) for k, v in dims.items()},
        _coords={k: pd.Index(v) for k, v in coords.items()},
        _shapes=dict(zip(var_names, var_shapes, strict=True)),
        compiled_logp_func=_Address(logp_address),
        compiled_expand_func=_Address(expand_address),
        initial_point_func=initial_point,
        shared_data=dict(data),  # kept alive with the model: the record points at them
        shared_var_keys={},
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=None,
        expand_func=None,
    )


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


def serialise_code(cfunc) -> tuple[dict, bytes, bytes] | None:
    """The object code of one of nutpie's compiled functions (a ``numba.cfunc``).

    Returns
    -------
    (info, object_code, bitcode) or None
        ``info`` is JSON for the manifest (library name and kind, symbol, environments, the
        SHA-256 of both blobs); None when the code refers to a run-time object that cannot be
        rebuilt from JSON.
    """
    library = cfunc._library
    envs = _environments(library)
    if envs is None:
        return None
    name, kind, (object_code, bitcode) = library.serialize_using_object_code()
    info = {"library": name, "kind": kind, "symbol": cfunc._wrapper_name, "environments": envs,
            "object_sha256": hashlib.sha256(object_code).hexdigest(),
            "bitcode_sha256": hashlib.sha256(bitcode).hexdigest()}
    return info, object_code, bitcode


def load_code(functions: Mapping[str, dict],
              blobs: Mapping[str, tuple[bytes, bytes]]) -> tuple[dict[str, int], list]:
    """Load serialised functions (:func:`serialise_code`) through Numba's loader.

    Returns
    -------
    (addresses, keep_alive)
        The address of each function by role, and the objects that must outlive the code.
    """
    from numba.core.registry import cpu_target

    context = cpu_target.target_context
    context.refresh()  # registers Numba's runtime (NRT) symbols, as Numba's own cache does
    codegen = context.codegen()
    keep: list = []
    addresses = {}
    for role, info in functions.items():
        obj, bc = blobs[role]
        library = codegen.unserialize_library((info["library"], info["kind"], (obj, bc)))
        for env_info in info["environments"]:
            env = _rebuild_environment(env_info)
            codegen.set_env(env.env_name, env)
            keep.append(env)
        addresses[role] = library.get_pointer_to_function(info["symbol"])
        keep.append(library)
    return addresses, keep


def c_logp(address: int):
    """The compiled log density + gradient at ``address`` as a ctypes function.

    nutpie's C signature: ``(n_dim, x*, grad_out*, logp_out*, user_data*) -> status``, with
    status 0 on success; pointers are addresses (``array.ctypes.data``).
    """
    signature = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    return signature(address)


def logp_at(address: int, n_dim: int, x: np.ndarray,
            user_data: np.ndarray | None = None) -> float:
    """The log density that the compiled function at ``address`` gives at ``x`` (NaN on error),
    reading its inputs from ``user_data`` (:func:`user_data_record`)."""
    x = np.ascontiguousarray(x, dtype=float)
    grad, logp = np.zeros(n_dim), np.zeros(())
    user_data = np.zeros(()) if user_data is None else user_data
    code = c_logp(address)(n_dim, x.ctypes.data, grad.ctypes.data, logp.ctypes.data,
                           user_data.ctypes.data)
    return float(logp) if code == 0 else float("nan")
