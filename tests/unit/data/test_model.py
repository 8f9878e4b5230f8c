from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usergroups.data import DataReport, Dataset, IdVocab, build_dataset
from usergroups.errors import DataError, UnknownIdError


def _inter(**extra: list[object]) -> pd.DataFrame:
    base = {"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"]}
    base.update(extra)
    return pd.DataFrame(base)


def test_vocab_is_sorted_and_indexes_round_trip() -> None:
    vocab = IdVocab.from_ids(["b", "a", "c", "a"])
    assert vocab.ids.tolist() == ["a", "b", "c"]
    assert vocab.index(["c", "a"]).tolist() == [2, 0]
    assert "b" in vocab and "z" not in vocab


def test_vocab_unknown_id_names_it() -> None:
    with pytest.raises(UnknownIdError, match="'zz'"):
        IdVocab.from_ids(["a"]).index(["zz"], what="user_id")


def test_missing_column_error_names_column_and_fix() -> None:
    with pytest.raises(DataError, match=r"missing column\(s\) \['item_id'\].*--map"):
        build_dataset(pd.DataFrame({"user_id": ["u"]}))


def test_non_numeric_rating_is_an_error_with_example() -> None:
    with pytest.raises(DataError, match=r"interactions.rating must be numeric.*'five'"):
        build_dataset(_inter(rating=[1, "five", 3]))


def test_duplicates_keep_latest_and_are_counted() -> None:
    inter = pd.DataFrame(
        {
            "user_id": ["u", "u", "u"],
            "item_id": ["a", "a", "b"],
            "rating": [1, 5, 3],
            "timestamp": [20, 10, 5],
        }
    )
    ds = build_dataset(inter)
    assert ds.n_interactions == 2
    assert ds.interactions.set_index("item_id").loc["a", "rating"] == 1  # the later one
    assert ds.report.total == 1
    assert "duplicate" in str(ds.report)


def test_duplicates_error_policy() -> None:
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "a"]})
    with pytest.raises(DataError, match="duplicate"):
        build_dataset(inter, duplicates="error")


def test_strict_constructor_rejects_duplicates() -> None:
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "a"]})
    texts = pd.DataFrame({"user_id": [], "text": []})
    with pytest.raises(DataError, match="duplicates='latest'"):
        Dataset(interactions=inter, texts=texts)


def test_orphan_texts_policies() -> None:
    texts = pd.DataFrame({"user_id": ["u1", "ghost"], "text": ["hi there", "boo"]})
    kept = build_dataset(_inter(), texts)
    assert "ghost" in kept.user_ids and kept.n_users == 3
    dropped = build_dataset(_inter(), texts, orphan_texts="drop")
    assert "ghost" not in dropped.user_ids
    assert dropped.report.entries[-1][1] == 1
    with pytest.raises(DataError, match="no interactions"):
        build_dataset(_inter(), texts, orphan_texts="error")


def test_empty_ids_and_texts_are_dropped_and_counted() -> None:
    inter = pd.DataFrame({"user_id": ["u1", None, " "], "item_id": ["a", "b", "c"]})
    texts = pd.DataFrame({"user_id": ["u1", "u1"], "text": ["fine", "   "]})
    ds = build_dataset(inter, texts)
    assert ds.n_interactions == 1 and len(ds.texts) == 1
    assert ds.report.total == 3


def test_empty_dataset_is_an_error() -> None:
    with pytest.raises(DataError, match="empty"):
        build_dataset(pd.DataFrame({"user_id": [], "item_id": []}))


def test_float_ids_become_integer_strings() -> None:
    ds = build_dataset(pd.DataFrame({"user_id": [1.0, 2.0], "item_id": [10, 11]}))
    assert ds.user_ids.ids.tolist() == ["1", "2"]


def test_datetime_timestamps_become_unix_seconds() -> None:
    inter = _inter(timestamp=pd.to_datetime(["1970-01-01", "1970-01-02", "1970-01-03"]))
    ds = build_dataset(inter)
    assert ds.interactions["timestamp"].tolist() == [0.0, 86400.0, 172800.0]


def test_interaction_matrix_shape_and_values() -> None:
    ds = build_dataset(_inter(rating=[4, 5, np.nan]))
    m = ds.interaction_matrix(values="rating")
    assert m.shape == (2, 2)
    assert m.toarray().tolist() == [[4.0, 5.0], [1.0, 0.0]]


def test_items_only_in_metadata_extend_the_vocabulary() -> None:
    items = pd.DataFrame({"item_id": ["a", "zzz"], "title": ["A", "Z"]})
    ds = build_dataset(_inter(), items=items)
    assert ds.item_ids.ids.tolist() == ["a", "b", "zzz"]
    assert ds.item_titles() == {"a": "A", "zzz": "Z"}


def test_report_renders_every_entry() -> None:
    r = DataReport()
    r.add("x.csv", 3, "dropped: bad")
    r.add("x.csv", 0, "not recorded")
    assert str(r) == "x.csv: 3 row(s) dropped: bad" and r.total == 3


def test_missing_text_item_ids_stay_none() -> None:
    texts = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "text": ["x", "y"],
            "item_id": pd.Series(["a", None], dtype="str"),
        }
    )
    ds = build_dataset(_inter(), texts)
    assert ds.texts["item_id"].tolist() == ["a", None]


def test_id_lookup_by_hash_table_keeps_the_id_rule_issue_25() -> None:
    """Issue 25: ids are looked up by a pandas hash table; other spellings still follow the
    id rule (numbers, NumPy strings) and unknown ids still name themselves."""
    vocab = IdVocab.from_ids(["12", "a", "b"])
    mixed = ["a", 12, 12.0, np.str_("b"), np.int64(12)]
    assert vocab.index(mixed).tolist() == [1, 0, 0, 2, 0]
    assert vocab.index(pd.Series(["b", "a"])).tolist() == [2, 1]
    assert vocab.index(iter(["a"])).tolist() == [1]
    assert vocab.index([]).dtype == np.int64
    with pytest.raises(UnknownIdError, match="2 id"):
        vocab.index(["a", "zz", None])


def test_the_interaction_matrix_is_fresh_on_every_call_issue_25() -> None:
    """Issue 25: the cells' indices are looked up once per dataset; each call still returns
    its own matrix, so a caller that binarises or scales it changes nothing for the next."""
    ds = build_dataset(pd.DataFrame({"user_id": ["u1", "u2", "u1"], "item_id": ["i1", "i1", "i2"]}))
    first = ds.interaction_matrix(values="rating")
    first.data[:] = 7.0
    again = ds.interaction_matrix()
    assert again.toarray().tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert again is not first
