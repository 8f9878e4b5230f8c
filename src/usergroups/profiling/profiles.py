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

Keywords are counted per member, in text cleaned as for embedding (see
:mod:`usergroups.profiling.clean`): a member's near-duplicate texts count once, term counts
are damped (``1 + log(count)`` per member) so one prolific reviewer cannot carry a group,
and a keyword must be used by at least ``min_members`` distinct members (3), so no keyword
points at one person. In a group of more than :data:`KEYWORD_WRITERS` writers the keywords
are counted on a seeded sample of that many of them and the counts scaled back to the
group's size (issue 25: a million texts took minutes to clean and count; measured, the
sample keeps the same top keywords, see ``docs/speed.md``). Review filler (``product``,
``bought``) and markup never become keywords; praise and criticism (``great``, ``love``,
``不错``) stay but weigh half, and a group whose keywords are mostly such words is
flagged ``label_kind="sentiment"``.

Items a group over-consumes are ranked by the 90 % lower confidence bound of their lift:
the Wilson lower bound (one-sided 90 %) of the share of members who consumed the item,
over the share of all users who did. An item only a group bought in a group of 100 shows
about ×8.2 with 5 buyers and ×11.7 with 30, where the plain lift ties at ×14.3 for both:
support counts. Items need ``min_support`` members and a lift above 1 (the bound of an
item with little support can be below 1: over-consumed, without confidence). Exact ties
(the same counts) cannot be ordered by any statistic, so each displayed figure (two
decimals) is shown once: a further item with the same figure is folded into the one listed
(the one with more buyers, then the first item id).
Item categories, user attribute values (age band, gender, occupation, ...) are ranked by the
same contrast as keywords, ``share * log(share / population share)``, so a value must be both
common in the group and more common than in the population. Representative texts are the
members' texts whose vectors lie closest to the group's semantic centroid.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups.data import Dataset
from usergroups.embedding.text import clean_text
from usergroups.errors import ConfigError
from usergroups.linalg import unit_rows
from usergroups.profiling.clean import (
    PreparedTexts,
    ends_with_signature,
    is_sentiment,
    keyword_text,
    scrub_personal,
    signature_tails,
    tokenize,
)

__all__ = [
    "PROFILE_LIST_COLUMNS",
    "GroupProfile",
    "attribute_columns",
    "build_profiles",
    "class_tfidf_keywords",
    "detect_language",
    "rank_top_items",
]

logger = logging.getLogger(__name__)

_CJK = re.compile(r"[\u4e00-\u9fff]")
SENTIMENT_WEIGHT = 0.5
"""Praise and criticism keywords weigh this much: shown, but behind topic words."""
_LIFT_Z = 1.2815515655446004
"""One-sided 90 % normal quantile for the lower bound of an item's lift."""
_SENTIMENT_SHARE = 0.5
KEYWORD_WRITERS = 10_000
"""Keywords of a group with more writers are counted on a seeded sample of this many."""


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
        Items the group over-consumes, best first; titles are ``""`` where unknown.
        ``top_item_lifts`` (the name kept for compatibility) is the **lift, 90 % lower
        bound**: the Wilson lower bound of the members' share who consumed the item over the
        share of all users, rounded to two decimals; no two items of a group show the same
        figure.
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
        Short readable name from keywords and the top category; topic words come first,
        and a group flagged ``"sentiment"`` is named ``"sentiment: ..."``.
    label_kind : {"topic", "sentiment"}
        ``"sentiment"`` when at least half of the group's most distinctive terms (before
        down-weighting) are praise, criticism or style rather than what it is about.
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
    label_kind: str = "topic"

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
            "label_kind": self.label_kind,
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


def _vectorizer(language: Literal["en", "zh"], *, prepared: bool = False) -> Any:
    from sklearn.feature_extraction.text import CountVectorizer

    def analyze(text: str) -> list[str]:
        return tokenize(text, language, prepared=prepared)

    return CountVectorizer(analyzer=analyze)


