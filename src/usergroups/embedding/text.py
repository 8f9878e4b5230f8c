"""Text cleaning before embedding: HTML entities and tags, URLs, whitespace.

Review and comment dumps are full of ``&quot;``, ``<br />`` and links; none of it says
anything about the author, and all of it costs tokens.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from usergroups._typing import FloatMatrix
from usergroups.embedding.base import Encoder, check_texts
from usergroups.errors import DataError

__all__ = ["CLEAN_VERSION", "CleaningEncoder", "clean_text", "clean_texts"]

CLEAN_VERSION = 2
"""Bumped whenever :func:`clean_text` changes its output; part of cached encoder names."""

# Tags that separate words become a space; inline ones (<b>, <span>) vanish so that
# "gui<b>tar</b>" stays one word.
_BLOCK_TAGS = (
    "br|p|div|li|ul|ol|tr|td|th|table|h[1-6]|hr|blockquote|pre|section|article|header"
    "|footer|dd|dt|dl"
)
_BLOCK_TAG_RE = re.compile(rf"</?(?:{_BLOCK_TAGS})\b[^<>]*>", re.IGNORECASE)
# A tag starts with a letter, "/" or "!"; "I <3 it" and "a < b" are left alone.
_TAG_RE = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>|<![^<>]*>", re.DOTALL)
# URL characters are ASCII only, so Chinese text glued to a link survives:
# "访问http://a.cn了解" -> "访问 了解".
_URL_RE = re.compile(
    r"(?<![A-Za-z0-9])(?:(?:https?|ftp)://|www\.)"
    r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*"
    r"[A-Za-z0-9\-_~/#=&%+]",  # a URL does not end in the sentence's "." or ")"
    re.IGNORECASE,
)
_SPACE_RE = re.compile(r"\s+")
# A tag cut off by truncation at the end of the text: "... <a data-hook="product-lin".
_OPEN_TAG_RE = re.compile(r"<[A-Za-z/!][^<>]*$")
# Attributes left behind when a scraper dropped the angle brackets:
# 'a data-hook="product-link-linked" class="a-link-normal" href="/dp/B0"'.
_ATTRIBUTE_RE = re.compile(
    r"(?<![\w-])(?:href|src|class|style|rel|target|data-[\w-]+|aria-[\w-]+)"
    r"\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*')",
    re.IGNORECASE,
)
# Entity names that survive unescaping: a lost "&" ("nbsp;"), upper case ("&NBSP;"), or
# the bare word "nbsp" that some dumps write for a non-breaking space.
_ENTITY_LEFTOVER_RE = re.compile(
    r"(?<![&\w])(?:nbsp|amp|quot|apos|lt|gt);|&nbsp\b;?|\bnbsp\b", re.IGNORECASE
)
# Cheap test for text that may need more than whitespace work.
_MARKUP_RE = re.compile(r"[&<]|://|www\.|nbsp|(?:amp|quot|apos|lt|gt);|=\s*[\"']", re.IGNORECASE)
_MAX_PASSES = 16


def _one_pass(text: str) -> str:
    if _MARKUP_RE.search(text):
        text = html.unescape(text)
        text = _BLOCK_TAG_RE.sub(" ", text)
        text = _TAG_RE.sub("", text)
        text = _URL_RE.sub(" ", text)
        text = _OPEN_TAG_RE.sub(" ", text)
        text = _ATTRIBUTE_RE.sub(" ", text)
        text = _ENTITY_LEFTOVER_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip()


def clean_text(text: str) -> str:
    """Unescape HTML entities, strip HTML tags, remove URLs, collapse whitespace, strip.

    Markup that scrapers leave half-done goes too: a tag cut off at the end of the text,
    HTML attributes whose angle brackets were lost (``class="a-link-normal"``), entity
    names without their ``&`` or in upper case (``nbsp;``, ``&NBSP;``).

    The steps repeat until nothing changes, so the result is a fixed point:
    ``clean_text(clean_text(s)) == clean_text(s)`` even for double-escaped input such as
    ``"&amp;lt;br&amp;gt;"``. Letters of every script are kept (Chinese included); only
    markup, links and whitespace change.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        The cleaned text: no leading or trailing whitespace, no two whitespace characters
        in a row; ``""`` when nothing is left.

    Examples
    --------
    >>> clean_text("Great&nbsp;strings!<br/>See https://example.com/x?y=1  &quot;wow&quot;")
    'Great strings! See "wow"'
    >>> clean_text("  音色很好，<b>推荐</b>！ ")
    '音色很好，推荐！'
    """
    # each pass that changes more than whitespace makes the text shorter, so this ends
    for _ in range(_MAX_PASSES):
        cleaned = _one_pass(text)
        if cleaned == text:
            break
        text = cleaned
    return text


def clean_texts(texts: Iterable[str]) -> list[str]:
    """Apply :func:`clean_text` to every text.

    Parameters
    ----------
    texts : iterable of str of length n

    Returns
    -------
    list of str of length n

    Raises
    ------
    DataError
        If an element is not a string (e.g. a missing value read as NaN).

    Examples
    --------
    >>> clean_texts(["a  b", "<p>c</p>"])
    ['a b', 'c']
    """
    if isinstance(texts, str):
        raise DataError(
            f"texts must be a list of strings, got a single str ({texts[:30]!r}); wrap it in a list"
        )
    out: list[str] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(
                f"texts[{i}] is a {type(text).__name__} ({text!r}), not a str; "
                "fill missing texts with '' first"
            )
        out.append(clean_text(text))
    return out


class CleaningEncoder:
    """Apply :func:`clean_text` to every text, then embed with ``inner``.

    Parameters
    ----------
    inner : Encoder
        The encoder that embeds the cleaned texts.

    Attributes
    ----------
    name : str
        ``inner.name`` plus ``"+clean-v<CLEAN_VERSION>"``: cleaning changes the vectors,
        so cached vectors of cleaned and raw texts never mix.
    dim : int
        ``inner.dim``.

    Examples
    --------
    >>> from usergroups.embedding import HashingEncoder
    >>> enc = CleaningEncoder(HashingEncoder(dim=8))
    >>> X = enc.encode(["<b>nice</b> strings", "nice  strings"])
    >>> X.shape, bool((X[0] == X[1]).all())
    ((2, 8), True)
    """

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        """``inner.name`` with the cleaning version appended."""
        return f"{self.inner.name}+clean-v{CLEAN_VERSION}"

    @property
    def dim(self) -> int:
        """``inner.dim``."""
        return self.inner.dim

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        """Clean, then embed; see :meth:`Encoder.encode`. Returns shape (n, dim)."""
        return self.inner.encode(clean_texts(check_texts(texts)), show_progress=show_progress)

    def __repr__(self) -> str:
        return f"CleaningEncoder({self.inner!r})"
