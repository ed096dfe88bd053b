"""JSON API source: NewsAPI-like HTTP APIs described by a field mapping and a pagination style.

Mapping an item and computing the next page are pure functions of the decoded JSON; ``poll``
only fetches, decodes and decides when to stop: at ``max_pages``, at the last page, or at the
first page whose items were all seen before (APIs list newest first, so older pages are done).

Header and parameter values may reference environment variables (``"${NEWSAPI_KEY}"``),
resolved at poll time, so neither the sources file nor the config object ever holds the secret.
Resolved values are blanked out of every error message this module produces, because a key
sent as a query parameter is part of each URL a fetch error names, and out of urllib3's debug
log, which records every request URL.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.fetch import FetchError
from connectors.pages import fetch_article, html_to_text
from connectors.sitemap import language_hint, parse_w3c_datetime
from connectors.source import Item, ItemError, PollContext, SourceConfig
from newsflow.article import Article, InvalidArticle, normalize_url
from newsflow.errors import NewsflowError

__all__ = [
    "FieldMap",
    "InvalidItem",
    "InvalidResponse",
    "JsonApiConfig",
    "JsonApiSource",
    "MappedItem",
    "MissingEnvironmentVariable",
    "PageRequest",
    "decode_json",
    "first_request",
    "items_at",
    "lookup",
    "map_item",
    "next_request",
    "redact",
    "resolve_references",
    "with_full_text",
]

Pagination = Literal["none", "page", "offset", "cursor", "next_url"]

_ACCEPT = "application/json"
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REDACTED = "[redacted]"
_MARKUP = re.compile(r"<[A-Za-z/!][^>]*>")
#: Epoch timestamps above this are milliseconds (as seconds it would be the year 5138).
_EPOCH_MILLISECONDS = 100_000_000_000


class _SecretFilter(logging.Filter):
    """Blanks resolved secrets out of log records of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()  # replaced, never mutated: no lock to read

    def add(self, secrets: set[str]) -> None:
        with self._lock:
            self._secrets = self._secrets | secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            redacted = redact(message, self._secrets)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


#: urllib3's loggers that print request URLs (at DEBUG), hence query-parameter keys.
_URL_LOGGERS = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry")
_SECRET_FILTER = _SecretFilter()
for _name in _URL_LOGGERS:
    logging.getLogger(_name).addFilter(_SECRET_FILTER)


class MissingEnvironmentVariable(NewsflowError):
    """A header or parameter references an environment variable that is not set."""


class InvalidResponse(ValueError):
    """A response that is not the JSON document the config describes."""


class InvalidItem(ValueError):
    """One item of a page that cannot become an article; the message says which field and why."""


