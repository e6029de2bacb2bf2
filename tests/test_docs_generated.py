"""The docs' numbers come from the code: generated blocks are current, code blocks run."""

from __future__ import annotations

import importlib.util
import re
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def generator():
    """docs/generate.py as a module."""
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_generate"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "docs").glob("*.md")))
def test_generated_blocks_are_current(page):
    gen = generator()
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    names = [m.group("name") for m in gen.PATTERN.finditer(text)]
    assert set(names) <= set(gen.BLOCKS), page
    assert gen.render(text) == text, (
        f"docs/{page} is stale: run `.venv/bin/python docs/generate.py`")


def test_every_generator_has_a_block():
    gen = generator()
    used = {m.group("name") for p in (ROOT / "docs").glob("*.md")
            for m in gen.PATTERN.finditer(p.read_text(encoding="utf-8"))}
    assert used == set(gen.BLOCKS)


def test_the_code_blocks_of_the_pk_page_run():
    text = (ROOT / "docs" / "pk.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 2
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in blocks:  # in order, in one namespace, as a reader would run them
            exec(compile(block, "docs/pk.md", "exec"), namespace)
    assert set(namespace["avg"].weights) >= {"fasanmade2009", "aubourg2015"}
    assert namespace["est"].covariate_history.last() == {"weight_kg": 55.0, "albumin_g_dl": 4.2}
    iov = namespace["est_iov"]  # the comments of the inter-occasion variability example
    assert iov.occasions.starts_days.tolist() == [0.0, 14.0, 42.0, 98.0, 154.0]
    assert iov.kappa_draws.shape == (1000, 5, 1)


def test_the_code_blocks_of_the_exposure_page_run():
    import pkmodel

    text = (ROOT / "docs" / "exposure.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/exposure.md", "exec"), namespace)
    b = namespace["b"]
    assert list(b.index) == ["b_base", "b_gain"] and (b["lower"] < b["upper"]).all()
    assert set(namespace["loo"].index) == {"exposure", "strategy"}
    assert namespace["verdict"] in {*namespace["per_regimen"]["regimen"],
                                    "intensification futile at these settings"}
    assert 0.0 <= namespace["value_of_tdm"] <= 1.0
    assert namespace["rec"].disclaimer == pkmodel.DISCLAIMER


def test_the_code_block_of_the_data_format_page_runs():
    import numpy as np

    text = (ROOT / "docs" / "data_format.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], "docs/data_format.md", "exec"), namespace)
    schedule = namespace["schedule"]
    np.testing.assert_allclose(schedule.times_days * 24, [0, 12, 24, 30, 60])
    assert schedule.routes == ("oral", "oral", "oral", "bolus", "oral")
    np.testing.assert_allclose(schedule.reset_days * 24, [60])
    np.testing.assert_allclose(schedule.ss_intervals_days * 24, [0, 0, 0, 0, 12])
