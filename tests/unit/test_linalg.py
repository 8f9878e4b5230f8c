"""Contract of usergroups.linalg: the one row normaliser, pooling, block fusion and EASE solve.

Every former copy now re-exports or calls these; the tests pin the arithmetic and that the
old public names are the same objects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from usergroups import linalg
from usergroups.errors import ConfigError, DataError
from usergroups.linalg import (
    canonical_csr,
    ease_weights,
    fuse_blocks,
    mean_rows,
    pool_rows,
    unit_rows,
)

# ------------------------------------------------------------------------- unit_rows


def _reference_unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def test_unit_rows_gives_unit_rows_and_keeps_zero_rows() -> None:
    out = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], rtol=1e-6)


def test_unit_rows_returns_a_new_array_and_leaves_the_input_alone() -> None:
    x = np.array([[3.0, 4.0]], dtype=np.float32)
    out = unit_rows(x)
    assert out is not x
    assert x.tolist() == [[3.0, 4.0]]


def test_unit_rows_in_float64_matches_the_float64_reference_exactly() -> None:
    x = np.random.default_rng(0).normal(size=(50, 7))
    x[4] = 0.0
    out = unit_rows(x, dtype="float64")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, _reference_unit(x))


def test_unit_rows_is_blockwise_but_identical_to_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(1).normal(size=(103, 33)).astype(np.float32)
    whole = unit_rows(x)
    monkeypatch.setattr(linalg, "_BLOCK_ROWS", 10)
    np.testing.assert_array_equal(unit_rows(x), whole)
    np.testing.assert_array_equal(whole, _reference_unit(x))


def test_unit_rows_reads_a_1d_input_as_one_row_and_handles_empty_input() -> None:
    assert unit_rows([0.0, 2.0]).tolist() == [[0.0, 1.0]]
    assert unit_rows(np.zeros((0, 5))).shape == (0, 5)
    assert unit_rows(np.zeros((3, 0))).shape == (3, 0)


def test_unit_rows_rejects_an_unknown_precision() -> None:
    with pytest.raises(ConfigError, match="'float32', 'float64'"):
        unit_rows(np.ones((2, 2)), dtype="float16")  # type: ignore[call-overload]


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(1, 9)),
        elements=st.floats(-1e3, 1e3, allow_nan=False),
    )
)
def test_unit_rows_keeps_direction_and_has_norm_one_or_zero(x: np.ndarray) -> None:
    out = unit_rows(x, dtype="float64")
    norms = np.linalg.norm(out, axis=1)
    nonzero = np.linalg.norm(x, axis=1) > 0
    assert np.allclose(norms[nonzero], 1.0)
    assert np.all(out[~nonzero] == 0.0)
    # same direction: out * |x| == x
    assert np.allclose(out * np.linalg.norm(x, axis=1, keepdims=True), x, atol=1e-9)


def test_every_former_normaliser_is_unit_rows() -> None:
    from usergroups.alignment.head import _unit
    from usergroups.clustering import normalize_rows as exported
    from usergroups.clustering.base import normalize_rows
    from usergroups.fusion import l2_normalise
    from usergroups.fusion import pool_rows as fusion_pool_rows

    assert l2_normalise is unit_rows
    assert normalize_rows is unit_rows
    assert exported is unit_rows
    assert _unit is unit_rows
    assert fusion_pool_rows is pool_rows


def test_embedding_normaliser_works_in_place_with_the_same_numbers() -> None:
    from usergroups.embedding import l2_normalize_rows

    x = np.random.default_rng(2).normal(size=(20, 6)).astype(np.float32)
    x[3] = 0.0
    expected = unit_rows(x)
    out = l2_normalize_rows(x)
    assert out is x
    np.testing.assert_array_equal(x, expected)


def test_spark_batch_normaliser_is_unit_rows() -> None:
    from usergroups.spark.engine import _float_rows, _l2_batch

    x = np.random.default_rng(3).normal(size=(5, 4))
    out = _l2_batch(pd.Series(list(x)))
    np.testing.assert_array_equal(np.stack(list(out)), unit_rows(x))
    assert _float_rows(pd.Series([], dtype=object)).shape == (0, 0)


# ------------------------------------------------------------------------- pool_rows


def test_pool_rows_is_the_weighted_mean_per_group() -> None:
    groups = np.array([0, 0, 2, 2, 2])
    vectors = np.arange(10, dtype=np.float32).reshape(5, 2)
    weights = np.array([1.0, 3.0, 1.0, 1.0, 2.0])
    out = pool_rows(groups, vectors, 4, weights)
    assert out.shape == (4, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], (vectors[0] + 3 * vectors[1]) / 4)
    np.testing.assert_allclose(out[2], (vectors[2] + vectors[3] + 2 * vectors[4]) / 4)
    assert np.all(out[[1, 3]] == 0.0)


def test_mean_rows_is_pool_rows_through_a_membership_matrix() -> None:
    rng = np.random.default_rng(4)
    groups = rng.integers(0, 5, size=30)
    vectors = rng.normal(size=(30, 3)).astype(np.float32)
    ones = np.ones(30, dtype=np.float32)
    members = sp.csr_matrix((ones, (groups, np.arange(30))), shape=(6, 30))
    np.testing.assert_array_equal(mean_rows(members, vectors), pool_rows(groups, vectors, 6))
    assert np.all(mean_rows(members, vectors)[5] == 0.0)


def test_user_item_means_and_text_bags_pool_with_mean_rows() -> None:
    from usergroups.alignment.head import TextBags
    from usergroups.fusion.vectors import _row_mean

    assert _row_mean is mean_rows
    rng = np.random.default_rng(5)
    members = sp.csr_matrix((rng.random((8, 12)) < 0.3).astype(np.float32))
    vectors = rng.normal(size=(12, 4)).astype(np.float32)
    bags = TextBags(members, vectors)
    np.testing.assert_array_equal(bags.pooled(), unit_rows(mean_rows(members, vectors)))


# ------------------------------------------------------------------------- fuse_blocks


def _blocks(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(30, 6)).astype(np.float32), rng.normal(size=(30, 4)).astype(np.float32)


@pytest.mark.parametrize("w", [0.0, 0.25, 0.5, 1.0])
def test_fused_rows_are_unit_and_w_is_the_text_share_of_the_cosine(w: float) -> None:
    a, b = _blocks()
    fused = fuse_blocks(a, b, w)
    assert fused.shape == (30, 10) and fused.dtype == np.float32
    assert np.allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    ua, ub = unit_rows(a), unit_rows(b)
    expected = w * (ua @ ua.T) + (1.0 - w) * (ub @ ub.T)
    assert np.allclose(fused @ fused.T, expected, atol=1e-5)


@pytest.mark.parametrize("w", [0.0, 0.3, 1.0])
def test_a_row_missing_one_block_keeps_the_other_at_any_weight(w: float) -> None:
    a, b = _blocks(1)
    a[0] = 0.0  # behaviour only
    b[1] = 0.0  # text only
    a[2] = 0.0
    b[2] = 0.0  # nothing
    fused = fuse_blocks(a, b, w)
    np.testing.assert_array_equal(fused[0, :6], 0.0)
    np.testing.assert_allclose(fused[0, 6:], unit_rows(b[:1])[0])
    np.testing.assert_allclose(fused[1, :6], unit_rows(a[1:2])[0])
    np.testing.assert_array_equal(fused[1, 6:], 0.0)
    np.testing.assert_array_equal(fused[2], 0.0)


def test_without_behaviour_columns_the_text_block_is_returned_alone() -> None:
    a, _ = _blocks(2)
    fused = fuse_blocks(a, np.zeros((30, 0), dtype=np.float32), 0.3)
    np.testing.assert_array_equal(fused, unit_rows(a))


def test_user_vector_builder_fuses_with_fuse_blocks() -> None:
    from usergroups.fusion import UserVectorBuilder

    a, b = _blocks(3)
    builder = UserVectorBuilder(text_weight=0.3)
    np.testing.assert_array_equal(builder.fuse(a, b), fuse_blocks(a, b, 0.3))


# ------------------------------------------------------------------------- ease_weights


def _interactions(seed: int = 0, n_users: int = 40, n_items: int = 12) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(np.float32))


def test_ease_weights_solve_the_constrained_least_squares_problem() -> None:
    # independent of the closed form: column j minimises ||X_j - X b||² + l2 ||b||²
    # over b with b_j = 0, i.e. (G + l2 I)_{-j,-j} b_{-j} = G_{-j,j}
    x = _interactions()
    l2 = 3.0
    b = ease_weights(x, l2)
    g = (x.T @ x).toarray().astype(np.float64)
    n = g.shape[0]
    assert b.shape == (n, n) and b.dtype == np.float64
    assert np.all(np.diag(b) == 0.0)
    for j in range(n):
        rest = np.flatnonzero(np.arange(n) != j)
        lhs = g[np.ix_(rest, rest)] + l2 * np.eye(n - 1)
        np.testing.assert_allclose(lhs @ b[rest, j], g[rest, j], atol=1e-9)


def test_ease_weights_count_any_stored_value_as_one_interaction() -> None:
    x = _interactions(1)
    graded = x.copy()
    graded.data = np.arange(1, graded.nnz + 1, dtype=np.float32)
    np.testing.assert_array_equal(ease_weights(graded, 5.0), ease_weights(x, 5.0))


def test_ease_weights_reject_bad_input() -> None:
    with pytest.raises(ConfigError, match="l2 > 0"):
        ease_weights(_interactions(), 0.0)
    with pytest.raises(DataError, match="sparse"):
        ease_weights(np.ones((3, 3)), 1.0)  # type: ignore[arg-type]


def test_the_ease_baseline_and_the_pruned_ease_share_the_solve() -> None:
    from usergroups.evaluation import EASERecommender
    from usergroups.recommend.hybrid import PrunedEASE

    x = _interactions(2, n_users=60, n_items=15)
    b = ease_weights(x, 20.0)
    np.testing.assert_array_equal(EASERecommender(l2=20.0).fit(x).weights_, b)
    pruned = PrunedEASE(l2=20.0, keep=10**6).fit(x).weights_.toarray()
    np.testing.assert_array_equal(pruned, b.astype(np.float32))


# ------------------------------------------------------------------------- canonical_csr


def test_canonical_csr_sums_duplicates_drops_zeros_and_never_shares_memory() -> None:
    x = sp.coo_matrix(([1.0, 2.0, 0.0, 4.0], ([0, 0, 1, 1], [2, 2, 0, 1])), shape=(2, 3))
    out = canonical_csr(x.tocsr(), np.float32)
    assert out.dtype == np.float32 and out.has_canonical_format
    assert out.toarray().tolist() == [[0.0, 0.0, 3.0], [0.0, 4.0, 0.0]]
    assert out.nnz == 2
    source = sp.csr_matrix(np.eye(2, dtype=np.float32))
    copy = canonical_csr(source, np.float32)
    copy.data[:] = 5.0
    assert source.toarray().tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_csr_weighted_rows_equals_scipys_product_bit_for_bit(
    dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One gather for the new-user spread and the answer path's personal scores (issue 25):
    ragged rows, empty rows, negative weights, in blocks, the same bits as scipy."""
    from usergroups.linalg import csr_weighted_rows

    rng = np.random.default_rng(0)
    dense = sp.random(80, 60, density=0.2, random_state=1, dtype=dtype).toarray()
    dense[dense != 0] -= 0.4
    dense[3] = 0.0
    w = sp.csr_matrix(dense)
    picks = [rng.choice(80, size=k, replace=False) for k in (0, 1, 5, 17, 40)]
    picks.append(np.array([3]))
    weights = [rng.standard_normal(len(p)).astype(np.float32) for p in picks]
    monkeypatch.setattr(linalg, "GATHER_BLOCK_ENTRIES", 50)
    ours = csr_weighted_rows(w.indptr, w.indices, w.data, 60, picks, weights)
    # each row in the order of its picks, as the spread builds it (no sorting of indices)
    rows = [
        sp.csr_matrix((v, p, np.array([0, len(p)])), shape=(1, 80))
        for p, v in zip(picks, weights, strict=True)
    ]
    reference = np.vstack([(r @ w).toarray() for r in rows]).astype(np.float32)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, reference)
