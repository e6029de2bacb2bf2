"""Convergence checks of a fit: R-hat, bulk and tail ESS, divergences, E-BFMI, tree depth.

The one gate of every model pkmodel samples (the remission model, population PK, individual PK
estimation by NUTS). PyMC 6 with
nutpie prints no convergence warnings, so pkmodel checks every fit itself. R-hat and
ESS come from ArviZ (``arviz_stats.rhat``, ``ess``), E-BFMI from ``bfmi``; tree-depth saturation
is read from the sampler's statistics (``maxdepth_reached`` in nutpie, ``reached_max_treedepth``
in PyMC's own NUTS).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Self

import numpy as np
import xarray as xr

__all__ = ["BFMI_MIN", "ESS_MIN", "RHAT_MAX", "TREEDEPTH_MAX_FRACTION", "TUNE_MIN",
           "Diagnostics", "combine_diagnostics", "compute_diagnostics"]

RHAT_MAX = 1.01
ESS_MIN = 400
# Energy Bayesian fraction of missing information: below 0.3 in a chain, the momentum
# resampling cannot move the sampler across the energy levels of the posterior (Betancourt
# 2016); the usual threshold of Stan and ArviZ.
BFMI_MIN = 0.3
# Trajectories cut short at the sampler's maximum tree depth: above 1% of transitions, NUTS is
# not exploring the posterior in the steps it was given (a sign of a badly scaled posterior).
TREEDEPTH_MAX_FRACTION = 0.01
# Below this many tuning steps a failed fit is blamed on tuning first: NUTS had too little time to
# adapt its step size and mass matrix (PyMC's and pkmodel's default is 1000).
TUNE_MIN = 300


@dataclass(frozen=True)
class Diagnostics:
    """Convergence summary of a fit.

    Attributes
    ----------
    max_rhat : float
        Largest rank-normalised split R-hat over all sampled parameters.
    min_ess_bulk, min_ess_tail : float
        Smallest bulk and tail effective sample sizes.
    divergences : int
        Number of divergent transitions after tuning.
    worst_parameter : str
        The parameter with the largest R-hat.
    converged : bool
        ``max_rhat <= 1.01``, both ESS >= 400 and no divergences.
    tuning_steps : int or None
        Tuning steps per chain, when the sampler recorded them.
    min_bfmi : float
        Smallest E-BFMI over chains (NaN when the sampler recorded no energy).
    treedepth_fraction : float
        Fraction of draws whose trajectory stopped at the maximum tree depth.
    worst_ess_parameter : str
        The parameter with the smallest bulk or tail ESS.
    n_chains : int or None
        Number of chains. R-hat compares chains: with one chain it is undefined (NaN) and the
        check fails with that reason.
    hierarchical_priors : str
        The model's hierarchical scale priors, named in the remedy for divergences.
    weakly_identified : tuple of str
        Variables the data hardly inform (their posterior about as wide as their prior): a
        check that fails on one of them says so, in place of "run longer".
    """

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    n_draws: int
    worst_parameter: str
    converged: bool
    tuning_steps: int | None = None
    min_bfmi: float = float("nan")
    treedepth_fraction: float = 0.0
    worst_ess_parameter: str = ""
    n_chains: int | None = None
    hierarchical_priors: str = "group_sd, patient_sd"
    weakly_identified: tuple[str, ...] = ()

    def _weak(self, name: str, remedy: str) -> str:
        """The remedy for a check that fails on ``name``: ``remedy``, unless the data hardly
        inform it."""
        if name.split("[", 1)[0] in self.weakly_identified:
            return (f"{name.split('[', 1)[0]} is weakly identified (the data leave its posterior "
                    "about as wide as its prior), which more draws will not fix: fix the "
                    "parameter, give it an informative prior, or add samples that inform it "
                    "(see the fit's notes)")
        return remedy

    def to_dict(self) -> dict:
        """The fields as a plain dict (plain JSON)."""
        return asdict(self) | {"weakly_identified": list(self.weakly_identified)}

    def __call__(self) -> Self:
        """Itself, with a :class:`DeprecationWarning`: ``fit.diagnostics`` is a property of
        every fit (pkmodel 0.5); pkmodel 0.4's remission fits had ``fit.diagnostics()``."""
        warnings.warn("fit.diagnostics is a property: drop the parentheses (fit.diagnostics() "
                      "is removed in a later version)", DeprecationWarning, stacklevel=2)
        return self

    def problems(self) -> list[str]:
        """What failed, each with the remedy."""
        out = []
        if not self.converged and self.tuning_steps is not None and self.tuning_steps < TUNE_MIN:
            out.append(f"only {self.tuning_steps} tuning steps per chain: the sampler had too "
                       f"little time to adapt; use tune >= {TUNE_MIN} (default 1000) first")
        if self.divergences:
            out.append(f"{self.divergences} divergent transitions: raise target_accept (e.g. 0.95 "
                       f"or 0.99) or tighten the hierarchical priors ({self.hierarchical_priors})")
        if self.single_chain:
            out.append(f"R-hat needs two or more chains to compare and this fit has "
                       f"{self.n_chains}: fit again with chains >= 2 (default 4)")
        elif not self.max_rhat <= RHAT_MAX:
            out.append(f"R-hat {self.max_rhat:.3f} > {RHAT_MAX} (worst: {self.worst_parameter}): "
                       + self._weak(self.worst_parameter,
                                    "run longer (more tune and draws) or more chains"))
        if not min(self.min_ess_bulk, self.min_ess_tail) >= ESS_MIN:
            worst = f" (worst: {self.worst_ess_parameter})" if self.worst_ess_parameter else ""
            out.append(f"effective sample size {min(self.min_ess_bulk, self.min_ess_tail):.0f} < "
                       f"{ESS_MIN}{worst}: "
                       + self._weak(self.worst_ess_parameter, "increase draws (and tune)"))
        if self.min_bfmi < BFMI_MIN:
            out.append(f"E-BFMI {self.min_bfmi:.2f} < {BFMI_MIN} in some chain: the sampler "
                       "moves poorly between energy levels (heavy tails or a funnel); tighten "
                       "the hierarchical priors or reparametrise")
        if self.treedepth_fraction > TREEDEPTH_MAX_FRACTION:
            out.append(f"{self.treedepth_fraction:.1%} of draws hit the maximum tree depth: the "
                       "posterior is badly scaled for NUTS; run longer tuning")
        return out

    @property
    def single_chain(self) -> bool:
        """Whether the fit has fewer than two chains, so that R-hat cannot be computed."""
        return self.n_chains is not None and self.n_chains < 2

    def rhat_text(self) -> str:
        """The largest R-hat to three decimals, or why there is none (one chain)."""
        if self.single_chain:
            return f"n/a ({self.n_chains} chain; R-hat needs two or more)"
        return f"{self.max_rhat:.3f}"

    def __str__(self) -> str:
        status = "PASS" if self.converged else "FAIL"
        text = (f"diagnostics {status}: max R-hat {self.rhat_text()}, min ESS bulk "
                f"{self.min_ess_bulk:.0f} / tail {self.min_ess_tail:.0f}, divergences "
                f"{self.divergences}, min E-BFMI {self.min_bfmi:.2f}, max tree depth reached "
                f"in {self.treedepth_fraction:.1%} of draws")
        return "\n".join([text, *(f"  - {p}" for p in self.problems())])


