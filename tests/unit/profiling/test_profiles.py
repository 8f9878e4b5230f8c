from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usergroups.data import build_dataset
from usergroups.errors import ConfigError
from usergroups.profiling import build_profiles, class_tfidf_keywords, detect_language
from usergroups.testing import make_planted
from usergroups.testing.synthetic import _TOPICS


def test_profiles_recover_each_planted_groups_words_and_items() -> None:
    planted = make_planted(n_users=200, n_groups=4, random_state=2)
    ds = planted.dataset
    labels = planted.labels_for(ds.user_ids.ids)
    profiles = build_profiles(ds, labels, n_keywords=5, n_items=5)
    item_group = {f"i{i}": i % 4 for i in range(ds.n_items)}
    for p in profiles:
        assert set(p.keywords) <= set(_TOPICS[p.group_id]), p.keywords
        assert all(item_group[i] == p.group_id for i in p.top_items)
        assert p.top_item_lifts == sorted(p.top_item_lifts, reverse=True)
        assert p.label.count(" / ") == 2


def test_generic_words_do_not_become_keywords_of_the_biggest_group() -> None:
    docs = ["great good great good guitar guitar strings " * 20, "great good drum drum " * 5]
    kws = class_tfidf_keywords(docs, n=2)
    assert [w for w, _ in kws[0]] == ["guitar", "strings"] or "great" not in dict(kws[0])
    assert "drum" in dict(kws[1])


def test_chinese_keywords_are_multi_character_words() -> None:
    docs = [
        "这部电影的剧情非常精彩，导演的镜头语言很棒。剧情紧凑，演员演技出色。" * 3,
        "配乐太好听了，音乐和画面完美结合。配乐让人感动，音乐很美。" * 3,
    ]
    assert detect_language(docs) == "zh"
    kws = class_tfidf_keywords(docs, n=3, language="zh")
    for group in kws:
        assert group
        assert all(len(w) >= 2 for w, _ in group)
        assert not any(ch in w for w, _ in group for ch in "，。的")
    assert "剧情" in dict(kws[0]) and ("配乐" in dict(kws[1]) or "音乐" in dict(kws[1]))


def test_groups_without_texts_are_described_by_item_titles() -> None:
    inter = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "z", "w"]})
    items = pd.DataFrame(
        {
            "item_id": ["x", "y", "z", "w"],
            "title": ["Toy Story", "Toy Story 2", "Alien", "Aliens"],
            "categories": ["Animation", "Animation", "Horror", "Horror"],
        }
    )
    ds = build_dataset(inter, items=items)
    profiles = build_profiles(ds, np.array([0, 1]), min_support=1)
    assert "toy" in " ".join(profiles[0].keywords)
    # both items have the same counts, so the same figure: shown once (issue 14)
    assert profiles[0].top_item_titles == ["Toy Story"]


def test_noise_users_are_not_profiled_and_shares_add_up() -> None:
    planted = make_planted(n_users=40, n_groups=2)
    labels = planted.labels_for(planted.dataset.user_ids.ids)
    labels[:4] = -1
    profiles = build_profiles(planted.dataset, labels)
    assert len(profiles) == 2
    assert sum(p.size for p in profiles) == 36
    assert abs(sum(p.share for p in profiles) - 0.9) < 1e-9


def test_no_text_at_all_gives_empty_keywords_not_an_error() -> None:
    assert class_tfidf_keywords(["", " "]) == [[], []]
    assert class_tfidf_keywords(["the and of", "is it"]) == [[], []]


def test_keywords_of_a_sampled_group_match_the_full_count_issue_25() -> None:
    """Issue 25: above ``keyword_writers`` writers a group's keywords are counted on a seeded
    sample scaled to the group; on planted groups the sample still finds only each group's
    own words, and a group under the bound is counted in full."""
    planted = make_planted(n_users=600, n_groups=3, random_state=4)
    ds = planted.dataset
    labels = planted.labels_for(ds.user_ids.ids)
    full = build_profiles(ds, labels, n_keywords=5, keyword_writers=None)
    sampled = build_profiles(ds, labels, n_keywords=5, keyword_writers=60, random_state=1)
    for f, s in zip(full, sampled, strict=True):
        assert set(s.keywords) <= set(_TOPICS[s.group_id]), s.keywords
        assert s.size == f.size  # only the keywords are sampled
    whole = build_profiles(ds, labels, n_keywords=5, keyword_writers=200)
    assert [p.keyword_scores for p in whole] == [p.keyword_scores for p in full]
    # a different sample is another estimate, not the same numbers
    other = build_profiles(ds, labels, n_keywords=5, keyword_writers=60, random_state=2)
    assert [p.keyword_scores for p in other] != [p.keyword_scores for p in sampled]


def test_a_bad_keyword_sample_size_is_refused_issue_25() -> None:
    planted = make_planted(n_users=40, n_groups=2, random_state=0)
    labels = planted.labels_for(planted.dataset.user_ids.ids)
    with pytest.raises(ConfigError, match="keyword_writers"):
        build_profiles(planted.dataset, labels, keyword_writers=0)
