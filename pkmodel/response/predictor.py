"""The one public way to predict P(remission) from a fitted model's posterior draws.

:class:`RemissionPredictor` holds the posterior draws and a typed description of the design
(:class:`DesignInfo`); it is small and picklable, so a Dask worker can hold it. Everything that
predicts remission uses it: :meth:`pkmodel.RemissionFit.predict` for a table of patients, the
dosing scenarios for virtual populations, chunk by chunk. A prediction is the logistic of the
linear predictor integrated over the random effects still unknown for a new patient (the
patient's own and, at the population level, a new centre's), per posterior draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from pkmodel.errors import PredictionError
from pkmodel.response.design import REFERENCE_TL_UG_ML, CovariateEncoding
from pkmodel.response.quadrature import integrate_logistic
from pkmodel.response.structure import new_group_intercept
from pkmodel.response.terms import TERMS, log_odds

__all__ = ["EXPOSURE_KIND", "MODEL_KIND", "MODEL_KINDS", "DesignInfo", "RemissionPredictor"]

#: The kind of model a fit holds, saved with it (``pkmodel_model_kind``): remission at each
#: assessment month from the baseline TL, the strategy and patient covariates.
MODEL_KIND = "remission_by_baseline_tl"
#: Remission from the baseline TL and the exposure gain the regimen given brings the patient.
EXPOSURE_KIND = "remission_by_exposure"
#: Every kind, the first the kind of fits saved before kinds were recorded.
MODEL_KINDS = (MODEL_KIND, EXPOSURE_KIND)


def _levels(values, known: tuple, what: str, n: int) -> np.ndarray:
    """The index in ``known`` of each label (one label for all ``n`` rows, or one each)."""
    arr = np.asarray(values)
    arr = np.full(n, arr.item(), dtype=arr.dtype) if arr.ndim == 0 else arr
    if known and isinstance(known[0], int):
        arr = arr.astype(int)
        keys = np.asarray(known)
    else:
        arr, keys = arr.astype(str), np.asarray(known, dtype=str)
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys, arr, sorter=order), 0, len(keys) - 1)
    index = order[pos]
    bad = keys[index] != arr
    if bad.any():
        raise PredictionError(f"{what} {arr[bad][0]!r} is not one the model was fitted on "
                              f"({list(known)}); it cannot be predicted")
    return index


@dataclass(frozen=True)
class DesignInfo:
    """What a fitted remission model was fitted to: its levels, covariates and TL range.

    Attributes
    ----------
    strategies : tuple of str
        Intensification strategies, in the fit's order.
    months : tuple of int
        Assessment months.
    groups : tuple of str
        Centres (the grouping column's levels).
    diseases : tuple of str
        Disease levels of a slope by disease (empty when the slope does not depend on it).
    encodings : tuple of CovariateEncoding
        How each patient covariate enters the model (centring, scaling, levels).
    tl_range_ug_ml : tuple of float
        Lowest and highest baseline TL of the fitted cohort, µg/mL.
    exposure : dict
        For the exposure-driven model (empty otherwise): its PK model, baseline regimen, the
        fitted regimens, reference values of the PK covariates and the range of fitted log
        exposure gains (:func:`pkmodel.response.exposure.exposure_inputs`). Its
        ``strategies`` are then the fitted regimens' labels.
    """

    strategies: tuple[str, ...]
    months: tuple[int, ...]
    groups: tuple[str, ...]
    diseases: tuple[str, ...]
    encodings: tuple[CovariateEncoding, ...]
    tl_range_ug_ml: tuple[float, float]
    exposure: dict = field(default_factory=dict)

    @classmethod
    def from_meta(cls, meta: dict) -> DesignInfo:
        """From a fit's metadata (``RemissionFit.meta``)."""
        return cls(strategies=tuple(str(s) for s in meta["strategies"]),
                   months=tuple(int(m) for m in meta["months"]),
                   groups=tuple(str(g) for g in meta.get("groups", ())),
                   diseases=tuple(str(d) for d in meta.get("diseases", ()) or ()),
                   encodings=tuple(CovariateEncoding.from_dict(e)
                                   for e in meta.get("encodings", ())),
                   tl_range_ug_ml=tuple(float(v) for v in meta["tl_range_ug_ml"]),
                   exposure=dict(meta.get("exposure") or {}))

    def terms(self, meta: dict) -> list[str]:
        """The posterior variables that predictions from this design need."""
        from pkmodel.response.structure import GROUP_PARAMETRISATION

        names = ["alpha", *(("b_base", "b_gain") if self.exposure else ("beta",))]
        if len(self.strategies) > 1 and not self.exposure:
            names += ["delta_strategy", "b_slope_strategy"]
        if len(self.months) > 1:
            names.append("tau_month")
        if self.encodings:
            names.append("gamma")
        if self.diseases:
            names.append("b_slope_disease")
        if (meta.get("structure") or {}).get("group_effects") == GROUP_PARAMETRISATION:
            names += ["a_group", "sigma_group"]
        if meta.get("patient_effect"):
            names.append("sigma_patient")
        return names

    @property
    def covariates(self) -> tuple[str, ...]:
        """Names of the patient covariates the model uses."""
        return tuple(e.name for e in self.encodings)


@dataclass(frozen=True)
class RemissionPredictor:
    """P(remission) for patients, per posterior draw, from a fitted remission model.

    Get one with :meth:`pkmodel.RemissionFit.predictor`.

    Attributes
    ----------
    posterior : xarray.Dataset
        Posterior draws over ``sample`` (chains and draws stacked, possibly thinned).
    design : DesignInfo
        What the model was fitted to.
    meta : dict
        The fit's metadata (the structure the predictor needs, e.g. for a new centre).
    """

    posterior: xr.Dataset
    design: DesignInfo
    meta: dict

    @classmethod
    def from_posterior(cls, posterior: xr.Dataset, meta: dict,
                       n_draws: int | None = None) -> RemissionPredictor:
        """From a posterior over (chain, draw) and the fit's metadata.

        Chains and draws are stacked into ``sample`` (chain-major, as ``reshape(-1)`` of
        (chain, draw) orders them). ``n_draws`` keeps that many, evenly spaced; per-patient
        latent variables (a censored TL) are dropped, since predictions for new patients do not
        use them and a Dask worker need not receive them.
        """
        from pkmodel.errors import SpecificationError

        keep = [v for v in posterior.data_vars
                if not any("patient" in str(d) for d in posterior[v].dims)]
        post = posterior[keep]
        total = post.sizes["chain"] * post.sizes["draw"]
        stacked = post.stack(sample=("chain", "draw"), create_index=False)
        if n_draws is not None:
            if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) \
                    or n_draws < 1:
                raise SpecificationError(f"n_draws must be a positive integer, not {n_draws!r}")
            if n_draws < total:
                pick = np.unique(np.linspace(0, total - 1, int(n_draws)).round().astype(int))
                stacked = stacked.isel(sample=pick)
        stacked = stacked.drop_vars([c for c in ("chain", "draw") if c in stacked.coords])
        stacked = stacked.assign_coords(sample=np.arange(stacked.sizes["sample"]))
        design = DesignInfo.from_meta(meta)
        missing = [name for name in design.terms(meta) if name not in post.data_vars]
        if missing:
            raise PredictionError(f"the posterior lacks {', '.join(missing)}, which the model's "
                                  "design needs")
        return cls(stacked.transpose("sample", ...).load(), design, meta)

    @property
    def n_samples(self) -> int:
        """Posterior draws the predictions are made over."""
        return int(self.posterior.sizes["sample"])

    def covariate_matrix(self, columns, rows: Sequence[str], source: str = "<patients>"
                         ) -> np.ndarray:
        """The covariate matrix (patient, covariate) of the patients ``rows``.

        ``columns`` maps (a dict or a DataFrame) each covariate of
        :attr:`DesignInfo.covariates` to one value per patient; a covariate left out, or a
        missing value, raises the encoding's error naming the patient.
        """
        import pandas as pd

        rows = np.asarray(rows).astype(str)
        parts = [enc.encode(pd.Series(columns[enc.name]).reset_index(drop=True)
                            if enc.name in columns else pd.Series([None] * rows.size),
                            source, rows)
                 for enc in self.design.encodings]
        return np.concatenate(parts, axis=1) if parts else np.zeros((rows.size, 0))

    def p_remission(
        self,
        log_tl: np.ndarray | xr.DataArray,
        strategy: str | np.ndarray,
        month: int | np.ndarray,
        *,
        covariates: np.ndarray | None = None,
        disease: np.ndarray | None = None,
        centre: np.ndarray | None = None,
        log_gain: np.ndarray | None = None,
        log_gain_sd: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """P(remission) per posterior draw and patient, shape ``(sample, patient)``.

        Parameters
        ----------
        log_tl : array, shape (patient,) or (sample, patient)
            Natural log of the baseline TL (µg/mL); per draw for TLs drawn beyond an assay limit.
        strategy, month : label or array of shape (patient,)
            The strategy and assessment month of each patient (one value for all, or one each).
        covariates : array, shape (patient, covariate), optional
            From :meth:`covariate_matrix`; needed when the model has covariates.
        disease : array of str, shape (patient,), optional
            Needed when the slope depends on disease.
        centre : array of str, shape (patient,), optional
            The fitted centre of each patient; ``None`` predicts for new centres (the population
            level).
        log_gain, log_gain_sd : array, shape (patient,) or (sample, patient)
            Exposure-driven model only (required there): each patient's log exposure gain, and
            the SD of its uncertainty (0 when known, e.g. a virtual patient's), which is
            integrated with the patient effect (:func:`pkmodel.response.exposure.regimen_gain`
            computes both from a trough). ``strategy`` is then not used.
        """
        log_tl = np.asarray(log_tl, dtype=float)
        n = log_tl.shape[-1]
        d = self.design
        if covariates is None and d.encodings:
            raise PredictionError(f"the model uses covariates ({', '.join(d.covariates)})"
                                  ": give covariates=covariate_matrix(...)")
        z = np.zeros((n, 0)) if covariates is None else np.asarray(covariates, dtype=float)
        if d.diseases and disease is None:
            raise PredictionError("this model's slope depends on disease: give every patient a "
                                  "disease (CD or UC)")
        inputs = {"log_tl": log_tl - np.log(REFERENCE_TL_UG_ML), "z": z,
                  "month": _levels(month, d.months, "month", n)}
        if d.exposure:
            if log_gain is None:
                raise PredictionError("the exposure-driven model predicts from each patient's "
                                      "exposure gain: give log_gain (regimen_gain computes it)")
            inputs["log_gain"] = np.asarray(log_gain, dtype=float)
            inputs["log_gain_sd"] = np.asarray(log_gain_sd, dtype=float)
        else:
            inputs["strategy"] = _levels(strategy, d.strategies, "strategy", n)
        if disease is not None and d.diseases:
            inputs["disease"] = _levels(disease, d.diseases, "disease", n)
        if centre is not None and d.groups:
            inputs["group"] = _levels(centre, d.groups, "centre", n)
        eta, scale = self.log_odds(inputs, population="group" not in inputs)
        shape = (self.n_samples, n)
        return integrate_logistic(np.broadcast_to(eta, shape),
                                  scale if scale.ndim == 2 else scale[:, None])

    def log_odds(self, inputs: dict, *, population: bool) -> tuple[np.ndarray, np.ndarray]:
        """Log-odds per draw and row, and the SD per draw of the effects still to integrate.

        ``inputs`` holds the regressors and the integer level of each label, as
        :func:`pkmodel.response.terms.log_odds` takes them. At the population level
        (``population=True``) the centre effect is a new centre's: its expected intercept
        given ``alpha`` (:func:`pkmodel.response.structure.new_group_intercept`) and its
        variance, integrated with the patient's.
        """
        post = self.posterior
        values = {}
        for t in TERMS:
            if t.role == "log_odds" and t.name in post:
                v = post[t.name].values
                values[t.name] = v[:, None] if v.ndim == 1 else v
        variance = np.zeros(self.n_samples)
        if "sigma_patient" in post:
            variance = variance + post["sigma_patient"].values ** 2
        skip = ()
        if population and "a_group" in post:
            alpha = post["alpha"].values
            intercept, between = new_group_intercept(self.meta, alpha,
                                                     post["sigma_group"].values)
            values["alpha"] = intercept[:, None]
            variance = variance + between
            skip = ("a_group",)
        if "log_gain_sd" in inputs and np.any(inputs["log_gain_sd"]):
            variance = variance[:, None] + (values["b_gain"] * inputs["log_gain_sd"]) ** 2
        return log_odds(values, inputs, skip=skip), np.sqrt(variance)
