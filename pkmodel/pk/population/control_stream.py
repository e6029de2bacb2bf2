"""NONMEM control streams: read the supported subset into a specification, write one back.

:func:`read_control_stream` turns a control stream (``RUN.mod``/``.ctl``) into a
:class:`~pkmodel.pk.population.spec.PopulationSpec` and the text of its TOML file, every value
commented with the line it came from and the prior widths chosen; :func:`write_control_stream`
writes a specification as a control stream (and the ``$INPUT`` layout of the dataset it
expects) for a cross-check in NONMEM. The subset, and nothing else (anything outside it is
refused, naming the file, the line and the statement):

* ``$SUBROUTINE ADVAN1``/``ADVAN2 TRANS2`` (``CL, V``, ``KA``), ``ADVAN3``/``ADVAN4 TRANS4``
  (``CL, V1, Q, V2``; ``CL, V2, Q, V3, KA``), ``ADVAN11``/``ADVAN12 TRANS4``; an ADVAN without
  absorption is an infusion model when ``$INPUT`` has ``RATE``, else a bolus model.
* ``$PK``: the typical value a ``THETA`` times covariate factors (``WGT``, ``WT/70``,
  ``(WT/70)**THETA(n)`` or a fixed exponent, ``EXP(THETA(n)*(X-ref))``, ``(1+THETA(n)*(X-ref))``,
  ``IF(X.LT.c) TV=TV*(1+THETA(n))`` or ``.GT.``), an exponential eta (``TVCL*EXP(ETA(1))``, also
  MU-referenced ``EXP(MU_1+ETA(1))`` with ``MU_1=LOG(TVCL)``), ``S1=V`` (the central volume),
  ``F1=1``; inter-occasion variability as one eta per occasion (``IOV=0``, ``IF(OCC.EQ.k)
  IOV=ETA(n)`` for k = 1..K, ``CL=TVCL*EXP(ETA(1)+IOV)``; or ``IOV=OCC1*ETA(n)+...`` with
  ``IF(OCC.EQ.1) OCC1=1``), their ``$OMEGA BLOCK(1)`` then ``BLOCK(1) SAME`` (one variance):
  ``iov`` on the parameter, ``[data] occasion`` the column; assignments the model does not use
  (``TAD``) are left out and listed.
* ``$ERROR``: additive, proportional or combined error on ``F``/``IPRED``: ``Y=F+EPS(1)``,
  ``Y=F+F*EPS(1)``, ``Y=F+F*EPS(1)+EPS(2)``, ``Y=IPRED+W*EPS(1)`` with ``W=F``, ``W=THETA(a)``,
  ``W=THETA(b)*IPRED`` or ``W=SQRT(THETA(a)**2+THETA(b)**2*IPRED**2)``.
* ``$THETA`` (``init``, ``(low,init)``, ``(low,init,high)``, ``FIX``), ``$OMEGA`` (diagonal,
  ``DIAGONAL(n)``, ``BLOCK(n)``, ``SD``/``VARIANCE``; ``0 FIX`` is no BSV), ``$SIGMA``.
  ``$ESTIMATION``, ``$COVARIANCE`` and ``$TABLE`` are read past (pkmodel samples the posterior).

Initial estimates become prior centres: a structural ``THETA`` the ``typical`` value (prior SD
of its log 1, pkmodel's default), a covariate ``THETA`` the prior mean of its coefficient (prior
SD 1), each ``omega_prior``, ``iov_prior`` and residual prior scale twice the initial SD. A
control stream that pkmodel wrote carries pkmodel's own settings in comments (``; pkmodel
{...}``), so that writing a specification and reading it back gives the same specification.
"""

from __future__ import annotations

import ast
import copy
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from pkmodel.errors import ControlStreamError, SpecificationError
from pkmodel.pk.covariate_effects import CovariateTerm
from pkmodel.pk.covariate_registry import COVARIATES, Covariate
from pkmodel.pk.population.spec import Parameter, PopulationSpec, ResidualError
from pkmodel.pk.units import (
    concentration_from_internal,
    concentration_to_internal,
    from_internal,
    parameter_unit,
)

__all__ = ["ADVANS", "ImportedControlStream", "read_control_stream", "spec_toml",
           "write_control_stream"]


@dataclass(frozen=True)
class _Advan:
    """One supported ``$SUBROUTINE``: structure, TRANS and NONMEM's names of the parameters."""

    compartments: int
    oral: bool
    trans: int
    names: Mapping[str, str]  # NONMEM name -> pkmodel name

    @property
    def scale(self) -> str:
        """The scale of the observed compartment (``S1``, ``S2``)."""
        return "S2" if self.oral else "S1"

    @property
    def central(self) -> str:
        """NONMEM's name of the central volume."""
        return next(k for k, v in self.names.items() if v in ("v", "v1"))


#: The ADVANs pkmodel reads and writes, by number.
ADVANS: dict[int, _Advan] = {
    1: _Advan(1, False, 2, {"CL": "cl", "V": "v"}),
    2: _Advan(1, True, 2, {"CL": "cl", "V": "v", "KA": "ka"}),
    3: _Advan(2, False, 4, {"CL": "cl", "V1": "v1", "Q": "q", "V2": "v2"}),
    4: _Advan(2, True, 4, {"CL": "cl", "V2": "v1", "Q": "q", "V3": "v2", "KA": "ka"}),
    11: _Advan(3, False, 4, {"CL": "cl", "V1": "v1", "Q2": "q2", "V2": "v2", "Q3": "q3",
                             "V3": "v3"}),
    12: _Advan(3, True, 4, {"CL": "cl", "V2": "v1", "Q3": "q2", "V3": "v2", "Q4": "q3",
                            "V4": "v3", "KA": "ka"}),
}
_SUPPORTED = ("ADVAN1/ADVAN2 TRANS2, ADVAN3/ADVAN4/ADVAN11/ADVAN12 TRANS4")
_IOV_FORMS = ("inter-occasion variability as one eta per occasion: IOV = 0, IF(OCC.EQ.1) "
              "IOV = ETA(3), IF(OCC.EQ.2) IOV = ETA(4), ..., CL = TVCL*EXP(ETA(1)+IOV) (or "
              "IOV = OCC1*ETA(3) + OCC2*ETA(4) with IF(OCC.EQ.1) OCC1 = 1), the occasions "
              "numbered 1..K, $OMEGA BLOCK(1) x then $OMEGA BLOCK(1) SAME for each further "
              "occasion")
_RECORDS = ("PROBLEM", "INPUT", "DATA", "SUBROUTINES", "PK", "ERROR", "THETA", "OMEGA", "SIGMA",
            "ABBREVIATED", "ESTIMATION", "COVARIANCE", "TABLE", "SCATTERPLOT", "SIZES",
            "SIMULATION")
_PASSED = ("ESTIMATION", "COVARIANCE", "TABLE", "SCATTERPLOT", "SIZES", "SIMULATION")
#: The prior SDs the import states (pkmodel's defaults) and the factor on initial SDs.
PRIOR_LOG_SD = 1.0
THETA_PRIOR_SD = 1.0
SD_FACTOR = 2.0
#: The time unit of a control stream's dataset when none is given (NONMEM runs are in hours).
DEFAULT_TIME_UNIT = "hour"
#: The range of a covariate whose dataset cannot be read.
WIDE_RANGE = (-1.0e6, 1.0e6)
_TAG = re.compile(r"pkmodel(?:\s+([A-Za-z_]\w*))?\s*(\{.*\})")
#: NONMEM's reserved data items: of an alias pair (``CP=DV``) the one pkmodel's reader needs.
_DATA_ITEMS = ("ID", "TIME", "DV", "AMT", "RATE", "EVID", "MDV", "CMT", "SS", "II", "ADDL",
               "DATE", "DAT1", "DAT2", "DAT3")


# ----------------------------------------------------------------------------- lines, records
@dataclass
class _Line:
    number: int
    code: str
    comment: str

    @property
    def tag(self) -> tuple[str | None, dict] | None:
        match = _TAG.search(self.comment)
        if match is None:
            return None
        try:
            value = tomllib.loads("t = " + match.group(2))["t"]
        except tomllib.TOMLDecodeError:
            return None
        return match.group(1), value


@dataclass
class _Record:
    name: str
    line: int
    lines: list[_Line]

    @property
    def text(self) -> str:
        return " ".join(x.code for x in self.lines)

    def tags(self, name: str | None = None) -> dict:
        out: dict = {}
        for line in self.lines:
            tag = line.tag
            if tag is not None and tag[0] == name:
                out |= tag[1]
        return out


def _records(text: str, fail) -> list[_Record]:
    """The records of a control stream, each with its lines (comments apart)."""
    records: list[_Record] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        code, _, comment = raw.partition(";")
        stripped = code.strip()
        if stripped.startswith("$"):
            match = re.match(r"\$(\w+)\s*(.*)$", stripped)
            word = match.group(1).upper() if match else ""
            name = next((r for r in _RECORDS if word == r or (len(word) >= 3
                         and r.startswith(word))), None)
            if name is None:
                fail(number, stripped.split()[0] if stripped else "$",
                     f"the record ${word} is not supported; pkmodel reads $PROBLEM, $INPUT, "
                     "$DATA, $SUBROUTINES, $PK, $ERROR, $THETA, $OMEGA, $SIGMA (and reads past "
                     "$ESTIMATION, $COVARIANCE, $TABLE)")
            records.append(_Record(name, number, [_Line(number, match.group(2), comment)]))
        elif records:
            records[-1].lines.append(_Line(number, stripped, comment))
    return records


# ----------------------------------------------------------------------------- expressions
@dataclass
class _Value:
    """An expression with every variable it uses substituted, and the lines it came from."""

    node: ast.expr
    lines: frozenset[int]


def _call(name: str, *args: Any) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()),
                    args=[a if isinstance(a, ast.AST) else ast.Constant(a) for a in args],
                    keywords=[])


def _is_call(node: ast.AST, name: str) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == name)


def _index(node: ast.AST, name: str) -> int | None:
    """``n`` of ``THETA(n)`` (``ETA``, ``EPS``), else ``None``."""
    if _is_call(node, name) and len(node.args) == 1 and isinstance(node.args[0], ast.Constant):
        return int(node.args[0].value)
    return None


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    return None


