"""Population PK estimation (pkmodel.pk.population): the closed form against an ODE solver,
recovery of known truth with and without observations below the LLOQ, the specification file's
errors, the fit's file and the command line.

Every fit here has one specification and 40 subjects, so that the model is compiled once in the
session and the later fits only sample (about 5 s each on 2 cores).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp
from scipy.special import logsumexp

from pkmodel.errors import FitFileError, PKDataError, SpecFileError, SpecificationError
from pkmodel.pk import LinearCompartmental, steady_state_troughs
from pkmodel.pk.population import (
    CovariateTerm,
    Parameter,
    PopulationData,
    PopulationSpec,
    ResidualError,
    fit_population,
    load_population_fit,
    published_prior,
    read_population_data,
    read_spec,
    simulate_dataset,
    with_prior,
)
from pkmodel.pk.population.build import individual_log_parameters, model_data, predict

ROOT = Path(__file__).resolve().parents[3]

SPEC_TOML = """\
[model]
compartments = 2
dosing = "infusion"

[data]
time_unit = "day"
lloq_ug_ml = 8.0

[parameters.cl]
typical = 0.3
unit = "L/day"
bsv = true

[parameters.v1]
typical = 3.0
bsv = true

[parameters.q]
typical = 0.5
prior_log_sd = 0.5

[parameters.v2]
typical = 2.0
prior_log_sd = 0.5

[[covariates]]
parameter = "cl"
covariate = "WT"
effect = "power"
reference = 70
prior_mean = 0.75
prior_sd = 0.25

