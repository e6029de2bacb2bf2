"""The scenario engine: each chunk of virtual patients through PK and the remission model.

For each patient (one chunk of patients at a time):

1. PK: individual parameters from the patient's covariates and one draw of the between-subject
   random effects; the steady-state trough under standard maintenance (the baseline TL, unless
   the population table gives an observed one) and under each intensified regimen.
2. Eligibility: patients whose baseline TL is below ``min_tl_ug_ml`` (3 µg/mL, the source
   study's inclusion criterion and the lower end of the fitted data) are counted but not
   predicted.
3. Remission: for every posterior draw, the population-level probability of remission of the
   patient (a new patient at a new centre: the between-patient and between-centre effects
   integrated out, as :meth:`RemissionFit.remission_curve` does) given baseline TL, the fitted
   strategy the regimen maps to, the assessment month and the covariates.
4. Reduction inside the chunk: per posterior draw, the sum of probabilities per TL band; per
   patient, the posterior probability that P(remission) < p_min (futility) and whether it reaches
   ``credibility``. Only these sums and counts (and optionally per-patient posterior means) leave
   the chunk, so patients x draws x regimens is never held in memory.

The chunks are dask tasks (threads by default, or a ``dask.distributed`` client), and every
random number comes from fixed blocks of patients
(:func:`pkmodel.scenarios.populations.block_normals`), so the result does not depend on the
chunking. The PK step is :mod:`pkmodel.scenarios.exposure`; the sums become the scenario Dataset in
:mod:`pkmodel.scenarios.summaries`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.pk.models import PopulationModel
from pkmodel.pk.regimens import Regimen
from pkmodel.response import RemissionPredictor
from pkmodel.scenarios.exposure import troughs

__all__ = ["SUM_KEYS", "Plan", "run", "simulate_chunk"]


@dataclass(frozen=True)
class Plan:
    """Everything a chunk needs besides its own columns; built and checked once.

    Built by :func:`pkmodel.scenarios.simulate_scenarios` from its arguments: the remission
    predictor and the fitted strategies and months to predict, the PK models and regimens
    (:mod:`pkmodel.scenarios.exposure`), the seed, the TL band edges and thresholds, the
    population's ``columns`` (in the order the chunks receive them) and their category
    ``levels``, and whether per-patient results are kept.
    """

    predictor: RemissionPredictor
    strategies: tuple[str, ...]
    months: tuple[int, ...]
    regimens: tuple[Regimen, ...]
    baseline: Regimen
    pk_models: tuple[PopulationModel, ...]
    by_disease: bool
    entropy: int
    edges: np.ndarray
    min_tl: float | None
    tl_max_fitted: float
    p_min: float
    credibility: float
    target: float
    levels: Mapping[str, tuple]
    columns: tuple[str, ...]
    per_patient: bool
    log_gain_range: tuple[float, float] | None = None  # exposure-driven fit: fitted log gains

    @property
    def n_bands(self) -> int:
        """Number of baseline-TL bands."""
        return len(self.edges) - 1

    def decoded(self, name: str, values: np.ndarray) -> pd.Series:
        """A population column's values, categories as their labels (``levels``)."""
        if name in self.levels:
            return pd.Series(np.asarray(self.levels[name], dtype=object)[values])
        return pd.Series(values)


def _design(plan: Plan, cols: Mapping[str, np.ndarray], idx: np.ndarray,
            start: int) -> tuple[xr.DataArray, xr.DataArray | None]:
    """Covariate matrix (patient, covariate) and disease labels of the patients ``idx``."""
    columns = {}
    for enc in plan.predictor.design.encodings:
        values = plan.decoded(enc.name, cols[enc.name][idx])
        if enc.kind == "categorical" and pd.api.types.is_numeric_dtype(values):
            values = values.astype(np.int64)
        columns[enc.name] = values
    z = plan.predictor.covariate_matrix(columns, (start + idx).astype(str), "<population>")
    disease = None
    if plan.predictor.design.diseases:
        disease = xr.DataArray(plan.decoded("disease", cols["disease"][idx]).to_numpy(),
                               dims="patient")
    return xr.DataArray(z, dims=("patient", "covariate")), disease


def simulate_chunk(plan: Plan, start: int, *arrays: np.ndarray) -> dict[str, np.ndarray]:
    """The reduced results of one chunk of patients (see the module docstring)."""
    cols = dict(zip(plan.columns, (np.asarray(a) for a in arrays), strict=True))
    n = len(cols["weight_kg"])
    base, after = troughs(plan, cols, start)
    eligible = np.ones(n, bool) if plan.min_tl is None else base >= plan.min_tl
    idx = np.flatnonzero(eligible)
    band = np.searchsorted(plan.edges, base[idx], side="right") - 1
    onehot = np.zeros((idx.size, plan.n_bands))
    onehot[np.arange(idx.size), band] = 1.0
    n_s = plan.predictor.n_samples
    shape = (len(plan.strategies), len(plan.months))
    out = {
        "n_simulated": np.array(n), "n_excluded": np.array(n - idx.size),
        "n_above_fitted": np.array(int(np.sum(base[idx] > plan.tl_max_fitted))),
        "n_band": onehot.sum(axis=0),
        "log_baseline_sum": np.log(base[idx]) @ onehot,
        "log_trough_sum": np.log(after[:, idx]) @ onehot,
        "above_target": (after[:, idx] >= plan.target).astype(float) @ onehot,
        "rate_sum": np.zeros((n_s, *shape, plan.n_bands)),
        "futile_count": np.zeros((*shape, plan.n_bands)),
    }
    if plan.log_gain_range is not None:
        out["n_gain_extrapolated"] = np.zeros(len(plan.strategies))
    if plan.per_patient:
        out.update(baseline_tl=base, trough_after=after,
                   p_remission=np.full((*shape, n), np.nan), p_futile=np.full((*shape, n), np.nan))
    if idx.size == 0:
        return out
    z, disease = _design(plan, cols, idx, start)
    log_tl = xr.DataArray(np.log(base[idx]), dims="patient")
    exposure = plan.log_gain_range is not None
    if exposure:  # each regimen from the exposure gain it brings the patient (known here)
        log_gain = np.log(after[:, idx]) - np.log(base[idx])
        lo, hi = plan.log_gain_range
        out["n_gain_extrapolated"] = ((log_gain < lo) | (log_gain > hi)).sum(axis=1)
        out["n_gain_extrapolated"] = out["n_gain_extrapolated"].astype(float)
    for k, strategy in enumerate(plan.strategies):
        gain = {"log_gain": log_gain[k]} if exposure else {}
        for m, month in enumerate(plan.months):
            p = plan.predictor.p_remission(log_tl, strategy, month, covariates=z,
                                           disease=disease, **gain)
            out["rate_sum"][:, k, m] = p @ onehot
            below = (p < plan.p_min).mean(axis=0)
            out["futile_count"][k, m] = (below >= plan.credibility).astype(float) @ onehot
            if plan.per_patient:
                out["p_remission"][k, m, idx] = p.mean(axis=0)
                out["p_futile"][k, m, idx] = below
    return out


