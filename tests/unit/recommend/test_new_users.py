"""The new-user model: item documents, soft membership, retrieval + spreading, the mix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from usergroups import linalg
from usergroups.errors import ConfigError, DataError
from usergroups.recommend.hybrid import blend
from usergroups.recommend.new_users import (
    NewUserModel,
    item_documents,
    soft_group_scores,
    spread_scores,
    weight_grid,
)
from usergroups.recommend.text_ridge import TextItemRidge


def test_item_documents_are_unit_means_of_their_texts() -> None:
    texts = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    docs = item_documents(texts, np.array([0, 0, -1]), 2)
    np.testing.assert_allclose(docs[0], [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)
    assert not docs[1].any()  # nobody wrote about item 1


def test_item_documents_reject_mismatched_lengths() -> None:
    with pytest.raises(DataError, match="2 text vectors for 1"):
        item_documents(np.eye(2), np.array([0]), 2)


def test_soft_membership_weights_group_rows() -> None:
    rows = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    out = soft_group_scores(np.array([[0.75, 0.25], [0.0, 0.0]]), rows)
    np.testing.assert_allclose(out, [[0.75, 0.25], [0.5, 0.5]])  # a zero row: the mean


def test_spread_retrieves_the_matching_item_and_spreads_to_its_neighbours() -> None:
    # item 0's document matches the query; the item-item model says 0 goes with 2
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    item_item = sp.csr_matrix(np.array([[0, 0, 1.0], [1.0, 0, 0], [0, 1.0, 0]], np.float32))
    out = spread_scores(np.array([[1.0, 0.0]], np.float32), docs, item_item, top_items=1)
    assert out.argmax() == 2
    # with every item retrieved, the dissimilar ones still count, less
    full = spread_scores(np.array([[1.0, 0.0]], np.float32), docs, item_item.toarray(), 3)
    assert full[0, 2] > full[0, 0] > 0


@pytest.mark.parametrize("kwargs", [{"top_items": 0}, {"temperature": 0.0}])
def test_spread_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    args = {"top_items": 1, "temperature": 0.1, **kwargs}
    with pytest.raises(ConfigError):
        spread_scores(np.ones((1, 2)), np.ones((2, 2)), np.eye(2), **args)  # type: ignore[arg-type]


def test_weight_grid_is_the_simplex_and_honours_fixed_weights() -> None:
    grid = weight_grid(0.1)
    assert len(grid) == 66
    assert all(abs(sum(w.values()) - 1) < 1e-9 and min(w.values()) >= 0 for w in grid)
    fixed = weight_grid(0.1, {"spread": 0.0})
    assert len(fixed) == 11 and all(w["spread"] == 0.0 for w in fixed)
    assert weight_grid(0.1, {"ridge": 0.7, "spread": 0.5}) == []  # impossible: nothing


def test_model_checks_its_weights_and_parts() -> None:
    with pytest.raises(ConfigError, match="sum to 1"):
        NewUserModel({"group": 0.5, "ridge": 0.2})
    with pytest.raises(ConfigError, match="TextItemRidge"):
        NewUserModel({"group": 0.5, "ridge": 0.5})
    with pytest.raises(ConfigError, match="item documents"):
        NewUserModel({"spread": 1.0})
    with pytest.raises(ConfigError, match="unknown"):
        NewUserModel({"group": 1.0, "popularity": 0.0})


def _parts() -> tuple[TextItemRidge, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    texts = rng.normal(size=(30, 4)).astype(np.float32)
    items = sp.csr_matrix((rng.random((30, 5)) > 0.6).astype(np.float32))
    ridge = TextItemRidge(l2=1.0).fit(texts, items)
    rows = rng.random((3, 5)).astype(np.float32)  # two groups, then global popularity
    proba = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    return ridge, texts[:2], rows, proba


def test_legacy_rule_is_the_old_blend() -> None:
    ridge, query, rows, proba = _parts()
    model = NewUserModel.legacy(ridge, 0.25)
    expected = blend(rows[proba.argmax(axis=1)], ridge.scores(query), 0.25)
    np.testing.assert_allclose(model.scores(proba, rows, query), expected, rtol=1e-6)


def test_mix_is_the_weighted_sum_of_row_scaled_parts_and_round_trips() -> None:
    ridge, query, rows, proba = _parts()
    docs = item_documents(np.eye(5, 4, dtype=np.float32), np.arange(5), 5)
    item_item = np.eye(5, dtype=np.float32)
    model = NewUserModel(
        {"group": 0.2, "ridge": 0.3, "spread": 0.5}, ridge=ridge, item_docs=docs, top_items=2
    )
    parts = model.components(proba, rows, query, item_item)
    assert set(parts) == {"group", "ridge", "spread"}
    scores = model.scores(proba, rows, query, item_item)
    assert scores.shape == (2, 5)
    again = NewUserModel.from_saved(model.to_dict(), model.to_arrays(), ridge)
    np.testing.assert_array_equal(again.scores(proba, rows, query, item_item), scores)
    assert "spread 0.5" in model.describe() and "top 2" in model.describe()


def test_a_spread_without_an_item_item_model_is_an_error() -> None:
    ridge, query, rows, proba = _parts()
    docs = np.ones((5, 4), dtype=np.float32) / 2
    model = NewUserModel({"group": 0.5, "spread": 0.5}, ridge=ridge, item_docs=docs)
    with pytest.raises(ConfigError, match="item-item"):
        model.scores(proba, rows, query, None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spread_over_csr_is_scipys_sparse_product_bit_for_bit(
    dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CSR spread gathers the retrieved items' rows itself (issue 25: one /assign
    built two sparse matrices); it must add them as scipy does, to the last bit, with
    negative weights (sums of exactly zero) and rows of any length, one query or many."""
    rng = np.random.default_rng(3)
    dense = sp.random(120, 120, density=0.15, random_state=4, dtype=dtype).toarray()
    dense[dense != 0] -= 0.5
    dense[7] = 0.0  # an item with an empty row
    item_item = sp.csr_matrix(dense)
    docs = rng.standard_normal((120, 8)).astype(np.float32)
    query = rng.standard_normal((600, 8)).astype(np.float32)
    monkeypatch.setattr(linalg, "GATHER_BLOCK_ENTRIES", 2_000)  # entries in blocks
    query[5] = docs[7]  # retrieves the empty row first
    # at a tiny temperature most weights underflow to 0, and 0 times a negative is -0.0
    for q, temperature in ((query, 0.1), (query[:1], 0.1), (query, 1e-3)):
        fast = spread_scores(q, docs, item_item, 9, temperature)
        # the CSC input takes scipy's path: the retrieved weights times the matrix
        reference = spread_scores(q, docs, item_item.tocsc(), 9, temperature)
        assert fast.dtype == np.float32
        # the same bits (a float64 sum too small for float32 is -0.0 in both, say)
        np.testing.assert_array_equal(fast.view(np.uint32), reference.view(np.uint32))


def test_the_group_part_is_asked_for_only_when_the_mix_reads_it() -> None:
    ridge, _, _, _ = _parts()
    docs = np.ones((5, 4), dtype=np.float32) / 2
    assert not NewUserModel(
        {"ridge": 0.5, "spread": 0.5}, ridge=ridge, item_docs=docs
    ).uses_group_part
    assert NewUserModel({"group": 0.5, "ridge": 0.5}, ridge=ridge).uses_group_part
    hard = NewUserModel({"group": 0.5, "ridge": 0.5}, ridge=ridge, membership="hard")
    assert not hard.uses_group_part
