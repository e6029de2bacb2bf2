"""Shared fixtures."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def tidy_frame() -> pd.DataFrame:
    """A small valid tidy cohort as strings, as a CSV would give it."""
    rows = []
    for i, (tl, rem6, rem12, strat) in enumerate(
        [("4.1", 1, 1, "dose_escalation"), ("9.5", 0, 0, "interval_shortening"),
         (">16", 0, 0, "dose_escalation"), ("5.0", 1, 0, "interval_shortening")], start=1
    ):
        for month, rem in ((6, rem6), (12, rem12)):
            rows.append({"patient_id": f"P{i}", "center": "a" if i < 3 else "b", "month": month,
                         "remission": rem, "baseline_tl": tl, "ati": 0, "strategy": strat,
                         "weight_kg": 60 + i})
    return pd.DataFrame(rows).astype(str)


@pytest.fixture(autouse=True, scope="session")
def _model_cache(tmp_path_factory):
    """Compiled models go to a cache of the test session, not the user's (~/.cache/pkmodel)."""
    import os

    if "PKMODEL_CACHE_DIR" not in os.environ:
        os.environ["PKMODEL_CACHE_DIR"] = str(tmp_path_factory.mktemp("pkmodel_cache"))
    yield


@pytest.fixture(scope="session")
def exposure_fit(tmp_path_factory):
    """An exposure-driven fit of the shipped cohort (2 chains x 500 draws, seed 1), saved by
    ``pkmodel fit --exposure``: the path."""
    import warnings

    from pkmodel.cli.main import main

    path = tmp_path_factory.mktemp("exposure") / "exposure.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["fit", "-o", str(path), "--exposure", "--seed", "1", "--chains", "2",
                     "--draws", "500", "--tune", "500", "--json"])
    assert code == 0
    return path
