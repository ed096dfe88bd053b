"""``newsflow dlq``: look at dead-letter records, and send them back through the pipeline.

``list`` and ``show`` read the topic from the start without a consumer group, so looking changes
nothing. ``replay`` republishes the original payload of each record to the raw topic and tracks
its position in a consumer group per selection (``<pipeline group>-dlq-replay-<stage|all>``): a
record is replayed once per selection, and its offset is committed only after the raw topic
acknowledged the resend. A record whose
payload cannot become an article any more (the decode stage rejected it) is reported, not resent:
replaying it would only dead-letter it again.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition

from newsflow.article import Article, InvalidArticle
from newsflow.kafka_topics import client_config, kafka_unavailable
from newsflow.settings import KafkaSettings

_READ_TIMEOUT_MS = 3_000


@dataclass(frozen=True)
class DeadLetterRecord:
    partition: int
    offset: int
    message: dict[str, Any]

    @property
    def reference(self) -> str:
        return f"{self.partition}:{self.offset}"


def summary(record: DeadLetterRecord) -> dict[str, object]:
    """One line of ``dlq list``."""
    message = record.message
    source = message.get("source", {})
    return {
        "ref": record.reference,
        "time": str(message.get("dead_lettered_at", ""))[:19],
        "stage": message.get("stage", "?"),
        "error": f"{message.get('error_class', '?')}: {message.get('error', '')}"[:100],
        "article": message.get("article_id") or "-",
        "from": f"{source.get('topic', '?')}/{source.get('partition', '?')}@"
        f"{source.get('offset', '?')}",
    }


def original_payload(message: dict[str, Any]) -> bytes:
    payload = str(message.get("payload", ""))
    if message.get("payload_encoding") == "base64":
        return base64.b64decode(payload)
    return payload.encode("utf-8")


def replayable(message: dict[str, Any]) -> Article | str:
    """The article to resend, or why it cannot be resent."""
    if message.get("payload_truncated"):
        return "the payload was truncated when it was dead-lettered"
    try:
        return Article.from_json(original_payload(message))
    except InvalidArticle as exc:
        return f"the payload is still not a valid article: {exc}"


def _consumer(settings: KafkaSettings, group: str | None) -> KafkaConsumer:
    try:
        consumer = KafkaConsumer(
            settings.dlq_topic,
            **client_config(settings, "newsflow-dlq"),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            consumer_timeout_ms=_READ_TIMEOUT_MS,
        )
    except KafkaTimeoutError:
        raise kafka_unavailable(settings) from None
    return consumer


def read(consumer: KafkaConsumer) -> Iterator[DeadLetterRecord]:
    for message in consumer:
        try:
            body = json.loads(message.value)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {"stage": "?", "error": "not a newsflow dead-letter record"}
        yield DeadLetterRecord(message.partition, message.offset, body)


def records(settings: KafkaSettings) -> list[DeadLetterRecord]:
    consumer = _consumer(settings, group=None)
    try:
        return list(read(consumer))
    finally:
        consumer.close()


@dataclass
class ReplayReport:
    resent: int = 0
    skipped: int = 0


def replay(
    settings: KafkaSettings, stage: str | None, dry_run: bool, out: TextIO = sys.stderr
) -> ReplayReport:
    """Resend replayable dead letters (of one stage, or all) to the raw topic, each once."""
    report = ReplayReport()
    consumer = _consumer(settings, group=f"{settings.consumer_group}-dlq-replay-{stage or 'all'}")
    producer = KafkaProducer(
        **client_config(settings, "newsflow-dlq-replay"), acks="all", enable_idempotence=True
    )
    try:
        for record in read(consumer):
            message = record.message
            article = replayable(message) if stage in (None, message.get("stage")) else None
            if isinstance(article, Article):
                if not dry_run:
                    producer.send(
                        settings.raw_topic, key=article.id.encode(), value=article.to_json()
                    ).get(timeout=60)
                report.resent += 1
                print(
                    f"{'would resend' if dry_run else 'resent'} {record.reference} "
                    f"(article {article.id})",
                    file=out,
                )
            else:
                report.skipped += 1
                reason = article or f"stage {message.get('stage')!r} not selected"
                print(f"skipped {record.reference}: {reason}", file=out)
            if not dry_run:
                consumer.commit(
                    {
                        TopicPartition(settings.dlq_topic, record.partition): OffsetAndMetadata(
                            record.offset + 1, "", -1
                        )
                    }
                )
    finally:
        producer.close()
        consumer.close()
    return report
