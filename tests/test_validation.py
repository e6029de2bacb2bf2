"""One probability check (pkmodel.validation), one wording, wherever a probability is an option."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pkmodel.errors import PredictionError, SpecificationError
from pkmodel.validation import check_probability


@pytest.mark.parametrize("value", [0.5, 1e-9, 0.999, np.float32(0.25), np.float64(0.9), 1 / 3])
def test_a_probability_is_returned_as_a_float(value):
    got = check_probability("ci_prob", value)
    assert isinstance(got, float) and got == pytest.approx(float(value))


@pytest.mark.parametrize("value", [0, 1, 0.0, 1.0, -0.1, 1.5, np.nan, np.inf, True, False,
                                   "0.5", None, [0.5]])
def test_anything_else_is_refused_in_one_wording(value):
    with pytest.raises(SpecificationError) as info:
        check_probability("credibility", value)
    assert str(info.value) == f"credibility must be strictly between 0 and 1, not {value!r}"


def test_closed_interval_and_error_class():
    assert check_probability("p_female", 0, open_interval=False) == 0.0
    assert check_probability("p_female", 1, open_interval=False) == 1.0
    with pytest.raises(SpecificationError, match=r"^p_uc must be between 0 and 1 inclusive, "
                                                 r"not 1\.2$"):
        check_probability("p_uc", 1.2, open_interval=False)
    with pytest.raises(PredictionError, match="strictly between"):
        check_probability("p_min", 1.0, error=PredictionError)


def test_every_probability_option_uses_it():
    from types import SimpleNamespace

    from pkmodel.cli.scenarios import _check_options
    from pkmodel.pk.forecasting import forecast_troughs
    from pkmodel.response.curves import summarize_curve
    from pkmodel.response.thresholds import futility_table
    from pkmodel.scenarios import IBD_MAINTENANCE, CovariateDistribution, simulate_scenarios

    cases = [
        (lambda: forecast_troughs(None, credible=1.5), SpecificationError, "credible", "1.5"),
        (lambda: summarize_curve(None, ci_prob=1.0), PredictionError, "ci_prob", "1.0"),
        (lambda: futility_table(None, 0.2, 0.0, 0.9), PredictionError, "credibility", "0.0"),
        (lambda: simulate_scenarios(None, 10, [], p_min=2), SpecificationError, "p_min", "2"),
        (lambda: _check_options(SimpleNamespace(
            population=None, n_patients=10, min_tl=0.0, chunk_size=10, p_min=0.2,
            credibility=0.9, ci_prob=1.5, draws=None)), SpecificationError, "--ci-prob", "1.5"),
    ]
    for call, error, name, shown in cases:
        with pytest.raises(error) as info:
            call()
        assert str(info.value) == f"{name} must be strictly between 0 and 1, not {shown}"
    with pytest.raises(SpecificationError, match=r"^p_female must be between 0 and 1 inclusive"):
        CovariateDistribution(**{**dataclasses.asdict(IBD_MAINTENANCE), "p_female": 1.5})
