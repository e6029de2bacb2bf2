"""The HTML report: written by `pkmodel analyze` and `pkmodel report`, self-contained, atomic,
refusing to overwrite, and rendered by headless Chromium with every image loaded."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pkmodel.cli.main import main

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


def test_main_job_writes_the_report(analyzed, capsys):
    report = analyzed / "report.html"
    assert report.exists() and (analyzed / "fit.nc").exists()
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "research software, not for bedside decisions" in text
    assert "RECONSTRUCTED" in text and 'id="reconstructed"' in text
    for section in ("data", "model", "diagnostics", "curves", "thresholds", "checks"):
        assert f'<section id="{section}">' in text
    assert re.search(r'id="diagnostics-status">(PASS|FAIL)<', text)
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
    assert "not for bedside decisions" in real and "RECONSTRUCTED" not in real
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
