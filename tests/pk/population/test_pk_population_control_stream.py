"""NONMEM control streams: the supported subset read as a specification, and written back.

The control streams below are written for these tests; each reproduces the statements of a
published run (cited at it), not its file:

* theophylline: Wiczling/theopd (GitHub), ``model/nonmem/basic/1.ctl``, commit
  3af084cf1030d660b6af5370ff8054e6798e0ba0, the NONMEM run docs/population_pk.md compares with
  (ADVAN2 TRANS2, exponential etas on CL, V, KA, additive error). Its initial estimates were
  1, 20, 1 (THETA), 0.1 (OMEGA) and 1 (SIGMA); ``THEOPH`` sets them at the prior centres of the
  shipped ``pkmodel/data/theophylline.toml`` (2, 35, 1; omega SD 0.5; SD 1 mg/L), so that the
  import must give that hand-written specification exactly.
* phenobarbital: NONMEM's ``pheno.mod`` as pharmpy ships it (``pharmpy-core`` 2.2.0,
  ``pharmpy/internals/example_models/pheno_real.mod``; its statements are quoted in pharmpy's
  tests): ADVAN1 TRANS2, ``TVCL=THETA(1)*WGT``, ``IF(APGR.LT.5) TVV=TVV*(1+THETA(3))``,
  ``W=F; Y=F+W*EPS(1)``, and the statements the model does not use (``BTIME``, ``TAD``,
  ``IRES``, ``IWRES``).
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from pkmodel.errors import ControlStreamError, SpecificationError
from pkmodel.pk.covariate_effects import CovariateTerm
from pkmodel.pk.covariate_registry import Covariate
from pkmodel.pk.population import Parameter, PopulationSpec, ResidualError, read_spec
from pkmodel.pk.population.control_stream import (
    read_control_stream,
    spec_toml,
    write_control_stream,
)

ROOT = Path(__file__).resolve().parents[3]

THEOPH = """\
$PROBLEM 1-CMT Linear Model with 1st-Order Absorption
$INPUT ID BW DOSE TIME DV AMT MDV CMT NUM
$DATA ../nonmemdata.csv
      IGNORE="
$SUBROUTINE ADVAN2 TRANS2
$PK
TVCL = THETA(1)           ; Typical Value of Clearance
CL   = TVCL * EXP(ETA(1)) ; Individual Clearance (L/h)
TVV = THETA(2)
V   = TVV * EXP(ETA(2))
TVKA = THETA(3)
KA   = TVKA * EXP(ETA(3))
F1 = 1 ; Bioavailability
S2 = V ;
$ERROR (OBSERVATION ONLY)
IPRED = F
Y=IPRED + EPS(1) ; Additive Error
$THETA
(0, 2)   ; [L/h] CL/F
(0, 35)  ; [L] V/F
(0, 1)   ; [1/h] KA
$OMEGA
0.25      ;[P] CL/F
0.25      ;[P] V/F
0.25      ;[P] KA
$SIGMA
1       ;[P] additive
$EST MAXEVAL=9999 METHOD=1 INTER SIGL=6 NSIG=3 PRINT=1 MSFO=./1.msf
$COV PRINT=E MATRIX=R
$TABLE NUM ID TIME EVID MDV CMT PRED IPRED CWRES WRES NPDE NOPRINT NOAPPEND ONEHEADERALL
FILE=sdtab1.tab
"""

PHENO = """\
$PROBLEM PHENOBARB SIMPLE MODEL
$DATA pheno.dta IGNORE=@
$INPUT ID TIME AMT WGT APGR DV FA1 FA2
$SUBROUTINE ADVAN1 TRANS2

$PK
IF(AMT.GT.0) BTIME=TIME
TAD=TIME-BTIME
      TVCL=THETA(1)*WGT
      TVV=THETA(2)*WGT
IF(APGR.LT.5) TVV=TVV*(1+THETA(3))
      CL=TVCL*EXP(ETA(1))
      V=TVV*EXP(ETA(2))
      S1=V

$ERROR
W=F
Y=F+W*EPS(1)
IPRED=F
IRES=DV-IPRED
IWRES=IRES/W

$THETA (0,0.00469307) ; CL
$THETA (0,1.00916) ; V
$THETA (-.99,.1)
$OMEGA DIAGONAL(2)
 0.0309626  ;       IVCL
 0.031128  ;        IVV

$SIGMA 0.013241
$ESTIMATION METHOD=1 INTERACTION
$COVARIANCE UNCONDITIONAL
$TABLE ID TIME DV AMT WGT APGR IPRED PRED RES TAD CWRES NPDE NOAPPEND
       NOPRINT ONEHEADER FILE=sdtab1
