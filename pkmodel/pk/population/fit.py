"""Fitting a population PK model with nutpie, the fitted model, and its netCDF file.

:func:`fit_population` reads the dataset (:func:`pkmodel.pk.read_nonmem`), builds the
hierarchical model (:mod:`~pkmodel.pk.population.build`), samples it with nutpie under the
project's seed, Ctrl-C guard and exact arithmetic, and checks convergence with the gate every fit
passes (:func:`pkmodel.diagnostics.compute_diagnostics`: R-hat, ESS, divergences, E-BFMI, tree
depth). The compiled model is kept in memory and on disk (:mod:`pkmodel.model_cache`) and reused,
with the new data, by later fits in any process of the same specification on about as many
subjects (the same :func:`subject_slots`).

A :class:`PopulationFit` gives the summary of every parameter (median, credible interval, R-hat,
ESS), the eta shrinkage, goodness-of-fit data, and saves as netCDF (never pickled).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.diagnostics import Diagnostics, compute_diagnostics
from pkmodel.errors import (
    ConvergenceWarning,
    FitFileError,
    SamplingError,
    SpecificationError,
)
from pkmodel.files import atomic_path
from pkmodel.model_cache import (
    SamplerModel,
    cache_location,
    free_coordinates,
    load_or_compile,
    model_key,
)
from pkmodel.netcdf import (
    CHECKSUM_ATTR,
    ENGINE,
    checksum,
    open_fit_file,
    package_versions,
    plain_strings,
)
from pkmodel.pk.models import COVARIATES, PopulationModel
from pkmodel.pk.population.build import (
    build_model,
    individual_log_parameters,
    model_data,
    predict,
    residual_sd,
)
from pkmodel.pk.population.data import PopulationData, read_population_data
from pkmodel.pk.population.spec import PARAMETER_UNITS, PopulationSpec, read_spec
from pkmodel.sampling import (
    POPULATION_DRAWS,
    check_complete,
    collector_paused,
    exact_arithmetic,
    interrupt_guard,
    resolve_seed,
    sampler_failure,
)

__all__ = ["MODEL_KIND", "PopulationFit", "fit_population", "load_population_fit"]

#: The ``pkmodel_model_kind`` of a saved population PK fit.
MODEL_KIND = "population_pk"
FORMAT_VERSION = 1
# nutpie's diagonal mass matrix (its default). With the random effects partially centred
# (centring.py), the correlation between each typical value and its subjects' effects that
# nutpie's low-rank adaptation was chosen for (when they were all non-centred) is gone, and
# low-rank became both slower and worse (measured with the weights at omega's prior median,
# before the range of centring.py): 60 subjects, 150 observations, 4 x 1000 draws, 194 s and
# R-hat 1.60 against 34 s and 1.03; on 1,000 patients with two troughs each it had not
# finished after 8 minutes where the diagonal one passed the gate in 90 s.
_SAMPLER_OPTIONS: dict = {}


_SOURCES = ("pk/population/build.py", "pk/population/fit.py", "pk/population/spec.py",
            "pk/simulation.py")


def _compile(spec: PopulationSpec, data: PopulationData):
    """nutpie's compiled model of ``spec`` on ``data`` (``nutpie.compile_pymc_model``, no jitter:
    :func:`_sampler_model` sets the start), and the model's free variables with their sizes."""
    import nutpie

    model = build_model(spec, data)
    with warnings.catch_warnings(), exact_arithmetic():
        warnings.simplefilter("ignore", UserWarning)
        compiled = nutpie.compile_pymc_model(model, jitter_rvs=set())
    return compiled, free_coordinates(model, compiled)


