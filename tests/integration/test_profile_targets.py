"""Issue 14's profile targets on every shared text dataset.

No keyword shorter than 3 characters unless CJK, no HTML or markup token, no keyword used by
fewer than 3 members, no two listed top items of a group with the same displayed figure, and
no e-mail, phone or link in a representative text. Groups come from a cheap clustering of
the behaviour matrix (the encoder is not needed to check the profiles).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from shared_data import require_dataset
from usergroups.data import Dataset
from usergroups.datasets import get_spec, load_dataset
from usergroups.embedding.hashing import HashingEncoder
from usergroups.profiling import GroupProfile, build_profiles
from usergroups.profiling.clean import keyword_text

_CJK = re.compile(r"[\u4e00-\u9fff]")
_MARKUP = re.compile(
    r"^(?:nbsp|href|src|https?|www|html?|quot|apos|div|img|data-.*|aria-.*|a-.*|.*link-.*)$"
)
_WORD = re.compile(r"[a-z0-9][a-z0-9-]*")
_PERSONAL = re.compile(r"[\w.+-]+@\w+\.\w+|https?://|www\.|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}")


def _groups(ds: Dataset, k: int = 8) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD

    x = ds.interaction_matrix()
    x.data[:] = 1.0
    z = TruncatedSVD(16, random_state=0).fit_transform(x)
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
    return np.asarray(KMeans(k, n_init=2, random_state=0).fit_predict(z), dtype=np.int64)


def _members_using(word: str, texts: list[str], words: list[set[str]]) -> int:
    if _CJK.search(word):
        return sum(word in t for t in texts)
    return sum(word in w for w in words)


@pytest.mark.parametrize(
    "name", ["amazon2014:musical-instruments", "yelp-10k", "douban-small"], ids=str
)
def test_profiles_meet_the_issue_14_targets(name: str, data_dir: Path) -> None:
    require_dataset(data_dir, get_spec(name).folder)
    ds = load_dataset(name, data_dir)
    labels = _groups(ds)
    vectors = np.asarray(HashingEncoder(dim=64).encode(ds.texts["text"].tolist()))
    profiles = build_profiles(ds, labels, text_vectors=vectors)
    # every member's texts, prepared as keywords see them, to count who uses a word
    group_of = dict(zip(ds.user_ids.ids, labels, strict=True))
    texts: list[dict[str, str]] = [{} for _ in profiles]
    for user, text in zip(ds.texts["user_id"], ds.texts["text"], strict=True):
        mine = texts[group_of[user]]
        mine[user] = mine.get(user, "") + " " + keyword_text(text).lower()
    assert any(p.keywords for p in profiles)
    for p in profiles:
        _check(p, texts[p.group_id])


def _check(p: GroupProfile, texts_by_member: dict[str, str]) -> None:
    texts = list(texts_by_member.values())
    words = [set(_WORD.findall(t)) for t in texts]
    for keyword in p.keywords:
        for word in keyword.split():
            assert len(word) >= 3 or _CJK.search(word), (p.group_id, keyword)
            assert not _MARKUP.match(word), (p.group_id, keyword)
            assert _members_using(word, texts, words) >= 3, (p.group_id, keyword)
    shown = [f"{v:.2f}" for v in p.top_item_lifts]
    assert len(set(shown)) == len(shown), (p.group_id, shown)
    for text in p.representative_texts:
        assert not _PERSONAL.search(text), (p.group_id, text)
