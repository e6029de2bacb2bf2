"""The probability-space marginal likelihood equals the log-space formula it replaced."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pkmodel.response.build import _GH_NODES, _GH_WEIGHTS, _marginal_logp


def log_space(value, eta, sigma, mask):
    """Reference: log1pexp per (patient, month, node), then logsumexp over the nodes."""
    log_w = np.log(_GH_WEIGHTS / _GH_WEIGHTS.sum())
    logit = eta[..., None] + sigma[..., None, None] * _GH_NODES
    loglik = value[..., None] * logit - pt.log1pexp(logit)
    per_node = (loglik * mask[..., None]).sum(axis=-2) + log_w
    return pt.logsumexp(per_node, axis=-1)


def compile_both():
    value = pt.lmatrix("value")
    eta = pt.dmatrix("eta")
    sigma = pt.dscalar("sigma")
    mask = pt.dmatrix("mask")
    out = []
    for f in (_marginal_logp, log_space):
        logp = f(value, eta, sigma, mask)
        grads = pt.grad(logp.sum(), [eta, sigma])
        out.append(pytensor.function([value, eta, sigma, mask], [logp, *grads]))
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sigma", [0.01, 0.5, 1.5, 3.0, 6.0])
def test_value_and_gradient_equal_log_space(seed, sigma):
    rng = np.random.default_rng(seed)
    n, m = 300, 3
    value = rng.integers(0, 2, (n, m))
    eta = rng.normal(0.0, 4.0, (n, m))
    eta[:5] = [[-30.0, 25.0, 0.0]] * 5  # improbable but far from underflow
    mask = (rng.random((n, m)) < 0.8).astype(float)
    value = value * mask.astype(int)
    new, ref = compile_both()
    got, want = new(value, eta, sigma, mask), ref(value, eta, sigma, mask)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10, atol=1e-12)  # per patient
    np.testing.assert_allclose(got[1], want[1], rtol=1e-9, atol=1e-12)  # d/d eta
    np.testing.assert_allclose(got[2], want[2], rtol=1e-9)  # d/d sigma


def test_all_missing_patient_contributes_zero():
    new, _ = compile_both()
    logp, d_eta, _ = new(np.zeros((1, 2), dtype=np.int64), np.array([[3.0, -2.0]]), 1.2,
                         np.zeros((1, 2)))
    np.testing.assert_allclose(logp, 0.0, atol=1e-15)
    np.testing.assert_array_equal(d_eta, 0.0)
