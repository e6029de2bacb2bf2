"""The declarative population-model specification, as Python objects and as a TOML file.

A :class:`PopulationSpec` says everything the fit needs that the dataset does not: the structure
(one or two compartments; IV bolus, zero-order infusion or first-order absorption), each
structural parameter's typical value with its log-normal prior and whether it has between-subject
variability (BSV), covariate effects, the residual error model, how observations below the LLOQ
are treated, and the units of the dataset. The same specification can be kept as a small TOML
file beside the dataset (:func:`read_spec`); a key that is not known there is refused with the
line and the keys that are known.

Units: doses in mg, concentrations in µg/mL (= mg/L), times converted to days; CL and Q in L/day,
volumes in L, ka in 1/day. Typical values and their priors are stated in those units.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pkmodel.errors import SpecFileError, SpecificationError
from pkmodel.pk.models import COVARIATES, nonmem_columns

__all__ = ["BLQ_METHODS", "COVARIATE_EFFECTS", "DEFAULT_LKJ_ETA", "DOSING", "PARAMETER_UNITS",
           "RESIDUAL_ERRORS", "CovariateTerm", "InformativePrior", "Parameter", "PopulationSpec",
           "ResidualError", "correlation_name", "read_spec"]

#: The unit of each structural parameter (typical values and priors are stated in it).
PARAMETER_UNITS = {"cl": "L/day", "v": "L", "v1": "L", "q": "L/day", "v2": "L", "ka": "1/day"}
#: How doses enter: into the central compartment at once, over an infusion, or from a depot.
DOSING = ("bolus", "infusion", "oral")
#: Kinds of covariate effect (see :class:`CovariateTerm`).
COVARIATE_EFFECTS = ("power", "linear", "exponential", "categorical", "indicator")
#: Residual error models (normal on the concentration scale).
RESIDUAL_ERRORS = ("additive", "proportional", "combined")
#: Observations below the LLOQ: the M3 likelihood ``P(Y < LLOQ)``, or dropped (for comparison).
BLQ_METHODS = ("m3", "drop")
_TIME_UNITS = ("day", "hour", "week")
_CONCENTRATION_UNITS = ("µg/mL", "ug/mL", "mg/L")
_COLUMN_TO_COVARIATE = nonmem_columns()
#: Default shape of the LKJ prior of the correlation matrix of a BSV block (see
#: :class:`PopulationSpec`).
DEFAULT_LKJ_ETA = 2.0


def correlation_name(a: str, b: str) -> str:
    """The posterior name of the correlation of the etas of ``a`` and ``b``: ``corr_a_b``."""
    return f"corr_{a}_{b}"


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value <= 0:
        raise SpecificationError(f"{what} must be a positive number, not {value!r}")
    return float(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecificationError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def _choice(value: Any, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise SpecificationError(f"{what} must be one of {', '.join(choices)}, not {value!r}")
    return value


def structural_parameters(compartments: int, dosing: str) -> tuple[str, ...]:
    """The structural parameters of a structure, in order (``cl, v`` or ``cl, v1, q, v2``,
    then ``ka`` for first-order absorption)."""
    names = ("cl", "v") if compartments == 1 else ("cl", "v1", "q", "v2")
    return (*names, "ka") if dosing == "oral" else names


@dataclass(frozen=True)
class Parameter:
    """A structural parameter: its typical value's prior and its between-subject variability.

    Parameters
    ----------
    typical : float
        Median of the log-normal prior of the typical value, in the parameter's unit
        (:data:`PARAMETER_UNITS`): ``log(TV) ~ Normal(log(typical), prior_log_sd)``.
    prior_log_sd : float, default 1
        SD of that prior on the log scale (1: a factor of about 7 either way at 95 %).
    bsv : bool, default False
        Whether the parameter varies between subjects: ``P_i = TV * covariates *
        exp(eta_i)``, ``eta_i ~ Normal(0, omega^2)`` (log-normal; independent of the other
        etas unless the specification puts it in a block, ``PopulationSpec.bsv_blocks``).
    omega_prior : float, default 0.5
        Scale of the half-normal prior of ``omega`` (the SD of ``eta``, log scale).
    unit : str, optional
        The unit the specification states; checked against :data:`PARAMETER_UNITS`.
    fixed : bool, default False
        Hold the typical value at ``typical`` instead of estimating it (NONMEM's ``FIX``): for a
        parameter the data cannot inform, e.g. the peripheral distribution from troughs alone,
        taken from a published model. A fixed parameter has no prior and no BSV; it is reported
        with its value and no interval, and not checked by the convergence gate.
    centred : bool, optional
        How the sampler writes this parameter's random effects. Left out (the default), each
        subject's are partially non-centred with a weight taken from how much that subject's
        data say about them (:mod:`pkmodel.pk.population.centring`): nearly centred for a
        clearance informed by troughs, nearly non-centred for a parameter the data hardly
        inform. ``true`` forces centred (``log P_i ~ Normal(log TV + covariate effects,
        omega)``), ``false`` non-centred (``eta_i = omega z_i``), for every subject. The model
        is the same either way; only the sampler's efficiency changes. The parameters of a BSV
        block are always non-centred (``centred = true`` is refused there).
    """

    typical: float
    prior_log_sd: float = 1.0
    bsv: bool = False
    omega_prior: float = 0.5
    unit: str | None = None
    fixed: bool = False
    centred: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "typical", _positive(self.typical, "typical"))
        object.__setattr__(self, "prior_log_sd", _positive(self.prior_log_sd, "prior_log_sd"))
        object.__setattr__(self, "omega_prior", _positive(self.omega_prior, "omega_prior"))
        if not isinstance(self.bsv, bool):
            raise SpecificationError(f"bsv must be true or false, not {self.bsv!r}")
        if not isinstance(self.fixed, bool):
            raise SpecificationError(f"fixed must be true or false, not {self.fixed!r}")
        if self.centred is not None and not isinstance(self.centred, bool):
            raise SpecificationError(f"centred must be true or false (or left out), not "
                                     f"{self.centred!r}")
        if self.centred is not None and not self.bsv:
            raise SpecificationError("centred applies to the random effects: set bsv = true, "
                                     "or leave centred out")
        if self.fixed and self.bsv:
            raise SpecificationError("a fixed parameter cannot have BSV: set bsv = false, or "
                                     "fixed = false to estimate its typical value")

    def to_dict(self) -> dict:
        """Plain-JSON description (the TOML keys)."""
        out = {"typical": self.typical, "prior_log_sd": self.prior_log_sd, "bsv": self.bsv,
               "omega_prior": self.omega_prior}
        if self.unit is not None:
            out["unit"] = self.unit
        if self.fixed:
            out["fixed"] = True
        if self.centred is not None:
            out["centred"] = self.centred
        return out


@dataclass(frozen=True)
class CovariateTerm:
    """One covariate effect on one structural parameter (multiplicative).

    Parameters
    ----------
    parameter : str
        The structural parameter (``cl``, ``v1``...).
    covariate : str
        A covariate the NONMEM reader knows, by name (``weight_kg``, ``albumin_g_dl``, ``ati``,
        ``female``, ``immunomodulator``) or column (``WT``, ``ALB``, ``ATI``/``ADA``,
        ``SEX``/``FEMALE``, ``IMM``). The value at the first dose is used.
    effect : str
        ``power``: ``(x / reference)^theta``; ``linear``: ``1 + theta (x - reference)``;
        ``exponential``: ``exp(theta (x - reference))``; ``categorical``: ``exp(theta_l)`` for
        each non-reference level ``l``; ``indicator``: ``exp(theta)`` where ``x < below`` (or
        ``x > above``), 1 elsewhere.
    reference : float, optional
        The reference value (power, linear, exponential; required) or the reference level
        (categorical; default 0).
    exponent : float, optional
        Power effects: a fixed exponent (e.g. 0.75); omit to estimate it.
    prior_mean, prior_sd : float
        Normal prior of an estimated ``theta`` (default 0 and 1; for a power effect of weight on
        clearance, 0.75 and 0.25 are usual).
    levels : tuple of float, optional
        Categorical: the non-reference levels (default ``(1,)``, for a 0/1 covariate).
    below, above : float, optional
        Indicator: the threshold (exactly one of them).
    """

    parameter: str
    covariate: str
    effect: str
    reference: float | None = None
    exponent: float | None = None
    prior_mean: float = 0.0
    prior_sd: float = 1.0
    levels: tuple[float, ...] | None = None
    below: float | None = None
    above: float | None = None

    def __post_init__(self) -> None:
        covariate = _COLUMN_TO_COVARIATE.get(str(self.covariate).upper(), self.covariate)
        if covariate not in COVARIATES:
            known = ", ".join(f"{k} ({', '.join(COVARIATES[k]['nonmem'])})" for k in COVARIATES)
            raise SpecificationError(f"unknown covariate {self.covariate!r}; the NONMEM reader "
                                     f"knows {known}")
        object.__setattr__(self, "covariate", covariate)
        _choice(self.effect, COVARIATE_EFFECTS, "effect")
        object.__setattr__(self, "prior_mean", _number(self.prior_mean, "prior_mean"))
        object.__setattr__(self, "prior_sd", _positive(self.prior_sd, "prior_sd"))
        if self.effect in ("power", "linear", "exponential"):
            if self.reference is None:
                raise SpecificationError(f"a {self.effect} effect of {covariate} needs its "
                                         "reference value (reference = ...)")
            reference = _number(self.reference, "reference")
            if self.effect == "power" and reference <= 0:
                raise SpecificationError("the reference of a power effect must be positive")
            object.__setattr__(self, "reference", reference)
        if self.exponent is not None:
            if self.effect != "power":
                raise SpecificationError("exponent is for power effects only")
            object.__setattr__(self, "exponent", _number(self.exponent, "exponent"))
        if self.effect == "categorical":
            reference = 0.0 if self.reference is None else _number(self.reference, "reference")
            object.__setattr__(self, "reference", reference)
            levels = (1.0,) if self.levels is None else tuple(
                _number(v, "a level") for v in self.levels)
            if not levels or reference in levels or len(set(levels)) != len(levels):
                raise SpecificationError("levels must be distinct values other than the "
                                         "reference level")
            object.__setattr__(self, "levels", levels)
        elif self.levels is not None:
            raise SpecificationError("levels are for categorical effects only")
        if self.effect == "indicator":
            if (self.below is None) == (self.above is None):
                raise SpecificationError(f"an indicator effect of {covariate} needs exactly one "
                                         "of below = ... or above = ...")
            for key in ("below", "above"):
                if getattr(self, key) is not None:
                    object.__setattr__(self, key, _number(getattr(self, key), key))
        elif self.below is not None or self.above is not None:
            raise SpecificationError("below and above are for indicator effects only")

    @property
    def estimated(self) -> bool:
        """Whether the effect has parameters to estimate (all but a fixed power)."""
        return not (self.effect == "power" and self.exponent is not None)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of its parameters in the fit (one per categorical level)."""
        base = f"theta_{self.parameter}_{self.covariate}"
        if self.effect == "categorical":
            return tuple(f"{base}_{_level(v)}" for v in self.levels)
        return (base,) if self.estimated else ()

    def to_dict(self) -> dict:
        """Plain-JSON description (the TOML keys)."""
        out: dict[str, Any] = {"parameter": self.parameter, "covariate": self.covariate,
                               "effect": self.effect, "prior_mean": self.prior_mean,
                               "prior_sd": self.prior_sd}
        for key in ("reference", "exponent", "below", "above"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.levels is not None:
            out["levels"] = list(self.levels)
        return out


def _level(value: float) -> str:
    return f"{value:g}".replace("-", "m").replace(".", "p")


@dataclass(frozen=True)
class ResidualError:
    """The residual error: normal on the concentration scale.

    ``sd = sqrt(additive^2 + (proportional * prediction)^2)`` (combined), or one of the two terms.

    Parameters
    ----------
    error : {"additive", "proportional", "combined"}, default "combined"
    proportional_prior : float, default 0.3
        Scale of the half-normal prior of the proportional SD (a fraction).
    additive_prior_ug_ml : float, default 1
        Scale of the half-normal prior of the additive SD, µg/mL.
    """

    error: str = "combined"
    proportional_prior: float = 0.3
    additive_prior_ug_ml: float = 1.0

    def __post_init__(self) -> None:
        _choice(self.error, RESIDUAL_ERRORS, "error")
        for key in ("proportional_prior", "additive_prior_ug_ml"):
            object.__setattr__(self, key, _positive(getattr(self, key), key))

    @property
    def names(self) -> tuple[str, ...]:
        """The names of its parameters in the fit."""
        return {"additive": ("sigma_add_ug_ml",), "proportional": ("sigma_prop",),
                "combined": ("sigma_prop", "sigma_add_ug_ml")}[self.error]

    def to_dict(self) -> dict:
        """Plain-JSON description (the TOML keys)."""
        return {"error": self.error, "proportional_prior": self.proportional_prior,
                "additive_prior_ug_ml": self.additive_prior_ug_ml}


@dataclass(frozen=True)
class InformativePrior:
    """An informative prior taken from a published model, with its weight (NONMEM's ``$PRIOR``).

    Each informed quantity ``x`` (``log_tv_<p>``: the log typical value; ``omega_<p>``: entered
    as ``log(omega)``; ``theta_*``: as it is) gets, on top of the specification's own prior,
    ``weight * log Normal(x; mean, sd)`` in the log density: a power prior. For a log typical
    value this multiplies the specification's prior by a normal of SD ``sd / sqrt(weight)``;
    ``weight`` 1 counts the published model at its stated uncertainty, larger values as more
    certain, and ``weight -> 0`` leaves the specification's own prior. Built by
    :func:`pkmodel.pk.population.published_prior`, which says what it could map and what not.

    Parameters
    ----------
    model : str
        The published model's name (:data:`pkmodel.pk.MODELS`).
    weight : float
        The weight, > 0.
    terms : mapping of str to (float, float)
        Informed quantity -> ``(mean, sd)`` at weight 1, on the scale said above.
    notes : tuple of str
        What was mapped how, and what was left out.
    """

    model: str
    weight: float
    terms: Mapping[str, tuple[float, float]]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _positive(self.weight, "the prior weight"))
        terms = {}
        for name, pair in dict(self.terms).items():
            if not re.fullmatch(r"(log_tv|omega|theta)_\w+", str(name)):
                raise SpecificationError(f"prior term {name!r} is not log_tv_*, omega_* or "
                                         "theta_*")
            mean, sd = pair
            terms[str(name)] = (_number(mean, f"the prior mean of {name}"),
                                _positive(sd, f"the prior sd of {name}"))
        if not terms:
            raise SpecificationError(f"the published model {self.model} informs no parameter "
                                     "of the specification")
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))

    def to_dict(self) -> dict:
        """Plain-JSON description (the ``[prior]`` table as pkmodel writes it)."""
        return {"model": self.model, "weight": self.weight,
                "terms": {k: list(v) for k, v in self.terms.items()}, "notes": list(self.notes)}


