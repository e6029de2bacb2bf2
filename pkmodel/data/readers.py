"""Reading cohort tables (CSV, Parquet, DataFrame; tidy or wide) into a validated Cohort."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pkmodel.data.cohort import Cohort
from pkmodel.data.plausibility import CHECKED_COLUMNS, implausible_value
from pkmodel.data.schema import BASELINE_COLUMNS, COLUMNS, REQUIRED_COLUMNS
from pkmodel.errors import CohortError
from pkmodel.tables import (
    RowLocator,
    blank_mask,
    decimal_comma,
    numeric_if_numbers,
    read_table,
)

__all__ = ["read_cohort", "read_patients"]

_WIDE_REMISSION = re.compile(r"^remission_(\d+)m$")
_CENSORED = re.compile(r"^\s*(>=|<=|>|<|≥|≤)\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*$")
_TRUE = {"1", "1.0", "yes", "y", "true", "t"}
_FALSE = {"0", "0.0", "no", "n", "false", "f"}


def read_cohort(
    source: str | os.PathLike | pd.DataFrame,
    *,
    sep: str = ",",
    exclude_ati_positive: bool = True,
    min_tl_ug_ml: float | None = 3.0,
    name: str | None = None,
) -> Cohort:
    """Read and validate an exposure-response cohort.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        A CSV file (``.csv``, ``.txt``, ``.tsv``), a Parquet file (``.parquet``, ``.pq``) or a
        DataFrame. Either the tidy format (one row per patient per assessment, with a ``month``
        column) or the wide format (one row per patient, one ``remission_<N>m`` column per
        assessment month N). See ``data/README.md`` for every column. Columns outside the
        schema are kept: as numbers when every non-blank value is a finite number (so that a
        numeric covariate is fitted as one), as text otherwise.
    sep : str, default ","
        Field delimiter of a CSV file (``.tsv`` files default to a tab).
    exclude_ati_positive : bool, default True
        Drop patients with antibodies to infliximab (``ati == 1``), as the source study did.
    min_tl_ug_ml : float or None, default 3.0
        Drop patients whose baseline trough is below this value (µg/mL), as the source study did
        (TL < 3 µg/mL). A TL censored below a limit is dropped only when the limit itself is
        ``<= min_tl_ug_ml``. ``None`` keeps everyone.
    name : str, optional
        A name for the cohort in reports; defaults to the file name.

    Returns
    -------
    Cohort
        The validated tidy cohort. ``cohort.dropped`` counts the rows and patients removed and why.

    Raises
    ------
    CohortError
        When the table cannot be read or breaks the schema, or holds a value outside its
        plausible range (:mod:`pkmodel.data.plausibility`: a trough in ng/mL, a weight in pounds,
        an albumin in g/dL); the message names the file, the row (counting the header as row 1)
        and the column, and says how to fix it.

    Warns
    -----
    CohortWarning
        For a strategy label given to few patients that is very like another one (a typo such
        as ``dose_escalaton`` beside ``dose_escalation`` would be fitted as its own strategy).

    Examples
    --------
    >>> import pkmodel
    >>> cohort = pkmodel.read_cohort("my_cohort.csv")  # doctest: +SKIP
    >>> print(cohort.describe())  # doctest: +SKIP
    """
    table = read_table(source, sep=sep, what="cohort")
    frame, where, label = table.frame, table.where, table.source
    if name is None:
        name = Path(label).name if table.is_file else "DataFrame"
    if frame.shape[0] == 0:
        raise CohortError(
            "the table has a header but no data rows", source=label,
            fix="add one row per patient per assessment",
        )
    wide_cols = [c for c in frame.columns if _WIDE_REMISSION.match(c)]
    if wide_cols:
        frame = _wide_to_long(frame, wide_cols, where)
    _check_required(frame, where, REQUIRED_COLUMNS)
    tidy, n_missing = _parse(frame, where)
    _check_duplicates(tidy, where)
    _check_baseline_consistency(tidy, where)
    exclusions = {"exclude_ati_positive": bool(exclude_ati_positive),
                  "min_tl_ug_ml": None if min_tl_ug_ml is None else float(min_tl_ug_ml),
                  "n_patients_read": int(frame["patient_id"].nunique()),
                  "n_rows_read": len(frame)}
    tidy, dropped = _apply_exclusions(tidy, exclude_ati_positive, min_tl_ug_ml)
    dropped = {"missing_remission_rows": n_missing, **dropped}
    if tidy.shape[0] == 0:
        raise CohortError(
            "no rows are left after the exclusions "
            f"({', '.join(f'{k}: {v}' for k, v in dropped.items())})",
            source=label,
            fix="check the ati and baseline_tl columns, or relax the exclusions "
                "(--keep-ati-positive, --min-tl 0; exclude_ati_positive=False, "
                "min_tl_ug_ml=None in Python)",
        )
    _warn_near_misses(tidy, where, "strategy")
    return Cohort._from_validated(tidy, source=label, name=name, dropped=dropped,
                                  exclusions=exclusions)


def read_patients(
    source: str | os.PathLike | pd.DataFrame | Cohort, *, sep: str = ","
) -> pd.DataFrame:
    """Read new patients for prediction: the cohort format without outcomes.

    ``baseline_tl`` and ``strategy`` are required; ``month``, ``remission``, ``center`` and
    ``ati`` are optional; no exclusions are applied. Values are validated exactly as by
    :func:`read_cohort` (same error messages).

    Returns
    -------
    pandas.DataFrame
        The parsed table (with ``tl_cens``), in the input's row order.
    """
    if isinstance(source, Cohort):
        return source.data.copy()
    table = read_table(source, sep=sep, what="cohort")
    frame, where = table.frame, table.where
    if frame.shape[0] == 0:
        raise CohortError("the table has a header but no data rows", source=where.source,
                          fix="add one row per patient")
    _check_required(frame, where, ("baseline_tl", "strategy"))
    if "patient_id" not in frame.columns:
        frame["patient_id"] = [str(i + 1) for i in range(len(frame))]
    tidy, _ = _parse(frame, where)
    if "month" in tidy.columns:
        _check_duplicates(tidy, where)
    return tidy.drop(columns="_position")


def _wide_to_long(frame: pd.DataFrame, wide_cols: list[str], where: RowLocator) -> pd.DataFrame:
    if "month" in frame.columns or "remission" in frame.columns:
        raise where.header_error(
            "the table has both remission_<N>m columns (wide format) and a month/remission "
            "column (tidy format)",
            fix="use one format: either one remission_<N>m column per month, or month + remission",
        )
    frame = frame.copy()
    frame["_position"] = np.arange(frame.shape[0])
    ids = [c for c in frame.columns if c not in wide_cols]
    long = frame.melt(id_vars=ids, value_vars=wide_cols, var_name="month", value_name="remission")
    long["month"] = [int(_WIDE_REMISSION.match(m).group(1)) for m in long["month"]]
    return long.sort_values(["_position", "month"], kind="stable").reset_index(drop=True)


def _check_required(frame: pd.DataFrame, where: RowLocator, required: tuple[str, ...]) -> None:
    for name in required:
        if name not in frame.columns:
            hint = COLUMNS[name].description
            fix = f"add a '{name}' column ({hint})"
            if name == "ati":
                fix += "; if every patient was tested negative, fill it with 0"
            if name in {"month", "remission"}:
                fix = ("add 'month' and 'remission' columns (tidy format), or one "
                       "'remission_<N>m' column per assessment month N (wide format)")
            raise where.header_error("a required column is missing", column=name, fix=fix)


def _positions(frame: pd.DataFrame) -> np.ndarray:
    return frame["_position"].to_numpy() if "_position" in frame.columns else np.arange(len(frame))


def _parse(frame: pd.DataFrame, where: RowLocator) -> tuple[pd.DataFrame, int]:
    """Parse and check every known column; return the tidy frame and the missing-remission count."""
    pos = _positions(frame)
    out = pd.DataFrame(index=frame.index)
    # remission: missing values are dropped and counted, never guessed
    rem_missing = (blank_mask(frame["remission"]) if "remission" in frame.columns
                   else np.zeros(len(frame), dtype=bool))
    for name, col in COLUMNS.items():
        if name == "tl_cens" or name not in frame.columns:
            continue
        values = frame[name]
        blank = blank_mask(values)
        if name == "remission":
            blank = np.zeros(len(values), dtype=bool)
            values = values.where(~rem_missing, "0")
        if col.required and blank.any() and name != "remission":
            i = int(np.argmax(blank))
            raise where.error("a required value is missing", pos[i], name,
                              f"fill in {col.description}")
        if name == "baseline_tl":
            out["baseline_tl"], out["tl_cens"] = _parse_tl(frame, where, pos)
            continue
        out[name] = _parse_column(col, values, blank, where, pos)
    extra = [c for c in frame.columns if c not in COLUMNS and c != "_position"]
    for name in extra:  # outside the schema: numbers if every value is one, text otherwise
        out[name] = numeric_if_numbers(frame[name])
    out["_position"] = pos
    n_missing = int(rem_missing.sum())
    out = out.loc[~rem_missing].reset_index(drop=True)
    return out, n_missing


def _parse_column(col, values: pd.Series, blank: np.ndarray, where: RowLocator, pos) -> pd.Series:
    text = values.astype("string").str.strip()
    if col.kind == "id":
        return text.astype(str)
    if col.kind == "category":
        labels = text.where(~blank)
        if col.name == "strategy":
            labels = labels.str.lower().str.replace(r"[\s\-]+", "_", regex=True)
        if col.allowed:
            upper = labels.str.upper()
            bad = ~blank & ~upper.isin(col.allowed).to_numpy(dtype=bool)
            if bad.any():
                i = int(np.argmax(bad))
                raise where.error(
                    f"{values.iloc[i]!r} is not an allowed value", pos[i], col.name,
                    f"use one of {', '.join(col.allowed)} (or leave it empty if unknown)",
                )
            labels = upper
        return labels.astype(object).where(~blank, None)
    if col.kind == "binary":
        low = text.str.lower()
        result = pd.Series(np.nan, index=values.index)
        result[low.isin(_TRUE).to_numpy(dtype=bool)] = 1.0
        result[low.isin(_FALSE).to_numpy(dtype=bool)] = 0.0
        bad = ~blank & result.isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise where.error(f"{values.iloc[i]!r} is not 0 or 1", pos[i], col.name,
                              "write 1 for yes and 0 for no")
        return result if not col.required else result.astype(int)
    numbers = pd.to_numeric(text.where(~blank), errors="coerce")
    bad = ~blank & numbers.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        comma = decimal_comma(values.iloc[i])
        if comma:
            raise where.error(comma[0], pos[i], col.name, comma[1])
        raise where.error(f"{values.iloc[i]!r} is not a number", pos[i], col.name,
                          f"write a plain number{' in ' + col.unit if col.unit else ''}")
    arr = numbers.to_numpy(dtype=float)
    finite = np.isfinite(arr) | blank
    if not finite.all():
        i = int(np.argmin(finite))
        raise where.error(f"{values.iloc[i]!r} is not a finite number", pos[i], col.name,
                          "write a finite number")
    if col.kind == "int":
        bad = ~blank & ((arr <= 0) | (arr != np.round(arr)))
        if bad.any():
            i = int(np.argmax(bad))
            raise where.error(f"{values.iloc[i]!r} is not a positive whole number", pos[i],
                              col.name, f"write the {col.description}")
        return pd.Series(arr, index=values.index).astype(int)
    limit_ok = (arr > 0) if col.kind == "positive" else (arr >= 0)
    bad = ~blank & ~limit_ok
    if bad.any():
        i = int(np.argmax(bad))
        sign = "positive" if col.kind == "positive" else "zero or positive"
        raise where.error(f"{values.iloc[i]!r} must be {sign}", pos[i], col.name,
                          f"write the {col.description}{' in ' + col.unit if col.unit else ''}")
    _check_plausible(col.name, np.where(blank, np.nan, arr), where, pos)
    return pd.Series(arr, index=values.index)


def _check_plausible(name: str, values: np.ndarray, where: RowLocator, pos) -> None:
    """Refuse the first value outside the column's plausible range (a unit slip)."""
    if name not in CHECKED_COLUMNS:
        return
    found = implausible_value(name, values)
    if found is not None:
        i, message, fix = found
        raise where.error(message, pos[i], name, fix)


