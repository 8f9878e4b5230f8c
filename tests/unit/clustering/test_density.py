"""HDBSCANGroups."""

from __future__ import annotations

import numpy as np
import pytest

from usergroups.clustering import NOISE, GroupClusterer, HDBSCANGroups
from usergroups.errors import ConfigError

from .contract import GroupClustererContract
from .planted import planted_groups


class TestHDBSCANGroups(GroupClustererContract):
    chooses_n_groups = True

    def make(self, n_groups: int | str = "auto", random_state: int | None = 0) -> GroupClusterer:
        # HDBSCAN finds the number of groups itself: n_groups has no counterpart
        return HDBSCANGroups(min_cluster_size=5, random_state=random_state)


@pytest.fixture(scope="module")
def groups_and_outliers() -> tuple[np.ndarray, np.ndarray]:
    X, y = planted_groups([40, 30, 25], random_state=2)
    # users pointing in directions of their own, far from every group
    outliers = np.random.default_rng(9).standard_normal((4, X.shape[1]))
    outliers /= np.linalg.norm(outliers, axis=1, keepdims=True)
    X = np.vstack([X, outliers.astype(np.float32)])
    return X, np.concatenate([y, np.full(4, NOISE)])


def test_outliers_are_labelled_noise(groups_and_outliers: tuple) -> None:
    X, y = groups_and_outliers
    model = HDBSCANGroups(min_cluster_size=5, random_state=0).fit(X)
    assert model.n_groups_ == 3
    assert (model.labels_[y == NOISE] == NOISE).all()


def test_noise_is_left_out_of_the_centroids(groups_and_outliers: tuple) -> None:
    X, _ = groups_and_outliers
    model = HDBSCANGroups(min_cluster_size=5).fit(X)
    for g in range(model.n_groups_):
        np.testing.assert_allclose(
            model.centroids_[g], X[model.labels_ == g].mean(axis=0), atol=1e-5
        )


def test_k_scores_are_always_empty(groups_and_outliers: tuple) -> None:
    X, _ = groups_and_outliers
    assert HDBSCANGroups().fit(X).k_scores_ == {}


def test_fewer_users_than_min_cluster_size_are_all_noise() -> None:
    X, _ = planted_groups([2, 2])
    model = HDBSCANGroups(min_cluster_size=5).fit(X)
    assert model.n_groups_ == 0
    assert (model.labels_ == NOISE).all()
    assert model.centroids_.shape == (0, X.shape[1])
    assert (model.predict(X) == NOISE).all()


def test_bad_selection_method_raises_config_error_naming_the_choices() -> None:
    X, _ = planted_groups([5, 5])
    with pytest.raises(
        ConfigError, match="cluster_selection_method='best' is not one of 'eom', 'leaf'"
    ):
        HDBSCANGroups(cluster_selection_method="best").fit(X)  # type: ignore[arg-type]


def test_min_cluster_size_below_two_raises_config_error() -> None:
    X, _ = planted_groups([5, 5])
    with pytest.raises(ConfigError, match="min_cluster_size=1"):
        HDBSCANGroups(min_cluster_size=1).fit(X)
