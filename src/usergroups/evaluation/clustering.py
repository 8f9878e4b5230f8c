"""Clustering metrics: geometry, stability, group sizes, noise and group lift.

``labels`` is always an integer array of shape (n_users,); a negative label
(HDBSCAN's ``-1``) marks a noise user. Geometric metrics leave noise users out.
Where a metric is undefined (fewer than two groups, too few users) it returns
``NaN`` and logs why, so sweeps over the number of groups keep running.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from usergroups.errors import DataError
from usergroups.evaluation.baselines import GroupPopularityRecommender, PopularityRecommender
from usergroups.evaluation.evaluate import evaluate_recommender
from usergroups.evaluation.splits import Split
from usergroups.linalg import unit_rows

__all__ = [
    "calinski_harabasz",
    "davies_bouldin",
    "group_lift",
    "group_size_summary",
    "inter_group_separation",
    "intra_group_similarity",
    "noise_share",
    "silhouette",
    "stability",
]

logger = logging.getLogger(__name__)

Labels = npt.NDArray[np.int64]


def silhouette(
    vectors: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    sample_size: int | None = 10_000,
    random_state: int | np.random.Generator | None = 0,
    metric: str = "cosine",
) -> float:
    """Mean silhouette coefficient (cosine by default) over a seeded sample of non-noise users.

    Parameters
    ----------
    vectors : array-like of shape (n_users, n_features)
        User vectors.
    labels : array-like of shape (n_users,)
        Group per user; negative = noise (left out).
    sample_size : int or None
        Users sampled (without replacement) before computing; ``None`` uses all.
        The cost is quadratic in the sample size.
    random_state : int, Generator or None
        Seed of the sample.
    metric : str
        Any metric of :func:`sklearn.metrics.pairwise_distances`.

    Returns
    -------
    float in [-1, 1], NaN with fewer than 2 groups in the sample.
    """
    from sklearn.metrics import silhouette_score

    x, y = _clustered(vectors, labels)
    if sample_size is not None and len(y) > sample_size:
        rng = np.random.default_rng(random_state)
        chosen = np.sort(rng.choice(len(y), size=sample_size, replace=False))
        x, y = x[chosen], y[chosen]
    n_groups = len(np.unique(y))
    if n_groups < 2 or n_groups >= len(y):
        logger.info("silhouette undefined for %d group(s) over %d user(s)", n_groups, len(y))
        return float("nan")
    return float(silhouette_score(x, y, metric=metric))


def davies_bouldin(vectors: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Davies–Bouldin index (Euclidean, lower is better) of the non-noise users.

    Returns NaN with fewer than 2 groups. Parameters as in :func:`silhouette`.
    """
    from sklearn.metrics import davies_bouldin_score

    x, y = _clustered(vectors, labels)
    if not _at_least_two_groups(y, "davies_bouldin"):
        return float("nan")
    return float(davies_bouldin_score(x, y))