def _parse_tl(frame: pd.DataFrame, where: RowLocator, pos) -> tuple[pd.Series, pd.Series]:
    text = frame["baseline_tl"].astype("string").str.strip()
    n = len(text)
    value = np.full(n, np.nan)
    cens_from_text = np.zeros(n, dtype=int)
    for i, raw in enumerate(text.to_list()):
        match = _CENSORED.match(raw or "")
        if match:
            op, number = match.groups()
            value[i] = float(number)
            cens_from_text[i] = -1 if op in {">", ">=", "≥"} else 1
            continue
        try:
            value[i] = float(raw)
        except (TypeError, ValueError):
            comma = decimal_comma(raw)
            if comma:
                raise where.error(comma[0], pos[i], "baseline_tl", comma[1]) from None
            raise where.error(
                f"{raw!r} is not a trough level", pos[i], "baseline_tl",
                "write a number in µg/mL, or '>16' / '<0.4' for a value beyond an assay limit",
            ) from None
    for i in range(n):
        if not np.isfinite(value[i]) or value[i] <= 0:
            raise where.error(
                f"{text.iloc[i]!r} is not a positive finite trough level", pos[i], "baseline_tl",
                "write the measured trough in µg/mL (TL must be > 0; use '<LIMIT' below the "
                "assay's lower limit)",
            )
    _check_plausible("baseline_tl", value, where, pos)
    if "tl_cens" not in frame.columns:
        return pd.Series(value), pd.Series(cens_from_text)
    cens_text = frame["tl_cens"].astype("string").str.strip()
    blank = blank_mask(frame["tl_cens"])
    cens = cens_from_text.copy()
    for i, raw in enumerate(cens_text.to_list()):
        if blank[i]:
            continue
        try:
            code = float(raw)
        except (TypeError, ValueError):
            code = np.nan
        if code not in (-1.0, 0.0, 1.0):
            raise where.error(
                f"{raw!r} is not a censoring code", pos[i], "tl_cens",
                "use 0 (observed), 1 (below a lower limit) or -1 (above an upper limit; "
                "baseline_tl then holds the limit)",
            )
        if cens_from_text[i] != 0 and int(code) != cens_from_text[i]:
            raise where.error(
                f"tl_cens is {int(code)} but baseline_tl is written {text.iloc[i]!r}", pos[i],
                "tl_cens",
                "make them agree: '>LIMIT' goes with -1, '<LIMIT' with 1, a plain number with 0",
            )
        cens[i] = int(code)
    return pd.Series(value), pd.Series(cens)


