"""MCMC diagnostics plots: trace and rank plots of the population parameters (ArviZ 1).

The plots are drawn by ``arviz_plots`` with its matplotlib backend. ArviZ creates its figures
through pyplot; they are detached from pyplot's figure manager here, so that nothing piles up in
a long session and no display is needed: the functions return a plain Figure, as every pkmodel
plot does.

The rank plot carries its own test, the multi-chain uniformity test of the ranks
(:func:`rank_test`, ``arviz_stats``' ``mchain_uniformity_test``): a p-value per panel and, below
the level, the draws that contribute most marked in black. It is not the convergence gate of
:attr:`pkmodel.RemissionFit.diagnostics` (R-hat, ESS, divergences, E-BFMI, tree depth) and,
with thousands of draws, it can flag differences between chains too small to show in R-hat or
ESS; the figure's title says which panels it flags and that the gate is separate.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["plot_rank", "plot_trace", "rank_test"]


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


def _gate_text(fit) -> str:
    diag = fit.diagnostics
    status = "PASS" if diag.converged else "FAIL"
    return (f"diagnostics (convergence gate) {status}: max R-hat {diag.rhat_text()}, min ESS bulk "
            f"{diag.min_ess_bulk:.0f} / tail {diag.min_ess_tail:.0f}, divergences "
            f"{diag.divergences}")


def thinning(fit, names: list[str]) -> int:
    """The thinning that makes each chain's draws about independent: draws per chain over the
    smallest within-chain bulk ESS of the parameters ``names`` (at least 1).

    The multi-chain uniformity test of the ranks assumes independent draws (Säilynoja, Bürkner
    and Vehtari, Stat Comput 2022;32:32, who thin MCMC draws by their ESS before testing); on
    autocorrelated draws it flags well-mixed chains far more often than its level says. The ESS
    is each chain's own (its autocorrelation), not the multi-chain one, which chains that
    disagree would shrink, taking the test's power exactly where it is needed.
    """
    import arviz as az

    post = fit.tree["posterior"].to_dataset()[names]
    per_chain = int(post.sizes["draw"])
    smallest = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for c in range(post.sizes["chain"]):
            ess = az.ess(post.isel(chain=[c]), method="bulk")
            smallest = min(smallest, *(float(np.nanmin(ess[v].values)) for v in names))
    if not np.isfinite(smallest) or smallest <= 0:
        return 1
    return max(1, math.ceil(per_chain / smallest))


def _thinned(fit, names: list[str]):
    """The posterior of ``names`` thinned by :func:`thinning`, as a DataTree, and the factor."""
    import xarray as xr

    k = thinning(fit, names)
    post = fit.tree["posterior"].to_dataset()[names].isel(draw=slice(None, None, k))
    return xr.DataTree.from_dict({"posterior": post}), k


def _title(fit, fig: Figure, what: str, extra: str = "") -> None:
    diag = fit.diagnostics
    lines = [f"{what} ({diag.n_draws} draws); {_gate_text(fit)}", *([extra] if extra else [])]
    fig.suptitle("\n".join(lines), fontsize=9)


def rank_test(fit, var_names: list[str] | str | None = None, *,
              alpha: float | None = None) -> pd.DataFrame:
    """The rank plot's multi-chain uniformity test, one row per parameter element.

    Parameters
    ----------
    fit : RemissionFit
        The fit.
    var_names : list of str, optional
        Parameters to test; default the population parameters.
    alpha : float, optional
        Level below which a parameter is flagged; default ``1 - envelope_prob`` of ArviZ's
        settings (0.01), the level the rank plot shows.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter`` (e.g. ``tau_month[12]``), ``p_value``, ``alpha``, ``flagged``,
        ``thinning``; empty for a fit with one chain (the test compares chains).

    Notes
    -----
    The test is not part of the convergence gate (:attr:`RemissionFit.diagnostics`). It asks
    whether each chain's ranks are uniform among all draws, on draws thinned to be about
    independent (:func:`thinning`), as the test assumes; it can detect between-chain
    differences too small to show in R-hat or ESS, and the report calls a fit that passes the
    gate but is flagged here "CHECK", not "PASS".
    """
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)
    from arviz_base import rcParams

    if alpha is None:
        alpha = 1 - float(rcParams["stats.envelope_prob"])
    names = _var_names(fit, var_names)
    columns = ["parameter", "p_value", "alpha", "flagged", "thinning"]
    if fit.tree["posterior"].sizes["chain"] < 2:
        return pd.DataFrame(columns=columns)
    tree, k = _thinned(fit, names)
    post = tree["posterior"].to_dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ranks = post.azstats.compute_ranks(dim=["chain", "draw"], relative=True)
        p_values = ranks.azstats.mchain_uniformity_test(dim=["chain", "draw"])[0]
    rows = []
    for name in names:
        da = p_values[name]
        if da.ndim == 0:
            rows.append((name, float(da)))
            continue
        stacked = da.stack(element=da.dims)
        for i in range(stacked.size):
            label = ", ".join(str(stacked[d].values[i]) for d in da.dims)
            rows.append((f"{name}[{label}]", float(stacked.values[i])))
    out = pd.DataFrame(rows, columns=["parameter", "p_value"])
    out["alpha"] = alpha
    out["flagged"] = np.asarray(out["p_value"] < alpha, dtype=bool)
    out["thinning"] = k
    return out[columns]


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
    """Rank plots: per-chain fractional-rank Δ-ECDF with the multi-chain uniformity test.

    If every chain explores the same posterior, each chain's ranks are uniform and its Δ-ECDF
    stays near zero; a chain that sits apart from the others bends away. Each panel shows the
    test's p-value; below the level (0.01) the draws that contribute most are marked in black.
    The title gives the convergence gate's verdict and says which panels the test flags: the
    two are different checks (see :func:`rank_test`), and the title says so.

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
        # the test on every panel is that of rank_test: on the draws thinned to independence
        tree = _thinned(fit, names)[0] if fit.tree["posterior"].sizes["chain"] > 1 else fit.tree
        pc = azp.plot_rank(tree, var_names=names, backend="matplotlib", col_wrap=col_wrap,
                           figure_kwargs={"figsize": (3.0 * min(col_wrap, panels),
                                                      0.6 + 2.3 * rows)})
    fig = _detach(pc)
    test = rank_test(fit, names)
    flagged = list(test.parameter[test.flagged])
    level = f"{float(test.alpha.iloc[0]):g}" if len(test) else "0.01"
    k = int(test.thinning.iloc[0]) if len(test) else 1
    extra = (f"p: multi-chain rank uniformity test on the draws thinned by {k} (about "
             f"independent), NOT part of the gate. Flagged (p < {level}): "
             f"{', '.join(flagged) if flagged else 'none'}")
    _title(fit, fig, "Rank plots", extra)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
