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
                          ci_prob: float = 0.9, p_min: float | None = None,
                          observed: str = "rug", n_bins: int = 3) -> Figure:
    """Posterior remission curves per month (panels) and strategy (colours).

    Parameters
    ----------
    fit : RemissionFit
        The fit; its cohort's outcomes are drawn as a rug (remitters at the top, others at the
        bottom, censored TL at the limit marked with '>') and/or as binned proportions.
    curve : xarray.Dataset, optional
        A curve from ``fit.remission_curve``; computed at the population level if omitted.
    thresholds : pandas.DataFrame, optional
        From ``fit.futility_threshold``: the crossing TL's median and interval are marked.
    ci_prob : float
        Width of the credible band.
    p_min : float, optional
        Draw a horizontal line at this probability (taken from ``thresholds`` if given).
    observed : {"rug", "binned", "both", "none"}, default "rug"
        How to show the observed outcomes: a rug, the observed remission rate in ``n_bins`` TL
        bins of equal count per strategy (squares at the bins' median TL, with Jeffreys
        intervals), both, or neither.
    n_bins : int, default 3
        Number of TL bins per strategy and month for ``observed="binned"``.

    Returns
    -------
    matplotlib.figure.Figure
        With ``thresholds``, each strategy's ``tl_futile`` (the TL from which intensification is
        futile with the required credibility) is marked by a triangle on the ``p_min`` line.

    Examples
    --------
    >>> table = fit.futility_threshold(p_min=0.2)  # doctest: +SKIP
    >>> plot_remission_curves(fit, thresholds=table, observed="both").savefig("curves.png")
    ... # doctest: +SKIP
    """
    from pkmodel.plots.checks import jeffreys_interval

    if observed not in ("rug", "binned", "both", "none"):
        raise ValueError(f"observed must be 'rug', 'binned', 'both' or 'none', not {observed!r}")
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
            if observed in ("rug", "both"):
                y = np.where(d.remission == 1, 1.02, -0.02) + jitter
                censored = d.tl_cens.to_numpy() != 0
                ax.plot(d.baseline_tl[~censored], y[~censored], "|", color=c, ms=9, alpha=0.8)
                ax.plot(d.baseline_tl[censored], y[censored], ">", color=c, ms=5, alpha=0.8)
            if observed in ("binned", "both") and len(d):
                order = np.argsort(d.baseline_tl.to_numpy(), kind="stable")
                for g in np.array_split(order, max(1, min(n_bins, len(d)))):
                    k_rem, n = int(d.remission.to_numpy()[g].sum()), len(g)
                    lo, hi = jeffreys_interval(k_rem, n, ci_prob)
                    x = float(np.median(d.baseline_tl.to_numpy()[g])) * (1 + 0.02 * k)
                    ax.errorbar([x], [k_rem / n], yerr=[[k_rem / n - lo], [hi - k_rem / n]],
                                fmt="s", color=c, mfc="white", ms=5, capsize=2, lw=1)
            if thresholds is not None:
                t = thresholds[(thresholds.month == month) & (thresholds.strategy == strategy)]
                if len(t) and np.isfinite(t.tl_cross_median.iloc[0]):
                    lo, hi = t.tl_cross_lower.iloc[0], t.tl_cross_upper.iloc[0]
                    ybar = 0.06 + 0.05 * k
                    hi_plot = hi if np.isfinite(hi) else float(s.tl.max())
                    ax.plot([lo if np.isfinite(lo) else s.tl.min(), hi_plot], [ybar, ybar],
                            color=c, lw=3, alpha=0.6, solid_capstyle="butt")
                    ax.plot(t.tl_cross_median.iloc[0], ybar, "o", color=c, ms=6)
                if len(t) and p_min is not None and np.isfinite(t.tl_futile.iloc[0]):
                    ax.plot(t.tl_futile.iloc[0], p_min, "v", color=c, ms=8, mec="white")
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
    notes = [{"rug": "rug: observed outcomes", "binned": "squares: observed rate in TL bins",
              "both": "rug and squares: observed outcomes and rates", "none": ""}[observed]]
    if thresholds is not None:
        notes.append("dots and bars: TL where P(remission) crosses p_min (median, interval)")
        notes.append("triangles: futile from there with the required credibility")
    fig.suptitle("\n".join([f"Posterior remission curves ({level} level)",
                             *(n for n in notes if n)]), fontsize=8)
    fig.tight_layout()
    return fig
