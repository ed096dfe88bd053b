"""The article contract: the versioned JSON message connectors produce and the pipeline consumes.

It lives outside both packages so that ``connectors`` and ``pipeline`` depend on it and never on
each other. Validation runs on both sides of Kafka: a producer cannot publish a malformed article,
and a consumer reading a topic written by someone else still gets a clear reason for every reject.

The article id is a deterministic hash of the canonical URL (tracking parameters, fragments and
case differences removed), or of source + title + body when there is no URL, so that re-ingesting
the same story yields the same Elasticsearch ``_id`` and a replay changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

SCHEMA_VERSION: Literal[1] = 1
MAX_TITLE_CHARS = 1_000
MAX_BODY_CHARS = 500_000
MAX_URL_CHARS = 2_048

#: Query parameters that identify a campaign or a click, never the article.
_TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|_ga|ref|ref_src|cmpid)$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WHITESPACE = re.compile(r"\s+")


class InvalidArticle(ValueError):
    """An article that must not enter (or leave) Kafka; the message says why."""


def normalize_url(url: str) -> str:
    """Canonical article URL: cosmetic variants of one story URL map to one id."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError as exc:  # a port out of range or not a number
        raise InvalidArticle(f"url {url!r}: {exc}") from None
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidArticle(f"url {url!r} is not an absolute http(s) URL")
    host = parts.hostname.lower().removeprefix("www.")
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = urlencode(
        sorted(
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING_PARAMS.match(k)
        )
    )
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https" if scheme == "http" else scheme, netloc, path, query, ""))


def normalize_text(text: str) -> str:
    """Unicode-normalized, case-folded, whitespace-collapsed text for content hashing."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def article_id(*, canonical_url: str | None, source: str, title: str, body: str) -> str:
    """Deterministic id: hash of the normalized canonical URL, else of source + title + body."""
    if canonical_url:
        key = "url\x00" + normalize_url(canonical_url)
    else:
        key = "content\x00" + "\x00".join(normalize_text(t) for t in (source, title, body))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class Article(BaseModel):
    """Version 1 of the article message (JSON on the wire, UTF-8)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    url: str | None = Field(None, max_length=MAX_URL_CHARS)
    canonical_url: str | None = Field(None, max_length=MAX_URL_CHARS)
    source: str = Field(min_length=1, max_length=200)
    title: str = Field("", max_length=MAX_TITLE_CHARS)
    body: str = Field("", max_length=MAX_BODY_CHARS)
    published_at: datetime | None = None
    fetched_at: datetime
    #: What the source claims the language is (ISO 639-1); a prior for detection, not the truth.
    language_hint: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    #: Connector-specific extras (authors, section, feed id, ...); small, flat, JSON-serializable.
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _supported_version(cls, value: Any) -> Any:
        """A newer producer's message says which version it is and what to do about it."""
        if value != SCHEMA_VERSION or isinstance(value, bool):
            raise PydanticCustomError(
                "schema_version",
                "version {version} is not supported by this newsflow (it supports {supported}); "
                "upgrade newsflow or re-publish as version {supported}",
                {"version": json.dumps(value), "supported": SCHEMA_VERSION},
            )
        return value

    @field_validator("url", "canonical_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value:
            normalize_url(value)
        return value or None

    @field_validator("published_at", "fetched_at")
    @classmethod
    def _timezone_aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a timezone (e.g. 2026-11-26T10:00:00Z)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Article:
        if not (self.title or self.body):
            raise ValueError("an article needs a title or a body")
        expected = article_id(
            canonical_url=self.canonical_url or self.url,
            source=self.source,
            title=self.title,
            body=self.body,
        )
        if self.id != expected:
            raise ValueError(f"id {self.id} does not match its canonical URL/content ({expected})")
        return self

    @classmethod
    def create(
        cls,
        *,
        source: str,
        title: str,
        body: str,
        fetched_at: datetime,
        url: str | None = None,
        canonical_url: str | None = None,
        **fields: Any,
    ) -> Article:
        """Build and validate an article, deriving its id; raises ``InvalidArticle``."""
        try:
            return cls(
                id=article_id(
                    canonical_url=canonical_url or url,
                    source=source.strip(),
                    title=title.strip(),
                    body=body.strip(),
                ),
                url=url,
                canonical_url=canonical_url,
                source=source,
                title=title,
                body=body,
                fetched_at=fetched_at,
                **fields,
            )
        except ValidationError as exc:
            raise InvalidArticle(_explain(exc)) from None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> Article:
        """Parse and validate a message from the wire; raises ``InvalidArticle``."""
        try:
            return cls.model_validate_json(payload)
        except ValidationError as exc:
            raise InvalidArticle(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'article'}: {err['msg']}" for err in exc.errors()
    )
