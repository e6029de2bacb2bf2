"""Between-subject variability: log-normal random effects, diagonal or in correlated blocks.

Each parameter ``P`` with between-subject variability (BSV) has a random effect ``eta_P`` on the
log scale, ``P_i = (typical, covariates) x exp(eta_iP)``, normal with mean 0 and SD ``omega_P``
(variance ``omega2``). Parameters in a block (NONMEM's ``$OMEGA BLOCK``) have correlated etas:
``eta = diag(omega) chol(R) z`` with ``z`` standard normal and ``R`` the block's correlation
matrix, whose entries are named ``corr_<p>_<q>`` (:func:`correlation_name`). One set of
functions, used by the published models, the population model's checks and its simulator.

``values`` arguments map ``omega_<p>`` and ``corr_<p>_<q>`` to scalars or arrays of draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pkmodel.errors import SpecificationError

__all__ = ["correlated_etas", "correlation_cholesky", "correlation_name", "correlation_names",
           "etas_from_normals", "omega_matrix"]


def correlation_name(a: str, b: str) -> str:
    """The name of the correlation of the etas of ``a`` and ``b``: ``corr_a_b``."""
    return f"corr_{a}_{b}"


def correlation_names(blocks: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """``corr_<p>_<q>`` for each pair of each block, in order."""
    return tuple(correlation_name(a, b) for block in blocks
                 for i, a in enumerate(block) for b in block[i + 1:])


def correlation_cholesky(block: Sequence[str], values: Mapping) -> np.ndarray:
    """Cholesky factor ``(..., k, k)`` of a block's correlation matrix from its ``corr_*``
    values (scalars, or arrays of draws with the same shape)."""
    k = len(block)
    shape = np.shape(values[correlation_name(block[0], block[1])])
    corr = np.broadcast_to(np.eye(k), (*shape, k, k)).copy()
    for i in range(k):
        for j in range(i + 1, k):
            r = np.asarray(values[correlation_name(block[i], block[j])], dtype=float)
            corr[..., i, j] = corr[..., j, i] = r
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        raise SpecificationError(f"the correlations of the BSV block {', '.join(block)} do not "
                                 "form a valid correlation matrix (it must be positive "
                                 "definite)") from None


def correlated_etas(block: Sequence[str], values: Mapping, z: np.ndarray) -> dict:
    """The etas of a block from standard normal ``z`` of shape ``(k, ..., n)``: ``eta =
    diag(omega) chol(R) z``. ``values`` holds ``omega_<p>`` and ``corr_*`` (scalars, or draws
    shaped ``(m, 1)`` against ``z``'s ``(k, m, n)``)."""
    chol = correlation_cholesky(block, values)  # (..., k, k): the draws' shape, then k x k
    return {f"eta_{p}": np.asarray(values[f"omega_{p}"], dtype=float)
            * sum(chol[..., i, j] * z[j] for j in range(i + 1)) for i, p in enumerate(block)}


def etas_from_normals(names: Sequence[str], blocks: Sequence[Sequence[str]], values: Mapping,
                      z: np.ndarray) -> dict:
    """``eta_<p>`` of every parameter of ``names`` from standard normals ``z`` of shape ``(k,
    ...)`` in ``names`` order: ``omega_p z_p`` outside the blocks, correlated within each."""
    index = {p: i for i, p in enumerate(names)}
    blocked = {p for block in blocks for p in block}
    out = {f"eta_{p}": values[f"omega_{p}"] * z[index[p]] for p in names if p not in blocked}
    for block in blocks:
        out |= correlated_etas(block, values, np.stack([z[index[p]] for p in block]))
    return {f"eta_{p}": out[f"eta_{p}"] for p in names}


def omega_matrix(names: Sequence[str], blocks: Sequence[Sequence[str]],
                 values: Mapping) -> np.ndarray:
    """Omega, the covariance of the etas of ``names`` (in that order), from scalar
    ``omega_<p>`` and ``corr_*``: diagonal, with each block's ``omega_p omega_q corr_p_q``
    off the diagonal."""
    sd = np.array([float(values[f"omega_{p}"]) for p in names])
    corr = np.eye(len(names))
    for block in blocks:
        for i, a in enumerate(block):
            for b in block[i + 1:]:
                ia, ib = names.index(a), names.index(b)
                corr[ia, ib] = corr[ib, ia] = float(values[correlation_name(a, b)])
    return sd[:, None] * corr * sd[None, :]
