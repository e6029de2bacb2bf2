"""Credible futility thresholds from a remission curve.

Two answers to "above which baseline TL is intensification futile?":

``tl_futile``
    The lowest TL on the grid from which P(p_remission < p_min) >= credibility holds at every
    higher TL of the grid, interpolated (linearly in log TL) between the two grid points where the
    posterior probability crosses ``credibility``. ``NaN`` when that never happens within the grid.
``tl_cross_*``
    For each posterior draw, the TL from which its curve stays below ``p_min`` to the end of the
    grid (interpolated the same way); then the posterior median and equal-tailed ``ci_prob``
    interval of that crossing TL. Draws that never cross inside the grid count as crossing beyond
    its upper end (+inf); a quantile that falls there is reported as ``NaN`` and
    ``p_cross_in_grid`` says how many draws crossed inside the grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.errors import PredictionError
from pkmodel.validation import check_probability

__all__ = ["crossing_tl", "futility_table"]


def _interp_log(tl: np.ndarray, k: np.ndarray, y: np.ndarray, target: float) -> np.ndarray:
    """TL at which ``y`` (along the last axis) crosses ``target`` between k-1 and k."""
    km1 = np.maximum(k - 1, 0)
    y0 = np.take_along_axis(y, km1[..., None], -1)[..., 0]
    y1 = np.take_along_axis(y, k[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(y1 != y0, (target - y0) / (y1 - y0), 1.0)
    frac = np.clip(np.nan_to_num(frac, nan=1.0), 0.0, 1.0)
    log_tl = np.log(tl)
    return np.exp(log_tl[km1] + frac * (log_tl[k] - log_tl[km1]))


def _start_of_final_run(ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index where the final all-True run along the last axis starts, and whether one exists."""
    tail_all = np.flip(np.logical_and.accumulate(np.flip(ok, -1), axis=-1), -1)
    exists = tail_all[..., -1]
    start = np.argmax(tail_all, axis=-1)
    return start, exists


def crossing_tl(p: np.ndarray, tl: np.ndarray, p_min: float) -> np.ndarray:
    """Per-curve TL from which ``p`` (TL on the last axis) stays below ``p_min``; +inf if never."""
    start, exists = _start_of_final_run(p < p_min)
    out = _interp_log(tl, start, p, p_min)
    out = np.where(start == 0, tl[0], out)
    return np.where(exists, out, np.inf)


def futility_table(curve: xr.Dataset, p_min: float, credibility: float,
                   ci_prob: float) -> pd.DataFrame:
    """The futility table of a curve; see :meth:`pkmodel.RemissionFit.futility_threshold`."""
    for name, v in (("p_min", p_min), ("credibility", credibility), ("ci_prob", ci_prob)):
        check_probability(name, v, error=PredictionError)
    da = curve["p_remission"]
    extra = [d for d in da.dims if d not in ("chain", "draw", "tl")]
    da = da.transpose(*extra, "chain", "draw", "tl")
    tl = da["tl"].values
    p = da.values.reshape(*da.shape[: len(extra)], -1, tl.size)  # (..., sample, tl)
    prob_below = (p < p_min).mean(axis=-2)  # (..., tl)
    start, exists = _start_of_final_run(prob_below >= credibility)
    futile = _interp_log(tl, start, prob_below, credibility)
    futile = np.where(start == 0, tl[0], futile)
    futile = np.where(exists, futile, np.nan)
    cross = crossing_tl(p, tl, p_min)  # (..., sample)
    q = np.quantile(cross, [0.5, (1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=-1,
                    method="inverted_cdf")
    q = np.where(np.isfinite(q), q, np.nan)
    in_grid = np.isfinite(cross).mean(axis=-1)
    index = pd.MultiIndex.from_product([da[d].values for d in extra], names=extra)
    table = pd.DataFrame({
        "p_min": p_min, "credibility": credibility,
        "tl_futile": futile.ravel(),
        "tl_cross_median": q[0].ravel(), "tl_cross_lower": q[1].ravel(),
        "tl_cross_upper": q[2].ravel(),
        "ci_prob": ci_prob, "p_cross_in_grid": in_grid.ravel(),
        "grid_min": tl[0], "grid_max": tl[-1],
    }, index=index).reset_index()
    if "fitted_tl_range_ug_ml" in curve.attrs:  # beyond the fitted TLs: an extrapolation
        lo, hi = (float(v) for v in curve.attrs["fitted_tl_range_ug_ml"])
        table["fitted_tl_min"], table["fitted_tl_max"] = lo, hi
        beyond = [(table[c] > hi) | (table[c] < lo) for c in ("tl_futile", "tl_cross_median")]
        table["extrapolated"] = beyond[0] | beyond[1]  # NaN compares False: not reached
    lead = ["strategy", "month", *[d for d in extra if d not in ("strategy", "month")]]
    return table[lead + [c for c in table.columns if c not in lead]]
