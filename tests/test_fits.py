"""The fit protocol (pkmodel.fits): one shape for every fit, pkmodel.load for every saved kind.

The saved fits of ``tests/saved_fits/`` were written by pkmodel 0.2, 0.3 and 0.4 themselves
(``make_saved_fits.py`` says how); ``reference.json`` holds what each version predicted from its
own fit, so that loading them today must give the same numbers, not merely load.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import pkmodel
from pkmodel.errors import FitFileError
from pkmodel.fits import FIT_KINDS, SUMMARY_COLUMNS, BayesianFit
from pkmodel.netcdf import CHECKSUM_ATTR, ENGINE, FORMAT_VERSION, checksum
from pkmodel.pk.population import PopulationFit
from pkmodel.response import RemissionFit

SAVED = Path(__file__).parent / "saved_fits"
REFERENCE = json.loads((SAVED / "reference.json").read_text(encoding="utf-8"))


def _load(name: str):
    return pkmodel.load(SAVED / name, warn=False)


def _p_remission(fit) -> float:
    return float(fit.remission_curve(tl=[4.0, 10.0])["p_remission"].mean())


@pytest.mark.parametrize("version", ["0.2", "0.3", "0.4"])
def test_old_remission_fits_load_and_predict_what_they_predicted(version):
    fit = _load(f"remission_{version}.nc")
    assert isinstance(fit, RemissionFit) and fit.model_kind == "remission_by_baseline_tl"
    written = json.loads(xr.open_datatree(SAVED / f"remission_{version}.nc",
                                          engine=ENGINE).attrs["pkmodel_versions"])
    assert written["pkmodel"] == f"{version}.0"  # really written by that version
    reference = REFERENCE[version]
    assert float(fit.posterior["beta"].mean()) == pytest.approx(reference["beta_mean"],
                                                                rel=1e-12)
    assert _p_remission(fit) == pytest.approx(reference["p_remission_mean"], rel=1e-9)
    # 2 chains of 25 draws: the gate fails, and says so
    assert not fit.converged and fit.diagnostics.problems()
    assert pkmodel.load_fit(SAVED / f"remission_{version}.nc", warn=False).data_hash == \
        fit.data_hash


def test_load_returns_the_fit_of_each_recorded_kind():
    exposure = _load("exposure_0.4.nc")
    assert isinstance(exposure, RemissionFit) and exposure.model_kind == "remission_by_exposure"
    assert _p_remission(exposure) == pytest.approx(REFERENCE["0.4"]["exposure_p_remission_mean"],
                                                   rel=1e-9)
    population = _load("population_0.4.nc")
    assert isinstance(population, PopulationFit) and population.model_kind == "population_pk"
    tv_cl = population.summary().set_index("parameter").loc["tv_cl", "median"]
    assert tv_cl == pytest.approx(REFERENCE["0.4"]["population_tv_cl_median"], rel=1e-9)
    assert set(FIT_KINDS) == {"remission_by_baseline_tl", "remission_by_exposure",
                              "population_pk"}
    # the loaders of one kind refuse the other, pointing at pkmodel.load
    with pytest.raises(FitFileError, match=r"another kind.*'population_pk'.*pkmodel\.load"):
        pkmodel.load_fit(SAVED / "population_0.4.nc")
    with pytest.raises(FitFileError, match=r"another kind.*'remission_by_exposure'"):
        pkmodel.load_population_fit(SAVED / "exposure_0.4.nc")


def test_a_warning_of_a_failed_gate_points_at_the_caller():
    with pytest.warns(pkmodel.ConvergenceWarning, match="did not pass") as caught:
        pkmodel.load(SAVED / "remission_0.4.nc")
    assert all(Path(w.filename) == Path(__file__) for w in caught)
    with pytest.warns(pkmodel.ConvergenceWarning) as caught:
        pkmodel.load(SAVED / "population_0.4.nc")
    assert all(Path(w.filename) == Path(__file__) for w in caught)


def _rewritten(source: Path, target: Path, **attrs) -> Path:
    """``source`` with root attributes changed and its checksum made right again."""
    with xr.open_datatree(source, engine=ENGINE) as opened:
        tree = opened.load()
    tree.attrs.update(attrs)
    tree.attrs[CHECKSUM_ATTR] = checksum(tree)
    tree.to_netcdf(target, engine=ENGINE)
    return target


def test_an_unknown_kind_or_a_future_format_is_refused_naming_the_writer(tmp_path):
    versions = json.dumps({"pkmodel": "9.1.0"})
    future = _rewritten(SAVED / "population_0.4.nc", tmp_path / "future.nc",
                        pkmodel_model_kind="tmdd_pk", pkmodel_versions=versions)
    with pytest.raises(FitFileError) as err:
        pkmodel.load(future)
    message = str(err.value)
    assert "'tmdd_pk'" in message and "pkmodel 9.1.0" in message and "upgrade" in message
    newer = _rewritten(SAVED / "remission_0.4.nc", tmp_path / "newer.nc",
                       pkmodel_format=FORMAT_VERSION + 1, pkmodel_versions=versions)
    with pytest.raises(FitFileError, match=r"newer pkmodel \(format 2, written by pkmodel "
                                           r"9\.1\.0"):
        pkmodel.load(newer)
    unrecorded = _rewritten(SAVED / "remission_0.4.nc", tmp_path / "unrecorded.nc",
                            pkmodel_versions="not json")
    assert isinstance(pkmodel.load(unrecorded, warn=False), RemissionFit)
    with pytest.raises(FitFileError, match=r"version not recorded"):
        pkmodel.load(_rewritten(unrecorded, tmp_path / "x.nc", pkmodel_model_kind="other"))


def test_every_fit_has_one_shape_and_one_summary_table():
    fits = [_load("remission_0.4.nc"), _load("exposure_0.4.nc"), _load("population_0.4.nc")]
    keys = {"kind", "ci_prob", "random_seed", "converged", "diagnostics", "notes", "summary",
            "spec", "structure"}
    for fit in fits:
        assert isinstance(fit, BayesianFit)
        table = fit.summary(0.8)
        assert tuple(table.columns) == SUMMARY_COLUMNS, type(fit)
        assert table.attrs["ci_prob"] == 0.8 and table.attrs["notes"] == list(fit.notes)
        # the statistics are the ones the column names say, from the draws
        name = table["parameter"].iloc[0]
        draws = fit.posterior[name].values.ravel()
        row = table.iloc[0]
        assert row["mean"] == pytest.approx(draws.mean())
        assert row["median"] == pytest.approx(np.median(draws))
        assert [row["lower"], row["upper"]] == pytest.approx(np.quantile(draws, [0.1, 0.9]))
        assert row["sd"] == pytest.approx(draws.std(ddof=1), rel=1e-6)
        assert table["unit"].map(bool).all()
        out = fit.to_dict(0.8)
        assert keys <= set(out) and out["kind"] == fit.model_kind
        assert out["converged"] is fit.converged is fit.diagnostics.converged
        assert [r["parameter"] for r in out["summary"]] == table["parameter"].tolist()
        assert json.loads(json.dumps(out)) == out  # plain JSON
    with pytest.raises(pkmodel.SpecificationError, match="ci_prob"):
        fits[0].summary(1.5)


def test_the_odds_ratio_rows_have_their_diagnostics_and_a_fixed_value_has_none():
    table = _load("remission_0.4.nc").summary().set_index("parameter")
    odds = table.loc[table.index.str.startswith("or_per_doubling[")]
    assert len(odds) == 2 and odds[["ess_bulk", "ess_tail", "r_hat"]].notna().all().all()
    assert (odds["unit"] == "odds ratio per doubling of TL").all()


def test_the_methods_of_0_4_still_answer_with_a_deprecation_warning():
    fit = _load("remission_0.4.nc")
    with pytest.warns(DeprecationWarning, match="property"):
        assert fit.diagnostics() is fit.diagnostics
    with pytest.warns(DeprecationWarning, match="property"):
        assert fit.notes() == list(fit.notes)


def test_save_writes_what_load_reads_for_every_kind(tmp_path):
    for name in ("remission_0.4.nc", "exposure_0.4.nc", "population_0.4.nc"):
        fit = _load(name)
        fit.save(tmp_path / name)
        again = pkmodel.load(tmp_path / name, warn=False)
        assert type(again) is type(fit)
        xr.testing.assert_identical(again.posterior, fit.posterior)
        with pytest.raises(FileExistsError):
            fit.save(tmp_path / name)
        written = xr.open_datatree(tmp_path / name, engine=ENGINE).attrs
        assert written["pkmodel_model_kind"] == fit.model_kind
        assert json.loads(written["pkmodel_versions"])["pkmodel"] == pkmodel.__version__


def test_a_fit_of_0_2_without_recorded_kind_saves_as_the_current_format(tmp_path):
    copy = tmp_path / "old.nc"
    shutil.copy(SAVED / "remission_0.2.nc", copy)
    attrs = xr.open_datatree(copy, engine=ENGINE).attrs
    assert "pkmodel_model_kind" not in attrs and "pkmodel_cohort_population" not in attrs
    fit = pkmodel.load(copy, warn=False)
    assert fit.cohort_population == {}
    fit.save(tmp_path / "new.nc")
    assert xr.open_datatree(tmp_path / "new.nc", engine=ENGINE).attrs[
        "pkmodel_model_kind"] == "remission_by_baseline_tl"


def test_the_fits_module_imports_no_model():
    import ast

    source = Path(pkmodel.fits.__file__).read_text(encoding="utf-8")
    imported = {node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m and m.startswith(("pkmodel.response", "pkmodel.pk"))}
    for target in FIT_KINDS.values():  # every loader is where the registry says
        module, _, function = target.partition(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function))


def test_population_pk_is_reachable_from_pkmodel_without_importing_pymc():
    import subprocess
    import sys

    code = ("import sys, pkmodel; pkmodel.fit_population; pkmodel.PopulationSpec; "
            "pkmodel.PopulationFit; pkmodel.load; pkmodel.load_population_fit; "
            "print('pymc' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert {"load", "fit_population", "PopulationSpec", "PopulationFit"} <= set(dir(pkmodel))
