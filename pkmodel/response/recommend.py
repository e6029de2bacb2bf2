"""A per-patient recommendation: P(remission) under each candidate regimen, and a verdict.

For one patient (baseline trough, weight and the other covariates the models use) and each
candidate regimen, the posterior of the patient's probability of remission at each fitted month
(population level: a new patient at a new centre) and the forecast steady-state trough under
the regimen (the patient's individual PK posterior given their trough, under the fit's PK model).
A regimen *reaches* the target when ``P(p_remission >= p_min) >= credibility`` over the
posterior at the verdict's month; the verdict is the least intensive regimen that does (mg/kg
per week, then fewer infusions), or "intensification futile at these settings" when none does.

With the exposure-driven model each regimen is predicted from the exposure gain it brings this
patient. With the baseline-TL model a regimen is predicted as the fitted strategy it belongs to
(:mod:`pkmodel.response.strategies`), so regimens of one strategy share a prediction, and the
recommendation says so.

Without a trough (``tl_ug_ml=None``) the recommendation averages over the trough's predictive
distribution under the baseline regimen, and reports the *value of measuring it*: the
probability that a measured trough would change the verdict (:attr:`Recommendation.tdm`).
Every recommendation carries pkmodel.DISCLAIMER.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkmodel.disclaimer import DISCLAIMER
from pkmodel.errors import PredictionError
from pkmodel.pk.gain import log_gain_posterior
from pkmodel.pk.regimens import Regimen, parse_regimen
from pkmodel.pk.resolver import resolve_model
from pkmodel.pk.simulation import steady_state_trough
from pkmodel.response.exposure import GAIN_SEED, fitted_pk_model, pk_covariates
from pkmodel.sampling import resolve_seed
from pkmodel.validation import check_probability

__all__ = ["DEFAULT_REGIMENS", "Recommendation", "recommend"]

#: Candidate regimens when none are given.
DEFAULT_REGIMENS = ("10 mg/kg q8w", "5 mg/kg q6w", "5 mg/kg q4w", "10 mg/kg q4w")
#: Troughs drawn from their predictive distribution when none was measured.
TDM_DRAWS = 200
#: Posterior draws a recommendation uses (evenly spaced).
POSTERIOR_DRAWS = 1000
FUTILE = "intensification futile at these settings"


@dataclass(frozen=True)
class Recommendation:
    """The result of :func:`recommend`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per regimen and month: ``regimen``, ``month``, ``median``, ``lower``,
        ``upper`` (P(remission)), ``p_reach`` (posterior probability that P(remission) >=
        p_min), ``trough_ug_ml``, ``trough_lower``, ``trough_upper`` (forecast steady-state
        trough), ``predicted_as`` (the fitted strategy, baseline-TL model) and ``reaches``.
    verdict : str
        The least intensive regimen that reaches the target, or :data:`FUTILE`.
    settings : dict
        Everything the recommendation was computed with (patient values, stated reference
        values, thresholds, model kind).
    notes : tuple of str
        What the reader must know (shared predictions, extrapolation, skipped regimens).
    tdm : dict or None
        Without a measured trough: ``p_verdict_changes`` (probability that measuring the trough
        changes the verdict) and ``verdicts`` (the share of each verdict over the trough's
        predictive distribution).
    """

    table: pd.DataFrame
    verdict: str
    settings: dict
    notes: tuple[str, ...] = ()
    tdm: dict | None = None
    disclaimer: str = field(default=DISCLAIMER)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"verdict": self.verdict, "settings": self.settings, "notes": list(self.notes),
                "tdm": self.tdm, "regimens": self.table.to_dict(orient="records"),
                "disclaimer": self.disclaimer}


def _intensity(reg: Regimen) -> tuple[float, float]:
    return (reg.dose_mg_kg / reg.interval_weeks, -reg.interval_weeks)


def _verdict(reach: np.ndarray, order: list[int], labels: list[str], credibility: float) -> str:
    """The least intensive regimen whose P(reach) >= credibility (reach: (regimen,))."""
    for r in order:
        if reach[r] >= credibility:
            return labels[r]
    return FUTILE


def recommend(fit, *, tl_ug_ml: float | None, weight_kg: float,
              albumin_g_l: float | None = None, ati: int = 0,
              covariates: Mapping[str, object] | None = None,
              regimens: Sequence[str | Regimen] = DEFAULT_REGIMENS, p_min: float = 0.2,
              credibility: float = 0.9, month: int | None = None, ci_prob: float = 0.9,
              pk_model: str = "fasanmade2011", tl_cens: int = 0,
              random_seed: int | None = None) -> Recommendation:
    """Recommend a regimen for one patient; see the module docstring.

    Parameters
    ----------
    fit : RemissionFit
        A fitted remission model (either kind).
    tl_ug_ml : float or None
        The patient's trough on the baseline regimen, µg/mL (``tl_cens`` -1 for a value above
        an assay limit, 1 below); ``None`` when none was measured.
    weight_kg : float
        Body weight.
    albumin_g_l : float, optional
        Serum albumin, g/L; when left out, the fitted cohort's median (exposure model) or the
        PK model's reference value, stated in ``settings``.
    ati : {0, 1}
        Antibodies to infliximab.
    covariates : mapping, optional
        Values of the remission model's own covariates (and other PK cohort columns, e.g.
        ``immunomodulator``); those left out take the stated reference values.
    regimens : sequence of str or Regimen
        Candidates.
    p_min, credibility : float
        The target: ``P(p_remission >= p_min) >= credibility``.
    month : int, optional
        The month the verdict is judged at; default the last fitted month.
    ci_prob : float
        Width of the credible intervals.
    pk_model : str
        The PK model of the trough forecasts for a baseline-TL fit (an exposure fit uses its
        own).
    tl_cens : {0, -1, 1}
        0 for a measured trough, -1 when ``tl_ug_ml`` is an upper assay limit it was above, 1
        a lower limit it was below.
    random_seed : int, optional
        Seed of the troughs drawn when none was measured.
    """
    from pkmodel.response.strategies import map_regimens

    for name, value in (("p_min", p_min), ("credibility", credibility), ("ci_prob", ci_prob)):
        check_probability(name, value, error=PredictionError)
    if tl_cens not in (-1, 0, 1):
        raise PredictionError(f"tl_cens must be 0 (measured), -1 (above the limit) or 1 (below "
                              f"it), not {tl_cens!r}")
    meta = fit.meta
    exposure = meta.get("exposure") or {}
    months = [int(m) for m in meta["months"]]
    month = months[-1] if month is None else int(month)
    if month not in months:
        raise PredictionError(f"month {month} was not fitted; the fit has {months}")
    regs = [parse_regimen(r) for r in regimens]
    if not regs:
        raise PredictionError("give at least one candidate regimen")
    labels = [r.label for r in regs]
    if len(set(labels)) != len(labels):
        raise PredictionError(f"regimens are repeated: {labels}")
    baseline = parse_regimen(exposure.get("baseline_regimen", "5 mg/kg q8w"))
    model = fitted_pk_model(exposure) if exposure else resolve_model(pk_model)
    notes: list[str] = []

    # --- the patient's PK columns, with stated reference values for those left out
    given = {"weight_kg": weight_kg, "albumin_g_l": albumin_g_l, "ati": ati,
             **dict(covariates or {})}
    reference = dict(exposure.get("reference_columns") or {})
    stated = {}
    for column in ("albumin_g_l", "immunomodulator", "sex"):
        if given.get(column) is None and column in reference:
            given[column] = reference[column]
            stated[column] = reference[column]
    pk_cov = pk_covariates(model, {k: np.atleast_1d(v) for k, v in given.items()
                                   if v is not None})
    left = [c for c in model.covariates_used if c not in pk_cov]
    for c in left:
        stated[c] = float(model.reference_covariates[c])
    # --- troughs: the measured one, or draws from its predictive distribution
    rng = np.random.default_rng(resolve_seed(random_seed))
    measured = tl_ug_ml is not None
    if measured:
        tl = np.array([float(tl_ug_ml)])
        if not np.isfinite(tl[0]) or tl[0] <= 0:
            raise PredictionError(f"tl_ug_ml must be a positive trough in µg/mL, not {tl_ug_ml}")
    else:
        eta = model.sample_eta((TDM_DRAWS,), rng)
        params = model.individual_parameters({k: v[0] for k, v in pk_cov.items()}, eta)
        pred = steady_state_trough(params, baseline.dose_mg_kg * float(weight_kg),
                                   baseline.interval_days, baseline.infusion_days)
        sd = np.sqrt(model.additive_sd_ug_ml**2 + (model.proportional_sd * pred) ** 2)
        tl = np.maximum(pred + sd * rng.standard_normal(TDM_DRAWS), 0.05)
    n_tl = tl.size
    lo_fit, hi_fit = meta["tl_range_ug_ml"]
    outside = float(np.mean((tl < lo_fit) | (tl > hi_fit)))
    if outside > 0:
        notes.append(f"{outside:.0%} of the troughs considered lie outside the fitted range "
                     f"{lo_fit:g}-{hi_fit:g} µg/mL: the model extrapolates there")

    # --- per regimen: gains and trough forecasts (rows: regimen x trough)
    rows_tl = np.tile(tl, len(regs))
    rows_reg = np.repeat(np.arange(len(regs)), n_tl)
    cens = np.full(rows_tl.size, int(tl_cens) if measured else 0)
    cov_rows = {k: np.broadcast_to(v, (rows_tl.size,)) for k, v in pk_cov.items()}
    gain = log_gain_posterior(model, rows_tl, cens, cov_rows,
                              np.array([regs[r].dose_mg_kg for r in rows_reg]),
                              np.array([regs[r].interval_weeks for r in rows_reg]),
                              baseline=baseline, random_seed=GAIN_SEED)
    predictor = fit.predictor(POSTERIOR_DRAWS)
    z = predictor.covariate_matrix({k: [v] for k, v in given.items()}, ["patient"]) \
        if predictor.design.encodings else None
    predicted_as = [""] * len(regs)
    if exposure:
        lo_g, hi_g = exposure["log_gain_range"]
        far = sorted({labels[r] for r, g in zip(rows_reg, gain.mean, strict=True)
                      if not lo_g <= g <= hi_g})
        if far:
            notes.append(f"the exposure gain of {', '.join(far)} for this patient lies outside "
                         f"the fitted range ({np.exp(lo_g):.2f}-{np.exp(hi_g):.2f} x): the "
                         "model extrapolates")
    else:
        for r, reg in enumerate(regs):
            try:
                predicted_as[r] = map_regimens([reg], meta["strategies"], baseline=baseline,
                                               cohort_data=fit.cohort_data)[0].strategy
            except PredictionError as exc:
                notes.append(f"{reg.label} skipped: {exc}")
        shared = {s for s in predicted_as if s and predicted_as.count(s) > 1}
        for k in sorted(shared):
            same = [lab for lab, s in zip(labels, predicted_as, strict=True) if s == k]
            notes.append(f"{', '.join(same)} share the prediction of {k}: this model predicts "
                         "remission from the strategy, not the regimen (fit the "
                         "exposure-driven model to tell them apart)")
    usable = [r for r in range(len(regs)) if exposure or predicted_as[r]]
    if not usable:
        raise PredictionError("no candidate regimen can be predicted by this fit: "
                              + "; ".join(notes))

    # --- P(remission): (sample, regimen, trough) per month
    q = [(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2]
    z_rows = None if z is None else np.broadcast_to(z, (rows_tl.size, z.shape[1]))
    p = {}
    kw = ({"log_gain": gain.mean, "log_gain_sd": gain.sd} if exposure else {})
    strategy = np.array([predicted_as[r] or meta["strategies"][0] for r in rows_reg])
    for m in months:
        p[m] = predictor.p_remission(np.log(rows_tl), strategy, m, covariates=z_rows,
                                     disease=None if not predictor.design.diseases else
                                     np.full(rows_tl.size, given.get("disease")),
                                     **kw).reshape(predictor.n_samples, len(regs), n_tl)
    # averaged over the trough's distribution when it was not measured
    pm = {m: v.mean(axis=2) for m, v in p.items()}
    order = sorted(usable, key=lambda r: _intensity(regs[r]))
    reach = (pm[month] >= p_min).mean(axis=0)
    verdict = _verdict(reach, order, labels, credibility)
    table = []
    after = np.exp(gain.log_after_mean.reshape(len(regs), n_tl))
    for r in usable:
        t_lo, t_med, t_hi = (np.quantile(after[r], q) if not measured else np.exp(
            gain.log_after_mean[r] + np.array([-1, 0, 1]) * gain.log_after_sd[r]
            * _z(ci_prob)))
        for m in months:
            lo, med, hi = np.quantile(pm[m][:, r], q)
            table.append({"regimen": labels[r], "month": m, "median": med, "lower": lo,
                          "upper": hi, "p_reach": float((pm[m][:, r] >= p_min).mean()),
                          "trough_ug_ml": float(t_med), "trough_lower": float(t_lo),
                          "trough_upper": float(t_hi), "predicted_as": predicted_as[r],
                          "reaches": bool((pm[m][:, r] >= p_min).mean() >= credibility)})
    tdm = None
    if not measured:
        each = (p[month] >= p_min).mean(axis=0)  # (regimen, trough): P(reach | that trough)
        verdicts = [_verdict(each[:, k], order, labels, credibility) for k in range(n_tl)]
        shares = pd.Series(verdicts).value_counts(normalize=True)
        tdm = {"p_verdict_changes": float(np.mean([v != verdict for v in verdicts])),
               "verdicts": {k: float(v) for k, v in shares.items()},
               "trough_draws": n_tl,
               "trough_median_ug_ml": float(np.median(tl))}
    settings = {"model_kind": fit.model_kind, "tl_ug_ml": tl_ug_ml, "tl_cens": int(tl_cens),
                "weight_kg": float(weight_kg), "albumin_g_l": given.get("albumin_g_l"),
                "ati": int(ati), "stated_reference_values": stated, "p_min": p_min,
                "credibility": credibility, "month": month, "ci_prob": ci_prob,
                "pk_model": model.name, "baseline_regimen": baseline.label,
                "posterior_draws": predictor.n_samples, "level": "population"}
    return Recommendation(table=pd.DataFrame(table), verdict=verdict, settings=settings,
                          notes=tuple(notes), tdm=tdm)


def _z(ci_prob: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf((1 + ci_prob) / 2))
