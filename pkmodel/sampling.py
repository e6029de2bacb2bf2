"""The one sampling run of every NUTS fit, and what keeps it honest.

:func:`sample_nuts` is the only place pkmodel calls the sampler (``nutpie.sample``): the
remission model, population PK and individual PK estimation all sample through it, with their
settings checked once (:class:`SamplerSettings`).

Both nutpie and PyMC's own samplers catch ``KeyboardInterrupt`` (Ctrl-C) and return the draws made
so far, as if sampling had finished: a chain may be short or filled with NaN. pkmodel must not
check, summarise or save such a trace. :func:`interrupt_guard` notes every SIGINT that arrives
while sampling, so the interrupt can be raised again once the sampler has returned, and
:func:`check_complete` rejects a trace with fewer chains or draws than asked for, or with
non-finite draws, whatever the reason.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pkmodel.errors import SamplingError, SpecificationError

__all__ = [
    "DEFAULT_RANDOM_SEED",
    "POPULATION_DRAWS",
    "InterruptState",
    "SamplerSettings",
    "centring_exponent",
    "check_complete",
    "collector_paused",
    "exact_arithmetic",
    "interrupt_guard",
    "resolve_seed",
    "sample_nuts",
    "sampler_failure",
]

#: The seed used when none is given: the same input gives the same output by default. Pass
#: another ``random_seed`` (``--seed`` on the command line) for an independent replicate.
DEFAULT_RANDOM_SEED = 0

#: Posterior draws per chain of a population PK fit by default (``pkmodel pk fit --draws``). The
#: weakest-informed parameter of a sparse design (the BSV of V1 from 2.5 samples a patient)
#: reached the gate's ESS of 400 with 2,000 draws where 1,000 often fell short
#: (benchmarks/README.md, coverage_popk); tuning takes most of the time, so the extra draws cost
#: about a fifth more.
POPULATION_DRAWS = 2000


def centring_exponent(information, low: float, high: float) -> np.ndarray:
    """The exponent ``w`` of partially non-centred random effects, ``eta = scale^w u``.

    Given its scale, an effect that its own data inform with Fisher information ``I`` has the
    spread ``(I + 1 / scale^2)^(-1/2)``, and the sampler's coordinate ``u`` that spread over
    ``scale^w``. ``w`` is the slope of the log spread against ``log scale`` between ``low`` and
    ``high``, so that the spread of ``u`` is the same at both ends of that plausible range of
    the scale: 1 (non-centred) where the data say little, towards 0 (centred) where they say
    much. Used by the remission model's centre effects and the population PK model's etas.

    Parameters
    ----------
    information : float or array
        ``I`` of each effect (``1 / se^2``).
    low, high : float
        The ends of the range of the scale.

    Returns
    -------
    numpy.ndarray
        ``w`` in [0, 1], the shape of ``information``; 1 where it cannot be computed (an empty
        range, a non-finite information).
    """
    information = np.asarray(information, dtype=float)
    if not high > low:
        return np.ones_like(information)
    with np.errstate(invalid="ignore"):
        log_spread = [-0.5 * np.log(information + 1.0 / end**2) for end in (low, high)]
        w = (log_spread[1] - log_spread[0]) / np.log(high / low)
    return np.where(np.isfinite(w), np.clip(w, 0.0, 1.0), 1.0)


def resolve_seed(random_seed: int | None) -> int:
    """The one seed of every random number of a call: ``None`` gives :data:`DEFAULT_RANDOM_SEED`.

    Raises
    ------
    SpecificationError
        For anything but ``None`` or a non-negative integer.
    """
    if random_seed is None:
        return DEFAULT_RANDOM_SEED
    if isinstance(random_seed, bool) or not isinstance(random_seed, int | np.integer) \
            or random_seed < 0:
        raise SpecificationError(f"random_seed must be a non-negative integer, not "
                                 f"{random_seed!r}")
    return int(random_seed)


@dataclass
class InterruptState:
    """Whether a SIGINT arrived inside :func:`interrupt_guard`."""

    interrupted: bool = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block, then restore its state.

    A fit imports the sampler and its dependencies and converts thousands of draws into xarray
    objects: millions of allocations that trigger full collections over every module loaded so
    far, a few tenths of a second in all, for garbage that does not exist yet. Reference
    counting still frees everything that is not in a cycle; cycles made inside the block are
    collected at the next collection after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def exact_arithmetic() -> Iterator[None]:
    """Compile PyTensor's Numba code without fast-math flags inside the block.

    PyTensor compiles with reassociation and approximate functions by default. LLVM may then
    vectorise a sum differently with the alignment of its input, so two processes computed
    the same log density differently in the last bit at some points, and NUTS trajectories of
    the same seed parted after a few hundred draws: a model compiled in one process and
    loaded from the disk cache in another gave other draws. Every model pkmodel samples is
    compiled inside this block, so that PyTensor's own cache of compiled functions never mixes
    the two kinds either.
    """
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=False):
        yield


@contextlib.contextmanager
def interrupt_guard() -> Iterator[InterruptState]:
    """Record SIGINT while the block runs, then re-raise it as ``KeyboardInterrupt``.

    The previous SIGINT handler still runs (by default it raises ``KeyboardInterrupt``, which the
    sampler catches to stop early). When the block ends after a SIGINT, ``KeyboardInterrupt`` is
    raised, even if the code inside swallowed it or failed with another error because of it, and
    a ``KeyboardInterrupt`` that Python could only report as "Exception ignored" is not printed.
    Outside the main thread, or when SIGINT is ignored or left to the system default, signals
    cannot be (or are not) handled by Python and the guard does nothing; :func:`check_complete`
    still catches a truncated trace.

    Examples
    --------
    >>> with interrupt_guard() as state:  # doctest: +SKIP
    ...     tree = pm.sample(...)          # Ctrl-C here raises KeyboardInterrupt on exit
    """
    state = InterruptState()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield state
        return

    def record(signum, frame) -> None:
        state.interrupted = True
        previous(signum, frame)

    previous_hook = sys.unraisablehook

    def quiet_interrupt(unraisable) -> None:
        # A KeyboardInterrupt raised in a callback Python cannot propagate from (ctypes, as in
        # Numba's object cache) would be printed as "Exception ignored ... Traceback": it is
        # the Ctrl-C already recorded, which is raised again below.
        if not (state.interrupted and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            previous_hook(unraisable)

    signal.signal(signal.SIGINT, record)
    sys.unraisablehook = quiet_interrupt
    try:
        yield state
    except BaseException as err:
        # A SIGINT inside a compiler callback (Numba's object cache, run from ctypes) is
        # swallowed there and surfaces as some other error (``RuntimeError: no compiled object
        # yet``): after a SIGINT, whatever the block raised is the interruption.
        if state.interrupted and not isinstance(err, KeyboardInterrupt):
            raise KeyboardInterrupt from err
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
    if state.interrupted:
        raise KeyboardInterrupt


def sampler_failure(err: BaseException) -> str:
    """The first line of a sampler's error, without the Rust backtrace nutpie appends."""
    return " ".join(str(err).split("Stack backtrace")[0].split())


