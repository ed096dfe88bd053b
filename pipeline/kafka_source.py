"""Read Kafka partitions as an unbounded source: a splittable DoFn over kafka-python.

Beam's Python ``ReadFromKafka`` is a cross-language transform that needs a Java expansion
service (and usually Docker); this one is pure Python and runs on any runner that supports
splittable DoFns. Each (topic, partition) is one element whose restriction is the offset range
``[committed offset, infinity)``. A ``process`` call reads up to one batch of records and then
checkpoints (``defer_remainder``), so every batch ends a bundle: downstream stages flush and
``CommitOffsets`` commits exactly the offsets whose records were fully handled.

Offsets live in Kafka's group coordinator (group = ``kafka.consumer_group``), so a restarted
pipeline resumes where the last acknowledged bundle ended, whatever the runner.

Scale-out is static: ``kafka.worker_count`` processes share the group and worker
``kafka.worker_index`` reads the partitions p with p % worker_count == worker_index (a
StatefulSet ordinal, a numbered compose service). Kafka's group management (subscribe, rebalance)
was not used: once a group has members the broker takes commits only from a member of the
current generation, but here reading (one consumer per reader instance) and committing (one per
``CommitOffsets`` instance, after the sink) are different consumers in different bundles, and a
revoked partition cannot be taken away from a running splittable DoFn. Fixed ownership keeps the
at-least-once contract as it is: one reader and one committer per partition. The price: no
automatic failover (a dead worker's partitions wait for its restart) and all workers restart
when the count changes. Two workers that wrongly read the same partition lose nothing: each
commits only offsets it handled, so at worst records are indexed twice (overwrites by ``_id``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.runners.sdf_utils import RestrictionTrackerView
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.utils.timestamp import Duration
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from newsflow.errors import NewsflowError
from newsflow.kafka_topics import client_config
from newsflow.settings import KafkaSettings
from pipeline import metrics

_LOG = logging.getLogger("newsflow.pipeline")
#: Set on SIGTERM: every partition stops reading after the bundle in flight, which is then
#: indexed and committed as usual, so the pipeline ends cleanly with nothing half-done.
_DRAIN = threading.Event()


def request_drain() -> None:
    _DRAIN.set()


_PROGRESS_EVERY_SECONDS = 5.0
#: While the broker is away, each partition asks again after this long.
_OUTAGE_RETRY_SECONDS = 1.0


class OutageLog:
    """One warning when an outage starts, then one every half minute, instead of one per poll."""

    EVERY_SECONDS = 30.0

    def __init__(self) -> None:
        self._last: float | None = None

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if self._last is None or now - self._last >= self.EVERY_SECONDS:
            self._last = now
            _LOG.warning(message, *args)

    def clear(self) -> None:
        if self._last is not None:
            _LOG.info("Kafka reachable again")
        self._last = None


#: An offset range without an end: the partition is read for as long as the pipeline runs.
UNBOUNDED = sys.maxsize


@dataclass(frozen=True)
class Origin:
    """Kafka coordinates of a record: what gets committed once the record has been handled."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class KafkaRecord:
    """One consumed message and where it came from (for commits and dead-letter records)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int

    @property
    def origin(self) -> Origin:
        return Origin(self.topic, self.partition, self.offset)


def consumer_config(settings: KafkaSettings) -> dict[str, Any]:
    return {
        **client_config(settings, "newsflow-pipeline"),
        "group_id": settings.consumer_group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": settings.max_message_bytes * 2,
    }


def start_offset(consumer: KafkaConsumer, partition: TopicPartition) -> int:
    """Where to resume: the group's committed offset, else the start of the partition."""
    committed = consumer.committed(partition)
    if committed is not None:
        return int(committed)
    return int(consumer.beginning_offsets([partition])[partition])


class PartitionAssignmentError(NewsflowError):
    pass


def worker_partitions(partitions: Iterable[int], index: int, count: int) -> list[int]:
    """The partitions worker ``index`` of ``count`` reads: those with p % count == index."""
    return sorted(p for p in partitions if p % count == index)