def _factors(node: ast.AST, power: int = 1) -> list[tuple[ast.AST, int]]:
    """A product as its factors, each with power 1 or -1 (``EXP(a+b)`` is ``EXP(a)EXP(b)``,
    ``EXP(LOG(x))`` is ``x``)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return _factors(node.left, power) + _factors(node.right, power)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return _factors(node.left, power) + _factors(node.right, -power)
    if _is_call(node, "EXP") and len(node.args) == 1:
        arg = node.args[0]
        if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add):
            return _factors(_call("EXP", arg.left), power) + _factors(_call("EXP", arg.right),
                                                                       power)
        if _is_call(arg, "LOG") and len(arg.args) == 1:
            return _factors(arg.args[0], power)
        if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mult):
            for log, exponent in ((arg.left, arg.right), (arg.right, arg.left)):
                if _is_call(log, "LOG") and len(log.args) == 1:  # EXP(LOG(x)*e) = x**e
                    return [(ast.BinOp(log.args[0], ast.Pow(), exponent), power)]
    return [(node, power)]


def _distributed(node: ast.AST) -> ast.AST:
    """``a*(b + c)`` as ``a*b + a*c`` (and ``a*1`` as ``a``), through a sum: ``F*(1+EPS(1))``
    is ``F + F*EPS(1)``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return ast.BinOp(_distributed(node.left), ast.Add(), _distributed(node.right))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if isinstance(b, ast.BinOp) and isinstance(b.op, ast.Add):
                return _distributed(ast.BinOp(ast.BinOp(a, ast.Mult(), b.left), ast.Add(),
                                              ast.BinOp(a, ast.Mult(), b.right)))
            if _number(b) == 1.0:
                return _distributed(a)
    return node


def _occasion_marker(column: str, k: float, node: ast.AST, line: int) -> ast.Call | None:
    """``IF(OCC.EQ.k) IOV = ETA(n)`` as ``OCCASION_ETA(OCC, k, n, line)``, ``IF(OCC.EQ.k)
    OCC1 = 1`` as ``OCCASION_IS(OCC, k, line)``; else ``None``."""
    n = _index(node, "ETA")
    if n is not None:
        return _call("OCCASION_ETA", column, k, n, line)
    if _number(node) == 1.0:
        return _call("OCCASION_IS", column, k, line)
    return None


