"""One vocabulary of covariate effects (pkmodel.pk.covariate_effects) and covariates
(pkmodel.pk.covariate_registry): each form against its formula, NumPy against PyTensor, a
published model and a population specification giving the same individual parameters through the
one multiplier function, and a covariate declared outside the library's registry."""

from __future__ import annotations

import numpy as np
import pytest

from pkmodel.errors import SpecificationError
from pkmodel.pk import CovariateEffect, LinearCompartmental, PopulationModel
from pkmodel.pk.covariate_registry import COVARIATES, Covariate
from pkmodel.pk.population import CovariateTerm, Parameter, PopulationSpec
from pkmodel.pk.population.equations import individual_log_parameters, pair_arrays

X = np.array([0.0, 1.0, 2.0, 3.5, 40.0, 70.0, 110.0])

FORMULAS = [
    (CovariateEffect("cl", "weight_kg", "power", 0.75, reference=70.0),
     lambda x: (x / 70.0) ** 0.75),
    (CovariateEffect("cl", "weight_kg", "linear", 0.004, reference=70.0),
     lambda x: 1 + 0.004 * (x - 70.0)),
    (CovariateEffect("cl", "ati", "linear", 0.471, reference=0.0), lambda x: 1 + 0.471 * x),
    (CovariateEffect("cl", "weight_kg", "exponential", -0.01, reference=70.0),
     lambda x: np.exp(-0.01 * (x - 70.0))),
    (CovariateEffect("cl", "female", "categorical", np.log(0.336 / 0.456)),
     lambda x: np.where(x == 1, 0.336 / 0.456, 1.0)),
    (CovariateEffect("cl", "score", "categorical", (0.2, -0.3), levels=(1.0, 2.0)),
     lambda x: np.select([x == 1, x == 2], [np.exp(0.2), np.exp(-0.3)], 1.0)),
    (CovariateEffect("cl", "albumin_g_dl", "indicator", 0.4, below=3.0),
     lambda x: np.where(x < 3.0, np.exp(0.4), 1.0)),
    (CovariateEffect("cl", "weight_kg", "indicator", -0.2, above=100.0),
     lambda x: np.where(x > 100.0, np.exp(-0.2), 1.0)),
    (CovariateEffect("cl", "age", "piecewise", (0.05, -0.01), reference=2.0),  # hockey stick
     lambda x: np.where(x < 2.0, np.exp(0.05 * (x - 2.0)), np.exp(-0.01 * (x - 2.0)))),
]


@pytest.mark.parametrize(("effect", "formula"), FORMULAS, ids=lambda v: getattr(v, "form", ""))
def test_each_form_is_its_formula_in_numpy_and_pytensor(effect, formula):
    import pytensor.tensor as pt

    x = X[X > 0] if effect.form == "power" else X
    np.testing.assert_allclose(effect.multiplier(x), formula(x), rtol=1e-12)
    theta = effect.coefficient
    symbolic = (tuple(pt.as_tensor_variable(t) for t in theta) if isinstance(theta, tuple)
                else pt.as_tensor_variable(theta))
    graph = effect.log_factor(pt.as_tensor_variable(effect.design(x)), symbolic, xp=pt)
    np.testing.assert_allclose(graph.eval(), np.log(formula(x)), rtol=1e-12, atol=1e-15)


def test_a_published_model_and_a_specification_give_the_same_parameters():
    """The fit's equations (log scale, PyMC's) and a model with the same numbers (NumPy) through
    the one multiplier function: every form, a fixed exponent, two categorical levels."""
    terms = (CovariateTerm("cl", "WT", "power", reference=70.0),
             CovariateTerm("cl", "ALB", "indicator", below=3.0),
             CovariateTerm("cl", "ATI", "linear", reference=0.0),
             CovariateTerm("v", "weight_kg", "power", reference=70.0, exponent=1.0),
             CovariateTerm("v", "albumin_g_dl", "exponential", reference=4.0),
             CovariateTerm("v", "female", "categorical"))
    spec = PopulationSpec(compartments=1, dosing="bolus", covariates=terms,
                          parameters={"cl": Parameter(0.3, bsv=True), "v": Parameter(3.0)})
    assert [t.covariate for t in spec.covariates] == [
        "weight_kg", "albumin_g_dl", "ati", "weight_kg", "albumin_g_dl", "female"]
    theta = {"theta_cl_weight_kg": 0.75, "theta_cl_albumin_g_dl": 0.3, "theta_cl_ati": 0.47,
             "theta_v_albumin_g_dl": -0.2, "theta_v_female_1": -0.15}
    rng = np.random.default_rng(4)
    n = 50
    cov = {"weight_kg": rng.uniform(20, 120, n), "albumin_g_dl": rng.uniform(2.0, 5.0, n),
           "ati": (rng.random(n) < 0.3).astype(float),
           "female": (rng.random(n) < 0.5).astype(float)}
    eta = rng.normal(0, 0.3, n)

    class Data:  # the arrays pair_arrays reads of a dataset without observations
        covariates = cov
        n_observations = 0
        obs_cens = obs_time_days = obs_value_ug_ml = np.zeros(0)
        obs_subject = dose_subject = np.zeros(0, int)
        dose_time_days = dose_amount_mg = dose_duration_days = np.zeros(0)
        dose_route = dose_ss_interval_days = None  # no NONMEM routes or steady states

        @property
        def obs_covariates(self):  # no covariate changes within a subject
            return {}

        @staticmethod
        def pairs(inclusive):
            return np.zeros(0, int), np.zeros(0, int)

    arrays = pair_arrays(spec, Data())
    log_p = individual_log_parameters(spec, arrays, theta | {
        "log_tv_cl": np.log(0.3), "log_tv_v": np.log(3.0), "eta_cl": eta})
    model = PopulationModel(
        name="local", title="", citation="", source="", structure=spec.structure,
        typical={"cl": 0.3, "v": 3.0}, omega2={"cl": 0.09},
        reference_covariates={"weight_kg": 70.0, "albumin_g_dl": 4.0, "ati": 0.0,
                              "female": 0.0},
        effects=tuple(t.with_coefficient(t.coefficient if not t.estimated else
                                         tuple(theta[n] for n in t.names)
                                         if t.form == "categorical" else theta[t.names[0]])
                      for t in spec.covariates),
        proportional_sd=0.1, additive_sd_ug_ml=0.0)
    p = model.individual_parameters(cov, eta[:, None])
    np.testing.assert_allclose(p.cl, np.exp(log_p["cl"]), rtol=1e-12)
    np.testing.assert_allclose(p.v, np.exp(log_p["v"]), rtol=1e-12)
    assert PopulationModel.from_dict(model.to_dict()) == model


