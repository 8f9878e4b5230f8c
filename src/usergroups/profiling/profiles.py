"""Group profiles: size, distinctive keywords, over-consumed items and categories, rating
behaviour, user attributes, representative texts and a label.

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
over the share of all users who did, among items with at least ``min_support`` members and
a lift above 1.
Item categories, user attribute values (age band, gender, occupation, ...) are ranked by the
same contrast as keywords, ``share * log(share / population share)``, so a value must be both
common in the group and more common than in the population. Representative texts are the
members' texts whose vectors lie closest to the group's semantic centroid.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups.data import Dataset

__all__ = [
    "PROFILE_LIST_COLUMNS",
    "GroupProfile",
    "attribute_columns",
    "build_profiles",
    "class_tfidf_keywords",
    "detect_language",
]

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
    """What a group is: its size, words, items, ratings, members and a short label.

    Attributes
    ----------
    group_id, size : int
    share : float
        ``size`` over all users (noise included).
    keywords, keyword_scores : list
        Distinctive terms of the members' texts, best first.
    top_items, top_item_titles, top_item_lifts : list
        Items the group over-consumes, by lift; titles are ``""`` where unknown.
    top_item_terms : list of str
        For items without a title, the most distinctive words of their reviews (``""`` for
        items with a title or without reviews).
    top_categories, top_category_lifts : list
        Item categories the group over-consumes (share of its interactions over the
        population's share).
    rating_mean, rating_low_share : float or None
        Mean rating of the members' interactions and the share at or below the low-rating
        threshold; None when the data has no ratings.
    population_rating_mean, population_rating_low_share : float or None
        The same over everybody, for comparison.
    attributes : list of dict
        Over-represented user attribute values: ``{"attribute", "value", "share",
        "population_share"}`` (share among members, and among all users, with the attribute).
    representative_texts : list of str
        Members' texts closest to the group's centroid, de-duplicated and shortened.
    stability : float or None
        How reliably the group comes back when users are resampled and the clustering is
        re-run: the mean, over resamples, of the best Jaccard index between this group's
        members and any group of the resample's clustering (Hennig's clusterboot). None
        when it was not measured.
    unstable : bool
        ``stability`` is below the configured threshold: shown and flagged, never hidden.
    label : str
        Short readable name from keywords and the top category.
    """

    group_id: int
    size: int
    share: float
    keywords: list[str] = field(default_factory=list)
    keyword_scores: list[float] = field(default_factory=list)
    top_items: list[str] = field(default_factory=list)
    top_item_titles: list[str] = field(default_factory=list)
    top_item_lifts: list[float] = field(default_factory=list)
    label: str = ""
    top_item_terms: list[str] = field(default_factory=list)
    top_categories: list[str] = field(default_factory=list)
    top_category_lifts: list[float] = field(default_factory=list)
    rating_mean: float | None = None
    rating_low_share: float | None = None
    population_rating_mean: float | None = None
    population_rating_low_share: float | None = None
    attributes: list[dict[str, Any]] = field(default_factory=list)
    representative_texts: list[str] = field(default_factory=list)
    stability: float | None = None
    unstable: bool = False

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
            "top_item_terms": list(self.top_item_terms),
            "top_categories": list(self.top_categories),
            "top_category_lifts": list(self.top_category_lifts),
            "rating_mean": _nan_if_none(self.rating_mean),
            "rating_low_share": _nan_if_none(self.rating_low_share),
            "population_rating_mean": _nan_if_none(self.population_rating_mean),
            "population_rating_low_share": _nan_if_none(self.population_rating_low_share),
            "attributes": [dict(a) for a in self.attributes],
            "representative_texts": list(self.representative_texts),
            "stability": _nan_if_none(self.stability),
            "unstable": bool(self.unstable),
        }


PROFILE_LIST_COLUMNS = (
    "keywords",
    "keyword_scores",
    "top_items",
    "top_item_titles",
    "top_item_lifts",
    "top_item_terms",
    "top_categories",
    "top_category_lifts",
    "representative_texts",
)
"""Columns of the groups table that hold a list per group (``attributes`` holds dicts)."""


def _nan_if_none(v: float | None) -> float:
    # a float column, so Parquet, DuckDB and Spark see a double with nulls, not objects
    return float("nan") if v is None else float(v)


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
    text_vectors: np.ndarray | None = None,
    semantic_centroids: np.ndarray | None = None,
    n_texts: int = 3,
    text_chars: int = 300,
    low_rating: float = 2.0,
    n_categories: int = 5,
    n_attribute_values: int = 3,
) -> list[GroupProfile]:
    """Profile every group (noise, label -1, is not profiled).

    Parameters
    ----------
    dataset : Dataset
    labels : ndarray of shape (n_users,)
        Group of each user in ``dataset.user_ids`` order.
    n_keywords, n_items : int
        Keywords and over-consumed items per group.
    min_support : int
        An item, category or attribute value needs this many members (or interactions).
    language : {"auto", "en", "zh"}
    text_vectors : ndarray of shape (n_texts, dim), optional
        One vector per row of ``dataset.texts``; without it there are no representative
        texts.
    semantic_centroids : ndarray of shape (n_groups, dim), optional
        The groups' centroids in the text space; by default the mean of the members' text
        vectors.
    n_texts, text_chars : int
        Representative texts per group, each cut to about ``text_chars`` characters.
    low_rating : float
        Ratings at or below this count as low.
    n_categories, n_attribute_values : int
        Over-consumed categories per group, over-represented values per user attribute.

    Returns
    -------
    list of GroupProfile
        One per group, in group order.

    Examples
    --------
    >>> from usergroups.testing import make_planted
    >>> planted = make_planted(n_users=60, n_groups=2, random_state=0)
    >>> labels = planted.labels_for(planted.dataset.user_ids.ids)
    >>> profiles = build_profiles(planted.dataset, labels, n_keywords=3)
    >>> [p.size for p in profiles]
    [30, 30]
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
        # over-consumed means more than the population: an item at lift <= 1 says nothing
        ok = np.flatnonzero((counts[g] >= support) & (lift[g] > 1.0))
        order = ok[np.lexsort((ok, -counts[g, ok], -lift[g, ok]))][:n_items]
        profile.top_items = [str(item_ids[i]) for i in order]
        profile.top_item_titles = [titles.get(str(item_ids[i]), "") for i in order]
        profile.top_item_lifts = [round(float(lift[g, i]), 4) for i in order]

    _add_item_terms(dataset, profiles, lang)
    if n_categories:
        _add_categories(
            dataset, profiles, counts, np.asarray(x.sum(axis=0)).ravel(), n_categories, min_support
        )
    _add_ratings(dataset, profiles, labels, low_rating)
    _add_attributes(dataset, profiles, labels, n_attribute_values, min_support)
    if n_texts and text_vectors is not None:
        _add_representative_texts(
            dataset, profiles, labels, text_vectors, semantic_centroids, n_texts, text_chars
        )
    for profile in profiles:
        profile.label = _label(profile)
    return profiles