def _check_duplicates(tidy: pd.DataFrame, where: RowLocator) -> None:
    dup = tidy.duplicated(["patient_id", "month"], keep="first").to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        row = tidy.iloc[i]
        raise where.error(
            f"patient {row['patient_id']!r} has two rows for month {row['month']}",
            int(row["_position"]), "month",
            "keep one row per patient per assessment month",
        )


def _check_baseline_consistency(tidy: pd.DataFrame, where: RowLocator) -> None:
    cols = [c for c in BASELINE_COLUMNS if c in tidy.columns and c != "patient_id"]
    for _, rows in tidy.groupby("patient_id", sort=False):
        if len(rows) < 2:
            continue
        first = rows.iloc[0]
        for col in cols:
            vals = rows[col]
            same = vals.isna() if pd.isna(first[col]) else (vals == first[col])
            if not bool(same.all()):
                j = int(np.argmin(same.to_numpy(dtype=bool)))
                raise where.error(
                    f"patient {first['patient_id']!r} has {col} = {vals.iloc[j]!r} here but "
                    f"{first[col]!r} on an earlier row",
                    int(rows["_position"].iloc[j]), col,
                    f"{col} is a baseline value: give it the same value on every row of a patient",
                )


def _warn_near_misses(tidy: pd.DataFrame, where: RowLocator, column: str) -> None:
    """Warn of a label given to few patients that is very like a more common one (a typo).

    A label is flagged when a label with more patients is a close match (``difflib`` similarity
    of at least 0.8) and the flagged one has at most two patients or a tenth as many.
    """
    patients = tidy.drop_duplicates("patient_id")
    counts = patients[column].value_counts()
    if len(counts) < 2:
        return
    listing = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
    for label, n in counts.items():
        bigger = [str(other) for other, m in counts.items() if m > n]
        close = difflib.get_close_matches(str(label), bigger, n=1, cutoff=0.8)
        if not close or not (n <= 2 or 10 * n <= counts[close[0]]):
            continue
        m = int(counts[close[0]])
        first = int(patients.loc[patients[column] == label, "_position"].iloc[0])
        who = "1 patient" if n == 1 else f"{n} patients"
        where.warn(
            f"{column} {label!r} ({who}) is very like {close[0]!r} ({m} patients), and will be "
            f"fitted as a {column} of its own (patients per {column}: {listing})",
            first, column,
            f"if it is a typo, write {close[0]!r}; if it is a different {column}, ignore this "
            "warning",
        )


def _apply_exclusions(
    tidy: pd.DataFrame, exclude_ati: bool, min_tl: float | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    dropped: dict[str, int] = {}
    keep = np.ones(len(tidy), dtype=bool)
    if exclude_ati:
        ati = (tidy["ati"] == 1).to_numpy()
        dropped["ati_positive_patients"] = int(tidy.loc[ati, "patient_id"].nunique())
        keep &= ~ati
    if min_tl is not None:
        tl = tidy["baseline_tl"].to_numpy()
        cens = tidy["tl_cens"].to_numpy()
        low = keep & (((cens != 1) & (tl < min_tl)) | ((cens == 1) & (tl <= min_tl)))
        dropped["tl_below_min_patients"] = int(tidy.loc[low, "patient_id"].nunique())
        keep &= ~low
    return tidy.loc[keep].reset_index(drop=True), dropped