#: The chunk results that are summed over chunks (the rest are per patient).
SUM_KEYS = ("n_simulated", "n_excluded", "n_above_fitted", "n_band", "log_baseline_sum",
            "log_trough_sum", "above_target", "rate_sum", "futile_count", "n_gain_extrapolated")


def _add(*parts: dict) -> dict:
    return {k: sum(p[k] for p in parts) for k in SUM_KEYS if k in parts[0]}


def _tree_sum(items: list, fan_in: int = 8):
    """Sum dicts of chunk results pairwise in a tree of delayed tasks (bounded memory)."""
    while len(items) > 1:
        items = [dask.delayed(_add)(*items[i:i + fan_in]) for i in range(0, len(items), fan_in)]
    return items[0]


def run(plan: Plan, pop: xr.Dataset, *, chunked: bool, scheduler: str = "threads", client=None,
        progress: bool | None = None) -> tuple[dict, dict | None, dict | None]:
    """Simulate every patient of ``pop``; the summed chunk results and the per-patient ones.

    Parameters
    ----------
    plan : Plan
        What every chunk needs besides its own columns (``plan.columns`` of ``pop``).
    pop : xarray.Dataset
        The population, one row per patient along ``patient``.
    chunked : bool
        One dask task per chunk of ``pop`` (on ``client``, or the local ``scheduler``); otherwise
        every patient at once, in memory.
    scheduler, client, progress
        As in :func:`pkmodel.scenarios.simulate_scenarios`.

    Returns
    -------
    tuple
        The sums (:data:`SUM_KEYS`), then, with ``plan.per_patient``, the per-patient results
        (``baseline_tl``, ``trough_after``, ``p_remission``, ``p_futile``) and the patients'
        columns, else ``None`` twice.
    """
    if chunked:
        return _run_chunked(plan, pop, scheduler, client, progress)
    result = simulate_chunk(plan, 0, *(np.asarray(pop[c].values) for c in plan.columns))
    sums = {k: result[k] for k in SUM_KEYS if k in result}
    if not plan.per_patient:
        return sums, None, None
    patients = {k: result[k] for k in ("baseline_tl", "trough_after", "p_remission", "p_futile")}
    return sums, patients, {c: pop[c].values for c in plan.columns}


def _run_chunked(plan: Plan, pop: xr.Dataset, scheduler: str, client,
                 progress: bool | None) -> tuple[dict, dict | None, dict | None]:
    columns = plan.columns
    chunks = pop.chunks["patient"]
    starts = np.concatenate([[0], np.cumsum(chunks)[:-1]]).astype(int)
    blocks = [pop[c].data.to_delayed().ravel() for c in columns]
    plan_d = dask.delayed(plan, pure=True)
    results = [dask.delayed(simulate_chunk, pure=True)(plan_d, int(s), *(b[i] for b in blocks))
               for i, s in enumerate(starts)]
    total = _tree_sum(results)
    todo = [total]
    if plan.per_patient:
        n_r, n_k, n_m = len(plan.regimens), len(plan.strategies), len(plan.months)
        pieces = {
            "baseline_tl": ((), 0), "trough_after": ((n_r,), 1),
            "p_remission": ((n_k, n_m), 2), "p_futile": ((n_k, n_m), 2),
        }
        per = {}
        for key, (lead, axis) in pieces.items():
            arrs = [da.from_delayed(res[key], shape=(*lead, c), dtype=float)
                    for res, c in zip(results, chunks, strict=True)]
            per[key] = da.concatenate(arrs, axis=axis)
        todo += [per, {c: pop[c].data for c in columns}]
    if client is not None:
        futures = client.compute(todo)
        if _show_progress(progress):
            from distributed import progress as dist_progress

            dist_progress(futures)
        computed = client.gather(futures)
    else:
        bar = contextlib.nullcontext()
        if _show_progress(progress):
            from dask.diagnostics import ProgressBar

            bar = ProgressBar(out=sys.stderr)
        with bar:
            computed = dask.compute(*todo, scheduler=scheduler)
    sums = computed[0]
    if plan.per_patient:
        return sums, computed[1], computed[2]
    return sums, None, None


def _show_progress(progress: bool | None) -> bool:
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)