def _contrast_rank(
    share: np.ndarray, population: np.ndarray, support: np.ndarray, min_support: float
) -> np.ndarray:
    """Indices of over-represented entries, best first, by ``share * log(share / population)``."""
    ok = (support >= min_support) & (population > 0) & (share > population)
    idx = np.flatnonzero(ok)
    score = share[idx] * np.log(share[idx] / population[idx])
    return idx[np.lexsort((idx, -score))]


def _add_item_terms(
    dataset: Dataset, profiles: list[GroupProfile], language: Literal["en", "zh"]
) -> None:
    """Describe top items that have no title by the distinctive words of their reviews."""
    texts = dataset.texts
    needed = sorted(
        {i for p in profiles for i, t in zip(p.top_items, p.top_item_titles, strict=True) if not t}
    )
    for p in profiles:
        p.top_item_terms = [""] * len(p.top_items)
    if not needed or not len(texts) or texts["item_id"].isna().all():
        return
    item_of = texts["item_id"].astype(object).to_numpy()
    position = {item: k for k, item in enumerate(needed)}
    buckets: list[list[str]] = [[] for _ in range(len(needed) + 1)]
    for item, text in zip(item_of, texts["text"].tolist(), strict=True):
        # the last document is every other review, so terms contrast with the whole corpus
        buckets[position.get(item, len(needed)) if isinstance(item, str) else len(needed)].append(
            text
        )
    docs = ["\n".join(b) for b in buckets]
    terms = class_tfidf_keywords(docs, 3, language=language, min_count=2)
    described = {item: ", ".join(t for t, _ in terms[k]) for item, k in position.items()}
    for p in profiles:
        p.top_item_terms = [
            "" if t else described.get(i, "")
            for i, t in zip(p.top_items, p.top_item_titles, strict=True)
        ]


