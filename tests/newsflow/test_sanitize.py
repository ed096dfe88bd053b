"""The sanitizer: every hostile pattern goes, benign text comes out unchanged."""

from __future__ import annotations

import time

import pytest

from newsflow.sanitize import MARKUP_PASSES, Sanitized, UnsafeText, html_to_text, sanitize


@pytest.mark.parametrize(
    "text",
    [
        "NATO summit opens in Vilnius",
        "a < b and c > d, 3 <= 4, x<5 and <3 hearts",
        "Tom &amp; Jerry: entities in plain text are not markup",
        "if x<y then z",  # a "<" that opens no complete tag
        "Para one.\n\nPara two,\tindented.\n",
        "Ação e coração — 東京 — Москва",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: ZWNJ in a word
        "👨\u200d👩\u200d👧 family",  # an emoji ZWJ sequence
        "javascript: the language, as a word",
        "",
    ],
    ids=lambda t: repr(t)[:30],
)
def test_benign_text_is_unchanged(text: str) -> None:
    assert sanitize(text) == Sanitized(text, invisible=0, markup=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<script>alert(1)</script>Hello", "Hello"),
        ("<SCRIPT type=module>steal()</SCRIPT>Hi", "Hi"),
        ("Hi <style>body{display:none}</style>there", "Hi there"),
        ("<iframe src=//evil>x</iframe>Kept", "Kept"),
        ("<img src=x onerror=alert(1)> Hurricane", "Hurricane"),
        ("<b onmouseover=alert(1)>bold</b> text", "bold text"),
        ('<a href="javascript:alert(1)">click</a> here', "click here"),
        ("<svg onload=alert(1)><script>x()</script></svg>after", "after"),
        ("<!-- hidden --><p>shown</p>", "shown"),
        ("<p>AT&amp;T &lt;3</p>", "AT&T <3"),  # entities decoded once by the parse
        ("<scr<script>x</script>ipt>alert(1)</script>", "xipt>alert(1)"),
        # HTML escaped twice is reduced again: no tag survives
        ("<p>&lt;img src=x onerror=alert(1)&gt;caption</p>", "caption"),
        # raw-text elements come out of the parser as markup; the next pass removes it
        ("<xmp><img src=x onerror=alert(1)></xmp>ok", "ok"),
        ("<plaintext><b onclick=x()>x</b>", "x"),
        # line breaks of the plain text around the markup survive
        ("Line one <b>bold</b>\n\nLine two", "Line one bold\nLine two"),
    ],
)
def test_markup_is_reduced_to_its_text(text: str, expected: str) -> None:
    result = sanitize(text)
    assert (result.text, result.markup) == (expected, True)


@pytest.mark.parametrize(
    ("text", "expected", "removed"),
    [
        ("nul\x00 bell\x07 esc\x1b[31m del\x7f", "nul bell esc[31m del", 4),
        ("c1\x85\x9b controls", "c1 controls", 2),
        ("zero\u200bwidth\u2060joined\ufeff", "zerowidthjoined", 3),
        ("\ufeffBOM first", "BOM first", 1),
        ("trojan \u202eevil\u202c source", "trojan evil source", 2),
        ("isolates \u2066\u2067\u2068x\u2069 marks \u200e\u200f\u061c", "isolates x marks ", 7),
        ("edge \u200dzwj\u200c and\u200d", "edge zwj and", 3),
        ("crlf\r\nlines\rend", "crlf\nlines\nend", 0),  # a carriage return ends a line
    ],
)
def test_invisible_characters_are_removed_and_counted(
    text: str, expected: str, removed: int
) -> None:
    assert sanitize(text) == Sanitized(expected, invisible=removed, markup=False)


def test_text_is_nfc_normalized() -> None:
    assert sanitize("cafe\u0301").text == "caf\u00e9"


def escaped(text: str, times: int) -> str:
    for _ in range(times):
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def test_markup_escaped_as_often_as_there_are_passes_is_reduced() -> None:
    text = "".join(escaped("<i>", times) for times in range(MARKUP_PASSES)) + "x"
    assert sanitize(text) == Sanitized("x", invisible=0, markup=True)


def test_markup_escaped_beyond_the_passes_is_refused() -> None:
    text = "".join(escaped("<i>", times) for times in range(MARKUP_PASSES + 1)) + "x"
    with pytest.raises(UnsafeText, match=f"markup is left after {MARKUP_PASSES} reductions"):
        sanitize(text)


@pytest.mark.parametrize(
    "text",
    [
        "w" * 1_000_000,  # a one-million-character word
        "<b>" + "w" * 500_000 + "</b>",
        "<div>" * 50_000 + "deep",
        "<a" * 200_000,
        "<b>x</b>" * 50_000,
    ],
    ids=["word", "word-in-tag", "deep", "unclosed", "many-tags"],
)
def test_huge_and_pathological_input_is_linear(text: str) -> None:
    """Not a timing claim: a guard against a quadratic path (each case takes well under 1 s)."""
    started = time.monotonic()
    result = sanitize(text)
    assert "<b>" not in result.text and "<div>" not in result.text
    assert time.monotonic() - started < 10


def test_html_to_text_keeps_blocks_as_lines() -> None:
    assert html_to_text("<ul><li>a</li><li>b\u200b</li></ul>") == "a\nb"
