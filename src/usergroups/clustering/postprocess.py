"""Clean up a grouping: merge near-duplicate groups, fold tiny ones, number by size.

The steps run in this order (:func:`postprocess_groups`):

1. :func:`merge_close_groups` — while two groups' centroids have a cosine
   similarity above ``merge_threshold``, merge the closest pair; the larger group
   keeps its label (ties: the lower label) and its centroid is recomputed.
2. :func:`fold_small_groups` — every group with fewer than ``min_group_size``
   members moves, as a whole, into the remaining group whose centroid is most
   similar (cosine). If no group is large enough, the largest one remains.
3. :func:`relabel_by_size` — groups are numbered ``0 .. n_groups - 1`` by size,
   largest first (ties: by the earlier label), so ids do not depend on the order
   in which an algorithm happened to emit them.

Noise users (label ``-1``) are never merged, folded or relabelled.
:class:`PostProcessedGroups` applies the same steps after any :class:`GroupClusterer`
and records what happened (``merged_``, ``folded_``, ``label_map_``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import clone

from usergroups._typing import FloatMatrix, IntVector
from usergroups.clustering.base import (
    NOISE,
    GroupClusterer,
    check_int,
    check_vectors,
    group_sums,
)
from usergroups.errors import ConfigError, DataError
from usergroups.linalg import unit_rows

__all__ = [
    "PostProcessResult",
    "PostProcessedGroups",
    "fold_small_groups",
    "merge_close_groups",
    "postprocess_groups",
    "postprocess_summary",
    "relabel_by_size",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostProcessResult:
    """What :func:`postprocess_groups` produced and did.

    Attributes
    ----------
    labels : ndarray of shape (n_users,), int64
        Final groups ``0 .. n_groups - 1`` by size, largest first; ``-1`` is noise.
    merged : list of (int, int)
        ``(kept, absorbed)`` pairs in merge order, in the input labels.
    folded : list of int
        Input labels of the groups folded into others, ascending.
    label_map : dict[int, int]
        Final label of every input label (absorbed and folded ones included);
        ``-1`` maps to ``-1`` when there is noise.
    """

    labels: IntVector
    merged: list[tuple[int, int]] = field(default_factory=list)
    folded: list[int] = field(default_factory=list)
    label_map: dict[int, int] = field(default_factory=dict)


def _check_inputs(X: FloatMatrix, labels: npt.ArrayLike) -> tuple[FloatMatrix, IntVector]:
    X = check_vectors(X)
    labels_arr = np.asarray(labels)
    if labels_arr.shape != (X.shape[0],):
        raise DataError(
            f"labels must have shape ({X.shape[0]},), one per row of X; got {labels_arr.shape}"
        )
    if labels_arr.size and (
        not np.issubdtype(labels_arr.dtype, np.integer) or labels_arr.min() < NOISE
    ):
        raise DataError("labels must be integers >= 0, or -1 for noise")
    return X, labels_arr.astype(np.int64)


def _group_sums(X: FloatMatrix, labels: IntVector) -> tuple[IntVector, np.ndarray, IntVector]:
    """Distinct non-noise labels (ascending), their float64 row sums and their sizes."""
    member = labels != NOISE
    groups, inverse = np.unique(labels[member], return_inverse=True)
    # positions 0..n_distinct-1 instead of labels; sums in blocks, without np.add.at (which
    # is slow) or a float64 copy of X (which is 3.6 GB for 1M x 448)
    positions = np.full(labels.shape, NOISE, dtype=np.int64)
    positions[member] = inverse
    sums, counts = group_sums(X, positions, int(groups.size))
    return groups.astype(np.int64), sums, counts


def _merge_summaries(
    groups: IntVector, sums: np.ndarray, counts: IntVector, threshold: float
) -> tuple[IntVector, list[tuple[int, int]]]:
    """The merge loop of :func:`merge_close_groups` on group summaries.

    ``sums`` (float64, one row per group) and ``counts`` are updated in place as groups
    absorb others. Returns the position of the group that holds each original group, and
    the ``(kept, absorbed)`` pairs in ``groups``' labels.
    """
    k = groups.size
    owner = np.arange(k)  # position of the group that now holds each original group
    merged: list[tuple[int, int]] = []
    if k < 2:
        return owner, merged
    unit = unit_rows(sums, dtype="float64")
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    alive = np.ones(k, dtype=bool)
    while True:
        flat = int(np.argmax(sims))  # first maximum: the lowest (i, j), so ties are stable
        i, j = divmod(flat, k)
        if not sims[i, j] > threshold:
            break
        kept, absorbed = (i, j) if (counts[i], -i) >= (counts[j], -j) else (j, i)
        logger.info(
            "merging group %d into %d (centroid cosine %.4f > %.4f)",
            groups[absorbed],
            groups[kept],
            sims[i, j],
            threshold,
        )
        merged.append((int(groups[kept]), int(groups[absorbed])))
        sums[kept] += sums[absorbed]
        counts[kept] += counts[absorbed]
        owner[owner == absorbed] = kept
        alive[absorbed] = False
        # only the kept group's centroid moved: refresh its row and column
        unit[kept] = unit_rows(sums[kept], dtype="float64")[0]
        row = np.where(alive, unit @ unit[kept], -np.inf)
        row[kept] = -np.inf
        sims[kept, :] = row
        sims[:, kept] = row
        sims[absorbed, :] = -np.inf
        sims[:, absorbed] = -np.inf
    return owner, merged


def _fold_targets(
    sums: np.ndarray, counts: IntVector, min_group_size: int
) -> tuple[IntVector, IntVector]:
    """Positions of the groups :func:`fold_small_groups` folds, and of the group each goes
    into (the most similar large group by centroid cosine), from group summaries."""
    large = counts >= min_group_size
    if not large.any():
        # stable: np.argmax returns the first (lowest-label) of equal sizes
        large[int(np.argmax(counts))] = True
    small = np.flatnonzero(~large)
    if small.size == 0:
        return small, small
    unit = unit_rows(sums, dtype="float64")
    large_idx = np.flatnonzero(large)
    return small, large_idx[np.argmax(unit[small] @ unit[large_idx].T, axis=1)]


def postprocess_summary(
    sums: np.ndarray,
    counts: np.ndarray,
    *,
    min_group_size: int = 1,
    merge_threshold: float | None = None,
) -> tuple[dict[int, int], list[tuple[int, int]], list[int]]:
    """:func:`postprocess_groups` from each group's vector sum and size only.

    The same merge loop, fold rule and numbering (the same functions), so a distributed
    engine (:mod:`usergroups.spark`) never gathers the users.

    Parameters
    ----------
    sums : ndarray of shape (n_groups, n_features)
        Sum of each group's member vectors (groups ``0 .. n_groups - 1``).
    counts : ndarray of shape (n_groups,)

    Returns
    -------
    label_map : dict[int, int]
        Final group of every input group.
    merged : list of (int, int)
    folded : list of int

    Examples
    --------
    >>> sums = np.array([[2.0, 0.0], [1.0, 0.01], [0.0, 3.0]])
    >>> postprocess_summary(sums, np.array([2, 1, 3]), merge_threshold=0.99)
    ({0: 0, 1: 0, 2: 1}, [(0, 1)], [])
    """
    sums = np.asarray(sums, dtype="float64").copy()
    counts = np.asarray(counts, dtype=np.int64).copy()
    present = np.flatnonzero(counts > 0)
    groups = present.astype(np.int64)
    sums, counts = sums[present], counts[present]
    k = groups.size
    owner, merged = (
        _merge_summaries(groups, sums, counts, merge_threshold)
        if merge_threshold is not None
        else (np.arange(k), [])
    )
    # after merging, each surviving position is one group
    alive_pos = np.unique(owner)
    folded: list[int] = []
    target = {int(p): int(p) for p in alive_pos}
    if alive_pos.size:
        small, best = _fold_targets(sums[alive_pos], counts[alive_pos], min_group_size)
        for s, t in zip(small.tolist(), best.tolist(), strict=True):
            target[int(alive_pos[s])] = int(alive_pos[t])
            folded.append(int(groups[alive_pos[s]]))
    final_counts: dict[int, int] = {}
    for p in alive_pos.tolist():
        t = target[p]
        final_counts[t] = final_counts.get(t, 0) + int(counts[p])
    # number by size, largest first; ties by the lower label (relabel_by_size's rule)
    order = sorted(final_counts, key=lambda p: (-final_counts[p], int(groups[p])))
    rank = {p: r for r, p in enumerate(order)}
    label_map = {int(groups[g]): rank[target[int(owner[g])]] for g in range(k)}
    return label_map, merged, sorted(folded)


def merge_close_groups(
    X: FloatMatrix, labels: npt.ArrayLike, threshold: float
) -> tuple[IntVector, list[tuple[int, int]]]:
    """Merge groups whose centroids' cosine similarity exceeds ``threshold``, closest first.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features)
    labels : array-like of shape (n_users,)
        Non-negative group labels; ``-1`` is noise and never merged.
    threshold : float
        Merge while the most similar pair of centroids has cosine ``> threshold``.

    Returns
    -------
    labels : ndarray of shape (n_users,), int64
        Absorbed groups carry the label of the group that kept them.
    merged : list of (int, int)
        ``(kept, absorbed)`` pairs in merge order; the larger group is kept
        (ties: the lower label).

    Examples
    --------
    >>> X = np.array([[1, 0], [1, 0.01], [0, 1]], dtype=np.float32)
    >>> labels, merged = merge_close_groups(X, [0, 1, 2], threshold=0.99)
    >>> labels.tolist(), merged
    ([0, 0, 2], [(0, 1)])
    """
    X, out = _check_inputs(X, labels)
    groups, sums, counts = _group_sums(X, out)
    owner, merged = _merge_summaries(groups, sums, counts, threshold)
    if merged:
        member = out != NOISE
        positions = np.searchsorted(groups, out[member])
        out[member] = groups[owner[positions]]
    return out, merged


def fold_small_groups(
    X: FloatMatrix, labels: npt.ArrayLike, min_group_size: int
) -> tuple[IntVector, list[int]]:
    """Move every group smaller than ``min_group_size`` into the most similar larger group.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features)
    labels : array-like of shape (n_users,)
        Non-negative group labels; ``-1`` is noise and stays noise.
    min_group_size : int
        Groups with fewer members are folded. When no group reaches it, the largest
        group (ties: the lower label) remains and takes all the others.

    Returns
    -------
    labels : ndarray of shape (n_users,), int64
        Every non-noise user keeps a group; folded groups take the label of the
        group whose centroid has the highest cosine similarity to theirs.
    folded : list of int
        Labels of the folded groups, ascending.

    Examples
    --------
    >>> X = np.array([[1, 0], [1, 0.1], [1, 0.2], [0, 1]], dtype=np.float32)
    >>> labels, folded = fold_small_groups(X, [0, 0, 0, 1], min_group_size=2)
    >>> labels.tolist(), folded
    ([0, 0, 0, 0], [1])
    """
    X, out = _check_inputs(X, labels)
    groups, sums, counts = _group_sums(X, out)
    if groups.size == 0:
        return out, []
    small, targets = _fold_targets(sums, counts, min_group_size)
    if small.size == 0:
        return out, []
    target_of = dict(zip(groups[small].tolist(), groups[targets].tolist(), strict=True))
    for source, target in target_of.items():
        logger.info(
            "folding group %d (%d users < min_group_size=%d) into group %d",
            source,
            int(counts[groups == source][0]),
            min_group_size,
            target,
        )
    member = out != NOISE
    positions = np.searchsorted(groups, out[member])
    new_of_position = groups.copy()
    new_of_position[small] = groups[targets]
    out[member] = new_of_position[positions]
    return out, sorted(target_of)


def relabel_by_size(labels: npt.ArrayLike) -> tuple[IntVector, dict[int, int]]:
    """Number groups ``0 .. n_groups - 1`` by size, largest first; ties by the lower label.

    Parameters
    ----------
    labels : array-like of shape (n_users,)
        ``-1`` is noise and stays ``-1``.

    Returns
    -------
    labels : ndarray of shape (n_users,), int64
    mapping : dict[int, int]
        New label of every old non-noise label.

    Examples
    --------
    >>> labels, mapping = relabel_by_size([7, 3, 3, -1, 7, 7, 5])
    >>> labels.tolist(), mapping
    ([0, 1, 1, -1, 0, 0, 2], {7: 0, 3: 1, 5: 2})
    """
    labels = np.asarray(labels, dtype=np.int64)
    member = labels != NOISE
    groups, inverse, counts = np.unique(labels[member], return_inverse=True, return_counts=True)
    # lexsort's last key is the primary one: size descending, then label ascending
    order = np.lexsort((groups, -counts))
    rank = np.empty(groups.size, dtype=np.int64)
    rank[order] = np.arange(groups.size)
    out = np.full(labels.shape, NOISE, dtype=np.int64)
    out[member] = rank[inverse]
    mapping = {int(groups[p]): int(r) for r, p in enumerate(order)}
    return out, mapping


def postprocess_groups(
    X: FloatMatrix,
    labels: npt.ArrayLike,
    *,
    min_group_size: int = 1,
    merge_threshold: float | None = None,
) -> PostProcessResult:
    """Merge close groups, fold small ones, then number groups by size.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features)
    labels : array-like of shape (n_users,)
        Non-negative group labels; ``-1`` is noise.
    min_group_size : int, default=1
        Groups below this size are folded (1 keeps every group).
    merge_threshold : float or None, default=None
        Merge groups whose centroids' cosine similarity exceeds it; ``None`` never merges.

    Returns
    -------
    PostProcessResult

    Examples
    --------
    >>> X = np.array([[1, 0], [1, 0.01], [0, 1], [0, 1], [0.1, 1]], dtype=np.float32)
    >>> result = postprocess_groups(X, [5, 6, 2, 2, 2], merge_threshold=0.99)
    >>> result.labels.tolist(), result.merged, result.label_map
    ([1, 1, 0, 0, 0], [(5, 6)], {2: 0, 5: 1, 6: 1})
    """
    X, base = _check_inputs(X, labels)
    check_int("min_group_size", min_group_size, minimum=1)
    _check_threshold(merge_threshold)
    current = base
    merged: list[tuple[int, int]] = []
    if merge_threshold is not None:
        current, merged = merge_close_groups(X, current, merge_threshold)
    current, folded = fold_small_groups(X, current, min_group_size)
    final, _ = relabel_by_size(current)
    # every input group moved as a whole, so its first user tells where it went
    input_labels, first_users = np.unique(base, return_index=True)
    label_map = {
        int(label): int(final[user])
        for label, user in zip(input_labels.tolist(), first_users.tolist(), strict=True)
    }
    return PostProcessResult(labels=final, merged=merged, folded=folded, label_map=label_map)


def _check_threshold(merge_threshold: float | None) -> None:
    if merge_threshold is None:
        return
    if isinstance(merge_threshold, bool) or not isinstance(merge_threshold, int | float):
        raise ConfigError(f"merge_threshold={merge_threshold!r} must be a number in (0, 1] or None")
    if not 0.0 < float(merge_threshold) <= 1.0:
        raise ConfigError(
            f"merge_threshold={merge_threshold!r} must be in (0, 1] (a cosine similarity), "
            "or None to never merge"
        )


class PostProcessedGroups(GroupClusterer):
    """Any :class:`GroupClusterer` followed by :func:`postprocess_groups`.

    Parameters
    ----------
    base : GroupClusterer
        The clusterer to run first; a clone is fitted on the L2-normalised rows,
        ``base`` itself stays unfitted.
    min_group_size : int, default=5
        Groups with fewer users are folded into the most similar larger group.
    merge_threshold : float or None, default=0.98
        Groups whose centroids' cosine similarity exceeds it are merged; ``None``
        never merges.

    Attributes
    ----------
    base_ : GroupClusterer
        The fitted clone of ``base``, with the labels before post-processing.
    labels_ : ndarray of shape (n_users,), int64
        Final groups, numbered by size (0 is the largest); ``-1`` is noise.
    centroids_ : ndarray of shape (n_groups_, n_features), float32
        Recomputed means of the final groups.
    n_groups_ : int
    k_scores_ : dict[int, float]
        The base clusterer's silhouette curve (before post-processing).
    silhouette_ : float
        Silhouette of the final labels (same sample size and seed as ``base``).
    merged_ : list of (int, int)
        ``(kept, absorbed)`` pairs, in ``base_.labels_`` numbering.
    folded_ : list of int
        Groups of ``base_.labels_`` folded into others.
    label_map_ : dict[int, int]
        Final group of every group of ``base_.labels_`` (``-1`` to ``-1``).
    n_features_in_ : int

    Examples
    --------
    >>> from usergroups.clustering import KMeansGroups
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, dtype=np.float32), [30, 20, 2], axis=0)
    >>> X += 0.05 * rng.standard_normal(X.shape).astype(np.float32)
    >>> model = PostProcessedGroups(KMeansGroups(n_groups=3, random_state=0)).fit(X)
    >>> model.n_groups_, len(model.folded_), int((model.labels_ >= 0).sum())
    (2, 1, 52)
    """

    base_: GroupClusterer
    merged_: list[tuple[int, int]]
    folded_: list[int]
    label_map_: dict[int, int]

    def __init__(
        self,
        base: GroupClusterer,
        *,
        min_group_size: int = 5,
        merge_threshold: float | None = 0.98,
    ) -> None:
        self.base = base
        self.min_group_size = min_group_size
        self.merge_threshold = merge_threshold

    def _check_params(self) -> None:
        if not isinstance(self.base, GroupClusterer):
            raise ConfigError(
                "base must be a GroupClusterer (e.g. KMeansGroups()); "
                f"got {type(self.base).__name__}"
            )
        check_int("min_group_size", self.min_group_size, minimum=1)
        _check_threshold(self.merge_threshold)

    def _fit_labels(self, X: FloatMatrix) -> tuple[IntVector, dict[int, float]]:
        self.base_ = clone(self.base).fit(X)
        result = postprocess_groups(
            X,
            self.base_.labels_,
            min_group_size=self.min_group_size,
            merge_threshold=self.merge_threshold,
        )
        self.merged_ = result.merged
        self.folded_ = result.folded
        self.label_map_ = result.label_map
        return result.labels, self.base_.k_scores_

    def _silhouette_params(self) -> tuple[int, int | None]:
        base: Any = getattr(self, "base_", self.base)
        params: tuple[int, int | None] = base._silhouette_params()
        return params
