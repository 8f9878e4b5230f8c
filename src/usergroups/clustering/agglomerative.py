"""Agglomerative (Ward) grouping of L2-normalised user vectors.

The merge tree is built once (:func:`scipy.cluster.hierarchy.linkage` with
``method="ward"``, which scikit-learn's ``AgglomerativeClustering(linkage="ward")``
also uses) and cut at every candidate number of groups, so ``n_groups="auto"`` costs
little more than one fixed ``k``. Building the tree needs all pairwise distances: O(n_users²) memory
(about 1.6 GB at 20,000 users), hence the ``max_users`` guard.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from scipy.cluster.hierarchy import cut_tree, linkage
from scipy.spatial.distance import pdist

from usergroups._typing import FloatMatrix, IntVector
from usergroups.clustering.base import (
    GroupClusterer,
    candidate_ks,
    check_int,
    check_n_groups,
    select_n_groups,
)
from usergroups.errors import ConfigError

__all__ = ["AgglomerativeGroups"]

logger = logging.getLogger(__name__)


class AgglomerativeGroups(GroupClusterer):
    """Groups users by Ward agglomerative clustering on the unit sphere.

    Parameters
    ----------
    n_groups : int or "auto", default="auto"
        Number of groups, or ``"auto"`` to choose it by cosine silhouette.
    k_min, k_max : int, default=2, 20
        Range of ``n_groups`` tried in auto mode (capped at ``n_users - 1``).
    max_users : int, default=20000
        Refuse more users than this: the merge tree needs O(n_users²) memory.
    silhouette_sample : int, default=5000
        Users scored for the silhouette.
    random_state : int or None, default=None
        Seed of the silhouette sample (Ward itself is deterministic).

    Attributes
    ----------
    labels_ : ndarray of shape (n_users,), int64
    centroids_ : ndarray of shape (n_groups_, n_features), float32
        Mean of each group's members.
    n_groups_ : int
    k_scores_ : dict[int, float]
    silhouette_ : float
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, dtype=np.float32), 20, axis=0)
    >>> X += 0.05 * rng.standard_normal(X.shape).astype(np.float32)
    >>> AgglomerativeGroups(k_max=5, random_state=0).fit(X).n_groups_
    3
    """

    def __init__(
        self,
        n_groups: int | Literal["auto"] = "auto",
        *,
        k_min: int = 2,
        k_max: int = 20,
        max_users: int = 20_000,
        silhouette_sample: int = 5000,
        random_state: int | None = None,
    ) -> None:
        self.n_groups = n_groups
        self.k_min = k_min
        self.k_max = k_max
        self.max_users = max_users
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _check_params(self) -> None:
        check_n_groups(self.n_groups)
        k_min = check_int("k_min", self.k_min, minimum=2)
        k_max = check_int("k_max", self.k_max, minimum=2)
        if k_max < k_min:
            raise ConfigError(f"k_max={k_max} is smaller than k_min={k_min}; raise k_max")
        check_int("max_users", self.max_users, minimum=1)
        check_int("silhouette_sample", self.silhouette_sample, minimum=2)

    def _fit_labels(self, X: FloatMatrix) -> tuple[IntVector, dict[int, float]]:
        n_users = X.shape[0]
        if n_users > self.max_users:
            gib = n_users * (n_users - 1) / 2 * 8 / 2**30
            raise ConfigError(
                f"agglomerative grouping of {n_users} users needs about {gib:.1f} GiB for "
                f"pairwise distances (limit max_users={self.max_users}); use method='kmeans' "
                "or method='minibatch' for this many users"
            )
        if self.n_groups != "auto" and int(self.n_groups) > n_users:
            raise ConfigError(
                f"n_groups={self.n_groups} but X has only {n_users} users (n_samples={n_users}); "
                f"use n_groups <= {n_users} or 'auto'"
            )
        if n_users == 1:
            return np.zeros(1, dtype=np.int64), {}
        # condensed distances, as scipy.cluster.hierarchy.ward would compute them; passing
        # them directly avoids its "looks like a distance matrix" guess on square inputs
        tree = linkage(pdist(X.astype(np.float64)), method="ward")
        if self.n_groups != "auto":
            return self._cut(tree, int(self.n_groups)), {}
        ks = candidate_ks(self.k_min, self.k_max, n_users)
        if not ks:
            logger.warning(
                "%d users are too few to choose between %d and %d groups; using one group",
                n_users,
                self.k_min,
                self.k_max,
            )
            return np.zeros(n_users, dtype=np.int64), {}
        # one pass over the tree cuts it at every candidate k
        cuts = np.asarray(cut_tree(tree, n_clusters=ks), dtype=np.int64)
        _, labels, scores = select_n_groups(
            X,
            ks,
            lambda k: cuts[:, ks.index(k)],
            sample_size=self.silhouette_sample,
            random_state=self.random_state,
        )
        return labels, scores

    @staticmethod
    def _cut(tree: np.ndarray, k: int) -> IntVector:
        # cut_tree undoes the last merges, so it yields exactly k groups even with tied heights
        return np.asarray(cut_tree(tree, n_clusters=[k])[:, 0], dtype=np.int64)
