"""k-means with FAISS for millions of users: train on a sample, label everybody.

scikit-learn's Lloyd k-means on 1M × 384 vectors with k = 100 takes minutes on two
cores (a minute of it in k-means++ initialisation); FAISS trains on a seeded sample of
at most ``max_points_per_group * k`` users in about a second, then labels all users by
their nearest centroid (one matrix product per block), with inertia within about 0.4 %
of a full fit. Rows are unit vectors, so the centroids are re-normalised each iteration
(spherical k-means): the nearest centroid by inner product is the nearest by cosine.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from usergroups._deps import require
from usergroups._typing import FloatMatrix, IntVector
from usergroups.clustering.base import check_int
from usergroups.clustering.kmeans import _KMeansFamily

__all__ = ["FaissKMeansGroups", "kmeans_plusplus_seeds", "label_by_centroids"]

logger = logging.getLogger(__name__)

_LABEL_BLOCK = 65536  # users labelled per matrix product; bounds the temporary memory


def kmeans_plusplus_seeds(X: FloatMatrix, k: int, rng: np.random.Generator) -> FloatMatrix:
    """k-means++ seeding: each next seed drawn with probability ∝ squared distance.

    Plain k-means++ (one candidate per step) with one matrix-vector product per seed:
    scikit-learn's version (with local trials, in float64) took most of the time of
    grouping a million users.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32
    k : int
        Number of seeds, ``<= n_samples``.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (k, n_features), float32
    """
    n = X.shape[0]
    sq_norms = np.einsum("ij,ij->i", X, X)
    seeds = np.empty((k, X.shape[1]), dtype=np.float32)
    chosen = int(rng.integers(n))
    seeds[0] = X[chosen]
    closest = np.maximum(sq_norms + sq_norms[chosen] - 2.0 * (X @ X[chosen]), 0.0)
    for i in range(1, k):
        total = float(closest.sum(dtype=np.float64))
        if total > 0:
            chosen = int(rng.choice(n, p=closest.astype(np.float64) / total))
        else:  # every point coincides with a seed: any point will do
            chosen = int(rng.integers(n))
        seeds[i] = X[chosen]
        dist = np.maximum(sq_norms + sq_norms[chosen] - 2.0 * (X @ X[chosen]), 0.0)
        np.minimum(closest, dist, out=closest)
    return seeds


def label_by_centroids(X: FloatMatrix, centroids: FloatMatrix) -> IntVector:
    """Index of the centroid with the largest inner product with each row, in blocks.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features), float32
    centroids : ndarray of shape (n_groups, n_features), float32

    Returns
    -------
    ndarray of shape (n_users,), int64

    Examples
    --------
    >>> C = np.eye(2, dtype=np.float32)
    >>> label_by_centroids(np.array([[0.2, 0.9], [1, 0]], dtype=np.float32), C).tolist()
    [1, 0]
    """
    labels = np.empty(X.shape[0], dtype=np.int64)
    ct = np.ascontiguousarray(centroids.T, dtype=np.float32)
    for begin in range(0, X.shape[0], _LABEL_BLOCK):
        block = X[begin : begin + _LABEL_BLOCK]
        labels[begin : begin + len(block)] = np.argmax(block @ ct, axis=1)
    return labels


class FaissKMeansGroups(_KMeansFamily):
    """Groups users with FAISS k-means trained on a sample: for 10^5–10^7 users.

    Parameters
    ----------
    n_groups : int or "auto", default="auto"
        Number of groups, or ``"auto"`` to choose it by cosine silhouette (on a sample).
    k_min, k_max : int, default=2, 20
        Range of ``n_groups`` tried in auto mode.
    n_init : int, default=3
        Trainings from different k-means++ seeds; the best objective wins.
    search_n_init : int, default=3
        Trainings per candidate ``k`` in auto mode (capped at ``n_init``).
    max_iter : int, default=25
        Iterations per training.
    max_points_per_group : int, default=256
        Training sample: at most this many users per group (FAISS's default); all users
        are labelled afterwards.
    silhouette_sample : int, default=5000
        Users scored for the silhouette.
    random_state : int or None, default=None
        Seed of the training sample, the initialisation and the silhouette sample.

    Attributes
    ----------
    labels_ : ndarray of shape (n_users,), int64
    centroids_ : ndarray of shape (n_groups_, n_features), float32
    n_groups_ : int
    k_scores_ : dict[int, float]
    silhouette_ : float
    n_features_in_ : int
    n_iter_ : int
        Iterations of the final training (of its best initialisation).

    Raises
    ------
    MissingDependencyError
        When ``faiss-cpu`` is not installed (``pip install 'usergroups[fast]'``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(4, dtype=np.float32), 50, axis=0)
    >>> X += 0.05 * rng.standard_normal(X.shape).astype(np.float32)
    >>> FaissKMeansGroups(n_groups=4, random_state=0).fit(X).n_groups_  # doctest: +SKIP
    4
    """

    def __init__(
        self,
        n_groups: int | Literal["auto"] = "auto",
        *,
        k_min: int = 2,
        k_max: int = 20,
        n_init: int = 3,
        search_n_init: int = 3,
        max_iter: int = 25,
        max_points_per_group: int = 256,
        silhouette_sample: int = 5000,
        random_state: int | None = None,
    ) -> None:
        self.n_groups = n_groups
        self.k_min = k_min
        self.k_max = k_max
        self.n_init = n_init
        self.search_n_init = search_n_init
        self.max_iter = max_iter
        self.max_points_per_group = max_points_per_group
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int("max_iter", self.max_iter, minimum=1)
        check_int("max_points_per_group", self.max_points_per_group, minimum=1)

    def _labels(self, X: FloatMatrix, k: int, n_init: int) -> tuple[IntVector, int]:
        faiss: Any = require("faiss", "fast", package="faiss-cpu")
        seed = 0 if self.random_state is None else int(self.random_state) % (2**31)
        n_sample = min(X.shape[0], self.max_points_per_group * k)
        if n_sample < X.shape[0]:
            rng = np.random.default_rng(seed)
            sample = np.ascontiguousarray(X[np.sort(rng.choice(X.shape[0], n_sample, False))])
        else:
            sample = np.ascontiguousarray(X)
        # k-means++ seeds (FAISS alone seeds at random, which on small or uneven data ends in
        # poor local optima); each init trains from its own seeds, the lowest objective wins
        best: tuple[float, FloatMatrix, int] | None = None
        for init in range(n_init):
            seeds = kmeans_plusplus_seeds(sample, k, np.random.default_rng(seed + init))
            kmeans = faiss.Kmeans(
                X.shape[1],
                k,
                niter=self.max_iter,
                spherical=True,
                seed=seed + init,
                max_points_per_centroid=self.max_points_per_group,
                verbose=False,
            )
            kmeans.train(sample, init_centroids=np.ascontiguousarray(seeds, dtype=np.float32))
            objective = float(kmeans.obj[-1]) if len(kmeans.obj) else 0.0
            # spherical k-means maximises the summed inner product
            if best is None or objective > best[0]:
                n_iter = len(kmeans.obj) or self.max_iter
                best = (objective, np.asarray(kmeans.centroids, dtype=np.float32), n_iter)
        assert best is not None
        return label_by_centroids(X, best[1]), best[2]
