"""Structural models as objects (pkmodel.pk.structures): one, two and three compartments, each
dosing route, against an independent ODE solution (scipy's LSODA on the compartment equations,
written here); the three-compartment structure through a population specification, a simulated
dataset, the PyMC model and the published-model vocabulary."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from pkmodel.errors import SpecificationError
from pkmodel.pk import (
    DoseSchedule,
    LinearCompartmental,
    PKParameters,
    PopulationModel,
    Structure,
    concentrations,
    simulate,
    steady_state_trough,
    steady_state_troughs,
)
from pkmodel.pk.population import Parameter, PopulationData, PopulationSpec, simulate_dataset
from pkmodel.pk.population.build import build_model, model_data
from pkmodel.pk.population.equations import individual_log_parameters, predict
from pkmodel.pk.structures import DOSING, LINEAR_STRUCTURES

# Parameters of each number of compartments (L/day, L, 1/day): distinct, well separated rates.
VALUES = {1: {"cl": 0.4, "v": 3.0},
          2: {"cl": 0.4, "v1": 3.0, "q": 0.8, "v2": 2.5},
          3: {"cl": 0.4, "v1": 3.0, "q2": 2.0, "v2": 1.5, "q3": 0.15, "v3": 4.0}}
KA = 1.3
# several doses of different amounts and durations, observed during and after them
DOSES = [(0.0, 350.0, 2 / 24), (14.0, 400.0, 0.5), (42.0, 700.0, 3 / 24)]
TIMES = [0.05, 1.0, 13.99, 14.0, 14.2, 20.0, 42.0 + 1 / 24, 56.0, 97.9]


def ode(compartments: int, dosing: str, p: dict, doses, times) -> np.ndarray:
    """Central concentration by LSODA on the mammillary model's amounts (depot, central,
    peripherals), integrated piecewise between the dose events."""
    v1 = p["v" if compartments == 1 else "v1"]
    pairs = {1: [], 2: [("q", "v2")], 3: [("q2", "v2"), ("q3", "v3")]}[compartments]
    ka = p.get("ka", 0.0)

    def rhs(t, a, rate):
        depot, central, *peripheral = a
        d_central = rate + ka * depot - p["cl"] / v1 * central
        d_peripheral = []
        for (q, v), amount in zip(pairs, peripheral, strict=True):
            flow = p[q] / v1 * central - p[q] / p[v] * amount
            d_central -= flow
            d_peripheral.append(flow)
        return [-ka * depot, d_central, *d_peripheral]

    events = sorted({0.0, *[t for t, _, _ in doses], *[t + d for t, _, d in doses], *times})
    state = np.zeros(2 + len(pairs))
    out = {}
    for start, end in itertools.pairwise(events):
        for t, amount, _ in doses:
            if t == start and dosing == "bolus":
                state[1] += amount
            if t == start and dosing == "oral":
                state[0] += amount
        out[start] = state[1] / v1  # after a bolus at start: counted, as the closed form does
        rate = sum(a / d for t, a, d in doses if dosing == "infusion" and t <= start < t + d)
        sol = solve_ivp(rhs, (start, end), state, method="LSODA", rtol=1e-11, atol=1e-12,
                        args=(rate,))
        state = sol.y[:, -1]
        out[end] = state[1] / v1
    return np.array([out[t] for t in times])


def parameters(compartments: int, dosing: str) -> dict:
    return VALUES[compartments] | ({"ka": KA} if dosing == "oral" else {})


def closed_form(structure, p, doses, times, route=None) -> np.ndarray:
    t = np.asarray(times)
    return sum(structure.response(p, amount, t - start, duration, route=route)
               for start, amount, duration in doses)


@pytest.mark.parametrize(("compartments", "dosing"),
                         list(itertools.product((1, 2, 3), DOSING)))
def test_every_structure_and_route_equals_the_ode_solution(compartments, dosing):
    structure = LinearCompartmental(compartments, dosing)
    p = parameters(compartments, dosing)
    assert structure.parameter_names == tuple(p)
    np.testing.assert_allclose(closed_form(structure, p, DOSES, TIMES),
                               ode(compartments, dosing, p, DOSES, TIMES), rtol=1e-6)


@pytest.mark.parametrize("compartments", [1, 2, 3])
def test_an_iv_route_named_by_the_dose_is_given_to_any_structure(compartments):
    # an infusion regimen given to a model fitted on boluses or oral doses: its disposition
    oral = LinearCompartmental(compartments, "oral")
    p = parameters(compartments, "oral")
    np.testing.assert_allclose(closed_form(oral, p, DOSES, TIMES, route="infusion"),
                               ode(compartments, "infusion", p, DOSES, TIMES), rtol=1e-6)
    with pytest.raises(SpecificationError, match="takes doses as an IV bolus or an infusion, "
                                                 "not 'oral'"):
        LinearCompartmental(compartments, "bolus").response(VALUES[compartments], 1.0, 1.0,
                                                            1.0, route="oral")


def test_the_three_compartment_exponentials_are_the_rate_matrix_eigenvalues():
    rng = np.random.default_rng(0)
    structure = LinearCompartmental(3)
    for _ in range(200):  # rates spread over four orders of magnitude
        p = dict(zip(structure.parameter_names, np.exp(rng.uniform(-4, 4, 6)), strict=True))
        k10, k12, k13 = p["cl"] / p["v1"], p["q2"] / p["v1"], p["q3"] / p["v1"]
        k21, k31 = p["q2"] / p["v2"], p["q3"] / p["v3"]
        rates = -np.array([[-(k10 + k12 + k13), k21, k31], [k12, -k21, 0], [k13, 0, -k31]])
        exact = np.sort(np.linalg.eigvals(rates).real)[::-1]
        terms = structure.impulse_response(p)
        np.testing.assert_allclose([lam for _, lam in terms], exact, rtol=1e-8)
        # a unit bolus: C(0) = 1 / V1, and the AUC is 1 / CL
        c = np.array([c for c, _ in terms])
        lam = np.array([lam for _, lam in terms])
        assert c.sum() == pytest.approx(1 / p["v1"], rel=1e-8)
        assert (c / lam).sum() == pytest.approx(1 / p["cl"], rel=1e-7)


@pytest.mark.parametrize("structure", LINEAR_STRUCTURES, ids=lambda s: s.label())
def test_the_steady_state_trough_is_the_limit_of_a_long_course(structure):
    p = parameters(structure.compartments, structure.dosing)
    tau, duration, dose = 14.0, 0.25, 300.0
    doses = [(k * tau, dose, duration) for k in range(400)]
    long_course = closed_form(structure, p, doses, [400 * tau])
    np.testing.assert_allclose(structure.steady_state_trough(p, dose, tau, duration),
                               long_course, rtol=1e-9)


@pytest.mark.parametrize("dosing", DOSING)
def test_the_pytensor_graph_of_three_compartments_is_numpys(dosing):
    import pytensor.tensor as pt

    structure = LinearCompartmental(3, dosing)
    p = parameters(3, dosing)
    elapsed = np.array([0.0, 0.01, 0.5, 3.0, 40.0])
    symbolic = {k: pt.as_tensor_variable(np.full(5, v)) for k, v in p.items()}
    for name, got in (("response", structure.response(symbolic, 100.0, elapsed, 0.2, xp=pt)),
                      ("trough", structure.steady_state_trough(symbolic, 100.0, 7.0, 0.2,
                                                               xp=pt))):
        expected = (structure.response(p, 100.0, elapsed, 0.2) if name == "response"
                    else structure.steady_state_trough(p, 100.0, 7.0, 0.2))
        np.testing.assert_allclose(got.eval(), expected, rtol=1e-10, err_msg=name)


def test_a_structure_is_the_protocol_and_names_its_parameters_and_units():
    for structure in LINEAR_STRUCTURES:
        assert isinstance(structure, Structure) and structure.superposition
        assert LinearCompartmental(**structure.to_dict()) == structure
    three = LinearCompartmental(3, "oral")
    assert three.units() == {"cl": "L/day", "v1": "L", "q2": "L/day", "v2": "L",
                             "q3": "L/day", "v3": "L", "ka": "1/day"}
    assert three.unit("q3", time_unit="hour") == "L/hour"
    assert LinearCompartmental(1, "bolus").instantaneous
    assert LinearCompartmental(2).infusions and not LinearCompartmental(2, "oral").infusions
    for bad, match in (((4,), "compartments must be 1, 2 or 3, not 4"),
                       ((True,), "compartments must be 1, 2 or 3"),
                       ((2, "sc"), "dosing must be one of bolus, infusion, oral, not 'sc'")):
        with pytest.raises(SpecificationError, match=match):
            LinearCompartmental(*bad)
    with pytest.raises(SpecificationError, match="2-compartment IV models only"):
        three.propagator(parameters(3, "oral"), 1.0)


def test_pk_parameters_carry_their_structure():
    two = PKParameters(0.407, 3.29, 7.14, 4.13)  # positionally: the published models' order
    assert two.structure == LinearCompartmental(2) and float(two.q) == 7.14
    three = PKParameters(structure=LinearCompartmental(3), **VALUES[3])
    assert three.names == ("cl", "v1", "q2", "v2", "q3", "v3") and three["v3"] == 4.0
    # terminal half-life: log 2 over the slowest exponential
    slowest = LinearCompartmental(3).impulse_response(VALUES[3])[-1][1]
    assert float(three.half_life_days()) == pytest.approx(np.log(2) / slowest)
    with pytest.raises(SpecificationError, match="has the parameters cl, v1, q2, v2, q3, v3"):
        PKParameters(structure=LinearCompartmental(3), cl=1.0, v1=1.0)
    with pytest.raises(AttributeError):
        two.cl = 1.0


# ----------------------------------------------------------------------------- three compartments
THREE = dict(zip(("cl", "v1", "q2", "v2", "q3", "v3"), (0.3, 3.0, 1.5, 1.2, 0.1, 3.5),
                 strict=True))
THREE_TOML = """\
[model]
compartments = 3
dosing = "infusion"

