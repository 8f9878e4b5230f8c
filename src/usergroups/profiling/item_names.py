"""Short names for items without a title, from the words of their own reviews.

Many review datasets (Amazon 5-core files, Yelp, Douban) carry item ids but no titles, so an
item would be shown as ``B0002E1G5C``. :func:`derive_item_names` names each such item by the
few terms that most distinguish its reviews from all other reviews, e.g.
``"elixir, nanoweb, coated strings"``. The names are derived once per fit, stored in the
fitted state and in ``items.parquet`` (column ``name``, ``name_source = "reviews"``), and
shown wherever an item is (``groups``, ``recommend``, ``assign``, the service, the report),
marked as derived.

The weight is the one group keywords use (:func:`usergroups.profiling.class_tfidf_keywords`),
with the item as the class: ``tf(t, i) * log(tf(t, i) / tf(t, rest))``, the term's share of
the item's tokens times the log-ratio to its share in every other review (one pseudo-count
per term). All items are scored in one sparse pass: one document-term matrix over the
reviews, summed into items with an indicator matrix, so the cost is that of tokenising the
reviews once, not one TF-IDF per item.

Reviews are tokenised as group keywords are (:func:`usergroups.profiling.clean.tokenize`:
markup, contractions, stop words and review filler out, bigrams of adjacent kept words), and
praise or criticism (:func:`~usergroups.profiling.clean.is_sentiment`: ``great``, ``cheap``)
never names an item: it says how reviewers felt, not what the item is.

A term must be used by at least ``min_reviewers`` distinct reviewers of the item, so a single
reviewer's signature ("kenneth", "haft") or a review pasted under several product variants
never names an item, and no name identifies one person. Items none of whose terms pass stay
unnamed and are shown by their id.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups.profiling.clean import PreparedTexts, is_sentiment, keyword_texts, tokenize
from usergroups.profiling.profiles import detect_language
from usergroups.shown_names import DERIVED_MARK, NameSource, shown_name

__all__ = [
    "DERIVED_MARK",
    "NameSource",
    "derive_item_names",
    "shown_name",
    "with_top_item_names",
]

logger = logging.getLogger(__name__)


def _same_word(a: str, b: str) -> bool:
    """``a`` and ``b`` share a word, up to a plural: ``cable`` / ``xlr cables``."""
    return any(_plural_equal(x, y) for x in a.split() for y in b.split())


def _plural_equal(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    return long in (short, short + "s", short + "es") or (
        short.endswith("y") and long == short[:-1] + "ies"
    )


def _pick(candidates: list[str], n: int) -> list[str]:
    """The first ``n`` candidates (best first) that are not the same word as a better one.

    A bigram replaces the unigram it contains (``"ernie"`` becomes ``"ernie ball"``): it is
    the more precise name for the same thing.
    """
    picked: list[str] = []
    for term in candidates:
        if len(picked) == n:
            break
        same = [k for k, p in enumerate(picked) if _same_word(term, p)]
        if not same:
            picked.append(term)
        elif " " in term and all(" " not in picked[k] for k in same):
            picked[same[0]] = term
            picked = [p for k, p in enumerate(picked) if k not in same[1:]]
    return picked


def _indicator(codes: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """Rows = classes, columns = positions: a 1 where ``codes[j] == row``."""
    return sp.csr_matrix(
        (np.ones(len(codes), dtype=np.float64), (codes, np.arange(len(codes)))),
        shape=(n_rows, len(codes)),
    )


def derive_item_names(
    texts: pd.DataFrame,
    *,
    exclude: Collection[str] = (),
    n_terms: int = 3,
    min_reviewers: int = 2,
    language: Literal["auto", "en", "zh"] = "auto",
    texts_memo: PreparedTexts | None = None,
) -> dict[str, str]:
    """Name every reviewed item by the most distinctive terms of its reviews.

    Parameters
    ----------
    texts : DataFrame with columns ``user_id, item_id, text``
        One row per review (``Dataset.texts``); rows without an ``item_id`` only add to the
        background the terms are contrasted with.
    exclude : collection of str
        Items not to name (those with a title); their reviews still form the background.
    n_terms : int
        Terms per name.
    min_reviewers : int
        A term names an item only when at least this many distinct users used it in their
        reviews of the item.
    language : {"auto", "en", "zh"}
        ``"zh"`` tokenises with jieba; ``"auto"`` detects it from the texts.
    texts_memo : PreparedTexts, optional
        ``texts`` prepared for keywords, shared with the fit's profiles
        (:class:`~usergroups.profiling.clean.PreparedTexts`, built from the same rows).

    Returns
    -------
    dict of str to str
        ``item_id -> "term, term, term"`` for the items that got at least one term, best
        term first.

    Examples
    --------
    >>> import pandas as pd
    >>> texts = pd.DataFrame({
    ...     "user_id": ["u1", "u2", "u3", "u1", "u2", "u3"],
    ...     "item_id": ["a", "a", "a", "b", "b", "b"],
    ...     "text": ["bright nickel strings", "the strings sound bright", "nickel strings",
    ...              "a heavy capo", "capo clamps well", "solid capo clamps"],
    ... })
    >>> derive_item_names(texts, n_terms=2)
    {'a': 'strings, bright', 'b': 'capo clamps'}
    """
    if n_terms < 1 or min_reviewers < 1:
        raise ValueError(
            f"n_terms={n_terms} and min_reviewers={min_reviewers} must both be at least 1"
        )
    if len(texts) == 0 or "item_id" not in texts:
        return {}
    about = texts["item_id"].to_numpy(dtype=object)
    named = {v for v in about if isinstance(v, str) and v != ""} - set(exclude)
    if not named:
        # no review names an item left to name: cleaning and counting every text would
        # end in an empty answer (a million reviews without item ids, issue 25)
        return {}
    frame = _unique_reviews(texts, texts_memo)
    if frame.empty:
        return {}
    lang = detect_language(frame["text"].tolist()) if language == "auto" else language
    vocabulary = _topical_term_counts(frame["text"].tolist(), lang, min_reviewers)
    if vocabulary is None:
        return {}
    x, terms = vocabulary
    reviewed = frame["item_id"].map(lambda v: isinstance(v, str) and v != "").to_numpy(bool)
    item_codes, items = pd.factorize(frame["item_id"].where(reviewed, None))
    if len(items) == 0:
        return {}
    counts, item_totals = _item_term_counts(
        x, item_codes, frame["user_id"].to_numpy(), len(items), min_reviewers
    )
    # every review, named items or not, is the background
    score = _distinctiveness(counts, item_totals, np.asarray(x.sum(axis=0)).ravel())
    names = _best_terms(counts, score, terms, items, set(exclude), n_terms)
    logger.debug("named %d of %d reviewed items from their reviews", len(names), len(items))
    return names


def _unique_reviews(texts: pd.DataFrame, memo: PreparedTexts | None = None) -> pd.DataFrame:
    """``user_id, item_id, text`` with the text prepared for keywords (by ``memo`` when
    given); empty texts dropped and each (item, user, text) once."""
    if memo is not None and len(memo) != len(texts):
        raise ValueError(f"texts_memo holds {len(memo)} texts for {len(texts)} reviews")
    prepared = keyword_texts(texts["text"]) if memo is None else memo.prepared(range(len(texts)))
    frame = pd.DataFrame(
        {
            "user_id": texts["user_id"].astype(str).to_numpy(),
            "item_id": texts["item_id"].to_numpy(dtype=object),
            "text": prepared,
        }
    )
    frame = frame[frame["text"] != ""]
    # the same review pasted under several product variants, or posted twice, counts once
    return frame.drop_duplicates(["item_id", "user_id", "text"])


def _topical_term_counts(
    texts: list[str], lang: Literal["en", "zh"], min_reviewers: int
) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """The review × term counts of the terms in at least ``min_reviewers`` reviews that are
    not praise or criticism, and those terms; None when no term is left."""
    from sklearn.feature_extraction.text import CountVectorizer

    vec = CountVectorizer(
        analyzer=functools.partial(tokenize, language=lang, prepared=True), min_df=min_reviewers
    )
    try:
        x = sp.csr_matrix(vec.fit_transform(texts), dtype=np.float64)
    except ValueError:  # no term in min_reviewers reviews
        return None
    terms = vec.get_feature_names_out()
    # praise and criticism say how reviewers felt, not what the item is
    topical = np.fromiter((not is_sentiment(t, lang) for t in terms), bool, len(terms))
    if not topical.any():
        return None
    return sp.csr_matrix(x[:, topical]), terms[topical]


def _item_term_counts(
    x: sp.csr_matrix, item_codes: np.ndarray, users: np.ndarray, n_items: int, min_reviewers: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Item × term counts, kept where at least ``min_reviewers`` distinct users used the term
    for the item, and each item's total count of terms."""
    keep = item_codes >= 0
    reviews = x[keep]
    per_item = _indicator(item_codes[keep], n_items)
    counts = sp.csr_matrix(per_item @ reviews)  # (n_items, n_terms) term counts
    # distinct reviewers per item and term: collapse each (item, user) pair's reviews first
    pair_codes, _ = pd.factorize(pd.Series(item_codes[keep]).astype(str) + "\x1f" + users[keep])
    pair_item = np.zeros(pair_codes.max() + 1, dtype=np.int64)
    pair_item[pair_codes] = item_codes[keep]
    used = sp.csr_matrix(_indicator(pair_codes, len(pair_item)) @ reviews)
    used.data[:] = 1.0
    reviewers = sp.csr_matrix(_indicator(pair_item, n_items) @ used)
    counts = sp.csr_matrix(counts.multiply(reviewers >= min_reviewers))
    counts.eliminate_zeros()
    item_totals = np.asarray(per_item @ reviews.sum(axis=1)).ravel()
    return counts, item_totals


