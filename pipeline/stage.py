"""One generic DoFn for enrichment stages, shaped like Beam's RunInference.

A stage is a small object that knows how to load its model and run it on a batch; ``RunStage``
loads it once per worker in ``setup()``, runs it on each batch, and when a batch fails, runs the
articles one by one so that only the article that broke the stage becomes a dead letter, with
the reason, while the others go on.

Dead letters travel inside the ``Batch`` down the same linear chain of DoFns instead of through
side outputs merged by a Flatten: a Flatten is a fusion break, and on the in-process runner the
stage after it would only run once the unbounded read finished — offsets and dead letters would
then be written at shutdown instead of after every bundle.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import apache_beam as beam

from newsflow.index import ElasticsearchUnavailable
from pipeline import metrics
from pipeline.dead_letter import DeadLetter
from pipeline.enriched import EnrichedArticle
from pipeline.kafka_source import Origin


@dataclass(frozen=True)
class Batch:
    """What one bundle's records have become so far, all of it accounted for."""

    articles: tuple[EnrichedArticle, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    acknowledged: tuple[Origin, ...] = ()  # indexed by Elasticsearch


class Stage(Protocol):
    name: str

    def load(self) -> None:
        """Load models and clients; called once per worker."""

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        """Enrich a batch; raising fails the batch, which is then retried article by article."""
        ...


class RunStage(beam.DoFn):
    def __init__(self, stage: Stage) -> None:
        self._stage = stage

    def setup(self) -> None:
        self._stage.load()

    def process(self, batch: Batch) -> Iterator[Batch]:
        started = time.perf_counter()
        result = self._run(batch)
        metrics.stage_batch(
            self._stage.name,
            len(batch.articles),
            len(result.articles),
            time.perf_counter() - started,
        )
        yield result

    def _run(self, batch: Batch) -> Batch:
        articles = list(batch.articles)
        try:
            return replace(batch, articles=tuple(self._stage.run(articles)))
        except ElasticsearchUnavailable:
            raise  # the service, not the articles: fail the bundle, commit nothing
        except Exception:
            pass
        survivors: list[EnrichedArticle] = []
        letters = list(batch.dead_letters)
        for item in articles:
            try:
                survivors.extend(self._stage.run([item]))
            except ElasticsearchUnavailable:
                raise
            except Exception as exc:
                beam.metrics.Metrics.counter(self._stage.name, "failed").inc()
                letters.append(
                    DeadLetter.from_exception(
                        item.origin, self._stage.name, exc, item.article.to_json(), item.article.id
                    )
                )
        return replace(batch, articles=tuple(survivors), dead_letters=tuple(letters))