def test_the_library_forms_of_0_4_are_read_into_the_one_vocabulary():
    # pkmodel 0.4 wrote effects as power (x / r)^c, linear 1 + c x and factor c^x
    from pkmodel.pk import AUBOURG_2015, FASANMADE_2009_UC

    old_forms = {"fasanmade2009": [
        {"parameter": "cl", "covariate": "albumin_g_dl", "form": "power",
         "coefficient": -1.54, "reference": 4.1},
        {"parameter": "cl", "covariate": "ati", "form": "linear", "coefficient": 0.471,
         "reference": None},
        {"parameter": "cl", "covariate": "female", "form": "linear", "coefficient": -0.236,
         "reference": None},
        {"parameter": "v1", "covariate": "weight_kg", "form": "power", "coefficient": 0.538,
         "reference": 77.0},
        {"parameter": "v1", "covariate": "female", "form": "linear", "coefficient": -0.137,
         "reference": None}],
        "aubourg2015": [
        {"parameter": "cl", "covariate": "female", "form": "factor",
         "coefficient": 0.336 / 0.456, "reference": None},
        {"parameter": "v1", "covariate": "female", "form": "factor",
         "coefficient": 2.6 / 3.2, "reference": None},
        {"parameter": "v1", "covariate": "weight_kg", "form": "power", "coefficient": 0.22,
         "reference": 60.0}]}
    for model in (FASANMADE_2009_UC, AUBOURG_2015):
        old = {k: v for k, v in model.to_dict().items()
               if k not in ("structure", "bsv_blocks", "correlations")}
        old["effects"] = old_forms[model.name]
        assert PopulationModel.from_dict(old) == model
    with pytest.raises(SpecificationError, match="not a known parameter, covariate and form"):
        PopulationModel.from_dict(old | {"effects": [{"parameter": "cl", "covariate": "ati",
                                                      "form": "sigmoid", "coefficient": 1.0}]})


def test_a_covariate_outside_the_library_is_one_registry_entry():
    """What issue 26's declared covariates build on: a covariate is a registry entry (unit,
    range, columns), and checks, column names and resolution follow it."""
    neonatal = COVARIATES.with_(Covariate("weight_kg", "kg", low=0.4, high=6.0,
                                          columns=("WGT",)),
                                Covariate("score", "points", low=0.0, high=10.0,
                                          columns=("SCORE",)))
    assert neonatal.resolve("WGT") == "weight_kg" and neonatal.resolve("score") == "score"
    assert neonatal.check("weight_kg", [0.5, 3.6]).tolist() == [0.5, 3.6]
    with pytest.raises(SpecificationError, match="outside the plausible range 10-300 kg"):
        COVARIATES.check("weight_kg", 1.4)
    with pytest.raises(SpecificationError, match=r"unknown covariate 'WGT'; the NONMEM reader "
                                                  r"knows weight_kg \(WT\)"):
        COVARIATES.resolve("WGT")
    assert COVARIATES["albumin_g_dl"]["unit"] == "g/dL"  # 0.4's mapping form
    with pytest.raises(SpecificationError, match="looks like g/L"):
        COVARIATES.check("albumin_g_dl", 41.0)


def test_effects_refuse_what_their_form_cannot_take():
    for args, kwargs, match in (
            (("cl", "x", "power", 0.5), {}, "needs its reference value"),
            (("cl", "x", "power", 0.5), {"reference": -1.0}, "must be positive"),
            (("cl", "x", "sigmoid"), {}, "effect must be one of power, linear"),
            (("cl", "x", "categorical", (0.1, 0.2)), {}, "one value per level"),
            (("cl", "x", "indicator", 0.1), {}, "exactly one of below"),
            (("cl", "x", "linear", 0.1), {"reference": 0.0, "levels": (1.0,)},
             "levels are for categorical")):
        with pytest.raises(SpecificationError, match=match):
            CovariateEffect(*args, **kwargs)
    with pytest.raises(SpecificationError, match="exponent is for power effects only"):
        CovariateTerm("cl", "WT", "linear", reference=70.0, exponent=1.0)
    # a model holds effects with coefficients, of its parameters and known covariates
    with pytest.raises(SpecificationError, match="needs one of its parameters, a known covariate "
                                                 "and a coefficient"):
        PopulationModel(name="x", title="", citation="", source="",
                        structure=LinearCompartmental(1), typical={"cl": 1.0, "v": 1.0},
                        reference_covariates={"weight_kg": 70.0}, omega2={},
                        effects=(CovariateEffect("v1", "weight_kg", "power", 1.0, 70.0),),
                        proportional_sd=0.1, additive_sd_ug_ml=0.0)
