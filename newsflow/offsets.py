"""Move the pipeline's consumer group to replay or skip part of the raw topic.

Reprocessing after a fix, a backfill from a date, or skipping a poisoned stretch are all "set the
group's committed offsets, then start the pipeline": the writes are idempotent (``_id`` = article
id), so a replay overwrites documents instead of duplicating them. Kafka only accepts a reset for
a group with no active member, so a running pipeline is reported, never raced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import OffsetSpec, OffsetTimestamp
from kafka.errors import KafkaTimeoutError

from newsflow.errors import NewsflowError
from newsflow.kafka_topics import client_config, kafka_unavailable
from newsflow.settings import KafkaSettings

Target = Literal["earliest", "latest"] | datetime


class GroupActive(NewsflowError):
    """The group still has members: the offsets they commit would undo the reset."""


@dataclass(frozen=True)
class OffsetMove:
    partition: int
    committed: int | None  # None: the group never committed on this partition
    target: int


def describe(target: Target) -> str:
    return target if isinstance(target, str) else f"the first record at or after {target}"


def plan(settings: KafkaSettings, target: Target) -> list[OffsetMove]:
    """Where each partition of the raw topic would move (a dry run: nothing is changed)."""
    consumer = _consumer(settings)
    try:
        partitions = [
            TopicPartition(settings.raw_topic, p)
            for p in sorted(consumer.partitions_for_topic(settings.raw_topic) or ())
        ]
        if not partitions:
            raise NewsflowError(f"topic {settings.raw_topic!r} does not exist")
        ends = consumer.end_offsets(partitions)
        if target == "earliest":
            targets = consumer.beginning_offsets(partitions)
        elif target == "latest":
            targets = ends
        else:
            millis = int(target.timestamp() * 1000)
            found = consumer.offsets_for_times(dict.fromkeys(partitions, millis))
            # No record that late: the end of the partition, as Kafka's own tool does.
            targets = {tp: found[tp].offset if found[tp] else ends[tp] for tp in partitions}
        return [OffsetMove(tp.partition, consumer.committed(tp), targets[tp]) for tp in partitions]
    finally:
        consumer.close()


def reset(settings: KafkaSettings, target: Target) -> list[OffsetMove]:
    """Commit the new offsets for the pipeline's group; refuses while the group is active."""
    moves = plan(settings, target)
    try:
        admin = KafkaAdminClient(**client_config(settings, "newsflow-offsets"))
    except KafkaTimeoutError:
        raise kafka_unavailable(settings) from None
    try:
        group = settings.consumer_group
        members = admin.describe_groups([group])[group].get("members") or []
        if members:
            raise GroupActive(
                f"consumer group {group!r} has {len(members)} active member(s); stop every "
                "`newsflow pipeline run` of this group first, then reset"
            )
        spec: OffsetSpec | OffsetTimestamp
        if target == "earliest":
            spec = OffsetSpec.EARLIEST
        elif target == "latest":
            spec = OffsetSpec.LATEST
        else:
            spec = OffsetTimestamp(int(target.timestamp() * 1000))
        result = admin.reset_group_offsets(
            group, {TopicPartition(settings.raw_topic, m.partition): spec for m in moves}
        )
    finally:
        admin.close()
    errors = {tp.partition: r["error"] for tp, r in result.items() if r["error"].errno}
    if errors:
        raise NewsflowError(f"Kafka refused the reset for partitions {errors}")
    return [
        OffsetMove(
            m.partition,
            m.committed,
            result[TopicPartition(settings.raw_topic, m.partition)]["offset"],
        )
        for m in moves
    ]


def _consumer(settings: KafkaSettings) -> KafkaConsumer:
    try:
        return KafkaConsumer(
            **client_config(settings, "newsflow-offsets"),
            group_id=settings.consumer_group,
            enable_auto_commit=False,
        )
    except KafkaTimeoutError:
        raise kafka_unavailable(settings) from None
