"""evaluate_recommender / evaluate_scores: masking, batching and the reported metrics."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import scipy.sparse as sp

from usergroups.data import build_dataset
from usergroups.errors import ConfigError, DataError
from usergroups.evaluation import (
    EASERecommender,
    PopularityRecommender,
    Split,
    cold_split,
    evaluate_recommender,
    evaluate_scores,
    warm_split,
)


def _split(seed: int = 0, n_users: int = 60, n_items: int = 25) -> Split:
    rng = np.random.default_rng(seed)
    rows = [
        (f"u{u:03d}", f"i{i:02d}", float(t))
        for u in range(n_users)
        for t, i in enumerate(rng.choice(n_items, size=rng.integers(3, 10), replace=False))
    ]
    log = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return warm_split(build_dataset(log))


class Oracle:
    """Scores the test targets highest: a perfect recommender."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def fit(self, train: sp.csr_matrix) -> Oracle:
        return self

    def score(self, user_indices: npt.ArrayLike) -> np.ndarray:
        return np.asarray(self.split.test[np.asarray(user_indices)].toarray(), dtype=np.float64)


class SeenFirst:
    """Scores the user's training items highest: only masking keeps them out."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def fit(self, train: sp.csr_matrix) -> SeenFirst:
        return self

    def score(self, user_indices: npt.ArrayLike) -> np.ndarray:
        return 10.0 * self.split.train[np.asarray(user_indices)].toarray()


def test_perfect_recommender_scores_one() -> None:
    split = _split()
    result = evaluate_recommender(Oracle(split), split)
    for key in ("HR@10", "NDCG@10", "Recall@20", "MAP@10", "MRR", "HR@20"):
        assert result[key] == pytest.approx(1.0), key
    assert result["Precision@10"] == pytest.approx(0.1)
    assert result["n_users"] == split.n_test_users


def test_reports_the_design_metrics_for_every_cut_off() -> None:
    split = _split()
    result = evaluate_recommender(PopularityRecommender().fit(split.train), split)
    for k in (10, 20):
        for name in ("HR", "NDCG", "Recall", "Precision", "MAP", "Coverage", "AvgPop"):
            assert 0.0 <= result[f"{name}@{k}"] <= 1.0
        # one held-out item per user: precision is the hit rate spread over k slots
        assert result[f"Precision@{k}"] == pytest.approx(result[f"HR@{k}"] / k)
    # a longer list finds at least as much, over at least as many items
    for name in ("HR", "Recall", "Coverage"):
        assert result[f"{name}@20"] >= result[f"{name}@10"]
    # popularity finds some held-out items here (a range check alone could never fail)
    assert result["HR@20"] > 0.0 and 0.0 < result["MRR"] <= 1.0
    assert "ILD@10" not in result


def test_training_items_are_masked() -> None:
    split = _split()
    seen_first = evaluate_recommender(SeenFirst(split), split, ks=(5,))
    # all unseen items tie at 0 and are ranked by index, exactly as if scores were all zero
    zeros = evaluate_scores(lambda rows: np.zeros((len(rows), split.n_items)), split, ks=(5,))
    assert seen_first == pytest.approx(zeros)


def test_results_do_not_depend_on_the_batch_size() -> None:
    split = _split(seed=2)
    rec = EASERecommender(l2=5.0).fit(split.train)
    vectors = np.random.default_rng(0).random((split.n_items, 4))
    one = evaluate_recommender(rec, split, batch_size=1, item_vectors=vectors)
    many = evaluate_recommender(rec, split, batch_size=1024, item_vectors=vectors)
    assert one == pytest.approx(many, rel=1e-12)
    assert "ILD@10" in one


def test_evaluate_scores_passes_positions_into_test_users() -> None:
    split = _split()
    seen: list[np.ndarray] = []

    def score(rows: np.ndarray) -> np.ndarray:
        seen.append(rows)
        return np.zeros((len(rows), split.n_items))

    evaluate_scores(score, split, batch_size=7)
    np.testing.assert_array_equal(np.concatenate(seen), np.arange(split.n_test_users))


def test_cold_protocol_scores_from_query_texts() -> None:
    rows = []
    for u in range(20):
        block = range(0, 5) if u % 2 == 0 else range(5, 10)
        for t, i in enumerate(block):
            rows.append((f"u{u:02d}", f"i{i}", float(t), "cheap guitar" if u % 2 else "synth"))
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "text"])
    split = cold_split(
        build_dataset(df[["user_id", "item_id", "timestamp"]], df), test_fraction=0.5
    )
    assert split.query_texts is not None
    texts = split.query_texts

    def score(positions: np.ndarray) -> np.ndarray:
        # a "text model" that knows guitar people take items 5..9
        out = np.zeros((len(positions), split.n_items))
        guitar = np.array(["guitar" in texts[p] for p in positions])
        out[np.ix_(guitar, np.arange(5, 10))] = 1.0
        out[np.ix_(~guitar, np.arange(0, 5))] = 1.0
        return out

    result = evaluate_scores(score, split, ks=(4,))
    assert result["Recall@4"] == pytest.approx(1.0)
    assert result["n_users"] == 10


def test_bad_scores_and_arguments_are_reported() -> None:
    split = _split()
    with pytest.raises(DataError, match="shape"):
        evaluate_scores(lambda rows: np.zeros((len(rows), 3)), split)
    with pytest.raises(DataError, match="NaN"):
        evaluate_scores(lambda rows: np.full((len(rows), split.n_items), np.nan), split)
    with pytest.raises(ConfigError, match="ks"):
        evaluate_scores(lambda rows: np.zeros((len(rows), split.n_items)), split, ks=())
    with pytest.raises(ConfigError, match="batch_size"):
        evaluate_scores(lambda rows: np.zeros((len(rows), split.n_items)), split, batch_size=0)
    with pytest.raises(DataError, match="item_vectors"):
        evaluate_recommender(
            PopularityRecommender().fit(split.train), split, item_vectors=np.ones((2, 2))
        )
