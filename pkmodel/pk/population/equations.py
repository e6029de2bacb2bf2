"""The population model's equations, in NumPy and PyTensor alike: parameters, predictions, error.

Individual parameters (log-normal random effects)::

    log P_i = log TV_P + sum_terms log_factor(covariates_i) + eta_iP

with each term's factor from the one multiplier function of the covariate effects
(:meth:`pkmodel.pk.covariate_effects.CovariateEffect.log_factor`, on the design arrays of
:func:`pair_arrays`). Concentrations come from the structure (:mod:`pkmodel.pk.structures`) summed
over every dose started before each observation (superposition), vectorised over all
dose-observation pairs of the dataset at once: no ODE solver, no loop over subjects. The residual
SD is :func:`pkmodel.pk.residual.residual_sd`; new random effects and their covariance come from
:mod:`pkmodel.pk.variability`.

NONMEM events (:mod:`pkmodel.pk.events`) enter the pairs: additional doses (``ADDL``) are doses
like any other, a reset (``EVID`` 3, 4, ``SS`` 1) removes the pairs of the doses before it from
the observations after it, doses with routes of their own (``CMT``) get a mask of each route
``pair_route_<route>`` and a steady-state dose (``SS``) its interval in ``pair_ss_interval_days``,
whose infinite past the structure adds in closed form (``past_doses``). Those two arrays exist
only for data that need them, so that the model of other data is unchanged.

**Time-varying covariates** (a covariate that changes within a subject, last value carried
forward between its records, as in individual forecasts): each observation is predicted with the
parameters of the covariates in force *at its time*, applied to every dose summed there
(``log P_ij = log P_i + sum_terms [log_factor(x_ij) - log_factor(x_i)]``, the ``<p>@obs`` shift
of :func:`individual_log_parameters`). This is exact while the covariates have not changed since
the subject's first dose; after a change it treats the whole history as if the new parameters
had always applied (the exact answer propagates the amounts through each constant stretch,
:func:`pkmodel.pk.simulation.piecewise_concentrations`). The error fades as the doses before the
change wash out: ``tests/pk/population/test_pk_population_covariates.py`` measures it against
``solve_ivp`` on a step change of clearance.

The same functions serve the PyMC model (:mod:`~pkmodel.pk.population.build`, with
``xp=pytensor.tensor``), the centring weights (:mod:`~pkmodel.pk.population.centring`), the
simulator and the model checks (NumPy): one definition, below all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

import numpy as np

from pkmodel.pk import variability
from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.spec import PopulationSpec
from pkmodel.pk.residual import residual_sd as _residual_sd
from pkmodel.pk.variability import correlated_etas

#: The routes a dose may take (``pair_route_<route>``).
ROUTES = ("bolus", "infusion", "oral")
#: The suffix of :func:`individual_log_parameters`' per-observation shifts.
AT_OBSERVATIONS = "@obs"

__all__ = ["AT_OBSERVATIONS", "ROUTES", "individual_log_parameters", "omega_matrix",
           "pair_arrays", "predict", "random_etas", "residual_sd", "sum_by_group"]


def pair_arrays(spec: PopulationSpec, data: PopulationData) -> dict[str, np.ndarray]:
    """The data arrays the equations read (without the centring weights), by ``pm.Data`` name:
    the dose-observation pairs, the observations by censoring, each term's design, the prior."""
    obs, dose = data.pairs(inclusive=spec.structure.instantaneous)
    cens = data.obs_cens
    out = {
        "pair_obs": obs.astype(np.int64),
        "pair_subject": data.dose_subject[dose].astype(np.int64),
        "pair_elapsed_days": data.obs_time_days[obs] - data.dose_time_days[dose],
        "pair_amount_mg": data.dose_amount_mg[dose],
        "pair_duration_days": data.dose_duration_days[dose],
        "obs_zeros": np.zeros(data.n_observations),
        "exact_index": np.flatnonzero(cens == 0).astype(np.int64),
        "exact_value_ug_ml": data.obs_value_ug_ml[cens == 0],
        "below_index": np.flatnonzero(cens == 1).astype(np.int64),
        "below_limit_ug_ml": data.obs_value_ug_ml[cens == 1],
        "above_index": np.flatnonzero(cens == -1).astype(np.int64),
        "above_limit_ug_ml": data.obs_value_ug_ml[cens == -1],
    }
    if data.dose_route is not None:
        route = data.dose_route[dose]
        out |= {f"pair_route_{r}": (route == r).astype(float) for r in ROUTES
                if np.any(data.dose_route == r)}
        # a duration for every pair (those of other routes are never read)
        out["pair_duration_days"] = np.where(route == "infusion", out["pair_duration_days"], 1.0)
    if data.dose_ss_interval_days is not None:
        interval = data.dose_ss_interval_days[dose]
        out["pair_ss"] = (interval > 0).astype(float)
        out["pair_ss_interval_days"] = np.where(interval > 0, interval, 1.0)
    for term in spec.covariates:
        key = f"{term.parameter}_{term.covariate}"
        out[f"x_{key}"] = term.design(data.covariates[term.covariate])
        if term.covariate in data.obs_covariates:  # it changes within a subject
            # per observation: the value in force at it, and the subject's (as in x_): their
            # factors' ratio moves each observation's parameters off the subject's (a dataset
            # without changes keeps the graph, and the compiled model, it had without them)
            out[f"xo_{key}"] = term.design(data.at_observations(term.covariate))
            out[f"xb_{key}"] = term.design(data.covariates[term.covariate][data.obs_subject])
    if spec.iov_parameters:  # each observation's (subject, occasion) cell of kappa, flattened
        out["obs_kappa_index"] = (data.obs_subject * max(data.n_occasions, 1)
                                  + data.obs_occasion).astype(np.int64)
    if spec.prior is not None:  # data, so that one compiled model serves every weight
        means, sds = zip(*spec.prior.terms.values(), strict=True)
        out |= {"prior_mean": np.array(means, dtype=float),
                "prior_sd": np.array(sds, dtype=float),
                "prior_weight": np.array(spec.prior.weight, dtype=float)}
    return out