def _distinctiveness(
    counts: sp.csr_matrix, item_totals: np.ndarray, term_totals: np.ndarray
) -> np.ndarray:
    """``tf(t, i) * log(tf(t, i) / tf(t, rest))`` for each stored entry of ``counts``."""
    grand = float(term_totals.sum())
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    c = counts.data
    tf = c / item_totals[rows]
    # the rest of the corpus, with one pseudo-count per term so rare terms stay finite
    rest = (term_totals[counts.indices] - c + 1.0) / (grand - item_totals[rows] + len(term_totals))
    score: np.ndarray = tf * np.log(tf / rest)
    return score


def _best_terms(
    counts: sp.csr_matrix,
    score: np.ndarray,
    terms: np.ndarray,
    items: Any,
    excluded: set[str],
    n_terms: int,
) -> dict[str, str]:
    """Each item's name: its ``n_terms`` best-scoring terms, not repeating a word."""
    names: dict[str, str] = {}
    for row, item in enumerate(items):
        if item in excluded:
            continue
        start, end = counts.indptr[row], counts.indptr[row + 1]
        vals, idx = score[start:end], counts.indices[start:end]
        positive = vals > 0
        vals, idx = vals[positive], idx[positive]
        picked = _pick(
            [str(terms[idx[j]]) for j in np.lexsort((idx, -vals))[: n_terms * 4]], n_terms
        )
        if picked:
            names[str(item)] = ", ".join(picked)
    return names


