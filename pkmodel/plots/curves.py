"""Remission curves with credible bands, observed outcomes and futility thresholds."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

from pkmodel.response.curves import summarize_curve

__all__ = ["plot_remission_curves"]


def plot_remission_curves(fit, curve=None, thresholds: pd.DataFrame | None = None, *,
                          ci_prob: float = 0.9, p_min: float | None = None):
    """Posterior remission curves per month (panels) and strategy (colours).

    Parameters
    ----------
    fit : RemissionFit
        The fit; its cohort's outcomes are drawn as a rug (remitters at the top, others at the
        bottom, censored TL at the limit marked with '>').
    curve : xarray.Dataset, optional
        A curve from ``fit.remission_curve``; computed at the population level if omitted.
    thresholds : pandas.DataFrame, optional
        From ``fit.futility_threshold``: the crossing TL's median and interval are marked.
    ci_prob : float
        Width of the credible band.
    p_min : float, optional
        Draw a horizontal line at this probability (taken from ``thresholds`` if given).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if curve is None:
        curve = fit.remission_curve()
    summary = summarize_curve(curve, ci_prob=ci_prob)
    months = list(curve["month"].values)
    strategies = list(curve["strategy"].values)
    fig = Figure(figsize=(5.2 * len(months), 4.2))
    axes = fig.subplots(1, len(months), sharey=True, squeeze=False)
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    data = fit.cohort_data
    if thresholds is not None and p_min is None and len(thresholds):
        p_min = float(thresholds["p_min"].iloc[0])
    for ax, month in zip(axes[0], months, strict=True):
        for k, strategy in enumerate(strategies):
            c = colours[k % len(colours)]
            s = summary[(summary.month == month) & (summary.strategy == strategy)]
            label = strategy.replace("_", " ")
            ax.fill_between(s.tl, s.lower, s.upper, color=c, alpha=0.2, lw=0)
            ax.plot(s.tl, s["median"], color=c, lw=2, label=label)
            d = data[(data.month == month) & (data.strategy == strategy)]
            jitter = 0.012 * (k - (len(strategies) - 1) / 2)
            y = np.where(d.remission == 1, 1.02, -0.02) + jitter
            censored = d.tl_cens.to_numpy() != 0
            ax.plot(d.baseline_tl[~censored], y[~censored], "|", color=c, ms=9, alpha=0.8)
            ax.plot(d.baseline_tl[censored], y[censored], ">", color=c, ms=5, alpha=0.8)
            if thresholds is not None:
                t = thresholds[(thresholds.month == month) & (thresholds.strategy == strategy)]
                if len(t) and np.isfinite(t.tl_cross_median.iloc[0]):
                    lo, hi = t.tl_cross_lower.iloc[0], t.tl_cross_upper.iloc[0]
                    ybar = 0.06 + 0.05 * k
                    hi_plot = hi if np.isfinite(hi) else float(s.tl.max())
                    ax.plot([lo if np.isfinite(lo) else s.tl.min(), hi_plot], [ybar, ybar],
                            color=c, lw=3, alpha=0.6, solid_capstyle="butt")
                    ax.plot(t.tl_cross_median.iloc[0], ybar, "o", color=c, ms=6)
        if p_min is not None:
            ax.axhline(p_min, color="0.4", ls="--", lw=1)
            ax.text(summary.tl.max(), p_min + 0.01,
                    f"p_min = {p_min:g}", ha="right", va="bottom", fontsize=8, color="0.3")
        ax.set_xscale("log")
        ticks = [t for t in (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 30, 40)
                 if summary.tl.min() <= t <= summary.tl.max()]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("baseline trough level (µg/mL)")
        ax.set_title(f"{month} months after intensification")
        ax.set_ylim(-0.06, 1.06)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(f"P(remission), median and {round(ci_prob * 100)}% band")
    axes[0][0].legend(loc="upper right", fontsize=8, frameon=False)
    level = curve.attrs.get("level", "population")
    fig.suptitle(f"Posterior remission curves ({level} level); rug: observed outcomes; "
                 "dots and bars: TL where P(remission) crosses p_min", fontsize=9)
    fig.tight_layout()
    return fig
