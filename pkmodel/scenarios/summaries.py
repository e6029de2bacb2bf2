"""Scenario summaries from the per-chunk sums: remission rates, futility, numbers needed to treat.

Every summary is a ratio of sums accumulated inside the chunks, so it is exact whatever the
chunking: the expected remission rate of a band under a regimen for posterior draw *s* is
``sum over its patients of p_remission[s, patient] / n_patients``; its posterior mean and
equal-tailed interval are taken over *s*. The rate difference between a regimen and the
reference is taken per draw; the number needed to treat (NNT) is ``1 / E[difference]``, with an
interval from inverting the interval of the difference when that excludes 0 (Altman, BMJ
1998;317:1309-1312); otherwise the interval contains infinity and is reported as NaN.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.disclaimer import DISCLAIMER
from pkmodel.errors import SpecificationError

__all__ = ["band_labels", "scenario_table", "summarize"]


def band_labels(inner_edges: Sequence[float], min_tl: float | None) -> tuple[np.ndarray, list]:
    """Band edges (µg/mL, from ``min_tl`` or 0 to infinity) and their labels."""
    if min_tl is not None and not (isinstance(min_tl, int | float) and min_tl > 0):
        raise SpecificationError(f"min_tl_ug_ml must be a positive number or None, not "
                                 f"{min_tl!r}")
    try:
        inner = np.asarray(inner_edges, dtype=float).ravel()
    except (TypeError, ValueError):
        raise SpecificationError(f"tl_bands_ug_ml must be numbers, not {inner_edges!r}") from None
    if not np.all(np.isfinite(inner)) or np.any(inner <= 0) or np.any(np.diff(inner) <= 0):
        raise SpecificationError(f"tl_bands_ug_ml must be increasing positive numbers (µg/mL), "
                                 f"not {list(inner_edges)}")
    low = 0.0 if min_tl is None else float(min_tl)
    edges = np.concatenate([[low], inner[inner > low], [np.inf]])
    names = []
    for lo, hi in itertools.pairwise(edges):
        if lo == 0:
            names.append(f"<{hi:g}")
        elif np.isinf(hi):
            names.append(f">={lo:g}")
        else:
            names.append(f"{lo:g}-{hi:g}")
    return edges, names


def _interval(x: xr.DataArray, ci_prob: float, name: str) -> dict[str, xr.DataArray]:
    q = x.quantile([(1 - ci_prob) / 2, (1 + ci_prob) / 2], dim="sample", skipna=False)
    return {f"{name}_mean": x.mean("sample", skipna=False),
            f"{name}_lower": q.isel(quantile=0, drop=True),
            f"{name}_upper": q.isel(quantile=1, drop=True)}


def summarize(sums: Mapping[str, np.ndarray], patients: Mapping[str, np.ndarray] | None,
              covariates: Mapping[str, np.ndarray] | None, *, plan, mapping, band_names: list,
              reference: str, ci_prob: float, population: xr.Dataset,
              settings: Mapping[str, object]) -> xr.Dataset:
    """The scenario Dataset from the summed chunk results (see ``simulate_scenarios``)."""
    labels = [m.regimen.label for m in mapping]
    k_of = np.array([plan.strategies.index(m.strategy) for m in mapping])
    names = [*band_names, "all"]

    def with_all(x: np.ndarray) -> np.ndarray:  # append the sum over bands (last axis)
        return np.concatenate([x, x.sum(axis=-1, keepdims=True)], axis=-1)

    n_band = with_all(np.asarray(sums["n_band"], float))
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = with_all(np.asarray(sums["rate_sum"])) / n_band  # (S, K, M, B)
        futile = with_all(np.asarray(sums["futile_count"])) / n_band  # (K, M, B)
        base_gm = np.exp(with_all(np.asarray(sums["log_baseline_sum"])) / n_band)
        trough_gm = np.exp(with_all(np.asarray(sums["log_trough_sum"])) / n_band)
        above = with_all(np.asarray(sums["above_target"])) / n_band
    lower = np.concatenate([plan.edges[:-1], [plan.edges[0]]])
    upper = np.concatenate([plan.edges[1:], [np.inf]])
    coords = {
        "regimen": labels,
        "strategy": ("regimen", [m.strategy for m in mapping]),
        "mapping_basis": ("regimen", [m.basis for m in mapping]),
        "dose_mg_kg": ("regimen", [float(m.regimen.dose_mg_kg) for m in mapping]),
        "interval_weeks": ("regimen", [float(m.regimen.interval_weeks) for m in mapping]),
        "month": list(plan.months),
        "band": names,
        "band_lower_ug_ml": ("band", lower),
        "band_upper_ug_ml": ("band", upper),
        "sample": np.arange(rate.shape[0]),
    }
    ds = xr.Dataset(coords=coords)
    dims = ("regimen", "month", "band")
    ds["n_patients"] = ("band", n_band.astype(np.int64),
                        {"long_name": "eligible virtual patients"})
    if "n_gain_extrapolated" in sums:  # exposure-driven fit
        ds["n_gain_extrapolated"] = ("regimen", np.asarray(sums["n_gain_extrapolated"])[k_of]
                                     .astype(np.int64),
                                     {"long_name": "eligible patients whose exposure gain lies "
                                                   "outside the range of the fitted cohort "
                                                   "(predicted by extrapolation)"})
    ds["remission_rate"] = (("regimen", "month", "band", "sample"),
                            np.moveaxis(rate[:, k_of], 0, -1),
                            {"units": "1", "long_name": "expected remission rate per posterior "
                                                        "draw"})
    for key, value in _interval(ds["remission_rate"], ci_prob, "remission_rate").items():
        ds[key] = value.assign_attrs(units="1")
    ds["fraction_futile"] = (dims, futile[k_of], {
        "units": "1", "long_name": f"fraction of patients with P(p < {plan.p_min:g}) >= "
                                   f"{plan.credibility:g}"})
    diff = ds["remission_rate"] - ds["remission_rate"].sel(regimen=reference)
    ds["rate_difference"] = diff.assign_attrs(
        units="1", long_name=f"remission rate minus that of {reference}, per posterior draw")
    for key, value in _interval(diff, ci_prob, "rate_difference").items():
        ds[key] = value.assign_attrs(units="1")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean, lo, hi = (ds[f"rate_difference_{s}"].values for s in ("mean", "lower", "upper"))
        nnt = np.where(mean != 0, 1.0 / mean, np.nan)
        excludes_zero = (lo > 0) | (hi < 0)
        nnt_lo = np.where(excludes_zero, 1.0 / hi, np.nan)
        nnt_hi = np.where(excludes_zero, 1.0 / lo, np.nan)
    is_ref = (ds["regimen"] == reference).values[:, None, None]
    ds["nnt"] = (dims, np.where(is_ref, np.nan, nnt), {
        "long_name": f"number needed to treat with the regimen instead of {reference} for one "
                     "more remission (negative: one fewer)"})
    ds["nnt_lower"] = (dims, np.where(is_ref, np.nan, np.minimum(nnt_lo, nnt_hi)))
    ds["nnt_upper"] = (dims, np.where(is_ref, np.nan, np.maximum(nnt_lo, nnt_hi)))
    ds["baseline_tl_geomean"] = ("band", base_gm, {"units": "µg/mL"})
    ds["trough_after_geomean"] = (("regimen", "band"), trough_gm, {
        "units": "µg/mL", "long_name": "geometric mean steady-state trough after intensification"})
    ds["fraction_above_target"] = (("regimen", "band"), above, {
        "units": "1", "long_name": f"fraction with trough after intensification >= "
                                   f"{plan.target:g} µg/mL"})
    if patients is not None:
        ds = ds.assign_coords(patient=np.arange(len(patients["baseline_tl"])))
        if "patient_id" in population.coords:
            ds = ds.assign_coords(patient_id=("patient", population["patient_id"].values))
        ds["baseline_tl"] = ("patient", patients["baseline_tl"], {"units": "µg/mL"})
        ds["eligible"] = ("patient", np.isfinite(patients["p_remission"][0, 0]))
        ds["trough_after"] = (("regimen", "patient"), patients["trough_after"],
                              {"units": "µg/mL"})
        ds["p_remission"] = (("regimen", "month", "patient"), patients["p_remission"][k_of],
                             {"units": "1", "long_name": "posterior mean P(remission)"})
        ds["p_futile"] = (("regimen", "month", "patient"), patients["p_futile"][k_of],
                          {"units": "1", "long_name": f"posterior P(p_remission < "
                                                      f"{plan.p_min:g})"})
        for name, values in (covariates or {}).items():
            if name == "baseline_tl":
                continue
            attrs = dict(population[name].attrs)
            ds[f"covariate_{name}" if name in ds else name] = ("patient", np.asarray(values),
                                                                attrs)
    ds["month"].attrs.update(units="months", long_name="assessment after intensification")
    ds.attrs.update({k: v for k, v in settings.items()})
    ds.attrs.update(
        n_simulated=int(sums["n_simulated"]),
        n_excluded_below_min_tl=int(sums["n_excluded"]),
        n_above_fitted_range=int(sums["n_above_fitted"]),
        fitted_tl_range_ug_ml=list(plan.predictor.design.tl_range_ug_ml),
        n_posterior_draws=int(rate.shape[0]),
        population=str(population.attrs.get("source", "")),
        population_distribution=str(population.attrs.get("distribution", "")),
        disclaimer=DISCLAIMER,
    )
    return ds


def scenario_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per regimen, month and band: the headline numbers of a scenario Dataset.

    Columns ``regimen, strategy, month, band, n_patients, remission_rate_mean,
    remission_rate_lower, remission_rate_upper, fraction_futile, rate_difference_mean,
    rate_difference_lower, rate_difference_upper, nnt, nnt_lower, nnt_upper,
    trough_after_geomean, fraction_above_target``.
    """
    keys = ["remission_rate_mean", "remission_rate_lower", "remission_rate_upper",
            "fraction_futile", "rate_difference_mean", "rate_difference_lower",
            "rate_difference_upper", "nnt", "nnt_lower", "nnt_upper"]
    frame = ds[keys].to_dataframe().reset_index()
    extra = ds[["trough_after_geomean", "fraction_above_target"]].to_dataframe().reset_index()
    frame = frame.merge(extra[["regimen", "band", "trough_after_geomean",
                               "fraction_above_target"]], on=["regimen", "band"])
    frame = frame.merge(ds["n_patients"].to_dataframe().reset_index()[["band", "n_patients"]],
                        on="band")
    frame["strategy"] = frame["regimen"].map(dict(zip(ds["regimen"].values,
                                                      ds["strategy"].values, strict=True)))
    order = ["regimen", "strategy", "month", "band", "n_patients", *keys,
             "trough_after_geomean", "fraction_above_target"]
    return frame[order]
