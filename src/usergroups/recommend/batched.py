"""Top-n recommendations of many known users, in batches of bounded memory.

:meth:`usergroups.GroupDiscovery.recommend` scores a user against every item (a dense row
of ``n_items``), which is what one request needs; for every user at once (save time,
``recommendations.parquet``) that is an ``n_users × n_items`` matrix: 400 GB for a million
users and 100,000 items. :func:`top_n_blended` gives the same lists and scores:

- users are taken :func:`batch_rows` at a time, so a dense block holds at most
  :data:`SCORE_CELLS` scores;
- when the personal model's weights are non-negative (item-kNN) or there is no personal
  blend, only *candidates* are scored, never the whole catalogue: the items the personal
  model gives a score (``X_u @ W``: the neighbours of the user's items) and a prefix of the
  group's items by popularity. Every other item has the personal score 0, so its blended
  score is at most the last prefix item's; a user whose n-th score does not beat that
  bound (or who has fewer than n candidates left) is scored densely. The lists are those
  of the dense path; only float ties at the boundary could order differently.
- EASE's weights can be negative, so its users are scored densely, batch by batch (EASE
  only runs on catalogues of at most ``recommend.ease_max_items`` items).

Examples
--------
>>> batch_rows(100_000)
167
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._typing import IntVector
from usergroups.recommend.group_popularity import top_n
from usergroups.recommend.hybrid import blend, personal_weights

__all__ = ["SCORE_CELLS", "batch_rows", "top_n_blended"]

SCORE_CELLS = 1 << 24
"""Scores of one dense batch (users × items): 64 MB of float32; the blend holds a few."""

_PREFIX_SLACK = 32
"""Group items scored beyond ``n`` plus the most items a user of the batch has seen."""


def batch_rows(n_items: int, cells: int = SCORE_CELLS) -> int:
    """Users per batch so that a dense batch holds at most ``cells`` scores (at least 1)."""
    return max(1, int(cells) // max(int(n_items), 1))


def top_n_blended(
    recommender: Any,
    personal: Any,
    labels: npt.ArrayLike,
    seen: sp.spmatrix,
    n: int,
    *,
    personal_weight: float = 0.0,
    personal_shrinkage: float = 0.0,
    batch_size: int | None = None,
    group_part: Callable[[IntVector], npt.NDArray[np.float32]] | None = None,
) -> tuple[IntVector, npt.NDArray[np.float32]]:
    """Top-``n`` items of each user, seen items excluded, as ``GroupDiscovery.recommend``.

    Parameters
    ----------
    recommender : GroupPopularity
    personal : PrunedEASE, ItemKNN or None
    labels : ndarray of shape (n_users,)
        Group of each user (-1: noise, global popularity).
    seen : sparse matrix of shape (n_users, n_items)
    n : int
    personal_weight, personal_shrinkage : float
        The blend of :func:`usergroups.recommend.hybrid.personal_weights`.
    batch_size : int, optional
        Users per batch (default :func:`batch_rows`).
    group_part : callable, optional
        ``group_part(rows) -> (len(rows), n_items)``: the group scores of users (the fine
        groups' mean, :meth:`usergroups.FittedState.group_part`), replacing
        ``recommender``'s scores of ``labels``; every user is then scored densely, batch
        by batch (a mean of several rows has no fixed candidate order).

    Returns
    -------
    indices : ndarray of shape (n_users, min(n, n_items)), int64
        -1 pads rows with fewer candidates.
    scores : ndarray of shape (n_users, min(n, n_items)), float32
        ``-inf`` where padded.

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 68 lines.
    """
    labels = np.asarray(labels, dtype=np.int64)
    seen = sp.csr_matrix(seen, dtype=np.float32)
    n_users, n_items = seen.shape
    width = min(int(n), n_items)
    step = int(batch_size) if batch_size else batch_rows(n_items)
    use_personal = personal is not None and personal_weight > 0
    sparse_ok = not use_personal or _non_negative(personal.weights_)
    out_idx = np.full((n_users, width), -1, dtype=np.int64)
    out_val = np.full((n_users, width), -np.inf, dtype=np.float32)
    if n_users == 0 or width == 0:
        return out_idx, out_val

    def dense(rows: IntVector) -> tuple[IntVector, npt.NDArray[np.float32]]:
        s = seen[rows]
        scores = (
            group_part(rows) if group_part is not None else recommender.group_scores(labels[rows])
        )
        if use_personal:
            w = personal_weights(s, personal_weight, personal_shrinkage)
            scores = blend(scores, personal.scores(s), w)
        r, c = s.nonzero()
        scores[r, c] = -np.inf
        idx, val = top_n(scores, width)
        return idx, val.astype(np.float32)

    if not sparse_ok or group_part is not None:
        for start in range(0, n_users, step):
            rows = np.arange(start, min(start + step, n_users))
            out_idx[rows], out_val[rows] = dense(rows)
        return out_idx, out_val

    group_rows, order = _group_orders(recommender, use_personal)
    n_groups = len(group_rows) - 1
    row_of = np.where((labels >= 0) & (labels < n_groups), labels, n_groups)
    counts = np.diff(seen.indptr)
    sparse_step = max(step, 4096)
    for start in range(0, n_users, sparse_step):
        rows = np.arange(start, min(start + sparse_step, n_users))
        idx, val, redo = _candidates_top(
            rows,
            seen,
            counts,
            row_of,
            group_rows,
            order,
            personal if use_personal else None,
            personal_weight,
            personal_shrinkage,
            width,
        )
        out_idx[rows], out_val[rows] = idx, val
        redo_rows = rows[redo]
        for s in range(0, len(redo_rows), step):
            part = redo_rows[s : s + step]
            out_idx[part], out_val[part] = dense(part)
    return out_idx, out_val


def _group_orders(
    recommender: Any, use_personal: bool
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The group scores of every group and a last row for noise (-1), each row over its peak
    when a personal model is blended (as the dense path's blend does), and each row's items
    ranked best first."""
    n_groups = len(recommender.sizes_)
    group_rows = recommender.group_scores(np.r_[np.arange(n_groups), -1])
    if use_personal:
        peak = np.abs(group_rows).max(axis=1, keepdims=True)
        group_rows = np.divide(
            group_rows, peak, out=np.zeros_like(group_rows), where=peak > 0
        ).astype(np.float32)
    return group_rows, np.argsort(-group_rows, axis=1, kind="stable")


def _non_negative(weights: Any) -> bool:
    w = weights.data if sp.issparse(weights) else np.asarray(weights)
    return bool(len(w) == 0 or float(np.min(w)) >= 0.0)


def _candidates_top(
    rows: IntVector,
    seen: sp.csr_matrix,
    counts: IntVector,
    row_of: IntVector,
    group_rows: npt.NDArray[np.float32],
    order: npt.NDArray[np.int64],
    personal: Any,
    personal_weight: float,
    personal_shrinkage: float,
    width: int,
) -> tuple[IntVector, npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Top ``width`` of the candidates of ``rows``, and which rows need the dense path."""
    n_items = seen.shape[1]
    b = len(rows)
    s = seen[rows]
    g_row = row_of[rows]
    prefix = min(n_items, width + int(counts[rows].max(initial=0)) + _PREFIX_SLACK)
    pre_items = order[g_row, :prefix]  # (b, prefix)
    cand = _candidates(s, pre_items, personal)
    r = np.repeat(np.arange(b), np.diff(cand.indptr))
    c = cand.indices.astype(np.int64)
    g = group_rows[g_row[r], c]
    w = np.zeros(b, dtype=np.float32)
    if personal is not None:
        w = personal_weights(s, personal_weight, personal_shrinkage)
        one = np.float32(1.0)
        score = (one - w[r]) * g + w[r] * cand.data.astype(np.float32)
    else:
        score = g.astype(np.float32)
    # seen items are excluded, as the dense path's -inf
    seen_keys = s.indices.astype(np.int64) + np.repeat(np.arange(b), np.diff(s.indptr)) * n_items
    score[np.isin(r * n_items + c, seen_keys)] = -np.inf
    idx, val = _top_of_rows(cand.indptr, r, c, score, width)
    # items outside the candidates score at most the last prefix item's (1 - w) · g
    if prefix >= n_items:
        redo = np.zeros(b, dtype=bool)
    else:
        last = group_rows[g_row, pre_items[:, -1]]
        bound = (np.float32(1.0) - w) * last if personal is not None else last
        redo = ~(val[:, -1] > bound)
    return idx, val, redo


def _candidates(s: sp.csr_matrix, pre_items: npt.NDArray[np.int64], personal: Any) -> sp.csr_matrix:
    """The candidates of each user as a sparse row: the group's ``pre_items`` (value 0) and
    the items the personal model scores (value: the personal score over the row's peak)."""
    b, n_items = s.shape[0], s.shape[1]
    prefix = pre_items.shape[1]
    cand_r = [np.repeat(np.arange(b), prefix)]
    cand_c = [pre_items.ravel()]
    cand_p = [np.zeros(b * prefix, dtype=np.float32)]
    if personal is not None:
        p = _personal_rows(s, personal.weights_)
        peak = np.zeros(b, dtype=np.float32)
        if p.nnz:
            np.maximum.at(peak, np.repeat(np.arange(b), np.diff(p.indptr)), np.abs(p.data))
        scale = np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > 0)
        cand_r.append(np.repeat(np.arange(b), np.diff(p.indptr)))
        cand_c.append(p.indices.astype(np.int64))
        # the dense path divides each row by its peak: the same float32 operation
        cand_p.append(
            np.divide(
                p.data,
                np.repeat(peak, np.diff(p.indptr)),
                out=np.zeros_like(p.data),
                where=np.repeat(scale, np.diff(p.indptr)) > 0,
            )
        )
    cand = sp.csr_matrix(
        (
            np.concatenate(cand_p),
            (np.concatenate(cand_r), np.concatenate(cand_c)),
        ),
        shape=(b, n_items),
    )
    cand.sum_duplicates()  # a prefix item the personal model scores: its score, once
    return cand


def _top_of_rows(
    indptr: IntVector,
    r: IntVector,
    c: IntVector,
    score: npt.NDArray[np.float32],
    width: int,
) -> tuple[IntVector, npt.NDArray[np.float32]]:
    """The ``width`` best (item, score) of each row of a sparse row-sorted list, -1 and
    ``-inf`` where a row has fewer."""
    b = len(indptr) - 1
    # rows padded to the longest candidate list; a stable sort on -score keeps the item
    # order (indices are sorted in each row) for ties, as top_n does
    lengths = np.diff(indptr)
    longest = int(lengths.max(initial=0))
    pos = np.arange(len(c)) - np.repeat(indptr[:-1], lengths)
    grid_s = np.full((b, max(longest, width)), -np.inf, dtype=np.float32)
    grid_c = np.full((b, max(longest, width)), -1, dtype=np.int64)
    grid_s[r, pos] = score
    grid_c[r, pos] = c
    best = np.argsort(-grid_s, axis=1, kind="stable")[:, :width]
    val = np.take_along_axis(grid_s, best, axis=1)
    idx = np.where(np.isneginf(val), -1, np.take_along_axis(grid_c, best, axis=1))
    return idx.astype(np.int64), val


def _personal_rows(rows: sp.csr_matrix, weights: sp.spmatrix) -> sp.csr_matrix:
    """``X_u @ W`` as the personal models compute it, kept sparse."""
    r = sp.csr_matrix(rows, dtype=np.float32, copy=True)
    r.data[:] = 1.0
    out = sp.csr_matrix(r @ weights, dtype=np.float32)
    out.sum_duplicates()
    out.sort_indices()
    return out
