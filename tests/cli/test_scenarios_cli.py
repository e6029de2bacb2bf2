"""``pkmodel scenarios`` on a small real fit: JSON deterministic for a seed, plot, refusals."""

from __future__ import annotations

import json
import re

import pytest

from pkmodel.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fit_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenarios") / "fit.nc"
    code = main(["fit", "-o", str(path), "--draws", "150", "--tune", "150", "--chains", "2",
                 "--seed", "5", "--json"])
    assert code == 0
    return path


def test_scenarios_json_is_deterministic_and_plot_is_written(capsys, fit_path, tmp_path):
    capsys.readouterr()
    argv = ["scenarios", str(fit_path), "--regimens", "10mg/kg q8w", "5mg/kg q4w",
            "--n-patients", "3000", "--seed", "7", "--json", "--chunk-size", "1000"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    first = json.loads(out)
    code, out, _ = run(capsys, *argv[:-2], "--chunk-size", "3000")
    assert code == 0
    again = json.loads(out)  # another chunking: the same numbers up to summation order
    for a, b in zip(first["summary"], again["summary"], strict=True):
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
            else:
                assert b[key] == value, key
    assert first["settings"]["random_seed"] == 7 and first["settings"]["n_simulated"] == 3000
    assert [m["strategy"] for m in first["regimen_strategy"]] == ["dose_escalation",
                                                                  "interval_shortening"]
    rows = [r for r in first["summary"] if r["band"] == "all" and r["month"] == 12]
    assert len(rows) == 2 and all(0 < r["remission_rate_mean"] < 1 for r in rows)
    assert rows[0]["nnt"] is None  # the reference regimen
    code, out2, _ = run(capsys, *argv)
    assert code == 0 and json.loads(out2) == first  # same seed and chunking: identical JSON
    plot = tmp_path / "scen.png"
    code, out, _ = run(capsys, "scenarios", str(fit_path), "--regimens", "5mg/kg q6w",
                       "--n-patients", "500", "--seed", "1", "--plot", str(plot))
    assert code == 0 and plot.stat().st_size > 10_000
    assert "5 mg/kg q6w -> interval_shortening (fitted cohort)" in out
    code, _, _ = run(capsys, "scenarios", str(fit_path), "--regimens", "5mg/kg q6w",
                     "--n-patients", "500", "--plot", str(plot))
    assert code == 2  # refuses to overwrite without --force


def test_scenarios_refuses_an_unmapped_regimen_unless_mapped(capsys, fit_path):
    code, out, err = run(capsys, "scenarios", str(fit_path), "--regimens", "10mg/kg q4w",
                         "--n-patients", "100", "--seed", "1")
    assert code == 2 and out == ""
    assert "10 mg/kg q4w was not given" in err and "strategy_map" in err
    code, out, err = run(capsys, "scenarios", str(fit_path), "--regimens", "10mg/kg q4w",
                         "--n-patients", "200", "--seed", "1", "--json",
                         "--map", "10mg/kg q4w=interval_shortening")
    assert code == 0
    assert json.loads(out)["regimen_strategy"][0]["basis"] == "explicit"
    code, _, err = run(capsys, "scenarios", str(fit_path), "--regimens", "10mg/kg q8w",
                       "--map", "nonsense")
    assert code == 2 and "REGIMEN=STRATEGY" in err


@pytest.mark.parametrize(("options", "message"), [
    (["--n-patients", "1000000000"], "more than one command runs"),
    (["--n-patients", "0"], "--n-patients must be at least 1"),
    (["--min-tl", "-1"], "--min-tl must be 0"),
    (["--posterior-draws", "100000"], "more than the fit has (300 posterior draws)"),
    (["--posterior-draws", "0"], "--posterior-draws must be at least 1"),
    (["--chunk-size", "0"], "--chunk-size must be at least 1"),
    (["--p-min", "1.5"], "--p-min must be strictly between 0 and 1"),
])
def test_scenarios_refuses_out_of_range_options(capsys, fit_path, options, message):
    code, out, err = run(capsys, "scenarios", str(fit_path), "--regimens", "10mg/kg q8w",
                         *options)
    assert code == 2 and out == "" and message in err and "Traceback" not in err
    if "1000000000" in options:
        assert "dask.distributed" in err and "--seed" in err  # how to go beyond


def test_scenarios_text_empty_bands_units_and_nnt_interval(capsys, fit_path):
    argv = ["scenarios", str(fit_path), "--regimens", "10mg/kg q8w", "5mg/kg q4w",
            "--n-patients", "300", "--seed", "2", "--bands", "5", "100", "200"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "nan" not in out
    assert "WARNING: RECONSTRUCTED cohort" in out
    assert "100-200 µg/mL (n=      0): no patients in this band" in out
    assert "3-5 µg/mL" in out and "all bands" in out
    nnt = [line for line in out.splitlines() if "NNT" in line and "5 mg/kg q4w" in line]
    assert nnt and all(re.search(r"NNT -?\d+\.\d (\[-?\d+\.\d, -?\d+\.\d\]|\(interval "
                                 r"includes no difference\))", line) for line in nnt)
    code, out, _ = run(capsys, *argv, "--json")
    payload = json.loads(out)
    assert code == 0 and payload["data_origin"]["reconstructed"]
    assert isinstance(payload["convergence"]["passed"], bool)
    assert isinstance(payload["convergence"]["failed_checks"], list)
    assert payload["tl_units"] == "µg/mL"


def test_scenarios_run_on_a_dask_distributed_scheduler(capsys, fit_path):
    distributed = pytest.importorskip("distributed")
    argv = ["scenarios", str(fit_path), "--regimen", "10mg/kg q8w", "--regimen", "5mg/kg q4w",
            "--n-patients", "2000", "--seed", "3", "--chunk-size", "500", "--json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    local = json.loads(out)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        code, out, _ = run(capsys, *argv, "--dask-scheduler", cluster.scheduler_address)
    assert code == 0
    remote = json.loads(out)
    for a, b in zip(local["summary"], remote["summary"], strict=True):
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
    code, _, err = run(capsys, *argv, "--dask-scheduler", "tcp://127.0.0.1:9")
    assert code == 2 and "cannot reach the dask scheduler" in err and "Traceback" not in err
