"""Outputs of the command line: all or nothing, regular files only, inputs never overwritten,
problems refused before the work, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pkmodel.cli.main import main
from pkmodel.errors import OutputExistsError, OutputPathError
from pkmodel.files import check_writable, staged_outputs


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_writable_refuses_what_is_not_a_regular_file(tmp_path):
    regular = tmp_path / "a.txt"
    regular.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(regular)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((tmp_path, "a folder"), (link, "a symbolic link"),
                       (fifo, "a device, FIFO or socket"), (Path("/dev/null"), "device")):
        with pytest.raises(OutputPathError, match=kind):
            check_writable(path, force=True)
    with pytest.raises(OutputExistsError, match="--force"):
        check_writable(regular)
    assert check_writable(regular, force=True) == regular
    with pytest.raises(OutputPathError, match="is an input of this command"):
        check_writable(regular, force=True, inputs=[str(regular)])
    with pytest.raises(OutputPathError, match="is a file, so"):
        check_writable(regular / "under" / "out.nc")
    with pytest.raises(OutputPathError, match="does not exist"):
        check_writable(tmp_path / "missing" / "out.nc")
    assert regular.read_text() == "x" and link.is_symlink()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_probes_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match="cannot write in the folder"):
            check_writable(folder / "out.nc")
    finally:
        folder.chmod(0o700)


def test_staged_outputs_are_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), staged_outputs(out, ["a", "b"]) as staged:
        staged["a"].write_text("new a")
        raise KeyboardInterrupt
    assert not out.exists()  # no folder, no partial output
    assert [p.name for p in tmp_path.iterdir()] == []  # and no staging folder left
    with staged_outputs(out, ["a", "b"]) as staged:
        for name, path in staged.items():
            path.write_text(f"first {name}")
    with pytest.raises(OutputExistsError):
        with staged_outputs(out, ["a", "b"]):
            pass
    with pytest.raises(RuntimeError), staged_outputs(out, ["a", "b"], force=True) as staged:
        staged["a"].write_text("second a")
        raise RuntimeError("the work failed")
    assert (out / "a").read_text() == "first a" and (out / "b").read_text() == "first b"
    with staged_outputs(out, ["a", "b"], force=True) as staged:
        for name, path in staged.items():
            path.write_text(f"second {name}")
    assert (out / "a").read_text() == "second a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_interrupted_analyze_writes_nothing_and_keeps_previous_outputs(tmp_path, capsys,
                                                                     monkeypatch):
    import pkmodel.cli.response as response

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(response, "_fit_from_args", interrupted)
    out = tmp_path / "out"
    code, _, err = run(capsys, "analyze", "--out", str(out))
    assert code == 130 and "no output was written" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    out.mkdir()
    for name in ("fit.nc", "remission_curves.png", "report.html"):
        (out / name).write_text("previous")
    code, _, _ = run(capsys, "analyze", "--out", str(out), "--force")
    assert code == 130
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "fit.nc": "previous", "remission_curves.png": "previous", "report.html": "previous"}
    code, _, err = run(capsys, "analyze", "--out", str(out))  # refused at once, before work
    assert code == 2 and "already exists" in err
    under_file = tmp_path / "file"
    under_file.write_text("x")
    code, _, err = run(capsys, "analyze", "--out", str(under_file))
    assert code == 2 and "not a folder" in err and "Traceback" not in err


def test_commands_never_overwrite_their_own_input(tmp_path, capsys):
    import pkmodel

    cohort = tmp_path / "c.csv"
    pkmodel.load_ungar2019().data.to_csv(cohort, index=False)
    before = cohort.read_bytes()
    code, _, err = run(capsys, "fit", str(cohort), "-o", str(cohort), "--force")
    assert code == 2 and "is an input of this command" in err
    assert cohort.read_bytes() == before
    fit = tmp_path / "fit.nc"
    fit.write_bytes(b"not a fit, but an input")
    code, _, err = run(capsys, "report", str(fit), "-o", str(fit), "--force")
    assert code == 2 and "is an input of this command" in err
    assert fit.read_bytes() == b"not a fit, but an input"
    code, _, err = run(capsys, "curve", str(fit), "--plot", str(tmp_path / "p.xyz"))
    assert code == 2 and "cannot write a figure as .xyz" in err and "Traceback" not in err


def test_separators_are_checked_and_tab_has_a_name(tmp_path, capsys):
    code, _, err = run(capsys, "describe", "--sep", "")
    assert code == 2 and "not a delimiter" in err and "Traceback" not in err
    import pkmodel

    tsv = tmp_path / "c.tsv"
    pkmodel.load_ungar2019().data.to_csv(tsv, index=False, sep="\t")
    for sep in ("tab", "\\t"):
        code, out, err = run(capsys, "describe", str(tsv), "--sep", sep, "--json")
        assert code == 0 and json.loads(out) and "ParserWarning" not in err
    # NONMEM's whitespace-separated files: any run of blanks
    blank = tmp_path / "c.dta"
    pkmodel.load_ungar2019().data.to_csv(blank, index=False, sep=" ")
    blank.write_text(blank.read_text(encoding="utf-8").replace(" ", "   "), encoding="utf-8")
    code, out, err = run(capsys, "describe", str(blank), "--sep", "space", "--json")
    assert code == 0 and json.loads(out) and "ParserWarning" not in err


def test_a_closed_pipe_is_not_a_traceback():
    exe = Path(sys.executable).with_name("pkmodel")
    run = subprocess.run(f"'{exe}' describe --json | head -n 1", shell=True,
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "{" and "Traceback" not in run.stderr
    assert "BrokenPipe" not in run.stderr


def test_pk_group_alone_shows_its_own_help_and_one_dose_simulates(capsys):
    code, out, _ = run(capsys, "pk")
    assert code == 2 and "models" in out and "forecast" in out and "describe" not in out
    code, out, _ = run(capsys, "pk", "simulate", "--weeks", "1", "--json")
    assert code == 0
    result = json.loads(out)["results"][0]
    assert result["troughs"] == [] and result["steady_state_trough_ug_ml"] > 0


def test_the_shipped_example_dataset_forecasts(capsys):
    from pkmodel.pk import example_dataset

    data = example_dataset()
    assert data.ids == ["101", "102", "103"]
    assert data["102"].covariate_history is not None
    assert 1 in data["102"].observations.cens
    code, _, err = run(capsys, "pk", "forecast")
    assert code == 2 and "--id (101, 102, 103)" in err
    code, out, err = run(capsys, "pk", "forecast", "--id", "102", "--json")
    assert code == 0 and "SIMULATED example" in err
    payload = json.loads(out)
    assert payload["covariates_vary"] and payload["forecast"]["regimens"]


def test_integrate_tl_reaches_the_specification(tmp_path, capsys, monkeypatch):
    """``pkmodel fit --integrate-tl`` fits ``RemissionModel(integrate_tl=True)`` (the fit
    itself is tested in tests/response/test_response_model.py)."""
    from pkmodel.response import RemissionModel

    seen = []

    def fit(self, *args, **kwargs):
        seen.append(self)
        raise KeyboardInterrupt  # stop before sampling

    monkeypatch.setattr(RemissionModel, "fit", fit)
    code, _, _ = run(capsys, "fit", "-o", str(tmp_path / "fit.nc"), "--integrate-tl")
    assert code == 130 and seen and seen[0].integrate_tl
    assert not (tmp_path / "fit.nc").exists()
    code, _, _ = run(capsys, "fit", "-o", str(tmp_path / "fit.nc"))
    assert code == 130 and not seen[1].integrate_tl
