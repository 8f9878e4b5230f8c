"""Item-kNN, the personal model above recommend.ease_max_items (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from usergroups.errors import ConfigError
from usergroups.linalg import item_knn_weights
from usergroups.recommend.hybrid import (
    ItemKNN,
    PrunedEASE,
    personal_from_arrays,
    personal_model_for,
)


def _matrix(seed: int = 0, n_users: int = 80, n_items: int = 30) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    pop = rng.zipf(1.5, n_items).astype(float)
    dense = rng.random((n_users, n_items)) < np.minimum(0.6, 0.1 * pop / pop.mean())
    return sp.csr_matrix(dense.astype(np.float32))


def _brute_force(x: sp.csr_matrix, k: int, alpha: float) -> np.ndarray:
    """Every pair's similarity from the dense co-occurrence matrix, the k best per row
    (ties to the lower index), no self-similarity, no pair without a shared user."""
    b = (x.toarray() > 0).astype(np.float64)
    co = b.T @ b
    count = np.diag(co).copy()
    n = len(count)
    out = np.zeros((n, n))
    for i in range(n):
        sims = []
        for j in range(n):
            if j != i and co[i, j] > 0:
                sims.append((-(co[i, j] / (count[i] ** alpha * count[j] ** (1 - alpha))), j))
        for neg, j in sorted(sims)[:k]:
            out[i, j] = -neg
    return out


@pytest.mark.parametrize("alpha", [0.5, 0.2])
@pytest.mark.parametrize("k", [1, 5, 100])
def test_item_knn_matches_a_brute_force_dense_computation(k: int, alpha: float) -> None:
    x = _matrix(k)
    # a tiny block forces many blocks: the result must not depend on the blocking
    for cells in (None, 7):
        w = item_knn_weights(x, k, alpha=alpha, block_cells=cells)
        np.testing.assert_allclose(w.toarray(), _brute_force(x, k, alpha), rtol=1e-6)


def test_item_knn_counts_any_stored_value_as_one_interaction() -> None:
    x = _matrix(3)
    graded = x.copy()
    graded.data = np.arange(1, graded.nnz + 1, dtype=np.float32)
    np.testing.assert_array_equal(
        item_knn_weights(graded, 4).toarray(), item_knn_weights(x, 4).toarray()
    )


def test_item_knn_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="n_neighbors"):
        item_knn_weights(_matrix(), 0)
    with pytest.raises(ConfigError, match="alpha"):
        item_knn_weights(_matrix(), 3, alpha=1.5)


def test_itemknn_scores_are_x_times_its_weights_and_round_trip() -> None:
    x = _matrix(4)
    knn = ItemKNN(n_neighbors=6).fit(x)
    expected = (x[:7] > 0).astype(np.float32) @ knn.weights_
    np.testing.assert_allclose(knn.scores(x[:7]), expected.toarray(), rtol=1e-6)
    again = personal_from_arrays(knn.to_arrays())
    assert isinstance(again, ItemKNN) and again.n_neighbors == 6
    np.testing.assert_array_equal(again.scores(x[:7]), knn.scores(x[:7]))


def test_saved_arrays_name_their_personal_model() -> None:
    x = _matrix(5)
    assert isinstance(personal_from_arrays(PrunedEASE(keep=4).fit(x).to_arrays()), PrunedEASE)
    assert personal_from_arrays({}) is None


def test_the_guard_switches_to_itemknn_above_ease_max_items_and_says_so() -> None:
    assert personal_model_for("auto", 100, 100) == ("ease", "")
    assert personal_model_for("ease", 100, 100) == ("ease", "")
    model, reason = personal_model_for("auto", 101, 100, n_neighbors=50)
    assert model == "itemknn"
    assert "101 items" in reason and "ease_max_items=100" in reason and "50 neighbours" in reason
    assert personal_model_for("ease", 101, 100)[0] == "itemknn"
    assert personal_model_for("itemknn", 5, 100) == ("itemknn", "")
    assert personal_model_for("none", 10**6, 100) == (None, "")
    with pytest.raises(ConfigError, match="'auto', 'ease', 'itemknn', 'none'"):
        personal_model_for("svd", 5, 100)
