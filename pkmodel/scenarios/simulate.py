"""Dosing-scenario simulation: virtual patients through population PK and the remission model.

:func:`simulate_scenarios` checks its arguments, builds the :class:`~pkmodel.scenarios.engine.Plan`
that every chunk of patients needs, runs it (:mod:`pkmodel.scenarios.engine`, whose docstring
describes the steps; the PK step is :mod:`pkmodel.scenarios.exposure`) and summarises the sums
(:mod:`pkmodel.scenarios.summaries`) with the settings and what is and is not propagated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.errors import CohortError, SpecificationError
from pkmodel.pk.models import PopulationModel
from pkmodel.pk.regimens import Regimen, parse_regimen
from pkmodel.response import RemissionPredictor
from pkmodel.response.strategies import RegimenStrategy, map_regimens
from pkmodel.sampling import resolve_seed
from pkmodel.scenarios import engine, exposure
from pkmodel.scenarios.populations import VirtualPopulation, population_from_table
from pkmodel.scenarios.summaries import band_labels, summarize
from pkmodel.validation import check_probability

__all__ = ["simulate_scenarios"]

_IN_MEMORY_LIMIT = 50_000_000  # patients x draws allowed without chunking (~0.4 GB per array)


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
    needed = exposure.needed_columns(pk_models)
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
        exposure.check_ranges(ds)


def simulate_scenarios(
    fit,
    population: VirtualPopulation | pd.DataFrame | xr.Dataset | str | int,
    regimens: Sequence[str | Regimen],
    *,
    pk_model: str | os.PathLike | PopulationModel = "by_disease",
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
        strategy (see :mod:`pkmodel.response.strategies`) or refused.
    pk_model : str, path or PopulationModel, default "by_disease"
        ``"by_disease"``: Fasanmade 2011 for Crohn's disease, Fasanmade 2009 for ulcerative
        colitis; or one model of :data:`pkmodel.pk.MODELS` (a name or an object), or a
        population fit's file ``POPFIT.nc`` (``pkmodel pk fit``; see
        :func:`pkmodel.pk.resolve_model`).
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
    exposure_fit = bool(meta.get("exposure"))
    if exposure_fit:  # every regimen predicted from the exposure gain it brings
        if strategy_map:
            raise SpecificationError("strategy_map belongs to the baseline-TL model; the "
                                     "exposure-driven model predicts every regimen from its "
                                     "own exposure gain")
        if isinstance(regimens, str | Regimen) or not len(regimens):
            raise SpecificationError("regimens must be a non-empty list, e.g. ['10mg/kg q8w', "
                                     "'5mg/kg q4w']")
        regs = [parse_regimen(r) for r in regimens]
        if len({r.label for r in regs}) != len(regs):
            raise SpecificationError(f"regimens are repeated: {[r.label for r in regs]}")
        mapping = [RegimenStrategy(r, r.label, "exposure") for r in regs]
    else:
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
    pk_models, by_disease = exposure.resolve_pk_models(pk_model)
    predictor = RemissionPredictor.from_posterior(fit.posterior, meta, n_draws)
    encodings = predictor.design.encodings

    pop = _population(population, entropy, chunk_size)
    _check_columns(pop, pk_models, by_disease, encodings, meta)
    n = pop.sizes["patient"]
    if per_patient is None:
        per_patient = n <= 100_000
    wanted = ("weight_kg", "albumin_g_l", "crp_mg_l", "sex", "disease", "immunomodulator",
              *exposure.PK_COLUMNS.values(), "baseline_tl", *(e.name for e in encodings))
    columns = tuple(v for v in dict.fromkeys(wanted) if v in pop.data_vars)
    levels = {v: tuple(pop[v].attrs["levels"]) for v in columns if "levels" in pop[v].attrs}
    plan = engine.Plan(predictor=predictor, strategies=strategies,
                       months=tuple(int(m) for m in meta["months"]),
                       regimens=tuple(m.regimen for m in mapping), baseline=baseline,
                       pk_models=pk_models, by_disease=by_disease, entropy=entropy, edges=edges,
                       min_tl=min_tl_ug_ml, tl_max_fitted=float(meta["tl_range_ug_ml"][1]),
                       p_min=float(p_min), credibility=float(credibility),
                       target=float(target_tl_ug_ml), levels=levels,
                       columns=columns, per_patient=bool(per_patient),
                       log_gain_range=(tuple(meta["exposure"]["log_gain_range"])
                                       if exposure_fit else None))

    if chunk_size is None and n * predictor.n_samples > _IN_MEMORY_LIMIT:
        raise SpecificationError(
            f"chunk_size=None holds patients x draws ({n:,} x {predictor.n_samples:,}) in "
            "memory at once; give a chunk_size (e.g. 10000) to run it in bounded memory")
    sums, patients, covariates = engine.run(plan, pop, chunked=chunk_size is not None,
                                            scheduler=scheduler, client=client,
                                            progress=progress)
    return summarize(sums, patients, covariates, plan=plan, mapping=mapping, band_names=names,
                     reference=reference, ci_prob=ci_prob, population=pop,
                     settings=_settings(pk_models, by_disease, mapping, entropy, baseline,
                                        min_tl_ug_ml, p_min, credibility, ci_prob,
                                        target_tl_ug_ml, reference, n_draws, chunk_size,
                                        exposure_fit))


def _settings(pk_models, by_disease, mapping: list[RegimenStrategy], entropy, baseline,
              min_tl, p_min, credibility, ci_prob, target, reference, n_draws,
              chunk_size, exposure_fit: bool = False) -> dict:
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
            + ("" if exposure_fit else
               "any effect of the dose or interval within a fitted strategy (the remission "
               "model has none: regimens of the same strategy share their remission "
               "predictions); ")
            + "selection of patients into loss of response"),
    }

