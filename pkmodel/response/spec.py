"""What to fit: the immutable specification of the remission model.

How it is fitted (the cohort's checks, the design, the compiled model, the one sampling run of
every fit) is :mod:`pkmodel.response.fitting`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

from pkmodel.data import Cohort
from pkmodel.errors import SpecificationError
from pkmodel.response.exposure import Exposure
from pkmodel.response.fit import RemissionFit
from pkmodel.response.fitting import as_cohort, fit_remission
from pkmodel.response.predictor import EXPOSURE_KIND, MODEL_KIND
from pkmodel.response.priors import Priors
from pkmodel.sampling import SamplerSettings, resolve_seed

__all__ = ["RemissionModel"]

_SLOPE_BY = (None, "disease")


@dataclass(frozen=True)
class RemissionModel:
    """Specification of the hierarchical Bayesian remission model.

    For patient i at assessment month j::

        logit P(remission_ij) = alpha + a_center[i] + tau_month[j]
                                + beta_i * (log TL_i - log 5) + delta_strategy[i]
                                + gamma . z_i + u_i

    where ``beta_i = beta + b_strategy[i]`` (+ ``b_disease[i]`` with ``slope_by="disease"``),
    centre effects are partially pooled, the patient effect is integrated out, slope offsets are
    regularised towards the common slope, and a TL censored at an assay limit is latent. What
    the data can identify, and the parametrisation, are decided per cohort
    (:mod:`pkmodel.response.structure`; ``fit.structure``, ``fit.notes``). See
    ``docs/model.md`` for every prior and structural choice and the reason for it.

    Parameters
    ----------
    covariates : tuple of str
        Patient-level columns to adjust for (numeric ones standardised, categorical ones as
        treatment contrasts against their first level). Missing values are an error.
    group : str, default "center"
        Column of the partially pooled grouping (centres).
    slope_by : {None, "disease"}
        ``None``: a common TL slope plus regularised strategy offsets. ``"disease"``: also
        regularised disease (CD/UC) offsets (an error when the cohort has one disease).
    priors : Priors or dict, optional
        Overrides of the default prior scales (see :class:`pkmodel.response.priors.Priors`).
    patient_effect : bool or None
        Include the patient effect linking repeated assessments; ``None`` (default) includes it
        when some patient has more than one assessment.
    assay_cv : float or None
        TL assay coefficient of variation (for example 0.15). ``None`` treats measured TL as exact.
    target_accept : float, default 0.9
        NUTS target acceptance rate.
    pool_slopes : bool, default True
        Regularise the strategy (and disease) offsets of the TL slope: zero-sum deviations from
        the common slope with the fixed prior scale ``slope_group_sd``. ``False`` makes them
        unregularised treatment contrasts (with a single centre and ``patient_effect=False``
        the model is then an ordinary Bayesian logistic regression).

    exposure : bool, dict or Exposure, optional
        Fit the exposure-driven model instead: the regimen given acts through the exposure gain
        it brings each patient (``b_gain``, per unit of log gain), next to the baseline TL
        (``b_base``), with no strategy terms; the cohort needs ``dose_mg_kg``,
        ``interval_weeks`` and the PK model's covariates
        (:class:`pkmodel.response.exposure.Exposure`; ``True`` for its defaults). See
        ``docs/exposure.md``.
    integrate_tl : bool, default False
        Integrate each censored baseline TL out of its patient's likelihood (with the patient
        effect) instead of sampling it as a latent value, and compile the model with the data
        as inputs, so that one compiled model serves every cohort of the same shape: a refit of
        a new cohort skips the compile (:mod:`pkmodel.response.integrated`). The same model
        in other coordinates; not with ``assay_cv``. Off by default: the draws of a seed
        differ from the latent form's, and ``remission_loglik`` is per patient.

    Examples
    --------
    >>> import pkmodel
    >>> model = pkmodel.RemissionModel(covariates=("albumin_g_l",))
    >>> fit = model.fit(pkmodel.load_ungar2019(), random_seed=1)  # doctest: +SKIP
    """

    covariates: tuple[str, ...] = ()
    group: str = "center"
    slope_by: str | None = None
    priors: Priors = field(default_factory=Priors)
    patient_effect: bool | None = None
    assay_cv: float | None = None
    target_accept: float = 0.9
    pool_slopes: bool = True
    exposure: Exposure | None = None
    integrate_tl: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "exposure", Exposure.from_any(self.exposure))
        if isinstance(self.covariates, str):
            object.__setattr__(self, "covariates", (self.covariates,))
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "priors", Priors.from_any(self.priors))
        if len(set(self.covariates)) != len(self.covariates):
            raise SpecificationError(f"covariates are repeated: {list(self.covariates)}")
        reserved = {"patient_id", "month", "remission", "baseline_tl", "tl_cens", "strategy",
                    self.group}
        clash = sorted(reserved & set(self.covariates))
        if clash:
            raise SpecificationError(f"{clash} cannot be covariates: they are already in the "
                                     "model's structure")
        if self.slope_by not in _SLOPE_BY:
            raise SpecificationError(f"slope_by must be None or 'disease', not {self.slope_by!r}")
        if self.slope_by == "disease" and "disease" in self.covariates:
            raise SpecificationError("with slope_by='disease', do not also list 'disease' as a "
                                     "covariate")
        if self.assay_cv is not None and not (0 < float(self.assay_cv) < 2):
            raise SpecificationError(f"assay_cv must be a fraction such as 0.15, not "
                                     f"{self.assay_cv!r}")
        if self.integrate_tl and self.assay_cv is not None:
            raise SpecificationError("integrate_tl integrates censored TLs only: with assay_cv "
                                     "every TL is latent; give one of them")
        if not 0.5 <= float(self.target_accept) < 1:
            raise SpecificationError("target_accept must be in [0.5, 1)")

    @property
    def model_kind(self) -> str:
        """The kind of model this specification fits (saved with the fit)."""
        return MODEL_KIND if self.exposure is None else EXPOSURE_KIND

    # --------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """JSON-ready form (stored in saved fits)."""
        d = dataclasses.asdict(self)
        d["covariates"] = list(self.covariates)
        d["exposure"] = None if self.exposure is None else self.exposure.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RemissionModel:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["covariates"] = tuple(d.get("covariates", ()))
        d["priors"] = Priors.from_any(d.get("priors"))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecificationError(f"unknown specification fields {unknown}")
        return cls(**d)

    # --------------------------------------------------------------- building
    def _design(self, cohort: Cohort):
        """The design, whether it has a patient effect, and the options of the PyMC model."""
        from pkmodel.response.design import build_design
        from pkmodel.response.structure import choose_structure

        design = build_design(cohort, self.covariates, self.group, self.slope_by,
                              self.exposure)
        patient_effect = self.patient_effect
        if patient_effect is None:
            patient_effect = len(design.remission) > design.n_patients
        structure = choose_structure(design, self.priors, group=self.group,
                                     pool_slopes=self.pool_slopes)
        options = {"patient_effect": bool(patient_effect), "assay_cv": self.assay_cv,
                   "structure": structure}
        return design, options

    def _design_and_model(self, cohort: Cohort):
        from pkmodel.response.build import build_pymc_model

        design, options = self._design(cohort)
        return design, build_pymc_model(design, self.priors, **options), options

    def build(self, cohort):
        """The PyMC model for ``cohort`` (for inspection or custom sampling)."""
        return self._design_and_model(as_cohort(cohort))[1]

    def prior_predictive(self, cohort, draws: int = 500, random_seed: int | None = None):
        """Draw from the prior and the prior predictive distribution.

        Returns
        -------
        xarray.DataTree
            Groups ``prior`` and ``prior_predictive`` (``remission`` and ``log_tl``).
            ``remission`` is over (patient, month) when the model has a patient effect (missing
            assessments are 0 and masked in the likelihood) and over ``obs`` (rows) otherwise.
        """
        import pymc as pm

        _, model, _ = self._design_and_model(as_cohort(cohort))
        with model, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*object mode.*")
            return pm.sample_prior_predictive(draws=draws, random_seed=resolve_seed(random_seed))

    def fit(self, cohort, draws: int = 1000, tune: int = 1000, chains: int = 4,
            random_seed: int | None = None, progressbar: bool = True,
            cores: int | None = None) -> RemissionFit:
        """Fit the model by NUTS (nutpie) and check convergence.

        The compiled model is kept on disk and reused by later fits of the same model and
        data, in any process (:mod:`pkmodel.model_cache`). The run itself is
        :func:`pkmodel.response.fitting.fit_remission`, sampling through
        :func:`pkmodel.sampling.sample_nuts` as every fit does.

        Parameters
        ----------
        cohort : Cohort, path or DataFrame
            The data; a path or frame is read with :func:`pkmodel.read_cohort`.
        draws, tune, chains : int
            Posterior draws and tuning steps per chain, and the number of chains.
        random_seed : int, optional
            The one seed of the fit; the same seed gives the same posterior. When omitted,
            :data:`pkmodel.sampling.DEFAULT_RANDOM_SEED`; recorded in the fit
            (``fit.random_seed``).
        progressbar : bool, default True
            Show sampling progress.
        cores : int, optional
            Chains run in parallel on this many cores (default: all, up to ``chains``).

        Returns
        -------
        RemissionFit
            With diagnostics already computed; a fit that fails them emits a
            :class:`pkmodel.ConvergenceWarning` that says what to do. Data where remission is
            separated by TL at some month still fit, under the priors, with a
            :class:`pkmodel.errors.SeparationWarning` that the slope is identified by its prior
            only. Data where remission does not vary (all 1 or all 0, overall or at some month)
            fit too, with a :class:`pkmodel.errors.ConstantOutcomeWarning` that the remission
            probability there is identified by the prior only.

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C during sampling (the samplers would otherwise return the partial trace).
        pkmodel.errors.SamplingError
            When the sampler cannot start (no finite starting point) or returns fewer chains
            or draws than asked for, or draws it could not compute.
        """
        settings = SamplerSettings(draws=draws, tune=tune, chains=chains, cores=cores,
                                   target_accept=self.target_accept, random_seed=random_seed,
                                   progressbar=progressbar)
        return fit_remission(self, as_cohort(cohort), settings)