def compute_diagnostics(posterior: xr.Dataset, sample_stats: xr.Dataset,
                        var_names: list[str], *,
                        hierarchical_priors: str = "group_sd, patient_sd") -> Diagnostics:
    """Diagnostics over ``var_names`` of ``posterior``.

    ``hierarchical_priors`` names the model's hierarchical scale priors in the remedy for
    divergent transitions (default: the remission model's).
    """
    # ArviZ's statistics, imported here: importing ``arviz`` itself also loads its plotting
    # (matplotlib), which a command that only loads a fit does not need
    from arviz_stats import bfmi, ess, rhat

    post = posterior[var_names]
    rhats_ds = rhat(post)
    ess_bulk = ess(post, method="bulk")
    ess_tail = ess(post, method="tail")

    def flat(ds: xr.Dataset) -> dict[str, float]:
        with warnings.catch_warnings():  # all NaN with one chain: said by Diagnostics.problems
            warnings.simplefilter("ignore", RuntimeWarning)
            return {name: float(np.nanmax(da.values)) if da.size else np.nan
                    for name, da in ds.data_vars.items()}

    def per_variable_min(ds: xr.Dataset) -> dict[str, float]:
        return {name: float(np.nanmin(da.values)) for name, da in ds.data_vars.items()
                if da.size}

    rhats = flat(rhats_ds)
    worst = max(rhats, key=lambda k: rhats[k] if np.isfinite(rhats[k]) else np.inf)
    max_rhat = rhats[worst]
    divergences = int(sample_stats["diverging"].sum()) if "diverging" in sample_stats else 0
    bulk_by, tail_by = per_variable_min(ess_bulk), per_variable_min(ess_tail)
    bulk, tail = min(bulk_by.values()), min(tail_by.values())
    ess_low = {name: min(bulk_by[name], tail_by[name]) for name in bulk_by}
    worst_ess = min(ess_low, key=lambda k: ess_low[k] if np.isfinite(ess_low[k]) else -np.inf)
    min_bfmi = float("nan")
    if "energy" in sample_stats:
        min_bfmi = float(np.min(np.asarray(bfmi(sample_stats["energy"].to_dataset())["energy"])))
    depth_key = next((k for k in ("maxdepth_reached", "reached_max_treedepth")
                      if k in sample_stats), None)
    depth = float(np.mean(sample_stats[depth_key].values)) if depth_key else 0.0
    converged = bool(max_rhat <= RHAT_MAX and bulk >= ESS_MIN and tail >= ESS_MIN
                     and divergences == 0 and not min_bfmi < BFMI_MIN
                     and depth <= TREEDEPTH_MAX_FRACTION)
    n_draws = int(posterior.sizes["chain"] * posterior.sizes["draw"])
    tuning = posterior.attrs.get("tuning_steps")
    tuning = int(tuning) if tuning is not None and np.isfinite(float(tuning)) else None
    return Diagnostics(max_rhat, bulk, tail, divergences, n_draws, worst, converged, tuning,
                       min_bfmi, depth, worst_ess, int(posterior.sizes["chain"]),
                       hierarchical_priors)


