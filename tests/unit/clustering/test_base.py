"""Shared helpers of the clusterers: validation, geometry, silhouette, choosing k."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import silhouette_score

from usergroups.clustering import (
    NOISE,
    check_vectors,
    cosine_silhouette,
    group_centroids,
    nearest_centroid,
    normalize_rows,
    select_n_groups,
)
from usergroups.clustering.base import candidate_ks, check_choice, check_n_groups, compact_labels
from usergroups.errors import ConfigError, DataError

from .contract import user_vectors
from .planted import planted_groups

# -- check_vectors


def test_check_vectors_returns_contiguous_float32() -> None:
    X = check_vectors(np.arange(6, dtype=np.int64).reshape(3, 2).T)
    assert X.dtype == np.float32
    assert X.flags.c_contiguous


def test_check_vectors_accepts_numbers_in_an_object_array() -> None:
    X = check_vectors(np.array([[1, 2.5]], dtype=object))
    assert X.tolist() == [[1.0, 2.5]]


def test_check_vectors_keeps_float32_input_without_copying() -> None:
    X = np.ones((3, 2), dtype=np.float32)
    assert check_vectors(X) is X


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.ones(3), "2-D array of shape"),
        (np.ones((0, 3)), "no users"),
        (np.ones((3, 0)), r"0 feature\(s\)"),
        (np.array([["a", "b"]]), "real numbers"),
        (np.array([[1, "b"]], dtype=object), "array of numbers"),
        (np.ones((2, 2), dtype=complex), "Complex data not supported"),
        (sp.csr_matrix(np.eye(3)), "sparse input is not supported"),
        (np.array([[1.0, np.inf], [1.0, 1.0]]), "1 rows with NaN or infinite values .*row 0"),
    ],
)
def test_check_vectors_rejects_what_is_not_a_user_matrix(X: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        check_vectors(X)


# -- geometry


def test_normalize_rows_gives_unit_rows_and_keeps_zero_rows() -> None:
    X = normalize_rows(np.array([[3, 4], [0, 0], [0, -2]], dtype=np.float32))
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), [1.0, 0.0, 1.0], atol=1e-6)


def test_compact_labels_keeps_order_and_noise() -> None:
    labels, n_groups = compact_labels([5, 5, -1, 2, 9])
    assert labels.tolist() == [1, 1, -1, 0, 2]
    assert n_groups == 3


def test_group_centroids_are_member_means_without_noise() -> None:
    X = np.array([[1, 0], [0, 1], [4, 4], [2, 2]], dtype=np.float32)
    centroids = group_centroids(X, np.array([0, 0, NOISE, 1]), 2)
    assert centroids.dtype == np.float32
    np.testing.assert_allclose(centroids, np.array([[0.5, 0.5], [2.0, 2.0]]))


def test_nearest_centroid_uses_cosine_not_distance() -> None:
    # the long centroid is far in Euclidean terms but points the same way as the user
    centroids = np.array([[10.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    assert nearest_centroid(np.array([[1.0, 0.1]], dtype=np.float32), centroids).tolist() == [0]


def test_nearest_centroid_without_centroids_is_noise() -> None:
    X = np.ones((3, 2), dtype=np.float32)
    assert nearest_centroid(X, np.zeros((0, 2), dtype=np.float32)).tolist() == [-1, -1, -1]


# -- silhouette


def test_cosine_silhouette_matches_scikit_learn_when_not_sampling() -> None:
    X, y = planted_groups([20, 15, 10])
    expected = silhouette_score(X, y, metric="cosine")
    assert cosine_silhouette(X, y, sample_size=1000) == pytest.approx(expected, abs=1e-5)


def test_cosine_silhouette_leaves_noise_out() -> None:
    X, y = planted_groups([20, 15, 10])
    noisy = y.copy()
    noisy[::7] = NOISE
    keep = noisy != NOISE
    expected = silhouette_score(X[keep], y[keep], metric="cosine")
    assert cosine_silhouette(X, noisy) == pytest.approx(expected, abs=1e-5)


def test_cosine_silhouette_sample_is_seeded() -> None:
    X, y = planted_groups([200, 150, 100], noise=1.5)
    first = cosine_silhouette(X, y, sample_size=100, random_state=3)
    assert first == cosine_silhouette(X, y, sample_size=100, random_state=3)
    assert first != cosine_silhouette(X, y, sample_size=100, random_state=4)


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3], [NOISE, NOISE, 0, 0]])
def test_cosine_silhouette_is_nan_when_undefined(labels: list[int]) -> None:
    X, _ = planted_groups([2, 2])
    assert np.isnan(cosine_silhouette(X, labels))


@settings(max_examples=50, deadline=None)
@given(X=user_vectors(), data=st.data())
def test_cosine_silhouette_is_nan_or_within_minus_one_and_one(
    X: np.ndarray, data: st.DataObject
) -> None:
    labels = data.draw(st.lists(st.integers(-1, 3), min_size=X.shape[0], max_size=X.shape[0]))
    score = cosine_silhouette(check_vectors(X), labels, random_state=0)
    assert np.isnan(score) or -1.0 - 1e-6 <= score <= 1.0 + 1e-6


# -- choosing the number of groups


def test_select_n_groups_picks_the_highest_silhouette() -> None:
    X, y = planted_groups([20, 20, 20])

    def labels_for_k(k: int) -> np.ndarray:
        return y if k == 3 else np.arange(y.size) % k

    k, labels, scores = select_n_groups(
        X, [2, 3, 4], labels_for_k, sample_size=1000, random_state=0
    )
    assert k == 3
    np.testing.assert_array_equal(labels, y)
    assert list(scores) == [2, 3, 4]
    assert max(scores, key=scores.__getitem__) == 3


def test_select_n_groups_prefers_fewer_groups_on_ties_and_skips_undefined_scores() -> None:
    X, y = planted_groups([20, 20])
    scores_by_k = {2: y, 3: y, 4: np.zeros_like(y)}  # k=4 has one group: undefined score
    k, _, scores = select_n_groups(
        X, [2, 3, 4], scores_by_k.__getitem__, sample_size=1000, random_state=0
    )
    assert k == 2
    assert np.isnan(scores[4])


def test_candidate_ks_stop_below_the_number_of_users() -> None:
    assert candidate_ks(2, 20, 6) == [2, 3, 4, 5]
    assert candidate_ks(2, 20, 2) == []


# -- parameter checks


def test_check_choice_lists_the_valid_choices() -> None:
    with pytest.raises(ConfigError, match="method='x' is not one of 'a', 'b'"):
        check_choice("method", "x", ["a", "b"])


@pytest.mark.parametrize("value", ["Auto", 0, -3, 1.5, True, None])
def test_check_n_groups_accepts_only_auto_or_a_positive_int(value: object) -> None:
    with pytest.raises(ConfigError, match="is not one of 'auto' or a positive integer"):
        check_n_groups(value)
