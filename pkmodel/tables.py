"""Reading input tables, and saying where in them a problem is.

The one input layer of pkmodel: the cohort reader (:func:`pkmodel.read_cohort`), the NONMEM-style
PK reader (:func:`pkmodel.pk.read_nonmem`) and the population tables of the scenarios
(:func:`pkmodel.scenarios.population_from_table`) all read their tables with
:func:`read_table` and name a bad cell with a :class:`RowLocator`, so that they accept the same
files and report a problem in the same words:

* CSV (``.csv``, ``.txt``; ``.tsv`` defaults to a tab), Parquet (``.parquet``, ``.pq``) or a
  pandas DataFrame. A CSV is read as UTF-8 text (a byte-order mark is allowed), every cell as a
  string, nothing turned into NaN on the way: what counts as blank is decided by
  :func:`blank_mask` (:data:`BLANK_VALUES`).
* Header names are compared ignoring case and surrounding spaces; a name given twice is refused,
  naming both columns (pandas would silently rename the second ``x.1``).
* A location is ``file F, row R, column 'C'`` with the header as row 1, as a spreadsheet shows
  it; in a DataFrame the row is named by its index label (``<DataFrame>, row index 'r3'``).

This module imports nothing of pkmodel but :mod:`pkmodel.errors`.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pkmodel.errors import CohortError, CohortWarning

__all__ = [
    "BLANK_VALUES",
    "RowLocator",
    "Table",
    "blank_mask",
    "decimal_comma",
    "numeric_if_numbers",
    "read_table",
]

#: Cell texts read as blank (compared after stripping spaces, ignoring case).
BLANK_VALUES = frozenset({"", ".", "na", "nan", "n/a", "none", "null"})

_DECIMAL_COMMA = re.compile(r"^\s*(>=|<=|>|<|≥|≤)?\s*[+-]?\d*,\d+\s*$")
_THOUSANDS = re.compile(r"^\s*[+-]?\d{1,3}(,\d{3})+\s*$")
_OTHER_DELIMITERS = (";", "\t", "|", ",", " ")


class RowLocator:
    """Turns a row position of a table into the row a person would look for, and builds errors.

    Parameters
    ----------
    source : str
        The file as given, or ``"<DataFrame>"``.
    labels : pandas.Index, optional
        The index labels of a DataFrame, by row position; ``None`` for a file, whose rows are
        counted as a spreadsheet counts them (the header is row 1, the first data row row 2).
    error : type, default CohortError
        The error class built by :meth:`error` (a subclass of :class:`~pkmodel.errors.CohortError`,
        such as :class:`~pkmodel.errors.PKDataError`).

    Examples
    --------
    >>> where = RowLocator("cohort.csv")
    >>> str(where.error("'x' is not a number", 0, "weight_kg", "write a plain number"))
    "file cohort.csv, row 2, column 'weight_kg': 'x' is not a number. Fix: write a plain number"
    """

    def __init__(self, source: str, labels: pd.Index | None = None, *,
                 error: type[CohortError] = CohortError) -> None:
        self.source = source
        self.labels = labels
        self.error_type = error

    @property
    def is_file(self) -> bool:
        """Whether the table was read from a file (rows counted from the header, row 1)."""
        return self.labels is None

    def row(self, position: int) -> int | str:
        """The row of data row ``position`` (0-based): ``position + 2``, or ``index LABEL``."""
        if self.labels is None:
            return int(position) + 2  # header is row 1
        label = self.labels[int(position)]
        if isinstance(label, np.generic):  # 10, not np.int64(10)
            label = label.item()
        return f"index {label!r}"

    def error(self, message: str, position: int | None = None, column: str | None = None,
              fix: str | None = None) -> CohortError:
        """The error naming the source, the row of ``position`` (if given) and ``column``."""
        row = None if position is None else self.row(position)
        return self.error_type(message, source=self.source, row=row, column=column, fix=fix)

    def header_error(self, message: str, column: str | None = None,
                     fix: str | None = None) -> CohortError:
        """The error for a problem of the header (row 1), such as a missing column."""
        return self.error_type(message, source=self.source, row=1, column=column, fix=fix)

    def warn(self, message: str, position: int, column: str, fix: str, *,
             stacklevel: int = 4) -> None:
        """Warn (:class:`~pkmodel.errors.CohortWarning`) naming the row of ``position``.

        The default ``stacklevel`` points at the caller of a reader whose helper calls this.
        """
        warnings.warn(CohortWarning(message, source=self.source, row=self.row(position),
                                    column=column, fix=fix), stacklevel=stacklevel)


@dataclass(frozen=True)
class Table:
    """A table as read: its cells, and where each row came from.

    Attributes
    ----------
    frame : pandas.DataFrame
        The cells (strings for a CSV file; a Parquet file's or DataFrame's own types), with the
        normalised header names and a fresh ``RangeIndex`` (row positions).
    where : RowLocator
        Names the source and the row of a position in ``frame``.
    """

    frame: pd.DataFrame
    where: RowLocator

    @property
    def source(self) -> str:
        """The file as given, or ``"<DataFrame>"``."""
        return self.where.source

    @property
    def is_file(self) -> bool:
        """Whether the table was read from a file."""
        return self.where.is_file


def read_table(
    source: str | os.PathLike | pd.DataFrame,
    *,
    sep: str = ",",
    what: str = "table",
    error: type[CohortError] = CohortError,
    case: Literal["lower", "upper"] = "lower",
    strip_prefix: str = "",
) -> Table:
    """Read a CSV, TSV or Parquet file, or take a DataFrame, and normalise its header.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        The table. A CSV file is read with every cell as a string and no value turned into NaN.
    sep : str, default ","
        Field delimiter of a CSV file (a ``.tsv`` file defaults to a tab).
    what : str, default "table"
        What the table is, for the messages: ``"cannot read a cohort from a list"``,
        ``"name the PK dataset file"``.
    error : type, default CohortError
        The error class raised, here and by the returned table's :class:`RowLocator`.
    case : {"lower", "upper"}, default "lower"
        Header names are stripped of surrounding spaces and put in this case.
    strip_prefix : str, default ""
        Characters also stripped from the start of each name (``"#"`` for NONMEM's ``#ID``).

    Returns
    -------
    Table

    Raises
    ------
    CohortError
        (of class ``error``) For a path that is missing or a folder, an empty file, a file that is
        not UTF-8 text, not readable Parquet, or whose rows do not split into the header's fields;
        a header that is one field holding another delimiter; a name given twice in the header.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        where = RowLocator("<DataFrame>", frame.index, error=error)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        frame = _read_file(path, sep, what, error)
        where = RowLocator(str(path), error=error)
    else:
        raise error(f"cannot read a {what} from a {type(source).__name__}",
                    fix="pass a CSV or Parquet path or a pandas DataFrame")
    frame = _normalise_headers(frame, where, case, strip_prefix)
    return Table(frame, where)


def _read_file(path: Path, sep: str, what: str, error: type[CohortError]) -> pd.DataFrame:
    label = str(path)
    if not path.exists():
        raise error("no such file", source=label, fix="check the path")
    if path.is_dir():
        raise error("this is a folder, not a file", source=label, fix=f"name the {what} file")
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise error(f"not a readable Parquet file ({type(exc).__name__})", source=label,
                        fix="re-export the table as Parquet or CSV") from None
    empty = error("the file is empty", source=label, fix=f"export the {what} again")
    not_utf8 = error("the file is not UTF-8 text", source=label,
                     fix=f"save the {what} as CSV UTF-8 (or as Parquet)")
    if path.stat().st_size == 0:
        raise empty
    if suffix == ".tsv" and sep == ",":
        sep = "\t"
    try:
        text_head = path.read_bytes()[:4096].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise not_utf8 from None
    if not text_head.strip():
        raise empty
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            skipinitialspace=True)
    except UnicodeDecodeError:
        raise not_utf8 from None
    except (pd.errors.ParserError, csv.Error) as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise error(
            "rows have different numbers of fields", source=label,
            row=int(line.group(1)) if line else None,
            fix=f"check the delimiter (expected {sep!r}) and quoting on that row; a decimal "
            f"comma (4,5) in a {sep!r}-separated file splits a number in two: write 4.5",
        ) from None
    except pd.errors.EmptyDataError:
        raise empty from None
    if frame.shape[1] == 1:
        header = str(frame.columns[0]).strip()
        for other in _OTHER_DELIMITERS:
            if other != sep and other in header:
                raise error(
                    f"the header is one field; the file seems to be delimited by {other!r}, "
                    f"not {sep!r}", source=label, row=1,
                    fix=f"save it comma-separated, or pass sep={other!r} (--sep on the "
                    "command line)",
                )
    if not isinstance(frame.index, pd.RangeIndex):
        # every data row has more fields than the header: pandas made the extra ones an index
        n_extra = frame.index.nlevels
        raise error(
            f"this row has {frame.shape[1] + n_extra} fields but the header only "
            f"{frame.shape[1]} names", source=label, row=2,
            fix=f"a decimal comma (4,5) in a {sep!r}-separated file splits a number in two: write "
            "4.5 or export the table with a decimal point; otherwise name every column in the "
            "header",
        )
    frame.columns = _header_as_written(path, sep, frame.columns)
    return frame


