"""Which fitted intensification strategy a dosing regimen stands for, or a refusal.

The remission model was fitted on *strategies* (``dose_escalation``, ``interval_shortening``)
with the baseline trough as its exposure covariate; it has no term for the dose or the interval
within a strategy. A regimen is therefore predicted as the strategy it belongs to, decided in this
order:

1. ``strategy_map`` given by the user: ``{"7.5mg/kg q8w": "dose_escalation"}``. Stated, never
   silent; the strategy must be one the model was fitted on.
2. The fitted cohort records each patient's regimen (``dose_mg_kg`` and ``interval_weeks``): the
   regimen maps to the strategy under which exactly that regimen was given. A regimen that no
   patient of the fitted cohort received is refused (it would be an extrapolation).
3. The fitted cohort does not record regimens: by the change from standard maintenance (5 mg/kg
   q8w): a higher dose at the same interval is ``dose_escalation``, a shorter interval at the same
   dose is ``interval_shortening``. Anything else (both changed, less drug, no change) is refused.

Regimens that map to the same strategy get the same predicted remission; they differ only in
their predicted troughs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkmodel.errors import PredictionError, SpecificationError
from pkmodel.pk.regimens import Regimen, parse_regimen

__all__ = ["RegimenStrategy", "map_regimens"]


@dataclass(frozen=True)
class RegimenStrategy:
    """A regimen and the fitted strategy it is predicted as.

    Attributes
    ----------
    regimen : Regimen
        The intensified regimen.
    strategy : str
        The fitted strategy used for its remission prediction.
    basis : str
        Why: ``"explicit"`` (user's ``strategy_map``), ``"fitted cohort"`` (the regimen was given
        under that strategy in the fitted cohort) or ``"rule"`` (dose or interval change from
        standard maintenance).
    """

    regimen: Regimen
    strategy: str
    basis: str

    def to_dict(self) -> dict:
        """Plain-JSON description."""
        return {"regimen": self.regimen.label, "strategy": self.strategy, "basis": self.basis}


def _key(dose: float, interval: float) -> tuple[float, float]:
    return (round(float(dose), 6), round(float(interval), 6))


def _observed_regimens(cohort_data: pd.DataFrame | None) -> dict | None:
    """{(dose, interval): {strategy: n_patients}} of the fitted cohort, or None if unrecorded."""
    if cohort_data is None or not {"dose_mg_kg", "interval_weeks", "strategy"} <= set(
            cohort_data.columns):
        return None
    cols = ["dose_mg_kg", "interval_weeks", "strategy"]
    frame = cohort_data.drop_duplicates("patient_id") if "patient_id" in cohort_data else \
        cohort_data
    frame = frame[cols].dropna()
    if frame.empty:
        return None
    out: dict = {}
    for (dose, interval, strategy), n in frame.value_counts().items():
        out.setdefault(_key(dose, interval), {})[str(strategy)] = int(n)
    return out


def _describe(observed: dict) -> str:
    parts = []
    for (dose, interval), by in sorted(observed.items()):
        for strategy, n in sorted(by.items()):
            parts.append(f"{dose:g} mg/kg q{interval:g}w -> {strategy} ({n} patients)")
    return "; ".join(parts)


def map_regimens(regimens: Sequence[str | Regimen], strategies: Sequence[str], *,
                 baseline: Regimen, cohort_data: pd.DataFrame | None = None,
                 strategy_map: Mapping[str, str] | None = None) -> list[RegimenStrategy]:
    """Map each intensified regimen to a fitted strategy; refuse those that cannot be mapped.

    Parameters
    ----------
    regimens : sequence of str or Regimen
        The regimens to simulate (``"10mg/kg q8w"``...).
    strategies : sequence of str
        The strategies the remission model was fitted on.
    baseline : Regimen
        Standard maintenance, before intensification.
    cohort_data : pandas.DataFrame, optional
        The fitted cohort (``fit.cohort_data``); its ``dose_mg_kg`` and ``interval_weeks``
        columns, when present, define which regimen belongs to which strategy.
    strategy_map : mapping, optional
        Explicit ``{regimen: strategy}`` mappings, which take precedence.

    Raises
    ------
    PredictionError
        For a regimen that maps to no fitted strategy, with what the fitted cohort had and how
        to map it explicitly.
    """
    if isinstance(regimens, str | Regimen) or not len(regimens):
        raise SpecificationError("regimens must be a non-empty list, e.g. ['10mg/kg q8w', "
                                 "'5mg/kg q4w']")
    regs = [parse_regimen(r) for r in regimens]
    labels = [r.label for r in regs]
    if len(set(labels)) != len(labels):
        raise SpecificationError(f"regimens are repeated: {labels}")
    fitted = [str(s) for s in strategies]
    explicit: dict[str, str] = {}
    for text, strategy in dict(strategy_map or {}).items():
        label = parse_regimen(text).label
        if label not in labels:
            raise SpecificationError(f"strategy_map names {text!r}, which is not among the "
                                     f"regimens {labels}")
        if strategy not in fitted:
            raise PredictionError(f"strategy_map maps {text!r} to {strategy!r}, which the "
                                  f"remission model was not fitted on ({fitted})")
        explicit[label] = strategy
    observed = _observed_regimens(cohort_data)
    out = []
    for reg in regs:
        if reg.label in explicit:
            out.append(RegimenStrategy(reg, explicit[reg.label], "explicit"))
            continue
        how = (f"; to predict it as a fitted strategy anyway, say so: --map "
               f"'{reg.label}=<one of {fitted}>' (strategy_map= in Python; the model has no "
               "term for the dose or interval within a strategy)")
        same_dose = np.isclose(reg.dose_mg_kg, baseline.dose_mg_kg)
        same_interval = np.isclose(reg.interval_weeks, baseline.interval_weeks)
        if same_dose and same_interval:
            raise PredictionError(f"regimen {reg.label} is standard maintenance "
                                  f"({baseline.label}), not an intensification")
        if observed is not None:
            found = observed.get(_key(reg.dose_mg_kg, reg.interval_weeks), {})
            found = {s: n for s, n in found.items() if s in fitted}
            if len(found) == 1:
                out.append(RegimenStrategy(reg, next(iter(found)), "fitted cohort"))
                continue
            if len(found) > 1:
                raise PredictionError(
                    f"regimen {reg.label} was given under several strategies in the fitted "
                    f"cohort ({found}); choose one with --map '{reg.label}=STRATEGY' "
                    "(strategy_map= in Python)")
            raise PredictionError(
                f"regimen {reg.label} was not given to any patient of the fitted cohort, whose "
                f"regimens were: {_describe(observed)}. The remission model cannot say how it "
                "would do" + how)
        if reg.dose_mg_kg > baseline.dose_mg_kg and same_interval:
            rule = "dose_escalation"
        elif reg.interval_weeks < baseline.interval_weeks and same_dose:
            rule = "interval_shortening"
        else:
            raise PredictionError(
                f"regimen {reg.label} is neither a dose escalation (a higher dose every "
                f"{baseline.interval_weeks:g} weeks) nor an interval shortening "
                f"({baseline.dose_mg_kg:g} mg/kg more often) of {baseline.label}" + how)
        if rule not in fitted:
            raise PredictionError(f"regimen {reg.label} is a {rule}, which the remission model "
                                  f"was not fitted on ({fitted})" + how)
        out.append(RegimenStrategy(reg, rule, "rule"))
    return out
