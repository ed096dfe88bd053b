"""Every metric the pipeline reports, defined once; stages call the small helpers below.

Each helper updates the Prometheus metrics (``newsflow_pipeline_*``, in ``REGISTRY``, served
by ``pipeline.endpoint``) and, where the stage had one before, the Beam counter of the same
event, so that runners whose workers live in other processes still see Beam's metrics.

The registry is process-global on purpose: Beam's in-process FnApiRunner (the default runner)
and the portable runners in LOOPBACK mode run the DoFns in the process that serves
``/metrics``. Workers in other processes (``--direct_running_mode=multi_processing``, Flink's
PROCESS or DOCKER environments, Dataflow) update their own copy, which nobody scrapes: there,
read Beam's metrics.

Helpers also keep ``Progress`` (when the loop last showed signs of life, when the last bundle
finished and committed), which the liveness and readiness probes read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import apache_beam as beam
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

if TYPE_CHECKING:  # the stages import this module; it must not import them back
    from pipeline.enriched import EnrichedArticle

__all__ = [
    "REGISTRY",
    "Progress",
    "acknowledged",
    "bulk_request",
    "bundle_finished",
    "dead_lettered",
    "polled",
    "progress",
    "reached_sink",
    "retried",
    "sanitized",
    "stage_batch",
    "start",
]

_PREFIX = "newsflow_pipeline_"
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes

#: Seconds; from sub-second (a warm stream) to a day (a backlog being worked off).
_LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 86400)
_BULK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

RECORDS_READ = Counter(
    f"{_PREFIX}records_read",
    "Kafka records read from the raw topic.",
    ["topic", "partition"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    f"{_PREFIX}consumer_lag_records",
    "Records not read yet: partition end offset minus the reader's position, after each poll.",
    ["topic", "partition"],
    registry=REGISTRY,
)
ARTICLES_IN = Counter(
    f"{_PREFIX}articles_in",
    "Articles (for decode: records) a stage received.",
    ["stage"],
    registry=REGISTRY,
)
ARTICLES_OUT = Counter(
    f"{_PREFIX}articles_out",
    "Articles a stage passed on (for index: documents Elasticsearch acknowledged).",
    ["stage"],
    registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    f"{_PREFIX}stage_seconds_per_article",
    "A stage's wall time on a batch divided by its articles, observed once per article.",
    ["stage"],
    buckets=_STAGE_BUCKETS,
    registry=REGISTRY,
)
ERRORS = Counter(
    f"{_PREFIX}errors",
    "Errors by stage and kind: every dead letter's error class, and transient failures.",
    ["stage", "error_class"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    f"{_PREFIX}dead_letters",
    "Dead letters the broker acknowledged on the dead-letter topic.",
    ["stage", "error_class"],
    registry=REGISTRY,
)
SANITIZED = Counter(
    f"{_PREFIX}sanitized_fields",
    "Article fields changed to be safe to index, by what was removed: markup (tags, scripts) "
    "or invisible (control, zero-width, bidi) characters.",
    ["stage", "removed", "field"],
    registry=REGISTRY,
)
DEDUPE_OUTCOMES = Counter(
    f"{_PREFIX}dedupe_outcomes",
    "De-duplication decisions of the articles reaching the sink: new, clustered, duplicate.",
    ["outcome"],
    registry=REGISTRY,
)
END_TO_END = Histogram(
    f"{_PREFIX}end_to_end_latency_seconds",
    "From the article's fetched_at (set by the connector) to Elasticsearch's acknowledgement.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BULK_SECONDS = Histogram(
    f"{_PREFIX}bulk_request_seconds",
    "One bulk call to Elasticsearch; outcome retry = some documents must be sent again.",
    ["outcome"],
    buckets=_BULK_BUCKETS,
    registry=REGISTRY,
)
BUNDLES = Counter(
    f"{_PREFIX}bundles",
    "Bundles that went through the whole chain, idle ones (polls that found nothing) included.",
    registry=REGISTRY,
)
COMMITS = Counter(f"{_PREFIX}commits", "Offset commits to Kafka.", registry=REGISTRY)
RECORDS_COMMITTED = Counter(
    f"{_PREFIX}records_committed",
    "Records fully handled (indexed, suppressed or dead-lettered) and committed.",
    registry=REGISTRY,
)
LAST_BUNDLE = Gauge(
    f"{_PREFIX}last_bundle_timestamp_seconds",
    "When the last bundle finished (Unix time).",
    registry=REGISTRY,
)
LAST_COMMIT = Gauge(
    f"{_PREFIX}last_commit_timestamp_seconds",
    "When offsets were last committed (Unix time); 0 before the first commit.",
    registry=REGISTRY,
)


@dataclass(frozen=True)
class Progress:
    """Unix times the probes compare with now; None until it first happened."""

    started: float
    last_activity: float | None = None  # a Kafka poll or a bulk call: the loop is turning
    last_bundle: float | None = None
    last_commit: float | None = None


_progress = Progress(started=time.time())


def start() -> None:
    """A pipeline starts in this process: the probes measure from now."""
    global _progress
    _progress = Progress(started=time.time())


def progress() -> Progress:
    return _progress


def _touch(**times: float) -> None:
    global _progress
    _progress = replace(_progress, **times)


def polled(topic: str, partition: int, records: int, lag: int | None) -> None:
    """After each Kafka poll of one partition; ``lag`` None: unknown this time."""
    labels = (topic, str(partition))
    RECORDS_READ.labels(*labels).inc(records)
    if lag is not None:
        CONSUMER_LAG.labels(*labels).set(max(lag, 0))
    _touch(last_activity=time.time())


def stage_batch(stage: str, received: int, passed: int, seconds: float) -> None:
    """After a stage handled a batch: its throughput and its cost per article."""
    ARTICLES_IN.labels(stage).inc(received)
    ARTICLES_OUT.labels(stage).inc(passed)
    if received:
        per_article = seconds / received
        histogram = STAGE_SECONDS.labels(stage)
        for _ in range(received):
            histogram.observe(per_article)


def retried(stage: str, error_class: str, count: int) -> None:
    """Articles a stage must try again (a transient failure: no dead letter, no commit yet)."""
    ERRORS.labels(stage, error_class).inc(count)
    beam.metrics.Metrics.counter(stage, "retried").inc(count)


def lookup_failed(stage: str, reason: str) -> None:
    """A stage could not read what the index holds for its articles (``lookup:<reason>``)."""
    ERRORS.labels(stage, f"lookup:{reason}").inc()
    beam.metrics.Metrics.counter(stage, "lookup_failed").inc()


def sanitized(stage: str, markup: Iterable[str], invisible: Iterable[str]) -> None:
    """An article's fields that held markup or invisible characters, now removed."""
    for removed, fields in (("markup", markup), ("invisible", invisible)):
        for field in fields:
            SANITIZED.labels(stage, removed, field).inc()
            beam.metrics.Metrics.counter(stage, f"sanitized_{removed}").inc()


