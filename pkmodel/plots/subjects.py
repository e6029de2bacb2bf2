"""Per-subject and random-effect plots of a population PK fit.

* :func:`plot_individuals`: each subject's observations (DV) with its individual (IPRED, with
  its 90% interval) and population (PRED) predictions over time, a page of panels per figure;
* :func:`plot_etas`: the distribution of the posterior-mean random effects against their
  population distribution, with the shrinkage, and the etas against each covariate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pkmodel.pk.population import PopulationFit
from pkmodel.pk.units import concentration_from_internal, days_per
from pkmodel.plots.population import loess
from pkmodel.plots.vpc import log_axis

__all__ = ["plot_etas", "plot_individuals"]


def plot_individuals(fit: PopulationFit, *, per_page: int = 12, log_y: bool = True,
                     curves: pd.DataFrame | None = None) -> list[Figure]:
    """DV, IPRED and PRED over time for every subject, ``per_page`` subjects a figure.

    Parameters
    ----------
    fit : PopulationFit
        The fit.
    per_page : int, default 12
        Subjects per figure (panels of 4 columns).
    log_y : bool, default True
        Log concentration axis.
    curves : pandas.DataFrame, optional
        :func:`pkmodel.pk.population.individuals.prediction_curves` (computed when not given).

    Returns
    -------
    list of matplotlib.figure.Figure
        One per page, subjects in the dataset's order. Observed values are dots; values below
        the LLOQ open triangles at the LLOQ; IPRED a blue line over its 90% band; PRED a
        dashed grey line.
    """
    from pkmodel.errors import SpecificationError
    from pkmodel.pk.population.individuals import prediction_curves

    if isinstance(per_page, bool) or int(per_page) < 1:
        raise SpecificationError(f"per_page must be at least 1, not {per_page!r}")
    curves = prediction_curves(fit) if curves is None else curves
    data = fit.data
    unit = fit.spec.time_unit  # time and concentrations in the dataset's units
    scale = 1.0 / days_per(unit)
    per = float(concentration_from_internal(1.0, fit.spec.concentration_unit))
    ids = list(data.subject_ids)
    per_page = int(per_page)
    pages = [ids[i:i + per_page] for i in range(0, len(ids), per_page)]
    by_id = dict(tuple(curves.groupby("ID", sort=False)))
    figures = []
    for number, page in enumerate(pages, start=1):
        ncols = min(4, len(page))
        nrows = int(np.ceil(len(page) / ncols))
        fig = Figure(figsize=(3.1 * ncols + 0.6, 2.5 * nrows + 1.0))
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, sid in zip(axes, page, strict=False):
            i = ids.index(sid)
            c = by_id[sid]
            t = c["time_days"].to_numpy() * scale
            shown = c["pred_ug_ml"].to_numpy() > 0 if log_y else np.ones(len(c), dtype=bool)
            ax.fill_between(t[shown], c["ipred_lower_ug_ml"].to_numpy()[shown] * per,
                            c["ipred_upper_ug_ml"].to_numpy()[shown] * per, color="tab:blue",
                            alpha=0.15, lw=0)
            ax.plot(t[shown], c["ipred_ug_ml"].to_numpy()[shown] * per, color="tab:blue", lw=1.4,
                    label="IPRED (median, 90% band)")
            ax.plot(t[shown], c["pred_ug_ml"].to_numpy()[shown] * per, color="0.4", lw=1.2,
                    ls="--", label="PRED")
            rows = data.obs_subject == i
            seen = rows & (data.obs_cens == 0)
            below = rows & (data.obs_cens != 0)
            ax.scatter(data.obs_time_days[seen] * scale, data.obs_value_ug_ml[seen] * per, s=14,
                       color="black", zorder=3, label="DV")
            if below.any():
                ax.scatter(data.obs_time_days[below] * scale, data.obs_value_ug_ml[below] * per,
                           s=22, marker="v", facecolors="none", edgecolors="tab:red",
                           zorder=3, label="censored (at its limit)")
            if log_y:
                ax.set_yscale("log")
                log_axis(ax.yaxis)
            ax.set_title(f"ID {sid}", fontsize=8, pad=2)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3, which="both")
        for ax in axes[len(page):]:
            ax.set_visible(False)
        for ax in axes[::ncols]:
            ax.set_ylabel(fit.spec.concentration_unit, fontsize=8)
        for ax in axes[(nrows - 1) * ncols:]:
            ax.set_xlabel(f"time ({unit}s)", fontsize=8)
        handles, labels = [], []
        for ax in axes[:len(page)]:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
        fig.suptitle(f"Individual fits, page {number} of {len(pages)} (subjects "
                     f"{ids.index(page[0]) + 1}-{ids.index(page[-1]) + 1} of {len(ids)})",
                     fontsize=10)
        fig.tight_layout(rect=(0, 0.5 / (2.5 * nrows + 1.0), 1, 1))
        figures.append(fig)
    return figures


def plot_etas(fit: PopulationFit) -> Figure:
    """The random effects: their distribution with the shrinkage, and against each covariate.

    Returns
    -------
    matplotlib.figure.Figure
        One row per parameter with BSV: the histogram of the subjects' posterior-mean etas
        over the population distribution ``Normal(0, omega)`` at the posterior median of
        omega, the eta shrinkage in the title; then the etas against each covariate of the
        fit's data, with a LOESS smooth (red) and a line at 0. A covariate already in the
        model should show no trend left; a trend suggests a covariate effect.
    """
    from scipy import stats

    from pkmodel.errors import SpecificationError
    from pkmodel.pk.population.individuals import eta_table

    names = fit.spec.bsv_parameters
    if not names:
        raise SpecificationError("the model has no random effects (no parameter with bsv = "
                                 "true), so there are no etas to plot")
    table = eta_table(fit)
    covariates = list(fit.data.covariates)
    shrinkage = fit.shrinkage()
    registry = fit.spec.covariate_registry
    ncols = 1 + len(covariates)
    if covariates:  # a row per parameter: its distribution, then each covariate
        fig = Figure(figsize=(3.3 * ncols + 0.4, 2.7 * len(names) + 0.7))
        axes = fig.subplots(len(names), ncols, squeeze=False)
    else:  # the distributions side by side
        fig = Figure(figsize=(3.3 * len(names) + 0.4, 3.4))
        axes = fig.subplots(1, len(names), squeeze=False).T
    for r, p in enumerate(names):
        eta = table[f"eta_{p}"].to_numpy()
        omega = float(np.median(fit.posterior[f"omega_{p}"].values))
        ax = axes[r, 0]
        ax.hist(eta, bins=max(5, min(20, eta.size // 4)), density=True, color="tab:blue",
                alpha=0.6, label="posterior means")
        x = np.linspace(-3.5 * omega, 3.5 * omega, 200)
        ax.plot(x, stats.norm.pdf(x, 0, omega), color="0.2", lw=1.2,
                label=f"Normal(0, {omega:.2g})")
        ax.set_title(f"eta_{p}: shrinkage {shrinkage[p]:.0%}", fontsize=9)
        ax.set_xlabel(f"eta_{p} (log scale)", fontsize=8)
        ax.set_ylabel("density", fontsize=8)
        ax.legend(fontsize=6, frameon=False, loc="upper left")
        for c, name in enumerate(covariates, start=1):
            ax = axes[r, c]
            x = table[name].to_numpy(dtype=float)
            ax.scatter(x, eta, s=12, alpha=0.6)
            if np.unique(x).size > 4:
                gx, gy = loess(x, eta)
                ax.plot(gx, gy, color="tab:red", lw=1.5)
            ax.axhline(0, color="0.3", lw=1)
            unit = registry[name].unit if name in registry else ""
            ax.set_xlabel(f"{name}" + (f" ({unit})" if unit else ""), fontsize=8)
            ax.set_ylabel(f"eta_{p}", fontsize=8)
        for ax in axes[r]:
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    fig.suptitle(f"Random effects of {fit.data.n_subjects} subjects (posterior means)",
                 fontsize=10)
    fig.tight_layout()
    return fig