class FieldMap(BaseModel):
    """Dotted paths (``source.name``, ``authors.0``) from an API item to the article's fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = None
    body: str | None = None
    #: Used as the body when the body field is missing or empty (NewsAPI's ``description``).
    summary: str | None = None
    url: str | None = None
    #: The API's own item id: the seen key when an item has no URL.
    id: str | None = None
    published_at: str | None = None
    language: str | None = None
    authors: str | None = None
    #: The outlet an aggregator got the item from (NewsAPI's ``source.name``), kept as metadata
    #: ``outlet``; ``Article.source`` stays this source's label.
    outlet: str | None = None
    #: Extra metadata: metadata name -> path.
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_text(self) -> FieldMap:
        if not (self.title or self.body or self.summary):
            raise ValueError("map at least one of title, body, summary")
        return self


class JsonApiConfig(SourceConfig):
    type: Literal["json_api"] = "json_api"
    url: str
    #: Query parameters; values may reference environment variables: ``"${NAME}"``.
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    #: Request headers; values may reference environment variables: ``"Bearer ${TOKEN}"``.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    #: Dotted path to the list of items in a response; "" when the response is the list.
    items_path: str = ""
    fields: FieldMap
    pagination: Pagination = "none"
    page_param: str = "page"
    first_page: int = 1
    offset_param: str = "offset"
    #: Sent with ``page_size`` on every request when set; a shorter page is the last one.
    page_size_param: str | None = None
    page_size: int | None = Field(None, ge=1)
    #: Where the next cursor is in a response, and the parameter that sends it back.
    cursor_path: str | None = None
    cursor_param: str = "cursor"
    #: Where the URL of the next page is in a response.
    next_url_path: str | None = None
    max_pages: int = Field(5, ge=1)
    #: Fetch the article page when the API's body is missing or shorter than ``min_body_chars``.
    full_text: bool = False
    min_body_chars: int = Field(500, ge=0)

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        normalize_url(value)  # raises InvalidArticle (a ValueError) with the reason
        return value.strip()

    @model_validator(mode="after")
    def _pagination_complete(self) -> JsonApiConfig:
        if self.pagination == "cursor" and not self.cursor_path:
            raise ValueError("pagination 'cursor' needs cursor_path")
        if self.pagination == "next_url" and not self.next_url_path:
            raise ValueError("pagination 'next_url' needs next_url_path")
        if (self.page_size_param is None) != (self.page_size is None):
            raise ValueError("set page_size_param and page_size together")
        return self


@dataclass(frozen=True)
class PageRequest:
    url: str  # may carry a query of its own (a next URL does)
    params: Mapping[str, str]

    @property
    def full_url(self) -> str:
        if not self.params:
            return self.url
        return f"{self.url}{'&' if '?' in self.url else '?'}{urlencode(self.params)}"


@dataclass(frozen=True)
class MappedItem:
    article: Article
    seen_key: str
    #: The API gave no body worth the name (only with ``full_text``: fetch the page).
    needs_full_text: bool = False


def resolve_references(
    values: Mapping[str, Any], environ: Mapping[str, str], *, what: str
) -> tuple[dict[str, str], set[str]]:
    """Values with ``${NAME}`` replaced from ``environ``, and the secrets that were put in.

    Raises ``MissingEnvironmentVariable`` naming the variable (never a value) when it is unset
    or empty.
    """
    secrets: set[str] = set()
    resolved: dict[str, str] = {}
    for name, value in values.items():
        text = _param_text(value)
        for variable in _REFERENCE.findall(text):
            if not environ.get(variable):
                raise MissingEnvironmentVariable(
                    f"{what} {name!r} references the environment variable {variable}, "
                    "which is not set (or empty)"
                )
            secrets.add(environ[variable])
        resolved[name] = _REFERENCE.sub(lambda match: environ[match[1]], text)
    return resolved, secrets


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, raw or URL-encoded, replaced by a marker."""
    variants = {v for s in secrets for v in (s, quote(s, safe=""), quote_plus(s)) if v}
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, _REDACTED)
    return text


def lookup(value: Any, path: str) -> Any:
    """Follow a dotted path through objects and lists ("authors.0.name"); None if absent."""
    if not path:
        return value
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        snippet = body[:80].decode("utf-8", errors="replace")
        raise InvalidResponse(f"response is not JSON ({exc}); it starts with {snippet!r}") from None


def items_at(document: Any, path: str) -> list[Any]:
    """The list of items at ``path``; ``InvalidResponse`` says what is there instead."""
    items = lookup(document, path)
    where = repr(path) if path else "the top level"
    if isinstance(items, list):
        return items
    if items is None:
        keys = sorted(document)[:10] if isinstance(document, dict) else []
        raise InvalidResponse(f"no list of items at {where}; the response has keys {keys}")
    raise InvalidResponse(f"expected a list of items at {where}, got {_json_type(items)}")


def first_request(config: JsonApiConfig, params: Mapping[str, str]) -> PageRequest:
    """The first page's request, from the resolved parameters."""
    first = dict(params)
    if config.page_size_param:
        first[config.page_size_param] = str(config.page_size)
    if config.pagination == "page":
        first[config.page_param] = str(config.first_page)
    elif config.pagination == "offset":
        first[config.offset_param] = "0"
    return PageRequest(config.url, first)


