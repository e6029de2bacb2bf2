"""The command line's surfaces, class by class (issue 28): every option checked before any work,
outputs that never collide or lie, no option silently ignored, units as the user typed them,
the small things (one chain, a byte-order mark, a missing checksum, a note printed once) and
progress. Each bad case: exit 2, one message naming the option, row or file and the fix, no
traceback, nothing written or replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkmodel
from pkmodel.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
THEO = ROOT / "pkmodel" / "data" / "theophylline.csv"
THEO_SPEC = ROOT / "pkmodel" / "data" / "theophylline.toml"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(code, out, err, *words, folder=None, before=None):
    assert code == 2, err
    assert "Traceback" not in err and out == ""
    for word in words:
        assert word in err, (word, err)
    if folder is not None:
        assert sorted(p.name for p in Path(folder).iterdir()) == sorted(before or [])


# --------------------------------------------------------------------------- options first
BAD_OPTIONS = {
    "fit-chains": (["fit", "-o", "{d}/f.nc", "--chains", "0"], "--chains"),
    "fit-draws": (["fit", "-o", "{d}/f.nc", "--draws", "-5"], "--draws"),
    "fit-target-accept": (["fit", "-o", "{d}/f.nc", "--target-accept", "1.2"],
                          "--target-accept"),
    "fit-min-tl": (["fit", "-o", "{d}/f.nc", "--min-tl", "-1"], "--min-tl"),
    "analyze-credibility": (["analyze", "--out", "{d}/out", "--credibility", "1"],
                            "--credibility"),
    "curve-ci-prob": (["curve", "{d}/none.nc", "--ci-prob", "1.5", "--plot", "{d}/c.png"],
                      "--ci-prob"),
    "threshold-p-min": (["threshold", "{d}/none.nc", "--p-min", "0"], "--p-min"),
    "report-ci-prob": (["report", "{d}/none.nc", "-o", "{d}/r.html", "--ci-prob", "2"],
                       "--ci-prob"),
    "pk-fit-ci-prob": (["pk", "fit", str(THEO), "--spec", str(THEO_SPEC), "-o", "{d}/p.nc",
                        "--ci-prob", "1.5"], "--ci-prob"),
    "pk-fit-figure-format": (["pk", "fit", str(THEO), "--spec", str(THEO_SPEC), "-o",
                              "{d}/p.nc", "--gof", "{d}/gof.xyz"], "cannot write a figure as .xyz"),
    "pk-report-replicates": (["pk", "report", "{d}/none.nc", "-o", "{d}/r.html",
                              "--replicates", "0"], "--replicates"),
    "pk-simulate-n-patients": (["pk", "simulate", "--n-patients", "-5"], "--n-patients"),
    "pk-forecast-ci-prob": (["pk", "forecast", "--ci-prob", "0"], "--ci-prob"),
    "pk-simulate-albumin-g-dl": (["pk", "simulate", "--albumin-g-l", "4"],
                                 "4 g/L is below the plausible minimum of 10 g/L"),
    "pk-simulate-albumin-high": (["pk", "simulate", "--albumin-g-l", "80"],
                                 "80 g/L is above the plausible maximum of 70 g/L"),
    "recommend-p-min": (["recommend", "{d}/none.nc", "--weight", "70", "--p-min", "1.5"],
                        "--p-min"),
    "recommend-ng-ml": (["recommend", "{d}/none.nc", "--weight", "70", "--tl", "500"],
                        "--tl 500", "ng/mL"),
    "recommend-pounds": (["recommend", "{d}/none.nc", "--weight", "340"], "--weight 340",
                         "pounds"),
    "recommend-albumin-g-dl": (["recommend", "{d}/none.nc", "--weight", "70",
                                "--albumin-g-l", "4"], "--albumin-g-l 4", "g/dL",
                               "4 g/dL is 40 g/L"),
    "recommend-above-without-tl": (["recommend", "{d}/none.nc", "--weight", "70",
                                    "--tl-above-limit"], "--tl-above-limit needs --tl"),
    "recommend-tdm-draws": (["recommend", "{d}/none.nc", "--weight", "70", "--tdm-draws",
                             "10"], "--tdm-draws"),
    "fit-assume-albumin": (["fit", "-o", "{d}/f.nc", "--exposure", "--assume",
                            "albumin_g_l=4"], "albumin_g_l", "4 g/L is below", "g/dL"),
    "fit-assume-immunomodulator": (["fit", "-o", "{d}/f.nc", "--exposure", "--assume",
                                    "immunomodulator=2"], "immunomodulator", "0 (no) or 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_every_option_is_checked_before_any_work(tmp_path, capsys, case):
    argv, *words = BAD_OPTIONS[case]
    argv = [a.format(d=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    # the fit files named do not exist: the option is refused before anything is read
    _refused(code, out, err, *words, folder=tmp_path)
    assert "no such fit file" not in err


# --------------------------------------------------------------------------- outputs
def test_two_outputs_on_one_path_are_refused_before_the_work(tmp_path, capsys):
    for argv, names in (
            (["--gof", tmp_path / "a.png", "--vpc", tmp_path / "a.png"], ("--gof", "--vpc")),
            (["-o", tmp_path / "a.png", "--gof", tmp_path / "a.png"], ("-o/--out", "--gof"))):
        if argv[0] != "-o":
            argv = ["-o", tmp_path / "p.nc", *argv]
        code, out, err = run(capsys, "pk", "fit", THEO, "--spec", THEO_SPEC, *argv)
        _refused(code, out, err, *names, "the same file", folder=tmp_path)


def _held_lock(path: Path):
    """A lock of ``path`` held by another running process (as a concurrent run holds it)."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (path.parent / f".{path.name}.pkmodel-lock").write_text(str(holder.pid))
    return holder


