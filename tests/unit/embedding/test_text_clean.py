"""clean_text / clean_texts: markup, links and whitespace out; words in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from usergroups.embedding import clean_text, clean_texts
from usergroups.errors import DataError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1/4&#34; plug", '1/4" plug'),
        ("Tom &amp; Jerry &quot;ok&quot;", 'Tom & Jerry "ok"'),
        ("line one<br/>line two", "line one line two"),
        ("<p>first</p><p>second</p>", "first second"),
        ("gui<b>tar</b> strings", "guitar strings"),
        ("<!-- hidden --> shown", "shown"),
        ("see https://example.com/a?b=1&c=2 now", "see now"),
        ("see (http://www.amazon.com/dp/B000).", "see ( )."),
        ("visit www.example.org today", "visit today"),
        ("I <3 this and a < b > c", "I <3 this and a < b > c"),
        ("  lots\t\tof \n\n space  ", "lots of space"),
        ("\u3000全角空格\u3000", "全角空格"),
        ("&amp;lt;br&amp;gt;", ""),
        ("", ""),
    ],
)
def test_clean_text_examples(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_chinese_text_is_kept_intact() -> None:
    text = "这把吉他的音色非常好，弦也很顺手！推荐购买。"
    assert clean_text(text) == text
    assert clean_text(f"<p>{text}</p>") == text


def test_url_glued_to_chinese_text_removes_only_the_url() -> None:
    assert clean_text("详情见http://example.cn/a了解更多") == "详情见 了解更多"


def test_clean_texts_keeps_length_and_order() -> None:
    assert clean_texts(["<b>a</b>", " b ", ""]) == ["a", "b", ""]


def test_clean_texts_rejects_missing_values() -> None:
    with pytest.raises(DataError, match=r"texts\[1\] is a NoneType"):
        clean_texts(["a", None])  # type: ignore[list-item]


def test_clean_texts_rejects_a_single_string() -> None:
    with pytest.raises(DataError, match="single str"):
        clean_texts("abc")


_PIECES = [
    *"ab <>/&;#:.x\t\n\u3000\xa0好",
    "&amp;",
    "&lt;",
    "&gt;",
    "<br>",
    "http://",
    "www.",
    "&#34;",
    "<!--",
    "-->",
]
markupish = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


@given(st.text() | markupish)
def test_clean_text_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


@given(st.text() | markupish)
def test_clean_text_has_no_double_spaces_or_outer_whitespace(text: str) -> None:
    cleaned = clean_text(text)
    assert "  " not in cleaned
    assert cleaned == cleaned.strip()
    assert not any(c.isspace() and c != " " for c in cleaned)


@given(st.text(alphabet=st.characters(categories=["L", "N"])))
def test_clean_text_keeps_letters_and_digits(text: str) -> None:
    assert clean_text(text) == text
