"""Text hygiene for profiles: tokens worth showing, personal data scrubbed, one voice per user.

A profile is read by people who never saw the data, so what it shows must be about the
group, not about markup, one prolific reviewer or how people praise things:

- :func:`scrub_personal` replaces e-mail addresses, phone numbers and links with
  ``[email]``, ``[phone]`` and ``[url]`` (or removes them, for keyword text);
- :func:`keyword_text` is the text keywords are counted in: :func:`clean_text` (the same
  cleaning as embedding), personal data removed, contractions folded (:func:`keyword_texts`
  for many texts at once, faster);
- :func:`tokenize` keeps words of three or more characters (two or more for CJK words),
  drops stop words, review filler (``product``, ``bought``, ``works``), contraction
  fragments and markup (``nbsp``, ``href``, ``a-link-normal``);
- :func:`is_sentiment` says whether a term is praise, criticism or style (``great``,
  ``love``, ``不错``): such terms stay keywords but are down-weighted and never lead a label
  while the group has topic words;
- :func:`distinct_texts` keeps one of a user's near-duplicate texts (the same review posted
  for several variants of a product);
- :func:`signature_tails` finds a user's signature: a closing line that ends several of their
  texts and no one else's.

Examples
--------
>>> scrub_personal("mail jo@x.org or call 555-123-4567, see www.x.org")
'mail [email] or call [phone], see [url]'
>>> tokenize("I've bought great Elixir strings&nbsp;- don't work", "en")
['great', 'elixir', 'strings', 'great elixir', 'elixir strings']
"""

from __future__ import annotations

import functools
import html.entities
import itertools
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from usergroups.embedding.text import clean_text

__all__ = [
    "EN_FILLER",
    "EN_SENTIMENT",
    "ZH_FILLER",
    "ZH_SENTIMENT",
    "PreparedTexts",
    "distinct_texts",
    "ends_with_signature",
    "is_markup_token",
    "is_sentiment",
    "keyword_text",
    "keyword_texts",
    "scrub_personal",
    "signature_tails",
    "tokenize",
]

_CJK = re.compile(r"[\u4e00-\u9fff]")

# --------------------------------------------------------------------------- personal data
_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL_RE = re.compile(
    r"(?:(?:https?|ftp)://|www\.)[^\s<>\"'\u4e00-\u9fff]*[^\s<>\"'.,;:!?)\]\u4e00-\u9fff]"
    # a bare domain such as amazon.com/dp/B00X; top-level domains that are not words
    r"|(?<![\w@.-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\."
    r"(?:com|net|org|edu|gov|io|co\.uk|cn|de|fr|jp|ru|info|biz|ly)\b"
    r"(?:/[^\s<>\"'\u4e00-\u9fff]*[^\s<>\"'.,;:!?)\]\u4e00-\u9fff])?",
    re.IGNORECASE,
)
# Phones: an international number (+...), a North American one (555-123-4567, (555) 123
# 4567) or a Chinese mobile number. Years, prices and model numbers do not fit these forms.
_PHONE_RE = re.compile(
    r"(?<![\w+])\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){1,3}(?!\w)"
    r"|(?<![\w(])(?:1[\s.-])?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?!\w)"
    r"|(?<!\d)1[3-9]\d{9}(?!\d)"
)
_URL_HINT_RE = re.compile(
    r"://|www\.|\.(?:com|net|org|edu|gov|io|co|cn|de|fr|jp|ru|info|biz|ly)\b", re.IGNORECASE
)
_DIGITS_RE = re.compile(r"\d\d\d")