"""
#: A few rows in pheno.dta's layout (written for the test, not the published data).
PHENO_DATA = """\
ID TIME AMT WGT APGR DV FA1 FA2
1 0. 25.0 1.4 7 0 1 0
1 2.0 0 1.4 7 17.3 0 0
2 0. 15.0 0.7 3 0 1 0
2 3.0 0 0.7 3 31.0 0 0
3 0. 30.0 3.6 9 0 1 0
"""


def _write(tmp_path: Path, text: str, name: str = "run.mod") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _reread(tmp_path: Path, toml: str) -> PopulationSpec:
    return read_spec(_write(tmp_path, toml, "spec.toml"))


# ----------------------------------------------------------------------------- public runs
def test_the_theophylline_run_gives_the_hand_written_specification(tmp_path):
    """docs/population_pk.md's NONMEM comparison: the run's model is the shipped spec."""
    imported = read_control_stream(_write(tmp_path, THEOPH), concentration_unit="mg/L",
                                   drug="theophylline")
    shipped = read_spec(ROOT / "pkmodel" / "data" / "theophylline.toml")
    assert imported.spec == shipped
    assert imported.spec.to_dict() == shipped.to_dict()
    assert _reread(tmp_path, imported.toml) == shipped  # the TOML written says the same
    assert "typical = 2.0  # THETA(1) initial estimate, line 19" in imported.toml
    assert "omega_prior = 1.0  # prior width stated by the import: 2 x the initial SD" \
        in imported.toml
    assert any("EVID" in n for n in imported.notes)  # the run's data have none
    # the run's own initial estimates: the prior centres and widths follow them
    verbatim = THEOPH.replace("(0, 2)", "(0, 1)").replace("(0, 35)", "(0, 20)").replace(
        "0.25 ", "0.1 ")
    spec = read_control_stream(_write(tmp_path, verbatim)).spec
    assert [spec.parameters[p].typical for p in ("cl", "v", "ka")] == [1.0, 20.0, 1.0]
    assert spec.parameters["cl"].omega_prior == 0.632  # 2 sqrt(0.1), to 3 digits
    assert spec.time_unit == "hour" and spec.concentration_unit == "µg/mL"


def test_the_fit_after_import_equals_the_fit_of_the_hand_written_spec(tmp_path):
    from pkmodel.pk.population import fit_population

    imported = read_control_stream(_write(tmp_path, THEOPH), concentration_unit="mg/L",
                                   drug="theophylline").spec
    data = ROOT / "pkmodel" / "data" / "theophylline.csv"
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for spec in (imported, ROOT / "pkmodel" / "data" / "theophylline.toml"):
            fits.append(fit_population(data, spec, draws=60, tune=60, chains=1,
                                       random_seed=5))
    for name in ("tv_cl", "tv_v", "tv_ka", "omega_cl", "sigma_add_ug_ml"):
        np.testing.assert_array_equal(fits[0].posterior[name].values,
                                      fits[1].posterior[name].values)


def test_the_pheno_run_is_read_with_its_covariates_and_unused_statements_named(tmp_path):
    _write(tmp_path, PHENO_DATA, "pheno.dta")
    imported = read_control_stream(_write(tmp_path, PHENO))
    spec = imported.spec
    assert (spec.compartments, spec.dosing) == (1, "bolus")  # ADVAN1, no RATE in $INPUT
    assert spec.parameters["cl"] == Parameter(0.00469307, bsv=True, unit="L/hour",
                                              omega_prior=0.352)  # 2 sqrt(0.0309626)
    assert spec.parameters["v"].typical == 1.00916
    assert spec.covariates == (
        CovariateTerm("cl", "WGT", "power", 1.0, 1.0),
        CovariateTerm("v", "WGT", "power", 1.0, 1.0),
        CovariateTerm("v", "APGR", "indicator", below=5.0, prior_mean=math.log1p(0.1)))
    assert spec.residual == ResidualError("proportional", proportional_prior=0.23)
    declared = {c.name: c for c in spec.covariate_definitions}
    assert (declared["WGT"].low, declared["WGT"].high) == (0.7, 3.6)  # the data file's range
    assert (declared["APGR"].low, declared["APGR"].high) == (3.0, 9.0)
    left_out = " ".join(imported.notes)
    for statement in ("BTIME=TIME", "TAD=TIME-BTIME", "IRES=DV-IPRED", "IWRES=IRES/W"):
        assert statement in left_out
    assert "THETA(3) bounds" not in left_out  # an indicator's bounds are not a typical value
    assert _reread(tmp_path, imported.toml) == spec
    assert "the range of WGT in pheno.dta" in imported.toml
    (tmp_path / "pheno.dta").unlink()  # unreadable: a wide range, and the TOML says to check
    toml = read_control_stream(tmp_path / "run.mod").toml
    assert "could not be read: a wide default; CHECK IT" in toml


def test_combined_error_written_with_w_and_mu_referencing(tmp_path):
    text = PHENO.replace("""W=F
