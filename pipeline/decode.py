"""First stage: turn a Kafka record into an article, or into a dead letter saying why not.

Anyone who can produce to the raw topic can bypass the connectors, so this stage trusts nothing:
a record over the message size limit is refused before it is parsed, the value must be UTF-8
JSON that passes the article contract, and every text that reaches the index (title, body,
source, metadata) goes through ``newsflow.sanitize``. What the sanitizer removed is counted
(``newsflow_pipeline_sanitized_fields``), never silent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from newsflow.article import Article, InvalidArticle
from newsflow.sanitize import UnsafeText, sanitize
from pipeline import metrics
from pipeline.dead_letter import DeadLetter
from pipeline.enriched import EnrichedArticle
from pipeline.kafka_source import KafkaRecord
from pipeline.stage import Batch

STAGE = "decode"
_LOG = logging.getLogger("newsflow.pipeline")


@dataclass(frozen=True)
class Cleaned:
    """An article made safe to index, and the fields that had to change (for the counters)."""

    article: Article
    markup: tuple[str, ...] = ()
    invisible: tuple[str, ...] = ()


class _Cleaner:
    """Sanitizes one article's strings, remembering which fields changed and why."""

    def __init__(self) -> None:
        self.markup: list[str] = []
        self.invisible: list[str] = []

    def text(self, field: str, value: str) -> str:
        try:
            result = sanitize(value)
        except UnsafeText as exc:
            raise InvalidArticle(f"{field}: {exc}") from None
        if result.markup and field not in self.markup:
            self.markup.append(field)
        if result.invisible and field not in self.invisible:
            self.invisible.append(field)
        return result.text.strip()

    def value(self, field: str, value: Any) -> Any:
        """Metadata: every string in it, keys included, however deeply nested."""
        if isinstance(value, str):
            return self.text(field, value)
        if isinstance(value, list):
            return [self.value(field, item) for item in value]
        if isinstance(value, dict):
            return {self.text(field, str(k)): self.value(field, v) for k, v in value.items()}
        return value


def clean(article: Article) -> Cleaned:
    """``article`` with safe text; raises ``InvalidArticle`` if nothing readable is left.

    The id is kept: it names the message that was produced, whatever its text turns out to be.
    """
    cleaner = _Cleaner()
    title = cleaner.text("title", article.title)
    body = cleaner.text("body", article.body)
    source = cleaner.text("source", article.source)
    metadata = cleaner.value("metadata", article.metadata)
    if not (title or body):
        raise InvalidArticle(
            "nothing is left of title and body once markup and invisible characters are removed"
        )
    if not source:
        raise InvalidArticle(
            "nothing is left of source once markup and invisible characters are removed"
        )
    cleaned = article.model_copy(
        update={"title": title, "body": body, "source": source, "metadata": metadata}
    )
    return Cleaned(cleaned, tuple(cleaner.markup), tuple(cleaner.invisible))


def decode(record: KafkaRecord, max_bytes: int) -> Cleaned:
    """Validate the message against the article contract; raises ``InvalidArticle``.

    ``max_bytes`` (``kafka.max_message_bytes``, the cap producers are held to) is checked before
    anything is parsed, so an oversized message costs no memory beyond the bytes Kafka handed us.
    """
    if len(record.value) > max_bytes:
        raise InvalidArticle(
            f"message is {len(record.value):,} bytes, over the {max_bytes:,}-byte limit "
            "(kafka.max_message_bytes); publish through a newsflow connector, which cuts long "
            "bodies, or raise the limit"
        )
    try:
        record.value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArticle(
            f"message is not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "articles are UTF-8 JSON"
        ) from None
    article = Article.from_json(record.value)
    if record.key is not None and record.key != article.id.encode():
        raise InvalidArticle(f"message key {record.key!r} is not the article id {article.id}")
    return clean(article)


class DecodeArticles(beam.DoFn):
    """A batch of Kafka records -> a ``Batch`` of articles and the records that are not."""

    def __init__(self, max_message_bytes: int) -> None:
        self._max_bytes = max_message_bytes

    def process(self, records: list[KafkaRecord]) -> Iterator[Batch]:
        started = time.perf_counter()
        articles: list[EnrichedArticle] = []
        letters: list[DeadLetter] = []
        for record in records:
            try:
                cleaned = decode(record, self._max_bytes)
            except InvalidArticle as exc:
                beam.metrics.Metrics.counter(STAGE, "invalid").inc()
                letters.append(DeadLetter.from_exception(record.origin, STAGE, exc, record.value))
                continue
            if cleaned.markup or cleaned.invisible:
                metrics.sanitized(STAGE, cleaned.markup, cleaned.invisible)
                _LOG.info(
                    "article %s sanitized: markup removed from %s, invisible characters from %s",
                    cleaned.article.id,
                    ", ".join(cleaned.markup) or "none",
                    ", ".join(cleaned.invisible) or "none",
                    extra={"stage": STAGE, "article_id": cleaned.article.id},
                )
            articles.append(EnrichedArticle(article=cleaned.article, origin=record.origin))
        metrics.stage_batch(STAGE, len(records), len(articles), time.perf_counter() - started)
        yield Batch(tuple(articles), tuple(letters))
