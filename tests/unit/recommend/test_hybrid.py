"""Pruned EASE and the blends of personal and group scores."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import scipy.sparse as sp

import usergroups.recommend.hybrid as hybrid
from usergroups.errors import ConfigError, NotFittedError
from usergroups.evaluation import EASERecommender
from usergroups.recommend.hybrid import PrunedEASE, blend, personal_weights, row_scaled


def _matrix(seed: int = 0, n_users: int = 60, n_items: int = 40) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < 0.15).astype(np.float32))


def test_doctests_pass() -> None:
    assert doctest.testmod(hybrid).failed == 0


def test_unpruned_ease_matches_the_baseline() -> None:
    x = _matrix()
    ours = PrunedEASE(l2=50.0, keep=10**6).fit(x).scores(x[:10])
    base = EASERecommender(l2=50.0).fit(x).score(np.arange(10))
    np.testing.assert_allclose(ours, base, rtol=1e-4, atol=1e-5)


def test_pruning_keeps_the_largest_weights_per_item() -> None:
    x = _matrix(1)
    full = PrunedEASE(l2=10.0, keep=10**6).fit(x).weights_.toarray()
    pruned = PrunedEASE(l2=10.0, keep=5).fit(x).weights_.toarray()
    assert np.all((pruned != 0).sum(axis=0) <= 5)
    for j in range(x.shape[1]):
        kept = np.flatnonzero(pruned[:, j])
        assert np.allclose(pruned[kept, j], full[kept, j])
        if len(kept):
            dropped = np.setdiff1d(np.arange(x.shape[1]), kept)
            assert np.abs(full[dropped, j]).max() <= np.abs(full[kept, j]).min() + 1e-7


def test_scores_do_not_touch_the_callers_matrix() -> None:
    x = _matrix(2)
    x.data[:] = 4.0
    PrunedEASE(keep=8).fit(x).scores(x)
    assert np.all(x.data == 4.0)


def test_round_trip_and_errors() -> None:
    x = _matrix(3)
    ease = PrunedEASE(keep=8).fit(x)
    again = PrunedEASE.from_arrays(ease.to_arrays())
    np.testing.assert_allclose(again.scores(x[:5]), ease.scores(x[:5]))
    with pytest.raises(NotFittedError):
        PrunedEASE().scores(x)
    with pytest.raises(ConfigError, match="l2"):
        PrunedEASE(l2=0).fit(x)


def test_blend_weights_per_row_and_bounds() -> None:
    g = np.array([[1.0, 0.0], [1.0, 0.0]])
    p = np.array([[0.0, 1.0], [0.0, 1.0]])
    out = blend(g, p, np.array([0.0, 1.0]))
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ConfigError):
        blend(g, p, 1.5)
    np.testing.assert_allclose(row_scaled(np.zeros((1, 3))), np.zeros((1, 3)))


def test_personal_weights_shrink_light_users_toward_their_group() -> None:
    x = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 1, 1]], dtype=np.float32))
    w = personal_weights(x, 0.8, 4.0)
    np.testing.assert_allclose(w, [0.8 * 1 / 5, 0.8 * 4 / 8])
    np.testing.assert_allclose(personal_weights(x, 0.8, 0.0), [0.8, 0.8])
