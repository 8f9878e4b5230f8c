"""Row normalisation (plain and popularity-damped), pooling, block fusion, the EASE solve,
item-kNN and canonical sparse copies.

One implementation of each, in the bottom layer (no imports from stages), so every stage,
the pipeline, the service and the Spark engine share the same arithmetic.

Examples
--------
>>> import numpy as np
>>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
[[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt

from usergroups._lazy import lazy_module
from usergroups._typing import FloatMatrix
from usergroups.errors import ConfigError, DataError

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")  # scipy loads where it is used (issue 25)

__all__ = [
    "BLOCK_CELLS",
    "DEFAULT_TEXT_WEIGHT",
    "canonical_csr",
    "csr_weighted_rows",
    "damped_unit_rows",
    "ease_weights",
    "fuse_blocks",
    "item_knn_weights",
    "mean_rows",
    "nearest_rows",
    "pool_rows",
    "unit_rows",
]

Precision = Literal["float32", "float64"]

# rows normalised at once: bounds the (rows x features) temporary of the norm, which for
# 1M users x 448 features would otherwise be another 1.8 GB
_BLOCK_ROWS = 16_384

BLOCK_CELLS = 1 << 22
"""Entries of one block of an item-item computation (the EASE Gram matrix, the item-kNN
co-occurrence counts): about 32 MB of float64, bounding the temporaries beside the result."""


@overload
def unit_rows(x: npt.ArrayLike, dtype: Literal["float32"] = ...) -> FloatMatrix: ...
@overload
def unit_rows(x: npt.ArrayLike, dtype: Literal["float64"]) -> npt.NDArray[np.float64]: ...
def unit_rows(x: npt.ArrayLike, dtype: Precision = "float32") -> npt.NDArray[Any]:
    """Rows scaled to unit length; all-zero rows stay zero.

    Always a new array; the norms are taken block by block, so memory stays near the size
    of the output.

    Parameters
    ----------
    x : array-like of shape (n_rows, n_features)
        A 1-D input is one row.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the computation and of the result.

    Returns
    -------
    ndarray of shape (n_rows, n_features), ``dtype``
        ``(1, n_features)`` for a 1-D input.

    Examples
    --------
    >>> unit_rows([0.0, 2.0], dtype="float64").tolist()
    [[0.0, 1.0]]
    """
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype={dtype!r} is not one of 'float32', 'float64'")
    arr = np.asarray(x, dtype=dtype)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    out = np.zeros_like(arr)
    for start in range(0, len(arr), _BLOCK_ROWS):
        block = arr[start : start + _BLOCK_ROWS]
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        np.divide(block, norms, out=out[start : start + _BLOCK_ROWS], where=norms > 0)
    return out


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
    return mean_rows(m, vectors)


def mean_rows(members: sp.spmatrix | sp.sparray, vectors: npt.ArrayLike) -> FloatMatrix:
    """Weighted mean of the rows of ``vectors`` that each row of ``members`` selects.

    Parameters
    ----------
    members : sparse matrix of shape (n_out, n_rows)
        Row ``u`` holds the weight of every vector in ``u``'s mean (e.g. a user x item
        interaction matrix, or a user x text membership matrix).
    vectors : array-like of shape (n_rows, n_features)

    Returns
    -------
    ndarray of shape (n_out, n_features), float32
        Zero rows where ``members`` selects nothing.

    Examples
    --------
    >>> m = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    >>> mean_rows(m, np.array([[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]])).tolist()
    [[2.0, 1.0], [0.0, 0.0]]
    """
    sums = np.asarray(members @ vectors, dtype=np.float32)
    totals = np.asarray(members.sum(axis=1)).ravel().astype(np.float32)
    return np.divide(sums, totals[:, None], out=np.zeros_like(sums), where=totals[:, None] > 0)


DEFAULT_TEXT_WEIGHT = 0.5
"""The text weight of :func:`fuse_blocks` when ``user_vectors.text_weight = "auto"`` cannot be
chosen on validation data (too few validation users, the Spark engine): text and behaviour
weigh equally."""


def damped_unit_rows(x: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """Binary interactions with columns damped by 1/sqrt(popularity), rows unit length.

    Damping keeps the first SVD components from being "how many popular items did you
    consume", which would group users by activity instead of taste. The behaviour SVD is
    fitted on this matrix and new users are projected from it, so both use this function.

    Parameters
    ----------
    x : sparse matrix of shape (n_users, n_items)
        Any stored non-zero counts as one interaction.

    Returns
    -------
    csr_matrix of shape (n_users, n_items), float32
        A new matrix; all-zero rows stay zero.

    Examples
    --------
    >>> damped_unit_rows(sp.csr_matrix([[1, 1], [0, 1]])).toarray().astype(float).round(3).tolist()
    [[0.816, 0.577], [0.0, 1.0]]
    """
    binary = sp.csr_matrix(x, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    pop = np.asarray(binary.sum(axis=0)).ravel()
    damp = 1.0 / np.sqrt(np.maximum(pop, 1.0))
    xn = sp.csr_matrix(binary.multiply(damp[None, :]), dtype=np.float32)
    norms = np.sqrt(np.asarray(xn.multiply(xn).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ xn)


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


def nearest_rows(
    x: npt.ArrayLike, centroids: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], FloatMatrix]:
    """The placement rule: each row's most cosine-similar centroid, and every similarity.

    One rule for every place a vector is put into a group (the fit's confidences, a new
    user, a user changed by events, a refit, Spark, each fine partition), so the group a
    user is placed in and the confidence reported for it always describe the same group.

    Parameters
    ----------
    x : array-like of shape (n_rows, n_features)
    centroids : array-like of shape (n_groups, n_features)

    Returns
    -------
    labels : ndarray of shape (n_rows,), int64
        The most similar centroid (ties to the lower index); -1 for an all-zero row, which
        is nowhere, and for every row when there are no centroids.
    similarities : ndarray of shape (n_rows, n_groups), float32
        Cosine similarities (0 for all-zero rows).

    Examples
    --------
    >>> labels, sims = nearest_rows([[0.1, 0.9], [5.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 2.0]])
    >>> labels.tolist()
    [1, 0, -1]
    """
    a = unit_rows(x)
    c = unit_rows(centroids)
    if c.shape[0] == 0 or c.shape[1] != a.shape[1]:
        if c.shape[0] and c.shape[1] != a.shape[1]:
            raise DataError(
                f"vectors have {a.shape[1]} features and centroids {c.shape[1]}; place vectors "
                "built the way the model built its own"
            )
        return np.full(len(a), -1, dtype=np.int64), np.zeros((len(a), 0), dtype=np.float32)
    sims = np.asarray(a @ c.T, dtype=np.float32)
    labels = np.argmax(sims, axis=1).astype(np.int64)
    labels[~np.any(a != 0, axis=1)] = -1
    return labels, sims


def ease_weights(x: sp.spmatrix | sp.sparray, l2: float) -> npt.NDArray[np.float64]:
    """EASE's item-item weights (Steck 2019), in closed form.

    ``B = I - P diag(1 / diag(P))`` with ``P = (XᵀX + l2·I)⁻¹``, so ``diag(B) = 0``: an
    item never recommends itself. Any stored non-zero of ``x`` counts as one interaction.

    Memory: one ``n_items²`` float64 matrix at the peak (``8 · n_items²`` bytes: 800 MB for
    10,000 items) plus blocks of :data:`BLOCK_CELLS`. The Gram matrix is built block by block
    from sparse products, then inverted in place by Cholesky (``XᵀX + l2·I`` is symmetric
    positive definite), where ``np.linalg.inv`` held three matrices of that size.

    Parameters
    ----------
    x : sparse matrix of shape (n_users, n_items)
        Implicit feedback.
    l2 : float
        L2 regularisation, > 0.

    Returns
    -------
    ndarray of shape (n_items, n_items), float64
        ``scores = X_u @ B``.

    Examples
    --------
    >>> b = ease_weights(sp.csr_matrix([[1, 1, 0], [0, 1, 1]]), l2=1.0)
    >>> b.shape, float(abs(np.diag(b)).max())
    ((3, 3), 0.0)
    """
    from scipy.linalg import lapack

    if not float(l2) > 0:
        raise ConfigError(f"EASE needs l2 > 0 (the Gram matrix is singular otherwise); got {l2}")
    if not sp.issparse(x):
        raise DataError(
            f"ease_weights expects a scipy sparse user x item matrix; got {type(x).__name__}"
        )
    binary = canonical_csr(x, np.float64)
    binary.data[:] = 1.0
    n_items = binary.shape[1]
    # Fortran order, so LAPACK works on this very buffer (overwrite_a); the matrix is
    # symmetric, so rows written here are also its columns
    gram = np.zeros((n_items, n_items), dtype=np.float64, order="F")
    by_item = binary.tocsc()
    step = max(1, BLOCK_CELLS // max(n_items, 1))
    for start in range(0, n_items, step):
        stop = min(start + step, n_items)
        gram[:, start:stop] = (binary.T @ by_item[:, start:stop]).toarray()
    gram[np.diag_indices(n_items)] += float(l2)
    # the lower factor: OpenBLAS's upper one was 5-10x slower here (n = 3,000)
    factor, info = lapack.dpotrf(gram, lower=True, clean=False, overwrite_a=True)
    if info != 0:
        raise DataError(f"EASE: the Gram matrix + l2·I is not positive definite (info={info})")
    p, info = lapack.dpotri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise DataError(f"EASE: inverting the Gram matrix failed (info={info})")
    _mirror_lower(p, step)
    # b = p / -diag(p) column by column, in place
    p /= -np.diag(p).copy()[None, :]
    p[np.diag_indices(n_items)] = 0.0
    return p


def _mirror_lower(a: npt.NDArray[np.float64], step: int) -> None:
    """Copy the lower triangle of square ``a`` onto its upper triangle, in place, by blocks
    (``dpotri`` fills only the lower triangle)."""
    n = a.shape[0]
    for start in range(0, n, step):
        stop = min(start + step, n)
        a[:start, start:stop] = a[start:stop, :start].T
        block = a[start:stop, start:stop]
        a[start:stop, start:stop] = np.tril(block) + np.tril(block, -1).T


def item_knn_weights(
    x: sp.spmatrix | sp.sparray,
    n_neighbors: int,
    *,
    alpha: float = 0.5,
    block_cells: int | None = None,
    dtype: type[np.floating[Any]] = np.float32,
) -> sp.csr_matrix:
    """Item-item (asymmetric) cosine similarities, the ``n_neighbors`` best per item.

    Row ``i`` holds item ``i``'s ``n_neighbors`` most similar items ``j``, with
    ``W[i, j] = c_ij / (c_i^alpha · c_j^(1 - alpha))`` (``c_ij``: users who have both,
    ``c_i``: users who have ``i``); ``alpha = 0.5`` is the plain cosine, other values the
    asymmetric cosine of Aiolli (2013). ``scores = X_u @ W`` sums, over the user's items,
    the similarities of their neighbours: the item-based top-N of Deshpande & Karypis
    (2004), whose candidates are the neighbours of the items a user has, so a user's scores
    have at most ``n_items_of_user · n_neighbors`` non-zeros. ``W[i, i] = 0``, items that
    share no user are never neighbours, and ties go to the lower item index.

    The co-occurrence counts ``XᵀX`` are computed a block of items at a time, the block
    sized so that its sparse product holds at most ``block_cells`` entries (an upper bound
    from the users' history lengths), and only the top ``n_neighbors`` of each item are
    kept: memory is O(nnz(x) + block_cells + n_items · n_neighbors), never ``n_items²``.

    Parameters
    ----------
    x : sparse matrix of shape (n_users, n_items)
        Implicit feedback; any stored non-zero counts as one interaction.
    n_neighbors : int
        Neighbours kept per item, >= 1.
    alpha : float in [0, 1], default 0.5
    block_cells : int, optional
        Bound on the entries of one block's product (default :data:`BLOCK_CELLS`).
    dtype : numpy floating type, default float32
        Precision of the stored similarities (computed in float64 either way).

    Returns
    -------
    csr_matrix of shape (n_items, n_items), ``dtype``
        Row ``i`` holds item ``i``'s neighbours. With ``alpha = 0.5`` (symmetric) the
        transpose holds in column ``j`` the items most similar to ``j``: the "neighbours
        of the target" form of :class:`usergroups.evaluation.ItemKNNRecommender`.

    Examples
    --------
    >>> w = item_knn_weights(sp.csr_matrix([[1, 1, 0], [1, 1, 1]]), n_neighbors=1)
    >>> w.toarray().astype(float).round(3).tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.707, 0.0, 0.0]]

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 58 lines.
    """
    if n_neighbors < 1:
        raise ConfigError(f"item_knn_weights: n_neighbors must be >= 1, got {n_neighbors}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"item_knn_weights: alpha must be in [0, 1], got {alpha}")
    if not sp.issparse(x):
        raise DataError(
            f"item_knn_weights expects a scipy sparse user x item matrix; got {type(x).__name__}"
        )
    budget = int(block_cells or BLOCK_CELLS)
    binary = canonical_csr(x, np.float32)
    binary.data[:] = 1.0
    n_items = binary.shape[1]
    by_item = binary.tocsc()
    count = np.diff(by_item.indptr).astype(np.float64)
    history = np.diff(binary.indptr).astype(np.float64)
    # entries item j's row of XᵀX can have at most: the histories of j's users, summed
    work = np.asarray(binary.T @ history).ravel()
    ends = np.cumsum(work)
    rows_out: list[npt.NDArray[np.int64]] = []
    cols_out: list[npt.NDArray[np.int64]] = []
    vals_out: list[npt.NDArray[Any]] = []
    start = 0
    while start < n_items:
        base = ends[start - 1] if start else 0.0
        stop = max(start + 1, int(np.searchsorted(ends, base + budget, side="right")))
        stop = min(stop, n_items)
        # rows: the block's items i; columns: candidate neighbours j
        co = sp.csr_matrix(by_item[:, start:stop].T @ binary)
        co.sum_duplicates()
        item = np.repeat(np.arange(start, stop), np.diff(co.indptr))
        other = co.indices.astype(np.int64)
        keep = other != item
        item, other = item[keep], other[keep]
        # the ratio of exact counts: pairs with equal counts tie exactly (lower index wins)
        sim = co.data[keep].astype(np.float64) / (
            count[item] ** alpha * count[other] ** (1.0 - alpha)
        )
        order = np.lexsort((other, -sim, item))
        item, other, sim = item[order], other[order], sim[order]
        first = np.searchsorted(item, np.arange(start, stop))
        rank = np.arange(len(item)) - first[item - start]
        top = rank < n_neighbors
        rows_out.append(item[top])
        cols_out.append(other[top])
        vals_out.append(sim[top].astype(dtype))
        start = stop
    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, np.int64)
    cols = np.concatenate(cols_out) if cols_out else np.zeros(0, np.int64)
    vals = np.concatenate(vals_out) if vals_out else np.zeros(0, dtype)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items), dtype=dtype)


def canonical_csr(x: sp.spmatrix | sp.sparray, dtype: type[np.floating[Any]]) -> sp.csr_matrix:
    """A csr copy of ``x`` with duplicates summed, stored zeros dropped and indices sorted.

    Parameters
    ----------
    x : sparse matrix of shape (n_rows, n_cols)
    dtype : numpy floating type

    Returns
    -------
    csr_matrix of shape (n_rows, n_cols); never shares memory with ``x``
    """
    out = sp.csr_matrix(x, dtype=dtype, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    out.sort_indices()
    return out


GATHER_BLOCK_ENTRIES = 1 << 20
"""Stored entries :func:`csr_weighted_rows` gathers at once, about: bounds its temporaries
to some 30 MB whatever the number of rows asked."""


def csr_weighted_rows(
    indptr: npt.ArrayLike,
    indices: npt.ArrayLike,
    data: npt.ArrayLike,
    n_cols: int,
    picks: Sequence[npt.ArrayLike],
    weights: Sequence[npt.ArrayLike],
) -> FloatMatrix:
    """``R @ W`` for a matrix ``W`` given by its CSR arrays and sparse rows ``R`` given by
    their column indices (``picks[i]``, without repeats) and values (``weights[i]``).

    Row ``i`` is ``sum_j weights[i][j] * W[picks[i][j]]``: the picked rows of ``W`` are
    gathered from the CSR arrays and added one after another, each in its stored order,
    with products in ``W``'s precision (at least float32). That is how scipy.sparse's
    product of a CSR row by a CSR matrix adds them, so the sums are the same bits, without
    building sparse matrices or scipy's set-up (one new user's spread, one known user's
    personal scores: issue 25). Temporaries are bounded by :data:`GATHER_BLOCK_ENTRIES`.

    Returns
    -------
    ndarray of shape (len(picks), n_cols), float32

    Examples
    --------
    >>> w = (np.array([0, 2, 3]), np.array([0, 2, 1]), np.array([1.0, 2.0, 3.0], np.float32))
    >>> csr_weighted_rows(*w, 3, [np.array([1, 0])], [np.array([1.0, 0.5])]).tolist()
    [[0.5, 3.0, 1.0]]
    """
    ptr = np.asarray(indptr, dtype=np.int64)
    cols = np.asarray(indices)
    values = np.asarray(data)
    dtype = np.result_type(np.float32, values.dtype)
    n = len(picks)
    out = np.zeros((n, int(n_cols)), dtype=dtype)
    flat = out.reshape(-1)
    counts = np.array([np.size(p) for p in picks], dtype=np.int64)
    if n == 0 or counts.sum() == 0:
        return np.asarray(out, dtype=np.float32)
    rows = np.concatenate([np.asarray(p, dtype=np.int64) for p in picks])
    scale = np.concatenate([np.asarray(w, dtype=np.float32) for w in weights]).astype(dtype)
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    lengths = ptr[rows + 1] - ptr[rows]
    ends = np.cumsum(lengths)
    # blocks of picked rows holding about GATHER_BLOCK_ENTRIES stored entries each
    step = GATHER_BLOCK_ENTRIES
    cuts = np.searchsorted(ends, np.arange(step, int(ends[-1]), step))
    for block in np.split(np.arange(len(rows)), np.unique(cuts)):
        if len(block) == 0:
            continue
        size = lengths[block]
        total = int(size.sum())
        if total == 0:
            continue
        # positions of every gathered entry in the CSR arrays: each picked row's run of
        # entries, one run after another, in the order of the picks
        runs = np.cumsum(size) - size
        pos = np.repeat(ptr[rows[block]] - runs, size) + np.arange(total)
        terms = np.asarray(values[pos], dtype=dtype) * np.repeat(scale[block], size)
        target = np.repeat(owner[block] * int(n_cols), size) + np.asarray(cols[pos], np.int64)
        # ufunc.at adds in input order, entry by entry (repeated targets accumulate)
        np.add.at(flat, target, terms)
    return np.asarray(out, dtype=np.float32)
