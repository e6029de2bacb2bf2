"""The marginal likelihood of a patient's outcomes, with the patient effect integrated out.

For patient i with assessments j (outcome y_ij, linear predictor eta_ij) and a patient effect
u_i ~ Normal(0, sigma), the likelihood is

    M_i = integral prod_j Bernoulli(y_ij | expit(eta_ij + u)) dN(u | 0, sigma)
        ~= sum_k w_k prod_j expit(s_ij (eta_ij + sigma x_k)),    s_ij = 2 y_ij - 1,

with the 24-node Gauss-Hermite rule (x_k, w_k) for a standard normal. This module evaluates
log M_i and its gradient with respect to eta and sigma in one fused Numba loop, exposed to
PyMC as the PyTensor Op :func:`marginal_bernoulli_logp`.

Why an Op: written as a PyTensor expression the rule needs a softplus per (patient, month,
node) and a log-sum-exp over nodes, in several passes over (patient, month, node) temporaries;
sampling spent most of its time there. The kernel instead works in probability space, where
each term costs one multiplication and one division,

    expit(s (eta + sigma x_k)) = 1 / (1 + exp(-s eta) exp(-s sigma x_k)),

with exp(-s eta) once per assessment and exp(-+sigma x_k) once per value of sigma. Probability space
overflows or underflows when |eta| + sigma |x_k| summed over a patient's assessments is
large; such patients (those that NUTS visits far out in warm-up) take the log-space path,
softplus and log-sum-exp, which is exact everywhere. ``tests/response/test_marginal.py`` checks both
paths against the PyTensor log-space expression and scipy quadrature, values and gradients,
including |eta| up to 1e4 and sigma up to 50.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

__all__ = ["GH_NODES", "GH_WEIGHTS", "KERNEL_VERSION", "marginal_bernoulli_logp"]

#: The version of :func:`marginal_bernoulli_kernel` and its Numba dispatch. Bump it whenever
#: either changes what they compute or how they are compiled: it is part of PyTensor's Numba
#: cache key of the Op (``register_funcify_default_op_cache_key``, which otherwise keys on the
#: Op's type and props only, and would serve the old kernel's code from PyTensor's cache) and
#: of the compiled-model cache key (:func:`pkmodel.response.compiled.model_key`, which reads
#: it from this file's source). A plain integer literal.
KERNEL_VERSION = 1

GH_NODES, _raw_weights = np.polynomial.hermite_e.hermegauss(24)  # for e ~ N(0, 1)
GH_WEIGHTS = _raw_weights / _raw_weights.sum()
# Probability space is used while the sum over a patient's assessments of |eta| + sigma |x|
# stays below this: every exp() is then finite and every product above 1e-260.
_FAST_BOUND = 600.0
_TINY = 1e-280


@numba.njit(cache=True)
def _log_expit(t: float) -> float:
    if t > 0.0:
        return -np.log1p(np.exp(-t))
    return t - np.log1p(np.exp(t))


@numba.njit(cache=True)
def _expit(t: float) -> float:
    if t >= 0.0:
        return 1.0 / (1.0 + np.exp(-t))
    e = np.exp(t)
    return e / (1.0 + e)


# NumPy's error model drops Python's zero-division check from each division, so the node loops
# vectorise. No fast-math flag: with reassociation or contraction LLVM may sum the nodes in a
# different order when this kernel is compiled on its own (a fit that compiles its model) than
# when it is inlined into a cached model's object code (a fit that loads it), and the two fits
# of the same seed then part after a few hundred draws from a last-bit difference.
@numba.njit(cache=True, error_model="numpy")
def marginal_bernoulli_kernel(y, eta, sigma, mask):
    """log M_i, d log M_i / d eta_ij and d log M_i / d sigma for every patient i.

    Parameters
    ----------
    y : int64 array (patient, month)
        Outcomes, 0 or 1.
    eta : float64 array (patient, month)
        Linear predictors without the patient effect.
    sigma : float64 array (patient,) or (1,)
        Standard deviation of the patient effect (logit scale), >= 0: one for all patients, or
        one per patient (the node factors are recomputed only when it changes).
    mask : float64 array (patient, month)
        Non-zero where the assessment exists; missing ones do not contribute.

    Returns
    -------
    logp : float64 array (patient,)
    d_eta : float64 array (patient, month)
    d_sigma : float64 array (patient,)
    """
    n_pat, n_month = eta.shape
    x = GH_NODES
    w = GH_WEIGHTS
    n_node = x.size
    x_max = np.abs(x).max()
    logp = np.empty(n_pat)
    d_eta = np.zeros((n_pat, n_month))
    d_sigma = np.zeros(n_pat)
    # Loops over nodes are innermost and branch-free, so that they vectorise.
    factor_pos = np.empty(n_node)  # exp(-sigma x_k): the factor of node k for s = +1
    factor_neg = np.empty(n_node)  # exp(sigma x_k), for s = -1
    term = np.empty(n_node)  # w_k L_ik, then the posterior weight of node k
    g = np.empty(n_month * n_node)  # s_ij (1 - expit(s_ij (eta_ij + sigma x_k))) at j * n_node + k
    g_sum = np.empty(n_node)
    shared = sigma.size == 1
    for i in range(n_pat):
        sd = sigma[0] if shared else sigma[i]
        if i == 0 or (not shared and sd != sigma[i - 1]):
            for k in range(n_node):
                factor_pos[k] = np.exp(-sd * x[k])
                factor_neg[k] = np.exp(sd * x[k])
        bound = 0.0
        for j in range(n_month):
            if mask[i, j] != 0.0:
                bound += abs(eta[i, j]) + sd * x_max
        done = False
        if bound < _FAST_BOUND:  # probability space
            for k in range(n_node):
                term[k] = w[k]
            for j in range(n_month):
                if mask[i, j] == 0.0:
                    continue
                s = 1.0 if y[i, j] > 0 else -1.0
                a = np.exp(-s * eta[i, j])
                factor = factor_pos if s > 0 else factor_neg
                row = j * n_node
                for k in range(n_node):
                    q = a * factor[k]
                    p = 1.0 / (1.0 + q)
                    term[k] *= p
                    g[row + k] = s * q * p
            total = 0.0
            for k in range(n_node):
                total += term[k]
            if total > _TINY:
                logp[i] = np.log(total)
                inv = 1.0 / total
                for k in range(n_node):
                    term[k] *= inv
                done = True
        if not done:  # log space: exact for any eta and sigma
            for k in range(n_node):
                term[k] = np.log(w[k])
            for j in range(n_month):
                if mask[i, j] == 0.0:
                    continue
                s = 1.0 if y[i, j] > 0 else -1.0
                row = j * n_node
                for k in range(n_node):
                    t = s * (eta[i, j] + sd * x[k])
                    term[k] += _log_expit(t)
                    g[row + k] = s * _expit(-t)
            top = -np.inf
            for k in range(n_node):
                top = max(top, term[k])
            total = 0.0
            for k in range(n_node):
                total += np.exp(term[k] - top)
            logp[i] = top + np.log(total)
            for k in range(n_node):
                term[k] = np.exp(term[k] - logp[i])
        for k in range(n_node):
            g_sum[k] = 0.0
        for j in range(n_month):
            if mask[i, j] == 0.0:
                continue
            acc = 0.0
            row = j * n_node
            for k in range(n_node):
                acc += term[k] * g[row + k]
                g_sum[k] += g[row + k]
            d_eta[i, j] = acc
        acc = 0.0
        for k in range(n_node):
            acc += term[k] * x[k] * g_sum[k]
        d_sigma[i] = acc
    return logp, d_eta, d_sigma


class MarginalBernoulliLogp(Op):
    """log M_i per patient, with its gradient as extra outputs (used by ``L_op`` only).

    Inputs: y (int64), eta (float64) and mask (float64), all (patient, month), and sigma
    (float64, (1,) or (patient,)). Outputs: logp (patient,), d_eta (patient, month) and
    d_sigma (patient,).
    """

    __props__ = ()

    def make_node(self, y, eta, sigma, mask):
        y = pt.as_tensor_variable(y)
        eta = pt.as_tensor_variable(eta)
        sigma = pt.as_tensor_variable(sigma)
        mask = pt.as_tensor_variable(mask)
        if (y.ndim, eta.ndim, sigma.ndim, mask.ndim) != (2, 2, 1, 2):
            raise TypeError("marginal_bernoulli_logp takes 2-d y, eta, mask and 1-d sigma")
        if y.dtype != "int64" or {eta.dtype, sigma.dtype, mask.dtype} != {"float64"}:
            raise TypeError("marginal_bernoulli_logp takes int64 y and float64 eta, sigma, mask")
        outputs = [pt.dvector(), pt.dmatrix(), pt.dvector()]
        return Apply(self, [y, eta, sigma, mask], outputs)

    def perform(self, node, inputs, output_storage):
        y, eta, sigma, mask = inputs
        results = marginal_bernoulli_kernel(y, eta, sigma, mask)
        for storage, value in zip(output_storage, results, strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        y_shape = shapes[0]
        return [(y_shape[0],), y_shape, (y_shape[0],)]

    def connection_pattern(self, node):
        return [[False, False, False], [True, True, True], [True, True, True],
                [False, False, False]]

    def pullback(self, inputs, outputs, cotangents):
        g_logp, g_deta, g_dsigma = cotangents
        for g in (g_deta, g_dsigma):
            if not isinstance(g.type, DisconnectedType):
                raise NotImplementedError("second derivatives of the marginal likelihood")
        _, d_eta, d_sigma = outputs
        g_sigma = g_logp * d_sigma
        if inputs[2].type.shape[0] == 1:
            g_sigma = g_sigma.sum(keepdims=True)
        return [DisconnectedType()(), g_logp[:, None] * d_eta, g_sigma, DisconnectedType()()]


_marginal_op = MarginalBernoulliLogp()


@register_funcify_default_op_cache_key(MarginalBernoulliLogp)
def _numba_marginal(op, node=None, **kwargs):
    """The Op's Numba function, with :data:`KERNEL_VERSION` as the salt of its cache key."""

    @numba.njit
    def marginal(y, eta, sigma, mask):
        return marginal_bernoulli_kernel(y, eta, sigma, mask)

    return marginal, KERNEL_VERSION


