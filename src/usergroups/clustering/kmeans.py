"""k-means on L2-normalised user vectors (spherical k-means in effect).

:class:`KMeansGroups` wraps :class:`sklearn.cluster.KMeans` (Lloyd, k-means++
initialisation); :class:`MiniBatchKMeansGroups` wraps
:class:`sklearn.cluster.MiniBatchKMeans` for hundreds of thousands of users and more.

With ``n_groups="auto"`` every ``k`` in ``k_min .. min(k_max, n_users - 1)`` is fitted
with only ``search_n_init`` initialisations (default 3) and scored by cosine
silhouette on a seeded sample; the best ``k`` is then refitted with the full
``n_init``. Because scikit-learn draws the initialisations from one seeded
generator in order, the refit includes the search run's initialisations, so it is
never worse in inertia than the candidate that won.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Literal

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from usergroups._typing import FloatMatrix, IntVector
from usergroups.clustering.base import (
    GroupClusterer,
    candidate_ks,
    check_int,
    check_n_groups,
    select_n_groups,
)
from usergroups.errors import ConfigError

__all__ = ["KMeansGroups", "MiniBatchKMeansGroups"]

logger = logging.getLogger(__name__)


class _KMeansFamily(GroupClusterer):
    """Shared parameter checks and auto-``k`` search of the k-means estimators."""

    n_groups: int | Literal["auto"]
    k_min: int
    k_max: int
    n_init: int
    search_n_init: int
    silhouette_sample: int
    random_state: int | None

    def _check_params(self) -> None:
        check_n_groups(self.n_groups)
        k_min = check_int("k_min", self.k_min, minimum=2)
        k_max = check_int("k_max", self.k_max, minimum=2)
        if k_max < k_min:
            raise ConfigError(f"k_max={k_max} is smaller than k_min={k_min}; raise k_max")
        check_int("n_init", self.n_init, minimum=1)
        check_int("search_n_init", self.search_n_init, minimum=1)
        check_int("silhouette_sample", self.silhouette_sample, minimum=2)

    n_iter_: int

    @abstractmethod
    def _labels(self, X: FloatMatrix, k: int, n_init: int) -> tuple[IntVector, int]:
        """Labels of shape (n_users,) and the iterations run, from one fit with ``k`` groups
        and ``n_init`` inits (the iterations of the best init)."""

    def _fit_labels(self, X: FloatMatrix) -> tuple[IntVector, dict[int, float]]:
        n_users = X.shape[0]
        if self.n_groups != "auto":
            k = int(self.n_groups)
            if k > n_users:
                raise ConfigError(
                    f"n_groups={k} but X has only {n_users} users (n_samples={n_users}); "
                    f"use n_groups <= {n_users} or 'auto'"
                )
            labels, self.n_iter_ = self._labels(X, k, self.n_init)
            return labels, {}
        ks = candidate_ks(self.k_min, self.k_max, n_users)
        if not ks:
            logger.warning(
                "%d users are too few to choose between %d and %d groups; using one group",
                n_users,
                self.k_min,
                self.k_max,
            )
            self.n_iter_ = 0
            return np.zeros(n_users, dtype=np.int64), {}
        search_n_init = min(self.search_n_init, self.n_init)
        n_iter: dict[int, int] = {}

        def labels_for_k(k: int) -> IntVector:
            labels, n_iter[k] = self._labels(X, k, search_n_init)
            return labels

        k, labels, scores = select_n_groups(
            X,
            ks,
            labels_for_k,
            sample_size=self.silhouette_sample,
            random_state=self.random_state,
        )
        self.n_iter_ = n_iter[k]
        if self.n_init > search_n_init:
            labels, self.n_iter_ = self._labels(X, k, self.n_init)
        return labels, scores


class KMeansGroups(_KMeansFamily):
    """Groups users with k-means (k-means++ initialisation, Lloyd iterations).

    Parameters
    ----------
    n_groups : int or "auto", default="auto"
        Number of groups, or ``"auto"`` to choose it by cosine silhouette.
    k_min, k_max : int, default=2, 20
        Range of ``n_groups`` tried in auto mode (capped at ``n_users - 1``).
    n_init : int, default=10
        k-means++ initialisations of the final fit; the best inertia wins.
    search_n_init : int, default=3
        Initialisations per candidate ``k`` in auto mode (capped at ``n_init``); the
        chosen ``k`` is refitted with ``n_init``.
    max_iter : int, default=300
        Lloyd iterations per initialisation.
    silhouette_sample : int, default=5000
        Users scored for the silhouette (the cost grows with its square).
    random_state : int or None, default=None
        Seed of every initialisation and of the silhouette sample.

    Attributes
    ----------
    labels_ : ndarray of shape (n_users,), int64
    centroids_ : ndarray of shape (n_groups_, n_features), float32
    n_groups_ : int
    k_scores_ : dict[int, float]
    silhouette_ : float
    n_features_in_ : int
    n_iter_ : int
        Iterations of the final fit (of its best initialisation).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(4, dtype=np.float32), 25, axis=0)
    >>> X += 0.05 * rng.standard_normal(X.shape).astype(np.float32)
    >>> model = KMeansGroups(k_max=6, random_state=0).fit(X)
    >>> model.n_groups_, max(model.k_scores_, key=model.k_scores_.get)
    (4, 4)
    """

    def __init__(
        self,
        n_groups: int | Literal["auto"] = "auto",
        *,
        k_min: int = 2,
        k_max: int = 20,
        n_init: int = 10,
        search_n_init: int = 3,
        max_iter: int = 300,
        silhouette_sample: int = 5000,
        random_state: int | None = None,
    ) -> None:
        self.n_groups = n_groups
        self.k_min = k_min
        self.k_max = k_max
        self.n_init = n_init
        self.search_n_init = search_n_init
        self.max_iter = max_iter
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int("max_iter", self.max_iter, minimum=1)

    def _labels(self, X: FloatMatrix, k: int, n_init: int) -> tuple[IntVector, int]:
        model = KMeans(
            n_clusters=k,
            init="k-means++",
            n_init=n_init,
            max_iter=self.max_iter,
            algorithm="lloyd",
            random_state=self.random_state,
        ).fit(X)
        return np.asarray(model.labels_, dtype=np.int64), int(model.n_iter_)


class MiniBatchKMeansGroups(_KMeansFamily):
    """Groups users with mini-batch k-means: far faster than k-means for large ``n_users``.

    Parameters
    ----------
    n_groups : int or "auto", default="auto"
        Number of groups, or ``"auto"`` to choose it by cosine silhouette.
    k_min, k_max : int, default=2, 20
        Range of ``n_groups`` tried in auto mode (capped at ``n_users - 1``).
    n_init : int, default=3
        k-means++ initialisations (each on a random subset); the best inertia wins.
    search_n_init : int, default=3
        Initialisations per candidate ``k`` in auto mode (capped at ``n_init``).
    batch_size : int, default=1024
        Users per mini-batch.
    max_iter : int, default=100
        Passes over the data.
    silhouette_sample : int, default=5000
        Users scored for the silhouette.
    random_state : int or None, default=None
        Seed of initialisation, batches and the silhouette sample.

    Attributes
    ----------
    labels_ : ndarray of shape (n_users,), int64
    centroids_ : ndarray of shape (n_groups_, n_features), float32
    n_groups_ : int
    k_scores_ : dict[int, float]
    silhouette_ : float
    n_features_in_ : int
    n_iter_ : int
        Iterations of the final fit (of its best initialisation).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(4, dtype=np.float32), 25, axis=0)
    >>> X += 0.05 * rng.standard_normal(X.shape).astype(np.float32)
    >>> MiniBatchKMeansGroups(n_groups=4, random_state=0).fit(X).n_groups_
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
        batch_size: int = 1024,
        max_iter: int = 100,
        silhouette_sample: int = 5000,
        random_state: int | None = None,
    ) -> None:
        self.n_groups = n_groups
        self.k_min = k_min
        self.k_max = k_max
        self.n_init = n_init
        self.search_n_init = search_n_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("max_iter", self.max_iter, minimum=1)

    def _labels(self, X: FloatMatrix, k: int, n_init: int) -> tuple[IntVector, int]:
        model = MiniBatchKMeans(
            n_clusters=k,
            init="k-means++",
            n_init=n_init,
            batch_size=self.batch_size,
            max_iter=self.max_iter,
            random_state=self.random_state,
        ).fit(X)
        return np.asarray(model.labels_, dtype=np.int64), int(model.n_iter_)
