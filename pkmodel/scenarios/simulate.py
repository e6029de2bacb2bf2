"""Dosing-scenario simulation: virtual patients through population PK and the remission model.

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
random number comes from fixed blocks of patients (:func:`block_normals`), so the result does
not depend on the chunking.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.errors import CohortError, SpecificationError
from pkmodel.pk.models import (
    COVARIATES,
    PopulationModel,
    check_covariate,
    cohort_columns,
    from_cohort,
    get_model,
)
from pkmodel.pk.regimens import Regimen, parse_regimen
from pkmodel.pk.simulation import steady_state_trough
from pkmodel.response import RemissionPredictor
from pkmodel.sampling import resolve_seed
from pkmodel.scenarios.populations import (
    STREAM_PK,
    VirtualPopulation,
    block_normals,
    population_from_table,
)
from pkmodel.scenarios.strategies import RegimenStrategy, map_regimens
from pkmodel.scenarios.summaries import band_labels, summarize
from pkmodel.validation import check_probability

__all__ = ["simulate_scenarios"]

_IN_MEMORY_LIMIT = 50_000_000  # patients x draws allowed without chunking (~0.4 GB per array)
# Width of the block of PK random-effect normals per virtual patient: at least 3 (so that the
# draws of the two Fasanmade models, and every figure made with them, stay as they were), wider
# for a model with more random effects.
_MIN_ETA_WIDTH = 3
_PK_COLUMNS = cohort_columns()


@dataclass(frozen=True)
class _Plan:
    """Everything a chunk needs besides its own columns; built and checked once."""

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

    @property
    def n_bands(self) -> int:
        return len(self.edges) - 1


def _pk_troughs(plan: _Plan, cols: Mapping[str, np.ndarray], start: int) -> tuple:
    """Baseline and post-intensification steady-state troughs, µg/mL: (n,), (R, n)."""
    n = len(cols["weight_kg"])
    width = max(_MIN_ETA_WIDTH, *(len(m.random_effects) for m in plan.pk_models))
    z = block_normals(plan.entropy, STREAM_PK, start, start + n, width)
    cohort = {c: _decoded(plan, c, cols[c]).to_numpy() for c in _PK_COLUMNS.values() if c in cols}
    values = {"ati": np.zeros(n), **from_cohort(cohort)}  # every virtual patient ATI-negative
    regimens = (plan.baseline, *plan.regimens)
    troughs = np.empty((len(plan.pk_models), len(regimens), n))
    for m, model in enumerate(plan.pk_models):
        k = len(model.random_effects)
        cov = {c: values[c] for c in model.covariates_used}
        params = model.individual_parameters(cov, z[:, :k] * model.omega_sd)
        for r, reg in enumerate(regimens):
            troughs[m, r] = steady_state_trough(params, reg.dose_mg_kg * cols["weight_kg"],
                                                reg.interval_days, reg.infusion_days)
    if plan.by_disease:  # model 0 for CD, model 1 for UC
        troughs = np.where(cols["disease"] == 1, troughs[1], troughs[0])
    else:
        troughs = troughs[0]
    base, after = troughs[0], troughs[1:]
    if "baseline_tl" in cols:  # observed: scale the predicted post-switch troughs to it
        after = after * (cols["baseline_tl"] / base)
        base = cols["baseline_tl"]
    return base, after


def _decoded(plan: _Plan, name: str, values: np.ndarray) -> pd.Series:
    if name in plan.levels:
        return pd.Series(np.asarray(plan.levels[name], dtype=object)[values])
    return pd.Series(values)


def _design(plan: _Plan, cols: Mapping[str, np.ndarray], idx: np.ndarray, start: int):
    """Covariate matrix (patient, covariate) and disease labels of the patients ``idx``."""
    columns = {}
    for enc in plan.predictor.design.encodings:
        values = _decoded(plan, enc.name, cols[enc.name][idx])
        if enc.kind == "categorical" and pd.api.types.is_numeric_dtype(values):
            values = values.astype(np.int64)
        columns[enc.name] = values
    z = plan.predictor.covariate_matrix(columns, (start + idx).astype(str), "<population>")
    disease = None
    if plan.predictor.design.diseases:
        disease = xr.DataArray(_decoded(plan, "disease", cols["disease"][idx]).to_numpy(),
                               dims="patient")
    return xr.DataArray(z, dims=("patient", "covariate")), disease


def _simulate_chunk(plan: _Plan, start: int, *arrays: np.ndarray) -> dict[str, np.ndarray]:
    """The reduced results of one chunk of patients (see the module docstring)."""
    cols = dict(zip(plan.columns, (np.asarray(a) for a in arrays), strict=True))
    n = len(cols["weight_kg"])
    base, after = _pk_troughs(plan, cols, start)
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
    if plan.per_patient:
        out.update(baseline_tl=base, trough_after=after,
                   p_remission=np.full((*shape, n), np.nan), p_futile=np.full((*shape, n), np.nan))
    if idx.size == 0:
        return out
    z, disease = _design(plan, cols, idx, start)
    log_tl = xr.DataArray(np.log(base[idx]), dims="patient")
    for k, strategy in enumerate(plan.strategies):
        for m, month in enumerate(plan.months):
            p = plan.predictor.p_remission(log_tl, strategy, month, covariates=z,
                                           disease=disease)
            out["rate_sum"][:, k, m] = p @ onehot
            below = (p < plan.p_min).mean(axis=0)
            out["futile_count"][k, m] = (below >= plan.credibility).astype(float) @ onehot
            if plan.per_patient:
                out["p_remission"][k, m, idx] = p.mean(axis=0)
                out["p_futile"][k, m, idx] = below
    return out


_SUM_KEYS = ("n_simulated", "n_excluded", "n_above_fitted", "n_band", "log_baseline_sum",
             "log_trough_sum", "above_target", "rate_sum", "futile_count")


def _add(*parts: dict) -> dict:
    return {k: sum(p[k] for p in parts) for k in _SUM_KEYS}


def _tree_sum(items: list, fan_in: int = 8):
    """Sum dicts of chunk results pairwise in a tree of delayed tasks (bounded memory)."""
    while len(items) > 1:
        items = [dask.delayed(_add)(*items[i:i + fan_in]) for i in range(0, len(items), fan_in)]
    return items[0]


def _pk_models(pk_model) -> tuple[tuple[PopulationModel, ...], bool]:
    if isinstance(pk_model, str) and pk_model.strip().lower() == "by_disease":
        return (get_model("fasanmade2011"), get_model("fasanmade2009")), True
    return (get_model(pk_model),), False


def _population(population, random_seed: int, chunk_size: int | None) -> xr.Dataset:
    if isinstance(population, int | np.integer) and not isinstance(population, bool):
        population = VirtualPopulation(int(population))
    if isinstance(population, VirtualPopulation):
        return population.sample(random_seed, chunk_size=chunk_size)
    if isinstance(population, xr.Dataset):
        ds = population
    else:
        ds = population_from_table(population)
    if chunk_size is not None:
        ds = ds.chunk(patient=chunk_size)
    return ds


def _check_columns(ds: xr.Dataset, pk_models, by_disease: bool, encodings, meta) -> None:
    source = ds.attrs.get("source", "<population>")
    needed = {"weight_kg": "the PK models dose by weight"}
    for model in pk_models:
        for cov in model.covariates_used:
            if cov in _PK_COLUMNS:
                needed[_PK_COLUMNS[cov]] = f"PK model {model.name} uses {cov}"
    if by_disease or meta["diseases"]:
        needed["disease"] = "the PK model or the remission slope depends on disease"
    for enc in encodings:
        needed[enc.name] = "a covariate of the remission model"
    for name, why in needed.items():
        if name not in ds:
            raise CohortError(f"the population has no column {name!r} ({why})", source=source,
                              column=name, fix="add it (cohort names and units: weight_kg, "
                              "albumin_g_l, crp_mg_l, sex F/M, disease CD/UC, immunomodulator "
                              "0/1)")
    if ds.sizes.get("patient", 0) == 0:
        raise CohortError("the population has no patients", source=source)
    if not isinstance(ds["weight_kg"].data, da.Array):  # user tables: check ranges now
        ranged = {c: ds[c].values for name, c in _PK_COLUMNS.items()
                  if c in ds and not COVARIATES[name]["binary"]}
        for name, values in from_cohort(ranged).items():
            check_covariate(name, values)


def simulate_scenarios(
    fit,
    population: VirtualPopulation | pd.DataFrame | xr.Dataset | str | int,
    regimens: Sequence[str | Regimen],
    *,
    pk_model: str | PopulationModel = "by_disease",
    random_seed: int | None = None,
    strategy_map: Mapping[str, str] | None = None,
    baseline_regimen: str | Regimen = "5mg/kg q8w",
    tl_bands_ug_ml: Sequence[float] = (5.0, 7.0, 9.0, 12.0),
    min_tl_ug_ml: float | None = 3.0,
    p_min: float = 0.2,
    credibility: float = 0.9,
    ci_prob: float = 0.9,
    target_tl_ug_ml: float = 5.0,
    reference: str | None = None,
    n_draws: int | None = None,
    chunk_size: int | None = 10_000,
    per_patient: bool | None = None,
    scheduler: str = "threads",
    client=None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Expected remission and futility of intensification regimens over a virtual population.

    Parameters
    ----------
    fit : RemissionFit
        A fitted remission model, or any object with ``posterior`` (an xarray Dataset with
        ``chain`` and ``draw``) and ``meta`` (as :attr:`RemissionFit.meta`); ``cohort_data``
        (the fitted cohort) is used for the regimen-to-strategy mapping when present.
    population : VirtualPopulation, int, DataFrame, path or Dataset
        Virtual patients (an int ``n`` means ``VirtualPopulation(n)`` with the default
        covariate distribution) or a table of patients (see
        :func:`pkmodel.scenarios.population_from_table`); a ``baseline_tl`` column gives
        observed baseline troughs, µg/mL.
    regimens : sequence of str or Regimen
        Intensified regimens, e.g. ``["10mg/kg q8w", "5mg/kg q4w"]``. Each is mapped to a fitted
        strategy (see :mod:`pkmodel.scenarios.strategies`) or refused.
    pk_model : str or PopulationModel, default "by_disease"
        ``"by_disease"``: Fasanmade 2011 for Crohn's disease, Fasanmade 2009 for ulcerative
        colitis; or one model of :data:`pkmodel.pk.MODELS` (a name or an object).
    random_seed : int, optional
        Seeds the population and the PK random effects. The same seed gives the same numbers
        whatever ``chunk_size``, ``scheduler`` or ``client``.
    strategy_map : mapping, optional
        Explicit ``{regimen: fitted strategy}`` for regimens the fitted cohort did not receive.
    baseline_regimen : str or Regimen, default "5mg/kg q8w"
        Standard maintenance, under which the baseline trough is simulated.
    tl_bands_ug_ml : sequence of float, default (5, 7, 9, 12)
        Inner edges of the baseline-TL bands, µg/mL; the bands run from ``min_tl_ug_ml`` (or 0)
        to infinity.
    min_tl_ug_ml : float or None, default 3.0
        Patients with a lower baseline TL are counted (``n_excluded_below_min_tl``) but not
        predicted: the source study excluded them, so the model was not fitted on them.
        ``None`` predicts everyone (an extrapolation below the fitted range).
    p_min, credibility : float, default 0.2, 0.9
        The futility rule of :meth:`RemissionFit.futility_threshold`: intensification is futile
        for a patient when P(p_remission < p_min) >= credibility over the posterior.
    ci_prob : float, default 0.9
        Width of the equal-tailed credible intervals.
    target_tl_ug_ml : float, default 5.0
        Trough target for ``fraction_above_target``, µg/mL.
    reference : str, optional
        Regimen against which rate differences and numbers needed to treat are computed
        (default: the first).
    n_draws : int, optional
        Use this many posterior draws, evenly spaced over the chains (default: all).
    chunk_size : int or None, default 10000
        Patients per dask chunk; ``None`` computes everything in memory at once (only for small
        runs: it holds patients x draws).
    per_patient : bool, optional
        Also return per-patient results (``baseline_tl``, ``trough_after``, ``p_remission``,
        ``p_futile`` and the covariates); default when there are at most 100,000 patients.
    scheduler : str, default "threads"
        Local dask scheduler (``"threads"``, ``"synchronous"``, ``"processes"``).
    client : distributed.Client, optional
        Run on this dask.distributed cluster instead.
    progress : bool, optional
        Show a progress bar; default when standard error is a terminal.

    Returns
    -------
    xarray.Dataset
        Per regimen, month and band (``band = "all"`` for every eligible patient):
        ``remission_rate`` (posterior draws, ``sample`` dim), ``remission_rate_mean``,
        ``remission_rate_lower``, ``remission_rate_upper``, ``fraction_futile``,
        ``rate_difference`` (vs ``reference``, with ``_mean``, ``_lower``, ``_upper``), ``nnt``,
        ``nnt_lower``, ``nnt_upper``; per regimen and band ``trough_after_geomean`` and
        ``fraction_above_target``; per band ``n_patients`` and ``baseline_tl_geomean``;
        optionally per-patient variables; ``attrs`` record the mapping, seed, settings and what
        is and is not propagated.

    Examples
    --------
    >>> import pkmodel
    >>> fit = pkmodel.load_fit("fit.nc")  # doctest: +SKIP
    >>> ds = pkmodel.simulate_scenarios(fit, 100_000, ["10mg/kg q8w", "5mg/kg q4w"],
    ...                                 random_seed=1)  # doctest: +SKIP
    >>> ds.remission_rate_mean.sel(month=12, band="all")  # doctest: +SKIP
    """
    for name, value in (("p_min", p_min), ("credibility", credibility), ("ci_prob", ci_prob)):
        check_probability(name, value)
    if not hasattr(fit, "posterior") or not hasattr(fit, "meta"):
        raise SpecificationError("fit must be a RemissionFit (pkmodel.load_fit) or an object "
                                 "with posterior and meta")
    meta = fit.meta
    entropy = resolve_seed(random_seed)
    baseline = parse_regimen(baseline_regimen)
    mapping = map_regimens(regimens, meta["strategies"], baseline=baseline,
                           cohort_data=getattr(fit, "cohort_data", None),
                           strategy_map=strategy_map)
    labels = [m.regimen.label for m in mapping]
    if reference is None:
        reference = labels[0]
    reference = parse_regimen(reference).label
    if reference not in labels:
        raise SpecificationError(f"reference {reference!r} is not among the regimens {labels}")
    edges, names = band_labels(tl_bands_ug_ml, min_tl_ug_ml)
    strategies = tuple(dict.fromkeys(m.strategy for m in mapping))
    pk_models, by_disease = _pk_models(pk_model)
    predictor = RemissionPredictor.from_posterior(fit.posterior, meta, n_draws)
    encodings = predictor.design.encodings

    pop = _population(population, entropy, chunk_size)
    _check_columns(pop, pk_models, by_disease, encodings, meta)
    n = pop.sizes["patient"]
    if per_patient is None:
        per_patient = n <= 100_000
    columns = tuple(v for v in dict.fromkeys((
        "weight_kg", "albumin_g_l", "crp_mg_l", "sex", "disease", "immunomodulator",
        *_PK_COLUMNS.values(), "baseline_tl", *(e.name for e in encodings))) if v in pop.data_vars)
    levels = {v: tuple(pop[v].attrs["levels"]) for v in columns if "levels" in pop[v].attrs}
    plan = _Plan(predictor=predictor, strategies=strategies,
                 months=tuple(int(m) for m in meta["months"]),
                 regimens=tuple(m.regimen for m in mapping), baseline=baseline,
                 pk_models=pk_models, by_disease=by_disease, entropy=entropy, edges=edges,
                 min_tl=min_tl_ug_ml, tl_max_fitted=float(meta["tl_range_ug_ml"][1]),
                 p_min=float(p_min), credibility=float(credibility),
                 target=float(target_tl_ug_ml), levels=levels,
                 columns=columns, per_patient=bool(per_patient))

    if chunk_size is None:
        if n * predictor.n_samples > _IN_MEMORY_LIMIT:
            raise SpecificationError(
                f"chunk_size=None holds patients x draws ({n:,} x {predictor.n_samples:,}) in "
                "memory at once; give a chunk_size (e.g. 10000) to run it in bounded memory")
        arrays = [np.asarray(pop[c].values) for c in columns]
        result = _simulate_chunk(plan, 0, *arrays)
        sums = {k: result[k] for k in _SUM_KEYS}
        patients = ({k: result[k] for k in ("baseline_tl", "trough_after", "p_remission",
                                            "p_futile")} if per_patient else None)
        covariates = {c: pop[c].values for c in columns} if per_patient else None
    else:
        sums, patients, covariates = _run_chunked(plan, pop, columns, scheduler, client,
                                                  progress)
    return summarize(sums, patients, covariates, plan=plan, mapping=mapping, band_names=names,
                     reference=reference, ci_prob=ci_prob, population=pop,
                     settings=_settings(pk_models, by_disease, mapping, entropy, baseline,
                                        min_tl_ug_ml, p_min, credibility, ci_prob,
                                        target_tl_ug_ml, reference, n_draws, chunk_size))