def _occasion_eta(node: ast.AST) -> tuple[str, float, int, int] | None:
    """``(column, k, n, line)`` of an occasion's eta: ``OCCASION_ETA(...)`` or the product of
    an indicator ``OCCASION_IS(...)`` and ``ETA(n)`` (``OCC1*ETA(3)``)."""
    if _is_call(node, "OCCASION_ETA"):
        return tuple(a.value for a in node.args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if _is_call(a, "OCCASION_IS") and _index(b, "ETA") is not None:
                column, k, line = (x.value for x in a.args)
                return column, k, _index(b, "ETA"), line
    return None


def _if_lines(node: ast.AST) -> list[int]:
    """The lines of the one-line IFs in an expression that are not an indicator effect."""
    return [n.args[-1].value for n in ast.walk(node)
            if any(_is_call(n, m) for m in ("UNSUPPORTED_IF", "OCCASION_ETA", "OCCASION_IS"))]


def _terms(node: ast.AST) -> list[ast.AST]:
    """A sum as its terms."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _terms(node.left) + _terms(node.right)
    return [node]


def _difference(node: ast.AST) -> tuple[str, float] | None:
    """``(X, ref)`` of ``X - ref`` (or ``X``: ref 0)."""
    if isinstance(node, ast.Name):
        return node.id, 0.0
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) \
            and isinstance(node.left, ast.Name) and _number(node.right) is not None:
        return node.left.id, _number(node.right)
    return None


def _theta_times(node: ast.AST) -> tuple[int, tuple[str, float]] | None:
    """``(n, (X, ref))`` of ``THETA(n)*(X-ref)`` in either order."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return None
    for a, b in ((node.left, node.right), (node.right, node.left)):
        n, diff = _index(a, "THETA"), _difference(b)
        if n is not None and diff is not None:
            return n, diff
    return None


# ----------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class ImportedControlStream:
    """A control stream read as a specification.

    Attributes
    ----------
    spec : PopulationSpec
    toml : str
        The specification's TOML file, each value commented with where it came from.
    notes : tuple of str
        What was left out or assumed (also in the TOML's header).
    """

    spec: PopulationSpec
    toml: str
    notes: tuple[str, ...]


@dataclass
class _Estimate:
    """A ``$THETA``, ``$OMEGA`` or ``$SIGMA`` entry."""

    value: float
    line: int
    fixed: bool = False
    low: float | None = None
    high: float | None = None
    block: int | None = None
    tag: dict = field(default_factory=dict)
    size: int = 1  # of its BLOCK
    origin: _Estimate | None = None  # the estimate a BLOCK SAME repeats


# ----------------------------------------------------------------------------- reading
def read_control_stream(path: str | os.PathLike, *, time_unit: str | None = None,
                        concentration_unit: str | None = None, amount_unit: str | None = None,
                        drug: str | None = None) -> ImportedControlStream:
    """Read a NONMEM control stream of the supported subset as a specification.

    Parameters
    ----------
    path : str or path-like
        The control stream (``RUN.mod``, ``RUN.ctl``).
    time_unit : {"hour", "day", "week"}, optional
        The unit of the dataset's ``TIME``, which a control stream does not state (default
        ``hour``, or what a control stream written by pkmodel says).
    concentration_unit, amount_unit : str, optional
        The units of ``DV`` and ``AMT`` (default ``µg/mL``, ``mg``): the additive error's prior
        is converted from them.
    drug : str, optional
        The drug's name for plot labels.

    Returns
    -------
    ImportedControlStream
        The specification, its TOML text and the notes.

    Raises
    ------
    ControlStreamError
        For a record, statement or estimate outside the supported subset, naming the file,
        the line and the statement, and what is supported.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        raise ControlStreamError("no such control stream", source=str(path)) from None
    except OSError as exc:
        raise ControlStreamError(f"cannot read the control stream ({exc})",
                                 source=str(path)) from None
    options = {"time_unit": time_unit, "concentration_unit": concentration_unit,
               "amount_unit": amount_unit, "drug": drug}
    return _Reader(path, text, {k: v for k, v in options.items() if v is not None}).read()


class _Reader:
    """One control stream read into a specification."""

    def __init__(self, path: Path, text: str, options: dict) -> None:
        self.path = path
        self.options = options
        self.records = _records(text, self.fail)
        self.notes: list[str] = []
        self.comments: dict[tuple, str] = {}
        self.used_thetas: dict[int, int] = {}  # THETA index -> line of use
        self.used_etas: dict[int, str] = {}
        self.iov_etas: set[int] = set()
        self.occasions: tuple[str, int, str] | None = None  # IOV: column, K, parameter
        self.context: frozenset[int] = frozenset()
        self.ignore = "#"  # NONMEM's default
        self.unused_lines: dict[int, str] = {}

    def fail(self, line: int | None, statement: str, message: str) -> NoReturn:
        """Refuse, naming the file, the line and the statement."""
        raise ControlStreamError(f"{statement.strip()}: {message}", source=str(self.path),
                                 line=line)

    def record(self, name: str, required: bool = True) -> list[_Record]:
        found = [r for r in self.records if r.name == name]
        if required and not found:
            self.fail(None, f"${name}", f"the control stream has no ${name} record")
        return found

    # ------------------------------------------------------------------ the whole
    def read(self) -> ImportedControlStream:
        """The specification, its TOML text and the notes."""
        self.passed()
        settings = self.settings()
        self.advan_number, advan_line = self.subroutine()
        self.advan = ADVANS[self.advan_number]
        self.columns = self.inputs()
        self.data_file = self.data()
        self.thetas = self.estimates("THETA")
        self.omegas = self.estimates("OMEGA")
        self.sigmas = self.estimates("SIGMA")
        self.replace = self.abbreviations()
        parameters, terms = self.parameters(self.statements(self.record("PK")[0], "PK"))
        residual = self.residual()
        blocks = self.blocks(parameters)
        declared = self.declarations(terms)
        self.notes += [f"THETA({n}) (line {est.line}) is not used by the model"
                       for n, est in enumerate(self.thetas, start=1) if n not in self.used_thetas]
        keys = {k: settings.pop(k) for k in ("infusion_hours", "lkj_eta") if k in settings}
        keys["occasion"] = self.occasion(settings.pop("occasion", None))
        try:
            spec = PopulationSpec(parameters=parameters, compartments=self.advan.compartments,
                                  dosing=self.dosing(advan_line), covariates=tuple(terms),
                                  residual=residual, covariate_definitions=declared,
                                  bsv_blocks=blocks, **keys, **settings)
        except SpecificationError as exc:
            self.fail(None, self.path.name, f"the model read from it is not valid: {exc}")
        header = [f"pkmodel specification imported from the NONMEM control stream "
                  f"{self.path.name} (pkmodel pk import-nonmem)."]
        header += [f"note: {n}" for n in self.notes]
        return ImportedControlStream(spec, spec_toml(spec, self.comments, header),
                                     tuple(self.notes))

    def passed(self) -> None:
        """Note the records read past; refuse a second problem."""
        for r in self.records:
            if r.name in _PASSED:
                self.notes.append(f"${r.name} (line {r.line}) read past: no part of a pkmodel "
                                  "specification (pkmodel samples the posterior by NUTS)")
        problems = self.record("PROBLEM", required=False)
        if len(problems) > 1:
            self.fail(problems[1].line, f"$PROBLEM {problems[1].text.strip()}", "one problem "
                      "per control stream: pkmodel reads one; split the file")

    def occasion(self, tagged: str | None) -> str:
        """``[data] occasion``: the column the occasions' IFs compare, or pkmodel's own
        ``"dose"`` (which a control stream pkmodel wrote carries in a comment)."""
        if self.occasions is None:
            return tagged or "OCC"
        column, k, _ = self.occasions
        if tagged is not None and tagged.lower() == "dose":
            self.comments[("data", "occasion")] = (
                f"pkmodel's own setting (its comment): each dose starts an occasion; NONMEM "
                f"reads them 1..{k} from {column}")
            return tagged
        self.comments[("data", "occasion")] = (f"the column of IF({column}.EQ.k), occasions "
                                               f"1..{k}")
        return self.columns[column]

    def dosing(self, advan_line: int) -> str:
        """The structure's dosing, commented: oral from the ADVAN, else by ``RATE``."""
        self.comments[("model", "compartments")] = (
            f"$SUBROUTINE ADVAN{self.advan_number} TRANS{self.advan.trans}, line {advan_line}")
        if self.advan.oral:
            self.comments[("model", "dosing")] = "first-order absorption (the ADVAN's KA)"
            return "oral"
        if "RATE" in self.columns:
            self.comments[("model", "dosing")] = "$INPUT has RATE: zero-order infusions"
            return "infusion"
        self.comments[("model", "dosing")] = "$INPUT has no RATE: IV boluses"
        return "bolus"

    # ------------------------------------------------------------------ settings
    def abbreviations(self) -> dict[str, str]:
        """``$ABBREVIATED REPLACE NAME=ETA(n)`` (``THETA``, ``EPS``): the names, by what they
        stand for; ``DERIV2``, ``PROTECT`` and ``COMRES`` settings are read past."""
        out: dict[str, str] = {}
        for rec in self.record("ABBREVIATED", required=False):
            text = rec.text.upper().strip()
            match = re.fullmatch(r"REPLACE\s+([A-Z]\w*)\s*=\s*((?:THETA|ETA|EPS)\(\d+\))", text)
            if match:
                out[match.group(1)] = match.group(2)
            elif not re.fullmatch(r"((DERIV2|DERIV2_NO_COMMON|PROTECT|COMRES|FASTDER)"
                                  r"(\s*=\s*\S+)?\s*)+", text):
                self.fail(rec.line, f"$ABBREVIATED {rec.text.strip()}", "pkmodel reads $ABBR "
                          "REPLACE NAME=ETA(n) (THETA(n), EPS(n)) only")
        return out

    def settings(self) -> dict:
        """Units and pkmodel's own settings: the options, else a pkmodel tag of ``$PROBLEM``."""
        problem = self.record("PROBLEM", required=False)
        tag = problem[0].tags() if problem else {}
        allowed = ("time_unit", "concentration_unit", "amount_unit", "drug", "blq",
                   "lloq_ug_ml", "lkj_eta", "infusion_hours", "occasion")
        out = {k: v for k, v in tag.items() if k in allowed} | self.options
        if "time_unit" not in out:
            out["time_unit"] = DEFAULT_TIME_UNIT
            self.comments[("data", "time_unit")] = (
                "a control stream does not state it: the default (TIME in hours); give "
                "--time-unit if not")
        elif "time_unit" in self.options:
            self.comments[("data", "time_unit")] = "--time-unit (a control stream does not "\
                                                   "state it)"
        self.concentration_unit = out.get("concentration_unit", "µg/mL")
        return out

    def subroutine(self) -> tuple[int, int]:
        """The ADVAN's number and the line of ``$SUBROUTINES``."""
        rec = self.record("SUBROUTINES")[0]
        words = rec.text.upper().split()
        advan = [w for w in words if w.startswith("ADVAN")]
        trans = [w for w in words if w.startswith("TRANS")]
        statement = f"$SUBROUTINE {rec.text.strip()}"
        number = int(advan[0][5:]) if advan and advan[0][5:].isdigit() else None
        if number not in ADVANS:
            self.fail(rec.line, statement, f"pkmodel reads {_SUPPORTED} (closed-form linear "
                      "models); write the model with one of them, or fit it in NONMEM")
        found = ADVANS[number]
        given = int(trans[0][5:]) if trans and trans[0][5:].isdigit() else 1
        if given != found.trans:
            self.fail(rec.line, statement, f"ADVAN{number} is read with TRANS{found.trans} "
                      f"only ({', '.join(found.names)}); pkmodel reads {_SUPPORTED}")
        other = [w for w in words if not w.startswith(("ADVAN", "TRANS"))]
        if other:
            self.fail(rec.line, statement, f"{' '.join(other)} is not supported; give "
                      "ADVANn TRANSm alone")
        return number, rec.line

    def inputs(self) -> dict[str, str]:
        """``$INPUT``: each name usable in the code -> the dataset column's name."""
        rec = self.record("INPUT")[0]
        out: dict[str, str] = {}
        self.order: list[str] = []
        for word in re.split(r"[\s,]+", re.sub(r"\s*=\s*", "=", rec.text.upper()).strip()):
            first, _, second = word.partition("=")
            if second in ("DROP", "SKIP"):
                self.order.append(first)
                continue
            self.order.append(first)
            column = second if second in _DATA_ITEMS else first  # CP=DV: the column is DV
            out[first] = column
            if second:
                out[second] = column
        if "EVID" not in out:
            self.notes.append("$INPUT has no EVID: pkmodel's reader needs it (1 a dose, 0 an "
                              "observation: NONMEM's default is a dose where AMT > 0)")
        self.notes.append("pkmodel reads the dataset by its header: name the columns as "
                          f"$INPUT (line {rec.line}) does")
        return out

    def data(self) -> Path | None:
        recs = self.record("DATA", required=False)
        if not recs:
            return None
        rec = recs[0]
        words = re.sub(r"=\s+", "=", rec.text).split()
        if not words:
            self.fail(rec.line, "$DATA", "no data file named")
        for word in words[1:]:
            key, _, value = word.upper().partition("=")
            char = value.strip("'")
            if key == "IGNORE" and len(char) == 1:
                self.ignore = char
                self.notes.append(f"$DATA IGNORE={char} (line {rec.line}): pkmodel reads the "
                                  "dataset's header row as its column names")
            elif key in ("IGNORE", "ACCEPT") or key.startswith(("IGN", "ACC")):
                self.fail(rec.line, f"$DATA {rec.text.strip()}", f"{word}: conditions on the "
                          "rows are not supported; remove those rows from the dataset and the "
                          "condition from $DATA")
            elif key not in ("REWIND", "NOREWIND", "WIDE", "NOWIDE"):
                self.fail(rec.line, f"$DATA {rec.text.strip()}", f"{word} is not supported; "
                          "$DATA FILE [IGNORE=c] only")
        return (self.path.parent / words[0].strip("'\"")).resolve()

    # ------------------------------------------------------------------ estimates
    def estimates(self, name: str) -> list[_Estimate]:
        out: list[_Estimate] = []
        block = 0
        previous: list[_Estimate] = []  # the last BLOCK, which a BLOCK SAME repeats
        for rec in self.record(name, required=name != "OMEGA"):
            items = self._items(rec, name)
            if items and isinstance(items[0], tuple) and items[0][0] == "BLOCK":
                block += 1
                previous = self._block(rec, items, block, name, previous)
                out += previous
            else:
                previous = []
                out += self._diagonal(rec, items, name)
        return out

    def _items(self, rec: _Record, name: str) -> list:
        """The record's tokens: numbers (with their line), keywords, ``(low,init,high)``."""
        items: list = []
        for line in rec.lines:
            code = line.code.upper()
            for token in re.findall(r"\([^()]*\)|BLOCK\s*\(\s*\d+\s*\)|DIAG\w*\s*\(\s*\d+\s*\)"
                                    r"|[^\s,()]+", code):
                compact = token.replace(" ", "")
                if compact.startswith("BLOCK"):  # BLOCK SAME: the size of the last block
                    items.append(("BLOCK", int(compact[6:-1]) if compact != "BLOCK" else None,
                                  line))
                elif compact.startswith("DIAG"):
                    continue
                elif compact.startswith("("):
                    items.append(("GROUP", compact[1:-1], line))
                elif re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([ED][-+]?\d+)?", compact):
                    items.append((float(compact.replace("D", "E")), line))
                elif compact in ("FIX", "FIXED", "SD", "STANDARD", "VARIANCE", "VAR",
                                 "CORRELATION", "COVARIANCE", "SAME"):
                    items.append(compact)
                else:
                    self.fail(line.number, f"${name} {line.code.strip()}",
                              f"{token} is not supported; pkmodel reads initial estimates, "
                              "(low, init, high), FIX, BLOCK(n), DIAGONAL(n), SD, VARIANCE and "
                              "BLOCK(1) SAME")
        return items

    def _diagonal(self, rec: _Record, items: list, name: str) -> list[_Estimate]:
        out: list[_Estimate] = []
        sd = False
        for item in items:
            if item in ("FIX", "FIXED"):
                if not out:
                    self.fail(rec.line, f"${name} {rec.text.strip()}", "FIX before a value")
                out[-1].fixed = True
            elif item in ("SD", "STANDARD"):
                sd = True
            elif item in ("VARIANCE", "VAR"):
                sd = False
            elif isinstance(item, str):
                self.fail(rec.line, f"${name} {rec.text.strip()}", f"{item} is for a BLOCK")
            elif item[0] == "GROUP":
                out.append(self._group(item[1], item[2], name))
            else:
                value = item[0] ** 2 if sd and name != "THETA" else item[0]
                out.append(_Estimate(value, item[1].number, tag=_line_tag(item[1])))
        return out

    def _group(self, text: str, line: _Line, name: str) -> _Estimate:
        statement = f"${name} {line.code.strip()}"
        fixed = bool(re.search(r"\bFIX(ED)?\b", text))
        parts = [p.strip() for p in re.sub(r"\bFIX(ED)?\b", "", text).split(",")]
        try:
            values = [None if p in ("", "-INF", "INF") else float(p.replace("D", "E"))
                      for p in parts]
        except ValueError:
            self.fail(line.number, statement, f"({text}) is not (low, init, high)")
        if not 1 <= len(values) <= (3 if name == "THETA" else 1) \
                or values[min(1, len(values) - 1)] is None:
            self.fail(line.number, statement, f"({text}): give (low, init) or (low, init, "
                      "high) with an initial estimate")
        if len(values) == 1:
            values = [None, values[0]]
        return _Estimate(values[1], line.number, fixed, values[0],
                         values[2] if len(values) == 3 else None, tag=_line_tag(line))

    def _block(self, rec: _Record, items: list, block: int, name: str,
               previous: list[_Estimate]) -> list[_Estimate]:
        size = items[0][1]
        numbers = [i for i in items[1:] if isinstance(i, tuple) and isinstance(i[0], float)]
        words = {i for i in items[1:] if isinstance(i, str)}
        statement = f"${name} {rec.text.strip()}"
        if "SAME" in items:
            return self._same(rec, items, block, name, previous)
        if size is None:
            self.fail(rec.line, statement, "BLOCK needs its size, BLOCK(n) (BLOCK alone is "
                      "read before SAME only)")
        if len(numbers) != size * (size + 1) // 2:
            self.fail(rec.line, statement, f"BLOCK({size}) needs {size * (size + 1) // 2} "
                      f"values (the lower triangle), not {len(numbers)}")
        if words & {"FIX", "FIXED"}:
            self.fail(rec.line, statement, "a fixed OMEGA block is not supported: pkmodel "
                      "estimates every omega (remove FIX)")
        if name == "SIGMA":
            self.fail(rec.line, statement, "a $SIGMA BLOCK is not supported; give each EPS "
                      "its own $SIGMA")
        sd = bool(words & {"SD", "STANDARD"})
        out, k = [], 0
        for row in range(1, size + 1):
            k += row
            value, line = numbers[k - 1]
            out.append(_Estimate(value**2 if sd else value, line.number, block=block,
                                 tag=_line_tag(line), size=size))
        return out

    def _same(self, rec: _Record, items: list, block: int, name: str,
              previous: list[_Estimate]) -> list[_Estimate]:
        """``$OMEGA BLOCK(n) SAME``: the etas of the last block again, sharing its
        variances (NONMEM's way of giving the occasions' etas of an IOV one variance)."""
        statement = f"${name} {rec.text.strip()}"
        size = items[0][1]
        if name != "OMEGA":
            self.fail(rec.line, statement, "SAME is read in $OMEGA only")
        if items[1:] != ["SAME"]:
            self.fail(rec.line, statement, "BLOCK(n) SAME takes nothing else (no values, FIX "
                      "or SAME(n)): write one $OMEGA BLOCK(1) SAME for each further occasion")
        if not previous or (size is not None and size != len(previous)):
            self.fail(rec.line, statement, "SAME repeats the $OMEGA BLOCK just before it, "
                      + ("and there is none" if not previous
                         else f"a BLOCK({len(previous)}), not a BLOCK({size})"))
        return [_Estimate(e.value, rec.line, block=block, size=e.size,
                          origin=e.origin or e) for e in previous]

    # ------------------------------------------------------------------ statements
    def statements(self, rec: _Record | None, name: str) -> dict[str, _Value]:
        """The assignments of ``$PK`` or ``$ERROR`` in order, each variable's final value with
        the variables it uses substituted."""
        env: dict[str, _Value] = {}
        if rec is None:
            self.fail(None, f"${name}", f"the control stream has no ${name} record")
        first = re.sub(r"^\(.*?\)", "", rec.lines[0].code.strip()).strip()
        lines = [_Line(rec.line, first, rec.lines[0].comment), *rec.lines[1:]]
        for line in lines:
            code = line.code.strip().upper()
            for short, long in self.replace.items():
                code = re.sub(rf"\b{short}\b", long, code)
            if not code:
                continue
            self.unused_lines[line.number] = line.code.strip()
            if re.match(r"^(IF\s*\(.*\)\s*THEN|ELSE|END\s*IF|ENDIF|DO\b|CALL|EXIT|\")", code):
                self.fail(line.number, line.code, "IF ... THEN blocks, loops, CALL, EXIT and "
                          "verbatim code are not supported; pkmodel reads assignments and "
                          "one-line IF(X.LT.c) TV=TV*(1+THETA(n))")
            match = re.match(r"^IF\s*\((.+?)\)\s*([A-Z]\w*)\s*=(.+)$", code)
            if match:
                self._if(env, line, *match.groups())
                continue
            match = re.match(r"^([A-Z]\w*)\s*=(.+)$", code)
            if not match:
                self.fail(line.number, line.code, "not an assignment NAME = expression")
            target, expr = match.groups()
            value = self._substitute(self._parse(expr, line), env)
            env[target] = _Value(value.node, value.lines | {line.number})
        return env

    def _parse(self, expr: str, line: _Line) -> ast.expr:
        try:
            return ast.parse(expr.strip(), mode="eval").body
        except SyntaxError:
            self.fail(line.number, line.code, "an expression pkmodel cannot read")

    def _substitute(self, node: ast.expr, env: dict[str, _Value]) -> _Value:
        lines: set[int] = set()

        class Sub(ast.NodeTransformer):
            def visit_Name(self, name: ast.Name) -> ast.AST:
                if name.id in env:
                    lines.update(env[name.id].lines)
                    return copy.deepcopy(env[name.id].node)
                return name

        out = Sub().visit(copy.deepcopy(node))
        return _Value(out, frozenset(lines))

    def _if(self, env: dict[str, _Value], line: _Line, condition: str, target: str,
            expr: str) -> None:
        """A one-line IF: the indicator effect ``IF(X.LT.c) TV=TV*(1+THETA(n))``, an occasion's
        eta ``IF(OCC.EQ.k) IOV=ETA(n)`` or indicator ``IF(OCC.EQ.k) OCC1=1``; others are kept
        as a marker that fails where the model uses the variable."""
        marker = _call("UNSUPPORTED_IF", line.number)
        for symbol, word in (("<=", ".LE."), (">=", ".GE."), ("==", ".EQ."), ("/=", ".NE."),
                             ("<", ".LT."), (">", ".GT.")):
            condition = condition.replace(symbol, word)
        cond = re.fullmatch(r"\s*([A-Z]\w*)\s*\.(LT|GT|LE|GE|EQ|NE)\.\s*([-+.\dE]+)\s*",
                            condition)
        node = self._parse(expr, line)
        factors = _factors(node)
        if cond and cond.group(2) in ("LT", "GT") and len(factors) == 2:
            names = [f for f, p in factors if isinstance(f, ast.Name) and f.id == target]
            rest = [f for f, p in factors if not (isinstance(f, ast.Name) and f.id == target)]
            if names and len(rest) == 1 and isinstance(rest[0], ast.BinOp) \
                    and isinstance(rest[0].op, ast.Add):
                parts = [rest[0].left, rest[0].right]
                one = [p for p in parts if _number(p) == 1.0]
                theta = [_index(p, "THETA") for p in parts if _index(p, "THETA") is not None]
                if one and theta:
                    marker = _call("INDICATOR", cond.group(1), cond.group(2),
                                   float(cond.group(3)), theta[0], line.number)
        if cond and cond.group(2) == "EQ" and _number(node) is not None and target == "W":
            self.notes.append(f"line {line.number}: {line.code.strip()} (a guard) left out")
            self.unused_lines.pop(line.number, None)
            return
        before = env.get(target)
        if cond and cond.group(2) == "EQ":
            occasion = _occasion_marker(cond.group(1), float(cond.group(3)), node, line.number)
            if occasion is not None:  # IOV = 0, then one IF per occasion: their sum
                terms = [] if before is None or _number(before.node) == 0 else \
                    _terms(before.node)
                if all(_is_call(t, occasion.func.id) for t in terms):
                    value = occasion if not terms else ast.BinOp(before.node, ast.Add(),
                                                                 occasion)
                    env[target] = _Value(value, frozenset({line.number})
                                         | (before.lines if before else frozenset()))
                    return
        value = marker if before is None else ast.BinOp(before.node, ast.Mult(), marker)
        lines = frozenset({line.number}) | (before.lines if before else frozenset())
        env[target] = _Value(value, lines)

    # ------------------------------------------------------------------ $PK
    def parameters(self, pk: dict[str, _Value]) -> tuple[dict[str, Parameter], list]:
        parameters: dict[str, Parameter] = {}
        terms: list[CovariateTerm] = []
        for nonmem, name in self.advan.names.items():
            if nonmem not in pk:
                self.fail(self.record("PK")[0].line, "$PK", f"{nonmem} is not assigned; "
                          f"ADVAN{self.advan_number} TRANS{self.advan.trans} needs "
                          f"{', '.join(self.advan.names)}")
            value = pk[nonmem]
            self._use(value)
            parameters[name], more = self._parameter(nonmem, name, value)
            terms += more
        self._scale(pk)
        for reserved in [k for k in pk if re.fullmatch(r"(F|ALAG|R|D|S)\d+|MTIME\d*|TSCALE"
                                                       r"|FO|XSCALE|K\d*|K\d+T?\d+", k)]:
            if reserved in (self.advan.scale, "F1") or reserved.startswith("K"):
                continue
            number = max(pk[reserved].lines)
            self.fail(number, self._statement(number),
                      f"{reserved} is not supported: pkmodel's models have bioavailability 1, "
                      "no lag time and no modelled rate or duration")
        for n in pk.get("F1", _Value(ast.Constant(1), frozenset())).lines:
            self.unused_lines.pop(n, None)
        if "F1" in pk and _number(pk["F1"].node) != 1.0:
            self.fail(max(pk["F1"].lines), "F1", "F1 must be 1 (CL and V are then apparent)")
        for number, statement in sorted(self.unused_lines.items()):
            self.notes.append(f"line {number}: {statement} is not used by the model: left out")
        self.unused_lines = {}
        return parameters, terms

    def _use(self, value: _Value) -> None:
        for n in value.lines:
            self.unused_lines.pop(n, None)

    def _scale(self, pk: dict[str, _Value]) -> None:
        scale = self.advan.scale
        if scale not in pk:
            self.notes.append(f"no {scale} in $PK: pkmodel predicts amount / central volume "
                              f"({scale} = {self.advan.central})")
            return
        value = pk[scale]
        self._use(value)
        central = pk[self.advan.central]
        if ast.dump(value.node) != ast.dump(central.node):
            self.fail(max(value.lines), self._statement(max(value.lines)),
                      f"the scale must be the central volume ({scale} = "
                      f"{self.advan.central}); pkmodel converts units itself: state "
                      "--concentration-unit and --amount-unit")

    def _parameter(self, nonmem: str, name: str,
                   value: _Value) -> tuple[Parameter, list[CovariateTerm]]:
        line = max(value.lines)
        statement = self._statement(line).strip()
        self.context = value.lines
        typical: int | None = None
        eta: int | None = None
        occasions: list[tuple[str, float, int, int]] = []  # IOV: (column, k, ETA, line)
        columns: list[str] = []
        divisors: list[float] = []
        terms: list[CovariateTerm | None] = []  # None: the place of a column factor
        for factor, power in _factors(value.node):
            n = _index(factor, "THETA")
            log_n = _index(factor.args[0], "THETA") if _is_call(factor, "EXP") else None
            if n is not None and power == 1 and typical is None:
                typical = n
            elif log_n is not None and power == 1 and typical is None:  # EXP(THETA(n)): log TV
                typical = -log_n
            elif _is_call(factor, "EXP") and _index(factor.args[0], "ETA") is not None \
                    and eta is None:
                eta = _index(factor.args[0], "ETA")
            elif _is_call(factor, "EXP") and _occasion_eta(factor.args[0]) is not None:
                occasions.append(_occasion_eta(factor.args[0]))
            elif isinstance(factor, ast.Name) and factor.id in self.columns and power == 1:
                columns.append(factor.id)
                terms.append(None)
            elif _number(factor) is not None and power == -1 and _number(factor) > 0:
                divisors.append(_number(factor))
            elif _if_lines(factor):  # an IF other than the forms above
                number = min(_if_lines(factor))
                self.fail(number, self._statement(number), "this IF is not supported: pkmodel "
                          "reads IF(X.LT.c) TV=TV*(1+THETA(n)) (or .GT.), an indicator effect, "
                          f"and {_IOV_FORMS}")
            else:
                terms.append(self._term(name, factor, power, line, statement))
        if typical is None:
            self.fail(line, statement, f"{nonmem} needs a typical value THETA(n) as a factor "
                      "(TVCL = THETA(1); CL = TVCL*EXP(ETA(1)))")
        if len(columns) > 1 or len(divisors) > len(columns):
            self.fail(line, statement, "a covariate factor pkmodel cannot read; supported: "
                      "X, X/ref, (X/ref)**THETA(n), EXP(THETA(n)*(X-ref)), "
                      "(1+THETA(n)*(X-ref)), IF(X.LT.c) TV=TV*(1+THETA(n))")
        if columns:  # TVCL = THETA(1)*WGT or THETA(1)*WT/70: a power with exponent 1
            reference = divisors[0] if divisors else 1.0
            key = ("covariates", self._key(name, columns[0]))
            self.comments[key] = f"line {line}: {statement}"
            self.comments[(*key, "exponent")] = f"{columns[0]} as a factor: exponent 1, fixed"
            terms[terms.index(None)] = CovariateTerm(name, columns[0], "power", reference, 1.0)
        return self._typical(name, typical, eta, occasions, line, statement), terms

    def _key(self, parameter: str, code: str) -> str:
        """How :func:`spec_toml` finds the comments of a term: parameter and column."""
        library = {c: cov for cov in COVARIATES.values() for c in cov.columns}
        column = library[code].columns[0] if code in library else self.columns.get(code, code)
        return f"@{parameter}{column}"

    def _locate(self, needle: str, line: int) -> tuple[int, str]:
        """The line (and its statement) among those of the parameter being read that holds
        ``needle``; else ``line``."""
        compact = re.compile(r"(?<![A-Z0-9_])" + re.escape(needle.replace(" ", "").upper()))
        for number in sorted(self.context):  # ETA(2) is not in THETA(2)
            if compact.search(self._statement(number).replace(" ", "").upper()):
                return number, self._statement(number)
        return line, self._statement(line)

    def _statement(self, number: int) -> str:
        for rec in self.records:
            for line in rec.lines:
                if line.number == number:
                    return line.code
        return ""

    def _theta(self, n: int, line: int, statement: str) -> _Estimate:
        if not 1 <= n <= len(self.thetas):
            self.fail(line, statement, f"THETA({n}) has no $THETA ({len(self.thetas)} given)")
        if n in self.used_thetas:
            self.fail(*self._locate(f"THETA({n})", line), f"THETA({n}) is used twice (also on line "
                      f"{self.used_thetas[n]}); pkmodel gives each THETA one role")
        self.used_thetas[n] = line
        return self.thetas[n - 1]

    def _typical(self, name: str, n: int, eta: int | None,
                 occasions: list[tuple[str, float, int, int]], line: int,
                 statement: str) -> Parameter:
        log = n < 0  # EXP(THETA(n)): the THETA is the log of the typical value
        n = abs(n)
        theta = self._theta(n, line, statement)
        if theta.value <= 0 and not log:
            self.fail(theta.line, f"THETA({n}) = {theta.value:g}", "a typical value must be "
                      "positive")
        where = ("FIX" if theta.fixed else "initial estimate")
        path = ("parameters", name)
        self.comments[(*path, "typical")] = (
            f"{'exp of ' if log else ''}THETA({n}) {where}, line {theta.line} ({statement}, "
            f"line {line})")
        typical = math.exp(theta.value) if log else theta.value
        entry: dict[str, Any] = {"typical": typical, "fixed": theta.fixed}
        if not theta.fixed:
            entry["prior_log_sd"] = theta.tag.get("prior_log_sd", PRIOR_LOG_SD)
            if "prior_log_sd" not in theta.tag:
                self.comments[(*path, "prior_log_sd")] = (
                    "prior width stated by the import (pkmodel's default: a factor of about 7 "
                    "either way at 95 %)")
            if theta.low not in (None, 0.0) or theta.high is not None \
                    or (log and theta.low is not None):
                self.notes.append(f"THETA({n}) bounds (line {theta.line}) not used: the typical "
                                  "value's prior is log-normal")
        if eta is not None:
            entry |= self._eta(name, eta, line, statement, theta.fixed)
        if occasions:
            entry |= self._iov(name, occasions, line, statement, theta.fixed)
        if "centred" in theta.tag:
            entry["centred"] = theta.tag["centred"]
        return Parameter(**entry)

    def _eta(self, name: str, k: int, line: int, statement: str, fixed: bool) -> dict:
        if not 1 <= k <= len(self.omegas):
            self.fail(line, statement, f"ETA({k}) has no $OMEGA ({len(self.omegas)} given)")
        if k in self.used_etas:
            self.fail(line, statement, f"ETA({k}) is on {self.used_etas[k]} too; pkmodel gives "
                      "each parameter its own eta")
        self.used_etas[k] = name
        omega = self.omegas[k - 1]
        path = ("parameters", name)
        if omega.fixed and omega.value == 0:
            self.notes.append(f"ETA({k}) of {name} has $OMEGA 0 FIX (line {omega.line}): no BSV")
            return {}
        if omega.origin is not None:
            self.fail(omega.line, self._omega_statement(omega), f"ETA({k}) of {name} is a "
                      "SAME block: pkmodel reads SAME for the occasions of an inter-occasion "
                      f"variability only ({_IOV_FORMS})")
        if omega.fixed:
            self.fail(omega.line, f"$OMEGA {omega.value:g} FIX", "pkmodel estimates every omega: "
                      "remove FIX (or write 0 FIX for no BSV)")
        if fixed:
            self.fail(line, statement, "a fixed typical value (THETA FIX) cannot have BSV in "
                      "pkmodel: fix the omega at 0 or estimate the THETA")
        if omega.value <= 0:
            self.fail(omega.line, f"$OMEGA {omega.value:g}", "an omega must be positive")
        sd = math.sqrt(omega.value)
        self.comments[(*path, "bsv")] = f"ETA({k}), {statement} (line {line})"
        if "omega_prior" in omega.tag:
            return {"bsv": True, "omega_prior": omega.tag["omega_prior"]}
        self.comments[(*path, "omega_prior")] = (
            f"prior width stated by the import: {SD_FACTOR:g} x the initial SD sqrt("
            f"{omega.value:g}) ($OMEGA line {omega.line})")
        return {"bsv": True, "omega_prior": _rounded(SD_FACTOR * sd)}

    def _iov(self, name: str, found: list[tuple[str, float, int, int]], line: int,
             statement: str, fixed: bool) -> dict:
        """``iov`` and ``iov_prior`` of a parameter from its occasions' etas, which must be
        ``IF(OCC.EQ.k)`` for k = 1..K on one column, each a ``$OMEGA BLOCK(1)``, the first with
        the initial variance and the others ``SAME``."""
        found = sorted(found, key=lambda f: f[1])
        columns = list(dict.fromkeys(f[0] for f in found))
        if len(columns) > 1:
            self.fail(found[0][3], self._statement(found[0][3]), f"the occasions of {name}'s "
                      f"IOV compare {' and '.join(columns)}: pkmodel reads them from one column; "
                      f"supported: {_IOV_FORMS}")
        column = columns[0]
        self._column(column, found[0][3], self._statement(found[0][3]))
        numbers = [k for _, k, _, _ in found]
        wrong = next((f for i, f in enumerate(found, start=1) if f[1] != i), None)
        if wrong is not None or len(found) < 2:
            at = (wrong or found[0])[3]
            self.fail(at, self._statement(at), f"the occasions of {name}'s IOV are "
                      f"{', '.join(f'{k:g}' for k in numbers)}: pkmodel reads occasions "
                      f"numbered 1..K (K at least 2), one ETA each; supported: {_IOV_FORMS}")
        if fixed:
            self.fail(line, statement, "a fixed typical value (THETA FIX) cannot have IOV in "
                      "pkmodel: estimate the THETA or leave the occasions' etas out")
        first: _Estimate | None = None
        for _, k, n, at in found:
            where = f"ETA({n}) (occasion {k:g} of {column}, line {at})"
            if not 1 <= n <= len(self.omegas):
                self.fail(at, self._statement(at), f"ETA({n}) has no $OMEGA "
                          f"({len(self.omegas)} given)")
            if n in self.used_etas:
                self.fail(at, self._statement(at), f"ETA({n}) is on {self.used_etas[n]} too; "
                          "pkmodel gives each parameter and occasion its own eta")
            self.used_etas[n] = name
            self.iov_etas.add(n)
            omega = self.omegas[n - 1]
            if omega.size > 1:
                self.fail(omega.line, self._omega_statement(omega), f"{where} is in a "
                          f"BLOCK({omega.size}): pkmodel's occasion effects are independent of "
                          f"the other etas; supported: {_IOV_FORMS}")
            if first is None:
                first = omega
                if omega.origin is not None:
                    self.fail(omega.line, self._omega_statement(omega), f"{where} is the "
                              "first occasion's: its $OMEGA BLOCK(1) gives the variance, the "
                              "further occasions' repeat it (SAME)")
            elif omega.origin is not first:
                self.fail(omega.line, self._omega_statement(omega), f"{where} does not share "
                          f"the variance of occasion 1 (ETA({found[0][2]})): pkmodel's "
                          f"occasions have one variance; supported: {_IOV_FORMS}")
        if first.fixed or first.value <= 0:
            self.fail(first.line, self._omega_statement(first), "pkmodel estimates the IOV's "
                      "variance: give a positive initial estimate without FIX")
        if self.occasions is not None and self.occasions[:2] != (column, len(found)):
            self.fail(found[0][3], self._statement(found[0][3]), f"{name}'s IOV has occasions "
                      f"1..{len(found)} of {column}, {self.occasions[2]}'s 1..{self.occasions[1]}"
                      f" of {self.occasions[0]}: pkmodel's occasions are the same for every "
                      "parameter")
        self.occasions = (column, len(found), name)
        path = ("parameters", name)
        lines = f"lines {found[0][3]}-{found[-1][3]}" if found[0][3] != found[-1][3] else \
            f"line {found[0][3]}"
        etas = ", ".join(f"ETA({n})" for _, _, n, _ in found)
        self.comments[(*path, "iov")] = (f"{etas}: one per occasion 1-{len(found)} of "
                                         f"{column} ({lines}), {statement} (line {line})")
        if "iov_prior" in first.tag:
            return {"iov": True, "iov_prior": first.tag["iov_prior"]}
        self.comments[(*path, "iov_prior")] = (
            f"prior width stated by the import: {SD_FACTOR:g} x the initial SD sqrt("
            f"{first.value:g}) ($OMEGA line {first.line}, SAME for the further occasions)")
        return {"iov": True, "iov_prior": _rounded(SD_FACTOR * math.sqrt(first.value))}

    def _omega_statement(self, omega: _Estimate) -> str:
        """The ``$OMEGA`` record that holds an estimate."""
        rec = next(r for r in self.record("OMEGA")
                   if any(x.number == omega.line for x in r.lines))
        return f"$OMEGA {rec.text.strip()}"

    def _term(self, name: str, factor: ast.AST, power: int, line: int,
              statement: str) -> CovariateTerm:
        unsupported = ("a covariate factor pkmodel cannot read: "
                       f"{ast.unparse(factor)}; supported: X, X/ref, (X/ref)**THETA(n), "
                       "EXP(THETA(n)*(X-ref)), (1+THETA(n)*(X-ref)), "
                       "IF(X.LT.c) TV=TV*(1+THETA(n))")
        etas = [n for n in ast.walk(factor) if _index(n, "ETA") is not None]
        if etas:
            columns = [n.id for n in ast.walk(factor)
                       if isinstance(n, ast.Name) and n.id in self.columns]
            self.fail(*self._locate(ast.unparse(etas[0]), line), (
                f"{columns[0]} is a column of $INPUT: pkmodel reads the occasions from one "
                "column numbered 1..K, not from indicator columns; " if columns else "")
                + "pkmodel's BSV is exponential, one eta per parameter: CL = TVCL*EXP(ETA(n)), "
                f"and {_IOV_FORMS}")
        if power != 1:
            self.fail(*self._locate(ast.unparse(factor), line), unsupported)
        if not _is_call(factor, "INDICATOR"):  # the statement that writes the factor
            line, statement = self._locate(ast.unparse(factor), line)
            statement = statement.strip()
        else:
            column, op, threshold, n, at = (a.value for a in factor.args)
            self._column(column, at, statement)
            theta = self._theta(n, at, self._statement(at))
            if theta.fixed or theta.value <= -1:
                self.fail(theta.line, f"THETA({n})", "the indicator's THETA must be estimated "
                          "and above -1 (1 + THETA is a ratio)")
            mean = theta.tag.get("prior_mean", math.log1p(theta.value))
            key = {"LT": "below", "GT": "above"}[op]
            return self._covariate_term(
                name, column, theta, n, at, "indicator", mean, **{key: threshold},
                source=f"line {at}: {self._statement(at).strip()} (exp(theta) = 1 + "
                       f"THETA({n}); prior mean log(1 + {theta.value:g}))")
        n = _index(factor.left, "THETA") if isinstance(factor, ast.BinOp) else None
        if isinstance(factor, ast.BinOp) and isinstance(factor.op, ast.Pow) and n is not None \
                and isinstance(factor.right, ast.Name):  # THETA(n)**SEX: a 0/1 factor
            column = factor.right.id
            self._column(column, line, statement)
            theta = self._theta(n, line, statement)
            if theta.fixed or theta.value <= 0:
                self.fail(theta.line, f"THETA({n})", f"THETA({n})**{column} needs an "
                          "estimated, positive THETA (the ratio at level 1)")
            return self._covariate_term(name, column, theta, n, line, "categorical",
                                        math.log(theta.value),
                                        source=f"{statement} (exp(theta) = THETA({n}) at "
                                               f"{column} 1; prior mean log "
                                               f"{theta.value:g})",
                                        levels=(1.0,), reference=0.0)
        if isinstance(factor, ast.BinOp) and isinstance(factor.op, ast.Pow):
            base = _factors(factor.left)
            cols = [f.id for f, p in base if isinstance(f, ast.Name) and p == 1]
            refs = [_number(f) for f, p in base if p == -1 and _number(f) is not None]
            if len(cols) == 1 and len(base) == 1 + len(refs) and len(refs) <= 1:
                self._column(cols[0], line, statement)
                reference = refs[0] if refs else 1.0
                n = _index(factor.right, "THETA")
                if n is not None:
                    theta = self._theta(n, line, statement)
                    if theta.fixed:
                        return self._covariate_term(name, cols[0], theta, n, line, "power",
                                                    None, reference=reference,
                                                    exponent=theta.value, source=statement)
                    return self._covariate_term(name, cols[0], theta, n, line, "power",
                                                theta.value, reference=reference,
                                                source=statement)
                if _number(factor.right) is not None:
                    return self._covariate_term(name, cols[0], None, None, line, "power", None,
                                                reference=reference,
                                                exponent=_number(factor.right), source=statement)
        if _is_call(factor, "EXP") and len(factor.args) == 1:
            found = _theta_times(factor.args[0])
            if found is not None:
                return self._linear_like(name, found, "exponential", line, statement)
        if isinstance(factor, ast.BinOp) and isinstance(factor.op, ast.Add):
            for one, rest in ((factor.left, factor.right), (factor.right, factor.left)):
                found = _theta_times(rest)
                if _number(one) == 1.0 and found is not None:
                    return self._linear_like(name, found, "linear", line, statement)
        self.fail(*self._locate(ast.unparse(factor), line), unsupported)

    def _linear_like(self, name: str, found: tuple, form: str, line: int,
                     statement: str) -> CovariateTerm:
        n, (column, reference) = found
        self._column(column, line, statement)
        theta = self._theta(n, line, statement)
        if theta.fixed:
            self.fail(theta.line, f"THETA({n}) FIX", f"a fixed {form} coefficient is not "
                      "supported (pkmodel fixes power exponents only): estimate it")
        return self._covariate_term(name, column, theta, n, line, form, theta.value,
                                    reference=reference, source=statement)

    def _covariate_term(self, name: str, column: str, theta: _Estimate | None, n: int | None,
                        line: int, form: str, mean: float | None, *, source: str,
                        **keys: Any) -> CovariateTerm:
        index = self._key(name, column)
        estimated = mean is not None
        options: dict[str, Any] = {}
        if estimated:
            options = {"prior_mean": theta.tag.get("prior_mean", mean),
                       "prior_sd": theta.tag.get("prior_sd", THETA_PRIOR_SD)}
            self.comments[("covariates", index, "prior_mean")] = (
                f"THETA({n}) initial estimate, line {theta.line}")
            if "prior_sd" not in theta.tag:
                self.comments[("covariates", index, "prior_sd")] = (
                    "prior width stated by the import (pkmodel's default)")
        elif theta is not None:
            self.comments[("covariates", index, "exponent")] = f"THETA({n}) FIX, line "\
                                                               f"{theta.line}"
        self.comments[("covariates", index)] = source if source.startswith("line") else \
            f"line {line}: {source}"
        return CovariateTerm(name, column, form, **keys, **options)

    def _column(self, column: str, line: int, statement: str) -> None:
        if column not in self.columns:
            self.fail(line, statement, f"{column} is not a column of $INPUT (nor a variable "
                      "assigned before); pkmodel reads covariates from the dataset's columns")

    # ------------------------------------------------------------------ $ERROR
    def residual(self) -> ResidualError:
        recs = self.record("ERROR", required=False)
        env = self.statements(recs[0] if recs else None, "ERROR")
        if "Y" not in env:
            self.fail(recs[0].line, "$ERROR", "no Y = ... statement")
        y = env["Y"]
        self._use(y)
        line = max(y.lines)
        statement = self._statement(line).strip()
        self.context = y.lines
        parts: dict[str, tuple[float, int, int]] = {}  # kind -> (initial SD, EPS, line)
        terms = _terms(_distributed(y.node))
        predictions = [t for t in terms if isinstance(t, ast.Name) and t.id == "F"]
        if len(predictions) != 1:
            self.fail(line, statement, "Y must be F (or IPRED = F) plus error terms")
        for term in terms:
            if term is predictions[0]:
                continue
            for kind, sd, k in self._error_term(term, line, statement):
                if kind in parts:
                    self.fail(line, statement, f"two {kind} error terms; pkmodel has one of each")
                parts[kind] = (sd, k, line)
        if not parts:
            self.fail(line, statement, "no EPS: Y needs a residual error")
        for n, est in enumerate(self.sigmas, start=1):
            if n not in {k for _, k, _ in parts.values()}:
                self.notes.append(f"EPS({n}) ($SIGMA line {est.line}) is not used in Y: "
                                  "left out")
        self.notes += [f"line {n}: {s} is not used by the model: left out"
                       for n, s in sorted(self.unused_lines.items())]
        error = "combined" if len(parts) == 2 else next(iter(parts))
        self.comments[("residual", "error")] = f"line {line}: {statement}"
        out: dict[str, Any] = {"error": error}
        keys = {"proportional": "proportional_prior", "additive": "additive_prior_ug_ml"}
        for kind, (sd, k, _) in parts.items():
            key = keys[kind]
            tag = self.sigmas[k - 1].tag
            if key in tag:
                out[key] = tag[key]
                continue
            scale = _rounded(SD_FACTOR * sd)
            unit = ""
            if kind == "additive":
                scale = float(concentration_to_internal(scale, self.concentration_unit))
                unit = f" {self.concentration_unit}" + (
                    "" if self.concentration_unit == "µg/mL" else f"; {scale:.4g} in µg/mL")
            out[key] = scale
            self.comments[("residual", key)] = (
                f"prior width stated by the import: {SD_FACTOR:g} x the initial SD {sd:.4g}"
                f"{unit} (EPS({k}), $SIGMA line {self.sigmas[k - 1].line})")
        return ResidualError(**out)

    def _error_term(self, term: ast.AST, line: int, statement: str) -> list[tuple]:
        """``[(kind, initial SD, EPS index)]`` of one term ``...*EPS(k)`` of Y."""
        factors = _factors(term)
        eps = [_index(f, "EPS") for f, _ in factors if _index(f, "EPS") is not None]
        if len(eps) != 1 or any(p != 1 for _, p in factors):
            self.fail(line, statement, "each error term must be (scale)*EPS(k); supported: "
                      "Y=F+EPS(1), Y=F+F*EPS(1), Y=F+F*EPS(1)+EPS(2), Y=IPRED+W*EPS(1) with "
                      "W=F, W=THETA(a), W=THETA(b)*IPRED or "
                      "W=SQRT(THETA(a)**2+THETA(b)**2*IPRED**2)")
        k = eps[0]
        if not 1 <= k <= len(self.sigmas):
            self.fail(line, statement, f"EPS({k}) has no $SIGMA")
        sigma = self.sigmas[k - 1]
        scale = [f for f, _ in factors if _index(f, "EPS") is None]
        roots = [f for f in scale if _is_call(f, "SQRT")]
        if roots and len(scale) == 1:
            addends = [self._squared(a, line, statement) for a in _terms(roots[0].args[0])]
        elif not roots:
            addends = [scale]
        else:
            addends = []
            self.fail(line, statement, "SQRT(...) must be the whole scale of EPS")
        out = []
        for factors_ in addends:
            prop = [f for f in factors_ if isinstance(f, ast.Name) and f.id == "F"]
            thetas = [_index(f, "THETA") for f in factors_ if _index(f, "THETA") is not None]
            if len(prop) > 1 or len(thetas) > 1 or len(prop) + len(thetas) != len(factors_):
                self.fail(line, statement, f"{ast.unparse(roots[0] if roots else term)}: "
                          "an error scale pkmodel cannot read")
            sd = math.sqrt(sigma.value) if not (sigma.fixed and thetas) else 1.0
            if thetas:
                theta = self._theta(thetas[0], line, statement)
                sd *= abs(theta.value)
                if theta.fixed:
                    self.notes.append(f"THETA({thetas[0]}) FIX (line {theta.line}) in the error "
                                      "model: pkmodel estimates every residual SD (its prior "
                                      "scale follows the fixed value)")
            out.append(("proportional" if prop else "additive", sd, k))
        return out

    def _squared(self, node: ast.AST, line: int, statement: str) -> list[ast.AST]:
        """The factors ``x`` of a product of squares ``x**2``."""
        out: list[ast.AST] = []
        for factor, power in _factors(node):
            if not (isinstance(factor, ast.BinOp) and isinstance(factor.op, ast.Pow)
                    and _number(factor.right) == 2.0 and power == 1):
                self.fail(line, statement, "inside SQRT, a sum of squares "
                          "THETA(a)**2 + THETA(b)**2*IPRED**2")
            out += [f for f, _ in _factors(factor.left)]
        return out

    # ------------------------------------------------------------------ OMEGA blocks
    def blocks(self, parameters: dict[str, Parameter]) -> tuple[tuple[str, ...], ...]:
        groups: dict[int, list[str]] = {}
        for k, est in enumerate(self.omegas, start=1):
            if k not in self.used_etas:
                self.fail(est.line, f"$OMEGA {est.value:g}", f"ETA({k}) is not used in $PK")
            if est.block is not None and k not in self.iov_etas \
                    and parameters[self.used_etas[k]].bsv:
                groups.setdefault(est.block, []).append(self.used_etas[k])
        for block in groups:
            first = next(e for e in self.omegas if e.block == block)
            self.comments[("bsv", "block")] = f"$OMEGA BLOCK (line {first.line}); its initial "\
                                              "covariances are not used: an LKJ prior"
        return tuple(tuple(v) for v in groups.values() if len(v) > 1)

    # ------------------------------------------------------------------ covariates
    def declarations(self, terms: list[CovariateTerm]) -> tuple[Covariate, ...]:
        """``[data.covariates.NAME]`` of every non-library covariate the terms use (or a
        pkmodel tag of ``$INPUT`` declares)."""
        tagged: dict[str, dict] = {}
        for line in self.record("INPUT")[0].lines:
            tag = line.tag
            if tag is not None and tag[0] is not None:
                tagged[tag[0]] = tag[1]
        library = {c for cov in COVARIATES.values() for c in cov.columns}
        names = [t.covariate for t in terms if t.covariate not in library] + list(tagged)
        out = []
        for name in dict.fromkeys(names):
            column = self.columns.get(name, name)
            keys = dict(tagged.get(name, {}))
            if column != name:
                keys.setdefault("column", column)
            if name not in tagged:
                keys |= self._range(name, column)
            try:
                out.append(Covariate.declared(name, **keys))
            except SpecificationError as exc:
                self.fail(self.record("INPUT")[0].line, f"$INPUT {name}", str(exc))
        return tuple(out)

    def _range(self, name: str, column: str) -> dict:
        path = ("data", "covariates", name)
        low_high = _column_range(self.data_file, self.order.index(column), self.ignore) \
            if self.data_file is not None and column in self.order else None
        if low_high is None:
            self.comments[(*path, "range")] = (
                f"the dataset could not be read: a wide default; CHECK IT and state {name}'s "
                "plausible range")
            low_high = WIDE_RANGE
        else:
            self.comments[(*path, "range")] = (
                f"the range of {column} in {self.data_file.name}: widen it for other data")
        self.comments[(*path, "unit")] = "a control stream does not state units: CHECK IT"
        return {"unit": "unstated", "range": list(low_high)}


def _rounded(width: float) -> float:
    """A prior width the import states, to 3 significant digits."""
    return float(f"{width:.3g}")


def _line_tag(line: _Line) -> dict:
    tag = line.tag
    return tag[1] if tag is not None and tag[0] is None else {}


def _column_range(path: Path, index: int, ignore: str) -> tuple[float, float] | None:
    """The smallest and largest number in column ``index`` of a NONMEM data file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError:
        return None
    values = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] == ignore or (ignore == "@" and not re.match(r"[-+.\d]", line)):
            continue
        cells = re.split(r"\s*,\s*|\s+", line)
        try:
            values.append(float(cells[index]))
        except (IndexError, ValueError):
            continue
    values = [v for v in values if math.isfinite(v)]
    return (min(values), max(values)) if values else None


# ----------------------------------------------------------------------------- TOML text
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def spec_toml(spec: PopulationSpec, comments: Mapping[tuple, str] | None = None,
              header: list[str] | tuple[str, ...] = ()) -> str:
    """A specification's TOML file (:meth:`PopulationSpec.to_dict`'s layout), with comments.

    Parameters
    ----------
    spec : PopulationSpec
        Without a published prior (``[prior]``).
    comments : mapping, optional
        A comment by key path: ``("parameters", "cl", "typical")``; a ``[[covariates]]`` entry
        by ``("covariates", "@" + parameter + covariate)`` (the entry) and with a key after it.
    header : sequence of str
        Comment lines at the top.
    """
    comments = dict(comments or {})
    raw = spec.to_dict()
    lines = [f"# {h}" for h in header]

    def table(title: str, entries: Mapping, path: tuple, array: bool = False) -> None:
        lines.append("")
        note = comments.get(path)
        if note:
            lines.append(f"# {note}")
        lines.append(f"[[{title}]]" if array else f"[{title}]")
        for key, value in entries.items():
            if isinstance(value, Mapping):
                continue
            text = f"{key} = {_toml_value(value)}"
            note = comments.get((*path, key))
            lines.append(text + (f"  # {note}" if note else ""))

    table("model", raw["model"], ("model",))
    table("data", raw["data"], ("data",))
    for name, entry in raw["data"].get("covariates", {}).items():
        table(f"data.covariates.{name}", entry, ("data", "covariates", name))
    for name, entry in raw["parameters"].items():
        table(f"parameters.{name}", entry, ("parameters", name))
    for term, entry in zip(spec.covariates, raw["covariates"], strict=True):
        column = _column_of(spec, term)
        table("covariates", entry, ("covariates", f"@{term.parameter}{column}"), array=True)
    table("residual", raw["residual"], ("residual",))
    if "bsv" in raw:
        table("bsv", raw["bsv"], ("bsv",))
    return "\n".join(lines).lstrip("\n") + "\n"


def _column_of(spec: PopulationSpec, term: CovariateTerm) -> str:
    """The dataset column of a term's covariate (``WT`` for ``weight_kg``)."""
    return spec.covariate_registry[term.covariate].columns[0]


