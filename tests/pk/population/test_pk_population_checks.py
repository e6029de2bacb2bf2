"""The dataset's units end to end, and the checks of a population fit before and after sampling:
unit slips named with their factor, all-BLQ data refused, parameters the design cannot inform
named (none of these needs NUTS)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkmodel
from pkmodel.diagnostics import Diagnostics
from pkmodel.errors import PKDataError, PkmodelWarning, SpecificationError
from pkmodel.pk.population import (
    Parameter,
    PopulationSpec,
    read_population_data,
    read_spec,
    simulate_dataset,
)
from pkmodel.pk.population.fitting import check_before_sampling
from pkmodel.pk.population.identifiability import design_information
from pkmodel.pk.population.loading import _with_units
from pkmodel.pk.population.spec import ResidualError
from pkmodel.pk.population.unit_slips import check_dataset
from pkmodel.pk.units import from_internal, parse_parameter_unit, to_internal

THEOPH = pkmodel.theophylline()
SAVED = str(Path(__file__).resolve().parents[2] / "saved_fits" / "population_0.4.nc")
INFLIXIMAB = PopulationSpec(parameters={"cl": Parameter(0.4, bsv=True),
                                        "v1": Parameter(3.3, bsv=True),
                                        "q": Parameter(7.0), "v2": Parameter(4.0)},
                            residual=ResidualError("proportional"))
TRUTH = {"tv_cl": 0.407, "tv_v1": 3.29, "tv_q": 7.14, "tv_v2": 4.13, "omega_cl": 0.35,
         "omega_v1": 0.2, "sigma_prop": 0.15}
DESIGNS = {  # (dose days, sample days)
    "rich": ([0], [0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3, 7, 14, 28]),
    "troughs": ([0, 14, 42, 98], [13.9, 41.9, 97.9, 153.9]),
}


def _simulated(design: str) -> pd.DataFrame:
    doses, samples = DESIGNS[design]
    return simulate_dataset(INFLIXIMAB, TRUTH, n_subjects=40, dose_times_days=doses,
                            sample_times_days=samples, dose_mg_kg=5, random_seed=1).frame


def _theoph() -> pd.DataFrame:
    return pd.read_csv(THEOPH.dataset, na_values=".")


def _slip(frame: pd.DataFrame, spec: PopulationSpec):
    data = read_population_data(frame, spec)
    return check_dataset(spec, data, design_information(spec, data).informed)


# ----------------------------------------------------------------------------- units
def test_the_units_table_converts_each_kind():
    assert to_internal(2.0, "volume/time", "hour") == pytest.approx(48.0)
    assert from_internal(48.0, "1/time", "hour") == pytest.approx(2.0)
    assert from_internal(1.0, "volume/time", "week") == pytest.approx(7.0)
    assert from_internal(35.0, "volume", "hour") == 35.0
    assert parse_parameter_unit("L/h") == ("volume/time", "hour")
    with pytest.raises(SpecificationError, match="unit 'mL/min' is not known"):
        parse_parameter_unit("mL/min")


def test_typical_values_are_stated_in_the_dataset_time_unit():
    spec = read_spec(THEOPH.spec)  # TIME in hours: CL 2 L/hour, ka 1/hour, no unit written
    assert spec.parameters["cl"].unit == "L/hour" and spec.parameters["ka"].unit == "1/hour"
    assert spec.typical_per_day("cl") == pytest.approx(48.0)
    assert spec.typical_per_day("ka") == pytest.approx(24.0)
    assert spec.typical_per_day("v") == 35.0
    assert spec.unit("cl") == "L/hour" and spec.drug == "theophylline"
    assert PopulationSpec.from_dict(spec.to_dict()) == spec
    # a unit named in the specification wins over the dataset's
    other = dataclasses.replace(spec, parameters=dict(spec.parameters) | {
        "cl": Parameter(48.0, bsv=True, omega_prior=1.0, unit="L/day")})
    assert other.typical_per_day("cl") == pytest.approx(48.0) and other.unit("cl") == "L/hour"
    with pytest.raises(SpecificationError, match="parameter v is a volume, not in 'L/hour'"):
        dataclasses.replace(spec, parameters=dict(spec.parameters) | {
            "v": Parameter(35.0, unit="L/hour")})


def test_a_dataset_in_ng_ml_and_ug_declared_as_such_is_the_same_data():
    spec, frame = read_spec(THEOPH.spec), _theoph()
    plain = read_population_data(frame, spec)
    scaled = frame.assign(DV=frame["DV"] * 1000, AMT=frame["AMT"] * 1000)
    declared = dataclasses.replace(spec, concentration_unit="ng/mL", amount_unit="µg")
    data = read_population_data(scaled, declared)
    np.testing.assert_allclose(data.obs_value_ug_ml, plain.obs_value_ug_ml, rtol=1e-12)
    np.testing.assert_allclose(data.dose_amount_mg, plain.dose_amount_mg, rtol=1e-12)
    assert check_dataset(declared, data) is None
    # both x1000 and undeclared: µg over ng/mL is L again, nothing slipped; DV alone slips
    assert _slip(scaled, spec) is None
    assert _slip(frame.assign(DV=frame["DV"] * 1000), spec).name == "DV in ng/mL"
    found = _slip(frame.assign(DV=frame["DV"] * 1000, AMT=frame["AMT"] * 1000), dataclasses.replace(
        spec, amount_unit="µg"))
    assert found.name == "DV 1000 times too large" and "DV must be in mg/L" in found.fix


def test_a_saved_fit_of_0_4_keeps_its_per_day_priors():
    raw = {"data": {"time_unit": "hour"}, "parameters": {"cl": {"typical": 48.0},
                                                         "v": {"typical": 35.0, "unit": "L"}}}
    assert _with_units(raw)["parameters"]["cl"]["unit"] == "L/day"


def test_the_summary_is_in_the_dataset_units():
    fit = pkmodel.load(SAVED, warn=False)
    day = fit.summary().set_index("parameter")
    assert day.loc["tv_cl", "unit"] == "L/day"
    hourly = dataclasses.replace(fit, spec=dataclasses.replace(fit.spec, time_unit="hour"),
                                 _diagnostics=None)
    hour = hourly.summary().set_index("parameter")
    assert hour.loc["tv_cl", "unit"] == "L/hour" and hour.loc["tv_v1", "unit"] == "L"
    assert hour.loc["tv_cl", "median"] == pytest.approx(day.loc["tv_cl", "median"] / 24)
    assert hour.loc["tv_v1", "median"] == pytest.approx(day.loc["tv_v1", "median"])
    assert hour.loc["tv_cl", "r_hat"] == pytest.approx(day.loc["tv_cl", "r_hat"])


# ----------------------------------------------------------------------------- unit slips
def test_correct_data_are_not_flagged():
    assert _slip(_theoph(), read_spec(THEOPH.spec)) is None
    for design in DESIGNS:
        assert _slip(_simulated(design), INFLIXIMAB) is None


@pytest.mark.parametrize(("slip", "name", "factor"), [
    ("dv", "DV in ng/mL", 1e-3), ("amt", "AMT in µg", 1e3), ("time", "TIME in hours", 1 / 24)])
def test_each_slip_is_named_with_its_factor_on_the_theophylline_data(slip, name, factor):
    spec, frame = read_spec(THEOPH.spec), _theoph()
    if slip == "dv":
        frame["DV"] *= 1000
    elif slip == "amt":
        frame["AMT"] *= 1000
    else:  # TIME in hours, the specification says days
        spec = dataclasses.replace(spec, time_unit="day")
    found = _slip(frame, spec)
    assert found is not None and found.name == name and found.factor == pytest.approx(factor)
    assert "implausible" in found.message and found.fix in found.message


def test_hours_read_as_days_are_named_from_troughs_alone():
    frame = _simulated("troughs")
    frame["TIME"] *= 24
    frame["RATE"] /= 24
    found = _slip(frame, INFLIXIMAB)
    assert found.name == "TIME in hours" and 'time_unit = "hour"' in found.fix


def test_strict_refuses_a_slip_before_sampling_and_all_blq_is_refused():
    spec, frame = read_spec(THEOPH.spec), _theoph()
    frame["DV"] *= 1000
    data = read_population_data(frame, spec)
    with pytest.raises(PKDataError, match=r"column 'DV'.*DV in ng/mL.*Fix: DV looks like ng/mL: "
                       r"set concentration_unit = \"ng/mL\""):
        check_before_sampling(spec, data, strict=True)
    with pytest.warns(PkmodelWarning, match="DV in ng/mL"):
        notes = check_before_sampling(spec, data)
    assert notes[0].startswith("the pooled estimates before sampling are implausible")
    blq = dataclasses.replace(spec, lloq_ug_ml=1e6)
    with pytest.raises(PKDataError, match=r"all 132 observations are below the LLOQ"):
        pkmodel.pk.population.fit_population(_theoph(), blq)


# ----------------------------------------------------------------------------- identifiability
def test_troughs_only_leave_q_and_v2_to_their_prior_and_a_rich_design_does_not():
    rich = design_information(INFLIXIMAB, read_population_data(_simulated("rich"), INFLIXIMAB))
    assert rich.weak == () and max(rich.ratio(p) for p in rich.prior_sd) < 0.2
    data = read_population_data(_simulated("troughs"), INFLIXIMAB)
    troughs = design_information(INFLIXIMAB, data)
    assert {"q", "v2"} <= set(troughs.weak) and "cl" not in troughs.weak
    assert troughs.ratio("q") > 0.9 and troughs.ratio("cl") < 0.2
    lo, hi = troughs.informative_window["q"]  # the distribution phase, not the troughs
    assert 0 < lo < hi < 2
    message = next(m for m in troughs.messages(INFLIXIMAB) if m.startswith("Q "))
    assert "fixed = true in [parameters.q]" in message and "[prior]" in message
    assert "days after a dose" in message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PkmodelWarning)
        assert any(n.startswith("Q is hardly informed") for n in
                   check_before_sampling(INFLIXIMAB, data))


def test_a_gate_failing_on_a_weak_parameter_says_so_instead_of_run_longer():
    gate = Diagnostics(max_rhat=1.08, min_ess_bulk=90, min_ess_tail=120, divergences=0,
                       n_draws=2000, worst_parameter="tv_q", converged=False, n_chains=4,
                       worst_ess_parameter="eta_v1[3]")
    assert any("run longer" in p for p in gate.problems())
    weak = dataclasses.replace(gate, weakly_identified=("tv_q", "eta_q", "eta_v1"))
    text = " ".join(weak.problems())
    assert "run longer" not in text and "increase draws" not in text
    assert "tv_q is weakly identified" in text and "eta_v1 is weakly identified" in text


def test_outputs_name_no_other_drug_and_use_the_dataset_units():
    """A fit of an hour dataset in mg/L (the saved 0.4 fit relabelled): its report, figures and
    JSON say hours, L/hour and mg/L, and never a drug it was not given."""
    from pkmodel.plots.population import plot_goodness_of_fit, plot_pc_vpc
    from pkmodel.report import render_population_report

    fit = pkmodel.load(SAVED, warn=False)
    spec = dataclasses.replace(fit.spec, time_unit="hour", concentration_unit="mg/L",
                               drug="theophylline")
    fit = dataclasses.replace(fit, spec=spec, _diagnostics=None)
    text = render_population_report(fit, n_replicates=20)
    assert "infliximab" not in text.lower() and "L/day" not in text
    assert "L/hour" in text and " hours</td>" in text
    labels = [ax.get_xlabel() + "|" + ax.get_ylabel()
              for ax in plot_goodness_of_fit(fit).axes + plot_pc_vpc(fit, n_replicates=20).axes]
    assert any("time (hours)" in label for label in labels)
    assert any("theophylline concentration (mg/L)" in label for label in labels)
    assert not any("µg/mL" in label or "day" in label for label in labels)
    assert "infliximab" not in json.dumps(fit.to_dict()).lower()


def test_pk_fit_strict_refuses_a_slipped_dataset_before_sampling_and_writes_nothing(
        tmp_path, capsys):
    from pkmodel.cli.main import main

    path = tmp_path / "theoph_ng.csv"
    _theoph().assign(DV=lambda f: f["DV"] * 1000).to_csv(path, index=False, na_rep=".")
    out = tmp_path / "fit.nc"
    code = main(["pk", "fit", str(path), "--spec", str(THEOPH.spec), "-o", str(out),
                 "--strict"])
    err = capsys.readouterr().err
    assert code == 2 and "DV in ng/mL" in err and 'concentration_unit = "ng/mL"' in err
    assert "Traceback" not in err and not out.exists()
