"""The dead-letter path: records a stage could not handle, with the reason, on their own topic.

A dead-letter record carries the original payload (bounded), the stage, the error class and
message, the source topic/partition/offset and the time, so that ops can see why and replay
after a fix. Writing it is synchronous and checked: the record's offset is only released for
commit once the broker acknowledged the dead letter.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import apache_beam as beam
from kafka import KafkaProducer

from newsflow.kafka_topics import client_config
from newsflow.settings import KafkaSettings
from pipeline import metrics
from pipeline.kafka_source import Origin

if TYPE_CHECKING:  # stage.py imports DeadLetter from here
    from pipeline.stage import Batch

#: Payload bytes kept in a dead-letter record; enough to diagnose, small enough for any broker.
MAX_PAYLOAD_BYTES = 64 * 1024
_SEND_TIMEOUT_SECONDS = 60
_LOG = logging.getLogger("newsflow.pipeline")


@dataclass(frozen=True)
class DeadLetter:
    origin: Origin
    stage: str
    error_class: str
    error: str
    payload: bytes
    article_id: str | None = None

    @classmethod
    def from_exception(
        cls,
        origin: Origin,
        stage: str,
        exc: BaseException,
        payload: bytes,
        article_id: str | None = None,
    ) -> DeadLetter:
        return cls(origin, stage, type(exc).__name__, str(exc), payload, article_id)


def encode_dead_letter(letter: DeadLetter, now: datetime | None = None) -> bytes:
    """The JSON dead-letter message; the payload is UTF-8 text when it is text, else base64."""
    payload = letter.payload[:MAX_PAYLOAD_BYTES]
    try:
        letter.payload.decode("utf-8")
    except UnicodeDecodeError:
        payload_field = {
            "payload": base64.b64encode(payload).decode(),
            "payload_encoding": "base64",
        }
    else:  # text: the cut may split a character, so drop that partial character
        payload_field = {
            "payload": payload.decode("utf-8", errors="ignore"),
            "payload_encoding": "utf-8",
        }
    message = {
        "stage": letter.stage,
        "error_class": letter.error_class,
        "error": letter.error,
        "article_id": letter.article_id,
        "source": asdict(letter.origin),
        "payload_truncated": len(letter.payload) > MAX_PAYLOAD_BYTES,
        **payload_field,
        "dead_lettered_at": (now or datetime.now(UTC)).isoformat(),
    }
    return json.dumps(message, ensure_ascii=False).encode("utf-8")


class WriteDeadLetters(beam.DoFn):
    """Produce a batch's dead letters to the DLQ topic, then release every origin for commit.

    Emits the origins of the dead letters, each once the broker acknowledged it, and of the
    acknowledged documents: every record of the batch is then accounted for.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: KafkaProducer | None = None

    def setup(self) -> None:
        self._producer = KafkaProducer(
            **client_config(self._settings, "newsflow-dead-letter"),
            acks="all",
            enable_idempotence=True,
        )

    def process(self, batch: Batch) -> Iterator[Origin]:
        assert self._producer is not None
        for letter in batch.dead_letters:
            key = letter.article_id or f"{letter.origin.partition}:{letter.origin.offset}"
            self._producer.send(
                self._settings.dlq_topic, key=key.encode(), value=encode_dead_letter(letter)
            ).get(timeout=_SEND_TIMEOUT_SECONDS)
            metrics.dead_lettered(letter.stage, letter.error_class)
            _LOG.warning(
                "dead letter from %s: %s: %s (%s:%d@%d)",
                letter.stage,
                letter.error_class,
                letter.error[:200],
                letter.origin.topic,
                letter.origin.partition,
                letter.origin.offset,
                extra={
                    "stage": letter.stage,
                    "article_id": letter.article_id,
                    "error_class": letter.error_class,
                    "partition": letter.origin.partition,
                    "offset": letter.origin.offset,
                },
            )
            yield letter.origin
        yield from batch.acknowledged

    def teardown(self) -> None:
        if self._producer is not None:
            self._producer.close()
