"""A multi-patient dataset as the flat arrays the population model works on.

The dataset is read by :func:`pkmodel.pk.read_nonmem` (the one NONMEM reader); here each subject's
doses and observations are laid end to end (``obs_*``, ``dose_*``), with the baseline covariates
of each subject and the design of each covariate term, and the dose-observation pairs that
superposition sums over (every dose of the subject that started before the observation).

An observation with no dose started before it (a pre-dose sample, such as one at the time of the
first dose written before the dose row) is predicted 0, as NONMEM predicts it: it is kept when the
residual error has an additive part (it then informs the additive SD, as in NONMEM's likelihood)
and refused, naming its row, when the error is purely proportional (its SD would be 0).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkmodel.errors import PKDataError, PkmodelWarning, SpecificationError
from pkmodel.pk.nonmem import PKDataset, read_nonmem
from pkmodel.pk.population.spec import PopulationSpec
from pkmodel.pk.units import amount_to_internal, concentration_to_internal

__all__ = ["OBS_COVARIATE_PREFIX", "PopulationData", "read_population_data"]

#: The prefix of the observation table's columns that hold a time-varying covariate.
OBS_COVARIATE_PREFIX = "at_obs_"


@dataclass(frozen=True)
class PopulationData:
    """Observations, doses and covariates of every subject, as flat arrays.

    Attributes
    ----------
    source : str
        Where the data came from (a file name, or ``<DataFrame>``).
    subject_ids : tuple of str
        The ``ID`` of each subject, in file order; ``*_subject`` arrays index it.
    covariates : dict of str to numpy.ndarray
        The covariates the specification uses, one value per subject (at the first dose).
    obs_subject, obs_time_days, obs_value_ug_ml, obs_cens : numpy.ndarray
        Each observation's subject, time (days since the subject's first dose), value or limit
        (µg/mL), and censoring code (0 observed, 1 below the LLOQ in ``obs_value_ug_ml``, -1
        above the limit in it).
    dose_subject, dose_time_days, dose_amount_mg, dose_duration_days : numpy.ndarray
        Each dose's subject, start (days since the subject's first dose), amount (mg) and
        infusion duration (days; unused for bolus and oral doses).
    notes : tuple of str
        What was changed or left out while preparing the data, with counts.
    dose_route : numpy.ndarray, optional
        How each dose enters (``bolus``, ``infusion``, ``oral``; NONMEM ``CMT`` and ``RATE``);
        ``None``: every dose as the structure's ``dosing``.
    dose_ss_interval_days : numpy.ndarray, optional
        Each dose's steady-state interval (NONMEM ``SS``; 0 for an ordinary dose); ``None``:
        no steady-state dose.
    dose_course, obs_course : numpy.ndarray, optional
        How many resets (``EVID`` 3 or 4, ``SS`` 1) of its subject came before each dose and
        observation: a dose contributes to the observations of its own course only. ``None``:
        no reset.
    obs_covariates : dict of str to numpy.ndarray, optional
        The covariates in force at each observation (last value carried forward from the
        records of its subject), where one changes within a subject; those absent here are
        each subject's value of :attr:`covariates` (:meth:`at_observations`).
    obs_occasion : numpy.ndarray, optional
        The occasion of each observation, numbered 0, 1, ... within its subject in time order
        (only occasions with observations are numbered: an occasion without any informs
        nothing); ``None`` when the specification has no inter-occasion variability.
    """

    source: str
    subject_ids: tuple[str, ...]
    covariates: dict[str, np.ndarray]
    obs_subject: np.ndarray
    obs_time_days: np.ndarray
    obs_value_ug_ml: np.ndarray
    obs_cens: np.ndarray
    dose_subject: np.ndarray
    dose_time_days: np.ndarray
    dose_amount_mg: np.ndarray
    dose_duration_days: np.ndarray
    notes: tuple[str, ...] = field(default_factory=tuple)
    dose_route: np.ndarray | None = None
    dose_ss_interval_days: np.ndarray | None = None
    dose_course: np.ndarray | None = None
    obs_course: np.ndarray | None = None
    obs_covariates: dict[str, np.ndarray] = field(default_factory=dict)
    obs_occasion: np.ndarray | None = None

    @property
    def n_occasions(self) -> int:
        """The most occasions with observations of any subject (0 without IOV)."""
        return 0 if self.obs_occasion is None or not self.obs_occasion.size else int(
            self.obs_occasion.max() + 1)

    def at_observations(self, name: str) -> np.ndarray:
        """Covariate ``name`` in force at each observation (LOCF within its subject)."""
        if name in self.obs_covariates:
            return self.obs_covariates[name]
        return self.covariates[name][self.obs_subject]

    @property
    def n_subjects(self) -> int:
        """Number of subjects."""
        return len(self.subject_ids)

    @property
    def n_observations(self) -> int:
        """Number of observations, censored ones included."""
        return int(self.obs_time_days.size)

    def pairs(self, *, inclusive: bool) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(observation, dose)`` of every dose of the same subject and course started
        before the observation (at or before it when ``inclusive``, or for a dose whose route
        is ``bolus``: a bolus at the sampling time)."""
        same = self.obs_subject[:, None] == self.dose_subject[None, :]
        if self.dose_course is not None:
            same &= self.obs_course[:, None] == self.dose_course[None, :]
        elapsed = self.obs_time_days[:, None] - self.dose_time_days[None, :]
        at_once = (np.full(self.dose_time_days.shape, inclusive) if self.dose_route is None
                   else self.dose_route == "bolus")
        obs, dose = np.nonzero(same & ((elapsed > 0) | ((elapsed == 0) & at_once[None, :])))
        return obs, dose

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """The arrays as three tables: ``subjects``, ``observations``, ``doses``."""
        subjects = pd.DataFrame({"ID": list(self.subject_ids), **self.covariates})
        ids = np.asarray(self.subject_ids, dtype=object)
        observations = pd.DataFrame({"ID": ids[self.obs_subject], "time_days": self.obs_time_days,
                                     "value_ug_ml": self.obs_value_ug_ml, "cens": self.obs_cens}
                                    | {f"{OBS_COVARIATE_PREFIX}{k}": v
                                       for k, v in self.obs_covariates.items()})
        doses = pd.DataFrame({"ID": ids[self.dose_subject], "time_days": self.dose_time_days,
                              "amount_mg": self.dose_amount_mg,
                              "duration_days": self.dose_duration_days})
        for name in ("dose_route", "dose_ss_interval_days", "dose_course"):
            if getattr(self, name) is not None:
                doses[name.removeprefix("dose_")] = getattr(self, name)
        if self.obs_course is not None:
            observations["course"] = self.obs_course
        if self.obs_occasion is not None:
            observations["occasion"] = self.obs_occasion
        return {"subjects": subjects, "observations": observations, "doses": doses}


