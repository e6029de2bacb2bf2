"""The predictive groups of a population fit: log likelihood, observed and replicated data.

What ArviZ's ``loo``, ``compare``, ``loo_pit`` and predictive-check plots read, computed from the
posterior draws with the model's own equations (:mod:`~pkmodel.pk.population.equations`):

* ``log_likelihood``: ``y`` (chain, draw, observation), each observation's log density given
  the draw and its subject's random effects: Normal for an observed value, ``log P(Y < LLOQ)``
  for one below the LLOQ (Beal's M3 term, as in the PyMC model), ``log P(Y > limit)`` for one
  above; and ``y_by_subject`` (chain, draw, subject), each subject's log likelihood with its
  random effects integrated out (adaptive Gauss-Hermite quadrature,
  :func:`subject_log_likelihood`): leaving a
  subject out is how a new patient arrives, so subject-level LOO reads this one;
* ``observed_data``: ``y`` (the value, or the limit of a censored one, µg/mL);
* ``constant_data``: each observation's ``time_days``, ``subject`` (its ID) and ``cens``;
* ``posterior_predictive``: ``y`` replicated from each draw (its own random effects, new
  residual error; not censored).

The draw-by-observation arrays are stored in single precision (7 significant digits; a fit of
1,000 patients with 2,000 observations and 4,000 draws adds about 80 MB).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats
from scipy.special import logsumexp

from pkmodel.pk.population.build import model_data
from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.equations import (
    individual_log_parameters,
    omega_matrix,
    predict,
    residual_sd,
    sum_by_group,
)
from pkmodel.pk.population.spec import PopulationSpec

__all__ = ["IOV_QUADRATURE_NODES", "OCCASION_NODES", "QUADRATURE_NODES", "log_density",
           "observation_log_likelihood", "posterior_values", "predictive_groups",
           "quadrature_nodes", "subject_log_likelihood"]

#: Quadrature nodes per subject that integrate its random effects out of its likelihood.
QUADRATURE_NODES = 64
_UNIT = "µg/mL"


def posterior_values(spec: PopulationSpec, posterior: xr.Dataset,
                     pick: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The equations' inputs at posterior draws: population values shaped ``(draws, 1)``,
    ``eta_<p>`` shaped ``(draws, subjects)``, ``kappa_<p>`` ``(draws, subjects, occasions)``,
    ``omega_<p>``, ``omega_iov_<p>`` and correlations ``(draws, 1)``.

    Parameters
    ----------
    spec : PopulationSpec
        The model (its parameters with BSV and correlations).
    posterior : xarray.Dataset
        ``(chain, draw[, subject])`` variables.
    pick : numpy.ndarray, optional
        Indices of the draws (chains stacked, chain-major); default all.
    """
    post = posterior.stack(sample=("chain", "draw"))
    pick = np.arange(post.sizes["sample"]) if pick is None else pick
    out = {k: post[k].values[pick][:, None] for k in post.data_vars
           if k.startswith(("log_tv_", "theta_", "sigma_", "omega_"))
           or k in spec.correlation_names}
    out |= {f"eta_{p}": post[f"eta_{p}"].transpose("sample", "subject").values[pick]
            for p in spec.bsv_parameters}
    out |= {f"kappa_{p}": post[f"kappa_{p}"].transpose("sample", "subject", "occasion")
            .values[pick] for p in spec.iov_parameters}
    return out


def log_density(spec: PopulationSpec, data: PopulationData, pred: np.ndarray,
                 values: dict) -> np.ndarray:
    """Each observation's log density at predictions ``pred`` (last axis: observations)."""
    # a prediction of 0 under a purely proportional error (SD 0): the value is impossible
    sd = np.maximum(residual_sd(spec, pred, values), 1e-300)
    sd = np.broadcast_to(sd, pred.shape)
    y, cens = data.obs_value_ug_ml, data.obs_cens
    z = (y - pred) / sd
    out = -0.5 * z**2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
    for code, tail in ((1, stats.norm.logcdf), (-1, stats.norm.logsf)):
        columns = np.flatnonzero(cens == code)
        if columns.size:  # only where needed: scipy's log CDF is slow
            out[..., columns] = tail(z[..., columns])
    return out


