"""The declarative population-model specification: its objects and its file.

A :class:`PopulationSpec` says everything the fit needs that the dataset does not: the structure
(:mod:`pkmodel.pk.structures`: one, two or three compartments; IV bolus, zero-order infusion or
first-order absorption), each structural parameter's typical value with its log-normal prior and
whether it has between-subject variability (BSV), covariate effects (:class:`CovariateTerm`: the
forms of :mod:`pkmodel.pk.covariate_effects` with a prior on each coefficient), the residual
error model, how observations below the LLOQ are treated, and the units of the dataset. It is
the vocabulary of a population model with known numbers (:class:`pkmodel.pk.PopulationModel`)
with priors in their place.

The same specification can be kept as a small TOML file beside the dataset (:func:`read_spec`);
:meth:`PopulationSpec.to_dict` writes its layout and :meth:`PopulationSpec.from_dict` reads it
(also as pkmodel 0.4 saved it), refusing a key that is not known with the line (when reading a
file) and the keys that are known.

Units: the dataset's are stated once, in ``[data]`` (``time_unit``, ``concentration_unit``,
``amount_unit``). Typical values are stated in the dataset's time unit (CL and Q in L/hour for an
hour dataset, ka in 1/hour; volumes in L), or in the unit a parameter's ``unit`` names; every
estimate of the fit is reported in the dataset's units. Inside, the model computes in days, mg
and µg/mL (= mg/L); the conversions are :mod:`pkmodel.pk.units`'.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pkmodel.errors import SpecificationError
from pkmodel.pk.covariate_effects import FORMS, CovariateTerm
from pkmodel.pk.covariate_registry import COVARIATES, Covariate, CovariateRegistry
from pkmodel.pk.numbers import choice, positive
from pkmodel.pk.population.prior import InformativePrior, with_prior
from pkmodel.pk.population.toml_reading import LocatedReader, label, parse_toml
from pkmodel.pk.residual import RESIDUAL_ERRORS
from pkmodel.pk.structures import DOSING, PARAMETER_UNITS, LinearCompartmental, linear_structure
from pkmodel.pk.units import (
    AMOUNT_UNITS,
    CONCENTRATION_UNITS,
    parameter_unit,
    parse_parameter_unit,
    to_internal,
)
from pkmodel.pk.variability import correlation_name, correlation_names
from pkmodel.priors import Prior

__all__ = ["BLQ_METHODS", "COVARIATE_EFFECTS", "DEFAULT_LKJ_ETA", "DOSING", "PARAMETER_UNITS",
           "RESIDUAL_ERRORS", "Covariate", "CovariateTerm", "InformativePrior", "Parameter",
           "PopulationSpec", "ResidualError", "correlation_name", "read_spec"]

#: Kinds of covariate effect (see :class:`CovariateTerm`).
COVARIATE_EFFECTS = FORMS
#: Observations below the LLOQ: the M3 likelihood ``P(Y < LLOQ)``, or dropped (for comparison).
BLQ_METHODS = ("m3", "drop")
_TIME_UNITS = ("day", "hour", "week")
#: Default shape of the LKJ prior of the correlation matrix of a BSV block (see
#: :class:`PopulationSpec`).
DEFAULT_LKJ_ETA = 2.0


@dataclass(frozen=True)
class Parameter:
    """A structural parameter: its typical value's prior and its between-subject variability.

    Parameters
    ----------
    typical : float
        Median of the log-normal prior of the typical value, in ``unit``:
        ``log(TV) ~ Normal(log(typical), prior_log_sd)``.
    prior_log_sd : float, default 1
        SD of that prior on the log scale (1: a factor of about 7 either way at 95 %).
    bsv : bool, default False
        Whether the parameter varies between subjects: ``P_i = TV * covariates *
        exp(eta_i)``, ``eta_i ~ Normal(0, omega^2)`` (log-normal; independent of the other
        etas unless the specification puts it in a block, ``PopulationSpec.bsv_blocks``).
    omega_prior : float, default 0.5
        Scale of the half-normal prior of ``omega`` (the SD of ``eta``, log scale).
    unit : str, optional
        The unit of ``typical``: ``L`` for a volume, ``L/day``, ``L/hour`` or ``L/week`` for a
        clearance, ``1/day``, ``1/hour`` or ``1/week`` for a rate constant (checked against the
        parameter's kind). Left out, the specification's ``time_unit`` (L/hour for an hour
        dataset); :class:`PopulationSpec` fills it in.
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
    iov : bool, default False
        Whether the parameter also varies between the occasions of a subject (inter-occasion
        variability, IOV): ``P_ik = TV * covariates * exp(eta_i + kappa_ik)`` in occasion
        ``k``, ``kappa_ik ~ Normal(0, omega_iov^2)`` independent between occasions and
        subjects (Karlsson and Sheiner 1993); the occasions come from the dataset
        (:attr:`PopulationSpec.occasion`).
    iov_prior : float, default 0.3
        Scale of the half-normal prior of ``omega_iov`` (the SD of ``kappa``, log scale): IOV is
        usually smaller than BSV (published values of 0.1-0.3), so its prior is narrower than
        ``omega_prior``'s.
    """

    typical: float
    prior_log_sd: float = 1.0
    bsv: bool = False
    omega_prior: float = 0.5
    unit: str | None = None
    fixed: bool = False
    centred: bool | None = None
    iov: bool = False
    iov_prior: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "typical", positive(self.typical, "typical"))
        object.__setattr__(self, "iov_prior", positive(self.iov_prior, "iov_prior"))
        if not isinstance(self.iov, bool):
            raise SpecificationError(f"iov must be true or false, not {self.iov!r}")
        if self.fixed and self.iov:
            raise SpecificationError("a fixed parameter cannot vary between occasions: set "
                                     "iov = false, or fixed = false")
        object.__setattr__(self, "prior_log_sd", positive(self.prior_log_sd, "prior_log_sd"))
        object.__setattr__(self, "omega_prior", positive(self.omega_prior, "omega_prior"))
        if not isinstance(self.bsv, bool):
            raise SpecificationError(f"bsv must be true or false, not {self.bsv!r}")
        if not isinstance(self.fixed, bool):
            raise SpecificationError(f"fixed must be true or false, not {self.fixed!r}")
        if self.unit is not None:
            parse_parameter_unit(self.unit)
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
        if self.iov:
            out |= {"iov": True, "iov_prior": self.iov_prior}
        return out


@dataclass(frozen=True)
class ResidualError:
    """The residual error model to estimate and the priors of its SDs.

    ``sd = sqrt(additive^2 + (proportional * prediction)^2)`` (combined), or one of the two terms
    (:func:`pkmodel.pk.residual.residual_sd`).

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
        choice(self.error, RESIDUAL_ERRORS, "error")
        for key in ("proportional_prior", "additive_prior_ug_ml"):
            object.__setattr__(self, key, positive(getattr(self, key), key))

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
class PopulationSpec:
    """A population PK model to fit to a multi-patient NONMEM-style dataset.

    Parameters
    ----------
    parameters : mapping of str to Parameter
        One entry for each structural parameter of the structure (:attr:`structure`): ``cl, v``
        (one compartment), ``cl, v1, q, v2`` (two) or ``cl, v1, q2, v2, q3, v3`` (three), plus
        ``ka`` for oral dosing.
    compartments : {1, 2, 3}, default 2
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
        The unit of the dataset's ``TIME`` (and ``RATE``'s denominator, ``DUR``), of the typical
        values that do not name their own ``unit``, and of every time, clearance and rate
        constant the fit reports.
    concentration_unit : str, default "µg/mL"
        The unit of ``DV`` (and of an ``LLOQ`` column): µg/mL or mg/L (the same), ng/mL or µg/L,
        g/L or mg/mL (:data:`pkmodel.pk.units.CONCENTRATION_UNITS`); the fit's tables and plots
        use it. ``lloq_ug_ml`` and ``additive_prior_ug_ml`` stay in µg/mL, as named.
    amount_unit : str, default "mg"
        The unit of ``AMT``: mg, µg or g (volumes are in L whatever the units).
    drug : str, optional
        The drug's name, used in the labels of plots and reports (none by default).
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
    covariate_definitions : sequence of Covariate, default ()
        The dataset's covariate columns beyond the library's (WT, ALB, ATI/ADA, SEX/FEMALE,
        IMM), each with its unit and plausible range or its levels and its rule for blank cells
        (:meth:`pkmodel.pk.covariate_registry.Covariate.declared`; in the file,
        ``[data.covariates.NAME]``); one that reads a library column (``WT``) replaces the
        library's. Terms name them by name. A term on a categorical covariate with labels
        names its levels by label or by position (0, 1, ...).
    occasion : str, default "OCC"
        Where the occasions of the parameters with ``iov`` come from: a column of the dataset
        (``OCC`` by default: the occasion of each record, numbered as the dataset numbers it;
        NONMEM's convention), or ``"dose"``: each dose starts a new occasion, which lasts until
        the next dose (the dosing interval). Unused without IOV.
    drop : sequence of str, default ()
        Columns of the dataset not to read, as NONMEM's ``$INPUT NAME=DROP`` (or a control
        stream's renaming of a column out of NONMEM's reserved names, ``SS`` as ``SSX``): the
        file is read as if they were absent (:func:`~pkmodel.pk.read_nonmem`'s ``drop``).

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
    drug: str | None = None
    prior: InformativePrior | None = None
    bsv_blocks: tuple[tuple[str, ...], ...] = ()
    lkj_eta: float = DEFAULT_LKJ_ETA
    covariate_definitions: tuple[Covariate, ...] = ()
    occasion: str = "OCC"
    drop: tuple[str, ...] = ()
    structure: LinearCompartmental = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        structure = linear_structure(self.compartments, self.dosing)
        object.__setattr__(self, "structure", structure)
        choice(self.blq, BLQ_METHODS, "blq")
        choice(self.time_unit, _TIME_UNITS, "time_unit")
        choice(self.concentration_unit, tuple(CONCENTRATION_UNITS), "concentration_unit")
        choice(self.amount_unit, tuple(AMOUNT_UNITS), "amount_unit")
        if self.drug is not None:
            if not isinstance(self.drug, str) or not self.drug.strip():
                raise SpecificationError(f"drug must be the drug's name (text), not "
                                         f"{self.drug!r}")
            object.__setattr__(self, "drug", self.drug.strip())
        if self.lloq_ug_ml is not None:
            object.__setattr__(self, "lloq_ug_ml", positive(self.lloq_ug_ml, "lloq_ug_ml"))
        if not isinstance(self.occasion, str) or not self.occasion.strip():
            raise SpecificationError(f"occasion must be a column of the dataset (e.g. \"OCC\") "
                                     f"or \"dose\", not {self.occasion!r}")
        object.__setattr__(self, "occasion", self.occasion.strip())
        drop = (self.drop,) if isinstance(self.drop, str) else self.drop
        if not isinstance(drop, (list, tuple)) or not all(
                isinstance(c, str) and c.strip() for c in drop):
            raise SpecificationError(f"drop must be a list of the dataset's column names "
                                     f"(e.g. [\"SS\", \"II\"]), not {self.drop!r}")
        object.__setattr__(self, "drop", tuple(dict.fromkeys(c.strip() for c in drop)))
        if self.infusion_hours is not None:
            if not structure.infusions:
                raise SpecificationError("infusion_hours is for dosing = 'infusion' only")
            object.__setattr__(self, "infusion_hours",
                               positive(self.infusion_hours, "infusion_hours"))
        wanted = structure.parameter_names
        given = dict(self.parameters)
        missing = [p for p in wanted if p not in given]
        extra = [p for p in given if p not in wanted]
        what = f"a {structure.compartments}-compartment {structure.dosing} model"
        if missing or extra:
            raise SpecificationError(
                f"{what} has the parameters {', '.join(wanted)}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; not in this structure: {', '.join(extra)}" if extra else ""))
        for name, par in given.items():
            if not isinstance(par, Parameter):
                raise SpecificationError(f"parameter {name} must be a Parameter")
            kind = structure.kind(name)
            if par.unit is None:  # the dataset's time unit
                given[name] = dataclasses.replace(par, unit=parameter_unit(kind, self.time_unit))
                continue
            stated, per = parse_parameter_unit(par.unit)
            if stated != kind:
                raise SpecificationError(
                    f"parameter {name} is a {kind}, not in {par.unit!r}: state its typical value "
                    f"in {parameter_unit(kind, self.time_unit)} (or leave unit out)")
            given[name] = dataclasses.replace(par, unit=parameter_unit(kind, per or "day"))
        object.__setattr__(self, "parameters", {p: given[p] for p in wanted})
        definitions = tuple(self.covariate_definitions)
        if any(not isinstance(c, Covariate) for c in definitions):
            raise SpecificationError("covariate_definitions must be Covariate objects "
                                     "(Covariate.declared)")
        if len({c.name for c in definitions}) != len(definitions):
            raise SpecificationError("a covariate is declared twice")
        object.__setattr__(self, "covariate_definitions",
                           tuple(sorted(definitions, key=lambda c: c.name)))
        terms, seen = [], set()
        for term in self.covariates:
            if not isinstance(term, CovariateTerm):
                raise SpecificationError("covariates must be CovariateTerm objects")
            name = self.covariate_registry.resolve(term.covariate)
            term = term if name == term.covariate else term.with_covariate(name)
            term = _coded(term, self.covariate_registry[name])
            _check_levels(term, self.covariate_registry[name])
            if term.parameter not in wanted:
                raise SpecificationError(f"covariate {term.covariate} acts on "
                                         f"{term.parameter!r}, which {what} does not have "
                                         f"({', '.join(wanted)})")
            if (term.parameter, term.covariate) in seen:
                raise SpecificationError(f"two effects of {term.covariate} on {term.parameter}")
            seen.add((term.parameter, term.covariate))
            terms.append(term)
        object.__setattr__(self, "covariates", tuple(terms))
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
        object.__setattr__(self, "lkj_eta", positive(self.lkj_eta, "lkj_eta"))
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
    def covariate_registry(self) -> CovariateRegistry:
        """The covariates this specification's terms may name, with units and ranges: the
        library's and those it declares (:attr:`covariate_definitions`)."""
        return COVARIATES.with_(*self.covariate_definitions)

    def typical_per_day(self, name: str) -> float:
        """Parameter ``name``'s ``typical`` in the model's own units (L, L/day, 1/day), in which
        the typical values are sampled."""
        par = self.parameters[name]
        kind, per = parse_parameter_unit(par.unit)
        return float(to_internal(par.typical, kind, per or "day"))

    def unit(self, name: str) -> str:
        """The unit in which parameter ``name`` is reported: the dataset's time unit
        (``L/hour`` for a clearance of an hour dataset)."""
        return self.structure.unit(name, self.time_unit)

    @property
    def correlation_names(self) -> tuple[str, ...]:
        """The correlations of the BSV blocks, ``corr_<p>_<q>`` for each pair of a block."""
        return correlation_names(self.bsv_blocks)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The structural parameters, in order."""
        return tuple(self.parameters)

    @property
    def bsv_parameters(self) -> tuple[str, ...]:
        """The structural parameters with between-subject variability."""
        return tuple(p for p, par in self.parameters.items() if par.bsv)

    @property
    def iov_parameters(self) -> tuple[str, ...]:
        """The structural parameters with inter-occasion variability."""
        return tuple(p for p, par in self.parameters.items() if par.iov)

    @property
    def occasions_from_doses(self) -> bool:
        """Whether each dose starts an occasion (``occasion = "dose"``), rather than a column."""
        return self.occasion.lower() == "dose"

    def priors(self) -> dict[str, Prior]:
        """The prior of every sampled parameter, by its name in the PyMC model: what
        :func:`~pkmodel.pk.population.build.build_model` builds and the report's tables write.

        ``log_tv_<p>`` ``Normal(log typical, prior_log_sd)``, the typical value in the model's
        own units (L, L/day, 1/day: :meth:`typical_per_day`; fixed parameters have none),
        ``omega_<p>`` ``HalfNormal(omega_prior)``, ``omega_iov_<p>`` ``HalfNormal(iov_prior)``,
        ``chol_corr_<block>`` ``LKJCorr(lkj_eta)``,
        each estimated ``theta_*`` ``Normal(prior_mean, prior_sd)``, ``sigma_prop`` and
        ``sigma_add_ug_ml`` ``HalfNormal``. A published prior (:attr:`prior`) is added on top
        of these as a potential.
        """
        out: dict[str, Prior] = {}
        for name, par in self.parameters.items():
            if not par.fixed:
                out[f"log_tv_{name}"] = Prior("Normal", mu=math.log(self.typical_per_day(name)),
                                              sigma=par.prior_log_sd)
            if par.bsv:
                out[f"omega_{name}"] = Prior("HalfNormal", sigma=par.omega_prior)
            if par.iov:
                out[f"omega_iov_{name}"] = Prior("HalfNormal", sigma=par.iov_prior)
        for block in self.bsv_blocks:
            out["chol_corr_" + "_".join(block)] = Prior("LKJCorr", eta=self.lkj_eta)
        for term in self.covariates:
            for theta in term.names:
                out[theta] = Prior("Normal", mu=term.prior_mean, sigma=term.prior_sd)
        r = self.residual
        if r.error in ("proportional", "combined"):
            out["sigma_prop"] = Prior("HalfNormal", sigma=r.proportional_prior)
        if r.error in ("additive", "combined"):
            out["sigma_add_ug_ml"] = Prior("HalfNormal", sigma=r.additive_prior_ug_ml)
        return out

    def structure_label(self) -> str:
        """E.g. ``2-compartment, zero-order infusion``."""
        return self.structure.label()

    def to_dict(self) -> dict:
        """Plain-JSON description, in the layout of the TOML file."""
        model: dict[str, Any] = self.structure.to_dict()
        if self.infusion_hours is not None:
            model["infusion_hours"] = self.infusion_hours
        data: dict[str, Any] = {"time_unit": self.time_unit,
                                "concentration_unit": self.concentration_unit,
                                "amount_unit": self.amount_unit, "blq": self.blq}
        if self.drug is not None:
            data["drug"] = self.drug
        if self.lloq_ug_ml is not None:
            data["lloq_ug_ml"] = self.lloq_ug_ml
        if self.covariate_definitions:
            data["covariates"] = {c.name: c.to_dict() for c in self.covariate_definitions}
        if self.iov_parameters:
            data["occasion"] = self.occasion
        if self.drop:
            data["drop"] = list(self.drop)
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
        """The specification from its dictionary form (a parsed TOML file, or :meth:`to_dict`,
        also as pkmodel 0.4 wrote it).

        Parameters
        ----------
        raw : mapping
            Sections ``model``, ``data``, ``parameters``, ``covariates``, ``residual``, ``bsv``,
            ``prior``.
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
        return _SpecReader(source, text).spec(raw)

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
    raw, text = parse_toml(path)
    return PopulationSpec.from_dict(raw, source=str(path), text=text)


# ----------------------------------------------------------------------------- the layout
_KNOWN = {
    "": ("model", "data", "parameters", "covariates", "residual", "bsv", "prior"),
    "model": ("compartments", "dosing", "infusion_hours"),
    "data": ("time_unit", "concentration_unit", "amount_unit", "blq", "lloq_ug_ml", "drug",
             "covariates", "occasion", "drop"),
    "declared": ("unit", "range", "levels", "kind", "missing", "column"),
    "parameter": ("typical", "prior_log_sd", "bsv", "omega_prior", "unit", "fixed", "centred",
                  "iov", "iov_prior"),
    "covariates": ("parameter", "covariate", "effect", "reference", "exponent", "prior_mean",
                   "prior_sd", "levels", "below", "above"),
    "residual": ("error", "proportional_prior", "additive_prior_ug_ml"),
    "bsv": ("block", "lkj_eta"),
    "prior": ("model", "weight", "typical_log_sd", "omega_log_sd", "theta_sd", "terms", "notes"),
}


class _SpecReader(LocatedReader):
    """The specification's layout: each section into its objects, errors located in the file."""

    def spec(self, raw: Mapping[str, Any]) -> PopulationSpec:
        top = self.table(raw, (), _KNOWN[""])
        model = self.table(top.get("model", {}), ("model",), _KNOWN["model"])
        data = self.table(top.get("data", {}), ("data",), _KNOWN["data"])
        declared = self.declared(data.pop("covariates", {}))
        registry = COVARIATES.with_(*declared)
        structure = self.build(lambda: linear_structure(
            **{k: v for k, v in model.items() if k in ("compartments", "dosing")}), ("model",))
        params_raw = top.get("parameters")
        if params_raw is None:
            raise self.error("the specification has no [parameters.NAME] tables; give one for "
                             "each structural parameter (e.g. [parameters.cl])", ())
        if not isinstance(params_raw, Mapping):
            raise self.error("parameters must be tables [parameters.NAME]", ("parameters",))
        parameters = {}
        for name, value in params_raw.items():
            path = ("parameters", name)
            if name not in structure.parameter_names:
                raise self.error(f"unknown parameter {name!r} in [parameters]; a "
                                 f"{structure.label()} model has "
                                 f"{', '.join(structure.parameter_names)}", path, name)
            entry = self.table(value, path, _KNOWN["parameter"])
            if "typical" not in entry:
                per = data.get("time_unit", "day")
                per = per if per in _TIME_UNITS else "day"
                raise self.error(f"[parameters.{name}] needs typical = (the prior median of the "
                                 f"typical value, {structure.unit(name, per)})", path)
            parameters[name] = self.build(lambda e=entry: Parameter(**e), path)
        cov_raw = top.get("covariates", [])
        if not isinstance(cov_raw, list):
            raise self.error("covariates must be an array of tables [[covariates]]",
                             ("covariates",))
        terms = []
        for i, value in enumerate(cov_raw):
            path = ("covariates", i)
            entry = self.table(value, path, _KNOWN["covariates"])
            for needed in ("parameter", "covariate", "effect"):
                if needed not in entry:
                    raise self.error(f"the {label(path)} needs {needed} = ...", path)
            if "levels" in entry:
                levels = entry["levels"]
                entry["levels"] = tuple(levels) if isinstance(levels, list) else (levels,)
            terms.append(self.build(lambda e=entry: _term(e, registry), path))
        residual = self.build(lambda: ResidualError(
            **self.table(top.get("residual", {}), ("residual",), _KNOWN["residual"])),
            ("residual",))
        bsv = self.bsv(top.get("bsv", {}))
        spec = self.build(lambda: PopulationSpec(
            parameters=parameters, covariates=tuple(terms), residual=residual,
            covariate_definitions=declared, **model, **data, **bsv), ("bsv",), ("model",),
            ("data",), ("parameters",))
        if "prior" not in top:
            return spec
        entry = self.table(top["prior"], ("prior",), _KNOWN["prior"])
        if "model" not in entry:
            raise self.error("[prior] needs model = (a library model, e.g. \"fasanmade2009\")",
                             ("prior",))
        if "terms" in entry:  # as pkmodel writes it (a saved fit): the mapping already made
            prior = self.build(lambda: InformativePrior(
                str(entry["model"]), entry.get("weight", 1.0),
                {k: tuple(v) for k, v in dict(entry["terms"]).items()},
                tuple(entry.get("notes", ()))), ("prior",))
            return self.build(lambda: dataclasses.replace(spec, prior=prior), ("prior",))
        options = {k: entry[k] for k in ("typical_log_sd", "omega_log_sd", "theta_sd")
                   if k in entry}
        return self.build(lambda: with_prior(spec, entry["model"], entry.get("weight", 1.0),
                                             **options), ("prior",))

    def declared(self, raw: Any) -> tuple[Covariate, ...]:
        """``[data.covariates.NAME]`` tables: the dataset's own covariate columns."""
        path = ("data", "covariates")
        if not isinstance(raw, Mapping):
            raise self.error("[data.covariates] must hold one table per covariate column, e.g. "
                             "[data.covariates.WGT] with unit = \"kg\" and range = [0.3, 6]",
                             path)
        out = []
        for name, value in raw.items():
            entry = self.table(value, (*path, name), _KNOWN["declared"])
            if isinstance(entry.get("levels"), list):
                entry["levels"] = tuple(entry["levels"])
            out.append(self.build(lambda n=name, e=entry: Covariate.declared(n, **e),
                                  (*path, name)))
        return tuple(out)

    def bsv(self, raw: Any) -> dict:
        """``[bsv]``: ``block = ["cl", "v1"]`` (one block) or ``[["cl", "v1"], ["q", "v2"]]``
        (several), and ``lkj_eta``; as :class:`PopulationSpec`'s ``bsv_blocks`` and
        ``lkj_eta``."""
        entry = self.table(raw, ("bsv",), _KNOWN["bsv"])
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


def _term(entry: Mapping[str, Any], registry: CovariateRegistry) -> CovariateTerm:
    """A ``[[covariates]]`` entry, its covariate named by name or NONMEM column."""
    entry = dict(entry)
    entry["covariate"] = registry.resolve(entry["covariate"])
    return CovariateTerm(**entry)


def _coded(term: CovariateTerm, cov: Covariate) -> CovariateTerm:
    """A categorical term with its levels named by label, with the labels' positions."""
    if not term.labelled:
        return term
    if not cov.labelled:
        raise SpecificationError(f"the categorical effect of {cov.name} on {term.parameter} "
                                 f"names levels by label, but {cov.name}'s levels are "
                                 f"numbers ({cov.describe_levels()})")
    return CovariateTerm(term.parameter, term.covariate, term.form,
                         cov.code(term.reference) if isinstance(term.reference, str)
                         else term.reference, term.exponent, term.prior_mean, term.prior_sd,
                         tuple(cov.code(v) if isinstance(v, str) else v for v in term.levels),
                         term.below, term.above)


def _check_levels(term: CovariateTerm, cov: Covariate) -> None:
    """A categorical term names levels its covariate has (by number or position)."""
    if term.form != "categorical" or cov.codes is None:
        return
    for level in (term.reference, *term.levels):
        if level not in cov.codes:
            shown = (f"{level:g}" if not cov.labelled or not float(level).is_integer()
                     or not 0 <= level < len(cov.levels) else cov.levels[int(level)])
            raise SpecificationError(
                f"the categorical effect of {cov.name} on {term.parameter} names level "
                f"{shown}, which {cov.name} does not have (levels {cov.describe_levels()}"
                + (", held as their positions 0, 1, ...)" if cov.labelled else ")")
                + "; name its levels in the effect's levels and reference")