def read_population_data(source: str | os.PathLike | pd.DataFrame | PKDataset,
                         spec: PopulationSpec, *, sep: str = ",") -> PopulationData:
    """Read a multi-patient NONMEM-style dataset for ``spec``.

    Parameters
    ----------
    source : path, DataFrame or PKDataset
        The dataset (read with :func:`pkmodel.pk.read_nonmem` in the specification's time unit),
        or one already read.
    spec : PopulationSpec
        The model (its time unit, infusion duration, LLOQ and BLQ method, covariates).
    sep : str, default ","
        The CSV delimiter.

    Raises
    ------
    PKDataError
        A dataset the specification cannot use, naming the ID, column and fix: an infusion
        without ``RATE`` or duration (row), a covariate the specification uses that a subject
        lacks, a categorical level not in the specification, a covariate that does not vary so
        that its effect cannot be estimated, a pre-dose observation (no dose started before it)
        under a purely proportional error, a censoring interval (``LIMIT``), fewer than two
        subjects with observations.
    """
    if isinstance(source, PKDataset):
        dataset = source
    else:
        hours = None if spec.structure.infusions else 2.0  # durations unused without them
        if spec.infusion_hours is not None:
            hours = spec.infusion_hours
        dataset = read_nonmem(source, sep=sep, time_unit=spec.time_unit,
                              default_infusion_hours=hours, dosing=spec.structure.dosing,
                              covariates=spec.covariate_registry,
                              occasion=(spec.occasion if spec.iov_parameters
                                        and not spec.occasions_from_doses else None),
                              drop=spec.drop)
    notes: list[str] = list(dataset.notes)
    subjects = [s for s in dataset.subjects.values() if s.observations is not None]
    if len(subjects) < len(dataset):
        empty = [s.id for s in dataset.subjects.values() if s.observations is None]
        shown = ", ".join(empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10
                                         else "")
        notes.append(f"{len(empty)} subject(s) without observations left out, with their rows "
                     f"(ID {shown})")
    if len(subjects) < 2:
        raise PKDataError(f"{len(subjects)} subject(s) with observations: a population model "
                          "needs several", source=dataset.source, column="ID",
                          fix="fit one patient with estimate_individual (pkmodel pk forecast)")
    used = list(dict.fromkeys(t.covariate for t in spec.covariates))
    registry = spec.covariate_registry
    covariates: dict[str, np.ndarray] = {}
    obs_covariates: dict[str, np.ndarray] = {}
    for name in used:
        column = "/".join(registry[name].columns)
        values, at_obs, varying = [], [], []
        for s in subjects:
            if name not in s.covariates:
                raise PKDataError(f"ID {s.id!r} has no {name} ({registry[name].unit}), which "
                                  "the specification's covariate effects use",
                                  source=dataset.source, column=column,
                                  fix=f"give {column} on the rows of every subject, or drop the "
                                      "effect from the specification")
            values.append(float(s.covariates[name]))
            times = s.observations.times_days
            if s.covariate_history is not None and name in s.covariate_history.varying():
                varying.append(str(s.id))
                at_obs.append(s.covariate_history.at(times)[name])
            else:
                at_obs.append(np.full(len(times), values[-1]))
        covariates[name] = np.asarray(values)
        if varying:  # one note for all the subjects, not one per subject
            obs_covariates[name] = np.concatenate(at_obs)
            shown = ", ".join(varying[:10]) + (f" and {len(varying) - 10} more"
                                               if len(varying) > 10 else "")
            notes.append(f"{name} changes within {len(varying)} subject(s) (ID {shown}): each "
                         "observation is predicted with the value in force at its time (last "
                         "value carried forward) for the whole of its subject's dosing history, "
                         "an approximation where it changed after an earlier dose (see "
                         "'Time-varying covariates' in docs/population_pk.md)")
    ids = [s.id for s in subjects]
    obs_ids = [s.id for s in subjects for _ in range(len(s.observations))]
    _check_terms(spec, {k: (np.concatenate([v, obs_covariates[k]]), ids + obs_ids)
                        if k in obs_covariates else (v, ids) for k, v in covariates.items()},
                 dataset.source)
    obs_parts, dose_parts, obs_rows, occasion_parts = [], [], [], []
    for i, s in enumerate(subjects):
        if spec.iov_parameters:
            occasion_parts.append(_occasions(spec, s, dataset.source))
        o, d = s.observations, s.schedule
        if o.limit_ug_ml is not None and np.any(np.isfinite(o.limit_ug_ml[o.cens != 0])):
            raise PKDataError(f"ID {s.id!r} has a censoring interval (LIMIT)",
                              source=dataset.source, column="LIMIT",
                              fix="the population fit takes values below the LLOQ (M3) or above "
                                  "a limit, not intervals: drop LIMIT")
        obs_parts.append((np.full(len(o), i), o.times_days, o.values_ug_ml, o.cens,
                          d.courses(o.times_days)))
        obs_rows.extend(s.observation_rows or (None,) * len(o))
        dose_parts.append((np.full(len(d), i), d.times_days, d.amounts, d.durations_days,
                           np.asarray(d.routes or (spec.structure.dosing,) * len(d)),
                           np.zeros(len(d)) if d.ss_intervals_days is None
                           else d.ss_intervals_days, d.courses(d.times_days)))
    obs_subject, obs_time, obs_value, obs_cens, obs_course = (
        np.concatenate(p) for p in zip(*obs_parts, strict=True))
    dose_subject, dose_time, dose_amount, dose_duration, dose_route, dose_ss, dose_course = (
        np.concatenate(p) for p in zip(*dose_parts, strict=True))
    events = {"dose_route": dose_route if np.any(dose_route != spec.structure.dosing) else None,
              "dose_ss_interval_days": dose_ss if np.any(dose_ss > 0) else None,
              "dose_course": dose_course if np.any(dose_course > 0) else None}
    obs_cens = obs_cens.astype(int)
    # the dataset's units (spec's [data]) into the model's: µg/mL and mg
    obs_value = concentration_to_internal(obs_value.astype(float), spec.concentration_unit)
    dose_amount = amount_to_internal(dose_amount.astype(float), spec.amount_unit)
    if spec.lloq_ug_ml is not None:
        below = (obs_cens == 0) & (obs_value < spec.lloq_ug_ml)
        if below.any():
            notes.append(f"{int(below.sum())} observation(s) below the LLOQ of "
                         f"{spec.lloq_ug_ml:g} µg/mL censored at it")
        obs_cens[below] = 1
        obs_value[below] = spec.lloq_ug_ml
    keep = np.ones(obs_cens.size, dtype=bool)
    if spec.blq == "drop" and (obs_cens == 1).any():
        keep = obs_cens != 1
        notes.append(f"{int((~keep).sum())} observation(s) below the LLOQ dropped (blq = "
                     "'drop'; the M3 likelihood keeps them)")
    obs_subject, obs_time, obs_value, obs_cens, obs_course = (
        a[keep] for a in (obs_subject, obs_time, obs_value, obs_cens, obs_course))
    obs_covariates = {k: v[keep] for k, v in obs_covariates.items()}
    obs_occasion = None
    if occasion_parts:  # numbered again: an occasion whose values were all dropped is none
        obs_occasion = _renumbered(obs_subject, np.concatenate(occasion_parts)[keep])
    obs_rows = [r for r, k in zip(obs_rows, keep, strict=True) if k]
    ids = tuple(s.id for s in subjects)
    data = PopulationData(dataset.source, ids, covariates, obs_subject.astype(int),
                          obs_time.astype(float), obs_value, obs_cens, dose_subject.astype(int),
                          dose_time.astype(float), dose_amount.astype(float),
                          dose_duration.astype(float), tuple(notes), **events,
                          obs_course=obs_course if events["dose_course"] is not None else None,
                          obs_covariates=obs_covariates, obs_occasion=obs_occasion)
    obs, _ = data.pairs(inclusive=spec.structure.instantaneous)
    predose = np.ones(data.n_observations, dtype=bool)
    predose[obs] = False
    if predose.any():
        if spec.residual.error == "proportional":
            k = int(np.argmax(predose))
            per_day = {"day": 1.0, "hour": 24.0, "week": 1 / 7}[spec.time_unit]
            raise PKDataError(
                f"ID {ids[obs_subject[k]]!r} has an observation at TIME "
                f"{obs_time[k] * per_day:g} ({spec.time_unit}s after its first dose) with no dose "
                "started before it: a pre-dose sample, predicted 0, whose SD under a purely "
                "proportional error is 0", source=dataset.source, row=obs_rows[k],
                column="TIME", fix="use error = \"combined\" in [residual] (pre-dose samples "
                "then get the additive SD, as in NONMEM), or drop the pre-dose samples (MDV 1), "
                "or correct TIME")
        data = dataclasses.replace(data, notes=(*data.notes, (
            f"{int(predose.sum())} pre-dose observation(s) (no dose started before them) "
            "predicted 0, as NONMEM predicts them; they inform the additive residual error")))
    if data.n_observations == 0:
        raise PKDataError("no observations are left", source=dataset.source, column="DV",
                          fix="add observations, or use blq = 'm3' to keep those below the LLOQ")
    for note in notes:
        if "changes within" in note:
            warnings.warn(note, PkmodelWarning, stacklevel=2)
    return data


