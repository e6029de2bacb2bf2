"""The remission model's terms: one description that everything else reads.

Each :class:`Term` says what a parameter is called in the posterior, how it enters the linear
predictor (which label indexes it, which regressor it multiplies), which fields of
:class:`~pkmodel.response.priors.Priors` set its prior, the prior written out with the actual
scales, and the reason for that prior. From this table come

- the log-odds in the PyMC model (:mod:`pkmodel.response.build`), from posterior draws
  (:class:`pkmodel.RemissionPredictor`, and so curves, predictions and scenarios) and in the
  simulator of cohorts with known truth (:mod:`pkmodel.response.simulation`): all three call
  :func:`log_odds`;
- the list of population-level parameters (:data:`POPULATION_PARAMETERS`), the report's prior
  table and the prior table of ``docs/model.md`` (:func:`prior_rows`).

Adding a term to the log-odds means one entry here (and, if its values are new, a regressor in
the callers' ``inputs`` and the PyMC variable in ``build``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from pkmodel.priors import Prior
from pkmodel.response.priors import Priors

__all__ = ["POPULATION_PARAMETERS", "TERMS", "Term", "log_odds", "prior_of", "prior_rows", "term"]

#: Where a term acts: ``"log_odds"`` enters the linear predictor; ``"random"`` is the scale of
#: a random effect integrated out of the predictions; ``"tl"`` belongs to the population model of
#: baseline TL (for censored values); ``"form"`` is another parametrisation of a log-odds term
#: (its prior is stated, the predictor uses the term it builds).
ROLES = ("log_odds", "random", "tl", "form")


@dataclass(frozen=True)
class Term:
    """One parameter of the remission model.

    Attributes
    ----------
    name : str
        The variable in the posterior (and in the PyMC model).
    role : str
        One of :data:`ROLES`.
    prior : callable
        ``prior(priors, structure) -> Prior``: the prior with the fit's scales, e.g.
        ``Prior("Normal", mu=0, sigma=1.5)``, which the PyMC model is built from
        (:func:`prior_of`) and the prior tables are written from; ``structure`` is the fit's
        structure dict (or empty).
    fields : tuple of str
        The fields of :class:`Priors` that set it.
    reason : str
        Why this prior.
    by : str or None
        The label that indexes the coefficient (``"strategy"``, ``"month"``, ``"disease"``,
        ``"group"``); ``None`` for one coefficient shared by all.
    regressor : str or None
        What it multiplies: ``"log_tl"`` (log TL - log 5), ``"log_gain"`` (log exposure gain),
        ``"z"`` (the covariate matrix, a dot product) or ``None`` (1).
    contrast : bool
        The posterior holds only the levels after the first (dim ``<by>_contrast``); the first
        level is 0.
    population : bool
        A population-level parameter (summarised, reported); the centre effects are not.
    """

    name: str
    role: str
    prior: Callable[[Priors, Mapping], Prior]
    fields: tuple[str, ...]
    reason: str
    by: str | None = None
    regressor: str | None = None
    contrast: bool = False
    population: bool = True


def _alpha_prior(p: Priors, structure: Mapping) -> Prior:
    from pkmodel.response.structure import GROUP_PARAMETRISATION

    if structure.get("group_effects") == GROUP_PARAMETRISATION:  # mean of the fitted centres
        return Prior("Normal", mu=p.intercept_mu,
                     sigma=(f"sqrt({p.intercept_sd:g}^2 + sigma_group^2 / "
                            f"{structure.get('n_groups', 'J')})"))
    return Prior("Normal", mu=p.intercept_mu, sigma=p.intercept_sd)


def _group_sd_prior(p: Priors, structure: Mapping) -> Prior:
    from pkmodel.response.structure import group_sd_prior

    return group_sd_prior(p)[0]


def _normal(mu: str | None, sd: str) -> Callable[[Priors, Mapping], Prior]:
    """``Normal(priors.<mu> or 0, priors.<sd>)``."""
    return lambda p, s: Prior("Normal", mu=getattr(p, mu) if mu else 0.0, sigma=getattr(p, sd))


def _scale(family: str, sd: str) -> Callable[[Priors, Mapping], Prior]:
    """``<family>(priors.<sd>)`` for a one-scale family (HalfNormal, ZeroSumNormal)."""
    return lambda p, s: Prior(family, sigma=getattr(p, sd))


_SLOPE_OFFSETS = (
    "deviation from the common TL slope; strategies (and diseases) are expected to share most "
    "of it. Two or three of them are too few to learn a between-group SD, so the scale is "
    "fixed: the offsets are regularised contrasts that sum to zero, not a hierarchy")
_CONTRASTS = ("pool_slopes=False: unregularised treatment contrasts against the first level, "
              "with the prior of the slope itself")

TERMS: tuple[Term, ...] = (
    Term("alpha", "log_odds", _alpha_prior, ("intercept_mu", "intercept_sd"),
         "log-odds at TL 5 µg/mL (averaged over the fitted centres): 95% of the prior "
         "probability of remission between about 5% and 95%, nearly flat on the probability "
         "scale, without piling mass at 0 and 1; with centres it adds the prior variance of "
         "the mean of J centre effects"),
    Term("beta", "log_odds", _normal("slope_mu", "slope_sd"),
         ("slope_mu", "slope_sd"),
         "log-odds per unit of log TL, centred on no effect so that the data decide the sign; "
         "a doubling of TL changing the odds more than about 8-fold (beta beyond ±3) gets "
         "under 5% prior mass", regressor="log_tl"),
    Term("b_base", "log_odds", _normal("slope_mu", "slope_sd"),
         ("slope_mu", "slope_sd"),
         "exposure-driven model: log-odds per unit of log baseline TL at a given exposure gain, "
         "with the prior of beta; negative when patients who already had high troughs respond "
         "less to more drug (a mechanism other than low exposure)", regressor="log_tl"),
    Term("b_gain", "log_odds", _normal("gain_mu", "gain_sd"),
         ("gain_mu", "gain_sd"),
         "exposure-driven model: log-odds per unit of log exposure gain (trough after over "
         "before); centred on no effect, so that whether more exposure helps is learnt, with the "
         "scale of the TL slope: a doubling of the trough changing the odds more than about "
         "8-fold gets under 5% prior mass", regressor="log_gain"),
    Term("b_slope_strategy", "log_odds",
         _scale("ZeroSumNormal", "slope_group_sd"), ("slope_group_sd",),
         f"each strategy's {_SLOPE_OFFSETS}", by="strategy", regressor="log_tl"),
    Term("delta_strategy", "log_odds", _normal(None, "strategy_sd"),
         ("strategy_sd",),
         "difference between strategies at TL 5 µg/mL; odds ratios beyond about 7 are unlikely "
         "for two ways of giving more of the same drug", by="strategy", contrast=True),
    Term("b_slope_disease", "log_odds",
         _scale("ZeroSumNormal", "slope_group_sd"), ("slope_group_sd",),
         f"each disease's {_SLOPE_OFFSETS}", by="disease", regressor="log_tl"),
    Term("tau_month", "log_odds", _normal(None, "month_sd"), ("month_sd",),
         "change in log-odds between assessment months, modest a priori", by="month",
         contrast=True),
    Term("gamma", "log_odds", _normal(None, "covariate_sd"), ("covariate_sd",),
         "per SD of a numeric covariate (or per contrast): odds ratios mostly within 0.14-7",
         regressor="z"),
    Term("a_group", "log_odds", lambda p, s: Prior("ZeroSumNormal", sigma="sigma_group"), (),
         "each fitted centre's deviation from the mean intercept of the fitted centres "
         "(zero-sum: an exact rewriting of iid Normal(0, sigma_group) centre effects, without "
         "the ridge between the intercept and the centre effects)", by="group",
         population=False),
    Term("b_slope_strategy_contrast", "form", _normal(None, "slope_sd"),
         ("slope_sd",), _CONTRASTS),
    Term("b_slope_disease_contrast", "form", _normal(None, "slope_sd"),
         ("slope_sd",), _CONTRASTS),
    Term("sigma_group", "random", _group_sd_prior, ("group_sd",),
         "between-centre SD of the log-odds; with few centres the data barely inform it (the "
         "fit says so), so the prior says centres differ by an odds factor of about 2 at most, "
         "as in multicentre IBD cohorts, and that they differ somewhat: its density falls to 0 "
         "at 0 (mean 0.4 and median 0.34 as a HalfNormal(0.5)), which keeps the hierarchy "
         "sampleable when many patients per centre pin the centre effects"),
    Term("sigma_patient", "random", _scale("HalfNormal", "patient_sd"),
         ("patient_sd",),
         "between-patient SD linking a patient's assessments (e.g. 6- and 12-month outcomes); "
         "allows strong within-patient correlation without forcing it"),
    Term("mu_tl", "tl", _normal("log_tl_mu", "log_tl_sd"),
         ("log_tl_mu", "log_tl_sd"),
         "population mean of log baseline TL (log µg/mL) for censored values; centred on "
         "log 6 µg/mL, typical of troughs in patients who lose response"),
    Term("sigma_tl", "tl", _scale("HalfNormal", "log_tl_spread_sd"),
         ("log_tl_spread_sd",), "population SD of log TL; troughs vary about 2-3 fold"),
)

_BY_NAME = {t.name: t for t in TERMS}

#: Population-level parameters, in the order summaries list them (and, last, the SDs of slope
#: offsets that fits saved by version 0.1 estimated).
POPULATION_PARAMETERS: tuple[str, ...] = (
    *(t.name for t in TERMS if t.population and t.role != "form"),
    "sigma_slope", "sigma_slope_disease",
)


def term(name: str) -> Term:
    """The term called ``name``."""
    return _BY_NAME[name]


def prior_of(name: str, priors: Priors, structure: Mapping | None = None) -> Prior:
    """The prior of the term ``name`` with these scales: what the PyMC model builds and the
    prior table writes."""
    return _BY_NAME[name].prior(priors, structure or {})


def _take(values, index):
    """``values[..., index]`` for NumPy arrays and PyTensor tensors alike."""
    if isinstance(values, np.ndarray):
        return np.take(values, index, axis=-1)
    import pytensor.tensor as pt

    return pt.take(values, index, axis=-1)


def _dot(coef, z):
    """``coef . z`` per row: (..., covariate) against (row, covariate) gives (..., row)."""
    if isinstance(coef, np.ndarray):
        return coef @ np.asarray(z).T
    import pytensor.tensor as pt

    return pt.dot(z, coef)


def full_levels(values, t: Term):
    """A contrast term's values over all its levels: 0 for the first, then the contrasts."""
    if not t.contrast:
        return values
    if isinstance(values, np.ndarray):
        return np.concatenate([np.zeros((*values.shape[:-1], 1)), values], axis=-1)
    import pytensor.tensor as pt

    return pt.concatenate([pt.zeros(1), values])


