"""One generic DoFn for enrichment stages, shaped like Beam's RunInference.

A stage is a small object that knows how to load its model and run it on a batch; ``RunStage``
loads it once per worker in ``setup()``, runs it on each batch, and when a batch fails, runs the
articles one by one so that only the article that broke the stage goes to the dead-letter
output, with the reason, while the others go on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import apache_beam as beam

from pipeline.dead_letter import DeadLetter
from pipeline.enriched import EnrichedArticle

DEAD_LETTER = "dead_letter"


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

    def process(
        self, batch: list[EnrichedArticle]
    ) -> Iterator[list[EnrichedArticle] | beam.pvalue.TaggedOutput]:
        try:
            yield self._stage.run(batch)
            return
        except Exception:
            pass
        survivors: list[EnrichedArticle] = []
        for item in batch:
            try:
                survivors.extend(self._stage.run([item]))
            except Exception as exc:
                beam.metrics.Metrics.counter(self._stage.name, "failed").inc()
                yield beam.pvalue.TaggedOutput(
                    DEAD_LETTER,
                    DeadLetter.from_exception(
                        item.origin, self._stage.name, exc, item.article.to_json(), item.article.id
                    ),
                )
        if survivors:
            yield survivors
