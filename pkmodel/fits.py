"""The fit protocol: what every Bayesian fit of pkmodel is and does, and :func:`load`.

Every fitted model (the remission model's :class:`~pkmodel.response.RemissionFit`, population PK's
:class:`~pkmodel.pk.population.PopulationFit`) is a :class:`BayesianFit`, with one shape:

- ``diagnostics``: the convergence gate (:func:`pkmodel.diagnostics.compute_diagnostics`: R-hat,
  bulk and tail ESS, divergences, E-BFMI, tree depth) over the model's own parameters;
- ``converged``: whether it passes;
- ``notes``: what a reader of the fit's numbers must know (what the data could identify, what
  was changed while preparing them);
- ``summary(ci_prob)``: one row per parameter (element), with the columns of
  :data:`SUMMARY_COLUMNS`, the same statistics for every model;
- ``save(path)``: the netCDF file (:func:`pkmodel.netcdf.write_fit_file`), read back by
  :func:`load` whatever its kind;
- ``to_dict(ci_prob)``: plain JSON, with the same keys for every model (and the model's own).

A subclass says what its parameters are (``reported_variables``, ``checked_variables``), what
its notes are (``_notes``) and what its file holds (``_file_groups``, ``_file_attrs``).

:func:`load` reads any saved fit and returns the fitted model of its recorded kind, through
:data:`FIT_KINDS`, which names each kind's loader by module: it is imported only when a file of
that kind is read, so that this module depends on no model.
"""

from __future__ import annotations

import importlib
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.diagnostics import Diagnostics, compute_diagnostics
from pkmodel.errors import ConvergenceWarning
from pkmodel.netcdf import (
    KIND_ATTR,
    UNRECORDED_KIND,
    open_fit_file,
    write_fit_file,
)
from pkmodel.validation import check_probability

__all__ = ["FIT_KINDS", "SUMMARY_COLUMNS", "BayesianFit", "FitNotes", "load", "summary_table"]

#: The columns of every fit's :meth:`BayesianFit.summary`, in order, named as ArviZ names them:
#: ``parameter`` (``name`` or ``name[label]`` for an element, as ``az.summary``), ``unit``,
#: ``mean``, ``sd`` (posterior SD), ``median``, ``lower`` and ``upper`` (the equal-tailed
#: credible interval of ``ci_prob``, in ``attrs["ci_prob"]``), ``ess_bulk``, ``ess_tail``
#: (effective sample sizes) and ``r_hat`` (rank-normalised split R-hat). A value that is not
#: sampled (a fixed typical value) has NaN diagnostics.
SUMMARY_COLUMNS = ("parameter", "unit", "mean", "sd", "median", "lower", "upper", "ess_bulk",
                   "ess_tail", "r_hat")

#: The loader of each kind of saved fit (``pkmodel_model_kind``): ``"module:function"``, the
#: function taking the verified file's tree, its path and ``warn``. Imported by name when a file
#: of that kind is read (this module imports no model). A new kind of fit adds one line here.
FIT_KINDS: dict[str, str] = {
    "remission_by_baseline_tl": "pkmodel.response.loading:fit_from_tree",
    "remission_by_exposure": "pkmodel.response.loading:fit_from_tree",
    "population_pk": "pkmodel.pk.population.loading:fit_from_tree",
}


def summary_table(posterior: xr.Dataset, units: Mapping[str, str], ci_prob: float,
                  fixed: Collection[str] = ()) -> pd.DataFrame:
    """The summary table of :data:`SUMMARY_COLUMNS` for the variables of ``units``.

    Parameters
    ----------
    posterior : xarray.Dataset
        Draws over (chain, draw, ...) holding every key of ``units``.
    units : mapping
        Variable name to its unit, in the order of the rows.
    ci_prob : float
        Probability of the equal-tailed interval (``lower``, ``upper``).
    fixed : collection of str
        Variables that are not sampled (NONMEM's FIX): NaN ``ess_bulk``, ``ess_tail`` and
        ``r_hat``.

    Returns
    -------
    pandas.DataFrame
        One row per variable element; ``attrs["ci_prob"]`` is ``ci_prob``.
    """
    import arviz as az

    ci_prob = check_probability("ci_prob", ci_prob)
    names = list(units)
    post = posterior[names]
    with warnings.catch_warnings():  # constant (fixed) values: NaN diagnostics, said below
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = az.summary(post, kind="all", ci_prob=ci_prob, ci_kind="eti", round_to="none")
        medians = az.summary(post, kind="stats_median", ci_prob=ci_prob, round_to="none")
    lower = next(c for c in stats.columns if str(c).endswith("_lb"))
    upper = next(c for c in stats.columns if str(c).endswith("_ub"))
    table = pd.DataFrame({
        "parameter": [str(label) for label in stats.index],
        "unit": [units[str(label).split("[", 1)[0]] for label in stats.index],
        "mean": stats["mean"].to_numpy(dtype=float),
        "sd": stats["sd"].to_numpy(dtype=float),
        "median": medians.loc[stats.index, "median"].to_numpy(dtype=float),
        "lower": stats[lower].to_numpy(dtype=float),
        "upper": stats[upper].to_numpy(dtype=float),
        "ess_bulk": stats["ess_bulk"].to_numpy(dtype=float),
        "ess_tail": stats["ess_tail"].to_numpy(dtype=float),
        "r_hat": stats["r_hat"].to_numpy(dtype=float),
    })
    rows = table["parameter"].str.split("[", n=1).str[0].isin(set(fixed))
    table.loc[rows, ["ess_bulk", "ess_tail", "r_hat"]] = np.nan
    table.attrs["ci_prob"] = ci_prob
    return table


