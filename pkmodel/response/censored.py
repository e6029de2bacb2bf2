"""The likelihood of a patient whose baseline TL is censored, with the TL integrated out.

A TL reported beyond an assay limit ``L`` (">16", or below a lower limit) is a true log TL ``x``
on one side of ``L`` (``side = +1`` above, ``-1`` below). The patient's likelihood, outcomes and
censored TL together, is

    I_i = integral over x beyond L of N(x | mu, sigma) M_i(eta_i0 + slope_i x) dx,

where ``M_i`` is the marginal likelihood of the patient's outcomes over the patient effect
(:mod:`pkmodel.response.marginal`, Gauss-Hermite in the patient effect) and the log-odds is
linear in ``x``. No latent TL is sampled: the rule is Gauss-Legendre on the normal's tail
probability scale. With ``b = side (L - mu) / sigma`` and ``s = P(beyond) = Phi_c(b)``,

    x_k = mu + side sigma Phi_c^{-1}(s t_k),   I_i ~= s sum_k w_k M_i(x_k),

with ``t_k = u_k^2`` and ``w_k = 2 u_k v_k`` for the 16 Gauss-Legendre nodes ``u_k`` and weights
``v_k`` on (0, 1). The nodes follow the tail wherever the limit lies (far out, at the mean, or on
the far side). On the plain probability scale (``t = u``) the integrand has a logarithmic
singularity where the tail probability goes to 0 (``x`` grows like ``sqrt(-2 log t)`` while
``M_i`` still changes): 2e-3 worst error in log I over slopes and spreads where 16 nodes at
``t = u^2``, which damps that end, give 3e-6. ``tests/response/test_censored.py`` checks
the rule against ``scipy.integrate.quad`` of the integral itself and its gradient against finite
differences. The gradient is that of the rule (nodes move with ``mu`` and ``sigma``), so NUTS
sees one consistent function: ``dz_k/db = t_k phi(b) / phi(z_k)`` for ``z_k = Phi_c^{-1}(s t_k)``.

``Phi_c^{-1}`` is Acklam's rational approximation refined by one Halley step on ``math.erfc``
(full double precision); only functions native to Numba are used, so the compiled model can be
kept in the disk cache (:mod:`pkmodel.model_cache`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from pkmodel.response.marginal import KERNEL_VERSION, marginal_bernoulli_kernel

__all__ = ["CENSORED_KERNEL_VERSION", "CENSORED_NODES", "censored_log_tail",
           "censored_marginal_kernel",
           "censored_marginal_logp", "normal_survival_inverse"]

#: The version of :func:`censored_marginal_kernel` and its Numba dispatch, with
#: :data:`pkmodel.response.marginal.KERNEL_VERSION` the salt of PyTensor's Numba cache key of the
#: Op: bump it whenever the kernel changes what it computes (else PyTensor serves the old code).
CENSORED_KERNEL_VERSION = 1

#: Number of Gauss-Legendre nodes over the tail probability (accuracy: the tests).
CENSORED_NODES = 16
_raw_t, _raw_w = np.polynomial.legendre.leggauss(CENSORED_NODES)
_U = 0.5 * (_raw_t + 1.0)  # Gauss-Legendre on (0, 1), then t = u^2 (see the module docstring)
_T = _U**2
_W = _raw_w * _U  # 0.5 w_k * 2 u_k: weights summing to 1
# b beyond this (the limit this many SDs into the tail) is clipped: P(beyond) ~ 1e-300 there.
_B_MAX = 37.0
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

# Acklam's coefficients for the inverse of the standard normal CDF.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)


@numba.njit(cache=True)
def _normal_quantile(p: float) -> float:
    """Phi^{-1}(p) for 0 < p < 1: Acklam's approximation and one Halley step."""
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
             / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    elif p > 1.0 - 0.02425:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
              / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    else:
        q = p - 0.5
        r = q * q
        x = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
             / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))
    # Halley's step on Phi(x) - p, with the error computed on the smaller tail
    if x < 0.0:
        e = 0.5 * math.erfc(-x / _SQRT2) - p
    else:
        e = (1.0 - p) - 0.5 * math.erfc(x / _SQRT2)
    u = e * math.exp(_LOG_SQRT_2PI + 0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


@numba.njit(cache=True)
def normal_survival_inverse(q: float) -> float:
    """Phi_c^{-1}(q) = -Phi^{-1}(q), the standard normal's upper quantile of tail mass q."""
    return -_normal_quantile(q)


@numba.njit(cache=True, error_model="numpy")
def censored_marginal_kernel(y, eta0, slope, mu, sigma, limit, side, sigma_p, mask):
    """log I_i and its gradient for every censored patient i (see the module docstring).

    Parameters
    ----------
    y : int64 array (patient, month)
        Outcomes, 0 or 1.
    eta0 : float64 array (patient, month)
        Log-odds at log TL = 0 (without the patient effect).
    slope : float64 array (patient,)
        d eta / d log TL of each patient.
    mu, sigma : float64 arrays (1,)
        The population mean and SD of log TL.
    limit, side : float64 arrays (patient,)
        The log limit and its side: +1 (true TL above it) or -1 (below).
    sigma_p : float64 array (1,) or (patient,)
        The SD of the patient effect.
    mask : float64 array (patient, month)
        Non-zero where the assessment exists.

    Returns
    -------
    logp, d_eta0 (patient, month), d_slope, d_mu, d_sigma, d_sigma_p : arrays
        Per patient (``d_mu`` and ``d_sigma`` are not summed over patients).
    """
    n_pat, n_month = eta0.shape
    n_node = _T.size
    m, sd = mu[0], sigma[0]
    shared = sigma_p.size == 1
    # every node of every patient as one row of the marginal kernel
    eta = np.empty((n_pat * n_node, n_month))
    yy = np.empty((n_pat * n_node, n_month), dtype=np.int64)
    mm = np.empty((n_pat * n_node, n_month))
    sp = np.empty(n_pat * n_node)
    x = np.empty((n_pat, n_node))
    dx_dmu = np.empty((n_pat, n_node))
    dx_dsd = np.empty((n_pat, n_node))
    log_s = np.empty(n_pat)
    ds_dmu = np.empty(n_pat)  # d log s / d mu
    ds_dsd = np.empty(n_pat)
    for i in range(n_pat):
        b = side[i] * (limit[i] - m) / sd
        clipped = b > _B_MAX
        if clipped:
            b = _B_MAX
        s = 0.5 * math.erfc(b / _SQRT2)
        log_s[i] = math.log(s)
        mills = 0.0 if clipped else math.exp(-0.5 * b * b - _LOG_SQRT_2PI) / s  # phi(b) / s
        ds_dmu[i] = mills * side[i] / sd
        ds_dsd[i] = mills * b / sd
        for k in range(n_node):
            z = normal_survival_inverse(s * _T[k])
            # dz/db = t phi(b) / phi(z) = t exp((z^2 - b^2) / 2)
            dz_db = 0.0 if clipped else _T[k] * math.exp(0.5 * (z * z - b * b))
            x[i, k] = m + side[i] * sd * z
            dx_dmu[i, k] = 1.0 - dz_db
            dx_dsd[i, k] = side[i] * (z - b * dz_db)
            r = i * n_node + k
            sp[r] = sigma_p[0] if shared else sigma_p[i]
            for j in range(n_month):
                eta[r, j] = eta0[i, j] + slope[i] * x[i, k]
                yy[r, j] = y[i, j]
                mm[r, j] = mask[i, j]
    lg, d_eta, d_sp = marginal_bernoulli_kernel(yy, eta, sp, mm)
    logp = np.empty(n_pat)
    d_eta0 = np.zeros((n_pat, n_month))
    d_slope = np.empty(n_pat)
    d_mu = np.empty(n_pat)
    d_sd = np.empty(n_pat)
    d_sigma_p = np.empty(n_pat)
    post = np.empty(n_node)
    for i in range(n_pat):
        top = -np.inf
        for k in range(n_node):
            post[k] = math.log(_W[k]) + lg[i * n_node + k]
            top = max(top, post[k])
        total = 0.0
        for k in range(n_node):
            post[k] = math.exp(post[k] - top)
            total += post[k]
        logp[i] = log_s[i] + top + math.log(total)
        acc_slope, acc_mu, acc_sd, acc_sp = 0.0, ds_dmu[i], ds_dsd[i], 0.0
        for k in range(n_node):
            pk = post[k] / total
            r = i * n_node + k
            de = 0.0
            for j in range(n_month):
                d_eta0[i, j] += pk * d_eta[r, j]
                de += d_eta[r, j]
            dlog_dx = slope[i] * de
            acc_slope += pk * de * x[i, k]
            acc_mu += pk * dlog_dx * dx_dmu[i, k]
            acc_sd += pk * dlog_dx * dx_dsd[i, k]
            acc_sp += pk * d_sp[r]
        d_slope[i] = acc_slope
        d_mu[i] = acc_mu
        d_sd[i] = acc_sd
        d_sigma_p[i] = acc_sp
    return logp, d_eta0, d_slope, d_mu, d_sd, d_sigma_p


class CensoredMarginalLogp(Op):
    """log I_i per censored patient, with its gradient as extra outputs (used by ``L_op``).

    Inputs: y (int64, patient x month), eta0 (patient x month), slope (patient,), mu (1,),
    sigma (1,), limit (patient,), side (patient,), sigma_p ((1,) or (patient,)), mask
    (patient x month). Outputs: logp, d_eta0, d_slope, d_mu, d_sigma, d_sigma_p.
    """

    __props__ = ()

    def make_node(self, y, eta0, slope, mu, sigma, limit, side, sigma_p, mask):
        inputs = [pt.as_tensor_variable(v) for v in
                  (y, eta0, slope, mu, sigma, limit, side, sigma_p, mask)]
        if tuple(v.ndim for v in inputs) != (2, 2, 1, 1, 1, 1, 1, 1, 2):
            raise TypeError("censored_marginal_logp: wrong number of axes")
        if inputs[0].dtype != "int64" or {v.dtype for v in inputs[1:]} != {"float64"}:
            raise TypeError("censored_marginal_logp takes int64 y and float64 otherwise")
        outputs = [pt.dvector(), pt.dmatrix(), pt.dvector(), pt.dvector(), pt.dvector(),
                   pt.dvector()]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        for storage, value in zip(output_storage, censored_marginal_kernel(*inputs),
                                  strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        n = shapes[1][0]
        return [(n,), shapes[1], (n,), (n,), (n,), (n,)]

    def connection_pattern(self, node):
        data = [False] * 6
        diff = [True] * 6
        return [data, diff, diff, diff, diff, data, data, diff, data]

    def pullback(self, inputs, outputs, cotangents):
        g = cotangents[0]
        for other in cotangents[1:]:
            if not isinstance(other.type, DisconnectedType):
                raise NotImplementedError("second derivatives of the censored likelihood")
        _, d_eta0, d_slope, d_mu, d_sd, d_sp = outputs
        g_sp = g * d_sp
        if inputs[7].type.shape[0] == 1:
            g_sp = g_sp.sum(keepdims=True)
        none = DisconnectedType()
        return [none(), g[:, None] * d_eta0, g * d_slope, (g * d_mu).sum(keepdims=True),
                (g * d_sd).sum(keepdims=True), none(), none(), g_sp, none()]


_censored_op = CensoredMarginalLogp()


@register_funcify_default_op_cache_key(CensoredMarginalLogp)
def _numba_censored(op, node=None, **kwargs):
    """The Op's Numba function, keyed by both kernels' versions."""

    @numba.njit
    def censored(y, eta0, slope, mu, sigma, limit, side, sigma_p, mask):
        return censored_marginal_kernel(y, eta0, slope, mu, sigma, limit, side, sigma_p, mask)

    return censored, 1000 * KERNEL_VERSION + CENSORED_KERNEL_VERSION


def censored_marginal_logp(y, eta0, slope, mu, sigma, limit, side, sigma_p, mask):
    """log of the integral over the censored log TL of N(x | mu, sigma) M(eta0 + slope x).

    Parameters
    ----------
    y, mask : tensor (patient, month)
        Outcomes 0/1 and 1 where the assessment exists.
    eta0 : tensor (patient, month)
        Log-odds at log TL = 0, without the patient effect.
    slope : tensor (patient,)
        The log-odds per unit of log TL.
    mu, sigma : scalar tensors
        Population mean and SD of log TL.
    limit, side : tensor (patient,)
        Log limit, and +1 (TL above it) or -1 (below).
    sigma_p : scalar or (patient,) tensor
        SD of the patient effect (0: none).

    Returns
    -------
    tensor (patient,)
        log I_i, differentiable in eta0, slope, mu, sigma and sigma_p.
    """
    f = "float64"
    sigma_p = pt.as_tensor_variable(sigma_p).ravel()
    if sigma_p.type.shape != (1,):
        sigma_p = pt.broadcast_to(sigma_p, (pt.as_tensor_variable(eta0).shape[0],))
    return _censored_op(pt.cast(y, "int64"), pt.cast(eta0, f), pt.cast(slope, f),
                        pt.cast(pt.as_tensor_variable(mu).ravel(), f),
                        pt.cast(pt.as_tensor_variable(sigma).ravel(), f), pt.cast(limit, f),
                        pt.cast(side, f), pt.cast(sigma_p, f), pt.cast(mask, f))[0]


def censored_log_tail(mu, sigma, limit, side):
    """log P(beyond the limit) = log Phi_c(side (limit - mu) / sigma), as the kernel clips it.

    Not differentiated by the sampler: it only turns log I_i into the outcomes' log-likelihood
    given the censoring (stored for LOO).
    """
    b = pt.minimum(side * (limit - mu) / sigma, _B_MAX)
    return pt.log(0.5 * pt.erfc(b / _SQRT2))