def scrub_personal(text: str, *, placeholders: bool = True) -> str:
    """Replace e-mail addresses, links and phone numbers.

    Parameters
    ----------
    text : str
    placeholders : bool
        ``[email]``, ``[url]`` and ``[phone]`` where they were (for texts people read);
        False puts a space instead (for text that keywords are counted in).

    Returns
    -------
    str

    Examples
    --------
    >>> scrub_personal("write to a.b@mail.com", placeholders=False)
    'write to  '
    >>> scrub_personal("Tel +44 20 7946 0958 or 13812345678")
    'Tel [phone] or [phone]'
    >>> scrub_personal("bought it in 2012 for $19.99, model SM-57")
    'bought it in 2012 for $19.99, model SM-57'
    """
    # cheap tests first: most texts have no "@", no link and no run of three digits
    if "@" in text:
        text = _EMAIL_RE.sub("[email]" if placeholders else " ", text)
    if _URL_HINT_RE.search(text):
        text = _URL_RE.sub("[url]" if placeholders else " ", text)
    if _DIGITS_RE.search(text):
        text = _PHONE_RE.sub("[phone]" if placeholders else " ", text)
    return text


# --------------------------------------------------------------------------- contractions
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
# "don't" -> "" (negation carries no topic and its stem "don" is not a word); "I've" -> "I";
# "guitar's" -> "guitar"
_NEGATION_RE = re.compile(r"\b[A-Za-z]+n't\b|\bcan't\b|\bwon't\b", re.IGNORECASE)
_CLITIC_RE = re.compile(r"\b([A-Za-z]+)'(?:ve|ll|re|d|m|s)\b", re.IGNORECASE)


def keyword_text(text: str) -> str:
    """The text keywords are counted in: cleaned as for embedding, no personal data, no
    contraction fragments.

    Examples
    --------
    >>> keyword_text("I&#39;ve <b>loved</b> it, don't ask: me@x.com")
    'I loved it, ask:'
    """
    if "\n" in text:
        # a group's joined texts: cleaned one by one, so a text without markup costs nothing
        return " ".join(keyword_text(line) for line in text.split("\n"))
    return _fold_contractions(scrub_personal(clean_text(text), placeholders=False))


# clean_text acts on more than whitespace only where one of these is (a superset of its own
# markup test, which is a slower case-insensitive regex); "www." and "nbsp" are looked for
# case-folded
_MARKUP_HINTS = ("&", "<", ";", "=", "://")


def keyword_texts(texts: Iterable[object]) -> list[str]:
    """:func:`keyword_text` of every text, ``""`` for a non-string; faster on plain text.

    The result equals ``[keyword_text(t) for t in texts]``: a text with nothing for
    :func:`clean_text` to remove (no ``&``, ``<``, ``;``, ``=``, link or ``nbsp``) only has
    its whitespace collapsed, without the cleaner's passes.

    Examples
    --------
    >>> keyword_texts(["I've <b>loved</b> it", "don't  ask", None])
    ['I loved it', 'ask', '']
    """
    return [_keyword_text_fast(t) if isinstance(t, str) else "" for t in texts]


def _keyword_text_fast(text: str) -> str:
    if "\n" in text:
        return " ".join(_keyword_text_fast(line) for line in text.split("\n"))
    folded = text.casefold()
    plain = not any(h in text for h in _MARKUP_HINTS) and "www." not in folded
    text = " ".join(text.split()) if plain and "nbsp" not in folded else clean_text(text)
    return _fold_contractions(scrub_personal(text, placeholders=False))


def _fold_contractions(text: str) -> str:
    text = text.translate(_APOSTROPHES)
    if "'" in text:
        if "n't" in text.lower():  # every negation the pattern finds has it
            text = _NEGATION_RE.sub(" ", text)
        if "'" in text:
            text = _CLITIC_RE.sub(r"\1", text)
    return " ".join(text.split())