# ----------------------------------------------------------------------------- writing
def _num(value: float) -> str:
    return repr(float(value))


def _tag(**keys: Any) -> str:
    return "pkmodel {" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in keys.items()) + "}"


def write_control_stream(spec: PopulationSpec, *, data: str = "data.csv",
                         occasions: int | None = None) -> str:
    """A NONMEM control stream of a specification, for a cross-check in NONMEM.

    ``$SUBROUTINE`` from the structure (:data:`ADVANS`), ``$PK`` with the covariate effects in
    NONMEM's forms, ``$ERROR``, ``$THETA`` from the typical values (converted to the dataset's
    time unit) and the prior means, ``$OMEGA`` (with ``BLOCK``) and ``$SIGMA`` at half the prior
    scales squared, ``$ESTIMATION METHOD=COND INTER``, and ``$INPUT``/``$DATA`` in the layout of
    pkmodel's reader. pkmodel's own settings (prior widths, units, declared covariates) ride in
    comments ``; pkmodel {...}``, which :func:`read_control_stream` reads back. A parameter
    with inter-occasion variability gets one ETA per occasion ``k`` = 1..``occasions``
    (``IF(OCC.EQ.k) IOVCL = ETA(n)``, ``CL = TVCL*EXP(ETA(1)+IOVCL)``), the first with
    ``$OMEGA BLOCK(1)`` and the others ``$OMEGA BLOCK(1) SAME`` (one variance).

    Parameters
    ----------
    spec : PopulationSpec
        The specification (its ``[prior]``, if any, is named in a comment and not written).
    data : str, default "data.csv"
        The dataset file ``$DATA`` names.
    occasions : int, optional
        The number of occasions K (at least 2) of a specification with ``iov``, numbered 1..K
        in the dataset's occasion column (``OCC`` for ``occasion = "dose"``); required there,
        unused without IOV.

    Raises
    ------
    SpecificationError
        For what has no NONMEM form here: categorical and piecewise effects; a specification
        with ``iov`` without ``occasions``.
    """
    if spec.iov_parameters and (isinstance(occasions, bool) or not isinstance(occasions, int)
                                or occasions < 2):
        raise SpecificationError(
            f"the inter-occasion variability of {', '.join(spec.iov_parameters)} is written as "
            "one ETA per occasion (IF(OCC.EQ.k) with $OMEGA BLOCK(1) SAME): give the number of "
            "occasions K, at least 2 (occasions=K; pkmodel pk export-nonmem --occasions K), "
            f"not {occasions!r}")
    advan_number, advan = next((k, a) for k, a in ADVANS.items()
                               if a.compartments == spec.compartments
                               and a.oral == (spec.dosing == "oral"))
    names = {v: k for k, v in advan.names.items()}
    thetas: list[str] = []
    pk: list[str] = []
    etas = _eta_numbers(spec)
    iov_etas = _iov_eta_numbers(spec, len(etas), occasions or 0)
    column = "OCC" if spec.occasions_from_doses else spec.occasion
    for name, par in spec.parameters.items():
        nm = names[name]
        kind = spec.structure.kind(name)
        value = par.typical if par.unit == parameter_unit(kind, spec.time_unit) else \
            float(from_internal(spec.typical_per_day(name), kind, spec.time_unit))
        tag = {} if par.fixed else {"prior_log_sd": par.prior_log_sd}
        if par.centred is not None:
            tag["centred"] = par.centred
        bounds = f"{_num(value)} FIX" if par.fixed else f"(0, {_num(value)})"
        thetas.append(f"{bounds} ; {nm}" + (f" {_tag(**tag)}" if tag else ""))
        pk.append(f"TV{nm} = THETA({len(thetas)})")
        for term in (t for t in spec.covariates if t.parameter == name):
            pk.append(_effect(spec, term, f"TV{nm}", thetas))
        exponent = ([f"ETA({etas[name]})"] if name in etas else []) + (
            [f"IOV{nm}"] if name in iov_etas else [])
        if name in iov_etas:
            pk += [f"IOV{nm} = 0"] + [f"IF({column}.EQ.{k}) IOV{nm} = ETA({n})"
                                      for k, n in enumerate(iov_etas[name], start=1)]
        pk.append(f"{nm} = TV{nm}" + (f"*EXP({'+'.join(exponent)})" if exponent else ""))
    pk.append(f"{advan.scale} = {advan.central}")
    error, sigmas = _error(spec)
    settings = {"time_unit": spec.time_unit, "concentration_unit": spec.concentration_unit,
                "amount_unit": spec.amount_unit, "blq": spec.blq, "lkj_eta": spec.lkj_eta}
    for key in ("drug", "lloq_ug_ml", "infusion_hours"):
        if getattr(spec, key) is not None:
            settings[key] = getattr(spec, key)
    if spec.occasion != "OCC" and (spec.occasions_from_doses or not iov_etas):
        settings["occasion"] = spec.occasion  # else the IFs' column says it
    columns = ["ID", "TIME", "AMT"] + (["RATE"] if spec.dosing == "infusion" else []) + [
        "DV", "EVID", "MDV"] + (["CMT"] if spec.dosing == "oral" else []) + (
        [column] if iov_etas else [])
    covariate_columns = [c for c in dict.fromkeys(
        [_column_of(spec, t) for t in spec.covariates]
        + [c.columns[0] for c in spec.covariate_definitions]) if c not in columns]
    out = [f"$PROBLEM {spec.structure_label()}, written by pkmodel pk export-nonmem",
           f"; {_tag(**settings)}",
           f"; TIME in {spec.time_unit}s, AMT in {spec.amount_unit}, DV in "
           f"{spec.concentration_unit}; doses EVID 1, observations EVID 0"
           + ("; doses into CMT 1 (depot), observations CMT 2" if spec.dosing == "oral" else ""),
           "$INPUT " + " ".join(columns + covariate_columns)]
    out += [f"; {_tag_named(c)}" for c in spec.covariate_definitions]
    out += [f"$DATA {data} IGNORE=@", f"$SUBROUTINE ADVAN{advan_number} "
            f"TRANS{advan.trans}", "", "$PK", *pk, "", "$ERROR", *error, ""]
    out += [f"$THETA {t}" for t in thetas]
    out += _omegas(spec, etas)
    out += _iov_omegas(spec, iov_etas, column)
    out += [f"$SIGMA {s}" for s in sigmas]
    out += ["", "$ESTIMATION METHOD=COND INTER MAXEVAL=9999 PRINT=5", "$COVARIANCE"]
    if spec.prior is not None:
        out.insert(2, f"; the published prior {spec.prior.model} (weight "
                      f"{spec.prior.weight:g}) is not written: no $PRIOR")
    if iov_etas:
        out.insert(2, f"; occasions: {column} numbered 1..{occasions} within each subject"
                      + ("; pkmodel's occasion = \"dose\": number each dosing interval"
                         if spec.occasions_from_doses else ""))
    if spec.infusion_hours is not None:
        out.insert(2, f"; pkmodel gives infusions without RATE {spec.infusion_hours:g} h: give "
                      "every infusion its RATE in the NONMEM dataset")
    if spec.lloq_ug_ml is not None or spec.blq != "m3":
        out.insert(2, "; values below the LLOQ: pkmodel's M3 likelihood is not written here "
                      "(NONMEM needs the M3 code in $ERROR and LAPLACIAN)")
    return "\n".join(out) + "\n"


