"""Top-k lists and NDCG: the one implementation of each.

Bottom layer (no imports from stages): :func:`usergroups.evaluation.metrics.ndcg` (the
reported figures) and :func:`ndcg_at_k` (early stopping and every choice made on
validation data) rank and score with the same code, so a choice made on validation
is judged by the metric that is reported.

Conventions, shared with :mod:`usergroups.evaluation.metrics`: scores are floats and
``-inf`` marks an item that must not be recommended; a ranked list is a row of item
indices, best first, ``-1`` for "no item"; ties are broken towards the lower item index.

Examples
--------
>>> import numpy as np, scipy.sparse as sp
>>> scores = np.array([[0.9, 0.1, 0.5, 0.3]])
>>> targets = sp.csr_matrix(np.array([[0, 0, 1, 1]]))
>>> round(ndcg_at_k(scores, targets, None, k=2), 6)  # hit at rank 2 of 2 targets
0.386853
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from usergroups._lazy import lazy_module
from usergroups.errors import DataError
from usergroups.linalg import canonical_csr

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")  # scipy loads where it is used (issue 25)

__all__ = [
    "check_k",
    "check_relevant",
    "check_scores",
    "ndcg_at_k",
    "ndcg_of_lists",
    "ndcg_rows",
    "relevant_at",
    "top_items",
    "top_n",
    "topk",
]

FloatArray = npt.NDArray[np.float64]
IndexMatrix = npt.NDArray[np.int64]
IndexVector = npt.NDArray[np.int64]


def check_k(k: int) -> int:
    """``k`` as an int; a :class:`DataError` unless it is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise DataError(f"k must be a positive integer; got {k!r}")
    return int(k)


