"""What the hierarchy of the remission model can identify, decided from the data.

The same specification meets cohorts of 40 and of 50,000 patients, from one centre to twenty.
Which terms are estimable, and in which coordinates NUTS can sample them, depends on the data:
:func:`choose_structure` decides it once per fit, from the design alone (no sampling), and the
fit records the decision (``fit.meta["structure"]``). The choices, their reasons and their
thresholds (documented in ``docs/model.md``):

- **Centre effects** with two or more centres are a hierarchy, ``a_j ~ Normal(0, sigma_group)``,
  written as zero-sum deviations from the mean intercept of the fitted centres. This is an exact
  reparametrisation of the iid hierarchy (:func:`new_group_intercept`): it removes the
  ridge between the intercept and the centre effects, which with many patients per centre is
  what made NUTS diverge. Its SD has a boundary-avoiding ``Gamma(2, 2.5 / group_sd)`` prior.
  The deviations are *partially* non-centred, ``a = sigma^w z`` with ``z ~ ZeroSum(sigma^(1 -
  w))``, where ``w`` weighs how much the centres' data say (the standard error of a centre's
  intercept in a quick pilot regression) against the plausible range of ``sigma_group``
  (:func:`_centring`): near 1 (non-centred) for small centres, near 0 (centred) for large
  ones. This changes the sampler's coordinates, never the model. A new centre's
  intercept follows from the fitted intercept exactly (:func:`new_group_intercept`). A single
  centre has no centre term (recorded as a note).
- **Slope offsets** by strategy (and disease) are never a hierarchy: two or three strategies
  are two or three numbers, not a sample from which a between-strategy SD can be learnt. They
  are zero-sum deviations from the common slope with a fixed regularising scale
  (``pool_slopes=True``, the default) or unregularised treatment contrasts
  (``pool_slopes=False``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from pkmodel.errors import SpecificationError
from pkmodel.priors import Prior
from pkmodel.response.design import REFERENCE_TL_UG_ML, Design
from pkmodel.response.priors import Priors
from pkmodel.sampling import centring_exponent

__all__ = ["GROUP_PARAMETRISATION", "Structure", "choose_structure", "group_sd_prior",
           "group_sd_rate", "new_group_intercept"]

#: Name recorded in ``meta["structure"]["group_effects"]`` for the zero-sum centre effects.
GROUP_PARAMETRISATION = "zero_sum"

# The prior of sigma_group is Gamma(GROUP_SD_SHAPE, rate = GROUP_SD_RATE_FACTOR / group_sd): with
# the default group_sd 0.5 that is Gamma(2, 5), whose mean (0.40) and median (0.34) are those of
# the HalfNormal(0.5) used before, but whose density vanishes at 0 (see docs/model.md).
GROUP_SD_SHAPE = 2.0
GROUP_SD_RATE_FACTOR = 2.5
# The pilot fit's coefficients get a Normal(0, 2.5) penalty so that it stays finite under
# separation; it only chooses coordinates for the sampler.
_PILOT_PRIOR_SD = 2.5
_GRID = np.geomspace(1e-4, 5.0, 600)  # between-centre SDs at which the centring is judged
# The plausible range of sigma_group: between these tail quantiles of its grid posterior.
_RANGE_TAIL = 0.001


@dataclass(frozen=True)
class Structure:
    """The structural choices of one fit (JSON-ready through :meth:`to_dict`).

    Attributes
    ----------
    n_groups : int
        Number of centres (levels of the grouping column) in the cohort.
    group_effects : str
        ``"none"`` (one centre: no centre term) or ``"zero_sum"`` (hierarchical centre
        effects written as zero-sum deviations, :data:`GROUP_PARAMETRISATION`).
    group_centring : float
        The exponent ``w`` of the partially non-centred centre effects: 0 centred, 1 non-centred.
    group_se : float or None
        Root mean square of the approximate standard errors of the centres' intercepts
        (logit scale) from which ``w`` was computed.
    slope_offsets : str
        ``"none"`` (one strategy and no disease term), ``"zero_sum"`` (regularised zero-sum
        offsets with the fixed scale ``priors.slope_group_sd``) or ``"contrasts"``
        (unregularised treatment contrasts, ``pool_slopes=False``).
    intercept_mu, intercept_sd : float
        The prior of the population intercept, which a new centre's intercept needs
        (:func:`new_group_intercept`).
    notes : tuple of str
        Simplifications made because the data cannot identify a term.
    """

    n_groups: int
    group_effects: str
    group_centring: float
    group_se: float | None
    slope_offsets: str
    intercept_mu: float = 0.0
    intercept_sd: float = 1.5
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Structure:
        d = dict(d)
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)


def _pilot_fit(design: Design) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre intercepts and their covariance from a quick penalised logistic regression.

    The regression has one intercept per centre, the TL slope per strategy (and disease), the
    strategy, month and covariate terms, no patient effect, and censored TLs at their limit;
    Newton-Raphson with a Normal(0, 2.5) penalty on every coefficient. It only serves to
    judge how much the data say about the centre effects. None when it fails.
    """
    n_groups = len(design.groups)
    p = design.row_patient
    x_tl = design.log_tl[p] - np.log(REFERENCE_TL_UG_ML)
    cols = [np.eye(n_groups)[design.patient_group[p]]]
    n_strat = len(design.strategies)
    strat = np.eye(n_strat)[design.patient_strategy[p]]
    cols += [strat * x_tl[:, None], strat[:, 1:]]
    if design.diseases:
        cols.append(np.eye(len(design.diseases))[design.patient_disease[p]][:, 1:] * x_tl[:, None])
    cols.append(np.eye(len(design.months))[design.row_month][:, 1:])
    cols.append(design.z[p])
    x = np.concatenate(cols, axis=1)
    y = design.remission.astype(float)
    coef = np.zeros(x.shape[1])
    penalty = np.eye(x.shape[1]) / _PILOT_PRIOR_SD**2
    try:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            for _ in range(50):
                prob = 1.0 / (1.0 + np.exp(-(x @ coef)))
                grad = x.T @ (y - prob) - penalty @ coef
                hess = (x * (prob * (1.0 - prob))[:, None]).T @ x + penalty
                step = np.linalg.solve(hess, grad)
                coef = coef + step
                if np.max(np.abs(step)) < 1e-8:
                    break
            cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return None
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(cov))):
        return None
    return coef[:n_groups], cov[:n_groups, :n_groups]


