"""Does a population dataset look like its units slipped, and which slip?

A unit slip does not make a linear model fail: it moves the estimates by a known factor. DV in
ng/mL where the specification says µg/mL makes every volume and clearance 1000 times too small
(the same as AMT in g); AMT in µg makes them 1000 times too large; TIME in hours where the
specification says days makes every clearance and rate constant 24 times too small (volumes do
not move). The data alone cannot tell a slip from a drug with such values; the prior can: an
estimate far outside its prior that one of these factors brings back is named as that slip.

:func:`check_dataset`, before sampling (no NUTS), fits the data quickly (pooled: every subject at
the typical values) as read and with each slip undone; :func:`check_estimates`, after sampling,
takes the posterior medians and undoes each slip on them. Both look only at the parameters the
design informs (:mod:`~pkmodel.pk.population.identifiability`: a parameter the data cannot
inform stays at its prior whatever the units) and name a slip when the estimates lie more than
:data:`Z_SUSPECT` prior SDs from the prior centre, and undoing the slip brings every one of them
within :data:`Z_PLAUSIBLE` and raises the log posterior (of the pooled fit; of the prior, after
sampling) by more than :data:`BETTER_BY_NATS`. Estimates beyond :data:`Z_IMPLAUSIBLE` that no
slip explains are said too. :func:`check_censoring` refuses data with every observation below
the LLOQ.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from pkmodel.errors import PKDataError
from pkmodel.pk.population.centring import reference_values
from pkmodel.pk.population.data import PopulationData
from pkmodel.pk.population.equations import individual_log_parameters, pair_arrays, predict
from pkmodel.pk.population.identifiability import prior_log_sd
from pkmodel.pk.population.spec import PopulationSpec
from pkmodel.pk.units import AMOUNT_UNITS, CONCENTRATION_UNITS, days_per, from_internal

__all__ = ["BETTER_BY_NATS", "Z_IMPLAUSIBLE", "Z_PLAUSIBLE", "Z_SUSPECT", "UnitSlip",
           "check_censoring", "check_dataset", "check_estimates", "pooled_estimates"]

#: Prior SDs from the prior centre beyond which an estimate is implausible (said even when no
#: slip explains it).
Z_IMPLAUSIBLE = 3.0
#: Prior SDs beyond which a slip is looked for: a factor of 24 (hours read as days) is 3.2 SDs
#: of a prior log-SD of 1, and a pooled estimate may fall short of it.
Z_SUSPECT = 2.5
#: Prior SDs within which every estimate must fall once the slip is undone.
Z_PLAUSIBLE = 2.0
#: Gain in the prior log density (nats) that undoing a slip must bring to be named.
BETTER_BY_NATS = 3.0


@dataclass(frozen=True)
class UnitSlip:
    """A likely unit slip.

    Attributes
    ----------
    name : str
        ``"DV in ng/mL"``, ``"AMT in µg"``, ``"TIME in hours"``...; empty when the estimates
        are implausible and no common slip explains them.
    factor : float
        How many times too large the estimates of the parameters it moves are (``1/1000`` for
        DV in ng/mL: volumes and clearances 1000 times too small).
    fix : str
        What to change.
    message : str
        The whole finding: what is implausible, the likely slip and its fix.
    """

    name: str
    factor: float
    fix: str
    message: str


def _slips(spec: PopulationSpec):
    """(name, factor on the estimates, parameter kinds it moves, fix) of each slip to test."""
    conc, amount = spec.concentration_unit, spec.amount_unit
    plain = CONCENTRATION_UNITS[conc] == 1.0 and AMOUNT_UNITS[amount] == 1.0
    out = [("DV in ng/mL" if plain else "DV 1000 times too large", 1e-3,
            ("volume", "volume/time"),
            (f"DV looks like ng/mL: set concentration_unit = \"ng/mL\" in [data] (it says "
             f"\"{conc}\"), or divide DV by 1000" if plain else
             f"DV must be in {conc}: divide it by 1000")
            + f" (or, if DV is right, AMT must be in {amount}, not 1000 times smaller)"),
           ("AMT in µg" if plain else "AMT 1000 times too large", 1e3, ("volume", "volume/time"),
            ("AMT looks like µg: set amount_unit = \"µg\" in [data] (it says \"mg\"), or "
             "divide AMT by 1000" if plain else f"AMT must be in {amount}: divide it by 1000")
            + f" (or, if AMT is right, DV must be in {conc}, not 1000 times smaller)")]
    for unit in ("hour", "day", "week"):
        if unit == spec.time_unit:
            continue
        # TIME really in `unit`, read in the specification's: every time k times too large
        k = days_per(spec.time_unit) / days_per(unit)
        out.append((f"TIME in {unit}s", 1.0 / k, ("volume/time", "1/time"),
                    f"the dataset's TIME is in {unit}s: set time_unit = \"{unit}\" in [data] "
                    f"(it says \"{spec.time_unit}\"), or convert TIME to {spec.time_unit}s"))
    return out


def check_estimates(spec: PopulationSpec, log_typical: dict[str, float],
                    informed: tuple[str, ...] | None = None, *,
                    what: str = "the estimates") -> UnitSlip | None:
    """The likely unit slip behind log typical values far from their prior, or None.

    Parameters
    ----------
    spec : PopulationSpec
        The model (its priors, units).
    log_typical : dict
        ``log_tv_<p>`` (per day, as sampled) of the estimated parameters.
    informed : tuple of str, optional
        The parameters the design informs (default: all of ``log_typical``).
    what : str
        How the estimates are named in the message.
    """
    names = [p for p in (informed if informed is not None else
                         [k.removeprefix("log_tv_") for k in log_typical])
             if f"log_tv_{p}" in log_typical]
    if not names:
        return None
    sd = np.array([prior_log_sd(spec, p) for p in names])
    centre = np.array([np.log(spec.typical_per_day(p)) for p in names])
    offset = np.array([log_typical[f"log_tv_{p}"] for p in names]) - centre
    z = offset / sd
    if np.max(np.abs(z)) <= Z_SUSPECT:
        return None
    kinds = [spec.structure.kind(p) for p in names]
    best = None
    for name, factor, moved, fix in _slips(spec):
        shift = np.array([np.log(factor) if k in moved else 0.0 for k in kinds])
        corrected = (offset - shift) / sd
        gain = 0.5 * (np.sum(z ** 2) - np.sum(corrected ** 2))
        if (gain > BETTER_BY_NATS and np.max(np.abs(corrected)) <= Z_PLAUSIBLE
                and (best is None or gain > best[0])):
            best = (gain, name, factor, fix)
    return _finding(spec, log_typical, tuple(names), z, best, what)


def _finding(spec, log_typical, names, z, best, what) -> UnitSlip | None:
    """The :class:`UnitSlip` of estimates with standardised offsets ``z`` and the best slip
    ``(gain, name, factor, fix)`` (or None)."""
    kinds = [spec.structure.kind(p) for p in names]
    centre = np.array([np.log(spec.typical_per_day(p)) for p in names])
    worst = int(np.argmax(np.abs(z)))
    p = names[worst]
    shown = from_internal(np.exp(log_typical[f"log_tv_{p}"]), kinds[worst], spec.time_unit)
    prior = from_internal(np.exp(centre[worst]), kinds[worst], spec.time_unit)
    text = (f"{what} are implausible under the specification's priors: {p.upper()} "
            f"{shown:.3g} {spec.unit(p)} is {abs(z[worst]):.1f} prior SDs "
            f"{'below' if z[worst] < 0 else 'above'} the prior's {prior:.3g} {spec.unit(p)}")
    if best is None and np.max(np.abs(z)) <= Z_IMPLAUSIBLE:
        return None
    if best is None:
        return UnitSlip("", 1.0, "check the units of AMT, DV and TIME and the typical values "
                        "of the specification", f"{text}; no common unit slip explains it: check "
                        "the units of AMT, DV and TIME and the typical values of the "
                        "specification")
    gain, name, factor, fix = best
    ratio = f"{1 / factor:g} times too small" if factor < 1 else f"{factor:g} times too large"
    return UnitSlip(name, factor, fix, f"{text}; the {', '.join(sorted(set(_moved(name))))} "
                    f"are about {ratio}, as with {name} (undoing it brings every estimate within "
                    f"its prior, log density +{gain:.0f}): {fix}")


def _moved(name: str) -> tuple[str, ...]:
    return (("volumes", "clearances") if not name.startswith("TIME")
            else ("clearances", "rate constants"))


def _pooled_fit(spec: PopulationSpec, data: PopulationData,
                names: list[str]) -> tuple[np.ndarray, float]:
    """MAP log typical values (per day) of a pooled fit and its objective (minus the log
    posterior): every subject at the typical values (covariate coefficients at their prior
    means), log-scale residuals with their SD profiled out, the log-normal priors of the
    typical values."""
    values = reference_values(spec)
    arrays = pair_arrays(spec, data)
    y = data.obs_value_ug_ml
    keep = (data.obs_cens == 0) & (y > 0)
    centre = np.array([values[f"log_tv_{p}"] for p in names])
    sd = np.array([prior_log_sd(spec, p) for p in names])

    def objective(x):
        trial = values | {f"log_tv_{p}": x[k] for k, p in enumerate(names)}
        pred = predict(spec, arrays, individual_log_parameters(spec, arrays, trial))
        used = keep & (pred > 0)
        if used.sum() < 2:
            return 1e10
        r = np.log(y[used]) - np.log(pred[used])
        return 0.5 * keep.sum() * np.log(np.mean(r ** 2) + 1e-12) + 0.5 * np.sum(
            ((x - centre) / sd) ** 2)

    best = None
    for x0 in (centre, centre - sd, centre + sd):
        res = optimize.minimize(objective, x0, method="Nelder-Mead",
                                options={"xatol": 1e-3, "fatol": 1e-4, "maxiter": 400 * len(x0)})
        if best is None or res.fun < best.fun:
            best = res
    return best.x, float(best.fun)


def _undone(data: PopulationData, name: str, factor: float) -> PopulationData:
    """The data with the slip ``name`` undone (``factor``: the estimates' error)."""
    if name.startswith("DV"):
        return dataclasses.replace(data, obs_value_ug_ml=data.obs_value_ug_ml * factor)
    if name.startswith("AMT"):
        return dataclasses.replace(data, dose_amount_mg=data.dose_amount_mg / factor)
    return dataclasses.replace(data, obs_time_days=data.obs_time_days * factor,
                               dose_time_days=data.dose_time_days * factor,
                               dose_duration_days=data.dose_duration_days * factor)


def pooled_estimates(spec: PopulationSpec, data: PopulationData) -> dict[str, float]:
    """``log_tv_<p>`` (per day) of the pooled fit of :func:`check_dataset`."""
    names = [p for p, par in spec.parameters.items() if not par.fixed]
    x, _ = _pooled_fit(spec, data, names)
    return {f"log_tv_{p}": float(x[k]) for k, p in enumerate(names)}


def check_dataset(spec: PopulationSpec, data: PopulationData,
                  informed: tuple[str, ...] | None = None) -> UnitSlip | None:
    """The likely unit slip of a dataset, before sampling (no NUTS), or None.

    A pooled fit of the data as read (see :func:`pooled_estimates`); when the estimates of the
    parameters the design informs lie beyond :data:`Z_SUSPECT` prior SDs, the data are fitted
    again with each slip undone, and the slip whose data the model explains best (the log
    posterior higher by more than :data:`BETTER_BY_NATS`, every informed estimate within
    :data:`Z_PLAUSIBLE`) is named.
    """
    names = [p for p, par in spec.parameters.items() if not par.fixed]
    informed = tuple(names) if informed is None else tuple(p for p in informed if p in names)
    if not informed:
        return None
    x, fun = _pooled_fit(spec, data, names)
    log_typical = {f"log_tv_{p}": float(x[k]) for k, p in enumerate(names)}
    index = [names.index(p) for p in informed]
    sd = np.array([prior_log_sd(spec, p) for p in informed])
    centre = np.array([np.log(spec.typical_per_day(p)) for p in informed])
    z = (x[index] - centre) / sd
    if np.max(np.abs(z)) <= Z_SUSPECT:
        return None
    best = None
    for name, factor, _, fix in _slips(spec):
        other, other_fun = _pooled_fit(spec, _undone(data, name, factor), names)
        gain = fun - other_fun
        corrected = (other[index] - centre) / sd
        if (gain > BETTER_BY_NATS and np.max(np.abs(corrected)) <= Z_PLAUSIBLE
                and (best is None or gain > best[0])):
            best = (gain, name, factor, fix)
    return _finding(spec, log_typical, informed, z, best, "the pooled estimates before sampling")


def check_censoring(data: PopulationData) -> None:
    """Refuse a dataset whose every observation is below the LLOQ: nothing in it can inform a
    concentration above the limit."""
    if data.n_observations and np.all(data.obs_cens == 1):
        raise PKDataError(f"all {data.n_observations} observations are below the LLOQ: the "
                          "data say only that concentrations were under the limit, which no "
                          "estimate can be drawn from", source=data.source, column="DV",
                          fix="check the LLOQ (lloq_ug_ml, LLOQ, CENS/BLQ columns) and the "
                              "units of DV, or add quantified observations")