Y=F+W*EPS(1)
IPRED=F""", """IPRED=F
W=SQRT(THETA(4)**2+THETA(5)**2*IPRED**2)
IF(W.EQ.0) W=1
Y=IPRED+W*EPS(1)""").replace("$SIGMA 0.013241", "$SIGMA 1 FIX").replace(
        "$THETA (-.99,.1)", "$THETA (-.99,.1)\n$THETA (0, 0.5) ; add\n$THETA (0, 0.1) ; prop")
    text = text.replace("      CL=TVCL*EXP(ETA(1))", "MU_1=LOG(TVCL)\nCL=EXP(MU_1+ETA(1))")
    spec = read_control_stream(_write(tmp_path, text)).spec
    assert spec.residual == ResidualError("combined", proportional_prior=0.2,
                                          additive_prior_ug_ml=1.0)
    assert spec.parameters["cl"].bsv and spec.parameters["cl"].typical == 0.00469307


#: pharmpy 2.2.0's own pheno.mod (``pharmpy/internals/example_models/pheno.mod``) names the etas
#: with $ABBREV REPLACE and writes V through VC: its statements, as published.
PHENO_ABBREV = """\
$PROBLEM PHENOBARB SIMPLE MODEL
$DATA pheno.dta IGNORE=@
$INPUT ID TIME AMT WGT APGR DV FA1 FA2
$SUBROUTINE ADVAN1 TRANS2
$ABBREV REPLACE ETA_CL=ETA(1)
$ABBREV REPLACE ETA_VC=ETA(2)

$PK
TVCL = THETA(1)*WGT
TVV = THETA(2)*WGT
IF(APGR.LT.5) TVV = TVV*(1 + THETA(3))
CL = TVCL*EXP(ETA_CL)
VC = TVV*EXP(ETA_VC)
V = VC
S1 = VC

$ERROR
Y = F + F*EPS(1)

$THETA  (0,0.00469307) ; POP_CL
$THETA  (0,1.00916) ; POP_VC
$THETA  (-.99,.1) ; COVAPGR
$OMEGA  0.0309626 ; IIV_CL
$OMEGA  0.031128 ; IIV_VC
$SIGMA  0.013241  ; SIGMA
$ESTIMATION METHOD=1 INTERACTION MAXEVALS=99999
"""

#: Log-scale typical values with MU referencing and a fixed allometric exponent written as
#: LOG(WT/70)*0.75, comma-separated $INPUT, Y=IPRED*(1+EPS(1))+EPS(2): the forms of
#: metrumresearchgroup/expo1-nonmem-foce (``model/pk/1000-FOCE``) and a PsN-style template,
#: with a scale S2 = V2 and no $DATA conditions (which pkmodel refuses).
LOG_SCALE = """\
$PROBLEM two compartments, first-order absorption, log-scale THETAs
$INPUT C, ID, TIME, SEQ=DROP, CMT, EVID, AMT, DV, AGE, WT
$DATA analysis.csv IGNORE=C
$SUBROUTINE ADVAN4 TRANS4
$PK
  CLWT = LOG(WT/70) * 0.75
  V2WT = LOG(WT/70) * THETA(6)
  MU_1 = THETA(1)
  MU_2 = THETA(2) + V2WT
  MU_3 = THETA(3) + CLWT
  KA = EXP(MU_1 + ETA(1))
  V2 = EXP(MU_2 + ETA(2))
  CL = EXP(MU_3 + ETA(3))
  V3 = EXP(THETA(4))
  Q  = EXP(THETA(5))
  S2 = V2
$ERROR
  IPRED = F
  Y = IPRED*(1 + EPS(1)) + EPS(2)
