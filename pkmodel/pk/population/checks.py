"""Model checks of a population PK fit: conditional weighted residuals and the pcVPC.

* :func:`cwres`: NONMEM's conditional weighted residuals (FOCE with interaction, Hooker et al.
  2007), linearised around each subject's posterior-mean random effects at the posterior medians
  of the population parameters;
* :func:`pc_vpc`: the prediction-corrected visual predictive check (Bergstrand et al. 2011):
  replicates of the dataset simulated from the posterior (a posterior draw, new random effects
  for every subject, correlated within each BSV block as that draw says, residual error),
  binned by time, each value multiplied by ``PRED_bin / PRED`` (the median population
  prediction of its bin over its own), and the 5th, 50th and 95th percentiles of the observed
  values set against the 90 % intervals of the same percentiles over the replicates.

Values below the LLOQ: the observed ones are left out of the percentiles, and so are the
simulated values below the same limit, so that both sides describe the values above the LLOQ.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkmodel.errors import SpecificationError
from pkmodel.pk.population.build import model_data
from pkmodel.pk.population.equations import (
    individual_log_parameters,
    omega_matrix,
    predict,
    random_etas,
    residual_sd,
)
from pkmodel.sampling import resolve_seed

__all__ = ["PCVPC", "cwres", "pc_vpc"]

_PERCENTILES = (5.0, 50.0, 95.0)


def _medians(fit) -> dict:
    post = fit.posterior
    return {k: float(np.median(v.values)) for k, v in post.data_vars.items()
            if "subject" not in v.dims}


def _population_values(fit, eta: dict | None = None) -> dict:
    med = _medians(fit)
    values = {k: v for k, v in med.items() if k.startswith(("log_tv_", "theta_", "sigma_"))}
    n = fit.data.n_subjects
    values |= {f"eta_{p}": (np.zeros(n) if eta is None else eta[p])
               for p in fit.spec.bsv_parameters}
    return values


def cwres(fit, step: float = 1e-4) -> np.ndarray:
    """Conditional weighted residuals of every observation (NaN for censored ones).

    For each subject, with ``f(eta)`` its predictions, ``eta_hat`` the posterior mean of its
    random effects and ``G = df/deta`` at ``eta_hat`` (central differences): ``CWRES = L^-1 (y -
    f(eta_hat) + G eta_hat)``, ``L L' = G Omega G' + R(eta_hat)``, with the population
    parameters at their posterior medians (``Omega`` the full covariance of the etas: each BSV
    block's ``omega_p omega_q corr_p_q`` off the diagonal, from the medians of the omegas and
    correlations) and ``R`` the residual variance at ``f(eta_hat)``.
    Under the model they are about independent standard normal.
    """
    spec, data = fit.spec, fit.data
    arrays = model_data(spec, data)
    post = fit.posterior
    eta_hat = {p: post[f"eta_{p}"].mean(dim=("chain", "draw")).values
               for p in spec.bsv_parameters}
    base = _population_values(fit, eta_hat)

    def f(values: dict) -> np.ndarray:
        return predict(spec, arrays, individual_log_parameters(spec, arrays, values))

    pred = f(base)
    grads = []
    for p in spec.bsv_parameters:
        up = base | {f"eta_{p}": eta_hat[p] + step}
        down = base | {f"eta_{p}": eta_hat[p] - step}
        grads.append((f(up) - f(down)) / (2 * step))
    gmat = np.stack(grads, axis=1) if grads else np.zeros((data.n_observations, 0))
    omega = omega_matrix(spec, _medians(fit))
    r = residual_sd(spec, pred, base) ** 2
    eta_obs = (np.stack([eta_hat[p][data.obs_subject] for p in spec.bsv_parameters], axis=1)
               if grads else gmat)
    out = np.full(data.n_observations, np.nan)
    for i in range(data.n_subjects):
        rows = np.flatnonzero((data.obs_subject == i) & (data.obs_cens == 0))
        if rows.size == 0:
            continue
        g = gmat[rows]
        cov = g @ omega @ g.T + np.diag(r[rows])
        centred = data.obs_value_ug_ml[rows] - pred[rows] + np.sum(g * eta_obs[rows], axis=1)
        out[rows] = np.linalg.solve(np.linalg.cholesky(cov), centred)
    return out


@dataclass(frozen=True)
class PCVPC:
    """A prediction-corrected visual predictive check.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per time bin and percentile: ``bin``, ``time_days`` (median time of the bin),
        ``percentile`` (5, 50, 95), ``observed`` (of the prediction-corrected observations),
        ``lower``, ``median``, ``upper`` (the ``ci_prob`` interval and median of that percentile
        over the replicates), ``inside``, ``n_observed``.
    observed : pandas.DataFrame
        The prediction-corrected observations: ``time_days``, ``pc_dv_ug_ml``, ``bin``.
    ci_prob : float
    n_replicates : int
    lloq_ug_ml : float or None
        The limit below which simulated values were left out (None: none were).
    """

    table: pd.DataFrame
    observed: pd.DataFrame
    ci_prob: float
    n_replicates: int
    lloq_ug_ml: float | None

    @property
    def fraction_inside(self) -> float:
        """Share of the observed percentile points inside their simulated intervals."""
        rows = self.table.dropna(subset=["observed"])
        return float(rows["inside"].mean()) if len(rows) else float("nan")


def _bins(times: np.ndarray, n_bins: int) -> np.ndarray:
    unique = np.unique(times)
    if unique.size <= n_bins:
        return np.searchsorted(unique, times)
    edges = np.unique(np.quantile(times, np.linspace(0, 1, n_bins + 1)))
    return np.clip(np.searchsorted(edges, times, side="right") - 1, 0, edges.size - 2)


def pc_vpc(fit, *, n_replicates: int = 200, n_bins: int = 8, ci_prob: float = 0.9,
           random_seed: int | None = None) -> PCVPC:
    """The prediction-corrected VPC of a population fit.

    Parameters
    ----------
    fit : PopulationFit
        The fit; its dataset's design (doses, times, covariates) is replicated.
    n_replicates : int, default 200
        Simulated replicates of the dataset, each from a posterior draw (evenly spread).
    n_bins : int, default 8
        Time bins (each distinct time its own bin when there are no more of them; otherwise
        bins of about equal counts).
    ci_prob : float, default 0.9
        Width of the simulated intervals of each percentile.
    random_seed : int, optional
        Seed of the new random effects and residual errors.

    Returns
    -------
    PCVPC
    """
    if not 0 < ci_prob < 1:
        raise SpecificationError(f"ci_prob must be between 0 and 1, not {ci_prob!r}")
    if isinstance(n_replicates, bool) or int(n_replicates) < 20:
        raise SpecificationError(f"n_replicates must be at least 20, not {n_replicates!r}")
    spec, data = fit.spec, fit.data
    rng = np.random.default_rng(resolve_seed(random_seed))
    arrays = model_data(spec, data)
    pred = predict(spec, arrays, individual_log_parameters(spec, arrays,
                                                           _population_values(fit)))
    post = fit.posterior.stack(sample=("chain", "draw"))
    n = post.sizes["sample"]
    pick = np.linspace(0, n - 1, int(n_replicates)).astype(int)
    names = [k for k in post.data_vars if k.startswith(("log_tv_", "theta_", "sigma_"))]
    draws = {k: post[k].values[pick][:, None] for k in names}
    scales = {k: post[k].values[pick][:, None] for k in
              (*(f"omega_{p}" for p in spec.bsv_parameters), *spec.correlation_names)}
    draws |= random_etas(spec, scales, rng, (pick.size, data.n_subjects))
    sim_pred = predict(spec, arrays, individual_log_parameters(spec, arrays, draws))
    sim = sim_pred + residual_sd(spec, sim_pred, draws) * rng.standard_normal(sim_pred.shape)
    lloq = None
    below = data.obs_cens == 1
    if below.any():
        lloq = float(np.median(data.obs_value_ug_ml[below]))
        sim = np.where(sim < lloq, np.nan, sim)
    bins = _bins(data.obs_time_days, int(n_bins))
    ratio = np.ones_like(pred)  # a pre-dose sample (predicted 0) is left uncorrected
    for b in np.unique(bins):
        members = bins == b
        positive = members & (pred > 0)
        if positive.any():
            ratio[positive] = np.median(pred[positive]) / pred[positive]
    keep = data.obs_cens == 0
    pc_obs = np.where(keep, data.obs_value_ug_ml * ratio, np.nan)
    pc_sim = sim * ratio
    lo, hi = 100 * (1 - ci_prob) / 2, 100 * (1 + ci_prob) / 2
    rows = []
    for b in np.unique(bins):
        members = bins == b
        observed = pc_obs[members]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-censored replicate bin
            sim_q = np.nanpercentile(pc_sim[:, members], _PERCENTILES, axis=1)
        for k, q in enumerate(_PERCENTILES):
            seen = observed[np.isfinite(observed)]
            value = float(np.percentile(seen, q)) if seen.size else np.nan
            reps = sim_q[k][np.isfinite(sim_q[k])]
            low, mid, high = (np.percentile(reps, [lo, 50, hi]) if reps.size
                              else (np.nan, np.nan, np.nan))
            rows.append({"bin": int(b), "time_days": float(np.median(
                data.obs_time_days[members])), "percentile": q, "observed": value,
                "lower": float(low), "median": float(mid), "upper": float(high),
                "inside": bool(low <= value <= high) if np.isfinite(value) else False,
                "n_observed": int(seen.size)})
    observed = pd.DataFrame({"time_days": data.obs_time_days, "pc_dv_ug_ml": pc_obs,
                             "bin": bins})[keep]
    return PCVPC(pd.DataFrame(rows), observed.reset_index(drop=True), float(ci_prob),
                 int(n_replicates), lloq)