class FitNotes(tuple):
    """A fit's notes: a tuple of strings.

    ``fit.notes`` is a property (pkmodel 0.5); calling it, as ``fit.notes()`` of pkmodel 0.4's
    remission fits, still returns the list, with a :class:`DeprecationWarning`.
    """

    __slots__ = ()

    def __call__(self) -> list[str]:
        warnings.warn("fit.notes is a property: drop the parentheses (fit.notes() is removed "
                      "in a later version)", DeprecationWarning, stacklevel=2)
        return list(self)


class BayesianFit(ABC):
    """What every fitted model of pkmodel shares (see the module's description).

    A subclass (a dataclass) has the attributes ``tree`` (the posterior and its companion
    groups), ``random_seed`` and ``_diagnostics`` (``None`` until computed), and supplies:

    - ``model_kind`` (str): the kind recorded in its file, a key of :data:`FIT_KINDS`;
    - ``reported_variables()``: the summary's variables with their units;
    - ``checked_variables()``: what the convergence gate checks;
    - ``_notes()``: its notes;
    - ``_file_groups()`` and ``_file_attrs()``: the groups and ``pkmodel_*`` attributes of its
      file;
    - optionally ``_summary_posterior()`` (derived quantities of the summary),
      ``fixed_variables()`` (values of the summary that are not sampled),
      ``_dict_extras(ci_prob)`` (its own keys of :meth:`to_dict`), :attr:`hierarchical_priors`
      and :attr:`unconverged_advice`.
    """

    #: The hierarchical scale priors named in the remedy for divergent transitions.
    hierarchical_priors: ClassVar[str] = "group_sd, patient_sd"
    #: The last sentence of the warning of a fit that fails its convergence checks.
    unconverged_advice: ClassVar[str] = "Do not use its estimates before fixing this."

    tree: xr.DataTree
    random_seed: int
    _diagnostics: Diagnostics | None

    # ------------------------------------------------------------ the model's part
    @property
    @abstractmethod
    def model_kind(self) -> str:
        """The kind of model, recorded in its file (a key of :data:`FIT_KINDS`)."""

    @abstractmethod
    def reported_variables(self) -> dict[str, str]:
        """The variables of :meth:`summary`, each with its unit."""

    @abstractmethod
    def checked_variables(self) -> list[str]:
        """The variables the convergence gate checks: the model's own parameters."""

    @abstractmethod
    def _notes(self) -> list[str]:
        """The notes (:attr:`notes`)."""

    @abstractmethod
    def _file_groups(self) -> dict[str, xr.Dataset]:
        """The groups of the fit's file, in order."""

    @abstractmethod
    def _file_attrs(self) -> dict[str, Any]:
        """The model's ``pkmodel_*`` root attributes of the fit's file."""

    def _summary_posterior(self) -> xr.Dataset:
        """The draws :meth:`summary` reads: the posterior, plus any derived quantity."""
        return self.posterior

    def fixed_variables(self) -> set[str]:
        """Variables of the summary that are not sampled (fixed values): no diagnostics."""
        return set()

    def _dict_extras(self, ci_prob: float) -> dict:
        """The model's own keys of :meth:`to_dict`."""
        return {}

    # ------------------------------------------------------------ the shared shape
    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws as one Dataset (chain, draw, ...)."""
        return self.tree["posterior"].to_dataset()

    @property
    def diagnostics(self) -> Diagnostics:
        """The convergence gate: R-hat, bulk/tail ESS, divergences, E-BFMI, tree depth, over
        :meth:`checked_variables` (the model's parameters, never the sampler's coordinates).
        Computed once."""
        if self._diagnostics is None:
            self._diagnostics = compute_diagnostics(
                self.posterior, self.tree["sample_stats"].to_dataset(),
                self.checked_variables(), hierarchical_priors=self.hierarchical_priors)
        return self._diagnostics

    @property
    def converged(self) -> bool:
        """Whether the fit passes its convergence gate."""
        return bool(self.diagnostics.converged)

    @property
    def notes(self) -> FitNotes:
        """What a reader of this fit's numbers must know, one sentence each."""
        return FitNotes(self._notes())

    def warn_if_unconverged(self, stacklevel: int = 2) -> None:
        """Emit a :class:`~pkmodel.errors.ConvergenceWarning` if the fit failed its checks."""
        diag = self.diagnostics
        if not diag.converged:
            warnings.warn("the fit did not pass its convergence checks:\n  - "
                          + "\n  - ".join(diag.problems()) + f"\n{self.unconverged_advice}",
                          ConvergenceWarning, stacklevel=stacklevel + 1)

    def summary(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Every population parameter, one row per element: the columns of
        :data:`SUMMARY_COLUMNS` (``parameter, unit, mean, sd, median, lower, upper, ess_bulk,
        ess_tail, r_hat``).

        Parameters
        ----------
        ci_prob : float, default 0.9
            Probability of the equal-tailed credible interval (``lower``, ``upper``).

        Returns
        -------
        pandas.DataFrame
            ``attrs["ci_prob"]`` and ``attrs["notes"]`` (:attr:`notes`) go with it.
        """
        table = summary_table(self._summary_posterior(), self.reported_variables(), ci_prob,
                              self.fixed_variables())
        table.attrs["notes"] = list(self.notes)
        return table

    def save(self, path: str | os.PathLike, *, force: bool = False) -> None:
        """Write the fit to a netCDF file, atomically (never pickled); an existing file only
        with ``force``. :func:`pkmodel.load` reads it back."""
        write_fit_file(path, self._file_groups(), self._file_attrs(), kind=self.model_kind,
                       force=force)

    def to_dict(self, ci_prob: float = 0.9) -> dict:
        """Plain JSON: ``kind``, ``ci_prob``, ``random_seed``, ``converged``, ``diagnostics``
        (with ``problems``, each with its remedy), ``notes``, ``summary`` (the rows of
        :meth:`summary`, NaN as ``None``), then the model's own keys."""
        table = self.summary(ci_prob)
        rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                 for k, v in row.items()} for row in table.to_dict("records")]
        diag = self.diagnostics
        return {"kind": self.model_kind, "ci_prob": float(ci_prob),
                "random_seed": int(self.random_seed), "converged": bool(diag.converged),
                "diagnostics": diag.to_dict() | {"problems": diag.problems()},
                "notes": list(self.notes), "summary": rows, **self._dict_extras(ci_prob)}


