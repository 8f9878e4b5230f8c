"""Density-based grouping with HDBSCAN: it finds the number of groups and flags noise.

Wraps :class:`sklearn.cluster.HDBSCAN` with Euclidean distance on L2-normalised
vectors (a monotone function of cosine distance). Users in no dense region get
the label ``-1``; they have no centroid and are left out of the silhouette.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from sklearn.cluster import HDBSCAN

from usergroups._typing import FloatMatrix, IntVector
from usergroups.clustering.base import NOISE, GroupClusterer, check_choice, check_int
from usergroups.errors import ConfigError

__all__ = ["HDBSCANGroups"]

logger = logging.getLogger(__name__)

_SELECTION_METHODS = ("eom", "leaf")


class HDBSCANGroups(GroupClusterer):
    """Groups users with HDBSCAN; the number of groups follows from the data.

    Parameters
    ----------
    min_cluster_size : int, default=5
        Smallest group HDBSCAN reports; smaller dense spots become noise.
    min_samples : int or None, default=None
        Neighbours that make a user a core point (``None``: ``min_cluster_size``);
        larger values call more users noise.
    cluster_selection_method : {"eom", "leaf"}, default="eom"
        ``"eom"`` picks the most persistent groups, ``"leaf"`` many small, even ones.
    silhouette_sample : int, default=5000
        Users scored for the silhouette.
    random_state : int or None, default=None
        Seed of the silhouette sample (HDBSCAN itself is deterministic).

    Attributes
    ----------
    labels_ : ndarray of shape (n_users,), int64
        ``-1`` marks noise.
    centroids_ : ndarray of shape (n_groups_, n_features), float32
        Mean of each group's members; noise is left out.
    n_groups_ : int
    k_scores_ : dict[int, float]
        Always empty: HDBSCAN does not search over numbers of groups.
    silhouette_ : float
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, dtype=np.float32), 20, axis=0)
    >>> X += 0.02 * rng.standard_normal(X.shape).astype(np.float32)
    >>> HDBSCANGroups(min_cluster_size=5).fit(X).n_groups_
    3
    """

    def __init__(
        self,
        *,
        min_cluster_size: int = 5,
        min_samples: int | None = None,
        cluster_selection_method: Literal["eom", "leaf"] = "eom",
        silhouette_sample: int = 5000,
        random_state: int | None = None,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _check_params(self) -> None:
        check_int("min_cluster_size", self.min_cluster_size, minimum=2)
        if self.min_samples is not None:
            check_int("min_samples", self.min_samples, minimum=1)
        check_choice("cluster_selection_method", self.cluster_selection_method, _SELECTION_METHODS)
        check_int("silhouette_sample", self.silhouette_sample, minimum=2)

    def _fit_labels(self, X: FloatMatrix) -> tuple[IntVector, dict[int, float]]:
        n_users = X.shape[0]
        if n_users < self.min_cluster_size:
            logger.warning(
                "%d users are fewer than min_cluster_size=%d; every user is noise",
                n_users,
                self.min_cluster_size,
            )
            return np.full(n_users, NOISE, dtype=np.int64), {}
        if self.min_samples is not None and self.min_samples > n_users:
            raise ConfigError(
                f"min_samples={self.min_samples} but X has only {n_users} users "
                f"(n_samples={n_users}); use min_samples <= {n_users} or None"
            )
        model = HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            cluster_selection_method=self.cluster_selection_method,
            metric="euclidean",
            # fit works on its own normalised copy, so HDBSCAN need not copy again
            copy=False,
        ).fit(X)
        labels = np.asarray(model.labels_, dtype=np.int64)
        # HDBSCAN uses -2/-3 for infinite/missing rows; validation excludes them, but keep
        # the contract of a single noise label regardless
        return np.where(labels < 0, NOISE, labels), {}