def _tag_named(cov: Covariate) -> str:
    entry = cov.to_dict()
    return "pkmodel " + cov.name + " {" + ", ".join(
        f"{k} = {_toml_value(v)}" for k, v in entry.items()) + "}"


def _eta_numbers(spec: PopulationSpec) -> dict[str, int]:
    """Each BSV parameter's ETA, the parameters of a block consecutive."""
    out: dict[str, int] = {}
    for name in spec.bsv_parameters:
        block = next((b for b in spec.bsv_blocks if name in b), (name,))
        for p in block:
            out.setdefault(p, len(out) + 1)
    return out


def _iov_eta_numbers(spec: PopulationSpec, after: int, occasions: int) -> dict[str, list[int]]:
    """Each IOV parameter's ETAs, one per occasion, numbered on from the BSV's ``after``."""
    out: dict[str, list[int]] = {}
    for name in spec.iov_parameters:
        out[name] = [after + k for k in range(1, occasions + 1)]
        after += occasions
    return out


def _iov_omegas(spec: PopulationSpec, iov_etas: dict[str, list[int]], column: str) -> list[str]:
    """``$OMEGA BLOCK(1)`` of each IOV's first occasion, ``BLOCK(1) SAME`` of the others."""
    out: list[str] = []
    for name, numbers in iov_etas.items():
        prior = spec.parameters[name].iov_prior
        out.append(f"$OMEGA BLOCK(1) {_num((prior / SD_FACTOR) ** 2)} ; ETA({numbers[0]}) IOV "
                   f"of {name}, occasion 1 of {column} {_tag(iov_prior=prior)}")
        out += [f"$OMEGA BLOCK(1) SAME ; ETA({n}) occasion {k}"
                for k, n in enumerate(numbers[1:], start=2)]
    return out