def load(path: str | os.PathLike, *, warn: bool = True) -> BayesianFit:
    """Load any fit saved by pkmodel: the fitted model of the kind its file records.

    A remission fit (by baseline TL or by exposure; files saved by pkmodel 0.2, which recorded
    no kind, are remission fits) is a :class:`~pkmodel.response.RemissionFit`, a population PK
    fit a :class:`~pkmodel.pk.population.PopulationFit`.

    Parameters
    ----------
    path : str or path
        The netCDF file (``fit.save(path)``, ``pkmodel fit -o``, ``pkmodel pk fit -o``).
    warn : bool, default True
        Emit the :class:`~pkmodel.errors.ConvergenceWarning` again if the fit failed its checks.

    Raises
    ------
    FitFileError
        Missing, truncated or corrupt file (checksum), not a pkmodel fit, a kind of fit or a
        file format this version of pkmodel does not know (naming the kind and the version of
        pkmodel that wrote it), or contents its model cannot use.

    Examples
    --------
    >>> fit = pkmodel.load("fit.nc")  # doctest: +SKIP
    >>> fit.converged, fit.summary()  # doctest: +SKIP
    """
    tree = open_fit_file(path, tuple(FIT_KINDS), loader="pkmodel.load")
    kind = str(tree.attrs.get(KIND_ATTR, UNRECORDED_KIND))
    module, _, function = FIT_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), function)(tree, path, warn=warn)
