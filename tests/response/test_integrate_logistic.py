"""integrate_logistic's paired-node closed form equals the plain 32-node Gauss-Hermite sum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from pkmodel.response.quadrature import _NODES, _WEIGHTS, integrate_logistic


def plain_sum(eta: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Reference: sum over every node of weight x expit(eta + scale x node)."""
    eta = np.asarray(eta, dtype=float)[..., None]
    scale = np.asarray(scale, dtype=float)[..., None]
    return (expit(eta + scale * _NODES) * _WEIGHTS).sum(axis=-1)


@pytest.mark.parametrize(("eta_shape", "scale_shape"), [
    ((7,), (7,)), ((7,), ()), ((3, 5, 4), (3, 1, 1)), ((3, 5, 4), (3, 5, 1)),
    ((3, 5, 4), (5, 4)), ((4, 1), (1, 6)), ((2, 3, 40, 2, 2), (2, 3, 1, 1, 1)),
    ((600, 50), (600, 1)),
])
def test_equals_plain_node_sum(eta_shape, scale_shape):
    rng = np.random.default_rng(1)
    eta = rng.normal(0.0, 4.0, eta_shape)
    scale = np.abs(rng.normal(1.0, 1.0, scale_shape))
    got = integrate_logistic(eta, scale)
    assert got.shape == np.broadcast_shapes(eta.shape, scale.shape)
    np.testing.assert_allclose(got, plain_sum(eta, scale), rtol=0, atol=1e-13)


def test_extremes_and_zero_scale():
    eta = np.array([-800.0, -40.0, -1e-9, 0.0, 1e-9, 3.0, 40.0, 800.0])
    scale = np.array([0.0, 0.01, 1.0, 3.0, 8.0])[:, None]
    with np.errstate(over="raise", invalid="raise"):
        got = integrate_logistic(eta, scale)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, plain_sum(eta, scale), rtol=0, atol=1e-13)
    np.testing.assert_allclose(got[0], expit(eta), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(integrate_logistic(eta, 0.0), expit(eta))
