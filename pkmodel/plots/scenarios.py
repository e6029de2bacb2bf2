"""Plot of a dosing-scenario simulation: remission rate and futility per regimen and TL band."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["plot_scenarios"]


def plot_scenarios(ds: xr.Dataset, *, months=None) -> Figure:
    """Expected remission rate (with credible interval) and fraction futile by baseline-TL band.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`pkmodel.simulate_scenarios`.
    months : list of int, optional
        Assessment months to show (default: all), one column each.

    Returns
    -------
    matplotlib.figure.Figure
        Top row: remission rate per band (points, credible interval as bars), one marker per
        regimen; bottom row: fraction of patients for whom intensification is futile.
    """
    months = list(ds["month"].values) if months is None else list(np.atleast_1d(months))
    bands = [str(b) for b in ds["band"].values]
    x = np.arange(len(bands))
    regimens = [str(r) for r in ds["regimen"].values]
    width = 0.8 / max(len(regimens), 1)
    fig = Figure(figsize=(4.2 * len(months) + 0.6, 6.4), layout="constrained")
    axes = fig.subplots(2, len(months), squeeze=False, sharex=True)
    ci = round(100 * float(ds.attrs.get("ci_prob", 0.9)))
    for j, month in enumerate(months):
        top, bottom = axes[0, j], axes[1, j]
        for i, reg in enumerate(regimens):
            row = ds.sel(regimen=reg, month=month)
            offset = x - 0.4 + width * (i + 0.5)
            mean = row["remission_rate_mean"].values
            err = np.vstack([mean - row["remission_rate_lower"].values,
                             row["remission_rate_upper"].values - mean])
            label = f"{reg} ({row['strategy'].item()})"
            top.errorbar(offset, mean, yerr=err, fmt="o", capsize=3, label=label)
            bottom.bar(offset, row["fraction_futile"].values, width=width, label=label)
        top.set_title(f"month {month}")
        top.set_ylim(0, 1)
        top.set_ylabel(f"expected remission rate ({ci}% CrI)")
        bottom.set_ylabel(f"fraction futile (P(p < {ds.attrs.get('p_min', 0.2):g}) >= "
                          f"{ds.attrs.get('credibility', 0.9):g})")
        bottom.set_ylim(0, 1)
        bottom.set_xticks(x, bands)
        bottom.set_xlabel("baseline TL band (µg/mL)")
        top.grid(alpha=0.3)
        bottom.grid(alpha=0.3, axis="y")
    axes[0, 0].legend(fontsize="small", loc="upper right")
    fig.suptitle(f"{ds.attrs.get('n_simulated', '?'):,} virtual patients, "
                 f"{ds.attrs.get('n_posterior_draws', '?')} posterior draws (research use only)",
                 fontsize="medium")
    return fig
