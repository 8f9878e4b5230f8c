"""Baseline recommenders: a shared contract plus known answers per model."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from usergroups.errors import ConfigError, DataError, NotFittedError
from usergroups.evaluation import (
    BASELINES,
    ALSRecommender,
    BPRRecommender,
    EASERecommender,
    GroupPopularityRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    Recommender,
    make_baseline,
    topk,
)


def checkerboard(n_users: int = 40, n_items: int = 20, seed: int = 0) -> sp.csr_matrix:
    """Two planted blocks: even users take items 0..9, odd users items 10..19 (70 % density)."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((n_users, n_items), dtype=np.float32)
    half = n_items // 2
    for u in range(n_users):
        block = np.arange(half) if u % 2 == 0 else np.arange(half, n_items)
        dense[u, rng.choice(block, size=int(0.7 * half), replace=False)] = 1.0
    return sp.csr_matrix(dense)


class RecommenderContract:
    """Mixed into the tests of every baseline: the interface all of them share."""

    def make(self) -> Recommender:
        raise NotImplementedError

    def test_fit_returns_self_and_score_has_one_row_per_user(self) -> None:
        rec = self.make()
        train = checkerboard()
        assert rec.fit(train) is rec
        scores = rec.score(np.array([0, 3, 5]))
        assert scores.shape == (3, train.shape[1])
        assert np.issubdtype(scores.dtype, np.floating)
        assert np.isfinite(scores).all()

    def test_score_before_fit_raises_not_fitted(self) -> None:
        with pytest.raises(NotFittedError, match="fit"):
            self.make().score([0])

    def test_score_rejects_unknown_users(self) -> None:
        rec = self.make().fit(checkerboard())
        with pytest.raises(DataError, match="user indices"):
            rec.score([40])

    def test_fit_is_deterministic(self) -> None:
        train = checkerboard()
        users = np.arange(10)
        np.testing.assert_allclose(
            self.make().fit(train).score(users), self.make().fit(train).score(users), rtol=1e-6
        )

    def test_fit_accepts_any_sparse_format_and_ignores_values(self) -> None:
        train = checkerboard()
        weighted = sp.coo_matrix(train * 5.0)
        users = np.arange(6)
        np.testing.assert_allclose(
            self.make().fit(weighted).score(users), self.make().fit(train).score(users), rtol=1e-6
        )

    def test_fit_rejects_dense_input(self) -> None:
        with pytest.raises(DataError, match="sparse"):
            self.make().fit(np.ones((3, 3)))

    def test_unseen_top_item_is_in_the_users_block(self) -> None:
        train = checkerboard()
        users = np.arange(train.shape[0])
        scores = np.array(self.make().fit(train).score(users), dtype=np.float64)
        scores[train.nonzero()] = -np.inf
        best = topk(scores, 1)[:, 0]
        in_block = (best < 10) == (users % 2 == 0)
        assert in_block.mean() >= 0.95

    def test_is_a_recommender(self) -> None:
        assert isinstance(self.make(), Recommender)


class TestPopularity(RecommenderContract):
    def make(self) -> Recommender:
        return PopularityRecommender()

    def test_unseen_top_item_is_in_the_users_block(self) -> None:
        # global popularity ignores the blocks: every user gets the same ranking
        scores = PopularityRecommender().fit(checkerboard()).score(np.arange(40))
        assert (scores == scores[0]).all()

    def test_scores_are_training_user_counts(self) -> None:
        rec = PopularityRecommender().fit(sp.csr_matrix([[1, 0, 1], [1, 0, 0], [3, 0, 0]]))
        assert rec.score([0, 2]).tolist() == [[3.0, 0.0, 1.0]] * 2