def test_a_second_run_on_the_same_output_fails_at_once(tmp_path, capsys, exposure_fit):
    target = tmp_path / "report.html"
    holder = _held_lock(target)
    try:
        code, out, err = run(capsys, "report", exposure_fit, "-o", target)
        _refused(code, out, err, f"{target} is being written by another pkmodel run",
                 f"process {holder.pid}", folder=tmp_path, before=[".report.html.pkmodel-lock"])
        for argv in (["fit", "-o", tmp_path / "f.nc"], ["analyze", "--out", tmp_path / "out"]):
            lock = _held_lock(Path(argv[-1]))
            try:
                code, out, err = run(capsys, *argv, "--draws", "10")
                assert code == 2 and "being written by another pkmodel run" in err
            finally:
                lock.kill()
                lock.wait()
    finally:
        holder.kill()
        holder.wait()
    # a lock whose process no longer runs is taken over
    code, out, err = run(capsys, "report", exposure_fit, "-o", target)
    assert code == 0 and target.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".report")) == []


def test_concurrent_runs_on_one_output_one_succeeds_the_other_fails(tmp_path, exposure_fit):
    target = tmp_path / "report.html"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pkmodel.cli.main", "report", str(exposure_fit), "-o",
           str(target)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    assert ("being written by another pkmodel run" in loser[2]
            or "already exists" in loser[2]) and "Traceback" not in loser[2]
    assert target.read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


class _FakePopulationFit:
    """What `pkmodel pk fit` needs of a fit, without sampling (for the command line's own
    logic: outputs, printing, progress)."""

    def __init__(self, data, spec, chains=4, **_):
        self.data, self.spec, self.chains = data, spec, chains

    def save(self, path, force=False):
        Path(path).write_bytes(b"a fit")

    def summary(self, ci_prob=0.9):
        import pandas as pd

        one = self.chains == 1
        nan = float("nan")
        return pd.DataFrame([
            {"parameter": "tv_cl", "unit": "L/day", "mean": 60.0, "sd": 5.0, "median": 60.0,
             "lower": 50.0, "upper": 70.0, "ess_bulk": 300.0, "ess_tail": 280.0,
             "r_hat": nan if one else 1.001},
            {"parameter": "tv_ka", "unit": "1/day", "mean": 30.0, "sd": 0.0, "median": 30.0,
             "lower": 30.0, "upper": 30.0, "ess_bulk": nan, "ess_tail": nan, "r_hat": nan}])

    def to_dict(self, ci_prob):
        return {"structure": "1-compartment", "n_subjects": self.data.n_subjects,
                "n_observations": self.data.n_observations, "n_below_lloq": 0,
                "notes": list(self.data.notes),
                "summary": self.summary(ci_prob).to_dict("records"), "shrinkage": {},
                "diagnostics": {}}

    @property
    def notes(self):
        return tuple(self.data.notes)

    diagnostics = "diagnostics (fake)"
    converged = True