# --------------------------------------------------------------------------- word lists
EN_FILLER = frozenset(
    (
        # contractions written without an apostrophe, and their fragments
        "dont doesnt didnt cant couldnt wont wouldnt shouldnt isnt arent wasnt werent hasnt "
        "havent hadnt aint ive youve weve theyve youre theyre thats whats theres heres lets "
        "shes hes ill youll theyll itll didn doesn isn wasn aren couldn wouldn shouldn hasn "
        "haven hadn won"
        # review boilerplate: says that someone wrote a review, not what about
        " product products item items bought buy buying buys purchase purchased purchasing "
        "purchases order ordered ordering amazon review reviews reviewer star stars rating "
        "really just also actually basically definitely probably maybe certainly simply "
        "would could should might must will shall get got gets getting gotten thing things "
        "stuff lot lots bit little pretty quite rather even still way ways make makes made "
        "making need needs needed want wants wanted use used uses using usage work works "
        "worked working one ones two three first second time times day days well much many "
        "know think thought say said says going come comes came goes went take takes took "
        "look looks looked like liked likes sure far able try tried trying give gave put "
        "new old right left long real yes etc usually overall thanks thank anyway though "
        "although since every another something anything everything nothing else enough "
        "kind sort year years month months week weeks ago now today back without did does "
        "doing done place places"
    ).split()
)
"""Review filler: words that say someone wrote a review, never what the group is about."""

EN_SENTIMENT = frozenset(
    (
        "great good love loved loves loving nice excellent perfect perfectly awesome amazing "
        "best better fantastic wonderful terrific superb outstanding incredible happy "
        "pleased satisfied satisfaction impressed recommend recommended recommends highly "
        "fine okay cool solid decent bad terrible horrible awful poor poorly worst worse "
        "disappointed disappointing disappointment cheap cheaper cheaply inexpensive easy "
        "easier easily hard difficult price priced prices value worth money quality "
        "favorite favourite glad super totally absolutely completely extremely lol haha wow "
        "omg yay yummy delicious tasty beautiful beautifully lovely gorgeous fun funny "
        "enjoy enjoyed enjoying awesome stellar mediocre meh fabulous exactly expected "
        "expect expectations problem problems issue issues complaint complaints happier "
        "sturdy nicely wonderfully definitely bargain deal affordable expensive"
    ).split()
)
"""Praise, criticism and style: how members talk, not what they talk about."""

ZH_FILLER = frozenset(
    (
        "的 了 是 我 你 他 她 它 们 在 也 有 就 不 和 与 都 而 及 着 或 一个 没有 我们 你们 他们 "
        "这个 那个 什么 这样 还是 就是 但是 因为 所以 如果 自己 这部 一部 电影 感觉 觉得 真的 "
        "还有 已经 可以 这么 那么 一样 一些 一点 不是 只是 非常 其实 时候 最后 看到 知道 这种 之后 "
        "一下 有点 比较 特别 看过 看了 虽然 不过 然后 东西 怎么 为什么 出来 起来 一直 一次 只有 "
        "这些 那些 应该 可能 确实 简直 完全 本来 大家 一定 的话 之前 以后 以前 有些 所有 各种 "
        "这里 那里 还是 没什么 总之 而且 并且 不会 不能 还要 真是 有人 别人 东东 购买 买了 "
        "商品 宝贝 收到 评价 评论 五星 四星 三星 一星 两星"
    ).split()
)
"""Chinese function words and review filler (jieba tokens)."""

ZH_SENTIMENT = frozenset(
    (
        "喜欢 好看 不错 精彩 推荐 感动 失望 无聊 垃圾 好评 差评 经典 值得 一般 还行 难看 烂片 "
        "好片 神作 优秀 完美 出色 喜爱 可惜 遗憾 有趣 有意思 哈哈 哈哈哈 哈哈哈哈 超级 很棒 真棒 "
        "最爱 厉害 满分 糟糕 恶心 无语 可爱 美好 温暖 感人 好听 满意 很好 太好了 好好 给力 "
        "漂亮 一流 强烈推荐 惊艳 震撼 失败 浪费 后悔 质量 划算 便宜 实惠 性价比"
    ).split()
)
"""Chinese praise, criticism and style."""

