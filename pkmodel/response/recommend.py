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

What is known of the trough decides how it enters, as in the fitted model:

- **measured** (``tl_cens=0``): the value itself;
- **beyond an assay limit** (``tl_cens=-1`` above, ``1`` below): the true trough is latent, with
  the fitted population of log troughs (``mu_tl``, ``sigma_tl``, per posterior draw) truncated at
  the limit as its distribution; each draw's P(remission) is the expectation over it
  (:data:`LATENT_NODES`-point Gauss-Legendre quadrature in probability). A trough ``>16`` is not
  16: the exposure gain's posterior sees the censoring too;
- **not measured** (``tl_ug_ml=None``): P(remission) averages over the trough's predictive
  distribution under the baseline regimen (the PK model with the patient's covariates, its
  between-subject variability and residual error), the forecast troughs are the PK model's
  predictive distribution under each regimen, and the *value of measuring it* is reported: the
  probability that a measured trough would change the verdict, from :data:`TDM_DRAWS` troughs
  drawn from that distribution, with its Monte Carlo standard error
  (:attr:`Recommendation.tdm`).

With a **TDM history** (``history=``: the patient's doses with their times and rates, their
troughs with BLQ / above-limit flags and covariates over time, a NONMEM-format dataset as
:func:`pkmodel.pk.read_nonmem` reads it) the patient's PK posterior is computed from every trough
under the actual doses (:func:`pkmodel.pk.estimate_individual`, the same posterior as ``pkmodel
pk forecast``), not from one trough assumed at steady state; the exposure gains and the forecast
troughs come from that posterior (:func:`pkmodel.pk.gain.history_log_gain`). The baseline trough
the remission model sees is the history's **last trough** (its value, or its limit when it was
below or above one) unless ``tl_ug_ml`` is given; the history's covariates (at its last record)
feed the PK posterior, those given as arguments take precedence over them, and the remission
model's own covariates come from the arguments. The gain keeps its fitted definition: the
steady-state trough under each regimen over that under the fit's baseline regimen, so a history
on another regimen is noted.

Every recommendation carries pkmodel.DISCLAIMER.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from pkmodel.data.plausibility import check_plausible
from pkmodel.disclaimer import DISCLAIMER
from pkmodel.errors import PKDataError, PredictionError
from pkmodel.pk.covariate_registry import COVARIATES
from pkmodel.pk.gain import (
    GAIN_DRAWS,
    history_log_gain,
    patient_log_gain,
    patient_troughs,
    sample_effects,
)
from pkmodel.pk.regimens import Regimen, parse_regimen
from pkmodel.pk.resolver import resolve_model
from pkmodel.response.exposure import GAIN_SEED, fitted_pk_model, pk_covariates
from pkmodel.sampling import resolve_seed
from pkmodel.validation import check_probability

__all__ = ["DEFAULT_REGIMENS", "FUTILE", "LATENT_NODES", "POSTERIOR_DRAWS", "TDM_DRAWS",
           "Recommendation", "read_history", "recommend", "recommendation_pk_model"]

#: Candidate regimens when none are given.
DEFAULT_REGIMENS = ("10 mg/kg q8w", "5 mg/kg q6w", "5 mg/kg q4w", "10 mg/kg q4w")
#: Troughs drawn from their predictive distribution when none was measured: the Monte Carlo
#: standard error of the value of a measurement is at most 0.5 / sqrt(TDM_DRAWS) = 0.008.
TDM_DRAWS = 4000
#: Log-spaced troughs at which P(remission) is computed for the drawn troughs, which
#: interpolate it linearly in log TL (P(remission) is smooth in log TL; the interpolation error
#: is far below the Monte Carlo error).
TL_GRID = 64
#: Nodes of the quadrature over a latent trough beyond an assay limit.
LATENT_NODES = 32
#: Posterior draws a recommendation uses (evenly spaced).
POSTERIOR_DRAWS = 1000
FUTILE = "intensification futile at these settings"