def _header_as_written(path: Path, sep: str, parsed: pd.Index) -> list[str]:
    """The header's names as written: pandas renames a repeated ``x`` to ``x.1``, hiding it.

    Blank names keep pandas' ``Unnamed: N``, so that a trailing delimiter stays harmless.
    """
    try:
        first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False,
                            encoding="utf-8-sig", skipinitialspace=True)
    except (ValueError, csv.Error, UnicodeDecodeError):  # not expected: the full read worked
        return list(parsed)
    raw = [str(v) for v in first.iloc[0].tolist()] if first.shape[0] else []
    if len(raw) != len(parsed):
        return list(parsed)
    return [name if name.strip() else auto for name, auto in zip(raw, parsed, strict=True)]


def _spreadsheet_column(position: int) -> str:
    """Column letters as a spreadsheet shows them: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    n = position + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _column_at(position: int, where: RowLocator) -> str:
    """``column 3, C`` for a file (as a spreadsheet labels it), ``column 3`` for a DataFrame."""
    if not where.is_file:
        return f"column {position + 1}"
    return f"column {position + 1}, {_spreadsheet_column(position)}"


def _normalise_headers(frame: pd.DataFrame, where: RowLocator, case: str,
                       strip_prefix: str) -> pd.DataFrame:
    """Names stripped, in one case; a name given twice is refused naming both columns."""
    written = [str(c) for c in frame.columns]
    names = [c.strip() for c in written]
    names = [(c.upper() if case == "upper" else c.lower()).lstrip(strip_prefix) for c in names]
    first: dict[str, int] = {}
    for j, name in enumerate(names):
        if name in first:
            i = first[name]
            raise where.header_error(
                f"the header names this column twice: {written[i]!r} "
                f"({_column_at(i, where)}) and {written[j]!r} ({_column_at(j, where)}); names "
                "are compared ignoring case and surrounding spaces", column=name,
                fix="keep one of them: delete the other or give it a different name",
            )
        first[name] = j
    frame = frame.copy()
    frame.columns = names
    return frame.reset_index(drop=True)


def blank_mask(values: pd.Series) -> np.ndarray:
    """Which cells are blank: missing, or a text of :data:`BLANK_VALUES` (``""``, ``NA``, ``.``).

    Examples
    --------
    >>> blank_mask(pd.Series(["1", " ", "NA", ".", None, "0"])).tolist()
    [False, True, True, True, True, False]
    """
    text = values.astype("string").str.strip().str.lower()
    return (values.isna() | text.isin(BLANK_VALUES)).to_numpy(dtype=bool)


def numeric_if_numbers(values: pd.Series) -> pd.Series:
    """The column as numbers if every non-blank cell is a finite number; otherwise unchanged.

    A column of text (``"6"``, ``"12.5"``, ``""``) read from a CSV becomes float (``NaN`` where
    blank), or int64 when every cell is a whole number; a column with any other text (``"CD"``,
    ``"4,5"``), with no value at all, or that is not text to begin with, is returned as it is.

    Examples
    --------
    >>> numeric_if_numbers(pd.Series(["6", "", "12.5"])).tolist()
    [6.0, nan, 12.5]
    >>> numeric_if_numbers(pd.Series(["6", "x"])).tolist()
    ['6', 'x']
    """
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return values
    blank = blank_mask(values)
    if blank.all():
        return values
    text = values.astype("string").str.strip().astype(object).where(~blank, None)
    numbers = pd.to_numeric(text, errors="coerce")
    if not pd.api.types.is_numeric_dtype(numbers) or pd.api.types.is_bool_dtype(numbers):
        return values
    if not np.isfinite(numbers.to_numpy(dtype=float)[~blank]).all():
        return values
    return numbers


def decimal_comma(raw: object) -> tuple[str, str] | None:
    """The message and fix for a number written with a decimal comma, or ``None``.

    Examples
    --------
    >>> decimal_comma("4,5")[0]
    "'4,5' has a decimal comma; pkmodel reads numbers with a decimal point"
    >>> decimal_comma("4.5") is None
    True
    """
    text = str(raw).strip()
    if not _DECIMAL_COMMA.match(text):
        return None
    point = text.replace(",", ".")
    message = f"{text!r} has a decimal comma; pkmodel reads numbers with a decimal point"
    fix = (f"write {point}, or export the table with '.' as the decimal separator (for example "
           "from a spreadsheet set to an English locale)")
    if _THOUSANDS.match(text):
        message = (f"{text!r} has a comma: a decimal comma or a thousands separator; pkmodel reads "
                   "plain numbers with a decimal point")
        fix = (f"write {point} if the comma is a decimal comma or {text.replace(',', '')} if it "
               "separates thousands; or export the table with '.' as the decimal separator and "
               "no thousands separator")
    return message, fix
