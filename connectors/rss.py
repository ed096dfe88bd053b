"""RSS, Atom, RDF and JSON Feed source: new feed items as articles, fetched politely and once.

Parsing is pure (``parse_feed``: bytes in, items or a feed-level error out). XML goes through
``connectors.safe_xml`` first, then to feedparser as an in-memory stream: never a URL or a path,
which feedparser would open itself. The feed's URL is handed over as the document location, so
relative links and ``xml:base`` resolve against where the feed really is, and the HTTP charset
as a response header. feedparser 6 does not read JSON Feed; that format is mapped here.

HTML in titles, summaries and content is reduced to plain text by ``connectors.pages``'
``html_to_text`` from the *raw* markup (feedparser's own sanitizer is off): one parser, the same
as a browser's, decides what is script, rather than two sanitizers disagreeing. Text typed as
plain that still contains tags is reduced the same way: in RSS the type is only feedparser's
guess, double-escaped HTML is common, and no tag may reach the wire. The price is that a literal
"<T>" in a plain-text title is dropped. HTML escaped twice (text that reads "<script>" after
one pass) is reduced again.

Polling: a conditional GET with the stored ETag / Last-Modified; a 304 yields nothing. Items the
state has already seen are dropped before any page is fetched. An item with only a short summary
(``full_text``) has its page fetched for the full text; if that fails, the summary is published
with the reason in ``metadata.full_text_error`` and an ``ItemError`` is yielded too, so a broken
or paywalled page costs the full text, not the story.

The validators are stored with ``state.put`` after the last item was yielded, and only if every
new item was yielded (no ``max_items_per_poll`` cut, no shutdown): otherwise the next poll would
get a 304 and the rest would wait for the feed to change. This relies on the runner's contract
(``connectors.state``): a poll's ``put`` values become durable together with its seen keys, once
Kafka acknowledged its items, so a crash before that re-reads the feed.

After a poll, ``RssSource.newest_item_at`` holds the newest item date in the feed (unchanged on a
304, ``None`` until known), for a scheduler that wants to know how lively the feed is; the runner
today judges that from the items it publishes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser
from pydantic import Field, field_validator

from connectors.fetch import FetchError
from connectors.pages import (
    ExtractedPage,
    ExtractionFailed,
    article_from_page,
    fetch_article,
    html_to_text,
)
from connectors.safe_xml import UnsafeXml, check_xml
from connectors.source import Item, ItemError, PollContext, SourceConfig
from newsflow.article import Article, InvalidArticle, normalize_text, normalize_url

__all__ = [
    "FEED_ACCEPT",
    "FeedItem",
    "ParsedFeed",
    "RssConfig",
    "RssSource",
    "parse_feed",
]

_LOG = logging.getLogger("newsflow.connectors")

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9,"
    " application/xml;q=0.8, text/xml;q=0.8, application/json;q=0.5, */*;q=0.1"
)
#: What feedparser is told when there is no Content-Type (a file, a bare test body): without a
#: charset it follows the BOM and the XML declaration. ("text/xml" would mean US-ASCII.)
_DEFAULT_CONTENT_TYPE = "application/xml"
_GZIP_MAGIC = b"\x1f\x8b"
_JSON_FEED_VERSION = "https://jsonfeed.org/version/"
#: Content types whose text is markup (feedparser's names and JSON Feed's field suffixes).
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_LANGUAGE = re.compile(r"^\s*([A-Za-z]{2,3})(?:[-_][A-Za-z0-9-]*)?\s*$")
_SPACES = re.compile(r"[^\S\n]+")
#: Something a browser would take for a tag, a comment or a declaration.
_MARKUP = re.compile(r"<[A-Za-z!/?]")
#: HTML escaped twice shows tags as text after one pass; feeds that do so are common enough.
_MARKUP_PASSES = 3


@dataclass(frozen=True)
class FeedItem:
    """One feed entry, as plain text; what an article is built from."""

    guid: str | None
    #: Absolute http(s) URL, resolved against ``xml:base`` and the feed URL; None if there is
    #: none. Kept as published (``normalize_url`` would turn http into https): it is fetched.
    link: str | None
    title: str
    summary: str
    #: Full content (``content:encoded``, Atom ``content``, JSON ``content_*``); "" if absent.
    content: str
    published_at: datetime | None
    authors: tuple[str, ...] = ()
    language: str | None = None
    categories: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        return self.content or self.summary

    @property
    def seen_key(self) -> str:
        """Identity in the feed: the GUID, else the canonical link, else a content hash."""
        if self.guid:
            return f"guid:{self.guid}"
        if self.link:
            return f"link:{normalize_url(self.link)}"
        text = "\x00".join(normalize_text(t) for t in (self.title, self.summary, self.content))
        return "hash:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class ParsedFeed:
    """What one feed document holds: its items, or why there is nothing usable in it."""

    url: str
    title: str = ""
    language: str | None = None
    items: tuple[FeedItem, ...] = ()
    #: Set when the document yielded nothing usable (unsafe, not a feed, broken beyond repair).
    error: ItemError | None = None
    #: Set when the document was ill-formed but items were recovered.
    warning: str | None = None

    @property
    def newest_item_at(self) -> datetime | None:
        return max((i.published_at for i in self.items if i.published_at), default=None)


def parse_feed(data: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Items of an RSS, Atom, RDF or JSON Feed document fetched from ``url``; never raises."""
    if data.startswith(_GZIP_MAGIC):
        return _failed(url, "parse", "the body is gzip data, not a feed (no Content-Encoding?)")
    if _looks_like_json(data, content_type):
        return _parse_json_feed(data, url)
    try:
        check_xml(data)
    except UnsafeXml as exc:
        return _failed(url, "unsafe_xml", str(exc))
    parsed = feedparser.parse(
        io.BytesIO(data),
        response_headers={
            "content-type": content_type or _DEFAULT_CONTENT_TYPE,
            "content-location": url,
        },
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    problem = str(parsed.get("bozo_exception", "")) if parsed.bozo else None
    if not parsed.entries:
        if problem:
            return _failed(url, "parse", f"no items could be read: {problem}")
        if not parsed.get("version"):
            return _failed(url, "parse", "not an RSS, Atom, RDF or JSON feed")
    feed_language = _language_code(parsed.feed.get("language"))
    return ParsedFeed(
        url=url,
        title=_text(parsed.feed.get("title_detail")),
        language=feed_language,
        items=tuple(_from_entry(entry, url, feed_language) for entry in parsed.entries),
        warning=f"ill-formed feed, items recovered: {problem}" if problem else None,
    )


def _failed(url: str, kind: str, reason: str) -> ParsedFeed:
    return ParsedFeed(url=url, error=ItemError(kind, reason, url))


def _from_entry(entry: dict[str, Any], url: str, feed_language: str | None) -> FeedItem:
    contents = [_text(c) for c in entry.get("content", ())]
    details = (*entry.get("content", ()), entry.get("summary_detail"), entry.get("title_detail"))
    language = next(
        (code for d in details if d and (code := _language_code(d.get("language")))), None
    )
    return FeedItem(
        guid=(entry.get("id") or "").strip() or None,
        link=_http_link(entry.get("link"), url),
        title=_text(entry.get("title_detail")),
        summary=_text(entry.get("summary_detail")),
        content=max(contents, key=len, default=""),
        # dict.get: FeedParserDict.get maps "updated" to "published" with a DeprecationWarning.
        published_at=_from_struct_time(
            dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
        ),
        authors=_unique(a.get("name") for a in entry.get("authors", ())),
        language=language or feed_language,
        categories=_unique(t.get("term") or t.get("label") for t in entry.get("tags", ())),
    )


def _text(detail: Mapping[str, Any] | None) -> str:
    """Plain text of a feedparser text construct (``value`` + ``type``)."""
    if not detail or not detail.get("value"):
        return ""
    return _as_text(detail["value"], detail.get("type"))


def _as_text(value: str, content_type: str | None) -> str:
    """Plain text; text typed as plain that still holds tags is reduced as HTML (module doc)."""
    if (content_type or "").lower() in _HTML_TYPES or _MARKUP.search(value):
        for _ in range(_MARKUP_PASSES):
            value = html_to_text(value)
            if not _MARKUP.search(value):
                break
        return value
    lines = (_SPACES.sub(" ", line).strip() for line in value.splitlines())
    return "\n".join(line for line in lines if line)


def _http_link(link: object, base: str) -> str | None:
    """``link`` made absolute against ``base``, if it is a valid http(s) URL."""
    if not isinstance(link, str) or not link.strip():
        return None
    absolute = urljoin(base, link.strip())
    try:
        normalize_url(absolute)
    except InvalidArticle:
        return None
    return absolute


def _from_struct_time(value: time.struct_time | None) -> datetime | None:
    """feedparser's parsed dates are UTC ``struct_time``s; some are out of datetime's range."""
    if value is None:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _language_code(tag: object) -> str | None:
    """The primary subtag of a language tag ("pt-BR", "en_us" -> "pt", "en"), if it is one."""
    match = _LANGUAGE.match(tag) if isinstance(tag, str) else None
    return match[1].lower() if match else None


def _unique(values: Iterable[object]) -> tuple[str, ...]:
    cleaned = (v.strip() for v in values if isinstance(v, str))
    return tuple(dict.fromkeys(v for v in cleaned if v))


# --- JSON Feed (https://jsonfeed.org/version/1.1) ---------------------------------------------


def _looks_like_json(data: bytes, content_type: str | None) -> bool:
    if content_type and "json" in content_type.lower():
        return True
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _parse_json_feed(data: bytes, url: str) -> ParsedFeed:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
        return _failed(url, "parse", f"not valid JSON: {exc}")
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        _JSON_FEED_VERSION
    ):
        return _failed(url, "parse", f"not a JSON Feed (no {_JSON_FEED_VERSION}... version)")
    entries = document.get("items")
    if not isinstance(entries, list):
        return _failed(url, "parse", "JSON Feed without an items list")
    feed_language = _language_code(document.get("language"))
    feed_authors = _json_authors(document)
    items = tuple(
        _from_json_item(entry, url, feed_language, feed_authors)
        for entry in entries
        if isinstance(entry, dict)
    )
    skipped = len(entries) - len(items)
    return ParsedFeed(
        url=url,
        title=_as_text(str(document.get("title") or ""), None),
        language=feed_language,
        items=items,
        warning=f"{skipped} items are not JSON objects" if skipped else None,
    )


