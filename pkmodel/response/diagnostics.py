"""Convergence checks of a remission fit: :mod:`pkmodel.diagnostics`, the one gate of every fit.

Kept here so that ``pkmodel.response.diagnostics`` goes on naming what it always named.
"""

from __future__ import annotations

from pkmodel.diagnostics import (
    BFMI_MIN,
    ESS_MIN,
    RHAT_MAX,
    TREEDEPTH_MAX_FRACTION,
    TUNE_MIN,
    Diagnostics,
    compute_diagnostics,
)

__all__ = ["BFMI_MIN", "ESS_MIN", "RHAT_MAX", "TREEDEPTH_MAX_FRACTION", "TUNE_MIN",
           "Diagnostics", "compute_diagnostics"]
