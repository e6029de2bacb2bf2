"""The prediction-corrected VPC of a population PK fit, drawn as R's ``vpc`` and PsN draw it.

One column of panels per stratum: the prediction-corrected observations with their 5th, 50th
and 95th percentiles per time bin, each over its own band (the simulated interval of that
percentile); below it, with an LLOQ, the observed fraction of values below the LLOQ against its
simulated interval (the censored VPC).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from pkmodel.pk.population import PCVPC, PopulationFit
from pkmodel.pk.units import TIME_UNITS, concentration_from_internal, days_per
from pkmodel.pk.units import time_unit as canonical_time_unit

__all__ = ["concentration_label", "log_axis", "plot_pc_vpc"]

#: Each percentile's colour and line style (observed line over its own band).
_STYLE = {5.0: ("tab:blue", "--"), 50.0: ("tab:red", "-"), 95.0: ("tab:purple", "--")}


def concentration_label(spec) -> str:
    """``theophylline concentration (mg/L)``: the specification's drug (if it names one) and
    the dataset's concentration unit; the figures show concentrations in it."""
    unit = "µg/mL" if spec is None else spec.concentration_unit
    drug = None if spec is None else spec.drug
    return f"{drug} concentration ({unit})" if drug else f"concentration ({unit})"


def _ordinal(q: float) -> str:
    return f"{q:g}th"


def log_axis(axis) -> None:
    """A log axis labelled 1, 2, 5, 10, ... in plain numbers (no overlapping 3x10^0 labels)."""
    from matplotlib import ticker

    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _concentration_panel(ax, vpc: PCVPC, stratum: str, scale: float, per: float, log_y: bool,
                         floor: float, first: bool) -> None:
    """``scale``: the time unit per day; ``per``: the concentration unit per µg/mL."""
    table = vpc.table[vpc.table["stratum"] == stratum]
    seen = vpc.observed[vpc.observed["stratum"] == stratum]
    lloq = None if vpc.lloq_ug_ml is None else vpc.lloq_ug_ml * per
    ax.scatter(seen["time_days"] * scale, seen["pc_dv_ug_ml"] * per, s=6, color="0.6", alpha=0.5,
               label="observations (prediction-corrected)" if first else None, zorder=1)
    width = round(100 * vpc.ci_prob)
    for q, (colour, style) in _STYLE.items():
        rows = table[table["percentile"] == q].sort_values("time_days")
        t = rows["time_days"].to_numpy() * scale
        lower, upper = rows["lower"].to_numpy() * per, rows["upper"].to_numpy() * per
        # a lower bound below the LLOQ (NaN) or at or below 0 on a log axis: the band reaches
        # the bottom of the axis
        if log_y:
            lower = np.where(np.isnan(lower) | (lower <= floor), floor, lower)
        else:
            lower = np.where(np.isnan(lower), 0.0 if lloq is None else lloq, lower)
        upper = np.where(np.isnan(upper), np.nan, np.maximum(upper, lower))
        ax.fill_between(t, lower, upper, color=colour, alpha=0.18, lw=0, zorder=0,
                        label=(f"simulated {width}% interval, {_ordinal(q)} percentile"
                               if first else None))
        ax.plot(t, rows["observed"] * per, color=colour, lw=1.8, ls=style, marker="o", ms=3,
                label=f"observed {_ordinal(q)} percentile" if first else None, zorder=3)
    if lloq is not None:
        ax.axhline(lloq, color="0.2", ls=":", lw=1,
                   label="LLOQ (percentiles below it not drawn)" if first else None)
    if log_y:
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        ax.set_ylim(bottom=floor)
    ax.grid(alpha=0.3, which="both")


def _blq_panel(ax, vpc: PCVPC, stratum: str, scale: float, first: bool) -> None:
    rows = vpc.blq[vpc.blq["stratum"] == stratum].sort_values("time_days")
    t = rows["time_days"].to_numpy() * scale
    width = round(100 * vpc.ci_prob)
    ax.fill_between(t, rows["lower"], rows["upper"], color="0.5", alpha=0.3, lw=0,
                    label=f"simulated {width}% interval" if first else None)
    ax.plot(t, rows["median"], color="0.3", lw=1, ls="--",
            label="simulated median" if first else None)
    ax.plot(t, rows["observed"], color="tab:red", lw=1.8, marker="o", ms=3,
            label="observed" if first else None)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("fraction < LLOQ")
    ax.grid(alpha=0.3)