def check_complete(tree, *, draws: int, chains: int) -> None:
    """Raise :class:`SamplingError` unless the posterior has every chain and draw, all computed.

    Parameters
    ----------
    tree : xarray.DataTree
        What the sampler returned (or an object with a ``posterior`` attribute).
    draws, chains : int
        What was asked for.
    """
    fix = "run the fit again (nothing was saved)"
    if hasattr(tree, "children"):
        post = tree["posterior"].to_dataset() if "posterior" in tree.children else None
    else:  # an InferenceData-like object
        post = getattr(tree, "posterior", None)
    if post is None:
        raise SamplingError(f"the sampler returned no posterior; {fix}")
    got_chains, got_draws = post.sizes.get("chain", 0), post.sizes.get("draw", 0)
    if got_chains != chains or got_draws != draws:
        raise SamplingError(
            f"sampling stopped early: {got_chains} chains x {got_draws} draws of the "
            f"{chains} x {draws} asked for (interrupted?); {fix}")
    for name, da in post.data_vars.items():
        values = np.asarray(da.values)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise SamplingError(
                f"sampling stopped early or failed: {bad} non-finite draws of '{name}' (a chain "
                f"that did not finish); {fix}")
    # nutpie stores zeros, with only a message on stderr, when it cannot compute the stored
    # values of a draw: a draw where every stored value is exactly 0 is such a failure.
    flat = [np.asarray(da.values, dtype=float).reshape(got_chains, got_draws, -1)
            for da in post.data_vars.values() if da.dtype.kind in "fiu"]
    if flat and (np.concatenate(flat, axis=-1) == 0).all(axis=-1).any():
        raise SamplingError(f"the sampler could not compute the stored values of some draws "
                            f"(all zero); {fix}")


