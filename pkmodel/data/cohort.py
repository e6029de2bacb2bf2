"""The validated exposure-response cohort and its descriptive summary."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkmodel.data.schema import BASELINE_COLUMNS, COLUMNS

__all__ = ["Cohort", "CohortSummary"]


@dataclass(frozen=True)
class CohortSummary:
    """What :meth:`Cohort.describe` reports.

    Attributes
    ----------
    counts : pandas.DataFrame
        Patients per centre x strategy x month.
    remission : pandas.DataFrame
        Per month: assessed patients, remitters, remission rate.
    tl_by_outcome : pandas.DataFrame
        Per month and outcome: n, median, Q1, Q3 of baseline TL (µg/mL) and how many are
        censored above the assay limit (counted at the limit for the quantiles).
    dropped : dict
        Rows and patients removed on reading, by reason.
    """

    name: str
    n_patients: int
    counts: pd.DataFrame
    remission: pd.DataFrame
    tl_by_outcome: pd.DataFrame
    dropped: dict[str, int]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Plain-JSON form (lists of records)."""
        return {
            "name": self.name,
            "n_patients": self.n_patients,
            "counts": self.counts.to_dict(orient="records"),
            "remission": self.remission.to_dict(orient="records"),
            "tl_by_outcome": self.tl_by_outcome.to_dict(orient="records"),
            "dropped": dict(self.dropped),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [f"Cohort {self.name}: {self.n_patients} patients"]
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(
            "  dropped on reading: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                 for k, v in self.dropped.items())
        )
        fmt = {"float_format": lambda v: f"{v:.3g}"}
        lines += ["", "Patients per centre, strategy and month",
                  self.counts.to_string(index=False)]
        lines += ["", "Remission by month", self.remission.to_string(index=False, **fmt)]
        lines += ["", "Baseline TL (µg/mL) by month and outcome (values above the assay limit"
                  " counted at the limit)", self.tl_by_outcome.to_string(index=False, **fmt)]
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class Cohort:
    """A validated cohort in the canonical tidy format (one row per patient per assessment).

    Build it with :func:`pkmodel.read_cohort` or :func:`pkmodel.load_ungar2019`, not directly.

    Attributes
    ----------
    data : pandas.DataFrame
        The canonical table (see ``data/README.md``), sorted by patient and month.
    source : str
        The file it was read from, or ``"<DataFrame>"``.
    name : str
        A short name for reports.
    dropped : dict
        Counts of rows/patients dropped on reading, by reason.
    exclusions : dict
        The exclusion rules applied on reading (``exclude_ati_positive``, ``min_tl_ug_ml``) and
        how many patients and assessments were read before them (``n_patients_read``,
        ``n_rows_read``); empty for a cohort not built by :func:`pkmodel.read_cohort`.
    """

    data: pd.DataFrame
    source: str
    name: str
    dropped: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    exclusions: dict = field(default_factory=dict)

    @classmethod
    def _from_validated(cls, tidy: pd.DataFrame, *, source: str, name: str,
                        dropped: dict[str, int], notes: tuple[str, ...] = (),
                        exclusions: dict | None = None) -> Cohort:
        known = [c for c in COLUMNS if c in tidy.columns]
        extra = [c for c in tidy.columns if c not in COLUMNS and c != "_position"]
        data = tidy[known + extra].sort_values(["patient_id", "month"], kind="stable")
        data = data.reset_index(drop=True)
        return cls(data=data, source=source, name=name, dropped=dict(dropped), notes=notes,
                   exclusions=dict(exclusions or {}))

    # ------------------------------------------------------------------ views
    @property
    def n_patients(self) -> int:
        """Number of distinct patients."""
        return int(self.data["patient_id"].nunique())

    @property
    def months(self) -> tuple[int, ...]:
        """Assessment months present, ascending."""
        return tuple(int(m) for m in sorted(self.data["month"].unique()))

    @property
    def centers(self) -> tuple[str, ...]:
        """Centre labels, sorted."""
        return tuple(sorted(self.data["center"].unique()))

    @property
    def strategies(self) -> tuple[str, ...]:
        """Intensification strategies, sorted."""
        return tuple(sorted(self.data["strategy"].unique()))

    @property
    def patients(self) -> pd.DataFrame:
        """One row per patient with the baseline columns."""
        cols = [c for c in BASELINE_COLUMNS if c in self.data.columns]
        return self.data.drop_duplicates("patient_id")[cols].reset_index(drop=True)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical table, to tie a saved fit to the data it was fitted on."""
        text = self.data.to_csv(index=False, lineterminator="\n", float_format="%.10g")
        return hashlib.sha256(text.encode()).hexdigest()

    def tl_at_limit(self) -> np.ndarray:
        """Baseline TL per row with censored values at their limit (for classical statistics)."""
        return self.data["baseline_tl"].to_numpy(dtype=float)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return (f"Cohort(name={self.name!r}, patients={self.n_patients}, rows={len(self)}, "
                f"months={list(self.months)}, centers={list(self.centers)})")

    # -------------------------------------------------------------- summary
    def describe(self) -> CohortSummary:
        """Counts, remission rates and TL distributions by outcome.

        Returns
        -------
        CohortSummary
            Printable (``print(summary)``) and JSON-ready (``summary.to_dict()``).
        """
        d = self.data
        counts = (
            d.groupby(["center", "strategy", "month"]).size().rename("patients").reset_index()
        )
        remission = d.groupby("month").agg(
            assessed=("remission", "size"), remitters=("remission", "sum")
        ).reset_index()
        remission["remission_rate"] = remission["remitters"] / remission["assessed"]
        rows = []
        for (month, outcome), g in d.groupby(["month", "remission"]):
            tl = g["baseline_tl"].to_numpy(dtype=float)
            q1, med, q3 = np.quantile(tl, [0.25, 0.5, 0.75])
            rows.append({
                "month": int(month),
                "outcome": "remission" if outcome == 1 else "active",
                "n": len(tl),
                "tl_median_ug_ml": float(med),
                "tl_q1_ug_ml": float(q1),
                "tl_q3_ug_ml": float(q3),
                "n_above_limit": int((g["tl_cens"] == -1).sum()),
                "n_below_limit": int((g["tl_cens"] == 1).sum()),
            })
        tl_by_outcome = pd.DataFrame(rows)
        for frame in (counts, remission):
            for c in ("month", "patients", "assessed", "remitters"):
                if c in frame:
                    frame[c] = frame[c].astype(int)
        return CohortSummary(
            name=self.name, n_patients=self.n_patients, counts=counts, remission=remission,
            tl_by_outcome=tl_by_outcome, dropped=dict(self.dropped), notes=self.notes,
        )
