"""Datasets simulated from a population specification with known truth (for tests and docs).

The concentrations come from the same equations as the fit
(:func:`~pkmodel.pk.population.equations.predict`), which the tests check against an ODE solver;
the dataset is written as a NONMEM-style table, read back by :func:`pkmodel.pk.read_nonmem` like
any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkmodel.errors import SpecificationError
from pkmodel.pk.population.build import model_data
from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.equations import individual_log_parameters, predict, residual_sd
from pkmodel.pk.population.spec import PopulationSpec
from pkmodel.pk.variability import correlated_etas
from pkmodel.sampling import resolve_seed

__all__ = ["SimulatedDataset", "simulate_dataset", "truth_names"]


@dataclass(frozen=True)
class SimulatedDataset:
    """A simulated NONMEM-style dataset and the truth behind it.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``ID, TIME, AMT, RATE, DV, EVID, MDV`` (and ``CENS`` when there is an LLOQ), plus the
        covariate columns; TIME in days, AMT in mg, RATE in mg/day, DV in µg/mL.
    truth : dict
        The population values used (the names of the fit: ``tv_cl``, ``omega_cl``, ...).
    eta : dict of str to numpy.ndarray
        Each subject's random effect of each parameter with BSV.
    kappa : dict of str to numpy.ndarray
        Each subject's occasion effects ``(n_subjects, n_doses)`` of each parameter with IOV
        (an occasion is a dosing interval, written in the occasion column).
    """

    frame: pd.DataFrame
    truth: dict[str, float]
    eta: dict[str, np.ndarray]
    kappa: dict[str, np.ndarray] = field(default_factory=dict)


def truth_names(spec: PopulationSpec) -> tuple[str, ...]:
    """The population values :func:`simulate_dataset` needs for ``spec``."""
    names = [f"tv_{p}" for p in spec.parameter_names]
    names += [f"omega_{p}" for p in spec.bsv_parameters]
    names += [f"omega_iov_{p}" for p in spec.iov_parameters]
    names += list(spec.correlation_names)
    names += [n for t in spec.covariates for n in t.names]
    return (*names, *spec.residual.names)


def _default_covariates(name: str, n: int, rng: np.random.Generator,
                        spec: PopulationSpec) -> np.ndarray:
    if name == "weight_kg":
        return np.clip(np.round(rng.lognormal(np.log(70.0), 0.2, n), 1), 30, 150)
    if name == "albumin_g_dl":
        return np.clip(np.round(rng.normal(3.8, 0.5, n), 2), 2.0, 5.5)
    cov = spec.covariate_registry[name]
    if cov.codes is not None and not cov.binary:  # a declared categorical covariate
        return rng.choice(np.asarray(cov.codes), n)
    if cov.low is not None:  # a declared continuous one: uniform over its plausible range
        return rng.uniform(cov.low, cov.high, n)
    if cov.levels == ():
        raise SpecificationError(f"give the values of {name} (covariates = ...): its levels "
                                 "are not declared")
    return (rng.random(n) < 0.3).astype(float)


def simulate_dataset(
    spec: PopulationSpec,
    truth: Mapping[str, float],
    *,
    n_subjects: int,
    dose_times_days: Sequence[float],
    sample_times_days: Sequence[float],
    dose_mg: float | None = None,
    dose_mg_kg: float | None = None,
    infusion_hours: float = 2.0,
    covariates: Mapping[str, Sequence[float]] | None = None,
    random_seed: int | None = None,
) -> SimulatedDataset:
    """Simulate subjects from ``spec`` at the population values ``truth``.

    Parameters
    ----------
    spec : PopulationSpec
        The model; its ``lloq_ug_ml`` (if any) censors values below it (``CENS`` 1, DV = LLOQ).
    truth : mapping
        Every name of :func:`truth_names` (typical values in the parameters' units, omegas as
        log-scale SDs (``omega_iov_<p>`` too: each dosing interval is an occasion, numbered
        from 1 in the specification's occasion column, ``OCC`` when occasions come from doses),
        the correlations ``corr_<p>_<q>`` of the etas of each BSV block,
        covariate effects' thetas, residual SDs).
    n_subjects : int
        Number of subjects.
    dose_times_days, sample_times_days : sequence of float
        The same for every subject, days since the first dose.
    dose_mg, dose_mg_kg : float
        The dose: mg, or mg/kg times each subject's weight (exactly one).
    infusion_hours : float, default 2
        Infusion duration (written as ``RATE``).
    covariates : mapping, optional
        Covariate values per subject (``weight_kg``...); those the specification uses and this
        lacks are drawn (weight log-normal around 70 kg, albumin around 3.8 g/dL, 0/1 with
        probability 0.3; a declared covariate uniformly over its plausible range or levels).
    random_seed : int, optional
        The one seed (default :data:`pkmodel.sampling.DEFAULT_RANDOM_SEED`).
    """
    missing = [n for n in truth_names(spec) if n not in truth]
    if missing:
        raise SpecificationError(f"truth lacks {', '.join(missing)}")
    if (dose_mg is None) == (dose_mg_kg is None):
        raise SpecificationError("give exactly one of dose_mg and dose_mg_kg")
    rng = np.random.default_rng(resolve_seed(random_seed))
    n = int(n_subjects)
    doses = np.asarray(dose_times_days, dtype=float)
    samples = np.asarray(sample_times_days, dtype=float)
    cov = {k: np.asarray(v, dtype=float) for k, v in (covariates or {}).items()}
    for name in dict.fromkeys([t.covariate for t in spec.covariates]
                              + (["weight_kg"] if dose_mg_kg is not None else [])):
        if name not in cov:
            cov[name] = _default_covariates(name, n, rng, spec)
    amount = (np.full(n, float(dose_mg)) if dose_mg is not None
              else float(dose_mg_kg) * cov["weight_kg"])
    duration = infusion_hours / 24.0
    subject_ids = tuple(str(i + 1) for i in range(n))
    # each sample's dosing interval (its occasion): the doses started before it
    side = "right" if spec.structure.instantaneous else "left"
    occasion = np.maximum(np.searchsorted(np.sort(doses), samples, side=side) - 1, 0)
    data = PopulationData(
        "<simulated>", subject_ids, cov,
        np.repeat(np.arange(n), samples.size), np.tile(samples, n),
        np.ones(n * samples.size), np.zeros(n * samples.size, dtype=int),
        np.repeat(np.arange(n), doses.size), np.tile(doses, n), np.repeat(amount, doses.size),
        np.full(n * doses.size, duration),
        obs_occasion=np.tile(occasion, n) if spec.iov_parameters else None)
    blocked = {p for block in spec.bsv_blocks for p in block}
    eta = {p: rng.normal(0.0, float(truth[f"omega_{p}"]), n) for p in spec.bsv_parameters
           if p not in blocked}
    for block in spec.bsv_blocks:  # multivariate normal: diag(omega) chol(R) z
        drawn = correlated_etas(block, {k: float(v) for k, v in truth.items()},
                                rng.standard_normal((len(block), n)))
        eta |= {p: drawn[f"eta_{p}"] for p in block}
    eta = {p: eta[p] for p in spec.bsv_parameters}
    values = {f"log_tv_{p}": np.log(float(truth[f"tv_{p}"])) for p in spec.parameter_names}
    values |= {f"eta_{p}": v for p, v in eta.items()}
    kappa = {p: rng.normal(0.0, float(truth[f"omega_iov_{p}"]), (n, max(doses.size, 1)))
             for p in spec.iov_parameters}
    values |= {f"kappa_{p}": v for p, v in kappa.items()}
    values |= {k: float(truth[k]) for t in spec.covariates for k in t.names}
    values |= {k: float(truth[k]) for k in spec.residual.names}
    arrays = model_data(spec, data)
    pred = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    dv = pred + residual_sd(spec, pred, values) * rng.standard_normal(pred.shape)
    rows = []
    occ = "OCC" if spec.occasions_from_doses else spec.occasion
    for i, sid in enumerate(subject_ids):
        extra = {spec.covariate_registry[k].columns[0]: v[i] for k, v in cov.items()}
        for k, t in enumerate(np.sort(doses)):
            rows.append({"ID": sid, "TIME": t, "AMT": amount[i], "RATE": amount[i] / duration,
                         "DV": np.nan, "EVID": 1, "MDV": 1, **extra}
                        | ({occ: k + 1} if kappa else {}))
        for k, t in enumerate(samples):
            rows.append({"ID": sid, "TIME": t, "AMT": np.nan, "RATE": np.nan,
                         "DV": dv[i * samples.size + k], "EVID": 0, "MDV": 0, **extra}
                        | ({occ: occasion[k] + 1} if kappa else {}))
    frame = pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False],
                                           kind="stable", key=_id_key)
    if not spec.structure.infusions:
        frame = frame.drop(columns="RATE")
    if spec.lloq_ug_ml is not None:
        below = (frame["EVID"] == 0) & (frame["DV"] < spec.lloq_ug_ml)
        frame["CENS"] = below.astype(int)
        frame.loc[below, "DV"] = spec.lloq_ug_ml
    else:
        frame["DV"] = frame["DV"].clip(lower=0.0)
    return SimulatedDataset(frame.reset_index(drop=True), {k: float(truth[k])
                                                           for k in truth_names(spec)}, eta,
                            kappa)


def _id_key(column: pd.Series) -> pd.Series:
    return column.astype(int) if column.name == "ID" else column
