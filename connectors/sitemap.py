"""Sitemap source: standard sitemaps, sitemap indexes, gzipped sitemaps and Google News sitemaps.

Parsing is pure (bytes in; entries, child sitemaps and per-entry errors out). Polling walks the
index tree with conditional GETs, keeps the URLs the state has not seen, and fetches each new
page for its full text. The Google News fields are hints: ``news:title`` stands in for a page
without a title, ``news:language`` is the language hint, and ``news:publication_date``, being
structured, wins over the date the extractor finds in the page.

A sitemap's validators (ETag / Last-Modified) are stored only once every entry in it is seen.
A poll cut short (URL cap, shutdown, a failed page, a crash before the runner published) thus
re-reads the sitemap next time instead of getting a 304 and forgetting what was left. An index
stores its validators with its list of children at once: re-walking children loses nothing.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element

from pydantic import Field, field_validator

from connectors.fetch import FetchError
from connectors.pages import fetch_article
from connectors.safe_xml import UnsafeXml, parse_xml
from connectors.source import Item, ItemError, PollContext, SourceConfig
from newsflow.article import Article, InvalidArticle, normalize_url

__all__ = [
    "SITEMAP_MAX_BYTES",
    "ChildSitemap",
    "InvalidSitemap",
    "ParsedSitemap",
    "SitemapConfig",
    "SitemapEntry",
    "SitemapSource",
    "language_hint",
    "parse_sitemap",
    "parse_w3c_datetime",
    "select_new",
    "with_sitemap_metadata",
]

_LOG = logging.getLogger("newsflow.connectors")

#: The sitemaps.org limit for one (uncompressed) sitemap; also the cap that stops a gzip bomb.
SITEMAP_MAX_BYTES = 50 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ACCEPT = "application/xml, text/xml;q=0.9, */*;q=0.1"
_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2})?$")  # W3C allows "YYYY" and "YYYY-MM"
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class InvalidSitemap(ValueError):
    """Bytes that are not a sitemap we can read; the message says why."""


@dataclass(frozen=True)
class SitemapEntry:
    """One ``<url>`` of a urlset, with its Google News fields when present."""

    loc: str  # absolute, as listed (resolved against the sitemap's URL); what we fetch
    canonical_url: str  # ``normalize_url(loc)``; the seen key
    sitemap: str  # the sitemap listing it
    lastmod: datetime | None = None
    news_title: str | None = None
    news_published_at: datetime | None = None
    news_language: str | None = None  # ISO 639 primary subtag, e.g. "zh" for "zh-cn"
    news_publication: str | None = None

    @property
    def date(self) -> datetime | None:
        """When the story appeared or last changed, for freshness filters and ordering."""
        return self.news_published_at or self.lastmod


@dataclass(frozen=True)
class ChildSitemap:
    """One ``<sitemap>`` of a sitemap index."""

    url: str
    lastmod: datetime | None = None


@dataclass(frozen=True)
class ParsedSitemap:
    """A urlset has entries, an index has children; errors name the entries we could not read."""

    url: str
    entries: tuple[SitemapEntry, ...] = ()
    children: tuple[ChildSitemap, ...] = ()
    errors: tuple[ItemError, ...] = ()

    @property
    def is_index(self) -> bool:
        return bool(self.children)


def parse_sitemap(data: bytes, *, url: str, max_bytes: int = SITEMAP_MAX_BYTES) -> ParsedSitemap:
    """Parse a (possibly gzipped) urlset or sitemap index fetched from ``url``.

    Raises ``UnsafeXml`` for entity tricks, ``InvalidSitemap`` for anything else unreadable as a
    whole; a bad entry is reported in ``errors`` and the rest is kept.
    """
    root = _parse_root(_decompressed(data, max_bytes))
    kind = _local_name(root.tag)
    if kind == "urlset":
        entries, errors = _entries(root, url)
        return ParsedSitemap(url, entries=tuple(entries), errors=tuple(errors))
    if kind == "sitemapindex":
        children, errors = _children(root, url)
        return ParsedSitemap(url, children=tuple(children), errors=tuple(errors))
    raise InvalidSitemap(
        f"not a sitemap: root element <{kind}>, expected <urlset> or <sitemapindex>"
    )


def parse_w3c_datetime(text: str) -> datetime:
    """A sitemap date: W3C datetime from "YYYY" to full timestamps, or RFC 822 as seen in the wild.

    A date without a zone is taken as UTC; raises ``ValueError`` for anything else.
    """
    text = text.strip()
    if _PARTIAL_DATE.match(text):
        text += "-01" * (3 - len(text.split("-")))
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise ValueError(f"not a W3C datetime: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def language_hint(code: str) -> str | None:
    """The ISO 639 primary subtag of a language tag ("en-US" -> "en"), or None if it is not one."""
    primary = code.strip().lower().replace("_", "-").split("-")[0]
    return primary if _LANGUAGE.match(primary) else None


def select_new(
    entries: Iterable[SitemapEntry], unseen: set[str], *, cutoff: datetime | None, limit: int
) -> list[SitemapEntry]:
    """Unseen, fresh entries, newest first (undated ones last, in sitemap order), at most ``limit``.

    Entries sharing a canonical URL are one story: the first one listed wins.
    """
    chosen: dict[str, SitemapEntry] = {}
    for entry in entries:
        if entry.canonical_url in unseen and _is_fresh(entry.date, cutoff):
            chosen.setdefault(entry.canonical_url, entry)
    return sorted(chosen.values(), key=lambda e: -_timestamp(e.date))[:limit]  # stable sort


class SitemapConfig(SourceConfig):
    type: Literal["sitemap"] = "sitemap"
    #: The sitemap or sitemap index to poll (robots.txt ``Sitemap:`` lines name them).
    url: str
    #: How many levels of indexes below ``url`` are followed (an index of indexes is depth 2).
    max_depth: int = Field(2, ge=0, le=5)
    #: New pages fetched per poll, newest first; the rest wait for the next poll.
    max_urls_per_poll: int = Field(100, ge=1)
    #: Sitemaps fetched per poll, the most recently modified first.
    max_sitemaps_per_poll: int = Field(50, ge=1)
    #: Skip entries (and child sitemaps) whose date is older than this; None keeps everything.
    only_newer_than_days: float | None = Field(None, gt=0)
    #: Follow child sitemaps on other sites (the protocol only allows same-site ones).
    follow_other_sites: bool = False
    max_sitemap_bytes: int = Field(SITEMAP_MAX_BYTES, gt=0)

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        normalize_url(value)  # raises InvalidArticle (a ValueError) with the reason
        return value.strip()

    def cutoff(self, now: datetime) -> datetime | None:
        if self.only_newer_than_days is None:
            return None
        return now - timedelta(days=self.only_newer_than_days)


@dataclass(frozen=True)
class _Read:
    """A sitemap fetched and parsed during a poll, with the validators of its response."""

    url: str  # as requested (``parsed.url`` is where redirects ended); the state's key
    parsed: ParsedSitemap
    validators: dict[str, Any]


class SitemapSource:
    def __init__(self, config: SitemapConfig) -> None:
        self.config = config

    def poll(self, context: PollContext) -> Iterator[Item | ItemError]:
        """Walk the sitemaps, then fetch the newest unseen pages (raises on a failed top fetch)."""
        now = datetime.now(UTC)
        cutoff = self.config.cutoff(now)
        candidates: list[SitemapEntry] = []
        for read in self._read_sitemaps(context, cutoff):
            if isinstance(read, ItemError):
                yield read
                continue
            yield from read.parsed.errors
            fresh = [e for e in read.parsed.entries if _is_fresh(e.date, cutoff)]
            unseen = context.state.unseen(e.canonical_url for e in fresh)
            if unseen:
                candidates.extend(e for e in fresh if e.canonical_url in unseen)
            else:
                _remember(context, read.url, read.validators)
        unseen = {e.canonical_url for e in candidates}
        limit = self.config.max_urls_per_poll
        for entry in select_new(candidates, unseen, cutoff=cutoff, limit=limit):
            if context.stop.is_set():
                return
            yield self._page(context, entry, now)

    def _read_sitemaps(
        self, context: PollContext, cutoff: datetime | None
    ) -> Iterator[_Read | ItemError]:
        """Breadth-first over the index tree; each sitemap at most once, within the limits."""
        queue: list[tuple[ChildSitemap, int]] = [(ChildSitemap(self.config.url), 0)]
        visited: set[str] = set()
        budget = self.config.max_sitemaps_per_poll
        while queue and budget and not context.stop.is_set():
            child, depth = queue.pop(0)
            key = normalize_url(child.url)
            if key in visited:
                continue
            visited.add(key)
            budget -= 1
            read = self._read(context, child.url, is_top=depth == 0)
            if isinstance(read, ItemError) or not read.parsed.is_index:
                yield read
                continue
            yield from read.parsed.errors
            children = [c for c in read.parsed.children if _is_fresh(c.lastmod, cutoff)]
            for other in children:
                if depth + 1 > self.config.max_depth:
                    yield ItemError(
                        "skipped",
                        f"nested deeper than max_depth={self.config.max_depth}",
                        other.url,
                    )
                elif not (self.config.follow_other_sites or _same_site(other.url, self.config.url)):
                    yield ItemError(
                        "skipped",
                        "child sitemap on another site (follow_other_sites is off)",
                        other.url,
                    )
                else:
                    queue.append((other, depth + 1))
            queue.sort(key=lambda pair: (pair[1], -_timestamp(pair[0].lastmod)))
        if queue and budget == 0:
            _LOG.info(
                "%s: %d sitemaps not fetched this poll (max_sitemaps_per_poll=%d reached; "
                "the most recently modified go first)",
                self.config.name,
                len(queue),
                self.config.max_sitemaps_per_poll,
            )

    def _read(self, context: PollContext, url: str, *, is_top: bool) -> _Read | ItemError:
        """Fetch (conditionally) and parse one sitemap; only the top one's fetch failure raises."""
        stored: dict[str, Any] = context.state.get(_state_key(url)) or {}
        try:
            response = context.fetcher.get(
                url,
                etag=stored.get("etag"),
                last_modified=stored.get("last_modified"),
                accept=_ACCEPT,
            )
        except FetchError as exc:
            if is_top or exc.kind == "rate_limited":
                raise
            return ItemError("fetch", f"{exc.kind}: {exc}", url)
        if response.not_modified:
            children = tuple(
                ChildSitemap(c["url"], _date_or_none(c["lastmod"]))
                for c in stored.get("children", ())
            )
            unchanged = {k: v for k, v in stored.items() if k != "children"}
            return _Read(url, ParsedSitemap(url, children=children), unchanged)
        validators = {
            name: value
            for name, value in (("etag", response.etag), ("last_modified", response.last_modified))
            if value
        }
        try:
            parsed = parse_sitemap(
                response.body, url=response.url, max_bytes=self.config.max_sitemap_bytes
            )
        except UnsafeXml as exc:
            return ItemError("unsafe_xml", str(exc), url)
        except ValueError as exc:
            return ItemError("parse", str(exc), url)
        if parsed.is_index:
            children_state = [
                {"url": c.url, "lastmod": c.lastmod and c.lastmod.isoformat()}
                for c in parsed.children
            ]
            _remember(context, url, {**validators, "children": children_state})
        return _Read(url, parsed, validators)

    def _page(self, context: PollContext, entry: SitemapEntry, now: datetime) -> Item | ItemError:
        try:
            article = fetch_article(
                context.fetcher,
                entry.loc,
                source=self.config.source_label,
                language_hint=entry.news_language or self.config.language_hint,
                fetched_at=now,
                fallback_title=entry.news_title,
                published_at=entry.news_published_at,
            )
            article = with_sitemap_metadata(article, entry)
        except FetchError as exc:
            if exc.kind == "rate_limited":
                raise
            return ItemError("fetch", f"{exc.kind}: {exc}", entry.loc)
        except ValueError as exc:  # ExtractionFailed, InvalidArticle
            return ItemError("extract", str(exc), entry.loc)
        return Item(article, seen_key=entry.canonical_url)


