"""The exposure-driven remission model's inputs: each patient's regimen and exposure gain.

With ``RemissionModel(exposure=...)`` the log-odds of remission depend on the baseline trough
and on the exposure gain the regimen given brings that patient,

    logit P = alpha + a_centre + tau_month + b_base (log TL - log 5) + b_gain log(gain) + ...

instead of on a strategy label. ``gain`` is the ratio of the patient's steady-state trough
under the regimen given to that under the baseline regimen (5 mg/kg every 8 weeks by default),
predicted from their individual PK: a published population model is the prior of their
parameters and their covariates and measured baseline trough inform it
(:func:`pkmodel.pk.gain.log_gain_posterior`). The posterior of log gain, mean m_i and SD s_i, is
carried into the remission model as data: with log gain = m_i + s_i e, e ~ N(0, 1), the term
``b_gain s_i e`` is a normal effect of SD ``|b_gain| s_i`` that the likelihood integrates
together with the patient effect (both by Gauss-Hermite quadrature): the PK uncertainty of every
patient widens their outcome's distribution as much as the fitted ``b_gain`` makes it matter.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkmodel.errors import CohortError, SpecificationError
from pkmodel.pk.covariate_registry import COVARIATES, check_covariate, from_cohort
from pkmodel.pk.gain import LogGain, log_gain_posterior, patient_log_gain
from pkmodel.pk.models import PopulationModel
from pkmodel.pk.nonmem import PKDataset
from pkmodel.pk.published_models import MODELS, get_model
from pkmodel.pk.regimens import Regimen, parse_regimen
from pkmodel.pk.resolver import resolve_model, resolve_population_draws

__all__ = ["GAIN_SEED", "POPULATION_SEED", "Exposure", "ExposureInputs", "cohort_regimens",
           "exposure_inputs", "fitted_pk_model", "gain_models", "per_sample", "pk_covariates",
           "regimen_gain", "regimen_labels", "table_gain"]

#: The seed of the importance samples of the exposure gains: fixed, so that a cohort's design
#: (and its compiled model) does not depend on the seed of the fit.
GAIN_SEED = 20190601
#: The seed of the draws of the population PK parameters (``population_draws=K``): fixed for
#: the same reason, so that the K designs do not depend on the seed of the fit.
POPULATION_SEED = 20110701


@dataclass(frozen=True)
class Exposure:
    """How the exposure-driven model computes each patient's exposure gain.

    Parameters
    ----------
    pk_model : str, path or PopulationModel, default "fasanmade2011"
        The population PK model whose parameters are the prior of each patient's PK: any name of
        ``pkmodel pk models``, a population fit's file ``POPFIT.nc`` (``pkmodel pk fit``) or a
        :class:`~pkmodel.pk.PopulationModel` (see :func:`pkmodel.pk.resolve_model`). A model
        that is not a library one is kept as the model itself (its :meth:`to_dict` in the saved
        fit), so that the fit loads and predicts the same without the file it came from.
    baseline_regimen : str, default "5 mg/kg q8w"
        The regimen at whose steady state the baseline trough was measured (standard
        maintenance).
    assume : mapping of str to float
        Values stated for cohort columns the cohort lacks or leaves empty, e.g.
        ``{"albumin_g_l": 40}``; without one, a missing PK covariate is an error naming the
        patient. Recorded with the fit.
    population_draws : int or sequence of PopulationModel, optional
        Propagate the uncertainty of the PK model's population parameters (typical values,
        covariate effects, omegas, residual error): the remission model is fitted once per
        draw of them, each with the exposure gains that draw gives, and the posteriors are
        pooled (``docs/exposure.md``). An integer K: K draws of the population fit's posterior
        (``pk_model`` a ``POPFIT.nc`` or a fit), or from the sampling distribution of a library
        model's estimates (published RSEs where known, stated defaults otherwise:
        :mod:`pkmodel.pk.published_uncertainty`), chosen with the fixed
        :data:`POPULATION_SEED`. A sequence: those population models (a bootstrap of your own
        NONMEM run, say). ``None`` (default): the population parameters are taken as known
        (one fit, K times faster). Kept as the models themselves, recorded with the fit.
    population_source : str, optional
        Where the draws come from, in words; filled in when not given.
    history : str, path or PKDataset, optional
        The patients' TDM histories: a NONMEM-format PK dataset of the same patients (``ID`` =
        the cohort's ``patient_id``; doses with their times and rates, troughs with BLQ /
        above-limit flags, covariates over time), each patient's record up to intensification.
        Each patient's PK posterior then uses every trough under the actual doses
        (:mod:`pkmodel.response.histories`); the cohort's ``baseline_tl`` must be the history's
        last trough. Read when the model is built; the saved fit records its source.
    history_time_unit : {"day", "hour", "week"}, default "day"
        Unit of the history's ``TIME``.
    """

    pk_model: str | PopulationModel = "fasanmade2011"
    baseline_regimen: str = "5 mg/kg q8w"
    assume: Mapping[str, float] = field(default_factory=dict)
    population_draws: int | Sequence[PopulationModel] | None = None
    population_source: str = ""
    history: str | os.PathLike | PKDataset | None = None
    history_time_unit: str = "day"

    def __post_init__(self) -> None:
        self._resolve_population_draws()
        if self.history_time_unit not in ("day", "hour", "week"):
            raise SpecificationError(f"history_time_unit must be day, hour or week, not "
                                     f"{self.history_time_unit!r}")
        if isinstance(self.history, os.PathLike):
            object.__setattr__(self, "history", os.fspath(self.history))
        model = resolve_model(self.pk_model)
        # a library model by its name; any other by its numbers, never a path that may change
        if not _is_library(model):
            object.__setattr__(self, "pk_model", model)
        elif isinstance(self.pk_model, PopulationModel):
            object.__setattr__(self, "pk_model", model.name)
        parse_regimen(self.baseline_regimen)
        columns = {c.cohort for c in COVARIATES.values() if c.cohort}
        columns |= {"ati", "dose_mg_kg", "interval_weeks"}
        unknown = sorted(set(self.assume) - columns)
        if unknown:
            raise SpecificationError(f"assume names {unknown}, which are not PK columns of the "
                                     f"cohort; they are {sorted(columns)}")
        try:
            object.__setattr__(self, "assume", {k: float(v) for k, v in self.assume.items()})
        except (TypeError, ValueError):
            raise SpecificationError("assumed values must be numbers, e.g. "
                                     "{'albumin_g_l': 40}") from None
        for column, value in self.assume.items():
            _check_assumed(column, value)

    def _resolve_population_draws(self) -> None:
        """``population_draws`` as a tuple of models (or ``None``), with their source."""
        draws = self.population_draws
        if draws is None:
            return
        if isinstance(draws, int | np.integer) and not isinstance(draws, bool):
            models, source = resolve_population_draws(self.pk_model, int(draws),
                                                      random_seed=POPULATION_SEED)
        elif isinstance(draws, Sequence) and not isinstance(draws, str) and len(draws) > 0:
            models = [resolve_model(m) for m in draws]
            source = f"{len(models)} population PK models given"
        else:
            raise SpecificationError(
                f"population_draws must be a number of draws (e.g. 10) or a non-empty list of "
                f"population PK models, not {draws!r}")
        object.__setattr__(self, "population_draws", tuple(models))
        object.__setattr__(self, "population_source", self.population_source or source)

    @property
    def model(self) -> PopulationModel:
        """The population PK model."""
        return get_model(self.pk_model)

    @property
    def propagated(self) -> bool:
        """Whether the PK population's uncertainty is propagated (``population_draws``)."""
        return bool(self.population_draws)

    def central(self) -> Exposure:
        """This exposure with the population parameters taken as known (``pk_model``'s)."""
        return dataclasses.replace(self, population_draws=None, population_source="")

    def components(self) -> tuple[Exposure, ...]:
        """One exposure per population draw, each with that draw as its PK model."""
        return tuple(dataclasses.replace(self.central(), pk_model=m)
                     for m in self.population_draws or ())

    @property
    def baseline(self) -> Regimen:
        """The baseline regimen."""
        return parse_regimen(self.baseline_regimen)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        pk = self.pk_model
        out = {"pk_model": pk.to_dict() if isinstance(pk, PopulationModel) else pk,
               "baseline_regimen": self.baseline_regimen, "assume": dict(self.assume)}
        if self.history is not None:  # where the histories came from (not their records)
            out |= {"history": (self.history.source if isinstance(self.history, PKDataset)
                                else str(self.history)),
                    "history_time_unit": self.history_time_unit}
        if self.propagated:
            out |= {"population_draws": [m.to_dict() for m in self.population_draws],
                    "population_source": self.population_source}
        return out

    @classmethod
    def from_any(cls, value) -> Exposure | None:
        """From ``None``/``False`` (no exposure model), ``True`` (defaults), a dict or itself."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            known = [f.name for f in dataclasses.fields(cls)]
            unknown = sorted(set(value) - set(known))
            if unknown:
                raise SpecificationError(f"unknown exposure option(s) {unknown}; they are "
                                         f"{', '.join(known)}")
            return cls(**value)
        raise SpecificationError(f"exposure must be True, a dict or Exposure, not {value!r}")


#: Plausible ranges of the assumed regimen columns (mg/kg per infusion, weeks between them).
_REGIMEN_RANGES = {"dose_mg_kg": (1.0, 20.0), "interval_weeks": (1.0, 16.0)}


def _check_assumed(column: str, value: float) -> None:
    """Refuse an assumed value that is implausible in the cohort's unit (g/L for albumin)."""
    from pkmodel.data.plausibility import check_plausible

    name = f"the assumed {column} (--assume {column}=VALUE)"
    if column in ("weight_kg", "albumin_g_l"):
        check_plausible(name, column, value)
    elif column in ("ati", "immunomodulator"):
        if value not in (0.0, 1.0):
            raise SpecificationError(f"{name} is {value:g}: write 0 (no) or 1 (yes)")
    elif column in _REGIMEN_RANGES:
        lo, hi = _REGIMEN_RANGES[column]
        if not lo <= value <= hi:
            unit = "mg/kg" if column == "dose_mg_kg" else "weeks"
            raise SpecificationError(f"{name} is {value:g} {unit}, outside the plausible "
                                     f"{lo:g}-{hi:g} {unit} of an infliximab regimen; check "
                                     "the value and its unit")


