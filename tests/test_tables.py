"""The shared input layer (pkmodel.tables): one reader, one row locator, numbers read as numbers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import pkmodel
from pkmodel.errors import CohortError, CohortWarning, PKDataError
from pkmodel.pk import read_nonmem
from pkmodel.response.design import build_design
from pkmodel.scenarios.populations import population_from_table
from pkmodel.tables import (
    RowLocator,
    blank_mask,
    decimal_comma,
    numeric_if_numbers,
    read_table,
)


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


# ------------------------------------------------------------ one locator for three readers
def _three_tables(tidy_frame):
    """The same bad cell, '70,5' as a weight at data row 3 (position 2), in each reader's table."""
    cohort = tidy_frame.copy()
    cohort.loc[2, "weight_kg"] = "70,5"
    pk = pd.DataFrame([r.split(",") for r in PK_ROWS], columns=PK_HEADER.split(","))
    pk.loc[2, "WT"] = "70,5"
    population = pd.DataFrame({"weight_kg": ["70", "80", "70,5", "60"],
                               "albumin_g_l": ["40"] * 4, "sex": ["F", "M", "F", "M"]})
    return {"weight_kg": (pkmodel.read_cohort, cohort), "WT": (read_nonmem, pk),
            "weight_kg ": (population_from_table, population)}


PK_HEADER = "ID,TIME,AMT,RATE,DV,EVID,MDV,WT"
PK_ROWS = ["1,0,350,4200,.,1,1,70", "1,14,350,4200,.,1,1,70", "1,42,350,4200,.,1,1,70",
           "1,56,.,.,3.1,0,0,70"]


@pytest.mark.parametrize("as_file", [True, False])
def test_one_locator_names_the_same_bad_cell_alike_in_all_three_readers(tmp_path, tidy_frame,
                                                                        as_file):
    message, fix = decimal_comma("70,5")
    for column, (reader, frame) in _three_tables(tidy_frame).items():
        column = column.strip()
        if as_file:
            path = tmp_path / f"{reader.__name__}.csv"
            frame.to_csv(path, index=False)  # the comma cell is quoted
            source, where = path, RowLocator(str(path))
        else:
            frame = frame.set_axis([f"r{i}" for i in range(len(frame))])
            source, where = frame, RowLocator("<DataFrame>", frame.index)
        with pytest.raises(CohortError) as info:
            reader(source)
        expected = where.error(message, 2, column, fix)
        assert str(info.value) == str(expected), reader.__name__
        place = f"file {path}, row 4" if as_file else "<DataFrame>, row index 'r2'"
        assert str(info.value).startswith(f"{place}, column '{column}': '70,5' has a decimal")
        assert (info.value.source, info.value.row, info.value.column) == (
            expected.source, expected.row, column)
        assert isinstance(info.value, PKDataError) == (reader is read_nonmem)


def test_the_three_readers_refuse_the_same_files_in_the_same_words(tmp_path, tidy_frame):
    tables = _three_tables(tidy_frame)
    missing = tmp_path / "missing.csv"
    not_utf8 = tmp_path / "latin.csv"
    not_utf8.write_bytes("weight_kg,WT,x\n70,70,Hôpital\n".encode("utf-16"))
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("weight_kg;WT;ID\n70;70;1\n")
    for column, (reader, frame) in tables.items():
        twice = tmp_path / "twice.csv"
        name = column.strip()
        other = name.lower() + " " if name.isupper() else name.upper()
        frame.assign(**{other: frame[name]}).to_csv(twice, index=False)
        messages = {}
        for kind, path in (("missing", missing), ("not_utf8", not_utf8), ("semi", semicolons),
                           ("twice", twice)):
            with pytest.raises(CohortError) as info:
                reader(path)
            messages[kind] = str(info.value)
        assert messages["missing"] == f"file {missing}: no such file. Fix: check the path"
        assert messages["not_utf8"].startswith(f"file {not_utf8}: the file is not UTF-8 text")
        assert messages["semi"].startswith(f"file {semicolons}, row 1: the header is one field; "
                                           "the file seems to be delimited by ';', not ','")
        assert re.search(rf"^file {re.escape(str(twice))}, row 1, column '{name}': the header "
                         rf"names this column twice: '{name}' \(column \d+, [A-Z]\) and "
                         rf"'{other}' \(column \d+, [A-Z]\)",
                         messages["twice"]), messages["twice"]


def test_the_locator_counts_the_header_as_row_1_and_names_frame_rows_by_label():
    assert RowLocator("c.csv").row(0) == 2 and RowLocator("c.csv").is_file
    where = RowLocator("<DataFrame>", pd.Index(["a", "b"]), error=PKDataError)
    assert where.row(1) == "index 'b'" and not where.is_file
    error = where.error("bad", 1, "DV", "fix it")
    assert isinstance(error, PKDataError)
    assert str(error) == "<DataFrame>, row index 'b', column 'DV': bad. Fix: fix it"
    assert str(where.header_error("missing", "ID")) == "<DataFrame>, row 1, column 'ID': missing"
    with pytest.warns(CohortWarning, match=r"^file c\.csv, row 3, column 'x': odd\. Fix: look$"):
        RowLocator("c.csv").warn("odd", 1, "x", "look", stacklevel=2)


def test_read_table_normalises_headers_and_keeps_cells_as_text(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("\ufeff Patient_ID \t#wt\n007\t70\n008\t\n", encoding="utf-8")
    table = read_table(path)
    assert list(table.frame.columns) == ["patient_id", "#wt"]
    assert table.frame["patient_id"].tolist() == ["007", "008"]
    assert table.frame["#wt"].tolist() == ["70", ""]
    assert table.is_file and table.source == str(path)
    upper = read_table(path, case="upper", strip_prefix="#", error=PKDataError)
    assert list(upper.frame.columns) == ["PATIENT_ID", "WT"]
    frame = pd.DataFrame({"A ": [1]}, index=[10])
    got = read_table(frame)
    assert list(got.frame.columns) == ["a"] and list(got.frame.index) == [0]
    assert got.where.row(0) == "index 10"
    with pytest.raises(PKDataError, match="cannot read a PK dataset from a list"):
        read_table([1], what="PK dataset", error=PKDataError)
