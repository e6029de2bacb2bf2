"""The compiled sampler model of a remission fit (kept on disk by :mod:`pkmodel.model_cache`).

Compiling the remission model for nutpie costs about 6 s in every new process; the cache makes
a later fit of the same model, in any process, load it in well under a second without importing
PyMC (:mod:`pkmodel.model_cache` says how, and how the private APIs it stands on are contained).

The model is compiled with its data as constants, so the key covers everything the code
depends on: the design arrays, the priors and options, the source of the modules that build the
model, the version of the marginal likelihood kernel
(:data:`pkmodel.response.marginal.KERNEL_VERSION`), and the versions of PyMC, PyTensor, Numba,
llvmlite and nutpie plus the CPU model and features (Numba's own cache key). nutpie can compile a
model with its data as shared inputs and swap it (``with_data``), but the number of parameters
(one latent TL per censored patient, one effect per centre) and of stored values (one
log-likelihood per patient) are compiled in, so only a cohort of exactly the same shape could
reuse such a model (``benchmarks/README.md``).

The ``integrate_tl`` form (:mod:`pkmodel.response.integrated`) has none of these: no latent per
censored patient, patients in slots, the centring as an input. It is compiled once per cohort
shape and priors (:func:`integrated_model_key`) and served to every cohort of that shape by
:func:`integrated_sampler_model`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from pkmodel.model_cache import SamplerModel, cache_location, free_coordinates, load_or_compile
from pkmodel.model_cache import model_key as _cache_key
from pkmodel.response.design import Design
from pkmodel.response.priors import Priors
from pkmodel.response.structure import Structure

__all__ = ["LOGLIK_NAME", "integrated_model_key", "integrated_sampler_model", "model_key",
           "sampler_model"]

#: The deterministic that carries the pointwise log-likelihood of the outcome in the posterior.
LOGLIK_NAME = "remission_loglik"

_SOURCES = ("build.py", "compiled.py", "design.py", "marginal.py", "priors.py", "structure.py",
            "terms.py")


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
    raise ValueError("marginal.py defines no KERNEL_VERSION")


def model_key(design: Design, priors: Priors, *, patient_effect: bool,
              assay_cv: float | None, structure: Structure, machine: str | None = None) -> str:
    """SHA-256 of everything the compiled sampler model depends on.

    Parameters
    ----------
    design, priors, patient_effect, assay_cv, structure
        The model, as for :func:`sampler_model`.
    machine : str, optional
        The CPU part of the key; by default that of :func:`pkmodel.model_cache.cache_location`.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    if machine is None:
        machine = cache_location()[1]
    here = Path(__file__).parent
    return _cache_key([here / name for name in _SOURCES], f"kernel {_kernel_version()}",
                      design, priors, (bool(patient_effect), assay_cv, structure),
                      machine=machine)


def sampler_model(design: Design, priors: Priors, *, patient_effect: bool,
                  assay_cv: float | None, structure: Structure) -> SamplerModel:
    """The compiled sampler model for this design and these options, from the cache if there.

    The PyMC model (its sampler form, with the deterministic :data:`LOGLIK_NAME`) is built
    and compiled with ``nutpie.compile_pymc_model`` only when no usable cache entry exists
    (:func:`pkmodel.model_cache.load_or_compile`).
    """
    options = {"patient_effect": patient_effect, "assay_cv": assay_cv, "structure": structure}
    directory, machine = cache_location()
    key = model_key(design, priors, **options, machine=machine)
    return load_or_compile(key, directory, lambda: _compile(design, priors, **options))


def _compile(design, priors, **options):
    """nutpie's compiled model (the supported path: ``nutpie.compile_pymc_model``) and the
    model's free variables with their sizes."""
    import warnings

    import nutpie

    from pkmodel.response.build import build_pymc_model
    from pkmodel.sampling import exact_arithmetic

    model = build_pymc_model(design, priors, for_sampler=True, **options)
    with warnings.catch_warnings(), exact_arithmetic():
        warnings.filterwarnings("ignore", message=".*default_transform.*")
        compiled = nutpie.compile_pymc_model(model, jitter_rvs=set())
    return compiled, free_coordinates(model, compiled)


_INTEGRATED_SOURCES = ("build.py", "compiled.py", "censored.py", "integrated.py", "marginal.py",
                       "priors.py", "structure.py", "terms.py")


def integrated_model_key(shape, priors: Priors, *, machine: str | None = None) -> str:
    """SHA-256 of what the integrated model's compiled code depends on: the cohort's shape
    (:class:`~pkmodel.response.integrated.ModelShape`), the priors, the sources, the kernel
    version, the library versions and the CPU; never the data."""
    if machine is None:
        machine = cache_location()[1]
    here = Path(__file__).parent
    return _cache_key([here / name for name in _INTEGRATED_SOURCES],
                      f"integrated, kernel {_kernel_version()}", shape, priors, machine=machine)


def integrated_sampler_model(design: Design, priors: Priors, *, patient_effect: bool,
                             structure: Structure) -> SamplerModel:
    """The compiled integrated model (:mod:`pkmodel.response.integrated`) reading ``design``.

    Compiled once per :class:`~pkmodel.response.integrated.ModelShape` and priors, kept in
    memory and on disk, and pointed at each cohort's arrays with
    :meth:`~pkmodel.model_cache.SamplerModel.with_data`: a cohort of a shape compiled before
    (in any process) is served without a compile; one of a new shape is compiled, with one
    logged line that says so.
    """
    from pkmodel.response.integrated import model_inputs, model_shape

    shape = model_shape(design, patient_effect=patient_effect, structure=structure)
    arrays = model_inputs(design, shape, structure)
    directory, machine = cache_location()
    key = integrated_model_key(shape, priors, machine=machine)

    def compile_now():
        import logging

        logging.getLogger("pkmodel").info(
            "compiling the remission model for a cohort of a new shape (%d patient slots, %d "
            "centres, %d months, %d strategies)", shape.patient_slots, shape.n_groups,
            shape.n_months, shape.n_strategies)
        return _compile_integrated(shape, arrays, priors, structure)

    return load_or_compile(key, directory, compile_now).with_data(arrays)


def _compile_integrated(shape, arrays, priors, structure):
    """nutpie's compiled integrated model and its free variables with their sizes."""
    import warnings

    import nutpie

    from pkmodel.response.integrated import build_integrated_model
    from pkmodel.sampling import exact_arithmetic

    model = build_integrated_model(shape, arrays, priors, structure=structure)
    with warnings.catch_warnings(), exact_arithmetic():
        warnings.simplefilter("ignore", UserWarning)
        compiled = nutpie.compile_pymc_model(model, jitter_rvs=set())
    return compiled, free_coordinates(model, compiled)
