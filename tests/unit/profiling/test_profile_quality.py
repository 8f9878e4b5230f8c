"""Clean profiles and item rankings that mean something (issue 14, parts 3 and 4)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usergroups.data import Dataset, build_dataset
from usergroups.embedding import clean_text
from usergroups.embedding.hashing import HashingEncoder
from usergroups.profiling import build_profiles
from usergroups.profiling.clean import (
    distinct_texts,
    is_markup_token,
    is_sentiment,
    scrub_personal,
    signature_tails,
    tokenize,
)
from usergroups.profiling.profiles import _wilson_lower

_MARKUP = {"nbsp", "a-link-normal", "data-hook", "href", "product-link-linked", "http", "www"}


def _dataset(rows: list[tuple[str, str, str]]) -> Dataset:
    """``(user_id, item_id, text)`` rows; every row is an interaction and a review."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "text"])
    return build_dataset(frame[["user_id", "item_id"]], frame)


def _labels(ds: Dataset, groups: dict[str, int]) -> np.ndarray:
    return np.array([groups[u] for u in ds.user_ids.ids], dtype=np.int64)


def _two_groups(
    texts_a: list[str], texts_b: list[str], extra: list[tuple[str, str, str]] | None = None
) -> tuple[Dataset, np.ndarray]:
    """Six members per group; member k of a group writes texts[k % len(texts)]."""
    rows = [(f"a{k}", f"ia{k % 3}", texts_a[k % len(texts_a)]) for k in range(6)]
    rows += [(f"b{k}", f"ib{k % 3}", texts_b[k % len(texts_b)]) for k in range(6)]
    rows += extra or []
    ds = _dataset(rows)
    return ds, _labels(ds, {u: 0 if u.startswith("a") else 1 for u in ds.user_ids.ids})


