"""``pkmodel pk import-nonmem`` and ``pkmodel pk export-nonmem`` from the command line."""

from __future__ import annotations

from pkmodel.cli.main import main
from pkmodel.pk.population import read_spec

RUN = """\
$PROBLEM one compartment, IV boluses
$INPUT ID TIME AMT DV EVID MDV WT
$DATA data.csv IGNORE=@
$SUBROUTINE ADVAN1 TRANS2
$PK
TVCL = THETA(1)*(WT/70)**THETA(3)
CL = TVCL*EXP(ETA(1))
V = THETA(2)
S1 = V
$ERROR
Y = F + F*EPS(1)
$THETA (0, 0.3) (0, 3) 0.75
$OMEGA 0.09
$SIGMA 0.04
"""


def test_import_writes_the_specification_and_export_writes_it_back(tmp_path, capsys):
    run = tmp_path / "run.mod"
    run.write_text(RUN, encoding="utf-8")
    spec_path = tmp_path / "spec.toml"
    assert main(["pk", "import-nonmem", str(run), "-o", str(spec_path), "--time-unit",
                 "day"]) == 0
    spec = read_spec(spec_path)
    assert spec.time_unit == "day" and spec.covariates[0].prior_mean == 0.75
    assert "--time-unit" in spec_path.read_text(encoding="utf-8")
    assert main(["pk", "import-nonmem", str(run), "-o", str(spec_path)]) == 2  # no --force
    assert "already exists" in capsys.readouterr().err
    assert main(["pk", "export-nonmem", str(spec_path)]) == 0  # printed
    out = capsys.readouterr().out
    assert out.startswith("$PROBLEM") and "TVCL = TVCL*(WT/70.0)**THETA(2)" in out
    back = tmp_path / "back.mod"
    assert main(["pk", "export-nonmem", str(spec_path), "-o", str(back)]) == 0
    again = tmp_path / "again.toml"
    assert main(["pk", "import-nonmem", str(back), "-o", str(again)]) == 0
    assert read_spec(again) == spec


def test_a_refused_control_stream_writes_nothing_and_names_the_line(tmp_path, capsys):
    run = tmp_path / "run.mod"
    run.write_text(RUN.replace("ADVAN1 TRANS2", "ADVAN6 TOL=5"), encoding="utf-8")
    out = tmp_path / "spec.toml"
    assert main(["pk", "import-nonmem", str(run), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"file {run}, line 4: $SUBROUTINE ADVAN6 TOL=5: pkmodel reads ADVAN1" in err
    assert "Traceback" not in err and not out.exists()


def test_export_of_iov_needs_occasions_and_writes_one_eta_per_occasion(tmp_path, capsys):
    spec_path = tmp_path / "iov.toml"
    spec_path.write_text('[model]\ncompartments = 1\ndosing = "bolus"\n[data]\n'
                         'time_unit = "hour"\noccasion = "VISIT"\n[parameters.cl]\ntypical = 0.5\n'
                         'bsv = true\niov = true\n[parameters.v]\ntypical = 5\n',
                         encoding="utf-8")
    run = tmp_path / "run.mod"
    assert main(["pk", "export-nonmem", str(spec_path), "-o", str(run)]) == 2
    err = capsys.readouterr().err
    assert "inter-occasion variability of cl" in err and "--occasions K" in err
    assert "Traceback" not in err and not run.exists()
    assert main(["pk", "export-nonmem", str(spec_path), "-o", str(run), "--occasions",
                 "2"]) == 0
    text = run.read_text(encoding="utf-8")
    assert "$INPUT ID TIME AMT DV EVID MDV VISIT" in text
    assert "IF(VISIT.EQ.2) IOVCL = ETA(3)" in text and "$OMEGA BLOCK(1) SAME" in text
    back = tmp_path / "back.toml"
    assert main(["pk", "import-nonmem", str(run), "-o", str(back)]) == 0
    assert read_spec(back) == read_spec(spec_path)
