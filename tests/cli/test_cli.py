"""The command line: JSON outputs, exit codes, refusing to overwrite, the main job."""

from __future__ import annotations

import json
from pathlib import Path

import pkmodel
from pkmodel.cli.main import main

FAST = ["--draws", "200", "--tune", "200", "--chains", "2", "--seed", "3"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_describe_and_classical_json(capsys):
    code, out, _ = run(capsys, "describe", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["n_patients"] == 48 and any("RECONSTRUCTED" in n for n in d["notes"])
    code, out, _ = run(capsys, "classical", "--json")
    rows = json.loads(out)["classical"]
    assert code == 0 and [r["month"] for r in rows] == [6, 12]
    assert all(r["p_value"] < 0.01 for r in rows)


def test_describe_text_and_bad_file(capsys, tmp_path):
    code, out, _ = run(capsys, "describe")
    assert code == 0 and "RECONSTRUCTED" in out and "Remission by month" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id;center\nA;b\n")
    code, out, err = run(capsys, "describe", str(bad))
    assert code == 2 and out == ""
    assert "row 1" in err and "delimited by ';'" in err and "Traceback" not in err


SHIPPED_CSV = str(Path(pkmodel.__file__).parent / "data" / "ungar2019_reconstructed.csv")


def _assert_status(payload: dict) -> None:
    """Every JSON output of a fit carries the convergence verdict and the data's origin."""
    conv = payload["convergence"]
    assert isinstance(conv["passed"], bool) and isinstance(conv["failed_checks"], list)
    assert conv["passed"] == conv["diagnostics"]["converged"]
    assert conv["passed"] == (not conv["failed_checks"])
    # the shipped CSV read by its path: reconstructed, said by its data_origin column
    origin = payload["data_origin"]
    assert origin["reconstructed"] and origin["data_origin"] == ["reconstructed_synthetic"]
    assert "data_origin column" in origin["source"]
    assert any("RECONSTRUCTED" in w for w in payload["warnings"])


def test_fit_curve_threshold_roundtrip(capsys, tmp_path):
    fit_path = tmp_path / "fit.nc"
    code, out, err = run(capsys, "fit", SHIPPED_CSV, "-o", str(fit_path), "--json", *FAST)
    assert code == 0 and fit_path.exists()
    payload = json.loads(out)
    assert payload["random_seed"] == 3 and "max_rhat" in payload["diagnostics"]
    _assert_status(payload)
    # stderr is not a terminal here: one line per phase instead of a progress bar
    assert "pkmodel: fitting the remission model to 48 patients" in err
    assert "pkmodel: fitted in" in err
    code, out, _ = run(capsys, "fit", "-o", str(fit_path), *FAST)
    assert code == 2  # refuses to overwrite without --force
    code, out, _ = run(capsys, "threshold", str(fit_path), "--json", "--p-min", "0.25")
    payload = json.loads(out)
    rows = payload["thresholds"]
    assert code == 0 and len(rows) == 4 and rows[0]["p_min"] == 0.25
    _assert_status(payload)
    assert set(rows[0]) >= {"strategy", "month", "tl_futile", "tl_cross_median",
                            "tl_cross_lower", "tl_cross_upper", "credibility"}
    plot = tmp_path / "curve.png"
    code, out, _ = run(capsys, "curve", str(fit_path), "--json", "--month", "12",
                       "--strategy", "dose_escalation", "--plot", str(plot))
    payload = json.loads(out)
    curve = payload["curve"]
    assert code == 0 and plot.stat().st_size > 10_000
    _assert_status(payload)
    for command in ("curve", "threshold"):  # the text output warns first
        code, out, _ = run(capsys, command, str(fit_path))
        assert code == 0 and out.startswith("WARNING: RECONSTRUCTED cohort")
    assert {r["month"] for r in curve} == {12} and len(curve) == 200
    code, _, err = run(capsys, "curve", str(fit_path), "--level", "narnia")
    assert code == 2 and "narnia" in err
    code, _, err = run(capsys, "threshold", str(fit_path), "--strategy", "surgery")
    assert code == 2 and "unknown strategy" in err


def test_strict_exits_non_zero_on_failed_diagnostics(capsys, tmp_path):
    code, _, err = run(capsys, "fit", "-o", str(tmp_path / "f.nc"), "--draws", "30", "--tune",
                       "10", "--chains", "2", "--seed", "1", "--strict")
    assert code == 3 and "diagnostics FAIL" in err
    # Each problem comes with its remedy; far too little tuning is named first.
    assert "only 10 tuning steps per chain" in err and "use tune >= 300" in err
    assert "increase draws" in err


def test_main_job_writes_fit_and_plot(capsys, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = run(capsys, "analyze", "--out", str(out_dir), "--json", *FAST)
    assert code == 0
    payload = json.loads(out)
    assert "not a basis for bedside decisions" in payload["disclaimer"]
    assert {"cohort", "classical", "diagnostics", "summary", "thresholds"} <= set(payload)
    assert (out_dir / "fit.nc").exists() and (out_dir / "remission_curves.png").exists()
    code, _, err = run(capsys, "analyze", "--out", str(out_dir), *FAST)
    assert code == 2 and "--force" in err


def _cohort_csv(tmp_path, **cells):
    """A small valid cohort file; ``cells`` maps a column to its value on rows 4 and 5."""
    rows = ["patient_id,center,month,remission,baseline_tl,ati,strategy,weight_kg"]
    for i, tl in enumerate(["4.1", "9.5", "5.0", "7.2", "12", "3.6"]):
        strategy = "dose_escalation" if i < 3 else "interval_shortening"
        for month in (6, 12):
            row = {"patient_id": f"P{i}", "center": "a", "month": month,
                   "remission": (i + month) % 2, "baseline_tl": tl, "ati": 0,
                   "strategy": strategy, "weight_kg": 70}
            if i == 1:
                row.update(cells)
            rows.append(",".join(f'"{v}"' for v in row.values()))
    path = tmp_path / "cohort.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_implausible_values_exit_2_naming_row_column_and_value(capsys, tmp_path):
    cases = [({"baseline_tl": "1000000"}, "column 'baseline_tl'", "1000000 µg/mL", "ng/mL"),
             ({"weight_kg": "500"}, "column 'weight_kg'", "500 kg", "pounds"),
             ({"baseline_tl": "4,5"}, "column 'baseline_tl'", "'4,5' has a decimal comma",
              "write 4.5")]
    for cells, *parts in cases:
        path = _cohort_csv(tmp_path, **cells)
        before = sorted(p.name for p in tmp_path.iterdir())
        for command in ("describe", "classical"):
            code, out, err = run(capsys, command, str(path))
            assert code == 2 and out == "", err
            assert err.startswith(f"pkmodel: error: file {path}, row 4, "), err
            assert "Traceback" not in err
            for part in parts:
                assert part in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_repeated_column_exits_2_and_strategy_typo_warns(capsys, tmp_path):
    path = _cohort_csv(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",ati"] + [line + ',"0"' for line in lines[1:]]) + "\n")
    code, out, err = run(capsys, "describe", str(path))
    assert code == 2 and out == "" and "Traceback" not in err
    assert "row 1, column 'ati'" in err and "'ati' (column 6, F) and 'ati' (column 9, I)" in err
    path = _cohort_csv(tmp_path, strategy="dose_escalaton")
    code, out, err = run(capsys, "describe", str(path))
    assert code == 0 and "Cohort cohort.csv: 6 patients" in out
    assert err.startswith(f"pkmodel: warning: file {path}, row 4, column 'strategy': strategy "
                          "'dose_escalaton' (1 patient) is very like 'dose_escalation'"), err


def _options(parser) -> dict[str, tuple[str, ...]]:
    """Each option of a parser by its destination: its option strings."""
    return {a.dest: tuple(a.option_strings) for a in parser._actions if a.option_strings}


def test_both_fitting_commands_share_the_option_names():
    """`pkmodel fit` and `pkmodel pk fit` sample alike and are driven alike."""
    import argparse

    from pkmodel.cli.main import build_parser

    def sub(parser, *path):
        for name in path:
            action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = action.choices[name]
        return parser

    parser = build_parser()
    remission, population = _options(sub(parser, "fit")), _options(sub(parser, "pk", "fit"))
    shared = ("output", "force", "json", "strict", "cores", "draws", "tune", "chains",
              "target_accept")
    for dest in shared:
        assert dest in remission and dest in population, dest
        assert set(remission[dest]) <= set(population[dest]), dest  # pk fit keeps --out too
    assert "-o" in population["output"] and "--output" in population["output"]
    assert "--seed" in remission["seed"] and "--seed" in population["random_seed"]
    args = sub(parser, "pk", "fit").parse_args(["d.csv", "--spec", "s.toml", "--out", "x.nc",
                                                "--strict", "--cores", "2"])
    assert (args.output, args.strict, args.cores) == ("x.nc", True, 2)