@dataclass(frozen=True)
class SamplerSettings:
    """The checked settings of one NUTS run: what every fit asks of the sampler.

    Built (and so checked) before any data are read or any model compiled, so that a bad
    option is refused at once.

    Parameters
    ----------
    draws, tune, chains : int
        Posterior draws and tuning steps per chain (``tune`` may be 0: the sampler then gets
        one step, and the convergence gate says that tuning was too short), and chains.
    cores : int, optional
        Chains run in parallel on this many cores; ``None`` (default): all, up to ``chains``.
        Resolved to a number here. The same seed gives the same draws whatever the number.
    target_accept : float, default 0.9
        NUTS target acceptance rate, in [0.5, 1).
    random_seed : int, optional
        The one seed (:func:`resolve_seed`: ``None`` gives :data:`DEFAULT_RANDOM_SEED`).
    progressbar : bool, default False
        Show the sampler's progress bar.

    Raises
    ------
    SpecificationError
        Naming the setting and the values it takes.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int | None = None
    target_accept: float = 0.9
    random_seed: int | None = None
    progressbar: bool = False

    def __post_init__(self) -> None:
        counts = [("draws", 1), ("tune", 0), ("chains", 1)]
        if self.cores is not None:
            counts.append(("cores", 1))
        for name, low in counts:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise SpecificationError(f"{name} must be an integer >= {low}, not {value!r}")
            object.__setattr__(self, name, int(value))
        target = self.target_accept
        if isinstance(target, bool) or not isinstance(target, int | float | np.number) \
                or not 0.5 <= float(target) < 1.0:
            raise SpecificationError(f"target_accept must be in [0.5, 1), not {target!r}")
        object.__setattr__(self, "target_accept", float(target))
        object.__setattr__(self, "random_seed", resolve_seed(self.random_seed))
        object.__setattr__(self, "cores", min(self.chains, self.cores or os.cpu_count() or 1))
        object.__setattr__(self, "progressbar", bool(self.progressbar))


def sample_nuts(compile_model: Callable[[], Any], settings: SamplerSettings, *,
                failure_hint: str, drop: Iterable[str] = (),
                options: Mapping[str, Any] | None = None):
    """Sample a compiled model with nutpie: the one sampling run of every pkmodel fit.

    With Python's cyclic garbage collector paused (:func:`collector_paused`) and under
    :func:`interrupt_guard` (Ctrl-C raises, never returns a partial trace), the model is
    compiled (or loaded from the cache) by ``compile_model`` and sampled, the trace checked
    complete (:func:`check_complete`), and the sampler's own coordinates dropped from the
    posterior: the unconstrained values (``*__``) and the names in ``drop`` (coordinates of a
    reparametrisation the caller stores under the model's own names).

    Parameters
    ----------
    compile_model : callable
        ``compile_model()`` returns nutpie's compiled model (``nutpie.compile_pymc_model``, or
        ``SamplerModel.nutpie_model()`` of :mod:`pkmodel.model_cache`).
    settings : SamplerSettings
        Draws, tuning, chains, cores, target acceptance, seed, progress bar.
    failure_hint : str
        What to check when the sampler fails (no finite starting point, ...), e.g. "check the
        data for extreme values and the priors for very wide or narrow scales": the message is
        ``the sampler failed (REASON); HINT, then fit again (nothing was saved)``.
    drop : iterable of str
        Further posterior variables that are the sampler's coordinates, not the model's.
    options : mapping, optional
        Further keyword arguments of ``nutpie.sample`` (e.g. ``maxdepth``).

    Returns
    -------
    xarray.DataTree
        What nutpie returns (``posterior``, ``sample_stats``, ...), the posterior without the
        sampler's coordinates and with the attribute ``tuning_steps`` (the tuning steps asked
        for per chain; the convergence gate blames too few of them first).

    Raises
    ------
    SamplingError
        The sampler failed, or returned fewer chains or draws than asked for, or draws it could
        not compute.
    KeyboardInterrupt
        On Ctrl-C during sampling.
    """
    drop = set(drop)
    with collector_paused():
        import nutpie

        # The sampler swallows Ctrl-C and returns a short trace: re-raise it, never keep it
        # (also when it comes while the model is compiled or loaded from the cache).
        with interrupt_guard():
            compiled = compile_model()
            try:
                tree = nutpie.sample(
                    compiled, draws=settings.draws, tune=max(settings.tune, 1),
                    chains=settings.chains, cores=settings.cores, seed=settings.random_seed,
                    target_accept=settings.target_accept, save_warmup=False,
                    progress_bar=settings.progressbar, **dict(options or {}))
            except RuntimeError as err:  # nutpie's errors, e.g. no finite starting point
                raise SamplingError(
                    f"the sampler failed ({sampler_failure(err)}); {failure_hint}, then fit "
                    "again (nothing was saved)") from err
        check_complete(tree, draws=settings.draws, chains=settings.chains)
        posterior = tree["posterior"].to_dataset()
        coordinates = [v for v in posterior.data_vars if str(v).endswith("__") or v in drop]
        tree["posterior"] = posterior.drop_vars(coordinates).assign_attrs(
            tuning_steps=settings.tune)
    return tree
