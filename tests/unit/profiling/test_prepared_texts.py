"""The texts of one fit prepared for keywords once (issue 23: the item names, the profiles
and every segment's sub-interests each cleaned the same texts again)."""

from __future__ import annotations

import numpy as np
import pytest

from usergroups.profiling import build_profiles, derive_item_names
from usergroups.profiling.clean import (
    PreparedTexts,
    distinct_texts,
    keyword_text,
    keyword_texts,
)
from usergroups.profiling.sub_interests import build_sub_interests
from usergroups.testing import make_planted

TEXTS = [
    "I&#39;ve <b>loved</b> these strings, don't ask: me@x.com",
    "Loved these strings",
    "loved these   strings",
    "A capo that clamps well and holds its tune on every fret",
    "A capo that clamps well and holds its tune on every fret!",
    "Pedal noise www.example.org &amp; hum",
    "",
]
USERS = ["a", "a", "a", "b", "b", "c", "c"]


def test_prepared_texts_equal_keyword_text_in_any_order() -> None:
    memo = PreparedTexts(USERS, TEXTS)
    order = [5, 0, 3, 0, 6]
    assert memo.prepared(order) == [keyword_text(TEXTS[i]) for i in order]
    assert memo.prepared(range(len(TEXTS))) == keyword_texts(TEXTS)


def test_distinct_flags_of_whole_writers_equal_distinct_texts_of_the_subset() -> None:
    memo = PreparedTexts(USERS, TEXTS)
    prepared = keyword_texts(TEXTS)
    # writer b first, then every writer: the flags computed for b are reused unchanged
    b = np.array([3, 4])
    assert memo.distinct(b).tolist() == distinct_texts(["b", "b"], prepared[3:5], prepared=True)
    every = np.arange(len(TEXTS))
    assert memo.distinct(every).tolist() == distinct_texts(USERS, prepared, prepared=True)
    assert memo.distinct(every).tolist() == [True, True, False, True, False, True, True]


def test_one_writer_per_text() -> None:
    with pytest.raises(ValueError, match="3 writers for 2 texts"):
        PreparedTexts(["a", "b", "c"], ["x", "y"])


def test_profiles_with_a_shared_memo_equal_profiles_without() -> None:
    """A memo reused by item names, profiles and sub-interests changes no output."""
    planted = make_planted(n_users=120, n_groups=3, random_state=0)
    ds = planted.dataset
    labels = planted.labels_for(ds.user_ids.ids)
    texts = ds.texts
    memo = PreparedTexts.of(texts)

    assert derive_item_names(texts, texts_memo=memo) == derive_item_names(texts)
    shared = build_profiles(ds, labels, n_keywords=5, texts_memo=memo)
    alone = build_profiles(ds, labels, n_keywords=5)
    assert [p.keywords for p in shared] == [p.keywords for p in alone]
    assert [p.label for p in shared] == [p.label for p in alone]

    rng = np.random.default_rng(0)
    fine = rng.integers(0, 6, size=len(labels))
    stability = np.full(6, 0.9)
    with_memo = build_sub_interests(ds, labels, fine, stability, texts_memo=memo)
    without = build_sub_interests(ds, labels, fine, stability)
    assert with_memo.to_dict("records") == without.to_dict("records")


def test_a_memo_of_other_texts_is_refused() -> None:
    planted = make_planted(n_users=40, n_groups=2, random_state=0)
    ds = planted.dataset
    labels = planted.labels_for(ds.user_ids.ids)
    with pytest.raises(ValueError, match="texts_memo holds 2 texts"):
        build_profiles(ds, labels, texts_memo=PreparedTexts(["a", "b"], ["x", "y"]))