@dataclass(frozen=True)
class PopulationSpec:
    """A population PK model to fit to a multi-patient NONMEM-style dataset.

    Parameters
    ----------
    parameters : mapping of str to Parameter
        One entry for each structural parameter of the structure (:func:`structural_parameters`):
        ``cl, v`` (one compartment) or ``cl, v1, q, v2`` (two), plus ``ka`` for oral dosing.
    compartments : {1, 2}, default 2
    dosing : {"bolus", "infusion", "oral"}, default "infusion"
        ``infusion``: zero-order, with the duration from the dataset's ``RATE`` (or ``RATE`` -2
        and ``DUR``), or ``infusion_hours`` for doses without one; ``oral``: first-order
        absorption from a depot, bioavailability 1 (CL and V are apparent, CL/F and V/F).
    covariates : sequence of CovariateTerm, default ()
    residual : ResidualError, default combined
    blq : {"m3", "drop"}, default "m3"
        Observations below the LLOQ (``CENS`` 1 or ``BLQ`` 1 in the dataset, or ``DV`` below
        ``lloq_ug_ml``): the M3 likelihood ``P(Y < LLOQ)``, or dropped.
    lloq_ug_ml : float, optional
        An LLOQ for the whole dataset: uncensored values below it are censored at it.
    infusion_hours : float, optional
        The duration of infusions without ``RATE``; when omitted, such a dose is an error.
    time_unit : {"day", "hour", "week"}, default "day"
        The unit of the dataset's ``TIME`` (and ``RATE``'s denominator, ``DUR``).
    concentration_unit : str, default "µg/mL"
        The unit of ``DV``: µg/mL or mg/L (the same).
    amount_unit : str, default "mg"
        The unit of ``AMT``: mg.
    prior : InformativePrior, optional
        A published model as an informative prior (:func:`~pkmodel.pk.population.with_prior`).
    bsv_blocks : sequence of sequences of str, default ()
        Blocks of correlated BSV (NONMEM's ``$OMEGA BLOCK(n)``), e.g. ``(("cl", "v1"),)``:
        the etas of a block are multivariate normal with covariance ``diag(omega) R
        diag(omega)``, ``R ~ LKJ(lkj_eta)``; each parameter of a block needs ``bsv=True`` and
        belongs to one block at most. The others stay independent (diagonal). Each block is
        kept in the order of the structural parameters; its correlations are named
        ``corr_<p>_<q>`` (:attr:`correlation_names`).
    lkj_eta : float, default 2
        Shape of the LKJ prior of each block's correlation matrix: its density is proportional
        to ``det(R)^(lkj_eta - 1)``, so that 1 is uniform over correlation matrices and 2 (a
        correlation of two etas then has the prior density ``0.75 (1 - r^2)`` on (-1, 1))
        leans gently away from correlations near -1 and 1, where a sparse dataset cannot tell
        one eta from the other.

    Examples
    --------
    >>> from pkmodel.pk.population import Parameter, PopulationSpec
    >>> spec = PopulationSpec(compartments=1, dosing="bolus",
    ...                       parameters={"cl": Parameter(0.3, bsv=True), "v": Parameter(3.0)})
    >>> spec.parameter_names
    ('cl', 'v')
    """

    parameters: Mapping[str, Parameter]
    compartments: int = 2
    dosing: str = "infusion"
    covariates: tuple[CovariateTerm, ...] = ()
    residual: ResidualError = field(default_factory=ResidualError)
    blq: str = "m3"
    lloq_ug_ml: float | None = None
    infusion_hours: float | None = None
    time_unit: str = "day"
    concentration_unit: str = "µg/mL"
    amount_unit: str = "mg"
    prior: InformativePrior | None = None
    bsv_blocks: tuple[tuple[str, ...], ...] = ()
    lkj_eta: float = DEFAULT_LKJ_ETA

    def __post_init__(self) -> None:
        if self.compartments not in (1, 2) or isinstance(self.compartments, bool):
            raise SpecificationError(f"compartments must be 1 or 2, not {self.compartments!r}")
        _choice(self.dosing, DOSING, "dosing")
        _choice(self.blq, BLQ_METHODS, "blq")
        _choice(self.time_unit, _TIME_UNITS, "time_unit")
        _choice(self.concentration_unit, _CONCENTRATION_UNITS, "concentration_unit")
        _choice(self.amount_unit, ("mg",), "amount_unit")
        if self.lloq_ug_ml is not None:
            object.__setattr__(self, "lloq_ug_ml", _positive(self.lloq_ug_ml, "lloq_ug_ml"))
        if self.infusion_hours is not None:
            if self.dosing != "infusion":
                raise SpecificationError("infusion_hours is for dosing = 'infusion' only")
            object.__setattr__(self, "infusion_hours",
                               _positive(self.infusion_hours, "infusion_hours"))
        wanted = structural_parameters(self.compartments, self.dosing)
        given = dict(self.parameters)
        missing = [p for p in wanted if p not in given]
        extra = [p for p in given if p not in wanted]
        structure = f"{self.compartments}-compartment {self.dosing}"
        if missing or extra:
            raise SpecificationError(
                f"a {structure} model has the parameters {', '.join(wanted)}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; not in this structure: {', '.join(extra)}" if extra else ""))
        for name, par in given.items():
            if not isinstance(par, Parameter):
                raise SpecificationError(f"parameter {name} must be a Parameter")
            if par.unit is not None and par.unit != PARAMETER_UNITS[name]:
                raise SpecificationError(f"parameter {name} is in {PARAMETER_UNITS[name]}, not "
                                         f"{par.unit!r}: state its typical value in "
                                         f"{PARAMETER_UNITS[name]}")
        object.__setattr__(self, "parameters", {p: given[p] for p in wanted})
        terms = tuple(self.covariates)
        seen = set()
        for term in terms:
            if not isinstance(term, CovariateTerm):
                raise SpecificationError("covariates must be CovariateTerm objects")
            if term.parameter not in wanted:
                raise SpecificationError(f"covariate {term.covariate} acts on "
                                         f"{term.parameter!r}, which a {structure} model does "
                                         f"not have ({', '.join(wanted)})")
            if (term.parameter, term.covariate) in seen:
                raise SpecificationError(f"two effects of {term.covariate} on {term.parameter}")
            seen.add((term.parameter, term.covariate))
        object.__setattr__(self, "covariates", terms)
        if not isinstance(self.residual, ResidualError):
            raise SpecificationError("residual must be a ResidualError")
        self._check_blocks(wanted)
        if self.prior is not None:
            if not isinstance(self.prior, InformativePrior):
                raise SpecificationError("prior must be an InformativePrior (see "
                                         "pkmodel.pk.population.published_prior)")
            known = {f"log_tv_{p}" for p in wanted if not self.parameters[p].fixed}
            known |= {f"omega_{p}" for p in self.bsv_parameters}
            known |= {n for t in terms if t.estimated for n in t.names}
            unknown = [k for k in self.prior.terms if k not in known]
            if unknown:
                raise SpecificationError(f"the prior informs {', '.join(unknown)}, which this "
                                         "specification does not estimate")

    def _check_blocks(self, wanted: tuple[str, ...]) -> None:
        object.__setattr__(self, "lkj_eta", _positive(self.lkj_eta, "lkj_eta"))
        raw = self.bsv_blocks
        if isinstance(raw, str) or not isinstance(raw, tuple | list):
            raise SpecificationError(f"bsv_blocks must be a sequence of blocks, each a sequence "
                                     f"of parameter names (e.g. [[\"cl\", \"v1\"]]), not {raw!r}")
        blocks, seen = [], set()
        for block in raw:
            if isinstance(block, str) or not isinstance(block, tuple | list):
                raise SpecificationError(f"a BSV block must be a list of parameter names, not "
                                         f"{block!r}")
            names = [str(p) for p in block]
            unknown = [p for p in names if p not in wanted]
            if unknown:
                raise SpecificationError(f"the BSV block {', '.join(names)} names "
                                         f"{', '.join(unknown)}, which this structure does not "
                                         f"have ({', '.join(wanted)})")
            if len(names) < 2 or len(set(names)) != len(names):
                raise SpecificationError(f"a BSV block needs two or more distinct parameters, "
                                         f"not {', '.join(names) or 'none'}")
            for p in names:
                if not self.parameters[p].bsv:
                    raise SpecificationError(f"the BSV block {', '.join(names)} includes {p}, "
                                             f"which has no BSV: set bsv = true in "
                                             f"[parameters.{p}] or leave {p} out of the block")
                if self.parameters[p].centred:
                    raise SpecificationError(f"parameter {p} is in a BSV block, which is sampled "
                                             f"non-centred: leave centred out of "
                                             f"[parameters.{p}]")
                if p in seen:
                    raise SpecificationError(f"parameter {p} is in two BSV blocks; a parameter "
                                             "belongs to one block at most")
                seen.add(p)
            blocks.append(tuple(p for p in wanted if p in names))
        object.__setattr__(self, "bsv_blocks", tuple(blocks))

    @property
    def correlation_names(self) -> tuple[str, ...]:
        """The correlations of the BSV blocks, ``corr_<p>_<q>`` for each pair of a block."""
        return tuple(correlation_name(a, b) for block in self.bsv_blocks
                     for i, a in enumerate(block) for b in block[i + 1:])

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The structural parameters, in order."""
        return tuple(self.parameters)

    @property
    def bsv_parameters(self) -> tuple[str, ...]:
        """The structural parameters with between-subject variability."""
        return tuple(p for p, par in self.parameters.items() if par.bsv)

    def structure_label(self) -> str:
        """E.g. ``2-compartment, zero-order infusion``."""
        how = {"bolus": "IV bolus", "infusion": "zero-order infusion",
               "oral": "first-order absorption"}[self.dosing]
        return f"{self.compartments}-compartment, {how}"

    def to_dict(self) -> dict:
        """Plain-JSON description, in the layout of the TOML file."""
        model: dict[str, Any] = {"compartments": self.compartments, "dosing": self.dosing}
        if self.infusion_hours is not None:
            model["infusion_hours"] = self.infusion_hours
        data: dict[str, Any] = {"time_unit": self.time_unit,
                                "concentration_unit": self.concentration_unit,
                                "amount_unit": self.amount_unit, "blq": self.blq}
        if self.lloq_ug_ml is not None:
            data["lloq_ug_ml"] = self.lloq_ug_ml
        return {"model": model, "data": data,
                "parameters": {p: par.to_dict() for p, par in self.parameters.items()},
                "covariates": [t.to_dict() for t in self.covariates],
                "residual": self.residual.to_dict()} | (
                    {} if self.prior is None else {"prior": self.prior.to_dict()}) | (
                    {} if not self.bsv_blocks else {"bsv": {
                        "block": [list(b) for b in self.bsv_blocks], "lkj_eta": self.lkj_eta}})

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str | None = None,
                  text: str | None = None) -> PopulationSpec:
        """The specification from its dictionary form (a parsed TOML file, or :meth:`to_dict`).

        Parameters
        ----------
        raw : mapping
            Sections ``model``, ``data``, ``parameters``, ``covariates``, ``residual``.
        source : str, optional
            The file it came from, named in errors.
        text : str, optional
            The file's text, to find the line of a key named in an error.

        Raises
        ------
        SpecFileError
            For an unknown key (naming the keys known there) or a bad value, with the line
            when ``text`` is given.
        """
        return _Reader(source, text).spec(raw)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> PopulationSpec:
        """Read a specification file (TOML); see :func:`read_spec`."""
        return read_spec(path)


def read_spec(path: str | os.PathLike) -> PopulationSpec:
    """Read a population-model specification from a TOML file.

    Raises
    ------
    SpecFileError
        If the file is missing, is not valid TOML (with TOML's line and column), holds a key that
        is not known (naming its line and the known keys), or a value that is not valid (naming
        its line).

    Examples
    --------
    >>> spec = read_spec("model.toml")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecFileError("no such specification file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecFileError(f"cannot read the specification ({exc})", source=str(path)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        line = int(match.group(1)) if match else None
        column = f", column {match.group(2)}" if match else ""
        raise SpecFileError(f"not valid TOML{column}: {message}", source=str(path),
                            line=line) from None
    return PopulationSpec.from_dict(raw, source=str(path), text=text)


# ----------------------------------------------------------------------------- reading
_KNOWN = {
    "": ("model", "data", "parameters", "covariates", "residual", "bsv", "prior"),
    "model": ("compartments", "dosing", "infusion_hours"),
    "data": ("time_unit", "concentration_unit", "amount_unit", "blq", "lloq_ug_ml"),
    "parameter": ("typical", "prior_log_sd", "bsv", "omega_prior", "unit", "fixed", "centred"),
    "covariates": ("parameter", "covariate", "effect", "reference", "exponent", "prior_mean",
                   "prior_sd", "levels", "below", "above"),
    "residual": ("error", "proportional_prior", "additive_prior_ug_ml"),
    "bsv": ("block", "lkj_eta"),
    "prior": ("model", "weight", "typical_log_sd", "omega_log_sd", "theta_sd", "terms", "notes"),
}


def _key_lines(text: str) -> dict[tuple, int]:
    """The line (1-based) of each key and table of a TOML text, by path.

    Array-of-tables entries get their index (``("covariates", 0, "effect")``). Simple, line-based
    scanning: enough to point at a key in a specification file (multi-line values are skipped
    over only if their continuation lines hold no ``key =``).
    """
    lines: dict[tuple, int] = {}
    counts: dict[tuple, int] = {}
    current: tuple = ()

    def parts(dotted: str) -> tuple:
        return tuple(p.strip().strip("\"'") for p in dotted.split("."))

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0].strip() if '"' not in line else line.strip()
        if match := re.match(r"^\[\[\s*([^\]]+?)\s*\]\]", stripped):
            path = parts(match.group(1))
            index = counts.get(path, -1) + 1
            counts[path] = index
            current = (*path, index)
            lines.setdefault(current, number)
            lines.setdefault(path, number)
        elif match := re.match(r"^\[\s*([^\]]+?)\s*\]", stripped):
            current = parts(match.group(1))
            lines.setdefault(current, number)
        elif match := re.match(r"^([A-Za-z0-9_\-\"'. ]+?)\s*=", stripped):
            lines.setdefault((*current, *parts(match.group(1))), number)
    return lines


class _Reader:
    """Turns the dictionary form into a :class:`PopulationSpec`, errors located in the file."""

    def __init__(self, source: str | None, text: str | None) -> None:
        self.source = source
        self.lines = _key_lines(text) if text is not None else {}

    def error(self, message: str, path: tuple, key: str | None = None) -> SpecFileError:
        line = None
        for end in range(len(path), 0, -1):  # the key, else the nearest table above it
            if path[:end] in self.lines:
                line = self.lines[path[:end]]
                break
        return SpecFileError(message, source=self.source, line=line, key=key)

    def table(self, value: Any, path: tuple, known_as: str) -> dict:
        where = _label(path)
        if not isinstance(value, Mapping):
            raise self.error(f"{where} must be a table of keys, not {value!r}", path)
        known = _KNOWN[known_as]
        for key in value:
            if key not in known:
                near = _near(key, known)
                raise self.error(
                    f"unknown key {key!r} in {where}"
                    + (f" (did you mean {near!r}?)" if near else "")
                    + f"; known keys: {', '.join(known)}", (*path, key), key)
        return dict(value)

    def build(self, make: Callable[[], Any], *paths: tuple) -> Any:
        """Construct, turning a :class:`SpecificationError` into one located at the key it names
        among those under ``paths`` (else at the first path)."""
        try:
            return make()
        except SpecFileError:
            raise
        except (SpecificationError, TypeError) as exc:  # TypeError: a value of the wrong kind
            message = str(exc)
            keys = [k for path in paths for k in self.lines
                    if len(k) == len(path) + 1 and k[:len(path)] == path]
            key = next((k for k in sorted(keys, key=lambda k: -len(str(k[-1])))
                        if re.search(rf"\b{re.escape(str(k[-1]))}\b", message)), None)
            where = _label(paths[0] if key is None else key[:-1])
            raise self.error(f"{where}: {message}", key or paths[0],
                             None if key is None else str(key[-1])) from None

    def spec(self, raw: Mapping[str, Any]) -> PopulationSpec:
        top = self.table(raw, (), "")
        model = self.table(top.get("model", {}), ("model",), "model")
        data = self.table(top.get("data", {}), ("data",), "data")
        params_raw = top.get("parameters")
        if params_raw is None:
            raise self.error("the specification has no [parameters.NAME] tables; give one for "
                             "each structural parameter (e.g. [parameters.cl])", ())
        if not isinstance(params_raw, Mapping):
            raise self.error("parameters must be tables [parameters.NAME]", ("parameters",))
        parameters = {}
        for name, value in params_raw.items():
            path = ("parameters", name)
            if name not in PARAMETER_UNITS:
                raise self.error(f"unknown parameter {name!r} in [parameters]; known "
                                 f"parameters: {', '.join(PARAMETER_UNITS)}", path, name)
            entry = self.table(value, path, "parameter")
            if "typical" not in entry:
                raise self.error(f"[parameters.{name}] needs typical = (the prior median of the "
                                 f"typical value, {PARAMETER_UNITS[name]})", path)
            parameters[name] = self.build(lambda e=entry: Parameter(**e), path)
        cov_raw = top.get("covariates", [])
        if not isinstance(cov_raw, list):
            raise self.error("covariates must be an array of tables [[covariates]]",
                             ("covariates",))
        terms = []
        for i, value in enumerate(cov_raw):
            path = ("covariates", i)
            entry = self.table(value, path, "covariates")
            for needed in ("parameter", "covariate", "effect"):
                if needed not in entry:
                    raise self.error(f"the {_label(path)} needs {needed} = ...", path)
            if "levels" in entry:
                levels = entry["levels"]
                entry["levels"] = tuple(levels) if isinstance(levels, list) else (levels,)
            terms.append(self.build(lambda e=entry: CovariateTerm(**e), path))
        residual = self.build(lambda: ResidualError(
            **self.table(top.get("residual", {}), ("residual",), "residual")), ("residual",))
        bsv = self.bsv(top.get("bsv", {}))
        spec = self.build(lambda: PopulationSpec(
            parameters=parameters, covariates=tuple(terms), residual=residual,
            **model, **data, **bsv), ("bsv",), ("model",), ("data",), ("parameters",))
        if "prior" not in top:
            return spec
        entry = self.table(top["prior"], ("prior",), "prior")
        if "model" not in entry:
            raise self.error("[prior] needs model = (a library model, e.g. \"fasanmade2009\")",
                             ("prior",))
        if "terms" in entry:  # as pkmodel writes it (a saved fit): the mapping already made
            prior = self.build(lambda: InformativePrior(
                str(entry["model"]), entry.get("weight", 1.0),
                {k: tuple(v) for k, v in dict(entry["terms"]).items()},
                tuple(entry.get("notes", ()))), ("prior",))
            return self.build(lambda: _replace(spec, prior=prior), ("prior",))
        from pkmodel.pk.population.prior import with_prior

        options = {k: entry[k] for k in ("typical_log_sd", "omega_log_sd", "theta_sd")
                   if k in entry}
        return self.build(lambda: with_prior(spec, entry["model"], entry.get("weight", 1.0),
                                             **options), ("prior",))


    def bsv(self, raw: Any) -> dict:
        """``[bsv]``: ``block = ["cl", "v1"]`` (one block) or ``[["cl", "v1"], ["q", "v2"]]``
        (several), and ``lkj_eta``; as :class:`PopulationSpec`'s ``bsv_blocks`` and
        ``lkj_eta``."""
        entry = self.table(raw, ("bsv",), "bsv")
        out: dict[str, Any] = {}
        if "lkj_eta" in entry:
            out["lkj_eta"] = entry["lkj_eta"]
        if "block" in entry:
            block = entry["block"]
            if not isinstance(block, list) or not block:
                raise self.error("[bsv]: block must be a list of parameter names (block = "
                                 "[\"cl\", \"v1\"]) or a list of such lists, not "
                                 f"{block!r}", ("bsv", "block"), "block")
            nested = [isinstance(b, list) for b in block]
            if all(nested):
                out["bsv_blocks"] = tuple(tuple(b) for b in block)
            elif not any(nested):
                out["bsv_blocks"] = (tuple(block),)
            else:
                raise self.error("[bsv]: block mixes names and lists; give one list of names "
                                 "or a list of lists", ("bsv", "block"), "block")
        return out


def _replace(spec: PopulationSpec, **changes: Any) -> PopulationSpec:
    import dataclasses

    return dataclasses.replace(spec, **changes)


def _label(path: tuple) -> str:
    if not path:
        return "the specification"
    if path[0] == "covariates" and len(path) > 1:
        return f"[[covariates]] entry {path[1] + 1}"
    return "[" + ".".join(str(p) for p in path) + "]"


def _near(key: str, known: tuple[str, ...]) -> str | None:
    import difflib

    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    return close[0] if close else None
