"""Prior and posterior predictive checks of the remission model, and its calibration.

The model's replicated outcomes are drawn by PyMC from the fitted (or prior) parameters, exactly
as the model generates data: a new patient effect per patient, then each assessment. They are
laid out one column per row of the cohort table, so that observed and replicated statistics
(remission rate per month and strategy, the drop in remission from low to high TL, the observed
rate among rows of similar predicted probability) are computed the same way.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy.stats import beta as beta_dist

__all__ = [
    "calibration_table",
    "jeffreys_interval",
    "plot_calibration",
    "plot_posterior_predictive",
    "plot_prior_predictive",
    "replicated_outcomes",
]


def _rows(remission: xr.DataArray, data: pd.DataFrame) -> np.ndarray:
    """Replicated outcomes as (sample, row of ``data``) from (chain, draw, patient, month)/obs."""
    stacked = remission.stack(sample=("chain", "draw"))
    if "obs" in stacked.dims:
        values = stacked.transpose("sample", "obs").values
        if values.shape[1] != len(data):
            raise ValueError("replicated outcomes do not match the cohort's rows")
        return values
    patients = [str(p) for p in stacked["patient"].values]
    months = [int(m) for m in stacked["month"].values]
    pi = pd.Index(patients).get_indexer(data["patient_id"].astype(str))
    mi = pd.Index(months).get_indexer(data["month"].astype(int))
    if (pi < 0).any() or (mi < 0).any():
        raise ValueError("replicated outcomes do not cover every row of the cohort")
    values = stacked.transpose("sample", "patient", "month").values
    return values[:, pi, mi]


def replicated_outcomes(fit, *, random_seed: int | None = None) -> np.ndarray:
    """Posterior predictive remission outcomes, one column per row of ``fit.cohort_data``.

    Parameters
    ----------
    fit : RemissionFit
        The fit.
    random_seed : int, optional
        Seed of the replicated outcomes.

    Returns
    -------
    numpy.ndarray
        0/1 array of shape (posterior draws, rows).
    """
    import pymc as pm

    from pkmodel.data import read_cohort

    cohort = read_cohort(fit.cohort_data, exclude_ati_positive=False, min_tl_ug_ml=None,
                         name=fit.cohort_name)
    model = fit.spec.build(cohort)
    pymc_log = logging.getLogger("pymc")
    level = pymc_log.level
    pymc_log.setLevel(logging.WARNING)  # not "Sampling: [remission]" on every call
    try:
        with model, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp = pm.sample_posterior_predictive(fit.tree, var_names=["remission"],
                                                random_seed=random_seed, progressbar=False)
    finally:
        pymc_log.setLevel(level)
    return _rows(pp["posterior_predictive"]["remission"], fit.cohort_data)


def _tl_contrast(y: np.ndarray, data: pd.DataFrame) -> np.ndarray:
    """Remission rate below the cohort's median TL minus the rate above it (last axis: rows)."""
    tl = data["baseline_tl"].to_numpy(dtype=float)
    low = tl <= np.median(tl)
    return y[..., low].mean(axis=-1) - y[..., ~low].mean(axis=-1)