[parameters.cl]
typical = 0.3
bsv = true

[parameters.v1]
typical = 3.0
bsv = true

[parameters.q2]
typical = 1.5
prior_log_sd = 0.3

[parameters.v2]
typical = 1.2
prior_log_sd = 0.3

[parameters.q3]
typical = 0.1
prior_log_sd = 0.3

[parameters.v3]
typical = 3.5
unit = "L"
prior_log_sd = 0.3

[residual]
error = "proportional"
"""


@pytest.fixture(scope="module")
def three_spec(tmp_path_factory):
    from pkmodel.pk.population import read_spec

    path = tmp_path_factory.mktemp("three") / "model.toml"
    path.write_text(THREE_TOML, encoding="utf-8")
    return read_spec(path)


def test_a_three_compartment_specification_predicts_the_ode_solution(three_spec):
    assert three_spec.structure == LinearCompartmental(3, "infusion")
    assert three_spec.parameter_names == ("cl", "v1", "q2", "v2", "q3", "v3")
    assert three_spec.structure_label() == "3-compartment, zero-order infusion"
    assert PopulationSpec.from_dict(three_spec.to_dict()) == three_spec
    data = PopulationData("<test>", ("1",), {}, np.zeros(len(TIMES), int), np.array(TIMES),
                          np.ones(len(TIMES)), np.zeros(len(TIMES), int), np.zeros(3, int),
                          np.array([d[0] for d in DOSES]), np.array([d[1] for d in DOSES]),
                          np.array([d[2] for d in DOSES]))
    arrays = model_data(three_spec, data)
    values = {f"log_tv_{k}": np.log(v) for k, v in THREE.items()}
    values |= {"eta_cl": 0.0, "eta_v1": 0.0}
    pred = predict(three_spec, arrays, individual_log_parameters(three_spec, arrays, values))
    np.testing.assert_allclose(pred, ode(3, "infusion", THREE, DOSES, TIMES), rtol=1e-6)
    with pytest.raises(SpecificationError, match=r"a 3-compartment infusion model has the "
                                                 r"parameters cl, v1, q2, v2, q3, v3; missing: "
                                                 r"q3, v3; not in this structure: q"):
        PopulationSpec(compartments=3, parameters={p: Parameter(1.0) for p in
                                                   ("cl", "v1", "q", "q2", "v2")})


def test_a_three_compartment_dataset_its_pymc_model_and_its_library_model(three_spec):
    truth = {f"tv_{k}": v for k, v in THREE.items()} | {"omega_cl": 0.3, "omega_v1": 0.2,
                                                         "sigma_prop": 0.1}
    sim = simulate_dataset(three_spec, truth, n_subjects=6, dose_times_days=[0, 14],
                           sample_times_days=[0.1, 1, 3, 13.9, 21], dose_mg=400,
                           random_seed=1)
    assert "RATE" in sim.frame and sim.frame["DV"].notna().sum() == 30
    from pkmodel.pk.population import read_population_data

    model = build_model(three_spec, read_population_data(sim.frame, three_spec))
    assert {"log_tv_q3", "log_tv_v3", "u_cl", "u_v1"} <= {v.name for v in model.free_RVs}
    # the same structure as a library model: simulation and steady state against the ODE
    library = PopulationModel(
        name="three", title="three compartments", citation="test", source="test",
        structure=LinearCompartmental(3), typical=THREE, reference_covariates={},
        effects=(), omega2={"cl": 0.09}, proportional_sd=0.1, additive_sd_ug_ml=0.0)
    assert PopulationModel.from_dict(library.to_dict()) == library
    schedule = DoseSchedule.from_regimen("5mg/kg q8w", until_week=30)
    ds = simulate(library, schedule, {"weight_kg": 70.0}, times_days=TIMES)
    doses = [(t, a * 70.0, d) for t, a, d in zip(schedule.times_days, schedule.amounts,
                                                  schedule.durations_days, strict=True)]
    np.testing.assert_allclose(ds.concentration.values[0, 0], ode(3, "infusion", THREE, doses,
                                                                   TIMES), rtol=1e-6)
    assert set(ds.data_vars) >= {"cl", "q2", "v3"} and ds["q3"].attrs["units"] == "L/day"
    params = library.individual_parameters()
    assert float(steady_state_troughs(library, ["5mg/kg q8w"], {"weight_kg": 70.0}).squeeze()) == \
        pytest.approx(float(steady_state_trough(params, 350.0, 56.0, 2 / 24)), rel=1e-12)
    long = DoseSchedule.maintenance("5mg/kg q8w", start_day=0.0, n_doses=80)
    assert float(concentrations(params, long, [80 * 56.0], 70.0)[0]) == pytest.approx(
        float(steady_state_trough(params, 350.0, 56.0, 2 / 24)), rel=1e-8)
    # an individual estimate and a forecast with it: a patient clearing 60 % faster
    from pkmodel.pk import Observations, estimate_individual, forecast_troughs

    fast = library.individual_parameters(eta=np.array([np.log(1.6)]))
    days = np.array([98.0, 154.0, 210.0])
    observed = concentrations(fast, schedule, days, 70.0)
    est = estimate_individual(library, {"weight_kg": 70.0}, schedule,
                              Observations(days, observed), random_seed=1)
    assert est.map_parameters()["cl"] == pytest.approx(1.6 * THREE["cl"], rel=0.05)
    assert set(est.parameters().data_vars) == set(THREE)
    forecast = forecast_troughs(est, ["5mg/kg q8w"]).draws.median("draw")
    assert float(forecast.squeeze()) == pytest.approx(float(steady_state_trough(
        fast, 350.0, 56.0, 2 / 24)), rel=0.1)


@pytest.mark.slow
def test_a_three_compartment_model_is_fitted_and_its_parameters_recovered(three_spec):
    """One fit (about 2 minutes on 2 cores, most of it compiling): 30 subjects sampled richly
    over two doses. The central parameters are well informed; the peripheral ones less so."""
    import warnings

    from pkmodel.pk.population import fit_population

    truth = {f"tv_{k}": v for k, v in THREE.items()} | {"omega_cl": 0.3, "omega_v1": 0.2,
                                                         "sigma_prop": 0.1}
    sim = simulate_dataset(three_spec, truth, n_subjects=30, dose_times_days=[0, 14],
                           sample_times_days=[0.05, 0.3, 1, 3, 7, 13.9, 14.2, 21, 35],
                           dose_mg=400, random_seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2 x 300 draws may miss the ESS of 400: not the point
        fit = fit_population(sim.frame, three_spec, draws=300, tune=300, chains=2,
                             random_seed=1)
    table = fit.summary().set_index("parameter")
    for name, value in truth.items():
        lower, upper = table.loc[name, ["lower", "upper"]]
        assert lower < value < upper, (name, value, lower, upper)
    for name in ("tv_cl", "tv_v1", "sigma_prop"):
        assert abs(np.log(table.loc[name, "median"] / truth[name])) < 0.1, name
    assert fit.diagnostics.divergences == 0
    model = fit.to_population_model("three")
    assert model.structure == three_spec.structure and model.parameter_names == tuple(THREE)
