"""Fine partitions: several k-means fits of the user vectors, each on a random subsample.

Past four to eight groups, users' vectors form a continuum: no single partition is both
fine and stable, but the *mean* over several fine partitions, each fitted on 80 % of the
users, predicts behaviour far better than the stable segments and recommends stable lists
(``docs/benchmarks.md``). This module fits those partitions and measures how well they
agree; :class:`usergroups.recommend.fine_groups.FineGroups` turns them into scores, and
users are placed into each partition by :func:`usergroups.linalg.nearest_rows`.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = np.repeat(np.eye(4, dtype=np.float32), 30, axis=0)
>>> X += 0.05 * rng.standard_normal(X.shape).astype(np.float32)
>>> fit_fine_partitions(X, n_fine=4, n_partitions=3, random_state=0).shape
(3, 4, 4)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from usergroups._typing import FloatMatrix
from usergroups.errors import ConfigError, DataError
from usergroups.linalg import unit_rows

__all__ = [
    "MAX_FIT_ROWS",
    "SUBSAMPLE",
    "fine_group_stability",
    "fit_fine_partitions",
    "representative_partition",
]

SUBSAMPLE = 0.8
"""Share of the users each partition is fitted on (the resampling share of the stability
measure, so the ensemble averages over the same variation the stability rule sees)."""

MAX_FIT_ROWS = 50_000
"""At most this many users are fitted per partition; every user is then placed by the
nearest centroid, which is linear. Bounds a fit's cost at a million users."""

_EXACT_ROWS = 20_000
"""Up to this many rows a partition is plain k-means (Lloyd, k-means++ init); above it,
mini-batch k-means (the same objective, a fraction of the passes)."""


def fit_fine_partitions(
    vectors: npt.ArrayLike,
    n_fine: int,
    n_partitions: int,
    *,
    subsample: float = SUBSAMPLE,
    max_rows: int = MAX_FIT_ROWS,
    random_state: int | None = None,
    first: int = 0,
) -> FloatMatrix:
    """Centroids of ``n_partitions`` k-means fits with ``n_fine`` groups each.

    Each partition is fitted on its own random ``subsample`` of the users with a non-zero
    vector (at most ``max_rows``) with its own seed; all-zero rows (users with nothing to
    place) take no part.

    Parameters
    ----------
    vectors : array-like of shape (n_users, n_features)
        The fused user vectors (rows are normalised here).
    n_fine : int
        Groups per partition (capped by the users available).
    n_partitions : int
    subsample : float in (0, 1]
    max_rows : int
    random_state : int or None
    first : int
        Fit only partitions ``first`` to ``n_partitions - 1``: partition ``i`` is the same
        whatever the number fitted (one seeded stream), so a search that has the first
        ``first`` extends them without fitting them again.

    Returns
    -------
    ndarray of shape (n_partitions - first, k, n_features), float32
        Unit-length centroids; ``k = min(n_fine, users fitted)``.
    """
    if n_fine < 1 or n_partitions < 1:
        raise ConfigError(
            f"fine partitions need n_fine >= 1 and n_partitions >= 1, got {n_fine} and "
            f"{n_partitions}"
        )
    if not 0.0 < subsample <= 1.0:
        raise ConfigError(f"subsample={subsample} is not in (0, 1]")
    if not 0 <= first < n_partitions:
        raise ConfigError(f"first={first} is not a partition of {n_partitions}")
    from sklearn.cluster import KMeans, MiniBatchKMeans

    x = unit_rows(vectors)
    rows = np.flatnonzero(np.any(x != 0, axis=1))
    if len(rows) < 2:
        raise DataError(
            f"fine partitions need at least 2 users with a vector, got {len(rows)}; "
            "use more data or turn fine groups off (clustering.fine_partitions = 0)"
        )
    size = max(2, min(round(subsample * len(rows)), max_rows))
    k = min(int(n_fine), size)
    rng = np.random.default_rng(random_state)
    out = np.zeros((n_partitions - first, k, x.shape[1]), dtype=np.float32)
    for p in range(n_partitions):
        sample = np.sort(rng.choice(rows, size=size, replace=False))
        seed = int(rng.integers(2**31 - 1))
        if p < first:
            continue  # drawn as before, so that later partitions are the same
        model: Any
        if size <= _EXACT_ROWS:
            model = KMeans(n_clusters=k, n_init=1, random_state=seed)
        else:
            model = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=seed)
        model.fit(x[sample])
        out[p - first] = unit_rows(model.cluster_centers_)
    return out


def fine_group_stability(labels: npt.ArrayLike, partition: int) -> npt.NDArray[np.float64]:
    """Each group of one partition's best Jaccard index with a group of every other
    partition, averaged over the others (Hennig's clusterboot, on the ensemble itself).

    The partitions were fitted on different 80 % subsamples with different seeds, so this
    is the stability the segments' rule measures, at no extra fit.

    Parameters
    ----------
    labels : array-like of shape (n_users, n_partitions)
        Each user's group in each partition (-1: placed nowhere).
    partition : int
        The partition whose groups are measured.

    Returns
    -------
    ndarray of shape (n_groups,)
        NaN for an empty group, or when there is only one partition.
    """
    lab = np.asarray(labels, dtype=np.int64)
    own = lab[:, partition]
    n_groups = int(own.max()) + 1 if (own >= 0).any() else 0
    others = [q for q in range(lab.shape[1]) if q != partition]
    out = np.full(n_groups, np.nan)
    if not others:
        return out
    for g in range(n_groups):
        members = own == g
        size = int(members.sum())
        if size == 0:
            continue
        best = []
        for q in others:
            theirs = lab[:, q]
            overlap = np.bincount(theirs[members & (theirs >= 0)], minlength=1)
            sizes = np.bincount(theirs[theirs >= 0], minlength=len(overlap))[: len(overlap)]
            jaccard = overlap / np.maximum(size + sizes - overlap, 1)
            best.append(float(jaccard.max()) if len(jaccard) else 0.0)
        out[g] = float(np.mean(best))
    return out


def representative_partition(labels: npt.ArrayLike) -> int:
    """The partition that agrees most with the others (highest mean adjusted Rand index):
    the one whose groups are shown as sub-interests.

    Parameters
    ----------
    labels : array-like of shape (n_users, n_partitions)
    """
    from sklearn.metrics import adjusted_rand_score

    lab = np.asarray(labels, dtype=np.int64)
    n = lab.shape[1]
    if n <= 1:
        return 0
    placed = np.all(lab >= 0, axis=1)
    lab = lab[placed]
    agreement = np.zeros(n)
    for p in range(n):
        for q in range(p + 1, n):
            ari = adjusted_rand_score(lab[:, p], lab[:, q])
            agreement[p] += ari
            agreement[q] += ari
    return int(np.argmax(agreement))