[residual]
error = "proportional"
"""

TRUTH = {"tv_cl": 0.35, "tv_v1": 3.2, "tv_q": 0.6, "tv_v2": 2.2, "omega_cl": 0.35,
         "omega_v1": 0.2, "theta_cl_weight_kg": 0.75, "sigma_prop": 0.15}
SAMPLES_DAYS = [0.1, 7, 13.9, 35, 56, 70]
DRAWS = {"draws": 500, "tune": 500, "chains": 2}


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> PopulationSpec:
    path = tmp_path_factory.mktemp("spec") / "model.toml"
    path.write_text(SPEC_TOML, encoding="utf-8")
    return read_spec(path)


@pytest.fixture(scope="module")
def simulated(spec):
    return simulate_dataset(spec, TRUTH, n_subjects=40, dose_times_days=[0, 14],
                            sample_times_days=SAMPLES_DAYS, dose_mg_kg=5, random_seed=3)


def _fit(data, spec, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2 x 500 draws may miss the ESS of 400: not the point
        return fit_population(data, spec, **DRAWS, random_seed=1, **kwargs)


@pytest.fixture(scope="module")
def fit_m3(simulated, spec):
    return _fit(simulated.frame, spec)


# ----------------------------------------------------------------------------- closed form
def _ode(spec: PopulationSpec, p: dict, doses, times) -> np.ndarray:
    """Central concentration by LSODA on the compartment ODEs, piecewise between events."""
    k = {"k10": p["cl"] / p.get("v1", p.get("v")), "v": p.get("v1", p.get("v"))}
    two = spec.compartments == 2
    if two:
        k |= {"k12": p["q"] / p["v1"], "k21": p["q"] / p["v2"]}
    ka = p.get("ka", 0.0)

    def rhs(t, a, rate):
        depot, central, peripheral = a
        d_central = rate + ka * depot - k["k10"] * central
        d_peripheral = 0.0
        if two:
            d_central += -k["k12"] * central + k["k21"] * peripheral
            d_peripheral = k["k12"] * central - k["k21"] * peripheral
        return [-ka * depot, d_central, d_peripheral]

    events = sorted({0.0, *[t for t, _, _ in doses], *[t + d for t, _, d in doses], *times,
                     max(times)})
    state = np.zeros(3)
    out = {}
    for start, end in itertools.pairwise(events):
        for t, amount, _ in doses:
            if t == start and spec.dosing == "bolus":
                state[1] += amount
            if t == start and spec.dosing == "oral":
                state[0] += amount
        rate = sum(a / d for t, a, d in doses
                   if spec.dosing == "infusion" and t <= start < t + d)
        sol = solve_ivp(rhs, (start, end), state, method="LSODA", rtol=1e-10, atol=1e-12,
                        args=(rate,))
        state = sol.y[:, -1]
        out[end] = state[1] / k["v"]
    return np.array([out[t] for t in times])


@pytest.mark.parametrize(("compartments", "dosing"),
                         [(2, "infusion"), (1, "infusion"), (2, "bolus"), (1, "oral"),
                          (2, "oral")])
def test_closed_form_superposition_equals_the_ode_solution(compartments, dosing):
    names = {1: {"cl": 0.4, "v": 3.0}, 2: {"cl": 0.4, "v1": 3.0, "q": 0.8, "v2": 2.5}}
    p = names[compartments] | ({"ka": 1.3} if dosing == "oral" else {})
    spec = PopulationSpec(parameters={k: Parameter(v) for k, v in p.items()},
                          compartments=compartments, dosing=dosing)
    # several infusions of different amounts and durations, observed during and after them
    doses = [(0.0, 350.0, 2 / 24), (14.0, 400.0, 0.5), (42.0, 700.0, 3 / 24)]
    times = [0.05, 1.0, 13.99, 14.2, 20.0, 42.0 + 1 / 24, 56.0, 97.9]
    data = PopulationData("<test>", ("1",), {}, np.zeros(len(times), int), np.array(times),
                          np.ones(len(times)), np.zeros(len(times), int),
                          np.zeros(3, int), np.array([d[0] for d in doses]),
                          np.array([d[1] for d in doses]), np.array([d[2] for d in doses]))
    arrays = model_data(spec, data)
    values = {f"log_tv_{k}": np.log(v) for k, v in p.items()}
    closed = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    np.testing.assert_allclose(closed, _ode(spec, p, doses, times), rtol=1e-6)


def test_the_pytensor_graph_predicts_what_numpy_does(spec, simulated):
    import pytensor.tensor as pt

    data = read_population_data(simulated.frame, spec)
    arrays = model_data(spec, data)
    values = {f"log_tv_{k}": np.log(TRUTH[f"tv_{k}"]) for k in spec.parameter_names}
    values |= {"eta_cl": simulated.eta["cl"], "eta_v1": simulated.eta["v1"],
               "theta_cl_weight_kg": 0.75}
    expected = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    symbolic = {k: pt.as_tensor_variable(v) for k, v in arrays.items()}
    graph = predict(spec, symbolic, individual_log_parameters(
        spec, symbolic, {k: pt.as_tensor_variable(v) for k, v in values.items()}, xp=pt), xp=pt)
    np.testing.assert_allclose(graph.eval(), expected, rtol=1e-10)


# ----------------------------------------------------------------------------- recovery
def test_recovery_of_typical_values_bsv_and_residual_error_with_m3(fit_m3, simulated):
    share = float(np.mean(fit_m3.data.obs_cens == 1))
    assert 0.15 < share < 0.35  # a real share of the observations is below the LLOQ
    table = fit_m3.summary().set_index("parameter")
    for name, true in TRUTH.items():
        lower, upper = table.loc[name, ["lower", "upper"]]
        assert lower < true < upper, (name, true, lower, upper)
    for name in ("tv_cl", "tv_v1"):
        assert abs(np.log(table.loc[name, "median"] / TRUTH[name])) < 0.1, name
    assert abs(table.loc["omega_cl", "median"] / TRUTH["omega_cl"] - 1) < 0.3
    assert abs(table.loc["sigma_prop", "median"] / TRUTH["sigma_prop"] - 1) < 0.2
    # the random effects are recovered subject by subject, not only their spread
    eta = fit_m3.posterior["eta_cl"].mean(dim=("chain", "draw")).values
    assert np.corrcoef(eta, simulated.eta["cl"])[0, 1] > 0.9
    assert set(fit_m3.shrinkage()) == {"cl", "v1"}
    assert 0 <= fit_m3.shrinkage()["cl"] < 0.2  # six samples a subject inform CL well
    assert fit_m3.to_dict()["shrinkage"]["cl"] == pytest.approx(fit_m3.shrinkage()["cl"])
    for column in ("r_hat", "ess_bulk", "ess_tail"):
        assert table[column].notna().all()


def test_m3_stays_unbiased_where_dropping_the_blq_values_does_not(spec):
    # sparse sampling (a peak, a trough, a late sample): the subjects with fast clearance are
    # those whose late values fall below the LLOQ, and dropping them leaves their clearance to
    # be read from the peak alone, pulled towards the others
    sparse = simulate_dataset(spec, TRUTH, n_subjects=40, dose_times_days=[0, 14],
                              sample_times_days=[0.1, 13.9, 56], dose_mg_kg=5, random_seed=5)
    m3 = _fit(sparse.frame, spec)
    dropped = _fit(sparse.frame, dataclasses.replace(spec, blq="drop"))
    assert 0.15 < float(np.mean(m3.data.obs_cens == 1)) < 0.3
    assert any("dropped" in note for note in dropped.notes)
    assert dropped.data.n_observations < m3.data.n_observations
    est_m3 = m3.summary().set_index("parameter")["median"]
    est_drop = dropped.summary().set_index("parameter")["median"]
    for name in ("tv_cl", "omega_cl"):
        bias_m3 = np.log(est_m3[name] / TRUTH[name])
        bias_drop = np.log(est_drop[name] / TRUTH[name])
        assert abs(bias_m3) < 0.1, (name, est_m3[name])
        assert bias_drop < -0.12 and abs(bias_drop) > 2 * abs(bias_m3), (name, est_drop[name])


def test_the_convergence_gate_is_the_projects(fit_m3):
    d = fit_m3.diagnostics
    assert d.n_chains == 2 and d.n_draws == 1000
    assert d.divergences == 0
    assert "omega_prior" in d.hierarchical_priors
    assert {"tv_cl", "omega_cl", "eta_cl", "sigma_prop"} <= set(fit_m3.checked_variables())


def test_goodness_of_fit_individual_predictions_beat_population_ones(fit_m3):
    gof = fit_m3.goodness_of_fit()
    assert list(gof.columns) == ["ID", "time_days", "dv_ug_ml", "cens", "pred_ug_ml",
                                 "ipred_ug_ml", "iwres", "cwres", "loo_pit"]
    seen = gof[gof.cens == 0]
    error_pred = np.mean(np.abs(np.log(seen.dv_ug_ml / seen.pred_ug_ml)))
    error_ipred = np.mean(np.abs(np.log(seen.dv_ug_ml / seen.ipred_ug_ml)))
    assert error_ipred < 0.7 * error_pred
    assert abs(np.nanmean(gof.iwres)) < 0.3 and 0.6 < np.nanstd(gof.iwres) < 1.3
    assert gof.iwres[gof.cens == 1].isna().all()
    # CWRES (FOCEI linearisation, decorrelated within subjects) are about standard normal
    assert abs(np.nanmean(gof.cwres)) < 0.2 and 0.8 < np.nanstd(gof.cwres) < 1.2
    assert gof.cwres[gof.cens == 1].isna().all()


# ----------------------------------------------------------------------------- model checks
def test_pc_vpc_covers_data_from_the_fitted_model_and_flags_a_wrong_one(fit_m3, spec, tmp_path):
    medians = fit_m3.summary().set_index("parameter")["median"].to_dict()
    shares = []
    for seed in range(8):  # datasets simulated from the fitted model, checked against it
        new = simulate_dataset(spec, medians, n_subjects=40, dose_times_days=[0, 14],
                               sample_times_days=SAMPLES_DAYS, dose_mg_kg=5, random_seed=100 + seed)
        replica = dataclasses.replace(fit_m3, data=read_population_data(new.frame, spec),
                                      warn=False, _diagnostics=fit_m3.diagnostics)
        shares.append(replica.pc_vpc(n_replicates=100, random_seed=seed).fraction_inside)
    assert 0.8 <= np.mean(shares) <= 0.99, shares
    vpc = fit_m3.pc_vpc()
    assert len(vpc.table) == 3 * len(SAMPLES_DAYS) and vpc.lloq_ug_ml == 8.0
    # observations 60 % higher than the model says: most percentile points fall outside
    data = fit_m3.data
    wrong = dataclasses.replace(fit_m3, warn=False, _diagnostics=fit_m3.diagnostics,
                                data=dataclasses.replace(data, obs_value_ug_ml=np.where(
                                    data.obs_cens == 0, 1.6, 1.0) * data.obs_value_ug_ml))
    assert wrong.pc_vpc().fraction_inside < 0.5
    from pkmodel.plots.population import plot_goodness_of_fit, plot_pc_vpc

    for name, fig in (("gof", plot_goodness_of_fit(fit_m3)), ("vpc", plot_pc_vpc(vpc))):
        fig.savefig(tmp_path / f"{name}.png", dpi=60)
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    assert len(plot_goodness_of_fit(fit_m3).axes) == 9  # with the LOO-PIT row


# ----------------------------------------------------------------------------- published prior
PUBLISHED = {"tv_cl": 0.407, "tv_v1": 3.29, "tv_q": 7.14, "tv_v2": 4.13,
             "omega_cl": 0.131 ** 0.5, "omega_v1": 0.048 ** 0.5}


def test_a_strong_published_prior_holds_the_estimate_where_the_data_say_little(spec):
    # two troughs a subject, from a truth whose clearance is 50 % above fasanmade2009's
    truth = TRUTH | {k: v for k, v in PUBLISHED.items() if k.startswith("tv_")} | {"tv_cl": 0.6}
    sparse = simulate_dataset(spec, truth, n_subjects=40, dose_times_days=[0, 14],
                              sample_times_days=[13.9, 56], dose_mg_kg=5, random_seed=5)
    fit = _fit(sparse.frame, with_prior(spec, "fasanmade2009", 100.0))
    table = fit.summary().set_index("parameter")
    for name, value in PUBLISHED.items():
        assert abs(np.log(table.loc[name, "median"] / value)) < 0.05, (name, table.loc[name])
    assert table.loc["tv_cl", "upper"] < 0.5  # the data alone would put it near 0.6
    assert fit.spec.prior.model == "fasanmade2009" and fit.spec.prior.weight == 100.0


def test_a_vanishing_prior_weight_gives_the_uninformed_fit(fit_m3, simulated, spec):
    fit = _fit(simulated.frame, with_prior(spec, "fasanmade2009", 1e-6))
    ours = fit.summary().set_index("parameter")
    plain = fit_m3.summary().set_index("parameter")
    for name in plain.index:
        sd = (plain.loc[name, "upper"] - plain.loc[name, "lower"]) / 3.29
        assert abs(ours.loc[name, "median"] - plain.loc[name, "median"]) < 0.5 * sd, name


def test_the_published_prior_maps_by_name_and_refuses_what_it_cannot(spec, tmp_path):
    prior = published_prior(spec, "fasanmade2009", 4.0)
    assert prior.terms["log_tv_cl"] == pytest.approx((np.log(0.407), 0.2))
    assert prior.terms["omega_v1"] == pytest.approx((0.5 * np.log(0.048), 0.3))
    assert "theta_cl_weight_kg" not in prior.terms  # fasanmade2009 has no weight effect on CL
    assert any("albumin_g_dl on cl is not in the specification" in n for n in prior.notes)
    # a matching effect: its coefficient, and the typical value moved to the local reference
    local = dataclasses.replace(spec, covariates=(
        CovariateTerm("v1", "WT", "power", reference=70), CovariateTerm("cl", "ATI",
                                                                        "categorical")))
    mapped = published_prior(local, "fasanmade2009")
    assert mapped.terms["theta_v1_weight_kg"][0] == pytest.approx(0.538)
    assert mapped.terms["theta_cl_ati_1"][0] == pytest.approx(np.log(1.471))
    assert np.exp(mapped.terms["log_tv_v1"][0]) == pytest.approx(3.29 * (70 / 77) ** 0.538)
    one = PopulationSpec(compartments=1, parameters={"cl": Parameter(0.3), "v": Parameter(3.0)})
    with pytest.raises(SpecificationError, match="parameter v of the specification"):
        published_prior(one, "fasanmade2009")
    indicator = dataclasses.replace(spec, covariates=(
        CovariateTerm("cl", "ALB", "indicator", below=3.0),))
    with pytest.raises(SpecificationError, match="indicator effect of albumin_g_dl on cl"):
        published_prior(indicator, "fasanmade2009")
    # the same from the specification file, and through to_dict / from_dict
    path = _write(tmp_path, SPEC_TOML + '\n[prior]\nmodel = "uc"\nweight = 4\n')
    from_file = read_spec(path)
    assert from_file.prior == prior
    assert PopulationSpec.from_dict(from_file.to_dict()) == from_file
    with pytest.raises(SpecFileError, match=r"unknown key 'wieght'.*known keys: model, weight"):
        read_spec(_write(tmp_path, SPEC_TOML + '\n[prior]\nmodel = "uc"\nwieght = 4\n'))


def test_a_fit_is_usable_as_a_library_model(fit_m3, simulated, tmp_path, capsys):
    model = fit_m3.to_population_model("local")
    table = fit_m3.summary().set_index("parameter")["median"]
    assert model.typical["cl"] == pytest.approx(table["tv_cl"])
    assert model.omega2["cl"] == pytest.approx(table["omega_cl"] ** 2)
    assert model.random_effects == ("cl", "v1") and model.proportional_sd == table["sigma_prop"]
    p = model.individual_parameters({"weight_kg": 140.0})
    assert float(p.cl) == pytest.approx(table["tv_cl"] * 2 ** table["theta_cl_weight_kg"])
    # any structure: a fit on IV boluses keeps its structure, and an infusion regimen given to
    # its model is predicted from the same disposition as by the infusion fit's model
    bolus = dataclasses.replace(fit_m3, spec=dataclasses.replace(fit_m3.spec, dosing="bolus"),
                                warn=False, _diagnostics=fit_m3.diagnostics).to_population_model()
    assert bolus.structure == LinearCompartmental(2, "bolus") and bolus.typical == model.typical
    troughs = [steady_state_troughs(m, ["5mg/kg q8w", "10mg/kg q4w"],
                                    {"weight_kg": [50.0, 90.0]}).values for m in (bolus, model)]
    np.testing.assert_array_equal(*troughs)
    from pkmodel.cli.main import main

    path = tmp_path / "popfit.nc"
    fit_m3.save(path)
    data = tmp_path / "pk.csv"
    simulated.frame[simulated.frame.ID.astype(str) == "3"].to_csv(data, index=False)
    assert main(["pk", "forecast", str(data), "--model", str(path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"] == "popfit" and payload["forecast"]["regimens"]


# ----------------------------------------------------------------------------- files
def test_save_and_load_netcdf(fit_m3, tmp_path):
    path = tmp_path / "popfit.nc"
    fit_m3.save(path)
    loaded = load_population_fit(path, warn=False)
    pd.testing.assert_frame_equal(loaded.summary(), fit_m3.summary())
    assert loaded.spec == fit_m3.spec and loaded.data.subject_ids == fit_m3.data.subject_ids
    pd.testing.assert_frame_equal(loaded.goodness_of_fit(), fit_m3.goodness_of_fit())
    with pytest.raises(FileExistsError):
        fit_m3.save(path)
    from pkmodel.response import load_fit

    with pytest.raises(FitFileError, match="another kind"):
        load_fit(path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    broken = tmp_path / "broken.nc"
    broken.write_bytes(bytes(raw))
    with pytest.raises(FitFileError):
        load_population_fit(broken)


# ----------------------------------------------------------------------------- spec and data
def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unknown_key_names_its_line_and_the_known_keys(tmp_path):
    text = SPEC_TOML.replace("prior_log_sd = 0.5\n\n[parameters.v2]",
                             "prior_log_sd = 0.5\ntypicl = 2\n\n[parameters.v2]")
    line = text.splitlines().index("typicl = 2") + 1
    with pytest.raises(SpecFileError) as err:
        read_spec(_write(tmp_path, text))
    message = str(err.value)
    assert f"line {line}:" in message and "'typicl'" in message
    assert "known keys: typical, prior_log_sd, bsv, omega_prior, unit, fixed, centred" in message
    assert err.value.line == line and err.value.key == "typicl"
    assert isinstance(err.value, SpecificationError)


@pytest.mark.parametrize(("old", "new", "expect"), [
    ("error = \"proportional\"", "error = \"proportionl\"", r"line 35: \[residual\].*error"),
    ("compartments = 2", "compartments = 4",
     r"line 2: \[model\]: compartments must be 1, 2 or 3, not 4"),
    ("effect = \"power\"", "effect = \"power\"\nlevel = 1", r"line 30: unknown key 'level'.*"
                                                          r"known keys: parameter, covariate"),
    ("covariate = \"WT\"", "covariate = \"BMI\"", r"line 28: .*unknown covariate 'BMI'"),
    ("[parameters.q]", "[parameters.k]", r"line 18: unknown parameter 'k'"),
    ("reference = 70", "reference = 70 70", r"line 30.*not valid TOML"),
    ("[data]", "[date]", r"line 5: unknown key 'date' .*known keys: model, data"),
])
def test_spec_file_errors_name_the_line(tmp_path, old, new, expect):
    assert old in SPEC_TOML
    with pytest.raises(SpecFileError, match=expect):
        read_spec(_write(tmp_path, SPEC_TOML.replace(old, new, 1)))


def test_a_structure_names_the_parameters_it_needs():
    with pytest.raises(SpecificationError, match="parameters cl, v1, q, v2; missing: v2"):
        PopulationSpec(parameters={p: Parameter(1.0) for p in ("cl", "v1", "q")})
    with pytest.raises(SpecificationError, match="which a 1-compartment bolus model does not"):
        PopulationSpec(compartments=1, dosing="bolus",
                       parameters={"cl": Parameter(1.0), "v": Parameter(3.0)},
                       covariates=(CovariateTerm("q", "ati", "categorical"),))
    spec = PopulationSpec(compartments=1, dosing="bolus", residual=ResidualError("additive"),
                          parameters={"cl": Parameter(1.0), "v": Parameter(3.0)})
    assert PopulationSpec.from_dict(spec.to_dict()) == spec


def test_datasets_the_spec_cannot_use_name_row_column_or_parameter(spec, simulated):
    frame = simulated.frame.drop(columns="RATE")
    with pytest.raises(PKDataError, match=r"row index 0, column 'RATE': an infusion without RATE"):
        read_population_data(frame, spec)
    assert read_population_data(frame, dataclasses.replace(spec, infusion_hours=2.0))
    with pytest.raises(PKDataError, match=r"column 'WT': ID '1' has no weight_kg"):
        read_population_data(simulated.frame.drop(columns="WT"), spec)
    constant = simulated.frame.assign(WT=70.0)
    with pytest.raises(SpecificationError, match="effect of weight_kg on cl cannot be estimated"):
        read_population_data(constant, spec)



def test_centring_weights_follow_each_subjects_information(tmp_path):
    """One-compartment bolus, one dose, proportional error: ``d log C / d log CL = -k t`` and
    ``d log C / d log V = k t - 1`` (``k = CL / V``), so each subject's information ``I`` (at
    the median residual SD, ``0.674 x`` its half-normal scale) is known in closed form, and its
    weight ``w = log(s(hi) / s(lo)) / log(hi / lo)``, ``s(omega) = (I + omega^-2)^-1/2``, with
    ``lo, hi`` the 5 % and 90 % quantiles of omega's half-normal prior (``0.0627`` and
    ``1.6449 x`` its scale). A censored value adds nothing; a forced choice wins."""
    rows = ["ID,TIME,AMT,DV,EVID,MDV,CENS"]
    times = {"1": [0.5, 1, 2], "2": [1], "3": [0.5, 4, 8, 12]}
    for sid, ts in times.items():
        rows += [f"{sid},0,100,.,1,1,0"] + [f"{sid},{t},.,5,0,0,0" for t in ts]
    rows += ["3,20,.,1,0,0,1"]  # below the LLOQ: no information
    path = tmp_path / "bolus.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = PopulationSpec(compartments=1, dosing="bolus", time_unit="day", lloq_ug_ml=1.0,
                          parameters={"cl": Parameter(1.0, bsv=True),
                                      "v": Parameter(4.0, bsv=True, omega_prior=0.3)},
                          residual=ResidualError("proportional", proportional_prior=0.2))
    data = read_population_data(path, spec)
    arrays = model_data(spec, data)
    sigma, k = 0.6744897501960817 * 0.2, 1.0 / 4.0  # the standard half-normal's median
    for p, scale, slope in (("cl", 0.5, lambda t: -k * t), ("v", 0.3, lambda t: k * t - 1)):
        info = np.array([np.sum(slope(np.array(ts, float)) ** 2) / sigma**2
                         for ts in times.values()])
        lo, hi = 0.06270677794321385 * scale, 1.6448536269514722 * scale
        w = np.log(np.sqrt((info + lo**-2) / (info + hi**-2))) / np.log(hi / lo)
        np.testing.assert_allclose(arrays[f"w_{p}"], w, rtol=1e-6)
        assert np.all((w > 0.01) & (w < 0.99))
    forced = dataclasses.replace(spec, parameters=spec.parameters | {
        "cl": Parameter(1.0, bsv=True, centred=True)})
    got = model_data(forced, data)
    assert np.all(got["w_cl"] == 0.0) and np.allclose(got["w_v"], arrays["w_v"])


def test_a_pre_dose_sample_is_predicted_zero_as_in_nonmem(tmp_path):
    """A sample written before the first dose (same TIME) has no dose before it: predicted 0
    and kept under an error with an additive part; refused, naming its row, under a purely
    proportional one."""
    rows = ["ID,TIME,AMT,DV,EVID,MDV"]
    for sid, predose in (("1", 0.3), ("2", 0.0)):
        rows += [f"{sid},0,.,{predose},0,0", f"{sid},0,300,.,1,1"]
        rows += [f"{sid},{t},.,{c},0,0" for t, c in ((1, 6.0), (4, 5.0), (12, 2.5))]
    path = tmp_path / "predose.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    pars = {"cl": Parameter(60.0), "v": Parameter(30.0), "ka": Parameter(30.0)}
    for error in ("additive", "combined"):
        spec = PopulationSpec(compartments=1, dosing="oral", time_unit="hour",
                              parameters=pars, residual=ResidualError(error))
        data = read_population_data(path, spec)
        assert data.n_observations == 8
        assert any("2 pre-dose observation(s)" in n and "predicted 0" in n for n in data.notes)
        arrays = model_data(spec, data)
        values = {"log_tv_cl": np.log(60.0), "log_tv_v": np.log(30.0),
                  "log_tv_ka": np.log(30.0)}
        pred = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
        assert pred[0] == 0.0 and pred[4] == 0.0 and np.all(pred[[1, 2, 3, 5, 6, 7]] > 0)
    spec = dataclasses.replace(spec, residual=ResidualError("proportional"))
    with pytest.raises(PKDataError, match=r"row 2, column 'TIME': ID '1' has an observation at "
                       r"TIME 0 .*pre-dose sample.*Fix: use error = \"combined\""):
        read_population_data(path, spec)


# ----------------------------------------------------------------------------- command line
def test_cli_fit_round_trip_with_json(tmp_path, simulated, capsys, fit_m3):
    from pkmodel.cli.main import main

    data = tmp_path / "pk.csv"
    simulated.frame.to_csv(data, index=False)
    spec = _write(tmp_path, SPEC_TOML)
    out = tmp_path / "popfit.nc"
    args = ["pk", "fit", str(data), "--spec", str(spec), "-o", str(out), "--json", "--seed", "1",
            "--draws", "500", "--tune", "500", "--chains", "2"]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = {r["parameter"]: r for r in payload["summary"]}
    assert set(rows) == set(TRUTH)
    for row in rows.values():
        assert {"parameter", "median", "lower", "upper", "unit"} <= set(row)
        assert row["lower"] < row["median"] < row["upper"]
    # the same seed and data as the Python fit: the same posterior
    assert rows["tv_cl"]["median"] == pytest.approx(
        fit_m3.summary().set_index("parameter").loc["tv_cl", "median"], rel=1e-9)
    saved = load_population_fit(out, warn=False).summary()
    assert saved["median"].tolist() == pytest.approx([rows[p]["median"]
                                                      for p in saved["parameter"]])
    assert main(args) == 2  # exists, no --force
    assert "already exists" in capsys.readouterr().err
    bad = _write(tmp_path, SPEC_TOML.replace("bsv = true", "bvs = true", 1))
    assert main(["pk", "fit", str(data), "--spec", str(bad), "-o", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"line 12: unknown key 'bvs'.*did you mean 'bsv'", err)
    assert "Traceback" not in err
    # a published prior from the command line, with the plots
    _write(tmp_path, SPEC_TOML)  # the good specification again
    gof, vpc, plots = tmp_path / "gof.png", tmp_path / "vpc.png", tmp_path / "plots"
    assert main([*args[:6], str(tmp_path / "prior.nc"), "--prior", "fasanmade2009",
                 "--prior-weight", "2", "--gof", str(gof), "--vpc", str(vpc),
                 "--plots", str(plots), *args[7:]]) == 0
    payload = json.loads(capsys.readouterr().out)
    pages = [f"individuals_{k:02d}.png" for k in range(1, 5)]  # 40 subjects, 12 a page
    assert payload["spec"]["prior"]["weight"] == 2.0 and payload["figures"] == [
        str(gof), str(vpc), *(str(plots / n) for n in ("gof.png", "vpc.png", "etas.png",
                                                        *pages))]
    assert gof.stat().st_size > 10_000 and vpc.stat().st_size > 10_000
    assert sorted(p.name for p in plots.iterdir()) == sorted(["etas.png", "gof.png", "vpc.png",
                                                              *pages])
    # --plots naming a file, or a folder whose parent is missing: refused before the fit
    for bad_folder in (gof, tmp_path / "no" / "such"):
        assert main([*args[:6], str(tmp_path / "w.nc"), "--plots", str(bad_folder)]) == 2
        assert "--plots" in capsys.readouterr().err and not (tmp_path / "w.nc").exists()
    assert load_population_fit(tmp_path / "prior.nc", warn=False).spec.prior.model == \
        "fasanmade2009"
    assert main([*args[:6], str(tmp_path / "z.nc"), "--prior", "nosuchmodel"]) == 2
    err = capsys.readouterr().err
    assert "unknown PK model 'nosuchmodel'" in err and "Traceback" not in err


def test_cli_fit_prints_as_pkmodel_fit_and_strict_exits_3_on_a_failed_gate(tmp_path, simulated,
                                                                         capsys):
    from pkmodel.cli.main import main
    from pkmodel.fits import SUMMARY_COLUMNS

    data = tmp_path / "pk.csv"
    simulated.frame.to_csv(data, index=False)
    spec = _write(tmp_path, SPEC_TOML)
    args = ["pk", "fit", str(data), "--spec", str(spec), "--output", str(tmp_path / "f.nc"),
            "--seed", "1", "--draws", "30", "--tune", "10", "--chains", "2", "--cores", "1"]
    assert main([*args, "--strict"]) == 3  # 10 tuning steps: the gate fails
    out, err = capsys.readouterr()
    assert "diagnostics FAIL" in err and "only 10 tuning steps per chain" in err
    assert "ConvergenceWarning" not in err  # said once, by the diagnostics
    header = next(line for line in out.splitlines() if line.lstrip().startswith("parameter"))
    assert header.split() == list(SUMMARY_COLUMNS)  # the printer of `pkmodel fit`
    assert main([*args, "--force"]) == 0  # without --strict the fit is written all the same
    capsys.readouterr()


# ----------------------------------------------------------------------------- docs
def test_the_code_blocks_of_the_population_page_run(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "population_pk.md").read_text(encoding="utf-8")
    toml_blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    python_blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert toml_blocks and python_blocks
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.toml").write_text(toml_blocks[0], encoding="utf-8")
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in python_blocks:
            exec(compile(block, "docs/population_pk.md", "exec"), namespace)
    assert namespace["spec"] == read_spec(tmp_path / "model.toml")
    for i, block in enumerate(toml_blocks):  # every TOML example is a valid specification
        (tmp_path / f"block{i}.toml").write_text(block, encoding="utf-8")
        read_spec(tmp_path / f"block{i}.toml")
    assert set(namespace["table"]["parameter"]) >= {"tv_cl", "omega_cl", "sigma_prop"}


def test_a_fixed_parameter_is_held_at_its_value_reported_and_not_gated(spec, simulated,
                                                                        tmp_path, capsys):
    """``fixed = true`` (NONMEM's FIX): no free variable, the value in every draw, no interval
    and no diagnostics, no published prior on it; with BSV it is refused naming the line."""
    from pkmodel.cli.main import main
    from pkmodel.pk.population.build import build_model
    from pkmodel.pk.population.data import read_population_data

    text = SPEC_TOML.replace("typical = 0.5\nprior_log_sd = 0.5", "typical = 0.6\nfixed = true")
    fixed = read_spec(_write(tmp_path, text))
    assert fixed.parameters["q"].fixed and fixed.to_dict()["parameters"]["q"]["fixed"] is True
    assert "fixed" not in spec.to_dict()["parameters"]["q"]  # unchanged for estimated ones
    model = build_model(fixed, read_population_data(simulated.frame, fixed))
    free = {rv.name for rv in model.free_RVs}
    assert "log_tv_q" not in free and "log_tv_v2" in free
    prior = published_prior(fixed, "fasanmade2009")
    assert "log_tv_q" not in prior.terms and any("tv_q is fixed at 0.6" in n for n in prior.notes)

    data = tmp_path / "pk.csv"
    simulated.frame.to_csv(data, index=False)
    out = tmp_path / "fixed.nc"
    args = ["pk", "fit", str(data), "--spec", str(tmp_path / "spec.toml"), "-o", str(out),
            "--seed", "1", "--draws", "200", "--tune", "300", "--chains", "2"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2 x 200 draws may miss the gate: not the point
        assert main([*args, "--json"]) == 0
    rows = {r["parameter"]: r for r in json.loads(capsys.readouterr().out)["summary"]}
    assert rows["tv_q"]["median"] == rows["tv_q"]["lower"] == rows["tv_q"]["upper"] == 0.6
    assert rows["tv_q"]["r_hat"] is None and rows["tv_v2"]["r_hat"] is not None
    fit = load_population_fit(out, warn=False)
    assert "tv_q" not in fit.checked_variables() and "tv_v2" in fit.checked_variables()
    assert np.all(fit.posterior["tv_q"].values == pytest.approx(0.6))
    assert main([*args, "--force"]) == 0
    # the text: its value as mean, median and both bounds (SD 0 up to rounding), and no
    # diagnostics (not sampled)
    assert re.search(r"tv_q\s+L/day\s+0\.6\s+\S+\s+0\.6\s+0\.6\s+0\.6\s+fixed\s+fixed\s+fixed\s",
                     capsys.readouterr().out)

    bad = text.replace("typical = 0.6\nfixed = true", "typical = 0.6\nfixed = true\nbsv = true")
    with pytest.raises(SpecFileError,
                       match=r"line 19: \[parameters.q\]: a fixed parameter cannot have BSV"):
        read_spec(_write(tmp_path, bad))


def test_every_parametrisation_of_the_random_effects_defines_the_same_posterior(
        spec, simulated, tmp_path):
    """The random effects of CL written non-centred (``centred = false``: ``z_i``), centred
    (``true``) or partially centred with the design's weights (left out): free ``u_cl`` with
    ``eta = omega^w (u - (1 - w) mean)``. At corresponding points ``u = (1 - w) mean +
    omega^(1 - w) z`` the log densities differ by the Jacobian, ``-sum_i (1 - w_i) log omega``,
    and the etas agree, so all three are one posterior. Refused without BSV or in a block."""
    from pkmodel.pk.population.build import build_model
    from pkmodel.pk.population.data import read_population_data

    def variant(value):
        return read_spec(_write(tmp_path, SPEC_TOML.replace(
            'unit = "L/day"\nbsv = true', f'unit = "L/day"\nbsv = true\ncentred = {value}')))

    plain, centred = variant("false"), variant("true")
    assert centred.parameters["cl"].centred is True and plain.parameters["cl"].centred is False
    assert spec.parameters["cl"].centred is None and "centred" not in spec.to_dict()[
        "parameters"]["cl"]
    assert centred.to_dict()["parameters"]["cl"]["centred"] is True
    data = read_population_data(simulated.frame, spec)
    weights = model_data(spec, data)["w_cl"]
    assert np.all((weights > 0.01) & (weights < 0.99)) and np.ptp(weights) > 0
    models = {name: build_model(s, data) for name, s in
              (("plain", plain), ("auto", spec), ("centred", centred))}
    assert "u_cl" in {v.name for v in models["plain"].free_RVs}
    rng = np.random.default_rng(0)
    point = {k: v + 0.3 * rng.standard_normal(np.shape(v))
             for k, v in models["plain"].initial_point().items()}
    omega = float(np.exp(point["omega_cl_log__"]))
    mean = (point["log_tv_cl"] + point["theta_cl_weight_kg"]
            * np.log(data.covariates["weight_kg"] / 70))
    z = point["u_cl"]  # non-centred: u is z
    base = models["plain"].compile_logp()(point)
    def etas(model, at):
        graph = model.replace_rvs_by_values([model["eta_cl"]])[0]
        return model.compile_fn(graph, inputs=model.value_vars, on_unused_input="ignore")(at)

    eta = etas(models["plain"], point)
    np.testing.assert_allclose(eta, omega * z, rtol=1e-12)
    for name, w in (("auto", weights), ("centred", np.zeros_like(weights))):
        moved = point | {"u_cl": (1 - w) * mean + omega ** (1 - w) * z}
        difference = models[name].compile_logp()(moved) - base
        assert difference == pytest.approx(-np.sum(1 - w) * np.log(omega), rel=1e-8)
        np.testing.assert_allclose(etas(models[name], moved), eta, rtol=1e-9, atol=1e-12)
    for text, match in (('unit = "L/day"\nbsv = true', "centred applies to the random effects"),
                        ("typical = 3.0\nbsv = true", "sampled non-centred")):
        bad = SPEC_TOML.replace(text, text.replace("bsv = true", "bsv = false") + "\ncentred = true"
                                if "applies" in match else text + "\ncentred = true")
        if "non-centred" in match:
            bad += '\n[bsv]\nblock = ["cl", "v1"]\n'
        with pytest.raises(SpecFileError, match=match):
            read_spec(_write(tmp_path, bad))


def test_a_specification_saved_by_0_4_is_read():
    """The specification as a population fit's file of pkmodel 0.4 holds it (its JSON)."""
    saved = json.loads(
        '{"covariates": [{"covariate": "weight_kg", "effect": "power", "parameter": "cl", '
        '"prior_mean": 0.75, "prior_sd": 0.25, "reference": 70.0}, {"covariate": "ati", '
        '"effect": "categorical", "levels": [1.0], "parameter": "cl", "prior_mean": 0.0, '
        '"prior_sd": 1.0, "reference": 0.0}, {"covariate": "weight_kg", "effect": "power", '
        '"exponent": 1.0, "parameter": "v1", "prior_mean": 0.0, "prior_sd": 1.0, '
        '"reference": 70.0}], "data": {"amount_unit": "mg", "blq": "m3", '
        '"concentration_unit": "\\u00b5g/mL", "lloq_ug_ml": 8.0, "time_unit": "day"}, '
        '"model": {"compartments": 2, "dosing": "infusion"}, "parameters": {"cl": {"bsv": '
        'true, "omega_prior": 0.5, "prior_log_sd": 1.0, "typical": 0.3, "unit": "L/day"}, "q": '
        '{"bsv": false, "omega_prior": 0.5, "prior_log_sd": 0.5, "typical": 0.5}, "v1": {"bsv": '
        'true, "omega_prior": 0.5, "prior_log_sd": 1.0, "typical": 3.0}, "v2": {"bsv": false, '
        '"omega_prior": 0.5, "prior_log_sd": 0.5, "typical": 2.0}}, "prior": {"model": '
        '"fasanmade2009", "notes": ["a note"], "terms": {"log_tv_cl": [-0.899, 0.2]}, '
        '"weight": 2.0}, "residual": {"additive_prior_ug_ml": 1.0, "error": "proportional", '
        '"proportional_prior": 0.3}}')
    spec = PopulationSpec.from_dict(saved)
    assert spec.structure == LinearCompartmental(2, "infusion")
    assert spec.covariates == (
        CovariateTerm("cl", "weight_kg", "power", reference=70.0, prior_mean=0.75, prior_sd=0.25),
        CovariateTerm("cl", "ati", "categorical"),
        CovariateTerm("v1", "weight_kg", "power", reference=70.0, exponent=1.0))
    assert spec.prior.terms == {"log_tv_cl": (-0.899, 0.2)} and spec.prior.weight == 2.0
    assert spec.parameters["cl"] == Parameter(0.3, bsv=True, unit="L/day")
    # written again with every parameter's unit (from 0.5 a missing unit is the dataset's)
    for name, unit in (("q", "L/day"), ("v1", "L"), ("v2", "L")):
        saved["parameters"][name]["unit"] = unit
    assert json.loads(json.dumps(spec.to_dict(), sort_keys=True)) == saved


# ----------------------------------------------------------------------------- LOO and LOO-PIT
def test_the_stored_log_likelihood_is_scipy_s_at_a_draw(fit_m3, spec):
    """Per observation: the ODE's concentration at one posterior draw and scipy's normal log
    density (log CDF below the LLOQ); per subject: the random effects integrated out by
    Gauss-Hermite quadrature, against the stored importance-sampling estimate."""
    from scipy import stats

    chain, draw = 1, 123
    stored = fit_m3.tree["log_likelihood"].isel(chain=chain, draw=draw)
    post = fit_m3.posterior.isel(chain=chain, draw=draw)
    v = {k: float(post[k]) for k in ("tv_cl", "tv_v1", "tv_q", "tv_v2", "sigma_prop",
                                     "theta_cl_weight_kg", "omega_cl", "omega_v1")}
    data = fit_m3.data
    weight = data.covariates["weight_kg"]
    censored = np.unique(data.obs_subject[data.obs_cens == 1])
    for i in (0, int(censored[0]), int(censored[-1])):
        rows = data.obs_subject == i
        doses = [(t, a, d) for t, a, d, s in zip(data.dose_time_days, data.dose_amount_mg,
                                                 data.dose_duration_days, data.dose_subject,
                                                 strict=True) if s == i]
        p = {"cl": v["tv_cl"] * (weight[i] / 70) ** v["theta_cl_weight_kg"]
             * np.exp(float(post["eta_cl"][i])),
             "v1": v["tv_v1"] * np.exp(float(post["eta_v1"][i])), "q": v["tv_q"],
             "v2": v["tv_v2"]}
        conc = _ode(spec, p, doses, data.obs_time_days[rows])
        y, cens = data.obs_value_ug_ml[rows], data.obs_cens[rows]
        sd = v["sigma_prop"] * conc
        expected = np.where(cens == 0, stats.norm.logpdf(y, conc, sd),
                            stats.norm.logcdf(y, conc, sd))
        np.testing.assert_allclose(stored["y"].values[rows], expected, rtol=1e-6, atol=1e-9)
    assert (data.obs_cens == 1).sum() > 20  # the censored terms were checked above
    # every subject's likelihood with its etas integrated out, on a 121 x 121 grid over 7
    # posterior SDs either side of the mean of each subject's etas (the rectangle rule)
    grid = np.linspace(-7, 7, 121)
    g_cl, g_v1 = (a.ravel() for a in np.meshgrid(grid, grid, indexing="ij"))
    mean = {p: post_all.mean(dim=("chain", "draw")).values for p, post_all in
            (("cl", fit_m3.posterior["eta_cl"]), ("v1", fit_m3.posterior["eta_v1"]))}
    sds = {p: fit_m3.posterior[f"eta_{p}"].std(dim=("chain", "draw")).values
           for p in ("cl", "v1")}
    eta = {"cl": mean["cl"] + sds["cl"] * g_cl[:, None],
           "v1": mean["v1"] + sds["v1"] * g_v1[:, None]}
    arrays = model_data(spec, data)
    values = {f"log_tv_{k}": np.log(v[f"tv_{k}"]) for k in ("cl", "v1", "q", "v2")}
    values |= {"theta_cl_weight_kg": v["theta_cl_weight_kg"], "eta_cl": eta["cl"],
               "eta_v1": eta["v1"]}
    conc = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    y, cens = data.obs_value_ug_ml, data.obs_cens
    sd = v["sigma_prop"] * conc
    per_obs = np.where(cens == 0, stats.norm.logpdf(y, conc, sd), stats.norm.logcdf(y, conc, sd))
    per_subject = np.zeros((g_cl.size, data.n_subjects))
    np.add.at(per_subject, (slice(None), data.obs_subject), per_obs)
    log_prior = (stats.norm.logpdf(eta["cl"], 0, v["omega_cl"])
                 + stats.norm.logpdf(eta["v1"], 0, v["omega_v1"]))
    cell = np.log(sds["cl"] * sds["v1"] * (grid[1] - grid[0]) ** 2)
    reference = logsumexp(per_subject + log_prior, axis=0) + cell
    error = stored["y_by_subject"].values - reference
    assert np.max(np.abs(error)) < 0.1 and abs(np.mean(error)) < 0.03, error


def _perturbed(frame: pd.DataFrame) -> pd.DataFrame:
    """The dataset with the first subject's concentrations turned to rise over time (x 0.1 to
    x 10): data the model cannot explain, which pull its estimates."""
    frame = frame.copy()
    rows = (frame["ID"] == frame["ID"].iloc[0]) & (frame["EVID"] == 0)
    frame.loc[rows, "DV"] *= np.geomspace(0.1, 10, rows.sum())
    return frame


def test_loo_ranks_the_true_error_model_first_by_the_expected_margin(fit_m3, spec, simulated,
                                                                     tmp_path, capsys):
    """Data from a proportional error: the fit with an additive error predicts new subjects
    worse, and PSIS-LOO (leaving out subjects) says so by about the margin measured on 60 new
    subjects of the same design (their likelihood integrated over new random effects by plain
    Monte Carlo, no PSIS, no quadrature)."""
    from scipy import stats

    from pkmodel.cli.main import main
    from pkmodel.pk.population.comparison import compare_fits

    additive = read_spec(_write(tmp_path, SPEC_TOML.replace(
        'error = "proportional"', 'error = "additive"\nadditive_prior_ug_ml = 10')))
    wrong = _fit(simulated.frame, additive)
    result = compare_fits({"proportional": fit_m3, "additive": wrong})
    table = result.table.set_index("name")
    assert list(result.table["name"]) == ["proportional", "additive"]
    margin, se = table.loc["additive", "elpd_diff"], table.loc["additive", "dse"]
    assert margin > 4 and margin > 2 * se, table
    assert result.verdicts()[0].startswith("proportional predicts better than additive")
    # the expected margin: each fit's log predictive density of 60 new subjects
    new = read_population_data(simulate_dataset(
        spec, TRUTH, n_subjects=60, dose_times_days=[0, 14], sample_times_days=SAMPLES_DAYS,
        dose_mg_kg=5, random_seed=11).frame, spec)
    rng = np.random.default_rng(5)
    arrays = model_data(spec, new)
    member = (new.obs_subject[:, None] == np.arange(new.n_subjects)).astype(float)
    density = {}
    for name, fit in (("proportional", fit_m3), ("additive", wrong)):
        post = fit.posterior.stack(sample=("chain", "draw"))
        per_draw = []
        for s in np.linspace(0, post.sizes["sample"] - 1, 25).astype(int):
            d = {k: float(post[k][s]) for k in post.data_vars if "subject" not in post[k].dims}
            values = {k: d[k] for k in d if k.startswith(("log_tv_", "theta_"))}
            values |= {f"eta_{p}": d[f"omega_{p}"] * rng.standard_normal((1000, new.n_subjects))
                       for p in ("cl", "v1")}
            conc = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
            sd = np.hypot(d.get("sigma_prop", 0.0) * conc, d.get("sigma_add_ug_ml", 0.0))
            y = new.obs_value_ug_ml
            per_obs = np.where(new.obs_cens == 0, stats.norm.logpdf(y, conc, sd),
                               stats.norm.logcdf(y, conc, sd))
            per_draw.append(logsumexp(per_obs @ member, axis=0) - np.log(1000))
        density[name] = logsumexp(np.array(per_draw), axis=0) - np.log(len(per_draw))
    diff = density["proportional"] - density["additive"]
    expected = diff.mean() * fit_m3.data.n_subjects  # per subject, scaled to the 40 fitted
    expected_se = diff.std(ddof=1) * np.sqrt(fit_m3.data.n_subjects / new.n_subjects) * \
        np.sqrt(fit_m3.data.n_subjects)
    assert expected > 0 and abs(margin - expected) < 2.5 * np.hypot(se, expected_se), (
        margin, se, expected, expected_se)
    # the command line: the same ranking, printed and as JSON
    fit_m3.save(tmp_path / "proportional.nc")
    wrong.save(tmp_path / "additive.nc")
    files = [str(tmp_path / "additive.nc"), str(tmp_path / "proportional.nc")]
    assert main(["pk", "compare", *files, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in payload["fits"]] == ["proportional.nc", "additive.nc"]
    assert payload["fits"][1]["elpd_diff"] == pytest.approx(margin)
    assert main(["pk", "compare", *files]) == 0
    out = capsys.readouterr().out
    assert re.search(r"1\s+proportional\.nc\s+-\d+\.\d\s+\d+\.\d\s+0\.0", out)
    assert "proportional.nc predicts better than additive.nc" in out


def test_k_hat_flags_an_influential_subject_and_compare_refuses_other_data(
        fit_m3, simulated, spec, tmp_path, capsys):
    from pkmodel.cli.main import main
    from pkmodel.pk.population.comparison import compare_fits, loo

    pulled = _fit(_perturbed(simulated.frame), spec)
    k = np.asarray(loo(pulled).pareto_k)
    good_k = loo(pulled).good_k
    assert k[0] > good_k and np.argmax(k) == 0 and np.sort(k)[-2] < good_k, k
    assert np.max(np.asarray(loo(fit_m3).pareto_k)) < good_k  # the unperturbed data: none
    with pytest.raises(SpecificationError, match="fitted to different data"):
        compare_fits({"a": fit_m3, "b": pulled})
    pulled.save(tmp_path / "pulled.nc")
    fit_m3.save(tmp_path / "plain.nc")
    assert main(["pk", "compare", str(tmp_path / "plain.nc"), str(tmp_path / "pulled.nc")]) == 2
    assert "different data" in capsys.readouterr().err
    # a fit saved by pkmodel 0.4 has no log likelihood: it loads, and LOO says why not
    old = load_population_fit(ROOT / "tests" / "saved_fits" / "population_0.4.nc", warn=False)
    assert "log_likelihood" not in old.tree.children
    with pytest.raises(SpecificationError, match=r"no log likelihood.*fit it again"):
        loo(old)
    assert np.isfinite(old.goodness_of_fit()["loo_pit"]).any()  # computed from its posterior


def test_loo_pit_is_arviz_s_and_about_uniform(fit_m3):
    """The exact LOO-PIT (normal CDF at each draw, PSIS weights) against ArviZ's ``loo_pit``
    from the stored replicates; uniform under the model that made the data."""
    import arviz as az
    from scipy import stats

    from pkmodel.pk.population.comparison import loo_pit

    ours = loo_pit(fit_m3)
    exact = fit_m3.data.obs_cens == 0
    assert np.isnan(ours[~exact]).all()
    # ArviZ's PSIS stops at an observation whose log likelihood is the same at every draw (a
    # value far below the LLOQ: P(Y < LLOQ) = 1): pkmodel's weights give it uniform ones
    from pkmodel.pk.population.comparison import psis_weights

    weights, khat, _ = psis_weights(fit_m3.tree["log_likelihood"]["y"], fit_m3.posterior)
    theirs = np.asarray(az.loo_pit(fit_m3.tree, var_names="y",
                                   log_weights=weights.to_dataset(name="y"),
                                   pareto_k=khat.to_dataset(name="y"))["y"]).ravel()
    assert np.mean(np.abs(ours[exact] - theirs[exact])) < 0.02
    assert np.corrcoef(ours[exact], theirs[exact])[0, 1] > 0.98
    assert stats.kstest(ours[exact], "uniform").pvalue > 0.01
    ppc = fit_m3.tree["posterior_predictive"]["y"]
    assert ppc.attrs["units"] == "µg/mL" and ppc.sizes["observation"] == fit_m3.data.n_observations


# ----------------------------------------------------------------------------- pcVPC options
def _replica(fit, **changes):
    """The fit with its data changed (the same posterior): what a check of other data sees."""
    return dataclasses.replace(fit, data=dataclasses.replace(fit.data, **changes), warn=False,
                               _diagnostics=fit.diagnostics)


def test_the_censored_pc_vpc_keeps_what_the_blq_values_say(fit_m3):
    """Half the values below an LLOQ of 25 µg/mL: the fraction below it per bin is observed and
    simulated; percentiles among the censored values are not drawn (never pulled to the LLOQ or
    0); observations 60 % higher than the model says fall outside in the BLQ panel."""
    data = fit_m3.data
    lloq = 25.0
    below = (data.obs_cens == 1) | (data.obs_value_ug_ml < lloq)
    heavy = _replica(fit_m3, obs_cens=below.astype(int),
                     obs_value_ug_ml=np.where(below, lloq, data.obs_value_ug_ml))
    vpc = heavy.pc_vpc(n_replicates=100)
    assert below.mean() > 0.4 and vpc.lloq_ug_ml == lloq
    assert len(vpc.blq) == len(SAMPLES_DAYS)
    for row in vpc.blq.itertuples():
        assert row.observed == pytest.approx(below[data.obs_time_days == row.time_days].mean())
    assert vpc.blq["inside"].mean() >= 5 / 6 and vpc.fraction_inside >= 0.8
    table = vpc.table.set_index(["time_days", "percentile"])
    for t in SAMPLES_DAYS:
        share = below[data.obs_time_days == t].mean()
        for q in (5.0, 50.0, 95.0):
            value = table.loc[(t, q), "observed"]
            assert np.isnan(value) == (share > q / 100 + 0.02 or share == 1.0), (t, q, share)
            assert np.isnan(value) or value > 0
    values = np.where(data.obs_cens == 0, 1.6, 1.0) * data.obs_value_ug_ml
    shifted = values < lloq
    wrong = _replica(fit_m3, obs_cens=shifted.astype(int),
                     obs_value_ug_ml=np.where(shifted, lloq, values)).pc_vpc(n_replicates=100)
    assert (~wrong.blq["inside"]).sum() >= 3, wrong.blq


def test_pre_dose_samples_stay_out_of_the_pc_vpc(fit_m3):
    data = fit_m3.data
    n = data.n_subjects
    with_predose = _replica(
        fit_m3, obs_subject=np.concatenate([np.arange(n), data.obs_subject]),
        obs_time_days=np.concatenate([np.zeros(n), data.obs_time_days]),
        obs_value_ug_ml=np.concatenate([np.zeros(n), data.obs_value_ug_ml]),
        obs_cens=np.concatenate([np.zeros(n, dtype=int), data.obs_cens]))
    options = {"bins": "quantile", "n_bins": 4, "n_replicates": 40}
    vpc = with_predose.pc_vpc(**options)
    assert vpc.n_predose == n
    plain = fit_m3.pc_vpc(**options)
    pd.testing.assert_series_equal(vpc.table["observed"], plain.table["observed"])
    assert (vpc.table["observed"].dropna() > 1).all()  # no percentile pulled to 0


def test_pc_vpc_strata_and_user_bins(fit_m3, tmp_path):
    from pkmodel.plots.population import plot_pc_vpc

    vpc = fit_m3.pc_vpc(stratify="weight_kg", bins=[0, 10, 30, 80], n_replicates=40)
    cut = np.median(fit_m3.data.covariates["weight_kg"])
    assert list(dict.fromkeys(vpc.table["stratum"])) == [f"weight_kg <= {cut:g}",
                                                         f"weight_kg > {cut:g}"]
    for _, rows in vpc.table.groupby("stratum"):
        assert sorted(set(zip(rows["t_low_days"], rows["t_high_days"], strict=True))) == [
            (0.0, 10.0), (10.0, 30.0), (30.0, 80.0)]  # the edges given
        assert set(rows["percentile"]) == {5.0, 50.0, 95.0}
    fig = plot_pc_vpc(vpc, time_unit="week")
    assert len(fig.axes) == 4  # two strata, each with its BLQ panel
    fig.savefig(tmp_path / "strata.png", dpi=50)
    assert (tmp_path / "strata.png").stat().st_size > 10_000


def test_pc_vpc_options_that_cannot_apply_are_refused_before_any_work(fit_m3, monkeypatch):
    from pkmodel.pk.population import checks

    monkeypatch.setattr(checks, "predict",
                        lambda *a, **k: pytest.fail("simulated before checking the options"))
    for options, message in (({"bins": "jenks"}, "bins must be one of auto, quantile, time"),
                             ({"bins": [0, 10, 5]}, "increasing"),
                             ({"bins": [3.0]}, "at least two"),
                             ({"bins": ["a", "b"]}, "must be numbers"),
                             ({"stratify": "albumin_g_dl"},
                              r"cannot stratify by 'albumin_g_dl'.*\(weight_kg\)"),
                             ({"n_bins": 0}, "n_bins must be at least 1"),
                             ({"ci_prob": 1.5}, "ci_prob")):
        with pytest.raises(SpecificationError, match=message):
            fit_m3.pc_vpc(**options)


# ----------------------------------------------------------------------------- subject plots
def test_loess_reproduces_a_line_and_follows_a_curve():
    from pkmodel.plots.population import loess

    x = np.linspace(0, 10, 200)
    gx, gy = loess(x, 2 + 0.5 * x)
    np.testing.assert_allclose(gy, 2 + 0.5 * gx, atol=1e-9)
    y = np.sin(x) + np.random.default_rng(0).normal(0, 0.1, x.size)
    gx, gy = loess(x, y, frac=0.2)
    assert np.max(np.abs(gy - np.sin(gx))) < 0.15
    gx, gy = loess(np.geomspace(1, 100, 50), np.log(np.geomspace(1, 100, 50)), log_x=True)
    np.testing.assert_allclose(gy, np.log(gx), atol=1e-9)


def test_individual_and_eta_plots(fit_m3, tmp_path):
    from pkmodel.pk.population.individuals import eta_table, prediction_curves
    from pkmodel.plots.subjects import plot_etas, plot_individuals

    curves = prediction_curves(fit_m3)
    pages = plot_individuals(fit_m3, curves=curves)
    assert len(pages) == 4 and sum(ax.get_visible() for ax in pages[-1].axes) == 4
    # the last grid point is each subject's last observation: PRED there is the GOF's
    gof = fit_m3.goodness_of_fit().groupby("ID", sort=False).tail(1).set_index("ID")
    last = curves.groupby("ID", sort=False).tail(1).set_index("ID")
    np.testing.assert_allclose(last["pred_ug_ml"], gof.loc[last.index, "pred_ug_ml"], rtol=1e-9)
    np.testing.assert_allclose(last["ipred_ug_ml"], gof.loc[last.index, "ipred_ug_ml"],
                               rtol=1e-9)
    etas = eta_table(fit_m3)
    assert list(etas.columns) == ["ID", "eta_cl", "eta_v1", "weight_kg"]
    fig = plot_etas(fit_m3)
    assert len(fig.axes) == 4
    shrinkage = fit_m3.shrinkage()
    assert fig.axes[0].get_title() == f"eta_cl: shrinkage {shrinkage['cl']:.0%}"
    for name, figure in (("page", pages[0]), ("etas", fig)):
        figure.savefig(tmp_path / f"{name}.png", dpi=50)
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    with pytest.raises(SpecificationError, match="per_page"):
        plot_individuals(fit_m3, per_page=0)
