"""Virtual populations of ATI-negative IBD patients on infliximab maintenance, or a user's table.

A population is an :class:`xarray.Dataset` with one row per patient along the ``patient`` dim and
the cohort's column names and units: ``weight_kg`` (kg), ``albumin_g_l`` (g/L), ``crp_mg_l``
(mg/L), ``sex`` (``F``/``M``), ``disease`` (``CD``/``UC``), ``immunomodulator`` (0/1) and,
optionally, an observed ``baseline_tl`` (µg/mL). Categorical columns are stored as integer codes
with their labels in ``attrs["levels"]`` so that they can live in dask arrays.

:class:`CovariateDistribution` describes how virtual patients are drawn: log-normal weight and CRP,
normal albumin, and binary sex, disease and immunomodulator use as thresholded latent normals, all
five or six latent normals correlated through one correlation matrix (a Gaussian copula). The
default, :data:`IBD_MAINTENANCE`, takes each number from a published infliximab cohort where we
found one, and says where we did not (see ``docs/scenarios.md``).

Randomness is drawn in fixed blocks of :data:`RANDOM_BLOCK` patients, each block from its own
stream ``SeedSequence(seed, spawn_key=(stream, block))``: patient *i* gets the same covariates
whatever the chunking and whatever the population size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtri

from pkmodel.data.plausibility import implausible_value
from pkmodel.errors import CohortError, SpecificationError
from pkmodel.sampling import resolve_seed
from pkmodel.tables import decimal_comma, read_table
from pkmodel.validation import check_probability

__all__ = [
    "IBD_MAINTENANCE",
    "LATENT_ORDER",
    "RANDOM_BLOCK",
    "CovariateDistribution",
    "VirtualPopulation",
    "block_normals",
    "population_from_table",
]

#: Patients per random-number block; randomness never depends on how patients are chunked.
RANDOM_BLOCK = 4096

#: Order of the latent normal variables (rows and columns of the correlation matrix).
LATENT_ORDER = ("weight", "albumin", "crp", "female", "uc", "immunomodulator")

#: Random streams (first element of the spawn key).
STREAM_POPULATION = 0
STREAM_PK = 1
STREAM_PK_OCCASIONS = 2  # the occasion effects (kappa) of PK models with IOV, baseline
STREAM_PK_OCCASIONS_AFTER = 3  # and those of the intervals under the intensified regimens

_LEVELS = {"sex": ("F", "M"), "disease": ("CD", "UC"), "immunomodulator": (0, 1)}
_UNITS = {"weight_kg": "kg", "albumin_g_l": "g/L", "crp_mg_l": "mg/L", "baseline_tl": "µg/mL",
          "immunomodulator": "0/1"}


def block_normals(entropy: int, stream: int, start: int, stop: int, width: int) -> np.ndarray:
    """Standard normals for patients ``start..stop-1``, shape ``(stop - start, width)``.

    Block ``b`` (patients ``b * RANDOM_BLOCK`` to ``(b + 1) * RANDOM_BLOCK - 1``) is always drawn
    whole from ``SeedSequence(entropy, spawn_key=(stream, b))``, so a patient's numbers do not
    depend on ``start`` and ``stop``, i.e. on the chunking.
    """
    if stop <= start:
        return np.zeros((0, width))
    parts = []
    for b in range(start // RANDOM_BLOCK, (stop - 1) // RANDOM_BLOCK + 1):
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(stream, b)))
        z = rng.standard_normal((RANDOM_BLOCK, width))
        lo = max(start, b * RANDOM_BLOCK) - b * RANDOM_BLOCK
        hi = min(stop, (b + 1) * RANDOM_BLOCK) - b * RANDOM_BLOCK
        parts.append(z[lo:hi])
    return np.concatenate(parts, axis=0)


@dataclass(frozen=True)
class CovariateDistribution:
    """Joint distribution of the covariates of virtual patients (a Gaussian copula).

    Parameters
    ----------
    weight_median_kg, weight_log_sd : float
        Log-normal body weight: median (kg) and SD of log weight.
    albumin_mean_g_l, albumin_sd_g_l : float
        Normal serum albumin, g/L.
    crp_median_mg_l, crp_log_sd : float
        Log-normal C-reactive protein: median (mg/L) and SD of log CRP.
    p_female, p_uc, p_immunomodulator : float
        Proportions of women, of ulcerative colitis (the rest Crohn's disease) and of concomitant
        immunomodulator use.
    correlation : dict, optional
        Correlations between the latent normals, keyed by pairs of names of
        :data:`LATENT_ORDER`, e.g. ``{("albumin", "crp"): -0.31}``; pairs not given are 0. For
        the binary variables these are correlations of the underlying latent normal (tetrachoric
        or biserial), not of the 0/1 values.
    bounds : dict, optional
        Plausible ranges; draws outside are clipped to them (``weight_kg``, ``albumin_g_l``,
        ``crp_mg_l``).
    sources : dict, optional
        Where each number comes from (free text, shown in the docs and in outputs).
    """

    weight_median_kg: float
    weight_log_sd: float
    albumin_mean_g_l: float
    albumin_sd_g_l: float
    crp_median_mg_l: float
    crp_log_sd: float
    p_female: float
    p_uc: float
    p_immunomodulator: float
    correlation: Mapping[tuple[str, str], float] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=lambda: {
        "weight_kg": (30.0, 200.0), "albumin_g_l": (15.0, 55.0), "crp_mg_l": (0.1, 300.0)})
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("weight_median_kg", "weight_log_sd", "albumin_mean_g_l", "albumin_sd_g_l",
                     "crp_median_mg_l", "crp_log_sd"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise SpecificationError(f"{name} must be a positive number, not {value!r}")
        for name in ("p_female", "p_uc", "p_immunomodulator"):
            check_probability(name, getattr(self, name), open_interval=False)
        self.correlation_matrix()  # validates

    def correlation_matrix(self) -> np.ndarray:
        """The latent correlation matrix in :data:`LATENT_ORDER` order (checked: valid)."""
        k = len(LATENT_ORDER)
        r = np.eye(k)
        for pair, value in dict(self.correlation).items():
            if (not isinstance(pair, tuple) or len(pair) != 2
                    or any(p not in LATENT_ORDER for p in pair) or pair[0] == pair[1]):
                raise SpecificationError(
                    f"correlation key {pair!r} must be a pair of two different names of "
                    f"{LATENT_ORDER}, e.g. ('albumin', 'crp')")
            if not -1 < float(value) < 1:
                raise SpecificationError(f"correlation {pair} = {value!r} must be in (-1, 1)")
            i, j = LATENT_ORDER.index(pair[0]), LATENT_ORDER.index(pair[1])
            r[i, j] = r[j, i] = float(value)
        if np.linalg.eigvalsh(r).min() <= 1e-10:
            raise SpecificationError("the covariate correlations do not form a valid (positive "
                                     "definite) correlation matrix; reduce some of them")
        return r

    def transform(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """Covariate columns from independent standard normals ``z`` of shape (n, 6)."""
        y = z @ np.linalg.cholesky(self.correlation_matrix()).T
        lo, hi = zip(*(self.bounds.get(k, (-np.inf, np.inf))
                       for k in ("weight_kg", "albumin_g_l", "crp_mg_l")), strict=True)
        return {
            "weight_kg": np.clip(self.weight_median_kg * np.exp(self.weight_log_sd * y[:, 0]),
                                 lo[0], hi[0]),
            "albumin_g_l": np.clip(self.albumin_mean_g_l + self.albumin_sd_g_l * y[:, 1],
                                   lo[1], hi[1]),
            "crp_mg_l": np.clip(self.crp_median_mg_l * np.exp(self.crp_log_sd * y[:, 2]),
                                lo[2], hi[2]),
            # codes: sex 0 = F, 1 = M; disease 0 = CD, 1 = UC; immunomodulator 0/1
            "sex": (y[:, 3] >= _probit(self.p_female)).astype(np.int8),
            "disease": (y[:, 4] < _probit(self.p_uc)).astype(np.int8),
            "immunomodulator": (y[:, 5] < _probit(self.p_immunomodulator)).astype(np.int8),
        }

    def to_dict(self) -> dict:
        """Plain-JSON description (stored in scenario outputs)."""
        return {
            "weight_median_kg": self.weight_median_kg, "weight_log_sd": self.weight_log_sd,
            "albumin_mean_g_l": self.albumin_mean_g_l, "albumin_sd_g_l": self.albumin_sd_g_l,
            "crp_median_mg_l": self.crp_median_mg_l, "crp_log_sd": self.crp_log_sd,
            "p_female": self.p_female, "p_uc": self.p_uc,
            "p_immunomodulator": self.p_immunomodulator,
            "correlation": {f"{a}~{b}": v for (a, b), v in dict(self.correlation).items()},
            "bounds": {k: list(v) for k, v in dict(self.bounds).items()},
        }


def _probit(p: float) -> float:
    return float(ndtri(p)) if 0 < p < 1 else (-np.inf if p <= 0 else np.inf)


_BJCP = ("Br J Clin Pharmacol 2020;86(6):1165-1175, doi:10.1111/bcp.14229, Table 1 (157 adults "
         "with IBD starting infliximab, two arms pooled)")

#: Default virtual population: adults with IBD on infliximab maintenance, ATI-negative.
IBD_MAINTENANCE = CovariateDistribution(
    weight_median_kg=68.6,
    weight_log_sd=0.26,
    albumin_mean_g_l=41.0,
    albumin_sd_g_l=4.0,
    crp_median_mg_l=11.0,
    crp_log_sd=1.0,
    p_female=0.452,
    p_uc=0.255,
    p_immunomodulator=0.758,
    correlation={("albumin", "crp"): -0.31},
    sources={
        "weight": f"{_BJCP}: median 67.8 (IQR 57-80) and 69.4 (56-82) kg; log SD = log(IQR "
                  "ratio) / 1.349",
        "sex": f"{_BJCP}: 86 of 157 men",
        "disease": f"{_BJCP}: 40 of 157 UC, 117 CD",
        "immunomodulator": f"{_BJCP}: 119 of 157 on an immunomodulator at the start of "
                           "infliximab (not at maintenance: no maintenance figure found)",
        "albumin": "mean 41 g/L: the median albumin (4.1 g/dL) of the 482 patients of Fasanmade "
                   "et al. 2009 (its reference value). SD 4 g/L: NOT FOUND in a source we could "
                   "read; an assumption",
        "crp": "median 11 mg/L: CRP at diagnosis in " + _BJCP + ", 1.1 (IQR 0.1-3.1) mg/dL; a "
               "CRP at loss of response was not found. Log SD 1.0: NOT FOUND (the published IQR, "
               "whose lower end is an assay floor, would give 2.5); an assumption",
        "albumin~crp": "r = -0.31 between albumin and CRP: Sheinenzon et al., Int J Biol "
                       "Macromol 2021;184:857-862 (4434 hospitalised adults, not an IBD cohort)",
        "other correlations": "NOT FOUND for an infliximab cohort; set to 0 (weight, sex, "
                              "disease and immunomodulator independent of each other and of "
                              "albumin and CRP)",
    },
)


@dataclass(frozen=True)
class VirtualPopulation:
    """``n_patients`` virtual ATI-negative IBD patients drawn from ``distribution``.

    Parameters
    ----------
    n_patients : int
        Number of virtual patients.
    distribution : CovariateDistribution, default IBD_MAINTENANCE
        Joint covariate distribution.

    Examples
    --------
    >>> pop = VirtualPopulation(1000)
    >>> ds = pop.sample(random_seed=1, chunk_size=250)
    >>> ds.sizes["patient"], ds["weight_kg"].attrs["units"]
    (1000, 'kg')
    """

    n_patients: int
    distribution: CovariateDistribution = IBD_MAINTENANCE

    def __post_init__(self) -> None:
        if isinstance(self.n_patients, bool) or not isinstance(self.n_patients, int | np.integer):
            raise SpecificationError(f"n_patients must be an integer, not {self.n_patients!r}")
        if self.n_patients < 1:
            raise SpecificationError(f"n_patients must be at least 1, not {self.n_patients}")

    def columns(self, entropy: int, start: int, stop: int) -> dict[str, np.ndarray]:
        """Covariate arrays of patients ``start..stop-1`` (chunk-independent)."""
        z = block_normals(entropy, STREAM_POPULATION, start, stop, len(LATENT_ORDER))
        return self.distribution.transform(z)

    def sample(self, random_seed: int | None = None, *,
               chunk_size: int | None = None) -> xr.Dataset:
        """The population as a Dataset (dask-backed, lazily drawn, when ``chunk_size`` is given).

        Parameters
        ----------
        random_seed : int, optional
            Seed; ``None`` draws fresh entropy (recorded in ``attrs["random_seed"]``).
        chunk_size : int, optional
            Patients per dask chunk; ``None`` gives numpy arrays.
        """
        entropy = resolve_seed(random_seed)
        n = int(self.n_patients)
        if chunk_size is None:
            cols = self.columns(entropy, 0, n)
        else:
            chunks = _chunks(n, chunk_size)
            cols = {}
            names = ("weight_kg", "albumin_g_l", "crp_mg_l", "sex", "disease", "immunomodulator")
            for name in names:
                dtype = float if name in ("weight_kg", "albumin_g_l", "crp_mg_l") else np.int8
                cols[name] = da.map_blocks(_column_block, self, entropy, name, chunks=(chunks,),
                                           dtype=dtype, meta=np.zeros(0, dtype))
        ds = _as_dataset(cols, n)
        ds.attrs.update(source="virtual", random_seed=entropy,
                        distribution=repr(self.distribution.to_dict()))
        return ds


def _column_block(population: VirtualPopulation, entropy: int, name: str,
                  block_info=None) -> np.ndarray:
    start, stop = block_info[None]["array-location"][0]
    return population.columns(entropy, start, stop)[name]


def _chunks(n: int, chunk_size: int) -> tuple[int, ...]:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer) \
            or chunk_size < 1:
        raise SpecificationError(f"chunk_size must be a positive integer, not {chunk_size!r}")
    full, rest = divmod(n, int(chunk_size))
    return (int(chunk_size),) * full + ((rest,) if rest else ())


def _as_dataset(cols: Mapping[str, object], n: int) -> xr.Dataset:
    ds = xr.Dataset(coords={"patient": np.arange(n)})
    for name, values in cols.items():
        attrs = {}
        if name in _UNITS:
            attrs["units"] = _UNITS[name]
        if name in ("sex", "disease"):
            attrs["levels"] = list(_LEVELS[name])
        ds[name] = ("patient", values, attrs)
    return ds


def population_from_table(table: pd.DataFrame | str | os.PathLike) -> xr.Dataset:
    """A user's table of patients (CSV, Parquet or DataFrame) as a population Dataset.

    Columns (cohort names and units): ``weight_kg``, ``albumin_g_l``, ``sex`` (F/M),
    ``disease`` (CD/UC), optionally ``crp_mg_l``, ``immunomodulator`` (0/1), ``patient_id``,
    ``baseline_tl`` (an observed trough, µg/mL, a plain number) and ``ati`` (must be 0: the
    remission model applies to patients without antibodies to infliximab). Which columns are
    needed depends on the PK model and on the remission model's covariates; that is checked when
    simulating.

    The table is read as the cohort reader reads one (:func:`pkmodel.tables.read_table`: UTF-8
    CSV, ``.tsv``, Parquet; header names ignoring case and surrounding spaces, none twice).

    Raises
    ------
    CohortError
        Naming the file, row (header = row 1; a DataFrame's row by its index label) and column
        of a missing, non-numeric or unknown value, or of a value outside the cohort's
        plausible range (weight in pounds, albumin in g/dL, a trough in ng/mL;
        :mod:`pkmodel.data.plausibility`); or a file that cannot be read.
    """
    if not isinstance(table, pd.DataFrame | str | os.PathLike):
        raise SpecificationError(
            f"population must be a VirtualPopulation, an int (number of virtual patients), a "
            f"DataFrame or a CSV/Parquet path, not {type(table).__name__}")
    read = read_table(table, what="population table")
    frame, where, source = read.frame, read.where, read.source
    if len(frame) == 0:
        raise CohortError("the population table has no rows", source=source,
                          fix="give one row per patient")
    cols: dict[str, np.ndarray] = {}
    for name in ("weight_kg", "albumin_g_l", "crp_mg_l", "baseline_tl"):
        if name not in frame:
            continue
        x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(x) | (x <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            comma = decimal_comma(frame[name].iloc[i])
            if comma:
                raise where.error(comma[0], i, name, comma[1])
            fix = ("write a plain positive number; a censored trough such as '>16' cannot be "
                   "used as a baseline here" if name == "baseline_tl"
                   else f"write a positive number in {_UNITS[name]}")
            raise where.error(f"{name} is {frame[name].iloc[i]!r}", i, name, fix)
        found = implausible_value(name, x)  # the cohort reader's ranges and unit slips
        if found is not None:
            i, message, fix = found
            raise where.error(message, i, name, fix)
        cols[name] = x
    for name, levels in _LEVELS.items():
        if name not in frame:
            continue
        raw = frame[name]
        if name == "immunomodulator":
            x = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isin(x, (0.0, 1.0))
            codes = np.where(bad, 0, x).astype(np.int8)
        else:
            text = raw.astype("string").str.strip().str.upper()
            bad = (~text.isin(levels)).fillna(True).to_numpy(dtype=bool)
            codes = np.where(bad, 0, [levels.index(v) if v in levels else 0
                                      for v in text.fillna("")]).astype(np.int8)
        if bad.any():
            i = int(np.argmax(bad))
            raise where.error(f"{name} is {raw.iloc[i]!r}", i, name,
                              f"write one of {', '.join(map(str, levels))}")
        cols[name] = codes
    if "ati" in frame:
        ati = pd.to_numeric(frame["ati"], errors="coerce").to_numpy(dtype=float)
        bad = ati != 0
        if bad.any():
            i = int(np.argmax(bad))
            raise where.error(
                f"ati is {frame['ati'].iloc[i]!r}: scenarios are for patients without "
                "antibodies to infliximab", i, "ati",
                "remove patients with antibodies (the remission model was fitted without them)")
    ds = _as_dataset(cols, len(frame))
    if "patient_id" in frame:
        ds = ds.assign_coords(patient_id=("patient", frame["patient_id"].astype(str).to_numpy()))
    ds.attrs.update(source=source)
    return ds