def plot_pc_vpc(vpc: PCVPC | PopulationFit, *, time_unit: str | None = None,
                log_y: bool = True, spec=None, **options) -> Figure:
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
        label the axes (a fit gives its own); without it, days and µg/mL.
    log_y : bool, default True
        Log concentration axis (a band whose lower bound is at or below 0, or below the LLOQ,
        reaches the bottom of the axis); False for a linear one.
    **options
        With a fit: ``n_replicates``, ``n_bins``, ``bins``, ``stratify``, ``ci_prob``,
        ``random_seed`` of :meth:`PopulationFit.pc_vpc`.

    Returns
    -------
    matplotlib.figure.Figure
        Per stratum (columns): the prediction-corrected observations (points) and their 5th,
        50th and 95th percentiles per time bin (lines: blue, red, purple), each over the
        simulated interval of the same percentile (a band of its colour); with an LLOQ, a
        lower panel of the fraction of values below it, observed (red) against simulated
        (grey band).
    """
    from pkmodel.errors import SpecificationError

    if time_unit is not None and time_unit not in TIME_UNITS:
        raise SpecificationError(f"time_unit must be one of day, hour, week, not "
                                 f"{time_unit!r}")
    if isinstance(vpc, PopulationFit):
        spec = vpc.spec
        vpc = vpc.pc_vpc(**options)
    time_unit = canonical_time_unit(time_unit or (spec.time_unit if spec is not None else "day"))
    scale = 1.0 / days_per(time_unit)
    per = float(concentration_from_internal(1.0, spec.concentration_unit if spec is not None
                                            else "µg/mL"))
    strata = list(dict.fromkeys(vpc.table["stratum"]))
    censored = vpc.lloq_ug_ml is not None and len(vpc.blq)
    fig = Figure(figsize=(max(8.0, 5.2 * len(strata)), 7.8 if censored else 6.4))
    grid = fig.add_gridspec(2 if censored else 1, len(strata),
                            height_ratios=[3, 1] if censored else [1])
    positive = vpc.observed["pc_dv_ug_ml"].to_numpy()
    positive = positive[np.isfinite(positive) & (positive > 0)]
    lows = [float(positive.min()) * per / 2] if positive.size else [1e-3 * per]
    if vpc.lloq_ug_ml is not None:
        lows.append(vpc.lloq_ug_ml * per / 2)
    floor = min(lows)
    top = None
    for j, stratum in enumerate(strata):
        ax = fig.add_subplot(grid[0, j], sharey=top)
        top = top or ax
        _concentration_panel(ax, vpc, stratum, scale, per, log_y, floor, first=j == 0)
        if len(strata) > 1:
            ax.set_title(stratum, fontsize=9)
        if j == 0:
            ax.set_ylabel(f"prediction-corrected {concentration_label(spec)}")
        xlabel = f"time since the first dose ({time_unit}s)"
        if censored:
            low = fig.add_subplot(grid[1, j], sharex=ax)
            _blq_panel(low, vpc, stratum, scale, first=j == 0)
            low.set_xlabel(xlabel)
            ax.tick_params(labelbottom=False)
        else:
            ax.set_xlabel(xlabel)
    width = round(100 * vpc.ci_prob)
    notes = [f"{vpc.n_replicates} replicates from the posterior",
             f"{100 * vpc.fraction_inside:.0f}% of observed percentile points inside their "
             f"{width}% intervals"]
    title = "pcVPC: " + "; ".join(notes)
    if vpc.n_predose:
        title += f"\n{vpc.n_predose} pre-dose samples (PRED 0, no prediction correction) left out"
    fig.suptitle(title, fontsize=9)
    # the legends below the panels, where they hide no data
    handles, labels = [], []
    for ax in fig.axes[:2] if censored else fig.axes[:1]:
        h, lab = ax.get_legend_handles_labels()
        prefix = "fraction < LLOQ: " if ax is not fig.axes[0] else ""
        handles += h
        labels += [prefix + x for x in lab]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig
