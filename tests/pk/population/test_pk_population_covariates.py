"""Any covariate column in population fits: declared in the specification (unit and plausible
range, or levels; a rule for blanks), read by the one NONMEM reader with the dataset's own
column names, in every effect form, time-varying per observation; every refusal's message.

The dataset is neonatal and phenobarbital-like (simulated here: weights 0.5-3.6 kg, an Apgar
score 1-10 as published datasets carry them, ``WGT`` and ``APGR``), as a pharmacometrician would
bring it: the design arrays are checked against a hand computation, and one small fit recovers
the truth it was simulated from.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

from pkmodel.errors import PKDataError, SpecFileError, SpecificationError
from pkmodel.pk import read_nonmem
from pkmodel.pk.covariate_registry import Covariate
from pkmodel.pk.population import (
    CovariateTerm,
    Parameter,
    PopulationSpec,
    load_population_fit,
    read_population_data,
    read_spec,
)
from pkmodel.pk.population.build import individual_log_parameters, model_data, predict

# CL = TVCL (WGT / 1.3)^theta1, V = TVV (1 + theta2 (WGT - 1.3)) exp(theta3 [APGR < 5]):
# weight as a power on clearance and linear on volume, NONMEM's IF(APGR.LT.5) on volume.
SPEC_TOML = """\
[model]
compartments = 1
dosing = "bolus"

[data]
time_unit = "hour"

[data.covariates.WGT]
unit = "kg"
range = [0.3, 6.0]      # neonatal weights are ordinary
missing = "locf"

[data.covariates.APGR]
levels = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
missing = "locf"

[parameters.cl]
typical = 0.15
unit = "L/day"
bsv = true

[parameters.v]
typical = 1.3
bsv = true

[[covariates]]
parameter = "cl"
covariate = "WGT"
effect = "power"
reference = 1.3
prior_mean = 0.75
prior_sd = 0.5

[[covariates]]
parameter = "v"
covariate = "WGT"
effect = "linear"
reference = 1.3
prior_mean = 0.5
prior_sd = 0.5

[[covariates]]
parameter = "v"
covariate = "APGR"
effect = "indicator"
below = 5
prior_sd = 0.5