def jeffreys_interval(k, n, ci_prob: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Jeffreys interval of a proportion ``k / n`` (Beta(k + 1/2, n - k + 1/2) quantiles).

    Parameters
    ----------
    k, n : array-like of int
        Successes and trials.
    ci_prob : float, default 0.9
        Width of the interval.

    Returns
    -------
    tuple of numpy.ndarray
        Lower and upper bounds (0 when ``k == 0``, 1 when ``k == n``).
    """
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    q = [(1 - ci_prob) / 2, (1 + ci_prob) / 2]
    lo = np.where(k > 0, beta_dist.ppf(q[0], k + 0.5, n - k + 0.5), 0.0)
    hi = np.where(k < n, beta_dist.ppf(q[1], k + 0.5, n - k + 0.5), 1.0)
    return lo, hi


def _hist_with_observed(ax, replicated: np.ndarray, observed: float, title: str,
                        xlabel: str) -> None:
    ax.hist(replicated, bins=30, color="0.6", alpha=0.8, density=True, label="replicated")
    ax.axvline(observed, color="C3", lw=2, label="observed")
    tail = float(np.mean(replicated >= observed))
    ax.set_title(f"{title}\nP(replicated >= observed) = {tail:.2f}", fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_yticks([])


def plot_prior_predictive(prior: xr.DataTree, cohort) -> Figure:
    """What the priors alone say about remission data like the cohort's.

    Parameters
    ----------
    prior : xarray.DataTree
        From :meth:`pkmodel.RemissionModel.prior_predictive` on the same cohort.
    cohort : Cohort
        The cohort (its observed statistics are marked).

    Returns
    -------
    matplotlib.figure.Figure
        Per month, the prior predictive distribution of the remission rate; then the prior
        predictive drop in remission rate from TL below to above the cohort median; then prior
        predictive baseline TL against the observed TL (values above the assay limit at the
        limit). Priors are weakly informative when the observed values sit well inside these
        distributions and the distributions do not pile up at 0 and 1.

    Examples
    --------
    >>> prior = pkmodel.RemissionModel().prior_predictive(cohort, random_seed=1)  # doctest: +SKIP
    >>> plot_prior_predictive(prior, cohort).savefig("prior_predictive.png")  # doctest: +SKIP
    """
    data = cohort.data
    y_rep = _rows(prior["prior_predictive"]["remission"], data)
    y_obs = data["remission"].to_numpy()
    months = sorted(int(m) for m in data["month"].unique())
    fig = Figure(figsize=(3.4 * (len(months) + 2), 3.3))
    axes = fig.subplots(1, len(months) + 2)
    for ax, month in zip(axes, months, strict=False):
        rows = (data["month"] == month).to_numpy()
        _hist_with_observed(ax, y_rep[:, rows].mean(axis=1), float(y_obs[rows].mean()),
                            f"remission rate, month {month}", "share of patients in remission")
        ax.set_xlim(-0.02, 1.02)
    ax = axes[len(months)]
    _hist_with_observed(ax, _tl_contrast(y_rep, data), float(_tl_contrast(y_obs, data)),
                        "TL contrast, both months", "rate below minus above median TL")
    ax.set_xlim(-1.02, 1.02)
    ax = axes[-1]
    log_tl = prior["prior_predictive"]["log_tl"].stack(sample=("chain", "draw"))
    sims = np.exp(log_tl.transpose("sample", ...).values)
    grid = np.geomspace(0.3, 300, 200)
    ecdf = (sims[..., None] <= grid).mean(axis=1)
    lo, mid, hi = np.quantile(ecdf, [0.05, 0.5, 0.95], axis=0)
    ax.fill_between(grid, lo, hi, color="0.6", alpha=0.5, lw=0, label="prior predictive 90%")
    ax.plot(grid, mid, color="0.3", lw=1)
    tl_obs = np.sort(cohort.patients["baseline_tl"].to_numpy(dtype=float))
    ax.step(tl_obs, np.arange(1, tl_obs.size + 1) / tl_obs.size, where="post", color="C3",
            lw=2, label="observed")
    ax.set_xscale("log")
    ax.set_title("baseline TL (ECDF)", fontsize=9)
    ax.set_xlabel("TL (µg/mL)")
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    axes[0].legend(fontsize=7, frameon=False, loc="center right")
    fig.suptitle("Prior predictive check: data the priors expect before seeing the outcomes "
                 "(grey) and the cohort (red)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_posterior_predictive(fit, replicated: np.ndarray | None = None, *,
                              ci_prob: float = 0.9, random_seed: int | None = None) -> Figure:
    """Posterior predictive check: observed against replicated remission statistics.

    Parameters
    ----------
    fit : RemissionFit
        The fit.
    replicated : numpy.ndarray, optional
        From :func:`replicated_outcomes`; drawn here if omitted.
    ci_prob : float, default 0.9
        Width of the replicated intervals.
    random_seed : int, optional
        Seed of the replicated outcomes when they are drawn here.

    Returns
    -------
    matplotlib.figure.Figure
        Left: remission rate per month and strategy, observed (red) against the replicated
        median and ``ci_prob`` interval (grey). Right: per month, the drop in remission rate from
        TL below to above the cohort median, replicated (histogram) against observed.
    """
    if replicated is None:
        replicated = replicated_outcomes(fit, random_seed=random_seed)
    data = fit.cohort_data
    y_obs = data["remission"].to_numpy()
    months = sorted(int(m) for m in data["month"].unique())
    strategies = sorted(str(s) for s in data["strategy"].unique())
    fig = Figure(figsize=(4.6 + 3.4 * len(months), 3.6))
    grid = fig.add_gridspec(1, len(months) + 1, width_ratios=[1.5] + [1] * len(months))
    ax = fig.add_subplot(grid[0, 0])
    q = [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2]
    labels = []
    for i, (month, strategy) in enumerate((m, s) for m in months for s in strategies):
        rows = ((data["month"] == month) & (data["strategy"] == strategy)).to_numpy()
        if not rows.any():
            continue
        lo, mid, hi = np.quantile(replicated[:, rows].mean(axis=1), q)
        ax.plot([lo, hi], [i, i], color="0.5", lw=6, alpha=0.6, solid_capstyle="butt",
                label="replicated" if i == 0 else None)
        ax.plot([mid], [i], "|", color="0.2", ms=12)
        ax.plot([y_obs[rows].mean()], [i], "o", color="C3", label="observed" if i == 0 else None)
        labels.append((i, f"{strategy.replace('_', ' ')}, {month} m (n={rows.sum()})"))
    ax.set_yticks([i for i, _ in labels], [t for _, t in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("remission rate")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax.set_title(f"remission rate: observed and {round(ci_prob * 100)}% replicated", fontsize=9)
    for j, month in enumerate(months):
        ax = fig.add_subplot(grid[0, j + 1])
        rows = (data["month"] == month).to_numpy()
        sub = data[rows]
        _hist_with_observed(ax, _tl_contrast(replicated[:, rows], sub),
                            float(_tl_contrast(y_obs[rows], sub)),
                            f"TL contrast, month {month}",
                            "rate below minus above median TL")
    fig.suptitle("Posterior predictive check: outcomes replicated from the fitted model (grey) "
                 "and observed (red)", fontsize=9)
    fig.tight_layout()
    return fig


def calibration_table(fit, replicated: np.ndarray | None = None, *, n_bins: int = 5,
                      ci_prob: float = 0.9, random_seed: int | None = None) -> pd.DataFrame:
    """Observed remission rate in bins of predicted probability (the calibration plot's data).

    Parameters
    ----------
    fit : RemissionFit
        The fit.
    replicated : numpy.ndarray, optional
        From :func:`replicated_outcomes`; drawn here if omitted.
    n_bins : int, default 5
        Bins of equal count over the predicted probability.
    ci_prob : float, default 0.9
        Width of the intervals.
    random_seed : int, optional
        Seed of the replicated outcomes and of latent TL for censored rows.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``n``, ``predicted`` (mean predicted probability), ``observed`` (rate),
        ``observed_lower``/``observed_upper`` (Jeffreys interval), ``replicated_lower``/
        ``replicated_upper`` (posterior predictive interval of the bin's rate).
    """
    if replicated is None:
        replicated = replicated_outcomes(fit, random_seed=random_seed)
    data = fit.cohort_data
    pred = fit.predict(data, level="center", random_seed=random_seed)["p_remission"].to_numpy()
    n_bins = int(max(1, min(n_bins, len(data) // 5 or 1)))
    order = np.argsort(pred, kind="stable")
    groups = np.array_split(order, n_bins)
    y = data["remission"].to_numpy()
    q = [(1 - ci_prob) / 2, (1 + ci_prob) / 2]
    rows = []
    for g in groups:
        k, n = int(y[g].sum()), len(g)
        lo, hi = jeffreys_interval(np.array(k), np.array(n), ci_prob)
        rlo, rhi = np.quantile(replicated[:, g].mean(axis=1), q)
        rows.append({"n": n, "predicted": float(pred[g].mean()), "observed": k / n,
                     "observed_lower": float(lo), "observed_upper": float(hi),
                     "replicated_lower": float(rlo), "replicated_upper": float(rhi)})
    return pd.DataFrame(rows)


def plot_calibration(fit, replicated: np.ndarray | None = None, *, n_bins: int = 5,
                     ci_prob: float = 0.9, random_seed: int | None = None) -> Figure:
    """Calibration of the binary outcome: observed remission rate against predicted probability.

    Rows are grouped into ``n_bins`` bins of equal count by their posterior mean probability of
    remission (each patient at their own centre, integrating over the patient effect, as for a
    new patient there). A calibrated model puts the observed rates (with Jeffreys intervals) on
    the diagonal, within the grey posterior predictive intervals of each bin's rate.

    Parameters
    ----------
    fit : RemissionFit
        The fit.
    replicated : numpy.ndarray, optional
        From :func:`replicated_outcomes`; drawn here if omitted.
    n_bins : int, default 5
        Number of bins.
    ci_prob : float, default 0.9
        Width of the intervals.
    random_seed : int, optional
        Seed of the replicated outcomes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = calibration_table(fit, replicated, n_bins=n_bins, ci_prob=ci_prob,
                              random_seed=random_seed)
    fig = Figure(figsize=(4.6, 4.4))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="perfect calibration")
    x = table["predicted"].to_numpy()
    ax.vlines(x, table["replicated_lower"], table["replicated_upper"], color="0.6", lw=8,
              alpha=0.5, label=f"replicated {round(ci_prob * 100)}%")
    ax.errorbar(x, table["observed"],
                yerr=[table["observed"] - table["observed_lower"],
                      table["observed_upper"] - table["observed"]],
                fmt="o", color="C3", capsize=3, label="observed (Jeffreys interval)")
    for xi, yi, n in zip(x, table["observed"], table["n"], strict=True):
        ax.annotate(f"n={n}", (xi, yi), textcoords="offset points", xytext=(6, -10), fontsize=7,
                    color="0.3")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("predicted P(remission), bin mean")
    ax.set_ylabel("observed remission rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    ax.set_title(f"Calibration ({len(table)} bins of equal count)", fontsize=9)
    fig.tight_layout()
    return fig
