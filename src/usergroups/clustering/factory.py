"""Build the configured clusterer: :func:`make_clusterer`."""

from __future__ import annotations

import logging
import warnings
from typing import get_args

from usergroups.clustering.agglomerative import AgglomerativeGroups
from usergroups.clustering.base import GroupClusterer, check_choice
from usergroups.clustering.density import HDBSCANGroups
from usergroups.clustering.faiss_kmeans import FaissKMeansGroups
from usergroups.clustering.kmeans import KMeansGroups, MiniBatchKMeansGroups
from usergroups.clustering.postprocess import PostProcessedGroups
from usergroups.config import ClusteringConfig

__all__ = ["METHODS", "make_clusterer"]

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = get_args(ClusteringConfig.model_fields["method"].annotation)
"""Valid values of ``ClusteringConfig.method``."""


def make_clusterer(config: ClusteringConfig, random_state: int) -> GroupClusterer:
    """The clusterer ``config`` describes, wrapped in :class:`PostProcessedGroups`.

    Parameters
    ----------
    config : ClusteringConfig
        ``method`` picks the algorithm (``"faiss"``: FAISS k-means trained on a
        sample, for more than ~100k users; needs the ``fast`` extra); ``n_groups``,
        ``k_min``, ``k_max``, ``n_init`` and ``silhouette_sample`` go to it; ``min_group_size`` and
        ``merge_threshold`` to the post-processing.
    random_state : int
        Seed of every random choice (initialisations, batches, silhouette sample).

    Returns
    -------
    GroupClusterer
        Unfitted. For ``method="hdbscan"``, ``min_cluster_size`` is
        ``max(2, min_group_size)`` and ``n_groups`` is ignored (HDBSCAN finds
        the number of groups itself); an integer ``n_groups`` gives a warning.

    Raises
    ------
    ConfigError
        When ``config.method`` is not one of :data:`METHODS`.

    Examples
    --------
    >>> model = make_clusterer(ClusteringConfig(n_groups=8), random_state=0)
    >>> type(model.base).__name__, model.base.n_groups
    ('KMeansGroups', 8)

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 51 lines.
    """
    check_choice("method", config.method, METHODS)
    base: GroupClusterer
    if config.method in ("kmeans", "minibatch"):
        family = KMeansGroups if config.method == "kmeans" else MiniBatchKMeansGroups
        base = family(
            config.n_groups,
            k_min=config.k_min,
            k_max=config.k_max,
            n_init=config.n_init,
            silhouette_sample=config.silhouette_sample,
            random_state=random_state,
        )
    elif config.method == "faiss":
        # FAISS trains on a sample, so every init is cheap; the config's n_init (10 by
        # default, meant for exact k-means) is capped at 3
        base = FaissKMeansGroups(
            config.n_groups,
            k_min=config.k_min,
            k_max=config.k_max,
            n_init=min(config.n_init, 3),
            silhouette_sample=config.silhouette_sample,
            random_state=random_state,
        )
    elif config.method == "agglomerative":
        base = AgglomerativeGroups(
            config.n_groups,
            k_min=config.k_min,
            k_max=config.k_max,
            silhouette_sample=config.silhouette_sample,
            random_state=random_state,
        )
    else:
        if config.n_groups != "auto":
            warnings.warn(
                f"clustering.n_groups={config.n_groups} is ignored by method='hdbscan', which "
                "finds the number of groups itself; set n_groups='auto' or pick another method",
                UserWarning,
                stacklevel=2,
            )
        base = HDBSCANGroups(
            min_cluster_size=max(2, config.min_group_size),
            silhouette_sample=config.silhouette_sample,
            random_state=random_state,
        )
    logger.debug("clusterer for %s: %r", config.method, base)
    return PostProcessedGroups(
        base,
        min_group_size=config.min_group_size,
        merge_threshold=config.merge_threshold,
    )
