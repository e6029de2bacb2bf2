"""Each subject of a population fit: its predicted curves and its random effects.

* :func:`prediction_curves`: the population (PRED) and individual (IPRED) predictions of every
  subject on a time grid, for the per-subject plots;
* :func:`eta_table`: each subject's posterior-mean random effects with its covariates, for the
  eta plots.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from pkmodel.pk.population.build import model_data
from pkmodel.pk.population.equations import individual_log_parameters, predict
from pkmodel.pk.population.likelihood import posterior_values

__all__ = ["eta_table", "prediction_curves"]


def prediction_curves(fit, *, n_points: int = 80, max_draws: int = 200) -> pd.DataFrame:
    """PRED and IPRED of every subject from its first dose to its last observation: on an
    even time grid and at its sampling times.

    Parameters
    ----------
    fit : PopulationFit
        The fit.
    n_points : int, default 80
        Points of the even grid per subject.
    max_draws : int, default 200
        Posterior draws (evenly thinned, as :meth:`PopulationFit.goodness_of_fit` thins them)
        of the individual predictions.

    Returns
    -------
    pandas.DataFrame
        ``ID``, ``time_days``, ``pred_ug_ml`` (typical subject of its covariates, eta 0, at the
        posterior medians, as :meth:`PopulationFit.goodness_of_fit`), ``ipred_ug_ml`` (median
        over the draws of the subject's own prediction), ``ipred_lower_ug_ml`` and
        ``ipred_upper_ug_ml`` (its 90% interval).
    """
    spec, data = fit.spec, fit.data
    end = np.zeros(data.n_subjects)
    np.maximum.at(end, data.obs_subject, data.obs_time_days)
    grid = np.linspace(0.0, 1.0, int(n_points))
    # the even grid and the subject's own sampling times (the curves pass through them)
    per_subject = [np.unique(np.concatenate([end[i] * grid,
                                             data.obs_time_days[data.obs_subject == i]]))
                   for i in range(data.n_subjects)]
    subject = np.repeat(np.arange(data.n_subjects), [t.size for t in per_subject])
    times = np.concatenate(per_subject)
    # each grid time takes the occasion and time-varying covariates of its subject's last
    # observation at or before it (the first, before any)
    source = np.concatenate([_last_at_or_before(np.flatnonzero(data.obs_subject == i),
                                                data.obs_time_days, t)
                             for i, t in enumerate(per_subject)])
    dense = dataclasses.replace(
        data, obs_subject=subject, obs_time_days=times, obs_value_ug_ml=np.ones(times.size),
        obs_cens=np.zeros(times.size, dtype=int),
        obs_covariates={k: v[source] for k, v in data.obs_covariates.items()},
        obs_occasion=None if data.obs_occasion is None else data.obs_occasion[source])
    arrays = model_data(spec, dense)
    n = fit.posterior.sizes["chain"] * fit.posterior.sizes["draw"]
    pick = np.unique(np.linspace(0, n - 1, min(int(max_draws), n)).astype(int))
    values = posterior_values(spec, fit.posterior, pick)
    ipred = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    lower, median, upper = np.quantile(ipred, [0.05, 0.5, 0.95], axis=0)
    typical = {k: float(np.median(fit.posterior[k].values)) for k in values
               if k.startswith(("log_tv_", "theta_", "sigma_"))}  # as goodness_of_fit
    typical |= {f"eta_{p}": np.zeros(data.n_subjects) for p in spec.bsv_parameters}
    pred = predict(spec, arrays, individual_log_parameters(spec, arrays, typical))
    ids = np.asarray(data.subject_ids, dtype=object)
    return pd.DataFrame({"ID": ids[subject], "time_days": times, "pred_ug_ml": pred,
                         "ipred_ug_ml": median, "ipred_lower_ug_ml": lower,
                         "ipred_upper_ug_ml": upper})


def _last_at_or_before(rows: np.ndarray, obs_times: np.ndarray,
                       times: np.ndarray) -> np.ndarray:
    """For each of ``times``, the observation (of ``rows``, in time order) last at or before
    it, or the first."""
    order = rows[np.argsort(obs_times[rows], kind="stable")]
    at = np.searchsorted(obs_times[order], times, side="right") - 1
    return order[np.maximum(at, 0)]


def eta_table(fit) -> pd.DataFrame:
    """Each subject's posterior-mean random effects with its covariates.

    Returns
    -------
    pandas.DataFrame
        ``ID``, ``eta_<p>`` (posterior mean, log scale) of each parameter with BSV, and each
        covariate the fit's data hold (its unit in the specification's registry).
    """
    post = fit.posterior
    out = {"ID": list(fit.data.subject_ids)}
    out |= {f"eta_{p}": post[f"eta_{p}"].mean(dim=("chain", "draw")).values
            for p in fit.spec.bsv_parameters}
    return pd.DataFrame(out | {k: v for k, v in fit.data.covariates.items()})
