"""The canonical cohort format: one row per patient per assessment.

This module is the single source of truth for the columns pkmodel understands, their units and
allowed values; ``data/README.md`` and the docs describe the same table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BASELINE_COLUMNS",
    "CATEGORICAL_COVARIATES",
    "COLUMNS",
    "NUMERIC_COVARIATES",
    "REQUIRED_COLUMNS",
    "Column",
]


@dataclass(frozen=True)
class Column:
    """One column of the canonical cohort table.

    Parameters
    ----------
    name : str
        Column name.
    kind : {"id", "category", "int", "binary", "positive", "nonnegative", "cens"}
        How values are parsed and checked.
    required : bool
        Whether the column must be present.
    per_patient : bool
        Whether the value is a baseline property that must agree across a patient's rows.
    unit : str
        Unit, empty when dimensionless.
    allowed : tuple of str
        Allowed values for categorical columns (after normalisation); empty means any label.
    description : str
        What the column holds.
    """

    name: str
    kind: str
    required: bool
    per_patient: bool
    unit: str = ""
    allowed: tuple[str, ...] = ()
    description: str = ""


COLUMNS: dict[str, Column] = {
    c.name: c
    for c in (
        Column("patient_id", "id", True, True, description="patient identifier, any text"),
        Column("center", "category", True, True, description="treating centre, any label"),
        Column(
            "month", "int", True, False, "months",
            description="assessment time after intensification, a positive whole number",
        ),
        Column("remission", "binary", True, False, description="clinical remission: 1 yes, 0 no"),
        Column(
            "baseline_tl", "positive", True, True, "µg/mL",
            description="infliximab trough level before intensification; '>16' or '<0.4' allowed",
        ),
        Column(
            "tl_cens", "cens", False, True,
            description="0 observed, 1 below a lower limit, -1 above an upper limit (Monolix CENS);"
            " for censored rows baseline_tl holds the limit. Derived from '>16'/'<0.4' if absent",
        ),
        Column(
            "ati", "binary", True, True, description="antibodies to infliximab: 1 positive, 0 not"
        ),
        Column(
            "strategy", "category", True, True,
            description="intensification strategy, e.g. dose_escalation, interval_shortening",
        ),
        Column("disease", "category", False, True, allowed=("CD", "UC"), description="CD or UC"),
        Column("weight_kg", "positive", False, True, "kg", description="body weight"),
        Column("albumin_g_l", "positive", False, True, "g/L", description="serum albumin"),
        Column("crp_mg_l", "nonnegative", False, True, "mg/L", description="C-reactive protein"),
        Column("sex", "category", False, True, allowed=("F", "M"), description="F or M"),
        Column(
            "immunomodulator", "binary", False, True,
            description="concomitant thiopurine or methotrexate: 1 yes, 0 no",
        ),
        Column(
            "dose_mg_kg", "positive", False, True, "mg/kg",
            description="infliximab dose after intensification",
        ),
        Column(
            "interval_weeks", "positive", False, True, "weeks",
            description="dosing interval after intensification",
        ),
    )
}

REQUIRED_COLUMNS = tuple(name for name, c in COLUMNS.items() if c.required)
BASELINE_COLUMNS = tuple(name for name, c in COLUMNS.items() if c.per_patient)
NUMERIC_COVARIATES = ("weight_kg", "albumin_g_l", "crp_mg_l", "dose_mg_kg", "interval_weeks")
CATEGORICAL_COVARIATES = ("disease", "sex", "immunomodulator")