def _from_json_item(
    entry: dict[str, Any], url: str, feed_language: str | None, feed_authors: tuple[str, ...]
) -> FeedItem:
    if entry.get("content_html"):
        content = _as_text(str(entry["content_html"]), "html")
    else:
        content = _as_text(str(entry.get("content_text") or ""), None)
    guid = str(entry.get("id") or "").strip()
    return FeedItem(
        guid=guid or None,
        link=_http_link(entry.get("url") or entry.get("external_url"), url),
        title=_as_text(str(entry.get("title") or ""), None),
        summary=_as_text(str(entry.get("summary") or ""), None),
        content=content,
        published_at=_iso_datetime(entry.get("date_published") or entry.get("date_modified")),
        authors=_json_authors(entry) or feed_authors,
        language=_language_code(entry.get("language")) or feed_language,
        categories=_unique(entry["tags"] if isinstance(entry.get("tags"), list) else ()),
    )


def _json_authors(node: Mapping[str, Any]) -> tuple[str, ...]:
    """Names from ``authors`` (1.1) or ``author`` (1.0)."""
    authors = node.get("authors")
    if not isinstance(authors, list):
        authors = [node["author"]] if isinstance(node.get("author"), dict) else []
    return _unique(a.get("name") for a in authors if isinstance(a, dict))