$THETA
(0.5)   ; log KA
(3.5)   ; log V2
(1)     ; log CL
(4)     ; log V3
(2)     ; log Q
1 FIX   ; WT on V2
$OMEGA BLOCK(3)
0.2
0.01 0.2
0.01 0.01 0.2
$SIGMA
0.05
1 FIX
"""


def test_aliases_symbols_in_conditions_and_records_read_past(tmp_path):
    text = PHENO.replace("$INPUT ID TIME AMT WGT APGR DV FA1 FA2",
                         "$SIZES PD=50\n$INPUT ID TIME AMT WT=WGT APGR CP=DV FA1=DROP FA2")
    text = text.replace("IF(APGR.LT.5)", "IF(APGR < 5)")
    imported = read_control_stream(_write(tmp_path, text))
    assert imported.spec.covariates[-1] == CovariateTerm("v", "APGR", "indicator", below=5.0,
                                                         prior_mean=math.log1p(0.1))
    declared = {c.name: c for c in imported.spec.covariate_definitions}
    assert declared["WGT"].columns == ("WT",)  # named WGT in the code, WT in the dataset
    assert any("$SIZES" in n for n in imported.notes)


def test_the_pheno_import_is_the_model_of_the_hand_written_benchmark_spec(tmp_path):
    """benchmarks/public_pheno.py fits pheno.mod's model from a hand-written specification
    (its own priors and declarations): the import gives the same structure, BSV, effects and
    error model."""
    import importlib.util

    module = importlib.util.spec_from_file_location(
        "public_pheno", ROOT / "benchmarks" / "public_pheno.py")
    public = importlib.util.module_from_spec(module)
    module.loader.exec_module(public)
    hand = _reread(tmp_path, public.SPEC)
    imported = read_control_stream(_write(tmp_path, PHENO_ABBREV)).spec

    def model(spec: PopulationSpec) -> tuple:
        return (spec.structure_label(), spec.bsv_parameters, spec.residual.error,
                spec.time_unit, spec.bsv_blocks,
                tuple((t.parameter, t.covariate, t.form, t.reference, t.exponent, t.below)
                      for t in spec.covariates))

    assert model(imported) == model(hand)


def test_a_typical_value_in_another_time_unit_is_exported_in_the_dataset_s(tmp_path):
    spec = PopulationSpec(compartments=1, dosing="infusion", time_unit="hour",
                          infusion_hours=1.0,
                          parameters={"cl": Parameter(24.0, unit="L/day"), "v": Parameter(3.0)})
    text = write_control_stream(spec)
    assert "$THETA (0, 1.0) ; CL" in text and "infusions without RATE 1 h" in text
    back = read_control_stream(_write(tmp_path, text)).spec
    assert back.parameters["cl"] == Parameter(1.0, unit="L/hour")
    assert back.typical_per_day("cl") == spec.typical_per_day("cl")


def test_pharmpys_own_pheno_mod_with_abbrev_gives_the_same_model(tmp_path):
    first = read_control_stream(_write(tmp_path, PHENO, "a.mod")).spec
    second = read_control_stream(_write(tmp_path, PHENO_ABBREV, "b.mod")).spec
    assert second == first


def test_log_scale_thetas_mu_referencing_and_distributed_error(tmp_path):
    imported = read_control_stream(_write(tmp_path, LOG_SCALE))
    spec = imported.spec
    assert (spec.compartments, spec.dosing) == (2, "oral")
    typical = {p: spec.parameters[p].typical for p in spec.parameters}
    assert typical == pytest.approx({"cl": math.e, "v1": math.exp(3.5), "q": math.exp(2),
                                     "v2": math.exp(4), "ka": math.exp(0.5)})
    assert spec.covariates == (CovariateTerm("cl", "weight_kg", "power", 70.0, 0.75),
                               CovariateTerm("v1", "weight_kg", "power", 70.0, 1.0))
    assert spec.bsv_blocks == (("cl", "v1", "ka"),)
    assert spec.residual == ResidualError("combined", proportional_prior=0.447,
                                          additive_prior_ug_ml=2.0)
    assert "exp of THETA(3) initial estimate" in imported.toml


# ----------------------------------------------------------------------------- IOV
#: Inter-occasion variability in its usual NONMEM coding (after Karlsson and Sheiner 1993): one
#: ETA per occasion, chosen by IF(OCC.EQ.k), the occasions' $OMEGA BLOCK(1) x then BLOCK(1) SAME
#: (one variance). Written for the tests.
IOV_RUN = """\
$PROBLEM one compartment, IV boluses, IOV on CL
$INPUT ID TIME AMT DV EVID MDV OCC
$DATA data.csv IGNORE=@
$SUBROUTINE ADVAN1 TRANS2
$PK
IOV = 0
IF(OCC.EQ.1) IOV = ETA(3)
IF(OCC.EQ.2) IOV = ETA(4)
IF(OCC.EQ.3) IOV = ETA(5)
TVCL = THETA(1)
CL = TVCL*EXP(ETA(1)+IOV)
V = THETA(2)*EXP(ETA(2))
S1 = V
$ERROR
Y = F + F*EPS(1)
$THETA (0, 0.5) (0, 5)
$OMEGA 0.09 0.04
$OMEGA BLOCK(1) 0.0225 ; IOV CL, occasion 1
$OMEGA BLOCK(1) SAME   ; occasion 2
$OMEGA BLOCK(1) SAME   ; occasion 3
$SIGMA 0.01
"""
#: IOV_RUN's model by hand: iov_prior 2 x the initial SD sqrt(0.0225).
IOV_SPEC = PopulationSpec(
    compartments=1, dosing="bolus", time_unit="hour",
    parameters={"cl": Parameter(0.5, bsv=True, omega_prior=0.6, unit="L/hour", iov=True,
                                iov_prior=0.3),
                "v": Parameter(5.0, bsv=True, omega_prior=0.4, unit="L")},
    residual=ResidualError("proportional", proportional_prior=0.2))
_IOV_IFS = """\
IOV = 0
IF(OCC.EQ.1) IOV = ETA(3)
IF(OCC.EQ.2) IOV = ETA(4)
IF(OCC.EQ.3) IOV = ETA(5)
"""


def test_iov_one_eta_per_occasion_is_read_as_iov_on_the_parameter(tmp_path):
    imported = read_control_stream(_write(tmp_path, IOV_RUN))
    assert imported.spec == IOV_SPEC
    assert _reread(tmp_path, imported.toml) == IOV_SPEC
    assert 'occasion = "OCC"  # the column of IF(OCC.EQ.k), occasions 1..3' in imported.toml
    assert "iov = true  # ETA(3), ETA(4), ETA(5): one per occasion 1-3 of OCC (lines 7-9)" \
        in imported.toml
    assert "iov_prior = 0.3  # prior width stated by the import: 2 x the initial SD sqrt(" \
           "0.0225) ($OMEGA line 18" in imported.toml
    assert not any("IOV" in n for n in imported.notes)  # every IOV line is used


IOV_FORMS = {
    "MU-referenced": ("TVCL = THETA(1)\nCL = TVCL*EXP(ETA(1)+IOV)",
                      "TVCL = THETA(1)\nMU_1 = LOG(TVCL) + IOV\nCL = EXP(MU_1 + ETA(1))"),
    "separate EXP, symbols, no IOV = 0": (
        _IOV_IFS + "TVCL = THETA(1)\nCL = TVCL*EXP(ETA(1)+IOV)",
        "IF(OCC==1) IOV = ETA(3)\nIF(OCC==2) IOV = ETA(4)\nIF(OCC==3) IOV = ETA(5)\n"
        "TVCL = THETA(1)\nCL = TVCL*EXP(ETA(1))*EXP(IOV)"),
    "indicators": (_IOV_IFS, "OCC1 = 0\nOCC2 = 0\nOCC3 = 0\nIF(OCC.EQ.1) OCC1 = 1\n"
                   "IF(OCC.EQ.2) OCC2 = 1\nIF(OCC.EQ.3) OCC3 = 1\n"
                   "IOV = OCC1*ETA(3) + OCC2*ETA(4) + ETA(5)*OCC3\n"),
    "$ABBR REPLACE, BLOCK SAME": (
        "$OMEGA BLOCK(1) SAME   ; occasion 3",
        "$OMEGA BLOCK SAME\n$ABBR REPLACE ETA_IOV3=ETA(5)"),
}


@pytest.mark.parametrize("form", list(IOV_FORMS))
def test_the_usual_codings_of_iov_give_the_same_specification(form, tmp_path):
    old, new = IOV_FORMS[form]
    assert old in IOV_RUN
    text = IOV_RUN.replace(old, new)
    if form.startswith("$ABBR"):
        text = text.replace("IOV = ETA(5)", "IOV = ETA_IOV3")
    assert read_control_stream(_write(tmp_path, text)).spec == IOV_SPEC


def test_iov_without_bsv_and_on_two_parameters_shares_the_occasion_column(tmp_path):
    text = IOV_RUN.replace("OCC", "VISIT").replace("V = THETA(2)*EXP(ETA(2))", """\