_UNIT_QUANTILES = np.polynomial.legendre.leggauss(LATENT_NODES)
_NODES_U = (_UNIT_QUANTILES[0] + 1.0) / 2.0  # in (0, 1)
_WEIGHTS_U = _UNIT_QUANTILES[1] / 2.0


@dataclass(frozen=True)
class Recommendation:
    """The result of :func:`recommend`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per regimen and month: ``regimen``, ``month``, ``median``, ``lower``,
        ``upper`` (P(remission)), ``p_reach`` (posterior probability that P(remission) >=
        p_min), ``trough_ug_ml``, ``trough_lower``, ``trough_upper`` (the forecast steady-state
        trough under the regimen, without residual error: the median and ``ci_prob`` interval
        of its posterior given the trough, or of its predictive distribution without one),
        ``predicted_as`` (the fitted strategy, baseline-TL model) and ``reaches``.
    verdict : str
        The least intensive regimen that reaches the target, or :data:`FUTILE`.
    settings : dict
        Everything the recommendation was computed with (patient values, stated reference
        values, thresholds, model kind).
    notes : tuple of str
        What the reader must know (shared predictions, extrapolation, skipped regimens, a
        latent trough).
    tdm : dict or None
        Without a measured trough: ``p_verdict_changes`` (probability that measuring the trough
        changes the verdict), ``p_verdict_changes_se`` (its Monte Carlo standard error),
        ``verdicts`` (the share of each verdict over the trough's predictive distribution),
        ``trough_draws`` and ``trough_median_ug_ml``.
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


def _verdicts(reach: np.ndarray, order: list[int], labels: list[str],
              credibility: float) -> list[str]:
    """The least intensive regimen whose P(reach) >= credibility, per column of ``reach``
    (regimen, case)."""
    out = np.full(reach.shape[1], FUTILE, dtype=object)
    open_ = np.ones(reach.shape[1], dtype=bool)
    for r in order:
        hit = open_ & (reach[r] >= credibility)
        out[hit] = labels[r]
        open_ &= ~hit
    return list(out)


def latent_log_tl(mu: np.ndarray, sigma: np.ndarray, log_limit: float,
                  code: int) -> np.ndarray:
    """Quadrature nodes of a latent log trough beyond an assay limit, per posterior draw.

    The log trough is ``Normal(mu, sigma)`` (the fitted population's, per draw) truncated above
    the limit (``code`` -1) or below it (``code`` 1); the nodes are its quantiles at the
    Gauss-Legendre points of (0, 1), which carry the weights ``_WEIGHTS_U``. Shape
    (draws, :data:`LATENT_NODES`).
    """
    mu, sigma = np.asarray(mu, dtype=float)[:, None], np.asarray(sigma, dtype=float)[:, None]
    a = (log_limit - mu) / sigma
    if code == -1:  # above: the upper tail, through the survival function (no cancellation)
        z = -ndtri(_NODES_U * ndtr(-a))
    else:
        z = ndtri(_NODES_U * ndtr(a))
    return mu + sigma * z


def _check_patient(tl_ug_ml, tl_cens, weight_kg, albumin_g_l, ati, covariates, fit) -> dict:
    """Refuse implausible or unknown patient values before any work; the covariates to use."""
    if tl_cens not in (-1, 0, 1):
        raise PredictionError(f"tl_cens must be 0 (measured), -1 (above the limit) or 1 (below "
                              f"it), not {tl_cens!r}")
    if tl_ug_ml is not None:
        check_plausible("tl_ug_ml", "baseline_tl", tl_ug_ml, error=PredictionError)
    elif tl_cens != 0:
        raise PredictionError("tl_cens says the trough was beyond an assay limit: give that "
                              "limit as tl_ug_ml")
    check_plausible("weight_kg", "weight_kg", weight_kg, error=PredictionError)
    if albumin_g_l is not None:
        check_plausible("albumin_g_l", "albumin_g_l", albumin_g_l, error=PredictionError)
    if ati not in (0, 1) or isinstance(ati, bool):
        raise PredictionError(f"ati must be 0 (no antibodies to infliximab) or 1, not {ati!r}")
    from pkmodel.response.predictor import DesignInfo

    given = dict(covariates or {})
    design = DesignInfo.from_meta(fit.meta)
    pk_columns = {spec["cohort"] for spec in COVARIATES.values() if spec["cohort"]}
    own = {"weight_kg": "weight_kg", "albumin_g_l": "albumin_g_l", "ati": "ati"}
    known = (set(design.covariates) | (pk_columns - set(own))
             | ({"disease"} if design.diseases else set()))
    for name, value in given.items():
        if name in own:
            raise PredictionError(f"covariate {name!r} has its own argument: give "
                                  f"{own[name]}=... (on the command line --weight, "
                                  "--albumin-g-l, --ati)")
        if name not in known:
            raise PredictionError(
                f"covariate {name!r} is not used by this fit or its PK model; the ones it "
                f"uses are {', '.join(sorted(known))} (on the command line: --covariate "
                "NAME=VALUE with one of these names)")
        if name == "sex" and name not in design.covariates:
            if str(value).strip().upper() not in ("F", "M"):
                raise PredictionError(f"covariate sex must be F or M, not {value!r}")
            given[name] = str(value).strip().upper()
        elif name == "immunomodulator" and name not in design.covariates:
            if value not in (0, 1, 0.0, 1.0) or isinstance(value, bool):
                raise PredictionError(f"covariate immunomodulator must be 0 (no) or 1 (yes), "
                                      f"not {value!r}")
    return given


def recommendation_pk_model(fit, pk_model: str = "fasanmade2011"):
    """The PK model a recommendation from ``fit`` uses: an exposure fit's own, else
    ``pk_model``."""
    exposure = fit.meta.get("exposure") or {}
    return fitted_pk_model(exposure) if exposure else resolve_model(pk_model)


def read_history(source, fit, *, pk_model: str = "fasanmade2011", time_unit: str = "day",
                 sep: str = ","):
    """A TDM history (NONMEM format) read for a recommendation from ``fit``: with the covariates
    its PK model declares (:func:`pkmodel.pk.read_nonmem`).

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        The dataset.
    fit : RemissionFit
        The fit the recommendation uses.
    pk_model : str
        The PK model of a baseline-TL fit (an exposure fit uses its own).
    time_unit : {"day", "hour", "week"}
        Unit of ``TIME``.
    sep : str
        Field delimiter.

    Returns
    -------
    PKDataset
    """
    from pkmodel.response.histories import read_histories

    return read_histories(source, recommendation_pk_model(fit, pk_model), time_unit=time_unit,
                          sep=sep)


def _history_subject(history, history_id, model):
    """The patient of a TDM history (a PKSubject, a PKDataset, or a file / DataFrame read with
    the PK model's covariates), refused when it names no single patient or has no trough."""
    from pkmodel.pk.nonmem import PKSubject
    from pkmodel.response.histories import read_histories

    if isinstance(history, PKSubject):
        if history_id is not None and str(history_id) != history.id:
            raise PredictionError(f"history_id {history_id!r} is not the history's patient "
                                  f"{history.id!r}")
        subject, source, notes = history, "<history>", ()
    else:
        data = read_histories(history, model)
        source, notes = data.source, data.notes
        if history_id is None and len(data) > 1:
            raise PKDataError(f"the history has {len(data)} patients", source=source,
                              column="ID", fix=f"choose one with history_id= (--history-id): "
                              f"{', '.join(data.ids[:10])}")
        subject = data[history_id if history_id is not None else data.ids[0]]
    if subject.observations is None:
        raise PKDataError(f"patient {subject.id!r} has no trough (an observation row: EVID 0, "
                          "MDV 0)", source=source, column="DV",
                          fix="add the measured troughs, or leave out the history and give "
                          "tl_ug_ml")
    return subject, source, notes


def _history_estimate(model, subject, explicit_pk: Mapping[str, float],
                      fallback: Mapping[str, float], seed: int):
    """The patient's PK posterior given every trough of their history: the covariates the
    arguments give (``explicit_pk``) take precedence over the history's, which take precedence
    over ``fallback`` (the stated values a recommendation without a history would use)."""
    from pkmodel.pk.estimation import estimate_individual
    from pkmodel.response.histories import estimate_covariates

    return estimate_individual(model, estimate_covariates(subject, fallback, explicit_pk),
                               subject.schedule, subject.observations, method="map",
                               draws=GAIN_DRAWS, random_seed=seed)


def _p_remission(predictor, log_tl, gain_mean, gain_sd, strategies, month, z, disease,
                 exposure: bool) -> np.ndarray:
    """P(remission) per draw, regimen and trough point: (sample, regimen, point).

    ``log_tl`` has shape (point,) or (sample, point); ``gain_mean``, ``gain_sd`` (point,
    regimen).
    """
    n_reg, n_pt = len(strategies), log_tl.shape[-1]
    rows = n_reg * n_pt  # regimen-major: row r * n_pt + j
    lt = np.tile(log_tl, n_reg) if log_tl.ndim == 1 else np.tile(log_tl, (1, n_reg))
    kw = ({"log_gain": gain_mean.T.reshape(-1), "log_gain_sd": gain_sd.T.reshape(-1)}
          if exposure else {})
    p = predictor.p_remission(
        lt, np.repeat(np.asarray(strategies), n_pt), month,
        covariates=None if z is None else np.broadcast_to(z, (rows, z.shape[1])),
        disease=None if disease is None else np.full(rows, disease), **kw)
    return p.reshape(predictor.n_samples, n_reg, n_pt)


def recommend(fit, *, tl_ug_ml: float | None = None, weight_kg: float | None = None,
              albumin_g_l: float | None = None, ati: int | None = None,
              covariates: Mapping[str, object] | None = None,
              regimens: Sequence[str | Regimen] = DEFAULT_REGIMENS, p_min: float = 0.2,
              credibility: float = 0.9, month: int | None = None, ci_prob: float = 0.9,
              pk_model: str = "fasanmade2011", tl_cens: int = 0,
              tdm_draws: int = TDM_DRAWS, random_seed: int | None = None,
              history=None, history_id: str | None = None) -> Recommendation:
    """Recommend a regimen for one patient; see the module docstring.

    Parameters
    ----------
    fit : RemissionFit
        A fitted remission model (either kind).
    tl_ug_ml : float or None
        The patient's trough on the baseline regimen, µg/mL (with ``tl_cens`` -1 the upper
        assay limit it was above, 1 the lower limit it was below); ``None`` when none was
        measured (with a ``history``: its last trough).
    weight_kg : float, optional
        Body weight, kg; required unless the ``history`` has a ``WT`` column (then its last
        record's weight).
    albumin_g_l : float, optional
        Serum albumin, g/L; when left out, the fitted cohort's median (exposure model) or the
        PK model's reference value, stated in ``settings``.
    ati : {0, 1}, optional
        Antibodies to infliximab (default 0, or the ``history``'s ``ATI``).
    covariates : mapping, optional
        Values of the remission model's own covariates (and other PK cohort columns, e.g.
        ``immunomodulator``, ``sex``); those left out take the stated reference values. A name
        that neither model uses is an error.
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
    tdm_draws : int
        Troughs drawn from their predictive distribution when none was measured (at least 100).
    random_seed : int, optional
        Seed of the troughs drawn when none was measured.
    history : PKSubject, PKDataset, str, path or pandas.DataFrame, optional
        The patient's TDM history in NONMEM format (``ID, TIME, AMT, RATE, DV, EVID, MDV``, BLQ
        flags, covariate columns; TIME in days since the first dose; see
        :func:`pkmodel.pk.read_nonmem`); a ``PKSubject`` or ``PKDataset`` read with other
        options (``time_unit=...``).
    history_id : str, optional
        The patient's ``ID`` in a history of several patients.

    Raises
    ------
    PredictionError
        For an option out of range, an implausible patient value (a trough in ng/mL, a weight
        in pounds, albumin in g/dL), a covariate the models do not use, or regimens this fit
        cannot predict; before any computation.
    PKDataError
        For a history that cannot be read (with its row and column: a trough before the first
        dose, say), names several patients without ``history_id``, or has no trough.
    """
    from pkmodel.response.strategies import map_regimens

    for name, value in (("p_min", p_min), ("credibility", credibility), ("ci_prob", ci_prob)):
        check_probability(name, value, error=PredictionError)
    if isinstance(tdm_draws, bool) or not isinstance(tdm_draws, int) or tdm_draws < 100:
        raise PredictionError(f"tdm_draws must be a whole number of at least 100, not "
                              f"{tdm_draws!r}")
    meta = fit.meta
    exposure = meta.get("exposure") or {}
    model = recommendation_pk_model(fit, pk_model)
    subject = None
    if history is not None:
        subject, history_source, history_notes = _history_subject(history, history_id, model)
        obs = subject.observations
        last = int(np.argmax(obs.times_days))
        tl_from_history = tl_ug_ml is None
        if tl_from_history:
            tl_ug_ml, tl_cens = float(obs.values_ug_ml[last]), int(obs.cens[last])
        last_record = (subject.covariate_history.last() if subject.covariate_history
                       is not None else subject.covariates)
        explicit_weight = weight_kg is not None
        if not explicit_weight:
            weight_kg = last_record.get("weight_kg")
        if ati is None and "ati" in last_record:
            ati = int(last_record["ati"])
    elif history_id is not None:
        raise PredictionError("history_id= names a patient of a history: give history= too")
    if weight_kg is None:
        raise PredictionError("give the patient's weight_kg (on the command line --weight)"
                              + (", or a WT column in the history" if history is not None
                                 else ""))
    explicit_ati = ati is not None
    ati = 0 if ati is None else ati
    given_cov = _check_patient(tl_ug_ml, tl_cens, weight_kg, albumin_g_l, ati, covariates, fit)
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
    notes: list[str] = []
    if exposure.get("population_uncertainty"):
        notes.append(f"the fit pools {exposure['population_uncertainty']['n_draws']} draws of "
                     f"the PK population; this recommendation computes the patient's exposure "
                     f"gains under its central model {model.name} only (the remission "
                     "parameters' draws are pooled)")

    # --- the patient's PK columns, with stated reference values for those left out
    given = {"weight_kg": weight_kg, "albumin_g_l": albumin_g_l, "ati": ati, **given_cov}
    reference = dict(exposure.get("reference_columns") or {})
    stated = {}
    for column in ("albumin_g_l", "immunomodulator", "sex"):
        if given.get(column) is None and column in reference:
            given[column] = reference[column]
            stated[column] = reference[column]
    pk_cov = {k: float(v[0]) for k, v in pk_covariates(
        model, {k: np.atleast_1d(v) for k, v in given.items() if v is not None}).items()}
    for c in model.covariates_used:
        if c not in pk_cov:
            stated[c] = float(model.reference_covariates[c])
    predictor = fit.predictor(POSTERIOR_DRAWS)
    design_covariates = set(predictor.design.covariates)
    z = predictor.covariate_matrix({k: [v] for k, v in given.items()}, ["patient"]) \
        if predictor.design.encodings else None

    # --- which fitted strategy each regimen is predicted as (baseline-TL model)
    predicted_as = [""] * len(regs)
    if not exposure:
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
    strategy = [predicted_as[r] or meta["strategies"][0] for r in range(len(regs))]
    disease = given.get("disease") if predictor.design.diseases else None
    order = sorted(usable, key=lambda r: _intensity(regs[r]))
    lo_fit, hi_fit = meta["tl_range_ug_ml"]

    def p_at(log_tl, gain, m):
        n = log_tl.shape[-1]
        mean, sd = (np.broadcast_to(x, (n, len(regs))) for x in (gain.mean, gain.sd))
        return _p_remission(predictor, log_tl, mean, sd, strategy, m, z, disease,
                            bool(exposure))

    history_gain = None
    settings_extra: dict = {}
    if subject is not None:
        # the arguments' PK covariates take precedence over the history's
        explicit = {"weight_kg": weight_kg if explicit_weight else None,
                    "albumin_g_l": albumin_g_l, **({"ati": ati} if explicit_ati else {}),
                    **given_cov}
        explicit_pk = {k: float(v[0]) for k, v in pk_covariates(
            model, {k: np.atleast_1d(v) for k, v in explicit.items() if v is not None}).items()}
        # what the history gives is no longer a stated reference value (for the PK model; a
        # cohort column the remission model uses still is)
        from_history = set(subject.covariates) - set(explicit_pk)
        column_of = COVARIATES.cohort_columns()
        for c in list(stated):
            if c in from_history or (c in column_of.values() and c not in design_covariates
                                     and any(column_of.get(h) == c for h in from_history)):
                stated.pop(c)
        estimate = _history_estimate(model, subject, explicit_pk, pk_cov, GAIN_SEED)
        history_gain = history_log_gain(estimate, regs, baseline=baseline,
                                        random_seed=GAIN_SEED)
        n_obs = len(obs.times_days)
        day = float(obs.times_days[last])
        notes.append(f"the PK posterior uses the {n_obs} trough(s) and {len(subject.schedule)} "
                     f"dose(s) of patient {subject.id}'s history ({history_source}); "
                     + (f"the baseline trough is its last, on day {day:g}" if tl_from_history
                        else f"the baseline trough is the one given (the history's last is on "
                        f"day {day:g})"))
        notes.extend(f"history: {n}" for n in history_notes)
        last_dose = subject.schedule.times_days[subject.schedule.times_days <= day]
        gaps = np.diff(np.unique(subject.schedule.times_days))
        if gaps.size and not np.isclose(gaps[-1], baseline.interval_days, rtol=0.15):
            notes.append(f"the history's last dosing interval is {gaps[-1] / 7:.3g} weeks, not "
                         f"the {baseline.label} the model was fitted on: the exposure gains "
                         f"are still relative to the steady state of {baseline.label}")
        settings_extra["history"] = {
            "id": subject.id, "source": history_source, "n_troughs": n_obs,
            "n_doses": len(subject.schedule), "baseline_trough_day": day,
            "doses_before_baseline_trough": int(last_dose.size),
            "importance_ess": float(history_gain.ess[0]),
            "pareto_k": estimate.diagnostics.get("pareto_k")}

    def gain_at(tl, cens):
        if history_gain is not None:
            return history_gain
        return patient_log_gain(model, pk_cov, tl, cens, regs, baseline=baseline,
                                random_seed=GAIN_SEED)

    q = np.array([(1 - ci_prob) / 2, 0.5, (1 + ci_prob) / 2])
    tdm = None
    if tl_ug_ml is not None and tl_cens == 0:
        # --- a measured trough
        tl = float(tl_ug_ml)
        gain = gain_at(np.array([tl]), np.array([0]))
        log_tl = np.array([math.log(tl)])
        pm = {m: p_at(log_tl, gain, m)[:, :, 0] for m in months}
        troughs = _lognormal_quantiles(gain, q)
        gain_means = gain.mean[0]
        if not lo_fit <= tl <= hi_fit:
            notes.append(f"the trough {tl:g} µg/mL lies outside the fitted range "
                         f"{lo_fit:g}-{hi_fit:g} µg/mL: the model extrapolates there")
    elif tl_ug_ml is not None:
        # --- beyond an assay limit: the latent trough under the fitted TL population, per draw
        limit = float(tl_ug_ml)
        gain = gain_at(np.array([limit]), np.array([tl_cens]))
        post = predictor.posterior
        nodes = latent_log_tl(post["mu_tl"].values, post["sigma_tl"].values, math.log(limit),
                              tl_cens)
        pm = {m: p_at(nodes, gain, m) @ _WEIGHTS_U for m in months}
        troughs = _lognormal_quantiles(gain, q)
        gain_means = gain.mean[0]
        median = np.exp(_latent_median(post["mu_tl"].values, post["sigma_tl"].values,
                                       math.log(limit), tl_cens))
        side = "above" if tl_cens == -1 else "below"
        typical = float(np.median(median))
        notes.append(f"the trough was {side} the assay limit {limit:g} µg/mL: P(remission) "
                     f"averages over the unknown trough {side} it, distributed as the fitted "
                     f"cohort's troughs {side} that limit (median {typical:.3g} µg/mL)")
        settings_extra["latent_tl_median_ug_ml"] = typical
        if (tl_cens == -1 and limit >= hi_fit) or (tl_cens == 1 and limit <= lo_fit):
            notes.append(f"the latent trough lies outside the fitted range {lo_fit:g}-"
                         f"{hi_fit:g} µg/mL: the model extrapolates there")
    else:
        # --- no trough: its predictive distribution, and the value of measuring it
        rng = np.random.default_rng(resolve_seed(random_seed))
        pred, _ = patient_troughs(model, pk_cov, [], baseline=baseline,
                                  draws=sample_effects(model, tdm_draws, rng))
        tl = np.maximum(pred + model.residual_sd(pred) * rng.standard_normal(tdm_draws), 0.05)
        grid = np.linspace(np.log(tl.min()), np.log(tl.max()), TL_GRID)
        gain = gain_at(np.exp(grid), np.zeros(TL_GRID, dtype=int))
        pos = (np.log(tl) - grid[0]) / max(grid[1] - grid[0], 1e-300)
        i = np.clip(np.floor(pos).astype(int), 0, TL_GRID - 2)
        f = np.clip(pos - i, 0.0, 1.0)
        mix = np.zeros(TL_GRID)  # the average over the drawn troughs, as weights on the grid
        np.add.at(mix, i, (1 - f) / tdm_draws)
        np.add.at(mix, i + 1, f / tdm_draws)
        p_grid = {m: p_at(grid, gain, m) for m in months}
        pm = {m: v @ mix for m, v in p_grid.items()}
        verdict0 = _verdicts((pm[month] >= p_min).mean(axis=0)[:, None], order, labels,
                             credibility)[0]
        each = _verdicts(_reach_interpolated(p_grid[month], i, f, p_min), order, labels,
                         credibility)
        changes = float(np.mean([v != verdict0 for v in each]))
        shares = pd.Series(each).value_counts(normalize=True)
        tdm = {"p_verdict_changes": changes,
               "p_verdict_changes_se": math.sqrt(changes * (1 - changes) / tdm_draws),
               "verdicts": {k: float(v) for k, v in shares.items()},
               "trough_draws": tdm_draws,
               "trough_median_ug_ml": float(np.median(tl))}
        # forecast troughs: the PK model's predictive distribution under each regimen
        more = sample_effects(model, 10 * GAIN_DRAWS, np.random.default_rng(GAIN_SEED))
        _, after = patient_troughs(model, pk_cov, regs, baseline=baseline, draws=more)
        troughs = np.quantile(after, q, axis=1).T  # (regimen, 3)
        gain_means = np.array([np.interp(np.log(tl), grid, gain.mean[:, r])
                               for r in range(len(regs))]).T  # (trough, regimen)
        outside = float(np.mean((tl < lo_fit) | (tl > hi_fit)))
        if outside > 0:
            notes.append(f"{outside:.0%} of the troughs considered lie outside the fitted range "
                         f"{lo_fit:g}-{hi_fit:g} µg/mL: the model extrapolates there")
    if exposure:
        lo_g, hi_g = exposure["log_gain_range"]
        g = np.atleast_2d(gain_means)
        far = [labels[r] for r in usable if np.any((g[:, r] < lo_g) | (g[:, r] > hi_g))]
        if far:
            notes.append(f"the exposure gain of {', '.join(far)} for this patient lies outside "
                         f"the fitted range ({np.exp(lo_g):.2f}-{np.exp(hi_g):.2f} x): the "
                         "model extrapolates")

    verdict = _verdicts((pm[month] >= p_min).mean(axis=0)[:, None], order, labels,
                        credibility)[0]
    table = []
    for r in usable:
        t_lo, t_med, t_hi = troughs[r]
        for m in months:
            lo, med, hi = np.quantile(pm[m][:, r], q)
            reach_r = float((pm[m][:, r] >= p_min).mean())
            table.append({"regimen": labels[r], "month": m, "median": med, "lower": lo,
                          "upper": hi, "p_reach": reach_r,
                          "trough_ug_ml": float(t_med), "trough_lower": float(t_lo),
                          "trough_upper": float(t_hi), "predicted_as": predicted_as[r],
                          "reaches": bool(reach_r >= credibility)})
    settings = {"model_kind": fit.model_kind, "tl_ug_ml": tl_ug_ml, "tl_cens": int(tl_cens),
                "weight_kg": float(weight_kg), "albumin_g_l": given.get("albumin_g_l"),
                "ati": int(ati), "stated_reference_values": stated, "p_min": p_min,
                "credibility": credibility, "month": month, "ci_prob": ci_prob,
                "pk_model": model.name, "baseline_regimen": baseline.label,
                "posterior_draws": predictor.n_samples, "level": "population",
                **settings_extra}
    return Recommendation(table=pd.DataFrame(table), verdict=verdict, settings=settings,
                          notes=tuple(notes), tdm=tdm)


def _reach_interpolated(p: np.ndarray, i: np.ndarray, f: np.ndarray,
                        p_min: float) -> np.ndarray:
    """P(p_remission >= p_min) over draws at troughs between grid points, (regimen, trough).

    ``p`` (draw, regimen, grid) is interpolated linearly: at fraction ``f`` of the way from
    grid point ``i`` to ``i + 1``, draw ``s`` reaches when ``a_s + f (b_s - a_s) >= p_min``. On
    each grid interval that holds for ``f`` above a crossing ``c_s`` (the curve rises through
    ``p_min``), below it (falls through it), always or never; sorting the crossings once per
    interval counts the draws that reach at any ``f`` by binary search. The same numbers as
    interpolating every draw at every trough, without the (draw, regimen, trough) array.
    """
    n_s, n_r, _ = p.shape
    a, b = p[:, :, :-1], p[:, :, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (p_min - a) / (b - a)
    up_ok, down_ok = a >= p_min, b >= p_min
    # rising (reach for f >= c); always (-1: counted for every f); never (2: for none)
    rising = np.where(up_ok & down_ok, -1.0, np.where(~up_ok & down_ok, c, 2.0))
    falling = np.where(up_ok & ~down_ok, c, -1.0)  # reach for f <= c; -1: never
    n_int = a.shape[2]
    row = (np.arange(n_r)[:, None] * n_int + i[None, :])  # (regimen, trough): (r, interval)
    offset = 4.0 * row
    out = np.empty(row.shape)
    for values, side in ((rising, "right"), (falling, "left")):
        flat = np.sort(values.transpose(1, 2, 0).reshape(n_r * n_int, n_s), axis=1)
        flat = (flat + 4.0 * np.arange(n_r * n_int)[:, None]).reshape(-1)
        pos = np.searchsorted(flat, f[None, :] + offset, side=side) - row * n_s
        if side == "right":
            out[:] = pos  # draws whose crossing lies at or below f
        else:
            out += n_s - pos  # draws whose crossing lies at or above f
    return out / n_s


def _latent_median(mu, sigma, log_limit, code) -> np.ndarray:
    """The median of the latent log trough beyond the limit, per draw."""
    a = (log_limit - mu) / sigma
    z = -ndtri(0.5 * ndtr(-a)) if code == -1 else ndtri(0.5 * ndtr(a))
    return mu + sigma * z


def _lognormal_quantiles(gain, q: np.ndarray) -> np.ndarray:
    """Quantiles ``q`` of the forecast trough of a single trough's gain, (regimen, len(q))."""
    return np.exp(gain.log_after_mean[0][:, None]
                  + ndtri(q)[None, :] * gain.log_after_sd[0][:, None])