def next_request(
    config: JsonApiConfig, current: PageRequest, document: Any, item_count: int
) -> PageRequest | None:
    """The request for the page after ``current``, or None when there is none."""
    style = config.pagination
    if style == "none" or item_count == 0:
        return None
    if style in ("page", "offset") and config.page_size and item_count < config.page_size:
        return None
    if style == "page":
        page = int(current.params[config.page_param]) + 1
        return replace(current, params={**current.params, config.page_param: str(page)})
    if style == "offset":
        offset = int(current.params[config.offset_param]) + item_count
        return replace(current, params={**current.params, config.offset_param: str(offset)})
    path = config.cursor_path if style == "cursor" else config.next_url_path
    token = lookup(document, path or "")
    if token is None or token == "":
        return None
    if isinstance(token, bool) or not isinstance(token, str | int):
        raise InvalidResponse(f"{path!r} should be a string, got {_json_type(token)}")
    if style == "cursor":
        return replace(current, params={**current.params, config.cursor_param: str(token)})
    url = urljoin(current.full_url, str(token))
    own = {name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    # A next URL usually repeats the query; parameters it leaves out (often the key) still apply.
    return PageRequest(url, {k: v for k, v in current.params.items() if k not in own})


def map_item(
    raw: Any, fields: FieldMap, *, source: str, default_language: str | None, fetched_at: datetime
) -> MappedItem:
    """One API item as an article with its seen key; raises ``InvalidItem`` with the reason."""
    if not isinstance(raw, dict):
        raise InvalidItem(f"expected a JSON object, got {_json_type(raw)}")
    title = _text(raw, fields.title, "title")
    body = _text(raw, fields.body, "body") or _text(raw, fields.summary, "summary")
    url = _string(raw, fields.url, "url")
    item_id = _string(raw, fields.id, "id", numbers=True)
    metadata: dict[str, Any] = {name: lookup(raw, path) for name, path in fields.metadata.items()}
    if authors := _authors(raw, fields.authors):
        metadata["authors"] = authors
    if outlet := _string(raw, fields.outlet, "outlet"):
        metadata["outlet"] = outlet
    language = _string(raw, fields.language, "language")
    hint = language_hint(language) if language else None
    if language and not hint:
        metadata["language"] = language  # not a code we can use as a hint; kept as said
    if item_id:
        metadata["api_id"] = item_id
    try:
        article = Article.create(
            url=url,
            source=source,
            title=title,
            body=body,
            published_at=_date(raw, fields.published_at),
            fetched_at=fetched_at,
            language_hint=hint or default_language,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )
    except InvalidArticle as exc:
        raise InvalidItem(str(exc)) from None
    if url:
        key = normalize_url(url)
    elif item_id:
        key = f"id:{item_id}"
    else:
        key = f"content:{article.id}"  # the id of an article without a URL hashes its content
    return MappedItem(article, key)


def with_full_text(api: Article, page: Article) -> Article:
    """The API's article with the page's body; the page fills only what the API left empty."""
    fields = api.model_dump(exclude={"id", "schema_version"})
    return Article.create(
        **{
            **fields,
            "canonical_url": page.canonical_url,
            "title": api.title or page.title,
            "body": page.body,
            "published_at": api.published_at or page.published_at,
            "language_hint": api.language_hint or page.language_hint,
            "metadata": {**page.metadata, **api.metadata, "full_text": True},
        }
    )


class JsonApiSource:
    def __init__(self, config: JsonApiConfig) -> None:
        self.config = config

    def poll(self, context: PollContext) -> Iterator[Item | ItemError]:
        """Page through the API until a stop condition (module docstring); fetch errors raise."""
        config = self.config
        headers, header_secrets = resolve_references(config.headers, os.environ, what="header")
        params, param_secrets = resolve_references(config.params, os.environ, what="parameter")
        secrets = header_secrets | param_secrets
        _SECRET_FILTER.add(secrets)
        request: PageRequest | None = first_request(config, params)
        requested: set[str] = set()
        yielded: set[str] = set()
        now = datetime.now(UTC)
        for _ in range(config.max_pages):
            if request is None or context.stop.is_set():
                return
            url = request.full_url
            where = redact(url, secrets)
            if url in requested:
                yield ItemError("pagination", "the API returned the same next page again", where)
                return
            requested.add(url)
            try:
                document = decode_json(self._get(context, url, headers, secrets))
                raw_items = items_at(document, config.items_path)
            except InvalidResponse as exc:
                yield ItemError("parse", redact(str(exc), secrets), where)
                return
            page: list[MappedItem] = []
            for number, raw in enumerate(raw_items, start=1):
                try:
                    page.append(
                        map_item(
                            raw,
                            config.fields,
                            source=config.source_label,
                            default_language=config.language_hint,
                            fetched_at=now,
                        )
                    )
                except InvalidItem as exc:
                    yield ItemError("parse", redact(str(exc), secrets), f"{where} item #{number}")
            unseen = context.state.unseen(m.seen_key for m in page)
            for mapped in page:
                if mapped.seen_key in unseen and mapped.seen_key not in yielded:
                    yielded.add(mapped.seen_key)
                    yield from self._completed(context, mapped, now)
            if page and not unseen:
                return  # everything from here on was sent by an earlier poll
            try:
                request = next_request(config, request, document, len(raw_items))
            except InvalidResponse as exc:
                yield ItemError("pagination", redact(str(exc), secrets), where)
                return

    def _get(
        self, context: PollContext, url: str, headers: dict[str, str], secrets: set[str]
    ) -> bytes:
        try:
            response = context.fetcher.get(
                url,
                accept=_ACCEPT,
                headers=headers,
            )
        except FetchError as exc:
            raise _redacted_fetch_error(exc, secrets) from None
        return response.body

    def _completed(
        self, context: PollContext, mapped: MappedItem, now: datetime
    ) -> Iterator[Item | ItemError]:
        """The item, with the page's full text when configured and the API's body is short.

        A page that cannot be fetched is reported, and the API's own text is published anyway
        (with ``full_text_error`` in its metadata): a short article beats none.
        """
        article = mapped.article
        url = article.url
        if url and self.config.full_text and len(article.body) < self.config.min_body_chars:
            fetched = self._full_text(context, article, url, now)
            if isinstance(fetched, ItemError):
                yield fetched
                failure = {"full_text_error": f"{fetched.kind}: {fetched.reason}"}
                article = article.model_copy(update={"metadata": {**article.metadata, **failure}})
            else:
                article = fetched
        yield Item(article, seen_key=mapped.seen_key)

    def _full_text(
        self, context: PollContext, article: Article, url: str, now: datetime
    ) -> Article | ItemError:
        try:
            page = fetch_article(
                context.fetcher,
                url,
                source=article.source,
                language_hint=article.language_hint,
                fetched_at=now,
            )
            return with_full_text(article, page)
        except FetchError as exc:
            if exc.kind == "rate_limited":
                raise
            return ItemError("fetch", f"{exc.kind}: {exc}", url)
        except ValueError as exc:  # ExtractionFailed, InvalidArticle
            return ItemError("extract", str(exc), url)


def _redacted_fetch_error(exc: FetchError, secrets: set[str]) -> FetchError:
    return FetchError(
        exc.kind,
        redact(str(exc), secrets),
        url=redact(exc.url, secrets),
        status=exc.status,
        retry_after=exc.retry_after,
    )


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _string(
    raw: dict[str, Any], path: str | None, name: str, *, numbers: bool = False
) -> str | None:
    value = lookup(raw, path) if path else None
    if value is None:
        return None
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidItem(f"{name} ({path!r}): expected a string, got {_json_type(value)}")
    return value.strip() or None


def _text(raw: dict[str, Any], path: str | None, name: str) -> str:
    """A text field; markup (WordPress's ``content.rendered``) is reduced to sanitized text."""
    value = _string(raw, path, name) or ""
    return html_to_text(value) if _MARKUP.search(value) else value


def _authors(raw: dict[str, Any], path: str | None) -> list[str]:
    value = lookup(raw, path) if path else None
    if value is None:
        return []
    names = value if isinstance(value, list) else [value]
    out: list[str] = []
    for name in names:
        if isinstance(name, dict):
            name = name.get("name")
        if not isinstance(name, str):
            raise InvalidItem(
                f"authors ({path!r}): expected names or objects with a name, got {_json_type(name)}"
            )
        if name.strip():
            out.append(name.strip())
    return out


def _date(raw: dict[str, Any], path: str | None) -> datetime | None:
    value = lookup(raw, path) if path else None
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > _EPOCH_MILLISECONDS else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidItem(f"published_at ({path!r}): {value} is not a timestamp") from None
    if not isinstance(value, str):
        raise InvalidItem(f"published_at ({path!r}): expected a date, got {_json_type(value)}")
    try:
        return parse_w3c_datetime(value)
    except ValueError as exc:
        raise InvalidItem(f"published_at ({path!r}): {exc}") from None


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    return names.get(type(value), "a number")
