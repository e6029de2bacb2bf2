"""Covariates that change during therapy: a patient's covariate history, last value carried forward.

A :class:`CovariateHistory` lists record times (days since the first dose) and the value of each
covariate at each record. The value recorded at time ``t`` applies from ``t`` until the next record
(last observation carried forward, LOCF); before the first record, the first value applies. The
individual parameters are then piecewise constant (one set per record), and concentrations come
from exact state propagation (:func:`pkmodel.pk.simulation.piecewise_concentrations`) instead of
superposition. Covariates that do not change stay a plain dict, as everywhere else in
:mod:`pkmodel.pk`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.pk.covariate_registry import COVARIATES, CovariateRegistry
from pkmodel.pk.models import PKParameters, PopulationModel
from pkmodel.pk.published_models import get_model
from pkmodel.pk.schedules import DoseSchedule
from pkmodel.pk.simulation import piecewise_concentrations

__all__ = ["CovariateHistory"]


@dataclass(frozen=True)
class CovariateHistory:
    """A patient's covariates over time, piecewise constant (last observation carried forward).

    Parameters
    ----------
    times_days : array-like
        Record times, days since the first dose, strictly increasing (a record before the first
        dose, e.g. at screening, may have a negative time).
    values : mapping
        Covariate name (a key of :data:`pkmodel.pk.covariate_registry.COVARIATES`) -> one value
        per record, or a scalar for a covariate that does not change. Units as in the models:
        kg, g/dL, 0/1.
    registry : CovariateRegistry, optional
        The covariates it may hold (default the library's,
        :data:`~pkmodel.pk.covariate_registry.COVARIATES`; a specification's registry adds
        those it declares).

    Notes
    -----
    The value recorded at ``times_days[i]`` applies from then until ``times_days[i + 1]``; the
    last record's values apply for ever after it, and the first record's values also apply
    before it. Records that change nothing are kept (they are harmless).

    Examples
    --------
    >>> h = CovariateHistory([0, 84], {"weight_kg": [40, 55], "albumin_g_dl": 3.2})
    >>> h.at([-7, 0, 83.9, 84, 400])["weight_kg"].tolist()
    [40.0, 40.0, 40.0, 55.0, 55.0]
    >>> h.last()
    {'weight_kg': 55.0, 'albumin_g_dl': 3.2}
    """

    times_days: np.ndarray
    values: Mapping[str, np.ndarray]
    registry: CovariateRegistry | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        registry = COVARIATES if self.registry is None else self.registry
        t = np.atleast_1d(np.asarray(self.times_days, dtype=float))
        if t.ndim != 1 or t.size == 0:
            raise SpecificationError("a covariate history needs at least one record time")
        if not np.all(np.isfinite(t)):
            raise SpecificationError("covariate record times must be finite numbers of days")
        if np.any(np.diff(t) <= 0):
            raise SpecificationError(
                "covariate record times must be strictly increasing (one record per time, "
                "sorted)")
        if not self.values:
            raise SpecificationError("a covariate history needs at least one covariate")
        unknown = sorted(set(self.values) - set(registry))
        if unknown:
            raise SpecificationError(
                f"unknown covariate(s) {', '.join(unknown)}; known: {', '.join(registry)}")
        values: dict[str, np.ndarray] = {}
        for name, value in self.values.items():
            arr = np.asarray(registry.check(name, value), dtype=float)
            if arr.ndim > 1 or (arr.ndim == 1 and arr.size != t.size):
                raise SpecificationError(
                    f"covariate {name} needs one value per record time ({t.size}) or a single "
                    f"value; got shape {arr.shape}")
            arr = np.broadcast_to(arr, t.shape).copy()
            arr.setflags(write=False)
            values[name] = arr
        t.setflags(write=False)
        object.__setattr__(self, "times_days", t)
        object.__setattr__(self, "values", values)

    def __len__(self) -> int:
        return int(self.times_days.size)

    @classmethod
    def from_constant(cls, covariates: Mapping[str, float]) -> CovariateHistory:
        """A one-record history (at day 0) holding constant covariates."""
        return cls([0.0], {k: v for k, v in covariates.items() if v is not None})

    @property
    def names(self) -> tuple[str, ...]:
        """The covariates recorded."""
        return tuple(self.values)

    @property
    def is_constant(self) -> bool:
        """Whether no covariate ever changes."""
        return all(np.all(v == v[0]) for v in self.values.values())

    def varying(self) -> tuple[str, ...]:
        """The covariates that change at least once."""
        return tuple(k for k, v in self.values.items() if np.any(v != v[0]))

    def segment_index(self, times_days: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Index of the record in force at each time (LOCF; the first before the first record)."""
        t = np.asarray(times_days, dtype=float)
        idx = np.searchsorted(self.times_days, t, side="right") - 1
        return np.clip(idx, 0, len(self) - 1)

    def at(self, times_days: np.ndarray | Sequence[float] | float) -> dict[str, np.ndarray]:
        """The covariates in force at ``times_days``: name -> array of the shape of the times."""
        idx = self.segment_index(times_days)
        return {k: v[idx] for k, v in self.values.items()}

    def first(self) -> dict[str, float]:
        """The first record's values (the baseline)."""
        return {k: float(v[0]) for k, v in self.values.items()}

    def last(self) -> dict[str, float]:
        """The last record's values (in force from the last record on)."""
        return {k: float(v[-1]) for k, v in self.values.items()}

    def with_values(self, **constants: float) -> CovariateHistory:
        """This history with the given covariates replaced by (or added as) constants."""
        values = {k: v for k, v in self.values.items() if k not in constants}
        values.update({k: float(v) for k, v in constants.items()})
        return CovariateHistory(self.times_days, values, self.registry)

    def individual_parameters(
        self, model: PopulationModel | str, eta: np.ndarray | None = None
    ) -> PKParameters:
        """Parameters per record: the covariate model at each record's covariates times exp(eta).

        Parameters
        ----------
        model : PopulationModel or str
            The population model or its name.
        eta : numpy.ndarray, optional
            Random effects, shape ``S + (n_eta,)``; constant over the history (occasion
            effects, for a model with inter-occasion variability, are added by
            :func:`pkmodel.pk.occasions.occasion_parameters`). ``None``: the covariate-typical
            patient.

        Returns
        -------
        PKParameters
            Arrays of shape ``S + (n_records,)``: the record axis last.
        """
        if eta is not None:
            eta = np.asarray(eta, dtype=float)[..., None, :]
        params = get_model(model).individual_parameters(dict(self.values), eta)
        shape = np.broadcast_shapes(params.shape, (len(self),))
        return params.map(lambda v: np.broadcast_to(v, shape))

    def dose_amounts_mg(self, schedule: DoseSchedule) -> np.ndarray:
        """The amount of each dose in mg; mg/kg doses use the weight in force at the dose start."""
        if not schedule.per_kg:
            return schedule.amounts
        if "weight_kg" not in self.values:
            raise SpecificationError("a weight (kg) is needed to turn mg/kg doses into mg")
        return schedule.amounts * self.at(schedule.times_days)["weight_kg"]

    def concentrations(
        self,
        model: PopulationModel | str,
        schedule: DoseSchedule,
        times_days: np.ndarray | Sequence[float] | float,
        eta: np.ndarray | None = None,
    ) -> np.ndarray:
        """Concentrations (µg/mL) under this history, shape ``S + (n_times,)`` for eta ``S + (k,)``.

        Exact propagation with the parameters of each record in force (covariates not recorded
        take the model's reference values); mg/kg doses use the weight in force at each dose.
        """
        params = self.individual_parameters(model, eta)
        return piecewise_concentrations(params, self.times_days, schedule, times_days,
                                        self.dose_amounts_mg(schedule))

    def rows(self) -> list[dict[str, float]]:
        """One plain dict per record: ``day`` and each covariate."""
        return [{"day": float(t), **{k: float(v[i]) for k, v in self.values.items()}}
                for i, t in enumerate(self.times_days)]

    def to_dict(self) -> dict:
        """Plain-JSON description: the records, which covariates vary, and the convention."""
        return {"rule": "last observation carried forward", "varying": list(self.varying()),
                "records": self.rows()}
