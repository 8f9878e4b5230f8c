"""Fine groups (issue 23): the ensemble of fine partitions behind every group answer."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from usergroups.clustering.fine import (
    fine_group_stability,
    fit_fine_partitions,
    representative_partition,
)
from usergroups.errors import ConfigError, DataError
from usergroups.linalg import nearest_rows
from usergroups.recommend import GroupPopularity
from usergroups.recommend.fine_groups import FineGroups


def _blobs(n_per: int = 30, n_blobs: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(n_blobs, dtype=np.float32)
    truth = np.repeat(np.arange(n_blobs), n_per)
    x = centres[truth] + 0.05 * rng.standard_normal((len(truth), n_blobs)).astype(np.float32)
    return x, truth


def _log(truth: np.ndarray, n_items: int = 24, seed: int = 0) -> sp.csr_matrix:
    """Each blob consumes its own block of items (and a little of everything)."""
    rng = np.random.default_rng(seed)
    n_blobs = int(truth.max()) + 1
    per = n_items // n_blobs
    rows, cols = [], []
    for u, g in enumerate(truth):
        own = rng.choice(np.arange(g * per, (g + 1) * per), size=3, replace=False)
        other = rng.choice(n_items, size=1)
        for i in (*own, *other):
            rows.append(u)
            cols.append(int(i))
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(truth), n_items))
    x.data[:] = 1.0
    return x


def test_nearest_rows_places_zero_rows_nowhere_and_reports_every_similarity() -> None:
    labels, sims = nearest_rows([[1.0, 0.1], [0.0, 0.0], [0.2, 3.0]], [[1.0, 0.0], [0.0, 1.0]])
    assert labels.tolist() == [0, -1, 1]
    assert sims.shape == (3, 2)
    assert np.all(sims[1] == 0)


def test_nearest_rows_refuses_vectors_of_another_space() -> None:
    with pytest.raises(DataError, match="features"):
        nearest_rows(np.ones((2, 3)), np.ones((2, 4)))


def test_partitions_are_seeded_and_shaped() -> None:
    x, _ = _blobs()
    a = fit_fine_partitions(x, 6, 3, random_state=1)
    b = fit_fine_partitions(x, 6, 3, random_state=1)
    assert a.shape == (3, 6, x.shape[1])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=2), 1.0, atol=1e-5)


def test_partitions_extend_without_fitting_the_first_again() -> None:
    """Partition i is the same whatever the number fitted, so a search extends its fits
    (``first``) instead of fitting the first ones again (issue 23: fit cost)."""
    x, _ = _blobs()
    whole = fit_fine_partitions(x, 6, 5, random_state=3)
    np.testing.assert_array_equal(fit_fine_partitions(x, 6, 3, random_state=3), whole[:3])
    np.testing.assert_array_equal(fit_fine_partitions(x, 6, 5, random_state=3, first=3), whole[3:])
    with pytest.raises(ConfigError, match="first=5 is not a partition of 5"):
        fit_fine_partitions(x, 6, 5, first=5)


def test_partitions_refuse_bad_sizes_and_too_few_users() -> None:
    x, _ = _blobs()
    with pytest.raises(ConfigError):
        fit_fine_partitions(x, 0, 3)
    with pytest.raises(ConfigError):
        fit_fine_partitions(x, 4, 2, subsample=1.5)
    with pytest.raises(DataError, match="at least 2 users"):
        fit_fine_partitions(np.zeros((5, 3)), 2, 1)


def test_each_users_scores_are_the_mean_of_their_fine_groups_popularity() -> None:
    x, truth = _blobs()
    log = _log(truth)
    centroids = fit_fine_partitions(x, 6, 4, random_state=0)
    fine = FineGroups(smoothing=5.0).fit(x, log, centroids)
    # by hand: one GroupPopularity per partition, on that partition's labels
    expected = np.mean(
        [
            GroupPopularity(smoothing=5.0)
            .fit(log, fine.labels_[:, p])
            .group_scores(fine.labels_[:7, p])
            for p in range(4)
        ],
        axis=0,
    )
    np.testing.assert_allclose(fine.user_scores(np.arange(7)), expected, rtol=1e-5, atol=1e-6)


def test_a_users_placement_is_the_one_placement_rule() -> None:
    x, truth = _blobs()
    centroids = fit_fine_partitions(x, 6, 2, random_state=0)
    fine = FineGroups().fit(x, _log(truth), centroids)
    for p in range(2):
        np.testing.assert_array_equal(fine.labels_[:, p], nearest_rows(x, centroids[p])[0])
    np.testing.assert_allclose(fine.vector_scores(x[:5]), fine.user_scores(np.arange(5)))


def test_soft_membership_sums_to_one_and_blank_users_get_popularity() -> None:
    x, truth = _blobs()
    fine = FineGroups().fit(x, _log(truth), fit_fine_partitions(x, 6, 3, random_state=0))
    member = fine.membership(np.vstack([x[:4], np.zeros((1, x.shape[1]), np.float32)]))
    np.testing.assert_allclose(member[:4].sum(axis=1), 1.0, atol=1e-5)
    assert member[4].sum() == 0
    soft = fine.soft_scores(np.zeros((1, x.shape[1]), np.float32))
    np.testing.assert_allclose(soft[0], fine.popularity_.popularity_)


def test_fine_groups_predict_planted_blocks_better_than_two_coarse_segments() -> None:
    x, truth = _blobs(n_per=40)
    log = _log(truth, seed=1)
    held = _log(truth, seed=2)  # another draw from the same tastes
    fine = FineGroups(smoothing=5.0).fit(x, log, fit_fine_partitions(x, 6, 5, random_state=0))
    coarse = GroupPopularity(smoothing=5.0).fit(log, truth // 3)  # 2 segments of 3 blobs

    def hits(scores: np.ndarray) -> float:
        scores = np.where(log.toarray() > 0, -np.inf, scores)
        top = np.argsort(-scores, axis=1)[:, :3]
        return float(np.take_along_axis(held.toarray(), top, axis=1).mean())

    rows = np.arange(len(truth))
    assert hits(fine.user_scores(rows)) > hits(coarse.group_scores(truth // 3)) + 0.1


def test_arrays_round_trip_gives_the_same_scores() -> None:
    x, truth = _blobs()
    log = _log(truth)
    fine = FineGroups(smoothing=3.0).fit(x, log, fit_fine_partitions(x, 5, 3, random_state=0))
    fine.representative_ = 2
    back = FineGroups.from_arrays(fine.to_arrays(), log, 3.0)
    assert back.representative_ == 2
    rows = np.arange(len(truth))
    np.testing.assert_array_equal(back.user_scores(rows), fine.user_scores(rows))
    np.testing.assert_array_equal(back.sub_interests(), fine.labels_[:, 2])


def test_a_saved_representative_outside_the_partitions_is_refused() -> None:
    x, truth = _blobs()
    log = _log(truth)
    arrays = FineGroups().fit(x, log, fit_fine_partitions(x, 5, 2, random_state=0)).to_arrays()
    arrays["fine_representative"] = np.array([7])
    with pytest.raises(DataError, match="not a partition"):
        FineGroups.from_arrays(arrays, log, 10.0)


def test_identical_partitions_are_perfectly_stable_and_noise_is_not() -> None:
    _, truth = _blobs()
    same = np.stack([truth, truth, truth], axis=1)
    np.testing.assert_allclose(fine_group_stability(same, 0), 1.0)
    rng = np.random.default_rng(0)
    noisy = np.stack([truth, rng.permutation(truth), rng.permutation(truth)], axis=1)
    assert np.nanmax(fine_group_stability(noisy, 0)) < 0.5
    assert representative_partition(np.stack([truth, truth, rng.permutation(truth)], 1)) in (0, 1)


def test_new_users_are_placed_by_their_groups_mean_text_not_the_fused_centres() -> None:
    """A new user is known by text alone. Where the fine groups partition behaviour only
    (text weight 0) the fused centres carry no text at all, yet each group's members'
    mean text still says where it sits in the text space (issue 23)."""
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(2), 20)
    behaviour = np.eye(2, dtype=np.float32)[truth] + 0.05 * rng.standard_normal((40, 2))
    text = np.eye(3, dtype=np.float32)[truth] + 0.05 * rng.standard_normal((40, 3))
    fused = np.hstack([np.zeros_like(text), behaviour]).astype(np.float32)
    x = sp.csr_matrix(np.eye(2, dtype=np.float32)[truth])
    centroids = np.stack([np.eye(2, 5, 3, dtype=np.float32)])  # one partition, behaviour only
    fine = FineGroups(smoothing=0).fit(fused, x, centroids)
    assert fine.labels_[:, 0].tolist() == truth.tolist()
    centres = fine.text_centroids(text)
    assert centres.shape == (1, 2, 3)
    np.testing.assert_allclose(np.linalg.norm(centres[0], axis=1), 1.0, atol=1e-5)
    query = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    scores = fine.soft_scores(query, centroids=centres)
    # each new user's text points at one group, whose item it gets first
    assert scores.argmax(axis=1).tolist() == [0, 1]
    member = fine.membership(query, centroids=centres)
    np.testing.assert_allclose(member.sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(DataError, match="rows for 40 fitted users"):
        fine.text_centroids(text[:5])


def test_membership_is_each_partitions_softmax_over_the_placement_rules_cosines() -> None:
    """Vectorised over the partitions with centres normalised once (issue 25); the same
    numbers as a softmax of :func:`nearest_rows`'s similarities, partition by partition."""
    x, truth = _blobs()
    fine = FineGroups(temperature=0.07).fit(
        x, _log(truth), fit_fine_partitions(x, 5, 4, random_state=1)
    )
    rows = np.vstack([x[:7], np.zeros((1, x.shape[1]), np.float32)])
    expected = []
    for p in range(fine.n_partitions):
        labels, sims = nearest_rows(rows, fine.centroids_[p])
        e = np.exp((sims - sims.max(axis=1, keepdims=True)) / np.float32(0.07))
        share = e / e.sum(axis=1, keepdims=True) / fine.n_partitions
        share[labels < 0] = 0.0
        expected.append(share)
    np.testing.assert_allclose(fine.membership(rows), np.hstack(expected), rtol=1e-6, atol=1e-7)
    # other centres of the same groups: not the cached normalisation of the fitted ones
    other = fine.centroids_[:, ::-1].copy()
    flipped = fine.membership(rows, centroids=other)
    k = fine.n_fine
    np.testing.assert_allclose(flipped[:, :k], fine.membership(rows)[:, :k][:, ::-1], atol=1e-7)
    with pytest.raises(DataError, match="one centre per fine group"):
        fine.membership(rows, centroids=other[:, :2])
    with pytest.raises(DataError, match="features"):
        fine.membership(rows[:, :3])
