"""The HTML report: written by `pkmodel analyze` and `pkmodel report`, self-contained, atomic,
refusing to overwrite, and rendered by headless Chromium with every image loaded."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pkmodel.cli.main import main
from pkmodel.disclaimer import DISCLAIMER

FAST = ["--draws", "200", "--tune", "300", "--chains", "2", "--seed", "4"]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium"
                                        if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    """The README's main job on the shipped cohort, with few draws."""
    out = tmp_path_factory.mktemp("analyze") / "out"
    code = main(["analyze", "--out", str(out), "--json", *FAST])
    assert code == 0
    return out


def test_main_job_writes_the_report(analyzed, analyzed_fit, capsys):
    report = analyzed / "report.html"
    assert report.exists() and (analyzed / "fit.nc").exists()
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert html.escape(DISCLAIMER) in text  # the one disclaimer, in the notice and the footer
    assert "RECONSTRUCTED" in text and 'id="reconstructed"' in text
    for section in ("data", "model", "diagnostics", "curves", "thresholds", "checks"):
        assert f'<section id="{section}">' in text
    status = "PASS" if analyzed_fit.converged else "FAIL"  # the gate's verdict, not any
    assert f'id="diagnostics-status">{status}<' in text
    assert "Gamma(2, 5)" in text and "ZeroSumNormal(0.5)" in text and "Mann-Whitney" in text
    # what the data identify: 2 centres leave the between-centre SD to its prior
    assert 'id="structure-notes"' in text and "informed mostly by its prior" in text
    # self-contained: every image is inline, nothing is fetched from anywhere
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert len(sources) == 6 and all(s.startswith("data:image/png;base64,") for s in sources)
    for s in sources:
        assert base64.b64decode(s.split(",", 1)[1]).startswith(b"\x89PNG")
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert not list(analyzed.glob(".*.part"))  # atomic: no temporary file left behind
    capsys.readouterr()