def _occasions(spec: PopulationSpec, subject, source: str) -> np.ndarray:
    """The occasion of each of a subject's observations: the dataset's occasion column, or
    with ``occasion = "dose"`` the dosing interval it falls in (the doses started before it;
    an observation before any dose belongs to the first)."""
    times = subject.observations.times_days
    if not spec.occasions_from_doses:
        if subject.observation_occasions is None:  # a PKDataset read without the column
            raise PKDataError(f"the dataset was read without its occasion column "
                              f"{spec.occasion!r}, which the inter-occasion variability of "
                              f"{', '.join(spec.iov_parameters)} needs", source=source,
                              column=spec.occasion,
                              fix="pass the file (or DataFrame) itself, or read it with "
                                  f"read_nonmem(..., occasion={spec.occasion!r})")
        return np.asarray(subject.observation_occasions, dtype=float)
    side = "right" if spec.structure.instantaneous else "left"
    started = np.searchsorted(np.sort(subject.schedule.times_days), times, side=side)
    return np.maximum(started - 1, 0).astype(float)


def _renumbered(obs_subject: np.ndarray, occasion: np.ndarray) -> np.ndarray:
    """Each subject's occasion values as 0, 1, ... in increasing order of value."""
    out = np.zeros(occasion.size, dtype=int)
    for i in np.unique(obs_subject):
        rows = obs_subject == i
        out[rows] = np.unique(occasion[rows], return_inverse=True)[1]
    return out


