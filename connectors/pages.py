"""Article pages: full text and metadata out of HTML, and the ``pages`` source of listed URLs.

``extract_page`` is pure (bytes in, ``ExtractedPage`` out) and never touches the network:
trafilatura gets an already parsed tree, and its date helper (htmldate) gets that tree too, never
a URL. Metadata that trafilatura guesses loosely is read from the page's own declarations first:

- published date: ``article:published_time`` / ``itemprop=datePublished`` / JSON-LD
  ``datePublished``, then trafilatura's date search; a date without a timezone is taken as UTC.
- language: ``<html lang>``, then ``content-language``, then ``og:locale``; the primary subtag.
- canonical URL: ``<link rel=canonical>``, then ``og:url``, resolved against the page URL. It must
  be absolute http(s) and, for a page fetched over http(s), on the same site (same host, or one a
  subdomain of the other). The article id is a hash of the canonical URL, so an off-site
  canonical would let any page overwrite another outlet's story; it is ignored. A page read from
  disk (``file:`` URL) has no site of its own, so any absolute http(s) canonical is taken.

Charset: a byte-order mark wins; bytes that are valid UTF-8 with non-ASCII content are UTF-8
whatever the label says (mislabelled UTF-8 is the common real-world error, accidental valid UTF-8
is vanishingly rare); otherwise the HTTP charset, then ``<meta charset>``, each only if it
decodes cleanly; otherwise windows-1252 with replacement characters. A wrong or unknown label
therefore never raises.

trafilatura and lxml are safe to call from several threads: lxml serializes use of a shared
parser, and we keep no per-call global state (no deduplication cache).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import trafilatura
from lxml.html import HtmlElement
from pydantic import field_validator
from trafilatura.settings import Document
from trafilatura.utils import load_html

from connectors.fetch import Fetcher, FetchError
from connectors.source import Item, ItemError, PollContext, SourceConfig
from newsflow.article import (
    MAX_BODY_CHARS,
    MAX_TITLE_CHARS,
    Article,
    InvalidArticle,
    normalize_url,
)
from newsflow.sanitize import html_to_text, remove_invisible

__all__ = [
    "ExtractedPage",
    "ExtractionFailed",
    "PagesConfig",
    "PagesSource",
    "article_from_page",
    "decode_html",
    "extract_page",
    "fetch_article",
    "html_to_text",
]

#: trafilatura settings chosen on the shared corpus (bench/extraction.py): its balanced default
#: mode scored the best body F1; reader comments are not the article.
EXTRACTION_OPTIONS: dict[str, Any] = {"include_comments": False, "include_tables": True}
#: htmldate fallback: no "extensive" search of free text, which guesses from any date in the page.
_DATE_OPTIONS = {
    "original_date": True,
    "extensive_search": False,
    "outputformat": "%Y-%m-%dT%H:%M:%S",
}
#: How much raw HTML ``keep_html`` puts in the message (the Kafka message cap is ~1 MB).
KEPT_HTML_MAX_CHARS = 200_000
HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
_HTML_TYPES = ("text/html", "application/xhtml+xml")

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_].*)?$")
_DATE_XPATHS = (
    "//meta[@property='article:published_time']/@content",
    "//meta[@name='article:published_time']/@content",
    "//meta[@itemprop='datePublished']/@content",
    "//*[@itemprop='datePublished']/@datetime",
    "//meta[@name='date']/@content",
)


class ExtractionFailed(ValueError):
    """A page that does not hold an article we can extract; the message says why."""


@dataclass(frozen=True)
class ExtractedPage:
    url: str
    canonical_url: str | None
    title: str
    text: str
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    language: str | None = None


def decode_html(html: bytes, charset: str | None = None) -> str:
    """Decode page bytes, trusting labels only as far as the bytes agree (module docstring)."""
    for bom, codec in _BOMS:
        if html.startswith(bom):
            return html.decode(codec, errors="replace")
    if not html.isascii():
        try:
            return html.decode("utf-8")
        except UnicodeDecodeError:
            pass
    meta = _META_CHARSET.search(html[:4096])
    for label in (charset, meta[1].decode("ascii") if meta else None):
        if label and (text := _decode_strictly(html, label)) is not None:
            return text
    return html.decode("cp1252", errors="replace")


def _decode_strictly(html: bytes, label: str) -> str | None:
    try:
        return html.decode(codecs.lookup(label).name)
    except (LookupError, UnicodeDecodeError):
        return None


def extract_page(html: bytes, *, url: str, charset: str | None = None) -> ExtractedPage:
    """Main text and metadata of one article page; raises ``ExtractionFailed`` with a reason."""
    text, _ = remove_invisible(decode_html(html, charset))
    if not text.strip():
        raise ExtractionFailed("empty page")
    tree = load_html(text)
    if tree is None:
        raise ExtractionFailed("not an HTML document")
    try:
        document = trafilatura.bare_extraction(
            tree,
            url=url,
            with_metadata=True,
            date_extraction_params=_DATE_OPTIONS,
            **EXTRACTION_OPTIONS,
        )
    except ValueError as exc:  # trafilatura's way of saying "nothing usable"
        raise ExtractionFailed(f"extraction failed: {exc or 'no usable content'}") from None
    body = (document.text or "").strip() if isinstance(document, Document) else ""
    if not isinstance(document, Document) or not body:
        raise ExtractionFailed("no main text found")
    return ExtractedPage(
        url=url,
        canonical_url=_canonical_url(tree, url),
        title=(document.title or "").strip(),
        text=body,
        authors=_authors(document.author),
        published_at=_declared_date(tree) or _parse_date(document.date),
        language=_language(tree),
    )


def _first(tree: HtmlElement, *xpaths: str) -> str | None:
    for xpath in xpaths:
        for value in tree.xpath(xpath):
            if str(value).strip():
                return str(value).strip()
    return None


def _canonical_url(tree: HtmlElement, page_url: str) -> str | None:
    declared = _first(
        tree,
        "//link[contains(concat(' ', normalize-space(translate(@rel, 'CANONICAL', 'canonical')),"
        " ' '), ' canonical ')]/@href",
        "//meta[@property='og:url']/@content",
    )
    if not declared:
        return None
    candidate = urljoin(page_url, declared)
    try:
        normalize_url(candidate)
    except InvalidArticle:
        return None
    page_host = (urlsplit(page_url).hostname or "").removeprefix("www.")
    if urlsplit(page_url).scheme in ("http", "https") and not _same_site(
        page_host, (urlsplit(candidate).hostname or "").removeprefix("www.")
    ):
        return None
    return candidate


def _same_site(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _language(tree: HtmlElement) -> str | None:
    declared = _first(
        tree,
        "/html/@lang",
        "/html/@xml:lang",
        "//meta[translate(@http-equiv, 'CONTENTLANGUAGE', 'contentlanguage')"
        "='content-language']/@content",
        "//meta[@property='og:locale']/@content",
    )
    match = _LANGUAGE.match(declared.split(",")[0].strip()) if declared else None
    return match[1].lower() if match else None


def _authors(author: str | None) -> list[str]:
    return [name.strip() for name in (author or "").split(";") if name.strip()]


def _declared_date(tree: HtmlElement) -> datetime | None:
    for value in (_first(tree, xpath) for xpath in _DATE_XPATHS):
        if parsed := _parse_date(value):
            return parsed
    for node in _json_ld(tree):
        if parsed := _parse_date(node.get("datePublished")):
            return parsed
    return None


def _json_ld(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                yield node
                stack.extend(v for k, v in node.items() if k == "@graph")


def _parse_date(value: object) -> datetime | None:
    """ISO 8601 to an aware datetime; naive values are UTC (pages rarely say otherwise)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def article_from_page(
    page: ExtractedPage,
    *,
    source: str,
    language_hint: str | None,
    fetched_at: datetime,
    fallback_title: str | None = None,
    published_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> Article:
    """The article for an extracted page; over-long text is cut with ``truncated`` set.

    The caller's ``published_at`` (a feed's or an archive's structured date) wins over the page's,
    and the source's configured language hint over the page's declared language.
    """
    title, body = page.title or fallback_title or "", page.text
    extras: dict[str, Any] = {"authors": page.authors, **(metadata or {})}
    if page.language:
        extras["page_language"] = page.language
    if len(title) > MAX_TITLE_CHARS or len(body) > MAX_BODY_CHARS:
        title, body = title[:MAX_TITLE_CHARS], body[:MAX_BODY_CHARS]
        extras["truncated"] = True
    try:
        return Article.create(
            url=page.url if page.url.startswith(("http://", "https://")) else None,
            canonical_url=page.canonical_url,
            source=source,
            title=title,
            body=body,
            published_at=published_at or page.published_at,
            fetched_at=fetched_at,
            language_hint=language_hint or page.language,
            metadata=extras,
        )
    except InvalidArticle as exc:
        raise ExtractionFailed(f"not a valid article: {exc}") from None


def fetch_article(
    fetcher: Fetcher,
    url: str,
    *,
    source: str,
    language_hint: str | None,
    fetched_at: datetime,
    fallback_title: str | None = None,
    published_at: datetime | None = None,
    keep_html: bool = False,
) -> Article:
    """Fetch one page and turn it into an article; raises ``FetchError`` or ``ExtractionFailed``.

    The id comes from the page's canonical URL, else the final URL after redirects, so links
    that reach one story through different redirects are one article.
    """
    response = fetcher.get(url, accept=HTML_ACCEPT)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in _HTML_TYPES:
        raise ExtractionFailed(f"not an HTML page: content-type {content_type}")
    page = extract_page(response.body, url=response.url, charset=response.charset)
    metadata: dict[str, Any] = {"final_url": response.url}
    if keep_html:
        html = decode_html(response.body, response.charset)
        metadata["html"] = html[:KEPT_HTML_MAX_CHARS]
        metadata["html_truncated"] = len(html) > KEPT_HTML_MAX_CHARS
    if page.canonical_url is None:
        page = ExtractedPage(**{**page.__dict__, "canonical_url": response.url})
    return article_from_page(
        page,
        source=source,
        language_hint=language_hint,
        fetched_at=fetched_at,
        fallback_title=fallback_title,
        published_at=published_at,
        metadata=metadata,
    )


class PagesConfig(SourceConfig):
    """Hand-listed article pages, each fetched once."""

    type: Literal["pages"]
    urls: list[str]
    #: Put the page's HTML (at most ``KEPT_HTML_MAX_CHARS``) in the message metadata.
    keep_html: bool = False

    @field_validator("urls")
    @classmethod
    def _absolute_http_urls(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError("list at least one URL")
        for url in urls:
            normalize_url(url)  # InvalidArticle is a ValueError: pydantic reports it
        return urls


class PagesSource:
    """Fetches each listed URL until it has been published once.

    The seen key is the listed URL, normalized: it is known before fetching, so a restart
    fetches nothing again; two URLs of one story still become one article, because the article
    id hashes the page's canonical URL.
    """

    def __init__(self, config: PagesConfig) -> None:
        self.config = config

    def poll(self, context: PollContext) -> Iterator[Item | ItemError]:
        keys = {normalize_url(url): url for url in self.config.urls}
        unseen = context.state.unseen(keys)
        for key, url in keys.items():
            if context.stop.is_set():
                return
            if key not in unseen:
                continue
            try:
                article = fetch_article(
                    context.fetcher,
                    url,
                    source=self.config.source_label,
                    language_hint=self.config.language_hint,
                    fetched_at=datetime.now(UTC),
                    keep_html=self.config.keep_html,
                )
            except FetchError as exc:
                yield ItemError("fetch", f"{exc.kind}: {exc}", url)
            except ExtractionFailed as exc:
                yield ItemError("extract", str(exc), url)
            else:
                yield Item(article=article, seen_key=key)
