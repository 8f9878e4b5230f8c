"""Stability by resampling (issue 14): runs, partition agreement, per-group Jaccard."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from usergroups.clustering.stability import (
    ResampleRun,
    group_jaccard,
    partition_agreement,
    resample_runs,
)
from usergroups.errors import DataError


def _blobs(n_per: int = 40, centres: int = 3, spread: float = 0.05, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.repeat(np.eye(centres), n_per, axis=0)
    return x + spread * rng.standard_normal(x.shape)


def _kmeans(k: int):  # type: ignore[no-untyped-def]
    return lambda z, seed: KMeans(k, n_init=2, random_state=seed).fit(z).labels_


def test_runs_are_subsets_with_their_own_seeds() -> None:
    x = _blobs()
    seeds: list[int] = []

    def fit(z: np.ndarray, seed: int) -> np.ndarray:
        seeds.append(seed)
        return np.zeros(len(z), dtype=np.int64)

    runs = resample_runs(fit, x, n_resamples=4, fraction=0.5, random_state=3)
    assert len(runs) == 4 and len(set(seeds)) == 4
    for run in runs:
        assert len(run.rows) == 60 == len(run.labels)
        assert np.all(np.diff(run.rows) > 0)  # sorted, no duplicates
    again = resample_runs(fit, x, n_resamples=4, fraction=0.5, random_state=3)
    assert all(np.array_equal(a.rows, b.rows) for a, b in zip(runs, again, strict=True))


def test_max_users_caps_each_subset() -> None:
    runs = resample_runs(_kmeans(3), _blobs(), n_resamples=2, max_users=30)
    assert all(len(r.rows) == 30 for r in runs)


def test_bad_fraction_and_wrong_label_count_are_errors() -> None:
    with pytest.raises(DataError, match="fraction"):
        resample_runs(_kmeans(3), _blobs(), fraction=0.0)
    with pytest.raises(DataError, match="every row"):
        resample_runs(lambda z, seed: np.zeros(3), _blobs(), n_resamples=1)


def test_separated_groups_are_stable() -> None:
    x = _blobs()
    reference = _kmeans(3)(x, 0)
    runs = resample_runs(_kmeans(3), x, n_resamples=4, random_state=1)
    assert partition_agreement(reference, runs) == pytest.approx(1.0)
    np.testing.assert_allclose(group_jaccard(reference, runs), 1.0)


def test_an_arbitrary_split_is_flagged_and_a_real_group_is_not() -> None:
    # two real groups; the reference cuts the first one in half at random
    x = _blobs(n_per=60, centres=2, spread=0.05, seed=2)
    rng = np.random.default_rng(0)
    reference = np.where(np.arange(120) < 60, rng.integers(0, 2, 120), 2)
    runs = resample_runs(_kmeans(2), x, n_resamples=5, random_state=0)
    jac = group_jaccard(reference, runs)
    assert jac[2] == pytest.approx(1.0)
    assert jac[0] < 0.6 and jac[1] < 0.6
    assert partition_agreement(reference, runs) < 0.8  # the half that is real still agrees


def test_noise_and_unseen_groups() -> None:
    reference = np.array([0, 0, 1, 1, -1, 2])
    run = ResampleRun(rows=np.array([0, 1, 2, 3, 4]), labels=np.array([5, 5, 1, 1, -1]))
    jac = group_jaccard(reference, [run])
    assert jac[0] == pytest.approx(1.0) and jac[1] == pytest.approx(1.0)
    assert np.isnan(jac[2])  # no run saw group 2's member
    assert np.isnan(partition_agreement(reference, []))