def assigned_partitions(settings: KafkaSettings) -> list[int]:
    """This worker's partitions of the raw topic, discovered now; an error if it has none."""
    consumer = KafkaConsumer(**consumer_config(settings))
    try:
        partitions = consumer.partitions_for_topic(settings.raw_topic) or set()
    finally:
        consumer.close()
    if not partitions:
        raise PartitionAssignmentError(
            f"topic {settings.raw_topic} has no partitions (does it exist on "
            f"{settings.bootstrap_servers}?)"
        )
    index, count = settings.worker_index, settings.worker_count
    mine = worker_partitions(partitions, index, count)
    if not mine:
        raise PartitionAssignmentError(
            f"worker {index} of {count} has no partition to read: {settings.raw_topic} has "
            f"{len(partitions)}; run at most {len(partitions)} workers (kafka.worker_count) or "
            "add partitions to the topic (they can only grow)"
        )
    if count > len(partitions):
        _LOG.warning(
            "%d workers for %d partitions of %s: workers %d to %d have nothing to read",
            count,
            len(partitions),
            settings.raw_topic,
            len(partitions),
            count - 1,
        )
    return mine


class _ListPartitions(beam.DoFn):
    """Impulse -> one (topic, partition) element per partition of this worker, found at start."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings

    def process(self, _impulse: bytes) -> Iterator[tuple[str, int]]:
        for partition in assigned_partitions(self._settings):
            yield self._settings.raw_topic, partition


@beam.DoFn.unbounded_per_element()
class _ReadPartition(beam.DoFn, RestrictionProvider):
    """Splittable DoFn: read one batch from a partition, emit it, checkpoint the rest.

    It is its own restriction provider: the restriction of a partition is the offset range
    from the group's committed offset to infinity.
    """

    def __init__(self, settings: KafkaSettings, stop_when_idle: float | None) -> None:
        self._settings = settings
        self._stop_when_idle = stop_when_idle
        self._consumer: KafkaConsumer | None = None
        self._last_record_at = 0.0
        self._outage = OutageLog()

    def initial_restriction(self, element: tuple[str, int]) -> OffsetRange:
        consumer = KafkaConsumer(**consumer_config(self._settings))
        try:
            return OffsetRange(start_offset(consumer, TopicPartition(*element)), UNBOUNDED)
        finally:
            consumer.close()

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element: tuple[str, int], restriction: OffsetRange) -> int:
        return 1  # the backlog is unknown up front; one partition = one unit of work

    def setup(self) -> None:
        self._consumer = KafkaConsumer(**consumer_config(self._settings))
        self._last_record_at = time.monotonic()

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()

    def process(
        self,
        element: tuple[str, int],
        tracker: RestrictionTrackerView = beam.DoFn.RestrictionParam(),  # type: ignore[assignment]  # noqa: B008
    ) -> Iterator[KafkaRecord]:
        assert self._consumer is not None
        if _DRAIN.is_set():
            tracker.try_claim(UNBOUNDED)  # claim past the end: this partition is finished
            return
        partition = TopicPartition(*element)
        position = tracker.current_restriction().start
        try:
            batch = self._poll(partition, position)
        except KafkaError as exc:
            # The broker is restarting or unreachable: nothing was claimed, so try again later;
            # the client reconnects by itself. Never an idle partition, never a failed bundle.
            self._outage.warn(
                "Kafka at %s unavailable while reading %s (%s); retrying",
                self._settings.bootstrap_servers,
                partition,
                exc,
            )
            tracker.defer_remainder(Duration(seconds=_OUTAGE_RETRY_SECONDS))
            return
        self._outage.clear()
        for record in batch:
            if not tracker.try_claim(record.offset):
                return
            yield KafkaRecord(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                timestamp_ms=record.timestamp,
            )
        self._report_lag(partition, len(batch))
        if batch:
            self._last_record_at = time.monotonic()
        elif self._idle_long_enough(partition, position):
            tracker.try_claim(UNBOUNDED)  # claim past the end: this partition is finished
            return
        tracker.defer_remainder(Duration(seconds=0))

    def _poll(self, partition: TopicPartition, position: int) -> list[Any]:
        assert self._consumer is not None
        timeout_ms = int(self._settings.poll_timeout_seconds * 1000)
        if self._consumer.assignment() != {partition}:
            self._consumer.assign([partition])
        if self._consumer.position(partition, timeout_ms=timeout_ms) != position:
            self._consumer.seek(partition, position)
        records: list[Any] = self._consumer.poll(
            timeout_ms=timeout_ms, max_records=self._settings.max_records_per_bundle
        ).get(partition, [])
        return records

    def _report_lag(self, partition: TopicPartition, records: int) -> None:
        """Lag = partition end - our position; the end comes free with each fetch response."""
        assert self._consumer is not None
        end = self._consumer.highwater(partition)
        lag: int | None = None
        try:
            if end is None:  # no fetch response since the partition was assigned
                end = self._consumer.end_offsets([partition])[partition]
            lag = end - self._consumer.position(partition)
        except KafkaError:
            pass  # the broker cannot tell now: the lag stays as it was; metrics never fail a bundle
        metrics.polled(partition.topic, partition.partition, records, lag)

    def _idle_long_enough(self, partition: TopicPartition, position: int) -> bool:
        """Drain mode: caught up with the partition end and no record seen for a while."""
        if self._stop_when_idle is None:
            return False
        assert self._consumer is not None
        try:
            end = self._consumer.end_offsets([partition])[partition]
        except KafkaError:
            return False  # cannot tell while the broker is away: not idle
        return position >= end and time.monotonic() - self._last_record_at >= self._stop_when_idle


class ReadFromKafkaPartitions(beam.PTransform):
    """Unbounded read of this worker's partitions of ``settings.raw_topic`` (all of them for
    a single worker) from the committed offsets.

    With ``stop_when_idle`` the read finishes once each partition is caught up and no record
    has arrived for that many seconds, which turns the streaming pipeline into a drain.
    """

    def __init__(self, settings: KafkaSettings, stop_when_idle: float | None = None) -> None:
        super().__init__()
        if stop_when_idle is not None and stop_when_idle < 0:
            raise ValueError("stop_when_idle must be >= 0 seconds")
        self._settings = settings
        self._stop_when_idle = stop_when_idle

    def expand(self, begin: beam.pvalue.PBegin) -> beam.PCollection[KafkaRecord]:
        return (
            begin
            | "Impulse" >> beam.Impulse()
            | "ListPartitions" >> beam.ParDo(_ListPartitions(self._settings))
            | "ReadPartition" >> beam.ParDo(_ReadPartition(self._settings, self._stop_when_idle))
        )


class CommitOffsets(beam.DoFn):
    """Commit, per bundle, the offsets of records that were fully handled downstream.

    Placed after the Elasticsearch and dead-letter writes in the same fused stage, it only sees
    a record once its document was acknowledged or its dead-letter record written; a crash before
    ``finish_bundle`` leaves the offsets uncommitted and the bundle is read again (at least once;
    idempotent ``_id``s make the replay harmless).
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._consumer: KafkaConsumer | None = None
        self._outage = OutageLog()
        self._pending: dict[TopicPartition, int] = {}
        self._committed_records = 0
        self._bundle_start = 0  # _committed_records when the bundle started
        self._last_report = 0.0

    def setup(self) -> None:
        self._consumer = KafkaConsumer(**consumer_config(self._settings))
        self._last_report = time.monotonic()

    def start_bundle(self) -> None:
        # Offsets a failed commit left pending stay: the next commit covers them too.
        self._bundle_start = self._committed_records

    def process(self, done: Origin) -> Iterable[None]:
        """Outputs nothing (Beam 2.78 refuses a ``process`` annotated as returning ``None``)."""
        key = TopicPartition(done.topic, done.partition)
        self._pending[key] = max(done.offset + 1, self._pending.get(key, 0))
        self._committed_records += 1
        return ()

    def finish_bundle(self) -> None:
        if self._pending and self._consumer is not None:
            try:
                self._consumer.commit(
                    {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self._pending.items()},
                    timeout_ms=int(self._settings.connect_timeout_seconds * 1000),
                )
            except KafkaError as exc:
                # Handled records stay handled; committing them later (or re-reading them
                # after a crash, harmlessly) is all an outage costs.
                self._outage.warn("could not commit offsets (%s); will retry", exc)
            else:
                self._pending = {}
                self._outage.clear()
        metrics.bundle_finished(self._committed_records - self._bundle_start)
        if time.monotonic() - self._last_report >= _PROGRESS_EVERY_SECONDS:
            self._last_report = time.monotonic()
            _LOG.info("%d records handled and committed so far", self._committed_records)

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