IOVV = 0
IF(VISIT.EQ.1) IOVV = ETA(6)
IF(VISIT.EQ.2) IOVV = ETA(7)
IF(VISIT.EQ.3) IOVV = ETA(8)
V = THETA(2)*EXP(ETA(2)+IOVV)""").replace("$OMEGA 0.09 0.04", "$OMEGA 0.09 0 FIX").replace(
        "$SIGMA", "$OMEGA BLOCK(1) 0.01\n$OMEGA BLOCK(1) SAME\n$OMEGA BLOCK(1) SAME\n$SIGMA")
    imported = read_control_stream(_write(tmp_path, text))
    assert imported.spec == PopulationSpec(**{
        **{k: getattr(IOV_SPEC, k) for k in ("compartments", "dosing", "time_unit",
                                             "residual")},
        "occasion": "VISIT",
        "parameters": {"cl": IOV_SPEC.parameters["cl"],
                       "v": Parameter(5.0, unit="L", iov=True, iov_prior=0.2)}})
    assert any("ETA(2) of v has $OMEGA 0 FIX" in n for n in imported.notes)


#: Refusals of IOV codings pkmodel cannot read: (old, new, line, message) on IOV_RUN.
IOV_REFUSALS = {
    "no SAME": ("$OMEGA BLOCK(1) SAME   ; occasion 2", "$OMEGA BLOCK(1) 0.0225", 19,
                "ETA(4) (occasion 2 of OCC, line 8) does not share the variance of occasion 1"),
    "diagonal, other values": (
        "$OMEGA BLOCK(1) 0.0225 ; IOV CL, occasion 1\n$OMEGA BLOCK(1) SAME   ; occasion 2\n"
        "$OMEGA BLOCK(1) SAME   ; occasion 3", "$OMEGA 0.0225 0.03 0.04", 18,
        "ETA(4) (occasion 2 of OCC, line 8) does not share the variance"),
    "in a BLOCK(2)": ("$OMEGA BLOCK(1) 0.0225 ; IOV CL, occasion 1\n$OMEGA BLOCK(1) SAME   ; "
                      "occasion 2\n$OMEGA BLOCK(1) SAME   ; occasion 3",
                      "$OMEGA BLOCK(2) 0.0225 0.001 0.0225\n$OMEGA BLOCK(2) SAME", 18,
                      "ETA(3) (occasion 1 of OCC, line 7) is in a BLOCK(2)"),
    "SAME after no block": ("$OMEGA BLOCK(1) 0.0225 ; IOV CL, occasion 1", "$OMEGA 0.0225",
                            19, "SAME repeats the $OMEGA BLOCK just before it, and there is "
                                "none"),
    "SAME(n)": ("$OMEGA BLOCK(1) SAME   ; occasion 2\n$OMEGA BLOCK(1) SAME   ; occasion 3",
                "$OMEGA BLOCK(1) SAME(2)", 19, "write one $OMEGA BLOCK(1) SAME for each"),
    "occasions not 1..K": ("IF(OCC.EQ.3) IOV = ETA(5)", "IF(OCC.EQ.4) IOV = ETA(5)", 9,
                           "the occasions of cl's IOV are 1, 2, 4: pkmodel reads occasions "
                           "numbered 1..K"),
    "one occasion": ("IF(OCC.EQ.2) IOV = ETA(4)\nIF(OCC.EQ.3) IOV = ETA(5)", "V = V", 7,
                     "(K at least 2)"),
    "two columns": ("IF(OCC.EQ.3) IOV = ETA(5)", "IF(VISIT.EQ.3) IOV = ETA(5)", 7,
                    "the occasions of cl's IOV compare OCC and VISIT"),
    "a BSV eta SAME": ("$OMEGA 0.09 0.04", "$OMEGA BLOCK(1) 0.09\n$OMEGA BLOCK(1) SAME", 18,
                       "ETA(2) of v is a SAME block"),
    "an eta before the IFs": ("IOV = 0", "IOV = ETA(6)", 7, "this IF is not supported"),
    "indicators from the dataset": ("MDV OCC", "MDV OCC1 OCC2 OCC3", 6,
                                    "OCC1 is a column of $INPUT"),
    "other occasions on V": ("V = THETA(2)*EXP(ETA(2))", "IOVV = 0\nIF(OCC.EQ.1) IOVV = ETA(6)\n"
                             "IF(OCC.EQ.2) IOVV = ETA(7)\nV = THETA(2)*EXP(ETA(2)+IOVV)", 13,
                             "v's IOV has occasions 1..2 of OCC, cl's 1..3 of OCC"),
}
#: The further replacements a refusal needs.
_IOV_MORE = {
    "indicators from the dataset": (_IOV_IFS, "IOV = OCC1*ETA(3) + OCC2*ETA(4) + OCC3*ETA(5)\n"),
    "other occasions on V": ("$SIGMA", "$OMEGA BLOCK(1) 0.01\n$OMEGA BLOCK(1) SAME\n$SIGMA"),
}


@pytest.mark.parametrize("case", list(IOV_REFUSALS))
def test_iov_outside_the_subset_is_refused_naming_line_and_statement(case, tmp_path):
    old, new, line, message = IOV_REFUSALS[case]
    assert old in IOV_RUN
    text = IOV_RUN.replace(old, new).replace(*_IOV_MORE.get(case, ("", "")))
    path = _write(tmp_path, text)
    with pytest.raises(ControlStreamError) as caught:
        read_control_stream(path)
    text = str(caught.value)
    assert text.startswith(f"file {path}, line {line}: "), text
    assert message in text, text


# ----------------------------------------------------------------------------- round trips
def _declared(name: str, **keys) -> Covariate:
    return Covariate.declared(name, **keys)


ROUND_TRIPS = {
    "one-compartment bolus": PopulationSpec(
        compartments=1, dosing="bolus", time_unit="hour", residual=ResidualError("additive"),
        parameters={"cl": Parameter(0.3, bsv=True, omega_prior=0.4), "v": Parameter(3.0)}),
    "two-compartment infusion, block and covariates": PopulationSpec(
        compartments=2, dosing="infusion", time_unit="day", lloq_ug_ml=0.5,
        parameters={"cl": Parameter(0.3, bsv=True), "v1": Parameter(3.0, bsv=True),
                    "q": Parameter(0.5, prior_log_sd=0.5), "v2": Parameter(2.0, fixed=True)},
        covariates=(CovariateTerm("cl", "WT", "power", 70.0, prior_mean=0.75, prior_sd=0.25),
                    CovariateTerm("cl", "ALB", "linear", 4.0, prior_mean=-0.2),
                    CovariateTerm("cl", "CRCL", "exponential", 90.0),
                    CovariateTerm("v1", "WT", "power", 70.0, 1.0)),
        covariate_definitions=(_declared("CRCL", unit="mL/min", range=(5.0, 250.0)),),
        bsv_blocks=(("cl", "v1"),), lkj_eta=3.0),
    "two-compartment oral, combined error": PopulationSpec(
        compartments=2, dosing="oral", time_unit="hour", concentration_unit="ng/mL",
        drug="drug X",
        parameters={"cl": Parameter(5.0, bsv=True, centred=True), "v1": Parameter(40.0),
                    "q": Parameter(2.0), "v2": Parameter(60.0), "ka": Parameter(1.2, bsv=True)},
        covariates=(CovariateTerm("cl", "SEX", "categorical", prior_mean=-0.2),),
        residual=ResidualError("combined", 0.2, 0.05)),
    "pheno-like, indicator": PopulationSpec(
        compartments=1, dosing="bolus", time_unit="hour",
        parameters={"cl": Parameter(0.005, bsv=True), "v": Parameter(1.0, bsv=True)},
        covariates=(CovariateTerm("cl", "WGT", "power", 1.0, 1.0),
                    CovariateTerm("v", "WGT", "power", 1.0, 1.0),
                    CovariateTerm("v", "APGR", "indicator", below=5.0, prior_mean=0.15)),
        covariate_definitions=(_declared("WGT", unit="kg", range=(0.3, 6.0), missing="locf"),
                               _declared("APGR", levels=tuple(range(1, 11)))),
        residual=ResidualError("proportional")),
    "IOV on CL (with BSV) and V (without), occasions from VISIT": PopulationSpec(
        compartments=1, dosing="bolus", time_unit="hour", occasion="VISIT",
        parameters={"cl": Parameter(0.3, bsv=True, iov=True),
                    "v": Parameter(3.0, iov=True, iov_prior=0.15)}),
    "IOV in a BSV block, occasions from the doses": PopulationSpec(
        compartments=2, dosing="oral", time_unit="hour", occasion="dose",
        parameters={"cl": Parameter(5.0, bsv=True, iov=True, iov_prior=0.2),
                    "v1": Parameter(40.0, bsv=True), "q": Parameter(2.0),
                    "v2": Parameter(60.0), "ka": Parameter(1.2, iov=True)},
        covariates=(CovariateTerm("cl", "WT", "power", 70.0),),
        bsv_blocks=(("cl", "v1"),)),
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_export_then_import_gives_the_specification_back(name, tmp_path):
    spec = ROUND_TRIPS[name]
    text = write_control_stream(spec, occasions=3)  # unused without IOV
    imported = read_control_stream(_write(tmp_path, text))
    assert imported.spec == spec, name
    assert _reread(tmp_path, imported.toml) == spec
    assert "$ESTIMATION METHOD=COND INTER" in text


def test_the_exported_control_stream_is_nonmem_s(tmp_path):
    spec = ROUND_TRIPS["two-compartment infusion, block and covariates"]
    text = write_control_stream(spec, data="pk.csv")
    assert "$SUBROUTINE ADVAN3 TRANS4" in text and "$DATA pk.csv IGNORE=@" in text
    assert "$INPUT ID TIME AMT RATE DV EVID MDV WT ALB CRCL" in text
    for line in ("TVCL = TVCL*(WT/70.0)**THETA(2)", "TVCL = TVCL*(1+THETA(3)*(ALB-4.0))",
                 "TVCL = TVCL*EXP(THETA(4)*(CRCL-90.0))", "TVV1 = TVV1*(WT/70.0)**1.0",
                 "CL = TVCL*EXP(ETA(1))", "V1 = TVV1*EXP(ETA(2))", "Q = TVQ", "S1 = V1",
                 "$THETA 2.0 FIX", "$OMEGA BLOCK(2)"):
        assert line in text, line
    oral = write_control_stream(ROUND_TRIPS["two-compartment oral, combined error"])
    assert "$SUBROUTINE ADVAN4 TRANS4" in oral and "S2 = V2" in oral  # V2 central in ADVAN4
    assert "Y = IPRED + IPRED*EPS(1) + EPS(2)" in oral
    assert "TVCL = TVCL*THETA(2)**FEMALE" in oral  # a 0/1 factor (the library's column)
    categorical = PopulationSpec(
        compartments=1, dosing="bolus",
        parameters={"cl": Parameter(0.3), "v": Parameter(3.0)},
        covariates=(CovariateTerm("cl", "FORM", "categorical", levels=("syrup", "iv")),),
        covariate_definitions=(_declared("FORM", levels=("tablet", "syrup", "iv")),))
    with pytest.raises(SpecificationError, match="categorical effect of FORM on cl"):
        write_control_stream(categorical)


# ----------------------------------------------------------------------------- refusals
REFUSALS = {
    "ADVAN13": ("$SUBROUTINE ADVAN2 TRANS2", "$SUBROUTINE ADVAN13 TOL=9", 5,
                "pkmodel reads ADVAN1/ADVAN2 TRANS2"),
    "TRANS1": ("$SUBROUTINE ADVAN2 TRANS2", "$SUBROUTINE ADVAN2 TRANS1", 5,
               "ADVAN2 is read with TRANS2 only"),
    "$DES": ("$ERROR (OBSERVATION ONLY)", "$DES\nDADT(1)=-KA*A(1)\n$ERROR", 15,
             "the record $DES is not supported"),
    "IF THEN": ("F1 = 1 ; Bioavailability", "IF(BW.GT.70) THEN\nF1 = 1\nENDIF", 13,
                "IF ... THEN blocks"),
    "bioavailability": ("F1 = 1 ; Bioavailability", "F1 = THETA(1)", 13, "F1 must be 1"),
    "lag time": ("F1 = 1 ; Bioavailability", "ALAG1 = 0.5", 13, "no lag time"),
    "omega FIX": ("0.25      ;[P] V/F", "0.25 FIX", 24, "pkmodel estimates every omega"),
    "IGNORE condition": ('      IGNORE="', "      IGNORE=(DV.EQ.0)", 3,
                         "conditions on the rows are not supported"),
    "exponential error": ("Y=IPRED + EPS(1) ; Additive Error", "Y=IPRED*EXP(EPS(1))", 17,
                          "Y must be F (or IPRED = F) plus error terms"),
    "covariate form": ("TVV = THETA(2)", "TVV = THETA(2)*LOG(BW)", 9,
                       "a covariate factor pkmodel cannot read"),
    "scale": ("S2 = V ;", "S2 = V/1000", 14, "the scale must be the central volume"),
    "theta used twice": ("TVKA = THETA(3)", "TVKA = THETA(1)", 11, "THETA(1) is used twice"),
    "additive eta": ("V   = TVV * EXP(ETA(2))", "V   = TVV + ETA(2)", 10,
                     "pkmodel's BSV is exponential"),
    "second problem": ("$EST MAXEVAL", "$PROBLEM simulation\n$EST MAXEVAL", 28,
                       "one problem per control stream"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_what_is_outside_the_subset_is_refused_naming_file_line_and_statement(case, tmp_path):
    old, new, line, message = REFUSALS[case]
    assert old in THEOPH
    path = _write(tmp_path, THEOPH.replace(old, new))
    with pytest.raises(ControlStreamError) as caught:
        read_control_stream(path)
    text = str(caught.value)
    assert text.startswith(f"file {path}, line {line}: "), text
    assert message in text, text
    assert caught.value.line == line
    statement = new.splitlines()[0].strip()
    assert statement.split()[0].rstrip(";") in text


# ----------------------------------------------------------------------------- docs
def _doc_section() -> str:
    text = (ROOT / "docs" / "population_pk.md").read_text(encoding="utf-8")
    return text.split("## NONMEM control streams", 1)[1].split("\n## ", 1)[0]


def test_the_docs_example_is_what_import_nonmem_writes(tmp_path):
    section = _doc_section()
    stream = re.search(r"```text\n(.*?)```", section, flags=re.DOTALL).group(1)
    toml = re.search(r"```toml\n(.*?)```", section, flags=re.DOTALL).group(1)
    imported = read_control_stream(_write(tmp_path, stream, "run.mod"))
    assert imported.toml == toml
    assert _reread(tmp_path, toml) == imported.spec
    plain = spec_toml(imported.spec)  # the same keys and values without the comments
    assert [line.split("  #")[0] for line in toml.splitlines() if line and line[0] != "#"] \
        == [line for line in plain.splitlines() if line]



def test_the_docs_iov_export_is_what_export_nonmem_writes(tmp_path):
    """The lines the page shows for the specification of its *Inter-occasion variability*
    section, exported with 3 occasions, in their order; read back, the same specification."""
    page = (ROOT / "docs" / "population_pk.md").read_text(encoding="utf-8")
    toml = re.search(r"```toml\n(.*?)```", page.split("### Inter-occasion variability")[1],
                     flags=re.DOTALL).group(1)
    spec = _reread(tmp_path, toml)
    shown = re.search(r"--occasions 3` writes, among its lines:\n\n```text\n(.*?)```",
                      _doc_section(), flags=re.DOTALL).group(1).splitlines()
    text = write_control_stream(spec, occasions=3)
    written = text.splitlines()
    assert [line for line in written if line in shown] == shown
    assert read_control_stream(_write(tmp_path, text)).spec == spec
