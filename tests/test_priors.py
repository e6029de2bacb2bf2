"""Priors as objects (:class:`pkmodel.priors.Prior`): what a prior writes and builds. That each
model is built from the priors its tables state is checked with the model (response/test_terms.py,
pk/population/test_pk_population_priors.py)."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from pkmodel.priors import Prior


def test_a_prior_writes_itself_builds_its_family_and_refuses_what_it_cannot():
    prior = Prior("Normal", mu=0, sigma=1.5)
    assert str(prior) == "Normal(0, 1.5)" and prior["sigma"] == 1.5
    assert prior.to_dict() == {"family": "Normal", "mu": 0.0, "sigma": 1.5}
    assert str(Prior("Gamma", alpha=2, beta=5)) == "Gamma(2, 5)"
    np.testing.assert_allclose(pm.logp(prior.dist(), 0.7).eval(),
                               -0.5 * (0.7 / 1.5) ** 2 - np.log(1.5 * np.sqrt(2 * np.pi)))
    widened = Prior("Normal", mu=0, sigma="sqrt(1.5^2 + sigma_group^2 / J)")
    assert str(widened) == "Normal(0, sqrt(1.5^2 + sigma_group^2 / J))"
    with pytest.raises(ValueError, match="give sigma = sqrt"):
        widened.dist()
    with pytest.raises(ValueError, match="Normal takes the parameters"):
        Prior("Normal", sigma=1.0)
    with pytest.raises(ValueError, match="unknown prior family"):
        Prior("Cauchy", alpha=0, beta=1)