def _is_library(model: PopulationModel) -> bool:
    return MODELS.get(model.name) == model


def fitted_pk_model(exposure: Mapping) -> PopulationModel:
    """The PK model a fit's exposure record (``meta["exposure"]``) was made with: the recorded
    definition of a local model (a population fit's), or the library model by name; as its
    gains were computed (:func:`_as_fitted`)."""
    if "pk_model_definition" in exposure:
        return _as_fitted(PopulationModel.from_dict(exposure["pk_model_definition"]), exposure)
    return _as_fitted(get_model(exposure["pk_model"]), exposure)


def _as_fitted(model: PopulationModel, exposure: Mapping) -> PopulationModel:
    """The model as a fit's gains used it: a fit made before the gains followed the model's
    inter-occasion variability (no ``gain_iov`` in its record: pkmodel 0.4) predicts without
    it, so that it predicts as it was fitted."""
    if model.occasion_effects and not exposure.get("gain_iov", False):
        return dataclasses.replace(model, omega2_iov={})
    return model


def gain_models(exposure: Mapping) -> list[PopulationModel]:
    """The PK model of each block of a fit's posterior samples: the K population draws of a
    fit pooled over them (``population_uncertainty``, in the order of their chains), or the
    fit's one model (:func:`fitted_pk_model`)."""
    record = exposure.get("population_uncertainty") or {}
    if "models" in record:
        return [_as_fitted(PopulationModel.from_dict(m), exposure) for m in record["models"]]
    return [fitted_pk_model(exposure)]


