from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from usergroups.recommend import GroupPopularity, top_n


def _x(rows: list[list[int]]) -> sp.csr_matrix:
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


def test_recommend_excludes_seen_items() -> None:
    x = _x([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]])
    rec = GroupPopularity(smoothing=0).fit(x, np.array([0, 0, 1]))
    idx, _ = rec.recommend_groups(np.array([0, 0]), n=4, exclude=x[:2])
    assert 0 not in idx[0] and 1 not in idx[0]
    assert idx[0][0] == 2 and idx[1][0] == 1


def test_no_smoothing_gives_in_group_share_and_large_smoothing_gives_popularity() -> None:
    x = _x([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1]])
    labels = np.array([0, 0, 1, 1, 1])
    raw = GroupPopularity(smoothing=0).fit(x, labels)
    assert raw.scores_[0].tolist() == [1.0, 0.0]
    smooth = GroupPopularity(smoothing=1e9).fit(x, labels)
    assert np.allclose(smooth.scores_[0], [0.4, 0.6], atol=1e-4)


def test_noise_users_get_global_popularity() -> None:
    x = _x([[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    rec = GroupPopularity(smoothing=0).fit(x, np.array([0, -1, 0]))
    idx, _ = rec.recommend_groups(np.array([-1]), n=1)
    assert idx[0][0] == 2


def test_from_arrays_reproduces_scores() -> None:
    x = _x([[1, 0, 1], [0, 1, 1]])
    rec = GroupPopularity(smoothing=2).fit(x, np.array([0, 1]))
    again = GroupPopularity.from_arrays(rec.counts_, rec.sizes_, rec.popularity_, 2)
    assert np.array_equal(rec.scores_, again.scores_)


def test_top_n_breaks_ties_by_lower_index_and_skips_excluded() -> None:
    scores = np.array([[1.0, 2.0, 2.0, -np.inf]])
    idx, vals = top_n(scores, 4)
    assert idx.tolist() == [[1, 2, 0, -1]]
    assert np.isneginf(vals[0, 3])


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(2, 20), st.integers(1, 5), st.integers(0, 999))
def test_lists_are_unique_sorted_and_never_seen(
    n_users: int, n_items: int, n: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(np.float32))
    labels = rng.integers(-1, 3, n_users)
    rec = GroupPopularity(smoothing=float(rng.integers(0, 5))).fit(x, labels)
    idx, vals = rec.recommend_groups(labels, n=n, exclude=x)
    for u in range(n_users):
        items = idx[u][idx[u] >= 0]
        assert len(set(items.tolist())) == len(items)
        assert not set(items.tolist()) & set(x[u].indices.tolist())
        v = vals[u][idx[u] >= 0]
        assert np.all(np.diff(v) <= 0)