[residual]
error = "proportional"
"""

TRUTH = {"tv_cl": 0.147, "tv_v": 1.25, "omega_cl": 0.17, "omega_v": 0.17,
         "theta_cl_WGT": 1.0, "theta_v_WGT": 1.0 / 1.3, "theta_v_APGR": float(np.log(1.16)),
         "sigma_prop": 0.1}


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("neonatal") / "pheno.toml"
    path.write_text(SPEC_TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spec(spec_path) -> PopulationSpec:
    return read_spec(spec_path)


def neonatal_frame(n: int, seed: int, *, truth: dict = TRUTH, growth: bool = True,
                   samples: int = 3) -> pd.DataFrame:
    """A NONMEM dataset as a neonatal study publishes it (hours, mg, mg/L; WGT and APGR on the
    dose rows, blanks on the sample rows, a weight gain recorded mid-course in some subjects),
    with concentrations from the one-compartment bolus closed form written out here."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sid = i + 1
        wgt = float(np.round(rng.uniform(0.5, 3.6), 1))
        apgr = int(rng.integers(1, 11))
        eta_cl, eta_v = rng.normal(0.0, [truth["omega_cl"], truth["omega_v"]])
        dose_h = np.array([0.0, *np.arange(12.0, 121.0, 12.0)])
        sample_h = np.sort(rng.choice(np.arange(1.0, 140.0, 1.0), samples, replace=False))
        gain_h = 60.5 if growth and i % 3 == 0 else None  # a weighing between doses
        events = [(t, "dose") for t in dose_h] + [(t, "sample") for t in sample_h]
        if gain_h is not None:
            events.append((gain_h, "weighing"))
        events.sort(key=lambda e: (e[0], e[1] != "dose"))
        for t, kind in events:
            w = wgt if gain_h is None or t < gain_h else wgt + 0.2
            row = {"ID": sid, "TIME": t, "AMT": 0.0, "WGT": "", "APGR": "", "DV": 0.0,
                   "EVID": 0, "MDV": 0}
            if kind == "dose":
                row |= {"AMT": round((15.0 if t == 0 else 2.5) * wgt, 3), "EVID": 1, "MDV": 1,
                        "WGT": w, "APGR": apgr}
            elif kind == "weighing":
                row |= {"EVID": 2, "MDV": 1, "WGT": w}
            else:  # observed with the covariates in force at the sample (LOCF)
                cl = truth["tv_cl"] / 24 * (w / 1.3) ** truth["theta_cl_WGT"] * np.exp(eta_cl)
                v = (truth["tv_v"] * (1 + truth["theta_v_WGT"] * (w - 1.3))
                     * np.exp(truth["theta_v_APGR"] * (apgr < 5)) * np.exp(eta_v))
                given = dose_h < t
                amounts = np.where(dose_h == 0, 15.0, 2.5)[given] * wgt
                conc = np.sum(amounts / v * np.exp(-cl / v * (t - dose_h[given])))
                row["DV"] = round(conc * (1 + truth["sigma_prop"] * rng.standard_normal()), 4)
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the design
def test_the_design_of_a_neonatal_dataset_is_the_hand_computation(spec):
    frame = neonatal_frame(12, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the note that WGT changes within subjects
        data = read_population_data(frame, spec)
    arrays = model_data(spec, data)
    # by hand: each subject's first-dose row; each sample's last given value above it (LOCF)
    first = frame[frame["EVID"] == 1].groupby("ID", sort=False).first()
    filled = frame.replace("", np.nan).groupby("ID")[["WGT", "APGR"]].ffill()
    samples = filled[frame["EVID"] == 0].astype(float)
    wgt, apgr = first["WGT"].astype(float).to_numpy(), first["APGR"].astype(float).to_numpy()
    np.testing.assert_allclose(arrays["x_cl_WGT"][:, 0], np.log(wgt / 1.3), rtol=1e-12)
    np.testing.assert_allclose(arrays["x_v_WGT"][:, 0], wgt - 1.3, rtol=1e-12)
    np.testing.assert_array_equal(arrays["x_v_APGR"][:, 0], (apgr < 5).astype(float))
    np.testing.assert_allclose(arrays["xo_cl_WGT"][:, 0], np.log(samples["WGT"] / 1.3),
                               rtol=1e-12)
    np.testing.assert_allclose(arrays["xo_v_WGT"][:, 0], samples["WGT"] - 1.3, rtol=1e-12)
    assert np.any(arrays["xo_cl_WGT"] != arrays["xb_cl_WGT"])  # the weight gains are seen
    # APGR does not change within a subject: no per-observation terms, the graph of a
    # dataset without changes (and its compiled model) stays as it was
    assert "xo_v_APGR" not in arrays and list(data.obs_covariates) == ["WGT"]
    # the individual parameters at each observation, by hand
    theta = {k: v for k, v in TRUTH.items() if k.startswith("theta")}
    eta = {"eta_cl": np.linspace(-0.2, 0.2, data.n_subjects), "eta_v": np.zeros(data.n_subjects)}
    log_p = individual_log_parameters(spec, arrays, theta | eta | {
        "log_tv_cl": np.log(0.147), "log_tv_v": np.log(1.25)})
    subject = data.obs_subject
    w_obs = samples["WGT"].to_numpy()
    cl = 0.147 * (w_obs / 1.3) ** 1.0 * np.exp(eta["eta_cl"][subject])
    v = 1.25 * (1 + TRUTH["theta_v_WGT"] * (w_obs - 1.3)) * np.where(
        samples["APGR"].to_numpy() < 5, 1.16, 1.0)
    np.testing.assert_allclose(np.exp(log_p["cl"][subject] + log_p["cl@obs"]), cl, rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_p["v"][subject] + log_p["v@obs"]), v, rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_p["cl"]), 0.147 * (wgt / 1.3) * np.exp(eta["eta_cl"]),
                               rtol=1e-12)


