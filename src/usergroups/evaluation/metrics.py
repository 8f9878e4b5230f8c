"""Ranking metrics as pure, vectorised array functions.

Every accuracy metric takes a *ranking* and the *relevant* items:

``ranking``
    Either a float score matrix of shape (n_users, n_items), where items that must
    not be recommended (e.g. training items) are already ``-inf``, or an integer
    top-k index matrix of shape (n_users, k) as returned by :func:`topk`, best item
    first; ``-1`` entries mean "no item" (a list shorter than ``k``). The dtype
    decides: floating arrays are scores, integer arrays are indices.
``relevant``
    A sparse matrix of shape (n_users, n_items) whose stored non-zero entries are
    the relevant items of each user (row ``u`` of ``relevant`` belongs to row ``u``
    of ``ranking``). Values are relevance grades; only :func:`ndcg` with
    ``gains="linear"`` or ``"exponential"`` reads them, everything else treats any
    stored non-zero as relevant.

Accuracy metrics return one value per user, ``ndarray of shape (n_users,)``,
float64. A user with no relevant item gets ``NaN`` (the metric is undefined for
them): average with :func:`numpy.nanmean` or, better, evaluate only users that
have targets, as :func:`usergroups.evaluation.evaluate_recommender` does. The
mean over users of :func:`average_precision` is MAP@k and the mean of
:func:`reciprocal_rank` is MRR.

Definitions (``hits_i`` = 1 if the item at rank ``i`` (1-based) is relevant,
``R`` = number of relevant items of the user):

- ``hit_rate``: 1 if any of the top ``k`` is relevant.
- ``precision``: ``sum(hits) / k`` (always divided by ``k``, even when ``R < k``).
- ``recall``: ``sum(hits) / R``, the standard recall. Some libraries divide by
  ``min(k, R)`` instead (a "truncated recall" that reaches 1 whenever the list is
  full of hits); this module does not.
- ``ndcg``: ``DCG@k / IDCG@k`` with ``DCG = sum(gain_i / log2(i + 1))`` and the
  ideal DCG computed over the ``min(k, R)`` best gains of the user.
- ``average_precision``: AP@k ``= sum_i hits_i * precision@i / min(k, R)``, so a
  list that puts ``min(k, R)`` relevant items on top scores 1. (Some libraries,
  e.g. ranx and trec_eval, divide by ``R``; the two agree when ``R <= k``.)
- ``reciprocal_rank``: ``1 / rank`` of the first relevant item, 0 if none. Given
  scores and ``k=None`` the rank is taken in the *full* ranking over all unmasked
  items (this is the "MRR" that :func:`evaluate_recommender` reports); with ``k``
  or an index matrix it is RR@k (0 when the first hit is below ``k``).

Ties in scores are broken towards the lower item index everywhere, so every
metric is deterministic.

Examples
--------
>>> import numpy as np, scipy.sparse as sp
>>> scores = np.array([[0.9, 0.1, 0.5, 0.3]])
>>> relevant = sp.csr_matrix(np.array([[0, 0, 1, 1]]))
>>> topk(scores, 2).tolist()
[[0, 2]]
>>> float(ndcg(scores, relevant, 2)[0])  # hit at rank 2: (1/log2 3) / (1 + 1/log2 3)
0.38685280723454163
>>> float(recall(scores, relevant, 2)[0]), float(precision(scores, relevant, 2)[0])
(0.5, 0.5)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups.errors import DataError

__all__ = [
    "average_popularity",
    "average_precision",
    "catalogue_coverage",
    "hit_rate",
    "intra_list_diversity",
    "ndcg",
    "precision",
    "recall",
    "reciprocal_rank",
    "recommended_items",
    "topk",
]

FloatArray = npt.NDArray[np.float64]
IndexMatrix = npt.NDArray[np.int64]
Gains = Literal["binary", "linear", "exponential"]


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
    s = _check_scores(scores)
    n, m = s.shape
    k = _check_k(k)
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


def hit_rate(ranking: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int) -> FloatArray:
    """HR@k: 1 if at least one of the top ``k`` items is relevant, else 0.

    Parameters
    ----------
    ranking : ndarray of shape (n_users, n_items) float or (n_users, k') int
        Scores (masked items ``-inf``) or top-k indices; see the module docstring.
    relevant : sparse matrix of shape (n_users, n_items)
        Relevant items per user (stored non-zeros).
    k : int
        Cut-off.

    Returns
    -------
    ndarray of shape (n_users,)
        NaN for users with no relevant item.
    """
    hits, n_rel = _binary_hits(ranking, relevant, k)
    return _undefined_without_relevant(hits.any(axis=1).astype(np.float64), n_rel)


def precision(ranking: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int) -> FloatArray:
    """Precision@k: relevant items among the top ``k``, divided by ``k``.

    Parameters and return value as in :func:`hit_rate`.
    """
    hits, n_rel = _binary_hits(ranking, relevant, k)
    return _undefined_without_relevant(hits.sum(axis=1) / float(k), n_rel)


def recall(ranking: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int) -> FloatArray:
    """Recall@k: relevant items among the top ``k``, divided by the number of relevant items.

    This is the standard recall (denominator ``|relevant|``), not the truncated
    variant that divides by ``min(k, |relevant|)``. Parameters and return value as
    in :func:`hit_rate`.
    """
    hits, n_rel = _binary_hits(ranking, relevant, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _undefined_without_relevant(hits.sum(axis=1) / n_rel, n_rel)


def ndcg(
    ranking: npt.ArrayLike,
    relevant: sp.spmatrix | sp.sparray,
    k: int,
    *,
    gains: Gains = "binary",
) -> FloatArray:
    """NDCG@k, binary or graded.

    ``DCG@k = sum_{i=1..k} gain_i / log2(i + 1)``; the ideal DCG sorts the user's
    relevance grades in decreasing order and sums over the first ``min(k, R)``.

    Parameters
    ----------
    ranking : ndarray of shape (n_users, n_items) float or (n_users, k') int
        Scores (masked items ``-inf``) or top-k indices.
    relevant : sparse matrix of shape (n_users, n_items)
        Relevant items; the stored values are the grades for graded gains and must be >= 0.
    k : int
        Cut-off.
    gains : {"binary", "linear", "exponential"}
        ``"binary"``: gain 1 for every relevant item; ``"linear"``: gain = grade
        (Järvelin & Kekäläinen; ranx's ``ndcg``); ``"exponential"``: gain =
        ``2**grade - 1`` (Burges et al.; ranx's ``ndcg_burges``).

    Returns
    -------
    ndarray of shape (n_users,)
        In [0, 1]; NaN for users with no relevant item.
    """
    if gains not in ("binary", "linear", "exponential"):
        raise DataError(
            f"gains={gains!r} is not one of 'binary', 'linear', 'exponential'; pick one of them"
        )
    k = _check_k(k)
    idx = _as_index_matrix(ranking, k, _n_items(relevant))
    rel = _check_relevant(relevant, idx.shape[0], allow_grades=gains != "binary")
    n_rel = np.diff(rel.indptr)
    values = rel.data.astype(np.float64)
    if gains == "binary":
        values = np.ones_like(values)
    elif gains == "exponential":
        values = np.exp2(values) - 1.0
    found, grade = _lookup(idx, rel, values)
    g = np.where(found, grade, 0.0)
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = (g * discount[: g.shape[1]]).sum(axis=1)
    if gains == "binary":
        cumulative = np.concatenate(([0.0], np.cumsum(discount)))
        idcg = cumulative[np.minimum(n_rel, k)]
    else:
        idcg = _ideal_dcg(rel, values, discount, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)
    return _undefined_without_relevant(out, n_rel)


def average_precision(
    ranking: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int
) -> FloatArray:
    """AP@k; its mean over users is MAP@k.

    ``AP@k = sum_{i=1..k} hits_i * precision@i / min(k, R)``. A perfect list scores 1.
    Libraries that divide by ``R`` (ranx, trec_eval) give ``AP * min(k, R) / R``.

    Parameters and return value as in :func:`hit_rate`.
    """
    hits, n_rel = _binary_hits(ranking, relevant, k)
    h = hits.astype(np.float64)
    precision_at = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (h * precision_at).sum(axis=1) / np.minimum(n_rel, k)
    return _undefined_without_relevant(out, n_rel)


def reciprocal_rank(
    ranking: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int | None = None
) -> FloatArray:
    """Reciprocal rank of the first relevant item; its mean over users is MRR.

    Parameters
    ----------
    ranking : ndarray of shape (n_users, n_items) float or (n_users, k') int
        Scores (masked items ``-inf``) or top-k indices.
    relevant : sparse matrix of shape (n_users, n_items)
        Relevant items per user.
    k : int or None
        ``None`` with scores: the rank in the *full* ranking of all unmasked items
        (ties towards the lower index); a relevant item that is masked (``-inf``)
        never counts. ``None`` with an index matrix: RR@k' over all its columns.
        An int: RR@k (0 when no relevant item is in the top ``k``).

    Returns
    -------
    ndarray of shape (n_users,)
        In [0, 1]; NaN for users with no relevant item.
    """
    arr = np.asarray(ranking)
    if k is None and np.issubdtype(arr.dtype, np.floating):
        return _full_reciprocal_rank(arr, relevant)
    if k is None:
        k = arr.shape[1] if arr.ndim == 2 else 1
    hits, n_rel = _binary_hits(ranking, relevant, k)
    first = np.argmax(hits, axis=1)
    out = np.where(hits.any(axis=1), 1.0 / (first + 1.0), 0.0)
    return _undefined_without_relevant(out, n_rel)


def recommended_items(ranking: npt.ArrayLike, n_items: int, k: int | None = None) -> np.ndarray:
    """Boolean mask of shape (n_items,): which items appear in any user's top ``k``.

    OR the masks of several batches together to get the coverage of all users.
    """
    idx = _as_index_matrix(ranking, k, n_items)
    mask = np.zeros(n_items, dtype=bool)
    mask[idx[idx >= 0]] = True
    return mask


def catalogue_coverage(ranking: npt.ArrayLike, n_items: int, k: int | None = None) -> float:
    """Share of the catalogue that appears in at least one user's top ``k``.

    Parameters
    ----------
    ranking : ndarray of shape (n_users, n_items) float or (n_users, k') int
        Scores (masked items ``-inf``, never counted) or top-k indices.
    n_items : int
        Catalogue size (the denominator).
    k : int or None
        Cut-off; required for scores, defaults to all columns of an index matrix.

    Returns
    -------
    float in [0, 1]
    """
    if n_items <= 0:
        raise DataError(f"n_items must be positive; got {n_items}")
    return float(recommended_items(ranking, n_items, k).sum() / n_items)


def average_popularity(
    ranking: npt.ArrayLike, item_popularity: npt.ArrayLike, k: int | None = None
) -> FloatArray:
    """Mean popularity of each user's recommended items.

    Parameters
    ----------
    ranking : ndarray of shape (n_users, n_items) float or (n_users, k') int
        Scores (masked items ``-inf`` are not recommended) or top-k indices.
    item_popularity : array-like of shape (n_items,)
        Popularity of every item, e.g. the share of training users who interacted
        with it (then the result is in [0, 1]).
    k : int or None
        Cut-off; required for scores.

    Returns
    -------
    ndarray of shape (n_users,)
        NaN for users with an empty list.
    """
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.ndim != 1:
        raise DataError(f"item_popularity must be 1-D (n_items,); got shape {pop.shape}")
    idx = _as_index_matrix(ranking, k, len(pop))
    valid = idx >= 0
    values = np.where(valid, pop[np.where(valid, idx, 0)], 0.0)
    count = valid.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, values.sum(axis=1) / count, np.nan)


def intra_list_diversity(
    ranking: npt.ArrayLike, item_vectors: npt.ArrayLike, k: int | None = None
) -> FloatArray:
    """Intra-list diversity: 1 - mean pairwise cosine similarity of the recommended items.

    Parameters
    ----------
    ranking : ndarray of shape (n_users, n_items) float or (n_users, k') int
        Scores (masked items ``-inf`` are not recommended) or top-k indices.
    item_vectors : array-like of shape (n_items, n_features)
        One vector per item (e.g. embeddings or genre indicators). Zero vectors
        have cosine 0 with everything.
    k : int or None
        Cut-off; required for scores.

    Returns
    -------
    ndarray of shape (n_users,)
        In [0, 2], and in [0, 1] for non-negative vectors; NaN for lists with
        fewer than two items.
    """
    vectors = np.asarray(item_vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise DataError(
            f"item_vectors must be 2-D (n_items, n_features); got shape {vectors.shape}"
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    idx = _as_index_matrix(ranking, k, len(vectors))
    valid = idx >= 0
    v = unit[np.where(valid, idx, 0)] * valid[:, :, None]
    total = np.einsum("uid,ujd->u", v, v)  # sum over all ordered pairs, self-pairs included
    self_sim = np.einsum("uid,uid->u", v, v)
    count = valid.sum(axis=1).astype(np.float64)
    pairs = count * (count - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, 1.0 - (total - self_sim) / pairs, np.nan)


# -- internals ----------------------------------------------------------------


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise DataError(f"k must be a positive integer; got {k!r}")
    return int(k)


def _check_scores(scores: npt.ArrayLike) -> FloatArray:
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


def _n_items(relevant: sp.spmatrix | sp.sparray) -> int:
    return int(relevant.shape[1])


def _as_index_matrix(ranking: npt.ArrayLike, k: int | None, n_items: int) -> IndexMatrix:
    """Top-k indices with ``-1`` for masked (``-inf``) or missing entries."""
    arr = np.asarray(ranking)
    if arr.ndim != 2:
        raise DataError(
            f"ranking must be 2-D: scores (n_users, n_items) or top-k indices (n_users, k); "
            f"got shape {arr.shape}"
        )
    if np.issubdtype(arr.dtype, np.floating):
        if k is None:
            raise DataError("a cut-off k is needed when ranking is a score matrix; pass k=10")
        if arr.shape[1] != n_items:
            raise DataError(
                f"scores have {arr.shape[1]} columns but the catalogue has {n_items} items; "
                "score every item (mask the ones to skip with -inf)"
            )
        idx = topk(arr, k)
        masked = np.isneginf(np.take_along_axis(arr, idx, axis=1))
        idx = np.where(masked, -1, idx)
    elif np.issubdtype(arr.dtype, np.integer):
        idx = arr.astype(np.int64, copy=False)
        if idx.size and (idx.min() < -1 or idx.max() >= n_items):
            raise DataError(
                f"top-k indices must lie in [0, {n_items}) (or be -1 for no item); "
                f"got values in [{idx.min()}, {idx.max()}]"
            )
        if k is not None:
            k = _check_k(k)
            idx = idx[:, :k]
    else:
        raise DataError(f"ranking must be float scores or integer indices; got dtype {arr.dtype}")
    if k is not None and idx.shape[1] < k:
        pad = np.full((idx.shape[0], k - idx.shape[1]), -1, dtype=np.int64)
        idx = np.hstack([idx, pad])
    return idx


def _check_relevant(
    relevant: sp.spmatrix | sp.sparray, n_users: int, *, allow_grades: bool
) -> sp.csr_matrix:
    if not sp.issparse(relevant):
        raise DataError(
            f"relevant must be a scipy sparse matrix (n_users, n_items); got "
            f"{type(relevant).__name__}. Wrap it with scipy.sparse.csr_matrix(...)"
        )
    rel = sp.csr_matrix(relevant, dtype=np.float64, copy=True)
    rel.sum_duplicates()
    rel.eliminate_zeros()
    rel.sort_indices()
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


def _lookup(
    idx: IndexMatrix, rel: sp.csr_matrix, values: FloatArray
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """Whether each (user, ranked item) is relevant, and its value, without densifying."""
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


def _binary_hits(
    ranking: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    k = _check_k(k)
    idx = _as_index_matrix(ranking, k, _n_items(relevant))
    rel = _check_relevant(relevant, idx.shape[0], allow_grades=False)
    found, _ = _lookup(idx, rel, rel.data)
    return found, np.diff(rel.indptr).astype(np.int64)


def _ideal_dcg(rel: sp.csr_matrix, values: FloatArray, discount: FloatArray, k: int) -> FloatArray:
    n = rel.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(rel.indptr))
    order = np.lexsort((-values, rows))
    position = np.arange(len(order)) - rel.indptr[rows[order]]
    keep = position < k
    weights = values[order][keep] * discount[position[keep]]
    return np.bincount(rows[order][keep], weights=weights, minlength=n).astype(np.float64)


def _full_reciprocal_rank(scores: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray) -> FloatArray:
    s = _check_scores(scores)
    n, m = s.shape
    if m != _n_items(relevant):
        raise DataError(
            f"scores have {m} columns but relevant has {_n_items(relevant)}; score every item"
        )
    rel = _check_relevant(relevant, n, allow_grades=False)
    n_rel = np.diff(rel.indptr)
    out = np.zeros(n, dtype=np.float64)
    users = np.flatnonzero(n_rel > 0)
    if len(users):
        rows = np.repeat(np.arange(n, dtype=np.int64), n_rel)
        cols = rel.indices.astype(np.int64)
        vals = s[rows, cols]
        # best relevant item per user: highest score, then lowest index
        order = np.lexsort((cols, -vals, rows))
        first = order[rel.indptr[users]]
        best, best_col = vals[first], cols[first]
        sub = s[users]
        above = (sub > best[:, None]).sum(axis=1)
        tied_before = ((sub == best[:, None]) & (np.arange(m) < best_col[:, None])).sum(axis=1)
        rr = 1.0 / (1.0 + above + tied_before)
        out[users] = np.where(np.isneginf(best), 0.0, rr)
    return _undefined_without_relevant(out, n_rel)


def _undefined_without_relevant(values: npt.ArrayLike, n_rel: npt.ArrayLike) -> FloatArray:
    return np.where(np.asarray(n_rel) > 0, np.asarray(values, dtype=np.float64), np.nan)
