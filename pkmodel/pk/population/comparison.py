"""Model comparison of population fits by PSIS-LOO, and LOO-PIT residuals.

* :func:`loo`: ArviZ's PSIS-LOO of a fit, leaving out one subject at a time (``level =
  "subject"``: its random effects integrated out, how a new patient arrives) or one observation
  (``"observation"``);
* :func:`compare_fits`: fits of the same dataset ranked by ELPD (``az.compare``), with their
  Pareto k-hat diagnostics, the subjects or observations k-hat flags, and whether the ranking
  can be trusted;
* :func:`loo_pit`: each observation's LOO probability integral transform, computed exactly
  from the normal residual error at every draw and weighted by PSIS (uniform under the model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.errors import SpecificationError

__all__ = ["LEVELS", "Comparison", "compare_fits", "loo", "loo_pit", "psis_weights"]

#: What LOO leaves out, and the log likelihood variable it reads.
LEVELS = {"subject": "y_by_subject", "observation": "y"}


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise SpecificationError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    return LEVELS[level]


def _require_log_likelihood(fit, name: str = "the fit") -> None:
    if "log_likelihood" not in fit.tree.children:
        raise SpecificationError(
            f"{name} has no log likelihood (saved by pkmodel 0.4 or earlier, which did not "
            "store it), so LOO cannot be computed for it; fit it again with this version "
            "(pkmodel pk fit DATA --spec SPEC.toml -o FIT.nc) to compare it")


def loo(fit, level: str = "subject"):
    """PSIS-LOO of a population fit (``arviz.loo`` on its ``log_likelihood`` group).

    Parameters
    ----------
    fit : PopulationFit
        A fit made (or saved) by this version of pkmodel.
    level : {"subject", "observation"}, default "subject"
        Leave out a subject (its random effects integrated out) or an observation.

    Returns
    -------
    arviz_stats.ELPDData
        ``elpd``, ``se``, ``p``, ``pareto_k`` (one per subject or observation), ``good_k``.

    Raises
    ------
    SpecificationError
        An unknown level, or a fit without a log likelihood (saved by pkmodel 0.4 or earlier).
    """
    import warnings

    import arviz as az

    var = _check_level(level)
    _require_log_likelihood(fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # k-hat is reported by compare_fits
        weights, khat, reff = psis_weights(fit.tree["log_likelihood"][var], fit.posterior)
        return az.loo(fit.tree, var_name=var, pointwise=True, log_weights=weights,
                      pareto_k=khat, reff=reff)


def psis_weights(ll: xr.DataArray,
                 posterior: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray, float]:
    """PSIS log weights, Pareto k-hat and relative efficiency of a ``(chain, draw, point)`` log
    likelihood, as ``arviz.loo`` computes them, except for a point whose log likelihood is the
    same at every draw (to 1e-6): a censored value whose ``P(Y < LLOQ)`` is 1 at every draw.
    Leaving it out changes nothing, but PSIS cannot fit a tail to it (ArviZ raises "All tail
    values are the same"), so it gets uniform weights and k-hat 0: its LOO is exact. A point
    whose tail alone is flat gets uniform weights and an infinite k-hat (flagged)."""
    import arviz as az

    sample = ("chain", "draw")
    n = ll.sizes["chain"] * ll.sizes["draw"]
    reff = 1.0
    if ll.sizes["chain"] > 1:  # arviz's default: the mean relative ESS of the posterior
        ess = az.ess(posterior, method="mean")
        reff = float(np.mean(np.hstack([ess[v].values.ravel() for v in ess.data_vars]))) / n
    dim = ll.dims[-1]
    values = ll.transpose(*sample, dim).values.reshape(n, -1)
    # the importance ratios of such a point vary by a factor exp(range) at most: below 1e-6,
    # uniform weights are exact to that
    constant = np.ptp(values, axis=0) < 1e-6
    # PSIS fits the tail of the largest importance ratios (the smallest log likelihoods); when
    # those are all equal it cannot (a sampler stuck on one point): k-hat is then infinite
    tail = int(np.floor(3 * np.sqrt(n / reff)) if n * reff > 225 else np.floor(n / 5))
    flat = (np.ptp(np.sort(values, axis=0)[:max(tail, 1)], axis=0)
            < np.finfo(float).tiny) & ~constant
    ll = ll.transpose(*sample, dim)
    weights = np.full(ll.shape, -np.log(n))
    khat = np.where(flat, np.inf, 0.0)
    columns = np.flatnonzero(~constant & ~flat)
    if columns.size:
        lw, k = ll.isel({dim: columns}).azstats.psislw(r_eff=reff, dim=sample)
        weights[..., columns] = lw.transpose(*sample, dim).values
        khat[columns] = np.asarray(k)
    return (ll.copy(data=weights.astype(float)),
            xr.DataArray(khat, dims=(dim,), coords={dim: ll[dim]} if dim in ll.coords else {}),
            reff)


def _same_dataset(fits: Mapping[str, object]) -> None:
    """Refuse fits of different observations: their ELPDs are not comparable."""
    names = list(fits)
    first = fits[names[0]].data
    for name in names[1:]:
        data = fits[name].data
        same = (data.subject_ids == first.subject_ids
                and data.n_observations == first.n_observations
                and np.array_equal(data.obs_subject, first.obs_subject)
                and np.allclose(data.obs_time_days, first.obs_time_days)
                and np.allclose(data.obs_value_ug_ml, first.obs_value_ug_ml)
                and np.array_equal(data.obs_cens, first.obs_cens))
        if not same:
            raise SpecificationError(
                f"{name} and {names[0]} were fitted to different data ({data.n_subjects} "
                f"subjects, {data.n_observations} observations from {data.source or '-'} "
                f"against {first.n_subjects}, {first.n_observations} from "
                f"{first.source or '-'}); LOO compares models on the same observations: fit "
                "every model to the same dataset (same BLQ handling and LLOQ)")


@dataclass(frozen=True)
class Comparison:
    """Population fits ranked by their expected log predictive density (PSIS-LOO).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per fit, best first: ``name``, ``rank`` (1 the best), ``elpd``, ``se``,
        ``elpd_diff`` (from the best), ``dse`` (SE of the difference), ``p_loo`` (effective
        number of parameters), ``n_high_k`` (points whose k-hat
        exceeds ``good_k``), ``max_k``, ``high_k`` (the subject IDs or observation numbers).
    level : str
    good_k : float
        The k-hat above which PSIS is unreliable for this number of draws.
    """

    table: pd.DataFrame
    level: str
    good_k: float

    @property
    def reliable(self) -> bool:
        """No fit has a point with k-hat above :attr:`good_k`."""
        return bool((self.table["n_high_k"] == 0).all())

    def verdicts(self) -> list[str]:
        """What the comparison says, in sentences: the ranking, whether the differences
        exceed their SEs, and which fits k-hat makes unreliable and what to do."""
        rows = self.table.to_dict("records")
        best = rows[0]
        out = []
        for row in rows[1:]:
            diff, dse = row["elpd_diff"], row["dse"]
            if not np.isfinite(row["elpd"]):
                out.append(f"{row['name']}: its ELPD cannot be computed (a log likelihood that "
                           "is not finite at some draw: the fit failed, or gives the data "
                           "probability 0); check its diagnostics and fit it again")
            elif diff > 4 and diff > 2 * dse:
                out.append(f"{best['name']} predicts better than {row['name']}: ELPD higher "
                           f"by {diff:.1f} (SE {dse:.1f})")
            else:
                out.append(f"{best['name']} and {row['name']} are not distinguishable: ELPD "
                           f"difference {diff:.1f} (SE {dse:.1f}; under 4, or under twice its "
                           "SE); prefer the simpler model")
        what = "subject" if self.level == "subject" else "observation"
        for row in rows:
            if row["n_high_k"]:
                shown = ", ".join(map(str, row["high_k"][:8])) + (
                    " ..." if len(row["high_k"]) > 8 else "")
                out.append(
                    f"UNRELIABLE: {row['name']} has {row['n_high_k']} {what}(s) with Pareto "
                    f"k-hat above {self.good_k:.2f} (max {row['max_k']:.2f}; {shown}): PSIS "
                    f"cannot estimate leaving {'them' if row['n_high_k'] > 1 else 'it'} out, "
                    "so its ELPD may be too high. Check these data (a unit slip, a swapped "
                    "sample), fit with more draws, or compare by K-fold cross-validation "
                    "(refit leaving out groups of subjects)")
        return out


def compare_fits(fits: Mapping[str, object], level: str = "subject") -> Comparison:
    """Rank population fits of the same dataset by PSIS-LOO (as ``arviz.compare``, which reads
    the fits' trees too: ``az.compare({"A": a.tree, "B": b.tree}, var_name="y_by_subject")``).

    Parameters
    ----------
    fits : mapping of str to PopulationFit
        At least two fits, by name.
    level : {"subject", "observation"}, default "subject"
        What is left out (see :func:`loo`).

    Raises
    ------
    SpecificationError
        Fewer than two fits, fits of different data, a fit without a log likelihood, or an
        unknown level.
    """


    _check_level(level)
    if len(fits) < 2:
        raise SpecificationError(f"compare needs at least two fits, got {len(fits)}")
    for name, fit in fits.items():
        _require_log_likelihood(fit, name)
    _same_dataset(fits)
    results = {name: loo(fit, level) for name, fit in fits.items()}
    labels = (list(next(iter(fits.values())).data.subject_ids) if level == "subject"
              else list(range(next(iter(fits.values())).data.n_observations)))
    good_k = min(float(r.good_k) for r in results.values())
    pointwise = {name: np.asarray(r.elpd_i).ravel() for name, r in results.items()}
    # a fit whose ELPD is not a number (a log likelihood of -inf or NaN) last
    order = sorted(results, key=lambda name: (not np.isfinite(float(results[name].elpd)),
                                              -float(results[name].elpd)))
    best = order[0]
    rows = []
    for rank, name in enumerate(order, start=1):
        r = results[name]
        k = np.asarray(r.pareto_k).ravel()
        high = [labels[i] for i in np.flatnonzero(~(k <= good_k))]  # NaN counts as high
        diff = pointwise[best] - pointwise[name]
        rows.append({"name": str(name), "rank": rank, "elpd": float(r.elpd),
                     "se": float(r.se), "elpd_diff": float(diff.sum()),
                     "dse": float(np.sqrt(diff.size * np.var(diff))), "p_loo": float(r.p),
                     "n_high_k": len(high),
                     "max_k": float(np.nanmax(k)) if np.isfinite(k).any() else float("inf"),
                     "high_k": high})
    return Comparison(pd.DataFrame(rows), level, good_k)


def loo_pit(fit) -> np.ndarray:
    """LOO-PIT of every observation: ``P(y_rep_i <= y_i | y_-i)`` (NaN for censored ones).

    At each posterior draw the probability is the normal residual error's CDF at the
    observation (exact, no replicates); the draws are weighted by their PSIS-LOO weights of that
    observation. Uniform on (0, 1) under the model; ``scipy.stats.norm.ppf`` of it is standard
    normal, comparable with CWRES.
    """
    from scipy import stats

    from pkmodel.pk.population.build import model_data
    from pkmodel.pk.population.equations import (
        individual_log_parameters,
        predict,
        residual_sd,
    )
    from pkmodel.pk.population.likelihood import log_density, posterior_values

    spec, data = fit.spec, fit.data
    values = posterior_values(spec, fit.posterior)
    arrays = model_data(spec, data)
    pred = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    cdf = stats.norm.cdf(data.obs_value_ug_ml, pred, residual_sd(spec, pred, values))
    chains, draws = fit.posterior.sizes["chain"], fit.posterior.sizes["draw"]
    # the stored log likelihood's values, from the predictions at hand (the fit's data)
    ll = xr.DataArray(log_density(spec, data, pred, values).reshape(chains, draws, -1),
                      dims=("chain", "draw", "observation"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        weights, _, _ = psis_weights(ll, fit.posterior)
    w = weights.transpose("chain", "draw", ...).values.reshape(chains * draws, -1)
    w = np.exp(w - w.max(axis=0))
    pit = np.sum(w * cdf, axis=0) / np.sum(w, axis=0)
    return np.where(data.obs_cens == 0, pit, np.nan)