def _run_chunked(plan: _Plan, pop: xr.Dataset, columns, scheduler, client, progress):
    chunks = pop.chunks["patient"]
    starts = np.concatenate([[0], np.cumsum(chunks)[:-1]]).astype(int)
    blocks = [pop[c].data.to_delayed().ravel() for c in columns]
    plan_d = dask.delayed(plan, pure=True)
    results = [dask.delayed(_simulate_chunk, pure=True)(plan_d, int(s), *(b[i] for b in blocks))
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


def _settings(pk_models, by_disease, mapping: list[RegimenStrategy], entropy, baseline,
              min_tl, p_min, credibility, ci_prob, target, reference, n_draws,
              chunk_size) -> dict:
    return {
        "pk_model": ("by_disease: fasanmade2011 for CD, fasanmade2009 for UC" if by_disease
                     else pk_models[0].name),
        "pk_citations": json.dumps([m.citation for m in pk_models]),
        "regimen_strategy": json.dumps([m.to_dict() for m in mapping]),
        "random_seed": entropy,
        "baseline_regimen": baseline.label,
        "min_tl_ug_ml": np.nan if min_tl is None else float(min_tl),
        "p_min": float(p_min), "credibility": float(credibility), "ci_prob": float(ci_prob),
        "target_tl_ug_ml": float(target), "reference_regimen": reference,
        "chunk_size": 0 if chunk_size is None else int(chunk_size),
        "level": "population (a new patient at a new centre)",
        "propagated": (
            "between-subject PK variability (one random-effect draw per patient, from the PK "
            "model's omega); covariate variation between patients; posterior uncertainty of the "
            "remission model (every used draw); the between-patient and between-centre spread "
            "of remission (integrated per draw)"),
        "not_propagated": (
            "uncertainty of the PK typical values and covariate effects; residual and assay "
            "error of the baseline trough; intra-patient PK change after intensification; "
            "any effect of the dose or interval within a fitted strategy (the remission model "
            "has none: regimens of the same strategy share their remission predictions); "
            "selection of patients into loss of response"),
    }