def _add_categories(
    dataset: Dataset,
    profiles: list[GroupProfile],
    counts: np.ndarray,
    item_totals: np.ndarray,
    n: int,
    min_support: int,
) -> None:
    if dataset.items is None:
        return
    cats = (
        dataset.items.set_index("item_id")["categories"]
        .reindex(dataset.item_ids.ids)
        .fillna("")
        .astype(str)
    )
    rows: list[int] = []
    cols: list[int] = []
    vocab: dict[str, int] = {}
    for i, value in enumerate(cats.tolist()):
        for c in {c.strip() for c in value.split("|") if c.strip()}:
            rows.append(i)
            cols.append(vocab.setdefault(c, len(vocab)))
    if not vocab:
        return
    names = np.array(sorted(vocab, key=vocab.__getitem__), dtype=object)
    membership = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(cats), len(vocab)))
    group_cat = np.asarray(membership.T @ counts.T).T  # (n_groups, n_categories)
    pop_cat = np.asarray(membership.T @ item_totals).ravel()
    pop_share = pop_cat / max(float(item_totals.sum()), 1.0)
    for g, p in enumerate(profiles):
        total = float(counts[g].sum())
        if total <= 0:
            continue
        share = group_cat[g] / total
        order = _contrast_rank(share, pop_share, group_cat[g], min_support)[:n]
        p.top_categories = [str(names[j]) for j in order]
        p.top_category_lifts = [round(float(share[j] / pop_share[j]), 4) for j in order]


def _add_ratings(
    dataset: Dataset, profiles: list[GroupProfile], labels: np.ndarray, low_rating: float
) -> None:
    frame = dataset.interactions[["user_id", "rating"]]
    if frame["rating"].isna().all():
        # implicit interactions; the reviews may still carry stars
        frame = dataset.texts[["user_id", "rating"]]
    frame = frame[frame["rating"].notna()]
    if frame.empty:
        return
    rows = dataset.user_ids.index(frame["user_id"].tolist(), what="user_id")
    ratings = frame["rating"].to_numpy(np.float64)
    group = labels[rows]
    low = ratings <= low_rating
    pop_mean = round(float(ratings.mean()), 4)
    pop_low = round(float(low.mean()), 4)
    for g, p in enumerate(profiles):
        mine = group == g
        p.population_rating_mean, p.population_rating_low_share = pop_mean, pop_low
        if mine.any():
            p.rating_mean = round(float(ratings[mine].mean()), 4)
            p.rating_low_share = round(float(low[mine].mean()), 4)


_AGE_BANDS = (
    (0, "under 18"),
    (18, "18-24"),
    (25, "25-34"),
    (35, "35-44"),
    (45, "45-54"),
    (55, "55+"),
)
"""Lower bound and name of each age band (the MovieLens 1M bands, 45-49 and 50-55 joined)."""
_SKIPPED_ATTRIBUTES = {"user_id", "zip_code", "zip", "zipcode", "postcode", "postal_code"}
_MAX_VALUES = 50


def _age_band(age: float) -> str:
    name = _AGE_BANDS[0][1]
    for low, band in _AGE_BANDS:
        if age >= low:
            name = band
    return name


def attribute_columns(users: pd.DataFrame) -> dict[str, pd.Series]:
    """The user attributes worth profiling, as categorical string series indexed by user_id.

    Numeric ``age`` becomes age bands (skipped when an ``age_group`` column already gives
    them); other numeric columns with many values become quartile bins; text columns with
    more than 50 distinct values (zip codes, names) are skipped.
    """
    users = users.set_index("user_id")
    out: dict[str, pd.Series] = {}
    for col in users.columns:
        name = str(col)
        if name.lower() in _SKIPPED_ATTRIBUTES:
            continue
        s = users[col]
        if name.lower() == "age" and "age_group" in users.columns:
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            if name.lower() == "age":
                out["age band"] = s.map(lambda a: None if pd.isna(a) else _age_band(float(a)))
            elif s.nunique() > 12:
                out[name] = pd.qcut(s, 4, duplicates="drop").astype(str).where(s.notna())
            else:
                out[name] = s.map(lambda v: None if pd.isna(v) else f"{v:g}")
            continue
        s = s.astype(object).where(s.notna())
        values = s.dropna().astype(str).str.strip()
        if values.empty or values.nunique() > _MAX_VALUES:
            continue
        out[name.replace("_", " ")] = values.where(values != "").reindex(s.index)
    return out


