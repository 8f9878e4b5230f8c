"""Splits: the warm, cold, random and temporal protocols of DESIGN.md."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usergroups.data import Dataset, build_dataset
from usergroups.errors import ConfigError, DataError
from usergroups.evaluation import cold_split, random_split, temporal_split, warm_split


def _log(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def _targets(split_dataset: Dataset, split: object) -> dict[str, list[str]]:
    ds = split_dataset
    return {
        ds.user_ids.ids[u]: ds.item_ids.ids[t].tolist()
        for u, t in zip(split.test_users, split.targets(), strict=True)  # type: ignore[attr-defined]
    }


def _reviews(n_users: int = 30, n_items: int = 12, seed: int = 0) -> Dataset:
    """Users with 1–6 reviews each, every review an interaction with a text."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=1 + u % 6, replace=False)
        for j, i in enumerate(items):
            rows.append((f"u{u:02d}", f"i{i:02d}", float(100 + j), f"review {j} by u{u:02d}"))
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "text"])
    return build_dataset(df[["user_id", "item_id", "timestamp"]], df)


# -- warm ------------------------------------------------------------------------


def test_warm_split_holds_out_the_last_interaction_by_time() -> None:
    ds = build_dataset(_log([("a", "x", 3), ("a", "y", 1), ("a", "z", 2), ("a", "w", 0)]))
    split = warm_split(ds)
    assert _targets(ds, split) == {"a": ["x"]}
    assert split.train.sum() == 3
    assert split.protocol == "warm"


def test_warm_split_breaks_time_ties_by_file_order() -> None:
    ds = build_dataset(_log([("a", "y", 5), ("a", "x", 5), ("a", "z", 1), ("b", "x", 2)] * 1))
    assert _targets(ds, warm_split(ds)) == {"a": ["x"]}
    ds = build_dataset(_log([("a", "x", 5), ("a", "y", 5), ("a", "z", 1)]))
    assert _targets(ds, warm_split(ds)) == {"a": ["y"]}


def test_warm_split_orders_missing_timestamps_first_then_by_file_order() -> None:
    ds = build_dataset(_log([("a", "x", np.nan), ("a", "y", 1), ("a", "z", np.nan)]))
    assert _targets(ds, warm_split(ds)) == {"a": ["y"]}
    ds = build_dataset(_log([("a", "x", np.nan), ("a", "y", np.nan), ("a", "z", np.nan)]))
    assert _targets(ds, warm_split(ds)) == {"a": ["z"]}


