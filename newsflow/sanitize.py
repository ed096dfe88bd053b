"""Untrusted text made safe to index: markup reduced to its text, invisible characters removed.

Connectors reduce the HTML they fetch with ``html_to_text``; the pipeline's decode stage runs
``sanitize`` on every article it reads, because anyone who can produce to the raw topic can
bypass the connectors. One parser (lxml's, close to a browser's) decides what is markup on both
sides, so the two cannot disagree about what a script is.

- Markup: script, style and the other invisible elements go with their content, every other tag
  is dropped and its text kept (with the tags go event-handler attributes and ``javascript:``
  links), comments go; the parse decodes entities. Text that only mentions "<" ("a < b") has no
  tag and is left alone. HTML escaped twice is reduced again, as the RSS connector does, so no
  tag survives; the price is that a literal "<b>" in plain text is dropped too.
- Invisible characters: C0 and C1 controls except tab and newline (a carriage return ends a
  line), zero-width space, word joiner, byte-order mark, and the Bidi_Control characters, which
  reorder what a reader sees ("Trojan Source"). ZWNJ and ZWJ are kept between two visible
  characters, where Persian, Indic scripts and emoji sequences need them, and removed elsewhere.
- Then NFC normalization, so that equal text is equal code points.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from lxml import etree

__all__ = [
    "MARKUP_PASSES",
    "Sanitized",
    "UnsafeText",
    "html_to_text",
    "remove_invisible",
    "sanitize",
]

#: Reductions of one text before giving up: markup escaped twice is common in feeds; markup
#: left after three is deliberate, and the text is refused rather than indexed.
MARKUP_PASSES = 3

_NEWLINES = re.compile(r"\r\n?")
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 except \t \n, DEL, C1
    "\u200b\u2060\ufeff"  # zero-width space, word joiner, byte-order mark
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"  # Bidi_Control
    r"|(?<!\S)[\u200c\u200d]|[\u200c\u200d](?!\S)"  # ZWNJ, ZWJ not joining two characters
)
#: A complete tag, end tag, comment or declaration: what makes a text markup.
_MARKUP = re.compile(r"<[A-Za-z!/?][^<>]*>")
_SPACES = re.compile(r"[^\S\n]+")
_WHITESPACE = re.compile(r"\s+")
#: Elements whose content is never text a reader sees.
_HIDDEN = ("script", "style", "noscript", "iframe", "object", "embed", "template", "svg", "head")
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)


class UnsafeText(ValueError):
    """Text that cannot be made safe (markup nested deeper than ``MARKUP_PASSES``)."""


@dataclass(frozen=True)
class Sanitized:
    text: str
    #: Invisible characters removed (controls, zero-width, bidi).
    invisible: int
    #: The text held markup, reduced to its text.
    markup: bool


def remove_invisible(text: str) -> tuple[str, int]:
    """``text`` without invisible characters (module doc), and how many were removed."""
    return _INVISIBLE.subn("", _NEWLINES.sub("\n", text))


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML snippet (feed summaries); no script or style survives.

    Source line breaks are spaces, as in a browser; block elements make the lines. The content
    of raw-text elements (``<xmp>``, ``<title>``, ...) comes out as it was written, tags
    included: ``sanitize`` reduces its result again.
    """
    cleaned, _ = remove_invisible(html)
    if not cleaned.strip():
        return ""
    parser = etree.HTMLParser(remove_comments=True, remove_pis=True)
    root = etree.fromstring(f"<html><body>{cleaned}</body></html>", parser)
    if root is None:
        return ""
    etree.strip_elements(root, *_HIDDEN, with_tail=False)
    for element in root.iter():
        element.text = _WHITESPACE.sub(" ", element.text) if element.text else element.text
        element.tail = _WHITESPACE.sub(" ", element.tail) if element.tail else element.tail
    for element in root.iter(*_BLOCKS):
        element.tail = "\n" + (element.tail or "")
        if len(element) == 0 and element.text is not None:
            element.text = "\n" + element.text
        elif len(element):
            element.text = "\n" + (element.text or "")
    text = "".join(root.itertext())
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _strip_markup(text: str) -> str:
    """Plain text that holds tags, reduced; its own line breaks stay line breaks."""
    for _ in range(MARKUP_PASSES):
        text = html_to_text(text.replace("\n", "<br>"))
        if not _MARKUP.search(text):
            return text
    raise UnsafeText(
        f"markup is left after {MARKUP_PASSES} reductions (HTML escaped over and over); "
        "publish plain text"
    )


def sanitize(text: str) -> Sanitized:
    """``text`` safe to index (module doc); raises ``UnsafeText``."""
    visible, invisible = remove_invisible(text)
    markup = _MARKUP.search(visible) is not None
    if markup:
        visible = _strip_markup(visible)
    return Sanitized(unicodedata.normalize("NFC", visible), invisible, markup)