def _add_attributes(
    dataset: Dataset, profiles: list[GroupProfile], labels: np.ndarray, n: int, min_support: int
) -> None:
    if dataset.users is None or dataset.users.empty:
        return
    group = pd.Series(labels, index=dataset.user_ids.ids)
    for attribute, values in attribute_columns(dataset.users).items():
        frame = pd.DataFrame({"g": group.reindex(values.index).to_numpy(), "v": values.to_numpy()})
        frame = frame[frame["v"].notna() & frame["g"].notna()]
        if frame.empty:
            continue
        table = pd.crosstab(frame["g"].astype(np.int64), frame["v"].astype(str))
        population = table.sum(axis=0).to_numpy(np.float64)
        population_share = population / population.sum()
        names = table.columns.to_numpy()
        for p in profiles:
            if p.group_id not in table.index:
                continue
            row = table.loc[p.group_id].to_numpy(np.float64)
            if row.sum() <= 0:
                continue
            share = row / row.sum()
            for j in _contrast_rank(share, population_share, row, min(min_support, p.size))[:n]:
                p.attributes.append(
                    {
                        "attribute": attribute,
                        "value": str(names[j]),
                        "share": round(float(share[j]), 4),
                        "population_share": round(float(population_share[j]), 4),
                    }
                )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    # Chinese has no spaces; never cut a text down to a sliver
    return (cut if len(cut) > limit // 2 else text[:limit]).rstrip(" ,;:.") + "…"


def _add_representative_texts(
    dataset: Dataset,
    profiles: list[GroupProfile],
    labels: np.ndarray,
    text_vectors: np.ndarray,
    centroids: np.ndarray | None,
    n: int,
    limit: int,
) -> None:
    texts = dataset.texts
    if not len(texts) or len(text_vectors) != len(texts):
        if len(text_vectors) != len(texts):
            logger.warning(
                "%d text vectors for %d texts; representative texts skipped",
                len(text_vectors),
                len(texts),
            )
        return
    vectors = np.asarray(text_vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    group = labels[dataset.user_ids.index(texts["user_id"].tolist(), what="user_id")]
    raw = texts["text"].tolist()
    for p in profiles:
        idx = np.flatnonzero(group == p.group_id)
        if not len(idx):
            continue
        if centroids is not None and p.group_id < len(centroids):
            centre = np.asarray(centroids[p.group_id], dtype=np.float64)
        else:
            centre = vectors[idx].mean(axis=0)
        norm = float(np.linalg.norm(centre))
        if norm == 0:
            continue
        sims = vectors[idx] @ (centre / norm)
        order = idx[np.lexsort((idx, -sims))]
        # texts of a few words are close to every centroid and say nothing; use them last
        informative = [i for i in order if len(raw[i].split()) >= 5 or _CJK.search(raw[i])]
        picked: list[str] = []
        seen: set[str] = set()
        for i in [*informative, *(i for i in order if i not in set(informative))]:
            key = " ".join(raw[i].lower().split())
            if not key or key in seen:
                continue
            seen.add(key)
            picked.append(_clip(raw[i], limit))
            if len(picked) == n:
                break
        p.representative_texts = picked


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
    """Three keywords and, where it adds something, the top category: ``a / b / c (Cat)``."""
    words = profile.keywords[:3]
    category = next(
        (
            c
            for c in profile.top_categories
            if not any(w.lower() in c.lower() or c.lower() in w.lower() for w in words)
        ),
        None,
    )
    if words:
        base = " / ".join(words)
    elif category:
        return category
    elif profile.top_item_titles and profile.top_item_titles[0]:
        return f"fans of {profile.top_item_titles[0]}"
    else:
        return f"group {profile.group_id}"
    return f"{base} ({category})" if category else base
