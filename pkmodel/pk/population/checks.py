"""Model checks of a population PK fit: conditional weighted residuals and the pcVPC.

* :func:`cwres`: NONMEM's conditional weighted residuals (FOCE with interaction, Hooker et al.
  2007), linearised around each subject's posterior-mean random effects at the posterior medians
  of the population parameters;
* :func:`pc_vpc`: the prediction-corrected visual predictive check (Bergstrand et al. 2011) as
  R's ``vpc`` and PsN draw it: replicates of the dataset simulated from the posterior (a
  posterior draw, new random effects for every subject, correlated within each BSV block as
  that draw says, residual error), binned by time (each distinct time, bins of equal count,
  of equal width, or the user's edges), each value multiplied by ``PRED_bin / PRED`` (the
  median population prediction of its bin over its own), and the 5th, 50th and 95th
  percentiles of the observed values set against the intervals of the same percentiles over
  the replicates, optionally in strata of a covariate.

Values below the LLOQ (a censored VPC, as R's ``vpc`` with ``lloq``): on both sides they stay
in the ranks, below every quantified value, so that the percentiles are those of all the
values; a percentile that falls among them is not drawn (its value is unknown), and the
fraction of values below the LLOQ in each bin, observed and simulated, is a check of its own.
Pre-dose samples (no dose before them: PRED 0, which no prediction correction can scale) are
left out of the pcVPC and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

__all__ = ["BINNINGS", "PCVPC", "cwres", "pc_vpc"]

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
    correlations) and ``R`` the residual variance at ``f(eta_hat)``. With inter-occasion
    variability the occasion effects are linearised the same way: ``f`` is evaluated at their
    posterior means ``kappa_hat`` too, ``G_p kappa_hat`` joins ``G eta_hat``, and each pair of
    observations of one occasion adds ``omega_iov_p^2 G_pj G_pk`` to ``L L'`` (a kappa moves
    its occasion's observations as the eta of the same parameter does).
    Under the model they are about independent standard normal.
    """
    spec, data = fit.spec, fit.data
    arrays = model_data(spec, data)
    post = fit.posterior
    eta_hat = {p: post[f"eta_{p}"].mean(dim=("chain", "draw")).values
               for p in spec.bsv_parameters}
    base = _population_values(fit, eta_hat)
    base |= {f"kappa_{p}": post[f"kappa_{p}"].mean(dim=("chain", "draw")).values
             for p in spec.iov_parameters}

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
    med = _medians(fit)
    iov = [(gmat[:, spec.bsv_parameters.index(p)] if p in spec.bsv_parameters else
            (f(base | {f"log_tv_{p}": base[f"log_tv_{p}"] + step})
             - f(base | {f"log_tv_{p}": base[f"log_tv_{p}"] - step})) / (2 * step),
            med[f"omega_iov_{p}"] ** 2,
            base[f"kappa_{p}"].ravel()[arrays["obs_kappa_index"]]) for p in spec.iov_parameters]
    out = np.full(data.n_observations, np.nan)
    for i in range(data.n_subjects):
        rows = np.flatnonzero((data.obs_subject == i) & (data.obs_cens == 0))
        if rows.size == 0:
            continue
        g = gmat[rows]
        cov = g @ omega @ g.T + np.diag(r[rows])
        centred = data.obs_value_ug_ml[rows] - pred[rows] + np.sum(g * eta_obs[rows], axis=1)
        if iov:
            same = data.obs_occasion[rows][:, None] == data.obs_occasion[rows][None, :]
            for g_p, var, kappa in iov:
                cov = cov + var * np.outer(g_p[rows], g_p[rows]) * same
                centred = centred + g_p[rows] * kappa[rows]
        out[rows] = np.linalg.solve(np.linalg.cholesky(cov), centred)
    return out


@dataclass(frozen=True)
class PCVPC:
    """A prediction-corrected visual predictive check.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per stratum, time bin and percentile: ``stratum``, ``bin``, ``time_days``
        (median time of the bin), ``t_low_days``, ``t_high_days`` (its edges), ``percentile``
        (5, 50, 95), ``observed`` (of the prediction-corrected observations; NaN when it falls
        below the LLOQ), ``lower``, ``median``, ``upper`` (the ``ci_prob`` interval and median
        of that percentile over the replicates, below-LLOQ ones counted as such: NaN where
        most replicates put it below the LLOQ), ``inside``, ``n_observed``.
    observed : pandas.DataFrame
        The prediction-corrected observations above the LLOQ: ``stratum``, ``time_days``,
        ``pc_dv_ug_ml``, ``bin``.
    ci_prob : float
    n_replicates : int
    lloq_ug_ml : float or None
        The LLOQ of the censored VPC (None: no value was below one).
    blq : pandas.DataFrame
        With an LLOQ, one row per stratum and bin: ``stratum``, ``bin``, ``time_days``,
        ``observed`` (fraction below the LLOQ), ``lower``, ``median``, ``upper`` (over the
        replicates), ``inside``, ``n``; empty without.
    n_predose : int
        Pre-dose samples left out (PRED 0).
    stratify : str or None
        The covariate of the strata.
    """

    table: pd.DataFrame
    observed: pd.DataFrame
    ci_prob: float
    n_replicates: int
    lloq_ug_ml: float | None
    blq: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_predose: int = 0
    stratify: str | None = None

    @property
    def fraction_inside(self) -> float:
        """Share of the observed percentile points inside their simulated intervals."""
        rows = self.table.dropna(subset=["observed", "lower"])
        return float(rows["inside"].mean()) if len(rows) else float("nan")


