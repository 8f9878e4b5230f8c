"""make_clusterer: from a ClusteringConfig to an estimator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from usergroups.clustering import (
    METHODS,
    AgglomerativeGroups,
    FaissKMeansGroups,
    HDBSCANGroups,
    KMeansGroups,
    MiniBatchKMeansGroups,
    PostProcessedGroups,
    make_clusterer,
)
from usergroups.config import ClusteringConfig
from usergroups.errors import ConfigError

from .planted import planted_groups

EXPECTED_BASE = {
    "kmeans": KMeansGroups,
    "minibatch": MiniBatchKMeansGroups,
    "faiss": FaissKMeansGroups,
    "agglomerative": AgglomerativeGroups,
    "hdbscan": HDBSCANGroups,
}


def test_methods_are_the_config_choices() -> None:
    assert set(METHODS) == set(EXPECTED_BASE)


@pytest.mark.parametrize("method", sorted(EXPECTED_BASE))
def test_each_method_builds_its_estimator_inside_post_processing(method: str) -> None:
    config = ClusteringConfig(method=method, min_group_size=7, merge_threshold=0.9)
    model = make_clusterer(config, random_state=42)
    assert isinstance(model, PostProcessedGroups)
    assert type(model.base) is EXPECTED_BASE[method]
    assert model.min_group_size == 7
    assert model.merge_threshold == 0.9
    assert model.base.random_state == 42
    assert model.base.silhouette_sample == config.silhouette_sample


def test_kmeans_settings_reach_the_estimator() -> None:
    config = ClusteringConfig(n_groups=6, k_min=3, k_max=9, n_init=4)
    base = make_clusterer(config, random_state=1).base
    assert isinstance(base, KMeansGroups)
    assert (base.n_groups, base.k_min, base.k_max, base.n_init) == (6, 3, 9, 4)


def test_hdbscan_uses_min_group_size_as_min_cluster_size() -> None:
    base = make_clusterer(ClusteringConfig(method="hdbscan", min_group_size=12), 0).base
    assert isinstance(base, HDBSCANGroups)
    assert base.min_cluster_size == 12


def test_hdbscan_warns_that_a_fixed_n_groups_is_ignored() -> None:
    with pytest.warns(UserWarning, match="n_groups=4 is ignored by method='hdbscan'"):
        make_clusterer(ClusteringConfig(method="hdbscan", n_groups=4), 0)


def test_unknown_method_raises_config_error_naming_the_choices() -> None:
    config = ClusteringConfig.model_construct(method="spectral")
    with pytest.raises(
        ConfigError,
        match="method='spectral' is not one of 'kmeans', 'minibatch', 'faiss', "
        "'agglomerative', 'hdbscan'",
    ):
        make_clusterer(config, 0)


@pytest.mark.parametrize("method", sorted(EXPECTED_BASE))
def test_configured_clusterer_recovers_planted_groups_deterministically(method: str) -> None:
    X, y = planted_groups([40, 35, 30, 25, 20], random_state=5)
    config = ClusteringConfig(method=method, k_max=8, n_init=3)
    first = make_clusterer(config, random_state=3).fit(X)
    second = make_clusterer(config, random_state=3).fit(X)
    assert adjusted_rand_score(y, first.labels_) >= 0.95
    np.testing.assert_array_equal(first.labels_, second.labels_)
    sizes = np.bincount(first.labels_[first.labels_ >= 0])
    assert (np.diff(sizes) <= 0).all()
