"""Ids: one rule in every table of the data model, whatever dtype pandas gave them (issue 13).

The bug these guard: integer item ids in a texts table with one missing value came back
as floats (``"12.0"``) while the interactions kept ``"12"``, so a review lost its item and
the leak guards of the warm split, the cold split and the validation carve missed it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from usergroups.data import IdVocab, build_dataset, id_string, id_strings
from usergroups.evaluation import cold_split, warm_split
from usergroups.selection import carve_validation


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, "12"),
        (np.int64(12), "12"),
        (12.0, "12"),  # an integer column made float by a missing value
        (np.float32(12.0), "12"),
        ("12", "12"),
        ("12.0", "12.0"),  # a string is the id as written
        (" 012 ", "012"),  # leading zeros kept, surrounding whitespace not
        (1.5, "1.5"),
        (2.0**60, "1152921504606846976"),
        (None, None),
        (float("nan"), None),
        (pd.NA, None),
    ],
)
def test_id_string_rule(value: object, expected: str | None) -> None:
    assert id_string(value) == expected


@pytest.mark.parametrize(
    "column",
    [
        pd.Series([12, 7, 12], dtype=np.int64),
        pd.Series([12.0, 7.0, 12.0, np.nan])[:3],
        pd.Series([12, 7, 12, None], dtype="Int64")[:3],
        pd.Series([12, "7", 12.0], dtype=object),
        pd.Series(["12", "7", "12"], dtype="str"),
        pd.Series([12, 7, 12], dtype=np.uint32),
    ],
    ids=["int64", "float64-with-nan", "nullable-Int64", "object-mixed", "str", "uint32"],
)
def test_issue13_every_dtype_of_an_integer_id_column_gives_the_same_ids(column: pd.Series) -> None:
    assert id_strings(column).tolist() == ["12", "7", "12"]


@given(
    st.lists(st.integers(min_value=-(2**53), max_value=2**53), min_size=1, max_size=20),
    st.integers(min_value=0, max_value=19),
)
def test_issue13_integer_ids_survive_a_missing_value(ids: list[int], hole: int) -> None:
    """Property: a NaN anywhere in the column (pandas then stores floats) changes no id."""
    with_hole = [*ids]
    with_hole.insert(hole % (len(ids) + 1), None)  # type: ignore[arg-type]
    as_float = pd.Series(with_hole, dtype=np.float64)
    as_nullable = pd.Series(with_hole, dtype="Int64")
    expected = [str(i) for i in ids]
    for column in (as_float, as_nullable):
        out = id_strings(column).tolist()
        assert out.pop(hole % (len(ids) + 1)) is None
        assert out == expected


def test_id_strings_keeps_the_index_and_none_for_missing() -> None:
    s = pd.Series([3.0, np.nan], index=[10, 20])
    out = id_strings(s)
    assert out.index.tolist() == [10, 20] and out.tolist() == ["3", None]
    assert out.dtype == object


def test_float_ids_beyond_2_53_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    id_strings(pd.Series([2.0**60, np.nan]), what="texts.item_id")
    assert "texts.item_id" in caplog.text and "2**53" in caplog.text


def test_issue13_vocabulary_lookups_use_the_same_rule() -> None:
    vocab = IdVocab.from_ids([12, "a"])
    assert vocab.ids.tolist() == ["12", "a"]
    assert 12.0 in vocab and np.int64(12) in vocab and "12.0" not in vocab
    assert vocab.index([12.0, "12"]).tolist() == [0, 0]
    assert vocab.get(12.0) == 0


# -- the data model ------------------------------------------------------------------


def _numeric() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users 1..3 with items 10..12 (int64); reviews whose item column has a missing value."""
    inter = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 2, 3, 3, 3],
            "item_id": [10, 11, 12, 10, 11, 12, 11, 12, 10],
            "timestamp": [1, 2, 3, 1, 2, 3, 1, 2, 3],
        }
    )
    texts = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2, 3, 3, 1],
            # float64 because of the NaN: 10.0, 12.0, ...
            "item_id": [10, 12, 10, 11, 11, 10, np.nan],
            "text": ["1 on 10", "1 on 12", "2 on 10", "2 on 11", "3 on 11", "3 on 10", "1 bio"],
            "timestamp": [1, 3, 1, 2, 1, 3, 0],
        }
    )
    assert texts["item_id"].dtype == np.float64
    return inter, texts


