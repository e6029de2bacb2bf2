"""Fitting a population PK model: the dataset read, the compiled model, the one sampling run.

:func:`fit_population` reads the dataset (:func:`pkmodel.pk.read_nonmem`), gets the compiled
hierarchical model (:mod:`~pkmodel.pk.population.compiled`, cached for every dataset of the same
specification and subject slots), samples it through :func:`pkmodel.sampling.sample_nuts` (the
one sampling run of every fit: the project's seed, Ctrl-C guard, checks), adds the predictive
groups ArviZ's ``loo`` and predictive checks read (:mod:`~pkmodel.pk.population.likelihood`) and
returns the
:class:`~pkmodel.pk.population.fit.PopulationFit`, whose convergence gate is the one every fit
passes (:mod:`pkmodel.diagnostics`).
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np
import xarray as xr

from pkmodel.errors import PKDataError, PkmodelWarning
from pkmodel.pk.population.compiled import sampler_model
from pkmodel.pk.population.data import PopulationData, read_population_data
from pkmodel.pk.population.fit import PopulationFit
from pkmodel.pk.population.identifiability import design_information
from pkmodel.pk.population.likelihood import predictive_groups
from pkmodel.pk.population.spec import PopulationSpec, read_spec
from pkmodel.pk.population.unit_slips import check_censoring, check_dataset
from pkmodel.sampling import POPULATION_DRAWS, SamplerSettings, sample_nuts

__all__ = ["check_before_sampling", "fit_population"]

#: What to check when the sampler cannot run a population model.
FAILURE_HINT = ("check the dataset's units (AMT, DV and TIME in the units the specification's "
                "[data] states) and the typical values of the specification")
# nutpie's diagonal mass matrix (its default). With the random effects partially centred
# (centring.py), the correlation between each typical value and its subjects' effects that
# nutpie's low-rank adaptation was chosen for (when they were all non-centred) is gone, and
# low-rank became both slower and worse (measured with the weights at omega's prior median,
# before the range of centring.py): 60 subjects, 150 observations, 4 x 1000 draws, 194 s and
# R-hat 1.60 against 34 s and 1.03; on 1,000 patients with two troughs each it had not
# finished after 8 minutes where the diagonal one passed the gate in 90 s.
_SAMPLER_OPTIONS: dict = {}


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
    strict: bool = False,
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
    strict : bool, default False
        Refuse (:class:`~pkmodel.errors.PKDataError`, before sampling) a dataset whose units
        look slipped; otherwise that is a warning and a note of the fit.

    Returns
    -------
    PopulationFit
        Its ``diagnostics`` computed; a fit that fails them emits a
        :class:`~pkmodel.errors.ConvergenceWarning` saying what to do.

    Before sampling, :func:`check_before_sampling` refuses data with every observation below
    the LLOQ and warns (:class:`~pkmodel.errors.PkmodelWarning`, kept as notes of the fit) of a
    likely unit slip and of each parameter the design hardly informs, with the remedies.

    Raises
    ------
    PKDataError
        A dataset the specification cannot use (naming row or ID, column and fix); all
        observations below the LLOQ; with ``strict``, a likely unit slip.
    SpecFileError, SpecificationError
        A bad specification or option.
    SamplingError
        When the sampler cannot start or returns an incomplete trace.
    KeyboardInterrupt
        On Ctrl-C during sampling (nothing is returned or saved).
    """
    if not isinstance(spec, PopulationSpec):
        spec = read_spec(spec)
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, cores=cores,
                               target_accept=target_accept, random_seed=random_seed,
                               progressbar=progressbar)
    data = dataset if isinstance(dataset, PopulationData) else read_population_data(
        dataset, spec, sep=sep)
    design_notes = check_before_sampling(spec, data, strict=strict)
    # the partially centred u_<p> of centring.py are the sampler's coordinates: the model's
    # random effects are kept as eta_<p>
    tree = sample_nuts(lambda: sampler_model(spec, data).nutpie_model(), settings,
                       failure_hint=FAILURE_HINT, drop=[f"u_{p}" for p in spec.bsv_parameters]
                       + [f"z_iov_{p}" for p in spec.iov_parameters],
                       options=_SAMPLER_OPTIONS)
    posterior = tree["posterior"].to_dataset()
    # the subject slots beyond the data (compiled.py) are not subjects of the fit
    posterior = posterior.isel(subject=slice(0, data.n_subjects)).assign_coords(
        subject=list(data.subject_ids))
    groups = {"posterior": posterior, "sample_stats": tree["sample_stats"].to_dataset()}
    groups |= predictive_groups(spec, data, posterior, settings.random_seed)
    core = xr.DataTree.from_dict({f"/{name}": ds for name, ds in groups.items()})
    fit = PopulationFit(spec=spec, data=data, tree=core, random_seed=settings.random_seed,
                        warn=False, design_notes=design_notes)
    fit.warn_if_unconverged(stacklevel=2)
    return fit


def check_before_sampling(spec: PopulationSpec, data: PopulationData, *,
                          strict: bool = False) -> tuple[str, ...]:
    """The checks of a dataset before any sampling (no NUTS): refuse all observations below
    the LLOQ (:func:`~pkmodel.pk.population.unit_slips.check_censoring`); warn of each
    parameter the design hardly informs (:func:`~pkmodel.pk.population.identifiability.
    design_information`) and of a likely unit slip (:func:`~pkmodel.pk.population.
    unit_slips.check_dataset`), or with ``strict`` refuse the slip. Returns the findings, one
    sentence each (the fit's notes).

    Raises
    ------
    PKDataError
        All observations below the LLOQ; with ``strict``, a likely unit slip.
    """
    check_censoring(data)
    info = design_information(spec, data)
    found = info.messages(spec)
    slip = check_dataset(spec, _first_subjects(data, _SLIP_SUBJECTS), info.informed)
    if slip is not None:
        if strict and slip.name:
            raise PKDataError(slip.message, source=data.source,
                              column={"D": "DV", "A": "AMT", "T": "TIME"}.get(slip.name[:1]),
                              fix=slip.fix + " (--strict refuses a dataset whose units look "
                                  "slipped)")
        found.insert(0, slip.message)
    for text in found:
        warnings.warn(text, PkmodelWarning, stacklevel=3)
    return tuple(found)


#: Subjects the pooled fits of the unit-slip check read at most (the first ones): enough to
#: tell a factor of 24 or 1000, and a bounded cost on large datasets.
_SLIP_SUBJECTS = 200


def _first_subjects(data: PopulationData, n: int) -> PopulationData:
    """``data`` restricted to its first ``n`` subjects."""
    if data.n_subjects <= n:
        return data
    obs, dose = data.obs_subject < n, data.dose_subject < n
    arrays = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    return dataclasses.replace(
        data, subject_ids=data.subject_ids[:n],
        covariates={k: v[:n] for k, v in data.covariates.items()},
        obs_covariates={k: v[obs] for k, v in data.obs_covariates.items()},
        **{k: v[obs] for k, v in arrays.items() if k.startswith("obs_")
           and isinstance(v, np.ndarray)},
        **{k: v[dose] for k, v in arrays.items() if k.startswith("dose_")
           and isinstance(v, np.ndarray)})