@pytest.fixture
def fake_population_fit(monkeypatch):
    import pkmodel.pk.population as population

    seen = {}

    def fake(data, spec, **kwargs):
        seen.update(kwargs)
        return _FakePopulationFit(data, spec, **kwargs)

    monkeypatch.setattr(population, "fit_population", fake)
    return seen


def test_ctrl_c_while_drawing_figures_writes_nothing(tmp_path, capsys, monkeypatch,
                                                     fake_population_fit):
    import pkmodel.plots.population as figures

    previous = tmp_path / "p.nc"
    previous.write_bytes(b"the previous fit")

    def interrupted(fit):
        raise KeyboardInterrupt

    monkeypatch.setattr(figures, "plot_goodness_of_fit", interrupted)
    code, _out, err = run(capsys, "pk", "fit", THEO, "--spec", THEO_SPEC, "-o", previous,
                         "--gof", tmp_path / "gof.png", "--force")
    assert code == 130 and "no output was written" in err and "Traceback" not in err
    assert previous.read_bytes() == b"the previous fit"  # the fit was not written either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.nc"]


def test_one_chain_is_not_printed_as_fixed(tmp_path, capsys, fake_population_fit):
    code, out, err = run(capsys, "pk", "fit", THEO, "--spec", THEO_SPEC, "-o",
                         tmp_path / "p.nc", "--chains", "1")
    assert code == 0, err
    cl = next(line for line in out.splitlines() if line.strip().startswith("tv_cl"))
    ka = next(line for line in out.splitlines() if line.strip().startswith("tv_ka"))
    assert "fixed" not in cl and "n/a" in cl and " 50 " in cl and " 70 " in cl
    assert "fixed" in ka and "n/a" not in ka  # a fixed value still says so


def test_a_toml_with_a_byte_order_mark_is_read(tmp_path, capsys, fake_population_fit):
    spec = tmp_path / "bom.toml"
    spec.write_bytes(b"\xef\xbb\xbf" + THEO_SPEC.read_bytes())
    code, _out, err = run(capsys, "pk", "fit", THEO, "--spec", spec, "-o", tmp_path / "p.nc")
    assert code == 0, err