def test_issue13_numeric_item_ids_with_a_missing_value_link_reviews_to_items() -> None:
    inter, texts = _numeric()
    ds = build_dataset(inter, texts)
    assert ds.texts["item_id"].tolist() == ["10", "12", "10", "11", "11", "10", None]
    assert ds.interactions["item_id"].tolist()[:3] == ["10", "11", "12"]
    assert ds.texts["user_id"].tolist()[:2] == ["1", "1"]
    # every review that names an item names one of the log
    named = ds.texts["item_id"].dropna()
    assert all(item in ds.item_ids for item in named)
    linked = ds.texts.merge(ds.interactions, on=["user_id", "item_id"])
    assert len(linked) == len(named)


def test_issue13_items_and_users_tables_follow_the_same_rule() -> None:
    inter, texts = _numeric()
    items = pd.DataFrame(
        {"item_id": pd.Series([10, 11, 12], dtype="Int64"), "title": ["ten", "eleven", "twelve"]}
    )
    users = pd.DataFrame({"user_id": pd.Series([1.0, 2.0, 3.0]), "age": [20, 30, 40]})
    ds = build_dataset(inter, texts, items, users)
    assert ds.item_titles() == {"10": "ten", "11": "eleven", "12": "twelve"}
    assert ds.n_items == 3  # no "10.0" beside "10"
    assert ds.users is not None and ds.users["user_id"].tolist() == ["1", "2", "3"]
    assert set(ds.users["user_id"]) == set(ds.user_ids.ids)


def test_string_ids_that_look_like_floats_are_kept_as_written() -> None:
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["12.0", "12"]})
    ds = build_dataset(inter)
    assert ds.item_ids.ids.tolist() == ["12", "12.0"]  # two different items


def test_blank_text_item_ids_name_no_item() -> None:
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["a"]})
    texts = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "  "], "text": ["x", "y"]})
    assert build_dataset(inter, texts).texts["item_id"].tolist() == ["a", None]


# -- the leak guards, with those ids --------------------------------------------------


def test_issue13_warm_split_drops_reviews_of_test_items_with_numeric_ids() -> None:
    inter, texts = _numeric()
    split = warm_split(build_dataset(inter, texts))
    # last by time: user 1 -> 12, user 2 -> 12, user 3 -> 10; "1 on 12" and "3 on 10" leak
    train = split.train_dataset()
    assert sorted(train.texts["text"]) == ["1 bio", "1 on 10", "2 on 10", "2 on 11", "3 on 11"]


def test_issue13_cold_split_never_targets_the_query_item_with_numeric_ids() -> None:
    inter, texts = _numeric()
    ds = build_dataset(inter, texts)
    split = cold_split(ds, test_fraction=0.99, random_state=0)
    assert split.n_test_users == 3
    for u, targets in zip(split.test_users, split.targets(), strict=True):
        user = ds.user_ids.ids[u]
        reviews = ds.texts[(ds.texts["user_id"] == user) & ds.texts["item_id"].notna()]
        query_item = reviews.sort_values("timestamp", kind="stable")["item_id"].iloc[0]
        if user == "1":  # the bio (time 0) is user 1's first text: it names no item
            assert split.exclude[u].nnz == 0
            continue
        q = ds.item_ids.index([query_item])[0]
        assert q not in targets.tolist()
        assert split.exclude[u].indices.tolist() == [q]


def test_issue13_validation_carve_guards_hold_with_numeric_ids() -> None:
    inter, texts = _numeric()
    ds = build_dataset(inter, texts)
    warm = carve_validation(ds, cold_fraction=0.01, random_state=0)
    assert warm.warm_rows.tolist() == [0, 1, 2]
    kept = set(ds.texts.loc[warm.text_keep, "text"])
    assert "1 on 12" not in kept and "3 on 10" not in kept
    assert {"1 on 10", "2 on 10", "2 on 11", "3 on 11", "1 bio"} <= kept
    cold = carve_validation(ds, cold_fraction=0.99, random_state=0)
    for j, user in enumerate(cold.cold_rows):
        query_item = ds.texts["item_id"].iloc[cold.cold_query[j]]
        if query_item is None:
            continue
        q = ds.item_ids.index([query_item])[0]
        assert cold.cold_targets[j, q] == 0, f"user {ds.user_ids.ids[user]}: query item leaked"
    assert not cold.text_keep[np.isin(ds.user_ids.index(ds.texts["user_id"]), cold.cold_rows)].any()