# ------------------------------------------------------------------ clean_text leftovers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('cut off <a data-hook="product-link-linked" class="a-link-no', "cut off"),
        (
            'gone a data-hook="product-link-linked" class="a-link-normal" href="/dp/B0" Boss',
            "gone a Boss",
        ),
        ("nbsp; x &NBSP; y nbsp z", "x y z"),
        ("&amp;nbsp;ok amp; ok", "ok ok"),
        ('the x="3" style, a < b', 'the x="3" style, a < b'),
    ],
)
def test_clean_text_removes_half_done_markup(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected
    assert clean_text(clean_text(raw)) == clean_text(raw)


# ------------------------------------------------------------------ keywords: what is a token


def test_markup_left_by_scrapers_never_becomes_a_keyword() -> None:
    dirty = [
        'Pedal board&nbsp;rocks <a data-hook="product-link-linked" class="a-link-normal" '
        'href="/Boss-Pedal/dp/B000">Boss pedal</a>',
        'pedal board data-hook="product-link-linked" class="a-link-normal" href="/dp/B0" nbsp',
        'pedal board https://www.example.com/pedal?x=1 &NBSP; nbsp; <a href="/dp/B00X',
    ]
    ds, labels = _two_groups(dirty, ["capo on my ukulele", "ukulele capo", "capo ukulele"])
    profiles = build_profiles(ds, labels, n_keywords=10)
    words = {w for p in profiles for kw in p.keywords for w in kw.split()}
    assert "pedal" in profiles[0].keywords
    assert not words & _MARKUP, words
    assert not any(is_markup_token(w) for w in words)


def test_contraction_fragments_and_short_words_are_not_keywords() -> None:
    texts = ["I've said it: don't we'll they're fine, the amp's tubes glow", "amp tubes ok"]
    ds, labels = _two_groups(texts, ["I'd say the drum's heads ring", "drum heads"])
    profiles = build_profiles(ds, labels)
    words = [w for p in profiles for kw in p.keywords for w in kw.split()]
    assert {"amp", "tubes"} <= set(profiles[0].keywords)
    assert not {"ve", "don", "ll", "re", "s", "d", "t", "ok"} & set(words)
    assert all(len(w) >= 3 for w in words)


def test_tokenize_keeps_cjk_words_of_two_characters() -> None:
    assert "剧情" in tokenize("剧情紧凑，演员演技出色", "zh")
    assert all(len(t) >= 3 for t in tokenize("a ab abc abcd", "en"))


# ------------------------------------------------------------------ keywords: who uses them


def test_a_keyword_must_be_used_by_three_distinct_members() -> None:
    # one reviewer signs all ten of his reviews; two members share a rare word
    signed = [("a0", f"ia{k}", f"nice strap number {k}. haft kenneth gift") for k in range(10)]
    pair = [("a1", "ia1", "strap with a leather buckle"), ("a2", "ia2", "leather buckle")]
    texts_a = ["strap for my guitar", "guitar strap", "strap"]
    ds, labels = _two_groups(texts_a, ["drum sticks", "drum", "sticks"], signed + pair)
    (a, _) = build_profiles(ds, labels, n_keywords=20)
    assert "strap" in a.keywords
    assert not {"haft", "kenneth", "gift", "buckle"} & {w for k in a.keywords for w in k.split()}
    # the rule, not the vocabulary, keeps them out
    (loose, _) = build_profiles(ds, labels, n_keywords=20, min_members=1)
    assert {"kenneth", "buckle"} <= {w for k in loose.keywords for w in k.split()}


def test_a_group_with_fewer_writers_than_the_minimum_keeps_its_keywords() -> None:
    rows = [("a", "x", "mandolin strings mandolin"), ("b", "x", "mandolin picks mandolin")]
    rows += [(f"c{k}", "y", "drum sticks") for k in range(5)]
    ds = _dataset(rows)
    labels = _labels(ds, {"a": 0, "b": 0, **{f"c{k}": 1 for k in range(5)}})
    small, _ = build_profiles(ds, labels)
    assert small.keywords[0] == "mandolin"  # used by both of its two writers


def test_near_duplicate_texts_of_one_user_count_once() -> None:
    review = "These strings sound bright and stay in tune for weeks on my acoustic"
    variants = [f"{review}. Color: {c}" for c in ("Red", "Blue", "Black", "Green")]
    assert distinct_texts(["u"] * 5, [review, *variants]) == [True] + [False] * 4
    assert distinct_texts(["u", "v"], [review, review]) == [True, True]  # other users count
    base = ["strings bright tune", "strings tune", "strings acoustic"]
    ds1, labels1 = _two_groups(base, ["drum sticks", "drum", "sticks"])
    dup = [("a0", f"ia{k}", base[0]) for k in range(5)]  # a0 posts it for five variants
    ds2, labels2 = _two_groups(base, ["drum sticks", "drum", "sticks"], dup)
    one = build_profiles(ds1, labels1)[0]
    many = build_profiles(ds2, labels2)[0]
    assert one.keywords == many.keywords
    assert one.keyword_scores == many.keyword_scores


# ------------------------------------------------------------------ praise and labels


def test_praise_never_leads_the_label_of_a_group_with_a_topic() -> None:
    texts_a = [
        "great great love this delay pedal board",
        "love it great pedal board and delay",
        "great pedal love the board, delay",
    ]
    ds, labels = _two_groups(texts_a, ["drum sticks snare", "snare drum", "sticks"])
    a = build_profiles(ds, labels)[0]
    first = a.label.split(" / ")[0]
    assert first in {"pedal", "board", "delay", "pedal board", "board delay"}, a.label
    assert a.label_kind == "topic"
    assert a.keywords.index("great") > 2  # down-weighted, praise falls behind the topic
    assert "great" in a.keywords  # ... but is still shown


def test_a_group_that_mostly_praises_is_flagged_as_sentiment() -> None:
    texts_a = [
        "awesome excellent amazing love it perfect",
        "amazing awesome perfect excellent love",
        "excellent love awesome amazing",
    ]
    ds, labels = _two_groups(texts_a, ["drum sticks snare", "snare drum head", "drum sticks"])
    a, b = build_profiles(ds, labels)
    assert a.label_kind == "sentiment" and a.label.startswith("sentiment: ")
    assert b.label_kind == "topic" and not b.label.startswith("sentiment")
    assert a.to_record()["label_kind"] == "sentiment"


def test_chinese_praise_is_sentiment_and_filler_is_dropped() -> None:
    assert is_sentiment("不错", "zh") and is_sentiment("好看", "zh")
    assert not is_sentiment("武侠", "zh")
    tokens = tokenize("这部电影真的很不错，武侠片的经典", "zh")
    assert "武侠片" in tokens and not {"这部", "电影", "真的"} & set(tokens)


# ------------------------------------------------------------------ privacy of texts


def test_personal_data_is_scrubbed_from_text() -> None:
    text = "Mail jo.doe@gmail.com, call (555) 123-4567 or +44 20 7946 0958, see www.shop.com/x."
    assert scrub_personal(text) == "Mail [email], call [phone] or [phone], see [url]."
    kept = "Bought in 2012 for $19.99: SM-57, 1/4 inch, 9V, 120 V, model 2000 1990."
    assert scrub_personal(kept) == kept


def _with_vectors(ds: Dataset) -> np.ndarray:
    return np.asarray(HashingEncoder(dim=64).encode(ds.texts["text"].tolist()))


def test_representative_texts_carry_no_email_phone_or_link() -> None:
    texts_a = [
        "Great guitar strap, write me at strap.fan@example.com with questions about it",
        "The guitar strap is long, call 555-867-5309 and see https://straps.example.com/a",
        "Guitar strap of soft leather, details on www.leather.example.org for everyone",
    ]
    ds, labels = _two_groups(texts_a, ["drum sticks snare", "snare drum head", "drum sticks"])
    a = build_profiles(ds, labels, text_vectors=_with_vectors(ds), n_texts=3)[0]
    shown = " ".join(a.representative_texts)
    assert len(a.representative_texts) == 3
    assert not re.search(r"@|\d{3}-\d{4}|https?:|www\.", shown), shown
    assert "[email]" in shown and "[phone]" in shown and "[url]" in shown


def test_a_signed_text_is_never_representative() -> None:
    sig = [
        ("a0", "ia0", "Lovely strap for my guitar, thick leather.\n-- Kenneth Haft, Tulsa"),
        ("a0", "ia1", "Guitar strap number two, soft leather.\n-- Kenneth Haft, Tulsa"),
    ]
    assert signature_tails([u for u, _, _ in sig], [t for _, _, t in sig]) == {
        "a0": {"kenneth haft tulsa"}
    }
    texts_a = ["strap for my guitar in leather", "guitar strap leather", "leather strap"]
    ds, labels = _two_groups(texts_a, ["drum sticks", "drum", "sticks"], sig)
    a = build_profiles(ds, labels, text_vectors=_with_vectors(ds), n_texts=10)[0]
    assert a.representative_texts
    assert not any("Kenneth" in t for t in a.representative_texts)


def test_a_closing_many_users_share_is_not_a_signature() -> None:
    users = ["a", "a", "b"]
    texts = ["Good. Highly recommended!", "Fine. Highly recommended!", "Ok. Highly recommended!"]
    assert signature_tails(users, texts) == {}


# ------------------------------------------------------------------ items: lift with support


def test_items_only_the_group_bought_rank_by_support() -> None:
    # 20 members, 80 others; items x (15 buyers), y (5), z (3) were bought only by members
    rows = [(f"m{k}", "x", "") for k in range(15)] + [(f"m{k}", "y", "") for k in range(5)]
    rows += [(f"m{k}", "z", "") for k in range(3)] + [(f"m{k}", "p", "") for k in range(20)]
    rows += [(f"o{k}", "p", "") for k in range(80)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "text"])
    ds = build_dataset(frame[["user_id", "item_id"]])
    labels = _labels(ds, {u: 0 if u.startswith("m") else 1 for u in ds.user_ids.ids})
    (p, _) = build_profiles(ds, labels)
    # the plain lift is 100/20 = 5 for all three; the bound orders them by evidence
    assert p.top_items == ["x", "y", "z"]
    assert p.top_item_lifts == sorted(p.top_item_lifts, reverse=True)
    assert len(set(p.top_item_lifts)) == 3
    assert all(v < 5 for v in p.top_item_lifts)


