"""Plots (matplotlib). Every function returns its Figure; nothing needs a display.

* remission curves: :func:`plot_remission_curves`;
* futility thresholds: :func:`plot_crossing_tl`;
* predictive checks and calibration: :func:`plot_prior_predictive`,
  :func:`plot_posterior_predictive`, :func:`plot_calibration` (with
  :func:`replicated_outcomes` and :func:`calibration_table`);
* MCMC diagnostics (ArviZ 1): :func:`plot_trace`, :func:`plot_rank` (with its test,
  :func:`rank_test`);
* population PK: :func:`plot_pk_profiles`, :func:`plot_individual_fit`,
  :func:`plot_trough_forecast`.

Save any of them with ``fig.savefig("name.png")`` (or ``.svg``, ``.pdf``).
"""

from pkmodel.plots.checks import (
    calibration_table,
    jeffreys_interval,
    plot_calibration,
    plot_posterior_predictive,
    plot_prior_predictive,
    replicated_outcomes,
)
from pkmodel.plots.curves import plot_remission_curves
from pkmodel.plots.diagnostics import plot_rank, plot_trace, rank_test, thinning
from pkmodel.plots.pk import plot_individual_fit, plot_pk_profiles, plot_trough_forecast
from pkmodel.plots.thresholds import plot_crossing_tl

__all__ = [
    "calibration_table",
    "jeffreys_interval",
    "plot_calibration",
    "plot_crossing_tl",
    "plot_individual_fit",
    "plot_pk_profiles",
    "plot_posterior_predictive",
    "plot_prior_predictive",
    "plot_rank",
    "plot_remission_curves",
    "plot_trace",
    "plot_trough_forecast",
    "rank_test",
    "replicated_outcomes",
    "thinning",
]
