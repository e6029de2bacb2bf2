"""The fitted population PK model.

A :class:`PopulationFit` has the shape of every fit (:class:`pkmodel.fits.BayesianFit`: the
convergence gate, notes, the summary of every parameter, netCDF file, plain JSON) and gives the
eta shrinkage, goodness-of-fit data, the pcVPC and the fit as a library model. It is made by
:func:`~pkmodel.pk.population.fitting.fit_population` and read back by :func:`pkmodel.load`
(:mod:`~pkmodel.pk.population.loading`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.diagnostics import Diagnostics
from pkmodel.fits import BayesianFit
from pkmodel.pk.models import PopulationModel
from pkmodel.pk.population.build import (
    individual_log_parameters,
    model_data,
    predict,
    residual_sd,
)
from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.likelihood import posterior_values
from pkmodel.pk.population.spec import PopulationSpec
from pkmodel.pk.units import concentration_from_internal, from_internal

__all__ = ["MODEL_KIND", "PREDICTIVE_GROUPS", "PopulationFit"]

#: The ``pkmodel_model_kind`` of a saved population PK fit.
MODEL_KIND = "population_pk"
#: The groups ArviZ's ``loo``, ``compare`` and predictive checks read
#: (:mod:`~pkmodel.pk.population.likelihood`); fits saved by pkmodel 0.4 and earlier lack them.
PREDICTIVE_GROUPS = ("log_likelihood", "observed_data", "constant_data", "posterior_predictive")


@dataclass
class PopulationFit(BayesianFit):
    """A fitted population PK model.

    Attributes
    ----------
    spec : PopulationSpec
    data : PopulationData
        The data it was fitted to (kept in the saved file).
    tree : xarray.DataTree
        ``posterior`` (chain, draw, subject), ``sample_stats`` and, for fits made after pkmodel
        0.4, :data:`PREDICTIVE_GROUPS`: ``az.loo(fit.tree, var_name="y_by_subject")``
        (leaving out subjects) or ``var_name="y"`` (observations), ``az.compare``,
        ``az.loo_pit`` and ArviZ's predictive-check plots read them.
    random_seed : int
    warn : bool, default True
        Emit the :class:`~pkmodel.errors.ConvergenceWarning` of a failed gate on creation.
    design_notes : tuple of str
        What the checks before sampling found (:mod:`~pkmodel.pk.population.identifiability`,
        :mod:`~pkmodel.pk.population.unit_slips`): parameters the design hardly informs, a
        likely unit slip.
    """

    model_kind: ClassVar[str] = MODEL_KIND
    unconverged_advice: ClassVar[str] = (
        "Do not use its estimates before fixing this (more tuning and draws, a higher "
        "target_accept, or a simpler model).")

    spec: PopulationSpec
    data: PopulationData
    tree: xr.DataTree
    random_seed: int
    warn: bool = True
    _diagnostics: Diagnostics | None = field(default=None, repr=False)
    design_notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.warn:
            self.warn_if_unconverged(stacklevel=3)

    @property
    def hierarchical_priors(self) -> str:
        """The priors named in the remedy for divergent transitions."""
        return ("omega_prior of the parameters with BSV"
                + (", iov_prior of those with IOV" if self.spec.iov_parameters else "")
                + (", lkj_eta of [bsv]" if self.spec.bsv_blocks else ""))

    def _notes(self) -> list[str]:
        """What was changed or left out while preparing the data, what the checks before
        sampling found, the parameters the data hardly informed (posterior against prior
        width) and estimates that say a unit slipped."""
        return [*self.data.notes, *self.design_notes, *self.sampling_findings()]

    def sampling_findings(self) -> list[str]:
        """After sampling: each typical value or omega whose posterior is more than
        :data:`~pkmodel.pk.population.identifiability.WEAK_RATIO` as wide as its prior
        (weakly identified, with the remedies), and posterior medians that say a unit slipped
        (:func:`~pkmodel.pk.population.unit_slips.check_estimates`)."""
        from pkmodel.pk.population.identifiability import remedy, weak_after_sampling
        from pkmodel.pk.population.unit_slips import check_estimates

        weak = weak_after_sampling(self)
        out = [f"{name} is weakly identified: its posterior is {ratio:.0%} as wide as its "
               f"prior, so that its estimate is mostly the prior's. "
               + (remedy(self.spec, name.split("_", 1)[1]) if name.startswith("tv_") else
                  f"Drop the BSV (bsv = false in [parameters.{name.split('_', 1)[1]}]), give "
                  "omega a tighter prior (a smaller omega_prior, or a published model's "
                  "[prior]), or add samples per subject that inform it.")
               for name, ratio in weak.items()]
        post = self.posterior
        informed = tuple(p for p, par in self.spec.parameters.items()
                         if not par.fixed and f"tv_{p}" not in weak)
        medians = {f"log_tv_{p}": float(np.median(post[f"log_tv_{p}"].values))
                   for p in informed}
        slip = check_estimates(self.spec, medians, informed, what="the posterior medians")
        return out + ([slip.message] if slip is not None else [])

    @property
    def diagnostics(self) -> Diagnostics:
        """The convergence gate (:attr:`pkmodel.fits.BayesianFit.diagnostics`), with the
        variables the data hardly informed named, so that a check failing on one of them says
        so rather than "run longer"."""
        if self._diagnostics is None:
            from pkmodel.pk.population.identifiability import weak_after_sampling

            gate = BayesianFit.diagnostics.fget(self)
            names = []
            for name in weak_after_sampling(self):
                p = name.split("_", 1)[1]
                names += ([f"tv_{p}", f"log_tv_{p}", f"eta_{p}"] if name.startswith("tv_")
                          else [name, f"eta_{p}"])
            self._diagnostics = dataclasses.replace(gate, weakly_identified=tuple(
                dict.fromkeys(names)))
        return self._diagnostics

    def reported_variables(self) -> dict[str, str]:
        """The population parameters of the summary, with their units."""
        out = {f"tv_{p}": self.spec.unit(p) for p in self.spec.parameter_names}
        out |= {f"omega_{p}": "SD of eta (log scale)" for p in self.spec.bsv_parameters}
        out |= {f"omega_iov_{p}": "SD of kappa (log scale, between occasions)"
                for p in self.spec.iov_parameters}
        out |= {name: "correlation of the etas" for name in self.spec.correlation_names}
        registry = self.spec.covariate_registry
        for term in self.spec.covariates:
            unit = registry[term.covariate].unit
            for theta in term.names:
                if term.effect == "power":
                    out[theta] = f"exponent of {term.covariate} / {term.reference:g}"
                elif term.effect in ("linear", "exponential"):
                    out[theta] = f"per {unit} from {term.reference:g}"
                elif term.effect == "piecewise":
                    side = "below" if theta.endswith("_below") else "above"
                    out[theta] = f"log-slope per {unit} {side} {term.reference:g}"
                else:
                    out[theta.replace("theta_", "ratio_", 1)] = f"ratio to {term.covariate} " + (
                        f"{term.reference:g}" if term.effect == "categorical" else
                        f"{'>=' if term.below is not None else '<='} "
                        f"{term.below if term.below is not None else term.above:g}")
        units = {"sigma_prop": "fraction", "sigma_add_ug_ml": self.spec.concentration_unit}
        return out | {k: units[k] for k in self.spec.residual.names}

    def _summary_posterior(self) -> xr.Dataset:
        """The posterior with the typical values and the additive SD in the dataset's units
        (:meth:`PopulationSpec.unit`, its concentration unit): the model samples them per day
        and in µg/mL (:mod:`pkmodel.pk.units`)."""
        post = self.posterior
        spec = self.spec
        out = post.assign({f"tv_{p}": from_internal(post[f"tv_{p}"], spec.structure.kind(p),
                                                    spec.time_unit)
                           for p in spec.parameter_names})
        if "sigma_add_ug_ml" in out:
            out["sigma_add_ug_ml"] = concentration_from_internal(out["sigma_add_ug_ml"],
                                                                 spec.concentration_unit)
        return out

    def fixed_variables(self) -> set[str]:
        """The typical values fixed by the specification (NONMEM's FIX): not sampled."""
        return {f"tv_{p}" for p, par in self.spec.parameters.items() if par.fixed}

    def checked_variables(self) -> list[str]:
        """What the convergence gate checks: every population parameter (the correlations of
        the BSV blocks among them; not the fixed typical values), every eta and every
        occasion effect kappa."""
        fixed = self.fixed_variables()
        return [*(v for v in self.reported_variables() if v not in fixed),
                *(f"eta_{p}" for p in self.spec.bsv_parameters),
                *(f"kappa_{p}" for p in self.spec.iov_parameters)]

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
            above), ``pred_ug_ml`` (typical subject of those covariates, eta 0 and kappa 0, at
            the posterior medians), ``ipred_ug_ml`` (posterior median of the individual
            prediction) and
            ``iwres`` (``(dv - ipred) / sd`` at ``ipred`` and the residual SDs' medians; NaN
            for censored values), ``cwres`` (:func:`~pkmodel.pk.population.checks.cwres`) and
            ``loo_pit`` (:func:`~pkmodel.pk.population.comparison.loo_pit`: uniform under the
            model; NaN for censored values).
        """
        from pkmodel.pk.population.checks import cwres
        from pkmodel.pk.population.comparison import loo_pit

        post = self.posterior.stack(sample=("chain", "draw"))
        n = post.sizes["sample"]
        pick = np.unique(np.linspace(0, n - 1, min(int(max_draws), n)).astype(int))
        arrays = model_data(self.spec, self.data)
        names = [n for n in post.data_vars if n.startswith(("log_tv_", "theta_", "sigma_"))]
        draws = posterior_values(self.spec, self.posterior, pick)
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
                             "ipred_ug_ml": ipred, "iwres": iwres, "cwres": cwres(self),
                             "loo_pit": loo_pit(self)})

    def pc_vpc(self, *, n_replicates: int = 200, n_bins: int = 8, ci_prob: float = 0.9,
               bins="auto", stratify: str | None = None, random_seed: int | None = None):
        """The prediction-corrected visual predictive check; see
        :func:`pkmodel.pk.population.checks.pc_vpc`."""
        from pkmodel.pk.population.checks import pc_vpc

        return pc_vpc(self, n_replicates=n_replicates, n_bins=n_bins, ci_prob=ci_prob,
                      bins=bins, stratify=stratify,
                      random_seed=self.random_seed if random_seed is None else random_seed)

    def to_population_model(self, name: str = "popfit", *,
                            title: str | None = None) -> PopulationModel:
        """The fitted model as a :class:`~pkmodel.pk.PopulationModel`, usable wherever a library
        model is (``estimate_individual``, ``simulate``, ``pkmodel pk forecast --model FIT.nc``).

        The specification's vocabulary with posterior medians in place of its priors: the
        structure, typical values, covariate effects (their coefficients), ``omega2 =
        median(omega)^2`` (and ``omega2_iov = median(omega_iov)^2``: forecasts then give each
        dosing interval its own occasion effect) with the BSV blocks and the medians of their
        correlations, and the residual SDs (a term the fit lacks is 0). A covariate not given
        takes the reference of the specification's (first) effect of it: its reference value or
        level, or an indicator's threshold.

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
        med = {k: float(np.median(v.values)) for k, v in self._population_draws().items()}
        return self._population_model(
            med, str(name), title,
            "posterior medians of a pkmodel population fit: typical values, covariate "
            "coefficients, omega^2 = median(omega)^2, correlations, residual SDs")

    def population_model_draws(self, n: int, *, name: str = "popfit",
                               random_seed: int | None = None) -> list[PopulationModel]:
        """``n`` posterior draws of the population, each as a
        :class:`~pkmodel.pk.PopulationModel` (what :meth:`to_population_model` makes of the
        medians, made of one joint draw instead: typical values, covariate coefficients,
        ``omega2 = omega^2``, correlations and residual SDs of the same draw).

        The draws are ``n`` distinct posterior draws chosen at random (``random_seed``, the
        one seed); their models are named ``<name>_draw<k>``. This is how the exposure-driven
        remission model propagates a population fit's uncertainty (``docs/exposure.md``).

        Parameters
        ----------
        n : int
            Number of draws, at most the posterior's.
        name : str, default "popfit"
            The stem of the models' names.
        random_seed : int, optional
            The one seed.

        Raises
        ------
        SpecificationError
            ``n`` not an integer between 1 and the number of posterior draws.
        """
        from pkmodel.errors import SpecificationError
        from pkmodel.sampling import resolve_seed

        draws = self._population_draws().stack(sample=("chain", "draw"))
        total = draws.sizes["sample"]
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= total:
            raise SpecificationError(f"the number of population draws must be an integer from 1 "
                                     f"to the fit's {total} posterior draws, not {n!r}")
        rng = np.random.default_rng(resolve_seed(random_seed))
        picks = np.sort(rng.choice(total, size=int(n), replace=False))
        source = ("one joint posterior draw of a pkmodel population fit: typical values, "
                  "covariate coefficients, omega^2 = omega^2, correlations, residual SDs")
        return [self._population_model(
            {k: float(v.values[i]) for k, v in draws.items()}, f"{name}_draw{k}", None,
            f"{source} (draw {int(i)} of {total})") for k, i in enumerate(picks)]

    def _population_draws(self) -> xr.Dataset:
        """The posterior's population-level variables (those without a subject dimension)."""
        post = self.posterior
        return post[[k for k, v in post.data_vars.items() if "subject" not in v.dims]]

    def _population_model(self, values: dict[str, float], name: str, title: str | None,
                          source: str) -> PopulationModel:
        """The specification's vocabulary with ``values`` (one number per population-level
        variable: medians, or one posterior draw) in place of its priors."""
        spec = self.spec
        reference: dict[str, float] = {}
        for term in spec.covariates:
            reference.setdefault(term.covariate, float(
                term.reference if term.reference is not None
                else term.below if term.below is not None else term.above))
        return PopulationModel(
            name=name,
            title=title or (f"Population PK fit ({spec.structure_label()}) of "
                            f"{self.data.n_subjects} subjects from {self.data.source}"),
            citation="a local population PK fit (pkmodel pk fit)",
            source=source,
            structure=spec.structure,
            typical={p: values[f"tv_{p}"] for p in spec.parameter_names},
            reference_covariates=reference,
            effects=tuple(term.with_coefficient(
                term.coefficient if not term.estimated else term.theta(values))
                for term in spec.covariates),
            covariate_definitions=tuple(c for c in spec.covariate_definitions
                                        if c.name in {t.covariate for t in spec.covariates}),
            omega2={p: values[f"omega_{p}"] ** 2 for p in spec.bsv_parameters},
            omega2_iov={p: values[f"omega_iov_{p}"] ** 2 for p in spec.iov_parameters},
            bsv_blocks=spec.bsv_blocks,
            correlations={c: values[c] for c in spec.correlation_names},
            proportional_sd=values.get("sigma_prop", 0.0),
            additive_sd_ug_ml=values.get("sigma_add_ug_ml", 0.0),
            population=f"{self.data.n_subjects} subjects of {self.data.source}",
            cv_convention="lognormal")

    def _dict_extras(self, ci_prob: float) -> dict:
        return {"structure": self.spec.structure_label(),
                "n_subjects": self.data.n_subjects, "n_observations": self.data.n_observations,
                "n_below_lloq": int(np.sum(self.data.obs_cens == 1)),
                "shrinkage": self.shrinkage(), "spec": self.spec.to_dict(),
                "source": self.data.source}

    def _file_groups(self) -> dict[str, xr.Dataset]:
        """The posterior, the sampler's statistics, the predictive groups (log likelihood,
        observed, constant and replicated data) and the data: subjects (with their covariates),
        observations and doses."""
        frames = self.data.to_frames()
        groups = {"posterior": self.posterior,
                  "sample_stats": self.tree["sample_stats"].to_dataset()}
        groups |= {name: self.tree[name].to_dataset() for name in PREDICTIVE_GROUPS
                   if name in self.tree.children}
        subjects = frames["subjects"]
        groups["pkmodel_subjects"] = xr.Dataset(
            {c: ("subject", subjects[c].to_numpy(dtype=str if c == "ID" else float))
             for c in subjects.columns})
        for name in ("observations", "doses"):
            frame = frames[name]
            groups[f"pkmodel_{name}"] = xr.Dataset(
                {c: ("row", frame[c].to_numpy(dtype=str if c in ("ID", "route") else float))
                 for c in frame.columns})
        return groups

    def _file_attrs(self) -> dict[str, Any]:
        """The specification, the seed, the dataset's source and notes."""
        return {"pkmodel_spec": json.dumps(self.spec.to_dict(), sort_keys=True),
                "pkmodel_random_seed": int(self.random_seed),
                "pkmodel_source": self.data.source,
                "pkmodel_notes": json.dumps(list(self.data.notes)),
                "pkmodel_design_notes": json.dumps(list(self.design_notes))}