def _start(spec: PopulationSpec, arrays: dict,
           model: SamplerModel) -> tuple[np.ndarray, np.ndarray]:
    """The initial point of the sampler on these data, and which coordinates are jittered.

    The population parameters start where PyMC starts them, at the centre of their priors
    (the compiled model's ``x0``, which the specification alone decides); each subject's
    ``u_<p>`` at its prior's centre given them, ``(1 - w_i) mean_i``, with ``mean_i`` the typical
    value with the covariate effects of that subject (what PyMC's initial point gives these
    data; tested). Only the random-effect coordinates ``u_<p>`` and ``z_<p>`` are jittered
    (``U(-1, 1)``), as a pharmacometrician starts NONMEM from initial estimates: jittered on the
    log scale too (a factor of up to e), one chain of four on the theophylline data started in
    the flip-flop region of the one-compartment oral model (absorption and elimination rates
    swapped for some subjects, which gives the same concentrations) and stayed there (R-hat
    1.53).
    """
    x0 = np.array(model.x0, dtype=float)
    jitter = np.zeros(model.n_dim, dtype=bool)
    where = model.slices()
    values: dict = {f"log_tv_{p}": np.log(par.typical) for p, par in spec.parameters.items()}
    values |= {name: float(x0[sl][0]) for name, sl in where.items()
               if name.startswith(("log_tv_", "theta_"))}
    means = individual_log_parameters(
        spec, arrays, values | {f"eta_{q}": 0.0 for q in spec.bsv_parameters})
    for name, sl in where.items():
        if name.startswith("u_"):
            p = name.removeprefix("u_")
            x0[sl] = (1.0 - arrays[f"w_{p}"]) * np.broadcast_to(means[p], x0[sl].shape)
        jitter[sl] = name.startswith(("u_", "z_"))
    return x0, jitter


def _model_key(spec: PopulationSpec, n_subjects: int, machine: str) -> str:
    """The cache key of the compiled model: the specification without what only prepares the
    data (units, LLOQ, BLQ method, infusion duration, a published prior's numbers), the number
    of subjects, the sources that build the model, the library versions and the CPU."""
    described = {k: v for k, v in spec.to_dict().items() if k != "data"}
    described["model"].pop("infusion_hours", None)
    if "prior" in described:  # its numbers are data: only which quantities it informs counts
        described["prior"] = sorted(described["prior"]["terms"])
    root = Path(__file__).parents[2]
    return model_key([root / name for name in _SOURCES], json.dumps(described, sort_keys=True),
                     f"subjects={int(n_subjects)}", machine=machine)


def subject_slots(n_subjects: int) -> int:
    """How many subjects the compiled model of ``n_subjects`` has room for: the smallest
    ``ceil(2^(k/4))`` (k = 0, 1, ...) that holds them, at most 19 % more (12 -> 12, 60 -> 64,
    1,000 -> 1,024)."""
    k = 0
    while math.ceil(2 ** (k / 4)) < n_subjects:
        k += 1
    return max(math.ceil(2 ** (k / 4)), 1)


def padded(data: PopulationData, slots: int) -> PopulationData:
    """``data`` with subjects added up to ``slots``: no observations, no doses, the first
    subject's covariates (never used: nothing is predicted for them)."""
    extra = slots - data.n_subjects
    if extra <= 0:
        return data
    ids = tuple(f"(empty slot {i + 1})" for i in range(extra))
    covariates = {k: np.concatenate([v, np.repeat(v[:1], extra)])
                  for k, v in data.covariates.items()}
    return dataclasses.replace(data, subject_ids=data.subject_ids + ids, covariates=covariates)


def _sampler_model(spec: PopulationSpec, data: PopulationData) -> SamplerModel:
    """The compiled model of ``spec`` for ``data``, and these data with their initial point.

    The model is compiled once per specification and number of :func:`subject_slots`, kept in
    memory and in the disk cache (:mod:`pkmodel.model_cache`), so that a dataset with a few
    subjects more or less is served by the same code. The slots beyond the subjects hold random
    effects without data, always non-centred (``w = 1``: ``u ~ Normal(0, 1)``, ``eta = omega
    u``): independent standard normals a posteriori, they leave the posterior of every other
    quantity exactly as it is, and are dropped from the draws.
    """
    full = padded(data, subject_slots(data.n_subjects))
    arrays = model_data(spec, full)  # the empty slots' weights are 1 (centring.py)
    directory, machine = cache_location()
    key = _model_key(spec, full.n_subjects, machine)
    model = load_or_compile(key, directory, lambda: _compile(spec, full))
    x0, jitter = _start(spec, arrays, model)
    return model.with_data(arrays, x0=x0, jitter=jitter)