#: How :func:`pc_vpc` bins time.
BINNINGS = ("auto", "quantile", "time")
_CENSORED = -1e300  # below every value: a censored value's place in the ranks


def _bin_edges(times: np.ndarray, bins, n_bins: int) -> np.ndarray:
    """Edges (days) of the time bins: ``auto`` (each distinct time when there are at most
    ``n_bins``, else ``quantile``), ``quantile`` (equal counts), ``time`` (equal width), or the
    edges given."""
    lo, hi = float(times.min()), float(times.max())
    if not isinstance(bins, str):
        edges = np.asarray(bins, dtype=float)
        return np.concatenate([[min(lo, edges[0])], edges[1:-1], [max(hi, edges[-1])]])
    unique = np.unique(times)
    if bins == "auto" and unique.size <= n_bins:
        mids = (unique[1:] + unique[:-1]) / 2
        return np.concatenate([[lo], mids, [hi]])
    if bins == "time":
        return np.linspace(lo, hi, n_bins + 1)
    return np.unique(np.quantile(times, np.linspace(0, 1, n_bins + 1)))


def _assign(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, times, side="right") - 1, 0, edges.size - 2)


def _check_options(fit, *, n_replicates, n_bins, ci_prob, bins, stratify, days_per_unit):
    """Refuse a pcVPC option that cannot apply, before any simulation."""
    if not 0 < ci_prob < 1:
        raise SpecificationError(f"ci_prob must be between 0 and 1, not {ci_prob!r}")
    if isinstance(n_replicates, bool) or int(n_replicates) < 20:
        raise SpecificationError(f"n_replicates must be at least 20, not {n_replicates!r}")
    if isinstance(n_bins, bool) or int(n_bins) < 1:
        raise SpecificationError(f"n_bins must be at least 1, not {n_bins!r}")
    if isinstance(bins, str):
        if bins not in BINNINGS:
            raise SpecificationError(f"bins must be one of {', '.join(BINNINGS)} or a list of "
                                     f"bin edges, not {bins!r}")
        edges = None
    else:
        try:
            edges = np.asarray(bins, dtype=float) * days_per_unit
        except (TypeError, ValueError):
            raise SpecificationError(f"bin edges must be numbers, not {bins!r}") from None
        if (edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges))
                or np.any(np.diff(edges) <= 0)):
            raise SpecificationError(
                f"bin edges must be at least two increasing finite times (in the "
                f"specification's {fit.spec.time_unit}s), not {list(np.ravel(bins))!r}")
    if stratify is not None and stratify not in fit.data.covariates:
        known = ", ".join(fit.data.covariates) or "none: the specification uses no covariate"
        raise SpecificationError(
            f"cannot stratify by {stratify!r}: the fit's data hold only the covariates its "
            f"specification uses ({known})")
    return edges


def _strata(fit, stratify: str | None) -> tuple[np.ndarray, list[str]]:
    """Each observation's stratum, and the strata's labels: each level of a covariate with at
    most 4 values, else at or below and above the median."""
    data = fit.data
    if stratify is None:
        return np.zeros(data.n_observations, dtype=int), ["all"]
    x = data.covariates[stratify][data.obs_subject]
    levels = np.unique(data.covariates[stratify])
    if levels.size <= 4:
        return np.searchsorted(levels, x), [f"{stratify} {v:g}" for v in levels]
    cut = float(np.median(data.covariates[stratify]))
    return (x > cut).astype(int), [f"{stratify} <= {cut:g}", f"{stratify} > {cut:g}"]


def _percentile(values: np.ndarray, q, axis: int = -1) -> np.ndarray:
    """Percentiles with censored values (:data:`_CENSORED`) in the ranks: NaN where one falls
    among them."""
    out = np.percentile(values, q, axis=axis)
    return np.where(out < _CENSORED / 1e10, np.nan, out)


