"""Which texts can place a user: one check shared by the CLI, the library and the service.

``usergroups assign --text``, ``POST /assign`` and the service's events refuse the same
texts with the same message (issue 22): a text holding a control character other than tab
and line breaks (a NUL cuts C strings and logs), a lone UTF-16 surrogate, or nothing once
HTML, links and whitespace are removed (it would place a user by nothing).

It lives beside the cleaning it relies on (:func:`usergroups.embedding.clean_text`): a text
is usable when what would be embedded of it is not empty.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from usergroups.embedding.text import clean_text
from usergroups.errors import DataError

__all__ = ["TEXT_CONTROLS", "InputError", "check_text", "check_texts", "first_bad_char"]


class InputError(DataError):
    """One field of a request is unusable; ``field`` names it as the body does (``texts[3]``).

    Parameters
    ----------
    field : str
    message : str
        What is wrong and how to fix it; starts with the field's name.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


TEXT_CONTROLS = frozenset("\t\n\r")
"""The control characters a text may hold: tab and line breaks (CR LF included)."""


def first_bad_char(value: str, allowed: frozenset[str] = frozenset()) -> tuple[int, str] | None:
    """The first lone surrogate or control character of ``value`` (position, description).

    Examples
    --------
    >>> first_bad_char("ab\\x00c")
    (2, 'the control character U+0000')
    >>> first_bad_char("a\\tb", TEXT_CONTROLS) is None
    True
    """
    for pos, ch in enumerate(value):
        if ch in allowed:
            continue
        category = unicodedata.category(ch)
        if category == "Cs":
            return pos, f"a lone UTF-16 surrogate (U+{ord(ch):04X})"
        if category == "Cc":
            return pos, f"the control character U+{ord(ch):04X}"
    return None


def check_text(value: str, field: str) -> str:
    """``value`` if it is a usable text; :class:`InputError` naming ``field`` if not.

    Refused: lone UTF-16 surrogates (they are not text and cannot be encoded as UTF-8),
    control characters other than tab, line feed and carriage return, and texts that are
    empty once HTML, links and whitespace are removed (:func:`~usergroups.embedding.clean_text`),
    which would place a user by nothing.

    Examples
    --------
    >>> check_text("great strings", "texts[0]")
    'great strings'
    >>> try:
    ...     check_text("<br/>  ", "texts[1]")
    ... except InputError as exc:
    ...     print(exc.field, "|", str(exc).split(";")[0])
    texts[1] | texts[1] is empty once HTML, links and whitespace are removed
    """
    bad = first_bad_char(value, TEXT_CONTROLS)
    if bad is not None:
        pos, what = bad
        raise InputError(
            field,
            f"{field} holds {what} at character {pos}; send UTF-8 text without lone "
            "surrogates or control characters (tab and line breaks are fine)",
        )
    if not clean_text(value):
        raise InputError(
            field,
            f"{field} is empty once HTML, links and whitespace are removed; send words, or "
            "leave the text out",
        )
    return value


def check_texts(texts: Sequence[str], name: str = "texts") -> list[str]:
    """Every text checked with :func:`check_text`, named ``name[i]``; returned as a list.

    Examples
    --------
    >>> check_texts(["a", "b"])
    ['a', 'b']
    """
    return [check_text(text, f"{name}[{i}]") for i, text in enumerate(texts)]
