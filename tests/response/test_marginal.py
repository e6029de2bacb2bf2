"""The fused marginal likelihood kernel against independent implementations.

References: (1) the log-space PyTensor expression of the same 24-node rule (softplus per node,
log-sum-exp over nodes), differentiated by PyTensor; (2) scipy adaptive quadrature of the
integral itself, for moderate patient spreads where 24 nodes are accurate.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate
from scipy.special import expit, log_expit

from pkmodel.response.marginal import (
    GH_NODES,
    GH_WEIGHTS,
    marginal_bernoulli_kernel,
    marginal_bernoulli_logp,
)


def _reference_graph():
    """log-space rule written as a PyTensor expression, with PyTensor's own gradient."""
    y, mask, eta = pt.lmatrix("y"), pt.dmatrix("mask"), pt.dmatrix("eta")
    sigma = pt.dscalar("sigma")
    logit = eta[..., None] + sigma * GH_NODES
    loglik = y[..., None] * logit - pt.log1pexp(logit)
    per_node = (loglik * mask[..., None]).sum(axis=-2) + np.log(GH_WEIGHTS)
    logp = pt.logsumexp(per_node, axis=-1)
    grads = pytensor.grad(logp.sum(), [eta, sigma])
    return pytensor.function([y, eta, sigma, mask], [logp, *grads], mode="FAST_COMPILE")


def _op_graph(mode):
    y, mask, eta = pt.lmatrix("y"), pt.dmatrix("mask"), pt.dmatrix("eta")
    sigma = pt.dscalar("sigma")
    logp = marginal_bernoulli_logp(y, eta, sigma, mask)
    grads = pytensor.grad(logp.sum(), [eta, sigma])
    return pytensor.function([y, eta, sigma, mask], [logp, *grads], mode=mode)


def _cases(rng, n=400, months=3):
    """Random patients with missing assessments and a range of scales of eta."""
    y = rng.integers(0, 2, (n, months))
    mask = (rng.random((n, months)) < 0.8).astype(float)
    mask[:5] = 0.0  # patients without any assessment
    scale = rng.choice([0.1, 1.0, 5.0, 30.0, 300.0, 1e4], size=(n, 1))
    eta = rng.normal(0.0, 1.0, (n, months)) * scale
    return y, eta, mask


@pytest.fixture(scope="module")
def reference():
    return _reference_graph()


@pytest.mark.parametrize("sigma", [0.0, 1e-3, 0.7, 2.0, 6.0, 50.0])
@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_op_matches_log_space_expression(reference, sigma, mode):
    """Values and gradients on both paths (probability and log space), |eta| up to 1e4."""
    rng = np.random.default_rng(int(sigma * 1000) + 7)
    y, eta, mask = _cases(rng)
    want = reference(y, eta, sigma, mask)
    got = _op_graph(mode)(y, eta, sigma, mask)
    assert np.all(np.isfinite(got[0])) and np.all(np.isfinite(got[1]))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-10)
    # both paths were exercised
    bound = ((np.abs(eta) + sigma * np.abs(GH_NODES).max()) * (mask != 0)).sum(axis=1)
    assert (bound < 600).any() and (bound > 600).any()


def test_no_overflow_where_probability_space_would():
    """A patient whose terms overflow exp() in probability space still gets exact values."""
    y = np.array([[1, 0], [0, 1], [1, 1]])
    eta = np.array([[-700.0, 650.0], [-80.0, -5.0], [-300.0, -300.0]])
    mask = np.ones_like(eta)
    sigma = np.full(3, 4.0)
    logp, d_eta, d_sigma = marginal_bernoulli_kernel(y, eta, sigma, mask)
    assert np.all(np.isfinite(logp)) and np.all(np.isfinite(d_eta)) and np.all(np.isfinite(d_sigma))
    # far out, the log-likelihood is the sum of the log-probabilities at the best node
    assert logp[0] < -1300
    np.testing.assert_allclose(d_eta[0], [1.0, -1.0], atol=1e-12)


@pytest.mark.parametrize(("sigma", "tol"), [(0.3, 1e-10), (1.0, 1e-8), (2.0, 5e-5)])
def test_rule_agrees_with_adaptive_quadrature(sigma, tol):
    """The 24-node rule is the integral over u ~ N(0, sigma) (error 5e-5 at sigma = 2)."""
    rng = np.random.default_rng(3)
    y, eta, mask = _cases(rng, n=30, months=2)
    eta = np.clip(eta, -6, 6)
    logp, _, _ = marginal_bernoulli_kernel(y, eta, np.full(30, sigma), mask)
    for i in range(30):
        def integrand(u, i=i):
            t = (2 * y[i] - 1) * (eta[i] + u)
            return np.exp((log_expit(t) * mask[i]).sum()) * np.exp(-0.5 * (u / sigma) ** 2)

        value, _ = integrate.quad(integrand, -12 * sigma, 12 * sigma, epsabs=0, epsrel=1e-12)
        np.testing.assert_allclose(logp[i], np.log(value / (sigma * np.sqrt(2 * np.pi))),
                                   rtol=0, atol=tol)


def test_gradient_by_finite_differences():
    """PyTensor's own numerical gradient check of the Op (eta and sigma)."""
    rng = np.random.default_rng(11)
    y, _, mask = _cases(rng, n=20, months=2)
    eta = rng.normal(0, 2, (20, 2))

    def f(eta_, sigma_):
        return marginal_bernoulli_logp(y, eta_, sigma_, mask).sum()

    pytensor.gradient.verify_grad(f, [eta, np.array(1.3)], rng=rng, mode="FAST_COMPILE")


def test_sigma_zero_is_independent_bernoulli():
    y = np.array([[1, 0, 1]])
    eta = np.array([[0.3, -1.2, 2.0]])
    mask = np.array([[1.0, 1.0, 0.0]])
    logp, d_eta, _ = marginal_bernoulli_kernel(y, eta, np.zeros(1), mask)
    np.testing.assert_allclose(logp[0], log_expit(0.3) + log_expit(1.2), rtol=1e-13)
    np.testing.assert_allclose(d_eta[0], [expit(-0.3), -expit(-1.2), 0.0], rtol=1e-12)


def test_sigma_per_patient_and_its_gradient():
    """A sigma per patient equals fitting each patient with its own scalar sigma."""
    rng = np.random.default_rng(5)
    y, eta, mask = _cases(rng, n=12, months=2)
    eta = np.clip(eta, -8, 8)
    sigmas = rng.uniform(0.1, 3.0, 12)
    sigmas[4:7] = sigmas[3]  # runs of equal values reuse the node factors
    logp, d_eta, d_sigma = marginal_bernoulli_kernel(y, eta, sigmas, mask)
    for i in range(12):
        one = marginal_bernoulli_kernel(y[i:i + 1], eta[i:i + 1], sigmas[i:i + 1], mask[i:i + 1])
        np.testing.assert_allclose([logp[i], d_sigma[i]], [one[0][0], one[2][0]], rtol=1e-13)
        np.testing.assert_allclose(d_eta[i], one[1][0], rtol=1e-13)
    sig = pt.dvector("sigma")
    f = pytensor.function([sig], pytensor.grad(marginal_bernoulli_logp(y, eta, sig, mask).sum(),
                                               sig), mode="NUMBA")
    np.testing.assert_allclose(f(sigmas), d_sigma, rtol=1e-12)
