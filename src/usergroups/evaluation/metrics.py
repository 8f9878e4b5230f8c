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
metric is deterministic. :func:`topk` and the NDCG arithmetic live in
:mod:`usergroups.ranking`, which the pipeline's validation NDCG shares.

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

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups.errors import DataError
from usergroups.linalg import unit_rows
from usergroups.ranking import (
    FloatArray,
    IndexMatrix,
    check_k,
    check_relevant,
    check_scores,
    ndcg_of_lists,
    relevant_at,
    top_items,
    topk,
)

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "Interval",
    "average_popularity",
    "average_precision",
    "bootstrap_interval",
    "catalogue_coverage",
    "cooccurrence_reach",
    "hit_rate",
    "intra_list_diversity",
    "ndcg",
    "precision",
    "recall",
    "reciprocal_rank",
    "recommended_items",
    "topk",
]

Gains = Literal["binary", "linear", "exponential"]


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
    k = check_k(k)
    idx = _as_index_matrix(ranking, k, _n_items(relevant))
    rel = check_relevant(relevant, idx.shape[0], allow_grades=gains != "binary")
    if gains == "binary":
        return ndcg_of_lists(idx, rel, k)
    values = rel.data.astype(np.float64)
    if gains == "exponential":
        values = np.exp2(values) - 1.0
    return ndcg_of_lists(idx, rel, k, values)


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
    unit = unit_rows(vectors, dtype="float64")
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
        idx = top_items(arr, k)
    elif np.issubdtype(arr.dtype, np.integer):
        idx = arr.astype(np.int64, copy=False)
        if idx.size and (idx.min() < -1 or idx.max() >= n_items):
            raise DataError(
                f"top-k indices must lie in [0, {n_items}) (or be -1 for no item); "
                f"got values in [{idx.min()}, {idx.max()}]"
            )
        if k is not None:
            k = check_k(k)
            idx = idx[:, :k]
    else:
        raise DataError(f"ranking must be float scores or integer indices; got dtype {arr.dtype}")
    if k is not None and idx.shape[1] < k:
        pad = np.full((idx.shape[0], k - idx.shape[1]), -1, dtype=np.int64)
        idx = np.hstack([idx, pad])
    return idx


def _binary_hits(
    ranking: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray, k: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    k = check_k(k)
    idx = _as_index_matrix(ranking, k, _n_items(relevant))
    rel = check_relevant(relevant, idx.shape[0], allow_grades=False)
    found, _ = relevant_at(idx, rel, rel.data)
    return found, np.diff(rel.indptr).astype(np.int64)


def _full_reciprocal_rank(scores: npt.ArrayLike, relevant: sp.spmatrix | sp.sparray) -> FloatArray:
    s = check_scores(scores)
    n, m = s.shape
    if m != _n_items(relevant):
        raise DataError(
            f"scores have {m} columns but relevant has {_n_items(relevant)}; score every item"
        )
    rel = check_relevant(relevant, n, allow_grades=False)
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


# ----------------------------------------------------------------------------- intervals
BOOTSTRAP_RESAMPLES = 1000
"""Resamples of :func:`bootstrap_interval` (the percentile ends move by about 0.1 % of the
mean between seeds at 1,000)."""


@dataclass(frozen=True)
class Interval:
    """A mean over users with its seeded percentile bootstrap interval.

    Attributes
    ----------
    mean : float
        The mean over the users with a defined value (NaN: undefined, left out).
    low, high : float
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the
        resampled means.
    se : float
        The standard deviation of the resampled means (the bootstrap standard error).
    n : int
        Users with a defined value.
    """

    mean: float
    low: float
    high: float
    se: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready ``{"mean", "low", "high", "se", "n"}``."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "se": self.se, "n": self.n}


def bootstrap_interval(
    values: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    random_state: int = 0,
) -> Interval:
    """Percentile bootstrap interval of the mean of per-user ``values``.

    Users are resampled with replacement ``n_resamples`` times (seeded, so a report is
    reproducible); the interval is the central ``confidence`` share of the resampled
    means. Resampling runs in blocks so memory stays at a few million draws whatever the
    number of users. Two methods measured on the same test users should be compared with
    their intervals side by side; paired differences are tighter still.

    Parameters
    ----------
    values : array-like of shape (n_users,)
        One metric value per test user (e.g. :func:`ndcg`); NaN (undefined) is left out.
    confidence : float in (0, 1)
    n_resamples : int
    random_state : int

    Returns
    -------
    Interval
        NaN ends (and ``se``) when no user has a defined value.

    Examples
    --------
    >>> iv = bootstrap_interval(np.r_[np.zeros(90), np.ones(10)])
    >>> round(iv.mean, 2), iv.low < 0.1 < iv.high
    (0.1, True)
    """
    if not 0.0 < float(confidence) < 1.0:
        raise DataError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise DataError(f"n_resamples must be a positive integer, e.g. 1000; got {n_resamples!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        nan = float("nan")
        return Interval(nan, nan, nan, nan, 0)
    rng = np.random.default_rng(random_state)
    means = np.empty(n_resamples, dtype=np.float64)
    step = max(1, (1 << 22) // n)  # resamples per block: about 4M draws at a time
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        draws = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = v[draws].mean(axis=1)
    tail = (1.0 - float(confidence)) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    se = float(means.std(ddof=1)) if n_resamples > 1 else 0.0
    return Interval(float(v.mean()), float(low), float(high), se, n)


def cooccurrence_reach(train: sp.spmatrix, held: sp.spmatrix) -> float:
    """Share of users whose held-out item an item-item model can reach at all.

    A held-out item is *reachable* when someone in ``train`` consumed it together with
    one of the user's own training items (users' items -> co-users -> their items): only
    then can item-kNN or EASE score it above zero. On a random sample of reviews (not a
    k-core) this is small and personal models fall below popularity for lack of signal.

    Parameters
    ----------
    train : sparse matrix of shape (n_all_users, n_items)
        Training interactions of everyone (the co-users).
    held : sparse matrix of shape (n_all_users, n_items)
        Held-out items; only rows with at least one count.

    Returns
    -------
    float
        In [0, 1]; 0.0 when no row holds an item.

    Examples
    --------
    >>> train = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]]))
    >>> held = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]]))
    >>> cooccurrence_reach(train, held)
    1.0
    """
    t = sp.csr_matrix(train, dtype=np.float32)
    h = sp.csr_matrix(held, dtype=np.float32)
    rows = np.flatnonzero(np.diff(h.indptr) > 0)
    if not len(rows):
        return 0.0
    # walked from the held-out items (held item -> co-users -> their items, then met with
    # the user's own items): the same relation as from the user's items, but with one
    # start per distinct held-out item, which many users share (issue 25)
    held_rows, held_items = h[rows].nonzero()
    distinct, which = np.unique(held_items, return_inverse=True)
    by_item = sp.csc_matrix(t)
    hit = np.zeros(len(rows), dtype=bool)
    for start in range(0, len(distinct), 256):
        part = slice(start, start + 256)
        # (items of the block) x (all items): who co-occurs with each held-out item
        together = sp.csr_matrix(sp.csr_matrix(by_item[:, distinct[part]].T) @ t)
        pairs = np.flatnonzero((which >= start) & (which < start + 256))
        own = t[rows[held_rows[pairs]]]  # each pair's user's own items
        pair_of, item = own.nonzero()
        if not len(pair_of):
            continue
        met = np.asarray(together[which[pairs][pair_of] - start, item]).ravel() > 0
        hit[held_rows[pairs][pair_of[met]]] = True
    return float(hit.sum()) / len(rows)