def with_sitemap_metadata(article: Article, entry: SitemapEntry) -> Article:
    """The page's article, noting which sitemap listed it and the news publication's name."""
    extra = {"sitemap": entry.sitemap}
    if entry.news_publication:
        extra["publication"] = entry.news_publication
    return article.model_copy(update={"metadata": {**article.metadata, **extra}})  # id unchanged


def _decompressed(data: bytes, max_bytes: int) -> bytes:
    """Gunzip ``data`` if it is gzip (by its magic number, whatever the URL or headers say)."""
    if not data.startswith(_GZIP_MAGIC):
        if len(data) > max_bytes:
            raise InvalidSitemap(f"sitemap is larger than {max_bytes} bytes")
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(max_bytes + 1)  # decompresses at most this much, so a bomb stops here
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidSitemap(f"corrupt gzip data: {exc}") from None
    if len(out) > max_bytes:
        raise InvalidSitemap(f"gzipped sitemap expands beyond {max_bytes} bytes")
    return out


def _parse_root(data: bytes) -> Element:
    try:
        return parse_xml(data)
    except UnsafeXml:
        raise
    except ValueError as exc:
        raise InvalidSitemap(str(exc)) from None  # parse_xml says what is wrong


def _entries(root: Element, sitemap_url: str) -> tuple[list[SitemapEntry], list[ItemError]]:
    entries: list[SitemapEntry] = []
    errors: list[ItemError] = []
    for number, element in enumerate(_children_named(root, "url"), start=1):
        where = f"{sitemap_url} (url #{number})"
        problems: list[str] = []
        loc = _resolved_loc(element, sitemap_url, problems)
        if loc is None:
            errors.append(ItemError("parse", "; ".join(problems), where))
            continue
        news = next(_children_named(element, "news"), None)
        publication = next(_children_named(news, "publication"), None) if news is not None else None
        language = _text(publication, "language")
        hint = language_hint(language) if language else None
        if language and not hint:
            problems.append(f"news:language {language!r} is not a language code")
        entries.append(
            SitemapEntry(
                loc=loc[0],
                canonical_url=loc[1],
                sitemap=sitemap_url,
                lastmod=_date(element, "lastmod", problems),
                news_title=_text(news, "title"),
                news_published_at=_date(news, "publication_date", problems),
                news_language=hint,
                news_publication=_text(publication, "name"),
            )
        )
        if problems:  # the entry is kept; only the unreadable field is lost, and said so
            errors.append(ItemError("parse", "; ".join(problems), f"{sitemap_url} ({loc[0]})"))
    return entries, errors