def log_odds(values: Mapping[str, object], inputs: Mapping[str, object], *,
             skip: tuple[str, ...] = ()) -> object:
    """The linear predictor: the sum of every log-odds term present in ``values``.

    Parameters
    ----------
    values : mapping of str to array or tensor
        Each term's coefficients, by name, over the term's levels on the last axis (contrast
        terms as stored, without their first level). Scalars per draw have no level axis. Leading
        axes (posterior draws) broadcast: give them a trailing axis of length 1 so that they
        broadcast against the rows.
    inputs : mapping of str to array
        For each label a term is indexed ``by``, the integer level of every row; for each
        regressor, its value per row (``"z"``: the covariate matrix, (row, covariate)).
    skip : tuple of str
        Terms to leave out (e.g. the centre effects, at the population level).

    Returns
    -------
    array or tensor
        The log-odds per row, broadcast over the leading axes of ``values``.
    """
    eta = 0.0
    for t in TERMS:
        if t.role != "log_odds" or t.name in skip or t.name not in values:
            continue
        coef = full_levels(values[t.name], t)
        if t.regressor == "z":
            z = inputs["z"]
            if z.shape[-1] == 0:
                continue
            eta = eta + _dot(coef, z)
            continue
        if t.by is not None:
            coef = _take(coef, inputs[t.by])
        if t.regressor is not None:
            coef = coef * inputs[t.regressor]
        eta = eta + coef
    return eta


def prior_rows(priors: Priors, structure: Mapping | None = None,
               present: set[str] | None = None) -> list[dict]:
    """The prior table: ``parameter``, ``prior`` (actual scales), ``fields``, ``reason``.

    Only the parameters in ``present`` when it is given (those of a fit's posterior).
    """
    structure = structure or {}
    return [{"parameter": t.name, "prior": str(t.prior(priors, structure)),
             "fields": ", ".join(t.fields), "reason": t.reason}
            for t in TERMS if present is None or t.name in present]
