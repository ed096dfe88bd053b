"""Publish validated articles to Kafka: keyed by article id, ``acks=all``, idempotent producer.

Every send's future is checked, so the caller learns which article failed and why instead of
the producer dropping it on close (kafka-python's ``flush()`` does not raise for expired
batches); sends that failed with a retriable error are sent again with exponential backoff.
Keying by id keeps all versions of a story in one partition, in order. Every message carries
headers naming its source, the schema version and the content type, so consumers can route or
filter without parsing the body.

An article too large for one Kafka message is never dropped: by policy its body is cut at a
paragraph (else word, else character) boundary until the message fits, with
``metadata.truncated = true`` and the original body length, or it goes to the dead-letter topic
in the pipeline's dead-letter record shape (``newsflow dlq list`` shows it) with the reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Literal

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.record.default_records import DefaultRecordBatchBuilder

from newsflow.article import SCHEMA_VERSION, Article, InvalidArticle
from newsflow.kafka_topics import client_config, kafka_unavailable
from newsflow.settings import KafkaSettings

_LOG = logging.getLogger("newsflow.connectors")
#: Sends in flight before we wait for acknowledgements; bounds memory on huge backfills.
_MAX_PENDING = 1_000
_SEND_TIMEOUT_SECONDS = 120
#: Original payload bytes kept in a dead-letter record, as the pipeline's dead letters do.
_DEAD_LETTER_PAYLOAD_BYTES = 64 * 1024
#: The dead-letter ``stage`` of records written by connectors (the pipeline's are its stages).
DEAD_LETTER_STAGE = "connector"

Oversize = Literal["truncate", "dead_letter"]
Outcome = Literal["sent", "truncated", "dead_letter"]
Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class PublishPolicy:
    """What to do with articles that do not fit, and how hard to retry."""

    #: ``truncate``: cut the body to fit, flagged; ``dead_letter``: send to the DLQ topic.
    oversize: Oversize = "truncate"
    #: Cap on one message (key, headers and value); None = ``kafka.max_message_bytes``.
    max_article_bytes: int | None = None
    #: Attempts per message on retriable errors (e.g. a batch that expired during an outage).
    max_attempts: int = 3
    retry_backoff_seconds: float = 1.0


@dataclass(frozen=True)
class PublishResult:
    article_id: str
    error: str | None = None  # None = acknowledged by all in-sync replicas
    outcome: Outcome = "sent"


@dataclass(frozen=True)
class _Message:
    topic: str
    key: bytes
    value: bytes
    headers: Headers
    outcome: Outcome


def headers_for(article: Article) -> Headers:
    return [
        ("source", article.source.encode("utf-8")),
        ("schema_version", str(SCHEMA_VERSION).encode()),
        ("content-type", b"application/json"),
    ]


def record_size(article: Article) -> int:
    """Bytes of the Kafka record, measured the way the producer checks its size limit."""
    return int(
        DefaultRecordBatchBuilder.estimate_size_in_bytes(
            article.id.encode(), article.to_json(), headers_for(article)
        )
    )


def cut_text(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` within ``max_bytes`` of UTF-8, ending at a paragraph
    break when one keeps at least half of it, else at a space, else at a character."""
    prefix = text.encode("utf-8")[: max(max_bytes, 0)].decode("utf-8", errors="ignore")
    if len(prefix) == len(text):
        return text
    for boundary in ("\n\n", "\n", " "):
        cut = prefix.rfind(boundary)
        if cut >= len(prefix) // 2:
            return prefix[:cut].rstrip()
    return prefix


def truncate_to_fit(
    article: Article, limit: int, size: Callable[[Article], int] = record_size
) -> Article | None:
    """The article with its body cut so its record fits ``limit`` bytes, flagged in metadata;
    None when even an empty body does not fit (or leaves an article with no text at all)."""
    excess = size(article) - limit
    if excess <= 0:
        return article
    fields = article.model_dump(exclude={"id", "schema_version", "body", "metadata"})
    metadata = {**article.metadata, "truncated": True, "original_body_length": len(article.body)}
    body = article.body
    while body:
        # JSON escaping only inflates text, so removing `excess` raw bytes removes at least as
        # many from the record; the flag added to the metadata is covered by the next round.
        body = cut_text(body, len(body.encode("utf-8")) - excess)
        try:
            candidate = Article.create(**fields, body=body, metadata=metadata)
        except InvalidArticle:  # nothing left: no title and an empty body
            return None
        excess = size(candidate) - limit
        if excess <= 0:
            return candidate
    return None


def dead_letter_record(
    article: Article, reason: str, error_class: str, now: datetime | None = None
) -> bytes:
    """A dead-letter message with the fields of ``pipeline.dead_letter.encode_dead_letter``;
    ``source`` names the connector's outlet instead of Kafka coordinates (there are none)."""
    payload = article.to_json()
    message: dict[str, Any] = {
        "stage": DEAD_LETTER_STAGE,
        "error_class": error_class,
        "error": reason,
        "article_id": article.id,
        "source": {"connector": article.source, "url": article.url},
        "payload_truncated": len(payload) > _DEAD_LETTER_PAYLOAD_BYTES,
        "payload": payload[:_DEAD_LETTER_PAYLOAD_BYTES].decode("utf-8", errors="ignore"),
        "payload_encoding": "utf-8",
        "dead_lettered_at": (now or datetime.now(UTC)).isoformat(),
    }
    return json.dumps(message, ensure_ascii=False).encode("utf-8")