def _omegas(spec: PopulationSpec, etas: dict[str, int]) -> list[str]:
    out: list[str] = []
    done: set[str] = set()
    for name in sorted(etas, key=etas.get):
        if name in done:
            continue
        block = next((b for b in spec.bsv_blocks if name in b), None)
        if block is None:
            prior = spec.parameters[name].omega_prior
            out.append(f"$OMEGA {_num((prior / SD_FACTOR) ** 2)} ; ETA({etas[name]}) {name} "
                       f"{_tag(omega_prior=prior)}")
            done.add(name)
            continue
        order = sorted(block, key=etas.get)
        sds = [spec.parameters[p].omega_prior / SD_FACTOR for p in order]
        out.append(f"$OMEGA BLOCK({len(order)}) ; ETA({etas[order[0]]})-ETA({etas[order[-1]]})"
                   f" {', '.join(order)}; initial correlations 0.1")
        for i, p in enumerate(order):
            row = [0.1 * sds[i] * sds[j] for j in range(i)] + [sds[i] ** 2]
            out.append(" ".join(_num(v) for v in row)
                       + f" ; {_tag(omega_prior=spec.parameters[p].omega_prior)}")
        done.update(order)
    return out


def _error(spec: PopulationSpec) -> tuple[list[str], list[str]]:
    r = spec.residual
    prop = f"{_num((r.proportional_prior / SD_FACTOR) ** 2)} ; proportional " \
           f"{_tag(proportional_prior=r.proportional_prior)}"
    add_sd = float(concentration_from_internal(r.additive_prior_ug_ml, spec.concentration_unit))
    add = f"{_num((add_sd / SD_FACTOR) ** 2)} ; additive, ({spec.concentration_unit})^2 " \
          f"{_tag(additive_prior_ug_ml=r.additive_prior_ug_ml)}"
    if r.error == "proportional":
        return ["IPRED = F", "Y = IPRED + IPRED*EPS(1)"], [prop]
    if r.error == "additive":
        return ["IPRED = F", "Y = IPRED + EPS(1)"], [add]
    return ["IPRED = F", "Y = IPRED + IPRED*EPS(1) + EPS(2)"], [prop, add]