def test_the_reader_reads_declared_columns_as_they_come_and_labels_as_levels(tmp_path):
    frame = pd.DataFrame({
        "ID": [1, 1, 2, 2], "TIME": [0, 4, 0, 4], "AMT": [10, 0, 10, 0], "DV": [0, 3, 0, 2],
        "EVID": [1, 0, 1, 0], "wgt": [1.4, "", 0.8, ""], "Form": ["", "tablet", "", "syrup"],
        "CRCL": [12.0, 14.0, 9.5, 9.5]})
    registry = PopulationSpec(
        compartments=1, dosing="bolus", parameters={"cl": Parameter(1.0), "v": Parameter(1.0)},
        covariate_definitions=(
            Covariate.declared("WGT", unit="kg", range=(0.3, 6.0), missing="locf"),
            Covariate.declared("FORM", levels=("tablet", "syrup"), missing="nocb"),
            Covariate.declared("CRCL", unit="mL/min", range=(1.0, 200.0)))).covariate_registry
    data = read_nonmem(frame, covariates=registry)
    assert data["1"].covariates == {"WGT": 1.4, "FORM": 0.0, "CRCL": 12.0}
    assert data["2"].covariates == {"WGT": 0.8, "FORM": 1.0, "CRCL": 9.5}
    history = data["1"].covariate_history  # CRCL changes at TIME 4 (days: 4)
    assert history.varying() == ("CRCL",) and history.at([0, 4])["CRCL"].tolist() == [12, 14]
    # a categorical term names the levels by label; they are held as positions
    spec = PopulationSpec.from_dict({
        "model": {"compartments": 1, "dosing": "bolus"},
        "data": {"covariates": {"FORM": {"levels": ["tablet", "syrup"]}}},
        "parameters": {"cl": {"typical": 1.0}, "v": {"typical": 1.0}},
        "covariates": [{"parameter": "cl", "covariate": "FORM", "effect": "categorical",
                        "levels": ["syrup"], "reference": "tablet"}]})
    term = spec.covariates[0]
    assert term.levels == (1.0,) and term.reference == 0.0 and term.names == ("theta_cl_FORM_1",)
    assert PopulationSpec.from_dict(spec.to_dict()) == spec
    # the same in Python; a label the covariate does not have, or labels on numeric levels
    form = Covariate.declared("FORM", levels=("tablet", "syrup"))
    python = PopulationSpec(
        compartments=1, dosing="bolus", parameters={"cl": Parameter(1.0), "v": Parameter(1.0)},
        covariates=(CovariateTerm("cl", "FORM", "categorical", levels=("syrup",),
                                  reference="tablet"),), covariate_definitions=(form,))
    assert python == spec
    with pytest.raises(SpecificationError, match=r"'drops' is not a level of covariate FORM "
                                                 r"\(levels tablet, syrup\)"):
        PopulationSpec(compartments=1, dosing="bolus", parameters=python.parameters,
                       covariates=(CovariateTerm("cl", "FORM", "categorical",
                                                 levels=("drops",), reference="tablet"),),
                       covariate_definitions=(form,))
    with pytest.raises(SpecificationError, match="names levels by label, but APGR's levels"):
        PopulationSpec(compartments=1, dosing="bolus", parameters=python.parameters,
                       covariates=(CovariateTerm("cl", "APGR", "categorical", levels=("low",),
                                                 reference="high"),),
                       covariate_definitions=(Covariate.declared("APGR", levels=(1, 2, 3)),))


def test_the_library_covariates_need_no_declaration():
    """The infliximab models' WT, ALB, ATI/ADA, SEX/FEMALE, IMM are read as before."""
    data = read_nonmem(pd.DataFrame({
        "ID": [1, 1], "TIME": [0, 14], "AMT": [350, 0], "RATE": [4200, 0], "DV": [0, 20],
        "EVID": [1, 0], "WT": [70, ""], "ALB": [3.9, 4.1], "ADA": [0, 1], "SEX": ["F", "F"],
        "IMM": [1, 1]}))
    assert data["1"].covariates == {"weight_kg": 70.0, "albumin_g_dl": 3.9, "ati": 0.0,
                                    "female": 1.0, "immunomodulator": 1.0}