def test_report_command_refuses_overwrite_and_forces(analyzed, tmp_path, capsys):
    target = tmp_path / "report.html"
    target.write_text("keep me")
    assert main(["report", str(analyzed / "fit.nc"), "-o", str(target)]) == 2
    assert "--force" in capsys.readouterr().err and target.read_text() == "keep me"
    assert main(["report", str(analyzed / "fit.nc"), "-o", str(target), "--force",
                 "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["output"] == str(target) and payload["bytes"] == target.stat().st_size
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE")
    assert not list(tmp_path.glob(".*.part"))
    assert main(["report", str(tmp_path / "missing.nc"), "-o", str(tmp_path / "x.html")]) == 2
    assert "no such fit file" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_disclaimer_without_reconstructed_notes():
    from types import SimpleNamespace

    from pkmodel.report.sections import disclaimer_section

    real = disclaimer_section(SimpleNamespace(cohort_notes=("from centre A, 2021",)))
    assert html.escape(DISCLAIMER) in real and "RECONSTRUCTED" not in real
    assert "from centre A, 2021" in real
    shipped = disclaimer_section(SimpleNamespace(cohort_notes=("RECONSTRUCTED cohort <x>",)))
    assert "RECONSTRUCTED" in shipped and "&lt;x&gt;" in shipped  # notes are escaped


_PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images", imgs.length);
  document.body.setAttribute("data-loaded", ok.length);
  document.body.setAttribute("data-widths", imgs.map(function (i) {
    return i.naturalWidth; }).join(","));
  document.body.setAttribute("data-h1", document.querySelector("h1").textContent);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian "
                    "package `chromium`; .ci/run installs it)")
def test_report_renders_in_headless_chromium(analyzed, tmp_path):
    text = (analyzed / "report.html").read_text(encoding="utf-8")
    n_images = text.count("<img ")
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--virtual-time-budget=10000"]
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([*flags, f"--user-data-dir={profile}", "--dump-dom",
                              probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'(data-[a-z0-9]+)="([^"]*)"', body.group(1)))
    assert int(attrs["data-images"]) == n_images == 6
    assert int(attrs["data-loaded"]) == n_images, attrs
    assert all(int(w) > 300 for w in attrs["data-widths"].split(","))
    assert attrs["data-h1"].startswith("pkmodel report")
    # and a screenshot of the page as a person would see it
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run([*flags, f"--user-data-dir={profile}", "--window-size=1200,1600",
                              f"--screenshot={shot}", (analyzed / "report.html").as_uri()],
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000


@pytest.fixture(scope="module")
def analyzed_fit(analyzed):
    import pkmodel

    return pkmodel.load_fit(analyzed / "fit.nc", warn=False)


def test_report_states_the_population_with_exclusion_counts(analyzed, analyzed_fit):
    text = (analyzed / "report.html").read_text(encoding="utf-8")
    assert 'id="population"' in text and 'id="remission-meaning"' in text
    # the shipped cohort: 48 patients read, none ATI-positive or below 3 µg/mL, one 6-month
    # assessment without a recorded remission
    assert "Read: 48 patients, 96 assessment rows." in text
    assert "Patients with antibodies to infliximab (ATI-positive): excluded, 0 patients." in text
    assert "Patients with baseline TL below 3 µg/mL: excluded, 0 patients." in text
    assert "Assessments without a recorded remission: dropped, 1 row" in text
    assert "Fitted: 48 patients, 95 assessments (month 6: 23 of 47 in remission" in text
    assert "clinical remission" in text and "neither defines nor checks" in text
    # the saved fit records the rules and the counts
    record = analyzed_fit.cohort_population
    assert record["exclusions"] == {"exclude_ati_positive": True, "min_tl_ug_ml": 3.0,
                                    "n_patients_read": 48, "n_rows_read": 96}
    assert record["dropped"] == {"missing_remission_rows": 1, "ati_positive_patients": 0,
                                 "tl_below_min_patients": 0}


def test_population_of_a_fit_saved_without_the_record(analyzed_fit):
    import dataclasses

    from pkmodel.report.sections import population_section

    old = dataclasses.replace(analyzed_fit, cohort_population={})
    text = population_section(old)
    assert "saved before pkmodel recorded the exclusions" in text
    assert "Fitted: 48 patients" in text and "excluded, 0 patients" not in text


def test_report_tables_use_readable_labels_and_whole_ess(analyzed):
    text = (analyzed / "report.html").read_text(encoding="utf-8")
    tables = "".join(re.findall(r"<table.*?</table>", text, flags=re.S))
    for internal in ("tl_q1_ug_ml", "tl_median_ug_ml", "auc_nonremission", "n_above_limit",
                     "ess_bulk", "p_cross_in_grid", "tl_cross_median"):
        assert internal not in tables, internal
    assert not re.search(r"\d\.\d+e[+-]\d\d", tables)  # no 2.84e+03
    assert "TL 1st quartile (µg/mL)" in tables and "bulk ESS" in tables
    assert "crossing TL, median (µg/mL)" in tables
    # ESS and the gate's checks as whole numbers
    assert re.search(r"<td>min bulk ESS</td><td>\d+</td>", tables)


def test_rank_plot_flags_are_reconciled_with_the_verdict(analyzed, analyzed_fit):
    from pkmodel.plots import rank_test
    from pkmodel.report import report_status
    from pkmodel.report.sections import diagnostics_section

    text = (analyzed / "report.html").read_text(encoding="utf-8")
    paragraph = re.search(r'<p id="rank-test">(.*?)</p>', text, flags=re.S).group(1)
    test = rank_test(analyzed_fit)
    assert len(test) and test.p_value.between(0, 1).all()
    flagged = list(test.parameter[test.flagged])
    badge = re.search(r'id="diagnostics-status">(\w+)<', text).group(1)
    assert badge == report_status(analyzed_fit).label
    if flagged:  # a flagged parameter never sits beside a plain PASS
        assert all(name in paragraph for name in flagged) and badge in ("CHECK", "FAIL")
    else:
        assert "flags no parameter" in paragraph and badge in ("PASS", "FAIL")
    # a fit that passes the gate with a flagged parameter: CHECK, naming it and what to do
    flagged_fit = _RankFlagged(analyzed_fit)
    section = diagnostics_section(flagged_fit)
    assert 'id="diagnostics-status">CHECK<' in section
    assert "chains disagree about sigma_patient" in section and "more draws" in section


class _RankFlagged:
    """A fit whose chains disagree about sigma_patient (one chain shifted by 3 SD), which still
    passes the gate (its diagnostics are the original fit's)."""

    def __init__(self, fit):
        self._fit = fit
        tree = fit.tree.copy(deep=True)
        post = tree["posterior"].to_dataset()
        sp = post["sigma_patient"].values.copy()
        sp[0] += 3 * sp.std()
        tree["posterior"] = post.assign(sigma_patient=(("chain", "draw"), sp))
        self.tree = tree

    def __getattr__(self, name):
        return getattr(self._fit, name)

    @property
    def diagnostics(self):
        import dataclasses

        return dataclasses.replace(self._fit.diagnostics, converged=True)


def test_the_diagnostics_section_states_the_gates_verdict_either_way(analyzed, analyzed_fit):
    """The verdict in the report is the fit's gate: a passing gate reads PASS with no problem
    listed, a failing one FAIL with each problem and its remedy (both checked, whichever way the
    few draws of the module's fit went)."""
    import dataclasses

    from pkmodel.report.sections import diagnostics_section, report_status

    text = (analyzed / "report.html").read_text(encoding="utf-8")
    d = analyzed_fit.diagnostics
    assert ("All checks of the convergence gate pass" in text) is d.converged
    assert ("The fit FAILS its convergence checks" in text) is (not d.converged)
    good = dataclasses.replace(d, converged=True, max_rhat=1.002, min_ess_bulk=1500.0,
                               min_ess_tail=1400.0, divergences=0, min_bfmi=0.9,
                               treedepth_fraction=0.0, tuning_steps=1000)
    bad = dataclasses.replace(good, converged=False, divergences=7)
    sections = {}
    for name, gate in (("good", good), ("bad", bad)):
        fit = dataclasses.replace(analyzed_fit, _diagnostics=gate)
        assert fit.converged is gate.converged
        sections[name] = diagnostics_section(fit)
    # a passing gate reads PASS, or CHECK where the rank test flags a parameter (report_status)
    expected = "CHECK" if report_status(analyzed_fit).flagged else "PASS"
    assert f'id="diagnostics-status">{expected}<' in sections["good"]
    assert "convergence gate pass" in sections["good"]
    assert "FAIL" not in sections["good"] and "<li>" not in sections["good"]
    assert 'id="diagnostics-status">FAIL<' in sections["bad"]
    assert "FAILS its convergence checks" in sections["bad"]
    assert "<li>7 divergent transitions: raise target_accept" in sections["bad"]


def test_reconstructed_banner_follows_the_data_origin_column(analyzed_fit):
    import dataclasses
    from types import SimpleNamespace

    import pandas as pd

    from pkmodel.report.sections import disclaimer_section, is_reconstructed
    from pkmodel.response.provenance import data_origin, fit_status

    # the shipped CSV read by its path: no notes, but every row says where it comes from
    by_path = dataclasses.replace(analyzed_fit, cohort_notes=())
    assert is_reconstructed(by_path)
    origin = data_origin(by_path)
    assert origin["data_origin"] == ["reconstructed_synthetic"]
    assert origin["source"] == ["data_origin column"]
    banner = disclaimer_section(by_path)
    assert 'id="reconstructed"' in banner and "data_origin = reconstructed_synthetic" in banner
    status = fit_status(by_path)
    assert status["data_origin"]["reconstructed"] and "RECONSTRUCTED" in status["warnings"][0]
    assert status["convergence"]["passed"] == analyzed_fit.diagnostics.converged
    # patient data: no banner
    real = SimpleNamespace(cohort_notes=(), cohort_data=pd.DataFrame(
        {"patient_id": ["a"], "data_origin": ["hospital_records"]}))
    assert not is_reconstructed(real) and "RECONSTRUCTED" not in disclaimer_section(real)


def test_one_chain_says_rhat_needs_two_chains():
    import numpy as np
    import xarray as xr

    from pkmodel.report.sections import checks_table
    from pkmodel.response.diagnostics import compute_diagnostics

    rng = np.random.default_rng(0)
    post = xr.Dataset({"alpha": (("chain", "draw"), rng.normal(size=(1, 800)))})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, 800), bool))})
    d = compute_diagnostics(post, stats, ["alpha"])
    assert d.n_chains == 1 and not d.converged
    problems = " ".join(d.problems())
    assert "R-hat needs two or more chains" in problems and "chains >= 2" in problems
    assert "R-hat nan" not in str(d) and "n/a (1 chain" in str(d)
    row = checks_table(d).iloc[0]
    assert row["check"] == "max R-hat" and row["value"].startswith("n/a") and row["ok"] == "NO"


def test_report_of_an_exposure_fit(exposure_fit, tmp_path, capsys):
    path = tmp_path / "exposure.html"
    code = main(["report", str(exposure_fit), "-o", str(path), "--p-min", "0.15"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert re.match(rf"wrote {re.escape(str(path))} \(diagnostics (PASS|CHECK|FAIL)", out)
    text = path.read_text(encoding="utf-8")
    # its own model, not the strategy model's formula
    assert "b<sub>gain</sub> log gain<sub>i</sub>" in text and "δ<sub>strategy" not in text
    assert "or_per_doubling" not in text
    # the calibration check predicted each fitted regimen through its exposure
    assert "calibration plot" in text
    # a crossing TL beyond the fitted TLs is marked as such
    assert 'id="extrapolation"' in text and "NO: extrapolation" in text