def combine_diagnostics(parts: list[Diagnostics]) -> Diagnostics:
    """The gate of a fit pooled from independently sampled components (each its own posterior:
    the fits of K draws of the PK population, :mod:`pkmodel.response.pooling`).

    It passes when every component passes. The worst component's R-hat and smallest ESS are
    reported (with the parameter), the divergences of all components summed, the smallest
    E-BFMI and the largest tree-depth fraction kept; ``n_draws`` counts every draw and
    ``n_chains`` is the fewest chains of a component (R-hat compares the chains of one
    component, never chains of different components).
    """
    worst = max(parts, key=lambda d: d.max_rhat if np.isfinite(d.max_rhat) else np.inf)
    low = min(parts, key=lambda d: min(d.min_ess_bulk, d.min_ess_tail))
    tuning = {d.tuning_steps for d in parts}
    return Diagnostics(
        max_rhat=worst.max_rhat, min_ess_bulk=min(d.min_ess_bulk for d in parts),
        min_ess_tail=min(d.min_ess_tail for d in parts),
        divergences=sum(d.divergences for d in parts), n_draws=sum(d.n_draws for d in parts),
        worst_parameter=worst.worst_parameter, converged=all(d.converged for d in parts),
        tuning_steps=tuning.pop() if len(tuning) == 1 else None,
        min_bfmi=float(np.nanmin([d.min_bfmi for d in parts]))
        if any(np.isfinite(d.min_bfmi) for d in parts) else float("nan"),
        treedepth_fraction=max(d.treedepth_fraction for d in parts),
        worst_ess_parameter=low.worst_ess_parameter,
        n_chains=min((d.n_chains for d in parts if d.n_chains is not None), default=None),
        hierarchical_priors=parts[0].hierarchical_priors,
        weakly_identified=tuple(dict.fromkeys(n for d in parts for n in d.weakly_identified)))
