"""The compiled sampler model of a population PK fit (kept on disk by :mod:`pkmodel.model_cache`).

The hierarchical model (:func:`~pkmodel.pk.population.build.build_model`) is compiled for nutpie
once per specification and number of :func:`subject_slots`, with the data as inputs of the
compiled code: kept in memory and on disk and reused, with the new data, by later fits in any
process of the same specification on about as many subjects (:func:`sampler_model`). The key
(:func:`cache_key`) covers the specification without what only prepares the data, the number
of slots, the sources that build the model, the library versions and the CPU; the start of the
sampler on each dataset is computed here (:func:`initial_point`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import numpy as np

from pkmodel.model_cache import (
    SamplerModel,
    cache_location,
    free_coordinates,
    load_or_compile,
    model_key,
)
from pkmodel.pk.population.build import (
    build_model,
    censored_terms,
    individual_log_parameters,
    model_data,
)
from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.spec import PopulationSpec
from pkmodel.sampling import exact_arithmetic

__all__ = ["cache_key", "compile_model", "initial_point", "padded", "sampler_model",
           "subject_slots"]

_SOURCES = ("pk/population/build.py", "pk/population/compiled.py", "pk/population/spec.py",
            "pk/population/equations.py", "pk/structures.py", "pk/covariate_effects.py",
            "pk/residual.py", "pk/variability.py", "pk/units.py")


def compile_model(spec: PopulationSpec, data: PopulationData):
    """nutpie's compiled model of ``spec`` on ``data`` (``nutpie.compile_pymc_model``, no jitter:
    :func:`sampler_model` sets the start), and the model's free variables with their sizes."""
    import nutpie

    model = build_model(spec, data)
    with warnings.catch_warnings(), exact_arithmetic():
        warnings.simplefilter("ignore", UserWarning)
        compiled = nutpie.compile_pymc_model(model, jitter_rvs=set())
    return compiled, free_coordinates(model, compiled)


def initial_point(spec: PopulationSpec, arrays: dict,
                  model: SamplerModel) -> tuple[np.ndarray, np.ndarray]:
    """The initial point of the sampler on these data, and which coordinates are jittered.

    The population parameters start where PyMC starts them, at the centre of their priors
    (the compiled model's ``x0``, which the specification alone decides); each subject's
    ``u_<p>`` at its prior's centre given them, ``(1 - w_i) mean_i``, with ``mean_i`` the typical
    value with the covariate effects of that subject (what PyMC's initial point gives these
    data; tested). Only the random-effect coordinates ``u_<p>`` and ``z_<p>`` are jittered
    (``U(-1, 1)``), as a pharmacometrician starts NONMEM from initial estimates: jittered on the
    log scale too (a factor of up to e), one chain of four on the theophylline data started in
    the flip-flop region of the one-compartment oral model (absorption and elimination rates
    swapped for some subjects, which gives the same concentrations) and stayed there (R-hat
    1.53). The occasion effects ``z_iov_<p>`` start at 0 and are jittered likewise.
    """
    x0 = np.array(model.x0, dtype=float)
    jitter = np.zeros(model.n_dim, dtype=bool)
    where = model.slices()
    values: dict = {f"log_tv_{p}": np.log(spec.typical_per_day(p))
                    for p in spec.parameters}
    values |= {name: float(x0[sl][0]) for name, sl in where.items()
               if name.startswith(("log_tv_", "theta_"))}
    means = individual_log_parameters(
        spec, arrays, values | {f"eta_{q}": 0.0 for q in spec.bsv_parameters})
    for name, sl in where.items():
        if name.startswith("u_"):
            p = name.removeprefix("u_")
            x0[sl] = (1.0 - arrays[f"w_{p}"]) * np.broadcast_to(means[p], x0[sl].shape)
        jitter[sl] = name.startswith(("u_", "z_"))  # z_iov_ too
    return x0, jitter


def cache_key(spec: PopulationSpec, n_subjects: int, machine: str,
              events: tuple[str, ...] = (), time_varying: tuple[str, ...] = (),
              n_occasions: int = 0) -> str:
    """The cache key of the compiled model: the specification without what only prepares the
    data (units, LLOQ, BLQ method, infusion duration, a published prior's numbers), the number
    of subjects, the event arrays the data need (``pair_route_*``, ``pair_ss*``: NONMEM
    routes and steady states) and the censored terms (``censored_below``,
    ``censored_above``), the covariates that change within a subject (their
    per-observation terms are in the graph only then), the number of occasions of a model with
    inter-occasion variability, the sources that build the model, the
    library versions and the
    CPU."""
    described = {k: v for k, v in spec.to_dict().items() if k != "data"}
    described["model"].pop("infusion_hours", None)
    if "prior" in described:  # its numbers are data: only which quantities it informs counts
        described["prior"] = sorted(described["prior"]["terms"])
    root = Path(__file__).parents[2]
    return model_key([root / name for name in _SOURCES], json.dumps(described, sort_keys=True),
                     f"subjects={int(n_subjects)}"
                     + (f" time-varying={','.join(sorted(time_varying))}" if time_varying
                        else "")
                     + (f" occasions={int(n_occasions)}" if spec.iov_parameters else ""),
                     *(f"events={','.join(events)}",) * bool(events),
                     machine=machine)


def subject_slots(n_subjects: int) -> int:
    """How many subjects the compiled model of ``n_subjects`` has room for: the smallest
    ``ceil(2^(k/4))`` (k = 0, 1, ...) that holds them, at most 19 % more (12 -> 12, 60 -> 64,
    1,000 -> 1,024)."""
    k = 0
    while math.ceil(2 ** (k / 4)) < n_subjects:
        k += 1
    return max(math.ceil(2 ** (k / 4)), 1)


def padded(data: PopulationData, slots: int) -> PopulationData:
    """``data`` with subjects added up to ``slots``: no observations, no doses, the first
    subject's covariates (never used: nothing is predicted for them)."""
    extra = slots - data.n_subjects
    if extra <= 0:
        return data
    ids = tuple(f"(empty slot {i + 1})" for i in range(extra))
    covariates = {k: np.concatenate([v, np.repeat(v[:1], extra)])
                  for k, v in data.covariates.items()}
    return dataclasses.replace(data, subject_ids=data.subject_ids + ids, covariates=covariates)


def sampler_model(spec: PopulationSpec, data: PopulationData) -> SamplerModel:
    """The compiled model of ``spec`` for ``data``, and these data with their initial point.

    The model is compiled once per specification and number of :func:`subject_slots`, kept in
    memory and in the disk cache (:mod:`pkmodel.model_cache`), so that a dataset with a few
    subjects more or less is served by the same code. The slots beyond the subjects hold random
    effects without data, always non-centred (``w = 1``: ``u ~ Normal(0, 1)``, ``eta = omega
    u``): independent standard normals a posteriori, they leave the posterior of every other
    quantity exactly as it is, and are dropped from the draws.
    """
    full = padded(data, subject_slots(data.n_subjects))
    arrays = model_data(spec, full)  # the empty slots' weights are 1 (centring.py)
    directory, machine = cache_location()
    events = tuple(sorted(k for k in arrays if k.startswith(("pair_route_", "pair_ss"))))
    events += tuple(f"censored_{name}" for name in censored_terms(data))
    key = cache_key(spec, full.n_subjects, machine, events, tuple(data.obs_covariates),
                    data.n_occasions)
    model = load_or_compile(key, directory, lambda: compile_model(spec, full))
    x0, jitter = initial_point(spec, arrays, model)
    return model.with_data(arrays, x0=x0, jitter=jitter)
