"""Plots of a population PK fit: goodness of fit and the prediction-corrected VPC."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pkmodel.pk.population import PCVPC, PopulationFit
from pkmodel.pk.units import concentration_from_internal, days_per
from pkmodel.pk.units import time_unit as canonical_time_unit

__all__ = ["plot_goodness_of_fit", "plot_pc_vpc"]


def _concentration(spec) -> str:
    """``theophylline concentration (mg/L)``: the specification's drug (if it names one) and
    the dataset's concentration unit; the figures show concentrations in it."""
    unit = "µg/mL" if spec is None else spec.concentration_unit
    drug = None if spec is None else spec.drug
    return f"{drug} concentration ({unit})" if drug else f"concentration ({unit})"


def _log_axis(axis) -> None:
    """A log axis labelled 1, 2, 5, 10, ... in plain numbers (no overlapping 3x10^0 labels)."""
    from matplotlib import ticker

    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _identity(ax, x: np.ndarray, y: np.ndarray) -> None:
    both = np.concatenate([x, y])
    both = both[np.isfinite(both) & (both > 0)]
    lo, hi = both.min() / 1.3, both.max() * 1.3
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis)
    _log_axis(ax.yaxis)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)


def _smooth(ax, x: np.ndarray, y: np.ndarray, n_bins: int = 10) -> None:
    """A running median (by quantile bins of x), red."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 * n_bins:
        return
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    mids = [(np.median(x[which == k]), np.median(y[which == k]))
            for k in range(edges.size - 1) if np.any(which == k)]
    ax.plot(*zip(*mids, strict=True), color="tab:red", lw=1.5)


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
        scales, with the identity line; observations below the LLOQ are left out (their number
        is in the title). Bottom: CWRES against time and against PRED, IWRES against time and
        against IPRED, with a running median (red) and lines at 0 and +-2.
    """
    gof = fit.goodness_of_fit() if gof is None else gof
    seen = gof[gof["cens"] == 0].copy()
    unit = fit.spec.time_unit  # time and concentrations in the dataset's units
    seen["time"] = seen["time_days"] / days_per(unit)
    conc = fit.spec.concentration_unit
    for column in ("dv_ug_ml", "pred_ug_ml", "ipred_ug_ml"):
        seen[column] = concentration_from_internal(seen[column], conc)
    fig = Figure(figsize=(12, 7))
    axes = fig.subplots(2, 3)
    for ax, column, label in ((axes[0, 0], "pred_ug_ml", "population prediction PRED"),
                              (axes[0, 1], "ipred_ug_ml", "individual prediction IPRED")):
        ax.scatter(seen[column], seen["dv_ug_ml"], s=8, alpha=0.5)
        _identity(ax, seen[column].to_numpy(), seen["dv_ug_ml"].to_numpy())
        _smooth(ax, seen[column].to_numpy(), seen["dv_ug_ml"].to_numpy())
        ax.set_xlabel(f"{label} ({conc})")
        ax.set_ylabel(f"observed {_concentration(fit.spec)}")
    panels = ((axes[0, 2], "time", "cwres", f"time ({unit}s)"),
              (axes[1, 0], "pred_ug_ml", "cwres", f"PRED ({conc})"),
              (axes[1, 1], "time", "iwres", f"time ({unit}s)"),
              (axes[1, 2], "ipred_ug_ml", "iwres", f"IPRED ({conc})"))
    for ax, x, y, xlabel in panels:
        ax.scatter(seen[x], seen[y], s=8, alpha=0.5)
        _smooth(ax, seen[x].to_numpy(), seen[y].to_numpy())
        for level, style in ((0, "-"), (-2, ":"), (2, ":")):
            ax.axhline(level, color="0.3", lw=1, ls=style)
        if x != "time":
            ax.set_xscale("log")
            _log_axis(ax.xaxis)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(y.upper())
    for ax in axes.ravel():
        ax.grid(alpha=0.3, which="both")
    n_blq = int(np.sum(gof["cens"] != 0))
    fig.suptitle(f"Goodness of fit: {fit.spec.structure_label()}, {fit.data.n_subjects} "
                 f"subjects, {len(seen)} observations shown"
                 + (f" ({n_blq} censored left out)" if n_blq else ""), fontsize=10)
    fig.tight_layout()
    return fig