# ----------------------------------------------------------------------------- time-varying
def test_per_observation_parameters_against_solve_ivp_on_a_step_change_of_clearance():
    """The approximation of time-varying covariates in population fits: each observation uses
    the covariates in force at its time for every dose before it. Exact until the change, and
    exact after it where the rate constant does not change (CL and V both proportional to
    weight); after a step of clearance alone, it errs on the amount carried across the change
    (decayed at the new rate instead of the old one): largest at the change, shrinking while
    new doses (predicted exactly) add to the amount, constant once dosing stops (every part
    then decays at the same rate). Freezing the covariate at the first dose (what population
    fits did before) is better just after the change, far worse later."""
    spec = PopulationSpec(
        compartments=1, dosing="bolus",
        parameters={"cl": Parameter(1.0), "v": Parameter(10.0)},
        covariates=(CovariateTerm("cl", "CRCL", "power", reference=50.0, exponent=1.0),),
        covariate_definitions=(Covariate.declared("CRCL", unit="mL/min", range=(5, 200)),),
        time_unit="day")
    doses = np.arange(0.0, 10.0, 1.0)  # 100 mg daily; CRCL 50 -> 75 mL/min at day 5.5
    sample = np.array([0.5, 2.5, 4.5, 5.5, 6.25, 6.5, 7.5, 9.5, 12.0, 15.0, 20.0])
    rows = [{"ID": 1, "TIME": t, "AMT": 100.0, "DV": 0, "EVID": 1, "CRCL": 50.0 if t < 5.5
             else 75.0} for t in doses]
    rows += [{"ID": 1, "TIME": t, "AMT": 0, "DV": 1.0, "EVID": 0,
              "CRCL": 50.0 if t < 5.5 else 75.0} for t in sample]
    rows += [{"ID": 2, "TIME": 0, "AMT": 100.0, "DV": 0, "EVID": 1, "CRCL": 50.0},
             {"ID": 2, "TIME": 1, "AMT": 0, "DV": 1.0, "EVID": 0, "CRCL": 50.0}]
    frame = pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = read_population_data(frame, spec)
    arrays = model_data(spec, data)
    approx = predict(spec, arrays, individual_log_parameters(
        spec, arrays, {"log_tv_cl": 0.0, "log_tv_v": np.log(10.0)}))[:sample.size]

    def exact(times, v_after=10.0):
        def rhs(t, a):
            return [-(1.0 if t < 5.5 else 1.5) / (10.0 if t < 5.5 else v_after) * a[0]]
        out, amount = [], 0.0
        grid = sorted({*doses, 5.5, *times})
        for start, end in itertools.pairwise(grid):
            amount += 100.0 if start in doses else 0.0
            amount = solve_ivp(rhs, (start, end), [amount], rtol=1e-11, atol=1e-12).y[0, -1]
            if end in times:
                out.append(amount / (10.0 if end < 5.5 else v_after))
        return np.array(out)

    frozen = predict(spec, arrays, {k: v for k, v in individual_log_parameters(
        spec, arrays, {"log_tv_cl": 0.0, "log_tv_v": np.log(10.0)}).items()
        if not k.endswith("@obs")})[:sample.size]
    truth = exact(sample)
    error = np.abs(approx / truth - 1)
    before, after = sample < 5.5, sample > doses[-1]
    dosing = ~before & ~after
    assert np.all(error[before] < 1e-8)  # exact before the change
    # 50 % more clearance from day 5.5 on: 12.4 % at the change, 8.2 % two days later, 5.6 %
    # after the last dose
    assert 0.12 < error[sample == 5.5][0] < 0.13
    assert np.all(np.diff(error[~before]) < 1e-9)  # steps down at each dose, never up
    assert error[dosing][-1] < error[dosing][0] and 0.075 < error[sample == 7.5][0] < 0.09
    np.testing.assert_allclose(error[after], error[after][0], rtol=1e-6)
    assert 0.05 < error[after][0] < 0.06
    # freezing the covariate at the first dose is exact at the change and better for two days
    # (3-5 % against 10-12 %), then falls behind for good (15 % at day 9.5, 95 % at day 20)
    frozen_error = np.abs(frozen / truth - 1)
    assert np.all(frozen_error[sample >= 9.5] > 2.5 * error[sample >= 9.5])
    assert np.all(frozen_error[(sample > 5.5) & (sample < 7)] < error[(sample > 5.5)
                                                                      & (sample < 7)])
    # CL and V both proportional to the covariate: the rate constant does not change, and the
    # approximation is exact (the amount is continuous; C = A / V of the moment)
    both = PopulationSpec(
        compartments=1, dosing="bolus", parameters=spec.parameters,
        covariates=(*spec.covariates, CovariateTerm("v", "CRCL", "power", reference=50.0,
                                                    exponent=1.0)),
        covariate_definitions=spec.covariate_definitions, time_unit="day")
    arrays = model_data(both, data)
    approx = predict(both, arrays, individual_log_parameters(
        both, arrays, {"log_tv_cl": 0.0, "log_tv_v": np.log(10.0)}))[:sample.size]
    np.testing.assert_allclose(approx, exact(sample, v_after=15.0), rtol=1e-8)


