"""The alignment head, its bags, and the arithmetic it shares (fusion, k-NN vote, NDCG)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from usergroups.alignment import AlignmentHead, TextBags, make_bags
from usergroups.clustering.assign import knn_proba
from usergroups.embedding import HashingEncoder
from usergroups.errors import ConfigError, DataError, NotFittedError
from usergroups.linalg import fuse_blocks
from usergroups.ranking import ndcg_at_k
from usergroups.selection import carve_validation
from usergroups.testing import PlantedData, make_planted


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return make_planted(n_users=300, n_groups=4, n_items=120, texts_per_user=3, random_state=5)


@pytest.fixture(scope="module")
def text_vectors(planted: PlantedData) -> np.ndarray:
    return HashingEncoder(dim=64).encode(planted.dataset.texts["text"].tolist())


def _bags_and_targets(planted: PlantedData, text_vectors: np.ndarray):
    ds = planted.dataset
    x = sp.csr_matrix(ds.interaction_matrix(), dtype=np.float32)
    return make_bags(ds, text_vectors, None, x), x


def test_ndcg_at_k_by_hand() -> None:
    scores = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.3]])
    targets = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0]], dtype=np.float32))
    # the only row with a target finds it at rank 2: 1 / log2(3)
    assert ndcg_at_k(scores, targets, None, k=2) == pytest.approx(1 / np.log2(3))
    seen = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]], dtype=np.float32))
    assert ndcg_at_k(scores, targets, seen, k=2) == pytest.approx(1.0)


def test_random_subsets_keep_at_least_one_text_per_user() -> None:
    members = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], np.float32))
    bags = TextBags(members, np.eye(4, dtype=np.float32))
    rng = np.random.default_rng(0)
    for _ in range(20):
        kept = bags.random_subsets(rng, min_keep=0.01)
        counts = np.asarray(kept.sum(axis=1)).ravel()
        assert counts[0] >= 1 and counts[1] == 1 and counts[2] == 0
    assert np.all(bags.pooled()[2] == 0)


def test_bags_need_one_vector_per_column() -> None:
    with pytest.raises(DataError, match="columns"):
        TextBags(sp.csr_matrix((2, 3), dtype=np.float32), np.zeros((2, 4), np.float32))


@pytest.mark.slow
def test_head_learns_to_rank_held_out_items(planted: PlantedData, text_vectors: np.ndarray) -> None:
    carve = carve_validation(planted.dataset, random_state=0)
    bags = make_bags(planted.dataset, text_vectors, None, carve.x_train, carve.text_keep)
    rows = carve.warm_rows
    val = (TextBags(bags.members[rows], bags.vectors), carve.x_train[rows], carve.held_out[rows])
    head = AlignmentHead(dim=16, max_epochs=40, patience=5, random_state=0)
    head.fit(bags, carve.x_train, validation=val)
    assert 1 <= head.best_epoch_ <= 40
    assert head.best_val_ndcg_ == max(h["val_ndcg"] for h in head.history_)
    # the aligned map ranks held-out items far better than chance
    scores = head.item_scores(head.transform(val[0].pooled()))
    chance = 10 / planted.dataset.n_items
    assert ndcg_at_k(scores, val[2], val[1]) > 2 * chance
    # losses go down
    assert head.history_[-1]["loss"] < head.history_[0]["loss"]


def test_head_is_deterministic_and_round_trips(
    planted: PlantedData, text_vectors: np.ndarray
) -> None:
    bags, x = _bags_and_targets(planted, text_vectors)
    a = AlignmentHead(dim=8, max_epochs=3, random_state=1).fit(bags, x, epochs=3)
    b = AlignmentHead(dim=8, max_epochs=3, random_state=1).fit(bags, x, epochs=3)
    np.testing.assert_array_equal(a.W_, b.W_)
    c = AlignmentHead.from_arrays(a.to_arrays())
    q = bags.pooled()[:5]
    np.testing.assert_allclose(c.transform(q), a.transform(q))
    np.testing.assert_allclose(c.item_scores(c.transform(q)), a.item_scores(a.transform(q)))
    assert np.allclose(np.exp(a.item_scores(a.transform(q))).sum(axis=1), 1.0, atol=1e-4)


def test_head_errors_are_clear(planted: PlantedData, text_vectors: np.ndarray) -> None:
    with pytest.raises(NotFittedError):
        AlignmentHead().transform(np.zeros((1, 64)))
    bags, x = _bags_and_targets(planted, text_vectors)
    with pytest.raises(ConfigError, match="dim"):
        AlignmentHead(dim=0).fit(bags, x)
    head = AlignmentHead(dim=4, max_epochs=1).fit(bags, x, epochs=1)
    with pytest.raises(DataError, match="dimension 64"):
        head.transform(np.zeros((1, 32)))
    empty = TextBags(sp.csr_matrix((x.shape[0], 0), dtype=np.float32), np.zeros((0, 64)))
    with pytest.raises(DataError, match="no user"):
        AlignmentHead().fit(empty, x)


def test_fuse_blocks_and_knn() -> None:
    a = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    b = np.array([[0.0, 2.0], [1.0, 0.0]], np.float32)
    fused = fuse_blocks(a, b, 0.25)
    np.testing.assert_allclose(fused[0], [0.5, 0.0, 0.0, np.sqrt(0.75)], atol=1e-6)
    np.testing.assert_allclose(fused[1], [0.0, 0.0, 1.0, 0.0])  # missing block: full weight
    ref = np.eye(3, dtype=np.float32)
    proba = knn_proba(np.array([[1.0, 0.1, 0.0]], np.float32), ref, np.array([0, 1, -1]), 2, 2)
    assert proba.shape == (1, 2) and proba[0, 0] > 0.8 and proba.sum() == pytest.approx(1.0)


def test_text_item_ridge_learns_authors_items_and_round_trips() -> None:
    import doctest

    import usergroups.recommend.text_ridge as ridge_module
    from usergroups.recommend.text_ridge import TextItemRidge

    assert doctest.testmod(ridge_module).failed == 0
    rng = np.random.default_rng(0)
    t = rng.normal(size=(200, 8)).astype(np.float32)
    # items 0..3 follow the sign of the first coordinate, 4..7 of the second
    y = np.zeros((200, 8), np.float32)
    y[t[:, 0] > 0, :4] = 1
    y[t[:, 1] > 0, 4:] = 1
    ridge = TextItemRidge(l2=1.0).fit(t, sp.csr_matrix(y))
    s = ridge.scores(np.array([[3, -3, 0, 0, 0, 0, 0, 0]], np.float32))
    assert s[0, :4].min() > s[0, 4:].max()
    again = TextItemRidge.from_arrays(ridge.to_arrays())
    np.testing.assert_allclose(again.scores(t[:3]), ridge.scores(t[:3]))
    with pytest.raises(DataError, match="dimension 8"):
        ridge.scores(np.zeros((1, 4)))
    with pytest.raises(NotFittedError):
        TextItemRidge().scores(t)
    with pytest.raises(ConfigError):
        TextItemRidge(l2=0).fit(t, sp.csr_matrix(y))
