"""Remission curves and futility thresholds on hand-made posteriors (no sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import integrate
from scipy.special import expit, logit

from pkmodel import PredictionError
from pkmodel.response.curves import compute_curve, summarize_curve
from pkmodel.response.quadrature import integrate_logistic
from pkmodel.response.thresholds import futility_table

META = {"months": [6, 12], "strategies": ["dose_escalation", "interval_shortening"],
        "groups": ["a", "b"], "diseases": [], "encodings": [], "tl_range_ug_ml": [3.0, 16.0],
        "patient_ids": []}


def posterior(n_draws=400, seed=0, sigma_patient=0.0, sigma_group=0.0, spread=0.0):
    rng = np.random.default_rng(seed)

    def draw(center, *shape):
        return center + spread * rng.normal(size=(2, n_draws, *shape))

    dims = ("chain", "draw")
    return xr.Dataset(
        {
            "alpha": (dims, draw(0.5)),
            "beta": (dims, draw(-2.0)),
            "b_slope_strategy": ((*dims, "strategy"), draw(0.0, 2) + np.array([0.0, 0.4])),
            "delta_strategy": ((*dims, "strategy_contrast"), draw(-0.3, 1)),
            "tau_month": ((*dims, "month_contrast"), draw(0.6, 1)),
            "a_group": ((*dims, "group"), np.broadcast_to([0.7, -0.7], (2, n_draws, 2)).copy()),
            "sigma_group": (dims, np.full((2, n_draws), sigma_group)),
            "sigma_patient": (dims, np.full((2, n_draws), sigma_patient)),
            "mu_tl": (dims, np.full((2, n_draws), 1.8)),
            "sigma_tl": (dims, np.full((2, n_draws), 0.5)),
        },
        coords={"chain": [0, 1], "draw": np.arange(n_draws), "strategy": META["strategies"],
                "strategy_contrast": META["strategies"][1:], "month_contrast": [12],
                "group": ["a", "b"]},
    )


def eta_true(tl, strategy, month, group=0.0):
    slope = -2.0 + (0.4 if strategy == "interval_shortening" else 0.0)
    delta = -0.3 if strategy == "interval_shortening" else 0.0
    tau = 0.6 if month == 12 else 0.0
    return 0.5 + tau + delta + group + slope * (np.log(tl) - np.log(5))


def test_curve_equals_analytic_logistic_without_random_effects():
    curve = compute_curve(posterior(), META, tl=[2.0, 5.0, 9.0])
    assert curve["p_remission"].dims == ("chain", "draw", "tl", "strategy", "month")
    assert curve["tl"].attrs["units"] == "µg/mL"
    for s in META["strategies"]:
        for m in META["months"]:
            got = curve["p_remission"].sel(strategy=s, month=m).isel(chain=0, draw=0).values
            np.testing.assert_allclose(got, expit(eta_true(np.array([2.0, 5.0, 9.0]), s, m)),
                                       rtol=1e-12)


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.0, 3.0])
def test_quadrature_matches_adaptive_integration(scale):
    etas = np.linspace(-5, 5, 11)
    got = integrate_logistic(etas, np.full_like(etas, scale))
    for eta, g in zip(etas, got, strict=True):
        want, _ = integrate.quad(
            lambda e, eta=eta: expit(eta + scale * e) * np.exp(-e * e / 2) / np.sqrt(2 * np.pi),
            -np.inf, np.inf, epsabs=1e-12)
        assert abs(g - want) < 1e-4


def test_population_level_integrates_centre_and_patient_spread():
    post = posterior(sigma_patient=0.8, sigma_group=0.5)
    pop = compute_curve(post, META, tl=[5.0], strategy="dose_escalation", month=6)
    got = float(pop["p_remission"].isel(chain=0, draw=0).squeeze())
    total = np.sqrt(0.8**2 + 0.5**2)
    want = integrate.quad(lambda e: expit(0.5 + total * e) * np.exp(-e * e / 2)
                          / np.sqrt(2 * np.pi), -np.inf, np.inf)[0]
    assert abs(got - want) < 1e-5
    assert got < expit(0.5)  # averaging over the spread pulls towards 0.5 from above
    centre = compute_curve(post, META, tl=[5.0], strategy="dose_escalation", month=6, level="a")
    got_a = float(centre["p_remission"].isel(chain=0, draw=0).squeeze())
    want_a = integrate.quad(lambda e: expit(0.5 + 0.7 + 0.8 * e) * np.exp(-e * e / 2)
                            / np.sqrt(2 * np.pi), -np.inf, np.inf)[0]
    assert abs(got_a - want_a) < 1e-5
    assert centre.attrs["level"] == "a" and pop.attrs["level"] == "population"


def test_unknown_level_strategy_month_and_covariate_raise():
    post = posterior()
    with pytest.raises(PredictionError, match="neither 'population' nor a centre"):
        compute_curve(post, META, level="mars")
    with pytest.raises(PredictionError, match=r"unknown strategy.*no other one is used"):
        compute_curve(post, META, strategy="switch_class")
    with pytest.raises(PredictionError, match="unknown month"):
        compute_curve(post, META, month=24)
    with pytest.raises(PredictionError, match="not in the model"):
        compute_curve(post, META, covariates={"albumin_g_l": 30})
    with pytest.raises(PredictionError, match="positive"):
        compute_curve(post, META, tl=[0.0, 1.0])


def test_threshold_of_a_deterministic_curve_is_the_analytic_crossing():
    tl = np.geomspace(1, 40, 400)
    curve = compute_curve(posterior(), META, tl=tl)
    table = futility_table(curve, p_min=0.2, credibility=0.9, ci_prob=0.9)
    assert list(table.columns[:8]) == ["strategy", "month", "p_min", "credibility", "tl_futile",
                                       "tl_cross_median", "tl_cross_lower", "tl_cross_upper"]
    for row in table.itertuples():
        slope = -2.0 + (0.4 if row.strategy == "interval_shortening" else 0.0)
        base = eta_true(5.0, row.strategy, row.month)
        want = 5.0 * np.exp((logit(0.2) - base) / slope)
        for got in (row.tl_cross_median, row.tl_cross_lower, row.tl_cross_upper):
            assert got == pytest.approx(want, rel=1e-3)  # interpolated on the curve itself
        # P(futile) is a 0/1 step here: exact to one grid step (ratio 40**(1/399))
        assert row.tl_futile == pytest.approx(want, rel=1e-2)


def test_threshold_with_uncertainty_and_beyond_grid():
    curve = compute_curve(posterior(spread=0.3, n_draws=2000), META, tl=np.geomspace(1, 40, 300))
    table = futility_table(curve, p_min=0.2, credibility=0.9, ci_prob=0.9)
    assert (table.tl_cross_lower < table.tl_cross_median).all()
    finite = table.tl_cross_upper.notna()
    assert (table.tl_cross_median[finite] < table.tl_cross_upper[finite]).all()
    # an upper bound is NaN exactly when more than 5% of draws do not cross inside the grid
    assert (finite == (table.p_cross_in_grid >= 0.95)).all() and not finite.all()
    # requiring 90% certainty of futility puts tl_futile above the median crossing
    reached = table.tl_futile.notna()
    assert (table.tl_futile[reached] > table.tl_cross_median[reached]).all()
    # with monotone curves, "90% sure it is futile" is the 90th percentile of the crossing TL
    curve80 = futility_table(curve, p_min=0.2, credibility=0.9, ci_prob=0.8)
    both = reached & curve80.tl_cross_upper.notna()
    np.testing.assert_allclose(table.tl_futile[both], curve80.tl_cross_upper[both], rtol=0.02)
    assert both.sum() >= 2
    # a curve that never falls below p_min within the grid: NaN, said as such
    short = compute_curve(posterior(), META, tl=np.geomspace(1, 4, 50))
    never = futility_table(short, p_min=0.05, credibility=0.9, ci_prob=0.9)
    assert never.tl_futile.isna().all() and never.tl_cross_median.isna().all()
    assert (never.p_cross_in_grid == 0).all()
    with pytest.raises(PredictionError, match="credibility"):
        futility_table(short, p_min=0.2, credibility=1.5, ci_prob=0.9)


def test_summarize_curve_bands():
    curve = compute_curve(posterior(spread=0.3), META, tl=[3.0, 8.0])
    s = summarize_curve(curve, ci_prob=0.8)
    assert len(s) == 2 * 2 * 2
    assert (s["lower"] <= s["median"]).all() and (s["median"] <= s["upper"]).all()


def test_out_of_range_group_codes_are_refused_before_pymc():
    from pkmodel.response.design import check_index

    np.testing.assert_array_equal(check_index(np.array([0, 2, 1]), 3, "center"), [0, 2, 1])
    for bad in ([0, 3], [-1, 0]):
        with pytest.raises(PredictionError, match=r"center index out of range 0\.\.2"):
            check_index(np.array(bad), 3, "center")


@pytest.mark.parametrize("month", ["six", 6.5, [6, None]])
def test_months_must_be_whole_numbers(month):
    with pytest.raises(PredictionError, match="whole numbers"):
        compute_curve(posterior(), META, month=month)