def _check_terms(spec: PopulationSpec, covariates: dict[str, tuple[np.ndarray, list[str]]],
                 source: str) -> None:
    """Refuse effects the data cannot inform: a constant covariate, an unknown level (each
    covariate's values with the ID each belongs to)."""
    for term in spec.covariates:
        x, ids = covariates[term.covariate]
        column = "/".join(spec.covariate_registry[term.covariate].columns)
        where = f"the {term.form} effect of {term.covariate} on {term.parameter}"
        if term.form == "categorical":
            allowed = {term.reference, *term.levels}
            bad = [v for v in x if v not in allowed]
            if bad:
                k = int(np.argmax([v not in allowed for v in x]))
                raise PKDataError(f"ID {ids[k]!r} has {term.covariate} {x[k]:g}, a level "
                                  f"{where} does not have", source=source, column=column,
                                  fix=f"use the levels {sorted(allowed)} or add this one to "
                                      "levels")
            for level in term.levels:
                if not np.any(x == level):
                    raise PKDataError(f"no subject has {term.covariate} {level:g}, so {where} "
                                      "cannot be estimated", source=source, column=column,
                                      fix="drop the level or the effect from the specification")
        if term.estimated and term.form != "categorical":
            design = term.design(x)
            if not np.all(np.isfinite(design)):
                k = int(np.argmin(np.all(np.isfinite(design), axis=-1)))
                raise PKDataError(f"ID {ids[k]!r} has {term.covariate} {x[k]:g}, where {where} "
                                  "is not defined", source=source, column=column,
                                  fix="a power effect needs positive values")
            if term.form == "piecewise" and np.any(np.ptp(design, axis=0) == 0):
                side = "below" if np.ptp(design[:, 0]) == 0 else "above"
                raise SpecificationError(
                    f"{where} cannot be estimated: no {column} value is {side} its breakpoint "
                    f"{term.reference:g}; move the breakpoint (reference) inside the data's "
                    f"range ({np.min(x):g}-{np.max(x):g}), or use a one-slope form")
            if np.ptp(design) == 0:
                raise SpecificationError(
                    f"{where} cannot be estimated: it is the same for every subject "
                    f"({column} {x[0]:g}" + (", all on one side of the threshold)"
                                             if term.form == "indicator" else ")")
                    + "; drop it, or fix its exponent (power effects)")
