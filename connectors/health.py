"""Per-source health: counters the runner updates, Prometheus exposes and ``status`` prints.

One ``HealthBook`` is the single source of truth while the runner lives: Prometheus reads it at
scrape time through a collector (so no metric can drift from what ``status`` shows), and the
runner writes its snapshots to the state database so that ``newsflow connectors status``, a
separate process, can print the same table.

Metrics, all named ``newsflow_connector_*`` and labelled ``source`` and ``type`` (its kind in
the sources file): ``fetches_total``, ``items_total`` (+ ``outcome``: sent, truncated,
dead_letter), ``errors_total`` (+ ``kind``: the FetchError or ItemError kind, ``publish`` or
``unexpected``), ``last_success_timestamp_seconds``, ``newest_item_age_seconds``,
``interval_seconds`` and ``next_poll_timestamp_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

_PREFIX = "newsflow_connector_"


@dataclass
class SourceHealth:
    """What one source has done since the runner started; times are Unix seconds."""

    type: str
    fetches: int = 0
    items: Counter[str] = field(default_factory=Counter)  # by outcome: sent, truncated, ...
    errors: Counter[str] = field(default_factory=Counter)  # by kind
    last_success: float | None = None
    last_error: str | None = None
    #: Publication (else fetch) time of the newest item sent: a feed that went stale shows here.
    newest_item: float | None = None
    interval: float | None = None
    next_poll: float | None = None

    @property
    def new_items(self) -> int:
        return sum(self.items.values())

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["items"], data["errors"] = dict(self.items), dict(self.errors)
        return data

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> SourceHealth:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(
            **{
                **known,
                "items": Counter(known.get("items", {})),
                "errors": Counter(known.get("errors", {})),
            }
        )


class HealthBook:
    """Thread-safe health of every source the runner polls."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sources: dict[str, SourceHealth] = {}

    def register(
        self, name: str, type: str, interval: float, previous: Mapping[str, Any] | None = None
    ) -> None:
        """Track a source; ``previous`` (its last snapshot) carries counters, last success and
        newest item across restarts, so a stale feed still looks stale after a redeploy."""
        with self._lock:
            health = SourceHealth.from_snapshot(previous) if previous else SourceHealth(type)
            health.type, health.interval, health.next_poll = type, interval, None
            self._sources[name] = health

    def poll_started(self, name: str) -> None:
        with self._lock:
            self._sources[name].fetches += 1

    def item_error(self, name: str, kind: str) -> None:
        with self._lock:
            self._sources[name].errors[kind] += 1

    def published(self, name: str, outcome: str, item_time: float) -> None:
        with self._lock:
            health = self._sources[name]
            health.items[outcome] += 1
            item_time = min(item_time, self._clock())  # a date in the future is not "newest"
            if health.newest_item is None or item_time > health.newest_item:
                health.newest_item = item_time

    def poll_succeeded(self, name: str) -> None:
        with self._lock:
            self._sources[name].last_success = self._clock()

    def poll_failed(self, name: str, kind: str, message: str) -> None:
        with self._lock:
            health = self._sources[name]
            health.errors[kind] += 1
            health.last_error = f"{kind}: {message}"

    def scheduled(self, name: str, interval: float, next_poll: float | None) -> None:
        with self._lock:
            health = self._sources[name]
            health.interval, health.next_poll = interval, next_poll

    def now(self) -> float:
        return self._clock()

    def snapshots(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: health.snapshot() for name, health in self._sources.items()}

    def get(self, name: str) -> SourceHealth:
        with self._lock:
            return SourceHealth.from_snapshot(self._sources[name].snapshot())