_MARKUP = frozenset(
    (
        # not "amp" (an amplifier) or "span": clean_text unescapes "&amp;" before this
        "nbsp href src http https www html htm xhtml quot apos div img "
        "px utf utf8 utf-8 ref asin php aspx jpg jpeg png gif url com"
    ).split()
)
_ENTITY_NAMES = frozenset(
    name for name in html.entities.name2codepoint if len(name) >= 4 and not name.isalpha()
) | frozenset(
    n
    for n in html.entities.name2codepoint
    if re.fullmatch(r"[a-zA-Z]{1,2}(?:acute|grave|uml|circ|tilde|cedil|ring|slash|lig)", n)
    or re.fullmatch(r"[lrbs][sd]?quo|hellip|[mn]dash|laquo|raquo|thinsp|ensp|emsp|zwn?j", n)
)
# class and attribute names that leak from scraped pages: data-hook, aria-label,
# a-link-normal, product-link-linked, cm_cr-...
_MARKUP_RE = re.compile(r"(?:data|aria|a|cm|cr)-[a-z0-9-]+|[a-z0-9-]*link-[a-z0-9-]+")
_EN_TOKEN_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def is_markup_token(token: str) -> bool:
    """Whether a token is HTML, an entity name or a scraped page's class name.

    Examples
    --------
    >>> [t for t in ["nbsp", "a-link-normal", "data-hook", "href", "strings"] if is_markup_token(t)]
    ['nbsp', 'a-link-normal', 'data-hook', 'href']
    """
    t = token.lower()
    return t in _MARKUP or t in _ENTITY_NAMES or bool(_MARKUP_RE.fullmatch(t))


def is_sentiment(term: str, language: Literal["en", "zh"] = "en") -> bool:
    """Whether a keyword is praise, criticism or style; a bigram is when any word is.

    Examples
    --------
    >>> is_sentiment("great price"), is_sentiment("elixir strings"), is_sentiment("不错", "zh")
    (True, False, True)
    """
    words = EN_SENTIMENT if language == "en" else ZH_SENTIMENT
    return any(w in words for w in term.split())


def _en_stop() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | EN_FILLER


def tokenize(text: str, language: Literal["en", "zh"], *, prepared: bool = False) -> list[str]:
    """Keyword tokens of one text: unigrams, then (English) bigrams of adjacent kept words.

    ``text`` goes through :func:`keyword_text` first. English keeps words of three or more
    characters, Chinese keeps jieba words of two or more characters that contain a CJK
    character. Stop words, filler and markup are dropped; a bigram never spans a dropped
    word, so "strings are great" gives no "strings great".

    Parameters
    ----------
    text : str
    language : {"en", "zh"}
    prepared : bool
        ``text`` is already the output of :func:`keyword_text`.

    Returns
    -------
    list of str
    """
    if not prepared:
        text = keyword_text(text)
    if language == "zh":
        import jieba

        jieba.setLogLevel(logging.WARNING)
        return [
            w
            for w in jieba.lcut(text)
            if len(w) >= 2 and _CJK.search(w) and w not in ZH_FILLER and not w.isspace()
        ]
    kept = [_keep_en(t) for t in _EN_TOKEN_RE.findall(text.lower())]
    unigrams = [t for t in kept if t]
    bigrams = [f"{a} {b}" for a, b in itertools.pairwise(kept) if a and b]
    return unigrams + bigrams


_STOP: frozenset[str] | None = None


@functools.lru_cache(maxsize=200_000)
def _keep_en(token: str) -> str | None:
    """The token as a keyword candidate, or None: too short, a stop word or markup."""
    t = token.strip("-")
    return None if len(t) < 3 or t in _stop_words() or is_markup_token(t) else t


def _stop_words() -> frozenset[str]:
    global _STOP
    if _STOP is None:
        _STOP = _en_stop()
    return _STOP


# --------------------------------------------------------------------------- duplicates
_NORM_RE = re.compile(r"[^\w]+")
_NEAR_JACCARD = 0.8
_MAX_PAIRWISE = 300  # a user with more texts gets exact-duplicate removal only