def test_exactly_tied_items_show_one_figure_once() -> None:
    rows = [(f"m{k}", item, "") for k in range(4) for item in ("x", "y", "w")]
    rows += [(f"o{k}", "p", "") for k in range(10)] + [("m0", "p", "")]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "text"])
    ds = build_dataset(frame[["user_id", "item_id"]])
    labels = _labels(ds, {u: 0 if u.startswith("m") else 1 for u in ds.user_ids.ids})
    (p, _) = build_profiles(ds, labels)
    assert p.top_items == ["w"]  # x, y, w have the same counts; the first id stands for them


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_no_two_top_items_of_a_group_show_the_same_figure(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items = 60, 25
    hits = rng.random((n_users, n_items)) < rng.uniform(0.05, 0.4, n_items)[None, :]
    users, items = np.nonzero(hits)
    frame = pd.DataFrame({"user_id": [f"u{u}" for u in users], "item_id": [f"i{i}" for i in items]})
    ds = build_dataset(frame)
    labels = rng.integers(0, 3, ds.n_users)
    for p in build_profiles(ds, labels, min_support=1):
        assert len(set(p.top_item_lifts)) == len(p.top_item_lifts)
        assert p.top_item_lifts == sorted(p.top_item_lifts, reverse=True)
        assert all(v == round(v, 2) for v in p.top_item_lifts)


@given(st.integers(1, 500), st.floats(0, 1))
def test_wilson_lower_bound_is_below_the_share_and_tightens_with_support(
    n: int, share: float
) -> None:
    k = np.floor(share * n)
    low = float(_wilson_lower(np.array(k), np.array(float(n)), 1.2816))
    assert 0 <= low <= k / n + 1e-12
    more = float(_wilson_lower(np.array(4 * k), np.array(4.0 * n), 1.2816))
    assert more >= low - 1e-12


def test_a_one_text_users_closing_still_rules_out_a_signature_issue_25() -> None:
    """Issue 25: tails of one-text users are read only when someone might have a
    signature, and then they still rule it out."""
    from usergroups.profiling.clean import signature_tails

    kenneth = ["Good pick. Cheers, Kenneth", "Loud amp! Cheers, Kenneth"]
    assert signature_tails(["k", "k"], kenneth) == {"k": {"cheers kenneth"}}
    assert signature_tails(["k", "k", "m"], [*kenneth, "Nice bag. Cheers, Kenneth"]) == {}
    assert signature_tails(["a", "b"], ["Fine strings. Bye, A", "Fine amp. Bye, B"]) == {}
