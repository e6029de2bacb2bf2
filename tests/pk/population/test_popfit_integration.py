"""A fitted population PK model where a library model goes: the one resolver
(:func:`pkmodel.pk.resolve_model`), the scenarios, the exposure-driven remission model (saved
self-contained: its PK model's numbers, not the file's path) and the population PK report.

One small population fit (40 subjects, 2 chains x 200 draws: not meant to pass the gate) is
made once for the module.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from exposure_truth import simulate_exposure_cohort
from test_pk_population import SAMPLES_DAYS, SPEC_TOML, TRUTH

import pkmodel
from pkmodel.errors import FitFileError, SpecificationError
from pkmodel.pk import MODELS, PopulationModel, resolve_model
from pkmodel.pk.population import fit_population, read_spec, simulate_dataset
from pkmodel.response.recommend import recommend

DRAWS = {"draws": 200, "tune": 200, "chains": 2}


@pytest.fixture(scope="module")
def popfit(tmp_path_factory):
    """The population fit and its file ``popfit.nc``."""
    folder = tmp_path_factory.mktemp("popfit")
    (folder / "model.toml").write_text(SPEC_TOML, encoding="utf-8")
    spec = read_spec(folder / "model.toml")
    sim = simulate_dataset(spec, TRUTH, n_subjects=40, dose_times_days=[0, 14],
                           sample_times_days=SAMPLES_DAYS, dose_mg_kg=5, random_seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_population(sim.frame, spec, **DRAWS, random_seed=1)
    path = folder / "popfit.nc"
    fit.save(path)
    return fit, path


@pytest.fixture(scope="module")
def exposure_fit(popfit, tmp_path_factory):
    """An exposure-driven remission fit with the population fit's file as its PK model."""
    frame, _ = simulate_exposure_cohort(600, 2, b_base=-0.5, b_gain=1.0, alpha=0.0,
                                        sigma_centre=0.3, sigma_patient=0.5, seed=5)
    cohort = pkmodel.read_cohort(frame, name="exposure-popfit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pkmodel.ConvergenceWarning)
        return pkmodel.RemissionModel(exposure={"pk_model": str(popfit[1])}).fit(
            cohort, draws=200, tune=300, chains=2, random_seed=3, progressbar=False)


def test_one_resolver_takes_a_name_a_fit_file_a_model_or_its_dict(popfit, tmp_path):
    fit, path = popfit
    model = resolve_model(path)
    assert model == fit.to_population_model("popfit") == resolve_model(str(path))
    assert resolve_model(model) is model and resolve_model("cd") is MODELS["fasanmade2011"]
    assert PopulationModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    for library in MODELS.values():
        assert resolve_model(library.to_dict()) == library
    with pytest.raises(FitFileError, match=r"missing\.nc"):
        resolve_model(tmp_path / "missing.nc")
    with pytest.raises(SpecificationError, match="lacks omega2"):
        PopulationModel.from_dict({k: v for k, v in model.to_dict().items() if k != "omega2"})
    with pytest.raises(SpecificationError, match="not a known parameter, covariate and form"):
        PopulationModel.from_dict(model.to_dict() | {"effects": [
            {"parameter": "cl", "covariate": "height", "form": "power", "coefficient": 1.0,
             "reference": 170.0}]})
    # any structure serves: a fit on IV boluses is a model of that structure
    bolus = dataclasses.replace(fit, spec=dataclasses.replace(fit.spec, dosing="bolus"),
                                warn=False, _diagnostics=fit.diagnostics)
    bolus.save(tmp_path / "bolus.nc")
    assert resolve_model(tmp_path / "bolus.nc").structure.label() == "2-compartment, IV bolus"
    # a fit that cannot serve is refused naming the file and why: the medians of a BSV block's
    # correlations that do not form a correlation matrix
    posterior = fit.posterior.assign(corr_cl_v1=fit.posterior["omega_cl"] * 0 + 1.5)
    tree = fit.tree.copy()
    tree["posterior"] = posterior
    broken = dataclasses.replace(fit, spec=dataclasses.replace(fit.spec, bsv_blocks=(
        ("cl", "v1"),)), tree=tree, warn=False, _diagnostics=fit.diagnostics)
    broken.save(tmp_path / "broken.nc")
    with pytest.raises(SpecificationError, match=r"broken.nc: this population fit cannot be "
                                                 r"used as a PK model: the correlations of the "
                                                 r"BSV block cl, v1 do not form"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the R-hat of a constant
        resolve_model(tmp_path / "broken.nc")


def test_an_exposure_fit_records_its_local_pk_model_and_predicts_the_same_without_it(
        popfit, exposure_fit, tmp_path):
    fit, path = popfit
    local = fit.to_population_model("popfit")
    exposure = exposure_fit.meta["exposure"]
    assert exposure["pk_model"] == "popfit"
    assert PopulationModel.from_dict(exposure["pk_model_definition"]) == local
    assert exposure_fit.spec.exposure.model == local
    saved = tmp_path / "remission.nc"
    exposure_fit.save(saved)
    moved = path.rename(path.with_suffix(".moved"))  # the fit no longer needs the PK file
    try:
        loaded = pkmodel.load_fit(saved, warn=False)
    finally:
        moved.rename(path)
    assert loaded.spec.exposure == exposure_fit.spec.exposure
    args = {"tl": [3.0, 6.0, 12.0], "strategy": ["10 mg/kg q8w", "5 mg/kg q4w"]}
    xr.testing.assert_identical(loaded.remission_curve(**args),
                                exposure_fit.remission_curve(**args))
    one = recommend(exposure_fit, tl_ug_ml=4.0, weight_kg=80.0)
    two = recommend(loaded, tl_ug_ml=4.0, weight_kg=80.0)
    assert one.settings["pk_model"] == "popfit" and one.verdict == two.verdict
    pd.testing.assert_frame_equal(one.table, two.table)
    # the gains are the local model's, not a library model's
    other = dataclasses.replace(loaded.spec.exposure, pk_model="fasanmade2011")
    assert other.model is MODELS["fasanmade2011"] and other.to_dict()["pk_model"] == "fasanmade2011"
    assert isinstance(loaded.spec.exposure.to_dict()["pk_model"], dict)


def test_scenarios_and_the_command_line_take_the_fit_file(popfit, exposure_fit, tmp_path,
                                                          capsys):
    from pkmodel.cli.main import main
    from pkmodel.scenarios import simulate_scenarios

    _, path = popfit
    regimens = ["10 mg/kg q8w", "5 mg/kg q4w"]
    ds = simulate_scenarios(exposure_fit, 300, regimens, pk_model=path, random_seed=2,
                            n_draws=100)
    same = simulate_scenarios(exposure_fit, 300, regimens, pk_model=resolve_model(path),
                              random_seed=2, n_draws=100)
    assert ds.attrs["pk_model"] == "popfit"
    np.testing.assert_array_equal(ds["remission_rate"].values,
                                  same["remission_rate"].values)
    saved = tmp_path / "remission.nc"
    exposure_fit.save(saved)
    assert main(["scenarios", str(saved), "--regimen", *regimens, "--n-patients", "300",
                 "--pk-model", str(path), "--posterior-draws", "100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["pk_model"] == "popfit"
    assert main(["recommend", str(saved), "--tl", "4", "--weight", "80", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["pk_model"] == "popfit"
    assert main(["scenarios", str(saved), "--regimen", *regimens,
                 "--pk-model", str(tmp_path / "nope.nc")]) == 2
    assert re.search(r"nope\.nc", capsys.readouterr().err)


def test_the_population_pk_run_report(popfit, tmp_path, capsys):
    from pkmodel.cli.main import main

    fit, path = popfit
    out = tmp_path / "report.html"
    assert main(["pk", "report", str(path), "-o", str(out), "--replicates", "20",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == str(out)
    text = out.read_text(encoding="utf-8")
    assert pkmodel.DISCLAIMER in text
    # self-contained: no link to fetch (the base64 images may spell "http" by chance)
    assert not re.search(r'(src|href)="(https?:)?//', text)
    # GOF, pcVPC, the etas and the 40 subjects on 4 pages
    assert text.count('<img src="data:image/png;base64,') == 7
    assert 'alt="individual fits, page 4"' in text and 'alt="random effects"' in text
    from pkmodel.pk.population.comparison import loo

    result = loo(fit)
    assert re.search(rf'id="loo">Leaving out one subject.*ELPD {float(result.elpd):.1f} '
                     rf"\(SE {float(result.se):.1f}\)", text)
    status = "PASS" if fit.converged else "FAIL"
    assert f'<span class="badge {status.lower()}" id="diagnostics-status">{status}</span>' in text
    for row in fit.summary().itertuples():  # every parameter with its median, interval, R-hat
        assert re.search(rf"<td>{row.parameter}</td><td>[^<]*</td><td>{row.median:.3g}</td>"
                         rf"<td>{row.lower:.3g} – {row.upper:.3g}</td>", text), row.parameter
        assert f"<td class=num>{row.r_hat:.3f}</td>" in text
    for value in fit.shrinkage().values():
        assert f"<td>{value:.0%}</td>" in text
    assert re.search(r"theta_\w+ ~ Normal\(0.75, 0.25\)", text) and "Beal's M3" in text
    assert re.search(r'id="vpc-inside">\d+% of the observed', text)
    # an existing report is kept without --force; the remission report points here
    assert main(["pk", "report", str(path), "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 2
    assert "pkmodel pk report" in capsys.readouterr().err


def test_the_command_lines_of_the_population_page_parse():
    import shlex
    from pathlib import Path

    from pkmodel.cli.main import build_parser

    text = (Path(__file__).resolve().parents[3] / "docs" / "population_pk.md").read_text("utf-8")
    text = text.replace("\\\n", " ")
    commands = [line.strip() for line in text.splitlines() if line.startswith("    pkmodel ")]
    assert any(" pk report " in c for c in commands)
    assert any(c.startswith("pkmodel scenarios") and "popfit.nc" in c for c in commands)
    parser = build_parser()
    for command in commands:
        words = shlex.split(re.sub(r"\[[^\]]*\]", "", command))[1:]
        args = parser.parse_args(words)  # an unknown option exits here
        assert args.handler is not None, command


def test_the_remission_report_names_the_local_pk_model(exposure_fit):
    from pkmodel.report.sections import model_section

    text = model_section(exposure_fit)
    assert "PK model of the exposure gains" in text
    assert "popfit: Population PK fit (2-compartment, zero-order infusion)" in text
    assert "its numbers recorded in the fit" in text


def test_an_exposure_given_a_library_model_object_records_its_name():
    from pkmodel.response.exposure import Exposure

    assert Exposure(pk_model=MODELS["fasanmade2009"]).to_dict()["pk_model"] == "fasanmade2009"
    assert Exposure(pk_model="uc").to_dict()["pk_model"] == "uc"


def test_population_model_draws_are_joint_posterior_draws(popfit):
    """The draws that propagate a fit's uncertainty (``Exposure(population_draws=K)``): each a
    whole posterior draw, made by the same code as the medians' model."""
    from pkmodel.pk import resolve_population_draws
    from pkmodel.response.exposure import Exposure

    fit, path = popfit
    draws = fit.population_model_draws(3, random_seed=5)
    assert draws == fit.population_model_draws(3, random_seed=5)
    assert [m.name for m in draws] == ["popfit_draw0", "popfit_draw1", "popfit_draw2"]
    post = fit.posterior.stack(sample=("chain", "draw"))
    for model in draws:  # typical CL, omega_CL and the weight exponent of one and the same draw
        i = int(np.flatnonzero(post["tv_cl"].values == model.typical["cl"])[0])
        assert model.omega2["cl"] == pytest.approx(float(post["omega_cl"].values[i]) ** 2)
        theta = next(str(v) for v in post.data_vars if str(v).startswith("theta_"))
        assert model.effects[0].coefficient == pytest.approx(float(post[theta].values[i]))
    assert len({m.typical["cl"] for m in draws}) == 3
    with pytest.raises(SpecificationError, match="number of population draws"):
        fit.population_model_draws(0)
    models, source = resolve_population_draws(path, 2, random_seed=1)
    assert "posterior of the population fit popfit" in source
    assert models == fit.population_model_draws(2, random_seed=1)
    exposure = Exposure(pk_model=str(path), population_draws=2)
    assert exposure.model == fit.to_population_model("popfit")
    assert len(exposure.population_draws) == 2 and "popfit" in exposure.population_source
