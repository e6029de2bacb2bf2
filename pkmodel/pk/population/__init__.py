"""Population PK estimation: a Bayesian population model fitted to a multi-patient dataset.

* :mod:`~pkmodel.pk.population.spec`: the declarative specification (:class:`PopulationSpec`:
  the vocabulary of :class:`pkmodel.pk.PopulationModel` with priors), also read from a TOML file
  (:func:`read_spec`; errors located by :mod:`~pkmodel.pk.population.toml_reading`), with the
  dataset's own covariate columns (:class:`Covariate`, :meth:`Covariate.declared`);
* :mod:`~pkmodel.pk.population.data`: the dataset (read by :func:`pkmodel.pk.read_nonmem`) as
  flat arrays of observations, doses and dose-observation pairs;
* :mod:`~pkmodel.pk.population.equations`: individual parameters, the structure's predictions
  over the dose-observation pairs and the residual SD, in NumPy and PyTensor;
* :mod:`~pkmodel.pk.population.centring`: how each subject's random effects are written for the
  sampler;
* :mod:`~pkmodel.pk.population.build`: the hierarchical PyMC model;
* :mod:`~pkmodel.pk.population.compiled`: the compiled sampler model, cached for every dataset
  of the same specification and subject slots;
* :mod:`~pkmodel.pk.population.fitting`: fitting with nutpie (:func:`fit_population`);
* :mod:`~pkmodel.pk.population.fit`: the fitted model (:class:`PopulationFit`: the shape of
  every fit, shrinkage, goodness-of-fit data, the fit as a library model);
* :mod:`~pkmodel.pk.population.loading`: a saved fit read back (:func:`load_population_fit`;
  :func:`pkmodel.load` reads every kind);
* :mod:`~pkmodel.pk.population.prior`: a published model as an informative prior
  (:func:`published_prior`, :func:`with_prior`);
* :mod:`~pkmodel.pk.population.likelihood`: the predictive groups every fit stores (log
  likelihood per observation and per subject, observed, constant and replicated data);
* :mod:`~pkmodel.pk.population.checks`: CWRES and the prediction-corrected visual predictive
  check (:func:`pc_vpc`);
* :mod:`~pkmodel.pk.population.comparison`: PSIS-LOO, fits ranked by it, LOO-PIT;
* :mod:`~pkmodel.pk.population.individuals`: each subject's predicted curves and etas;
* :mod:`~pkmodel.pk.population.simulate`: datasets simulated from known truth;
* :mod:`~pkmodel.pk.population.control_stream`: NONMEM control streams read as a specification
  (:func:`read_control_stream`) and written from one (:func:`write_control_stream`).

PyMC, PyTensor and nutpie are imported when a model is built or fitted, not on import.
"""

from pkmodel.pk.population.checks import PCVPC, cwres, pc_vpc
from pkmodel.pk.population.control_stream import read_control_stream, write_control_stream
from pkmodel.pk.population.data import PopulationData, read_population_data
from pkmodel.pk.population.fit import PopulationFit
from pkmodel.pk.population.fitting import fit_population
from pkmodel.pk.population.loading import load_population_fit
from pkmodel.pk.population.prior import published_prior, with_prior
from pkmodel.pk.population.simulate import SimulatedDataset, simulate_dataset, truth_names
from pkmodel.pk.population.spec import (
    Covariate,
    CovariateTerm,
    InformativePrior,
    Parameter,
    PopulationSpec,
    ResidualError,
    read_spec,
)

__all__ = ["PCVPC", "Covariate", "CovariateTerm", "InformativePrior", "Parameter", "PopulationData",
           "PopulationFit", "PopulationSpec", "ResidualError", "SimulatedDataset", "cwres",
           "fit_population", "load_population_fit", "pc_vpc", "published_prior",
           "read_control_stream", "read_population_data", "read_spec", "simulate_dataset",
           "truth_names", "with_prior", "write_control_stream"]