def dead_lettered(stage: str, error_class: str) -> None:
    """A dead letter is on the dead-letter topic (called once the broker acknowledged it)."""
    DEAD_LETTERS.labels(stage, error_class).inc()
    ERRORS.labels(stage, error_class).inc()
    beam.metrics.Metrics.counter("dead_letter", stage).inc()


def reached_sink(stage: str, items: Iterable[EnrichedArticle]) -> None:
    """Articles entering the sink, with the de-duplication decision each one carries."""
    received = 0
    for item in items:
        received += 1
        if (outcome := item.dedupe_outcome) is not None:  # None: de-duplication is disabled
            DEDUPE_OUTCOMES.labels(outcome).inc()
    ARTICLES_IN.labels(stage).inc(received)


def bulk_request(seconds: float, retry: bool) -> None:
    BULK_SECONDS.labels("retry" if retry else "ok").observe(seconds)
    _touch(last_activity=time.time())


def acknowledged(stage: str, items: Iterable[EnrichedArticle], at: datetime | None = None) -> None:
    """Documents Elasticsearch acknowledged: the sink's output and the end-to-end latency."""
    now = at or datetime.now(UTC)
    count = 0
    for item in items:
        count += 1
        END_TO_END.observe(max((now - item.article.fetched_at).total_seconds(), 0.0))
    ARTICLES_OUT.labels(stage).inc(count)
    beam.metrics.Metrics.counter(stage, "indexed").inc(count)


def bundle_finished(committed_records: int) -> None:
    """Last in the fused chain: the bundle went through every stage and its records, if any,
    were committed."""
    now = time.time()
    BUNDLES.inc()
    LAST_BUNDLE.set(now)
    if committed_records:
        COMMITS.inc()
        RECORDS_COMMITTED.inc(committed_records)
        LAST_COMMIT.set(now)
        _touch(last_bundle=now, last_commit=now)
    else:
        _touch(last_bundle=now)