def _normal(text: str, *, prepared: bool = False) -> str:
    return " ".join(_NORM_RE.sub(" ", (text if prepared else clean_text(text)).lower()).split())


def distinct_texts(
    user_ids: Sequence[str], texts: Sequence[str], *, prepared: bool = False
) -> list[bool]:
    """Which texts to keep so that each user's near-duplicate texts count once.

    Two texts of the same user are duplicates when they are equal after cleaning, case
    and punctuation, or (for texts of five or more words) when their word sets have a
    Jaccard index of at least 0.8: the same review posted for several variants of a
    product, with a colour or size changed. The first of each set is kept.

    Parameters
    ----------
    user_ids, texts : sequence of str of length n
    prepared : bool
        The texts are already cleaned (by :func:`keyword_text`, say).

    Returns
    -------
    list of bool of length n

    Examples
    --------
    >>> distinct_texts(["a", "a", "b"], ["Nice strings!", "nice  strings", "Nice strings!"])
    [True, False, True]
    """
    keep = [True] * len(texts)
    by_user: dict[str, list[int]] = {}
    for i, u in enumerate(user_ids):
        by_user.setdefault(str(u), []).append(i)
    for rows in by_user.values():
        if len(rows) < 2:
            continue
        seen: set[str] = set()
        kept_sets: list[set[str]] = []
        pairwise = len(rows) <= _MAX_PAIRWISE
        for i in rows:
            key = _normal(texts[i], prepared=prepared)
            if key in seen:
                keep[i] = False
                continue
            seen.add(key)
            words = set(key.split()) if not _CJK.search(key) else set(key.replace(" ", ""))
            if pairwise and len(words) >= 5:
                if any(len(words & w) >= _NEAR_JACCARD * len(words | w) for w in kept_sets):
                    keep[i] = False
                    continue
                kept_sets.append(words)
    return keep