def pc_vpc(fit, *, n_replicates: int = 200, n_bins: int = 8, ci_prob: float = 0.9,
           bins="auto", stratify: str | None = None,
           random_seed: int | None = None) -> PCVPC:
    """The prediction-corrected VPC of a population fit.

    Parameters
    ----------
    fit : PopulationFit
        The fit; its dataset's design (doses, times, covariates) is replicated.
    n_replicates : int, default 200
        Simulated replicates of the dataset, each from a posterior draw (evenly spread).
    n_bins : int, default 8
        Time bins of ``"auto"``, ``"quantile"`` and ``"time"``.
    ci_prob : float, default 0.9
        Width of the simulated intervals of each percentile.
    bins : {"auto", "quantile", "time"} or sequence of float, default "auto"
        ``auto``: each distinct time its own bin when there are at most ``n_bins`` of them,
        else ``quantile``; ``quantile``: bins of about equal counts (R ``vpc``'s ``"data"``);
        ``time``: equal widths; or the bin edges, in the specification's time unit.
    stratify : str, optional
        A covariate of the fit's data (one the specification uses): a panel per level (at most
        4 levels), or below and above its median.
    random_seed : int, optional
        Seed of the new random effects and residual errors.

    Returns
    -------
    PCVPC

    Raises
    ------
    SpecificationError
        An option that cannot apply (checked before any simulation).
    """
    from pkmodel.pk.nonmem import _TIME_UNITS

    spec, data = fit.spec, fit.data
    edges_given = _check_options(fit, n_replicates=n_replicates, n_bins=n_bins,
                                 ci_prob=ci_prob, bins=bins, stratify=stratify,
                                 days_per_unit=_TIME_UNITS[spec.time_unit])
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
              (*(f"omega_{p}" for p in spec.bsv_parameters), *spec.correlation_names,
               *(f"omega_iov_{p}" for p in spec.iov_parameters))}
    draws |= random_etas(spec, scales, rng, (pick.size, data.n_subjects), data.n_occasions)
    sim_pred = predict(spec, arrays, individual_log_parameters(spec, arrays, draws))
    sim = sim_pred + residual_sd(spec, sim_pred, draws) * rng.standard_normal(sim_pred.shape)
    stratum, labels = _strata(fit, stratify)
    used = pred > 0  # pre-dose samples (PRED 0) cannot be prediction-corrected
    below = data.obs_cens == 1
    lloq = float(np.median(data.obs_value_ug_ml[below])) if below.any() else None
    sim_below = sim < lloq if lloq is not None else np.zeros(sim.shape, dtype=bool)
    times = data.obs_time_days
    lo, hi = 100 * (1 - ci_prob) / 2, 100 * (1 + ci_prob) / 2
    rows, blq_rows, kept = [], [], []
    ratio = np.ones_like(pred)
    bin_of = np.full(data.n_observations, -1)
    for s, label in enumerate(labels):
        members = used & (stratum == s)
        if not members.any():
            continue
        edges = (_bin_edges(times[members], bins, int(n_bins)) if edges_given is None
                 else _bin_edges(times[members], edges_given, int(n_bins)))
        which = _assign(times, edges)
        for b in np.unique(which[members]):
            inbin = members & (which == b)
            bin_of[inbin] = b
            ratio[inbin] = np.median(pred[inbin]) / pred[inbin]
            pc_obs = np.where(below[inbin], _CENSORED, data.obs_value_ug_ml[inbin] *
                              ratio[inbin])
            pc_obs = pc_obs[data.obs_cens[inbin] != -1]
            pc_sim = np.where(sim_below[:, inbin], _CENSORED, sim[:, inbin] * ratio[inbin])
            sim_q = _percentile(pc_sim, _PERCENTILES, axis=1)  # (3, replicates)
            where = {"stratum": label, "bin": int(b),
                     "time_days": float(np.median(times[inbin])),
                     "t_low_days": float(edges[b]), "t_high_days": float(edges[b + 1])}
            for k, q in enumerate(_PERCENTILES):
                value = float(_percentile(pc_obs, q)) if pc_obs.size else np.nan
                reps = sim_q[k]
                # the interval's bounds among the replicates, a censored one lowest
                low, mid, high = _percentile(np.where(np.isnan(reps), _CENSORED, reps),
                                             [lo, 50, hi])
                rows.append(where | {
                    "percentile": q, "observed": value, "lower": float(low),
                    "median": float(mid), "upper": float(high),
                    "inside": bool((np.isnan(low) or low <= value) and value <= high)
                    if np.isfinite(value) and np.isfinite(high) else False,
                    "n_observed": int(np.sum(pc_obs > _CENSORED))})
            if lloq is not None:
                frac_sim = sim_below[:, inbin].mean(axis=1)
                f_lo, f_mid, f_hi = np.percentile(frac_sim, [lo, 50, hi])
                observed = float(below[inbin].mean())
                blq_rows.append(where | {"observed": observed, "lower": float(f_lo),
                                         "median": float(f_mid), "upper": float(f_hi),
                                         "inside": bool(f_lo <= observed <= f_hi),
                                         "n": int(inbin.sum())})
        kept.append(members & (data.obs_cens == 0))
    keep = np.any(kept, axis=0) if kept else np.zeros(data.n_observations, dtype=bool)
    labels_of = np.asarray(labels, dtype=object)[stratum]
    observed = pd.DataFrame({"stratum": labels_of, "time_days": times,
                             "pc_dv_ug_ml": data.obs_value_ug_ml * ratio, "bin": bin_of})[keep]
    return PCVPC(pd.DataFrame(rows), observed.reset_index(drop=True), float(ci_prob),
                 int(n_replicates), lloq, pd.DataFrame(blq_rows), int(np.sum(~used)),
                 stratify)
