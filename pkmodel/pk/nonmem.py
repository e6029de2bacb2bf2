"""Reading NONMEM-style PK datasets: ``ID, TIME, AMT, RATE, DV, EVID, MDV`` plus covariates.

One row per event, as NONMEM and Monolix expect:

* ``EVID`` 1: an infusion of ``AMT`` mg at ``TIME``, at ``RATE`` mg per time unit (duration
  ``AMT / RATE``); ``RATE`` -2 takes the duration from a ``DUR`` column; a missing or zero ``RATE``
  means the default infusion duration (2 h).
* ``EVID`` 0: an observation ``DV`` in µg/mL (mg/L) at ``TIME``, unless ``MDV`` is 1.
* ``EVID`` 2: other events (covariate rows): read for covariates only. ``EVID`` 3 a reset,
  ``EVID`` 4 a reset and a dose; ``ADDL``/``II``, ``SS`` and ``CMT`` with NONMEM's meaning
  (:mod:`pkmodel.pk.events`).
* ``drop``: columns not to read, as NONMEM's ``$INPUT NAME=DROP``.
* Nothing is left unused without a word: what a row carries and the reader does not use is
  counted in :attr:`PKDataset.notes`.
* Censoring, either convention: ``CENS`` 1 (``DV`` is the LLOQ and the value is below it), -1
  (``DV`` is an upper limit and the value is above it), 0 observed, with an optional ``LIMIT``
  column for the other end of the interval (Monolix); or ``BLQ`` 1 with ``DV`` (or an ``LLOQ``
  column) holding the limit.
* Covariates: ``WT`` (kg), ``ALB`` (g/dL), ``ATI`` or ``ADA`` (0/1), ``SEX`` (0 male, 1 female,
  or M/F) or ``FEMALE`` (0/1), ``IMM`` (0/1 immunomodulator), read on every row (NONMEM
  convention: the covariate on each record). ``WT``, ``ALB``, ``ATI`` and ``IMM`` may change within
  a patient: the value on a row applies from its ``TIME`` until the next row that gives one (last
  observation carried forward; a blank cell carries the previous value on; before the first value,
  the first value applies; of several rows at one ``TIME``, the last in the file wins). Such a
  patient gets a :class:`~pkmodel.pk.covariates.CovariateHistory`. Sex must not change.
  A population specification declares any other covariate column (``[data.covariates.NAME]``:
  a unit and plausible range, or categorical levels, numbers or labels) and how its blanks are
  filled (``missing``: by default an error naming the subject and time; ``locf`` or ``nocb``);
  :func:`read_nonmem` reads those of the registry it is given.

Every problem raises :class:`pkmodel.errors.PKDataError` naming the file, the row (the header is
row 1) and the column, and saying how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkmodel.errors import PKDataError, SpecificationError
from pkmodel.pk.covariate_registry import COVARIATES, Covariate, CovariateRegistry
from pkmodel.pk.covariates import CovariateHistory
from pkmodel.pk.events import dataset_notes, read_event_rows, subject_schedule
from pkmodel.pk.observations import Observations
from pkmodel.pk.schedules import DoseSchedule
from pkmodel.pk.units import TIME_UNITS
from pkmodel.tables import RowLocator, blank_mask, decimal_comma, read_table

__all__ = ["EXAMPLE_DATASET", "PKDataset", "PKSubject", "example_dataset", "read_nonmem"]

#: The file name of the SIMULATED example dataset shipped in ``pkmodel.data``.
EXAMPLE_DATASET = "example_pk_nonmem.csv"

_REQUIRED = ("ID", "TIME", "AMT", "DV")
_TIME_UNITS = TIME_UNITS  # days per unit (pkmodel.pk.units)


@dataclass(frozen=True)
class PKSubject:
    """One patient of a PK dataset.

    Attributes
    ----------
    id : str
        The ``ID``.
    covariates : dict
        Covariates found (``weight_kg``, ``albumin_g_dl``, ``ati``, ``female``,
        ``immunomodulator``): the baseline values, those in force at the first dose.
    schedule : DoseSchedule
        The doses (mg, days), with ``ADDL`` expanded and, where the dataset has them, each
        dose's route (``CMT``), steady-state intervals (``SS``) and reset times (``EVID`` 3/4,
        ``SS`` 1).
    observations : Observations or None
        The observed concentrations (µg/mL, days), if any.
    covariate_history : CovariateHistory or None
        Every covariate over time (days since the first dose, last value carried forward) when
        at least one changes within the patient; ``None`` when all are constant.
    observation_rows : tuple or None
        The row of each observation in the source (as errors name it: the header is row 1 of a
        file, a DataFrame's rows by index label), in the order of ``observations``; ``None``
        when not known.
    observation_occasions : numpy.ndarray or None
        The occasion of each observation (the value of the dataset's occasion column on its
        row, a blank taking the value of the row above it in the subject), when
        :func:`read_nonmem` was asked for one; ``None`` otherwise.
    """

    id: str
    covariates: dict[str, float]
    schedule: DoseSchedule
    observations: Observations | None
    covariate_history: CovariateHistory | None = None
    observation_rows: tuple[int | str, ...] | None = None
    observation_occasions: np.ndarray | None = None

    @property
    def weight_kg(self) -> float | None:
        """Baseline body weight, kg, if the dataset has ``WT``."""
        return self.covariates.get("weight_kg")

    @property
    def covariates_for_estimation(self) -> dict[str, float] | CovariateHistory:
        """What :func:`~pkmodel.pk.estimate_individual` takes: the history, or the constants."""
        return self.covariates if self.covariate_history is None else self.covariate_history


@dataclass(frozen=True)
class PKDataset:
    """A validated NONMEM-style dataset: subjects by ID, times converted to days.

    ``notes`` says what the reader left unused, with counts and rows (a DV on an ``MDV`` 1 row,
    an ``AMT`` on a row that is not a dose, exact duplicate records...).
    """

    source: str
    subjects: dict[str, PKSubject]
    notes: tuple[str, ...] = ()

    @property
    def ids(self) -> list[str]:
        """Subject IDs in file order."""
        return list(self.subjects)

    def __len__(self) -> int:
        return len(self.subjects)

    def __getitem__(self, subject_id: str | int) -> PKSubject:
        key = str(subject_id)
        if key not in self.subjects:
            raise PKDataError(f"there is no ID {key!r}", source=self.source, column="ID",
                              fix=f"use one of {', '.join(self.ids[:10])}")
        return self.subjects[key]


class _Table:
    """The cells of a PK dataset, as text, with the locator of their rows."""

    def __init__(self, frame: pd.DataFrame, where: RowLocator) -> None:
        self.frame = frame
        self.where = where

    @property
    def label(self) -> str:
        return self.where.source

    def error(self, message: str, position: int | None = None, column: str | None = None,
              fix: str | None = None) -> PKDataError:
        return self.where.error(message, position, column, fix)

    def blank(self, column: str) -> np.ndarray:
        return blank_mask(self.frame[column])

    def numbers(self, column: str, *, required_rows: np.ndarray | None = None,
                what: str = "a number") -> np.ndarray:
        """Column as floats (NaN where blank); raise at the first non-number or missing value."""
        raw = self.frame[column]
        blank = self.blank(column)
        values = pd.to_numeric(raw.where(~blank), errors="coerce").to_numpy(dtype=float,
                                                                            copy=True)
        bad = ~blank & ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            comma = decimal_comma(raw.iloc[i])
            if comma:
                raise self.error(comma[0], i, column, comma[1])
            raise self.error(f"{raw.iloc[i]!r} is not {what}", i, column,
                             "write a plain finite number")
        if required_rows is not None:
            missing = required_rows & blank
            if missing.any():
                i = int(np.argmax(missing))
                raise self.error("a required value is missing", i, column,
                                 f"fill in {what} on this row")
        return values


def _load(source, sep: str) -> _Table:
    """The dataset's cells as strings (blank ``""``), header names in upper case, ``#`` dropped."""
    table = read_table(source, sep=sep, what="PK dataset", error=PKDataError, case="upper",
                       strip_prefix="#")
    frame = table.frame
    return _Table(frame.astype(object).where(frame.notna(), "").astype(str), table.where)


def read_nonmem(
    source: str | os.PathLike | pd.DataFrame,
    *,
    sep: str = ",",
    time_unit: str = "day",
    default_infusion_hours: float | None = 2.0,
    dosing: str = "infusion",
    covariates: CovariateRegistry | None = None,
    occasion: str | None = None,
    drop: Sequence[str] = (),
) -> PKDataset:
    """Read and validate a NONMEM-style infliximab PK dataset.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        A CSV file (``.tsv``: tab-separated), a Parquet file (``.parquet``, ``.pq``) or a
        DataFrame, with columns ``ID, TIME, AMT, DV``, ``EVID`` (without it, NONMEM's default:
        a row with ``AMT`` > 0 is a dose, one with ``MDV`` 1 another record, the others
        observations; a note says so) and optionally
        ``RATE, MDV, DUR, CENS, LIMIT, BLQ, LLOQ`` and covariates ``WT, ALB, ATI/ADA, SEX/FEMALE,
        IMM`` or those of ``covariates`` (header names are case-insensitive; a leading ``#``
        or ``C`` comment column is ignored).
    sep : str, default ","
        Field delimiter.
    time_unit : {"day", "hour", "week"}, default "day"
        Unit of ``TIME`` (and of the denominator of ``RATE``, and of ``DUR``).
    default_infusion_hours : float or None, default 2
        Infusion duration for doses without a ``RATE``; ``None`` refuses such a dose (an error
        naming its row), for analyses that must not assume a duration.
    dosing : {"infusion", "bolus", "oral"}, default "infusion"
        How the model takes doses (a structure's ``dosing``), which says what ``CMT`` means:
        with ``oral``, 1 is the depot and 2 the central compartment; otherwise 1 is the
        central compartment (:mod:`pkmodel.pk.events`).
    covariates : CovariateRegistry, optional
        The covariates to read (each by its columns, checked against its range or levels,
        blanks filled by its ``missing`` rule); default the library's
        (:data:`~pkmodel.pk.covariate_registry.COVARIATES`). A population specification's
        :attr:`~pkmodel.pk.population.PopulationSpec.covariate_registry` adds those it
        declares. Other columns are not read.
    occasion : str, optional
        A column holding each record's occasion (NONMEM's ``OCC``: any numbers), read onto
        each observation (:attr:`PKSubject.observation_occasions`; a blank cell takes the value
        above it in the subject). Required when given.
    drop : sequence of str, default ()
        Columns not to read (any case), as NONMEM's ``$INPUT NAME=DROP``, or a control stream
        that renames a column out of NONMEM's reserved names (``SS`` read as ``SSX``): the file
        is read as if they were absent, and a note names them. Each must be a column of the
        file, and none of ``ID, TIME, AMT, DV``.

    Returns
    -------
    PKDataset
        Subjects by ID with covariates, dosing history (mg, days) and observations (µg/mL).

    Raises
    ------
    PKDataError
        For any invalid content; the message names file, row, column and fix.

    Examples
    --------
    >>> data = read_nonmem("patient.csv")  # doctest: +SKIP
    >>> data["101"].observations.values_ug_ml  # doctest: +SKIP
    """
    unit = str(time_unit).strip().lower()
    if unit not in _TIME_UNITS:
        raise SpecificationError(f"time_unit must be day, hour or week, not {time_unit!r}")
    to_days = _TIME_UNITS[unit]
    table = _load(source, sep)
    dropped = _drop(table, drop)
    frame = table.frame
    if frame.shape[0] == 0:
        raise table.error("the dataset has a header but no rows", fix="add the dose and "
                          "observation rows")
    for name in _REQUIRED:
        if name not in frame.columns:
            raise table.where.header_error(
                "a required column is missing", column=name, fix=f"add a {name} column (NONMEM "
                "conventions: ID, TIME, AMT, DV, EVID, optionally RATE and MDV)")
    n = frame.shape[0]
    inferred = _infer_evid(table) if "EVID" not in frame.columns else None
    frame = table.frame
    if table.blank("ID").any():
        i = int(np.argmax(table.blank("ID")))
        raise table.error("the ID is missing", i, "ID", "give every row its patient's ID")
    ids = frame["ID"].astype(str).str.strip().to_numpy()
    evid = table.numbers("EVID", required_rows=np.ones(n, bool), what="an EVID (0 to 4)")
    bad = ~np.isin(evid, (0, 1, 2, 3, 4))
    if bad.any():
        i = int(np.argmax(bad))
        raise table.error(f"EVID {frame['EVID'].iloc[i]!r} is not a NONMEM event code", i,
                          "EVID", "use 1 for a dose, 0 for an observation, 2 for other rows, "
                          "3 for a reset, 4 for a reset and a dose")
    events = read_event_rows(table, evid, dosing)
    time = table.numbers("TIME", required_rows=np.ones(n, bool), what="a time")
    if (time < 0).any():
        i = int(np.argmax(time < 0))
        raise table.error("TIME is negative", i, "TIME",
                          "use times since the first dose (>= 0)")
    dose = events.dose
    amt = table.numbers("AMT", required_rows=dose & ~events.constant, what="a dose in mg")
    if (dose & ~events.constant & ~(amt > 0)).any():
        i = int(np.argmax(dose & ~events.constant & ~(amt > 0)))
        raise table.error("a dose row (EVID 1 or 4) needs AMT > 0", i, "AMT",
                          "write the infused amount in mg (dose in mg/kg times weight)")
    if (events.constant & (np.nan_to_num(amt) != 0)).any():
        i = int(np.argmax(events.constant & (np.nan_to_num(amt) != 0)))
        raise table.error("a constant infusion at steady state (SS 1, II 0) with an AMT", i,
                          "AMT", "write AMT 0 (the infusion is its RATE), or give II")
    durations = _durations(table, dose & ~events.constant, amt, to_days,
                           default_infusion_hours)
    mdv = table.numbers("MDV", what="0 or 1") if "MDV" in frame.columns else np.zeros(n)
    if (~np.isnan(mdv) & ~np.isin(mdv, (0, 1))).any():
        i = int(np.argmax(~np.isnan(mdv) & ~np.isin(mdv, (0, 1))))
        raise table.error(f"MDV {frame['MDV'].iloc[i]!r} is not 0 or 1", i, "MDV",
                          "write 1 for rows without an observation, 0 otherwise")
    is_obs = (evid == 0) & (np.nan_to_num(mdv) == 0)
    dv = table.numbers("DV", what="a concentration in µg/mL")
    cens, limit = _censoring(table, is_obs, dv)
    if (is_obs & np.isnan(dv)).any():
        raise table.error("a required value is missing", int(np.argmax(is_obs & np.isnan(dv))),
                          "DV", "fill in the concentration in µg/mL (or the LLOQ for a value "
                          "below it), or set MDV to 1")
    if (is_obs & (cens == 0) & (dv < 0)).any():
        i = int(np.argmax(is_obs & (cens == 0) & (dv < 0)))
        raise table.error("DV is negative", i, "DV",
                          "write the measured concentration (µg/mL), or flag a value below the "
                          "LLOQ with CENS = 1 and DV = LLOQ")
    if (is_obs & (cens != 0) & ~(dv > 0)).any():
        i = int(np.argmax(is_obs & (cens != 0) & ~(dv > 0)))
        raise table.error("a censored DV must hold the (positive) assay limit", i, "DV",
                          "write the LLOQ (CENS 1) or ULOQ (CENS -1) in DV")
    notes = dataset_notes(table, evid, events, is_obs, amt, dv, mdv)
    if inferred is not None:
        notes = (inferred, *notes)
    if dropped:
        notes = (f"column(s) {', '.join(dropped)} not read (drop)", *notes)
    registry = COVARIATES if covariates is None else covariates
    cov_values = _covariates(table, registry)
    occasions = None if occasion is None else _occasions(table, occasion.strip().upper(), ids)
    subjects: dict[str, PKSubject] = {}
    for sid in dict.fromkeys(ids):
        rows = np.flatnonzero(ids == sid)
        t = time[rows]
        if np.any(np.diff(t) < 0):
            i = int(rows[int(np.argmax(np.diff(t) < 0)) + 1])
            raise table.error(f"TIME goes back in time for ID {sid!r}", i, "TIME",
                              "sort each patient's rows by TIME, as NONMEM requires")
        d = rows[dose[rows]]
        if d.size == 0:
            raise table.error(f"ID {sid!r} has no dose (EVID 1 or 4) row", int(rows[0]), "EVID",
                              "add the patient's infusions with AMT in mg")
        o = rows[is_obs[rows]]
        first = time[d[0]]
        if o.size and time[o].min() < first:
            i = int(o[np.argmax(time[o] < first)])
            raise table.error(f"ID {sid!r} has an observation before its first dose", i, "TIME",
                              "drop pre-treatment samples or add the earlier doses")
        schedule = subject_schedule(table, rows, (time[rows] - first) * to_days, amt, durations,
                                    events, is_obs, to_days, dosing)
        observations = None
        if o.size:
            lim = limit[o] if limit is not None else None
            try:
                observations = Observations((time[o] - first) * to_days, dv[o], cens[o], lim)
            except SpecificationError as exc:
                raise table.error(str(exc), int(o[0]), "LIMIT",
                                  "LIMIT must be below DV when CENS = 1 and above it when "
                                  "CENS = -1") from None
        baseline, history = _subject_covariates(table, sid, rows, (time[rows] - first) * to_days,
                                                cov_values, registry)
        subjects[sid] = PKSubject(sid, baseline, schedule, observations, history,
                                  tuple(table.where.row(int(i)) for i in o) if o.size else None,
                                  None if occasions is None or not o.size else occasions[o])
    return PKDataset(table.label, subjects, notes)


def _drop(table: _Table, drop: Sequence[str]) -> tuple[str, ...]:
    """Remove the columns ``drop`` names from ``table`` (NONMEM's ``=DROP``); returns their
    names, upper case, in the order given."""
    if isinstance(drop, str):
        drop = (drop,)
    names: list[str] = []
    for raw in drop:
        if not isinstance(raw, str) or not raw.strip():
            raise SpecificationError(f"drop must name columns of the dataset, not {raw!r}")
        name = raw.strip().upper()
        if name in _REQUIRED:
            raise table.where.header_error(
                f"{name} cannot be dropped: the reader needs it", column=name,
                fix=f"remove {raw.strip()!r} from drop")
        if name not in table.frame.columns:
            shown = ", ".join(str(c) for c in table.frame.columns)
            raise table.where.header_error(
                f"drop names a column the dataset does not have: {raw.strip()!r}", column=name,
                fix=f"name one of its columns ({shown}), or remove it from drop")
        names.append(name)
    names = list(dict.fromkeys(names))
    if names:
        table.frame = table.frame.drop(columns=names)
    return tuple(names)


def _infer_evid(table: _Table) -> str:
    """A dataset without ``EVID``: NONMEM's default, written into the table. A row with ``AMT``
    > 0 is a dose (EVID 1), one with ``MDV`` 1 and no ``AMT`` another record (EVID 2), the
    others observations (EVID 0). Returns the note saying so, with the counts."""
    amt = table.numbers("AMT", what="a dose in mg")
    mdv = (table.numbers("MDV", what="0 or 1") if "MDV" in table.frame.columns
           else np.zeros(amt.size))
    evid = np.where(np.nan_to_num(amt) > 0, 1, np.where(np.nan_to_num(mdv) == 1, 2, 0))
    table.frame = table.frame.assign(EVID=evid.astype(str))
    counts = [f"{int(np.sum(evid == k))} {what}" for k, what in (
        (1, "dose(s) (AMT > 0)"), (0, "observation(s)"), (2, "other record(s) (MDV 1)"))
        if np.any(evid == k)]
    return ("no EVID column: each row's event inferred as NONMEM does, " + ", ".join(counts)
            + " (add an EVID column to say otherwise)")


def _occasions(table: _Table, column: str, ids: np.ndarray) -> np.ndarray:
    """The occasion column, a blank cell filled from the row above it in the same subject."""
    if column not in table.frame.columns:
        raise table.where.header_error(
            "the occasion column is missing", column=column,
            fix=f"add the column {column}, numbering each subject's occasions (NONMEM's OCC), name "
                "the dataset's column with occasion = \"...\" in [data], or use occasion = "
                "\"dose\" (each dose starts an occasion)")
    values = pd.Series(table.numbers(column, what="an occasion number"))
    filled = values.groupby(ids).ffill().to_numpy()
    if np.isnan(filled).any():
        i = int(np.argmax(np.isnan(filled)))
        raise table.error(f"ID {ids[i]!r} has no occasion on this row or above it", i, column,
                          "write the occasion number on the subject's first row")
    return filled


def _durations(table: _Table, dose, amt, to_days: float,
               default_hours: float | None) -> np.ndarray:
    frame = table.frame
    n = frame.shape[0]
    durations = np.full(n, np.nan if default_hours is None else default_hours / 24.0)
    no_rate_fix = ("give RATE (mg per time unit), or RATE -2 with a DUR column, on every dose "
                   "row, or state the infusion duration in the model specification")
    if "RATE" not in frame.columns:
        if default_hours is None:
            raise table.error("an infusion without RATE or duration", int(np.argmax(dose)),
                              "RATE", no_rate_fix)
        return durations
    rate = table.numbers("RATE", what="an infusion rate")
    if (dose & (rate == -1)).any():
        i = int(np.argmax(dose & (rate == -1)))
        raise table.error("RATE -1 (modelled rate) is not supported", i, "RATE",
                          "give the rate in mg per time unit, or RATE -2 with a DUR column")
    uses_dur = dose & (rate == -2)
    if uses_dur.any():
        if "DUR" not in frame.columns:
            raise table.error("RATE -2 needs a DUR column", int(np.argmax(uses_dur)), "RATE",
                              "add DUR with the infusion duration in the TIME unit")
        dur = table.numbers("DUR", required_rows=uses_dur, what="an infusion duration")
        bad = uses_dur & ~(dur > 0)
        if bad.any():
            raise table.error("DUR must be positive", int(np.argmax(bad)), "DUR",
                              "write the infusion duration in the TIME unit")
        durations[uses_dur] = dur[uses_dur] * to_days
    bad = dose & (rate < 0) & ~uses_dur
    if bad.any():
        raise table.error("RATE is negative", int(np.argmax(bad)), "RATE",
                          "write the infusion rate in mg per time unit (AMT / duration)")
    given = dose & (rate > 0)
    durations[given] = amt[given] / rate[given] * to_days
    if default_hours is None and (dose & ~given & ~uses_dur).any():
        raise table.error("an infusion without RATE or duration",
                          int(np.argmax(dose & ~given & ~uses_dur)), "RATE", no_rate_fix)
    return durations


def _censoring(table: _Table, is_obs, dv) -> tuple[np.ndarray, np.ndarray | None]:
    frame = table.frame
    n = frame.shape[0]
    cens = np.zeros(n, dtype=int)
    limit = None
    if "CENS" in frame.columns and "BLQ" in frame.columns:
        raise table.error("the dataset has both CENS and BLQ columns", None, "BLQ",
                          "keep one censoring convention: CENS (with optional LIMIT) or BLQ")
    if "CENS" in frame.columns:
        code = table.numbers("CENS", what="a censoring code")
        bad = is_obs & ~np.isnan(code) & ~np.isin(code, (-1, 0, 1))
        if bad.any():
            i = int(np.argmax(bad))
            raise table.error(f"CENS {frame['CENS'].iloc[i]!r} is not a censoring code", i,
                              "CENS", "use 0 (observed), 1 (below the LLOQ in DV) or -1 (above "
                              "the limit in DV)")
        cens = np.where(is_obs, np.nan_to_num(code), 0).astype(int)
        if "LIMIT" in frame.columns:
            limit = table.numbers("LIMIT", what="a censoring limit")
    elif "BLQ" in frame.columns:
        flag = table.numbers("BLQ", what="0 or 1")
        bad = is_obs & ~np.isnan(flag) & ~np.isin(flag, (0, 1))
        if bad.any():
            i = int(np.argmax(bad))
            raise table.error(f"BLQ {frame['BLQ'].iloc[i]!r} is not 0 or 1", i, "BLQ",
                              "write 1 for a value below the LLOQ, 0 otherwise")
        cens = np.where(is_obs, np.nan_to_num(flag), 0).astype(int)
        if "LLOQ" in frame.columns:
            lloq = table.numbers("LLOQ", required_rows=cens == 1, what="the LLOQ in µg/mL")
            dv[cens == 1] = lloq[cens == 1]
    elif "LIMIT" in frame.columns:
        raise table.error("a LIMIT column without CENS", None, "LIMIT",
                          "add CENS (1 below, -1 above, 0 observed) or drop LIMIT")
    return cens, limit


def _covariates(table: _Table, registry: CovariateRegistry) -> dict[str, np.ndarray]:
    """Covariate columns as arrays (NaN where blank), each value checked where it is given:
    a continuous one within its plausible range, a categorical one among its levels (labels
    become their positions in the declared levels)."""
    frame = table.frame
    values: dict[str, np.ndarray] = {}
    for name, cov in registry.items():
        present = [c for c in cov.columns if c in frame.columns]
        if len(present) > 1:
            raise table.error(f"both {present[0]} and {present[1]} columns (both hold {name})",
                              None, present[1], f"keep one of {' and '.join(present)}")
        if not present:
            continue
        column = present[0]
        if column == "SEX":
            text = frame["SEX"].astype(str).str.strip().str.upper()
            mapped = text.map({"M": "0", "F": "1", "MALE": "0", "FEMALE": "1"})
            frame = frame.assign(SEX=mapped.where(mapped.notna(), frame["SEX"]))
            table.frame = frame
        if cov.labelled:
            text = frame[column].astype(str).str.strip()
            blank = table.blank(column)
            codes = {level: float(i) for i, level in enumerate(cov.levels)}
            arr = text.map(codes).to_numpy(dtype=float, na_value=np.nan)
            bad = ~blank & np.isnan(arr)
            if bad.any():
                i = int(np.argmax(bad))
                raise table.error(f"{frame[column].iloc[i]!r} is not a level of {name} "
                                  f"({cov.describe_levels()})", i, column,
                                  f"correct the value, or add it to levels in "
                                  f"[data.covariates.{name}]")
            values[name] = np.where(blank, np.nan, arr)
            continue
        arr = table.numbers(column, what=f"a number ({cov.unit})")
        ok = np.isnan(arr)
        if cov.binary:
            ok |= np.isin(arr, (0, 1))
            fix = ("write 0 for male and 1 for female (or M/F)" if column == "SEX"
                   else "write 1 for yes and 0 for no")
            message = "is not 0 or 1"
        elif cov.levels is not None:
            ok |= True if cov.codes is None else np.isin(arr, cov.codes)
            fix = f"correct the value, or add it to levels in [data.covariates.{name}]"
            message = f"is not a level of {name} ({cov.describe_levels()})"
        else:
            ok |= (arr >= cov.low) & (arr <= cov.high)
            fix = (f"check the value and its unit ({cov.unit}), or widen range in "
                   f"[data.covariates.{name}] if such values are plausible")
            if name == "weight_kg":
                fix = "write weight in kg"
            elif column == "ALB":
                fix = "write serum albumin in g/dL (divide g/L by 10)"
            message = f"is outside the plausible range {cov.low:g}-{cov.high:g} {cov.unit}"
        if not ok.all():
            i = int(np.argmin(ok))
            raise table.error(f"{name} {frame[column].iloc[i]!r} {message}", i, column, fix)
        values[name] = arr
    return values


def _fill(table: _Table, sid: str, rows: np.ndarray, v: np.ndarray, cov: Covariate,
          column: str) -> np.ndarray:
    """One subject's values of one covariate with its blanks filled by the covariate's rule
    (``missing``), or an error naming the subject, the time and the row."""
    known = ~np.isnan(v)
    index = np.arange(v.size)
    last = np.maximum.accumulate(np.where(known, index, -1))  # the last given at or above
    following = np.minimum.accumulate(np.where(known, index, v.size)[::-1])[::-1]
    rule = cov.missing
    if rule == "locf+nocb":  # the library's: LOCF, the first value before it is given
        pick = np.where(last < 0, int(np.argmax(known)), last)
    elif rule == "locf":
        pick = last
    elif rule == "nocb":
        pick = np.where(following == v.size, -1, following)
    else:
        pick = np.where(known, index, -1)
    if np.any(pick < 0):
        k = int(np.argmax(pick < 0))
        options = {"error": "declare missing = \"locf\" or \"nocb\" in "
                            f"[data.covariates.{cov.name}], or fill in the value",
                   "locf": "fill in the value (no earlier value to carry forward), or declare "
                           "missing = \"nocb\"",
                   "nocb": "fill in the value (no later value to carry back), or declare "
                           "missing = \"locf\""}
        time = table.frame["TIME"].iloc[int(rows[k])]
        raise table.error(f"{cov.name} is missing for ID {sid!r} at TIME {time}"
                          + (" (no value above it in this subject)" if rule == "locf" else
                             " (no value below it in this subject)" if rule == "nocb" else ""),
                          int(rows[k]), column, options[rule])
    return v[pick]


def _subject_covariates(
    table: _Table,
    sid: str,
    rows: np.ndarray,
    days: np.ndarray,
    values: dict[str, np.ndarray],
    registry: CovariateRegistry,
) -> tuple[dict[str, float], CovariateHistory | None]:
    """One patient's baseline covariates and, when any changes, the history (LOCF over rows;
    blanks filled by each covariate's rule)."""
    filled: dict[str, np.ndarray] = {}
    frame = table.frame
    for name, arr in values.items():
        cov = registry[name]
        column = next(c for c in cov.columns if c in frame.columns)
        v = arr[rows]
        known = ~np.isnan(v)
        if not known.any():
            if cov.missing == "locf+nocb":  # a library covariate this patient lacks
                continue
            raise table.error(f"{name} is missing on every row of ID {sid!r}", int(rows[0]),
                              column, f"give {column} on the rows of ID {sid!r}")
        first = v[known][0]
        if name == "female" and np.any(v[known] != first):
            i = int(rows[known][int(np.argmax(v[known] != first))])
            raise table.error(f"{column} changes within ID {sid!r}; sex is one value per "
                              "patient", i, column,
                              f"give the same {column} on every row of the patient")
        filled[name] = _fill(table, sid, rows, v, cov, column)
    if not filled:
        return {}, None
    # one record per TIME: the last row at that time, in file order (rows are sorted by TIME)
    times, from_end = np.unique(days[::-1], return_index=True)
    pick = days.size - 1 - from_end
    records = {k: v[pick] for k, v in filled.items()}
    at_first_dose = int(np.searchsorted(times, 0.0, side="right")) - 1
    baseline = {k: float(registry.check(k, v[max(at_first_dose, 0)]))
                for k, v in records.items()}
    if all(np.all(v == v[0]) for v in records.values()):
        return baseline, None
    changed = np.ones(times.size, dtype=bool)
    changed[1:] = np.any([v[1:] != v[:-1] for v in records.values()], axis=0)
    return baseline, CovariateHistory(times[changed], {k: v[changed] for k, v in records.items()},
                                      registry=registry)


def example_dataset() -> PKDataset:
    """The SIMULATED example NONMEM-style dataset shipped with pkmodel: three invented patients.

    Made by ``data/make_example_pk.py`` from the Fasanmade 2009 model with known random effects:
    ``101`` (72 kg, fast clearance, low troughs), ``102`` (an adolescent whose weight and albumin
    rise during therapy; the first trough below the LLOQ) and ``103`` (80 kg, typical clearance).
    Doses in mg, times in days, concentrations in µg/mL. Not patient data.

    Examples
    --------
    >>> from pkmodel.pk import example_dataset
    >>> example_dataset().ids
    ['101', '102', '103']
    """
    from importlib import resources

    path = resources.files("pkmodel.data") / EXAMPLE_DATASET
    with resources.as_file(path) as file:
        return read_nonmem(file)