def _contrast_scores(
    c: np.ndarray, min_count: float, sentiment: np.ndarray | None = None
) -> np.ndarray:
    """``tf * log(tf / rest)`` of each (class, term), 0 where not positive or too rare.

    ``c`` has shape (n_classes, n_terms); ``sentiment`` (n_terms,) marks terms whose score
    is multiplied by :data:`SENTIMENT_WEIGHT`.
    """
    totals = c.sum(axis=1, keepdims=True)
    tf = np.divide(c, totals, out=np.zeros_like(c), where=totals > 0)
    # the rest of the population, with one pseudo-count per term so unseen terms stay finite
    rest = (c.sum(axis=0, keepdims=True) - c + 1.0) / (totals.sum() - totals + c.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        dense = np.where((c >= min_count) & (tf > 0), tf * np.log(tf / rest), 0.0)
    dense = np.where(dense > 0, dense, 0.0)
    if sentiment is not None:
        dense = dense * np.where(sentiment, SENTIMENT_WEIGHT, 1.0)[None, :]
    return dense


def _pick_terms(terms: np.ndarray, row: np.ndarray, n: int) -> list[tuple[str, float]]:
    """The ``n`` best terms of one class, a unigram inside a picked bigram left out."""
    idx = np.flatnonzero(row > 0)
    vals = row[idx]
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
    return picked


def class_tfidf_keywords(
    documents: Sequence[str],
    n: int = 10,
    *,
    language: Literal["en", "zh"] = "en",
    min_count: int = 2,
) -> list[list[tuple[str, float]]]:
    """The ``n`` most distinctive terms of each class document.

    Texts are cleaned and tokenised by :func:`usergroups.profiling.clean.tokenize` (no
    markup, filler, contraction fragments or words under three characters); praise and
    criticism weigh :data:`SENTIMENT_WEIGHT`.

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
    if not any(d.strip() for d in documents):
        return [[] for _ in documents]
    vec = _vectorizer(language)
    try:
        counts = vec.fit_transform(documents)
    except ValueError:  # every document was only stop words
        return [[] for _ in documents]
    terms = vec.get_feature_names_out()
    sentiment = np.array([is_sentiment(str(t), language) for t in terms], dtype=bool)
    scores = _contrast_scores(counts.toarray().astype(np.float64), min_count, sentiment)
    return [_pick_terms(terms, scores[row], n) for row in range(scores.shape[0])]


def _member_keywords(
    dataset: Dataset,
    labels: np.ndarray,
    n_groups: int,
    member_docs: tuple[list[str], list[str], np.ndarray],
    n: int,
    language: Literal["en", "zh"],
    min_members: int,
) -> tuple[list[list[tuple[str, float]]], list[bool]]:
    """Keywords of each group counted per member, and whether each group reads as sentiment.

    ``member_docs`` is :func:`_member_documents`'s answer; a sampled group's sums are
    multiplied by its scale, so they estimate the whole group's.

    Returns the keywords (best first, sentiment down-weighted) and, per group, whether at
    least half of its ``n`` best terms before down-weighting are sentiment terms.
    """
    user_ids, docs, scale = member_docs
    empty: tuple[list[list[tuple[str, float]]], list[bool]] = (
        [[] for _ in range(n_groups)],
        [False] * n_groups,
    )
    if not any(d.strip() for d in docs):
        return empty
    vec = _vectorizer(language, prepared=True)
    try:
        per_user = sp.csr_matrix(vec.fit_transform(docs), dtype=np.float64)
    except ValueError:  # every document was only stop words
        return empty
    terms = vec.get_feature_names_out()
    group = labels[dataset.user_ids.index(user_ids, what="user_id")]
    assign = sp.csr_matrix(
        (np.ones(len(group)), (group, np.arange(len(group)))), shape=(n_groups, len(group))
    )
    used = per_user.copy()
    used.data[:] = 1.0
    damped = per_user.copy()
    # one prolific reviewer must not carry a group's vocabulary: sublinear counts per member
    damped.data = 1.0 + np.log(damped.data)
    raw = np.asarray((assign @ per_user).todense()) * scale[:, None]
    members = np.asarray((assign @ used).todense()) * scale[:, None]
    weights = np.asarray((assign @ damped).todense()) * scale[:, None]
    writers = np.asarray(assign @ (per_user.sum(axis=1) > 0).astype(np.float64)).ravel() * scale
    sentiment = np.array([is_sentiment(str(t), language) for t in terms], dtype=bool)
    # a keyword used by fewer than min_members people points at them; a group with fewer
    # writers than that (tiny groups) relaxes the rule to all of its writers
    need = np.minimum(float(min_members), np.maximum(writers, 1.0))[:, None]
    allowed = (members >= need) & (raw >= 2)
    plain = np.where(allowed, _contrast_scores(weights, 0.0), 0.0)
    scored = np.where(allowed, _contrast_scores(weights, 0.0, sentiment), 0.0)
    keywords = [_pick_terms(terms, scored[g], n) for g in range(n_groups)]
    flags = []
    for g in range(n_groups):
        best = [t for t, _ in _pick_terms(terms, plain[g], n)]
        flags.append(bool(best) and _sentiment_share(best, language) >= _SENTIMENT_SHARE)
    return keywords, flags


def _sentiment_share(words: Sequence[str], language: Literal["en", "zh"]) -> float:
    return sum(is_sentiment(w, language) for w in words) / max(len(words), 1)


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
    item_names: Mapping[str, str] | None = None,
    min_members: int = 3,
    keyword_writers: int | None = KEYWORD_WRITERS,
    random_state: int | None = 0,
    texts_memo: PreparedTexts | None = None,
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
    min_members : int
        A keyword must be used by this many distinct members (all of a group's writers when
        it has fewer), so that no keyword points at one person.
    keyword_writers : int or None
        A group with more writers has its keywords counted on a sample of this many
        (seeded by ``random_state``), its counts scaled to the group's size; None counts
        every text.
    random_state : int or None
        Seed of that sample.
    texts_memo : PreparedTexts, optional
        ``dataset.texts`` prepared for keywords, shared by the profiles of one fit
        (:class:`~usergroups.profiling.clean.PreparedTexts`); built here when not given.
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
    item_names : mapping of str to str, optional
        Names of items derived once per fit from their reviews
        (:func:`usergroups.profiling.derive_item_names`); ``top_item_terms`` shows them for
        top items without a title. Without it, the terms are computed for those items here.

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

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 76 lines.
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

    if keyword_writers is not None and keyword_writers < 1:
        raise ConfigError(
            f"keyword_writers must be a positive number of writers or None, got {keyword_writers}"
        )
    member_docs = _member_documents(
        dataset, labels, n_groups, keyword_writers, random_state, texts_memo
    )
    lang: Literal["en", "zh"] = detect_language(member_docs[1]) if language == "auto" else language
    keywords, sentiment = _member_keywords(
        dataset, labels, n_groups, member_docs, n_keywords, lang, min_members
    )
    for profile, kws, flag in zip(profiles, keywords, sentiment, strict=True):
        profile.keywords = [t for t, _ in kws]
        profile.keyword_scores = [round(s, 6) for _, s in kws]
        profile.label_kind = "sentiment" if flag else "topic"

    x = dataset.interaction_matrix()
    x.data[:] = 1.0
    members = labels >= 0
    assign = sp.csr_matrix(
        (np.ones(members.sum()), (labels[members], np.flatnonzero(members))),
        shape=(n_groups, n_users),
    )
    counts = np.asarray((assign @ x).todense())
    pop = np.asarray(x.sum(axis=0)).ravel() / max(n_users, 1)
    titles = dataset.item_titles()
    item_ids = dataset.item_ids.ids
    top = rank_top_items(counts, sizes, pop, n_items=n_items, min_support=min_support)
    for profile, (order, lifts) in zip(profiles, top, strict=True):
        profile.top_items = [str(item_ids[i]) for i in order]
        profile.top_item_titles = [titles.get(str(item_ids[i]), "") for i in order]
        profile.top_item_lifts = lifts

    _add_item_terms(dataset, profiles, lang, item_names)
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
        profile.label = _label(profile, lang)
    return profiles


def rank_top_items(
    counts: np.ndarray,
    sizes: np.ndarray,
    pop: np.ndarray,
    *,
    n_items: int,
    min_support: int,
) -> list[tuple[np.ndarray, list[float]]]:
    """Items each group over-consumes, ranked by the lift's 90 % lower bound (see the module).

    The one ranking of :func:`build_profiles` and of the Spark engine.

    Parameters
    ----------
    counts : ndarray of shape (n_groups, n_items)
        Members of each group who consumed each item.
    sizes : ndarray of shape (n_groups,)
        Members of each group.
    pop : ndarray of shape (n_items,)
        Share of all users who consumed each item.
    n_items : int
        Items listed per group, at most.
    min_support : int
        Members an item needs (at most the group's size).

    Returns
    -------
    list of (ndarray, list of float)
        Per group, the indices of its top items and their lifts' lower bounds (two
        decimals), one item per displayed figure.
    """
    counts = np.asarray(counts, dtype=np.float64)
    sizes = np.asarray(sizes).astype(np.int64)
    share = counts / np.maximum(sizes, 1)[:, None]
    lower = _wilson_lower(counts, np.maximum(sizes, 1)[:, None], _LIFT_Z)
    lift_low = np.divide(lower, pop[None, :], out=np.zeros_like(share), where=pop[None, :] > 0)
    out = []
    for g in range(len(sizes)):
        support = max(1, min(min_support, int(sizes[g])))
        # over-consumed means more than the population: an item at lift <= 1 says nothing;
        # min_support, not the bound, decides how much evidence an item needs to be listed
        ok = np.flatnonzero((counts[g] >= support) & (counts[g] > sizes[g] * pop))
        ranked = ok[np.lexsort((ok, -counts[g, ok], -lift_low[g, ok]))]
        shown = np.round(lift_low[g, ranked], 2)
        # equal figures cannot be told apart by the reader: show each figure once
        distinct = np.concatenate(([True], shown[1:] != shown[:-1]))[: len(ranked)]
        order = ranked[distinct][:n_items]
        out.append((order, [round(float(lift_low[g, i]), 2) for i in order]))
    return out


def _wilson_lower(k: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """Wilson score lower bound of the proportion ``k / n`` (shapes broadcast).

    Examples
    --------
    >>> round(float(_wilson_lower(np.array(30.0), np.array(100.0), 1.2816)), 4)
    0.2449
    """
    p = k / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * np.sqrt(np.maximum(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return np.asarray(np.maximum((centre - spread) / (1 + z2 / n), 0.0))


def _contrast_rank(
    share: np.ndarray, population: np.ndarray, support: np.ndarray, min_support: float
) -> np.ndarray:
    """Indices of over-represented entries, best first, by ``share * log(share / population)``."""
    ok = (support >= min_support) & (population > 0) & (share > population)
    idx = np.flatnonzero(ok)
    score = share[idx] * np.log(share[idx] / population[idx])
    return idx[np.lexsort((idx, -score))]


def _add_item_terms(
    dataset: Dataset,
    profiles: list[GroupProfile],
    language: Literal["en", "zh"],
    item_names: Mapping[str, str] | None = None,
) -> None:
    """Describe top items that have no title by the distinctive words of their reviews.

    With ``item_names`` (the names the fit derived once for every item,
    :func:`usergroups.profiling.derive_item_names`), those are used as they are.
    """
    texts = dataset.texts
    needed = sorted(
        {i for p in profiles for i, t in zip(p.top_items, p.top_item_titles, strict=True) if not t}
    )
    for p in profiles:
        p.top_item_terms = [""] * len(p.top_items)
    if item_names is not None:
        for p in profiles:
            p.top_item_terms = [
                "" if t else item_names.get(i, "")
                for i, t in zip(p.top_items, p.top_item_titles, strict=True)
            ]
        return
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
    vectors = unit_rows(text_vectors, dtype="float64")
    group = labels[dataset.user_ids.index(texts["user_id"].tolist(), what="user_id")]
    raw = texts["text"].tolist()
    authors = texts["user_id"].astype(str).tolist()
    signatures = signature_tails(authors, raw)
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
        # the set once (issue 16: rebuilt per text it made a group of 125k texts quadratic)
        is_informative = set(informative)
        picked: list[str] = []
        seen: set[str] = set()
        for i in [*informative, *(i for i in order if i not in is_informative)]:
            key = " ".join(raw[i].lower().split())
            if not key or key in seen:
                continue
            seen.add(key)
            # a text signed by its author names them: leave it out rather than cut it
            if ends_with_signature(raw[i], signatures.get(str(authors[i]), set())):
                continue
            shown = _readable(raw[i])
            if shown:
                picked.append(_clip(shown, limit))
            if len(picked) == n:
                break
        p.representative_texts = picked


def _readable(text: str) -> str:
    """A text as shown to people: cleaned, links, e-mail addresses and phones replaced.

    Links are marked before cleaning (which would drop them silently) and personal data is
    scrubbed again after it, in case an entity hid an ``@``.
    """
    return scrub_personal(clean_text(scrub_personal(text)))


def _member_documents(
    dataset: Dataset,
    labels: np.ndarray,
    n_groups: int,
    max_writers: int | None = None,
    random_state: int | None = 0,
    texts_memo: PreparedTexts | None = None,
) -> tuple[list[str], list[str], np.ndarray]:
    """One document per grouped user who wrote something: their distinct texts joined.

    Texts are prepared by :func:`~usergroups.profiling.clean.keyword_text` (cleaned, no
    personal data). A user's near-duplicate texts count once. Groups whose members wrote
    nothing speak through the titles and categories of the items each member consumed.
    A group with more than ``max_writers`` writers keeps a seeded sample of that many.
    ``texts_memo`` (built from ``dataset.texts``) shares the prepared texts between the
    profiles of one fit.

    Returns the users, their documents and, per group, writers over sampled writers (1
    where every writer is kept).
    """
    texts = dataset.texts
    user_group = pd.Series(labels, index=dataset.user_ids.ids)
    docs: dict[str, list[str]] = {}
    scale = np.ones(n_groups, dtype=np.float64)
    if len(texts):
        users = texts["user_id"].astype(str).to_numpy()
        raw = texts["text"].tolist()
        g = user_group.reindex(users).to_numpy()
        grouped = np.flatnonzero(g >= 0)
        if max_writers is not None:
            grouped, scale = _sample_writers(users, g, grouped, n_groups, max_writers, random_state)
        memo = texts_memo if texts_memo is not None else PreparedTexts(users.tolist(), raw)
        if len(memo) != len(raw):
            raise ValueError(f"texts_memo holds {len(memo)} texts for the dataset's {len(raw)}")
        prepared = memo.prepared(grouped)
        keep = memo.distinct(grouped)
        for i, text, k in zip(grouped, prepared, keep, strict=True):
            if k and text:
                docs.setdefault(users[i], []).append(text)
    spoken = {int(user_group[u]) for u in docs}
    empty = [g for g in range(n_groups) if g not in spoken]
    if empty and dataset.items is not None:
        items = dataset.items.set_index("item_id")
        desc = (items["title"] + " " + items["categories"].str.replace("|", " ")).to_dict()
        inter = dataset.interactions
        g = user_group.reindex(inter["user_id"].to_numpy()).to_numpy()
        for user, item in zip(
            inter["user_id"].to_numpy()[np.isin(g, empty)],
            inter["item_id"].to_numpy()[np.isin(g, empty)],
            strict=True,
        ):
            docs.setdefault(str(user), []).append(keyword_text(str(desc.get(item, ""))))
    user_ids = list(docs)
    return user_ids, ["\n".join(docs[u]) for u in user_ids], scale


def _sample_writers(
    users: np.ndarray,
    groups: np.ndarray,
    grouped: np.ndarray,
    n_groups: int,
    max_writers: int,
    random_state: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``grouped`` (texts of grouped users) whose authors are in a seeded sample
    of at most ``max_writers`` writers per group, and each group's writers over sampled."""
    codes, writers = pd.factorize(users[grouped])
    group_of = np.zeros(len(writers), dtype=np.int64)
    group_of[codes] = groups[grouped]  # one group per user
    n_writers = np.bincount(group_of, minlength=n_groups)
    scale = np.ones(n_groups, dtype=np.float64)
    if n_writers.max(initial=0) <= max_writers:
        return grouped, scale
    rng = np.random.default_rng(random_state)
    keep = np.ones(len(writers), dtype=bool)
    for g in np.flatnonzero(n_writers > max_writers):
        members = np.flatnonzero(group_of == g)
        keep[members] = False
        keep[rng.choice(members, size=max_writers, replace=False)] = True
        scale[g] = n_writers[g] / max_writers
    logger.info(
        "keywords counted on %d of %d writers (at most %d per group)",
        int(keep.sum()),
        len(writers),
        max_writers,
    )
    return grouped[keep[codes]], scale


def _label(profile: GroupProfile, language: Literal["en", "zh"] = "en") -> str:
    """Three keywords and, where it adds something, the top category: ``a / b / c (Cat)``.

    Topic words come before praise and criticism, so ``great`` leads a label only when the
    group has nothing else to say; such a group (``label_kind == "sentiment"``) is named
    ``sentiment: great / love / ...``.
    """
    ordered = [w for w in profile.keywords if not is_sentiment(w, language)] + [
        w for w in profile.keywords if is_sentiment(w, language)
    ]
    words = ordered[:3]
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
    if profile.label_kind == "sentiment":
        base = f"sentiment: {base}"
    return f"{base} ({category})" if category else base
