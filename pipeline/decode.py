"""First stage: turn a Kafka record into an article, or into a dead letter saying why not."""

from __future__ import annotations

import time
from collections.abc import Iterator

import apache_beam as beam

from newsflow.article import Article, InvalidArticle
from pipeline import metrics
from pipeline.dead_letter import DeadLetter
from pipeline.enriched import EnrichedArticle
from pipeline.kafka_source import KafkaRecord
from pipeline.stage import Batch

STAGE = "decode"


def decode(record: KafkaRecord) -> EnrichedArticle:
    """Validate the message against the article contract; raises ``InvalidArticle``."""
    article = Article.from_json(record.value)
    if record.key is not None and record.key != article.id.encode():
        raise InvalidArticle(f"message key {record.key!r} is not the article id {article.id}")
    return EnrichedArticle(article=article, origin=record.origin)


class DecodeArticles(beam.DoFn):
    """A batch of Kafka records -> a ``Batch`` of articles and the records that are not."""

    def process(self, records: list[KafkaRecord]) -> Iterator[Batch]:
        started = time.perf_counter()
        articles: list[EnrichedArticle] = []
        letters: list[DeadLetter] = []
        for record in records:
            try:
                articles.append(decode(record))
            except InvalidArticle as exc:
                beam.metrics.Metrics.counter(STAGE, "invalid").inc()
                letters.append(DeadLetter.from_exception(record.origin, STAGE, exc, record.value))
        metrics.stage_batch(STAGE, len(records), len(articles), time.perf_counter() - started)
        yield Batch(tuple(articles), tuple(letters))
