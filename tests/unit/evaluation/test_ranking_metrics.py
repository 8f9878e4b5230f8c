"""Ranking metrics: hand-computed examples, properties, and agreement with trec_eval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from usergroups.errors import DataError
from usergroups.evaluation import (
    average_popularity,
    average_precision,
    catalogue_coverage,
    hit_rate,
    intra_list_diversity,
    ndcg,
    precision,
    recall,
    reciprocal_rank,
    topk,
)

ACCURACY = {
    "hit_rate": hit_rate,
    "precision": precision,
    "recall": recall,
    "ndcg": ndcg,
    "average_precision": average_precision,
}

SCORES = np.array([[0.9, 0.1, 0.5, 0.3]])
RELEVANT = sp.csr_matrix(np.array([[0, 0, 1, 1]]))


def _csr(rows: list[list[float]]) -> sp.csr_matrix:
    return sp.csr_matrix(np.array(rows, dtype=np.float64))


# -- topk ----------------------------------------------------------------------


def test_topk_orders_best_first() -> None:
    assert topk(SCORES, 3).tolist() == [[0, 2, 3]]


def test_topk_breaks_ties_towards_lower_index() -> None:
    assert topk(np.array([[1.0, 3.0, 3.0, 2.0]]), 3).tolist() == [[1, 2, 3]]
    assert topk(np.zeros((2, 5)), 3).tolist() == [[0, 1, 2], [0, 1, 2]]


def test_topk_keeps_lowest_indices_of_items_tied_at_the_cut_off() -> None:
    scores = np.array([[1.0, 5.0, 1.0, 1.0, 1.0, 0.0, 1.0]])
    assert topk(scores, 3).tolist() == [[1, 0, 2]]


def test_topk_clips_k_to_the_catalogue_and_puts_masked_items_last() -> None:
    scores = np.array([[-np.inf, 2.0, 1.0]])
    assert topk(scores, 10).tolist() == [[1, 2, 0]]


def test_topk_rejects_nan_and_bad_k() -> None:
    with pytest.raises(DataError, match="NaN"):
        topk(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(DataError, match="positive integer"):
        topk(SCORES, 0)
    with pytest.raises(DataError, match="float"):
        topk(np.array([[1, 2]]), 1)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.sampled_from([-np.inf, 0.0, 0.5, 1.0, 2.0, 3.5]),
    ),
    st.integers(1, 15),
)
def test_topk_equals_a_stable_full_sort(scores: np.ndarray, k: int) -> None:
    expected = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, scores.shape[1])]
    np.testing.assert_array_equal(topk(scores, k), expected)


# -- hand-computed examples ----------------------------------------------------


def test_hand_computed_binary_example() -> None:
    # top-2 is [0, 2]: one hit, at rank 2, out of 2 relevant items
    assert hit_rate(SCORES, RELEVANT, 2)[0] == 1.0
    assert precision(SCORES, RELEVANT, 2)[0] == 0.5
    assert recall(SCORES, RELEVANT, 2)[0] == 0.5
    dcg = 1 / math.log2(3)
    assert ndcg(SCORES, RELEVANT, 2)[0] == pytest.approx(dcg / (1 + dcg), abs=1e-12)
    assert average_precision(SCORES, RELEVANT, 2)[0] == pytest.approx(0.5 / 2)
    assert reciprocal_rank(SCORES, RELEVANT)[0] == 0.5
    assert hit_rate(SCORES, RELEVANT, 1)[0] == 0.0


def test_score_matrix_and_index_matrix_give_the_same_values() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random((7, 20))
    relevant = sp.csr_matrix(rng.random((7, 20)) < 0.3)
    ranked = topk(scores, 10)
    for name, metric in ACCURACY.items():
        np.testing.assert_allclose(
            metric(scores, relevant, 10), metric(ranked, relevant, 10), err_msg=name
        )


def test_graded_ndcg_with_linear_and_exponential_gains() -> None:
    scores = np.array([[0.1, 0.5, 0.9]])  # ranking: 2, 1, 0
    grades = _csr([[3, 0, 1]])
    idcg_linear = 3 + 1 / math.log2(3)
    assert ndcg(scores, grades, 3, gains="linear")[0] == pytest.approx((1 + 3 / 2) / idcg_linear)
    idcg_exp = 7 + 1 / math.log2(3)
    assert ndcg(scores, grades, 3, gains="exponential")[0] == pytest.approx((1 + 7 / 2) / idcg_exp)
    # binary gains ignore the grades: two hits at ranks 1 and 3 of two relevant items
    assert ndcg(scores, grades, 3)[0] == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)))


def test_ideal_dcg_uses_only_min_k_and_number_of_relevant_items() -> None:
    # 5 relevant items, the top-2 both relevant: a perfect list at k=2
    scores = np.arange(10, 0, -1, dtype=np.float64)[None, :]
    relevant = _csr([[1, 1, 0, 0, 1, 1, 1, 0, 0, 0]])
    assert ndcg(scores, relevant, 2)[0] == pytest.approx(1.0)
    # one relevant item at rank 1 with k=10: also perfect, not divided by a 10-item ideal
    assert ndcg(scores, _csr([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]]), 10)[0] == pytest.approx(1.0)


def test_recall_is_standard_not_truncated() -> None:
    scores = np.arange(10, 0, -1, dtype=np.float64)[None, :]
    relevant = _csr([[1, 1, 0, 0, 1, 1, 1, 0, 0, 0]])
    assert recall(scores, relevant, 2)[0] == pytest.approx(2 / 5)
    assert precision(scores, relevant, 2)[0] == 1.0


def test_map_at_k_divides_by_min_k_and_relevant() -> None:
    scores = np.arange(6, 0, -1, dtype=np.float64)[None, :]
    relevant = _csr([[1, 1, 0, 1, 1, 1]])  # 5 relevant
    assert average_precision(scores, relevant, 2)[0] == pytest.approx(1.0)
    # hits at ranks 1, 2, 4 with k = 4: (1 + 1 + 3/4) / min(4, 5)
    assert average_precision(scores, relevant, 4)[0] == pytest.approx(2.75 / 4)
    # fewer relevant than k: the missing hit counts
    one = _csr([[0, 1, 0, 0, 0, 0]])
    assert average_precision(scores, one, 4)[0] == pytest.approx(0.5)


def test_precision_always_divides_by_k() -> None:
    short = np.array([[0, -1, -1]])  # a list of one item, padded
    assert precision(short, _csr([[1, 0, 0]]), 3)[0] == pytest.approx(1 / 3)


def test_full_ranking_mrr_versus_mrr_at_k() -> None:
    scores = np.arange(20, 0, -1, dtype=np.float64)[None, :]
    relevant = sp.csr_matrix(([1.0], ([0], [14])), shape=(1, 20))
    assert reciprocal_rank(scores, relevant)[0] == pytest.approx(1 / 15)
    assert reciprocal_rank(scores, relevant, k=10)[0] == 0.0
    assert reciprocal_rank(scores, relevant, k=15)[0] == pytest.approx(1 / 15)


def test_full_ranking_mrr_breaks_ties_by_index_and_skips_masked_items() -> None:
    scores = np.array([[-np.inf, 1.0, 1.0, 1.0]])
    assert reciprocal_rank(scores, _csr([[0, 0, 0, 1]]))[0] == pytest.approx(1 / 3)
    # the best of several relevant items counts
    assert reciprocal_rank(scores, _csr([[0, 0, 1, 1]]))[0] == pytest.approx(1 / 2)
    # a relevant item that is masked is never reached
    assert reciprocal_rank(scores, _csr([[1, 0, 0, 0]]))[0] == 0.0


def test_masked_items_are_never_hits() -> None:
    scores = np.array([[-np.inf, -np.inf, 1.0]])
    relevant = _csr([[1, 0, 0]])
    assert hit_rate(scores, relevant, 3)[0] == 0.0
    assert catalogue_coverage(scores, 3, k=3) == pytest.approx(1 / 3)


def test_users_without_relevant_items_are_nan() -> None:
    relevant = _csr([[0, 0, 0, 0]])
    for metric in ACCURACY.values():
        assert np.isnan(metric(SCORES, relevant, 2)[0])
    assert np.isnan(reciprocal_rank(SCORES, relevant)[0])


def test_inputs_are_validated() -> None:
    with pytest.raises(DataError, match="rows"):
        ndcg(SCORES, _csr([[1, 0, 0, 0], [1, 0, 0, 0]]), 2)
    with pytest.raises(DataError, match="columns"):
        ndcg(SCORES, _csr([[1, 0, 0]]), 2)
    with pytest.raises(DataError, match="sparse"):
        ndcg(SCORES, np.array([[1, 0, 0, 0]]), 2)
    with pytest.raises(DataError, match="one of"):
        ndcg(SCORES, RELEVANT, 2, gains="log")
    with pytest.raises(DataError, match=r"\[0, 4\)"):
        ndcg(np.array([[7, 0]]), RELEVANT, 2)
    with pytest.raises(DataError, match=">= 0"):
        ndcg(SCORES, _csr([[-1, 0, 0, 0]]), 2, gains="linear")


# -- beyond accuracy -----------------------------------------------------------


def test_catalogue_coverage() -> None:
    assert catalogue_coverage(np.array([[0, 1], [1, 2]]), 4) == 0.75
    assert catalogue_coverage(np.array([[0, -1]]), 4) == 0.25


def test_average_popularity() -> None:
    pop = np.array([0.5, 0.1, 0.2, 0.0])
    values = average_popularity(np.array([[0, 1], [3, -1]]), pop)
    np.testing.assert_allclose(values, [0.3, 0.0])


def test_intra_list_diversity() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    # items 0 and 1 are orthogonal; 0 and 2 point the same way
    np.testing.assert_allclose(
        intra_list_diversity(np.array([[0, 1], [0, 2]]), vectors), [1.0, 0.0], atol=1e-12
    )
    three = intra_list_diversity(np.array([[0, 1, 2]]), vectors)[0]
    assert three == pytest.approx(1 - (0 + 1 + 0) / 3)
    assert np.isnan(intra_list_diversity(np.array([[0, -1]]), vectors)[0])


# -- properties ----------------------------------------------------------------


@st.composite
def ranking_problems(draw: st.DrawFn) -> tuple[np.ndarray, sp.csr_matrix, int]:
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 12))
    scores = draw(
        hnp.arrays(np.float64, (n_users, n_items), elements=st.sampled_from([0.0, 1.0, 2.0, 3.0]))
    )
    rel = draw(hnp.arrays(np.int64, (n_users, n_items), elements=st.integers(0, 3)))
    rel[:, draw(st.integers(0, n_items - 1))] = draw(st.integers(1, 3))  # >= 1 relevant each
    return scores, sp.csr_matrix(rel.astype(np.float64)), draw(st.integers(1, 15))


@settings(max_examples=50, deadline=None)
@given(ranking_problems())
def test_every_metric_lies_in_unit_interval(problem: tuple[np.ndarray, sp.csr_matrix, int]) -> None:
    scores, relevant, k = problem
    values = [metric(scores, relevant, k) for metric in ACCURACY.values()]
    values += [ndcg(scores, relevant, k, gains=g) for g in ("linear", "exponential")]
    values += [reciprocal_rank(scores, relevant), reciprocal_rank(scores, relevant, k)]
    for v in values:
        assert np.all((v >= 0) & (v <= 1 + 1e-12))
    assert 0 <= catalogue_coverage(scores, scores.shape[1], k) <= 1


@settings(max_examples=50, deadline=None)
@given(ranking_problems())
def test_perfect_ranking_scores_one(problem: tuple[np.ndarray, sp.csr_matrix, int]) -> None:
    _, relevant, k = problem
    grades = relevant.toarray()
    perfect = grades.astype(np.float64)  # relevant first, better grades first
    n_rel = np.diff(relevant.indptr)
    for metric in (hit_rate, average_precision):
        np.testing.assert_allclose(metric(perfect, relevant, k), 1.0)
    for gains in ("binary", "linear", "exponential"):
        np.testing.assert_allclose(ndcg(perfect, relevant, k, gains=gains), 1.0)
    np.testing.assert_allclose(reciprocal_rank(perfect, relevant), 1.0)
    np.testing.assert_allclose(recall(perfect, relevant, k)[n_rel <= k], 1.0)
    np.testing.assert_allclose(precision(perfect, relevant, k)[n_rel >= k], 1.0)


@settings(max_examples=40, deadline=None)
@given(ranking_problems())
def test_metrics_do_not_depend_on_user_order(
    problem: tuple[np.ndarray, sp.csr_matrix, int],
) -> None:
    scores, relevant, k = problem
    perm = np.random.default_rng(scores.shape[0] * 7 + k).permutation(scores.shape[0])
    for metric in ACCURACY.values():
        np.testing.assert_allclose(
            metric(scores[perm], relevant[perm], k), metric(scores, relevant, k)[perm]
        )
    np.testing.assert_allclose(
        reciprocal_rank(scores[perm], relevant[perm]), reciprocal_rank(scores, relevant)[perm]
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(2, 12), st.integers(1, 12), st.integers(0, 2**31))
def test_metrics_do_not_depend_on_item_order_without_ties(
    n_users: int, n_items: int, k: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.permuted(np.tile(np.arange(n_items, dtype=np.float64), (n_users, 1)), axis=1)
    rel = rng.random((n_users, n_items)) < 0.4
    rel[:, 0] = True
    relevant = sp.csr_matrix(rel)
    perm = rng.permutation(n_items)
    for metric in ACCURACY.values():
        np.testing.assert_allclose(
            metric(scores[:, perm], relevant[:, perm], k), metric(scores, relevant, k)
        )
    np.testing.assert_allclose(
        reciprocal_rank(scores[:, perm], relevant[:, perm]), reciprocal_rank(scores, relevant)
    )


# -- agreement with an independent implementation (trec_eval) -------------------


def _trec_eval(
    scores: np.ndarray, grades: sp.csr_matrix, ks: tuple[int, ...]
) -> dict[str, dict[str, float]]:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels = {
        f"u{u}": {f"i{i}": int(grades[u, i]) for i in grades[u].indices}
        for u in range(scores.shape[0])
    }
    run = {
        f"u{u}": {f"i{i}": float(scores[u, i]) for i in np.flatnonzero(np.isfinite(scores[u]))}
        for u in range(scores.shape[0])
    }
    cut = ",".join(map(str, ks))
    measures = {f"ndcg_cut.{cut}", f"map_cut.{cut}", f"P.{cut}", f"recall.{cut}", "recip_rank"}
    measures |= {f"success.{cut}"}
    result: dict[str, dict[str, float]] = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(
        run
    )
    return result


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_trec_eval_on_random_inputs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items, ks = 40, 60, (1, 5, 10, 20)
    scores = rng.random((n_users, n_items))  # continuous: no ties, whose order libraries differ on
    scores[rng.random((n_users, n_items)) < 0.2] = -np.inf  # "training items", masked
    grades = np.zeros((n_users, n_items))
    for u in range(n_users):
        allowed = np.flatnonzero(np.isfinite(scores[u]))
        chosen = rng.choice(allowed, size=rng.integers(1, 16), replace=False)
        grades[u, chosen] = rng.integers(1, 5, size=len(chosen))
    relevant = sp.csr_matrix(grades)
    expected = _trec_eval(scores, relevant, ks)
    users = [f"u{u}" for u in range(n_users)]

    def reference(measure: str) -> np.ndarray:
        return np.array([expected[u][measure] for u in users])

    n_rel = np.diff(relevant.indptr)
    for k in ks:
        np.testing.assert_allclose(
            ndcg(scores, relevant, k, gains="linear"), reference(f"ndcg_cut_{k}"), atol=1e-9
        )
        np.testing.assert_allclose(precision(scores, relevant, k), reference(f"P_{k}"), atol=1e-9)
        np.testing.assert_allclose(recall(scores, relevant, k), reference(f"recall_{k}"), atol=1e-9)
        np.testing.assert_allclose(
            hit_rate(scores, relevant, k), reference(f"success_{k}"), atol=1e-9
        )
        # trec_eval divides AP by the number of relevant items; we divide by min(k, R)
        np.testing.assert_allclose(
            average_precision(scores, relevant, k) * np.minimum(n_rel, k) / n_rel,
            reference(f"map_cut_{k}"),
            atol=1e-9,
        )
    np.testing.assert_allclose(
        reciprocal_rank(scores, relevant), reference("recip_rank"), atol=1e-9
    )


@pytest.mark.parametrize("seed", range(3))
def test_binary_ndcg_agrees_with_trec_eval(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    scores = rng.random((30, 50))
    rel = rng.random((30, 50)) < 0.15
    rel[:, 0] = True
    relevant = sp.csr_matrix(rel, dtype=np.float64)
    expected = _trec_eval(scores, relevant, (10,))
    reference = np.array([expected[f"u{u}"]["ndcg_cut_10"] for u in range(30)])
    np.testing.assert_allclose(ndcg(scores, relevant, 10), reference, atol=1e-9)
