"""``pkmodel pk simulate`` and ``pkmodel pk forecast`` from the command line."""

from __future__ import annotations

import json

import pytest

from pkmodel.cli.main import main

DATASET = """ID,TIME,AMT,RATE,DV,EVID,MDV,CENS,WT,ALB
1,0,350,4200,.,1,1,0,70,3.9
1,14,350,4200,.,1,1,0,70,3.9
1,42,350,4200,.,1,1,0,70,3.9
1,98,.,.,3.1,0,0,0,70,3.9
1,98,350,4200,.,1,1,0,70,3.9
1,154,.,.,2.2,0,0,0,70,3.9
1,154,350,4200,.,1,1,0,70,3.9
1,210,.,.,0.4,0,0,1,70,3.9
"""


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_json_gives_steady_state_and_troughs(capsys):
    code, out, _ = run(capsys, "pk", "simulate", "--model", "fasanmade2009", "--regimen",
                       "10mg/kg q8w", "--regimen", "5 mg/kg q8w", "--weight", "70", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["model"] == "fasanmade2009" and "doi:" in payload["citation"]
    res = {r["regimen"]["label"]: r for r in payload["results"]}
    hi, lo = res["10 mg/kg q8w"], res["5 mg/kg q8w"]
    assert hi["steady_state_trough_ug_ml"] == pytest.approx(2 * lo["steady_state_trough_ug_ml"])
    assert lo["steady_state_trough_ug_ml"] == pytest.approx(2.3, abs=0.3)
    assert lo["troughs"][0]["week"] == 2.0 and payload["units"]["trough"] == "µg/mL"


def test_simulate_population_and_switch(capsys):
    code, out, _ = run(capsys, "pk", "simulate", "--model", "cd", "--regimen", "5mg/kg q4w",
                       "--switch-week", "30", "--n-patients", "500", "--random-seed", "3",
                       "--albumin-g-l", "35", "--immunomodulator", "--json")
    assert code == 0
    entry = json.loads(out)["results"][0]
    assert entry["switch"] == {"from": "5 mg/kg q8w", "at_week": 30.0}
    weeks = [t["week"] for t in entry["troughs"]]
    assert 30.0 in weeks and 34.0 in weeks and 22.0 in weeks
    pop = entry["population"]
    assert pop["n"] == 500 and pop["quantiles_ug_ml"]["q05"] < pop["quantiles_ug_ml"]["q95"]
    again = json.loads(run(capsys, "pk", "simulate", "--model", "cd", "--regimen", "5mg/kg q4w",
                           "--switch-week", "30", "--n-patients", "500", "--random-seed", "3",
                           "--albumin-g-l", "35", "--immunomodulator", "--json")[1])
    assert again["results"][0]["population"] == pop


def test_simulate_text_output(capsys):
    code, out, _ = run(capsys, "pk", "simulate", "--regimen", "standard")
    assert code == 0 and "5 mg/kg q8w" in out and "steady-state trough" in out


def test_forecast_json_from_a_nonmem_file(tmp_path, capsys):
    path = tmp_path / "patient.csv"
    path.write_text(DATASET, encoding="utf-8")
    code, out, _ = run(capsys, "pk", "forecast", str(path), "--regimen", "5mg/kg q8w",
                       "--regimen", "10mg/kg q4w", "--target", "5", "--random-seed", "1",
                       "--json")
    assert code == 0
    payload = json.loads(out)
    rows = {r["regimen"]: r for r in payload["forecast"]["regimens"]}
    assert set(rows) == {"5 mg/kg q8w", "10 mg/kg q4w"}
    for row in rows.values():
        assert row["lower_ug_ml"] <= row["median_ug_ml"] <= row["upper_ug_ml"]
        assert 0 <= row["p_trough_ge_target"] <= 1
    assert rows["10 mg/kg q4w"]["p_trough_ge_target"] > rows["5 mg/kg q8w"]["p_trough_ge_target"]
    assert payload["estimate"]["method"] == "map"
    assert payload["estimate"]["parameters"]["cl"]["unit"] == "L/day"
    code, out, _ = run(capsys, "pk", "forecast", str(path), "--random-seed", "1")
    assert code == 0 and "P(trough >= 5" in out


def test_bad_input_exits_2_with_one_message(tmp_path, capsys):
    code, _, err = run(capsys, "pk", "simulate", "--regimen", "ten mg q8w")
    assert code == 2 and "cannot read the regimen" in err and "Traceback" not in err
    code, _, err = run(capsys, "pk", "simulate", "--albumin-g-l", "3.8")
    assert code == 2 and "looks like g/dL" in err and "3.8 g/dL is 38 g/L" in err
    bad = tmp_path / "bad.csv"
    bad.write_text(DATASET.replace("1,98,.,.,3.1", "1,98,.,.,abc"), encoding="utf-8")
    code, _, err = run(capsys, "pk", "forecast", str(bad))
    assert code == 2 and "row 5" in err and "'DV'" in err
    code, _, err = run(capsys, "pk", "forecast", str(tmp_path / "none.csv"))
    assert code == 2 and "no such file" in err


def test_models_lists_every_model_with_population_covariates_and_reference(capsys):
    from pkmodel.pk import MODELS

    code, out, _ = run(capsys, "pk", "models", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    assert set(rows) == set(MODELS) and len(rows) >= 6
    assert rows["fasanmade2011"]["covariates"]["albumin_g_dl"] == "g/dL"
    assert all("doi:" in r["citation"] and r["population"] for r in rows.values())
    code, out, _ = run(capsys, "pk", "models")
    assert code == 0 and "aubourg2015" in out and "doi:10.1208/s12248-017-0082-8" in out


def _slipped(text: str, column: str) -> str:
    """The dataset with one unit slipped: AMT in mg/kg, DV in ng/mL or TIME (and RATE) in hours."""
    scale = {"AMT": {"AMT": 1 / 70, "RATE": 1 / 70}, "DV": {"DV": 1000.0},
             "TIME": {"TIME": 24.0, "RATE": 1 / 24}}[column]
    lines = text.strip().splitlines()
    head = lines[0].split(",")
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        for name, factor in scale.items():
            i = head.index(name)
            if cells[i] != ".":
                cells[i] = f"{float(cells[i]) * factor:g}"
        out.append(",".join(cells))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(("column", "cause"), [("AMT", "AMT in mg/kg"), ("DV", "DV in ng/mL"),
                                               ("TIME", "TIME in hours")])
def test_a_unit_slip_is_flagged_with_its_fix_and_strict_refuses_it(tmp_path, capsys, column,
                                                                    cause):
    path = tmp_path / "slip.csv"
    text = DATASET.replace("1,210,.,.,0.4,0,0,1", "1,210,.,.,2.0,0,0,0")  # no censoring
    path.write_text(_slipped(text, column), encoding="utf-8")
    code, out, err = run(capsys, "pk", "forecast", str(path), "--json")
    assert code == 0 and cause in err and "Traceback" not in err
    payload = json.loads(out)
    assert payload["estimate"]["diagnostics"]["plausibility"]["likely_cause"] == cause
    assert any(cause in w for w in payload["warnings"])
    code, out, err = run(capsys, "pk", "forecast", str(path), "--strict")
    assert code == 2 and cause in err and out == ""
    good = tmp_path / "good.csv"
    good.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "pk", "forecast", str(good), "--strict", "--json")
    assert code == 0 and json.loads(out)["warnings"] == []


def test_forecast_is_the_same_on_every_run_by_default(tmp_path, capsys):
    path = tmp_path / "patient.csv"
    path.write_text(DATASET, encoding="utf-8")
    first = run(capsys, "pk", "forecast", str(path), "--json")[1]
    second = run(capsys, "pk", "forecast", str(path), "--json")[1]
    assert first == second
    other = run(capsys, "pk", "forecast", str(path), "--json", "--seed", "7")[1]
    assert json.loads(other)["forecast"] != json.loads(first)["forecast"]


def test_forecast_averages_models_and_reports_their_weights(tmp_path, capsys):
    path = tmp_path / "patient.csv"
    path.write_text(DATASET, encoding="utf-8")
    code, out, _ = run(capsys, "pk", "forecast", str(path), "--model", "fasanmade2009",
                       "--model", "wojciechowski2017", "--json")
    assert code == 0
    payload = json.loads(out)
    weights = payload["forecast"]["model_weights"]
    assert set(weights) == {"fasanmade2009", "wojciechowski2017"}
    assert sum(weights.values()) == pytest.approx(1.0)
    code, out, _ = run(capsys, "pk", "forecast", str(path), "--model", "average")
    assert code == 0 and "posterior model weights" in out and "aubourg2015" in out
    code, _, err = run(capsys, "pk", "forecast", str(path), "--model", "uc", "--model", "cd",
                       "--method", "nuts")
    assert code == 2 and "method map" in err