def _iso_datetime(value: object) -> datetime | None:
    """An RFC 3339 date; one without an offset is ambiguous, hence unknown."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


# --- The source ---------------------------------------------------------------------------------


class RssConfig(SourceConfig):
    """One feed (RSS 0.9x/1.0/2.0, Atom, RDF or JSON Feed)."""

    type: Literal["rss"] = "rss"
    url: str
    #: ``auto``: fetch the page when an item has no full content and its summary is shorter
    #: than ``full_text_min_words``; ``always``: fetch every item's page; ``never``: feed only.
    full_text: Literal["auto", "always", "never"] = "auto"
    full_text_min_words: int = Field(100, ge=0)
    #: New items published per poll; the rest wait for the next poll (the feed is re-read).
    max_items_per_poll: int = Field(100, ge=1)

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, url: str) -> str:
        normalize_url(url)  # InvalidArticle is a ValueError: pydantic reports it
        return url


class RssSource:
    def __init__(self, config: RssConfig) -> None:
        self.config = config
        #: The newest item date seen in the feed at the last poll that read it.
        self.newest_item_at: datetime | None = None

    def poll(self, context: PollContext) -> Iterator[Item | ItemError]:
        state = context.state
        response = context.fetcher.get(
            self.config.url,
            etag=state.get("etag"),
            last_modified=state.get("last_modified"),
            accept=FEED_ACCEPT,
        )
        if response.not_modified:
            return
        feed = parse_feed(
            response.body, url=response.url, content_type=response.headers.get("content-type")
        )
        if feed.error:
            yield feed.error
            return
        if feed.warning:
            _LOG.warning("%s: %s", self.config.name, feed.warning)
        self.newest_item_at = feed.newest_item_at or self.newest_item_at
        listed: dict[str, FeedItem] = {}
        for item in feed.items:  # a key listed twice (duplicate GUIDs) is one item
            listed.setdefault(item.seen_key, item)
        unseen = state.unseen(listed)
        new = [item for key, item in listed.items() if key in unseen]
        for item in new[: self.config.max_items_per_poll]:
            if context.stop.is_set():
                return
            yield from self._publishable(item, feed, context)
        if len(new) <= self.config.max_items_per_poll:
            state.put("etag", response.etag)
            state.put("last_modified", response.last_modified)

    def _publishable(
        self, item: FeedItem, feed: ParsedFeed, context: PollContext
    ) -> Iterator[Item | ItemError]:
        metadata = _item_metadata(item, feed.url)
        language_hint = self.config.language_hint or item.language or feed.language
        fetched_at = datetime.now(UTC)
        if item.link and self._wants_page(item):
            fetched = self._fetch_page(item, item.link, language_hint, fetched_at, context)
            if isinstance(fetched, Article):
                yield Item(_with_feed_facts(fetched, metadata, item), item.seen_key)
                return
            yield fetched
            metadata["full_text_error"] = f"{fetched.kind}: {fetched.reason}"
        page = ExtractedPage(
            url=item.link or "",
            canonical_url=None,
            title=item.title,
            text=item.body,
            authors=list(item.authors),
            published_at=item.published_at,
        )
        try:
            article = article_from_page(
                page,
                source=self.config.source_label,
                language_hint=language_hint,
                fetched_at=fetched_at,
                metadata=metadata,
            )
        except ExtractionFailed as exc:
            yield ItemError("invalid", str(exc), item.link or f"{feed.url}#{item.seen_key}")
        else:
            yield Item(article, item.seen_key)

    def _fetch_page(
        self,
        item: FeedItem,
        link: str,
        language_hint: str | None,
        fetched_at: datetime,
        context: PollContext,
    ) -> Article | ItemError:
        try:
            return fetch_article(
                context.fetcher,
                link,
                source=self.config.source_label,
                language_hint=language_hint,
                fetched_at=fetched_at,
                fallback_title=item.title,
                published_at=item.published_at,
            )
        except FetchError as exc:
            return ItemError("fetch", f"{exc.kind}: {exc}", link)
        except ExtractionFailed as exc:
            return ItemError("extract", str(exc), link)

    def _wants_page(self, item: FeedItem) -> bool:
        if self.config.full_text == "auto":
            return not item.content and len(item.summary.split()) < self.config.full_text_min_words
        return self.config.full_text == "always"


def _item_metadata(item: FeedItem, feed_url: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"feed_url": feed_url}
    if item.guid:
        metadata["guid"] = item.guid
    if item.categories:
        metadata["categories"] = list(item.categories)
    return metadata


def _with_feed_facts(article: Article, metadata: Mapping[str, Any], item: FeedItem) -> Article:
    """A fetched page's article with the feed's facts added; the page's own win on conflict."""
    merged = {**metadata, **article.metadata}
    if not merged.get("authors") and item.authors:
        merged["authors"] = list(item.authors)
    return article.model_copy(update={"metadata": merged})