def calinski_harabasz(vectors: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Calinski–Harabasz index (higher is better) of the non-noise users.

    Returns NaN with fewer than 2 groups. Parameters as in :func:`silhouette`.
    """
    from sklearn.metrics import calinski_harabasz_score

    x, y = _clustered(vectors, labels)
    if not _at_least_two_groups(y, "calinski_harabasz"):
        return float("nan")
    return float(calinski_harabasz_score(x, y))


def intra_group_similarity(vectors: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean cosine similarity between two distinct members of the same group.

    Averaged over all such pairs of non-noise users (so large groups weigh more);
    computed from group sums of unit vectors, without the pairwise matrix.

    Returns
    -------
    float in [-1, 1], NaN when no group has two members.
    """
    x, y = _clustered(vectors, labels)
    unit = unit_rows(x, dtype="float64")
    _, codes = np.unique(y, return_inverse=True)
    sums = np.zeros((codes.max(initial=-1) + 1, unit.shape[1]))
    np.add.at(sums, codes, unit)
    sizes = np.bincount(codes).astype(np.float64)
    self_sim = np.bincount(codes, weights=(unit * unit).sum(axis=1))
    pair_sum = float(((sums * sums).sum(axis=1) - self_sim).sum())
    n_pairs = float((sizes * (sizes - 1)).sum())
    return pair_sum / n_pairs if n_pairs > 0 else float("nan")


def inter_group_separation(vectors: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean cosine *distance* (1 - cosine) between the centroids of two distinct groups.

    Returns
    -------
    float in [0, 2], NaN with fewer than 2 groups.
    """
    x, y = _clustered(vectors, labels)
    if not _at_least_two_groups(y, "inter_group_separation"):
        return float("nan")
    groups, codes = np.unique(y, return_inverse=True)
    centroids = np.zeros((len(groups), x.shape[1]))
    np.add.at(centroids, codes, x)
    centroids /= np.bincount(codes)[:, None]
    unit = unit_rows(centroids, dtype="float64")
    sim = unit @ unit.T
    upper = np.triu_indices(len(groups), k=1)
    return float(np.mean(1.0 - sim[upper]))


def stability(
    labels_for_seed: Callable[[int], npt.ArrayLike], seeds: Sequence[int] = (0, 1, 2, 3, 4)
) -> float:
    """Mean adjusted Rand index over all pairs of labelings made with different seeds.

    Parameters
    ----------
    labels_for_seed : callable
        ``labels_for_seed(seed) -> labels of shape (n_users,)``, e.g. a closure that
        fits the clustering with ``random_state=seed``.
    seeds : sequence of int
        At least two seeds (``DESIGN.md``: 5).

    Returns
    -------
    float
        1 for identical partitions (up to renaming), about 0 for unrelated ones.

    Examples
    --------
    >>> stability(lambda seed: [0, 0, 1, 1] if seed % 2 else [1, 1, 0, 0])
    1.0
    """
    from sklearn.metrics import adjusted_rand_score

    seeds = list(seeds)
    if len(seeds) < 2:
        raise DataError(f"stability needs at least 2 seeds; got {seeds}")
    labelings = [np.asarray(labels_for_seed(seed)) for seed in seeds]
    sizes = {len(lab) for lab in labelings}
    if len(sizes) != 1:
        raise DataError(
            f"labels_for_seed returned labelings of different lengths {sorted(sizes)}; "
            "every run must label the same users"
        )
    scores = [adjusted_rand_score(a, b) for a, b in itertools.combinations(labelings, 2)]
    return float(np.mean(scores))


def noise_share(labels: npt.ArrayLike) -> float:
    """Share of users labelled as noise (negative label); 0 for an empty labeling."""
    y = _labels(labels)
    return float((y < 0).mean()) if len(y) else 0.0


def group_size_summary(labels: npt.ArrayLike) -> dict[str, Any]:
    """Distribution of group sizes (noise users not counted as a group).

    Returns
    -------
    dict
        ``n_users``, ``n_groups``, ``noise_share``, ``min``, ``median``, ``mean``,
        ``max`` (sizes), ``largest_share`` and ``smallest_share`` (of all users),
        ``gini`` (0 = equal sizes) and ``sizes`` (group id → size, largest first).
    """
    y = _labels(labels)
    groups, sizes = np.unique(y[y >= 0], return_counts=True)
    order = np.lexsort((groups, -sizes))
    n = len(y)
    if len(sizes) == 0:
        return {
            "n_users": n,
            "n_groups": 0,
            "noise_share": noise_share(y),
            "min": 0,
            "median": 0.0,
            "mean": 0.0,
            "max": 0,
            "largest_share": 0.0,
            "smallest_share": 0.0,
            "gini": 0.0,
            "sizes": {},
        }
    sorted_sizes = np.sort(sizes).astype(np.float64)
    ranks = np.arange(1, len(sorted_sizes) + 1)
    gini = float(
        (2 * ranks - len(sorted_sizes) - 1).dot(sorted_sizes)
        / (len(sorted_sizes) * sorted_sizes.sum())
    )
    return {
        "n_users": n,
        "n_groups": len(groups),
        "noise_share": noise_share(y),
        "min": int(sizes.min()),
        "median": float(np.median(sizes)),
        "mean": float(sizes.mean()),
        "max": int(sizes.max()),
        "largest_share": float(sizes.max() / n),
        "smallest_share": float(sizes.min() / n),
        "gini": gini,
        "sizes": {int(groups[i]): int(sizes[i]) for i in order},
    }


def group_lift(
    labels: npt.ArrayLike, split: Split, *, k: int = 10, batch_size: int = 1024
) -> float:
    """NDCG@k of group popularity divided by NDCG@k of global popularity.

    Every test user is recommended the items most consumed (in training) by the
    members of their group, seen items masked; noise users get global popularity.
    ``DESIGN.md`` defines it on the warm split with ``k=10``. Above 1 means the
    groups capture behaviour that global popularity misses.

    Parameters
    ----------
    labels : array-like of shape (n_users,)
        Group of every user of ``split.dataset`` (in ``dataset.user_ids`` order);
        negative = noise.
    split : Split
        Usually :func:`~usergroups.evaluation.warm_split`.
    k : int
        Cut-off.
    batch_size : int
        Users scored at once.

    Returns
    -------
    float
    """
    y = _labels(labels)
    if len(y) != split.n_users:
        raise DataError(
            f"labels has {len(y)} entries but the split's dataset has {split.n_users} users; "
            "pass one label per user in dataset.user_ids order (-1 for noise)"
        )
    key = f"NDCG@{k}"
    group = evaluate_recommender(
        GroupPopularityRecommender(y).fit(split.train), split, (k,), batch_size=batch_size
    )[key]
    pop = evaluate_recommender(
        PopularityRecommender().fit(split.train), split, (k,), batch_size=batch_size
    )[key]
    logger.info("group lift: %s group-pop %.4f / Pop %.4f", key, group, pop)
    if pop == 0:
        logger.warning("group lift undefined: global popularity has %s = 0", key)
        return float("nan")
    return group / pop


# -- internals ----------------------------------------------------------------


def _labels(labels: npt.ArrayLike) -> Labels:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise DataError(f"labels must be 1-D (n_users,); got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            return y.astype(np.int64)
        raise DataError(f"labels must be integers (negative = noise); got dtype {y.dtype}")
    return y.astype(np.int64)


def _clustered(
    vectors: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], Labels]:
    x = np.asarray(vectors, dtype="float64")
    y = _labels(labels)
    if x.ndim != 2 or x.shape[0] != len(y):
        raise DataError(
            f"vectors must have shape (n_users, n_features) with n_users = len(labels) = "
            f"{len(y)}; got {x.shape}"
        )
    keep = y >= 0
    return x[keep], y[keep]


def _at_least_two_groups(y: Labels, what: str) -> bool:
    n_groups = len(np.unique(y))
    if n_groups < 2 or n_groups >= len(y):
        logger.info("%s undefined for %d group(s) over %d user(s)", what, n_groups, len(y))
        return False
    return True