def fit_population(
    dataset,
    spec: PopulationSpec | str | os.PathLike,
    *,
    draws: int = POPULATION_DRAWS,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    target_accept: float = 0.9,
    random_seed: int | None = None,
    progressbar: bool = False,
    sep: str = ",",
) -> PopulationFit:
    """Fit a population PK model to a multi-patient NONMEM-style dataset by NUTS (nutpie).

    Parameters
    ----------
    dataset : path, DataFrame, PKDataset or PopulationData
        The dataset (``ID, TIME, AMT, RATE, DV, EVID, MDV``, censoring and covariate columns;
        see :func:`pkmodel.pk.read_nonmem`).
    spec : PopulationSpec or path
        The model, or its TOML file (:func:`~pkmodel.pk.population.read_spec`).
    draws, tune, chains : int
        Posterior draws and tuning steps per chain, and chains.
    cores : int, optional
        Chains run in parallel on this many cores (default: all, up to ``chains``).
    target_accept : float, default 0.9
        NUTS target acceptance rate (raise it, e.g. to 0.95, against divergences).
    random_seed : int, optional
        The one seed (default :data:`pkmodel.sampling.DEFAULT_RANDOM_SEED`).
    progressbar : bool, default False
        Show nutpie's progress.
    sep : str, default ","
        CSV delimiter of the dataset.

    Returns
    -------
    PopulationFit
        Its ``diagnostics`` computed; a fit that fails them emits a
        :class:`~pkmodel.errors.ConvergenceWarning` saying what to do.

    Raises
    ------
    PKDataError
        A dataset the specification cannot use (naming row or ID, column and fix).
    SpecFileError, SpecificationError
        A bad specification or option.
    SamplingError
        When the sampler cannot start or returns an incomplete trace.
    KeyboardInterrupt
        On Ctrl-C during sampling (nothing is returned or saved).
    """
    if not isinstance(spec, PopulationSpec):
        spec = read_spec(spec)
    for name, value, low in (("draws", draws, 1), ("tune", tune, 1), ("chains", chains, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise SpecificationError(f"{name} must be an integer >= {low}, not {value!r}")
    if not 0.5 <= float(target_accept) < 1.0:
        raise SpecificationError(f"target_accept must be in [0.5, 1), not {target_accept!r}")
    data = dataset if isinstance(dataset, PopulationData) else read_population_data(
        dataset, spec, sep=sep)
    seed = resolve_seed(random_seed)
    cores = min(chains, cores or os.cpu_count() or 1)
    with collector_paused():
        import nutpie

        compiled = _sampler_model(spec, data)
        with interrupt_guard():
            try:
                tree = nutpie.sample(compiled.nutpie_model(), draws=int(draws), tune=int(tune),
                                     chains=int(chains), cores=int(cores), seed=int(seed),
                                     target_accept=float(target_accept), save_warmup=False,
                                     progress_bar=progressbar, **_SAMPLER_OPTIONS)
            except RuntimeError as err:  # nutpie's errors, e.g. no finite starting point
                reason = sampler_failure(err)
                raise SamplingError(
                    f"the sampler failed ({reason}); check the dataset's units (AMT in mg, DV in "
                    "µg/mL, TIME in the specification's time_unit) and the typical values of "
                    "the specification, then fit again (nothing was saved)") from err
        check_complete(tree, draws=int(draws), chains=int(chains))
        posterior = tree["posterior"].to_dataset()
        # the sampler's coordinates (unconstrained values; the partially centred u_<p> of
        # centring.py, kept as the model's eta_<p>) are not parameters of the model
        partial = {f"u_{p}" for p in spec.bsv_parameters}
        coordinates = [v for v in posterior.data_vars
                       if str(v).endswith("__") or str(v) in partial]
        posterior = posterior.drop_vars(coordinates).isel(
            subject=slice(0, data.n_subjects)).assign_coords(
            subject=list(data.subject_ids)).assign_attrs(tuning_steps=int(tune))
        stats = tree["sample_stats"].to_dataset()
    core = xr.DataTree.from_dict({"/posterior": posterior, "/sample_stats": stats})
    return PopulationFit(spec=spec, data=data, tree=core, random_seed=int(seed))


@dataclass
class PopulationFit:
    """A fitted population PK model.

    Attributes
    ----------
    spec : PopulationSpec
    data : PopulationData
        The data it was fitted to (kept in the saved file).
    tree : xarray.DataTree
        ``posterior`` (chain, draw, subject) and ``sample_stats``.
    random_seed : int
    warn : bool, default True
        Emit the :class:`~pkmodel.errors.ConvergenceWarning` of a failed gate on creation.
    """

    spec: PopulationSpec
    data: PopulationData
    tree: xr.DataTree
    random_seed: int
    warn: bool = True
    _diagnostics: Diagnostics | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._diagnostics is None:
            self._diagnostics = compute_diagnostics(
                self.posterior, self.tree["sample_stats"].to_dataset(), self.checked_variables(),
                hierarchical_priors="omega_prior of the parameters with BSV"
                + (", lkj_eta of [bsv]" if self.spec.bsv_blocks else ""))
        if self.warn and not self._diagnostics.converged:
            warnings.warn("the population fit fails its convergence checks: "
                          + "; ".join(self._diagnostics.problems()), ConvergenceWarning,
                          stacklevel=3)

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws (chain, draw[, subject])."""
        return self.tree["posterior"].to_dataset()

    @property
    def notes(self) -> tuple[str, ...]:
        """What was changed or left out while preparing the data."""
        return self.data.notes

    @property
    def diagnostics(self) -> Diagnostics:
        """The convergence gate: R-hat, ESS, divergences, E-BFMI, tree depth."""
        return self._diagnostics

    @property
    def converged(self) -> bool:
        """Whether the fit passes the convergence gate."""
        return self._diagnostics.converged

    def reported_variables(self) -> dict[str, str]:
        """The population parameters of the summary, with their units."""
        out = {f"tv_{p}": PARAMETER_UNITS[p] for p in self.spec.parameter_names}
        out |= {f"omega_{p}": "SD of eta (log scale)" for p in self.spec.bsv_parameters}
        out |= {name: "correlation of the etas" for name in self.spec.correlation_names}
        for term in self.spec.covariates:
            unit = COVARIATES[term.covariate]["unit"]
            for theta in term.names:
                if term.effect == "power":
                    out[theta] = f"exponent of {term.covariate} / {term.reference:g}"
                elif term.effect in ("linear", "exponential"):
                    out[theta] = f"per {unit} from {term.reference:g}"
                else:
                    out[theta.replace("theta_", "ratio_", 1)] = f"ratio to {term.covariate} " + (
                        f"{term.reference:g}" if term.effect == "categorical" else
                        f"{'>=' if term.below is not None else '<='} "
                        f"{term.below if term.below is not None else term.above:g}")
        units = {"sigma_prop": "fraction", "sigma_add_ug_ml": "µg/mL"}
        return out | {k: units[k] for k in self.spec.residual.names}

    def checked_variables(self) -> list[str]:
        """What the convergence gate checks: every population parameter (the correlations of
        the BSV blocks among them; not the fixed typical values) and every eta."""
        fixed = {f"tv_{p}" for p, par in self.spec.parameters.items() if par.fixed}
        return [*(v for v in self.reported_variables() if v not in fixed),
                *(f"eta_{p}" for p in self.spec.bsv_parameters)]

    def summary(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Every population parameter: median, equal-tailed credible interval, R-hat, ESS.

        Parameters
        ----------
        ci_prob : float, default 0.9
            Width of the credible interval (``lower``, ``upper``).

        Returns
        -------
        pandas.DataFrame
            Columns ``parameter, unit, median, lower, upper, rhat, ess_bulk, ess_tail``; then
            ``shrinkage`` of each parameter with BSV on the ``omega_`` rows (NaN elsewhere). A
            fixed typical value has its value as median and both bounds, and NaN diagnostics.
        """
        import arviz as az

        if not 0 < ci_prob < 1:
            raise SpecificationError(f"ci_prob must be between 0 and 1, not {ci_prob!r}")
        units = self.reported_variables()
        post = self.posterior[list(units)]
        sampled = post[[v for v in units if v in self.checked_variables()]]
        rhat = az.rhat(sampled)
        bulk = az.ess(sampled, method="bulk")
        tail = az.ess(sampled, method="tail")
        shrinkage = self.shrinkage()
        rows = []
        lo, hi = (1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2
        for name, unit in units.items():
            values = post[name].values.ravel()
            q = np.quantile(values, [lo, 0.5, hi])
            rows.append({"parameter": name, "unit": unit, "median": float(q[1]),
                         "lower": float(q[0]), "upper": float(q[2]),
                         # a fixed value (NONMEM's FIX) has no diagnostics: NaN
                         "rhat": float(rhat[name]) if name in rhat else np.nan,
                         "ess_bulk": float(bulk[name]) if name in bulk else np.nan,
                         "ess_tail": float(tail[name]) if name in tail else np.nan,
                         "shrinkage": shrinkage.get(name.removeprefix("omega_"), np.nan)
                         if name.startswith("omega_") else np.nan})
        return pd.DataFrame(rows)

    def shrinkage(self) -> dict[str, float]:
        """Eta shrinkage of each parameter with BSV: ``1 - SD_i(E[eta_i | y]) / omega``.

        The SD over subjects of the posterior means of the random effects, relative to the
        posterior median of ``omega`` (NONMEM's eta shrinkage, with posterior means in place of
        the empirical Bayes modes). Near 0: the data inform each subject's value; near 1: the
        individual values fall back to the typical one.
        """
        out = {}
        post = self.posterior
        for p in self.spec.bsv_parameters:
            means = post[f"eta_{p}"].mean(dim=("chain", "draw")).values
            omega = float(np.median(post[f"omega_{p}"].values))
            out[p] = float(1.0 - np.std(means, ddof=1) / omega) if means.size > 1 else np.nan
        return out

    def goodness_of_fit(self, max_draws: int = 200) -> pd.DataFrame:
        """Observed values with population and individual predictions, one row each.

        Parameters
        ----------
        max_draws : int, default 200
            Posterior draws (evenly thinned) for the individual predictions.

        Returns
        -------
        pandas.DataFrame
            ``ID, time_days, dv_ug_ml, cens`` (0 observed, 1 below the LLOQ in ``dv_ug_ml``, -1
            above), ``pred_ug_ml`` (typical subject of those covariates, eta 0, at the posterior
            medians), ``ipred_ug_ml`` (posterior median of the individual prediction) and
            ``iwres`` (``(dv - ipred) / sd`` at ``ipred`` and the residual SDs' medians; NaN
            for censored values) and ``cwres`` (:func:`~pkmodel.pk.population.checks.cwres`).
        """
        from pkmodel.pk.population.checks import cwres

        post = self.posterior.stack(sample=("chain", "draw"))
        n = post.sizes["sample"]
        pick = np.unique(np.linspace(0, n - 1, min(int(max_draws), n)).astype(int))
        arrays = model_data(self.spec, self.data)
        names = [n for n in post.data_vars if n.startswith(("log_tv_", "theta_", "sigma_"))]
        draws = {k: post[k].values[pick][:, None] for k in names}
        draws |= {f"eta_{p}": post[f"eta_{p}"].transpose("sample", "subject").values[pick]
                  for p in self.spec.bsv_parameters}
        ipred = np.median(predict(self.spec, arrays,
                                  individual_log_parameters(self.spec, arrays, draws)), axis=0)
        typical = {k: np.median(post[k].values) for k in names}
        typical |= {f"eta_{p}": np.zeros(self.data.n_subjects) for p in self.spec.bsv_parameters}
        pred = predict(self.spec, arrays, individual_log_parameters(self.spec, arrays, typical))
        sd = residual_sd(self.spec, ipred, typical)
        iwres = np.where(self.data.obs_cens == 0, (self.data.obs_value_ug_ml - ipred) / sd,
                         np.nan)
        ids = np.asarray(self.data.subject_ids, dtype=object)
        return pd.DataFrame({"ID": ids[self.data.obs_subject], "time_days":
                             self.data.obs_time_days, "dv_ug_ml": self.data.obs_value_ug_ml,
                             "cens": self.data.obs_cens, "pred_ug_ml": pred,
                             "ipred_ug_ml": ipred, "iwres": iwres, "cwres": cwres(self)})

    def pc_vpc(self, *, n_replicates: int = 200, n_bins: int = 8, ci_prob: float = 0.9,
               random_seed: int | None = None):
        """The prediction-corrected visual predictive check; see
        :func:`pkmodel.pk.population.checks.pc_vpc`."""
        from pkmodel.pk.population.checks import pc_vpc

        return pc_vpc(self, n_replicates=n_replicates, n_bins=n_bins, ci_prob=ci_prob,
                      random_seed=self.random_seed if random_seed is None else random_seed)

    def to_population_model(self, name: str = "popfit", *,
                            title: str | None = None) -> PopulationModel:
        """The fitted model as a :class:`~pkmodel.pk.PopulationModel`, usable wherever a library
        model is (``estimate_individual``, ``simulate``, ``pkmodel pk forecast --model FIT.nc``).

        The specification's vocabulary with posterior medians in place of its priors: the
        structure, typical values, covariate effects (their coefficients), ``omega2 =
        median(omega)^2`` with the BSV blocks and the medians of their correlations, and the
        residual SDs (a term the fit lacks is 0). A covariate not given takes the reference of
        the specification's (first) effect of it: its reference value or level, or an
        indicator's threshold.

        Parameters
        ----------
        name : str, default "popfit"
            The model's name.
        title : str, optional
            One line describing it (default: the structure and the dataset).

        Raises
        ------
        SpecificationError
            When the medians of a block's correlations do not form a correlation matrix.
        """
        spec = self.spec
        med = {k: float(np.median(v.values)) for k, v in self.posterior.data_vars.items()
               if "subject" not in v.dims}
        reference: dict[str, float] = {}
        for term in spec.covariates:
            reference.setdefault(term.covariate, float(
                term.reference if term.reference is not None
                else term.below if term.below is not None else term.above))
        return PopulationModel(
            name=str(name),
            title=title or (f"Population PK fit ({spec.structure_label()}) of "
                            f"{self.data.n_subjects} subjects from {self.data.source}"),
            citation="a local population PK fit (pkmodel pk fit)",
            source=("posterior medians of a pkmodel population fit: typical values, covariate "
                    "coefficients, omega^2 = median(omega)^2, correlations, residual SDs"),
            structure=spec.structure,
            typical={p: med[f"tv_{p}"] for p in spec.parameter_names},
            reference_covariates=reference,
            effects=tuple(term.with_coefficient(
                term.coefficient if not term.estimated
                else tuple(med[n] for n in term.names) if term.form == "categorical"
                else med[term.names[0]]) for term in spec.covariates),
            omega2={p: med[f"omega_{p}"] ** 2 for p in spec.bsv_parameters},
            bsv_blocks=spec.bsv_blocks,
            correlations={c: med[c] for c in spec.correlation_names},
            proportional_sd=med.get("sigma_prop", 0.0),
            additive_sd_ug_ml=med.get("sigma_add_ug_ml", 0.0),
            population=f"{self.data.n_subjects} subjects of {self.data.source}",
            cv_convention="lognormal")

    def to_dict(self, ci_prob: float = 0.9) -> dict:
        """Plain JSON: the summary rows, shrinkage, diagnostics, notes, specification."""
        table = self.summary(ci_prob)
        rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                 for k, v in row.items() if k != "shrinkage"} for row in table.to_dict("records")]
        return {"structure": self.spec.structure_label(), "ci_prob": ci_prob,
                "n_subjects": self.data.n_subjects, "n_observations": self.data.n_observations,
                "n_below_lloq": int(np.sum(self.data.obs_cens == 1)),
                "parameters": rows, "shrinkage": self.shrinkage(),
                "diagnostics": self.diagnostics.to_dict() | {"problems":
                                                             self.diagnostics.problems()},
                "notes": list(self.notes), "random_seed": self.random_seed,
                "spec": self.spec.to_dict(), "source": self.data.source}

    def save(self, path: str | os.PathLike, *, force: bool = False) -> None:
        """Write the fit to ``path`` as netCDF (atomically; an existing file only with
        ``force``)."""
        frames = self.data.to_frames()
        groups = {"posterior": self.posterior,
                  "sample_stats": plain_strings(self.tree["sample_stats"].to_dataset())}
        subjects = frames["subjects"]
        groups["pkmodel_subjects"] = xr.Dataset(
            {c: ("subject", subjects[c].to_numpy(dtype=str if c == "ID" else float))
             for c in subjects.columns})
        for name in ("observations", "doses"):
            frame = frames[name]
            groups[f"pkmodel_{name}"] = xr.Dataset(
                {c: ("row", frame[c].to_numpy(dtype=str if c == "ID" else float))
                 for c in frame.columns})
        tree = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
        tree.attrs.update({
            "pkmodel_format": FORMAT_VERSION,
            "pkmodel_model_kind": MODEL_KIND,
            "pkmodel_spec": json.dumps(self.spec.to_dict(), sort_keys=True),
            "pkmodel_random_seed": int(self.random_seed),
            "pkmodel_source": self.data.source,
            "pkmodel_notes": json.dumps(list(self.data.notes)),
            "pkmodel_versions": json.dumps(package_versions(), sort_keys=True),
        })
        tree.attrs[CHECKSUM_ATTR] = checksum(tree)
        with atomic_path(path, force=force) as tmp:
            tree.to_netcdf(tmp, engine=ENGINE)

    @classmethod
    def load(cls, path: str | os.PathLike, *, warn: bool = True) -> PopulationFit:
        """Load a fit saved by :meth:`save`; see :func:`load_population_fit`."""
        return load_population_fit(path, warn=warn)


def load_population_fit(path: str | os.PathLike, *, warn: bool = True) -> PopulationFit:
    """Load a population PK fit saved by :meth:`PopulationFit.save`.

    Raises
    ------
    FitFileError
        Missing, truncated or corrupt file (checksum), not a pkmodel fit, a fit of another kind,
        or written by a newer format.
    """
    tree = open_fit_file(path, (MODEL_KIND,), FORMAT_VERSION, "load_population_fit")
    attrs = tree.attrs
    try:
        spec = PopulationSpec.from_dict(json.loads(attrs["pkmodel_spec"]))
        subjects = tree["pkmodel_subjects"].to_dataset()
        obs = tree["pkmodel_observations"].to_dataset()
        doses = tree["pkmodel_doses"].to_dataset()
        ids = [str(v) for v in subjects["ID"].values]
        index = {sid: i for i, sid in enumerate(ids)}
        data = PopulationData(
            str(attrs.get("pkmodel_source", "")), tuple(ids),
            {c: subjects[c].values.astype(float) for c in subjects.data_vars if c != "ID"},
            np.array([index[str(v)] for v in obs["ID"].values], dtype=int),
            obs["time_days"].values.astype(float), obs["value_ug_ml"].values.astype(float),
            obs["cens"].values.astype(int),
            np.array([index[str(v)] for v in doses["ID"].values], dtype=int),
            doses["time_days"].values.astype(float), doses["amount_mg"].values.astype(float),
            doses["duration_days"].values.astype(float),
            tuple(json.loads(attrs.get("pkmodel_notes", "[]"))))
        core = xr.DataTree.from_dict({"/posterior": tree["posterior"].to_dataset(),
                                      "/sample_stats": tree["sample_stats"].to_dataset()})
        return PopulationFit(spec=spec, data=data, tree=core,
                             random_seed=int(attrs["pkmodel_random_seed"]), warn=warn)
    except (KeyError, ValueError, TypeError, SpecificationError) as exc:
        raise FitFileError(f"{path}: the fit cannot be read by this version of pkmodel "
                           f"({type(exc).__name__}: {exc}); fit again") from None