def with_top_item_names(groups: pd.DataFrame) -> pd.DataFrame:
    """``groups`` with ``top_item_names`` and ``top_item_name_sources`` added.

    A group's top items are named by their title (source ``"title"``), else by the name
    derived from their reviews, which profiles keep in ``top_item_terms`` (``"reviews"``),
    else ``""`` (show the id). Frames without ``top_items`` are returned as they are.

    Parameters
    ----------
    groups : DataFrame
        One row per group, as ``GroupDiscovery.groups_``.

    Returns
    -------
    DataFrame
        A copy with the two list columns, aligned with ``top_items``.
    """
    if "top_items" not in groups:
        return groups
    out = groups.copy()
    names: list[list[str]] = []
    sources: list[list[str]] = []
    empty: pd.Series[Any] = pd.Series([[]] * len(out), index=out.index, dtype=object)
    for items, titles, terms in zip(
        out["top_items"],
        out.get("top_item_titles", empty),
        out.get("top_item_terms", empty),
        strict=True,
    ):
        items = list(items) if items is not None else []
        titles = list(titles) if titles is not None else []
        terms = list(terms) if terms is not None else []
        row_names, row_sources = [], []
        for k in range(len(items)):
            title = titles[k] if k < len(titles) else ""
            term = terms[k] if k < len(terms) else ""
            row_names.append(title or term or "")
            row_sources.append("title" if title else ("reviews" if term else ""))
        names.append(row_names)
        sources.append(row_sources)
    out["top_item_names"] = names
    out["top_item_name_sources"] = sources
    return out
