"""Turning a cohort into the index arrays and covariate matrix the remission model needs.

Every index is checked here, before it reaches PyMC: with PyTensor's Numba backend an out-of-range
group index silently returns garbage instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkmodel.data.cohort import Cohort
from pkmodel.errors import CohortError, PredictionError, SpecificationError

__all__ = ["CovariateEncoding", "Design", "build_design", "check_index"]

REFERENCE_TL_UG_ML = 5.0


def check_index(idx: np.ndarray, n_levels: int, what: str) -> np.ndarray:
    """Return ``idx`` as int64 after checking 0 <= idx < n_levels (raise otherwise)."""
    idx = np.asarray(idx)
    if idx.size and (idx.min() < 0 or idx.max() >= n_levels):
        raise PredictionError(
            f"{what} index out of range 0..{n_levels - 1}: {idx.min()}..{idx.max()}")
    return idx.astype(np.int64)


@dataclass(frozen=True)
class CovariateEncoding:
    """How one named covariate becomes columns of Z.

    Numeric covariates are standardised with the fitted cohort's mean and SD (0/1 indicators are
    left as they are); categorical ones become treatment contrasts against the first level
    (sorted).
    """

    name: str
    kind: str  # "numeric" or "categorical"
    mean: float = 0.0
    sd: float = 1.0
    levels: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        if self.kind == "numeric":
            return (self.name,)
        return tuple(f"{self.name}[{lvl}]" for lvl in self.levels[1:])

    def encode(self, values: pd.Series, source: str, rows: np.ndarray) -> np.ndarray:
        """Encode a patient-level column; missing or unknown values raise, naming the row."""
        missing = values.isna().to_numpy()
        if missing.any():
            i = int(np.argmax(missing))
            raise CohortError(
                f"covariate {self.name!r} is missing for patient {rows[i]!r}", source=source,
                column=self.name,
                fix="fill it in, or fit without this covariate (missing covariates are never "
                "dropped or imputed silently)",
            )
        if self.kind == "numeric":
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(x)
            if bad.any():
                i = int(np.argmax(bad))
                raise CohortError(f"covariate {self.name!r} is not a number for patient "
                                  f"{rows[i]!r}: {values.iloc[i]!r}", source=source,
                                  column=self.name, fix="write a plain number")
            return ((x - self.mean) / self.sd)[:, None]
        text = values.astype(str).to_numpy()
        unknown = ~np.isin(text, self.levels)
        if unknown.any():
            i = int(np.argmax(unknown))
            raise PredictionError(
                f"covariate {self.name!r} has value {text[i]!r} for patient {rows[i]!r}, which "
                f"the model was not fitted on; known values: {list(self.levels)}"
            )
        return (text[:, None] == np.asarray(self.levels[1:])[None, :]).astype(float)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "mean": self.mean, "sd": self.sd,
                "levels": list(self.levels)}

    @classmethod
    def from_dict(cls, d: dict) -> CovariateEncoding:
        return cls(d["name"], d["kind"], float(d["mean"]), float(d["sd"]), tuple(d["levels"]))


@dataclass(frozen=True)
class Design:
    """Arrays for the remission model (rows are patient x assessment; patients are unique)."""

    patient_ids: tuple[str, ...]
    groups: tuple[str, ...]
    months: tuple[int, ...]
    strategies: tuple[str, ...]
    diseases: tuple[str, ...]
    encodings: tuple[CovariateEncoding, ...]
    # per row
    row_patient: np.ndarray
    row_month: np.ndarray
    remission: np.ndarray
    # per patient
    patient_group: np.ndarray
    patient_strategy: np.ndarray
    patient_disease: np.ndarray
    log_tl: np.ndarray  # log of value or limit, log µg/mL
    tl_cens: np.ndarray  # 0 observed, 1 below limit, -1 above limit
    z: np.ndarray  # patient x covariate column
    tl_range_ug_ml: tuple[float, float]
    # exposure-driven model: posterior mean and SD of each patient's log exposure gain (empty
    # otherwise), and what the fit records of how they were computed
    log_gain: np.ndarray = field(default_factory=lambda: np.zeros(0))
    log_gain_sd: np.ndarray = field(default_factory=lambda: np.zeros(0))
    exposure: dict = field(default_factory=dict)

    @property
    def covariate_columns(self) -> tuple[str, ...]:
        return tuple(c for e in self.encodings for c in e.columns)

    @property
    def n_patients(self) -> int:
        return len(self.patient_ids)

    def metadata(self) -> dict:
        """What prediction needs besides the posterior, JSON-ready."""
        return {
            "patient_ids": list(self.patient_ids), "groups": list(self.groups),
            "months": list(self.months), "strategies": list(self.strategies),
            "diseases": list(self.diseases),
            "encodings": [e.to_dict() for e in self.encodings],
            "tl_range_ug_ml": list(self.tl_range_ug_ml),
            **({"exposure": self.exposure} if self.exposure else {}),
        }


def _encoding(name: str, column: pd.Series, source: str) -> CovariateEncoding:
    values = column.dropna()
    numeric = pd.api.types.is_numeric_dtype(column)
    if numeric and set(np.unique(values.to_numpy(dtype=float))) == {0.0, 1.0}:
        # a 0/1 indicator enters as is: its coefficient is the log odds ratio of 1 vs 0
        return CovariateEncoding(name, "numeric", 0.0, 1.0)
    if numeric:
        x = values.to_numpy(dtype=float)
        sd = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
        if not np.isfinite(sd) or sd == 0:
            raise SpecificationError(
                f"covariate {name!r} is constant in the cohort ({source}); it cannot be estimated"
                " — drop it from covariates"
            )
        return CovariateEncoding(name, "numeric", float(np.mean(x)), sd)
    levels = tuple(sorted(values.astype(str).unique()))
    if len(levels) < 2:
        raise SpecificationError(
            f"covariate {name!r} has a single value in the cohort ({source}); drop it from "
            "covariates"
        )
    return CovariateEncoding(name, "categorical", levels=levels)


def build_design(cohort: Cohort, covariates: tuple[str, ...], group: str,
                 slope_by: str | None, exposure=None) -> Design:
    """Index arrays, outcome and covariate matrix for ``cohort`` under a specification.

    With ``exposure`` (:class:`pkmodel.response.exposure.Exposure`) the "strategies" are the
    regimens given (``"10 mg/kg q8w"``...) and each patient's log exposure gain is computed.
    """
    d = cohort.data
    for name in (*covariates, group, *(["disease"] if slope_by == "disease" else [])):
        if name not in d.columns:
            raise SpecificationError(
                f"column {name!r} is not in the cohort ({cohort.source}); available: "
                f"{sorted(d.columns)}"
            )
    patients = d.drop_duplicates("patient_id").reset_index(drop=True)
    ids = tuple(patients["patient_id"].astype(str))
    pid_index = {p: i for i, p in enumerate(ids)}
    groups = tuple(sorted(patients[group].astype(str).unique()))
    months = tuple(int(m) for m in sorted(d["month"].unique()))
    strategies = tuple(sorted(patients["strategy"].unique()))
    if slope_by == "disease":
        if patients["disease"].isna().any():
            pid = patients.loc[patients["disease"].isna(), "patient_id"].iloc[0]
            raise CohortError(f"disease is missing for patient {pid!r}", source=cohort.source,
                              column="disease",
                              fix="fill it in (CD or UC) to use slope_by='disease'")
        diseases = tuple(sorted(patients["disease"].unique()))
        disease_idx = np.searchsorted(diseases, patients["disease"].to_numpy())
    else:
        diseases = ()
        disease_idx = np.zeros(len(patients), dtype=np.int64)
    encodings = tuple(_encoding(c, patients[c], cohort.source) for c in covariates)
    rows = patients["patient_id"].to_numpy()
    z = (np.concatenate([e.encode(patients[e.name], cohort.source, rows) for e in encodings],
                        axis=1) if encodings else np.zeros((len(patients), 0)))
    tl = patients["baseline_tl"].to_numpy(dtype=float)
    tl_cens = patients["tl_cens"].to_numpy(dtype=np.int64)
    gain = {}
    if exposure is not None:
        from pkmodel.response.exposure import exposure_inputs

        excluded = sum(v for k, v in cohort.dropped.items() if k.endswith("_patients"))
        inputs = exposure_inputs(patients, np.log(tl), tl_cens, exposure, cohort.source,
                                 excluded)
        patients = patients.assign(strategy=inputs.regimen)
        strategies = tuple(sorted(set(inputs.regimen)))
        gain = {"log_gain": inputs.gain.mean, "log_gain_sd": inputs.gain.sd,
                "exposure": inputs.meta}
    return Design(
        patient_ids=ids, groups=groups, months=months, strategies=strategies, diseases=diseases,
        encodings=encodings,
        row_patient=check_index(d["patient_id"].astype(str).map(pid_index).to_numpy(),
                                len(ids), "patient"),
        row_month=check_index(np.searchsorted(months, d["month"].to_numpy()), len(months), "month"),
        remission=d["remission"].to_numpy(dtype=np.int64),
        patient_group=check_index(np.searchsorted(groups, patients[group].astype(str).to_numpy()),
                                  len(groups), group),
        patient_strategy=check_index(
            np.searchsorted(strategies, patients["strategy"].to_numpy()), len(strategies),
            "strategy"),
        patient_disease=check_index(disease_idx, max(len(diseases), 1), "disease"),
        log_tl=np.log(tl),
        tl_cens=tl_cens,
        z=z,
        tl_range_ug_ml=(float(tl.min()), float(tl.max())),
        **gain,
    )
