"""Plots of a population PK fit: goodness of fit; the prediction-corrected VPC is drawn by
:mod:`pkmodel.plots.vpc`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pkmodel.pk.population import PopulationFit
from pkmodel.pk.units import concentration_from_internal, days_per
from pkmodel.plots.vpc import concentration_label, log_axis, plot_pc_vpc

__all__ = ["plot_goodness_of_fit", "plot_pc_vpc"]


def _identity(ax, x: np.ndarray, y: np.ndarray) -> None:
    both = np.concatenate([x, y])
    both = both[np.isfinite(both) & (both > 0)]
    lo, hi = both.min() / 1.3, both.max() * 1.3
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    log_axis(ax.xaxis)
    log_axis(ax.yaxis)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)


def loess(x: np.ndarray, y: np.ndarray, *, frac: float = 0.75, n_points: int = 60,
          log_x: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A LOESS smoother (locally weighted linear regression, tricube weights, as R's
    ``loess(span = 0.75, degree = 1)``) evaluated on ``n_points`` over the range of ``x``.

    Parameters
    ----------
    x, y : numpy.ndarray
        The points (non-finite ones are left out).
    frac : float, default 0.75
        The share of the points in each local fit.
    n_points : int, default 60
        Where the smooth is evaluated (evenly spaced, in ``log x`` with ``log_x``).
    log_x : bool, default False
        Smooth against ``log x`` (positive ``x`` only): for predictions on a log axis.

    Returns
    -------
    tuple of numpy.ndarray
        The grid and the smooth on it (empty with fewer than 10 points).
    """
    ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if log_x else True)
    u, y = (np.log(x[ok]) if log_x else x[ok]), y[ok]
    if u.size < 10 or np.ptp(u) == 0:
        return np.array([]), np.array([])
    grid = np.linspace(u.min(), u.max(), n_points)
    k = max(3, int(np.ceil(frac * u.size)))
    fitted = np.empty(n_points)
    for i, g in enumerate(grid):
        d = np.abs(u - g)
        h = np.partition(d, k - 1)[k - 1] * 1.0001 or 1.0
        w = np.clip(1 - (d / h) ** 3, 0, None) ** 3
        sw = w.sum()
        mu, mv = (w * u).sum() / sw, (w * y).sum() / sw
        var = (w * (u - mu) ** 2).sum()
        slope = (w * (u - mu) * (y - mv)).sum() / var if var > 0 else 0.0
        fitted[i] = mv + slope * (g - mu)
    return (np.exp(grid) if log_x else grid), fitted


def _smooth(ax, x: np.ndarray, y: np.ndarray, *, log_x: bool = False) -> None:
    """The LOESS smooth of the points (:func:`loess`), red."""
    gx, gy = loess(np.asarray(x, dtype=float), np.asarray(y, dtype=float), log_x=log_x)
    if gx.size:
        ax.plot(gx, gy, color="tab:red", lw=1.5, label="LOESS")


