"""Plots: each returns a Figure that saves without a display (Agg); the numbers behind them."""

from __future__ import annotations

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import pkmodel
from pkmodel import plots
from pkmodel.pk import DoseSchedule, Observations, estimate_individual, forecast_troughs


@pytest.fixture(scope="module")
def fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pkmodel.ConvergenceWarning)
        return pkmodel.RemissionModel().fit(pkmodel.load_ungar2019(), draws=200, tune=300,
                                            chains=2, random_seed=7, progressbar=False)


@pytest.fixture(scope="module")
def replicated(fit):
    return plots.replicated_outcomes(fit, random_seed=1)


def png_bytes(fig: Figure) -> bytes:
    assert isinstance(fig, Figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    data = buf.getvalue()
    assert data.startswith(b"\x89PNG") and len(data) > 5_000
    return data


def test_remission_curves_keep_api_and_show_binned_outcomes(fit):
    table = fit.futility_threshold(p_min=0.2)
    fig = plots.plot_remission_curves(fit, None, table, ci_prob=0.8)
    png_bytes(fig)
    binned = plots.plot_remission_curves(fit, thresholds=table, observed="both", n_bins=2)
    png_bytes(binned)
    # two bins per strategy and month: one errorbar container each
    assert all(len(ax.containers) == 2 * 2 for ax in binned.axes)
    with pytest.raises(ValueError, match="observed must be"):
        plots.plot_remission_curves(fit, observed="violin")


def test_crossing_tl_plot_matches_the_threshold_table(fit):
    curve = fit.remission_curve(month=[12])
    fig = plots.plot_crossing_tl(fit, curve, p_min=0.25, credibility=0.8)
    png_bytes(fig)
    assert len(fig.axes) == 2  # one month: histogram above, P(below p_min) below
    bottom = fig.axes[1]
    lines = [ln for ln in bottom.get_lines() if len(ln.get_xdata()) == curve.sizes["tl"]]
    assert len(lines) == curve.sizes["strategy"]
    for line in lines:  # P(P(remission) < p_min) rises with TL from 0 towards 1
        y = np.asarray(line.get_ydata())
        assert np.all((0 <= y) & (y <= 1)) and y[-1] >= y[0]


def test_replicated_outcomes_align_with_the_cohort_rows(fit, replicated):
    n_draws = fit.posterior.sizes["chain"] * fit.posterior.sizes["draw"]
    assert replicated.shape == (n_draws, len(fit.cohort_data))
    assert set(np.unique(replicated)) <= {0, 1}
    # the replicated remission rate is close to the observed one (the model fits the margin)
    assert abs(replicated.mean() - fit.cohort_data["remission"].mean()) < 0.1


def test_calibration_table_and_plot(fit, replicated):
    table = plots.calibration_table(fit, replicated, n_bins=4, random_seed=1)
    assert len(table) == 4 and table["n"].sum() == len(fit.cohort_data)
    assert table["predicted"].is_monotonic_increasing
    assert ((table.observed_lower <= table.observed) & (table.observed <= table.observed_upper)
            ).all()
    assert (table.replicated_lower <= table.replicated_upper).all()
    png_bytes(plots.plot_calibration(fit, replicated, n_bins=4))


def test_jeffreys_interval():
    lo, hi = plots.jeffreys_interval([0, 5, 10], [10, 10, 10], 0.9)
    assert lo[0] == 0 and hi[2] == 1
    assert lo[1] == pytest.approx(1 - hi[1]) and lo[1] < 0.5 < hi[1]


def test_predictive_check_plots(fit, replicated):
    png_bytes(plots.plot_posterior_predictive(fit, replicated))
    cohort = pkmodel.load_ungar2019()
    prior = fit.spec.prior_predictive(cohort, draws=100, random_seed=2)
    fig = plots.plot_prior_predictive(prior, cohort)
    png_bytes(fig)
    assert len(fig.axes) == len(cohort.months) + 2


def test_diagnostic_plots_leave_no_pyplot_figures(fit):
    before = set(plt.get_fignums())
    trace = plots.plot_trace(fit, ["alpha", "beta"])
    rank = plots.plot_rank(fit)
    assert set(plt.get_fignums()) == before
    png_bytes(trace)
    png_bytes(rank)
    assert "diagnostics" in trace.get_suptitle()
    with pytest.raises(pkmodel.PredictionError, match="unknown parameter"):
        plots.plot_trace(fit, ["nope"])


def test_pk_plots():
    fig = plots.plot_pk_profiles("fasanmade2009", ["5mg/kg q8w", "5mg/kg q4w"],
                                 {"weight_kg": 70}, n_draws=50, random_seed=1)
    png_bytes(fig)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["5 mg/kg q8w",
                                                                     "5 mg/kg q4w"]
    png_bytes(plots.plot_pk_profiles(n_draws=0))
    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=30)
    obs = Observations([98, 154, 210], [2.1, 1.8, 2.4])
    est = estimate_individual("fasanmade2009", {"weight_kg": 70}, history, obs, draws=300,
                              random_seed=1)
    png_bytes(plots.plot_individual_fit(est))
    # a model with inter-occasion variability: the band follows each occasion's kappa
    png_bytes(plots.plot_individual_fit(estimate_individual(
        "fasanmade2011", {"weight_kg": 70}, history, obs, draws=300, random_seed=1)))
    forecast = forecast_troughs(est, ["5mg/kg q8w", "10mg/kg q8w"])
    fig = plots.plot_trough_forecast(forecast)
    png_bytes(fig)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 2 and all(t.startswith("P(>= 5)") for t in texts)


