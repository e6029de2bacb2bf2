"""NONMEM-style PK dataset reader: conventions, censoring and validation errors."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pkmodel.errors import PKDataError, SpecificationError
from pkmodel.pk import read_nonmem

HEADER = "ID,TIME,AMT,RATE,DV,EVID,MDV,CENS,WT,ALB,ATI,SEX"
ROWS = [
    "1,0,350,4200,.,1,1,0,70,3.9,0,F",
    "1,14,350,4200,.,1,1,0,70,3.9,0,F",
    "1,42,350,4200,.,1,1,0,70,3.9,0,F",
    "1,98,.,.,3.1,0,0,0,70,3.9,0,F",
    "1,98,350,4200,.,1,1,0,70,3.9,0,F",
    "1,154,.,.,0.4,0,0,1,70,3.9,0,F",
    "2,0,800,9600,.,1,1,0,80,4.2,0,M",
    "2,56,.,.,16,0,0,-1,80,4.2,0,M",
]


def write(tmp_path, rows, header=HEADER, name="pk.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_reads_doses_observations_censoring_and_covariates(tmp_path):
    data = read_nonmem(write(tmp_path, ROWS))
    assert data.ids == ["1", "2"]
    one = data["1"]
    np.testing.assert_allclose(one.schedule.times_days, [0, 14, 42, 98])
    np.testing.assert_allclose(one.schedule.durations_days, 350 / 4200)
    assert not one.schedule.per_kg
    np.testing.assert_allclose(one.observations.values_ug_ml, [3.1, 0.4])
    assert one.observations.cens.tolist() == [0, 1]
    assert one.covariates == {"weight_kg": 70, "albumin_g_dl": 3.9, "ati": 0, "female": 1}
    two = data["2"]
    assert two.observations.cens.tolist() == [-1] and two.observations.upper[0] == np.inf
    assert two.covariates["female"] == 0


def test_hours_blq_column_lloq_and_default_infusion(tmp_path):
    rows = ["7,0,350,.,.,1,1,0,70", "7,1344,.,.,0.3,0,0,1,70"]
    data = read_nonmem(write(tmp_path, rows, header="ID,TIME,AMT,RATE,DV,EVID,MDV,BLQ,WT")
                       .with_suffix(".csv"), time_unit="hour")
    s = data["7"]
    np.testing.assert_allclose(s.schedule.durations_days, 2 / 24)
    assert s.observations.times_days[0] == pytest.approx(56)
    frame = pd.DataFrame({"ID": [7, 7], "TIME": [0, 56], "AMT": [350, None], "DV": [None, None],
                          "EVID": [1, 0], "BLQ": [0, 1], "LLOQ": [None, 0.3]})
    obs = read_nonmem(frame)["7"].observations
    assert obs.values_ug_ml.tolist() == [0.3] and obs.cens.tolist() == [1]


def test_limit_gives_an_interval(tmp_path):
    rows = ["1,0,350,4200,.,1,1,0,.", "1,56,.,.,1,0,0,1,0.5"]
    obs = read_nonmem(write(tmp_path, rows, header="ID,TIME,AMT,RATE,DV,EVID,MDV,CENS,LIMIT"))[
        "1"].observations
    assert obs.lower.tolist() == [0.5] and obs.upper.tolist() == [1.0]


@pytest.mark.parametrize(("change", "where", "fix"), [
    (lambda r: [r[0].replace(",350,", ",abc,"), *r[1:]], r"row 2, column 'AMT'", "number"),
    (lambda r: [r[0].replace(",350,", ",0,"), *r[1:]], r"row 2, column 'AMT'", "mg"),
    (lambda r: [*r[:3], r[3].replace(",3.1,", ",.,"), *r[4:]], r"row 5, column 'DV'", "LLOQ"),
    (lambda r: [*r[:3], r[3].replace(",0,0,0,", ",5,0,0,"), *r[4:]], r"row 5, column 'EVID'",
     "1 for a dose"),
    (lambda r: [*r[:3], r[3].replace(",0,0,0,70", ",0,0,2,70"), *r[4:]],
     r"row 5, column 'CENS'", "0 \\(observed\\)"),
    (lambda r: [r[1], r[0], *r[2:]], r"row 3, column 'TIME'", "sort"),
    (lambda r: [*r[:3], r[3].replace(",3.9,", ",39,"), *r[4:]], r"row 5, column 'ALB'",
     "g/dL"),
    (lambda r: [*r[:3], r[3].replace(",F", ",M"), *r[4:]], r"row 5, column 'SEX'",
     "same SEX on every row"),
    (lambda r: [*r[:3], r[3].replace(",70,", ",400,"), *r[4:]], r"row 5, column 'WT'",
     "weight in kg"),
    (lambda r: [r[0].replace(",F", ",X"), *r[1:]], r"row 2, column 'SEX'", "number"),
    (lambda r: [*r[:3], r[3].replace(",3.1,", ",-2,"), *r[4:]], r"row 5, column 'DV'", "CENS"),
    (lambda r: [r[0].replace("1,0,", "1,-3,", 1), *r[1:]], r"row 2, column 'TIME'", ">= 0"),
    (lambda r: [*r[:6], "3,5,.,.,2,0,0,0,70,4,0,F"], r"column 'EVID'", "add the patient"),
    (lambda r: [r[0].replace(",4200,", ",-1,"), *r[1:]], r"row 2, column 'RATE'", "DUR"),
])
def test_errors_name_file_row_column_and_fix(tmp_path, change, where, fix):
    path = write(tmp_path, change(list(ROWS)))
    with pytest.raises(PKDataError, match=where) as info:
        read_nonmem(path)
    assert str(path) in str(info.value) and "Fix:" in str(info.value)
    assert re.search(fix, str(info.value))


def test_file_level_errors(tmp_path):
    with pytest.raises(PKDataError, match="no such file"):
        read_nonmem(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(PKDataError, match="empty"):
        read_nonmem(empty)
    with pytest.raises(PKDataError, match=r"row 1, column 'TIME'.*missing"):
        read_nonmem(write(tmp_path, ["1,350,4200,."], header="ID,AMT,RATE,DV"))
    semi = write(tmp_path, ["1;0;350;4200;.;1"], header="ID;TIME;AMT;RATE;DV;EVID")
    with pytest.raises(PKDataError, match="';'"):
        read_nonmem(semi)
    with pytest.raises(PKDataError, match="no ID '9'"):
        read_nonmem(write(tmp_path, ROWS))["9"]


_cell = st.one_of(st.sampled_from(["", ".", "x", "-1", "0", "1", "2", "nan", "1e309", "3.5",
                                   "NA", ">16", "1,2"]), st.text(max_size=4))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.integers(0, len(ROWS) - 1), col=st.integers(0, 11), value=_cell)
def test_random_malformed_cells_give_pkdataerror_or_a_valid_dataset(tmp_path, row, col, value):
    rows = [r.split(",") for r in ROWS]
    rows[row][col] = value.replace("\n", " ").replace("\r", " ").replace('"', "")
    path = tmp_path / "fuzz.csv"
    path.write_text("\n".join([HEADER, *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")
    try:
        data = read_nonmem(path)
    except PKDataError:
        return
    for sid in data.ids:
        s = data[sid]
        assert np.all(np.isfinite(s.schedule.times_days)) and np.all(s.schedule.amounts > 0)


_ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]
_SEPARATORS = [",", ";", "\t", "|"]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(encoding=st.sampled_from(_ENCODINGS), sep=st.sampled_from(_SEPARATORS),
       tell_sep=st.booleans(), n_rows=st.integers(0, len(ROWS)),
       drop=st.one_of(st.none(), st.integers(0, 11)), extra=st.booleans(),
       duplicate=st.booleans(), accent=st.booleans(), crlf=st.booleans(),
       junk=st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=80)))
def test_random_malformed_files_give_pkdataerror_or_the_same_records(
        tmp_path, encoding, sep, tell_sep, n_rows, drop, extra, duplicate, accent, crlf, junk):
    """Encodings, delimiters, header-only files, missing and extra columns, duplicated rows, random
    bytes: a PKDataError, or a dataset holding exactly the records of the file."""
    table = [HEADER.split(","), *(r.split(",") for r in ROWS[:n_rows])]
    if duplicate and n_rows:
        table.append(list(table[-1]))
    if drop is not None:
        table = [[c for j, c in enumerate(r) if j != drop] for r in table]
    if extra:
        table = [r + (["NOTE"] if i == 0 else ["é" if accent else "x"]) for i, r in
                 enumerate(table)]
    newline = "\r\n" if crlf else "\n"
    path = tmp_path / "fuzz.csv"
    if junk is not None:
        path.write_bytes(junk)
    else:
        path.write_bytes((newline.join(sep.join(r) for r in table) + newline).encode(encoding))
    try:
        data = read_nonmem(path, sep=sep if tell_sep else ",")
    except PKDataError as exc:
        assert str(exc).startswith(f"file {path}")  # names the file
        event("PKDataError: " + re.sub(r"^file \S+(, row \d+)?(, column '[^']*')?: ", "",
                                       str(exc)).split(";")[0].split(". Fix")[0][:40])
        return
    event("read, same records")
    assert junk is None and n_rows > 0  # random bytes or a header alone are never a dataset
    assert sep == "," or tell_sep  # a wrongly delimited file is never read as one column
    assert encoding != "utf-16"
    assert not (accent and extra and encoding in ("latin-1", "cp1252"))  # not UTF-8: refused
    n_obs = sum(1 for r in table[1:] if r[HEADER.split(",").index("EVID")] == "0") if drop != 5 \
        else None
    if n_obs is not None:
        got = [data[sid].observations for sid in data.ids]
        assert sum(0 if o is None else len(o.times_days) for o in got) == n_obs


def test_without_evid_each_rows_event_is_inferred_as_nonmem_does(tmp_path):
    """A dataset as NONMEM takes it without EVID (the public phenobarbital file's layout:
    whitespace-separated, an ``.dta`` file): AMT > 0 a dose, MDV 1 without AMT another record,
    the rest observations; the same subjects as with EVID written, and a note that says so."""
    rows = ["1 0. 25.0 1.4 7 0 1 0", "1 2.0 0 1.4 7 17.3 0 0", "1 12.5 3.5 1.4 7 0 0 0",
            "1 37.0 0 1.4 7 0 1 0", "1 112.5 0 1.4 7 31.0 0 0",
            "2 0. 15.0 1.5 9 0 1 0", "2 2.0 0 1.5 9 9.7 0 0"]
    path = tmp_path / "pheno.dta"
    path.write_text("ID TIME AMT WGT APGR DV MDV FA1\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    inferred = read_nonmem(path, sep=r"\s+", time_unit="hour", dosing="bolus")
    frame = pd.read_csv(path, sep=r"\s+")
    frame["EVID"] = np.where(frame["AMT"] > 0, 1, np.where(frame["MDV"] == 1, 2, 0))
    written = read_nonmem(frame, time_unit="hour", dosing="bolus")
    for sid in ("1", "2"):
        a, b = inferred[sid], written[sid]
        np.testing.assert_array_equal(a.schedule.times_days, b.schedule.times_days)
        np.testing.assert_array_equal(a.schedule.amounts, b.schedule.amounts)
        np.testing.assert_array_equal(a.observations.values_ug_ml, b.observations.values_ug_ml)
    np.testing.assert_allclose(inferred["1"].schedule.times_days * 24, [0.0, 12.5])
    assert inferred.notes[0] == (
        "no EVID column: each row's event inferred as NONMEM does, 3 dose(s) (AMT > 0), "
        "3 observation(s), 1 other record(s) (MDV 1) (add an EVID column to say otherwise)")


def test_drop_reads_the_file_as_if_the_columns_were_absent(tmp_path):
    """``drop`` is NONMEM's ``$INPUT NAME=DROP``: columns a control stream renames out of the
    reserved names (the nlmixr validation datasets' ``SS`` 99 placeholders and their last dose's
    ``SS`` 1, which NONMEM reads as ``SSX`` and ``IIX``) are not read, and a note names them;
    a required column, a column the file lacks, or a name that is not text is refused."""
    rows = ["1,0,0,1,1000,1,99,0", "1,1,12.1,0,0,0,99,0", "1,24,0,1,1000,1,1,24",
            "1,25,15.2,0,0,0,99,0", "2,0,0,1,1000,1,99,0", "2,2,9.8,0,0,0,99,0"]
    path = tmp_path / "sd_md.csv"
    path.write_text("ID,TIME,DV,MDV,AMT,EVID,SS,II\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    with pytest.raises(PKDataError, match="SS '99' is not valid"):
        read_nonmem(path, time_unit="hour", dosing="bolus")
    data = read_nonmem(path, time_unit="hour", dosing="bolus", drop=["ss", "II", "SS"])
    written = read_nonmem(pd.read_csv(path).drop(columns=["SS", "II"]), time_unit="hour",
                          dosing="bolus")
    for sid in ("1", "2"):
        np.testing.assert_array_equal(data[sid].schedule.times_days,
                                      written[sid].schedule.times_days)
        assert data[sid].schedule.ss_intervals_days is None
        np.testing.assert_array_equal(data[sid].observations.values_ug_ml,
                                      written[sid].observations.values_ug_ml)
    assert data.notes[0] == "column(s) SS, II not read (drop)"
    with pytest.raises(PKDataError, match=r"row 1, column 'DV': DV cannot be dropped"):
        read_nonmem(path, time_unit="hour", dosing="bolus", drop=["DV"])
    with pytest.raises(PKDataError, match=r"does not have: 'SSX'.*\(ID, TIME, DV, MDV, AMT"):
        read_nonmem(path, time_unit="hour", dosing="bolus", drop=["SSX"])
    with pytest.raises(SpecificationError, match="drop must name columns"):
        read_nonmem(path, time_unit="hour", dosing="bolus", drop=[""])


def test_a_specification_drops_columns_for_the_population_reader(tmp_path):
    """``[data] drop`` in a specification file reaches the reader, and survives to_dict."""
    from pkmodel.errors import SpecFileError
    from pkmodel.pk.population import PopulationSpec, read_spec
    from pkmodel.pk.population.data import read_population_data

    rows = ["1,0,0,1,1000,1,99,0", "1,1,12.1,0,0,0,99,0", "1,24,0,1,1000,1,1,24",
            "1,25,15.2,0,0,0,99,0", "2,0,0,1,1000,1,99,0", "2,2,9.8,0,0,0,99,0"]
    path = tmp_path / "sd_md.csv"
    path.write_text("ID,TIME,DV,MDV,AMT,EVID,SS,II\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    text = ('[model]\ncompartments = 1\ndosing = "bolus"\n[data]\ntime_unit = "hour"\n'
            'drop = ["SS", "II"]\n[parameters.cl]\ntypical = 1.0\n[parameters.v]\n'
            'typical = 50.0\n[residual]\nerror = "proportional"\n')
    (tmp_path / "m.toml").write_text(text, encoding="utf-8")
    spec = read_spec(tmp_path / "m.toml")
    assert spec.drop == ("SS", "II")
    assert PopulationSpec.from_dict(spec.to_dict()).drop == ("SS", "II")
    data = read_population_data(path, spec)
    assert data.n_observations == 3
    assert "column(s) SS, II not read (drop)" in data.notes
    (tmp_path / "bad.toml").write_text(text.replace('drop = ["SS", "II"]', "drop = 3"),
                                       encoding="utf-8")
    with pytest.raises(SpecFileError, match="drop must be a list"):
        read_spec(tmp_path / "bad.toml")