def marginal_bernoulli_logp(value, eta, sigma, mask):
    """log of the integral over u ~ N(0, sigma) of prod_j Bernoulli(y_j | expit(eta_j + u)).

    Parameters
    ----------
    value : tensor (patient, month)
        Outcomes 0/1.
    eta : tensor (patient, month)
        Linear predictors without the patient effect.
    sigma : tensor, scalar or (patient,)
        Standard deviation of the patient effect.
    mask : tensor (patient, month)
        1 where the assessment exists, 0 where it is missing.

    Returns
    -------
    tensor (patient,)
        The log-likelihood of each patient's assessments; differentiable in eta and sigma.
    """
    value, eta, mask = (pt.as_tensor_variable(v) for v in (value, eta, mask))
    shapes = {value.type.shape, eta.type.shape, mask.type.shape}
    if len(shapes) > 1 or None in next(iter(shapes)):  # (copies only when they differ)
        value, eta, mask = pt.broadcast_arrays(value, eta, mask)
    sigma = pt.as_tensor_variable(sigma).ravel()
    if sigma.type.shape != (1,):
        sigma = pt.broadcast_to(sigma, (eta.shape[0],))
    return _marginal_op(pt.cast(value, "int64"), pt.cast(eta, "float64"),
                        pt.cast(sigma, "float64"), pt.cast(mask, "float64"))[0]