def individual_log_parameters(spec: PopulationSpec, design: dict[str, np.ndarray],
                              values: dict, xp: ModuleType = np) -> dict:
    """``log P_i`` of every structural parameter and subject, and what time-varying
    covariates change at each observation.

    Parameters
    ----------
    spec : PopulationSpec
        The model.
    design : dict
        ``x_<term>`` arrays of :func:`pair_arrays`, shape (n_subjects, n_columns), and for a
        covariate that changes within a subject ``xo_<term>``, ``xb_<term>`` (per observation:
        at its time, and the subject's).
    values : dict
        ``log_tv_<p>``, ``eta_<p>`` (the parameters with BSV) and ``theta_*`` (estimated
        covariate effects), broadcasting as ``(..., 1)`` against subjects ``(..., n_subjects)``;
        for the parameters with IOV, ``kappa_<p>`` shaped ``(..., n_subjects, n_occasions)``
        (left out: 0, the typical occasion).
    xp : module, default numpy
        The array namespace (``pytensor.tensor`` inside the PyMC model).

    Returns
    -------
    dict
        ``<p>``: ``log P_i`` with each subject's covariates at its first dose; and, for each
        parameter with effects of a covariate that changes within a subject (``xo_`` arrays),
        ``<p>@obs``: per observation, the log factor of the covariates in force at its time
        over that of its subject's (0 where nothing changed), plus its occasion's ``kappa`` for
        a parameter with IOV, which :func:`predict` adds to the parameters of every dose it sums
        there.
    """
    out = {}
    for name in spec.parameter_names:
        log_p = values[f"log_tv_{name}"]
        if name in spec.bsv_parameters:
            log_p = log_p + values[f"eta_{name}"]
        shift = None
        for term in spec.covariates:
            if term.parameter != name:
                continue
            theta = term.coefficient if not term.estimated else term.theta(values)
            key = f"{term.parameter}_{term.covariate}"
            log_p = log_p + term.log_factor(design[f"x_{key}"], theta, xp=xp)
            if f"xo_{key}" in design:
                step = (term.log_factor(design[f"xo_{key}"], theta, xp=xp)
                        - term.log_factor(design[f"xb_{key}"], theta, xp=xp))
                shift = step if shift is None else shift + step
        if f"kappa_{name}" in values:  # the occasion of each observation (obs_kappa_index)
            kappa = values[f"kappa_{name}"]
            if xp is np:
                kappa = np.asarray(kappa, dtype=float)
                flat = kappa.reshape(*kappa.shape[:-2], -1)
            else:  # the model's (slots, occasions) matrix
                flat = kappa.flatten()
            step = flat[..., design["obs_kappa_index"]]
            shift = step if shift is None else shift + step
        out[name] = log_p
        if shift is not None:
            out[f"{name}{AT_OBSERVATIONS}"] = shift
    return out


