"""Pooling the remission fits of K draws of the PK population: the cut posterior as a mixture.

With ``Exposure(population_draws=K)`` the exposure-driven model is fitted once per draw of the
population PK parameters (each draw's exposure gains as the data) and the K posteriors are
pooled: an equal-weight mixture, which is the "cut" posterior of the remission parameters (the
PK population's uncertainty propagated forwards, the remission outcomes not fed back to it),
exactly as multiple imputation pools its imputations. Each component's chains are kept whole,
one after another along ``chain`` (component ``k`` holds chains ``k C`` to ``(k + 1) C - 1``);
every component has the same draws per chain, so that the pooled draws weigh the components
equally.

Component ``k`` samples with :func:`component_seed` of the fit's seed: the first with the seed
itself, so that one draw equal to the PK model gives the fit without propagation exactly.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pkmodel.diagnostics import Diagnostics, combine_diagnostics, compute_diagnostics

__all__ = ["component_chains", "component_diagnostics", "component_seed", "pool_trees"]


def component_seed(random_seed: int, k: int) -> int:
    """The sampler's seed of component ``k``: the fit's own for ``k = 0``, otherwise one derived
    from it and ``k`` (:class:`numpy.random.SeedSequence`)."""
    if k == 0:
        return int(random_seed)
    return int(np.random.SeedSequence([int(random_seed), int(k)]).generate_state(1)[0])


def pool_trees(trees: list[xr.DataTree]) -> xr.DataTree:
    """The groups of ``trees`` with draws (a ``chain`` dimension) concatenated along ``chain``,
    renumbered from 0; the other groups from the first tree."""
    groups = {}
    for name in trees[0].children:
        first = trees[0][name].to_dataset()
        if "chain" not in first.dims:
            groups[name] = first
            continue
        pooled = xr.concat([t[name].to_dataset() for t in trees], dim="chain",
                           combine_attrs="override")
        groups[name] = pooled.assign_coords(chain=np.arange(pooled.sizes["chain"]))
    return xr.DataTree.from_dict(groups)


def component_chains(n_chains: int, n_components: int) -> list[np.ndarray]:
    """The chain indices of each component of a pooled posterior of ``n_chains`` chains."""
    per = n_chains // n_components
    return [np.arange(k * per, (k + 1) * per) for k in range(n_components)]


def component_diagnostics(posterior: xr.Dataset, sample_stats: xr.Dataset,
                          var_names: list[str], n_components: int, *,
                          hierarchical_priors: str) -> tuple[Diagnostics, list[Diagnostics]]:
    """The convergence gate of a pooled fit: each component's, and their combination.

    R-hat over all the pooled chains would compare the components, which differ on purpose
    (each is the posterior given another draw of the PK population): each component is checked
    on its own chains, and the pooled fit passes when every component does
    (:func:`pkmodel.diagnostics.combine_diagnostics`).
    """
    parts = [compute_diagnostics(posterior.isel(chain=c), sample_stats.isel(chain=c),
                                 var_names, hierarchical_priors=hierarchical_priors)
             for c in component_chains(posterior.sizes["chain"], n_components)]
    return combine_diagnostics(parts), parts