class HealthCollector(Collector):
    """Prometheus metrics computed from the book at scrape time."""

    def __init__(self, book: HealthBook) -> None:
        self._book = book

    def collect(self) -> Iterator[Metric]:
        now = self._book.now()
        labels = ["source", "type"]
        fetches = CounterMetricFamily(f"{_PREFIX}fetches", "Polls started.", labels=labels)
        items = CounterMetricFamily(
            f"{_PREFIX}items", "New items acknowledged, by outcome.", labels=[*labels, "outcome"]
        )
        errors = CounterMetricFamily(
            f"{_PREFIX}errors",
            "Failed polls and rejected items, by kind.",
            labels=[*labels, "kind"],
        )
        gauges = {
            "last_success": GaugeMetricFamily(
                f"{_PREFIX}last_success_timestamp_seconds",
                "End of the last successful poll (Unix time).",
                labels=labels,
            ),
            "newest_item": GaugeMetricFamily(
                f"{_PREFIX}newest_item_age_seconds",
                "Age of the newest item sent (publication time, else fetch time).",
                labels=labels,
            ),
            "interval": GaugeMetricFamily(
                f"{_PREFIX}interval_seconds", "Current adaptive poll interval.", labels=labels
            ),
            "next_poll": GaugeMetricFamily(
                f"{_PREFIX}next_poll_timestamp_seconds",
                "When the source is polled next (Unix time).",
                labels=labels,
            ),
        }
        for name, snap in self._book.snapshots().items():
            health = SourceHealth.from_snapshot(snap)
            source = [name, health.type]
            fetches.add_metric(source, health.fetches)
            for outcome, count in health.items.items():
                items.add_metric([*source, outcome], count)
            for kind, count in health.errors.items():
                errors.add_metric([*source, kind], count)
            values = {
                "last_success": health.last_success,
                "newest_item": None if health.newest_item is None else now - health.newest_item,
                "interval": health.interval,
                "next_poll": health.next_poll,
            }
            for key, value in values.items():
                if value is not None:
                    gauges[key].add_metric(source, value)
        yield from (fetches, items, errors, *gauges.values())


@contextmanager
def serve_metrics(
    book: HealthBook, address: tuple[str, int] | None, out: TextIO
) -> Iterator[int | None]:
    """Serve ``/metrics`` for the book on (host, port) while inside; yields the bound port.

    A registry of its own (not prometheus_client's global one) so that several runners in one
    process, as in tests, do not collide.
    """
    if address is None:
        yield None
        return
    registry = CollectorRegistry()
    registry.register(HealthCollector(book))
    server, thread = start_http_server(address[1], addr=address[0], registry=registry)
    port = int(server.server_address[1])
    print(f"connectors: metrics on http://{address[0]}:{port}/metrics", file=out)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{seconds / size:.0f}{unit}"
            break
    else:
        text = f"{seconds:.0f}s"
    return f"in {text}" if future else f"{text} ago"


def status_rows(snapshots: Mapping[str, Mapping[str, Any]], now: float) -> list[dict[str, object]]:
    """The ``connectors status`` table, one row per source."""
    rows: list[dict[str, object]] = []
    for name, snap in snapshots.items():
        health = SourceHealth.from_snapshot(snap)
        errors = sum(health.errors.values())
        detail = ", ".join(f"{k} {v}" for k, v in health.errors.most_common())
        rows.append(
            {
                "source": name,
                "type": health.type,
                "fetches": health.fetches,
                "new": health.new_items,
                "errors": f"{errors} ({detail})" if errors else "0",
                "last success": _age(
                    None if health.last_success is None else now - health.last_success
                ),
                "newest item": _age(
                    None if health.newest_item is None else now - health.newest_item
                ),
                "interval": "-" if health.interval is None else f"{health.interval:.0f}s",
                "next poll": _age(None if health.next_poll is None else now - health.next_poll),
                "last error": (health.last_error or "-")[:80],
            }
        )
    return rows


def status_table(
    snapshots: Mapping[str, Mapping[str, Any]],
    configured: Mapping[str, str] | None,
    now: float,
) -> list[dict[str, object]]:
    """Rows for ``connectors status``; with ``configured`` (name -> type), exactly those
    sources, including any that never ran."""
    if configured is not None:
        snapshots = {name: snapshots.get(name, {"type": kind}) for name, kind in configured.items()}
    return status_rows(snapshots, now)