def check_scores(scores: npt.ArrayLike) -> FloatArray:
    """A 2-D float score matrix without NaN (``-inf`` allowed), else a :class:`DataError`."""
    s = np.asarray(scores)
    if s.ndim != 2:
        raise DataError(f"scores must be 2-D (n_users, n_items); got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.floating):
        raise DataError(
            f"scores must be a float array; got dtype {s.dtype}. Integer arrays are read as "
            "top-k index matrices by the metrics; cast scores with .astype(float)"
        )
    if np.isnan(s).any():
        n_bad = int(np.isnan(s).any(axis=1).sum())
        raise DataError(
            f"scores contain NaN in {n_bad} row(s); use -inf to mask items and fix the "
            "recommender that produced NaN"
        )
    return s


def check_relevant(
    relevant: sp.spmatrix | sp.sparray, n_users: int, *, allow_grades: bool
) -> sp.csr_matrix:
    """Relevant items as a canonical float64 csr copy (summed duplicates, no stored zeros).

    Parameters
    ----------
    relevant : sparse matrix of shape (n_users, n_items)
    n_users : int
        Rows the ranking has; ``relevant`` must have as many.
    allow_grades : bool
        Whether stored values are relevance grades (then they must be >= 0).

    Returns
    -------
    csr_matrix of shape (n_users, n_items), float64, sorted indices
    """
    if not sp.issparse(relevant):
        raise DataError(
            f"relevant must be a scipy sparse matrix (n_users, n_items); got "
            f"{type(relevant).__name__}. Wrap it with scipy.sparse.csr_matrix(...)"
        )
    rel = canonical_csr(relevant, np.float64)
    if rel.shape[0] != n_users:
        raise DataError(
            f"ranking has {n_users} rows but relevant has {rel.shape[0]}; row u of both "
            "must belong to the same user"
        )
    if allow_grades and rel.nnz and rel.data.min() < 0:
        raise DataError(
            f"relevance grades must be >= 0; got a minimum of {rel.data.min()}. Shift the grades"
        )
    return rel


def topk(scores: npt.ArrayLike, k: int) -> IndexMatrix:
    """Indices of the ``k`` highest scores of each row, best first.

    Uses :func:`numpy.argpartition` and then sorts only the candidates. Ties are
    broken towards the lower item index, so the result is deterministic (also at
    the cut-off: of several items tied with the ``k``-th score, the lowest
    indices are kept).

    Parameters
    ----------
    scores : array-like of shape (n_users, n_items)
        Float scores; ``-inf`` marks items that must come last. NaN is an error.
    k : int
        List length; clipped to ``n_items``.

    Returns
    -------
    ndarray of shape (n_users, min(k, n_items)), int64

    Examples
    --------
    >>> topk(np.array([[1.0, 3.0, 3.0, 2.0]]), 3).tolist()
    [[1, 2, 3]]
    """
    s = check_scores(scores)
    n, m = s.shape
    k = check_k(k)
    k = min(k, m)
    if n == 0 or k == 0:
        return np.empty((n, k), dtype=np.int64)
    neg = -s
    if k < m:
        part = np.argpartition(neg, k - 1, axis=1)[:, :k]
        # argpartition picks arbitrarily among items tied with the k-th best score;
        # take every strictly better item, then the lowest-indexed of the tied ones
        kth = np.take_along_axis(neg, part, axis=1).max(axis=1)[:, None]
        rows_b, cols_b = np.nonzero(neg < kth)
        rows_t, cols_t = np.nonzero(neg == kth)  # row-major: ascending index in each row
        n_better = np.bincount(rows_b, minlength=n)
        n_tied = np.bincount(rows_t, minlength=n)
        tied_pos = np.arange(len(rows_t)) - (np.cumsum(n_tied) - n_tied)[rows_t]
        take = tied_pos < (k - n_better)[rows_t]
        rows = np.concatenate([rows_b, rows_t[take]])
        cols = np.concatenate([cols_b, cols_t[take]])
    else:
        rows, cols = np.divmod(np.arange(n * m, dtype=np.int64), m)
    order = np.lexsort((cols, neg[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    counts = np.bincount(rows, minlength=n)
    starts = np.cumsum(counts) - counts
    position = np.arange(len(rows)) - starts[rows]
    return cols[position < k].reshape(n, k).astype(np.int64, copy=False)


def top_n(scores: npt.ArrayLike, n: int) -> tuple[IndexMatrix, npt.NDArray[np.floating]]:
    """Indices and scores of the ``n`` best entries of each row, best first (:func:`topk`).

    What recommenders return: entries equal to ``-inf`` (excluded items) come back as
    index ``-1`` with score ``-inf``, and a NaN score ranks like an excluded item. Unlike
    :func:`top_items`, the lists are ``min(n, n_items)`` long, not padded.

    Parameters
    ----------
    scores : array-like of shape (n_rows, n_items)
        A 1-D input is one row; integer scores are read as floats.
    n : int
        List length (0 gives empty lists).

    Returns
    -------
    indices : ndarray of shape (n_rows, min(n, n_items)), int64
    values : ndarray of shape (n_rows, min(n, n_items))
        The scores, in the input's float precision.

    Examples
    --------
    >>> idx, values = top_n(np.array([[0.5, -np.inf, 2.0, 0.5]]), 3)
    >>> idx.tolist(), values.tolist()
    ([[2, 0, 3]], [[2.0, 0.5, 0.5]])
    """
    s = np.atleast_2d(np.asarray(scores))
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    if s.ndim != 2:
        raise DataError(f"scores must be 2-D (n_rows, n_items); got shape {s.shape}")
    if np.isnan(s).any():
        s = np.where(np.isnan(s), -np.inf, s)
    width = min(int(n), s.shape[1])
    if width <= 0:
        return np.empty((s.shape[0], 0), dtype=np.int64), np.empty((s.shape[0], 0), s.dtype)
    idx = topk(s, width)
    values = np.take_along_axis(s, idx, axis=1)
    return np.where(np.isneginf(values), -1, idx).astype(np.int64, copy=False), values


def top_items(scores: npt.ArrayLike, k: int) -> IndexMatrix:
    """:func:`topk` with ``-1`` where the item is masked (``-inf``), padded to ``k`` columns.

    Parameters
    ----------
    scores : array-like of shape (n_users, n_items)
    k : int

    Returns
    -------
    ndarray of shape (n_users, k), int64

    Examples
    --------
    >>> top_items(np.array([[0.5, -np.inf, 2.0]]), 4).tolist()
    [[2, 0, -1, -1]]
    """
    s = check_scores(scores)
    k = check_k(k)
    idx, _ = top_n(s, k)
    if idx.shape[1] < k:
        idx = np.hstack([idx, np.full((idx.shape[0], k - idx.shape[1]), -1, dtype=np.int64)])
    return idx


def relevant_at(
    idx: IndexMatrix, rel: sp.csr_matrix, values: FloatArray
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """Whether each ranked item is relevant, and its value, without densifying ``rel``.

    Parameters
    ----------
    idx : ndarray of shape (n_users, k), int
        Ranked lists; ``-1`` is no item.
    rel : csr_matrix of shape (n_users, n_items)
        Canonical (see :func:`check_relevant`).
    values : ndarray of shape (rel.nnz,)
        A value per stored entry of ``rel`` (e.g. its gain).

    Returns
    -------
    found : ndarray of shape (n_users, k), bool
    value : ndarray of shape (n_users, k), float64
        0 where not found.
    """
    n, k = idx.shape
    m = rel.shape[1]
    if rel.nnz == 0 or idx.size == 0:
        return np.zeros((n, k), dtype=bool), np.zeros((n, k))
    rel_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(rel.indptr))
    rel_keys = rel_rows * m + rel.indices.astype(np.int64)  # sorted: csr rows, sorted indices
    query = np.arange(n, dtype=np.int64)[:, None] * m + idx
    pos = np.minimum(np.searchsorted(rel_keys, query), len(rel_keys) - 1)
    found = (idx >= 0) & (rel_keys[pos] == query)
    return found, np.where(found, values[pos], 0.0)


def ndcg_of_lists(
    idx: IndexMatrix, rel: sp.csr_matrix, k: int, gains: FloatArray | None = None
) -> FloatArray:
    """NDCG@k of each ranked list: ``DCG@k / IDCG@k``, ``DCG = sum(gain_i / log2(i + 1))``.

    The ideal DCG sums the ``min(k, R)`` best gains of the user (``R`` relevant items).

    Parameters
    ----------
    idx : ndarray of shape (n_users, k'), int
        Ranked lists, best first; ``-1`` is no item. Columns past ``k`` are ignored.
    rel : csr_matrix of shape (n_users, n_items)
        Relevant items, canonical (see :func:`check_relevant`).
    k : int
        Cut-off.
    gains : ndarray of shape (rel.nnz,), optional
        Gain of every stored entry of ``rel``, >= 0; ``None`` is binary (gain 1).

    Returns
    -------
    ndarray of shape (n_users,), float64
        In [0, 1]; NaN for users with no relevant item.
    """
    idx = idx[:, :k]
    n_rel = np.diff(rel.indptr)
    values = np.ones(rel.nnz, dtype=np.float64) if gains is None else gains
    found, grade = relevant_at(idx, rel, values)
    g = np.where(found, grade, 0.0)
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = (g * discount[: g.shape[1]]).sum(axis=1)
    if gains is None:
        cumulative = np.concatenate(([0.0], np.cumsum(discount)))
        idcg = cumulative[np.minimum(n_rel, k)]
    else:
        idcg = _ideal_dcg(rel, values, discount, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)
    return np.where(n_rel > 0, out, np.nan)


def ndcg_rows(
    scores: npt.ArrayLike,
    targets: sp.spmatrix | sp.sparray,
    seen: sp.spmatrix | sp.sparray | None,
    k: int = 10,
) -> FloatArray:
    """Binary NDCG@k of each score row that has a target, seen items masked.

    The per-user values behind :func:`ndcg_at_k` (their mean), for paired comparisons of
    candidates. A NaN score ranks like a masked item, so a diverging model scores low
    instead of stopping a fit.

    Parameters
    ----------
    scores : array-like of shape (n_users, n_items)
    targets : sparse matrix of shape (n_users, n_items)
        Held-out items of each row (any stored non-zero).
    seen : sparse matrix of shape (n_users, n_items) or None
        Items never to recommend (``-inf``), e.g. training items.
    k : int, default=10

    Returns
    -------
    ndarray of shape (n_with_target,), float64
        In [0, 1], rows without a target left out.

    Examples
    --------
    >>> scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1]])
    >>> ndcg_rows(scores, sp.csr_matrix([[1, 0, 0], [0, 0, 0]]), None, k=2).tolist()
    [1.0]
    """
    s = np.asarray(scores)
    if s.ndim != 2:
        raise DataError(f"scores must be 2-D (n_users, n_items); got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    k = check_k(k)
    rel = check_relevant(targets, s.shape[0], allow_grades=False)
    n_rel = np.diff(rel.indptr)
    if not (n_rel > 0).any():
        return np.zeros(0, dtype=np.float64)
    # issue 25: no ranking of every item; each target's place is the number of items
    # ahead of it (a higher score, or the same score and a lower index, as topk breaks
    # ties), which is all binary NDCG needs: a 20th of the time of sorting the rows
    rows = np.repeat(np.arange(s.shape[0]), n_rel)
    place = _places(s, rows, rel.indices, None if seen is None else sp.csr_matrix(seen))
    found = place < k
    gain = np.where(found, 1.0 / np.log2(np.where(found, place, 0) + 2.0), 0.0)
    # summed best place first, as ndcg_of_lists sums a ranked list
    order = np.lexsort((place, rows))
    dcg = np.bincount(rows[order], weights=gain[order], minlength=s.shape[0])
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    idcg = np.concatenate(([0.0], np.cumsum(discount)))[np.minimum(n_rel, k)]
    has = n_rel > 0
    return np.asarray(dcg[has] / idcg[has], dtype=np.float64)


_PLACE_CELLS = 1 << 22
"""Scores compared at once by :func:`_places` (a few bytes each)."""


def _places(
    s: npt.NDArray[Any], rows: IndexVector, cols: IndexVector, seen: sp.csr_matrix | None
) -> npt.NDArray[np.int64]:
    """The 0-based place of item ``cols[e]`` in row ``rows[e]``'s ranking (:func:`topk`'s
    order, seen items and NaN masked); a huge place where the item itself is masked."""
    n_items = s.shape[1]
    target = s[rows, cols].astype(np.float64)
    masked = ~(target > -np.inf)  # -inf or NaN: never in a list
    if seen is not None:
        masked |= np.asarray(seen[rows, cols]).ravel() != 0
    place = np.zeros(len(rows), dtype=np.int64)
    index = np.arange(n_items)
    step = max(1, _PLACE_CELLS // max(n_items, 1))
    for start in range(0, len(rows), step):
        part = slice(start, start + step)
        block = s[rows[part]]
        t = target[part, None].astype(s.dtype)
        # NaN compares false: a NaN item is never ahead, as a masked one
        ahead = (block > t) | ((block == t) & (index[None, :] < cols[part, None]))
        place[part] = ahead.sum(axis=1)
        if seen is not None:
            r, c = seen[rows[part]].nonzero()
            place[part] -= np.bincount(r, weights=ahead[r, c], minlength=len(block)).astype(
                np.int64
            )
    return np.where(masked, np.iinfo(np.int64).max // 2, place)


def ndcg_at_k(
    scores: npt.ArrayLike,
    targets: sp.spmatrix | sp.sparray,
    seen: sp.spmatrix | sp.sparray | None,
    k: int = 10,
) -> float:
    """Mean binary NDCG@k of score rows against target rows, seen items masked: the mean
    of :func:`ndcg_rows`.

    Rows without a target are left out (0.0 when no row has one). The parameters are
    :func:`ndcg_rows`'s.

    Returns
    -------
    float in [0, 1]
    """
    values = ndcg_rows(scores, targets, seen, k)
    return float(np.mean(values)) if len(values) else 0.0


def _ideal_dcg(rel: sp.csr_matrix, values: FloatArray, discount: FloatArray, k: int) -> FloatArray:
    n = rel.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(rel.indptr))
    order = np.lexsort((-values, rows))
    position = np.arange(len(order)) - rel.indptr[rows[order]]
    keep = position < k
    weights = values[order][keep] * discount[position[keep]]
    return np.bincount(rows[order][keep], weights=weights, minlength=n).astype(np.float64)
