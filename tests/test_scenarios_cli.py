"""``pkmodel scenarios`` on a small real fit: JSON deterministic for a seed, plot, refusals."""

from __future__ import annotations

import json

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
