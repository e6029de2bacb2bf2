"""A fitted remission model: posterior plus what prediction needs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from pkmodel.diagnostics import Diagnostics
from pkmodel.errors import PredictionError
from pkmodel.fits import BayesianFit, summary_table
from pkmodel.response.curves import compute_curve
from pkmodel.response.persistence import cohort_dataset
from pkmodel.response.predictor import DesignInfo, RemissionPredictor
from pkmodel.response.structure import group_sd_prior
from pkmodel.response.terms import POPULATION_PARAMETERS, term
from pkmodel.response.thresholds import futility_table
from pkmodel.sampling import resolve_seed

if TYPE_CHECKING:
    from pkmodel.response.spec import RemissionModel

__all__ = ["POPULATION_PARAMETERS", "RemissionFit", "diagnosed_parameters", "parameter_unit"]

# Sampler coordinates that are not parameters of the model: the centre effects are checked as
# ``a_group``, the model's own parameter, not as their partially non-centred coordinates.
SAMPLER_COORDINATES = ("z_group",)


# With fewer posterior SD than this fraction of the prior SD left, a scale is "informed mostly
# by its prior": less than half of the prior variance was removed by the data.
PRIOR_DOMINATED_SD_RATIO = 0.71


#: The derived quantity of the summary: the odds ratio of remission for a doubling of TL.
ODDS_RATIO = "or_per_doubling"
_REGRESSOR_UNITS = {"log_tl": "log-odds per log µg/mL", "log_gain": "log-odds per log gain",
                    "z": "log-odds per SD (numeric) or level (factor)"}


def parameter_unit(name: str) -> str:
    """The unit of a population parameter of the remission model (a summary's ``unit``)."""
    if name == ODDS_RATIO:
        return "odds ratio per doubling of TL"
    if name.startswith("sigma_slope"):  # the slope offsets' SDs of fits saved by version 0.1
        return "SD of log-odds per log µg/mL"
    t = term(name)
    if t.role == "tl":
        return "log µg/mL" if name == "mu_tl" else "SD of log µg/mL"
    if t.role == "random":
        return "SD of log-odds"
    return _REGRESSOR_UNITS.get(t.regressor, "log-odds")


def diagnosed_parameters(post: xr.Dataset) -> list[str]:
    """The model's own parameters in ``post``, on which convergence is checked.

    Everything sampled or derived from the sampled values except the sampler's unconstrained
    coordinates (``*__``, as stored by older fits), the centre effects' sampler coordinates
    (:data:`SAMPLER_COORDINATES`, checked through ``a_group``) and slope offsets that are a
    fixed 0 next to their contrasts.
    """
    return [v for v in post.data_vars
            if not str(v).endswith("__") and v not in SAMPLER_COORDINATES
            and f"{v}_contrast" not in post.data_vars]


@dataclass(eq=False)
class RemissionFit(BayesianFit):
    """The posterior of a :class:`RemissionModel` on one cohort.

    Build it with :meth:`RemissionModel.fit` or :func:`pkmodel.load`. It has the shape of every
    fit (:class:`pkmodel.fits.BayesianFit`): ``diagnostics``, ``notes``, ``converged``,
    ``summary(ci_prob)``, ``save(path)``, ``to_dict()``.

    Attributes
    ----------
    spec : RemissionModel
        What was fitted.
    tree : xarray.DataTree
        Posterior, sample stats, log-likelihood and observed data, as PyMC returns them.
    meta : dict
        Levels and encodings of the design (centres, months, strategies, covariates).
    cohort_data : pandas.DataFrame
        The canonical cohort table it was fitted on.
    data_hash : str
        SHA-256 of that table.
    random_seed : int
        The seed of the fit.
    cohort_population : dict
        How the fitted rows were selected from the table read: ``exclusions`` (the rules and
        the counts read, :attr:`pkmodel.Cohort.exclusions`) and ``dropped`` (patients and rows
        removed, by reason); empty for fits saved before pkmodel recorded it.
    """

    unconverged_advice: ClassVar[str] = "Do not use its curves or thresholds before fixing this."

    spec: RemissionModel
    tree: xr.DataTree
    meta: dict
    cohort_data: pd.DataFrame
    data_hash: str
    random_seed: int
    cohort_name: str = ""
    cohort_notes: tuple[str, ...] = ()
    cohort_population: dict = field(default_factory=dict)
    _diagnostics: Diagnostics | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ views
    @property
    def model_kind(self) -> str:
        """The kind of model fitted (:data:`pkmodel.response.predictor.MODEL_KINDS`)."""
        return self.spec.model_kind

    @property
    def population_parameters(self) -> list[str]:
        """Names of the population-level parameters present in this fit."""
        return [v for v in POPULATION_PARAMETERS if v in self.tree["posterior"].data_vars]

    @property
    def population_draws(self) -> int:
        """K, the draws of the PK population whose fits this fit pools (0: none, the population
        parameters taken as known; :mod:`pkmodel.response.pooling`)."""
        record = (self.meta.get("exposure") or {}).get("population_uncertainty") or {}
        return int(record.get("n_draws", 0))

    @property
    def diagnostics(self) -> Diagnostics:
        """The convergence gate (:attr:`pkmodel.fits.BayesianFit.diagnostics`); for a fit
        pooled over K draws of the PK population, every component's gate, combined
        (:func:`pkmodel.response.pooling.component_diagnostics`)."""
        if self._diagnostics is None and self.population_draws:
            self._diagnostics = self.component_diagnostics()[0]
        return BayesianFit.diagnostics.fget(self)

    def component_diagnostics(self) -> tuple[Diagnostics, list[Diagnostics]]:
        """The combined gate and each component's, of a fit pooled over K population draws."""
        from pkmodel.response.pooling import component_diagnostics

        return component_diagnostics(self.posterior, self.tree["sample_stats"].to_dataset(),
                                     self.checked_variables(), max(self.population_draws, 1),
                                     hierarchical_priors=self.hierarchical_priors)

    def summary(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """The summary of every population parameter (:meth:`pkmodel.fits.BayesianFit.summary`).

        For a fit pooled over K draws of the PK population, the statistics are those of the
        pooled draws, while ``r_hat`` is the largest of the components' and ``ess_bulk`` and
        ``ess_tail`` the sums of theirs: R-hat over all chains would compare components that
        differ on purpose.
        """
        table = BayesianFit.summary(self, ci_prob)
        if not self.population_draws:
            return table
        from pkmodel.response.pooling import component_chains

        post, units = self._summary_posterior(), self.reported_variables()
        parts = [summary_table(post.isel(chain=c), units, ci_prob)
                 for c in component_chains(post.sizes["chain"], self.population_draws)]
        table["r_hat"] = np.max([t["r_hat"].to_numpy() for t in parts], axis=0)
        for column in ("ess_bulk", "ess_tail"):
            table[column] = np.sum([t[column].to_numpy() for t in parts], axis=0)
        return table

    def checked_variables(self) -> list[str]:
        """What the convergence gate checks: every parameter of the model as the model states
        it (:func:`diagnosed_parameters`: the centre effects ``a_group``, the latent TL of
        censored patients, ...), never the sampler's transformed coordinates."""
        return diagnosed_parameters(self.posterior)

    def reported_variables(self) -> dict[str, str]:
        """The summary's variables with their units: the population parameters and, but for
        the exposure-driven model, the odds ratio per doubling of TL of each strategy."""
        names = self.population_parameters
        if "b_gain" not in self.tree["posterior"].data_vars:
            names = [*names, ODDS_RATIO]
        return {name: parameter_unit(name) for name in names}

    def _summary_posterior(self) -> xr.Dataset:
        """The population parameters and ``or_per_doubling = exp(log 2 * slope)`` per
        strategy (slope: ``beta`` plus the strategy's offset)."""
        post = self.posterior[self.population_parameters]
        if "b_gain" in post:  # exposure-driven: no per-strategy TL slope
            return post
        slope = post["beta"]
        if "b_slope_strategy" in post:
            slope = slope + post["b_slope_strategy"]
        odds = np.exp(np.log(2.0) * slope)
        if "strategy" not in odds.dims:
            odds = odds.expand_dims(strategy=self.meta["strategies"])
        return post.assign({ODDS_RATIO: odds.transpose("chain", "draw", ...)})

    @property
    def structure(self) -> dict:
        """The structural choices made for this cohort (:mod:`pkmodel.response.structure`)."""
        return dict(self.meta.get("structure") or {})

    def _notes(self) -> list[str]:
        """What the reader of this fit's numbers must know about what the data could identify.

        The simplifications made for the cohort (a single centre: no centre term), and, for the
        between-centre SD ``sigma_group``, how much the data informed it: with few centres it
        is set mostly by its prior, and so is the spread of the population-level (new centre)
        curve. Fits saved before the structure was recorded (pkmodel 0.1) have no notes.
        """
        out = list(self.structure.get("notes", ()))
        record = (self.meta.get("exposure") or {}).get("population_uncertainty")
        if record:
            out.append(f"the PK population's uncertainty is propagated: {record['source']}; "
                       f"the posterior pools the {record['n_draws']} fits of the remission model "
                       f"given each draw's exposure gains ({record['chains_per_draw']} chains "
                       "each), and the convergence gate checks each fit on its own chains")
        post = self.tree["posterior"]
        if "sigma_group" in post.data_vars and self.structure.get("group_effects"):
            n = len(self.meta["groups"])
            prior, prior_sd = group_sd_prior(self.spec.priors)
            draws = post["sigma_group"].values.ravel()
            lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
            ratio = float(np.std(draws)) / prior_sd
            where = (f"{n} {self.spec.group}s: the between-{self.spec.group} SD sigma_group is "
                     f"{med:.2f} (90% interval {lo:.2f}-{hi:.2f}; posterior SD {ratio:.0%} of the "
                     f"prior's)")
            if ratio > PRIOR_DOMINATED_SD_RATIO:
                out.append(f"{where}: it is informed mostly by its prior {prior}, "
                           f"and so is the spread of the population-level (new {self.spec.group})"
                           f" curve; state your own with priors={{'group_sd': ...}}")
            else:
                out.append(f"{where}: the data inform it")
        return out

    def _dict_extras(self, ci_prob: float) -> dict:
        return {"structure": self.structure, "cohort_name": self.cohort_name,
                "data_hash": self.data_hash, "spec": self.spec.to_dict()}

    # ------------------------------------------------------------ prediction
    def recommend(self, *, tl_ug_ml: float | None = None, weight_kg: float | None = None,
                  **options):
        """P(remission) under candidate regimens for one patient, and a verdict.

        See :func:`pkmodel.response.recommend.recommend` for the options (``albumin_g_l``,
        ``ati``, ``covariates``, ``regimens``, ``p_min``, ``credibility``, ``month``, a TDM
        ``history``...). Research use only: the result carries the disclaimer.
        """
        from pkmodel.response.recommend import recommend

        return recommend(self, tl_ug_ml=tl_ug_ml, weight_kg=weight_kg, **options)

    def remission_curve(self, tl=None, strategy=None, month=None, covariates: dict | None = None,
                        level: str = "population") -> xr.Dataset:
        """Posterior remission curves over a grid of baseline TL.

        Parameters
        ----------
        tl : array of float, optional
            Grid of TL in µg/mL; default 200 log-spaced points from the lowest fitted TL to
            max(25, highest fitted TL).
        strategy, month : str/int or list, optional
            Strategies and months to predict (default: all that were fitted). Unknown ones raise.
        covariates : dict, optional
            Covariate profile, e.g. ``{"albumin_g_l": 35, "disease": "UC"}``. Numeric covariates
            left out are set to the cohort mean, categorical ones to their reference level; the
            profile used is recorded in ``attrs["covariates"]``.
        level : str, default "population"
            ``"population"``: a new patient at a new centre, integrating over the posterior
            between-centre and between-patient spread per draw. A centre name: a new patient at
            that centre (its posterior effect), integrating over the between-patient spread.
            Anything else is an error.

        Returns
        -------
        xarray.Dataset
            ``p_remission`` over (chain, draw, tl, strategy, month), ``tl`` in µg/mL.
        """
        return compute_curve(self.posterior, self.meta, tl=tl, strategy=strategy, month=month,
                             covariates=covariates, level=level)

    def futility_threshold(self, p_min: float = 0.2, credibility: float = 0.9, strategy=None,
                           month=None, *, tl=None, ci_prob: float = 0.9,
                           covariates: dict | None = None,
                           level: str = "population") -> pd.DataFrame:
        """Credible futility thresholds per strategy and month.

        Parameters
        ----------
        p_min : float, default 0.2
            Remission probability below which intensification is called futile.
        credibility : float, default 0.9
            Posterior probability required for P(remission) < p_min.
        strategy, month, tl, covariates, level
            As for :meth:`remission_curve`.
        ci_prob : float, default 0.9
            Width of the credible interval of the crossing TL.

        Returns
        -------
        pandas.DataFrame
            One row per strategy and month: ``strategy, month, p_min, credibility, tl_futile,
            tl_cross_median, tl_cross_lower, tl_cross_upper``, then ``ci_prob``,
            ``p_cross_in_grid``, ``grid_min``, ``grid_max``, the fitted TL range
            (``fitted_tl_min``, ``fitted_tl_max``) and ``extrapolated``: ``tl_futile`` or
            ``tl_cross_median`` lies beyond it. ``tl_futile`` is the lowest TL from
            which P(p_remission < p_min) >= credibility at every higher grid TL (NaN: never within
            the grid). ``tl_cross_*`` summarise each draw's crossing TL; NaN where that quantile
            lies beyond the grid.
        """
        curve = self.remission_curve(tl=tl, strategy=strategy, month=month,
                                     covariates=covariates, level=level)
        return futility_table(curve, p_min, credibility, ci_prob)

    @property
    def design(self) -> DesignInfo:
        """What the model was fitted to: strategies, months, centres, covariates, TL range."""
        return DesignInfo.from_meta(self.meta)

    def predictor(self, n_draws: int | None = None) -> RemissionPredictor:
        """The fit's predictor of P(remission) for new patients (see
        :class:`~pkmodel.response.RemissionPredictor`), over all posterior draws or
        ``n_draws`` evenly spaced ones."""
        return RemissionPredictor.from_posterior(self.posterior, self.meta, n_draws)

    def predict(self, patients, *, level: str = "population", ci_prob: float = 0.9,
                random_seed: int | None = None) -> pd.DataFrame:
        """Posterior probability of remission for each row of a cohort-like table.

        Parameters
        ----------
        patients : path, DataFrame or Cohort
            Needs ``baseline_tl`` (``>16`` allowed), ``strategy``, the model's covariates and,
            for ``level="center"``, the grouping column. For the exposure-driven model the
            regimen is ``dose_mg_kg`` and ``interval_weeks`` or the ``strategy`` written as a
            regimen (``"10 mg/kg q8w"``, any regimen), with ``weight_kg`` and the PK model's
            covariates (those left out take the fitted cohort's medians, listed in
            ``attrs["assumed"]``). ``month`` is optional: without it every
            fitted month is predicted. Outcomes are not needed.
        level : {"population", "center"}
            ``"population"``: new centres; ``"center"``: each row's own (fitted) centre.
        ci_prob : float, default 0.9
            Width of the credible interval.
        random_seed : int, optional
            Seed for drawing latent TL above/below a limit for censored rows.

        Returns
        -------
        pandas.DataFrame
            The rows with ``month``, ``p_remission`` (posterior mean), ``p_lower``,
            ``p_upper``.
        """
        from pkmodel.data.readers import read_patients

        table = read_patients(patients)
        meta = self.meta
        group_col = self.spec.group
        exposure = bool(meta.get("exposure"))  # a regimen, fitted or not, acts by its gain
        checks = [] if exposure else [("strategy", meta["strategies"])]
        has_month = "month" in table.columns and not table["month"].isna().all()
        if has_month:
            checks.append(("month", meta["months"]))
        if level in ("center", group_col):
            if group_col not in table.columns:
                raise PredictionError(f"level='center' needs a {group_col!r} column")
            checks.append((group_col, meta["groups"]))
        elif level != "population":
            raise PredictionError("level must be 'population' or 'center'")
        for col, known in checks:
            bad = ~table[col].astype(type(known[0])).isin(known)
            if bad.any():
                raise PredictionError(
                    f"row {int(np.argmax(bad.to_numpy())) + 1}: {col} "
                    f"{table[col][bad].iloc[0]!r} was not in the fitted cohort ({list(known)}); "
                    "the model cannot predict it and will not substitute another"
                    + ("; use level='population' for a new centre" if col == group_col else ""))
        if not has_month:
            table = table.drop(columns="month", errors="ignore").merge(
                pd.DataFrame({"month": meta["months"]}), how="cross")
        group = None if level == "population" else table[group_col].astype(str).to_numpy()
        predictor = self.predictor()
        rows = table.get("patient_id", pd.Series(np.arange(len(table)))).astype(str).to_numpy()
        z = predictor.covariate_matrix(table, rows)
        post = self.posterior
        log_tl = self._latent_log_tl(table, post, random_seed).values
        disease = None
        if meta["diseases"]:
            if "disease" not in table or table["disease"].isna().any():
                raise PredictionError("this model's slope depends on disease: give every row a "
                                      "disease (CD or UC)")
            disease = table["disease"].to_numpy()
        gain, assumed = {}, {}
        if exposure:
            from pkmodel.response.exposure import per_sample, table_gain

            found, assumed = table_gain(meta, table)
            gain = {"log_gain": per_sample(found.mean, predictor.n_samples),
                    "log_gain_sd": per_sample(found.sd, predictor.n_samples)}
        p = predictor.p_remission(
            log_tl.reshape(-1, log_tl.shape[-1]), table["strategy"].to_numpy(),
            table["month"].to_numpy(), covariates=z, disease=disease,
            centre=group, **gain)
        out = table.copy()
        out.attrs["assumed"] = assumed
        out["p_remission"] = p.mean(axis=0)
        out["p_lower"], out["p_upper"] = np.quantile(p, [(1 - ci_prob) / 2, (1 + ci_prob) / 2],
                                                     axis=0)
        return out

    def _latent_log_tl(self, table: pd.DataFrame, post: xr.Dataset,
                       random_seed: int | None) -> xr.DataArray:
        """log TL per (chain, draw, row): exact, or drawn beyond the limit for censored rows."""
        from scipy.stats import truncnorm

        value = np.log(table["baseline_tl"].to_numpy(dtype=float))
        cens = table["tl_cens"].to_numpy(dtype=int)
        shape = (post.sizes["chain"], post.sizes["draw"], len(table))
        out = np.broadcast_to(value, shape).copy()
        if np.any(cens != 0):
            rng = np.random.default_rng(resolve_seed(random_seed))
            mu = post["mu_tl"].values[..., None]
            sd = post["sigma_tl"].values[..., None]
            for code in (-1, 1):
                cols = np.flatnonzero(cens == code)
                if cols.size == 0:
                    continue
                bound = (value[cols] - mu) / sd
                a, b = (bound, np.inf) if code == -1 else (-np.inf, bound)
                draws = truncnorm.rvs(a, b, size=(*shape[:2], cols.size), random_state=rng)
                out[..., cols] = mu + sd * draws
        return xr.DataArray(out, dims=("chain", "draw", "row"))

    # ----------------------------------------------------------------- files
    def _file_groups(self) -> dict[str, xr.Dataset]:
        """The posterior tree's groups and the cohort table (``pkmodel_cohort``)."""
        groups = {name: self.tree[name].to_dataset() for name in self.tree.children}
        return groups | {"pkmodel_cohort": cohort_dataset(self.cohort_data)}

    def _file_attrs(self) -> dict[str, Any]:
        """The specification, the design, the data hash, the seed, the cohort's name, notes and
        population."""
        return {
            "pkmodel_spec": json.dumps(self.spec.to_dict(), sort_keys=True),
            "pkmodel_design": json.dumps(self.meta, sort_keys=True),
            "pkmodel_data_hash": self.data_hash,
            "pkmodel_random_seed": int(self.random_seed),
            "pkmodel_cohort_name": self.cohort_name,
            "pkmodel_cohort_notes": json.dumps(list(self.cohort_notes)),
            "pkmodel_cohort_population": json.dumps(self.cohort_population, sort_keys=True),
        }

    def __repr__(self) -> str:
        d = self.diagnostics
        return (f"RemissionFit(cohort={self.cohort_name!r}, spec={self.spec}, "
                f"draws={d.n_draws}, converged={d.converged})")

    def spec_json(self) -> str:
        """The specification as JSON."""
        return json.dumps(self.spec.to_dict(), sort_keys=True)
