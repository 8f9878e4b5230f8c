"""Save-time recommendations in batches give the one-call lists (issue 16)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from usergroups.recommend import GroupPopularity, top_n
from usergroups.recommend.batched import batch_rows, top_n_blended
from usergroups.recommend.hybrid import ItemKNN, PrunedEASE, blend, personal_weights


def _data(seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_users, n_items = 600, 150
    labels = rng.integers(-1, 4, n_users)  # -1: noise users get global popularity
    pop = rng.zipf(1.3, n_items).astype(float)
    p = np.minimum(0.5, 0.03 * pop / pop.mean())
    return sp.csr_matrix((rng.random((n_users, n_items)) < p).astype(np.float32)), labels


def _one_call(rec: Any, personal: Any, labels: np.ndarray, x: sp.csr_matrix, w: float, c: float):
    scores = rec.group_scores(labels)
    if personal is not None and w > 0:
        scores = blend(scores, personal.scores(x), personal_weights(x, w, c))
    r, col = x.nonzero()
    scores[r, col] = -np.inf
    return top_n(scores, 10)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    ("kind", "weight", "shrinkage"),
    [("none", 0.0, 0.0), ("itemknn", 0.5, 2.0), ("itemknn", 1.0, 0.0), ("ease", 0.5, 5.0)],
)
@pytest.mark.parametrize("batch_size", [None, 1, 37])
def test_batches_give_the_one_call_recommendations(
    seed: int, kind: str, weight: float, shrinkage: float, batch_size: int | None
) -> None:
    x, labels = _data(seed)
    rec = GroupPopularity(smoothing=10.0).fit(x, labels)
    personal = {
        "none": None,
        "itemknn": ItemKNN(n_neighbors=10).fit(x),
        "ease": PrunedEASE(l2=50.0, keep=40).fit(x),
    }[kind]
    idx, val = _one_call(rec, personal, labels, x, weight, shrinkage)
    got_idx, got_val = top_n_blended(
        rec,
        personal,
        labels,
        x,
        10,
        personal_weight=weight,
        personal_shrinkage=shrinkage,
        batch_size=batch_size,
    )
    np.testing.assert_array_equal(got_idx, idx)
    np.testing.assert_array_equal(got_val, val.astype(np.float32))


def test_a_user_who_has_seen_almost_everything_gets_the_rest_padded() -> None:
    x, labels = _data(2)
    x = x.tolil()
    x[0, :] = 1.0
    x[0, 3] = 0.0
    x = sp.csr_matrix(x)
    x.eliminate_zeros()
    rec = GroupPopularity(smoothing=10.0).fit(x, labels)
    idx, val = top_n_blended(rec, ItemKNN(5).fit(x), labels, x, 10, personal_weight=0.5)
    assert idx[0].tolist() == [3] + [-1] * 9
    assert np.isneginf(val[0, 1:]).all()


def test_batch_rows_bounds_the_dense_block() -> None:
    assert batch_rows(100_000, cells=1_000_000) == 10
    assert batch_rows(10**9) == 1
