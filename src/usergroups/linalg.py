"""Row normalisation, pooling and block fusion: the one implementation of each.

Bottom layer (no imports from stages), so every stage, the pipeline, the service and the
Spark engine share the same arithmetic.

Examples
--------
>>> import numpy as np
>>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
[[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._typing import FloatMatrix

__all__ = ["fuse_blocks", "pool_rows", "unit_rows"]


def unit_rows(x: npt.ArrayLike) -> FloatMatrix:
    """Rows scaled to unit length; all-zero rows stay zero.

    Parameters
    ----------
    x : array-like of shape (n_rows, n_features)

    Returns
    -------
    ndarray of shape (n_rows, n_features), float32
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def pool_rows(
    groups: npt.NDArray[Any],
    vectors: npt.NDArray[Any],
    n_groups: int,
    weights: npt.NDArray[Any] | None = None,
) -> FloatMatrix:
    """Weighted mean of ``vectors`` rows per index in ``groups``.

    Parameters
    ----------
    groups : ndarray of shape (n_rows,)
        Target row (e.g. user index) of each vector.
    vectors : ndarray of shape (n_rows, n_features)
    n_groups : int
        Number of output rows; rows that receive nothing are zero.
    weights : ndarray of shape (n_rows,), optional

    Returns
    -------
    ndarray of shape (n_groups, n_features), float32
    """
    w = np.ones(len(groups), dtype=np.float32) if weights is None else weights.astype(np.float32)
    m = sp.csr_matrix((w, (groups, np.arange(len(groups)))), shape=(n_groups, len(groups)))
    sums = np.asarray(m @ vectors, dtype=np.float32)
    totals = np.asarray(m.sum(axis=1)).ravel().astype(np.float32)
    return np.divide(sums, totals[:, None], out=np.zeros_like(sums), where=totals[:, None] > 0)


def fuse_blocks(first: npt.ArrayLike, behaviour: npt.ArrayLike, text_weight: float) -> FloatMatrix:
    """``[sqrt(w) a, sqrt(1 - w) b]`` of unit blocks, renormalised.

    A user missing one block (a zero row) gets the other at full weight, so a text-only
    user is not pulled toward the origin; with no behaviour columns the first block is
    returned alone.

    Parameters
    ----------
    first : ndarray of shape (n_users, d)
        The text block (aligned or frozen sentence vectors).
    behaviour : ndarray of shape (n_users, b)
    text_weight : float in [0, 1]

    Returns
    -------
    ndarray of shape (n_users, d + b), float32 (``(n_users, d)`` when ``b == 0``)
    """
    a = unit_rows(first)
    b = unit_rows(behaviour)
    if b.shape[1] == 0:
        return a
    w = float(text_weight)
    out = unit_rows(np.hstack([a * np.float32(np.sqrt(w)), b * np.float32(np.sqrt(1.0 - w))]))
    # a missing block means "unknown", not "zero": the row keeps the block it has, even at
    # w = 0 or 1 (where the weighted sum alone would leave it at the origin)
    has_a = np.any(a != 0, axis=1)
    has_b = np.any(b != 0, axis=1)
    only_a = has_a & ~has_b
    only_b = has_b & ~has_a
    out[only_a, : a.shape[1]] = a[only_a]
    out[only_a, a.shape[1] :] = 0.0
    out[only_b, : a.shape[1]] = 0.0
    out[only_b, a.shape[1] :] = b[only_b]
    return out
