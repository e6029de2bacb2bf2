"""The cohort reader: formats, censoring, exclusions and every validation error."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import pkmodel
from pkmodel import CohortError


def write(tmp_path, frame: pd.DataFrame, name="cohort.csv", **kwargs):
    path = tmp_path / name
    frame.to_csv(path, index=False, **kwargs)
    return path


def test_reads_csv_parquet_and_frame_alike(tmp_path, tidy_frame):
    from_frame = pkmodel.read_cohort(tidy_frame)
    from_csv = pkmodel.read_cohort(write(tmp_path, tidy_frame))
    parquet = tmp_path / "c.parquet"
    tidy_frame.to_parquet(parquet)
    from_parquet = pkmodel.read_cohort(parquet)
    for c in (from_csv, from_parquet):
        pd.testing.assert_frame_equal(c.data, from_frame.data)
        assert c.content_hash == from_frame.content_hash
    assert from_frame.n_patients == 4 and len(from_frame) == 8


def test_censored_strings_become_limit_and_code(tidy_frame):
    frame = tidy_frame.copy()
    frame.loc[frame.patient_id == "P1", "baseline_tl"] = "< 3.5"
    c = pkmodel.read_cohort(frame, min_tl_ug_ml=None)
    p = c.patients.set_index("patient_id")
    assert p.loc["P3", "baseline_tl"] == 16.0 and p.loc["P3", "tl_cens"] == -1
    assert p.loc["P1", "baseline_tl"] == 3.5 and p.loc["P1", "tl_cens"] == 1
    assert p.loc["P2", "tl_cens"] == 0


def test_explicit_tl_cens_column_is_used_and_checked(tidy_frame):
    frame = tidy_frame.copy()
    frame["tl_cens"] = "0"
    frame.loc[frame.patient_id == "P3", "tl_cens"] = "-1"
    frame.loc[frame.patient_id == "P3", "baseline_tl"] = "16"
    c = pkmodel.read_cohort(frame)
    assert c.patients.set_index("patient_id").loc["P3", "tl_cens"] == -1
    frame.loc[frame.patient_id == "P3", "baseline_tl"] = ">16"
    frame.loc[frame.patient_id == "P3", "tl_cens"] = "1"
    with pytest.raises(CohortError, match=r"index 4.*'tl_cens'.*must agree|make them agree"):
        pkmodel.read_cohort(frame)


def test_wide_table_is_converted(tmp_path):
    wide = pd.DataFrame({
        "patient_id": ["A", "B"], "center": ["x", "x"], "baseline_tl": ["5", ">16"],
        "ati": [0, 0], "strategy": ["Dose escalation", "interval-shortening"],
        "remission_6m": ["1", ""], "remission_12m": ["0", "0"],
    })
    c = pkmodel.read_cohort(write(tmp_path, wide))
    assert c.months == (6, 12)
    assert c.strategies == ("dose_escalation", "interval_shortening")
    assert len(c) == 3 and c.dropped["missing_remission_rows"] == 1
    a = c.data[c.data.patient_id == "A"].set_index("month")["remission"]
    assert a.to_dict() == {6: 1, 12: 0}


def test_exclusions_are_counted_and_switchable(tidy_frame):
    frame = tidy_frame.copy()
    frame.loc[frame.patient_id == "P1", "ati"] = "1"
    frame.loc[frame.patient_id == "P2", "baseline_tl"] = "2.4"
    c = pkmodel.read_cohort(frame)
    assert c.n_patients == 2
    assert c.dropped["ati_positive_patients"] == 1 and c.dropped["tl_below_min_patients"] == 1
    everyone = pkmodel.read_cohort(frame, exclude_ati_positive=False, min_tl_ug_ml=None)
    assert everyone.n_patients == 4


def test_missing_remission_is_dropped_and_counted_not_guessed(tidy_frame):
    frame = tidy_frame.copy()
    frame.loc[1, "remission"] = "NA"
    c = pkmodel.read_cohort(frame)
    assert len(c) == 7 and c.dropped["missing_remission_rows"] == 1


# --------------------------------------------------------------------------- errors
def check(tmp_path, frame, *patterns, **kwargs):
    path = write(tmp_path, frame)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CohortError) as info:
        pkmodel.read_cohort(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    for pattern in patterns:
        assert pattern in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    return message


def test_missing_required_column(tmp_path, tidy_frame):
    check(tmp_path, tidy_frame.drop(columns="ati"), "row 1", "column 'ati'", "fill it with 0")
    check(tmp_path, tidy_frame.drop(columns="month"), "column 'month'", "remission_<N>m")


def test_non_numeric_tl(tmp_path, tidy_frame):
    f = tidy_frame.copy()
    f.loc[3, "baseline_tl"] = "high"
    check(tmp_path, f, "row 5", "column 'baseline_tl'", "'high' is not a trough level", "µg/mL")


@pytest.mark.parametrize("value", ["0", "-2.5", "inf"])
def test_non_positive_or_infinite_tl(tmp_path, tidy_frame, value):
    f = tidy_frame.copy()
    f.loc[2, "baseline_tl"] = value
    f.loc[3, "baseline_tl"] = value
    check(tmp_path, f, "row 4", "column 'baseline_tl'", "positive finite")


def test_remission_not_binary(tmp_path, tidy_frame):
    f = tidy_frame.copy()
    f.loc[6, "remission"] = "2"
    check(tmp_path, f, "row 8", "column 'remission'", "'2' is not 0 or 1", "1 for yes")


def test_unknown_censoring_code(tmp_path, tidy_frame):
    f = tidy_frame.copy()
    f["tl_cens"] = "0"
    f.loc[[4, 5], "tl_cens"] = "2"
    check(tmp_path, f, "row 6", "column 'tl_cens'", "'2' is not a censoring code", "-1")


def test_duplicate_patient_month(tmp_path, tidy_frame):
    f = pd.concat([tidy_frame, tidy_frame.iloc[[2]]], ignore_index=True)
    check(tmp_path, f, "row 10", "column 'month'", "patient 'P2' has two rows for month 6")


def test_inconsistent_baseline(tmp_path, tidy_frame):
    f = tidy_frame.copy()
    f.loc[3, "weight_kg"] = "99"
    check(tmp_path, f, "row 5", "column 'weight_kg'", "patient 'P2'", "same value on every row")
    f = tidy_frame.copy()
    f.loc[5, "strategy"] = "interval_shortening"
    check(tmp_path, f, "row 7", "column 'strategy'", "baseline value")


def test_empty_and_header_only(tmp_path, tidy_frame):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CohortError, match="empty"):
        pkmodel.read_cohort(empty)
    header = tmp_path / "header.csv"
    header.write_text(",".join(tidy_frame.columns) + "\n")
    with pytest.raises(CohortError, match="header but no data rows"):
        pkmodel.read_cohort(header)


def test_wrong_delimiter(tmp_path, tidy_frame):
    path = tmp_path / "semi.csv"
    tidy_frame.to_csv(path, index=False, sep=";")
    with pytest.raises(CohortError, match=r"row 1.*delimited by ';'.*sep=';'"):
        pkmodel.read_cohort(path)
    assert pkmodel.read_cohort(path, sep=";").n_patients == 4


def test_not_utf8(tmp_path, tidy_frame):
    path = tmp_path / "latin.csv"
    f = tidy_frame.copy()
    f["center"] = "Hôpital"
    f.to_csv(path, index=False, encoding="utf-16")
    with pytest.raises(CohortError, match="not UTF-8"):
        pkmodel.read_cohort(path)


def test_ragged_rows(tmp_path, tidy_frame):
    path = write(tmp_path, tidy_frame)
    with open(path, "a") as fh:
        fh.write("P9,a,6,1,4,0,dose_escalation,70,extra,fields\n")
    with pytest.raises(CohortError, match=r"row 10.*different numbers of fields"):
        pkmodel.read_cohort(path)


def test_bad_categorical_and_month(tmp_path, tidy_frame):
    f = tidy_frame.copy()
    f["disease"] = "CD"
    f.loc[0, "disease"] = "IBS"
    f.loc[1, "disease"] = "IBS"
    check(tmp_path, f, "row 2", "column 'disease'", "CD, UC")
    f = tidy_frame.copy()
    f.loc[0, "month"] = "6.5"
    check(tmp_path, f, "row 2", "column 'month'", "positive whole number")


def test_missing_required_value(tmp_path, tidy_frame):
    f = tidy_frame.copy()
    f.loc[2, "center"] = ""
    check(tmp_path, f, "row 4", "column 'center'", "missing")


def test_frame_rows_are_named_by_index(tidy_frame):
    f = tidy_frame.copy()
    f.index = [f"r{i}" for i in range(len(f))]
    f.loc["r3", "remission"] = "yes please"
    with pytest.raises(CohortError, match=r"<DataFrame>, row index 'r3', column 'remission'"):
        pkmodel.read_cohort(f)


def test_nothing_left_after_exclusions(tidy_frame):
    f = tidy_frame.copy()
    f["ati"] = "1"
    with pytest.raises(CohortError, match="no rows are left"):
        pkmodel.read_cohort(f)


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(CohortError, match="no such file"):
        pkmodel.read_cohort(tmp_path / "nope.csv")
    with pytest.raises(CohortError, match="cannot read a cohort from a list"):
        pkmodel.read_cohort([1, 2])


def test_describe_counts(tidy_frame):
    s = pkmodel.read_cohort(tidy_frame).describe()
    rem = s.remission.set_index("month")
    assert rem.loc[6, "remitters"] == 2 and rem.loc[12, "remitters"] == 1
    tl = s.tl_by_outcome.set_index(["month", "outcome"])
    assert tl.loc[(12, "active"), "n"] == 3
    assert np.isclose(tl.loc[(12, "active"), "tl_median_ug_ml"], 9.5)
    assert tl.loc[(12, "active"), "n_above_limit"] == 1
    assert "Cohort" in str(s) and s.to_dict()["n_patients"] == 4



# ------------------------------------------------------- implausible values and silent slips
def test_trough_beyond_the_plausible_maximum_names_the_ng_ml_slip(tmp_path, tidy_frame):
    from pkmodel.data.plausibility import TL_MAX_UG_ML

    f = tidy_frame.copy()
    f.loc[[2, 3], "baseline_tl"] = "1000000"
    check(tmp_path, f, "row 4", "column 'baseline_tl'", "1000000 µg/mL", f"{TL_MAX_UG_ML:g} µg/mL",
          "ng/mL", "divide ng/mL by 1000")
    f.loc[[2, 3], "baseline_tl"] = ">5000"  # an assay limit is a value too
    check(tmp_path, f, "row 4", "column 'baseline_tl'", "5000", "ng/mL")
    f.loc[[2, 3], "baseline_tl"] = f"{TL_MAX_UG_ML:g}"  # the maximum itself is accepted
    assert pkmodel.read_cohort(f).data["baseline_tl"].max() == TL_MAX_UG_ML
    # read_patients validates exactly as read_cohort does
    with pytest.raises(CohortError, match=r"index 0, column 'baseline_tl'.*ng/mL"):
        pkmodel.data.readers.read_patients(
            pd.DataFrame({"baseline_tl": ["5000"], "strategy": ["dose_escalation"]}))


@pytest.mark.parametrize("value, slip, fix", [
    ("500", "looks like pounds", "500 lb is 227 kg"),
    ("70000", "looks like grams", "70000 g is 70 kg"),
    ("0.5", "below the plausible minimum of 10 kg", "write body weight in kg"),
])
def test_weight_outside_the_pk_layers_range_names_the_unit_slip(tmp_path, tidy_frame, value, slip,
                                                                 fix):
    from pkmodel.pk.models import COVARIATES

    f = tidy_frame.copy()
    f.loc[[4, 5], "weight_kg"] = value
    message = check(tmp_path, f, "row 6", "column 'weight_kg'", f"{value} kg", slip, fix)
    bound = COVARIATES["weight_kg"]["high" if float(value) > 1 else "low"]
    assert f"{bound:g} kg" in message  # one definition: the PK layer's range


def test_albumin_in_g_dl_is_refused_like_the_population_tables_do(tmp_path, tidy_frame):
    from pkmodel.scenarios.populations import population_from_table

    f = tidy_frame.copy()
    f["albumin_g_l"] = "40"
    f.loc[[6, 7], "albumin_g_l"] = "3.9"
    message = check(tmp_path, f, "row 8", "column 'albumin_g_l'", "3.9 g/L", "looks like g/dL",
                    "multiply g/dL by 10", "39 g/L")
    # the same check, and so the same words, for a population table of the scenarios
    with pytest.raises(CohortError) as info:
        population_from_table(pd.DataFrame({"weight_kg": [70, 70], "albumin_g_l": [40, 3.9]}))
    assert str(info.value).split(": ", 1)[1] == message.split(": ", 1)[1]
    f.loc[[6, 7], "albumin_g_l"] = "600"  # µmol/L
    check(tmp_path, f, "row 8", "column 'albumin_g_l'", "above the plausible maximum of 70 g/L",
          "µmol/L")


def test_strategy_one_letter_off_another_is_a_warning_naming_both(tidy_frame):
    from pkmodel.errors import CohortWarning

    f = pd.concat([tidy_frame] * 3, ignore_index=True)
    f["patient_id"] = [f"{p}-{i // 8}" for i, p in enumerate(f["patient_id"])]
    f.loc[[20, 21], "strategy"] = "dose_escalaton"  # both rows of patient P3-2
    with pytest.warns(CohortWarning) as record:
        cohort = pkmodel.read_cohort(f)
    assert len(record) == 1
    message = str(record[0].message)
    for part in ("row index 20", "column 'strategy'", "'dose_escalaton' (1 patient)",
                 "very like 'dose_escalation' (5 patients)", "dose_escalation 5",
                 "dose_escalaton 1", "interval_shortening 6", "write 'dose_escalation'"):
        assert part in message, message
    assert "dose_escalaton" in cohort.strategies  # read as written: a warning, not a change
    with warnings.catch_warnings():
        warnings.simplefilter("error", pkmodel.CohortWarning)
        pkmodel.read_cohort(tidy_frame)  # distinct strategies: no warning
        pkmodel.load_ungar2019()


def test_a_repeated_column_name_is_refused_naming_both_columns(tmp_path, tidy_frame):
    f = tidy_frame.copy()
    f.insert(3, "weight_kg ", f.pop("weight_kg"))
    f["weight_kg"] = "80"  # pandas would silently rename this one 'weight_kg.1'
    message = check(tmp_path, f, "row 1", "column 'weight_kg'", "names this column twice",
                    "'weight_kg ' (column 4, D)", "'weight_kg' (column 9, I)")
    assert "weight_kg.1" not in message
    # a trailing delimiter (one blank name) is still harmless
    path = write(tmp_path, tidy_frame)
    path.write_text("\n".join(line + "," for line in path.read_text().splitlines()) + "\n")
    assert pkmodel.read_cohort(path).n_patients == 4


def test_decimal_commas_are_named_with_the_fix(tmp_path, tidy_frame):
    f = tidy_frame.copy()
    f.loc[[2, 3], "baseline_tl"] = "4,5"
    check(tmp_path, f, "row 4", "column 'baseline_tl'", "'4,5' has a decimal comma", "write 4.5",
          "export the table with '.' as the decimal separator")
    f = tidy_frame.copy()
    f.loc[[2, 3], "weight_kg"] = "70,5"
    path = write(tmp_path, f, name="semicolon.csv", sep=";")
    with pytest.raises(CohortError, match=r"row 4, column 'weight_kg': '70,5' has a decimal comma"
                       r".*write 70.5"):
        pkmodel.read_cohort(path, sep=";")
    f.loc[[2, 3], "weight_kg"] = "1,500"
    check(tmp_path, f, "row 4", "thousands separator", "1.500", "1500")
    # unquoted in a comma-separated file, every row gets one field more than the header: pandas
    # made the first column an index, and a ValueError escaped
    path = tmp_path / "split.csv"
    path.write_text("patient_id,center,month,remission,baseline_tl,ati,strategy\n"
                    "P1,a,6,1,4,5,0,dose_escalation\nP2,a,6,0,9,5,0,dose_escalation\n")
    with pytest.raises(CohortError, match=r"row 2: this row has 8 fields but the header only 7 "
                       r"names.*decimal comma \(4,5\)"):
        pkmodel.read_cohort(path)


def test_data_readme_states_the_plausible_ranges_of_the_code():
    from pathlib import Path

    from pkmodel.data.plausibility import plausible_ranges

    text = (Path(__file__).resolve().parents[2] / "data" / "README.md").read_text("utf-8")
    rows = {m.group(1): m.group(2) for m in
            re.finditer(r"^\| `(\w+)` \| [^|]*\| [^|]*\| ([^|]*) \|", text, flags=re.MULTILINE)}
    for name, r in plausible_ranges().items():
        allowed = rows[name]
        if r.low > 0:
            assert f"{r.low:g} to {r.high:g}" in allowed, (name, allowed)
        else:
            assert f"<= {r.high:g}" in allowed, (name, allowed)