def _zero_sum_basis(n: int) -> np.ndarray:
    """An orthonormal basis (n x n-1) of the vectors that sum to zero."""
    q, _ = np.linalg.qr(np.eye(n) - 1.0 / n)
    return q[:, : n - 1]


def _centring(design: Design, priors: Priors) -> tuple[float, float | None]:
    """The centring ``w`` of the centre effects and the SE of a centre's effect it rests on.

    Given sigma, a centre effect known from its data to a standard error ``s`` has the spread
    ``(1/s^2 + 1/sigma^2)^(-1/2)``: proportional to sigma where ``sigma << s`` (there the
    non-centred form, ``w = 1``, is right) and constant where ``sigma >> s`` (the centred one,
    ``w = 0``). The sampler's coordinate ``z = a / sigma^w`` has that spread over ``sigma^w``.
    ``w`` is chosen so that this is the same at both ends of the plausible range of sigma (the
    0.1% and 99.9% quantiles of an approximate posterior of sigma on a grid: its prior times the
    Gaussian likelihood of the pilot fit's zero-sum centre intercepts, :func:`_pilot_fit`):
    the slope of the log spread between the two ends against log sigma. Equal at the ends,
    the spread of ``z`` varies least over the range: a funnel at the low end (divergences)
    and a bend at the high end (long trajectories) are both kept small.
    """
    pilot = _pilot_fit(design)
    if pilot is None:
        return 1.0, None
    intercepts, cov = pilot
    basis = _zero_sum_basis(len(intercepts))
    e = basis.T @ intercepts
    v = basis.T @ cov @ basis
    se2 = float(np.mean(np.diag(v)))
    log_post = np.empty(_GRID.size)
    eye = np.eye(len(e))
    for k, sigma in enumerate(_GRID):
        var = sigma**2 * eye + v
        _, logdet = np.linalg.slogdet(var)
        log_post[k] = -0.5 * (e @ np.linalg.solve(var, e) + logdet)
    rate = group_sd_rate(priors)
    # Gamma(shape, rate) density in log sigma: sigma^shape exp(-rate sigma)
    log_post += GROUP_SD_SHAPE * np.log(_GRID) - rate * _GRID
    weight = np.exp(log_post - log_post.max())
    cdf = np.cumsum(weight) / weight.sum()
    ends = np.minimum(np.searchsorted(cdf, [_RANGE_TAIL, 1 - _RANGE_TAIL]), _GRID.size - 1)
    lo, hi = _GRID[ends]
    slope = centring_exponent(1.0 / se2, float(lo), float(hi))
    # rounded: the structure is part of the compiled model's cache key
    return round(float(slope), 6), float(f"{np.sqrt(se2):.6g}")