class ArticlePublisher:
    """A thin, long-lived wrapper around one ``KafkaProducer``; use as a context manager.

    Thread-safe: the runner's workers share one publisher (and one producer connection).
    """

    def __init__(self, settings: KafkaSettings, policy: PublishPolicy | None = None) -> None:
        self._settings = settings
        self._policy = policy or PublishPolicy()
        self._limit = min(
            self._policy.max_article_bytes or settings.max_message_bytes,
            settings.max_message_bytes,
        )
        self._lock = threading.Lock()
        self._producer = self._connect()

    def _connect(self) -> KafkaProducer:
        try:
            return KafkaProducer(
                **client_config(self._settings, "newsflow-connector"),
                acks="all",
                enable_idempotence=True,
                max_request_size=self._settings.max_message_bytes,
                linger_ms=5,
            )
        except KafkaTimeoutError:
            raise kafka_unavailable(self._settings) from None

    def _replace(self, poisoned: KafkaProducer) -> None:
        """A fresh producer for one that hit a broker-side non-retriable error.

        kafka-python's idempotent producer treats such an error (e.g. a record over the
        topic's ``max.message.bytes``) as fatal and fails every later send with it; a runner
        that lives for months must not be stopped by one bad record.
        """
        with self._lock:
            if self._producer is not poisoned:  # another thread replaced it already
                return
            self._producer = self._connect()
        with contextlib.suppress(KafkaError):
            poisoned.close(timeout=0)

    def publish(self, articles: Iterable[Article]) -> Iterator[PublishResult]:
        """Send articles and yield one result per article, in order, once the broker answered."""
        iterator = iter(articles)
        while batch := list(islice(iterator, _MAX_PENDING)):
            yield from self.publish_batch(batch)

    def publish_batch(self, articles: Sequence[Article]) -> list[PublishResult]:
        """Send a batch and wait for every acknowledgement; results in the articles' order."""
        messages = [self._message(article) for article in articles]
        errors: dict[int, str] = {}
        todo = list(range(len(messages)))
        for attempt in range(1, self._policy.max_attempts + 1):
            failed = self._send(messages, todo)
            last = attempt == self._policy.max_attempts
            todo = [i for i, exc in failed.items() if exc.retriable and not last]
            errors.update(
                {i: f"{type(exc).__name__}: {exc}" for i, exc in failed.items() if i not in todo}
            )
            if not todo:
                break
            time.sleep(self._policy.retry_backoff_seconds * 2 ** (attempt - 1))
        return [
            PublishResult(article.id, errors.get(i), message.outcome)
            for i, (article, message) in enumerate(zip(articles, messages, strict=True))
        ]

    def _send(self, messages: list[_Message], indices: list[int]) -> dict[int, KafkaError]:
        """Send the given messages; the errors of those not acknowledged, by index."""
        producer = self._producer
        failed: dict[int, KafkaError] = {}
        pending = []
        for i in indices:
            m = messages[i]
            try:
                future = producer.send(m.topic, key=m.key, value=m.value, headers=m.headers)
            except KafkaError as exc:  # raised before sending, e.g. MessageSizeTooLargeError
                failed[i] = exc
            else:
                pending.append((i, future))
        # kafka-python can raise here after splitting a batch the broker refused; the
        # per-message futures below are the truth either way.
        with contextlib.suppress(KafkaError):
            producer.flush(timeout=_SEND_TIMEOUT_SECONDS)
        broker_refused = False
        for i, future in pending:
            try:
                future.get(timeout=_SEND_TIMEOUT_SECONDS)
            except KafkaError as exc:
                failed[i] = exc
                broker_refused = broker_refused or not exc.retriable
        if broker_refused:
            self._replace(producer)
        return failed

    def _message(self, article: Article) -> _Message:
        """The message for an article: as is, truncated to fit, or a dead letter."""
        size = record_size(article)
        if size <= self._limit:
            return self._raw(article, "sent")
        if self._policy.oversize == "truncate":
            truncated = truncate_to_fit(article, self._limit)
            if truncated is not None:
                return self._raw(truncated, "truncated")
            reason = f"{size} bytes, over the {self._limit}-byte cap even with an empty body"
        else:
            reason = f"{size} bytes, over the {self._limit}-byte cap"
        return _Message(
            self._settings.dlq_topic,
            article.id.encode(),
            dead_letter_record(article, reason, "ArticleTooLarge"),
            headers_for(article),
            "dead_letter",
        )

    def _raw(self, article: Article, outcome: Outcome) -> _Message:
        return _Message(
            self._settings.raw_topic,
            article.id.encode(),
            article.to_json(),
            headers_for(article),
            outcome,
        )

    def close(self) -> None:
        """Close the producer. Every result was already reported, so a flush error here (a
        kafka-python quirk after it split a batch the broker refused) is logged, not raised."""
        try:
            self._producer.close(timeout=_SEND_TIMEOUT_SECONDS)
        except KafkaError as exc:
            _LOG.warning("Kafka producer did not close cleanly: %s", exc)

    def __enter__(self) -> ArticlePublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
