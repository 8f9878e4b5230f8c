"""FaissKMeansGroups: FAISS k-means trained on a sample, every user labelled (issue 8)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from usergroups.clustering import (
    FaissKMeansGroups,
    GroupClusterer,
    label_by_centroids,
    make_clusterer,
)
from usergroups.clustering.faiss_kmeans import kmeans_plusplus_seeds
from usergroups.config import ClusteringConfig
from usergroups.errors import MissingDependencyError

from .contract import GroupClustererContract
from .planted import planted_groups

pytest.importorskip("faiss")


class TestFaissKMeansGroups(GroupClustererContract):
    def make(self, n_groups: int | str = "auto", random_state: int | None = 0) -> GroupClusterer:
        return FaissKMeansGroups(n_groups, k_max=8, random_state=random_state)  # type: ignore[arg-type]


def test_training_on_a_sample_still_recovers_planted_groups() -> None:
    # 8 groups x 300 users, at most 64 users per group trained on: a quarter of the data
    X, y = planted_groups([300] * 8, random_state=3)
    model = FaissKMeansGroups(n_groups=8, max_points_per_group=64, random_state=0).fit(X)
    assert model.n_groups_ == 8
    assert adjusted_rand_score(y, model.labels_) >= 0.99


def test_auto_finds_the_planted_number_of_groups() -> None:
    X, _ = planted_groups([60, 50, 40, 30], random_state=5)
    model = FaissKMeansGroups(k_min=2, k_max=7, random_state=0).fit(X)
    assert model.n_groups_ == 4
    assert list(model.k_scores_) == list(range(2, 8))


def test_label_by_centroids_matches_a_full_argmax_across_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import usergroups.clustering.faiss_kmeans as module

    monkeypatch.setattr(module, "_LABEL_BLOCK", 7)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 6)).astype(np.float32)
    C = rng.standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(label_by_centroids(X, C), np.argmax(X @ C.T, axis=1))


def test_make_clusterer_builds_faiss_for_method_faiss() -> None:
    model = make_clusterer(ClusteringConfig(method="faiss", n_groups=5), random_state=0)
    assert isinstance(model.base, FaissKMeansGroups)
    assert model.base.n_groups == 5
    assert model.base.n_init == 3  # capped: every FAISS init is cheap but 10 is meant for Lloyd


def test_missing_faiss_is_a_missing_dependency_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    X, _ = planted_groups([20, 20], random_state=0)
    with pytest.raises(MissingDependencyError, match=r"usergroups\[fast\]"):
        FaissKMeansGroups(n_groups=2, random_state=0).fit(X)


def test_kmeans_plusplus_picks_one_seed_per_separated_group() -> None:
    X, y = planted_groups([50, 50, 50, 50], noise=0.05, random_state=1)
    seeds = kmeans_plusplus_seeds(X, 4, np.random.default_rng(0))
    rows = [int(np.flatnonzero((s == X).all(axis=1))[0]) for s in seeds]
    assert sorted(y[rows].tolist()) == [0, 1, 2, 3]
    again = kmeans_plusplus_seeds(X, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(seeds, again)


def test_kmeans_plusplus_survives_duplicated_points() -> None:
    X = np.repeat(np.eye(2, dtype=np.float32), 5, axis=0)
    seeds = kmeans_plusplus_seeds(X, 3, np.random.default_rng(0))
    assert seeds.shape == (3, 2)