class TestItemKNN(RecommenderContract):
    def make(self) -> Recommender:
        return ItemKNNRecommender(n_neighbors=5, batch_size=7)

    def test_scores_sum_cosine_similarities_of_the_users_items(self) -> None:
        x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=float))
        rec = ItemKNNRecommender(n_neighbors=10).fit(x)
        cols = x.toarray()
        unit = cols / np.linalg.norm(cols, axis=0)
        sim = unit.T @ unit
        np.fill_diagonal(sim, 0.0)
        np.testing.assert_allclose(rec.score(np.arange(4)), cols @ sim)

    def test_none_keeps_every_positive_neighbour(self) -> None:
        train = checkerboard()
        full = ItemKNNRecommender(n_neighbors=None, batch_size=3).fit(train)
        large = ItemKNNRecommender(n_neighbors=1000).fit(train)
        users = np.arange(train.shape[0])
        np.testing.assert_allclose(full.score(users), large.score(users))

    def test_keeps_only_the_top_neighbours_per_item(self) -> None:
        rec = ItemKNNRecommender(n_neighbors=2).fit(checkerboard())
        per_target = np.diff(sp.csc_matrix(rec.similarity_).indptr)
        assert per_target.max() <= 2

    def test_rejects_bad_n_neighbors(self) -> None:
        with pytest.raises(ConfigError, match="n_neighbors"):
            ItemKNNRecommender(n_neighbors=0).fit(checkerboard())


class TestEASE(RecommenderContract):
    def make(self) -> Recommender:
        return EASERecommender(l2=10.0)

    def test_weights_match_the_closed_form(self) -> None:
        x = checkerboard().toarray().astype(np.float64)
        rec = EASERecommender(l2=10.0).fit(sp.csr_matrix(x))
        p = np.linalg.inv(x.T @ x + 10.0 * np.eye(x.shape[1]))
        b = np.eye(x.shape[1]) - p / np.diag(p)
        np.testing.assert_allclose(rec.weights_, b, atol=1e-10)
        np.testing.assert_allclose(np.diag(rec.weights_), 0.0)
        np.testing.assert_allclose(rec.score([0, 1]), x[:2] @ b, atol=1e-10)

    def test_default_l2_is_500(self) -> None:
        assert EASERecommender().l2 == 250.0

    def test_rejects_non_positive_l2(self) -> None:
        with pytest.raises(ConfigError, match="l2"):
            EASERecommender(l2=0).fit(checkerboard())


class TestALS(RecommenderContract):
    def make(self) -> Recommender:
        pytest.importorskip("implicit")
        return ALSRecommender(factors=8, random_state=0)

    def test_defaults_follow_the_design(self) -> None:
        rec = ALSRecommender()
        assert (rec.factors, rec.random_state, rec.num_threads) == (64, 0, 1)


class TestBPR(RecommenderContract):
    def make(self) -> Recommender:
        pytest.importorskip("implicit")
        return BPRRecommender(factors=8, random_state=0)


class TestGroupPopularity(RecommenderContract):
    labels: ClassVar[np.ndarray] = np.arange(40) % 2

    def make(self) -> Recommender:
        return GroupPopularityRecommender(self.labels)

    def test_noise_users_get_global_popularity(self) -> None:
        train = checkerboard()
        labels = self.labels.copy()
        labels[:4] = -1
        rec = GroupPopularityRecommender(labels).fit(train)
        glob = PopularityRecommender().fit(train).score([0])
        np.testing.assert_allclose(rec.score([0, 1, 2, 3]), np.repeat(glob, 4, axis=0))
        members = np.flatnonzero(labels == 0)
        np.testing.assert_allclose(rec.score([4])[0], train[members].sum(axis=0).A1)

    def test_labels_must_match_the_users(self) -> None:
        with pytest.raises(DataError, match="one per user"):
            GroupPopularityRecommender([0, 1]).fit(checkerboard())
        with pytest.raises(DataError, match="integers"):
            GroupPopularityRecommender(np.zeros(40, dtype=float)).fit(checkerboard())


def test_make_baseline_builds_every_named_baseline() -> None:
    assert list(BASELINES) == ["Pop", "ItemKNN", "EASE", "ALS", "BPR"]
    assert isinstance(make_baseline("EASE", l2=5.0), EASERecommender)
    with pytest.raises(ConfigError, match="'Pop', 'ItemKNN'"):
        make_baseline("SVD")
