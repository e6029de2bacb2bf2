"""Occasions: the stretches of therapy over which a patient's inter-occasion random effects hold.

With inter-occasion variability (IOV, :attr:`pkmodel.pk.models.PopulationModel.omega2_iov`) a
parameter in occasion k is ``typical(covariates) x exp(eta + kappa_k)``: eta is the patient's
(between-subject variability), kappa_k the occasion's, ``kappa_k ~ Normal(0, omega2_iov)``
independently in every occasion.

**What an occasion is.** By default one occasion per dosing interval: an occasion starts at each
distinct dose time and lasts until the next (the last one for ever after). This is the usual
NONMEM practice for infliximab TDM, where each infusion visit, with the trough drawn just before
it, is an occasion (the published Fasanmade 2011 control streams, Kim et al. 2025 Data S1 models
6 and 7, fix the variance of the occasion effect, not a rule that this library could read off a
TDM record). A patient's data may instead give the occasions explicitly: their start days
(:class:`Occasions`; e.g. an OCC column turned into the day each occasion starts). Before the
first start the first occasion applies.

**At an occasion boundary** the parameters change and the amounts in the compartments carry over
(exact piecewise propagation, :func:`pkmodel.pk.simulation.piecewise_concentrations`). A
concentration observed exactly at the start of an occasion (a trough drawn at the dose time)
belongs to the occasion that ends there (:meth:`Occasions.index` with ``trough=True``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.pk.models import PKParameters, PopulationModel
from pkmodel.pk.schedules import DoseSchedule

if TYPE_CHECKING:  # simulation imports this module, and covariates imports simulation
    from pkmodel.pk.covariates import CovariateHistory

__all__ = ["Occasions", "check_iov_structure", "occasion_parameters", "output_stretches",
           "resolve_occasions"]


@dataclass(frozen=True)
class Occasions:
    """The start day of each occasion of one patient.

    Parameters
    ----------
    starts_days : array-like
        The day each occasion starts (days since the first dose), strictly increasing; occasion
        ``k`` lasts from ``starts_days[k]`` until ``starts_days[k + 1]``, the last for ever.

    Examples
    --------
    >>> from pkmodel.pk import DoseSchedule
    >>> occ = Occasions.from_schedule(DoseSchedule.from_regimen("5mg/kg q8w", until_week=10))
    >>> occ.starts_days.tolist(), occ.index([14.0, 42.0], trough=True).tolist()
    ([0.0, 14.0, 42.0], [0, 1])
    """

    starts_days: np.ndarray

    def __post_init__(self) -> None:
        t = np.atleast_1d(np.asarray(self.starts_days, dtype=float))
        if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
            raise SpecificationError("occasions need the start day of each occasion: a non-empty "
                                     "list of finite days since the first dose")
        if np.any(np.diff(t) <= 0):
            raise SpecificationError("occasion start days must be strictly increasing (one per "
                                     "occasion, sorted)")
        t.setflags(write=False)
        object.__setattr__(self, "starts_days", t)

    def __len__(self) -> int:
        return int(self.starts_days.size)

    @classmethod
    def from_schedule(cls, schedule: DoseSchedule) -> Occasions:
        """One occasion per dosing interval: one starting at each distinct dose time."""
        return cls(np.unique(schedule.times_days))

    def index(self, times_days: np.ndarray | Sequence[float] | float, *,
              trough: bool = False) -> np.ndarray:
        """The occasion in force at each time (the first before the first start).

        Parameters
        ----------
        times_days : array-like
            Times, days.
        trough : bool, default False
            ``True`` for observations: one at an occasion's start belongs to the occasion that
            ends there (the trough before the dose). ``False`` for parameters: the new one.
        """
        t = np.asarray(times_days, dtype=float)
        idx = np.searchsorted(self.starts_days, t, side="left" if trough else "right") - 1
        return np.clip(idx, 0, len(self) - 1)

    def head(self, n: int) -> Occasions:
        """The first ``n`` occasions (the last of them then lasts for ever)."""
        return Occasions(self.starts_days[:max(int(n), 1)])

    def extended(self, starts_days: np.ndarray | Sequence[float]) -> Occasions:
        """These occasions and new ones starting at ``starts_days`` (those after the last)."""
        new = np.asarray(starts_days, dtype=float).reshape(-1)
        return Occasions(np.concatenate([self.starts_days,
                                         np.unique(new[new > self.starts_days[-1]])]))

    def scaled(self, factor: float) -> Occasions:
        """The occasions with every day multiplied by ``factor`` (a time-unit correction)."""
        return Occasions(self.starts_days * float(factor))


def resolve_occasions(occasions: Occasions | Sequence[float] | None,
                      schedule: DoseSchedule) -> Occasions:
    """The patient's occasions: those given, or one per dosing interval of ``schedule``.

    Raises
    ------
    SpecificationError
        If the occasions are not start days (finite, strictly increasing).
    """
    if occasions is None:
        return Occasions.from_schedule(schedule)
    if isinstance(occasions, Occasions):
        return occasions
    if isinstance(occasions, str | Mapping):
        raise SpecificationError("occasions must be the start day of each occasion (a list of "
                                 "days since the first dose) or an Occasions object")
    return Occasions(np.asarray(occasions, dtype=float))


def occasion_parameters(
    model: PopulationModel,
    covariates: Mapping[str, object] | CovariateHistory,
    occasions: Occasions,
    eta: np.ndarray | None,
    kappa: np.ndarray | None,
) -> tuple[PKParameters, np.ndarray]:
    """Individual parameters per stretch of constant covariates and occasion.

    Parameters
    ----------
    model : PopulationModel
        The model (its :attr:`~pkmodel.pk.models.PopulationModel.occasion_effects`).
    covariates : mapping or CovariateHistory
        Constant covariates, or a history (last value carried forward).
    occasions : Occasions
        The occasions; ``kappa`` has one entry per occasion.
    eta : numpy.ndarray or None
        Random effects, shape ``S + (n_eta,)``.
    kappa : numpy.ndarray or None
        Occasion effects, shape ``S + (len(occasions), n_kappa)``; ``None``: all zero.

    Returns
    -------
    tuple
        :class:`~pkmodel.pk.models.PKParameters` with the stretch axis last (shape ``S +
        (n_stretches,)``), and the day each stretch starts (the change times of
        :func:`~pkmodel.pk.simulation.piecewise_concentrations`).
    """
    history = None if isinstance(covariates, Mapping) else covariates  # a CovariateHistory
    change = occasions.starts_days if history is None else np.union1d(
        occasions.starts_days, history.times_days)
    cov = dict(covariates) if history is None else history.at(change)
    if history is None:  # constant covariates: a trailing axis of one broadcasts over stretches
        cov = {k: np.asarray(v, dtype=float)[..., None] if v is not None else v
               for k, v in cov.items()}
    occ = occasions.index(change)
    if kappa is not None:
        kappa = np.asarray(kappa, dtype=float)
        if kappa.shape[-2:-1] != (len(occasions),):
            raise SpecificationError(f"kappa needs one row per occasion ({len(occasions)}); "
                                     f"got shape {kappa.shape}")
        kappa = kappa[..., occ, :]
    if eta is not None:
        eta = np.asarray(eta, dtype=float)[..., None, :]
    params = model.individual_parameters(cov, eta, kappa)
    shape = np.broadcast_shapes(params.shape, (change.size,))
    return params.map(lambda v: np.broadcast_to(v, shape)), change


def output_stretches(change_days: np.ndarray, occasions: Occasions,
                     times_days: np.ndarray | Sequence[float]) -> np.ndarray:
    """The stretch of :func:`occasion_parameters` each observation time belongs to: the one in
    force, or the one before for a time at which an occasion starts (the trough before the
    dose, observed with the ending occasion's central volume)."""
    t = np.atleast_1d(np.asarray(times_days, dtype=float))
    idx = np.searchsorted(change_days, t, side="right") - 1
    at_start = np.isin(t, occasions.starts_days) & (idx > 0)
    return np.clip(idx - at_start, 0, change_days.size - 1)


def check_iov_structure(model: PopulationModel, schedule: DoseSchedule | None = None) -> None:
    """Refuse inter-occasion variability where exact propagation is not written.

    Raises
    ------
    SpecificationError
        For a model with ``omega2_iov`` whose structure is not the two-compartment IV one, or a
        schedule with doses other than IV infusions.
    """
    if model.omega2_iov and schedule is not None and schedule.routes is not None \
            and set(schedule.routes) != {"infusion"}:
        raise SpecificationError(
            f"the PK model {model.name} has inter-occasion variability (omega2_iov); occasions "
            "are followed for IV infusions only, and these doses include "
            f"{', '.join(sorted(set(schedule.routes) - {'infusion'}))}: give the doses as "
            "infusions (CMT 1 with a RATE or duration) or use a model without omega2_iov")
    structure = model.structure
    if model.omega2_iov and (structure.compartments != 2 or structure.dosing == "oral"):
        raise SpecificationError(
            f"the PK model {model.name} has inter-occasion variability (omega2_iov) on a "
            f"{structure.label()} structure; occasions are followed (exact piecewise "
            "propagation) for 2-compartment IV models only: drop omega2_iov or use a "
            "2-compartment model")
