"""Merging close groups, folding small ones, numbering by size; PostProcessedGroups."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import adjusted_rand_score

from usergroups.clustering import (
    NOISE,
    GroupClusterer,
    HDBSCANGroups,
    KMeansGroups,
    PostProcessedGroups,
    fold_small_groups,
    merge_close_groups,
    normalize_rows,
    postprocess_groups,
    relabel_by_size,
)
from usergroups.errors import ConfigError, DataError

from .contract import GroupClustererContract
from .planted import near_duplicate_directions, planted_groups


class TestPostProcessedGroups(GroupClustererContract):
    def make(self, n_groups: int | str = "auto", random_state: int | None = 0) -> GroupClusterer:
        base = KMeansGroups(n_groups, k_max=8, n_init=4, random_state=random_state)  # type: ignore[arg-type]
        return PostProcessedGroups(base, min_group_size=1, merge_threshold=0.98)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# -- merging


def test_merge_joins_two_near_identical_planted_groups() -> None:
    directions = near_duplicate_directions(4, cosine=0.999)
    X, y = planted_groups([30, 25, 20, 15], directions=directions, noise=0.1)
    labels, merged = merge_close_groups(X, y, threshold=0.98)
    assert merged == [(0, 3)]  # the larger group keeps its label
    expected = np.where(y == 3, 0, y)
    np.testing.assert_array_equal(labels, expected)


def test_merge_leaves_distinct_groups_alone() -> None:
    X, y = planted_groups([20, 20, 20])
    labels, merged = merge_close_groups(X, y, threshold=0.98)
    assert merged == []
    np.testing.assert_array_equal(labels, y)


def test_merge_takes_the_closest_pair_first_and_recomputes_centroids() -> None:
    # a-b are 5° apart, b-c 7°, the threshold is 8°: a and b merge first, and their
    # centroid (at 2.5°) is then 9.5° from c, so c stays on its own
    angles = np.deg2rad([0.0, 5.0, 12.0])
    X = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    labels, merged = merge_close_groups(X, [0, 1, 2], threshold=float(np.cos(np.deg2rad(8))))
    assert merged == [(0, 1)]
    assert labels.tolist() == [0, 0, 2]


def test_merge_never_touches_noise() -> None:
    X = np.array([[1, 0], [1, 0.001], [1, 0.002]], dtype=np.float32)
    labels, merged = merge_close_groups(X, [0, NOISE, 1], threshold=0.9)
    assert labels.tolist() == [0, NOISE, 0]
    assert merged == [(0, 1)]


# -- folding


def test_fold_removes_a_group_of_two_users_and_keeps_everyone_assigned() -> None:
    X, y = planted_groups([30, 25, 2], random_state=1)
    labels, folded = fold_small_groups(X, y, min_group_size=5)
    assert folded == [2]
    assert set(labels.tolist()) == {0, 1}
    np.testing.assert_array_equal(labels[y != 2], y[y != 2])


def test_fold_moves_a_small_group_to_the_most_similar_group() -> None:
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 1.0, 0.0]])
    X, y = planted_groups([10, 10, 2], n_features=3, directions=directions, noise=0.01)
    labels, _ = fold_small_groups(X, y, min_group_size=5)
    assert labels[y == 2].tolist() == [1, 1]


def test_fold_keeps_noise_as_noise() -> None:
    X, y = planted_groups([10, 10, 3])
    y = y.copy()
    y[:2] = NOISE
    labels, folded = fold_small_groups(X, y, min_group_size=5)
    assert (labels[:2] == NOISE).all()
    assert folded == [2]


def test_fold_keeps_the_largest_group_when_none_is_large_enough() -> None:
    X, y = planted_groups([3, 4, 2])
    labels, folded = fold_small_groups(X, y, min_group_size=10)
    assert (labels == 1).all()
    assert folded == [0, 2]


# -- numbering


def test_groups_are_numbered_by_size_largest_first() -> None:
    labels, mapping = relabel_by_size([2, 2, 0, 1, 1, 1, -1])
    assert labels.tolist() == [1, 1, 2, 0, 0, 0, -1]
    assert mapping == {1: 0, 2: 1, 0: 2}


def test_groups_of_equal_size_keep_the_order_of_their_labels() -> None:
    labels, _ = relabel_by_size([9, 4, 9, 4, 6, 6])
    assert labels.tolist() == [2, 0, 2, 0, 1, 1]


# -- the whole sequence


def test_postprocess_records_merges_folds_and_where_every_group_went() -> None:
    directions = near_duplicate_directions(4, cosine=0.999)
    X, y = planted_groups([30, 25, 3, 20], directions=directions, noise=0.1)
    result = postprocess_groups(X, y, min_group_size=5, merge_threshold=0.98)
    assert result.merged == [(0, 3)]
    assert result.folded == [2]
    assert np.bincount(result.labels).tolist()[0] == 50  # groups 0 and 3 merged
    mapped = np.array([result.label_map[int(label)] for label in y])
    np.testing.assert_array_equal(mapped, result.labels)


def test_postprocess_rejects_bad_settings() -> None:
    X, y = planted_groups([5, 5])
    with pytest.raises(ConfigError, match=r"merge_threshold=1\.5 must be in"):
        postprocess_groups(X, y, merge_threshold=1.5)
    with pytest.raises(ConfigError, match="min_group_size=0"):
        postprocess_groups(X, y, min_group_size=0)
    with pytest.raises(DataError, match="one per row"):
        postprocess_groups(X, y[:-1])


@st.composite
def labelled_users(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n_users = draw(st.integers(1, 40))
    n_features = draw(st.integers(1, 4))
    elements = st.floats(-1, 1, width=32, allow_subnormal=False)
    X = draw(arrays(np.float32, (n_users, n_features), elements=elements))
    labels = draw(arrays(np.int64, n_users, elements=st.integers(-1, 8)))
    return X, labels


@settings(max_examples=150, deadline=None)
@given(data=labelled_users(), min_group_size=st.integers(1, 10), threshold=st.floats(0.5, 1.0))
def test_postprocess_invariants(
    data: tuple[np.ndarray, np.ndarray], min_group_size: int, threshold: float
) -> None:
    X, labels = data
    result = postprocess_groups(X, labels, min_group_size=min_group_size, merge_threshold=threshold)
    out = result.labels
    # noise stays noise and nobody else becomes noise
    np.testing.assert_array_equal(out == NOISE, labels == NOISE)
    sizes = np.bincount(out[out != NOISE]) if (out != NOISE).any() else np.array([], int)
    # groups are numbered 0..k-1, largest first, none empty
    assert (sizes > 0).all()
    assert (np.diff(sizes) <= 0).all()
    # small groups are gone unless a single group is all that is left
    assert sizes.size <= 1 or sizes.min() >= min_group_size
    # groups only ever join: each input group lands, whole, in one output group
    for label in np.unique(labels):
        assert np.unique(out[labels == label]).size == 1
    mapped = np.array([result.label_map[int(label)] for label in labels])
    np.testing.assert_array_equal(mapped, out)


@settings(max_examples=100, deadline=None)
@given(data=labelled_users(), threshold=st.floats(0.5, 0.999))
def test_after_merging_no_two_centroids_exceed_the_threshold(
    data: tuple[np.ndarray, np.ndarray], threshold: float
) -> None:
    X, labels = data
    merged, _ = merge_close_groups(X, labels, threshold)
    groups = np.unique(merged[merged != NOISE])
    Xn = X.astype(np.float64)
    centroids = np.array([Xn[merged == g].sum(axis=0) for g in groups]).reshape(-1, X.shape[1])
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    unit = np.divide(centroids, np.where(norms > 0, norms, 1.0))
    sims = unit @ unit.T
    np.fill_diagonal(sims, -1.0)
    assert sims.size == 0 or sims.max() <= threshold + 1e-9


# -- the estimator


def test_wrapper_merges_a_group_that_kmeans_split_in_two() -> None:
    X, y = planted_groups([40, 30, 20, 20], noise=0.1, random_state=6)
    base = KMeansGroups(n_groups=5, random_state=0)  # one group too many: one gets split
    model = PostProcessedGroups(base, min_group_size=1, merge_threshold=0.98).fit(X)
    assert model.base_.n_groups_ == 5
    assert model.n_groups_ == 4
    assert len(model.merged_) == 1
    assert adjusted_rand_score(y, model.labels_) == pytest.approx(1.0)


def test_wrapper_folds_tiny_groups_and_numbers_groups_by_size() -> None:
    X, y = planted_groups([20, 35, 2, 28], random_state=8)
    model = PostProcessedGroups(KMeansGroups(n_groups=4, random_state=0), min_group_size=5)
    model.fit(X)
    assert model.n_groups_ == 3
    assert (model.labels_ >= 0).all()
    assert model.folded_ == [model.base_.labels_[y == 2][0]]
    assert np.bincount(model.labels_).tolist() == sorted(np.bincount(model.labels_), reverse=True)
    # label_map_ says where every base group went
    mapped = [model.label_map_[int(b)] for b in model.base_.labels_]
    assert mapped == model.labels_.tolist()


def test_wrapper_centroids_are_recomputed_after_postprocessing() -> None:
    X, _ = planted_groups([20, 35, 2, 28], random_state=8)
    model = PostProcessedGroups(KMeansGroups(n_groups=4, random_state=0), min_group_size=5)
    model.fit(X)
    Xn = normalize_rows(X)
    for g in range(model.n_groups_):
        np.testing.assert_allclose(
            model.centroids_[g], Xn[model.labels_ == g].mean(axis=0), atol=1e-5
        )


def test_wrapper_keeps_noise_from_hdbscan() -> None:
    X, _ = planted_groups([30, 30])
    outliers = _unit(np.random.default_rng(1).standard_normal((3, X.shape[1])))
    X = np.vstack([X, outliers.astype(np.float32)])
    model = PostProcessedGroups(HDBSCANGroups(min_cluster_size=5), min_group_size=5).fit(X)
    np.testing.assert_array_equal(model.labels_ == NOISE, model.base_.labels_ == NOISE)
    assert model.label_map_[NOISE] == NOISE


def test_wrapper_leaves_its_base_estimator_unfitted() -> None:
    X, _ = planted_groups([10, 10])
    base = KMeansGroups(n_groups=2, random_state=0)
    PostProcessedGroups(base).fit(X)
    assert not hasattr(base, "labels_")


def test_wrapper_keeps_the_base_k_scores() -> None:
    X, _ = planted_groups([20, 20, 20])
    model = PostProcessedGroups(KMeansGroups(k_max=5, random_state=0)).fit(X)
    assert model.k_scores_ == model.base_.k_scores_
    assert list(model.k_scores_) == [2, 3, 4, 5]


def test_wrapper_with_a_base_that_is_not_a_group_clusterer_raises_config_error() -> None:
    X, _ = planted_groups([10, 10])
    with pytest.raises(ConfigError, match="base must be a GroupClusterer"):
        PostProcessedGroups("kmeans").fit(X)  # type: ignore[arg-type]
