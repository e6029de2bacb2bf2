"""Cohort data: schema, validation, readers, shipped datasets and the classical analysis."""

from pkmodel.data.classical import ClassicalResult, classical_analysis
from pkmodel.data.cohort import Cohort, CohortSummary
from pkmodel.data.datasets import UNGAR2019_NOTE, ShippedDataset, load_ungar2019, theophylline
from pkmodel.data.readers import read_cohort
from pkmodel.data.schema import COLUMNS, Column
from pkmodel.data.separation import (
    ConstantOutcome,
    Separation,
    constant_outcomes,
    tl_separation,
)

__all__ = [
    "COLUMNS",
    "UNGAR2019_NOTE",
    "ClassicalResult",
    "Cohort",
    "CohortSummary",
    "Column",
    "ConstantOutcome",
    "Separation",
    "ShippedDataset",
    "classical_analysis",
    "constant_outcomes",
    "load_ungar2019",
    "read_cohort",
    "theophylline",
    "tl_separation",
]
