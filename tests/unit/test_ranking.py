"""Contract of usergroups.ranking: the one NDCG, used for validation and for the report.

``ndcg_at_k`` (early stopping, every choice made on validation) and
``evaluation.metrics.ndcg`` (the reported figure) are checked against a brute-force
per-row reference, and against each other.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from usergroups.evaluation import metrics
from usergroups.ranking import ndcg_at_k, ndcg_of_lists, top_items, topk


def _reference_row(scores: np.ndarray, targets: set[int], seen: set[int], k: int) -> float:
    """NDCG@k of one row, the slow way: sort, skip seen items, sum discounts."""
    ranked = sorted(
        (i for i in range(len(scores)) if i not in seen and scores[i] != -np.inf),
        key=lambda i: (-scores[i], i),
    )[:k]
    dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(ranked) if i in targets)
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(targets))))
    return dcg / ideal


def _reference_mean(
    scores: np.ndarray, targets: sp.csr_matrix, seen: sp.csr_matrix | None, k: int
) -> float:
    values = []
    for u in range(scores.shape[0]):
        t = set(targets[u].indices.tolist())
        if not t:
            continue
        s = set() if seen is None else set(seen[u].indices.tolist())
        values.append(_reference_row(scores[u], t, s, k))
    return float(np.mean(values)) if values else 0.0


def _random_case(
    seed: int, n_users: int = 60, n_items: int = 40
) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_users, n_items))
    seen = sp.random(n_users, n_items, density=0.15, random_state=seed, format="csr")
    targets = sp.random(n_users, n_items, density=0.05, random_state=seed + 1, format="csr")
    targets = sp.csr_matrix(targets - targets.multiply(seen > 0))  # a target is never seen
    targets.eliminate_zeros()
    return scores, targets, seen


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 10, 100])
def test_ndcg_at_k_matches_a_brute_force_reference_on_random_scores(seed: int, k: int) -> None:
    scores, targets, seen = _random_case(seed)
    assert ndcg_at_k(scores, targets, seen, k) == pytest.approx(
        _reference_mean(scores, targets, seen, k), abs=1e-12
    )
    assert ndcg_at_k(scores, targets, None, k) == pytest.approx(
        _reference_mean(scores, targets, None, k), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(3))
def test_metrics_ndcg_matches_the_reference_row_by_row(seed: int) -> None:
    scores, targets, seen = _random_case(seed)
    masked = scores.copy()
    masked[seen.nonzero()] = -np.inf
    per_row = metrics.ndcg(masked, targets, 10)
    for u in range(scores.shape[0]):
        t = set(targets[u].indices.tolist())
        if not t:
            assert np.isnan(per_row[u])
            continue
        expected = _reference_row(scores[u], t, set(seen[u].indices.tolist()), 10)
        assert per_row[u] == pytest.approx(expected, abs=1e-12)


def test_validation_ndcg_equals_the_reported_ndcg_even_with_ties() -> None:
    # integer scores (popularity counts) tie a lot: both must break ties the same way
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, size=(80, 30)).astype(np.float64)
    seen = sp.random(80, 30, density=0.1, random_state=1, format="csr")
    targets = sp.random(80, 30, density=0.08, random_state=2, format="csr")
    masked = scores.copy()
    masked[seen.nonzero()] = -np.inf
    reported = float(np.nanmean(metrics.ndcg(masked, targets, 10)))
    assert ndcg_at_k(scores, targets, seen, 10) == reported
    assert ndcg_at_k(scores, targets, seen, 10) == pytest.approx(
        _reference_mean(scores, targets, seen, 10), abs=1e-12
    )


def test_ndcg_at_k_by_hand() -> None:
    scores = np.array([[0.9, 0.1, 0.5, 0.3]])
    targets = sp.csr_matrix(np.array([[0, 0, 1, 1]]))
    # hit at rank 2 of 2 targets: (1/log2 3) / (1 + 1/log2 3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(scores, targets, None, k=2) == pytest.approx(expected)
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0]]))
    assert ndcg_at_k(scores, targets, seen, k=2) == pytest.approx(1.0)


def test_rows_without_a_target_are_left_out() -> None:
    scores = np.array([[1.0, 0.0], [1.0, 0.0]])
    targets = sp.csr_matrix(np.array([[1, 0], [0, 0]]))
    assert ndcg_at_k(scores, targets, None, k=1) == 1.0
    assert ndcg_at_k(scores, sp.csr_matrix((2, 2)), None, k=1) == 0.0


def test_a_nan_score_ranks_like_a_masked_item() -> None:
    scores = np.array([[np.nan, 0.5, 0.1]])
    targets = sp.csr_matrix(np.array([[0, 1, 0]]))
    assert ndcg_at_k(scores, targets, None, k=1) == 1.0


def test_seen_targets_never_count_as_hits() -> None:
    # fewer unseen items than k: the seen target is masked, not ranked last
    scores = np.array([[0.9, 0.5, 0.1]])
    targets = sp.csr_matrix(np.array([[1, 0, 1]]))
    seen = sp.csr_matrix(np.array([[1, 1, 0]]))
    assert ndcg_at_k(scores, targets, seen, k=3) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_top_items_breaks_ties_towards_the_lower_index_and_marks_masked_items() -> None:
    assert topk(np.array([[1.0, 3.0, 3.0, 2.0]]), 3).tolist() == [[1, 2, 3]]
    assert top_items(np.array([[0.5, -np.inf, 2.0]]), 4).tolist() == [[2, 0, -1, -1]]


def test_graded_gains_use_the_same_lists() -> None:
    idx = np.array([[2, 0, 1]])
    rel = sp.csr_matrix(np.array([[1.0, 0.0, 3.0]]))
    gains = rel.data.copy()
    out = ndcg_of_lists(idx, rel, 3, gains)
    assert out[0] == pytest.approx(1.0)  # the best grade first, then the next: ideal
    reversed_ = ndcg_of_lists(np.array([[0, 2, 1]]), rel, 3, gains)
    expected = (1.0 + 3.0 / math.log2(3)) / (3.0 + 1.0 / math.log2(3))
    assert reversed_[0] == pytest.approx(expected)


def test_the_old_names_are_the_one_implementation() -> None:
    from usergroups.alignment.head import ndcg_at_k as head_ndcg

    assert head_ndcg is ndcg_at_k
    assert metrics.topk is topk


@settings(max_examples=80, deadline=None)
@given(
    n_items=st.integers(1, 25),
    k=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    integer_scores=st.booleans(),
)
def test_ndcg_is_within_0_and_1_and_1_when_the_target_is_ranked_first(
    n_items: int, k: int, seed: int, integer_scores: bool
) -> None:
    rng = np.random.default_rng(seed)
    n_users = 6
    scores = rng.normal(size=(n_users, n_items))
    if integer_scores:
        scores = np.round(scores)
    targets = sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(np.float64))
    value = ndcg_at_k(scores, targets, None, k)
    assert 0.0 <= value <= 1.0
    per_row = metrics.ndcg(scores, targets, k)
    assert np.all((per_row[~np.isnan(per_row)] >= 0.0) & (per_row[~np.isnan(per_row)] <= 1.0))
    # one target per row, scored strictly above everything else: NDCG is exactly 1
    target = rng.integers(0, n_items, size=n_users)
    one = sp.csr_matrix((np.ones(n_users), (np.arange(n_users), target)), shape=(n_users, n_items))
    best = scores.copy()
    best[np.arange(n_users), target] = scores.max() + 1.0
    assert ndcg_at_k(best, one, None, k) == 1.0
    assert np.all(metrics.ndcg(best, one, k) == 1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, -np.inf]), min_size=6, max_size=6),
        min_size=1,
        max_size=5,
    ),
    st.integers(0, 8),
)
def test_top_n_is_the_stable_sort_with_excluded_items_as_minus_one(
    rows: list[list[float]], n: int
) -> None:
    """Issue 21: the one top-n (``recommend.top_n`` re-exports it) keeps the old contract:
    ties to the lower index, ``-inf`` back as index -1, lists ``min(n, n_items)`` long."""
    from usergroups.ranking import top_n
    from usergroups.recommend import top_n as exported

    scores = np.array(rows, dtype=np.float32)
    idx, values = top_n(scores, n)
    width = min(n, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :width]
    want = np.take_along_axis(scores, order, axis=1)
    np.testing.assert_array_equal(values, want)
    np.testing.assert_array_equal(idx, np.where(np.isneginf(want), -1, order))
    assert values.dtype == np.float32 and idx.dtype == np.int64
    assert exported is top_n


def test_top_n_ranks_nan_like_an_excluded_item() -> None:
    from usergroups.ranking import top_n

    idx, values = top_n(np.array([np.nan, 1.0, 3.0]), 3)
    assert idx.tolist() == [[2, 1, -1]] and values[0, 2] == -np.inf


def test_ndcg_at_k_is_the_mean_of_ndcg_rows() -> None:
    from usergroups.ranking import ndcg_rows

    rng = np.random.default_rng(4)
    scores = rng.random((30, 12))
    targets = sp.csr_matrix(rng.random((30, 12)) < 0.1)
    seen = sp.csr_matrix(rng.random((30, 12)) < 0.2)
    rows = ndcg_rows(scores, targets, seen, k=5)
    assert len(rows) == int((np.diff(targets.indptr) > 0).sum())
    assert ndcg_at_k(scores, targets, seen, k=5) == float(np.mean(rows))


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 25),
    m=st.integers(1, 30),
    k=st.integers(1, 12),
    dtype=st.sampled_from([np.float32, np.float64, np.int64]),
    with_seen=st.booleans(),
)
def test_ndcg_rows_by_places_equals_ranking_every_item_issue_25(
    seed: int, n: int, m: int, k: int, dtype: type, with_seen: bool
) -> None:
    """Issue 25: ndcg_rows counts the items ahead of each target instead of sorting the
    rows; on scores with many ties, NaN and -inf, several targets and seen items it gives
    the lists' NDCG (``top_items`` + ``ndcg_of_lists`` on masked scores)."""
    from usergroups.ranking import check_relevant, ndcg_rows

    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, (n, m)).astype(dtype)
    if dtype is not np.int64:
        scores[rng.random((n, m)) < 0.1] = np.nan
        scores[rng.random((n, m)) < 0.1] = -np.inf
    targets = sp.csr_matrix((rng.random((n, m)) < 0.15).astype(np.float64))
    seen = sp.csr_matrix((rng.random((n, m)) < 0.2).astype(np.float64)) if with_seen else None
    masked = np.array(scores, dtype=np.float64)
    masked[np.isnan(masked)] = -np.inf
    if seen is not None:
        masked[seen.nonzero()] = -np.inf
    rel = check_relevant(targets, n, allow_grades=False)
    has = np.diff(rel.indptr) > 0
    expected = ndcg_of_lists(top_items(masked[has], k), rel[has], k)
    np.testing.assert_allclose(ndcg_rows(scores, targets, seen, k=k), expected, rtol=0, atol=1e-12)
