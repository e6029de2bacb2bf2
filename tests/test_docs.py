"""The documentation site builds with warnings as errors, with its API pages and notebooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sphinx_site_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="the docs tools come with the dev extra")
    out = tmp_path / "html"
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-5000:]
    for page in ("index", "getting_started", "data_format", "model", "thresholds", "pk", "api"):
        assert (out / f"{page}.html").exists(), page
    assert "Tidy format" in (out / "data_format.html").read_text(encoding="utf-8")
    api = (out / "api" / "generated" / "pkmodel.RemissionFit.html").read_text(encoding="utf-8")
    assert "futility_threshold" in api
    # equations are math the site renders, not ASCII in code blocks
    for page in ("model", "exposure", "pk", "population_pk"):
        html = (out / f"{page}.html").read_text(encoding="utf-8")
        assert '<div class="math' in html, f"{page}: no rendered display equation"
        assert "logit P(remission_ij)" not in html and "C_ss,trough" not in html, page
    population = (out / "population_pk.html").read_text(encoding="utf-8")
    for name in ("theophylline_gof.png", "theophylline_pcvpc.png"):
        assert f"_images/{name}" in population and (out / "_images" / name).exists()
    assert (out / "_static" / "pkmodel.css").exists()  # tables scroll within the page
    pk = (out / "pk.html").read_text(encoding="utf-8")
    # one heading, not two (a second would get the anchor ...-1)
    assert 'id="individual-bayesian-estimation"' in pk
    assert 'id="individual-bayesian-estimation-1"' not in pk
    for page in out.glob("*.html"):
        assert "first cut of issue" not in page.read_text(encoding="utf-8"), page.name
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        page = (out / "notebooks" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert "<img" in page, f"{nb.name}: rendered without its stored figures"


def test_readme_links_work_on_a_package_index():
    """A package index shows README.md without the repository: no relative links."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    relative = re.findall(r"\]\((?!https?://|#)([^)]+)\)", text)
    assert not relative, f"relative links in README.md: {relative}"
