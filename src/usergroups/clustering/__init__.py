"""Group users by their vectors: k-means, mini-batch k-means, FAISS k-means, Ward, HDBSCAN.

Every clusterer follows the scikit-learn estimator contract and the
:class:`GroupClusterer` interface (``labels_``, ``centroids_``, ``n_groups_``,
``k_scores_``, ``silhouette_``, ``predict``). :func:`make_clusterer` builds the one a
:class:`~usergroups.config.ClusteringConfig` describes, followed by the
post-processing of :class:`PostProcessedGroups` (merge near-duplicate groups, fold
tiny ones, number groups by size).

Examples
--------
>>> import numpy as np
>>> from usergroups.clustering import make_clusterer
>>> from usergroups.config import ClusteringConfig
>>> rng = np.random.default_rng(0)
>>> X = np.repeat(np.eye(3, dtype=np.float32), 20, axis=0)
>>> X += 0.05 * rng.standard_normal(X.shape).astype(np.float32)
>>> model = make_clusterer(ClusteringConfig(k_max=6), random_state=0).fit(X)
>>> model.n_groups_
3
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from usergroups.clustering.agglomerative import AgglomerativeGroups
    from usergroups.clustering.base import (
        NOISE,
        GroupClusterer,
        check_vectors,
        cosine_silhouette,
        group_centroids,
        nearest_centroid,
        normalize_rows,
        select_n_groups,
    )
    from usergroups.clustering.density import HDBSCANGroups
    from usergroups.clustering.factory import METHODS, make_clusterer
    from usergroups.clustering.faiss_kmeans import FaissKMeansGroups, label_by_centroids
    from usergroups.clustering.kmeans import KMeansGroups, MiniBatchKMeansGroups
    from usergroups.clustering.postprocess import (
        PostProcessedGroups,
        PostProcessResult,
        fold_small_groups,
        merge_close_groups,
        postprocess_groups,
        relabel_by_size,
    )

# Imported on first use (PEP 562): scikit-learn comes with the clusterers, and a loaded
# model placing a new user needs none of them (usergroups.clustering.assign is numpy only).
_LAZY = {
    "AgglomerativeGroups": "usergroups.clustering.agglomerative",
    "NOISE": "usergroups.clustering.base",
    "GroupClusterer": "usergroups.clustering.base",
    "check_vectors": "usergroups.clustering.base",
    "cosine_silhouette": "usergroups.clustering.base",
    "group_centroids": "usergroups.clustering.base",
    "nearest_centroid": "usergroups.clustering.base",
    "normalize_rows": "usergroups.clustering.base",
    "select_n_groups": "usergroups.clustering.base",
    "HDBSCANGroups": "usergroups.clustering.density",
    "METHODS": "usergroups.clustering.factory",
    "make_clusterer": "usergroups.clustering.factory",
    "FaissKMeansGroups": "usergroups.clustering.faiss_kmeans",
    "label_by_centroids": "usergroups.clustering.faiss_kmeans",
    "KMeansGroups": "usergroups.clustering.kmeans",
    "MiniBatchKMeansGroups": "usergroups.clustering.kmeans",
    "PostProcessedGroups": "usergroups.clustering.postprocess",
    "PostProcessResult": "usergroups.clustering.postprocess",
    "fold_small_groups": "usergroups.clustering.postprocess",
    "merge_close_groups": "usergroups.clustering.postprocess",
    "postprocess_groups": "usergroups.clustering.postprocess",
    "relabel_by_size": "usergroups.clustering.postprocess",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "METHODS",
    "NOISE",
    "AgglomerativeGroups",
    "FaissKMeansGroups",
    "GroupClusterer",
    "HDBSCANGroups",
    "KMeansGroups",
    "MiniBatchKMeansGroups",
    "PostProcessResult",
    "PostProcessedGroups",
    "check_vectors",
    "cosine_silhouette",
    "fold_small_groups",
    "group_centroids",
    "label_by_centroids",
    "make_clusterer",
    "merge_close_groups",
    "nearest_centroid",
    "normalize_rows",
    "postprocess_groups",
    "relabel_by_size",
    "select_n_groups",
]
