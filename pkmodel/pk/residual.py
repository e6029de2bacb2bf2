"""The residual error of a PK model: normal on the concentration scale.

``sd = sqrt(additive^2 + (proportional * prediction)^2)`` (combined), or one of the two terms
alone. One function, :func:`residual_sd`, for the published models, individual estimation and
the population model (NumPy or PyTensor through ``xp``).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

__all__ = ["RESIDUAL_ERRORS", "residual_sd"]

#: Residual error models (normal on the concentration scale).
RESIDUAL_ERRORS = ("additive", "proportional", "combined")


def residual_sd(error: str, pred, proportional=0.0, additive=0.0, xp: ModuleType = np):
    """The residual SD (µg/mL) at predictions ``pred`` (µg/mL).

    Parameters
    ----------
    error : {"additive", "proportional", "combined"}
        Which terms the SD has.
    pred : array
        Predicted concentrations.
    proportional : float or array
        The proportional SD, a fraction of the prediction (unused by ``additive``).
    additive : float or array
        The additive SD, µg/mL (unused by ``proportional``).
    xp : module, default numpy
        The array namespace (``sqrt``).
    """
    if error == "additive":
        return additive + 0.0 * pred
    if error == "proportional":
        return proportional * pred
    return xp.sqrt(additive**2 + (proportional * pred) ** 2)
