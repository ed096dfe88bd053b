"""What every source (RSS, sitemap, pages, JSON API, WARC, ...) has in common.

A source is polled by the runner (``connectors.runner``) and yields ``Item``s and
``ItemError``s; it never talks to Kafka itself. The runner publishes each item and only after
the broker acknowledged it marks the item seen and stores its checkpoint, so a crash between
fetch and publish re-sends (at-least-once) and a restart after publish re-sends nothing.

Each source module defines its own config model (a subclass of ``SourceConfig`` with a literal
``type``) and a source class built from it; ``connectors.sources`` collects them into the
sources file's schema.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from newsflow.article import Article

if TYPE_CHECKING:
    from connectors.fetch import Fetcher


class SourceConfig(BaseModel):
    """Settings shared by every kind of source; one entry of the sources file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    type: str
    enabled: bool = True
    #: Published as ``Article.source``; defaults to ``name``.
    label: str | None = None
    #: What the publisher says its language is (ISO 639-1); a prior for detection downstream.
    language_hint: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    #: Seconds between polls when the source is neither busy nor failing.
    interval_seconds: float = Field(900.0, gt=0)
    #: Adaptive backoff bounds: busy sources are polled down to the minimum, idle or failing
    #: ones back off up to the maximum.
    min_interval_seconds: float = Field(60.0, gt=0)
    max_interval_seconds: float = Field(6 * 3600.0, gt=0)
    respect_robots: bool = True
    #: Hosts or CIDR networks reachable despite the SSRF guard (intranet sources, tests).
    allow_networks: tuple[str, ...] = ()

    @property
    def source_label(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Item:
    """One article ready to publish, with what the runner records once Kafka acknowledged it."""

    article: Article
    #: Identity of the item in its source (GUID, link or content hash), remembered as seen.
    seen_key: str
    #: Resume point after this item (e.g. a WARC file offset); stored after the ack.
    checkpoint: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ItemError:
    """Something in the source that could not become an article; reported, never fatal."""

    kind: str  # short and stable, used as a metric label: "parse", "extract", "fetch", ...
    reason: str
    location: str  # URL, file:line, WARC record id, ...


class SourceState(Protocol):
    """The persisted state of one source (``connectors.state`` stores it in SQLite)."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def put(self, key: str, value: Any) -> None: ...
    def unseen(self, keys: Iterable[str]) -> set[str]:
        """The keys in ``keys`` not yet marked seen."""
        ...

    def checkpoint(self) -> Mapping[str, Any] | None: ...


@dataclass
class PollContext:
    """What a source may use while polling."""

    fetcher: Fetcher
    state: SourceState
    #: Set when the runner is shutting down; long polls check it between items.
    stop: threading.Event = field(default_factory=threading.Event)


class Source(Protocol):
    @property
    def config(self) -> SourceConfig:
        """Read-only here, so a source may narrow it to its own config model."""
        ...

    def poll(self, context: PollContext) -> Iterator[Item | ItemError]:
        """Fetch once and yield what is new; raising ``FetchError`` marks the poll failed."""
        ...
