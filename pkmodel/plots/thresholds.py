"""The posterior of the futility threshold: where each draw's remission curve crosses p_min.

Two views of the same question ("above which TL is intensification futile?"), matching
:meth:`pkmodel.RemissionFit.futility_threshold`: the top row shows, per strategy, the posterior
distribution of the TL at which P(remission) falls below ``p_min`` for good; the bottom row shows
the posterior probability that P(remission) < ``p_min`` at each TL, and where it reaches the
required credibility (``tl_futile``).
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

from pkmodel.response import crossing_tl, futility_table

__all__ = ["plot_crossing_tl"]

_TICKS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 30, 40)


def _log_tl_axis(ax, tl: np.ndarray) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([t for t in _TICKS if tl.min() <= t <= tl.max()]))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(tl.min(), tl.max())
    ax.grid(alpha=0.3, which="both")


def plot_crossing_tl(fit, curve: xr.Dataset | None = None, *, p_min: float = 0.2,
                     credibility: float = 0.9, ci_prob: float = 0.9, bins: int = 40) -> Figure:
    """Posterior of the TL at which the remission curve crosses ``p_min``, per strategy and month.

    Parameters
    ----------
    fit : RemissionFit
        The fit (used only when ``curve`` is omitted).
    curve : xarray.Dataset, optional
        A curve from ``fit.remission_curve``; the population-level curve if omitted.
    p_min : float, default 0.2
        Remission probability below which intensification is called futile.
    credibility : float, default 0.9
        Posterior probability required for P(remission) < p_min (the bottom row's line).
    ci_prob : float, default 0.9
        Width of the marked interval of the crossing TL.
    bins : int, default 40
        Histogram bins (log-spaced over the TL grid).

    Returns
    -------
    matplotlib.figure.Figure
        One column per month; top row: histogram of each draw's crossing TL per strategy, with
        its median (dot) and ``ci_prob`` interval (bar), and the share of draws that do not cross
        inside the grid; bottom row: P(P(remission) < p_min) against TL with ``tl_futile``
        marked where it reaches ``credibility``.

    Examples
    --------
    >>> fig = plot_crossing_tl(fit, p_min=0.2)  # doctest: +SKIP
    >>> fig.savefig("crossing_tl.png")  # doctest: +SKIP
    """
    if curve is None:
        curve = fit.remission_curve()
    table = futility_table(curve, p_min, credibility, ci_prob)
    da = curve["p_remission"].transpose("strategy", "month", "chain", "draw", "tl")
    tl = da["tl"].values
    months = list(da["month"].values)
    strategies = list(da["strategy"].values)
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    edges = np.geomspace(tl.min(), tl.max(), bins + 1)
    fig = Figure(figsize=(5.2 * len(months), 6.4))
    axes = fig.subplots(2, len(months), sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [3, 2]})
    for j, month in enumerate(months):
        top, bottom = axes[0][j], axes[1][j]
        notes = []
        for k, strategy in enumerate(strategies):
            c = colours[k % len(colours)]
            label = str(strategy).replace("_", " ")
            p = da.sel(strategy=strategy, month=month).values.reshape(-1, tl.size)
            cross = crossing_tl(p, tl, p_min)
            inside = cross[np.isfinite(cross)]
            density = np.histogram(inside, bins=edges)[0] / max(cross.size, 1)
            top.stairs(density, edges, color=c, fill=True, alpha=0.25)
            top.stairs(density, edges, color=c, lw=1.5, label=label)
            row = table[(table.strategy == strategy) & (table.month == month)].iloc[0]
            ybar = -0.02 - 0.025 * k
            lo = row.tl_cross_lower if np.isfinite(row.tl_cross_lower) else tl.min()
            hi = row.tl_cross_upper if np.isfinite(row.tl_cross_upper) else tl.max()
            if np.isfinite(row.tl_cross_median):
                top.plot([lo, hi], [ybar, ybar], color=c, lw=3, solid_capstyle="butt",
                         transform=top.get_xaxis_transform(), clip_on=False)
                top.plot([row.tl_cross_median], [ybar], "o", color=c, ms=5,
                         transform=top.get_xaxis_transform(), clip_on=False)
            notes.append(f"{label}: {100 * (1 - row.p_cross_in_grid):.0f}% of draws do not "
                         f"cross by {tl.max():.0f} µg/mL")
            prob_below = (p < p_min).mean(axis=0)
            bottom.plot(tl, prob_below, color=c, lw=2, label=label)
            if np.isfinite(row.tl_futile):
                bottom.axvline(row.tl_futile, color=c, ls=":", lw=1.5)
        top.text(0.02, 0.97, "\n".join(notes), transform=top.transAxes, va="top", fontsize=7,
                 color="0.3")
        top.set_title(f"{month} months after intensification")
        top.set_ylim(bottom=0)
        bottom.axhline(credibility, color="0.4", ls="--", lw=1)
        bottom.text(tl.min() * 1.05, credibility + 0.02, f"credibility {credibility:g}",
                    fontsize=7, color="0.3", va="bottom")
        bottom.set_ylim(-0.03, 1.03)
        bottom.set_xlabel("baseline trough level (µg/mL)")
        _log_tl_axis(top, tl)
        _log_tl_axis(bottom, tl)
    axes[0][0].set_ylabel(f"share of draws crossing p_min = {p_min:g}")
    axes[1][0].set_ylabel(f"P(P(remission) < {p_min:g})")
    axes[1][0].legend(loc="upper left", bbox_to_anchor=(0.0, 0.85), fontsize=8, frameon=False)
    level = curve.attrs.get("level", "population")
    fig.suptitle(f"Futility threshold ({level} level): TL where P(remission) falls below "
                 f"{p_min:g}; dot and bar: median and {round(ci_prob * 100)}% interval;\n"
                 "dotted line: TL from which intensification is futile with the required "
                 "credibility", fontsize=9)
    fig.tight_layout()
    return fig