def test_warm_split_evaluates_users_with_three_interactions_and_keeps_others_in_training() -> None:
    ds = build_dataset(
        _log([("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 1), ("b", "q", 2)])
    )
    split = warm_split(ds)
    assert ds.user_ids.ids[split.test_users].tolist() == ["a"]
    b = ds.user_ids.index(["b"])[0]
    assert split.train[b].nnz == 2
    assert split.test[b].nnz == 0


def test_warm_split_keeps_items_only_seen_in_test_in_the_catalogue() -> None:
    ds = build_dataset(_log([("a", "x", 1), ("a", "y", 2), ("a", "new", 3)]))
    split = warm_split(ds)
    new = ds.item_ids.index(["new"])[0]
    assert split.n_items == ds.n_items == 3
    assert split.train[:, new].nnz == 0
    assert _targets(ds, split) == {"a": ["new"]}


def test_warm_split_sees_duplicates_collapsed_to_the_latest() -> None:
    # (a, x) at t=1 and again at t=9: the latest copy makes x the last item
    log = _log([("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("a", "x", 9)])
    ds = build_dataset(log, duplicates="latest")
    assert _targets(ds, warm_split(ds)) == {"a": ["x"]}
    assert warm_split(ds).train.sum() == 2


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 8), st.integers(0, 4)), min_size=3, max_size=40
    )
)
def test_warm_split_partitions_the_interactions(rows: list[tuple[int, int, int]]) -> None:
    log = _log([(f"u{u}", f"i{i}", float(t)) for u, i, t in rows])
    ds = build_dataset(log)
    if ds.interactions.groupby("user_id").size().max() < 3:
        with pytest.raises(DataError, match="no test users"):
            warm_split(ds)
        return
    split = warm_split(ds)
    full = ds.interaction_matrix()
    assert (split.train.multiply(split.test)).nnz == 0
    assert abs(split.train + split.test - full).sum() == 0
    assert np.all(np.diff(split.test[split.test_users].indptr) == 1)
    assert (split.exclude != split.train).nnz == 0


def test_warm_split_rejects_min_interactions_below_two() -> None:
    ds = build_dataset(_log([("a", "x", 1), ("a", "y", 2)]))
    with pytest.raises(ConfigError, match=">= 2"):
        warm_split(ds, min_interactions=1)


def test_train_dataset_drops_texts_about_test_items_and_keeps_vocabulary_ids() -> None:
    log = _log([("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 1)])
    texts = pd.DataFrame(
        {"user_id": ["a", "a", "a"], "item_id": ["x", "z", None], "text": ["on x", "on z", "bio"]}
    )
    split = warm_split(build_dataset(log, texts))
    train = split.train_dataset()
    assert sorted(train.texts["text"]) == ["bio", "on x"]
    assert len(train.interactions) == 3
    assert "z" not in train.item_ids
    assert sorted(split.train_dataset(drop_test_texts=False).texts["text"]) == [
        "bio",
        "on x",
        "on z",
    ]


def test_align_item_scores_maps_columns_and_masks_unknown_items() -> None:
    ds = build_dataset(_log([("a", "x", 1), ("a", "y", 2), ("a", "z", 3)]))
    split = warm_split(ds)
    out = split.align_item_scores(np.array([[2.0, 1.0]]), ["z", "x"])
    assert out.tolist() == [[1.0, -np.inf, 2.0]]
    with pytest.raises(DataError, match="shape"):
        split.align_item_scores(np.array([[2.0]]), ["z", "x"])


# -- cold ------------------------------------------------------------------------


def test_cold_split_holds_out_a_seeded_fifth_of_eligible_users() -> None:
    ds = _reviews()
    split = cold_split(ds)
    eligible = split.params["n_eligible_users"]
    assert split.n_test_users == round(0.2 * eligible)
    again = cold_split(ds)
    np.testing.assert_array_equal(split.test_users, again.test_users)
    other = cold_split(ds, random_state=1)
    assert not np.array_equal(split.test_users, other.test_users)


def test_cold_split_users_are_known_only_by_their_first_review() -> None:
    ds = _reviews()
    split = cold_split(ds)
    assert split.query_texts is not None
    for u, query, targets in zip(split.test_users, split.query_texts, split.targets(), strict=True):
        user = ds.user_ids.ids[u]
        reviews = ds.texts[ds.texts["user_id"] == user].sort_values("timestamp")
        assert query == reviews["text"].iloc[0]
        assert len(reviews) >= 2
        first_item = reviews["item_id"].iloc[0]
        expected = sorted(set(reviews["item_id"]) - {first_item})
        assert sorted(ds.item_ids.ids[targets]) == expected
        assert split.train[u].nnz == 0
        assert ds.item_ids.ids[split.exclude[u].indices].tolist() == [first_item]


def test_cold_split_trains_on_everyone_else() -> None:
    ds = _reviews()
    split = cold_split(ds)
    held = set(ds.user_ids.ids[split.test_users])
    train = split.train_dataset()
    assert held.isdisjoint(train.interactions["user_id"])
    assert held.isdisjoint(train.texts["user_id"])
    others = ds.interactions[~ds.interactions["user_id"].isin(held)]
    assert len(train.interactions) == len(others) == split.train.nnz


def test_cold_split_needs_texts_and_eligible_users() -> None:
    no_text = build_dataset(_log([("a", "x", 1), ("a", "y", 2)]))
    with pytest.raises(DataError, match="needs user texts"):
        cold_split(no_text)
    one_review_each = _reviews(n_users=6, seed=1)
    with pytest.raises(DataError, match="eligible"):
        cold_split(one_review_each, test_fraction=0.01)
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        cold_split(_reviews(), test_fraction=1.5)


# -- ratio splits ------------------------------------------------------------------


def _many(n_users: int = 8, per_user: int = 10) -> Dataset:
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{i}", float(rng.integers(0, 1000)))
        for u in range(n_users)
        for i in rng.choice(30, size=per_user, replace=False)
    ]
    return build_dataset(_log(rows))


def test_random_split_per_user_takes_the_floor_of_the_fraction() -> None:
    ds = _many()
    split = random_split(ds, 0.25, random_state=0)
    assert np.all(np.diff(split.test.indptr)[split.test_users] == 2)  # floor(0.25 * 10)
    assert split.train.nnz + split.test.nnz == ds.n_interactions
    again = random_split(ds, 0.25, random_state=0)
    assert (split.test != again.test).nnz == 0
    assert (split.test != random_split(ds, 0.25, random_state=1).test).nnz > 0


def test_random_split_global_draws_the_fraction_of_all_interactions() -> None:
    ds = _many()
    split = random_split(ds, 0.2, scope="global")
    assert split.test.nnz == 16
    assert split.params["scope"] == "global"


def test_temporal_split_per_user_holds_out_each_users_latest() -> None:
    ds = _many()
    split = temporal_split(ds, 0.3)
    inter = ds.interactions
    for u, targets in zip(split.test_users, split.targets(), strict=True):
        rows = inter[inter["user_id"] == ds.user_ids.ids[u]].sort_values("timestamp")
        assert set(ds.item_ids.ids[targets]) == set(rows["item_id"].iloc[-3:])


def test_temporal_split_global_uses_one_cut_off_time() -> None:
    ds = _many()
    split = temporal_split(ds, 0.2, scope="global")
    times = ds.interactions["timestamp"].to_numpy()
    assert times[split.train_rows].max() <= times[split.test_rows].min()
    # test users have history; test rows of users without it leave both sides
    assert np.all(np.diff(split.train.indptr)[split.test_users] > 0)


def test_ratio_splits_reject_bad_arguments() -> None:
    ds = _many()
    with pytest.raises(ConfigError, match="one of"):
        temporal_split(ds, 0.2, scope="item")
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        random_split(ds, 0.0)
