"""Minimal group profiles: size, distinctive keywords, over-consumed items, a label.

Keywords come from class-based term weighting (c-TF-IDF, as in BERTopic): all texts of a
group's members form one document. BERTopic's ``tf * log(1 + A / f(t))`` barely separates a
handful of large groups (a word every review uses scores high in the biggest group), so the
weight here contrasts the group with the rest of the population instead:
``tf(t, g) * log(tf(t, g) / tf(t, rest))``, the term's share of the group's tokens times the
log-ratio of that share to its share outside the group (one pseudo-count per term). It is the
group's contribution to the KL divergence from the rest: frequent *and* distinctive terms
win. English text drops stop words and keeps bigrams; Chinese
text is tokenised with jieba and keeps multi-character words only. Groups whose members
wrote nothing are described by the titles and categories of the items they consumed.

Items a group over-consumes are ranked by lift, the share of members who consumed the item
over the share of all users who did, among items with at least ``min_support`` members.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups.data import Dataset

__all__ = ["GroupProfile", "build_profiles", "class_tfidf_keywords", "detect_language"]

logger = logging.getLogger(__name__)

_CJK = re.compile(r"[\u4e00-\u9fff]")
_ZH_STOP = set(
    (
        "的 了 是 我 你 他 她 它 们 在 也 有 就 不 和 与 都 而 及 着 或 一个 没有 我们 你们 他们 "
        "这个 那个 什么 这样 还是 就是 但是 因为 所以 如果 自己 这部 一部 电影 感觉 觉得 真的 "
        "还有 已经 可以 这么 那么 一样 一些 一点 不是 只是 非常 其实 时候 最后 看到 知道 这种 之后"
    ).split()
)


@dataclass
class GroupProfile:
    """What a group is: its size, its words, its items and a short label."""

    group_id: int
    size: int
    share: float
    keywords: list[str] = field(default_factory=list)
    keyword_scores: list[float] = field(default_factory=list)
    top_items: list[str] = field(default_factory=list)
    top_item_titles: list[str] = field(default_factory=list)
    top_item_lifts: list[float] = field(default_factory=list)
    label: str = ""

    def to_record(self) -> dict[str, object]:
        return {
            "group_id": self.group_id,
            "size": self.size,
            "share": self.share,
            "label": self.label,
            "keywords": list(self.keywords),
            "keyword_scores": list(self.keyword_scores),
            "top_items": list(self.top_items),
            "top_item_titles": list(self.top_item_titles),
            "top_item_lifts": list(self.top_item_lifts),
        }


def detect_language(texts: Sequence[str]) -> Literal["en", "zh"]:
    """``"zh"`` when more than a fifth of a sample of characters are CJK, else ``"en"``."""
    sample = "".join(texts[:500])[:20000]
    if not sample:
        return "en"
    return "zh" if len(_CJK.findall(sample)) > 0.2 * len(sample) else "en"


def _zh_tokenizer(text: str) -> list[str]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return [
        w
        for w in jieba.lcut(text)
        if len(w) >= 2 and _CJK.search(w) and w not in _ZH_STOP and not w.isspace()
    ]


def class_tfidf_keywords(
    documents: Sequence[str],
    n: int = 10,
    *,
    language: Literal["en", "zh"] = "en",
    min_count: int = 2,
) -> list[list[tuple[str, float]]]:
    """The ``n`` most distinctive terms of each class document.

    Parameters
    ----------
    documents : sequence of str
        One document per class (all texts of a group joined).
    n : int
    language : {"en", "zh"}
    min_count : int
        A term must occur this often in the class to be one of its keywords.

    Returns
    -------
    list of list of (term, score)
        One list per document, best first.

    Examples
    --------
    >>> kw = class_tfidf_keywords(["guitar strings guitar", "drum sticks drum"], n=1)
    >>> kw[0][0][0], kw[1][0][0]
    ('guitar', 'drum')
    """
    from sklearn.feature_extraction.text import CountVectorizer

    if not any(d.strip() for d in documents):
        return [[] for _ in documents]
    if language == "zh":
        vec = CountVectorizer(tokenizer=_zh_tokenizer, lowercase=False, token_pattern=None)
    else:
        vec = CountVectorizer(
            stop_words="english",
            ngram_range=(1, 2),
            token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9\-]+\b",
            min_df=1,
        )
    try:
        counts = sp.csr_matrix(vec.fit_transform(documents), dtype=np.float64)
    except ValueError:  # every document was only stop words
        return [[] for _ in documents]
    terms = vec.get_feature_names_out()
    c = counts.toarray()
    totals = c.sum(axis=1, keepdims=True)
    tf = np.divide(c, totals, out=np.zeros_like(c), where=totals > 0)
    # the rest of the population, with one pseudo-count per term so unseen terms stay finite
    rest = (c.sum(axis=0, keepdims=True) - c + 1.0) / (totals.sum() - totals + c.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        dense = np.where(c >= min_count, tf * np.log(tf / rest), 0.0)
    scores = sp.csr_matrix(np.where(dense > 0, dense, 0.0))
    out: list[list[tuple[str, float]]] = []
    for row in range(scores.shape[0]):
        start, end = scores.indptr[row], scores.indptr[row + 1]
        idx, vals = scores.indices[start:end], scores.data[start:end]
        order = np.lexsort((idx, -vals))[: n * 3]
        picked: list[tuple[str, float]] = []
        for j in order:
            term = str(terms[idx[j]])
            # a unigram already inside a picked bigram adds nothing
            if any(term in p.split() or p in term.split() for p, _ in picked):
                continue
            picked.append((term, float(vals[j])))
            if len(picked) == n:
                break
        out.append(picked)
    return out


def build_profiles(
    dataset: Dataset,
    labels: np.ndarray,
    *,
    n_keywords: int = 10,
    n_items: int = 10,
    min_support: int = 3,
    language: Literal["auto", "en", "zh"] = "auto",
) -> list[GroupProfile]:
    """Profile every group (noise, label -1, is not profiled).

    Parameters
    ----------
    dataset : Dataset
    labels : ndarray of shape (n_users,)
        Group of each user in ``dataset.user_ids`` order.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_groups = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    sizes = np.bincount(labels[labels >= 0], minlength=n_groups)
    n_users = len(labels)
    profiles = [
        GroupProfile(group_id=g, size=int(sizes[g]), share=float(sizes[g] / max(n_users, 1)))
        for g in range(n_groups)
    ]
    if n_groups == 0:
        return profiles

    docs = _group_documents(dataset, labels, n_groups)
    lang: Literal["en", "zh"] = detect_language(docs) if language == "auto" else language
    for profile, kws in zip(
        profiles, class_tfidf_keywords(docs, n_keywords, language=lang), strict=True
    ):
        profile.keywords = [t for t, _ in kws]
        profile.keyword_scores = [round(s, 6) for _, s in kws]

    x = dataset.interaction_matrix()
    x.data[:] = 1.0
    members = labels >= 0
    assign = sp.csr_matrix(
        (np.ones(members.sum()), (labels[members], np.flatnonzero(members))),
        shape=(n_groups, n_users),
    )
    counts = np.asarray((assign @ x).todense())
    pop = np.asarray(x.sum(axis=0)).ravel() / max(n_users, 1)
    share = counts / np.maximum(sizes, 1)[:, None]
    lift = np.divide(share, pop[None, :], out=np.zeros_like(share), where=pop[None, :] > 0)
    titles = dataset.item_titles()
    item_ids = dataset.item_ids.ids
    for g, profile in enumerate(profiles):
        support = max(1, min(min_support, int(sizes[g])))
        ok = np.flatnonzero(counts[g] >= support)
        order = ok[np.lexsort((ok, -counts[g, ok], -lift[g, ok]))][:n_items]
        profile.top_items = [str(item_ids[i]) for i in order]
        profile.top_item_titles = [titles.get(str(item_ids[i]), "") for i in order]
        profile.top_item_lifts = [round(float(lift[g, i]), 4) for i in order]
        profile.label = _label(profile)
    return profiles


