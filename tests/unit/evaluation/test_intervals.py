"""Bootstrap intervals over test users (issue 24, item 3) and the reach of a carve."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from usergroups.errors import DataError
from usergroups.evaluation import PopularityRecommender, evaluate_scores, warm_split
from usergroups.evaluation.metrics import bootstrap_interval, cooccurrence_reach
from usergroups.evaluation.protocols import intervals_of
from usergroups.testing import make_planted


def test_interval_of_a_constant_is_the_constant() -> None:
    iv = bootstrap_interval(np.full(50, 0.25))
    assert (iv.mean, iv.low, iv.high, iv.se, iv.n) == (0.25, 0.25, 0.25, 0.0, 50)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_interval_holds_the_mean_and_narrows_with_more_users(seed: int) -> None:
    rng = np.random.default_rng(seed)
    small = rng.random(100)
    large = rng.random(10_000)
    a, b = bootstrap_interval(small, random_state=seed), bootstrap_interval(large)
    assert a.low < a.mean < a.high and b.low < b.mean < b.high
    assert (b.high - b.low) < (a.high - a.low) / 5  # width ~ 1/sqrt(n): 10x here
    # a 95 % interval of a mean is about ±1.96 standard errors
    assert a.high - a.low == pytest.approx(2 * 1.96 * small.std() / 10, rel=0.25)


def test_interval_is_reproducible_and_ignores_undefined_users() -> None:
    values = np.r_[np.linspace(0, 1, 30), np.nan, np.nan]
    first, again = bootstrap_interval(values), bootstrap_interval(values)
    assert first == again and first.n == 30
    assert first.mean == pytest.approx(0.5)
    assert np.isnan(bootstrap_interval([np.nan]).low)


def test_interval_rejects_bad_settings() -> None:
    with pytest.raises(DataError, match="confidence must be in"):
        bootstrap_interval([1.0, 0.0], confidence=95)
    with pytest.raises(DataError, match="n_resamples must be a positive integer"):
        bootstrap_interval([1.0, 0.0], n_resamples=0)


def test_per_user_values_average_to_the_reported_means() -> None:
    planted = make_planted(n_users=120, n_groups=3, random_state=2)
    split = warm_split(planted.dataset)
    pop = PopularityRecommender().fit(split.train)
    values: dict[str, Any] = {}
    result = evaluate_scores(
        lambda rows: pop.score(split.test_users[rows]), split, batch_size=17, per_user=values
    )
    assert len(values["NDCG@10"]) == split.n_test_users
    for name in ("NDCG@10", "HR@10", "Recall@20", "MAP@10", "MRR"):
        assert float(np.mean(values[name])) == pytest.approx(result[name])
    intervals = intervals_of({"Pop": values["NDCG@10"]})
    iv = intervals["Pop"]["NDCG@10"]
    assert iv["low"] <= result["NDCG@10"] <= iv["high"]


def test_cooccurrence_reach_counts_items_reachable_through_a_co_user() -> None:
    # user 0 holds out item 1, which user 1 consumed beside item 0 (user 0's own): reachable;
    # user 2 holds out item 3, which nobody consumed with item 2: not reachable
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    held = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]))
    assert cooccurrence_reach(train, held) == 0.5
    assert cooccurrence_reach(train, sp.csr_matrix(train.shape)) == 0.0


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), m=st.integers(1, 30))
def test_cooccurrence_reach_equals_the_brute_force_walk_issue_25(seed: int, n: int, m: int) -> None:
    """Issue 25: reach is walked from the held-out items (one start per user, not a whole
    history); it is still the share of users with a co-user linking a held-out item to one
    of their own items."""
    rng = np.random.default_rng(seed)
    train = (rng.random((n, m)) < rng.random() * 0.3).astype(np.float64)
    held = ((rng.random((n, m)) < 0.08) & (train == 0)).astype(np.float64)
    users = np.flatnonzero(held.sum(axis=1) > 0)
    together = (train.T @ train) > 0  # items some user has both of
    reached = [bool(together[np.ix_(held[u] > 0, train[u] > 0)].any()) for u in users]
    expected = float(np.mean(reached)) if len(users) else 0.0
    assert cooccurrence_reach(sp.csr_matrix(train), sp.csr_matrix(held)) == expected