def test_a_note_of_the_data_is_printed_once(tmp_path, capsys, fake_population_fit):
    data = pd.read_csv(THEO, dtype=str)
    for sid in ("1", "2", "3"):  # the weight changes within three subjects
        rows = data.index[data["ID"] == sid]
        data.loc[rows[-3:], "WT"] = str(float(data.loc[rows[0], "WT"]) + 5)
    path = tmp_path / "theo.csv"
    data.to_csv(path, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(THEO_SPEC.read_text(encoding="utf-8") + '\n[[covariates]]\nparameter = '
                    '"cl"\ncovariate = "WT"\neffect = "power"\nreference = 70\n',
                    encoding="utf-8")
    code, out, err = run(capsys, "pk", "fit", path, "--spec", spec, "-o", tmp_path / "p.nc")
    assert code == 0, err
    text = out + err
    assert text.count("changes within") == 1, text
    assert "changes within 3 subject(s) (ID 1, 2, 3)" in text


def test_progress_bar_at_a_terminal_phases_otherwise(tmp_path, capsys, monkeypatch,
                                                     fake_population_fit):
    argv = ["pk", "fit", THEO, "--spec", THEO_SPEC, "-o", tmp_path / "a.nc"]
    code, _out, err = run(capsys, *argv)  # captured: not a terminal
    assert code == 0 and fake_population_fit["progressbar"] is False
    assert "pkmodel: fitting a 1-compartment" in err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _out, err = run(capsys, *argv[:-1], tmp_path / "b.nc")
    assert code == 0 and fake_population_fit["progressbar"] is True
    assert "pkmodel: fitting" not in err  # the sampler's bar, not the phases


# --------------------------------------------------------------------------- checked values
def test_a_cohort_in_pounds_is_refused_naming_the_column(tmp_path, capsys):
    frame = pd.read_csv(ROOT / "pkmodel" / "data" / "ungar2019_reconstructed.csv")
    frame["weight_kg"] = (frame["weight_kg"] * 2.20462).round(1)  # every value < 300
    assert frame["weight_kg"].max() < 300
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False)
    for command in (["describe", path], ["fit", path, "-o", tmp_path / "f.nc", "--exposure"]):
        code, out, err = run(capsys, *command)
        _refused(code, out, err, "weight_kg", "pounds", "divide pounds by 2.20462",
                 folder=tmp_path, before=["cohort.csv"])


def test_recommend_refuses_an_unknown_covariate(exposure_fit, capsys):
    code, out, err = run(capsys, "recommend", exposure_fit, "--weight", "70", "--covariate",
                         "albumine=40")
    _refused(code, out, err, "'albumine'", "immunomodulator", "--covariate")
    code, out, err = run(capsys, "recommend", exposure_fit, "--weight", "70", "--covariate",
                         "immunomodulator=3")
    _refused(code, out, err, "immunomodulator must be 0 (no) or 1")


def test_a_fit_without_its_checksum_loads_with_a_warning(exposure_fit, tmp_path, capsys):
    import xarray as xr

    with xr.open_datatree(exposure_fit, engine="h5netcdf") as opened:
        tree = opened.load()
    del tree.attrs["pkmodel_checksum"]
    path = tmp_path / "nochecksum.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    code, _out, err = run(capsys, "threshold", path)
    assert code == 0
    assert "has no checksum, so damage to it cannot be detected" in err
    with pytest.warns(pkmodel.errors.PkmodelWarning, match="no checksum"):
        pkmodel.load_fit(path)


def test_a_threshold_beyond_the_fitted_tls_is_marked(exposure_fit, capsys):
    code, out, _err = run(capsys, "threshold", exposure_fit, "--p-min", "0.15", "--json")
    assert code == 0
    rows = json.loads(out)["thresholds"]
    lo, hi = rows[0]["fitted_tl_min"], rows[0]["fitted_tl_max"]
    for r in rows:
        values = [v for v in (r["tl_futile"], r["tl_cross_median"]) if v is not None]
        assert r["extrapolated"] == any(not lo <= v <= hi for v in values)
    assert any(r["extrapolated"] for r in rows)  # the case shows it
    code, text, _ = run(capsys, "threshold", exposure_fit, "--p-min", "0.15")
    assert "(extrapolation)" in text and f"span {lo:g}-{hi:g} µg/mL" in text


def test_plausibility_median_check_leaves_real_cohorts_alone():
    from pkmodel.data.plausibility import implausible_value

    rng = np.random.default_rng(0)
    assert implausible_value("weight_kg", rng.normal(75, 20, 500).clip(35, 200)) is None
    found = implausible_value("weight_kg", rng.normal(75, 15, 50) * 2.20462)
    assert found is not None and "pounds" in found[1]


def test_population_draws_need_the_exposure_model_and_a_positive_count(tmp_path, capsys):
    out = tmp_path / "fit.nc"
    _refused(*run(capsys, "fit", "ungar2019", "--population-draws", 3, "-o", out),
             "--population-draws", "add --exposure", folder=tmp_path)
    _refused(*run(capsys, "fit", "ungar2019", "--exposure", "--population-draws", 0, "-o", out),
             "population draws must be a positive integer", folder=tmp_path)
