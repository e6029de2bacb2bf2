"""Plots (matplotlib). Every function returns its Figure; nothing needs a display."""

from pkmodel.plots.curves import plot_remission_curves

__all__ = ["plot_remission_curves"]