def per_sample(values: np.ndarray, n_samples: int) -> np.ndarray:
    """Values of each population draw, shape (K, rows), as values per posterior sample, shape
    (samples, rows): each draw's over the samples of its chains (the chains of the K draws
    follow one another, with the same draws each, :mod:`pkmodel.response.pooling`). Values of
    one model, shape (rows,), are returned as they are."""
    values = np.asarray(values)
    if values.ndim == 1:
        return values
    return np.repeat(values, n_samples // values.shape[0], axis=0)


@dataclass(frozen=True)
class ExposureInputs:
    """Each fitted patient's regimen label and log exposure gain, and what the fit records."""

    regimen: np.ndarray
    gain: LogGain
    meta: dict


def pk_covariates(model: PopulationModel, columns: Mapping[str, object]) -> dict[str, np.ndarray]:
    """The PK model's covariates, in its units, from cohort columns (``ati`` as the cohort's)."""
    out = from_cohort(columns)
    if "ati" in columns:
        out["ati"] = np.asarray(columns["ati"], dtype=float)
    return {k: out[k] for k in ("weight_kg", *model.covariates_used) if k in out}


def regimen_labels(dose_mg_kg, interval_weeks) -> np.ndarray:
    """The label of each row's regimen (``"10 mg/kg q8w"``): the exposure model's "strategies"."""
    return np.array([Regimen(float(d), float(i)).label
                     for d, i in zip(dose_mg_kg, interval_weeks, strict=True)])


def cohort_regimens(frame: pd.DataFrame, meta: dict) -> np.ndarray:
    """The regimen label of each row of a fitted cohort table, with the fit's stated assumptions."""
    assume = (meta.get("exposure") or {}).get("assume", {})
    return regimen_labels(*(_column(frame, c, assume, "<fitted cohort>", "(the regimen given)")
                            for c in ("dose_mg_kg", "interval_weeks")))


def _column(patients: pd.DataFrame, name: str, assume: Mapping[str, float], source: str,
            why: str):
    """One per-patient column, with the stated assumption filling gaps, or an error."""
    values = (pd.to_numeric(patients[name], errors="coerce") if name in patients
              else pd.Series(np.nan, index=patients.index))
    if name in assume:
        values = values.fillna(assume[name])
    missing = values.isna().to_numpy()
    if missing.any():
        pid = patients["patient_id"].iloc[int(np.argmax(missing))]
        raise CohortError(
            f"{name} is missing for patient {pid!r} ({int(missing.sum())} patient(s) in all); "
            f"the exposure-driven model needs it {why}", source=source, column=name,
            fix=f"fill it in, or state an assumption for the missing values: "
                f"exposure={{'assume': {{'{name}': VALUE}}}} (--assume {name}=VALUE)")
    return values.to_numpy(dtype=float)


def exposure_inputs(patients: pd.DataFrame, log_tl: np.ndarray, tl_cens: np.ndarray,
                    spec: Exposure, source: str, excluded: int = 0) -> ExposureInputs:
    """Regimens and log exposure gains of the patients of a cohort (one row per patient).

    ``log_tl`` and ``tl_cens`` are the patients' log baseline TL (or limit) and censoring code;
    ``excluded`` the number of patients the cohort's reader excluded (whose TDM histories, with
    ``spec.history``, may be in the history file).

    Raises
    ------
    CohortError
        A regimen column or a PK covariate missing for a patient, without a stated assumption.
    """
    model, baseline = spec.model, spec.baseline
    dose = _column(patients, "dose_mg_kg", spec.assume, source, "(the regimen given)")
    interval = _column(patients, "interval_weeks", spec.assume, source, "(the regimen given)")
    own = [c for c in model.covariates_used if c not in COVARIATES]
    if own:  # a fit's declared covariate (a neonatal WGT): no cohort column holds it
        raise SpecificationError(
            f"the PK model {model.name} uses {', '.join(own)}, which a cohort does not hold "
            "(the exposure-driven model reads the library's covariates from the cohort: "
            "weight, albumin, sex, immunomodulator); use a PK model of those covariates")
    needed = {COVARIATES[c].cohort or c for c in ("weight_kg", *model.covariates_used)}
    columns = {c: _column(patients, c, spec.assume, source, f"for the PK model {model.name}")
               for c in sorted(needed)}
    cov = pk_covariates(model, columns)
    for name, value in cov.items():
        check_covariate(name, value)
    history = None
    if spec.history is not None:
        from pkmodel.response.histories import history_gains

        gain, history = history_gains(patients, np.exp(log_tl), tl_cens, cov, dose, interval,
                                      spec, source, excluded, GAIN_SEED)
    else:
        gain = log_gain_posterior(model, np.exp(log_tl), tl_cens, cov, dose, interval,
                                  baseline=baseline, random_seed=GAIN_SEED)
    labels = regimen_labels(dose, interval)
    regimens = {lab: [float(d), float(i)] for lab, d, i in
                sorted(set(zip(labels, dose, interval, strict=True)))}
    reference = {c: float(np.median(v)) for c, v in columns.items()}
    meta = {"pk_model": model.name,
            **({} if _is_library(model) else {"pk_model_definition": model.to_dict()}),
            "baseline_regimen": baseline.label,
            "regimens": regimens, "assume": dict(spec.assume),
            "reference_columns": reference,
            "log_gain_range": [float(gain.mean.min()), float(gain.mean.max())],
            "min_gain_ess": float(gain.ess.min()),
            "gain_iov": bool(model.occasion_effects),
            **({} if history is None else {"history": history})}
    return ExposureInputs(regimen=labels, gain=gain, meta=meta)


def regimen_gain(meta: dict, log_tl: np.ndarray, tl_cens: np.ndarray,
                 regimens: list[Regimen], columns: Mapping[str, object]) -> LogGain:
    """Log exposure gains of new patients under the fit's PK model (one row per patient).

    ``columns`` holds the cohort columns of the PK covariates, one value or one per row; those
    left out take the fitted cohort's median (``meta["exposure"]["reference_columns"]``). For a
    fit pooled over K draws of the PK population, the gains under each draw: arrays of shape
    (K, rows), which :func:`per_sample` spreads over the posterior samples.
    """
    exp = meta["exposure"]
    baseline = parse_regimen(exp["baseline_regimen"])
    n = np.asarray(log_tl).shape[-1]
    given = {c: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for c, v in columns.items()
             if v is not None}
    full = {c: given.get(c, np.full(n, v)) for c, v in exp["reference_columns"].items()}
    dose = np.array([r.dose_mg_kg for r in regimens], dtype=float)
    interval = np.array([r.interval_weeks for r in regimens], dtype=float)
    gains = []
    for model in gain_models(exp):
        cov = pk_covariates(model, full)
        for name, value in cov.items():
            check_covariate(name, value)
        tl = np.exp(np.asarray(log_tl, dtype=float))
        if all(np.all(v == v.flat[0]) for v in cov.values()):  # one patient (a curve's)
            gains.append(_one_patient_gain(model, tl, np.asarray(tl_cens), cov, regimens,
                                           baseline))
            continue
        gains.append(log_gain_posterior(model, tl, np.asarray(tl_cens), cov, dose, interval,
                                        baseline=baseline, random_seed=GAIN_SEED))
    if len(gains) == 1:
        return gains[0]
    return LogGain(*(np.stack([getattr(g, f.name) for g in gains])
                     for f in dataclasses.fields(LogGain)))


def _one_patient_gain(model: PopulationModel, tl: np.ndarray, tl_cens: np.ndarray,
                      cov: Mapping[str, np.ndarray], regimens: list[Regimen],
                      baseline: Regimen) -> LogGain:
    """:func:`log_gain_posterior` of rows that share their covariates (the same numbers: the
    same draws from the same seed), through :func:`patient_log_gain`, which computes the draws'
    troughs once for all the rows' troughs and regimens rather than once per row."""
    tl_cens = np.broadcast_to(tl_cens, tl.shape)
    points, at_point = np.unique(np.stack([tl, tl_cens]), axis=1, return_inverse=True)
    labels = [r.label for r in regimens]
    unique = list(dict.fromkeys(labels))
    at_regimen = np.array([unique.index(lab) for lab in labels])
    first = {lab: regimens[labels.index(lab)] for lab in unique}
    g = patient_log_gain(model, {k: float(np.ravel(v)[0]) for k, v in cov.items()}, points[0],
                         points[1].astype(np.int64), [first[lab] for lab in unique],
                         baseline=baseline, random_seed=GAIN_SEED)
    pick = (at_point.reshape(-1), at_regimen)
    return LogGain(mean=g.mean[pick], sd=g.sd[pick], ess=g.ess[at_point.reshape(-1)],
                   log_after_mean=g.log_after_mean[pick], log_after_sd=g.log_after_sd[pick])


def table_gain(meta: dict, table: pd.DataFrame) -> tuple[LogGain, dict[str, float]]:
    """Log exposure gains of the rows of a table of new patients (:meth:`RemissionFit.predict`).

    Each row's regimen is its ``dose_mg_kg`` and ``interval_weeks`` where the table has them,
    otherwise its ``strategy`` read as a regimen (``"10 mg/kg q8w"``; the reader's
    ``10_mg/kg_q8w`` too): any regimen, fitted or not, is predicted from the exposure it brings.
    ``weight_kg`` is required; the other PK columns the table lacks take the fitted cohort's
    medians, returned as the second value (what was assumed).

    Raises
    ------
    PredictionError
        A row whose regimen cannot be read, or a table without ``weight_kg``.
    """
    from pkmodel.errors import PredictionError

    regimens = []
    for i, row in enumerate(table.itertuples(index=False)):
        dose = getattr(row, "dose_mg_kg", None)
        interval = getattr(row, "interval_weeks", None)
        if dose is not None and interval is not None and not (pd.isna(dose) or pd.isna(interval)):
            regimens.append(Regimen(float(dose), float(interval)))
            continue
        label = str(getattr(row, "strategy", "")).replace("_", " ")
        try:
            regimens.append(parse_regimen(label))
        except SpecificationError:
            raise PredictionError(
                f"row {i + 1}: {getattr(row, 'strategy', None)!r} is not a regimen; the "
                "exposure-driven model predicts a regimen from the exposure it brings: give "
                "dose_mg_kg and interval_weeks, or write the regimen as the strategy, e.g. "
                "'10 mg/kg q8w'") from None
    if "weight_kg" not in table or table["weight_kg"].isna().any():
        raise PredictionError("the exposure-driven model needs every row's weight_kg (the dose "
                              "is per kg): add the column")
    reference = meta["exposure"]["reference_columns"]
    columns = {c: table[c].to_numpy() for c in reference if c in table}
    assumed = {c: float(v) for c, v in reference.items() if c not in table}
    return regimen_gain(meta, np.log(table["baseline_tl"].to_numpy(dtype=float)),
                        table["tl_cens"].to_numpy(dtype=int), regimens, columns), assumed