def _children(root: Element, sitemap_url: str) -> tuple[list[ChildSitemap], list[ItemError]]:
    children: list[ChildSitemap] = []
    errors: list[ItemError] = []
    for number, element in enumerate(_children_named(root, "sitemap"), start=1):
        problems: list[str] = []
        loc = _resolved_loc(element, sitemap_url, problems)
        if loc is None:
            errors.append(
                ItemError("parse", "; ".join(problems), f"{sitemap_url} (sitemap #{number})")
            )
            continue
        children.append(ChildSitemap(loc[0], _date(element, "lastmod", problems)))
        if problems:
            errors.append(ItemError("parse", "; ".join(problems), f"{sitemap_url} ({loc[0]})"))
    return children, errors


def _resolved_loc(element: Element, base: str, problems: list[str]) -> tuple[str, str] | None:
    """(absolute URL, canonical URL) of the element's ``<loc>``, or None with the reason."""
    raw = _text(element, "loc")
    if not raw:
        problems.append("no <loc>")
        return None
    absolute = urljoin(base, raw)
    try:
        return absolute, normalize_url(absolute)
    except InvalidArticle as exc:
        problems.append(f"<loc>: {exc}")
        return None


def _date(element: Element | None, name: str, problems: list[str]) -> datetime | None:
    text = _text(element, name)
    if not text:
        return None
    try:
        return parse_w3c_datetime(text)
    except ValueError as exc:
        problems.append(f"<{name}>: {exc}")
        return None


def _text(element: Element | None, name: str) -> str | None:
    if element is None:
        return None
    child = next(_children_named(element, name), None)
    text = (child.text or "").strip() if child is not None else ""
    return text or None


def _children_named(element: Element, name: str) -> Iterator[Element]:
    """Children by local name: sitemaps in the wild use several namespaces, or none."""
    return (child for child in element if _local_name(child.tag) == name)


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _is_fresh(date: datetime | None, cutoff: datetime | None) -> bool:
    return cutoff is None or date is None or date >= cutoff


def _timestamp(date: datetime | None) -> float:
    return date.timestamp() if date else float("-inf")


def _same_site(url: str, other: str) -> bool:
    """Same host, give or take ``www.`` or a subdomain (sitemaps often live on a static host)."""
    a, b = (_bare_host(u) for u in (url, other))
    return a == b or a.endswith(f".{b}") or b.endswith(f".{a}")


def _bare_host(url: str) -> str:
    return (urlsplit(url).hostname or "").removeprefix("www.")


def _state_key(url: str) -> str:
    return f"sitemap:{url}"


def _remember(context: PollContext, url: str, record: dict[str, Any]) -> None:
    if record:
        context.state.put(_state_key(url), record)


def _date_or_none(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