# ----------------------------------------------------------------------------- refusals
def _spec_error(tmp_path, text: str) -> str:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecFileError) as info:
        read_spec(path)
    return str(info.value)


def test_a_term_on_an_undeclared_covariate_names_its_line_and_the_declaration(tmp_path):
    text = SPEC_TOML.replace('[data.covariates.APGR]\nlevels = [1, 2, 3, 4, 5, 6, 7, 8, 9, '
                             '10]\nmissing = "locf"\n', "")
    message = _spec_error(tmp_path, text)
    line = text.splitlines().index('covariate = "APGR"') + 1
    assert f"line {line}" in message and "unknown covariate 'APGR'" in message
    assert "[data.covariates.APGR]" in message and "levels" in message


@pytest.mark.parametrize(("old", "new", "expect"), [
    ("range = [0.3, 6.0]", "range = [6.0, 0.3]", "WGT needs a plausible range low < high"),
    ('missing = "locf"\n\n[data.covariates.APGR]', 'missing = "last"\n\n[data.covariates.APGR]',
     "missing must be one of error, locf, nocb"),
    ('unit = "kg"\n', 'unit = "kg"\nscale = 2\n', "unknown key 'scale'"),
    ("levels = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", 'levels = [1, "ten"]',
     "levels must be two or more distinct numbers, or two or more distinct labels"),
    ('effect = "indicator"\nbelow = 5', 'effect = "categorical"\nlevels = [11]\nreference = 1',
     "names level 11, which APGR does not have"),
    ('effect = "linear"\nreference = 1.3', 'effect = "piecewise"',
     "a piecewise effect of WGT needs its reference"),
])
def test_declaration_errors_name_their_line(tmp_path, old, new, expect):
    text = SPEC_TOML.replace(old, new, 1)
    assert text != SPEC_TOML
    message = _spec_error(tmp_path, text)
    assert expect in message and "line " in message, message


