"""Clustering metrics on planted groups whose true labels the tests know."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from usergroups.data import build_dataset
from usergroups.errors import DataError
from usergroups.evaluation import (
    Split,
    calinski_harabasz,
    davies_bouldin,
    group_lift,
    group_size_summary,
    inter_group_separation,
    intra_group_similarity,
    noise_share,
    silhouette,
    stability,
    warm_split,
)


def planted_vectors(
    n_groups: int = 4, per_group: int = 50, dim: int = 16, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Tight clusters around orthogonal directions."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:n_groups] * 5.0
    labels = np.repeat(np.arange(n_groups), per_group)
    vectors = centres[labels] + rng.normal(scale=0.3, size=(len(labels), dim))
    return vectors, labels


def planted_behaviour(n_users: int = 120, seed: int = 0) -> tuple[Split, np.ndarray]:
    """Three groups of users, each consuming mostly its own third of the catalogue."""
    rng = np.random.default_rng(seed)
    n_items = 60
    rows = []
    truth = {}
    for u in range(n_users):
        g = u % 3
        own = np.arange(g * 20, g * 20 + 20)
        pool = np.concatenate([own, rng.choice(n_items, 3, replace=False)])
        items = rng.choice(np.unique(pool), size=8, replace=False)
        for t, i in enumerate(items):
            rows.append((f"u{u:03d}", f"i{i:02d}", float(t)))
        truth[f"u{u:03d}"] = g
    ds = build_dataset(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    labels = np.array([truth[u] for u in ds.user_ids.ids])
    return warm_split(ds), labels


def test_planted_groups_score_well_and_shuffled_labels_do_not() -> None:
    x, y = planted_vectors()
    shuffled = np.random.default_rng(1).permutation(y)
    assert silhouette(x, y) > 0.8
    assert abs(silhouette(x, shuffled)) < 0.1
    assert davies_bouldin(x, y) < 0.5 < davies_bouldin(x, shuffled)
    assert calinski_harabasz(x, y) > 100 * calinski_harabasz(x, shuffled)


def test_silhouette_is_cosine_sampled_and_seeded() -> None:
    x, y = planted_vectors(per_group=100)
    a = silhouette(x, y, sample_size=50, random_state=3)
    assert a == silhouette(x, y, sample_size=50, random_state=3)
    # cosine ignores the length of the vectors
    scaled = x * np.random.default_rng(0).uniform(1, 10, size=(len(x), 1))
    assert silhouette(scaled, y, sample_size=None) == pytest.approx(
        silhouette(x, y, sample_size=None)
    )


def test_geometric_metrics_leave_noise_out_and_are_nan_for_one_group() -> None:
    x, y = planted_vectors()
    noisy = y.copy()
    noisy[:10] = -1
    assert silhouette(x, noisy, sample_size=None) == pytest.approx(
        silhouette(x[10:], y[10:], sample_size=None)
    )
    one = np.zeros(len(y), dtype=int)
    for metric in (silhouette, davies_bouldin, calinski_harabasz, inter_group_separation):
        assert np.isnan(metric(x, one))


def test_intra_group_similarity_is_the_mean_pairwise_cosine_within_groups() -> None:
    x, y = planted_vectors(n_groups=3, per_group=6)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    pairs = [unit[i] @ unit[j] for i, j in itertools.permutations(range(len(y)), 2) if y[i] == y[j]]
    assert intra_group_similarity(x, y) == pytest.approx(np.mean(pairs))


def test_inter_group_separation_of_orthogonal_groups_is_one() -> None:
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    assert inter_group_separation(x, np.array([0, 0, 1, 1])) == pytest.approx(1.0)


def test_stability_is_one_for_renamed_partitions_and_low_for_random_ones() -> None:
    assert stability(lambda seed: np.array([0, 0, 1, 1, 2]) + seed * 10) == 1.0
    rng = np.random.default_rng(0)
    random_labels = {s: rng.integers(0, 5, size=500) for s in range(5)}
    assert abs(stability(lambda seed: random_labels[seed])) < 0.05
    calls: list[int] = []

    def record(seed: int) -> list[int]:
        calls.append(seed)
        return [0, 1]

    stability(record, seeds=(3, 4, 5))
    assert calls == [3, 4, 5]


def test_stability_validates_its_inputs() -> None:
    with pytest.raises(DataError, match="at least 2 seeds"):
        stability(lambda seed: [0], seeds=(1,))
    with pytest.raises(DataError, match="same users"):
        stability(lambda seed: [0] * (seed + 2))


def test_group_size_summary_and_noise_share() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, -1, -1])
    summary = group_size_summary(labels)
    assert summary["n_groups"] == 3
    assert summary["sizes"] == {0: 3, 1: 2, 2: 1}
    assert (summary["min"], summary["max"], summary["median"]) == (1, 3, 2.0)
    assert summary["largest_share"] == pytest.approx(3 / 8)
    assert summary["noise_share"] == noise_share(labels) == 0.25
    assert group_size_summary([1, 1, 2, 2])["gini"] == pytest.approx(0.0)
    assert group_size_summary([-1, -1])["n_groups"] == 0
    with pytest.raises(DataError, match="integers"):
        noise_share(np.array(["a", "b"]))


def test_group_lift_rewards_groups_that_capture_behaviour() -> None:
    split, truth = planted_behaviour()
    assert group_lift(truth, split) > 1.5
    # everyone noise: group popularity is global popularity
    assert group_lift(np.full(len(truth), -1), split) == pytest.approx(1.0)
    # one group with everyone in it: also global popularity
    assert group_lift(np.zeros(len(truth), dtype=int), split) == pytest.approx(1.0)


def test_group_lift_needs_one_label_per_user() -> None:
    split, truth = planted_behaviour()
    with pytest.raises(DataError, match="one label per user"):
        group_lift(truth[:-1], split)
