"""Publish validated articles to Kafka: keyed by article id, ``acks=all``, idempotent producer.

Every send's future is checked, so the caller learns which article failed and why instead of
the producer dropping it on close. Keying by id keeps all versions of a story in one partition,
in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from newsflow.article import Article
from newsflow.kafka_topics import client_config, kafka_unavailable
from newsflow.settings import KafkaSettings

#: Sends in flight before we wait for acknowledgements; bounds memory on huge backfills.
_MAX_PENDING = 1_000
_SEND_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class PublishResult:
    article_id: str
    error: str | None = None  # None = acknowledged by all in-sync replicas


class ArticlePublisher:
    """A thin, long-lived wrapper around one ``KafkaProducer``; use as a context manager."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._topic = settings.raw_topic
        try:
            self._producer = KafkaProducer(
                **client_config(settings, "newsflow-connector"),
                acks="all",
                enable_idempotence=True,
                max_request_size=settings.max_message_bytes,
                linger_ms=5,
            )
        except KafkaTimeoutError:
            raise kafka_unavailable(settings) from None

    def publish(self, articles: Iterable[Article]) -> Iterator[PublishResult]:
        """Send articles and yield one result per article once the broker has answered."""
        pending: list[tuple[str, object]] = []
        for article in articles:
            try:
                future = self._producer.send(
                    self._topic, key=article.id.encode(), value=article.to_json()
                )
            except KafkaError as exc:  # e.g. MessageSizeTooLargeError, raised before sending
                yield PublishResult(article.id, f"{type(exc).__name__}: {exc}")
                continue
            pending.append((article.id, future))
            if len(pending) >= _MAX_PENDING:
                yield from self._settle(pending)
                pending = []
        yield from self._settle(pending)

    def _settle(self, pending: list[tuple[str, object]]) -> Iterator[PublishResult]:
        self._producer.flush(timeout=_SEND_TIMEOUT_SECONDS)
        for article_id, future in pending:
            try:
                future.get(timeout=_SEND_TIMEOUT_SECONDS)  # type: ignore[attr-defined]
            except KafkaError as exc:
                yield PublishResult(article_id, f"{type(exc).__name__}: {exc}")
            else:
                yield PublishResult(article_id)

    def close(self) -> None:
        self._producer.close(timeout=_SEND_TIMEOUT_SECONDS)

    def __enter__(self) -> ArticlePublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
