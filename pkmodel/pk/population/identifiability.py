"""Which typical values can a dataset's design inform: before sampling, and after.

Before sampling (:func:`design_information`), from the design alone: the expected Fisher
information of the log typical values at the prior centre (:func:`~pkmodel.pk.population.
centring.reference_values`: typical values, covariate coefficients at their prior means, omega
and the residual SDs at the medians of their priors), in the first-order population
approximation (each subject's predictions linearised in its random effects, so that ``y_i ~
N(f_i, J_i Omega J_i' + R_i)`` and the subject adds ``F_i' (J_i Omega J_i' + R_i)^-1 F_i``, with
``F_i`` the sensitivities of its predictions to the log typical values), plus the prior's
precision. Its inverse gives the posterior SD the design can be expected to reach; a parameter
whose expected posterior SD is more than :data:`WEAK_RATIO` of its prior SD is one the design
hardly informs (Q and V2 from troughs alone; a rich design without distribution-phase samples).
For such a parameter the same approximation says which samples would inform it: the times after
a dose at which one more sample per subject would narrow it most.

After sampling (:func:`posterior_widths`): each estimated typical value's posterior SD (log
scale) against its prior SD; above :data:`WEAK_RATIO`, the data hardly moved the prior, and a
convergence gate that fails on it is a matter of identification, not of more draws.

Only the uncensored observations count in the information (values below the LLOQ inform less),
and covariate coefficients are held at their prior means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pkmodel.pk.population.centring import reference_values
from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.equations import (
    individual_log_parameters,
    pair_arrays,
    predict,
    residual_sd,
)
from pkmodel.pk.population.spec import PopulationSpec
from pkmodel.pk.units import days_per

__all__ = ["WEAK_RATIO", "DesignInformation", "design_information", "posterior_widths",
           "prior_log_sd", "remedy", "weak_after_sampling"]

#: Posterior SD over prior SD (log typical value) above which a parameter is weakly identified.
WEAK_RATIO = 0.5
_STEP = 1e-4
_HALF_NORMAL_MEDIAN = float(stats.halfnorm.median())


def prior_log_sd(spec: PopulationSpec, name: str) -> float:
    """The prior SD of ``log_tv_<name>``: the specification's, combined with a published prior's
    term (weight / SD^2 added to the precision) where one informs it."""
    precision = 1.0 / spec.parameters[name].prior_log_sd ** 2
    if spec.prior is not None and f"log_tv_{name}" in spec.prior.terms:
        precision += spec.prior.weight / spec.prior.terms[f"log_tv_{name}"][1] ** 2
    return float(precision ** -0.5)


@dataclass(frozen=True)
class DesignInformation:
    """What a design is expected to say about each estimated typical value.

    Attributes
    ----------
    prior_sd, expected_sd : dict of str to float
        Prior SD and expected posterior SD of each estimated ``log_tv_<p>``, by parameter.
    informative_window : dict of str to tuple of float
        For each weakly identified parameter: the times after a dose (in the specification's
        time unit) at which one more sample per subject would narrow it most.
    """

    prior_sd: dict[str, float]
    expected_sd: dict[str, float]
    informative_window: dict[str, tuple[float, float]]

    def ratio(self, name: str) -> float:
        """Expected posterior SD over prior SD of parameter ``name``."""
        return self.expected_sd[name] / self.prior_sd[name]

    @property
    def weak(self) -> tuple[str, ...]:
        """The parameters the design hardly informs (ratio above :data:`WEAK_RATIO`)."""
        return tuple(p for p in self.prior_sd if self.ratio(p) > WEAK_RATIO)

    @property
    def informed(self) -> tuple[str, ...]:
        """The parameters the design informs."""
        return tuple(p for p in self.prior_sd if self.ratio(p) <= WEAK_RATIO)

    def messages(self, spec: PopulationSpec) -> list[str]:
        """One sentence per weakly identified parameter, with the remedies."""
        out = []
        for p in self.weak:
            window = self.informative_window.get(p)
            out.append(f"{p.upper()} is hardly informed by this dataset's design: its data "
                       f"would narrow its prior (log-SD {self.prior_sd[p]:.2g}) only to about "
                       f"{self.expected_sd[p]:.2g} ({self.ratio(p):.0%} of its width), so that "
                       f"its estimate is mostly the prior's and the sampler may mix poorly on "
                       f"it. {remedy(spec, p, window)}")
        return out


def remedy(spec: PopulationSpec, name: str,
           window: tuple[float, float] | None = None) -> str:
    """What to do about a weakly identified parameter ``name``."""
    samples = (f", or add samples {window[0]:.2g}-{window[1]:.2g} {spec.time_unit}s after a "
               "dose, where they would inform it most" if window is not None else
               ", or add samples that inform it")
    return (f"Fix it (fixed = true in [parameters.{name}], at a published value), give it an "
            f"informative prior ([prior] model = a published model, or a smaller prior_log_sd)"
            f"{samples}.")


def _sensitivities(spec, arrays, values, names) -> tuple[np.ndarray, ...]:
    """Predictions, their log-derivatives to the log typical values (obs x names) and to each
    BSV parameter's eta (obs x bsv), by central differences."""

    def pred(v):
        return predict(spec, arrays, individual_log_parameters(spec, arrays, v))

    base = pred(values)
    cols = {}
    for key in {*(f"log_tv_{p}" for p in names), *(f"log_tv_{p}" for p in spec.bsv_parameters)}:
        up = pred(values | {key: values[key] + _STEP})
        down = pred(values | {key: values[key] - _STEP})
        cols[key] = (up - down) / (2 * _STEP)  # d f / d log p (an eta enters as log p does)
    typical = np.stack([cols[f"log_tv_{p}"] for p in names], axis=1) if names else np.zeros(
        (base.size, 0))
    etas = np.stack([cols[f"log_tv_{p}"] for p in spec.bsv_parameters], axis=1) if (
        spec.bsv_parameters) else np.zeros((base.size, 0))
    return base, typical, etas