def residual_sd(spec: PopulationSpec, pred, values: dict, xp: ModuleType = np):
    """The residual SD (µg/mL) at predictions ``pred``, from ``sigma_prop`` and
    ``sigma_add_ug_ml`` in ``values`` (those of the specification's error model)."""
    return _residual_sd(spec.residual.error, pred, values.get("sigma_prop", 0.0),
                        values.get("sigma_add_ug_ml", 0.0), xp=xp)


def predict(spec: PopulationSpec, arrays: dict, log_params: dict, xp: ModuleType = np):
    """Predicted concentrations (µg/mL) at every observation.

    ``log_params`` as :func:`individual_log_parameters` returns (numpy: shape
    ``(..., n_subjects)``; pytensor: ``(n_subjects,)``); ``arrays`` as :func:`pair_arrays`.
    """
    subject = arrays["pair_subject"]
    obs = arrays["pair_obs"]
    subject_level = {k: v for k, v in log_params.items() if not k.endswith(AT_OBSERVATIONS)}
    if xp is np:
        def to_pairs(v):  # a value shared by all subjects has a last axis of 1
            return v[..., subject if v.shape[-1] > 1 else np.zeros_like(subject)]

        values = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in subject_level.items()}
        if any(k + AT_OBSERVATIONS in log_params for k in values):
            # the parameters of each observation (its subject's, shifted), and the disposition
            # constants once per observation, not once per pair
            n_obs = arrays["obs_zeros"].size
            obs_subject = np.zeros(n_obs, dtype=np.int64)
            obs_subject[obs] = subject

            def at_obs(k, v):
                v = v[..., obs_subject] if v.shape[-1] > 1 else v
                shift = log_params.get(k + AT_OBSERVATIONS)
                return v if shift is None else v + np.asarray(shift, dtype=float)

            def gather(v):  # per observation (or shared: a last axis of 1) to pairs
                return v[..., obs if v.shape[-1] > 1 else np.zeros_like(obs)]

            units = {k: np.exp(at_obs(k, v)) for k, v in values.items()}
        else:  # the disposition constants once per subject, not once per pair
            units, gather = {k: np.exp(v) for k, v in values.items()}, to_pairs
        terms = [(gather(np.asarray(c)), gather(np.asarray(lam)))
                 for c, lam in spec.structure.impulse_response(units, np)]
        p = _Gathered(units, gather)  # the few the routes read (ka), when read
        conc = _pair_concentrations(spec.structure, p, arrays, np, terms=terms)
        return sum_by_group(conc, obs, arrays["obs_zeros"].size)
    p = {}
    for k, v in subject_level.items():
        if k + AT_OBSERVATIONS in log_params:
            p[k] = xp.exp((v if v.ndim == 0 else v[subject])
                          + log_params[k + AT_OBSERVATIONS][obs])
        else:  # the graph of data without time-varying covariates, as before them
            p[k] = xp.exp(v) if v.ndim == 0 else xp.exp(v)[subject]
    conc = _pair_concentrations(spec.structure, p, arrays, xp)
    return xp.inc_subtensor(arrays["obs_zeros"][obs], conc)