def _read_error(spec, frame) -> str:
    with pytest.raises(PKDataError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_population_data(frame, spec)
    return str(info.value)


def test_bad_covariate_values_name_row_column_value_and_fix(spec):
    frame = neonatal_frame(3, seed=2, growth=False)
    dose = frame.index[frame["EVID"] == 1]
    bad = frame.copy()
    bad.loc[dose[0], "WGT"] = 14.0  # grams slipped to kg? a weight of 14 kg is no neonate
    message = _read_error(spec, bad)
    assert "row index 0" in message and "'WGT'" in message and "WGT '14.0'" in message
    assert "outside the plausible range 0.3-6 kg" in message and "widen range" in message
    bad = frame.copy()
    bad.loc[dose[1], "APGR"] = 11
    message = _read_error(spec, bad)
    assert f"row index {dose[1]}" in message and "'APGR'" in message
    assert "is not a level of APGR (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)" in message
    assert "add it to levels in [data.covariates.APGR]" in message


def test_a_missing_value_names_subject_and_time_unless_a_rule_is_declared(spec):
    frame = neonatal_frame(3, seed=2, growth=False)
    strict = PopulationSpec.from_dict(
        spec.to_dict() | {"data": spec.to_dict()["data"] | {"covariates": {
            "WGT": {"unit": "kg", "range": [0.3, 6.0]},
            "APGR": {"levels": list(range(1, 11)), "missing": "locf"}}}})
    message = _read_error(strict, frame)
    first_sample = int(np.argmax(frame["EVID"] == 0))
    assert f"WGT is missing for ID '1' at TIME {frame['TIME'][first_sample]}" in message
    assert f"row index {first_sample}" in message and 'declare missing = "locf"' in message
    # LOCF has nothing to carry before a subject's first value; NOCB nothing after its last
    early = frame.copy()
    early.loc[0, "WGT"] = ""
    message = _read_error(spec, early)
    assert "WGT is missing for ID '1' at TIME 0.0 (no value above it" in message
    assert 'missing = "nocb"' in message
    nocb = PopulationSpec.from_dict(
        spec.to_dict() | {"data": spec.to_dict()["data"] | {"covariates": {
            "WGT": {"unit": "kg", "range": [0.3, 6.0], "missing": "nocb"},
            "APGR": {"levels": list(range(1, 11)), "missing": "locf"}}}})
    message = _read_error(nocb, frame)
    assert "(no value below it in this subject)" in message
    blank = frame.copy()
    blank.loc[blank["ID"] == 2, "WGT"] = ""
    message = _read_error(spec, blank)
    assert "WGT is missing on every row of ID '2'" in message


def test_an_effect_the_data_cannot_inform_is_refused(spec):
    frame = neonatal_frame(6, seed=2, growth=False)
    frame.loc[frame["APGR"] != "", "APGR"] = 7  # nobody below 5
    with pytest.raises(SpecificationError, match="all on one side of the threshold"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_population_data(frame, spec)
    hockey = PopulationSpec.from_dict(spec.to_dict() | {"covariates": [
        {"parameter": "cl", "covariate": "WGT", "effect": "piecewise", "reference": 5.0}]})
    with pytest.raises(SpecificationError, match="no WGT value is above its breakpoint 5"):
        read_population_data(neonatal_frame(6, seed=2, growth=False), hockey)


# ----------------------------------------------------------------------------- the fit
def test_a_fit_keeps_its_declared_covariates_as_a_model_and_in_its_file(spec, tmp_path):
    """A fit's posterior (here draws around the truth, not sampled: recovery by NUTS is
    ``benchmarks/neonatal_covariates.py``) gives a library model that knows WGT and APGR, and
    its file keeps the declarations and each observation's covariates."""
    import xarray as xr

    from pkmodel.pk.population import PopulationFit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = read_population_data(neonatal_frame(8, seed=5), spec)
    rng = np.random.default_rng(0)
    shape = (2, 100)
    posterior = {k: (("chain", "draw"), v * np.exp(0.01 * rng.standard_normal(shape)))
                 for k, v in TRUTH.items()}
    posterior |= {f"log_tv_{p}": (("chain", "draw"), np.log(posterior[f"tv_{p}"][1]))
                  for p in ("cl", "v")}
    posterior["ratio_v_APGR"] = (("chain", "draw"), np.exp(posterior["theta_v_APGR"][1]))
    posterior |= {f"eta_{p}": (("chain", "draw", "subject"),
                               0.1 * rng.standard_normal((*shape, data.n_subjects)))
                  for p in ("cl", "v")}
    stats = {"diverging": (("chain", "draw"), np.zeros(shape, bool)),
             "energy": (("chain", "draw"), rng.standard_normal(shape))}
    tree = xr.DataTree.from_dict({
        "/posterior": xr.Dataset(posterior, coords={"subject": list(data.subject_ids)}),
        "/sample_stats": xr.Dataset(stats)})
    fit = PopulationFit(spec=spec, data=data, tree=tree, random_seed=1, warn=False)
    units = fit.reported_variables()
    assert units["theta_cl_WGT"] == "exponent of WGT / 1.3"
    assert units["theta_v_WGT"] == "per kg from 1.3" and units["ratio_v_APGR"] == (
        "ratio to APGR >= 5")
    model = fit.to_population_model()
    assert [c.name for c in model.covariate_definitions] == ["APGR", "WGT"]
    med = {k: float(np.median(fit.posterior[k].values)) for k in TRUTH}
    p = model.individual_parameters({"WGT": 2.6, "APGR": 3})
    np.testing.assert_allclose(p.v, med["tv_v"] * (1 + med["theta_v_WGT"] * 1.3)
                               * np.exp(med["theta_v_APGR"]), rtol=1e-12)
    with pytest.raises(SpecificationError, match="WGT = 9 kg is outside the plausible range"):
        model.individual_parameters({"WGT": 9.0})
    from pkmodel.pk import PopulationModel

    assert PopulationModel.from_dict(model.to_dict()) == model
    fit.save(tmp_path / "neo.nc")
    loaded = load_population_fit(tmp_path / "neo.nc", warn=False)
    assert loaded.spec == spec
    np.testing.assert_array_equal(loaded.data.at_observations("WGT"),
                                  data.at_observations("WGT"))
    assert "WGT" in loaded.data.obs_covariates  # the weight gains, kept per observation


def test_a_model_of_declared_covariates_is_refused_where_cohorts_supply_them(spec):
    """Scenarios and the exposure-driven model draw the library's covariates from cohorts and
    virtual populations: a fitted neonatal model's WGT is refused by name, not silently set to
    its reference."""
    from types import SimpleNamespace

    from pkmodel.pk import PopulationModel
    from pkmodel.response.exposure import exposure_inputs
    from pkmodel.scenarios.exposure import needed_columns

    model = PopulationModel(
        name="neonatal", title="", citation="", source="", structure=spec.structure,
        typical={"cl": 0.147, "v": 1.25}, reference_covariates={"WGT": 1.3},
        effects=(spec.covariates[0].with_coefficient(0.75),), omega2={},
        proportional_sd=0.1, additive_sd_ug_ml=0.0,
        covariate_definitions=spec.covariate_definitions)
    with pytest.raises(SpecificationError, match="uses WGT, which the virtual populations"):
        needed_columns([model])
    patients = pd.DataFrame({"dose_mg_kg": [5.0], "interval_weeks": [8.0], "WGT": [1.2]})
    with pytest.raises(SpecificationError, match="uses WGT, which a cohort does not hold"):
        exposure_inputs(patients, np.zeros(1), np.zeros(1),
                        SimpleNamespace(model=model, baseline=None, assume={}), "<cohort>")


def test_a_categorical_covariate_without_declared_levels_takes_the_terms_levels():
    """``kind = "categorical"``: numbers, any of them read; the term names the levels it
    estimates, and a subject with another is refused by ID, column and fix."""
    spec = PopulationSpec.from_dict({
        "model": {"compartments": 1, "dosing": "bolus"},
        "data": {"covariates": {"STUDY": {"kind": "categorical"}}},
        "parameters": {"cl": {"typical": 1.0, "bsv": True}, "v": {"typical": 10.0}},
        "covariates": [{"parameter": "cl", "covariate": "STUDY", "effect": "categorical",
                        "reference": 101, "levels": [102, 103]}]})
    rows = [{"ID": i, "TIME": t, "AMT": 100.0 if t == 0 else 0, "DV": 0 if t == 0 else 2.0,
             "EVID": int(t == 0), "STUDY": 101 + i % 3} for i in range(1, 7) for t in (0, 1)]
    data = read_population_data(pd.DataFrame(rows), spec)
    arrays = model_data(spec, data)
    study = 101 + np.arange(1, 7) % 3
    np.testing.assert_array_equal(arrays["x_cl_STUDY"], np.stack([study == 102, study == 103],
                                                                 axis=-1))
    rows[-1]["STUDY"] = rows[-2]["STUDY"] = 104
    with pytest.raises(PKDataError, match=r"ID '6' has STUDY 104, a level the categorical "
                                          r"effect of STUDY on cl does not have"):
        read_population_data(pd.DataFrame(rows), spec)