def _omega(spec: PopulationSpec) -> np.ndarray:
    return np.diag([(_HALF_NORMAL_MEDIAN * spec.parameters[p].omega_prior) ** 2
                    for p in spec.bsv_parameters])


def _information(spec, data, arrays, values, names) -> tuple[np.ndarray, np.ndarray]:
    """The design's Fisher information of the log typical values ``names``, and the omega
    matrix it assumed."""
    pred, f, g = _sensitivities(spec, arrays, values, names)
    sd = np.asarray(residual_sd(spec, pred, values), dtype=float) * np.ones_like(pred)
    exact = (data.obs_cens == 0) & (sd > 0)
    omega = _omega(spec)
    info = np.zeros((len(names), len(names)))
    for i in range(data.n_subjects):
        rows = np.flatnonzero((data.obs_subject == i) & exact)
        if rows.size == 0:
            continue
        cov = g[rows] @ omega @ g[rows].T + np.diag(sd[rows] ** 2)
        fi = f[rows]
        info += fi.T @ np.linalg.solve(cov, fi)
    return info, omega


def design_information(spec: PopulationSpec, data: PopulationData) -> DesignInformation:
    """The information the design of ``data`` carries about each estimated typical value of
    ``spec``, at the prior centre (see the module's description).

    Examples
    --------
    >>> info = design_information(spec, data)  # doctest: +SKIP
    >>> info.weak  # doctest: +SKIP
    ('q', 'v2')
    """
    names = [p for p, par in spec.parameters.items() if not par.fixed]
    values = reference_values(spec)
    arrays = pair_arrays(spec, data)
    info, omega = _information(spec, data, arrays, values, names)
    prior = {p: prior_log_sd(spec, p) for p in names}
    precision = np.diag([1.0 / prior[p] ** 2 for p in names])
    cov = np.linalg.inv(info + precision)
    expected = {p: float(np.sqrt(cov[k, k])) for k, p in enumerate(names)}
    result = DesignInformation(prior, expected, {})
    if not result.weak:
        return result
    windows = _windows(spec, data, arrays, values, names, info + precision, omega, result.weak)
    return DesignInformation(prior, expected, windows)


def _windows(spec, data, arrays, values, names, total, omega, weak) -> dict:
    """For each weak parameter, the times after a dose where one more sample per subject (of
    a typical subject after the dataset's median dose) narrows it most."""
    elapsed = arrays["pair_elapsed_days"]
    typical = {p: np.exp(values[f"log_tv_{p}"]) for p in spec.parameter_names}
    rates = [float(lam) for _, lam in spec.structure.impulse_response(typical)]
    rates += [float(typical["ka"])] if "ka" in typical else []
    grid = np.geomspace(0.05 / max(rates), max(5.0 / min(rates), float(elapsed.max())), 80)
    first = {k: v[:1] for k, v in arrays.items() if k.startswith("x_")}
    one = {"pair_obs": np.arange(grid.size), "pair_subject": np.zeros(grid.size, dtype=np.int64),
           "pair_elapsed_days": grid,
           "pair_amount_mg": np.full(grid.size, float(np.median(arrays["pair_amount_mg"]))),
           "pair_duration_days": np.full(grid.size,
                                         float(np.median(arrays["pair_duration_days"]))),
           "obs_zeros": np.zeros(grid.size)} | first
    pred, f, g = _sensitivities(spec, one, values, names)
    sd = np.asarray(residual_sd(spec, pred, values), dtype=float) * np.ones_like(pred)
    var = np.einsum("ij,jk,ik->i", g, omega, g) + sd ** 2
    n = data.n_subjects
    out = {}
    for p in weak:
        k = names.index(p)
        after = np.empty(grid.size)
        for t in range(grid.size):
            extra = n * np.outer(f[t], f[t]) / var[t]
            after[t] = np.sqrt(np.linalg.inv(total + extra)[k, k])
        before = np.sqrt(np.linalg.inv(total)[k, k])
        gain = before - after
        if gain.max() <= 0:
            continue
        good = grid[gain >= 0.7 * gain.max()]
        scale = 1.0 / days_per(spec.time_unit)
        out[p] = (float(good.min() * scale), float(good.max() * scale))
    return out


def posterior_widths(fit) -> dict[str, tuple[float, float]]:
    """``(prior SD, posterior SD)`` of each estimated typical value (``tv_<p>``, on the log
    scale) and each omega (``omega_<p>``, against the SD of its half-normal prior) of a fit; a
    ratio above :data:`WEAK_RATIO` says the data hardly informed it."""
    spec = fit.spec
    post = fit.posterior
    out = {f"tv_{p}": (prior_log_sd(spec, p), float(np.std(post[f"log_tv_{p}"].values)))
           for p, par in spec.parameters.items() if not par.fixed}
    for p in spec.bsv_parameters:
        scale = spec.parameters[p].omega_prior
        if spec.prior is not None and f"omega_{p}" in spec.prior.terms:
            continue  # a published prior's log-normal: the half-normal's width does not apply
        out[f"omega_{p}"] = (float(scale * stats.halfnorm.std()),
                             float(np.std(post[f"omega_{p}"].values)))
    return out


def weak_after_sampling(fit) -> dict[str, float]:
    """The variables of :func:`posterior_widths` the data hardly informed, with the ratio of
    their posterior SD to their prior SD."""
    return {k: post / prior for k, (prior, post) in posterior_widths(fit).items()
            if post / prior > WEAK_RATIO}