class _Gathered(Mapping):
    """Per-subject (or per-observation) values indexed by pair on first use (a structure reads
    few of them)."""

    def __init__(self, values: dict, gather) -> None:
        self._values, self._gather, self._done = values, gather, {}

    def __getitem__(self, key):
        if key not in self._done:
            self._done[key] = self._gather(self._values[key])
        return self._done[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def sum_by_group(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """``out[..., g] = sum of values[..., j] over the j with group[j] == g`` (NumPy): the pairs
    of each observation, the observations of each subject or occasion. A segmented sum when the
    groups come in order (as :func:`pair_arrays` and the data give them), else ``np.add.at``."""
    out = np.zeros((*values.shape[:-1], n_groups))
    if group.size == 0:
        return out
    if np.all(group[1:] >= group[:-1]):
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        out[..., group[starts]] = np.add.reduceat(values, starts, axis=-1)
    else:
        np.add.at(out, (..., group), values)
    return out


def _pair_concentrations(structure, p: dict, arrays: dict, xp: ModuleType, terms=None):
    """The concentration each dose gives at its pair's observation: the dose's route, and the
    infinite past of a steady-state dose (``terms``: the structure's exponentials per pair,
    when already computed)."""
    amount, elapsed = arrays["pair_amount_mg"], arrays["pair_elapsed_days"]
    duration = arrays["pair_duration_days"]
    terms = structure.impulse_response(p, xp) if terms is None else terms
    routes = [r for r in ROUTES if f"pair_route_{r}" in arrays] or [None]
    conc = 0.0
    for route in routes:
        one = structure.response(p, amount, elapsed, duration, route=route, xp=xp, terms=terms)
        if "pair_ss" in arrays:
            one = one + arrays["pair_ss"] * structure.past_doses(
                p, amount, elapsed, duration, arrays["pair_ss_interval_days"], route=route,
                xp=xp, terms=terms)
        if route is not None:  # finite for every pair: the other routes' pairs are masked
            one = one * arrays[f"pair_route_{route}"]
        conc = conc + one
    return conc


def random_etas(spec: PopulationSpec, values: dict, rng: np.random.Generator,
                shape: tuple[int, ...], n_occasions: int = 0) -> dict:
    """New random effects of every parameter with BSV, ``shape`` each (e.g. ``(n_subjects,)``
    or ``(draws, n_subjects)`` with ``omega_<p>`` and ``corr_*`` shaped ``(draws, 1)``): the
    diagonal ones first, in order, then each block's, correlated; then, with ``n_occasions``,
    the ``kappa_<p>`` of each parameter with IOV, ``(*shape, n_occasions)``, from
    ``omega_iov_<p>``."""
    blocked = {p for block in spec.bsv_blocks for p in block}
    out = {f"eta_{p}": values[f"omega_{p}"] * rng.standard_normal(shape)
           for p in spec.bsv_parameters if p not in blocked}
    for block in spec.bsv_blocks:
        out |= correlated_etas(block, values, rng.standard_normal((len(block), *shape)))
    if n_occasions:
        out |= {f"kappa_{p}": np.asarray(values[f"omega_iov_{p}"], dtype=float)[..., None]
                * rng.standard_normal((*shape, n_occasions)) for p in spec.iov_parameters}
    return out


def omega_matrix(spec: PopulationSpec, values: dict) -> np.ndarray:
    """Omega, the covariance of the etas of :attr:`PopulationSpec.bsv_parameters` (in that
    order), from scalar ``omega_<p>`` and ``corr_*`` (:func:`pkmodel.pk.variability.
    omega_matrix`)."""
    return variability.omega_matrix(spec.bsv_parameters, spec.bsv_blocks, values)
