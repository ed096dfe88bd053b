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
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from newsflow.index import ElasticsearchUnavailable
from pipeline import metrics
from pipeline.dead_letter import DeadLetter
from pipeline.enriched import EnrichedArticle
from pipeline.kafka_source import Origin
from pipeline.stage_process import StageProcess


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
        try:
            return replace(batch, articles=tuple(self._stage.run(list(batch.articles))))
        except ElasticsearchUnavailable:
            raise  # the service, not the articles: fail the bundle, commit nothing
        except Exception:
            return self._one_by_one(batch)

    def _one_by_one(self, batch: Batch) -> Batch:
        """After a failed batch: run each article alone, and dead-letter those that fail."""
        articles = list(batch.articles)
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


@dataclass(frozen=True)
class _Submitted:
    ticket: int
    batch: Batch
    timestamp: Any
    window: Any


# Its methods emit windowed values; Beam must be told they hold batches (pipeline.batching).
@beam.typehints.with_output_types(Batch)
class RunStageAhead(RunStage):
    """``RunStage`` with the stage in a child process (``StageProcess``), ``ahead`` batches ahead.

    ``process`` submits a batch and emits only the batches older than the last ``ahead``, so the
    child works on one batch while the chain decodes, translates and de-duplicates the next one
    and indexes the one before. ``finish_bundle`` collects everything still in the child: no
    batch outlives its bundle, so a bundle's offsets are still committed by that bundle and a
    bundle retried by the runner loses nothing.
    """

    def __init__(self, stage: Stage, ahead: int = 1) -> None:
        self._process = StageProcess(stage)
        super().__init__(self._process)
        self._ahead = ahead
        self._submitted: deque[_Submitted] = deque()

    def start_bundle(self) -> None:
        """A previous bundle that failed midway left batches behind: the runner retries them."""
        self._process.abandon(submitted.ticket for submitted in self._submitted)
        self._submitted.clear()

    def process(  # type: ignore[override]  # emits windowed values, for finish_bundle's sake
        self,
        batch: Batch,
        timestamp: Any = beam.DoFn.TimestampParam,
        window: Any = beam.DoFn.WindowParam,
    ) -> Iterator[WindowedValue]:
        ticket = self._process.submit(list(batch.articles))
        self._submitted.append(_Submitted(ticket, batch, timestamp, window))
        while len(self._submitted) > self._ahead:
            yield self._collect(self._submitted.popleft())

    def finish_bundle(self) -> Iterator[WindowedValue]:
        while self._submitted:
            yield self._collect(self._submitted.popleft())

    def teardown(self) -> None:
        self._process.close()

    def _collect(self, submitted: _Submitted) -> WindowedValue:
        batch = submitted.batch
        started = time.perf_counter()
        try:
            articles, seconds = self._process.result(submitted.ticket)
            result = replace(batch, articles=tuple(articles))
        except ElasticsearchUnavailable:
            raise
        except Exception:
            result = self._one_by_one(batch)
            seconds = time.perf_counter() - started
        metrics.stage_batch(self._stage.name, len(batch.articles), len(result.articles), seconds)
        return WindowedValue(result, submitted.timestamp, (submitted.window,))
