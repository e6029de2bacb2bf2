"""NONMEM event records: from a dataset's rows to each subject's doses.

What the reader (:func:`pkmodel.pk.read_nonmem`) does with the event columns, with NONMEM's
meaning:

* ``EVID`` 1 a dose, 0 an observation, 2 another event (covariates), 3 a reset (every
  compartment emptied: the doses before it give nothing after it), 4 a reset and a dose.
* ``ADDL``/``II``: ``ADDL`` more doses after the row's, every ``II``, each the same as the row's
  (amount, rate, compartment), expanded into explicit doses.
* ``SS`` 1: a steady-state dose: the compartments are reset, then the system is at the steady
  state of the dose repeated every ``II`` since forever, this row's dose being the last so far;
  ``SS`` 2: the same steady state added to what is there (no reset). The infinite past is the
  structure's closed form (:meth:`~pkmodel.pk.structures.LinearCompartmental.past_doses`).
  ``SS`` 1 with ``II`` 0, ``AMT`` 0 and a ``RATE``: a constant infusion at its steady state,
  running until the subject's last record (written as one steady-state infusion that lasts its
  own interval, which is the same thing).
* ``CMT``: which compartment a dose enters or an observation is of, numbered as NONMEM's
  ADVANs do: with first-order absorption (``dosing = "oral"``) 1 is the depot and 2 the central
  compartment (an IV dose: a bolus, or an infusion with ``RATE``), otherwise 1 is the central
  compartment. Blank or 0 means the default (the depot for doses of an oral model, the central
  compartment for observations).

Anything else (a dose into a peripheral compartment, an observation of the depot, zero-order
input into the depot, additional doses that run past a reset, an ``SS`` infusion longer than its
interval, conflicting duplicate records) is refused naming its row, column and value with the fix.
Rows whose content is left unused (a DV on an ``MDV`` 1 or a dose row, an ``AMT`` on a row
that is not a dose, an ``II`` on a row that is not a dose) and exact duplicate records are
counted in the dataset's notes (:attr:`pkmodel.pk.PKDataset.notes`), which a population fit
lists in its notes, its ``--json`` output and its report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkmodel.pk.schedules import DoseSchedule

__all__ = ["EventRows", "dataset_notes", "read_event_rows", "subject_schedule"]

_DEFAULT_CMT = {"oral": (1, 2), "bolus": (1, 1), "infusion": (1, 1)}  # (doses, observations)


@dataclass(frozen=True)
class EventRows:
    """The event columns of every row, checked.

    Attributes
    ----------
    dose : numpy.ndarray
        Whether the row gives a dose (``EVID`` 1 or 4).
    reset : numpy.ndarray
        Whether the row empties the compartments (``EVID`` 3 or 4, ``SS`` 1).
    cmt : numpy.ndarray
        The compartment (the default where blank or 0).
    ss, addl : numpy.ndarray
        ``SS`` (0, 1, 2) and ``ADDL`` (0 or more) of each row.
    ii : numpy.ndarray
        ``II`` in the ``TIME`` unit (0 where blank).
    rate : numpy.ndarray
        ``RATE`` (NaN where blank).
    route : numpy.ndarray
        For a dose row, how the dose enters (``bolus``, ``infusion``, ``oral``); ``""``
        elsewhere.
    constant : numpy.ndarray
        A constant infusion at steady state (``SS`` 1, ``II`` 0, ``AMT`` 0, ``RATE`` > 0).
    """

    dose: np.ndarray
    reset: np.ndarray
    cmt: np.ndarray
    ss: np.ndarray
    addl: np.ndarray
    ii: np.ndarray
    rate: np.ndarray
    route: np.ndarray
    constant: np.ndarray


def _column(table, name: str, what: str, n: int) -> np.ndarray:
    if name not in table.frame.columns:
        return np.zeros(n)
    return np.nan_to_num(table.numbers(name, what=what))


def read_event_rows(table, evid: np.ndarray, dosing: str) -> EventRows:
    """Read ``CMT``, ``SS``, ``II``, ``ADDL`` and ``RATE`` of every row for a structure that
    doses as ``dosing`` (``bolus``, ``infusion``, ``oral``), refusing what it cannot use."""
    frame = table.frame
    n = frame.shape[0]
    dose = np.isin(evid, (1, 4))
    rate = (table.numbers("RATE", what="an infusion rate") if "RATE" in frame.columns
            else np.full(n, np.nan))
    ss = _column(table, "SS", "0, 1 or 2", n)
    ii = _column(table, "II", "an interval in the TIME unit", n)
    addl = _column(table, "ADDL", "a number of additional doses", n)
    cmt = _column(table, "CMT", "a compartment number", n)
    for name, _values, ok, fix in (
            ("SS", ss, np.isin(ss, (0, 1, 2)), "write 0 (no steady state), 1 (reset, then steady "
             "state) or 2 (steady state added to what is there)"),
            ("II", ii, ii >= 0, "write the dosing interval (>= 0) in the TIME unit"),
            ("ADDL", addl, (addl >= 0) & (addl == np.round(addl)),
             "write how many more doses follow (a whole number >= 0)"),
            ("CMT", cmt, cmt == np.round(cmt), "write the compartment number")):
        if not ok.all():
            i = int(np.argmin(ok))
            raise table.error(f"{name} {frame[name].iloc[i]!r} is not valid", i, name, fix)
    for name, values in (("SS", ss), ("ADDL", addl)):
        bad = ~dose & (values != 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise table.error(f"{name} {frame[name].iloc[i]!r} on a row that is not a dose "
                              f"(EVID {frame['EVID'].iloc[i]})", i, name,
                              f"set {name} on the dose row (EVID 1 or 4), or blank it here")
    bad = dose & (addl > 0) & (ii <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise table.error(f"ADDL {frame['ADDL'].iloc[i]!r} without an interval II", i, "II",
                          "give II, the time between the additional doses (TIME unit)")
    constant = dose & (ss == 1) & (ii == 0)
    bad = dose & (ss > 0) & (ii == 0) & ~((ss == 1) & (rate > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise table.error(f"SS {frame['SS'].iloc[i]!r} without an interval II", i, "II",
                          "give II, the dosing interval of the steady state (SS 1 with II 0 is "
                          "a constant infusion: AMT 0 and RATE > 0)")
    bad = constant & (addl > 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise table.error("ADDL on a constant infusion at steady state (SS 1, II 0)", i, "ADDL",
                          "blank ADDL: the infusion runs until the subject's last record")
    dose_cmt, obs_cmt = _DEFAULT_CMT[dosing]
    cmt = np.where(cmt == 0, np.where(dose, dose_cmt, obs_cmt), cmt)
    explicit_rate = (rate > 0) | (rate == -2)
    route = np.full(n, "", dtype=object)
    if dosing == "oral":
        depot, central = dose & (cmt == 1), dose & (cmt == 2)
        route[depot] = "oral"
        route[central] = np.where(explicit_rate[central], "infusion", "bolus")
        bad = depot & explicit_rate
        if bad.any():
            i = int(np.argmax(bad))
            raise table.error(f"RATE {frame['RATE'].iloc[i]!r} on a dose into the depot (CMT "
                              "1): zero-order input into the depot is not in this model", i,
                              "RATE", "give depot doses without RATE (first-order absorption), "
                              "or CMT 2 for an IV infusion into the central compartment")
        allowed_dose, allowed_obs = (1, 2), (2,)
        cmt_fix = ("doses: 1 (the depot, oral) or 2 (the central compartment, IV); "
                   "observations: 2 (the central compartment)")
    else:
        central = dose & (cmt == 1)
        route[central] = (np.where(explicit_rate[central], "infusion", "bolus")
                          if dosing == "bolus" else "infusion")
        allowed_dose, allowed_obs = (1,), (1,)
        cmt_fix = ("1 (the central compartment) or blank; doses into a depot need "
                   "dosing = \"oral\" in the specification's [model]")
    observed = evid == 0
    for rows, allowed, what in ((dose, allowed_dose, "a dose into"),
                                (observed, allowed_obs, "an observation of")):
        bad = rows & ~np.isin(cmt, allowed)
        if bad.any():
            i = int(np.argmax(bad))
            raise table.error(f"CMT {frame['CMT'].iloc[i]!r}: {what} a compartment this "
                              f"{dosing} model cannot use", i, "CMT", cmt_fix)
    reset = np.isin(evid, (3, 4)) | (dose & (ss == 1))
    return EventRows(dose, reset, cmt, ss.astype(int), addl.astype(int), ii, rate,
                     route, constant)


def subject_schedule(table, rows: np.ndarray, days: np.ndarray, amounts: np.ndarray,
                     durations_days: np.ndarray, events: EventRows, is_obs: np.ndarray,
                     to_days: float, default_route: str) -> DoseSchedule:
    """One subject's doses: ADDL expanded, steady states and resets carried.

    ``rows`` are the subject's rows (file order), ``days`` their times since the subject's
    first dose (days); ``amounts`` (mg) and ``durations_days`` per row of the table.
    """
    is_dose = events.dose[rows]
    reset_rows = rows[events.reset[rows]]
    for r in reset_rows:  # a record at the time of a later reset, written before it
        k = int(np.flatnonzero(rows == r)[0])
        earlier = rows[:k][days[:k] == days[k]]
        hit = earlier[events.dose[earlier] | is_obs[earlier]]
        if hit.size:
            raise table.error(
                f"a record at the TIME of a reset (row {table.where.row(int(r))}) written "
                "before it: NONMEM gives it the state before the reset (a dose is emptied at "
                "once)", int(hit[0]), "TIME",
                "move the row after the reset row if it belongs to the new course, or give it "
                "an earlier TIME")
    reset_days = days[np.isin(rows, reset_rows)]  # in the order of reset_rows
    times, amount, duration, route, interval = [], [], [], [], []
    for k in np.flatnonzero(is_dose):
        i = int(rows[k])
        t = float(days[k])
        if events.constant[i]:  # a constant infusion: one SS infusion lasting its interval
            length = max(float(days.max()) - t, 1.0)
            rate_per_day = events.rate[i] / to_days
            times.append(t), amount.append(rate_per_day * length), duration.append(length)
            route.append(events.route[i]), interval.append(length)
            continue
        ss_interval = events.ii[i] * to_days if events.ss[i] else 0.0
        if ss_interval and events.route[i] == "infusion" and durations_days[i] > ss_interval:
            raise table.error("an SS infusion that lasts longer than its interval II", i, "II",
                              "give II at least the infusion's duration (AMT / RATE), or "
                              "write the doses explicitly")
        extra = t + events.ii[i] * to_days * np.arange(1, events.addl[i] + 1)
        later = reset_days > t
        if extra.size and later.any() and extra[-1] >= reset_days[later].min():
            reset_row = table.where.row(int(reset_rows[later][np.argmin(reset_days[later])]))
            raise table.error(f"ADDL {table.frame['ADDL'].iloc[i]!r}: the additional doses run "
                              f"past the reset (EVID 3 or 4, or SS 1) of row {reset_row}", i,
                              "ADDL", "lower ADDL so that the doses end before the reset")
        for j, when in enumerate((t, *extra)):
            times.append(float(when)), amount.append(float(amounts[i]))
            duration.append(float(durations_days[i])), route.append(events.route[i])
            interval.append(ss_interval if j == 0 else 0.0)
    order = np.argsort(np.asarray(times), kind="stable")
    routes = tuple(route[j] for j in order)
    interval_arr = np.asarray(interval)[order]
    return DoseSchedule(
        np.asarray(times)[order], np.asarray(amount)[order], np.asarray(duration)[order],
        per_kg=False,
        routes=None if set(routes) == {default_route} else routes,
        ss_intervals_days=interval_arr if np.any(interval_arr) else None,
        reset_days=reset_days if reset_days.size else None)


def _rows(table, mask: np.ndarray) -> str:
    where = [f"row {r}" if isinstance(r, int) else str(r)
             for r in (table.where.row(int(i)) for i in np.flatnonzero(mask))]
    return ", ".join(where[:10]) + (f" and {len(where) - 10} more" if len(where) > 10 else "")


def dataset_notes(table, evid: np.ndarray, events: EventRows, is_obs: np.ndarray,
                  amt: np.ndarray, dv: np.ndarray, mdv: np.ndarray) -> tuple[str, ...]:
    """What the reader leaves unused, counted with its rows; conflicting duplicates refused.

    Raises
    ------
    PKDataError
        For two records of one ID, TIME, EVID and CMT that disagree (DV, or AMT).
    """
    frame = table.frame
    notes = []
    given_dv = ~np.isnan(dv) & (dv != 0)
    for mask, what in (
            ((evid == 0) & (np.nan_to_num(mdv) == 1) & given_dv,
             "observation row(s) (EVID 0) with MDV 1 carry a DV, not used as an observation"),
            (np.isin(evid, (1, 2, 3, 4)) & given_dv,
             "row(s) that are not observations (EVID 1-4) carry a DV, not used"),
            (~events.dose & ~np.isnan(amt) & (amt != 0),
             "row(s) that are not doses (EVID 0, 2 or 3) carry an AMT, not given as a dose"),
            (~events.dose & (events.ii > 0),
             "row(s) that are not doses carry an II, not used")):
        if mask.any():
            notes.append(f"{int(mask.sum())} {what} ({_rows(table, mask)})")
    keyed = is_obs | events.dose
    key = pd.DataFrame({"id": frame["ID"].astype(str).str.strip(),
                        "time": pd.to_numeric(frame["TIME"], errors="coerce"),
                        "evid": evid, "cmt": events.cmt})[keyed]
    value = pd.Series(np.where(is_obs, dv, amt), index=frame.index)[keyed]
    repeated = key.duplicated(keep="first")
    if repeated.any():
        first = key.groupby(list(key.columns), sort=False).ngroup()
        lead = value.groupby(first.to_numpy()).transform("first")
        conflict = repeated & (value.to_numpy() != lead.to_numpy())
        if conflict.any():
            i = int(np.flatnonzero(keyed)[int(np.argmax(conflict.to_numpy()))])
            column = "DV" if is_obs[i] else "AMT"
            raise table.error(f"{column} {frame[column].iloc[i]!r} conflicts with an earlier "
                              "record of the same ID, TIME, EVID and CMT", i, column,
                              "keep one record per ID, TIME, EVID and CMT (or correct the "
                              "TIME)")
        exact = np.zeros(frame.shape[0], dtype=bool)
        exact[np.flatnonzero(keyed)[repeated.to_numpy()]] = True
        notes.append(f"{int(exact.sum())} exact duplicate record(s) (same ID, TIME, EVID, CMT "
                     f"and DV or AMT) kept as NONMEM reads them, each a dose or an observation "
                     f"of its own ({_rows(table, exact)})")
    return tuple(notes)