def test_remission_curve_markers_each_mean_one_thing(fit):
    table = fit.futility_threshold(p_min=0.3, credibility=0.6)
    fig = plots.plot_remission_curves(fit, thresholds=table, observed="both")
    triangles = {"v", "^", "<", ">", 4, 5, 6, 7, "1", "2", "3", "4"}
    for ax in fig.axes:
        markers = [ln.get_marker() for ln in ax.get_lines()]
        # downward triangles are the futility markers and nothing else
        assert not set(markers) & (triangles - {"v"})
        month = int(ax.get_title().split()[0])
        rows = table[table.month == month]
        assert markers.count("v") == int(np.isfinite(rows.tl_futile).sum())
        # crossing-TL bars and dots stand on the p_min line, not at arbitrary heights
        bars = [ln for ln in ax.get_lines() if ln.get_linewidth() == 3]
        assert len(bars) == int(np.isfinite(rows.tl_cross_median).sum())
        assert all(abs(np.mean(ln.get_ydata()) - 0.3) < 0.1 for ln in bars)
        # the p_min label sits at the left end, away from every marker on the line
        (label,) = [t for t in ax.texts if t.get_text().startswith("p_min")]
        x_label = label.get_position()[0]
        marked = [x for ln in ax.get_lines() if ln.get_marker() in ("v", "o")
                  for x, y in zip(ln.get_xdata(), ln.get_ydata(), strict=True)
                  if abs(y - 0.3) < 0.1]
        assert all(x > 1.5 * x_label for x in marked)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("above the assay limit" in t for t in labels)
    assert any("futile from this TL" in t for t in labels)
    assert any("observed rate in TL bins" in t for t in labels)
    assert "RECONSTRUCTED" in fig.get_suptitle()


def test_standalone_curve_png_shows_binned_rates(fit, tmp_path, monkeypatch):
    from pkmodel.cli.response import _save_plot

    seen = {}
    original = plots.plot_remission_curves

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_remission_curves", spy)
    _save_plot(fit, None, fit.futility_threshold(), tmp_path / "c.png", False, 0.9)
    assert seen["observed"] == "both" and (tmp_path / "c.png").stat().st_size > 10_000


def test_rank_plot_says_its_test_is_not_the_gate(fit):
    test = plots.rank_test(fit)
    assert list(test.columns) == ["parameter", "p_value", "alpha", "flagged", "thinning"]
    assert (test.thinning == plots.thinning(fit, list(fit.population_parameters))).all()
    assert "delta_strategy[interval_shortening]" in set(test.parameter)
    assert test.p_value.between(0, 1).all() and np.allclose(test.alpha, 0.01)
    title = plots.plot_rank(fit).get_suptitle()
    assert "NOT part of the gate" in title
    flagged = list(test.parameter[test.flagged])
    assert ("Flagged (p < 0.01): " + (", ".join(flagged) if flagged else "none")) in title