def _effect(spec: PopulationSpec, term: CovariateTerm, tv: str, thetas: list[str]) -> str:
    """One covariate effect as a ``$PK`` statement, its THETA appended to ``thetas``."""
    column = _column_of(spec, term)
    binary = term.form == "categorical" and term.levels == (1.0,) and term.reference == 0.0
    if term.form == "piecewise" or (term.form == "categorical" and not binary):
        raise SpecificationError(f"the {term.form} effect of {term.covariate} on "
                                 f"{term.parameter} has no NONMEM form in export-nonmem (a "
                                 "categorical effect is written for levels [1] and reference 0 "
                                 "only, as THETA(n)**X); write it by hand, or leave it out to "
                                 "export the rest")

    def theta(init: float, low: str = "") -> str:
        tag = _tag(prior_mean=term.prior_mean, prior_sd=term.prior_sd)
        thetas.append(f"{'(' + low + ', ' if low else ''}{_num(init)}{')' if low else ''} ; "
                      f"{term.form} {column} on {term.parameter} {tag}")
        return f"THETA({len(thetas)})"

    start = term.prior_mean if term.prior_mean != 0 else 0.01  # NONMEM refuses an initial 0
    shift = ""
    if term.form in ("linear", "exponential"):
        reference = _num(term.reference)
        shift = f"({column}-{reference if term.reference >= 0 else '(' + reference + ')'})"
    if binary:
        return f"{tv} = {tv}*{theta(math.exp(term.prior_mean), '0')}**{column}"
    if term.form == "power":
        base = column if term.reference == 1.0 else f"({column}/{_num(term.reference)})"
        if term.exponent is not None:
            return f"{tv} = {tv}*{base}" + ("" if term.exponent == 1.0 and term.reference == 1.0
                                           else f"**{_num(term.exponent)}")
        return f"{tv} = {tv}*{base}**{theta(start)}"
    if term.form == "linear":
        return f"{tv} = {tv}*(1+{theta(start)}*{shift})"
    if term.form == "exponential":
        return f"{tv} = {tv}*EXP({theta(start)}*{shift})"
    ratio = math.expm1(term.prior_mean) if term.prior_mean != 0 else 0.01
    op, threshold = (".LT.", term.below) if term.below is not None else (".GT.", term.above)
    return f"IF({column}{op}{_num(threshold)}) {tv} = {tv}*(1+{theta(ratio, '-1')})"

