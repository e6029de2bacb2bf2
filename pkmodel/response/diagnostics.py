"""Convergence checks of a fit: R-hat, bulk and tail ESS, divergences.

PyMC 6 with nutpie prints no convergence warnings, so pkmodel checks every fit itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import xarray as xr

__all__ = ["RHAT_MAX", "Diagnostics", "compute_diagnostics"]

RHAT_MAX = 1.01
ESS_MIN = 400
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
    """

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    n_draws: int
    worst_parameter: str
    converged: bool
    tuning_steps: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def problems(self) -> list[str]:
        """What failed, each with the remedy."""
        out = []
        if not self.converged and self.tuning_steps is not None and self.tuning_steps < TUNE_MIN:
            out.append(f"only {self.tuning_steps} tuning steps per chain: the sampler had too "
                       f"little time to adapt; use tune >= {TUNE_MIN} (default 1000) first")
        if self.divergences:
            out.append(f"{self.divergences} divergent transitions: raise target_accept (e.g. 0.95 "
                       "or 0.99) or tighten the hierarchical priors (group_sd, patient_sd)")
        if not self.max_rhat <= RHAT_MAX:
            out.append(f"R-hat {self.max_rhat:.3f} > {RHAT_MAX} (worst: {self.worst_parameter}): "
                       "run longer (more tune and draws) or more chains")
        if not min(self.min_ess_bulk, self.min_ess_tail) >= ESS_MIN:
            out.append(f"effective sample size {min(self.min_ess_bulk, self.min_ess_tail):.0f} < "
                       f"{ESS_MIN}: increase draws (and tune)")
        return out

    def __str__(self) -> str:
        status = "PASS" if self.converged else "FAIL"
        text = (f"diagnostics {status}: max R-hat {self.max_rhat:.3f}, min ESS bulk "
                f"{self.min_ess_bulk:.0f} / tail {self.min_ess_tail:.0f}, divergences "
                f"{self.divergences}")
        return "\n".join([text, *(f"  - {p}" for p in self.problems())])


def compute_diagnostics(posterior: xr.Dataset, sample_stats: xr.Dataset,
                        var_names: list[str]) -> Diagnostics:
    """Diagnostics over ``var_names`` of ``posterior``."""
    post = posterior[var_names]
    rhat = az.rhat(post)
    ess_bulk = az.ess(post, method="bulk")
    ess_tail = az.ess(post, method="tail")

    def flat(ds: xr.Dataset) -> dict[str, float]:
        return {name: float(np.nanmax(da.values)) if da.size else np.nan
                for name, da in ds.data_vars.items()}

    def flat_min(ds: xr.Dataset) -> float:
        return float(min(np.nanmin(da.values) for da in ds.data_vars.values() if da.size))

    rhats = flat(rhat)
    worst = max(rhats, key=lambda k: rhats[k] if np.isfinite(rhats[k]) else np.inf)
    max_rhat = rhats[worst]
    divergences = int(sample_stats["diverging"].sum()) if "diverging" in sample_stats else 0
    bulk, tail = flat_min(ess_bulk), flat_min(ess_tail)
    converged = bool(max_rhat <= RHAT_MAX and bulk >= ESS_MIN and tail >= ESS_MIN
                     and divergences == 0)
    n_draws = int(posterior.sizes["chain"] * posterior.sizes["draw"])
    tuning = posterior.attrs.get("tuning_steps")
    tuning = int(tuning) if tuning is not None and np.isfinite(float(tuning)) else None
    return Diagnostics(max_rhat, bulk, tail, divergences, n_draws, worst, converged, tuning)
