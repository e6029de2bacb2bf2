"""Random malformed cohorts: the reader ends in a CohortError or a valid cohort, nothing else."""

from __future__ import annotations

import string

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pkmodel
from pkmodel import CohortError
from pkmodel.data.plausibility import plausible_ranges

BASE = pd.DataFrame({
    "patient_id": ["A", "A", "B", "B", "C"],
    "center": ["x", "x", "y", "y", "x"],
    "month": ["6", "12", "6", "12", "6"],
    "remission": ["1", "0", "0", "0", "1"],
    "baseline_tl": ["4.2", "4.2", ">16", ">16", "7"],
    "ati": ["0", "0", "0", "0", "0"],
    "strategy": ["dose_escalation"] * 2 + ["interval_shortening"] * 2 + ["dose_escalation"],
    "weight_kg": ["70", "70", "55.5", "55.5", "80"],
})

CELLS = st.one_of(
    st.sampled_from(["", "NA", "nan", "inf", "-inf", "-1", "0", "1e308", "1e-320", ">16",
                     "<0.4", ">=3", "< ", ">abc", "1,5", "٣", "yes", "no", "2", "-0", "6.0",
                     "12.5", "None", "\t", '"', "x;y", "CD", "uc", "F"]),
    st.text(alphabet=string.printable + "µé€", max_size=6),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
)


@st.composite
def malformed(draw):
    frame = BASE.copy()
    for _ in range(draw(st.integers(1, 4))):
        row = draw(st.integers(0, len(frame) - 1))
        col = draw(st.sampled_from(list(frame.columns)))
        frame.loc[row, col] = draw(CELLS)
    action = draw(st.sampled_from(["none", "drop_column", "extra_column", "duplicate_row",
                                   "rename_column"]))
    if action == "drop_column":
        frame = frame.drop(columns=draw(st.sampled_from(list(frame.columns))))
    elif action == "extra_column":
        frame["extra"] = draw(CELLS)
    elif action == "duplicate_row":
        frame = pd.concat([frame, frame.iloc[[draw(st.integers(0, len(frame) - 1))]]],
                          ignore_index=True)
    elif action == "rename_column":
        old = draw(st.sampled_from(list(frame.columns)))
        frame = frame.rename(columns={old: old.upper() + draw(st.sampled_from(["", " ", "_x"]))})
    return frame


def check_valid(cohort) -> None:
    d = cohort.data
    assert len(d) > 0
    assert set(d["remission"].unique()) <= {0, 1}
    assert np.isfinite(d["baseline_tl"]).all() and (d["baseline_tl"] > 0).all()
    assert set(d["tl_cens"].unique()) <= {-1, 0, 1}
    assert not d.duplicated(["patient_id", "month"]).any()
    for name, r in plausible_ranges().items():  # no unit slip gets through
        if name in d.columns:
            values = d[name].dropna()
            assert ((values >= r.low) & (values <= r.high)).all(), name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=malformed(), as_file=st.booleans(), sep=st.sampled_from([",", ";", "\t"]))
def test_random_malformed_cohorts(tmp_path_factory, frame, as_file, sep):
    source = frame
    if as_file:
        path = tmp_path_factory.mktemp("c") / "cohort.csv"
        frame.to_csv(path, index=False, sep=sep)
        source = path
    try:
        cohort = pkmodel.read_cohort(source, min_tl_ug_ml=None)
    except CohortError as exc:
        message = str(exc)
        assert message and "Traceback" not in message
        # every error says where (file/frame) and, when it is about a cell, which column
        assert ("cohort.csv" in message) if as_file else ("DataFrame" in message)
        return
    check_valid(cohort)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=200))
def test_random_bytes_never_escape_as_foreign_errors(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("b") / "cohort.csv"
    path.write_bytes(raw)
    try:
        pkmodel.read_cohort(path)
    except CohortError:
        pass