def _group_documents(dataset: Dataset, labels: np.ndarray, n_groups: int) -> list[str]:
    texts = dataset.texts
    user_group = pd.Series(labels, index=dataset.user_ids.ids)
    docs = [""] * n_groups
    if len(texts):
        g = user_group.reindex(texts["user_id"].to_numpy()).to_numpy()
        frame = pd.DataFrame({"g": g, "text": texts["text"].to_numpy()})
        frame = frame[frame["g"] >= 0]
        for gid, chunk in frame.groupby("g"):
            docs[int(str(gid))] = "\n".join(chunk["text"].tolist())
    # groups whose members wrote nothing speak through the items they consumed
    empty = [g for g in range(n_groups) if not docs[g].strip()]
    if empty and dataset.items is not None:
        items = dataset.items.set_index("item_id")
        desc = (items["title"] + " " + items["categories"].str.replace("|", " ")).to_dict()
        inter = dataset.interactions
        g = user_group.reindex(inter["user_id"].to_numpy()).to_numpy()
        for gid in empty:
            chosen = inter["item_id"].to_numpy()[g == gid]
            docs[gid] = "\n".join(desc.get(i, "") for i in chosen)
    return docs


def _label(profile: GroupProfile) -> str:
    words = profile.keywords[:3]
    if words:
        return " / ".join(words)
    if profile.top_item_titles and profile.top_item_titles[0]:
        return f"fans of {profile.top_item_titles[0]}"
    return f"group {profile.group_id}"
