"""Remission curves with credible bands, observed outcomes and futility thresholds."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

from pkmodel.response.curves import summarize_curve

__all__ = ["plot_remission_curves"]


def _origin_note(fit) -> list[str]:
    """The reconstructed-cohort warning for the figure's title, when it applies."""
    from pkmodel.response.provenance import data_origin

    if data_origin(fit)["reconstructed"]:
        return ["RECONSTRUCTED cohort (synthetic data, not patients): not for clinical "
                "conclusions"]
    return []


def plot_remission_curves(fit, curve=None, thresholds: pd.DataFrame | None = None, *,
                          ci_prob: float = 0.9, p_min: float | None = None,
                          observed: str = "rug", n_bins: int = 3) -> Figure:
    """Posterior remission curves per month (panels) and strategy (colours).

    Parameters
    ----------
    fit : RemissionFit
        The fit; its cohort's outcomes are drawn as a rug (remitters at the top, others at the
        bottom; a TL censored at an assay limit as an open circle at the limit) and/or as binned
        proportions.
    curve : xarray.Dataset, optional
        A curve from ``fit.remission_curve``; computed at the population level if omitted.
    thresholds : pandas.DataFrame, optional
        From ``fit.futility_threshold``: the crossing TL's median and interval are drawn on the
        ``p_min`` line (where, by definition, the curves cross it), and ``tl_futile`` is marked.
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
        With ``thresholds``: on the ``p_min`` line, per strategy, the posterior median (dot) and
        ``ci_prob`` interval (bar) of the TL at which P(remission) falls below ``p_min``, and a
        downward triangle at ``tl_futile`` (the TL from which intensification is futile with
        the required credibility). Every marker is explained in the legend; triangles mean
        nothing else.

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
    if fit.meta.get("exposure"):  # its curves are per regimen, and so are the observed outcomes
        from pkmodel.response.exposure import cohort_regimens

        data = data.assign(strategy=cohort_regimens(data, fit.meta))
    if thresholds is not None and p_min is None and len(thresholds):
        p_min = float(thresholds["p_min"].iloc[0])
    from matplotlib.lines import Line2D

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
                ax.plot(d.baseline_tl[censored], y[censored], "o", color=c, mfc="none", ms=5,
                        alpha=0.9)
            if observed in ("binned", "both") and len(d):
                order = np.argsort(d.baseline_tl.to_numpy(), kind="stable")
                for g in np.array_split(order, max(1, min(n_bins, len(d)))):
                    k_rem, n = int(d.remission.to_numpy()[g].sum()), len(g)
                    lo, hi = jeffreys_interval(k_rem, n, ci_prob)
                    x = float(np.median(d.baseline_tl.to_numpy()[g])) * (1 + 0.02 * k)
                    ax.errorbar([x], [k_rem / n], yerr=[[k_rem / n - lo], [hi - k_rem / n]],
                                fmt="s", color=c, mfc="white", ms=5, capsize=2, lw=1)
            if thresholds is not None and p_min is not None:
                t = thresholds[(thresholds.month == month) & (thresholds.strategy == strategy)]
                # on the p_min line, where the curves cross it; strategies a little apart
                ybar = p_min - 0.025 * (k + 1)
                if len(t) and np.isfinite(t.tl_cross_median.iloc[0]):
                    lo, hi = t.tl_cross_lower.iloc[0], t.tl_cross_upper.iloc[0]
                    hi_plot = hi if np.isfinite(hi) else float(s.tl.max())
                    ax.plot([lo if np.isfinite(lo) else s.tl.min(), hi_plot], [ybar, ybar],
                            color=c, lw=3, alpha=0.6, solid_capstyle="butt")
                    ax.plot(t.tl_cross_median.iloc[0], ybar, "o", color=c, ms=6)
                if len(t) and np.isfinite(t.tl_futile.iloc[0]):
                    ax.plot(t.tl_futile.iloc[0], p_min + 0.035, "v", color=c, ms=9, mec="white")
        if p_min is not None:
            ax.axhline(p_min, color="0.4", ls="--", lw=1)
            # at the left end, where the curves are far above it and no marker sits
            ax.text(summary.tl.min() * 1.03, p_min + 0.012, f"p_min = {p_min:g}", ha="left",
                    va="bottom", fontsize=8, color="0.3")
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
    handles, _ = axes[0][0].get_legend_handles_labels()
    grey = "0.35"
    if observed in ("rug", "both"):
        handles += [Line2D([], [], ls="", marker="|", ms=9, color=grey,
                           label="observed outcome (top: remission)"),
                    Line2D([], [], ls="", marker="o", mfc="none", ms=5, color=grey,
                           label="observed, TL above the assay limit (at the limit)")]
    if observed in ("binned", "both"):
        handles.append(Line2D([], [], ls="-", marker="s", mfc="white", ms=5, color=grey,
                              label=f"observed rate in TL bins ({round(ci_prob * 100)}% "
                                    "Jeffreys interval)"))
    if thresholds is not None and p_min is not None:
        handles += [Line2D([], [], ls="-", lw=3, marker="o", ms=6, color=grey, alpha=0.8,
                           label=f"TL where P(remission) crosses p_min: median, "
                                 f"{round(ci_prob * 100)}% interval (to the edge: beyond "
                                 "the TL grid)"),
                    Line2D([], [], ls="", marker="v", ms=8, color=grey,
                           label="futile from this TL with the required credibility")]
    level = curve.attrs.get("level", "population")
    origin = _origin_note(fit)
    fig.suptitle("\n".join([f"Posterior remission curves ({level} level)", *origin]),
                 fontsize=9, color="#9a6700" if origin else "black")
    # below the panels, where it hides no data, in as many rows as its entries need
    ncol = 2 if len(months) > 1 else 1
    rows = -(-len(handles) // ncol)
    fig.tight_layout(rect=(0, (0.03 + 0.13 * rows) / fig.get_figheight(), 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7.5, frameon=False)
    return fig