def plot_goodness_of_fit(fit: PopulationFit, gof: pd.DataFrame | None = None) -> Figure:
    """The goodness-of-fit panels a pharmacometrician expects.

    Parameters
    ----------
    fit : PopulationFit
        The fit.
    gof : pandas.DataFrame, optional
        :meth:`PopulationFit.goodness_of_fit` (computed when not given).

    Returns
    -------
    matplotlib.figure.Figure
        Top: observed against the population (PRED) and individual (IPRED) predictions, log
        scales, with the identity line, and CWRES against time; observations below the LLOQ
        are left out (their number is in the title). Middle: CWRES against PRED, IWRES against
        time and against IPRED. Bottom: the LOO-PIT as a standard normal quantile against time
        and PRED, and its histogram against the uniform it follows under the model. LOESS
        smooths (red) and lines at 0 and +-2 (+-1.96 for the LOO-PIT).
    """
    from scipy import stats

    gof = fit.goodness_of_fit() if gof is None else gof
    seen = gof[gof["cens"] == 0].copy()
    unit = fit.spec.time_unit  # time and concentrations in the dataset's units
    seen["time"] = seen["time_days"] / days_per(unit)
    conc = fit.spec.concentration_unit
    for column in ("dv_ug_ml", "pred_ug_ml", "ipred_ug_ml"):
        seen[column] = concentration_from_internal(seen[column], conc)
    has_pit = "loo_pit" in seen
    if has_pit:
        seen["loo_pit_z"] = stats.norm.ppf(np.clip(seen["loo_pit"], 1e-6, 1 - 1e-6))
    fig = Figure(figsize=(12, 10.5 if has_pit else 7.4))
    axes = fig.subplots(3 if has_pit else 2, 3)
    for ax, column, label in ((axes[0, 0], "pred_ug_ml", "population prediction PRED"),
                              (axes[0, 1], "ipred_ug_ml", "individual prediction IPRED")):
        x, y = seen[column].to_numpy(), seen["dv_ug_ml"].to_numpy()
        ax.scatter(x, y, s=8, alpha=0.5)
        _identity(ax, x, y)
        gx, gy = loess(x, np.log(np.where(y > 0, y, np.nan)), log_x=True)
        if gx.size:
            ax.plot(gx, np.exp(gy), color="tab:red", lw=1.5)
        ax.set_xlabel(f"{label} ({conc})")
        ax.set_ylabel(f"observed {concentration_label(fit.spec)}")
    panels = [(axes[0, 2], "time", "cwres", f"time ({unit}s)", "CWRES"),
              (axes[1, 0], "pred_ug_ml", "cwres", f"PRED ({conc})", "CWRES"),
              (axes[1, 1], "time", "iwres", f"time ({unit}s)", "IWRES"),
              (axes[1, 2], "ipred_ug_ml", "iwres", f"IPRED ({conc})", "IWRES")]
    if has_pit:
        pit_label = "LOO-PIT (normal quantile)"
        panels += [(axes[2, 0], "time", "loo_pit_z", f"time ({unit}s)", pit_label),
                   (axes[2, 1], "pred_ug_ml", "loo_pit_z", f"PRED ({conc})", pit_label)]
    for ax, x, y, xlabel, ylabel in panels:
        ax.scatter(seen[x], seen[y], s=8, alpha=0.5)
        _smooth(ax, seen[x].to_numpy(), seen[y].to_numpy(), log_x=x != "time")
        for level, style in ((0, "-"), (-2, ":"), (2, ":")):
            ax.axhline(level, color="0.3", lw=1, ls=style)
        if x != "time":
            ax.set_xscale("log")
            log_axis(ax.xaxis)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    if has_pit:
        ax = axes[2, 2]
        pit = seen["loo_pit"].dropna().to_numpy()
        ax.hist(pit, bins=10, range=(0, 1), density=True, color="tab:blue", alpha=0.6)
        # the 90% range of a histogram bin's height under uniformity
        lo, hi = stats.binom.ppf([0.05, 0.95], pit.size, 0.1) / (0.1 * max(pit.size, 1))
        ax.axhspan(lo, hi, color="0.5", alpha=0.25, lw=0, label="90% range if uniform")
        ax.axhline(1.0, color="0.3", lw=1)
        ax.set_xlabel("LOO-PIT")
        ax.set_ylabel("density")
        ax.legend(fontsize=7, frameon=False, loc="lower center")
    for ax in axes.ravel():
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelsize=8)
    n_blq = int(np.sum(gof["cens"] != 0))
    fig.suptitle(f"Goodness of fit: {fit.spec.structure_label()}, {fit.data.n_subjects} "
                 f"subjects, {len(seen)} observations shown"
                 + (f" ({n_blq} censored left out)" if n_blq else "")
                 + "; red: LOESS smooth", fontsize=10)
    fig.tight_layout(h_pad=1.2, w_pad=1.2)
    return fig
