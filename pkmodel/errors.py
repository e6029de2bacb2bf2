"""The one exception family of pkmodel.

Every error that pkmodel raises for bad input derives from :class:`PkmodelError`, so a caller can
catch them all at once, and the command line turns them into a one-paragraph message and exit code 2
instead of a traceback.
"""

from __future__ import annotations

__all__ = [
    "CohortError",
    "CohortWarning",
    "ConstantOutcomeWarning",
    "ControlStreamError",
    "ConvergenceWarning",
    "FitFileError",
    "ImplausibleEstimateWarning",
    "OutputExistsError",
    "OutputPathError",
    "PKDataError",
    "PkmodelError",
    "PkmodelWarning",
    "PredictionError",
    "SamplingError",
    "SeparationWarning",
    "SpecFileError",
    "SpecificationError",
]


class PkmodelError(Exception):
    """Base class of every error pkmodel raises on purpose."""


class _Located:
    """A message that says where (``source``, ``row``, ``column``) and how to fix it (``fix``),
    kept as attributes too."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | str | None = None,
        column: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.source = source
        self.row = row
        self.column = column
        self.fix = fix
        super().__init__(_located(message, source, row, column, fix))


class CohortError(_Located, PkmodelError, ValueError):
    """A cohort table that cannot be read or does not satisfy the schema.

    The message names the file, the row (1-based, as a spreadsheet shows it, counting the header as
    row 1) and the column, and says how to fix it.
    """


def _located(message: str, source: str | None, row: int | str | None, column: str | None,
             fix: str | None) -> str:
    """``file F, row R, column 'C': message. Fix: fix``, leaving out the parts not given."""
    where = []
    if source is not None:
        where.append(source if source.startswith("<") else f"file {source}")
    if row is not None:
        where.append(f"row {row}")
    if column is not None:
        where.append(f"column '{column}'")
    text = message
    if where:
        text = f"{', '.join(where)}: {message}"
    if fix:
        text = f"{text}. Fix: {fix}"
    return text


class PKDataError(CohortError):
    """A pharmacokinetic (NONMEM-style) dataset that cannot be read or is invalid."""


class SpecificationError(PkmodelError, ValueError):
    """A model specification, regimen or option that is not valid."""


class SpecFileError(SpecificationError):
    """A specification file (TOML) that cannot be read or holds an unknown key or a bad value.

    The message names the file and the line (1-based, as an editor shows it) where it can, and for
    an unknown key the keys that are known there. ``source``, ``line`` and ``key`` are kept as
    attributes too.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.source = source
        self.line = line
        self.key = key
        where = [p for p in (None if source is None else f"file {source}",
                             None if line is None else f"line {line}") if p]
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ControlStreamError(SpecFileError):
    """A NONMEM control stream that pkmodel cannot turn into a specification (or a
    specification it cannot write as one): the message names the file, the line and the
    statement, and says what is supported."""


class PredictionError(PkmodelError, ValueError):
    """A request to a fitted model that it cannot answer (unknown centre, strategy, level...)."""


class FitFileError(PkmodelError, OSError):
    """A saved fit that cannot be loaded: missing, truncated, corrupt, or not a pkmodel fit."""


class OutputExistsError(PkmodelError, FileExistsError):
    """An output file already exists and overwriting was not asked for (``force=True``)."""


class OutputPathError(PkmodelError, OSError):
    """An output path that cannot be written: no such folder, not writable, not a regular file,
    or an input of the same command."""


class SamplingError(PkmodelError, RuntimeError):
    """Sampling that stopped before every chain had drawn every draw it was asked for."""


class PkmodelWarning(UserWarning):
    """Base class of pkmodel's warnings."""


class ConvergenceWarning(PkmodelWarning):
    """A fit whose diagnostics fail the thresholds: R-hat, effective sample size or divergences."""


class ImplausibleEstimateWarning(PkmodelWarning):
    """An individual PK estimate far outside its population model, often a unit slip in the data."""


class SeparationWarning(PkmodelWarning):
    """Remission is (quasi-)completely separated by TL: the slope is identified by its prior only.

    With complete separation every patient below some TL remits and every patient above it does not
    (or the reverse); the likelihood then keeps rising as the slope grows, so the data alone put no
    bound on it and the posterior of the slope (and of thresholds) reflects the prior.
    """


class CohortWarning(_Located, PkmodelWarning):
    """A cohort value that is possible but suspicious, such as a strategy one letter off another.

    Like :class:`CohortError`, the message names the file, the row (header = row 1) and the
    column, and says what to do. The table is read as written.
    """


class ConstantOutcomeWarning(PkmodelWarning):
    """Remission does not vary (all 1 or all 0) overall or at some month.

    With no contrast between remitters and non-remitters, the likelihood keeps rising as the
    remission probability goes to 1 (or 0): the data alone put no bound on that month's
    log-odds, which (and, for the whole cohort, the TL slope as well) is then set by its prior.
    """