def plot_pc_vpc(vpc: PCVPC | PopulationFit, *, time_unit: str | None = None, spec=None,
                **options) -> Figure:
    """The prediction-corrected visual predictive check.

    Parameters
    ----------
    vpc : PCVPC or PopulationFit
        A check (:func:`pkmodel.pk.population.pc_vpc`), or a fit to compute it from.
    time_unit : {"day", "hour", "week"}, optional
        The unit of the time axis; default the fit's specification's (the dataset's), or
        days for a check given alone.
    spec : PopulationSpec, optional
        For a check given alone: the specification whose units (time, concentration) and drug
        label the axes (a fit gives its own).
    **options
        With a fit: ``n_replicates``, ``n_bins``, ``ci_prob``, ``random_seed`` of
        :meth:`PopulationFit.pc_vpc`.

    Returns
    -------
    matplotlib.figure.Figure
        Prediction-corrected observations (points) and their 5th, 50th and 95th percentiles per
        time bin (lines), over the simulated intervals of the same percentiles (shaded: blue for
        the outer percentiles, red for the median), log concentration scale.
    """
    if isinstance(vpc, PopulationFit):
        spec = vpc.spec
        time_unit = time_unit or spec.time_unit
        vpc = vpc.pc_vpc(**options)
    time_unit = canonical_time_unit(time_unit or (spec.time_unit if spec is not None else "day"))
    scale = 1.0 / days_per(time_unit)
    per = concentration_from_internal(1.0, spec.concentration_unit if spec is not None
                                      else "µg/mL")
    table = vpc.table.assign(**{c: vpc.table[c] * per for c in ("lower", "upper", "observed")})
    fig = Figure(figsize=(9, 5.5))
    ax = fig.subplots()
    ax.scatter(vpc.observed["time_days"] * scale, vpc.observed["pc_dv_ug_ml"] * per, s=6,
               color="0.55",
               alpha=0.5, label="observations (prediction-corrected)")
    width = round(100 * vpc.ci_prob)
    for q, colour in ((5.0, "tab:blue"), (50.0, "tab:red"), (95.0, "tab:blue")):
        rows = table[table["percentile"] == q].sort_values("time_days")
        which = "median" if q == 50.0 else "5th and 95th percentiles"
        ax.fill_between(rows["time_days"] * scale, rows["lower"], rows["upper"], color=colour,
                        alpha=0.2, lw=0, label=(f"simulated {width}% intervals of the {which}"
                                                if q != 95.0 else None))
        ax.plot(rows["time_days"] * scale, rows["observed"], color=colour, lw=1.8, marker="o",
                ms=3,
                ls="-" if q == 50.0 else "--",
                label=f"observed {which}" if q != 95.0 else None)
    if vpc.lloq_ug_ml is not None:
        ax.axhline(vpc.lloq_ug_ml * per, color="0.3", ls=":", lw=1,
                   label="LLOQ (values below left out)")
    ax.set_yscale("log")
    _log_axis(ax.yaxis)
    ax.set_xlabel(f"time since the first dose ({time_unit}s)")
    ax.set_ylabel(f"prediction-corrected {_concentration(spec)}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, frameon=False, loc="best")
    ax.set_title(f"pcVPC: {vpc.n_replicates} replicates from the posterior; "
                 f"{100 * vpc.fraction_inside:.0f}% of observed percentile points inside their "
                 f"{width}% intervals", fontsize=9)
    fig.tight_layout()
    return fig