class PreparedTexts:
    """One dataset's texts prepared for keywords (:func:`keyword_texts`) and whether each
    is a distinct text of its writer (:func:`distinct_texts`), each computed once per text,
    on first use, for the rows asked.

    A fit reads the same texts for the items' names, the groups' profiles and every
    segment's sub-interests; preparing them once per reader was most of the sub-interests'
    cost (issue 23). Rows are positions in the texts the object was built from.

    Parameters
    ----------
    users, texts : sequence of length n
        Each text's writer and the text (a non-string prepares to ``""``).

    Examples
    --------
    >>> texts = ["Nice strings!", "nice  strings", "Loud &amp; clear"]
    >>> memo = PreparedTexts(["a", "a", "b"], texts)
    >>> memo.prepared([2, 0])
    ['Loud & clear', 'Nice strings!']
    >>> memo.distinct([0, 1, 2]).tolist()
    [True, False, True]
    """

    def __init__(self, users: Sequence[object], texts: Sequence[object]) -> None:
        if len(users) != len(texts):
            raise ValueError(f"{len(users)} writers for {len(texts)} texts: one per text")
        self._users = [str(u) for u in users]
        self._raw = list(texts)
        self._prepared: list[str | None] = [None] * len(self._raw)
        self._keep = np.zeros(len(self._raw), dtype=np.int8)  # 0 not yet, 1 keep, 2 duplicate

    @classmethod
    def of(cls, texts: Any) -> PreparedTexts:
        """From a table of texts with ``user_id`` and ``text`` columns (``Dataset.texts``)."""
        return cls(texts["user_id"].tolist(), texts["text"].tolist())

    def __len__(self) -> int:
        return len(self._raw)

    def prepared(self, rows: Iterable[int]) -> list[str]:
        """:func:`keyword_texts` of the texts at ``rows``, in that order."""
        rows = [int(i) for i in rows]
        todo = [i for i in rows if self._prepared[i] is None]
        for i, text in zip(todo, keyword_texts(self._raw[i] for i in todo), strict=True):
            self._prepared[i] = text
        return [str(self._prepared[i]) for i in rows]

    def distinct(self, rows: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether each text at ``rows`` is kept by :func:`distinct_texts` (prepared).

        ``rows`` must hold every text of each writer it holds (a writer's duplicates are
        found among their own texts), in increasing order, as every profile asks.
        """
        at = np.asarray(rows, dtype=np.int64)
        todo = at[self._keep[at] == 0]
        if len(todo):
            flags = distinct_texts(
                [self._users[i] for i in todo], self.prepared(todo), prepared=True
            )
            self._keep[todo] = np.where(flags, 1, 2)
        return np.asarray(self._keep[at] == 1)


# --------------------------------------------------------------------------- signatures
_SENTENCE_END_RE = re.compile(r"(?<=[.!?。！？])\s*")
_MAX_SIGNATURE_CHARS = 80
_LINE_BREAK_RE = re.compile(r"\r?\n|\r|<br\s*/?>", re.IGNORECASE)


def _tail(text: str) -> str:
    """The last line of a multi-line text, else its last sentence; "" when that is all."""
    lines = [ln for ln in _LINE_BREAK_RE.split(text) if clean_text(ln)]
    if len(lines) >= 2:
        last = clean_text(lines[-1])
    else:
        parts = [p for p in _SENTENCE_END_RE.split(clean_text(text)) if p.strip()]
        if len(parts) < 2:
            return ""
        last = parts[-1]
    last = _normal(last)
    return last if 0 < len(last) <= _MAX_SIGNATURE_CHARS else ""


def signature_tails(user_ids: Sequence[str], texts: Sequence[str]) -> dict[str, set[str]]:
    """Each user's signature: a closing line or sentence that ends at least two of their
    distinct texts and no other user's text.

    A closing such as "Highly recommended!" ends many users' texts and is not a signature;
    "-- Kenneth, Tulsa" ends only Kenneth's. Compare texts with :func:`ends_with_signature`.

    Parameters
    ----------
    user_ids, texts : sequence of str of length n

    Returns
    -------
    dict of str to set of str
        Normalised signature lines by user id; users without one are absent.

    Examples
    --------
    >>> sig = signature_tails(
    ...     ["k", "k", "m"],
    ...     ["Good pick. Cheers, Kenneth", "Loud amp! Cheers, Kenneth", "Good pick. Fine."],
    ... )
    >>> sig
    {'k': {'cheers kenneth'}}
    """
    keep = distinct_texts(user_ids, texts)
    n_kept: dict[str, int] = {}
    for u, k in zip(user_ids, keep, strict=True):
        if k:
            n_kept[str(u)] = n_kept.get(str(u), 0) + 1
    users_of: dict[str, set[str]] = {}
    count: dict[tuple[str, str], int] = {}
    # only a user with two distinct texts can have a signature: their tails first, and the
    # other users' (which can only rule a signature out) only when there is one to rule
    # out; a million one-text users then cost no tails at all (issue 25)
    for several in (True, False):
        if not several and not any(c >= 2 for c in count.values()):
            return {}
        for u, text, k in zip(user_ids, texts, keep, strict=True):
            if not k or (n_kept[str(u)] >= 2) != several:
                continue
            tail = _tail(text)
            if not tail:
                continue
            users_of.setdefault(tail, set()).add(str(u))
            if several:
                count[(str(u), tail)] = count.get((str(u), tail), 0) + 1
    out: dict[str, set[str]] = {}
    for (u, tail), c in count.items():
        if c >= 2 and users_of[tail] == {u}:
            out.setdefault(u, set()).add(tail)
    return out


def ends_with_signature(text: str, signatures: set[str]) -> bool:
    """Whether ``text`` ends with one of ``signatures`` (from :func:`signature_tails`)."""
    return bool(signatures) and _tail(text) in signatures
