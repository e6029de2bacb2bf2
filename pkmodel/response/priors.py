"""Default priors of the remission model, each with the reason for it.

Every prior is on the logit scale of P(remission) unless said otherwise. The families are fixed;
their scales are the fields of :class:`Priors` and every one can be overridden (each prior's
family and reason are stated with its term, :mod:`pkmodel.response.terms`)::

    RemissionModel(priors={"slope_sd": 1.0})
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pkmodel.errors import SpecificationError

__all__ = ["Priors"]


@dataclass(frozen=True)
class Priors:
    """Scales of the remission model's priors.

    Attributes
    ----------
    intercept_mu, intercept_sd : float
        ``alpha ~ Normal(intercept_mu, intercept_sd)``: log-odds of remission at TL = 5 µg/mL for
        the reference strategy, month and covariate profile.
    slope_mu, slope_sd : float
        ``beta ~ Normal(slope_mu, slope_sd)``: common change in log-odds per unit of log TL.
    slope_group_sd : float
        ``b_slope_strategy ~ ZeroSumNormal(slope_group_sd)``: the fixed scale of the strategy
        (and, with ``slope_by="disease"``, disease) offsets of the TL slope around the common
        slope ``beta``; they sum to zero, so ``beta`` is the mean slope over strategies.
    gain_mu, gain_sd : float
        ``b_gain ~ Normal(gain_mu, gain_sd)`` (exposure-driven model): change in log-odds per
        unit of log exposure gain. There ``b_base`` takes the prior of ``beta``.
    strategy_sd : float
        ``delta_s ~ Normal(0, strategy_sd)`` for each non-reference strategy.
    month_sd : float
        ``tau_m ~ Normal(0, month_sd)`` for each assessment month after the first.
    covariate_sd : float
        ``gamma_k ~ Normal(0, covariate_sd)`` per standardised numeric covariate or contrast.
    group_sd : float
        ``sigma_group ~ Gamma(2, 2.5 / group_sd)``: between-centre SD of the log-odds;
        ``Gamma(2, 5)`` by default, with the mean and median of a ``HalfNormal(0.5)`` but no
        mass piled at zero.
    patient_sd : float
        ``sigma_patient ~ HalfNormal(patient_sd)``: between-patient SD linking repeated
        assessments of one patient.
    log_tl_mu, log_tl_sd : float
        ``mu_tl ~ Normal(log_tl_mu, log_tl_sd)``: population mean of log baseline TL (log µg/mL);
        the default centre is log 6 µg/mL.
    log_tl_spread_sd : float
        ``sigma_tl ~ HalfNormal(log_tl_spread_sd)``: population SD of log baseline TL.
    """

    intercept_mu: float = 0.0
    intercept_sd: float = 1.5
    slope_mu: float = 0.0
    slope_sd: float = 1.5
    slope_group_sd: float = 0.5
    gain_mu: float = 0.0
    gain_sd: float = 1.5
    strategy_sd: float = 1.0
    month_sd: float = 1.0
    covariate_sd: float = 1.0
    group_sd: float = 0.5
    patient_sd: float = 1.0
    log_tl_mu: float = 1.79
    log_tl_sd: float = 1.0
    log_tl_spread_sd: float = 1.0

    @classmethod
    def from_any(cls, value: Priors | dict | None) -> Priors:
        """Build from ``None`` (defaults), a dict of overrides or a Priors."""
        if value is None:
            return cls()
        if isinstance(value, Priors):
            return value
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise SpecificationError(
                    f"unknown prior(s) {unknown}; the priors are {sorted(known)}"
                )
            try:
                values = {k: float(v) for k, v in value.items()}
            except (TypeError, ValueError):
                raise SpecificationError("prior scales must be numbers") from None
            return cls(**values)
        raise SpecificationError(f"priors must be a dict or Priors, not {type(value).__name__}")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int | float) or v != v or abs(v) == float("inf"):
                raise SpecificationError(f"prior {f.name} must be a finite number, not {v!r}")
            if (f.name.endswith("_sd")) and v <= 0:
                raise SpecificationError(f"prior {f.name} is a scale and must be > 0, not {v}")
