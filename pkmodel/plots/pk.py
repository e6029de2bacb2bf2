"""PK plots: concentration profiles per regimen, one patient's fit, and trough forecasts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from pkmodel.pk import (
    IndividualEstimate,
    PopulationModel,
    Regimen,
    TroughForecast,
    concentrations,
    get_model,
    parse_regimen,
    piecewise_concentrations,
    simulate,
)
from pkmodel.pk.occasions import occasion_parameters

__all__ = ["plot_individual_fit", "plot_pk_profiles", "plot_trough_forecast"]

# Matplotlib 3.10 replaced violinplot's ``vert`` by ``orientation``.
_HORIZONTAL = ({"orientation": "horizontal"}
               if tuple(int(v) for v in mpl.__version__.split(".")[:2]) >= (3, 10)
               else {"vert": False})


def plot_pk_profiles(model: PopulationModel | str = "fasanmade2009",
                     regimens: Sequence[Regimen | str] = ("5mg/kg q8w", "10mg/kg q8w",
                                                          "5mg/kg q4w"),
                     covariates: Mapping[str, object] | None = None, *,
                     until_week: float = 54.0, n_draws: int = 500, ci_prob: float = 0.9,
                     target_ug_ml: float | None = 5.0,
                     random_seed: int | None = None) -> Figure:
    """Concentration-time profiles under each regimen, with between-patient variability.

    Parameters
    ----------
    model : PopulationModel or str, default "fasanmade2009"
        The population PK model.
    regimens : sequence of Regimen or str
        Regimens, each with induction at weeks 0, 2 and 6 then maintenance.
    covariates : mapping, optional
        One covariate profile (``weight_kg``, ``albumin_g_dl``...); reference values otherwise.
    until_week : float, default 54
        Length of the course.
    n_draws : int, default 500
        Virtual patients drawn from the between-subject variability (0: typical patient only).
    ci_prob : float, default 0.9
        Width of the band of concentrations across virtual patients.
    target_ug_ml : float or None, default 5
        Draw a horizontal line at this trough target.
    random_seed : int, optional
        Seed of the virtual patients.

    Returns
    -------
    matplotlib.figure.Figure
        Left: concentration over time (log scale), median and ``ci_prob`` band per regimen, the
        typical patient dashed. Right: the distribution of the steady-state trough per regimen.

    Examples
    --------
    >>> fig = plot_pk_profiles("fasanmade2009", ["5mg/kg q8w", "10mg/kg q8w"],
    ...                        {"weight_kg": 70}, n_draws=100, random_seed=1)
    >>> len(fig.axes)
    2
    """
    model = get_model(model)
    regs = [parse_regimen(r) for r in regimens]
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    times = np.arange(0.0, until_week * 7.0 + 1e-9, 0.5)
    q = [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2]
    fig = Figure(figsize=(11, 4.2))
    ax, ax_ss = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.4, 1]})
    troughs = []
    for k, reg in enumerate(regs):
        c = colours[k % len(colours)]
        typical = simulate(model, reg, covariates, times_days=times, until_week=until_week)
        ax.plot(times / 7, typical["concentration"].values[0, 0], color=c, lw=1, ls="--")
        if n_draws > 0:
            ds = simulate(model, reg, covariates, times_days=times, until_week=until_week,
                          n_draws=n_draws, random_seed=random_seed)
            conc = ds["concentration"].values[0]
            lo, mid, hi = np.quantile(conc, q, axis=0)
            ax.fill_between(times / 7, np.maximum(lo, 1e-2), hi, color=c, alpha=0.2, lw=0)
            ax.plot(times / 7, mid, color=c, lw=1.8, label=reg.label)
            troughs.append(ds["steady_state_trough"].values[0])
        else:
            ax.lines[-1].set_label(reg.label)
            troughs.append(typical["steady_state_trough"].values[0])
    ax.set_yscale("log")
    ax.set_ylim(0.1, None)
    ax.set_xlim(0, until_week)
    ax.set_xlabel("weeks since the first infusion")
    ax.set_ylabel("concentration (µg/mL)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    positions = np.arange(len(regs))
    if n_draws > 0:
        parts = ax_ss.violinplot([np.log10(t) for t in troughs], positions, **_HORIZONTAL,
                                 showmedians=True, showextrema=False)
        for k, body in enumerate(parts["bodies"]):
            body.set_facecolor(colours[k % len(colours)])
            body.set_alpha(0.4)
    else:
        ax_ss.plot([np.log10(t[0]) for t in troughs], positions, "o")
    ax_ss.set_yticks(positions, [r.label for r in regs], fontsize=8)
    ticks = [0.5, 1, 2, 5, 10, 20, 50]
    ax_ss.set_xticks(np.log10(ticks), [f"{t:g}" for t in ticks])
    ax_ss.set_xlim(np.log10(0.3), np.log10(80))
    ax_ss.set_xlabel("steady-state trough (µg/mL)")
    ax_ss.grid(alpha=0.3, axis="x")
    if target_ug_ml is not None:
        ax.axhline(target_ug_ml, color="0.4", ls=":", lw=1)
        ax_ss.axvline(np.log10(target_ug_ml), color="0.4", ls=":", lw=1)
        for k, t in enumerate(troughs):
            share = float(np.mean(t >= target_ug_ml))
            ax_ss.text(np.log10(ticks[-1]), k + 0.3, f"{100 * share:.0f}% >= {target_ug_ml:g}",
                       ha="right", fontsize=7, color="0.3")
    who = "typical patient" if n_draws == 0 else (
        f"{n_draws} virtual patients, median and {round(ci_prob * 100)}% band; dashed: typical")
    fig.suptitle(f"{model.title}: {who}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_individual_fit(estimate: IndividualEstimate, *, until_day: float | None = None,
                        ci_prob: float = 0.9, n_draws: int = 400) -> Figure:
    """One patient's observed concentrations and the posterior of their concentration profile.

    Parameters
    ----------
    estimate : IndividualEstimate
        From :func:`pkmodel.pk.estimate_individual`.
    until_day : float, optional
        End of the time axis; default a week after the last dose or observation.
    ci_prob : float, default 0.9
        Width of the posterior band.
    n_draws : int, default 400
        Posterior draws used for the band (a random subset, for speed).

    Returns
    -------
    matplotlib.figure.Figure
        Posterior median and band of the concentration, the population-typical profile for the
        same covariates (dashed), the infusions (ticks) and the observations (censored ones as
        triangles at their limit).
    """
    sched = estimate.schedule
    obs = estimate.observations
    end = until_day if until_day is not None else max(
        float(sched.times_days[-1]), float(obs.times_days.max())) + 7.0
    times = np.linspace(0.0, end, 600)
    eta, kappa = estimate.eta_draws, estimate.kappa_draws
    if eta.shape[0] > n_draws:
        pick = np.linspace(0, eta.shape[0] - 1, n_draws).astype(int)
        eta, kappa = eta[pick], None if kappa is None else kappa[pick]
    if kappa is None:
        params = estimate.model.individual_parameters(estimate.covariates, eta)
        conc = concentrations(params, sched, times, estimate.weight_kg)
    else:  # inter-occasion variability: each occasion's kappa, propagated exactly
        history = estimate.covariate_history
        params, change = occasion_parameters(
            estimate.model, estimate.covariates if history is None else history,
            estimate.occasions, eta, kappa)
        amounts = (sched.amounts_mg(estimate.weight_kg) if history is None
                   else history.dose_amounts_mg(sched))
        conc = piecewise_concentrations(params, change, sched, times, amounts)
    q = [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2]
    lo, mid, hi = np.quantile(conc.reshape(-1, times.size), q, axis=0)
    typical = concentrations(estimate.model.individual_parameters(estimate.covariates), sched,
                             times, estimate.weight_kg).reshape(-1)
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    ax.fill_between(times / 7, np.maximum(lo, 1e-2), hi, color="C0", alpha=0.25, lw=0,
                    label=f"posterior {round(ci_prob * 100)}%")
    ax.plot(times / 7, mid, color="C0", lw=1.8, label="posterior median")
    ax.plot(times / 7, np.maximum(typical, 1e-2), color="0.4", lw=1, ls="--",
            label="population typical")
    for t in sched.times_days:
        ax.axvline(t / 7, color="0.8", lw=0.8, zorder=0)
    exact = obs.cens == 0
    ax.plot(obs.times_days[exact] / 7, obs.values_ug_ml[exact], "o", color="C3",
            label="observed")
    for code, marker in ((1, "v"), (-1, "^")):
        sel = obs.cens == code
        if sel.any():
            ax.plot(obs.times_days[sel] / 7, obs.values_ug_ml[sel], marker, color="C3",
                    mfc="none", label="below limit" if code == 1 else "above limit")
    ax.set_yscale("log")
    ax.set_ylim(0.1, None)
    ax.set_xlim(0, end / 7)
    ax.set_xlabel("weeks since the first infusion (grey lines: infusions)")
    ax.set_ylabel("concentration (µg/mL)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    ax.set_title(f"Individual estimate ({estimate.method}, {estimate.model.name}), "
                 f"{estimate.weight_kg:g} kg", fontsize=9)
    fig.tight_layout()
    return fig


def plot_trough_forecast(forecast: TroughForecast) -> Figure:
    """Forecast trough per regimen: posterior median and interval, and P(trough >= target).

    Parameters
    ----------
    forecast : TroughForecast
        From :func:`pkmodel.pk.forecast_troughs`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fc = forecast_troughs(estimate, ["5mg/kg q8w", "10mg/kg q8w"])  # doctest: +SKIP
    >>> plot_trough_forecast(fc).savefig("forecast.png")  # doctest: +SKIP
    """
    table = forecast.table()
    regimens = [str(r) for r in table["regimen"].values]
    draws = forecast.draws.transpose("regimen", "draw").values
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    fig = Figure(figsize=(7.5, 0.9 + 0.7 * len(regimens)))
    ax = fig.subplots()
    y = np.arange(len(regimens))
    for k, reg in enumerate(regimens):
        c = colours[k % len(colours)]
        values = np.log10(np.maximum(draws[k], 1e-3))
        parts = ax.violinplot([values], [k], showextrema=False, widths=0.8, **_HORIZONTAL)
        for body in parts["bodies"]:
            body.set_facecolor(c)
            body.set_alpha(0.3)
        lo, med, hi = (float(table[v].sel(regimen=reg)) for v in ("lower", "median", "upper"))
        ax.plot(np.log10([lo, hi]), [k, k], color=c, lw=3, solid_capstyle="butt")
        ax.plot([np.log10(med)], [k], "o", color=c)
        p = float(table["p_target"].sel(regimen=reg))
        ax.text(1.01, k, f"P(>= {forecast.target_ug_ml:g}) = {p:.2f}",
                transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    ax.axvline(np.log10(forecast.target_ug_ml), color="0.4", ls=":", lw=1)
    ax.set_yticks(y, regimens, fontsize=8)
    ax.invert_yaxis()
    lo_all = np.nanmin(np.log10(np.maximum(draws, 1e-3)))
    hi_all = np.nanmax(np.log10(np.maximum(draws, 1e-3)))
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200)
             if lo_all - 0.3 <= np.log10(t) <= hi_all + 0.3]
    ax.set_xticks(np.log10(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlabel("forecast trough (µg/mL)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(f"Trough forecast ({forecast.horizon}): median, "
                 f"{round(forecast.credible * 100)}% interval and posterior", fontsize=9)
    fig.tight_layout()
    return fig
