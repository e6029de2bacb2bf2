"""The shared input layer (pkmodel.tables): one reader, one row locator, numbers read as numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pkmodel
from pkmodel.response.design import build_design
from pkmodel.tables import blank_mask, numeric_if_numbers


# ------------------------------------------------------------ numbers outside the schema
def test_a_column_of_numbers_outside_the_schema_is_read_as_numbers(tmp_path, tidy_frame):
    frame = tidy_frame.copy()
    frame["score"] = ["1.5", "1.5", "2", "2", " 7 ", " 7 ", "3e1", "3e1"]
    frame["visits"] = ["3", "3", "4", "4", "5", "5", "6", "6"]
    frame["site"] = ["north", "north", "south", "south", "north", "north", "east", "east"]
    frame["code"] = ["10", "10", "10a", "10a", "11", "11", "12", "12"]  # one text: all text
    frame["dose_note"] = ["4,5", "4,5", "5", "5", "5", "5", "5", "5"]  # a decimal comma is text
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False)
    for source in (path, frame):
        data = pkmodel.read_cohort(source).data
        assert data["score"].dtype == float and data["visits"].dtype == np.int64
        assert data.groupby("patient_id")["score"].first().tolist() == [1.5, 2.0, 7.0, 30.0]
        for text in ("site", "code", "dose_note"):
            assert not pd.api.types.is_numeric_dtype(data[text])
            assert isinstance(data[text].iloc[0], str)
    cohort = pkmodel.read_cohort(path)
    design = build_design(cohort, ("score", "visits", "site"), "center", None)
    score, visits, site = design.encodings
    assert score.kind == "numeric" and score.mean == pytest.approx(np.mean([1.5, 2, 7, 30]))
    assert visits.kind == "numeric" and visits.columns == ("visits",)
    assert site.kind == "categorical" and site.levels == ("east", "north", "south")
    assert design.covariate_columns == ("score", "visits", "site[north]", "site[south]")
    np.testing.assert_allclose(design.z[:, 0], (np.array([1.5, 2, 7, 30]) - score.mean)
                               / score.sd)


def test_numeric_if_numbers_keeps_text_blank_and_typed_columns():
    blank_six = pd.Series(["6", "", "NA", "12.5"])
    assert np.isnan(numeric_if_numbers(blank_six)[1:3]).all()
    assert numeric_if_numbers(blank_six)[[0, 3]].tolist() == [6.0, 12.5]
    for same in (["6", "x"], ["", " "], ["1", "inf"], ["yes", "no"]):
        assert numeric_if_numbers(pd.Series(same)).tolist() == same
    typed = pd.Series([True, False])
    assert numeric_if_numbers(typed) is typed
    assert blank_mask(pd.Series(["1", " ", "NA", ".", None, "null", "0"])).tolist() == [
        False, True, True, True, True, True, False]
