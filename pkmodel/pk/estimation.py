"""Individual Bayesian estimation of a patient's PK parameters from observed troughs.

What mapbayr, iDose or InsightRX do: the population model is the prior (log-normal between-subject
variability, ``eta ~ Normal(0, omega^2)`` on the parameters that have it), the patient's covariates
set the typical values, the dosing history and the closed-form two-compartment solution give the
predicted concentration at each sampling time, and the paper's residual error model
(``sd = sqrt(add^2 + (prop * prediction)^2)``, normal) gives the likelihood. Values below the LLOQ
or above the ULOQ contribute ``P(Y < LLOQ)`` or ``P(Y > ULOQ)`` (M3 method).

Covariates may change during therapy (a :class:`~pkmodel.pk.covariates.CovariateHistory`, last
observation carried forward): the individual parameters are then the covariate model at each
record's covariates times ``exp(eta)``, and the predictions come from exact piecewise propagation
instead of superposition.

A model with inter-occasion variability (``omega2_iov``) has, in each occasion k (one per dosing
interval unless the data give them, :mod:`pkmodel.pk.occasions`), the parameters
``typical(covariates) exp(eta + kappa_k)`` with ``kappa_k ~ Normal(0, omega2_iov)``. The occasions
up to the last observation's are estimated with eta (their standardised kappas are further
dimensions of the same posterior, for both methods), and the predictions propagate exactly across
occasion boundaries (parameters change, amounts carry over). A model without IOV is estimated
exactly as before.

Two methods:

* ``"map"`` (fast, milliseconds): the posterior mode by BFGS in standardised eta, then posterior
  draws by sampling importance resampling from a Student-t approximation centred on the mode
  with the inverse Hessian as scale (the Laplace approximation, corrected by importance weights).
* ``"nuts"`` (full posterior): NUTS on the same model, written in PyMC and sampled by nutpie
  through :func:`pkmodel.sampling.sample_nuts`, the one sampling run of every pkmodel fit, and
  checked by the convergence gate every fit passes (:func:`pkmodel.diagnostics.compute_diagnostics`:
  R-hat, bulk/tail ESS, divergences, E-BFMI, tree depth), since nutpie prints no warnings.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import optimize, special

from pkmodel.diagnostics import compute_diagnostics
from pkmodel.errors import (
    ConvergenceWarning,
    ImplausibleEstimateWarning,
    PKDataError,
    SpecificationError,
)
from pkmodel.pk.covariates import CovariateHistory
from pkmodel.pk.models import PARAMETERS, PKParameters, PopulationModel
from pkmodel.pk.observations import Observations
from pkmodel.pk.occasions import (
    Occasions,
    check_iov_structure,
    occasion_parameters,
    output_stretches,
    resolve_occasions,
)
from pkmodel.pk.plausibility import assess
from pkmodel.pk.published_models import get_model
from pkmodel.pk.schedules import DoseSchedule
from pkmodel.pk.simulation import concentrations, piecewise_concentrations
from pkmodel.sampling import SamplerSettings, exact_arithmetic, sample_nuts

__all__ = ["IndividualEstimate", "estimate_individual"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass
class IndividualEstimate:
    """The posterior of one patient's PK parameters.

    Attributes
    ----------
    model : PopulationModel
        The population model used as prior.
    covariates : dict
        The patient's covariates (reference values filled in); with a covariate history, those
        in force at its last record (used by :meth:`parameters` and steady-state forecasts).
    weight_kg : float
        Body weight, kg (for mg/kg regimens); with a covariate history, the last record's.
    schedule : DoseSchedule
        The dosing history.
    observations : Observations
        The observed concentrations.
    method : str
        ``"map"`` or ``"nuts"``.
    eta_map : numpy.ndarray
        Posterior mode of the random effects, in ``model.random_effects`` order.
    eta_draws : numpy.ndarray
        Posterior draws of the random effects, shape (n_draws, n_eta).
    diagnostics : dict
        Optimiser status and importance-sampling ESS (map); for ``"nuts"``, the convergence
        gate of every fit (:meth:`pkmodel.diagnostics.Diagnostics.to_dict`: ``max_rhat``,
        ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``min_bfmi``,
        ``treedepth_fraction``, ``converged``, ...) with its ``problems``, and under the names
        of pkmodel 0.4 ``rhat_max`` (= ``max_rhat``), ``ess_bulk_min``, ``ess_tail_min``,
        ``draws`` (= ``n_draws``) and ``chains`` (= ``n_chains``).
    posterior : xarray.DataTree or None
        nutpie's result for ``"nuts"`` (``posterior``: ``z``, ``eta`` and the parameters).
    covariate_history : CovariateHistory or None
        The covariates over time when they change (weight included), else ``None``.
    occasions : Occasions or None
        With inter-occasion variability: the occasions estimated (up to the last
        observation's; the last of them lasts for ever), else ``None``.
    kappa_map : numpy.ndarray or None
        With IOV: the occasion effects at the posterior mode, shape (n_occasions, n_kappa) in
        ``model.occasion_effects`` order.
    kappa_draws : numpy.ndarray or None
        With IOV: their posterior draws, shape (n_draws, n_occasions, n_kappa), paired with
        ``eta_draws``.
    """

    model: PopulationModel
    covariates: dict[str, float]
    weight_kg: float
    schedule: DoseSchedule
    observations: Observations
    method: str
    eta_map: np.ndarray
    eta_draws: np.ndarray
    diagnostics: dict = field(default_factory=dict)
    posterior: object | None = None
    covariate_history: CovariateHistory | None = None
    occasions: Occasions | None = None
    kappa_map: np.ndarray | None = None
    kappa_draws: np.ndarray | None = None

    def _kappa(self, kappa: np.ndarray | None, occasion: int | None) -> np.ndarray | None:
        """The occasion effects of ``occasion`` (default the last estimated) from ``kappa``."""
        if kappa is None:
            if occasion is not None:
                raise SpecificationError("occasion= needs a model with inter-occasion "
                                         "variability (omega2_iov)")
            return None
        n = kappa.shape[-2]
        k = n - 1 if occasion is None else int(occasion)
        if not 0 <= k < n:
            raise SpecificationError(f"occasion must be 0 to {n - 1} (the occasions estimated), "
                                     f"not {occasion}")
        return kappa[..., k, :]

    def parameters(self, occasion: int | None = None) -> xr.Dataset:
        """Posterior draws of the structural parameters (dim ``draw``) with ``units``.

        With a covariate history: at the covariates of its last record. With inter-occasion
        variability: in occasion ``occasion`` (0-based; default the last estimated one, that of
        the last observation), ``exp(eta + kappa_occasion)``.
        """
        p = self.model.individual_parameters(self.covariates, self.eta_draws,
                                             self._kappa(self.kappa_draws, occasion))
        n = self.eta_draws.shape[0]
        return xr.Dataset(
            {k: ("draw", np.broadcast_to(p[k], (n,)), {"units": u})
             for k, u in self.model.structure.units().items()},
            coords={"draw": np.arange(n)},
            attrs={"model": self.model.name, "method": self.method},
        )

    def map_parameters(self, occasion: int | None = None) -> dict[str, float]:
        """Parameters at the posterior mode (clearances in L/day, volumes in L); with IOV in
        occasion ``occasion`` (default the last estimated)."""
        p = self.model.individual_parameters(self.covariates, self.eta_map,
                                             self._kappa(self.kappa_map, occasion))
        return {k: float(v) for k, v in p.values.items()}

    def summary(self) -> dict:
        """Plain-JSON summary: MAP, posterior median and 90% interval of each parameter (with
        inter-occasion variability: in the last estimated occasion)."""
        draws = self.parameters()
        out = {"method": self.method, "model": self.model.name, "parameters": {},
               "diagnostics": self.diagnostics}
        mode = self.map_parameters()
        for k, unit in self.model.structure.units().items():
            q = np.quantile(draws[k].values, [0.05, 0.5, 0.95])
            out["parameters"][k] = {"unit": unit, "map": mode[k], "median": float(q[1]),
                                    "q05": float(q[0]), "q95": float(q[2])}
        return out


def _log_likelihood(pred: np.ndarray, obs: Observations, model: PopulationModel) -> np.ndarray:
    """Log-likelihood summed over observations, for predictions of shape (..., n_obs)."""
    sd = model.residual_sd(pred)
    lower, upper = obs.lower, obs.upper
    exact = obs.cens == 0
    total = np.zeros(pred.shape[:-1])
    if exact.any():
        z = (obs.values_ug_ml[exact] - pred[..., exact]) / sd[..., exact]
        total = total + np.sum(-0.5 * z * z - np.log(sd[..., exact]) - 0.5 * _LOG_2PI, axis=-1)
    cens = ~exact
    if cens.any():
        zu = (upper[cens] - pred[..., cens]) / sd[..., cens]
        zl = (lower[cens] - pred[..., cens]) / sd[..., cens]
        log_u = special.log_ndtr(zu)
        log_l = special.log_ndtr(zl)
        # log(Phi(zu) - Phi(zl)); for right-censoring (zu = inf) this is log Phi(-zl)
        right = np.isinf(upper[cens])
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.where(right, special.log_ndtr(-zl),
                            log_u + np.log1p(-np.exp(np.minimum(log_l - log_u, -1e-300))))
        total = total + np.sum(diff, axis=-1)
    return total


class _Posterior:
    """Unnormalised log posterior in standardised random effects ``z``: ``eta / omega`` and,
    with inter-occasion variability, each estimated occasion's ``kappa / omega_iov`` after them
    (occasion by occasion, ``model.occasion_effects`` within each)."""

    def __init__(self, model, covariates, weight, schedule, obs, history=None,
                 occasions: Occasions | None = None) -> None:
        self.model = model
        self.covariates = covariates
        self.weight = weight
        self.schedule = schedule
        self.obs = obs
        self.history = history
        self.n_eta = len(model.random_effects)
        self.occasions = None
        self.change = None if history is None else history.times_days  # stretch starts
        self.out_stretch = None
        if model.occasion_effects and occasions is not None:
            last = int(occasions.index(obs.times_days.max(), trough=True))
            self.occasions = occasions.head(last + 1)
            self.source = covariates if history is None else history
            _, self.change = occasion_parameters(model, self.source, self.occasions, None, None)
            self.stretch_occasion = self.occasions.index(self.change)
            self.out_stretch = output_stretches(self.change, self.occasions, obs.times_days)
        n_occ = 0 if self.occasions is None else len(self.occasions)
        self.sd = np.concatenate([model.omega_sd, np.tile(model.omega_iov_sd, n_occ)])
        if history is None:
            self.amounts = np.asarray(schedule.amounts_mg(weight), dtype=float).reshape(-1)
        else:  # mg/kg doses at the weight in force at each dose
            self.amounts = history.dose_amounts_mg(schedule)

    def split(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """eta ``(..., n_eta)`` and kappa ``(..., n_occasions, n_kappa)`` (None without IOV)
        from standardised ``z``."""
        eta = self.model.eta_from_z(z[..., :self.n_eta])
        if self.occasions is None:
            return eta, None
        kappa = z[..., self.n_eta:].reshape(*z.shape[:-1], len(self.occasions),
                                            len(self.model.occasion_effects))
        return eta, kappa * self.model.omega_iov_sd

    def typical(self) -> dict:
        """Covariate-typical parameters: floats, or one value per stretch (history record, or
        history record and occasion)."""
        if self.occasions is not None:
            typical, _ = occasion_parameters(self.model, self.source, self.occasions, None, None)
        elif self.history is None:
            typical = self.model.individual_parameters(self.covariates)
            return {p: float(v) for p, v in typical.values.items()}
        else:
            typical = self.history.individual_parameters(self.model)
        return {p: np.asarray(v, dtype=float) for p, v in typical.values.items()}

    def predict_values(self, values: dict, xp=np):
        """Predicted concentrations at the observation times from parameters ``values``.

        ``values`` maps the structural parameters to arrays (numpy, or pytensor with
        ``xp=pytensor.tensor``) with, under a covariate history or occasions, the stretch axis
        last.
        """
        structure = self.model.structure
        if self.change is not None:
            return piecewise_concentrations(PKParameters(structure=structure, **values),
                                            self.change, self.schedule, self.obs.times_days,
                                            self.amounts, xp=xp,
                                            output_segments=self.out_stretch)
        if self.schedule.has_events:  # routes, steady states, resets (NONMEM events)
            return self.schedule.concentrations(structure, values, self.amounts,
                                                self.obs.times_days, route="infusion", xp=xp)
        elapsed = self.obs.times_days[:, None] - self.schedule.times_days[None, :]
        return structure.response(values, self.amounts[None, :], elapsed,
                                  self.schedule.durations_days[None, :], route="infusion",
                                  xp=xp).sum(axis=1)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(z)
        with np.errstate(all="ignore"):  # far-out trial points overflow; they score -inf
            pred = self.predict(z)
            value = _log_likelihood(pred, self.obs, self.model) - 0.5 * np.sum(z * z, axis=-1)
        return np.where(np.isfinite(value), value, -np.inf)

    def predict(self, z: np.ndarray) -> np.ndarray:
        """Predicted concentrations (µg/mL) at the observation times, shape (..., n_obs)."""
        z = np.atleast_2d(z)
        if self.occasions is not None:
            eta, kappa = self.split(z)
            params, _ = occasion_parameters(self.model, self.source, self.occasions, eta, kappa)
            return self.predict_values(dict(params.values))
        if self.history is None:
            params = self.model.individual_parameters(self.covariates,
                                                      self.model.eta_from_z(z))
            return concentrations(params, self.schedule, self.obs.times_days, self.weight)
        params = self.history.individual_parameters(self.model, self.model.eta_from_z(z))
        return self.predict_values(dict(params.values))

    def residuals(self, z: np.ndarray) -> np.ndarray:
        """Standardised residuals ``(y - pred) / sd`` of the uncensored observations at ``z``."""
        pred = self.predict(z)[0]
        sd = self.model.residual_sd(pred)
        exact = self.obs.cens == 0
        return (self.obs.values_ug_ml[exact] - pred[exact]) / sd[exact]


@functools.lru_cache(maxsize=64)
def _offsets(k: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference stencils: +-step e_i (gradient) and the 4-point cross terms (Hessian),
    computed once per size and step (read-only)."""
    eye = np.eye(k) * step
    grad = np.concatenate([eye, -eye])
    i, j = np.triu_indices(k, 1)
    signs = np.array([(1, 1), (1, -1), (-1, 1), (-1, -1)], dtype=float)
    cross = (signs[None, :, 0, None] * eye[i][:, None, :]
             + signs[None, :, 1, None] * eye[j][:, None, :]).reshape(-1, k)
    grad.setflags(write=False)
    cross.setflags(write=False)
    return grad, cross


def _gradient(f, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central-difference gradient, all 2k points in one vectorised call of ``f``."""
    grad, _ = _offsets(x.size, step)
    values = f(x + grad)
    with np.errstate(invalid="ignore"):  # -inf - -inf where the posterior vanishes
        return (values[: x.size] - values[x.size:]) / (2.0 * step)


def _hessian(f, x: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """Central-difference Hessian, every stencil point in one vectorised call of ``f``."""
    k = x.size
    grad, cross = _offsets(k, step)
    values = f(np.concatenate([x[None, :], x + grad, x + cross]))
    f0, plus, minus, mixed = values[0], values[1:k + 1], values[k + 1:2 * k + 1], values[2 * k + 1:]
    with np.errstate(invalid="ignore"):
        return _assemble_hessian(k, f0, plus, minus, mixed, step)


def _assemble_hessian(k, f0, plus, minus, mixed, step) -> np.ndarray:
    h = np.diag((plus - 2.0 * f0 + minus) / step**2)
    n = 0
    for i in range(k):
        for j in range(i + 1, k):
            pp, pm, mp, mm = mixed[4 * n:4 * n + 4]
            h[i, j] = h[j, i] = (pp - pm - mp + mm) / (4.0 * step**2)
            n += 1
    return h


#: The mode is accepted when a Newton step from it would raise the log posterior by less than
#: this (nats): ``g' H^-1 g / 2``, invariant to the scale of the parameters.
NEWTON_DECREMENT_TOL = 1e-6


def _map(post: _Posterior) -> tuple[np.ndarray, dict]:
    """Posterior mode: BFGS from three starts with central-difference gradients, Newton-polished.

    BFGS with finite differences often stops with scipy's "precision loss" message at the mode
    itself, so its flag says little. Convergence is judged instead by the Newton decrement at the
    returned point (the log-density gain a Newton step would still bring) and by a negative
    definite Hessian there.
    """
    k = post.sd.size

    def neg(z):
        return -post(z)[0]

    def neg_grad(z):
        return -_gradient(post, z)

    best = None
    for start in (np.zeros(k), np.full(k, 1.0), np.full(k, -1.0)):
        res = optimize.minimize(neg, start, jac=neg_grad, method="BFGS",
                                options={"gtol": 1e-7, "maxiter": 500})
        if best is None or res.fun < best.fun:
            best = res
    z = np.asarray(best.x, dtype=float)
    decrement = np.inf
    positive = False
    for _ in range(5):  # Newton polish, with step halving so the posterior never decreases
        g = _gradient(post, z)
        h = -_hessian(post, z)
        try:
            np.linalg.cholesky(h)
            positive = True
        except np.linalg.LinAlgError:
            positive = False
            break
        step = np.linalg.solve(h, g)
        decrement = float(0.5 * g @ step)
        if decrement < NEWTON_DECREMENT_TOL:
            break
        current = post(z)[0]
        for _ in range(20):
            if post(z + step)[0] >= current:
                z = z + step
                break
            step = step / 2.0
    converged = bool(positive and decrement < NEWTON_DECREMENT_TOL)
    message = (f"mode found (Newton decrement {decrement:.1e} nats)" if converged else
               "the log posterior is not concave at the optimum found" if not positive else
               f"not converged (Newton decrement {decrement:.1e} nats)")
    return z, {"optimizer_success": converged, "optimizer_message": message,
               "newton_decrement": decrement, "log_posterior_at_mode": float(post(z)[0])}


#: Pareto k-hat above which importance-sampling estimates are unreliable (Vehtari et al. 2024).
PARETO_K_MAX = 0.7


def _importance(post: _Posterior, centre: np.ndarray, chol: np.ndarray, n: int,
                rng: np.random.Generator, df: float, defensive: float):
    """Draws from ``(1 - defensive) t_df(centre, chol chol') + defensive N(0, I)`` and their
    log importance ratios against the (normalised) posterior."""
    k = centre.size
    from_prior = rng.random(n) < defensive
    normal = rng.standard_normal((n, k))
    mix = np.sqrt(rng.chisquare(df, size=n) / df)
    z = np.where(from_prior[:, None], normal, centre + (normal @ chol.T) / mix[:, None])
    resid = np.linalg.solve(chol, (z - centre).T).T
    log_t = (special.gammaln((df + k) / 2.0) - special.gammaln(df / 2.0)
             - 0.5 * k * np.log(df * np.pi) - np.sum(np.log(np.diag(chol)))
             - 0.5 * (df + k) * np.log1p(np.sum(resid * resid, axis=1) / df))
    log_prior = -0.5 * np.sum(z * z, axis=1) - 0.5 * k * _LOG_2PI
    log_q = np.logaddexp(np.log1p(-defensive) + log_t, np.log(defensive) + log_prior)
    log_target = post(z) - 0.5 * k * _LOG_2PI  # post() leaves out the prior's constant
    return z, log_target - log_q


def _psis(log_w: np.ndarray) -> tuple[np.ndarray, float]:
    """Normalised Pareto-smoothed importance weights and ArviZ's k-hat."""
    import arviz_stats  # noqa: F401  (registers the ``azstats`` accessor)

    # ArviZ's psislw takes log-likelihood values, as in PSIS-LOO, where the importance ratios are
    # 1 / p(y_i | theta): it smooths the negated input. Pass the negated log ratios (a test
    # checks that the smoothed weights rise with the raw ones).
    raw = xr.DataArray(np.where(np.isfinite(log_w), -log_w, np.inf), dims=("draw",))
    smoothed, pareto_k = raw.azstats.psislw(dim="draw")
    return np.exp(smoothed.values - special.logsumexp(smoothed.values)), float(pareto_k)


def _sir(post: _Posterior, z_map: np.ndarray, n_draws: int, rng: np.random.Generator,
         df: float = 4.0, inflate: float = 1.5, defensive: float = 0.1
         ) -> tuple[np.ndarray, dict]:
    """Adaptive, Pareto-smoothed importance resampling with a defensive prior component.

    Each proposal is the mixture ``(1 - defensive) t_df(centre, scale) + defensive N(0, I)``: a
    Student-t plus the prior itself (Hesterberg's defensive importance sampling). Because the
    posterior is the prior times a bounded likelihood, the importance ratios are bounded by
    ``max likelihood / defensive`` however far the posterior is from Gaussian (a random effect
    the troughs do not inform, a censored-only record). The first proposal's t sits on the
    Laplace approximation (mode, ``inflate`` times the inverse-Hessian scale); the second, which
    gives the draws, on the importance-weighted mean and covariance of the first (one step of
    adaptive importance sampling).

    Returns the draws and ``importance_ess``, ``pareto_k`` (ArviZ's PSIS) and
    ``log_evidence``: ``log p(y | model, covariates)``, the log marginal likelihood of the
    observations, estimated as the log mean of the raw importance ratios (target and proposal
    are normalised densities), which model averaging uses.
    """
    k = z_map.size
    n_prop = max(4 * n_draws, 4000)
    try:
        chol = inflate * np.linalg.cholesky(np.linalg.inv(-_hessian(post, z_map)))
    except np.linalg.LinAlgError:
        chol = np.eye(k)
    z, log_w = _importance(post, z_map, chol, n_prop, rng, df, defensive)
    w, _ = _psis(log_w)
    mean = w @ z
    cov = (z - mean).T @ ((z - mean) * w[:, None])
    try:
        chol = np.linalg.cholesky(cov + 1e-9 * np.eye(k))
    except np.linalg.LinAlgError:
        mean = z_map
    z, log_w = _importance(post, mean, chol, n_prop, rng, df, defensive)
    finite = np.isfinite(log_w)
    log_evidence = float(special.logsumexp(log_w[finite]) - np.log(n_prop))
    w, pareto_k = _psis(log_w)
    ess = float(1.0 / np.sum(w * w))
    idx = rng.choice(n_prop, size=n_draws, replace=True, p=w)
    return z[idx], {"importance_ess": ess, "pareto_k": pareto_k, "log_evidence": log_evidence}


def _check_history(history: CovariateHistory, weight_kg) -> CovariateHistory:
    """The history with a constant weight added when given apart; refuse two weights."""
    if weight_kg is not None:
        if "weight_kg" in history.values:
            raise SpecificationError(
                "the covariate history has weight_kg: do not also pass weight_kg (or drop it "
                "from the history to use one constant weight)")
        history = history.with_values(weight_kg=weight_kg)
    if "weight_kg" not in history.values:
        raise SpecificationError(
            "give the patient's weight_kg (in the covariate history or as weight_kg=): it "
            "scales mg/kg doses and the model's volumes")
    return history


def _check_inputs(model, covariates, schedule, observations, weight_kg):
    if not isinstance(schedule, DoseSchedule):
        raise SpecificationError("schedule must be a DoseSchedule (the dosing history)")
    if not isinstance(observations, Observations):
        raise SpecificationError("observations must be an Observations object")
    history = None
    if isinstance(covariates, CovariateHistory):
        history = _check_history(covariates, weight_kg)
        covariates, weight_kg = history.last(), None
        if history.is_constant:  # the closed form: same numbers, faster
            history = None
    values = model.covariate_values(covariates)
    for k, v in values.items():
        if np.ndim(v) != 0:
            raise SpecificationError(f"covariate {k} must be one value for one patient")
    cov = {k: float(v) for k, v in values.items()}
    if weight_kg is None:
        weight_kg = (covariates or {}).get("weight_kg")
    if weight_kg is None:
        raise SpecificationError(
            "give the patient's weight_kg (in covariates): it scales mg/kg doses and the "
            "model's volumes")
    if "weight_kg" in cov:
        cov["weight_kg"] = float(weight_kg)
    if observations.times_days.min() < schedule.times_days[0]:
        raise SpecificationError(
            "an observation precedes the first dose; times are days since the first dose"
        )
    return cov, (None if weight_kg is None else float(weight_kg)), history


def estimate_individual(
    model: PopulationModel | str,
    covariates: Mapping[str, float] | CovariateHistory | None,
    schedule: DoseSchedule,
    observations: Observations,
    *,
    method: str = "map",
    weight_kg: float | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: str | None = None,
    random_seed: int | None = None,
    strict: bool = False,
    target_accept: float = 0.9,
    occasions: Occasions | Sequence[float] | None = None,
) -> IndividualEstimate:
    """The posterior of a patient's PK parameters given covariates, doses and observed troughs.

    Parameters
    ----------
    model : PopulationModel or str
        The population model used as prior.
    covariates : mapping or CovariateHistory
        The patient's covariates (``weight_kg``, ``albumin_g_dl``, ``ati``...); missing ones take
        the model's reference values. A :class:`~pkmodel.pk.covariates.CovariateHistory` for
        covariates that change during therapy (last value carried forward; mg/kg doses use the
        weight in force at each dose; eta constant within the patient).
    schedule : DoseSchedule
        The dosing history (mg/kg or mg).
    observations : Observations
        Observed concentrations, censored values allowed.
    method : {"map", "nuts"}, default "map"
        ``map``: posterior mode plus importance-resampled draws (fast); ``nuts``: full MCMC.
    weight_kg : float, optional
        Body weight for mg/kg doses; defaults to ``covariates["weight_kg"]``. With a covariate
        history, only when the history has no weight (it is then taken as constant).
    draws, tune, chains : int
        Posterior draws (per chain for NUTS), NUTS tuning steps and chains.
    sampler : {None, "nutpie"}, optional
        Deprecated: NUTS samples with nutpie, as every pkmodel fit (pkmodel 0.4 passed this to
        ``pymc.sample``); another sampler is an error.
    random_seed : int, optional
        The one seed of every random number used (default
        :data:`pkmodel.sampling.DEFAULT_RANDOM_SEED`: the same input gives the same output).
    strict : bool, default False
        Refuse an implausible estimate (random effects far outside the population, see
        :mod:`pkmodel.pk.plausibility`) with a :class:`~pkmodel.errors.PKDataError` instead of an
        :class:`~pkmodel.errors.ImplausibleEstimateWarning`. Either way the message names the
        likely unit slip (AMT in mg/kg, DV in ng/mL, TIME in hours or weeks) when one explains
        the data, and ``diagnostics["plausibility"]`` records the verdict.
    target_accept : float, default 0.9
        NUTS target acceptance rate (raise it, e.g. to 0.95, against divergences).
    occasions : Occasions or sequence of float, optional
        For a model with inter-occasion variability: the day each occasion starts (e.g. from
        the data's OCC column). Default one occasion per dosing interval, starting at each dose
        (:mod:`pkmodel.pk.occasions`). Ignored by a model without IOV.

    Returns
    -------
    IndividualEstimate

    Examples
    --------
    >>> from pkmodel.pk import DoseSchedule, Observations, estimate_individual
    >>> history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=30)
    >>> obs = Observations([98, 154, 210], [2.1, 1.8, 2.4])
    >>> est = estimate_individual("fasanmade2009", {"weight_kg": 70}, history, obs,
    ...                           random_seed=1)
    >>> sorted(est.map_parameters())
    ['cl', 'q', 'v1', 'v2']
    """
    model = get_model(model)
    if method not in ("map", "nuts"):
        raise SpecificationError(f"method must be 'map' or 'nuts', not {method!r}")
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains,
                               target_accept=target_accept, random_seed=random_seed)
    if sampler is not None:
        if sampler != "nutpie":
            raise SpecificationError(f"sampler {sampler!r}: NUTS samples with nutpie, as every "
                                     "pkmodel fit; drop sampler=")
        warnings.warn("sampler= is deprecated: NUTS samples with nutpie; drop it",
                      DeprecationWarning, stacklevel=2)
    random_seed = settings.random_seed
    if method == "nuts" and (model.bsv_blocks or model.parameter_names != tuple(PARAMETERS)):
        raise SpecificationError(f"method='nuts' takes two-compartment models with independent "
                                 f"random effects; {model.name} is a {model.structure.label()} "
                                 "model" + (" with correlated random effects"
                                            if model.bsv_blocks else "") + ": use method='map'")
    cov, weight, history = _check_inputs(model, covariates, schedule, observations, weight_kg)
    check_iov_structure(model, schedule)
    occ = resolve_occasions(occasions, schedule) if model.occasion_effects else None
    post = _Posterior(model, cov, weight, schedule, observations, history, occ)
    z_map, mode = _map(post)
    eta_map, kappa_map = post.split(z_map)
    k = post.n_eta

    def refit(sched: DoseSchedule, obs: Observations,
              time_factor: float) -> tuple[np.ndarray, float, np.ndarray]:
        scaled = (None if history is None
                  else CovariateHistory(history.times_days * time_factor, history.values))
        other_occ = (None if occ is None else resolve_occasions(None, sched)
                     if occasions is None else occ.scaled(time_factor))
        other = _Posterior(model, cov, weight, sched, obs, scaled, other_occ)
        z, info = _map(other)
        return z[:k], info["log_posterior_at_mode"], other.residuals(z)

    # the plausibility of the patient's random effects (an occasion's kappa is not judged)
    verdict = assess(model, cov, weight, schedule, observations,
                     (z_map[:k], mode["log_posterior_at_mode"], post.residuals(z_map)), refit)
    mode["plausibility"] = {"plausible": verdict.plausible, "tail_p": verdict.tail_p,
                            "message": verdict.message, "likely_cause": verdict.likely_cause}
    if not verdict.plausible:
        if strict:
            column = (verdict.likely_cause or "").split(" ")[0] or None
            raise PKDataError(verdict.message, column=column,
                              fix="correct the data, or drop --strict to see the estimate")
        warnings.warn(verdict.message, ImplausibleEstimateWarning, stacklevel=2)
    if method == "map":
        rng = np.random.default_rng(random_seed)
        z_draws, importance = _sir(post, z_map, draws, rng)
        diagnostics = {**mode, **importance}
        if importance["pareto_k"] > PARETO_K_MAX:
            warnings.warn(
                f"the importance-sampling approximation is unreliable (Pareto k-hat "
                f"{importance['pareto_k']:.2f} > {PARETO_K_MAX}); use method='nuts' for this "
                "patient", ConvergenceWarning, stacklevel=2)
        eta_draws, kappa_draws = post.split(z_draws)
        return IndividualEstimate(model, cov, weight, schedule, observations, "map", eta_map,
                                  eta_draws, diagnostics, covariate_history=history,
                                  occasions=post.occasions, kappa_map=kappa_map,
                                  kappa_draws=kappa_draws)
    eta_draws, kappa_draws, tree, diagnostics = _nuts(post, z_map, settings)
    diagnostics["plausibility"] = mode["plausibility"]
    return IndividualEstimate(model, cov, weight, schedule, observations, "nuts", eta_map,
                              eta_draws, diagnostics, tree, covariate_history=history,
                              occasions=post.occasions, kappa_map=kappa_map,
                              kappa_draws=kappa_draws)


#: What to check when the sampler cannot run an individual model.
FAILURE_HINT = ("check the doses, sampling times and troughs (AMT in mg or mg/kg, DV in µg/mL, "
                "TIME in days since the first dose) against the population model")
#: The priors named in the gate's remedy for divergent transitions.
HIERARCHICAL_PRIORS = "the population model's between-subject variability (omega)"


def _nuts(post: _Posterior, z_map, settings: SamplerSettings):
    """NUTS on the posterior of ``post`` (standardised random effects ``z``, starting near
    ``z_map``): the draws of eta and of kappa (None without IOV), nutpie's tree, and the
    convergence gate as a dict."""
    import pymc as pm
    import pytensor.tensor as pt

    model, obs = post.model, post.obs
    names = list(model.random_effects)
    exact = np.flatnonzero(obs.cens == 0)
    left = np.flatnonzero((obs.cens == 1) & np.isneginf(obs.lower))
    right = np.flatnonzero((obs.cens == -1) & np.isposinf(obs.upper))
    interval = np.setdiff1d(np.flatnonzero(obs.cens != 0), np.concatenate([left, right]))
    k = post.n_eta
    iov = list(model.occasion_effects) if post.occasions is not None else []
    coords = {"eta_dim": names} | ({"occasion": np.arange(len(post.occasions)),
                                   "kappa_dim": iov} if iov else {})
    with pm.Model(coords=coords) as pm_model:
        z = pm.Normal("z", 0.0, 1.0, dims="eta_dim", initval=z_map[:k])
        eta = pm.Deterministic("eta", z * post.sd[:k], dims="eta_dim")
        values = post.typical()
        for i, p in enumerate(names):
            values[p] = values[p] * pt.exp(eta[i])
        if iov:
            z_kappa = pm.Normal("z_kappa", 0.0, 1.0, dims=("occasion", "kappa_dim"),
                                initval=z_map[k:].reshape(len(post.occasions), len(iov)))
            kappa = pm.Deterministic("kappa", z_kappa * model.omega_iov_sd,
                                     dims=("occasion", "kappa_dim"))
            for j, p in enumerate(iov):  # each stretch has its occasion's kappa
                values[p] = values[p] * pt.exp(kappa[post.stretch_occasion, j])
        for p in PARAMETERS:  # under a covariate history or occasions: at the last stretch
            value = pt.as_tensor_variable(values[p])
            pm.Deterministic(p, value if post.change is None else value[-1])
        pred = post.predict_values(values, xp=pt)
        sd = pt.sqrt(model.additive_sd_ug_ml**2 + (model.proportional_sd * pred) ** 2)
        if exact.size:
            pm.Normal("y", mu=pred[exact], sigma=sd[exact], observed=obs.values_ug_ml[exact])
        # PyMC's Censored scores a value at ``lower`` as P(Y <= lower) and one at ``upper`` as
        # P(Y >= upper): a trough below the LLOQ sits at its ``lower`` bound, one above the
        # upper limit at its ``upper`` bound (tests/pk/test_pk_estimation.py checks both against
        # an exact grid posterior).
        if left.size:
            pm.Censored("y_below_lloq", pm.Normal.dist(pred[left], sd[left]),
                        lower=obs.values_ug_ml[left], upper=None,
                        observed=obs.values_ug_ml[left])
        if right.size:
            pm.Censored("y_above_uloq", pm.Normal.dist(pred[right], sd[right]), lower=None,
                        upper=obs.values_ug_ml[right], observed=obs.values_ug_ml[right])
        if interval.size:
            dist = pm.Normal.dist(pred[interval], sd[interval])
            log_u = pm.logcdf(dist, obs.upper[interval])
            log_l = pm.logcdf(dist, obs.lower[interval])
            pm.Potential("y_interval", pt.sum(log_u + pt.log1mexp(log_l - log_u)))

    def compile_model():
        import nutpie

        # no fast-math, as for every model pkmodel samples (pkmodel.sampling.exact_arithmetic)
        with warnings.catch_warnings(), exact_arithmetic():
            warnings.simplefilter("ignore", UserWarning)
            return nutpie.compile_pymc_model(pm_model)

    tree = sample_nuts(compile_model, settings, failure_hint=FAILURE_HINT)
    posterior = tree["posterior"].to_dataset()
    eta_draws = posterior["eta"].values.reshape(-1, len(names))
    kappa_draws = (posterior["kappa"].values.reshape(-1, len(post.occasions), len(iov))
                   if iov else None)
    gate = compute_diagnostics(posterior, tree["sample_stats"].to_dataset(),
                               ["eta", "kappa"] if iov else ["eta"],
                               hierarchical_priors=HIERARCHICAL_PRIORS)
    diagnostics = gate.to_dict() | {
        "problems": gate.problems(),
        # the names of pkmodel 0.4
        "rhat_max": gate.max_rhat, "ess_bulk_min": gate.min_ess_bulk,
        "ess_tail_min": gate.min_ess_tail, "draws": gate.n_draws, "chains": gate.n_chains}
    if not gate.converged:
        warnings.warn("NUTS did not pass its convergence checks:\n  - "
                      + "\n  - ".join(gate.problems())
                      + "\nDo not use this estimate before fixing this.",
                      ConvergenceWarning, stacklevel=3)
    return eta_draws, kappa_draws, tree, diagnostics