def choose_structure(design: Design, priors: Priors, *, group: str,
                     pool_slopes: bool) -> Structure:
    """Decide the model's structure for ``design`` (see the module docstring).

    Raises
    ------
    SpecificationError
        When a requested term cannot be identified at all: a slope by disease where the cohort
        has a single disease.
    """
    notes = []
    if design.diseases and len(design.diseases) < 2:
        raise SpecificationError(
            f"slope_by='disease' needs patients of two diseases, but every patient has "
            f"disease {design.diseases[0]!r}; fit without slope_by")
    n_groups = len(design.groups)
    if n_groups < 2:
        notes.append(f"the cohort has a single {group} ({design.groups[0]!r}): the model has no "
                     f"{group} term, and its population curve describes that {group} only")
        effects, w, se = "none", 0.0, None
    else:
        w, se = _centring(design, priors)
        effects = GROUP_PARAMETRISATION
    if len(design.strategies) < 2:
        notes.append(f"every patient has strategy {design.strategies[0]!r}: the model has no "
                     "strategy terms, and its curves describe that strategy only")
    has_offsets = len(design.strategies) > 1 or bool(design.diseases)
    offsets = "none" if not has_offsets else ("zero_sum" if pool_slopes else "contrasts")
    return Structure(n_groups=n_groups, group_effects=effects, group_centring=w,
                     group_se=se, slope_offsets=offsets, intercept_mu=priors.intercept_mu,
                     intercept_sd=priors.intercept_sd, notes=tuple(notes))


def group_sd_rate(priors: Priors) -> float:
    """The rate of the ``Gamma(GROUP_SD_SHAPE, rate)`` prior of ``sigma_group``."""
    return GROUP_SD_RATE_FACTOR / priors.group_sd


def group_sd_prior(priors: Priors) -> tuple[Prior, float]:
    """The prior of ``sigma_group`` (``str`` of it: e.g. ``"Gamma(2, 5)"``) and its SD."""
    rate = group_sd_rate(priors)
    return (Prior("Gamma", alpha=GROUP_SD_SHAPE, beta=rate),
            float(np.sqrt(GROUP_SD_SHAPE) / rate))


def new_group_intercept(meta: dict, alpha, sigma_group):
    """Mean and variance of a new centre's intercept, per posterior draw.

    With zero-sum centre effects the model's intercept ``alpha = mu + mean(a)`` is the mean
    intercept of the J fitted centres, where ``mu ~ Normal(m, s)`` is the population intercept
    and ``mean(a) ~ Normal(0, sigma^2 / J)``. The likelihood depends on ``mu`` only through
    ``alpha``, so given ``alpha`` and ``sigma``, ``mu ~ Normal(m + k (alpha - m), k sigma^2 / J)``
    with ``k = s^2 / (s^2 + sigma^2 / J)``, and a new centre's intercept ``mu + a_new`` has mean
    ``m + k (alpha - m)`` and variance ``k sigma^2 / J + sigma^2``, exactly. Fits without a
    recorded structure (iid centre effects around ``alpha``) give ``alpha`` and ``sigma^2``.

    Parameters
    ----------
    meta : dict
        The fit's design metadata (``meta["structure"]``).
    alpha, sigma_group : array-like or xarray.DataArray
        Posterior draws.
    """
    structure = meta.get("structure") or {}
    if structure.get("group_effects") != GROUP_PARAMETRISATION:
        return alpha, sigma_group**2
    m, s2 = float(structure["intercept_mu"]), float(structure["intercept_sd"]) ** 2
    v_mean = sigma_group**2 / float(structure["n_groups"])
    k = s2 / (s2 + v_mean)
    return m + k * (alpha - m), k * v_mean + sigma_group**2
