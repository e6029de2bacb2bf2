"""Posterior predictive remission curves, computed from the posterior arrays directly.

For each posterior draw the curve is the expected probability of remission of a *new* patient
over a grid of baseline TL. The patient's own effect (and, at the population level, the new
centre's effect) is not set to zero but integrated out over its posterior between-patient (and
between-centre) normal distribution, by Gauss-Hermite quadrature: this is what a new patient can
expect. Nothing is re-sampled.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.errors import PredictionError
from pkmodel.response.design import CovariateEncoding
from pkmodel.response.predictor import RemissionPredictor
from pkmodel.validation import check_probability

__all__ = ["compute_curve", "default_tl_grid", "summarize_curve"]


def default_tl_grid(tl_range_ug_ml: tuple[float, float], n: int = 200) -> np.ndarray:
    """200 log-spaced TL values from the lowest fitted TL to max(25, highest) µg/mL."""
    lo, hi = tl_range_ug_ml
    return np.geomspace(lo, max(25.0, hi), n)


def _pick(values, known: tuple, what: str) -> list:
    if values is None:
        return list(known)
    if isinstance(values, str | int | np.integer):
        values = [values]
    if known and isinstance(known[0], int):
        try:
            numbers = [float(v) for v in values]
            if any(x != int(x) for x in numbers):
                raise ValueError
            values = [int(x) for x in numbers]
        except (TypeError, ValueError, OverflowError):
            raise PredictionError(f"{what} must be whole numbers such as {list(known)}, not "
                                  f"{values!r}") from None
    unknown = [v for v in values if v not in known]
    if unknown:
        raise PredictionError(
            f"unknown {what} {unknown}; the model was fitted on {list(known)}. A {what} the "
            "model has not seen cannot be predicted: no other one is used in its place"
        )
    return values


def covariate_profile(encodings: tuple[CovariateEncoding, ...], covariates: dict | None,
                      diseases: tuple[str, ...]) -> tuple[np.ndarray, dict]:
    """The encoded covariate row for a profile and the profile as stated (defaults filled in).

    Numeric covariates default to the fitted cohort's mean, categorical ones to their reference
    level; the defaults are recorded in the curve's attributes.
    """
    covariates = dict(covariates or {})
    known = {e.name for e in encodings} | ({"disease"} if diseases else set())
    unknown = sorted(set(covariates) - known)
    if unknown:
        raise PredictionError(f"covariate(s) {unknown} are not in the model; it has "
                              f"{sorted(known)}")
    stated, parts = {}, []
    for e in encodings:
        value = covariates.get(e.name, e.mean if e.kind == "numeric" else e.levels[0])
        stated[e.name] = value
        parts.append(e.encode(pd.Series([value]), "<profile>", np.array(["profile"]))[0])
    z = np.concatenate(parts) if parts else np.zeros(0)
    if diseases and "disease" in covariates:
        stated["disease"] = _pick(covariates["disease"], diseases, "disease")[0]
    return z, stated


def compute_curve(post: xr.Dataset, meta: dict, *, tl=None, strategy=None, month=None,
                  covariates: dict | None = None, level: str = "population") -> xr.Dataset:
    """Posterior remission curves; see :meth:`pkmodel.RemissionFit.remission_curve`."""
    if tl is None:
        tl = default_tl_grid(tuple(meta["tl_range_ug_ml"]))
    tl = np.atleast_1d(np.asarray(tl, dtype=float))
    if tl.ndim != 1 or tl.size == 0 or not np.all(np.isfinite(tl)) or np.any(tl <= 0):
        raise PredictionError("tl must be a non-empty 1-D sequence of positive TL values (µg/mL)")
    tl = np.sort(tl)
    exposure = meta.get("exposure") or {}
    pk_columns: dict = {}
    if exposure:  # any regimen, predicted from the exposure gain it brings
        from pkmodel.pk.regimens import parse_regimen

        regimens = list(exposure["regimens"]) if strategy is None else (
            [strategy] if isinstance(strategy, str) else list(strategy))
        strategies = [parse_regimen(r).label for r in regimens]
        # PK covariates (cohort columns) set the gain; those also in the model enter it too
        covariates = dict(covariates or {})
        encoded = {e["name"] for e in meta["encodings"]}
        pk_columns = {k: v for k, v in covariates.items() if k in exposure["reference_columns"]}
        covariates = {k: v for k, v in covariates.items() if k in encoded or k not in pk_columns}
    else:
        strategies = _pick(strategy, tuple(meta["strategies"]), "strategy")
    months = _pick(month, tuple(meta["months"]), "month")
    if not isinstance(level, str):
        raise PredictionError("level must be 'population' or the name of a fitted centre")
    if level == "population":
        group = None
    elif level in meta["groups"]:
        group = level
    else:
        raise PredictionError(
            f"level {level!r} is neither 'population' nor a centre the model was fitted on "
            f"({meta['groups']}); an unknown centre is never replaced by the population"
        )
    encodings = tuple(CovariateEncoding.from_dict(e) for e in meta["encodings"])
    z, stated = covariate_profile(encodings, covariates, tuple(meta["diseases"]))
    disease = stated.get("disease")
    diseases = [disease] if disease is not None else list(meta["diseases"])
    by_disease = disease is None and "b_slope_disease" in post
    # every combination of the grid's labels is one row of the predictor
    axes = {"tl": tl, "strategy": strategies, "month": months,
            **({"disease": diseases} if by_disease else {})}
    grid = [g.ravel() for g in np.meshgrid(*axes.values(), indexing="ij")]
    rows = dict(zip(axes, grid, strict=True))
    predictor = RemissionPredictor.from_posterior(post, meta)
    log_tl = np.log(rows["tl"].astype(float))
    gain = {}
    if exposure:
        from pkmodel.pk.regimens import parse_regimen
        from pkmodel.response.exposure import per_sample, regimen_gain

        g = regimen_gain(meta, log_tl, np.zeros(log_tl.size, dtype=int),
                         [parse_regimen(s) for s in rows["strategy"]], pk_columns)
        gain = {"log_gain": per_sample(g.mean, predictor.n_samples),
                "log_gain_sd": per_sample(g.sd, predictor.n_samples)}
        stated.update({f"{k} (PK)": v for k, v in
                       {**exposure["reference_columns"], **pk_columns}.items()})
    p = predictor.p_remission(
        log_tl, rows["strategy"], rows["month"].astype(int),
        covariates=np.broadcast_to(z, (grid[0].size, z.size)),
        disease=rows.get("disease", np.full(grid[0].size, disease)) if diseases else None,
        centre=None if group is None else np.full(grid[0].size, group), **gain)
    dims = ("chain", "draw", *axes)
    p = p.reshape(post.sizes["chain"], post.sizes["draw"], *(len(v) for v in axes.values()))
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, **axes}
    ds = xr.Dataset({"p_remission": (dims, p)}, coords=coords)
    ds["tl"].attrs.update(units="µg/mL", long_name="baseline infliximab trough level")
    ds["month"].attrs.update(units="months", long_name="assessment after intensification")
    ds["p_remission"].attrs.update(long_name="posterior probability of remission")
    ds.attrs.update(level=level, covariates=json.dumps(stated, default=str),
                    fitted_tl_range_ug_ml=[float(v) for v in meta["tl_range_ug_ml"]],
                    integrated=("between-centre and between-patient effects" if group is None
                                else "between-patient effect"))
    return ds


def summarize_curve(curve: xr.Dataset, ci_prob: float = 0.9) -> pd.DataFrame:
    """Median and equal-tailed credible band of a remission curve.

    Parameters
    ----------
    curve : xarray.Dataset
        From :meth:`RemissionFit.remission_curve`.
    ci_prob : float, default 0.9
        Probability inside the band.

    Returns
    -------
    pandas.DataFrame
        Columns ``tl``, ``strategy``, ``month`` (and ``disease`` when present), ``median``,
        ``lower``, ``upper``.
    """
    check_probability("ci_prob", ci_prob, error=PredictionError)
    q = [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2]
    da = curve["p_remission"]
    quant = da.quantile(q, dim=("chain", "draw"))
    frame = quant.to_dataset(dim="quantile").rename(
        {q[0]: "lower", q[1]: "median", q[2]: "upper"}
    ).to_dataframe().reset_index()
    keys = [d for d in ("tl", "strategy", "month", "disease") if d in frame.columns]
    return frame[[*keys, "median", "lower", "upper"]].sort_values(
        [k for k in keys if k != "tl"] + ["tl"], kind="stable").reset_index(drop=True)
