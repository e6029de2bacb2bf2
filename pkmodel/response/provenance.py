"""Where a fit's data came from and which patients its curves describe.

Two questions every output of a fit must answer, whatever way the cohort was read:

* **origin**: whether the data are reconstructed (synthetic patients made to match published
  summary statistics) rather than patient data. It is read from the cohort's ``data_origin``
  column, which the saved fit keeps with the cohort table, and from the cohort notes (the note
  :func:`pkmodel.load_ungar2019` adds); reading the shipped CSV by its path gives the same answer
  as loading it by name.
* **population**: the exclusions applied on reading (antibodies to infliximab, a minimum baseline
  TL, assessments without a recorded remission), with counts, and what ``remission`` means.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["RECONSTRUCTED_WARNING", "REMISSION_MEANING", "data_origin", "fit_status",
           "population_facts"]

RECONSTRUCTED_WARNING = (
    "RECONSTRUCTED cohort: the fit's data are synthetic patients generated to match published "
    "summary statistics, not patient data; use these numbers to learn and test the method, "
    "never to draw clinical conclusions.")

REMISSION_MEANING = (
    "Remission is the cohort's remission column: 1 when the patient was in clinical remission at "
    "that assessment (months after intensification), 0 when not, as assessed and recorded by the "
    "data's source; pkmodel neither defines nor checks the clinical criterion. Each patient "
    "contributes one outcome per assessment month.")

_SYNTHETIC_WORDS = ("reconstructed", "synthetic", "simulated")


def _frame(fit) -> pd.DataFrame | None:
    frame = getattr(fit, "cohort_data", None)
    return frame if isinstance(frame, pd.DataFrame) else None


def data_origin(fit) -> dict:
    """Whether the fit's cohort is reconstructed, and why that is known.

    Parameters
    ----------
    fit : RemissionFit
        The fit (anything with ``cohort_notes`` and, optionally, ``cohort_data``).

    Returns
    -------
    dict
        ``reconstructed`` (bool); ``data_origin``: the distinct values of the cohort's
        ``data_origin`` column (empty when it has none); ``source``: ``"data_origin column"``,
        ``"cohort notes"``, both or neither; ``warning``: :data:`RECONSTRUCTED_WARNING` or
        ``None``.
    """
    frame = _frame(fit)
    origins: list[str] = []
    if frame is not None and "data_origin" in frame.columns:
        origins = sorted({str(v) for v in frame["data_origin"].dropna()})
    by_column = any(w in o.lower() for o in origins for w in _SYNTHETIC_WORDS)
    by_notes = any("reconstructed" in str(n).lower() for n in getattr(fit, "cohort_notes", ()))
    source = [name for name, hit in (("data_origin column", by_column),
                                     ("cohort notes", by_notes)) if hit]
    reconstructed = by_column or by_notes
    return {"reconstructed": reconstructed, "data_origin": origins, "source": source,
            "warning": RECONSTRUCTED_WARNING if reconstructed else None}


def fit_status(fit) -> dict:
    """The convergence verdict and the data's origin, for the JSON of any output of a fit.

    Returns
    -------
    dict
        ``convergence``: ``passed`` (bool), ``failed_checks`` (what failed, each with its
        remedy; empty when passed) and ``diagnostics`` (the numbers); ``data_origin``: as
        :func:`data_origin`; ``warnings``: the lines a reader must see (a reconstructed cohort,
        a failed fit).
    """
    diag = fit.diagnostics
    origin = data_origin(fit)
    warnings = []
    if origin["warning"]:
        warnings.append(origin["warning"])
    if not diag.converged:
        warnings.append("the fit FAILS its convergence checks: do not use its curves or "
                        "thresholds before fixing this (" + "; ".join(diag.problems()) + ")")
    return {"convergence": {"passed": bool(diag.converged), "failed_checks": diag.problems(),
                            "diagnostics": diag.to_dict()},
            "data_origin": origin, "warnings": warnings}


def _patients(frame: pd.DataFrame, mask: np.ndarray) -> int:
    return int(frame.loc[mask, "patient_id"].nunique())


def population_facts(fit) -> dict:
    """The population a fit's curves describe: exclusions with counts, fitted rows, TL range.

    Returns
    -------
    dict
        ``recorded`` (whether the fit recorded the exclusions applied on reading; fits saved
        before pkmodel did so have ``False``), ``n_patients_read``, ``n_rows_read``,
        ``exclude_ati_positive``, ``min_tl_ug_ml``, ``ati_positive_excluded``,
        ``tl_below_min_excluded`` (patients), ``missing_remission_rows``, ``n_patients``,
        ``n_rows``, ``n_ati_positive_fitted``, ``months``, ``strategies``, ``centres``,
        ``tl_min_ug_ml``, ``tl_max_ug_ml`` (observed, censored values at their limit),
        ``n_tl_above_limit``, ``n_tl_below_limit``, ``remission_by_month`` (month, assessed,
        remitters) and ``remission_meaning``.
    """
    frame = fit.cohort_data
    record = dict(getattr(fit, "cohort_population", None) or {})
    exclusions = dict(record.get("exclusions") or {})
    dropped = dict(record.get("dropped") or {})
    patients = frame.drop_duplicates("patient_id")
    cens = (patients["tl_cens"].to_numpy() if "tl_cens" in patients
            else np.zeros(len(patients), int))
    remission = (frame.groupby("month")["remission"].agg(["size", "sum"]).reset_index()
                 .rename(columns={"size": "assessed", "sum": "remitters"}))
    return {
        "recorded": bool(exclusions),
        "n_patients_read": exclusions.get("n_patients_read"),
        "n_rows_read": exclusions.get("n_rows_read"),
        "exclude_ati_positive": exclusions.get("exclude_ati_positive"),
        "min_tl_ug_ml": exclusions.get("min_tl_ug_ml"),
        "ati_positive_excluded": dropped.get("ati_positive_patients"),
        "tl_below_min_excluded": dropped.get("tl_below_min_patients"),
        "missing_remission_rows": dropped.get("missing_remission_rows"),
        "n_patients": int(frame["patient_id"].nunique()),
        "n_rows": len(frame),
        "n_ati_positive_fitted": _patients(frame, (frame["ati"] == 1).to_numpy())
        if "ati" in frame else 0,
        "months": [int(m) for m in sorted(frame["month"].unique())],
        "strategies": [str(s) for s in sorted(frame["strategy"].unique())],
        "centres": [str(c) for c in sorted(frame["center"].unique())],
        "tl_min_ug_ml": float(patients["baseline_tl"].min()),
        "tl_max_ug_ml": float(patients["baseline_tl"].max()),
        "n_tl_above_limit": int((cens == -1).sum()),
        "n_tl_below_limit": int((cens == 1).sum()),
        "remission_by_month": [{"month": int(r.month), "assessed": int(r.assessed),
                                "remitters": int(r.remitters)}
                               for r in remission.itertuples()],
        "remission_meaning": REMISSION_MEANING,
    }
