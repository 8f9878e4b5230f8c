"""Profiles beyond keywords and items: categories, ratings, attributes, texts (issue 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.data import Dataset, build_dataset
from usergroups.embedding.hashing import HashingEncoder
from usergroups.profiling import attribute_columns, build_profiles
from usergroups.testing import PlantedData, make_planted
from usergroups.testing.synthetic import _TOPICS


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return make_planted(n_users=200, n_groups=4, random_state=2)


def _with_users(ds: Dataset, users: pd.DataFrame) -> Dataset:
    return build_dataset(ds.interactions, ds.texts, ds.items, users, name=ds.name)


def _text_vectors(ds: Dataset) -> np.ndarray:
    return np.asarray(HashingEncoder(dim=256).encode(ds.texts["text"].tolist()))


def test_representative_texts_speak_the_groups_vocabulary(planted: PlantedData) -> None:
    ds = planted.dataset
    labels = planted.labels_for(ds.user_ids.ids)
    profiles = build_profiles(ds, labels, text_vectors=_text_vectors(ds), n_texts=3)
    members = {u: g for u, g in zip(ds.user_ids.ids, labels, strict=True)}
    own = {t: members[u] for u, t in zip(ds.texts["user_id"], ds.texts["text"], strict=True)}
    for p in profiles:
        assert len(p.representative_texts) == 3
        assert len(set(p.representative_texts)) == 3
        topic = set(_TOPICS[p.group_id])
        for text in p.representative_texts:
            assert own[text] == p.group_id  # a member's own text, unchanged when short
            words = [w.strip(".").lower() for w in text.split()]
            assert sum(w in topic for w in words) > len(words) / 2


def test_representative_texts_are_deduplicated_and_shortened() -> None:
    long = "guitar strings " * 200
    inter = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "x", "y"]})
    texts = pd.DataFrame(
        {
            "user_id": ["a", "b", "c"],
            "text": [long, "  " + long.upper() + " ", "guitar strings and a capo for it"],
        }
    )
    ds = build_dataset(inter, texts)
    vectors = np.ones((3, 4), dtype=np.float32)
    (profile,) = build_profiles(
        ds, np.zeros(3, dtype=np.int64), text_vectors=vectors, text_chars=80
    )
    assert len(profile.representative_texts) == 2  # the upper-case copy is the same text
    assert all(len(t) <= 81 for t in profile.representative_texts)
    assert profile.representative_texts[0].endswith("…")


def test_without_text_vectors_there_are_no_representative_texts(planted: PlantedData) -> None:
    ds = planted.dataset
    profiles = build_profiles(ds, planted.labels_for(ds.user_ids.ids))
    assert all(p.representative_texts == [] for p in profiles)


def test_top_categories_are_the_planted_topics_and_join_the_label(planted: PlantedData) -> None:
    ds = planted.dataset
    profiles = build_profiles(ds, planted.labels_for(ds.user_ids.ids), n_keywords=3)
    for p in profiles:
        assert p.top_categories[0] == f"topic{p.group_id}"
        assert p.top_category_lifts[0] > 2
        assert p.label.endswith(f"(topic{p.group_id})")


def test_rating_behaviour_is_compared_with_the_population() -> None:
    inter = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c", "c", "d", "d"],
            "item_id": ["x", "y", "x", "y", "x", "y", "x", "y"],
            "rating": [1.0, 2.0, 1.0, 5.0, 5.0, 5.0, 4.0, np.nan],
        }
    )
    ds = build_dataset(inter)
    grumpy, happy = build_profiles(ds, np.array([0, 0, 1, 1]), low_rating=2.0)
    assert grumpy.rating_mean == pytest.approx(2.25)
    assert grumpy.rating_low_share == pytest.approx(0.75)
    assert happy.rating_mean == pytest.approx(14 / 3, abs=1e-4)
    assert happy.rating_low_share == 0.0
    assert grumpy.population_rating_mean == pytest.approx(23 / 7, abs=1e-4)
    assert grumpy.population_rating_low_share == pytest.approx(3 / 7, abs=1e-4)


def test_implicit_data_has_no_rating_behaviour() -> None:
    ds = build_dataset(pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]}))
    (p,) = build_profiles(ds, np.array([0, 0]))
    assert p.rating_mean is None and p.population_rating_mean is None
    assert np.isnan(p.to_record()["rating_mean"])  # type: ignore[arg-type]


def test_attributes_show_over_represented_values_with_population_shares(
    planted: PlantedData,
) -> None:
    ds = planted.dataset
    labels = planted.labels_for(ds.user_ids.ids)
    users = pd.DataFrame(
        {
            "user_id": ds.user_ids.ids,
            "gender": np.where(labels == 0, "F", "M"),
            "age": np.where(labels == 1, 19, 40),
            "occupation": np.where(labels == 2, "student", "engineer"),
            "zip_code": [f"{i:05d}" for i in range(len(labels))],
        }
    )
    profiles = build_profiles(_with_users(ds, users), labels)
    by_group = {
        p.group_id: {(a["attribute"], a["value"]): a for a in p.attributes} for p in profiles
    }
    female = by_group[0][("gender", "F")]
    assert female["share"] == 1.0 and female["population_share"] == 0.25
    assert ("age band", "18-24") in by_group[1]
    assert by_group[2][("occupation", "student")]["share"] == 1.0
    assert not any(a == "zip_code" for g in by_group.values() for a, _ in g)
    for p in profiles:
        for a in p.attributes:
            assert a["share"] > a["population_share"]


def test_attribute_columns_band_ages_and_skip_ids_and_free_text() -> None:
    users = pd.DataFrame(
        {
            "user_id": [str(i) for i in range(100)],
            "age": np.arange(100) % 70,
            "zip_code": [str(i) for i in range(100)],
            "bio": [f"I am user {i}" for i in range(100)],
            "gender": ["M", "F"] * 50,
        }
    )
    cols = attribute_columns(users)
    assert set(cols) == {"age band", "gender"}
    assert set(cols["age band"].dropna()) == {
        "under 18",
        "18-24",
        "25-34",
        "35-44",
        "45-54",
        "55+",
    }


def test_items_without_titles_are_described_by_their_reviews() -> None:
    inter = pd.DataFrame({"user_id": list("abcdef"), "item_id": ["x", "x", "x", "y", "y", "y"]})
    texts = pd.DataFrame(
        {
            "user_id": list("abcdef"),
            "item_id": ["x", "x", "x", "y", "y", "y"],
            "text": [
                *["pop filter works", "pop filter great", "the pop filter"],
                *["capo holds", "capo is solid", "nice capo"],
            ],
        }
    )
    ds = build_dataset(inter, texts)
    a, b = build_profiles(ds, np.array([0, 0, 0, 1, 1, 1]), min_support=1)
    assert a.top_items == ["x"] and {"pop", "filter"} <= set(a.top_item_terms[0].split(", "))
    assert b.top_items == ["y"] and "capo" in b.top_item_terms[0]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(-1, 3), min_size=60, max_size=60), st.integers(0, 3))
def test_every_listed_category_and_attribute_is_over_represented(
    labels: list[int], seed: int
) -> None:
    small = make_planted(n_users=60, n_groups=3, random_state=seed).dataset
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {"user_id": small.user_ids.ids, "gender": rng.choice(["F", "M", "X"], size=60)}
    )
    labels_arr = np.array(labels, dtype=np.int64)
    profiles = build_profiles(_with_users(small, users), labels_arr, min_support=1)
    assert sum(p.size for p in profiles) == int((labels_arr >= 0).sum())
    for p in profiles:
        assert all(lift > 1 for lift in p.top_category_lifts)
        for a in p.attributes:
            assert 0 < a["population_share"] < a["share"] <= 1
        if p.rating_low_share is not None:
            assert 0 <= p.rating_low_share <= 1


def test_profile_fields_round_trip_through_the_model_directory(
    planted: PlantedData, tmp_path: Path
) -> None:
    ds = planted.dataset
    users = pd.DataFrame(
        {"user_id": ds.user_ids.ids, "gender": ["F", "M", "M", "F"] * (ds.n_users // 4)}
    )
    # no alignment: it is most of the time of a fit, and profiles do not depend on it
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing"},
            "clustering": {"n_groups": 4},
            "align": {"method": "none"},
        }
    )
    fitted = GroupDiscovery(cfg).fit(_with_users(ds, users))
    g = fitted.groups_
    for col in ("top_categories", "representative_texts", "attributes", "rating_mean"):
        assert col in g
    assert all(len(t) == 3 for t in g["representative_texts"])
    assert g["llm_label"].isna().all()
    loaded = GroupDiscovery.load(fitted.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.groups_, fitted.groups_)
    assert isinstance(loaded.groups_.loc[0, "attributes"], list)
