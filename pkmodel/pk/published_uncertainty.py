"""The estimation uncertainty of the published population PK models, and draws from it.

A published model gives point estimates; its typical values, covariate coefficients, omegas and
residual error were themselves estimated, with standard errors that the papers print (as SE or
relative SE, RSE%) where they print them at all. :func:`published_model_draws` draws ``n``
alternative populations from the estimates' sampling distribution, each a
:class:`~pkmodel.pk.models.PopulationModel` of the same structure and covariates:

- a typical value, an ``omega^2`` or a residual SD ``theta`` (positive): log-normal,
  ``log theta* ~ N(log theta, RSE)`` (the delta method: the SE of ``log theta`` is the RSE);
- a covariate coefficient ``c``: normal, ``c* ~ N(c, RSE |c|)``;
- every estimate independently of the others (no paper gives the covariance matrix of its
  estimates); the correlations of BSV blocks are kept (no library model has one).

Published relative SEs (:data:`PUBLISHED_RSE`), with their source; every other estimate takes
the stated default :data:`DEFAULT_RSE` (10% on typical values and residual SDs, 25% on covariate
coefficients and on ``omega^2``), which :func:`rse_table` lists estimate by estimate with where
each number comes from. What is known:

- **Fasanmade 2009** (ulcerative colitis): the abstract prints the typical values with their
  SEs (final covariate model): CL 0.407 +- 0.0103 L/day (RSE 2.5%), V1 3.29 +- 0.0679 L (2.1%),
  V2 4.13 +- 0.16 L (3.9%), Q 7.14 +- 0.489 L/day (6.8%) (Eur J Clin Pharmacol
  2009;65:1211-28, abstract, PMC2778780). The SEs of its covariate effects, omegas and residual
  error are in its Table 3, which we could not read: defaults.
- **The other library models** (Fasanmade 2011 and its paediatric refit, Wojciechowski 2017,
  Dubinsky 2017, Aubourg 2015): no SE read by us; defaults throughout.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from pkmodel.errors import SpecificationError
from pkmodel.pk.models import PopulationModel
from pkmodel.sampling import resolve_seed

__all__ = ["DEFAULT_RSE", "PUBLISHED_RSE", "published_model_draws", "rse_table"]

#: The stated default relative standard error (a fraction) of each kind of estimate, where the
#: paper's is not known to pkmodel.
DEFAULT_RSE: Mapping[str, float] = {"typical": 0.10, "coefficient": 0.25, "omega2": 0.25,
                                    "residual": 0.10}

#: Published relative SEs (fractions) by model name, kind and parameter, with their source.
PUBLISHED_RSE: Mapping[str, dict] = {
    "fasanmade2009": {
        "typical": {"cl": 0.0103 / 0.407, "v1": 0.0679 / 3.29, "v2": 0.16 / 4.13,
                    "q": 0.489 / 7.14},
        "source": ("Fasanmade et al. 2009, abstract (typical value +- SE, final covariate "
                   "model); PMC2778780"),
    },
}

_DEFAULT_SOURCE = "pkmodel's stated default (no published SE known to pkmodel)"


def _rse(model: PopulationModel, kind: str, name: str) -> tuple[float, str]:
    """The RSE of one estimate of ``model`` and where it comes from."""
    published = PUBLISHED_RSE.get(model.name, {})
    if name in published.get(kind, {}):
        return float(published[kind][name]), published["source"]
    return DEFAULT_RSE[kind], _DEFAULT_SOURCE


def _effect_name(effect) -> str:
    return f"{effect.parameter}~{effect.covariate}"


def rse_table(model: PopulationModel) -> pd.DataFrame:
    """The relative SE used for each estimate of ``model``, and its source.

    Returns
    -------
    pandas.DataFrame
        ``kind`` (typical, coefficient, omega2, residual), ``estimate`` (a parameter, an
        effect ``parameter~covariate`` or a residual term), ``value``, ``rse`` (a fraction)
        and ``source``.
    """
    rows = [("typical", p, v) for p, v in model.typical.items()]
    rows += [("coefficient", _effect_name(e), e.coefficient) for e in model.effects]
    rows += [("omega2", p, v) for p, v in model.omega2.items()]
    rows += [("residual", k, v) for k, v in (("proportional_sd", model.proportional_sd),
                                             ("additive_sd_ug_ml", model.additive_sd_ug_ml))
             if v > 0]
    out = []
    for kind, name, value in rows:
        rse, source = _rse(model, kind, name)
        out.append({"kind": kind, "estimate": name, "value": value, "rse": rse,
                    "source": source})
    return pd.DataFrame(out)


def _lognormal(value: float, rse: float, rng: np.random.Generator) -> float:
    return float(value * math.exp(rse * rng.standard_normal())) if value > 0 else float(value)


def _coefficient(effect, rse: float, rng: np.random.Generator):
    c = effect.coefficient
    if isinstance(c, tuple):
        return tuple(float(x + rse * abs(x) * rng.standard_normal()) for x in c)
    return float(c + rse * abs(c) * rng.standard_normal())


def _one_draw(model: PopulationModel, k: int, rng: np.random.Generator,
              kinds: Collection[str]) -> PopulationModel:
    def rse(kind: str, name: str) -> float:  # 0 for a kind left out: its estimates kept
        return _rse(model, kind, name)[0] if kind in kinds else 0.0

    typical = {p: _lognormal(v, rse("typical", p), rng) for p, v in model.typical.items()}
    effects = tuple(dataclasses.replace(e, coefficient=_coefficient(
        e, rse("coefficient", _effect_name(e)), rng)) for e in model.effects)
    omega2 = {p: _lognormal(v, rse("omega2", p), rng) for p, v in model.omega2.items()}
    residual = {k_: _lognormal(getattr(model, k_), rse("residual", k_), rng)
                for k_ in ("proportional_sd", "additive_sd_ug_ml")}
    return dataclasses.replace(
        model, name=f"{model.name}_draw{k}", aliases=(), typical=typical, effects=effects,
        omega2=omega2, reported_cv_percent={}, **residual,
        source=(f"draw {k} from the sampling distribution of the estimates of {model.name} "
                "(pkmodel.pk.published_uncertainty: published RSEs where known, stated "
                "defaults otherwise)"))


def published_model_draws(model: PopulationModel, n: int, *,
                          random_seed: int | None = None,
                          kinds: Collection[str] = tuple(DEFAULT_RSE)) -> list[PopulationModel]:
    """``n`` populations drawn from the sampling distribution of ``model``'s estimates.

    Parameters
    ----------
    model : PopulationModel
        A published model (the RSEs of :data:`PUBLISHED_RSE` apply to a library model by its
        name; any other model takes :data:`DEFAULT_RSE` throughout).
    n : int
        Number of draws, 1 or more.
    random_seed : int, optional
        The one seed.
    kinds : collection of str, default all
        The kinds of estimates drawn (``typical``, ``coefficient``, ``omega2``,
        ``residual``); the others keep their estimates (to see what each source adds). The
        same seed draws the same numbers for a kind whatever the others.

    Returns
    -------
    list of PopulationModel
        Named ``<name>_draw<k>``.

    Raises
    ------
    SpecificationError
        ``n`` not a positive integer.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise SpecificationError(f"the number of population draws must be a positive integer, "
                                 f"not {n!r}")
    unknown = sorted(set(kinds) - set(DEFAULT_RSE))
    if unknown:
        raise SpecificationError(f"kinds names {unknown}; they are {', '.join(DEFAULT_RSE)}")
    rng = np.random.default_rng(resolve_seed(random_seed))
    return [_one_draw(model, k, rng, kinds) for k in range(int(n))]
