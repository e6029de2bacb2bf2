"""How each subject's random effects are written for the sampler, decided from the design.

The same specification meets 12 subjects with eleven samples each and 1,000 patients with two
troughs each. Whether NUTS samples a random effect better non-centred (``eta_i = omega z_i``)
or centred (``log P_i ~ Normal(mean_i, omega)``) depends on how much the subject's own data say
about it: non-centred is right where they say little (else a funnel between ``omega`` and the
etas), centred where they say much (else every ``z_i`` is tied to the typical value and to
``omega``: 1,000 patients' troughs gave a minimum ESS of 67 non-centred).

pkmodel writes each subject's effect *partially* non-centred (Papaspiliopoulos, Roberts & Sköld
2007, *Statistical Science* 22:59-73; Gorinova, Moore & Hoffman 2020, *ICML*), with its own
weight ``w_i`` between 0 (centred) and 1 (non-centred)::

    u_i ~ Normal((1 - w_i) mean_i, omega^(1 - w_i)),   eta_i = omega^w_i (u_i - (1 - w_i) mean_i)

so that ``eta_i ~ Normal(0, omega)`` whatever ``w_i``: the model is the same, only the
sampler's coordinates change. Given the population parameters, a random effect with prior SD
``omega`` and data of Fisher information ``I_i`` about it has posterior SD ``s_i(omega) = (I_i +
omega^-2)^-1/2``, and ``u_i`` has SD ``s_i(omega) / omega^w_i``. With ``w_i = d log s_i / d log
omega = 1 / (1 + I_i omega^2)`` that SD does not change with ``omega``, so ``u_i`` and ``omega``
are a posteriori uncorrelated to first order (Papaspiliopoulos et al., section 3). ``omega``
is not known before the fit, so :func:`centring_weights` makes the SD of ``u_i`` the same at
both ends of a plausible range ``[omega_lo, omega_hi]`` instead,
``w_i = log(s_i(omega_hi) / s_i(omega_lo)) / log(omega_hi / omega_lo)`` (the same rule as the
centre effects of the remission model, ``docs/model.md``), with

* ``[omega_lo, omega_hi]`` the 5 % and 90 % quantiles of the half-normal prior of ``omega``
  (``0.063`` and ``1.645 omega_prior``): a small ``omega`` is where a centred form funnels, a
  large one where a non-centred form ties ``u_i`` to ``omega``;
* ``I_i`` the expected Fisher information of the subject's exactly measured concentrations
  about ``log P_i`` (``sum_j (d pred_ij / d log P_i)^2 / sd_ij^2``, by central differences), at
  the specification's typical values, the prior means of the covariate effects, no other
  random effects, and the median of each residual error prior; censored values count nothing.

A reference point that is off makes the coordinates less ideal, never the model wrong.
``centred = true`` or ``false`` in a parameter's table forces ``w_i = 0`` or ``1`` (except for a
subject without observations, always 1); the parameters of a BSV block are always non-centred.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.equations import (
    AT_OBSERVATIONS,
    individual_log_parameters,
    predict,
    residual_sd,
)
from pkmodel.pk.population.spec import PopulationSpec
from pkmodel.sampling import centring_exponent

__all__ = ["centring_weights", "reference_values"]

# Central-difference step on log P: the predictions are smooth, and 1e-4 keeps the truncation
# error (h^2) and the rounding error (1e-16 / h) both far below the information's precision.
_STEP = 1e-4
_HALF_NORMAL_MEDIAN = float(stats.halfnorm.median())
# The plausible range of each omega: these quantiles of its half-normal prior.
_OMEGA_RANGE = (float(stats.halfnorm.ppf(0.05)), float(stats.halfnorm.ppf(0.9)))


def reference_values(spec: PopulationSpec) -> dict:
    """The point at which the information is judged: ``log_tv_<p>`` at the typical values,
    ``theta_*`` at their prior means, every ``eta`` 0, each ``sigma`` at the median of its
    half-normal prior."""
    values: dict = {f"log_tv_{p}": np.log(spec.typical_per_day(p))
                    for p in spec.parameters}
    values |= {f"eta_{p}": 0.0 for p in spec.bsv_parameters}
    for term in spec.covariates:
        if term.estimated:
            values |= dict.fromkeys(term.names, term.prior_mean)
    values["sigma_prop"] = _HALF_NORMAL_MEDIAN * spec.residual.proportional_prior
    values["sigma_add_ug_ml"] = _HALF_NORMAL_MEDIAN * spec.residual.additive_prior_ug_ml
    return values


def centring_weights(spec: PopulationSpec, data: PopulationData,
                     arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``w_<p>`` of every parameter with diagonal BSV: one weight per subject, 1 non-centred,
    0 centred.

    Parameters
    ----------
    spec : PopulationSpec
        The model (``centred`` of each parameter: ``None`` decides from the data).
    data : PopulationData
        The dataset.
    arrays : dict
        The model's data arrays without the weights
        (:func:`pkmodel.pk.population.equations.pair_arrays`).
    """
    blocked = {p for block in spec.bsv_blocks for p in block}
    names = [p for p in spec.bsv_parameters if p not in blocked]
    # a subject without any observation (an empty slot of the compiled model) has nothing to
    # centre on: non-centred even where centring is forced, else it would funnel with omega
    empty = np.bincount(data.obs_subject, minlength=data.n_subjects) == 0
    out = {f"w_{p}": np.where(empty, 1.0, 0.0 if spec.parameters[p].centred else 1.0)
           for p in names if spec.parameters[p].centred is not None}
    automatic = [p for p in names if spec.parameters[p].centred is None]
    if not automatic:
        return out
    values = reference_values(spec)
    log_params = {k: v if k.endswith(AT_OBSERVATIONS)
                  else np.broadcast_to(v, (data.n_subjects,)).astype(float)
                  for k, v in individual_log_parameters(spec, arrays, values).items()}
    pred = predict(spec, arrays, log_params)
    sd = residual_sd(spec, pred, values)
    exact = (data.obs_cens == 0) & (sd > 0) & np.isfinite(sd)
    for p in automatic:
        slope = []
        for step in (_STEP, -_STEP):
            moved = dict(log_params)
            moved[p] = log_params[p] + step
            slope.append(predict(spec, arrays, moved))
        dpred = (slope[0] - slope[1]) / (2 * _STEP)
        score = np.zeros(data.n_observations)
        score[exact] = (dpred[exact] / sd[exact]) ** 2
        information = np.bincount(data.obs_subject, weights=score, minlength=data.n_subjects)
        low, high = (q * spec.parameters[p].omega_prior for q in _OMEGA_RANGE)
        # predictions that cannot be differentiated there (an overflow at absurd typical
        # values) give the non-centred form, which needs no information
        out[f"w_{p}"] = centring_exponent(information, low, high)
    return out