def observation_log_likelihood(spec: PopulationSpec, data: PopulationData,
                               values: dict) -> np.ndarray:
    """``(draws, observations)`` log likelihood of each observation given the draws' values
    (:func:`posterior_values`), censored ones by their log CDF (or survival function)."""
    arrays = model_data(spec, data)
    pred = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    return log_density(spec, data, pred, values)


def quadrature_nodes(k: int, budget: int = QUADRATURE_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes ``(n, k)`` and log weights ``(n,)`` of a ``k``-dimensional standard
    normal: the product rule with ``floor(budget^(1/k))`` nodes per dimension (at least 3, at
    most 20: one random effect needs no more)."""
    per = max(3, min(20, int(np.floor(budget ** (1.0 / k) + 1e-9))))
    x, w = np.polynomial.hermite_e.hermegauss(per)
    grids = np.meshgrid(*([x] * k), indexing="ij")
    logw = sum(np.meshgrid(*([np.log(w / np.sqrt(2 * np.pi))] * k), indexing="ij"))
    return np.stack([g.ravel() for g in grids], axis=-1), logw.ravel()


def subject_log_likelihood(spec: PopulationSpec, data: PopulationData,
                           values: dict) -> np.ndarray:
    """``(draws, subjects)`` log likelihood of each subject's observations with its random
    effects integrated out: ``log p(y_i | theta) = log E_eta[p(y_i | eta, theta)]``.

    Adaptive Gauss-Hermite quadrature: the product rule of :func:`quadrature_nodes` placed on
    each subject's etas by the mean and Cholesky factor of their posterior over all draws
    (``eta = m_i + L_i z``), and ``p(y_i | theta) = sum_j w_j p(y_i | eta_j, theta)
    p(eta_j | Omega) / phi(z_j)``, with ``p(eta | Omega)`` the population distribution at each
    draw (its BSV blocks correlated). With inter-occasion variability, each occasion's
    observations depend on its own kappas only, so that ``p(y_i | eta, theta)`` is the product
    over occasions of ``E_kappa[p(y_io | eta, kappa, theta)]``, each by the same rule
    (:data:`OCCASION_NODES` nodes) placed on that occasion's kappas given the eta node: the
    linear regression of the kappa draws on the subject's eta draws gives their conditional
    mean and SD (kappa and eta of one parameter are strongly correlated a posteriori: the data
    inform their sum). Exact when the model has no random effects.
    """
    names = spec.bsv_parameters
    arrays = model_data(spec, data)
    n_draws = next(iter(values.values())).shape[0]
    n_sub = data.n_subjects
    if not names and not spec.iov_parameters:
        return sum_by_group(observation_log_likelihood(spec, data, values), data.obs_subject,
                            n_sub)
    k = len(names)
    eta = np.zeros((1, n_sub, 0))
    post_eta = np.zeros((n_draws, n_sub, 0))
    log_jac, log_node = 0.0, np.zeros(1)
    if k:
        post_eta = np.stack([values[f"eta_{p}"] for p in names], axis=-1)  # (S, n_sub, k)
        mean = post_eta.mean(axis=0)
        centred = post_eta - mean
        cov = np.einsum("sik,sil->ikl", centred, centred) / max(n_draws - 1, 1)
        chol_post = np.linalg.cholesky(cov + 1e-12 * np.eye(k))  # (n_sub, k, k)
        # with occasions, each eta node multiplies the occasions' nodes: fewer of them
        z, log_w = quadrature_nodes(k, QUADRATURE_NODES if not spec.iov_parameters
                                    else IOV_QUADRATURE_NODES)
        eta = mean + np.einsum("ikl,ml->mik", chol_post, z)  # (M, n_sub, k)
        # log |L_i| + log w_j - log phi(z_j): the change of variable and the rule's weights
        log_jac = np.sum(np.log(np.diagonal(chol_post, axis1=-2, axis2=-1)), axis=-1)
        log_node = log_w + 0.5 * np.sum(z**2, axis=-1) + 0.5 * k * np.log(2 * np.pi)
        omegas = np.stack([omega_matrix(spec, {key: float(v[s, 0]) for key, v in values.items()
                                               if v.ndim == 2 and v.shape[-1] == 1})
                           for s in range(n_draws)])
        inv_chol = np.linalg.inv(np.linalg.cholesky(omegas + 1e-12 * np.eye(k)))  # (S, k, k)
        log_det = -np.sum(np.log(np.diagonal(inv_chol, axis1=-2, axis2=-1)), axis=-1)  # (S,)
    occasions = (_Occasions(spec, data, arrays, values, post_eta, eta)
                 if spec.iov_parameters else None)
    population = {key: v for key, v in values.items() if not key.startswith(("eta_", "kappa_"))}
    inner = 1 if occasions is None else occasions.nodes.shape[0]
    # about 2 million pairs a chunk (memory)
    chunk = max(1, 2_000_000 // (eta.shape[0] * inner * max(arrays["pair_obs"].size, 1)))
    out = np.empty((n_draws, n_sub))
    for start in range(0, n_draws, chunk):
        stop = min(start + chunk, n_draws)
        if occasions is None:
            vals = {key: v[start:stop, None] for key, v in population.items()}  # (B, 1, 1)
            vals |= {f"eta_{p}": eta[..., j] for j, p in enumerate(names)}  # (M, n_sub)
        else:  # a further axis for the occasions' nodes: (B, M, N, ...)
            vals = {key: v[start:stop, None, None] for key, v in population.items()}
            vals |= {f"eta_{p}": eta[:, None, :, j] for j, p in enumerate(names)}
            vals |= occasions.kappa  # (M, N, n_sub, n_occasions)
        pred = predict(spec, arrays, individual_log_parameters(spec, arrays, vals))
        dens = log_density(spec, data, pred, vals)
        ll = (sum_by_group(dens, data.obs_subject, n_sub) if occasions is None
              else occasions.integrate(dens, vals))  # (B, M, n_sub)
        if not k:
            out[start:stop] = ll[:, 0]
            continue
        white = np.einsum("bkl,mil->bmik", inv_chol[start:stop], eta)
        log_prior = (-0.5 * np.sum(white**2, axis=-1) - log_det[start:stop, None, None]
                     - 0.5 * k * np.log(2 * np.pi))
        out[start:stop] = logsumexp(ll + log_prior + log_node[None, :, None], axis=1) + log_jac
    return out


#: Quadrature nodes per occasion that integrate its occasion effects (kappas) out, and the
#: eta nodes of a model with occasions (the cost is their product; on the test's subjects 5 x 5
#: eta nodes and 8 kappa nodes agree with 8 x 8 and 16 to 0.001, with importance sampling to
#: 0.005).
OCCASION_NODES = 8
IOV_QUADRATURE_NODES = 25


class _Occasions:
    """The occasion effects of :func:`subject_log_likelihood`: nodes placed on each (subject,
    occasion) cell with observations given each eta node, and the integral over them."""

    def __init__(self, spec: PopulationSpec, data: PopulationData, arrays: dict,
                 values: dict, post_eta: np.ndarray, eta_nodes: np.ndarray) -> None:
        self.names = spec.iov_parameters
        n_sub, n_occ = data.n_subjects, max(data.n_occasions, 1)
        cell = arrays["obs_kappa_index"]
        self.cells = np.unique(cell)  # those with observations
        self.obs_cell = np.searchsorted(self.cells, cell)  # each observation's cell, 0..C-1
        subject = self.cells // n_occ
        self.cell_subject, self.n_sub = subject, n_sub
        self.nodes, log_w = quadrature_nodes(len(self.names), OCCASION_NODES)  # (N, q)
        # each cell's kappa regressed on its subject's etas over the draws
        x = post_eta[:, subject] - post_eta[:, subject].mean(axis=0)  # (S, C, k)
        shift = eta_nodes[:, subject] - post_eta[:, subject].mean(axis=0)  # (M, C, k)
        gram = np.einsum("sck,scl->ckl", x, x) + 1e-9 * np.eye(x.shape[-1])
        self.kappa, log_sd = {}, 0.0
        for j, p in enumerate(self.names):
            draws = values[f"kappa_{p}"].reshape(values[f"kappa_{p}"].shape[0], -1)
            y = draws[:, self.cells] - draws[:, self.cells].mean(axis=0)  # (S, C)
            beta = (np.linalg.solve(gram, np.einsum("sck,sc->ck", x, y)[..., None])[..., 0]
                    if x.shape[-1] else np.zeros((self.cells.size, 0)))
            resid = y - np.einsum("sck,ck->sc", x, beta)
            sd = np.maximum(resid.std(axis=0, ddof=1), 1e-6)
            mean = draws[:, self.cells].mean(axis=0) + np.einsum("mck,ck->mc", shift, beta)
            node = mean[:, None, :] + sd * self.nodes[None, :, j, None]  # (M, N, C)
            full = np.zeros((*node.shape[:2], n_sub * n_occ))  # cells without data: 0
            full[..., self.cells] = node
            self.kappa[f"kappa_{p}"] = full.reshape(*node.shape[:2], n_sub, n_occ)
            log_sd = log_sd + np.log(sd)
        q = len(self.names)
        # log w + log 1/phi(x) + log |sd|: the rule's weights and the change of variable
        self.log_node = ((log_w + 0.5 * np.sum(self.nodes**2, axis=-1)
                          + 0.5 * q * np.log(2 * np.pi))[:, None] + log_sd)  # (N, C)

    def integrate(self, dens: np.ndarray, vals: dict) -> np.ndarray:
        """``(B, M, n_sub)``: the log likelihood of each subject at each eta node, its
        occasions' kappas integrated out, from the log densities ``(B, M, N, n_obs)``."""
        ll = sum_by_group(dens, self.obs_cell, self.cells.size)  # (B, M, N, C)
        for p in self.names:
            kappa = self.kappa[f"kappa_{p}"]
            kappa = kappa.reshape(*kappa.shape[:2], -1)[..., self.cells]  # (M, N, C)
            omega = vals[f"omega_iov_{p}"]  # (B, 1, 1, 1)
            ll = ll - 0.5 * (kappa / omega) ** 2 - np.log(omega) - 0.5 * np.log(2 * np.pi)
        return sum_by_group(logsumexp(ll + self.log_node, axis=2), self.cell_subject,
                            self.n_sub)


def predictive_groups(spec: PopulationSpec, data: PopulationData, posterior: xr.Dataset,
                      random_seed: int) -> dict[str, xr.Dataset]:
    """The ``log_likelihood``, ``observed_data``, ``constant_data`` and
    ``posterior_predictive`` groups of a fit (see the module's description), with units."""
    rng = np.random.default_rng([int(random_seed), 27])
    values = posterior_values(spec, posterior)
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    arrays = model_data(spec, data)
    pred = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    ll = log_density(spec, data, pred, values)
    ll_subject = subject_log_likelihood(spec, data, values)
    replicated = pred + residual_sd(spec, pred, values) * rng.standard_normal(pred.shape)
    obs = {"observation": np.arange(data.n_observations)}
    subjects = {"subject": list(data.subject_ids)}
    dims = ("chain", "draw")
    chain_draw = {"chain": posterior["chain"].values, "draw": posterior["draw"].values}
    ids = np.asarray(data.subject_ids, dtype=str)
    return {
        "log_likelihood": xr.Dataset({
            "y": xr.DataArray(ll.reshape(*shape, -1).astype(np.float32),
                              dims=(*dims, "observation"),
                              attrs={"units": f"log density of y in {_UNIT}",
                                     "censored": "log P(Y < LLOQ) below, log P(Y > limit) "
                                                 "above"}),
            "y_by_subject": xr.DataArray(ll_subject.reshape(*shape, -1).astype(np.float32),
                                         dims=(*dims, "subject"),
                                         attrs={"units": "log density of a subject's y, its "
                                                         "random effects integrated out"})},
            coords=chain_draw | obs | subjects),
        "observed_data": xr.Dataset({"y": xr.DataArray(
            data.obs_value_ug_ml, dims="observation",
            attrs={"units": _UNIT, "long_name": "concentration (the limit when censored)"})},
            coords=obs),
        "constant_data": xr.Dataset({
            "time_days": xr.DataArray(data.obs_time_days, dims="observation",
                                      attrs={"long_name": "time since the subject's first dose, "
                                                   "days"}),
            "subject": xr.DataArray(ids[data.obs_subject], dims="observation"),
            "cens": xr.DataArray(data.obs_cens, dims="observation",
                                 attrs={"units": "0 observed, 1 below the LLOQ, -1 above a "
                                                 "limit"})}, coords=obs),
        "posterior_predictive": xr.Dataset({"y": xr.DataArray(
            replicated.reshape(*shape, -1).astype(np.float32), dims=(*dims, "observation"),
            attrs={"units": _UNIT, "long_name": "replicated concentration (not censored)"})},
            coords=chain_draw | obs),
    }
