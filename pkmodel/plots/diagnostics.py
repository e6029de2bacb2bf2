"""MCMC diagnostics plots: trace and rank plots of the population parameters (ArviZ 1).

The plots are drawn by ``arviz_plots`` with its matplotlib backend. ArviZ creates its figures
through pyplot; they are detached from pyplot's figure manager here, so that nothing piles up in
a long session and no display is needed: the functions return a plain Figure, as every pkmodel
plot does.
"""

from __future__ import annotations

import math
import warnings

from matplotlib.figure import Figure

__all__ = ["plot_rank", "plot_trace"]


def _var_names(fit, var_names) -> list[str]:
    if var_names is None:
        return list(fit.population_parameters)
    if isinstance(var_names, str):
        var_names = [var_names]
    missing = [v for v in var_names if v not in fit.tree["posterior"].data_vars]
    if missing:
        from pkmodel.errors import PredictionError

        raise PredictionError(f"unknown parameter(s) {missing}; this fit has "
                              f"{sorted(fit.tree['posterior'].data_vars)}")
    return list(var_names)


def _n_panels(fit, names: list[str]) -> int:
    post = fit.tree["posterior"]
    total = 0
    for name in names:
        extra = [d for d in post[name].dims if d not in ("chain", "draw")]
        total += math.prod(post.sizes[d] for d in extra) if extra else 1
    return total


def _detach(plot_collection) -> Figure:
    """The matplotlib Figure of an arviz_plots PlotCollection, removed from pyplot's manager."""
    import matplotlib.pyplot as plt

    fig = plot_collection.viz["figure"].item()
    plt.close(fig)
    return fig


def _title(fit, fig: Figure, what: str) -> None:
    diag = fit.diagnostics()
    status = "PASS" if diag.converged else "FAIL"
    fig.suptitle(f"{what} ({diag.n_draws} draws); diagnostics {status}: max R-hat "
                 f"{diag.max_rhat:.3f}, min ESS bulk {diag.min_ess_bulk:.0f} / tail "
                 f"{diag.min_ess_tail:.0f}, divergences {diag.divergences}", fontsize=9)


def plot_trace(fit, var_names: list[str] | str | None = None) -> Figure:
    """Trace plots: per-chain marginal densities (left) and draws in order (right).

    Parameters
    ----------
    fit : RemissionFit
        The fit.
    var_names : list of str, optional
        Parameters to show; default the population parameters (``fit.population_parameters``).

    Returns
    -------
    matplotlib.figure.Figure
        Divergent transitions, if any, are marked on the traces. The title carries the fit's
        pass/fail convergence summary.

    Examples
    --------
    >>> plot_trace(fit, ["alpha", "beta"]).savefig("trace.png")  # doctest: +SKIP
    """
    import arviz_plots as azp

    names = _var_names(fit, var_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pc = azp.plot_trace_dist(fit.tree, var_names=names, backend="matplotlib",
                                 compact=True,
                                 figure_kwargs={"figsize": (10, 1.2 + 1.3 * len(names))})
    fig = _detach(pc)
    _title(fit, fig, "Trace plots")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return fig


def plot_rank(fit, var_names: list[str] | str | None = None, *, col_wrap: int = 4) -> Figure:
    """Rank plots: per-chain fractional-rank Δ-ECDF with a simultaneous envelope test.

    If every chain explores the same posterior, each chain's ranks are uniform and its Δ-ECDF
    stays near zero; a chain that sits apart from the others bends away.

    Parameters
    ----------
    fit : RemissionFit
        The fit.
    var_names : list of str, optional
        Parameters to show; default the population parameters.
    col_wrap : int, default 4
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp

    names = _var_names(fit, var_names)
    panels = _n_panels(fit, names)
    rows = max(1, math.ceil(panels / col_wrap))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pc = azp.plot_rank(fit.tree, var_names=names, backend="matplotlib", col_wrap=col_wrap,
                           figure_kwargs={"figsize": (3.0 * min(col_wrap, panels),
                                                      0.6 + 2.3 * rows)})
    fig = _detach(pc)
    _title(fit, fig, "Rank plots")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
