"""Exposure gains of a cohort's patients from their TDM histories (the two-stage approach).

With ``Exposure(history=...)`` each patient of the cohort has a record in a NONMEM-format PK
dataset (``ID`` = the cohort's ``patient_id``): their doses with times and rates, their troughs
(BLQ and above-limit flags as :func:`pkmodel.pk.read_nonmem` reads them) and covariates over
time, up to intensification. Each patient's PK posterior is computed from every trough under
the actual doses (:func:`pkmodel.pk.estimate_individual`: posterior mode, then adaptive
importance resampling), not from one trough assumed at steady state, and their exposure gain
from it (:func:`pkmodel.pk.gain.history_log_gain`): the posterior mean and SD of log gain that
the remission model integrates, as for one trough.

The rules, each checked with an error that names the patient, the file, row and column:

- every cohort patient has a history with at least one trough; a history patient who is not in
  the cohort is an error, unless there are no more of them than patients the cohort's reader
  excluded (ATI-positive, a trough below 3 µg/mL): those are counted in the fit's record;
- the history ends at intensification: its **last trough is the baseline trough**, so the
  cohort's ``baseline_tl`` must be that trough (its value to the cohort's precision, or the same
  limit for a value beyond one); a dose of the intensified amount (mg/kg, when it differs from
  the baseline regimen's) before it means the history runs past intensification;
- the history's covariates, where it has them, are the patient's (time-varying, the last value
  carried forward); the cohort's PK columns (and stated assumptions) fill in the others.

An estimate that the model finds implausible (a unit slip: DV in ng/mL, TIME in hours) warns
with the patient's ID (:class:`~pkmodel.errors.ImplausibleEstimateWarning`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pkmodel.errors import CohortError, ImplausibleEstimateWarning, PKDataError
from pkmodel.pk.covariates import CovariateHistory
from pkmodel.pk.gain import LogGain, history_log_gain
from pkmodel.pk.nonmem import PKDataset, PKSubject, read_nonmem
from pkmodel.pk.regimens import Regimen

__all__ = ["HISTORY_DRAWS", "TL_TOLERANCE", "estimate_covariates", "history_gains",
           "read_histories"]

#: Posterior draws of each patient's PK (importance resampled): the Monte Carlo SE of a mean
#: log gain is about its posterior SD / 30, far below that SD, which the model integrates.
HISTORY_DRAWS = 1000

#: How close the cohort's baseline_tl must be to the history's last trough: relative, and
#: absolute in µg/mL (a cohort table that rounds to 0.01 µg/mL or three significant digits).
TL_TOLERANCE = (2e-3, 0.006)


def read_histories(source, model, *, time_unit: str = "day", sep: str = ",") -> PKDataset:
    """TDM histories as a dataset, read with the PK model's covariates (a neonatal ``WGT`` it
    declares, say); a ``PKDataset`` is returned as it is.

    Parameters
    ----------
    source : str, path, pandas.DataFrame or PKDataset
        The NONMEM-format dataset (:func:`pkmodel.pk.read_nonmem`).
    model : PopulationModel
        The PK model whose covariates the dataset's columns are.
    time_unit : {"day", "hour", "week"}
        Unit of ``TIME``.
    sep : str
        Field delimiter.
    """
    if isinstance(source, PKDataset):
        return source
    return read_nonmem(source, sep=sep, time_unit=time_unit,
                       covariates=model.covariate_registry)


def _join(patients: pd.DataFrame, data: PKDataset, source: str,
          excluded: int) -> tuple[list[PKSubject], list[str]]:
    """Each cohort patient's history, in cohort order, and the history's patients the cohort
    does not hold: at most ``excluded`` (the patients the cohort's reader excluded), else an
    error."""
    ids = patients["patient_id"].astype(str).tolist()
    missing = [p for p in ids if p not in data.subjects]
    if missing:
        raise CohortError(
            f"patient {missing[0]!r} has no record in the PK history {data.source}"
            + (f" ({len(missing)} patients have none)" if len(missing) > 1 else ""),
            source=source, column="patient_id",
            fix="add their doses and troughs to the history (ID = patient_id), or leave the "
                "patient out of the cohort")
    extra = sorted(set(data.subjects) - set(ids))
    if len(extra) > excluded:
        raise PKDataError(
            f"the history has {len(extra)} patient(s) that the cohort does not "
            f"({', '.join(map(repr, extra[:5]))}{'...' if len(extra) > 5 else ''}), more than "
            f"the {excluded} the cohort's reader excluded", source=data.source, column="ID",
            fix="check that ID is the cohort's patient_id; leave the others out of the history, "
                "or add them to the cohort")
    return [data[p] for p in ids], extra


def _check_subject(subject: PKSubject, tl: float, cens: int, weight_kg: float,
                   regimen: Regimen, baseline: Regimen, data_source: str,
                   cohort_source: str) -> None:
    """The history's troughs and doses agree with the cohort's baseline trough and regimen."""
    obs = subject.observations
    if obs is None:
        raise PKDataError(f"patient {subject.id!r} has no trough in the history", column="DV",
                          source=data_source, fix="add their measured troughs (EVID 0, MDV 0)")
    last = int(np.argmax(obs.times_days))
    row = None if subject.observation_rows is None else subject.observation_rows[last]
    value, code = float(obs.values_ug_ml[last]), int(obs.cens[last])
    rel, absolute = TL_TOLERANCE
    if code != cens or abs(value - tl) > max(rel * tl, absolute):
        said = {0: f"{tl:g}", -1: f">{tl:g}", 1: f"<{tl:g}"}[cens]
        found = {0: f"{value:g}", -1: f">{value:g}", 1: f"<{value:g}"}[code]
        raise CohortError(
            f"patient {subject.id!r}: the cohort's baseline_tl is {said} µg/mL, but the last "
            f"trough of their history ({data_source}, row {row}, day "
            f"{obs.times_days[last]:g}) is {found}",
            source=cohort_source, column="baseline_tl",
            fix="the history ends at intensification and its last trough is the baseline "
                "trough: correct the cohort's value, or drop the history's later records")
    if not np.isclose(regimen.dose_mg_kg, baseline.dose_mg_kg):
        sched = subject.schedule
        before = sched.times_days < obs.times_days[last]
        weight = (subject.covariate_history.at(sched.times_days)["weight_kg"]
                  if subject.covariate_history is not None
                  and "weight_kg" in subject.covariate_history.values else weight_kg)
        per_kg = sched.amounts if sched.per_kg else sched.amounts / np.asarray(weight, float)
        late = np.flatnonzero(before & np.isclose(per_kg, regimen.dose_mg_kg, rtol=0.05))
        if late.size:
            raise PKDataError(
                f"patient {subject.id!r}: the dose on day {sched.times_days[late[0]]:g} is "
                f"already the intensified {regimen.dose_mg_kg:g} mg/kg, before the trough of day "
                f"{obs.times_days[last]:g} that the cohort gives as the baseline trough",
                source=data_source, column="AMT",
                fix="the history ends at intensification: drop the records from the first "
                    "intensified dose on")


def estimate_covariates(subject: PKSubject, fallback: Mapping[str, float],
                        explicit: Mapping[str, float] | None = None):
    """What :func:`~pkmodel.pk.estimate_individual` takes for a patient with a history: the
    values ``explicit`` gives (constants), then the history's covariates where it has them
    (over time), then ``fallback`` (the cohort's or stated values) for the rest."""
    explicit = dict(explicit or {})
    source = subject.covariates_for_estimation
    if isinstance(source, CovariateHistory):
        missing = {k: v for k, v in fallback.items() if k not in source.values}
        added = {**missing, **explicit}
        return source.with_values(**added) if added else source
    return {**fallback, **source, **explicit}


def history_gains(patients: pd.DataFrame, tl: np.ndarray, tl_cens: np.ndarray,
                  cov: Mapping[str, np.ndarray], dose: np.ndarray, interval: np.ndarray,
                  spec, source: str, excluded: int = 0, random_seed: int | None = None
                  ) -> tuple[LogGain, dict]:
    """Each patient's log-gain posterior from their history; a summary for the fit's record.

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient (``patient_id``), in the design's order.
    tl, tl_cens : numpy.ndarray
        The cohort's baseline trough (or limit), µg/mL, and its censoring code.
    cov : mapping of str to numpy.ndarray
        The cohort's PK covariates in the model's units, one value per patient.
    dose, interval : numpy.ndarray
        The intensified regimen of each patient (mg/kg, weeks).
    spec : Exposure
        The exposure (``history``, ``history_time_unit``, the PK model, the baseline regimen).
    source : str
        The cohort's source, for errors.
    excluded : int
        Patients the cohort's reader excluded (their histories may be in the file).
    random_seed : int, optional
        The seed of every patient's importance sample (the exposure's fixed seed, so that the
        design does not depend on the fit's).

    Raises
    ------
    CohortError, PKDataError
        For the rules of the module docstring.
    """
    from pkmodel.pk.estimation import estimate_individual

    model, baseline = spec.model, spec.baseline
    data = read_histories(spec.history, model, time_unit=spec.history_time_unit)
    subjects, unused = _join(patients, data, source, excluded)
    n = len(subjects)
    out = np.empty((5, n))
    n_troughs = np.empty(n, dtype=int)
    implausible: list[str] = []
    regimens = [Regimen(float(d), float(w), infusion_hours=baseline.infusion_hours)
                for d, w in zip(dose, interval, strict=True)]
    for i, subject in enumerate(subjects):  # every record checked before any estimate
        _check_subject(subject, float(tl[i]), int(tl_cens[i]), float(cov["weight_kg"][i]),
                       regimens[i], baseline, data.source, source)
    for i, (subject, regimen) in enumerate(zip(subjects, regimens, strict=True)):
        fallback = {k: float(v[i]) for k, v in cov.items()}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = estimate_individual(model, estimate_covariates(subject, fallback),
                                      subject.schedule, subject.observations,
                                      method="map", draws=HISTORY_DRAWS,
                                      random_seed=random_seed)
        for w in caught:
            if issubclass(w.category, ImplausibleEstimateWarning):
                implausible.append(f"{subject.id}: {w.message}")
            else:
                warnings.warn(f"patient {subject.id!r}: {w.message}", w.category, stacklevel=3)
        g = history_log_gain(est, [regimen], baseline=baseline, random_seed=random_seed)
        out[:, i] = [g.mean[0, 0], g.sd[0, 0], g.ess[0], g.log_after_mean[0, 0],
                     g.log_after_sd[0, 0]]
        n_troughs[i] = len(subject.observations.times_days)
    if implausible:
        warnings.warn(f"{len(implausible)} patient(s) of the history have an implausible PK "
                      f"estimate (the first: {implausible[0]})", ImplausibleEstimateWarning,
                      stacklevel=3)
    summary = {"source": data.source, "time_unit": spec.history_time_unit, "n_patients": n,
               "n_troughs": int(n_troughs.sum()),
               "troughs_per_patient": [int(n_troughs.min()), float(np.median(n_troughs)),
                                       int(n_troughs.max())],
               "implausible_patients": len(implausible),
               "patients_not_in_cohort": len(unused), "notes": list(data.notes)}
    return LogGain(*out), summary
