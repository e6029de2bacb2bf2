"""Plausible ranges of patient values, one definition for every layer.

The cohort reader (:mod:`pkmodel.data.plausibility`, cohort units), the population tables of the
scenarios and the PK models (:data:`pkmodel.pk.models.COVARIATES`, PK units) all check against
these numbers, so that a value accepted in one place is not refused in another. Values outside
them are refused with the unit slip they point to.
"""

from __future__ import annotations

__all__ = ["ALBUMIN_G_DL", "TL_MAX_UG_ML", "WEIGHT_KG"]

#: Body weight, kg: from a small child to severe obesity.
WEIGHT_KG = (10.0, 300.0)

#: Serum albumin, g/dL (10 times these in g/L): below 1 and above 7 are not compatible with life
#: or are a unit slip (g/L written as g/dL, or the reverse).
ALBUMIN_G_DL = (1.0, 7.0)

#: The largest credible infliximab trough, µg/mL. Maintenance troughs are a few µg/mL, intensified
#: ones rarely above 30-50; assays report the top of their range as ``>16`` or so. A trough in
#: ng/mL is 1000 times its value in µg/mL (5 µg/mL = 5000 ng/mL).
TL_MAX_UG_ML = 100.0
